/* A narrow seam for unit tests of aws/creds.c: the pure rules behind the
 * container and IMDS providers. Not for production callers. */
#ifndef TS_AWS_CREDS_TEST_H
#define TS_AWS_CREDS_TEST_H

#include <stdbool.h>
#include <time.h>

#include "creds.h"

/* Whether AWS_CONTAINER_CREDENTIALS_FULL_URI may be fetched: https to any
 * host, or http to a loopback address, 169.254.170.2, 169.254.170.23 or
 * [fd00:ec2::23]. */
bool creds_test_full_uri_allowed(const char *uri);

/* An Expiration as the container and IMDS endpoints write it:
 * "YYYY-MM-DDTHH:MM:SS[.fraction]Z" (UTC). TS_ERR_INVALID otherwise. */
enum ts_status creds_test_parse_expiration(const char *s,
                                           time_t *out) TS_WARN_UNUSED;

#endif /* TS_AWS_CREDS_TEST_H */
