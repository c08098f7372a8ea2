/* The embedded store: one SQLite file in WAL mode.
 *
 * Connections: one write connection behind a mutex (SQLite allows one
 * writer at a time anyway) and a small pool of read connections, so that
 * reads proceed while a batch is being written (WAL readers never wait for
 * the writer). Every connection caches its prepared statements. Another
 * process may open the same file: its write lock shows up here as
 * SQLITE_BUSY, which becomes TS_ERR_RETRY and goes through store_run_tx.
 *
 * Environment:
 *   TS_SQLITE_SYNC  "full" (default) or "normal". FULL makes every commit
 *                   durable before store_apply returns, which the 200 answer
 *                   promises; NORMAL may lose the last commits on power loss
 *                   (not on a process crash) and is faster.
 *
 * Schema version 9 (PRAGMA user_version):
 *   players         one row per player; total_score is exact decimal text;
 *                   no index on the ranking keys (leaderboards are kept in
 *                   memory, struct sq's board)
 *   applied_events  (player, eventID) pairs applied, for exactly-once;
 *                   no index by time (the purge sweeps it in key order)
 *   applied_recent  the newest pairs, appended in the order applied (a
 *                   row of JSON text per transaction) and moved into
 *                   applied_events in key order (store/recent.h)
 *   dead_letters    rejected records, kept once per dead_letter_id (the
 *                   record as received and its reason), which is also how
 *                   they are listed, replayed and deleted
 *   backfill_session the open backfill session (domain/backfill.h)
 *   kinesis_leases  a Kinesis shard's lease and checkpoint (store.h) */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <semaphore.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "../common/arena.h"
#include "../common/bounds.h"
#include "../common/buf.h"
#include "../common/log.h"
#include "../domain/backfill.h"
#include "pair_filter.h"
#include "rank_cache.h"
#include "recent.h"
#include "row_cache.h"
#include "sqlite_vfs.h"
#include "store_impl.h"
#include "store_test.h"

/* Read connections in the pool: reads are short single statements, so a
 * few serve the server's default 8 threads. */
#define SQ_READERS 4u
/* Deadline of a read (get, list, ping) including its retries; a read waits
 * only on the rare WAL-index busy, so this is generous. */
#define SQ_READ_DEADLINE_MS 2000u
/* Expired applied_events are purged by a sweep over the table in key
 * order: every write transaction reads the next PER_RECORD rows per
 * record it applies (at least MIN, at most MAX, so that one transaction
 * stays short) and deletes the expired ones among them. A sweep thus
 * passes every row once per half of the table's rows written: in a steady
 * state the table holds the retention's pairs and about a third more. */
#define SQ_PURGE_SCAN_PER_RECORD 2u
#define SQ_PURGE_SCAN_MIN 64u
#define SQ_PURGE_SCAN_MAX 2000u
/* A write transaction's BEGIN that finds another process's write lock
 * tries again this often (SQLite's own handler sleeps 1-100 ms between
 * tries: a lock free for a moment between two of another writer's
 * transactions was seldom seen). */
#define SQ_BUSY_POLL_US 200u
/* A transaction begun for a batch on its way looks this often whether
 * another process waits to write (others_waiting). */
#define SQ_EXPECT_POLL_MS 1u
/* Group commit: batches waiting for the writer are applied together in one
 * transaction (one fsync), at most this many batches or records at once. */
#define SQ_GROUP_MAX_BATCHES 128u
#define SQ_GROUP_MAX_RECORDS 20000u

#define SQ_SCHEMA_VERSION 9

static const char schema_v1[] =
    "CREATE TABLE players("
    "  player TEXT PRIMARY KEY,"
    "  games INTEGER NOT NULL,"
    "  wins INTEGER NOT NULL,"
    "  total_score TEXT NOT NULL," /* exact decimal text */
    "  version INTEGER NOT NULL,"
    "  updated_at TEXT NOT NULL,"
    /* leaderboard keys: the displayed avg_score and win_percent, x100 */
    "  avg_x100 INTEGER NOT NULL,"
    "  pct_x100 INTEGER NOT NULL"
    ") WITHOUT ROWID;"
    "CREATE INDEX players_by_wins ON players(wins DESC, player);"
    "CREATE INDEX players_by_games ON players(games DESC, player);"
    "CREATE INDEX players_by_avg ON players(avg_x100 DESC, player);"
    "CREATE INDEX players_by_pct ON players(pct_x100 DESC, player);"
    "CREATE TABLE applied_events("
    "  player TEXT NOT NULL,"
    "  event_id TEXT NOT NULL,"
    "  applied_at INTEGER NOT NULL," /* unix seconds */
    "  PRIMARY KEY(player, event_id)"
    ") WITHOUT ROWID;"
    "CREATE INDEX applied_events_by_time ON applied_events(applied_at);"
    "CREATE TABLE dead_letters("
    "  id INTEGER PRIMARY KEY,"
    "  event_id TEXT,"
    "  item_identifier TEXT,"
    "  reason TEXT NOT NULL,"
    "  record TEXT,"
    "  received_at TEXT NOT NULL"
    ");"
    /* A resent poison record is kept once. A record without an eventID is
     * known by its itemIdentifier (its SequenceNumber). */
    "CREATE UNIQUE INDEX dead_letters_once ON dead_letters("
    "  coalesce(event_id, item_identifier), reason);"
    "PRAGMA user_version = 1;";

/* Version 2: a dead letter is known by batch_rejected_id() (the record and
 * its reason), so that distinct records sharing an eventID and a reason
 * are all kept; rows of version 1 keep a NULL id. */
static const char schema_v2[] =
    "DROP INDEX dead_letters_once;"
    "ALTER TABLE dead_letters ADD COLUMN dead_letter_id TEXT;"
    "CREATE UNIQUE INDEX dead_letters_by_id ON dead_letters(dead_letter_id);"
    "PRAGMA user_version = 2;";

/* Version 3: every dead letter has an id to be listed and deleted by; rows
 * of version 1 get one from their row number (their record and reason are
 * kept as they were, so batch_rejected_id() cannot be recomputed). */
static const char schema_v3[] =
    "UPDATE dead_letters SET dead_letter_id = 'v1-' || id "
    "WHERE dead_letter_id IS NULL;"
    "PRAGMA user_version = 3;";

/* Version 4: backfill sessions (domain/backfill.h): the open session, if
 * any, and each player's session state, saved with the row. */
static const char schema_v4[] =
    "ALTER TABLE players ADD COLUMN session_state TEXT;"
    "CREATE TABLE backfill_session("
    "  one INTEGER PRIMARY KEY CHECK(one = 1),"
    "  id TEXT NOT NULL,"
    "  opened_at TEXT NOT NULL"
    ");"
    "PRAGMA user_version = 4;";

/* Version 5: Kinesis shard leases and checkpoints (store.h). */
static const char schema_v5[] = "CREATE TABLE kinesis_leases("
                                "  stream TEXT NOT NULL,"
                                "  shard TEXT NOT NULL,"
                                "  owner TEXT NOT NULL,"
                                "  expires_ms INTEGER NOT NULL,"
                                "  checkpoint TEXT NOT NULL,"
                                "  finished INTEGER NOT NULL,"
                                "  version INTEGER NOT NULL,"
                                "  PRIMARY KEY(stream, shard)"
                                ") WITHOUT ROWID;"
                                "PRAGMA user_version = 5;";

/* Version 6: the newest applied pairs, in the order applied (recent.h). */
static const char schema_v6[] = "CREATE TABLE applied_recent("
                                "  id INTEGER PRIMARY KEY,"
                                "  player TEXT NOT NULL,"
                                "  event_id TEXT NOT NULL,"
                                "  applied_at INTEGER NOT NULL"
                                ");"
                                "PRAGMA user_version = 6;";

/* Version 7: no leaderboard indexes. Keeping four more b-trees in order
 * (a delete and an insert in each whenever a player's keys move) was a
 * third of the writer's time (docs/BENCHMARKS.md, change 21). The
 * leaderboards are kept in memory instead (struct sq's board), built by a
 * scan of players. The key columns stay, written as before. */
static const char schema_v7[] = "DROP INDEX IF EXISTS players_by_wins;"
                                "DROP INDEX IF EXISTS players_by_games;"
                                "DROP INDEX IF EXISTS players_by_avg;"
                                "DROP INDEX IF EXISTS players_by_pct;"
                                "PRAGMA user_version = 7;";

/* Version 8: applied_recent holds a transaction's new pairs in one row, a
 * JSON array of [player, eventID, applied_at]: one insert a transaction
 * instead of one a pair, which was a sixth of the writer's instructions
 * on batches (docs/BENCHMARKS.md, change 32). Rows of version 7 move into
 * applied_events first, as a writer that finds rows it did not write
 * does. */
static const char schema_v8[] =
    "INSERT INTO applied_events(player, event_id, applied_at) "
    "SELECT player, event_id, applied_at FROM applied_recent WHERE true "
    "ORDER BY player, event_id ON CONFLICT(player, event_id) DO UPDATE "
    "SET applied_at = excluded.applied_at "
    "WHERE applied_events.applied_at < excluded.applied_at;"
    "DROP TABLE applied_recent;"
    "CREATE TABLE applied_recent("
    "  id INTEGER PRIMARY KEY,"
    "  pairs TEXT NOT NULL" /* [[player, event_id, applied_at], ...] */
    ");"
    "PRAGMA user_version = 8;";

/* Version 9: no index of applied_events by time. Keeping it (a second
 * b-tree insert for every pair moved in) was two fifths of moving pairs
 * (docs/BENCHMARKS.md, change 33); the purge sweeps the table in key order
 * instead (SQ_PURGE_SCAN_*). */
static const char schema_v9[] = "DROP INDEX IF EXISTS applied_events_by_time;"
                                "PRAGMA user_version = 9;";

/* applied_recent's pairs as rows, for the statements that read them. */
#define RECENT_PAIRS                                                           \
  "(SELECT json_extract(p.value, '$[0]') AS player, "                          \
  "json_extract(p.value, '$[1]') AS event_id, "                                \
  "json_extract(p.value, '$[2]') AS applied_at "                               \
  "FROM applied_recent r, json_each(r.pairs) p)"

#define DEAD_COLUMNS                                                           \
  "dead_letter_id, event_id, item_identifier, reason, record, received_at"

enum stmt_id {
  ST_BEGIN,
  ST_COMMIT,
  ST_ROLLBACK,
  ST_GET_PLAYER,
  ST_IS_APPLIED,
  ST_ADD_APPLIED,
  ST_NEXT_RECENT_ID,
  ST_PUT_PLAYER,
  ST_ADD_DEAD,
  ST_PURGE_SCAN,
  ST_PURGE_KEY,
  ST_LIST_FIRST,
  ST_LIST_AFTER,
  ST_PING,
  ST_BOARD_SCAN,
  ST_COUNT_DEAD,
  ST_COUNT_APPLIED,
  ST_DEAD_FIRST,
  ST_DEAD_AFTER,
  ST_DEAD_GET,
  ST_DEAD_DELETE,
  ST_GET_SESSION,
  ST_OPEN_SESSION,
  ST_CLOSE_SESSION,
  ST_GET_LEASE,
  ST_PUT_LEASE,
  ST_MERGE_APPLIED,
  ST_DROP_RECENT,
  ST_MERGE_RECENT,
  ST_CLEAR_RECENT,
  ST_DATA_VERSION,
  ST_FILTER_FIRST,
  ST_FILTER_AFTER,
  ST_INSERT_PLAYER,
  ST_UPDATE_PLAYER,
  ST_COUNT
};

static const char *const stmt_sql[ST_COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_GET_PLAYER] = "SELECT player, games, wins, total_score, updated_at, "
                      "session_state, version FROM players WHERE player = ?1",
    /* Seen means applied within the retention (applied_at >= ?3), whether
     * or not the purge has removed the older rows yet. applied_recent is
     * looked up in memory (store/recent.h). */
    [ST_IS_APPLIED] = "SELECT 1 FROM applied_events WHERE player = ?1 AND "
                      "event_id = ?2 AND applied_at >= ?3",
    [ST_ADD_APPLIED] = "INSERT INTO applied_recent(id, pairs) VALUES(?1, ?2)",
    [ST_NEXT_RECENT_ID] = "SELECT coalesce(max(id), 0) + 1 FROM applied_recent",
    [ST_PUT_PLAYER] =
        "INSERT INTO players(player, games, wins, total_score, version, "
        "updated_at, avg_x100, pct_x100, session_state) "
        "VALUES(?1, ?2, ?3, ?4, 1, ?5, ?6, ?7, ?8) "
        "ON CONFLICT(player) DO UPDATE SET games = excluded.games, "
        "wins = excluded.wins, total_score = excluded.total_score, "
        "version = players.version + 1, updated_at = excluded.updated_at, "
        "avg_x100 = excluded.avg_x100, pct_x100 = excluded.pct_x100, "
        "session_state = excluded.session_state",
    [ST_ADD_DEAD] = "INSERT OR IGNORE INTO dead_letters(event_id, "
                    "item_identifier, reason, record, received_at, "
                    "dead_letter_id) VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
    /* The purge's sweep: the next ?3 rows after (?1, ?2), then each of
     * them that is expired. */
    [ST_PURGE_SCAN] = "SELECT player, event_id, applied_at FROM "
                      "applied_events WHERE (player, event_id) > (?1, ?2) "
                      "ORDER BY player, event_id LIMIT ?3",
    [ST_PURGE_KEY] = "DELETE FROM applied_events WHERE player = ?1 AND "
                     "event_id = ?2 AND applied_at < ?3",
    [ST_LIST_FIRST] = "SELECT player, games, wins, total_score, updated_at, "
                      "session_state FROM players ORDER BY player LIMIT ?1",
    [ST_LIST_AFTER] = "SELECT player, games, wins, total_score, updated_at, "
                      "session_state FROM players WHERE player > ?2 "
                      "ORDER BY player LIMIT ?1",
    [ST_PING] = "SELECT 1 FROM players LIMIT 1",
    /* Every ranked player, for the leaderboards (struct sq's board):
     * decode_row's columns, no session state, then the version. */
    [ST_BOARD_SCAN] = "SELECT player, games, wins, total_score, updated_at, "
                      "NULL, version FROM players WHERE games > 0",
    [ST_COUNT_DEAD] = "SELECT count(*) FROM dead_letters",
    [ST_COUNT_APPLIED] =
        "SELECT count(*) FROM (SELECT player, event_id FROM applied_events "
        "UNION SELECT player, event_id FROM " RECENT_PAIRS ")",
    /* Dead letters in id order (the unique index), optionally of one
     * reason; ?1 limit, ?2 reason or NULL, ?3 the last id of the previous
     * page. */
    [ST_DEAD_FIRST] =
        "SELECT " DEAD_COLUMNS " FROM dead_letters WHERE (?2 IS NULL OR "
        "reason = ?2) ORDER BY dead_letter_id LIMIT ?1",
    [ST_DEAD_AFTER] =
        "SELECT " DEAD_COLUMNS " FROM dead_letters WHERE dead_letter_id > ?3 "
        "AND (?2 IS NULL OR reason = ?2) ORDER BY dead_letter_id LIMIT ?1",
    [ST_DEAD_GET] = "SELECT " DEAD_COLUMNS " FROM dead_letters "
                    "WHERE dead_letter_id = ?1",
    [ST_DEAD_DELETE] = "DELETE FROM dead_letters WHERE dead_letter_id = ?1",
    [ST_GET_SESSION] = "SELECT id FROM backfill_session WHERE one = 1",
    [ST_OPEN_SESSION] = "INSERT OR REPLACE INTO backfill_session(one, id, "
                        "opened_at) VALUES(1, ?1, ?2)",
    [ST_CLOSE_SESSION] = "DELETE FROM backfill_session WHERE id = ?1",
    [ST_GET_LEASE] = "SELECT owner, expires_ms, checkpoint, finished, version "
                     "FROM kinesis_leases WHERE stream = ?1 AND shard = ?2",
    [ST_PUT_LEASE] = "INSERT OR REPLACE INTO kinesis_leases(stream, shard, "
                     "owner, expires_ms, checkpoint, finished, version) "
                     "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    /* Moving pairs from applied_recent: the newest applied_at of a pair
     * stays (an expired row not yet purged is taken over). */
    [ST_MERGE_APPLIED] =
        "INSERT INTO applied_events(player, event_id, applied_at) "
        "VALUES(?1, ?2, ?3) ON CONFLICT(player, event_id) DO UPDATE SET "
        "applied_at = excluded.applied_at "
        "WHERE applied_events.applied_at < excluded.applied_at",
    [ST_DROP_RECENT] = "DELETE FROM applied_recent WHERE id <= ?1",
    /* "WHERE true" tells the parser the ON CONFLICT is the upsert's. */
    [ST_MERGE_RECENT] =
        "INSERT INTO applied_events(player, event_id, applied_at) "
        "SELECT player, event_id, applied_at FROM " RECENT_PAIRS " WHERE true "
        "ORDER BY player, event_id ON CONFLICT(player, event_id) DO UPDATE "
        "SET applied_at = excluded.applied_at "
        "WHERE applied_events.applied_at < excluded.applied_at",
    [ST_CLEAR_RECENT] = "DELETE FROM applied_recent",
    /* Changes when another connection (here or in another process) has
     * committed since this one last looked. */
    [ST_DATA_VERSION] = "PRAGMA data_version",
    /* The filter's build: the first ?1 keys, or the next ?1 after
     * (?2, ?3). */
    [ST_FILTER_FIRST] = "SELECT player, event_id FROM applied_events "
                        "ORDER BY player, event_id LIMIT ?1",
    [ST_FILTER_AFTER] = "SELECT player, event_id FROM applied_events "
                        "WHERE (player, event_id) > (?2, ?3) "
                        "ORDER BY player, event_id LIMIT ?1",
    /* A row whose version the writer knows (put_player): none yet, or
     * version ?9. A failed condition is a stale read (TS_ERR_RETRY). */
    [ST_INSERT_PLAYER] =
        "INSERT INTO players(player, games, wins, total_score, version, "
        "updated_at, avg_x100, pct_x100, session_state) "
        "VALUES(?1, ?2, ?3, ?4, 1, ?5, ?6, ?7, ?8)",
    [ST_UPDATE_PLAYER] =
        "UPDATE players SET games = ?2, wins = ?3, total_score = ?4, "
        "version = version + 1, updated_at = ?5, avg_x100 = ?6, "
        "pct_x100 = ?7, session_state = ?8 WHERE player = ?1 AND version = ?9",
};

