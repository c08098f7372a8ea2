/* AWS JSON-API client: DynamoDB and Kinesis (see ddb.h).
 *
 * Connections. Debian 12's libcurl 7.88.1 documents that sharing the
 * connection cache through a CURLSH between concurrent threads is unsafe
 * (curl KNOWN_BUGS "A shared connection cache is not thread-safe", issue
 * #4915), and ddb_execute runs on several server threads at once. So the
 * CURLSH shares only the DNS cache and TLS sessions (both safe with the
 * lock callbacks), and connections live in the connection cache of a curl
 * multi handle. Multi handles are pooled as "contexts": a context (the
 * multi, its connections and its easy handles) serves one ddb_execute at a
 * time and goes back to the pool afterwards, so connections are reused
 * across calls and threads without ever being touched by two threads.
 *
 * TLS peers are verified against the system trust store, or against the
 * PEM file named by AWS_CA_BUNDLE (the SDKs' setting, read in
 * ddb_client_new) when it is set. For the system store we use libcurl's
 * CA directory (Debian: /etc/ssl/certs, hashed) rather than its bundle
 * file: curl 7.88 parses the whole ~140-certificate bundle for every new
 * TLS connection (~30 ms of CPU, measured here), while the directory is
 * looked up lazily (~2 ms per handshake).
 *
 * Outcome of an attempt, in order: a body over DDB_MAX_RESPONSE_BYTES is
 * rejected; a transport error or timeout is retried; a response whose
 * x-amz-crc32 does not match the raw body is retried; a body that is not a
 * JSON object is retried; 200 is done; otherwise the error is classified
 * (ddb_classify_error). Errors the client itself notices get these
 * error_type names: ConnectionError, RequestTimeout, CRC32CheckFailed,
 * InvalidResponse, ResponseTooLarge, HttpError (an error status without
 * __type), SigningFailed, DeadlineExceeded (no attempt could be started). */
#include "ddb.h"

#include "../common/backoff.h"
#include "../common/bounds.h"
#include "../common/clock.h"
#include "../common/json_parse.h"
#include "../common/log.h"
#include <curl/curl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <zlib.h>

#include "ddb_test.h"
#include "sigv4.h"

/* Bounds of this module (not in common/bounds.h: they only concern the
 * DynamoDB client). */
#define DDB_MAX_PARALLEL 32u      /* attempts in flight per ddb_execute */
#define DDB_MAX_IDLE_CONTEXTS 16u /* pooled multi handles with connections */
#define DDB_MAX_CACHED_CONNS 64L  /* idle connections kept per context */
#define DDB_ATTEMPT_TIMEOUT_MS 2000u
#define DDB_CONNECT_TIMEOUT_MS 1000u
#define DDB_MIN_ATTEMPT_MS 10u /* never start an attempt with less left */
#define DDB_BACKOFF_BASE_MS 25u
#define DDB_BACKOFF_CAP_MS 1000u
#define DDB_POLL_MAX_MS 1000 /* upper bound of one curl_multi_poll */
/* BatchGetItem returns up to 16 MB: more is not a DynamoDB answer. */
#define DDB_MAX_RESPONSE_BYTES (16u * 1024u * 1024u)
/* curl 7.88 sends "Expect: 100-continue" for bodies from 1 MiB and then
 * waits up to 1 s for a 100; we suppress it for such bodies. Our own signer
 * never sees the removal header, so it cannot be signed wrongly. */
#define DDB_EXPECT_THRESHOLD (1024u * 1024u)

/* What differs between the services; everything else is shared. */
struct service_desc {
  const char *content_type;
  const char *target_prefix; /* X-Amz-Target = prefix + op */
  const char *name;          /* signing name and endpoint host label */
  const char *endpoint_env;  /* AWS_ENDPOINT_URL_<SERVICE> */
  bool reports_capacity;     /* ReturnConsumedCapacity is DynamoDB's */
};

static const struct service_desc services[] = {
    [DDB_SERVICE_DYNAMODB] = {"application/x-amz-json-1.0",
                              "DynamoDB_20120810.", "dynamodb",
                              "AWS_ENDPOINT_URL_DYNAMODB", true},
    [DDB_SERVICE_KINESIS] = {"application/x-amz-json-1.1", "Kinesis_20131202.",
                             "kinesis", "AWS_ENDPOINT_URL_KINESIS", false},
};

static const struct service_desc *service_of(enum ddb_service s) {
  return (size_t)s < sizeof services / sizeof services[0] ? &services[s] : NULL;
}

/* ------------------------------------------------------------------ */
/* Client */

/* A multi handle and its connection cache; used by one
 * ddb_execute at a time. */
struct ctx {
  CURLM *multi;
  struct ctx *next;
};

struct ddb_client {
  const struct service_desc *svc;
  char *endpoint; /* normalised, no trailing slash, for logs */
  char *url;      /* what curl is given */
  char *host;     /* Host header, port only when not the scheme's default */
  char *path;     /* signed and requested path, ends with '/' */
  char *region;
  char *ca_file;   /* AWS_CA_BUNDLE, or NULL for the system trust store */
  bool use_ca_dir; /* trust libcurl's default CA directory, not its file */
  struct aws_creds_provider *creds;
  CURLSH *share;
  pthread_mutex_t share_mu[CURL_LOCK_DATA_LAST];
  size_t n_share_mu;
  pthread_mutex_t pool_mu;
  bool pool_mu_ok;
  bool curl_ok;
  struct ctx *pool;
  size_t n_pool;
  atomic_uint_fast64_t connects;
  unsigned max_in_flight; /* set before the first call */
  atomic_uint in_flight;  /* attempts running, at most max_in_flight */
  atomic_uint waiters;    /* calls waiting on place_cv with nothing running */
  pthread_mutex_t place_mu;
  pthread_cond_t place_cv; /* on CLOCK_MONOTONIC */
  bool place_ok;
};

