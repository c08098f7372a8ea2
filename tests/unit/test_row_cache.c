/* suite_row_cache: the writer's copy of player rows answers with what it
 * was given last, forgets everything when cleared, and stays within its
 * bound by forgetting rather than growing. */
#include <stdio.h>
#include <string.h>

#include "common/bounds.h"
#include "store/row_cache.h"
#include "unit.h"

static struct stats stats_of(int64_t games) {
  struct stats s = {.games = games, .wins = games / 2};
  s.total_score.coef = games * 100;
  s.total_score.scale = 2;
  return s;
}

/* Table cases of puts, then what a get of each name answers. */
static void test_copy_answers_the_last_put_of_each_player(void) {
  static const struct {
    const char *name;
    const char *puts[4]; /* player names, in order; version = index + 1 */
    const char *get;
    bool held;
    int64_t version;
  } cases[] = {
      {"one put", {"alice"}, "alice", true, 1},
      {"never put", {"alice"}, "bob", false, 0},
      {"the last put wins", {"alice", "bob", "alice"}, "alice", true, 3},
      {"a prefix is another player", {"al", "alice"}, "al", true, 1},
      {"empty name", {"", "x"}, "", true, 1},
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    struct row_cache *rc = row_cache_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(rc);
    for (size_t i = 0; i < 4 && cases[c].puts[i]; i++) {
      struct stats s = stats_of((int64_t)i + 10);
      row_cache_put(rc, cases[c].puts[i], &s, (int64_t)i + 1);
    }
    struct stats got = {0};
    int64_t version = -1;
    bool held = row_cache_get(rc, cases[c].get, &got, &version);
    TS_CHECK_CASE(held == cases[c].held, cases[c].name, "held %d", held);
    if (held && cases[c].held) {
      struct stats want = stats_of(cases[c].version - 1 + 10);
      TS_CHECK_CASE(version == cases[c].version && got.games == want.games &&
                        got.wins == want.wins &&
                        got.total_score.coef == want.total_score.coef,
                    cases[c].name, "version %lld games %lld",
                    (long long)version, (long long)got.games);
    }
    row_cache_free(rc);
  }
}

static void test_cleared_copy_holds_nothing_and_fills_again(void) {
  struct row_cache *rc = row_cache_new();
  CU_ASSERT_PTR_NOT_NULL_FATAL(rc);
  struct stats s = stats_of(3), got;
  int64_t v;
  row_cache_put(rc, "alice", &s, 7);
  row_cache_clear(rc);
  CU_ASSERT(row_cache_count(rc) == 0);
  CU_ASSERT(!row_cache_get(rc, "alice", &got, &v));
  row_cache_put(rc, "alice", &s, 8);
  CU_ASSERT(row_cache_get(rc, "alice", &got, &v) && v == 8);
  CU_ASSERT(row_cache_count(rc) == 1);
  row_cache_free(rc);
  row_cache_free(NULL);
}

/* Player i's name, len bytes: its number, then 'p's. */
static void name_of(char *out, size_t len, size_t i) {
  memset(out, 'p', len);
  snprintf(out, len + 1, "%zu", i);
  out[strlen(out)] = 'p';
  out[len] = '\0';
}

/* Past its bound of rows, or of bytes of names, the copy forgets what it
 * held and keeps the newest row only. */
static void test_copy_forgets_everything_past_its_bounds(void) {
  static const struct {
    const char *name;
    size_t name_len, rows;
  } cases[] = {
      {"rows", 8, TS_SQLITE_ROW_CACHE_ROWS + 1},
      {"name bytes", 1000, TS_SQLITE_ROW_CACHE_NAME_BYTES / 1001 + 1},
  };
  static char player[1024];
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    struct row_cache *rc = row_cache_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(rc);
    struct stats s = stats_of(1), got;
    int64_t v;
    for (size_t i = 0; i < cases[c].rows; i++) {
      name_of(player, cases[c].name_len, i);
      row_cache_put(rc, player, &s, (int64_t)i + 1);
      if (i + 1 < cases[c].rows)
        TS_CHECK_CASE(row_cache_count(rc) == i + 1, cases[c].name,
                      "count %zu after %zu", row_cache_count(rc), i + 1);
    }
    TS_CHECK_CASE(row_cache_count(rc) == 1, cases[c].name, "count %zu",
                  row_cache_count(rc));
    TS_CHECK_CASE(row_cache_get(rc, player, &got, &v) &&
                      v == (int64_t)cases[c].rows,
                  cases[c].name, "the newest row is held");
    name_of(player, cases[c].name_len, 0);
    TS_CHECK_CASE(!row_cache_get(rc, player, &got, &v), cases[c].name,
                  "the first row is forgotten");
    row_cache_free(rc);
  }
}

void suite_row_cache(void) {
  TS_SUITE("row_cache", TS_TEST(test_copy_answers_the_last_put_of_each_player),
           TS_TEST(test_cleared_copy_holds_nothing_and_fills_again),
           TS_TEST(test_copy_forgets_everything_past_its_bounds));
}
