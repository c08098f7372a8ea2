/* AWS credentials, from the standard chain, in this order:
 *   1. environment: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
 *      AWS_SESSION_TOKEN
 *   2. shared files: AWS_SHARED_CREDENTIALS_FILE (~/.aws/credentials) and
 *      AWS_CONFIG_FILE (~/.aws/config, "[profile name]" sections), profile
 *      AWS_PROFILE (default "default")
 *   3. container: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI (http://169.254.170.2
 *      + value) or AWS_CONTAINER_CREDENTIALS_FULL_URI (https, or http to a
 *      loopback address, 169.254.170.2, 169.254.170.23 or [fd00:ec2::23]),
 *      with Authorization from AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE (read
 *      at each fetch) or AWS_CONTAINER_AUTHORIZATION_TOKEN (ECS, EKS Pod
 *      Identity)
 *   4. EC2 instance metadata, IMDSv2 only (token PUT, then role, then
 *      credentials); endpoint AWS_EC2_METADATA_SERVICE_ENDPOINT (default
 *      http://169.254.169.254), off with AWS_EC2_METADATA_DISABLED=true.
 * Temporary credentials are cached and refreshed before they expire. */
#ifndef TS_AWS_CREDS_H
#define TS_AWS_CREDS_H

#include <time.h>

#include "../common/status.h"

struct aws_creds {
  char *access_key_id;
  char *secret_access_key;
  char *session_token; /* NULL when none */
  time_t expiration;   /* 0: does not expire */
  const char *source;  /* static: "environment", "shared-files",
                          "container", "imds" */
};
void aws_creds_clear(struct aws_creds *c);

struct aws_creds_provider;

/* Creates the chain. Nothing is fetched yet. Reads the environment at
 * each resolution, so tests can change it. */
enum ts_status
aws_creds_provider_new(struct aws_creds_provider **out) TS_WARN_UNUSED;
void aws_creds_provider_free(struct aws_creds_provider *p);

/* Copies current credentials into *out (caller clears). Uses the cache
 * while it has more than 5 minutes left; otherwise resolves the chain
 * again (each network fetch bounded to 1 s connect / 2 s total).
 * TS_ERR_NOT_FOUND: no provider had credentials; TS_ERR_UNAVAILABLE: a
 * provider was configured but could not be reached. Thread-safe. */
enum ts_status aws_creds_get(struct aws_creds_provider *p,
                             struct aws_creds *out) TS_WARN_UNUSED;

/* Region: AWS_REGION, then AWS_DEFAULT_REGION, then the profile's
 * `region` in the config file. NULL if none (caller frees). */
char *aws_region_resolve(void);

#endif /* TS_AWS_CREDS_H */