/* Joins NULL-terminated strings into a new one (NULL on OOM). */
static char *concat(const char *first, ...) {
  va_list ap;
  size_t len = 0;
  va_start(ap, first);
  for (const char *s = first; s; s = va_arg(ap, const char *))
    len += strlen(s);
  va_end(ap);
  char *out = malloc(len + 1);
  if (!out)
    return NULL;
  char *p = out;
  va_start(ap, first);
  for (const char *s = first; s; s = va_arg(ap, const char *)) {
    size_t l = strlen(s);
    memcpy(p, s, l);
    p += l;
  }
  va_end(ap);
  *p = '\0';
  return out;
}

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access acc,
                       void *ud) {
  (void)h;
  (void)acc;
  struct ddb_client *c = ud;
  if ((size_t)data < c->n_share_mu)
    pthread_mutex_lock(&c->share_mu[data]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *ud) {
  (void)h;
  struct ddb_client *c = ud;
  if ((size_t)data < c->n_share_mu)
    pthread_mutex_unlock(&c->share_mu[data]);
}

/* Region names go into a host name: lower-case letters, digits, '-'. */
static bool region_ok(const char *r) {
  if (!r || !*r || strlen(r) > 64)
    return false;
  for (const char *p = r; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-'))
      return false;
  return true;
}

static const char *env_nonempty(const char *name) {
  const char *v = getenv(name);
  return v && *v ? v : NULL;
}

/* Splits the endpoint URL into what requests need. Only http and https,
 * no user info, query or fragment. Trailing slashes of the path are
 * dropped; requests go to that path plus "/" (the operation path), as the
 * SDKs do, so "http://h:8000" and "http://h:8000/" both POST to "/". */
static enum ts_status parse_endpoint(struct ddb_client *c, const char *raw) {
  enum ts_status st = TS_ERR_INVALID;
  char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL, *extra = NULL;
  CURLU *u = curl_url();
  if (!u)
    return TS_ERR_NOMEM;
  CURLUcode rc = curl_url_set(u, CURLUPART_URL, raw, 0);
  if (rc == CURLUE_OUT_OF_MEMORY)
    st = TS_ERR_NOMEM;
  if (rc != CURLUE_OK)
    goto out;
  if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
      curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
      curl_url_get(u, CURLUPART_PATH, &path, 0) != CURLUE_OK)
    goto out;
  bool https = strcmp(scheme, "https") == 0;
  if (!https && strcmp(scheme, "http") != 0)
    goto out;
  static const CURLUPart forbidden[] = {CURLUPART_USER, CURLUPART_PASSWORD,
                                        CURLUPART_OPTIONS, CURLUPART_QUERY,
                                        CURLUPART_FRAGMENT};
  for (size_t i = 0; i < sizeof forbidden / sizeof forbidden[0]; i++) {
    if (curl_url_get(u, forbidden[i], &extra, 0) == CURLUE_OK)
      goto out;
  }
  rc = curl_url_get(u, CURLUPART_PORT, &port, 0);
  if (rc != CURLUE_OK && rc != CURLUE_NO_PORT)
    goto out;
  if (port && strcmp(port, https ? "443" : "80") == 0) {
    curl_free(port);
    port = NULL;
  }
  size_t plen = strlen(path);
  while (plen > 0 && path[plen - 1] == '/')
    path[--plen] = '\0';

  st = TS_ERR_NOMEM;
  c->host = port ? concat(host, ":", port, (char *)NULL) : strdup(host);
  c->endpoint =
      concat(scheme, "://", c->host ? c->host : "", path, (char *)NULL);
  c->path = concat(path, "/", (char *)NULL);
  c->url = concat(scheme, "://", c->host ? c->host : "", c->path ? c->path : "",
                  (char *)NULL);
  if (c->host && c->endpoint && c->path && c->url)
    st = TS_OK;
out:
  curl_free(scheme);
  curl_free(host);
  curl_free(port);
  curl_free(path);
  curl_free(extra);
  curl_url_cleanup(u);
  return st;
}

static enum ts_status resolve_endpoint(const struct ddb_options *opt,
                                       const struct service_desc *svc,
                                       char **out) {
  const char *e = opt->endpoint && *opt->endpoint ? opt->endpoint : NULL;
  if (!e)
    e = env_nonempty(svc->endpoint_env);
  if (!e)
    e = env_nonempty("AWS_ENDPOINT_URL");
  if (e)
    *out = strdup(e);
  else /* China regions live under amazonaws.com.cn */
    *out =
        concat("https://", svc->name, ".", opt->region, ".amazonaws.com",
               strncmp(opt->region, "cn-", 3) == 0 ? ".cn" : "", (char *)NULL);
  return *out ? TS_OK : TS_ERR_NOMEM;
}

static void ctx_free(struct ctx *x) {
  if (!x)
    return;
  if (x->multi)
    curl_multi_cleanup(x->multi);
  free(x);
}

static struct ctx *ctx_new(void) {
  struct ctx *x = calloc(1, sizeof *x);
  if (!x)
    return NULL;
  x->multi = curl_multi_init();
  if (!x->multi || curl_multi_setopt(x->multi, CURLMOPT_MAXCONNECTS,
                                     DDB_MAX_CACHED_CONNS) != CURLM_OK) {
    ctx_free(x);
    return NULL;
  }
  return x;
}

/* Takes a pooled context or makes one. */
static struct ctx *ctx_take(struct ddb_client *c) {
  pthread_mutex_lock(&c->pool_mu);
  struct ctx *x = c->pool;
  if (x) {
    c->pool = x->next;
    c->n_pool--;
    x->next = NULL;
  }
  pthread_mutex_unlock(&c->pool_mu);
  return x ? x : ctx_new();
}

/* Returns a context to the pool; one that failed midway, or beyond the
 * pool's bound, is freed (closing its connections). */
static void ctx_put(struct ddb_client *c, struct ctx *x, bool healthy) {
  if (!x)
    return;
  if (healthy) {
    pthread_mutex_lock(&c->pool_mu);
    if (c->n_pool < DDB_MAX_IDLE_CONTEXTS) {
      x->next = c->pool;
      c->pool = x;
      c->n_pool++;
      x = NULL;
    }
    pthread_mutex_unlock(&c->pool_mu);
  }
  ctx_free(x);
}

enum ts_status ddb_client_new(const struct ddb_options *opt,
                              struct aws_creds_provider *creds,
                              struct ddb_client **out) {
  enum ts_status st = TS_ERR_INVALID;
  char *raw = NULL;
  *out = NULL;
  if (!opt || !creds || !region_ok(opt->region) || !service_of(opt->service))
    return TS_ERR_INVALID;
  struct ddb_client *c = calloc(1, sizeof *c);
  if (!c)
    return TS_ERR_NOMEM;
  c->svc = service_of(opt->service);
  atomic_init(&c->connects, 0);
  c->max_in_flight = TS_DEFAULT_DDB_MAX_IN_FLIGHT;
  atomic_init(&c->in_flight, 0);
  atomic_init(&c->waiters, 0);
  c->creds = creds;
  st = TS_ERR_NOMEM;
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
    goto fail;
  c->curl_ok = true;
  if (pthread_mutex_init(&c->pool_mu, NULL) != 0)
    goto fail;
  c->pool_mu_ok = true;
  if (!clock_cond_init(&c->place_cv))
    goto fail;
  if (pthread_mutex_init(&c->place_mu, NULL) != 0) {
    pthread_cond_destroy(&c->place_cv);
    goto fail;
  }
  c->place_ok = true;
  for (; c->n_share_mu < CURL_LOCK_DATA_LAST; c->n_share_mu++)
    if (pthread_mutex_init(&c->share_mu[c->n_share_mu], NULL) != 0)
      goto fail;
  c->region = strdup(opt->region);
  if (!c->region)
    goto fail;
  const char *ca = env_nonempty("AWS_CA_BUNDLE");
  if (ca && !(c->ca_file = strdup(ca)))
    goto fail;
  const curl_version_info_data *vi = curl_version_info(CURLVERSION_NOW);
  c->use_ca_dir = !ca && vi->capath && *vi->capath;
  st = resolve_endpoint(opt, c->svc, &raw);
  if (st != TS_OK)
    goto fail;
  st = parse_endpoint(c, raw);
  if (st != TS_OK)
    goto fail;
  st = TS_ERR_NOMEM;
  c->share = curl_share_init();
  if (!c->share ||
      curl_share_setopt(c->share, CURLSHOPT_USERDATA, c) != CURLSHE_OK ||
      curl_share_setopt(c->share, CURLSHOPT_LOCKFUNC, share_lock) !=
          CURLSHE_OK ||
      curl_share_setopt(c->share, CURLSHOPT_UNLOCKFUNC, share_unlock) !=
          CURLSHE_OK ||
      curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) !=
          CURLSHE_OK ||
      curl_share_setopt(c->share, CURLSHOPT_SHARE,
                        CURL_LOCK_DATA_SSL_SESSION) != CURLSHE_OK)
    goto fail;
  free(raw);
  *out = c;
  return TS_OK;
fail:
  free(raw);
  ddb_client_free(c);
  return st;
}

