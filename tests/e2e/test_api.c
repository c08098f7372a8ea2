/* The API as a product, seen from outside: the leaderboard on either
 * store, ETags and 304, HEAD, 405 with Allow, the ingest key, /metrics,
 * and the compiled-in dashboard and contract. */
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "records.h"
#include "suites.h"
#include "tests/unit/unit.h"

static struct e2e_server *srv;

static int up(void) { return e2e_suite_server_up(&srv); }
static int down(void) { return e2e_suite_server_down(&srv); }

/* GET target and the parsed JSON body of a 200 (NULL otherwise). */
static json_t *get_json(const char *target, long *status) {
  struct e2e_reply r;
  (void)e2e_get(srv, target, &r);
  *status = r.status;
  json_t *j = r.status == 200 ? json_incref(r.json) : NULL;
  e2e_reply_clear(&r);
  return j;
}

static double metric_of(const json_t *p, const char *by) {
  return json_number_value(json_object_get(p, by));
}

static void test_leaderboard_ranks_by_each_order_with_ties_by_name(void) {
  /* Five players with designed stats (names share a run prefix, so they
   * sort among themselves as a..e):
   *   a: 2 games 2 wins, scores 10 10   -> wins 2, pct 100, avg 10
   *   b: 3 games 2 wins, scores 1 2 3   -> wins 2, pct 66.67, avg 2
   *   c: 1 game 1 win, score 10         -> wins 1, pct 100, avg 10
   *   d: 4 games 0 wins, scores 5 x4    -> wins 0, pct 0, avg 5
   *   e: 3 games 1 win, 3.33 3.34 3.33  -> wins 1, pct 33.33, avg 3.33 */
  char n[5][128];
  const char *tags[5] = {"lb-a", "lb-b", "lb-c", "lb-d", "lb-e"};
  for (int i = 0; i < 5; i++)
    e2e_name(n[i], sizeof n[i], tags[i]);
  e2e_ingest_all(
      srv, "leaderboard players",
      e2e_records(
          e2e_insert(n[0], "10", WIN_BOOL_TRUE),
          e2e_insert(n[0], "10", WIN_N_ONE), e2e_insert(n[1], "1", WIN_S_TRUE),
          e2e_insert(n[1], "2", WIN_BOOL_TRUE),
          e2e_insert(n[1], "3", WIN_BOOL_FALSE),
          e2e_insert(n[2], "10", WIN_BOOL_TRUE),
          e2e_insert(n[3], "5", WIN_ABSENT), e2e_insert(n[3], "5", WIN_N_ZERO),
          e2e_insert(n[3], "5", WIN_S_FALSE), e2e_insert(n[3], "5", WIN_NULL),
          e2e_insert(n[4], "3.33", WIN_BOOL_TRUE),
          e2e_insert(n[4], "3.34", WIN_BOOL_FALSE),
          e2e_insert(n[4], "3.33", WIN_ABSENT), NULL));
  static const struct {
    const char *by;
    int order[5]; /* expected relative order of a..e */
  } cases[] = {
      {"wins", {0, 1, 2, 4, 3}},
      {"win_percent", {0, 2, 1, 4, 3}},
      {"avg_score", {0, 2, 3, 4, 1}},
      {"games", {3, 1, 4, 0, 2}},
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    char target[128];
    snprintf(target, sizeof target, "/v1/leaderboard?by=%s&limit=1000",
             cases[c].by);
    long status = 0;
    json_t *lb = get_json(target, &status);
    json_t *players = json_object_get(lb, "players");
    TS_CHECK_CASE(status == 200 && json_is_array(players), cases[c].by,
                  "status %ld", status);
    TS_CHECK_CASE(json_is_string(json_object_get(lb, "by")) &&
                      strcmp(json_string_value(json_object_get(lb, "by")),
                             cases[c].by) == 0,
                  cases[c].by, "answer names another order");
    /* The whole board: ranks 1..n, values non-increasing, ties by name. */
    size_t i;
    json_t *p, *prev = NULL;
    int pos[5] = {-1, -1, -1, -1, -1};
    json_array_foreach(players, i, p) {
      TS_CHECK_CASE(json_integer_value(json_object_get(p, "rank")) ==
                        (json_int_t)i + 1,
                    cases[c].by, "rank of row %zu", i);
      const char *name = json_string_value(json_object_get(p, "player"));
      if (prev) {
        double a = metric_of(prev, cases[c].by), b = metric_of(p, cases[c].by);
        const char *pn = json_string_value(json_object_get(prev, "player"));
        TS_CHECK_CASE(a > b || (a == b && strcmp(pn, name) < 0), cases[c].by,
                      "row %zu (%s %g) after (%s %g)", i, name, b, pn, a);
      }
      TS_CHECK_CASE(json_integer_value(json_object_get(p, "games")) > 0,
                    cases[c].by, "a player without games is ranked");
      for (int k = 0; k < 5; k++)
        if (name && strcmp(name, n[k]) == 0)
          pos[k] = (int)i;
      prev = p;
    }
    for (int k = 0; k < 5; k++)
      TS_CHECK_CASE(pos[k] >= 0, cases[c].by, "%s missing", n[k]);
    for (int k = 1; k < 5; k++)
      TS_CHECK_CASE(pos[cases[c].order[k - 1]] < pos[cases[c].order[k]],
                    cases[c].by, "%s ranked after %s", n[cases[c].order[k - 1]],
                    n[cases[c].order[k]]);
    json_decref(lb);
  }
  long status = 0;
  json_t *two = get_json("/v1/leaderboard?limit=2", &status);
  TS_CHECK_CASE(
      status == 200 && json_array_size(json_object_get(two, "players")) == 2 &&
          strcmp(json_string_value(json_object_get(two, "by")), "wins") == 0,
      "limit=2, default order", "status %ld", status);
  json_decref(two);
}

