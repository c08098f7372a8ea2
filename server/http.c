/* libmicrohttpd glue. Per-request state (struct exchange) is created on
 * the first access-handler call and freed only in the completion callback.
 * The router's shared checks run before any handler: URL length, route,
 * method, auth seam, media type, body size, JSON parsing. */
#include "http.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netdb.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "../common/backoff.h"
#include "../common/bounds.h"
#include "../common/buf.h"
#include "../common/clock.h"
#include "../common/hex.h"
#include "../common/jdoc.h"
#include "../common/json_parse.h"
#include "../common/log.h"
#include "conn_guard.h"
#include "errors.h"
#include "metrics.h"
#include "reply.h"
#include "request.h"
#include "router.h"
#include "urlcode.h"
#include "workers.h"

struct http_server {
  struct MHD_Daemon *daemon;
  struct app *app;
  atomic_uint in_flight;
  struct workers *ingest; /* runs ROUTE_OFFLOAD handlers */
  /* ROUTE_DEFER handlers run on the HTTP threads (the store applies
   * asynchronously); `suspended` counts their connections not yet resumed,
   * bounded like the workers' jobs. */
  bool defer;
  atomic_uint suspended;
  unsigned max_suspended;
  /* Tries (request_continue): none before this clock_now_ms(); one at a
   * time (in_try). */
  atomic_uint_fast64_t try_paused_until;
  atomic_bool in_try;
  struct conn_guard *guard;
  atomic_bool closing; /* stopping: every new connection is closed at once */
};

/* MHD's accept policy: once the server stops, a new connection is closed
 * as soon as it is accepted. (MHD_quiesce_daemon would take the listening
 * socket out of every worker's epoll set, but a worker that sees the
 * daemon quiesced removes it too, and whichever comes second aborts the
 * process: "Failed to remove listen FD from epoll set", libmicrohttpd
 * 0.9.75 with a thread pool, seen in CI on a server stopped right after it
 * started.) */
static enum MHD_Result accept_policy(void *cls, const struct sockaddr *addr,
                                     socklen_t len) {
  (void)addr;
  (void)len;
  const struct http_server *srv = cls;
  return atomic_load(&srv->closing) ? MHD_NO : MHD_YES;
}

struct exchange {
  struct http_server *srv;
  struct request req;
  const struct route *route;
  struct buf body;
  struct reply rep;
  bool replied_early; /* an error reply is set; the body is discarded */
  struct timespec start;
  char request_id[TS_MAX_REQUEST_ID_BYTES + 1]; /* echoed and logged */
  bool offloaded;           /* handed to a worker, or deferred; the
                               connection waits */
  atomic_bool worker_done;  /* the worker set rep (or the deferred work
                               ended) and resumed us */
  bool deferring;           /* a ROUTE_DEFER handler ran on our thread */
  request_finish_fn finish; /* request_defer: writes rep once resumed */
  void *finish_state;
  enum ts_status finish_st; /* given to request_resume, or what
                               rest returned */
  uint64_t own_deadline_ms; /* during a try (req.deadline_ms cut short) the
                               request's deadline; else 0 */
  request_rest_fn rest;     /* request_continue: runs on a worker */
  struct guarded_conn *conn_guarded; /* the connection's guard entry */
  bool body_done;                    /* told the guard */
};

const char *request_header(const struct request *req, const char *name) {
  return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

enum ts_status request_query(const struct request *req, const char *name,
                             char **value) {
  *value = NULL;
  const char *raw =
      MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
  if (!raw)
    return TS_OK;
  return url_decode(raw, strlen(raw), true, value);
}

/* MHD would percent-decode the path before we split it, turning a player
 * named "a/b" (sent as a%2Fb) into two segments. We decode ourselves, per
 * segment and per query value, so this callback leaves text as it is. */
static size_t keep_escaped(void *cls, struct MHD_Connection *c, char *s) {
  (void)cls, (void)c;
  return strlen(s);
}

static bool media_type_is_json(const char *ct) {
  if (!ct)
    return false;
  while (*ct == ' ' || *ct == '\t')
    ct++;
  static const char want[] = "application/json";
  size_t n = sizeof want - 1;
  if (strncasecmp(ct, want, n) != 0)
    return false;
  ct += n;
  while (*ct == ' ' || *ct == '\t')
    ct++;
  return *ct == '\0' || *ct == ';';
}

static enum MHD_Result add_arg_length(void *cls, enum MHD_ValueKind kind,
                                      const char *key, const char *value) {
  (void)kind;
  size_t *len = cls;
  *len += strlen(key) + (value ? strlen(value) + 1 : 0) + 1;
  return MHD_YES;
}

/* MHD hands over the path without its query; the URL bound covers both. */
static size_t url_length(struct MHD_Connection *conn, const char *path) {
  size_t len = strlen(path);
  MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, add_arg_length, &len);
  return len;
}

