/* The AWS credential chain: environment, shared files, container, IMDSv2.
 *
 * Each aws_creds_get() walks the chain from the top, so a change of the
 * environment or of the files is seen by the next call. The environment
 * and the files are cheap to read and are not cached; what came over the
 * network (container, IMDS) is cached until 5 minutes before it expires,
 * keyed by the configuration that produced it (URL or endpoint).
 *
 * A provider that is not configured passes to the next one. One that is
 * configured but fails ends the chain with TS_ERR_UNAVAILABLE (the caller
 * retries later) rather than silently using other, possibly wider,
 * credentials. IMDS is the exception: it is never "configured", so when it
 * does not answer the chain ends with TS_ERR_NOT_FOUND. */
#include "creds.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/crypto.h>

#include "creds_test.h"

/* Bounds of this module (not in common/bounds.h: nothing else uses them). */
#define CREDS_MAX_FILE_BYTES (1024u * 1024u) /* a credentials/config file */
#define CREDS_MAX_LINE_BYTES 4096u           /* one line of such a file */
#define CREDS_MAX_TOKEN_BYTES 16384u         /* container token file (a JWT) */
#define CREDS_MAX_RESPONSE_BYTES (64u * 1024u) /* one metadata response */
#define CREDS_CONNECT_TIMEOUT_MS 1000L
#define CREDS_FETCH_TIMEOUT_MS 2000L
/* Refresh this long before Expiration (EC2 publishes new credentials at
 * least five minutes before the old ones expire). */
#define CREDS_REFRESH_MARGIN_S (5 * 60)
/* Network credentials without an Expiration are fetched again after this. */
#define CREDS_NO_EXPIRY_REFRESH_S (15 * 60)

#define ECS_ENDPOINT "http://169.254.170.2"
#define IMDS_DEFAULT_ENDPOINT "http://169.254.169.254"
#define IMDS_TOKEN_TTL_S "21600" /* the maximum, as the SDKs ask */
#define IMDS_CREDS_PATH "/latest/meta-data/iam/security-credentials/"
#define IAM_ROLE_MAX_BYTES 128u

struct aws_creds_provider {
  pthread_mutex_t mu;
  pthread_cond_t refreshed; /* a network refresh finished */
  bool refreshing;          /* a caller is fetching, with mu released */
  struct aws_creds cache;   /* valid when cache.access_key_id != NULL */
  char *cache_key;          /* the configuration that produced the cache */
  time_t cache_refresh_at;
};

/* After a failed refresh while the cached credentials are still valid,
 * they are used this long before the next attempt, so a slow or dead
 * metadata endpoint is not asked again by every request. */
#define CREDS_RETRY_AFTER_FAILURE_S 30

/* ---- small helpers ---- */

/* A variable's value, NULL when unset or empty. */
static const char *env(const char *name) {
  const char *v = getenv(name);
  return v && *v ? v : NULL;
}

static char *concat3(const char *a, const char *b, const char *c) {
  size_t la = strlen(a), lb = strlen(b), lc = strlen(c);
  char *s = malloc(la + lb + lc + 1);
  if (!s)
    return NULL;
  memcpy(s, a, la);
  memcpy(s + la, b, lb);
  memcpy(s + la + lb, c, lc + 1);
  return s;
}

static void free_secret(char *s) {
  if (s) {
    OPENSSL_cleanse(s, strlen(s));
    free(s);
  }
}

void aws_creds_clear(struct aws_creds *c) {
  if (!c)
    return;
  free(c->access_key_id);
  free_secret(c->secret_access_key);
  free_secret(c->session_token);
  *c = (struct aws_creds){0};
}

/* Fills *out (cleared first) from the given values; token NULL or "" means
 * none. */
static enum ts_status creds_set(struct aws_creds *out, const char *akid,
                                const char *secret, const char *token,
                                time_t expiration, const char *source) {
  *out = (struct aws_creds){0};
  out->access_key_id = strdup(akid);
  out->secret_access_key = strdup(secret);
  out->session_token = token && *token ? strdup(token) : NULL;
  out->expiration = expiration;
  out->source = source;
  if (!out->access_key_id || !out->secret_access_key ||
      (token && *token && !out->session_token)) {
    aws_creds_clear(out);
    return TS_ERR_NOMEM;
  }
  return TS_OK;
}

