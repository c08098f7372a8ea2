/* The source table read with a parallel, rate-bounded Scan (see source.h).
 *
 * One scan is a `struct run`: the segment threads share its token bucket,
 * its counters and its first failure under `mu`; `fn_mu` serialises the
 * callback (kept apart so that a slow callback never holds up the bucket
 * or the progress lines). The calling thread waits for the segments and
 * writes the progress lines meanwhile. */
#include "source.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../aws/creds.h"
#include "../aws/ddb.h"
#include "../common/backoff.h"
#include "../common/bounds.h"
#include "../common/clock.h"
#include "../common/log.h"

struct source {
  char *table;
  unsigned segments;
  double max_rcu;
  FILE *progress;
  struct aws_creds_provider *creds;
  struct ddb_client *client;
  char *keys[2]; /* hash, then range (NULL when none) */
  size_t n_keys;
  int64_t item_count;
};

/* ---- open: client, DescribeTable ---- */

/* Fills s->keys from DescribeTable's KeySchema: exactly one HASH, at most
 * one RANGE, in that order whatever the order of the array. */
static enum ts_status keys_from(struct source *s, const json_t *schema) {
  const char *hash = NULL, *range = NULL;
  size_t i;
  json_t *k;
  json_array_foreach(schema, i, k) {
    const char *name = json_string_value(json_object_get(k, "AttributeName"));
    const char *type = json_string_value(json_object_get(k, "KeyType"));
    if (!name || !type)
      return TS_ERR_IO;
    if (strcmp(type, "HASH") == 0 && !hash)
      hash = name;
    else if (strcmp(type, "RANGE") == 0 && !range)
      range = name;
    else
      return TS_ERR_IO;
  }
  if (!hash)
    return TS_ERR_IO;
  if (!(s->keys[s->n_keys++] = strdup(hash)))
    return TS_ERR_NOMEM;
  if (range && !(s->keys[s->n_keys++] = strdup(range)))
    return TS_ERR_NOMEM;
  return TS_OK;
}

static enum ts_status describe(struct source *s) {
  json_t *req = json_pack("{s:s}", "TableName", s->table);
  if (!req)
    return TS_ERR_NOMEM;
  struct ddb_call call = {.op = "DescribeTable", .request = req};
  enum ts_status st = ddb_execute(s->client, &call, 1,
                                  clock_now_ms() + TS_SCAN_PAGE_DEADLINE_MS);
  if (st == TS_ERR_UNAVAILABLE ||
      (st == TS_OK && call.outcome == DDB_GAVE_UP)) {
    log_event(LOG_ERROR, "cannot reach DynamoDB", "{s:s, s:s, s:s, s:s}",
              "endpoint", ddb_client_endpoint(s->client), "table", s->table,
              "error", call.error_type, "message", call.error_message);
    st = TS_ERR_UNAVAILABLE;
    goto out;
  }
  if (st != TS_OK)
    goto out;
  if (call.outcome != DDB_DONE) {
    bool missing = strcmp(call.error_type, "ResourceNotFoundException") == 0;
    log_event(LOG_ERROR,
              missing ? "source table does not exist"
                      : "DynamoDB refused DescribeTable",
              "{s:s, s:s, s:s, s:s}", "endpoint",
              ddb_client_endpoint(s->client), "table", s->table, "error",
              call.error_type, "message", call.error_message);
    st = missing ? TS_ERR_NOT_FOUND : TS_ERR_IO;
    goto out;
  }
  json_t *table = json_object_get(call.response, "Table");
  st = keys_from(s, json_object_get(table, "KeySchema"));
  if (st == TS_ERR_IO)
    log_event(LOG_ERROR, "DescribeTable answered no usable KeySchema", "{s:s}",
              "table", s->table);
  json_int_t count = json_integer_value(json_object_get(table, "ItemCount"));
  s->item_count = count > 0 ? (int64_t)count : 0;
out:
  ddb_call_clear(&call);
  json_decref(req);
  return st;
}

