/* The SQLite store and the transaction runner, against real SQLite files
 * under a fresh mkdtemp directory. Batches come from JSON text through
 * batch_new, as the server builds them. */
#include <ftw.h>
#include <jansson.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/bounds.h"
#include "domain/backfill.h"
#include "domain/batch.h"
#include "domain/replay.h"
#include "kinesis.h"
#include "records.h"
#include "store/store.h"
#include "store/store_impl.h"
#include "store/store_test.h"
#include "suites.h"
#include "unit.h"

/* ---- fixtures ---- */

static char tmp_dir[64];
static char db_path[128];

static int rm_one(const char *path, const struct stat *sb, int flag,
                  struct FTW *ftw) {
  (void)sb;
  (void)flag;
  (void)ftw;
  return remove(path);
}

/* A fresh directory; the database goes two levels below it so that every
 * test also exercises the creation of parent directories. */
static void fresh_path(void) {
  snprintf(tmp_dir, sizeof tmp_dir, "/tmp/ts-store-XXXXXX");
  CU_ASSERT_FATAL(mkdtemp(tmp_dir) != NULL);
  snprintf(db_path, sizeof db_path, "%s/data/sub/stats.db", tmp_dir);
}

static void remove_tmp(void) {
  nftw(tmp_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static struct store *open_store(void) {
  struct store_options opt = {.kind = "sqlite", .sqlite_path = db_path};
  struct store *s = NULL;
  CU_ASSERT_FATAL(store_open(&opt, &s) == TS_OK);
  CU_ASSERT_FATAL(s != NULL);
  return s;
}

/* Growable JSON text. */
struct text {
  char *p;
  size_t len, cap;
};

static void text_add(struct text *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void text_add(struct text *t, const char *fmt, ...) {
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(t->p ? t->p + t->len : NULL, t->p ? t->cap - t->len : 0,
                      fmt, ap);
    va_end(ap);
    CU_ASSERT_FATAL(n >= 0);
    if (t->p && (size_t)n < t->cap - t->len) {
      t->len += (size_t)n;
      return;
    }
    size_t cap = (t->cap + (size_t)n + 1) * 2;
    char *p = realloc(t->p, cap);
    CU_ASSERT_FATAL(p != NULL);
    t->p = p;
    t->cap = cap;
  }
}

static void image(struct text *t, const char *player, const char *score,
                  bool win) {
  text_add(t,
           "{\"game\":{\"S\":\"g\"},\"player\":{\"S\":\"%s\"},"
           "\"score\":{\"N\":\"%s\"},\"winner\":{\"BOOL\":%s}}",
           player, score, win ? "true" : "false");
}

/* Appends one stream record; `sep` is "" for the first and "," after. */
static void rec(struct text *t, const char *sep, const char *event_name,
                const char *event_id, const char *player, const char *score,
                bool win) {
  text_add(t,
           "%s{\"eventID\":\"%s\",\"eventName\":\"%s\",\"dynamodb\":"
           "{\"Keys\":{\"game\":{\"S\":\"%s\"}},",
           sep, event_id, event_name, event_id);
  if (strcmp(event_name, "REMOVE") == 0) {
    text_add(t, "\"OldImage\":");
    image(t, player, score, win);
  } else {
    text_add(t, "\"NewImage\":");
    image(t, player, score, win);
  }
  text_add(t, "}}");
}

/* A MODIFY of one game: old (player, score, win) -> new. */
static void rec_modify(struct text *t, const char *sep, const char *event_id,
                       const char *player, const char *old_score,
                       const char *new_score) {
  text_add(t,
           "%s{\"eventID\":\"%s\",\"eventName\":\"MODIFY\",\"dynamodb\":"
           "{\"Keys\":{\"game\":{\"S\":\"%s\"}},\"OldImage\":",
           sep, event_id, event_id);
  image(t, player, old_score, false);
  text_add(t, ",\"NewImage\":");
  image(t, player, new_score, false);
  text_add(t, "}}");
}

/* The batch of `records` (stream records joined by ','), as the server
 * builds it; NULL when it cannot be built. No CUnit here: a child
 * process uses it too. */
static struct batch *batch_from(const char *records) {
  size_t len = strlen(records) + 16;
  char *body = malloc(len);
  if (!body)
    return NULL;
  snprintf(body, len, "{\"Records\":[%s]}", records);
  struct jdoc *doc = NULL;
  enum ts_status st = jdoc_parse(body, strlen(body), &doc, NULL);
  free(body);
  struct batch *b = NULL;
  const char *detail = NULL;
  if (st == TS_OK) /* the batch takes doc */
    st = batch_new(doc, &record_names_default, &b, &detail);
  if (st != TS_OK)
    fprintf(stderr, "\n  batch_new: %s\n", detail ? detail : "not JSON");
  return st == TS_OK ? b : NULL;
}

static struct batch *batch_of(const char *records) {
  struct batch *b = batch_from(records);
  CU_ASSERT_FATAL(b != NULL);
  return b;
}

static void apply_ok(struct store *s, const char *records) {
  struct batch *b = batch_of(records);
  CU_ASSERT_FATAL(store_apply(s, b) == TS_OK);
  batch_free(b);
}

/* Expects `player` to have these stats; total as canonical text. */
static void check_player(struct store *s, const char *player, int64_t games,
                         int64_t wins, const char *total) {
  struct player_row row;
  enum ts_status st = store_get_player(s, player, &row);
  TS_CHECK_CASE(st == TS_OK, player, "get_player gave %d", (int)st);
  if (st != TS_OK)
    return;
  char buf[DECIMAL_TEXT_MAX];
  decimal_format(row.stats.total_score, buf);
  TS_CHECK_CASE(strcmp(row.player, player) == 0, player, "name %s", row.player);
  TS_CHECK_CASE(row.stats.games == games, player, "games %lld want %lld",
                (long long)row.stats.games, (long long)games);
  TS_CHECK_CASE(row.stats.wins == wins, player, "wins %lld want %lld",
                (long long)row.stats.wins, (long long)wins);
  TS_CHECK_CASE(strcmp(buf, total) == 0, player, "total %s want %s", buf,
                total);
  player_row_clear(&row);
}

static int64_t count(struct store *s, enum store_test_table t) {
  int64_t n = -1;
  CU_ASSERT(store_test_sqlite_count(s, t, &n) == TS_OK);
  return n;
}

/* ---- store_open ---- */

static void test_open_rejects_unknown_kinds(void) {
  fresh_path();
  const char *kinds[] = {"mysql", "", "SQLITE"};
  for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
    struct store_options opt = {.kind = kinds[i], .sqlite_path = db_path};
    struct store *s = (struct store *)&opt; /* must be reset to NULL */
    TS_CHECK_CASE(store_open(&opt, &s) == TS_ERR_INVALID, kinds[i], "accepted");
    TS_CHECK_CASE(s == NULL, kinds[i], "out not NULL");
  }
  struct store_options none = {.sqlite_path = db_path};
  struct store *s = NULL;
  CU_ASSERT(store_open(&none, &s) == TS_ERR_INVALID);
  CU_ASSERT(access(db_path, F_OK) != 0); /* nothing was created */
  remove_tmp();
}

static void test_open_creates_parent_directories_and_pings(void) {
  fresh_path();
  struct store *s = open_store();
  CU_ASSERT(access(db_path, F_OK) == 0);
  CU_ASSERT(store_ping(s) == TS_OK);
  store_free(s);
  store_free(NULL);
  remove_tmp();
}

static void test_open_rejects_unknown_sync_setting(void) {
  fresh_path();
  setenv("TS_SQLITE_SYNC", "sometimes", 1);
  struct store_options opt = {.kind = "sqlite", .sqlite_path = db_path};
  struct store *s = NULL;
  CU_ASSERT(store_open(&opt, &s) == TS_ERR_INVALID);
  setenv("TS_SQLITE_SYNC", "normal", 1);
  CU_ASSERT(store_open(&opt, &s) == TS_OK);
  store_free(s);
  unsetenv("TS_SQLITE_SYNC");
  remove_tmp();
}

/* ---- apply ---- */

static void test_batch_applies_and_reads_back(void) {
  fresh_path();
  struct store *s = open_store();
  struct text t = {0};
  rec(&t, "", "INSERT", "e1", "alice", "10", true);
  rec(&t, ",", "INSERT", "e2", "alice", "5", false);
  rec(&t, ",", "INSERT", "e3", "bob", "7.5", true);
  struct batch *b = batch_of(t.p);
  CU_ASSERT_FATAL(store_apply(s, b) == TS_OK);
  for (size_t i = 0; i < 3; i++)
    CU_ASSERT(batch_record_outcome(b, i) == RECORD_APPLIED);
  batch_free(b);

  check_player(s, "alice", 2, 1, "15");
  check_player(s, "bob", 1, 1, "7.5");
  struct player_row row;
  CU_ASSERT_FATAL(store_get_player(s, "bob", &row) == TS_OK);
  /* RFC 3339 UTC with seconds: 2026-11-27T09:17:02Z */
  CU_ASSERT(strlen(row.updated_at) == 20);
  CU_ASSERT(row.updated_at[10] == 'T' && row.updated_at[19] == 'Z');
  player_row_clear(&row);
  CU_ASSERT(store_get_player(s, "carol", &row) == TS_ERR_NOT_FOUND);
  CU_ASSERT(count(s, STORE_TEST_APPLIED_EVENTS) == 3);
  CU_ASSERT(count(s, STORE_TEST_DEAD_LETTERS) == 0);
  free(t.p);
  store_free(s);
  remove_tmp();
}

/* A group commit applies its batches in one transaction; every
 * batch must still see what the earlier batches of its group decided: their
 * stats (a REMOVE valid only after an earlier INSERT) and their eventIDs (a
 * duplicate across batches). */
static void test_group_sees_earlier_batches_and_counts_each_game_once(void) {
  fresh_path();
  struct store *s = open_store();
  struct text t1 = {0}, t2 = {0}, t3 = {0};
  rec(&t1, "", "INSERT", "e1", "alice", "10", true);
  rec(&t1, ",", "INSERT", "e2", "bob", "3", false);
  rec(&t2, "", "INSERT", "e3", "alice", "5", false);
  rec(&t2, ",", "INSERT", "e1", "alice", "10", true); /* resent */
  rec(&t3, "", "REMOVE", "e4", "bob", "3", false);    /* bob's only game */
  rec_modify(&t3, ",", "e5", "alice", "5", "7.5");
  rec(&t3, ",", "INSERT", "e6", "carol", "1", true);
  struct batch *b[3] = {batch_of(t1.p), batch_of(t2.p), batch_of(t3.p)};
  CU_ASSERT_FATAL(store_test_sqlite_apply_group(s, b, 3) == TS_OK);
  CU_ASSERT(batch_record_outcome(b[0], 0) == RECORD_APPLIED);
  CU_ASSERT(batch_record_outcome(b[1], 0) == RECORD_APPLIED);
  CU_ASSERT(batch_record_outcome(b[1], 1) == RECORD_DUPLICATE);
  for (size_t i = 0; i < 3; i++)
    TS_CHECK_CASE(batch_record_outcome(b[2], i) == RECORD_APPLIED, "third",
                  "record %zu outcome %d", i,
                  (int)batch_record_outcome(b[2], i));
  check_player(s, "alice", 2, 1, "17.5");
  check_player(s, "bob", 0, 0, "0");
  check_player(s, "carol", 1, 1, "1");
  CU_ASSERT(count(s, STORE_TEST_APPLIED_EVENTS) == 6);
  /* Later batches saw alice's row through the writer's copy, as written. */
  CU_ASSERT(store_test_sqlite_stale_rows(s) == 0);
  for (size_t i = 0; i < 3; i++)
    batch_free(b[i]);
  /* The same three again, as one group: all duplicates, nothing moves. */
  struct batch *again[3] = {batch_of(t1.p), batch_of(t2.p), batch_of(t3.p)};
  CU_ASSERT_FATAL(store_test_sqlite_apply_group(s, again, 3) == TS_OK);
  for (size_t i = 0; i < 3; i++) {
    for (size_t r = 0; r < batch_record_count(again[i]); r++)
      TS_CHECK_CASE(batch_record_outcome(again[i], r) == RECORD_DUPLICATE,
                    "resent group", "batch %zu record %zu outcome %d", i, r,
                    (int)batch_record_outcome(again[i], r));
    batch_free(again[i]);
  }
  check_player(s, "alice", 2, 1, "17.5");
  check_player(s, "carol", 1, 1, "1");
  free(t1.p);
  free(t2.p);
  free(t3.p);
  store_free(s);
  remove_tmp();
}

static void test_resent_batch_is_all_duplicates_and_changes_nothing(void) {
  fresh_path();
  struct store *s = open_store();
  struct text t = {0};
  rec(&t, "", "INSERT", "e1", "alice", "10", false);
  rec(&t, ",", "INSERT", "e2", "bob", "3", false);
  rec_modify(&t, ",", "e3", "alice", "10", "12");
  apply_ok(s, t.p);
  check_player(s, "alice", 1, 0, "12");

  struct batch *b = batch_of(t.p);
  CU_ASSERT_FATAL(store_apply(s, b) == TS_OK);
  for (size_t i = 0; i < 3; i++)
    TS_CHECK_CASE(batch_record_outcome(b, i) == RECORD_DUPLICATE, "resend",
                  "record %zu outcome %d", i, (int)batch_record_outcome(b, i));
  batch_free(b);
  check_player(s, "alice", 1, 0, "12");
  check_player(s, "bob", 1, 0, "3");
  CU_ASSERT(count(s, STORE_TEST_APPLIED_EVENTS) == 3);
  free(t.p);
  store_free(s);
  remove_tmp();
}

static void test_remove_below_zero_is_dead_lettered_while_rest_applies(void) {
  fresh_path();
  struct store *s = open_store();
  struct text t = {0};
  rec(&t, "", "INSERT", "e1", "alice", "4", true);
  rec(&t, ",", "REMOVE", "e2", "bob", "3", true); /* bob never played */
  rec(&t, ",", "INSERT", "e3", "carol", "2", false);
  struct batch *b = batch_of(t.p);
  CU_ASSERT_FATAL(store_apply(s, b) == TS_OK);
  CU_ASSERT(batch_record_outcome(b, 0) == RECORD_APPLIED);
  CU_ASSERT(batch_record_outcome(b, 1) == RECORD_REJECTED);
  CU_ASSERT(batch_record_outcome(b, 2) == RECORD_APPLIED);
  CU_ASSERT_FATAL(batch_rejected_count(b) == 1);
  const char *ev, *item, *reason, *record;
  batch_rejected(b, 0, &ev, &item, &reason, &record);
  CU_ASSERT(ev && strcmp(ev, "e2") == 0);
  CU_ASSERT(reason && strstr(reason, "below zero") != NULL);
  batch_free(b);

  check_player(s, "alice", 1, 1, "4");
  check_player(s, "carol", 1, 0, "2");
  struct player_row row;
  CU_ASSERT(store_get_player(s, "bob", &row) == TS_ERR_NOT_FOUND);
  CU_ASSERT(count(s, STORE_TEST_DEAD_LETTERS) == 1);
  CU_ASSERT(count(s, STORE_TEST_APPLIED_EVENTS) == 2);
  free(t.p);
  store_free(s);
  remove_tmp();
}

/* The same record while a backfill session is open: held (decide.h rule
 * 3), so the session's D carries it for the settlement; stats unchanged,
 * nothing dead-lettered, and a resend is a duplicate. Once the session is
 * closed it is rejected again. */
static void
test_remove_below_zero_during_a_backfill_is_held_in_the_session(void) {
  fresh_path();
  struct store *s = open_store();
  CU_ASSERT_FATAL(store_session_open(s, "bf-test") == TS_OK);
  /* bob never played; the record has its item's SequenceNumber, as a
   * DynamoDB Streams record does (rec() writes none, like Kinesis) */
  static const char held[] =
      "{\"eventID\":\"e2\",\"eventName\":\"REMOVE\",\"dynamodb\":{"
      "\"Keys\":{\"game\":{\"S\":\"e2\"}},\"SequenceNumber\":\"100\","
      "\"OldImage\":{\"player\":{\"S\":\"bob\"},\"score\":{\"N\":\"3\"},"
      "\"winner\":{\"BOOL\":true}}}}";
  for (int round = 0; round < 2; round++) {
    struct batch *b = batch_of(held);
    CU_ASSERT_FATAL(store_apply(s, b) == TS_OK);
    TS_CHECK_CASE(batch_record_outcome(b, 0) ==
                      (round ? RECORD_DUPLICATE : RECORD_APPLIED),
                  round ? "resent" : "first", "outcome %d",
                  (int)batch_record_outcome(b, 0));
    batch_free(b);
  }
  check_player(s, "bob", 0, 0, "0");
  struct player_row row;
  CU_ASSERT_FATAL(store_get_player(s, "bob", &row) == TS_OK);
  struct backfill_tracked tr;
  backfill_state_tracked(row.session_state, "bf-test", &tr);
  CU_ASSERT(tr.delta.games == -1 && tr.delta.wins == -1);
  player_row_clear(&row);
  CU_ASSERT(count(s, STORE_TEST_DEAD_LETTERS) == 0);

  /* Without a SequenceNumber (Kinesis), and after the session: rejected. */
  struct text t = {0};
  rec(&t, "", "REMOVE", "e3", "carol", "3", true);
  for (int closed = 0; closed < 2; closed++) {
    if (closed)
      CU_ASSERT_FATAL(store_session_close(s, "bf-test") == TS_OK);
    struct batch *b = batch_of(closed ? held : t.p);
    CU_ASSERT_FATAL(store_apply(s, b) == TS_OK);
    TS_CHECK_CASE(batch_record_outcome(b, 0) ==
                      (closed ? RECORD_DUPLICATE : RECORD_REJECTED),
                  closed ? "held, resent after the session" : "no sequence",
                  "outcome %d", (int)batch_record_outcome(b, 0));
    batch_free(b);
  }
  struct text t2 = {0};
  rec(&t2, "", "REMOVE", "e4", "dan", "3", true);
  struct batch *b = batch_of(t2.p);
  CU_ASSERT_FATAL(store_apply(s, b) == TS_OK);
  CU_ASSERT(batch_record_outcome(b, 0) == RECORD_REJECTED);
  CU_ASSERT(count(s, STORE_TEST_DEAD_LETTERS) == 2);
  batch_free(b);
  free(t.p);
  free(t2.p);
  store_free(s);
  remove_tmp();
}

static void test_resent_poison_records_are_dead_lettered_once(void) {
  fresh_path();
  struct store *s = open_store();
  struct text t = {0};
  rec(&t, "", "REMOVE", "e1", "bob", "3", false);
  /* poison: no score attribute */
  text_add(&t, ",{\"eventID\":\"e2\",\"eventName\":\"INSERT\",\"dynamodb\":"
               "{\"Keys\":{\"game\":{\"S\":\"e2\"}},\"NewImage\":"
               "{\"player\":{\"S\":\"dan\"}}}}");
  rec(&t, ",", "INSERT", "e3", "erin", "1", false);
  for (int round = 0; round < 3; round++) {
    struct batch *b = batch_of(t.p);
    CU_ASSERT_FATAL(store_apply(s, b) == TS_OK);
    CU_ASSERT(batch_rejected_count(b) == 2);
    CU_ASSERT(batch_record_outcome(b, 2) ==
              (round == 0 ? RECORD_APPLIED : RECORD_DUPLICATE));
    batch_free(b);
    CU_ASSERT(count(s, STORE_TEST_DEAD_LETTERS) == 2);
  }
  check_player(s, "erin", 1, 0, "1");
  free(t.p);
  store_free(s);
  remove_tmp();
}

/* A database of schema version 1 (dead letters keyed by eventID and
 * reason) is upgraded in place: its dead letters stay, and from then on
 * distinct poison records that share an eventID and a reason are all kept,
 * a resent one once. */
static void test_version_1_database_is_upgraded_and_keeps_every_poison(void) {
  fresh_path();
  struct store *s = open_store(); /* makes the folders */
  store_free(s);
  remove(db_path);
  sqlite3 *db = NULL;
  CU_ASSERT_FATAL(sqlite3_open(db_path, &db) == SQLITE_OK);
  CU_ASSERT_FATAL(sqlite3_exec(db, store_test_sqlite_schema_v1(), NULL, NULL,
                               NULL) == SQLITE_OK);
  CU_ASSERT_FATAL(
      sqlite3_exec(db,
                   "INSERT INTO dead_letters(event_id, item_identifier, "
                   "reason, record, received_at) VALUES('old', 'old', 'bad', "
                   "'{}', '2026-01-01T00:00:00Z')",
                   NULL, NULL, NULL) == SQLITE_OK);
  sqlite3_close(db);
  s = open_store();
  CU_ASSERT(count(s, STORE_TEST_DEAD_LETTERS) == 1);
  /* Two poison records (no score), one eventID, one reason text. */
  const char *pair =
      "{\"eventID\":\"same\",\"eventName\":\"INSERT\",\"dynamodb\":{"
      "\"SequenceNumber\":\"1\",\"NewImage\":{\"player\":{\"S\":\"x\"}}}},"
      "{\"eventID\":\"same\",\"eventName\":\"INSERT\",\"dynamodb\":{"
      "\"SequenceNumber\":\"2\",\"NewImage\":{\"player\":{\"S\":\"x\"}}}}";
  for (int round = 0; round < 2; round++) {
    struct batch *b = batch_of(pair);
    CU_ASSERT_FATAL(store_apply(s, b) == TS_OK);
    CU_ASSERT(batch_rejected_count(b) == 2);
    batch_free(b);
    TS_CHECK_CASE(count(s, STORE_TEST_DEAD_LETTERS) == 3, "dead letters",
                  "round %d: %lld rows (want the old one and both records)",
                  round, (long long)count(s, STORE_TEST_DEAD_LETTERS));
  }
  /* The old row got an id: it is listed and can be deleted like any. */
  const char *legacy[] = {"v1-1"};
  struct dead_letter *rows = NULL;
  size_t n = 0;
  CU_ASSERT(store_get_dead_letters(s, legacy, 1, &rows, &n) == TS_OK);
  CU_ASSERT(n == 1 && strcmp(rows[0].reason, "bad") == 0 &&
            strcmp(rows[0].event_id, "old") == 0);
  dead_letters_free(rows, n);
  CU_ASSERT(store_delete_dead_letters(s, legacy, 1) == TS_OK);
  CU_ASSERT(count(s, STORE_TEST_DEAD_LETTERS) == 2);
  store_free(s);
  CU_ASSERT_FATAL(sqlite3_open(db_path, &db) == SQLITE_OK);
  sqlite3_stmt *q = NULL;
  CU_ASSERT_FATAL(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &q, NULL) ==
                  SQLITE_OK);
  CU_ASSERT(sqlite3_step(q) == SQLITE_ROW && sqlite3_column_int(q, 0) == 9);
  sqlite3_finalize(q);
  /* schema 7: no leaderboard indexes left to keep in order; schema 9: no
   * index of applied_events by time */
  CU_ASSERT_FATAL(
      sqlite3_prepare_v2(db,
                         "SELECT count(*) FROM sqlite_master WHERE "
                         "type = 'index' AND (name LIKE 'players_by%' OR "
                         "name = 'applied_events_by_time')",
                         -1, &q, NULL) == SQLITE_OK);
  CU_ASSERT(sqlite3_step(q) == SQLITE_ROW && sqlite3_column_int(q, 0) == 0);
  sqlite3_finalize(q);
  sqlite3_close(db);
  remove_tmp();
}

