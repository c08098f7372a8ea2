/* The process seen from outside: --help, flags, restart durability,
 * SIGTERM with a request in flight, and 503 when the store stops answering
 * (a locked SQLite file; a frozen private dynalite). Each test runs its own
 * server(s). */
#include <CUnit/CUnit.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/bounds.h"
#include "harness.h"
#include "records.h"
#include "suites.h"
#include "tests/unit/unit.h"

static void ingest_expect(struct e2e_server *s, const char *case_name,
                          const json_t *body, long received, long applied,
                          long duplicates) {
  e2e_ingest_expect(s, case_name, body, received, applied, duplicates, 0, 0);
}

static void stop_expect_zero(struct e2e_server *s, const char *case_name) {
  int code = -1;
  e2e_server_stop(s, &code);
  TS_CHECK_CASE(code == 0, case_name, "exit status %d after SIGTERM", code);
}

static void test_help_prints_usage_and_exits_zero(void) {
  char *argv[] = {(char *)e2e_bin(), "--help", NULL};
  int code = -1;
  char *out = e2e_run_capture(argv, &code);
  TS_CHECK_CASE(code == 0, "--help", "exit status %d", code);
  static const char *const mentions[] = {"TS_BIND",  "TS_PORT",
                                         "TS_STORE", "TS_SQLITE_PATH",
                                         "--port",   "--sqlite-path"};
  for (size_t i = 0; i < sizeof mentions / sizeof mentions[0]; i++)
    TS_CHECK_CASE(out && strstr(out, mentions[i]), "--help",
                  "usage does not mention %s", mentions[i]);
  free(out);
}

/* The container's HEALTHCHECK: `tourney-stats healthcheck` with the
 * server's settings exits 0 while it serves, 1 once it is gone. */
static void test_healthcheck_subcommand_exits_zero_only_while_serving(void) {
  struct e2e_server *s = NULL;
  CU_ASSERT_FATAL(e2e_server_start(NULL, &s) == TS_OK);
  char port[16];
  snprintf(port, sizeof port, "%d", e2e_server_port(s));
  static const char *const binds[] = {"127.0.0.1", "0.0.0.0"};
  for (size_t i = 0; i < 2; i++) {
    char *argv[] = {
        (char *)e2e_bin(), "--bind", (char *)binds[i], "--port", port,
        "healthcheck",     NULL};
    int code = -1;
    free(e2e_run_capture(argv, &code));
    TS_CHECK_CASE(code == 0, binds[i], "healthcheck exit %d while serving",
                  code);
  }
  const char *env[] = {NULL, NULL};
  char env_port[32];
  snprintf(env_port, sizeof env_port, "TS_PORT=%s", port);
  env[0] = env_port;
  char *argv_env[] = {(char *)e2e_bin(), "healthcheck", NULL};
  int code = -1;
  free(e2e_run_capture_env(argv_env, env, &code));
  TS_CHECK_CASE(code == 0, "TS_PORT", "healthcheck exit %d while serving",
                code);
  stop_expect_zero(s, "healthcheck");
  char *argv[] = {(char *)e2e_bin(), "--bind", "127.0.0.1", "--port", port,
                  "healthcheck",     NULL};
  code = -1;
  free(e2e_run_capture(argv, &code));
  TS_CHECK_CASE(code == 1, "stopped", "healthcheck exit %d with no server",
                code);
}

static void test_flags_configure_the_server_like_env(void) {
  struct e2e_server_opts opt = {.use_flags = true};
  struct e2e_server *s = NULL;
  CU_ASSERT_FATAL(e2e_server_start(&opt, &s) == TS_OK);
  char p[128];
  e2e_name(p, sizeof p, "flags");
  json_t *rec = e2e_insert(p, "2.5", WIN_BOOL_TRUE);
  ingest_expect(s, "configured by flags", rec, 1, 1, 0);
  struct e2e_expect e = {p, 1, 1, "2.5", "2.5", "100"};
  e2e_expect_stats(s, "configured by flags", &e);
  if (e2e_store_is_sqlite())
    TS_CHECK_CASE(access(e2e_server_db_path(s), F_OK) == 0, "--sqlite-path",
                  "no database at %s", e2e_server_db_path(s));
  stop_expect_zero(s, "configured by flags");
  json_decref(rec);
}

static void test_stats_and_applied_event_ids_survive_a_restart(void) {
  unsigned failures_before = CU_get_number_of_failures();
  char *dir = NULL;
  CU_ASSERT_FATAL(e2e_dir_new(&dir) == TS_OK);
  struct e2e_server_opts opt = {.dir = dir};
  struct e2e_server *s = NULL;
  char p[128];
  e2e_name(p, sizeof p, "restart");
  json_t *recs = e2e_records(e2e_insert(p, "10.25", WIN_BOOL_TRUE),
                             e2e_insert(p, "3", WIN_S_FALSE),
                             e2e_insert(p, "0.5", WIN_N_ONE), NULL);
  json_t *body = e2e_lambda(recs);
  json_t *before = NULL, *after = NULL;
  if (e2e_server_start(&opt, &s) != TS_OK) {
    CU_FAIL("first server did not start");
    goto out;
  }
  ingest_expect(s, "before restart", body, 3, 3, 0);
  long st;
  before = e2e_fetch_stats(s, p, &st);
  stop_expect_zero(s, "first server");
  s = NULL;
  if (!e2e_store_is_sqlite()) {
    /* Nothing is kept by the server itself: with no server running, the
     * stats and the applied eventIDs are in the table. */
    json_t *item = NULL;
    enum ts_status gst = e2e_ddb_get_item(NULL, e2e_ddb_table(), p, &item);
    const char *games =
        json_string_value(json_object_get(json_object_get(item, "games"), "N"));
    bool ids = e2e_applied_count(item) == 3;
    for (size_t i = 0; ids && i < 3; i++)
      ids = e2e_applied_has(item, e2e_record_event_id(json_array_get(recs, i)));
    TS_CHECK_CASE(gst == TS_OK && games && strcmp(games, "3") == 0 && ids,
                  "table between the servers",
                  "get-item of %s: games %s, %zu applied ids (want 3, the "
                  "batch's)",
                  p, games ? games : "(none)", e2e_applied_count(item));
    json_decref(item);
  }

  if (e2e_server_start(&opt, &s) != TS_OK) {
    CU_FAIL("second server did not start on the same data");
    goto out;
  }
  struct e2e_expect e = {p, 3, 2, "13.75", "4.58", "66.67"};
  e2e_expect_stats(s, "after restart", &e);
  after = e2e_fetch_stats(s, p, &st);
  TS_CHECK_CASE(before && after && json_equal(before, after), "after restart",
                "the stats object changed across the restart");
  ingest_expect(s, "resent after restart", body, 3, 0, 3);
  e2e_expect_stats(s, "resent after restart", &e);
  stop_expect_zero(s, "second server");
  s = NULL;
out:
  json_decref(before);
  json_decref(after);
  json_decref(body);
  json_decref(recs);
  if (CU_get_number_of_failures() == failures_before)
    e2e_dir_remove(dir);
  else
    fprintf(stderr, "  (data kept in %s)\n", dir);
  free(dir);
}

