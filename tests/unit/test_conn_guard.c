/* The connection guard on socket pairs: which connection gives way to a
 * new one near the limit, and which phases have a deadline. The guard shuts
 * a connection down; its peer end then reads the end of the stream. */
#include <errno.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "server/conn_guard.h"
#include "unit.h"

enum { LIMIT = 16, MAX_CONNS = LIMIT + 2 };

/* What a connection has done before the new one arrives. */
enum step { OPEN, HEADERS, BODY, HANDLED, IDLE };

struct pair {
  int ours, peer;
  struct guarded_conn *c;
};

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

static bool peer_sees_end(const struct pair *p) {
  char b;
  ssize_t n = recv(p->peer, &b, 1, MSG_DONTWAIT);
  return n == 0;
}

static void reach(struct conn_guard *g, struct pair *p, enum step s) {
  if (s >= HEADERS)
    conn_guard_headers_done(g, p->c);
  if (s >= BODY && s != BODY)
    conn_guard_body_done(g, p->c);
  if (s == IDLE)
    conn_guard_answer_sent(g, p->c);
}

static bool open_pair(struct conn_guard *g, struct pair *p) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
    return false;
  p->ours = sv[0];
  p->peer = sv[1];
  p->c = conn_guard_open(g, p->ours);
  return p->c != NULL;
}

static void close_pair(struct conn_guard *g, struct pair *p) {
  conn_guard_close(g, p->c);
  close(p->ours);
  close(p->peer);
}

/* LIMIT - 2 connections are open (one short of the reserve); their steps
 * are given oldest first, taken in that order a few ms apart; then a new
 * one arrives and the reaper makes room. `victim` is the index that must
 * give way (-1: none). The minimum age is 0 here except where a case says
 * otherwise; the new one is always too young. */
struct eviction_case {
  const char *name;
  enum step steps[LIMIT - 2];
  int victim;
  unsigned min_age_ms;
};

static void test_near_the_limit_idle_then_headers_then_body_give_way(void) {
  static const struct eviction_case cases[] = {
      {"an idle kept-alive connection goes before older header senders",
       {OPEN, OPEN, OPEN, OPEN, OPEN, OPEN, OPEN, OPEN, OPEN, OPEN, OPEN, OPEN,
        OPEN, IDLE},
       13,
       0},
      {"the longest idle goes first",
       {HANDLED, HANDLED, HANDLED, IDLE, HANDLED, HANDLED, HANDLED, IDLE,
        HANDLED, HANDLED, HANDLED, HANDLED, HANDLED, HANDLED},
       3,
       0},
      {"one sending headers goes before one sending a body",
       {HANDLED, HANDLED, HANDLED, HANDLED, HANDLED, BODY, HANDLED, HANDLED,
        HANDLED, OPEN, HANDLED, HANDLED, HANDLED, HANDLED},
       9,
       0},
      {"the oldest header sender goes first",
       {HANDLED, HANDLED, OPEN, HANDLED, HANDLED, OPEN, HANDLED, HANDLED,
        HANDLED, OPEN, HANDLED, HANDLED, HANDLED, HANDLED},
       2,
       0},
      {"those being handled stay; the newcomer still sending headers goes",
       {HANDLED, HANDLED, HANDLED, HANDLED, HANDLED, HANDLED, HANDLED, HANDLED,
        HANDLED, HANDLED, HANDLED, HANDLED, HANDLED, HANDLED},
       LIMIT - 2,
       0},
      {"one younger than the minimum age is not judged",
       {HANDLED, HANDLED, HANDLED, HANDLED, HANDLED, HANDLED, HANDLED, HANDLED,
        HANDLED, HANDLED, HANDLED, HANDLED, HANDLED, OPEN},
       -1,
       60000},
  };
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    const struct eviction_case *tc = &cases[k];
    struct conn_guard_limits lim = {LIMIT, 60000, 60000, 60000, tc->min_age_ms};
    struct conn_guard *g = NULL;
    CU_ASSERT_FATAL(conn_guard_new(&lim, &g) == TS_OK);
    struct pair pairs[LIMIT];
    size_t n = 0;
    for (; n < LIMIT - 2; n++) {
      CU_ASSERT_FATAL(open_pair(g, &pairs[n]));
      reach(g, &pairs[n], tc->steps[n]);
      sleep_ms(2); /* distinct ages */
    }
    sleep_ms(250); /* two reaper periods */
    for (size_t i = 0; i < n; i++)
      TS_CHECK_CASE(!peer_sees_end(&pairs[i]), tc->name,
                    "connection %zu closed below the reserve", i);
    CU_ASSERT_FATAL(open_pair(g, &pairs[n]));
    n++;
    sleep_ms(250);
    for (size_t i = 0; i < n; i++) {
      bool closed = peer_sees_end(&pairs[i]);
      TS_CHECK_CASE(closed == ((int)i == tc->victim), tc->name,
                    "connection %zu %s", i, closed ? "closed" : "still open");
    }
    for (size_t i = 0; i < n; i++)
      close_pair(g, &pairs[i]);
    conn_guard_free(g);
  }
}

