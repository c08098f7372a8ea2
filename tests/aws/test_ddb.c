/* The DynamoDB client over real HTTP: a scripted libmicrohttpd server on
 * 127.0.0.1 (retries, classification, CRC, deadlines, signing, connection
 * reuse, parallelism) and, when TS_TEST_DYNALITE names the dynalite
 * executable, a real dynalite process. */

#include <arpa/inet.h>
#include <fcntl.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "aws/creds.h"
#include "aws/ddb.h"
#include "aws/ddb_test.h"
#include "aws/sigv4.h"
#include "common/clock.h"
#include "tests/unit/unit.h"

#define TEST_AKID "AKIDDDBTEST"
#define TEST_SECRET "ddb/test+secret/EXAMPLEKEY"
#define TEST_REGION "us-east-1"
#define OK_BODY "{\"Item\":{\"pk\":{\"S\":\"a\"}}}"
#define ERR_BODY(type, msg)                                                    \
  "{\"__type\":\"com.amazonaws.dynamodb.v20120810#" type                       \
  "\",\"message\":\"" msg "\"}"

static void sleep_ms(unsigned ms) {
  struct timespec ts = {.tv_sec = ms / 1000,
                        .tv_nsec = (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0) {
  }
}

/* Every test runs with static credentials from the environment. */
static void set_test_env(void) {
  setenv("AWS_ACCESS_KEY_ID", TEST_AKID, 1);
  setenv("AWS_SECRET_ACCESS_KEY", TEST_SECRET, 1);
  unsetenv("AWS_SESSION_TOKEN");
  setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
  unsetenv("AWS_ENDPOINT_URL");
  unsetenv("AWS_ENDPOINT_URL_DYNAMODB");
  unsetenv("AWS_CA_BUNDLE");
}

/* ------------------------------------------------------------------ */
/* Scripted server */

enum crc_mode { CRC_OMIT, CRC_RIGHT, CRC_WRONG };

struct reply {
  unsigned status;
  const char *body;
  enum crc_mode crc;
  unsigned delay_ms; /* before answering */
  size_t big_len;    /* instead of body: this many bytes of 'x' */
};

#define FAKE_MAX_SCRIPT 6

/* What the server saw in the last request. */
struct seen {
  char url[128], host[128], content_type[128], target[128], amz_date[32];
  char authorization[512], token[512];
  bool has_token, has_accept_encoding;
  char *body;
};

struct fake {
  struct MHD_Daemon *daemon;
  unsigned port;
  pthread_mutex_t mu;
  struct reply script[FAKE_MAX_SCRIPT]; /* the last one repeats */
  size_t n_script;
  size_t requests, connections, in_flight, max_in_flight;
  struct seen last;
};

struct upload {
  char *data;
  size_t len;
};

static void copy_header(struct MHD_Connection *conn, const char *name,
                        char *out, size_t cap, bool *present) {
  const char *v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, name);
  snprintf(out, cap, "%s", v ? v : "");
  if (present)
    *present = v != NULL;
}

static enum MHD_Result fake_answer(void *cls, struct MHD_Connection *conn,
                                   const char *url, const char *method,
                                   const char *version, const char *data,
                                   size_t *data_size, void **req_cls) {
  (void)method;
  (void)version;
  struct fake *f = cls;
  struct upload *up = *req_cls;
  if (!up) {
    up = calloc(1, sizeof *up);
    *req_cls = up;
    return up ? MHD_YES : MHD_NO;
  }
  if (*data_size) {
    char *p = realloc(up->data, up->len + *data_size + 1);
    if (!p)
      return MHD_NO;
    memcpy(p + up->len, data, *data_size);
    up->data = p;
    up->len += *data_size;
    up->data[up->len] = '\0';
    *data_size = 0;
    return MHD_YES;
  }

  pthread_mutex_lock(&f->mu);
  struct reply r =
      f->script[f->requests < f->n_script ? f->requests : f->n_script - 1];
  f->requests++;
  if (++f->in_flight > f->max_in_flight)
    f->max_in_flight = f->in_flight;
  struct seen *s = &f->last;
  snprintf(s->url, sizeof s->url, "%s", url);
  copy_header(conn, "Host", s->host, sizeof s->host, NULL);
  copy_header(conn, "Content-Type", s->content_type, sizeof s->content_type,
              NULL);
  copy_header(conn, "X-Amz-Target", s->target, sizeof s->target, NULL);
  copy_header(conn, "X-Amz-Date", s->amz_date, sizeof s->amz_date, NULL);
  copy_header(conn, "Authorization", s->authorization, sizeof s->authorization,
              NULL);
  copy_header(conn, "X-Amz-Security-Token", s->token, sizeof s->token,
              &s->has_token);
  s->has_accept_encoding =
      MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Accept-Encoding") !=
      NULL;
  free(s->body);
  s->body = strdup(up->data ? up->data : "");
  pthread_mutex_unlock(&f->mu);

  if (r.delay_ms)
    sleep_ms(r.delay_ms);
  size_t len = r.big_len ? r.big_len : strlen(r.body);
  char *body = malloc(len ? len : 1);
  if (!body)
    return MHD_NO;
  if (r.big_len)
    memset(body, 'x', len);
  else
    memcpy(body, r.body, len);
  uint32_t crc = (uint32_t)crc32(0L, (const Bytef *)body, (uInt)len);
  struct MHD_Response *resp =
      MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
  if (!resp) {
    free(body);
    return MHD_NO;
  }
  MHD_add_response_header(resp, "Content-Type", "application/x-amz-json-1.0");
  if (r.crc != CRC_OMIT) {
    char v[16];
    snprintf(v, sizeof v, "%u", r.crc == CRC_RIGHT ? crc : crc ^ 0x5a5au);
    MHD_add_response_header(resp, "x-amz-crc32", v);
  }
  enum MHD_Result ret = MHD_queue_response(conn, r.status, resp);
  MHD_destroy_response(resp);
  pthread_mutex_lock(&f->mu);
  f->in_flight--;
  pthread_mutex_unlock(&f->mu);
  return ret;
}

static void fake_completed(void *cls, struct MHD_Connection *conn,
                           void **req_cls, enum MHD_RequestTerminationCode t) {
  (void)cls;
  (void)conn;
  (void)t;
  struct upload *up = *req_cls;
  if (up) {
    free(up->data);
    free(up);
    *req_cls = NULL;
  }
}

static void fake_connection(void *cls, struct MHD_Connection *conn,
                            void **socket_ctx,
                            enum MHD_ConnectionNotificationCode code) {
  (void)conn;
  (void)socket_ctx;
  struct fake *f = cls;
  if (code == MHD_CONNECTION_NOTIFY_STARTED) {
    pthread_mutex_lock(&f->mu);
    f->connections++;
    pthread_mutex_unlock(&f->mu);
  }
}

static void fake_script(struct fake *f, const struct reply *script, size_t n) {
  pthread_mutex_lock(&f->mu);
  for (size_t i = 0; i < n && i < FAKE_MAX_SCRIPT; i++)
    f->script[i] = script[i];
  f->n_script = n < FAKE_MAX_SCRIPT ? n : FAKE_MAX_SCRIPT;
  f->requests = 0;
  pthread_mutex_unlock(&f->mu);
}

/* Starts a thread-per-connection server on 127.0.0.1, a free port; with
 * key and cert (PEM), over TLS; idle_s > 0 closes idle connections. */
static bool fake_start_opts(struct fake *f, const struct reply *script,
                            size_t n, const char *key, const char *cert,
                            unsigned idle_s) {
  memset(f, 0, sizeof *f);
  pthread_mutex_init(&f->mu, NULL);
  fake_script(f, script, n);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  unsigned flags =
      MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD;
  if (key)
    f->daemon = MHD_start_daemon(
        flags | MHD_USE_TLS, 0, NULL, NULL, fake_answer, f,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
        MHD_OPTION_NOTIFY_COMPLETED, fake_completed, f,
        MHD_OPTION_NOTIFY_CONNECTION, fake_connection, f,
        MHD_OPTION_HTTPS_MEM_KEY, key, MHD_OPTION_HTTPS_MEM_CERT, cert,
        MHD_OPTION_CONNECTION_TIMEOUT, idle_s, MHD_OPTION_END);
  else
    f->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, fake_answer, f, MHD_OPTION_SOCK_ADDR,
        (struct sockaddr *)&sa, MHD_OPTION_NOTIFY_COMPLETED, fake_completed, f,
        MHD_OPTION_NOTIFY_CONNECTION, fake_connection, f,
        MHD_OPTION_CONNECTION_TIMEOUT, idle_s, MHD_OPTION_END);
  if (!f->daemon)
    return false;
  const union MHD_DaemonInfo *info =
      MHD_get_daemon_info(f->daemon, MHD_DAEMON_INFO_BIND_PORT);
  f->port = info ? info->port : 0;
  return f->port != 0;
}

static bool fake_start(struct fake *f, const struct reply *script, size_t n) {
  return fake_start_opts(f, script, n, NULL, NULL, 0);
}

