#include "reply.h"

#include <stdlib.h>
#include <string.h>

#include "../common/buf.h"
#include "errors.h"

void reply_clear(struct reply *rep) {
  free(rep->body);
  free(rep->etag);
  memset(rep, 0, sizeof *rep);
}

void reply_json_take(struct reply *rep, unsigned status, json_t *value) {
  char *text = value ? json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
  json_decref(value);
  if (!text) {
    error_reply(rep, TS_E_INTERNAL, "could not build the response");
    return;
  }
  reply_clear(rep);
  rep->status = status;
  rep->content_type = "application/json";
  rep->body = text;
  rep->len = strlen(text);
}

void reply_buf_take(struct reply *rep, unsigned status, struct buf *b) {
  size_t len = 0;
  char *text = buf_take(b, &len);
  buf_free(b);
  if (!text) {
    error_reply(rep, TS_E_INTERNAL, "could not build the response");
    return;
  }
  reply_clear(rep);
  rep->status = status;
  rep->content_type = "application/json";
  rep->body = text;
  rep->len = len;
}
