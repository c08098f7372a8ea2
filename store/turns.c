/* Player turns: the names held or waited for, in one open-addressing
 * table (linear probing, deletion by backward shift, so no tombstones)
 * under one mutex, with one condition variable for every waiter. See
 * turns.h.
 *
 * The line: a slot keeps the oldest ticket that found its name busy and
 * will wait for it. A name released while that ticket sleeps in
 * turns_wait stays kept for it (or for an older one), so a batch that
 * waits is not overtaken, again and again, by batches that came after it.
 * A name released while its first in line is awake (busy with a round of
 * other players, which may take seconds under throttling) is not kept: it
 * goes to whoever claims it, and the first in line takes a place again at
 * its next claim. A ticket also leaves the line when it claims the name,
 * when an older ticket takes its place (it then takes a place again at
 * its next claim, behind only older ones), or with turns_leave. */
#include "turns.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "../common/clock.h"
#include "../common/hash.h"

struct slot {
  uint64_t h;
  /* Borrowed from the holder, or from the first in line when not held
   * (first_name): the slot never outlives the claimants that lent them.
   * NULL: empty. */
  const char *name, *first_name;
  uint64_t first; /* the ticket first in line; 0: no line */
  bool held;
};

/* A caller asleep in turns_wait, on its stack. */
struct sleeper {
  uint64_t ticket;
  struct sleeper *next;
};

struct turns {
  pthread_mutex_t mu;
  struct sleeper *sleepers;
  pthread_cond_t released;
  struct slot *slots;
  size_t mask, used; /* used: slots held or kept for a sleeper */
  uint64_t seed, epoch, tickets;
};

enum ts_status turns_new(size_t slots, struct turns **out) {
  *out = NULL;
  if (slots < 2 || (slots & (slots - 1)) != 0)
    return TS_ERR_INVALID;
  struct turns *t = calloc(1, sizeof *t);
  bool cv_ok = false;
  if (!t || !(t->slots = calloc(slots, sizeof *t->slots)) ||
      !(cv_ok = clock_cond_init(&t->released)) ||
      pthread_mutex_init(&t->mu, NULL) != 0)
    goto fail;
  t->mask = slots - 1;
  t->seed = hash_seed();
  *out = t;
  return TS_OK;
fail:
  if (cv_ok)
    pthread_cond_destroy(&t->released);
  if (t)
    free(t->slots);
  free(t);
  return TS_ERR_NOMEM;
}

void turns_free(struct turns *t) {
  if (!t)
    return;
  pthread_cond_destroy(&t->released);
  pthread_mutex_destroy(&t->mu);
  free(t->slots);
  free(t);
}

static uint64_t name_hash(const struct turns *t, const char *name) {
  return hash_mix(hash_fnv1a(t->seed, name, strlen(name)));
}

/* The slot holding name, or the empty slot where its probe ends. */
static size_t find(const struct turns *t, uint64_t h, const char *name) {
  size_t i = h & t->mask;
  while (t->slots[i].name &&
         (t->slots[i].h != h || strcmp(t->slots[i].name, name) != 0))
    i = (i + 1) & t->mask;
  return i;
}

uint64_t turns_claim(struct turns *t, const char *const *names, size_t n,
                     const bool *queue, uint64_t *ticket, enum turn *got) {
  pthread_mutex_lock(&t->mu);
  if (*ticket == 0)
    *ticket = ++t->tickets;
  for (size_t k = 0; k < n; k++) {
    uint64_t h = name_hash(t, names[k]);
    size_t i = find(t, h, names[k]);
    struct slot *s = &t->slots[i];
    bool waits = !queue || queue[k];
    if (!s->name) {
      if (t->used < t->mask) { /* one slot stays empty: probes end */
        *s = (struct slot){.h = h, .name = names[k], .held = true};
        t->used++;
        got[k] = TURN_MINE;
      } else {
        got[k] = TURN_UNORDERED;
      }
    } else if (!s->held && *ticket <= s->first) {
      /* free, and this ticket is first in line (or older than the first) */
      s->held = true;
      s->name = names[k];
      if (s->first == *ticket) {
        s->first = 0;
        s->first_name = NULL;
      }
      got[k] = TURN_MINE;
    } else {
      if (waits && (s->first == 0 || *ticket < s->first)) {
        s->first = *ticket;
        s->first_name = names[k];
      }
      got[k] = TURN_BUSY;
    }
  }
  uint64_t epoch = t->epoch;
  pthread_mutex_unlock(&t->mu);
  return epoch;
}

