/* End-to-end harness: process control, HTTP client and answer checks. */
#include "harness.h"
#include "records.h"
#include "tests/unit/unit.h"

#include <ctype.h>
#include <pthread.h>

#include <openssl/evp.h>

#include <CUnit/CUnit.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* Bounds of the harness itself (not the service's). */
#define START_TIMEOUT_MS 15000L /* listening line + /healthz; ASan is slow */
#define STOP_TIMEOUT_MS 15000L  /* longer than the server's 10 s grace */
#define MAX_REPLY_BYTES (64u * 1024u * 1024u)
#define MAX_HEADER_BYTES (64u * 1024u)
#define LOG_TAIL_LINES 60
#define MAX_ENV 4096

/* ------------------------------------------------------------------ */
/* configuration                                                      */

static struct {
  const char *bin;
  const char *store;
  const char *requests;
  char prefix[64];
} cfg;

enum ts_status e2e_config_load(void) {
  cfg.bin = getenv("TS_TEST_BIN");
  cfg.store = getenv("TS_TEST_STORE");
  cfg.requests = getenv("TS_TEST_REQUESTS");
  if (!cfg.store || !*cfg.store)
    cfg.store = "sqlite";
  if (strcmp(cfg.store, "sqlite") != 0 && strcmp(cfg.store, "dynamodb") != 0) {
    fprintf(stderr, "TS_TEST_STORE must be sqlite or dynamodb, not %s\n",
            cfg.store);
    return TS_ERR_INVALID;
  }
  if (!cfg.bin || !*cfg.bin) {
    fprintf(stderr, "TS_TEST_BIN is not set (path of build/tourney-stats)\n");
    return TS_ERR_INVALID;
  }
  if (access(cfg.bin, X_OK) != 0) {
    fprintf(stderr, "TS_TEST_BIN=%s is not executable: %s\n", cfg.bin,
            strerror(errno));
    return TS_ERR_INVALID;
  }
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  snprintf(cfg.prefix, sizeof cfg.prefix, "e2e-%lld%03ld-%ld-",
           (long long)now.tv_sec, now.tv_nsec / 1000000L, (long)getpid());
  return TS_OK;
}

const char *e2e_store_kind(void) { return cfg.store; }
bool e2e_store_is_sqlite(void) { return strcmp(cfg.store, "sqlite") == 0; }
const char *e2e_requests_dir(void) { return cfg.requests; }
const char *e2e_bin(void) { return cfg.bin; }
const char *e2e_run_prefix(void) { return cfg.prefix; }

char *e2e_name(char *buf, size_t cap, const char *tag) {
  snprintf(buf, cap, "%s%s", cfg.prefix, tag);
  return buf;
}

#ifndef TS_E2E_TIME_SCALE
#define TS_E2E_TIME_SCALE 1
#endif
double e2e_time_scale(void) { return TS_E2E_TIME_SCALE; }

void e2e_sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

uint64_t e2e_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static long now_ms(void) { return (long)e2e_now_ms(); }

/* ------------------------------------------------------------------ */
/* folders and files                                                  */

enum ts_status e2e_dir_new(char **out) {
  const char *tmp = getenv("TMPDIR");
  char path[PATH_MAX];
  *out = NULL;
  if (!tmp || !*tmp)
    tmp = "/tmp";
  if (snprintf(path, sizeof path, "%s/ts-e2e-XXXXXX", tmp) >= (int)sizeof path)
    return TS_ERR_TOO_LARGE;
  if (!mkdtemp(path))
    return TS_ERR_IO;
  *out = strdup(path);
  return *out ? TS_OK : TS_ERR_NOMEM;
}

static int remove_entry(const char *path, const struct stat *sb, int flag,
                        struct FTW *ftw) {
  (void)sb;
  (void)flag;
  (void)ftw;
  remove(path);
  return 0;
}

void e2e_dir_remove(const char *dir) {
  if (dir)
    nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

enum ts_status e2e_read_file(const char *path, char **out, size_t *len) {
  enum ts_status st = TS_ERR_IO;
  char *buf = NULL;
  FILE *f = fopen(path, "rb");
  *out = NULL;
  *len = 0;
  if (!f)
    return TS_ERR_NOT_FOUND;
  if (fseek(f, 0, SEEK_END) != 0)
    goto out;
  long size = ftell(f);
  if (size < 0 || fseek(f, 0, SEEK_SET) != 0)
    goto out;
  buf = malloc((size_t)size + 1);
  if (!buf) {
    st = TS_ERR_NOMEM;
    goto out;
  }
  if (fread(buf, 1, (size_t)size, f) != (size_t)size)
    goto out;
  buf[size] = '\0';
  *out = buf;
  *len = (size_t)size;
  buf = NULL;
  st = TS_OK;
out:
  free(buf);
  fclose(f);
  return st;
}

/* True when entry ("NAME=value") names a variable that extra ("NAME=value"
 * list) sets again: the extra one wins, as getenv() would otherwise see
 * whichever comes first. */
static bool env_overridden(const char *entry, const char *const *extra) {
  const char *eq = strchr(entry, '=');
  size_t n = eq ? (size_t)(eq - entry) : strlen(entry);
  for (const char *const *x = extra; x && *x; x++)
    if (strncmp(*x, entry, n) == 0 && (*x)[n] == '=')
      return true;
  return false;
}

/* The environment of this process with the "NAME=value" entries of set
 * replacing or adding variables; the array (not the strings) is malloc'd. */
static char **env_with(const char *const *set) {
  size_t n = 0, k = 0;
  while (environ[n])
    n++;
  for (const char *const *x = set; x && *x; x++)
    k++;
  char **env = calloc(n + k + 1, sizeof *env);
  size_t m = 0;
  if (!env)
    return NULL;
  for (size_t i = 0; i < n; i++)
    if (!env_overridden(environ[i], set))
      env[m++] = environ[i];
  for (size_t i = 0; i < k; i++)
    env[m++] = (char *)set[i];
  env[m] = NULL;
  return env;
}

char *e2e_run_capture(char *const argv[], int *exit_code) {
  return e2e_run_capture_env(argv, NULL, exit_code);
}

char *e2e_run_capture_env(char *const argv[], const char *const *set_env,
                          int *exit_code) {
  int fds[2];
  char *buf = NULL;
  size_t len = 0, cap = 0;
  *exit_code = -1;
  /* Built before fork: the child only dups and execs. */
  char **env = env_with(set_env);
  if (!env)
    return NULL;
  if (pipe2(fds, O_CLOEXEC) != 0) {
    free(env);
    return NULL;
  }
  pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    free(env);
    return NULL;
  }
  if (pid == 0) {
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0)
      dup2(devnull, 0);
    dup2(fds[1], 1);
    execvpe(argv[0], argv, env);
    _exit(127);
  }
  free(env);
  close(fds[1]);
  for (;;) {
    if (len + 4096 + 1 > cap) {
      size_t ncap = cap ? cap * 2 : 8192;
      char *n = realloc(buf, ncap);
      if (!n)
        break;
      buf = n;
      cap = ncap;
    }
    ssize_t r = read(fds[0], buf + len, cap - len - 1);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      break;
    len += (size_t)r;
  }
  close(fds[0]);
  int wst = 0;
  while (waitpid(pid, &wst, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(wst))
    *exit_code = WEXITSTATUS(wst);
  else if (WIFSIGNALED(wst))
    *exit_code = 128 + WTERMSIG(wst);
  if (buf)
    buf[len] = '\0';
  return buf;
}

int e2e_raw_connect(const struct e2e_server *s) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_port = htons((uint16_t)e2e_server_port(s)),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
    close(fd);
    fd = -1;
  }
  return fd;
}

/* Sends len bytes, or as many as the peer takes before it fails. */
static void send_all(int fd, const char *bytes, size_t len) {
  for (size_t off = 0; off < len;) {
    ssize_t n = send(fd, bytes + off, len - off, MSG_NOSIGNAL);
    if (n <= 0)
      break;
    off += (size_t)n;
  }
}

