/* A player's aggregate: apply deltas under the invariants, derive averages. */
#include "stats.h"

/* Fractional digits of avg_score and win_percent. */
#define DERIVED_PLACES 2

enum ts_status stats_apply(struct stats *s, const struct stats *delta) {
  struct stats next;
  if (__builtin_add_overflow(s->games, delta->games, &next.games) ||
      __builtin_add_overflow(s->wins, delta->wins, &next.wins))
    return TS_ERR_RANGE;
  enum ts_status st =
      decimal_add(s->total_score, delta->total_score, &next.total_score);
  if (st != TS_OK)
    return st;
  /* A delta that removes more than was counted means the stream and the
   * stored stats disagree: refuse rather than store nonsense. */
  if (next.games < 0 || next.wins < 0 || next.wins > next.games)
    return TS_ERR_INVALID;
  *s = next;
  return TS_OK;
}

bool stats_is_zero(const struct stats *s) {
  return s->games == 0 && s->wins == 0 && decimal_is_zero(s->total_score);
}

enum ts_status stats_derive(const struct stats *s, struct decimal *avg_score,
                            struct decimal *win_percent) {
  if (s->games < 0)
    return TS_ERR_INVALID; /* never after stats_apply */
  if (s->games == 0) {
    *avg_score = decimal_from_int(0);
    *win_percent = decimal_from_int(0);
    return TS_OK;
  }
  struct decimal avg, pct;
  enum ts_status st =
      decimal_div_round(s->total_score, s->games, DERIVED_PLACES, &avg);
  if (st != TS_OK)
    return st;
  /* 100 * wins: |wins| < 2^63, so the product stays far below 10^38. */
  struct decimal wins100 = {(__int128)s->wins * 100, 0};
  st = decimal_div_round(wins100, s->games, DERIVED_PLACES, &pct);
  if (st != TS_OK)
    return st;
  *avg_score = avg;
  *win_percent = pct;
  return TS_OK;
}

static int64_t hundredths(struct decimal d) {
  /* d has scale <= 2 (from decimal_div_round) and |d| < 10^16 here. */
  __int128 v = d.coef;
  for (int sc = d.scale; sc < 2; sc++)
    v *= 10;
  return (int64_t)v;
}

enum ts_status stats_rank_keys(const struct stats *s, int64_t *avg_x100,
                               int64_t *win_percent_x100) {
  struct decimal avg, pct;
  enum ts_status st = stats_derive(s, &avg, &pct);
  if (st != TS_OK)
    return st;
  if (avg.scale > 2 || pct.scale > 2)
    return TS_ERR_RANGE;
  /* |avg| < 10^15 by the score bounds, so avg * 100 < 10^17 fits; check
   * after scaling (the coefficient of a scale-2 value is already x100). */
  __int128 v = avg.coef;
  for (int sc = avg.scale; sc < 2; sc++)
    v *= 10;
  if (v > INT64_MAX || v < INT64_MIN)
    return TS_ERR_RANGE;
  *avg_x100 = (int64_t)v;
  *win_percent_x100 = hundredths(pct);
  return TS_OK;
}

const char stats_reason_bookkeeping_full[] =
    "the player has had more games in the last 26 hours than exactly-once "
    "bookkeeping holds";

const char *stats_apply_reason(enum ts_status st) {
  switch (st) {
  case TS_ERR_INVALID:
    return "removes a game that was never counted for this player (games or "
           "wins would go below zero)";
  case TS_ERR_RANGE: return "total_score would exceed 38 digits";
  default: return NULL;
  }
}
