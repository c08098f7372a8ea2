/* `tourney-stats backfill` and `verify` against a source table on dynalite,
 * into both stores: totals against the test's own recomputation, a stream
 * that keeps posting (with lag) while a backfill runs, and a drift that
 * verify reports and backfill repairs.
 *
 * Registered only when TS_TEST_STORE=dynamodb (the source table needs
 * dynalite). The DynamoDB store uses tables of its own here: a backfill
 * settles every player of its store, so it must not share one with the
 * other suites. */
#include <CUnit/CUnit.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/bounds.h"
#include "harness.h"
#include "records.h"
#include "suites.h"
#include "tests/unit/unit.h"

#define N_PLAYERS 24
#define N_SEED_GAMES 3000
#define MAX_GAMES (N_SEED_GAMES + 4000)

struct game {
  char key[64];
  int player;
  int quarters; /* score = quarters / 4: sums stay exact as doubles */
  enum e2e_win win;
  bool exists;
};

static struct {
  char source[96], table[96], dead[96], log[96];
  char env_table[128], env_dead[128], env_log[128];
  struct game games[MAX_GAMES];
  size_t n;
  pthread_mutex_t mu;
  unsigned long long seq;
} w = {.mu = PTHREAD_MUTEX_INITIALIZER};

static char *player_name(int p, char *buf, size_t cap) {
  char tag[32];
  snprintf(tag, sizeof tag, "bf-p%02d", p);
  return e2e_name(buf, cap, tag);
}

static void score_text(int quarters, char buf[32]) {
  int whole = quarters / 4, frac = (quarters % 4) * 25;
  if (frac)
    snprintf(buf, 32, "%d.%02d", whole, frac);
  else
    snprintf(buf, 32, "%d", whole);
}

static json_t *game_image(const struct game *g) {
  char name[128], score[32];
  score_text(g->quarters, score);
  struct e2e_image im = {.player = player_name(g->player, name, sizeof name),
                         .score = score,
                         .winner = g->win};
  return e2e_image_json(&im, g->key);
}

/* ---- the source table ---- */

static json_t *ddb(const char *op, json_t *req) {
  long status = 0;
  json_t *ans = e2e_ddb_call(NULL, op, req, &status);
  json_decref(req);
  if (status != 200) {
    fprintf(stderr, "  %s: HTTP %ld\n", op, status);
    json_decref(ans);
    return NULL;
  }
  return ans;
}

static bool create_source(void) {
  json_t *ans = ddb(
      "CreateTable",
      json_pack("{s:s, s:[{s:s, s:s}], s:[{s:s, s:s}], s:s}", "TableName",
                w.source, "KeySchema", "AttributeName", "game_id", "KeyType",
                "HASH", "AttributeDefinitions", "AttributeName", "game_id",
                "AttributeType", "S", "BillingMode", "PAY_PER_REQUEST"));
  json_decref(ans);
  for (int i = 0; i < 100; i++) {
    ans = ddb("DescribeTable", json_pack("{s:s}", "TableName", w.source));
    const char *st = json_string_value(
        json_object_get(json_object_get(ans, "Table"), "TableStatus"));
    bool active = st && strcmp(st, "ACTIVE") == 0;
    json_decref(ans);
    if (active)
      return true;
    e2e_sleep_ms(100);
  }
  return false;
}

/* A new game, not yet in the table. Caller holds w.mu. */
static struct game *new_game(unsigned r) {
  CU_ASSERT_FATAL(w.n < MAX_GAMES);
  struct game *g = &w.games[w.n];
  snprintf(g->key, sizeof g->key, "%sgame-%05zu", e2e_run_prefix(), w.n);
  w.n++;
  g->player = (int)(r % N_PLAYERS);
  /* a few decimal scores, a few zero, a few large */
  g->quarters = (int)((r / 7) % 400) + ((r % 5 == 0) ? 1 : 0);
  static const enum e2e_win spellings[] = {WIN_BOOL_TRUE, WIN_BOOL_FALSE,
                                           WIN_ABSENT,    WIN_S_FALSE,
                                           WIN_N_ONE,     WIN_NULL};
  g->win = spellings[(r / 3) % 6];
  return g;
}

