/* Kinesis Data Streams for DynamoDB by POST: Kinesis records (the change
 * in base64 in kinesis.data) in every envelope and mixed with Streams
 * records, exactly once by the inner eventID across redeliveries with new
 * outer ids, poison inside the data dead-lettered with its reason while
 * the batch goes on, and a REMOVE that arrives before its INSERT. */
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

static void test_kinesis_records_apply_in_every_envelope_and_mixed(void) {
  char p[128];
  e2e_name(p, sizeof p, "kin-env");
  struct e2e_image g1 = {p, "10", WIN_BOOL_TRUE, 0, 0};
  struct e2e_image g2 = {p, "4", WIN_ABSENT, 0, 0};
  struct e2e_image g2b = {p, "6", WIN_N_ONE, 0, 0};
  struct e2e_image g3 = {p, "1.5", WIN_ABSENT, 0, 0};
  /* Lambda: a Kinesis record and a Streams record in one batch. */
  json_t *recs = e2e_records(
      e2e_kinesis(e2e_record("INSERT", NULL, "kin-env-1", NULL, &g1)),
      e2e_record("INSERT", NULL, "kin-env-2", NULL, &g2), NULL);
  json_t *body = e2e_lambda(recs);
  e2e_ingest_expect(srv, "Lambda envelope, mixed", body, 2, 2, 0, 0, 0);
  json_decref(body);
  json_decref(recs);
  /* Pipes batch: a Kinesis MODIFY of the Streams record's game. */
  recs = e2e_records(
      e2e_kinesis(e2e_record("MODIFY", NULL, "kin-env-2", &g2, &g2b)), NULL);
  body = e2e_pipes(recs);
  e2e_ingest_expect(srv, "Pipes array", body, 1, 1, 0, 0, 0);
  json_decref(body);
  json_decref(recs);
  /* One object: what a Pipe's API destination sends. */
  json_t *one = e2e_kinesis(e2e_record("INSERT", NULL, "kin-env-3", NULL, &g3));
  e2e_ingest_expect(srv, "single object", one, 1, 1, 0, 0, 0);
  json_decref(one);
  struct e2e_expect want = {p, 3, 2, "17.5", "5.83", "66.67"};
  e2e_expect_stats(srv, "Kinesis in every envelope", &want);
}

static void test_kinesis_redelivery_with_new_outer_ids_is_a_duplicate(void) {
  char p[128];
  e2e_name(p, sizeof p, "kin-dup");
  json_t *first = e2e_kinesis(e2e_insert(p, "7", WIN_BOOL_TRUE));
  e2e_ingest_expect(srv, "first delivery", first, 1, 1, 0, 0, 0);
  /* Kinesis delivers it again: a new outer eventID and sequenceNumber
   * (another shard after a reshard), the same change inside. */
  json_t *again = e2e_kinesis_redelivery(first);
  TS_CHECK_CASE(
      strcmp(e2e_kinesis_sequence(first), e2e_kinesis_sequence(again)) != 0,
      "redelivery", "the outer sequenceNumber did not change");
  json_t *recs = e2e_records(json_incref(again), NULL);
  json_t *body = e2e_lambda(recs);
  e2e_ingest_expect(srv, "redelivered with new outer ids", body, 1, 0, 1, 0, 0);
  json_decref(body);
  json_decref(recs);
  e2e_ingest_expect(srv, "the same outer record resent", first, 1, 0, 1, 0, 0);
  struct e2e_expect want = {p, 1, 1, "7", "7", "100"};
  e2e_expect_stats(srv, "counted once", &want);
  json_decref(first);
  json_decref(again);
}

/* The listed dead letter whose itemIdentifier is item, with this reason;
 * new reference or NULL. */
