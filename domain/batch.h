/* A batch of DynamoDB Streams records, decoded and folded into per-player
 * deltas, plus the outcome of each record once a store has applied it.
 * A record may also be a Kinesis record (Kinesis Data Streams for
 * DynamoDB: a `kinesis` member, or eventSource "aws:kinesis") whose
 * base64 kinesis.data holds one DynamoDB change record: that inner record
 * is decoded exactly as a Streams record and stands for it (its eventID is
 * the exactly-once key); the outer record is what the dead letters keep.
 *
 * Life cycle (one per POST):
 *   batch_new()            envelope check, record decode, fold into
 *                          players -> entries
 *   store_apply(batch)     batch_decide() (domain/decide.h) with a view of
 *                          what the store holds sets every entry's outcome;
 *                          the store writes what it decided
 *   batch_summary_write()  the 200 answer's counts and rejected list
 *   batch_free()
 *
 * An "entry" is one record's share for one player: a MODIFY that moves a
 * game from A to B has an entry for A (-old) and one for B (+new); a MODIFY
 * that keeps the player has one entry (new - old). Entries whose delta is
 * zero are dropped. Exactly-once is per (player, eventID): an entry is
 * applied at most once. */
#ifndef TS_DOMAIN_BATCH_H
#define TS_DOMAIN_BATCH_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/jdoc.h"
#include "../common/status.h"
#include "stats.h"

struct buf; /* common/buf.h */

/* Attribute names read from an image (configurable; defaults below). */
struct record_names {
  const char *player; /* "player" */
  const char *score;  /* "score" */
  const char *winner; /* "winner" */
};
extern const struct record_names record_names_default;

/* How records are read, beyond the attribute names. */
struct batch_options {
  struct record_names names;
  /* A REMOVE made by DynamoDB's Time to Live (userIdentity type "Service",
   * principalId "dynamodb.amazonaws.com") is an expired item, not an
   * undone game: skipped (counted) unless this is set (TS_TTL_REMOVES=
   * subtract), when it subtracts like any REMOVE. */
  bool ttl_removes_subtract;
};

enum entry_outcome {
  ENTRY_PENDING = 0, /* not yet decided by the store */
  ENTRY_APPLIED,     /* added to the player's stats now */
  ENTRY_DUPLICATE,   /* (player, eventID) was applied before */
  ENTRY_REJECTED,    /* would break an invariant (e.g. games < 0) */
};

enum record_outcome {
  RECORD_APPLIED,   /* at least one entry applied, none rejected */
  RECORD_DUPLICATE, /* every entry a duplicate */
  RECORD_SKIPPED,   /* nothing to count (REMOVE without OldImage, no-op) */
  RECORD_REJECTED,  /* poison: undecodable, or an entry rejected */
};

/* What a record says about the item it changed, for backfill sessions
 * (domain/backfill.h). Borrowed from the batch. */
struct batch_change {
  /* dynamodb.Keys in doc (a document the batch holds), JDOC_NONE when
   * absent or not an object: hashed by backfill_item_key() only while a
   * backfill session is open, so that ordinary ingestion pays neither a
   * tree nor a SHA-256 per record. */
  const struct jdoc *doc;
  jdoc_ref keys;
  const char *seq;        /* dynamodb.SequenceNumber; NULL when absent, and
                             always for a Kinesis record (Kinesis for
                             DynamoDB has no per-item SequenceNumber) */
  bool has_old;           /* the record carried a decoded OldImage */
  const char *old_player; /* its player (has_old) */
  struct stats old;       /* its contribution (has_old) */
};

struct batch_entry {
  size_t record;        /* index of the record in the batch */
  const char *event_id; /* borrowed from the batch */
  struct stats delta;
  /* The record's dynamodb.ApproximateCreationDateTime in unix seconds (a
   * JSON number, or a string of digits; milliseconds and microseconds,
   * as Kinesis gives them, are cut to seconds); 0 when absent or
   * unusable. Every delivery
   * of a record carries the same value, which lets a store look up an
   * eventID by time (store/dynamodb.c). */
  int64_t created_s;
  const struct batch_change *change; /* the record's item change */
};

struct batch;

/* Decodes a request body: {"Records":[...]}, [...], or one record object.
 * Returns TS_OK with *out owned by the caller; TS_ERR_INVALID when the
 * envelope is wrong (not an object or array, Records not an array, an
 * element not an object), TS_ERR_TOO_LARGE over TS_MAX_RECORDS_PER_BATCH;
 * then *detail (static text) says what is wrong and *out is NULL.
 * A record whose content is unusable is NOT an error: it is poison and
 * reported through the summary. The batch takes body, whatever the
 * outcome (batch_free frees it; the records' text for batch_rejected()
 * comes from it). */
