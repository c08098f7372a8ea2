/* The fault proxy of fault_proxy.h: one thread accepts, one thread per
 * connection relays. */
#include "fault_proxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define PROXY_MAX_MESSAGE (8u * 1024u * 1024u)
#define PROXY_FAULT_SLOTS 4

struct fault_slot {
  char operation[64]; /* "" when the slot is free */
  enum e2e_fault fault;
  unsigned skip;     /* calls still to pass untouched first */
  unsigned left;     /* calls still to meet the fault */
  unsigned injected; /* calls that met it so far */
};

struct e2e_fault_proxy {
  int listen_fd;
  int upstream_port;
  char endpoint[64];
  pthread_t acceptor;
  pthread_mutex_t lock; /* guards what follows */
  char hold_operation[64];
  unsigned hold_ms;
  unsigned held;
  unsigned in_flight, peak; /* calls read and not yet answered */
  struct fault_slot faults[PROXY_FAULT_SLOTS];
  int refs; /* the proxy's owner and each relay */
};

struct relay {
  struct e2e_fault_proxy *p;
  int client;
};

static void proxy_unref(struct e2e_fault_proxy *p) {
  pthread_mutex_lock(&p->lock);
  bool last = --p->refs == 0;
  pthread_mutex_unlock(&p->lock);
  if (last) {
    pthread_mutex_destroy(&p->lock);
    free(p);
  }
}

static bool send_all(int fd, const char *data, size_t len) {
  while (len) {
    ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
    if (n <= 0)
      return false;
    data += n;
    len -= (size_t)n;
  }
  return true;
}

/* The value of header `name` in the header block head[0..len), or NULL. */
static const char *header_in(const char *head, size_t len, const char *name,
                             size_t *value_len) {
  size_t nlen = strlen(name);
  for (const char *line = head; line < head + len;) {
    const char *eol = memchr(line, '\n', (size_t)(head + len - line));
    if (!eol)
      break;
    if ((size_t)(eol - line) > nlen && line[nlen] == ':' &&
        strncasecmp(line, name, nlen) == 0) {
      const char *v = line + nlen + 1;
      while (v < eol && (*v == ' ' || *v == '\t'))
        v++;
      const char *end = eol;
      while (end > v && (end[-1] == '\r' || end[-1] == ' '))
        end--;
      *value_len = (size_t)(end - v);
      return v;
    }
    line = eol + 1;
  }
  return NULL;
}

/* Reads one HTTP message (header block and a Content-Length body) into a
 * malloc'ed *out; false when the peer closed or sent what we do not
 * relay. */
static bool read_message(int fd, char **out, size_t *out_len) {
  size_t cap = 16384, len = 0, head = 0, total = 0;
  char *b = malloc(cap);
  while (b) {
    if (head && len >= total) {
      *out = b;
      *out_len = total;
      return true;
    }
    if (len == cap) {
      char *nb = cap < PROXY_MAX_MESSAGE ? realloc(b, cap * 2) : NULL;
      if (!nb)
        break;
      b = nb;
      cap *= 2;
    }
    ssize_t n = recv(fd, b + len, cap - len, 0);
    if (n <= 0)
      break;
    len += (size_t)n;
    if (!head) {
      char *end = memmem(b, len, "\r\n\r\n", 4);
      if (!end)
        continue;
      head = (size_t)(end - b) + 4;
      size_t vlen = 0;
      const char *cl = header_in(b, head, "Content-Length", &vlen);
      if (header_in(b, head, "Transfer-Encoding", &vlen))
        break;
      total = head + (cl ? strtoul(cl, NULL, 10) : 0);
      if (total > PROXY_MAX_MESSAGE)
        break;
    }
  }
  free(b);
  return false;
}

static int connect_loopback(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_port = htons((uint16_t)port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
    close(fd);
    fd = -1;
  }
  return fd;
}

/* True when target (tlen bytes, "DynamoDB_20120810.PutItem") names op. */
static bool target_is(const char *target, size_t tlen, const char *op) {
  size_t olen = strlen(op);
  return target && olen && tlen > olen && target[tlen - olen - 1] == '.' &&
         memcmp(target + tlen - olen, op, olen) == 0;
}

/* Takes one call's fault for target, if any is armed; *hold_ms the wait
 * before its answer. */
static enum e2e_fault fault_take(struct e2e_fault_proxy *p, const char *target,
                                 size_t tlen, unsigned *hold_ms) {
  enum e2e_fault f = E2E_FAULT_NONE;
  *hold_ms = 0;
  pthread_mutex_lock(&p->lock);
  if (p->hold_ms && target_is(target, tlen, p->hold_operation)) {
    *hold_ms = p->hold_ms;
    p->held++;
  }
  for (size_t i = 0; i < PROXY_FAULT_SLOTS; i++) {
    struct fault_slot *s = &p->faults[i];
    if (s->left && target_is(target, tlen, s->operation)) {
      if (s->skip) {
        s->skip--;
        break;
      }
      s->left--;
      s->injected++;
      f = s->fault;
      break;
    }
  }
  pthread_mutex_unlock(&p->lock);
  return f;
}