/* ---- a POST whose body arrives slowly, around a SIGTERM ---- */

struct slow_post {
  int port;
  char *body;
  size_t len, pos, half;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool started; /* the first half is handed to the socket */
  bool release; /* the test allows the second half */
  long status;
  CURLcode curl;
  struct growbuf_lite {
    char *p;
    size_t len;
  } reply;
};

static size_t slow_read(char *buf, size_t size, size_t nmemb, void *arg) {
  struct slow_post *sp = arg;
  size_t room = size * nmemb;
  pthread_mutex_lock(&sp->mu);
  if (sp->pos >= sp->half && !sp->started) {
    sp->started = true;
    pthread_cond_broadcast(&sp->cv);
  }
  while (sp->pos >= sp->half && !sp->release)
    pthread_cond_wait(&sp->cv, &sp->mu);
  pthread_mutex_unlock(&sp->mu);
  size_t end = sp->pos < sp->half ? sp->half : sp->len;
  size_t n = end - sp->pos < room ? end - sp->pos : room;
  memcpy(buf, sp->body + sp->pos, n);
  sp->pos += n;
  return n;
}

static size_t slow_write(char *data, size_t size, size_t nmemb, void *arg) {
  struct slow_post *sp = arg;
  size_t n = size * nmemb;
  char *p = realloc(sp->reply.p, sp->reply.len + n + 1);
  if (!p)
    return 0;
  memcpy(p + sp->reply.len, data, n);
  sp->reply.p = p;
  sp->reply.len += n;
  p[sp->reply.len] = '\0';
  return n;
}

static void *slow_post_main(void *arg) {
  struct slow_post *sp = arg;
  char url[128];
  snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/stream-records", sp->port);
  struct curl_slist *h =
      curl_slist_append(NULL, "Content-Type: application/json");
  h = curl_slist_append(h, "Expect:");
  CURL *c = curl_easy_init();
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(c, CURLOPT_POST, 1L);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
  curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)sp->len);
  curl_easy_setopt(c, CURLOPT_READFUNCTION, slow_read);
  curl_easy_setopt(c, CURLOPT_READDATA, sp);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, slow_write);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, sp);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 20000L);
  sp->curl = curl_easy_perform(c);
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &sp->status);
  curl_easy_cleanup(c);
  curl_slist_free_all(h);
  /* Unblock a test waiting for "started" if the transfer failed early. */
  pthread_mutex_lock(&sp->mu);
  sp->started = true;
  pthread_cond_broadcast(&sp->cv);
  pthread_mutex_unlock(&sp->mu);
  return NULL;
}

