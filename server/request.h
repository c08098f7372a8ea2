/* What a handler receives: the request after the router's shared work
 * (route match, method, size limits, media type, JSON parsing). Everything
 * here is owned by the HTTP layer and lives until the reply is sent. */
#ifndef TS_SERVER_REQUEST_H
#define TS_SERVER_REQUEST_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/jdoc.h"
#include "../common/status.h"
#include "app.h"

#define REQUEST_MAX_PARAMS 2

struct request {
  struct app *app;
  const char *method;
  const char *path;                 /* raw, still percent-encoded */
  char *params[REQUEST_MAX_PARAMS]; /* path captures, percent-decoded,
                                       valid UTF-8 without NUL */
  size_t n_params;
  json_t *body;         /* parsed JSON body, or NULL */
  struct jdoc *doc;     /* instead, for a ROUTE_JSON_DOC route: the body
                           as a flat document (common/jdoc.h), or NULL */
  uint64_t deadline_ms; /* ingestion answers by then (clock_now_ms() at
                           arrival + TS_INGEST_DEADLINE_MS): time waiting
                           for a worker or the store counts */
  void *conn;           /* the MHD connection (opaque) */
};

/* Deferred replies, for the handler of a ROUTE_DEFER route. When
 * request_can_defer(req), the handler runs on the HTTP thread and may hand
 * its wait to something that ends on another thread: it calls
 * request_defer(req, finish, state) first, then starts that work with
 * request_resume as its callback (cls: req), and returns at once. Once
 * request_resume(req, st) has been called, exactly once, finish(req, rep,
 * st, state) runs on the HTTP thread and writes the reply; it owns state.
 * A handler that does not defer answers as usual. */
struct reply;
typedef void (*request_finish_fn)(struct request *req, struct reply *rep,
                                  enum ts_status st, void *state);
bool request_can_defer(const struct request *req);
void request_defer(struct request *req, request_finish_fn finish, void *state);
void request_resume(void *req, enum ts_status st);

/* Tries, for the handler of a ROUTE_DEFER route on a store that does not
 * apply asynchronously. The handler may then run on the HTTP thread with
 * req->deadline_ms cut to a short try (TS_INGEST_TRY_MS). When its store
 * call runs out of that, the handler calls request_continue(req, rest,
 * finish, state): true means the rest is taken over (the handler returns
 * at once and no longer touches req): rest(req, state) runs on an ingest
 * worker with the request's whole deadline, then finish(req, rep, st,
 * state) on the HTTP thread with what rest returned. false (the request
 * was not a try, or no worker place is free) leaves the answer to the
 * handler. */
typedef enum ts_status (*request_rest_fn)(struct request *req, void *state);
bool request_continue(struct request *req, request_rest_fn rest,
                      request_finish_fn finish, void *state);

/* A request header's value (case-insensitive name), or NULL. */
const char *request_header(const struct request *req, const char *name);

/* A query parameter, percent-decoded ('+' is a space) into a new string the
 * caller frees. *value is NULL when the parameter is absent. Returns
 * TS_ERR_INVALID for a bad escape or invalid UTF-8, TS_ERR_NOMEM. */
enum ts_status request_query(const struct request *req, const char *name,
                             char **value) TS_WARN_UNUSED;

#endif /* TS_SERVER_REQUEST_H */