/* A player row the writer put in its open transaction, for the
 * leaderboards (struct sq's board); the name is borrowed until the
 * transaction ends. */
struct wrote {
  const char *player;
  struct stats stats;
  char updated_at[32];
  int64_t version;
};

/* A journaled row: a struct wrote with its name owned. */
struct jrow {
  char *player;
  struct stats stats;
  char updated_at[32];
  int64_t version;
};

struct conn {
  sqlite3 *db;
  sqlite3_stmt *st[ST_COUNT];
  /* The writer's rows put since its transaction began (board_journal). */
  struct wrote *wrote;
  size_t n_wrote, cap_wrote;
  bool wrote_lost; /* a row could not be noted (out of memory) */
  /* The writer's copy of player rows (store/row_cache.h), kept by
   * put_player; NULL on other connections, which never write players. */
  struct row_cache *rows;
  uint64_t stale_rows; /* rows not as read, found by put_player (tests) */
  /* The writer's new pairs of the open transaction not yet written: the
   * JSON text of applied_recent's row `pairs_id` (0: none begun). */
  struct buf pairs;
  int64_t pairs_id;
};

/* A batch waiting in the group-commit queue: a store_apply call's (its
 * caller sleeps until the batch is done), or a store_apply_async call's
 * (on_done is called once it is done, then the pending is freed). */
struct pending {
  struct batch *b;
  uint64_t deadline_ms;
  enum ts_status st;
  bool done;
  /* A sleeping caller sleeps on its own semaphore, posted exactly once per
   * sleep by whoever clears `waiting` under the queue mutex: the leader
   * that finished its batch, or the leader that left while it heads the
   * queue. */
  bool waiting;
  sem_t wake;
  store_done_fn on_done; /* NULL: a sleeping caller */
  void *on_done_cls;
  struct pending *next;
};

struct sq {
  pthread_mutex_t qmu; /* guards the queue and leader */
  struct pending *q_head, *q_tail;
  bool leader; /* a caller is applying a group right now */
  /* The committer thread leads groups that no caller waits to lead (the
   * asynchronous ones): signalled when such a group is queued while
   * nobody leads. */
  pthread_cond_t ccv;
  pthread_t committer;
  bool committer_running;
  bool stopping; /* sq_close: the committer ends once the queue is empty */
  /* A batch is on its way (expected): told by sq_expect_write, or a
   * group of HTTP batches just ended (a sender that keeps sending). The
   * committer then begins a transaction for it and waits (expecting:
   * callers that queue signal ccv), sized like the last group
   * (last_records). */
  bool expected, expecting;
  size_t last_records;
  atomic_uint_least32_t expect_wait_ms; /* TS_SQLITE_EXPECT_WAIT_MS */

  pthread_mutex_t wmu; /* guards w, purge_*, recent_*, busy_*, wait_held */
  /* Other processes waiting to write (others_waiting): "<file>-wait",
   * -1 when it cannot be opened (then nothing begins early). wait_held:
   * the writer announces its own wait there (on_busy). The writer's BEGIN
   * gives up busy_ms after busy_since_ms. */
  int wait_fd;
  bool wait_held;
  uint32_t busy_ms;
  uint64_t busy_since_ms;
  /* Threads about to wait for wmu other than to apply batches: a
   * transaction begun for a batch still to come ends for them at once
   * (writer_claim). */
  atomic_uint w_wanted;
  struct conn w;
  /* Where the purge's sweep is: the last key it passed ("" and "": the
   * table's start), and how many rows it passes per record (tests). */
  char *purge_player, *purge_event;
  size_t purge_per_record;
  /* applied_recent's pairs, in memory; valid while no other connection
   * has committed since recent_version (PRAGMA data_version). Until the
   * first write transaction, none are (recent_known false). */
  struct recent *recent;
  int64_t recent_version;
  bool recent_known;
  /* Other connections' commits: the writer's PRAGMA data_version moves
   * with theirs only. others_dv is its last value read (wmu held);
   * others_epoch counts the times it was seen to move. in_checked_txn:
   * the writer is in a write transaction that read it after BEGIN, so
   * no other connection can commit until it ends (SQLite has one writer)
   * and others_epoch is current (others_epoch_now). */
  int64_t others_dv;
  atomic_uint_fast64_t others_epoch;
  atomic_bool in_checked_txn;
  size_t recent_merge_rows, recent_slice_rows, recent_max_rows; /* bounds.h */
  /* What applied_events certainly does not hold (store/pair_filter.h). It
   * holds every pair of applied_events while filter_ok, as of the
   * writer's data_version filter_version: another connection's commit
   * (the version moves), a move of every pair at once or a failed
   * transaction ends that. A new filter is built by a scan in key order,
   * a slice per write transaction (the build), so that no transaction
   * reads the whole table; pairs moved in meanwhile go into both. A full
   * filter (more pairs than its capacity: false positives grow, but it
   * misses none) answers until a larger one is built. Without one, a build
   * starts once the version has stayed put for TS_SQLITE_FILTER_QUIET_MS:
   * at once when this connection ended it (filter_due: every pair moved at
   * once), else at most that often. filter_live: it answers in the
   * transaction under way. */
  struct pair_filter *filter;
  bool filter_ok, filter_live, filter_due;
  int64_t filter_version, seen_version; /* seen_version -1: none yet */
  uint64_t filter_tried_ms, version_moved_ms;
  uint32_t filter_quiet_ms; /* TS_SQLITE_FILTER_QUIET_MS */
  /* The wait before the next try: filter_quiet_ms, or longer after tries
   * that found the table too large (bounds.h). filter_max_pairs and
   * filter_min_pairs are TS_SQLITE_FILTER_MAX_PAIRS and _MIN_PAIRS;
   * filter_counts counts the builds begun. */
  uint64_t filter_wait_ms;
  size_t filter_max_pairs, filter_min_pairs;
  size_t filter_built; /* the pairs the filter held when it was built */
  uint64_t filter_counts;
  /* The build under way, if build: the pairs of applied_events read so
   * far (build_rows of them, in key order up to the key build_p,
   * build_e; NULL: none yet) and those moved in since it began, as of
   * data_version build_version. build_scan_rows: a slice's rows, or 0
   * for TS_SQLITE_FILTER_SCAN_*; build_most: the most one slice read. */
  struct pair_filter *build;
  char *build_p, *build_e;
  size_t build_rows, build_scan_rows, build_most;
  int64_t build_version;
  atomic_uint_least32_t apply_deadline_ms;

  /* Leaderboards, without indexes on their keys (schema 7): every
   * ranking's top TS_LEADERBOARD_TOP_K (store/rank_cache.h), built by a
   * scan on connection b, then kept current with this process's commits
   * (the journal), and built again when it no longer knows enough
   * positions or another connection has committed (others_epoch moved).
   * Lock order: bmu, then wmu or jmu; the writer takes jmu under wmu. */
  pthread_mutex_t bmu; /* guards b, board, board_epoch, board_builds */
  struct conn b;
  struct rank_set *board; /* NULL until a leaderboard is asked for */
  uint64_t board_epoch;   /* others_epoch it was built at */
  uint64_t board_builds;  /* for tests */
  pthread_mutex_t jmu;    /* guards journal_* */
  bool journal_on;        /* a board exists: commits are journaled */
  bool journal_lost;      /* a commit was not journaled: build again */
  struct jrow *journal;   /* rows committed since the board was built */
  size_t journal_n, journal_cap;

  pthread_mutex_t rmu; /* guards r_busy */
  pthread_cond_t rcv;
  struct conn r[SQ_READERS];
  bool r_busy[SQ_READERS];
  bool locks_ready;

  /* The checkpointer (ckpt_main): copies the WAL into the database off
   * the commit path, on a connection of its own. */
  pthread_mutex_t kmu; /* guards the ckpt_ flags below */
  pthread_cond_t kcv;  /* kicked, stopping, or a round ended */
  bool ckpt_kick, ckpt_busy, ckpt_stop;
  bool ckpt_ended; /* a round ended since the writer last caught up */
  pthread_t ckpt;
  bool ckpt_running;
  struct conn k;

  char *path;
  atomic_bool out_of_space; /* the last write failed with SQLITE_FULL */
};

static enum ts_status from_rc(int rc) {
  switch (rc & 0xff) {
  case SQLITE_OK:
  case SQLITE_ROW:
  case SQLITE_DONE: return TS_OK;
  case SQLITE_BUSY:
  case SQLITE_LOCKED: return TS_ERR_RETRY;
  case SQLITE_NOMEM: return TS_ERR_NOMEM;
  /* A full disk is an outage the sender should wait out (503), not a
   * fault of the request. */
  case SQLITE_FULL: return TS_ERR_UNAVAILABLE;
  default: return TS_ERR_IO;
  }
}

/* The cached statement `id` of c, prepared on first use; NULL with *rc set
 * when preparing fails. */
static sqlite3_stmt *stmt(struct conn *c, enum stmt_id id, int *rc) {
  if (!c->st[id]) {
    *rc = sqlite3_prepare_v3(c->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
                             &c->st[id], NULL);
    if (*rc != SQLITE_OK) {
      sqlite3_finalize(c->st[id]);
      c->st[id] = NULL;
      return NULL;
    }
  }
  *rc = SQLITE_OK;
  return c->st[id];
}

/* Ends a statement's use so its read transaction (if any) ends too. */
static void done(sqlite3_stmt *s) {
  if (s) {
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
  }
}

/* Runs a statement without parameters or rows (BEGIN, COMMIT, ...). */
static int run_plain(struct conn *c, enum stmt_id id) {
  int rc;
  sqlite3_stmt *s = stmt(c, id, &rc);
  if (!s)
    return rc;
  rc = sqlite3_step(s);
  done(s);
  return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int bind_text(sqlite3_stmt *s, int i, const char *text) {
  if (!text)
    return sqlite3_bind_null(s, i);
  return sqlite3_bind_text(s, i, text, -1, SQLITE_STATIC);
}

/* Forgets the open transaction's pairs not yet written (it ends). */
static void reset_pairs(struct conn *c) {
  buf_free(&c->pairs);
  buf_init(&c->pairs, TS_SQLITE_PAIRS_ROW_BYTES + TS_SQLITE_PAIR_TEXT_BYTES);
  c->pairs_id = 0;
}

static void conn_close(struct conn *c) {
  for (size_t i = 0; i < ST_COUNT; i++) {
    sqlite3_finalize(c->st[i]);
    c->st[i] = NULL;
  }
  sqlite3_close(c->db);
  c->db = NULL;
  buf_free(&c->pairs);
}

struct open_ctx {
  struct conn *c;
  const char *path, *sync;
  bool read_only;
};

/* One attempt at opening c. SQLITE_BUSY here (another process holding the
 * file longer than one busy wait, e.g. a replica started at the same
 * moment switching a new file to WAL and writing the schema) is
 * TS_ERR_RETRY, for store_run_tx; other failures are logged. */
static enum ts_status open_attempt(void *cls) {
  struct open_ctx *o = cls;
  struct conn *c = o->c;
  char pragmas[200];
  conn_close(c); /* what an earlier attempt left */
  /* The writer at FULL gathers its WAL writes (sqlite_vfs.h); without the
   * VFS it writes them one by one, as correctly. */
  const char *vfs = NULL; /* the default VFS */
  if (!o->read_only && strcmp(o->sync, "FULL") == 0 &&
      sqlite_vfs_gather_name(&vfs) != TS_OK)
    log_event(LOG_WARN, "SQLite: WAL gathering unavailable, default VFS",
              "{s:s}", "path", o->path);
  int rc = sqlite3_open_v2(
      o->path, &c->db,
      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, vfs);
  if (rc != SQLITE_OK)
    goto fail;
  sqlite3_extended_result_codes(c->db, 1);
  rc = sqlite3_busy_timeout(c->db, (int)TS_SQLITE_BUSY_TIMEOUT_MS);
  if (rc != SQLITE_OK)
    goto fail;
  /* query_only guards the pool against ever writing by mistake. */
  int len = snprintf(pragmas, sizeof pragmas,
                     "PRAGMA foreign_keys = OFF; PRAGMA synchronous = %s;"
                     " PRAGMA query_only = %d; PRAGMA journal_size_limit = %d;"
                     " PRAGMA cache_size = -%u;",
                     o->sync, o->read_only ? 1 : 0, TS_SQLITE_WAL_LIMIT_BYTES,
                     o->read_only ? TS_SQLITE_READER_CACHE_KIB
                                  : TS_SQLITE_WRITER_CACHE_KIB);
  if (len < 0 || (size_t)len >= sizeof pragmas) {
    rc = SQLITE_ERROR;
    goto fail;
  }
  rc = sqlite3_exec(c->db, pragmas, NULL, NULL, NULL);
  /* No connection checkpoints on commit; the writer's commits are watched
   * by on_wal_commit instead. */
  if (rc == SQLITE_OK)
    rc = sqlite3_wal_autocheckpoint(c->db, 0);
  if (rc != SQLITE_OK)
    goto fail;
  return TS_OK;
fail:;
  enum ts_status st = from_rc(rc);
  if (st != TS_ERR_RETRY)
    log_event(LOG_ERROR, "SQLite: cannot open the file", "{s:s, s:i, s:s}",
              "path", o->path, "code", rc, "error",
              c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
  conn_close(c);
  return st == TS_OK || st == TS_ERR_UNAVAILABLE ? TS_ERR_IO : st;
}

static enum ts_status conn_open(struct conn *c, const char *path,
                                const char *sync, bool read_only) {
  struct open_ctx o = {c, path, sync, read_only};
  reset_pairs(c);
  enum ts_status st = store_run_tx("sqlite.open", open_attempt, &o, NULL,
                                   clock_now_ms() + TS_INGEST_DEADLINE_MS);
  if (st == TS_ERR_UNAVAILABLE)
    log_event(LOG_ERROR, "SQLite: cannot open the file", "{s:s, s:s}", "path",
              path, "error", "locked by another process past the deadline");
  return st;
}

/* Creates every missing directory above the file of `path` (mkdir -p of
 * its dirname). */
static enum ts_status make_parents(const char *path) {
  enum ts_status st = TS_OK;
  char *dir = strdup(path);
  if (!dir)
    return TS_ERR_NOMEM;
  for (char *p = dir + 1; *p; p++) {
    if (*p != '/')
      continue;
    *p = '\0';
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
      log_event(LOG_ERROR, "SQLite: cannot create the data folder",
                "{s:s, s:s, s:s}", "path", path, "folder", dir, "error",
                strerror(errno));
      st = TS_ERR_IO;
      goto out;
    }
    *p = '/';
  }
out:
  free(dir);
  return st;
}

/* ---- other processes waiting to write ----
 *
 * SQLite's write lock gives no turns: a process that finds it taken only
 * tries again after a sleep, and a writer that begins its next
 * transaction the moment it commits (lead_expected) would hold it from
 * others for good. So every process of this store, while its BEGIN waits
 * for the lock, holds a shared lock on byte 0 of "<file>-wait"; the
 * committer begins early only while nobody does. The locks are an open
 * file description's (F_OFD_*): a process's own never hides another's,
 * and closing the file drops them. */

static int wait_lock(int fd, short type) {
  struct flock l = {.l_type = type, .l_whence = SEEK_SET, .l_len = 1};
  return fcntl(fd, F_OFD_SETLK, &l);
}

/* Whether another process (or another store on the same file) waits to
 * write; true when that cannot be known. */
static bool others_waiting(const struct sq *sq) {
  if (sq->wait_fd < 0)
    return true;
  struct flock l = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_len = 1};
  if (fcntl(sq->wait_fd, F_OFD_GETLK, &l) != 0)
    return true;
  return l.l_type != F_UNLCK;
}

/* The writer's busy handler: announces the wait, then tries again every
 * SQ_BUSY_POLL_US until busy_ms have passed (0: SQLITE_BUSY). */
static int on_busy(void *cls, int count) {
  struct sq *sq = cls;
  uint64_t now = clock_now_ms();
  if (count == 0) {
    sq->busy_since_ms = now;
    if (sq->wait_fd >= 0 && !sq->wait_held)
      sq->wait_held = wait_lock(sq->wait_fd, F_RDLCK) == 0;
  }
  if (now - sq->busy_since_ms >= sq->busy_ms)
    return 0;
  usleep(SQ_BUSY_POLL_US);
  return 1;
}

/* The writer no longer waits: its announcement goes. */
static void end_wait(struct sq *sq) {
  if (sq->wait_held) {
    (void)wait_lock(sq->wait_fd, F_UNLCK);
    sq->wait_held = false;
  }
}

/* BEGIN IMMEDIATE on the writer (wmu held), waiting at most busy_ms for
 * another process's write lock. */
static int begin_write(struct sq *sq, uint32_t busy_ms) {
  sq->busy_ms = busy_ms;
  int rc = run_plain(&sq->w, ST_BEGIN);
  end_wait(sq);
  return rc;
}

/* ---- open: WAL and schema, through the runner ---- */

static enum ts_status setup_attempt(void *cls) {
  struct sq *sq = cls;
  struct conn *c = &sq->w;
  enum ts_status st = TS_OK;
  sqlite3_stmt *s = NULL;
  /* journal_mode is persistent in the file; asking again is harmless. */
  int rc = sqlite3_prepare_v2(c->db, "PRAGMA journal_mode = WAL", -1, &s, NULL);
  if (rc == SQLITE_OK)
    rc = sqlite3_step(s);
  if (rc != SQLITE_ROW) {
    st = from_rc(rc);
    goto out;
  }
  const unsigned char *mode = sqlite3_column_text(s, 0);
  if (!mode || strcasecmp((const char *)mode, "wal") != 0) {
    st = TS_ERR_IO;
    goto out;
  }
  sqlite3_finalize(s);
  s = NULL;