static void test_leaderboard_rejects_unknown_order_and_bad_limit(void) {
  const char *targets[] = {"/v1/leaderboard?by=losses",
                           "/v1/leaderboard?by=", "/v1/leaderboard?limit=0",
                           "/v1/leaderboard?limit=1001",
                           "/v1/leaderboard?limit=ten"};
  for (size_t i = 0; i < sizeof targets / sizeof targets[0]; i++) {
    struct e2e_reply r;
    (void)e2e_get(srv, targets[i], &r);
    e2e_check_problem(targets[i], &r, 400, "bad-parameter");
    e2e_reply_clear(&r);
  }
}

/* GET with optional If-None-Match; returns the status, the ETag in etag. */
static long conditional_get(const char *target, const char *inm, char *etag,
                            size_t cap, size_t *body_len) {
  char header[512];
  const char *headers[2] = {NULL, NULL};
  if (inm) {
    int n = snprintf(header, sizeof header, "If-None-Match: %s", inm);
    CU_ASSERT_FATAL(n > 0 && (size_t)n < sizeof header);
    headers[0] = header;
  }
  struct e2e_request rq = {
      .method = "GET", .target = target, .headers = headers};
  struct e2e_reply r;
  (void)e2e_http(srv, &rq, &r);
  if (!e2e_reply_header(&r, "ETag", etag, cap))
    etag[0] = '\0';
  *body_len = r.body_len;
  long status = r.status;
  e2e_reply_clear(&r);
  return status;
}

