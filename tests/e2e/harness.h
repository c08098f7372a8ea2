/* End-to-end harness: runs the real tourney-stats binary as a child process
 * and talks to it over HTTP with libcurl. Black box: nothing here links the
 * service's code.
 *
 * Environment of the test process:
 *   TS_TEST_BIN       path of build/tourney-stats (required)
 *   TS_TEST_STORE     "sqlite" (default) or "dynamodb"; for dynamodb the
 *                     server inherits AWS_*, TS_TABLE and
 *                     TS_DEAD_LETTER_TABLE from the test process (see
 *                     tests/e2e/with-dynalite.sh), and tests stay correct on
 *                     a shared table because every player name carries a
 *                     per-run prefix
 *   TS_TEST_DYNALITE  the dynalite executable, for tests that start a
 *                     private instance (dynamodb only)
 *   TS_TEST_REQUESTS  folder holding invalid/<case>/ (the request corpus)
 *   TS_TEST_SEED      seed of the random-stream test (optional)
 *
 * Every assertion helper here uses CU_ASSERT, so it must run inside a test. */
#ifndef TS_TESTS_E2E_HARNESS_H
#define TS_TESTS_E2E_HARNESS_H

#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/status.h"

/* ---- configuration of the run ---- */

/* Reads TS_TEST_* once; returns TS_ERR_INVALID (and says why on stderr)
 * when TS_TEST_BIN is missing or not executable. */
enum ts_status e2e_config_load(void) TS_WARN_UNUSED;
const char *e2e_store_kind(void); /* "sqlite" or "dynamodb" */
bool e2e_store_is_sqlite(void);
const char *e2e_requests_dir(void); /* NULL when TS_TEST_REQUESTS is unset */
const char *e2e_bin(void);

/* A prefix unique to this run ("e2e-<stamp>-<pid>-"), so that names never
 * collide with an earlier run on a shared store. */
const char *e2e_run_prefix(void);

/* Formats "<run prefix><tag>" into buf; returns buf. */
char *e2e_name(char *buf, size_t cap, const char *tag);

/* ---- temporary folders ---- */

/* Creates a fresh folder under $TMPDIR (or /tmp); *out is malloc'd. */
enum ts_status e2e_dir_new(char **out) TS_WARN_UNUSED;
/* Removes the folder and everything in it. NULL is accepted. */
void e2e_dir_remove(const char *dir);

/* ---- the server process ---- */

struct e2e_server;

struct e2e_server_opts {
  const char *dir;              /* data folder to reuse (restart); NULL: a
                                   new one owned by the server */
  bool use_flags;               /* configure by flags instead of env */
  const char *const *extra_env; /* NULL-terminated "NAME=value" list */
};

/* Starts the binary, waits for its "listening" log line and for /healthz to
 * answer 200. On failure prints the log and returns non-TS_OK. */
enum ts_status e2e_server_start(const struct e2e_server_opts *opt,
                                struct e2e_server **out) TS_WARN_UNUSED;

struct e2e_dynalite;
/* e2e_server_start on the private dynalite d (AWS_ENDPOINT_URL_DYNAMODB
 * set to it), with the NAME=value entries of extra (at most 6, may be
 * NULL). */
enum ts_status e2e_server_start_on(const struct e2e_dynalite *d,
                                   const char *const *extra,
                                   struct e2e_server **out) TS_WARN_UNUSED;
/* The same with AWS_ENDPOINT_URL_DYNAMODB set to endpoint. */
enum ts_status e2e_server_start_at(const char *endpoint,
                                   const char *const *extra,
                                   struct e2e_server **out) TS_WARN_UNUSED;

/* Sends SIGTERM and waits up to 15 s; *exit_code is the exit status, or
 * 128+signal when it died of a signal, or -1 when it had to be killed.
 * Prints the server log when the exit code is not 0 or when a CUnit
 * assertion failed while it ran, and then keeps its folder. Frees s. */
void e2e_server_stop(struct e2e_server *s, int *exit_code);

/* Kills the server with SIGKILL (a crash), waits for it and frees s. */
void e2e_server_kill(struct e2e_server *s);