  rc = begin_write(sq, TS_SQLITE_BUSY_TIMEOUT_MS);
  if (rc != SQLITE_OK) {
    st = from_rc(rc);
    goto out;
  }
  rc = sqlite3_prepare_v2(c->db, "PRAGMA user_version", -1, &s, NULL);
  if (rc == SQLITE_OK)
    rc = sqlite3_step(s);
  if (rc != SQLITE_ROW) {
    st = from_rc(rc);
    goto out;
  }
  int version = sqlite3_column_int(s, 0);
  sqlite3_finalize(s);
  s = NULL;
  rc = SQLITE_OK;
  if (version == 0)
    rc = sqlite3_exec(c->db, schema_v1, NULL, NULL, NULL);
  if (rc == SQLITE_OK && version < 2)
    rc = sqlite3_exec(c->db, schema_v2, NULL, NULL, NULL);
  if (rc == SQLITE_OK && version < 3)
    rc = sqlite3_exec(c->db, schema_v3, NULL, NULL, NULL);
  if (rc == SQLITE_OK && version < 4)
    rc = sqlite3_exec(c->db, schema_v4, NULL, NULL, NULL);
  if (rc == SQLITE_OK && version < 5)
    rc = sqlite3_exec(c->db, schema_v5, NULL, NULL, NULL);
  if (rc == SQLITE_OK && version < 6)
    rc = sqlite3_exec(c->db, schema_v6, NULL, NULL, NULL);
  if (rc == SQLITE_OK && version < 7)
    rc = sqlite3_exec(c->db, schema_v7, NULL, NULL, NULL);
  if (rc == SQLITE_OK && version < 8)
    rc = sqlite3_exec(c->db, schema_v8, NULL, NULL, NULL);
  if (rc == SQLITE_OK && version < 9)
    rc = sqlite3_exec(c->db, schema_v9, NULL, NULL, NULL);
  if (rc != SQLITE_OK) {
    st = from_rc(rc);
    goto out;
  }
  if (version > SQ_SCHEMA_VERSION) {
    log_event(LOG_ERROR, "SQLite: the file was written by a newer release",
              "{s:i, s:i}", "schema", version, "understood", SQ_SCHEMA_VERSION);
    st = TS_ERR_IO; /* do not touch it */
    goto out;
  }
  rc = run_plain(c, ST_COMMIT);
  st = from_rc(rc);
out:
  if (st != TS_OK && st != TS_ERR_RETRY && rc != SQLITE_OK)
    log_event(LOG_ERROR, "SQLite: the file is not usable", "{s:i, s:s}", "code",
              rc, "error", sqlite3_errmsg(c->db));
  sqlite3_finalize(s);
  if (!sqlite3_get_autocommit(c->db))
    (void)run_plain(c, ST_ROLLBACK);
  end_wait(sq); /* the journal_mode pragma may have waited */
  return st;
}

/* ---- the pool ---- */

static struct conn *reader_take(struct sq *sq) {
  pthread_mutex_lock(&sq->rmu);
  for (;;) {
    for (size_t i = 0; i < SQ_READERS; i++) {
      if (!sq->r_busy[i]) {
        sq->r_busy[i] = true;
        pthread_mutex_unlock(&sq->rmu);
        return &sq->r[i];
      }
    }
    pthread_cond_wait(&sq->rcv, &sq->rmu);
  }
}

static void reader_give(struct sq *sq, struct conn *c) {
  pthread_mutex_lock(&sq->rmu);
  sq->r_busy[c - sq->r] = false;
  pthread_cond_signal(&sq->rcv);
  pthread_mutex_unlock(&sq->rmu);
}

/* Locks the writer, waiting no later than deadline_ms: a thread queued
 * behind a long writer gives up in time (TS_ERR_RETRY) instead of
 * blowing the request's deadline. */
static enum ts_status writer_lock(struct sq *sq, uint64_t deadline_ms) {
  uint64_t now = clock_now_ms();
  uint64_t wait = deadline_ms > now ? deadline_ms - now : 0;
  struct timespec abs = clock_deadline_abs(CLOCK_REALTIME, wait);
  int err = pthread_mutex_timedlock(&sq->wmu, &abs);
  if (err == 0)
    return TS_OK;
  return err == ETIMEDOUT ? TS_ERR_RETRY : TS_ERR_IO;
}

/* writer_lock for everything but applying batches: a transaction the
 * committer has begun for a batch still to come (lead_expected) is
 * committed at once rather than held to its bound. deadline_ms 0: no
 * deadline. */
static enum ts_status writer_claim(struct sq *sq, uint64_t deadline_ms) {
  atomic_fetch_add(&sq->w_wanted, 1);
  pthread_mutex_lock(&sq->qmu);
  if (sq->expecting)
    pthread_cond_signal(&sq->ccv);
  pthread_mutex_unlock(&sq->qmu);
  enum ts_status st = TS_OK;
  if (deadline_ms)
    st = writer_lock(sq, deadline_ms);
  else
    pthread_mutex_lock(&sq->wmu);
  atomic_fetch_sub(&sq->w_wanted, 1);
  return st;
}

/* ---- rows ---- */

/* Reads games, wins, total_score from columns 1..3 of s. */
static enum ts_status decode_stats(sqlite3_stmt *s, struct stats *out) {
  out->games = sqlite3_column_int64(s, 1);
  out->wins = sqlite3_column_int64(s, 2);
  const char *text = (const char *)sqlite3_column_text(s, 3);
  if (!text)
    return sqlite3_errcode(sqlite3_db_handle(s)) == SQLITE_NOMEM ? TS_ERR_NOMEM
                                                                 : TS_ERR_IO;
  size_t len = (size_t)sqlite3_column_bytes(s, 3);
  /* Stored text came from decimal_format; anything else is corruption. */
  if (decimal_parse(text, len, &out->total_score) != TS_OK)
    return TS_ERR_IO;
  return TS_OK;
}

/* Fills a player_row from columns player, games, wins, total_score,
 * updated_at. On error the row is left cleared. */
static enum ts_status decode_row(sqlite3_stmt *s, struct player_row *row) {
  enum ts_status st;
  memset(row, 0, sizeof *row);
  const char *player = (const char *)sqlite3_column_text(s, 0);
  const char *updated = (const char *)sqlite3_column_text(s, 4);
  if (!player || !updated) {
    st = TS_ERR_IO;
    goto fail;
  }
  size_t ulen = (size_t)sqlite3_column_bytes(s, 4);
  if (ulen >= sizeof row->updated_at) {
    st = TS_ERR_IO;
    goto fail;
  }
  memcpy(row->updated_at, updated, ulen + 1);
  st = decode_stats(s, &row->stats);
  if (st != TS_OK)
    goto fail;
  row->player = strdup(player);
  if (!row->player) {
    st = TS_ERR_NOMEM;
    goto fail;
  }
  const char *state = sqlite3_column_count(s) > 5
                          ? (const char *)sqlite3_column_text(s, 5)
                          : NULL;
  if (state && !(row->session_state = strdup(state))) {
    st = TS_ERR_NOMEM;
    goto fail;
  }
  return TS_OK;
fail:
  player_row_clear(row);
  return st;
}

/* ---- apply ---- */

/* The player's stored stats, zero when the player has no row; with state
 * non-NULL also its session state (owned, NULL when none); with exists
 * and version non-NULL whether it has a row and the row's version (0:
 * none). */
static enum ts_status read_player(struct conn *c, const char *player,
                                  struct stats *out, char **state, bool *exists,
                                  int64_t *version) {
  int rc;
  enum ts_status st;
  memset(out, 0, sizeof *out);
  if (state)
    *state = NULL;
  if (exists)
    *exists = false;
  if (version)
    *version = 0;
  sqlite3_stmt *s = stmt(c, ST_GET_PLAYER, &rc);
  if (!s)
    return from_rc(rc);
  rc = bind_text(s, 1, player);
  if (rc == SQLITE_OK)
    rc = sqlite3_step(s);
  if (rc == SQLITE_ROW) {
    st = decode_stats(s, out);
    if (exists)
      *exists = true;
    if (version)
      *version = sqlite3_column_int64(s, 6);
    const char *text = (const char *)sqlite3_column_text(s, 5);
    if (st == TS_OK && state && text && !(*state = strdup(text)))
      st = TS_ERR_NOMEM;
  } else if (rc == SQLITE_DONE) {
    st = TS_OK;
  } else {
    st = from_rc(rc);
  }
  done(s);
  return st;
}

static enum ts_status read_stats(struct conn *c, const char *player,
                                 struct stats *out, int64_t *version) {
  return read_player(c, player, out, NULL, NULL, version);
}

/* The open backfill session's id (owned; NULL when none). */
static enum ts_status read_session(struct conn *c, char **id) {
  int rc;
  enum ts_status st = TS_OK;
  *id = NULL;
  sqlite3_stmt *s = stmt(c, ST_GET_SESSION, &rc);
  if (!s)
    return from_rc(rc);
  rc = sqlite3_step(s);
  if (rc == SQLITE_ROW) {
    const char *text = (const char *)sqlite3_column_text(s, 0);
    if (text && !(*id = strdup(text)))
      st = TS_ERR_NOMEM;
  } else if (rc != SQLITE_DONE) {
    st = from_rc(rc);
  }
  done(s);
  return st;
}

/* The oldest applied_at that still counts as applied at now_s. */
static int64_t retention_cutoff(int64_t now_s) {
  return now_s - (int64_t)TS_DEDUP_RETENTION_S;
}

/* Whether (player, event_id) was applied within the retention: in memory
 * (applied_recent) or in applied_events, which a filter that holds all of
 * its pairs (or NULL) may rule out without a lookup. */
static enum ts_status was_applied(struct conn *c, const struct recent *recent,
                                  const struct pair_filter *filter,
                                  const char *player, const char *event_id,
                                  int64_t now_s, bool *seen) {
  int rc;
  if ((*seen = recent_seen(recent, player, event_id, retention_cutoff(now_s))))
    return TS_OK;
  if (filter && !pair_filter_may_hold(filter, player, event_id))
    return TS_OK;
  sqlite3_stmt *s = stmt(c, ST_IS_APPLIED, &rc);
  if (!s)
    return from_rc(rc);
  rc = bind_text(s, 1, player);
  if (rc == SQLITE_OK)
    rc = bind_text(s, 2, event_id);
  if (rc == SQLITE_OK)
    rc = sqlite3_bind_int64(s, 3, retention_cutoff(now_s));
  if (rc == SQLITE_OK)
    rc = sqlite3_step(s);
  *seen = rc == SQLITE_ROW;
  done(s);
  return rc == SQLITE_ROW || rc == SQLITE_DONE ? TS_OK : from_rc(rc);
}

/* Merges one pair applied at applied_at into applied_events. */
static enum ts_status merge_pair(struct conn *c, const char *player,
                                 const char *event_id, int64_t applied_at) {
  int rc;
  sqlite3_stmt *s = stmt(c, ST_MERGE_APPLIED, &rc);
  if (!s)
    return from_rc(rc);
  rc = bind_text(s, 1, player);
  if (rc == SQLITE_OK)
    rc = bind_text(s, 2, event_id);
  if (rc == SQLITE_OK)
    rc = sqlite3_bind_int64(s, 3, applied_at);
  if (rc == SQLITE_OK)
    rc = sqlite3_step(s);
  done(s);
  return rc == SQLITE_DONE ? TS_OK : from_rc(rc);
}

/* Writes the open transaction's pairs not yet written as applied_recent's
 * row c->pairs_id; the next pairs go to the row after it. */
static enum ts_status flush_pairs(struct conn *c) {
  if (c->pairs.len == 0)
    return TS_OK;
  buf_add(&c->pairs, "]", 1);
  enum ts_status st = buf_status(&c->pairs);
  int rc;
  sqlite3_stmt *s = st == TS_OK ? stmt(c, ST_ADD_APPLIED, &rc) : NULL;
  if (st == TS_OK && !s)
    st = from_rc(rc);
  if (st == TS_OK) {
    rc = sqlite3_bind_int64(s, 1, c->pairs_id);
    if (rc == SQLITE_OK)
      rc = sqlite3_bind_text(s, 2, c->pairs.data, (int)c->pairs.len,
                             SQLITE_STATIC);
    if (rc == SQLITE_OK)
      rc = sqlite3_step(s);
    done(s);
    st = rc == SQLITE_DONE ? TS_OK : from_rc(rc);
  }
  int64_t next_id = c->pairs_id + 1;
  reset_pairs(c);
  c->pairs_id = next_id;
  return st;
}

/* Records (player, event_id) as applied at now_s: in the text of the open
 * transaction's applied_recent row (written by flush_pairs before the
 * commit) and in memory, pending until the commit. *dup is set, and
 * nothing written, when the pair is in memory within the retention. */
static enum ts_status mark_applied(struct conn *c, struct recent *recent,
                                   const char *player, const char *event_id,
                                   int64_t now_s, bool *dup) {
  int rc;
  if (c->pairs_id == 0) { /* the transaction's first: its row's id */
    sqlite3_stmt *s = stmt(c, ST_NEXT_RECENT_ID, &rc);
    if (!s)
      return from_rc(rc);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
      c->pairs_id = sqlite3_column_int64(s, 0);
    done(s);
    if (rc != SQLITE_ROW)
      return from_rc(rc);
  }
  /* Memory first: it says whether the pair is there already. Whatever it
   * added is undone with the transaction if the row's text fails. */
  enum ts_status st = recent_add(recent, player, event_id, now_s, c->pairs_id,
                                 retention_cutoff(now_s), dup);
  if (st != TS_OK || *dup)
    return st;
  buf_add(&c->pairs, c->pairs.len ? ",[" : "[[", 2);
  buf_add_json_string(&c->pairs, player);
  buf_add(&c->pairs, ",", 1);
  buf_add_json_string(&c->pairs, event_id);
  buf_add(&c->pairs, ",", 1);
  buf_add_i64(&c->pairs, now_s);
  buf_add(&c->pairs, "]", 1);
  st = buf_status(&c->pairs);
  if (st == TS_OK && c->pairs.len >= TS_SQLITE_PAIRS_ROW_BYTES)
    st = flush_pairs(c);
  return st;
}

/* Notes a row the writer put. Out of memory, the row is not noted and
 * the leaderboards are built again (board_journal): a write never fails
 * for their sake. */
static void wrote_add(struct conn *c, const char *player,
                      const struct stats *st, const char *now_utc,
                      int64_t version) {
  if (c->n_wrote == c->cap_wrote) {
    size_t cap = c->cap_wrote ? c->cap_wrote * 2u : 64u;
    struct wrote *w = realloc(c->wrote, cap * sizeof *w);
    if (!w) {
      c->wrote_lost = true;
      return;
    }
    c->wrote = w;
    c->cap_wrote = cap;
  }
  struct wrote *w = &c->wrote[c->n_wrote++];
  w->player = player;
  w->stats = *st;
  /* A copy without snprintf's formatting machinery: 650 instructions, a
   * put of every player row (callgrind, docs/BENCHMARKS.md change 29). */
  size_t n = strnlen(now_utc, sizeof w->updated_at - 1);
  memcpy(w->updated_at, now_utc, n);
  w->updated_at[n] = '\0';
  w->version = version;
}

/* Writes a player's row over the one of version `before` (0: none, -1:
 * not read), which the write moves to before + 1. A known version is a
 * condition (ST_INSERT_PLAYER, ST_UPDATE_PLAYER: cheaper than the upsert,
 * which looks the row up twice): if the row is not as read, the copy of
 * rows was stale, and the attempt fails with TS_ERR_RETRY to read again.
 * The writer notes the row for the leaderboards, journaled once the
 * transaction commits. (RETURNING the version instead cost a batch of 100
 * a third more of the writer's time.) */
static enum ts_status put_player(struct conn *c, const char *player,
                                 const struct stats *st, const char *now_utc,
                                 const char *state, int64_t before) {
  int rc;
  char total[DECIMAL_TEXT_MAX];
  size_t len = decimal_format(st->total_score, total);
  enum stmt_id id = before < 0    ? ST_PUT_PLAYER
                    : before == 0 ? ST_INSERT_PLAYER
                                  : ST_UPDATE_PLAYER;
  sqlite3_stmt *s = stmt(c, id, &rc);
  if (!s)
    return from_rc(rc);
  rc = bind_text(s, 1, player);
  if (rc == SQLITE_OK)
    rc = sqlite3_bind_int64(s, 2, st->games);
  if (rc == SQLITE_OK)
    rc = sqlite3_bind_int64(s, 3, st->wins);
  if (rc == SQLITE_OK)
    rc = sqlite3_bind_text(s, 4, total, (int)len, SQLITE_TRANSIENT);
  if (rc == SQLITE_OK)
    rc = bind_text(s, 5, now_utc);
  int64_t avg_x100 = 0, pct_x100 = 0;
  if (rc == SQLITE_OK && stats_rank_keys(st, &avg_x100, &pct_x100) != TS_OK)
    rc = SQLITE_RANGE;
  if (rc == SQLITE_OK)
    rc = sqlite3_bind_int64(s, 6, avg_x100);
  if (rc == SQLITE_OK)
    rc = sqlite3_bind_int64(s, 7, pct_x100);
  if (rc == SQLITE_OK)
    rc = state ? bind_text(s, 8, state) : sqlite3_bind_null(s, 8);
  if (rc == SQLITE_OK && id == ST_UPDATE_PLAYER)
    rc = sqlite3_bind_int64(s, 9, before);
  if (rc == SQLITE_OK)
    rc = sqlite3_step(s);
  bool stale = id == ST_INSERT_PLAYER
                   ? rc != SQLITE_DONE && sqlite3_extended_errcode(c->db) ==
                                              SQLITE_CONSTRAINT_PRIMARYKEY
                   : id == ST_UPDATE_PLAYER && rc == SQLITE_DONE &&
                         sqlite3_changes(c->db) == 0;
  done(s);
  if (stale) {
    c->stale_rows++;
    row_cache_clear(c->rows);
    return TS_ERR_RETRY;
  }
  if (rc != SQLITE_DONE)
    return from_rc(rc);
  if (before >= 0) {
    wrote_add(c, player, st, now_utc, before + 1);
    row_cache_put(c->rows, player, st, before + 1);
  } else {
    c->wrote_lost = true;     /* the leaderboards are built again */
    row_cache_clear(c->rows); /* its version is not known */
  }
  return TS_OK;
}

static enum ts_status keep_dead_letters(struct conn *c, const struct batch *b,
                                        const char *now_utc);

/* The decision's view of the store: reads inside the open transaction, so
 * they see the transaction's earlier writes (earlier batches of a group). */