static void test_sigterm_finishes_in_flight_post_and_exits_zero(void) {
  char *dir = NULL;
  CU_ASSERT_FATAL(e2e_dir_new(&dir) == TS_OK);
  struct e2e_server_opts opt = {.dir = dir};
  struct e2e_server *s = NULL;
  if (e2e_server_start(&opt, &s) != TS_OK) {
    CU_FAIL("server did not start");
    e2e_dir_remove(dir);
    free(dir);
    return;
  }
  char p[128];
  e2e_name(p, sizeof p, "in-flight");
  json_t *recs = json_array();
  for (int i = 0; i < 200; i++)
    json_array_append_new(
        recs, e2e_insert(p, "1.25", i % 2 ? WIN_ABSENT : WIN_BOOL_TRUE));
  json_t *body = e2e_lambda(recs);
  struct slow_post sp = {.port = e2e_server_port(s)};
  sp.body = json_dumps(body, JSON_COMPACT);
  sp.len = strlen(sp.body);
  sp.half = sp.len / 2;
  pthread_mutex_init(&sp.mu, NULL);
  pthread_cond_init(&sp.cv, NULL);
  pthread_t t;
  CU_ASSERT_FATAL(pthread_create(&t, NULL, slow_post_main, &sp) == 0);

  pthread_mutex_lock(&sp.mu);
  while (!sp.started)
    pthread_cond_wait(&sp.cv, &sp.mu);
  pthread_mutex_unlock(&sp.mu);
  /* Two keep-alive connections opened before the signal. */
  static const char probe[] = "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n";
  int keep[2];
  for (int k = 0; k < 2; k++) {
    keep[k] = e2e_raw_connect(s);
    size_t n = 0;
    bool closed = false;
    char *got = keep[k] >= 0 ? e2e_raw_ask(keep[k], probe, sizeof probe - 1,
                                           5000, &n, &closed)
                             : NULL;
    TS_CHECK_CASE(got && strncmp(got, "HTTP/1.1 200", 12) == 0 && !closed,
                  "keep-alive before SIGTERM", "%.80s", got ? got : "(none)");
    free(got);
  }
  e2e_sleep_ms(200); /* the server holds half the body */
  e2e_server_signal_term(s);
  e2e_sleep_ms(300);
  TS_CHECK_CASE(e2e_server_alive(s), "in-flight",
                "server exited before the in-flight request finished");

  /* While draining, on connections opened before: not ready, no new
   * ingestion (503 + Retry-After), and every answer closes. */
  char post[4096];
  json_t *late = e2e_insert(p, "9", WIN_ABSENT);
  size_t post_len = e2e_raw_post(late, post, sizeof post);
  TS_CHECK_CASE(post_len > 0, "late POST", "the request does not fit in %zu",
                sizeof post);
  static const char readyz[] = "GET /readyz HTTP/1.1\r\nHost: t\r\n\r\n";
  const struct {
    const char *what, *bytes;
    size_t len;
  } during[2] = {{"GET /readyz while draining", readyz, sizeof readyz - 1},
                 {"POST while draining", post, post_len}};
  for (int k = 0; k < 2; k++) {
    size_t n = 0;
    bool closed = false;
    char *got = keep[k] >= 0 ? e2e_raw_ask(keep[k], during[k].bytes,
                                           during[k].len, 5000, &n, &closed)
                             : NULL;
    TS_CHECK_CASE(got && strncmp(got, "HTTP/1.1 503", 12) == 0 &&
                      strstr(got, "Connection: close") && closed,
                  during[k].what, "%.200s", got ? got : "(none)");
    if (k == 1)
      TS_CHECK_CASE(got && strstr(got, "Retry-After:"), during[k].what,
                    "no Retry-After");
    free(got);
    if (keep[k] >= 0)
      close(keep[k]);
  }
  json_decref(late);

  /* No new work is taken while draining. */
  struct e2e_request rq = {
      .method = "GET", .target = "/healthz", .timeout_ms = 1000};
  struct e2e_reply r;
  (void)e2e_http(s, &rq, &r);
  TS_CHECK_CASE(r.curl != CURLE_OK || r.status == 503, "after SIGTERM",
                "a new connection got status %ld", r.status);
  e2e_reply_clear(&r);

  pthread_mutex_lock(&sp.mu);
  sp.release = true;
  pthread_cond_broadcast(&sp.cv);
  pthread_mutex_unlock(&sp.mu);
  pthread_join(t, NULL);
  json_t *answer = sp.reply.p ? json_loads(sp.reply.p, 0, NULL) : NULL;
  TS_CHECK_CASE(sp.curl == CURLE_OK && sp.status == 200 &&
                    json_integer_value(json_object_get(answer, "applied")) ==
                        200,
                "in-flight", "curl %s, status %ld, body %.300s",
                curl_easy_strerror(sp.curl), sp.status,
                sp.reply.p ? sp.reply.p : "(none)");
  stop_expect_zero(s, "SIGTERM with a request in flight");
  s = NULL;

  /* What was answered 200 is durable. */
  if (e2e_server_start(&opt, &s) == TS_OK) {
    struct e2e_expect e = {p, 200, 100, "250", "1.25", "50"};
    e2e_expect_stats(s, "in-flight batch after restart", &e);
    stop_expect_zero(s, "restarted server");
  } else {
    CU_FAIL("server did not restart");
  }
  json_decref(answer);
  free(sp.reply.p);
  free(sp.body);
  pthread_mutex_destroy(&sp.mu);
  pthread_cond_destroy(&sp.cv);
  json_decref(body);
  json_decref(recs);
  e2e_dir_remove(dir);
  free(dir);
}

/* ---- the store stops answering: 503 and a resend that applies ---- */

/* How a test makes the store stop answering and answer again: SQLite is
 * locked by a sqlite3 shell holding an EXCLUSIVE transaction; DynamoDB is
 * a private dynalite frozen with SIGSTOP (connections are accepted but
 * nothing is answered, like a store that hangs) and resumed with SIGCONT. */
struct outage {
  struct e2e_sqlite_lock lock; /* sqlite */
  struct e2e_dynalite *dyn;    /* dynamodb */
};

/* A server of its own for an outage test (on DynamoDB, on a private
 * dynalite with the tables made); extra: more NAME=value settings, may be
 * NULL. NULL (and a failed check) when it does not start. */
static struct e2e_server *outage_server(struct outage *o,
                                        const char *const *extra) {
  struct e2e_server *s = NULL;
  enum ts_status st;
  if (e2e_store_is_sqlite()) {
    struct e2e_server_opts opt = {.extra_env = extra};
    st = e2e_server_start(&opt, &s);
  } else {
    CU_ASSERT_FATAL(e2e_dynalite_start_with_tables(&o->dyn) == TS_OK);
    st = e2e_server_start_on(o->dyn, extra, &s);
  }
  if (st != TS_OK) {
    CU_FAIL("server did not start");
    e2e_dynalite_stop(o->dyn);
    o->dyn = NULL;
    return NULL;
  }
  return s;
}

/* The store stops answering; true when it did. */
static bool outage_begin(struct outage *o, struct e2e_server *s) {
  bool down = e2e_store_is_sqlite() ? e2e_sqlite_lock_take(s, &o->lock)
                                    : e2e_dynalite_signal(o->dyn, SIGSTOP);
  TS_CHECK_CASE(down, e2e_store_is_sqlite() ? "locked" : "frozen",
                "could not make the store stop answering");
  return down;
}

static void outage_end(struct outage *o) {
  if (e2e_store_is_sqlite())
    e2e_sqlite_lock_release(&o->lock);
  else
    e2e_dynalite_signal(o->dyn, SIGCONT);
}

/* A data path the store cannot use stops the start with a log line that
 * says what and why (SQLite's own words and the path), not only "could not
 * open the store". */
