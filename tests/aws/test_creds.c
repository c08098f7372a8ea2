/* The AWS credential chain against real local endpoints: a libmicrohttpd
 * server on 127.0.0.1 that plays the container credentials endpoint
 * (checking Authorization) and IMDSv2 (token PUT, then GETs that must carry
 * the token), and shared files written under a fresh temporary folder.
 * Every test saves and restores the environment, points HOME at its own
 * folder and keeps IMDS away from 169.254.169.254. */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "aws/creds.h"
#include "aws/creds_test.h"

#include "../unit/unit.h"

/* ---- the local metadata server ---- */

struct server {
  struct MHD_Daemon *daemon;
  char base[64]; /* "http://127.0.0.1:<port>" */
  pthread_mutex_t mu;
  /* Set by the test (under mu). */
  char container_auth[64]; /* Authorization the container endpoint wants */
  long expires_in;         /* Expiration = now + this many seconds */
  /* Counted by the server (under mu). */
  unsigned container_gets, token_puts, role_lists, role_gets, refused;
  char token[64]; /* the last IMDS session token issued */
  time_t last_expiration;
};

static enum MHD_Result send_text(struct MHD_Connection *c, unsigned status,
                                 const char *body) {
  struct MHD_Response *r = MHD_create_response_from_buffer(
      strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
  if (!r)
    return MHD_NO;
  enum MHD_Result ret = MHD_queue_response(c, status, r);
  MHD_destroy_response(r);
  return ret;
}

/* A credentials document numbered n; called with s->mu held. */
static void creds_document(struct server *s, const char *who, unsigned n,
                           bool with_code, char *out, size_t size) {
  time_t exp = time(NULL) + s->expires_in;
  struct tm tm;
  char when[32];
  gmtime_r(&exp, &tm);
  strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
  s->last_expiration = exp;
  snprintf(
      out, size,
      "{%s\"AccessKeyId\":\"ASIA%s%u\",\"SecretAccessKey\":\"secret-%s-%u\","
      "\"Token\":\"token-%s-%u\",\"Expiration\":\"%s\"}",
      with_code ? "\"Code\":\"Success\",\"Type\":\"AWS-HMAC\"," : "", who, n,
      who, n, who, n, when);
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c,
                              const char *url, const char *method,
                              const char *version, const char *upload_data,
                              size_t *upload_data_size, void **con_cls) {
  static int started;
  struct server *s = cls;
  char body[512];
  unsigned status = 404;
  (void)version;
  (void)upload_data;
  if (*con_cls == NULL) { /* headers only so far */
    *con_cls = &started;
    return MHD_YES;
  }
  if (*upload_data_size) {
    *upload_data_size = 0;
    return MHD_YES;
  }
  const char *auth =
      MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
  const char *ttl = MHD_lookup_connection_value(
      c, MHD_HEADER_KIND, "X-aws-ec2-metadata-token-ttl-seconds");
  const char *token = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                  "X-aws-ec2-metadata-token");
  snprintf(body, sizeof body, "not found");
  pthread_mutex_lock(&s->mu);
  bool has_token = token && s->token[0] && strcmp(token, s->token) == 0;
  if (strcmp(url, "/container/creds") == 0 && strcmp(method, "GET") == 0) {
    if (s->container_auth[0] &&
        (!auth || strcmp(auth, s->container_auth) != 0)) {
      s->refused++;
      status = 401;
      snprintf(body, sizeof body, "{\"code\":\"Unauthorized\"}");
    } else {
      status = 200;
      creds_document(s, "CONTAINER", ++s->container_gets, false, body,
                     sizeof body);
    }
  } else if (strcmp(url, "/latest/api/token") == 0) {
    if (strcmp(method, "PUT") != 0 || !ttl || strcmp(ttl, "21600") != 0) {
      s->refused++;
      status = 400;
    } else {
      status = 200;
      snprintf(s->token, sizeof s->token, "imds-token-%u", ++s->token_puts);
      snprintf(body, sizeof body, "%s\n", s->token); /* client trims */
    }
  } else if (strncmp(url, "/latest/meta-data/iam/security-credentials/", 43) ==
                 0 &&
             strcmp(method, "GET") == 0) {
    const char *role = url + 43;
    if (!has_token) {
      s->refused++;
      status = 401;
    } else if (*role == '\0') {
      status = 200;
      s->role_lists++;
      snprintf(body, sizeof body, "test-role\n");
    } else if (strcmp(role, "test-role") == 0) {
      status = 200;
      creds_document(s, "IMDS", ++s->role_gets, true, body, sizeof body);
    }
  }
  pthread_mutex_unlock(&s->mu);
  return send_text(c, status, body);
}

