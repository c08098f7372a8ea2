/* AWS Signature Version 4 (HMAC-SHA256) on OpenSSL 3.
 *
 * The steps follow AWS's "Create a signed AWS API request" guide and are
 * checked against the published SigV4 test suite (tests/aws/test_sigv4.c):
 *   1. canonical request, 2. string to sign, 3. signing key, 4. signature.
 * Secrets and derived keys are wiped from memory once used. */
#include "sigv4.h"

#include "../common/bounds.h"
#include "../common/buf.h"
#include "../common/hex.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <pthread.h>

#include "sigv4_test.h"

#define ALGORITHM "AWS4-HMAC-SHA256"
#define SHA256_BYTES 32u
#define SHA256_HEX_BYTES (2u * SHA256_BYTES + 1u)

/* ---- byte classes ---- */

static bool is_unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
         (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~';
}

/* RFC 9110 tchar: what a header name or method may contain. */
static bool is_tchar(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
         (c >= '0' && c <= '9') || (c != '\0' && strchr("!#$%&'*+-.^_`|~", c));
}

static bool is_token(const char *s) {
  if (!s || !*s)
    return false;
  for (const unsigned char *p = (const unsigned char *)s; *p; p++)
    if (!is_tchar(*p))
      return false;
  return true;
}

/* A scope part (region, service, date) or access key id: printable,
 * without '/' (the scope separator), ',' or spaces (header syntax). */
static bool is_scope_part(const char *s) {
  if (!s || !*s)
    return false;
  for (const unsigned char *p = (const unsigned char *)s; *p; p++)
    if (*p <= 0x20 || *p >= 0x7f || *p == '/' || *p == ',')
      return false;
  return true;
}

static void hex_encode(const unsigned char *in, size_t n, char *out) {
  static const char digits[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = digits[in[i] >> 4];
    out[2 * i + 1] = digits[in[i] & 0x0f];
  }
  out[2 * n] = '\0';
}

/* ---- digests ----
 *
 * OpenSSL 3's one-shot calls (EVP_Digest with EVP_sha256(), HMAC()) look
 * the algorithm up in the provider registry on every call: under callgrind
 * that was a third of a DynamoDB write's instructions (SigV4 makes five
 * HMACs and two digests per request). The algorithms are fetched once, and
 * a signing key, which depends only on the secret, the day, the region and
 * the service, is derived once per day and thread (see signing_key). */

static EVP_MD *sha256_md;
static EVP_MAC *hmac_mac;
static EVP_MAC_CTX *hmac_template; /* HMAC with SHA-256, no key yet */
static pthread_once_t fetch_once = PTHREAD_ONCE_INIT;

static void fetch_algorithms(void) {
  sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
  hmac_mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
  hmac_template = hmac_mac ? EVP_MAC_CTX_new(hmac_mac) : NULL;
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string("digest", "SHA256", 0),
      OSSL_PARAM_construct_end()};
  if (hmac_template && !EVP_MAC_CTX_set_params(hmac_template, params)) {
    EVP_MAC_CTX_free(hmac_template);
    hmac_template = NULL;
  }
}

static bool algorithms_ready(void) {
  pthread_once(&fetch_once, fetch_algorithms);
  return sha256_md && hmac_template;
}

static enum ts_status sha256(const void *data, size_t len,
                             unsigned char md[SHA256_BYTES]) {
  unsigned int md_len = 0;
  static const char empty[1] = "";
  if (!algorithms_ready() ||
      !EVP_Digest(data ? data : empty, len, md, &md_len, sha256_md, NULL) ||
      md_len != SHA256_BYTES)
    return TS_ERR_NOMEM; /* OpenSSL fails only on allocation */
  return TS_OK;
}

static enum ts_status sha256_hex(const void *data, size_t len,
                                 char out[SHA256_HEX_BYTES]) {
  unsigned char md[SHA256_BYTES];
  enum ts_status st = sha256(data, len, md);
  if (st == TS_OK)
    hex_encode(md, SHA256_BYTES, out);
  return st;
}