static enum ts_status creds_copy(struct aws_creds *dst,
                                 const struct aws_creds *src) {
  return creds_set(dst, src->access_key_id, src->secret_access_key,
                   src->session_token, src->expiration, src->source);
}

/* Reads a whole file of at most max bytes into a NUL-terminated buffer.
 * TS_ERR_NOT_FOUND when it cannot be opened, TS_ERR_TOO_LARGE over max. */
static enum ts_status read_small_file(const char *path, size_t max, char **out,
                                      size_t *len) {
  enum ts_status st = TS_OK;
  char *buf = NULL;
  size_t n = 0;
  *out = NULL;
  *len = 0;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return TS_ERR_NOT_FOUND;
  struct stat sb;
  if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
    st = TS_ERR_NOT_FOUND;
    goto out;
  }
  if ((uintmax_t)sb.st_size > max) {
    st = TS_ERR_TOO_LARGE;
    goto out;
  }
  /* Sized by fstat (these files are read at every resolution, so no
   * 1 MiB buffer each time); grown to the bound only if the file grew. */
  size_t cap = (size_t)sb.st_size + 1;
  buf = malloc(cap + 1);
  if (!buf) {
    st = TS_ERR_NOMEM;
    goto out;
  }
  /* Read to max + 1 so that a file that grew after fstat is still caught. */
  while (n <= max) {
    if (n == cap) {
      char *grown = realloc(buf, max + 2);
      if (!grown) {
        st = TS_ERR_NOMEM;
        goto out;
      }
      buf = grown;
      cap = max + 1;
    }
    ssize_t r = read(fd, buf + n, cap - n);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0) {
      st = TS_ERR_NOT_FOUND;
      goto out;
    }
    if (r == 0)
      break;
    n += (size_t)r;
  }
  if (n > max) {
    st = TS_ERR_TOO_LARGE;
    goto out;
  }
  buf[n] = '\0';
  *out = buf;
  *len = n;
  buf = NULL;
out:
  free(buf);
  close(fd);
  return st;
}

/* ---- 1. environment ---- */

static enum ts_status from_env(struct aws_creds *out) {
  const char *akid = env("AWS_ACCESS_KEY_ID");
  const char *secret = env("AWS_SECRET_ACCESS_KEY");
  if (!akid || !secret)
    return TS_ERR_NOT_FOUND;
  return creds_set(out, akid, secret, env("AWS_SESSION_TOKEN"), 0,
                   "environment");
}

/* ---- 2. shared credentials and config files ---- */

struct profile_values {
  char *access_key_id;
  char *secret_access_key;
  char *session_token;
  char *region;
};

static void profile_values_clear(struct profile_values *pv) {
  free(pv->access_key_id);
  free_secret(pv->secret_access_key);
  free_secret(pv->session_token);
  free(pv->region);
  *pv = (struct profile_values){0};
}

/* AWS_PROFILE, else "default". */
static const char *profile_name(void) {
  const char *p = env("AWS_PROFILE");
  return p ? p : "default";
}

/* The file named by env_name ("~/" expanded), else $HOME/<home_rel>.
 * NULL when neither can be formed (or on allocation failure). */
static char *shared_file_path(const char *env_name, const char *home_rel) {
  const char *v = env(env_name);
  const char *home = env("HOME");
  if (v && strncmp(v, "~/", 2) == 0)
    return home ? concat3(home, "/", v + 2) : NULL;
  if (v)
    return strdup(v);
  return home ? concat3(home, "/", home_rel) : NULL;
}

static bool is_blank(char c) { return c == ' ' || c == '\t'; }

/* Trims blanks (and a CR) at both ends, in place. */
static char *trim(char *s) {
  while (is_blank(*s))
    s++;
  size_t n = strlen(s);
  while (n > 0 && (is_blank(s[n - 1]) || s[n - 1] == '\r'))
    s[--n] = '\0';
  return s;
}

/* Whether a section header's (trimmed) name is the profile's: "[name]" in
 * the credentials file; "[profile name]" in the config file, where the
 * default profile may also be "[default]". */