/* Empties slot i, moving back the entries after it that would otherwise
 * no longer be found from their home slot. */
static void remove_at(struct turns *t, size_t i) {
  size_t j = i;
  t->used--;
  for (;;) {
    t->slots[i] = (struct slot){0};
    for (;;) {
      j = (j + 1) & t->mask;
      if (!t->slots[j].name)
        return;
      size_t home = t->slots[j].h & t->mask;
      /* j's entry may stay when its home lies cyclically in (i, j]. */
      bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
      if (!stays)
        break;
    }
    t->slots[i] = t->slots[j];
    i = j;
  }
}

/* Whether the caller with ticket sleeps in turns_wait (the list is as long
 * as the callers asleep: a worker or HTTP thread each at most). */
static bool asleep(const struct turns *t, uint64_t ticket) {
  for (const struct sleeper *w = t->sleepers; w; w = w->next)
    if (w->ticket == ticket)
      return true;
  return false;
}

/* A release: every sleeper looks at its claims again. */
static void wake_sleepers(struct turns *t) {
  t->epoch++;
  if (t->sleepers)
    pthread_cond_broadcast(&t->released);
}

void turns_release(struct turns *t, const char *const *names, size_t n) {
  pthread_mutex_lock(&t->mu);
  for (size_t k = 0; k < n; k++) {
    size_t i = find(t, name_hash(t, names[k]), names[k]);
    struct slot *s = &t->slots[i];
    if (!s->name || !s->held)
      continue;
    s->held = false;
    if (s->first && asleep(t, s->first))
      s->name = s->first_name; /* the holder's copy may go now */
    else /* an awake first in line takes a place again later */
      remove_at(t, i);
  }
  wake_sleepers(t);
  pthread_mutex_unlock(&t->mu);
}

void turns_leave(struct turns *t, const char *const *names, size_t n,
                 uint64_t ticket) {
  if (ticket == 0)
    return;
  pthread_mutex_lock(&t->mu);
  bool freed = false;
  for (size_t k = 0; k < n; k++) {
    size_t i = find(t, name_hash(t, names[k]), names[k]);
    struct slot *s = &t->slots[i];
    if (!s->name || s->first != ticket)
      continue;
    s->first = 0;
    s->first_name = NULL;
    if (!s->held) {
      remove_at(t, i);
      freed = true; /* those behind it may claim it now */
    }
  }
  if (freed)
    wake_sleepers(t);
  pthread_mutex_unlock(&t->mu);
}

enum ts_status turns_wait(struct turns *t, uint64_t ticket, uint64_t epoch,
                          uint64_t deadline_ms) {
  struct sleeper me = {.ticket = ticket};
  pthread_mutex_lock(&t->mu);
  me.next = t->sleepers;
  t->sleepers = &me;
  while (t->epoch == epoch && clock_now_ms() < deadline_ms)
    clock_cond_wait_until(&t->released, &t->mu, deadline_ms);
  struct sleeper **at = &t->sleepers;
  while (*at != &me)
    at = &(*at)->next;
  *at = me.next;
  enum ts_status st = t->epoch != epoch ? TS_OK : TS_ERR_UNAVAILABLE;
  pthread_mutex_unlock(&t->mu);
  return st;
}

size_t turns_held(struct turns *t) {
  size_t n = 0;
  pthread_mutex_lock(&t->mu);
  for (size_t i = 0; i <= t->mask; i++)
    n += t->slots[i].held;
  pthread_mutex_unlock(&t->mu);
  return n;
}

size_t turns_sleeping(struct turns *t) {
  size_t n = 0;
  pthread_mutex_lock(&t->mu);
  for (const struct sleeper *w = t->sleepers; w; w = w->next)
    n++;
  pthread_mutex_unlock(&t->mu);
  return n;
}
