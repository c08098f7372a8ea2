/* suite_json_pool: a parsed tree's nodes come from the pool, and a chunk
 * goes back once its last node is freed, whichever thread frees it. */
#include <jansson.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/bounds.h"
#include "common/json_parse.h"
#include "common/json_pool.h"
#include "common/json_pool_test.h"
#include "unit.h"

static json_t *parse(const char *text) {
  json_t *v = NULL;
  CU_ASSERT_FATAL(json_parse(text, strlen(text), &v, NULL) == TS_OK);
  return v;
}

static uintptr_t chunk_of(const void *p) {
  return (uintptr_t)p / TS_JSON_POOL_CHUNK_BYTES;
}

static const char record[] =
    "{\"eventID\":\"e1\",\"eventName\":\"INSERT\",\"dynamodb\":{\"Keys\":"
    "{\"gameId\":{\"S\":\"g1\"}},\"NewImage\":{\"player\":{\"S\":\"ann\"},"
    "\"score\":{\"N\":\"12.5\"},\"winner\":{\"BOOL\":true}}}}";

/* What json_parse builds is pooled; what code builds is malloc'ed, so
 * json_dumps' text can still be freed with free(). */
static void test_parsed_nodes_are_pooled_and_built_ones_are_not(void) {
  json_t *v = parse(record);
  CU_ASSERT(json_pool_test_owns(v));
  CU_ASSERT(json_pool_test_owns(json_object_get(v, "eventID")));
  CU_ASSERT(
      json_pool_test_owns(json_string_value(json_object_get(v, "eventID"))));
  json_t *built = json_object();
  CU_ASSERT(!json_pool_test_owns(built));
  char *text = json_dumps(v, JSON_COMPACT);
  CU_ASSERT_FATAL(text != NULL);
  CU_ASSERT(!json_pool_test_owns(text));
  CU_ASSERT_STRING_EQUAL(
      json_string_value(json_object_get(
          json_object_get(
              json_object_get(json_object_get(v, "dynamodb"), "NewImage"),
              "player"),
          "S")),
      "ann");
  free(text);
  json_decref(built);
  json_decref(v);
}

/* A node above TS_JSON_POOL_MAX_NODE is malloc'ed; its value is intact. */
static void test_node_above_the_limit_is_malloced(void) {
  size_t n = 2 * TS_JSON_POOL_MAX_NODE;
  char *text = malloc(n + 3);
  CU_ASSERT_FATAL(text != NULL);
  text[0] = '"';
  memset(text + 1, 'x', n);
  text[n + 1] = '"';
  text[n + 2] = '\0';
  json_t *v = parse(text);
  CU_ASSERT(json_pool_test_owns(v));
  CU_ASSERT(!json_pool_test_owns(json_string_value(v)));
  CU_ASSERT_EQUAL(json_string_length(v), n);
  CU_ASSERT(memcmp(json_string_value(v), text + 1, n) == 0);
  json_decref(v);
  free(text);
}

static void *decref_thread(void *v) {
  json_decref(v);
  return NULL;
}

/* One node kept alive keeps its chunk out of the pool once the thread has
 * moved on; freeing it (here or on another thread) gives the chunk back. */
static void test_chunk_returns_when_its_last_node_is_freed(void) {
  static const struct {
    const char *name;
    int other_thread;
  } cases[] = {{"freed here", 0}, {"freed on another thread", 1}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    json_pool_thread_done();
    size_t out0 = json_pool_test_chunks_out();
    json_t *a = parse(record);
    json_t *kept = json_incref(json_object_get(a, "dynamodb"));
    json_decref(a);
    json_pool_thread_done();
    CU_ASSERT(json_pool_test_chunks_out() == out0 + 1);
    json_t *b = parse(record);
    CU_ASSERT(chunk_of(b) != chunk_of(kept));
    json_decref(b);
    json_pool_thread_done();
    CU_ASSERT(json_pool_test_chunks_out() == out0 + 1);
    if (cases[i].other_thread) {
      pthread_t t;
      CU_ASSERT_FATAL(pthread_create(&t, NULL, decref_thread, kept) == 0);
      pthread_join(t, NULL);
    } else {
      json_decref(kept);
    }
    if (json_pool_test_chunks_out() != out0)
      CU_FAIL(cases[i].name);
  }
}

/* Small trees parsed one after another share the thread's chunk instead
 * of holding one each. */
#define SMALL_TREES 20
static void test_small_trees_share_the_threads_chunk(void) {
  json_pool_thread_done();
  size_t out0 = json_pool_test_chunks_out();
  json_t *trees[SMALL_TREES];
  for (int i = 0; i < SMALL_TREES; i++)
    trees[i] = parse("{\"player\":{\"S\":\"ann\"},\"n\":[1,2,3]}");
  CU_ASSERT_EQUAL(json_pool_test_chunks_out(), out0 + 1);
  for (int i = 1; i < SMALL_TREES; i++)
    CU_ASSERT(chunk_of(trees[i]) == chunk_of(trees[0]));
  for (int i = 0; i < SMALL_TREES; i++)
    json_decref(trees[i]);
  CU_ASSERT_EQUAL(json_pool_test_chunks_out(), out0 + 1); /* still filling */
  json_pool_thread_done();
  CU_ASSERT_EQUAL(json_pool_test_chunks_out(), out0);
}

/* When no chunk is left (the range used up, here a cap), the nodes that
 * do not fit fall back to malloc: the tree is whole, frees go where each
 * node came from, and the pool places nodes again once chunks are back. */