static bool same_secret(const char *given, size_t len, const char *key) {
  size_t klen = strlen(key);
  /* The length may leak; the bytes do not (constant-time compare). */
  return len == klen && CRYPTO_memcmp(given, key, klen) == 0;
}

/* TS_INGEST_API_KEY, when set, must come as x-api-key or as the password
 * of HTTP Basic (what an EventBridge connection with Basic auth sends). */
static bool ingest_authorized(const struct request *req, const char *key) {
  const char *api_key = request_header(req, "x-api-key");
  if (api_key && same_secret(api_key, strlen(api_key), key))
    return true;
  const char *auth = request_header(req, MHD_HTTP_HEADER_AUTHORIZATION);
  if (!auth || strncasecmp(auth, "Basic ", 6) != 0)
    return false;
  const char *b64 = auth + 6;
  while (*b64 == ' ')
    b64++;
  size_t blen = strlen(b64);
  if (blen == 0 || blen % 4 != 0 || blen > 4 * TS_MAX_REASON_BYTES)
    return false;
  unsigned char plain[3 * TS_MAX_REASON_BYTES + 1];
  int n = EVP_DecodeBlock(plain, (const unsigned char *)b64, (int)blen);
  if (n < 0)
    return false;
  /* EVP_DecodeBlock counts padding as zero bytes: drop them. Valid base64
   * has at most two '=' and they never outnumber the decoded bytes
   * ("====" decodes to 3 bytes; trusting its 4 '=' underflowed len). */
  size_t pad = 0;
  while (pad < blen && b64[blen - 1 - pad] == '=')
    pad++;
  if (pad > 2 || (size_t)n < pad)
    return false;
  size_t len = (size_t)n - pad;
  const unsigned char *colon = memchr(plain, ':', len);
  if (!colon)
    return false;
  size_t off = (size_t)(colon - plain) + 1;
  return same_secret((const char *)plain + off, len - off, key);
}

/* The request's id: the client's X-Request-Id (a load balancer's) when it
 * is 1..TS_MAX_REQUEST_ID_BYTES characters that are safe in a header and a
 * log line, else 16 random hex digits. out holds TS_MAX_REQUEST_ID_BYTES+1. */
static void set_request_id(struct MHD_Connection *conn, char *out) {
  const char *given =
      MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Request-Id");
  size_t n = given ? strlen(given) : 0;
  bool ok = n > 0 && n <= TS_MAX_REQUEST_ID_BYTES &&
            strspn(given, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                          "0123456789-_.:/+=") == n;
  if (ok) {
    memcpy(out, given, n + 1);
    return;
  }
  /* Unique enough to find a request in the logs; not a secret. */
  _Static_assert(TS_MAX_REQUEST_ID_BYTES >= 16, "an id is 16 hex digits");
  hex_u64(backoff_random(), out);
}

/* What the header block says beyond a lookup of the first value of a
 * name: repeats and NUL bytes. */
struct header_scan {
  unsigned content_length, transfer_encoding, api_key, authorization;
  bool nul;           /* a name or value holds a NUL byte */
  const char *coding; /* the Transfer-Encoding value */
};

static enum MHD_Result scan_header(void *cls, enum MHD_ValueKind kind,
                                   const char *key, size_t key_size,
                                   const char *value, size_t value_size) {
  (void)kind;
  struct header_scan *h = cls;
  if (strlen(key) != key_size || (value && strlen(value) != value_size))
    h->nul = true;
  if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0) {
    h->content_length++;
  } else if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0) {
    h->transfer_encoding++;
    h->coding = value;
  } else if (strcasecmp(key, "x-api-key") == 0) {
    h->api_key++;
  } else if (strcasecmp(key, MHD_HTTP_HEADER_AUTHORIZATION) == 0) {
    h->authorization++;
  }
  return MHD_YES;
}

/* RFC 9112 6.1 and 6.3: a message whose length two headers could give, or
 * one header twice, may be framed one way here and another way by a proxy
 * in front (request smuggling): refuse it and close the connection. So
 * for a NUL in a header (RFC 9110 5.5) and for credentials sent twice,
 * where the first would be checked and another one used elsewhere. Only
 * "chunked" is a transfer coding we read; another one gets 501. Returns
 * false with the reply set. */
