/* The DynamoDB store under the faults real DynamoDB makes and dynalite
 * never does: throttling, unprocessed batch items, and writes that land
 * while their answer is lost or failed. Each test runs the server against
 * a private dynalite behind the fault proxy (fault_proxy.h) and requires
 * what a Pipe's operator requires: every record counted exactly once, the
 * retries visible on /metrics, and a resend of the same records a
 * duplicate. */
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/bounds.h"
#include "fault_proxy.h"
#include "harness.h"
#include "records.h"
#include "suites.h"
#include "tests/unit/unit.h"

#define RETRIES(reason)                                                        \
  "ts_aws_retryable_errors_total{service=\"dynamodb\",reason=\"" reason "\"} "

struct rig {
  struct e2e_dynalite *dyn;
  struct e2e_fault_proxy *proxy;
  struct e2e_server *s;
};

/* dynalite with both tables, the proxy in front, the server behind it
 * (with the NAME=value entries of env, which may be NULL). */
static bool rig_up_env(struct rig *r, const char *const *env) {
  *r = (struct rig){0};
  if (e2e_dynalite_start_with_tables(&r->dyn) != TS_OK)
    return false;
  if (e2e_fault_proxy_start(r->dyn, &r->proxy) != TS_OK ||
      e2e_server_start_at(e2e_fault_proxy_endpoint(r->proxy), env, &r->s) !=
          TS_OK) {
    e2e_fault_proxy_stop(r->proxy);
    e2e_dynalite_stop(r->dyn);
    return false;
  }
  return true;
}

static bool rig_up(struct rig *r) { return rig_up_env(r, NULL); }

static void rig_down(struct rig *r, const char *case_name) {
  int code = -1;
  e2e_server_stop(r->s, &code);
  TS_CHECK_CASE(code == 0, case_name, "exit status %d after SIGTERM", code);
  e2e_fault_proxy_stop(r->proxy);
  e2e_dynalite_stop(r->dyn);
}

static double metric(const struct rig *r, const char *sample) {
  return e2e_server_metric(r->s, sample);
}

/* Throttled reads and writes are sent again after a backoff; the batch is
 * answered 200 with every record applied once, and /metrics counts each
 * throttled attempt. */
