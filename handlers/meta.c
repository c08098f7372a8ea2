/* GET / (the dashboard page) and GET /openapi.yaml (the contract), both
 * compiled into the binary from dashboard/index.html and
 * openapi/openapi.yaml (cmake/embed.cmake); GET /metrics. */
#include <stddef.h>

#include "../common/bounds.h"
#include "../server/metrics.h"

#include "handlers.h"
#include "handlers_util.h"

extern const unsigned char ts_embed_openapi[];
extern const size_t ts_embed_openapi_len;
extern const unsigned char ts_embed_dashboard[];
extern const size_t ts_embed_dashboard_len;

static void reply_static(const struct request *req, struct reply *rep,
                         const unsigned char *data, size_t len,
                         const char *type) {
  reply_clear(rep);
  rep->status = 200;
  rep->content_type = type;
  rep->static_body = data;
  rep->len = len;
  handlers_set_etag(req, rep);
}

void handle_openapi(struct request *req, struct reply *rep) {
  reply_static(req, rep, ts_embed_openapi, ts_embed_openapi_len,
               "application/yaml");
}

void handle_dashboard(struct request *req, struct reply *rep) {
  reply_static(req, rep, ts_embed_dashboard, ts_embed_dashboard_len,
               "text/html; charset=utf-8");
}

void handle_metrics(struct request *req, struct reply *rep) {
  (void)req;
  struct buf b;
  buf_init(&b, TS_MAX_REPLY_BYTES);
  metrics_write(&b);
  reply_buf_take(rep, 200, &b);
  if (rep->status == 200)
    rep->content_type = "text/plain; version=0.0.4; charset=utf-8";
}