static bool headers_acceptable(struct MHD_Connection *conn, struct reply *rep) {
  struct header_scan h = {0};
  MHD_get_connection_values_n(conn, MHD_HEADER_KIND, scan_header, &h);
  if (h.nul)
    error_reply(rep, TS_E_BAD_HEADERS, "a header holds a NUL byte");
  else if (h.content_length && h.transfer_encoding)
    error_reply(rep, TS_E_BAD_HEADERS,
                "both Content-Length and Transfer-Encoding are present");
  else if (h.content_length > 1 || h.transfer_encoding > 1)
    error_reply(rep, TS_E_BAD_HEADERS, "%s is present more than once",
                h.content_length > 1 ? "Content-Length" : "Transfer-Encoding");
  else if (h.api_key > 1 || h.authorization > 1)
    error_reply(rep, TS_E_BAD_HEADERS, "%s is present more than once",
                h.api_key > 1 ? "x-api-key" : "Authorization");
  else if (h.transfer_encoding &&
           (!h.coding || strcasecmp(h.coding, "chunked") != 0))
    error_reply(rep, TS_E_TRANSFER_CODING,
                "only the chunked transfer coding is accepted");
  else
    return true;
  rep->close = true;
  return false;
}

/* First call: everything that can be decided from the request line and
 * headers. Sets an error reply (and replied_early) when the request cannot
 * proceed. */
static void begin(struct exchange *ex, struct MHD_Connection *conn,
                  const char *url, const char *method) {
  char allow[64];
  size_t announced = 0; /* Content-Length, capped, for buf_reserve */
  struct reply *rep = &ex->rep;
  ex->req.conn = conn;
  ex->req.method = method;
  ex->req.path = url;
  ex->req.app = ex->srv->app;
  ex->req.deadline_ms = clock_now_ms() + TS_INGEST_DEADLINE_MS;

  if (!headers_acceptable(conn, rep))
    goto early;
  if (url_length(conn, url) > TS_MAX_URL_BYTES) {
    error_reply(rep, TS_E_URL_TOO_LONG, "the URL is longer than %u bytes",
                TS_MAX_URL_BYTES);
    goto early;
  }
  switch (router_match(method, url, &ex->route, ex->req.params,
                       &ex->req.n_params, allow)) {
  case ROUTER_MATCH: break;
  case ROUTER_NOT_FOUND:
    error_reply(rep, TS_E_NOT_FOUND, "no resource at this path");
    goto early;
  case ROUTER_METHOD_NOT_ALLOWED:
    error_reply(rep, TS_E_METHOD_NOT_ALLOWED, "%s is not allowed here; use %s",
                method, allow);
    memcpy(rep->allow, allow, sizeof rep->allow);
    goto early;
  case ROUTER_BAD_PARAM:
    error_reply(rep, TS_E_BAD_PLAYER_NAME,
                "a path segment is not valid percent-encoded UTF-8 (or holds "
                "a NUL)");
    goto early;
  }
  if ((ex->route->flags & ROUTE_INGEST_AUTH) &&
      atomic_load(&ex->srv->app->draining)) {
    error_reply(rep, TS_E_STORE_UNAVAILABLE,
                "the server is shutting down; send the batch again");
    goto early;
  }
  const char *key = ex->srv->app->cfg->ingest_api_key;
  if ((ex->route->flags & ROUTE_INGEST_AUTH) && key &&
      !ingest_authorized(&ex->req, key)) {
    error_reply(rep, TS_E_UNAUTHORIZED,
                "send the ingest key in x-api-key or as the Basic password");
    rep->challenge = true;
    goto early;
  }
  if (ex->route->flags & ROUTE_JSON_BODY) {
    const char *ct = request_header(&ex->req, MHD_HTTP_HEADER_CONTENT_TYPE);
    /* Without a Content-Type the body must turn out empty (run_handler). */
    bool may_be_empty = (ex->route->flags & ROUTE_EMPTY_BODY_OK) && !ct;
    if (!may_be_empty && !media_type_is_json(ct)) {
      error_reply(rep, TS_E_UNSUPPORTED_MEDIA_TYPE,
                  "send the body as Content-Type: application/json (got %s)",
                  ct ? ct : "none");
      goto early;
    }
    const char *cl = request_header(&ex->req, MHD_HTTP_HEADER_CONTENT_LENGTH);
    unsigned long long n = cl ? strtoull(cl, NULL, 10) : 0;
    if (n > TS_MAX_BODY_BYTES) {
      error_reply(rep, TS_E_BODY_TOO_LARGE, "the body is larger than %u bytes",
                  TS_MAX_BODY_BYTES);
      rep->close = true; /* answered before the body, which is not read */
      goto early;
    }
    announced =
        n < TS_BODY_PRESIZE_MAX_BYTES ? (size_t)n : TS_BODY_PRESIZE_MAX_BYTES;
  }
  buf_init(&ex->body, TS_MAX_BODY_BYTES);
  buf_reserve(&ex->body, announced);
  return;
early:
  ex->replied_early = true;
}