/* A database of schema version 7 kept a row per new pair in
 * applied_recent. Upgraded, those pairs are in applied_events: a record
 * applied before the upgrade is a duplicate after it, and a new one is
 * applied once, its pair in applied_recent's one row per transaction. */
static void test_version_7_pairs_stay_applied_across_the_upgrade(void) {
  fresh_path();
  struct store *s = open_store();
  const char *old_rec = REC("v7-1", "INSERT", NEW(PS("vera") SC("2") WIN));
  struct batch *b = batch_of(old_rec);
  CU_ASSERT_FATAL(store_apply(s, b) == TS_OK);
  batch_free(b);
  store_free(s);
  /* Back to version 7's applied_recent, holding the pair as it did. */
  sqlite3 *db = NULL;
  CU_ASSERT_FATAL(sqlite3_open(db_path, &db) == SQLITE_OK);
  CU_ASSERT_FATAL(
      sqlite3_exec(db,
                   "DELETE FROM applied_events;"
                   "DROP TABLE applied_recent;"
                   "CREATE TABLE applied_recent(id INTEGER PRIMARY KEY, "
                   "player TEXT NOT NULL, event_id TEXT NOT NULL, "
                   "applied_at INTEGER NOT NULL);"
                   "INSERT INTO applied_recent(player, event_id, applied_at) "
                   "VALUES('vera', 'v7-1', unixepoch());"
                   "PRAGMA user_version = 7;",
                   NULL, NULL, NULL) == SQLITE_OK);
  sqlite3_close(db);
  s = open_store();
  char two[2048];
  snprintf(two, sizeof two, "%s,%s", old_rec,
           REC("v8-1", "INSERT", NEW(PS("vera") SC("3"))));
  b = batch_of(two);
  CU_ASSERT_FATAL(store_apply(s, b) == TS_OK);
  struct batch_counts c;
  batch_counts(b, &c);
  TS_CHECK_CASE(c.duplicates == 1 && c.applied == 1, "after the upgrade",
                "%zu applied, %zu duplicates (want 1 and 1)", c.applied,
                c.duplicates);
  batch_free(b);
  CU_ASSERT(count(s, STORE_TEST_APPLIED_EVENTS) == 2);
  store_free(s);
  CU_ASSERT_FATAL(sqlite3_open(db_path, &db) == SQLITE_OK);
  sqlite3_stmt *q = NULL;
  CU_ASSERT_FATAL(
      sqlite3_prepare_v2(db,
                         "SELECT (SELECT count(*) FROM applied_events WHERE "
                         "event_id = 'v7-1'), (SELECT group_concat(pairs) "
                         "FROM applied_recent), (SELECT user_version FROM "
                         "pragma_user_version)",
                         -1, &q, NULL) == SQLITE_OK);
  CU_ASSERT_FATAL(sqlite3_step(q) == SQLITE_ROW);
  CU_ASSERT(sqlite3_column_int(q, 0) == 1);
  const char *pairs = (const char *)sqlite3_column_text(q, 1);
  const char *want = "[[\"vera\",\"v8-1\",";
  TS_CHECK_CASE(pairs && strncmp(pairs, want, strlen(want)) == 0,
                "applied_recent", "holds %s", pairs ? pairs : "(nothing)");
  CU_ASSERT(sqlite3_column_int(q, 2) == 9);
  sqlite3_finalize(q);
  sqlite3_close(db);
  remove_tmp();
}

/* ---- Kinesis records ---- */

/* Kinesis may deliver a change twice, each time in a new outer record (a
 * new outer eventID and sequenceNumber, on another shard after a
 * reshard): the inner eventID is what counts once. */
static void test_kinesis_redelivery_with_new_outer_ids_is_a_duplicate(void) {
  fresh_path();
  struct store *s = open_store();
  const char *inner = KREC("k-in-1", "INSERT", NEW(PS("kira") SC("4") WIN));
  char *first = kinesis_record(inner, "4959001", "4959001");
  char *again = kinesis_record(inner, "4960002", "4960002");
  struct batch *b = batch_of(first);
  CU_ASSERT_FATAL(store_apply(s, b) == TS_OK);
  CU_ASSERT(batch_record_outcome(b, 0) == RECORD_APPLIED);
  batch_free(b);
  b = batch_of(again);
  CU_ASSERT_FATAL(store_apply(s, b) == TS_OK);
  CU_ASSERT(batch_record_outcome(b, 0) == RECORD_DUPLICATE);
  batch_free(b);
  check_player(s, "kira", 1, 1, "4");
  CU_ASSERT(count(s, STORE_TEST_APPLIED_EVENTS) == 1);
  free(first);
  free(again);
  store_free(s);
  remove_tmp();
}

/* What README "Kinesis Data Streams for DynamoDB" says of changes out of
 * order: a REMOVE before its INSERT is rejected only when it would take
 * the player below zero (or wins above games); otherwise it is applied at
 * once and the INSERT after it nets exactly. A rejected one applies when
 * replayed after the INSERT. */
static void test_kinesis_remove_before_its_insert_nets_or_is_rejected(void) {
  fresh_path();
  struct store *s = open_store();
  const char *ins_new = KREC("o-1", "INSERT", NEW(PS("olga") SC("4") WIN));
  const char *rem_new = KREC("o-2", "REMOVE", OLD(PS("olga") SC("4") WIN));
  const char *ins_old = KREC("o-3", "INSERT", NEW(PS("otto") SC("5") WIN));
  const char *rem_old = KREC("o-4", "REMOVE", OLD(PS("otto") SC("5") WIN));
  const char *earlier = KREC("o-5", "INSERT", NEW(PS("otto") SC("1") WIN));
  char *k[5] = {
      kinesis_record(rem_new, "1", "1"), kinesis_record(ins_new, "2", "2"),
      kinesis_record(earlier, "3", "3"), kinesis_record(rem_old, "4", "4"),
      kinesis_record(ins_old, "5", "5")};
  enum record_outcome want[5] = {RECORD_REJECTED, RECORD_APPLIED,
                                 RECORD_APPLIED, RECORD_APPLIED,
                                 RECORD_APPLIED};
  for (size_t i = 0; i < 5; i++) {
    struct batch *b = batch_of(k[i]);
    CU_ASSERT_FATAL(store_apply(s, b) == TS_OK);
    TS_CHECK_CASE(batch_record_outcome(b, 0) == want[i], k[i], "outcome %d",
                  (int)batch_record_outcome(b, 0));
    batch_free(b);
  }
  check_player(s, "olga", 1, 1, "4"); /* off until the REMOVE is replayed */
  check_player(s, "otto", 1, 1, "1"); /* exact: the REMOVE went first */
  struct batch *b = batch_of(k[0]);   /* the replay */
  CU_ASSERT_FATAL(store_apply(s, b) == TS_OK);
  CU_ASSERT(batch_record_outcome(b, 0) == RECORD_APPLIED);
  batch_free(b);
  check_player(s, "olga", 0, 0, "0");
  for (size_t i = 0; i < 5; i++)
    free(k[i]);
  store_free(s);
  remove_tmp();
}