void ddb_client_set_max_in_flight(struct ddb_client *c, unsigned n) {
  c->max_in_flight = n ? n : TS_DEFAULT_DDB_MAX_IN_FLIGHT;
}

void ddb_client_free(struct ddb_client *c) {
  if (!c)
    return;
  /* Easy handles must leave the share before it can be cleaned up. */
  while (c->pool) {
    struct ctx *x = c->pool;
    c->pool = x->next;
    ctx_free(x);
  }
  if (c->share)
    curl_share_cleanup(c->share);
  for (size_t i = 0; i < c->n_share_mu; i++)
    pthread_mutex_destroy(&c->share_mu[i]);
  if (c->pool_mu_ok)
    pthread_mutex_destroy(&c->pool_mu);
  if (c->place_ok) {
    pthread_mutex_destroy(&c->place_mu);
    pthread_cond_destroy(&c->place_cv);
  }
  if (c->curl_ok)
    curl_global_cleanup();
  free(c->endpoint);
  free(c->url);
  free(c->host);
  free(c->path);
  free(c->region);
  free(c->ca_file);
  free(c);
}

const char *ddb_client_endpoint(const struct ddb_client *c) {
  return c->endpoint;
}

enum ts_status ddb_client_from_env(struct aws_creds_provider **creds,
                                   struct ddb_client **client, char **region) {
  return ddb_client_from_env_for(DDB_SERVICE_DYNAMODB, creds, client, region);
}

enum ts_status ddb_client_from_env_for(enum ddb_service service,
                                       struct aws_creds_provider **creds,
                                       struct ddb_client **client,
                                       char **region) {
  enum ts_status st = TS_ERR_NOMEM;
  *creds = NULL;
  *client = NULL;
  if (region)
    *region = NULL;
  const struct service_desc *svc = service_of(service);
  if (!svc)
    return TS_ERR_INVALID;
  char *r = aws_region_resolve();
  if (!r) {
    if (!env_nonempty(svc->endpoint_env) && !env_nonempty("AWS_ENDPOINT_URL")) {
      log_event(LOG_ERROR, "no AWS region: set AWS_REGION", NULL);
      return TS_ERR_INVALID;
    }
    if (!(r = strdup("us-east-1")))
      return TS_ERR_NOMEM;
  }
  if ((st = aws_creds_provider_new(creds)) != TS_OK)
    goto fail;
  struct ddb_options opt = {.region = r, .endpoint = NULL, .service = service};
  if ((st = ddb_client_new(&opt, *creds, client)) != TS_OK)
    goto fail;
  if (region)
    *region = r;
  else
    free(r);
  return TS_OK;
fail:
  aws_creds_provider_free(*creds);
  *creds = NULL;
  free(r);
  return st;
}

uint64_t ddb_client_connects(const struct ddb_client *c) {
  return atomic_load(&c->connects);
}

/* ------------------------------------------------------------------ */
/* Consumed capacity */

/* Units are kept in millionths, as integers, so that adding is one atomic
 * operation (DynamoDB reports halves for eventually consistent reads, and
 * fractions in sums). A table's row is claimed once under the mutex and
 * never changes name afterwards. */
struct consumed_row {
  char table[sizeof((struct ddb_consumed *)0)->table];
  atomic_uint_fast64_t read_micro, write_micro;
};
static struct consumed_row consumed[DDB_CAPACITY_TABLES];
static atomic_size_t n_consumed;
static pthread_mutex_t consumed_mu = PTHREAD_MUTEX_INITIALIZER;

static struct consumed_row *consumed_row_of(const char *table) {
  size_t n = atomic_load(&n_consumed);
  for (size_t i = 0; i < n; i++)
    if (strcmp(consumed[i].table, table) == 0)
      return &consumed[i];
  pthread_mutex_lock(&consumed_mu);
  struct consumed_row *row = NULL;
  n = atomic_load(&n_consumed);
  for (size_t i = 0; i < n && !row; i++)
    if (strcmp(consumed[i].table, table) == 0)
      row = &consumed[i];
  if (!row && n < DDB_CAPACITY_TABLES) {
    row = &consumed[n];
    /* The last row sums every table past the bound. */
    snprintf(row->table, sizeof row->table, "%s",
             n + 1 < DDB_CAPACITY_TABLES ? table : "(other)");
    atomic_store(&n_consumed, n + 1);
  } else if (!row) {
    row = &consumed[DDB_CAPACITY_TABLES - 1];
  }
  pthread_mutex_unlock(&consumed_mu);
  return row;
}