static void test_stats_etag_answers_if_none_match_with_304(void) {
  char p[128], target[256], tag[128], tag2[128], weak[160];
  e2e_name(p, sizeof p, "etag");
  e2e_ingest_all(srv, "etag player",
                 e2e_records(e2e_insert(p, "4", WIN_BOOL_TRUE), NULL));
  char *esc = e2e_escape(p);
  snprintf(target, sizeof target, "/v1/players/%s/stats", esc);
  free(esc);
  size_t len = 0;
  long st = conditional_get(target, NULL, tag, sizeof tag, &len);
  TS_CHECK_CASE(st == 200 && tag[0] == '"' && len > 0, "first GET",
                "status %ld ETag %s", st, tag);

  st = conditional_get(target, tag, tag2, sizeof tag2, &len);
  TS_CHECK_CASE(st == 304 && len == 0 && strcmp(tag, tag2) == 0,
                "If-None-Match with the ETag", "status %ld, %zu bytes", st,
                len);
  snprintf(weak, sizeof weak, "\"nope\", W/%s", tag);
  st = conditional_get(target, weak, tag2, sizeof tag2, &len);
  TS_CHECK_CASE(st == 304, "a list naming it weakly", "status %ld", st);
  st = conditional_get(target, "*", tag2, sizeof tag2, &len);
  TS_CHECK_CASE(st == 304, "If-None-Match: *", "status %ld", st);
  st = conditional_get(target, "\"other\"", tag2, sizeof tag2, &len);
  TS_CHECK_CASE(st == 200 && len > 0, "another ETag", "status %ld", st);

  /* A new game changes the stats, so the old ETag no longer matches. */
  e2e_ingest_all(srv, "etag player again",
                 e2e_records(e2e_insert(p, "6", WIN_BOOL_FALSE), NULL));
  st = conditional_get(target, tag, tag2, sizeof tag2, &len);
  TS_CHECK_CASE(st == 200 && len > 0 && strcmp(tag, tag2) != 0,
                "after a change", "status %ld, ETag %s (was %s)", st, tag2,
                tag);
}

static void test_head_answers_like_get_without_a_body(void) {
  char p[128], target[256];
  e2e_name(p, sizeof p, "head");
  e2e_ingest_all(srv, "head player",
                 e2e_records(e2e_insert(p, "1", WIN_BOOL_TRUE), NULL));
  char *esc = e2e_escape(p);
  snprintf(target, sizeof target, "/v1/players/%s/stats", esc);
  free(esc);
  const char *targets[] = {target,     "/v1/players?limit=3", "/v1/leaderboard",
                           "/healthz", "/openapi.yaml",       "/"};
  for (size_t i = 0; i < sizeof targets / sizeof targets[0]; i++) {
    struct e2e_request get = {.method = "GET", .target = targets[i]};
    struct e2e_request head = {.method = "HEAD", .target = targets[i]};
    struct e2e_reply g, h;
    (void)e2e_http(srv, &get, &g);
    (void)e2e_http(srv, &head, &h);
    TS_CHECK_CASE(g.status == 200 && h.status == 200 && h.body_len == 0,
                  targets[i], "GET %ld, HEAD %ld with %zu body bytes", g.status,
                  h.status, h.body_len);
    TS_CHECK_CASE(g.content_type && h.content_type &&
                      strcmp(g.content_type, h.content_type) == 0,
                  targets[i], "Content-Type differs");
    e2e_reply_clear(&g);
    e2e_reply_clear(&h);
  }
  struct e2e_request head = {.method = "HEAD", .target = "/v2/nothing"};
  struct e2e_reply h;
  (void)e2e_http(srv, &head, &h);
  TS_CHECK_CASE(h.status == 404 && h.body_len == 0, "HEAD of an unknown path",
                "status %ld", h.status);
  e2e_reply_clear(&h);
}

/* RFC 9112 6.1/6.3: a request whose framing two headers could give (or one
 * header twice) is refused with 400 and the connection closed, so that a
 * request smuggled after it never runs; a transfer coding other than
 * chunked is a 501 at once. Credentials sent twice are refused too, and a
 * Content-Length over the limit before any body byte is read. */
