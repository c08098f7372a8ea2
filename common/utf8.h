/* UTF-8 (RFC 3629): the one validator every layer uses. */
#ifndef TS_COMMON_UTF8_H
#define TS_COMMON_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* Length (1-4) of the valid UTF-8 sequence at p, reading at most avail
 * bytes (avail > 0); 0 when p does not start one (overlong forms,
 * surrogates and code points above U+10FFFF are invalid). */
size_t utf8_sequence_length(const unsigned char *p, size_t avail);

/* True if s[0..len) is valid UTF-8. */
bool utf8_valid(const char *s, size_t len);

/* Replaces every byte of s that is not part of a valid UTF-8 sequence
 * (including a sequence cut off at the end) with '?', in place. */
void utf8_sanitize(char *s);

#endif /* TS_COMMON_UTF8_H */
