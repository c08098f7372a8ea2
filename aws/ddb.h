/* A client of AWS's JSON-protocol APIs (DynamoDB, Kinesis Data Streams):
 * signed POSTs to the endpoint over reused connections, several calls in
 * parallel, transient failures retried with exponential backoff and full
 * jitter until a deadline. One client speaks to one service; what differs
 * between services (content type, X-Amz-Target prefix, signing name,
 * endpoint variable) is a row of a table in ddb.c, so every rule of the
 * transport is written once.
 *
 * Endpoint: AWS_ENDPOINT_URL_<SERVICE> (AWS_ENDPOINT_URL_DYNAMODB,
 * AWS_ENDPOINT_URL_KINESIS), then AWS_ENDPOINT_URL, then
 * https://<service>.<region>.amazonaws.com. */
#ifndef TS_AWS_DDB_H
#define TS_AWS_DDB_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/status.h"
#include "creds.h"

struct ddb_client;

/* The services one client can speak to. */
enum ddb_service {
  DDB_SERVICE_DYNAMODB = 0, /* x-amz-json-1.0, DynamoDB_20120810.<Op> */
  DDB_SERVICE_KINESIS,      /* x-amz-json-1.1, Kinesis_20131202.<Op> */
};

struct ddb_options {
  const char *region;       /* required */
  const char *endpoint;     /* NULL: from the environment, then the default */
  enum ddb_service service; /* zero: DynamoDB */
};

/* creds is borrowed and must outlive the client. */
enum ts_status ddb_client_new(const struct ddb_options *opt,
                              struct aws_creds_provider *creds,
                              struct ddb_client **out) TS_WARN_UNUSED;
void ddb_client_free(struct ddb_client *c);
/* At most n attempts in flight at once over all of the client's calls
 * (each on a connection of its own); 0: TS_DEFAULT_DDB_MAX_IN_FLIGHT, the
 * default. Others wait for a place within their deadline. Before the
 * client's first call. */
void ddb_client_set_max_in_flight(struct ddb_client *c, unsigned n);
const char *ddb_client_endpoint(const struct ddb_client *c);

/* A client made from the environment, the one way every command does it:
 * region from aws_region_resolve(); without one, a set endpoint
 * (AWS_ENDPOINT_URL_DYNAMODB, then AWS_ENDPOINT_URL: dynalite, DynamoDB
 * Local) signs as us-east-1, since a local endpoint still needs a region
 * to sign with while real DynamoDB needs the right one; credentials from
 * aws_creds_provider_new's chain. On TS_OK the caller owns *creds and
 * *client (free the client first) and, when region is not NULL, *region
 * (the region used, malloc'd). TS_ERR_INVALID (logged) when there is no
 * region. */
enum ts_status ddb_client_from_env(struct aws_creds_provider **creds,
                                   struct ddb_client **client,
                                   char **region) TS_WARN_UNUSED;
/* ddb_client_from_env for any service (its endpoint variable decides
 * whether a missing region may default to us-east-1). */
enum ts_status ddb_client_from_env_for(enum ddb_service service,
                                       struct aws_creds_provider **creds,
                                       struct ddb_client **client,
                                       char **region) TS_WARN_UNUSED;

enum ddb_outcome {
  DDB_DONE,             /* 200: response holds the body */
  DDB_CONDITION_FAILED, /* ConditionalCheckFailedException: not retried */
  DDB_REJECTED,         /* a non-retryable error (ValidationException,
                           ResourceNotFoundException, AccessDenied,
                           Kinesis's ExpiredIteratorException...) */
  DDB_GAVE_UP,          /* retryable errors until the deadline */
};

/* One API call. Fill op and request; ddb_execute fills the rest. */
struct ddb_call {
  const char *op;        /* "GetItem", "PutItem", ...; "GetRecords", ... */
  const json_t *request; /* borrowed */
  /* Borrowed, instead of request: the request as one compact JSON object
   * (text), for a hot call whose body is cheaper to write than to build
   * and dump. It must not set ReturnConsumedCapacity (added here). */
  const char *request_text;
  enum ddb_outcome outcome;
  long http_status;    /* of the last attempt, 0 if none answered */
  json_t *response;    /* owned: the parsed body (DDB_DONE, and for
                          DDB_CONDITION_FAILED the error body, which
                          holds "Item" with ReturnValuesOnCondition-
                          CheckFailure=ALL_OLD) */
  char error_type[96]; /* e.g. "ConditionalCheckFailedException" */
  char error_message[256];
  unsigned attempts;
};
void ddb_call_clear(struct ddb_call *call);

/* Runs the calls concurrently. Each call is retried (re-signed) while its
 * failure is retryable: HTTP 5xx, connection errors and timeouts,
 * throttling (ProvisionedThroughputExceededException, ThrottlingException,
 * RequestLimitExceeded, LimitExceededException, Kinesis's
 * KMSThrottlingException, ...), a response whose
 * x-amz-crc32 does not match its body, or a body that is not JSON; backoff
 * is full jitter, base 25 ms, doubling, capped at 1 s, never sleeping past
 * deadline_ms (monotonic ms, see clock_now_ms). Returns TS_OK when every
 * call has an outcome (check each), TS_ERR_NOMEM, or TS_ERR_UNAVAILABLE
 * when credentials could not be had. */
enum ts_status ddb_execute(struct ddb_client *c, struct ddb_call *calls,
                           size_t n, uint64_t deadline_ms) TS_WARN_UNUSED;

/* DynamoDB capacity consumed, summed over the process's life. Every data call
 * (GetItem, PutItem, DeleteItem, UpdateItem, BatchGetItem, BatchWriteItem,
 * Query, Scan) is sent with ReturnConsumedCapacity=TOTAL unless the request
 * sets it; the ConsumedCapacity of each answer (one object, or an array
 * per table for the batch calls) is added per table, as read units for
 * reads and write units for writes. What DynamoDB does not report is not
 * counted: a write refused by its condition is charged by DynamoDB but its
 * error answer carries no ConsumedCapacity. At most DDB_CAPACITY_TABLES
 * tables are told apart; later ones are summed under "(other)". */
#define DDB_CAPACITY_TABLES 16u
struct ddb_consumed {
  char table[256];
  double read_units, write_units;
};
/* Copies up to cap rows, in first-seen order; returns how many. */
size_t ddb_consumed_snapshot(struct ddb_consumed *out, size_t cap);

/* Failed attempts whose error was retryable, summed over the process's
 * life per service: each was sent again unless its deadline had come.
 * throttled: a throttling error or HTTP 429 (DynamoDB's capacity, an
 * account limit); transient: HTTP 5xx, a transaction conflict, DynamoDB's
 * own timeouts; transport: no HTTP answer (refused, reset, timed out), or
 * one whose body is not JSON or fails its x-amz-crc32. */
enum ddb_retry_reason {
  DDB_RETRY_THROTTLED = 0,
  DDB_RETRY_TRANSIENT,
  DDB_RETRY_TRANSPORT,
  DDB_RETRY_REASONS
};
uint64_t ddb_retry_count(enum ddb_service service, enum ddb_retry_reason r);
/* Attempts that waited for a place (ddb_client_set_max_in_flight) before
 * they were sent, summed over the process's life per service. */
uint64_t ddb_wait_count(enum ddb_service service);
/* "throttled", "transient", "transport". */
const char *ddb_retry_reason_name(enum ddb_retry_reason r);
/* "dynamodb", "kinesis" (the signing name). */
const char *ddb_service_name(enum ddb_service service);

#endif /* TS_AWS_DDB_H */