/* Sends SIGTERM only (once); the caller later calls e2e_server_stop(),
 * which then only waits. */
void e2e_server_signal_term(struct e2e_server *s);

int e2e_server_port(const struct e2e_server *s);
const char *e2e_server_dir(const struct e2e_server *s);
/* The SQLite file the server uses; NULL for other stores. */
const char *e2e_server_db_path(const struct e2e_server *s);
/* True while the process has not exited. */
bool e2e_server_alive(struct e2e_server *s);
/* Prints the last lines of the server log to stderr. */
void e2e_server_dump_log(const struct e2e_server *s);
/* The server's log so far (its stdout and stderr), malloc'd; NULL if none. */
char *e2e_server_log(const struct e2e_server *s);
/* Whether a line of the server's log holds a (and b, unless NULL) within
 * timeout_ms. A line reaches the file through the harness's reader thread
 * some time after the server wrote it, so a test waits for it rather than
 * race it. */
bool e2e_server_log_has(const struct e2e_server *s, const char *a,
                        const char *b, long timeout_ms);

/* ---- HTTP ---- */

struct e2e_reply {
  CURLcode curl;      /* transport outcome; CURLE_OK when an answer came */
  long status;        /* HTTP status, 0 when none */
  char *content_type; /* NULL when absent */
  char *headers;      /* raw header block of the final answer */
  char *body;         /* NUL-terminated; body_len excludes the NUL */
  size_t body_len;
  json_t *json;   /* the body parsed, NULL when it is not JSON */
  double seconds; /* total time of the exchange */
};
void e2e_reply_clear(struct e2e_reply *r);

/* Copies the value of the first header called name (case-insensitive) into
 * buf; returns false when there is none. */
bool e2e_reply_header(const struct e2e_reply *r, const char *name, char *buf,
                      size_t cap);

/* The value of a sample in a /metrics text: `sample` is the series name
 * with its labels and the space after them (e.g. "ts_x_total " or
 * "ts_y_total{kind=\"a\"} "), matched only at the start of a line so that
 * a HELP line never counts; -1 when there is none. */
double e2e_metric(const char *text, const char *sample);
/* The same sample in the server's GET /metrics now; -1 when there is none
 * or /metrics did not answer 200. */
double e2e_server_metric(const struct e2e_server *s, const char *sample);
/* The same once it reaches want, or its value after 5 s. */
double e2e_server_metric_reaching(const struct e2e_server *s,
                                  const char *sample, double want);
/* The games the server's GET /v1/leaderboard?by=games&limit=100 shows for
 * player; -1 when it is not on the board (a failed GET is a test failure). */
long e2e_board_games(const struct e2e_server *s, const char *player);

struct e2e_request {
  const char *method;         /* "GET", "POST", ... */
  const char *target;         /* path and query, sent exactly as given */
  const char *const *headers; /* NULL-terminated "Name: value" list */
  const char *body;           /* NULL: no body */
  size_t body_len;
  bool no_content_type; /* suppress libcurl's default Content-Type */
  long timeout_ms;      /* 0: 30 s */
};

/* Performs one exchange on a new connection. TS_OK once an HTTP answer was
 * read; TS_ERR_IO on a transport failure (out->curl says which). */
enum ts_status e2e_http(const struct e2e_server *s,
                        const struct e2e_request *rq, struct e2e_reply *out);
enum ts_status e2e_get(const struct e2e_server *s, const char *target,
                       struct e2e_reply *out);
/* POSTs body (serialised compactly) as application/json. */
enum ts_status e2e_post_json(const struct e2e_server *s, const char *target,
                             const json_t *body, struct e2e_reply *out);

/* Percent-encodes everything but unreserved characters (RFC 3986). The
 * result is malloc'd. */
char *e2e_escape(const char *text);

/* ---- assertions on answers ---- */

/* The counts of a 200 ingestion answer. */
struct e2e_summary {
  long received, applied, duplicates, skipped;
  size_t rejected;       /* length of the rejected list */
  json_t *rejected_list; /* borrowed from the reply */
};