#define FALLBACK_ITEMS 4000
static void test_nodes_fall_back_to_malloc_when_no_chunk_is_left(void) {
  json_pool_thread_done();
  size_t out0 = json_pool_test_chunks_out();
  char *text = malloc(FALLBACK_ITEMS * 12 + 3);
  CU_ASSERT_FATAL(text != NULL);
  size_t len = 0;
  text[len++] = '[';
  for (int i = 0; i < FALLBACK_ITEMS; i++)
    len += (size_t)snprintf(text + len, 16, "%s\"s%07d\"", i ? "," : "", i);
  text[len++] = ']';
  text[len] = '\0';

  json_pool_test_cap(out0 + 1);
  json_t *v = parse(text);
  json_pool_test_cap(SIZE_MAX);
  CU_ASSERT_EQUAL(json_array_size(v), FALLBACK_ITEMS);
  CU_ASSERT(json_pool_test_owns(json_array_get(v, 0)));
  CU_ASSERT(!json_pool_test_owns(json_array_get(v, FALLBACK_ITEMS - 1)));
  CU_ASSERT_EQUAL(json_pool_test_chunks_out(), out0 + 1);
  char *again = json_dumps(v, JSON_COMPACT);
  CU_ASSERT(again && strcmp(again, text) == 0);
  free(again);
  json_decref(v);
  json_pool_thread_done();
  CU_ASSERT_EQUAL(json_pool_test_chunks_out(), out0);

  json_t *w = parse(record);
  CU_ASSERT(json_pool_test_owns(w));
  json_decref(w);
  free(text);
}

/* A duplicate key frees the first value while its chunk is being filled;
 * a refused text frees the partial tree: neither leaves a chunk out. */
static void test_frees_during_a_parse_leave_no_chunk_out(void) {
  static const char *texts[] = {
      "{\"a\":{\"x\":1},\"a\":{\"y\":2}}",
      "{\"a\":[1,2,{\"b\":\"c\"}],\"d\":tru}",
      "[\"unterminated",
  };
  json_pool_thread_done();
  size_t out0 = json_pool_test_chunks_out();
  for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
    json_t *v = NULL;
    enum ts_status st = json_parse(texts[i], strlen(texts[i]), &v, NULL);
    CU_ASSERT((st == TS_OK) == (i == 0));
    if (i == 0)
      CU_ASSERT(json_integer_value(
                    json_object_get(json_object_get(v, "a"), "y")) == 2);
    json_decref(v);
    json_pool_thread_done();
    CU_ASSERT(json_pool_test_chunks_out() == out0);
  }
}

/* Threads parse, check and free at once, some trees freed by a thread
 * other than the one that built them: every value is intact, and every
 * chunk comes back (a thread's own when it exits). */
#define WORKERS 4
#define ROUNDS 300
struct worker {
  json_t *handed[ROUNDS]; /* built here, freed by the next worker */
  int bad;
};
static struct worker workers[WORKERS];
static pthread_barrier_t built;

static void *work(void *arg) {
  struct worker *w = arg;
  char text[4096];
  for (int r = 0; r < ROUNDS; r++) {
    int n = snprintf(text, sizeof text, "{\"round\":%d,\"records\":[", r);
    for (int k = 0; k < 20; k++)
      n += snprintf(text + n, sizeof text - (size_t)n, "%s%s", k ? "," : "",
                    record);
    snprintf(text + n, sizeof text - (size_t)n, "]}");
    json_t *v = NULL;
    if (json_parse(text, strlen(text), &v, NULL) != TS_OK) {
      w->bad++;
      continue;
    }
    json_t *recs = json_object_get(v, "records");
    if (json_integer_value(json_object_get(v, "round")) != r ||
        json_array_size(recs) != 20 ||
        strcmp(json_string_value(
                   json_object_get(json_array_get(recs, 19), "eventID")),
               "e1") != 0)
      w->bad++;
    w->handed[r] = json_incref(json_array_get(recs, r % 20));
    json_decref(v);
  }
  pthread_barrier_wait(&built);
  struct worker *next = &workers[(w - workers + 1) % WORKERS];
  for (int r = 0; r < ROUNDS; r++) {
    if (strcmp(json_string_value(json_object_get(next->handed[r], "eventName")),
               "INSERT") != 0)
      w->bad++;
    json_decref(next->handed[r]);
  }
  return NULL;
}

static void test_trees_built_and_freed_across_threads_stay_intact(void) {
  json_pool_thread_done();
  size_t out0 = json_pool_test_chunks_out();
  pthread_t t[WORKERS];
  CU_ASSERT_FATAL(pthread_barrier_init(&built, NULL, WORKERS) == 0);
  for (int i = 0; i < WORKERS; i++)
    CU_ASSERT_FATAL(pthread_create(&t[i], NULL, work, &workers[i]) == 0);
  for (int i = 0; i < WORKERS; i++)
    pthread_join(t[i], NULL);
  pthread_barrier_destroy(&built);
  for (int i = 0; i < WORKERS; i++)
    CU_ASSERT_EQUAL(workers[i].bad, 0);
  CU_ASSERT_EQUAL(json_pool_test_chunks_out(), out0);
}

void suite_json_pool(void) {
  TS_SUITE("json_pool",
           TS_TEST(test_parsed_nodes_are_pooled_and_built_ones_are_not),
           TS_TEST(test_node_above_the_limit_is_malloced),
           TS_TEST(test_chunk_returns_when_its_last_node_is_freed),
           TS_TEST(test_small_trees_share_the_threads_chunk),
           TS_TEST(test_nodes_fall_back_to_malloc_when_no_chunk_is_left),
           TS_TEST(test_frees_during_a_parse_leave_no_chunk_out),
           TS_TEST(test_trees_built_and_freed_across_threads_stay_intact));
}
