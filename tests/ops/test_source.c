/* ops/source.h against a real dynalite: the reader of the source table
 * (TaTourney) that backfill and verify use. Its own executable, linked
 * with the service's library (the e2e suites are black-box and link none
 * of it), run by ctest as e2e-dynamodb-source under
 * tests/e2e/with-dynalite.sh, which points AWS_ENDPOINT_URL_DYNAMODB at a
 * private dynalite and gives TS_TABLE a per-run name.
 *
 * Tables are made and filled here through the same DynamoDB client
 * (ddb_client_from_env, CreateTable, BatchWriteItem), named after TS_TABLE
 * so that a run never meets an earlier one's. */
#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aws/ddb.h"
#include "common/bounds.h"
#include "common/clock.h"
#include "common/log.h"
#include "ops/source.h"
#include "tests/support/failures.h"
#include "tests/unit/unit.h"

/* Items per table: several pages of TS_SCAN_PAGE_LIMIT for one segment. */
#define N_ITEMS 2500u
/* Padding per item, so that the items cost read units in hundreds, as
 * real games do (dynalite charges 1 unit per 4 KB of a page). */
#define PAD_BYTES 200u
#define BATCH 25u /* BatchWriteItem's limit */
#define CALL_DEADLINE_MS 30000u

static struct aws_creds_provider *creds;
static struct ddb_client *client;
static char hash_table[160], range_table[160], missing_table[160];

/* ---- set-up: tables through the client itself ---- */

/* One call with a generous deadline; TS_OK when DynamoDB answered 200.
 * *resp (may be NULL) gets the answer. */
static enum ts_status call(const char *op, json_t *req, json_t **resp) {
  struct ddb_call c = {.op = op, .request = req};
  enum ts_status st =
      ddb_execute(client, &c, 1, clock_now_ms() + CALL_DEADLINE_MS);
  if (st == TS_OK && c.outcome != DDB_DONE) {
    fprintf(stderr, "%s: %s: %s\n", op, c.error_type, c.error_message);
    st = TS_ERR_IO;
  }
  if (resp) {
    *resp = c.response;
    c.response = NULL;
  }
  ddb_call_clear(&c);
  json_decref(req);
  return st;
}

static enum ts_status create_table(const char *name, const char *hash,
                                   const char *range) {
  json_t *req =
      json_pack("{s:s, s:[{s:s, s:s}], s:[{s:s, s:s}], s:s}", "TableName", name,
                "AttributeDefinitions", "AttributeName", hash, "AttributeType",
                "S", "KeySchema", "AttributeName", hash, "KeyType", "HASH",
                "BillingMode", "PAY_PER_REQUEST");
  if (req && range &&
      (json_array_append_new(json_object_get(req, "AttributeDefinitions"),
                             json_pack("{s:s, s:s}", "AttributeName", range,
                                       "AttributeType", "S")) ||
       json_array_append_new(json_object_get(req, "KeySchema"),
                             json_pack("{s:s, s:s}", "AttributeName", range,
                                       "KeyType", "RANGE")))) {
    json_decref(req);
    return TS_ERR_NOMEM;
  }
  enum ts_status st = req ? call("CreateTable", req, NULL) : TS_ERR_NOMEM;
  for (int i = 0; st == TS_OK && i < 100; i++) { /* until ACTIVE */
    json_t *d = NULL;
    st = call("DescribeTable", json_pack("{s:s}", "TableName", name), &d);
    const char *status = json_string_value(
        json_object_get(json_object_get(d, "Table"), "TableStatus"));
    bool active = status && strcmp(status, "ACTIVE") == 0;
    json_decref(d);
    if (active)
      return st;
    struct timespec pause = {0, 50 * 1000 * 1000};
    nanosleep(&pause, NULL);
  }
  return st == TS_OK ? TS_ERR_UNAVAILABLE : st;
}

/* Item i: its number in "n", keys from i (range table: 100 players of 25
 * games each, so that range keys share hash keys). */