/* ---- dead letters: list, get, delete; replay through store_apply ---- */

/* A poison record (no score) of event_id; with_player false leaves the
 * player out too, for a second reason. */
static void poison(struct text *t, const char *sep, const char *event_id,
                   bool with_player) {
  text_add(t,
           "%s{\"eventID\":\"%s\",\"eventName\":\"INSERT\",\"dynamodb\":"
           "{\"NewImage\":{%s}}}",
           sep, event_id, with_player ? "\"player\":{\"S\":\"p\"}" : "");
}

static void test_dead_letters_page_once_each_filter_by_reason_and_delete(void) {
  fresh_path();
  struct store *s = open_store();
  struct text t = {0};
  char id[16];
  for (int i = 0; i < 7; i++) {
    snprintf(id, sizeof id, "d%d", i);
    poison(&t, i ? "," : "", id, i % 2 == 0);
  }
  apply_ok(s, t.p);
  CU_ASSERT(count(s, STORE_TEST_DEAD_LETTERS) == 7);
  static const struct {
    size_t limit;
    const char *reason;
    size_t want, pages;
  } cases[] = {
      {2, NULL, 7, 4},
      {7, NULL, 7, 1},
      {100, NULL, 7, 1},
      {1, "NewImage: score is missing", 4, 4},
      {3, "NewImage: player is missing", 3, 1},
      {5, "no such reason", 0, 1},
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    char *after = NULL, *seen[16] = {0};
    size_t total = 0, pages = 0;
    do {
      struct dead_letter *rows = NULL;
      size_t n = 0;
      char *next = NULL;
      CU_ASSERT_FATAL(store_list_dead_letters(s, after, cases[c].reason,
                                              cases[c].limit, &rows, &n,
                                              &next) == TS_OK);
      pages++;
      CU_ASSERT(n <= cases[c].limit);
      for (size_t i = 0; i < n && total < 16; i++) {
        for (size_t k = 0; k < total; k++)
          TS_CHECK_CASE(strcmp(seen[k], rows[i].id) != 0, "paging",
                        "case %zu: %s twice", c, rows[i].id);
        TS_CHECK_CASE(!cases[c].reason ||
                          strcmp(rows[i].reason, cases[c].reason) == 0,
                      "reason filter", "case %zu: %s", c, rows[i].reason);
        CU_ASSERT(rows[i].record && rows[i].received_at[0] && rows[i].event_id);
        seen[total++] = strdup(rows[i].id);
      }
      CU_ASSERT(!next || (n > 0 && strcmp(next, rows[n - 1].id) == 0));
      free(after);
      after = next;
      dead_letters_free(rows, n);
    } while (after && pages < 20);
    TS_CHECK_CASE(total == cases[c].want && pages == cases[c].pages, "pages",
                  "case %zu: %zu dead letters on %zu pages", c, total, pages);
    if (c == 0) { /* get and delete, twice: the second deletes nothing */
      const char *ids[] = {seen[0], seen[3], "0000"};
      struct dead_letter *rows = NULL;
      size_t n = 0;
      CU_ASSERT(store_get_dead_letters(s, ids, 3, &rows, &n) == TS_OK);
      CU_ASSERT(n == 2 && strcmp(rows[0].id, seen[0]) == 0 &&
                strcmp(rows[1].id, seen[3]) == 0);
      dead_letters_free(rows, n);
      for (int round = 0; round < 2; round++) {
        CU_ASSERT(store_delete_dead_letters(s, ids, 3) == TS_OK);
        CU_ASSERT(count(s, STORE_TEST_DEAD_LETTERS) == 5);
      }
      apply_ok(s, t.p); /* kept again when rejected again */
      CU_ASSERT(count(s, STORE_TEST_DEAD_LETTERS) == 7);
    }
    for (size_t k = 0; k < total; k++)
      free(seen[k]);
    free(after);
  }
  free(t.p);
  store_free(s);
  remove_tmp();
}

/* Replays the stored dead letters (every one) through store_apply with
 * names; returns the replay for its verdicts, and in rows and n what was
 * read. */
static struct replay *replay_all(struct store *s,
                                 const struct record_names *names,
                                 struct dead_letter **rows, size_t *n) {
  char *next = NULL;
  CU_ASSERT_FATAL(store_list_dead_letters(s, NULL, NULL, 100, rows, n, &next) ==
                  TS_OK);
  CU_ASSERT(next == NULL);
  const char *texts[16];
  CU_ASSERT_FATAL(*n <= 16);
  for (size_t i = 0; i < *n; i++)
    texts[i] = (*rows)[i].record;
  struct batch_options opt = {.names = *names};
  struct replay *rp = NULL;
  CU_ASSERT_FATAL(replay_new(texts, *n, &opt, &rp) == TS_OK);
  if (replay_batch(rp))
    CU_ASSERT_FATAL(store_apply(s, replay_batch(rp)) == TS_OK);
  return rp;
}

static void test_replay_verdicts_follow_the_outcome_of_the_current_names(void) {
  fresh_path();
  struct store *s = open_store();
  /* Rejected under names whose player attribute is "who". */
  struct text t = {0};
  rec(&t, "", "INSERT", "r1", "ann", "2.5", true);
  rec(&t, ",", "INSERT", "r2", "ann", "1", false);
  poison(&t, ",", "r3", true);
  struct batch *b = NULL;
  size_t len = t.len + 3;
  char *wrapped = malloc(len);
  CU_ASSERT_FATAL(wrapped != NULL);
  snprintf(wrapped, len, "[%s]", t.p);
  json_t *records = json_loads(wrapped, 0, NULL);
  free(wrapped);
  CU_ASSERT_FATAL(records != NULL);
  const struct record_names wrong = {"who", "score", "winner"};
  CU_ASSERT_FATAL(batch_new(test_doc_of(records), &wrong, &b, NULL) == TS_OK);
  CU_ASSERT_FATAL(store_apply(s, b) == TS_OK);
  CU_ASSERT(batch_rejected_count(b) == 3);
  batch_free(b);
  json_decref(records);
  /* One dead letter that is not JSON (as a cut record would be). */
  sqlite3 *db = NULL;
  CU_ASSERT_FATAL(sqlite3_open(db_path, &db) == SQLITE_OK);
  CU_ASSERT_FATAL(
      sqlite3_exec(db,
                   "INSERT INTO dead_letters(event_id, item_identifier, "
                   "reason, record, received_at, dead_letter_id) VALUES("
                   "'cut', 'cut', 'x', '{\"eventID\":\"cu', "
                   "'2026-01-01T00:00:00Z', 'ffff')",
                   NULL, NULL, NULL) == SQLITE_OK);
  sqlite3_close(db);

  static const struct {
    const char *event_id;
    enum replay_verdict first, second;
    bool deleted_first;
  } want[] = {
      {"r1", REPLAY_APPLIED, REPLAY_APPLIED, true},
      {"r2", REPLAY_APPLIED, REPLAY_APPLIED, true},
      /* its reason changes (score, not who): kept under the new id */
      {"r3", REPLAY_REJECTED, REPLAY_REJECTED, true},
      {"cut", REPLAY_UNREADABLE, REPLAY_UNREADABLE, false},
  };
  for (int round = 0; round < 2; round++) {
    struct dead_letter *rows = NULL;
    size_t n = 0;
    struct replay *rp = replay_all(s, &record_names_default, &rows, &n);
    TS_CHECK_CASE(n == (round ? 2u : 4u), "selected", "round %d: %zu", round,
                  n);
    for (size_t i = 0; i < n; i++) {
      enum replay_verdict v;
      char new_id[65];
      const char *reason = NULL;
      bool deleted = replay_result(rp, i, rows[i].id, &v, new_id, &reason);
      for (size_t w = 0; w < sizeof want / sizeof want[0]; w++) {
        if (strcmp(rows[i].event_id, want[w].event_id) != 0)
          continue;
        bool deleted_want = round ? false : want[w].deleted_first;
        TS_CHECK_CASE(v == (round ? want[w].second : want[w].first) &&
                          deleted == deleted_want &&
                          (v == REPLAY_APPLIED) == (reason == NULL),
                      want[w].event_id, "round %d: verdict %d deleted %d",
                      round, (int)v, deleted);
        if (v == REPLAY_REJECTED)
          TS_CHECK_CASE(strstr(reason, "score") && new_id[0] &&
                            (round == 0) == (strcmp(new_id, rows[i].id) != 0),
                        want[w].event_id, "round %d: %s %s", round, reason,
                        new_id);
      }
      if (deleted) {
        const char *ids[] = {rows[i].id};
        CU_ASSERT(store_delete_dead_letters(s, ids, 1) == TS_OK);
      }
    }
    replay_free(rp);
    dead_letters_free(rows, n);
    check_player(s, "ann", 2, 1, "3.5");
  }
  free(t.p);
  store_free(s);
  remove_tmp();
}

/* ---- applied_recent (store/recent.h) ---- */

/* Record i of the applied_recent tests: player r<i % 7>, one game each. */
static void recent_rec(struct text *t, const char *sep, size_t i) {
  char ev[32], player[16];
  snprintf(ev, sizeof ev, "ev-%zu", i);
  snprintf(player, sizeof player, "r%zu", i % 7);
  rec(t, sep, "INSERT", ev, player, "1", i % 2 == 0);
}

static enum ts_status apply_queued(struct store *s, struct batch *b,
                                   uint64_t deadline_ms, unsigned *calls);

/* Records [from, to) and, unless SIZE_MAX, record `also`, as one batch,
 * applied (queued: as an HTTP batch is, store_apply_async); the outcomes
 * counted. */
static void recent_apply_via(struct store *s, bool queued, size_t from,
                             size_t to, size_t also, size_t *applied,
                             size_t *dups) {
  struct text t = {0};
  for (size_t i = from; i < to; i++)
    recent_rec(&t, i == from ? "" : ",", i);
  if (also != SIZE_MAX)
    recent_rec(&t, from == to ? "" : ",", also);
  struct batch *b = batch_of(t.p);
  unsigned calls = 0;
  CU_ASSERT_FATAL((queued ? apply_queued(s, b, UINT64_MAX, &calls)
                          : store_apply(s, b)) == TS_OK);
  *applied = *dups = 0;
  for (size_t r = 0; r < batch_record_count(b); r++) {
    enum record_outcome o = batch_record_outcome(b, r);
    *applied += o == RECORD_APPLIED;
    *dups += o == RECORD_DUPLICATE;
  }
  batch_free(b);
  free(t.p);
}

static void recent_apply_with(struct store *s, size_t from, size_t to,
                              size_t also, size_t *applied, size_t *dups) {
  recent_apply_via(s, false, from, to, also, applied, dups);
}

static void recent_apply(struct store *s, size_t from, size_t to,
                         size_t *applied, size_t *dups) {
  recent_apply_with(s, from, to, SIZE_MAX, applied, dups);
}

/* Each of the 7 players holds exactly its share of records [0, n). */
static void recent_check_totals(struct store *s, size_t n) {
  for (size_t p = 0; p < 7; p++) {
    char player[16], total[32];
    snprintf(player, sizeof player, "r%zu", p);
    int64_t games = 0, wins = 0;
    for (size_t i = p; i < n; i += 7) {
      games++;
      wins += i % 2 == 0;
    }
    snprintf(total, sizeof total, "%lld", (long long)games);
    check_player(s, player, games, wins, total);
  }
}

/* The newest pairs live in applied_recent and in memory until a cycle moves
 * them, a slice per transaction, into applied_events. A resent record must
 * be a duplicate whichever side it is on, or both mid-cycle. */
static void test_resent_records_are_duplicates_in_every_cycle_state(void) {
  fresh_path();
  struct store *s = open_store();
  store_test_sqlite_set_recent_rows(s, 40, 15);
  size_t applied = 0, dups = 0, most = 0, at = 0;
  /* Each transaction: one new record, and five sent before (in turn, over
   * and over), so that pairs come in while a cycle is under way. */
  for (size_t n = 0; n < 200; n++) {
    size_t to = at + 5 < n ? at + 5 : n;
    recent_apply_with(s, at, to, n, &applied, &dups);
    TS_CHECK_CASE(applied == 1 && dups == to - at, "resent",
                  "record %zu with %zu-%zu: %zu applied, %zu duplicates", n, at,
                  to, applied, dups);
    at = to < n ? to : 0;
    size_t held = store_test_sqlite_recent_count(s);
    most = held > most ? held : most;
  }
  recent_check_totals(s, 200);
  CU_ASSERT(count(s, STORE_TEST_APPLIED_EVENTS) == 200);
  /* Cycles ran: memory let pairs go, and never held many past a cycle. */
  CU_ASSERT(store_test_sqlite_recent_count(s) < 200);
  TS_CHECK_CASE(most <= 40 + 2 * 15, "bound", "held %zu", most);
  /* A moved pair is a pair: another player's record with its eventID is
   * another record. */
  struct text t = {0};
  rec(&t, "", "INSERT", "ev-0", "someone-else", "1", false);
  apply_ok(s, t.p);
  check_player(s, "someone-else", 1, 0, "1");
  free(t.p);
  store_free(s);
  remove_tmp();
}

/* A cycle's last slice is short while its transaction adds a whole batch,
 * so with batches of changing sizes (32 senders' groups) each snapshot
 * could start larger than the last, until every pair moved at once: a
 * stall the size of the bound. Slices grow with a snapshot over the mark,
 * so the pairs held stay near two cycles' worth. */