static void run_handler(struct exchange *ex) {
  /* An empty body where the route allows one reaches it as body NULL. */
  bool no_body = (ex->route->flags & ROUTE_EMPTY_BODY_OK) &&
                 buf_status(&ex->body) == TS_OK && ex->body.len == 0;
  if ((ex->route->flags & ROUTE_JSON_BODY) && !no_body) {
    if (buf_status(&ex->body) == TS_ERR_TOO_LARGE) {
      error_reply(&ex->rep, TS_E_BODY_TOO_LARGE,
                  "the body is larger than %u bytes", TS_MAX_BODY_BYTES);
      return;
    }
    if (buf_status(&ex->body) != TS_OK) {
      error_reply(&ex->rep, TS_E_INTERNAL, "out of memory reading the body");
      return;
    }
    if (ex->body.len == 0) {
      error_reply(&ex->rep, TS_E_MALFORMED_JSON, "the body is empty");
      return;
    }
    const char *ct = request_header(&ex->req, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (!media_type_is_json(ct)) { /* a body came without its type */
      error_reply(&ex->rep, TS_E_UNSUPPORTED_MEDIA_TYPE,
                  "send the body as Content-Type: application/json (got none)");
      return;
    }
    /* RFC 8259 §8.1: a parser may ignore a leading byte order mark (the
     * .NET runtime's event files have one); jansson does not. */
    const char *text = ex->body.data;
    size_t len = ex->body.len;
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) {
      text += 3;
      len -= 3;
    }
    if (ex->route->flags & ROUTE_EXPECT_WRITE)
      store_expect_write(ex->req.app->store);
    struct json_parse_error jerr;
    /* One parser either way: json_parse is jdoc_parse and a tree. */
    enum ts_status st = (ex->route->flags & ROUTE_JSON_DOC)
                            ? jdoc_parse(text, len, &ex->req.doc, &jerr)
                            : json_parse(text, len, &ex->req.body, &jerr);
    if (st == TS_ERR_NOMEM) {
      error_reply(&ex->rep, TS_E_INTERNAL, "out of memory parsing the body");
      return;
    }
    if (st != TS_OK) {
      error_reply(&ex->rep, TS_E_MALFORMED_JSON, "%s at line %d, column %d",
                  jerr.text, jerr.line, jerr.column);
      return;
    }
    buf_free(&ex->body); /* the parsed document is all we keep */
  }
  ex->route->handler(&ex->req, &ex->rep);
  /* A handler that deferred or handed over its answer (ex->finish) writes
   * it once resumed. */
  if (ex->rep.status == 0 && !ex->finish)
    error_reply(&ex->rep, TS_E_INTERNAL, "the handler gave no answer");
}

static enum MHD_Result send_reply(struct MHD_Connection *conn,
                                  struct exchange *ex) {
  struct reply *rep = &ex->rep;
  struct MHD_Response *resp =
      rep->static_body
          ? MHD_create_response_from_buffer(rep->len, (void *)rep->static_body,
                                            MHD_RESPMEM_PERSISTENT)
          : MHD_create_response_from_buffer_with_free_callback(rep->len,
                                                               rep->body, free);
  if (!resp)
    return MHD_NO;
  rep->body = NULL; /* now owned by the response */
  bool ok = MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                                    rep->content_type ? rep->content_type
                                                      : "application/json");
  /* With an ETag a cache may keep the answer but must revalidate it. */
  ok = ok && MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL,
                                     rep->etag ? "no-cache" : "no-store");
  if (rep->retry_after_s) {
    char v[16];
    snprintf(v, sizeof v, "%u", rep->retry_after_s);
    ok = ok && MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, v);
  }
  if (rep->allow[0])
    ok = ok && MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, rep->allow);
  if (rep->etag)
    ok = ok && MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, rep->etag);
  if (rep->challenge)
    ok = ok && MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                       "Basic realm=\"tourney-stats ingest\"");
  /* While draining, every answer closes its connection: a keep-alive
   * client then reconnects, to another replica. */
  if (rep->close || atomic_load(&ex->srv->app->draining))
    ok = ok &&
         MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
  ok = ok && MHD_add_response_header(resp, "X-Request-Id", ex->request_id);
  enum MHD_Result r = ok ? MHD_queue_response(conn, rep->status, resp) : MHD_NO;
  MHD_destroy_response(resp);
  return r;
}