static void fake_stop(struct fake *f) {
  if (f->daemon)
    MHD_stop_daemon(f->daemon);
  free(f->last.body);
  pthread_mutex_destroy(&f->mu);
}

static size_t fake_get(struct fake *f, const size_t *field) {
  pthread_mutex_lock(&f->mu);
  size_t v = *field;
  pthread_mutex_unlock(&f->mu);
  return v;
}

/* A client on endpoint <scheme>://127.0.0.1:<port><suffix>. */
struct rig {
  struct aws_creds_provider *creds;
  struct ddb_client *client;
};

static bool rig_open_scheme(struct rig *r, const char *scheme, unsigned port,
                            const char *suffix) {
  char ep[128];
  snprintf(ep, sizeof ep, "%s://127.0.0.1:%u%s", scheme, port, suffix);
  struct ddb_options opt = {.region = TEST_REGION, .endpoint = ep};
  r->client = NULL;
  if (aws_creds_provider_new(&r->creds) != TS_OK)
    return false;
  return ddb_client_new(&opt, r->creds, &r->client) == TS_OK;
}

static bool rig_open(struct rig *r, unsigned port, const char *suffix) {
  return rig_open_scheme(r, "http", port, suffix);
}

static void rig_close(struct rig *r) {
  ddb_client_free(r->client);
  aws_creds_provider_free(r->creds);
}

static json_t *get_item_request(const char *key) {
  return json_pack("{s:s, s:{s:{s:s}}}", "TableName", "t", "Key", "pk", "S",
                   key);
}

/* ------------------------------------------------------------------ */
/* Pure rules */

static void test_errors_classify_as_condition_retry_or_reject(void) {
  json_t *conflict = json_loads("{\"CancellationReasons\":[{\"Code\":\"None\"},"
                                "{\"Code\":\"TransactionConflict\"}]}",
                                0, NULL);
  json_t *cancelled_by_condition =
      json_loads("{\"CancellationReasons\":[{\"Code\":\"TransactionConflict\"},"
                 "{\"Code\":\"ConditionalCheckFailed\"}]}",
                 0, NULL);
  json_t *all_none =
      json_loads("{\"CancellationReasons\":[{\"Code\":\"None\"}]}", 0, NULL);
  const struct {
    const char *name;
    long status;
    const char *type;
    const json_t *body;
    enum ddb_error_class want;
  } cases[] = {
      {"condition", 400, "ConditionalCheckFailedException", NULL,
       DDB_CLASS_CONDITION},
      {"provisioned throughput", 400, "ProvisionedThroughputExceededException",
       NULL, DDB_CLASS_RETRY},
      {"throttling", 400, "ThrottlingException", NULL, DDB_CLASS_RETRY},
      {"account limit", 400, "RequestLimitExceeded", NULL, DDB_CLASS_RETRY},
      {"control plane limit", 400, "LimitExceededException", NULL,
       DDB_CLASS_RETRY},
      {"transaction conflict", 400, "TransactionConflictException", NULL,
       DDB_CLASS_RETRY},
      {"internal error", 500, "InternalServerError", NULL, DDB_CLASS_RETRY},
      {"unavailable", 503, "ServiceUnavailable", NULL, DDB_CLASS_RETRY},
      {"any 5xx without type", 502, "", NULL, DDB_CLASS_RETRY},
      {"429 without type", 429, "", NULL, DDB_CLASS_RETRY},
      {"validation", 400, "ValidationException", NULL, DDB_CLASS_REJECT},
      {"missing table", 400, "ResourceNotFoundException", NULL,
       DDB_CLASS_REJECT},
      {"access denied", 400, "AccessDeniedException", NULL, DDB_CLASS_REJECT},
      {"bad key", 400, "UnrecognizedClientException", NULL, DDB_CLASS_REJECT},
      {"no auth", 400, "MissingAuthenticationTokenException", NULL,
       DDB_CLASS_REJECT},
      {"bad signature shape", 400, "IncompleteSignatureException", NULL,
       DDB_CLASS_REJECT},
      {"4xx without type", 404, "", NULL, DDB_CLASS_REJECT},
      {"cancelled by a conflict", 400, "TransactionCanceledException", conflict,
       DDB_CLASS_RETRY},
      {"cancelled by a condition", 400, "TransactionCanceledException",
       cancelled_by_condition, DDB_CLASS_REJECT},
      {"cancelled without a reason", 400, "TransactionCanceledException",
       all_none, DDB_CLASS_REJECT},
      {"cancelled, no body", 400, "TransactionCanceledException", NULL,
       DDB_CLASS_REJECT},
      {"kinesis: KMS throttled", 400, "KMSThrottlingException", NULL,
       DDB_CLASS_RETRY},
      {"kinesis: expired iterator", 400, "ExpiredIteratorException", NULL,
       DDB_CLASS_REJECT},
      {"kinesis: stream in use", 400, "ResourceInUseException", NULL,
       DDB_CLASS_REJECT},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    enum ddb_error_class got =
        ddb_classify_error(cases[i].status, cases[i].type, cases[i].body);
    TS_CHECK_CASE(got == cases[i].want, cases[i].name, "class %d, want %d",
                  (int)got, (int)cases[i].want);
  }
  json_decref(conflict);
  json_decref(cancelled_by_condition);
  json_decref(all_none);
}

/* /metrics tells a throttled call (the table needs capacity) from a
 * transient failure (DynamoDB's own trouble). */
static void test_retryable_errors_are_told_throttled_or_transient(void) {
  const struct {
    const char *name;
    long status;
    const char *type;
    enum ddb_retry_reason want;
  } cases[] = {
      {"provisioned throughput", 400, "ProvisionedThroughputExceededException",
       DDB_RETRY_THROTTLED},
      {"throttling", 400, "ThrottlingException", DDB_RETRY_THROTTLED},
      {"account limit", 400, "RequestLimitExceeded", DDB_RETRY_THROTTLED},
      {"kinesis: KMS throttled", 400, "KMSThrottlingException",
       DDB_RETRY_THROTTLED},
      {"429 without type", 429, "", DDB_RETRY_THROTTLED},
      {"429, no type at all", 429, NULL, DDB_RETRY_THROTTLED},
      {"internal error", 500, "InternalServerError", DDB_RETRY_TRANSIENT},
      {"any 5xx without type", 502, "", DDB_RETRY_TRANSIENT},
      {"transaction conflict", 400, "TransactionConflictException",
       DDB_RETRY_TRANSIENT},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    enum ddb_retry_reason got =
        ddb_retry_reason_of(cases[i].status, cases[i].type);
    TS_CHECK_CASE(got == cases[i].want, cases[i].name, "reason %s, want %s",
                  ddb_retry_reason_name(got),
                  ddb_retry_reason_name(cases[i].want));
  }
}

static void test_backoff_ceiling_doubles_from_25ms_to_a_1s_cap(void) {
  const struct {
    unsigned attempts;
    uint32_t want;
  } cases[] = {{1, 25},  {2, 50},   {3, 100},  {4, 200},   {5, 400},
               {6, 800}, {7, 1000}, {8, 1000}, {40, 1000}, {1000, 1000}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char name[32];
    snprintf(name, sizeof name, "attempt %u", cases[i].attempts);
    uint32_t got = ddb_backoff_ceiling_ms(cases[i].attempts);
    TS_CHECK_CASE(got == cases[i].want, name, "got %u", (unsigned)got);
  }
}

static void test_endpoint_comes_from_option_then_env_then_region(void) {
  const struct {
    const char *name, *option, *env_ddb, *env_all, *region, *want;
  } cases[] = {
      {"default", NULL, NULL, NULL, "us-east-1",
       "https://dynamodb.us-east-1.amazonaws.com"},
      {"china partition", NULL, NULL, NULL, "cn-north-1",
       "https://dynamodb.cn-north-1.amazonaws.com.cn"},
      {"global env, trailing slash", NULL, NULL, "http://localhost:8000/",
       "eu-west-1", "http://localhost:8000"},
      {"service env wins over global", NULL, "http://127.0.0.1:4566",
       "http://other:1", "eu-west-1", "http://127.0.0.1:4566"},
      {"empty service env is ignored", NULL, "", "http://other:1", "eu-west-1",
       "http://other:1"},
      {"option wins, default port dropped", "https://ddb.example:443/",
       "http://127.0.0.1:4566", NULL, "eu-west-1", "https://ddb.example"},
      {"path kept without trailing slash", "http://h:81/base/", NULL, NULL,
       "eu-west-1", "http://h:81/base"},
      {"ipv6 literal", "http://[::1]:8000", NULL, NULL, "eu-west-1",
       "http://[::1]:8000"},
      {"ftp scheme", "ftp://h", NULL, NULL, "eu-west-1", NULL},
      {"user info", "http://u:p@h", NULL, NULL, "eu-west-1", NULL},
      {"query", "http://h/?a=1", NULL, NULL, "eu-west-1", NULL},
      {"no scheme", "localhost:8000", NULL, NULL, "eu-west-1", NULL},
      {"bad env endpoint", NULL, "not a url", NULL, "eu-west-1", NULL},
      {"empty region", NULL, NULL, NULL, "", NULL},
      {"region with odd characters", NULL, NULL, NULL, "us-east-1.evil.com/",
       NULL},
  };
  struct aws_creds_provider *creds = NULL;
  CU_ASSERT_EQUAL_FATAL(aws_creds_provider_new(&creds), TS_OK);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    if (cases[i].env_ddb)
      setenv("AWS_ENDPOINT_URL_DYNAMODB", cases[i].env_ddb, 1);
    else
      unsetenv("AWS_ENDPOINT_URL_DYNAMODB");
    if (cases[i].env_all)
      setenv("AWS_ENDPOINT_URL", cases[i].env_all, 1);
    else
      unsetenv("AWS_ENDPOINT_URL");
    struct ddb_options opt = {.region = cases[i].region,
                              .endpoint = cases[i].option};
    struct ddb_client *c = NULL;
    enum ts_status st = ddb_client_new(&opt, creds, &c);
    if (cases[i].want) {
      TS_CHECK_CASE(st == TS_OK, cases[i].name, "status %s",
                    ts_status_name(st));
      if (c)
        TS_CHECK_CASE(strcmp(ddb_client_endpoint(c), cases[i].want) == 0,
                      cases[i].name, "endpoint %s", ddb_client_endpoint(c));
    } else {
      TS_CHECK_CASE(st == TS_ERR_INVALID && !c, cases[i].name, "status %s",
                    ts_status_name(st));
    }
    ddb_client_free(c);
  }
  aws_creds_provider_free(creds);
  set_test_env();
}