static bool fill_source(size_t count) {
  for (size_t done = 0; done < count;) {
    json_t *puts = json_array();
    pthread_mutex_lock(&w.mu);
    for (size_t k = 0; k < 25 && done < count; k++, done++) {
      struct game *g = new_game((unsigned)(done * 2654435761u));
      g->exists = true;
      json_array_append_new(
          puts, json_pack("{s:{s:o}}", "PutRequest", "Item", game_image(g)));
    }
    pthread_mutex_unlock(&w.mu);
    json_t *ans = ddb("BatchWriteItem",
                      json_pack("{s:{s:o}}", "RequestItems", w.source, puts));
    bool ok =
        ans && json_object_size(json_object_get(ans, "UnprocessedItems")) == 0;
    json_decref(ans);
    if (!ok)
      return false;
  }
  return true;
}

/* ---- the commands ---- */

/* Runs `tourney-stats <cmd> --source-table <source> [more]` on store
 * ("sqlite" with db, or "dynamodb" on this suite's tables). Returns the
 * exit code; *out (when not NULL) gets its stdout. */
static int run_cmd(const char *cmd, const char *store, const char *db,
                   const char *const *more, char **out) {
  char *argv[16];
  size_t n = 0;
  argv[n++] = (char *)e2e_bin();
  argv[n++] = (char *)cmd;
  argv[n++] = "--source-table";
  argv[n++] = w.source;
  for (size_t i = 0; more && more[i] && n < 14; i++)
    argv[n++] = (char *)more[i];
  argv[n] = NULL;
  char store_env[64], db_env[1200];
  snprintf(store_env, sizeof store_env, "TS_STORE=%s", store);
  snprintf(db_env, sizeof db_env, "TS_SQLITE_PATH=%s", db ? db : "");
  const char *env[] = {store_env,  db_env,    w.env_table,
                       w.env_dead, w.env_log, NULL};
  int code = -1;
  char *text = e2e_run_capture_env(argv, env, &code);
  if (out)
    *out = text;
  else
    free(text);
  return code;
}

/* Every player's stats through HTTP against the games that exist. */
static void check_totals(const struct e2e_server *s, const char *case_name) {
  long games[N_PLAYERS] = {0}, wins[N_PLAYERS] = {0};
  double total[N_PLAYERS] = {0};
  pthread_mutex_lock(&w.mu);
  for (size_t i = 0; i < w.n; i++) {
    const struct game *g = &w.games[i];
    if (!g->exists)
      continue;
    games[g->player]++;
    wins[g->player] += e2e_win_counts(g->win);
    total[g->player] += g->quarters / 4.0;
  }
  pthread_mutex_unlock(&w.mu);
  for (int p = 0; p < N_PLAYERS; p++) {
    char name[128];
    long status = 0;
    json_t *st = e2e_fetch_stats(s, player_name(p, name, sizeof name), &status);
    long got_g =
        st ? (long)json_integer_value(json_object_get(st, "games")) : 0;
    long got_w = st ? (long)json_integer_value(json_object_get(st, "wins")) : 0;
    double got_t =
        st ? json_number_value(json_object_get(st, "total_score")) : 0;
    TS_CHECK_CASE(
        got_g == games[p] && got_w == wins[p] && got_t == total[p], case_name,
        "%s: stored %ld/%ld/%.2f (HTTP %ld), source %ld/%ld/%.2f", name, got_g,
        got_w, got_t, status, games[p], wins[p], total[p]);
    json_decref(st);
  }
}

/* ---- the stream, posting while a backfill runs ---- */

