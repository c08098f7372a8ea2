/* Leaderboards of a store that cannot sort (DynamoDB): a per-process
 * snapshot of the top K players of each ranking, refreshed in the
 * background by one streaming Scan, with this process's own writes folded
 * in as they happen. Not for callers outside store/.
 *
 * Two types:
 *   struct rank_set    the top K rows of every ranking, in the order of
 *                      store_leaderboard() (key descending, then name in
 *                      byte order; players without games are not ranked).
 *                      Rows are folded in any order, any number at a
 *                      time; memory stays O(K). Not thread-safe.
 *   struct rank_cache  the live rank_set of a process, its refresher
 *                      thread and the rules for when to refresh.
 *                      Thread-safe.
 *
 * Exactness: besides its rows a ranking keeps a floor, the best row it
 * ever dropped (or none: it has seen every ranked player). Every player
 * it does not hold sorts after the floor, so the rows it holds are the
 * true top positions. A player that moves down past the floor leaves the
 * set: the positions known exactly shrink until the next refresh. */
#ifndef TS_STORE_RANK_CACHE_H
#define TS_STORE_RANK_CACHE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* One player's row as read or written, with the item's version (0 for an
 * item without one); a row never replaces a row of a higher version. */
struct rank_row {
  const char *player; /* borrowed */
  struct stats stats;
  const char *updated_at; /* borrowed, RFC 3339 */
  int64_t version;
};

struct rank_set;

/* An empty set keeping k rows per ranking (k >= 1). */
enum ts_status rank_set_new(size_t k, struct rank_set **out) TS_WARN_UNUSED;
void rank_set_free(struct rank_set *s);

/* Folds rows (copied) into every ranking: a player's row is replaced by a
 * newer one and re-sorted; a row that sorts after the floor, or has no
 * games, is not kept. On an error the set is unchanged. */
enum ts_status rank_set_fold(struct rank_set *s, const struct rank_row *rows,
                             size_t n) TS_WARN_UNUSED;

/* How many leading positions of ranking `by` are known exactly: SIZE_MAX
 * when the set holds every ranked player, else the rows held. */
size_t rank_set_known(const struct rank_set *s, enum store_rank by);

/* Copies the first min(limit, rows held) rows of ranking `by`; the caller
 * frees them with player_rows_free(*rows, *n). */
enum ts_status rank_set_top(const struct rank_set *s, enum store_rank by,
                            size_t limit, struct player_row **rows,
                            size_t *n) TS_WARN_UNUSED;

/* Fills `into` (a new, empty set) from the whole table, one page at a
 * time through rank_set_fold; stops early with TS_ERR_UNAVAILABLE once
 * *stop is true. Runs on the refresher thread. */
typedef enum ts_status (*rank_cache_scan_fn)(void *cls, struct rank_set *into,
                                             const atomic_bool *stop);

struct rank_cache_options {
  size_t k;            /* rows per ranking */
  uint32_t refresh_ms; /* a snapshot older than this is refreshed */
  uint32_t wait_ms;    /* longest a request waits for a refresh it needs */
  size_t journal_max;  /* rows written kept for the refresh in flight */
  uint32_t grace_ms;   /* and written this long before it began */
  rank_cache_scan_fn scan;
  void *scan_cls; /* borrowed; must outlive the cache */
};

struct rank_cache;

/* A cache with no snapshot. Nothing is read until the first
 * rank_cache_top(); the refresher thread starts then. */
enum ts_status rank_cache_new(const struct rank_cache_options *opt,
                              struct rank_cache **out) TS_WARN_UNUSED;
/* Stops the refresher (a Scan in flight ends at its next page) and joins
 * it. NULL is accepted. */
void rank_cache_free(struct rank_cache *c);

/* The top `limit` of ranking `by`, like store_leaderboard(). Answers from
 * the snapshot at once when it knows `limit` positions exactly, and starts
 * one background refresh when the snapshot is older than refresh_ms.
 * Otherwise (no snapshot yet, or players of this process moved down out of
 * it) it asks for a refresh and waits up to wait_ms: then the rows known
 * exactly (possibly fewer than asked), or TS_ERR_UNAVAILABLE with no
 * snapshot at all. */
enum ts_status rank_cache_top(struct rank_cache *c, enum store_rank by,
                              size_t limit, struct player_row **rows,
                              size_t *n) TS_WARN_UNUSED;

/* Read-your-writes: folds rows this process has just written into the
 * snapshot, and keeps them for the next refresh, whose Scan may have
 * passed them or (eventually consistent) read an older item: rows written
 * while it runs or within grace_ms before it began are folded into its
 * result. No-op before the first rank_cache_top(). */
enum ts_status rank_cache_note(struct rank_cache *c,
                               const struct rank_row *rows,
                               size_t n) TS_WARN_UNUSED;

#endif /* TS_STORE_RANK_CACHE_H */
