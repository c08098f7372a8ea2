#include "json_parse.h"

#include "jdoc.h"
#include "json_pool.h"

enum ts_status json_parse(const char *text, size_t len, json_t **out,
                          struct json_parse_error *err) {
  struct jdoc *d;
  *out = NULL;
  enum ts_status st = jdoc_parse(text, len, &d, err);
  if (st != TS_OK)
    return st;
  json_pool_install();
  json_pool_begin();
  *out = jdoc_to_json(d, jdoc_root(d));
  json_pool_end();
  jdoc_free(d);
  if (!*out && err)
    *err = (struct json_parse_error){"out of memory", 1, 1};
  return *out ? TS_OK : TS_ERR_NOMEM;
}
