/* suite_arena: strings copied into an arena keep their bytes until the
 * arena is freed, however it grew, and it grows in few chunks. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/arena.h"
#include "common/bounds.h"
#include "unit.h"

/* Every copy equals its source and ends in NUL, and the earlier copies are
 * untouched by the later ones (each case copies its length many times,
 * past several chunks). */
static void test_copies_keep_their_bytes_while_the_arena_grows(void) {
  static const struct {
    const char *name;
    size_t first, len;
  } cases[] = {
      {"empty strings", 0, 0},
      {"one byte", 0, 1},
      {"a chunk's size exactly", TS_ARENA_MIN_CHUNK_BYTES,
       TS_ARENA_MIN_CHUNK_BYTES - 1},
      {"longer than the first chunk", 64, TS_ARENA_MIN_CHUNK_BYTES + 1},
      {"longer than any chunk", 0, TS_ARENA_MAX_CHUNK_BYTES + 7},
      {"an odd length in a large first chunk", 1u << 20, 37},
  };
  enum { COPIES = 40 };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    size_t len = cases[c].len;
    char *src = malloc(len + 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(src);
    struct arena *a = arena_new(cases[c].first);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    char *copies[COPIES];
    for (size_t i = 0; i < COPIES; i++) {
      memset(src, 'a' + (int)(i % 26), len);
      src[len] = 'X'; /* not copied: the copy's own NUL ends it */
      copies[i] = arena_strndup(a, src, len);
      TS_CHECK_CASE(copies[i] != NULL, cases[c].name, "copy %zu failed", i);
    }
    for (size_t i = 0; i < COPIES && copies[i]; i++) {
      bool same = strlen(copies[i]) == len;
      for (size_t k = 0; same && k < len; k++)
        same = copies[i][k] == 'a' + (int)(i % 26);
      TS_CHECK_CASE(same, cases[c].name, "copy %zu changed", i);
    }
    arena_free(a);
    free(src);
  }
}

/* 10,000 short strings (a full batch's eventIDs) take a few chunks, not
 * one allocation each: no more than twice their bytes plus a chunk. */
static void test_many_small_strings_share_chunks(void) {
  struct arena *a = arena_new(0);
  CU_ASSERT_PTR_NOT_NULL_FATAL(a);
  size_t total = 0;
  for (int i = 0; i < 10000; i++) {
    char s[32];
    int n = snprintf(s, sizeof s, "event-%d", i);
    CU_ASSERT_PTR_NOT_NULL_FATAL(arena_strndup(a, s, (size_t)n));
    total += (size_t)n + 1;
  }
  CU_ASSERT(arena_bytes(a) <= 2 * total + TS_ARENA_MAX_CHUNK_BYTES);
  arena_free(a);
}

void suite_arena(void) {
  TS_SUITE("arena", TS_TEST(test_copies_keep_their_bytes_while_the_arena_grows),
           TS_TEST(test_many_small_strings_share_chunks));
}
