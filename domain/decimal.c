/* Exact decimal arithmetic on a 128-bit coefficient.
 *
 * Internally every operation works on sign + unsigned magnitude (u128), so
 * an intermediate may reach 2 * 10^38 (< 2^128 ~ 3.4 * 10^38) without
 * overflow; the |coef| < 10^38 bound is checked once on the result. */
#include "decimal.h"

#include <string.h>

#include "../common/bounds.h"

typedef unsigned __int128 u128;

/* Exponents are accumulated with saturation at this value: anything beyond
 * it is far outside any representable scale, and saturating keeps the
 * arithmetic in int64_t without overflow whatever the input length. */
#define EXPONENT_SATURATION 1000000000LL

/* 10^n for 0 <= n <= 38 (10^38 < 2^128), from a table: every operation
 * checks its result against 10^38, and a loop of 38 multiplications was 3%
 * of the writer's time in batches (docs/BENCHMARKS.md, change 24). */
static const u128 powers_of_ten[39] = {
    1u,
    10u,
    100u,
    1000u,
    10000u,
    100000u,
    1000000u,
    10000000u,
    100000000u,
    1000000000u,
    10000000000u,
    100000000000u,
    1000000000000u,
    10000000000000u,
    100000000000000u,
    1000000000000000u,
    10000000000000000u,
    100000000000000000u,
    1000000000000000000u,
    10000000000000000000u,
    (u128)10000000000000000000u * 10u,
    (u128)10000000000000000000u * 100u,
    (u128)10000000000000000000u * 1000u,
    (u128)10000000000000000000u * 10000u,
    (u128)10000000000000000000u * 100000u,
    (u128)10000000000000000000u * 1000000u,
    (u128)10000000000000000000u * 10000000u,
    (u128)10000000000000000000u * 100000000u,
    (u128)10000000000000000000u * 1000000000u,
    (u128)10000000000000000000u * 10000000000u,
    (u128)10000000000000000000u * 100000000000u,
    (u128)10000000000000000000u * 1000000000000u,
    (u128)10000000000000000000u * 10000000000000u,
    (u128)10000000000000000000u * 100000000000000u,
    (u128)10000000000000000000u * 1000000000000000u,
    (u128)10000000000000000000u * 10000000000000000u,
    (u128)10000000000000000000u * 100000000000000000u,
    (u128)10000000000000000000u * 1000000000000000000u,
    (u128)10000000000000000000u * 10000000000000000000u,
};

/* Outside the table, the product computed as it always was (wrapping past
 * 2^128), so that no caller's result changes. */
static u128 pow10u(int n) {
  if (n >= 0 && n <= 38)
    return powers_of_ten[n];
  u128 p = 1;
  for (int i = 0; i < n; i++)
    p *= 10;
  return p;
}

static u128 magnitude(__int128 c) {
  return c < 0 ? (u128)0 - (u128)c : (u128)c;
}

static __int128 with_sign(u128 m, bool negative) {
  /* m < 10^38 here, so it fits a signed __int128. */
  return negative ? -(__int128)m : (__int128)m;
}

/* Within the documented domain: 0 <= scale <= 38, |coef| < 10^38. */
static bool in_domain(struct decimal d) {
  return d.scale >= 0 && d.scale <= TS_DECIMAL_MAX_DIGITS &&
         magnitude(d.coef) < pow10u(TS_DECIMAL_MAX_DIGITS);
}

/* Drops trailing fractional zeros; zero gets scale 0. */
static void normalise(struct decimal *d) {
  if (d->coef == 0) {
    d->scale = 0;
    return;
  }
  while (d->scale > 0 && d->coef % 10 == 0) {
    d->coef /= 10;
    d->scale--;
  }
}

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