char *e2e_raw_talk(int fd, const char *bytes, size_t len, int wait_ms,
                   size_t *got_len, bool *closed) {
  *got_len = 0;
  *closed = false;
  send_all(fd, bytes, len);
  size_t cap = 65536, used = 0;
  char *out = malloc(cap + 1);
  struct timeval tv = {.tv_sec = wait_ms / 1000,
                       .tv_usec = (wait_ms % 1000) * 1000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  while (out && used < cap) {
    ssize_t n = recv(fd, out + used, cap - used, 0);
    if (n == 0)
      *closed = true;
    if (n <= 0)
      break;
    used += (size_t)n;
  }
  if (out) {
    out[used] = '\0';
    *got_len = used;
  }
  return out;
}

/* Whether the `used` bytes at `p` hold one whole answer: its head, and
 * the body its Content-Length gives (none without one). *closes says
 * whether the head carries Connection: close. */
static bool answer_whole(const char *p, size_t used, bool *closes) {
  const char *end = strstr(p, "\r\n\r\n");
  if (!end)
    return false;
  size_t head = (size_t)(end - p) + 4;
  size_t body = 0;
  *closes = false;
  for (const char *line = strstr(p, "\r\n"); line && line < end;
       line = strstr(line + 2, "\r\n")) {
    if (strncasecmp(line + 2, "Content-Length:", 15) == 0)
      body = strtoul(line + 17, NULL, 10);
    else if (strncasecmp(line + 2, "Connection: close", 17) == 0)
      *closes = true;
  }
  return used >= head + body;
}

char *e2e_raw_ask(int fd, const char *bytes, size_t len, int deadline_ms,
                  size_t *got_len, bool *closed) {
  *got_len = 0;
  *closed = false;
  send_all(fd, bytes, len);
  size_t cap = 65536, used = 0;
  char *out = malloc(cap + 1);
  long deadline = now_ms() + deadline_ms;
  bool whole = false, closes = false;
  while (out && used < cap && !(whole && !closes)) {
    long left = deadline - now_ms();
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
      break;
    ssize_t n = recv(fd, out + used, cap - used, 0);
    if (n == 0)
      *closed = true;
    if (n <= 0)
      break;
    used += (size_t)n;
    out[used] = '\0';
    whole = answer_whole(out, used, &closes);
  }
  if (out) {
    out[used] = '\0';
    *got_len = used;
  }
  return out;
}

size_t e2e_raw_post(const json_t *body, char *out, size_t cap) {
  char *text = json_dumps(body, JSON_COMPACT);
  int len = text ? snprintf(out, cap,
                            "POST /v1/stream-records HTTP/1.1\r\nHost: t\r\n"
                            "Content-Type: application/json\r\n"
                            "Content-Length: %zu\r\n\r\n%s",
                            strlen(text), text)
                 : -1;
  free(text);
  return len > 0 && (size_t)len < cap ? (size_t)len : 0;
}

char *e2e_raw_exchange(const struct e2e_server *s, const char *bytes,
                       size_t len, int wait_ms, size_t *got_len, bool *closed) {
  *got_len = 0;
  *closed = false;
  int fd = e2e_raw_connect(s);
  if (fd < 0)
    return NULL;
  char *out = e2e_raw_talk(fd, bytes, len, wait_ms, got_len, closed);
  close(fd);
  return out;
}

static void *post_main(void *arg) {
  struct e2e_post_job *j = arg;
  static const char *const hdrs[] = {"Content-Type: application/json", NULL};
  struct e2e_request rq = {.method = "POST",
                           .target = "/v1/stream-records",
                           .headers = hdrs,
                           .body = j->text,
                           .body_len = strlen(j->text),
                           .timeout_ms = 15000};
  struct e2e_reply r = {0};
  (void)e2e_http(j->s, &rq, &r);
  j->status = r.status;
  j->answer = json_incref(r.json);
  e2e_reply_clear(&r);
  return NULL;
}

void e2e_post_start(struct e2e_post_job *j, const struct e2e_server *s,
                    const json_t *body) {
  memset(j, 0, sizeof *j);
  j->s = s;
  j->text = json_dumps(body, JSON_COMPACT);
  j->started = j->text && pthread_create(&j->thread, NULL, post_main, j) == 0;
  CU_ASSERT(j->started);
}

void e2e_post_join(struct e2e_post_job *j) {
  if (j->started)
    pthread_join(j->thread, NULL);
  j->started = false;
}

void e2e_post_clear(struct e2e_post_job *j) {
  e2e_post_join(j);
  free(j->text);
  json_decref(j->answer);
  j->text = NULL;
  j->answer = NULL;
}

bool e2e_sqlite_lock_take(const struct e2e_server *s,
                          struct e2e_sqlite_lock *out) {
  int in[2];
  char flag[4096];
  out->shell = 0;
  snprintf(flag, sizeof flag, "%s/locked", e2e_server_dir(s));
  (void)unlink(flag);
  if (pipe2(in, O_CLOEXEC) != 0)
    return false;
  pid_t pid = fork();
  if (pid < 0) {
    close(in[0]);
    close(in[1]);
    return false;
  }
  if (pid == 0) {
    dup2(in[0], 0);
    int devnull = open("/dev/null", O_WRONLY);
    if (devnull >= 0)
      dup2(devnull, 1);
    execlp("sqlite3", "sqlite3", "-bail", e2e_server_db_path(s), (char *)NULL);
    _exit(127);
  }
  close(in[0]);
  out->shell = pid;
  out->shell_in = in[1];
  char script[8192];
  int n = snprintf(script, sizeof script,
                   "PRAGMA busy_timeout=5000;\nBEGIN EXCLUSIVE;\n"
                   ".shell touch '%s'\n",
                   flag);
  bool wrote = write(out->shell_in, script, (size_t)n) == n;
  for (int i = 0; i < 500 && access(flag, F_OK) != 0; i++)
    e2e_sleep_ms(10);
  return wrote && access(flag, F_OK) == 0;
}

void e2e_sqlite_lock_release(struct e2e_sqlite_lock *l) {
  static const char unlock[] = "ROLLBACK;\n.quit\n";
  if (l->shell <= 0)
    return;
  if (write(l->shell_in, unlock, sizeof unlock - 1) < 0)
    CU_FAIL("could not tell sqlite3 to unlock");
  close(l->shell_in);
  int wst = 0;
  while (waitpid(l->shell, &wst, 0) < 0 && errno == EINTR) {
  }
  l->shell = 0;
}

char *e2e_sqlite_query(const char *db, const char *sql) {
  /* A writer next to the service waits for its lock like any other: the
   * service may hold it a moment after a batch (a transaction begun for
   * the next one, README "Transactions begun early"). */
  char *argv[] = {"sqlite3",  "-bail",     "-cmd", ".timeout 5000",
                  (char *)db, (char *)sql, NULL};
  int code = -1;
  char *out = e2e_run_capture(argv, &code);
  if (code != 0) {
    free(out);
    return NULL;
  }
  return out;
}

/* ------------------------------------------------------------------ */
/* the server process                                                 */

struct e2e_server {
  pid_t pid;
  bool term_sent; /* SIGTERM was sent once; a second one is never sent */
  bool exited;
  int exit_code;
  char *dir;
  bool own_dir;
  char log_path[PATH_MAX];
  char db_path[PATH_MAX];
  int out_fd; /* read end of the child's stdout */
  int log_fd; /* O_APPEND log, also the child's stderr */
  pthread_t reader;
  bool reader_started;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int port; /* from the listening line; 0 until then */
  bool eof; /* stdout closed */
  unsigned failures_at_start;
};

static unsigned log_counter;

static unsigned failures_now(void) { return CU_get_number_of_failures(); }

/* Reads the child's stdout line by line into the log, and picks the port
 * from {"msg":"listening","port":N}. Runs until the child closes stdout. */
static void *reader_main(void *arg) {
  struct e2e_server *s = arg;
  FILE *in = fdopen(s->out_fd, "r");
  char *line = NULL;
  size_t cap = 0;
  ssize_t n;
  if (!in) {
    close(s->out_fd);
    goto done;
  }
  while ((n = getline(&line, &cap, in)) > 0) {
    ssize_t off = 0;
    while (off < n) {
      ssize_t w = write(s->log_fd, line + off, (size_t)(n - off));
      if (w <= 0)
        break;
      off += w;
    }
    pthread_mutex_lock(&s->mu);
    bool need = s->port == 0;
    pthread_mutex_unlock(&s->mu);
    if (!need)
      continue;
    json_t *j = json_loadb(line, (size_t)n, 0, NULL);
    const char *msg = json_string_value(json_object_get(j, "msg"));
    json_t *port = json_object_get(j, "port");
    if (msg && strcmp(msg, "listening") == 0 && json_is_integer(port) &&
        json_integer_value(port) > 0 && json_integer_value(port) < 65536) {
      pthread_mutex_lock(&s->mu);
      s->port = (int)json_integer_value(port);
      pthread_cond_broadcast(&s->cv);
      pthread_mutex_unlock(&s->mu);
    }
    json_decref(j);
  }
  free(line);
  fclose(in);
done:
  pthread_mutex_lock(&s->mu);
  s->eof = true;
  pthread_cond_broadcast(&s->cv);
  pthread_mutex_unlock(&s->mu);
  return NULL;
}

/* Builds the child's environment: the test process's, minus every TS_*
 * variable, plus what the store needs. For dynamodb, TS_TABLE and
 * TS_DEAD_LETTER_TABLE of the test process are passed on (AWS_* pass
 * through as they are not TS_*). opt->extra_env comes last and replaces
 * any inherited variable of the same name. */
static enum ts_status build_env(const struct e2e_server *s,
                                const struct e2e_server_opts *opt,
                                char ***out) {
  size_t n = 0, cap = MAX_ENV;
  char **env = calloc(cap, sizeof *env);
  if (!env)
    return TS_ERR_NOMEM;
  for (char **e = environ; *e && n + 16 < cap; e++) {
    if (strncmp(*e, "TS_", 3) == 0 || env_overridden(*e, opt->extra_env))
      continue;
    env[n++] = strdup(*e);
  }
  static const char *const passed[] = {"TS_TABLE", "TS_DEAD_LETTER_TABLE"};
  for (size_t i = 0; !e2e_store_is_sqlite() && i < 2; i++) {
    const char *v = getenv(passed[i]);
    char probe[64];
    snprintf(probe, sizeof probe, "%s=", passed[i]);
    if (v && !env_overridden(probe, opt->extra_env) &&
        asprintf(&env[n++], "%s=%s", passed[i], v) < 0)
      env[n - 1] = NULL;
  }
  if (!opt->use_flags) {
    env[n++] = strdup("TS_BIND=127.0.0.1");
    env[n++] = strdup("TS_PORT=0");
    if (!env_overridden("TS_STORE=", opt->extra_env) &&
        asprintf(&env[n++], "TS_STORE=%s", e2e_store_kind()) < 0)
      env[n - 1] = NULL;
    if (e2e_store_is_sqlite() &&
        !env_overridden("TS_SQLITE_PATH", opt->extra_env)) {
      if (asprintf(&env[n++], "TS_SQLITE_PATH=%s", s->db_path) < 0)
        env[n - 1] = NULL;
    }
  }
  for (const char *const *x = opt->extra_env; x && *x && n + 1 < cap; x++)
    env[n++] = strdup(*x);
  env[n] = NULL;
  for (size_t i = 0; i < n; i++)
    if (!env[i]) {
      for (size_t j = 0; j < n; j++)
        free(env[j]);
      free(env);
      return TS_ERR_NOMEM;
    }
  *out = env;
  return TS_OK;
}

static void free_strv(char **v) {
  for (size_t i = 0; v && v[i]; i++)
    free(v[i]);
  free(v);
}

static void reap(struct e2e_server *s, long timeout_ms) {
  long deadline = now_ms() + timeout_ms;
  while (!s->exited) {
    int wst = 0;
    pid_t r = waitpid(s->pid, &wst, WNOHANG);
    if (r == s->pid) {
      s->exited = true;
      if (WIFEXITED(wst))
        s->exit_code = WEXITSTATUS(wst);
      else if (WIFSIGNALED(wst))
        s->exit_code = 128 + WTERMSIG(wst);
      else
        s->exit_code = -1;
      break;
    }
    if (r < 0 && errno != EINTR) {
      s->exited = true;
      s->exit_code = -1;
      break;
    }
    if (timeout_ms >= 0 && now_ms() >= deadline)
      break;
    e2e_sleep_ms(5);
  }
}

bool e2e_server_alive(struct e2e_server *s) {
  reap(s, 0);
  return !s->exited;
}

static void free_server(struct e2e_server *s, bool keep_dir) {
  if (!s)
    return;
  if (s->reader_started)
    pthread_join(s->reader, NULL);
  if (s->log_fd >= 0)
    close(s->log_fd);
  pthread_mutex_destroy(&s->mu);
  pthread_cond_destroy(&s->cv);
  if (s->own_dir && !keep_dir)
    e2e_dir_remove(s->dir);
  else if (s->own_dir)
    fprintf(stderr, "  (server folder kept: %s)\n", s->dir);
  free(s->dir);
  free(s);
}

enum ts_status e2e_server_start_on(const struct e2e_dynalite *d,
                                   const char *const *extra,
                                   struct e2e_server **out) {
  return e2e_server_start_at(e2e_dynalite_endpoint(d), extra, out);
}

enum ts_status e2e_server_start_at(const char *endpoint,
                                   const char *const *extra,
                                   struct e2e_server **out) {
  char endpoint_env[128];
  const char *env[8] = {NULL};
  size_t n = 0;
  for (const char *const *x = extra; x && *x && n < 6; x++)
    env[n++] = *x;
  snprintf(endpoint_env, sizeof endpoint_env, "AWS_ENDPOINT_URL_DYNAMODB=%s",
           endpoint);
  env[n] = endpoint_env;
  struct e2e_server_opts opt = {.extra_env = env};
  return e2e_server_start(&opt, out);
}

void e2e_ingest_expect(const struct e2e_server *s, const char *case_name,
                       const json_t *body, long received, long applied,
                       long duplicates, long skipped, size_t rejected) {
  struct e2e_reply r;
  struct e2e_summary sum;
  if (e2e_ingest(s, case_name, body, &r, &sum))
    e2e_check_summary(case_name, &sum, received, applied, duplicates, skipped,
                      rejected);
  e2e_reply_clear(&r);
}

char *e2e_server_log(const struct e2e_server *s) {
  char *text = NULL;
  size_t len = 0;
  return e2e_read_file(s->log_path, &text, &len) == TS_OK ? text : NULL;
}

static bool line_has(const char *log, const char *a, const char *b) {
  for (const char *line = log; line && *line;) {
    const char *end = strchr(line, '\n');
    size_t len = end ? (size_t)(end - line) : strlen(line);
    const char *x = strstr(line, a), *y = b ? strstr(line, b) : line;
    if (x && y && (size_t)(x - line) < len && (size_t)(y - line) < len)
      return true;
    line = end ? end + 1 : NULL;
  }
  return false;
}

bool e2e_server_log_has(const struct e2e_server *s, const char *a,
                        const char *b, long timeout_ms) {
  long until = now_ms() + timeout_ms;
  for (;;) {
    char *log = e2e_server_log(s);
    bool found = line_has(log, a, b);
    free(log);
    if (found || now_ms() >= until)
      return found;
    e2e_sleep_ms(20);
  }
}

void e2e_server_dump_log(const struct e2e_server *s) {
  char *text = NULL;
  size_t len = 0;
  if (e2e_read_file(s->log_path, &text, &len) != TS_OK) {
    fprintf(stderr, "  (no server log at %s)\n", s->log_path);
    return;
  }
  size_t start = len, lines = 0;
  while (start > 0) {
    if (text[start - 1] == '\n' && ++lines > LOG_TAIL_LINES)
      break;
    start--;
  }
  fprintf(stderr, "\n  ---- server log %s (last lines) ----\n%s", s->log_path,
          text + start);
  fprintf(stderr, "  ---- end of server log ----\n");
  free(text);
}

static bool wait_port(struct e2e_server *s, long timeout_ms) {
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += timeout_ms / 1000;
  until.tv_nsec += (timeout_ms % 1000) * 1000000L;
  if (until.tv_nsec >= 1000000000L) {
    until.tv_sec++;
    until.tv_nsec -= 1000000000L;
  }
  pthread_mutex_lock(&s->mu);
  while (s->port == 0 && !s->eof)
    if (pthread_cond_timedwait(&s->cv, &s->mu, &until) == ETIMEDOUT)
      break;
  bool ok = s->port != 0;
  pthread_mutex_unlock(&s->mu);
  return ok;
}

static bool wait_healthy(struct e2e_server *s, long timeout_ms) {
  long deadline = now_ms() + timeout_ms;
  while (now_ms() < deadline && e2e_server_alive(s)) {
    struct e2e_reply r;
    enum ts_status st = e2e_get(s, "/healthz", &r);
    bool ok = st == TS_OK && r.status == 200;
    e2e_reply_clear(&r);
    if (ok)
      return true;
    e2e_sleep_ms(20);
  }
  return false;
}

enum ts_status e2e_server_start(const struct e2e_server_opts *opt,
                                struct e2e_server **out) {
  static const struct e2e_server_opts none = {0};
  enum ts_status st = TS_ERR_IO;
  struct e2e_server *s = calloc(1, sizeof *s);
  char **env = NULL, **argv = NULL;
  int fds[2] = {-1, -1};
  *out = NULL;
  if (!opt)
    opt = &none;
  if (!s)
    return TS_ERR_NOMEM;
  s->out_fd = -1;
  s->log_fd = -1;
  pthread_mutex_init(&s->mu, NULL);
  pthread_cond_init(&s->cv, NULL);
  s->failures_at_start = failures_now();
  if (opt->dir) {
    s->dir = strdup(opt->dir);
    if (!s->dir) {
      st = TS_ERR_NOMEM;
      goto fail;
    }
  } else {
    st = e2e_dir_new(&s->dir);
    if (st != TS_OK)
      goto fail;
    s->own_dir = true;
    st = TS_ERR_IO;
  }
  snprintf(s->log_path, sizeof s->log_path, "%s/server-%u.log", s->dir,
           ++log_counter);
  snprintf(s->db_path, sizeof s->db_path, "%s/ts.db", s->dir);
  for (const char *const *x = opt ? opt->extra_env : NULL; x && *x; x++)
    if (strncmp(*x, "TS_SQLITE_PATH=", 15) == 0)
      snprintf(s->db_path, sizeof s->db_path, "%s", *x + 15);
  s->log_fd =
      open(s->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (s->log_fd < 0)
    goto fail;
  st = build_env(s, opt, &env);
  if (st != TS_OK)
    goto fail;
  st = TS_ERR_NOMEM;
  argv = calloc(12, sizeof *argv);
  if (!argv)
    goto fail;
  size_t a = 0;
  argv[a++] = strdup(e2e_bin());
  if (opt->use_flags) {
    argv[a++] = strdup("--bind");
    argv[a++] = strdup("127.0.0.1");
    argv[a++] = strdup("--port");
    argv[a++] = strdup("0");
    argv[a++] = strdup("--store");
    argv[a++] = strdup(e2e_store_kind());
    if (e2e_store_is_sqlite()) {
      argv[a++] = strdup("--sqlite-path");
      argv[a++] = strdup(s->db_path);
    }
  }
  for (size_t i = 0; i < a; i++)
    if (!argv[i])
      goto fail;
  st = TS_ERR_IO;
  if (pipe2(fds, O_CLOEXEC) != 0)
    goto fail;
  pid_t parent = getpid();
  s->pid = fork();
  if (s->pid < 0)
    goto fail;
  if (s->pid == 0) {
    /* Child: only async-signal-safe calls until execve. The server dies
     * with the test process, so a crashed run leaves no orphan. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
      _exit(127);
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0)
      dup2(devnull, 0);
    dup2(fds[1], 1);
    dup2(s->log_fd, 2);
    execve(argv[0], argv, env);
    _exit(127);
  }
  close(fds[1]);
  fds[1] = -1;
  s->out_fd = fds[0];
  fds[0] = -1;
  if (pthread_create(&s->reader, NULL, reader_main, s) != 0) {
    close(s->out_fd);
    kill(s->pid, SIGKILL);
    reap(s, -1);
    goto fail;
  }
  s->reader_started = true;
  long t0 = now_ms();
  if (!wait_port(s, START_TIMEOUT_MS)) {
    fprintf(stderr,
            "\n  server did not log {\"msg\":\"listening\",\"port\":N}"
            " within %ld ms\n",
            START_TIMEOUT_MS);
    goto fail_running;
  }
  if (!wait_healthy(s, START_TIMEOUT_MS - (now_ms() - t0))) {
    fprintf(stderr, "\n  GET /healthz did not answer 200 on port %d\n",
            s->port);
    goto fail_running;
  }
  free_strv(env);
  free_strv(argv);
  *out = s;
  return TS_OK;

fail_running:
  if (e2e_server_alive(s)) {
    kill(s->pid, SIGKILL);
    reap(s, -1);
  } else {
    fprintf(stderr, "  server exited with status %d\n", s->exit_code);
  }
  e2e_server_dump_log(s);
  free_strv(env);
  free_strv(argv);
  free_server(s, true);
  return TS_ERR_IO;

fail:
  if (fds[0] >= 0)
    close(fds[0]);
  if (fds[1] >= 0)
    close(fds[1]);
  free_strv(env);
  free_strv(argv);
  free_server(s, false);
  return st;
}

void e2e_server_signal_term(struct e2e_server *s) {
  if (s && !s->term_sent && e2e_server_alive(s)) {
    kill(s->pid, SIGTERM);
    s->term_sent = true;
  }
}

void e2e_server_kill(struct e2e_server *s) {
  if (!s)
    return;
  if (e2e_server_alive(s))
    kill(s->pid, SIGKILL);
  reap(s, -1);
  bool trouble = failures_now() != s->failures_at_start;
  if (trouble)
    e2e_server_dump_log(s);
  free_server(s, trouble);
}

void e2e_server_stop(struct e2e_server *s, int *exit_code) {
  int code = -1;
  if (!s) {
    if (exit_code)
      *exit_code = -1;
    return;
  }
  e2e_server_signal_term(s);
  reap(s, STOP_TIMEOUT_MS);
  if (!s->exited) {
    fprintf(stderr, "\n  server pid %ld ignored SIGTERM for %ld ms; killed\n",
            (long)s->pid, STOP_TIMEOUT_MS);
    kill(s->pid, SIGKILL);
    reap(s, -1);
    code = -1;
  } else {
    code = s->exit_code;
  }
  bool trouble = code != 0 || failures_now() != s->failures_at_start;
  if (code != 0)
    fprintf(stderr, "\n  server exit status %d (expected 0)\n", code);
  if (trouble)
    e2e_server_dump_log(s);
  if (exit_code)
    *exit_code = code;
  free_server(s, trouble);
}

int e2e_server_port(const struct e2e_server *s) { return s->port; }
const char *e2e_server_dir(const struct e2e_server *s) { return s->dir; }
const char *e2e_server_db_path(const struct e2e_server *s) {
  return e2e_store_is_sqlite() ? s->db_path : NULL;
}

/* ------------------------------------------------------------------ */
/* HTTP                                                               */

struct growbuf {
  char *p;
  size_t len, cap, max;
  bool overflow;
};

static bool grow_append(struct growbuf *b, const char *data, size_t n) {
  if (b->len + n + 1 > b->max) {
    b->overflow = true;
    return false;
  }
  if (b->len + n + 1 > b->cap) {
    size_t ncap = b->cap ? b->cap : 4096;
    while (ncap < b->len + n + 1)
      ncap *= 2;
    char *np = realloc(b->p, ncap);
    if (!np)
      return false;
    b->p = np;
    b->cap = ncap;
  }
  memcpy(b->p + b->len, data, n);
  b->len += n;
  b->p[b->len] = '\0';
  return true;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg) {
  return grow_append(arg, data, size * nmemb) ? size * nmemb : 0;
}

/* Keeps only the header block of the final answer (drops 100 Continue). */
static size_t on_header(char *data, size_t size, size_t nmemb, void *arg) {
  struct growbuf *b = arg;
  size_t n = size * nmemb;
  if (n >= 5 && strncmp(data, "HTTP/", 5) == 0)
    b->len = 0;
  return grow_append(b, data, n) ? n : 0;
}

void e2e_reply_clear(struct e2e_reply *r) {
  if (!r)
    return;
  free(r->content_type);
  free(r->headers);
  free(r->body);
  json_decref(r->json);
  memset(r, 0, sizeof *r);
}

double e2e_metric(const char *text, const char *sample) {
  size_t len = strlen(sample);
  for (const char *line = text; line && *line;) {
    if (strncmp(line, sample, len) == 0)
      return strtod(line + len, NULL);
    line = strchr(line, '\n');
    if (line)
      line++;
  }
  return -1;
}

double e2e_server_metric(const struct e2e_server *s, const char *sample) {
  struct e2e_reply r;
  (void)e2e_get(s, "/metrics", &r);
  double v = r.status == 200 && r.body ? e2e_metric(r.body, sample) : -1;
  e2e_reply_clear(&r);
  return v;
}

double e2e_server_metric_reaching(const struct e2e_server *s,
                                  const char *sample, double want) {
  double v = e2e_server_metric(s, sample);
  for (int i = 0; i < 50 && v < want; i++) {
    e2e_sleep_ms(100);
    v = e2e_server_metric(s, sample);
  }
  return v;
}

long e2e_board_games(const struct e2e_server *s, const char *player) {
  struct e2e_reply rep;
  (void)e2e_get(s, "/v1/leaderboard?by=games&limit=100", &rep);
  json_t *players = json_object_get(rep.json, "players");
  TS_CHECK_CASE(rep.status == 200 && json_is_array(players),
                "GET /v1/leaderboard", "status %ld body %.300s", rep.status,
                rep.body);
  long games = -1;
  size_t i;
  json_t *row;
  json_array_foreach(players, i, row) {
    const char *name = json_string_value(json_object_get(row, "player"));
    if (name && strcmp(name, player) == 0)
      games = (long)json_integer_value(json_object_get(row, "games"));
  }
  e2e_reply_clear(&rep);
  return games;
}

bool e2e_reply_header(const struct e2e_reply *r, const char *name, char *buf,
                      size_t cap) {
  size_t nlen = strlen(name);
  const char *p = r->headers;
  while (p && *p) {
    const char *eol = strchr(p, '\n');
    size_t llen = eol ? (size_t)(eol - p) : strlen(p);
    if (llen > nlen && strncasecmp(p, name, nlen) == 0 && p[nlen] == ':') {
      const char *v = p + nlen + 1;
      const char *end = p + llen;
      while (v < end && (*v == ' ' || *v == '\t'))
        v++;
      while (end > v && (end[-1] == '\r' || end[-1] == ' ' || end[-1] == '\t'))
        end--;
      size_t vlen = (size_t)(end - v);
      if (vlen >= cap)
        vlen = cap - 1;
      memcpy(buf, v, vlen);
      buf[vlen] = '\0';
      return true;
    }
    p = eol ? eol + 1 : NULL;
  }
  return false;
}

/* With TS_TEST_EXCHANGES set, every exchange is appended to that file as a
 * JSON line {method, path, status, content_type, headers, body} for the
 * contract check (tests/contract/validate.mjs). The file is truncated by
 * the first exchange of the process. */
static pthread_mutex_t exchanges_mu = PTHREAD_MUTEX_INITIALIZER;
static FILE *exchanges_file;

static void log_exchange(const struct e2e_request *rq,
                         const struct e2e_reply *out) {
  const char *path = getenv("TS_TEST_EXCHANGES");
  if (!path || !*path || out->status <= 0)
    return;
  json_t *headers = json_object();
  for (const char *p = out->headers; p && *p;) {
    const char *eol = strchr(p, '\n');
    size_t len = eol ? (size_t)(eol - p) : strlen(p);
    const char *colon = memchr(p, ':', len);
    if (colon) {
      char name[128];
      size_t nlen = (size_t)(colon - p);
      if (nlen < sizeof name) {
        for (size_t i = 0; i < nlen; i++)
          name[i] = (char)tolower((unsigned char)p[i]);
        name[nlen] = '\0';
        const char *v = colon + 1;
        while (v < p + len && *v == ' ')
          v++;
        size_t vlen = (size_t)(p + len - v);
        while (vlen && (v[vlen - 1] == '\r' || v[vlen - 1] == ' '))
          vlen--;
        json_object_set_new(headers, name, json_stringn(v, vlen));
      }
    }
    p = eol ? eol + 1 : NULL;
  }
  json_t *line = json_pack(
      "{s:s, s:s, s:i, s:s?, s:o, s:s%}", "method", rq->method, "path",
      rq->target, "status", (int)out->status, "content_type", out->content_type,
      "headers", headers, "body", out->body, out->body_len);
  char *text = line ? json_dumps(line, JSON_COMPACT) : NULL;
  json_decref(line);
  if (!text)
    return;
  pthread_mutex_lock(&exchanges_mu);
  if (!exchanges_file)
    exchanges_file = fopen(path, "w");
  if (exchanges_file) {
    fprintf(exchanges_file, "%s\n", text);
    fflush(exchanges_file);
  }
  pthread_mutex_unlock(&exchanges_mu);
  free(text);
}

enum ts_status e2e_http(const struct e2e_server *s,
                        const struct e2e_request *rq, struct e2e_reply *out) {
  enum ts_status st = TS_ERR_IO;
  struct growbuf body = {.max = MAX_REPLY_BYTES};
  struct growbuf head = {.max = MAX_HEADER_BYTES};
  struct curl_slist *hdrs = NULL;
  char *url = NULL;
  memset(out, 0, sizeof *out);
  CURL *c = curl_easy_init();
  if (!c)
    return TS_ERR_NOMEM;
  if (asprintf(&url, "http://127.0.0.1:%d%s", s->port, rq->target) < 0) {
    url = NULL;
    st = TS_ERR_NOMEM;
    goto out;
  }
  for (const char *const *h = rq->headers; h && *h; h++) {
    struct curl_slist *n = curl_slist_append(hdrs, *h);
    if (!n) {
      st = TS_ERR_NOMEM;
      goto out;
    }
    hdrs = n;
  }
  if (rq->no_content_type) {
    struct curl_slist *n = curl_slist_append(hdrs, "Content-Type:");
    if (!n) {
      st = TS_ERR_NOMEM;
      goto out;
    }
    hdrs = n;
  }
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS,
                   rq->timeout_ms > 0 ? rq->timeout_ms : 30000L);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &head);
  if (hdrs)
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
  if (rq->body) {
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->body_len);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, rq->body);
    if (strcmp(rq->method, "POST") != 0)
      curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, rq->method);
  } else if (strcmp(rq->method, "GET") == 0) {
    curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
  } else if (strcmp(rq->method, "HEAD") == 0) {
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  } else {
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, rq->method);
  }
  out->curl = curl_easy_perform(c);
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->status);
  curl_easy_getinfo(c, CURLINFO_TOTAL_TIME, &out->seconds);
  char *ct = NULL;
  if (curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK && ct)
    out->content_type = strdup(ct);
  out->headers = head.p ? head.p : strdup("");
  head.p = NULL;
  out->body = body.p ? body.p : strdup("");
  out->body_len = body.len;
  body.p = NULL;
  if (out->body_len > 0)
    out->json = json_loadb(out->body, out->body_len, 0, NULL);
  st = (out->curl == CURLE_OK && out->status > 0) ? TS_OK : TS_ERR_IO;
  if (st == TS_OK)
    log_exchange(rq, out);
