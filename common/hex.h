/* Hex digits, shared by the percent-decoders of the router and SigV4, and
 * the ids and tags written per request (no printf on that path). */
#ifndef TS_COMMON_HEX_H
#define TS_COMMON_HEX_H

#include <stdint.h>

/* The value of one hex digit (either case), or -1. */
static inline int hex_digit_value(unsigned char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* Writes v as 16 lower-case hex digits, most significant first, and a
 * NUL: out holds at least 17 bytes. */
static inline void hex_u64(uint64_t v, char *out) {
  static const char digits[] = "0123456789abcdef";
  for (int i = 15; i >= 0; i--) {
    out[i] = digits[v & 0xf];
    v >>= 4;
  }
  out[16] = '\0';
}

#endif /* TS_COMMON_HEX_H */
