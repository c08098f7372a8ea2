/* The embedded store's guarantees, seen from outside: a failed attempt
 * leaves nothing behind, one bad batch of a group fails alone, and an
 * eventID past the retention counts again. Failures are planted with
 * SQLite triggers and rows written by the sqlite3 shell into a private
 * server's database. Registered only when TS_TEST_STORE is sqlite. */
#include <CUnit/CUnit.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/bounds.h"
#include "harness.h"
#include "records.h"
#include "suites.h"
#include "tests/unit/unit.h"

/* Runs sql on the server's database; false (and a failed check) if the
 * shell failed. */
static bool sql_run(const struct e2e_server *s, const char *what,
                    const char *sql) {
  char *out = e2e_sqlite_query(e2e_server_db_path(s), sql);
  TS_CHECK_CASE(out != NULL, what, "sqlite3 failed on: %s", sql);
  free(out);
  return out != NULL;
}

/* The single integer a query answers, or -1. */
static long sql_long(const struct e2e_server *s, const char *sql) {
  char *out = e2e_sqlite_query(e2e_server_db_path(s), sql);
  long v = out && *out ? strtol(out, NULL, 10) : -1;
  free(out);
  return v;
}

static long applied_rows(const struct e2e_server *s, const char *player) {
  char sql[512];
  snprintf(sql, sizeof sql,
           "SELECT count(*) FROM applied_events WHERE player = '%s';", player);
  return sql_long(s, sql);
}

static long status_of_get(const struct e2e_server *s, const char *player) {
  long status = 0;
  json_t *got = e2e_fetch_stats(s, player, &status);
  json_decref(got);
  return status;
}

static struct e2e_server *private_server(void) {
  struct e2e_server_opts opt = {0};
  struct e2e_server *s = NULL;
  if (e2e_server_start(&opt, &s) != TS_OK)
    return NULL;
  return s;
}

/* The writer begins a transaction before its batch comes (README
 * "Transactions begun early"): a body that never becomes a batch leaves
 * the housekeeping to commit alone within the wait, and the writer is
 * free for the next batch; batches sent one after another apply exactly,
 * in transactions begun for them or not (timing's: the store's unit tests
 * drive the deterministic cases). /metrics counts both outcomes. */
static void test_transactions_begun_early_are_counted_and_totals_exact(void) {
  struct e2e_server *s = private_server();
  CU_ASSERT_FATAL(s != NULL);
  const char *alone = "ts_sqlite_early_transactions_total{outcome=\"alone\"} ";
  const char *with = "ts_sqlite_early_transactions_total{outcome=\"batch\"} ";
  TS_CHECK_CASE(e2e_server_metric(s, alone) == 0 &&
                    e2e_server_metric(s, with) == 0,
                "a fresh server", "early transactions before any request");
  static const char broken[] = "{\"Records\": [";
  const char *const headers[] = {"Content-Type: application/json", NULL};
  struct e2e_request rq = {.method = "POST",
                           .target = "/v1/stream-records",
                           .headers = headers,
                           .body = broken,
                           .body_len = sizeof broken - 1};
  struct e2e_reply r;
  (void)e2e_http(s, &rq, &r);
  TS_CHECK_CASE(r.status == 400, "a body that is not JSON", "status %ld",
                r.status);
  e2e_reply_clear(&r);
  TS_CHECK_CASE(e2e_server_metric_reaching(s, alone, 1) == 1,
                "a body that is not JSON",
                "its early transaction did not commit alone");
  char p[128];
  e2e_name(p, sizeof p, "early");
  for (int i = 0; i < 5; i++) {
    char score[8];
    snprintf(score, sizeof score, "%d", i + 1);
    e2e_ingest_all(s, "batches one after another",
                   e2e_records(e2e_insert(p, score, WIN_BOOL_TRUE), NULL));
  }
  struct e2e_expect want = {p, 5, 5, "15", "3", "100"};
  e2e_expect_stats(s, "batches one after another", &want);
  /* Each group of HTTP batches, once committed, has the committer begin
   * the next transaction; a batch that is queued before that begin (a
   * loaded machine) is led as usual, and an early transaction whose batch
   * is later than the wait commits alone. So how many took a batch is
   * timing's; what is not: none took a batch that was not sent, and the
   * one begun after the last batch commits alone. */
  double batch = e2e_server_metric(s, with);
  TS_CHECK_CASE(batch >= 0 && batch <= 5, "batches one after another",
                "%.0f early transactions took a batch, of 5 batches", batch);
  TS_CHECK_CASE(e2e_server_metric_reaching(s, alone, 2) >= 2,
                "after the last batch", "no early transaction committed alone");
  int code = -1;
  e2e_server_stop(s, &code);
  TS_CHECK_CASE(code == 0, "stop", "exit code %d", code);
}