static bool server_start(struct server *s) {
  memset(s, 0, sizeof *s);
  pthread_mutex_init(&s->mu, NULL);
  s->expires_in = 3600;
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  s->daemon =
      MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, handle,
                       s, MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_END);
  if (!s->daemon)
    return false;
  const union MHD_DaemonInfo *info =
      MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
  if (!info || info->port == 0)
    return false;
  snprintf(s->base, sizeof s->base, "http://127.0.0.1:%u",
           (unsigned)info->port);
  return true;
}

static void server_stop(struct server *s) {
  if (s->daemon)
    MHD_stop_daemon(s->daemon);
  s->daemon = NULL;
  pthread_mutex_destroy(&s->mu);
}

static void server_set(struct server *s, const char *container_auth,
                       long expires_in) {
  pthread_mutex_lock(&s->mu);
  snprintf(s->container_auth, sizeof s->container_auth, "%s",
           container_auth ? container_auth : "");
  s->expires_in = expires_in;
  pthread_mutex_unlock(&s->mu);
}

/* A snapshot of the server's counters. */
static struct server counters(struct server *s) {
  pthread_mutex_lock(&s->mu);
  struct server copy = {.container_gets = s->container_gets,
                        .token_puts = s->token_puts,
                        .role_lists = s->role_lists,
                        .role_gets = s->role_gets,
                        .refused = s->refused,
                        .last_expiration = s->last_expiration};
  pthread_mutex_unlock(&s->mu);
  return copy;
}

/* A loopback port with nothing listening (bound, then released). */
static unsigned closed_port(void) {
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof sa;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0)
    return 1;
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
      getsockname(fd, (struct sockaddr *)&sa, &len) != 0)
    sa.sin_port = htons(1);
  close(fd);
  return ntohs(sa.sin_port);
}

/* ---- environment and files ---- */

static const char *const vars[] = {
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_CONFIG_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT",
    "AWS_EC2_METADATA_DISABLED",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "HOME",
};
#define N_VARS (sizeof vars / sizeof vars[0])
#define MAX_FILES 8

struct fixture {
  char *saved[N_VARS];
  char dir[64];
  char files[MAX_FILES][128];
  size_t n_files;
};

/* Saves and clears the AWS environment, makes a private HOME and turns
 * IMDS off (tests that want it point it at their server). */
static void fx_begin(struct fixture *fx) {
  memset(fx, 0, sizeof *fx);
  for (size_t i = 0; i < N_VARS; i++) {
    const char *v = getenv(vars[i]);
    fx->saved[i] = v ? strdup(v) : NULL;
    unsetenv(vars[i]);
  }
  snprintf(fx->dir, sizeof fx->dir, "/tmp/ts-creds-XXXXXX");
  CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(fx->dir));
  setenv("HOME", fx->dir, 1);
  setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
}

static void fx_end(struct fixture *fx) {
  for (size_t i = 0; i < N_VARS; i++) {
    if (fx->saved[i])
      setenv(vars[i], fx->saved[i], 1);
    else
      unsetenv(vars[i]);
    free(fx->saved[i]);
  }
  for (size_t i = 0; i < fx->n_files; i++)
    unlink(fx->files[i]);
  rmdir(fx->dir);
}

/* Writes (or rewrites) dir/name and returns its path. */
static const char *fx_write(struct fixture *fx, const char *name,
                            const char *content) {
  char path[128];
  snprintf(path, sizeof path, "%s/%s", fx->dir, name);
  size_t i = 0;
  while (i < fx->n_files && strcmp(fx->files[i], path) != 0)
    i++;
  CU_ASSERT_FATAL(i < MAX_FILES);
  if (i == fx->n_files)
    snprintf(fx->files[fx->n_files++], sizeof fx->files[0], "%s", path);
  FILE *f = fopen(path, "w");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  fputs(content, f);
  fclose(f);
  return fx->files[i];
}

static struct aws_creds_provider *new_provider(void) {
  struct aws_creds_provider *p = NULL;
  CU_ASSERT_EQUAL_FATAL(aws_creds_provider_new(&p), TS_OK);
  return p;
}

static bool str_eq(const char *a, const char *b) {
  return a == b || (a && b && strcmp(a, b) == 0);
}

#define S(x) ((x) ? (x) : "(null)")

/* ---- tests ---- */