struct poster {
  const struct e2e_server *s;
  /* Posting starts once the backfill's session is open in the store
   * (await: the SQLite file, or NULL with await_ddb for DynamoDB): a record
   * before it that takes an empty store's player below zero is rejected,
   * rightly. */
  const char *await;
  bool await_ddb;
  atomic_bool stop;
  pthread_t thread;
  long posted, failed;
  long retried;            /* answers other than 200, sent again */
  char first_retry[512];   /* the first of them */
  char first_failure[512]; /* what the first failed record was answered */
  /* records written to the table, not yet posted; noop: a MODIFY that
   * changes no player's stats, which is answered skipped */
  struct lagged {
    json_t *rec;
    bool noop;
  } lag[8];
  size_t n_lag;
};

static json_t *record_for(const char *name, const struct game *old_g,
                          const struct game *new_g, const char *key) {
  char ev[64], seq[48];
  w.seq++;
  snprintf(ev, sizeof ev, "%sbf-ev-%llu", e2e_run_prefix(), w.seq);
  snprintf(seq, sizeof seq, "8%020llu", w.seq);
  json_t *ddbj =
      json_pack("{s:{s:{s:s}}, s:s, s:I, s:s}", "Keys", "game_id", "S", key,
                "SequenceNumber", seq, "ApproximateCreationDateTime",
                (json_int_t)time(NULL), "StreamViewType", "NEW_AND_OLD_IMAGES");
  if (old_g)
    json_object_set_new(ddbj, "OldImage", game_image(old_g));
  if (new_g)
    json_object_set_new(ddbj, "NewImage", game_image(new_g));
  return json_pack("{s:s, s:s, s:o}", "eventID", ev, "eventName", name,
                   "dynamodb", ddbj);
}

static long answer_count(const json_t *answer, const char *name) {
  return (long)json_integer_value(json_object_get(answer, name));
}

static void post_oldest(struct poster *p) {
  if (p->n_lag == 0)
    return;
  json_t *rec = p->lag[0].rec;
  bool noop = p->lag[0].noop;
  memmove(p->lag, p->lag + 1, (p->n_lag - 1) * sizeof *p->lag);
  p->n_lag--;
  /* a 503 is retried, as a Pipe would */
  for (int attempt = 1; attempt <= 50; attempt++) {
    struct e2e_reply r = {0};
    enum ts_status st = e2e_post_json(p->s, "/v1/stream-records", rec, &r);
    long status = r.status;
    /* 1 when the record is counted as it should be */
    long counted = noop ? answer_count(r.json, "skipped")
                        : answer_count(r.json, "applied") +
                              answer_count(r.json, "duplicates");
    bool done = st == TS_OK && status == 200;
    char what[512];
    snprintf(what, sizeof what, "%s, attempt %d: HTTP %ld (curl %d): %.400s",
             noop ? "a MODIFY that changes nothing" : "a change", attempt,
             status, (int)r.curl, r.body ? r.body : "");
    e2e_reply_clear(&r);
    if (!done && !p->first_retry[0]) /* shown if the suite fails */
      snprintf(p->first_retry, sizeof p->first_retry, "%s", what);
    if ((done ? counted != 1 : attempt == 50) && !p->first_failure[0])
      snprintf(p->first_failure, sizeof p->first_failure, "%s", what);
    if (done) {
      p->posted++;
      if (counted != 1)
        p->failed++;
      json_decref(rec);
      return;
    }
    p->retried++;
    e2e_sleep_ms(100);
  }
  p->failed++;
  json_decref(rec);
}

/* One change of the table, then its record queued behind up to a few
 * others (the stream's lag): insert, modify (also moving a game to
 * another player) or delete. */