static void test_ambiguous_framing_is_refused_and_the_connection_closed(void) {
  char victim[128], smuggled[1024], req[2048];
  e2e_name(victim, sizeof victim, "smuggled-victim");
  int body_len = snprintf(
      smuggled, sizeof smuggled,
      "[{\"eventID\":\"smuggled-%s\",\"eventName\":\"INSERT\",\"dynamodb\":"
      "{\"NewImage\":{\"player\":{\"S\":\"%s\"},\"score\":{\"N\":\"1\"}}}}]",
      victim, victim);
  char hidden[1536];
  snprintf(hidden, sizeof hidden,
           "POST /v1/stream-records HTTP/1.1\r\nHost: t\r\n"
           "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
           body_len, smuggled);
#define HEAD                                                                   \
  "POST /v1/stream-records HTTP/1.1\r\nHost: t\r\n"                            \
  "Content-Type: application/json\r\n"
  static const struct {
    const char *name, *headers, *body;
    bool hide;          /* the hidden request follows the body */
    const char *status; /* the status line's start */
    bool closes;
  } cases[] = {
      {"Content-Length and chunked",
       HEAD "Content-Length: 5\r\n"
            "Transfer-Encoding: chunked\r\n\r\n",
       "0\r\n\r\n", true, "HTTP/1.1 400", true},
      {"two Content-Length values",
       HEAD "Content-Length: 2\r\nContent-Length: 40\r\n\r\n", "[]", true,
       "HTTP/1.1 400", true},
      {"Content-Length twice, same value",
       HEAD "Content-Length: 2\r\nContent-Length: 2\r\n\r\n", "[]", true,
       "HTTP/1.1 400", true},
      {"Transfer-Encoding twice",
       HEAD "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
       "0\r\n\r\n", true, "HTTP/1.1 400", true},
      {"unknown transfer coding", HEAD "Transfer-Encoding: gzip\r\n\r\n", "x",
       false, "HTTP/1.1 501", true},
      {"a coding before chunked",
       HEAD "Transfer-Encoding: gzip, chunked\r\n\r\n", "0\r\n\r\n", true,
       "HTTP/1.1 501", true},
      {"x-api-key twice",
       HEAD "x-api-key: a\r\nx-api-key: b\r\n"
            "Content-Length: 2\r\n\r\n",
       "[]", true, "HTTP/1.1 400", true},
      /* Refused from the header alone: the client is not made to send
       * 7 MiB to learn that. */
      {"Content-Length over 6 MiB, body not sent",
       HEAD "Content-Length: 7340032\r\n\r\n", "", false, "HTTP/1.1 413", true},
      {"chunked alone (control)", HEAD "Transfer-Encoding: chunked\r\n\r\n",
       "2\r\n[]\r\n0\r\n\r\n", false, "HTTP/1.1 200", false},
  };
#undef HEAD
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    int n = snprintf(req, sizeof req, "%s%s%s", cases[i].headers, cases[i].body,
                     cases[i].hide ? hidden : "");
    size_t got_len = 0;
    bool closed = false;
    char *got = e2e_raw_exchange(srv, req, (size_t)n, 1500, &got_len, &closed);
    TS_CHECK_CASE(
        got && strncmp(got, cases[i].status, strlen(cases[i].status)) == 0,
        cases[i].name, "answer %.120s", got ? got : "(no connection)");
    TS_CHECK_CASE(closed == cases[i].closes, cases[i].name, "the connection %s",
                  closed ? "was closed" : "stayed open");
    if (cases[i].closes)
      TS_CHECK_CASE(got && strstr(got, "Connection: close"), cases[i].name,
                    "no Connection: close");
    TS_CHECK_CASE(!got || got_len < 2 || !strstr(got + 1, "HTTP/1.1 "),
                  cases[i].name,
                  "a second answer came back: the hidden request ran");
    free(got);
  }
  long status = 0;
  json_t *stats = e2e_fetch_stats(srv, victim, &status);
  TS_CHECK_CASE(status == 404, "the hidden request", "the victim exists: %ld",
                status);
  json_decref(stats);
}

/* Every answer carries X-Request-Id: the client's (a load balancer's) when
 * it is a sane token, else a new one; every log line written while serving
 * the request names it, whichever layer writes it. */
