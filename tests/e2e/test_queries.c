/* Queries seen from outside: one player's stats, percent-encoded names,
 * paging through every player, parameter errors, health endpoints. */
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "records.h"
#include "suites.h"
#include "tests/unit/unit.h"

static struct e2e_server *srv;

static int up(void) { return e2e_suite_server_up(&srv); }
static int down(void) { return e2e_suite_server_down(&srv); }

static void ingest_ok(const char *case_name, const json_t *body, long n) {
  struct e2e_reply r;
  struct e2e_summary sum;
  if (e2e_ingest(srv, case_name, body, &r, &sum))
    e2e_check_summary(case_name, &sum, n, n, 0, 0, 0);
  e2e_reply_clear(&r);
}

static void test_unknown_player_is_404_problem_json(void) {
  char p[128];
  e2e_name(p, sizeof p, "nobody-ever");
  char *esc = e2e_escape(p), target[512];
  snprintf(target, sizeof target, "/v1/players/%s/stats", esc);
  struct e2e_reply r;
  (void)e2e_get(srv, target, &r);
  e2e_check_problem("unknown player", &r, 404, "player-not-found");
  e2e_reply_clear(&r);
  free(esc);
}

static const char *const odd_names[] = {
    "a/b c",                       /* slash and space */
    "zo\xc3\xab \xf0\x9f\x8e\xae", /* "zoë 🎮" */
    "100% sure",                   /* a literal percent */
    "x+y=z&q?#frag",               /* reserved characters of a URL */
    " padded ",                    /* leading and trailing spaces */
    "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e/..", /* "日本語/.." */
    "semi;colon,comma'quote\"",
};
#define N_ODD (sizeof odd_names / sizeof odd_names[0])

static void test_percent_encoded_utf8_player_names_round_trip(void) {
  char names[N_ODD][256];
  json_t *recs = json_array();
  for (size_t i = 0; i < N_ODD; i++) {
    char tag[128];
    snprintf(tag, sizeof tag, "odd-%zu-%s", i, odd_names[i]);
    e2e_name(names[i], sizeof names[i], tag);
    char score[16];
    snprintf(score, sizeof score, "%zu.5", i + 1);
    json_array_append_new(recs, e2e_insert(names[i], score, WIN_BOOL_TRUE));
  }
  json_t *body = e2e_lambda(recs);
  ingest_ok("odd names", body, (long)N_ODD);
  for (size_t i = 0; i < N_ODD; i++) {
    char score[16];
    snprintf(score, sizeof score, "%zu.5", i + 1);
    struct e2e_expect e = {names[i], 1, 1, score, score, "100"};
    e2e_expect_stats(srv, odd_names[i], &e);
  }
  size_t pages = 0;
  json_t *all = e2e_list_all(srv, 1000, &pages);
  for (size_t i = 0; all && i < N_ODD; i++) {
    size_t seen = 0, k;
    json_t *row;
    json_array_foreach(all, k, row) {
      const char *n = json_string_value(json_object_get(row, "player"));
      if (n && strcmp(n, names[i]) == 0)
        seen++;
    }
    TS_CHECK_CASE(seen == 1, odd_names[i], "listed %zu times, expected once",
                  seen);
  }
  json_decref(all);
  json_decref(body);
  json_decref(recs);
}

static int by_bytes(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The paging contract every store keeps: across the pages of one walk
 * every player appears exactly once, and each of this test's players (each
 * with one game) is among them. SQLite pages in byte order of the name;
 * DynamoDB in the table's scan order, which is no order a client can
 * predict, so there only the "exactly once" part is checked. */
static void test_listing_pages_cover_every_player_exactly_once(void) {
  static const char *const tags[] = {
      "list-A", "list-a", "list-B", "list-\xc3\x84" /* Ä */,      "list-z",
      "list-0", "list- ", "list-~", "list-\xe6\x97\xa5" /* 日 */, "list-a ",
      "list-aa"};
  enum { N = sizeof tags / sizeof tags[0] };
  const bool byte_order = e2e_store_is_sqlite();
  char names[N][128];
  const char *sorted[N];
  json_t *recs = json_array();
  for (size_t i = 0; i < N; i++) {
    e2e_name(names[i], sizeof names[i], tags[i]);
    sorted[i] = names[i];
    char score[16];
    snprintf(score, sizeof score, "%zu", i);
    json_array_append_new(recs, e2e_insert(names[i], score, WIN_ABSENT));
  }
  qsort(sorted, N, sizeof sorted[0], by_bytes);
  json_t *body = e2e_pipes(recs);
  ingest_ok("listing players", body, N);

  static const size_t limits[] = {1, 2, 7, 1000, 0};
  for (size_t l = 0; l < sizeof limits / sizeof limits[0]; l++) {
    char case_name[64];
    snprintf(case_name, sizeof case_name, "limit %zu (%s)", limits[l],
             e2e_store_kind());
    size_t pages = 0;
    json_t *all = e2e_list_all(srv, limits[l], &pages);
    TS_CHECK_CASE(all != NULL, case_name, "paging failed");
    if (!all)
      continue;
    size_t total = json_array_size(all);
    if (limits[l])
      TS_CHECK_CASE(pages >= (total + limits[l] - 1) / limits[l], case_name,
                    "%zu players in %zu pages", total, pages);
    /* Every name at most once: sort a copy of the names and look for
     * neighbours that are equal. */
    const char **seen = calloc(total ? total : 1, sizeof *seen);
    CU_ASSERT_FATAL(seen != NULL);
    const char *prev = NULL;
    size_t n_seen = 0, mine = 0, k;
    size_t found[N] = {0};
    json_t *row;
    json_array_foreach(all, k, row) {
      const char *n = json_string_value(json_object_get(row, "player"));
      TS_CHECK_CASE(n != NULL, case_name, "row %zu has no player", k);
      if (!n)
        continue;
      seen[n_seen++] = n;
      if (byte_order && prev)
        TS_CHECK_CASE(strcmp(prev, n) < 0, case_name,
                      "\"%s\" listed after \"%s\"", n, prev);
      prev = n;
      for (size_t i = 0; i < N; i++) {
        if (strcmp(n, sorted[i]) != 0)
          continue;
        found[i]++;
        long games = json_integer_value(json_object_get(row, "games"));
        TS_CHECK_CASE(games == 1, case_name, "\"%s\" has %ld games", n, games);
        /* In byte order, this test's players come in sorted order. */
        if (byte_order)
          TS_CHECK_CASE(i == mine, case_name, "\"%s\" out of order", n);
        mine++;
      }
    }
    qsort(seen, n_seen, sizeof seen[0], by_bytes);
    for (size_t i = 1; i < n_seen; i++)
      TS_CHECK_CASE(strcmp(seen[i - 1], seen[i]) != 0, case_name,
                    "\"%s\" listed more than once", seen[i]);
    for (size_t i = 0; i < N; i++)
      TS_CHECK_CASE(found[i] == 1, case_name, "\"%s\" listed %zu times",
                    sorted[i], found[i]);
    free(seen);
    json_decref(all);
  }
  json_decref(body);
  json_decref(recs);
}