static void change_one(struct poster *p, unsigned r) {
  json_t *rec = NULL, *req = NULL;
  const char *op = NULL;
  bool noop = false;
  pthread_mutex_lock(&w.mu);
  size_t pick = w.n ? (size_t)(r / 11) % w.n : 0;
  struct game *g = &w.games[pick];
  if (r % 10 < 5 || !g->exists) {
    struct game *n = new_game(r);
    n->exists = true;
    rec = record_for("INSERT", NULL, n, n->key);
    op = "PutItem";
    req = json_pack("{s:s, s:o}", "TableName", w.source, "Item", game_image(n));
  } else if (r % 10 < 8) {
    struct game old = *g;
    g->quarters = (int)((r / 13) % 300);
    if (r % 3 == 0)
      g->player = (int)((r / 17) % N_PLAYERS);
    g->win = g->win == WIN_BOOL_TRUE ? WIN_BOOL_FALSE : WIN_BOOL_TRUE;
    /* e.g. {"N":"1"} to {"BOOL":true} with the same score: nothing to
     * count, answered skipped (about one MODIFY here in 3,500; CI met
     * two) */
    noop = old.player == g->player && old.quarters == g->quarters &&
           e2e_win_counts(old.win) == e2e_win_counts(g->win);
    rec = record_for("MODIFY", &old, g, g->key);
    op = "PutItem";
    req = json_pack("{s:s, s:o}", "TableName", w.source, "Item", game_image(g));
  } else {
    g->exists = false;
    rec = record_for("REMOVE", g, NULL, g->key);
    op = "DeleteItem";
    req = json_pack("{s:s, s:{s:{s:s}}}", "TableName", w.source, "Key",
                    "game_id", "S", g->key);
  }
  /* the table first, then the stream: under the lock, so that the
   * table's order is the records' order */
  json_t *ans = ddb(op, req);
  CU_ASSERT(ans != NULL);
  json_decref(ans);
  pthread_mutex_unlock(&w.mu);
  p->lag[p->n_lag++] = (struct lagged){rec, noop};
  if (p->n_lag > (r % 4) || p->n_lag == 8)
    post_oldest(p);
}

/* Whether a backfill session is open in the store: SQLite (db) or the
 * DynamoDB applied-log table (db NULL). */
static bool session_is_open(const char *db) {
  if (db) {
    char *out = e2e_sqlite_query(db, "SELECT count(*) FROM backfill_session;");
    bool open = out && strtol(out, NULL, 10) > 0;
    free(out);
    return open;
  }
  json_t *ans =
      ddb("GetItem",
          json_pack("{s:s, s:{s:{s:s}}, s:b}", "TableName", w.log, "Key", "id",
                    "S", "#backfill-session", "ConsistentRead", 1));
  bool open = json_object_get(ans, "Item") != NULL;
  json_decref(ans);
  return open;
}

static void *poster_main(void *arg) {
  struct poster *p = arg;
  unsigned r = 12345u;
  if (p->await || p->await_ddb) {
    for (int i = 0; i < 600 && !session_is_open(p->await); i++)
      e2e_sleep_ms(10);
    /* A DynamoDB replica reads the session at least once a second (the
     * backfill waits longer than that before it scans); SQLite reads it
     * in every write transaction. */
    if (p->await_ddb)
      e2e_sleep_ms(TS_BACKFILL_SESSION_REFRESH_MS + 200);
    /* First, the removal of a game the empty store never counted: it is
     * posted first and held (the settlement is --settle-s away). */
    pthread_mutex_lock(&w.mu);
    unsigned first = 9u; /* r % 10 == 9: a REMOVE (change_one) */
    for (size_t k = 0; k < 10 * w.n && !w.games[(first / 11) % w.n].exists; k++)
      first += 10u;
    pthread_mutex_unlock(&w.mu);
    change_one(p, first);
  }
  while (!atomic_load(&p->stop)) {
    r = r * 1103515245u + 12345u;
    change_one(p, r >> 8);
    e2e_sleep_ms(15);
  }
  while (p->n_lag)
    post_oldest(p);
  return NULL;
}

/* ---- tests ---- */

static bool ready;