static json_t *make_item(unsigned i, bool ranged) {
  char pad[PAD_BYTES + 1], hash[32], range[32], n[16];
  memset(pad, 'p', PAD_BYTES);
  pad[PAD_BYTES] = '\0';
  snprintf(n, sizeof n, "%u", i);
  if (!ranged) {
    snprintf(hash, sizeof hash, "game-%05u", i);
    return json_pack("{s:{s:s}, s:{s:s}, s:{s:s}}", "id", "S", hash, "n", "N",
                     n, "pad", "S", pad);
  }
  snprintf(hash, sizeof hash, "player-%03u", i / BATCH);
  snprintf(range, sizeof range, "g-%05u", i);
  return json_pack("{s:{s:s}, s:{s:s}, s:{s:s}, s:{s:s}}", "player", "S", hash,
                   "game", "S", range, "n", "N", n, "pad", "S", pad);
}

/* Writes items 0..N_ITEMS-1 with BatchWriteItem, all batches in parallel.
 * dynalite writes a whole batch; anything left unprocessed fails the
 * set-up rather than being silently missing from the table. */
static enum ts_status fill(const char *table, bool ranged) {
  enum ts_status st = TS_ERR_NOMEM;
  size_t n = (N_ITEMS + BATCH - 1) / BATCH, made = 0;
  struct ddb_call *calls = calloc(n, sizeof *calls);
  json_t **reqs = calloc(n, sizeof *reqs);
  if (!calls || !reqs)
    goto out;
  for (; made < n; made++) {
    json_t *puts = json_array();
    if (!(reqs[made] = json_pack("{s:{s:o}}", "RequestItems", table, puts)))
      goto out;
    for (size_t i = made * BATCH; i < N_ITEMS && i < (made + 1) * BATCH; i++)
      if (json_array_append_new(puts,
                                json_pack("{s:{s:o}}", "PutRequest", "Item",
                                          make_item((unsigned)i, ranged))))
        goto out;
    calls[made] =
        (struct ddb_call){.op = "BatchWriteItem", .request = reqs[made]};
  }
  if ((st = ddb_execute(client, calls, n, clock_now_ms() + CALL_DEADLINE_MS)) !=
      TS_OK)
    goto out;
  for (size_t b = 0; b < n && st == TS_OK; b++) {
    json_t *left = json_object_get(calls[b].response, "UnprocessedItems");
    if (calls[b].outcome != DDB_DONE || json_object_size(left) > 0) {
      fprintf(stderr, "BatchWriteItem: %s, %zu tables unprocessed\n",
              calls[b].error_type, json_object_size(left));
      st = TS_ERR_IO;
    }
  }
out:
  for (size_t b = 0; calls && reqs && b < made + (made < n); b++) {
    ddb_call_clear(&calls[b]);
    json_decref(reqs[b]);
  }
  free(calls);
  free(reqs);
  return st;
}

static int suite_up(void) {
  const char *base = getenv("TS_TABLE");
  if (!getenv("AWS_ENDPOINT_URL_DYNAMODB") || !base) {
    fprintf(stderr, "source: run under tests/e2e/with-dynalite.sh (no "
                    "AWS_ENDPOINT_URL_DYNAMODB or TS_TABLE)\n");
    return CUE_SINIT_FAILED;
  }
  snprintf(hash_table, sizeof hash_table, "%s-SourceHash", base);
  snprintf(range_table, sizeof range_table, "%s-SourceRange", base);
  snprintf(missing_table, sizeof missing_table, "%s-SourceMissing", base);
  if (ddb_client_from_env(&creds, &client, NULL) != TS_OK ||
      create_table(hash_table, "id", NULL) != TS_OK ||
      create_table(range_table, "player", "game") != TS_OK ||
      fill(hash_table, false) != TS_OK || fill(range_table, true) != TS_OK)
    return CUE_SINIT_FAILED;
  return 0;
}

static int suite_down(void) {
  ddb_client_free(client);
  aws_creds_provider_free(creds);
  client = NULL;
  creds = NULL;
  return 0;
}

/* ---- the callback: a set of item numbers ---- */

struct collect {
  const struct source *src;
  unsigned seen[N_ITEMS]; /* deliveries of item n */
  size_t calls, strays;   /* strays: no usable "n" or a key missing */
  atomic_int inside;      /* callbacks running now */
  bool overlapped;        /* two ran at once */
  size_t fail_at;         /* 0: never; else the call that fails */
  enum ts_status fail_with;
};

