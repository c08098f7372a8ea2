/* A narrow seam for unit tests: lets a test look inside the SQLite backend
 * and shorten its deadline. Not for production callers. */
#ifndef TS_STORE_TEST_H
#define TS_STORE_TEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

struct store_ops;

/* The backend behind a store handle (implemented in store.c). */
void *store_test_impl(struct store *s, const struct store_ops **ops);

enum store_test_table {
  STORE_TEST_DEAD_LETTERS,
  STORE_TEST_APPLIED_EVENTS,
};

/* Rows in one of the SQLite backend's bookkeeping tables.
 * TS_ERR_INVALID when s is not an SQLite store. */
enum ts_status store_test_sqlite_count(struct store *s,
                                       enum store_test_table table,
                                       int64_t *n) TS_WARN_UNUSED;

/* Replaces TS_INGEST_DEADLINE_MS for this store's store_apply calls, so a
 * test of the "never released" path runs quickly. */
void store_test_sqlite_set_apply_deadline_ms(struct store *s, uint32_t ms);

/* Starts a cycle of applied_recent once it holds merge_rows pairs and moves
 * at least slice_rows per transaction (TS_SQLITE_RECENT_MERGE_ROWS and
 * _SLICE_ROWS otherwise), and moves every pair at once past 4 * merge_rows
 * (as TS_SQLITE_RECENT_MAX_ROWS, and never past it), so a test sees cycles
 * end with few records. */
void store_test_sqlite_set_recent_rows(struct store *s, size_t merge_rows,
                                       size_t slice_rows);

/* Builds the filter of applied pairs again once other connections have
 * been quiet for ms (TS_SQLITE_FILTER_QUIET_MS otherwise); 0: at every
 * write transaction after another connection's commit. */
void store_test_sqlite_set_filter_quiet(struct store *s, uint32_t ms);
/* Rows of applied_events the purge's sweep passes per record applied
 * (SQ_PURGE_SCAN_*: at least MIN, at most MAX); 0 stops the purge. */
void store_test_sqlite_set_purge_rows(struct store *s, size_t per_record);

/* Replaces TS_SQLITE_EXPECT_WAIT_MS: how long the committer holds a
 * transaction begun for a batch on its way. */
void store_test_sqlite_set_expect_wait_ms(struct store *s, uint32_t ms);
/* Whether the committer holds such a transaction and waits for the batch. */
bool store_test_sqlite_expecting(struct store *s);

/* Whether the filter of applied pairs holds all of applied_events (it
 * answers in the next write transaction if no other connection commits). */
bool store_test_sqlite_filter_holds(struct store *s);

/* The largest filter (TS_SQLITE_FILTER_MAX_PAIRS; applied_events goes
 * without one past TS_SQLITE_FILTER_MAX_LOAD times that), and how many
 * builds the writer has begun. */
void store_test_sqlite_set_filter_max_pairs(struct store *s, size_t pairs);
uint64_t store_test_sqlite_filter_counts(struct store *s);
/* The smallest filter (TS_SQLITE_FILTER_MIN_PAIRS) and the keys a build
 * reads per transaction (0: TS_SQLITE_FILTER_SCAN_*); whether a build is
 * under way, and the most keys one transaction read for a build. */
void store_test_sqlite_set_filter_build(struct store *s, size_t min_pairs,
                                        size_t scan_rows);
bool store_test_sqlite_filter_building(struct store *s, size_t *most_rows);

/* Puts a row that is not the table's in the SQLite writer's copy of
 * rows: games games (no wins, no score) at version (0: no row). */
void store_test_sqlite_forge_row(struct store *s, const char *player,
                                 int64_t games, int64_t version);

/* How many times the SQLite writer found a player row not as it had read
 * it (its copy of rows stale; the attempt was retried). */
uint64_t store_test_sqlite_stale_rows(struct store *s);

/* The pairs the SQLite backend holds in memory (store/recent.h). */
size_t store_test_sqlite_recent_count(struct store *s);

/* How many times the SQLite store has built its leaderboards by a scan
 * (its own commits are folded in without one). */
uint64_t store_test_sqlite_board_builds(struct store *s);

/* Takes (hold) or gives back the SQLite store's writer lock, as a write
 * that is not a batch's transaction holds it (a lease, a dead letter);
 * both calls from one thread. */
void store_test_sqlite_hold_writer(struct store *s, bool hold);

/* Applies the n batches as ONE group commit would: in order, in one
 * transaction. TS_ERR_INVALID when s is not an SQLite store. */
enum ts_status store_test_sqlite_apply_group(struct store *s, struct batch **b,
                                             size_t n) TS_WARN_UNUSED;

/* The SQLite schema of version 1, to make an old database that the
 * current release must upgrade. */
const char *store_test_sqlite_schema_v1(void);

#endif /* TS_STORE_TEST_H */
