/* The store interface: where per-player stats, applied eventIDs and dead
 * letters live. Two backends implement it: SQLite (embedded, the default)
 * and DynamoDB (production). Callers see only this header.
 *
 * Every function is safe to call from several threads at once. */
#ifndef TS_STORE_STORE_H
#define TS_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/status.h"
#include "../domain/batch.h"
#include "../domain/kinesis.h"
#include "../domain/stats.h"

struct store;

struct store_options {
  const char *kind;        /* "sqlite" or "dynamodb" */
  const char *sqlite_path; /* file for the embedded store; parent dirs made */
  const char *table;       /* DynamoDB stats table */
  const char *dead_letter_table; /* DynamoDB dead-letter table */
  /* DynamoDB table of spilled exactly-once chunks; NULL or "": the stats
   * table's name + "AppliedLog". */
  const char *applied_log_table;
  /* DynamoDB: seconds a leaderboard snapshot serves before a background
   * refresh; 0: TS_LEADERBOARD_REFRESH_S. */
  unsigned leaderboard_refresh_s;
  /* DynamoDB: calls in flight at once; 0: TS_DEFAULT_DDB_MAX_IN_FLIGHT. */
  unsigned ddb_max_in_flight;
};

/* One player's stored aggregate. */
struct player_row {
  char *player; /* owned */
  struct stats stats;
  char updated_at[32]; /* RFC 3339 UTC, e.g. "2026-11-27T09:17:02Z" */
  /* The backfill session state saved with the row (domain/backfill.h),
   * owned; NULL when none. Filled by store_list_players only. */
  char *session_state;
};
void player_row_clear(struct player_row *row);

/* Opens (and creates or migrates) the store. *out is owned by the caller. */
enum ts_status store_open(const struct store_options *opt,
                          struct store **out) TS_WARN_UNUSED;
void store_free(struct store *s);

/* Applies a batch exactly once and durably, then returns. Every entry's
 * outcome is set by batch_decide() (domain/decide.h) on what the store
 * read; the store writes what was decided and keeps every rejected record
 * (batch_rejected) in the dead-letter store. All or nothing: on an error
 * return nothing of the batch is committed (SQLite) or what was committed
 * is recorded so that a resend counts it as a duplicate (DynamoDB).
 * Returns TS_OK, TS_ERR_UNAVAILABLE (busy/throttled past the deadline:
 * answer 503), TS_ERR_IO, TS_ERR_NOMEM. */
enum ts_status store_apply(struct store *s, struct batch *b) TS_WARN_UNUSED;
/* store_apply, giving up (TS_ERR_UNAVAILABLE) by deadline_ms at the latest
 * (clock_now_ms() time): time a request already waited counts. */
enum ts_status store_apply_by(struct store *s, struct batch *b,
                              uint64_t deadline_ms) TS_WARN_UNUSED;

/* store_apply_by without waiting for it. TS_OK: b is queued, and
 * done(cls, st) is called exactly once with what store_apply_by would have
 * returned, on a store thread and possibly before this returns; b must stay
 * valid until then, and done must not block. Anything else: nothing was
 * queued and done is not called (TS_ERR_UNAVAILABLE: the store is closing,
 * TS_ERR_NOMEM). Only where store_can_apply_async() says so (the embedded
 * store, whose commits are local and short; a DynamoDB apply waits on the
 * network and stays on a worker). */
typedef void (*store_done_fn)(void *cls, enum ts_status st);
bool store_can_apply_async(const struct store *s);
enum ts_status store_apply_async(struct store *s, struct batch *b,
                                 uint64_t deadline_ms, store_done_fn done,
                                 void *cls) TS_WARN_UNUSED;

/* A hint: a batch for store_apply* is on its way (its body is whole and
 * about to be parsed). The embedded store's committer, if idle, begins the
 * write transaction and its housekeeping now, overlapping the parse, and
 * waits a bounded time for the batch (TS_SQLITE_EXPECT_WAIT_MS). Nothing
 * depends on the batch coming: without it the housekeeping commits alone.
 * A no-op elsewhere. */