static bool op_is_read(const char *op) {
  return strcmp(op, "GetItem") == 0 || strcmp(op, "BatchGetItem") == 0 ||
         strcmp(op, "Query") == 0 || strcmp(op, "Scan") == 0;
}

static bool op_reports_capacity(const char *op) {
  static const char *const ops[] = {
      "GetItem",      "PutItem",        "DeleteItem", "UpdateItem",
      "BatchGetItem", "BatchWriteItem", "Query",      "Scan"};
  for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
    if (strcmp(op, ops[i]) == 0)
      return true;
  return false;
}

static uint_fast64_t micro_units(const json_t *v) {
  double u = json_is_number(v) ? json_number_value(v) : 0;
  return u > 0 && u < 1e12 ? (uint_fast64_t)(u * 1e6 + 0.5) : 0;
}

/* Adds one ConsumedCapacity object: ReadCapacityUnits and
 * WriteCapacityUnits when DynamoDB splits them, else CapacityUnits by the
 * kind of the operation. */
static void add_consumed_one(const char *op, const json_t *cc) {
  const char *table = json_string_value(json_object_get(cc, "TableName"));
  if (!json_is_object(cc) || !table || !*table)
    return;
  const json_t *r = json_object_get(cc, "ReadCapacityUnits");
  const json_t *w = json_object_get(cc, "WriteCapacityUnits");
  uint_fast64_t read = 0, write = 0;
  if (r || w) {
    read = micro_units(r);
    write = micro_units(w);
  } else if (op_is_read(op)) {
    read = micro_units(json_object_get(cc, "CapacityUnits"));
  } else {
    write = micro_units(json_object_get(cc, "CapacityUnits"));
  }
  if (!read && !write)
    return;
  struct consumed_row *row = consumed_row_of(table);
  atomic_fetch_add(&row->read_micro, read);
  atomic_fetch_add(&row->write_micro, write);
}

static void add_consumed(const char *op, const json_t *body) {
  const json_t *cc = json_object_get(body, "ConsumedCapacity");
  size_t i;
  const json_t *one;
  if (json_is_array(cc)) {
    json_array_foreach(cc, i, one) add_consumed_one(op, one);
  } else if (cc) {
    add_consumed_one(op, cc);
  }
}

size_t ddb_consumed_snapshot(struct ddb_consumed *out, size_t cap) {
  size_t n = atomic_load(&n_consumed);
  if (n > cap)
    n = cap;
  for (size_t i = 0; i < n; i++) {
    memcpy(out[i].table, consumed[i].table, sizeof out[i].table);
    out[i].read_units = (double)atomic_load(&consumed[i].read_micro) / 1e6;
    out[i].write_units = (double)atomic_load(&consumed[i].write_micro) / 1e6;
  }
  return n;
}

/* The request as sent: with ReturnConsumedCapacity=TOTAL for the
 * operations that report it (a shallow copy; the caller's request is not
 * touched). Compact JSON, or NULL on NOMEM. */
static char *request_text(const struct service_desc *svc, const char *op,
                          const json_t *request, const char *text) {
  bool capacity = svc->reports_capacity && op_reports_capacity(op);
  if (text) { /* "{...}": the member goes first */
    static const char member[] = "\"ReturnConsumedCapacity\":\"TOTAL\"";
    if (!capacity)
      return strdup(text);
    bool empty = text[1] == '}';
    return concat("{", member, empty ? "" : ",", text + 1, (char *)NULL);
  }
  if (!capacity || json_object_get(request, "ReturnConsumedCapacity"))
    return json_dumps(request, JSON_COMPACT);
  json_t *copy = json_copy((json_t *)request);
  char *out = NULL;
  if (copy && json_object_set_new(copy, "ReturnConsumedCapacity",
                                  json_string("TOTAL")) == 0)
    out = json_dumps(copy, JSON_COMPACT);
  json_decref(copy);
  return out;
}

/* ------------------------------------------------------------------ */
/* Classification */

static bool in_list(const char *s, const char *const *list, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(s, list[i]) == 0)
      return true;
  return false;
}

/* Retryable error codes (botocore's standard retry mode, DynamoDB's and
 * Kinesis's error tables), in two lists so that /metrics can tell a
 * throttled call from a transient failure. Kinesis throttles with
 * ProvisionedThroughputExceededException, LimitExceededException and
 * KMSThrottlingException. Kinesis's ExpiredIteratorException is in
 * neither: the same iterator fails again, the caller must get a new one. */
static const char *const throttling_types[] = {
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "Throttling",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "LimitExceededException",
    "BandwidthLimitExceeded",
    "SlowDown",
    "KMSThrottlingException", /* Kinesis: the stream's key is throttled */
};
static const char *const transient_types[] = {
    "TransactionConflictException",
    "TransactionInProgressException",
    "InternalServerError",
    "InternalFailure",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "RequestTimeout",
    "RequestTimeoutException",
    "PriorRequestNotComplete",
};
#define IN_LIST(s, list) in_list((s), (list), sizeof(list) / sizeof((list)[0]))

/* TransactionCanceledException is worth retrying only when every reason
 * is transient (a conflict or throttling) or "None"; a failed condition or
 * a validation error in any item would fail again. */
static bool cancellation_retryable(const json_t *body) {
  static const char *const transient[] = {
      "TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded",
      "RequestLimitExceeded"};
  const json_t *reasons = json_object_get(body, "CancellationReasons");
  size_t i;
  const json_t *r;
  bool any = false;
  if (!json_is_array(reasons))
    return false;
  json_array_foreach(reasons, i, r) {
    const char *code = json_string_value(json_object_get(r, "Code"));
    if (!code || strcmp(code, "None") == 0)
      continue;
    if (!in_list(code, transient, sizeof transient / sizeof transient[0]))
      return false;
    any = true;
  }
  return any;
}