static json_t *dead_letter(const char *reason, const char *item) {
  char *esc = e2e_escape(reason);
  char *cursor = NULL;
  json_t *found = NULL;
  for (int page = 0; page < 100 && !found; page++) {
    char target[2048];
    snprintf(target, sizeof target, "/v1/dead-letters?limit=100&reason=%s%s%s",
             esc, cursor ? "&cursor=" : "", cursor ? cursor : "");
    struct e2e_reply r;
    (void)e2e_get(srv, target, &r);
    TS_CHECK_CASE(r.status == 200, target, "status %ld %.300s", r.status,
                  r.body);
    json_t *items = json_object_get(r.json, "items");
    for (size_t i = 0; i < json_array_size(items) && !found; i++) {
      json_t *it = json_array_get(items, i);
      const char *got =
          json_string_value(json_object_get(it, "itemIdentifier"));
      if (got && strcmp(got, item) == 0)
        found = json_incref(it);
    }
    json_t *next = json_object_get(r.json, "next_cursor");
    free(cursor);
    cursor = json_is_string(next) ? strdup(json_string_value(next)) : NULL;
    e2e_reply_clear(&r);
    if (!cursor)
      break;
  }
  free(cursor);
  free(esc);
  return found;
}

static void test_kinesis_poison_is_dead_lettered_and_the_batch_goes_on(void) {
  char p[128], bad[128];
  e2e_name(p, sizeof p, "kin-poison");
  e2e_name(bad, sizeof bad, "kin-poison-bad");
  const char *not_json = "{\"eventID\":";
  char *b64_not_json = e2e_base64(not_json, strlen(not_json));
  const char *array = "[{\"eventID\":\"x\"}]";
  char *b64_array = e2e_base64(array, strlen(array));
  const char *no_ddb = "{\"eventID\":\"kin-no-ddb\",\"eventName\":\"INSERT\"}";
  char *b64_no_ddb = e2e_base64(no_ddb, strlen(no_ddb));
  struct {
    json_t *rec;
    const char *reason, *event_id;
  } cases[] = {
      {e2e_kinesis_data("not base64!"),
       "kinesis.data is not base64: its length is not a multiple of 4 (11 "
       "characters)",
       NULL},
      {e2e_kinesis_data("eyJ@ZQ=="),
       "kinesis.data is not base64: a character outside the alphabet at byte "
       "4",
       NULL},
      {e2e_kinesis_data(b64_not_json),
       "kinesis.data is not JSON: premature end of input at line 1, column "
       "12",
       NULL},
      {e2e_kinesis_data(b64_array), "kinesis.data is not a JSON object", NULL},
      {e2e_kinesis_data(b64_no_ddb), "kinesis.data: missing dynamodb",
       "kin-no-ddb"},
      {e2e_kinesis(e2e_insert(bad, "lots", WIN_ABSENT)),
       "kinesis.data: NewImage: score \"lots\" is not a number", NULL},
  };
  size_t n = sizeof cases / sizeof cases[0];
  json_t *recs = json_array();
  for (size_t i = 0; i < n; i++)
    json_array_append(recs, cases[i].rec);
  json_array_append_new(recs, e2e_kinesis(e2e_insert(p, "3", WIN_BOOL_TRUE)));
  json_t *body = e2e_lambda(recs);
  struct e2e_reply r;
  struct e2e_summary sum;
  if (e2e_ingest(srv, "Kinesis poison", body, &r, &sum)) {
    e2e_check_summary("Kinesis poison", &sum, (long)n + 1, 1, 0, 0, n);
    for (size_t i = 0; i < n && i < json_array_size(sum.rejected_list); i++) {
      json_t *one = json_array_get(sum.rejected_list, i);
      const char *reason = json_string_value(json_object_get(one, "reason"));
      const char *item =
          json_string_value(json_object_get(one, "itemIdentifier"));
      TS_CHECK_CASE(reason && strcmp(reason, cases[i].reason) == 0,
                    cases[i].reason, "reason %s", reason ? reason : "(none)");
      /* The itemIdentifier is the outer sequenceNumber. */
      TS_CHECK_CASE(
          item && strcmp(item, e2e_kinesis_sequence(cases[i].rec)) == 0,
          cases[i].reason, "itemIdentifier %s", item ? item : "(none)");
    }
  }
  e2e_reply_clear(&r);
  json_decref(body);
  json_decref(recs);
  struct e2e_expect want = {p, 1, 1, "3", "3", "100"};
  e2e_expect_stats(srv, "the rest of the batch", &want);
  /* Each is listed with its reason and the outer record as received. */
  for (size_t i = 0; i < n; i++) {
    json_t *dl =
        dead_letter(cases[i].reason, e2e_kinesis_sequence(cases[i].rec));
    TS_CHECK_CASE(dl != NULL, cases[i].reason, "not listed in dead letters");
    if (dl) {
      TS_CHECK_CASE(json_equal(json_object_get(dl, "record"), cases[i].rec),
                    cases[i].reason, "record is not the outer record");
      const char *ev = json_string_value(json_object_get(dl, "eventID"));
      bool ev_ok = cases[i].event_id ? ev && strcmp(ev, cases[i].event_id) == 0
                                     : (i < 4 ? ev == NULL : ev != NULL);
      TS_CHECK_CASE(ev_ok, cases[i].reason, "eventID %s", ev ? ev : "null");
    }
    json_decref(dl);
    json_decref(cases[i].rec);
  }
  free(b64_not_json);
  free(b64_array);
  free(b64_no_ddb);
}

