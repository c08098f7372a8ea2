/* SHA-256 (OpenSSL) of a sequence of byte strings, as lower-case hex. */
#ifndef TS_COMMON_DIGEST_H
#define TS_COMMON_DIGEST_H

#include <stddef.h>

#define DIGEST_HEX_BYTES 65 /* 64 hex digits and a NUL */

/* Hashes parts[0..n) in order, each followed by a NUL byte so that ("ab",
 * "c") and ("a", "bc") differ. On an OpenSSL failure (out of memory) out
 * is the empty string. */
void digest_sha256_hex(const char *const parts[], size_t n,
                       char out[DIGEST_HEX_BYTES]);

#endif /* TS_COMMON_DIGEST_H */