/* POSTs body to /v1/stream-records and asserts a 200 answer with a well
 * formed summary (counts are non-negative integers adding up to received,
 * every rejected entry has a non-empty reason). Returns true when all that
 * held; *out borrows from *reply, which the caller clears. */
bool e2e_ingest(const struct e2e_server *s, const char *case_name,
                const json_t *body, struct e2e_reply *reply,
                struct e2e_summary *out);

/* Asserts the summary counts; names the case on failure. */
/* e2e_ingest, then e2e_check_summary with the counts given. */
void e2e_ingest_expect(const struct e2e_server *s, const char *case_name,
                       const json_t *body, long received, long applied,
                       long duplicates, long skipped, size_t rejected);
/* Posts {"Records": records} and expects every record applied; takes the
 * caller's reference to records. */
void e2e_ingest_all(const struct e2e_server *s, const char *case_name,
                    json_t *records);
void e2e_check_summary(const char *case_name, const struct e2e_summary *got,
                       long received, long applied, long duplicates,
                       long skipped, size_t rejected);

/* Expected stats of a player. Decimal values are given as text and
 * compared as the nearest double, which tells "0.3" from
 * 0.30000000000000004. */
struct e2e_expect {
  const char *player;
  long games, wins;
  const char *total_score, *avg_score, *win_percent;
};

/* Asserts that obj is a stats object matching exp, with losses = games -
 * wins and an RFC 3339 updated_at. */
void e2e_check_stats(const char *case_name, const json_t *obj,
                     const struct e2e_expect *exp);

/* GETs /v1/players/{escaped}/stats and checks it against exp. */
void e2e_expect_stats(const struct e2e_server *s, const char *case_name,
                      const struct e2e_expect *exp);

/* GETs the stats of player; returns the stats object (new reference) when
 * the answer was 200, else NULL (after asserting nothing). *status gets the
 * HTTP status. */
json_t *e2e_fetch_stats(const struct e2e_server *s, const char *player,
                        long *status);

/* Asserts an RFC 9457 problem answer: status, application/problem+json,
 * type "urn:tourney-stats:problem:<code>", integer status, string title,
 * detail and code. */
void e2e_check_problem(const char *case_name, const struct e2e_reply *r,
                       long status, const char *code);

/* Walks GET /v1/players?limit=limit (limit 0: no limit parameter) page by
 * page; asserts each page is well formed and holds at most limit (or 50)
 * players. Returns every player object in order (new reference), or NULL
 * when a page failed. *pages gets the number of pages read. */
json_t *e2e_list_all(const struct e2e_server *s, size_t limit, size_t *pages);

/* True when text is an RFC 3339 date-time. */
bool e2e_is_rfc3339(const char *text);

/* Finds the raw text of the number that is the value of "key" in a JSON
 * object's text (first occurrence); copies it into buf. */
bool e2e_raw_number(const char *body, const char *key, char *buf, size_t cap);

/* Reads a whole file; *out is malloc'd and NUL-terminated. */
enum ts_status e2e_read_file(const char *path, char **out,
                             size_t *len) TS_WARN_UNUSED;

/* Runs argv (PATH lookup) with stdin from /dev/null; returns its stdout
 * (malloc'd, NULL if it could not run) and its exit code (128+signal when
 * killed). */
char *e2e_run_capture(char *const argv[], int *exit_code);

/* e2e_run_capture with the "NAME=value" entries of set_env (NULL-terminated,
 * may be NULL) replacing or adding environment variables of the child. */
char *e2e_run_capture_env(char *const argv[], const char *const *set_env,
                          int *exit_code);

/* Runs `sqlite3 -bail <db> <sql>` and returns its stdout (malloc'd) or NULL
 * when it failed. */
char *e2e_sqlite_query(const char *db, const char *sql);

/* Raw HTTP for requests a well-behaved client library will not send, and
 * for keep-alive connections a test holds open. e2e_raw_connect returns a
 * connected socket (-1 on failure). e2e_raw_talk sends `len` bytes and
 * reads until the server closes the connection or `wait_ms` pass without
 * a byte; it returns what was read (malloc'd, NUL-terminated, *got_len
 * set) and whether the server closed. e2e_raw_exchange does both on a
 * new connection and closes it. */
