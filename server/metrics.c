#include "metrics.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "../aws/ddb.h"
#include "../ops/consumer.h"
#include "../store/store.h"
#include "router.h"

/* Statuses the service answers with, and 499 (HTTP_CLIENT_CLOSED: the
 * connection closed before an answer was made); anything else counts as
 * "other". */
static const unsigned statuses[] = {200, 304, 400, 401, 404, 405, 413,
                                    414, 415, 429, 499, 500, 501, 503};
#define N_STATUS (sizeof statuses / sizeof statuses[0] + 1)
#define MAX_ROUTES 16 /* route table size bound; checked at run time */
#define N_ROUTE_SLOTS (MAX_ROUTES + 1) /* last: no route matched */

/* Histogram upper bounds in seconds; +Inf is the count. */
static const double bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                0.1,   0.25,   0.5,   1,    2.5,   5};
#define N_BOUNDS (sizeof bounds / sizeof bounds[0])

static atomic_uint_fast64_t requests[N_ROUTE_SLOTS][N_STATUS];
static atomic_uint_fast64_t latency_buckets[N_ROUTE_SLOTS][N_BOUNDS];
static atomic_uint_fast64_t latency_count[N_ROUTE_SLOTS];
static atomic_uint_fast64_t latency_sum_us[N_ROUTE_SLOTS];
static atomic_uint_fast64_t
    records[4]; /* applied, duplicate, skipped, rejected */
static atomic_uint_fast64_t modify_without_old, remove_without_old,
    ttl_removes_skipped, held_for_backfill;
static atomic_uint_fast64_t store_failures[3]; /* unavailable, io, other */
static atomic_int inflight, connections;
static atomic_uint_fast64_t shed, late, handed_over;
static atomic_uint_fast64_t conn_closed[METRICS_CONN_N];

static _Atomic(struct consumer *) consumer;
static pthread_mutex_t consumer_mu = PTHREAD_MUTEX_INITIALIZER;

void metrics_set_consumer(struct consumer *c) {
  pthread_mutex_lock(&consumer_mu); /* a scrape in progress finishes first */
  atomic_store(&consumer, c);
  pthread_mutex_unlock(&consumer_mu);
}

static void write_consumer(struct buf *b) {
  pthread_mutex_lock(&consumer_mu);
  struct consumer *c = atomic_load(&consumer);
  if (!c) {
    pthread_mutex_unlock(&consumer_mu);
    return;
  }
  struct consumer_totals t;
  static struct consumer_shard sh[TS_KINESIS_MAX_WORKERS]; /* under the mutex */
  consumer_totals(c, &t);
  size_t n = consumer_shards(c, sh, TS_KINESIS_MAX_WORKERS);
  const struct {
    const char *outcome;
    uint64_t v;
  } rec[] = {{"applied", t.applied},
             {"duplicate", t.duplicates},
             {"skipped", t.skipped},
             {"rejected", t.rejected}};
  buf_adds(b, "# HELP ts_kinesis_records_total Kinesis records read and "
              "applied by this process's consumer, by outcome.\n"
              "# TYPE ts_kinesis_records_total counter\n");
  for (size_t i = 0; i < sizeof rec / sizeof rec[0]; i++)
    buf_addf(b, "ts_kinesis_records_total{outcome=\"%s\"} %llu\n",
             rec[i].outcome, (unsigned long long)rec[i].v);
  buf_addf(b,
           "# HELP ts_kinesis_checkpoints_total Checkpoints written.\n"
           "# TYPE ts_kinesis_checkpoints_total counter\n"
           "ts_kinesis_checkpoints_total %llu\n"
           "# HELP ts_kinesis_leases_taken_total Shard leases taken.\n"
           "# TYPE ts_kinesis_leases_taken_total counter\n"
           "ts_kinesis_leases_taken_total %llu\n"
           "# HELP ts_kinesis_leases_lost_total Shard leases lost (taken "
           "over, or not renewed in time).\n"
           "# TYPE ts_kinesis_leases_lost_total counter\n"
           "ts_kinesis_leases_lost_total %llu\n"
           "# HELP ts_kinesis_read_errors_total Kinesis calls that failed.\n"
           "# TYPE ts_kinesis_read_errors_total counter\n"
           "ts_kinesis_read_errors_total %llu\n"
           "# HELP ts_kinesis_shards_held Shards this process reads now.\n"
           "# TYPE ts_kinesis_shards_held gauge\n"
           "ts_kinesis_shards_held %zu\n",
           (unsigned long long)t.checkpoints,
           (unsigned long long)t.leases_taken,
           (unsigned long long)t.leases_lost, (unsigned long long)t.read_errors,
           t.shards_held);
  buf_adds(b, "# HELP ts_kinesis_millis_behind_latest GetRecords' "
              "MillisBehindLatest of each held shard's last read.\n"
              "# TYPE ts_kinesis_millis_behind_latest gauge\n");
  for (size_t i = 0; i < n; i++)
    if (sh[i].millis_behind >= 0)
      buf_addf(b, "ts_kinesis_millis_behind_latest{shard=\"%s\"} %lld\n",
               sh[i].shard, (long long)sh[i].millis_behind);
  pthread_mutex_unlock(&consumer_mu);
}