static void test_cycles_of_uneven_batches_stay_near_their_mark(void) {
  fresh_path();
  struct store *s = open_store();
  store_test_sqlite_set_recent_rows(s, 40, 1); /* bound: 160 pairs */
  static const size_t sizes[] = {5, 13, 7, 11, 3, 9, 12, 4};
  size_t applied = 0, dups = 0, most = 0, at = 0, total = 0;
  for (size_t i = 0; at < 8000; i++) {
    size_t to = at + sizes[i % (sizeof sizes / sizeof *sizes)];
    recent_apply(s, at, to, &applied, &dups);
    total += applied;
    at = to;
    size_t held = store_test_sqlite_recent_count(s);
    most = held > most ? held : most;
  }
  CU_ASSERT_EQUAL(total, at);
  /* A snapshot stays within the mark and a batch, and a cycle adds about
   * as many again: well under the bound. (Unscaled, the snapshots pass
   * this within some 4,000 records here.) */
  TS_CHECK_CASE(most <= 2 * (40 + 13), "held", "at most %zu", most);
  recent_check_totals(s, at);
  CU_ASSERT(count(s, STORE_TEST_APPLIED_EVENTS) == (int64_t)at);
  store_free(s);
  remove_tmp();
}

/* Past the bound of pairs in memory, every pair moves into applied_events
 * at once, in one statement that the filter of applied pairs does not see:
 * it is built again by a scan, and resent, the pairs are duplicates. */
static void test_pairs_moved_at_once_past_the_bound_stay_applied(void) {
  fresh_path();
  struct store *s = open_store();
  store_test_sqlite_set_recent_rows(s, 10, 1); /* bound: 40 pairs */
  size_t applied = 0, dups = 0;
  recent_apply(s, 0, 100, &applied, &dups);   /* one batch: 100 in memory */
  recent_apply(s, 100, 101, &applied, &dups); /* moves all 100 first */
  CU_ASSERT_EQUAL(store_test_sqlite_recent_count(s), 1);
  CU_ASSERT(store_test_sqlite_filter_holds(s));
  recent_apply(s, 0, 101, &applied, &dups);
  TS_CHECK_CASE(applied == 0 && dups == 101, "resent",
                "%zu applied, %zu duplicates", applied, dups);
  recent_check_totals(s, 101);
  store_free(s);
  remove_tmp();
}

/* A reopened store knows nothing in memory: what applied_recent held
 * before the close (mid-cycle) must still count as applied. */
static void test_pairs_of_a_cycle_cut_by_a_restart_stay_applied(void) {
  fresh_path();
  struct store *s = open_store();
  store_test_sqlite_set_recent_rows(s, 20, 7);
  size_t applied = 0, dups = 0;
  for (size_t i = 0; i < 50; i += 5)
    recent_apply(s, i, i + 5, &applied, &dups);
  CU_ASSERT(store_test_sqlite_recent_count(s) > 0);
  store_free(s);
  s = open_store();
  recent_apply(s, 0, 50, &applied, &dups);
  CU_ASSERT(applied == 0 && dups == 50);
  recent_apply(s, 50, 60, &applied, &dups);
  CU_ASSERT(applied == 10 && dups == 0);
  recent_check_totals(s, 60);
  store_free(s);
  remove_tmp();
}

/* A transaction's new pairs go to applied_recent as rows of at most
 * TS_SQLITE_PAIRS_ROW_BYTES of text: a batch of 6,000 records takes
 * several, and every pair of every row still counts as applied after a
 * restart (when they all move into applied_events at once). */
static void test_pairs_of_a_large_transaction_span_rows_and_stay_applied(void) {
  fresh_path();
  struct store *s = open_store();
  size_t applied = 0, dups = 0;
  recent_apply(s, 0, 6000, &applied, &dups);
  CU_ASSERT(applied == 6000 && dups == 0);
  store_free(s);
  sqlite3 *db = NULL;
  sqlite3_stmt *q = NULL;
  CU_ASSERT_FATAL(sqlite3_open(db_path, &db) == SQLITE_OK);
  CU_ASSERT_FATAL(sqlite3_prepare_v2(db,
                                     "SELECT count(*), max(length(pairs)), "
                                     "(SELECT count(*) FROM applied_recent, "
                                     "json_each(pairs)) FROM applied_recent",
                                     -1, &q, NULL) == SQLITE_OK);
  CU_ASSERT_FATAL(sqlite3_step(q) == SQLITE_ROW);
  TS_CHECK_CASE(
      sqlite3_column_int(q, 0) >= 2 &&
          sqlite3_column_int(q, 1) <=
              (int)(TS_SQLITE_PAIRS_ROW_BYTES + TS_SQLITE_PAIR_TEXT_BYTES) &&
          sqlite3_column_int(q, 2) == 6000,
      "applied_recent", "%d rows, the longest %d bytes, %d pairs",
      sqlite3_column_int(q, 0), sqlite3_column_int(q, 1),
      sqlite3_column_int(q, 2));
  sqlite3_finalize(q);
  sqlite3_close(db);
  s = open_store();
  recent_apply(s, 0, 6000, &applied, &dups);
  CU_ASSERT(applied == 0 && dups == 6000);
  recent_check_totals(s, 6000);
  store_free(s);
  remove_tmp();
}

/* A table of applied pairs too large for the filter stays so for hours,
 * and counting it reads every page: the writer counts it again after
 * twice its last wait each time, not every quiet period. */
static void
test_a_table_too_large_for_the_filter_is_counted_ever_less_often(void) {
  fresh_path();
  struct store *s = open_store();
  size_t applied = 0, dups = 0;
  recent_apply(s, 0, 100, &applied, &dups);
  store_free(s);
  s = open_store(); /* its first write moves the 100 into applied_events */
  store_test_sqlite_set_filter_max_pairs(s, 8);
  store_test_sqlite_set_filter_quiet(s, 40);
  /* 1.2 s of writes: every 40 ms would count about 30 times; doubling
   * waits of 80, 160, 320 and 640 ms count at 0, 80, 240, 560 (1,200). */
  uint64_t t0 = clock_now_ms();
  size_t next = 100;
  while (clock_now_ms() - t0 < 1200) {
    recent_apply(s, next, next + 1, &applied, &dups);
    CU_ASSERT(applied == 1 && dups == 0);
    next++;
    struct timespec pause = {0, 5 * 1000 * 1000};
    nanosleep(&pause, NULL);
  }
  uint64_t counts = store_test_sqlite_filter_counts(s);
  TS_CHECK_CASE(counts >= 3 && counts <= 6, "counts in 1.2 s",
                "%llu counts, %zu writes", (unsigned long long)counts,
                next - 100);
  CU_ASSERT(!store_test_sqlite_filter_holds(s));
  /* Without a filter every pair is looked up: the first ones are seen. */
  recent_apply(s, 0, 100, &applied, &dups);
  CU_ASSERT(applied == 0 && dups == 100);
  recent_check_totals(s, next);
  store_free(s);
  remove_tmp();
}

/* A filter is built by reading applied_events a slice per transaction
 * while cycles keep moving pairs into it, ahead of the build's key and
 * behind it: the new filter must hold them all, or a resent record would
 * be taken for new. Each time a build ends, every record sent is sent
 * again and must be a duplicate; while one is under way, the full filter
 * it replaces answers, and the latest records sent again are duplicates
 * too. No transaction reads more keys than its slice. */
static void test_a_filter_built_in_slices_misses_no_pair(void) {
  fresh_path();
  struct store *s = open_store();
  store_test_sqlite_set_recent_rows(s, 40, 5);
  store_test_sqlite_set_filter_build(s, 64, 16);
  uint64_t builds = store_test_sqlite_filter_counts(s);
  size_t applied = 0, dups = 0, at = 0, most = 0;
  size_t slices = 0, ended = 0;
  bool was_building = false;
  while (at < 3000) {
    recent_apply(s, at, at + 10, &applied, &dups);
    CU_ASSERT(applied == 10 && dups == 0);
    at += 10;
    bool building = store_test_sqlite_filter_building(s, &most);
    slices += building;
    if (building && at % 50 == 0) {
      recent_apply(s, at - 50, at, &applied, &dups);
      TS_CHECK_CASE(applied == 0 && dups == 50, "mid-build",
                    "at %zu: %zu applied, %zu duplicates", at, applied, dups);
    }
    if (was_building && !building && store_test_sqlite_filter_holds(s)) {
      ended++;
      recent_apply(s, 0, at, &applied, &dups);
      TS_CHECK_CASE(applied == 0 && dups == at, "a build ended",
                    "at %zu: %zu applied, %zu duplicates", at, applied, dups);
    }
    was_building = building;
  }
  builds = store_test_sqlite_filter_counts(s) - builds;
  /* 64 pairs, then about 4x as many each time: 256, 1,024 ... */
  TS_CHECK_CASE(builds >= 3 && ended >= 3 && slices >= 30, "builds",
                "%llu begun, %zu ended, %zu transactions mid-build",
                (unsigned long long)builds, ended, slices);
  TS_CHECK_CASE(most <= 16, "slice", "%zu keys in one transaction", most);
  recent_check_totals(s, at);
  store_free(s);
  remove_tmp();
}

/* A build with nothing to size it by (the first write after a start)
 * begins at the smallest filter and, past half its capacity, begins again
 * larger: the filter it ends with holds every pair. */
static void test_a_first_build_begins_again_larger_and_misses_no_pair(void) {
  fresh_path();
  struct store *s = open_store();
  size_t applied = 0, dups = 0;
  recent_apply(s, 0, 300, &applied, &dups);
  store_free(s);
  s = open_store(); /* its first write moves the 300 into applied_events */
  store_test_sqlite_set_filter_build(s, 64, 16);
  uint64_t builds = store_test_sqlite_filter_counts(s);
  size_t at = 300;
  for (; at < 400 && !store_test_sqlite_filter_holds(s); at++)
    recent_apply(s, at, at + 1, &applied, &dups);
  builds = store_test_sqlite_filter_counts(s) - builds;
  TS_CHECK_CASE(store_test_sqlite_filter_holds(s) && builds >= 2, "built",
                "%llu builds begun in %zu transactions",
                (unsigned long long)builds, at - 300);
  recent_apply(s, 0, at, &applied, &dups);
  TS_CHECK_CASE(applied == 0 && dups == at, "resent",
                "%zu applied, %zu duplicates", applied, dups);
  recent_check_totals(s, at);
  store_free(s);
  remove_tmp();
}

/* A table past the largest filter's capacity, up to MAX_LOAD times it, is
 * served by that filter overfull: it still misses no pair, and is built
 * again only once it has taken twice the pairs it was built with, not
 * over and over. Past MAX_LOAD times, no filter: every pair looked up. */
static void test_an_overfull_filter_serves_a_table_past_its_capacity(void) {
  fresh_path();
  struct store *s = open_store();
  store_test_sqlite_set_recent_rows(s, 40, 5);
  store_test_sqlite_set_filter_max_pairs(s, 64); /* none past 256 pairs */
  store_test_sqlite_set_filter_build(s, 64, 16);
  uint64_t builds = store_test_sqlite_filter_counts(s);
  size_t applied = 0, dups = 0, at = 0;
  for (; at < 220; at += 2) {
    recent_apply(s, at, at + 2, &applied, &dups);
    CU_ASSERT(applied == 2 && dups == 0);
  }
  builds = store_test_sqlite_filter_counts(s) - builds;
  int64_t pairs = count(s, STORE_TEST_APPLIED_EVENTS);
  TS_CHECK_CASE(pairs > 128 && store_test_sqlite_filter_holds(s), "overfull",
                "%lld pairs in applied_events, filter %d", (long long)pairs,
                store_test_sqlite_filter_holds(s));
  /* Built at 0, then past 64, 128 ... pairs taken; rebuilt whenever full,
   * it would begin one every dozen transactions or so (some 9 here). */
  TS_CHECK_CASE(builds <= 5, "builds", "%llu begun in 110 transactions",
                (unsigned long long)builds);
  recent_apply(s, 0, at, &applied, &dups);
  TS_CHECK_CASE(applied == 0 && dups == at, "resent, overfull",
                "%zu applied, %zu duplicates", applied, dups);
  for (; at < 700; at += 2)
    recent_apply(s, at, at + 2, &applied, &dups);
  TS_CHECK_CASE(!store_test_sqlite_filter_holds(s), "past 4 x 64",
                "%lld pairs in applied_events, still a filter",
                (long long)count(s, STORE_TEST_APPLIED_EVENTS));
  recent_apply(s, 0, at, &applied, &dups);
  TS_CHECK_CASE(applied == 0 && dups == at, "resent, no filter",
                "%zu applied, %zu duplicates", applied, dups);
  recent_check_totals(s, at);
  store_free(s);
  remove_tmp();
}

/* Two handles on one file (as two processes would be): each one's pairs
 * in memory are unknown to the other, which must still see them applied,
 * whether its filter of applied pairs waits out the other's commits
 * (the default) or is built again by a scan after each of them. */
static void test_another_writer_pairs_are_seen_applied(void) {
  static const struct {
    const char *name;
    bool rebuild_at_once;
  } cases[] = {{"filter waits for quiet", false},
               {"filter built again after every commit", true}};
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    fresh_path();
    struct store *a = open_store(), *b = open_store();
    store_test_sqlite_set_recent_rows(a, 1000, 100);
    store_test_sqlite_set_recent_rows(b, 1000, 100);
    if (cases[c].rebuild_at_once) {
      store_test_sqlite_set_filter_quiet(a, 0);
      store_test_sqlite_set_filter_quiet(b, 0);
    }
    size_t applied = 0, dups = 0;
    for (size_t round = 0; round < 3; round++) {
      size_t at = round * 20;
      recent_apply(a, at, at + 10, &applied, &dups);
      TS_CHECK_CASE(applied == 10 && dups == 0, cases[c].name,
                    "a, round %zu: %zu, %zu", round, applied, dups);
      recent_apply(b, at, at + 20, &applied, &dups);
      TS_CHECK_CASE(applied == 10 && dups == 10, cases[c].name,
                    "b, round %zu: %zu, %zu", round, applied, dups);
      recent_apply(a, 0, at + 20, &applied, &dups);
      TS_CHECK_CASE(applied == 0 && dups == at + 20, cases[c].name,
                    "a again, round %zu: %zu, %zu", round, applied, dups);
      /* Built again after b's commit, the filter answered that check. */
      TS_CHECK_CASE(store_test_sqlite_filter_holds(a) ==
                        cases[c].rebuild_at_once,
                    cases[c].name, "round %zu: a's filter", round);
    }
    recent_check_totals(a, 60);
    recent_check_totals(b, 60);
    /* Each writer read the other's rows again, not its own copy of them. */
    TS_CHECK_CASE(store_test_sqlite_stale_rows(a) == 0 &&
                      store_test_sqlite_stale_rows(b) == 0,
                  cases[c].name, "stale copies of rows");
    store_free(a);
    store_free(b);
    remove_tmp();
  }
}

/* The writer's copy of a row can only be wrong through a bug, and then
 * the write's condition on the version read finds it: the attempt is
 * retried from the table, and the totals stay exact. */