struct view_ctx {
  struct conn *c;
  const struct recent *recent;
  const struct pair_filter *filter; /* NULL: look every pair up */
  const struct batch *b;
  int64_t now_s;
  int64_t *versions; /* per player: the row's version read, -1 not read */
};

static enum ts_status view_stats(void *cls, size_t p, struct stats *out) {
  struct view_ctx *v = cls;
  const char *player = batch_player_name(v->b, p);
  if (row_cache_get(v->c->rows, player, out, &v->versions[p]))
    return TS_OK;
  enum ts_status st = read_stats(v->c, player, out, &v->versions[p]);
  if (st == TS_OK)
    row_cache_put(v->c->rows, player, out, v->versions[p]);
  return st;
}

static enum ts_status view_applied(void *cls, size_t p, const char *event_id,
                                   bool *seen) {
  struct view_ctx *v = cls;
  return was_applied(v->c, v->recent, v->filter, batch_player_name(v->b, p),
                     event_id, v->now_s, seen);
}

/* Writes what the decision decided for player p: the applied eventIDs and
 * the row, with its session state folded when a session is open. */
static enum ts_status write_player(struct conn *c, struct recent *recent,
                                   const struct batch *b, size_t p,
                                   const struct stats *stats, int64_t before,
                                   int64_t now_s, const char *now_utc,
                                   const char *session) {
  const char *player = batch_player_name(b, p);
  size_t n = batch_entry_count(b, p);
  for (size_t e = 0; e < n; e++) {
    if (batch_entry_outcome(b, p, e) != ENTRY_APPLIED)
      continue;
    bool dup = false;
    enum ts_status st = mark_applied(
        c, recent, player, batch_entry(b, p, e)->event_id, now_s, &dup);
    if (st != TS_OK)
      return st;
    if (dup) /* the view said unapplied, in this same transaction */
      return TS_ERR_IO;
  }
  char *stored = NULL, *next = NULL;
  struct stats ignored;
  enum ts_status st = TS_OK;
  if (session)
    st = read_player(c, player, &ignored, &stored, NULL, NULL);
  if (st == TS_OK)
    st = backfill_fold(stored, session, b, p, &next);
  if (st == TS_OK)
    st = put_player(c, player, stats, now_utc, next, before);
  free(stored);
  free(next);
  return st;
}

/* Applies one batch inside the open transaction: the domain decides, then
 * the writes. */
static enum ts_status apply_batch(struct conn *c, struct recent *recent,
                                  const struct pair_filter *filter,
                                  struct batch *b, int64_t now_s,
                                  const char *now_utc, const char *session) {
  size_t players = batch_player_count(b);
  struct view_ctx vc = {
      .c = c, .recent = recent, .filter = filter, .b = b, .now_s = now_s};
  const struct decide_view view = {.cls = &vc,
                                   .stats = view_stats,
                                   .applied = view_applied,
                                   .backfilling = session != NULL};
  struct decide_player *next = calloc(players ? players : 1, sizeof *next);
  vc.versions = malloc((players ? players : 1) * sizeof *vc.versions);
  if (!next || !vc.versions) {
    free(next);
    free(vc.versions);
    return TS_ERR_NOMEM;
  }
  for (size_t p = 0; p < players; p++)
    vc.versions[p] = -1;
  enum ts_status st = batch_decide(b, &view, next);
  for (size_t p = 0; p < players && st == TS_OK; p++)
    if (next[p].changed)
      st = write_player(c, recent, b, p, &next[p].next, vc.versions[p], now_s,
                        now_utc, session);
  if (st == TS_OK)
    st = keep_dead_letters(c, b, now_utc);
  free(next);
  free(vc.versions);
  return st;
}

static enum ts_status keep_dead_letters(struct conn *c, const struct batch *b,
                                        const char *now_utc) {
  int rc;
  size_t n = batch_rejected_count(b);
  if (n == 0)
    return TS_OK;
  sqlite3_stmt *s = stmt(c, ST_ADD_DEAD, &rc);
  if (!s)
    return from_rc(rc);
  for (size_t i = 0; i < n; i++) {
    const char *event_id, *item, *reason, *record;
    batch_rejected(b, i, &event_id, &item, &reason, &record);
    rc = bind_text(s, 1, event_id);
    if (rc == SQLITE_OK)
      rc = bind_text(s, 2, item);
    if (rc == SQLITE_OK)
      rc = bind_text(s, 3, reason ? reason : "rejected");
    if (rc == SQLITE_OK)
      rc = bind_text(s, 4, record);
    if (rc == SQLITE_OK)
      rc = bind_text(s, 5, now_utc);
    char id[65];
    batch_rejected_id(b, i, id);
    if (rc == SQLITE_OK)
      rc = bind_text(s, 6, id);
    if (rc == SQLITE_OK)
      rc = sqlite3_step(s);
    done(s);
    if (rc != SQLITE_DONE)
      return from_rc(rc);
  }
  return TS_OK;
}

/* One step of the purge's sweep, in the open write transaction: reads
 * the next `rows` keys after the sweep's, then deletes the expired ones
 * among them, and sets *next_player / *next_event (new strings, or NULL
 * at the table's end: the next step starts over) to the last key read.
 * Reading is a few hundred instructions a row; only expired rows pay for
 * a delete. */
static enum ts_status purge_applied(struct sq *sq, int64_t now_s, size_t rows,
                                    char **next_player, char **next_event) {
  struct conn *c = &sq->w;
  const char *from_p = sq->purge_player ? sq->purge_player : "";
  const char *from_e = sq->purge_event ? sq->purge_event : "";
  int64_t cutoff = retention_cutoff(now_s);
  *next_player = *next_event = NULL;
  const char **expired = malloc(2 * rows * sizeof *expired);
  struct arena *keys = arena_new(rows * 32);
  size_t n_expired = 0, n_read = 0;
  int rc = expired && keys ? SQLITE_OK : SQLITE_NOMEM;
  sqlite3_stmt *s = rc == SQLITE_OK ? stmt(c, ST_PURGE_SCAN, &rc) : NULL;
  if (!s)
    goto out;
  rc = bind_text(s, 1, from_p);
  if (rc == SQLITE_OK)
    rc = bind_text(s, 2, from_e);
  if (rc == SQLITE_OK)
    rc = sqlite3_bind_int64(s, 3, (sqlite3_int64)rows);
  const char *last_p = NULL, *last_e = NULL;
  while (rc == SQLITE_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
    rc = SQLITE_OK;
    n_read++;
    bool old = sqlite3_column_int64(s, 2) < cutoff;
    if (!old && n_read < rows)
      continue; /* neither expired nor the window's last key */
    const char *p = (const char *)sqlite3_column_text(s, 0),
               *e = (const char *)sqlite3_column_text(s, 1);
    const char *kp = p ? arena_strndup(keys, p, strlen(p)) : NULL,
               *ke = e ? arena_strndup(keys, e, strlen(e)) : NULL;
    if (!kp || !ke) {
      rc = SQLITE_NOMEM;
      break;
    }
    if (old) {
      expired[2 * n_expired] = kp;
      expired[2 * n_expired + 1] = ke;
      n_expired++;
    }
    last_p = kp;
    last_e = ke;
  }
  done(s);
  if (rc != SQLITE_DONE)
    goto out;
  rc = SQLITE_OK;
  if (n_read == rows && last_p) { /* more may follow: resume after it */
    *next_player = strdup(last_p);
    *next_event = strdup(last_e);
    if (!*next_player || !*next_event)
      rc = SQLITE_NOMEM;
  }
  for (size_t i = 0; rc == SQLITE_OK && i < n_expired; i++) {
    if (!(s = stmt(c, ST_PURGE_KEY, &rc)))
      break;
    rc = bind_text(s, 1, expired[2 * i]);
    if (rc == SQLITE_OK)
      rc = bind_text(s, 2, expired[2 * i + 1]);
    if (rc == SQLITE_OK)
      rc = sqlite3_bind_int64(s, 3, cutoff);
    if (rc == SQLITE_OK)
      rc = sqlite3_step(s);
    done(s);
    if (rc == SQLITE_DONE)
      rc = SQLITE_OK;
  }
out:
  free(expired);
  arena_free(keys);
  if (rc == SQLITE_OK)
    return TS_OK;
  free(*next_player);
  free(*next_event);
  *next_player = *next_event = NULL;
  return from_rc(rc);
}

/* ---- applied_recent: pairs moved into applied_events ---- */

/* Ends the build under way, if any, without its filter. */
static void build_drop(struct sq *sq) {
  pair_filter_free(sq->build);
  sq->build = NULL;
  free(sq->build_p);
  free(sq->build_e);
  sq->build_p = sq->build_e = NULL;
  sq->build_rows = 0;
}

/* A pair of a cycle moved into applied_events; the filter and the build,
 * if any, take it too, since it leaves memory when the cycle ends. */
static enum ts_status put_merged(void *cls, const struct recent_pair *p) {
  struct sq *sq = cls;
  if (sq->filter)
    pair_filter_add(sq->filter, p->player, p->event_id);
  if (sq->build)
    pair_filter_add(sq->build, p->player, p->event_id);
  return merge_pair(&sq->w, p->player, p->event_id, p->applied_at);
}

static enum ts_status drop_recent(struct conn *c, int64_t max_rowid) {
  int rc;
  sqlite3_stmt *s = stmt(c, ST_DROP_RECENT, &rc);
  if (!s)
    return from_rc(rc);
  rc = sqlite3_bind_int64(s, 1, max_rowid);
  if (rc == SQLITE_OK)
    rc = sqlite3_step(s);
  done(s);
  return rc == SQLITE_DONE ? TS_OK : from_rc(rc);
}

/* The cycle's next pairs into applied_events, as many as `records`
 * records bring, or proportionally more from a snapshot over
 * recent_merge_rows (tend_recent); the cycle's rows leave applied_recent
 * with its last slice. */
static enum ts_status move_slice(struct sq *sq, size_t records) {
  size_t max = records;
  size_t snap = recent_cycle_size(sq->recent);
  if (sq->recent_merge_rows > 0 && snap > sq->recent_merge_rows)
    max = (max * snap + sq->recent_merge_rows - 1) / sq->recent_merge_rows;
  bool last = false;
  int64_t max_rowid = 0;
  enum ts_status st =
      recent_slice(sq->recent, max, put_merged, sq, &last, &max_rowid);
  if (st == TS_OK && last)
    st = drop_recent(&sq->w, max_rowid);
  return st;
}

/* With wmu held: the writer's data_version just read. */
static void note_others_dv(struct sq *sq, int64_t dv) {
  if (dv != sq->others_dv) {
    sq->others_dv = dv;
    atomic_fetch_add(&sq->others_epoch, 1);
  }
}

/* Whether what the writer holds in memory of its own commits (the pairs
 * of applied_recent, the copy of rows) may be stale: before its first
 * write transaction, or when another connection has committed since
 * (the data_version read in this transaction is not the one it last
 * committed at). */
static bool others_wrote(const struct sq *sq, int64_t version) {
  return !sq->recent_known || version != sq->recent_version;
}

/* In the open write transaction, before its batches: keeps the pairs in
 * memory true to applied_recent, and moves a slice of them into
 * applied_events. A slice moves at least as many pairs as the transaction
 * is about to add (records), so a cycle ends before as many new pairs as
 * it moves have come in, and memory stays within a few cycles' pairs.
 * The floor of recent_slice_rows keeps small transactions' cycles short;
 * a transaction begun early (before its batch, while it travels) moves
 * just its planned records, so that the work fits in that time. A cycle's
 * last slice is short while its transaction adds in full, so the next
 * snapshot can be larger by up to a transaction's records: a snapshot over
 * recent_merge_rows moves in proportionally larger slices, or snapshots
 * would creep up, cycle by cycle, to the bound where every pair moves at
 * once (with 32 senders of batches of 100, a stall of 0.2 s every few
 * seconds).
 * *version is the data_version to remember once the transaction commits;
 * *moved_all is set when every pair moved at once. */
static enum ts_status tend_recent(struct sq *sq, size_t records, bool early,
                                  int64_t *version, bool *moved_all) {
  struct conn *c = &sq->w;
  int rc;
  sqlite3_stmt *s = stmt(c, ST_DATA_VERSION, &rc);
  if (!s)
    return from_rc(rc);
  rc = sqlite3_step(s);
  if (rc == SQLITE_ROW)
    *version = sqlite3_column_int64(s, 0);
  done(s);
  if (rc != SQLITE_ROW)
    return from_rc(rc);
  note_others_dv(sq, *version);
  atomic_store(&sq->in_checked_txn, true);
  /* Memory is not known to match the table: the first transaction, another
   * connection committed (it may have added or moved pairs), or past the
   * bound. Every row moves at once, and memory lets go at the commit. */
  if (others_wrote(sq, *version) ||
      recent_count(sq->recent) >= sq->recent_max_rows) {
    sq->filter_ok = false; /* pairs it never saw move */
    sq->filter_due = true;
    build_drop(sq);
    rc = run_plain(c, ST_MERGE_RECENT);
    if (rc == SQLITE_OK)
      rc = run_plain(c, ST_CLEAR_RECENT);
    if (rc != SQLITE_OK)
      return from_rc(rc);
    recent_drop_committed(sq->recent);
    *moved_all = true;
    return TS_OK;
  }
  enum ts_status st = TS_OK;
  if (recent_cycle_size(sq->recent) == 0) {
    if (recent_count(sq->recent) < sq->recent_merge_rows)
      return TS_OK;
    if ((st = recent_cycle_start(sq->recent)) != TS_OK)
      return st;
  }
  return move_slice(sq, early || records > sq->recent_slice_rows
                            ? records
                            : sq->recent_slice_rows);
}

/* Begins a build (dropping one under way) sized for four times `pairs`,
 * the pairs the table is thought to hold, so that it has room for three
 * times as many again before it fills and is built again: the scans then
 * add up to about a third of the pairs ever moved in. Out of memory, no
 * build: lookups, as without a filter, until the next try. */
static void build_begin(struct sq *sq, size_t pairs, int64_t version) {
  build_drop(sq);
  size_t cap =
      pairs > sq->filter_max_pairs / 4 ? sq->filter_max_pairs : 4 * pairs;
  if (cap < sq->filter_min_pairs)
    cap = sq->filter_min_pairs;
  if (cap > sq->filter_max_pairs)
    cap = sq->filter_max_pairs;
  sq->build = pair_filter_new(cap);
  sq->build_version = version;
  sq->filter_counts++;
}

enum build_step {
  BUILD_MORE,      /* keys left to read */
  BUILD_DONE,      /* it holds every pair of applied_events */
  BUILD_LARGER,    /* past half its capacity: begin a larger one */
  BUILD_TOO_LARGE, /* more than filter_max_pairs * MAX_LOAD: no filter */
};

/* In the open write transaction, after tend_recent (the pairs it moves go
 * into the build through put_merged): the build's next slice of at most
 * `rows` keys of applied_events, in key order. */
static enum ts_status build_slice(struct sq *sq, size_t rows,
                                  enum build_step *step) {
  struct conn *c = &sq->w;
  char *last_p = NULL, *last_e = NULL;
  size_t n = 0;
  int rc;
  sqlite3_stmt *s =
      stmt(c, sq->build_p ? ST_FILTER_AFTER : ST_FILTER_FIRST, &rc);
  if (!s)
    return from_rc(rc);
  rc = sqlite3_bind_int64(s, 1, (sqlite3_int64)rows);
  if (rc == SQLITE_OK && sq->build_p)
    rc = bind_text(s, 2, sq->build_p);
  if (rc == SQLITE_OK && sq->build_p)
    rc = bind_text(s, 3, sq->build_e);
  while (rc == SQLITE_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
    const char *p = (const char *)sqlite3_column_text(s, 0),
               *e = (const char *)sqlite3_column_text(s, 1);
    rc = p && e ? SQLITE_OK : SQLITE_NOMEM; /* NOT NULL columns */
    if (rc != SQLITE_OK)
      break;
    pair_filter_add(sq->build, p, e);
    if (++n == rows) { /* the slice's last key: the next one resumes */
      last_p = strdup(p);
      last_e = strdup(e);
      if (!last_p || !last_e)
        rc = SQLITE_NOMEM;
    }
  }
  done(s);
  if (rc != SQLITE_DONE) {
    free(last_p);
    free(last_e);
    return from_rc(rc);
  }
  free(sq->build_p);
  free(sq->build_e);
  sq->build_p = last_p;
  sq->build_e = last_e;
  sq->build_rows += n;
  if (n > sq->build_most)
    sq->build_most = n;
  size_t cap = pair_filter_capacity(sq->build);
  if (sq->build_rows > sq->filter_max_pairs * TS_SQLITE_FILTER_MAX_LOAD)
    *step = BUILD_TOO_LARGE;
  else if (pair_filter_added(sq->build) > cap / 2 && cap < sq->filter_max_pairs)
    *step = BUILD_LARGER;
  else if (!last_p) /* fewer keys than asked: the table's end */
    *step = BUILD_DONE;
  else
    *step = BUILD_MORE;
  return TS_OK;
}

/* In the open write transaction whose data_version is version, for
 * `planned` records: whether the filter answers in it (filter_live),
 * beginning a build when one is due and taking its next slice (see
 * struct sq). */
