/* suite_stats: applying deltas under the invariants, deriving averages. */
#include <stdint.h>
#include <string.h>

#include "domain/stats.h"
#include "unit.h"

static struct decimal dec(const char *s) {
  struct decimal d = {0, 0};
  enum ts_status st = decimal_parse(s, strlen(s), &d);
  TS_CHECK_CASE(st == TS_OK, s, "fixture does not parse: %s",
                ts_status_name(st));
  return d;
}

static struct stats mk(int64_t games, int64_t wins, const char *total) {
  return (struct stats){games, wins, dec(total)};
}

static bool same(const struct stats *a, const struct stats *b) {
  return a->games == b->games && a->wins == b->wins &&
         decimal_cmp(a->total_score, b->total_score) == 0;
}

static void test_apply_adds_games_wins_and_score(void) {
  struct stats s = mk(0, 0, "0");
  struct stats win = mk(1, 1, "10.5"), loss = mk(1, 0, "-2.25");
  CU_ASSERT_EQUAL_FATAL(stats_apply(&s, &win), TS_OK);
  CU_ASSERT_EQUAL_FATAL(stats_apply(&s, &loss), TS_OK);
  struct stats want = mk(2, 1, "8.25");
  CU_ASSERT(same(&s, &want));
  /* A REMOVE-shaped delta takes the game back out. */
  struct stats minus = mk(-1, -1, "-10.5");
  CU_ASSERT_EQUAL_FATAL(stats_apply(&s, &minus), TS_OK);
  want = mk(1, 0, "-2.25");
  CU_ASSERT(same(&s, &want));
}

