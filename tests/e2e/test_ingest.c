/* Ingestion rules seen from outside: envelopes, exactly-once, MODIFY and
 * REMOVE arithmetic, poison records and dead letters, winner spellings,
 * exact decimals and rounding. One server for the suite; every test uses
 * its own run-unique players. */
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

/* Posts body, expects 200 and the given counts. */
static void ingest_expect(const char *case_name, const json_t *body,
                          long received, long applied, long duplicates,
                          long skipped, size_t rejected) {
  e2e_ingest_expect(srv, case_name, body, received, applied, duplicates,
                    skipped, rejected);
}

static void expect_not_found(const char *case_name, const char *player) {
  long status = 0;
  json_t *got = e2e_fetch_stats(srv, player, &status);
  TS_CHECK_CASE(status == 404 && !got, case_name,
                "GET stats of \"%s\": status %ld, expected 404", player,
                status);
  json_decref(got);
}

/* The stats object without updated_at, to compare two players' numbers. */
static json_t *numbers_of(const json_t *stats) {
  json_t *c = json_deep_copy(stats);
  json_object_del(c, "updated_at");
  json_object_del(c, "player");
  return c;
}

/* ---------------------------------------------------------------- */

/* The same seven changes for players a and b, ids unique per kind. */
static json_t *shape_records(const char *kind, const char *a, const char *b) {
  char g[7][64];
  for (int i = 0; i < 7; i++)
    snprintf(g[i], sizeof g[i], "%s-g%d", kind, i);
  struct e2e_image a1 = {a, "10", WIN_BOOL_TRUE, 0, 0};
  struct e2e_image a2 = {a, "7.5", WIN_ABSENT, 0, 0};
  struct e2e_image a2b = {a, "8", WIN_N_ONE, 0, 0};
  struct e2e_image a5 = {a, "2", WIN_BOOL_FALSE, 0, 0};
  struct e2e_image b3 = {b, "3.25", WIN_S_YES, 0, 0};
  struct e2e_image b4 = {b, "1", WIN_ABSENT, 0, 0};
  return e2e_records(e2e_record("INSERT", NULL, g[1], NULL, &a1),
                     e2e_record("INSERT", NULL, g[2], NULL, &a2),
                     e2e_record("INSERT", NULL, g[3], NULL, &b3),
                     e2e_record("MODIFY", NULL, g[2], &a2, &a2b),
                     e2e_record("INSERT", NULL, g[4], NULL, &b4),
                     e2e_record("REMOVE", NULL, g[4], &b4, NULL),
                     e2e_record("INSERT", NULL, g[5], NULL, &a5), NULL);
}

static void
test_lambda_pipes_and_single_object_bodies_give_the_same_stats(void) {
  static const char *const kinds[] = {"lambda", "pipes", "single"};
  char a[3][128], b[3][128], tag[64];
  for (int k = 0; k < 3; k++) {
    snprintf(tag, sizeof tag, "shape-%s-a", kinds[k]);
    e2e_name(a[k], sizeof a[k], tag);
    snprintf(tag, sizeof tag, "shape-%s-b", kinds[k]);
    e2e_name(b[k], sizeof b[k], tag);
    json_t *recs = shape_records(kinds[k], a[k], b[k]);
    if (k == 0) {
      json_t *body = e2e_lambda(recs);
      ingest_expect("lambda envelope", body, 7, 7, 0, 0, 0);
      json_decref(body);
    } else if (k == 1) {
      json_t *body = e2e_pipes(recs);
      ingest_expect("pipes array", body, 7, 7, 0, 0, 0);
      json_decref(body);
    } else {
      size_t i;
      json_t *rec;
      json_array_foreach(recs, i, rec)
          ingest_expect("single object", rec, 1, 1, 0, 0, 0);
    }
    json_decref(recs);
  }
  json_t *sa[3] = {0}, *sb[3] = {0};
  for (int k = 0; k < 3; k++) {
    struct e2e_expect ea = {a[k], 3, 2, "20", "6.67", "66.67"};
    struct e2e_expect eb = {b[k], 1, 1, "3.25", "3.25", "100"};
    e2e_expect_stats(srv, kinds[k], &ea);
    e2e_expect_stats(srv, kinds[k], &eb);
    long st;
    sa[k] = e2e_fetch_stats(srv, a[k], &st);
    sb[k] = e2e_fetch_stats(srv, b[k], &st);
  }
  for (int k = 1; k < 3; k++) {
    json_t *x = numbers_of(sa[0]), *y = numbers_of(sa[k]);
    json_t *u = numbers_of(sb[0]), *v = numbers_of(sb[k]);
    TS_CHECK_CASE(json_equal(x, y) && json_equal(u, v), kinds[k],
                  "stats differ from the lambda envelope's");
    json_decref(x);
    json_decref(y);
    json_decref(u);
    json_decref(v);
  }
  for (int k = 0; k < 3; k++) {
    json_decref(sa[k]);
    json_decref(sb[k]);
  }
}

static void
test_json_content_type_with_parameters_or_any_case_is_accepted(void) {
  static const char *const types[] = {
      "Content-Type: application/json; charset=utf-8",
      "Content-Type: application/json;charset=UTF-8",
      "Content-Type: Application/JSON",
  };
  char player[128];
  e2e_name(player, sizeof player, "content-type");
  for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
    json_t *rec = e2e_insert(player, "1", WIN_ABSENT);
    char *text = json_dumps(rec, JSON_COMPACT);
    const char *hdrs[] = {types[i], NULL};
    struct e2e_request rq = {.method = "POST",
                             .target = "/v1/stream-records",
                             .headers = hdrs,
                             .body = text,
                             .body_len = strlen(text)};
    struct e2e_reply r;
    (void)e2e_http(srv, &rq, &r);
    TS_CHECK_CASE(r.status == 200 && json_integer_value(json_object_get(
                                         r.json, "applied")) == 1,
                  types[i], "status %ld body %.300s", r.status, r.body);
    e2e_reply_clear(&r);
    free(text);
    json_decref(rec);
  }
  struct e2e_expect e = {player, 3, 0, "3", "1", "0"};
  e2e_expect_stats(srv, "content-type", &e);
}