static void test_environment_wins_over_shared_files_and_changes_are_seen(void) {
  struct fixture fx;
  fx_begin(&fx);
  setenv("AWS_SHARED_CREDENTIALS_FILE",
         fx_write(&fx, "credentials",
                  "[default]\naws_access_key_id = FILEKEY\n"
                  "aws_secret_access_key = filesecret\n"),
         1);
  setenv("AWS_ACCESS_KEY_ID", "ENVKEY", 1);
  setenv("AWS_SECRET_ACCESS_KEY", "envsecret", 1);
  setenv("AWS_SESSION_TOKEN", "envtoken", 1);
  struct aws_creds_provider *p = new_provider();
  struct aws_creds c;

  CU_ASSERT_EQUAL(aws_creds_get(p, &c), TS_OK);
  CU_ASSERT_STRING_EQUAL(S(c.source), "environment");
  CU_ASSERT_STRING_EQUAL(S(c.access_key_id), "ENVKEY");
  CU_ASSERT_STRING_EQUAL(S(c.secret_access_key), "envsecret");
  CU_ASSERT_STRING_EQUAL(S(c.session_token), "envtoken");
  CU_ASSERT_EQUAL(c.expiration, 0);
  aws_creds_clear(&c);

  /* Only half of the pair: the environment provider is not configured. */
  unsetenv("AWS_SECRET_ACCESS_KEY");
  CU_ASSERT_EQUAL(aws_creds_get(p, &c), TS_OK);
  CU_ASSERT_STRING_EQUAL(S(c.source), "shared-files");
  CU_ASSERT_STRING_EQUAL(S(c.access_key_id), "FILEKEY");
  CU_ASSERT_PTR_NULL(c.session_token);
  aws_creds_clear(&c);

  unsetenv("AWS_ACCESS_KEY_ID");
  unsetenv("AWS_SESSION_TOKEN");
  CU_ASSERT_EQUAL(aws_creds_get(p, &c), TS_OK);
  CU_ASSERT_STRING_EQUAL(S(c.access_key_id), "FILEKEY");
  aws_creds_clear(&c);

  aws_creds_provider_free(p);
  fx_end(&fx);
}

static const char credentials_file[] =
    "# comment\n"
    "; another comment\n"
    "[default]\n"
    "aws_access_key_id=DEFAULTKEY\n"
    "aws_secret_access_key=defaultsecret\n"
    "\n"
    "  [ work ]   \r\n"
    "\tAWS_ACCESS_KEY_ID   =   WORKKEY   ; inline comment\r\n"
    "aws_secret_access_key = worksecret#not-a-comment\n"
    "aws_session_token = worktoken # comment\n"
    "\n"
    "[profile prefixed]\n"
    "aws_access_key_id = PREFIXEDKEY\n"
    "aws_secret_access_key = prefixedsecret\n";

static const char config_file[] = "[default]\n"
                                  "region = eu-west-1\n"
                                  "[profile cfgonly]\n"
                                  "aws_access_key_id = CFGKEY\n"
                                  "aws_secret_access_key = cfgsecret\n"
                                  "s3 =\n"
                                  "  aws_access_key_id = NESTEDKEY\n"
                                  "  region = nested-region\n"
                                  "aws_session_token = cfgtoken\n"
                                  "region = eu-central-1\n"
                                  "[bare]\n"
                                  "aws_access_key_id = BAREKEY\n"
                                  "aws_secret_access_key = baresecret\n"
                                  "region = bare-region\n"
                                  "[profile   work]\n"
                                  "aws_access_key_id = CONFIGWORKKEY\n"
                                  "aws_secret_access_key = configworksecret\n"
                                  "region = us-west-2\n";

static void write_shared_files(struct fixture *fx) {
  setenv("AWS_SHARED_CREDENTIALS_FILE",
         fx_write(fx, "credentials", credentials_file), 1);
  setenv("AWS_CONFIG_FILE", fx_write(fx, "config", config_file), 1);
}

static void test_aws_profile_selects_the_section_in_both_files(void) {
  static const struct {
    const char *name, *profile;
    enum ts_status status;
    const char *akid, *secret, *token;
  } cases[] = {
      {"no AWS_PROFILE: [default]", NULL, TS_OK, "DEFAULTKEY", "defaultsecret",
       NULL},
      {"credentials [work] wins over config [profile work]", "work", TS_OK,
       "WORKKEY", "worksecret#not-a-comment", "worktoken"},
      {"config [profile cfgonly], nested s3 keys ignored", "cfgonly", TS_OK,
       "CFGKEY", "cfgsecret", "cfgtoken"},
      {"config [bare] is not a profile", "bare", TS_ERR_NOT_FOUND, NULL, NULL,
       NULL},
      {"credentials [profile prefixed] is not profile prefixed", "prefixed",
       TS_ERR_NOT_FOUND, NULL, NULL, NULL},
      {"credentials [profile prefixed] is the profile named so",
       "profile prefixed", TS_OK, "PREFIXEDKEY", "prefixedsecret", NULL},
      {"unknown profile falls through", "nosuch", TS_ERR_NOT_FOUND, NULL, NULL,
       NULL},
  };
  struct fixture fx;
  fx_begin(&fx);
  write_shared_files(&fx);
  struct aws_creds_provider *p = new_provider();
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    if (cases[i].profile)
      setenv("AWS_PROFILE", cases[i].profile, 1);
    else
      unsetenv("AWS_PROFILE");
    struct aws_creds c;
    enum ts_status st = aws_creds_get(p, &c);
    TS_CHECK_CASE(st == cases[i].status, cases[i].name, "status %s",
                  ts_status_name(st));
    TS_CHECK_CASE(str_eq(c.access_key_id, cases[i].akid) &&
                      str_eq(c.secret_access_key, cases[i].secret) &&
                      str_eq(c.session_token, cases[i].token),
                  cases[i].name, "got %s / %s / %s", S(c.access_key_id),
                  S(c.secret_access_key), S(c.session_token));
    TS_CHECK_CASE(st != TS_OK || str_eq(c.source, "shared-files"),
                  cases[i].name, "source %s", S(c.source));
    aws_creds_clear(&c);
  }
  aws_creds_provider_free(p);
  fx_end(&fx);
}

