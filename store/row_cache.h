/* The embedded store writer's copy of player rows (stats and version) it
 * has read or written. Not for callers outside store/.
 *
 * Why: the decision reads every player of a batch before its write, and
 * that read (a b-tree lookup and the decoding of a row the writer itself
 * wrote moments ago) was 13-15% of the writer's time in batches
 * (docs/BENCHMARKS.md, change 26). While no other connection commits, the
 * writer's own rows are the truth, so the copy answers instead.
 *
 * Contract: this module only keeps what it is given. The store decides
 * when the copy is true (store/sqlite.c): it clears it when another
 * connection may have written (data_version moved), when a transaction
 * fails (what was put may be rolled back), and when it does not know a
 * row's new version. Bounded: past TS_SQLITE_ROW_CACHE_ROWS rows or
 * TS_SQLITE_ROW_CACHE_NAME_BYTES of names it forgets everything and fills
 * again. Not thread-safe: the store's writer lock guards it. */
#ifndef TS_STORE_ROW_CACHE_H
#define TS_STORE_ROW_CACHE_H

#include <stdbool.h>
#include <stdint.h>

#include "../domain/stats.h"

struct row_cache;

/* NULL when out of memory. */
struct row_cache *row_cache_new(void);
void row_cache_free(struct row_cache *rc);

/* Whether player's row is held; if so *stats and *version (0: the player
 * has no row) are its. */
bool row_cache_get(const struct row_cache *rc, const char *player,
                   struct stats *stats, int64_t *version);

/* Holds player's row as given, replacing what was held. Out of memory the
 * copy is emptied instead: a later get misses and the store reads. */
void row_cache_put(struct row_cache *rc, const char *player,
                   const struct stats *stats, int64_t version);

/* Forgets every row. */
void row_cache_clear(struct row_cache *rc);

/* Rows held, for tests. */
size_t row_cache_count(const struct row_cache *rc);

#endif /* TS_STORE_ROW_CACHE_H */