/* RFC 8259 lets a parser ignore a leading byte order mark; the .NET
 * runtime's event files start with one. A BOM anywhere else, or a lone
 * part of one, is still malformed. */
static void test_body_starting_with_a_utf8_bom_is_accepted(void) {
  char player[128];
  e2e_name(player, sizeof player, "bom");
  json_t *rec = e2e_insert(player, "2.5", WIN_BOOL_TRUE);
  char *text = json_dumps(rec, JSON_COMPACT);
  size_t len = strlen(text);
  char *with_bom = malloc(len + 4);
  CU_ASSERT_FATAL(text && with_bom);
  memcpy(with_bom, "\xEF\xBB\xBF", 3);
  memcpy(with_bom + 3, text, len + 1);
  static const struct {
    const char *name;
    size_t skip; /* leading bytes of with_bom left out */
    long status;
  } cases[] = {
      {"a BOM, then the record", 0, 200},
      {"two thirds of a BOM", 1, 400},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    static const char *const json_type[] = {"Content-Type: application/json",
                                            NULL};
    struct e2e_request rq = {.method = "POST",
                             .target = "/v1/stream-records",
                             .headers = json_type,
                             .body = with_bom + cases[i].skip,
                             .body_len = len + 3 - cases[i].skip};
    struct e2e_reply r;
    (void)e2e_http(srv, &rq, &r);
    if (cases[i].status == 200)
      TS_CHECK_CASE(r.status == 200 && json_integer_value(json_object_get(
                                           r.json, "applied")) == 1,
                    cases[i].name, "status %ld body %.300s", r.status, r.body);
    else
      e2e_check_problem(cases[i].name, &r, cases[i].status, "malformed-json");
    e2e_reply_clear(&r);
  }
  struct e2e_expect e = {player, 1, 1, "2.5", "2.5", "100"};
  e2e_expect_stats(srv, "BOM", &e);
  free(with_bom);
  free(text);
  json_decref(rec);
}

static void
test_resent_batch_is_counted_as_duplicates_and_changes_nothing(void) {
  char p[128], q[128];
  e2e_name(p, sizeof p, "resend-p");
  e2e_name(q, sizeof q, "resend-q");
  struct e2e_image old_im = {p, "4", WIN_ABSENT, 0, 0};
  struct e2e_image new_im = {q, "6.5", WIN_BOOL_TRUE, 0, 0};
  json_t *recs = e2e_records(
      e2e_insert(p, "10", WIN_BOOL_TRUE), e2e_insert(p, "2.5", WIN_ABSENT),
      e2e_record("INSERT", NULL, "resend-g", NULL, &old_im),
      e2e_record("MODIFY", NULL, "resend-g", &old_im, &new_im), NULL);
  json_t *body = e2e_lambda(recs);
  ingest_expect("first delivery", body, 4, 4, 0, 0, 0);
  long st;
  json_t *before_p = e2e_fetch_stats(srv, p, &st);
  json_t *before_q = e2e_fetch_stats(srv, q, &st);
  struct e2e_expect ep = {p, 2, 1, "12.5", "6.25", "50"};
  struct e2e_expect eq = {q, 1, 1, "6.5", "6.5", "100"};
  e2e_expect_stats(srv, "first delivery", &ep);
  e2e_expect_stats(srv, "first delivery", &eq);

  ingest_expect("same body again", body, 4, 0, 4, 0, 0);
  json_t *pipes = e2e_pipes(recs);
  ingest_expect("same records as an array", pipes, 4, 0, 4, 0, 0);
  ingest_expect("one record alone", json_array_get(recs, 3), 1, 0, 1, 0, 0);

  e2e_expect_stats(srv, "after resends", &ep);
  e2e_expect_stats(srv, "after resends", &eq);
  json_t *after_p = e2e_fetch_stats(srv, p, &st);
  json_t *after_q = e2e_fetch_stats(srv, q, &st);
  json_t *x = numbers_of(before_p), *y = numbers_of(after_p);
  json_t *u = numbers_of(before_q), *v = numbers_of(after_q);
  TS_CHECK_CASE(json_equal(x, y) && json_equal(u, v), "resend",
                "stats changed after duplicates");
  json_decref(x);
  json_decref(y);
  json_decref(u);
  json_decref(v);
  json_decref(before_p);
  json_decref(before_q);
  json_decref(after_p);
  json_decref(after_q);
  json_decref(pipes);
  json_decref(body);
  json_decref(recs);
}

static void test_event_id_repeated_within_a_batch_is_a_duplicate(void) {
  char p[128];
  e2e_name(p, sizeof p, "in-batch-dup");
  json_t *rec = e2e_insert(p, "3", WIN_BOOL_TRUE);
  json_t *recs = e2e_records(json_incref(rec), json_incref(rec),
                             e2e_insert(p, "1", WIN_ABSENT), NULL);
  json_t *body = e2e_pipes(recs);
  ingest_expect("eventID twice in one batch", body, 3, 2, 1, 0, 0);
  struct e2e_expect e = {p, 2, 1, "4", "2", "50"};
  e2e_expect_stats(srv, "eventID twice in one batch", &e);
  json_decref(body);
  json_decref(recs);
  json_decref(rec);
}

/* An eventID shared by records of different players counts once for each,
 * in one batch or in later ones, and a repeat of a poison record is decoded
 * on its own: nothing is dropped without a trace. */
