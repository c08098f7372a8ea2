/* POST /v1/stream-records: decode a batch, fold it, apply it exactly once,
 * answer the counts. A 4xx leaves the store untouched because nothing is
 * written before the whole envelope has been checked. */
#include <stdlib.h>

#include "../common/bounds.h"
#include "../common/buf.h"
#include "../common/log.h"
#include "../server/errors.h"
#include "../server/metrics.h"
#include "handlers.h"

/* Answers with what applying b gave, on the HTTP thread; frees b. */
static void finish(struct request *req, struct reply *rep, enum ts_status st,
                   void *state) {
  struct batch *b = state;
  (void)req;
  if (st != TS_OK) {
    metrics_count_store_failure(st);
    enum ts_error e = error_from_status(st);
    log_event(e == TS_E_STORE_UNAVAILABLE ? LOG_WARN : LOG_ERROR,
              "batch not applied", "{s:s, s:i}", "status", ts_status_name(st),
              "records", (int)batch_record_count(b));
    error_reply(rep, e, "the batch was not applied (%s); send it again",
                ts_status_name(st));
    goto out;
  }

  struct batch_counts c;
  batch_counts(b, &c);
  metrics_count_batch(&c);
  if (c.rejected || c.modify_without_old || c.remove_without_old ||
      c.ttl_removes_skipped || c.held)
    log_event(LOG_INFO, "batch applied",
              "{s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i}", "received",
              (int)c.received, "applied", (int)c.applied, "duplicates",
              (int)c.duplicates, "skipped", (int)c.skipped, "rejected",
              (int)c.rejected, "modify_without_old_image",
              (int)c.modify_without_old, "remove_without_old_image",
              (int)c.remove_without_old, "ttl_removes_skipped",
              (int)c.ttl_removes_skipped, "held_for_backfill", (int)c.held);
  for (size_t i = 0; i < batch_rejected_count(b); i++) {
    const char *event_id, *item, *reason, *json;
    batch_rejected(b, i, &event_id, &item, &reason, &json);
    log_event(LOG_WARN, "record rejected", "{s:s?, s:s?, s:s}", "eventID",
              event_id, "itemIdentifier", item, "reason", reason);
  }
  struct buf text;
  buf_init(&text, TS_MAX_INGEST_REPLY_BYTES);
  batch_summary_write(b, &text);
  reply_buf_take(rep, 200, &text); /* a failed buf answers 500 */
out:
  batch_free(b);
}

static enum ts_status apply_rest(struct request *req, void *b) {
  return store_apply_by(req->app->store, b, req->deadline_ms);
}

void handle_stream_records(struct request *req, struct reply *rep) {
  struct batch *b = NULL;
  const char *detail = NULL;
  struct jdoc *body = req->doc;
  req->doc = NULL; /* the batch's */
  enum ts_status st = batch_new_with(body, &req->app->batch, &b, &detail);
  if (st != TS_OK) {
    if (st == TS_ERR_TOO_LARGE)
      error_reply(rep, TS_E_TOO_MANY_RECORDS, "%s",
                  detail ? detail : "too many records in one batch");
    else if (st == TS_ERR_INVALID)
      error_reply(rep, TS_E_BAD_ENVELOPE, "%s",
                  detail ? detail : "not a batch of stream records");
    else
      error_reply(rep, TS_E_INTERNAL, "could not decode the batch (%s)",
                  ts_status_name(st));
    batch_free(b);
    return;
  }
  if (request_can_defer(req)) { /* the embedded store commits it */
    request_defer(req, finish, b);
    st = store_apply_async(req->app->store, b, req->deadline_ms, request_resume,
                           req);
    if (st != TS_OK)
      request_resume(req, st);
    return;
  }
  /* On DynamoDB a small batch may be a try on the HTTP thread with a short
   * deadline; a worker then goes on with the same batch (applying it
   * again is exactly-once like any retry). */
  st = apply_rest(req, b);
  if (st == TS_ERR_UNAVAILABLE && request_continue(req, apply_rest, finish, b))
    return;
  finish(req, rep, st, b);
}