static void test_shared_files_past_their_bounds_are_refused(void) {
  struct fixture fx;
  fx_begin(&fx);
  struct aws_creds_provider *p = new_provider();
  struct aws_creds c;
  size_t big = 1024 * 1024 + 16;
  char *text = malloc(big + 1);
  CU_ASSERT_PTR_NOT_NULL_FATAL(text);

  /* One line longer than 4096 bytes. */
  memcpy(text, "[default]\n# ", 12);
  memset(text + 12, 'x', 5000);
  snprintf(text + 5012, 200,
           "\naws_access_key_id = K\naws_secret_access_key = S\n");
  setenv("AWS_SHARED_CREDENTIALS_FILE", fx_write(&fx, "credentials", text), 1);
  CU_ASSERT_EQUAL(aws_creds_get(p, &c), TS_ERR_INVALID);
  CU_ASSERT_PTR_NULL(c.access_key_id);

  /* The same profile in a file of more than 1 MiB of short lines. */
  size_t n = (size_t)snprintf(
      text, big,
      "[default]\naws_access_key_id = K\naws_secret_access_key = S\n");
  while (n + 8 < big) {
    memcpy(text + n, "# pad.\n", 7);
    n += 7;
  }
  text[n] = '\0';
  fx_write(&fx, "credentials", text);
  CU_ASSERT_EQUAL(aws_creds_get(p, &c), TS_ERR_INVALID);

  /* Within bounds, the same profile is read. */
  fx_write(&fx, "credentials",
           "[default]\naws_access_key_id = K\naws_secret_access_key = S\n");
  CU_ASSERT_EQUAL(aws_creds_get(p, &c), TS_OK);
  CU_ASSERT_STRING_EQUAL(S(c.access_key_id), "K");
  aws_creds_clear(&c);

  free(text);
  aws_creds_provider_free(p);
  fx_end(&fx);
}

static void container_uri(struct server *s, char *out, size_t size) {
  snprintf(out, size, "%s/container/creds", s->base);
}

static void test_container_token_file_is_reread_at_each_fetch(void) {
  struct fixture fx;
  struct server s;
  char uri[128];
  fx_begin(&fx);
  CU_ASSERT_FATAL(server_start(&s));
  container_uri(&s, uri, sizeof uri);
  setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", uri, 1);
  setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
         fx_write(&fx, "token", "token-one\n"), 1);
  /* The file wins over the variable. */
  setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "env-token", 1);
  /* Within 5 minutes of expiry: every call fetches. */
  server_set(&s, "token-one", 60);
  struct aws_creds_provider *p = new_provider();
  struct aws_creds c;

  time_t before = time(NULL);
  CU_ASSERT_EQUAL(aws_creds_get(p, &c), TS_OK);
  CU_ASSERT_STRING_EQUAL(S(c.source), "container");
  CU_ASSERT_STRING_EQUAL(S(c.access_key_id), "ASIACONTAINER1");
  CU_ASSERT_STRING_EQUAL(S(c.secret_access_key), "secret-CONTAINER-1");
  CU_ASSERT_STRING_EQUAL(S(c.session_token), "token-CONTAINER-1");
  CU_ASSERT(c.expiration >= before + 59 && c.expiration <= time(NULL) + 60);
  aws_creds_clear(&c);

  fx_write(&fx, "token", "token-two");
  server_set(&s, "token-two", 60);
  CU_ASSERT_EQUAL(aws_creds_get(p, &c), TS_OK);
  CU_ASSERT_STRING_EQUAL(S(c.access_key_id), "ASIACONTAINER2");
  aws_creds_clear(&c);

  struct server n = counters(&s);
  CU_ASSERT_EQUAL(n.container_gets, 2);
  CU_ASSERT_EQUAL(n.refused, 0);
  aws_creds_provider_free(p);
  server_stop(&s);
  fx_end(&fx);
}