enum ts_status batch_new(struct jdoc *body, const struct record_names *names,
                         struct batch **out,
                         const char **detail) TS_WARN_UNUSED;
/* batch_new with every option; opt NULL means the defaults. */
enum ts_status batch_new_with(struct jdoc *body,
                              const struct batch_options *opt,
                              struct batch **out,
                              const char **detail) TS_WARN_UNUSED;
void batch_free(struct batch *b);

size_t batch_record_count(const struct batch *b);

/* Players with at least one entry, in first-seen order. */
size_t batch_player_count(const struct batch *b);
const char *batch_player_name(const struct batch *b, size_t player);
size_t batch_entry_count(const struct batch *b, size_t player);
const struct batch_entry *batch_entry(const struct batch *b, size_t player,
                                      size_t entry);

enum entry_outcome batch_entry_outcome(const struct batch *b, size_t player,
                                       size_t entry);

/* Whether none of the player's entries shares its record with another
 * player (a MODIFY that moves a game has an entry for each). Only such a
 * player may be decided and written after the batch's other players: a
 * record is applied whole or not at all (decide.h, rule 4), and a later
 * decision could reject a record whose other entry is already written. */
bool batch_player_alone(const struct batch *b, size_t player);

/* A store notes that it sent a write of the player's decided stats that
 * may have landed (answered OK, or not answered at all), so that a later
 * attempt on this batch can tell its own applied records from duplicates
 * (batch_decide). Kept for the batch's life. */
void batch_player_note_write(struct batch *b, size_t player);
bool batch_player_write_noted(const struct batch *b, size_t player);

/* A store keeps, per player, an opaque token of a write whose outcome it
 * does not know yet (its condition failed, maybe on its own landed
 * result, or it was never answered), for whichever attempt on this batch
 * reads the player next: its own retry, or a worker finishing a try cut
 * short. token NULL or "": none. The batch owns a copy.
 * batch_player_write_token returns NULL when there is none. */
enum ts_status batch_player_set_write_token(struct batch *b, size_t player,
                                            const char *token) TS_WARN_UNUSED;
const char *batch_player_write_token(const struct batch *b, size_t player);
void batch_player_clear_write_token(struct batch *b, size_t player);

/* Per-record outcome, valid once every entry has an outcome. */
enum record_outcome batch_record_outcome(const struct batch *b, size_t record);

/* Rejected records (poison or with a rejected entry), in record order, for
 * the dead-letter store. Strings are borrowed; record_json is the compact
 * JSON text of the record as received (NULL if it could not be serialised).
 * event_id is NULL when the record had none; item_identifier is the
 * SequenceNumber (a Kinesis record's kinesis.sequenceNumber), else the
 * eventID (a Kinesis record's inner one), else "#<position in the batch>".
 * These two (and batch_summary_write) fill caches inside the batch: like
 * every function here, do not call them concurrently on one batch. */
size_t batch_rejected_count(const struct batch *b);
/* The identity of the i-th rejected record in the dead-letter store: a
 * SHA-256 (hex) of the record as received and the reason. Distinct
 * records are kept apart even when they share an eventID and a reason; the
 * same record resent is kept once. Empty when i is out of range. */
void batch_rejected_id(const struct batch *b, size_t i, char out[65]);
void batch_rejected(const struct batch *b, size_t i, const char **event_id,
                    const char **item_identifier, const char **reason,
                    const char **record_json);

/* Counters of decode-time observations, for logs and metrics. */
struct batch_counts {
  size_t received, applied, duplicates, skipped, rejected;
  size_t modify_without_old;  /* MODIFY with no OldImage: new counted */
  size_t remove_without_old;  /* REMOVE with no OldImage: skipped */
  size_t ttl_removes_skipped; /* REMOVE by DynamoDB's TTL: skipped */
  size_t held; /* of the applied: held for an open backfill (decide.h) */
};
void batch_counts(const struct batch *b, struct batch_counts *out);

/* Appends the 200 answer to out, as compact JSON text:
 * {"received":n,"applied":n,"duplicates":n,"skipped":n,
 *  "rejected":[{"eventID":..,"itemIdentifier":..,"reason":..}]}
 * (a missing eventID or itemIdentifier is null). Written, not built as
 * jansson objects: it is every POST's answer. Returns buf_status(out). */
enum ts_status batch_summary_write(const struct batch *b, struct buf *out);

#endif /* TS_DOMAIN_BATCH_H */
