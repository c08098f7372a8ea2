/* Connection guard: deadlines for whole phases of a connection, and room
 * for new clients when the connection limit nears.
 *
 * libmicrohttpd's timeout is an idle timeout that restarts with every
 * byte, so a client sending one byte every few seconds holds a connection
 * for ever (slowloris). The guard gives each phase a deadline that bytes
 * do not extend: the header block of a connection's first request, the
 * body, and the idle time between requests on a kept-alive connection
 * (which also covers the next request's header block). A connection past
 * its deadline is shut down; MHD then sees the end of the stream and
 * closes it. While a handler runs (or a worker applies a batch) there is
 * no guard deadline: those have their own.
 *
 * Near the limit (within limit/TS_CONN_RESERVE_DIVISOR of it) the reaper
 * evicts, at once: the longest-idle kept-alive connection first, then the
 * oldest one still sending its header block, then its body; only those
 * older than evict_min_age_ms, never one whose request is being handled.
 * The age is what tells a client from a slow one: a client has sent its
 * request by then (evicting at accept would be blind: MHD accepts a burst
 * before it reads any of it). So an idle or slow crowd cannot keep a new
 * client out. MHD's own limit, twice max_connections, is the hard one.
 *
 * Every function is thread-safe. */
#ifndef TS_SERVER_CONN_GUARD_H
#define TS_SERVER_CONN_GUARD_H

#include "../common/status.h"

struct conn_guard;
struct guarded_conn;

struct conn_guard_limits {
  unsigned max_connections;  /* the limit MHD enforces too */
  unsigned header_ms;        /* accept -> header block complete */
  unsigned body_ms;          /* header block -> body complete */
  unsigned idle_ms;          /* answer sent -> next header block complete */
  unsigned evict_min_age_ms; /* younger ones are not evicted */
};

/* Starts the reaper thread. *out is owned by the caller. */
enum ts_status conn_guard_new(const struct conn_guard_limits *limits,
                              struct conn_guard **out) TS_WARN_UNUSED;
/* Stops the reaper. Connections still registered are forgotten. */
void conn_guard_free(struct conn_guard *g);

/* A connection was accepted on socket fd: registers it (NULL when out of
 * memory: the connection is then simply not guarded); near the limit it
 * wakes the reaper. MHD's own limit is set above max_connections: MHD
 * splits it evenly among its threads, so it would refuse clients while the
 * process had room. */
struct guarded_conn *conn_guard_open(struct conn_guard *g, int fd);
/* The connection is being closed; must come before its socket is closed.
 * Accepts NULL. */
void conn_guard_close(struct conn_guard *g, struct guarded_conn *c);

/* Phase changes; each accepts NULL. */
void conn_guard_headers_done(struct conn_guard *g, struct guarded_conn *c);
void conn_guard_body_done(struct conn_guard *g, struct guarded_conn *c);
void conn_guard_answer_sent(struct conn_guard *g, struct guarded_conn *c);

#endif /* TS_SERVER_CONN_GUARD_H */
