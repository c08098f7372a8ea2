/* domain/kinesis.h: shard lineage, lease rules, and the parsers of
 * ListShards and GetRecords answers. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "domain/kinesis.h"
#include "server/config.h"
#include "store/store.h"
#include "tests/unit/unit.h"

static struct kinesis_shard shard(const char *id, const char *parent,
                                  const char *adjacent) {
  struct kinesis_shard s;
  memset(&s, 0, sizeof s);
  snprintf(s.id, sizeof s.id, "%s", id);
  snprintf(s.parent, sizeof s.parent, "%s", parent ? parent : "");
  snprintf(s.adjacent, sizeof s.adjacent, "%s", adjacent ? adjacent : "");
  return s;
}

/* A split of 0 into 2 and 3, a merge of 1 and 2 into 4; 9's parent was
 * trimmed from the listing. */
static void test_child_is_readable_only_after_its_parents_end(void) {
  struct kinesis_shard sh[] = {
      shard("s0", NULL, NULL), shard("s1", NULL, NULL),
      shard("s2", "s0", NULL), shard("s3", "s0", NULL),
      shard("s4", "s1", "s2"), shard("s9", "gone", NULL),
  };
  const size_t n = sizeof sh / sizeof sh[0];
  const struct {
    const char *name;
    bool finished[6];
    bool want[6];
  } cases[] = {
      {"nothing read", {0}, {1, 1, 0, 0, 0, 1}},
      {"split parent done", {1, 0, 0, 0, 0, 0}, {0, 1, 1, 1, 0, 1}},
      {"one merge parent done", {1, 1, 0, 0, 0, 0}, {0, 0, 1, 1, 0, 1}},
      {"both merge parents done", {1, 1, 1, 0, 0, 0}, {0, 0, 0, 1, 1, 1}},
      {"all done", {1, 1, 1, 1, 1, 1}, {0, 0, 0, 0, 0, 0}},
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
    for (size_t i = 0; i < n; i++) {
      bool got = kinesis_shard_readable(sh, cases[c].finished, n, i);
      TS_CHECK_CASE(got == cases[c].want[i], cases[c].name, "shard %s: %d",
                    sh[i].id, (int)got);
    }
  CU_ASSERT_FALSE(kinesis_shard_readable(sh, cases[0].finished, n, n));
  /* a malformed listing is never read out of order: a shard naming
   * itself, or a parent listed twice with one copy unfinished */
  struct kinesis_shard odd[] = {shard("x", NULL, NULL), shard("x", NULL, NULL),
                                shard("y", "x", NULL), shard("z", "z", NULL)};
  bool fin[] = {true, false, false, false};
  CU_ASSERT_FALSE(kinesis_shard_readable(odd, fin, 4, 2));
  CU_ASSERT_FALSE(kinesis_shard_readable(odd, fin, 4, 3));
}

static struct shard_lease lease(const char *owner, int64_t expires,
                                bool finished, uint64_t version) {
  struct shard_lease l;
  memset(&l, 0, sizeof l);
  snprintf(l.owner, sizeof l.owner, "%s", owner);
  l.expires_ms = expires;
  l.finished = finished;
  l.version = version;
  return l;
}

static void test_lease_state_free_mine_held_finished(void) {
  const struct {
    const char *name;
    struct shard_lease l;
    enum lease_state want;
  } cases[] = {
      {"no row", lease("", 0, false, 0), LEASE_FREE},
      {"released", lease("", 0, false, 3), LEASE_FREE},
      {"mine", lease("me", 2000, false, 3), LEASE_MINE},
      {"other's, live", lease("you", 2000, false, 3), LEASE_HELD},
      {"other's, expired", lease("you", 1000, false, 3), LEASE_FREE},
      {"other's, expiring now", lease("you", 1000, false, 3), LEASE_FREE},
      {"mine, expired", lease("me", 999, false, 3), LEASE_FREE},
      {"finished", lease("", 0, true, 9), LEASE_FINISHED},
      {"finished while held", lease("you", 5000, true, 9), LEASE_FINISHED},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    enum lease_state got = kinesis_lease_state(&cases[i].l, "me", 1000);
    TS_CHECK_CASE(got == cases[i].want, cases[i].name, "state %d", (int)got);
  }
}

/* Free leases may be taken while under the share, and our own (the
 * coordinator takes only those with no worker of ours: one whose worker
 * stopped when the store failed it) whatever the share, since no one else
 * may take it before it expires; never another's live one nor a finished
 * shard's. */
static void test_lease_may_be_taken_when_free_under_share_or_still_ours(void) {
  const struct {
    const char *name;
    struct shard_lease l;
    size_t held, target;
    bool want;
  } cases[] = {
      {"no row, under share", lease("", 0, false, 0), 1, 2, true},
      {"no row, at share", lease("", 0, false, 0), 2, 2, false},
      {"released, under share", lease("", 0, false, 3), 0, 1, true},
      {"released, over share", lease("", 0, false, 3), 3, 2, false},
      {"other's, expired, under share", lease("you", 1000, false, 3), 0, 2,
       true},
      {"other's, expired, at share", lease("you", 1000, false, 3), 2, 2, false},
      {"mine, live, left by a stopped worker, under share",
       lease("me", 2000, false, 3), 0, 2, true},
      {"mine, live, left by a stopped worker, at share",
       lease("me", 2000, false, 3), 2, 2, true},
      {"mine, live, left by a stopped worker, over share",
       lease("me", 2000, false, 3), 3, 2, true},
      {"mine, expired, under share", lease("me", 999, false, 3), 1, 2, true},
      {"mine, expired, at share", lease("me", 999, false, 3), 2, 2, false},
      {"other's, live, under share", lease("you", 2000, false, 3), 0, 2, false},
      {"finished", lease("", 0, true, 9), 0, 2, false},
      {"finished while mine", lease("me", 5000, true, 9), 0, 2, false},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    bool got =
        kinesis_lease_may_take(kinesis_lease_state(&cases[i].l, "me", 1000),
                               cases[i].held, cases[i].target);
    TS_CHECK_CASE(got == cases[i].want, cases[i].name, "may take: %d",
                  (int)got);
  }
}

static void test_lease_transitions_keep_checkpoint_and_bump_version(void) {
  struct shard_lease cur = lease("you", 500, false, 4), next;
  snprintf(cur.checkpoint, sizeof cur.checkpoint, "100");
  kinesis_lease_take(&cur, "me", 1000, 3000, &next);
  CU_ASSERT_STRING_EQUAL(next.owner, "me");
  CU_ASSERT_EQUAL(next.expires_ms, 4000);
  CU_ASSERT_STRING_EQUAL(next.checkpoint, "100");
  CU_ASSERT_EQUAL(next.version, 5);

  struct shard_lease cp;
  kinesis_lease_checkpoint(&next, "250", false, 2000, 3000, &cp);
  CU_ASSERT_STRING_EQUAL(cp.checkpoint, "250");
  CU_ASSERT_STRING_EQUAL(cp.owner, "me");
  CU_ASSERT_EQUAL(cp.expires_ms, 5000);
  CU_ASSERT_EQUAL(cp.version, 6);
  CU_ASSERT_FALSE(cp.finished);

  struct shard_lease end;
  kinesis_lease_checkpoint(&cp, "", true, 2500, 3000, &end);
  CU_ASSERT_STRING_EQUAL(end.checkpoint, "250"); /* an empty last read */
  CU_ASSERT_TRUE(end.finished);
  CU_ASSERT_STRING_EQUAL(end.owner, "");
  CU_ASSERT_EQUAL(end.version, 7);

  struct shard_lease rel;
  kinesis_lease_release(&cp, &rel);
  CU_ASSERT_STRING_EQUAL(rel.owner, "");
  CU_ASSERT_EQUAL(rel.expires_ms, 0);
  CU_ASSERT_STRING_EQUAL(rel.checkpoint, "250");
  CU_ASSERT_EQUAL(rel.version, 7);
  CU_ASSERT_EQUAL(kinesis_lease_state(&rel, "you", 0), LEASE_FREE);
}

/* A refused lease write is our own only when the row read back is exactly
 * what it sent; any field another writer would have made different says
 * the race was lost. */
static void test_refused_lease_write_is_ours_only_when_the_row_is_it(void) {
  struct shard_lease cur = lease("me", 4000, false, 5), sent;
  snprintf(cur.checkpoint, sizeof cur.checkpoint, "100");
  kinesis_lease_checkpoint(&cur, "250", false, 2000, 3000, &sent);
  struct shard_lease taken, older = cur, released, moved = sent, ended = sent;
  kinesis_lease_take(&cur, "you", 2000, 3000, &taken); /* same version */
  kinesis_lease_release(&cur, &released);              /* same version */
  snprintf(moved.checkpoint, sizeof moved.checkpoint, "260");
  ended.finished = true;
  struct shard_lease later = sent;
  later.expires_ms += 1;
  const struct {
    const char *name;
    const struct shard_lease *stored;
    bool want;
  } cases[] = {
      {"the row sent", &sent, true},
      {"taken by another at the same version", &taken, false},
      {"the row before the write", &older, false},
      {"released at the same version", &released, false},
      {"another checkpoint", &moved, false},
      {"finished", &ended, false},
      {"another expiry", &later, false},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    TS_CHECK_CASE(kinesis_lease_same(cases[i].stored, &sent) == cases[i].want,
                  cases[i].name, "want %d", (int)cases[i].want);
}

/* A holder stops a fifth of the lease before its end, so that it has
 * stopped before anyone else may take the lease. */
static void test_holder_stops_before_anyone_may_take_over(void) {
  CU_ASSERT_FALSE(kinesis_lease_must_stop(1000, 1000, 10000));
  CU_ASSERT_FALSE(kinesis_lease_must_stop(1000, 8999, 10000));
  CU_ASSERT_TRUE(kinesis_lease_must_stop(1000, 9000, 10000));
  CU_ASSERT_TRUE(kinesis_lease_must_stop(1000, 11000, 10000));
  /* stopping time is strictly before the expiry another consumer sees */
  struct shard_lease cur = lease("", 0, false, 0), next;
  kinesis_lease_take(&cur, "me", 1000, 10000, &next);
  for (int64_t t = 1000; t < 20000; t += 250)
    if (kinesis_lease_state(&next, "other", t) == LEASE_FREE)
      CU_ASSERT_TRUE(kinesis_lease_must_stop(1000, t, 10000));
}

static void test_lease_target_shares_readable_shards(void) {
  const struct {
    size_t readable, others, want;
  } cases[] = {{4, 0, 4}, {4, 1, 2}, {5, 1, 3}, {4, 3, 1},
               {4, 7, 1}, {0, 0, 0}, {0, 2, 0}, {6, 2, 2}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char name[48];
    snprintf(name, sizeof name, "%zu shards, %zu others", cases[i].readable,
             cases[i].others);
    size_t got = kinesis_lease_target(cases[i].readable, cases[i].others);
    TS_CHECK_CASE(got == cases[i].want, name, "target %zu", got);
  }
}

static void test_sequence_numbers_compare_by_value(void) {
  CU_ASSERT_TRUE(kinesis_seq_less("9", "10"));
  CU_ASSERT_TRUE(kinesis_seq_less("49680810348310511458281642687484818310283"
                                  "271632223993858",
                                  "49680810348310511458281642687484818310283"
                                  "271632223993859"));
  CU_ASSERT_FALSE(kinesis_seq_less("10", "10"));
  CU_ASSERT_FALSE(kinesis_seq_less("11", "010"));
  CU_ASSERT_TRUE(kinesis_seq_less("009", "10"));
  CU_ASSERT_FALSE(kinesis_seq_less("", "1"));
  CU_ASSERT_FALSE(kinesis_seq_less("1a", "2"));
}

static void test_list_shards_pages_are_appended(void) {
  struct kinesis_shard *sh = NULL;
  size_t n = 0;
  char next[64];
  json_t *p1 = json_loads(
      "{\"Shards\":[{\"ShardId\":\"a\"},{\"ShardId\":\"b\",\"ParentShardId\":"
      "\"a\",\"AdjacentParentShardId\":\"z\"}],\"NextToken\":\"t1\"}",
      0, NULL);
  json_t *p2 = json_loads("{\"Shards\":[{\"ShardId\":\"c\"}]}", 0, NULL);
  CU_ASSERT_EQUAL(kinesis_shards_parse(p1, &sh, &n, next, sizeof next), TS_OK);
  CU_ASSERT_STRING_EQUAL(next, "t1");
  CU_ASSERT_EQUAL(kinesis_shards_parse(p2, &sh, &n, next, sizeof next), TS_OK);
  CU_ASSERT_STRING_EQUAL(next, "");
  CU_ASSERT_EQUAL_FATAL(n, 3);
  CU_ASSERT_STRING_EQUAL(sh[1].parent, "a");
  CU_ASSERT_STRING_EQUAL(sh[1].adjacent, "z");
  CU_ASSERT_STRING_EQUAL(sh[2].id, "c");
  const char *bad[] = {
      "[]",
      "{\"Shards\":{}}",
      "{\"Shards\":[{}]}",
      "{\"Shards\":[{\"ShardId\":\"\"}]}",
      "{\"Shards\":[{\"ShardId\":7}]}",
      "{\"Shards\":[\"a\"]}",
      "{\"Shards\":[],\"NextToken\":5}",
      "{\"Shards\":[{\"ShardId\":\"ok\"},{\"ShardId\":\"\"}]}",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    json_t *j = json_loads(bad[i], 0, NULL);
    TS_CHECK_CASE(kinesis_shards_parse(j, &sh, &n, next, sizeof next) ==
                      TS_ERR_INVALID,
                  bad[i], "accepted");
    TS_CHECK_CASE(n == 3, bad[i], "a refused page added shards: %zu", n);
    json_decref(j);
  }
  free(sh);
  json_decref(p1);
  json_decref(p2);
}

static void test_get_records_becomes_a_lambda_kinesis_envelope(void) {
  json_t *ans = json_loads(
      "{\"Records\":[{\"SequenceNumber\":\"100\",\"Data\":\"eyJ9\","
      "\"PartitionKey\":\"g1\",\"ApproximateArrivalTimestamp\":1764000000.5},"
      "{\"SequenceNumber\":\"101\",\"Data\":\"e30=\",\"PartitionKey\":\"g2\"}"
      "],\"NextShardIterator\":\"it2\",\"MillisBehindLatest\":1500}",
      0, NULL);
  struct kinesis_read r;
  CU_ASSERT_EQUAL_FATAL(kinesis_read_parse(ans, "shardId-1", &r), TS_OK);
  CU_ASSERT_EQUAL(r.records, 2);
  CU_ASSERT_STRING_EQUAL(r.last_seq, "101");
  CU_ASSERT_STRING_EQUAL(r.next_iterator, "it2");
  CU_ASSERT_EQUAL(r.millis_behind, 1500);
  json_t *rec = json_array_get(json_object_get(r.envelope, "Records"), 0);
  CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(rec, "eventID")),
                         "shardId-1:100");
  CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(rec, "eventName")),
                         "aws:kinesis:record");
  json_t *k = json_object_get(rec, "kinesis");
  CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(k, "data")), "eyJ9");
  CU_ASSERT_STRING_EQUAL(
      json_string_value(json_object_get(k, "sequenceNumber")), "100");
  CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(k, "partitionKey")),
                         "g1");
  kinesis_read_clear(&r);
  json_decref(ans);

  /* the end of a closed shard: no iterator */
  ans = json_loads("{\"Records\":[],\"ChildShards\":[]}", 0, NULL);
  CU_ASSERT_EQUAL_FATAL(kinesis_read_parse(ans, "s", &r), TS_OK);
  CU_ASSERT_EQUAL(r.records, 0);
  CU_ASSERT_PTR_NULL(r.next_iterator);
  CU_ASSERT_EQUAL(r.millis_behind, -1);
  CU_ASSERT_STRING_EQUAL(r.last_seq, "");
  kinesis_read_clear(&r);
  json_decref(ans);

  const char *bad[] = {
      "{}",
      "{\"Records\":{}}",
      "{\"Records\":[{\"Data\":\"e30=\"}]}",
      "{\"Records\":[{\"SequenceNumber\":\"x1\",\"Data\":\"e30=\"}]}",
      "{\"Records\":[{\"SequenceNumber\":\"1\"}]}",
      ("{\"Records\":[{\"SequenceNumber\":\"2\",\"Data\":\"\"},"
       "{\"SequenceNumber\":\"1\",\"Data\":\"\"}]}"),
      "{\"Records\":[],\"NextShardIterator\":3}",
      "{\"Records\":[],\"MillisBehindLatest\":\"9\"}",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    json_t *j = json_loads(bad[i], 0, NULL);
    enum ts_status st = kinesis_read_parse(j, "s", &r);
    TS_CHECK_CASE(st == TS_ERR_INVALID && !r.envelope && !r.next_iterator,
                  bad[i], "status %s", ts_status_name(st));
    json_decref(j);
  }
}