static void test_unusable_data_path_is_named_at_start(void) {
  if (!e2e_store_is_sqlite())
    return; /* a SQLite file's problem */
  char *dir = NULL;
  CU_ASSERT_FATAL(e2e_dir_new(&dir) == TS_OK);
  char file[4200], below_file[4300], garbage[4200];
  snprintf(file, sizeof file, "%s/a-file", dir);
  snprintf(below_file, sizeof below_file, "%s/data/ts.db", file);
  snprintf(garbage, sizeof garbage, "%s/garbage.db", dir);
  FILE *f = fopen(file, "w");
  FILE *g = fopen(garbage, "w");
  CU_ASSERT_FATAL(f && g);
  fputs("not a folder\n", f);
  for (int i = 0; i < 64; i++)
    fputs("this is text, not an SQLite database; ", g);
  fclose(f);
  fclose(g);
  static const struct {
    const char *name, *says, *why;
  } cases[] = {
      {"a folder below a file", "cannot create the data folder",
       "Not a directory"},
      {"a file that is not a database", "cannot open the file",
       "file is not a database"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char path_env[4400];
    snprintf(path_env, sizeof path_env, "TS_SQLITE_PATH=%s",
             i == 0 ? below_file : garbage);
    const char *env[] = {path_env, "TS_STORE=sqlite", "TS_PORT=0",
                         "TS_BIND=127.0.0.1", NULL};
    char *argv[] = {(char *)e2e_bin(), NULL};
    int code = -1;
    char *out = e2e_run_capture_env(argv, env, &code);
    TS_CHECK_CASE(code != 0 && out && strstr(out, cases[i].says) &&
                      strstr(out, cases[i].why),
                  cases[i].name, "exit %d, said: %.400s", code,
                  out ? out : "(nothing)");
    free(out);
  }
  e2e_dir_remove(dir);
  free(dir);
}

/* ---- a store that stalls under load ---- */

#define STALL_SENDERS 16
#define STALL_POOL 120 /* records each sender may send */
#define STALL_MS 5000

struct stall_sender {
  const struct e2e_server *s;
  char *texts[STALL_POOL];
  atomic_bool *stop;
  long n200, n429, n503, other, without_retry_after;
  double slowest;
};

static void *stall_sender_main(void *arg) {
  struct stall_sender *x = arg;
  static const char *const hdrs[] = {"Content-Type: application/json", NULL};
  for (int i = 0; i < STALL_POOL && !atomic_load(x->stop); i++) {
    struct e2e_request rq = {.method = "POST",
                             .target = "/v1/stream-records",
                             .headers = hdrs,
                             .body = x->texts[i],
                             .body_len = strlen(x->texts[i]),
                             .timeout_ms = 10000};
    struct e2e_reply r = {0};
    (void)e2e_http(x->s, &rq, &r);
    char retry[32];
    bool has_retry = e2e_reply_header(&r, "Retry-After", retry, sizeof retry);
    if (r.seconds > x->slowest)
      x->slowest = r.seconds;
    if (r.status == 200)
      x->n200++;
    else if (r.status == 429 || r.status == 503) {
      *(r.status == 429 ? &x->n429 : &x->n503) += 1;
      x->without_retry_after += !has_retry;
    } else
      x->other++;
    e2e_reply_clear(&r);
    if (r.status == 429)
      e2e_sleep_ms(50); /* a client backing off, if briefly */
  }
  return NULL;
}

/* Sixteen senders keep posting while the store stalls (SQLite locked by
 * another process, DynamoDB frozen): ingestion runs on its own bounded
 * workers, so /healthz and /metrics are answered at once throughout, every
 * POST is answered inside 5 s (503 past its deadline, 429 at once when
 * workers and queue are full, both with Retry-After), and the store takes
 * batches again as soon as it answers. */
static void test_stalled_store_starves_neither_health_nor_senders(void) {
  static const char *const extra[] = {"TS_INGEST_WORKERS=4",
                                      "TS_INGEST_QUEUE=4", NULL};
  struct outage o = {0};
  struct e2e_server *s = outage_server(&o, extra);
  if (!s)
    return;
  atomic_bool stop;
  atomic_init(&stop, false);
  struct stall_sender *xs = calloc(STALL_SENDERS, sizeof *xs);
  CU_ASSERT_FATAL(xs != NULL);
  for (int k = 0; k < STALL_SENDERS; k++) {
    xs[k].s = s;
    xs[k].stop = &stop;
    for (int i = 0; i < STALL_POOL; i++) {
      char p[128], tag[32];
      snprintf(tag, sizeof tag, "stall-%d-%d", k, i);
      e2e_name(p, sizeof p, tag);
      json_t *rec = e2e_insert(p, "1", WIN_ABSENT);
      xs[k].texts[i] = json_dumps(rec, JSON_COMPACT);
      json_decref(rec);
    }
  }
  bool down = outage_begin(&o, s);
  pthread_t t[STALL_SENDERS];
  int started = 0;
  for (int k = 0; k < STALL_SENDERS; k++)
    started += pthread_create(&t[k], NULL, stall_sender_main, &xs[k]) == 0;
  CU_ASSERT(started == STALL_SENDERS);

  long probes = 0, probes_ok = 0;
  double slowest_probe = 0;
  for (int waited = 0; waited < STALL_MS; waited += 100) {
    const char *target = probes % 2 ? "/metrics" : "/healthz";
    struct e2e_request rq = {
        .method = "GET", .target = target, .timeout_ms = 1000};
    struct e2e_reply r;
    (void)e2e_http(s, &rq, &r);
    probes++;
    probes_ok += r.status == 200;
    if (r.seconds > slowest_probe)
      slowest_probe = r.seconds;
    e2e_reply_clear(&r);
    e2e_sleep_ms(100);
  }
  outage_end(&o);
  atomic_store(&stop, true);
  for (int k = 0; k < started; k++)
    pthread_join(t[k], NULL);

  long n200 = 0, n429 = 0, n503 = 0, other = 0, bare = 0;
  double slowest = 0;
  for (int k = 0; k < STALL_SENDERS; k++) {
    n200 += xs[k].n200;
    n429 += xs[k].n429;
    n503 += xs[k].n503;
    other += xs[k].other;
    bare += xs[k].without_retry_after;
    if (xs[k].slowest > slowest)
      slowest = xs[k].slowest;
    for (int i = 0; i < STALL_POOL; i++)
      free(xs[k].texts[i]);
  }
  free(xs);
  fprintf(stderr,
          "\n    stalled %d ms: POSTs %ld x 200, %ld x 429, %ld x 503, %ld "
          "other, slowest %.2f s; %ld/%ld probes answered, slowest %.2f s\n",
          STALL_MS, n200, n429, n503, other, slowest, probes_ok, probes,
          slowest_probe);
  TS_CHECK_CASE(down && probes_ok == probes && slowest_probe < 1.0,
                "/healthz and /metrics while the store stalls",
                "%ld of %ld answered 200, slowest %.2f s", probes_ok, probes,
                slowest_probe);
  TS_CHECK_CASE(other == 0 && bare == 0 && slowest < 5.0,
                "POSTs while the store stalls",
                "%ld other statuses, %ld without Retry-After, slowest %.2f s",
                other, bare, slowest);
  TS_CHECK_CASE(n429 > 0 && n503 > 0, "POSTs while the store stalls",
                "want both 429 (shed) and 503 (deadline): %ld, %ld", n429,
                n503);
  char p[128];
  e2e_name(p, sizeof p, "stall-after");
  json_t *rec = e2e_insert(p, "1", WIN_ABSENT);
  ingest_expect(s, "once the store answers again", rec, 1, 1, 0);
  json_decref(rec);
  stop_expect_zero(s, "after the stall");
  e2e_dynalite_stop(o.dyn);
}

static void
test_store_that_stops_answering_gives_503_with_retry_after_then_resend_applies(
    void) {
  const bool sqlite = e2e_store_is_sqlite();
  struct outage o = {0};
  struct e2e_server *s = outage_server(&o, NULL);
  if (!s)
    return;
  const char *what = sqlite ? "locked" : "frozen";
  char p[128], case_name[96];
  e2e_name(p, sizeof p, "outage");
  json_t *warm = e2e_insert(p, "1", WIN_ABSENT);
  ingest_expect(s, "before the outage", warm, 1, 1, 0);

  bool down = outage_begin(&o, s);

  json_t *recs = e2e_records(e2e_insert(p, "2", WIN_BOOL_TRUE),
                             e2e_insert(p, "3", WIN_ABSENT), NULL);
  json_t *body = e2e_lambda(recs);
  if (down) {
    snprintf(case_name, sizeof case_name, "POST while the store is %s", what);
    struct e2e_reply r;
    (void)e2e_post_json(s, "/v1/stream-records", body, &r);
    e2e_check_problem(case_name, &r, 503, "store-unavailable");
    char retry[64];
    bool has = e2e_reply_header(&r, "Retry-After", retry, sizeof retry);
    char *end = NULL;
    long secs = has ? strtol(retry, &end, 10) : -1;
    TS_CHECK_CASE(has && end && *end == '\0' && secs >= 0, case_name,
                  "Retry-After is %s", has ? retry : "(missing)");
    TS_CHECK_CASE(r.seconds < 5.0, case_name,
                  "answered after %.2f s, not inside 5 s", r.seconds);
    e2e_reply_clear(&r);
    if (!sqlite) {
      snprintf(case_name, sizeof case_name, "GET /readyz while the store is %s",
               what);
      (void)e2e_get(s, "/readyz", &r);
      e2e_check_problem(case_name, &r, 503, "store-unavailable");
      TS_CHECK_CASE(r.seconds < 5.0, case_name, "answered after %.2f s",
                    r.seconds);
      e2e_reply_clear(&r);
    }
    TS_CHECK_CASE(e2e_server_alive(s), what, "the server died");
  }
  outage_end(&o);

  /* Nothing of the 503'd batch was applied, so the resend applies all. */
  ingest_expect(s, "resent after the outage", body, 2, 2, 0);
  struct e2e_expect e = {p, 3, 1, "6", "2", "33.33"};
  e2e_expect_stats(s, "resent after the outage", &e);
  struct e2e_reply ready;
  (void)e2e_get(s, "/readyz", &ready);
  TS_CHECK_CASE(ready.status == 200, "after the outage", "/readyz is %ld",
                ready.status);
  e2e_reply_clear(&ready);
  stop_expect_zero(s, "after the outage");
  e2e_dynalite_stop(o.dyn);
  json_decref(body);
  json_decref(recs);
  json_decref(warm);
}

/* ---- a try on an HTTP thread that the store does not answer in time ---- */

struct bg_post {
  const struct e2e_server *s;
  const json_t *body;
  struct e2e_reply reply;
};

static void *bg_post_main(void *arg) {
  struct bg_post *b = arg;
  (void)e2e_post_json(b->s, "/v1/stream-records", b->body, &b->reply);
  return NULL;
}

/* On DynamoDB a single record is tried on its HTTP thread with a short
 * deadline. When the store does not answer within it (here: frozen), a
 * worker takes the same batch over for the rest of the request's deadline
 * and answers 200 once the store is back; the game counts once, whether
 * or not the try's own write reached the store, and a resend is a
 * duplicate. /healthz is answered meanwhile. */
static void
test_try_the_store_does_not_answer_is_finished_by_a_worker_once(void) {
  if (e2e_store_is_sqlite())
    return; /* the embedded store commits on its own thread: no tries */
  struct outage o = {0};
  struct e2e_server *s = outage_server(&o, NULL);
  if (!s)
    return;
  char p[128];
  e2e_name(p, sizeof p, "try");
  json_t *warm_recs = e2e_records(e2e_insert(p, "1", WIN_ABSENT), NULL);
  json_t *warm = e2e_lambda(warm_recs);
  ingest_expect(s, "before the store freezes", warm, 1, 1, 0);
  double before = e2e_server_metric(s, "ts_ingest_handed_over_total ");
  /* A loaded machine may make the first write outlast its try too; tries
   * then pause, and the next batch would go to a worker at once. */
  if (before > 0)
    e2e_sleep_ms(TS_INGEST_TRY_PAUSE_MS + 200);

  json_t *recs = e2e_records(e2e_insert(p, "2", WIN_BOOL_TRUE), NULL);
  json_t *body = e2e_lambda(recs);
  bool down = outage_begin(&o, s);
  struct bg_post bp = {.s = s, .body = body};
  pthread_t t;
  CU_ASSERT_FATAL(pthread_create(&t, NULL, bg_post_main, &bp) == 0);
  /* The try (100 ms) runs out and a worker waits; a fixed wait could end
   * before a loaded machine even sent the request. */
  (void)e2e_server_metric_reaching(s, "ts_ingest_handed_over_total ",
                                   before + 1);
  struct e2e_reply probe;
  (void)e2e_get(s, "/healthz", &probe);
  TS_CHECK_CASE(probe.status == 200 && probe.seconds < 0.5,
                "/healthz while the store is frozen", "%ld after %.2f s",
                probe.status, probe.seconds);
  e2e_reply_clear(&probe);
  outage_end(&o);
  pthread_join(t, NULL);

  json_t *got = bp.reply.body ? json_loads(bp.reply.body, 0, NULL) : NULL;
  long applied = (long)json_integer_value(json_object_get(got, "applied"));
  long dups = (long)json_integer_value(json_object_get(got, "duplicates"));
  TS_CHECK_CASE(down && bp.reply.status == 200 && applied + dups == 1,
                "POST whose try ran out", "%ld, applied %ld, duplicates %ld",
                bp.reply.status, applied, dups);
  json_decref(got);
  e2e_reply_clear(&bp.reply);
  double after = e2e_server_metric(s, "ts_ingest_handed_over_total ");
  TS_CHECK_CASE(before >= 0 && after == before + 1,
                "ts_ingest_handed_over_total", "%.0f before, %.0f after",
                before, after);
  struct e2e_expect e = {p, 2, 1, "3", "1.5", "50.00"};
  e2e_expect_stats(s, "after the hand-over", &e);
  ingest_expect(s, "resent after the hand-over", body, 1, 0, 1);
  e2e_expect_stats(s, "after the resend", &e);
  stop_expect_zero(s, "after the hand-over");
  e2e_dynalite_stop(o.dyn);
  json_decref(body);
  json_decref(recs);
  json_decref(warm);
  json_decref(warm_recs);
}

/* ---- slow clients (slowloris) ---- */

enum slow_kind { SLOW_HEADERS, SLOW_BODY, IDLE_KEPT_ALIVE, N_SLOW_KINDS };

struct slow_conn {
  int fd;
  enum slow_kind kind;
  uint64_t closed_ms; /* 0 while open */
};

/* Reads what is there; records the close (end of stream or reset). */
static void slow_poll(struct slow_conn *c, uint64_t now) {
  char sink[4096];
  for (;;) {
    ssize_t n = recv(c->fd, sink, sizeof sink, MSG_DONTWAIT);
    if (n > 0)
      continue; /* an answer (the idle ones' GET) */
    if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
      c->closed_ms = now;
    return;
  }
}

/* A flood three times the connection limit: clients that send their
 * header block one byte at a time, clients that send a body one byte at a
 * time, and clients that keep an idle connection after one GET. Each must
 * be closed by its phase's deadline however it trickles, and other clients'
 * GETs must be answered throughout. */
static void
test_slow_clients_are_cut_at_their_deadline_and_never_keep_out_gets(void) {
  if (!e2e_store_is_sqlite())
    return; /* connection handling does not depend on the store */
  enum { LIMIT = 64, PER_KIND = 64, HEADER_S = 1, BODY_S = 1, KEEPALIVE_S = 2 };
  const char *env[] = {"TS_MAX_CONNECTIONS=64", "TS_HEADER_TIMEOUT_S=1",
                       "TS_BODY_TIMEOUT_S=1", "TS_KEEPALIVE_S=2", NULL};
  struct e2e_server_opts opt = {.extra_env = env};
  struct e2e_server *s = NULL;
  if (e2e_server_start(&opt, &s) != TS_OK) {
    CU_FAIL("server did not start");
    return;
  }
  static const char slow_post[] =
      "POST /v1/stream-records HTTP/1.1\r\nHost: x\r\nContent-Type: "
      "application/json\r\nContent-Length: 100000\r\n\r\n{";
  static const char *const opening[N_SLOW_KINDS] = {
      "GET /v1/players HTTP/1.1\r\nHost: x\r\nX-Slow: ", slow_post,
      "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"};
  static const char *const kind_name[N_SLOW_KINDS] = {
      "slow header block", "slow body", "idle kept-alive connection"};
  static const unsigned budget_s[N_SLOW_KINDS] = {HEADER_S, BODY_S,
                                                  KEEPALIVE_S};
  struct slow_conn conns[N_SLOW_KINDS * PER_KIND];
  size_t n = 0;
  uint64_t t0 = e2e_now_ms();
  for (int k = 0; k < N_SLOW_KINDS; k++) {
    for (int i = 0; i < PER_KIND; i++) {
      int fd = e2e_raw_connect(s);
      if (fd < 0)
        break;
      (void)fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
      (void)send(fd, opening[k], strlen(opening[k]), MSG_NOSIGNAL);
      conns[n++] = (struct slow_conn){.fd = fd, .kind = (enum slow_kind)k};
    }
  }
  TS_CHECK_CASE(n == N_SLOW_KINDS * PER_KIND, "slow flood",
                "opened %zu of %d connections", n, N_SLOW_KINDS * PER_KIND);
  /* A byte every 100 ms on each slow connection (each byte would restart
   * an idle timeout), a GET from another client every 100 ms. */
  unsigned gets = 0, gets_ok = 0;
  double slowest = 0;
  const uint64_t run_ms = (KEEPALIVE_S + 2) * 1000u;
  while (e2e_now_ms() - t0 < run_ms) {
    uint64_t now = e2e_now_ms();
    for (size_t i = 0; i < n; i++) {
      if (conns[i].closed_ms)
        continue;
      if (conns[i].kind != IDLE_KEPT_ALIVE)
        (void)send(conns[i].fd, "a", 1, MSG_NOSIGNAL);
      slow_poll(&conns[i], now);
    }
    struct e2e_reply r;
    (void)e2e_get(s, "/v1/players?limit=1", &r);
    gets++;
    gets_ok += r.status == 200;
    slowest = r.seconds > slowest ? r.seconds : slowest;
    e2e_reply_clear(&r);
    e2e_sleep_ms(100);
  }
  TS_CHECK_CASE(gets_ok == gets, "GETs during the flood",
                "%u of %u answered 200", gets_ok, gets);
  TS_CHECK_CASE(slowest < 1.0, "GETs during the flood",
                "the slowest took %.2f s", slowest);
  /* Each closed no later than its phase's deadline plus the reaper's
   * period and scheduling slack; evicted ones earlier. */
  for (int k = 0; k < N_SLOW_KINDS; k++) {
    unsigned open = 0;
    uint64_t latest = 0;
    for (size_t i = 0; i < n; i++) {
      if (conns[i].kind != (enum slow_kind)k)
        continue;
      if (!conns[i].closed_ms)
        open++;
      else if (conns[i].closed_ms - t0 > latest)
        latest = conns[i].closed_ms - t0;
    }
    TS_CHECK_CASE(open == 0, kind_name[k], "%u of %d still open after %.1f s",
                  open, PER_KIND, (double)run_ms / 1e3);
    TS_CHECK_CASE(latest <= budget_s[k] * 1000u + 1500u, kind_name[k],
                  "the last one closed after %.2f s (deadline %u s)",
                  (double)latest / 1e3, budget_s[k]);
  }
  for (size_t i = 0; i < n; i++)
    close(conns[i].fd);
  struct e2e_reply r;
  (void)e2e_get(s, "/metrics", &r);
  /* Every one of them was closed by the guard, and counted. */
  static const char *const reasons[] = {"header_deadline", "body_deadline",
                                        "idle_deadline", "evicted"};
  long total = 0;
  for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++) {
    char series[96];
    snprintf(series, sizeof series,
             "ts_http_connections_closed_total{reason=\"%s\"} ", reasons[i]);
    double v = e2e_metric(r.body, series);
    total += v > 0 ? (long)v : 0;
  }
  TS_CHECK_CASE(total >= (long)n, "metrics after the flood",
                "%ld connections counted as closed by the server, %zu opened",
                total, n);
  e2e_reply_clear(&r);
  TS_CHECK_CASE(e2e_server_alive(s), "slow flood", "the server died");
  stop_expect_zero(s, "after the slow flood");
}

