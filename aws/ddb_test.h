/* Test seam of the DynamoDB client (aws/ddb.c): the pure rules that are
 * easier to check in a table than over HTTP, and a connection counter.
 * Not for production callers. */
#ifndef TS_AWS_DDB_TEST_H
#define TS_AWS_DDB_TEST_H

#include <jansson.h>
#include <stdint.h>

#include "ddb.h"

enum ddb_error_class {
  DDB_CLASS_CONDITION, /* ConditionalCheckFailedException */
  DDB_CLASS_RETRY,     /* throttling, transient, 5xx */
  DDB_CLASS_REJECT,    /* anything else: fix the request */
};

/* Classifies a non-200 answer. type is the __type after '#' (may be "");
 * body is the parsed error body (may be NULL), consulted only for
 * TransactionCanceledException's CancellationReasons. */
enum ddb_error_class ddb_classify_error(long http_status, const char *type,
                                        const json_t *body);

/* Which kind of retryable error an answer of class DDB_CLASS_RETRY is:
 * DDB_RETRY_THROTTLED or DDB_RETRY_TRANSIENT (transport failures have no
 * answer to classify). */
enum ddb_retry_reason ddb_retry_reason_of(long http_status, const char *type);

/* The upper bound of the full-jitter sleep after `attempts_done` failed
 * attempts (>= 1): 25 ms doubling, capped at 1 s. */
uint32_t ddb_backoff_ceiling_ms(unsigned attempts_done);

/* TCP connections the client has opened so far (sum of
 * CURLINFO_NUM_CONNECTS over every attempt). */
uint64_t ddb_client_connects(const struct ddb_client *c);

#endif /* TS_AWS_DDB_TEST_H */
