/* Fuzzes the whole HTTP request path: each input is sent as raw bytes over
 * a loopback TCP connection to a real server (libmicrohttpd, the router,
 * the handlers, an SQLite store on a temp file), started once in this
 * process, so that AddressSanitizer and UBSan watch the server threads.
 *
 * Two servers run: one open, one with TS_INGEST_API_KEY "fuzz-key". An
 * input that mentions credentials ("authorization:" or "x-api-key", any
 * case) goes to the keyed one, so that the key check (x-api-key, Basic
 * password) is fuzzed and ingestion is not blocked for the rest.
 *
 * The client writes the input and then TERMINATOR, half-closes, and reads
 * until the server closes. The terminator is there because libmicrohttpd
 * 0.9.75 does not notice a client's half-close while it waits for the next
 * request line of a keep-alive connection (it would wait for the 30 s
 * idle timeout): blank lines end any unfinished header block, and the
 * malformed request line after them makes the server answer 400 and close.
 * (Inside an unfinished body the terminator is body bytes; the half-close
 * then ends the exchange.)
 *
 * A Content-Length larger than the bytes that follow is lowered to their
 * count, so that mutated bodies reach the handlers instead of leaving the
 * server waiting. When the server still goes silent without closing, the
 * connection is reset and the server must answer GET /healthz at once.
 *
 * Invariants: no crash, leak or UB in the server; the server answers or
 * closes (or, after a stall, answers a probe) within ANSWER_DEADLINE_MS
 * (the contract wants answers well inside 5 s); what it sends is HTTP; bad
 * input never gets a 500. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/bounds.h"
#include "common/digest.h"
#include "common/log.h"
#include "input.h"
#include "server/app.h"
#include "server/config.h"
#include "server/http.h"
#include "store/store.h"

/* The server must answer or close within this after the request is sent
 * (the contract: well inside the 5 s of an EventBridge API destination). */
#define ANSWER_DEADLINE_MS 5000

static const char TERMINATOR[] = "\r\n\r\nFUZZ-END\r\n\r\n";

/* Silence this long after the last byte sent or received means the server
 * is waiting for more input (libmicrohttpd may miss a half-close in the
 * middle of a body and then waits for its idle timeout). */
#define STALL_MS 100

struct instance {
  struct config cfg;
  struct store *store;
  struct app app;
  struct http_server *srv;
  uint16_t port;
  char db_path[96];
};

static struct instance open_server, keyed_server;
static char dir[64];

static void remove_db(const char *path) {
  char p[128];
  unlink(path);
  snprintf(p, sizeof p, "%s-wal", path);
  unlink(p);
  snprintf(p, sizeof p, "%s-shm", path);
  unlink(p);
}

static void stop_all(void) {
  struct instance *all[] = {&open_server, &keyed_server};
  for (size_t i = 0; i < 2; i++) {
    http_server_stop(all[i]->srv, 1000);
    all[i]->srv = NULL;
    store_free(all[i]->store);
    all[i]->store = NULL;
    remove_db(all[i]->db_path);
  }
  rmdir(dir);
}

static void start(struct instance *x, const char *name, char *key) {
  static char bind[] = "127.0.0.1", store[] = "sqlite",
              table[] = "TaTourneyStats", dlt[] = "TaTourneyStatsDeadLetters",
              player[] = "player", score[] = "score", winner[] = "winner",
              level[] = "error";
  snprintf(x->db_path, sizeof x->db_path, "%s/%s.db", dir, name);
  x->cfg = (struct config){.bind = bind,
                           .port = 0,
                           .store = store,
                           .sqlite_path = x->db_path,
                           .table = table,
                           .dead_letter_table = dlt,
                           .ingest_api_key = key,
                           .threads = 2,
                           .ingest_workers = 2,
                           .ingest_queue = 8,
                           .max_connections = TS_DEFAULT_MAX_CONNECTIONS,
                           .header_timeout_s = TS_DEFAULT_HEADER_TIMEOUT_S,
                           .body_timeout_s = TS_DEFAULT_BODY_TIMEOUT_S,
                           .keepalive_s = TS_DEFAULT_KEEPALIVE_S,
                           .attr_player = player,
                           .attr_score = score,
                           .attr_winner = winner,
                           .log_level = level};
  struct store_options sopt = {.kind = store,
                               .sqlite_path = x->db_path,
                               .table = table,
                               .dead_letter_table = dlt};
  FUZZ_CHECK(store_open(&sopt, &x->store) == TS_OK, "store_open %s failed",
             x->db_path);
  x->app = (struct app){
      .cfg = &x->cfg,
      .store = x->store,
      .batch = {.names = {.player = player, .score = score, .winner = winner}}};
  FUZZ_CHECK(http_server_start(&x->app, &x->srv, &x->port) == TS_OK &&
                 x->port != 0,
             "http_server_start failed");
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  static char key[] = "fuzz-key";
  struct stat sb;
  /* tmpfs when there is one: the store writes on every accepted batch. */
  bool shm = stat("/dev/shm", &sb) == 0 && S_ISDIR(sb.st_mode) &&
             access("/dev/shm", W_OK) == 0;
  const char *base = shm ? "/dev/shm" : "/tmp";
  snprintf(dir, sizeof dir, "%s/ts-fuzz-http-XXXXXX", base);
  FUZZ_CHECK(mkdtemp(dir), "mkdtemp failed");
  signal(SIGPIPE, SIG_IGN); /* a server that closes early must not kill us */
  log_set_level("error");
  /* OpenSSL's one-time set-up (the digest of dead-letter ids) happens
   * here, not inside the first input that rejects a record. */
  char warm[DIGEST_HEX_BYTES];
  const char *part = "warm-up";
  digest_sha256_hex(&part, 1, warm);
  start(&open_server, "open", NULL);
  start(&keyed_server, "keyed", key);
  atexit(stop_all);
  return 0;
}

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool mentions_credentials(const uint8_t *data, size_t size) {
  static const char *const needles[] = {"authorization:", "x-api-key"};
  for (size_t k = 0; k < 2; k++) {
    size_t n = strlen(needles[k]);
    for (size_t i = 0; i + n <= size; i++)
      if (strncasecmp((const char *)data + i, needles[k], n) == 0)
        return true;
  }
  return false;
}