enum ts_status source_open(const struct source_options *opt,
                           struct source **out) {
  enum ts_status st = TS_ERR_INVALID;
  char *region = NULL;
  *out = NULL;
  if (!opt || !opt->table || !*opt->table ||
      opt->segments > TS_SCAN_SEGMENTS_MAX || !isfinite(opt->max_rcu) ||
      opt->max_rcu < 0) {
    log_event(LOG_ERROR,
              "source: bad options (a table is required, segments at most "
              "segments_max, max_rcu finite and not negative)",
              "{s:i}", "segments_max", (int)TS_SCAN_SEGMENTS_MAX);
    return TS_ERR_INVALID;
  }
  struct source *s = calloc(1, sizeof *s);
  if (!s)
    return TS_ERR_NOMEM;
  s->segments = opt->segments ? opt->segments : TS_SCAN_SEGMENTS_DEFAULT;
  s->max_rcu = opt->max_rcu;
  s->progress = opt->progress;
  st = TS_ERR_NOMEM;
  if (!(s->table = strdup(opt->table)))
    goto fail;
  if ((st = ddb_client_from_env(&s->creds, &s->client, &region)) != TS_OK)
    goto fail;
  st = describe(s);
  if (st == TS_OK)
    log_event(LOG_INFO, "source table", "{s:s, s:s, s:s, s:s, s:s?, s:I}",
              "endpoint", ddb_client_endpoint(s->client), "region", region,
              "table", s->table, "hash_key", s->keys[0], "range_key",
              s->n_keys > 1 ? s->keys[1] : NULL, "item_count",
              (json_int_t)s->item_count);
  free(region);
  if (st != TS_OK)
    goto fail;
  *out = s;
  return TS_OK;
fail:
  source_free(s);
  return st;
}

void source_free(struct source *s) {
  if (!s)
    return;
  ddb_client_free(s->client); /* before the creds it borrows */
  aws_creds_provider_free(s->creds);
  for (size_t i = 0; i < s->n_keys; i++)
    free(s->keys[i]);
  free(s->table);
  free(s);
}

size_t source_key_count(const struct source *s) { return s->n_keys; }

const char *source_key_name(const struct source *s, size_t i) {
  return i < s->n_keys ? s->keys[i] : NULL;
}

int64_t source_item_count(const struct source *s) { return s->item_count; }

/* ---- one scan ---- */

struct run {
  struct source *s;
  source_item_fn fn;
  void *cls;
  pthread_mutex_t mu; /* everything below but what fn_mu guards */
  pthread_cond_t cv;  /* on CLOCK_MONOTONIC: stop, a segment's end */
  pthread_mutex_t fn_mu;
  atomic_bool stop;   /* read without mu on the hot paths */
  enum ts_status st;  /* the first failure */
  unsigned running;   /* segment threads not yet finished */
  double tokens;      /* the bucket (max_rcu > 0); negative: in debt */
  uint64_t filled_ms; /* when tokens were last topped up */
  double per_item;    /* units per item of the latest page with items */
  uint64_t pages, items;
  double rcu;
  uint64_t start_ms;
};

struct segment {
  struct run *r;
  unsigned index;
  pthread_t thread;
};

/* Waits on r->cv for at most ms (mu held). r->cv runs on CLOCK_MONOTONIC. */
static void wait_ms(struct run *r, uint64_t ms) {
  struct timespec ts = clock_deadline_abs(CLOCK_MONOTONIC, ms);
  pthread_cond_timedwait(&r->cv, &r->mu, &ts);
}

/* Records the first failure and stops every segment. */
static void fail(struct run *r, enum ts_status st) {
  pthread_mutex_lock(&r->mu);
  if (r->st == TS_OK)
    r->st = st;
  atomic_store(&r->stop, true);
  pthread_cond_broadcast(&r->cv);
  pthread_mutex_unlock(&r->mu);
}

/* Sleeps ms unless the scan stops first; false when it stopped. */
static bool pause_ms(struct run *r, uint64_t ms) {
  uint64_t until = clock_now_ms() + ms;
  pthread_mutex_lock(&r->mu);
  for (uint64_t now = clock_now_ms(); !atomic_load(&r->stop) && now < until;
       now = clock_now_ms())
    wait_ms(r, until - now);
  bool go_on = !atomic_load(&r->stop);
  pthread_mutex_unlock(&r->mu);
  return go_on;
}