/* An answer of our own: status line, JSON body, Content-Length. */
static bool answer(int fd, int status, const char *reason, const char *json) {
  char head[256];
  size_t len = strlen(json);
  int n = snprintf(head, sizeof head,
                   "HTTP/1.1 %d %s\r\n"
                   "Content-Type: application/x-amz-json-1.0\r\n"
                   "x-amzn-RequestId: fault-proxy\r\n"
                   "Content-Length: %zu\r\n\r\n",
                   status, reason, len);
  return n > 0 && (size_t)n < sizeof head && send_all(fd, head, (size_t)n) &&
         send_all(fd, json, len);
}

static bool answer_json(int fd, json_t *body) {
  char *text = json_dumps(body, JSON_COMPACT);
  bool ok = text && answer(fd, 200, "OK", text);
  free(text);
  return ok;
}

/* The offset of the body in an HTTP message of len bytes. */
static size_t body_offset(const char *msg, size_t len) {
  const char *end = memmem(msg, len, "\r\n\r\n", 4);
  return end ? (size_t)(end - msg) + 4 : len;
}

/* The request msg with its body replaced by text: the header block without
 * its Content-Length, then the new one. malloc'd into *out. */
static bool rebuild_request(const char *msg, size_t len, const char *text,
                            char **out, size_t *out_len) {
  size_t head = body_offset(msg, len), tlen = strlen(text), n = 0;
  char *b = malloc(head + tlen + 64);
  if (!b)
    return false;
  for (const char *line = msg; line < msg + head - 2;) {
    const char *eol = memchr(line, '\n', (size_t)(msg + head - line));
    size_t l = (size_t)(eol - line) + 1;
    if (!(l > 15 && strncasecmp(line, "Content-Length:", 15) == 0)) {
      memcpy(b + n, line, l);
      n += l;
    }
    line = eol + 1;
  }
  n += (size_t)snprintf(b + n, 64, "Content-Length: %zu\r\n\r\n", tlen);
  memcpy(b + n, text, tlen);
  *out = b;
  *out_len = n + tlen;
  return true;
}

/* Moves every second item of each table's list in RequestItems (the item
 * when it is alone) into a new object of the same shape, *kept. For
 * BatchGetItem a table's value is {"Keys": [...], ...}: the rest of it
 * (ConsistentRead, ProjectionExpression) is copied along; for
 * BatchWriteItem it is the list itself. Tables left without items are
 * removed from the request. */
static void split_items(json_t *request_items, bool get, json_t **kept) {
  *kept = json_object();
  const char *table;
  json_t *v, *tmp;
  json_object_foreach_safe(request_items, tmp, table, v) {
    json_t *list = get ? json_object_get(v, "Keys") : v;
    size_t n = json_array_size(list);
    if (!n)
      continue;
    json_t *moved = json_array();
    json_t *left = json_array();
    for (size_t i = 0; i < n; i++)
      json_array_append(n == 1 || i % 2 ? moved : left,
                        json_array_get(list, i));
    if (get) {
      json_t *copy = json_copy(v);
      json_object_set_new(copy, "Keys", moved);
      json_object_set_new(*kept, table, copy);
      json_object_set_new(v, "Keys", json_incref(left));
    } else {
      json_object_set_new(*kept, table, moved);
      json_object_set(request_items, table, left);
    }
    if (!json_array_size(left))
      json_object_del(request_items, table);
    json_decref(left);
  }
}

/* Relays one BatchGetItem / BatchWriteItem with part of its items kept
 * back and returned as unprocessed. False when the connection is done. */
