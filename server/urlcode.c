/* Percent-decoding, UTF-8 checks and base64url. libmicrohttpd's own
 * unescaping is switched off (see http.c) because it would turn %2F into a
 * path separator before routing; OpenSSL's EVP_DecodeBlock accepts padding
 * and whitespace loosely, while a cursor must decode one way only, so the
 * strict base64url codec below is ours. */
#include "urlcode.h"
#include "../common/hex.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum ts_status url_decode(const char *s, size_t len, bool plus_is_space,
                          char **out) {
  *out = NULL;
  char *d = malloc(len + 1);
  if (!d)
    return TS_ERR_NOMEM;
  size_t n = 0;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '%') {
      if (len - i < 3)
        goto invalid;
      int hi = hex_digit_value((unsigned char)s[i + 1]);
      int lo = hex_digit_value((unsigned char)s[i + 2]);
      if (hi < 0 || lo < 0)
        goto invalid;
      c = (unsigned char)(hi * 16 + lo);
      i += 2;
    } else if (c == '+' && plus_is_space) {
      c = ' ';
    }
    if (c == 0)
      goto invalid;
    d[n++] = (char)c;
  }
  d[n] = '\0';
  if (!utf8_valid(d, n))
    goto invalid;
  *out = d;
  return TS_OK;
invalid:
  free(d);
  return TS_ERR_INVALID;
}

static const char b64chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

enum ts_status b64url_encode(const char *s, size_t len, char **out) {
  const unsigned char *p = (const unsigned char *)s;
  char *d = malloc(len / 3 * 4 + 5);
  if (!d)
    return TS_ERR_NOMEM;
  size_t n = 0, i = 0;
  for (; i + 2 < len; i += 3) {
    uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
    d[n++] = b64chars[v >> 18];
    d[n++] = b64chars[(v >> 12) & 63];
    d[n++] = b64chars[(v >> 6) & 63];
    d[n++] = b64chars[v & 63];
  }
  if (len - i == 1) {
    uint32_t v = (uint32_t)p[i] << 16;
    d[n++] = b64chars[v >> 18];
    d[n++] = b64chars[(v >> 12) & 63];
  } else if (len - i == 2) {
    uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
    d[n++] = b64chars[v >> 18];
    d[n++] = b64chars[(v >> 12) & 63];
    d[n++] = b64chars[(v >> 6) & 63];
  }
  d[n] = '\0';
  *out = d;
  return TS_OK;
}

static int b64val(unsigned char c) {
  const char *q = c ? strchr(b64chars, c) : NULL;
  return q ? (int)(q - b64chars) : -1;
}

enum ts_status b64url_decode(const char *s, size_t len, char **out,
                             size_t *out_len) {
  *out = NULL;
  if (len % 4 == 1)
    return TS_ERR_INVALID;
  char *d = malloc(len / 4 * 3 + 3);
  if (!d)
    return TS_ERR_NOMEM;
  size_t n = 0;
  uint32_t acc = 0;
  unsigned bits = 0;
  for (size_t i = 0; i < len; i++) {
    int v = b64val((unsigned char)s[i]);
    if (v < 0)
      goto invalid;
    acc = (acc << 6) | (uint32_t)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      d[n++] = (char)((acc >> bits) & 0xFF);
    }
  }
  /* leftover bits must be zero, so each byte string has one encoding */
  if (acc & ((1u << bits) - 1))
    goto invalid;
  d[n] = '\0';
  *out = d;
  *out_len = n;
  return TS_OK;
invalid:
  free(d);
  return TS_ERR_INVALID;
}
