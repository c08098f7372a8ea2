/* The flat JSON document (jdoc.h): a scanner over the text that appends
 * nodes, the accessors, and the conversion to jansson. */
#include "jdoc.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"

/* A value. Its children (an array's elements; an object's keys, each
 * followed by its value) follow it, and `end` is the index just past its
 * last descendant, so the next sibling is nodes[end]. */
struct node {
  unsigned char type; /* enum jdoc_type */
  uint32_t size;      /* string: bytes; array, object: children counted as
                         elements or members */
  uint32_t end;
  union {
    const char *s; /* in the document's strings */
    long long i;
    double d;
  } v;
};

struct jdoc {
  struct node *nodes;
  uint32_t n, cap;
  /* Every decoded string, NUL-terminated, in one buffer sized by the text
   * (a string never decodes to more bytes than its quoted text takes). */
  char *strings;
  size_t used;
};

struct parser {
  const unsigned char *p, *end, *start;
  struct json_parse_error *err;
  enum ts_status st; /* the first failure */
  struct jdoc *d;
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

/* A new node of the given type at the end; JDOC_NONE when out of memory
 * (ps->st set). */
static jdoc_ref add_node(struct parser *ps, enum jdoc_type type) {
  struct jdoc *d = ps->d;
  if (d->n == d->cap) {
    size_t cap = 2 * (size_t)d->cap; /* refs are 32-bit; JDOC_NONE aside */
    struct node *grown =
        cap < UINT32_MAX ? realloc(d->nodes, cap * sizeof *grown) : NULL;
    if (!grown) {
      fail_at(ps, ps->p, TS_ERR_NOMEM, "out of memory");
      return JDOC_NONE;
    }
    d->nodes = grown;
    d->cap = (uint32_t)cap;
  }
  jdoc_ref r = d->n++;
  d->nodes[r].type = (unsigned char)type;
  d->nodes[r].size = 0;
  d->nodes[r].end = d->n;
  return r;
}

/* The string whose opening quote is at ps->p, decoded into the document's
 * strings, as a new string node. */
static bool parse_string(struct parser *ps) {
  const unsigned char *q = ps->p + 1;
  unsigned char *out = (unsigned char *)ps->d->strings + ps->d->used;
  /* The common case: printable ASCII up to the closing quote. */
  while (q < ps->end && plain[*q])
    q++;
  size_t n = (size_t)(q - ps->p - 1);
  memcpy(out, ps->p + 1, n);
  for (;;) {
    if (q >= ps->end) {
      fail_at(ps, q, TS_ERR_INVALID, "premature end of input in a string");
      return false;
    }
    unsigned c = *q;
    if (c == '"')
      break;
    if (c < 0x20) {
      fail_at(ps, q, TS_ERR_INVALID, "control character in a string");
      return false;
    }
    if (c >= 0x80) {
      size_t l = utf8_sequence_length(q, (size_t)(ps->end - q));
      if (l == 0) {
        fail_at(ps, q, TS_ERR_INVALID, "invalid UTF-8 in a string");
        return false;
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
      return false;
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
      return false;
    }
    int cp = hex4(q + 2);
    if (cp < 0) {
      fail_at(ps, q, TS_ERR_INVALID, "invalid \\u escape in a string");
      return false;
    }
    q += 6;
    if (cp >= 0xD800 && cp <= 0xDBFF) {
      int lo =
          ps->end - q >= 6 && q[0] == '\\' && q[1] == 'u' ? hex4(q + 2) : -1;
      if (lo < 0xDC00 || lo > 0xDFFF) {
        fail_at(ps, q, TS_ERR_INVALID, "invalid Unicode surrogate pair");
        return false;
      }
      cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
      q += 6;
    } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
      fail_at(ps, q, TS_ERR_INVALID, "lone low Unicode surrogate");
      return false;
    } else if (cp == 0) {
      fail_at(ps, q, TS_ERR_INVALID, "\\u0000 is not allowed in a string");
      return false;
    }
    n += put_utf8(out + n, (unsigned)cp);
  }
  jdoc_ref r = add_node(ps, JDOC_STRING);
  if (r == JDOC_NONE)
    return false;
  out[n] = '\0';
  ps->d->nodes[r].size = (uint32_t)n;
  ps->d->nodes[r].v.s = (const char *)out;
  ps->d->used += n + 1;
  ps->p = q + 1;
  return true;
}

static bool is_digit(const unsigned char *p, const unsigned char *end) {
  return p < end && *p >= '0' && *p <= '9';
}

static bool parse_number(struct parser *ps) {
  const unsigned char *b = ps->p, *q = b, *end = ps->end;
  bool real = false;
  if (q < end && *q == '-')
    q++;
  if (q < end && *q == '0') {
    q++;
    if (is_digit(q, end)) {
      fail_at(ps, b, TS_ERR_INVALID, "invalid number (a leading zero)");
      return false;
    }
  } else if (is_digit(q, end)) {
    while (is_digit(q, end))
      q++;
  } else {
    fail_at(ps, b, TS_ERR_INVALID, "invalid token");
    return false;
  }
  if (q < end && *q == '.') {
    real = true;
    q++;
    if (!is_digit(q, end)) {
      fail_at(ps, b, TS_ERR_INVALID, "invalid number (no digit after '.')");
      return false;
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
      return false;
    }
    while (is_digit(q, end))
      q++;
  }
  /* strtoll and strtod want a terminated copy. */
  size_t n = (size_t)(q - b);
  char small[64], *text = n < sizeof small ? small : malloc(n + 1);
  if (!text) {
    fail_at(ps, b, TS_ERR_NOMEM, "out of memory");
    return false;
  }
  memcpy(text, b, n);
  text[n] = '\0';
  bool ok = false;
  errno = 0;
  if (!real) {
    long long i = strtoll(text, NULL, 10);
    jdoc_ref r;
    if (errno == ERANGE)
      fail_at(ps, b, TS_ERR_INVALID, "too big an integer");
    else if ((r = add_node(ps, JDOC_INTEGER)) != JDOC_NONE)
      ps->d->nodes[r].v.i = i, ok = true;
  } else {
    double v = strtod(text, NULL);
    jdoc_ref r;
    if (errno == ERANGE && (v == HUGE_VAL || v == -HUGE_VAL))
      fail_at(ps, b, TS_ERR_INVALID, "real number overflow");
    else if ((r = add_node(ps, JDOC_REAL)) != JDOC_NONE)
      ps->d->nodes[r].v.d = v, ok = true;
  }
  if (text != small)
    free(text);
  ps->p = q;
  return ok;
}

static bool literal(struct parser *ps, const char *word, size_t n) {
  if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0)
    return false;
  ps->p += n;
  return true;
}

