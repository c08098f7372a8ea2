/* Exact decimal numbers for scores and their sums.
 *
 * A value is coef / 10^scale with a 128-bit coefficient, |coef| < 10^38
 * (DynamoDB's 38 significant digits) and 0 <= scale <= TS_DECIMAL_MAX_DIGITS.
 * No binary floating point is involved anywhere: sums are exact. */
#ifndef TS_DOMAIN_DECIMAL_H
#define TS_DOMAIN_DECIMAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/status.h"

struct decimal {
  __int128 coef;
  int scale;
};

/* Longest text decimal_format() writes, with sign, point and NUL. */
#define DECIMAL_TEXT_MAX 48

/* Parses a DynamoDB number string: [-]digits[.digits][(e|E)[+-]digits] or
 * [-].digits[(e|E)[+-]digits]; nothing else (no leading '+', no whitespace,
 * no "1.", "." or "1e"). The value is normalised (trailing fractional zeros
 * dropped, a positive exponent folded into the coefficient).
 * Returns TS_OK, TS_ERR_INVALID (not a number), TS_ERR_RANGE (more than 38
 * significant digits, or a scale beyond TS_DECIMAL_MAX_DIGITS). */
enum ts_status decimal_parse(const char *s, size_t len,
                             struct decimal *out) TS_WARN_UNUSED;

/* Like decimal_parse, and also enforces the score bounds of bounds.h
 * (TS_SCORE_MAX_SCALE fractional digits, |v| < 10^TS_SCORE_MAX_INT_DIGITS).
 * Returns TS_ERR_RANGE with those bounds broken. */
enum ts_status decimal_parse_score(const char *s, size_t len,
                                   struct decimal *out) TS_WARN_UNUSED;

struct decimal decimal_from_int(int64_t v);

/* out = a + b, normalised. TS_ERR_RANGE if |coef| would reach 10^38. */
enum ts_status decimal_add(struct decimal a, struct decimal b,
                           struct decimal *out) TS_WARN_UNUSED;

/* out = a - b, normalised. TS_ERR_RANGE as decimal_add. */
enum ts_status decimal_sub(struct decimal a, struct decimal b,
                           struct decimal *out) TS_WARN_UNUSED;

/* out = a * k, normalised. TS_ERR_RANGE if |coef| would reach 10^38. */
enum ts_status decimal_mul_int(struct decimal a, int64_t k,
                               struct decimal *out) TS_WARN_UNUSED;

struct decimal decimal_neg(struct decimal a);
bool decimal_is_zero(struct decimal a);
/* -1, 0, 1 by value (1.50 equals 1.5). */
int decimal_cmp(struct decimal a, struct decimal b);

/* out = num / den rounded half away from zero to `places` fractional
 * digits (0..6). den must be > 0. TS_ERR_RANGE on overflow. */
enum ts_status decimal_div_round(struct decimal num, int64_t den, int places,
                                 struct decimal *out) TS_WARN_UNUSED;

/* Writes the canonical text: no exponent, no trailing fractional zeros,
 * "-" only for negatives, "0" for zero (e.g. "12.5", "-0.25", "100").
 * buf needs DECIMAL_TEXT_MAX bytes; returns the length written. */
size_t decimal_format(struct decimal a, char buf[DECIMAL_TEXT_MAX]);

/* Like decimal_format but always with exactly `places` fractional digits
 * (0..6), e.g. places 2: "66.67", "50.00", "0.00". The value must already
 * have scale <= places (as decimal_div_round gives). */
size_t decimal_format_fixed(struct decimal a, int places,
                            char buf[DECIMAL_TEXT_MAX]);

#endif /* TS_DOMAIN_DECIMAL_H */