static void test_stale_copy_of_a_row_is_caught_and_read_again(void) {
  static const struct {
    const char *name;
    int64_t games, version; /* forged */
  } cases[] = {{"a row at another version", 40, 7},
               {"no row where there is one", 0, 0},
               {"an older version", 40, 1}};
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    fresh_path();
    struct store *s = open_store();
    struct text t = {0};
    rec(&t, "", "INSERT", "e1", "alice", "10", true);
    apply_ok(s, t.p);
    free(t.p);
    t = (struct text){0};
    rec(&t, "", "INSERT", "e2", "alice", "5", false);
    apply_ok(s, t.p); /* alice at version 2 */
    free(t.p);
    store_test_sqlite_forge_row(s, "alice", cases[c].games, cases[c].version);
    t = (struct text){0};
    rec(&t, "", "INSERT", "e3", "alice", "2.5", true);
    apply_ok(s, t.p);
    free(t.p);
    check_player(s, "alice", 3, 2, "17.5");
    TS_CHECK_CASE(store_test_sqlite_stale_rows(s) == 1, cases[c].name,
                  "stale rows %llu",
                  (unsigned long long)store_test_sqlite_stale_rows(s));
    store_free(s);
    remove_tmp();
  }
}

/* A group that fails after its first batch added pairs and put rows rolls
 * back: those pairs must leave memory too, or their records would be
 * refused as duplicates when resent, and lost; and the writer's copy of the
 * rows must forget them, or the resent records would count twice. */
static void test_pairs_of_a_rolled_back_group_apply_when_resent(void) {
  fresh_path();
  struct store *s = open_store();
  size_t applied = 0, dups = 0;
  recent_apply(s, 0, 7, &applied, &dups); /* every player has a row */
  sqlite3 *db = NULL;
  CU_ASSERT_FATAL(sqlite3_open(db_path, &db) == SQLITE_OK);
  sqlite3_busy_timeout(db, 5000);
  CU_ASSERT_FATAL(sqlite3_exec(db,
                               "CREATE TRIGGER boom BEFORE UPDATE ON players "
                               "WHEN new.player = 'boom' BEGIN "
                               "SELECT RAISE(ABORT, 'boom'); END;",
                               NULL, NULL, NULL) == SQLITE_OK);
  struct text t1 = {0}, t2 = {0};
  for (size_t i = 7; i < 17; i++)
    recent_rec(&t1, i == 7 ? "" : ",", i);
  rec(&t2, "", "INSERT", "b1", "boom", "1", true);
  apply_ok(s, t2.p); /* the row exists; its next update fails */
  free(t2.p);
  t2 = (struct text){0};
  rec(&t2, "", "INSERT", "b2", "boom", "1", true);
  struct batch *g[2] = {batch_of(t1.p), batch_of(t2.p)};
  CU_ASSERT(store_test_sqlite_apply_group(s, g, 2) != TS_OK);
  batch_free(g[0]);
  batch_free(g[1]);
  /* Resent before anything else commits: nothing but the rollback tells
   * the writer that the rows it put are gone. */
  recent_apply(s, 7, 17, &applied, &dups);
  CU_ASSERT(applied == 10 && dups == 0);
  recent_check_totals(s, 17);
  CU_ASSERT(store_test_sqlite_stale_rows(s) == 0);
  CU_ASSERT_FATAL(sqlite3_exec(db, "DROP TRIGGER boom", NULL, NULL, NULL) ==
                  SQLITE_OK);
  sqlite3_close(db);
  free(t1.p);
  free(t2.p);
  store_free(s);
  remove_tmp();
}

static void test_stats_and_applied_events_survive_close_and_reopen(void) {
  fresh_path();
  struct store *s = open_store();
  struct text t = {0};
  rec(&t, "", "INSERT", "e1", "alice", "1.25", true);
  rec(&t, ",", "INSERT", "e2", "alice", "2.5", false);
  apply_ok(s, t.p);
  store_free(s);

  s = open_store();
  check_player(s, "alice", 2, 1, "3.75");
  struct batch *b = batch_of(t.p);
  CU_ASSERT_FATAL(store_apply(s, b) == TS_OK);
  CU_ASSERT(batch_record_outcome(b, 0) == RECORD_DUPLICATE);
  CU_ASSERT(batch_record_outcome(b, 1) == RECORD_DUPLICATE);
  batch_free(b);
  check_player(s, "alice", 2, 1, "3.75");
  free(t.p);
  store_free(s);
  remove_tmp();
}

/* The WAL's header (big-endian): its page size and its checkpoint
 * sequence, which SQLite increments each time it starts the WAL over. */
static bool wal_header(uint32_t *page_size, uint32_t *seq, off_t *bytes) {
  char wal[sizeof db_path + 8];
  unsigned char h[16];
  snprintf(wal, sizeof wal, "%s-wal", db_path);
  FILE *f = fopen(wal, "rb");
  if (!f)
    return false;
  bool ok = fread(h, 1, sizeof h, f) == sizeof h;
  struct stat st;
  ok = ok && fstat(fileno(f), &st) == 0;
  fclose(f);
  if (!ok)
    return false;
  *page_size = (uint32_t)h[8] << 24 | (uint32_t)h[9] << 16 |
               (uint32_t)h[10] << 8 | h[11];
  *seq = (uint32_t)h[12] << 24 | (uint32_t)h[13] << 16 | (uint32_t)h[14] << 8 |
         h[15];
  *bytes = st.st_size;
  return true;
}

/* Under steady writes (one batch after another, no pause) the WAL is
 * checkpointed and started over near TS_SQLITE_WAL_CHECKPOINT_PAGES, not
 * left to grow to the stall bound: the checkpointer copies beside the
 * writer, and the writer's catch-up lets the next transaction restart
 * the WAL. */
static void test_wal_starts_over_under_steady_writes(void) {
  fresh_path();
  struct store *s = open_store();
  /* No cycles: the pairs in memory then grow by each batch, and would
   * drop only if the store took a checkpoint or a WAL restart for another
   * connection's write (tend_recent would move them all, slowly). */
  store_test_sqlite_set_recent_rows(s, SIZE_MAX, 1);
  size_t held = 0;
  uint32_t page_size = 0, seq0 = 0, seq = 0;
  off_t bytes = 0, most = 0;
  int batches = 0;
  bool first = true;
  for (; batches < 4000; batches++) {
    struct text t = {0};
    for (int i = 0; i < 100; i++) {
      char id[32], player[32];
      snprintf(id, sizeof id, "w%d-%d", batches, i);
      snprintf(player, sizeof player, "p%d-%d", i, batches);
      rec(&t, i ? "," : "", "INSERT", id, player, "1", i % 2);
    }
    apply_ok(s, t.p);
    free(t.p);
    size_t want = held >= TS_SQLITE_RECENT_MAX_ROWS ? 100 : held + 100;
    held = store_test_sqlite_recent_count(s);
    TS_CHECK_CASE(held == want, "pairs in memory", "batch %d: %zu, want %zu",
                  batches, held, want);
    CU_ASSERT_FATAL(wal_header(&page_size, &seq, &bytes));
    if (first)
      seq0 = seq;
    first = false;
    most = bytes > most ? bytes : most;
    if (seq >= seq0 + 2) /* started over twice */
      break;
  }
  off_t bound = 32 + (off_t)(TS_SQLITE_WAL_CHECKPOINT_PAGES * 3 / 2) *
                         (off_t)(page_size + 24);
  TS_CHECK_CASE(seq >= seq0 + 2, "restarts", "%u after %d batches", seq - seq0,
                batches);
  TS_CHECK_CASE(most <= bound, "size", "WAL reached %lld bytes, bound %lld",
                (long long)most, (long long)bound);
  check_player(s, "p7-3", 1, 1, "1");
  CU_ASSERT(count(s, STORE_TEST_APPLIED_EVENTS) == 100 * (batches + 1));
  store_free(s);
  remove_tmp();
}

/* A crash while the WAL is being checkpointed. A child process applies
 * batches without a pause and reports each before (k + 1) and after it is
 * acknowledged (-(k + 1)); once the WAL has started over (checkpoints are
 * running, by the checkpointer and the writer's catch-ups) it is killed
 * with SIGKILL at an arbitrary later batch, three times over. Then every
 * batch it started is sent again: one acknowledged before is all
 * duplicates, any other is applied whole or not at all, and every player
 * has exactly its games. */
enum { CRASH_PLAYERS = 5000, CRASH_PER_BATCH = 100, CRASH_MAX = 3000 };

static char *crash_batch_text(int k) {
  struct text t = {0};
  for (int i = 0; i < CRASH_PER_BATCH; i++) {
    char id[32], player[32];
    int n = k * CRASH_PER_BATCH + i;
    snprintf(id, sizeof id, "c%d", n);
    snprintf(player, sizeof player, "c%d", n % CRASH_PLAYERS);
    rec(&t, i ? "," : "", "INSERT", id, player, "1", false);
  }
  return t.p;
}

static void crash_child(int fd, int from) {
  struct store_options opt = {.kind = "sqlite", .sqlite_path = db_path};
  struct store *s = NULL;
  if (store_open(&opt, &s) != TS_OK)
    _exit(2);
  for (int k = from; k < CRASH_MAX; k++) {
    char *text = crash_batch_text(k);
    struct batch *b = batch_from(text);
    free(text);
    if (!b)
      _exit(2);
    int msg = k + 1;
    if (write(fd, &msg, sizeof msg) != sizeof msg)
      _exit(2);
    if (store_apply(s, b) != TS_OK)
      _exit(3);
    batch_free(b);
    msg = -(k + 1);
    if (write(fd, &msg, sizeof msg) != sizeof msg)
      _exit(2);
  }
  _exit(0);
}

static void test_crash_during_checkpoints_loses_and_doubles_nothing(void) {
  fresh_path();
  static bool acked[CRASH_MAX];
  memset(acked, 0, sizeof acked);
  int started = 0; /* batches 0 .. started-1 were begun */
  unsigned seed = (unsigned)time(NULL);
  for (int crash = 0; crash < 3; crash++) {
    int fds[2];
    CU_ASSERT_FATAL(pipe(fds) == 0);
    pid_t pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
      close(fds[0]);
      crash_child(fds[1], started);
    }
    close(fds[1]);
    uint32_t page_size, seq0 = 0, seq;
    off_t bytes;
    bool have0 = false, killed = false;
    int after = -1, msg;
    while (read(fds[0], &msg, sizeof msg) == sizeof msg) {
      if (msg > 0) {
        started = msg > started ? msg : started;
      } else {
        acked[-msg - 1] = true;
      }
      if (killed || msg > 0)
        continue;
      if (after < 0 && wal_header(&page_size, &seq, &bytes)) {
        if (!have0)
          seq0 = seq;
        have0 = true;
        if (seq > seq0)
          after = (int)(rand_r(&seed) % 40u); /* batches still to go */
      } else if (after >= 0 && after-- == 0) {
        kill(pid, SIGKILL);
        killed = true;
      }
    }
    close(fds[0]);
    int status = 0;
    CU_ASSERT_FATAL(waitpid(pid, &status, 0) == pid);
    TS_CHECK_CASE(killed && WIFSIGNALED(status), "crash", "%d: child %s", crash,
                  killed ? "was not killed" : "ended before the WAL restarted");
  }
  /* Every batch begun, sent again. */
  struct store *s = open_store();
  for (int k = 0; k < started; k++) {
    char *text = crash_batch_text(k);
    struct batch *b = batch_of(text);
    free(text);
    CU_ASSERT_FATAL(store_apply(s, b) == TS_OK);
    size_t applied = 0, dup = 0;
    for (size_t i = 0; i < CRASH_PER_BATCH; i++) {
      enum record_outcome o = batch_record_outcome(b, i);
      applied += o == RECORD_APPLIED;
      dup += o == RECORD_DUPLICATE;
    }
    char name[32];
    snprintf(name, sizeof name, "batch %d", k);
    TS_CHECK_CASE(acked[k]
                      ? dup == CRASH_PER_BATCH
                      : dup == CRASH_PER_BATCH || applied == CRASH_PER_BATCH,
                  name, "%s: %zu applied, %zu duplicates",
                  acked[k] ? "acknowledged" : "not acknowledged", applied, dup);
    batch_free(b);
  }
  int64_t total = (int64_t)started * CRASH_PER_BATCH;
  for (int p = 0; p < CRASH_PLAYERS && p < total; p++) {
    char player[32], games[32];
    int64_t want = total / CRASH_PLAYERS + (p < total % CRASH_PLAYERS);
    snprintf(player, sizeof player, "c%d", p);
    snprintf(games, sizeof games, "%lld", (long long)want);
    check_player(s, player, want, 0, games);
  }
  CU_ASSERT(count(s, STORE_TEST_APPLIED_EVENTS) == total);
  store_free(s);
  remove_tmp();
}

static void test_decimal_totals_are_exact(void) {
  fresh_path();
  struct store *s = open_store();
  struct text t = {0};
  char ev[32];
  for (int i = 0; i < 10; i++) {
    snprintf(ev, sizeof ev, "tenth-%d", i);
    rec(&t, i ? "," : "", "INSERT", ev, "tenths", "0.1", false);
  }
  apply_ok(s, t.p);
  check_player(s, "tenths", 10, 0, "1");

  t.len = 0;
  rec(&t, "", "INSERT", "big-1", "big", "999999999999999.999999999999", true);
  rec(&t, ",", "INSERT", "big-2", "big", "999999999999999.999999999999", true);
  apply_ok(s, t.p);
  check_player(s, "big", 2, 2, "1999999999999999.999999999998");

  /* A correction in a later batch subtracts the old score exactly. */
  t.len = 0;
  rec(&t, "", "INSERT", "c-1", "corr", "0.3", false);
  rec(&t, ",", "INSERT", "c-2", "corr", "0.3", false);
  rec(&t, ",", "INSERT", "c-3", "corr", "0.3", false);
  apply_ok(s, t.p);
  t.len = 0;
  rec_modify(&t, "", "c-4", "corr", "0.3", "0.1");
  apply_ok(s, t.p);
  check_player(s, "corr", 3, 0, "0.7");
  free(t.p);
  store_free(s);
  remove_tmp();
}

/* The one number a query on db gives; -1 when it gives none. */
static long long sql_count(sqlite3 *db, const char *sql) {
  sqlite3_stmt *q = NULL;
  long long n = -1;
  if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) == SQLITE_OK &&
      sqlite3_step(q) == SQLITE_ROW)
    n = sqlite3_column_int64(q, 0);
  sqlite3_finalize(q);
  return n;
}

/* The purge sweeps applied_events in key order, a bounded window per
 * write transaction: expired rows anywhere in the table go within one
 * sweep, not all in the first transaction, and fresh rows stay. */