/* The bucket gains max_rcu per second, up to one second's worth (mu held). */
static void refill(struct run *r) {
  uint64_t now = clock_now_ms();
  double cap = r->s->max_rcu;
  if (r->tokens < cap) {
    r->tokens += (double)(now - r->filled_ms) * cap / 1000.0;
    if (r->tokens > cap)
      r->tokens = cap;
  }
  r->filled_ms = now;
}

/* The next page's Limit and its estimated cost (mu held): a page should
 * cost about a segment's share of 1/TS_SCAN_PAGE_RATE_DIVISOR of a
 * second's budget (see bounds.h), so that all the pages in flight
 * together stay well under one second's. Unbounded: the largest page. */
static unsigned page_limit(const struct run *r, double *estimate) {
  unsigned limit = TS_SCAN_PAGE_LIMIT;
  if (r->s->max_rcu > 0 && r->per_item > 0) {
    double n = r->s->max_rcu / TS_SCAN_PAGE_RATE_DIVISOR / r->s->segments /
               r->per_item;
    limit = n < 1                    ? 1
            : n < TS_SCAN_PAGE_LIMIT ? (unsigned)n
                                     : TS_SCAN_PAGE_LIMIT;
  }
  *estimate = limit * r->per_item;
  return limit;
}

/* Waits until the bucket is not in debt, then reserves the page's
 * estimated cost; false when the scan stopped meanwhile. Reserving before
 * the call accounts for pages in flight in the other segments. */
static bool bucket_take(struct run *r, unsigned *limit, double *estimate) {
  pthread_mutex_lock(&r->mu);
  *limit = page_limit(r, estimate);
  if (r->s->max_rcu > 0) {
    for (refill(r); !atomic_load(&r->stop) && r->tokens <= 0; refill(r)) {
      double ms = ceil(-r->tokens * 1000.0 / r->s->max_rcu);
      wait_ms(r, ms < 1 ? 1 : (uint64_t)ms);
    }
    *limit = page_limit(r, estimate); /* another page may have taught more */
    r->tokens -= *estimate;
  }
  bool go_on = !atomic_load(&r->stop);
  pthread_mutex_unlock(&r->mu);
  return go_on;
}

/* Charges what the page consumed in place of its estimate, and learns its
 * units per item. */
static void bucket_settle(struct run *r, double estimate, double used,
                          size_t n_items) {
  pthread_mutex_lock(&r->mu);
  if (r->s->max_rcu > 0) {
    r->tokens += estimate - used;
    pthread_cond_broadcast(&r->cv); /* a waiting segment may go sooner */
  }
  if (n_items > 0)
    r->per_item = used / (double)n_items;
  r->pages++;
  r->rcu += used;
  pthread_mutex_unlock(&r->mu);
}

/* One Scan page, tried again with backoff while ddb_execute gives up on
 * it. *resp is the answer (caller frees). */
