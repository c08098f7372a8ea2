/* Process metrics in the Prometheus text format (GET /metrics). Counters
 * are lock-free atomics: recording costs a few atomic adds per request. */
#ifndef TS_SERVER_METRICS_H
#define TS_SERVER_METRICS_H

#include "../common/buf.h"
#include "../domain/batch.h"

/* One finished request: its route (index from router_route_index, or -1
 * when no route matched), status and duration. */
void metrics_observe_request(int route, unsigned status, double seconds);

/* The outcomes of one applied batch. */
void metrics_count_batch(const struct batch_counts *c);

/* A request to the store that failed (status name for the label). */
void metrics_count_store_failure(enum ts_status st);

void metrics_inflight_add(int delta);
/* An ingestion refused because workers and queue were full (429), or
 * answered 503 because it waited past its deadline for a worker. */
void metrics_count_shed(void);
void metrics_count_late(void);
/* A batch tried on an HTTP thread, then handed to a worker (request.h). */
void metrics_count_handed_over(void);
/* An HTTP connection opened (+1) or closed (-1). */
void metrics_connections_add(int delta);

/* Why the connection guard closed a connection (server/conn_guard.h). */
enum metrics_conn_close {
  METRICS_CONN_HEADER_DEADLINE,
  METRICS_CONN_BODY_DEADLINE,
  METRICS_CONN_IDLE_DEADLINE,
  METRICS_CONN_EVICTED,
  METRICS_CONN_N
};
void metrics_count_conn_closed(enum metrics_conn_close why);

/* Appends the exposition text. */
void metrics_write(struct buf *b);

/* The Kinesis consumer running in this process (NULL: none), whose totals
 * and per-shard lag /metrics shows. Set before it is used and cleared
 * before it is stopped. */
struct consumer;
void metrics_set_consumer(struct consumer *c);

#endif /* TS_SERVER_METRICS_H */