static enum ts_status collect_item(void *cls, const json_t *item) {
  struct collect *c = cls;
  enum ts_status st = TS_OK;
  if (atomic_fetch_add(&c->inside, 1) != 0)
    c->overlapped = true;
  c->calls++;
  const char *n =
      json_string_value(json_object_get(json_object_get(item, "n"), "N"));
  char *end = NULL;
  unsigned long i = n ? strtoul(n, &end, 10) : N_ITEMS;
  bool keyed = true;
  for (size_t k = 0; k < source_key_count(c->src); k++)
    keyed = keyed && json_object_get(item, source_key_name(c->src, k));
  if (!n || *end || i >= N_ITEMS || !keyed)
    c->strays++;
  else
    c->seen[i]++;
  if (c->fail_at && c->calls == c->fail_at)
    st = c->fail_with;
  atomic_fetch_sub(&c->inside, 1);
  return st;
}

/* Asserts every item came exactly once; names the case otherwise. */
static void check_exactly_once(const char *case_name, const struct collect *c) {
  size_t missing = 0, repeated = 0;
  for (unsigned i = 0; i < N_ITEMS; i++) {
    missing += c->seen[i] == 0;
    repeated += c->seen[i] > 1;
  }
  TS_CHECK_CASE(missing == 0 && repeated == 0 && c->strays == 0, case_name,
                "%zu missing, %zu repeated, %zu strays of %u", missing,
                repeated, c->strays, N_ITEMS);
  TS_CHECK_CASE(!c->overlapped, case_name, "two callbacks ran at once");
}

static struct source *open_or_fail(const char *case_name,
                                   const struct source_options *opt) {
  struct source *s = NULL;
  enum ts_status st = source_open(opt, &s);
  TS_CHECK_CASE(st == TS_OK, case_name, "source_open: %s", ts_status_name(st));
  return s;
}

/* ---- tests ---- */

static void
test_every_item_is_delivered_exactly_once_whatever_the_segments(void) {
  static const struct {
    const char *name;
    bool ranged;
    unsigned segments;
  } cases[] = {
      {"hash key, 1 segment", false, 1},
      {"hash key, 4 segments", false, 4},
      {"hash key, default segments", false, 0},
      {"hash+range keys, 1 segment", true, 1},
      {"hash+range keys, 4 segments", true, 4},
      {"hash+range keys, most segments", true, TS_SCAN_SEGMENTS_MAX},
  };
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    const char *table = cases[k].ranged ? range_table : hash_table;
    struct source_options opt = {.table = table, .segments = cases[k].segments};
    struct source *s = open_or_fail(cases[k].name, &opt);
    struct collect *c = calloc(1, sizeof *c);
    if (!s || !c) {
      CU_FAIL("set-up");
      source_free(s);
      free(c);
      continue;
    }
    c->src = s;
    struct source_stats stats;
    enum ts_status st = source_scan(s, collect_item, c, &stats);
    TS_CHECK_CASE(st == TS_OK, cases[k].name, "source_scan: %s",
                  ts_status_name(st));
    check_exactly_once(cases[k].name, c);
    TS_CHECK_CASE(stats.items == N_ITEMS && stats.rcu > 0, cases[k].name,
                  "stats: %llu items, %.1f rcu",
                  (unsigned long long)stats.items, stats.rcu);
    /* One segment must follow LastEvaluatedKey through several pages. */
    if (cases[k].segments == 1)
      TS_CHECK_CASE(stats.pages >= N_ITEMS / TS_SCAN_PAGE_LIMIT, cases[k].name,
                    "%llu pages", (unsigned long long)stats.pages);
    free(c);
    source_free(s);
  }
}