static enum ts_status hmac_sha256(const unsigned char *key, size_t key_len,
                                  const void *data, size_t len,
                                  unsigned char out[SHA256_BYTES]) {
  size_t out_len = 0;
  EVP_MAC_CTX *ctx = algorithms_ready() ? EVP_MAC_CTX_dup(hmac_template) : NULL;
  bool ok = ctx && EVP_MAC_init(ctx, key, key_len, NULL) &&
            EVP_MAC_update(ctx, data, len) &&
            EVP_MAC_final(ctx, out, &out_len, SHA256_BYTES) &&
            out_len == SHA256_BYTES;
  EVP_MAC_CTX_free(ctx);
  return ok ? TS_OK : TS_ERR_NOMEM;
}

/* ---- canonical query ---- */

struct qparam {
  char *name;  /* URI-encoded */
  char *value; /* URI-encoded */
};

static int cmp_qparam(const void *a, const void *b) {
  const struct qparam *x = a, *y = b;
  int c = strcmp(x->name, y->name);
  return c ? c : strcmp(x->value, y->value);
}

/* Decodes %XX in s[0..n) and re-encodes with AWS's rule: unreserved bytes
 * as they are, every other byte as %XX in upper case. So an already
 * encoded value and its raw form sign alike. '+' is a literal plus.
 * *out is malloc'd. TS_ERR_INVALID for a broken escape. */
static enum ts_status uri_reencode(const char *s, size_t n, char **out) {
  static const char digits[] = "0123456789ABCDEF";
  *out = NULL;
  if (n > (SIZE_MAX - 1) / 3)
    return TS_ERR_INVALID;
  char *enc = malloc(3 * n + 1);
  if (!enc)
    return TS_ERR_NOMEM;
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '%') {
      int hi = i + 1 < n ? hex_digit_value((unsigned char)s[i + 1]) : -1;
      int lo = i + 2 < n ? hex_digit_value((unsigned char)s[i + 2]) : -1;
      if (hi < 0 || lo < 0) {
        free(enc);
        return TS_ERR_INVALID;
      }
      c = (unsigned char)(hi << 4 | lo);
      i += 2;
    }
    if (is_unreserved(c)) {
      enc[o++] = (char)c;
    } else {
      enc[o++] = '%';
      enc[o++] = digits[c >> 4];
      enc[o++] = digits[c & 0x0f];
    }
  }
  enc[o] = '\0';
  *out = enc;
  return TS_OK;
}

static void free_qparams(struct qparam *q, size_t n) {
  for (size_t i = 0; q && i < n; i++) {
    free(q[i].name);
    free(q[i].value);
  }
  free(q);
}

/* Appends the canonical query string of the raw query (without '?'):
 * parameters sorted by encoded name, then encoded value, joined with '&';
 * a parameter without '=' gets an empty value; empty pieces are dropped. */
static enum ts_status add_canonical_query(struct buf *b, const char *query) {
  enum ts_status st = TS_OK;
  struct qparam *q = NULL;
  size_t n = 0;
  if (!query || !*query)
    return TS_OK;
  for (const unsigned char *p = (const unsigned char *)query; *p; p++)
    if (*p <= 0x20 || *p == 0x7f || *p == '#')
      return TS_ERR_INVALID;
  size_t max = 1;
  for (const char *p = query; *p; p++)
    max += *p == '&';
  q = calloc(max, sizeof *q);
  if (!q)
    return TS_ERR_NOMEM;
  for (const char *piece = query; *piece;) {
    size_t len = strcspn(piece, "&");
    if (len > 0) {
      const char *eq = memchr(piece, '=', len);
      size_t name_len = eq ? (size_t)(eq - piece) : len;
      st = uri_reencode(piece, name_len, &q[n].name);
      if (st == TS_OK)
        st = eq ? uri_reencode(eq + 1, len - name_len - 1, &q[n].value)
                : uri_reencode("", 0, &q[n].value);
      n++;
      if (st != TS_OK)
        goto out;
    }
    piece += len;
    if (*piece == '&')
      piece++;
  }
  qsort(q, n, sizeof *q, cmp_qparam);
  for (size_t i = 0; i < n; i++) {
    if (i > 0)
      buf_adds(b, "&");
    buf_adds(b, q[i].name);
    buf_adds(b, "=");
    buf_adds(b, q[i].value);
  }
out:
  free_qparams(q, n);
  return st;
}