static void test_request_id_is_echoed_or_made_and_in_the_logs(void) {
  const char *env[] = {"TS_LOG_LEVEL=debug", NULL};
  struct e2e_server_opts opt = {.extra_env = env};
  struct e2e_server *s = NULL;
  CU_ASSERT_FATAL(e2e_server_start(&opt, &s) == TS_OK);
  char long_id[200];
  memset(long_id, 'a', sizeof long_id - 1);
  long_id[sizeof long_id - 1] = '\0';
  char long_header[256];
  snprintf(long_header, sizeof long_header, "X-Request-Id: %s", long_id);
  static const struct {
    const char *name, *header, *want; /* want NULL: a new id */
  } cases[] = {
      {"given", "X-Request-Id: trace-me-42", "trace-me-42"},
      {"absent", NULL, NULL},
      {"with a space", "X-Request-Id: two words", NULL},
      {"too long", NULL, NULL}, /* long_header */
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const char *hdrs[] = {i == 3 ? long_header : cases[i].header, NULL};
    struct e2e_request rq = {.method = "GET",
                             .target = "/v1/players/request-id-probe/stats",
                             .headers = hdrs[0] ? hdrs : NULL};
    struct e2e_reply r;
    (void)e2e_http(s, &rq, &r);
    char got[256] = "";
    bool has = e2e_reply_header(&r, "X-Request-Id", got, sizeof got);
    bool fresh = strlen(got) == 16 && strspn(got, "0123456789abcdef") == 16;
    TS_CHECK_CASE(has &&
                      (cases[i].want ? strcmp(got, cases[i].want) == 0 : fresh),
                  cases[i].name, "X-Request-Id %s", has ? got : "(none)");
    e2e_reply_clear(&r);
  }
  /* The request's own line is written once the answer is sent. */
  TS_CHECK_CASE(
      e2e_server_log_has(s, "\"request_id\":\"trace-me-42\"", NULL, 2000),
      "the log", "no line names the request id trace-me-42");
  int code = -1;
  e2e_server_stop(s, &code);
}

