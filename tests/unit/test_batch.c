/* suite_batch: envelopes, record decoding, folding into per-player entries,
 * and the aggregation of the store's verdicts into record outcomes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/bounds.h"
#include "common/buf.h"
#include "domain/backfill.h"
#include "domain/batch.h"
#include "domain/batch_outcome.h"
#include "kinesis.h"
#include "records.h"
#include "unit.h"

static json_t *parse(const char *text) {
  json_error_t err;
  json_t *j = json_loads(text, JSON_DECODE_ANY, &err);
  TS_CHECK_CASE(j != NULL, text, "fixture is not JSON: %s", err.text);
  return j;
}

/* The 200 answer batch_summary_write wrote, parsed back (NULL if it is not
 * JSON: the test then fails). */
static json_t *summary_of(const struct batch *b) {
  struct buf text;
  buf_init(&text, TS_MAX_INGEST_REPLY_BYTES);
  json_t *j = NULL;
  if (batch_summary_write(b, &text) == TS_OK)
    j = json_loads(text.data, 0, NULL);
  buf_free(&text);
  return j;
}

/* Decodes text as a body that must be accepted. The body is released at
 * once: the batch must not depend on the caller keeping it. */
/* A string check that reports instead of crashing on NULL. */
#define CHECK_STR(got, want)                                                   \
  do {                                                                         \
    const char *g_ = (got), *w_ = (want);                                      \
    TS_CHECK_CASE(g_ &&strcmp(g_, w_) == 0, #got, "got %s, want %s",           \
                  g_ ? g_ : "(null)", w_);                                     \
  } while (0)

static struct batch *try_load_named(const char *text,
                                    const struct record_names *names) {
  json_t *body = parse(text);
  struct batch *b = NULL;
  const char *detail = NULL;
  enum ts_status st = batch_new(test_doc_of(body), names, &b, &detail);
  TS_CHECK_CASE(st == TS_OK, text, "batch_new: %s (%s)", ts_status_name(st),
                detail ? detail : "");
  json_decref(body);
  return b;
}

static struct batch *try_load(const char *text) {
  return try_load_named(text, &record_names_default);
}

/* As try_load, and ends the test when the body is not accepted. */
static struct batch *load(const char *text) {
  struct batch *b = try_load(text);
  CU_ASSERT_PTR_NOT_NULL_FATAL(b);
  return b;
}

static bool delta_is(const struct batch_entry *e, int64_t games, int64_t wins,
                     const char *total) {
  if (!e)
    return false;
  char buf[DECIMAL_TEXT_MAX];
  decimal_format(e->delta.total_score, buf);
  return e->delta.games == games && e->delta.wins == wins &&
         strcmp(buf, total) == 0;
}

/* The reason of the first rejected record, or NULL. */
static const char *first_reason(const struct batch *b) {
  if (!b || batch_rejected_count(b) == 0)
    return NULL;
  const char *id, *item, *reason, *json;
  batch_rejected(b, 0, &id, &item, &reason, &json);
  return reason;
}

static void set_all(struct batch *b, enum entry_outcome o) {
  for (size_t p = 0; p < batch_player_count(b); p++)
    for (size_t e = 0; e < batch_entry_count(b, p); e++)
      batch_entry_set_outcome(b, p, e, o, NULL);
}

/* ---- envelopes ---- */

static void test_envelope_accepts_lambda_pipes_batch_and_single_record(void) {
  static const struct {
    const char *name, *body;
    size_t records;
  } cases[] = {
      {"empty Records", "{\"Records\":[]}", 0},
      {"empty array", "[]", 0},
      {"Lambda event",
       "{\"Records\":[" REC("a", "INSERT", NEW(PS("x") SC("1"))) "," REC(
           "b", "INSERT", NEW(PS("y") SC("2"))) "]}",
       2},
      {"Pipes batch", "[" REC("a", "INSERT", NEW(PS("x") SC("1"))) "]", 1},
      {"Pipes API destination", REC("a", "INSERT", NEW(PS("x") SC("1"))), 1},
      {"object without Records is one (poison) record", "{}", 1},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct batch *b = try_load(cases[i].body);
    if (!b)
      continue;
    TS_CHECK_CASE(batch_record_count(b) == cases[i].records, cases[i].name,
                  "%zu records", batch_record_count(b));
    struct batch_counts c;
    batch_counts(b, &c);
    TS_CHECK_CASE(c.received == cases[i].records, cases[i].name, "received %zu",
                  c.received);
    batch_free(b);
  }
}

static void test_envelope_errors_are_invalid_with_a_detail(void) {
  static const char *cases[] = {
      "\"x\"",
      "42",
      "null",
      "true",
      "{\"Records\":{}}",
      "{\"Records\":\"x\"}",
      "{\"Records\":null}",
      "[1]",
      "[" REC("a", "INSERT", NEW(PS("x") SC("1"))) ",\"x\"]",
      "{\"Records\":[" REC("a", "INSERT", NEW(PS("x") SC("1"))) ",null]}",
      "[[]]",
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    json_t *body = parse(cases[i]);
    struct batch *b = (struct batch *)1;
    const char *detail = NULL;
    enum ts_status st =
        batch_new(test_doc_of(body), &record_names_default, &b, &detail);
    TS_CHECK_CASE(st == TS_ERR_INVALID, cases[i], "status %s",
                  ts_status_name(st));
    TS_CHECK_CASE(b == NULL, cases[i], "out not NULL");
    TS_CHECK_CASE(detail && *detail, cases[i], "no detail");
    json_decref(body);
  }
}

static json_t *array_of_empty_objects(size_t n) {
  json_t *a = json_array();
  for (size_t i = 0; a && i < n; i++)
    json_array_append_new(a, json_object());
  return a;
}

static void test_envelope_over_the_record_limit_is_too_large(void) {
  json_t *body = array_of_empty_objects(TS_MAX_RECORDS_PER_BATCH + 1);
  struct batch *b = NULL;
  const char *detail = NULL;
  CU_ASSERT_EQUAL(batch_new(test_doc_of(body), NULL, &b, &detail),
                  TS_ERR_TOO_LARGE);
  CU_ASSERT_PTR_NULL(b);
  CU_ASSERT_PTR_NOT_NULL(detail);
  json_decref(body);

  body = array_of_empty_objects(TS_MAX_RECORDS_PER_BATCH);
  CU_ASSERT_EQUAL_FATAL(batch_new(test_doc_of(body), NULL, &b, &detail), TS_OK);
  CU_ASSERT_EQUAL(batch_record_count(b), TS_MAX_RECORDS_PER_BATCH);
  CU_ASSERT_EQUAL(batch_rejected_count(b), TS_MAX_RECORDS_PER_BATCH);
  batch_free(b);
  json_decref(body);
}

/* ---- event names ---- */

static void test_insert_adds_the_new_image_contribution(void) {
  struct batch *b = load(REC("e1", "INSERT", NEW(PS("bob") SC("10.5") WIN)));
  CU_ASSERT_EQUAL_FATAL(batch_player_count(b), 1);
  CHECK_STR(batch_player_name(b, 0), "bob");
  CU_ASSERT_EQUAL_FATAL(batch_entry_count(b, 0), 1);
  const struct batch_entry *e = batch_entry(b, 0, 0);
  CU_ASSERT(delta_is(e, 1, 1, "10.5"));
  CU_ASSERT_EQUAL(e->record, 0);
  CHECK_STR(e->event_id, "e1");
  batch_free(b);
}

