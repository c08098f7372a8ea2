#include "json_parse.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_pool.h"
#include "utf8.h"

struct parser {
  const unsigned char *p, *end, *start;
  struct json_parse_error *err;
  enum ts_status st; /* the first failure */
};

static void fail_at(struct parser *ps, const unsigned char *at,
                    enum ts_status st, const char *what) {
  if (ps->st != TS_OK)
    return;
  ps->st = st;
  struct json_parse_error *e = ps->err;
  snprintf(e->text, sizeof e->text, "%s", what);
  e->line = 1;
  const unsigned char *line_start = ps->start;
  for (const unsigned char *q = ps->start; q < at && q < ps->end; q++)
    if (*q == '\n') {
      e->line++;
      line_start = q + 1;
    }
  e->column = (int)(at - line_start) + 1;
}

static void skip_ws(struct parser *ps) {
  while (ps->p < ps->end &&
         (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
    ps->p++;
}

static int hex4(const unsigned char *p) {
  int v = 0;
  for (int i = 0; i < 4; i++) {
    int c = p[i], d;
    if (c >= '0' && c <= '9')
      d = c - '0';
    else if (c >= 'a' && c <= 'f')
      d = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F')
      d = c - 'A' + 10;
    else
      return -1;
    v = v * 16 + d;
  }
  return v;
}

static size_t put_utf8(unsigned char *o, unsigned cp) {
  if (cp < 0x80) {
    o[0] = (unsigned char)cp;
    return 1;
  }
  if (cp < 0x800) {
    o[0] = (unsigned char)(0xC0 | (cp >> 6));
    o[1] = (unsigned char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    o[0] = (unsigned char)(0xE0 | (cp >> 12));
    o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    o[2] = (unsigned char)(0x80 | (cp & 0x3F));
    return 3;
  }
  o[0] = (unsigned char)(0xF0 | (cp >> 18));
  o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
  o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
  o[3] = (unsigned char)(0x80 | (cp & 0x3F));
  return 4;
}

/* plain[c]: byte c stands for itself inside a string (printable ASCII
 * other than '"' and '\\'), so the common case is one load a byte. */
#define PLAIN_ROW(b) ((b) >= 0x20 && (b) < 0x80 && (b) != '"' && (b) != '\\')
#define PLAIN_16(b)                                                            \
  PLAIN_ROW(b), PLAIN_ROW(b + 1), PLAIN_ROW(b + 2), PLAIN_ROW(b + 3),          \
      PLAIN_ROW(b + 4), PLAIN_ROW(b + 5), PLAIN_ROW(b + 6), PLAIN_ROW(b + 7),  \
      PLAIN_ROW(b + 8), PLAIN_ROW(b + 9), PLAIN_ROW(b + 10),                   \
      PLAIN_ROW(b + 11), PLAIN_ROW(b + 12), PLAIN_ROW(b + 13),                 \
      PLAIN_ROW(b + 14), PLAIN_ROW(b + 15)
static const bool plain[256] = {
    PLAIN_16(0x00), PLAIN_16(0x10), PLAIN_16(0x20), PLAIN_16(0x30),
    PLAIN_16(0x40), PLAIN_16(0x50), PLAIN_16(0x60), PLAIN_16(0x70),
    PLAIN_16(0x80), PLAIN_16(0x90), PLAIN_16(0xa0), PLAIN_16(0xb0),
    PLAIN_16(0xc0), PLAIN_16(0xd0), PLAIN_16(0xe0), PLAIN_16(0xf0)};
#undef PLAIN_16
#undef PLAIN_ROW

/* The string whose opening quote is at ps->p. On success *s points either
 * into the text (no escapes: *owned NULL) or to *owned, a new buffer. */
static bool parse_string(struct parser *ps, const char **s, size_t *len,
                         char **owned) {
  const unsigned char *q = ps->p + 1;
  *owned = NULL;
  /* The common case: printable ASCII up to the closing quote. */
  while (q < ps->end && plain[*q])
    q++;
  if (q < ps->end && *q == '"') {
    *s = (const char *)ps->p + 1;
    *len = (size_t)(q - ps->p - 1);
    ps->p = q + 1;
    return true;
  }
  /* Escapes or non-ASCII: decode into a buffer no longer than the rest of
   * the text (an escape never decodes to more bytes than it takes). */
  unsigned char *out = malloc((size_t)(ps->end - ps->p) + 1);
  if (!out) {
    fail_at(ps, ps->p, TS_ERR_NOMEM, "out of memory");
    return false;
  }
  size_t n = (size_t)(q - ps->p - 1);
  memcpy(out, ps->p + 1, n);
  for (;;) {
    if (q >= ps->end) {
      fail_at(ps, q, TS_ERR_INVALID, "premature end of input in a string");
      goto fail;
    }
    unsigned c = *q;
    if (c == '"')
      break;
    if (c < 0x20) {
      fail_at(ps, q, TS_ERR_INVALID, "control character in a string");
      goto fail;
    }
    if (c >= 0x80) {
      size_t l = utf8_sequence_length(q, (size_t)(ps->end - q));
      if (l == 0) {
        fail_at(ps, q, TS_ERR_INVALID, "invalid UTF-8 in a string");
        goto fail;
      }
      memcpy(out + n, q, l);
      n += l;
      q += l;
      continue;
    }
    if (c != '\\') {
      out[n++] = (unsigned char)c;
      q++;
      continue;
    }
    if (q + 1 >= ps->end) {
      fail_at(ps, q, TS_ERR_INVALID, "premature end of input in a string");
      goto fail;
    }
    unsigned char e = q[1];
    const char *simple = strchr("\"\\/bfnrt", e);
    if (e && simple) {
      static const char to[] = "\"\\/\b\f\n\r\t";
      out[n++] = (unsigned char)to[simple - "\"\\/bfnrt"];
      q += 2;
      continue;
    }
    if (e != 'u' || ps->end - q < 6) {
      fail_at(ps, q, TS_ERR_INVALID, "invalid escape in a string");
      goto fail;
    }
    int cp = hex4(q + 2);
    if (cp < 0) {
      fail_at(ps, q, TS_ERR_INVALID, "invalid \\u escape in a string");
      goto fail;
    }
    q += 6;
    if (cp >= 0xD800 && cp <= 0xDBFF) {
      int lo =
          ps->end - q >= 6 && q[0] == '\\' && q[1] == 'u' ? hex4(q + 2) : -1;
      if (lo < 0xDC00 || lo > 0xDFFF) {
        fail_at(ps, q, TS_ERR_INVALID, "invalid Unicode surrogate pair");
        goto fail;
      }
      cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
      q += 6;
    } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
      fail_at(ps, q, TS_ERR_INVALID, "lone low Unicode surrogate");
      goto fail;
    } else if (cp == 0) {
      fail_at(ps, q, TS_ERR_INVALID, "\\u0000 is not allowed in a string");
      goto fail;
    }
    n += put_utf8(out + n, (unsigned)cp);
  }
  out[n] = '\0';
  *owned = (char *)out;
  *s = (const char *)out;
  *len = n;
  ps->p = q + 1;
  return true;
fail:
  free(out);
  return false;
}

static bool is_digit(const unsigned char *p, const unsigned char *end) {
  return p < end && *p >= '0' && *p <= '9';
}

static json_t *parse_number(struct parser *ps) {
  const unsigned char *b = ps->p, *q = b, *end = ps->end;
  bool real = false;
  if (q < end && *q == '-')
    q++;
  if (q < end && *q == '0') {
    q++;
    if (is_digit(q, end)) {
      fail_at(ps, b, TS_ERR_INVALID, "invalid number (a leading zero)");
      return NULL;
    }
  } else if (is_digit(q, end)) {
    while (is_digit(q, end))
      q++;
  } else {
    fail_at(ps, b, TS_ERR_INVALID, "invalid token");
    return NULL;
  }
  if (q < end && *q == '.') {
    real = true;
    q++;
    if (!is_digit(q, end)) {
      fail_at(ps, b, TS_ERR_INVALID, "invalid number (no digit after '.')");
      return NULL;
    }
    while (is_digit(q, end))
      q++;
  }
  if (q < end && (*q == 'e' || *q == 'E')) {
    real = true;
    q++;
    if (q < end && (*q == '+' || *q == '-'))
      q++;
    if (!is_digit(q, end)) {
      fail_at(ps, b, TS_ERR_INVALID, "invalid number (an empty exponent)");
      return NULL;
    }
    while (is_digit(q, end))
      q++;
  }
  /* strtoll and strtod want a terminated copy. */
  size_t n = (size_t)(q - b);
  char small[64], *text = n < sizeof small ? small : malloc(n + 1);
  if (!text) {
    fail_at(ps, b, TS_ERR_NOMEM, "out of memory");
    return NULL;
  }
  memcpy(text, b, n);
  text[n] = '\0';
  json_t *v = NULL;
  errno = 0;
  if (!real) {
    long long i = strtoll(text, NULL, 10);
    if (errno == ERANGE)
      fail_at(ps, b, TS_ERR_INVALID, "too big an integer");
    else
      v = json_integer(i);
  } else {
    double d = strtod(text, NULL);
    if (errno == ERANGE && (d == HUGE_VAL || d == -HUGE_VAL))
      fail_at(ps, b, TS_ERR_INVALID, "real number overflow");
    else
      v = json_real(d);
  }
  if (text != small)
    free(text);
  if (!v && ps->st == TS_OK)
    fail_at(ps, b, TS_ERR_NOMEM, "out of memory");
  ps->p = q;
  return v;
}

static bool literal(struct parser *ps, const char *word, size_t n) {
  if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0)
    return false;
  ps->p += n;
  return true;
}

static json_t *parse_value(struct parser *ps, unsigned depth);

static json_t *parse_object(struct parser *ps, unsigned depth) {
  json_t *obj = json_object();
  if (!obj) {
    fail_at(ps, ps->p, TS_ERR_NOMEM, "out of memory");
    return NULL;
  }
  ps->p++; /* '{' */
  skip_ws(ps);
  if (ps->p < ps->end && *ps->p == '}') {
    ps->p++;
    return obj;
  }
  for (;;) {
    skip_ws(ps);
    if (ps->p >= ps->end || *ps->p != '"') {
      fail_at(ps, ps->p, TS_ERR_INVALID, "string or '}' expected");
      goto fail;
    }
    const char *key;
    size_t klen;
    char *owned;
    if (!parse_string(ps, &key, &klen, &owned))
      goto fail;
    skip_ws(ps);
    if (ps->p >= ps->end || *ps->p != ':') {
      free(owned);
      fail_at(ps, ps->p, TS_ERR_INVALID, "':' expected");
      goto fail;
    }
    ps->p++;
    json_t *v = parse_value(ps, depth + 1);
    if (!v) {
      free(owned);
      goto fail;
    }
    int rc = json_object_setn_new_nocheck(obj, key, klen, v);
    free(owned);
    if (rc != 0) {
      fail_at(ps, ps->p, TS_ERR_NOMEM, "out of memory");
      goto fail;
    }
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == ',') {
      ps->p++;
      continue;
    }
    if (ps->p < ps->end && *ps->p == '}') {
      ps->p++;
      return obj;
    }
    fail_at(ps, ps->p, TS_ERR_INVALID, "',' or '}' expected");
    goto fail;
  }
fail:
  json_decref(obj);
  return NULL;
}

