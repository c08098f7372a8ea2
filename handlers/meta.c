/* GET / (the dashboard page) and GET /openapi.yaml (the contract), both
 * compiled into the binary from dashboard/index.html and
 * openapi/openapi.yaml (cmake/embed.cmake). */
#include <stddef.h>

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
