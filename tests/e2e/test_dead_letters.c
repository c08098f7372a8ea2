/* Dead letters seen from outside: GET /v1/dead-letters (the ingest key,
 * paging) and POST /v1/dead-letters/replay after a configuration fix
 * (exactly-once, selection by ids and reason, concurrent replays).
 *
 * Every test has a store of its own (a SQLite folder, or a private
 * dynalite with the tables made), so that the dead letters it lists are
 * only its own, and restarts the server on that same store with another
 * configuration, the way an operator fixes TS_ATTR_PLAYER. */
#include <CUnit/CUnit.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "records.h"
#include "suites.h"
#include "tests/unit/unit.h"

/* The source table's player attribute is `player`; a server started with
 * this setting rejects every record (the typical misconfiguration). */
static const char *const wrong_player_attr[] = {"TS_ATTR_PLAYER=who", NULL};

#define REPLAY "/v1/dead-letters/replay"

/* ---- a store of the test's own ---- */

struct fixture {
  char *dir;                /* sqlite */
  struct e2e_dynalite *dyn; /* dynamodb */
};

static bool fixture_open(struct fixture *f) {
  memset(f, 0, sizeof *f);
  if (e2e_store_is_sqlite())
    return e2e_dir_new(&f->dir) == TS_OK;
  if (e2e_dynalite_start(&f->dyn) != TS_OK)
    return false;
  int code = -1;
  bool made = e2e_create_tables(e2e_dynalite_endpoint(f->dyn), &code) == TS_OK;
  TS_CHECK_CASE(made, "create-table on a private dynalite", "exit status %d",
                code);
  return made;
}

/* A server on the fixture's store (the same data every time); extra: more
 * NAME=value settings (at most 6), may be NULL. */
static struct e2e_server *fixture_start(struct fixture *f,
                                        const char *const *extra) {
  struct e2e_server *s = NULL;
  enum ts_status st;
  if (f->dyn) {
    st = e2e_server_start_on(f->dyn, extra, &s);
  } else {
    struct e2e_server_opts opt = {.dir = f->dir, .extra_env = extra};
    st = e2e_server_start(&opt, &s);
  }
  TS_CHECK_CASE(st == TS_OK, "server start", "status %d", (int)st);
  return st == TS_OK ? s : NULL;
}

static void server_stop(struct e2e_server *s) {
  if (!s)
    return;
  int code = -1;
  e2e_server_stop(s, &code);
  TS_CHECK_CASE(code == 0, "server stop", "exit code %d", code);
}

static void fixture_close(struct fixture *f) {
  e2e_dynalite_stop(f->dyn);
  if (f->dir)
    e2e_dir_remove(f->dir);
  free(f->dir);
}

/* ---- the games: each record, and the stats they make ---- */

#define N_PLAYERS 4

static const struct game {
  int player;
  const char *score;
  enum e2e_win win;
} games[] = {
    {0, "10.5", WIN_BOOL_TRUE}, {0, "2.25", WIN_ABSENT},
    {0, "7", WIN_N_ONE},        {1, "1.1", WIN_BOOL_FALSE},
    {1, "2.2", WIN_S_TRUE},     {2, "0.125", WIN_BOOL_TRUE},
    {3, "100", WIN_ABSENT},     {3, "200", WIN_ABSENT},
    {3, "300", WIN_NULL},       {3, "400", WIN_ABSENT},
};
#define N_GAMES (sizeof games / sizeof games[0])

/* What every game above makes, worked out by hand. */
static const struct {
  long games, wins;
  const char *total, *avg, *pct;
} totals[N_PLAYERS] = {
    {3, 2, "19.75", "6.58", "66.67"}, /* 19.75 / 3 = 6.583.. */
    {2, 1, "3.3", "1.65", "50"},
    {1, 1, "0.125", "0.13", "100"}, /* half away from zero */
    {4, 0, "1000", "250", "0"},
};

struct players {
  char name[N_PLAYERS][128];
};

static void players_name(struct players *p, const char *tag) {
  for (int i = 0; i < N_PLAYERS; i++) {
    char t[96];
    snprintf(t, sizeof t, "dl-%s-%d", tag, i);
    e2e_name(p->name[i], sizeof p->name[i], t);
  }
}