static void test_apply_rejects_deltas_that_break_the_invariants(void) {
  static const struct {
    const char *name;
    int64_t games, wins;
    const char *total;
    int64_t d_games, d_wins;
    const char *d_total;
  } cases[] = {
      {"games below zero", 0, 0, "0", -1, 0, "-5"},
      {"wins below zero", 1, 0, "5", 0, -1, "0"},
      {"wins and games below zero", 0, 0, "0", -1, -1, "-5"},
      {"wins above games after removal", 1, 1, "5", -1, 0, "-5"},
      {"wins above games after adding wins", 1, 0, "0", 0, 2, "0"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct stats s = mk(cases[i].games, cases[i].wins, cases[i].total);
    struct stats before = s;
    struct stats d = mk(cases[i].d_games, cases[i].d_wins, cases[i].d_total);
    enum ts_status st = stats_apply(&s, &d);
    TS_CHECK_CASE(st == TS_ERR_INVALID, cases[i].name, "status %s",
                  ts_status_name(st));
    TS_CHECK_CASE(same(&s, &before), cases[i].name, "stats were changed");
  }
}

static void test_apply_reports_overflow_and_leaves_stats_unchanged(void) {
  struct stats s = {INT64_MAX, 0, decimal_from_int(0)};
  struct stats before = s, one = mk(1, 0, "0");
  CU_ASSERT_EQUAL(stats_apply(&s, &one), TS_ERR_RANGE);
  CU_ASSERT(same(&s, &before));
  struct stats big = mk(1, 0, "99999999999999999999999999999999999999");
  s = big;
  before = s;
  CU_ASSERT_EQUAL(stats_apply(&s, &big), TS_ERR_RANGE);
  CU_ASSERT(same(&s, &before));
}

static void test_is_zero_needs_games_wins_and_score_zero(void) {
  struct stats z = mk(0, 0, "0.000"), g = mk(1, 0, "0"), w = mk(0, 1, "0"),
               sc = mk(0, 0, "0.1");
  CU_ASSERT(stats_is_zero(&z));
  CU_ASSERT(!stats_is_zero(&g));
  CU_ASSERT(!stats_is_zero(&w));
  CU_ASSERT(!stats_is_zero(&sc));
}

static void test_derive_rounds_average_and_win_percent_to_two_places(void) {
  static const struct {
    int64_t games, wins;
    const char *total, *avg, *pct;
  } cases[] = {
      {0, 0, "0", "0.00", "0.00"},
      {3, 2, "10", "3.33", "66.67"},
      {4, 1, "10", "2.50", "25.00"},
      {8, 1, "1", "0.13", "12.50"},
      {3, 1, "-2", "-0.67", "33.33"},
      {2, 1, "0.01", "0.01", "50.00"}, /* 0.005 rounds away from zero */
      {2, 1, "-0.01", "-0.01", "50.00"},
      {1, 1, "99.999", "100.00", "100.00"},
      {6, 1, "0", "0.00", "16.67"},
      {7, 0, "100", "14.29", "0.00"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct stats s = mk(cases[i].games, cases[i].wins, cases[i].total);
    struct decimal avg, pct;
    char a[DECIMAL_TEXT_MAX], p[DECIMAL_TEXT_MAX];
    enum ts_status st = stats_derive(&s, &avg, &pct);
    TS_CHECK_CASE(st == TS_OK, cases[i].total, "status %s", ts_status_name(st));
    if (st != TS_OK)
      continue;
    decimal_format_fixed(avg, 2, a);
    decimal_format_fixed(pct, 2, p);
    TS_CHECK_CASE(strcmp(a, cases[i].avg) == 0, cases[i].total,
                  "avg %s, want %s", a, cases[i].avg);
    TS_CHECK_CASE(strcmp(p, cases[i].pct) == 0, cases[i].total,
                  "win_percent %s, want %s", p, cases[i].pct);
  }
}

/* Seed defect: avg_score = (old_avg + score) // 2. Scores 10, 20, 60 gave
 * 36 there; the mean is 30. */
static void test_average_is_a_true_mean_not_a_running_halving(void) {
  struct stats s = mk(0, 0, "0");
  const char *scores[] = {"10", "20", "60"};
  for (size_t i = 0; i < 3; i++) {
    struct stats game = mk(1, 0, scores[i]);
    CU_ASSERT_EQUAL_FATAL(stats_apply(&s, &game), TS_OK);
  }
  struct decimal avg, pct;
  CU_ASSERT_EQUAL_FATAL(stats_derive(&s, &avg, &pct), TS_OK);
  char buf[DECIMAL_TEXT_MAX];
  decimal_format_fixed(avg, 2, buf);
  CU_ASSERT_STRING_EQUAL(buf, "30.00");
}

/* Seed defect: int(score). Ten games scoring 0.1 total exactly 1. */
static void test_decimal_scores_accumulate_exactly(void) {
  struct stats s = mk(0, 0, "0");
  for (int i = 0; i < 10; i++) {
    struct stats game = mk(1, 0, "0.1");
    CU_ASSERT_EQUAL_FATAL(stats_apply(&s, &game), TS_OK);
  }
  char buf[DECIMAL_TEXT_MAX];
  decimal_format(s.total_score, buf);
  CU_ASSERT_STRING_EQUAL(buf, "1");
  struct decimal avg, pct;
  CU_ASSERT_EQUAL_FATAL(stats_derive(&s, &avg, &pct), TS_OK);
  decimal_format_fixed(avg, 2, buf);
  CU_ASSERT_STRING_EQUAL(buf, "0.10");
}

static void test_derive_refuses_negative_games(void) {
  struct stats s = mk(-1, 0, "0");
  struct decimal avg, pct;
  CU_ASSERT_EQUAL(stats_derive(&s, &avg, &pct), TS_ERR_INVALID);
}

static void test_rank_keys_are_the_displayed_values_in_hundredths(void) {
  static const struct {
    const char *name;
    int64_t games, wins;
    const char *total;
    int64_t avg, pct;
  } cases[] = {
      {"two thirds", 3, 2, "10", 333, 6667},
      {"no games", 0, 0, "0", 0, 0},
      {"negative average", 2, 0, "-3", -150, 0},
      /* the largest scores allowed (|score| < 10^15) with a fraction */
      {"largest average", 1, 1, "999999999999999.25", 99999999999999925, 10000},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct stats st = mk(cases[i].games, cases[i].wins, cases[i].total);
    int64_t avg = -1, pct = -1;
    enum ts_status r = stats_rank_keys(&st, &avg, &pct);
    TS_CHECK_CASE(r == TS_OK && avg == cases[i].avg && pct == cases[i].pct,
                  cases[i].name, "status %s, avg %lld pct %lld",
                  ts_status_name(r), (long long)avg, (long long)pct);
  }
}

void suite_stats(void) {
  TS_SUITE("stats", TS_TEST(test_apply_adds_games_wins_and_score),
           TS_TEST(test_apply_rejects_deltas_that_break_the_invariants),
           TS_TEST(test_apply_reports_overflow_and_leaves_stats_unchanged),
           TS_TEST(test_is_zero_needs_games_wins_and_score_zero),
           TS_TEST(test_derive_rounds_average_and_win_percent_to_two_places),
           TS_TEST(test_average_is_a_true_mean_not_a_running_halving),
           TS_TEST(test_decimal_scores_accumulate_exactly),
           TS_TEST(test_derive_refuses_negative_games),
           TS_TEST(test_rank_keys_are_the_displayed_values_in_hundredths));
}