static void test_listing_default_limit_is_50(void) {
  char tag[64], p[128];
  json_t *recs = json_array();
  for (int i = 0; i < 51; i++) {
    snprintf(tag, sizeof tag, "many-%02d", i);
    json_array_append_new(
        recs, e2e_insert(e2e_name(p, sizeof p, tag), "1", WIN_ABSENT));
  }
  json_t *body = e2e_lambda(recs);
  ingest_ok("51 players", body, 51);
  struct e2e_reply r;
  (void)e2e_get(srv, "/v1/players", &r);
  json_t *players = json_object_get(r.json, "players");
  TS_CHECK_CASE(r.status == 200 && json_array_size(players) == 50 &&
                    json_is_string(json_object_get(r.json, "next_cursor")),
                "no limit", "status %ld, %zu players, next_cursor %s", r.status,
                json_array_size(players),
                json_is_string(json_object_get(r.json, "next_cursor"))
                    ? "string"
                    : "not a string");
  e2e_reply_clear(&r);
  json_decref(body);
  json_decref(recs);
}

static void test_listing_rejects_bad_limit_and_cursor(void) {
  static const struct {
    const char *target, *code;
  } cases[] = {
      {"/v1/players?limit=0", "bad-parameter"},
      {"/v1/players?limit=-1", "bad-parameter"},
      {"/v1/players?limit=1001", "bad-parameter"},
      {"/v1/players?limit=abc", "bad-parameter"},
      {"/v1/players?limit=1.5", "bad-parameter"},
      {"/v1/players?limit=10abc", "bad-parameter"},
      {"/v1/players?limit=99999999999999999999", "bad-parameter"},
      {"/v1/players?cursor=%FF%FE", "bad-cursor"},
      {"/v1/players?limit=5&cursor=not-a-cursor%21%21", "bad-cursor"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct e2e_reply r;
    (void)e2e_get(srv, cases[i].target, &r);
    e2e_check_problem(cases[i].target, &r, 400, cases[i].code);
    e2e_reply_clear(&r);
  }
  /* Good values are accepted. */
  static const char *const good[] = {"/v1/players?limit=1",
                                     "/v1/players?limit=1000"};
  for (size_t i = 0; i < 2; i++) {
    struct e2e_reply r;
    (void)e2e_get(srv, good[i], &r);
    TS_CHECK_CASE(r.status == 200, good[i], "status %ld", r.status);
    e2e_reply_clear(&r);
  }
}

static void test_health_and_readiness_answer_json(void) {
  static const struct {
    const char *target, *status;
  } cases[] = {{"/healthz", "ok"}, {"/readyz", "ready"}};
  for (size_t i = 0; i < 2; i++) {
    struct e2e_reply r;
    (void)e2e_get(srv, cases[i].target, &r);
    const char *st = json_string_value(json_object_get(r.json, "status"));
    TS_CHECK_CASE(r.status == 200 && st && strcmp(st, cases[i].status) == 0,
                  cases[i].target, "status %ld body %.200s", r.status, r.body);
    TS_CHECK_CASE(r.content_type &&
                      strncmp(r.content_type, "application/json", 16) == 0,
                  cases[i].target, "Content-Type %s",
                  r.content_type ? r.content_type : "(none)");
    e2e_reply_clear(&r);
  }
}

void e2e_suite_queries(void) {
  E2E_SUITE("queries", up, down,
            TS_TEST(test_unknown_player_is_404_problem_json),
            TS_TEST(test_percent_encoded_utf8_player_names_round_trip),
            TS_TEST(test_listing_pages_cover_every_player_exactly_once),
            TS_TEST(test_listing_default_limit_is_50),
            TS_TEST(test_listing_rejects_bad_limit_and_cursor),
            TS_TEST(test_health_and_readiness_answer_json));
}