/* Kinesis reads its own variable, not DynamoDB's, then the global one. */
static void test_kinesis_endpoint_has_its_own_variable_and_host(void) {
  const struct {
    const char *name, *env_kinesis, *env_ddb, *env_all, *want;
  } cases[] = {
      {"default", NULL, NULL, NULL, "https://kinesis.eu-west-1.amazonaws.com"},
      {"dynamodb's variable is not kinesis's", NULL, "http://ddb:1", NULL,
       "https://kinesis.eu-west-1.amazonaws.com"},
      {"global", NULL, "http://ddb:1", "http://all:2", "http://all:2"},
      {"service variable wins", "http://k:3", "http://ddb:1", "http://all:2",
       "http://k:3"},
  };
  struct aws_creds_provider *creds = NULL;
  CU_ASSERT_EQUAL_FATAL(aws_creds_provider_new(&creds), TS_OK);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const char *names[] = {"AWS_ENDPOINT_URL_KINESIS",
                           "AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL"};
    const char *values[] = {cases[i].env_kinesis, cases[i].env_ddb,
                            cases[i].env_all};
    for (size_t k = 0; k < 3; k++) {
      if (values[k])
        setenv(names[k], values[k], 1);
      else
        unsetenv(names[k]);
    }
    struct ddb_options opt = {.region = "eu-west-1",
                              .service = DDB_SERVICE_KINESIS};
    struct ddb_client *c = NULL;
    enum ts_status st = ddb_client_new(&opt, creds, &c);
    TS_CHECK_CASE(st == TS_OK && c, cases[i].name, "status %s",
                  ts_status_name(st));
    if (c)
      TS_CHECK_CASE(strcmp(ddb_client_endpoint(c), cases[i].want) == 0,
                    cases[i].name, "endpoint %s", ddb_client_endpoint(c));
    ddb_client_free(c);
  }
  unsetenv("AWS_ENDPOINT_URL_KINESIS");
  aws_creds_provider_free(creds);
  set_test_env();
}

/* ------------------------------------------------------------------ */
/* Scripted answers */

static void test_scripted_answers_are_retried_or_final_by_class(void) {
  static const struct {
    const char *name;
    struct reply script[4];
    size_t n;
    enum ddb_outcome outcome;
    unsigned attempts;
    long status;
    const char *error_type;
    const char *response_key; /* a key the kept response must hold */
  } cases[] = {
      {"500 then 200",
       {{500, ERR_BODY("InternalServerError", "boom"), CRC_RIGHT, 0, 0},
        {200, OK_BODY, CRC_RIGHT, 0, 0}},
       2,
       DDB_DONE,
       2,
       200,
       "",
       "Item"},
      {"throttled twice then 200",
       {{400, ERR_BODY("ThrottlingException", "slow"), CRC_RIGHT, 0, 0},
        {400, ERR_BODY("ThrottlingException", "slow"), CRC_RIGHT, 0, 0},
        {200, OK_BODY, CRC_RIGHT, 0, 0}},
       3,
       DDB_DONE,
       3,
       200,
       "",
       "Item"},
      {"throughput exceeded then 200",
       {{400, ERR_BODY("ProvisionedThroughputExceededException", "x"), CRC_OMIT,
         0, 0},
        {200, OK_BODY, CRC_OMIT, 0, 0}},
       2,
       DDB_DONE,
       2,
       200,
       "",
       "Item"},
      {"wrong crc then right",
       {{200, OK_BODY, CRC_WRONG, 0, 0}, {200, OK_BODY, CRC_RIGHT, 0, 0}},
       2,
       DDB_DONE,
       2,
       200,
       "",
       "Item"},
      {"non-JSON 200 then JSON",
       {{200, "<html>gateway</html>", CRC_RIGHT, 0, 0},
        {200, OK_BODY, CRC_RIGHT, 0, 0}},
       2,
       DDB_DONE,
       2,
       200,
       "",
       "Item"},
      {"empty 200 then JSON",
       {{200, "", CRC_OMIT, 0, 0}, {200, OK_BODY, CRC_OMIT, 0, 0}},
       2,
       DDB_DONE,
       2,
       200,
       "",
       "Item"},
      {"502 HTML then 200",
       {{502, "<html>bad gateway</html>", CRC_OMIT, 0, 0},
        {200, OK_BODY, CRC_OMIT, 0, 0}},
       2,
       DDB_DONE,
       2,
       200,
       "",
       "Item"},
      {"validation is rejected at once",
       {{400, ERR_BODY("ValidationException", "bad key"), CRC_RIGHT, 0, 0},
        {200, OK_BODY, CRC_RIGHT, 0, 0}},
       2,
       DDB_REJECTED,
       1,
       400,
       "ValidationException",
       "__type"},
      {"missing table is rejected at once",
       {{400, ERR_BODY("ResourceNotFoundException", "no table"), CRC_OMIT, 0,
         0}},
       1,
       DDB_REJECTED,
       1,
       400,
       "ResourceNotFoundException",
       NULL},
      {"Message with capital M, __type without namespace",
       {{400, "{\"__type\":\"AccessDeniedException\",\"Message\":\"no\"}",
         CRC_OMIT, 0, 0}},
       1,
       DDB_REJECTED,
       1,
       400,
       "AccessDeniedException",
       NULL},
      {"failed condition keeps the old item, not retried",
       {{400,
         "{\"__type\":\"com.amazonaws.dynamodb.v20120810#"
         "ConditionalCheckFailedException\",\"message\":\"The conditional "
         "request "
         "failed\",\"Item\":{\"pk\":{\"S\":\"a\"},\"v\":{\"N\":\"1\"}}}",
         CRC_RIGHT, 0, 0},
        {200, OK_BODY, CRC_RIGHT, 0, 0}},
       2,
       DDB_CONDITION_FAILED,
       1,
       400,
       "ConditionalCheckFailedException",
       "Item"},
      {"body over 16 MiB is rejected",
       {{200, NULL, CRC_OMIT, 0, 16u * 1024u * 1024u + 1u},
        {200, OK_BODY, CRC_OMIT, 0, 0}},
       2,
       DDB_REJECTED,
       1,
       200,
       "ResponseTooLarge",
       NULL},
  };
  set_test_env();
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const char *name = cases[i].name;
    struct fake f;
    struct rig r;
    CU_ASSERT_FATAL(fake_start(&f, cases[i].script, cases[i].n));
    CU_ASSERT_FATAL(rig_open(&r, f.port, ""));
    json_t *req = get_item_request("a");
    struct ddb_call call = {.op = "GetItem", .request = req};
    enum ts_status st = ddb_execute(r.client, &call, 1, clock_now_ms() + 3000);
    TS_CHECK_CASE(st == TS_OK, name, "status %s", ts_status_name(st));
    TS_CHECK_CASE(call.outcome == cases[i].outcome, name, "outcome %d",
                  (int)call.outcome);
    TS_CHECK_CASE(call.attempts == cases[i].attempts, name, "attempts %u",
                  call.attempts);
    TS_CHECK_CASE(fake_get(&f, &f.requests) == cases[i].attempts, name,
                  "server saw %zu requests", fake_get(&f, &f.requests));
    TS_CHECK_CASE(call.http_status == cases[i].status, name, "http %ld",
                  call.http_status);
    TS_CHECK_CASE(strcmp(call.error_type, cases[i].error_type) == 0, name,
                  "error_type '%s'", call.error_type);
    if (cases[i].response_key)
      TS_CHECK_CASE(json_object_get(call.response, cases[i].response_key) !=
                        NULL,
                    name, "response lacks %s", cases[i].response_key);
    if (cases[i].outcome == DDB_CONDITION_FAILED)
      TS_CHECK_CASE(
          strcmp(call.error_message, "The conditional request failed") == 0,
          name, "message '%s'", call.error_message);
    if (strcmp(name, "Message with capital M, __type without namespace") == 0)
      TS_CHECK_CASE(strcmp(call.error_message, "no") == 0, name, "message '%s'",
                    call.error_message);
    ddb_call_clear(&call);
    CU_ASSERT_PTR_NULL(call.response);
    json_decref(req);
    rig_close(&r);
    fake_stop(&f);
  }
}