/* ---- canonical headers ---- */

struct chdr {
  char *name;  /* lower case */
  char *value; /* trimmed, inner runs of blanks folded to one space */
  size_t order;
};

static int cmp_chdr(const void *a, const void *b) {
  const struct chdr *x = a, *y = b;
  int c = strcmp(x->name, y->name);
  if (c)
    return c;
  return x->order < y->order ? -1 : x->order > y->order;
}

static char *lower_dup(const char *s) {
  char *d = strdup(s);
  for (char *p = d; p && *p; p++)
    if (*p >= 'A' && *p <= 'Z')
      *p = (char)(*p - 'A' + 'a');
  return d;
}

/* The value as signed: leading and trailing blanks removed, each inner run
 * of spaces and tabs folded to one space. Control bytes (CR, LF, ...) are
 * refused: they cannot be sent in a header. */
static enum ts_status fold_value(const char *v, char **out) {
  *out = NULL;
  if (!v)
    return TS_ERR_INVALID;
  char *d = malloc(strlen(v) + 1);
  if (!d)
    return TS_ERR_NOMEM;
  size_t o = 0;
  bool pending_space = false;
  for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
    if (*p == ' ' || *p == '\t') {
      pending_space = o > 0;
      continue;
    }
    if (*p < 0x20 || *p == 0x7f) {
      free(d);
      return TS_ERR_INVALID;
    }
    if (pending_space)
      d[o++] = ' ';
    pending_space = false;
    d[o++] = (char)*p;
  }
  d[o] = '\0';
  *out = d;
  return TS_OK;
}

static void free_chdrs(struct chdr *h, size_t n) {
  for (size_t i = 0; h && i < n; i++) {
    free(h[i].name);
    free(h[i].value);
  }
  free(h);
}

static enum ts_status add_chdr(struct chdr *h, size_t *n, const char *name,
                               const char *value) {
  size_t i = *n;
  h[i].order = i;
  h[i].name = lower_dup(name);
  (*n)++;
  if (!h[i].name)
    return TS_ERR_NOMEM;
  return fold_value(value, &h[i].value);
}

/* Appends the canonical headers block (each "name:values\n", duplicates
 * joined by ',' in the order given) to b and the signed headers list to
 * sh. The signer's own headers (x-amz-date, x-amz-security-token) and
 * Authorization are refused in req: the signer adds the former, and the
 * latter cannot sign itself. Host is required. */