out:
  free(head.p);
  free(body.p);
  free(url);
  curl_slist_free_all(hdrs);
  curl_easy_cleanup(c);
  return st;
}

enum ts_status e2e_get(const struct e2e_server *s, const char *target,
                       struct e2e_reply *out) {
  struct e2e_request rq = {.method = "GET", .target = target};
  return e2e_http(s, &rq, out);
}

enum ts_status e2e_post_json(const struct e2e_server *s, const char *target,
                             const json_t *body, struct e2e_reply *out) {
  static const char *const hdrs[] = {"Content-Type: application/json", NULL};
  char *text = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY);
  if (!text) {
    memset(out, 0, sizeof *out);
    return TS_ERR_NOMEM;
  }
  struct e2e_request rq = {.method = "POST",
                           .target = target,
                           .headers = hdrs,
                           .body = text,
                           .body_len = strlen(text)};
  enum ts_status st = e2e_http(s, &rq, out);
  free(text);
  return st;
}

char *e2e_escape(const char *text) {
  static const char hex[] = "0123456789ABCDEF";
  size_t n = strlen(text);
  char *out = malloc(n * 3 + 1);
  char *o = out;
  if (!out)
    return NULL;
  for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
    if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
        (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' || *p == '_' ||
        *p == '~') {
      *o++ = (char)*p;
    } else {
      *o++ = '%';
      *o++ = hex[*p >> 4];
      *o++ = hex[*p & 15];
    }
  }
  *o = '\0';
  return out;
}