static void test_wrong_method_is_405_with_allow(void) {
  static const struct {
    const char *method, *target, *allow;
  } cases[] = {
      {"DELETE", "/v1/players/x/stats", "GET, HEAD"},
      {"PUT", "/v1/players", "GET, HEAD"},
      {"GET", "/v1/stream-records", "POST"},
      {"POST", "/v1/leaderboard", "GET, HEAD"},
      {"PATCH", "/healthz", "GET, HEAD"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct e2e_request rq = {.method = cases[i].method,
                             .target = cases[i].target};
    struct e2e_reply r;
    (void)e2e_http(srv, &rq, &r);
    e2e_check_problem(cases[i].target, &r, 405, "method-not-allowed");
    char allow[64];
    TS_CHECK_CASE(e2e_reply_header(&r, "Allow", allow, sizeof allow) &&
                      strcmp(allow, cases[i].allow) == 0,
                  cases[i].target, "Allow is not \"%s\"", cases[i].allow);
    e2e_reply_clear(&r);
  }
}

static long post_with(struct e2e_server *s, const char *header,
                      const json_t *body, char *challenge, size_t cap) {
  char *text = json_dumps(body, JSON_COMPACT);
  const char *headers[3] = {"Content-Type: application/json", header, NULL};
  struct e2e_request rq = {.method = "POST",
                           .target = "/v1/stream-records",
                           .headers = headers,
                           .body = text,
                           .body_len = strlen(text)};
  struct e2e_reply r;
  (void)e2e_http(s, &rq, &r);
  if (!e2e_reply_header(&r, "WWW-Authenticate", challenge, cap))
    challenge[0] = '\0';
  long status = r.status;
  if (status == 401)
    e2e_check_problem("401", &r, 401, "unauthorized");
  e2e_reply_clear(&r);
  free(text);
  return status;
}

static void test_ingest_key_must_match_whole_and_exactly(void) {
  const char *env[] = {"TS_INGEST_API_KEY=k3y-for-tests", NULL};
  struct e2e_server_opts opt = {.extra_env = env};
  struct e2e_server *s = NULL;
  CU_ASSERT_FATAL(e2e_server_start(&opt, &s) == TS_OK);
  char p[128], challenge[128];
  e2e_name(p, sizeof p, "keyed");
  json_t *rec = e2e_insert(p, "2", WIN_BOOL_TRUE);
  static const struct {
    const char *name, *header;
    long status;
  } cases[] = {
      {"no key", NULL, 401},
      {"wrong x-api-key", "x-api-key: nope", 401},
      {"key with a suffix", "x-api-key: k3y-for-testsX", 401},
      /* A check that compared only the shorter length let these in. */
      {"empty x-api-key", "x-api-key;", 401},
      {"a prefix of the key", "x-api-key: k3y", 401},
      {"the key one byte short", "x-api-key: k3y-for-test", 401},
      {"the key one byte off", "x-api-key: k3y-for-tesTs", 401},
      /* pipe: */
      {"Basic with an empty password", "Authorization: Basic cGlwZTo=", 401},
      /* pipe:k3y */
      {"Basic with a prefix of the key",
       "Authorization: Basic cGlwZTprM3k=", 401},
      /* pipe:k3y-for-tesTs */
      {"Basic one byte off", "Authorization: Basic cGlwZTprM3ktZm9yLXRlc1Rz",
       401},
      /* pipe:nope */
      {"wrong Basic password", "Authorization: Basic cGlwZTpub3Bl", 401},
      /* only padding: once made the server read off its stack (fuzz) */
      {"Basic of padding only", "Authorization: Basic ====", 401},
      {"Basic with too much padding", "Authorization: Basic A=======", 401},
      {"Basic without a colon", "Authorization: Basic azN5", 401},
      {"x-api-key", "x-api-key: k3y-for-tests", 200},
      /* pipe:k3y-for-tests */
      {"Basic password", "Authorization: Basic cGlwZTprM3ktZm9yLXRlc3Rz", 200},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    long st = post_with(s, cases[i].header, rec, challenge, sizeof challenge);
    TS_CHECK_CASE(st == cases[i].status, cases[i].name, "status %ld", st);
    if (cases[i].status == 401)
      TS_CHECK_CASE(strncmp(challenge, "Basic", 5) == 0, cases[i].name,
                    "no WWW-Authenticate: Basic challenge");
  }
  TS_CHECK_CASE(e2e_server_alive(s), "after the bad credentials",
                "the server died");
  /* Only ingestion is guarded: reads stay open. The record counted once
   * (the second accepted POST was a duplicate). */
  struct e2e_expect want = {p, 1, 1, "2", "2", "100"};
  e2e_expect_stats(s, "read without a key", &want);
  json_decref(rec);
  int code = -1;
  e2e_server_stop(s, &code);
  CU_ASSERT_EQUAL(code, 0);
}

/* The value of a sample line `name{labels} value` in a metrics text. */
static double sample(const char *text, const char *series) {
  const char *p = text;
  size_t len = strlen(series);
  while ((p = strstr(p, series)) != NULL) {
    if ((p == text || p[-1] == '\n') && p[len] == ' ')
      return strtod(p + len + 1, NULL);
    p += len;
  }
  return -1;
}

static char *metrics_text(void) {
  struct e2e_reply r;
  (void)e2e_get(srv, "/metrics", &r);
  TS_CHECK_CASE(r.status == 200 && r.content_type &&
                    strncmp(r.content_type, "text/plain; version=0.0.4", 25) ==
                        0,
                "/metrics", "status %ld, Content-Type %s", r.status,
                r.content_type ? r.content_type : "(none)");
  char *text = r.body ? strdup(r.body) : strdup("");
  e2e_reply_clear(&r);
  return text;
}

static void test_metrics_count_records_and_requests(void) {
  const char *applied = "ts_ingest_records_total{outcome=\"applied\"}";
  const char *dups = "ts_ingest_records_total{outcome=\"duplicate\"}";
  const char *ok = "ts_http_requests_total{route=\"ingest\",status=\"200\"}";
  char *before = metrics_text();
  char p[128];
  e2e_name(p, sizeof p, "metrics");
  json_t *recs = e2e_records(e2e_insert(p, "1", WIN_BOOL_TRUE),
                             e2e_insert(p, "2", WIN_ABSENT), NULL);
  json_incref(recs);
  e2e_ingest_all(srv, "metrics batch", recs);
  json_t *body = e2e_lambda(recs); /* the same records again */
  json_decref(recs);
  struct e2e_reply r;
  struct e2e_summary sum;
  if (e2e_ingest(srv, "metrics resend", body, &r, &sum))
    e2e_check_summary("metrics resend", &sum, 2, 0, 2, 0, 0);
  e2e_reply_clear(&r);
  json_decref(body);
  /* The suite's server serves only this suite, one test at a time. A
   * request is counted once its answer is sent, which may be a moment
   * after the client has it: wait for the count a little. */
  double o0 = sample(before, ok), o1 = -1;
  char *after = NULL;
  for (int i = 0; i < 50; i++) {
    free(after);
    after = metrics_text();
    o1 = sample(after, ok);
    if (o1 - (o0 < 0 ? 0 : o0) >= 2)
      break;
    e2e_sleep_ms(20);
  }
  double a0 = sample(before, applied), a1 = sample(after, applied);
  double d0 = sample(before, dups), d1 = sample(after, dups);
  TS_CHECK_CASE(a1 - a0 == 2 && d1 - d0 == 2, "record outcomes",
                "applied %g -> %g, duplicate %g -> %g", a0, a1, d0, d1);
  TS_CHECK_CASE(o1 - (o0 < 0 ? 0 : o0) == 2, "ingest 200s", "%g -> %g", o0, o1);
  TS_CHECK_CASE(strstr(after, "# TYPE ts_http_request_duration_seconds "
                              "histogram") != NULL &&
                    strstr(after, "ts_build_info{version=") != NULL,
                "exposition", "histogram or build info missing");
  free(before);
  free(after);
}

/* A misconfigured stream shows: a missing image is rejected with the
 * record's StreamViewType in the reason, and MODIFYs / REMOVEs without an
 * OldImage are counted in /metrics for an operator to alert on. */
/* ts_http_connections_open follows the connections a client holds open:
 * an operator sees a connection flood before it hurts. */
static void test_open_connections_are_a_gauge(void) {
  static const char probe[] = "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n";
  char *text = metrics_text();
  double before = sample(text, "ts_http_connections_open");
  free(text);
  int fds[3];
  for (int i = 0; i < 3; i++) {
    fds[i] = e2e_raw_connect(srv);
    size_t n = 0;
    bool closed = false;
    char *got = fds[i] >= 0 ? e2e_raw_ask(fds[i], probe, sizeof probe - 1, 5000,
                                          &n, &closed)
                            : NULL;
    TS_CHECK_CASE(got && strncmp(got, "HTTP/1.1 200", 12) == 0 && !closed,
                  "a connection held open", "%.80s", got ? got : "(none)");
    free(got);
  }
  text = metrics_text();
  double held = sample(text, "ts_http_connections_open");
  free(text);
  for (int i = 0; i < 3; i++)
    if (fds[i] >= 0)
      close(fds[i]);
  double after = held;
  for (int i = 0; i < 50 && after > held - 3; i++) {
    e2e_sleep_ms(20);
    text = metrics_text();
    after = sample(text, "ts_http_connections_open");
    free(text);
  }
  /* Other connections may close meanwhile: only the three held (and the
   * one asking) are sure to be counted, and to go. */
  TS_CHECK_CASE(before >= 0 && held >= 4 && after <= held - 3,
                "ts_http_connections_open",
                "before %.0f, with 3 held %.0f, after closing them %.0f",
                before, held, after);
}

static void test_stream_view_type_is_named_and_missing_images_counted(void) {
  const char *mod = "ts_ingest_modify_without_old_image_total";
  const char *rem = "ts_ingest_remove_without_old_image_total";
  char *before = metrics_text();
  char p[128];
  e2e_name(p, sizeof p, "view-type");
  struct e2e_image im = {p, "4", WIN_BOOL_TRUE, 0, 0};
  json_t *keys_only = e2e_record("INSERT", NULL, NULL, NULL, NULL);
  json_t *modify = e2e_record("MODIFY", NULL, NULL, NULL, &im);
  json_t *remove = e2e_record("REMOVE", NULL, NULL, NULL, NULL);
  json_object_set_new(json_object_get(keys_only, "dynamodb"), "StreamViewType",
                      json_string("KEYS_ONLY"));
  json_object_set_new(json_object_get(modify, "dynamodb"), "StreamViewType",
                      json_string("NEW_IMAGE"));
  json_t *recs = e2e_records(keys_only, modify, remove, NULL);
  json_t *body = e2e_lambda(recs);
  struct e2e_reply r;
  struct e2e_summary sum;
  if (e2e_ingest(srv, "stream view types", body, &r, &sum)) {
    e2e_check_summary("stream view types", &sum, 3, 1, 0, 1, 1);
    const char *reason = json_string_value(
        json_object_get(json_array_get(sum.rejected_list, 0), "reason"));
    TS_CHECK_CASE(reason && strstr(reason, "KEYS_ONLY") &&
                      strstr(reason, "NewImage"),
                  "INSERT from a KEYS_ONLY stream",
                  "the reason does not name the view type: %s",
                  reason ? reason : "(none)");
  }
  e2e_reply_clear(&r);
  json_decref(body);
  json_decref(recs);
  char *after = metrics_text();
  double m0 = sample(before, mod), m1 = sample(after, mod);
  double r0 = sample(before, rem), r1 = sample(after, rem);
  TS_CHECK_CASE(m1 - m0 == 1 && r1 - r0 == 1, "metrics",
                "MODIFY without OldImage %g -> %g, REMOVE %g -> %g", m0, m1, r0,
                r1);
  free(before);
  free(after);
}

static void test_dashboard_and_contract_are_served(void) {
  struct e2e_reply r;
  (void)e2e_get(srv, "/", &r);
  TS_CHECK_CASE(r.status == 200 && r.content_type &&
                    strncmp(r.content_type, "text/html", 9) == 0 && r.body &&
                    strstr(r.body, "<title>") != NULL,
                "GET /", "status %ld", r.status);
  e2e_reply_clear(&r);
  (void)e2e_get(srv, "/openapi.yaml", &r);
  TS_CHECK_CASE(r.status == 200 && r.content_type &&
                    strncmp(r.content_type, "application/yaml", 16) == 0 &&
                    r.body && strncmp(r.body, "openapi: 3.1", 12) == 0,
                "GET /openapi.yaml", "status %ld", r.status);
  e2e_reply_clear(&r);
}

/* A record is applied whole or not at all: a MODIFY that moves a game away
 * from a player who never had it is rejected, and the new player does not
 * get the game either (else the stats would count a rejected record). */
static void test_rejected_modify_applies_to_neither_player(void) {
  char ghost[128], newp[128];
  e2e_name(ghost, sizeof ghost, "ghost");
  e2e_name(newp, sizeof newp, "newp");
  struct e2e_image old_img = {
      .player = ghost, .score = "5", .winner = WIN_BOOL_TRUE};
  struct e2e_image new_img = {
      .player = newp, .score = "7", .winner = WIN_BOOL_TRUE};
  json_t *recs = e2e_records(e2e_modify(&old_img, &new_img), NULL);
  json_t *body = e2e_lambda(recs);
  json_decref(recs);
  struct e2e_reply r;
  struct e2e_summary sum;
  if (e2e_ingest(srv, "moving MODIFY from a ghost", body, &r, &sum)) {
    e2e_check_summary("moving MODIFY from a ghost", &sum, 1, 0, 0, 0, 1);
    const char *reason = json_string_value(
        json_object_get(json_array_get(sum.rejected_list, 0), "reason"));
    TS_CHECK_CASE(reason && strstr(reason, "below zero") != NULL,
                  "moving MODIFY from a ghost", "reason %s",
                  reason ? reason : "(none)");
  }
  e2e_reply_clear(&r);
  json_decref(body);
  const char *players[] = {ghost, newp};
  for (size_t i = 0; i < 2; i++) {
    long status = 0;
    json_t *got = e2e_fetch_stats(srv, players[i], &status);
    TS_CHECK_CASE(status == 404, players[i],
                  "status %ld: the rejected record "
                  "was applied",
                  status);
    json_decref(got);
  }
}

void e2e_suite_api(void) {
  E2E_SUITE(
      "api", up, down,
      TS_TEST(test_leaderboard_ranks_by_each_order_with_ties_by_name),
      TS_TEST(test_leaderboard_rejects_unknown_order_and_bad_limit),
      TS_TEST(test_stats_etag_answers_if_none_match_with_304),
      TS_TEST(test_head_answers_like_get_without_a_body),
      TS_TEST(test_ambiguous_framing_is_refused_and_the_connection_closed),
      TS_TEST(test_request_id_is_echoed_or_made_and_in_the_logs),
      TS_TEST(test_wrong_method_is_405_with_allow),
      TS_TEST(test_ingest_key_must_match_whole_and_exactly),
      TS_TEST(test_metrics_count_records_and_requests),
      TS_TEST(test_open_connections_are_a_gauge),
      TS_TEST(test_stream_view_type_is_named_and_missing_images_counted),
      TS_TEST(test_dashboard_and_contract_are_served),
      TS_TEST(test_rejected_modify_applies_to_neither_player));
}