static void test_always_503_gives_up_at_the_deadline(void) {
  const struct reply always[] = {
      {503, ERR_BODY("ServiceUnavailable", "down"), CRC_RIGHT, 0, 0}};
  struct fake f;
  struct rig r;
  set_test_env();
  CU_ASSERT_FATAL(fake_start(&f, always, 1));
  CU_ASSERT_FATAL(rig_open(&r, f.port, ""));
  json_t *req = get_item_request("a");
  struct ddb_call call = {.op = "GetItem", .request = req};
  uint64_t t0 = clock_now_ms();
  CU_ASSERT_EQUAL(ddb_execute(r.client, &call, 1, t0 + 600), TS_OK);
  uint64_t took = clock_now_ms() - t0;
  CU_ASSERT_EQUAL(call.outcome, DDB_GAVE_UP);
  CU_ASSERT(took <= 600 + 100);
  CU_ASSERT(took >= 600 - 60); /* it kept trying until the deadline */
  CU_ASSERT(call.attempts >= 4);
  CU_ASSERT_EQUAL(fake_get(&f, &f.requests), call.attempts);
  CU_ASSERT_EQUAL(call.http_status, 503);
  CU_ASSERT_STRING_EQUAL(call.error_type, "ServiceUnavailable");
  CU_ASSERT_STRING_EQUAL(call.error_message, "down");
  ddb_call_clear(&call);
  json_decref(req);
  rig_close(&r);
  fake_stop(&f);
}

static void test_slow_answer_times_out_and_gives_up_by_the_deadline(void) {
  const struct reply slow[] = {{200, OK_BODY, CRC_OMIT, 1500, 0}};
  struct fake f;
  struct rig r;
  set_test_env();
  CU_ASSERT_FATAL(fake_start(&f, slow, 1));
  CU_ASSERT_FATAL(rig_open(&r, f.port, ""));
  json_t *req = get_item_request("a");
  struct ddb_call call = {.op = "GetItem", .request = req};
  uint64_t t0 = clock_now_ms();
  CU_ASSERT_EQUAL(ddb_execute(r.client, &call, 1, t0 + 300), TS_OK);
  uint64_t took = clock_now_ms() - t0;
  CU_ASSERT_EQUAL(call.outcome, DDB_GAVE_UP);
  CU_ASSERT(took <= 300 + 100);
  CU_ASSERT_STRING_EQUAL(call.error_type, "RequestTimeout");
  ddb_call_clear(&call);
  json_decref(req);
  rig_close(&r);
  fake_stop(&f);
}

static void test_one_attempt_lasts_at_most_2s_then_is_retried(void) {
  const struct reply script[] = {{200, OK_BODY, CRC_OMIT, 2600, 0},
                                 {200, OK_BODY, CRC_OMIT, 0, 0}};
  struct fake f;
  struct rig r;
  set_test_env();
  CU_ASSERT_FATAL(fake_start(&f, script, 2));
  CU_ASSERT_FATAL(rig_open(&r, f.port, ""));
  json_t *req = get_item_request("a");
  struct ddb_call call = {.op = "GetItem", .request = req};
  uint64_t t0 = clock_now_ms();
  CU_ASSERT_EQUAL(ddb_execute(r.client, &call, 1, t0 + 4000), TS_OK);
  uint64_t took = clock_now_ms() - t0;
  CU_ASSERT_EQUAL(call.outcome, DDB_DONE);
  CU_ASSERT_EQUAL(call.attempts, 2);
  CU_ASSERT(took >= 2000 && took < 2400);
  ddb_call_clear(&call);
  json_decref(req);
  rig_close(&r);
  fake_stop(&f);
}

static void test_refused_connection_is_retried_until_the_deadline(void) {
  /* A port that was just free: nothing listens there. */
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  CU_ASSERT_FATAL(fd >= 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t sl = sizeof sa;
  CU_ASSERT_FATAL(bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0);
  CU_ASSERT_FATAL(getsockname(fd, (struct sockaddr *)&sa, &sl) == 0);
  close(fd);
  struct rig r;
  set_test_env();
  CU_ASSERT_FATAL(rig_open(&r, ntohs(sa.sin_port), ""));
  json_t *req = get_item_request("a");
  struct ddb_call call = {.op = "GetItem", .request = req};
  uint64_t t0 = clock_now_ms();
  CU_ASSERT_EQUAL(ddb_execute(r.client, &call, 1, t0 + 300), TS_OK);
  uint64_t took = clock_now_ms() - t0;
  CU_ASSERT_EQUAL(call.outcome, DDB_GAVE_UP);
  CU_ASSERT(call.attempts >= 2);
  CU_ASSERT_EQUAL(call.http_status, 0);
  CU_ASSERT_STRING_EQUAL(call.error_type, "ConnectionError");
  CU_ASSERT(took <= 300 + 100);
  ddb_call_clear(&call);
  json_decref(req);
  rig_close(&r);
}

static void test_past_deadline_sends_nothing(void) {
  const struct reply ok[] = {{200, OK_BODY, CRC_OMIT, 0, 0}};
  struct fake f;
  struct rig r;
  set_test_env();
  CU_ASSERT_FATAL(fake_start(&f, ok, 1));
  CU_ASSERT_FATAL(rig_open(&r, f.port, ""));
  json_t *req = get_item_request("a");
  struct ddb_call call = {.op = "GetItem", .request = req};
  CU_ASSERT_EQUAL(ddb_execute(r.client, &call, 1, clock_now_ms() - 1), TS_OK);
  CU_ASSERT_EQUAL(call.outcome, DDB_GAVE_UP);
  CU_ASSERT_EQUAL(call.attempts, 0);
  CU_ASSERT_STRING_EQUAL(call.error_type, "DeadlineExceeded");
  CU_ASSERT_EQUAL(fake_get(&f, &f.requests), 0);
  ddb_call_clear(&call);
  json_decref(req);
  rig_close(&r);
  fake_stop(&f);
}

static void test_malformed_calls_and_missing_credentials_are_refused(void) {
  const struct reply ok[] = {{200, OK_BODY, CRC_OMIT, 0, 0}};
  struct fake f;
  struct rig r;
  set_test_env();
  CU_ASSERT_FATAL(fake_start(&f, ok, 1));
  CU_ASSERT_FATAL(rig_open(&r, f.port, ""));
  json_t *req = get_item_request("a");
  json_t *arr = json_array();
  const struct {
    const char *name, *op;
    const json_t *request;
  } bad[] = {{"no op", NULL, req},
             {"op with a newline", "Get\r\nX: y", req},
             {"no request", "GetItem", NULL},
             {"request not an object", "GetItem", arr}};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    struct ddb_call call = {.op = bad[i].op, .request = bad[i].request};
    enum ts_status st = ddb_execute(r.client, &call, 1, clock_now_ms() + 500);
    TS_CHECK_CASE(st == TS_ERR_INVALID, bad[i].name, "status %s",
                  ts_status_name(st));
  }
  CU_ASSERT_EQUAL(ddb_execute(r.client, NULL, 0, clock_now_ms() + 500), TS_OK);

  unsetenv("AWS_ACCESS_KEY_ID");
  unsetenv("AWS_SECRET_ACCESS_KEY");
  unsetenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
  unsetenv("AWS_CONTAINER_CREDENTIALS_FULL_URI");
  setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/ddb-test/credentials", 1);
  setenv("AWS_CONFIG_FILE", "/nonexistent/ddb-test/config", 1);
  struct rig none;
  CU_ASSERT_FATAL(rig_open(&none, f.port, ""));
  struct ddb_call call = {.op = "GetItem", .request = req};
  CU_ASSERT_EQUAL(ddb_execute(none.client, &call, 1, clock_now_ms() + 500),
                  TS_ERR_UNAVAILABLE);
  CU_ASSERT_EQUAL(fake_get(&f, &f.requests), 0);
  ddb_call_clear(&call);
  rig_close(&none);
  unsetenv("AWS_SHARED_CREDENTIALS_FILE");
  unsetenv("AWS_CONFIG_FILE");
  set_test_env();
  json_decref(arr);
  json_decref(req);
  rig_close(&r);
  fake_stop(&f);
}

/* ------------------------------------------------------------------ */
/* What goes on the wire */

/* Re-signs what the server received: equal only if every signed header
 * was sent exactly as signed. */