/* ------------------------------------------------------------------ */
/* assertions                                                         */

/* CHECK is the unit tests' TS_CHECK_CASE (tests/unit/unit.h). */
#define CHECK TS_CHECK_CASE

static void print_body(const struct e2e_reply *r) {
  fprintf(stderr, "    status %ld, content-type %s, body: %.600s\n", r->status,
          r->content_type ? r->content_type : "(none)",
          r->body ? r->body : "(none)");
}

static bool count_field(const json_t *o, const char *key, long *v) {
  json_t *x = json_object_get(o, key);
  if (!json_is_integer(x) || json_integer_value(x) < 0)
    return false;
  *v = (long)json_integer_value(x);
  return true;
}

bool e2e_ingest(const struct e2e_server *s, const char *case_name,
                const json_t *body, struct e2e_reply *reply,
                struct e2e_summary *out) {
  memset(out, 0, sizeof *out);
  enum ts_status st = e2e_post_json(s, "/v1/stream-records", body, reply);
  bool ok = st == TS_OK && reply->status == 200 && reply->json;
  CHECK(ok, case_name,
        "POST /v1/stream-records: expected 200 with JSON (curl %d)",
        (int)reply->curl);
  if (!ok) {
    print_body(reply);
    return false;
  }
  const json_t *j = reply->json;
  bool shape = count_field(j, "received", &out->received) &&
               count_field(j, "applied", &out->applied) &&
               count_field(j, "duplicates", &out->duplicates) &&
               count_field(j, "skipped", &out->skipped) &&
               json_is_array(json_object_get(j, "rejected"));
  CHECK(shape, case_name, "summary lacks a count or the rejected list: %.400s",
        reply->body);
  if (!shape)
    return false;
  out->rejected_list = json_object_get(j, "rejected");
  out->rejected = json_array_size(out->rejected_list);
  CHECK(out->applied + out->duplicates + out->skipped + (long)out->rejected ==
            out->received,
        case_name, "applied+duplicates+skipped+rejected != received: %.400s",
        reply->body);
  size_t i;
  json_t *e;
  json_array_foreach(out->rejected_list, i, e) {
    const char *reason = json_string_value(json_object_get(e, "reason"));
    CHECK(json_is_object(e) && reason && *reason, case_name,
          "rejected[%zu] has no reason: %.400s", i, reply->body);
  }
  return true;
}