enum ddb_error_class ddb_classify_error(long http_status, const char *type,
                                        const json_t *body) {
  if (!type)
    type = "";
  if (strcmp(type, "ConditionalCheckFailedException") == 0)
    return DDB_CLASS_CONDITION;
  if (http_status >= 500 && http_status <= 599)
    return DDB_CLASS_RETRY;
  if (IN_LIST(type, throttling_types) || IN_LIST(type, transient_types))
    return DDB_CLASS_RETRY;
  if (strcmp(type, "TransactionCanceledException") == 0)
    return cancellation_retryable(body) ? DDB_CLASS_RETRY : DDB_CLASS_REJECT;
  if (http_status == 429)
    return DDB_CLASS_RETRY;
  return DDB_CLASS_REJECT;
}

enum ddb_retry_reason ddb_retry_reason_of(long http_status, const char *type) {
  if (http_status == 429 || (type && IN_LIST(type, throttling_types)))
    return DDB_RETRY_THROTTLED;
  return DDB_RETRY_TRANSIENT;
}

uint32_t ddb_backoff_ceiling_ms(unsigned attempts_done) {
  return backoff_ceiling_ms(DDB_BACKOFF_BASE_MS, DDB_BACKOFF_CAP_MS,
                            attempts_done);
}

/* ------------------------------------------------------------------ */
/* One ddb_execute */

enum slot_state { SLOT_WAITING, SLOT_RUNNING, SLOT_FINISHED };
enum crc_state { CRC_NONE, CRC_SEEN, CRC_MALFORMED };

struct slot {
  const struct service_desc *svc;
  struct ddb_call *call;
  char *body; /* compact JSON of the request */
  size_t body_len;
  char *target; /* e.g. "DynamoDB_20120810.<op>" */
  enum slot_state state;
  uint64_t not_before; /* monotonic ms: earliest start of the next attempt */
  CURL *easy;          /* while running */
  struct curl_slist *headers;
  char *resp; /* raw body of the current attempt */
  size_t resp_len, resp_cap;
  bool too_large;
  enum crc_state crc;
  uint32_t crc_value;
  enum ddb_retry_reason why; /* of the last attempt judged V_RETRY */
  bool waited; /* its next attempt found no place (max_in_flight) */
  char errbuf[CURL_ERROR_SIZE];
};

struct exec {
  struct ddb_client *c;
  struct ctx *ctx;
  struct slot *slots;
  size_t n;
  size_t running;
  uint64_t deadline;
  struct sigv4_key key;
};

static void set_error(struct ddb_call *call, const char *type,
                      const char *message) {
  snprintf(call->error_type, sizeof call->error_type, "%s", type ? type : "");
  snprintf(call->error_message, sizeof call->error_message, "%s",
           message ? message : "");
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud) {
  struct slot *s = ud;
  size_t len = size * nmemb;
  if (nmemb && len / nmemb != size)
    return 0;
  if (len > DDB_MAX_RESPONSE_BYTES - s->resp_len) {
    s->too_large = true;
    return 0; /* curl aborts with CURLE_WRITE_ERROR */
  }
  if (s->resp_len + len > s->resp_cap) {
    size_t cap = s->resp_cap ? s->resp_cap : 4096;
    while (cap < s->resp_len + len)
      cap *= 2;
    if (cap > DDB_MAX_RESPONSE_BYTES)
      cap = DDB_MAX_RESPONSE_BYTES;
    char *p = realloc(s->resp, cap);
    if (!p)
      return 0;
    s->resp = p;
    s->resp_cap = cap;
  }
  memcpy(s->resp + s->resp_len, data, len);
  s->resp_len += len;
  return len;
}

/* Reads x-amz-crc32 (a decimal uint32). A status line starts a new header
 * block (e.g. after "100 Continue"), so it resets what was seen. */
static size_t on_header(char *data, size_t size, size_t nmemb, void *ud) {
  struct slot *s = ud;
  size_t len = size * nmemb;
  static const char name[] = "x-amz-crc32:";
  if (len >= 5 && memcmp(data, "HTTP/", 5) == 0) {
    s->crc = CRC_NONE;
    return len;
  }
  if (len < sizeof name - 1 || strncasecmp(data, name, sizeof name - 1) != 0)
    return len;
  size_t i = sizeof name - 1, end = len;
  while (i < end && (data[i] == ' ' || data[i] == '\t'))
    i++;
  while (end > i && (data[end - 1] == '\r' || data[end - 1] == '\n' ||
                     data[end - 1] == ' ' || data[end - 1] == '\t'))
    end--;
  uint64_t v = 0;
  bool ok = end > i && end - i <= 10;
  for (size_t k = i; ok && k < end; k++) {
    if (data[k] < '0' || data[k] > '9')
      ok = false;
    else
      v = v * 10 + (uint64_t)(data[k] - '0');
  }
  if (ok && v <= UINT32_MAX) {
    s->crc = CRC_SEEN;
    s->crc_value = (uint32_t)v;
  } else {
    s->crc = CRC_MALFORMED;
  }
  return len;
}

static CURL *easy_take(struct exec *ex) {
  CURL *e = curl_easy_init();
  if (e && curl_easy_setopt(e, CURLOPT_SHARE, ex->c->share) != CURLE_OK) {
    curl_easy_cleanup(e);
    e = NULL;
  }
  return e;
}

/* Over all of a client's calls at once, ddb_client_set_max_in_flight
 * bounds the attempts in flight (a setting: its default is in
 * common/bounds.h). An attempt that finds no place waits for one within
 * its call's deadline: woken by its call's own transfers when it has some,
 * else by a place given back. */
static bool in_flight_take(struct ddb_client *c) {
  unsigned n = atomic_load(&c->in_flight);
  while (n < c->max_in_flight)
    if (atomic_compare_exchange_weak(&c->in_flight, &n, n + 1))
      return true;
  return false;
}

static void in_flight_give(struct ddb_client *c) {
  atomic_fetch_sub(&c->in_flight, 1);
  if (atomic_load(&c->waiters) > 0) {
    pthread_mutex_lock(&c->place_mu);
    pthread_cond_broadcast(&c->place_cv);
    pthread_mutex_unlock(&c->place_mu);
  }
}

/* Waits until a place may be free or until `until` (monotonic ms). The
 * count is raised before the place is looked at again, so a place given
 * back after that look wakes the wait. */
static void in_flight_wait(struct ddb_client *c, uint64_t until) {
  pthread_mutex_lock(&c->place_mu);
  atomic_fetch_add(&c->waiters, 1);
  if (atomic_load(&c->in_flight) >= c->max_in_flight)
    clock_cond_wait_until(&c->place_cv, &c->place_mu, until);
  atomic_fetch_sub(&c->waiters, 1);
  pthread_mutex_unlock(&c->place_mu);
}

