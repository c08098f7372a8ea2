/* GET /healthz (the process answers) and GET /readyz (the store answers). */
#include <jansson.h>

#include "../server/app.h"
#include "../server/errors.h"
#include "handlers.h"

void handle_healthz(struct request *req, struct reply *rep) {
  (void)req;
  reply_json_take(rep, 200, json_pack("{s:s}", "status", "ok"));
}

void handle_readyz(struct request *req, struct reply *rep) {
  if (atomic_load(&req->app->draining)) {
    error_reply(rep, TS_E_STORE_UNAVAILABLE,
                "the server is shutting down; send to another replica");
    return;
  }
  enum ts_status st = store_ping(req->app->store);
  if (st != TS_OK) {
    error_reply(rep, TS_E_STORE_UNAVAILABLE, "the store is not reachable (%s)",
                ts_status_name(st));
    return;
  }
  reply_json_take(rep, 200, json_pack("{s:s}", "status", "ready"));
}