static bool section_is_profile(const char *section, const char *profile,
                               bool config_file) {
  if (!config_file)
    return strcmp(section, profile) == 0;
  if (strcmp(profile, "default") == 0 && strcmp(section, "default") == 0)
    return true;
  if (strncmp(section, "profile", 7) != 0 || !is_blank(section[7]))
    return false;
  const char *name = section + 7;
  while (is_blank(*name))
    name++;
  return strcmp(name, profile) == 0;
}

static enum ts_status replace_value(char **slot, const char *value) {
  char *v = strdup(value);
  if (!v)
    return TS_ERR_NOMEM;
  free_secret(*slot);
  *slot = v;
  return TS_OK;
}

/* Reads the profile's keys from one INI file into pv, overriding what pv
 * already holds. Comments are lines starting with '#' or ';', and in a
 * value, '#' or ';' after a blank. Keys are case-insensitive. Indented
 * lines under a key with an empty value (e.g. "s3 =") belong to that
 * sub-section and are skipped. A missing file is no error; one over the
 * size or line bounds is TS_ERR_INVALID. */
static enum ts_status ini_read_profile(const char *path, const char *profile,
                                       bool config_file,
                                       struct profile_values *pv) {
  char *text = NULL;
  size_t len = 0;
  char line[CREDS_MAX_LINE_BYTES + 1];
  enum ts_status st = read_small_file(path, CREDS_MAX_FILE_BYTES, &text, &len);
  if (st == TS_ERR_NOT_FOUND)
    return TS_OK;
  if (st == TS_ERR_TOO_LARGE)
    return TS_ERR_INVALID;
  if (st != TS_OK)
    return st;
  bool in_profile = false, in_sub = false;
  for (const char *p = text, *end = text + len; p < end && st == TS_OK;) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    size_t n = (size_t)((nl ? nl : end) - p);
    if (n > CREDS_MAX_LINE_BYTES) {
      st = TS_ERR_INVALID;
      break;
    }
    memcpy(line, p, n);
    line[n] = '\0';
    p = nl ? nl + 1 : end;
    bool indented = is_blank(line[0]);
    char *t = trim(line);
    if (*t == '\0' || *t == '#' || *t == ';')
      continue;
    if (*t == '[') {
      char *close = strchr(t, ']');
      in_sub = false;
      in_profile = false;
      if (close) {
        *close = '\0';
        in_profile = section_is_profile(trim(t + 1), profile, config_file);
      }
      continue;
    }
    if (indented && in_sub)
      continue;
    char *eq = strchr(t, '=');
    if (!eq)
      continue;
    *eq = '\0';
    char *key = trim(t), *value = trim(eq + 1);
    for (char *c = value; *c; c++) {
      if ((*c == '#' || *c == ';') && c > value && is_blank(c[-1])) {
        *c = '\0';
        value = trim(value);
        break;
      }
    }
    in_sub = *value == '\0';
    if (!in_profile || in_sub)
      continue;
    if (strcasecmp(key, "aws_access_key_id") == 0)
      st = replace_value(&pv->access_key_id, value);
    else if (strcasecmp(key, "aws_secret_access_key") == 0)
      st = replace_value(&pv->secret_access_key, value);
    else if (strcasecmp(key, "aws_session_token") == 0)
      st = replace_value(&pv->session_token, value);
    else if (strcasecmp(key, "region") == 0)
      st = replace_value(&pv->region, value);
  }
  OPENSSL_cleanse(line, sizeof line);
  OPENSSL_cleanse(text, len);
  free(text);
  return st;
}

/* The profile from the config file, then the credentials file, whose
 * values win (as the AWS CLI merges them). */
static enum ts_status read_profile(struct profile_values *pv) {
  enum ts_status st = TS_OK;
  const char *profile = profile_name();
  char *config = shared_file_path("AWS_CONFIG_FILE", ".aws/config");
  char *credentials =
      shared_file_path("AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials");
  *pv = (struct profile_values){0};
  if (config)
    st = ini_read_profile(config, profile, true, pv);
  if (st == TS_OK && credentials)
    st = ini_read_profile(credentials, profile, false, pv);
  free(config);
  free(credentials);
  if (st != TS_OK)
    profile_values_clear(pv);
  return st;
}

