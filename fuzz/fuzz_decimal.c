/* Fuzzes domain/decimal: the DynamoDB number parser (decimal_parse,
 * decimal_parse_score), the format -> parse round trip, and the arithmetic
 * on two parsed values, against the contracts in decimal.h.
 *
 * Input: the whole input is parsed as one number. Split on '/', it is also
 * read as A/B/K/P: A and B numbers for add, sub, cmp; K an integer for
 * decimal_mul_int and (when positive) the divisor of decimal_div_round;
 * P's first byte a digit, the places. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/bounds.h"
#include "domain/decimal.h"
#include "input.h"

typedef unsigned __int128 u128;

static u128 pow10u(int n) {
  u128 p = 1;
  for (int i = 0; i < n; i++)
    p *= 10;
  return p;
}

static u128 magnitude(__int128 c) {
  return c < 0 ? (u128)0 - (u128)c : (u128)c;
}

/* For messages: the canonical text, or "coef=<...>e-scale" if odd. */
static const char *show(struct decimal d, char buf[DECIMAL_TEXT_MAX]) {
  decimal_format(d, buf);
  return buf;
}

/* |coef| < 10^38, 0 <= scale <= 38, no trailing fractional zero, zero has
 * scale 0: what every function of decimal.h promises for its results. */
static void check_normalised(struct decimal d, const char *what) {
  char t[DECIMAL_TEXT_MAX];
  FUZZ_CHECK(d.scale >= 0 && d.scale <= TS_DECIMAL_MAX_DIGITS,
             "%s: scale %d out of 0..38", what, d.scale);
  FUZZ_CHECK(magnitude(d.coef) < pow10u(TS_DECIMAL_MAX_DIGITS),
             "%s: |coef| >= 10^38", what);
  FUZZ_CHECK(d.coef != 0 || d.scale == 0, "%s: zero with scale %d", what,
             d.scale);
  FUZZ_CHECK(d.scale == 0 || d.coef % 10 != 0,
             "%s: %s (scale %d) has a trailing fractional zero", what,
             show(d, t), d.scale);
}

static bool same(struct decimal a, struct decimal b) {
  return a.coef == b.coef && a.scale == b.scale;
}

/* decimal_format writes canonical text that parses back to the value. */
static void check_round_trip(struct decimal d, const char *what) {
  char buf[DECIMAL_TEXT_MAX + 8];
  memset(buf, 'X', sizeof buf);
  size_t n = decimal_format(d, buf);
  FUZZ_CHECK(n < DECIMAL_TEXT_MAX, "%s: format wrote %zu bytes", what, n);
  FUZZ_CHECK(buf[n] == '\0' && strlen(buf) == n,
             "%s: format length %zu is not the text's", what, n);
  FUZZ_CHECK(strchr(buf, 'e') == NULL && strchr(buf, 'E') == NULL,
             "%s: format wrote an exponent: %s", what, buf);
  FUZZ_CHECK(strcmp(buf, "-0") != 0, "%s: format wrote -0", what);
  struct decimal back;
  enum ts_status st = decimal_parse(buf, n, &back);
  FUZZ_CHECK(st == TS_OK, "%s: \"%s\" does not parse back (%s)", what, buf,
             ts_status_name(st));
  FUZZ_CHECK(same(back, d), "%s: \"%s\" parses back to another value", what,
             buf);
}

/* decimal_format_fixed(d, places) for d with scale <= places: exactly
 * `places` fractional digits, and the same value. */
static void check_fixed(struct decimal d, int places, const char *what) {
  char buf[DECIMAL_TEXT_MAX + 8];
  size_t n = decimal_format_fixed(d, places, buf);
  FUZZ_CHECK(n < DECIMAL_TEXT_MAX && strlen(buf) == n,
             "%s: format_fixed length %zu", what, n);
  const char *dot = strchr(buf, '.');
  if (places == 0)
    FUZZ_CHECK(!dot, "%s: format_fixed(0) wrote a point: %s", what, buf);
  else
    FUZZ_CHECK(dot && strlen(dot + 1) == (size_t)places,
               "%s: format_fixed(%d) wrote %s", what, places, buf);
  struct decimal back;
  FUZZ_CHECK(decimal_parse(buf, n, &back) == TS_OK && same(back, d),
             "%s: format_fixed text %s is not the value", what, buf);
}

static struct decimal dabs(struct decimal d) {
  return d.coef < 0 ? decimal_neg(d) : d;
}

static int sign(struct decimal d) { return (d.coef > 0) - (d.coef < 0); }