static void test_container_token_from_environment_and_cache(void) {
  struct fixture fx;
  struct server s;
  char uri[128];
  fx_begin(&fx);
  CU_ASSERT_FATAL(server_start(&s));
  container_uri(&s, uri, sizeof uri);
  setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", uri, 1);
  setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "env-token", 1);
  server_set(&s, "env-token", 3600);
  struct aws_creds_provider *p = new_provider();
  struct aws_creds c;

  /* Fresh credentials: fetched once, then served from the cache. */
  for (int i = 0; i < 3; i++) {
    CU_ASSERT_EQUAL(aws_creds_get(p, &c), TS_OK);
    CU_ASSERT_STRING_EQUAL(S(c.access_key_id), "ASIACONTAINER1");
    aws_creds_clear(&c);
  }
  CU_ASSERT_EQUAL(counters(&s).container_gets, 1);

  /* A token the endpoint refuses, on a fresh provider: configured but
   * failing, so no fall-through. */
  struct aws_creds_provider *q = new_provider();
  setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "wrong-token", 1);
  CU_ASSERT_EQUAL(aws_creds_get(q, &c), TS_ERR_UNAVAILABLE);
  CU_ASSERT_PTR_NULL(c.access_key_id);
  CU_ASSERT_EQUAL(counters(&s).refused, 1);
  aws_creds_provider_free(q);

  aws_creds_provider_free(p);
  server_stop(&s);
  fx_end(&fx);
}

static void test_full_uri_host_allow_list(void) {
  static const struct {
    const char *uri;
    bool allowed;
  } cases[] = {
      {"http://127.0.0.1:8080/creds", true},
      {"http://127.1.2.3/creds", true},
      {"http://localhost/creds", true},
      {"http://[::1]:9000/creds", true},
      {"http://169.254.170.2/v2/credentials/x", true},
      {"http://169.254.170.23/v1/credentials", true},
      {"http://[fd00:ec2::23]/v1/credentials", true},
      {"https://example.com/creds", true},
      {"HTTPS://creds.example.com:8443/x", true},
      {"http://example.com/creds", false},
      {"http://169.254.169.254/latest", false},
      {"http://169.254.170.3/", false},
      {"http://10.0.0.1/creds", false},
      {"http://[fd00:ec2::24]/", false},
      {"http://127.0.0.1.example.com/", false},
      {"http://127.0.0.1@example.com/", false},
      {"ftp://127.0.0.1/creds", false},
      {"127.0.0.1/creds", false},
      {"", false},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    bool got = creds_test_full_uri_allowed(cases[i].uri);
    TS_CHECK_CASE(got == cases[i].allowed, cases[i].uri, "allowed %d", got);
  }
}

static void test_full_uri_to_a_host_not_allowed_is_refused(void) {
  struct fixture fx;
  struct server s;
  fx_begin(&fx);
  CU_ASSERT_FATAL(server_start(&s));
  /* IMDS is available, to show the chain does not fall through to it. */
  unsetenv("AWS_EC2_METADATA_DISABLED");
  setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", s.base, 1);
  setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://example.com/creds", 1);
  struct aws_creds_provider *p = new_provider();
  struct aws_creds c;
  CU_ASSERT_EQUAL(aws_creds_get(p, &c), TS_ERR_INVALID);
  CU_ASSERT_PTR_NULL(c.access_key_id);
  CU_ASSERT_EQUAL(counters(&s).token_puts, 0);
  aws_creds_provider_free(p);
  server_stop(&s);
  fx_end(&fx);
}

static void test_unreachable_container_is_unavailable_not_skipped(void) {
  struct fixture fx;
  struct server s;
  char uri[128];
  fx_begin(&fx);
  CU_ASSERT_FATAL(server_start(&s));
  unsetenv("AWS_EC2_METADATA_DISABLED");
  setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", s.base, 1);
  snprintf(uri, sizeof uri, "http://127.0.0.1:%u/creds", closed_port());
  setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", uri, 1);
  struct aws_creds_provider *p = new_provider();
  struct aws_creds c;
  CU_ASSERT_EQUAL(aws_creds_get(p, &c), TS_ERR_UNAVAILABLE);
  CU_ASSERT_EQUAL(counters(&s).token_puts, 0);
  aws_creds_provider_free(p);
  server_stop(&s);
  fx_end(&fx);
}