/* One record per game (new references in an array). */
static json_t *game_records(const struct players *p) {
  json_t *recs = json_array();
  for (size_t i = 0; i < N_GAMES; i++)
    json_array_append_new(recs, e2e_insert(p->name[games[i].player],
                                           games[i].score, games[i].win));
  return recs;
}

/* Asserts each player's stats are exactly what every game makes, counted
 * once. */
static void expect_totals(const struct e2e_server *s, const char *case_name,
                          const struct players *p) {
  for (int i = 0; i < N_PLAYERS; i++) {
    struct e2e_expect e = {p->name[i],      totals[i].games, totals[i].wins,
                           totals[i].total, totals[i].avg,   totals[i].pct};
    e2e_expect_stats(s, case_name, &e);
  }
}

/* Asserts no player has stats yet. */
static void expect_no_stats(const struct e2e_server *s, const char *case_name,
                            const struct players *p) {
  for (int i = 0; i < N_PLAYERS; i++) {
    long status = 0;
    json_t *st = e2e_fetch_stats(s, p->name[i], &status);
    TS_CHECK_CASE(status == 404, case_name, "player %d: status %ld", i, status);
    json_decref(st);
  }
}

/* ---- requests ---- */

/* Walks GET /v1/dead-letters?limit=limit[&reason=] page by page; asserts
 * each page is 200, holds at most limit items, and that no id comes twice.
 * Returns every item in order (new reference), NULL when a page failed. */
static json_t *list_all(const struct e2e_server *s, size_t limit,
                        const char *reason, size_t *pages) {
  json_t *all = json_array();
  char *cursor = NULL, *esc_reason = reason ? e2e_escape(reason) : NULL;
  *pages = 0;
  for (;;) {
    char target[2048];
    int len =
        snprintf(target, sizeof target, "/v1/dead-letters?limit=%zu", limit);
    if (esc_reason)
      len += snprintf(target + len, sizeof target - (size_t)len, "&reason=%s",
                      esc_reason);
    if (cursor)
      snprintf(target + len, sizeof target - (size_t)len, "&cursor=%s", cursor);
    struct e2e_reply r;
    (void)e2e_get(s, target, &r);
    json_t *items = json_object_get(r.json, "items");
    json_t *next = json_object_get(r.json, "next_cursor");
    bool ok = r.status == 200 && json_is_array(items) &&
              json_array_size(items) <= limit &&
              (json_is_null(next) || json_is_string(next));
    TS_CHECK_CASE(ok, target, "status %ld body %.300s", r.status, r.body);
    free(cursor);
    cursor = NULL;
    if (!ok) {
      e2e_reply_clear(&r);
      json_decref(all);
      all = NULL;
      break;
    }
    (*pages)++;
    json_array_extend(all, items);
    if (json_is_string(next))
      cursor = strdup(json_string_value(next));
    e2e_reply_clear(&r);
    if (!cursor || *pages > 1000)
      break;
  }
  free(cursor);
  free(esc_reason);
  for (size_t i = 0; all && i < json_array_size(all); i++)
    for (size_t k = 0; k < i; k++) {
      const char *a =
          json_string_value(json_object_get(json_array_get(all, i), "id"));
      const char *b =
          json_string_value(json_object_get(json_array_get(all, k), "id"));
      TS_CHECK_CASE(a && b && strcmp(a, b) != 0, "listing", "id %s twice",
                    a ? a : "(none)");
    }
  return all;
}

/* POST /v1/dead-letters/replay with body (NULL: no body at all, no
 * Content-Type); extra_header may be NULL. */
static void replay(const struct e2e_server *s, const char *body,
                   const char *extra_header, struct e2e_reply *r) {
  const char *hdrs[3] = {NULL};
  size_t n = 0;
  if (body)
    hdrs[n++] = "Content-Type: application/json";
  if (extra_header)
    hdrs[n++] = extra_header;
  struct e2e_request rq = {.method = "POST",
                           .target = REPLAY,
                           .headers = hdrs,
                           .body = body,
                           .body_len = body ? strlen(body) : 0,
                           .no_content_type = !body};
  (void)e2e_http(s, &rq, r);
}

static long count_of(const struct e2e_reply *r, const char *name) {
  json_t *v = json_object_get(r->json, name);
  return json_is_integer(v) ? (long)json_integer_value(v) : -1;
}