/* A failure in the middle of an apply (here: the dead-letter insert, after
 * the player's row and eventID were written in the same transaction) rolls
 * the whole attempt back: the answer is an error and nothing of the batch
 * is visible; the resend, once the store works, applies it once. */
static void test_failed_apply_leaves_nothing_of_its_attempt(void) {
  struct e2e_server *s = private_server();
  CU_ASSERT_FATAL(s != NULL);
  char p[128], q[128];
  e2e_name(p, sizeof p, "rollback");
  e2e_name(q, sizeof q, "rollback-poison");
  json_t *recs = e2e_records(e2e_insert(p, "4", WIN_BOOL_TRUE),
                             e2e_insert(q, "not-a-number", WIN_ABSENT), NULL);
  json_t *body = e2e_pipes(recs);
  bool planted = sql_run(s, "plant a failing dead-letter insert",
                         "CREATE TRIGGER planted BEFORE INSERT ON dead_letters "
                         "BEGIN SELECT RAISE(ABORT, 'planted failure'); END;");
  struct e2e_reply r;
  (void)e2e_post_json(s, "/v1/stream-records", body, &r);
  TS_CHECK_CASE(planted && r.status >= 500, "POST with the planted failure",
                "status %ld: %.300s", r.status, r.body ? r.body : "");
  e2e_reply_clear(&r);
  TS_CHECK_CASE(status_of_get(s, p) == 404, "after the failed attempt",
                "the player of the rolled-back batch is visible");
  TS_CHECK_CASE(applied_rows(s, p) == 0, "after the failed attempt",
                "%ld applied eventIDs of the rolled-back batch remain",
                applied_rows(s, p));
  TS_CHECK_CASE(sql_long(s, "SELECT count(*) FROM dead_letters;") == 0,
                "after the failed attempt", "a dead letter remains");
  sql_run(s, "remove the planted failure", "DROP TRIGGER planted;");
  e2e_ingest_expect(s, "the resend", body, 2, 1, 0, 0, 1);
  struct e2e_expect want = {p, 1, 1, "4", "4", "100"};
  e2e_expect_stats(s, "after the resend", &want);
  json_decref(body);
  json_decref(recs);
  int code = -1;
  e2e_server_stop(s, &code);
}

/* Batches that queue while the writer is busy are committed together; when
 * that group fails because of one batch, each batch is applied alone, so
 * the others succeed and only the bad one fails. */