static char *resign(const struct seen *s, const char *path, const char *token) {
  struct tm tm = {0};
  const char *end = strptime(s->amz_date, "%Y%m%dT%H%M%SZ", &tm);
  if (!end || *end)
    return NULL;
  const struct sigv4_header h[] = {{"Host", s->host},
                                   {"Content-Type", s->content_type},
                                   {"X-Amz-Target", s->target}};
  const struct sigv4_request req = {.method = "POST",
                                    .path = path,
                                    .headers = h,
                                    .n_headers = 3,
                                    .payload = s->body,
                                    .payload_len = strlen(s->body)};
  const struct sigv4_key key = {.access_key_id = TEST_AKID,
                                .secret_access_key = TEST_SECRET,
                                .session_token = token,
                                .region = TEST_REGION,
                                .service = "dynamodb"};
  struct sigv4_result out = {0};
  if (sigv4_sign(&req, &key, timegm(&tm), &out) != TS_OK)
    return NULL;
  char *auth = out.authorization;
  out.authorization = NULL;
  sigv4_result_clear(&out);
  return auth;
}

/* Data calls ask for ReturnConsumedCapacity=TOTAL (others do not: DynamoDB
 * would refuse the parameter), and the ConsumedCapacity of each answer, an
 * object or an array per table, is summed per table: reads as read units,
 * writes as write units, split units when DynamoDB gives them. */
static void test_consumed_capacity_is_asked_for_and_summed_per_table(void) {
  static const struct {
    const char *op, *reply;
    bool asks;
  } calls[] = {
      {"PutItem",
       "{\"ConsumedCapacity\":{\"TableName\":\"UnitCapT\","
       "\"CapacityUnits\":2.5}}",
       true},
      {"BatchGetItem",
       "{\"Responses\":{},\"ConsumedCapacity\":[{\"TableName\":"
       "\"UnitCapT\",\"CapacityUnits\":1},{\"TableName\":\"UnitCapU\","
       "\"CapacityUnits\":0.5}]}",
       true},
      {"UpdateItem",
       "{\"ConsumedCapacity\":{\"TableName\":\"UnitCapU\","
       "\"CapacityUnits\":3,\"ReadCapacityUnits\":1,"
       "\"WriteCapacityUnits\":2}}",
       true},
      {"DescribeTable", "{\"Table\":{}}", false},
  };
  for (size_t i = 0; i < sizeof calls / sizeof calls[0]; i++) {
    const struct reply r[] = {{200, calls[i].reply, CRC_RIGHT, 0, 0}};
    struct fake f;
    struct rig rg;
    set_test_env();
    CU_ASSERT_FATAL(fake_start(&f, r, 1));
    CU_ASSERT_FATAL(rig_open(&rg, f.port, ""));
    json_t *req = json_pack("{s:s}", "TableName", "UnitCapT");
    struct ddb_call call = {.op = calls[i].op, .request = req};
    CU_ASSERT_EQUAL(ddb_execute(rg.client, &call, 1, clock_now_ms() + 2000),
                    TS_OK);
    bool asked = f.last.body &&
                 strstr(f.last.body, "\"ReturnConsumedCapacity\":\"TOTAL\"");
    TS_CHECK_CASE(asked == calls[i].asks, calls[i].op, "body %s",
                  f.last.body ? f.last.body : "(none)");
    TS_CHECK_CASE(!json_object_get(req, "ReturnConsumedCapacity"), calls[i].op,
                  "the caller's request was changed");
    ddb_call_clear(&call);
    json_decref(req);
    rig_close(&rg);
    fake_stop(&f);
  }
  struct ddb_consumed rows[DDB_CAPACITY_TABLES];
  size_t n = ddb_consumed_snapshot(rows, DDB_CAPACITY_TABLES);
  double t_read = -1, t_write = -1, u_read = -1, u_write = -1;
  for (size_t k = 0; k < n; k++) {
    if (strcmp(rows[k].table, "UnitCapT") == 0) {
      t_read = rows[k].read_units;
      t_write = rows[k].write_units;
    } else if (strcmp(rows[k].table, "UnitCapU") == 0) {
      u_read = rows[k].read_units;
      u_write = rows[k].write_units;
    }
  }
  TS_CHECK_CASE(t_read == 1 && t_write == 2.5, "UnitCapT",
                "read %g (want 1), write %g (want 2.5)", t_read, t_write);
  TS_CHECK_CASE(u_read == 1.5 && u_write == 2, "UnitCapU",
                "read %g (want 1.5), write %g (want 2)", u_read, u_write);
  set_test_env();
}

static void test_request_is_signed_with_the_headers_it_carries(void) {
  const struct reply ok[] = {{200, OK_BODY, CRC_RIGHT, 0, 0}};
  const struct {
    const char *name, *suffix, *path, *token;
  } cases[] = {
      {"root endpoint, no token", "", "/", NULL},
      {"trailing slash, session token", "/", "/", "FwoGZXIvYXdzE+token/=="},
      {"endpoint with a path", "/base", "/base/", NULL},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const char *name = cases[i].name;
    struct fake f;
    struct rig r;
    set_test_env();
    if (cases[i].token)
      setenv("AWS_SESSION_TOKEN", cases[i].token, 1);
    CU_ASSERT_FATAL(fake_start(&f, ok, 1));
    CU_ASSERT_FATAL(rig_open(&r, f.port, cases[i].suffix));
    json_t *req = get_item_request("wire");
    /* As sent: the caller's request, asking for the capacity consumed. */
    json_t *sent = json_copy(req);
    json_object_set_new(sent, "ReturnConsumedCapacity", json_string("TOTAL"));
    char *want_body = json_dumps(sent, JSON_COMPACT);
    json_decref(sent);
    struct ddb_call call = {.op = "GetItem", .request = req};
    CU_ASSERT_EQUAL(ddb_execute(r.client, &call, 1, clock_now_ms() + 2000),
                    TS_OK);
    TS_CHECK_CASE(call.outcome == DDB_DONE, name, "outcome %d",
                  (int)call.outcome);
    struct seen *s = &f.last;
    char host[64];
    snprintf(host, sizeof host, "127.0.0.1:%u", f.port);
    TS_CHECK_CASE(strcmp(s->url, cases[i].path) == 0, name, "path %s", s->url);
    TS_CHECK_CASE(strcmp(s->host, host) == 0, name, "host %s", s->host);
    TS_CHECK_CASE(strcmp(s->content_type, "application/x-amz-json-1.0") == 0,
                  name, "content type %s", s->content_type);
    TS_CHECK_CASE(strcmp(s->target, "DynamoDB_20120810.GetItem") == 0, name,
                  "target %s", s->target);
    TS_CHECK_CASE(s->body && strcmp(s->body, want_body) == 0, name, "body %s",
                  s->body);
    TS_CHECK_CASE(!s->has_accept_encoding, name, "sent Accept-Encoding");
    const char *prefix = "AWS4-HMAC-SHA256 Credential=" TEST_AKID "/";
    TS_CHECK_CASE(strncmp(s->authorization, prefix, strlen(prefix)) == 0, name,
                  "authorization %s", s->authorization);
    TS_CHECK_CASE(strstr(s->authorization,
                         "/" TEST_REGION "/dynamodb/aws4_request") != NULL,
                  name, "scope in %s", s->authorization);
    const char *sh = strstr(s->authorization, "SignedHeaders=");
    TS_CHECK_CASE(sh && strstr(sh, "host;x-amz-date") &&
                      strstr(sh, "x-amz-target"),
                  name, "signed headers in %s", s->authorization);
    if (cases[i].token) {
      TS_CHECK_CASE(s->has_token && strcmp(s->token, cases[i].token) == 0, name,
                    "token '%s'", s->token);
      TS_CHECK_CASE(sh && strstr(sh, "x-amz-security-token"), name,
                    "token not signed: %s", s->authorization);
    } else {
      TS_CHECK_CASE(!s->has_token, name, "sent a token '%s'", s->token);
    }
    char *again = resign(s, cases[i].path, cases[i].token);
    TS_CHECK_CASE(again && strcmp(again, s->authorization) == 0, name,
                  "re-signed %s", again ? again : "(failed)");
    free(again);
    free(want_body);
    ddb_call_clear(&call);
    json_decref(req);
    rig_close(&r);
    fake_stop(&f);
    set_test_env();
  }
}

/* A Kinesis client speaks JSON 1.1 to Kinesis_20131202.<Op>, signs for
 * "kinesis", sends the request as given (no ReturnConsumedCapacity) and
 * retries a throttled GetRecords. */
