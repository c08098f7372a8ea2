/* A blocked Bloom filter (see pair_filter.h): a pair's hash picks one
 * 64-bit word and four bits in it, so that a test touches one cache line.
 * At 16 bits a pair (four pairs a word on average) about 1-2% of absent
 * pairs test true while the filter is within its capacity. */
#include "pair_filter.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../common/hash.h"

struct pair_filter {
  uint64_t *words;
  size_t n_words;
  size_t capacity, added;
  uint64_t seed;
};

struct pair_filter *pair_filter_new(size_t capacity) {
  struct pair_filter *f = malloc(sizeof *f);
  if (!f)
    return NULL;
  f->n_words = capacity / 4 + 1;
  f->words = calloc(f->n_words, sizeof *f->words);
  if (!f->words) {
    free(f);
    return NULL;
  }
  f->capacity = capacity;
  f->added = 0;
  f->seed = hash_seed();
  return f;
}

void pair_filter_free(struct pair_filter *f) {
  if (!f)
    return;
  free(f->words);
  free(f);
}

static uint64_t pair_hash(const struct pair_filter *f, const char *player,
                          const char *event_id) {
  /* The NUL between the two keeps ("ab","c") apart from ("a","bc"). */
  uint64_t h = hash_fnv1a(f->seed, player, strlen(player) + 1);
  return hash_mix(hash_fnv1a(h, event_id, strlen(event_id)));
}

/* The word: the high half of h scaled to n_words (no division); the
 * bits: four 6-bit fields of the low half. */
static size_t word_of(const struct pair_filter *f, uint64_t h) {
  return (size_t)(((h >> 32) * (uint64_t)f->n_words) >> 32);
}

static uint64_t mask_of(uint64_t h) {
  return (UINT64_C(1) << (h & 63)) | (UINT64_C(1) << ((h >> 6) & 63)) |
         (UINT64_C(1) << ((h >> 12) & 63)) | (UINT64_C(1) << ((h >> 18) & 63));
}

void pair_filter_add(struct pair_filter *f, const char *player,
                     const char *event_id) {
  uint64_t h = pair_hash(f, player, event_id);
  f->words[word_of(f, h)] |= mask_of(h);
  f->added++;
}

bool pair_filter_may_hold(const struct pair_filter *f, const char *player,
                          const char *event_id) {
  uint64_t h = pair_hash(f, player, event_id);
  uint64_t m = mask_of(h);
  return (f->words[word_of(f, h)] & m) == m;
}

size_t pair_filter_added(const struct pair_filter *f) { return f->added; }

size_t pair_filter_capacity(const struct pair_filter *f) { return f->capacity; }