static void test_event_id_shared_across_players_or_after_poison_counts(void) {
  char p[128], q[128], id[64], id2[64];
  e2e_name(p, sizeof p, "shared-id-p");
  e2e_name(q, sizeof q, "shared-id-q");
  e2e_fresh_event_id(id, sizeof id);
  e2e_fresh_event_id(id2, sizeof id2);
  struct e2e_image at_p = {p, "3", WIN_BOOL_TRUE, 0, 0};
  struct e2e_image at_q = {q, "5", WIN_ABSENT, 0, 0};
  struct e2e_image poison = {q, "five", WIN_ABSENT, 0, 0};
  json_t *recs =
      e2e_records(e2e_record("INSERT", id, NULL, NULL, &at_p),
                  e2e_record("INSERT", id, NULL, NULL, &at_q),
                  e2e_record("INSERT", id2, NULL, NULL, &poison),
                  e2e_record("INSERT", id2, NULL, NULL, &at_q), NULL);
  json_t *body = e2e_lambda(recs);
  ingest_expect("shared eventID", body, 4, 3, 0, 0, 1);
  ingest_expect("shared eventID, resent", body, 4, 0, 3, 0, 1);
  struct e2e_expect ep = {p, 1, 1, "3", "3", "100"};
  struct e2e_expect eq = {q, 2, 0, "10", "5", "0"};
  e2e_expect_stats(srv, "shared eventID, player p", &ep);
  e2e_expect_stats(srv, "shared eventID, player q", &eq);
  /* In a later batch too: exactly-once is per (player, eventID). */
  char r[128];
  e2e_name(r, sizeof r, "shared-id-r");
  struct e2e_image at_r = {r, "7", WIN_BOOL_TRUE, 0, 0};
  json_t *later = e2e_record("INSERT", id, NULL, NULL, &at_r);
  ingest_expect("shared eventID, a later batch", later, 1, 1, 0, 0, 0);
  ingest_expect("shared eventID, a later batch resent", later, 1, 0, 1, 0, 0);
  struct e2e_expect er = {r, 1, 1, "7", "7", "100"};
  e2e_expect_stats(srv, "shared eventID, player r", &er);
  json_decref(later);
  json_decref(body);
  json_decref(recs);
}

static void test_modify_with_old_image_moves_game_between_players(void) {
  char a[128], b[128];
  e2e_name(a, sizeof a, "move-from");
  e2e_name(b, sizeof b, "move-to");
  struct e2e_image at_a = {a, "10", WIN_BOOL_TRUE, 0, 0};
  struct e2e_image at_b = {b, "7", WIN_ABSENT, 0, 0};
  json_t *ins = e2e_record("INSERT", NULL, "move-g", NULL, &at_a);
  json_t *keep = e2e_insert(a, "1", WIN_ABSENT);
  json_t *first = e2e_records(ins, keep, NULL);
  ingest_expect("insert at a", first, 2, 2, 0, 0, 0);
  json_t *mod = e2e_record("MODIFY", NULL, "move-g", &at_a, &at_b);
  ingest_expect("modify a -> b", mod, 1, 1, 0, 0, 0);
  struct e2e_expect ea = {a, 1, 0, "1", "1", "0"};
  struct e2e_expect eb = {b, 1, 0, "7", "7", "0"};
  e2e_expect_stats(srv, "game moved away", &ea);
  e2e_expect_stats(srv, "game moved in", &eb);

  /* And back again, now as a win. */
  struct e2e_image back = {a, "9.5", WIN_S_TRUE, 0, 0};
  json_t *mod2 = e2e_record("MODIFY", NULL, "move-g", &at_b, &back);
  ingest_expect("modify b -> a", mod2, 1, 1, 0, 0, 0);
  struct e2e_expect ea2 = {a, 2, 1, "10.5", "5.25", "50"};
  struct e2e_expect eb2 = {b, 0, 0, "0", "0", "0"};
  e2e_expect_stats(srv, "game moved back", &ea2);
  e2e_expect_stats(srv, "player left with no games", &eb2);
  json_decref(first);
  json_decref(mod);
  json_decref(mod2);
}

static void test_modify_with_old_image_replaces_score_and_win(void) {
  char p[128];
  e2e_name(p, sizeof p, "modify-same");
  struct e2e_image v1 = {p, "10", WIN_ABSENT, 0, 0};
  struct e2e_image v2 = {p, "12.5", WIN_BOOL_TRUE, 0, 0};
  struct e2e_image v3 = {p, "12.5", WIN_NULL, 0, 0};
  json_t *recs =
      e2e_records(e2e_record("INSERT", NULL, "ms-g", NULL, &v1),
                  e2e_record("MODIFY", NULL, "ms-g", &v1, &v2), NULL);
  ingest_expect("insert then correct", recs, 2, 2, 0, 0, 0);
  struct e2e_expect e = {p, 1, 1, "12.5", "12.5", "100"};
  e2e_expect_stats(srv, "score and win corrected", &e);
  json_t *lose = e2e_record("MODIFY", NULL, "ms-g", &v2, &v3);
  ingest_expect("win withdrawn", lose, 1, 1, 0, 0, 0);
  struct e2e_expect e2 = {p, 1, 0, "12.5", "12.5", "0"};
  e2e_expect_stats(srv, "win withdrawn", &e2);
  json_decref(recs);
  json_decref(lose);
}

static void test_modify_without_old_image_adds_new_contribution(void) {
  char p[128];
  e2e_name(p, sizeof p, "modify-new-only");
  struct e2e_image v = {p, "4", WIN_BOOL_TRUE, 0, 0};
  json_t *rec = e2e_record("MODIFY", NULL, NULL, NULL, &v);
  ingest_expect("MODIFY with NewImage only", rec, 1, 1, 0, 0, 0);
  struct e2e_expect e = {p, 1, 1, "4", "4", "100"};
  e2e_expect_stats(srv, "MODIFY with NewImage only", &e);
  json_decref(rec);
}

static void test_remove_with_old_image_subtracts_the_game(void) {
  char p[128];
  e2e_name(p, sizeof p, "remove");
  struct e2e_image won = {p, "5", WIN_BOOL_TRUE, 0, 0};
  json_t *recs = e2e_records(e2e_record("INSERT", NULL, "rm-g1", NULL, &won),
                             e2e_insert(p, "3", WIN_ABSENT), NULL);
  ingest_expect("two games", recs, 2, 2, 0, 0, 0);
  json_t *rm = e2e_record("REMOVE", NULL, "rm-g1", &won, NULL);
  ingest_expect("remove the win", rm, 1, 1, 0, 0, 0);
  struct e2e_expect e = {p, 1, 0, "3", "3", "0"};
  e2e_expect_stats(srv, "after REMOVE", &e);
  json_decref(recs);
  json_decref(rm);
}