int e2e_raw_connect(const struct e2e_server *s);
char *e2e_raw_talk(int fd, const char *bytes, size_t len, int wait_ms,
                   size_t *got_len, bool *closed);
char *e2e_raw_exchange(const struct e2e_server *s, const char *bytes,
                       size_t len, int wait_ms, size_t *got_len, bool *closed);
/* e2e_raw_ask sends `len` bytes on a connection kept alive and reads one
 * whole answer (its head and its Content-Length's body), and the server's
 * close when that answer says Connection: close; it stops there, at a
 * close, or after deadline_ms in all, so a slow answer is waited for and
 * a fast one is not. Returns and sets as e2e_raw_talk. */
char *e2e_raw_ask(int fd, const char *bytes, size_t len, int deadline_ms,
                  size_t *got_len, bool *closed);
/* body as the raw bytes of a POST /v1/stream-records (JSON, with its
 * Content-Length) in out; the length, or 0 when it does not fit. */
size_t e2e_raw_post(const json_t *body, char *out, size_t cap);

/* One POST /v1/stream-records on its own thread, for tests that need
 * several in flight at once. After e2e_post_join, status (0: no answer)
 * and answer (the parsed body, or NULL) are set; e2e_post_clear frees. */
struct e2e_post_job {
  const struct e2e_server *s;
  char *text;
  pthread_t thread;
  bool started;
  long status;
  json_t *answer;
};
void e2e_post_start(struct e2e_post_job *j, const struct e2e_server *s,
                    const json_t *body);
void e2e_post_join(struct e2e_post_job *j);
void e2e_post_clear(struct e2e_post_job *j);

/* A sqlite3 shell holding the server's database locked (BEGIN EXCLUSIVE):
 * the server's writes wait (SQLITE_BUSY) until it is released. */
struct e2e_sqlite_lock {
  pid_t shell;
  int shell_in;
};
/* True once the lock is held (up to 5 s). */
bool e2e_sqlite_lock_take(const struct e2e_server *s,
                          struct e2e_sqlite_lock *out);
/* Rolls back and ends the shell; a lock not taken is ignored. */
void e2e_sqlite_lock_release(struct e2e_sqlite_lock *l);

/* Sleeps for ms milliseconds. */
void e2e_sleep_ms(long ms);
/* Milliseconds on CLOCK_MONOTONIC, for measuring how long something took. */
uint64_t e2e_now_ms(void);

/* How much slower than an optimised build the server under test is built
 * to run (1, or 4 for a sanitized or Debug build; see CMakeLists.txt):
 * multiplies a limit on the server's own work time. Limits set by the
 * server's deadlines are not scaled: it answers by them whatever its
 * build. */
double e2e_time_scale(void);

/* ---- DynamoDB (TS_TEST_STORE=dynamodb, see tests/e2e/with-dynalite.sh) ----
 */

/* AWS_ENDPOINT_URL_DYNAMODB, else AWS_ENDPOINT_URL, else NULL. */
const char *e2e_ddb_endpoint(void);
/* TS_TABLE / TS_DEAD_LETTER_TABLE of the test process, else the defaults. */
const char *e2e_ddb_table(void);
const char *e2e_ddb_dead_letter_table(void);

/* The stored item's exactly-once log (DynamoDB store): `recent`, a binary
 * attribute of 16-byte records (the first 12 bytes of SHA-256 of the
 * eventID, then the record's creation time, u32 big-endian), and `chunks`,
 * 24-byte descriptors of chunk items in the applied-log table (8-byte
 * nonce, then u32 big-endian creation-time range lo and hi, time spilled,
 * digest count); items of the former format have `applied`, hour buckets
 * of base64 digests. The digest of an eventID (base64, 16 characters);
 * whether `event_id` is in `recent` (or `applied`); how many digests
 * `recent` (and `applied`) hold; how many descriptors `chunks` holds. */