static enum ts_status add_canonical_headers(struct buf *b, struct buf *sh,
                                            const struct sigv4_request *req,
                                            const char *amz_date,
                                            const char *session_token) {
  enum ts_status st = TS_OK;
  size_t n = 0;
  bool has_host = false;
  if (req->n_headers > 0 && !req->headers)
    return TS_ERR_INVALID;
  if (req->n_headers > SIZE_MAX / sizeof(struct chdr) - 2)
    return TS_ERR_INVALID;
  struct chdr *h = calloc(req->n_headers + 2, sizeof *h);
  if (!h)
    return TS_ERR_NOMEM;
  for (size_t i = 0; i < req->n_headers; i++) {
    const char *name = req->headers[i].name;
    if (!is_token(name) || strcasecmp(name, "x-amz-date") == 0 ||
        strcasecmp(name, "x-amz-security-token") == 0 ||
        strcasecmp(name, "authorization") == 0) {
      st = TS_ERR_INVALID;
      goto out;
    }
    has_host = has_host || strcasecmp(name, "host") == 0;
    st = add_chdr(h, &n, name, req->headers[i].value);
    if (st != TS_OK)
      goto out;
  }
  if (!has_host) {
    st = TS_ERR_INVALID;
    goto out;
  }
  st = add_chdr(h, &n, "x-amz-date", amz_date);
  if (st == TS_OK && session_token && *session_token)
    st = add_chdr(h, &n, "x-amz-security-token", session_token);
  if (st != TS_OK)
    goto out;
  qsort(h, n, sizeof *h, cmp_chdr);
  for (size_t i = 0; i < n; i++) {
    bool continues = i > 0 && strcmp(h[i - 1].name, h[i].name) == 0;
    if (continues) {
      buf_adds(b, ",");
    } else {
      if (i > 0) {
        buf_adds(b, "\n");
        buf_adds(sh, ";");
      }
      buf_adds(b, h[i].name);
      buf_adds(b, ":");
      buf_adds(sh, h[i].name);
    }
    buf_adds(b, h[i].value);
  }
  buf_adds(b, "\n");
out:
  free_chdrs(h, n);
  return st;
}

/* "YYYYMMDDTHHMMSSZ" */
static bool is_amz_date(const char *d) {
  if (!d || strlen(d) != 16 || d[8] != 'T' || d[15] != 'Z')
    return false;
  for (size_t i = 0; i < 15; i++)
    if (i != 8 && (d[i] < '0' || d[i] > '9'))
      return false;
  return true;
}

static bool is_path(const char *p) {
  if (!p || p[0] != '/')
    return false;
  for (const unsigned char *c = (const unsigned char *)p; *c; c++)
    if (*c <= 0x20 || *c >= 0x7f || *c == '?' || *c == '#')
      return false;
  return true;
}

enum ts_status sigv4_canonical_request(const struct sigv4_request *req,
                                       const char *amz_date,
                                       const char *session_token, char **creq,
                                       char **signed_headers) {
  enum ts_status st = TS_OK;
  struct buf b, sh;
  buf_init(&b, TS_MAX_SIGV4_TEXT_BYTES);
  buf_init(&sh, TS_MAX_SIGV4_TEXT_BYTES);
  char payload_hash[SHA256_HEX_BYTES];
  *creq = NULL;
  if (signed_headers)
    *signed_headers = NULL;
  if (!req || !is_token(req->method) || !is_path(req->path) ||
      !is_amz_date(amz_date) || (req->payload_len > 0 && !req->payload)) {
    st = TS_ERR_INVALID;
    goto fail;
  }
  /* The canonical URI is the path as given: DynamoDB's is "/", and the
   * caller passes paths already URI-encoded. */
  buf_adds(&b, req->method);
  buf_adds(&b, "\n");
  buf_adds(&b, req->path);
  buf_adds(&b, "\n");
  st = add_canonical_query(&b, req->query);
  if (st != TS_OK)
    goto fail;
  buf_adds(&b, "\n");
  st = add_canonical_headers(&b, &sh, req, amz_date, session_token);
  if (st != TS_OK)
    goto fail;
  buf_adds(&b, "\n");
  buf_add(&b, sh.data ? sh.data : "", sh.len);
  buf_adds(&b, "\n");
  st = sha256_hex(req->payload, req->payload_len, payload_hash);
  if (st != TS_OK)
    goto fail;
  buf_adds(&b, payload_hash);
  if ((st = buf_status(&b)) != TS_OK || (st = buf_status(&sh)) != TS_OK)
    goto fail;
  *creq = buf_take(&b, NULL);
  if (signed_headers)
    *signed_headers = buf_take(&sh, NULL);
  buf_free(&sh);
  if (!*creq || (signed_headers && !*signed_headers)) {
    st = TS_ERR_NOMEM;
    goto fail;
  }
  return TS_OK;
fail:
  buf_free(&b);
  buf_free(&sh);
  free(*creq);
  *creq = NULL;
  if (signed_headers) {
    free(*signed_headers);
    *signed_headers = NULL;
  }
  return st;
}

