/* suite_decimal: exact parsing, arithmetic, rounding and formatting. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "domain/decimal.h"
#include "unit.h"

/* Parses a test literal that must be valid. */
static struct decimal dec(const char *s) {
  struct decimal d = {0, 0};
  enum ts_status st = decimal_parse(s, strlen(s), &d);
  TS_CHECK_CASE(st == TS_OK, s, "fixture does not parse: %s",
                ts_status_name(st));
  return d;
}

static const char *text(struct decimal d, char buf[DECIMAL_TEXT_MAX]) {
  decimal_format(d, buf);
  return buf;
}

static void test_parse_accepts_dynamodb_numbers_and_normalises(void) {
  static const struct {
    const char *in, *text;
    int scale;
  } cases[] = {
      {"0", "0", 0},
      {"-0", "0", 0},
      {"-0.000", "0", 0},
      {"42", "42", 0},
      {"-7", "-7", 0},
      {"1.50", "1.5", 1},
      {"00012.3400", "12.34", 2},
      {".5", "0.5", 1},
      {"-.5", "-0.5", 1},
      {"1e3", "1000", 0},
      {"1E3", "1000", 0},
      {"1.5e+2", "150", 0},
      {"1.25e1", "12.5", 1},
      {"1e-3", "0.001", 3},
      {"123e-5", "0.00123", 5},
      {"0e999999999", "0", 0},
      {"0.0e-999999999", "0", 0},
      {"99999999999999999999999999999999999999",
       "99999999999999999999999999999999999999", 0},
      {"1e37", "10000000000000000000000000000000000000", 0},
      {"1e-38", "0.00000000000000000000000000000000000001", 38},
      {"1.00000000000000000000000000000000000000000000000000", "1", 0},
      {"0.00000000000000000000000000000000000000000000000000", "0", 0},
      {"100000000000000000000000000000000000000000000e-10",
       "10000000000000000000000000000000000", 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct decimal d = {123, 4};
    char buf[DECIMAL_TEXT_MAX];
    enum ts_status st = decimal_parse(cases[i].in, strlen(cases[i].in), &d);
    TS_CHECK_CASE(st == TS_OK, cases[i].in, "status %s", ts_status_name(st));
    if (st != TS_OK)
      continue;
    TS_CHECK_CASE(strcmp(text(d, buf), cases[i].text) == 0, cases[i].in,
                  "got %s, want %s", buf, cases[i].text);
    TS_CHECK_CASE(d.scale == cases[i].scale, cases[i].in,
                  "scale %d, want %d (not normalised)", d.scale,
                  cases[i].scale);
  }
}

static void test_parse_rejects_anything_that_is_not_a_number(void) {
  static const struct {
    const char *in;
    size_t len; /* 0: strlen */
    enum ts_status want;
  } cases[] = {
      {"", 0, TS_ERR_INVALID},
      {"-", 0, TS_ERR_INVALID},
      {".", 0, TS_ERR_INVALID},
      {"-.", 0, TS_ERR_INVALID},
      {"1.", 0, TS_ERR_INVALID},
      {"1e", 0, TS_ERR_INVALID},
      {"1e+", 0, TS_ERR_INVALID},
      {"1e-", 0, TS_ERR_INVALID},
      {"e5", 0, TS_ERR_INVALID},
      {"+1", 0, TS_ERR_INVALID},
      {" 1", 0, TS_ERR_INVALID},
      {"1 ", 0, TS_ERR_INVALID},
      {"1\n", 0, TS_ERR_INVALID},
      {"--1", 0, TS_ERR_INVALID},
      {"1-", 0, TS_ERR_INVALID},
      {"1..2", 0, TS_ERR_INVALID},
      {"1.2.3", 0, TS_ERR_INVALID},
      {"1e1.5", 0, TS_ERR_INVALID},
      {"1,5", 0, TS_ERR_INVALID},
      {"0x10", 0, TS_ERR_INVALID},
      {"abc", 0, TS_ERR_INVALID},
      {"NaN", 0, TS_ERR_INVALID},
      {"Infinity", 0, TS_ERR_INVALID},
      {"-Infinity", 0, TS_ERR_INVALID},
      {"1\0002", 3, TS_ERR_INVALID}, /* embedded NUL */
      {"12", 1, TS_OK},              /* len is honoured: "1" */
      {"100000000000000000000000000000000000000", 0, TS_ERR_RANGE},
      {"123456789012345678901234567890123456789", 0, TS_ERR_RANGE},
      {"0.123456789012345678901234567890123456789", 0, TS_ERR_RANGE},
      {"1e38", 0, TS_ERR_RANGE},
      {"1e-39", 0, TS_ERR_RANGE},
      {"1e999999999", 0, TS_ERR_RANGE},
      {"-1e999999999", 0, TS_ERR_RANGE},
      {"1e-999999999", 0, TS_ERR_RANGE},
      {"1e99999999999999999999999999999999", 0, TS_ERR_RANGE},
      {"1e-99999999999999999999999999999999", 0, TS_ERR_RANGE},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct decimal d;
    size_t len = cases[i].len ? cases[i].len : strlen(cases[i].in);
    enum ts_status st = decimal_parse(cases[i].in, len, &d);
    TS_CHECK_CASE(st == cases[i].want, cases[i].in, "status %s, want %s",
                  ts_status_name(st), ts_status_name(cases[i].want));
  }
  struct decimal d;
  CU_ASSERT_EQUAL(decimal_parse(NULL, 0, &d), TS_ERR_INVALID);
}

static void test_parse_survives_overlong_input(void) {
  enum { N = 200000 };
  char *s = malloc(N + 2);
  CU_ASSERT_PTR_NOT_NULL_FATAL(s);
  struct decimal d;
  /* Many leading zeros carry no digits: still the number 1. */
  memset(s, '0', N);
  s[N] = '1';
  CU_ASSERT_EQUAL(decimal_parse(s, N + 1, &d), TS_OK);
  CU_ASSERT(d.coef == 1 && d.scale == 0);
  /* Too many significant digits. */
  memset(s, '9', N + 1);
  CU_ASSERT_EQUAL(decimal_parse(s, N + 1, &d), TS_ERR_RANGE);
  /* A huge fraction of zeros: a scale far beyond 38. */
  s[0] = '0';
  s[1] = '.';
  memset(s + 2, '0', N - 2);
  s[N] = '1';
  CU_ASSERT_EQUAL(decimal_parse(s, N + 1, &d), TS_ERR_RANGE);
  /* ... unless they are trailing zeros. */
  s[2] = '5';
  s[N] = '0';
  CU_ASSERT_EQUAL(decimal_parse(s, N + 1, &d), TS_OK);
  CU_ASSERT(d.coef == 5 && d.scale == 1);
  /* A huge exponent digit string. */
  s[0] = '1';
  s[1] = 'e';
  memset(s + 2, '9', N - 1);
  CU_ASSERT_EQUAL(decimal_parse(s, N + 1, &d), TS_ERR_RANGE);
  free(s);
}

static void test_parse_score_enforces_scale_and_magnitude_bounds(void) {
  static const struct {
    const char *in;
    enum ts_status want;
  } cases[] = {
      {"0.1", TS_OK},
      {"-12.5", TS_OK},
      {"0.000000000001", TS_OK},         /* 12 places */
      {"0.0000000000001", TS_ERR_RANGE}, /* 13 places */
      {"1.0000000000001", TS_ERR_RANGE},
      {"1.0000000000000000", TS_OK}, /* normalised to 1 */
      {"999999999999999", TS_OK},    /* 15 digits */
      {"-999999999999999.999999999999", TS_OK},
      {"1000000000000000", TS_ERR_RANGE}, /* 10^15 */
      {"-1e15", TS_ERR_RANGE},
      {"1e14", TS_OK},
      {"abc", TS_ERR_INVALID},
      {"1e999999999", TS_ERR_RANGE},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct decimal d;
    enum ts_status st =
        decimal_parse_score(cases[i].in, strlen(cases[i].in), &d);
    TS_CHECK_CASE(st == cases[i].want, cases[i].in, "status %s, want %s",
                  ts_status_name(st), ts_status_name(cases[i].want));
  }
}

static void test_add_and_sub_are_exact(void) {
  static const struct {
    const char *a, *b, *sum, *diff;
  } cases[] = {
      {"0.1", "0.2", "0.3", "-0.1"},
      {"1.5", "-1.5", "0", "3"},
      {"0.001", "1000", "1000.001", "-999.999"},
      {"-2.5", "0.5", "-2", "-3"},
      {"0", "0", "0", "0"},
      {"123456789.123456789", "0.876543211", "123456790",
       "123456788.246913578"},
      /* Aligned sums beyond 2^127 that normalise back into range. */
      {"9999999999999999999999999999999999999.5",
       "9999999999999999999999999999999999999.5",
       "19999999999999999999999999999999999999", "0"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct decimal s, d;
    char buf[DECIMAL_TEXT_MAX];
    CU_ASSERT_EQUAL_FATAL(decimal_add(dec(cases[i].a), dec(cases[i].b), &s),
                          TS_OK);
    TS_CHECK_CASE(strcmp(text(s, buf), cases[i].sum) == 0, cases[i].a,
                  "%s + %s = %s, want %s", cases[i].a, cases[i].b, buf,
                  cases[i].sum);
    CU_ASSERT_EQUAL_FATAL(decimal_sub(dec(cases[i].a), dec(cases[i].b), &d),
                          TS_OK);
    TS_CHECK_CASE(strcmp(text(d, buf), cases[i].diff) == 0, cases[i].a,
                  "%s - %s = %s, want %s", cases[i].a, cases[i].b, buf,
                  cases[i].diff);
  }
}

static void test_add_reports_range_instead_of_overflowing(void) {
  static const struct {
    const char *a, *b;
  } cases[] = {
      {"99999999999999999999999999999999999999", "1"},
      {"-99999999999999999999999999999999999999", "-1"},
      {"1", "0.00000000000000000000000000000000000001"},
      {"99999999999999999999999999999999999999",
       "0.00000000000000000000000000000000000001"},
      {"50000000000000000000000000000000000000",
       "50000000000000000000000000000000000000"},
      /* 3 * 10^38 + 0.5 * 10^38 passes 2^128 at scale 38 */
      {"3", "0.50000000000000000000000000000000000001"},
      {"-3", "-0.50000000000000000000000000000000000001"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct decimal out = {7, 0};
    enum ts_status st = decimal_add(dec(cases[i].a), dec(cases[i].b), &out);
    TS_CHECK_CASE(st == TS_ERR_RANGE, cases[i].a, "status %s",
                  ts_status_name(st));
  }
  struct decimal out;
  CU_ASSERT_EQUAL(decimal_sub(dec("-99999999999999999999999999999999999999"),
                              dec("1"), &out),
                  TS_ERR_RANGE);
}

/* Seed defect: int(score) crashed on decimals; floats would drift. */
static void test_ten_scores_of_one_tenth_sum_to_exactly_one(void) {
  struct decimal total = decimal_from_int(0);
  for (int i = 0; i < 10; i++)
    CU_ASSERT_EQUAL_FATAL(decimal_add(total, dec("0.1"), &total), TS_OK);
  char buf[DECIMAL_TEXT_MAX];
  CU_ASSERT_STRING_EQUAL(text(total, buf), "1");
  CU_ASSERT_EQUAL(decimal_cmp(total, decimal_from_int(1)), 0);
}

static void test_cmp_orders_by_value_not_representation(void) {
  static const struct {
    const char *a, *b;
    int want;
  } cases[] = {
      {"1.5", "1.50", 0},
      {"0", "-0", 0},
      {"-1", "1", -1},
      {"1", "-1", 1},
      {"0.1", "0.09", 1},
      {"-0.1", "-0.09", -1},
      {"2", "10", -1},
      {"1e3", "999.999", 1},
      {"99999999999999999999999999999999999999",
       "0.00000000000000000000000000000000000001", 1},
      {"-99999999999999999999999999999999999999",
       "-0.00000000000000000000000000000000000001", -1},
      {"0.00000000000000000000000000000000000001",
       "99999999999999999999999999999999999999", -1},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    int got = decimal_cmp(dec(cases[i].a), dec(cases[i].b));
    TS_CHECK_CASE(got == cases[i].want, cases[i].a, "cmp with %s = %d, want %d",
                  cases[i].b, got, cases[i].want);
  }
  /* Unnormalised input compares by value too. */
  CU_ASSERT_EQUAL(decimal_cmp((struct decimal){150, 2}, dec("1.5")), 0);
}

static void test_neg_and_is_zero(void) {
  char buf[DECIMAL_TEXT_MAX];
  CU_ASSERT_STRING_EQUAL(text(decimal_neg(dec("2.5")), buf), "-2.5");
  CU_ASSERT_STRING_EQUAL(text(decimal_neg(dec("-2.5")), buf), "2.5");
  CU_ASSERT(decimal_is_zero(dec("-0.00")));
  CU_ASSERT(!decimal_is_zero(dec("0.00000000000000000000000000000000000001")));
  CU_ASSERT_STRING_EQUAL(text(decimal_from_int(INT64_MIN), buf),
                         "-9223372036854775808");
  CU_ASSERT_STRING_EQUAL(text(decimal_from_int(INT64_MAX), buf),
                         "9223372036854775807");
}

static void test_div_round_rounds_half_away_from_zero(void) {
  static const struct {
    const char *num;
    int64_t den;
    int places;
    const char *want;
  } cases[] = {
      {"2", 3, 2, "0.67"},
      {"-2", 3, 2, "-0.67"},
      {"1", 8, 2, "0.13"},
      {"-1", 8, 2, "-0.13"},
      {"0.005", 1, 2, "0.01"},
      {"-0.005", 1, 2, "-0.01"},
      {"0.004999", 1, 2, "0"},
      {"0.0149", 1, 2, "0.01"},
      {"0.0299", 2, 2, "0.01"}, /* 0.01495 */
      {"0.03", 2, 2, "0.02"},   /* 0.015 */
      {"0.015", 3, 2, "0.01"},  /* 0.005 */
      {"0.014", 3, 2, "0"},     /* 0.00466.. */
      {"10", 4, 2, "2.5"},
      {"200", 3, 2, "66.67"},
      {"100", 7, 2, "14.29"},
      {"1", 3, 0, "0"},
      {"5", 2, 0, "3"},
      {"-5", 2, 0, "-3"},
      {"7", 2, 6, "3.5"},
      {"1", 3, 6, "0.333333"},
      {"2", 3, 6, "0.666667"},
      {"0", 5, 2, "0"},
      {"1", INT64_MAX, 6, "0"},
      {"9223372036854775807", INT64_MAX, 2, "1"},
      {"4611686018427387904", INT64_MAX, 2, "0.5"},
      {"99999999999999999999999999999999999999", 3, 0,
       "33333333333333333333333333333333333333"},
      {"0.00000000000000000000000000000000000005", 1, 6, "0"},
      {"0.5", 1, 0, "1"},
      {"-0.5", 1, 0, "-1"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct decimal out = {99, 0};
    char buf[DECIMAL_TEXT_MAX];
    enum ts_status st = decimal_div_round(dec(cases[i].num), cases[i].den,
                                          cases[i].places, &out);
    TS_CHECK_CASE(st == TS_OK, cases[i].num, "status %s", ts_status_name(st));
    TS_CHECK_CASE(strcmp(text(out, buf), cases[i].want) == 0, cases[i].num,
                  "/ %lld at %d places = %s, want %s", (long long)cases[i].den,
                  cases[i].places, buf, cases[i].want);
    TS_CHECK_CASE(out.scale <= cases[i].places, cases[i].num, "scale %d",
                  out.scale);
  }
}

static void test_div_round_rejects_bad_arguments_and_overflow(void) {
  struct decimal out;
  CU_ASSERT_EQUAL(decimal_div_round(dec("1"), 0, 2, &out), TS_ERR_INVALID);
  CU_ASSERT_EQUAL(decimal_div_round(dec("1"), -3, 2, &out), TS_ERR_INVALID);
  CU_ASSERT_EQUAL(decimal_div_round(dec("1"), 3, 7, &out), TS_ERR_INVALID);
  CU_ASSERT_EQUAL(decimal_div_round(dec("1"), 3, -1, &out), TS_ERR_INVALID);
  CU_ASSERT_EQUAL(
      decimal_div_round(dec("99999999999999999999999999999999999999"), 1, 2,
                        &out),
      TS_ERR_RANGE);
}

static void test_format_writes_canonical_text(void) {
  static const struct {
    struct decimal d;
    const char *want;
  } cases[] = {
      {{0, 0}, "0"},
      {{0, 5}, "0"},
      {{125, 1}, "12.5"},
      {{-25, 2}, "-0.25"},
      {{100, 0}, "100"},
      {{1500, 2}, "15"},
      {{-5, 3}, "-0.005"},
      {{1, 38}, "0.00000000000000000000000000000000000001"},
      {{-1, 38}, "-0.00000000000000000000000000000000000001"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char buf[DECIMAL_TEXT_MAX];
    size_t n = decimal_format(cases[i].d, buf);
    TS_CHECK_CASE(strcmp(buf, cases[i].want) == 0, cases[i].want, "got %s",
                  buf);
    CU_ASSERT_EQUAL(n, strlen(cases[i].want));
  }
  /* The widest value fits the documented buffer. */
  char buf[DECIMAL_TEXT_MAX];
  struct decimal widest = dec("-9999999999999999999999999999999999999.9");
  CU_ASSERT_EQUAL(decimal_format(widest, buf), 40u);
  CU_ASSERT_STRING_EQUAL(buf, "-9999999999999999999999999999999999999.9");
}

static void test_format_fixed_pads_to_the_places(void) {
  static const struct {
    struct decimal d;
    int places;
    const char *want;
  } cases[] = {
      {{6667, 2}, 2, "66.67"},   {{50, 0}, 2, "50.00"},
      {{0, 0}, 2, "0.00"},       {{5, 1}, 2, "0.50"},
      {{-25, 1}, 2, "-2.50"},    {{25, 1}, 2, "2.50"},
      {{3, 0}, 0, "3"},          {{-1, 2}, 2, "-0.01"},
      {{10000, 2}, 2, "100.00"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char buf[DECIMAL_TEXT_MAX];
    size_t n = decimal_format_fixed(cases[i].d, cases[i].places, buf);
    TS_CHECK_CASE(strcmp(buf, cases[i].want) == 0, cases[i].want, "got %s",
                  buf);
    CU_ASSERT_EQUAL(n, strlen(cases[i].want));
  }
  char buf[DECIMAL_TEXT_MAX];
  struct decimal widest = dec("-99999999999999999999999999999999999999");
  CU_ASSERT_EQUAL(decimal_format_fixed(widest, 6, buf), 46u);
}

static void test_mul_int_is_exact_and_reports_range(void) {
  static const struct {
    const char *name, *a;
    int64_t k;
    enum ts_status st;
    const char *want;
  } cases[] = {
      {"seed avg times games", "12.5", 4, TS_OK, "50"},
      {"negative factor", "0.25", -3, TS_OK, "-0.75"},
      {"zero", "7.1", 0, TS_OK, "0"},
      {"overflow", "100000000000000000000", 1000000000000000000LL, TS_ERR_RANGE,
       NULL},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct decimal out = {0, 0};
    enum ts_status st = decimal_mul_int(dec(cases[i].a), cases[i].k, &out);
    TS_CHECK_CASE(st == cases[i].st, cases[i].name, "status %s",
                  ts_status_name(st));
    if (cases[i].want && st == TS_OK) {
      char buf[DECIMAL_TEXT_MAX];
      decimal_format(out, buf);
      TS_CHECK_CASE(strcmp(buf, cases[i].want) == 0, cases[i].name, "got %s",
                    buf);
    }
  }
}

void suite_decimal(void) {
  TS_SUITE("decimal",
           TS_TEST(test_parse_accepts_dynamodb_numbers_and_normalises),
           TS_TEST(test_parse_rejects_anything_that_is_not_a_number),
           TS_TEST(test_parse_survives_overlong_input),
           TS_TEST(test_parse_score_enforces_scale_and_magnitude_bounds),
           TS_TEST(test_add_and_sub_are_exact),
           TS_TEST(test_add_reports_range_instead_of_overflowing),
           TS_TEST(test_ten_scores_of_one_tenth_sum_to_exactly_one),
           TS_TEST(test_cmp_orders_by_value_not_representation),
           TS_TEST(test_neg_and_is_zero),
           TS_TEST(test_div_round_rounds_half_away_from_zero),
           TS_TEST(test_div_round_rejects_bad_arguments_and_overflow),
           TS_TEST(test_format_writes_canonical_text),
           TS_TEST(test_format_fixed_pads_to_the_places),
           TS_TEST(test_mul_int_is_exact_and_reports_range));
}