/* Far over the limit, when every other one is being handled, nobody is
 * evicted (MHD's own limit, twice ours, refuses beyond). The minimum age
 * (100 ms) covers the instant between a pair's registration and its
 * request being handled, when it is a header sender the reaper may evict
 * (with 0 a reaper pass in that instant did, once in a CI run); the wait
 * afterwards is well past it, so every one is old enough to be evicted
 * but for being handled. */
static void test_over_the_limit_no_handled_one_is_ever_evicted(void) {
  struct conn_guard_limits lim = {LIMIT, 60000, 60000, 60000, 100};
  struct conn_guard *g = NULL;
  CU_ASSERT_FATAL(conn_guard_new(&lim, &g) == TS_OK);
  struct pair pairs[MAX_CONNS];
  for (size_t i = 0; i < MAX_CONNS; i++) {
    CU_ASSERT_FATAL(open_pair(g, &pairs[i]));
    reach(g, &pairs[i], HANDLED);
  }
  sleep_ms(400); /* past the minimum age, then two reaper periods */
  for (size_t i = 0; i < MAX_CONNS; i++)
    TS_CHECK_CASE(!peer_sees_end(&pairs[i]), "all handled",
                  "connection %zu closed", i);
  for (size_t i = 0; i < MAX_CONNS; i++)
    close_pair(g, &pairs[i]);
  conn_guard_free(g);
}

/* Bytes do not reach the guard, so a trickle cannot extend a deadline: a
 * phase ends by its budget whatever the peer sends. */
struct deadline_case {
  const char *name;
  enum step step;
  bool closed;
};

static void test_each_waiting_phase_ends_by_its_deadline(void) {
  static const struct deadline_case cases[] = {
      {"header block", OPEN, true},
      {"body", BODY, true},
      {"kept-alive idle", IDLE, true},
      {"being handled: no guard deadline", HANDLED, false},
  };
  enum { N = sizeof cases / sizeof cases[0] };
  struct conn_guard_limits lim = {LIMIT, 150, 150, 150, 0};
  struct conn_guard *g = NULL;
  CU_ASSERT_FATAL(conn_guard_new(&lim, &g) == TS_OK);
  struct pair pairs[N];
  for (size_t i = 0; i < N; i++) {
    CU_ASSERT_FATAL(open_pair(g, &pairs[i]));
    reach(g, &pairs[i], cases[i].step);
  }
  for (size_t i = 0; i < N; i++)
    TS_CHECK_CASE(!peer_sees_end(&pairs[i]), cases[i].name,
                  "closed before its deadline");
  sleep_ms(600); /* 150 ms + the reaper's period, with slack */
  for (size_t i = 0; i < N; i++)
    TS_CHECK_CASE(peer_sees_end(&pairs[i]) == cases[i].closed, cases[i].name,
                  "%s after its deadline",
                  cases[i].closed ? "still open" : "closed");
  for (size_t i = 0; i < N; i++)
    close_pair(g, &pairs[i]);
  conn_guard_free(g);
}

void suite_conn_guard(void) {
  TS_SUITE("conn_guard",
           TS_TEST(test_near_the_limit_idle_then_headers_then_body_give_way),
           TS_TEST(test_over_the_limit_no_handled_one_is_ever_evicted),
           TS_TEST(test_each_waiting_phase_ends_by_its_deadline));
}