/* On an ingest worker: the handler (or the rest request_continue left of
 * it), unless the request already waited past its deadline; then the connection
 * goes back to its HTTP thread, which sends the reply. ex must not be touched
 * after the resume. */
static void run_offloaded(void *arg) {
  struct exchange *ex = arg;
  struct MHD_Connection *conn = ex->req.conn;
  log_set_request_id(ex->request_id);
  if (clock_now_ms() >= ex->req.deadline_ms) {
    metrics_count_late();
    if (ex->rest) /* finish answers */
      ex->finish_st = TS_ERR_UNAVAILABLE;
    else
      error_reply(&ex->rep, TS_E_STORE_UNAVAILABLE,
                  "the batch waited past its deadline for a worker; send it "
                  "again");
  } else if (ex->rest) {
    ex->finish_st = ex->rest(&ex->req, ex->finish_state);
  } else {
    run_handler(ex);
  }
  log_set_request_id(NULL);
  atomic_store(&ex->worker_done, true);
  MHD_resume_connection(conn);
}

static struct exchange *exchange_of(const struct request *req) {
  return (struct exchange *)(void *)((char *)(uintptr_t)req -
                                     offsetof(struct exchange, req));
}

bool request_can_defer(const struct request *req) {
  return exchange_of(req)->deferring;
}

void request_defer(struct request *req, request_finish_fn finish, void *state) {
  struct exchange *ex = exchange_of(req);
  ex->finish = finish;
  ex->finish_state = state;
}

/* On whatever thread the deferred work ends. ex must not be touched after
 * the resume; srv outlives it (http_server_stop waits for `suspended`). */
void request_resume(void *cls, enum ts_status st) {
  struct exchange *ex = exchange_of(cls);
  struct http_server *srv = ex->srv;
  ex->finish_st = st;
  atomic_store(&ex->worker_done, true);
  MHD_resume_connection(ex->req.conn);
  atomic_fetch_sub(&srv->suspended, 1);
}

/* Hands ex to an ingest worker (a place is reserved). The connection is
 * suspended first: the worker may finish and resume it at once. */
static void offload(struct exchange *ex) {
  ex->offloaded = true;
  MHD_suspend_connection(ex->req.conn);
  workers_submit(ex->srv->ingest, run_offloaded, ex);
}

bool request_continue(struct request *req, request_rest_fn rest,
                      request_finish_fn finish, void *state) {
  struct exchange *ex = exchange_of(req);
  struct http_server *srv = ex->srv;
  if (!ex->own_deadline_ms)
    return false;
  ex->req.deadline_ms = ex->own_deadline_ms;
  ex->own_deadline_ms = 0;
  /* The store is slow now: the next batches go to workers at once. */
  atomic_store(&srv->try_paused_until, clock_now_ms() + TS_INGEST_TRY_PAUSE_MS);
  if (!workers_reserve(srv->ingest))
    return false;
  metrics_count_handed_over();
  ex->rest = rest;
  ex->finish = finish;
  ex->finish_state = state;
  offload(ex);
  return true;
}

/* A ROUTE_DEFER handler, on this HTTP thread: the connection is suspended
 * first, since the deferred work may end and resume it before the handler
 * returns; a handler that answered at once is resumed here. */
static void run_deferring(struct exchange *ex, struct MHD_Connection *conn) {
  ex->offloaded = true;
  MHD_suspend_connection(conn);
  run_handler(ex);
  if (!ex->finish)
    request_resume(&ex->req, TS_OK);
}

/* Takes a place for a ROUTE_OFFLOAD request: a suspended connection where
 * its handler defers (ex->deferring: a ROUTE_DEFER route, a store that
 * applies asynchronously, a small body), else a worker's job; false when
 * there is none (bounded alike: workers + queue). */
static bool admit(struct exchange *ex) {
  struct http_server *srv = ex->srv;
  if (!(ex->route->flags & ROUTE_DEFER) || !srv->defer ||
      ex->body.len > TS_DEFER_MAX_BODY_BYTES)
    return workers_reserve(srv->ingest);
  if (atomic_fetch_add(&srv->suspended, 1) < srv->max_suspended)
    return ex->deferring = true;
  atomic_fetch_sub(&srv->suspended, 1);
  return false;
}