/* ---- a crash or a stop in the middle of a load, then a full resend ---- */

enum {
  LOAD_SENDERS = 8,
  LOAD_BATCHES = 40, /* per sender */
  LOAD_PER_BATCH = 5,
  LOAD_PLAYERS = 16,
  LOAD_RECORDS = LOAD_SENDERS * LOAD_BATCHES * LOAD_PER_BATCH,
};

struct load {
  const struct e2e_server *s;
  json_t *bodies[LOAD_SENDERS][LOAD_BATCHES];
  long status[LOAD_SENDERS][LOAD_BATCHES]; /* 0: no answer */
  atomic_uint acked;
};

struct load_sender {
  struct load *load;
  int index;
};

/* Posts its batches in order until one is not answered 200: as a Pipe's
 * shard does, it would retry that one, and the test resends later. */
static void *load_sender_main(void *arg) {
  struct load_sender *ls = arg;
  struct load *l = ls->load;
  for (int b = 0; b < LOAD_BATCHES; b++) {
    struct e2e_reply r;
    (void)e2e_post_json(l->s, "/v1/stream-records", l->bodies[ls->index][b],
                        &r);
    l->status[ls->index][b] = r.status;
    e2e_reply_clear(&r);
    if (l->status[ls->index][b] != 200)
      break;
    atomic_fetch_add(&l->acked, 1);
  }
  return NULL;
}