/* The DynamoDB store's tables, created by the service's own command. */
static void create_tables(void) {
  const char *env[] = {"TS_STORE=dynamodb", w.env_table, w.env_dead, w.env_log,
                       NULL};
  char *argv[] = {(char *)e2e_bin(), "create-table", NULL};
  int code = -1;
  free(e2e_run_capture_env(argv, env, &code));
  CU_ASSERT_FATAL(code == 0);
}

static void setup_once(void) {
  if (ready)
    return;
  e2e_name(w.source, sizeof w.source, "bf-source");
  e2e_name(w.table, sizeof w.table, "bf-stats");
  e2e_name(w.dead, sizeof w.dead, "bf-dead");
  e2e_name(w.log, sizeof w.log, "bf-log");
  snprintf(w.env_table, sizeof w.env_table, "TS_TABLE=%s", w.table);
  snprintf(w.env_dead, sizeof w.env_dead, "TS_DEAD_LETTER_TABLE=%s", w.dead);
  snprintf(w.env_log, sizeof w.env_log, "TS_APPLIED_LOG_TABLE=%s", w.log);
  CU_ASSERT_FATAL(create_source());
  CU_ASSERT_FATAL(fill_source(N_SEED_GAMES));
  create_tables();
  ready = true;
}

/* The SQLite file of this suite's embedded store (the harness sets one
 * only when the whole run is on SQLite). */
static char *db_dir;
static char db_file[1024];

static const char *db_for(const char *store) {
  if (strcmp(store, "sqlite") != 0)
    return NULL;
  if (!db_dir) {
    CU_ASSERT_FATAL(e2e_dir_new(&db_dir) == TS_OK);
    snprintf(db_file, sizeof db_file, "%s/stats.db", db_dir);
  }
  return db_file;
}

/* Empties a store whose server is stopped: the SQLite file removed, the
 * DynamoDB tables deleted and created again. */
static void empty_store(const char *store) {
  const char *db = db_for(store);
  if (db) {
    static const char *const suffix[] = {"", "-wal", "-shm"};
    for (size_t i = 0; i < 3; i++) {
      char path[1100];
      snprintf(path, sizeof path, "%s%s", db, suffix[i]);
      CU_ASSERT(unlink(path) == 0 || errno == ENOENT);
    }
    return;
  }
  const char *tables[] = {w.table, w.dead, w.log};
  for (size_t i = 0; i < 3; i++)
    json_decref(ddb("DeleteTable", json_pack("{s:s}", "TableName", tables[i])));
  create_tables();
}

static struct e2e_server *start(const char *store) {
  char store_env[64], db_env[1100];
  snprintf(store_env, sizeof store_env, "TS_STORE=%s", store);
  snprintf(db_env, sizeof db_env, "TS_SQLITE_PATH=%s",
           db_for(store) ? db_for(store) : "");
  const char *env[] = {store_env,
                       w.env_table,
                       w.env_dead,
                       w.env_log,
                       db_for(store) ? db_env : NULL,
                       NULL};
  struct e2e_server_opts opt = {.extra_env = env};
  struct e2e_server *s = NULL;
  CU_ASSERT_FATAL(e2e_server_start(&opt, &s) == TS_OK);
  return s;
}

static void stop(struct e2e_server *s) {
  int code = -1;
  e2e_server_stop(s, &code);
  CU_ASSERT(code == 0);
}

/* Adds games to a stored player behind the service's back. */
static void drift(const char *db, const char *player, int games) {
  char n[16];
  snprintf(n, sizeof n, "%d", games);
  if (db) {
    char sql[512];
    snprintf(sql, sizeof sql,
             "UPDATE players SET games = games + %d WHERE player = '%s';",
             games, player);
    free(e2e_sqlite_query(db, sql));
    return;
  }
  json_t *ans =
      ddb("UpdateItem",
          json_pack("{s:s, s:{s:{s:s}}, s:s, s:{s:{s:s}}}", "TableName",
                    w.table, "Key", "player", "S", player, "UpdateExpression",
                    "ADD games :n", "ExpressionAttributeValues", ":n", "N", n));
  CU_ASSERT(ans != NULL);
  json_decref(ans);
}