static enum ts_status fetch_page(struct run *r, unsigned seg, unsigned limit,
                                 json_t *start, json_t **resp) {
  struct source *s = r->s;
  enum ts_status st = TS_ERR_NOMEM;
  struct ddb_call call = {.op = "Scan"};
  *resp = NULL;
  json_t *req =
      json_pack("{s:s, s:I, s:I, s:b, s:I}", "TableName", s->table, "Segment",
                (json_int_t)seg, "TotalSegments", (json_int_t)s->segments,
                "ConsistentRead", 1, "Limit", (json_int_t)limit);
  if (!req || (start && json_object_set(req, "ExclusiveStartKey", start)))
    goto out;
  call.request = req;
  for (unsigned attempt = 1;; attempt++) {
    st = ddb_execute(s->client, &call, 1,
                     clock_now_ms() + TS_SCAN_PAGE_DEADLINE_MS);
    if (st == TS_OK && call.outcome == DDB_DONE) {
      *resp = call.response;
      call.response = NULL;
      break;
    }
    if (st == TS_OK && call.outcome != DDB_GAVE_UP) {
      bool missing = strcmp(call.error_type, "ResourceNotFoundException") == 0;
      log_event(LOG_ERROR, "DynamoDB refused a Scan page",
                "{s:s, s:i, s:s, s:s}", "table", s->table, "segment", (int)seg,
                "error", call.error_type, "message", call.error_message);
      st = missing ? TS_ERR_NOT_FOUND : TS_ERR_IO;
      break;
    }
    if (st != TS_OK && st != TS_ERR_UNAVAILABLE)
      break; /* NOMEM, INVALID: trying again will not help */
    bool last = attempt > TS_SCAN_PAGE_RETRIES;
    log_event(last ? LOG_ERROR : LOG_WARN,
              last ? "Scan page gave up: stopping the scan"
                   : "Scan page gave up: trying it again",
              "{s:s, s:i, s:i, s:s, s:s}", "table", s->table, "segment",
              (int)seg, "attempt", (int)attempt, "error", call.error_type,
              "message", call.error_message);
    st = TS_ERR_UNAVAILABLE;
    if (last)
      break;
    if (!pause_ms(r, backoff_pause_ms(TS_SCAN_RETRY_BASE_MS,
                                      TS_SCAN_RETRY_CAP_MS, attempt)))
      break; /* stopped: the status is not reported */
  }
out:
  ddb_call_clear(&call);
  json_decref(req);
  return st;
}

/* Hands a page's items to the callback, one call at a time across the
 * segments; none once the scan stopped. */
static enum ts_status deliver(struct run *r, const json_t *items) {
  enum ts_status st = TS_OK;
  size_t i;
  json_t *item;
  json_array_foreach(items, i, item) {
    pthread_mutex_lock(&r->fn_mu);
    if (!atomic_load(&r->stop)) {
      pthread_mutex_lock(&r->mu);
      r->items++;
      pthread_mutex_unlock(&r->mu);
      st = r->fn(r->cls, item);
      if (st != TS_OK)
        fail(r, st); /* before fn_mu is released: no call follows */
    }
    pthread_mutex_unlock(&r->fn_mu);
    if (st != TS_OK || atomic_load(&r->stop))
      break;
  }
  return st;
}

static void *segment_main(void *arg) {
  struct segment *g = arg;
  struct run *r = g->r;
  enum ts_status st = TS_OK;
  json_t *start = NULL;
  do {
    unsigned limit;
    double estimate;
    json_t *resp = NULL;
    if (!bucket_take(r, &limit, &estimate))
      break;
    st = fetch_page(r, g->index, limit, start, &resp);
    json_decref(start);
    start = NULL;
    const json_t *items = json_object_get(resp, "Items");
    double used = json_number_value(json_object_get(
        json_object_get(resp, "ConsumedCapacity"), "CapacityUnits"));
    bucket_settle(r, estimate, st == TS_OK ? used : 0, json_array_size(items));
    if (st == TS_OK && (st = deliver(r, items)) == TS_OK) {
      start = json_object_get(resp, "LastEvaluatedKey");
      json_incref(start);
    }
    json_decref(resp);
  } while (st == TS_OK && start && !atomic_load(&r->stop));
  json_decref(start);
  if (st != TS_OK)
    fail(r, st);
  pthread_mutex_lock(&r->mu);
  r->running--;
  pthread_cond_broadcast(&r->cv);
  pthread_mutex_unlock(&r->mu);
  return NULL;
}

/* One progress line (mu held while the numbers are read). */
static void progress_line(struct run *r, uint64_t now) {
  uint64_t pages = r->pages, items = r->items;
  double secs = (double)(now - r->start_ms) / 1000.0;
  double rate = secs > 0 ? (double)items / secs : 0;
  int64_t total = r->s->item_count;
  char eta[96];
  if (total <= 0 || rate <= 0)
    snprintf(eta, sizeof eta, "ETA unknown");
  else if ((uint64_t)total <= items)
    snprintf(eta, sizeof eta, "ETA soon (past ItemCount %lld, approximate)",
             (long long)total);
  else
    snprintf(eta, sizeof eta, "ETA %.0f s (ItemCount %lld, approximate)",
             (double)((uint64_t)total - items) / rate, (long long)total);
  fprintf(r->s->progress, "scan %s: %llu pages, %llu items, %.0f items/s, %s\n",
          r->s->table, (unsigned long long)pages, (unsigned long long)items,
          rate, eta);
  fflush(r->s->progress);
}