static size_t route_slot(int route) {
  return route >= 0 && route < MAX_ROUTES ? (size_t)route : MAX_ROUTES;
}

void metrics_observe_request(int route, unsigned status, double seconds) {
  size_t r = route_slot(route), s = N_STATUS - 1;
  for (size_t i = 0; i < N_STATUS - 1; i++)
    if (statuses[i] == status)
      s = i;
  atomic_fetch_add_explicit(&requests[r][s], 1, memory_order_relaxed);
  for (size_t i = 0; i < N_BOUNDS; i++)
    if (seconds <= bounds[i])
      atomic_fetch_add_explicit(&latency_buckets[r][i], 1,
                                memory_order_relaxed);
  atomic_fetch_add_explicit(&latency_count[r], 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&latency_sum_us[r],
                            (uint_fast64_t)(seconds * 1e6 + 0.5),
                            memory_order_relaxed);
}

void metrics_count_batch(const struct batch_counts *c) {
  atomic_fetch_add_explicit(&records[0], c->applied, memory_order_relaxed);
  atomic_fetch_add_explicit(&records[1], c->duplicates, memory_order_relaxed);
  atomic_fetch_add_explicit(&records[2], c->skipped, memory_order_relaxed);
  atomic_fetch_add_explicit(&records[3], c->rejected, memory_order_relaxed);
  atomic_fetch_add_explicit(&modify_without_old, c->modify_without_old,
                            memory_order_relaxed);
  atomic_fetch_add_explicit(&remove_without_old, c->remove_without_old,
                            memory_order_relaxed);
  atomic_fetch_add_explicit(&ttl_removes_skipped, c->ttl_removes_skipped,
                            memory_order_relaxed);
  atomic_fetch_add_explicit(&held_for_backfill, c->held, memory_order_relaxed);
}

void metrics_count_store_failure(enum ts_status st) {
  size_t i = st == TS_ERR_UNAVAILABLE ? 0 : st == TS_ERR_IO ? 1 : 2;
  atomic_fetch_add_explicit(&store_failures[i], 1, memory_order_relaxed);
}

void metrics_count_shed(void) {
  atomic_fetch_add_explicit(&shed, 1, memory_order_relaxed);
}

void metrics_count_late(void) {
  atomic_fetch_add_explicit(&late, 1, memory_order_relaxed);
}

void metrics_count_handed_over(void) {
  atomic_fetch_add_explicit(&handed_over, 1, memory_order_relaxed);
}

void metrics_count_conn_closed(enum metrics_conn_close why) {
  if (why < METRICS_CONN_N)
    atomic_fetch_add_explicit(&conn_closed[why], 1, memory_order_relaxed);
}

void metrics_connections_add(int delta) {
  atomic_fetch_add_explicit(&connections, delta, memory_order_relaxed);
}

void metrics_inflight_add(int delta) {
  atomic_fetch_add_explicit(&inflight, delta, memory_order_relaxed);
}

