/* The rules of reading a Kinesis stream of DynamoDB change records
 * ("Kinesis Data Streams for DynamoDB"), as pure functions: which shard may
 * be read (lineage), who may hold a shard's lease and what the next lease
 * row is, and the parsers of Kinesis answers (ListShards, GetRecords) with
 * the batch a GetRecords answer becomes. ops/consumer.c calls Kinesis and
 * the store; the decisions are here.
 *
 * A read batch becomes the envelope a Lambda function with a Kinesis
 * trigger receives, {"Records":[{"kinesis":{"data","sequenceNumber",
 * "partitionKey",...},"eventID":"<shard>:<seq>","eventName":
 * "aws:kinesis:record",...}]}, which batch_new_with() decodes: each record
 * is applied by the eventID of the DynamoDB change record inside it, so a
 * record read twice (a crash between apply and checkpoint, a lease taken
 * over) is a duplicate. */
#ifndef TS_DOMAIN_KINESIS_H
#define TS_DOMAIN_KINESIS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/bounds.h"
#include "../common/status.h"

/* ---- Shards and lineage ---- */

struct kinesis_shard {
  char id[TS_KINESIS_ID_BYTES];
  char parent[TS_KINESIS_ID_BYTES];   /* "" when none */
  char adjacent[TS_KINESIS_ID_BYTES]; /* AdjacentParentShardId, "" */
};

/* Appends the Shards of a ListShards answer to *shards (*n of them, grown
 * with realloc, at most TS_KINESIS_MAX_SHARDS) and copies NextToken into
 * next (cap bytes; "" when none). TS_ERR_INVALID when the answer is not
 * shaped like one (a shard without a usable ShardId, a field too long),
 * TS_ERR_TOO_LARGE past the bound; a refused page adds nothing to *n. */
enum ts_status kinesis_shards_parse(const json_t *answer,
                                    struct kinesis_shard **shards, size_t *n,
                                    char *next, size_t cap) TS_WARN_UNUSED;

/* Whether shard i may be read now: it is not finished, and each parent it
 * names is finished or is not in the listing (trimmed from the stream: its
 * records are past the retention, nothing of it is left to read). A child
 * is thus read only after its parents are read to their end, so that a
 * key's records are applied in order across a split or a merge.
 * finished[j] tells whether shards[j] was read to its end. */
bool kinesis_shard_readable(const struct kinesis_shard *shards,
                            const bool *finished, size_t n, size_t i);

/* ---- Leases ---- */

/* A shard's lease row as the store keeps it (store_lease_get/put). */
struct shard_lease {
  char owner[TS_KINESIS_OWNER_BYTES];    /* "" when free */
  int64_t expires_ms;                    /* wall clock, unix ms */
  char checkpoint[TS_KINESIS_SEQ_BYTES]; /* last sequence applied, "" */
  bool finished;    /* read to its end: children may be read */
  uint64_t version; /* 0: no row yet; each write adds 1 */
};

enum lease_state {
  LEASE_MINE,     /* owner is me and it has not expired */
  LEASE_FREE,     /* no owner, or expired: anyone may take it */
  LEASE_HELD,     /* another owner's, not expired */
  LEASE_FINISHED, /* the shard was read to its end: nothing to take */
};
enum lease_state kinesis_lease_state(const struct shard_lease *l,
                                     const char *me, int64_t now_ms);

/* Whether a consumer that holds `held` leases and aims at `target`
 * (kinesis_lease_target) may take a shard's lease it has no worker on. A
 * free one while under its share. One still its own whatever its share:
 * a worker stops when its lease writes fail (the store unreachable for a
 * while), and the row it leaves stays its owner's until it expires, so no
 * one else may take it before then. Waiting for the expiry stalled the
 * shard for up to a lease after the store came back; a consumer over its
 * share after taking it back hands one over on its next look. */
bool kinesis_lease_may_take(enum lease_state s, size_t held, size_t target);

/* The next row when `me` takes (or renews) the lease at now_ms: same
 * checkpoint, expiry now + lease_ms. */
void kinesis_lease_take(const struct shard_lease *cur, const char *me,
                        int64_t now_ms, uint32_t lease_ms,
                        struct shard_lease *next);
/* The next row after records up to seq were applied: the checkpoint moves
 * to seq (a renewal too). With end, the shard is finished and the lease
 * let go. */
void kinesis_lease_checkpoint(const struct shard_lease *cur, const char *seq,
                              bool end, int64_t now_ms, uint32_t lease_ms,
                              struct shard_lease *next);
/* The next row when the holder lets it go (SIGTERM): free at once. */
void kinesis_lease_release(const struct shard_lease *cur,
                           struct shard_lease *next);

/* Whether the row read back, stored, is exactly the row a refused write
 * sent, written. A compare-and-set refused for that reason was the same
 * write landing first: its answer was lost and it was sent again (by the
 * store's client, or by libcurl on a reused connection). No other writer
 * makes this row: moving from a version to the next is the holder's
 * alone, and a take writes the taker's own name. */
bool kinesis_lease_same(const struct shard_lease *stored,
                        const struct shard_lease *written);

/* Whether a holder whose last successful lease write was at written_ms
 * must stop working on the shard at now_ms (wall clock): past
 * lease_ms - lease_ms / TS_KINESIS_MARGIN_DIVISOR. */
bool kinesis_lease_must_stop(int64_t written_ms, int64_t now_ms,
                             uint32_t lease_ms);

/* How many leases one consumer aims to hold: readable shards shared by the
 * live owners seen (others) and itself, rounded up. It takes free leases
 * up to that and never takes a live lease from another. */
size_t kinesis_lease_target(size_t readable, size_t others);

/* ---- Records ---- */

/* What one GetRecords answer holds. */
struct kinesis_read {
  json_t *envelope; /* owned: {"Records":[...]} for batch_new_with() */
  size_t records;
  char last_seq[TS_KINESIS_SEQ_BYTES]; /* "" when no records */
  char *next_iterator;   /* owned; NULL: the shard is closed and read to its
                            end */
  int64_t millis_behind; /* MillisBehindLatest, -1 when absent */
};
void kinesis_read_clear(struct kinesis_read *r);

/* Parses a GetRecords answer of shard `shard` into *out (cleared first).
 * TS_ERR_INVALID when shard is not a shard id (empty, or not under
 * TS_KINESIS_ID_BYTES) or the answer is not one: Records missing or not an
 * array, a record without Data or a sequence number of digits. A record
 * whose Data does not decode as a DynamoDB change record is not an error
 * here: batch_new_with() makes it a dead letter. */
enum ts_status kinesis_read_parse(const json_t *answer, const char *shard,
                                  struct kinesis_read *out) TS_WARN_UNUSED;

/* Whether a and b are Kinesis sequence numbers (decimal digits) with
 * a < b, by value. */
bool kinesis_seq_less(const char *a, const char *b);

/* The stream's name from NAME or an ARN
 * (arn:aws:kinesis:<region>:<account>:stream/<name>); "" when neither. */
void kinesis_stream_name(const char *name_or_arn,
                         char out[TS_KINESIS_ID_BYTES]);

#endif /* TS_DOMAIN_KINESIS_H */