static void test_purge_sweeps_expired_rows_out_a_window_at_a_time(void) {
  fresh_path();
  struct store *s = open_store();
  sqlite3 *raw = NULL;
  CU_ASSERT_FATAL(sqlite3_open(db_path, &raw) == SQLITE_OK);
  char sql[512];
  /* 1,000 expired and 1,000 fresh rows, interleaved in key order. */
  snprintf(sql, sizeof sql,
           "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n "
           "WHERE i < 1999) INSERT INTO applied_events SELECT "
           "printf('p%%05d', i), 'ev', CASE i %% 2 WHEN 0 THEN 1 ELSE %lld "
           "END FROM n",
           (long long)time(NULL));
  CU_ASSERT_FATAL(sqlite3_exec(raw, sql, NULL, NULL, NULL) == SQLITE_OK);
  const char *expired = "SELECT count(*) FROM applied_events WHERE "
                        "player LIKE 'p%' AND applied_at = 1";
  const char *fresh = "SELECT count(*) FROM applied_events WHERE "
                      "player LIKE 'p%' AND applied_at > 1";
  /* One record a transaction: a window of SQ_PURGE_SCAN_MIN (64) rows. */
  for (int i = 0; i < 40; i++) {
    char ev[32], body[512];
    struct text t = {0};
    snprintf(ev, sizeof ev, "sweep-%d", i);
    rec(&t, "", "INSERT", ev, "sweeper", "1", false);
    snprintf(body, sizeof body, "%s", t.p);
    free(t.p);
    apply_ok(s, body);
    long long left = sql_count(raw, expired);
    if (i == 4)
      TS_CHECK_CASE(left > 0 && left < 1000, "after 5 transactions",
                    "%lld expired rows left (want some gone, some not yet)",
                    left);
  }
  TS_CHECK_CASE(sql_count(raw, expired) == 0, "after 40 transactions",
                "%lld expired rows left", sql_count(raw, expired));
  CU_ASSERT(sql_count(raw, fresh) == 1000);
  sqlite3_close(raw);
  store_free(s);
  remove_tmp();
}

static void test_applied_events_past_retention_are_forgotten(void) {
  fresh_path();
  struct store *s = open_store();
  /* Plant one expired and one fresh applied event behind the store. */
  sqlite3 *raw = NULL;
  CU_ASSERT_FATAL(sqlite3_open(db_path, &raw) == SQLITE_OK);
  char sql[256];
  snprintf(sql, sizeof sql,
           "INSERT INTO applied_events VALUES('old','ev-old',1),"
           "('new','ev-new',%lld)",
           (long long)time(NULL));
  CU_ASSERT_FATAL(sqlite3_exec(raw, sql, NULL, NULL, NULL) == SQLITE_OK);
  sqlite3_close(raw);

  struct text t = {0};
  rec(&t, "", "INSERT", "ev-old", "old", "1", false);
  rec(&t, ",", "INSERT", "ev-new", "new", "1", false);
  struct batch *b = batch_of(t.p);
  CU_ASSERT_FATAL(store_apply(s, b) == TS_OK);
  CU_ASSERT(batch_record_outcome(b, 0) == RECORD_APPLIED);
  CU_ASSERT(batch_record_outcome(b, 1) == RECORD_DUPLICATE);
  batch_free(b);
  check_player(s, "old", 1, 0, "1");
  CU_ASSERT(count(s, STORE_TEST_APPLIED_EVENTS) == 2);
  /* An expired row the purge has not reached yet (here: the purge
   * stopped) stays: a cycle then moves the new application over it, and
   * must keep the newer time, or a resend would apply a third time. */
  store_test_sqlite_set_purge_rows(s, 0);
  CU_ASSERT_FATAL(sqlite3_open(db_path, &raw) == SQLITE_OK);
  CU_ASSERT_FATAL(sqlite3_exec(raw,
                               "INSERT INTO applied_events "
                               "VALUES('old','ev-old2',1)",
                               NULL, NULL, NULL) == SQLITE_OK);
  sqlite3_close(raw);
  struct text t2 = {0}, t3 = {0};
  rec(&t2, "", "INSERT", "ev-old2", "old", "1", false);
  apply_ok(s, t2.p);
  store_test_sqlite_set_recent_rows(s, 1, 1);
  rec(&t3, "", "INSERT", "ev-x", "x", "1", false);
  apply_ok(s, t3.p);
  CU_ASSERT(store_test_sqlite_recent_count(s) == 1); /* ev-old2 moved */
  b = batch_of(t2.p);
  CU_ASSERT_FATAL(store_apply(s, b) == TS_OK);
  CU_ASSERT(batch_record_outcome(b, 0) == RECORD_DUPLICATE);
  batch_free(b);
  check_player(s, "old", 2, 0, "2");
  CU_ASSERT(count(s, STORE_TEST_APPLIED_EVENTS) == 4);
  free(t3.p);
  free(t2.p);
  free(t.p);
  store_free(s);
  remove_tmp();
}

/* ---- list ---- */

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void test_leaderboard_ranks_by_rounded_value_then_name(void) {
  fresh_path();
  struct store *s = open_store();
  struct text t = {0};
  /* carol: 2 games 1 win avg 5; bob: 3 games 2 wins avg 3.33 (66.67%);
   * alice: 1 game 1 win avg 5 (100%); dave: 3 games 2 wins avg 10/3;
   * zoe: a game removed again (0 games): never ranked. */
  rec(&t, "", "INSERT", "c1", "carol", "4", true);
  rec(&t, ",", "INSERT", "c2", "carol", "6", false);
  rec(&t, ",", "INSERT", "b1", "bob", "1", true);
  rec(&t, ",", "INSERT", "b2", "bob", "3", true);
  rec(&t, ",", "INSERT", "b3", "bob", "6", false);
  rec(&t, ",", "INSERT", "a1", "alice", "5", true);
  rec(&t, ",", "INSERT", "d1", "dave", "3.33", true);
  rec(&t, ",", "INSERT", "d2", "dave", "3.34", true);
  rec(&t, ",", "INSERT", "d3", "dave", "3.33", false);
  rec(&t, ",", "INSERT", "z1", "zoe", "9", true);
  rec(&t, ",", "REMOVE", "z2", "zoe", "9", true);
  apply_ok(s, t.p);
  static const struct {
    const char *name;
    enum store_rank by;
    size_t limit;
    const char *want[5];
  } cases[] = {
      {"wins, ties by name",
       STORE_RANK_WINS,
       10,
       {"bob", "dave", "alice", "carol", NULL}},
      {"games", STORE_RANK_GAMES, 10, {"bob", "dave", "carol", "alice", NULL}},
      {"win percent",
       STORE_RANK_WIN_PERCENT,
       10,
       {"alice", "bob", "dave", "carol", NULL}},
      /* bob 3.33 and dave 3.33 (10/3) tie when rounded: name decides */
      {"avg score",
       STORE_RANK_AVG_SCORE,
       10,
       {"alice", "carol", "bob", "dave", NULL}},
      {"limit", STORE_RANK_WINS, 2, {"bob", "dave", NULL}},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct player_row *rows = NULL;
    size_t n = 0;
    CU_ASSERT_FATAL(
        store_leaderboard(s, cases[i].by, cases[i].limit, &rows, &n) == TS_OK);
    size_t want_n = 0;
    while (cases[i].want[want_n])
      want_n++;
    TS_CHECK_CASE(n == want_n, cases[i].name, "%zu rows", n);
    for (size_t k = 0; k < n && k < want_n; k++)
      TS_CHECK_CASE(strcmp(rows[k].player, cases[i].want[k]) == 0,
                    cases[i].name, "rank %zu is %s, want %s", k + 1,
                    rows[k].player, cases[i].want[k]);
    player_rows_free(rows, n);
  }
  free(t.p);
  store_free(s);
  remove_tmp();
}

/* The names of the top `limit` by wins, joined by ' '. */
static void top_wins(struct store *s, size_t limit, char *out, size_t cap) {
  struct player_row *rows = NULL;
  size_t n = 0, len = 0;
  out[0] = '\0';
  CU_ASSERT_FATAL(store_leaderboard(s, STORE_RANK_WINS, limit, &rows, &n) ==
                  TS_OK);
  for (size_t i = 0; i < n && len < cap; i++)
    len += (size_t)snprintf(out + len, cap - len, "%s%s", i ? " " : "",
                            rows[i].player);
  player_rows_free(rows, n);
}

/* A leaderboard is kept between requests (no indexes, schema 7), so every
 * commit must reach it before the next answer: this process's own, and
 * another connection's on the same file (a second server, a backfill). */
static void test_leaderboard_follows_every_commit_of_any_connection(void) {
  fresh_path();
  struct store *a = open_store(), *b = open_store();
  struct text t = {0};
  char got[256];
  static const struct {
    const char *name;
    bool on_b;
    const char *event_id, *event_name, *player;
    bool win;
    const char *want; /* top 3 by wins on a, after the write */
    int builds;       /* scans of the whole table it takes (own: none) */
  } steps[] = {
      {"first write", false, "e1", "INSERT", "ann", true, "ann", 1},
      {"another connection's write", true, "e2", "INSERT", "bo", true, "ann bo",
       1},
      {"another connection moves a player up", true, "e3", "INSERT", "bo", true,
       "bo ann", 1},
      {"our write moves a player up", false, "e4", "INSERT", "cy", true,
       "bo ann cy", 0},
      {"a removed game moves a player down", true, "e3", "REMOVE", "bo", true,
       "ann bo cy", 1},
      {"ours again", false, "e5", "INSERT", "cy", true, "cy ann bo", 0},
      {"ours: a tie broken by name", false, "e6", "INSERT", "bo", true,
       "bo cy ann", 0},
  };
  for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
    t.len = 0;
    char id[16];
    snprintf(id, sizeof id, "%s%s", steps[i].event_id,
             strcmp(steps[i].event_name, "REMOVE") == 0 ? "r" : "");
    rec(&t, "", steps[i].event_name, id, steps[i].player, "1", steps[i].win);
    apply_ok(steps[i].on_b ? b : a, t.p);
    uint64_t before = store_test_sqlite_board_builds(a);
    top_wins(a, 3, got, sizeof got);
    int builds = (int)(store_test_sqlite_board_builds(a) - before);
    TS_CHECK_CASE(builds == steps[i].builds, steps[i].name, "%d scans, want %d",
                  builds, steps[i].builds);
    TS_CHECK_CASE(strcmp(got, steps[i].want) == 0, steps[i].name,
                  "top by wins: \"%s\", want \"%s\"", got, steps[i].want);
    top_wins(a, 1, got, sizeof got); /* a smaller limit, same rows */
    TS_CHECK_CASE(strncmp(got, steps[i].want, strlen(got)) == 0 && got[0],
                  steps[i].name, "top 1: \"%s\"", got);
  }
  free(t.p);
  store_free(a);
  store_free(b);
  remove_tmp();
}

/* A leaderboard request finds the writer busy with something other than
 * a batch's transaction (which would have read data_version after BEGIN):
 * it must wait to read it, not trust the last reading, or another
 * connection's commit made before the request is missed. */
struct writer_hold {
  struct store *s;
  sem_t held;
};

static void *hold_writer_briefly(void *p) {
  struct writer_hold *h = p;
  store_test_sqlite_hold_writer(h->s, true);
  sem_post(&h->held);
  usleep(200 * 1000);
  store_test_sqlite_hold_writer(h->s, false);
  return NULL;
}

static void test_leaderboard_waits_for_a_writer_busy_outside_a_batch(void) {
  fresh_path();
  struct store *a = open_store(), *b = open_store();
  struct text t = {0};
  char got[256];
  rec(&t, "", "INSERT", "e1", "ann", "1", true);
  apply_ok(a, t.p);
  top_wins(a, 3, got, sizeof got); /* the board is built */
  CU_ASSERT_STRING_EQUAL(got, "ann");
  t.len = 0;
  rec(&t, "", "INSERT", "e2", "bo", "1", true);
  rec(&t, ",", "INSERT", "e3", "bo", "1", true);
  apply_ok(b, t.p); /* another connection: bo moves to the top */
  struct writer_hold h = {.s = a};
  CU_ASSERT_FATAL(sem_init(&h.held, 0, 0) == 0);
  pthread_t th;
  CU_ASSERT_FATAL(pthread_create(&th, NULL, hold_writer_briefly, &h) == 0);
  while (sem_wait(&h.held) != 0)
    ;
  uint64_t t0 = clock_now_ms();
  top_wins(a, 3, got, sizeof got);
  uint64_t waited = clock_now_ms() - t0;
  pthread_join(th, NULL);
  sem_destroy(&h.held);
  CU_ASSERT(waited >= 100);
  if (strcmp(got, "bo ann") != 0)
    fprintf(stderr, "top by wins: \"%s\", want \"bo ann\"\n", got);
  CU_ASSERT_STRING_EQUAL(got, "bo ann");
  free(t.p);
  store_free(a);
  store_free(b);
  remove_tmp();
}

/* More than TS_LEADERBOARD_TOP_K players: the board holds the top K and
 * knows exactly only the positions it holds. When more players leave it
 * than a request's limit leaves room for, it must be built again, not
 * answer short (or with players it never held in the wrong place). */
static void test_leaderboard_built_again_when_players_drop_out_of_it(void) {
  enum { PLAYERS = TS_LEADERBOARD_TOP_K + 100, GONE = TS_LIST_MAX_LIMIT + 1 };
  fresh_path();
  struct store *s = open_store();
  struct text t = {0};
  char id[32], name[32];
  for (int i = 0; i < PLAYERS; i++) {
    snprintf(id, sizeof id, "in%05d", i);
    snprintf(name, sizeof name, "p%05d", i);
    rec(&t, i ? "," : "", "INSERT", id, name, "1", true);
  }
  apply_ok(s, t.p);
  struct player_row *rows = NULL;
  size_t n = 0;
  CU_ASSERT_FATAL(store_leaderboard(s, STORE_RANK_WINS, TS_LIST_MAX_LIMIT,
                                    &rows, &n) == TS_OK);
  CU_ASSERT(n == TS_LIST_MAX_LIMIT && strcmp(rows[0].player, "p00000") == 0);
  player_rows_free(rows, n);
  /* the first GONE players lose their only game: no longer ranked */
  t.len = 0;
  for (int i = 0; i < GONE; i++) {
    snprintf(id, sizeof id, "out%05d", i);
    snprintf(name, sizeof name, "p%05d", i);
    rec(&t, i ? "," : "", "REMOVE", id, name, "1", true);
  }
  apply_ok(s, t.p);
  CU_ASSERT_FATAL(store_leaderboard(s, STORE_RANK_WINS, TS_LIST_MAX_LIMIT,
                                    &rows, &n) == TS_OK);
  snprintf(name, sizeof name, "p%05d", GONE);
  TS_CHECK_CASE(n == TS_LIST_MAX_LIMIT, "rows", "%zu", n);
  TS_CHECK_CASE(n > 0 && strcmp(rows[0].player, name) == 0, "first", "%s",
                n ? rows[0].player : "-");
  snprintf(name, sizeof name, "p%05d", GONE + TS_LIST_MAX_LIMIT - 1);
  TS_CHECK_CASE(n == TS_LIST_MAX_LIMIT && strcmp(rows[n - 1].player, name) == 0,
                "last", "%s", n ? rows[n - 1].player : "-");
  player_rows_free(rows, n);
  free(t.p);
  store_free(s);
  remove_tmp();
}