static uint64_t load(atomic_uint_fast64_t *v) {
  return atomic_load_explicit(v, memory_order_relaxed);
}

static const char *slot_name(size_t r) {
  const char *name = r < MAX_ROUTES ? router_route_name(r) : NULL;
  return name ? name : "none";
}

void metrics_write(struct buf *b) {
  size_t n_routes = router_route_count();
  if (n_routes > MAX_ROUTES)
    n_routes = MAX_ROUTES;

  buf_adds(b, "# HELP ts_build_info Build of the running tourney-stats.\n"
              "# TYPE ts_build_info gauge\n");
  buf_addf(b, "ts_build_info{version=\"%s\"} 1\n", TS_VERSION);

  buf_adds(b, "# HELP ts_http_requests_total HTTP requests answered, by "
              "route and status.\n# TYPE ts_http_requests_total counter\n");
  for (size_t r = 0; r < N_ROUTE_SLOTS; r++) {
    if (r >= n_routes && r != MAX_ROUTES)
      continue;
    for (size_t s = 0; s < N_STATUS; s++) {
      uint64_t v = load(&requests[r][s]);
      if (!v)
        continue;
      if (s < N_STATUS - 1)
        buf_addf(b, "ts_http_requests_total{route=\"%s\",status=\"%u\"} %llu\n",
                 slot_name(r), statuses[s], (unsigned long long)v);
      else
        buf_addf(b,
                 "ts_http_requests_total{route=\"%s\",status=\"other\"} %llu\n",
                 slot_name(r), (unsigned long long)v);
    }
  }

  buf_adds(b, "# HELP ts_http_request_duration_seconds Time from the first "
              "byte of a request to its answer.\n"
              "# TYPE ts_http_request_duration_seconds histogram\n");
  for (size_t r = 0; r < N_ROUTE_SLOTS; r++) {
    uint64_t count = load(&latency_count[r]);
    if (!count)
      continue;
    const char *name = slot_name(r);
    for (size_t i = 0; i < N_BOUNDS; i++)
      buf_addf(b,
               "ts_http_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"}"
               " %llu\n",
               name, bounds[i],
               (unsigned long long)load(&latency_buckets[r][i]));
    buf_addf(b,
             "ts_http_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"}"
             " %llu\n",
             name, (unsigned long long)count);
    buf_addf(b, "ts_http_request_duration_seconds_sum{route=\"%s\"} %.6f\n",
             name, (double)load(&latency_sum_us[r]) / 1e6);
    buf_addf(b, "ts_http_request_duration_seconds_count{route=\"%s\"} %llu\n",
             name, (unsigned long long)count);
  }

  static const char *const outcomes[] = {"applied", "duplicate", "skipped",
                                         "rejected"};
  buf_adds(b, "# HELP ts_ingest_records_total Stream records by outcome.\n"
              "# TYPE ts_ingest_records_total counter\n");
  for (size_t i = 0; i < 4; i++)
    buf_addf(b, "ts_ingest_records_total{outcome=\"%s\"} %llu\n", outcomes[i],
             (unsigned long long)load(&records[i]));
  buf_addf(b,
           "# HELP ts_ingest_modify_without_old_image_total MODIFY records "
           "without OldImage (the new game was added).\n"
           "# TYPE ts_ingest_modify_without_old_image_total counter\n"
           "ts_ingest_modify_without_old_image_total %llu\n"
           "# HELP ts_ingest_remove_without_old_image_total REMOVE records "
           "without OldImage (skipped).\n"
           "# TYPE ts_ingest_remove_without_old_image_total counter\n"
           "ts_ingest_remove_without_old_image_total %llu\n"
           "# HELP ts_ingest_ttl_removes_skipped_total REMOVE records made "
           "by DynamoDB's TTL, skipped (TS_TTL_REMOVES=skip).\n"
           "# TYPE ts_ingest_ttl_removes_skipped_total counter\n"
           "ts_ingest_ttl_removes_skipped_total %llu\n"
           "# HELP ts_ingest_held_for_backfill_total Applied records held "
           "for an open backfill: they would take a player below zero, and "
           "their change settles with the backfill.\n"
           "# TYPE ts_ingest_held_for_backfill_total counter\n"
           "ts_ingest_held_for_backfill_total %llu\n",
           (unsigned long long)load(&modify_without_old),
           (unsigned long long)load(&remove_without_old),
           (unsigned long long)load(&ttl_removes_skipped),
           (unsigned long long)load(&held_for_backfill));

  static const char *const failures[] = {"unavailable", "io", "other"};
  buf_adds(b, "# HELP ts_store_failures_total Batches or reads the store "
              "could not serve.\n# TYPE ts_store_failures_total counter\n");
  for (size_t i = 0; i < 3; i++)
    buf_addf(b, "ts_store_failures_total{kind=\"%s\"} %llu\n", failures[i],
             (unsigned long long)load(&store_failures[i]));

  /* DynamoDB's own accounting (aws/ddb.h): what the calls cost. */
  struct ddb_consumed cap[DDB_CAPACITY_TABLES];
  size_t n_cap = ddb_consumed_snapshot(cap, DDB_CAPACITY_TABLES);
  buf_adds(b, "# HELP ts_dynamodb_consumed_capacity_units_total Capacity "
              "units DynamoDB reported consumed (ReturnConsumedCapacity), "
              "by table and kind.\n"
              "# TYPE ts_dynamodb_consumed_capacity_units_total counter\n");
  for (size_t i = 0; i < n_cap; i++) {
    buf_addf(b,
             "ts_dynamodb_consumed_capacity_units_total{table=\"%s\","
             "kind=\"read\"} %.6f\n",
             cap[i].table, cap[i].read_units);
    buf_addf(b,
             "ts_dynamodb_consumed_capacity_units_total{table=\"%s\","
             "kind=\"write\"} %.6f\n",
             cap[i].table, cap[i].write_units);
  }

  buf_adds(b, "# HELP ts_aws_retryable_errors_total AWS calls that failed "
              "with a retryable error, by service and reason (throttled, "
              "transient, transport); each was sent again unless its "
              "deadline had come.\n"
              "# TYPE ts_aws_retryable_errors_total counter\n");
  static const enum ddb_service aws_services[] = {DDB_SERVICE_DYNAMODB,
                                                  DDB_SERVICE_KINESIS};
  for (size_t i = 0; i < sizeof aws_services / sizeof aws_services[0]; i++)
    for (unsigned r = 0; r < DDB_RETRY_REASONS; r++)
      buf_addf(b,
               "ts_aws_retryable_errors_total{service=\"%s\",reason=\"%s\"} "
               "%llu\n",
               ddb_service_name(aws_services[i]),
               ddb_retry_reason_name((enum ddb_retry_reason)r),
               (unsigned long long)ddb_retry_count(aws_services[i],
                                                   (enum ddb_retry_reason)r));

  buf_adds(b, "# HELP ts_aws_call_waits_total AWS calls that waited for a "
              "place among those in flight at once (TS_DDB_MAX_IN_FLIGHT "
              "for DynamoDB) before they were sent, by service.\n"
              "# TYPE ts_aws_call_waits_total counter\n");
  for (size_t i = 0; i < sizeof aws_services / sizeof aws_services[0]; i++)
    buf_addf(b, "ts_aws_call_waits_total{service=\"%s\"} %llu\n",
             ddb_service_name(aws_services[i]),
             (unsigned long long)ddb_wait_count(aws_services[i]));

  uint64_t held, failed;
  store_write_guess_counts(&held, &failed);
  buf_addf(b,
           "# HELP ts_dynamodb_write_guesses_total Player items written "
           "without reading them first (what this process wrote last), by "
           "whether the write's condition held (a resend failing on its own "
           "first copy counts as held); a failed one was then read and "
           "written.\n"
           "# TYPE ts_dynamodb_write_guesses_total counter\n"
           "ts_dynamodb_write_guesses_total{outcome=\"held\"} %llu\n"
           "ts_dynamodb_write_guesses_total{outcome=\"failed\"} %llu\n",
           (unsigned long long)held, (unsigned long long)failed);
  store_new_player_guess_counts(&held, &failed);
  buf_addf(b,
           "# HELP ts_dynamodb_new_player_guesses_total Players this process "
           "knew nothing of written as new without reading them first, by "
           "whether the write's condition (no item yet) held (a resend "
           "failing on its own first copy counts as held); a failed one was "
           "then read and written.\n"
           "# TYPE ts_dynamodb_new_player_guesses_total counter\n"
           "ts_dynamodb_new_player_guesses_total{outcome=\"held\"} %llu\n"
           "ts_dynamodb_new_player_guesses_total{outcome=\"failed\"} %llu\n",
           (unsigned long long)held, (unsigned long long)failed);
  uint64_t early_batch, early_alone;
  store_early_transaction_counts(&early_batch, &early_alone);
  buf_addf(b,
           "# HELP ts_sqlite_early_transactions_total SQLite write "
           "transactions begun before their batch came (its body complete, "
           "or after a group of HTTP batches), by whether a batch came "
           "within the wait or the housekeeping committed alone.\n"
           "# TYPE ts_sqlite_early_transactions_total counter\n"
           "ts_sqlite_early_transactions_total{outcome=\"batch\"} %llu\n"
           "ts_sqlite_early_transactions_total{outcome=\"alone\"} %llu\n",
           (unsigned long long)early_batch, (unsigned long long)early_alone);
  buf_addf(b,
           "# HELP ts_dynamodb_lost_writes_total Player writes whose "
           "condition failed because another writer changed the item first; "
           "the player was then read and decided again.\n"
           "# TYPE ts_dynamodb_lost_writes_total counter\n"
           "ts_dynamodb_lost_writes_total %llu\n",
           (unsigned long long)store_lost_write_count());
  buf_addf(b,
           "# HELP ts_dynamodb_turn_waits_total Batch players that waited "
           "for another batch of this process to write them first, instead "
           "of racing it.\n"
           "# TYPE ts_dynamodb_turn_waits_total counter\n"
           "ts_dynamodb_turn_waits_total %llu\n",
           (unsigned long long)store_turn_wait_count());

  buf_addf(b,
           "# HELP ts_http_requests_in_flight Requests being served.\n"
           "# TYPE ts_http_requests_in_flight gauge\n"
           "ts_http_requests_in_flight %d\n",
           atomic_load_explicit(&inflight, memory_order_relaxed));
  buf_addf(b,
           "# HELP ts_http_connections_open HTTP connections open now.\n"
           "# TYPE ts_http_connections_open gauge\n"
           "ts_http_connections_open %d\n",
           atomic_load_explicit(&connections, memory_order_relaxed));
  buf_addf(b,
           "# HELP ts_ingest_shed_total Batches answered 429: ingest "
           "workers + queue batches in progress already.\n"
           "# TYPE ts_ingest_shed_total counter\n"
           "ts_ingest_shed_total %llu\n"
           "# HELP ts_ingest_late_total Batches answered 503 because they "
           "waited past their deadline for a worker.\n"
           "# TYPE ts_ingest_late_total counter\n"
           "ts_ingest_late_total %llu\n"
           "# HELP ts_ingest_handed_over_total Batches tried on an HTTP "
           "thread (DynamoDB, small bodies) that the store did not answer "
           "within the try, then handed to a worker.\n"
           "# TYPE ts_ingest_handed_over_total counter\n"
           "ts_ingest_handed_over_total %llu\n",
           (unsigned long long)load(&shed), (unsigned long long)load(&late),
           (unsigned long long)load(&handed_over));

  static const char *const closed[METRICS_CONN_N] = {
      "header_deadline", "body_deadline", "idle_deadline", "evicted"};
  buf_adds(b, "# HELP ts_http_connections_closed_total Connections the "
              "server closed: a phase past its deadline, or evicted near "
              "the connection limit.\n"
              "# TYPE ts_http_connections_closed_total counter\n");
  for (size_t i = 0; i < METRICS_CONN_N; i++)
    buf_addf(b, "ts_http_connections_closed_total{reason=\"%s\"} %llu\n",
             closed[i], (unsigned long long)load(&conn_closed[i]));
  write_consumer(b);
}