static bool parse_value(struct parser *ps, unsigned depth);

static bool parse_object(struct parser *ps, unsigned depth) {
  jdoc_ref obj = add_node(ps, JDOC_OBJECT);
  if (obj == JDOC_NONE)
    return false;
  uint32_t members = 0;
  ps->p++; /* '{' */
  skip_ws(ps);
  if (ps->p < ps->end && *ps->p == '}') {
    ps->p++;
    return true;
  }
  for (;;) {
    skip_ws(ps);
    if (ps->p >= ps->end || *ps->p != '"') {
      fail_at(ps, ps->p, TS_ERR_INVALID, "string or '}' expected");
      return false;
    }
    if (!parse_string(ps))
      return false;
    skip_ws(ps);
    if (ps->p >= ps->end || *ps->p != ':') {
      fail_at(ps, ps->p, TS_ERR_INVALID, "':' expected");
      return false;
    }
    ps->p++;
    if (!parse_value(ps, depth + 1))
      return false;
    members++;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == ',') {
      ps->p++;
      continue;
    }
    if (ps->p < ps->end && *ps->p == '}') {
      ps->p++;
      ps->d->nodes[obj].size = members;
      ps->d->nodes[obj].end = ps->d->n;
      return true;
    }
    fail_at(ps, ps->p, TS_ERR_INVALID, "',' or '}' expected");
    return false;
  }
}