enum ts_status decimal_parse(const char *s, size_t len, struct decimal *out) {
  if (!s || len == 0 || !out)
    return TS_ERR_INVALID;
  size_t i = 0;
  bool negative = false;
  if (s[i] == '-') {
    negative = true;
    i++;
  }
  size_t int_begin = i;
  while (i < len && is_digit(s[i]))
    i++;
  size_t int_end = i;
  size_t frac_begin = i, frac_end = i;
  if (i < len && s[i] == '.') {
    i++;
    frac_begin = i;
    while (i < len && is_digit(s[i]))
      i++;
    frac_end = i;
    if (frac_end == frac_begin) /* "1." and "." are not numbers */
      return TS_ERR_INVALID;
  }
  if (int_end == int_begin && frac_end == frac_begin)
    return TS_ERR_INVALID;
  int64_t exponent = 0;
  if (i < len && (s[i] == 'e' || s[i] == 'E')) {
    i++;
    bool exp_negative = false;
    if (i < len && (s[i] == '+' || s[i] == '-')) {
      exp_negative = s[i] == '-';
      i++;
    }
    size_t exp_begin = i;
    while (i < len && is_digit(s[i])) {
      if (exponent < EXPONENT_SATURATION)
        exponent = exponent * 10 + (s[i] - '0');
      i++;
    }
    if (i == exp_begin)
      return TS_ERR_INVALID;
    if (exponent > EXPONENT_SATURATION)
      exponent = EXPONENT_SATURATION;
    if (exp_negative)
      exponent = -exponent;
  }
  if (i != len)
    return TS_ERR_INVALID;

  /* The digits int||frac form D, and the value is D * 10^(exponent -
   * fraction length). Leading zeros of D carry nothing; trailing zeros move
   * into the exponent (normalisation). Walk D by position without copying. */
  size_t int_len = int_end - int_begin, frac_len = frac_end - frac_begin;
  size_t total = int_len + frac_len;
#define DIGIT_AT(k)                                                            \
  ((k) < int_len ? s[int_begin + (k)] : s[frac_begin + (k)-int_len])
  size_t first = 0;
  while (first < total && DIGIT_AT(first) == '0')
    first++;
  if (first == total) {
    *out = (struct decimal){0, 0};
    return TS_OK;
  }
  size_t last = total; /* one past the last nonzero digit */
  while (DIGIT_AT(last - 1) == '0')
    last--;
  size_t ndigits = last - first;
  if (ndigits > TS_DECIMAL_MAX_DIGITS)
    return TS_ERR_RANGE;
  /* Lengths come from an object in memory, far below 2^62; the exponent is
   * saturated, so this sum cannot overflow int64_t. */
  int64_t e = exponent - (int64_t)frac_len + (int64_t)(total - last);
  if (e > 0 && (int64_t)ndigits + e > TS_DECIMAL_MAX_DIGITS)
    return TS_ERR_RANGE;
  if (e < -(int64_t)TS_DECIMAL_MAX_DIGITS)
    return TS_ERR_RANGE;
  u128 m = 0;
  for (size_t k = first; k < last; k++)
    m = m * 10 + (u128)(DIGIT_AT(k) - '0');
#undef DIGIT_AT
  int scale = 0;
  if (e > 0)
    m *= pow10u((int)e);
  else
    scale = (int)-e;
  out->coef = with_sign(m, negative);
  out->scale = scale;
  return TS_OK;
}

enum ts_status decimal_parse_score(const char *s, size_t len,
                                   struct decimal *out) {
  struct decimal d;
  enum ts_status st = decimal_parse(s, len, &d);
  if (st != TS_OK)
    return st;
  if (d.scale > TS_SCORE_MAX_SCALE)
    return TS_ERR_RANGE;
  if (magnitude(d.coef) >= pow10u(TS_SCORE_MAX_INT_DIGITS + d.scale))
    return TS_ERR_RANGE;
  *out = d;
  return TS_OK;
}

struct decimal decimal_from_int(int64_t v) {
  return (struct decimal){(__int128)v, 0};
}

