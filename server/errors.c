#include "errors.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "../common/bounds.h"
#include "../common/buf.h"
#include "reply.h"
#include "urlcode.h"

struct entry {
  const char *code;
  unsigned status;
  const char *title;
};

static const struct entry registry[TS_E__COUNT] = {
#define X(name, code, status, title) [TS_E_##name] = {code, status, title},
#include "errors.def"
#undef X
};

const char *error_code(enum ts_error e) { return registry[e].code; }
unsigned error_http_status(enum ts_error e) { return registry[e].status; }

void error_reply(struct reply *rep, enum ts_error e, const char *detail_fmt,
                 ...) {
  char detail[TS_MAX_REASON_BYTES];
  va_list ap;
  va_start(ap, detail_fmt);
  vsnprintf(detail, sizeof detail, detail_fmt, ap);
  va_end(ap);
  /* The detail may quote the request (a method, a media type): keep the
   * body valid JSON whatever bytes came in or where the cut fell. */
  utf8_sanitize(detail);

  const struct entry *en = &registry[e];
  struct buf b;
  buf_init(&b, 2 * TS_MAX_REASON_BYTES + 512);
  buf_addf(&b,
           "{\"type\":\"urn:tourney-stats:problem:%s\",\"title\":", en->code);
  buf_add_json_string(&b, en->title);
  buf_addf(&b, ",\"status\":%u,\"detail\":", en->status);
  buf_add_json_string(&b, detail);
  buf_addf(&b, ",\"code\":\"%s\"}", en->code);

  reply_clear(rep);
  rep->status = en->status;
  rep->content_type = "application/problem+json";
  rep->body = buf_take(&b, &rep->len);
  buf_free(&b);
  if (en->status == 503 || en->status == 429)
    rep->retry_after_s = TS_RETRY_AFTER_S;
}

enum ts_error error_from_status(enum ts_status st) {
  switch (st) {
  case TS_ERR_NOT_FOUND: return TS_E_NOT_FOUND;
  case TS_ERR_RETRY:
  case TS_ERR_UNAVAILABLE: return TS_E_STORE_UNAVAILABLE;
  default: return TS_E_INTERNAL;
  }
}