static void test_remove_without_old_image_is_skipped(void) {
  char p[128];
  e2e_name(p, sizeof p, "remove-keys-only");
  json_t *ins = e2e_insert(p, "5", WIN_BOOL_TRUE);
  ingest_expect("insert", ins, 1, 1, 0, 0, 0);
  json_t *rm = e2e_record("REMOVE", NULL, NULL, NULL, NULL);
  json_t *body = e2e_records(rm, NULL);
  ingest_expect("REMOVE without OldImage", body, 1, 0, 0, 1, 0);
  struct e2e_expect e = {p, 1, 1, "5", "5", "100"};
  e2e_expect_stats(srv, "REMOVE without OldImage", &e);
  json_decref(ins);
  json_decref(body);
}

/* A REMOVE made by DynamoDB's Time to Live: an expired game item. By
 * default it is skipped (the game still happened); a server started with
 * TS_TTL_REMOVES=subtract subtracts it like any REMOVE. */
static void test_ttl_remove_is_skipped_unless_configured_to_subtract(void) {
  static const struct {
    const char *name, *setting;
    long applied, skipped, games;
  } cases[] = {
      {"TTL REMOVE, default", NULL, 0, 1, 1},
      {"TTL REMOVE, TS_TTL_REMOVES=subtract", "TS_TTL_REMOVES=subtract", 1, 0,
       0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct e2e_server *own = NULL;
    const char *env[] = {cases[i].setting, NULL};
    struct e2e_server_opts opt = {.extra_env = env};
    if (cases[i].setting)
      CU_ASSERT_FATAL(e2e_server_start(&opt, &own) == TS_OK);
    struct e2e_server *s = own ? own : srv;
    char p[128];
    e2e_name(p, sizeof p, own ? "ttl-subtract" : "ttl-skip");
    struct e2e_image im = {p, "7", WIN_BOOL_TRUE, 0, 0};
    json_t *ins = e2e_record("INSERT", NULL, "ttl-game", NULL, &im);
    json_t *rem = e2e_record("REMOVE", NULL, "ttl-game", &im, NULL);
    json_object_set_new(rem, "userIdentity",
                        json_pack("{s:s, s:s}", "type", "Service",
                                  "principalId", "dynamodb.amazonaws.com"));
    struct e2e_reply r;
    struct e2e_summary sum;
    if (e2e_ingest(s, cases[i].name, ins, &r, &sum))
      e2e_check_summary(cases[i].name, &sum, 1, 1, 0, 0, 0);
    e2e_reply_clear(&r);
    if (e2e_ingest(s, cases[i].name, rem, &r, &sum))
      e2e_check_summary(cases[i].name, &sum, 1, cases[i].applied, 0,
                        cases[i].skipped, 0);
    e2e_reply_clear(&r);
    long status = 0;
    json_t *got = e2e_fetch_stats(s, p, &status);
    TS_CHECK_CASE(status == 200 && json_integer_value(json_object_get(
                                       got, "games")) == cases[i].games,
                  cases[i].name, "status %ld, games %lld (want %ld)", status,
                  (long long)json_integer_value(json_object_get(got, "games")),
                  cases[i].games);
    json_decref(got);
    json_decref(ins);
    json_decref(rem);
    if (own) {
      int code = -1;
      e2e_server_stop(own, &code);
      CU_ASSERT_EQUAL(code, 0);
    }
  }
}

/* Finds the rejected entry whose itemIdentifier is item. */
static json_t *rejected_item(const struct e2e_summary *s, const char *item) {
  size_t i;
  json_t *e;
  json_array_foreach(s->rejected_list, i, e) {
    const char *id = json_string_value(json_object_get(e, "itemIdentifier"));
    if (id && strcmp(id, item) == 0)
      return e;
  }
  return NULL;
}

/* Poison records for player p, each with its own SequenceNumber. */
static json_t *poison_records(const char *p) {
  struct e2e_image no_player = {NULL, "5", WIN_BOOL_TRUE, 0, 0};
  struct e2e_image no_score = {p, NULL, WIN_BOOL_TRUE, 0, 0};
  struct e2e_image bad_score = {p, "abc", WIN_BOOL_TRUE, 0, 0};
  struct e2e_image ok = {p, "5", WIN_BOOL_TRUE, 0, 0};
  json_t *no_id = e2e_record("INSERT", NULL, NULL, NULL, &ok);
  json_object_del(no_id, "eventID");
  return e2e_records(e2e_record("INSERT", NULL, NULL, NULL, &no_player),
                     e2e_record("INSERT", NULL, NULL, NULL, &no_score),
                     e2e_record("INSERT", NULL, NULL, NULL, &bad_score),
                     e2e_record("UPSERT", NULL, NULL, NULL, &ok), no_id,
                     e2e_record("INSERT", NULL, NULL, NULL, NULL), NULL);
}

static const char *const poison_names[] = {
    "missing player", "missing score",   "non-numeric score",
    "bad eventName",  "missing eventID", "INSERT without NewImage"};

static void
test_poison_records_are_rejected_with_reason_and_rest_applies(void) {
  char p[128];
  e2e_name(p, sizeof p, "poison");
  json_t *poison = poison_records(p);
  size_t np = json_array_size(poison);
  json_t *recs = e2e_records(e2e_insert(p, "10", WIN_BOOL_TRUE), NULL);
  json_array_extend(recs, poison);
  json_array_append_new(recs, e2e_insert(p, "5", WIN_ABSENT));
  json_t *body = e2e_lambda(recs);
  struct e2e_reply r;
  struct e2e_summary sum;
  if (e2e_ingest(srv, "poison batch", body, &r, &sum)) {
    e2e_check_summary("poison batch", &sum, (long)np + 2, 2, 0, 0, np);
    for (size_t i = 0; i < np; i++) {
      json_t *rec = json_array_get(poison, i);
      json_t *e = rejected_item(&sum, e2e_record_sequence(rec));
      TS_CHECK_CASE(e != NULL, poison_names[i],
                    "not listed as rejected by its SequenceNumber %s: %.500s",
                    e2e_record_sequence(rec), r.body);
      if (!e)
        continue;
      const char *want_id = e2e_record_event_id(rec);
      json_t *got_id = json_object_get(e, "eventID");
      bool id_ok = want_id ? json_is_string(got_id) &&
                                 strcmp(json_string_value(got_id), want_id) == 0
                           : (!got_id || json_is_null(got_id));
      TS_CHECK_CASE(id_ok, poison_names[i], "eventID in the rejected entry");
    }
  }
  e2e_reply_clear(&r);
  struct e2e_expect e = {p, 2, 1, "15", "7.5", "50"};
  e2e_expect_stats(srv, "good records of a poisoned batch", &e);

  /* Without a SequenceNumber the eventID identifies the item. */
  struct e2e_image bad = {p, "12,5", WIN_ABSENT, 0, 0};
  json_t *no_seq = e2e_record("INSERT", NULL, NULL, NULL, &bad);
  json_object_del(json_object_get(no_seq, "dynamodb"), "SequenceNumber");
  if (e2e_ingest(srv, "poison without SequenceNumber", no_seq, &r, &sum)) {
    e2e_check_summary("poison without SequenceNumber", &sum, 1, 0, 0, 0, 1);
    TS_CHECK_CASE(rejected_item(&sum, e2e_record_event_id(no_seq)) != NULL,
                  "poison without SequenceNumber",
                  "itemIdentifier is not the eventID: %.300s", r.body);
  }
  e2e_reply_clear(&r);
  json_decref(no_seq);
  e2e_expect_stats(srv, "after a poison record alone", &e);

  /* With neither, its position in the batch (from 0) identifies it: a
   * forwarder that maps rejected to batchItemFailures never sends null. */
  struct e2e_image fine = {p, "1", WIN_ABSENT, 0, 0};
  json_t *anon = e2e_record("INSERT", NULL, NULL, NULL, &fine);
  json_object_del(anon, "eventID");
  json_object_del(json_object_get(anon, "dynamodb"), "SequenceNumber");
  json_t *pair =
      e2e_records(e2e_record("INSERT", NULL, NULL, NULL, &bad), anon, NULL);
  if (e2e_ingest(srv, "poison without eventID and SequenceNumber", pair, &r,
                 &sum)) {
    e2e_check_summary("poison without eventID and SequenceNumber", &sum, 2, 0,
                      0, 0, 2);
    TS_CHECK_CASE(rejected_item(&sum, "#1") != NULL,
                  "poison without eventID and SequenceNumber",
                  "itemIdentifier is not \"#1\": %.300s", r.body);
  }
  e2e_reply_clear(&r);
  json_decref(pair);
  json_decref(body);
  json_decref(recs);
  json_decref(poison);
}

/* What the dead-letter store holds for one rejected record. */
struct dead_letter_rows {
  long count;          /* rows for the item identifier, -1: unreadable */
  long reason_len;     /* shortest reason */
  bool record_has_seq; /* every row's record text holds the item */
};

static void sqlite_dead_letters(const char *seq, struct dead_letter_rows *d) {
  char sql[512];
  snprintf(sql, sizeof sql,
           "SELECT count(*), min(length(reason)), "
           "min(instr(record, '%s')) FROM dead_letters "
           "WHERE item_identifier = '%s';",
           seq, seq);
  char *out = e2e_sqlite_query(e2e_server_db_path(srv), sql);
  long has_seq = -1;
  d->count = -1;
  if (!out ||
      sscanf(out, "%ld|%ld|%ld", &d->count, &d->reason_len, &has_seq) != 3)
    d->count = -1;
  d->record_has_seq = has_seq > 0;
  free(out);
}

/* The dead-letter table's items whose item_identifier is seq; items comes
 * from one consistent scan of the table. */
static void dynamodb_dead_letters(const json_t *items, const char *seq,
                                  struct dead_letter_rows *d) {
  size_t i;
  json_t *it;
  d->count = 0;
  d->reason_len = -1;
  d->record_has_seq = true;
  json_array_foreach(items, i, it) {
    const char *item = json_string_value(
        json_object_get(json_object_get(it, "item_identifier"), "S"));
    if (!item || strcmp(item, seq) != 0)
      continue;
    d->count++;
    const char *reason =
        json_string_value(json_object_get(json_object_get(it, "reason"), "S"));
    const char *record =
        json_string_value(json_object_get(json_object_get(it, "record"), "S"));
    const char *at = json_string_value(
        json_object_get(json_object_get(it, "received_at"), "S"));
    const char *id =
        json_string_value(json_object_get(json_object_get(it, "id"), "S"));
    long len = reason ? (long)strlen(reason) : 0;
    if (d->reason_len < 0 || len < d->reason_len)
      d->reason_len = len;
    if (!record || !strstr(record, seq))
      d->record_has_seq = false;
    TS_CHECK_CASE(at && e2e_is_rfc3339(at) && id && *id, seq,
                  "dead letter lacks an id or an RFC 3339 received_at");
  }
}

/* Dead letters of this test (by event_id prefix and player p in the
 * record), counted in the DynamoDB scan. */
static long dynamodb_dead_letters_of(const json_t *items, const char *p) {
  size_t i, plen = strlen(e2e_run_prefix());
  json_t *it;
  long n = 0;
  json_array_foreach(items, i, it) {
    const char *ev = json_string_value(
        json_object_get(json_object_get(it, "event_id"), "S"));
    const char *record =
        json_string_value(json_object_get(json_object_get(it, "record"), "S"));
    if (ev && strncmp(ev, e2e_run_prefix(), plen) == 0 && record &&
        strstr(record, p))
      n++;
  }
  return n;
}

/* On SQLite the dead letters are read with sqlite3 from the server's file;
 * on DynamoDB from the dead-letter table with a Scan. */
static void
test_poison_records_are_kept_once_as_dead_letters_when_resent(void) {
  const bool sqlite = e2e_store_is_sqlite();
  char p[128];
  e2e_name(p, sizeof p, "dead-letter");
  json_t *poison = poison_records(p);
  size_t np = json_array_size(poison);
  json_t *recs = json_deep_copy(poison);
  json_array_append_new(recs, e2e_insert(p, "5", WIN_ABSENT));
  json_t *body = e2e_pipes(recs);
  ingest_expect("first delivery", body, (long)np + 1, 1, 0, 0, np);
  ingest_expect("resent", body, (long)np + 1, 0, 1, 0, np);
  ingest_expect("resent again", body, (long)np + 1, 0, 1, 0, np);

  json_t *items = NULL;
  if (!sqlite) {
    items = e2e_ddb_scan_all(NULL, e2e_ddb_dead_letter_table());
    TS_CHECK_CASE(items != NULL, "dead-letter table", "Scan of %s failed",
                  e2e_ddb_dead_letter_table());
    if (!items)
      goto out;
  }
  for (size_t i = 0; i < np; i++) {
    const char *seq = e2e_record_sequence(json_array_get(poison, i));
    struct dead_letter_rows d;
    if (sqlite)
      sqlite_dead_letters(seq, &d);
    else
      dynamodb_dead_letters(items, seq, &d);
    TS_CHECK_CASE(
        d.count == 1 && d.reason_len > 0 && d.record_has_seq, poison_names[i],
        "dead letters for item %s: %ld rows, shortest reason %ld, "
        "record %s the item (want one row with a reason and the "
        "record)",
        seq, d.count, d.reason_len, d.record_has_seq ? "holds" : "lacks");
  }
  long rows = -1;
  if (sqlite) {
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM dead_letters WHERE event_id LIKE '%s%%' AND "
             "record LIKE '%%%s%%';",
             e2e_run_prefix(), p);
    char *out = e2e_sqlite_query(e2e_server_db_path(srv), sql);
    if (!out || sscanf(out, "%ld", &rows) != 1)
      rows = -1;
    free(out);
  } else {
    rows = dynamodb_dead_letters_of(items, p);
  }
  /* Of the poison records, "missing eventID" has no event_id, and
   * "missing player" and "INSERT without NewImage" do not name p. */
  TS_CHECK_CASE(rows == (long)np - 3, "dead letters of this test",
                "%ld rows (want %zu)", rows, np - 3);
out:
  json_decref(items);
  json_decref(body);
  json_decref(recs);
  json_decref(poison);
}