static const char *const quick[] = {"--settle-s", "0", "--segments", "3", NULL};

static void test_backfill_into_either_store_gives_the_source_totals(void) {
  setup_once();
  static const char *const stores[] = {"sqlite", "dynamodb"};
  for (size_t i = 0; i < 2; i++) {
    struct e2e_server *s = start(stores[i]);
    const char *db = db_for(stores[i]);
    int code = run_cmd("backfill", stores[i], db, quick, NULL);
    TS_CHECK_CASE(code == 0, stores[i], "backfill exited %d", code);
    check_totals(s, stores[i]);
    code = run_cmd("verify", stores[i], db, quick, NULL);
    TS_CHECK_CASE(code == 0, stores[i], "verify after backfill exited %d",
                  code);
    /* a second run changes nothing and is just as exact */
    code = run_cmd("backfill", stores[i], db, quick, NULL);
    TS_CHECK_CASE(code == 0, stores[i], "second backfill exited %d", code);
    check_totals(s, stores[i]);
    stop(s);
  }
}

/* The stream keeps changing the table while a backfill runs, into a store
 * that holds the source's totals with a drift, and into an empty store (a
 * new deployment next to a live table). In the empty one, a MODIFY or
 * REMOVE of a game the store never counted takes a player below zero: it
 * must still count, through the backfill's session, not be rejected. */
static void test_games_streamed_during_a_backfill_are_counted_once(void) {
  setup_once();
  static const struct {
    const char *store;
    bool empty;
  } cases[] = {{"sqlite", false},
               {"dynamodb", false},
               {"sqlite", true},
               {"dynamodb", true}};
  static const char *const slow[] = {"--settle-s", "20",  "--segments", "2",
                                     "--max-rcu",  "400", NULL};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const char *store = cases[i].store;
    char label[64];
    snprintf(label, sizeof label, "%s%s", store,
             cases[i].empty ? ", empty" : ", drifted");
    if (cases[i].empty)
      empty_store(store);
    struct e2e_server *s = start(store);
    const char *db = db_for(store);
    /* drifted stats, so that the backfill has to change them while the
     * stream moves them too */
    char name[128];
    for (int k = 0; !cases[i].empty && k < N_PLAYERS; k += 3)
      drift(db, player_name(k, name, sizeof name), 2 + k);
    /* Posting waits for the session in both stores. A drifted store is
     * behind the shared source table too: the games an earlier case
     * streamed reached that case's store only, and removing one of them
     * takes a player below zero. Before the session that is rejected,
     * rightly, as in an empty store (CI once saw it on DynamoDB, when the
     * poster started with the tool). */
    struct poster p = {.s = s, .await = db, .await_ddb = !db};
    atomic_init(&p.stop, false);
    CU_ASSERT_FATAL(pthread_create(&p.thread, NULL, poster_main, &p) == 0);
    int code = run_cmd("backfill", store, db, slow, NULL);
    atomic_store(&p.stop, true);
    pthread_join(p.thread, NULL);
    TS_CHECK_CASE(code == 0, label, "backfill exited %d", code);
    /* Into an empty store, posting starts with the session, and on SQLite
     * a backfill of this table takes about a second: fewer records. */
    TS_CHECK_CASE(p.posted > (cases[i].empty ? 5 : 20) && p.failed == 0, label,
                  "%ld records posted, %ld not answered 200 and counted once"
                  " (first: %s)",
                  p.posted, p.failed, p.first_failure);
    if (p.retried)
      fprintf(stderr, "  %s: %ld answers other than 200 sent again, first %s\n",
              label, p.retried, p.first_retry);
    if (p.failed)
      e2e_server_dump_log(s);
    /* The held records are counted for the operator (at least the
     * poster's first removal, in the empty store). */
    double held = e2e_server_metric(s, "ts_ingest_held_for_backfill_total ");
    TS_CHECK_CASE(cases[i].empty ? held >= 1 : held >= 0, label,
                  "ts_ingest_held_for_backfill_total %g", held);
    check_totals(s, label);
    code = run_cmd("verify", store, db, quick, NULL);
    TS_CHECK_CASE(code == 0, label, "verify exited %d", code);
    stop(s);
  }
}

