/* Backfill sessions: rebuilding stats from the source table while the
 * stream keeps being applied, with no game counted twice or lost.
 *
 * The problem: a Scan is not a snapshot, and the stream lags the table. An
 * item the Scan read may carry a change whose stream record is applied
 * before, during or after the backfill, so neither "Scan result" nor
 * "Scan result + what the stream adds" is exact.
 *
 * The design (README "Backfill and verify"): while a session is open,
 * every write of a player also keeps, in a per-player session state (a
 * small JSON text the store saves with the row, atomically with it):
 *   D  the sum of the deltas applied to the player since the session's
 *      first tracked write ("tracked" deltas);
 *   K  for every item key a tracked record changed: the record's
 *      SequenceNumber and the contribution of its OldImage (player, win,
 *      score), or "none" for an INSERT.
 * A store writes a player's state whenever it writes the player, so a
 * delta is tracked exactly when it is applied in a session.
 * Once the Scan is done and the stream has caught up past its end, the
 * backfill computes per player
 *   base = sum over scanned items not in any K of their contribution
 *        + sum over keys in K of their first (lowest SequenceNumber)
 *          record's OldImage contribution,
 * i.e. the table as it stood just before the first tracked change of each
 * item, and sets stats := base + D in one conditional write per player.
 * Every later tracked delta lands on both, so the stats stay exact.
 *
 * Everything here is pure: the stores save and load the text, the
 * backfill command (ops/backfill.c) folds it. */
#ifndef TS_DOMAIN_BACKFILL_H
#define TS_DOMAIN_BACKFILL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/status.h"
#include "batch.h"
#include "stats.h"

/* An item key: SHA-256 (first 128 bits, hex) of the key attributes. */
#define BACKFILL_KEY_HEX 33u

/* The key of the item whose attributes are `attrs` (a DynamoDB-JSON
 * object), from the attributes named in names[0..n) (the table's key
 * schema), or of a stream record's dynamodb.Keys with names NULL (then
 * every member is a key attribute). Key values must be S, N or B with a
 * string value. Returns false when an attribute is missing or unusable. */
bool backfill_item_key(const json_t *attrs, const char *const *names, size_t n,
                       char out[BACKFILL_KEY_HEX]);

/* The player's next session state after a write in which the entries of
 * player p of b that are ENTRY_APPLIED are applied. stored: the state saved
 * with the row (NULL or "" when none); session: the open session's id
 * (NULL when none is open: *next is NULL, the state is dropped). A stored
 * state of another session starts over. *next is owned by the caller.
 * Returns TS_OK or TS_ERR_NOMEM; a stored text that is not a state is
 * treated as none (it was written by this code, so it is only corruption). */
enum ts_status backfill_fold(const char *stored, const char *session,
                             const struct batch *b, size_t p,
                             char **next) TS_WARN_UNUSED;

/* The session id a state belongs to, copied to out (empty when none). */
void backfill_state_session(const char *state, char *out, size_t cap);

/* What a player's state says for `session`: D, the latest
 * ApproximateCreationDateTime among its tracked records, whether its key
 * list overflowed TS_BACKFILL_KEYS_PER_PLAYER, and the records without a
 * usable dynamodb.Keys. All zero when the state is of another session. */
struct backfill_tracked {
  struct stats delta;
  int64_t max_created_s;
  bool overflow;
  uint64_t keyless;
};
void backfill_state_tracked(const char *state, const char *session,
                            struct backfill_tracked *out);

/* The stats a player settles at: base + the delta its state tracked in
 * session (none: base). TS_ERR_INVALID when a count would be negative,
 * TS_ERR_RANGE on overflow. */
enum ts_status backfill_settled(const struct stats *base, const char *state,
                                const char *session,
                                struct stats *out) TS_WARN_UNUSED;

/* The per-player base, accumulated from the Scan and the states. */
struct backfill_base;
enum ts_status backfill_base_new(struct backfill_base **out) TS_WARN_UNUSED;
void backfill_base_free(struct backfill_base *bb);
/* One scanned item: its key and its contribution (one entry of a batch
 * decoded from the item as an INSERT). The same key twice (a Scan page
 * retried) counts once. */
enum ts_status
backfill_base_add_item(struct backfill_base *bb, const char *key,
                       const char *player,
                       const struct stats *contribution) TS_WARN_UNUSED;
/* The keys of one player's state for `session` (others are ignored). */
enum ts_status backfill_base_add_state(struct backfill_base *bb,
                                       const char *state,
                                       const char *session) TS_WARN_UNUSED;
/* The result: calls fn for every player with a non-zero base. Players the
 * store holds but fn is not called for have a base of zero. */
enum ts_status
backfill_base_each(const struct backfill_base *bb,
                   enum ts_status (*fn)(void *cls, const char *player,
                                        const struct stats *base),
                   void *cls) TS_WARN_UNUSED;
size_t backfill_base_items(const struct backfill_base *bb);
/* Distinct players named so far (by items or states). */
size_t backfill_base_players(const struct backfill_base *bb);

#endif /* TS_DOMAIN_BACKFILL_H */
