/* tourney-stats: process start-up, signal handling and shutdown.
 *
 * SIGTERM or SIGINT: drain (readiness off, new ingestion refused with 503
 * and Retry-After, every answer closes its connection), stop accepting,
 * let in-flight requests finish (up to TS_DRAIN_S), close the store,
 * exit 0. */
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/bounds.h"
#include "../common/json_pool.h"
#include "../common/log.h"
#include "../ops/backfill.h"
#include "../ops/consumer.h"
#include "../store/store.h"
#include "app.h"
#include "config.h"
#include "healthcheck.h"
#include "http.h"
#include "metrics.h"

/* One progress line of the consumer: totals and each held shard's lag. */
static void log_consumer(struct consumer *c) {
  struct consumer_totals t;
  struct consumer_shard sh[TS_KINESIS_MAX_WORKERS];
  consumer_totals(c, &t);
  size_t n = consumer_shards(c, sh, TS_KINESIS_MAX_WORKERS);
  json_t *lag = json_object();
  for (size_t i = 0; lag && i < n; i++)
    json_object_set_new(lag, sh[i].shard, json_integer(sh[i].millis_behind));
  log_event(LOG_INFO, "kinesis progress",
            "{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:i, s:o?}", "read",
            (json_int_t)t.read, "applied", (json_int_t)t.applied, "duplicates",
            (json_int_t)t.duplicates, "skipped", (json_int_t)t.skipped,
            "rejected", (json_int_t)t.rejected, "checkpoints",
            (json_int_t)t.checkpoints, "leases_lost", (json_int_t)t.leases_lost,
            "shards_held", (int)t.shards_held, "millis_behind", lag);
}

static enum ts_status start_consumer(const struct config *cfg,
                                     struct store *store,
                                     const struct batch_options *batch,
                                     struct consumer **out) {
  struct consumer_options co = {.stream = cfg->kinesis_stream,
                                .owner = cfg->kinesis_owner,
                                .lease_ms = cfg->kinesis_lease_ms,
                                .poll_ms = cfg->kinesis_poll_ms,
                                .limit = cfg->kinesis_batch,
                                .batch = *batch};
  enum ts_status st = consumer_start(store, &co, out);
  if (st != TS_OK)
    log_event(LOG_ERROR, "could not start the kinesis consumer", "{s:s, s:s}",
              "stream", cfg->kinesis_stream, "status", ts_status_name(st));
  return st;
}