static bool relay_unprocessed(int client, int up, const char *req,
                              size_t req_len, bool get) {
  size_t off = body_offset(req, req_len);
  json_t *rq = json_loadb(req + off, req_len - off, 0, NULL);
  json_t *items = json_object_get(rq, "RequestItems");
  json_t *kept = NULL, *ans = NULL;
  char *text = NULL, *fwd = NULL, *raw = NULL;
  size_t fwd_len, raw_len;
  bool ok = false;
  if (!json_is_object(items))
    goto out;
  split_items(items, get, &kept);
  const char *unprocessed = get ? "UnprocessedKeys" : "UnprocessedItems";
  if (json_object_size(items) == 0) {
    /* Nothing left to pass on: every item is unprocessed. */
    ans = json_object();
    if (get) {
      json_t *responses = json_object();
      const char *table;
      json_t *v;
      json_object_foreach(kept, table, v)
          json_object_set_new(responses, table, json_array());
      json_object_set_new(ans, "Responses", responses);
    }
  } else {
    text = json_dumps(rq, JSON_COMPACT);
    if (!text || !rebuild_request(req, req_len, text, &fwd, &fwd_len) ||
        !send_all(up, fwd, fwd_len) || !read_message(up, &raw, &raw_len))
      goto out;
    size_t aoff = body_offset(raw, raw_len);
    ans = json_loadb(raw + aoff, raw_len - aoff, 0, NULL);
    if (!json_is_object(ans) || strncmp(raw, "HTTP/1.1 200", 12) != 0) {
      /* An error: pass it on as it came. */
      ok = send_all(client, raw, raw_len);
      goto out;
    }
  }
  json_t *have = json_object_get(ans, unprocessed);
  if (json_is_object(have))
    json_object_update_missing(have, kept);
  else
    json_object_set(ans, unprocessed, kept);
  ok = answer_json(client, ans);
out:
  json_decref(rq);
  json_decref(kept);
  json_decref(ans);
  free(text);
  free(fwd);
  free(raw);
  return ok;
}

static void in_flight_end(struct e2e_fault_proxy *p, bool *counted) {
  if (!*counted)
    return;
  *counted = false;
  pthread_mutex_lock(&p->lock);
  p->in_flight--;
  pthread_mutex_unlock(&p->lock);
}

static void *relay_main(void *arg) {
  struct relay *r = arg;
  struct e2e_fault_proxy *p = r->p;
  int up = connect_loopback(p->upstream_port);
  char *req = NULL, *ans = NULL;
  size_t req_len, ans_len;
  while (up >= 0 && read_message(r->client, &req, &req_len)) {
    size_t tlen = 0;
    const char *target = header_in(req, req_len, "X-Amz-Target", &tlen);
    unsigned wait_ms;
    bool counted = true;
    pthread_mutex_lock(&p->lock);
    if (++p->in_flight > p->peak)
      p->peak = p->in_flight;
    pthread_mutex_unlock(&p->lock);
    enum e2e_fault f = fault_take(p, target, tlen, &wait_ms);
    bool ok;
    switch (f) {
    case E2E_FAULT_THROTTLE:
      ok = answer(r->client, 400, "Bad Request",
                  "{\"__type\":\"com.amazonaws.dynamodb.v20120810#"
                  "ProvisionedThroughputExceededException\",\"message\":"
                  "\"The level of configured provisioned throughput for the "
                  "table was exceeded (fault proxy)\"}");
      break;
    case E2E_FAULT_UNPROCESSED:
      ok = relay_unprocessed(r->client, up, req, req_len,
                             target_is(target, tlen, "BatchGetItem"));
      break;
    case E2E_FAULT_LOSE_ANSWER:
      /* The write lands; its caller never hears. */
      (void)(send_all(up, req, req_len) && read_message(up, &ans, &ans_len));
      ok = false;
      break;
    case E2E_FAULT_FAIL_AFTER:
      ok = send_all(up, req, req_len) && read_message(up, &ans, &ans_len) &&
           answer(r->client, 500, "Internal Server Error",
                  "{\"__type\":\"com.amazonaws.dynamodb.v20120810#"
                  "InternalServerError\",\"message\":\"Internal server "
                  "error (fault proxy)\"}");
      break;
    case E2E_FAULT_SLOW:
      wait_ms += E2E_FAULT_SLOW_MS;
      /* fall through */
    case E2E_FAULT_NONE:
    default:
      ok = send_all(up, req, req_len) && read_message(up, &ans, &ans_len);
      if (ok && wait_ms)
        e2e_sleep_ms(wait_ms);
      /* Out of flight before the answer goes: the place it frees in the
       * caller may carry the next call before this thread runs again. */
      in_flight_end(p, &counted);
      ok = ok && send_all(r->client, ans, ans_len);
      break;
    }
    in_flight_end(p, &counted);
    free(req);
    free(ans);
    req = ans = NULL;
    if (!ok)
      break;
  }
  if (up >= 0)
    close(up);
  close(r->client);
  proxy_unref(p);
  free(r);
  return NULL;
}