/* Seed defect: MODIFY was counted as a new game. */
static void test_modify_with_old_image_is_not_a_new_game(void) {
  struct batch *b =
      load(REC("e1", "MODIFY",
               NEW(PS("bob") SC("12.5") WIN) "," OLD(PS("bob") SC("10") LOSS)));
  CU_ASSERT_EQUAL_FATAL(batch_player_count(b), 1);
  CU_ASSERT_EQUAL_FATAL(batch_entry_count(b, 0), 1);
  CU_ASSERT(delta_is(batch_entry(b, 0, 0), 0, 1, "2.5"));
  struct batch_counts c;
  batch_counts(b, &c);
  CU_ASSERT_EQUAL(c.modify_without_old, 0);
  batch_free(b);
}

static void test_modify_that_changes_nothing_counted_is_skipped(void) {
  struct batch *b =
      load(REC("e1", "MODIFY",
               NEW(PS("bob") SC("10") ",\"note\":{\"S\":\"b\"}") "," OLD(
                   PS("bob") SC("10.0"))));
  CU_ASSERT_EQUAL(batch_player_count(b), 0);
  CU_ASSERT_EQUAL(batch_record_outcome(b, 0), RECORD_SKIPPED);
  batch_free(b);
}

static void test_modify_with_old_image_moves_game_between_players(void) {
  struct batch *b =
      load(REC("e1", "MODIFY",
               NEW(PS("bob") SC("7") WIN) "," OLD(PS("alice") SC("5") WIN)));
  CU_ASSERT_EQUAL_FATAL(batch_player_count(b), 2);
  CHECK_STR(batch_player_name(b, 0), "alice");
  CHECK_STR(batch_player_name(b, 1), "bob");
  CU_ASSERT(delta_is(batch_entry(b, 0, 0), -1, -1, "-5"));
  CU_ASSERT(delta_is(batch_entry(b, 1, 0), 1, 1, "7"));
  batch_free(b);
}

/* A player may be written after the batch's others (store/turns.h) only
 * when none of its records has an entry for another player: a record is
 * applied whole or not at all. */
static void test_a_player_is_alone_unless_a_record_moves_a_game(void) {
  static const struct {
    const char *name, *body, *player;
    bool alone;
  } cases[] = {
      {"an insert", "[" REC("a", "INSERT", NEW(PS("x") SC("1"))) "]", "x",
       true},
      {"a modify that keeps the player",
       "[" REC("a", "MODIFY",
               NEW(PS("x") SC("2")) "," OLD(PS("x") SC("1"))) "]",
       "x", true},
      {"the old player of a moved game",
       "[" REC("a", "MODIFY",
               NEW(PS("y") SC("2")) "," OLD(PS("x") SC("1"))) "]",
       "x", false},
      {"the new player of a moved game",
       "[" REC("a", "MODIFY",
               NEW(PS("y") SC("2")) "," OLD(PS("x") SC("1"))) "]",
       "y", false},
      {"a player with an insert and a moved game",
       "[" REC("a", "INSERT", NEW(PS("x") SC("1"))) "," REC(
           "b", "MODIFY", NEW(PS("y") SC("2")) "," OLD(PS("x") SC("1"))) "]",
       "x", false},
      {"another player of that batch",
       "[" REC("a", "INSERT", NEW(PS("z") SC("1"))) "," REC(
           "b", "MODIFY", NEW(PS("y") SC("2")) "," OLD(PS("x") SC("1"))) "]",
       "z", true},
      {"a removed game", "[" REC("a", "REMOVE", OLD(PS("x") SC("1"))) "]", "x",
       true},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct batch *b = try_load(cases[i].body);
    if (!b)
      continue;
    size_t p = 0;
    while (p < batch_player_count(b) &&
           strcmp(batch_player_name(b, p), cases[i].player) != 0)
      p++;
    TS_CHECK_CASE(p < batch_player_count(b), cases[i].name, "no player %s",
                  cases[i].player);
    bool alone = batch_player_alone(b, p);
    TS_CHECK_CASE(alone == cases[i].alone, cases[i].name, "alone %d, want %d",
                  alone, cases[i].alone);
    batch_free(b);
  }
  struct batch *b = load("[" REC("a", "INSERT", NEW(PS("x") SC("1"))) "]");
  CU_ASSERT_FALSE(batch_player_alone(b, 1)); /* no such player */
  batch_free(b);
}

static void test_modify_without_old_image_adds_new_and_is_counted(void) {
  struct batch *b = load(REC("e1", "MODIFY", NEW(PS("bob") SC("3"))));
  CU_ASSERT_EQUAL_FATAL(batch_player_count(b), 1);
  CU_ASSERT(delta_is(batch_entry(b, 0, 0), 1, 0, "3"));
  struct batch_counts c;
  batch_counts(b, &c);
  CU_ASSERT_EQUAL(c.modify_without_old, 1);
  batch_free(b);
}

/* Seed defect: REMOVE was ignored. */
/* A REMOVE by DynamoDB's Time to Live is an expired item, not an undone
 * game: skipped unless TS_TTL_REMOVES=subtract. Only that exact identity
 * counts as TTL, and only on a REMOVE. */