static void test_stream_name_from_name_or_arn(void) {
  char out[TS_KINESIS_ID_BYTES];
  const struct {
    const char *in, *want;
  } cases[] = {
      {"games", "games"},
      {"arn:aws:kinesis:eu-west-1:123456789012:stream/games", "games"},
      {"arn:aws:kinesis:eu-west-1:123456789012:table/x", ""},
      {"", ""},
      {"a#b", ""},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    kinesis_stream_name(cases[i].in, out);
    TS_CHECK_CASE(strcmp(out, cases[i].want) == 0, cases[i].in, "got %s", out);
  }
}

/* The store's lease row is a compare-and-set on its version (SQLite;
 * DynamoDB's is exercised by the e2e suite on dynalite). */
static void test_sqlite_lease_put_is_compare_and_set(void) {
  char dir[] = "/tmp/ts-lease-XXXXXX";
  CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
  char path[64];
  snprintf(path, sizeof path, "%s/s.db", dir);
  struct store_options opt = {.kind = "sqlite", .sqlite_path = path};
  struct store *s = NULL;
  CU_ASSERT_EQUAL_FATAL(store_open(&opt, &s), TS_OK);
  struct shard_lease got, a, b;
  bool written = true;
  CU_ASSERT_EQUAL(store_lease_get(s, "st", "sh", &got), TS_OK);
  CU_ASSERT_EQUAL(got.version, 0);
  kinesis_lease_take(&got, "A", 1000, 5000, &a);
  kinesis_lease_take(&got, "B", 1000, 5000, &b);
  CU_ASSERT_EQUAL(store_lease_put(s, "st", "sh", &a, 0, &written), TS_OK);
  CU_ASSERT_TRUE(written);
  /* B read the same version 0: its take is refused */
  CU_ASSERT_EQUAL(store_lease_put(s, "st", "sh", &b, 0, &written), TS_OK);
  CU_ASSERT_FALSE(written);
  CU_ASSERT_EQUAL(store_lease_get(s, "st", "sh", &got), TS_OK);
  CU_ASSERT_STRING_EQUAL(got.owner, "A");
  CU_ASSERT_EQUAL(got.version, 1);
  struct shard_lease cp;
  kinesis_lease_checkpoint(&got, "77", false, 2000, 5000, &cp);
  CU_ASSERT_EQUAL(store_lease_put(s, "st", "sh", &cp, 1, &written), TS_OK);
  CU_ASSERT_TRUE(written);
  CU_ASSERT_EQUAL(store_lease_get(s, "st", "sh", &got), TS_OK);
  CU_ASSERT_STRING_EQUAL(got.checkpoint, "77");
  CU_ASSERT_EQUAL(got.expires_ms, 7000);
  /* another shard and another stream are other rows */
  CU_ASSERT_EQUAL(store_lease_get(s, "st", "sh2", &got), TS_OK);
  CU_ASSERT_EQUAL(got.version, 0);
  CU_ASSERT_EQUAL(store_lease_get(s, "st2", "sh", &got), TS_OK);
  CU_ASSERT_EQUAL(got.version, 0);
  /* a version that does not follow, or a key with '#', is refused */
  CU_ASSERT_EQUAL(store_lease_put(s, "st", "sh", &cp, 5, &written),
                  TS_ERR_INVALID);
  CU_ASSERT_EQUAL(store_lease_get(s, "st", "a#b", &got), TS_ERR_INVALID);
  store_free(s);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  CU_ASSERT_EQUAL(system(cmd), 0);
}