static void *acceptor_main(void *arg) {
  struct e2e_fault_proxy *p = arg;
  for (;;) {
    int c = accept4(p->listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (c < 0) {
      if (errno == EINTR || errno == ECONNABORTED)
        continue;
      break; /* the listening socket was shut down: stop */
    }
    struct relay *r = malloc(sizeof *r);
    pthread_t t;
    if (r) {
      *r = (struct relay){.p = p, .client = c};
      pthread_mutex_lock(&p->lock);
      p->refs++;
      pthread_mutex_unlock(&p->lock);
    }
    if (!r || pthread_create(&t, NULL, relay_main, r) != 0) {
      if (r) {
        free(r);
        proxy_unref(p);
      }
      close(c);
      continue;
    }
    pthread_detach(t);
  }
  return NULL;
}

enum ts_status e2e_fault_proxy_start(const struct e2e_dynalite *d,
                                     struct e2e_fault_proxy **out) {
  *out = NULL;
  const char *ep = e2e_dynalite_endpoint(d);
  const char *colon = strrchr(ep, ':');
  char *end = NULL;
  long port = colon ? strtol(colon + 1, &end, 10) : 0;
  if (port <= 0 || port > 65535 || !end || *end)
    return TS_ERR_INVALID;
  struct e2e_fault_proxy *p = calloc(1, sizeof *p);
  if (!p)
    return TS_ERR_NOMEM;
  p->upstream_port = (int)port;
  p->refs = 1;
  pthread_mutex_init(&p->lock, NULL);
  p->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t alen = sizeof a;
  if (p->listen_fd < 0 || bind(p->listen_fd, (struct sockaddr *)&a, alen) ||
      listen(p->listen_fd, 64) ||
      getsockname(p->listen_fd, (struct sockaddr *)&a, &alen))
    goto fail;
  snprintf(p->endpoint, sizeof p->endpoint, "http://127.0.0.1:%d",
           ntohs(a.sin_port));
  if (pthread_create(&p->acceptor, NULL, acceptor_main, p) != 0)
    goto fail;
  *out = p;
  return TS_OK;
fail:
  if (p->listen_fd >= 0)
    close(p->listen_fd);
  proxy_unref(p);
  return TS_ERR_UNAVAILABLE;
}

const char *e2e_fault_proxy_endpoint(const struct e2e_fault_proxy *p) {
  return p->endpoint;
}

void e2e_fault_proxy_hold(struct e2e_fault_proxy *p, const char *operation,
                          unsigned ms) {
  pthread_mutex_lock(&p->lock);
  snprintf(p->hold_operation, sizeof p->hold_operation, "%s", operation);
  p->hold_ms = ms;
  pthread_mutex_unlock(&p->lock);
}

unsigned e2e_fault_proxy_peak(struct e2e_fault_proxy *p) {
  pthread_mutex_lock(&p->lock);
  unsigned n = p->peak;
  pthread_mutex_unlock(&p->lock);
  return n;
}

unsigned e2e_fault_proxy_held(struct e2e_fault_proxy *p) {
  pthread_mutex_lock(&p->lock);
  unsigned n = p->held;
  pthread_mutex_unlock(&p->lock);
  return n;
}

/* The slot of operation, or a free one when create; NULL when none. Called
 * with the lock held. */
static struct fault_slot *slot_of(struct e2e_fault_proxy *p,
                                  const char *operation, bool create) {
  for (size_t i = 0; i < PROXY_FAULT_SLOTS; i++)
    if (strcmp(p->faults[i].operation, operation) == 0)
      return &p->faults[i];
  for (size_t i = 0; create && i < PROXY_FAULT_SLOTS; i++)
    if (!p->faults[i].operation[0])
      return &p->faults[i];
  return NULL;
}

void e2e_fault_proxy_inject(struct e2e_fault_proxy *p, const char *operation,
                            enum e2e_fault fault, unsigned count) {
  e2e_fault_proxy_inject_after(p, operation, fault, count, 0);
}

void e2e_fault_proxy_inject_after(struct e2e_fault_proxy *p,
                                  const char *operation, enum e2e_fault fault,
                                  unsigned count, unsigned skip) {
  pthread_mutex_lock(&p->lock);
  struct fault_slot *s =
      operation && *operation ? slot_of(p, operation, true) : NULL;
  if (s) {
    snprintf(s->operation, sizeof s->operation, "%s", operation);
    s->fault = fault;
    s->left = fault == E2E_FAULT_NONE ? 0 : count;
    s->skip = s->left ? skip : 0;
  }
  pthread_mutex_unlock(&p->lock);
}

unsigned e2e_fault_proxy_injected(struct e2e_fault_proxy *p,
                                  const char *operation) {
  pthread_mutex_lock(&p->lock);
  struct fault_slot *s = slot_of(p, operation, false);
  unsigned n = s ? s->injected : 0;
  pthread_mutex_unlock(&p->lock);
  return n;
}

void e2e_fault_proxy_stop(struct e2e_fault_proxy *p) {
  if (!p)
    return;
  shutdown(p->listen_fd, SHUT_RDWR); /* accept() returns */
  pthread_join(p->acceptor, NULL);
  close(p->listen_fd);
  proxy_unref(p);
}