static void test_imds_v2_token_role_and_credentials(void) {
  struct fixture fx;
  struct server s;
  char endpoint[96];
  fx_begin(&fx);
  CU_ASSERT_FATAL(server_start(&s));
  unsetenv("AWS_EC2_METADATA_DISABLED");
  snprintf(endpoint, sizeof endpoint, "%s/", s.base); /* trailing '/' */
  setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", endpoint, 1);
  struct aws_creds_provider *p = new_provider();
  struct aws_creds c;

  CU_ASSERT_EQUAL(aws_creds_get(p, &c), TS_OK);
  CU_ASSERT_STRING_EQUAL(S(c.source), "imds");
  CU_ASSERT_STRING_EQUAL(S(c.access_key_id), "ASIAIMDS1");
  CU_ASSERT_STRING_EQUAL(S(c.secret_access_key), "secret-IMDS-1");
  CU_ASSERT_STRING_EQUAL(S(c.session_token), "token-IMDS-1");
  struct server n = counters(&s);
  CU_ASSERT_EQUAL(c.expiration, n.last_expiration);
  CU_ASSERT_EQUAL(n.token_puts, 1);
  CU_ASSERT_EQUAL(n.role_lists, 1);
  CU_ASSERT_EQUAL(n.role_gets, 1);
  CU_ASSERT_EQUAL(n.refused, 0); /* every GET carried the token */
  aws_creds_clear(&c);

  aws_creds_provider_free(p);
  server_stop(&s);
  fx_end(&fx);
}

static void
test_fresh_credentials_are_cached_and_expiring_ones_refetched(void) {
  static const struct {
    const char *name;
    long expires_in;
    unsigned fetches; /* after three calls */
  } cases[] = {
      {"an hour left: cached", 3600, 1},
      {"six minutes left: cached", 360, 1},
      {"four minutes left: fetched at each call", 240, 3},
      {"already expired: fetched at each call", -10, 3},
  };
  struct fixture fx;
  struct server s;
  fx_begin(&fx);
  CU_ASSERT_FATAL(server_start(&s));
  unsetenv("AWS_EC2_METADATA_DISABLED");
  setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", s.base, 1);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    server_set(&s, NULL, cases[i].expires_in);
    unsigned before = counters(&s).role_gets;
    struct aws_creds_provider *p = new_provider();
    for (int k = 0; k < 3; k++) {
      struct aws_creds c;
      enum ts_status st = aws_creds_get(p, &c);
      TS_CHECK_CASE(st == TS_OK, cases[i].name, "status %s",
                    ts_status_name(st));
      aws_creds_clear(&c);
    }
    unsigned fetches = counters(&s).role_gets - before;
    TS_CHECK_CASE(fetches == cases[i].fetches, cases[i].name, "fetches %u",
                  fetches);
    aws_creds_provider_free(p);
  }

  /* Cached network credentials do not hide a later environment. */
  server_set(&s, NULL, 3600);
  struct aws_creds_provider *p = new_provider();
  struct aws_creds c;
  CU_ASSERT_EQUAL(aws_creds_get(p, &c), TS_OK);
  CU_ASSERT_STRING_EQUAL(S(c.source), "imds");
  aws_creds_clear(&c);
  setenv("AWS_ACCESS_KEY_ID", "ENVKEY", 1);
  setenv("AWS_SECRET_ACCESS_KEY", "envsecret", 1);
  CU_ASSERT_EQUAL(aws_creds_get(p, &c), TS_OK);
  CU_ASSERT_STRING_EQUAL(S(c.source), "environment");
  aws_creds_clear(&c);
  aws_creds_provider_free(p);

  server_stop(&s);
  fx_end(&fx);
}

struct racer {
  struct aws_creds_provider *p;
  enum ts_status st;
  char akid[32];
};

static void *race(void *arg) {
  struct racer *r = arg;
  struct aws_creds c;
  r->st = aws_creds_get(r->p, &c);
  snprintf(r->akid, sizeof r->akid, "%s", S(c.access_key_id));
  aws_creds_clear(&c);
  return NULL;
}

static void test_concurrent_callers_share_one_fetch(void) {
  struct fixture fx;
  struct server s;
  fx_begin(&fx);
  CU_ASSERT_FATAL(server_start(&s));
  unsetenv("AWS_EC2_METADATA_DISABLED");
  setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", s.base, 1);
  struct aws_creds_provider *p = new_provider();
  struct racer r[8];
  pthread_t t[8];
  for (size_t i = 0; i < 8; i++) {
    r[i] = (struct racer){.p = p};
    CU_ASSERT_EQUAL_FATAL(pthread_create(&t[i], NULL, race, &r[i]), 0);
  }
  for (size_t i = 0; i < 8; i++) {
    pthread_join(t[i], NULL);
    CU_ASSERT_EQUAL(r[i].st, TS_OK);
    CU_ASSERT_STRING_EQUAL(r[i].akid, "ASIAIMDS1");
  }
  CU_ASSERT_EQUAL(counters(&s).role_gets, 1);
  aws_creds_provider_free(p);
  server_stop(&s);
  fx_end(&fx);
}

