/* A growable byte buffer with a hard maximum (curl's dynbuf idea): going
 * over the maximum is an error, not a realloc. After any failed append the
 * buffer is empty and stays failed, so callers check once at the end. */
#ifndef TS_COMMON_BUF_H
#define TS_COMMON_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"

struct buf {
  char *data; /* NUL-terminated while not failed */
  size_t len;
  size_t cap;
  size_t max;
  bool failed;
};

void buf_init(struct buf *b, size_t max);
void buf_free(struct buf *b);
/* Makes room for n more bytes at once (at most to the maximum), so that
 * appends up to that size do not reallocate. A hint: never fails the
 * buffer, an append still grows it as needed. */
void buf_reserve(struct buf *b, size_t n);
void buf_add(struct buf *b, const void *data, size_t len);
void buf_adds(struct buf *b, const char *s);
void buf_addf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Appends v in decimal, as printf's %lld would, without printf (the
 * stats of every player written go through it). */
void buf_add_i64(struct buf *b, int64_t v);
/* Appends s as a JSON string literal with quotes, escaping what JSON
 * requires. s must be valid UTF-8 (our inputs are validated before). */
void buf_add_json_string(struct buf *b, const char *s);
/* The same, or null when s is NULL. */
void buf_add_json_string_or_null(struct buf *b, const char *s);
/* Appends "key": to an object being written, after a ',' unless the text
 * is empty or has just opened an object or an array. key is ours (a
 * literal): it is not escaped. */
void buf_add_json_key(struct buf *b, const char *key);
/* TS_OK, or TS_ERR_TOO_LARGE / TS_ERR_NOMEM if an append failed. */
enum ts_status buf_status(const struct buf *b);
/* Hands the data to the caller (who frees it) and resets the buffer.
 * Returns NULL if the buffer failed. */
char *buf_take(struct buf *b, size_t *len);

#endif /* TS_COMMON_BUF_H */