static void test_throttled_calls_are_retried_and_each_record_counts_once(void) {
  struct rig r;
  CU_ASSERT_FATAL(rig_up(&r));
  char a[128], b[128], c[128];
  e2e_name(a, sizeof a, "throttled-a");
  e2e_name(b, sizeof b, "throttled-b");
  e2e_name(c, sizeof c, "throttled-c");
  json_t *records = e2e_records(
      e2e_insert(a, "1", WIN_BOOL_TRUE), e2e_insert(b, "2", WIN_BOOL_TRUE),
      e2e_insert(c, "3", WIN_ABSENT), e2e_insert(a, "4", WIN_BOOL_FALSE), NULL);
  json_t *body = e2e_lambda(records);
  json_decref(records);

  e2e_fault_proxy_inject(r.proxy, "BatchGetItem", E2E_FAULT_THROTTLE, 2);
  e2e_fault_proxy_inject(r.proxy, "PutItem", E2E_FAULT_THROTTLE, 3);
  e2e_ingest_expect(r.s, "a batch met by throttling", body, 4, 4, 0, 0, 0);
  unsigned reads = e2e_fault_proxy_injected(r.proxy, "BatchGetItem");
  unsigned writes = e2e_fault_proxy_injected(r.proxy, "PutItem");
  /* Each throttled answer is counted as throttled, unless the attempt's
   * deadline (the batch's first try on an HTTP thread is short) cut it off
   * first on a loaded machine: it then counts as a timeout (transport). */
  double throttled = metric(&r, RETRIES("throttled"));
  double transport = metric(&r, RETRIES("transport"));
  TS_CHECK_CASE(reads == 2 && writes == 3 && throttled >= 1 &&
                    throttled <= reads + writes &&
                    throttled + transport >= reads + writes,
                "every throttled attempt retried, and counted",
                "%u reads and %u writes throttled; retries counted: "
                "throttled %.0f, transport %.0f",
                reads, writes, throttled, transport);

  const struct e2e_expect want[] = {{a, 2, 1, "5", "2.5", "50.00"},
                                    {b, 1, 1, "2", "2", "100.00"},
                                    {c, 1, 0, "3", "3", "0.00"}};
  for (size_t i = 0; i < 3; i++)
    e2e_expect_stats(r.s, "after the throttled batch", &want[i]);
  /* The listing is one consistent Scan page: throttled, it is retried
   * within the read's deadline. */
  e2e_fault_proxy_inject(r.proxy, "Scan", E2E_FAULT_THROTTLE, 2);
  struct e2e_reply list;
  (void)e2e_get(r.s, "/v1/players?limit=10", &list);
  size_t listed = json_array_size(json_object_get(list.json, "players"));
  unsigned scans = e2e_fault_proxy_injected(r.proxy, "Scan");
  TS_CHECK_CASE(list.status == 200 && listed == 3 && scans == 2,
                "a throttled listing",
                "status %ld, %zu players, %u scans "
                "throttled: %.300s",
                list.status, listed, scans, list.body);
  e2e_reply_clear(&list);
  e2e_ingest_expect(r.s, "the throttled batch resent", body, 4, 0, 4, 0, 0);
  for (size_t i = 0; i < 3; i++)
    e2e_expect_stats(r.s, "after the resend", &want[i]);
  json_decref(body);
  rig_down(&r, "throttled");
}

/* DynamoDB may apply a write and fail to say so (the connection drops, or
 * a 500 after the item was written). The server sends the write again;
 * its condition then fails, the player is read, and the records are found
 * in the player's log: counted once, and answered as applied, since it
 * was this batch that wrote them. The replica's leaderboard shows the
 * write at once, as it does its other writes (the snapshot is not
 * refreshed within the test). */
