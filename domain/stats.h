/* A player's aggregate and the arithmetic on it.
 *
 * A game contributes (games 1, wins 0|1, total_score score); a delta is a
 * sum of contributions, possibly negative (MODIFY, REMOVE). Derived values
 * are computed, never stored authoritatively. */
#ifndef TS_DOMAIN_STATS_H
#define TS_DOMAIN_STATS_H

#include <stdint.h>

#include "decimal.h"

struct stats {
  int64_t games;
  int64_t wins;
  struct decimal total_score;
};

/* s += delta. Returns TS_ERR_INVALID (and leaves s unchanged) if the result
 * would have games < 0, wins < 0 or wins > games: the delta removes a game
 * that was never counted for this player. TS_ERR_RANGE on overflow. */
enum ts_status stats_apply(struct stats *s,
                           const struct stats *delta) TS_WARN_UNUSED;

/* Why stats_apply refused a delta, as a dead letter's reason: the one text
 * both stores give. NULL for TS_OK and for failures that are not the
 * record's fault (out of memory). */
const char *stats_apply_reason(enum ts_status st);

/* The reason for a record beyond the exactly-once bookkeeping a store can
 * keep for one player (TS_MAX_APPLIED_PER_PLAYER within the retention). */
extern const char stats_reason_bookkeeping_full[];

/* True when the delta changes nothing (games, wins and score all zero). */
bool stats_is_zero(const struct stats *s);

/* avg_score = total_score / games, win_percent = 100 * wins / games, both
 * rounded half away from zero to 2 decimals; both 0 when games is 0.
 * Returns TS_ERR_RANGE only for totals near the 10^38 limit, and
 * TS_ERR_INVALID for games < 0 (which stats_apply never produces). */
enum ts_status stats_derive(const struct stats *s, struct decimal *avg_score,
                            struct decimal *win_percent) TS_WARN_UNUSED;

/* The derived values as integers in hundredths (66.67 -> 6667), the keys
 * leaderboards sort by: ranking by the rounded values keeps the order
 * consistent with what is displayed. 0 when games is 0. */
enum ts_status stats_rank_keys(const struct stats *s, int64_t *avg_x100,
                               int64_t *win_percent_x100) TS_WARN_UNUSED;

#endif /* TS_DOMAIN_STATS_H */