static enum ts_status from_shared_files(struct aws_creds *out) {
  struct profile_values pv;
  enum ts_status st = read_profile(&pv);
  if (st != TS_OK)
    return st;
  if (pv.access_key_id && pv.secret_access_key)
    st = creds_set(out, pv.access_key_id, pv.secret_access_key,
                   pv.session_token, 0, "shared-files");
  else
    st = TS_ERR_NOT_FOUND;
  profile_values_clear(&pv);
  return st;
}

char *aws_region_resolve(void) {
  const char *r = env("AWS_REGION");
  if (!r)
    r = env("AWS_DEFAULT_REGION");
  if (r)
    return strdup(r);
  struct profile_values pv = {0};
  char *config = shared_file_path("AWS_CONFIG_FILE", ".aws/config");
  char *region = NULL;
  if (config && ini_read_profile(config, profile_name(), true, &pv) == TS_OK) {
    region = pv.region;
    pv.region = NULL;
  }
  profile_values_clear(&pv);
  free(config);
  return region;
}

/* ---- HTTP ---- */

struct reply {
  long status;
  char *body; /* NUL-terminated */
  size_t len;
  bool too_large;
};

static size_t on_body(char *data, size_t size, size_t nmemb, void *userp) {
  struct reply *r = userp;
  size_t n = size * nmemb;
  if (n > CREDS_MAX_RESPONSE_BYTES - r->len) {
    r->too_large = true;
    return 0; /* aborts the transfer */
  }
  char *b = realloc(r->body, r->len + n + 1);
  if (!b)
    return 0;
  r->body = b;
  memcpy(b + r->len, data, n);
  r->len += n;
  b[r->len] = '\0';
  return n;
}

static void reply_clear(struct reply *r) {
  if (r->body)
    OPENSSL_cleanse(r->body, r->len);
  free(r->body);
  *r = (struct reply){0};
}

/* One bounded request. TS_OK when an HTTP answer came (any status, in
 * out->status), TS_ERR_UNAVAILABLE when none did in time or it was too
 * large. Proxies are bypassed: these endpoints are link-local or
 * loopback, and a proxy must not see the credentials. */
static enum ts_status http_fetch(const char *method, const char *url,
                                 struct curl_slist *headers,
                                 struct reply *out) {
  enum ts_status st = TS_OK;
  *out = (struct reply){0};
  CURL *c = curl_easy_init();
  if (!c)
    return TS_ERR_NOMEM;
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, CREDS_CONNECT_TIMEOUT_MS);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, CREDS_FETCH_TIMEOUT_MS);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
  if (headers)
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  if (strcmp(method, "GET") != 0)
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
  CURLcode rc = curl_easy_perform(c);
  if (rc == CURLE_OUT_OF_MEMORY ||
      (rc == CURLE_WRITE_ERROR && !out->too_large)) {
    st = TS_ERR_NOMEM;
  } else if (rc != CURLE_OK) {
    st = TS_ERR_UNAVAILABLE;
  } else {
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->status);
    if (!out->body) {
      out->body = strdup("");
      if (!out->body)
        st = TS_ERR_NOMEM;
    }
  }
  curl_easy_cleanup(c);
  if (st != TS_OK)
    reply_clear(out);
  return st;
}

/* ---- the credentials document (container and IMDS) ---- */

static bool parse_digits(const char *s, size_t n, int *out) {
  int v = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9')
      return false;
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  return true;
}