static void test_ttl_removes_are_skipped_unless_asked_to_subtract(void) {
#define TTL_WHO                                                                \
  "\"userIdentity\":{\"type\":\"Service\",\"principalId\":"                    \
  "\"dynamodb.amazonaws.com\"}"
#define WITH(who, ev, ddb)                                                     \
  "{\"eventID\":\"e1\",\"eventName\":\"" ev "\"," who ",\"dynamodb\":{" ddb "}}"
  static const struct {
    const char *name, *record;
    bool subtract;
    size_t entries, skipped, ttl_skipped;
  } cases[] = {
      {"TTL REMOVE, default", WITH(TTL_WHO, "REMOVE", OLD(PS("a") SC("2"))),
       false, 0, 1, 1},
      {"TTL REMOVE, subtract", WITH(TTL_WHO, "REMOVE", OLD(PS("a") SC("2"))),
       true, 1, 0, 0},
      {"a user's REMOVE",
       WITH("\"userIdentity\":{\"type\":\"Service\",\"principalId\":"
            "\"example.com\"}",
            "REMOVE", OLD(PS("a") SC("2"))),
       false, 1, 0, 0},
      {"no userIdentity", REC("e1", "REMOVE", OLD(PS("a") SC("2"))), false, 1,
       0, 0},
      {"TTL identity on an INSERT",
       WITH(TTL_WHO, "INSERT", NEW(PS("a") SC("2"))), false, 1, 0, 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    json_t *body = json_loads(cases[i].record, 0, NULL);
    struct batch_options opt = {.names = record_names_default,
                                .ttl_removes_subtract = cases[i].subtract};
    struct batch *b = NULL;
    const char *detail = NULL;
    CU_ASSERT_FATAL(
        body && batch_new_with(test_doc_of(body), &opt, &b, &detail) == TS_OK);
    size_t entries = batch_player_count(b) ? batch_entry_count(b, 0) : 0;
    for (size_t e = 0; e < entries; e++)
      batch_entry_set_outcome(b, 0, e, ENTRY_APPLIED, NULL);
    struct batch_counts c;
    batch_counts(b, &c);
    TS_CHECK_CASE(entries == cases[i].entries &&
                      c.skipped == cases[i].skipped &&
                      c.ttl_removes_skipped == cases[i].ttl_skipped,
                  cases[i].name, "entries %zu, skipped %zu, TTL skipped %zu",
                  entries, c.skipped, c.ttl_removes_skipped);
    batch_free(b);
    json_decref(body);
  }
#undef WITH
#undef TTL_WHO
}

/* A REMOVE undoes the game of its OldImage, whatever else it carries; a
 * NewImage on a REMOVE (NEW_AND_OLD_IMAGES streams never send one, but a
 * forwarder may) is never what gets subtracted. */
static void test_remove_subtracts_its_old_image_and_nothing_else(void) {
  static const struct {
    const char *name, *record;
    size_t players; /* 0: skipped */
    const char *player, *total;
    int64_t wins;
  } cases[] = {
      {"OldImage only", REC("e1", "REMOVE", OLD(PS("bob") SC("4.25") WIN)), 1,
       "bob", "-4.25", -1},
      {"both images",
       REC("e1", "REMOVE",
           OLD(PS("bob") SC("4.25") WIN) "," NEW(PS("carol") SC("9"))),
       1, "bob", "-4.25", -1},
      {"NewImage only", REC("e1", "REMOVE", NEW(PS("carol") SC("9") WIN)), 0,
       NULL, NULL, 0},
      {"no image", REC("e1", "REMOVE", SEQ("1")), 0, NULL, NULL, 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct batch *b = load(cases[i].record);
    TS_CHECK_CASE(batch_player_count(b) == cases[i].players, cases[i].name,
                  "%zu players", batch_player_count(b));
    if (cases[i].players) {
      TS_CHECK_CASE(
          batch_player_count(b) == 1 &&
              strcmp(batch_player_name(b, 0), cases[i].player) == 0 &&
              batch_entry_count(b, 0) == 1 &&
              delta_is(batch_entry(b, 0, 0), -1, cases[i].wins, cases[i].total),
          cases[i].name, "not the OldImage's game subtracted");
    } else {
      struct batch_counts c;
      batch_counts(b, &c);
      TS_CHECK_CASE(batch_record_outcome(b, 0) == RECORD_SKIPPED &&
                        c.remove_without_old == 1 && c.skipped == 1,
                    cases[i].name, "not skipped and counted");
    }
    batch_free(b);
  }
}

static void test_image_given_as_json_null_counts_as_absent(void) {
  struct batch *b =
      load(REC("e1", "MODIFY", NEW(PS("bob") SC("3")) ",\"OldImage\":null"));
  CU_ASSERT_EQUAL_FATAL(batch_player_count(b), 1);
  CU_ASSERT(delta_is(batch_entry(b, 0, 0), 1, 0, "3"));
  batch_free(b);
}

/* ---- winner ---- */

/* Seed defect: `'winner' in keys` made winner=false a win. */
static void
test_winner_false_null_zero_empty_and_false_text_are_not_wins(void) {
  static const struct {
    const char *winner; /* the attribute, or "" for none */
    int wins;
  } cases[] = {
      {"", 0},
      {",\"winner\":{\"BOOL\":false}", 0},
      {",\"winner\":{\"NULL\":true}", 0},
      {",\"winner\":{\"N\":\"0\"}", 0},
      {",\"winner\":{\"N\":\"0.00\"}", 0},
      {",\"winner\":{\"N\":\"-0\"}", 0},
      {",\"winner\":{\"N\":\"0e5\"}", 0},
      {",\"winner\":{\"S\":\"\"}", 0},
      {",\"winner\":{\"S\":\"false\"}", 0},
      {",\"winner\":{\"S\":\"FALSE\"}", 0},
      {",\"winner\":{\"S\":\"False\"}", 0},
      {",\"winner\":{\"BOOL\":true}", 1},
      {",\"winner\":{\"N\":\"1\"}", 1},
      {",\"winner\":{\"N\":\"0.5\"}", 1},
      {",\"winner\":{\"N\":\"-1\"}", 1},
      {",\"winner\":{\"N\":\"1e999\"}", 1},
      {",\"winner\":{\"S\":\"yes\"}", 1},
      {",\"winner\":{\"S\":\"true\"}", 1},
      {",\"winner\":{\"S\":\"0\"}", 1},
      {",\"winner\":{\"S\":\"falsey\"}", 1},
      {",\"winner\":{\"L\":[]}", 1},
      {",\"winner\":{\"M\":{}}", 1},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char body[512];
    snprintf(body, sizeof body,
             "{\"eventID\":\"e\",\"eventName\":\"INSERT\",\"dynamodb\":"
             "{\"NewImage\":{\"player\":{\"S\":\"p\"},\"score\":{\"N\":\"1\"}"
             "%s}}}",
             cases[i].winner);
    struct batch *b = try_load(body);
    if (!b)
      continue;
    const struct batch_entry *e = batch_entry(b, 0, 0);
    TS_CHECK_CASE(e && e->delta.wins == cases[i].wins, cases[i].winner,
                  "wins %lld, want %d", e ? (long long)e->delta.wins : -1LL,
                  cases[i].wins);
    batch_free(b);
  }
}

static void test_malformed_winner_value_is_poison(void) {
  static const struct {
    const char *winner, *reason;
  } cases[] = {
      {",\"winner\":{\"BOOL\":\"false\"}",
       "NewImage: winner BOOL value is not a boolean"},
      {",\"winner\":{\"N\":\"abc\"}",
       "NewImage: winner N \"abc\" is not a number"},
      {",\"winner\":true",
       "NewImage: winner is not a DynamoDB attribute value"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char body[512];
    snprintf(body, sizeof body,
             "{\"eventID\":\"e\",\"eventName\":\"INSERT\",\"dynamodb\":"
             "{\"NewImage\":{\"player\":{\"S\":\"p\"},\"score\":{\"N\":\"1\"}"
             "%s}}}",
             cases[i].winner);
    struct batch *b = try_load(body);
    if (!b)
      continue;
    const char *reason = first_reason(b);
    TS_CHECK_CASE(reason && strcmp(reason, cases[i].reason) == 0,
                  cases[i].winner, "reason %s", reason ? reason : "(none)");
    CU_ASSERT_EQUAL(batch_player_count(b), 0);
    batch_free(b);
  }
}

/* ---- poison ---- */

static void test_poison_reason_names_the_field_and_image(void) {
  static const struct {
    const char *record, *reason;
  } cases[] = {
      {"{}", "missing eventID"},
      {"{\"eventID\":5}", "eventID is not a string"},
      {"{\"eventID\":\"\"}", "eventID is empty"},
      {"{\"eventID\":\"e\"}", "missing eventName"},
      {"{\"eventID\":\"e\",\"eventName\":1}", "eventName is not a string"},
      {REC("e", "UPSERT", NEW(PS("x") SC("1"))),
       "eventName \"UPSERT\" is not INSERT, MODIFY or REMOVE"},
      {"{\"eventID\":\"e\",\"eventName\":\"INSERT\"}", "missing dynamodb"},
      {"{\"eventID\":\"e\",\"eventName\":\"INSERT\",\"dynamodb\":[]}",
       "dynamodb is not an object"},
      {REC("e", "INSERT", SEQ("1")), "INSERT without dynamodb.NewImage"},
      {REC("e", "INSERT", SEQ("1") ",\"StreamViewType\":\"KEYS_ONLY\""),
       "INSERT without dynamodb.NewImage (StreamViewType \"KEYS_ONLY\"; the "
       "stream needs NEW_AND_OLD_IMAGES)"},
      {REC("e", "MODIFY", OLD(PS("x") SC("1"))),
       "MODIFY without dynamodb.NewImage"},
      {REC("e", "INSERT", "\"NewImage\":\"x\""),
       "dynamodb.NewImage is not an object"},
      {REC("e", "INSERT", NEW(PS("x"))), "NewImage: score is missing"},
      {REC("e", "INSERT", NEW(PS("x") SC("abc"))),
       "NewImage: score \"abc\" is not a number"},
      {REC("e", "INSERT", NEW(PS("x") SC(""))),
       "NewImage: score \"\" is not a number"},
      {REC("e", "INSERT", NEW(PS("x") ",\"score\":{\"S\":\"1\"}")),
       "NewImage: score must be N"},
      {REC("e", "INSERT", NEW(PS("x") ",\"score\":{\"N\":1}")),
       "NewImage: score N value is not a string"},
      {REC("e", "INSERT", NEW(PS("x") ",\"score\":1")),
       "NewImage: score is not a DynamoDB attribute value"},
      {REC("e", "INSERT", NEW(PS("x") SC("1.0000000000001"))),
       "NewImage: score \"1.0000000000001\" has more than 12 decimal places"},
      {REC("e", "INSERT", NEW(PS("x") SC("1e15"))),
       "NewImage: score \"1e15\" has more than 15 integer digits"},
      {REC("e", "INSERT", NEW(PS("x") SC("1e99"))),
       "NewImage: score \"1e99\" is out of range"},
      {REC("e", "INSERT", NEW("\"score\":{\"N\":\"1\"}")),
       "NewImage: player is missing"},
      {REC("e", "INSERT", NEW("\"player\":{\"BOOL\":true}" SC("1"))),
       "NewImage: player must be S or N"},
      {REC("e", "MODIFY",
           NEW(PS("x") SC("1")) "," OLD("\"player\":{\"NULL\":true}" SC("1"))),
       "OldImage: player must be S or N"},
      {REC("e", "REMOVE", OLD(PS("x") SC("zz"))),
       "OldImage: score \"zz\" is not a number"},
      {REC("e", "INSERT", NEW(PS("") SC("1"))), "NewImage: player is empty"},
      {REC("e", "INSERT", NEW("\"player\":{\"N\":\"x\"}" SC("1"))),
       "NewImage: player N \"x\" is not a number"},
      {REC("e", "INSERT", NEW("\"player\":{\"S\":\"a\",\"N\":\"1\"}" SC("1"))),
       "NewImage: player is not a DynamoDB attribute value"},
      {REC("e", "INSERT", NEW(PS("x") SC("\\\"quoted\\\""))),
       "NewImage: score \"\\\"quoted\\\"\" is not a number"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    json_t *body = json_loads(cases[i].record, JSON_ALLOW_NUL, NULL);
    TS_CHECK_CASE(body != NULL, cases[i].reason, "fixture is not JSON");
    struct batch *b = NULL;
    const char *detail;
    if (!body || batch_new(test_doc_of(body), NULL, &b, &detail) != TS_OK) {
      TS_CHECK_CASE(false, cases[i].reason, "batch_new failed");
      json_decref(body);
      continue;
    }
    json_decref(body);
    TS_CHECK_CASE(batch_record_outcome(b, 0) == RECORD_REJECTED,
                  cases[i].reason, "not rejected");
    const char *reason = first_reason(b);
    TS_CHECK_CASE(reason && strcmp(reason, cases[i].reason) == 0,
                  cases[i].reason, "reason %s", reason ? reason : "(none)");
    TS_CHECK_CASE(batch_player_count(b) == 0, cases[i].reason,
                  "a poison record has entries");
    batch_free(b);
  }
}

static void test_overlong_event_id_and_player_are_poison(void) {
  char id[TS_MAX_EVENT_ID_BYTES + 2], player[TS_MAX_PLAYER_BYTES + 2];
  memset(id, 'i', sizeof id - 1);
  id[sizeof id - 1] = '\0';
  memset(player, 'p', sizeof player - 1);
  player[sizeof player - 1] = '\0';
  char *body = malloc(4096);
  CU_ASSERT_PTR_NOT_NULL_FATAL(body);

  snprintf(body, 4096, REC("%s", "INSERT", NEW(PS("x") SC("1"))), id);
  struct batch *b = load(body);
  CHECK_STR(first_reason(b), "eventID is longer than 256 bytes");
  batch_free(b);
  id[sizeof id - 2] = '\0'; /* exactly the limit: fine */
  snprintf(body, 4096, REC("%s", "INSERT", NEW(PS("x") SC("1"))), id);
  b = load(body);
  CU_ASSERT_EQUAL(batch_rejected_count(b), 0);
  batch_free(b);

  snprintf(body, 4096, REC("e", "INSERT", NEW(PS("%s") SC("1"))), player);
  b = load(body);
  CHECK_STR(first_reason(b), "NewImage: player is longer than 1024 bytes");
  batch_free(b);
  player[sizeof player - 2] = '\0';
  snprintf(body, 4096, REC("e", "INSERT", NEW(PS("%s") SC("1"))), player);
  b = load(body);
  CU_ASSERT_EQUAL(batch_player_count(b), 1);
  batch_free(b);
  free(body);
}

static void test_long_values_are_cut_in_reasons(void) {
  char big[600];
  memset(big, 'z', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  char body[1024];
  snprintf(body, sizeof body, REC("e", "%s", NEW(PS("x") SC("1"))), big);
  struct batch *b = load(body);
  const char *reason = first_reason(b);
  CU_ASSERT_PTR_NOT_NULL_FATAL(reason);
  CU_ASSERT(strlen(reason) < TS_MAX_REASON_BYTES);
  CU_ASSERT_PTR_NOT_NULL(strstr(reason, "...\" is not INSERT"));
  batch_free(b);
}

/* Seed defect: int("abc") crashed the whole batch. */
static void test_non_numeric_score_rejects_only_that_record(void) {
  struct batch *b =
      load("[" REC("e1", "INSERT", NEW(PS("bob") SC("10"))) "," REC(
          "e2", "INSERT",
          NEW(PS("bob") SC("abc"))) "," REC("e3", "INSERT",
                                            NEW(PS("alice") SC("5"))) "]");
  CU_ASSERT_EQUAL_FATAL(batch_player_count(b), 2);
  CHECK_STR(batch_player_name(b, 0), "bob");
  CHECK_STR(batch_player_name(b, 1), "alice");
  CU_ASSERT_EQUAL(batch_entry_count(b, 0), 1);
  set_all(b, ENTRY_APPLIED);
  struct batch_counts c;
  batch_counts(b, &c);
  CU_ASSERT_EQUAL(c.received, 3);
  CU_ASSERT_EQUAL(c.applied, 2);
  CU_ASSERT_EQUAL(c.rejected, 1);
  CU_ASSERT_EQUAL(batch_record_outcome(b, 1), RECORD_REJECTED);
  const char *id, *item, *reason, *json;
  batch_rejected(b, 0, &id, &item, &reason, &json);
  CHECK_STR(id, "e2");
  CHECK_STR(reason, "NewImage: score \"abc\" is not a number");
  batch_free(b);
}

/* ---- identity, players ---- */

static void test_player_number_uses_canonical_text(void) {
  struct batch *b = load(
      "[" REC("e1", "INSERT", NEW("\"player\":{\"N\":\"42.0\"}" SC("1"))) "," REC(
          "e2", "INSERT",
          NEW("\"player\":{\"N\":\"4.2e1\"}" SC(
              "2"))) "," REC("e3", "INSERT",
                             NEW(PS("42") SC(
                                 "3"))) "," REC("e4", "INSERT",
                                                NEW("\"player\":{\"N\":\"-0."
                                                    "50\"}" SC("4"))) "]");
  CU_ASSERT_EQUAL_FATAL(batch_player_count(b), 2);
  CHECK_STR(batch_player_name(b, 0), "42");
  CU_ASSERT_EQUAL(batch_entry_count(b, 0), 3);
  CHECK_STR(batch_player_name(b, 1), "-0.5");
  batch_free(b);
}

static void test_modify_keeping_a_numeric_player_nets_to_one_entry(void) {
  struct batch *b = load(REC("e1", "MODIFY",
                             NEW("\"player\":{\"N\":\"7\"}" SC("2")) "," OLD(
                                 "\"player\":{\"S\":\"7\"}" SC("1"))));
  CU_ASSERT_EQUAL_FATAL(batch_player_count(b), 1);
  CU_ASSERT_EQUAL(batch_entry_count(b, 0), 1);
  CU_ASSERT(delta_is(batch_entry(b, 0, 0), 0, 0, "1"));
  batch_free(b);
}

static void test_entries_group_by_player_in_first_seen_order(void) {
  struct batch *b =
      load("[" REC("e1", "INSERT", NEW(PS("carol") SC("1"))) "," REC(
          "e2", "INSERT",
          NEW(PS("alice") SC("2"))) "," REC("e3", "INSERT",
                                            NEW(PS("carol") SC(
                                                "3"))) "," REC("e4", "REMOVE",
                                                               OLD(PS("bob") SC(
                                                                   "4"))) "]");
  CU_ASSERT_EQUAL_FATAL(batch_player_count(b), 3);
  CHECK_STR(batch_player_name(b, 0), "carol");
  CHECK_STR(batch_player_name(b, 1), "alice");
  CHECK_STR(batch_player_name(b, 2), "bob");
  CU_ASSERT_EQUAL_FATAL(batch_entry_count(b, 0), 2);
  CHECK_STR(batch_entry(b, 0, 0)->event_id, "e1");
  CHECK_STR(batch_entry(b, 0, 1)->event_id, "e3");
  CU_ASSERT_EQUAL(batch_entry(b, 0, 1)->record, 2);
  CU_ASSERT_PTR_NULL(batch_entry(b, 0, 2));
  CU_ASSERT_PTR_NULL(batch_player_name(b, 3));
  batch_free(b);
}

/* More than 128 players in one batch: a Pipe's batch of 10,000 records
 * easily has them (an index's raw bytes once made a key jansson refused,
 * and every such batch failed). */
/* The batch decoded from recs as text (recs is taken). */
static struct batch *load_tree(json_t *recs) {
  char *text = json_dumps(recs, JSON_COMPACT);
  json_decref(recs);
  CU_ASSERT_PTR_NOT_NULL_FATAL(text);
  struct batch *b = load(text);
  free(text);
  return b;
}

static void test_batch_of_many_players_decodes(void) {
  enum { N = 300 };
  json_t *recs = json_array();
  for (int i = 0; i < N; i++) {
    char ev[32], who[32];
    snprintf(ev, sizeof ev, "ev-%d", i);
    snprintf(who, sizeof who, "player-%d", i);
    json_array_append_new(
        recs, json_pack("{s:s, s:s, s:{s:{s:{s:s}, s:{s:s}}}}", "eventID", ev,
                        "eventName", "INSERT", "dynamodb", "NewImage", "player",
                        "S", who, "score", "N", "1"));
  }
  struct batch *b = load_tree(recs);
  CU_ASSERT_PTR_NOT_NULL_FATAL(b);
  CU_ASSERT_EQUAL(batch_player_count(b), N);
  CHECK_STR(batch_player_name(b, N - 1), "player-299");
  batch_free(b);
}

/* The most a batch can index: TS_MAX_RECORDS_PER_BATCH records, each
 * moving a game between two players met for the first time (two entries
 * a record), two records sharing each eventID. */
static void test_full_batch_of_moves_indexes_every_player(void) {
  enum { N = TS_MAX_RECORDS_PER_BATCH };
  json_t *recs = json_array();
  for (int i = 0; i < N; i++) {
    char ev[32], from[32], to[32];
    snprintf(ev, sizeof ev, "ev-%d", i / 2);
    snprintf(from, sizeof from, "from-%d", i);
    snprintf(to, sizeof to, "to-%d", i);
    json_array_append_new(
        recs, json_pack("{s:s, s:s, s:{s:{s:{s:s}, s:{s:s}}, "
                        "s:{s:{s:s}, s:{s:s}}}}",
                        "eventID", ev, "eventName", "MODIFY", "dynamodb",
                        "NewImage", "player", "S", to, "score", "N", "2",
                        "OldImage", "player", "S", from, "score", "N", "1"));
  }
  struct batch *b = load_tree(recs);
  CU_ASSERT_PTR_NOT_NULL_FATAL(b);
  CU_ASSERT_EQUAL(batch_player_count(b), 2 * N);
  CHECK_STR(batch_player_name(b, 0), "from-0");
  CHECK_STR(batch_player_name(b, 2 * N - 1), "to-9999");
  for (size_t p = 0; p < batch_player_count(b); p++)
    CU_ASSERT_EQUAL(batch_entry_count(b, p), 1);
  batch_free(b);
}

static void test_attribute_names_are_configurable(void) {
  const struct record_names names = {"who", "points", "won"};
  struct batch *b = try_load_named(
      REC("e1", "INSERT",
          NEW("\"who\":{\"S\":\"bob\"},\"points\":{\"N\":\"2\"},\"won\":{"
              "\"BOOL\":true},\"player\":{\"S\":\"nobody\"}")),
      &names);
  CU_ASSERT_PTR_NOT_NULL_FATAL(b);
  CU_ASSERT_EQUAL_FATAL(batch_player_count(b), 1);
  CHECK_STR(batch_player_name(b, 0), "bob");
  CU_ASSERT(delta_is(batch_entry(b, 0, 0), 1, 1, "2"));
  batch_free(b);
}

static void
test_item_identifier_is_sequence_number_else_event_id_else_position(void) {
  struct batch *b = load(
      "[" REC("e1", "INSERT", SEQ("111") "," NEW(PS("x") SC("bad"))) "," REC(
          "e2", "INSERT",
          NEW(PS("x") SC("bad"))) ",{\"dynamodb\":{" SEQ("333") "}},{}]");
  CU_ASSERT_EQUAL_FATAL(batch_rejected_count(b), 4);
  static const char *want_id[] = {"e1", "e2", NULL, NULL};
  static const char *want_item[] = {"111", "e2", "333", "#3"};
  for (size_t i = 0; i < 4; i++) {
    const char *id, *item, *reason, *json;
    batch_rejected(b, i, &id, &item, &reason, &json);
    CU_ASSERT(want_id[i] ? id && strcmp(id, want_id[i]) == 0 : id == NULL);
    CU_ASSERT(want_item[i] ? item && strcmp(item, want_item[i]) == 0
                           : item == NULL);
  }
  json_t *summary = summary_of(b);
  CU_ASSERT_PTR_NOT_NULL_FATAL(summary);
  json_t *third = json_array_get(json_object_get(summary, "rejected"), 2);
  CU_ASSERT(json_is_null(json_object_get(third, "eventID")));
  CHECK_STR(json_string_value(json_object_get(third, "itemIdentifier")), "333");
  json_decref(summary);
  batch_free(b);
}

/* ---- outcomes ---- */

static void test_record_outcome_aggregates_entry_outcomes(void) {
  static const struct {
    const char *name;
    enum entry_outcome old_entry, new_entry;
    enum record_outcome want;
  } cases[] = {
      {"both applied", ENTRY_APPLIED, ENTRY_APPLIED, RECORD_APPLIED},
      {"both duplicates", ENTRY_DUPLICATE, ENTRY_DUPLICATE, RECORD_DUPLICATE},
      {"one applied, one duplicate", ENTRY_DUPLICATE, ENTRY_APPLIED,
       RECORD_APPLIED},
      {"one rejected", ENTRY_REJECTED, ENTRY_APPLIED, RECORD_REJECTED},
      {"rejected and duplicate", ENTRY_DUPLICATE, ENTRY_REJECTED,
       RECORD_REJECTED},
  };
  const char *record =
      REC("e1", "MODIFY",
          SEQ("9") "," NEW(PS("bob") SC("7")) "," OLD(PS("alice") SC("5")));
  json_t *want_json = parse(record);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct batch *b = try_load(record);
    if (!b)
      continue;
    batch_entry_set_outcome(b, 0, 0, cases[i].old_entry,
                            "games would become negative");
    batch_entry_set_outcome(b, 1, 0, cases[i].new_entry,
                            "games would become negative");
    enum record_outcome got = batch_record_outcome(b, 0);
    TS_CHECK_CASE(got == cases[i].want, cases[i].name, "outcome %d, want %d",
                  (int)got, (int)cases[i].want);
    struct batch_counts c;
    batch_counts(b, &c);
    TS_CHECK_CASE(c.received ==
                      c.applied + c.duplicates + c.skipped + c.rejected,
                  cases[i].name, "counts do not partition");
    if (cases[i].want == RECORD_REJECTED) {
      const char *id, *item, *reason, *json;
      CU_ASSERT_EQUAL(batch_rejected_count(b), 1);
      batch_rejected(b, 0, &id, &item, &reason, &json);
      const char *who = cases[i].old_entry == ENTRY_REJECTED ? "alice" : "bob";
      char want[128];
      snprintf(want, sizeof want, "player \"%s\": games would become negative",
               who);
      TS_CHECK_CASE(reason && strcmp(reason, want) == 0, cases[i].name,
                    "reason %s", reason ? reason : "(none)");
      CHECK_STR(id, "e1");
      CHECK_STR(item, "9");
      json_t *got_json = json ? json_loads(json, 0, NULL) : NULL;
      TS_CHECK_CASE(json_equal(got_json, want_json), cases[i].name,
                    "record_json %s", json ? json : "(null)");
      CU_ASSERT_PTR_NULL(strchr(json ? json : "", '\n'));
      json_decref(got_json);
    } else {
      CU_ASSERT_EQUAL(batch_rejected_count(b), 0);
    }
    batch_free(b);
  }
  json_decref(want_json);
}

static void test_reset_outcomes_forgets_earlier_verdicts(void) {
  struct batch *b = load(REC("e1", "INSERT", NEW(PS("bob") SC("1"))));
  batch_entry_set_outcome(b, 0, 0, ENTRY_REJECTED, "x");
  CU_ASSERT_EQUAL(batch_rejected_count(b), 1);
  batch_reset_outcomes(b);
  CU_ASSERT_EQUAL(batch_rejected_count(b), 0);
  batch_entry_set_outcome(b, 0, 0, ENTRY_DUPLICATE, NULL);
  CU_ASSERT_EQUAL(batch_record_outcome(b, 0), RECORD_DUPLICATE);
  batch_entry_set_outcome(b, 0, 0, ENTRY_APPLIED, NULL);
  CU_ASSERT_EQUAL(batch_record_outcome(b, 0), RECORD_APPLIED);
  /* Out-of-range indices are ignored. */
  batch_entry_set_outcome(b, 5, 0, ENTRY_REJECTED, "x");
  batch_entry_set_outcome(b, 0, 5, ENTRY_REJECTED, "x");
  CU_ASSERT_EQUAL(batch_rejected_count(b), 0);
  batch_free(b);
}

static void test_rejected_are_listed_in_record_order(void) {
  struct batch *b =
      load("[" REC("e1", "INSERT", NEW(PS("bob") SC("1"))) "," REC(
          "e2", "INSERT",
          NEW(PS("bob") SC("x"))) "," REC("e3", "INSERT",
                                          NEW(PS("al") SC("1"))) "]");
  /* The store rejects e3 before e1 (players in any order). */
  batch_entry_set_outcome(b, 1, 0, ENTRY_REJECTED, "late");
  batch_entry_set_outcome(b, 0, 0, ENTRY_REJECTED, "early");
  CU_ASSERT_EQUAL_FATAL(batch_rejected_count(b), 3);
  static const char *want[] = {"e1", "e2", "e3"};
  for (size_t i = 0; i < 3; i++) {
    const char *id, *item, *reason, *json;
    batch_rejected(b, i, &id, &item, &reason, &json);
    CHECK_STR(id, want[i]);
  }
  const char *id, *item, *reason, *json;
  batch_rejected(b, 3, &id, &item, &reason, &json);
  CU_ASSERT_PTR_NULL(reason);
  batch_free(b);
}

static void test_summary_counts_partition_the_batch(void) {
  struct batch *b = load(
      "{\"Records\":[" REC("e1", "INSERT", NEW(PS("a") SC("1"))) "," REC("e2", "INSERT", NEW(PS("b") SC("1"))) "," REC(
          "e1", "INSERT",
          NEW(PS("a") SC(
              "1"))) "," REC("e3", "REMOVE",
                             SEQ("5")) "," REC("e4", "INSERT",
                                               NEW(PS("c") SC(
                                                   "?"))) "," REC("e5",
                                                                  "INSERT",
                                                                  NEW(PS("d") SC(
                                                                      "1"))) "," REC("e6",
                                                                                     "INSERT",
                                                                                     NEW(PS("e") SC(
                                                                                         "1"))) "]}");
  CU_ASSERT_EQUAL_FATAL(batch_player_count(b), 4);
  batch_entry_set_outcome(b, 0, 0, ENTRY_APPLIED, NULL);   /* a: e1 */
  batch_entry_set_outcome(b, 0, 1, ENTRY_DUPLICATE, NULL); /* a: e1 again */
  batch_entry_set_outcome(b, 1, 0, ENTRY_DUPLICATE, NULL); /* b: e2 */
  batch_entry_set_outcome(b, 2, 0, ENTRY_REJECTED, "no");  /* d: e5 */
  batch_entry_set_outcome(b, 3, 0, ENTRY_APPLIED, NULL);   /* e: e6 */
  json_t *s = summary_of(b);
  CU_ASSERT_PTR_NOT_NULL_FATAL(s);
  json_int_t received = json_integer_value(json_object_get(s, "received"));
  json_int_t applied = json_integer_value(json_object_get(s, "applied"));
  json_int_t dups = json_integer_value(json_object_get(s, "duplicates"));
  json_int_t skipped = json_integer_value(json_object_get(s, "skipped"));
  json_t *rejected = json_object_get(s, "rejected");
  CU_ASSERT_EQUAL(received, 7);
  CU_ASSERT_EQUAL(applied, 2);
  CU_ASSERT_EQUAL(dups, 2);
  CU_ASSERT_EQUAL(skipped, 1);
  CU_ASSERT_EQUAL_FATAL(json_array_size(rejected), 2);
  CU_ASSERT_EQUAL(received, applied + dups + skipped +
                                (json_int_t)json_array_size(rejected));
  json_t *r0 = json_array_get(rejected, 0), *r1 = json_array_get(rejected, 1);
  CHECK_STR(json_string_value(json_object_get(r0, "eventID")), "e4");
  CHECK_STR(json_string_value(json_object_get(r0, "reason")),
            "NewImage: score \"?\" is not a number");
  CHECK_STR(json_string_value(json_object_get(r1, "eventID")), "e5");
  CHECK_STR(json_string_value(json_object_get(r1, "reason")),
            "player \"d\": no");
  CU_ASSERT_EQUAL(json_object_size(r0), 3);
  CU_ASSERT_EQUAL(json_object_size(s), 5);
  json_decref(s);

  struct batch_counts c;
  batch_counts(b, &c);
  CU_ASSERT_EQUAL(c.rejected, 2);
  CU_ASSERT_EQUAL(c.remove_without_old, 1);
  batch_free(b);
}

static void test_empty_batch_summary_is_all_zero(void) {
  struct batch *b = load("[]");
  json_t *s = summary_of(b);
  json_t *want = parse("{\"received\":0,\"applied\":0,\"duplicates\":0,"
                       "\"skipped\":0,\"rejected\":[]}");
  CU_ASSERT(json_equal(s, want));
  json_decref(s);
  json_decref(want);
  batch_free(b);
  batch_free(NULL);
}

/* ---- Kinesis records (Kinesis Data Streams for DynamoDB) ---- */

#define K_INSERT KREC("in-1", "INSERT", NEW(PS("kim") SC("12.5") WIN))

/* body with "%K" replaced by the Kinesis record text k; malloc'd. */
static char *with_kinesis(const char *body, const char *k) {
  const char *at = strstr(body, "%K");
  size_t n = strlen(body) - 2 + strlen(k);
  char *out = malloc(n + 1);
  CU_ASSERT_FATAL(at && out);
  snprintf(out, n + 1, "%.*s%s%s", (int)(at - body), body, k, at + 2);
  return out;
}

static void
test_kinesis_record_applies_its_inner_change_in_every_envelope(void) {
  static const struct {
    const char *name, *body;
    size_t records, kinesis_at;
  } cases[] = {
      {"Lambda event", "{\"Records\":[%K]}", 1, 0},
      {"Pipes batch", "[%K]", 1, 0},
      {"single object (API destination)", "%K", 1, 0},
      {"mixed with a Streams record",
       "[" REC("s-1", "INSERT", SEQ("7") "," NEW(PS("sam") SC("1"))) ",%K]", 2,
       1},
  };
  char *k = kinesis_record(K_INSERT, "49590338271490256608559692538361571095",
                           "4959033827149025660855969253836157109");
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char *body = with_kinesis(cases[i].body, k);
    struct batch *b = try_load(body);
    free(body);
    if (!b)
      continue;
    TS_CHECK_CASE(batch_record_count(b) == cases[i].records, cases[i].name,
                  "%zu records", batch_record_count(b));
    TS_CHECK_CASE(batch_rejected_count(b) == 0, cases[i].name, "rejected: %s",
                  first_reason(b));
    size_t p = batch_player_count(b) - 1; /* kim comes last */
    const struct batch_entry *e = batch_entry(b, p, 0);
    TS_CHECK_CASE(batch_player_name(b, p) &&
                      strcmp(batch_player_name(b, p), "kim") == 0 &&
                      batch_entry_count(b, p) == 1 && delta_is(e, 1, 1, "12.5"),
                  cases[i].name, "kim's entry is not (1, 1, 12.5)");
    if (e) {
      /* The exactly-once key is the inner eventID, not the outer one. */
      TS_CHECK_CASE(strcmp(e->event_id, "in-1") == 0, cases[i].name,
                    "eventID %s", e->event_id);
      TS_CHECK_CASE(e->record == cases[i].kinesis_at, cases[i].name,
                    "record %zu", e->record);
      /* ApproximateCreationDateTime 1764230000123 is milliseconds. */
      TS_CHECK_CASE(e->created_s == 1764230000, cases[i].name, "created_s %lld",
                    (long long)e->created_s);
      TS_CHECK_CASE(e->change->seq == NULL, cases[i].name,
                    "change.seq %s: Kinesis has no SequenceNumber",
                    e->change->seq);
      char key[BACKFILL_KEY_HEX];
      json_t *keys = jdoc_to_json(e->change->doc, e->change->keys);
      TS_CHECK_CASE(keys && backfill_item_key(keys, NULL, 0, key),
                    cases[i].name, "change.keys: dynamodb.Keys not read");
      json_decref(keys);
    }
    batch_free(b);
  }
  free(k);
}

static void test_kinesis_creation_time_in_ms_or_us_is_cut_to_seconds(void) {
  static const struct {
    const char *name, *value;
    int64_t want;
  } cases[] = {
      {"seconds", "1764230000", 1764230000},
      {"milliseconds", "1764230000123", 1764230000},
      {"microseconds", "1764230000123456", 1764230000},
      {"microseconds as digits", "\"1764230000123456\"", 1764230000},
      {"not a time", "\"2026-11-27T07:53:20Z\"", 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char inner[512];
    snprintf(inner, sizeof inner,
             "{\"eventID\":\"c\",\"eventName\":\"INSERT\",\"dynamodb\":{"
             "\"ApproximateCreationDateTime\":%s," NEW(PS("kim") SC("1")) "}}",
             cases[i].value);
    char *k = kinesis_record(inner, "1", "1");
    struct batch *b = try_load(k);
    free(k);
    const struct batch_entry *e = b ? batch_entry(b, 0, 0) : NULL;
    TS_CHECK_CASE(e && e->created_s == cases[i].want, cases[i].name,
                  "created_s %lld", e ? (long long)e->created_s : -1LL);
    batch_free(b);
  }
}

static void test_kinesis_inner_record_follows_the_streams_rules(void) {
  static const struct {
    const char *name, *inner;
    size_t players;
    int64_t games0, wins0;
    const char *total0;
    size_t ttl_skipped;
  } cases[] = {
      {"MODIFY moving a game",
       KREC("m-1", "MODIFY",
            NEW(PS("bo") SC("3")) "," OLD(PS("al") SC("2") WIN)),
       2, -1, -1, "-2", 0},
      {"REMOVE subtracts the old image",
       KREC("r-1", "REMOVE", OLD(PS("al") SC("2") WIN)), 1, -1, -1, "-2", 0},
      {"REMOVE by TTL is skipped",
       "{\"eventID\":\"t-1\",\"eventName\":\"REMOVE\",\"userIdentity\":{"
       "\"type\":\"Service\",\"principalId\":\"dynamodb.amazonaws.com\"},"
       "\"dynamodb\":{\"Keys\":{\"g\":{\"S\":\"1\"}}," OLD(PS("al")
                                                               SC("2")) "}}",
       0, 0, 0, NULL, 1},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char *k = kinesis_record(cases[i].inner, "1", "1");
    struct batch *b = try_load(k);
    free(k);
    if (!b)
      continue;
    TS_CHECK_CASE(batch_player_count(b) == cases[i].players, cases[i].name,
                  "%zu players", batch_player_count(b));
    if (cases[i].total0)
      TS_CHECK_CASE(delta_is(batch_entry(b, 0, 0), cases[i].games0,
                             cases[i].wins0, cases[i].total0),
                    cases[i].name, "first entry's delta");
    struct batch_counts c;
    batch_counts(b, &c);
    TS_CHECK_CASE(c.ttl_removes_skipped == cases[i].ttl_skipped, cases[i].name,
                  "ttl skipped %zu", c.ttl_removes_skipped);
    batch_free(b);
  }
}

static void test_kinesis_poison_is_rejected_with_the_reason_of_its_data(void) {
  static const char nul_json[] = "{\"eventID\":\"n\0\",\"eventName\":1}";
  char *nul = kinesis_b64(nul_json, sizeof nul_json - 1);
  char *array = kinesis_b64("[1,2]", 5);
  char *text = kinesis_b64("not json", 8);
  static const char no_ddb_json[] = "{\"eventID\":\"x-1\",\"eventName\":"
                                    "\"INSERT\",\"eventSource\":"
                                    "\"aws:dynamodb\"}";
  char *no_ddb = kinesis_b64(no_ddb_json, sizeof no_ddb_json - 1);
  static const char bad_name_json[] = "{\"eventID\":\"x-2\",\"eventName\":"
                                      "\"aws:kinesis:record\",\"dynamodb\":{}}";
  char *bad_name = kinesis_b64(bad_name_json, sizeof bad_name_json - 1);
  static const char bad_score_json[] =
      KREC("x-3", "INSERT", NEW(PS("kim") SC("lots")));
  char *bad_score = kinesis_b64(bad_score_json, sizeof bad_score_json - 1);
  const struct {
    const char *name, *data, *want;
  } cases[] = {
      {"not base64: a character outside the alphabet", "\"eyJ!ZQ==\"",
       "kinesis.data is not base64: a character outside the alphabet at byte "
       "4"},
      {"not base64: length", "\"eyJ\"",
       "kinesis.data is not base64: its length is not a multiple of 4 (3 "
       "characters)"},
      {"not base64: padding in the middle", "\"QQ==QUJD\"",
       "kinesis.data is not base64: '=' before the end at byte 3"},
      {"not base64: whitespace", "\"QUJD \"",
       "kinesis.data is not base64: its length is not a multiple of 4 (5 "
       "characters)"},
      {"not base64: nonzero bits after the last byte", "\"QR==\"",
       "kinesis.data is not base64: nonzero bits after the last byte at byte "
       "2"},
      {"base64 of text that is not JSON", text,
       "kinesis.data is not JSON: invalid token at line 1, column 1"},
      {"base64 of a JSON array", array, "kinesis.data is not a JSON object"},
      {"base64 of JSON with a NUL byte", nul,
       "kinesis.data is not JSON: control character in a string at line 1, "
       "column 14"},
      {"base64 of an object without dynamodb", no_ddb,
       "kinesis.data: missing dynamodb"},
      {"base64 of an object with the outer eventName", bad_name,
       "kinesis.data: eventName \"aws:kinesis:record\" is not INSERT, MODIFY "
       "or REMOVE"},
      {"base64 of a change with a bad score", bad_score,
       "kinesis.data: NewImage: score \"lots\" is not a number"},
      {"data not a string", "5", "kinesis.data is not a string"},
      {"data empty", "\"\"", "kinesis.data is empty"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char *k = kinesis_wrap(cases[i].data, "4959", "4959");
    char *body = with_kinesis(
        "[%K," REC("ok-1", "INSERT", NEW(PS("ok") SC("1"))) "]", k);
    struct batch *b = try_load(body);
    free(body);
    if (!b) {
      free(k);
      continue;
    }
    const char *reason = first_reason(b);
    TS_CHECK_CASE(reason && strcmp(reason, cases[i].want) == 0, cases[i].name,
                  "reason %s", reason ? reason : "(none)");
    TS_CHECK_CASE(batch_rejected_count(b) == 1 &&
                      batch_record_outcome(b, 0) == RECORD_REJECTED &&
                      batch_player_count(b) == 1,
                  cases[i].name, "the batch did not go on past the poison");
    /* The dead letter keeps the outer record as received. */
    const char *id, *item, *why, *json;
    batch_rejected(b, 0, &id, &item, &why, &json);
    json_t *got = json ? json_loads(json, 0, NULL) : NULL, *want = parse(k);
    TS_CHECK_CASE(json_equal(got, want), cases[i].name, "record_json %s",
                  json ? json : "(null)");
    TS_CHECK_CASE(item && strcmp(item, "4959") == 0, cases[i].name,
                  "itemIdentifier %s", item ? item : "(null)");
    json_decref(got);
    json_decref(want);
    batch_free(b);
    free(k);
  }
  /* Not a Kinesis record's shape at all. */
  static const struct {
    const char *name, *record, *want;
  } shapes[] = {
      {"kinesis not an object", "{\"kinesis\":\"x\"}",
       "kinesis is not an object"},
      {"kinesis without data", "{\"kinesis\":{\"sequenceNumber\":\"1\"}}",
       "missing kinesis.data"},
      {"eventSource aws:kinesis without kinesis",
       "{\"eventSource\":\"aws:kinesis\",\"eventID\":\"shardId-0:1\"}",
       "missing kinesis"},
  };
  for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
    struct batch *b = try_load(shapes[i].record);
    const char *reason = first_reason(b);
    TS_CHECK_CASE(reason && strcmp(reason, shapes[i].want) == 0, shapes[i].name,
                  "reason %s", reason ? reason : "(none)");
    batch_free(b);
  }
  free(nul);
  free(array);
  free(text);
  free(no_ddb);
  free(bad_name);
  free(bad_score);
}

static void test_kinesis_item_identifier_is_outer_sequence_else_inner_id(void) {
  const char *bad = KREC("in-7", "INSERT", NEW(PS("kim") SC("bad")));
  char *with_seq = kinesis_record(bad, "4960", "4960");
  char *without = kinesis_record(bad, NULL, "4961");
  char *undecodable = kinesis_wrap("\"!!!!\"", NULL, "4962");
  size_t cap = strlen(with_seq) + strlen(without) + strlen(undecodable) + 8;
  char *body = malloc(cap);
  CU_ASSERT_FATAL(body != NULL);
  snprintf(body, cap, "[%s,%s,%s]", with_seq, without, undecodable);
  struct batch *b = load(body);
  free(body);
  free(with_seq);
  free(without);
  free(undecodable);
  CU_ASSERT_EQUAL_FATAL(batch_rejected_count(b), 3);
  static const char *want_id[] = {"in-7", "in-7", NULL};
  static const char *want_item[] = {"4960", "in-7", "#2"};
  json_t *summary = summary_of(b);
  CU_ASSERT_PTR_NOT_NULL_FATAL(summary);
  for (size_t i = 0; i < 3; i++) {
    const char *id, *item, *reason, *json;
    batch_rejected(b, i, &id, &item, &reason, &json);
    CU_ASSERT(want_id[i] ? id && strcmp(id, want_id[i]) == 0 : id == NULL);
    CHECK_STR(item, want_item[i]);
    json_t *one = json_array_get(json_object_get(summary, "rejected"), i);
    CHECK_STR(json_string_value(json_object_get(one, "itemIdentifier")),
              want_item[i]);
  }
  json_decref(summary);
  batch_free(b);
}

void suite_batch(void) {
  TS_SUITE(
      "batch",
      TS_TEST(test_envelope_accepts_lambda_pipes_batch_and_single_record),
      TS_TEST(test_envelope_errors_are_invalid_with_a_detail),
      TS_TEST(test_envelope_over_the_record_limit_is_too_large),
      TS_TEST(test_insert_adds_the_new_image_contribution),
      TS_TEST(test_modify_with_old_image_is_not_a_new_game),
      TS_TEST(test_modify_that_changes_nothing_counted_is_skipped),
      TS_TEST(test_modify_with_old_image_moves_game_between_players),
      TS_TEST(test_a_player_is_alone_unless_a_record_moves_a_game),
      TS_TEST(test_modify_without_old_image_adds_new_and_is_counted),
      TS_TEST(test_remove_subtracts_its_old_image_and_nothing_else),
      TS_TEST(test_image_given_as_json_null_counts_as_absent),
      TS_TEST(test_winner_false_null_zero_empty_and_false_text_are_not_wins),
      TS_TEST(test_malformed_winner_value_is_poison),
      TS_TEST(test_poison_reason_names_the_field_and_image),
      TS_TEST(test_overlong_event_id_and_player_are_poison),
      TS_TEST(test_long_values_are_cut_in_reasons),
      TS_TEST(test_non_numeric_score_rejects_only_that_record),
      TS_TEST(test_player_number_uses_canonical_text),
      TS_TEST(test_modify_keeping_a_numeric_player_nets_to_one_entry),
      TS_TEST(test_entries_group_by_player_in_first_seen_order),
      TS_TEST(test_attribute_names_are_configurable),
      TS_TEST(test_batch_of_many_players_decodes),
      TS_TEST(test_full_batch_of_moves_indexes_every_player),
      TS_TEST(test_ttl_removes_are_skipped_unless_asked_to_subtract),
      TS_TEST(
          test_item_identifier_is_sequence_number_else_event_id_else_position),
      TS_TEST(test_record_outcome_aggregates_entry_outcomes),
      TS_TEST(test_reset_outcomes_forgets_earlier_verdicts),
      TS_TEST(test_rejected_are_listed_in_record_order),
      TS_TEST(test_summary_counts_partition_the_batch),
      TS_TEST(test_empty_batch_summary_is_all_zero),
      TS_TEST(test_kinesis_record_applies_its_inner_change_in_every_envelope),
      TS_TEST(test_kinesis_inner_record_follows_the_streams_rules),
      TS_TEST(test_kinesis_creation_time_in_ms_or_us_is_cut_to_seconds),
      TS_TEST(test_kinesis_poison_is_rejected_with_the_reason_of_its_data),
      TS_TEST(test_kinesis_item_identifier_is_outer_sequence_else_inner_id));
}