void store_expect_write(struct store *s);

/* DynamoDB writes made without reading the item first (store/guess.h),
 * process-wide: whose condition held, and whose failed (then the item was
 * read and written as usual). Zero on SQLite. */
void store_write_guess_counts(uint64_t *held, uint64_t *failed);
/* The same for new players written without a read first. */
void store_new_player_guess_counts(uint64_t *held, uint64_t *failed);

/* DynamoDB player writes that lost their condition to another writer (the
 * batch's player was then read and decided again), process-wide. Zero on
 * SQLite, whose one writer never loses. */
uint64_t store_lost_write_count(void);

/* DynamoDB players that waited for another batch of this process to write
 * them first (store/turns.h), process-wide. Zero on SQLite. */
uint64_t store_turn_wait_count(void);

/* SQLite write transactions begun before their batch came (on
 * store_expect_write, or after a group of HTTP batches), process-wide:
 * those a batch came for, and those whose housekeeping committed alone.
 * Zero on DynamoDB. */
void store_early_transaction_counts(uint64_t *with_batch, uint64_t *alone);

/* Reads one player. TS_ERR_NOT_FOUND if the player has no row.
 * On TS_OK the caller owns *out and clears it with player_row_clear(). */
enum ts_status store_get_player(struct store *s, const char *player,
                                struct player_row *out) TS_WARN_UNUSED;

/* A page of players following `after` (the last player of the previous
 * page; NULL for the first page), at most `limit` rows, in the store's key
 * order: ascending byte order of the name on SQLite, the table's (hash)
 * order on DynamoDB. Every player appears on exactly one page. *more is true
 * when rows follow the last one returned. The caller frees the rows with
 * player_rows_free(*rows, *n). */
enum ts_status store_list_players(struct store *s, const char *after,
                                  size_t limit, struct player_row **rows,
                                  size_t *n, bool *more) TS_WARN_UNUSED;
void player_rows_free(struct player_row *rows, size_t n);

/* One kept dead letter (a rejected record). */
struct dead_letter {
  char *id;              /* owned; the store's key (batch_rejected_id()) */
  char *event_id;        /* owned; NULL when the record had none */
  char *item_identifier; /* owned; NULL when none was stored */
  char *reason;          /* owned */
  char *record;          /* owned; the record's JSON text as received, maybe
                            cut for size; NULL when none was stored */
  char received_at[32];  /* RFC 3339 UTC */
};
void dead_letter_clear(struct dead_letter *d);
void dead_letters_free(struct dead_letter *rows, size_t n);

/* A page of dead letters following `after` (the `next` of the previous
 * page; NULL for the first page), at most `limit`, only those whose reason
 * is exactly `reason` when it is not NULL, in the store's key order. Every
 * dead letter appears on exactly one page. *next (owned by the caller) is
 * where the following page starts, NULL when none follows; a page may hold
 * fewer than `limit` (even none) with a *next (DynamoDB stops scanning a
 * filtered page after a time budget). Rows freed with
 * dead_letters_free(*rows, *n). */
enum ts_status store_list_dead_letters(struct store *s, const char *after,
                                       const char *reason, size_t limit,
                                       struct dead_letter **rows, size_t *n,
                                       char **next) TS_WARN_UNUSED;

/* The dead letters named by ids (n_ids of them), in the order of ids;
 * ids with no dead letter are left out. Rows freed with
 * dead_letters_free(*rows, *n). */
enum ts_status store_get_dead_letters(struct store *s, const char *const *ids,
                                      size_t n_ids, struct dead_letter **rows,
                                      size_t *n) TS_WARN_UNUSED;

/* Deletes the dead letters named by ids; an id that is not there is no
 * error (idempotent: two replays may delete the same one). */
enum ts_status store_delete_dead_letters(struct store *s,
                                         const char *const *ids,
                                         size_t n_ids) TS_WARN_UNUSED;

