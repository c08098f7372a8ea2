/* Write guesses: a set of TS_GUESS_WAYS slots per player name hash, least
 * recently used replaced, under one mutex; see guess.h for when they are
 * used and why that is safe. */
#include "guess.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "../common/bounds.h"
#include "../common/hash.h"

struct slot {
  char *player;  /* NULL: empty */
  uint64_t used; /* the guess's clock when last written or taken */
  struct guess_item it;
};

struct guess {
  pthread_mutex_t mu;
  struct slot *slots;
  size_t n_slots, ways; /* n_slots is a multiple of ways */
  uint64_t clock;
  int trust;     /* 0 .. TS_GUESS_TRUST_MAX */
  int trust_new; /* the same, for players with no entry being new */
};

static atomic_uint_fast64_t total_held, total_failed;
static atomic_uint_fast64_t total_new_held, total_new_failed;

enum ts_status guess_new(size_t slots, struct guess **out) {
  *out = NULL;
  if (slots == 0)
    return TS_ERR_INVALID;
  struct guess *g = calloc(1, sizeof *g);
  if (!g)
    return TS_ERR_NOMEM;
  g->ways = slots < TS_GUESS_WAYS ? slots : TS_GUESS_WAYS;
  slots -= slots % g->ways;
  g->slots = calloc(slots, sizeof *g->slots);
  if (!g->slots || pthread_mutex_init(&g->mu, NULL) != 0) {
    free(g->slots);
    free(g);
    return TS_ERR_NOMEM;
  }
  g->n_slots = slots;
  *out = g;
  return TS_OK;
}

void guess_item_clear(struct guess_item *it) {
  if (!it)
    return;
  free(it->recent);
  free(it->chunks);
  memset(it, 0, sizeof *it);
}

static void slot_clear(struct slot *s) {
  free(s->player);
  s->player = NULL;
  guess_item_clear(&s->it);
}

void guess_free(struct guess *g) {
  if (!g)
    return;
  for (size_t i = 0; i < g->n_slots; i++)
    slot_clear(&g->slots[i]);
  free(g->slots);
  pthread_mutex_destroy(&g->mu);
  free(g);
}

/* FNV-1a: the first slot of a name's set. */
static struct slot *set_of(struct guess *g, const char *player) {
  uint64_t h = hash_fnv1a(HASH_FNV1A_INIT, player, strlen(player));
  return &g->slots[h % (g->n_slots / g->ways) * g->ways];
}

static bool holds(const struct slot *s, const char *player) {
  return s && s->player && strcmp(s->player, player) == 0;
}

/* The slot holding player's entry, or NULL. */
static struct slot *find(struct guess *g, const char *player) {
  struct slot *set = set_of(g, player);
  for (size_t i = 0; i < g->ways; i++)
    if (holds(&set[i], player))
      return &set[i];
  return NULL;
}

/* Where player's entry goes: its own slot, else an empty one, else the
 * set's least recently used. */
static struct slot *place(struct guess *g, const char *player) {
  struct slot *set = set_of(g, player), *best = &set[0];
  for (size_t i = 0; i < g->ways; i++) {
    if (holds(&set[i], player))
      return &set[i];
    if (best->player && (!set[i].player || set[i].used < best->used))
      best = &set[i];
  }
  return best;
}

/* A copy of n bytes (NULL for none); false on NOMEM. */
static bool dup_bytes(const unsigned char *from, size_t n, unsigned char **to) {
  *to = NULL;
  if (n == 0)
    return true;
  *to = malloc(n);
  if (!*to)
    return false;
  memcpy(*to, from, n);
  return true;
}

static bool item_copy(const struct guess_item *from, struct guess_item *to) {
  *to = *from;
  to->recent = to->chunks = NULL;
  if (dup_bytes(from->recent, from->recent_len, &to->recent) &&
      dup_bytes(from->chunks, from->chunks_len, &to->chunks))
    return true;
  guess_item_clear(to);
  return false;
}

void guess_note_write(struct guess *g, const char *player,
                      const struct guess_item *it) {
  struct guess_item copy;
  bool fits = it->recent_len + it->chunks_len <= TS_GUESS_MAX_LOG_BYTES;
  bool copied = fits && item_copy(it, &copy);
  char *name = copied ? strdup(player) : NULL;
  pthread_mutex_lock(&g->mu);
  struct slot *s = place(g, player);
  if (holds(s, player) && s->it.version >= it->version) {
    /* a newer write of ours is already here */
  } else if (name) {
    slot_clear(s);
    s->player = name;
    s->used = ++g->clock;
    s->it = copy;
    name = NULL;
    copied = false;
  } else if (holds(s, player)) {
    slot_clear(s); /* too big to keep, or NOMEM: the old entry is stale */
  }
  pthread_mutex_unlock(&g->mu);
  free(name);
  if (copied)
    guess_item_clear(&copy);
}

