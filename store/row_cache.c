/* An open-addressing table (linear probing) of twice as many slots as it
 * may hold rows, so probes stay short. A slot counts only when its
 * generation is the table's: forgetting everything is a counter's step
 * and a new arena for the names, not a pass over the slots. */
#include "row_cache.h"

#include <stdlib.h>
#include <string.h>

#include "../common/arena.h"
#include "../common/bounds.h"
#include "../common/hash.h"

#define SLOTS (2u * TS_SQLITE_ROW_CACHE_ROWS) /* a power of two */

struct slot {
  uint64_t hash;
  const char *player; /* in names */
  uint32_t gen;       /* the slot holds a row when this is rc->gen */
  int64_t version;
  struct stats stats;
};

struct row_cache {
  struct slot *slots; /* SLOTS, allocated on first put */
  struct arena *names;
  uint32_t gen; /* starts at 1: calloc'ed slots hold nothing */
  size_t count, name_bytes;
  uint64_t seed;
};

struct row_cache *row_cache_new(void) {
  struct row_cache *rc = calloc(1, sizeof *rc);
  if (!rc)
    return NULL;
  rc->gen = 1;
  rc->seed = hash_seed();
  return rc;
}

void row_cache_free(struct row_cache *rc) {
  if (!rc)
    return;
  free(rc->slots);
  arena_free(rc->names);
  free(rc);
}

void row_cache_clear(struct row_cache *rc) {
  if (rc->count == 0)
    return;
  arena_free(rc->names);
  rc->names = NULL;
  rc->count = rc->name_bytes = 0;
  if (++rc->gen == 0) { /* wrapped: old slots could pass for new ones */
    memset(rc->slots, 0, SLOTS * sizeof *rc->slots);
    rc->gen = 1;
  }
}

size_t row_cache_count(const struct row_cache *rc) { return rc->count; }

/* The slot holding player, or the free slot where it would go. */
static struct slot *find(const struct row_cache *rc, const char *player,
                         uint64_t h) {
  for (size_t i = (size_t)h & (SLOTS - 1);; i = (i + 1) & (SLOTS - 1)) {
    struct slot *s = &rc->slots[i];
    if (s->gen != rc->gen)
      return s;
    if (s->hash == h && strcmp(s->player, player) == 0)
      return s;
  }
}

static uint64_t hash_of(const struct row_cache *rc, const char *player,
                        size_t len) {
  return hash_mix(hash_fnv1a(rc->seed, player, len));
}

bool row_cache_get(const struct row_cache *rc, const char *player,
                   struct stats *stats, int64_t *version) {
  if (rc->count == 0)
    return false;
  size_t len = strlen(player);
  const struct slot *s = find(rc, player, hash_of(rc, player, len));
  if (s->gen != rc->gen)
    return false;
  *stats = s->stats;
  *version = s->version;
  return true;
}

void row_cache_put(struct row_cache *rc, const char *player,
                   const struct stats *stats, int64_t version) {
  if (!rc->slots && !(rc->slots = calloc(SLOTS, sizeof *rc->slots)))
    return;
  size_t len = strlen(player);
  uint64_t h = hash_of(rc, player, len);
  struct slot *s = find(rc, player, h);
  if (s->gen != rc->gen) {
    if (rc->count >= TS_SQLITE_ROW_CACHE_ROWS ||
        rc->name_bytes + len + 1 > TS_SQLITE_ROW_CACHE_NAME_BYTES) {
      row_cache_clear(rc);
      s = find(rc, player, h);
    }
    if (!rc->names && !(rc->names = arena_new(len + 1))) {
      row_cache_clear(rc);
      return;
    }
    char *name = arena_strndup(rc->names, player, len);
    if (!name) {
      row_cache_clear(rc);
      return;
    }
    s->hash = h;
    s->player = name;
    s->gen = rc->gen;
    rc->count++;
    rc->name_bytes += len + 1;
  }
  s->stats = *stats;
  s->version = version;
}