enum store_rank {
  STORE_RANK_WINS,
  STORE_RANK_WIN_PERCENT,
  STORE_RANK_AVG_SCORE,
  STORE_RANK_GAMES,
};
#define STORE_RANKINGS ((unsigned)STORE_RANK_GAMES + 1u) /* how many */

/* The top `limit` players with at least one game, by `by` descending (the
 * derived values as displayed, rounded to 2 decimals), ties broken by name
 * in byte order. Rows freed with player_rows_free(*rows, *n).
 * SQLite answers from the top rows it keeps, current with every commit
 * (built again by a scan after another process's). DynamoDB answers from a
 * per-process snapshot:
 * this process's writes at once, other replicas' within
 * leaderboard_refresh_s; TS_ERR_UNAVAILABLE while there is no snapshot
 * yet (see store/rank_cache.h). */
enum ts_status store_leaderboard(struct store *s, enum store_rank by,
                                 size_t limit, struct player_row **rows,
                                 size_t *n) TS_WARN_UNUSED;

/* Creates what the store needs if it is missing and waits until it is
 * usable (DynamoDB: the stats, dead-letter and applied-log tables,
 * on-demand capacity, TTL on the applied log's expires_at;
 * SQLite: the file and schema). */
enum ts_status
store_create_tables(const struct store_options *opt) TS_WARN_UNUSED;

/* ---- Backfill sessions (domain/backfill.h, ops/backfill.c) ----
 * While session `id` is open, every write of a player saves the player's
 * session state with it (backfill_fold()). On SQLite the open session is
 * read inside each write transaction; on DynamoDB each process re-reads it
 * at least every TS_BACKFILL_SESSION_REFRESH_MS, and a write that finds a
 * player's state of a session it does not know re-reads it at once. */

/* Opens session id, replacing any open one. */
enum ts_status store_session_open(struct store *s,
                                  const char *id) TS_WARN_UNUSED;
/* Closes session id if it is the open one (else does nothing). */
enum ts_status store_session_close(struct store *s,
                                   const char *id) TS_WARN_UNUSED;
/* Sets the player's stats to base + what its state tracked in session
 * (backfill_settled()), in one atomic write retried on conflicts with
 * concurrent ingestion. *changed tells whether the stats moved. A player
 * with no row whose result is zero is left absent. TS_ERR_INVALID when
 * the result would be negative (the source and the stream disagree);
 * TS_ERR_NOT_FOUND when session is no longer the open one (another
 * backfill replaced it, or it was closed). */
enum ts_status store_session_settle(struct store *s, const char *player,
                                    const struct stats *base,
                                    const char *session,
                                    bool *changed) TS_WARN_UNUSED;

/* ---- Kinesis shard leases and checkpoints (domain/kinesis.h,
 * ops/consumer.c) ----
 * One row per (stream, shard): SQLite table kinesis_leases; DynamoDB an
 * item of the applied-log table with id "#kinesis#<stream>#<shard>". The
 * store only reads and writes rows; who may take, renew or checkpoint is
 * decided by domain/kinesis.h. Every write is a compare-and-set on the
 * row's version, which is what makes two holders at once impossible: a
 * holder whose lease was taken over finds its checkpoint refused. */

/* Reads the row; a missing row is TS_OK with *out zeroed (version 0). */
enum ts_status store_lease_get(struct store *s, const char *stream,
                               const char *shard,
                               struct shard_lease *out) TS_WARN_UNUSED;
/* Writes next (its version must be expected + 1) if the stored row's
 * version is still `expected` (0: no row). *written tells whether it was
 * written; a lost race is TS_OK with *written false. A write refused
 * because it had landed already (its answer lost, then sent again) is
 * written: the row holds exactly next. */
enum ts_status store_lease_put(struct store *s, const char *stream,
                               const char *shard,
                               const struct shard_lease *next,
                               uint64_t expected, bool *written) TS_WARN_UNUSED;

/* Cheap reachability check for /readyz. */
enum ts_status store_ping(struct store *s) TS_WARN_UNUSED;

#endif /* TS_STORE_STORE_H */