static void test_kinesis_call_has_its_protocol_and_is_retried(void) {
  const struct reply script[] = {
      {400,
       "{\"__type\":\"ProvisionedThroughputExceededException\","
       "\"message\":\"Rate exceeded\"}",
       CRC_OMIT, 0, 0},
      {200, "{\"Records\":[],\"MillisBehindLatest\":0}", CRC_OMIT, 0, 0}};
  struct fake f;
  struct aws_creds_provider *creds = NULL;
  struct ddb_client *c = NULL;
  set_test_env();
  CU_ASSERT_FATAL(fake_start(&f, script, 2));
  char ep[64];
  snprintf(ep, sizeof ep, "http://127.0.0.1:%u", f.port);
  struct ddb_options opt = {
      .region = TEST_REGION, .endpoint = ep, .service = DDB_SERVICE_KINESIS};
  CU_ASSERT_FATAL(aws_creds_provider_new(&creds) == TS_OK);
  CU_ASSERT_FATAL(ddb_client_new(&opt, creds, &c) == TS_OK);
  json_t *req = json_pack("{s:s}", "ShardIterator", "it-1");
  struct ddb_call call = {.op = "GetRecords", .request = req};
  CU_ASSERT_EQUAL(ddb_execute(c, &call, 1, clock_now_ms() + 3000), TS_OK);
  CU_ASSERT_EQUAL(call.outcome, DDB_DONE);
  CU_ASSERT_EQUAL(call.attempts, 2);
  struct seen *s = &f.last;
  CU_ASSERT_STRING_EQUAL(s->content_type, "application/x-amz-json-1.1");
  CU_ASSERT_STRING_EQUAL(s->target, "Kinesis_20131202.GetRecords");
  CU_ASSERT_PTR_NOT_NULL(
      strstr(s->authorization, "/" TEST_REGION "/kinesis/aws4_request"));
  CU_ASSERT(s->body && strcmp(s->body, "{\"ShardIterator\":\"it-1\"}") == 0);
  ddb_call_clear(&call);
  json_decref(req);
  ddb_client_free(c);
  aws_creds_provider_free(creds);
  fake_stop(&f);
}

/* ------------------------------------------------------------------ */
/* HTTPS */

/* A self-signed P-256 certificate for IP 127.0.0.1, as PEM strings. */
static bool make_cert(char **key_pem, char **cert_pem) {
  bool ok = false;
  EVP_PKEY *pkey = EVP_EC_gen("P-256");
  X509 *x = X509_new();
  BIO *kb = BIO_new(BIO_s_mem()), *cb = BIO_new(BIO_s_mem());
  *key_pem = *cert_pem = NULL;
  if (!pkey || !x || !kb || !cb)
    goto out;
  X509_NAME *name = X509_get_subject_name(x);
  X509V3_CTX v3;
  X509V3_set_ctx_nodb(&v3);
  X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
  if (!X509_set_version(x, 2) ||
      !ASN1_INTEGER_set(X509_get_serialNumber(x), 1) ||
      !X509_gmtime_adj(X509_getm_notBefore(x), -60) ||
      !X509_gmtime_adj(X509_getm_notAfter(x), 3600) ||
      !X509_set_pubkey(x, pkey) ||
      !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                  (const unsigned char *)"127.0.0.1", -1, -1,
                                  0) ||
      !X509_set_issuer_name(x, name))
    goto out;
  X509_EXTENSION *san =
      X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, "IP:127.0.0.1");
  if (!san)
    goto out;
  int added = X509_add_ext(x, san, -1);
  X509_EXTENSION_free(san);
  if (!added || !X509_sign(x, pkey, EVP_sha256()) ||
      !PEM_write_bio_PrivateKey(kb, pkey, NULL, NULL, 0, NULL, NULL) ||
      !PEM_write_bio_X509(cb, x))
    goto out;
  char *p;
  long kl = BIO_get_mem_data(kb, &p);
  *key_pem = strndup(p, (size_t)kl);
  long cl = BIO_get_mem_data(cb, &p);
  *cert_pem = strndup(p, (size_t)cl);
  ok = *key_pem && *cert_pem;
out:
  BIO_free(kb);
  BIO_free(cb);
  X509_free(x);
  EVP_PKEY_free(pkey);
  return ok;
}

static void test_https_endpoint_is_verified_and_reused(void) {
  const struct reply ok[] = {{200, OK_BODY, CRC_RIGHT, 0, 0}};
  char *key = NULL, *cert = NULL;
  char ca_path[] = "/tmp/ddb-test-ca-XXXXXX";
  struct fake f;
  set_test_env();
  CU_ASSERT_FATAL(make_cert(&key, &cert));
  int fd = mkstemp(ca_path);
  CU_ASSERT_FATAL(fd >= 0);
  CU_ASSERT_FATAL(write(fd, cert, strlen(cert)) == (ssize_t)strlen(cert));
  close(fd);
  CU_ASSERT_FATAL(fake_start_opts(&f, ok, 1, key, cert, 0));

  /* Not in the system trust store: refused before any request. */
  struct rig r;
  CU_ASSERT_FATAL(rig_open_scheme(&r, "https", f.port, ""));
  json_t *req = get_item_request("tls");
  struct ddb_call call = {.op = "GetItem", .request = req};
  CU_ASSERT_EQUAL(ddb_execute(r.client, &call, 1, clock_now_ms() + 300), TS_OK);
  CU_ASSERT_EQUAL(call.outcome, DDB_GAVE_UP);
  CU_ASSERT(call.attempts >= 2);
  CU_ASSERT_EQUAL(fake_get(&f, &f.requests), 0);
  CU_ASSERT(fake_get(&f, &f.connections) >= 1); /* it did try TLS */
  /* the last attempt may be cut short by the deadline instead */
  if (strcmp(call.error_type, "RequestTimeout") != 0) {
    CU_ASSERT_STRING_EQUAL(call.error_type, "ConnectionError");
    CU_ASSERT_PTR_NOT_NULL(strstr(call.error_message, "certificate"));
  }
  ddb_call_clear(&call);
  rig_close(&r);

  /* Trusted through AWS_CA_BUNDLE: signed, answered, one connection. */
  setenv("AWS_CA_BUNDLE", ca_path, 1);
  size_t before = fake_get(&f, &f.connections);
  CU_ASSERT_FATAL(rig_open_scheme(&r, "https", f.port, "/"));
  for (int i = 0; i < 5; i++) {
    call = (struct ddb_call){.op = "GetItem", .request = req};
    CU_ASSERT_EQUAL(ddb_execute(r.client, &call, 1, clock_now_ms() + 2000),
                    TS_OK);
    CU_ASSERT_EQUAL(call.outcome, DDB_DONE);
    CU_ASSERT_EQUAL(call.attempts, 1);
    ddb_call_clear(&call);
  }
  CU_ASSERT_EQUAL(fake_get(&f, &f.requests), 5);
  CU_ASSERT_EQUAL(fake_get(&f, &f.connections) - before, 1);
  char host[64];
  snprintf(host, sizeof host, "127.0.0.1:%u", f.port);
  CU_ASSERT_STRING_EQUAL(f.last.host, host);
  char *again = resign(&f.last, "/", NULL);
  CU_ASSERT(again && strcmp(again, f.last.authorization) == 0);
  free(again);
  rig_close(&r);
  fake_stop(&f);
  json_decref(req);
  unlink(ca_path);
  free(key);
  free(cert);
  set_test_env();
}

/* ------------------------------------------------------------------ */
/* Parallelism and connection reuse */

static void run_batch(struct ddb_client *c, size_t n, const char *prefix,
                      bool *all_done) {
  struct ddb_call *calls = calloc(n, sizeof *calls);
  json_t **reqs = calloc(n, sizeof *reqs);
  *all_done = false;
  if (!calls || !reqs)
    goto out;
  for (size_t i = 0; i < n; i++) {
    char key[48];
    snprintf(key, sizeof key, "%s-%zu", prefix, i);
    reqs[i] = get_item_request(key);
    calls[i] = (struct ddb_call){.op = "GetItem", .request = reqs[i]};
  }
  if (ddb_execute(c, calls, n, clock_now_ms() + 5000) != TS_OK)
    goto out;
  *all_done = true;
  for (size_t i = 0; i < n; i++)
    *all_done &= calls[i].outcome == DDB_DONE && calls[i].attempts == 1;
out:
  for (size_t i = 0; calls && reqs && i < n; i++) {
    ddb_call_clear(&calls[i]);
    json_decref(reqs[i]);
  }
  free(calls);
  free(reqs);
}

static void test_parallel_calls_overlap_and_reuse_their_connections(void) {
  const struct reply slow[] = {{200, OK_BODY, CRC_RIGHT, 200, 0}};
  struct fake f;
  struct rig r;
  bool done = false;
  set_test_env();
  CU_ASSERT_FATAL(fake_start(&f, slow, 1));
  CU_ASSERT_FATAL(rig_open(&r, f.port, ""));

  uint64_t t0 = clock_now_ms();
  run_batch(r.client, 16, "p", &done);
  uint64_t took = clock_now_ms() - t0;
  CU_ASSERT(done);
  CU_ASSERT(took < 600); /* one after another would take 3.2 s */
  CU_ASSERT(fake_get(&f, &f.max_in_flight) >= 12);
  size_t first = fake_get(&f, &f.connections);
  CU_ASSERT(first <= 16);
  CU_ASSERT_EQUAL(ddb_client_connects(r.client), first);

  run_batch(r.client, 16, "q", &done);
  CU_ASSERT(done);
  CU_ASSERT_EQUAL(fake_get(&f, &f.connections), first); /* all reused */
  CU_ASSERT_EQUAL(ddb_client_connects(r.client), first);
  fprintf(stderr,
          "\n  16 parallel x2: %zu TCP connections, first batch %llu ms\n",
          first, (unsigned long long)took);
  rig_close(&r);
  fake_stop(&f);
}