/* Every rejected record is kept, even when another rejected record shares
 * its eventID and reason; a resent one is still kept once. */
static void
test_distinct_poison_records_sharing_an_event_id_are_each_kept(void) {
  const bool sqlite = e2e_store_is_sqlite();
  char p[128], q[128], id[64];
  e2e_name(p, sizeof p, "dl-shared-p");
  e2e_name(q, sizeof q, "dl-shared-q");
  e2e_fresh_event_id(id, sizeof id);
  struct e2e_image bad_p = {p, "abc", WIN_ABSENT, 0, 0};
  struct e2e_image bad_q = {q, "abc", WIN_ABSENT, 0, 0};
  json_t *a = e2e_record("INSERT", id, NULL, NULL, &bad_p);
  json_t *b = e2e_record("INSERT", id, NULL, NULL, &bad_q);
  ingest_expect("first record", a, 1, 0, 0, 0, 1);
  ingest_expect("second record, same eventID", b, 1, 0, 0, 0, 1);
  ingest_expect("second record resent", b, 1, 0, 0, 0, 1);
  json_t *items = NULL;
  if (!sqlite)
    items = e2e_ddb_scan_all(NULL, e2e_ddb_dead_letter_table());
  const json_t *recs[] = {a, b};
  for (size_t i = 0; i < 2 && (sqlite || items); i++) {
    const char *seq = e2e_record_sequence(recs[i]);
    struct dead_letter_rows d;
    if (sqlite)
      sqlite_dead_letters(seq, &d);
    else
      dynamodb_dead_letters(items, seq, &d);
    TS_CHECK_CASE(d.count == 1 && d.record_has_seq,
                  i ? "second record" : "first record",
                  "%ld dead letters for item %s (want 1)", d.count, seq);
  }
  TS_CHECK_CASE(sqlite || items, "dead-letter table", "scan failed");
  json_decref(items);
  json_decref(a);
  json_decref(b);
}