/* A small ROUTE_DEFER body on a store that does not apply asynchronously
 * is tried on this HTTP thread with a deadline cut to TS_INGEST_TRY_MS
 * (request_continue), unless a try ran out lately. A try saves two thread
 * hand-offs, but holds the other connections of its thread; so it is
 * taken only while ingestion is otherwise idle (no try, no worker job):
 * one sender's latency gains, and under concurrency batches go to the
 * workers as before (tries there doubled the p99 and saved nothing). */
static bool try_here(struct exchange *ex) {
  struct http_server *srv = ex->srv;
  if (!(ex->route->flags & ROUTE_DEFER) || srv->defer ||
      ex->body.len > TS_TRY_MAX_BODY_BYTES)
    return false;
  uint64_t now = clock_now_ms();
  bool none = false;
  if (now < atomic_load(&srv->try_paused_until) || !workers_idle(srv->ingest) ||
      !atomic_compare_exchange_strong(&srv->in_try, &none, true))
    return false;
  ex->own_deadline_ms = ex->req.deadline_ms;
  if (now + TS_INGEST_TRY_MS < ex->req.deadline_ms)
    ex->req.deadline_ms = now + TS_INGEST_TRY_MS;
  return true;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
                                  const char *url, const char *method,
                                  const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls) {
  (void)version;
  struct exchange *ex = *con_cls;
  if (!ex) {
    ex = calloc(1, sizeof *ex);
    if (!ex)
      return MHD_NO;
    ex->srv = cls;
    clock_gettime(CLOCK_MONOTONIC, &ex->start);
    atomic_fetch_add(&ex->srv->in_flight, 1);
    metrics_inflight_add(1);
    *con_cls = ex;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    ex->conn_guarded = ci ? ci->socket_context : NULL;
    conn_guard_headers_done(ex->srv->guard, ex->conn_guarded);
    set_request_id(conn, ex->request_id);
    log_set_request_id(ex->request_id);
    begin(ex, conn, url, method);
    /* An early error is answered now; MHD then closes the connection
     * instead of reading a body nobody wants. */
    enum MHD_Result r = ex->replied_early ? send_reply(conn, ex) : MHD_YES;
    log_set_request_id(NULL);
    return r;
  }
  if (*upload_data_size) {
    if (!ex->replied_early && ex->route && (ex->route->flags & ROUTE_JSON_BODY))
      buf_add(&ex->body, upload_data, *upload_data_size);
    *upload_data_size = 0;
    return MHD_YES;
  }
  if (!ex->body_done) {
    ex->body_done = true;
    conn_guard_body_done(ex->srv->guard, ex->conn_guarded);
  }
  if (ex->replied_early)
    return MHD_YES; /* already queued */
  log_set_request_id(ex->request_id);
  enum MHD_Result r = MHD_YES;
  if (!(ex->route->flags & ROUTE_OFFLOAD)) {
    run_handler(ex);
    r = send_reply(conn, ex);
  } else if (ex->offloaded) {
    /* Called again after the worker resumed the connection. */
    if (atomic_load(&ex->worker_done)) {
      if (ex->finish)
        ex->finish(&ex->req, &ex->rep, ex->finish_st, ex->finish_state);
      ex->finish = NULL;
      r = send_reply(conn, ex);
    }
  } else if (try_here(ex)) {
    struct http_server *srv = ex->srv;
    run_handler(ex);
    atomic_store(&srv->in_try, false);
    if (!ex->offloaded) /* else request_continue took it over */
      r = send_reply(conn, ex);
  } else if (!admit(ex)) {
    metrics_count_shed();
    error_reply(&ex->rep, TS_E_TOO_BUSY,
                "%u batches are in progress already (ingest workers + "
                "queue); send this one again after Retry-After",
                ex->srv->app->cfg->ingest_workers +
                    ex->srv->app->cfg->ingest_queue);
    r = send_reply(conn, ex);
  } else if (ex->deferring) {
    run_deferring(ex, conn);
  } else {
    offload(ex);
  }
  log_set_request_id(NULL);
  return r;
}