static void test_verify_reports_a_drift_and_backfill_repairs_it(void) {
  setup_once();
  static const char *const stores[] = {"sqlite", "dynamodb"};
  char victim[128];
  player_name(5, victim, sizeof victim);
  for (size_t i = 0; i < 2; i++) {
    struct e2e_server *s = start(stores[i]);
    const char *db = db_for(stores[i]);
    CU_ASSERT(run_cmd("backfill", stores[i], db, quick, NULL) == 0);
    drift(db, victim, 5); /* an operator's manual edit */
    char *out = NULL;
    const char *const json_flag[] = {"--json", NULL};
    int code = run_cmd("verify", stores[i], db, json_flag, &out);
    TS_CHECK_CASE(code == 1, stores[i], "verify of a drift exited %d", code);
    json_t *doc = out ? json_loads(out, 0, NULL) : NULL;
    json_t *first = json_array_get(json_object_get(doc, "players"), 0);
    TS_CHECK_CASE(
        json_integer_value(json_object_get(doc, "differ")) == 1 &&
            strcmp(json_string_value(json_object_get(first, "player"))
                       ? json_string_value(json_object_get(first, "player"))
                       : "",
                   victim) == 0 &&
            json_integer_value(json_object_get(
                json_object_get(first, "difference"), "games")) == 5,
        stores[i], "verify --json said: %.500s", out ? out : "(nothing)");
    json_decref(doc);
    free(out);
    out = NULL;
    code = run_cmd("verify", stores[i], db, NULL, &out);
    TS_CHECK_CASE(code == 1 && out && strstr(out, victim) &&
                      strstr(out, "1 of "),
                  stores[i], "verify's table: %.500s", out ? out : "");
    free(out);
    CU_ASSERT(run_cmd("backfill", stores[i], db, quick, NULL) == 0);
    code = run_cmd("verify", stores[i], db, quick, NULL);
    TS_CHECK_CASE(code == 0, stores[i], "verify after the repair exited %d",
                  code);
    check_totals(s, stores[i]);
    stop(s);
  }
}

static void test_a_missing_source_table_fails_with_exit_3(void) {
  setup_once();
  char *argv[] = {(char *)e2e_bin(), "verify", "--source-table",
                  "no-such-table-here", NULL};
  const char *env[] = {"TS_STORE=dynamodb", w.env_table, w.env_dead, w.env_log,
                       NULL};
  int code = -1;
  free(e2e_run_capture_env(argv, env, &code));
  CU_ASSERT(code == 3);
}

static int clean(void) {
  e2e_dir_remove(db_dir);
  free(db_dir);
  db_dir = NULL;
  return 0;
}

void e2e_suite_backfill(void) {
  if (strcmp(e2e_store_kind(), "dynamodb") != 0) {
    fprintf(stderr,
            "suite backfill: skipped, TS_TEST_STORE is %s (its "
            "source table lives on dynalite)\n",
            e2e_store_kind());
    return;
  }
  E2E_SUITE("backfill", NULL, clean,
            TS_TEST(test_backfill_into_either_store_gives_the_source_totals),
            TS_TEST(test_games_streamed_during_a_backfill_are_counted_once),
            TS_TEST(test_verify_reports_a_drift_and_backfill_repairs_it),
            TS_TEST(test_a_missing_source_table_fails_with_exit_3));
}
