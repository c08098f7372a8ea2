/* The Kinesis consumer: reads a Kinesis data stream that carries DynamoDB
 * change records ("Kinesis Data Streams for DynamoDB") and applies them to
 * the store exactly once, sharing the shards with other consumers of the
 * same store through leases (domain/kinesis.h, store_lease_get/put).
 *
 * Threads: one coordinator lists the shards (ListShards, every
 * TS_KINESIS_LIST_MS) and looks at their leases (every
 * TS_KINESIS_SCAN_LEASES_MS), taking free ones for readable shards (their
 * parents read to their end) up to its share; one worker per held shard:
 * GetShardIterator (AFTER_SEQUENCE_NUMBER the checkpoint, else
 * TRIM_HORIZON), then GetRecords, each batch applied (batch_new_with +
 * store_apply: the same decision as POST /v1/stream-records) and then the
 * checkpoint written, conditioned on the lease's version. A worker stops
 * when its lease is lost (a refused write, or no successful write for the
 * lease time less its margin), at the shard's end (the lease is marked
 * finished, children become readable), or on consumer_stop (the lease is
 * released so another consumer takes it at once).
 *
 * Guarantees: every record of a shard is applied before its checkpoint
 * passes it, so a crash loses nothing; records between the last checkpoint
 * and a crash are read again and counted as duplicates by their inner
 * eventID. */
#ifndef TS_OPS_CONSUMER_H
#define TS_OPS_CONSUMER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/status.h"
#include "../domain/batch.h"
#include "../store/store.h"

struct consumer_options {
  const char *stream; /* name or ARN (required) */
  const char *owner;  /* lease owner id; NULL: "<host>-<pid>-<random>" */
  uint32_t lease_ms;  /* 0: TS_KINESIS_LEASE_MS */
  uint32_t poll_ms;   /* 0: TS_KINESIS_POLL_MS */
  uint32_t limit;     /* GetRecords Limit; 0: TS_KINESIS_GET_RECORDS_LIMIT */
  struct batch_options batch;
};

struct consumer;

/* Makes the Kinesis client (ddb_client_from_env_for: AWS_REGION,
 * AWS_ENDPOINT_URL_KINESIS, the credential chain) and starts the threads.
 * store is borrowed and must outlive the consumer. */
enum ts_status consumer_start(struct store *store,
                              const struct consumer_options *opt,
                              struct consumer **out) TS_WARN_UNUSED;
/* Stops every thread, releases the leases held, frees. NULL is fine. */
void consumer_stop(struct consumer *c);

/* Totals since start, for logs and /metrics. */
struct consumer_totals {
  uint64_t read, applied, duplicates, skipped, rejected; /* records */
  uint64_t batches, checkpoints, leases_taken, leases_lost, read_errors;
  size_t shards_held;
};
void consumer_totals(struct consumer *c, struct consumer_totals *out);

/* Per held shard: its id and MillisBehindLatest of its last read (-1
 * before the first). Fills up to cap; returns how many. */
struct consumer_shard {
  char shard[TS_KINESIS_ID_BYTES];
  int64_t millis_behind;
  uint64_t records;
};
size_t consumer_shards(struct consumer *c, struct consumer_shard *out,
                       size_t cap);

const char *consumer_owner(const struct consumer *c);

#endif /* TS_OPS_CONSUMER_H */