static void test_list_pages_cover_every_player_once_in_byte_order(void) {
  fresh_path();
  struct store *s = open_store();
  const char *names[] = {"alice", "Alice",    "bob",      "b", "Zed",  "_x",
                         "0",     "\xc3\xa4", "\xc3\xa9", "~", "bobby"};
  enum { N = sizeof names / sizeof names[0] };
  struct text t = {0};
  char ev[32];
  for (size_t i = 0; i < N; i++) {
    snprintf(ev, sizeof ev, "e%zu", i);
    rec(&t, i ? "," : "", "INSERT", ev, names[i], "1", false);
  }
  apply_ok(s, t.p);
  const char *want[N];
  memcpy(want, names, sizeof want);
  qsort(want, N, sizeof want[0], cmp_str);

  const size_t limits[] = {1, 2, 7, N, 100};
  for (size_t li = 0; li < sizeof limits / sizeof limits[0]; li++) {
    char case_name[32];
    snprintf(case_name, sizeof case_name, "limit %zu", limits[li]);
    size_t seen = 0, pages = 0;
    char *after = NULL;
    for (;;) {
      struct player_row *rows;
      size_t n;
      bool more;
      CU_ASSERT_FATAL(
          store_list_players(s, after, limits[li], &rows, &n, &more) == TS_OK);
      pages++;
      TS_CHECK_CASE(n <= limits[li], case_name, "page of %zu", n);
      for (size_t i = 0; i < n && seen < N; i++, seen++)
        TS_CHECK_CASE(strcmp(rows[i].player, want[seen]) == 0, case_name,
                      "row %zu is %s want %s", seen, rows[i].player,
                      want[seen]);
      free(after);
      after = n ? strdup(rows[n - 1].player) : NULL;
      player_rows_free(rows, n);
      if (!more)
        break;
      TS_CHECK_CASE(n == limits[li], case_name, "short page with more");
      CU_ASSERT_FATAL(after != NULL && pages <= N);
    }
    free(after);
    TS_CHECK_CASE(seen == N, case_name, "saw %zu of %d", seen, (int)N);
    TS_CHECK_CASE(pages == (N + limits[li] - 1) / limits[li], case_name,
                  "%zu pages", pages);
  }

  /* After the last name: an empty page with nothing more. */
  struct player_row *rows;
  size_t n;
  bool more;
  CU_ASSERT(store_list_players(s, want[N - 1], 5, &rows, &n, &more) == TS_OK);
  CU_ASSERT(n == 0 && !more);
  player_rows_free(rows, n);
  free(t.p);
  store_free(s);
  remove_tmp();
}

/* ---- concurrency ---- */

enum { CONC_THREADS = 4, CONC_BATCHES = 25, CONC_PLAYERS = 5 };

struct conc_arg {
  struct store *s;
  int thread;
  bool queued; /* store_apply_async, not store_apply */
  size_t applied, duplicates;
  unsigned callbacks; /* calls of the async callback, over all batches */
  enum ts_status st;
};

/* An async apply's outcome, for a caller that waits for it. */
struct async_wait {
  sem_t sem;
  atomic_uint calls;
  enum ts_status st;
};

static void async_done(void *cls, enum ts_status st) {
  struct async_wait *w = cls;
  w->st = st;
  atomic_fetch_add(&w->calls, 1);
  sem_post(&w->sem);
}

/* store_apply through store_apply_async: queues b and waits for the
 * callback; *calls is what it was called by the time it returned. */
static enum ts_status apply_queued(struct store *s, struct batch *b,
                                   uint64_t deadline_ms, unsigned *calls) {
  struct async_wait w = {.st = TS_ERR_IO};
  atomic_init(&w.calls, 0);
  CU_ASSERT_FATAL(sem_init(&w.sem, 0, 0) == 0);
  enum ts_status st = store_apply_async(s, b, deadline_ms, async_done, &w);
  if (st == TS_OK) {
    while (sem_wait(&w.sem) != 0)
      ;
    st = w.st;
  }
  sem_destroy(&w.sem);
  *calls = atomic_load(&w.calls);
  return st;
}

/* Threads t and t+2 send the same event ids, so half the records race
 * against an identical record in another thread. */
static void *conc_worker(void *p) {
  struct conc_arg *a = p;
  struct text t = {0};
  char ev[48], player[16];
  a->st = TS_OK;
  for (int k = 0; k < CONC_BATCHES; k++) {
    t.len = 0;
    for (int j = 0; j < CONC_PLAYERS; j++) {
      snprintf(ev, sizeof ev, "g%d-b%d-p%d", a->thread % 2, k, j);
      snprintf(player, sizeof player, "p%d", j);
      rec(&t, j ? "," : "", "INSERT", ev, player, "0.1", j % 2 == 1);
    }
    struct batch *b = batch_of(t.p);
    unsigned calls = 0;
    enum ts_status st = a->queued ? apply_queued(a->s, b, UINT64_MAX, &calls)
                                  : store_apply(a->s, b);
    a->callbacks += calls;
    if (st != TS_OK)
      a->st = st;
    for (size_t r = 0; st == TS_OK && r < batch_record_count(b); r++) {
      enum record_outcome o = batch_record_outcome(b, r);
      a->applied += o == RECORD_APPLIED;
      a->duplicates += o == RECORD_DUPLICATE;
    }
    batch_free(b);
  }
  free(t.p);
  return NULL;
}

/* queued: threads 0 and 1 queue their batches (store_apply_async) and
 * race threads 2 and 3, which wait in store_apply, on the same events. */
static void run_concurrent(bool queued) {
  fresh_path();
  struct store *s = open_store();
  pthread_t th[CONC_THREADS];
  struct conc_arg args[CONC_THREADS];
  for (int i = 0; i < CONC_THREADS; i++) {
    args[i] = (struct conc_arg){.s = s, .thread = i, .queued = queued && i < 2};
    CU_ASSERT_FATAL(pthread_create(&th[i], NULL, conc_worker, &args[i]) == 0);
  }
  size_t applied = 0, duplicates = 0;
  for (int i = 0; i < CONC_THREADS; i++) {
    pthread_join(th[i], NULL);
    CU_ASSERT(args[i].st == TS_OK);
    CU_ASSERT(args[i].callbacks == (args[i].queued ? CONC_BATCHES : 0u));
    applied += args[i].applied;
    duplicates += args[i].duplicates;
  }
  /* Two distinct event sets of CONC_BATCHES x CONC_PLAYERS, each sent
   * twice: every record applied exactly once. */
  CU_ASSERT(applied == 2u * CONC_BATCHES * CONC_PLAYERS);
  CU_ASSERT(duplicates == 2u * CONC_BATCHES * CONC_PLAYERS);
  char player[16], total[16];
  snprintf(total, sizeof total, "%d", 2 * CONC_BATCHES / 10);
  if (2 * CONC_BATCHES % 10)
    snprintf(total, sizeof total, "%d.%d", 2 * CONC_BATCHES / 10,
             2 * CONC_BATCHES % 10);
  for (int j = 0; j < CONC_PLAYERS; j++) {
    snprintf(player, sizeof player, "p%d", j);
    check_player(s, player, 2 * CONC_BATCHES, j % 2 ? 2 * CONC_BATCHES : 0,
                 total);
  }
  store_free(s);
  remove_tmp();
}

static void test_concurrent_overlapping_batches_give_exact_totals(void) {
  run_concurrent(false);
}

static void
test_queued_and_waiting_batches_together_count_each_game_once(void) {
  run_concurrent(true);
}

/* Queued batches a caller no longer waits for (an HTTP thread answers
 * when called back): closing the store commits each and calls it back. */
static void test_closing_commits_every_queued_batch_and_calls_each_back(void) {
  enum { N = 40 };
  fresh_path();
  struct store *s = open_store();
  struct batch *b[N];
  struct async_wait w = {.st = TS_ERR_IO};
  atomic_init(&w.calls, 0);
  CU_ASSERT_FATAL(sem_init(&w.sem, 0, 0) == 0);
  char ev[16];
  for (int i = 0; i < N; i++) {
    struct text t = {0};
    snprintf(ev, sizeof ev, "e%d", i);
    rec(&t, "", "INSERT", ev, "alice", "1", i % 2 == 0);
    b[i] = batch_of(t.p);
    free(t.p);
    CU_ASSERT_FATAL(store_apply_async(s, b[i], UINT64_MAX, async_done, &w) ==
                    TS_OK);
  }
  store_free(s); /* at once: most are still queued */
  CU_ASSERT_EQUAL(atomic_load(&w.calls), N);
  CU_ASSERT_EQUAL(w.st, TS_OK);
  for (int i = 0; i < N; i++) {
    CU_ASSERT(batch_record_outcome(b[i], 0) == RECORD_APPLIED);
    batch_free(b[i]);
  }
  sem_destroy(&w.sem);
  s = open_store();
  check_player(s, "alice", N, N / 2, "40");
  store_free(s);
  remove_tmp();
}

/* ---- transactions begun for a batch on its way ---- */

/* Polls store_test_sqlite_expecting for up to 10 s. */
static bool wait_expecting(struct store *s, bool want) {
  for (int i = 0; i < 10000; i++) {
    if (store_test_sqlite_expecting(s) == want)
      return true;
    usleep(1000);
  }
  return false;
}

/* store_expect_write until the committer has begun for it, up to 10 s: a
 * committer still ending the last transaction lets the hint go. */
static bool expect_begun(struct store *s) {
  for (int i = 0; i < 10000; i++) {
    store_expect_write(s);
    if (store_test_sqlite_expecting(s))
      return true;
    usleep(1000);
  }
  return false;
}

static void
test_a_batch_expected_is_applied_once_in_the_transaction_begun(void) {
  fresh_path();
  struct store *s = open_store();
  /* Held for 20 s unless the batch comes: the answers below come in
   * seconds only if the begun transaction takes the batch. */
  store_test_sqlite_set_expect_wait_ms(s, 20000);
  char ev[16];
  for (int i = 0; i < 6; i++) {
    /* The first is told; after it, a group of HTTP batches begins the
     * next transaction at once. */
    CU_ASSERT_FATAL(i == 0 ? expect_begun(s) : wait_expecting(s, true));
    struct text t = {0};
    snprintf(ev, sizeof ev, "e%d", i / 2); /* every batch sent twice */
    rec(&t, "", "INSERT", ev, "alice", "1.5", true);
    struct batch *b = batch_of(t.p);
    free(t.p);
    unsigned calls = 0;
    uint64_t t0 = clock_now_ms();
    CU_ASSERT_EQUAL(apply_queued(s, b, UINT64_MAX, &calls), TS_OK);
    CU_ASSERT(clock_now_ms() - t0 < 10000);
    CU_ASSERT_EQUAL(calls, 1);
    CU_ASSERT(batch_record_outcome(b, 0) ==
              (i % 2 ? RECORD_DUPLICATE : RECORD_APPLIED));
    batch_free(b);
  }
  check_player(s, "alice", 3, 3, "4.5");
  uint64_t t0 = clock_now_ms();
  store_free(s); /* ends the wait at once */
  CU_ASSERT(clock_now_ms() - t0 < 10000);
  s = open_store();
  check_player(s, "alice", 3, 3, "4.5");
  store_free(s);
  remove_tmp();
}

/* HTTP batches one after another: each transaction begins before its
 * batch comes and moves a slice sized to the batch it expects. Its pairs
 * must still move at the pace they come in (held near two cycles' worth,
 * never the bound), and every pair stays applied. */
static void test_early_transactions_move_pairs_as_fast_as_they_come(void) {
  fresh_path();
  struct store *s = open_store();
  store_test_sqlite_set_recent_rows(s, 40, 15); /* bound: 160 pairs */
  store_test_sqlite_set_expect_wait_ms(s, 20000);
  static const size_t sizes[] = {5, 13, 7, 11, 3, 9, 12, 4};
  uint64_t early0 = 0, alone0 = 0, early1 = 0, alone1 = 0;
  store_early_transaction_counts(&early0, &alone0);
  size_t applied = 0, dups = 0, most = 0, at = 0, total = 0;
  for (size_t i = 0; at < 2000; i++) {
    /* As an HTTP sender's next batch would: once the committer has begun
     * for it. (Told each time: reading the count below claims the writer,
     * which ends a wait.) */
    CU_ASSERT_FATAL(expect_begun(s));
    size_t to = at + sizes[i % (sizeof sizes / sizeof *sizes)];
    recent_apply_via(s, true, at, to, SIZE_MAX, &applied, &dups);
    total += applied;
    at = to;
    size_t held = store_test_sqlite_recent_count(s);
    most = held > most ? held : most;
  }
  store_early_transaction_counts(&early1, &alone1);
  CU_ASSERT(early1 - early0 >= 200); /* every batch came to one */
  CU_ASSERT_EQUAL(total, at);
  TS_CHECK_CASE(most <= 2 * (40 + 13), "held", "at most %zu", most);
  recent_apply_via(s, true, 0, at, SIZE_MAX, &applied, &dups);
  TS_CHECK_CASE(applied == 0 && dups == at, "resent",
                "%zu applied, %zu duplicates", applied, dups);
  recent_check_totals(s, at);
  store_free(s);
  remove_tmp();
}

static void test_a_batch_that_never_comes_holds_the_writer_from_no_one(void) {
  fresh_path();
  struct store *s = open_store();
  store_test_sqlite_set_expect_wait_ms(s, 20000);
  /* Each kind of writer other than a batch ends the wait at once: a
   * session, a lease, a dead letter's deletion, a test's look inside. */
  for (int kind = 0; kind < 4; kind++) {
    CU_ASSERT_FATAL(expect_begun(s));
    uint64_t t0 = clock_now_ms();
    if (kind == 0) {
      CU_ASSERT(store_session_open(s, "bf-expect") == TS_OK);
      CU_ASSERT(store_session_close(s, "bf-expect") == TS_OK);
    } else if (kind == 1) {
      struct shard_lease l = {.owner = "me", .expires_ms = 1, .version = 1};
      bool written = false;
      CU_ASSERT(store_lease_put(s, "stream", "shard", &l, 0, &written) ==
                TS_OK);
      CU_ASSERT(written);
    } else if (kind == 2) {
      const char *ids[] = {"none"};
      CU_ASSERT(store_delete_dead_letters(s, ids, 1) == TS_OK);
    } else {
      CU_ASSERT_EQUAL(count(s, STORE_TEST_DEAD_LETTERS), 0);
    }
    CU_ASSERT(clock_now_ms() - t0 < 10000);
    CU_ASSERT(wait_expecting(s, false));
  }
  /* The default bound: the housekeeping commits alone, the writer is
   * free, a batch after it applies. */
  store_test_sqlite_set_expect_wait_ms(s, TS_SQLITE_EXPECT_WAIT_MS);
  store_expect_write(s);
  usleep(4 * 1000 * TS_SQLITE_EXPECT_WAIT_MS);
  CU_ASSERT(!store_test_sqlite_expecting(s));
  struct text t = {0};
  rec(&t, "", "INSERT", "x1", "bob", "2", false);
  apply_ok(s, t.p);
  free(t.p);
  check_player(s, "bob", 1, 0, "2");
  store_free(s);
  remove_tmp();
}