static void test_key_names_come_hash_first_then_range_with_item_count(void) {
  static const struct {
    const char *name;
    int ranged;
    size_t n_keys;
    const char *k0, *k1;
  } cases[] = {
      {"hash key only", 0, 1, "id", NULL},
      {"hash and range keys", 1, 2, "player", "game"},
  };
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    const char *table = cases[k].ranged ? range_table : hash_table;
    struct source_options opt = {.table = table};
    struct source *s = open_or_fail(cases[k].name, &opt);
    if (!s)
      continue;
    TS_CHECK_CASE(source_key_count(s) == cases[k].n_keys, cases[k].name,
                  "%zu keys", source_key_count(s));
    TS_CHECK_CASE(strcmp(source_key_name(s, 0), cases[k].k0) == 0,
                  cases[k].name, "hash key %s", source_key_name(s, 0));
    const char *k1 = source_key_name(s, 1);
    TS_CHECK_CASE(cases[k].k1 ? k1 && strcmp(k1, cases[k].k1) == 0 : !k1,
                  cases[k].name, "range key %s", k1 ? k1 : "(none)");
    TS_CHECK_CASE(source_key_name(s, 2) == NULL, cases[k].name, "a third key");
    /* ItemCount as DescribeTable reports it (dynalite: always 0). */
    json_t *d = NULL;
    CU_ASSERT_EQUAL_FATAL(
        call("DescribeTable", json_pack("{s:s}", "TableName", table), &d),
        TS_OK);
    json_int_t want = json_integer_value(
        json_object_get(json_object_get(d, "Table"), "ItemCount"));
    TS_CHECK_CASE(source_item_count(s) == (int64_t)want, cases[k].name,
                  "ItemCount %lld, DescribeTable says %lld",
                  (long long)source_item_count(s), (long long)want);
    json_decref(d);
    source_free(s);
  }
}

static void test_missing_table_is_not_found(void) {
  struct source_options opt = {.table = missing_table};
  struct source *s = NULL;
  CU_ASSERT_EQUAL(source_open(&opt, &s), TS_ERR_NOT_FOUND);
  CU_ASSERT_PTR_NULL(s);
}

static void test_bad_options_are_invalid(void) {
  static const struct {
    const char *name;
    struct source_options opt;
  } cases[] = {
      {"no table", {.table = NULL}},
      {"empty table", {.table = ""}},
      {"too many segments",
       {.table = "t", .segments = TS_SCAN_SEGMENTS_MAX + 1}},
      {"negative max_rcu", {.table = "t", .max_rcu = -1}},
  };
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    struct source *s = NULL;
    enum ts_status st = source_open(&cases[k].opt, &s);
    TS_CHECK_CASE(st == TS_ERR_INVALID && !s, cases[k].name, "%s",
                  ts_status_name(st));
  }
}

/* The bound: whatever the segments, consumed/max_rcu − 1 s at least (the
 * bucket starts empty and holds a second's worth at most; pages reserve
 * their cost). Only the lower bound: the machine is noisy. */