static void test_a_write_whose_answer_is_lost_counts_once(void) {
  static const char *const env[] = {"TS_LEADERBOARD_REFRESH_S=3600", NULL};
  struct rig r;
  CU_ASSERT_FATAL(rig_up_env(&r, env));
  char p[128], q[128];
  e2e_name(p, sizeof p, "lost-answer-p");
  e2e_name(q, sizeof q, "lost-answer-q");
  json_t *first = e2e_insert(p, "1", WIN_BOOL_TRUE);
  e2e_ingest_expect(r.s, "before any fault", first, 1, 1, 0, 0, 0);

  long on_board = e2e_board_games(r.s, p);
  TS_CHECK_CASE(on_board == 1, "the leaderboard before any fault",
                "%ld games, want 1", on_board);

  json_t *dropped = e2e_insert(p, "2", WIN_ABSENT);
  e2e_fault_proxy_inject(r.proxy, "PutItem", E2E_FAULT_LOSE_ANSWER, 1);
  e2e_ingest_expect(r.s, "the answer dropped after the write", dropped, 1, 1, 0,
                    0, 0);
  on_board = e2e_board_games(r.s, p);
  TS_CHECK_CASE(on_board == 2, "the leaderboard after the dropped answer",
                "%ld games, want 2", on_board);
  json_t *failed = e2e_insert(p, "4", WIN_BOOL_TRUE);
  e2e_fault_proxy_inject(r.proxy, "PutItem", E2E_FAULT_FAIL_AFTER, 1);
  e2e_ingest_expect(r.s, "a 500 after the write", failed, 1, 1, 0, 0, 0);

  json_t *records = e2e_records(e2e_insert(p, "8", WIN_ABSENT),
                                e2e_insert(q, "16", WIN_BOOL_TRUE),
                                e2e_insert(q, "32", WIN_ABSENT), NULL);
  json_t *batch = e2e_lambda(records);
  json_decref(records);
  e2e_fault_proxy_inject(r.proxy, "PutItem", E2E_FAULT_LOSE_ANSWER, 2);
  e2e_ingest_expect(r.s, "a batch whose answers are dropped", batch, 3, 3, 0, 0,
                    0);
  /* A dropped answer whose re-read outlasts the batch's first try on the
   * HTTP thread: a worker finishes the batch with state of its own, and
   * must still know which write failed (the batch keeps it). The player
   * is written once first, so that the try writes it from what this
   * process remembers, without a read. */
  char late_player[128];
  e2e_name(late_player, sizeof late_player, "lost-answer-r");
  json_t *warm = e2e_insert(late_player, "3", WIN_BOOL_TRUE);
  e2e_ingest_expect(r.s, "a third player, before its fault", warm, 1, 1, 0, 0,
                    0);
  /* A loaded machine may make that write outlast its try; tries then
   * pause, and the next batch would go to a worker at once. */
  double handed = metric(&r, "ts_ingest_handed_over_total ");
  if (handed > 0)
    e2e_sleep_ms(TS_INGEST_TRY_PAUSE_MS + 200);
  handed = metric(&r, "ts_ingest_handed_over_total ");
  json_t *late = e2e_insert(late_player, "64", WIN_ABSENT);
  /* The try's read passes, its write lands unanswered and fails its
   * retry; the reads after that answer late. */
  e2e_fault_proxy_inject_after(r.proxy, "BatchGetItem", E2E_FAULT_SLOW, 2, 1);
  e2e_fault_proxy_inject(r.proxy, "PutItem", E2E_FAULT_LOSE_ANSWER, 1);
  e2e_ingest_expect(r.s, "a dropped answer, read again by a worker", late, 1, 1,
                    0, 0, 0);
  e2e_fault_proxy_inject(r.proxy, "BatchGetItem", E2E_FAULT_NONE, 0);
  double handed_after = metric(&r, "ts_ingest_handed_over_total ");
  TS_CHECK_CASE(handed >= 0 && handed_after == handed + 1,
                "the re-read outlasted the try", "handed over %.0f, then %.0f",
                handed, handed_after);
  struct e2e_expect late_want = {late_player, 2, 1, "67", "33.5", "50.00"};
  e2e_expect_stats(r.s, "after the worker's re-read", &late_want);
  e2e_ingest_expect(r.s, "read again by a worker, resent", late, 1, 0, 1, 0, 0);

  /* A dropped answer is not always seen here: libcurl sends a request
   * again by itself, once, when a connection it reused closes without an
   * answer. Either way the write lands twice and its condition fails
   * the second time; the transport count is not checked. */
  unsigned faults = e2e_fault_proxy_injected(r.proxy, "PutItem");
  double transient = metric(&r, RETRIES("transient"));
  /* Every condition that failed here failed on the write's own result:
   * none was lost to another writer. */
  double lost = metric(&r, "ts_dynamodb_lost_writes_total ");
  TS_CHECK_CASE(lost == 0, "no write counted as lost to another writer",
                "ts_dynamodb_lost_writes_total %.0f", lost);
  TS_CHECK_CASE(faults == 5 && transient == 1,
                "each fault met, and the 500 retried and counted",
                "%u faults (want 5); transient retries %.0f (want 1)", faults,
                transient);

  const struct e2e_expect want[] = {{p, 4, 2, "15", "3.75", "50.00"},
                                    {q, 2, 1, "48", "24", "50.00"}};
  for (size_t i = 0; i < 2; i++)
    e2e_expect_stats(r.s, "after the lost answers", &want[i]);
  long p_board = e2e_board_games(r.s, p), q_board = e2e_board_games(r.s, q);
  TS_CHECK_CASE(p_board == 4 && q_board == 2,
                "the leaderboard after the lost answers",
                "%ld and %ld games, want 4 and 2", p_board, q_board);
  e2e_ingest_expect(r.s, "dropped resent", dropped, 1, 0, 1, 0, 0);
  e2e_ingest_expect(r.s, "failed resent", failed, 1, 0, 1, 0, 0);
  e2e_ingest_expect(r.s, "batch resent", batch, 3, 0, 3, 0, 0);
  for (size_t i = 0; i < 2; i++)
    e2e_expect_stats(r.s, "after the resends", &want[i]);
  json_decref(first);
  json_decref(dropped);
  json_decref(failed);
  json_decref(batch);
  json_decref(warm);
  json_decref(late);
  rig_down(&r, "lost answers");
}

