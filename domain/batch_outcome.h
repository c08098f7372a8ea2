/* Setting the outcomes of a batch's entries: for the decision
 * (domain/decide.c) and the tests of the domain only. Stores never include
 * this: they call batch_decide() and read batch_entry_outcome(). */
#ifndef TS_DOMAIN_BATCH_OUTCOME_H
#define TS_DOMAIN_BATCH_OUTCOME_H

#include <stdbool.h>
#include <stddef.h>

#include "batch.h"

/* The verdict on one entry. reason (copied) is required for ENTRY_REJECTED
 * and ignored otherwise. */
void batch_entry_set_outcome(struct batch *b, size_t player, size_t entry,
                             enum entry_outcome outcome, const char *reason);
/* Marks an applied entry as held for an open backfill (decide.h, rule
 * 3): applied, its delta in the session, the stats unchanged. Setting the
 * entry's outcome again clears the mark. */
void batch_entry_set_held(struct batch *b, size_t player, size_t entry);
/* Clears the outcomes of one player's entries. */
void batch_player_reset_outcomes(struct batch *b, size_t player);
/* Clears every record's exclusion. */
void batch_reset_exclusions(struct batch *b);
/* Both of the above for every player and record. */
void batch_reset_outcomes(struct batch *b);

/* A record is applied whole or not at all: when one of its entries is
 * rejected (say the old player of a moving MODIFY would go below zero),
 * its other entries must not be applied either. This excludes every record
 * with a rejected entry and returns how many it newly excluded; the
 * decision then decides again, rejecting the entries of excluded records
 * with batch_entry_set_excluded(). Each pass excludes at least one more
 * record, so passes end within the record count. */
size_t batch_exclude_rejected_records(struct batch *b);
bool batch_entry_excluded(const struct batch *b, size_t player, size_t entry);
void batch_entry_set_excluded(struct batch *b, size_t player, size_t entry);

/* True when an earlier entry of this batch for the same player and eventID
 * (a record repeated in the batch) is already applied or a duplicate in
 * the current pass: this entry's effect is then already there, and it is
 * a duplicate. A repeat whose earlier entry was rejected is decided on its
 * own. */
bool batch_entry_applied_earlier(const struct batch *b, size_t player,
                                 size_t entry);

#endif /* TS_DOMAIN_BATCH_OUTCOME_H */