static void check_parse(const char *s, size_t len) {
  struct decimal d, score;
  enum ts_status st = decimal_parse(s, len, &d);
  FUZZ_CHECK(st == TS_OK || st == TS_ERR_INVALID || st == TS_ERR_RANGE,
             "parse returned %s", ts_status_name(st));
  enum ts_status sst = decimal_parse_score(s, len, &score);
  FUZZ_CHECK(sst == TS_OK || sst == TS_ERR_INVALID || sst == TS_ERR_RANGE,
             "parse_score returned %s", ts_status_name(sst));
  /* The text grammar is shared: INVALID for one is INVALID for both. */
  FUZZ_CHECK((st == TS_ERR_INVALID) == (sst == TS_ERR_INVALID),
             "parse %s but parse_score %s", ts_status_name(st),
             ts_status_name(sst));
  if (len > 0)
    FUZZ_CHECK(st != TS_OK || s[0] == '-' || s[0] == '.' ||
                   (s[0] >= '0' && s[0] <= '9'),
               "parse accepted a number starting with byte 0x%02x",
               (unsigned char)s[0]);
  if (st != TS_OK)
    return;
  check_normalised(d, "parse");
  check_round_trip(d, "parse");
  bool in_score_bounds =
      d.scale <= TS_SCORE_MAX_SCALE &&
      magnitude(d.coef) < pow10u(TS_SCORE_MAX_INT_DIGITS + d.scale);
  FUZZ_CHECK(in_score_bounds == (sst == TS_OK),
             "parse_score %s for a value %s the score bounds",
             ts_status_name(sst), in_score_bounds ? "within" : "outside");
  if (sst == TS_OK)
    FUZZ_CHECK(same(score, d), "parse_score and parse disagree");
  /* A leading '-' negates (only where the grammar allows one). */
  if (len > 0 && s[0] != '-' && len < 4096) {
    char neg[4097];
    neg[0] = '-';
    memcpy(neg + 1, s, len);
    struct decimal nd;
    FUZZ_CHECK(decimal_parse(neg, len + 1, &nd) == TS_OK &&
                   same(nd, decimal_neg(d)),
               "\"-\" + text is not the negated value");
  }
}

/* A decimal integer token as int64 (through decimal_parse); false if it is
 * not one or out of range. */
static bool token_int64(const char *s, size_t len, int64_t *out) {
  struct decimal d;
  if (decimal_parse(s, len, &d) != TS_OK || d.scale != 0 ||
      magnitude(d.coef) > (u128)INT64_MAX)
    return false;
  *out = (int64_t)d.coef;
  return true;
}

static void check_add_sub_cmp(struct decimal a, struct decimal b) {
  char ta[DECIMAL_TEXT_MAX], tb[DECIMAL_TEXT_MAX];
  struct decimal s1, s2, back, diff;
  enum ts_status st1 = decimal_add(a, b, &s1), st2 = decimal_add(b, a, &s2);
  FUZZ_CHECK(st1 == st2, "add(%s, %s) is not commutative in status",
             show(a, ta), show(b, tb));
  FUZZ_CHECK(st1 == TS_OK || st1 == TS_ERR_RANGE, "add returned %s",
             ts_status_name(st1));
  if (st1 == TS_OK) {
    FUZZ_CHECK(same(s1, s2), "add(%s, %s) is not commutative", show(a, ta),
               show(b, tb));
    check_normalised(s1, "add");
    check_round_trip(s1, "add");
    /* Exact arithmetic: (a + b) - b is a again, and fits. */
    enum ts_status st = decimal_sub(s1, b, &back);
    FUZZ_CHECK(st == TS_OK && same(back, a), "(%s + %s) - %s is not %s (%s)",
               show(a, ta), show(b, tb), show(b, tb), show(a, ta),
               ts_status_name(st));
  }
  int c = decimal_cmp(a, b);
  FUZZ_CHECK(c == -decimal_cmp(b, a), "cmp(%s, %s) is not antisymmetric",
             show(a, ta), show(b, tb));
  FUZZ_CHECK(decimal_cmp(a, a) == 0, "cmp(%s, itself) != 0", show(a, ta));
  enum ts_status st = decimal_sub(a, b, &diff);
  FUZZ_CHECK(st == TS_OK || st == TS_ERR_RANGE, "sub returned %s",
             ts_status_name(st));
  if (st == TS_OK) {
    check_normalised(diff, "sub");
    FUZZ_CHECK(sign(diff) == c, "cmp(%s, %s) = %d but a - b = %s", show(a, ta),
               show(b, tb), c, show(diff, tb));
    FUZZ_CHECK(decimal_is_zero(diff) == (c == 0), "is_zero(a - b) vs cmp");
  }
}