int main(int argc, char **argv) {
  struct config cfg;
  enum config_action action;
  struct store *store = NULL;
  struct http_server *srv = NULL;
  struct consumer *consumer = NULL;
  int rc = 1;

  /* Signals are taken synchronously by sigwait below; every thread the
   * process starts inherits this mask. SIGPIPE is ignored: a client that
   * hangs up must not kill the server. */
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
  signal(SIGPIPE, SIG_IGN);

  if (config_load(&cfg, argc, argv, stdout, stderr, &action) != TS_OK) {
    rc = 2;
    goto out;
  }
  if (action == CONFIG_EXIT) {
    rc = 0;
    goto out;
  }
  log_set_level(cfg.log_level);
  /* glibc gives threads that allocate at the same time arenas of their own,
   * up to 8 per CPU, and one arena's free memory is not another's: with 16
   * ingest workers, peak RSS (DynamoDB, batches of 100, docs/BENCHMARKS.md)
   * was 42 MiB with one sender and 62 MiB with 32, against 22 and 59-60
   * with 2 arenas. One per CPU, unless MALLOC_ARENA_MAX says otherwise. */
  if (!getenv("MALLOC_ARENA_MAX"))
    (void)mallopt(M_ARENA_MAX, (int)config_cpu_count());
  /* Keep freed memory for the next connection rather than fault it in
   * again (common/bounds.h), unless the environment tunes malloc. */
  const char *tunables = getenv("GLIBC_TUNABLES");
  if (!getenv("MALLOC_TRIM_THRESHOLD_") && !getenv("MALLOC_MMAP_THRESHOLD_") &&
      !(tunables && strstr(tunables, "glibc.malloc."))) {
    (void)mallopt(M_TRIM_THRESHOLD, (int)TS_MALLOC_TRIM_BYTES);
    (void)mallopt(M_MMAP_THRESHOLD, (int)TS_MALLOC_MMAP_BYTES);
  }
  json_pool_install(); /* before any thread makes a jansson node */
  if (action == CONFIG_BACKFILL || action == CONFIG_VERIFY)
    log_set_fd(STDERR_FILENO); /* stdout is the report */
  if (action == CONFIG_HEALTHCHECK) {
    rc = healthcheck_probe(&cfg, stderr) == TS_OK ? 0 : 1;
    goto out;
  }

  struct store_options sopt = {.kind = cfg.store,
                               .sqlite_path = cfg.sqlite_path,
                               .table = cfg.table,
                               .dead_letter_table = cfg.dead_letter_table,
                               .applied_log_table = cfg.applied_log_table,
                               .leaderboard_refresh_s =
                                   cfg.leaderboard_refresh_s,
                               .ddb_max_in_flight = cfg.ddb_max_in_flight};
  enum ts_status st;
  if (action == CONFIG_CREATE_TABLE) {
    st = store_create_tables(&sopt);
    if (st != TS_OK)
      log_event(LOG_ERROR, "create-table failed", "{s:s, s:s}", "store",
                cfg.store, "status", ts_status_name(st));
    rc = st == TS_OK ? 0 : 1;
    goto out;
  }
  st = store_open(&sopt, &store);
  if (st != TS_OK) {
    log_event(LOG_ERROR, "could not open the store", "{s:s, s:s}", "store",
              cfg.store, "status", ts_status_name(st));
    goto out;
  }

  struct app app = {.cfg = &cfg,
                    .store = store,
                    .batch = {.names = {.player = cfg.attr_player,
                                        .score = cfg.attr_score,
                                        .winner = cfg.attr_winner},
                              .ttl_removes_subtract =
                                  strcmp(cfg.ttl_removes, "subtract") == 0}};
  if (action == CONFIG_BACKFILL || action == CONFIG_VERIFY) {
    struct ops_options oo = {.source_table = cfg.source_table,
                             .segments = cfg.segments,
                             .max_rcu = cfg.max_rcu,
                             .settle_s = cfg.settle_s,
                             .json = cfg.json,
                             .remote_store = strcmp(cfg.store, "dynamodb") == 0,
                             .batch = app.batch};
    rc = action == CONFIG_BACKFILL ? ops_backfill(store, &oo, stderr)
                                   : ops_verify(store, &oo, stdout, stderr);
    goto out;
  }
  if (action == CONFIG_CONSUME) {
    if (start_consumer(&cfg, store, &app.batch, &consumer) != TS_OK)
      goto out;
    /* progress lines until SIGTERM/SIGINT; then the leases are released */
    struct timespec every = {.tv_sec = TS_KINESIS_PROGRESS_MS / 1000u,
                             .tv_nsec = 0};
    int sig;
    while ((sig = sigtimedwait(&stop_signals, NULL, &every)) < 0)
      log_consumer(consumer);
    log_event(LOG_INFO, "stopping", "{s:s}", "signal",
              sig == SIGTERM ? "SIGTERM" : "SIGINT");
    consumer_stop(consumer);
    consumer = NULL;
    rc = 0;
    goto out;
  }
  atomic_init(&app.draining, false);
  uint16_t port = 0;
  if (http_server_start(&app, &srv, &port) != TS_OK)
    goto out;
  log_event(LOG_INFO, "listening", "{s:s, s:i, s:s, s:s, s:i}", "bind",
            cfg.bind, "port", (int)port, "store", cfg.store, "version",
            TS_VERSION, "threads", (int)cfg.threads);
  if (cfg.kinesis_stream) {
    if (start_consumer(&cfg, store, &app.batch, &consumer) != TS_OK)
      goto out;
    metrics_set_consumer(consumer);
  }

  int sig = 0;
  sigwait(&stop_signals, &sig);
  atomic_store(&app.draining, true);
  log_event(LOG_INFO, "stopping", "{s:s, s:i}", "signal",
            sig == SIGTERM ? "SIGTERM" : "SIGINT", "drain_s", (int)cfg.drain_s);
  metrics_set_consumer(NULL);
  consumer_stop(consumer); /* releases its leases first: others take over */
  consumer = NULL;
  http_server_stop(srv, cfg.drain_s * 1000u);
  srv = NULL;
  log_event(LOG_INFO, "stopped", NULL);
  rc = 0;
out:
  metrics_set_consumer(NULL);
  consumer_stop(consumer);
  http_server_stop(srv, 0);
  store_free(store);
  config_clear(&cfg);
  return rc;
}
