/* The connection guard: a list of open connections under one mutex and a
 * reaper thread that shuts down those past their phase's deadline.
 *
 * Shutting a socket down from another thread is safe here because MHD
 * notifies the close (conn_guard_close, which takes the same mutex) before
 * it closes the descriptor: while a connection is on the list, its fd is
 * its own and cannot have been reused. shutdown() only ends the stream;
 * MHD reads the end of file on its own thread and closes as usual. */
#include "conn_guard.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

#include "../common/bounds.h"
#include "../common/clock.h"
#include "metrics.h"

enum phase {
  PH_HEADERS, /* accepted, first header block not complete */
  PH_BODY,    /* header block complete, body arriving */
  PH_HANDLED, /* a handler or worker has the request: no guard deadline */
  PH_IDLE,    /* answer sent; kept alive for the next request */
};

struct guarded_conn {
  struct guarded_conn *prev, *next;
  int fd;
  enum phase phase;
  uint64_t since_ms;    /* start of the phase */
  uint64_t deadline_ms; /* 0: none */
  bool shut;            /* shut down by the guard; waiting for the close */
};

struct conn_guard {
  struct conn_guard_limits lim;
  pthread_mutex_t mu;
  pthread_cond_t cv; /* stopping, or crowded */
  struct guarded_conn *head;
  unsigned open; /* registered, shut or not */
  unsigned shut; /* shut down, waiting for MHD to close them */
  bool stopping;
  pthread_t reaper;
};

static const enum metrics_conn_close close_reason[] = {
    [PH_HEADERS] = METRICS_CONN_HEADER_DEADLINE,
    [PH_BODY] = METRICS_CONN_BODY_DEADLINE,
    [PH_IDLE] = METRICS_CONN_IDLE_DEADLINE,
};

static void shut(struct conn_guard *g, struct guarded_conn *c,
                 enum metrics_conn_close why) {
  c->shut = true;
  g->shut++;
  shutdown(c->fd, SHUT_RDWR);
  metrics_count_conn_closed(why);
}

/* Sets a phase and its deadline; mu held. */
static void enter(struct conn_guard *g, struct guarded_conn *c, enum phase p) {
  uint64_t now = clock_now_ms();
  unsigned budget = p == PH_HEADERS ? g->lim.header_ms
                    : p == PH_BODY  ? g->lim.body_ms
                    : p == PH_IDLE  ? g->lim.idle_ms
                                    : 0;
  c->phase = p;
  c->since_ms = now;
  c->deadline_ms = budget ? now + budget : 0;
}

/* The connection to give up near the limit, or NULL; mu held. The
 * longest-idle kept-alive one first, then the oldest still sending its
 * header block, then its body. Only those older than evict_min_age_ms are
 * judged: by then a client has sent its request and is being handled,
 * while a slow one is still sending. Never one being handled. */
static struct guarded_conn *victim(struct conn_guard *g, uint64_t now) {
  static const enum phase order[] = {PH_IDLE, PH_HEADERS, PH_BODY};
  for (size_t k = 0; k < sizeof order / sizeof order[0]; k++) {
    struct guarded_conn *best = NULL;
    for (struct guarded_conn *c = g->head; c; c = c->next) {
      if (c->shut || c->phase != order[k] ||
          now - c->since_ms < g->lim.evict_min_age_ms)
        continue;
      if (!best || c->since_ms < best->since_ms)
        best = c;
    }
    if (best)
      return best;
  }
  return NULL;
}

/* True when the connections not yet shut are within the reserve of the
 * limit; mu held. */
static bool crowded(const struct conn_guard *g) {
  unsigned reserve = g->lim.max_connections / TS_CONN_RESERVE_DIVISOR;
  if (reserve < 1)
    reserve = 1;
  return g->open - g->shut + reserve > g->lim.max_connections;
}