static enum ts_status tend_filter(struct sq *sq, int64_t version,
                                  uint64_t now_ms, size_t planned) {
  if (version != sq->seen_version) {
    if (sq->seen_version >= 0) /* not the first reading */
      sq->version_moved_ms = now_ms;
    sq->seen_version = version;
  }
  if (sq->filter_ok && version != sq->filter_version)
    sq->filter_ok = false;
  if (sq->build && version != sq->build_version)
    build_drop(sq); /* another connection wrote behind the build's back */
  /* Full: it answers, with more false positives, until a larger one is
   * built; one of the largest size, once it has taken twice the pairs it
   * was built with (bounds.h). */
  size_t added = sq->filter ? pair_filter_added(sq->filter) : 0;
  if (!sq->build && sq->filter_ok && added > pair_filter_capacity(sq->filter) &&
      (pair_filter_capacity(sq->filter) < sq->filter_max_pairs ||
       added / 2 > sq->filter_built))
    build_begin(sq, added, version);
  /* Other connections quiet, and a build due: by our own doing, or the
   * last try (perhaps a table too large) long enough ago. */
  bool quiet = now_ms - sq->version_moved_ms >= sq->filter_quiet_ms;
  bool due =
      sq->filter_due || now_ms - sq->filter_tried_ms >= sq->filter_wait_ms;
  if (!sq->build && !sq->filter_ok && quiet && due) {
    sq->filter_tried_ms = now_ms;
    sq->filter_due = false;
    build_begin(sq, sq->filter ? pair_filter_added(sq->filter) : 0, version);
  }
  if (sq->build) {
    size_t rows = sq->build_scan_rows;
    if (!rows) {
      rows = planned * TS_SQLITE_FILTER_SCAN_PER_RECORD;
      rows = rows < TS_SQLITE_FILTER_SCAN_MIN   ? TS_SQLITE_FILTER_SCAN_MIN
             : rows > TS_SQLITE_FILTER_SCAN_MAX ? TS_SQLITE_FILTER_SCAN_MAX
                                                : rows;
    }
    enum build_step step = BUILD_MORE;
    enum ts_status st = build_slice(sq, rows, &step);
    if (st != TS_OK)
      return st;
    uint64_t wait = 0;
    switch (step) {
    case BUILD_MORE: break;
    case BUILD_LARGER:
      build_begin(sq, 2 * pair_filter_added(sq->build), version);
      break;
    case BUILD_DONE:
      pair_filter_free(sq->filter);
      sq->filter = sq->build;
      sq->filter_built = pair_filter_added(sq->filter);
      sq->build = NULL;
      build_drop(sq); /* the cursor */
      sq->filter_ok = true;
      sq->filter_version = version;
      sq->filter_wait_ms = sq->filter_quiet_ms;
      break;
    case BUILD_TOO_LARGE:
      /* It stays so for a while (pairs leave it 26 hours after they
       * came), and finding it so reads MAX_LOAD times the bound's keys. */
      build_drop(sq);
      pair_filter_free(sq->filter);
      sq->filter = NULL;
      sq->filter_ok = false;
      wait = 2 * sq->filter_wait_ms;
      if (wait < sq->filter_quiet_ms)
        wait = sq->filter_quiet_ms;
      if (wait > TS_SQLITE_FILTER_TOO_LARGE_MAX_MS)
        wait = TS_SQLITE_FILTER_TOO_LARGE_MAX_MS;
      sq->filter_wait_ms = wait;
      break;
    }
  }
  sq->filter_live = sq->filter_ok;
  return TS_OK;
}

/* Logs a failed write with SQLite's own words and the file; a full disk
 * also turns readiness off (sq_ping) until space is back. */
static void write_failed(struct sq *sq, struct conn *c) {
  int code = sqlite3_extended_errcode(c->db);
  bool full = (code & 0xff) == SQLITE_FULL;
  if (full)
    atomic_store(&sq->out_of_space, true);
  log_event(LOG_ERROR,
            full ? "SQLite: the disk is full" : "SQLite write failed",
            "{s:s, s:i, s:s}", "path", sq->path, "code", code, "error",
            sqlite3_errmsg(c->db));
}

struct apply_ctx {
  struct sq *sq;
  struct batch **b; /* the group, applied in order */
  size_t n;
  uint64_t deadline_ms;
};

static void board_journal(struct sq *sq, bool committed);

/* At the end of a write transaction: the rows put are journaled for the
 * leaderboards and kept in the copy if committed; else both forget them
 * (the copy forgets everything: what it was given may be rolled back). */
static void end_writes(struct sq *sq, bool committed) {
  board_journal(sq, committed);
  if (!committed)
    row_cache_clear(sq->w.rows);
}

/* A write transaction in three steps, so that the committer can begin one
 * before its batches are known (sq_expect_write): wtx_begin locks the
 * writer, opens the IMMEDIATE transaction and does its housekeeping (the
 * purge's sweep, moving pairs, the filter) sized for `planned` records;
 * wtx_commit applies the batches, commits, and ends it through wtx_end,
 * which rolls back what did not commit and unlocks the writer. */
struct wtx {
  char *session;           /* the open backfill session, if any */
  char *purge_p, *purge_e; /* the sweep's next key */
  int64_t version, now_s;
  uint64_t now_ms;
  char now_utc[32];
  size_t planned;
  bool moved_all; /* tend_recent moved every pair at once */
};

static void wtx_end(struct sq *sq, struct wtx *w, enum ts_status st) {
  struct conn *c = &sq->w;
  free(w->purge_p);
  free(w->purge_e);
  free(w->session);
  reset_pairs(c);
  /* Read before the rollback, which sets its own code. */
  int code = st == TS_OK ? SQLITE_OK : sqlite3_extended_errcode(c->db);
  if (st != TS_OK && st != TS_ERR_RETRY)
    write_failed(sq, c);
  if (!sqlite3_get_autocommit(c->db))
    (void)run_plain(c, ST_ROLLBACK);
  if (st != TS_OK) {
    recent_rollback(sq->recent);
    /* What the filter or the build read may be rolled back. */
    sq->filter_ok = false;
    build_drop(sq);
  }
  sq->filter_live = false;
  end_writes(sq, st == TS_OK);
  if (st == TS_OK)
    atomic_store(&sq->out_of_space, false);
  else if ((code & 0xff) == SQLITE_FULL)
    /* Give back what the WAL holds beyond the last commit. */
    (void)sqlite3_wal_checkpoint_v2(c->db, NULL, SQLITE_CHECKPOINT_TRUNCATE,
                                    NULL, NULL);
  end_wait(sq); /* that checkpoint may have waited */
  atomic_store(&sq->in_checked_txn, false);
  pthread_mutex_unlock(&sq->wmu);
}

/* TS_OK: the transaction is open with the writer locked, for wtx_commit.
 * Else nothing is held. planned: the records it expects; early: begun
 * before they came (lead_expected), its housekeeping sized to fit the
 * time they take to arrive (tend_recent). */
static enum ts_status wtx_begin(struct sq *sq, struct wtx *w, size_t planned,
                                bool early, uint64_t deadline_ms) {
  struct conn *c = &sq->w;
  *w = (struct wtx){.planned = planned};
  enum ts_status st = writer_lock(sq, deadline_ms);
  if (st != TS_OK)
    return st;

  /* Wait for another process's write lock no longer than the deadline. */
  w->now_ms = clock_now_ms();
  uint64_t left = deadline_ms > w->now_ms ? deadline_ms - w->now_ms : 0;
  int rc = begin_write(sq, (uint32_t)(left < TS_SQLITE_BUSY_TIMEOUT_MS
                                          ? left + 1u
                                          : TS_SQLITE_BUSY_TIMEOUT_MS));
  if (rc != SQLITE_OK) {
    st = from_rc(rc);
    goto fail;
  }
  clock_utc_now(w->now_utc);
  w->now_s = (int64_t)time(NULL);
  /* A step of the purge's sweep, to keep the table small: what counts as
   * "seen" depends only on applied_at (ST_IS_APPLIED), so when a row goes
   * is only a matter of size. */
  size_t scan = planned * sq->purge_per_record;
  scan = scan < SQ_PURGE_SCAN_MIN   ? SQ_PURGE_SCAN_MIN
         : scan > SQ_PURGE_SCAN_MAX ? SQ_PURGE_SCAN_MAX
                                    : scan;
  if (sq->purge_per_record &&
      (st = purge_applied(sq, w->now_s, scan, &w->purge_p, &w->purge_e)) !=
          TS_OK)
    goto fail;
  if ((st = tend_recent(sq, planned, early, &w->version, &w->moved_all)) !=
      TS_OK)
    goto fail;
  if (others_wrote(sq, w->version))
    row_cache_clear(c->rows);
  if ((st = tend_filter(sq, w->version, w->now_ms, planned)) != TS_OK)
    goto fail;
  /* The open backfill session, read under the write lock: every write of
   * this transaction is tracked, or none (domain/backfill.h). */
  if ((st = read_session(c, &w->session)) != TS_OK)
    goto fail;
  return TS_OK;
fail:
  wtx_end(sq, w, st);
  return st;
}

/* Applies b[0..n-1], `records` records in all, in order (a later batch
 * sees an earlier one's eventIDs) and commits; either way the transaction
 * ends. */
static enum ts_status wtx_commit(struct sq *sq, struct wtx *w, struct batch **b,
                                 size_t n, size_t records) {
  struct conn *c = &sq->w;
  enum ts_status st = TS_OK;
  /* Begun for fewer records than came: a cycle moves as many as it adds. */
  if (records > w->planned && !w->moved_all &&
      recent_cycle_size(sq->recent) > 0)
    st = move_slice(sq, records - w->planned);
  for (size_t i = 0; st == TS_OK && i < n; i++)
    st = apply_batch(c, sq->recent, sq->filter_live ? sq->filter : NULL, b[i],
                     w->now_s, w->now_utc, w->session);
  if (st == TS_OK)
    st = flush_pairs(c);
  if (st == TS_OK)
    st = from_rc(run_plain(c, ST_COMMIT));
  if (st == TS_OK) {
    recent_commit(sq->recent);
    sq->recent_version = w->version;
    sq->recent_known = true;
  }
  if (st == TS_OK && sq->purge_per_record) { /* the sweep moves on */
    free(sq->purge_player);
    free(sq->purge_event);
    sq->purge_player = w->purge_p;
    sq->purge_event = w->purge_e;
    w->purge_p = w->purge_e = NULL;
  }
  wtx_end(sq, w, st);
  return st;
}

/* One attempt: every batch of the group in one IMMEDIATE transaction,
 * rolled back on any failure before the writer is unlocked. */
static enum ts_status apply_attempt(void *cls) {
  struct apply_ctx *a = cls;
  size_t records = 0;
  for (size_t i = 0; i < a->n; i++)
    records += batch_record_count(a->b[i]);
  struct wtx w;
  enum ts_status st = wtx_begin(a->sq, &w, records, false, a->deadline_ms);
  return st == TS_OK ? wtx_commit(a->sq, &w, a->b, a->n, records) : st;
}

static enum ts_status apply_group(struct sq *sq, struct batch **b, size_t n,
                                  uint64_t deadline_ms) {
  struct apply_ctx a = {.sq = sq, .b = b, .n = n, .deadline_ms = deadline_ms};
  return store_run_tx("sqlite.apply", apply_attempt, &a, NULL, deadline_ms);
}

/* Group commit. Every batch is queued; one thread at a time leads: it
 * takes the waiting batches (bounded), applies them in one transaction and
 * hands each its outcome. Under concurrency this turns N fsyncs into one.
 * A store_apply caller leads itself when nobody does (a lone caller leads
 * its own group of one at no extra cost); batches queued by
 * store_apply_async are led by whoever leads, or by the committer thread
 * when nobody does, so that the HTTP thread that queued one never blocks
 * and no worker thread sits between it and the commit. A group runs to the
 * earliest deadline among its batches, so no batch waits past its own
 * deadline. A sleeping caller is woken only when its batch is done or, at
 * the head of the queue, when the leader leaves; the leader posts after
 * releasing the mutex. (A shared condition variable woke every waiter per
 * group, and each woken thread then queued for the mutex the leader still
 * held: a fifth of a single-record POST's time went to that, perf in
 * docs/BENCHMARKS.md.) */

/* Whom a group's end hands something to, after the queue mutex is
 * released: sleepers to post, asynchronous batches to call back. */
struct handoff {
  struct pending *wake[SQ_GROUP_MAX_BATCHES + 1];
  size_t n_wake;
  struct pending *call[SQ_GROUP_MAX_BATCHES];
  size_t n_call;
};

static void enqueue(struct sq *sq, struct pending *p) {
  if (sq->q_tail)
    sq->q_tail->next = p;
  else
    sq->q_head = p;
  sq->q_tail = p;
}

static uint64_t own_deadline(struct sq *sq, uint64_t deadline_ms) {
  uint64_t own = clock_now_ms() + atomic_load(&sq->apply_deadline_ms);
  return deadline_ms < own ? deadline_ms : own;
}

/* With qmu held and nobody leading (or, with pre, by the committer that
 * has begun pre): leads one group, in pre if given (the group may then be
 * empty: the housekeeping commits alone). Returns with qmu held, nobody
 * leading, and what to hand off in *h. */
static void lead_group(struct sq *sq, struct handoff *h, struct wtx *pre) {
  struct batch *group[SQ_GROUP_MAX_BATCHES];
  struct pending *taken[SQ_GROUP_MAX_BATCHES];
  sq->leader = true;
  size_t n = 0, records = 0;
  uint64_t deadline = UINT64_MAX;
  while (sq->q_head && n < SQ_GROUP_MAX_BATCHES &&
         (n == 0 || records + batch_record_count(sq->q_head->b) <=
                        SQ_GROUP_MAX_RECORDS)) {
    struct pending *p = sq->q_head;
    sq->q_head = p->next;
    if (!sq->q_head)
      sq->q_tail = NULL;
    records += batch_record_count(p->b);
    deadline = p->deadline_ms < deadline ? p->deadline_ms : deadline;
    taken[n] = p;
    group[n++] = p->b;
  }
  if (n > 0) {
    sq->last_records = records;
    sq->expected = false; /* met by this group, or by the next */
  }
  pthread_mutex_unlock(&sq->qmu);

  /* A begun transaction that fails is not the group's answer: the group
   * then runs as any, through the runner. */
  enum ts_status st =
      pre ? wtx_commit(sq, pre, group, n, records) : TS_ERR_RETRY;
  if (pre)
    store_note_early_transaction(n > 0);
  if (st != TS_OK && n > 0)
    st = apply_group(sq, group, n, deadline);
  /* A failure that is not about contention may be one batch's own doing:
   * apply each alone so the others are not held hostage to it. */
  bool alone = n > 1 && st != TS_OK && st != TS_ERR_UNAVAILABLE;
  for (size_t i = 0; i < n; i++)
    taken[i]->st =
        alone ? apply_group(sq, &group[i], 1, taken[i]->deadline_ms) : st;

  /* Whose `waiting` is cleared here is posted after the unlock: it sleeps
   * until then, so its pending (on its stack) stays valid. */
  h->n_wake = h->n_call = 0;
  pthread_mutex_lock(&sq->qmu);
  for (size_t i = 0; i < n; i++) {
    taken[i]->done = true;
    if (taken[i]->on_done) {
      h->call[h->n_call++] = taken[i];
    } else if (taken[i]->waiting) {
      taken[i]->waiting = false;
      h->wake[h->n_wake++] = taken[i];
    }
  }
  sq->leader = false;
  /* HTTP batches (store_apply_async): their senders' next batches come
   * while these answers travel, so the next transaction begins now. */
  if (h->n_call > 0 && !sq->q_head && sq->committer_running && !sq->stopping) {
    sq->expected = true;
    pthread_cond_signal(&sq->ccv);
  }
}

/* With qmu held, by the committer, when a batch is expected while nobody
 * leads and nothing waits: begins the transaction and its housekeeping
 * now, while the batch travels and is parsed on an HTTP thread (with one
 * sender these would otherwise run one after the other), then leads the
 * group that has come within TS_SQLITE_EXPECT_WAIT_MS, or none: the
 * housekeeping then commits alone, as it does at once when another thread
 * claims the writer. Returns as lead_group. */
static void lead_expected(struct sq *sq, struct handoff *h) {
  sq->expected = false;
  sq->leader = true; /* callers that queue meanwhile wait for this group */
  size_t planned = sq->last_records ? sq->last_records : 1;
  pthread_mutex_unlock(&sq->qmu);
  struct wtx w;
  enum ts_status st =
      others_waiting(sq)
          ? TS_ERR_RETRY
          : wtx_begin(sq, &w, planned, true, own_deadline(sq, UINT64_MAX));
  pthread_mutex_lock(&sq->qmu);
  if (st != TS_OK) { /* whatever waits is led as usual */
    sq->leader = false;
    h->n_wake = h->n_call = 0;
    return;
  }
  uint64_t until = clock_now_ms() + atomic_load(&sq->expect_wait_ms);
  sq->expecting = true;
  for (;;) {
    uint64_t now = clock_now_ms();
    if (sq->q_head || sq->stopping || atomic_load(&sq->w_wanted) ||
        now >= until || others_waiting(sq))
      break;
    uint64_t slice =
        until - now < SQ_EXPECT_POLL_MS ? until - now : SQ_EXPECT_POLL_MS;
    struct timespec ts = clock_deadline_abs(CLOCK_REALTIME, slice);
    (void)pthread_cond_timedwait(&sq->ccv, &sq->qmu, &ts);
  }
  sq->expecting = false;
  lead_group(sq, h, &w);
}

/* With qmu held, by a leader that leaves: the next group is led by the
 * first caller still sleeping, or by the committer. */
static void pass_lead(struct sq *sq, struct handoff *h) {
  if (sq->q_head && sq->q_head->waiting) {
    sq->q_head->waiting = false;
    h->wake[h->n_wake++] = sq->q_head;
  } else if (sq->q_head || sq->stopping) {
    pthread_cond_signal(&sq->ccv);
  }
}

/* Without qmu: posts the sleepers, calls the asynchronous callers back. */
static void hand_off(struct handoff *h) {
  for (size_t i = 0; i < h->n_wake; i++)
    sem_post(&h->wake[i]->wake);
  for (size_t i = 0; i < h->n_call; i++) {
    struct pending *p = h->call[i];
    p->on_done(p->on_done_cls, p->st);
    free(p);
  }
}

static enum ts_status sq_apply(void *impl, struct batch *b,
                               uint64_t deadline_ms) {
  struct sq *sq = impl;
  struct pending me = {.b = b, .deadline_ms = own_deadline(sq, deadline_ms)};
  struct handoff h;
  if (sem_init(&me.wake, 0, 0) != 0)
    return TS_ERR_NOMEM;

  pthread_mutex_lock(&sq->qmu);
  enqueue(sq, &me);
  if (sq->expecting)
    pthread_cond_signal(&sq->ccv);
  while (!me.done) {
    if (sq->leader) {
      me.waiting = true;
      pthread_mutex_unlock(&sq->qmu);
      while (sem_wait(&me.wake) != 0 && errno == EINTR)
        ;
      pthread_mutex_lock(&sq->qmu);
      continue;
    }
    lead_group(sq, &h, NULL);
    if (me.done) /* this one leaves */
      pass_lead(sq, &h);
    pthread_mutex_unlock(&sq->qmu);
    hand_off(&h); /* if not done, this one leads again at once */
    pthread_mutex_lock(&sq->qmu);
  }
  pthread_mutex_unlock(&sq->qmu);
  sem_destroy(&me.wake);
  return me.st;
}