/* Waits until every segment has finished, writing progress lines. */
static void await_segments(struct run *r) {
  uint64_t next = r->start_ms + TS_SCAN_PROGRESS_MS;
  pthread_mutex_lock(&r->mu);
  while (r->running > 0) {
    uint64_t now = clock_now_ms();
    if (r->s->progress && now >= next) {
      progress_line(r, now);
      next += TS_SCAN_PROGRESS_MS * ((now - next) / TS_SCAN_PROGRESS_MS + 1);
    }
    wait_ms(r, r->s->progress && next > now ? next - now : TS_SCAN_PROGRESS_MS);
  }
  pthread_mutex_unlock(&r->mu);
}

enum ts_status source_scan(struct source *s, source_item_fn fn, void *cls,
                           struct source_stats *out) {
  enum ts_status st = TS_ERR_NOMEM;
  struct run r = {.s = s, .fn = fn, .cls = cls, .per_item = 1.0};
  struct segment *segs = NULL;
  unsigned started = 0;
  bool mu = false, cv = false, fn_mu = false;
  if (out)
    *out = (struct source_stats){0};
  if (!s || !fn)
    return TS_ERR_INVALID;
  /* The first page assumes items of up to 4 KB (1 unit each, strongly
   * consistent); later pages go by what the last one cost. */
  atomic_init(&r.stop, false);
  r.start_ms = r.filled_ms = clock_now_ms();
  cv = clock_cond_init(&r.cv);
  mu = pthread_mutex_init(&r.mu, NULL) == 0;
  fn_mu = pthread_mutex_init(&r.fn_mu, NULL) == 0;
  if (!cv || !mu || !fn_mu || !(segs = calloc(s->segments, sizeof *segs)))
    goto out;
  r.running = s->segments;
  for (; started < s->segments; started++) {
    segs[started] = (struct segment){.r = &r, .index = started};
    if (pthread_create(&segs[started].thread, NULL, segment_main,
                       &segs[started]) != 0)
      break;
  }
  if (started < s->segments) {
    fail(&r, TS_ERR_NOMEM);
    pthread_mutex_lock(&r.mu);
    r.running -= s->segments - started; /* those never ran */
    pthread_mutex_unlock(&r.mu);
  }
  await_segments(&r);
  for (unsigned i = 0; i < started; i++)
    pthread_join(segs[i].thread, NULL);
  st = r.st;
  uint64_t end = clock_now_ms();
  if (out)
    *out = (struct source_stats){.pages = r.pages,
                                 .items = r.items,
                                 .rcu = r.rcu,
                                 .seconds = (double)(end - r.start_ms) / 1e3};
  if (s->progress) {
    double secs = (double)(end - r.start_ms) / 1e3;
    fprintf(s->progress,
            "scan %s: %s, %llu pages, %llu items, %.1f RCU in %.1f s "
            "(%.0f items/s, %.1f RCU/s)\n",
            s->table, st == TS_OK ? "done" : ts_status_name(st),
            (unsigned long long)r.pages, (unsigned long long)r.items, r.rcu,
            secs, secs > 0 ? (double)r.items / secs : 0,
            secs > 0 ? r.rcu / secs : 0);
    fflush(s->progress);
  }
  log_event(st == TS_OK ? LOG_INFO : LOG_ERROR, "source scan finished",
            "{s:s, s:s, s:I, s:I, s:f, s:f}", "table", s->table, "status",
            ts_status_name(st), "pages", (json_int_t)r.pages, "items",
            (json_int_t)r.items, "rcu", r.rcu, "seconds",
            (double)(end - r.start_ms) / 1e3);
out:
  free(segs);
  if (fn_mu)
    pthread_mutex_destroy(&r.fn_mu);
  if (mu)
    pthread_mutex_destroy(&r.mu);
  if (cv)
    pthread_cond_destroy(&r.cv);
  return st;
}
