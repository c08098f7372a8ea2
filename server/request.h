/* What a handler receives: the request after the router's shared work
 * (route match, method, size limits, media type, JSON parsing). Everything
 * here is owned by the HTTP layer and lives until the reply is sent. */
#ifndef TS_SERVER_REQUEST_H
#define TS_SERVER_REQUEST_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

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
  uint64_t deadline_ms; /* ingestion answers by then (clock_now_ms() at
                           arrival + TS_INGEST_DEADLINE_MS): time waiting
                           for a worker or the store counts */
  void *conn;           /* the MHD connection (opaque) */
};

/* A request header's value (case-insensitive name), or NULL. */
const char *request_header(const struct request *req, const char *name);

/* A query parameter, percent-decoded ('+' is a space) into a new string the
 * caller frees. *value is NULL when the parameter is absent. Returns
 * TS_ERR_INVALID for a bad escape or invalid UTF-8, TS_ERR_NOMEM. */
enum ts_status request_query(const struct request *req, const char *name,
                             char **value) TS_WARN_UNUSED;

#endif /* TS_SERVER_REQUEST_H */
