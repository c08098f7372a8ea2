/* Field reader and invariant check shared by the fuzz targets. */
#include "input.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/jdoc.h"

static char *copy_bytes(const uint8_t *p, size_t n) {
  char *s = malloc(n + 1);
  if (!s)
    fuzz_fail(__FILE__, __LINE__, "out of memory copying %zu bytes", n);
  if (n)
    memcpy(s, p, n);
  s[n] = '\0';
  return s;
}

char *input_take_cstr(struct input *in, size_t *len) {
  const uint8_t *nul = in->n ? memchr(in->p, 0, in->n) : NULL;
  size_t n = nul ? (size_t)(nul - in->p) : in->n;
  char *s = copy_bytes(in->p, n);
  size_t used = nul ? n + 1 : n;
  in->p += used;
  in->n -= used;
  if (len)
    *len = n;
  return s;
}

char *input_take_cstr_or_null(struct input *in) {
  return in->n ? input_take_cstr(in, NULL) : NULL;
}

uint8_t input_take_u8(struct input *in) {
  if (!in->n)
    return 0;
  uint8_t v = in->p[0];
  in->p++;
  in->n--;
  return v;
}

uint32_t input_take_u32(struct input *in) {
  uint32_t v = 0;
  for (int i = 0; i < 4; i++)
    v |= (uint32_t)input_take_u8(in) << (8 * i);
  return v;
}

uint64_t input_take_u64(struct input *in) {
  uint64_t lo = input_take_u32(in);
  return lo | (uint64_t)input_take_u32(in) << 32;
}

const uint8_t *input_take_rest(struct input *in, size_t *len) {
  const uint8_t *p = in->p;
  *len = in->n;
  in->p += in->n;
  in->n = 0;
  return p;
}

bool input_empty(const struct input *in) { return in->n == 0; }

uint64_t input_hash(const uint8_t *data, size_t size) {
  uint64_t h = 0xcbf29ce484222325u;
  for (size_t i = 0; i < size; i++) {
    h ^= data[i];
    h *= 0x100000001b3u;
  }
  return h;
}

void fuzz_fail(const char *file, int line, const char *fmt, ...) {
  va_list ap;
  fprintf(stderr, "fuzz invariant broken at %s:%d: ", file, line);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  abort();
}

struct jdoc *fuzz_doc_of(const struct json_t *j) {
  struct jdoc *d = NULL;
  enum ts_status st = j ? jdoc_from_json(j, &d) : TS_ERR_INVALID;
  FUZZ_CHECK(st != TS_ERR_NOMEM, "out of memory making a document");
  return d;
}
