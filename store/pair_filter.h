/* A Bloom filter over (player, eventID) pairs: the embedded store's proof
 * that a pair is NOT in applied_events, without a b-tree lookup. Not for
 * callers outside store/.
 *
 * Why: a new record's duplicate check looked its pair up in applied_events,
 * a b-tree of every pair within the retention, and nearly always missed:
 * about a quarter of the writer's time in batches (docs/BENCHMARKS.md,
 * change 24). A filter answers "certainly not" from one 64-bit word.
 *
 * Contract: no false negatives. Every pair added answers true; a pair not
 * added answers false except for a small share of false positives, which
 * only cost the lookup the filter would have spared. Pairs cannot be
 * removed: a purged pair stays a false positive until the filter is built
 * again. The store decides when the filter holds everything
 * (store/sqlite.c); this module only sets and tests bits.
 *
 * Hashes start from hash_seed(), so a client cannot choose pairs that are
 * all false positives. Not thread-safe: the store's writer lock guards it. */
#ifndef TS_STORE_PAIR_FILTER_H
#define TS_STORE_PAIR_FILTER_H

#include <stdbool.h>
#include <stddef.h>

struct pair_filter;

/* A filter sized for capacity pairs (16 bits each); NULL when out of
 * memory. */
struct pair_filter *pair_filter_new(size_t capacity);
void pair_filter_free(struct pair_filter *f);

void pair_filter_add(struct pair_filter *f, const char *player,
                     const char *event_id);

/* False: the pair was never added. True: it may have been. */
bool pair_filter_may_hold(const struct pair_filter *f, const char *player,
                          const char *event_id);

/* Pairs added since pair_filter_new (repeats counted), and the capacity:
 * past it, false positives grow and the filter is due to be built again. */
size_t pair_filter_added(const struct pair_filter *f);
size_t pair_filter_capacity(const struct pair_filter *f);

#endif /* TS_STORE_PAIR_FILTER_H */