/* Asserts a 200 replay answer with these counts (still: the length of
 * still_rejected). */
static void check_replay(const char *case_name, const struct e2e_reply *r,
                         long selected, long applied, long duplicates,
                         size_t still, bool more) {
  json_t *list = json_object_get(r->json, "still_rejected");
  bool ok = r->status == 200 && count_of(r, "selected") == selected &&
            count_of(r, "applied") == applied &&
            count_of(r, "duplicates") == duplicates &&
            count_of(r, "skipped") == 0 && json_is_array(list) &&
            json_array_size(list) == still &&
            json_is_boolean(json_object_get(r->json, "more")) &&
            json_is_true(json_object_get(r->json, "more")) == more;
  TS_CHECK_CASE(ok, case_name,
                "want selected %ld applied %ld duplicates %ld still %zu more "
                "%d; got status %ld %.400s",
                selected, applied, duplicates, still, more, r->status, r->body);
}

/* The id of the listed dead letter whose eventID is event_id, or NULL. */
static const char *id_of(const json_t *items, const char *event_id) {
  for (size_t i = 0; i < json_array_size(items); i++) {
    const json_t *it = json_array_get(items, i);
    const char *e = json_string_value(json_object_get(it, "eventID"));
    if (e && strcmp(e, event_id) == 0)
      return json_string_value(json_object_get(it, "id"));
  }
  return NULL;
}

/* Posts the records (an array) as one batch to a server that rejects them
 * all. */
static void post_all_rejected(const struct e2e_server *s, const char *case_name,
                              json_t *recs) {
  size_t n = json_array_size(recs);
  json_t *body = e2e_lambda(recs);
  e2e_ingest_expect(s, case_name, body, (long)n, 0, 0, 0, n);
  json_decref(body);
}

/* ---- tests ---- */

static void test_listing_and_replay_need_the_ingest_key_when_one_is_set(void) {
  struct fixture f;
  CU_ASSERT_FATAL(fixture_open(&f));
  const char *env[] = {"TS_INGEST_API_KEY=k3y-for-dead-letters", NULL};
  struct e2e_server *s = fixture_start(&f, env);
  static const struct {
    const char *name, *header;
    long status;
  } cases[] = {
      {"no key", NULL, 401},
      {"wrong x-api-key", "x-api-key: nope", 401},
      {"a prefix of the key", "x-api-key: k3y-for-dead", 401},
      {"wrong Basic password", "Authorization: Basic b3BzOm5vcGU=", 401},
      {"the x-api-key", "x-api-key: k3y-for-dead-letters", 200},
  };
  for (size_t i = 0; s && i < sizeof cases / sizeof cases[0]; i++) {
    const char *hdrs[] = {cases[i].header, NULL};
    struct e2e_request rq = {.method = "GET",
                             .target = "/v1/dead-letters",
                             .headers = cases[i].header ? hdrs : NULL};
    struct e2e_reply r;
    char what[128];
    snprintf(what, sizeof what, "GET, %s", cases[i].name);
    (void)e2e_http(s, &rq, &r);
    if (cases[i].status == 401)
      e2e_check_problem(what, &r, 401, "unauthorized");
    else
      TS_CHECK_CASE(r.status == 200, what, "status %ld", r.status);
    e2e_reply_clear(&r);
    snprintf(what, sizeof what, "replay, %s", cases[i].name);
    replay(s, NULL, cases[i].header, &r);
    if (cases[i].status == 401)
      e2e_check_problem(what, &r, 401, "unauthorized");
    else
      check_replay(what, &r, 0, 0, 0, 0, false);
    e2e_reply_clear(&r);
  }
  server_stop(s);
  fixture_close(&f);
}