/* After a reshard Kinesis may deliver a REMOVE before its INSERT. For a
 * player with nothing counted it is rejected (below zero) and stays a dead
 * letter; the INSERT applies; a replay then applies the REMOVE. */
static void test_kinesis_remove_before_its_insert_is_replayed_later(void) {
  char p[128];
  e2e_name(p, sizeof p, "kin-order");
  struct e2e_image g = {p, "9", WIN_BOOL_TRUE, 0, 0};
  json_t *ins =
      e2e_kinesis(e2e_record("INSERT", NULL, "kin-order-1", NULL, &g));
  json_t *rem =
      e2e_kinesis(e2e_record("REMOVE", NULL, "kin-order-1", &g, NULL));
  e2e_ingest_expect(srv, "REMOVE first", rem, 1, 0, 0, 0, 1);
  e2e_ingest_expect(srv, "then its INSERT", ins, 1, 1, 0, 0, 0);
  struct e2e_expect one = {p, 1, 1, "9", "9", "100"};
  e2e_expect_stats(srv, "before the replay", &one);
  /* Replay the dead letter by id. */
  char reason[512];
  snprintf(reason, sizeof reason,
           "player \"%s\": removes a game that was never counted for this "
           "player (games or wins would go below zero)",
           p);
  json_t *dl = dead_letter(reason, e2e_kinesis_sequence(rem));
  TS_CHECK_CASE(dl != NULL, "REMOVE first", "not listed in dead letters");
  if (dl) {
    char body[256];
    snprintf(body, sizeof body, "{\"ids\":[\"%s\"]}",
             json_string_value(json_object_get(dl, "id")));
    const char *hdrs[] = {"Content-Type: application/json", NULL};
    struct e2e_request rq = {.method = "POST",
                             .target = "/v1/dead-letters/replay",
                             .headers = hdrs,
                             .body = body,
                             .body_len = strlen(body)};
    struct e2e_reply r;
    (void)e2e_http(srv, &rq, &r);
    json_t *applied = json_object_get(r.json, "applied");
    TS_CHECK_CASE(r.status == 200 && json_integer_value(applied) == 1, "replay",
                  "status %ld %.300s", r.status, r.body);
    e2e_reply_clear(&r);
  }
  json_decref(dl);
  struct e2e_expect zero = {p, 0, 0, "0", "0", "0"};
  e2e_expect_stats(srv, "after the replay", &zero);
  json_decref(ins);
  json_decref(rem);
}

void e2e_suite_kinesis(void) {
  E2E_SUITE("kinesis", up, down,
            TS_TEST(test_kinesis_records_apply_in_every_envelope_and_mixed),
            TS_TEST(test_kinesis_redelivery_with_new_outer_ids_is_a_duplicate),
            TS_TEST(test_kinesis_poison_is_dead_lettered_and_the_batch_goes_on),
            TS_TEST(test_kinesis_remove_before_its_insert_is_replayed_later));
}