#define GROUP_JOBS 8 /* the leader, then 3 good, the bad one, 3 good */
#define GROUP_BAD 4
static void test_one_failing_batch_of_a_group_fails_alone(void) {
  /* More workers than batches, so that every batch reaches the store's
   * queue while the first one holds the writer. */
  static const char *env[] = {"TS_THREADS=16", NULL};
  struct e2e_server_opts opt = {.extra_env = env};
  struct e2e_server *s = NULL;
  CU_ASSERT_FATAL(e2e_server_start(&opt, &s) == TS_OK);
  char names[GROUP_JOBS][128], bad_id[64], sql[512];
  json_t *bodies[GROUP_JOBS];
  e2e_fresh_event_id(bad_id, sizeof bad_id);
  for (int i = 0; i < GROUP_JOBS; i++) {
    char tag[32], id[64];
    snprintf(tag, sizeof tag, i == GROUP_BAD ? "group-bad" : "group-%d", i);
    e2e_name(names[i], sizeof names[i], tag);
    struct e2e_image img = {names[i], i == GROUP_BAD ? "bad" : "2", WIN_ABSENT,
                            0, 0};
    e2e_fresh_event_id(id, sizeof id);
    bodies[i] =
        e2e_record("INSERT", i == GROUP_BAD ? bad_id : id, NULL, NULL, &img);
  }
  /* Only the bad batch's dead letter fails. */
  snprintf(sql, sizeof sql,
           "CREATE TRIGGER planted BEFORE INSERT ON dead_letters "
           "WHEN NEW.event_id = '%s' "
           "BEGIN SELECT RAISE(ABORT, 'planted failure'); END;",
           bad_id);
  bool planted = sql_run(s, "plant a failure for one eventID", sql);
  struct e2e_sqlite_lock lock;
  bool locked = e2e_sqlite_lock_take(s, &lock);
  TS_CHECK_CASE(planted && locked, "setup", "planted %d, locked %d", planted,
                locked);
  struct e2e_post_job jobs[GROUP_JOBS];
  /* The first batch waits for the lock as the group's leader; the others
   * queue behind it and are then applied as one group. */
  e2e_post_start(&jobs[0], s, bodies[0]);
  e2e_sleep_ms(300);
  for (int i = 1; i < GROUP_JOBS; i++)
    e2e_post_start(&jobs[i], s, bodies[i]);
  e2e_sleep_ms(700);
  e2e_sqlite_lock_release(&lock);
  for (int i = 0; i < GROUP_JOBS; i++)
    e2e_post_join(&jobs[i]);
  for (int i = 0; i < GROUP_JOBS; i++) {
    bool bad = i == GROUP_BAD;
    long applied =
        (long)json_integer_value(json_object_get(jobs[i].answer, "applied"));
    TS_CHECK_CASE(bad ? jobs[i].status >= 500
                      : jobs[i].status == 200 && applied == 1,
                  names[i], "status %ld, applied %ld", jobs[i].status, applied);
    TS_CHECK_CASE(status_of_get(s, names[i]) == (bad ? 404 : 200), names[i],
                  "GET answers %ld", status_of_get(s, names[i]));
    e2e_post_clear(&jobs[i]);
    json_decref(bodies[i]);
  }
  int code = -1;
  e2e_server_stop(s, &code);
}

/* A client that closes its connection while its batch waits for the store
 * has the batch applied all the same (it was admitted, as a resend would
 * find out), and the request counts as the 200 it was given, not as a
 * server error; a request that closes before any answer is made counts as
 * 499. */
