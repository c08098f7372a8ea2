/* The newest applied pairs, in memory (see recent.h).
 *
 * Pairs live in an array in the order they were added: [0, committed) are
 * committed, [committed, n) pending. An open-addressing table maps a key to
 * the index of its newest pair; it is rebuilt whenever indexes move (a
 * cycle's end, a drop, a rollback that removed pairs), which is rare next
 * to the adds. */
#include "recent.h"

#include <stdlib.h>
#include <string.h>

#include "../common/hash.h"

struct entry {
  uint64_t h;
  int64_t applied_at, rowid;
  size_t player_len;
  char key[]; /* player, NUL, event_id, NUL */
};

/* An entry of a cycle's order, with the first eight bytes of its player
 * (zero after its NUL) as a big-endian number, so that the sort compares
 * two different players without reading either entry: a cycle sorts some
 * 16,000 entries scattered over the heap, and reading them at each of the
 * sort's comparisons was most of its cost. */
struct sorted {
  uint64_t prefix;
  struct entry *e;
};

struct recent {
  struct entry **e;
  size_t n, committed, cap;
  uint32_t *slot; /* index + 1 of a key's newest entry; 0 empty */
  size_t n_slots; /* a power of two, at least twice n */
  /* The cycle: order[0, snap) is the first snap entries sorted by key;
   * pos were merged by committed transactions, pos_tx so far in this one. */
  struct sorted *order;
  size_t snap, pos, pos_tx;
  size_t drop_tx; /* entries [0, drop_tx) leave at commit */
};

static const char *event_of(const struct entry *e) {
  return e->key + e->player_len + 1;
}

static uint64_t key_hash(const char *player, size_t player_len,
                         const char *event_id, size_t event_len) {
  /* The NUL between the two keeps ("ab","c") apart from ("a","bc"). */
  return hash_fnv1a(hash_fnv1a(HASH_FNV1A_INIT, player, player_len + 1),
                    event_id, event_len);
}

static bool same_key(const struct entry *e, const char *player,
                     size_t player_len, const char *event_id) {
  return e->player_len == player_len &&
         memcmp(e->key, player, player_len) == 0 &&
         strcmp(event_of(e), event_id) == 0;
}

/* The key's slot: the one of its newest entry (*found), or the empty one
 * where it would go (*found NULL). */
static size_t find_slot(const struct recent *r, uint64_t h, const char *player,
                        size_t player_len, const char *event_id,
                        const struct entry **found) {
  size_t mask = r->n_slots - 1;
  for (size_t s = h & mask;; s = (s + 1) & mask) {
    uint32_t at = r->slot[s];
    *found = at ? r->e[at - 1] : NULL;
    if (!*found ||
        ((*found)->h == h && same_key(*found, player, player_len, event_id)))
      return s;
  }
}

/* Points the table at index i for e's key (the newest wins). */
static void place(struct recent *r, size_t i) {
  const struct entry *e = r->e[i], *old;
  size_t s = find_slot(r, e->h, e->key, e->player_len, event_of(e), &old);
  r->slot[s] = (uint32_t)(i + 1);
}

/* Rebuilds the table for n entries, with at least want slots. */
static enum ts_status rebuild(struct recent *r, size_t want) {
  size_t n_slots = r->n_slots ? r->n_slots : 64;
  while (n_slots < want)
    n_slots *= 2;
  if (n_slots != r->n_slots) {
    uint32_t *slot = calloc(n_slots, sizeof *slot);
    if (!slot)
      return TS_ERR_NOMEM;
    free(r->slot);
    r->slot = slot;
    r->n_slots = n_slots;
  } else {
    memset(r->slot, 0, n_slots * sizeof *r->slot);
  }
  for (size_t i = 0; i < r->n; i++)
    place(r, i);
  return TS_OK;
}

struct recent *recent_new(void) {
  struct recent *r = calloc(1, sizeof *r);
  if (r && rebuild(r, 64) != TS_OK) {
    free(r);
    r = NULL;
  }
  return r;
}

static void end_cycle(struct recent *r) {
  free(r->order);
  r->order = NULL;
  r->snap = r->pos = r->pos_tx = 0;
}

void recent_free(struct recent *r) {
  if (!r)
    return;
  for (size_t i = 0; i < r->n; i++)
    free(r->e[i]);
  free(r->e);
  free(r->slot);
  free(r->order);
  free(r);
}

