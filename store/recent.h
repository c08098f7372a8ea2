/* The embedded store's newest applied (player, eventID) pairs, in memory.
 * Not for callers outside store/.
 *
 * Why: the exactly-once log is a b-tree keyed by (player, eventID), so every
 * applied record dirtied a leaf page of its own, written whole to the WAL at
 * each commit: with batches of 100 over a thousand players, seven of every
 * ten pages a transaction wrote. The SQLite store appends each new pair to a
 * rowid table instead (appends share a page or two per transaction), keeps
 * the pairs here for its lookups, and moves them into the keyed table in
 * cycles, in key order and a slice per transaction, so that one leaf write
 * carries many pairs.
 *
 * Transactions: what recent_add adds, what a slice hands out and what
 * recent_drop_committed drops take effect at recent_commit (the store's
 * transaction committed) and are undone by recent_rollback.
 *
 * A cycle: recent_cycle_start snapshots the committed pairs in key order;
 * recent_slice hands out the next ones. Once the slice that ends the cycle
 * is committed, the snapshot's pairs leave memory: the store deletes their
 * rows (rowid <= the snapshot's highest) in that same transaction.
 *
 * Not thread-safe: the store's writer lock guards it. */
#ifndef TS_STORE_RECENT_H
#define TS_STORE_RECENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/status.h"

struct recent;

struct recent_pair {
  const char *player, *event_id;
  int64_t applied_at; /* unix seconds */
};

/* NULL when out of memory. */
struct recent *recent_new(void);
void recent_free(struct recent *r);

/* Adds a pair applied at applied_at, its row's rowid; pending. The newest
 * pair of a key is the one recent_seen judges. When the pair is already
 * here with applied_at >= cutoff (as recent_seen would say), sets *seen and
 * adds nothing: one lookup for the check and the add. */
enum ts_status recent_add(struct recent *r, const char *player,
                          const char *event_id, int64_t applied_at,
                          int64_t rowid, int64_t cutoff,
                          bool *seen) TS_WARN_UNUSED;

/* Whether the pair is here with applied_at >= cutoff (pending included). */
bool recent_seen(const struct recent *r, const char *player,
                 const char *event_id, int64_t cutoff);

/* Pairs held, pending included. */
size_t recent_count(const struct recent *r);

/* The pairs of the cycle under way (its snapshot, moved or not); 0: none. */
size_t recent_cycle_size(const struct recent *r);

/* Starts a cycle over the committed pairs. Only between transactions' work
 * (nothing pending) and when no cycle is under way. */
enum ts_status recent_cycle_start(struct recent *r) TS_WARN_UNUSED;

/* Hands the next at most max pairs of the cycle, in key order, to put (the
 * pair's strings live until the cycle ends). *last is set when they end
 * the cycle, with *max_rowid the highest rowid of its snapshot. Stops at
 * put's first error and returns it. */
enum ts_status
recent_slice(struct recent *r, size_t max,
             enum ts_status (*put)(void *cls, const struct recent_pair *p),
             void *cls, bool *last, int64_t *max_rowid) TS_WARN_UNUSED;

/* Every committed pair was moved out whole (their rows are gone): at
 * commit they leave, and any cycle ends. Before the transaction adds. */
void recent_drop_committed(struct recent *r);

void recent_commit(struct recent *r);
void recent_rollback(struct recent *r);

#endif /* TS_STORE_RECENT_H */
