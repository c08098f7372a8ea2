/* The SQLite reference of bench/run.sh: how many upserts of a player row
 * SQLite alone commits on this machine, with nothing around it (no HTTP, no
 * JSON, no exactly-once log), so that the embedded store's ingest rate can
 * be read as a fraction of what its storage could do.
 *
 * The rows, the upsert and the settings are the store's own (store/sqlite.c):
 * the same players table WITHOUT ROWID, with no index on the ranking keys
 * since the store's schema 7 (its leaderboards are kept in memory), the
 * same INSERT ... ON CONFLICT DO UPDATE, a prepared statement, WAL mode,
 * BEGIN IMMEDIATE, synchronous FULL or NORMAL, and no memory counting. Players
 * are drawn at random among N, as the wrk scripts draw them.
 *
 *   sqlite_raw <db-file> <full|normal> <rows-per-transaction> <seconds>
 *              [players]
 *
 * Prints one line: "<upserts/s> <transactions/s>". The file is created
 * afresh (an existing one is removed, with its -wal and -shm). */
/* clock_gettime and unlink under -std=c17. */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char schema[] = "PRAGMA journal_mode = WAL;"
                             "CREATE TABLE players("
                             "  player TEXT PRIMARY KEY,"
                             "  games INTEGER NOT NULL,"
                             "  wins INTEGER NOT NULL,"
                             "  total_score TEXT NOT NULL,"
                             "  version INTEGER NOT NULL,"
                             "  updated_at TEXT NOT NULL,"
                             "  avg_x100 INTEGER NOT NULL,"
                             "  pct_x100 INTEGER NOT NULL"
                             ") WITHOUT ROWID;";

static const char upsert_sql[] =
    "INSERT INTO players(player, games, wins, total_score, version, "
    "updated_at, avg_x100, pct_x100) VALUES(?1, ?2, ?3, ?4, 1, ?5, ?6, ?7) "
    "ON CONFLICT(player) DO UPDATE SET games = excluded.games, "
    "wins = excluded.wins, total_score = excluded.total_score, "
    "version = players.version + 1, updated_at = excluded.updated_at, "
    "avg_x100 = excluded.avg_x100, pct_x100 = excluded.pct_x100";

/* What the store keeps in memory between its read and its write: the
 * player's totals, score in hundredths (the store keeps exact decimals). */
struct totals {
  int64_t games, wins, score_x100;
};

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long parse_long(const char *text, const char *what) {
  char *end = NULL;
  errno = 0;
  long v = strtol(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || v <= 0) {
    fprintf(stderr, "sqlite_raw: bad %s: %s\n", what, text);
    exit(2);
  }
  return v;
}

static void die_sql(sqlite3 *db, const char *what) {
  fprintf(stderr, "sqlite_raw: %s: %s\n", what, sqlite3_errmsg(db));
  exit(1);
}

static void exec_or_die(sqlite3 *db, const char *sql) {
  if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
    die_sql(db, sql);
}

static void upsert(sqlite3 *db, sqlite3_stmt *s, const char *player,
                   const struct totals *t) {
  char total[32];
  snprintf(total, sizeof total, "%lld.%02lld", (long long)(t->score_x100 / 100),
           (long long)(t->score_x100 % 100));
  int64_t avg_x100 = t->score_x100 / t->games;
  int64_t pct_x100 = t->wins * 10000 / t->games;
  int rc = sqlite3_bind_text(s, 1, player, -1, SQLITE_STATIC);
  if (rc == SQLITE_OK)
    rc = sqlite3_bind_int64(s, 2, t->games);
  if (rc == SQLITE_OK)
    rc = sqlite3_bind_int64(s, 3, t->wins);
  if (rc == SQLITE_OK)
    rc = sqlite3_bind_text(s, 4, total, -1, SQLITE_TRANSIENT);
  if (rc == SQLITE_OK)
    rc = sqlite3_bind_text(s, 5, "2026-12-03T00:00:00Z", -1, SQLITE_STATIC);
  if (rc == SQLITE_OK)
    rc = sqlite3_bind_int64(s, 6, avg_x100);
  if (rc == SQLITE_OK)
    rc = sqlite3_bind_int64(s, 7, pct_x100);
  if (rc != SQLITE_OK || sqlite3_step(s) != SQLITE_DONE)
    die_sql(db, "upsert");
  sqlite3_reset(s);
}

int main(int argc, char **argv) {
  if (argc < 5 || argc > 6) {
    fprintf(stderr, "usage: sqlite_raw <db-file> <full|normal> "
                    "<rows-per-transaction> <seconds> [players]\n");
    return 2;
  }
  const char *path = argv[1], *sync = argv[2];
  if (strcmp(sync, "full") != 0 && strcmp(sync, "normal") != 0) {
    fprintf(stderr, "sqlite_raw: synchronous must be full or normal\n");
    return 2;
  }
  long per_tx = parse_long(argv[3], "rows per transaction");
  long seconds = parse_long(argv[4], "seconds");
  long players = argc == 6 ? parse_long(argv[5], "players") : 1000;

  /* A fresh file each time: a run must not start from another's rows. */
  char side[4096];
  unlink(path);
  snprintf(side, sizeof side, "%s-wal", path);
  unlink(side);
  snprintf(side, sizeof side, "%s-shm", path);
  unlink(side);

  /* The store counts no memory either (store/sqlite.c, configure_sqlite):
   * the ceiling must not carry a cost the store no longer pays. */
  sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
  sqlite3 *db = NULL;
  if (sqlite3_open_v2(path, &db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                          SQLITE_OPEN_NOMUTEX,
                      NULL) != SQLITE_OK)
    die_sql(db, "open");
  exec_or_die(db, schema);
  char pragma[64];
  snprintf(pragma, sizeof pragma, "PRAGMA synchronous = %s", sync);
  exec_or_die(db, pragma);

  sqlite3_stmt *up = NULL, *begin = NULL, *commit = NULL;
  if (sqlite3_prepare_v2(db, upsert_sql, -1, &up, NULL) != SQLITE_OK ||
      sqlite3_prepare_v2(db, "BEGIN IMMEDIATE", -1, &begin, NULL) !=
          SQLITE_OK ||
      sqlite3_prepare_v2(db, "COMMIT", -1, &commit, NULL) != SQLITE_OK)
    die_sql(db, "prepare");

  struct totals *t = calloc((size_t)players, sizeof *t);
  if (!t) {
    fprintf(stderr, "sqlite_raw: out of memory\n");
    return 1;
  }
  srand(20261203);
  long long rows = 0, txs = 0;
  double start = now_s(), end = start + (double)seconds, at = start;
  while (at < end) {
    if (sqlite3_step(begin) != SQLITE_DONE)
      die_sql(db, "begin");
    sqlite3_reset(begin);
    for (long i = 0; i < per_tx; i++) {
      long p = rand() % players;
      char player[24];
      snprintf(player, sizeof player, "p%ld", p + 1);
      t[p].games++;
      t[p].wins += rand() % 2;
      t[p].score_x100 += rand() % 10000;
      upsert(db, up, player, &t[p]);
    }
    if (sqlite3_step(commit) != SQLITE_DONE)
      die_sql(db, "commit");
    sqlite3_reset(commit);
    rows += per_tx;
    txs++;
    at = now_s();
  }
  double elapsed = at - start;
  printf("%.0f %.0f\n", (double)rows / elapsed, (double)txs / elapsed);
  sqlite3_finalize(up);
  sqlite3_finalize(begin);
  sqlite3_finalize(commit);
  sqlite3_close(db);
  free(t);
  return 0;
}