static enum ts_status sq_apply_async(void *impl, struct batch *b,
                                     uint64_t deadline_ms,
                                     store_done_fn on_done, void *cls) {
  struct sq *sq = impl;
  struct pending *p = calloc(1, sizeof *p);
  if (!p)
    return TS_ERR_NOMEM;
  *p = (struct pending){.b = b,
                        .deadline_ms = own_deadline(sq, deadline_ms),
                        .on_done = on_done,
                        .on_done_cls = cls};
  pthread_mutex_lock(&sq->qmu);
  bool stopping = sq->stopping || !sq->committer_running;
  if (!stopping) {
    enqueue(sq, p);
    if (!sq->leader || sq->expecting)
      pthread_cond_signal(&sq->ccv);
  }
  pthread_mutex_unlock(&sq->qmu);
  if (stopping) {
    free(p);
    return TS_ERR_UNAVAILABLE;
  }
  return TS_OK;
}

static void sq_expect_write(void *impl) {
  struct sq *sq = impl;
  pthread_mutex_lock(&sq->qmu);
  /* Only an idle committer begins early; a group under way, or one
   * waiting, is led as it is. */
  if (!sq->leader && !sq->q_head && !sq->expected && sq->committer_running &&
      !sq->stopping) {
    sq->expected = true;
    pthread_cond_signal(&sq->ccv);
  }
  pthread_mutex_unlock(&sq->qmu);
}

/* The committer: leads while batches wait and nobody else leads; ends when
 * sq_close stops it and the queue is empty. */
static void *committer_main(void *arg) {
  struct sq *sq = arg;
  struct handoff h;
  pthread_mutex_lock(&sq->qmu);
  for (;;) {
    bool lead = sq->q_head && !sq->leader;
    if (lead || (sq->expected && !sq->leader && !sq->stopping)) {
      if (lead) /* then leads again while batches wait */
        lead_group(sq, &h, NULL);
      else
        lead_expected(sq, &h);
      pthread_mutex_unlock(&sq->qmu);
      hand_off(&h);
      pthread_mutex_lock(&sq->qmu);
      continue;
    }
    if (sq->stopping && !sq->q_head)
      break;
    pthread_cond_wait(&sq->ccv, &sq->qmu);
  }
  pthread_mutex_unlock(&sq->qmu);
  return NULL;
}

/* Checkpoints. SQLite's own checkpoint runs in the committing thread,
 * inside the commit that crossed the threshold: with a large database it
 * copies thousands of distinct pages, and every request queued behind
 * that commit waited for it (docs/BENCHMARKS.md, change 17). Here the
 * writer's commits only kick the checkpointer thread, whose PASSIVE
 * checkpoints run beside the writer (SQLite lets one checkpoint run with
 * readers and a writer). What the writer appended meanwhile is left for
 * the writer to copy itself after its next commit, a short catch-up:
 * SQLite starts the WAL over only when a write transaction begins with
 * every frame copied, and under steady writes that never happens between
 * two of the writer's transactions. Correctness stays SQLite's: a
 * checkpoint, by any connection, copies only committed frames and never
 * one a reader still needs. */

/* The writer's wal hook, after each commit, with the WAL's frame count. */
static int on_wal_commit(void *cls, sqlite3 *db, const char *name, int frames) {
  (void)name;
  struct sq *sq = cls;
  if (frames < (int)TS_SQLITE_WAL_CHECKPOINT_PAGES)
    return SQLITE_OK;
  pthread_mutex_lock(&sq->kmu);
  /* A disk slower than the writes: wait for the round, then copy. */
  if (frames >= (int)TS_SQLITE_WAL_STALL_PAGES)
    while (sq->ckpt_busy)
      pthread_cond_wait(&sq->kcv, &sq->kmu);
  bool copy = sq->ckpt_ended || !sq->ckpt_running ||
              frames >= (int)TS_SQLITE_WAL_STALL_PAGES;
  sq->ckpt_ended = false;
  if (!copy && !sq->ckpt_busy) {
    sq->ckpt_busy = sq->ckpt_kick = true;
    pthread_cond_broadcast(&sq->kcv);
  }
  pthread_mutex_unlock(&sq->kmu);
  /* Busy or failing here is left for the next commit to try again. */
  if (copy)
    (void)sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL,
                                    NULL);
  return SQLITE_OK;
}

/* One round: copy the WAL; then, up to TS_SQLITE_CKPT_FLUSHES times,
 * flush the database file and copy what the writer appended meanwhile.
 * SQLite flushes the database only when a checkpoint reaches the WAL's
 * end, which with the writer appending only the writer's catch-up does:
 * without these flushes that catch-up's fsync carried every page of the
 * round. With a million players the p99 of single records was 14-16 ms
 * with one flush, 10 ms with three (docs/BENCHMARKS.md, change 17). */
static int ckpt_round(struct sq *sq) {
  int copied = 0, before = -1;
  int rc = sqlite3_wal_checkpoint_v2(sq->k.db, NULL, SQLITE_CHECKPOINT_PASSIVE,
                                     NULL, &copied);
  sqlite3_file *f = NULL;
  if (rc == SQLITE_OK)
    rc = sqlite3_file_control(sq->k.db, "main", SQLITE_FCNTL_FILE_POINTER, &f);
  for (int i = 0; i < TS_SQLITE_CKPT_FLUSHES && rc == SQLITE_OK && f &&
                  f->pMethods && copied != before;
       i++) {
    before = copied; /* a copy that moved nothing ends the round */
    rc = f->pMethods->xSync(f, SQLITE_SYNC_NORMAL);
    if (rc == SQLITE_OK)
      rc = sqlite3_wal_checkpoint_v2(sq->k.db, NULL, SQLITE_CHECKPOINT_PASSIVE,
                                     NULL, &copied);
  }
  return rc;
}

static void *ckpt_main(void *arg) {
  struct sq *sq = arg;
  int logged_rc = SQLITE_OK; /* a failure is logged when its code changes */
  uint64_t logged_ms = 0;
  pthread_mutex_lock(&sq->kmu);
  for (;;) {
    while (!sq->ckpt_kick && !sq->ckpt_stop)
      pthread_cond_wait(&sq->kcv, &sq->kmu);
    if (sq->ckpt_stop)
      break;
    sq->ckpt_kick = false;
    pthread_mutex_unlock(&sq->kmu);
    int rc = ckpt_round(sq);
    uint64_t now_ms = clock_now_ms();
    if (rc != SQLITE_OK && (rc & 0xff) != SQLITE_BUSY &&
        (rc != logged_rc || now_ms - logged_ms >= TS_SQLITE_CKPT_LOG_MS)) {
      log_event(LOG_WARN, "SQLite: checkpoint failed", "{s:s, s:i, s:s}",
                "path", sq->path, "code", rc, "error", sqlite3_errstr(rc));
      logged_rc = rc;
      logged_ms = now_ms;
    }
    pthread_mutex_lock(&sq->kmu);
    sq->ckpt_busy = false;
    sq->ckpt_ended = rc == SQLITE_OK;
    pthread_cond_broadcast(&sq->kcv);
  }
  sq->ckpt_busy = false;
  pthread_cond_broadcast(&sq->kcv);
  pthread_mutex_unlock(&sq->kmu);
  return NULL;
}

/* ---- reads ---- */

struct get_ctx {
  struct sq *sq;
  const char *player;
  struct player_row *out;
};

static enum ts_status get_attempt(void *cls) {
  struct get_ctx *g = cls;
  struct conn *c = reader_take(g->sq);
  enum ts_status st;
  int rc;
  sqlite3_stmt *s = stmt(c, ST_GET_PLAYER, &rc);
  if (!s) {
    st = from_rc(rc);
    goto out;
  }
  rc = bind_text(s, 1, g->player);
  if (rc == SQLITE_OK)
    rc = sqlite3_step(s);
  if (rc == SQLITE_ROW)
    st = decode_row(s, g->out);
  else if (rc == SQLITE_DONE)
    st = TS_ERR_NOT_FOUND;
  else
    st = from_rc(rc);
out:
  done(s);
  reader_give(g->sq, c);
  return st;
}

static enum ts_status sq_get_player(void *impl, const char *player,
                                    struct player_row *out) {
  struct get_ctx g = {.sq = impl, .player = player, .out = out};
  return store_run_tx("sqlite.get_player", get_attempt, &g, NULL,
                      clock_now_ms() + SQ_READ_DEADLINE_MS);
}

struct list_ctx {
  struct sq *sq;
  const char *after;
  size_t limit;
  struct player_row *rows;
  size_t n, cap;
  bool more;
};

static enum ts_status list_push(struct list_ctx *l, sqlite3_stmt *s) {
  if (l->n == l->cap) {
    size_t cap = l->cap ? l->cap * 2u : 16u;
    if (cap > l->limit)
      cap = l->limit;
    struct player_row *rows = realloc(l->rows, cap * sizeof *rows);
    if (!rows)
      return TS_ERR_NOMEM;
    l->rows = rows;
    l->cap = cap;
  }
  enum ts_status st = decode_row(s, &l->rows[l->n]);
  if (st == TS_OK)
    l->n++;
  return st;
}

static enum ts_status list_attempt(void *cls) {
  struct list_ctx *l = cls;
  /* Start over from nothing if an earlier attempt got part way. */
  player_rows_free(l->rows, l->n);
  l->rows = NULL;
  l->n = l->cap = 0;
  l->more = false;

  struct conn *c = reader_take(l->sq);
  enum ts_status st = TS_OK;
  int rc;
  enum stmt_id id = l->after ? ST_LIST_AFTER : ST_LIST_FIRST;
  sqlite3_stmt *s = stmt(c, id, &rc);
  if (!s) {
    st = from_rc(rc);
    goto out;
  }
  /* One row beyond the page says whether more follow. */
  sqlite3_int64 lim =
      l->limit >= (size_t)INT64_MAX ? INT64_MAX : (sqlite3_int64)l->limit + 1;
  rc = sqlite3_bind_int64(s, 1, lim);
  if (rc == SQLITE_OK && l->after)
    rc = bind_text(s, 2, l->after);
  while (rc == SQLITE_OK || rc == SQLITE_ROW) {
    rc = sqlite3_step(s);
    if (rc != SQLITE_ROW)
      break;
    if (l->n == l->limit) {
      l->more = true;
      rc = SQLITE_DONE;
      break;
    }
    st = list_push(l, s);
    if (st != TS_OK)
      goto out;
  }
  st = rc == SQLITE_DONE ? TS_OK : from_rc(rc);
out:
  done(s);
  reader_give(l->sq, c);
  return st;
}

static enum ts_status sq_list_players(void *impl, const char *after,
                                      size_t limit, struct player_row **rows,
                                      size_t *n, bool *more) {
  struct list_ctx l = {.sq = impl, .after = after, .limit = limit};
  enum ts_status st = store_run_tx("sqlite.list_players", list_attempt, &l,
                                   NULL, clock_now_ms() + SQ_READ_DEADLINE_MS);
  if (st != TS_OK) {
    player_rows_free(l.rows, l.n);
    return st;
  }
  *rows = l.rows;
  *n = l.n;
  *more = l.more;
  return TS_OK;
}

/* ---- leaderboards (struct sq's board) ---- */

static void journal_clear(struct sq *sq) {
  for (size_t i = 0; i < sq->journal_n; i++)
    free(sq->journal[i].player);
  sq->journal_n = 0;
}

/* After the writer's commit (wmu held): the rows it put go to the journal
 * while a board exists; then, or after a rollback, the list starts over.
 * What cannot be journaled makes the board be built again. */
static void board_journal(struct sq *sq, bool committed) {
  struct conn *c = &sq->w;
  if (committed && (c->n_wrote || c->wrote_lost)) {
    pthread_mutex_lock(&sq->jmu);
    for (size_t i = 0; i < c->n_wrote && sq->journal_on && !sq->journal_lost;
         i++) {
      if (sq->journal_n == sq->journal_cap) {
        size_t cap = sq->journal_cap ? sq->journal_cap * 2u : 256u;
        struct jrow *j = cap <= TS_LEADERBOARD_JOURNAL_MAX
                             ? realloc(sq->journal, cap * sizeof *j)
                             : NULL;
        if (!j) { /* nobody asked for a while: let the board go */
          sq->journal_lost = true;
          break;
        }
        sq->journal = j;
        sq->journal_cap = cap;
      }
      struct jrow *j = &sq->journal[sq->journal_n];
      if (!(j->player = strdup(c->wrote[i].player))) {
        sq->journal_lost = true;
        break;
      }
      j->stats = c->wrote[i].stats;
      memcpy(j->updated_at, c->wrote[i].updated_at, sizeof j->updated_at);
      j->version = c->wrote[i].version;
      sq->journal_n++;
    }
    if (c->wrote_lost)
      sq->journal_lost = true;
    if (sq->journal_lost) { /* the board is built again: stop journaling */
      journal_clear(sq);
      sq->journal_on = false;
    }
    pthread_mutex_unlock(&sq->jmu);
  }
  c->n_wrote = 0;
  c->wrote_lost = false;
}

/* Folds the journal into `into` and empties it (jmu held). */
static enum ts_status journal_fold(struct sq *sq, struct rank_set *into) {
  enum ts_status st = TS_OK;
  if (sq->journal_n) {
    struct rank_row *rows = calloc(sq->journal_n, sizeof *rows);
    if (!rows)
      st = TS_ERR_NOMEM;
    for (size_t i = 0; rows && i < sq->journal_n; i++)
      rows[i] =
          (struct rank_row){sq->journal[i].player, sq->journal[i].stats,
                            sq->journal[i].updated_at, sq->journal[i].version};
    if (rows)
      st = rank_set_fold(into, rows, sq->journal_n);
    free(rows);
  }
  journal_clear(sq);
  return st;
}

/* others_epoch, current as of now: every commit another connection made
 * before this call has moved it. When the writer is in a checked write
 * transaction it is current already (no commit can have come between its
 * read and now); otherwise the writer's data_version is read, waiting for
 * wmu only when someone other than such a transaction holds it, so that a
 * leaderboard does not wait for the writer's transactions. */
static enum ts_status others_epoch_now(struct sq *sq, uint64_t *epoch) {
  int err = pthread_mutex_trylock(&sq->wmu);
  if (err != 0 && atomic_load(&sq->in_checked_txn)) {
    *epoch = atomic_load(&sq->others_epoch);
    return TS_OK;
  }
  if (err != 0) {
    enum ts_status st = writer_claim(sq, clock_now_ms() + SQ_READ_DEADLINE_MS);
    if (st != TS_OK)
      return st;
  }
  int rc;
  sqlite3_stmt *s = stmt(&sq->w, ST_DATA_VERSION, &rc);
  if (s && (rc = sqlite3_step(s)) == SQLITE_ROW) {
    note_others_dv(sq, sqlite3_column_int64(s, 0));
    rc = SQLITE_OK;
  }
  done(s);
  pthread_mutex_unlock(&sq->wmu);
  *epoch = atomic_load(&sq->others_epoch);
  return from_rc(rc);
}

#define SQ_BOARD_CHUNK 512u /* rows folded at once while building */

/* Folds the rows read so far into `into` and lets them go. */
static enum ts_status board_fold_chunk(struct rank_set *into,
                                       struct player_row *rows,
                                       struct rank_row *ranked, size_t *n) {
  enum ts_status st = rank_set_fold(into, ranked, *n);
  for (size_t i = 0; i < *n; i++)
    player_row_clear(&rows[i]);
  *n = 0;
  return st;
}

struct scan_ctx {
  struct sq *sq;
  struct rank_set *into; /* owned */
};

/* One attempt at building a board from every ranked player: one
 * statement, so one read transaction, on connection b. */
static enum ts_status board_scan_attempt(void *cls) {
  struct scan_ctx *x = cls;
  struct conn *c = &x->sq->b;
  size_t n = 0;
  rank_set_free(x->into);
  x->into = NULL;
  struct player_row *rows = calloc(SQ_BOARD_CHUNK, sizeof *rows);
  struct rank_row *ranked = calloc(SQ_BOARD_CHUNK, sizeof *ranked);
  enum ts_status st = rows && ranked
                          ? rank_set_new(TS_LEADERBOARD_TOP_K, &x->into)
                          : TS_ERR_NOMEM;
  int rc = SQLITE_OK;
  sqlite3_stmt *s = st == TS_OK ? stmt(c, ST_BOARD_SCAN, &rc) : NULL;
  if (st == TS_OK && !s)
    st = from_rc(rc);
  while (st == TS_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
    if ((st = decode_row(s, &rows[n])) != TS_OK)
      break;
    ranked[n] =
        (struct rank_row){rows[n].player, rows[n].stats, rows[n].updated_at,
                          sqlite3_column_int64(s, 6)};
    if (++n == SQ_BOARD_CHUNK)
      st = board_fold_chunk(x->into, rows, ranked, &n);
  }
  if (st == TS_OK && rc != SQLITE_DONE)
    st = from_rc(rc);
  if (st == TS_OK)
    st = board_fold_chunk(x->into, rows, ranked, &n);
  for (size_t i = 0; rows && i < n; i++)
    player_row_clear(&rows[i]);
  free(rows);
  free(ranked);
  done(s);
  return st;
}

/* Builds the board again (bmu held): journaling starts first, so that a
 * commit the scan does not see is journaled, then folded in; one it sees
 * and also journaled folds as the same version. */
static enum ts_status board_build(struct sq *sq, uint64_t epoch) {
  pthread_mutex_lock(&sq->jmu);
  journal_clear(sq);
  sq->journal_on = true;
  sq->journal_lost = false;
  pthread_mutex_unlock(&sq->jmu);
  struct scan_ctx x = {.sq = sq};
  sq->board_builds++;
  enum ts_status st =
      store_run_tx("sqlite.leaderboard_build", board_scan_attempt, &x, NULL,
                   clock_now_ms() + SQ_READ_DEADLINE_MS);
  struct rank_set *next = x.into;
  pthread_mutex_lock(&sq->jmu);
  if (st == TS_OK && sq->journal_lost)
    st = TS_ERR_UNAVAILABLE; /* commits went past the journal meanwhile */
  if (st == TS_OK)
    st = journal_fold(sq, next);
  if (st != TS_OK) {
    journal_clear(sq);
    sq->journal_on = false;
  }
  pthread_mutex_unlock(&sq->jmu);
  rank_set_free(sq->board);
  sq->board = st == TS_OK ? next : NULL;
  if (st != TS_OK)
    rank_set_free(next);
  sq->board_epoch = epoch;
  return st;
}

