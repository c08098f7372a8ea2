/* A fixed pool of threads taking jobs from a bounded queue. The HTTP
 * threads hand it the work that may block (ingestion waits for the store),
 * so that they stay free to answer /healthz, /readyz, /metrics and reads
 * whatever the store does; the bound is what turns overload into a fast
 * 429 instead of a pile of requests that all miss their deadline. */
#ifndef TS_SERVER_WORKERS_H
#define TS_SERVER_WORKERS_H

#include <stdbool.h>
#include <stddef.h>

#include "../common/status.h"

struct workers;
typedef void (*workers_fn)(void *arg);

/* Starts `threads` threads; at most `max_waiting` jobs wait beyond those
 * running. */
enum ts_status workers_new(unsigned threads, size_t max_waiting,
                           struct workers **out) TS_WARN_UNUSED;

/* Reserves room for one job: false when every thread is busy and
 * max_waiting jobs wait already. A reservation must be used by exactly
 * one workers_submit(). (Reserving first lets a caller prepare for the
 * job, e.g. suspend a connection, knowing the submit cannot fail.) */
bool workers_reserve(struct workers *w);
void workers_submit(struct workers *w, workers_fn fn, void *arg);

/* True when no job is reserved, waiting or running. */
bool workers_idle(struct workers *w);

/* Runs every job already submitted, then stops the threads. NULL is
 * ignored. */
void workers_free(struct workers *w);

#endif /* TS_SERVER_WORKERS_H */
