#include "buf.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void buf_init(struct buf *b, size_t max) {
  memset(b, 0, sizeof *b);
  b->max = max;
}

void buf_free(struct buf *b) {
  if (!b)
    return;
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}

static void fail(struct buf *b) {
  buf_free(b);
  b->failed = true;
}

static bool grow(struct buf *b, size_t extra) {
  if (b->failed)
    return false;
  if (extra > b->max || b->len > b->max - extra) {
    fail(b);
    return false;
  }
  size_t need = b->len + extra + 1;
  if (need <= b->cap)
    return true;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < need)
    cap = cap > SIZE_MAX / 2 ? need : cap * 2;
  if (cap > b->max + 1)
    cap = b->max + 1;
  char *p = realloc(b->data, cap);
  if (!p) {
    fail(b);
    b->max = 0; /* marks "no memory" rather than "too large" */
    return false;
  }
  b->data = p;
  b->cap = cap;
  return true;
}

void buf_reserve(struct buf *b, size_t n) {
  if (b->failed || n > b->max - b->len)
    n = b->failed ? 0 : b->max - b->len;
  size_t need = b->len + n + 1;
  if (need <= b->cap)
    return;
  char *p = realloc(b->data, need);
  if (!p)
    return; /* the appends will find out */
  b->data = p;
  b->cap = need;
}

void buf_add(struct buf *b, const void *data, size_t len) {
  if (!grow(b, len))
    return;
  if (len)
    memcpy(b->data + b->len, data, len);
  b->len += len;
  b->data[b->len] = '\0';
}

void buf_adds(struct buf *b, const char *s) { buf_add(b, s, strlen(s)); }

void buf_add_i64(struct buf *b, int64_t v) {
  char tmp[20]; /* the 19 digits of INT64_MIN, and its sign */
  size_t i = sizeof tmp;
  uint64_t u = v < 0 ? 0u - (uint64_t)v : (uint64_t)v;
  do {
    tmp[--i] = (char)('0' + u % 10u);
    u /= 10u;
  } while (u);
  if (v < 0)
    tmp[--i] = '-';
  buf_add(b, tmp + i, sizeof tmp - i);
}

void buf_addf(struct buf *b, const char *fmt, ...) {
  char small[256];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(small, sizeof small, fmt, ap);
  va_end(ap);
  if (n < 0) {
    fail(b);
    return;
  }
  if ((size_t)n < sizeof small) {
    buf_add(b, small, (size_t)n);
    return;
  }
  if (!grow(b, (size_t)n))
    return;
  va_start(ap, fmt);
  vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
}

void buf_add_json_string(struct buf *b, const char *s) {
  static const char hex[] = "0123456789abcdef";
  buf_add(b, "\"", 1);
  const char *run = s;
  for (const char *p = s; *p; p++) {
    unsigned char c = (unsigned char)*p;
    if (c >= 0x20 && c != '"' && c != '\\')
      continue;
    buf_add(b, run, (size_t)(p - run));
    run = p + 1;
    switch (c) {
    case '"': buf_add(b, "\\\"", 2); break;
    case '\\': buf_add(b, "\\\\", 2); break;
    case '\n': buf_add(b, "\\n", 2); break;
    case '\r': buf_add(b, "\\r", 2); break;
    case '\t': buf_add(b, "\\t", 2); break;
    default: {
      char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
      buf_add(b, esc, 6);
    }
    }
  }
  buf_adds(b, run);
  buf_add(b, "\"", 1);
}

enum ts_status buf_status(const struct buf *b) {
  if (!b->failed)
    return TS_OK;
  return b->max ? TS_ERR_TOO_LARGE : TS_ERR_NOMEM;
}

char *buf_take(struct buf *b, size_t *len) {
  if (b->failed)
    return NULL;
  if (!b->data) {
    if (!grow(b, 0))
      return NULL;
    b->data[0] = '\0';
  }
  char *out = b->data;
  if (len)
    *len = b->len;
  b->data = NULL;
  b->len = b->cap = 0;
  return out;
}

void buf_add_json_string_or_null(struct buf *b, const char *s) {
  if (s)
    buf_add_json_string(b, s);
  else
    buf_add(b, "null", 4);
}

void buf_add_json_key(struct buf *b, const char *key) {
  if (!b->failed && b->len && b->data[b->len - 1] != '{' &&
      b->data[b->len - 1] != '[')
    buf_add(b, ",", 1);
  buf_add(b, "\"", 1);
  buf_adds(b, key);
  buf_add(b, "\":", 2);
}
