/* Replaying dead letters: their stored records decoded again with the
 * current configuration (typically after an operator fixed the attribute
 * names) and applied through the path ingestion takes, and what becomes of
 * each dead letter afterwards.
 *
 * Life cycle (one per replay call):
 *   replay_new()      the stored texts -> one batch (batch_new_with(), the
 *                     same decoding rules as a POST)
 *   store_apply(replay_batch())  batch_decide() sets the outcomes; records
 *                     rejected again are kept as dead letters, under the
 *                     same id when their reason did not change
 *   replay_result()   per dead letter: its verdict, and whether its old
 *                     entry must be deleted
 *   replay_free()
 * Exactly-once holds because the batch is decided like any other: a
 * (player, eventID) already applied is a duplicate, whoever replays it. */
#ifndef TS_DOMAIN_REPLAY_H
#define TS_DOMAIN_REPLAY_H

#include <stdbool.h>
#include <stddef.h>

#include "../common/status.h"
#include "batch.h"

enum replay_verdict {
  REPLAY_APPLIED,    /* applied now: the dead letter goes */
  REPLAY_DUPLICATE,  /* applied before (another replay, a resend): goes */
  REPLAY_SKIPPED,    /* nothing to count now: goes */
  REPLAY_REJECTED,   /* rejected again: stays, under its new reason */
  REPLAY_UNREADABLE, /* the stored text is not a record (cut for size, or
                        none was stored): stays as it is */
};

struct replay;

/* records[i] is the stored text of the i-th dead letter (NULL when none was
 * stored); n is at most TS_MAX_RECORDS_PER_BATCH. opt: the current
 * configuration (NULL: the defaults). */
enum ts_status replay_new(const char *const *records, size_t n,
                          const struct batch_options *opt,
                          struct replay **out) TS_WARN_UNUSED;
void replay_free(struct replay *r);

/* The batch to apply, with one record per readable dead letter; NULL when
 * none is readable (then there is nothing to apply). */
struct batch *replay_batch(struct replay *r);

/* The result for dead letter i once the batch is applied. old_id is the
 * dead letter's id. *new_id (65 bytes) is the id it is kept under when it
 * stays (old_id for an unreadable one); *reason (borrowed) why it stays,
 * NULL when it goes. Returns whether the entry under old_id must be
 * deleted: when it goes, or when it stays under another id (its reason
 * changed; the store_apply call kept it under the new one). */
bool replay_result(const struct replay *r, size_t i, const char *old_id,
                   enum replay_verdict *verdict, char new_id[65],
                   const char **reason);

#endif /* TS_DOMAIN_REPLAY_H */