void e2e_check_summary(const char *case_name, const struct e2e_summary *got,
                       long received, long applied, long duplicates,
                       long skipped, size_t rejected) {
  bool ok = got->received == received && got->applied == applied &&
            got->duplicates == duplicates && got->skipped == skipped &&
            got->rejected == rejected;
  CHECK(ok, case_name,
        "summary received/applied/duplicates/skipped/rejected = "
        "%ld/%ld/%ld/%ld/%zu, expected %ld/%ld/%ld/%ld/%zu",
        got->received, got->applied, got->duplicates, got->skipped,
        got->rejected, received, applied, duplicates, skipped, rejected);
}

static bool number_is(const json_t *v, const char *expected) {
  if (!json_is_number(v) || !expected)
    return false;
  char *end = NULL;
  double want = strtod(expected, &end);
  return end && *end == '\0' && json_number_value(v) == want;
}

static bool integer_is(const json_t *v, long expected) {
  return json_is_integer(v) && json_integer_value(v) == expected;
}

static void describe(const json_t *obj, char *buf, size_t cap) {
  char *t = json_dumps(obj, JSON_COMPACT | JSON_ENCODE_ANY);
  snprintf(buf, cap, "%s", t ? t : "(null)");
  free(t);
}

void e2e_check_stats(const char *case_name, const json_t *obj,
                     const struct e2e_expect *exp) {
  char got[1024];
  describe(obj, got, sizeof got);
  CHECK(json_is_object(obj), case_name, "stats is not an object: %s", got);
  if (!json_is_object(obj))
    return;
  const char *player = json_string_value(json_object_get(obj, "player"));
  CHECK(player && strcmp(player, exp->player) == 0, case_name,
        "player: expected \"%s\" in %s", exp->player, got);
  CHECK(integer_is(json_object_get(obj, "games"), exp->games), case_name,
        "games: expected %ld in %s", exp->games, got);
  CHECK(integer_is(json_object_get(obj, "wins"), exp->wins), case_name,
        "wins: expected %ld in %s", exp->wins, got);
  CHECK(integer_is(json_object_get(obj, "losses"), exp->games - exp->wins),
        case_name, "losses: expected %ld in %s", exp->games - exp->wins, got);
  CHECK(number_is(json_object_get(obj, "total_score"), exp->total_score),
        case_name, "total_score: expected %s in %s", exp->total_score, got);
  CHECK(number_is(json_object_get(obj, "avg_score"), exp->avg_score), case_name,
        "avg_score: expected %s in %s", exp->avg_score, got);
  CHECK(number_is(json_object_get(obj, "win_percent"), exp->win_percent),
        case_name, "win_percent: expected %s in %s", exp->win_percent, got);
  const char *at = json_string_value(json_object_get(obj, "updated_at"));
  CHECK(at && e2e_is_rfc3339(at), case_name, "updated_at is not RFC 3339 in %s",
        got);
}