/* Detaches the slot's easy handle from the multi and frees it. Easy handles
 * are not reused: Debian 12's libcurl 7.88.1 keeps a header pointer across
 * transfers of a reused handle (curl#11101, fixed in 8.1.0), and a response
 * starting with a folded header line then reads freed memory (found by
 * fuzz/fuzz_ddb_http). Nothing is lost: connections live in the multi
 * handle's cache, not in the easy handle. */
static void easy_release(struct exec *ex, struct slot *s) {
  if (!s->easy)
    return;
  curl_multi_remove_handle(ex->ctx->multi, s->easy);
  curl_easy_cleanup(s->easy);
  s->easy = NULL;
  if (s->state == SLOT_RUNNING) {
    ex->running--;
    in_flight_give(ex->c);
  }
}

static bool add_header(struct curl_slist **list, const char *name,
                       const char *value) {
  char *line = concat(name, ": ", value, (char *)NULL);
  if (!line)
    return false;
  struct curl_slist *l = curl_slist_append(*list, line);
  free(line);
  if (!l)
    return false;
  *list = l;
  return true;
}

static bool set_options(struct exec *ex, struct slot *s, long timeout_ms) {
  CURL *e = s->easy;
  long connect_ms = timeout_ms < (long)DDB_CONNECT_TIMEOUT_MS
                        ? timeout_ms
                        : (long)DDB_CONNECT_TIMEOUT_MS;
  bool ok = true;
  ok &= curl_easy_setopt(e, CURLOPT_URL, ex->c->url) == CURLE_OK;
  ok &= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") == CURLE_OK;
  ok &= curl_easy_setopt(e, CURLOPT_PRIVATE, (void *)s) == CURLE_OK;
  ok &= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) == CURLE_OK;
  ok &= curl_easy_setopt(e, CURLOPT_HTTP_VERSION,
                         (long)CURL_HTTP_VERSION_1_1) == CURLE_OK;
  ok &= curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L) == CURLE_OK;
  ok &= curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)s->body_len) == CURLE_OK;
  ok &= curl_easy_setopt(e, CURLOPT_POSTFIELDS, s->body) == CURLE_OK;
  ok &= curl_easy_setopt(e, CURLOPT_HTTPHEADER, s->headers) == CURLE_OK;
  ok &= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body) == CURLE_OK;
  ok &= curl_easy_setopt(e, CURLOPT_WRITEDATA, (void *)s) == CURLE_OK;
  ok &= curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header) == CURLE_OK;
  ok &= curl_easy_setopt(e, CURLOPT_HEADERDATA, (void *)s) == CURLE_OK;
  ok &= curl_easy_setopt(e, CURLOPT_ERRORBUFFER, s->errbuf) == CURLE_OK;
  ok &= curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms) == CURLE_OK;
  ok &= curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, connect_ms) == CURLE_OK;
  if (ex->c->ca_file)
    ok &= curl_easy_setopt(e, CURLOPT_CAINFO, ex->c->ca_file) == CURLE_OK;
  else if (ex->c->use_ca_dir)
    ok &= curl_easy_setopt(e, CURLOPT_CAINFO, (char *)NULL) == CURLE_OK;
  return ok;
}

/* Signs and starts one attempt of s. TS_OK also when the call was rejected
 * because it cannot be signed. */
static enum ts_status start_attempt(struct exec *ex, struct slot *s,
                                    uint64_t now) {
  struct ddb_client *c = ex->c;
  struct ddb_call *call = s->call;
  struct sigv4_result sig = {0};
  uint64_t left = ex->deadline - now; /* > DDB_MIN_ATTEMPT_MS here */
  long timeout_ms =
      left < DDB_ATTEMPT_TIMEOUT_MS ? (long)left : (long)DDB_ATTEMPT_TIMEOUT_MS;
  const struct sigv4_header signed_headers[] = {
      {"Host", c->host},
      {"Content-Type", c->svc->content_type},
      {"X-Amz-Target", s->target},
  };
  const struct sigv4_request req = {
      .method = "POST",
      .path = c->path,
      .query = NULL,
      .headers = signed_headers,
      .n_headers = sizeof signed_headers / sizeof signed_headers[0],
      .payload = s->body,
      .payload_len = s->body_len,
  };
  enum ts_status st = sigv4_sign(&req, &ex->key, time(NULL), &sig);
  if (st == TS_ERR_NOMEM)
    return st;
  if (st != TS_OK) {
    set_error(call, "SigningFailed", ts_status_name(st));
    call->outcome = DDB_REJECTED;
    s->state = SLOT_FINISHED;
    return TS_OK;
  }
  st = TS_ERR_NOMEM;
  curl_slist_free_all(s->headers);
  s->headers = NULL;
  bool ok = add_header(&s->headers, "Host", c->host) &&
            add_header(&s->headers, "Content-Type", c->svc->content_type) &&
            add_header(&s->headers, "X-Amz-Target", s->target) &&
            add_header(&s->headers, "X-Amz-Date", sig.amz_date) &&
            add_header(&s->headers, "Authorization", sig.authorization);
  if (ok && ex->key.session_token && *ex->key.session_token)
    ok = add_header(&s->headers, "X-Amz-Security-Token", ex->key.session_token);
  if (ok && s->body_len >= DDB_EXPECT_THRESHOLD) {
    struct curl_slist *l = curl_slist_append(s->headers, "Expect:");
    ok = l != NULL;
    if (l)
      s->headers = l;
  }
  if (!ok)
    goto out;
  s->easy = easy_take(ex);
  if (!s->easy)
    goto out;
  s->resp_len = 0;
  s->too_large = false;
  s->crc = CRC_NONE;
  s->errbuf[0] = '\0';
  if (!set_options(ex, s, timeout_ms) ||
      curl_multi_add_handle(ex->ctx->multi, s->easy) != CURLM_OK) {
    easy_release(ex, s);
    goto out;
  }
  s->state = SLOT_RUNNING;
  ex->running++;
  call->attempts++;
  st = TS_OK;
out:
  sigv4_result_clear(&sig);
  return st;
}

/* The part of __type after the last '#' and before any ':'. */
static void error_type_of(const json_t *body, char *out, size_t cap) {
  const char *t = json_string_value(json_object_get(body, "__type"));
  out[0] = '\0';
  if (!t)
    return;
  const char *hash = strrchr(t, '#');
  if (hash)
    t = hash + 1;
  size_t len = strcspn(t, ":");
  if (len >= cap)
    len = cap - 1;
  memcpy(out, t, len);
  out[len] = '\0';
}