/* The one place per-request state is freed. */
static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
  (void)cls, (void)conn;
  struct exchange *ex = *con_cls;
  if (!ex)
    return;
  struct timespec end;
  clock_gettime(CLOCK_MONOTONIC, &end);
  double ms = (double)(end.tv_sec - ex->start.tv_sec) * 1e3 +
              (double)(end.tv_nsec - ex->start.tv_nsec) / 1e6;
  log_set_request_id(ex->request_id);
  /* An answer decided but never sent (the client left while its batch was
   * applied): written first, so that the log and the metrics count what
   * was decided, a batch applied is a 200; then freed below. */
  if (ex->finish && atomic_load(&ex->worker_done)) {
    ex->finish(&ex->req, &ex->rep, ex->finish_st, ex->finish_state);
    ex->finish = NULL;
  }
  /* No answer at all: the connection closed first (nginx's 499). */
  unsigned status = ex->rep.status ? ex->rep.status : HTTP_CLIENT_CLOSED;
  enum log_level lvl =
      status >= 500 || toe != MHD_REQUEST_TERMINATED_COMPLETED_OK ? LOG_WARN
                                                                  : LOG_DEBUG;
  if (log_enabled(lvl))
    log_event(lvl, "request", "{s:s, s:s, s:i, s:f, s:b}", "method",
              ex->req.method ? ex->req.method : "", "route",
              ex->route ? ex->route->name : "-", "status", (int)status, "ms",
              ms, "completed", toe == MHD_REQUEST_TERMINATED_COMPLETED_OK);
  log_set_request_id(NULL);
  metrics_observe_request(router_route_index(ex->route), status, ms / 1e3);
  metrics_inflight_add(-1);
  atomic_fetch_sub(&ex->srv->in_flight, 1);
  conn_guard_answer_sent(ex->srv->guard, ex->conn_guarded);
  for (size_t i = 0; i < ex->req.n_params; i++)
    free(ex->req.params[i]);
  json_decref(ex->req.body);
  jdoc_free(ex->req.doc);
  buf_free(&ex->body);
  reply_clear(&ex->rep);
  free(ex);
  *con_cls = NULL;
}

/* Registers each connection with the guard (its entry is the socket
 * context); MHD notifies the close before it closes the socket. */
static void on_connection(void *cls, struct MHD_Connection *conn,
                          void **socket_context,
                          enum MHD_ConnectionNotificationCode toe) {
  struct http_server *srv = cls;
  if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
    metrics_connections_add(1);
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    *socket_context = ci ? conn_guard_open(srv->guard, ci->connect_fd) : NULL;
  } else {
    metrics_connections_add(-1);
    conn_guard_close(srv->guard, *socket_context);
    *socket_context = NULL;
  }
}

/* Each connection needs a descriptor: raise the soft limit toward the
 * hard one, and lower the connection limit to what the hard one allows. */
static unsigned fit_descriptors(unsigned want) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
    return want;
  rlim_t need = (rlim_t)want + TS_FD_HEADROOM;
  if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
    rl.rlim_cur =
        rl.rlim_max == RLIM_INFINITY || rl.rlim_max > need ? need : rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0 && getrlimit(RLIMIT_NOFILE, &rl))
      return want;
  }
  if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
    unsigned fit = rl.rlim_cur > 2u * TS_FD_HEADROOM
                       ? (unsigned)(rl.rlim_cur - TS_FD_HEADROOM)
                       : TS_FD_HEADROOM;
    log_event(LOG_WARN, "connection limit lowered to the descriptor limit",
              "{s:i, s:i, s:i}", "wanted", (int)want, "max_connections",
              (int)fit, "nofile", (int)rl.rlim_cur);
    return fit;
  }
  return want;
}

__attribute__((format(printf, 2, 0))) static void
mhd_log(void *cls, const char *fmt, va_list ap) {
  (void)cls;
  char text[512];
  vsnprintf(text, sizeof text, fmt, ap);
  size_t n = strlen(text);
  while (n && (text[n - 1] == '\n' || text[n - 1] == '\r'))
    text[--n] = '\0';
  log_event(LOG_WARN, "libmicrohttpd", "{s:s}", "detail", text);
}