/* The dead letters listed (one page of up to 100), or -1. */
static long dead_letter_count(const struct rig *r) {
  struct e2e_reply rep;
  (void)e2e_get(r->s, "/v1/dead-letters?limit=100", &rep);
  json_t *items = json_object_get(rep.json, "items");
  long n = rep.status == 200 && json_is_array(items)
               ? (long)json_array_size(items)
               : -1;
  TS_CHECK_CASE(n >= 0, "GET /v1/dead-letters", "status %ld body %.300s",
                rep.status, rep.body);
  e2e_reply_clear(&rep);
  return n;
}

/* What BatchGetItem leaves in UnprocessedKeys is read again, and what
 * BatchWriteItem leaves in UnprocessedItems (the dead letters) is written
 * again: nothing read is missing from the decision, no dead letter is
 * lost, and none is written twice. */
static void test_unprocessed_batch_items_are_sent_again(void) {
  struct rig r;
  CU_ASSERT_FATAL(rig_up(&r));
  enum { PLAYERS = 7, POISON = 5 };
  char names[PLAYERS][128];
  json_t *records = json_array();
  for (int i = 0; i < PLAYERS; i++) {
    char tag[32], score[8];
    snprintf(tag, sizeof tag, "unprocessed-%d", i);
    snprintf(score, sizeof score, "%d", i + 1);
    e2e_name(names[i], sizeof names[i], tag);
    json_array_append_new(records, e2e_insert(names[i], score, WIN_BOOL_TRUE));
  }
  for (int i = 0; i < POISON; i++) {
    char score[16];
    snprintf(score, sizeof score, "bad-%d", i); /* not a number: rejected */
    json_array_append_new(records, e2e_insert(names[i], score, WIN_ABSENT));
  }
  json_t *body = e2e_lambda(records);
  json_decref(records);

  e2e_fault_proxy_inject(r.proxy, "BatchGetItem", E2E_FAULT_UNPROCESSED, 3);
  e2e_fault_proxy_inject(r.proxy, "BatchWriteItem", E2E_FAULT_UNPROCESSED, 3);
  e2e_ingest_expect(r.s, "reads and dead letters left unprocessed", body,
                    PLAYERS + POISON, PLAYERS, 0, 0, POISON);
  unsigned reads = e2e_fault_proxy_injected(r.proxy, "BatchGetItem");
  unsigned writes = e2e_fault_proxy_injected(r.proxy, "BatchWriteItem");
  TS_CHECK_CASE(reads >= 1 && writes >= 1, "the faults were met",
                "%u BatchGetItem and %u BatchWriteItem calls left items "
                "unprocessed",
                reads, writes);
  for (int i = 0; i < PLAYERS; i++) {
    char total[8];
    snprintf(total, sizeof total, "%d", i + 1);
    struct e2e_expect want = {names[i], 1, 1, total, total, "100.00"};
    e2e_expect_stats(r.s, "a player read in a later round", &want);
  }
  long dead = dead_letter_count(&r);
  TS_CHECK_CASE(dead == POISON, "every dead letter written once",
                "%ld dead letters, want %d", dead, POISON);

  e2e_fault_proxy_inject(r.proxy, "BatchWriteItem", E2E_FAULT_UNPROCESSED, 3);
  e2e_ingest_expect(r.s, "the batch resent", body, PLAYERS + POISON, 0, PLAYERS,
                    0, POISON);
  dead = dead_letter_count(&r);
  TS_CHECK_CASE(dead == POISON, "a resend adds no dead letter",
                "%ld dead letters, want %d", dead, POISON);
  json_decref(body);
  rig_down(&r, "unprocessed");
}