/* The same rejected record twice in one batch (a sender that repeats
 * itself) is one dead letter: DynamoDB refuses a BatchWriteItem that names
 * a key twice, so a store that wrote both would fail the batch. */
static void test_a_rejected_record_twice_in_one_batch_is_one_dead_letter(void) {
  const bool sqlite = e2e_store_is_sqlite();
  char p[128];
  e2e_name(p, sizeof p, "dl-twice");
  struct e2e_image bad = {p, "abc", WIN_ABSENT, 0, 0};
  json_t *rec = e2e_record("INSERT", NULL, NULL, NULL, &bad);
  json_t *recs = e2e_records(json_deep_copy(rec), json_deep_copy(rec),
                             e2e_insert(p, "2", WIN_ABSENT), NULL);
  ingest_expect("twice in one batch", recs, 3, 1, 0, 0, 2);
  json_t *items = NULL;
  if (!sqlite)
    items = e2e_ddb_scan_all(NULL, e2e_ddb_dead_letter_table());
  TS_CHECK_CASE(sqlite || items, "dead-letter table", "scan failed");
  if (sqlite || items) {
    struct dead_letter_rows d;
    const char *seq = e2e_record_sequence(rec);
    if (sqlite)
      sqlite_dead_letters(seq, &d);
    else
      dynamodb_dead_letters(items, seq, &d);
    TS_CHECK_CASE(d.count == 1 && d.record_has_seq, "twice in one batch",
                  "%ld dead letters for item %s (want 1)", d.count, seq);
  }
  struct e2e_expect e = {p, 1, 0, "2", "2", "0"};
  e2e_expect_stats(srv, "twice in one batch", &e);
  json_decref(items);
  json_decref(recs);
  json_decref(rec);
}