enum ts_status decimal_add(struct decimal a, struct decimal b,
                           struct decimal *out) {
  if (!in_domain(a) || !in_domain(b))
    return TS_ERR_INVALID;
  normalise(&a);
  normalise(&b);
  bool na = a.coef < 0, nb = b.coef < 0;
  u128 ma = magnitude(a.coef), mb = magnitude(b.coef);
  int scale = a.scale;
  /* Align to the larger scale. If that overflows 2^128, the result cannot
   * fit: the other operand is normalised with a nonzero last digit, so the
   * exact sum ends in a nonzero digit at that scale and is >= 10^38. */
  if (a.scale < b.scale) {
    if (__builtin_mul_overflow(ma, pow10u(b.scale - a.scale), &ma))
      return TS_ERR_RANGE;
    scale = b.scale;
  } else if (b.scale < a.scale) {
    if (__builtin_mul_overflow(mb, pow10u(a.scale - b.scale), &mb))
      return TS_ERR_RANGE;
  }
  u128 m;
  bool negative;
  if (na == nb) {
    if (__builtin_add_overflow(ma, mb, &m))
      return TS_ERR_RANGE;
    negative = na;
  } else if (ma >= mb) {
    m = ma - mb;
    negative = na;
  } else {
    m = mb - ma;
    negative = nb;
  }
  while (scale > 0 && m != 0 && m % 10 == 0) {
    m /= 10;
    scale--;
  }
  if (m == 0)
    scale = 0;
  if (m >= pow10u(TS_DECIMAL_MAX_DIGITS))
    return TS_ERR_RANGE;
  out->coef = with_sign(m, negative && m != 0);
  out->scale = scale;
  return TS_OK;
}

enum ts_status decimal_mul_int(struct decimal a, int64_t k,
                               struct decimal *out) {
  if (!in_domain(a))
    return TS_ERR_INVALID;
  bool negative = (a.coef < 0) != (k < 0);
  u128 mk = k < 0 ? (u128)0 - (u128)(__int128)k : (u128)k;
  u128 m;
  if (__builtin_mul_overflow(magnitude(a.coef), mk, &m) ||
      m >= pow10u(TS_DECIMAL_MAX_DIGITS))
    return TS_ERR_RANGE;
  struct decimal r = {with_sign(m, negative && m != 0), a.scale};
  normalise(&r);
  *out = r;
  return TS_OK;
}

struct decimal decimal_neg(struct decimal a) {
  a.coef = -a.coef;
  return a;
}

enum ts_status decimal_sub(struct decimal a, struct decimal b,
                           struct decimal *out) {
  if (!in_domain(b))
    return TS_ERR_INVALID;
  return decimal_add(a, decimal_neg(b), out);
}

bool decimal_is_zero(struct decimal a) { return a.coef == 0; }

int decimal_cmp(struct decimal a, struct decimal b) {
  normalise(&a);
  normalise(&b);
  int sa = (a.coef > 0) - (a.coef < 0), sb = (b.coef > 0) - (b.coef < 0);
  if (sa != sb)
    return sa < sb ? -1 : 1;
  if (sa == 0)
    return 0;
  u128 ma = magnitude(a.coef), mb = magnitude(b.coef);
  int r;
  /* Aligning may overflow 2^128: then that side is the larger one. */
  if (a.scale < b.scale &&
      __builtin_mul_overflow(ma, pow10u(b.scale - a.scale), &ma))
    r = 1;
  else if (b.scale < a.scale &&
           __builtin_mul_overflow(mb, pow10u(a.scale - b.scale), &mb))
    r = -1;
  else
    r = (ma > mb) - (ma < mb);
  return sa > 0 ? r : -r;
}

/* Largest `places` accepted by decimal_div_round and decimal_format_fixed. */
#define MAX_ROUND_PLACES 6