static void test_at_most_32_attempts_are_in_flight(void) {
  const struct reply slow[] = {{200, OK_BODY, CRC_OMIT, 150, 0}};
  struct fake f;
  struct rig r;
  bool done = false;
  set_test_env();
  CU_ASSERT_FATAL(fake_start(&f, slow, 1));
  CU_ASSERT_FATAL(rig_open(&r, f.port, ""));
  uint64_t t0 = clock_now_ms();
  run_batch(r.client, 70, "b", &done);
  uint64_t took = clock_now_ms() - t0;
  CU_ASSERT(done);
  CU_ASSERT_EQUAL(fake_get(&f, &f.requests), 70);
  CU_ASSERT(fake_get(&f, &f.max_in_flight) <= 32);
  CU_ASSERT(fake_get(&f, &f.max_in_flight) >= 16);
  CU_ASSERT(fake_get(&f, &f.connections) <= 32);
  CU_ASSERT(took >= 3 * 150 && took < 1500); /* three waves of <= 32 */
  rig_close(&r);
  fake_stop(&f);
}

static void test_sequential_calls_use_one_connection(void) {
  const struct reply ok[] = {{200, OK_BODY, CRC_RIGHT, 0, 0}};
  struct fake f;
  struct rig r;
  set_test_env();
  CU_ASSERT_FATAL(fake_start(&f, ok, 1));
  CU_ASSERT_FATAL(rig_open(&r, f.port, ""));
  for (int i = 0; i < 20; i++) {
    bool done = false;
    run_batch(r.client, 1, "s", &done);
    CU_ASSERT(done);
  }
  CU_ASSERT_EQUAL(fake_get(&f, &f.requests), 20);
  CU_ASSERT_EQUAL(fake_get(&f, &f.connections), 1);
  CU_ASSERT_EQUAL(ddb_client_connects(r.client), 1);
  rig_close(&r);
  fake_stop(&f);
}

static void test_connection_closed_while_idle_is_replaced_silently(void) {
  const struct reply ok[] = {{200, OK_BODY, CRC_RIGHT, 0, 0}};
  struct fake f;
  struct rig r;
  set_test_env();
  CU_ASSERT_FATAL(fake_start_opts(&f, ok, 1, NULL, NULL, 1));
  CU_ASSERT_FATAL(rig_open(&r, f.port, ""));
  json_t *req = get_item_request("idle");
  for (int i = 0; i < 2; i++) {
    if (i)
      sleep_ms(1600); /* the server drops the idle connection after 1 s */
    struct ddb_call call = {.op = "GetItem", .request = req};
    CU_ASSERT_EQUAL(ddb_execute(r.client, &call, 1, clock_now_ms() + 2000),
                    TS_OK);
    CU_ASSERT_EQUAL(call.outcome, DDB_DONE);
    CU_ASSERT_EQUAL(call.attempts, 1);
    ddb_call_clear(&call);
  }
  CU_ASSERT_EQUAL(fake_get(&f, &f.requests), 2);
  CU_ASSERT_EQUAL(fake_get(&f, &f.connections), 2);
  json_decref(req);
  rig_close(&r);
  fake_stop(&f);
}

struct thread_arg {
  struct ddb_client *client;
  bool ok;
};

static void *thread_main(void *p) {
  struct thread_arg *a = p;
  a->ok = true;
  for (int i = 0; i < 15; i++) {
    bool done = false;
    run_batch(a->client, 4, "t", &done);
    a->ok &= done;
  }
  return NULL;
}

static void test_threads_share_one_client_safely(void) {
  const struct reply ok[] = {{200, OK_BODY, CRC_RIGHT, 2, 0}};
  struct fake f;
  struct rig r;
  set_test_env();
  CU_ASSERT_FATAL(fake_start(&f, ok, 1));
  CU_ASSERT_FATAL(rig_open(&r, f.port, ""));
  pthread_t th[6];
  struct thread_arg args[6];
  for (size_t i = 0; i < 6; i++) {
    args[i] = (struct thread_arg){.client = r.client};
    CU_ASSERT_FATAL(pthread_create(&th[i], NULL, thread_main, &args[i]) == 0);
  }
  for (size_t i = 0; i < 6; i++) {
    pthread_join(th[i], NULL);
    CU_ASSERT(args[i].ok);
  }
  CU_ASSERT_EQUAL(fake_get(&f, &f.requests), 6 * 15 * 4);
  /* at most 6 contexts in use at once, 4 connections each */
  CU_ASSERT(fake_get(&f, &f.connections) <= 24);
  fprintf(stderr, "\n  6 threads x 15 x 4 calls: %zu TCP connections\n",
          fake_get(&f, &f.connections));
  rig_close(&r);
  fake_stop(&f);
}

/* ------------------------------------------------------------------ */
/* dynalite */

#define DYN_TABLE "ddb_client_test"

static struct {
  pid_t pid;
  struct rig rig;
} dyn = {.pid = -1};

static unsigned free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0)
    return 0;
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t sl = sizeof sa;
  unsigned port = 0;
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
      getsockname(fd, (struct sockaddr *)&sa, &sl) == 0)
    port = ntohs(sa.sin_port);
  close(fd);
  return port;
}

/* One call; returns its outcome, the response through *resp if asked. */
static enum ddb_outcome dyn_call(const char *op, json_t *req, json_t **resp,
                                 struct ddb_call *out) {
  struct ddb_call call = {.op = op, .request = req};
  enum ddb_outcome o = DDB_GAVE_UP;
  if (ddb_execute(dyn.rig.client, &call, 1, clock_now_ms() + 3000) == TS_OK)
    o = call.outcome;
  if (resp) {
    *resp = call.response;
    call.response = NULL;
  }
  if (out) {
    *out = call;
    out->response = NULL; /* cleared below */
  }
  ddb_call_clear(&call);
  json_decref(req);
  return o;
}

static int dyn_stop(void) {
  rig_close(&dyn.rig);
  dyn.rig = (struct rig){0};
  if (dyn.pid > 0) {
    kill(dyn.pid, SIGTERM);
    waitpid(dyn.pid, NULL, 0);
    dyn.pid = -1;
  }
  return 0;
}

static int dyn_start(void) {
  const char *path = getenv("TS_TEST_DYNALITE");
  unsigned port = free_port();
  char port_s[16];
  if (!path || !port)
    return 1;
  set_test_env();
  snprintf(port_s, sizeof port_s, "%u", port);
  dyn.pid = fork();
  if (dyn.pid < 0)
    return 1;
  if (dyn.pid == 0) {
    int devnull = open("/dev/null", O_WRONLY);
    if (devnull >= 0)
      dup2(devnull, STDOUT_FILENO); /* its "listening at" banner */
    execl(path, path, "--port", port_s, "--host", "127.0.0.1",
          "--createTableMs", "0", (char *)NULL);
    _exit(127);
  }
  if (!rig_open(&dyn.rig, port, "")) {
    dyn_stop();
    return 1;
  }
  /* Wait until it answers (node starts in about a second). */
  for (int i = 0; i < 100; i++) {
    if (dyn_call("ListTables", json_object(), NULL, NULL) == DDB_DONE)
      return 0;
    if (waitpid(dyn.pid, NULL, WNOHANG) == dyn.pid) {
      dyn.pid = -1;
      break;
    }
    sleep_ms(100);
  }
  fprintf(stderr, "dynalite at %s did not answer\n", path);
  dyn_stop();
  return 1;
}

static json_t *item(const char *pk, const char *v) {
  return json_pack("{s:{s:s}, s:{s:s}}", "pk", "S", pk, "v", "N", v);
}

static json_t *put_request(const char *pk, const char *v) {
  return json_pack("{s:s, s:o}", "TableName", DYN_TABLE, "Item", item(pk, v));
}

static const char *item_v(const json_t *resp) {
  return json_string_value(json_object_get(
      json_object_get(json_object_get(resp, "Item"), "v"), "N"));
}