enum ts_status creds_test_parse_expiration(const char *s, time_t *out) {
  int year, mon, day, hour, min, sec;
  if (!s || strlen(s) < 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' ||
      s[13] != ':' || s[16] != ':' || !parse_digits(s, 4, &year) ||
      !parse_digits(s + 5, 2, &mon) || !parse_digits(s + 8, 2, &day) ||
      !parse_digits(s + 11, 2, &hour) || !parse_digits(s + 14, 2, &min) ||
      !parse_digits(s + 17, 2, &sec))
    return TS_ERR_INVALID;
  const char *p = s + 19;
  if (*p == '.') {
    p++;
    if (*p < '0' || *p > '9')
      return TS_ERR_INVALID;
    while (*p >= '0' && *p <= '9')
      p++;
  }
  if (strcmp(p, "Z") != 0 || year < 1970 || mon < 1 || mon > 12 || day < 1 ||
      day > 31 || hour > 23 || min > 59 || sec > 60)
    return TS_ERR_INVALID;
  struct tm tm = {.tm_year = year - 1900,
                  .tm_mon = mon - 1,
                  .tm_mday = day,
                  .tm_hour = hour,
                  .tm_min = min,
                  .tm_sec = sec};
  time_t t = timegm(&tm);
  if (t == (time_t)-1 || tm.tm_mday != day) /* e.g. February 30th */
    return TS_ERR_INVALID;
  *out = t;
  return TS_OK;
}

static const char *json_str(const json_t *o, const char *key) {
  const char *v = json_string_value(json_object_get(o, key));
  return v && *v ? v : NULL;
}

/* {"Code":"Success" (IMDS), "AccessKeyId", "SecretAccessKey", "Token",
 * "Expiration"}. Anything else is a failed provider: TS_ERR_UNAVAILABLE. */
static enum ts_status parse_creds_document(const struct reply *r,
                                           const char *source,
                                           struct aws_creds *out) {
  enum ts_status st = TS_ERR_UNAVAILABLE;
  time_t expiration = 0;
  json_t *doc = json_loadb(r->body, r->len, 0, NULL);
  if (!json_is_object(doc))
    goto out;
  const char *code = json_str(doc, "Code");
  const char *akid = json_str(doc, "AccessKeyId");
  const char *secret = json_str(doc, "SecretAccessKey");
  const char *token = json_str(doc, "Token");
  const char *exp = json_str(doc, "Expiration");
  if ((code && strcmp(code, "Success") != 0) || !akid || !secret)
    goto out;
  if (exp && creds_test_parse_expiration(exp, &expiration) != TS_OK)
    goto out;
  st = creds_set(out, akid, secret, token, expiration, source);
out:
  json_decref(doc);
  return st;
}

/* ---- 3. container ---- */

static bool is_allowed_http_host(const char *host) {
  char buf[64];
  size_t n = strlen(host);
  if (strcasecmp(host, "localhost") == 0)
    return true;
  if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
    host++;
    n -= 2;
  }
  if (n >= sizeof buf)
    return false;
  memcpy(buf, host, n);
  buf[n] = '\0';
  unsigned char a[16];
  if (inet_pton(AF_INET, buf, a) == 1)
    return a[0] == 127 || (a[0] == 169 && a[1] == 254 && a[2] == 170 &&
                           (a[3] == 2 || a[3] == 23));
  if (inet_pton(AF_INET6, buf, a) == 1) {
    static const unsigned char loopback[16] = {[15] = 1};
    static const unsigned char eks[16] = {0xfd, 0x00, 0x0e, 0xc2, [15] = 0x23};
    return memcmp(a, loopback, 16) == 0 || memcmp(a, eks, 16) == 0;
  }
  return false;
}

bool creds_test_full_uri_allowed(const char *uri) {
  bool ok = false;
  char *scheme = NULL, *host = NULL;
  CURLU *u = curl_url();
  if (!u || !uri)
    goto out;
  if (curl_url_set(u, CURLUPART_URL, uri, 0) != CURLUE_OK ||
      curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
      curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !*host)
    goto out;
  if (strcasecmp(scheme, "https") == 0)
    ok = true;
  else if (strcasecmp(scheme, "http") == 0)
    ok = is_allowed_http_host(host);
out:
  curl_free(scheme);
  curl_free(host);
  curl_url_cleanup(u);
  return ok;
}

/* The container endpoint's URL: RELATIVE_URI on the ECS agent, else an
 * allowed FULL_URI. TS_ERR_NOT_FOUND when neither is set; TS_ERR_INVALID
 * for a FULL_URI that is not allowed. */