enum ts_status http_server_start(struct app *app, struct http_server **out,
                                 uint16_t *port) {
  *out = NULL;
  struct addrinfo hints = {.ai_flags =
                               AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV,
                           .ai_socktype = SOCK_STREAM};
  struct addrinfo *ai = NULL;
  char portstr[8];
  snprintf(portstr, sizeof portstr, "%u", (unsigned)app->cfg->port);
  int gai = getaddrinfo(app->cfg->bind, portstr, &hints, &ai);
  if (gai != 0) {
    log_event(LOG_ERROR, "bad bind address", "{s:s, s:s}", "bind",
              app->cfg->bind, "error", gai_strerror(gai));
    return TS_ERR_INVALID;
  }
  struct http_server *srv = calloc(1, sizeof *srv);
  if (!srv) {
    freeaddrinfo(ai);
    return TS_ERR_NOMEM;
  }
  srv->app = app;
  atomic_init(&srv->in_flight, 0);
  atomic_init(&srv->suspended, 0);
  srv->defer = store_can_apply_async(app->store);
  srv->max_suspended = app->cfg->ingest_workers + app->cfg->ingest_queue;
  atomic_init(&srv->try_paused_until, 0);
  atomic_init(&srv->in_try, false);
  atomic_init(&srv->closing, false);
  unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ITC |
                   MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME;
  const struct config *cfg = app->cfg;
  if (cfg->max_connections == 0) { /* config_load never gives it */
    log_event(LOG_ERROR, "no connection limit", "{s:i}", "max_connections", 0);
    freeaddrinfo(ai);
    free(srv);
    return TS_ERR_INVALID;
  }
  /* MHD splits its limit evenly among its threads and stops accepting
   * on a thread at its share; the guard enforces max_connections across
   * them, so MHD's limit is twice that. */
  unsigned mhd_conns = fit_descriptors(2u * cfg->max_connections);
  struct conn_guard_limits lim = {
      .max_connections = mhd_conns / 2u < cfg->max_connections
                             ? mhd_conns / 2u
                             : cfg->max_connections,
      .header_ms = cfg->header_timeout_s * 1000u,
      .body_ms = cfg->body_timeout_s * 1000u,
      .idle_ms = cfg->keepalive_s * 1000u,
      .evict_min_age_ms = TS_CONN_EVICT_MIN_AGE_MS,
  };
  /* MHD's own timeout restarts with every byte: a backstop behind the
   * guard's deadlines, and the bound on a client that stops reading. */
  unsigned idle_s = cfg->header_timeout_s;
  idle_s = cfg->body_timeout_s > idle_s ? cfg->body_timeout_s : idle_s;
  idle_s = cfg->keepalive_s > idle_s ? cfg->keepalive_s : idle_s;
  if (workers_new(cfg->ingest_workers, cfg->ingest_queue, &srv->ingest) !=
          TS_OK ||
      conn_guard_new(&lim, &srv->guard) != TS_OK) {
    workers_free(srv->ingest);
    freeaddrinfo(ai);
    free(srv);
    return TS_ERR_NOMEM;
  }
  if (ai->ai_family == AF_INET6)
    flags |= MHD_USE_IPv6;
  srv->daemon = MHD_start_daemon(
      flags, app->cfg->port, accept_policy, srv, on_request, srv,
      /* the logger must come first to catch messages about later options */
      MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_SOCK_ADDR,
      ai->ai_addr, MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)app->cfg->threads,
      MHD_OPTION_CONNECTION_LIMIT, mhd_conns, MHD_OPTION_CONNECTION_TIMEOUT,
      idle_s + 1u, MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
      MHD_OPTION_NOTIFY_CONNECTION, on_connection, srv,
      MHD_OPTION_UNESCAPE_CALLBACK, keep_escaped, NULL, MHD_OPTION_END);
  freeaddrinfo(ai);
  if (!srv->daemon) {
    log_event(LOG_ERROR, "could not listen", "{s:s, s:i}", "bind",
              app->cfg->bind, "port", (int)app->cfg->port);
    workers_free(srv->ingest);
    conn_guard_free(srv->guard);
    free(srv);
    return TS_ERR_IO;
  }
  const union MHD_DaemonInfo *info =
      MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
  *port = info ? info->port : app->cfg->port;
  *out = srv;
  return TS_OK;
}

void http_server_stop(struct http_server *srv, unsigned grace_ms) {
  if (!srv)
    return;
  atomic_store(&srv->closing, true); /* stop taking connections */
  for (unsigned waited = 0; waited < grace_ms; waited += 10) {
    if (atomic_load(&srv->in_flight) == 0)
      break;
    usleep(10 * 1000);
  }
  unsigned left = atomic_load(&srv->in_flight);
  if (left)
    log_event(LOG_WARN, "stopping with requests in flight", "{s:i}", "count",
              (int)left);
  /* Workers first: each job ends by its deadline and resumes its
   * connection; MHD must not stop with a connection suspended. Deferred
   * work ends by its deadline too (the store's committer runs until the
   * store closes, after this). */
  workers_free(srv->ingest);
  while (atomic_load(&srv->suspended) > 0)
    usleep(1000);
  MHD_stop_daemon(srv->daemon);
  conn_guard_free(srv->guard); /* after MHD: no more notifications */
  free(srv);
}