bool e2e_applied_digest(const char *event_id, char out[17]);
bool e2e_applied_has(const json_t *item, const char *event_id);
size_t e2e_applied_count(const json_t *item);
size_t e2e_applied_chunks(const json_t *item);
/* Decodes the base64 of a B attribute `name` of item into buf (at most
 * cap bytes); returns the length, or -1 when absent or not base64. */
long e2e_attr_binary(const json_t *item, const char *name, unsigned char *buf,
                     size_t cap);
/* {"B": base64 of n bytes} (new reference). */
json_t *e2e_attr_b(const unsigned char *bytes, size_t n);
/* TS_APPLIED_LOG_TABLE, else TS_TABLE + "AppliedLog" (the server's
 * default). */
const char *e2e_ddb_applied_log_table(void);
/* One DynamoDB API call (op e.g. "PutItem") sent to endpoint (NULL:
 * e2e_ddb_endpoint()) as raw JSON, with a dummy signature (dynalite does
 * not check it). Returns the parsed answer and *status, or NULL. */
json_t *e2e_ddb_call(const char *endpoint, const char *op,
                     const json_t *request, long *status);

/* The tests' own reads and writes, through e2e_ddb_call (not the AWS CLI,
 * whose process cost about a second a call).
 * Every item of table (consistent scan, all pages), as DynamoDB JSON; NULL
 * when a call failed. */
json_t *e2e_ddb_scan_all(const char *endpoint, const char *table);
/* GetItem with ConsistentRead of the item keyed player (S); *item is NULL
 * when there is none. TS_ERR_IO when the call failed. */
enum ts_status e2e_ddb_get_item(const char *endpoint, const char *table,
                                const char *player, json_t **item);
enum ts_status e2e_ddb_put_item(const char *endpoint, const char *table,
                                const json_t *item);
enum ts_status e2e_ddb_delete_table(const char *endpoint, const char *table);

/* Runs `TS_TEST_BIN create-table` with TS_STORE=dynamodb against endpoint
 * (NULL: the inherited one); TS_OK when it exited 0. */
enum ts_status e2e_create_tables(const char *endpoint, int *exit_code);

/* A private, in-memory dynalite on a free loopback port (TS_TEST_DYNALITE),
 * for tests that stop or freeze their store. It dies with the test
 * process. */
struct e2e_dynalite;
enum ts_status e2e_dynalite_start(struct e2e_dynalite **out) TS_WARN_UNUSED;
/* e2e_dynalite_start, then e2e_create_tables on it. On failure nothing is
 * left running and *out is NULL. */
enum ts_status
e2e_dynalite_start_with_tables(struct e2e_dynalite **out) TS_WARN_UNUSED;
/* "http://127.0.0.1:<port>" */
const char *e2e_dynalite_endpoint(const struct e2e_dynalite *d);
/* Sends sig (SIGSTOP freezes it, SIGCONT resumes it); false when it is
 * gone. */
bool e2e_dynalite_signal(struct e2e_dynalite *d, int sig);
/* Kills it (SIGKILL), reaps it and frees d. NULL is accepted. */
void e2e_dynalite_stop(struct e2e_dynalite *d);

/* ---- suites ---- */

/* Suite set-up and clean-up around one shared server: up returns 0 or
 * CUE_SINIT_FAILED; down returns CUE_SCLEAN_FAILED when the server did not
 * exit 0 on SIGTERM, which fails the run. */
int e2e_suite_server_up(struct e2e_server **s);
int e2e_suite_server_down(struct e2e_server **s);

/* Adds a suite with set-up and clean-up functions and the given tests
 * (TS_TEST entries from tests/unit/unit.h). */
#define E2E_SUITE(name, init, clean, ...)                                      \
  do {                                                                         \
    CU_pSuite s_ = CU_add_suite(name, init, clean);                            \
    struct {                                                                   \
      const char *n;                                                           \
      CU_TestFunc f;                                                           \
    } t_[] = {__VA_ARGS__};                                                    \
    for (size_t i_ = 0; s_ && i_ < sizeof t_ / sizeof t_[0]; i_++)             \
      CU_add_test(s_, t_[i_].n, t_[i_].f);                                     \
  } while (0)

#endif /* TS_TESTS_E2E_HARNESS_H */