/* "<YYYYMMDD>/<region>/<service>/aws4_request" */
static void add_scope(struct buf *b, const char *amz_date, const char *region,
                      const char *service) {
  buf_add(b, amz_date, 8);
  buf_adds(b, "/");
  buf_adds(b, region);
  buf_adds(b, "/");
  buf_adds(b, service);
  buf_adds(b, "/aws4_request");
}

enum ts_status sigv4_string_to_sign(const char *amz_date, const char *region,
                                    const char *service, const char *creq,
                                    char **sts) {
  struct buf b;
  char creq_hash[SHA256_HEX_BYTES];
  *sts = NULL;
  if (!is_amz_date(amz_date) || !is_scope_part(region) ||
      !is_scope_part(service) || !creq)
    return TS_ERR_INVALID;
  enum ts_status st = sha256_hex(creq, strlen(creq), creq_hash);
  if (st != TS_OK)
    return st;
  buf_init(&b, TS_MAX_SIGV4_TEXT_BYTES);
  buf_adds(&b, ALGORITHM "\n");
  buf_adds(&b, amz_date);
  buf_adds(&b, "\n");
  add_scope(&b, amz_date, region, service);
  buf_adds(&b, "\n");
  buf_adds(&b, creq_hash);
  st = buf_status(&b);
  *sts = buf_take(&b, NULL);
  return *sts ? TS_OK : st == TS_OK ? TS_ERR_NOMEM : st;
}

enum ts_status sigv4_signing_key(const char *secret, const char *date8,
                                 const char *region, const char *service,
                                 unsigned char key[SIGV4_SIGNING_KEY_BYTES]) {
  enum ts_status st = TS_OK;
  unsigned char k[SHA256_BYTES];
  char *seed = NULL;
  size_t seed_len = 0;
  if (!secret || !*secret || !date8 || strlen(date8) != 8 ||
      !is_scope_part(region) || !is_scope_part(service))
    return TS_ERR_INVALID;
  seed_len = 4 + strlen(secret);
  seed = malloc(seed_len + 1);
  if (!seed)
    return TS_ERR_NOMEM;
  memcpy(seed, "AWS4", 4);
  memcpy(seed + 4, secret, seed_len - 4 + 1);
  st = hmac_sha256((const unsigned char *)seed, seed_len, date8, 8, k);
  if (st == TS_OK)
    st = hmac_sha256(k, sizeof k, region, strlen(region), k);
  if (st == TS_OK)
    st = hmac_sha256(k, sizeof k, service, strlen(service), k);
  if (st == TS_OK)
    st = hmac_sha256(k, sizeof k, "aws4_request", 12, k);
  if (st == TS_OK)
    memcpy(key, k, SIGV4_SIGNING_KEY_BYTES);
  OPENSSL_cleanse(k, sizeof k);
  OPENSSL_cleanse(seed, seed_len);
  free(seed);
  return st;
}

/* The signing key for (secret, day, region, service), kept per thread: it
 * changes once a day, and deriving it is four HMACs. The cache holds a
 * digest of the secret, not the secret; the derived key is scoped to one
 * day, region and service. */
