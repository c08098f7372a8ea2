/* What a handler produces: status, body and the few headers we send. The
 * HTTP layer turns it into an MHD response and frees it. */
#ifndef TS_SERVER_REPLY_H
#define TS_SERVER_REPLY_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct buf;

/* What the log and the metrics record for a request whose connection
 * closed before any answer was made (nginx's 499); never sent. */
#define HTTP_CLIENT_CLOSED 499u

struct reply {
  unsigned status;          /* 0 until a handler set it */
  const char *content_type; /* static string */
  char *body;               /* owned, may be NULL */
  const void *static_body;  /* instead of body: data that outlives the
                               reply (compiled-in files) */
  size_t len;
  unsigned retry_after_s; /* > 0: send Retry-After */
  char allow[64];         /* sent as Allow when not empty (405) */
  char *etag;             /* owned; sent as ETag */
  bool challenge;         /* 401: send WWW-Authenticate */
  bool close;             /* send Connection: close and close after */
};

void reply_clear(struct reply *rep);
/* Sets status and a JSON body from `value`, which is taken (decref'd). */
void reply_json_take(struct reply *rep, unsigned status, json_t *value);
/* Sets status and takes the buffer's text as an application/json body;
 * a failed buffer becomes a 500 problem. */
void reply_buf_take(struct reply *rep, unsigned status, struct buf *b);

#endif /* TS_SERVER_REPLY_H */
