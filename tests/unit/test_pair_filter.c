/* suite_pair_filter: the filter of applied pairs never says "absent" of a
 * pair it was given, and says "may hold" of few others. */
#include <stdio.h>

#include "store/pair_filter.h"
#include "unit.h"

static void pair(char player[32], char event[32], const char *tag, int i) {
  snprintf(player, 32, "p%d", i % 1000);
  snprintf(event, 32, "%s-%d", tag, i);
}

/* A full filter (as many pairs as its capacity), then a tenth of that
 * again: every pair added still tests true. Pairs never added test true
 * rarely (the design's 1-2%; 5% allowed), and a pair is not confused with
 * the same bytes split differently between player and eventID. */
static void test_added_pairs_always_hold_and_few_others_do(void) {
  static const struct {
    const char *name;
    size_t capacity, pairs;
    double max_false;
  } cases[] = {{"small, at capacity", 1000, 1000, 0.05},
               {"large, at capacity", 200000, 200000, 0.05},
               {"a tenth past capacity", 20000, 22000, 0.08}};
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    struct pair_filter *f = pair_filter_new(cases[c].capacity);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    char p[32], e[32];
    for (size_t i = 0; i < cases[c].pairs; i++) {
      pair(p, e, "in", (int)i);
      pair_filter_add(f, p, e);
    }
    size_t missed = 0, false_pos = 0;
    for (size_t i = 0; i < cases[c].pairs; i++) {
      pair(p, e, "in", (int)i);
      missed += !pair_filter_may_hold(f, p, e);
      pair(p, e, "out", (int)i);
      false_pos += pair_filter_may_hold(f, p, e);
    }
    TS_CHECK_CASE(missed == 0, cases[c].name, "%zu added pairs missed", missed);
    double share = (double)false_pos / (double)cases[c].pairs;
    TS_CHECK_CASE(share <= cases[c].max_false, cases[c].name,
                  "false positives %.3f", share);
    TS_CHECK_CASE(pair_filter_added(f) == cases[c].pairs, cases[c].name,
                  "added %zu", pair_filter_added(f));
    pair_filter_free(f);
  }
  struct pair_filter *f = pair_filter_new(1000);
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  pair_filter_add(f, "ab", "c");
  CU_ASSERT(pair_filter_may_hold(f, "ab", "c"));
  CU_ASSERT(!pair_filter_may_hold(f, "a", "bc"));
  pair_filter_free(f);
}

void suite_pair_filter(void) {
  TS_SUITE("pair_filter",
           TS_TEST(test_added_pairs_always_hold_and_few_others_do));
}
