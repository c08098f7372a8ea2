/* Player turns: the names held, in one open-addressing table (linear
 * probing, deletion by backward shift, so no tombstones) under one mutex,
 * with one condition variable for every waiter. See turns.h. */
#include "turns.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "../common/clock.h"
#include "../common/hash.h"

struct slot {
  uint64_t h;
  const char *name; /* borrowed; NULL: empty */
};

struct turns {
  pthread_mutex_t mu;
  pthread_cond_t released;
  struct slot *slots;
  size_t mask, held;
  uint64_t seed, epoch;
  unsigned waiters;
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
                     enum turn *got) {
  pthread_mutex_lock(&t->mu);
  for (size_t k = 0; k < n; k++) {
    uint64_t h = name_hash(t, names[k]);
    size_t i = find(t, h, names[k]);
    if (t->slots[i].name)
      got[k] = TURN_BUSY;
    else if (t->held < t->mask) { /* one slot stays empty: probes end */
      t->slots[i] = (struct slot){h, names[k]};
      t->held++;
      got[k] = TURN_MINE;
    } else
      got[k] = TURN_UNORDERED;
  }
  uint64_t epoch = t->epoch;
  pthread_mutex_unlock(&t->mu);
  return epoch;
}

/* Empties slot i, moving back the entries after it that would otherwise
 * no longer be found from their home slot. */
static void remove_at(struct turns *t, size_t i) {
  size_t j = i;
  for (;;) {
    t->slots[i].name = NULL;
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

void turns_release(struct turns *t, const char *const *names, size_t n) {
  pthread_mutex_lock(&t->mu);
  for (size_t k = 0; k < n; k++) {
    size_t i = find(t, name_hash(t, names[k]), names[k]);
    if (t->slots[i].name) {
      remove_at(t, i);
      t->held--;
    }
  }
  t->epoch++;
  if (t->waiters > 0)
    pthread_cond_broadcast(&t->released);
  pthread_mutex_unlock(&t->mu);
}

enum ts_status turns_wait(struct turns *t, uint64_t epoch,
                          uint64_t deadline_ms) {
  pthread_mutex_lock(&t->mu);
  t->waiters++;
  while (t->epoch == epoch && clock_now_ms() < deadline_ms)
    clock_cond_wait_until(&t->released, &t->mu, deadline_ms);
  t->waiters--;
  enum ts_status st = t->epoch != epoch ? TS_OK : TS_ERR_UNAVAILABLE;
  pthread_mutex_unlock(&t->mu);
  return st;
}

size_t turns_held(struct turns *t) {
  pthread_mutex_lock(&t->mu);
  size_t n = t->held;
  pthread_mutex_unlock(&t->mu);
  return n;
}