static bool parse_array(struct parser *ps, unsigned depth) {
  jdoc_ref arr = add_node(ps, JDOC_ARRAY);
  if (arr == JDOC_NONE)
    return false;
  uint32_t elements = 0;
  ps->p++; /* '[' */
  skip_ws(ps);
  if (ps->p < ps->end && *ps->p == ']') {
    ps->p++;
    return true;
  }
  for (;;) {
    if (!parse_value(ps, depth + 1))
      return false;
    elements++;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == ',') {
      ps->p++;
      continue;
    }
    if (ps->p < ps->end && *ps->p == ']') {
      ps->p++;
      ps->d->nodes[arr].size = elements;
      ps->d->nodes[arr].end = ps->d->n;
      return true;
    }
    fail_at(ps, ps->p, TS_ERR_INVALID, "',' or ']' expected");
    return false;
  }
}

/* One value after optional whitespace; depth is its nesting level, 1 at
 * the top (jansson counts every value, scalars too). */
static bool parse_value(struct parser *ps, unsigned depth) {
  skip_ws(ps);
  if (depth > TS_JSON_MAX_DEPTH) {
    fail_at(ps, ps->p, TS_ERR_INVALID, "maximum parsing depth reached");
    return false;
  }
  if (ps->p >= ps->end) {
    fail_at(ps, ps->p, TS_ERR_INVALID, "premature end of input");
    return false;
  }
  switch (*ps->p) {
  case '{': return parse_object(ps, depth);
  case '[': return parse_array(ps, depth);
  case '"': return parse_string(ps);
  case 't':
    if (literal(ps, "true", 4))
      return add_node(ps, JDOC_TRUE) != JDOC_NONE;
    break;
  case 'f':
    if (literal(ps, "false", 5))
      return add_node(ps, JDOC_FALSE) != JDOC_NONE;
    break;
  case 'n':
    if (literal(ps, "null", 4))
      return add_node(ps, JDOC_NULL) != JDOC_NONE;
    break;
  default:
    if (*ps->p == '-' || (*ps->p >= '0' && *ps->p <= '9'))
      return parse_number(ps);
    break;
  }
  fail_at(ps, ps->p, TS_ERR_INVALID, "invalid token");
  return false;
}

enum ts_status jdoc_parse(const char *text, size_t len, struct jdoc **out,
                          struct json_parse_error *err) {
  struct json_parse_error ignored;
  *out = NULL;
  struct parser ps = {.p = (const unsigned char *)text,
                      .start = (const unsigned char *)text,
                      .end = (const unsigned char *)text + len,
                      .err = err ? err : &ignored,
                      .st = TS_OK};
  if (len >= UINT32_MAX) { /* node refs and string lengths are 32-bit */
    fail_at(&ps, ps.p, TS_ERR_INVALID, "text too long");
    return ps.st;
  }
  struct jdoc *d = ps.d = calloc(1, sizeof *d);
  /* A stream record's text takes about ten bytes a node. */
  if (d) {
    d->cap = (uint32_t)(len / 8 + 8);
    d->nodes = malloc((size_t)d->cap * sizeof *d->nodes);
    d->strings = malloc(len + 1);
  }
  if (!d || !d->nodes || !d->strings) {
    fail_at(&ps, ps.p, TS_ERR_NOMEM, "out of memory");
    goto fail;
  }
  if (!parse_value(&ps, 1))
    goto fail;
  skip_ws(&ps);
  if (ps.p != ps.end) {
    fail_at(&ps, ps.p, TS_ERR_INVALID, "end of input expected");
    goto fail;
  }
  *out = d;
  return TS_OK;
fail:
  jdoc_free(d);
  return ps.st;
}

void jdoc_free(struct jdoc *d) {
  if (!d)
    return;
  free(d->nodes);
  free(d->strings);
  free(d);
}

/* ---- reading ---- */

static const struct node *node(const struct jdoc *d, jdoc_ref v) {
  return d && v < d->n ? &d->nodes[v] : NULL;
}

jdoc_ref jdoc_root(const struct jdoc *d) { return d && d->n ? 0 : JDOC_NONE; }

enum jdoc_type jdoc_type(const struct jdoc *d, jdoc_ref v) {
  const struct node *x = node(d, v);
  return x ? (enum jdoc_type)x->type : JDOC_ABSENT;
}