void guess_forget(struct guess *g, const char *player) {
  pthread_mutex_lock(&g->mu);
  struct slot *s = find(g, player);
  if (s)
    slot_clear(s);
  pthread_mutex_unlock(&g->mu);
}

enum ts_status guess_take(struct guess *g, const char *player,
                          struct guess_item *out) {
  memset(out, 0, sizeof *out);
  enum ts_status st = TS_ERR_NOT_FOUND;
  pthread_mutex_lock(&g->mu);
  struct slot *s = find(g, player);
  if (g->trust >= TS_GUESS_TRUST_MIN && s) {
    s->used = ++g->clock;
    st = item_copy(&s->it, out) ? TS_OK : TS_ERR_NOMEM;
  }
  pthread_mutex_unlock(&g->mu);
  return st;
}

/* Under mu: a score (trust or trust_new) after one piece of evidence. */
static void judge_score(int *score, bool right) {
  *score += right ? 1 : -TS_GUESS_WRONG_COST;
  if (*score > TS_GUESS_TRUST_MAX)
    *score = TS_GUESS_TRUST_MAX;
  if (*score < 0)
    *score = 0;
}

static void judge(struct guess *g, bool right) {
  judge_score(&g->trust, right);
}

void guess_note_read(struct guess *g, const char *player, int64_t version,
                     const char *updated_at) {
  pthread_mutex_lock(&g->mu);
  struct slot *s = find(g, player);
  if (s) {
    bool right = s->it.version == version && updated_at &&
                 strcmp(s->it.updated_at, updated_at) == 0;
    judge(g, right);
    if (!right && s->it.version <= version)
      slot_clear(s); /* another writer moved on: what we hold is stale */
  }
  pthread_mutex_unlock(&g->mu);
}

void guess_note_held(struct guess *g) { guess_note_verdict(g, true); }

bool guess_note_failed(struct guess *g, const char *player, int64_t version) {
  pthread_mutex_lock(&g->mu);
  struct slot *s = find(g, player);
  bool own_race = s && s->it.version > version;
  if (s && !own_race)
    slot_clear(s);
  pthread_mutex_unlock(&g->mu);
  if (own_race)
    atomic_fetch_add(&total_failed, 1);
  return !own_race;
}

void guess_note_verdict(struct guess *g, bool right) {
  atomic_fetch_add(right ? &total_held : &total_failed, 1);
  pthread_mutex_lock(&g->mu);
  judge(g, right);
  pthread_mutex_unlock(&g->mu);
}

bool guess_take_new(struct guess *g, const char *player) {
  pthread_mutex_lock(&g->mu);
  bool take = g->trust_new >= TS_GUESS_TRUST_MIN && !find(g, player);
  pthread_mutex_unlock(&g->mu);
  return take;
}

void guess_note_unknown_read(struct guess *g, const char *player, bool found) {
  pthread_mutex_lock(&g->mu);
  if (!find(g, player))
    judge_score(&g->trust_new, !found);
  pthread_mutex_unlock(&g->mu);
}

void guess_note_new_outcome(struct guess *g, bool held) {
  atomic_fetch_add(held ? &total_new_held : &total_new_failed, 1);
  pthread_mutex_lock(&g->mu);
  judge_score(&g->trust_new, held);
  pthread_mutex_unlock(&g->mu);
}

void guess_new_counts(uint64_t *held, uint64_t *failed) {
  *held = atomic_load(&total_new_held);
  *failed = atomic_load(&total_new_failed);
}

bool guess_new_trusted(struct guess *g) {
  pthread_mutex_lock(&g->mu);
  bool t = g->trust_new >= TS_GUESS_TRUST_MIN;
  pthread_mutex_unlock(&g->mu);
  return t;
}

void guess_counts(uint64_t *held, uint64_t *failed) {
  *held = atomic_load(&total_held);
  *failed = atomic_load(&total_failed);
}

bool guess_trusted(struct guess *g) {
  pthread_mutex_lock(&g->mu);
  bool t = g->trust >= TS_GUESS_TRUST_MIN;
  pthread_mutex_unlock(&g->mu);
  return t;
}