static void
test_records_rejected_for_a_wrong_attribute_are_each_listed_once(void) {
  struct fixture f;
  CU_ASSERT_FATAL(fixture_open(&f));
  struct e2e_server *s = fixture_start(&f, wrong_player_attr);
  struct players p;
  players_name(&p, "listed");
  json_t *recs = game_records(&p);
  if (s)
    post_all_rejected(s, "every record with the wrong attribute", recs);
  /* Paged by 3 (4 pages for 10), by the maximum, and by the default. */
  static const size_t limits[] = {3, 100, 50};
  for (size_t l = 0; s && l < sizeof limits / sizeof limits[0]; l++) {
    size_t pages = 0;
    json_t *items = list_all(s, limits[l], NULL, &pages);
    char what[64];
    snprintf(what, sizeof what, "limit %zu", limits[l]);
    TS_CHECK_CASE(items && json_array_size(items) == N_GAMES &&
                      pages == (N_GAMES + limits[l] - 1) / limits[l],
                  what, "%zu items on %zu pages",
                  items ? json_array_size(items) : 0, pages);
    for (size_t i = 0; items && i < json_array_size(recs); i++) {
      const json_t *rec = json_array_get(recs, i);
      const json_t *it = NULL;
      for (size_t k = 0; k < json_array_size(items); k++) {
        const json_t *c = json_array_get(items, k);
        if (json_equal(json_object_get(c, "eventID"),
                       json_object_get(rec, "eventID")))
          it = c;
      }
      const char *reason = json_string_value(json_object_get(it, "reason"));
      const char *at = json_string_value(json_object_get(it, "received_at"));
      TS_CHECK_CASE(
          it && json_equal(json_object_get(it, "record"), rec) && reason &&
              strstr(reason, "who") && at && e2e_is_rfc3339(at) &&
              json_equal(json_object_get(it, "itemIdentifier"),
                         json_object_get(json_object_get(rec, "dynamodb"),
                                         "SequenceNumber")),
          what, "record %zu (%s) not listed as sent, with its reason", i,
          e2e_record_event_id(rec));
    }
    json_decref(items);
  }
  /* Posting the same records again keeps each once. */
  if (s)
    post_all_rejected(s, "the same records again", recs);
  size_t pages = 0;
  json_t *again = s ? list_all(s, 100, NULL, &pages) : NULL;
  TS_CHECK_CASE(again && json_array_size(again) == N_GAMES, "resent",
                "%zu dead letters", again ? json_array_size(again) : 0);
  json_decref(again);
  if (s)
    expect_no_stats(s, "nothing applied", &p);
  json_decref(recs);
  server_stop(s);
  fixture_close(&f);
}

static void
test_replay_after_the_fix_applies_each_record_once_and_clears_them(void) {
  struct fixture f;
  CU_ASSERT_FATAL(fixture_open(&f));
  struct players p;
  players_name(&p, "fixed");
  json_t *recs = game_records(&p);
  struct e2e_server *s = fixture_start(&f, wrong_player_attr);
  if (s)
    post_all_rejected(s, "with the wrong attribute", recs);
  server_stop(s);

  s = fixture_start(&f, NULL); /* the fix: the default attribute names */
  struct e2e_reply r;
  if (s) {
    replay(s, NULL, NULL, &r);
    check_replay("the replay after the fix", &r, N_GAMES, N_GAMES, 0, 0, false);
    e2e_reply_clear(&r);
    expect_totals(s, "after the replay", &p);
    size_t pages = 0;
    json_t *left = list_all(s, 100, NULL, &pages);
    TS_CHECK_CASE(left && json_array_size(left) == 0, "after the replay",
                  "%zu dead letters left", left ? json_array_size(left) : 0);
    json_decref(left);

    replay(s, NULL, NULL, &r);
    check_replay("the replay again", &r, 0, 0, 0, 0, false);
    e2e_reply_clear(&r);
    expect_totals(s, "after the replay again", &p);
    /* The records resent by the stream are duplicates now. */
    json_t *body = e2e_lambda(recs);
    e2e_ingest_expect(s, "the stream resends them", body, N_GAMES, 0, N_GAMES,
                      0, 0);
    json_decref(body);
    expect_totals(s, "after the resend", &p);
  }
  json_decref(recs);
  server_stop(s);
  fixture_close(&f);
}