static void test_record_that_would_drive_counts_below_zero_is_rejected(void) {
  char p[128], never[128];
  e2e_name(p, sizeof p, "below-zero");
  e2e_name(never, sizeof never, "below-zero-never-seen");
  json_t *ins = e2e_insert(p, "5", WIN_ABSENT);
  ingest_expect("one lost game", ins, 1, 1, 0, 0, 0);
  struct e2e_image phantom_win = {p, "5", WIN_BOOL_TRUE, 0, 0};
  struct e2e_image ghost = {never, "5", WIN_ABSENT, 0, 0};
  json_t *recs = e2e_records(e2e_remove(&phantom_win), e2e_remove(&ghost),
                             e2e_insert(p, "1", WIN_BOOL_TRUE), NULL);
  struct e2e_reply r;
  struct e2e_summary sum;
  if (e2e_ingest(srv, "removals of games never counted", recs, &r, &sum)) {
    e2e_check_summary("removals of games never counted", &sum, 3, 1, 0, 0, 2);
    for (size_t i = 0; i < 2; i++) {
      json_t *e =
          rejected_item(&sum, e2e_record_sequence(json_array_get(recs, i)));
      const char *what =
          i ? "REMOVE for an unknown player" : "REMOVE of a phantom win";
      TS_CHECK_CASE(e != NULL, what, "not rejected: %.400s", r.body);
      /* Both stores give the same words (the suite runs on each). */
      char want[512];
      snprintf(want, sizeof want,
               "player \"%s\": removes a game that was never counted for "
               "this player (games or wins would go below zero)",
               i ? never : p);
      const char *reason = json_string_value(json_object_get(e, "reason"));
      TS_CHECK_CASE(e == NULL || (reason && strcmp(reason, want) == 0), what,
                    "reason %s, want %s", reason ? reason : "(none)", want);
    }
  }
  e2e_reply_clear(&r);
  struct e2e_expect e = {p, 2, 1, "6", "3", "50"};
  e2e_expect_stats(srv, "below zero", &e);
  expect_not_found("REMOVE for an unknown player creates nobody", never);
  json_decref(ins);
  json_decref(recs);
}

static void test_winner_spellings_count_wins_only_when_not_false(void) {
  char names[WIN__COUNT][128];
  json_t *recs = json_array();
  for (int w = 0; w < WIN__COUNT; w++) {
    char tag[64];
    snprintf(tag, sizeof tag, "winner-%d", w);
    e2e_name(names[w], sizeof names[w], tag);
    json_array_append_new(recs, e2e_insert(names[w], "2", (enum e2e_win)w));
    json_array_append_new(recs, e2e_insert(names[w], "4", WIN_ABSENT));
  }
  json_t *body = e2e_lambda(recs);
  ingest_expect("winner spellings", body, 2 * WIN__COUNT, 2 * WIN__COUNT, 0, 0,
                0);
  for (int w = 0; w < WIN__COUNT; w++) {
    bool win = e2e_win_counts((enum e2e_win)w);
    struct e2e_expect e = {names[w], 2,   win ? 1 : 0,
                           "6",      "3", win ? "50" : "0"};
    e2e_expect_stats(srv, e2e_win_name((enum e2e_win)w), &e);
  }
  json_decref(body);
  json_decref(recs);
}

static void test_decimal_scores_sum_exactly(void) {
  static const struct {
    const char *name;
    const char *scores[4];
    int repeat; /* the first score this many times, when > 0 */
    const char *total, *avg;
  } cases[] = {
      {"0.1 + 0.2 is 0.3", {"0.1", "0.2"}, 0, "0.3", "0.15"},
      {"a thousand cents make 10", {"0.01"}, 1000, "10", "0.01"},
      {"large and small",
       {"123456789012.34", "0.01"},
       0,
       "123456789012.35",
       "61728394506.18"},
      {"trailing zeros and integers", {"1.10", "2", "0.90"}, 0, "4", "1.33"},
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    char p[128], tag[64];
    snprintf(tag, sizeof tag, "decimal-%zu", c);
    e2e_name(p, sizeof p, tag);
    json_t *recs = json_array();
    long games = 0;
    if (cases[c].repeat > 0)
      for (int i = 0; i < cases[c].repeat; i++, games++)
        json_array_append_new(recs,
                              e2e_insert(p, cases[c].scores[0], WIN_ABSENT));
    else
      for (int i = 0; i < 4 && cases[c].scores[i]; i++, games++)
        json_array_append_new(recs,
                              e2e_insert(p, cases[c].scores[i], WIN_ABSENT));
    json_t *body = e2e_lambda(recs);
    ingest_expect(cases[c].name, body, games, games, 0, 0, 0);
    struct e2e_expect e = {p, games, 0, cases[c].total, cases[c].avg, "0"};
    e2e_expect_stats(srv, cases[c].name, &e);

    /* The text itself must be the exact decimal, not a binary float. */
    char *esc = e2e_escape(p), target[512], raw[64];
    snprintf(target, sizeof target, "/v1/players/%s/stats", esc);
    struct e2e_reply r;
    (void)e2e_get(srv, target, &r);
    bool found = e2e_raw_number(r.body, "total_score", raw, sizeof raw);
    /* Accept trailing zeros after the point ("0.30"), nothing else. */
    size_t n = found ? strlen(raw) : 0;
    if (found && strchr(raw, '.')) {
      while (n > 0 && raw[n - 1] == '0')
        n--;
      if (n > 0 && raw[n - 1] == '.')
        n--;
      raw[n] = '\0';
    }
    TS_CHECK_CASE(found && strcmp(raw, cases[c].total) == 0, cases[c].name,
                  "total_score text is %s, expected %s (body %.300s)",
                  found ? raw : "(missing)", cases[c].total, r.body);
    e2e_reply_clear(&r);
    free(esc);
    json_decref(body);
    json_decref(recs);
  }
}

/* Table: scores of the games (the first `wins` of them won) and the
 * expected derived values. Each case guards a half-way rounding that a
 * binary float would get wrong or a simple repeating decimal. */