enum ts_status recent_add(struct recent *r, const char *player,
                          const char *event_id, int64_t applied_at,
                          int64_t rowid, int64_t cutoff, bool *seen) {
  size_t player_len = strlen(player), event_len = strlen(event_id);
  *seen = false;
  if (r->n >= UINT32_MAX - 1)
    return TS_ERR_TOO_LARGE;
  if (r->n == r->cap) {
    size_t cap = r->cap ? 2 * r->cap : 256;
    struct entry **e = realloc(r->e, cap * sizeof *e);
    if (!e)
      return TS_ERR_NOMEM;
    r->e = e;
    r->cap = cap;
  }
  /* Grow the table before adding, so that a failure leaves r as it was. */
  if (2 * (r->n + 1) > r->n_slots && rebuild(r, 2 * (r->n + 1)) != TS_OK)
    return TS_ERR_NOMEM;
  uint64_t h = key_hash(player, player_len, event_id, event_len);
  const struct entry *old;
  size_t s = find_slot(r, h, player, player_len, event_id, &old);
  if (old && (*seen = old->applied_at >= cutoff))
    return TS_OK; /* else expired: the new pair takes the key's slot */
  struct entry *e = malloc(sizeof *e + player_len + event_len + 2);
  if (!e)
    return TS_ERR_NOMEM;
  e->h = h;
  e->applied_at = applied_at;
  e->rowid = rowid;
  e->player_len = player_len;
  memcpy(e->key, player, player_len + 1);
  memcpy(e->key + player_len + 1, event_id, event_len + 1);
  r->e[r->n] = e;
  r->slot[s] = (uint32_t)(++r->n);
  return TS_OK;
}

bool recent_seen(const struct recent *r, const char *player,
                 const char *event_id, int64_t cutoff) {
  size_t player_len = strlen(player);
  const struct entry *e;
  (void)find_slot(r, key_hash(player, player_len, event_id, strlen(event_id)),
                  player, player_len, event_id, &e);
  return e && e->applied_at >= cutoff;
}

size_t recent_count(const struct recent *r) { return r->n; }

size_t recent_cycle_size(const struct recent *r) { return r->snap; }

static uint64_t prefix_of(const struct entry *e) {
  uint64_t v = 0;
  size_t n = e->player_len < 8 ? e->player_len : 8;
  for (size_t i = 0; i < 8; i++)
    v = v << 8 | (i < n ? (unsigned char)e->key[i] : 0u);
  return v;
}

/* Key order, as strcmp on the player then on the event_id: equal prefixes
 * of players shorter than eight bytes are equal players. */
static int by_key(const void *a, const void *b) {
  const struct sorted *x = a, *y = b;
  if (x->prefix != y->prefix)
    return x->prefix < y->prefix ? -1 : 1;
  int c = x->e->player_len < 8 && y->e->player_len < 8
              ? 0
              : strcmp(x->e->key, y->e->key);
  return c ? c : strcmp(event_of(x->e), event_of(y->e));
}

enum ts_status recent_cycle_start(struct recent *r) {
  if (r->snap > 0 || r->n != r->committed || r->n == 0)
    return TS_ERR_INVALID;
  struct sorted *order = malloc(r->n * sizeof *order);
  if (!order)
    return TS_ERR_NOMEM;
  for (size_t i = 0; i < r->n; i++)
    order[i] = (struct sorted){.prefix = prefix_of(r->e[i]), .e = r->e[i]};
  qsort(order, r->n, sizeof *order, by_key);
  r->order = order;
  r->snap = r->n;
  r->pos = r->pos_tx = 0;
  return TS_OK;
}

enum ts_status recent_slice(struct recent *r, size_t max,
                            enum ts_status (*put)(void *cls,
                                                  const struct recent_pair *p),
                            void *cls, bool *last, int64_t *max_rowid) {
  *last = false;
  *max_rowid = 0;
  if (r->snap == 0)
    return TS_OK;
  size_t end = r->pos_tx + max < r->snap ? r->pos_tx + max : r->snap;
  for (; r->pos_tx < end; r->pos_tx++) {
    const struct entry *e = r->order[r->pos_tx].e;
    struct recent_pair p = {
        .player = e->key, .event_id = event_of(e), .applied_at = e->applied_at};
    enum ts_status st = put(cls, &p);
    if (st != TS_OK)
      return st;
  }
  if (r->pos_tx == r->snap) {
    *last = true;
    for (size_t i = 0; i < r->snap; i++)
      if (r->e[i]->rowid > *max_rowid)
        *max_rowid = r->e[i]->rowid;
    r->drop_tx = r->snap;
  }
  return TS_OK;
}

void recent_drop_committed(struct recent *r) { r->drop_tx = r->committed; }

void recent_commit(struct recent *r) {
  r->pos = r->pos_tx;
  size_t drop = r->drop_tx;
  r->drop_tx = 0;
  r->committed = r->n;
  if (drop == 0)
    return;
  /* Whatever drops the snapshot's entries ends the cycle. */
  if (r->snap > 0 && drop >= r->snap)
    end_cycle(r);
  for (size_t i = 0; i < drop; i++)
    free(r->e[i]);
  memmove(r->e, r->e + drop, (r->n - drop) * sizeof *r->e);
  r->n -= drop;
  r->committed = r->n;
  /* Same size: rebuilding cannot fail. */
  (void)rebuild(r, r->n_slots);
}

void recent_rollback(struct recent *r) {
  r->pos_tx = r->pos;
  r->drop_tx = 0;
  if (r->n == r->committed)
    return;
  for (size_t i = r->committed; i < r->n; i++)
    free(r->e[i]);
  r->n = r->committed;
  (void)rebuild(r, r->n_slots);
}
