/* Write guesses (DynamoDB): what this process last wrote to each player's
 * item, so that the next change of that player can be written without
 * reading the item first. Not for callers outside store/.
 *
 * A guessed write is conditioned on the item being exactly as guessed
 * (version, updated_at and the stats), so a wrong guess costs a failed
 * conditional write and then the usual read and write; it never loses an
 * update. Whether guessing pays depends on the deployment: a lone replica
 * (or one the load balancer keeps a player on) is right nearly always,
 * N replicas taking turns about 1 time in N. So guesses are used only
 * while they have been right lately, judged from two kinds of evidence:
 *   - a guessed write whose condition held (right) or failed (wrong);
 *   - while not guessing, a read of an item this process wrote before:
 *     right when the item is still the version it wrote, i.e. a guess
 *     would have held. This costs nothing, so a replica that stopped
 *     guessing starts again by itself once the guesses would hold.
 * The trust score rises by 1 per right guess and falls by
 * TS_GUESS_WRONG_COST per wrong one (bounds.h); guessing pays when the
 * score is at least TS_GUESS_TRUST_MIN, i.e. while more than
 * COST/(COST+1) of the guesses are right: a wrong guess costs a failed
 * write (1 write unit per KB, five times a read unit's price) and a round
 * trip, a right one saves a strongly consistent read and a round trip.
 *
 * A player this process holds no entry for may be new: its write is then
 * conditioned on there being no item (as after a read that found none)
 * without reading first. A wrong guess costs the same as above, a failed
 * write and the read after it; whether such guesses pay is judged apart,
 * by a second score kept the same way from:
 *   - a new-player write whose condition held (right) or failed (wrong);
 *   - while not guessing, a read of a player this process holds no entry
 *     for: right when it found no item.
 * So a tournament's first games skip a read each, while a replica that
 * restarted, or shares players with others, finds items it does not know
 * and reads first.
 *
 * Bounded: TS_GUESS_SLOTS entries in sets of TS_GUESS_WAYS per player
 * name hash (a new player replaces its set's least recently used entry),
 * each at most TS_GUESS_MAX_LOG_BYTES of log. Thread-safe. */
#ifndef TS_STORE_GUESS_H
#define TS_STORE_GUESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/status.h"
#include "../domain/stats.h"

/* A player's item as this process wrote it. */
struct guess_item {
  int64_t version;
  char updated_at[32];
  struct stats stats;
  unsigned char *recent; /* the item's `recent` bytes (may be NULL) */
  size_t recent_len;
  unsigned char *chunks; /* the item's `chunks` bytes (may be NULL) */
  size_t chunks_len;
};

struct guess;

enum ts_status guess_new(size_t slots, struct guess **out) TS_WARN_UNUSED;
void guess_free(struct guess *g);

/* Remembers what was written to player's item (it is copied). An entry of
 * a higher version is kept; a log over the bound forgets the player. */
void guess_note_write(struct guess *g, const char *player,
                      const struct guess_item *it);
/* Forgets player: its item was written with something a guess does not
 * hold (a backfill session's state). */
void guess_forget(struct guess *g, const char *player);
/* When guessing pays now and player's item is known: TS_OK and a copy in
 * *out (release it with guess_item_clear). TS_ERR_NOT_FOUND otherwise,
 * TS_ERR_NOMEM. */
enum ts_status guess_take(struct guess *g, const char *player,
                          struct guess_item *out) TS_WARN_UNUSED;
/* Evidence of a read: player's item was found at (version, updated_at).
 * Counts only when this process holds an entry for the player. */
void guess_note_read(struct guess *g, const char *player, int64_t version,
                     const char *updated_at);
/* Evidence of a guessed write: its condition held. */
void guess_note_held(struct guess *g);
/* A guessed write of `version` failed its condition. It may have failed
 * on itself (resent after its answer was lost, its first copy landed), so
 * it is judged when the item is read again, by guess_note_verdict: true
 * then, and the entry is forgotten (the read after it is no evidence).
 * False when it lost to a newer write of this process (its entry is
 * newer): a read would have lost that race too, so nothing is judged. */
bool guess_note_failed(struct guess *g, const char *player, int64_t version);
/* The verdict on a failed guessed write once its item was read again:
 * right when the item holds that very write. */
void guess_note_verdict(struct guess *g, bool right);
void guess_item_clear(struct guess_item *it);

/* Whether to write player as new without reading it: this process holds
 * no entry for it and new-player guesses pay now. */
bool guess_take_new(struct guess *g, const char *player);
/* Evidence of a read of player: whether an item was found. Counts only
 * when this process holds no entry for the player. */
void guess_note_unknown_read(struct guess *g, const char *player, bool found);
/* Evidence of a new-player write: its condition held or not. */
void guess_note_new_outcome(struct guess *g, bool held);

/* Process-wide totals for /metrics: guessed writes whose condition held
 * and failed. */
void guess_counts(uint64_t *held, uint64_t *failed);
/* The same for new-player writes made without a read. */
void guess_new_counts(uint64_t *held, uint64_t *failed);

/* For tests: whether guesses are used now. */
bool guess_trusted(struct guess *g);
/* For tests: whether new-player guesses are used now. */
bool guess_new_trusted(struct guess *g);

#endif /* TS_STORE_GUESS_H */