static void test_a_client_gone_before_its_answer_is_no_server_error(void) {
  struct e2e_server *s = private_server();
  CU_ASSERT_FATAL(s != NULL);
  char p[128], req[4096];
  e2e_name(p, sizeof p, "gone");
  json_t *rec = e2e_insert(p, "5", WIN_BOOL_TRUE);
  size_t len = e2e_raw_post(rec, req, sizeof req);
  struct e2e_sqlite_lock lock;
  bool locked = e2e_sqlite_lock_take(s, &lock);
  int fd = e2e_raw_connect(s);
  TS_CHECK_CASE(locked && fd >= 0 && len > 0, "setup",
                "locked %d, socket %d, request %zu bytes", locked, fd, len);
  size_t got = 0;
  bool closed = false;
  char *early = fd >= 0 && len > 0
                    ? e2e_raw_talk(fd, req, len, 300, &got, &closed)
                    : NULL;
  TS_CHECK_CASE(got == 0, "while the store is locked", "answered: %.80s",
                early ? early : "");
  if (fd >= 0) { /* the client gives up, with a reset as a timed-out
                  * client's kernel may send */
    struct linger reset = {.l_onoff = 1, .l_linger = 0};
    (void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
    close(fd);
  }
  e2e_sleep_ms(200);
  e2e_sqlite_lock_release(&lock);

  long status = 0;
  for (int i = 0; i < 50 && status != 200; i++)
    if ((status = status_of_get(s, p)) != 200)
      e2e_sleep_ms(100);
  TS_CHECK_CASE(status == 200, "the batch of the client gone",
                "GET answers %ld", status);
  double ok = e2e_server_metric_reaching(
      s, "ts_http_requests_total{route=\"ingest\",status=\"200\"} ", 1);
  double err = e2e_server_metric(
      s, "ts_http_requests_total{route=\"ingest\",status=\"500\"} ");
  TS_CHECK_CASE(ok == 1 && err < 0, "its request in /metrics",
                "status 200: %g, status 500: %g", ok, err);
  TS_CHECK_CASE(
      e2e_server_log_has(s, "\"status\":200", "\"completed\":false", 5000),
      "its request logged",
      "no request line with status 200 and completed false");

  /* Half a body, then the client leaves: no answer was made. */
  static const char half[] = "POST /v1/stream-records HTTP/1.1\r\nHost: t\r\n"
                             "Content-Type: application/json\r\n"
                             "Content-Length: 1000\r\n\r\n{\"Records\":[";
  fd = e2e_raw_connect(s);
  char *none = fd >= 0
                   ? e2e_raw_talk(fd, half, sizeof half - 1, 200, &got, &closed)
                   : NULL;
  if (fd >= 0)
    close(fd);
  double gone = e2e_server_metric_reaching(
      s, "ts_http_requests_total{route=\"ingest\",status=\"499\"} ", 1);
  err = e2e_server_metric(
      s, "ts_http_requests_total{route=\"ingest\",status=\"500\"} ");
  TS_CHECK_CASE(gone == 1 && err < 0, "half a body",
                "status 499: %g, status 500: %g", gone, err);
  free(none);
  free(early);
  json_decref(rec);
  int code = -1;
  e2e_server_stop(s, &code);
}

/* What counts as applied is what was applied within the retention, whether
 * or not the purge has removed older pairs yet: a pair older than that is
 * applied again, and recorded anew (in applied_recent, until a cycle moves
 * it over the old row: store/recent.h). */
static void test_event_id_past_the_retention_applies_again(void) {
  struct e2e_server *s = private_server();
  CU_ASSERT_FATAL(s != NULL);
  char p[128], warm[128], sql[1024];
  e2e_name(p, sizeof p, "retention");
  e2e_name(warm, sizeof warm, "retention-warm");
  /* A first write: the store's startup purge is behind it. */
  json_t *first = e2e_insert(warm, "1", WIN_ABSENT);
  e2e_ingest_expect(s, "a first write", first, 1, 1, 0, 0, 0);
  json_t *rec = e2e_insert(p, "3", WIN_BOOL_TRUE);
  long now = (long)time(NULL);
  long expired = now - (long)TS_DEDUP_RETENTION_S - 3600;
  snprintf(sql, sizeof sql,
           "INSERT INTO applied_events(player, event_id, applied_at) "
           "VALUES('%s', '%s', %ld);",
           p, e2e_record_event_id(rec), expired);
  sql_run(s, "an applied pair past the retention", sql);
  e2e_ingest_expect(s, "the expired eventID again", rec, 1, 1, 0, 0, 0);
  snprintf(sql, sizeof sql,
           "SELECT count(*) FROM (SELECT applied_at FROM applied_events "
           "WHERE player = '%s' UNION ALL SELECT p.value ->> 2 FROM "
           "applied_recent, json_each(pairs) p WHERE p.value ->> 0 = '%s') "
           "WHERE applied_at >= %ld;",
           p, p, now - 60);
  TS_CHECK_CASE(sql_long(s, sql) == 1, "the new application",
                "not recorded once");
  /* Applied now: a resend is a duplicate again. */
  e2e_ingest_expect(s, "resent", rec, 1, 0, 1, 0, 0);
  struct e2e_expect want = {p, 1, 1, "3", "3", "100"};
  e2e_expect_stats(s, "after the expired eventID", &want);
  json_decref(rec);
  json_decref(first);
  int code = -1;
  e2e_server_stop(s, &code);
}

/* A full disk: the POST that does not fit is a 503 with Retry-After (the
 * sender waits it out), /readyz turns 503 so a balancer stops sending, and
 * both recover by themselves once space is back; what was committed before
 * stays. Needs root to mount a small tmpfs; skipped (with a message)
 * otherwise. */
static void test_full_disk_is_503_not_ready_and_recovers(void) {
  char *dir = NULL, mnt[4096], db_env[4200], ballast[4200];
  if (geteuid() != 0 || e2e_dir_new(&dir) != TS_OK) {
    fprintf(stderr, "\n    skipped: mounting a small tmpfs needs root\n");
    return;
  }
  snprintf(mnt, sizeof mnt, "%s/small", dir);
  if (mkdir(mnt, 0700) != 0 ||
      mount("tmpfs", mnt, "tmpfs", MS_NOSUID | MS_NODEV, "size=8m") != 0) {
    fprintf(stderr, "\n    skipped: could not mount a tmpfs (%s)\n",
            strerror(errno));
    e2e_dir_remove(dir);
    free(dir);
    return;
  }
  /* 5 MiB held back, to be given back once the store has filled the rest. */
  snprintf(ballast, sizeof ballast, "%s/ballast", mnt);
  FILE *f = fopen(ballast, "wb");
  static char zeros[65536];
  for (int i = 0; f && i < 80; i++)
    fwrite(zeros, 1, sizeof zeros, f);
  bool ballast_ok = f && fclose(f) == 0;
  snprintf(db_env, sizeof db_env, "TS_SQLITE_PATH=%s/data/ts.db", mnt);
  const char *extra[] = {db_env, NULL};
  struct e2e_server_opts opt = {.extra_env = extra};
  struct e2e_server *s = NULL;
  CU_ASSERT(ballast_ok);
  if (!ballast_ok || e2e_server_start(&opt, &s) != TS_OK) {
    CU_FAIL("server did not start on the tmpfs");
    goto out;
  }
  char first[128], pad[901];
  memset(pad, 'x', sizeof pad - 1);
  pad[sizeof pad - 1] = '\0';
  e2e_name(first, sizeof first, "disk-full");
  struct e2e_reply r = {0};
  long status = 200;
  int batches = 0;
  for (; batches < 200 && status == 200; batches++) {
    json_t *recs = json_array();
    for (int i = 0; i < 100; i++) {
      char name[2048];
      snprintf(name, sizeof name, "%s-%d-%d-%s", first, batches, i, pad);
      json_array_append_new(recs, e2e_insert(name, "1", WIN_ABSENT));
    }
    e2e_reply_clear(&r);
    (void)e2e_post_json(s, "/v1/stream-records", recs, &r);
    status = r.status;
    json_decref(recs);
  }
  TS_CHECK_CASE(status == 503 && batches > 1, "filling the disk",
                "after %d batches: status %ld %.200s", batches, r.status,
                r.body ? r.body : "");
  char retry[32];
  TS_CHECK_CASE(e2e_reply_header(&r, "Retry-After", retry, sizeof retry),
                "the 503 of a full disk", "no Retry-After");
  e2e_reply_clear(&r);
  (void)e2e_get(s, "/readyz", &r);
  TS_CHECK_CASE(r.status == 503, "/readyz with a full disk", "status %ld",
                r.status);
  e2e_reply_clear(&r);
  (void)e2e_get(s, "/healthz", &r);
  TS_CHECK_CASE(r.status == 200, "/healthz with a full disk", "status %ld",
                r.status);
  e2e_reply_clear(&r);

  unlink(ballast);
  (void)e2e_get(s, "/readyz", &r);
  TS_CHECK_CASE(r.status == 200, "/readyz once space is back", "status %ld",
                r.status);
  e2e_reply_clear(&r);
  char later[128], earlier[2048];
  e2e_name(later, sizeof later, "disk-full-after");
  json_t *rec = e2e_insert(later, "2", WIN_BOOL_TRUE);
  e2e_ingest_expect(s, "a POST once space is back", rec, 1, 1, 0, 0, 0);
  json_decref(rec);
  snprintf(earlier, sizeof earlier, "%s-0-0-%s", first, pad);
  TS_CHECK_CASE(status_of_get(s, earlier) == 200, "what was committed before",
                "the first batch's player is gone");
  int code = -1;
  e2e_server_stop(s, &code);
out:
  umount2(mnt, MNT_DETACH);
  e2e_dir_remove(dir);
  free(dir);
}

void e2e_suite_sqlite(void) {
  if (!e2e_store_is_sqlite())
    return;
  TS_SUITE("sqlite", TS_TEST(test_failed_apply_leaves_nothing_of_its_attempt),
           TS_TEST(test_one_failing_batch_of_a_group_fails_alone),
           TS_TEST(test_a_client_gone_before_its_answer_is_no_server_error),
           TS_TEST(test_event_id_past_the_retention_applies_again),
           TS_TEST(test_transactions_begun_early_are_counted_and_totals_exact),
           TS_TEST(test_full_disk_is_503_not_ready_and_recovers));
}
