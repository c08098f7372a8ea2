/* Strict base64 (RFC 4648 section 4, the standard alphabet with padding).
 *
 * Strict means one text per byte string: the length is a multiple of 4,
 * every character is in the alphabet, '=' appears only as the last one or
 * two characters, and the bits after the last byte are zero; no
 * whitespace, no line breaks. OpenSSL converts (EVP_DecodeBlock), but it
 * checks too little on its own: it reads '=' anywhere as zero bits
 * ("AA==AAAA" decodes), skips leading and trailing whitespace and counts
 * padding as decoded bytes; EVP_DecodeUpdate also skips line breaks. So
 * the text is checked here first and OpenSSL only does the arithmetic. */
#ifndef TS_COMMON_BASE64_H
#define TS_COMMON_BASE64_H

#include <stddef.h>

#include "status.h"

/* Where and why a text is not strict base64. */
struct base64_error {
  const char *what; /* static text, e.g. "a character outside the alphabet" */
  size_t offset;    /* byte offset in the text of the first character at
                       fault; the text's length when that is at fault */
};

/* Decodes text[0..len). TS_OK: *out (malloc'd, NUL-terminated, owned by
 * the caller) holds *out_len bytes. TS_ERR_INVALID: not strict base64,
 * *err says why. TS_ERR_TOO_LARGE: it would decode to more than max_bytes
 * (checked before anything is allocated). TS_ERR_NOMEM. *out is NULL
 * unless TS_OK. err may be NULL. */
enum ts_status base64_decode(const char *text, size_t len, size_t max_bytes,
                             unsigned char **out, size_t *out_len,
                             struct base64_error *err) TS_WARN_UNUSED;

#endif /* TS_COMMON_BASE64_H */