json_t *e2e_fetch_stats(const struct e2e_server *s, const char *player,
                        long *status) {
  char *esc = e2e_escape(player);
  char *target = NULL;
  json_t *res = NULL;
  struct e2e_reply r;
  *status = 0;
  if (!esc || asprintf(&target, "/v1/players/%s/stats", esc) < 0) {
    free(esc);
    return NULL;
  }
  if (e2e_get(s, target, &r) == TS_OK) {
    *status = r.status;
    if (r.status == 200 && json_is_object(r.json))
      res = json_incref(r.json);
  }
  e2e_reply_clear(&r);
  free(target);
  free(esc);
  return res;
}

void e2e_expect_stats(const struct e2e_server *s, const char *case_name,
                      const struct e2e_expect *exp) {
  long status = 0;
  json_t *got = e2e_fetch_stats(s, exp->player, &status);
  CHECK(status == 200 && got, case_name,
        "GET stats of \"%s\": status %ld, expected 200", exp->player, status);
  if (got) {
    e2e_check_stats(case_name, got, exp);
    /* A GET reflects a write: asking twice gives the same answer. */
  }
  json_decref(got);
}

void e2e_check_problem(const char *case_name, const struct e2e_reply *r,
                       long status, const char *code) {
  char want_type[128];
  snprintf(want_type, sizeof want_type, "urn:tourney-stats:problem:%s", code);
  bool ok = r->curl == CURLE_OK;
  CHECK(ok, case_name, "transport failure: %s", curl_easy_strerror(r->curl));
  if (!ok)
    return;
  CHECK(r->status == status, case_name, "status %ld, expected %ld", r->status,
        status);
  bool ct = r->content_type &&
            strncasecmp(r->content_type, "application/problem+json", 24) == 0 &&
            (r->content_type[24] == '\0' || r->content_type[24] == ';');
  CHECK(ct, case_name, "Content-Type %s, expected application/problem+json",
        r->content_type ? r->content_type : "(none)");
  const json_t *j = r->json;
  CHECK(json_is_object(j), case_name, "problem body is not a JSON object");
  if (!json_is_object(j) || r->status != status) {
    print_body(r);
    return;
  }
  const char *type = json_string_value(json_object_get(j, "type"));
  const char *got_code = json_string_value(json_object_get(j, "code"));
  CHECK(type && strcmp(type, want_type) == 0, case_name, "type %s, expected %s",
        type ? type : "(none)", want_type);
  CHECK(got_code && strcmp(got_code, code) == 0, case_name,
        "code %s, expected %s", got_code ? got_code : "(none)", code);
  CHECK(integer_is(json_object_get(j, "status"), status), case_name,
        "problem status member is not %ld", status);
  CHECK(json_is_string(json_object_get(j, "title")), case_name,
        "problem has no title");
  CHECK(json_is_string(json_object_get(j, "detail")), case_name,
        "problem has no detail");
}

json_t *e2e_list_all(const struct e2e_server *s, size_t limit, size_t *pages) {
  json_t *all = json_array();
  char *cursor = NULL;
  size_t max = limit ? limit : 50;
  bool failed = false;
  *pages = 0;
  if (!all)
    return NULL;
  for (;;) {
    char target[8192];
    char *esc = cursor ? e2e_escape(cursor) : NULL;
    if (limit && esc)
      snprintf(target, sizeof target, "/v1/players?limit=%zu&cursor=%s", limit,
               esc);
    else if (limit)
      snprintf(target, sizeof target, "/v1/players?limit=%zu", limit);
    else if (esc)
      snprintf(target, sizeof target, "/v1/players?cursor=%s", esc);
    else
      snprintf(target, sizeof target, "/v1/players");
    free(esc);
    struct e2e_reply r;
    enum ts_status st = e2e_get(s, target, &r);
    (*pages)++;
    json_t *players = json_object_get(r.json, "players");
    json_t *next = json_object_get(r.json, "next_cursor");
    bool ok = st == TS_OK && r.status == 200 && json_is_array(players) &&
              (json_is_null(next) || json_is_string(next));
    CHECK(ok, target,
          "page is not 200 {players:[...],next_cursor:string|null}");
    if (!ok) {
      print_body(&r);
      e2e_reply_clear(&r);
      failed = true;
      break;
    }
    CHECK(json_array_size(players) <= max, target,
          "page holds %zu players, limit %zu", json_array_size(players), max);
    json_array_extend(all, players);
    bool more = json_is_string(next);
    bool progress = json_array_size(players) > 0;
    CHECK(!more || progress, target, "empty page with a next_cursor");
    free(cursor);
    cursor = more ? strdup(json_string_value(next)) : NULL;
    e2e_reply_clear(&r);
    if (!more || !progress || !cursor)
      break;
    if (*pages > 200000) {
      CHECK(false, target, "more than 200000 pages; cursor loops?");
      failed = true;
      break;
    }
  }
  free(cursor);
  if (failed) {
    json_decref(all);
    return NULL;
  }
  return all;
}