static void *reaper_main(void *arg) {
  struct conn_guard *g = arg;
  pthread_mutex_lock(&g->mu);
  while (!g->stopping) {
    struct timespec ts =
        clock_deadline_abs(CLOCK_MONOTONIC, TS_CONN_REAP_INTERVAL_MS);
    pthread_cond_timedwait(&g->cv, &g->mu, &ts);
    uint64_t now = clock_now_ms();
    for (struct guarded_conn *c = g->head; c; c = c->next)
      if (!c->shut && c->deadline_ms && now >= c->deadline_ms)
        shut(g, c, close_reason[c->phase]);
    struct guarded_conn *v;
    while (crowded(g) && (v = victim(g, now)) != NULL)
      shut(g, v, METRICS_CONN_EVICTED);
  }
  pthread_mutex_unlock(&g->mu);
  return NULL;
}

enum ts_status conn_guard_new(const struct conn_guard_limits *limits,
                              struct conn_guard **out) {
  *out = NULL;
  struct conn_guard *g = calloc(1, sizeof *g);
  if (!g)
    return TS_ERR_NOMEM;
  g->lim = *limits;
  bool cv_ok = clock_cond_init(&g->cv);
  if (!cv_ok || pthread_mutex_init(&g->mu, NULL) != 0) {
    if (cv_ok)
      pthread_cond_destroy(&g->cv);
    free(g);
    return TS_ERR_NOMEM;
  }
  if (pthread_create(&g->reaper, NULL, reaper_main, g) != 0) {
    pthread_mutex_destroy(&g->mu);
    pthread_cond_destroy(&g->cv);
    free(g);
    return TS_ERR_NOMEM;
  }
  *out = g;
  return TS_OK;
}

void conn_guard_free(struct conn_guard *g) {
  if (!g)
    return;
  pthread_mutex_lock(&g->mu);
  g->stopping = true;
  pthread_cond_signal(&g->cv);
  pthread_mutex_unlock(&g->mu);
  pthread_join(g->reaper, NULL);
  struct guarded_conn *c = g->head;
  while (c) {
    struct guarded_conn *next = c->next;
    free(c);
    c = next;
  }
  pthread_mutex_destroy(&g->mu);
  pthread_cond_destroy(&g->cv);
  free(g);
}

struct guarded_conn *conn_guard_open(struct conn_guard *g, int fd) {
  struct guarded_conn *c = calloc(1, sizeof *c);
  if (!c)
    return NULL;
  c->fd = fd;
  pthread_mutex_lock(&g->mu);
  enter(g, c, PH_HEADERS);
  c->next = g->head;
  if (g->head)
    g->head->prev = c;
  g->head = c;
  g->open++;
  if (crowded(g))
    pthread_cond_signal(&g->cv); /* the reaper evicts, now */
  pthread_mutex_unlock(&g->mu);
  return c;
}

void conn_guard_close(struct conn_guard *g, struct guarded_conn *c) {
  if (!c)
    return;
  pthread_mutex_lock(&g->mu);
  if (c->prev)
    c->prev->next = c->next;
  else
    g->head = c->next;
  if (c->next)
    c->next->prev = c->prev;
  g->open--;
  g->shut -= c->shut;
  pthread_mutex_unlock(&g->mu);
  free(c);
}

static void move_to(struct conn_guard *g, struct guarded_conn *c,
                    enum phase p) {
  if (!c)
    return;
  pthread_mutex_lock(&g->mu);
  enter(g, c, p);
  pthread_mutex_unlock(&g->mu);
}

void conn_guard_headers_done(struct conn_guard *g, struct guarded_conn *c) {
  move_to(g, c, PH_BODY);
}

void conn_guard_body_done(struct conn_guard *g, struct guarded_conn *c) {
  move_to(g, c, PH_HANDLED);
}

void conn_guard_answer_sent(struct conn_guard *g, struct guarded_conn *c) {
  move_to(g, c, PH_IDLE);
}