/* Game k: player k % LOAD_PLAYERS, score k + 0.25 (decimals must stay
 * exact), a win when k % 3 == 0. */
static void load_build(struct load *l, const char *prefix) {
  int k = 0;
  for (int i = 0; i < LOAD_SENDERS; i++)
    for (int b = 0; b < LOAD_BATCHES; b++) {
      json_t *recs = json_array();
      for (int r = 0; r < LOAD_PER_BATCH; r++, k++) {
        char player[160], score[32];
        snprintf(player, sizeof player, "%s-%d", prefix, k % LOAD_PLAYERS);
        snprintf(score, sizeof score, "%d.25", k);
        json_array_append_new(
            recs, e2e_insert(player, score,
                             k % 3 == 0 ? WIN_BOOL_TRUE : WIN_BOOL_FALSE));
      }
      l->bodies[i][b] = e2e_lambda(recs);
      json_decref(recs);
    }
}

/* Every player's stats equal the tally of LOAD_RECORDS games, exactly. */
static void load_check_totals(const struct e2e_server *s, const char *prefix,
                              const char *case_name) {
  for (int p = 0; p < LOAD_PLAYERS; p++) {
    long games = 0, wins = 0, hundredths = 0;
    for (int k = p; k < LOAD_RECORDS; k += LOAD_PLAYERS) {
      games++;
      wins += k % 3 == 0;
      hundredths += 100L * k + 25;
    }
    char player[160], total[32], avg[32], pct[32];
    snprintf(player, sizeof player, "%s-%d", prefix, p);
    snprintf(total, sizeof total, "%ld.%02ld", hundredths / 100,
             hundredths % 100);
    /* Rounded half away from zero to 2 decimals, in integers. */
    long avg_x100 = (hundredths * 2 + games) / (2 * games);
    long pct_x100 = (wins * 10000 * 2 + games) / (2 * games);
    snprintf(avg, sizeof avg, "%ld.%02ld", avg_x100 / 100, avg_x100 % 100);
    snprintf(pct, sizeof pct, "%ld.%02ld", pct_x100 / 100, pct_x100 % 100);
    struct e2e_expect e = {player, games, wins, total, avg, pct};
    e2e_expect_stats(s, case_name, &e);
  }
}

