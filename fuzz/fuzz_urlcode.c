/* Fuzzes server/urlcode: url_decode in both modes, utf8_valid against an
 * independent reference (RFC 3629), and base64url both ways.
 *
 * Invariants: a decode that succeeds gives valid UTF-8 without NUL whose
 * length is what the escapes imply; utf8_valid agrees with the reference;
 * b64url_encode -> b64url_decode gives the bytes back, and any string that
 * b64url_decode accepts is the one encoding of what it decodes to. */
#include <stdlib.h>
#include <string.h>

#include "input.h"
#include "server/urlcode.h"

/* RFC 3629 validity by the table of well-formed byte sequences (Unicode
 * Table 3-7), written independently of urlcode.c. */
static bool reference_utf8(const unsigned char *s, size_t len) {
  size_t i = 0;
  while (i < len) {
    unsigned char c = s[i];
    size_t n;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c <= 0x7F) {
      i++;
      continue;
    } else if (c >= 0xC2 && c <= 0xDF) {
      n = 2;
    } else if (c == 0xE0) {
      n = 3, lo = 0xA0;
    } else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) {
      n = 3;
    } else if (c == 0xED) {
      n = 3, hi = 0x9F;
    } else if (c == 0xF0) {
      n = 4, lo = 0x90;
    } else if (c >= 0xF1 && c <= 0xF3) {
      n = 4;
    } else if (c == 0xF4) {
      n = 4, hi = 0x8F;
    } else {
      return false;
    }
    if (len - i < n || s[i + 1] < lo || s[i + 1] > hi)
      return false;
    for (size_t k = 2; k < n; k++)
      if (s[i + k] < 0x80 || s[i + k] > 0xBF)
        return false;
    i += n;
  }
  return true;
}

static int hexval(unsigned char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
    return (c | 0x20) - 'a' + 10;
  return -1;
}

/* What url_decode must give: the decoded bytes, or false where the
 * contract says TS_ERR_INVALID. */
static bool reference_decode(const unsigned char *s, size_t len, bool plus,
                             unsigned char *out, size_t *out_len) {
  size_t n = 0;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = s[i];
    if (c == '%') {
      if (len - i < 3)
        return false;
      int hi = hexval(s[i + 1]), lo = hexval(s[i + 2]);
      if (hi < 0 || lo < 0)
        return false;
      c = (unsigned char)(hi << 4 | lo);
      i += 2;
    } else if (plus && c == '+') {
      c = ' ';
    }
    if (c == 0)
      return false;
    out[n++] = c;
  }
  *out_len = n;
  return reference_utf8(out, n);
}

static void check_decode(const uint8_t *data, size_t size, bool plus) {
  char *got = (char *)0x1;
  enum ts_status st = url_decode((const char *)data, size, plus, &got);
  unsigned char *want = malloc(size + 1);
  FUZZ_CHECK(want, "out of memory");
  size_t want_len = 0;
  bool ok = reference_decode(data, size, plus, want, &want_len);
  FUZZ_CHECK(st == TS_OK || st == TS_ERR_INVALID, "url_decode returned %s",
             ts_status_name(st));
  FUZZ_CHECK((st == TS_OK) == ok, "url_decode %s, the reference %s",
             ts_status_name(st), ok ? "accepts" : "refuses");
  if (st == TS_OK) {
    FUZZ_CHECK(got && strlen(got) == want_len &&
                   memcmp(got, want, want_len) == 0,
               "url_decode gave other bytes than the reference");
    FUZZ_CHECK(utf8_valid(got, want_len), "decoded text is not valid UTF-8");
  } else {
    FUZZ_CHECK(got == NULL, "url_decode failed but set *out");
  }
  free(got);
  free(want);
}

static void check_b64(const uint8_t *data, size_t size) {
  char *enc = NULL, *dec = NULL;
  size_t dec_len = 0;
  FUZZ_CHECK(b64url_encode((const char *)data, size, &enc) == TS_OK,
             "b64url_encode failed");
  size_t elen = strlen(enc);
  FUZZ_CHECK(elen == size / 3 * 4 + (size % 3 ? size % 3 + 1 : 0),
             "encoding of %zu bytes has length %zu", size, elen);
  for (size_t i = 0; i < elen; i++)
    FUZZ_CHECK(
        (enc[i] >= 'A' && enc[i] <= 'Z') || (enc[i] >= 'a' && enc[i] <= 'z') ||
            (enc[i] >= '0' && enc[i] <= '9') || enc[i] == '-' || enc[i] == '_',
        "encoding holds byte 0x%02x", (unsigned char)enc[i]);
  FUZZ_CHECK(b64url_decode(enc, elen, &dec, &dec_len) == TS_OK,
             "b64url_decode refused its own encoding");
  FUZZ_CHECK(dec_len == size && memcmp(dec, data, size) == 0,
             "encode -> decode is not the identity");
  FUZZ_CHECK(dec[dec_len] == '\0', "decoded bytes not NUL-terminated");
  free(enc);
  free(dec);

  /* The input as an encoding: accepted only as the canonical one. */
  dec = (char *)0x1;
  enum ts_status st = b64url_decode((const char *)data, size, &dec, &dec_len);
  FUZZ_CHECK(st == TS_OK || st == TS_ERR_INVALID, "b64url_decode: %s",
             ts_status_name(st));
  if (st != TS_OK) {
    FUZZ_CHECK(dec == NULL, "b64url_decode failed but set *out");
    return;
  }
  FUZZ_CHECK(b64url_encode(dec, dec_len, &enc) == TS_OK,
             "b64url_encode failed");
  FUZZ_CHECK(strlen(enc) == size && memcmp(enc, data, size) == 0,
             "b64url_decode accepted a non-canonical encoding");
  free(enc);
  free(dec);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  check_decode(data, size, false);
  check_decode(data, size, true);
  FUZZ_CHECK(utf8_valid((const char *)data, size) == reference_utf8(data, size),
             "utf8_valid disagrees with the RFC 3629 table");
  check_b64(data, size);
  return 0;
}
