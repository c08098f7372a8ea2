/* AWS Signature Version 4 on OpenSSL (HMAC-SHA256, SHA-256).
 *
 * Why our own signer and not CURLOPT_AWS_SIGV4: the signature must be
 * checked against AWS's published test vectors, which fix the request
 * time; Debian 12's libcurl 7.88.1 takes the time only from its own clock
 * (a caller-supplied X-Amz-Date is sent twice before 8.3.0), and it signs
 * "Name:" removal headers wrongly. A signer with an explicit time is small
 * and testable step by step. */
#ifndef TS_AWS_SIGV4_H
#define TS_AWS_SIGV4_H

#include <stddef.h>
#include <time.h>

#include "../common/status.h"

struct sigv4_header {
  const char *name;  /* any case; signed lower-cased */
  const char *value; /* leading/trailing spaces trimmed, inner runs folded */
};

struct sigv4_request {
  const char *method; /* "POST" */
  const char *path;   /* raw path, e.g. "/" (already URI-encoded) */
  const char *query;  /* raw query without '?', or NULL */
  const struct sigv4_header *headers; /* must include Host; every header
                                         given is signed */
  size_t n_headers;
  const void *payload;
  size_t payload_len;
};

struct sigv4_key {
  const char *access_key_id;
  const char *secret_access_key;
  const char *session_token; /* NULL or "": none */
  const char *region;        /* "us-east-1" */
  const char *service;       /* "dynamodb" */
};

/* What to add to the request: an X-Amz-Date header, an Authorization
 * header and, with a session token, X-Amz-Security-Token (which the
 * signature covers, so the caller must NOT list it in req->headers). */
struct sigv4_result {
  char amz_date[17];   /* "20150830T123600Z" */
  char *authorization; /* owned: "AWS4-HMAC-SHA256 Credential=..." */
};

/* Signs req at time `when` (UTC seconds). out->authorization is freed with
 * sigv4_result_clear(). TS_ERR_INVALID for a request it cannot sign. */
enum ts_status sigv4_sign(const struct sigv4_request *req,
                          const struct sigv4_key *key, time_t when,
                          struct sigv4_result *out) TS_WARN_UNUSED;
void sigv4_result_clear(struct sigv4_result *r);

#endif /* TS_AWS_SIGV4_H */