static bool digits(const char *p, int n) {
  for (int i = 0; i < n; i++)
    if (p[i] < '0' || p[i] > '9')
      return false;
  return true;
}

bool e2e_is_rfc3339(const char *t) {
  /* date-time = full-date "T" partial-time time-offset */
  if (strlen(t) < 20 || !digits(t, 4) || t[4] != '-' || !digits(t + 5, 2) ||
      t[7] != '-' || !digits(t + 8, 2) || (t[10] != 'T' && t[10] != 't') ||
      !digits(t + 11, 2) || t[13] != ':' || !digits(t + 14, 2) ||
      t[16] != ':' || !digits(t + 17, 2))
    return false;
  const char *p = t + 19;
  if (*p == '.') {
    p++;
    if (!digits(p, 1))
      return false;
    while (*p >= '0' && *p <= '9')
      p++;
  }
  if ((*p == 'Z' || *p == 'z') && p[1] == '\0')
    return true;
  return (*p == '+' || *p == '-') && digits(p + 1, 2) && p[3] == ':' &&
         digits(p + 4, 2) && p[6] == '\0';
}

bool e2e_raw_number(const char *body, const char *key, char *buf, size_t cap) {
  char quoted[128];
  snprintf(quoted, sizeof quoted, "\"%s\"", key);
  const char *p = body ? strstr(body, quoted) : NULL;
  if (!p)
    return false;
  p += strlen(quoted);
  while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
    p++;
  if (*p++ != ':')
    return false;
  while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
    p++;
  size_t n = strspn(p, "+-0123456789.eE");
  if (n == 0 || n >= cap)
    return false;
  memcpy(buf, p, n);
  buf[n] = '\0';
  return true;
}

/* ------------------------------------------------------------------ */
/* DynamoDB                                                           */

#define DYNALITE_START_TIMEOUT_MS 15000L
#define DYNALITE_START_ATTEMPTS 3

const char *e2e_ddb_endpoint(void) {
  const char *e = getenv("AWS_ENDPOINT_URL_DYNAMODB");
  if (!e || !*e)
    e = getenv("AWS_ENDPOINT_URL");
  return e && *e ? e : NULL;
}

const char *e2e_ddb_table(void) {
  const char *t = getenv("TS_TABLE");
  return t && *t ? t : "TaTourneyStats";
}

const char *e2e_ddb_dead_letter_table(void) {
  const char *t = getenv("TS_DEAD_LETTER_TABLE");
  return t && *t ? t : "TaTourneyStatsDeadLetters";
}

json_t *e2e_ddb_scan_all(const char *endpoint, const char *table) {
  json_t *items = json_array();
  json_t *start = NULL; /* LastEvaluatedKey of the page before */
  for (;;) {
    json_t *req =
        json_pack("{s:s, s:b}", "TableName", table, "ConsistentRead", 1);
    if (req && start)
      json_object_set(req, "ExclusiveStartKey", start);
    long status = 0;
    json_t *ans = req ? e2e_ddb_call(endpoint, "Scan", req, &status) : NULL;
    json_decref(req);
    json_t *page = json_object_get(ans, "Items");
    if (status != 200 || !json_is_array(page)) {
      fprintf(stderr, "  Scan of %s answered %ld\n", table, status);
      json_decref(ans);
      json_decref(items);
      items = NULL;
      break;
    }
    json_array_extend(items, page);
    json_t *next = json_object_get(ans, "LastEvaluatedKey");
    json_decref(start);
    start = json_is_object(next) ? json_incref(next) : NULL;
    json_decref(ans);
    if (!start)
      break;
  }
  json_decref(start);
  return items;
}

enum ts_status e2e_ddb_get_item(const char *endpoint, const char *table,
                                const char *player, json_t **item) {
  *item = NULL;
  json_t *req = json_pack("{s:s, s:{s:{s:s}}, s:b}", "TableName", table, "Key",
                          "player", "S", player, "ConsistentRead", 1);
  if (!req)
    return TS_ERR_NOMEM;
  long status = 0;
  json_t *ans = e2e_ddb_call(endpoint, "GetItem", req, &status);
  json_decref(req);
  if (status != 200 || !json_is_object(ans)) {
    fprintf(stderr, "  GetItem of %s in %s answered %ld\n", player, table,
            status);
    json_decref(ans);
    return TS_ERR_IO;
  }
  json_t *it = json_object_get(ans, "Item");
  if (json_is_object(it))
    *item = json_incref(it);
  json_decref(ans);
  return TS_OK;
}

/* Sends request (taken) as op; TS_OK when answered 200. */
static enum ts_status ddb_call_take(const char *endpoint, const char *op,
                                    json_t *request) {
  if (!request)
    return TS_ERR_NOMEM;
  long status = 0;
  json_decref(e2e_ddb_call(endpoint, op, request, &status));
  json_decref(request);
  if (status != 200)
    fprintf(stderr, "  %s answered %ld\n", op, status);
  return status == 200 ? TS_OK : TS_ERR_IO;
}

enum ts_status e2e_ddb_put_item(const char *endpoint, const char *table,
                                const json_t *item) {
  return ddb_call_take(
      endpoint, "PutItem",
      json_pack("{s:s, s:O}", "TableName", table, "Item", item));
}

enum ts_status e2e_ddb_delete_table(const char *endpoint, const char *table) {
  return ddb_call_take(endpoint, "DeleteTable",
                       json_pack("{s:s}", "TableName", table));
}

enum ts_status e2e_create_tables(const char *endpoint, int *exit_code) {
  char *argv[] = {(char *)e2e_bin(), "create-table", NULL};
  char *ep = NULL;
  *exit_code = -1;
  if (endpoint && asprintf(&ep, "AWS_ENDPOINT_URL_DYNAMODB=%s", endpoint) < 0)
    return TS_ERR_NOMEM;
  const char *set[] = {"TS_STORE=dynamodb", ep, NULL};
  char *out = e2e_run_capture_env(argv, set, exit_code);
  if (*exit_code != 0)
    fprintf(stderr, "  %s create-table exited with status %d: %.2000s\n",
            e2e_bin(), *exit_code, out ? out : "");
  free(out);
  free(ep);
  return *exit_code == 0 ? TS_OK : TS_ERR_IO;
}

struct e2e_dynalite {
  pid_t pid;
  bool exited;
  int port;
  char endpoint[64];
};

/* A loopback port the kernel handed out just now; dynalite may still lose
 * a race for it, which e2e_dynalite_start() survives by trying again. */
static int free_loopback_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof a;
  int port = -1;
  if (fd < 0)
    return -1;
  if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
      getsockname(fd, (struct sockaddr *)&a, &len) == 0)
    port = ntohs(a.sin_port);
  close(fd);
  return port;
}

static size_t discard(char *data, size_t size, size_t nmemb, void *arg) {
  (void)data;
  (void)arg;
  return size * nmemb;
}

/* True when something answers HTTP at url (any status). */
static bool http_answers(const char *url) {
  CURL *c = curl_easy_init();
  long status = 0;
  if (!c)
    return false;
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 1000L);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
  CURLcode rc = curl_easy_perform(c);
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(c);
  return rc == CURLE_OK && status > 0;
}

static void dynalite_reap(struct e2e_dynalite *d, bool block) {
  int wst = 0;
  while (!d->exited) {
    pid_t r = waitpid(d->pid, &wst, block ? 0 : WNOHANG);
    if (r == d->pid || (r < 0 && errno != EINTR))
      d->exited = true;
    if (r == 0 || (r < 0 && errno == EINTR && !block))
      break;
  }
}

/* Spawns dynalite on port and waits until it answers; false when it died
 * or stayed silent. */
