/* A narrow seam for unit tests: the individual SigV4 steps, so that each
 * can be compared with AWS's published test vectors. Production callers
 * use sigv4_sign() only. */
#ifndef TS_AWS_SIGV4_TEST_H
#define TS_AWS_SIGV4_TEST_H

#include "sigv4.h"

#define SIGV4_SIGNING_KEY_BYTES 32u

/* Task 1: the canonical request of req as signed at amz_date
 * ("YYYYMMDDTHHMMSSZ"), with x-amz-date and, when session_token is
 * non-empty, x-amz-security-token added to the signed headers. Both outputs
 * are malloc'd (caller frees); signed_headers may be NULL if not wanted.
 * TS_ERR_INVALID for a request it cannot sign. */
enum ts_status sigv4_canonical_request(const struct sigv4_request *req,
                                       const char *amz_date,
                                       const char *session_token, char **creq,
                                       char **signed_headers) TS_WARN_UNUSED;

/* Task 2: "AWS4-HMAC-SHA256\n<amz_date>\n<scope>\n<hex sha256(creq)>"
 * with scope "<YYYYMMDD>/<region>/<service>/aws4_request". *sts is
 * malloc'd. */
enum ts_status sigv4_string_to_sign(const char *amz_date, const char *region,
                                    const char *service, const char *creq,
                                    char **sts) TS_WARN_UNUSED;

/* Task 3: HMAC-SHA256 chain "AWS4"+secret -> date8 ("YYYYMMDD") ->
 * region -> service -> "aws4_request". */
enum ts_status
sigv4_signing_key(const char *secret, const char *date8, const char *region,
                  const char *service,
                  unsigned char key[SIGV4_SIGNING_KEY_BYTES]) TS_WARN_UNUSED;

#endif /* TS_AWS_SIGV4_TEST_H */