static int connect_to(uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  FUZZ_CHECK(fd >= 0, "socket: %s", strerror(errno));
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int rc = connect(fd, (struct sockaddr *)&sa, sizeof sa);
  if (rc != 0 && errno == EINTR) {
    /* libFuzzer's timer signal: the connect goes on; wait for its end. */
    struct pollfd pfd = {.fd = fd, .events = POLLOUT};
    int err = 0, ready;
    socklen_t len = sizeof err;
    while ((ready = poll(&pfd, 1, ANSWER_DEADLINE_MS)) < 0 && errno == EINTR)
      continue;
    if (ready > 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 &&
        err == 0)
      rc = 0;
    else
      errno = err ? err : ETIMEDOUT;
  }
  FUZZ_CHECK(rc == 0, "connect to the server: %s (did it die?)",
             strerror(errno));
  return fd;
}

/* Drops a connection with a reset, which the server notices at once (a
 * FIN it has already seen would not wake it). */
static void abandon(int fd) {
  struct linger lg = {.l_onoff = 1, .l_linger = 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  close(fd);
}

enum end { END_CLOSED, END_STALLED };

/* Sends msg, half-closes, reads into answer until the server closes, or
 * until nothing has come for stall_ms after the last byte was sent or
 * received (the server waits for input it will never get). Aborts when
 * even that does not happen within ANSWER_DEADLINE_MS. */
static enum end exchange(int fd, const uint8_t *msg, size_t size, char *answer,
                         size_t cap, size_t *got, long long stall_ms) {
  long long deadline = now_ms() + ANSWER_DEADLINE_MS, last = now_ms();
  size_t off = 0;
  bool write_open = true;
  *got = 0;
  for (;;) {
    if (write_open && off == size) {
      shutdown(fd, SHUT_WR);
      write_open = false;
      last = now_ms();
    }
    long long now = now_ms();
    FUZZ_CHECK(now < deadline,
               "the server neither answered nor closed within %d ms "
               "(sent %zu of %zu bytes, read %zu)",
               ANSWER_DEADLINE_MS, off, size, *got);
    long long wait = deadline - now;
    if (!write_open) {
      if (now - last >= stall_ms)
        return END_STALLED;
      if (last + stall_ms - now < wait)
        wait = last + stall_ms - now;
    }
    struct pollfd pfd = {.fd = fd,
                         .events = POLLIN | (write_open ? POLLOUT : 0)};
    int r = poll(&pfd, 1, (int)wait);
    if (r < 0 && errno == EINTR)
      continue;
    FUZZ_CHECK(r >= 0, "poll: %s", strerror(errno));
    if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
      char tmp[16384];
      ssize_t n = recv(fd, tmp, sizeof tmp, 0);
      if (n > 0) {
        size_t keep = (size_t)n < cap - *got ? (size_t)n : cap - *got;
        memcpy(answer + *got, tmp, keep);
        *got += keep;
        last = now_ms();
      } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
        return END_CLOSED; /* EOF, or a reset after an early answer */
      }
    }
    if (write_open && (pfd.revents & (POLLOUT | POLLERR | POLLHUP))) {
      ssize_t n = send(fd, msg + off, size - off, MSG_NOSIGNAL);
      if (n > 0)
        off += (size_t)n;
      else if (n < 0 && errno != EINTR && errno != EAGAIN)
        write_open = false; /* the server stopped reading: fine */
    }
  }
}