static double seconds_since(const struct timespec *t0) {
  struct timespec t1;
  clock_gettime(CLOCK_MONOTONIC, &t1);
  return (double)(t1.tv_sec - t0->tv_sec) +
         (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

/* Credentials inside their refresh window whose endpoint stops answering:
 * the refresh fails, the still-valid cache is served, and the next callers
 * get it at once instead of each waiting out the fetch timeout. */
static void test_failed_refresh_serves_the_cache_without_waiting_again(void) {
  struct fixture fx;
  struct server s;
  fx_begin(&fx);
  CU_ASSERT_FATAL(server_start(&s));
  unsetenv("AWS_EC2_METADATA_DISABLED");
  setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", s.base, 1);
  /* 5 minutes and 2 s left: cached, and due for refresh 2 s later. */
  server_set(&s, NULL, 302);
  struct aws_creds_provider *p = new_provider();
  struct aws_creds c;
  CU_ASSERT_EQUAL_FATAL(aws_creds_get(p, &c), TS_OK);
  aws_creds_clear(&c);
  server_stop(&s);
  sleep(3);

  /* The same port now accepts connections but never answers: a fetch
   * there waits for its timeout (the cache is keyed by the endpoint). */
  unsigned port = (unsigned)strtoul(strrchr(s.base, ':') + 1, NULL, 10);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_port = htons((uint16_t)port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  CU_ASSERT_FATAL(fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
                  listen(fd, 16) == 0);
  /* The refresh times out; the still-valid cache is served. */
  struct timespec t0;
  CU_ASSERT_EQUAL(aws_creds_get(p, &c), TS_OK);
  CU_ASSERT_STRING_EQUAL(S(c.access_key_id), "ASIAIMDS1");
  aws_creds_clear(&c);
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (int k = 0; k < 5; k++) {
    CU_ASSERT_EQUAL(aws_creds_get(p, &c), TS_OK);
    aws_creds_clear(&c);
  }
  double took = seconds_since(&t0);
  TS_CHECK_CASE(took < 0.2, "after a failed refresh",
                "5 calls took %.3f s: each retried the dead endpoint", took);
  close(fd);
  aws_creds_provider_free(p);
  fx_end(&fx);
}

static void test_imds_disabled_is_skipped(void) {
  static const struct {
    const char *value;
    enum ts_status status;
  } cases[] = {
      {"true", TS_ERR_NOT_FOUND},
      {"TRUE", TS_ERR_NOT_FOUND},
      {"false", TS_OK},
      {"", TS_OK},
  };
  struct fixture fx;
  struct server s;
  fx_begin(&fx);
  CU_ASSERT_FATAL(server_start(&s));
  setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", s.base, 1);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    setenv("AWS_EC2_METADATA_DISABLED", cases[i].value, 1);
    unsigned before = counters(&s).token_puts;
    struct aws_creds_provider *p = new_provider();
    struct aws_creds c;
    enum ts_status st = aws_creds_get(p, &c);
    unsigned puts = counters(&s).token_puts - before;
    TS_CHECK_CASE(st == cases[i].status, cases[i].value, "status %s",
                  ts_status_name(st));
    TS_CHECK_CASE(puts == (cases[i].status == TS_OK), cases[i].value,
                  "token PUTs %u", puts);
    aws_creds_clear(&c);
    aws_creds_provider_free(p);
  }
  server_stop(&s);
  fx_end(&fx);
}

static void test_imds_that_does_not_answer_means_not_found(void) {
  struct fixture fx;
  char endpoint[64];
  fx_begin(&fx);
  unsetenv("AWS_EC2_METADATA_DISABLED");
  snprintf(endpoint, sizeof endpoint, "http://127.0.0.1:%u", closed_port());
  setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", endpoint, 1);
  struct aws_creds_provider *p = new_provider();
  struct aws_creds c;
  CU_ASSERT_EQUAL(aws_creds_get(p, &c), TS_ERR_NOT_FOUND);
  CU_ASSERT_PTR_NULL(c.access_key_id);
  aws_creds_provider_free(p);
  fx_end(&fx);
}

static void test_region_resolution_order(void) {
  static const struct {
    const char *name, *region, *default_region, *profile, *want;
    bool with_config;
  } cases[] = {
      {"AWS_REGION first", "ap-south-1", "sa-east-1", NULL, "ap-south-1", true},
      {"then AWS_DEFAULT_REGION", NULL, "sa-east-1", NULL, "sa-east-1", true},
      {"then the default profile in config", NULL, NULL, NULL, "eu-west-1",
       true},
      {"then AWS_PROFILE's [profile work]", NULL, NULL, "work", "us-west-2",
       true},
      {"sub-section region is not the profile's", NULL, NULL, "cfgonly",
       "eu-central-1", true},
      {"[bare] in config is not a profile", NULL, NULL, "bare", NULL, true},
      {"nothing: NULL", NULL, NULL, NULL, NULL, false},
  };
  struct fixture fx;
  fx_begin(&fx);
  const char *config = fx_write(&fx, "config", config_file);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    unsetenv("AWS_REGION");
    unsetenv("AWS_DEFAULT_REGION");
    unsetenv("AWS_PROFILE");
    unsetenv("AWS_CONFIG_FILE");
    if (cases[i].region)
      setenv("AWS_REGION", cases[i].region, 1);
    if (cases[i].default_region)
      setenv("AWS_DEFAULT_REGION", cases[i].default_region, 1);
    if (cases[i].profile)
      setenv("AWS_PROFILE", cases[i].profile, 1);
    if (cases[i].with_config)
      setenv("AWS_CONFIG_FILE", config, 1);
    char *got = aws_region_resolve();
    TS_CHECK_CASE(str_eq(got, cases[i].want), cases[i].name, "region %s",
                  S(got));
    free(got);
  }
  fx_end(&fx);
}

static void test_config_file_defaults_to_home(void) {
  struct fixture fx;
  fx_begin(&fx);
  char dir[128];
  snprintf(dir, sizeof dir, "%s/.aws", fx.dir);
  CU_ASSERT_EQUAL_FATAL(mkdir(dir, 0700), 0);
  fx_write(&fx, ".aws/config", "[default]\nregion = home-region\n");
  fx_write(&fx, ".aws/credentials",
           "[default]\naws_access_key_id = HOMEKEY\n"
           "aws_secret_access_key = homesecret\n");
  char *region = aws_region_resolve();
  CU_ASSERT_STRING_EQUAL(S(region), "home-region");
  free(region);
  struct aws_creds_provider *p = new_provider();
  struct aws_creds c;
  CU_ASSERT_EQUAL(aws_creds_get(p, &c), TS_OK);
  CU_ASSERT_STRING_EQUAL(S(c.access_key_id), "HOMEKEY");
  aws_creds_clear(&c);
  aws_creds_provider_free(p);
  fx_end(&fx); /* removes the files; the folders go below */
  rmdir(dir);
  rmdir(fx.dir);
}

static void test_expiration_timestamps(void) {
  static const struct {
    const char *text;
    enum ts_status status;
    time_t want;
  } cases[] = {
      {"2026-11-27T10:00:00Z", TS_OK, 1795773600},
      {"2026-11-27T10:00:00.123Z", TS_OK, 1795773600},
      {"1970-01-01T00:00:00Z", TS_OK, 0},
      {"2024-02-29T23:59:59Z", TS_OK, 1709251199},
      {"2026-11-27 10:00:00Z", TS_ERR_INVALID, 0},
      {"2026-11-27T10:00:00", TS_ERR_INVALID, 0},
      {"2026-11-27T10:00:00+01:00", TS_ERR_INVALID, 0},
      {"2026-02-30T10:00:00Z", TS_ERR_INVALID, 0},
      {"2026-13-01T00:00:00Z", TS_ERR_INVALID, 0},
      {"2026-11-27T24:00:00Z", TS_ERR_INVALID, 0},
      {"2026-11-27T10:00:00.Z", TS_ERR_INVALID, 0},
      {"2026-1a-27T10:00:00Z", TS_ERR_INVALID, 0},
      {"", TS_ERR_INVALID, 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    time_t t = 42;
    enum ts_status st = creds_test_parse_expiration(cases[i].text, &t);
    TS_CHECK_CASE(st == cases[i].status && (st != TS_OK || t == cases[i].want),
                  cases[i].text, "status %s, time %lld", ts_status_name(st),
                  (long long)t);
  }
}

static void test_clear_and_free_accept_null(void) {
  aws_creds_clear(NULL);
  aws_creds_provider_free(NULL);
  struct aws_creds c = {0};
  aws_creds_clear(&c);
  aws_creds_clear(&c);
  CU_ASSERT_PTR_NULL(c.access_key_id);
}

void suite_creds(void) {
  TS_SUITE(
      "creds",
      TS_TEST(test_environment_wins_over_shared_files_and_changes_are_seen),
      TS_TEST(test_aws_profile_selects_the_section_in_both_files),
      TS_TEST(test_shared_files_past_their_bounds_are_refused),
      TS_TEST(test_container_token_file_is_reread_at_each_fetch),
      TS_TEST(test_container_token_from_environment_and_cache),
      TS_TEST(test_full_uri_host_allow_list),
      TS_TEST(test_full_uri_to_a_host_not_allowed_is_refused),
      TS_TEST(test_unreachable_container_is_unavailable_not_skipped),
      TS_TEST(test_imds_v2_token_role_and_credentials),
      TS_TEST(test_fresh_credentials_are_cached_and_expiring_ones_refetched),
      TS_TEST(test_concurrent_callers_share_one_fetch),
      TS_TEST(test_failed_refresh_serves_the_cache_without_waiting_again),
      TS_TEST(test_imds_disabled_is_skipped),
      TS_TEST(test_imds_that_does_not_answer_means_not_found),
      TS_TEST(test_region_resolution_order),
      TS_TEST(test_config_file_defaults_to_home),
      TS_TEST(test_expiration_timestamps),
      TS_TEST(test_clear_and_free_accept_null));
}