enum ts_status decimal_div_round(struct decimal num, int64_t den, int places,
                                 struct decimal *out) {
  if (den <= 0 || places < 0 || places > MAX_ROUND_PLACES || !in_domain(num))
    return TS_ERR_INVALID;
  normalise(&num);
  bool negative = num.coef < 0;
  u128 m = magnitude(num.coef), d = (u128)den, q;
  if (places >= num.scale) {
    /* Long division, one more decimal digit per step; r < d < 2^63. */
    q = m / d;
    u128 r = m % d;
    for (int i = num.scale; i < places; i++) {
      r *= 10;
      if (__builtin_mul_overflow(q, (u128)10, &q) ||
          __builtin_add_overflow(q, r / d, &q))
        return TS_ERR_RANGE;
      r %= d;
    }
    if (2 * r >= d && __builtin_add_overflow(q, (u128)1, &q)) /* half up */
      return TS_ERR_RANGE;
  } else {
    /* value = (m / d) / 10^k with k >= 1. With q0 = floor(m / d) =
     * q * 10^k + rem, the dropped part is (rem + f) / 10^k for some
     * 0 <= f < 1; it is at least one half exactly when rem >= 10^k / 2
     * (an integer, as k >= 1). */
    u128 p = pow10u(num.scale - places);
    u128 q0 = m / d;
    q = q0 / p;
    if (q0 % p >= p / 2)
      q++;
  }
  if (q >= pow10u(TS_DECIMAL_MAX_DIGITS))
    return TS_ERR_RANGE;
  struct decimal r = {with_sign(q, negative && q != 0), places};
  normalise(&r);
  *out = r;
  return TS_OK;
}

/* Writes a (normalised or not) in plain notation with exactly its own
 * scale; returns the length. Out-of-domain values give "NaN" (never made by
 * this module), so the buffer bound always holds: at most a sign, "0.",
 * and 39 digits, or sign, 39 digits and a point. */
static size_t write_plain(struct decimal a, char buf[DECIMAL_TEXT_MAX]) {
  if (a.scale < 0 || a.scale > TS_DECIMAL_MAX_DIGITS) {
    memcpy(buf, "NaN", 4);
    return 3;
  }
  char rev[40] = {0}; /* zeroed only to reassure static analysis */
  int n = 0;
  u128 m = magnitude(a.coef);
  do {
    rev[n++] = (char)('0' + (int)(m % 10));
    m /= 10;
  } while (m != 0);
  size_t pos = 0;
  if (a.coef < 0)
    buf[pos++] = '-';
  if (a.scale >= n) {
    buf[pos++] = '0';
    if (a.scale > 0) {
      buf[pos++] = '.';
      for (int i = n; i < a.scale; i++)
        buf[pos++] = '0';
    }
    while (n > 0)
      buf[pos++] = rev[--n];
  } else {
    int int_digits = n - a.scale;
    for (int i = 0; i < int_digits; i++)
      buf[pos++] = rev[--n];
    if (n > 0) {
      buf[pos++] = '.';
      while (n > 0)
        buf[pos++] = rev[--n];
    }
  }
  buf[pos] = '\0';
  return pos;
}

size_t decimal_format(struct decimal a, char buf[DECIMAL_TEXT_MAX]) {
  if (a.scale >= 0)
    normalise(&a);
  return write_plain(a, buf);
}

size_t decimal_format_fixed(struct decimal a, int places,
                            char buf[DECIMAL_TEXT_MAX]) {
  if (places < 0)
    places = 0;
  if (places > MAX_ROUND_PLACES)
    places = MAX_ROUND_PLACES;
  if (a.scale >= 0)
    normalise(&a);
  if (a.scale > places) {
    /* Outside the contract; round rather than print too many digits. */
    struct decimal rounded;
    if (decimal_div_round(a, 1, places, &rounded) != TS_OK)
      return write_plain(a, buf);
    a = rounded;
  }
  size_t pos = write_plain(a, buf);
  if (buf[0] == 'N')
    return pos;
  /* Pad with zeros: at most 1 + 38 + 1 + 6 characters in all. */
  if (a.scale == 0 && places > 0)
    buf[pos++] = '.';
  for (int i = a.scale; i < places; i++)
    buf[pos++] = '0';
  buf[pos] = '\0';
  return pos;
}