/* Leaderboards without indexes on their keys (schema 7): from the board,
 * current with every commit made before the request. This process's
 * commits are folded in from the journal; another connection's (the
 * writer's data_version moved), or a ranking that no longer knows `limit`
 * positions (players moved down out of it), build it again by a scan. */
static enum ts_status sq_leaderboard(void *impl, enum store_rank by,
                                     size_t limit, struct player_row **rows,
                                     size_t *n) {
  struct sq *sq = impl;
  if ((unsigned)by >= STORE_RANKINGS || limit > TS_LEADERBOARD_TOP_K)
    return TS_ERR_INVALID;
  pthread_mutex_lock(&sq->bmu);
  uint64_t epoch = 0;
  enum ts_status st = others_epoch_now(sq, &epoch);
  if (st != TS_OK)
    goto out;
  bool build = !sq->board || epoch != sq->board_epoch;
  if (!build) {
    pthread_mutex_lock(&sq->jmu);
    build = sq->journal_lost || journal_fold(sq, sq->board) != TS_OK;
    pthread_mutex_unlock(&sq->jmu);
    build = build || rank_set_known(sq->board, by) < limit;
  }
  if (build && (st = board_build(sq, epoch)) != TS_OK)
    goto out;
  /* Built just now, it knows every position it holds, or every player. */
  st = rank_set_top(sq->board, by, limit, rows, n);
out:
  pthread_mutex_unlock(&sq->bmu);
  return st;
}

/* ---- dead letters ---- */

/* A copy of column i's text; *out NULL for SQL NULL. False on NOMEM. */
static bool column_dup(sqlite3_stmt *s, int i, char **out) {
  const char *text = (const char *)sqlite3_column_text(s, i);
  *out = NULL;
  if (!text)
    return sqlite3_column_type(s, i) == SQLITE_NULL;
  *out = strdup(text);
  return *out != NULL;
}

/* Fills a dead letter from DEAD_COLUMNS; on error it is left freed and
 * zeroed. */
static enum ts_status decode_dead(sqlite3_stmt *s, struct dead_letter *d) {
  memset(d, 0, sizeof *d);
  enum ts_status st = TS_ERR_NOMEM;
  if (!column_dup(s, 0, &d->id) || !column_dup(s, 1, &d->event_id) ||
      !column_dup(s, 2, &d->item_identifier) || !column_dup(s, 3, &d->reason) ||
      !column_dup(s, 4, &d->record))
    goto fail;
  const char *at = (const char *)sqlite3_column_text(s, 5);
  st = TS_ERR_IO;
  if (!d->id || !d->reason || !at || strlen(at) >= sizeof d->received_at)
    goto fail;
  memcpy(d->received_at, at, strlen(at) + 1);
  return TS_OK;
fail:
  dead_letter_clear(d);
  return st;
}

struct dead_ctx {
  struct sq *sq;
  const char *after, *reason; /* list */
  const char *const *ids;     /* get, delete */
  size_t n_ids;
  size_t limit;
  uint64_t deadline_ms; /* delete */
  struct dead_letter *rows;
  size_t n;
  bool more;
};

static void dead_ctx_reset(struct dead_ctx *d) {
  dead_letters_free(d->rows, d->n);
  d->rows = NULL;
  d->n = 0;
  d->more = false;
}

/* Steps s (bound already) and keeps its rows, at most d->limit; one more
 * row sets d->more. */
static enum ts_status dead_collect(struct dead_ctx *d, sqlite3_stmt *s) {
  int rc;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    if (d->n == d->limit) {
      d->more = true;
      return TS_OK;
    }
    enum ts_status st = decode_dead(s, &d->rows[d->n]);
    if (st != TS_OK)
      return st;
    d->n++;
  }
  return from_rc(rc);
}

static enum ts_status dead_list_attempt(void *cls) {
  struct dead_ctx *d = cls;
  dead_ctx_reset(d);
  d->rows = calloc(d->limit, sizeof *d->rows);
  if (!d->rows)
    return TS_ERR_NOMEM;
  struct conn *c = reader_take(d->sq);
  int rc;
  enum ts_status st;
  sqlite3_stmt *s = stmt(c, d->after ? ST_DEAD_AFTER : ST_DEAD_FIRST, &rc);
  if (!s) {
    st = from_rc(rc);
    goto out;
  }
  rc = sqlite3_bind_int64(s, 1, (sqlite3_int64)d->limit + 1);
  if (rc == SQLITE_OK)
    rc = bind_text(s, 2, d->reason);
  if (rc == SQLITE_OK && d->after)
    rc = bind_text(s, 3, d->after);
  st = rc == SQLITE_OK ? dead_collect(d, s) : from_rc(rc);
out:
  done(s);
  reader_give(d->sq, c);
  return st;
}

static enum ts_status dead_get_attempt(void *cls) {
  struct dead_ctx *d = cls;
  dead_ctx_reset(d);
  d->rows = calloc(d->n_ids, sizeof *d->rows);
  if (!d->rows)
    return TS_ERR_NOMEM;
  struct conn *c = reader_take(d->sq);
  int rc;
  enum ts_status st = TS_OK;
  sqlite3_stmt *s = stmt(c, ST_DEAD_GET, &rc);
  if (!s) {
    st = from_rc(rc);
    goto out;
  }
  for (size_t i = 0; i < d->n_ids && st == TS_OK; i++) {
    rc = bind_text(s, 1, d->ids[i]);
    d->limit = d->n + 1; /* at most one row per id */
    st = rc == SQLITE_OK ? dead_collect(d, s) : from_rc(rc);
    done(s);
  }
out:
  done(s);
  reader_give(d->sq, c);
  return st;
}

/* Every id deleted in one IMMEDIATE transaction, like an apply. */
static enum ts_status dead_delete_attempt(void *cls) {
  struct dead_ctx *d = cls;
  struct sq *sq = d->sq;
  struct conn *c = &sq->w;
  enum ts_status st = writer_claim(sq, d->deadline_ms);
  if (st != TS_OK)
    return st;
  int rc = begin_write(sq, TS_SQLITE_BUSY_TIMEOUT_MS);
  sqlite3_stmt *s = NULL;
  if (rc == SQLITE_OK && !(s = stmt(c, ST_DEAD_DELETE, &rc)))
    goto out;
  for (size_t i = 0; rc == SQLITE_OK && i < d->n_ids; i++) {
    rc = bind_text(s, 1, d->ids[i]);
    if (rc == SQLITE_OK)
      rc = sqlite3_step(s);
    done(s);
    if (rc == SQLITE_DONE)
      rc = SQLITE_OK;
  }
  if (rc == SQLITE_OK)
    rc = run_plain(c, ST_COMMIT);
out:
  st = from_rc(rc);
  if (st != TS_OK && st != TS_ERR_RETRY)
    write_failed(sq, c);
  if (!sqlite3_get_autocommit(c->db))
    (void)run_plain(c, ST_ROLLBACK);
  pthread_mutex_unlock(&sq->wmu);
  return st;
}

/* ---- backfill sessions ---- */

#define SQ_SESSION_DEADLINE_MS 10000u

struct session_ctx {
  struct sq *sq;
  enum stmt_id op; /* ST_OPEN_SESSION, ST_CLOSE_SESSION, or ST_COUNT:
                      settle */
  const char *id;
  const char *player;
  const struct stats *base;
  bool changed;
  uint64_t deadline_ms;
};

/* Settle: base + the tracked delta, written with the state kept as it is
 * (later tracked writes keep adding to both). */
static enum ts_status settle_in_tx(struct session_ctx *x, struct conn *c) {
  struct stats stored, next;
  char *state = NULL, *open = NULL;
  bool exists = false;
  int64_t version = 0;
  /* Only the open session may settle: another backfill that replaced it
   * tracks the writes since, which this one's D does not hold. */
  enum ts_status st = read_session(c, &open);
  if (st == TS_OK && (!open || strcmp(open, x->id) != 0))
    st = TS_ERR_NOT_FOUND;
  free(open);
  if (st == TS_OK)
    st = read_player(c, x->player, &stored, &state, &exists, &version);
  if (st == TS_OK)
    st = backfill_settled(x->base, state, x->id, &next);
  if (st == TS_OK && (exists || !stats_is_zero(&next)) &&
      (!exists || stored.games != next.games || stored.wins != next.wins ||
       decimal_cmp(stored.total_score, next.total_score) != 0)) {
    char now_utc[32];
    clock_utc_now(now_utc);
    st = put_player(c, x->player, &next, now_utc, state, version);
    x->changed = st == TS_OK;
  }
  free(state);
  return st;
}

static enum ts_status session_attempt(void *cls) {
  struct session_ctx *x = cls;
  struct sq *sq = x->sq;
  struct conn *c = &sq->w;
  x->changed = false;
  enum ts_status st = writer_claim(sq, x->deadline_ms);
  if (st != TS_OK)
    return st;
  int rc = begin_write(sq, TS_SQLITE_BUSY_TIMEOUT_MS);
  sqlite3_stmt *s = NULL;
  if (rc != SQLITE_OK) {
    st = from_rc(rc);
    goto out;
  }
  if (x->op == ST_COUNT) {
    st = settle_in_tx(x, c);
  } else if ((s = stmt(c, x->op, &rc))) {
    char now_utc[32];
    clock_utc_now(now_utc);
    rc = bind_text(s, 1, x->id);
    if (rc == SQLITE_OK && x->op == ST_OPEN_SESSION)
      rc = bind_text(s, 2, now_utc);
    if (rc == SQLITE_OK)
      rc = sqlite3_step(s);
    done(s);
    st = rc == SQLITE_DONE ? TS_OK : from_rc(rc);
  } else {
    st = from_rc(rc);
  }
  if (st == TS_OK)
    st = from_rc(run_plain(c, ST_COMMIT));
out:
  end_writes(sq, st == TS_OK);
  if (st != TS_OK && st != TS_ERR_RETRY && st != TS_ERR_INVALID &&
      st != TS_ERR_NOT_FOUND)
    write_failed(sq, c);
  if (!sqlite3_get_autocommit(c->db))
    (void)run_plain(c, ST_ROLLBACK);
  pthread_mutex_unlock(&sq->wmu);
  return st;
}

static enum ts_status session_run(struct session_ctx *x) {
  x->deadline_ms = clock_now_ms() + SQ_SESSION_DEADLINE_MS;
  return store_run_tx("sqlite.session", session_attempt, x, NULL,
                      x->deadline_ms);
}

static enum ts_status sq_session_open(void *impl, const char *id) {
  struct session_ctx x = {.sq = impl, .op = ST_OPEN_SESSION, .id = id};
  return session_run(&x);
}

static enum ts_status sq_session_close(void *impl, const char *id) {
  struct session_ctx x = {.sq = impl, .op = ST_CLOSE_SESSION, .id = id};
  return session_run(&x);
}

static enum ts_status sq_session_settle(void *impl, const char *player,
                                        const struct stats *base,
                                        const char *session, bool *changed) {
  struct session_ctx x = {.sq = impl,
                          .op = ST_COUNT,
                          .id = session,
                          .player = player,
                          .base = base};
  enum ts_status st = session_run(&x);
  *changed = x.changed;
  return st;
}

static enum ts_status sq_list_dead_letters(void *impl, const char *after,
                                           const char *reason, size_t limit,
                                           struct dead_letter **rows, size_t *n,
                                           char **next) {
  struct dead_ctx d = {
      .sq = impl, .after = after, .reason = reason, .limit = limit};
  enum ts_status st =
      store_run_tx("sqlite.list_dead_letters", dead_list_attempt, &d, NULL,
                   clock_now_ms() + SQ_READ_DEADLINE_MS);
  /* The next page starts after the last id of this one. */
  if (st == TS_OK && d.more && d.n > 0 && !(*next = strdup(d.rows[d.n - 1].id)))
    st = TS_ERR_NOMEM;
  if (st != TS_OK) {
    dead_ctx_reset(&d);
    return st;
  }
  *rows = d.rows;
  *n = d.n;
  return TS_OK;
}

static enum ts_status sq_get_dead_letters(void *impl, const char *const *ids,
                                          size_t n_ids,
                                          struct dead_letter **rows,
                                          size_t *n) {
  struct dead_ctx d = {.sq = impl, .ids = ids, .n_ids = n_ids};
  enum ts_status st =
      store_run_tx("sqlite.get_dead_letters", dead_get_attempt, &d, NULL,
                   clock_now_ms() + SQ_READ_DEADLINE_MS);
  if (st != TS_OK) {
    dead_ctx_reset(&d);
    return st;
  }
  *rows = d.rows;
  *n = d.n;
  return TS_OK;
}

static enum ts_status sq_delete_dead_letters(void *impl, const char *const *ids,
                                             size_t n_ids) {
  struct dead_ctx d = {.sq = impl,
                       .ids = ids,
                       .n_ids = n_ids,
                       .deadline_ms = clock_now_ms() + TS_INGEST_DEADLINE_MS};
  return store_run_tx("sqlite.delete_dead_letters", dead_delete_attempt, &d,
                      NULL, d.deadline_ms);
}

static enum ts_status ping_attempt(void *cls) {
  struct sq *sq = cls;
  struct conn *c = reader_take(sq);
  int rc;
  sqlite3_stmt *s = stmt(c, ST_PING, &rc);
  if (s)
    rc = sqlite3_step(s);
  done(s);
  reader_give(sq, c);
  return rc == SQLITE_ROW || rc == SQLITE_DONE ? TS_OK : from_rc(rc);
}

/* ---- Kinesis leases ---- */

struct lease_ctx {
  struct sq *sq;
  const char *stream, *shard;
  struct shard_lease *out;        /* get */
  const struct shard_lease *next; /* put */
  uint64_t expected;
  bool written;
  uint64_t deadline_ms;
};

/* Reads the row with c into *out (zeroed when there is none). */
static enum ts_status lease_read(struct conn *c, const char *stream,
                                 const char *shard, struct shard_lease *out) {
  int rc;
  enum ts_status st;
  memset(out, 0, sizeof *out);
  sqlite3_stmt *s = stmt(c, ST_GET_LEASE, &rc);
  if (!s)
    return from_rc(rc);
  rc = bind_text(s, 1, stream);
  if (rc == SQLITE_OK)
    rc = bind_text(s, 2, shard);
  if (rc == SQLITE_OK)
    rc = sqlite3_step(s);
  if (rc == SQLITE_ROW) {
    const unsigned char *owner = sqlite3_column_text(s, 0);
    const unsigned char *cp = sqlite3_column_text(s, 2);
    snprintf(out->owner, sizeof out->owner, "%s",
             owner ? (const char *)owner : "");
    out->expires_ms = sqlite3_column_int64(s, 1);
    snprintf(out->checkpoint, sizeof out->checkpoint, "%s",
             cp ? (const char *)cp : "");
    out->finished = sqlite3_column_int(s, 3) != 0;
    out->version = (uint64_t)sqlite3_column_int64(s, 4);
    st = TS_OK;
  } else {
    st = rc == SQLITE_DONE ? TS_OK : from_rc(rc);
  }
  done(s);
  return st;
}

static enum ts_status lease_get_attempt(void *cls) {
  struct lease_ctx *x = cls;
  struct conn *c = reader_take(x->sq);
  enum ts_status st = lease_read(c, x->stream, x->shard, x->out);
  reader_give(x->sq, c);
  return st;
}

/* Compare-and-set in one write transaction: the version read and the row
 * written under the same lock. */
static enum ts_status lease_put_attempt(void *cls) {
  struct lease_ctx *x = cls;
  struct sq *sq = x->sq;
  struct conn *c = &sq->w;
  struct shard_lease cur;
  sqlite3_stmt *s = NULL;
  x->written = false;
  enum ts_status st = writer_claim(sq, x->deadline_ms);
  if (st != TS_OK)
    return st;
  int rc = begin_write(sq, TS_SQLITE_BUSY_TIMEOUT_MS);
  if (rc != SQLITE_OK) {
    st = from_rc(rc);
    goto out;
  }
  if ((st = lease_read(c, x->stream, x->shard, &cur)) != TS_OK)
    goto out;
  if (cur.version != x->expected)
    goto out; /* lost the race: nothing written, TS_OK */
  if (!(s = stmt(c, ST_PUT_LEASE, &rc))) {
    st = from_rc(rc);
    goto out;
  }
  const struct shard_lease *n = x->next;
  rc = bind_text(s, 1, x->stream);
  if (rc == SQLITE_OK)
    rc = bind_text(s, 2, x->shard);
  if (rc == SQLITE_OK)
    rc = bind_text(s, 3, n->owner);
  if (rc == SQLITE_OK)
    rc = sqlite3_bind_int64(s, 4, n->expires_ms);
  if (rc == SQLITE_OK)
    rc = bind_text(s, 5, n->checkpoint);
  if (rc == SQLITE_OK)
    rc = sqlite3_bind_int(s, 6, n->finished ? 1 : 0);
  if (rc == SQLITE_OK)
    rc = sqlite3_bind_int64(s, 7, (sqlite3_int64)n->version);
  if (rc == SQLITE_OK)
    rc = sqlite3_step(s);
  done(s);
  st = rc == SQLITE_DONE ? from_rc(run_plain(c, ST_COMMIT)) : from_rc(rc);
  x->written = st == TS_OK;
out:
  if (st != TS_OK && st != TS_ERR_RETRY)
    write_failed(sq, c);
  if (!sqlite3_get_autocommit(c->db))
    (void)run_plain(c, ST_ROLLBACK);
  if (st != TS_OK)
    x->written = false;
  pthread_mutex_unlock(&sq->wmu);
  return st;
}

static enum ts_status sq_lease_get(void *impl, const char *stream,
                                   const char *shard, struct shard_lease *out) {
  struct lease_ctx x = {
      .sq = impl, .stream = stream, .shard = shard, .out = out};
  return store_run_tx("sqlite.lease_get", lease_get_attempt, &x, NULL,
                      clock_now_ms() + SQ_READ_DEADLINE_MS);
}