static json_t *parse_array(struct parser *ps, unsigned depth) {
  json_t *arr = json_array();
  if (!arr) {
    fail_at(ps, ps->p, TS_ERR_NOMEM, "out of memory");
    return NULL;
  }
  ps->p++; /* '[' */
  skip_ws(ps);
  if (ps->p < ps->end && *ps->p == ']') {
    ps->p++;
    return arr;
  }
  for (;;) {
    json_t *v = parse_value(ps, depth + 1);
    if (!v)
      goto fail;
    if (json_array_append_new(arr, v) != 0) {
      fail_at(ps, ps->p, TS_ERR_NOMEM, "out of memory");
      goto fail;
    }
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == ',') {
      ps->p++;
      continue;
    }
    if (ps->p < ps->end && *ps->p == ']') {
      ps->p++;
      return arr;
    }
    fail_at(ps, ps->p, TS_ERR_INVALID, "',' or ']' expected");
    goto fail;
  }
fail:
  json_decref(arr);
  return NULL;
}

/* One value after optional whitespace; depth is its nesting level, 1 at
 * the top (jansson counts every value, scalars too). */
static json_t *parse_value(struct parser *ps, unsigned depth) {
  skip_ws(ps);
  if (depth > TS_JSON_MAX_DEPTH) {
    fail_at(ps, ps->p, TS_ERR_INVALID, "maximum parsing depth reached");
    return NULL;
  }
  if (ps->p >= ps->end) {
    fail_at(ps, ps->p, TS_ERR_INVALID, "premature end of input");
    return NULL;
  }
  json_t *v = NULL;
  switch (*ps->p) {
  case '{': return parse_object(ps, depth);
  case '[': return parse_array(ps, depth);
  case '"': {
    const char *s;
    size_t n;
    char *owned;
    if (!parse_string(ps, &s, &n, &owned))
      return NULL;
    v = json_stringn_nocheck(s, n);
    free(owned);
    if (!v)
      fail_at(ps, ps->p, TS_ERR_NOMEM, "out of memory");
    return v;
  }
  case 't':
    if (literal(ps, "true", 4))
      return json_true();
    break;
  case 'f':
    if (literal(ps, "false", 5))
      return json_false();
    break;
  case 'n':
    if (literal(ps, "null", 4))
      return json_null();
    break;
  default:
    if (*ps->p == '-' || (*ps->p >= '0' && *ps->p <= '9'))
      return parse_number(ps);
    break;
  }
  if (!v && ps->st == TS_OK)
    fail_at(ps, ps->p, TS_ERR_INVALID, "invalid token");
  return v;
}

enum ts_status json_parse(const char *text, size_t len, json_t **out,
                          struct json_parse_error *err) {
  struct json_parse_error ignored;
  struct parser ps = {.p = (const unsigned char *)text,
                      .start = (const unsigned char *)text,
                      .end = (const unsigned char *)text + len,
                      .err = err ? err : &ignored,
                      .st = TS_OK};
  *out = NULL;
  json_pool_install();
  json_pool_begin();
  json_t *v = parse_value(&ps, 1);
  json_pool_end();
  if (v) {
    skip_ws(&ps);
    if (ps.p != ps.end) {
      fail_at(&ps, ps.p, TS_ERR_INVALID, "end of input expected");
      json_decref(v);
      return ps.st;
    }
    *out = v;
    return TS_OK;
  }
  /* A string that was not valid yields NULL from json_stringn_nocheck
   * only on NOMEM; every other failure has set ps.st. */
  if (ps.st == TS_OK)
    fail_at(&ps, ps.p, TS_ERR_NOMEM, "out of memory");
  return ps.st;
}
