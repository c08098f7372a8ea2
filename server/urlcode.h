/* Percent-decoding and UTF-8 validation for paths and query strings. */
#ifndef TS_SERVER_URLCODE_H
#define TS_SERVER_URLCODE_H

#include <stdbool.h>
#include <stddef.h>

#include "../common/status.h"
#include "../common/utf8.h"

/* Decodes s[0..len) into a new NUL-terminated string. With plus_is_space
 * (query strings) '+' becomes ' '. Returns TS_ERR_INVALID for a bad escape,
 * a decoded NUL or invalid UTF-8; TS_ERR_NOMEM. */
enum ts_status url_decode(const char *s, size_t len, bool plus_is_space,
                          char **out) TS_WARN_UNUSED;

/* Base64url without padding (RFC 4648 §5), for opaque cursors. */
enum ts_status b64url_encode(const char *s, size_t len,
                             char **out) TS_WARN_UNUSED;
enum ts_status b64url_decode(const char *s, size_t len, char **out,
                             size_t *out_len) TS_WARN_UNUSED;

#endif /* TS_SERVER_URLCODE_H */