/* A table throttled for longer than a batch's deadline: the answer is 503
 * with Retry-After, nothing is half-counted, reads still answer, and the
 * resend once the throttling ends is applied exactly once. */
static void
test_throttling_past_the_deadline_is_503_and_the_resend_counts(void) {
  struct rig r;
  CU_ASSERT_FATAL(rig_up(&r));
  char p[128];
  e2e_name(p, sizeof p, "throttled-long");
  json_t *first = e2e_insert(p, "1", WIN_BOOL_TRUE);
  e2e_ingest_expect(r.s, "before the throttling", first, 1, 1, 0, 0, 0);

  json_t *second = e2e_insert(p, "2", WIN_ABSENT);
  e2e_fault_proxy_inject(r.proxy, "PutItem", E2E_FAULT_THROTTLE, 1000000);
  struct e2e_reply rep;
  (void)e2e_post_json(r.s, "/v1/stream-records", second, &rep);
  char retry_after[32] = "";
  bool has_retry =
      e2e_reply_header(&rep, "Retry-After", retry_after, sizeof retry_after);
  TS_CHECK_CASE(rep.status == 503 && has_retry &&
                    strtol(retry_after, NULL, 10) >= 1,
                "a write throttled past the deadline",
                "status %ld, Retry-After \"%s\", body %.300s", rep.status,
                retry_after, rep.body);
  e2e_reply_clear(&rep);

  /* Reads are throttled too, briefly: a GET retries within its own
   * deadline. */
  e2e_fault_proxy_inject(r.proxy, "GetItem", E2E_FAULT_THROTTLE, 2);
  struct e2e_expect before = {p, 1, 1, "1", "1", "100.00"};
  e2e_expect_stats(r.s, "while writes are throttled", &before);
  TS_CHECK_CASE(e2e_fault_proxy_injected(r.proxy, "GetItem") == 2,
                "the stats read was throttled twice", "%u",
                e2e_fault_proxy_injected(r.proxy, "GetItem"));

  e2e_fault_proxy_inject(r.proxy, "PutItem", E2E_FAULT_NONE, 0);
  e2e_ingest_expect(r.s, "resent once the throttling ended", second, 1, 1, 0, 0,
                    0);
  struct e2e_expect after = {p, 2, 1, "3", "1.5", "50.00"};
  e2e_expect_stats(r.s, "after the resend", &after);
  double throttled = metric(&r, RETRIES("throttled"));
  TS_CHECK_CASE(throttled >= 4, "the throttled attempts were counted",
                "%.0f (want at least the 2 reads and 2 writes)", throttled);
  json_decref(first);
  json_decref(second);
  rig_down(&r, "throttled past the deadline");
}

void e2e_suite_dynamodb_faults(void) {
  if (strcmp(e2e_store_kind(), "dynamodb") != 0) {
    fprintf(stderr, "suite dynamodb_faults: skipped, TS_TEST_STORE is %s\n",
            e2e_store_kind());
    return;
  }
  E2E_SUITE(
      "dynamodb_faults", NULL, NULL,
      TS_TEST(test_throttled_calls_are_retried_and_each_record_counts_once),
      TS_TEST(test_a_write_whose_answer_is_lost_counts_once),
      TS_TEST(test_unprocessed_batch_items_are_sent_again),
      TS_TEST(test_throttling_past_the_deadline_is_503_and_the_resend_counts));
}