static enum ts_status signing_key(const struct sigv4_key *key,
                                  const char *date8,
                                  unsigned char out[SIGV4_SIGNING_KEY_BYTES]) {
  static _Thread_local struct {
    bool valid;
    char date8[9];
    char scope[128]; /* region '/' service */
    unsigned char secret_md[SHA256_BYTES];
    unsigned char key[SIGV4_SIGNING_KEY_BYTES];
  } cache;
  unsigned char secret_md[SHA256_BYTES];
  char scope[sizeof cache.scope];
  int n = snprintf(scope, sizeof scope, "%s/%s", key->region ? key->region : "",
                   key->service ? key->service : "");
  bool cacheable = n > 0 && (size_t)n < sizeof scope;
  enum ts_status st =
      sha256(key->secret_access_key, strlen(key->secret_access_key), secret_md);
  if (st != TS_OK)
    return st;
  if (cacheable && cache.valid && strcmp(cache.date8, date8) == 0 &&
      strcmp(cache.scope, scope) == 0 &&
      CRYPTO_memcmp(cache.secret_md, secret_md, sizeof secret_md) == 0) {
    memcpy(out, cache.key, SIGV4_SIGNING_KEY_BYTES);
    return TS_OK;
  }
  st = sigv4_signing_key(key->secret_access_key, date8, key->region,
                         key->service, out);
  if (st == TS_OK && cacheable) {
    memcpy(cache.date8, date8, sizeof cache.date8);
    memcpy(cache.scope, scope, (size_t)n + 1);
    memcpy(cache.secret_md, secret_md, sizeof secret_md);
    memcpy(cache.key, out, SIGV4_SIGNING_KEY_BYTES);
    cache.valid = true;
  }
  return st;
}

static bool format_amz_date(time_t when, char out[17]) {
  struct tm tm;
  if (!gmtime_r(&when, &tm))
    return false;
  return strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm) == 16;
}

enum ts_status sigv4_sign(const struct sigv4_request *req,
                          const struct sigv4_key *key, time_t when,
                          struct sigv4_result *out) {
  enum ts_status st = TS_OK;
  char *creq = NULL, *signed_headers = NULL, *sts = NULL;
  unsigned char skey[SIGV4_SIGNING_KEY_BYTES], sig[SHA256_BYTES];
  char sig_hex[SHA256_HEX_BYTES];
  struct buf b;
  buf_init(&b, TS_MAX_SIGV4_TEXT_BYTES);
  if (!out)
    return TS_ERR_INVALID;
  *out = (struct sigv4_result){0};
  if (!req || !key || !is_scope_part(key->access_key_id) ||
      !key->secret_access_key || !*key->secret_access_key ||
      !format_amz_date(when, out->amz_date)) {
    st = TS_ERR_INVALID;
    goto out;
  }
  st = sigv4_canonical_request(req, out->amz_date, key->session_token, &creq,
                               &signed_headers);
  if (st == TS_OK)
    st = sigv4_string_to_sign(out->amz_date, key->region, key->service, creq,
                              &sts);
  if (st == TS_OK) {
    char date8[9];
    memcpy(date8, out->amz_date, 8);
    date8[8] = '\0';
    st = signing_key(key, date8, skey);
  }
  if (st != TS_OK)
    goto out;
  st = hmac_sha256(skey, sizeof skey, sts, strlen(sts), sig);
  OPENSSL_cleanse(skey, sizeof skey);
  if (st != TS_OK)
    goto out;
  hex_encode(sig, sizeof sig, sig_hex);
  buf_adds(&b, ALGORITHM " Credential=");
  buf_adds(&b, key->access_key_id);
  buf_adds(&b, "/");
  add_scope(&b, out->amz_date, key->region, key->service);
  buf_adds(&b, ", SignedHeaders=");
  buf_adds(&b, signed_headers);
  buf_adds(&b, ", Signature=");
  buf_adds(&b, sig_hex);
  out->authorization = buf_take(&b, NULL);
  if (!out->authorization)
    st = TS_ERR_NOMEM;
out:
  buf_free(&b);
  free(creq);
  free(signed_headers);
  free(sts);
  if (st != TS_OK)
    sigv4_result_clear(out);
  return st;
}

void sigv4_result_clear(struct sigv4_result *r) {
  if (!r)
    return;
  free(r->authorization);
  *r = (struct sigv4_result){0};
}