/* ddb_retry_count's counters, per service and reason. */
static atomic_uint_fast64_t retries[sizeof services / sizeof services[0]]
                                   [DDB_RETRY_REASONS];

/* svc's row in services[], the counters' index. */
static size_t service_index(const struct service_desc *svc) {
  return (size_t)(svc - services);
}

static void count_retry(const struct service_desc *svc,
                        enum ddb_retry_reason why) {
  size_t i = service_index(svc);
  if (i < sizeof services / sizeof services[0] && why < DDB_RETRY_REASONS)
    atomic_fetch_add_explicit(&retries[i][why], 1, memory_order_relaxed);
}

/* ddb_wait_count's counters, per service. */
static atomic_uint_fast64_t waits[sizeof services / sizeof services[0]];

static void count_wait(const struct service_desc *svc) {
  size_t i = service_index(svc);
  if (i < sizeof services / sizeof services[0])
    atomic_fetch_add_explicit(&waits[i], 1, memory_order_relaxed);
}

uint64_t ddb_wait_count(enum ddb_service service) {
  if (!service_of(service))
    return 0;
  return (uint64_t)atomic_load_explicit(&waits[service], memory_order_relaxed);
}

uint64_t ddb_retry_count(enum ddb_service service, enum ddb_retry_reason r) {
  if (!service_of(service) || (unsigned)r >= DDB_RETRY_REASONS)
    return 0;
  return (uint64_t)atomic_load_explicit(&retries[service][r],
                                        memory_order_relaxed);
}

const char *ddb_retry_reason_name(enum ddb_retry_reason r) {
  static const char *const names[DDB_RETRY_REASONS] = {
      [DDB_RETRY_THROTTLED] = "throttled",
      [DDB_RETRY_TRANSIENT] = "transient",
      [DDB_RETRY_TRANSPORT] = "transport"};
  return (unsigned)r < DDB_RETRY_REASONS ? names[r] : "unknown";
}

const char *ddb_service_name(enum ddb_service service) {
  const struct service_desc *d = service_of(service);
  return d ? d->name : "unknown";
}

enum verdict { V_DONE, V_CONDITION, V_REJECT, V_RETRY };

/* Judges a finished attempt and fills the call's last-attempt fields. */
static enum verdict judge(struct slot *s, CURLcode rc, long status) {
  struct ddb_call *call = s->call;
  char msg[160];
  if (s->too_large) {
    snprintf(msg, sizeof msg, "response body over %u bytes",
             DDB_MAX_RESPONSE_BYTES);
    set_error(call, "ResponseTooLarge", msg);
    return V_REJECT;
  }
  s->why = DDB_RETRY_TRANSPORT;
  if (rc != CURLE_OK) {
    set_error(call,
              rc == CURLE_OPERATION_TIMEDOUT ? "RequestTimeout"
                                             : "ConnectionError",
              s->errbuf[0] ? s->errbuf : curl_easy_strerror(rc));
    return V_RETRY;
  }
  if (s->crc != CRC_NONE) {
    uint32_t got = (uint32_t)crc32_z(crc32_z(0L, Z_NULL, 0),
                                     (const Bytef *)s->resp, s->resp_len);
    if (s->crc == CRC_MALFORMED || got != s->crc_value) {
      snprintf(msg, sizeof msg, "x-amz-crc32 does not match the body (%u)",
               (unsigned)got);
      set_error(call, "CRC32CheckFailed", msg);
      return V_RETRY;
    }
  }
  json_t *body = NULL;
  if (s->resp_len && json_parse(s->resp, s->resp_len, &body, NULL) != TS_OK)
    body = NULL;
  if (!json_is_object(body)) {
    json_decref(body);
    snprintf(msg, sizeof msg, "HTTP %ld with a body that is not a JSON object",
             status);
    set_error(call, "InvalidResponse", msg);
    return V_RETRY;
  }
  call->response = body;
  if (s->svc->reports_capacity)
    add_consumed(call->op, body); /* also an error's, when it has one */
  if (status == 200) {
    set_error(call, "", "");
    return V_DONE;
  }
  error_type_of(body, call->error_type, sizeof call->error_type);
  const char *m = json_string_value(json_object_get(body, "message"));
  if (!m)
    m = json_string_value(json_object_get(body, "Message"));
  snprintf(call->error_message, sizeof call->error_message, "%s", m ? m : "");
  enum ddb_error_class cls = ddb_classify_error(status, call->error_type, body);
  s->why = ddb_retry_reason_of(status, call->error_type);
  if (!call->error_type[0])
    snprintf(call->error_type, sizeof call->error_type, "HttpError");
  return cls == DDB_CLASS_CONDITION ? V_CONDITION
         : cls == DDB_CLASS_RETRY   ? V_RETRY
                                    : V_REJECT;
}

static void finish_attempt(struct exec *ex, struct slot *s, CURLcode rc,
                           uint64_t now) {
  struct ddb_call *call = s->call;
  long status = 0, connects = 0;
  if (curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK)
    status = 0;
  if (curl_easy_getinfo(s->easy, CURLINFO_NUM_CONNECTS, &connects) ==
          CURLE_OK &&
      connects > 0)
    atomic_fetch_add(&ex->c->connects, (uint_fast64_t)connects);
  easy_release(ex, s);
  call->http_status = status;
  json_decref(call->response);
  call->response = NULL;
  enum verdict v = judge(s, rc, status);
  s->state = SLOT_FINISHED;
  switch (v) {
  case V_DONE: call->outcome = DDB_DONE; return;
  case V_CONDITION: call->outcome = DDB_CONDITION_FAILED; return;
  case V_REJECT: call->outcome = DDB_REJECTED; return;
  case V_RETRY: break;
  }
  count_retry(s->svc, s->why);
  uint64_t left = ex->deadline > now ? ex->deadline - now : 0;
  if (left <= DDB_MIN_ATTEMPT_MS) {
    call->outcome = DDB_GAVE_UP;
    return;
  }
  uint64_t delay =
      backoff_pause_ms(DDB_BACKOFF_BASE_MS, DDB_BACKOFF_CAP_MS, call->attempts);
  if (delay > left - DDB_MIN_ATTEMPT_MS - 1)
    delay = left - DDB_MIN_ATTEMPT_MS - 1;
  s->not_before = now + delay;
  s->state = SLOT_WAITING;
}

