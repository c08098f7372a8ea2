/* The worker pool: a ring of jobs under one mutex. */
#include "workers.h"

#include <pthread.h>
#include <stdlib.h>

struct job {
  workers_fn fn;
  void *arg;
};

struct workers {
  pthread_mutex_t mu;
  pthread_cond_t cv; /* a job was queued, or stopping */
  struct job *ring;
  size_t cap, head, len; /* the queue: ring[head .. head+len) */
  size_t pending;        /* reserved and not finished */
  size_t limit;          /* threads + max_waiting */
  bool stopping;
  pthread_t *threads;
  unsigned n_threads;
};

static void *worker_main(void *arg) {
  struct workers *w = arg;
  pthread_mutex_lock(&w->mu);
  for (;;) {
    while (w->len == 0 && !w->stopping)
      pthread_cond_wait(&w->cv, &w->mu);
    if (w->len == 0) /* stopping, and nothing left to run */
      break;
    struct job j = w->ring[w->head];
    w->head = (w->head + 1) % w->cap;
    w->len--;
    pthread_mutex_unlock(&w->mu);
    j.fn(j.arg);
    pthread_mutex_lock(&w->mu);
    w->pending--;
  }
  pthread_mutex_unlock(&w->mu);
  return NULL;
}

enum ts_status workers_new(unsigned threads, size_t max_waiting,
                           struct workers **out) {
  *out = NULL;
  if (threads == 0)
    return TS_ERR_INVALID;
  struct workers *w = calloc(1, sizeof *w);
  if (!w)
    return TS_ERR_NOMEM;
  w->limit = threads + max_waiting;
  w->cap = w->limit; /* every reserved job fits in the ring */
  w->ring = calloc(w->cap, sizeof *w->ring);
  w->threads = calloc(threads, sizeof *w->threads);
  if (!w->ring || !w->threads || pthread_mutex_init(&w->mu, NULL) != 0) {
    free(w->ring);
    free(w->threads);
    free(w);
    return TS_ERR_NOMEM;
  }
  if (pthread_cond_init(&w->cv, NULL) != 0) {
    pthread_mutex_destroy(&w->mu);
    free(w->ring);
    free(w->threads);
    free(w);
    return TS_ERR_NOMEM;
  }
  for (; w->n_threads < threads; w->n_threads++)
    if (pthread_create(&w->threads[w->n_threads], NULL, worker_main, w) != 0)
      break;
  if (w->n_threads == 0) {
    workers_free(w);
    return TS_ERR_NOMEM;
  }
  *out = w;
  return TS_OK;
}

bool workers_idle(struct workers *w) {
  pthread_mutex_lock(&w->mu);
  bool idle = w->pending == 0;
  pthread_mutex_unlock(&w->mu);
  return idle;
}

bool workers_reserve(struct workers *w) {
  pthread_mutex_lock(&w->mu);
  bool ok = !w->stopping && w->pending < w->limit;
  if (ok)
    w->pending++;
  pthread_mutex_unlock(&w->mu);
  return ok;
}

void workers_submit(struct workers *w, workers_fn fn, void *arg) {
  pthread_mutex_lock(&w->mu);
  /* pending counts this job's reservation, so len < cap here. */
  w->ring[(w->head + w->len) % w->cap] = (struct job){fn, arg};
  w->len++;
  pthread_cond_signal(&w->cv);
  pthread_mutex_unlock(&w->mu);
}

void workers_free(struct workers *w) {
  if (!w)
    return;
  pthread_mutex_lock(&w->mu);
  w->stopping = true;
  pthread_cond_broadcast(&w->cv);
  pthread_mutex_unlock(&w->mu);
  for (unsigned i = 0; i < w->n_threads; i++)
    pthread_join(w->threads[i], NULL);
  pthread_cond_destroy(&w->cv);
  pthread_mutex_destroy(&w->mu);
  free(w->ring);
  free(w->threads);
  free(w);
}