static enum ts_status container_url(char **url) {
  const char *rel = env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
  const char *full = env("AWS_CONTAINER_CREDENTIALS_FULL_URI");
  *url = NULL;
  if (rel)
    *url = concat3(ECS_ENDPOINT, rel[0] == '/' ? "" : "/", rel);
  else if (!full)
    return TS_ERR_NOT_FOUND;
  else if (!creds_test_full_uri_allowed(full))
    return TS_ERR_INVALID;
  else
    *url = strdup(full);
  return *url ? TS_OK : TS_ERR_NOMEM;
}

/* The Authorization value: the token file (read at each fetch, as it is
 * rotated), else the variable; NULL when neither is set. */
static enum ts_status container_token(char **token) {
  const char *file = env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
  const char *value = env("AWS_CONTAINER_AUTHORIZATION_TOKEN");
  size_t len = 0;
  *token = NULL;
  if (file) {
    enum ts_status st =
        read_small_file(file, CREDS_MAX_TOKEN_BYTES, token, &len);
    if (st == TS_ERR_NOMEM)
      return st;
    if (st != TS_OK)
      return TS_ERR_UNAVAILABLE;
    while (len > 0 && strchr(" \t\r\n", (*token)[len - 1]))
      (*token)[--len] = '\0';
  } else if (value) {
    *token = strdup(value);
    if (!*token)
      return TS_ERR_NOMEM;
    len = strlen(value);
  } else {
    return TS_OK;
  }
  /* It goes into a header line: no control bytes. */
  for (size_t i = 0; i < len; i++) {
    if ((unsigned char)(*token)[i] < 0x20 || (*token)[i] == 0x7f) {
      free_secret(*token);
      *token = NULL;
      return TS_ERR_INVALID;
    }
  }
  if (len == 0) { /* a token file being rotated */
    free_secret(*token);
    *token = NULL;
    return TS_ERR_UNAVAILABLE;
  }
  return TS_OK;
}

static enum ts_status from_container(const char *url, struct aws_creds *out) {
  enum ts_status st;
  char *token = NULL, *header = NULL;
  struct curl_slist *headers = NULL;
  struct reply r = {0};
  st = container_token(&token);
  if (st != TS_OK)
    goto out;
  if (token) {
    header = concat3("Authorization: ", token, "");
    headers = header ? curl_slist_append(NULL, header) : NULL;
    if (!headers) {
      st = TS_ERR_NOMEM;
      goto out;
    }
  }
  st = http_fetch("GET", url, headers, &r);
  if (st != TS_OK)
    goto out;
  st = r.status == 200 ? parse_creds_document(&r, "container", out)
                       : TS_ERR_UNAVAILABLE;
out:
  reply_clear(&r);
  curl_slist_free_all(headers);
  free_secret(header);
  free_secret(token);
  return st;
}

/* ---- 4. EC2 instance metadata, IMDSv2 ---- */

static bool imds_disabled(void) {
  const char *v = env("AWS_EC2_METADATA_DISABLED");
  return v && strcasecmp(v, "true") == 0;
}

/* The endpoint without a trailing '/'. */
static char *imds_endpoint(void) {
  const char *e = env("AWS_EC2_METADATA_SERVICE_ENDPOINT");
  char *s = strdup(e ? e : IMDS_DEFAULT_ENDPOINT);
  for (size_t n = s ? strlen(s) : 0; n > 0 && s[n - 1] == '/'; n--)
    s[n - 1] = '\0';
  return s;
}

/* An IAM role name: [A-Za-z0-9+=,.@_-]{1,128}; it becomes a URL path. */
static bool is_role_name(const char *s, size_t n) {
  if (n == 0 || n > IAM_ROLE_MAX_BYTES)
    return false;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
          (c >= '0' && c <= '9') || (c != '\0' && strchr("+=,.@_-", c))))
      return false;
  }
  return true;
}

/* GET endpoint+path with the session token. */
static enum ts_status imds_get(const char *endpoint, const char *path,
                               const char *token_header, struct reply *r) {
  enum ts_status st = TS_ERR_NOMEM;
  char *url = concat3(endpoint, path, "");
  struct curl_slist *h = curl_slist_append(NULL, token_header);
  if (url && h)
    st = http_fetch("GET", url, h, r);
  curl_slist_free_all(h);
  free(url);
  return st;
}

