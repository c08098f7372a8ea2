/* Fuzzes domain/backfill: the session state parser and fold, the item key,
 * and the base, against the contracts in backfill.h.
 *
 * Input: a stored state text, NUL, a session id, NUL, a request body. The
 * body is decoded as a POST is (batch_new_with), decided against an empty
 * store, and every player's state folded from the stored one.
 *
 * Invariants: whatever the stored text, the fold gives a state of the
 * session whose delta is the stored one's (zero when it is of another
 * session or not a state) plus exactly the applied entries' deltas; a
 * fold without a session gives no state; the base accepts any state and
 * any key, and never names a player with a zero base. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "domain/backfill.h"
#include "domain/decide.h"
#include "input.h"

static enum ts_status zero_stats(void *cls, size_t p, struct stats *out) {
  (void)cls;
  (void)p;
  memset(out, 0, sizeof *out);
  return TS_OK;
}

static enum ts_status never_applied(void *cls, size_t p, const char *event_id,
                                    bool *seen) {
  (void)cls;
  (void)p;
  (void)event_id;
  *seen = false;
  return TS_OK;
}

static enum ts_status nonzero(void *cls, const char *player,
                              const struct stats *base) {
  (void)cls;
  FUZZ_CHECK(player && !stats_is_zero(base), "a zero base was named");
  return TS_OK;
}

static void check_fold(const struct batch *b, size_t p, const char *stored,
                       const char *session) {
  char *next = NULL;
  FUZZ_CHECK(backfill_fold(stored, NULL, b, p, &next) == TS_OK && !next,
             "a fold without a session kept a state");
  if (backfill_fold(stored, session, b, p, &next) != TS_OK)
    return; /* out of memory */
  FUZZ_CHECK(next != NULL, "no state for an open session");
  char seen[80];
  backfill_state_session(next, seen, sizeof seen);
  FUZZ_CHECK(strlen(session) >= sizeof seen || strcmp(seen, session) == 0,
             "the state is of session \"%s\", not \"%s\"", seen, session);
  struct backfill_tracked before, after;
  backfill_state_tracked(stored, session, &before);
  backfill_state_tracked(next, session, &after);
  int64_t games = before.delta.games, wins = before.delta.wins;
  for (size_t e = 0; e < batch_entry_count(b, p); e++)
    if (batch_entry_outcome(b, p, e) == ENTRY_APPLIED) {
      games += batch_entry(b, p, e)->delta.games;
      wins += batch_entry(b, p, e)->delta.wins;
    }
  FUZZ_CHECK(after.delta.games == games && after.delta.wins == wins,
             "D is %lld/%lld, want %lld/%lld", (long long)after.delta.games,
             (long long)after.delta.wins, (long long)games, (long long)wins);
  struct backfill_base *bb = NULL;
  if (backfill_base_new(&bb) == TS_OK) {
    (void)backfill_base_add_state(bb, stored, session);
    (void)backfill_base_add_state(bb, next, session);
    (void)backfill_base_each(bb, nonzero, NULL);
  }
  backfill_base_free(bb);
  free(next);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct input in = {data, size};
  char *stored = input_take_cstr(&in, NULL);
  char *session = input_take_cstr(&in, NULL);
  size_t len = 0;
  const uint8_t *rest = input_take_rest(&in, &len);
  json_t *body = json_loadb((const char *)rest, len, JSON_DECODE_ANY, NULL);
  struct batch *b = NULL;
  char key[BACKFILL_KEY_HEX];
  if (body && backfill_item_key(body, NULL, 0, key))
    FUZZ_CHECK(strlen(key) == BACKFILL_KEY_HEX - 1, "key \"%s\"", key);
  if (body && *session &&
      batch_new_with(fuzz_doc_of(body), NULL, &b, NULL) == TS_OK) {
    size_t n = batch_player_count(b);
    struct decide_player *out = calloc(n ? n : 1, sizeof *out);
    const struct decide_view view = {.stats = zero_stats,
                                     .applied = never_applied};
    if (out && batch_decide(b, &view, out) == TS_OK)
      for (size_t p = 0; p < n; p++)
        check_fold(b, p, stored, session);
    free(out);
  }
  batch_free(b);
  json_decref(body);
  free(stored);
  free(session);
  return 0;
}