/* `consume` needs a stream; the consumer's settings default to the bounds
 * and are range-checked like every other. */
static void test_consume_settings(void) {
  const char *vars[] = {"TS_KINESIS_STREAM", "TS_KINESIS_LEASE_MS",
                        "TS_KINESIS_POLL_MS", "TS_KINESIS_BATCH",
                        "TS_KINESIS_OWNER"};
  for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
    unsetenv(vars[i]);
  const struct {
    const char *name;
    const char *argv[4];
    enum ts_status want;
    enum config_action action;
  } cases[] = {
      {"consume without a stream", {"consume"}, TS_ERR_INVALID, CONFIG_RUN},
      {"consume with an empty stream",
       {"--kinesis-stream", "", "consume"},
       TS_ERR_INVALID,
       CONFIG_RUN},
      {"consume with a stream",
       {"--kinesis-stream", "games", "consume"},
       TS_OK,
       CONFIG_CONSUME},
      {"serve with a stream", {"--kinesis-stream", "games"}, TS_OK, CONFIG_RUN},
      {"lease under a second",
       {"--kinesis-lease-ms", "999"},
       TS_ERR_INVALID,
       CONFIG_RUN},
      {"batch over Kinesis's limit",
       {"--kinesis-batch", "10001"},
       TS_ERR_INVALID,
       CONFIG_RUN},
  };
  FILE *sink = fopen("/dev/null", "w");
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char *argv[6] = {"tourney-stats"};
    int argc = 1;
    for (size_t k = 0; k < 4 && cases[i].argv[k]; k++)
      argv[argc++] = (char *)cases[i].argv[k];
    struct config cfg;
    enum config_action action = CONFIG_RUN;
    enum ts_status st = config_load(&cfg, argc, argv, sink, sink, &action);
    TS_CHECK_CASE(st == cases[i].want, cases[i].name, "status %s",
                  ts_status_name(st));
    if (st == TS_OK) {
      TS_CHECK_CASE(action == cases[i].action, cases[i].name, "action %d",
                    (int)action);
      TS_CHECK_CASE(cfg.kinesis_lease_ms == TS_KINESIS_LEASE_MS &&
                        cfg.kinesis_poll_ms == TS_KINESIS_POLL_MS &&
                        cfg.kinesis_batch == TS_KINESIS_GET_RECORDS_LIMIT &&
                        cfg.kinesis_stream &&
                        strcmp(cfg.kinesis_stream, "games") == 0,
                    cases[i].name, "defaults");
    }
    config_clear(&cfg);
  }
  fclose(sink);
}

void suite_kinesis_rules(void) {
  TS_SUITE("kinesis_rules",
           TS_TEST(test_child_is_readable_only_after_its_parents_end),
           TS_TEST(test_lease_state_free_mine_held_finished),
           TS_TEST(test_lease_may_be_taken_when_free_under_share_or_still_ours),
           TS_TEST(test_lease_transitions_keep_checkpoint_and_bump_version),
           TS_TEST(test_refused_lease_write_is_ours_only_when_the_row_is_it),
           TS_TEST(test_holder_stops_before_anyone_may_take_over),
           TS_TEST(test_lease_target_shares_readable_shards),
           TS_TEST(test_sequence_numbers_compare_by_value),
           TS_TEST(test_list_shards_pages_are_appended),
           TS_TEST(test_get_records_becomes_a_lambda_kinesis_envelope),
           TS_TEST(test_stream_name_from_name_or_arn),
           TS_TEST(test_sqlite_lease_put_is_compare_and_set),
           TS_TEST(test_consume_settings));
}
