/* SHA-256 (OpenSSL): of bytes, and of a sequence of byte strings as
 * lower-case hex. */
#ifndef TS_COMMON_DIGEST_H
#define TS_COMMON_DIGEST_H

#include <stdbool.h>
#include <stddef.h>

#define DIGEST_HEX_BYTES 65 /* 64 hex digits and a NUL */
#define DIGEST_SHA256_BYTES 32

/* The SHA-256 of data[0..len) into out; false on an OpenSSL failure. */
bool digest_sha256(const void *data, size_t len,
                   unsigned char out[DIGEST_SHA256_BYTES]);

/* Hashes parts[0..n) in order, each followed by a NUL byte so that ("ab",
 * "c") and ("a", "bc") differ. On an OpenSSL failure (out of memory) out
 * is the empty string. */
void digest_sha256_hex(const char *const parts[], size_t n,
                       char out[DIGEST_HEX_BYTES]);

#endif /* TS_COMMON_DIGEST_H */
