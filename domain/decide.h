/* What a batch does to the players: the one decision both stores use.
 *
 * A store reads, the domain decides, the store writes. batch_decide() gets
 * a read-only view of what the store holds and sets every entry's outcome
 * (applied, duplicate, rejected with its reason) and each player's next
 * stats; the store then writes the applied eventIDs and the changed
 * players, atomically as it can. The rules, per player, entries in batch
 * order:
 *   1. the (player, eventID) pair is applied already (the store says so, or
 *      an earlier entry of this batch applied it): duplicate;
 *   2. the player's exactly-once bookkeeping is full: rejected;
 *   3. stats_apply() refuses the delta (below zero, over 38 digits):
 *      rejected with stats_apply_reason(). Except below zero while a
 *      backfill session is open (view->backfilling), for a record with
 *      its item's SequenceNumber: then the entry is held, applied without
 *      moving the stats (rule 5 without its delta);
 *   4. another entry of the same record was rejected: rejected too (a
 *      record is applied whole or not at all);
 *   5. otherwise applied: the player's stats move on.
 * Rule 4 can turn an applied entry into a rejected one, which changes what
 * later entries of that player see: the passes repeat until no record is
 * newly excluded (at most one pass per record).
 *
 * Why rule 3 holds rather than rejects during a backfill: a backfill runs
 * because the stored stats may not be the table's (an empty store next to
 * a live stream, a drift), so "below zero" says nothing about the record.
 * A held entry is recorded as applied and its delta lands in the player's
 * session state (domain/backfill.h, which folds every applied entry's
 * delta), and the settlement sets the stats to base + D: the game counts
 * in base through the record's OldImage and D takes it off again, exactly
 * as for an entry the stats could take. Rejected instead, the record would
 * be in neither, and the Scan may have counted the game it removes.
 * Only with a SequenceNumber: the settlement takes each game's lowest
 * one as its first change, so a REMOVE held before its own INSERT still
 * nets to nothing. A Kinesis record has none, and Kinesis may deliver a
 * REMOVE before its INSERT: held, that REMOVE would count as the game's
 * first change and leave it counted, with no dead letter to replay. */
#ifndef TS_DOMAIN_DECIDE_H
#define TS_DOMAIN_DECIDE_H

#include <stdbool.h>
#include <stddef.h>

#include "../common/status.h"
#include "batch.h"
#include "stats.h"

/* What the store holds, for the players of one batch (by index in the
 * batch). A callback's failure (TS_ERR_IO, TS_ERR_BUSY...) ends the
 * decision with that status. */
struct decide_view {
  void *cls;
  /* The player's stored stats; zero when the store has none. */
  enum ts_status (*stats)(void *cls, size_t player, struct stats *out);
  /* Whether event_id was applied to the player (within the retention). */
  enum ts_status (*applied)(void *cls, size_t player, const char *event_id,
                            bool *seen);
  /* How many more eventIDs the player's bookkeeping may hold. NULL: no
   * bound. */
  size_t (*room)(void *cls, size_t player);
  /* True for a player whose outcomes are final already (written by an
   * earlier attempt): not read, not decided again; its rejected entries
   * still exclude their records. NULL: none is. */
  bool (*settled)(void *cls, size_t player);
  /* A backfill session is open, and the store writes the session state of
   * every player it writes (rule 3). */
  bool backfilling;
};

/* One player's result. */
struct decide_player {
  bool changed;      /* an entry was applied: write next */
  struct stats next; /* the stored stats plus every applied delta */
};

/* A player whose write an earlier attempt on this batch sent and that may
 * have landed (batch_player_note_write: it succeeded, or its answer never
 * came; a retry, or a worker finishing a try cut short): an entry that
 * attempt decided applied and the view now finds applied was applied by
 * that write. It stays applied, without its delta again (the stats hold
 * it), rather than turning into a duplicate. */
/* Decides every entry of every unsettled player of b. out has
 * batch_player_count(b) elements; a settled player's is left unchanged.
 * Returns TS_OK, TS_ERR_NOMEM, or a view callback's failure (then the
 * outcomes are incomplete and must not be written). Repeatable: a store's
 * retried attempt calls it again with a new view. */
enum ts_status batch_decide(struct batch *b, const struct decide_view *view,
                            struct decide_player *out) TS_WARN_UNUSED;

#endif /* TS_DOMAIN_DECIDE_H */