/* A crash (SIGKILL) or a stop (SIGTERM) while 8 senders post; then a new
 * server on the same store, and every batch sent again: each batch
 * acknowledged before is all duplicates, and every game counts once. */
static void
test_crash_or_stop_under_load_then_full_resend_counts_each_game_once(void) {
  static const struct {
    const char *name;
    int sig;
  } cases[] = {{"SIGKILL under load", SIGKILL},
               {"SIGTERM under load", SIGTERM}};
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    const char *name = cases[c].name;
    char *dir = NULL;
    CU_ASSERT_FATAL(e2e_dir_new(&dir) == TS_OK);
    struct e2e_server_opts opt = {.dir = dir};
    struct e2e_server *s = NULL;
    struct load *l = calloc(1, sizeof *l);
    CU_ASSERT_FATAL(l != NULL);
    char prefix[128];
    e2e_name(prefix, sizeof prefix, cases[c].sig == SIGKILL ? "kill" : "term");
    load_build(l, prefix);
    if (e2e_server_start(&opt, &s) != TS_OK) {
      CU_FAIL("server did not start");
      goto next;
    }
    l->s = s;
    struct load_sender senders[LOAD_SENDERS];
    pthread_t threads[LOAD_SENDERS];
    for (int i = 0; i < LOAD_SENDERS; i++) {
      senders[i] = (struct load_sender){l, i};
      CU_ASSERT_FATAL(pthread_create(&threads[i], NULL, load_sender_main,
                                     &senders[i]) == 0);
    }
    /* In the middle: some batches acknowledged, most not sent yet. */
    for (int i = 0; i < 500 && atomic_load(&l->acked) < LOAD_SENDERS * 4; i++)
      e2e_sleep_ms(10);
    if (cases[c].sig == SIGKILL) {
      e2e_server_kill(s);
    } else {
      int code = -1;
      e2e_server_stop(s, &code);
      TS_CHECK_CASE(code == 0, name, "exit status %d", code);
    }
    s = NULL;
    for (int i = 0; i < LOAD_SENDERS; i++)
      pthread_join(threads[i], NULL);
    unsigned acked = atomic_load(&l->acked);
    TS_CHECK_CASE(acked > 0 && acked < LOAD_SENDERS * LOAD_BATCHES, name,
                  "%u of %d batches acknowledged: not in the middle", acked,
                  LOAD_SENDERS * LOAD_BATCHES);
    /* No answer other than 200, 503 (a stop) or none (a crash). */
    for (int i = 0; i < LOAD_SENDERS; i++)
      for (int b = 0; b < LOAD_BATCHES; b++)
        TS_CHECK_CASE(l->status[i][b] == 200 || l->status[i][b] == 503 ||
                          l->status[i][b] == 0,
                      name, "sender %d batch %d answered %ld", i, b,
                      l->status[i][b]);
    if (e2e_server_start(&opt, &s) != TS_OK) {
      CU_FAIL("server did not start again");
      goto next;
    }
    for (int i = 0; i < LOAD_SENDERS; i++) {
      for (int b = 0; b < LOAD_BATCHES; b++) {
        struct e2e_reply r;
        struct e2e_summary sum;
        char case_name[160];
        snprintf(case_name, sizeof case_name, "%s: resend of %d/%d", name, i,
                 b);
        if (!e2e_ingest(s, case_name, l->bodies[i][b], &r, &sum)) {
          e2e_reply_clear(&r);
          continue;
        }
        TS_CHECK_CASE(sum.received == LOAD_PER_BATCH &&
                          sum.applied + sum.duplicates == LOAD_PER_BATCH,
                      case_name, "received %ld, applied %ld, duplicates %ld",
                      sum.received, sum.applied, sum.duplicates);
        if (l->status[i][b] == 200)
          TS_CHECK_CASE(sum.duplicates == LOAD_PER_BATCH, case_name,
                        "acknowledged before, yet %ld applied again",
                        sum.applied);
        e2e_reply_clear(&r);
      }
    }
    load_check_totals(s, prefix, name);
    stop_expect_zero(s, name);
  next:
    for (int i = 0; i < LOAD_SENDERS; i++)
      for (int b = 0; b < LOAD_BATCHES; b++)
        json_decref(l->bodies[i][b]);
    free(l);
    e2e_dir_remove(dir);
    free(dir);
  }
}

void e2e_suite_lifecycle(void) {
  E2E_SUITE(
      "lifecycle", NULL, NULL, TS_TEST(test_help_prints_usage_and_exits_zero),
      TS_TEST(test_healthcheck_subcommand_exits_zero_only_while_serving),
      TS_TEST(test_flags_configure_the_server_like_env),
      TS_TEST(test_stats_and_applied_event_ids_survive_a_restart),
      TS_TEST(test_sigterm_finishes_in_flight_post_and_exits_zero),
      TS_TEST(
          test_store_that_stops_answering_gives_503_with_retry_after_then_resend_applies),
      TS_TEST(test_stalled_store_starves_neither_health_nor_senders),
      TS_TEST(test_try_the_store_does_not_answer_is_finished_by_a_worker_once),
      TS_TEST(test_unusable_data_path_is_named_at_start),
      TS_TEST(
          test_slow_clients_are_cut_at_their_deadline_and_never_keep_out_gets),
      TS_TEST(
          test_crash_or_stop_under_load_then_full_resend_counts_each_game_once));
}