static void
test_a_record_still_poison_after_the_fix_stays_with_its_reason(void) {
  struct fixture f;
  CU_ASSERT_FATAL(fixture_open(&f));
  struct players p;
  players_name(&p, "poison");
  json_t *recs = game_records(&p);
  json_t *bad = e2e_insert(p.name[0], "lots", WIN_ABSENT);
  json_array_append(recs, bad);
  struct e2e_server *s = fixture_start(&f, wrong_player_attr);
  if (s)
    post_all_rejected(s, "with the wrong attribute", recs);
  server_stop(s);

  s = fixture_start(&f, NULL);
  for (int round = 0; s && round < 2; round++) {
    const char *what = round ? "the replay again" : "the replay after the fix";
    struct e2e_reply r;
    replay(s, NULL, NULL, &r);
    check_replay(what, &r, round ? 1 : (long)N_GAMES + 1, round ? 0 : N_GAMES,
                 0, 1, false);
    const json_t *still =
        json_array_get(json_object_get(r.json, "still_rejected"), 0);
    const char *reason = json_string_value(json_object_get(still, "reason"));
    const char *id = json_string_value(json_object_get(still, "id"));
    TS_CHECK_CASE(reason && strstr(reason, "score") && !strstr(reason, "who") &&
                      json_equal(json_object_get(still, "eventID"),
                                 json_object_get(bad, "eventID")),
                  what, "still rejected: %.300s", r.body);
    /* Kept once, under the new reason: the listing shows that entry. */
    size_t pages = 0;
    json_t *left = list_all(s, 100, NULL, &pages);
    const json_t *only = json_array_get(left, 0);
    TS_CHECK_CASE(left && json_array_size(left) == 1 && id &&
                      json_equal(json_object_get(only, "id"),
                                 json_object_get(still, "id")) &&
                      json_equal(json_object_get(only, "reason"),
                                 json_object_get(still, "reason")) &&
                      json_equal(json_object_get(only, "record"), bad),
                  what, "left: %zu dead letters",
                  left ? json_array_size(left) : 0);
    json_decref(left);
    e2e_reply_clear(&r);
    expect_totals(s, what, &p);
  }
  json_decref(bad);
  json_decref(recs);
  server_stop(s);
  fixture_close(&f);
}

/* A replay with a small limit starts from the first dead letter; those
 * that stay rejected would fill every call. The answer's next_cursor goes
 * on after them, so a walk reaches every dead letter and ends. */
static void test_replay_walks_past_those_that_stay_rejected_by_cursor(void) {
  struct fixture f;
  CU_ASSERT_FATAL(fixture_open(&f));
  struct players p;
  players_name(&p, "walk");
  json_t *recs = json_array();
  /* Poison first, so that a walk without the cursor would stall on it. */
  for (int i = 0; i < 3; i++)
    json_array_append_new(recs, e2e_insert(p.name[0], "lots", WIN_ABSENT));
  json_t *games_recs = game_records(&p);
  json_array_extend(recs, games_recs);
  json_decref(games_recs);
  struct e2e_server *s = fixture_start(&f, wrong_player_attr);
  if (s)
    post_all_rejected(s, "with the wrong attribute", recs);
  server_stop(s);

  s = fixture_start(&f, NULL);
  long applied = 0, calls = 0;
  char *cursor = NULL;
  while (s && calls < 20) {
    char body[4200];
    if (cursor)
      snprintf(body, sizeof body, "{\"limit\":2,\"cursor\":\"%s\"}", cursor);
    else
      snprintf(body, sizeof body, "{\"limit\":2}");
    struct e2e_reply r;
    replay(s, body, NULL, &r);
    calls++;
    TS_CHECK_CASE(r.status == 200 && count_of(&r, "selected") >= 0, "walk",
                  "call %ld: status %ld %.300s", calls, r.status, r.body);
    applied += count_of(&r, "applied") + count_of(&r, "duplicates");
    const json_t *next = json_object_get(r.json, "next_cursor");
    TS_CHECK_CASE(json_is_string(next) ==
                      json_is_true(json_object_get(r.json, "more")),
                  "walk", "more and next_cursor disagree: %.300s", r.body);
    free(cursor);
    cursor = json_is_string(next) ? strdup(json_string_value(next)) : NULL;
    e2e_reply_clear(&r);
    if (!cursor)
      break;
  }
  free(cursor);
  TS_CHECK_CASE(calls < 20, "walk", "no end after %ld calls", calls);
  TS_CHECK_CASE(applied == (long)N_GAMES, "walk", "%ld of %zu games applied",
                applied, N_GAMES);
  if (s) {
    size_t pages = 0;
    json_t *left = list_all(s, 100, NULL, &pages);
    TS_CHECK_CASE(json_array_size(left) == 3, "walk",
                  "%zu dead letters left, want the 3 poison ones",
                  json_array_size(left));
    json_decref(left);
    expect_totals(s, "after the walk", &p);
    /* A cursor with ids is refused. */
    struct e2e_reply r;
    replay(s, "{\"ids\":[\"x\"],\"cursor\":\"ZDE6eA\"}", NULL, &r);
    e2e_check_problem("cursor with ids", &r, 400, "bad-replay-request");
    e2e_reply_clear(&r);
  }
  json_decref(recs);
  server_stop(s);
  fixture_close(&f);
}