static enum ts_status sq_lease_put(void *impl, const char *stream,
                                   const char *shard,
                                   const struct shard_lease *next,
                                   uint64_t expected, bool *written) {
  struct lease_ctx x = {.sq = impl,
                        .stream = stream,
                        .shard = shard,
                        .next = next,
                        .expected = expected,
                        .deadline_ms = clock_now_ms() + SQ_READ_DEADLINE_MS};
  enum ts_status st = store_run_tx("sqlite.lease_put", lease_put_attempt, &x,
                                   NULL, x.deadline_ms);
  *written = st == TS_OK && x.written;
  return st;
}

/* True while the last write failed for want of space and the disk still
 * has less than TS_SQLITE_MIN_FREE_BYTES free. */
static bool still_out_of_space(struct sq *sq) {
  if (!atomic_load(&sq->out_of_space))
    return false;
  char dir[PATH_MAX];
  snprintf(dir, sizeof dir, "%s", sq->path);
  char *slash = strrchr(dir, '/');
  if (slash)
    *(slash == dir ? slash + 1 : slash) = '\0';
  else
    snprintf(dir, sizeof dir, ".");
  struct statvfs fs;
  if (statvfs(dir, &fs) != 0 ||
      (uint64_t)fs.f_bavail * fs.f_frsize < TS_SQLITE_MIN_FREE_BYTES)
    return true;
  atomic_store(&sq->out_of_space, false); /* the next write will tell */
  return false;
}

static enum ts_status sq_ping(void *impl) {
  if (still_out_of_space(impl))
    return TS_ERR_UNAVAILABLE;
  return store_run_tx("sqlite.ping", ping_attempt, impl, NULL,
                      clock_now_ms() + SQ_READ_DEADLINE_MS);
}

/* ---- open and close ---- */

static void sq_close(void *impl) {
  struct sq *sq = impl;
  if (!sq)
    return;
  if (sq->committer_running) { /* it commits what is queued, then ends */
    pthread_mutex_lock(&sq->qmu);
    sq->stopping = true;
    pthread_cond_signal(&sq->ccv);
    pthread_mutex_unlock(&sq->qmu);
    pthread_join(sq->committer, NULL);
    sq->committer_running = false;
  }
  if (sq->ckpt_running) { /* no commit kicks it any more */
    pthread_mutex_lock(&sq->kmu);
    sq->ckpt_stop = true;
    sq->ckpt_running = false; /* a late commit copies in line */
    pthread_cond_broadcast(&sq->kcv);
    pthread_mutex_unlock(&sq->kmu);
    pthread_join(sq->ckpt, NULL);
  }
  conn_close(&sq->k);
  conn_close(&sq->b);
  rank_set_free(sq->board);
  journal_clear(sq);
  free(sq->journal);
  free(sq->w.wrote);
  for (size_t i = 0; i < SQ_READERS; i++)
    conn_close(&sq->r[i]);
  conn_close(&sq->w); /* last: the final close checkpoints the WAL */
  recent_free(sq->recent);
  pair_filter_free(sq->filter);
  build_drop(sq);
  row_cache_free(sq->w.rows);
  free(sq->purge_player);
  free(sq->purge_event);
  free(sq->path);
  if (sq->wait_fd >= 0)
    close(sq->wait_fd);
  if (sq->locks_ready) {
    pthread_cond_destroy(&sq->kcv);
    pthread_mutex_destroy(&sq->kmu);
    pthread_cond_destroy(&sq->ccv);
    pthread_mutex_destroy(&sq->qmu);
    pthread_mutex_destroy(&sq->wmu);
    pthread_mutex_destroy(&sq->rmu);
    pthread_cond_destroy(&sq->rcv);
    pthread_mutex_destroy(&sq->bmu);
    pthread_mutex_destroy(&sq->jmu);
  }
  free(sq);
}

static const struct store_ops sqlite_ops = {
    .name = "sqlite",
    .apply = sq_apply,
    .apply_async = sq_apply_async,
    .expect_write = sq_expect_write,
    .get_player = sq_get_player,
    .list_players = sq_list_players,
    .leaderboard = sq_leaderboard,
    .list_dead_letters = sq_list_dead_letters,
    .get_dead_letters = sq_get_dead_letters,
    .delete_dead_letters = sq_delete_dead_letters,
    .session_open = sq_session_open,
    .session_close = sq_session_close,
    .session_settle = sq_session_settle,
    .lease_get = sq_lease_get,
    .lease_put = sq_lease_put,
    .ping = sq_ping,
    .close = sq_close,
};

/* "<file>-wait" (others_waiting), and the writer's busy handler. A file
 * that cannot be opened only means nothing begins early. */
static enum ts_status open_wait_file(struct sq *sq) {
  size_t n = strlen(sq->path);
  char *name = malloc(n + sizeof "-wait");
  if (!name)
    return TS_ERR_NOMEM;
  memcpy(name, sq->path, n);
  memcpy(name + n, "-wait", sizeof "-wait");
  sq->wait_fd = open(name, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (sq->wait_fd < 0) /* another user's: reading is enough to lock */
    sq->wait_fd = open(name, O_RDONLY | O_CLOEXEC);
  if (sq->wait_fd < 0)
    log_event(LOG_WARN, "SQLite: no wait file, transactions begin on demand",
              "{s:s, s:s}", "path", name, "error", strerror(errno));
  free(name);
  sqlite3_busy_handler(sq->w.db, on_busy, sq);
  return TS_OK;
}

/* SQLite counts the memory it holds under a global mutex taken at every
 * allocation and free: 6% of the writer's time in perf, for a figure
 * nothing here reads. Only possible before SQLite initialises; later it
 * is refused (SQLITE_MISUSE) and counting stays on, as correctly. */
static pthread_once_t sqlite_config_once = PTHREAD_ONCE_INIT;
static void configure_sqlite(void) {
  (void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

enum ts_status store_sqlite_open(const struct store_options *opt, void **impl,
                                 const struct store_ops **ops) {
  enum ts_status st;
  struct sq *sq = NULL;
  *impl = NULL;
  *ops = NULL;
  if (!opt->sqlite_path || !*opt->sqlite_path || !sqlite3_threadsafe())
    return TS_ERR_INVALID;
  (void)pthread_once(&sqlite_config_once, configure_sqlite);

  const char *sync = "FULL";
  const char *env = getenv("TS_SQLITE_SYNC");
  if (env && *env) {
    if (strcasecmp(env, "normal") == 0)
      sync = "NORMAL";
    else if (strcasecmp(env, "full") != 0)
      return TS_ERR_INVALID;
  }

  st = make_parents(opt->sqlite_path);
  if (st != TS_OK)
    return st;
  sq = calloc(1, sizeof *sq);
  if (!sq)
    return TS_ERR_NOMEM;
  sq->wait_fd = -1;
  sq->busy_ms = TS_SQLITE_BUSY_TIMEOUT_MS;
  atomic_init(&sq->apply_deadline_ms, TS_INGEST_DEADLINE_MS);
  atomic_init(&sq->expect_wait_ms, TS_SQLITE_EXPECT_WAIT_MS);
  atomic_init(&sq->w_wanted, 0);
  atomic_init(&sq->out_of_space, false);
  atomic_init(&sq->others_epoch, 0);
  atomic_init(&sq->in_checked_txn, false);
  sq->recent_merge_rows = TS_SQLITE_RECENT_MERGE_ROWS;
  sq->recent_slice_rows = TS_SQLITE_RECENT_SLICE_ROWS;
  sq->purge_per_record = SQ_PURGE_SCAN_PER_RECORD;
  sq->recent_max_rows = TS_SQLITE_RECENT_MAX_ROWS;
  sq->filter_quiet_ms = TS_SQLITE_FILTER_QUIET_MS;
  sq->filter_wait_ms = TS_SQLITE_FILTER_QUIET_MS;
  sq->filter_max_pairs = TS_SQLITE_FILTER_MAX_PAIRS;
  sq->filter_min_pairs = TS_SQLITE_FILTER_MIN_PAIRS;
  sq->filter_due = true;
  sq->seen_version = -1;
  sq->path = strdup(opt->sqlite_path);
  sq->recent = recent_new();
  sq->w.rows = row_cache_new();
  if (!sq->path || !sq->recent || !sq->w.rows) {
    recent_free(sq->recent);
    row_cache_free(sq->w.rows);
    free(sq->path);
    free(sq);
    return TS_ERR_NOMEM;
  }
  /* All nine or none: pthread init failing is an out-of-memory case. */
  int qm = pthread_mutex_init(&sq->qmu, NULL);
  int wm = pthread_mutex_init(&sq->wmu, NULL);
  int rm = pthread_mutex_init(&sq->rmu, NULL);
  int rc_ = pthread_cond_init(&sq->rcv, NULL);
  int cc = pthread_cond_init(&sq->ccv, NULL);
  int km = pthread_mutex_init(&sq->kmu, NULL);
  int kc = pthread_cond_init(&sq->kcv, NULL);
  int bm = pthread_mutex_init(&sq->bmu, NULL);
  int jm = pthread_mutex_init(&sq->jmu, NULL);
  if (qm || wm || rm || rc_ || cc || km || kc || bm || jm) {
    if (!bm)
      pthread_mutex_destroy(&sq->bmu);
    if (!jm)
      pthread_mutex_destroy(&sq->jmu);
    if (!km)
      pthread_mutex_destroy(&sq->kmu);
    if (!kc)
      pthread_cond_destroy(&sq->kcv);
    if (!qm)
      pthread_mutex_destroy(&sq->qmu);
    if (!wm)
      pthread_mutex_destroy(&sq->wmu);
    if (!rm)
      pthread_mutex_destroy(&sq->rmu);
    if (!rc_)
      pthread_cond_destroy(&sq->rcv);
    if (!cc)
      pthread_cond_destroy(&sq->ccv);
    recent_free(sq->recent);
    row_cache_free(sq->w.rows);
    free(sq->path);
    free(sq);
    return TS_ERR_NOMEM;
  }
  sq->locks_ready = true;

  st = conn_open(&sq->w, opt->sqlite_path, sync, false);
  if (st != TS_OK)
    goto fail;
  /* Before the setup, which writes too: a busy server must see this
   * process wait (a backfill opening the file while batches stream). */
  if (open_wait_file(sq) != TS_OK) {
    st = TS_ERR_NOMEM;
    goto fail;
  }
  st = store_run_tx("sqlite.setup", setup_attempt, sq, NULL,
                    clock_now_ms() + TS_INGEST_DEADLINE_MS);
  if (st != TS_OK)
    goto fail;
  for (size_t i = 0; i < SQ_READERS; i++) {
    st = conn_open(&sq->r[i], opt->sqlite_path, sync, true);
    if (st != TS_OK)
      goto fail;
  }
  st = conn_open(&sq->b, opt->sqlite_path, sync, true);
  if (st != TS_OK)
    goto fail;
  /* Without its thread the writer checkpoints in line, as SQLite would. */
  st = conn_open(&sq->k, opt->sqlite_path, sync, true);
  if (st != TS_OK)
    goto fail;
  sq->ckpt_running = pthread_create(&sq->ckpt, NULL, ckpt_main, sq) == 0;
  sqlite3_wal_hook(sq->w.db, on_wal_commit, sq);
  if (pthread_create(&sq->committer, NULL, committer_main, sq) != 0) {
    st = TS_ERR_NOMEM;
    goto fail;
  }
  sq->committer_running = true;
  *impl = sq;
  *ops = &sqlite_ops;
  return TS_OK;
fail:
  sq_close(sq);
  return st;
}

/* ---- test seam (store_test.h) ---- */

static struct sq *sq_of(struct store *s) {
  const struct store_ops *ops;
  void *impl = store_test_impl(s, &ops);
  return ops == &sqlite_ops ? impl : NULL;
}

enum ts_status store_test_sqlite_count(struct store *s,
                                       enum store_test_table table,
                                       int64_t *n) {
  struct sq *sq = sq_of(s);
  int rc;
  *n = 0;
  if (!sq)
    return TS_ERR_INVALID;
  (void)writer_claim(sq, 0);
  sqlite3_stmt *q = stmt(
      &sq->w,
      table == STORE_TEST_DEAD_LETTERS ? ST_COUNT_DEAD : ST_COUNT_APPLIED, &rc);
  if (q)
    rc = sqlite3_step(q);
  if (rc == SQLITE_ROW)
    *n = sqlite3_column_int64(q, 0);
  done(q);
  pthread_mutex_unlock(&sq->wmu);
  return rc == SQLITE_ROW ? TS_OK : from_rc(rc);
}

enum ts_status store_test_sqlite_apply_group(struct store *s, struct batch **b,
                                             size_t n) {
  struct sq *sq = sq_of(s);
  if (!sq)
    return TS_ERR_INVALID;
  return apply_group(sq, b, n,
                     clock_now_ms() + atomic_load(&sq->apply_deadline_ms));
}

void store_test_sqlite_set_apply_deadline_ms(struct store *s, uint32_t ms) {
  struct sq *sq = sq_of(s);
  if (sq)
    atomic_store(&sq->apply_deadline_ms, ms);
}

void store_test_sqlite_set_recent_rows(struct store *s, size_t merge_rows,
                                       size_t slice_rows) {
  struct sq *sq = sq_of(s);
  if (!sq)
    return;
  (void)writer_claim(sq, 0);
  sq->recent_merge_rows = merge_rows;
  sq->recent_slice_rows = slice_rows;
  /* As TS_SQLITE_RECENT_MAX_ROWS for fewer merge rows; never above it
   * (SIZE_MAX merge rows, "no cycles", keeps the bound). */
  sq->recent_max_rows = merge_rows <= TS_SQLITE_RECENT_MAX_ROWS / 4u
                            ? 4u * merge_rows
                            : TS_SQLITE_RECENT_MAX_ROWS;
  pthread_mutex_unlock(&sq->wmu);
}

void store_test_sqlite_set_purge_rows(struct store *s, size_t per_record) {
  struct sq *sq = sq_of(s);
  if (!sq)
    return;
  (void)writer_claim(sq, 0);
  sq->purge_per_record = per_record;
  pthread_mutex_unlock(&sq->wmu);
}

void store_test_sqlite_set_expect_wait_ms(struct store *s, uint32_t ms) {
  struct sq *sq = sq_of(s);
  if (sq)
    atomic_store(&sq->expect_wait_ms, ms);
}

bool store_test_sqlite_expecting(struct store *s) {
  struct sq *sq = sq_of(s);
  if (!sq)
    return false;
  pthread_mutex_lock(&sq->qmu);
  bool e = sq->expecting;
  pthread_mutex_unlock(&sq->qmu);
  return e;
}

void store_test_sqlite_set_filter_quiet(struct store *s, uint32_t ms) {
  struct sq *sq = sq_of(s);
  if (!sq)
    return;
  (void)writer_claim(sq, 0);
  sq->filter_quiet_ms = ms;
  sq->filter_wait_ms = ms;
  pthread_mutex_unlock(&sq->wmu);
}

void store_test_sqlite_set_filter_max_pairs(struct store *s, size_t pairs) {
  struct sq *sq = sq_of(s);
  if (!sq)
    return;
  (void)writer_claim(sq, 0);
  sq->filter_max_pairs = pairs;
  pthread_mutex_unlock(&sq->wmu);
}

uint64_t store_test_sqlite_filter_counts(struct store *s) {
  struct sq *sq = sq_of(s);
  if (!sq)
    return 0;
  (void)writer_claim(sq, 0);
  uint64_t n = sq->filter_counts;
  pthread_mutex_unlock(&sq->wmu);
  return n;
}

void store_test_sqlite_set_filter_build(struct store *s, size_t min_pairs,
                                        size_t scan_rows) {
  struct sq *sq = sq_of(s);
  if (!sq)
    return;
  (void)writer_claim(sq, 0);
  sq->filter_min_pairs = min_pairs;
  sq->build_scan_rows = scan_rows;
  pthread_mutex_unlock(&sq->wmu);
}

bool store_test_sqlite_filter_building(struct store *s, size_t *most_rows) {
  struct sq *sq = sq_of(s);
  if (!sq)
    return false;
  (void)writer_claim(sq, 0);
  bool building = sq->build != NULL;
  *most_rows = sq->build_most;
  pthread_mutex_unlock(&sq->wmu);
  return building;
}

bool store_test_sqlite_filter_holds(struct store *s) {
  struct sq *sq = sq_of(s);
  if (!sq)
    return false;
  (void)writer_claim(sq, 0);
  bool live = sq->filter_ok;
  pthread_mutex_unlock(&sq->wmu);
  return live;
}

void store_test_sqlite_forge_row(struct store *s, const char *player,
                                 int64_t games, int64_t version) {
  struct sq *sq = sq_of(s);
  if (!sq)
    return;
  struct stats st = {.games = games};
  (void)writer_claim(sq, 0);
  row_cache_put(sq->w.rows, player, &st, version);
  pthread_mutex_unlock(&sq->wmu);
}

uint64_t store_test_sqlite_stale_rows(struct store *s) {
  struct sq *sq = sq_of(s);
  if (!sq)
    return 0;
  (void)writer_claim(sq, 0);
  uint64_t n = sq->w.stale_rows;
  pthread_mutex_unlock(&sq->wmu);
  return n;
}

size_t store_test_sqlite_recent_count(struct store *s) {
  struct sq *sq = sq_of(s);
  if (!sq)
    return 0;
  (void)writer_claim(sq, 0);
  size_t n = recent_count(sq->recent);
  pthread_mutex_unlock(&sq->wmu);
  return n;
}

const char *store_test_sqlite_schema_v1(void) { return schema_v1; }

void store_test_sqlite_hold_writer(struct store *s, bool hold) {
  struct sq *sq = sq_of(s);
  if (!sq)
    return;
  if (hold)
    (void)writer_claim(sq, 0);
  else
    pthread_mutex_unlock(&sq->wmu);
}

uint64_t store_test_sqlite_board_builds(struct store *s) {
  struct sq *sq = sq_of(s);
  if (!sq)
    return 0;
  pthread_mutex_lock(&sq->bmu);
  uint64_t n = sq->board_builds;
  pthread_mutex_unlock(&sq->bmu);
  return n;
}