/* After a stall: the server must still answer a plain request, and close,
 * within the deadline. Not within STALL_MS: on a loaded machine (ASan,
 * fuzzers side by side) the close after a complete answer came later than
 * that, and silence after an answer is no stall. */
static void probe(uint16_t port) {
  static const char req[] =
      "GET /healthz HTTP/1.1\r\nHost: fuzz\r\nConnection: close\r\n\r\n";
  char answer[512];
  size_t got;
  long long t0 = now_ms();
  int fd = connect_to(port);
  enum end e = exchange(fd, (const uint8_t *)req, sizeof req - 1, answer,
                        sizeof answer - 1, &got, ANSWER_DEADLINE_MS);
  answer[got] = '\0';
  FUZZ_CHECK(e == END_CLOSED && strncmp(answer, "HTTP/1.1 200", 12) == 0,
             "after a stalled exchange the server does not answer "
             "/healthz (%s after %lld ms): %s",
             e == END_CLOSED ? "closed" : "silent", now_ms() - t0,
             got ? answer : "(nothing)");
  close(fd);
}

static bool digit(uint8_t c) { return c >= '0' && c <= '9'; }

/* Where the header block of a request ends (after its blank line), or 0. */
static size_t header_end(const uint8_t *d, size_t n) {
  for (size_t i = 0; i + 1 < n; i++) {
    if (d[i] == '\n' && d[i + 1] == '\n')
      return i + 2;
    if (i + 3 < n && d[i] == '\r' && d[i + 1] == '\n' && d[i + 2] == '\r' &&
        d[i + 3] == '\n')
      return i + 4;
  }
  return 0;
}

/* The message sent for an input: the input, with a Content-Length larger
 * than the bytes that follow the first header block lowered to that count
 * (a body that never completes only tests libmicrohttpd's patience, and
 * would cost STALL_MS per run), then TERMINATOR. Sets *len. */
static uint8_t *build_message(const uint8_t *data, size_t size, size_t *len) {
  size_t hend = header_end(data, size);
  size_t cl_at = 0, cl_end = 0; /* the digits of Content-Length */
  static const char name[] = "\ncontent-length:";
  for (size_t i = 0; hend && i + sizeof name - 1 < hend; i++) {
    if (strncasecmp((const char *)data + i, name, sizeof name - 1) != 0)
      continue;
    size_t k = i + sizeof name - 1;
    while (k < hend && data[k] == ' ')
      k++;
    size_t e = k;
    while (e < hend && e - k < 18 && digit(data[e]))
      e++;
    if (e > k && e < hend && (data[e] == '\r' || data[e] == '\n')) {
      cl_at = k;
      cl_end = e;
    }
    break;
  }
  unsigned long long declared = 0;
  for (size_t i = cl_at; i < cl_end; i++)
    declared = declared * 10 + (data[i] - '0');
  char digits[24] = "";
  size_t rest = size - hend;
  bool lower = cl_end > cl_at && declared > rest;
  if (lower)
    snprintf(digits, sizeof digits, "%zu", rest);
  size_t nd = strlen(digits);
  *len = size + sizeof TERMINATOR - 1 + (lower ? nd - (cl_end - cl_at) : 0);
  uint8_t *msg = malloc(*len);
  FUZZ_CHECK(msg, "out of memory");
  size_t o = 0;
  if (lower) {
    memcpy(msg, data, cl_at);
    memcpy(msg + cl_at, digits, nd);
    memcpy(msg + cl_at + nd, data + cl_end, size - cl_end);
    o = size - (cl_end - cl_at) + nd;
  } else if (size) {
    memcpy(msg, data, size);
    o = size;
  }
  memcpy(msg + o, TERMINATOR, sizeof TERMINATOR - 1);
  return msg;
}

static unsigned long exchanges, stalls;

static void report(void) {
  fprintf(stderr,
          "fuzz_http: %lu exchanges, %lu stalled (server kept the "
          "connection open; /healthz probed)\n",
          exchanges, stalls);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static bool registered;
  if (!registered) {
    atexit(report);
    registered = true;
  }
  struct instance *x =
      mentions_credentials(data, size) ? &keyed_server : &open_server;
  static char answer[1 << 16];
  size_t len, got;
  uint8_t *msg = build_message(data, size, &len);
  int fd = connect_to(x->port);
  enum end e =
      exchange(fd, msg, len, answer, sizeof answer - 1, &got, STALL_MS);
  free(msg);
  exchanges++;
  if (e == END_STALLED) {
    stalls++;
    abandon(fd);
    probe(x->port);
  } else {
    close(fd);
  }
  answer[got] = '\0';
  if (got == 0)
    return 0; /* closed without a word: allowed for garbage */
  FUZZ_CHECK(got >= 12 && strncmp(answer, "HTTP/1.", 7) == 0,
             "the answer is not HTTP: %.40s", answer);
  FUZZ_CHECK(strncmp(answer + 8, " 500", 4) != 0, "a request got 500:\n%.2000s",
             answer);
  return 0;
}
