/* Page cursors of every listing (handlers_util.h): one encoding, one
 * check before the store. */
#include <stdlib.h>
#include <string.h>

#include "../common/bounds.h"
#include "../common/buf.h"
#include "../server/urlcode.h"
#include "handlers_util.h"

enum ts_status handlers_cursor_decode(const char *text, const char *prefix,
                                      bool (*key_ok)(const char *key,
                                                     size_t len),
                                      char **key) {
  *key = NULL;
  if (!text)
    return TS_OK;
  if (strlen(text) > TS_MAX_CURSOR_BYTES)
    return TS_ERR_INVALID;
  char *raw = NULL;
  size_t len = 0;
  enum ts_status st = b64url_decode(text, strlen(text), &raw, &len);
  if (st != TS_OK)
    return st;
  size_t pl = strlen(prefix);
  if (len <= pl || memcmp(raw, prefix, pl) != 0 || memchr(raw, '\0', len) ||
      !key_ok(raw + pl, len - pl)) {
    free(raw);
    return TS_ERR_INVALID;
  }
  memmove(raw, raw + pl, len - pl + 1);
  *key = raw;
  return TS_OK;
}

enum ts_status handlers_cursor_encode(const char *prefix, const char *key,
                                      char **out) {
  struct buf b;
  buf_init(&b, TS_MAX_CURSOR_BYTES);
  buf_adds(&b, prefix);
  buf_adds(&b, key);
  enum ts_status st = buf_status(&b);
  if (st == TS_OK)
    st = b64url_encode(b.data, b.len, out);
  buf_free(&b);
  return st;
}