/* No answer to the token PUT, or a refusal of it (not on EC2, IMDS off,
 * IMDSv1 only), or no role attached: TS_ERR_NOT_FOUND. Failing after
 * that, IMDS is there but broken: TS_ERR_UNAVAILABLE. */
static enum ts_status from_imds(const char *endpoint, struct aws_creds *out) {
  enum ts_status st;
  struct reply r = {0};
  char *url = NULL, *token_header = NULL, *path = NULL;
  struct curl_slist *h = NULL;

  url = concat3(endpoint, "/latest/api/token", "");
  h = curl_slist_append(
      NULL, "X-aws-ec2-metadata-token-ttl-seconds: " IMDS_TOKEN_TTL_S);
  if (!url || !h) {
    st = TS_ERR_NOMEM;
    goto out;
  }
  st = http_fetch("PUT", url, h, &r);
  if (st == TS_ERR_UNAVAILABLE ||
      (st == TS_OK && r.status != 200 && r.status < 500)) {
    st = TS_ERR_NOT_FOUND;
    goto out;
  }
  if (st == TS_OK && r.status != 200)
    st = TS_ERR_UNAVAILABLE;
  if (st != TS_OK)
    goto out;
  while (r.len > 0 && strchr(" \t\r\n", r.body[r.len - 1]))
    r.body[--r.len] = '\0';
  if (r.len == 0) {
    st = TS_ERR_UNAVAILABLE;
    goto out;
  }
  for (size_t i = 0; i < r.len; i++) { /* it goes into a header line */
    if ((unsigned char)r.body[i] < 0x21 || r.body[i] == 0x7f) {
      st = TS_ERR_UNAVAILABLE;
      goto out;
    }
  }
  token_header = concat3("X-aws-ec2-metadata-token: ", r.body, "");
  reply_clear(&r);
  if (!token_header) {
    st = TS_ERR_NOMEM;
    goto out;
  }

  st = imds_get(endpoint, IMDS_CREDS_PATH, token_header, &r);
  if (st == TS_OK && r.status == 404)
    st = TS_ERR_NOT_FOUND; /* no instance profile */
  else if (st == TS_OK && r.status != 200)
    st = TS_ERR_UNAVAILABLE;
  if (st != TS_OK)
    goto out;
  size_t role_len = strcspn(r.body, "\r\n");
  if (!is_role_name(r.body, role_len)) {
    st = TS_ERR_UNAVAILABLE;
    goto out;
  }
  r.body[role_len] = '\0';
  path = concat3(IMDS_CREDS_PATH, r.body, "");
  reply_clear(&r);
  if (!path) {
    st = TS_ERR_NOMEM;
    goto out;
  }

  st = imds_get(endpoint, path, token_header, &r);
  if (st == TS_OK)
    st = r.status == 200 ? parse_creds_document(&r, "imds", out)
                         : TS_ERR_UNAVAILABLE;
out:
  reply_clear(&r);
  curl_slist_free_all(h);
  free(url);
  free(path);
  free_secret(token_header);
  return st;
}

/* ---- the chain ---- */

enum ts_status aws_creds_provider_new(struct aws_creds_provider **out) {
  *out = NULL;
  struct aws_creds_provider *p = calloc(1, sizeof *p);
  if (!p)
    return TS_ERR_NOMEM;
  if (pthread_mutex_init(&p->mu, NULL) != 0) {
    free(p);
    return TS_ERR_NOMEM;
  }
  if (pthread_cond_init(&p->refreshed, NULL) != 0) {
    pthread_mutex_destroy(&p->mu);
    free(p);
    return TS_ERR_NOMEM;
  }
  /* Reference-counted by libcurl; balanced in aws_creds_provider_free. */
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
    pthread_cond_destroy(&p->refreshed);
    pthread_mutex_destroy(&p->mu);
    free(p);
    return TS_ERR_NOMEM;
  }
  *out = p;
  return TS_OK;
}