static bool dynalite_try(const char *bin, int port, struct e2e_dynalite *d) {
  char port_text[16];
  snprintf(port_text, sizeof port_text, "%d", port);
  pid_t parent = getpid();
  memset(d, 0, sizeof *d);
  d->port = port;
  snprintf(d->endpoint, sizeof d->endpoint, "http://127.0.0.1:%d", port);
  d->pid = fork();
  if (d->pid < 0)
    return false;
  if (d->pid == 0) {
    /* Dies with the test process, like the servers. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
      _exit(127);
    int devnull = open("/dev/null", O_RDWR);
    if (devnull >= 0) {
      dup2(devnull, 0);
      dup2(devnull, 1);
    }
    execl(bin, bin, "--host", "127.0.0.1", "--port", port_text,
          "--createTableMs", "0", "--deleteTableMs", "0", "--updateTableMs",
          "0", (char *)NULL);
    _exit(127);
  }
  long deadline = now_ms() + DYNALITE_START_TIMEOUT_MS;
  while (now_ms() < deadline) {
    dynalite_reap(d, false);
    if (d->exited)
      return false;
    if (http_answers(d->endpoint))
      return true;
    e2e_sleep_ms(50);
  }
  kill(d->pid, SIGKILL);
  dynalite_reap(d, true);
  return false;
}

enum ts_status e2e_dynalite_start(struct e2e_dynalite **out) {
  const char *bin = getenv("TS_TEST_DYNALITE");
  *out = NULL;
  if (!bin || !*bin || access(bin, X_OK) != 0) {
    fprintf(stderr, "\n  TS_TEST_DYNALITE must name the dynalite executable "
                    "(tests/tools/node_modules/.bin/dynalite)\n");
    return TS_ERR_INVALID;
  }
  struct e2e_dynalite *d = calloc(1, sizeof *d);
  if (!d)
    return TS_ERR_NOMEM;
  for (int i = 0; i < DYNALITE_START_ATTEMPTS; i++) {
    int port = free_loopback_port();
    if (port > 0 && dynalite_try(bin, port, d)) {
      *out = d;
      return TS_OK;
    }
    fprintf(stderr, "\n  dynalite did not come up on port %d\n", port);
  }
  free(d);
  return TS_ERR_IO;
}

enum ts_status e2e_dynalite_start_with_tables(struct e2e_dynalite **out) {
  enum ts_status st = e2e_dynalite_start(out);
  if (st != TS_OK)
    return st;
  int code = -1;
  st = e2e_create_tables(e2e_dynalite_endpoint(*out), &code);
  if (st != TS_OK) {
    e2e_dynalite_stop(*out);
    *out = NULL;
  }
  return st;
}

const char *e2e_dynalite_endpoint(const struct e2e_dynalite *d) {
  return d->endpoint;
}

bool e2e_dynalite_signal(struct e2e_dynalite *d, int sig) {
  if (!d || d->exited)
    return false;
  return kill(d->pid, sig) == 0;
}

void e2e_dynalite_stop(struct e2e_dynalite *d) {
  if (!d)
    return;
  if (!d->exited) {
    kill(d->pid, SIGKILL); /* also ends a stopped (SIGSTOP) process */
    dynalite_reap(d, true);
  }
  free(d);
}

/* ------------------------------------------------------------------ */
/* suites                                                             */

int e2e_suite_server_up(struct e2e_server **s) {
  return e2e_server_start(NULL, s) == TS_OK ? 0 : CUE_SINIT_FAILED;
}

int e2e_suite_server_down(struct e2e_server **s) {
  int code = -1;
  if (!*s)
    return 0;
  e2e_server_stop(*s, &code);
  *s = NULL;
  return code == 0 ? 0 : CUE_SCLEAN_FAILED;
}

bool e2e_applied_digest(const char *event_id, char out[17]) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  return EVP_Digest(event_id, strlen(event_id), md, &md_len, EVP_sha256(),
                    NULL) &&
         EVP_EncodeBlock((unsigned char *)out, md, 12) == 16;
}

long e2e_attr_binary(const json_t *item, const char *name, unsigned char *buf,
                     size_t cap) {
  const char *text =
      json_string_value(json_object_get(json_object_get(item, name), "B"));
  size_t len = text ? strlen(text) : 0;
  if (!text || len % 4 != 0 || len / 4 * 3 > cap)
    return -1;
  if (len == 0)
    return 0;
  int got = EVP_DecodeBlock(buf, (const unsigned char *)text, (int)len);
  if (got < 0)
    return -1;
  long pad = text[len - 1] == '=' ? (text[len - 2] == '=' ? 2 : 1) : 0;
  return got - pad;
}

json_t *e2e_attr_b(const unsigned char *bytes, size_t n) {
  char *text = malloc(4 * ((n + 2) / 3) + 1);
  if (!text)
    return NULL;
  EVP_EncodeBlock((unsigned char *)text, bytes, (int)n);
  json_t *a = json_pack("{s:s}", "B", text);
  free(text);
  return a;
}

/* The recent log's raw bytes (malloc'd, *n), NULL when there is none. */
static unsigned char *recent_bytes(const json_t *item, long *n) {
  const char *text =
      json_string_value(json_object_get(json_object_get(item, "recent"), "B"));
  size_t cap = text ? strlen(text) : 0;
  unsigned char *buf = malloc(cap + 4);
  *n = buf ? e2e_attr_binary(item, "recent", buf, cap + 4) : -1;
  if (*n < 0) {
    free(buf);
    return NULL;
  }
  return buf;
}

bool e2e_applied_has(const json_t *item, const char *event_id) {
  char digest[17];
  if (!e2e_applied_digest(event_id, digest))
    return false;
  long n = 0;
  unsigned char *recent = recent_bytes(item, &n);
  for (long i = 0; recent && i + 16 <= n; i += 16) {
    char key[17];
    EVP_EncodeBlock((unsigned char *)key, recent + i, 12);
    if (strcmp(key, digest) == 0) {
      free(recent);
      return true;
    }
  }
  free(recent);
  json_t *map = json_object_get(json_object_get(item, "applied"), "M");
  const char *hour;
  json_t *bucket;
  json_object_foreach(map, hour, bucket) {
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(bucket, "BS"), i, d) {
      if (strcmp(json_string_value(d), digest) == 0)
        return true;
    }
  }
  return false;
}

size_t e2e_applied_count(const json_t *item) {
  json_t *map = json_object_get(json_object_get(item, "applied"), "M");
  const char *hour;
  json_t *bucket;
  size_t n = 0;
  json_object_foreach(map, hour, bucket) {
    n += json_array_size(json_object_get(bucket, "BS"));
  }
  long len = 0;
  free(recent_bytes(item, &len));
  return n + (len > 0 ? (size_t)len / 16 : 0);
}

size_t e2e_applied_chunks(const json_t *item) {
  const char *text =
      json_string_value(json_object_get(json_object_get(item, "chunks"), "B"));
  size_t cap = text ? strlen(text) : 0;
  unsigned char *buf = malloc(cap + 4);
  long n = buf ? e2e_attr_binary(item, "chunks", buf, cap + 4) : -1;
  free(buf);
  return n > 0 ? (size_t)n / 24 : 0;
}

const char *e2e_ddb_applied_log_table(void) {
  static char name[300];
  const char *t = getenv("TS_APPLIED_LOG_TABLE");
  if (t && *t)
    return t;
  snprintf(name, sizeof name, "%sAppliedLog", e2e_ddb_table());
  return name;
}

json_t *e2e_ddb_call(const char *endpoint, const char *op,
                     const json_t *request, long *status) {
  struct growbuf body = {.max = MAX_REPLY_BYTES};
  struct curl_slist *hdrs = NULL;
  char target[128];
  json_t *answer = NULL;
  char *text = json_dumps(request, JSON_COMPACT);
  CURL *c = curl_easy_init();
  *status = 0;
  if (!endpoint)
    endpoint = e2e_ddb_endpoint();
  snprintf(target, sizeof target, "X-Amz-Target: DynamoDB_20120810.%s", op);
  const char *const lines[] = {
      "Content-Type: application/x-amz-json-1.0", target,
      "X-Amz-Date: 20260101T000000Z",
      "Authorization: AWS4-HMAC-SHA256 Credential=AKIDTEST/20260101/"
      "us-east-1/dynamodb/aws4_request, SignedHeaders=host;x-amz-date, "
      "Signature=00"};
  for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
    struct curl_slist *n = curl_slist_append(hdrs, lines[i]);
    if (n)
      hdrs = n;
  }
  if (!c || !text || !endpoint)
    goto out;
  curl_easy_setopt(c, CURLOPT_URL, endpoint);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, text);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
  if (curl_easy_perform(c) != CURLE_OK)
    goto out;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
  answer = body.p ? json_loadb(body.p, body.len, 0, NULL) : NULL;
out:
  curl_slist_free_all(hdrs);
  curl_easy_cleanup(c);
  free(text);
  free(body.p);
  return answer;
}

void e2e_ingest_all(const struct e2e_server *s, const char *case_name,
                    json_t *records) {
  json_t *body = e2e_lambda(records);
  json_decref(records);
  struct e2e_reply r;
  struct e2e_summary sum;
  long n = (long)json_array_size(json_object_get(body, "Records"));
  if (e2e_ingest(s, case_name, body, &r, &sum))
    e2e_check_summary(case_name, &sum, n, n, 0, 0, 0);
  e2e_reply_clear(&r);
  json_decref(body);
}