static const struct rounding_case {
  const char *name;
  const char *scores[8];
  int repeat; /* when > 0: scores[0] this many times */
  int wins;
  const char *total, *avg, *win_percent;
} rounding_cases[] = {
    {"avg 0.005 rounds up to 0.01", {"0.01", "0"}, 0, 1, "0.01", "0.01", "50"},
    {"avg 2.675 rounds to 2.68", {"5.35", "0"}, 0, 0, "5.35", "2.68", "0"},
    {"avg 5.025 rounds to 5.03", {"10", "0.05"}, 0, 0, "10.05", "5.03", "0"},
    {"1 of 3 is 33.33", {"1", "1", "1"}, 0, 1, "3", "1", "33.33"},
    {"2 of 3 is 66.67", {"1", "1", "2"}, 0, 2, "4", "1.33", "66.67"},
    {"1 of 32 is 3.125 -> 3.13", {"1"}, 32, 1, "32", "1", "3.13"},
    {"5 of 6 is 83.33", {"2.5"}, 6, 5, "15", "2.5", "83.33"},
    {"avg 0.00667 is 0.01", {"0.01", "0.01", "0"}, 0, 0, "0.02", "0.01", "0"},
    {"negative avg -0.005 rounds to -0.01",
     {"-0.01", "0"},
     0,
     0,
     "-0.01",
     "-0.01",
     "0"},
    {"negative avg -2.675 rounds to -2.68",
     {"-5.35", "0"},
     0,
     0,
     "-5.35",
     "-2.68",
     "0"},
};

static void test_averages_and_win_percent_round_half_away_from_zero(void) {
  for (size_t c = 0; c < sizeof rounding_cases / sizeof rounding_cases[0];
       c++) {
    const struct rounding_case *rc = &rounding_cases[c];
    char p[128], tag[64];
    snprintf(tag, sizeof tag, "rounding-%zu", c);
    e2e_name(p, sizeof p, tag);
    json_t *recs = json_array();
    long games = 0;
    int n = rc->repeat > 0 ? rc->repeat : 0;
    if (!n)
      while (n < 8 && rc->scores[n])
        n++;
    for (int i = 0; i < n; i++, games++) {
      const char *score = rc->repeat > 0 ? rc->scores[0] : rc->scores[i];
      json_array_append_new(
          recs,
          e2e_insert(p, score, i < rc->wins ? WIN_BOOL_TRUE : WIN_ABSENT));
    }
    json_t *body = e2e_pipes(recs);
    ingest_expect(rc->name, body, games, games, 0, 0, 0);
    struct e2e_expect e = {p,         games,   rc->wins,
                           rc->total, rc->avg, rc->win_percent};
    e2e_expect_stats(srv, rc->name, &e);
    json_decref(body);
    json_decref(recs);
  }
}

static void test_numeric_player_attribute_names_the_player(void) {
  char digits[64];
  size_t n = 0;
  digits[n++] = '7';
  for (const char *p = e2e_run_prefix(); *p && n < 30; p++)
    if (*p >= '0' && *p <= '9')
      digits[n++] = *p;
  digits[n] = '\0';
  struct e2e_image im = {digits, "3", WIN_BOOL_TRUE, 'N', 0};
  json_t *rec = e2e_record("INSERT", NULL, NULL, NULL, &im);
  ingest_expect("player as N", rec, 1, 1, 0, 0, 0);
  struct e2e_expect e = {digits, 1, 1, "3", "3", "100"};
  e2e_expect_stats(srv, "player as N", &e);
  json_decref(rec);
}

static void test_large_batch_is_answered_well_inside_five_seconds(void) {
  char p[128];
  e2e_name(p, sizeof p, "big-batch");
  json_t *recs = json_array();
  for (int i = 0; i < 10000; i++)
    json_array_append_new(
        recs, e2e_insert(p, "1.5", i % 4 ? WIN_ABSENT : WIN_BOOL_TRUE));
  json_t *body = e2e_lambda(recs);
  struct e2e_reply r;
  struct e2e_summary sum;
  if (e2e_ingest(srv, "10000 records", body, &r, &sum)) {
    e2e_check_summary("10000 records", &sum, 10000, 10000, 0, 0, 0);
    TS_CHECK_CASE(r.seconds < 4.5 * e2e_time_scale(), "10000 records",
                  "answered in %.2f s (limit 4.5 s x %g for this build)",
                  r.seconds, e2e_time_scale());
  }
  e2e_reply_clear(&r);
  struct e2e_expect e = {p, 10000, 2500, "15000", "1.5", "25"};
  e2e_expect_stats(srv, "10000 records", &e);
  json_decref(body);
  json_decref(recs);
}

void e2e_suite_ingest(void) {
  E2E_SUITE(
      "ingest", up, down,
      TS_TEST(test_lambda_pipes_and_single_object_bodies_give_the_same_stats),
      TS_TEST(test_json_content_type_with_parameters_or_any_case_is_accepted),
      TS_TEST(test_body_starting_with_a_utf8_bom_is_accepted),
      TS_TEST(test_resent_batch_is_counted_as_duplicates_and_changes_nothing),
      TS_TEST(test_event_id_repeated_within_a_batch_is_a_duplicate),
      TS_TEST(test_event_id_shared_across_players_or_after_poison_counts),
      TS_TEST(test_modify_with_old_image_moves_game_between_players),
      TS_TEST(test_modify_with_old_image_replaces_score_and_win),
      TS_TEST(test_modify_without_old_image_adds_new_contribution),
      TS_TEST(test_remove_with_old_image_subtracts_the_game),
      TS_TEST(test_remove_without_old_image_is_skipped),
      TS_TEST(test_ttl_remove_is_skipped_unless_configured_to_subtract),
      TS_TEST(test_poison_records_are_rejected_with_reason_and_rest_applies),
      TS_TEST(test_poison_records_are_kept_once_as_dead_letters_when_resent),
      TS_TEST(test_a_rejected_record_twice_in_one_batch_is_one_dead_letter),
      TS_TEST(test_distinct_poison_records_sharing_an_event_id_are_each_kept),
      TS_TEST(test_record_that_would_drive_counts_below_zero_is_rejected),
      TS_TEST(test_winner_spellings_count_wins_only_when_not_false),
      TS_TEST(test_decimal_scores_sum_exactly),
      TS_TEST(test_averages_and_win_percent_round_half_away_from_zero),
      TS_TEST(test_numeric_player_attribute_names_the_player),
      TS_TEST(test_large_batch_is_answered_well_inside_five_seconds));
}
