/* The route table and its matching. Patterns are literal segments and
 * "{}" for one captured segment. */
#ifndef TS_SERVER_ROUTER_H
#define TS_SERVER_ROUTER_H

#include <stdbool.h>
#include <stddef.h>

#include "../handlers/handlers.h"

enum route_flags {
  ROUTE_JSON_BODY = 1 << 0,     /* needs an application/json body */
  ROUTE_INGEST_AUTH = 1 << 1,   /* needs TS_INGEST_API_KEY when set */
  ROUTE_OFFLOAD = 1 << 2,       /* may block on the store: runs on a worker
                                   (server/workers.h), never on an HTTP
                                   thread */
  ROUTE_EMPTY_BODY_OK = 1 << 3, /* with ROUTE_JSON_BODY: an empty body (no
                                   Content-Type needed) reaches the handler
                                   as body NULL */
  ROUTE_DEFER = 1 << 4,         /* with ROUTE_OFFLOAD: a small body runs
                                   on the HTTP thread instead of taking a
                                   worker, and its handler hands the wait
                                   on (request.h): to a store that applies
                                   asynchronously, or after a short try to
                                   a worker */
  ROUTE_JSON_DOC = 1 << 5,      /* with ROUTE_JSON_BODY: the handler reads
                                   the body as req->doc (a flat document,
                                   common/jdoc.h), not as a jansson tree */
  ROUTE_EXPECT_WRITE = 1 << 6,  /* the handler writes the body to the
                                   store: the store is told once the body
                                   is whole, before it is parsed
                                   (store_expect_write) */
};

struct route {
  const char *method;  /* "GET" also answers HEAD */
  const char *pattern; /* e.g. "/v1/players/{}/stats" */
  handler_fn handler;
  unsigned flags;
  const char *name; /* for logs and metrics */
};

enum router_result {
  ROUTER_MATCH,
  ROUTER_NOT_FOUND,
  ROUTER_METHOD_NOT_ALLOWED, /* *allow lists the methods the path has */
  ROUTER_BAD_PARAM,          /* a captured segment is not valid UTF-8 */
};

/* Matches method + raw path. On ROUTER_MATCH *route is set and params[]
 * hold newly allocated, percent-decoded captures (caller frees).
 * allow must hold 64 bytes. */
enum router_result router_match(const char *method, const char *path,
                                const struct route **route,
                                char *params[REQUEST_MAX_PARAMS],
                                size_t *n_params, char allow[64]);

/* The route table as data, for metrics: indexes 0..count-1. */
size_t router_route_count(void);
const char *router_route_name(size_t index);
int router_route_index(const struct route *route);

#endif /* TS_SERVER_ROUTER_H */
