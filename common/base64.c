#include "base64.h"

#include <limits.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdlib.h>

/* The 6-bit value of an alphabet character, else -1. */
static int sextet(unsigned char c) {
  if (c >= 'A' && c <= 'Z')
    return c - 'A';
  if (c >= 'a' && c <= 'z')
    return c - 'a' + 26;
  if (c >= '0' && c <= '9')
    return c - '0' + 52;
  if (c == '+')
    return 62;
  if (c == '/')
    return 63;
  return -1;
}

static enum ts_status invalid(struct base64_error *err, const char *what,
                              size_t offset) {
  if (err) {
    err->what = what;
    err->offset = offset;
  }
  return TS_ERR_INVALID;
}

/* Checks the text; *pad gets the number of '=' at its end. */
static enum ts_status check(const unsigned char *t, size_t len, size_t *pad,
                            struct base64_error *err) {
  if (len % 4 != 0)
    return invalid(err, "its length is not a multiple of 4", len);
  *pad = 0;
  if (len >= 1 && t[len - 1] == '=')
    *pad = len >= 2 && t[len - 2] == '=' ? 2 : 1;
  for (size_t i = 0; i < len - *pad; i++)
    if (sextet(t[i]) < 0)
      return invalid(err,
                     t[i] == '=' ? "'=' before the end"
                                 : "a character outside the alphabet",
                     i);
  if (*pad > 0) {
    /* The last character before the padding carries 2 (one '=') or 4
     * (two) bits past the last byte: they must be zero. */
    int last = sextet(t[len - *pad - 1]);
    if ((last & (*pad == 1 ? 0x03 : 0x0F)) != 0)
      return invalid(err, "nonzero bits after the last byte", len - *pad - 1);
  }
  return TS_OK;
}

enum ts_status base64_decode(const char *text, size_t len, size_t max_bytes,
                             unsigned char **out, size_t *out_len,
                             struct base64_error *err) {
  *out = NULL;
  *out_len = 0;
  const unsigned char *t = (const unsigned char *)text;
  size_t pad = 0;
  enum ts_status st = check(t, len, &pad, err);
  if (st != TS_OK)
    return st;
  size_t raw = len / 4 * 3; /* what EVP_DecodeBlock writes, padding too */
  if (raw - pad > max_bytes || len > INT_MAX)
    return TS_ERR_TOO_LARGE;
  unsigned char *buf = malloc(raw + 1);
  if (!buf)
    return TS_ERR_NOMEM;
  if (len > 0 && EVP_DecodeBlock(buf, t, (int)len) != (int)raw) {
    free(buf); /* cannot happen after check(); refuse rather than guess */
    return invalid(err, "refused by the decoder", 0);
  }
  buf[raw - pad] = '\0';
  *out = buf;
  *out_len = raw - pad;
  return TS_OK;
}