static void test_max_rcu_bounds_the_read_rate(void) {
  /* What the whole table costs unbounded, to pick a rate that makes the
   * scan last about 2.5 s. */
  struct source_options free_opt = {.table = hash_table, .segments = 4};
  struct source *s = open_or_fail("unbounded", &free_opt);
  struct collect *c = calloc(1, sizeof *c);
  struct source_stats unbounded = {0};
  if (!s || !c) {
    CU_FAIL("set-up");
    source_free(s);
    free(c);
    return;
  }
  c->src = s;
  CU_ASSERT_EQUAL(source_scan(s, collect_item, c, &unbounded), TS_OK);
  source_free(s);
  CU_ASSERT_FATAL(unbounded.rcu >= 10);

  static const unsigned segments[] = {1, 4};
  for (size_t k = 0; k < sizeof segments / sizeof segments[0]; k++) {
    char name[32], *text = NULL;
    size_t text_len = 0;
    snprintf(name, sizeof name, "%u segments", segments[k]);
    FILE *progress = open_memstream(&text, &text_len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(progress);
    struct source_options opt = {.table = hash_table,
                                 .segments = segments[k],
                                 .max_rcu = unbounded.rcu / 2.5,
                                 .progress = progress};
    memset(c, 0, sizeof *c);
    s = open_or_fail(name, &opt);
    if (!s) {
      fclose(progress);
      free(text);
      continue;
    }
    c->src = s;
    struct source_stats stats = {0};
    enum ts_status st = source_scan(s, collect_item, c, &stats);
    fclose(progress);
    TS_CHECK_CASE(st == TS_OK, name, "source_scan: %s", ts_status_name(st));
    check_exactly_once(name, c);
    double floor_s = stats.rcu / opt.max_rcu - 1.0;
    fprintf(stderr,
            "\n  %s: %.1f RCU at max_rcu %.1f in %.2f s over %llu pages "
            "(at least %.2f s)",
            name, stats.rcu, opt.max_rcu, stats.seconds,
            (unsigned long long)stats.pages, floor_s);
    TS_CHECK_CASE(stats.seconds >= floor_s, name,
                  "%.2f s for %.1f RCU at %.1f RCU/s", stats.seconds, stats.rcu,
                  opt.max_rcu);
    /* It lasted over a second: progress lines came, and the summary.
     * dynalite's ItemCount is 0. */
    TS_CHECK_CASE(text && strstr(text, "ETA unknown") &&
                      strstr(text, " items/s") && strstr(text, ": done, "),
                  name, "progress:\n%s", text ? text : "(none)");
    free(text);
    source_free(s);
  }
  free(c);
}

static void test_callback_error_stops_the_scan_and_comes_back(void) {
  static const unsigned segments[] = {1, 4};
  for (size_t k = 0; k < sizeof segments / sizeof segments[0]; k++) {
    char name[32];
    snprintf(name, sizeof name, "%u segments", segments[k]);
    struct source_options opt = {.table = range_table, .segments = segments[k]};
    struct source *s = open_or_fail(name, &opt);
    struct collect *c = calloc(1, sizeof *c);
    if (!s || !c) {
      CU_FAIL("set-up");
      source_free(s);
      free(c);
      continue;
    }
    c->src = s;
    c->fail_at = 100;
    c->fail_with = TS_ERR_RANGE; /* a status the scan never makes itself */
    struct source_stats stats = {0};
    enum ts_status st = source_scan(s, collect_item, c, &stats);
    TS_CHECK_CASE(st == TS_ERR_RANGE, name, "source_scan: %s",
                  ts_status_name(st));
    TS_CHECK_CASE(c->calls == 100 && stats.items == 100, name,
                  "%zu calls after the failing one, stats say %llu",
                  c->calls - 100, (unsigned long long)stats.items);
    free(c);
    source_free(s);
  }
}

/* Last: it points the environment at a closed port for a while. */
static void test_unreachable_dynamodb_is_unavailable(void) {
  const char *was = getenv("AWS_ENDPOINT_URL_DYNAMODB");
  char *saved = was ? strdup(was) : NULL;
  CU_ASSERT_PTR_NOT_NULL_FATAL(saved);
  setenv("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:9", 1); /* discard */
  struct source_options opt = {.table = hash_table};
  struct source *s = NULL;
  CU_ASSERT_EQUAL(source_open(&opt, &s), TS_ERR_UNAVAILABLE);
  CU_ASSERT_PTR_NULL(s);
  setenv("AWS_ENDPOINT_URL_DYNAMODB", saved, 1);
  free(saved);
}

int main(void) {
  log_set_level("warn"); /* the logs of every open and scan are noise here */
  if (CU_initialize_registry() != CUE_SUCCESS)
    return 2;
  CU_pSuite s = CU_add_suite("source", suite_up, suite_down);
  static const struct {
    const char *n;
    CU_TestFunc f;
  } tests[] = {
      TS_TEST(test_every_item_is_delivered_exactly_once_whatever_the_segments),
      TS_TEST(test_key_names_come_hash_first_then_range_with_item_count),
      TS_TEST(test_missing_table_is_not_found),
      TS_TEST(test_bad_options_are_invalid),
      TS_TEST(test_max_rcu_bounds_the_read_rate),
      TS_TEST(test_callback_error_stops_the_scan_and_comes_back),
      TS_TEST(test_unreachable_dynamodb_is_unavailable),
  };
  for (size_t i = 0; s && i < sizeof tests / sizeof tests[0]; i++)
    CU_add_test(s, tests[i].n, tests[i].f);
  CU_basic_set_mode(CU_BRM_VERBOSE);
  CU_basic_run_tests();
  test_print_failures(stderr);
  unsigned failed = CU_get_number_of_failures() +
                    CU_get_number_of_tests_failed() +
                    CU_get_run_summary()->nSuitesFailed;
  unsigned ran = CU_get_number_of_tests_run();
  CU_cleanup_registry();
  if (ran == 0) {
    fprintf(stderr, "no source test ran\n");
    return 1;
  }
  return failed ? 1 : 0;
}