static void check_mul(struct decimal a, int64_t k) {
  char ta[DECIMAL_TEXT_MAX];
  struct decimal m, mn;
  enum ts_status st = decimal_mul_int(a, k, &m);
  FUZZ_CHECK(st == TS_OK || st == TS_ERR_RANGE, "mul_int returned %s",
             ts_status_name(st));
  if (st != TS_OK)
    return;
  check_normalised(m, "mul_int");
  check_round_trip(m, "mul_int");
  if (k == 0)
    FUZZ_CHECK(decimal_is_zero(m), "%s * 0 is not 0", show(a, ta));
  if (k == 1)
    FUZZ_CHECK(same(m, a), "%s * 1 is not itself", show(a, ta));
  if (k == -1)
    FUZZ_CHECK(same(m, decimal_neg(a)), "%s * -1 is not its negation",
               show(a, ta));
  if (k != INT64_MIN)
    FUZZ_CHECK(decimal_mul_int(a, -k, &mn) == TS_OK && same(mn, decimal_neg(m)),
               "%s * -k is not -(%s * k)", show(a, ta), show(a, ta));
}

/* decimal_div_round(a, den, places): within half a unit of the last place
 * of the exact quotient, ties away from zero. */
static void check_div(struct decimal a, int64_t den, int places) {
  char ta[DECIMAL_TEXT_MAX], tr[DECIMAL_TEXT_MAX];
  struct decimal r;
  enum ts_status st = decimal_div_round(a, den, places, &r);
  if (den <= 0 || places < 0 || places > 6) {
    FUZZ_CHECK(st == TS_ERR_INVALID, "div_round(den %lld, places %d): %s",
               (long long)den, places, ts_status_name(st));
    return;
  }
  FUZZ_CHECK(st == TS_OK || st == TS_ERR_RANGE, "div_round returned %s",
             ts_status_name(st));
  if (st != TS_OK)
    return;
  check_normalised(r, "div_round");
  FUZZ_CHECK(r.scale <= places, "div_round(%s, %lld, %d) = %s has scale %d",
             show(a, ta), (long long)den, places, show(r, tr), r.scale);
  check_fixed(r, places, "div_round result");
  struct decimal rd, diff, scaled;
  int64_t twice_unit = 2;
  for (int i = 0; i < places; i++)
    twice_unit *= 10;
  if (decimal_mul_int(r, den, &rd) != TS_OK ||
      decimal_sub(a, rd, &diff) != TS_OK ||
      decimal_mul_int(diff, twice_unit, &scaled) != TS_OK)
    return; /* the check itself would overflow: nothing to compare */
  int c = decimal_cmp(dabs(scaled), decimal_from_int(den));
  FUZZ_CHECK(c <= 0,
             "div_round(%s, %lld, %d) = %s is off by more than half "
             "a unit",
             show(a, ta), (long long)den, places, show(r, tr));
  if (c == 0) /* a tie: rounded away from zero */
    FUZZ_CHECK(sign(diff) == -sign(a),
               "div_round(%s, %lld, %d) = %s: a tie not rounded away from "
               "zero",
               show(a, ta), (long long)den, places, show(r, tr));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *text = malloc(size + 1);
  FUZZ_CHECK(text, "out of memory");
  if (size)
    memcpy(text, data, size);
  text[size] = '\0';
  check_parse(text, size);

  /* A/B/K/P */
  const char *tok[4] = {NULL, NULL, NULL, NULL};
  size_t tlen[4] = {0, 0, 0, 0};
  size_t nt = 0;
  const char *p = text, *end = text + size;
  while (nt < 4 && p <= end) {
    const char *slash = memchr(p, '/', (size_t)(end - p));
    tok[nt] = p;
    tlen[nt] = slash ? (size_t)(slash - p) : (size_t)(end - p);
    nt++;
    if (!slash)
      break;
    p = slash + 1;
  }
  struct decimal a, b;
  bool have_a = nt >= 2 && decimal_parse(tok[0], tlen[0], &a) == TS_OK;
  bool have_b = nt >= 2 && decimal_parse(tok[1], tlen[1], &b) == TS_OK;
  if (have_a && have_b)
    check_add_sub_cmp(a, b);
  int64_t k;
  if (have_a && nt >= 3 && token_int64(tok[2], tlen[2], &k)) {
    check_mul(a, k);
    int places = nt >= 4 && tlen[3] > 0 && tok[3][0] >= '0' && tok[3][0] <= '9'
                     ? tok[3][0] - '0'
                     : 2;
    check_div(a, k, places);
    if (a.scale <= 6)
      check_fixed(a, places >= a.scale && places <= 6 ? places : 6, "A");
  }
  free(text);
  return 0;
}