/* A second store on the same file stands for another process (its own
 * connections and its own open "-wait" file): it waits for the write
 * lock, announces it, and the first store's early transaction ends. */
static void test_an_early_transaction_gives_way_to_another_process(void) {
  fresh_path();
  struct store *s = open_store();
  struct store *other = open_store();
  store_test_sqlite_set_expect_wait_ms(s, 20000);
  for (int i = 0; i < 3; i++) {
    CU_ASSERT_FATAL(expect_begun(s));
    char ev[16];
    snprintf(ev, sizeof ev, "o%d", i);
    struct text t = {0};
    rec(&t, "", "INSERT", ev, "carol", "1", true);
    uint64_t t0 = clock_now_ms();
    apply_ok(other, t.p);
    free(t.p);
    CU_ASSERT(clock_now_ms() - t0 < 10000);
    CU_ASSERT(wait_expecting(s, false));
  }
  check_player(s, "carol", 3, 3, "3");
  store_free(other);
  store_free(s);
  remove_tmp();
}

/* ---- another writer on the same file ---- */

struct holder {
  sqlite3 *db;
  unsigned release_after_ms;
};

static void *release_later(void *p) {
  struct holder *h = p;
  usleep(h->release_after_ms * 1000u);
  CU_ASSERT(sqlite3_exec(h->db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK);
  return NULL;
}

static sqlite3 *hold_write_lock(void) {
  sqlite3 *raw = NULL;
  CU_ASSERT_FATAL(sqlite3_open(db_path, &raw) == SQLITE_OK);
  CU_ASSERT_FATAL(sqlite3_exec(raw, "BEGIN IMMEDIATE", NULL, NULL, NULL) ==
                  SQLITE_OK);
  return raw;
}

static void test_apply_waits_for_another_writer_then_succeeds(void) {
  fresh_path();
  struct store *s = open_store();
  struct holder h = {.db = hold_write_lock(), .release_after_ms = 400};
  pthread_t th;
  CU_ASSERT_FATAL(pthread_create(&th, NULL, release_later, &h) == 0);
  struct text t = {0};
  rec(&t, "", "INSERT", "e1", "alice", "3", true);
  uint64_t t0 = clock_now_ms();
  apply_ok(s, t.p);
  uint64_t waited = clock_now_ms() - t0;
  pthread_join(th, NULL);
  sqlite3_close(h.db);
  CU_ASSERT(waited >= 300);
  CU_ASSERT(waited < TS_INGEST_DEADLINE_MS);
  check_player(s, "alice", 1, 1, "3");
  free(t.p);
  store_free(s);
  remove_tmp();
}

/* Another process creating the file (a second replica started at the same
 * moment, switching it to WAL and writing the schema on a slow disk) can
 * hold it longer than one busy wait; opening retries until the deadline,
 * as any store work does. (Seen in CI: one of two Kinesis consumers
 * started together exited with "database is locked".) */
static void test_open_waits_out_another_process_creating_the_file(void) {
  fresh_path();
  char dir[160];
  snprintf(dir, sizeof dir, "%s/data", tmp_dir);
  CU_ASSERT_FATAL(mkdir(dir, 0700) == 0);
  snprintf(dir, sizeof dir, "%s/data/sub", tmp_dir);
  CU_ASSERT_FATAL(mkdir(dir, 0700) == 0);
  sqlite3 *raw = NULL;
  CU_ASSERT_FATAL(sqlite3_open(db_path, &raw) == SQLITE_OK);
  CU_ASSERT_FATAL(sqlite3_exec(raw, "BEGIN EXCLUSIVE", NULL, NULL, NULL) ==
                  SQLITE_OK);
  struct holder h = {.db = raw,
                     .release_after_ms = 3 * TS_SQLITE_BUSY_TIMEOUT_MS};
  pthread_t th;
  CU_ASSERT_FATAL(pthread_create(&th, NULL, release_later, &h) == 0);
  uint64_t t0 = clock_now_ms();
  struct store *s = open_store();
  uint64_t waited = clock_now_ms() - t0;
  pthread_join(th, NULL);
  sqlite3_close(raw);
  TS_CHECK_CASE(waited >= 2 * TS_SQLITE_BUSY_TIMEOUT_MS, "open",
                "opened after %llu ms, before the lock was released",
                (unsigned long long)waited);
  apply_ok(s, "{\"eventID\":\"e1\",\"eventName\":\"INSERT\",\"dynamodb\":"
              "{\"NewImage\":{\"game\":{\"S\":\"g\"},\"player\":{\"S\":"
              "\"alice\"},\"score\":{\"N\":\"3\"}}}}");
  check_player(s, "alice", 1, 0, "3");
  store_free(s);
  remove_tmp();
}

static void test_apply_gives_unavailable_when_writer_never_releases(void) {
  fresh_path();
  struct store *s = open_store();
  store_test_sqlite_set_apply_deadline_ms(s, 300);
  sqlite3 *raw = hold_write_lock();
  struct text t = {0};
  rec(&t, "", "INSERT", "e1", "alice", "3", true);
  struct batch *b = batch_of(t.p);
  uint64_t t0 = clock_now_ms();
  CU_ASSERT(store_apply(s, b) == TS_ERR_UNAVAILABLE);
  uint64_t took = clock_now_ms() - t0;
  CU_ASSERT(took >= 250 && took < 1000);
  struct player_row row;
  CU_ASSERT(store_get_player(s, "alice", &row) == TS_ERR_NOT_FOUND);
  /* Reads go on while another process writes (WAL). */
  CU_ASSERT(store_ping(s) == TS_OK);
  CU_ASSERT(sqlite3_exec(raw, "COMMIT", NULL, NULL, NULL) == SQLITE_OK);
  sqlite3_close(raw);
  /* The resend after the 503 applies. */
  CU_ASSERT(store_apply(s, b) == TS_OK);
  CU_ASSERT(batch_record_outcome(b, 0) == RECORD_APPLIED);
  batch_free(b);
  check_player(s, "alice", 1, 1, "3");
  free(t.p);
  store_free(s);
  remove_tmp();
}

static void test_queued_batch_is_called_back_unavailable_at_its_deadline(void) {
  fresh_path();
  struct store *s = open_store();
  sqlite3 *raw = hold_write_lock();
  struct text t = {0};
  rec(&t, "", "INSERT", "e1", "alice", "3", true);
  struct batch *b = batch_of(t.p);
  unsigned calls = 0;
  uint64_t t0 = clock_now_ms();
  CU_ASSERT(apply_queued(s, b, t0 + 300, &calls) == TS_ERR_UNAVAILABLE);
  uint64_t took = clock_now_ms() - t0;
  TS_CHECK_CASE(took >= 250 && took < 1000, "deadline", "took %llu ms",
                (unsigned long long)took);
  CU_ASSERT_EQUAL(calls, 1u);
  struct player_row row;
  CU_ASSERT(store_get_player(s, "alice", &row) == TS_ERR_NOT_FOUND);
  CU_ASSERT(sqlite3_exec(raw, "COMMIT", NULL, NULL, NULL) == SQLITE_OK);
  sqlite3_close(raw);
  CU_ASSERT(apply_queued(s, b, UINT64_MAX, &calls) == TS_OK); /* resent */
  CU_ASSERT(batch_record_outcome(b, 0) == RECORD_APPLIED);
  batch_free(b);
  check_player(s, "alice", 1, 1, "3");
  free(t.p);
  store_free(s);
  remove_tmp();
}

/* ---- the transaction runner ---- */

struct tx_probe {
  unsigned calls, rollbacks, succeed_on; /* 0: never */
  enum ts_status final;
};

static enum ts_status probe_fn(void *cls) {
  struct tx_probe *p = cls;
  p->calls++;
  if (p->succeed_on && p->calls >= p->succeed_on)
    return p->final;
  return TS_ERR_RETRY;
}

static void probe_rollback(void *cls) { ((struct tx_probe *)cls)->rollbacks++; }

static void test_run_tx_retries_soft_failures_and_rolls_each_back(void) {
  struct tx_probe p = {.succeed_on = 3, .final = TS_OK};
  CU_ASSERT(store_run_tx("t", probe_fn, &p, probe_rollback,
                         clock_now_ms() + 2000) == TS_OK);
  CU_ASSERT(p.calls == 3);
  CU_ASSERT(p.rollbacks == 2);
}

static void test_run_tx_passes_hard_errors_through_without_retry(void) {
  const enum ts_status hard[] = {TS_ERR_IO, TS_ERR_NOMEM, TS_ERR_NOT_FOUND};
  for (size_t i = 0; i < sizeof hard / sizeof hard[0]; i++) {
    struct tx_probe p = {.succeed_on = 1, .final = hard[i]};
    CU_ASSERT(store_run_tx("t", probe_fn, &p, NULL, clock_now_ms() + 2000) ==
              hard[i]);
    CU_ASSERT(p.calls == 1);
  }
}

static void test_run_tx_gives_unavailable_after_max_attempts(void) {
  struct tx_probe p = {0};
  uint64_t t0 = clock_now_ms();
  CU_ASSERT(store_run_tx("t", probe_fn, &p, probe_rollback,
                         clock_now_ms() + 60000) == TS_ERR_UNAVAILABLE);
  CU_ASSERT(p.calls == TS_TX_MAX_ATTEMPTS);
  CU_ASSERT(p.rollbacks == TS_TX_MAX_ATTEMPTS);
  /* Sleeps are bounded by the capped backoff. */
  CU_ASSERT(clock_now_ms() - t0 <=
            (uint64_t)TS_TX_MAX_ATTEMPTS * TS_TX_BACKOFF_CAP_MS + 100u);
}

static void test_run_tx_stops_at_the_deadline(void) {
  struct tx_probe p = {0};
  uint64_t t0 = clock_now_ms();
  CU_ASSERT(store_run_tx("t", probe_fn, &p, NULL, t0) == TS_ERR_UNAVAILABLE);
  CU_ASSERT(p.calls == 1);
  CU_ASSERT(clock_now_ms() - t0 < 50);
}

void suite_store_sqlite(void) {
  TS_SUITE(
      "store_sqlite", TS_TEST(test_open_rejects_unknown_kinds),
      TS_TEST(test_leaderboard_ranks_by_rounded_value_then_name),
      TS_TEST(test_leaderboard_follows_every_commit_of_any_connection),
      TS_TEST(test_leaderboard_waits_for_a_writer_busy_outside_a_batch),
      TS_TEST(test_leaderboard_built_again_when_players_drop_out_of_it),
      TS_TEST(test_open_creates_parent_directories_and_pings),
      TS_TEST(test_open_rejects_unknown_sync_setting),
      TS_TEST(test_open_waits_out_another_process_creating_the_file),
      TS_TEST(test_batch_applies_and_reads_back),
      TS_TEST(test_group_sees_earlier_batches_and_counts_each_game_once),
      TS_TEST(test_stale_copy_of_a_row_is_caught_and_read_again),
      TS_TEST(test_resent_batch_is_all_duplicates_and_changes_nothing),
      TS_TEST(test_queued_and_waiting_batches_together_count_each_game_once),
      TS_TEST(test_closing_commits_every_queued_batch_and_calls_each_back),
      TS_TEST(test_a_batch_expected_is_applied_once_in_the_transaction_begun),
      TS_TEST(test_a_batch_that_never_comes_holds_the_writer_from_no_one),
      TS_TEST(test_an_early_transaction_gives_way_to_another_process),
      TS_TEST(test_queued_batch_is_called_back_unavailable_at_its_deadline),
      TS_TEST(test_remove_below_zero_is_dead_lettered_while_rest_applies),
      TS_TEST(test_remove_below_zero_during_a_backfill_is_held_in_the_session),
      TS_TEST(test_resent_poison_records_are_dead_lettered_once),
      TS_TEST(test_kinesis_redelivery_with_new_outer_ids_is_a_duplicate),
      TS_TEST(test_kinesis_remove_before_its_insert_nets_or_is_rejected),
      TS_TEST(test_version_1_database_is_upgraded_and_keeps_every_poison),
      TS_TEST(test_version_7_pairs_stay_applied_across_the_upgrade),
      TS_TEST(test_dead_letters_page_once_each_filter_by_reason_and_delete),
      TS_TEST(test_replay_verdicts_follow_the_outcome_of_the_current_names),
      TS_TEST(test_stats_and_applied_events_survive_close_and_reopen),
      TS_TEST(test_resent_records_are_duplicates_in_every_cycle_state),
      TS_TEST(test_cycles_of_uneven_batches_stay_near_their_mark),
      TS_TEST(test_early_transactions_move_pairs_as_fast_as_they_come),
      TS_TEST(test_pairs_of_a_cycle_cut_by_a_restart_stay_applied),
      TS_TEST(test_pairs_of_a_large_transaction_span_rows_and_stay_applied),
      TS_TEST(test_pairs_moved_at_once_past_the_bound_stay_applied),
      TS_TEST(test_another_writer_pairs_are_seen_applied),
      TS_TEST(test_a_table_too_large_for_the_filter_is_counted_ever_less_often),
      TS_TEST(test_a_filter_built_in_slices_misses_no_pair),
      TS_TEST(test_an_overfull_filter_serves_a_table_past_its_capacity),
      TS_TEST(test_a_first_build_begins_again_larger_and_misses_no_pair),
      TS_TEST(test_pairs_of_a_rolled_back_group_apply_when_resent),
      TS_TEST(test_wal_starts_over_under_steady_writes),
      TS_TEST(test_crash_during_checkpoints_loses_and_doubles_nothing),
      TS_TEST(test_decimal_totals_are_exact),
      TS_TEST(test_applied_events_past_retention_are_forgotten),
      TS_TEST(test_purge_sweeps_expired_rows_out_a_window_at_a_time),
      TS_TEST(test_list_pages_cover_every_player_once_in_byte_order),
      TS_TEST(test_concurrent_overlapping_batches_give_exact_totals),
      TS_TEST(test_apply_waits_for_another_writer_then_succeeds),
      TS_TEST(test_apply_gives_unavailable_when_writer_never_releases),
      TS_TEST(test_run_tx_retries_soft_failures_and_rolls_each_back),
      TS_TEST(test_run_tx_passes_hard_errors_through_without_retry),
      TS_TEST(test_run_tx_gives_unavailable_after_max_attempts),
      TS_TEST(test_run_tx_stops_at_the_deadline));
}