/* Drains curl's finished transfers. Returns how many finished. */
static size_t collect(struct exec *ex) {
  size_t done = 0;
  CURLMsg *m;
  int queued;
  while ((m = curl_multi_info_read(ex->ctx->multi, &queued))) {
    if (m->msg != CURLMSG_DONE)
      continue;
    CURL *e = m->easy_handle;
    CURLcode rc = m->data.result; /* m dies with remove_handle */
    char *priv = NULL;
    if (curl_easy_getinfo(e, CURLINFO_PRIVATE, &priv) != CURLE_OK || !priv)
      continue;
    finish_attempt(ex, (struct slot *)(void *)priv, rc, clock_now_ms());
    done++;
  }
  return done;
}

/* Runs the multi loop until every slot is finished. */
static enum ts_status run(struct exec *ex) {
  for (;;) {
    uint64_t now = clock_now_ms();
    uint64_t wake = UINT64_MAX;
    size_t unfinished = 0;
    bool blocked = false; /* a slot due to start found no place */
    for (size_t i = 0; i < ex->n; i++) {
      struct slot *s = &ex->slots[i];
      if (s->state == SLOT_FINISHED)
        continue;
      if (s->state == SLOT_WAITING) {
        if (ex->deadline <= now || ex->deadline - now <= DDB_MIN_ATTEMPT_MS) {
          if (s->call->attempts == 0)
            set_error(s->call, "DeadlineExceeded",
                      "the deadline passed before the call could be sent");
          s->call->outcome = DDB_GAVE_UP;
          s->state = SLOT_FINISHED;
          continue;
        }
        if (s->not_before > now) {
          if (s->not_before < wake)
            wake = s->not_before;
        } else if (ex->running >= DDB_MAX_PARALLEL) {
          /* curl's progress on ours wakes the loop */
        } else if (!in_flight_take(ex->c)) {
          blocked = s->waited = true;
        } else {
          if (s->waited)
            count_wait(s->svc);
          s->waited = false;
          enum ts_status st = start_attempt(ex, s, now);
          if (s->state != SLOT_RUNNING) /* not sent: the place is free */
            in_flight_give(ex->c);
          if (st != TS_OK)
            return st;
          if (s->state == SLOT_FINISHED)
            continue;
        }
      }
      unfinished++;
    }
    if (unfinished == 0)
      return TS_OK;
    int still = 0;
    CURLMcode mc = curl_multi_perform(ex->ctx->multi, &still);
    if (mc != CURLM_OK)
      return mc == CURLM_OUT_OF_MEMORY ? TS_ERR_NOMEM : TS_ERR_IO;
    if (collect(ex) > 0)
      continue; /* start retries and queued calls at once */
    now = clock_now_ms();
    uint64_t until = wake < ex->deadline ? wake : ex->deadline;
    uint64_t wait = until > now ? until - now : 0;
    if (wait > DDB_POLL_MAX_MS)
      wait = DDB_POLL_MAX_MS;
    if (wait == 0 && ex->running == 0)
      continue;
    if (blocked && ex->running == 0) { /* nothing of ours to wake us */
      in_flight_wait(ex->c, now + wait);
      continue;
    }
    mc = curl_multi_poll(ex->ctx->multi, NULL, 0, (int)wait, NULL);
    if (mc != CURLM_OK)
      return mc == CURLM_OUT_OF_MEMORY ? TS_ERR_NOMEM : TS_ERR_IO;
  }
}

void ddb_call_clear(struct ddb_call *call) {
  if (!call)
    return;
  json_decref(call->response);
  call->response = NULL;
  call->outcome = DDB_DONE;
  call->http_status = 0;
  call->error_type[0] = '\0';
  call->error_message[0] = '\0';
  call->attempts = 0;
}

/* Operation names are identifiers ("PutItem"); they go into a header. */
static bool op_ok(const char *op) {
  if (!op || !*op || strlen(op) > 64)
    return false;
  for (const char *p = op; *p; p++)
    if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z')))
      return false;
  return true;
}

enum ts_status ddb_execute(struct ddb_client *c, struct ddb_call *calls,
                           size_t n, uint64_t deadline_ms) {
  enum ts_status st = TS_ERR_INVALID;
  struct aws_creds creds = {0};
  struct exec ex = {.c = c, .n = n, .deadline = deadline_ms};
  if (!c || (n && !calls))
    return TS_ERR_INVALID;
  for (size_t i = 0; i < n; i++)
    if (!op_ok(calls[i].op) ||
        (calls[i].request_text ? calls[i].request_text[0] != '{'
                               : !json_is_object(calls[i].request)))
      return TS_ERR_INVALID;
  for (size_t i = 0; i < n; i++)
    ddb_call_clear(&calls[i]);
  if (n == 0)
    return TS_OK;

  st = aws_creds_get(c->creds, &creds);
  if (st != TS_OK) {
    st = st == TS_ERR_NOMEM ? TS_ERR_NOMEM : TS_ERR_UNAVAILABLE;
    goto out;
  }
  ex.key = (struct sigv4_key){
      .access_key_id = creds.access_key_id,
      .secret_access_key = creds.secret_access_key,
      .session_token = creds.session_token,
      .region = c->region,
      .service = c->svc->name,
  };

  st = TS_ERR_NOMEM;
  ex.slots = calloc(n, sizeof *ex.slots);
  if (!ex.slots)
    goto out;
  for (size_t i = 0; i < n; i++) {
    struct slot *s = &ex.slots[i];
    s->svc = c->svc;
    s->call = &calls[i];
    s->state = SLOT_WAITING;
    s->body = request_text(c->svc, calls[i].op, calls[i].request,
                           calls[i].request_text);
    s->target = concat(c->svc->target_prefix, calls[i].op, (char *)NULL);
    if (!s->body || !s->target)
      goto out;
    s->body_len = strlen(s->body);
  }
  ex.ctx = ctx_take(c);
  if (!ex.ctx)
    goto out;
  st = run(&ex);
out:
  if (ex.slots) {
    for (size_t i = 0; i < n; i++) {
      struct slot *s = &ex.slots[i];
      easy_release(&ex, s);
      curl_slist_free_all(s->headers);
      free(s->body);
      free(s->target);
      free(s->resp);
    }
    free(ex.slots);
  }
  ctx_put(c, ex.ctx, st == TS_OK);
  aws_creds_clear(&creds);
  return st;
}
