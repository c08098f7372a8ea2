/* The source table (TaTourney, the games the stats come from), read whole
 * with a parallel, rate-bounded Scan: what `backfill --source-table` and
 * `verify --source-table` are built on.
 *
 * Reads are strongly consistent (a backfill must see every write that
 * finished before it read the page) and each segment runs in its own
 * thread; the item callback is never called by two threads at once. */
#ifndef TS_OPS_SOURCE_H
#define TS_OPS_SOURCE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "../common/status.h"

struct source; /* opaque */

struct source_options {
  const char *table; /* required: the source table */
  unsigned segments; /* parallel Scan segments (threads); 0: default
                        TS_SCAN_SEGMENTS_DEFAULT (4); at most
                        TS_SCAN_SEGMENTS_MAX */
  double max_rcu;    /* read capacity units per second summed over all
                        segments; 0: unbounded */
  FILE *progress;    /* NULL: quiet; else about once a second one line
                        (pages, items, items/s, ETA from the table's
                        ItemCount, "ETA unknown" when it is 0) and a final
                        summary line */
};

/* Makes a DynamoDB client from the environment exactly as the DynamoDB
 * store does (ddb_client_from_env: AWS_REGION; AWS_ENDPOINT_URL_DYNAMODB
 * then AWS_ENDPOINT_URL; a local endpoint without region signs as
 * us-east-1; the standard credential chain) and calls DescribeTable for
 * the key schema and ItemCount. TS_ERR_INVALID for bad options or no
 * region, TS_ERR_NOT_FOUND when the table does not exist, TS_ERR_UNAVAILABLE
 * when DynamoDB could not be reached, TS_ERR_IO when it refused (access
 * denied...); each is logged. */
enum ts_status source_open(const struct source_options *opt,
                           struct source **out) TS_WARN_UNUSED;
void source_free(struct source *s);

/* The table's key attribute names: hash key first, then the range key if
 * any. source_key_name returns NULL for i >= source_key_count. */
size_t source_key_count(const struct source *s);
const char *source_key_name(const struct source *s, size_t i);
/* DescribeTable's ItemCount: approximate (DynamoDB updates it about every
 * 6 hours; dynalite always says 0). */
int64_t source_item_count(const struct source *s);

/* Called once per scanned item; item is a DynamoDB-JSON object
 * ({"player":{"S":"a"},...}) borrowed for the call. Calls are serialised
 * (never two at once) and come from the segment threads. Returning
 * anything but TS_OK stops the scan (all segments; no call follows) and
 * source_scan returns that status. */
typedef enum ts_status (*source_item_fn)(void *cls, const json_t *item);

struct source_stats {
  uint64_t pages, items; /* items: calls of the callback */
  double rcu;            /* ConsumedCapacity summed over the pages */
  double seconds;        /* wall time of the scan */
};

/* Scans the whole table once: TotalSegments = segments, each segment in
 * its own thread, pages followed through LastEvaluatedKey, ConsistentRead.
 * A page that ddb_execute gave up on (throttling, 5xx, timeouts until
 * TS_SCAN_PAGE_DEADLINE_MS) is tried again TS_SCAN_PAGE_RETRIES times
 * with backoff, then the scan fails with TS_ERR_UNAVAILABLE.
 *
 * max_rcu: a token bucket shared by the segments, filled at max_rcu per
 * second (starting empty, holding at most one second's worth) and charged
 * with each page's ConsumedCapacity.CapacityUnits; a page starts only
 * while the bucket is not in debt, having reserved its estimated cost. So
 * the consumption over any whole scan stays at or under max_rcu per second
 * plus what the last pages in flight cost: a page's Limit is sized from
 * the units per item of the latest page so that a page costs about
 * max_rcu / segments / TS_SCAN_PAGE_RATE_DIVISOR (half a second's share),
 * so a scan of C units lasts at least C / max_rcu - 1 s.
 *
 * Returns TS_OK when every segment reached its end, else the first
 * failure (the callback's status, TS_ERR_NOT_FOUND when the table went
 * away, TS_ERR_UNAVAILABLE, TS_ERR_IO, TS_ERR_NOMEM). *out (may be NULL)
 * is filled either way. */
enum ts_status source_scan(struct source *s, source_item_fn fn, void *cls,
                           struct source_stats *out) TS_WARN_UNUSED;

#endif /* TS_OPS_SOURCE_H */