const char *jdoc_string(const struct jdoc *d, jdoc_ref v) {
  const struct node *x = node(d, v);
  return x && x->type == JDOC_STRING ? x->v.s : NULL;
}

size_t jdoc_length(const struct jdoc *d, jdoc_ref v) {
  const struct node *x = node(d, v);
  return x && x->type == JDOC_STRING ? x->size : 0;
}

long long jdoc_integer(const struct jdoc *d, jdoc_ref v) {
  const struct node *x = node(d, v);
  return x && x->type == JDOC_INTEGER ? x->v.i : 0;
}

double jdoc_number(const struct jdoc *d, jdoc_ref v) {
  const struct node *x = node(d, v);
  if (x && x->type == JDOC_INTEGER)
    return (double)x->v.i;
  return x && x->type == JDOC_REAL ? x->v.d : 0.0;
}

size_t jdoc_count(const struct jdoc *d, jdoc_ref v) {
  const struct node *x = node(d, v);
  return x && (x->type == JDOC_ARRAY || x->type == JDOC_OBJECT) ? x->size : 0;
}

jdoc_ref jdoc_first(const struct jdoc *d, jdoc_ref container) {
  return jdoc_count(d, container) ? container + 1 : JDOC_NONE;
}

jdoc_ref jdoc_next(const struct jdoc *d, jdoc_ref container, jdoc_ref at) {
  const struct node *c = node(d, container);
  if (!c || at <= container || at >= c->end)
    return JDOC_NONE;
  /* An object's member: past the key's value. */
  jdoc_ref next = d->nodes[c->type == JDOC_OBJECT ? at + 1 : at].end;
  return next < c->end ? next : JDOC_NONE;
}

jdoc_ref jdoc_value(jdoc_ref key) {
  return key == JDOC_NONE ? JDOC_NONE : key + 1;
}

jdoc_ref jdoc_get(const struct jdoc *d, jdoc_ref obj, const char *name) {
  if (jdoc_type(d, obj) != JDOC_OBJECT)
    return JDOC_NONE;
  size_t len = strlen(name);
  jdoc_ref found = JDOC_NONE;
  for (jdoc_ref k = jdoc_first(d, obj); k != JDOC_NONE;
       k = jdoc_next(d, obj, k))
    if (d->nodes[k].size == len && memcmp(d->nodes[k].v.s, name, len) == 0)
      found = k + 1;
  return found;
}

/* ---- to jansson ---- */

json_t *jdoc_to_json(const struct jdoc *d, jdoc_ref v) {
  const struct node *x = node(d, v);
  if (!x)
    return NULL;
  switch ((enum jdoc_type)x->type) {
  case JDOC_NULL: return json_null();
  case JDOC_FALSE: return json_false();
  case JDOC_TRUE: return json_true();
  case JDOC_INTEGER: return json_integer(x->v.i);
  case JDOC_REAL: return json_real(x->v.d);
  case JDOC_STRING: return json_stringn_nocheck(x->v.s, x->size);
  case JDOC_ARRAY: {
    json_t *a = json_array();
    for (jdoc_ref e = jdoc_first(d, v); a && e != JDOC_NONE;
         e = jdoc_next(d, v, e))
      if (json_array_append_new(a, jdoc_to_json(d, e)) != 0) {
        json_decref(a);
        a = NULL;
      }
    return a;
  }
  case JDOC_OBJECT: {
    json_t *o = json_object();
    for (jdoc_ref k = jdoc_first(d, v); o && k != JDOC_NONE;
         k = jdoc_next(d, v, k))
      if (json_object_setn_new_nocheck(o, d->nodes[k].v.s, d->nodes[k].size,
                                       jdoc_to_json(d, k + 1)) != 0) {
        json_decref(o);
        o = NULL;
      }
    return o;
  }
  case JDOC_ABSENT: break;
  }
  return NULL;
}

enum ts_status jdoc_from_json(const json_t *v, struct jdoc **out) {
  *out = NULL;
  char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
  if (!text)
    return TS_ERR_NOMEM;
  enum ts_status st = jdoc_parse(text, strlen(text), out, NULL);
  free(text);
  return st;
}
