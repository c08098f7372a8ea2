/* Player turns (DynamoDB): within one process, the batches that change
 * one player take turns. A batch claims its players before it reads them
 * and releases them once written; a player another batch holds waits, so
 * the later batch reads (or guesses, store/guess.h) what the earlier one
 * wrote instead of racing it to a failed condition. Without turns, batches
 * of one process that share players lose about a fifth of their writes
 * under load (docs/BENCHMARKS.md), each a failed conditional write and a
 * read paid for nothing.
 *
 * An order, not a lock that correctness needs: every write is still
 * conditioned on the item as read, which is what keeps replicas (and any
 * writer that does not take turns) exact. So a full table answers
 * TURN_UNORDERED, and the caller goes on as it would without turns.
 * Not for callers outside store/.
 *
 * Fair: a batch that waits for a player gets it before batches that came
 * later (a line per name, turns_claim); a batch busy with other players
 * holds up nobody.
 *
 * Bounded: at most `slots` - 1 names held or waited for at once
 * (TS_TURN_SLOTS, bounds.h). Names are borrowed: a caller keeps a name it
 * claimed or waits for alive, and unchanged, until it releases it or
 * leaves its line. Thread-safe. */
#ifndef TS_STORE_TURNS_H
#define TS_STORE_TURNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/status.h"

struct turns;

enum turn {
  TURN_MINE,      /* claimed: release it with turns_release */
  TURN_BUSY,      /* another caller holds it: wait (turns_wait) */
  TURN_UNORDERED, /* the table is full: go on without a turn */
};

/* slots: a power of two, at least 2. */
enum ts_status turns_new(size_t slots, struct turns **out) TS_WARN_UNUSED;
void turns_free(struct turns *t);

/* Claims each of names[0..n) for the caller with *ticket (0: the first
 * claim gives it one, kept by the caller for all of its claims): got[i]
 * says what came of names[i]. A busy name for which queue[i] is true
 * (every name when queue is NULL) keeps the caller a place in line: when
 * released while the oldest ticket in line sleeps in turns_wait, the name
 * is kept for that ticket (or an older one), not given to whoever claims
 * first, so a caller that waits is not overtaken by callers that came
 * after it.
 * Returns the count that every release advances, read with the claims:
 * waiting with it (turns_wait) cannot miss a release that came after
 * them. */
uint64_t turns_claim(struct turns *t, const char *const *names, size_t n,
                     const bool *queue, uint64_t *ticket, enum turn *got);
/* Releases names[0..n), each claimed with TURN_MINE, and wakes the
 * waiters once. */
void turns_release(struct turns *t, const char *const *names, size_t n);
/* The caller with ticket stops waiting for names[0..n): it gives up its
 * places in line (a caller that waited must, before its names go), and
 * wakes the waiters when that frees a name. */
void turns_leave(struct turns *t, const char *const *names, size_t n,
                 uint64_t ticket);
/* The caller with ticket sleeps until a release has happened since epoch
 * (returns TS_OK, at once when one has) or deadline_ms (clock_now_ms)
 * comes first (TS_ERR_UNAVAILABLE). A name released while its first in
 * line sleeps here is kept for it; one released while it is awake is
 * not (turns.c). */
enum ts_status turns_wait(struct turns *t, uint64_t ticket, uint64_t epoch,
                          uint64_t deadline_ms);

/* Names held now, and callers asleep in turns_wait now; for tests. */
size_t turns_held(struct turns *t);
size_t turns_sleeping(struct turns *t);

#endif /* TS_STORE_TURNS_H */