void aws_creds_provider_free(struct aws_creds_provider *p) {
  if (!p)
    return;
  aws_creds_clear(&p->cache);
  free(p->cache_key);
  pthread_cond_destroy(&p->refreshed);
  pthread_mutex_destroy(&p->mu);
  free(p);
  curl_global_cleanup();
}

static void cache_store(struct aws_creds_provider *p, char **key,
                        const struct aws_creds *c, time_t now) {
  time_t refresh_at = c->expiration ? c->expiration - CREDS_REFRESH_MARGIN_S
                                    : now + CREDS_NO_EXPIRY_REFRESH_S;
  if (refresh_at <= now)
    return; /* expiring soon: served once, fetched again next time */
  aws_creds_clear(&p->cache);
  free(p->cache_key);
  p->cache_key = NULL;
  if (creds_copy(&p->cache, c) != TS_OK)
    return; /* not cached; the next call fetches again */
  p->cache_key = *key;
  *key = NULL;
  p->cache_refresh_at = refresh_at;
}

static bool cache_matches(const struct aws_creds_provider *p, const char *key) {
  return p->cache.access_key_id && p->cache_key &&
         strcmp(p->cache_key, key) == 0;
}

/* Container or IMDS, through the cache. */
static enum ts_status from_network(struct aws_creds_provider *p,
                                   struct aws_creds *out) {
  enum ts_status st;
  char *url = NULL, *key = NULL;
  bool container = false;
  time_t now = time(NULL);

  st = container_url(&url);
  if (st == TS_OK) {
    container = true;
  } else if (st != TS_ERR_NOT_FOUND) {
    goto out;
  } else if (imds_disabled()) {
    goto out; /* TS_ERR_NOT_FOUND */
  } else {
    url = imds_endpoint();
    if (!url) {
      st = TS_ERR_NOMEM;
      goto out;
    }
  }
  key = concat3(container ? "container " : "imds ", url, "");
  if (!key) {
    st = TS_ERR_NOMEM;
    goto out;
  }
  /* Called with p->mu held. One caller fetches at a time, with the lock
   * released: while the cached credentials are still valid the others
   * use them at once instead of queueing behind a slow endpoint; without
   * valid ones they wait for the fetch. */
  for (;;) {
    if (cache_matches(p, key) && now < p->cache_refresh_at) {
      st = creds_copy(out, &p->cache);
      goto out;
    }
    if (!p->refreshing)
      break;
    if (cache_matches(p, key) && p->cache.expiration > now) {
      st = creds_copy(out, &p->cache);
      goto out;
    }
    pthread_cond_wait(&p->refreshed, &p->mu);
    now = time(NULL);
  }
  p->refreshing = true;
  pthread_mutex_unlock(&p->mu);
  st = container ? from_container(url, out) : from_imds(url, out);
  pthread_mutex_lock(&p->mu);
  p->refreshing = false;
  pthread_cond_broadcast(&p->refreshed);
  now = time(NULL);
  if (st == TS_OK) {
    cache_store(p, &key, out, now);
  } else if (st != TS_ERR_NOMEM && cache_matches(p, key) &&
             p->cache.expiration > now) {
    /* The refresh failed but the cached credentials are still valid: use
     * them, and do not ask again for a while. */
    aws_creds_clear(out);
    st = creds_copy(out, &p->cache);
    time_t retry = now + CREDS_RETRY_AFTER_FAILURE_S;
    p->cache_refresh_at =
        retry < p->cache.expiration ? retry : p->cache.expiration;
  }
out:
  free(url);
  free(key);
  return st;
}

/* One network refresh at a time (see from_network); callers with valid
 * cached credentials never wait for it. */
enum ts_status aws_creds_get(struct aws_creds_provider *p,
                             struct aws_creds *out) {
  if (!p || !out)
    return TS_ERR_INVALID;
  *out = (struct aws_creds){0};
  pthread_mutex_lock(&p->mu);
  enum ts_status st = from_env(out);
  if (st == TS_ERR_NOT_FOUND)
    st = from_shared_files(out);
  if (st == TS_ERR_NOT_FOUND)
    st = from_network(p, out);
  pthread_mutex_unlock(&p->mu);
  if (st != TS_OK)
    aws_creds_clear(out);
  return st;
}