static void test_replay_by_reason_and_by_ids_selects_only_those(void) {
  struct fixture f;
  CU_ASSERT_FATAL(fixture_open(&f));
  struct players p;
  players_name(&p, "select");
  json_t *recs = game_records(&p);
  /* Players 0 and 1 (games 0..4) are rejected for another reason too: a
   * `who` that is neither S nor N. */
  for (size_t i = 0; i < 5; i++) {
    json_t *img = json_object_get(
        json_object_get(json_array_get(recs, i), "dynamodb"), "NewImage");
    json_object_set_new(img, "who", json_pack("{s:b}", "BOOL", 1));
  }
  struct e2e_server *s = fixture_start(&f, wrong_player_attr);
  if (s)
    post_all_rejected(s, "with the wrong attribute", recs);
  server_stop(s);

  s = fixture_start(&f, NULL);
  size_t pages = 0;
  json_t *items = s ? list_all(s, 100, NULL, &pages) : NULL;
  const char *r_first = NULL, *r_last = NULL;
  for (size_t i = 0; items && i < json_array_size(items); i++) {
    const json_t *it = json_array_get(items, i);
    const char *reason = json_string_value(json_object_get(it, "reason"));
    const char *e = json_string_value(json_object_get(it, "eventID"));
    if (e && strcmp(e, e2e_record_event_id(json_array_get(recs, 0))) == 0)
      r_first = reason;
    if (e && strcmp(e, e2e_record_event_id(json_array_get(recs, 9))) == 0)
      r_last = reason;
  }
  TS_CHECK_CASE(r_first && r_last && strcmp(r_first, r_last) != 0, "reasons",
                "two reasons expected: %s / %s", r_first ? r_first : "-",
                r_last ? r_last : "-");
  if (s && r_first && r_last) {
    /* The listing filtered by the first reason: players 0 and 1. */
    json_t *of_first = list_all(s, 2, r_first, &pages);
    TS_CHECK_CASE(of_first && json_array_size(of_first) == 5 && pages == 3,
                  "listed by reason", "%zu on %zu pages",
                  of_first ? json_array_size(of_first) : 0, pages);
    json_decref(of_first);

    /* By reason, two at a time: more until they are done. */
    json_t *sel = json_pack("{s:s, s:i}", "reason", r_first, "limit", 2);
    char *text = json_dumps(sel, JSON_COMPACT);
    struct e2e_reply r;
    for (int call = 0; call < 3; call++) {
      char what[64];
      snprintf(what, sizeof what, "by reason, call %d", call + 1);
      replay(s, text, NULL, &r);
      check_replay(what, &r, call < 2 ? 2 : 1, call < 2 ? 2 : 1, 0, 0,
                   call < 2);
      e2e_reply_clear(&r);
    }
    free(text);
    json_decref(sel);
    for (int i = 0; i < 2; i++) {
      struct e2e_expect e = {p.name[i],       totals[i].games, totals[i].wins,
                             totals[i].total, totals[i].avg,   totals[i].pct};
      e2e_expect_stats(s, "players of the reason replayed", &e);
    }
    json_t *rest = list_all(s, 100, NULL, &pages);
    TS_CHECK_CASE(rest && json_array_size(rest) == N_GAMES - 5,
                  "left after the reason", "%zu",
                  rest ? json_array_size(rest) : 0);

    /* By ids: player 2's game and one of player 3's, plus an id that is
     * not there. */
    const char *id2 = id_of(rest, e2e_record_event_id(json_array_get(recs, 5)));
    const char *id3 = id_of(rest, e2e_record_event_id(json_array_get(recs, 6)));
    char body[512];
    snprintf(body, sizeof body, "{\"ids\":[\"%s\",\"%s\",\"%s\",\"0abc\"]}",
             id2 ? id2 : "x", id3 ? id3 : "x", id2 ? id2 : "x");
    replay(s, body, NULL, &r);
    check_replay("by ids", &r, 2, 2, 0, 0, false);
    e2e_reply_clear(&r);
    struct e2e_expect e2 = {p.name[2],       totals[2].games, totals[2].wins,
                            totals[2].total, totals[2].avg,   totals[2].pct};
    e2e_expect_stats(s, "player 2 replayed by id", &e2);
    struct e2e_expect e3 = {p.name[3], 1, 0, "100", "100", "0"};
    e2e_expect_stats(s, "one game of player 3 replayed by id", &e3);
    replay(s, body, NULL, &r);
    check_replay("the same ids again", &r, 0, 0, 0, 0, false);
    e2e_reply_clear(&r);
    json_decref(rest);
    rest = list_all(s, 100, NULL, &pages);
    TS_CHECK_CASE(rest && json_array_size(rest) == 3, "left after the ids",
                  "%zu", rest ? json_array_size(rest) : 0);
    json_decref(rest);

    /* The rest, by an empty body. */
    replay(s, NULL, NULL, &r);
    check_replay("the rest", &r, 3, 3, 0, 0, false);
    e2e_reply_clear(&r);
    expect_totals(s, "all replayed", &p);
  }
  json_decref(items);
  json_decref(recs);
  server_stop(s);
  fixture_close(&f);
}