static void test_dynalite_create_put_get_round_trip(void) {
  json_t *create = json_pack(
      "{s:s, s:[{s:s, s:s}], s:[{s:s, s:s}], s:{s:i, s:i}}", "TableName",
      DYN_TABLE, "AttributeDefinitions", "AttributeName", "pk", "AttributeType",
      "S", "KeySchema", "AttributeName", "pk", "KeyType", "HASH",
      "ProvisionedThroughput", "ReadCapacityUnits", 5, "WriteCapacityUnits", 5);
  json_t *resp = NULL;
  CU_ASSERT_EQUAL_FATAL(dyn_call("CreateTable", create, &resp, NULL), DDB_DONE);
  CU_ASSERT_PTR_NOT_NULL(json_object_get(resp, "TableDescription"));
  json_decref(resp);
  /* --createTableMs 0 still reports CREATING for a moment */
  bool active = false;
  for (int i = 0; i < 50 && !active; i++) {
    resp = NULL;
    if (dyn_call("DescribeTable", json_pack("{s:s}", "TableName", DYN_TABLE),
                 &resp, NULL) == DDB_DONE) {
      const char *st = json_string_value(
          json_object_get(json_object_get(resp, "Table"), "TableStatus"));
      active = st && strcmp(st, "ACTIVE") == 0;
    }
    json_decref(resp);
    if (!active)
      sleep_ms(20);
  }
  CU_ASSERT_FATAL(active);

  CU_ASSERT_EQUAL(dyn_call("PutItem", put_request("k1", "1"), NULL, NULL),
                  DDB_DONE);
  resp = NULL;
  CU_ASSERT_EQUAL(dyn_call("GetItem",
                           json_pack("{s:s, s:{s:{s:s}}}", "TableName",
                                     DYN_TABLE, "Key", "pk", "S", "k1"),
                           &resp, NULL),
                  DDB_DONE);
  CU_ASSERT_STRING_EQUAL(item_v(resp) ? item_v(resp) : "", "1");
  json_decref(resp);
}

static void test_dynalite_failed_condition_is_reported_not_retried(void) {
  json_t *req = put_request("k1", "2");
  json_object_set_new(req, "ConditionExpression",
                      json_string("attribute_not_exists(pk)"));
  json_object_set_new(req, "ReturnValuesOnConditionCheckFailure",
                      json_string("ALL_OLD"));
  json_t *resp = NULL;
  struct ddb_call call;
  CU_ASSERT_EQUAL(dyn_call("PutItem", req, &resp, &call), DDB_CONDITION_FAILED);
  CU_ASSERT_EQUAL(call.attempts, 1);
  CU_ASSERT_EQUAL(call.http_status, 400);
  CU_ASSERT_STRING_EQUAL(call.error_type, "ConditionalCheckFailedException");
  CU_ASSERT_PTR_NOT_NULL(resp); /* the error body is kept */
  /* dynalite 4.0.0 ignores ReturnValuesOnConditionCheckFailure; DynamoDB
   * puts the old item here (the scripted test checks that it is kept). */
  if (json_object_get(resp, "Item"))
    CU_ASSERT_STRING_EQUAL(item_v(resp) ? item_v(resp) : "", "1");
  json_decref(resp);
  /* and the item was not overwritten */
  resp = NULL;
  CU_ASSERT_EQUAL(dyn_call("GetItem",
                           json_pack("{s:s, s:{s:{s:s}}}", "TableName",
                                     DYN_TABLE, "Key", "pk", "S", "k1"),
                           &resp, NULL),
                  DDB_DONE);
  CU_ASSERT_STRING_EQUAL(item_v(resp) ? item_v(resp) : "", "1");
  json_decref(resp);
}

static void test_dynalite_bad_requests_are_rejected_at_once(void) {
  const struct {
    const char *name, *op;
    json_t *req;
    const char *type;
  } cases[] = {
      {"key of the wrong type", "GetItem",
       json_pack("{s:s, s:{s:{s:s}}}", "TableName", DYN_TABLE, "Key", "pk", "N",
                 "1"),
       "ValidationException"},
      {"missing table", "GetItem",
       json_pack("{s:s, s:{s:{s:s}}}", "TableName", "no_such_table", "Key",
                 "pk", "S", "a"),
       "ResourceNotFoundException"},
      {"unknown operation", "FlyToTheMoon", json_object(),
       "UnknownOperationException"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct ddb_call call;
    enum ddb_outcome o = dyn_call(cases[i].op, cases[i].req, NULL, &call);
    TS_CHECK_CASE(o == DDB_REJECTED, cases[i].name, "outcome %d", (int)o);
    TS_CHECK_CASE(call.attempts == 1, cases[i].name, "attempts %u",
                  call.attempts);
    TS_CHECK_CASE(strcmp(call.error_type, cases[i].type) == 0, cases[i].name,
                  "error_type %s (%s)", call.error_type, call.error_message);
  }
}

static bool dyn_parallel_puts(size_t n, const char *value, uint64_t *connects) {
  struct ddb_call calls[50];
  json_t *reqs[50];
  bool ok = true;
  uint64_t before = ddb_client_connects(dyn.rig.client);
  for (size_t i = 0; i < n; i++) {
    char pk[32];
    snprintf(pk, sizeof pk, "par-%zu", i);
    reqs[i] = put_request(pk, value);
    calls[i] = (struct ddb_call){.op = "PutItem", .request = reqs[i]};
  }
  ok = ddb_execute(dyn.rig.client, calls, n, clock_now_ms() + 5000) == TS_OK;
  for (size_t i = 0; i < n; i++) {
    ok &= calls[i].outcome == DDB_DONE;
    ddb_call_clear(&calls[i]);
    json_decref(reqs[i]);
  }
  *connects = ddb_client_connects(dyn.rig.client) - before;
  return ok;
}

static void test_dynalite_50_parallel_puts_land_over_few_connections(void) {
  uint64_t first = 0, second = 0;
  CU_ASSERT(dyn_parallel_puts(50, "7", &first));
  CU_ASSERT(first >= 1 && first <= 32);
  CU_ASSERT(dyn_parallel_puts(50, "8", &second));
  CU_ASSERT(second <= 2); /* the second round reuses the first's */
  fprintf(stderr,
          "\n  dynalite: 50 parallel PutItems opened %llu connections, "
          "the next 50 opened %llu\n",
          (unsigned long long)first, (unsigned long long)second);
  for (size_t i = 0; i < 50; i++) {
    char pk[32];
    snprintf(pk, sizeof pk, "par-%zu", i);
    json_t *resp = NULL;
    enum ddb_outcome o =
        dyn_call("GetItem",
                 json_pack("{s:s, s:{s:{s:s}}, s:b}", "TableName", DYN_TABLE,
                           "Key", "pk", "S", pk, "ConsistentRead", 1),
                 &resp, NULL);
    TS_CHECK_CASE(o == DDB_DONE && item_v(resp) &&
                      strcmp(item_v(resp), "8") == 0,
                  pk, "outcome %d", (int)o);
    json_decref(resp);
  }
}

void suite_ddb(void) {
  set_test_env();
  TS_SUITE("ddb", TS_TEST(test_errors_classify_as_condition_retry_or_reject),
           TS_TEST(test_retryable_errors_are_told_throttled_or_transient),
           TS_TEST(test_backoff_ceiling_doubles_from_25ms_to_a_1s_cap),
           TS_TEST(test_endpoint_comes_from_option_then_env_then_region),
           TS_TEST(test_kinesis_endpoint_has_its_own_variable_and_host),
           TS_TEST(test_kinesis_call_has_its_protocol_and_is_retried),
           TS_TEST(test_scripted_answers_are_retried_or_final_by_class),
           TS_TEST(test_always_503_gives_up_at_the_deadline),
           TS_TEST(test_slow_answer_times_out_and_gives_up_by_the_deadline),
           TS_TEST(test_one_attempt_lasts_at_most_2s_then_is_retried),
           TS_TEST(test_refused_connection_is_retried_until_the_deadline),
           TS_TEST(test_past_deadline_sends_nothing),
           TS_TEST(test_malformed_calls_and_missing_credentials_are_refused),
           TS_TEST(test_request_is_signed_with_the_headers_it_carries),
           TS_TEST(test_consumed_capacity_is_asked_for_and_summed_per_table),
           TS_TEST(test_https_endpoint_is_verified_and_reused),
           TS_TEST(test_parallel_calls_overlap_and_reuse_their_connections),
           TS_TEST(test_at_most_32_attempts_are_in_flight),
           TS_TEST(test_sequential_calls_use_one_connection),
           TS_TEST(test_connection_closed_while_idle_is_replaced_silently),
           TS_TEST(test_threads_share_one_client_safely));

  if (!getenv("TS_TEST_DYNALITE") || !*getenv("TS_TEST_DYNALITE")) {
    fprintf(stderr, "ddb: TS_TEST_DYNALITE is not set (path of the dynalite "
                    "executable): skipping the dynalite tests\n");
    return;
  }
  CU_pSuite s = CU_add_suite("ddb_dynalite", dyn_start, dyn_stop);
  if (!s)
    return;
  CU_add_test(s, "test_dynalite_create_put_get_round_trip",
              test_dynalite_create_put_get_round_trip);
  CU_add_test(s, "test_dynalite_failed_condition_is_reported_not_retried",
              test_dynalite_failed_condition_is_reported_not_retried);
  CU_add_test(s, "test_dynalite_bad_requests_are_rejected_at_once",
              test_dynalite_bad_requests_are_rejected_at_once);
  CU_add_test(s, "test_dynalite_50_parallel_puts_land_over_few_connections",
              test_dynalite_50_parallel_puts_land_over_few_connections);
}