struct replay_job {
  const struct e2e_server *s;
  struct e2e_reply r;
};

static void *replay_thread(void *arg) {
  struct replay_job *j = arg;
  replay(j->s, NULL, NULL, &j->r);
  return NULL;
}

static void test_two_concurrent_replays_never_count_a_record_twice(void) {
  struct fixture f;
  CU_ASSERT_FATAL(fixture_open(&f));
  struct players p;
  players_name(&p, "concurrent");
  json_t *recs = game_records(&p);
  struct e2e_server *s = fixture_start(&f, wrong_player_attr);
  if (s)
    post_all_rejected(s, "with the wrong attribute", recs);
  server_stop(s);

  s = fixture_start(&f, NULL);
  struct replay_job jobs[2] = {{.s = s}, {.s = s}};
  pthread_t t[2];
  bool started[2] = {false, false};
  for (int i = 0; s && i < 2; i++)
    started[i] = pthread_create(&t[i], NULL, replay_thread, &jobs[i]) == 0;
  long applied = 0;
  for (int i = 0; i < 2; i++) {
    if (!started[i])
      continue;
    pthread_join(t[i], NULL);
    long sel = count_of(&jobs[i].r, "selected");
    long a = count_of(&jobs[i].r, "applied");
    long d = count_of(&jobs[i].r, "duplicates");
    TS_CHECK_CASE(jobs[i].r.status == 200 && a >= 0 && d >= 0 && sel == a + d,
                  "a concurrent replay", "status %ld %.300s", jobs[i].r.status,
                  jobs[i].r.body);
    applied += a > 0 ? a : 0;
    e2e_reply_clear(&jobs[i].r);
  }
  CU_ASSERT(started[0] && started[1]);
  TS_CHECK_CASE(applied == (long)N_GAMES, "both replays",
                "applied %ld in all, want %zu", applied, N_GAMES);
  if (s) {
    expect_totals(s, "after two concurrent replays", &p);
    size_t pages = 0;
    json_t *left = list_all(s, 100, NULL, &pages);
    TS_CHECK_CASE(left && json_array_size(left) == 0, "after both", "%zu left",
                  left ? json_array_size(left) : 0);
    json_decref(left);
  }
  json_decref(recs);
  server_stop(s);
  fixture_close(&f);
}

void e2e_suite_dead_letters(void) {
  E2E_SUITE(
      "dead_letters", NULL, NULL,
      TS_TEST(test_listing_and_replay_need_the_ingest_key_when_one_is_set),
      TS_TEST(test_records_rejected_for_a_wrong_attribute_are_each_listed_once),
      TS_TEST(
          test_replay_after_the_fix_applies_each_record_once_and_clears_them),
      TS_TEST(test_a_record_still_poison_after_the_fix_stays_with_its_reason),
      TS_TEST(test_replay_walks_past_those_that_stay_rejected_by_cursor),
      TS_TEST(test_replay_by_reason_and_by_ids_selects_only_those),
      TS_TEST(test_two_concurrent_replays_never_count_a_record_twice));
}
