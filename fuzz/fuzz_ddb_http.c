/* Fuzzes the DynamoDB client's handling of a response: the input is the
 * raw HTTP answer (status line, headers such as x-amz-crc32, body) that a
 * fake endpoint on loopback gives to every request of one ddb_execute
 * call. This reaches the parts of aws/ddb.c that read what the network
 * sends: the header and body callbacks, the CRC check, the JSON body and
 * __type parsing, the classification and the retry loop (with a deadline
 * of DEADLINE_MS, so a retried answer costs a few milliseconds).
 *
 * Invariants: ddb_execute returns TS_OK with one of the four outcomes;
 * DDB_DONE only for HTTP 200 with a JSON object; DDB_CONDITION_FAILED only
 * for ConditionalCheckFailedException, with the error body; the error
 * fields are NUL-terminated text; nothing leaks. */
#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "aws/creds.h"
#include "aws/ddb.h"
#include "common/clock.h"
#include "input.h"

/* Long enough for one attempt and a quick retry on loopback. */
#define DEADLINE_MS 15u
/* A request bigger than this is not ours. */
#define MAX_REQUEST_BYTES (1u << 20)

static int listen_fd = -1;
static uint16_t port;
static pthread_mutex_t answer_mu = PTHREAD_MUTEX_INITIALIZER;
static uint8_t *answer;
static size_t answer_len;
static struct aws_creds_provider *provider;
static struct ddb_client *client;
static json_t *request_json;

/* Reads one request (headers and a Content-Length body) so that closing
 * afterwards does not reset the connection under the client. */
static void read_request(int fd) {
  char *buf = malloc(MAX_REQUEST_BYTES + 1);
  size_t n = 0, need = 0;
  if (!buf)
    return;
  for (;;) {
    ssize_t r = recv(fd, buf + n, MAX_REQUEST_BYTES - n, 0);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      break;
    n += (size_t)r;
    buf[n] = '\0';
    if (!need) {
      char *end = strstr(buf, "\r\n\r\n");
      if (!end)
        continue;
      size_t body = 0;
      char *cl = strcasestr(buf, "\r\ncontent-length:");
      if (cl && cl < end)
        body = strtoul(cl + 17, NULL, 10);
      need = (size_t)(end + 4 - buf) + body;
    }
    if (n >= need || n == MAX_REQUEST_BYTES)
      break;
  }
  free(buf);
}

static void *serve(void *arg) {
  (void)arg;
  for (;;) {
    int fd = accept(listen_fd, NULL, NULL);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED)
        continue;
      return NULL;
    }
    struct timeval tv = {.tv_sec = 2};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    read_request(fd);
    pthread_mutex_lock(&answer_mu);
    size_t len = answer_len;
    uint8_t *copy = malloc(len ? len : 1);
    if (copy && len)
      memcpy(copy, answer, len);
    pthread_mutex_unlock(&answer_mu);
    for (size_t off = 0; copy && off < len;) {
      ssize_t w = send(fd, copy + off, len - off, MSG_NOSIGNAL);
      if (w < 0 && errno == EINTR)
        continue;
      if (w <= 0)
        break;
      off += (size_t)w;
    }
    free(copy);
    shutdown(fd, SHUT_WR);
    close(fd);
  }
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  signal(SIGPIPE, SIG_IGN);
  listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  FUZZ_CHECK(listen_fd >= 0, "socket: %s", strerror(errno));
  struct sockaddr_in sa = {.sin_family = AF_INET};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t sl = sizeof sa;
  FUZZ_CHECK(bind(listen_fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
                 listen(listen_fd, 64) == 0 &&
                 getsockname(listen_fd, (struct sockaddr *)&sa, &sl) == 0,
             "cannot listen on loopback: %s", strerror(errno));
  port = ntohs(sa.sin_port);
  pthread_t t;
  FUZZ_CHECK(pthread_create(&t, NULL, serve, NULL) == 0, "pthread_create");
  pthread_detach(t);

  /* Credentials from the environment only; nothing else is tried. */
  setenv("AWS_ACCESS_KEY_ID", "AKIDFUZZ", 1);
  setenv("AWS_SECRET_ACCESS_KEY", "fuzz-secret", 1);
  unsetenv("AWS_SESSION_TOKEN");
  unsetenv("AWS_CA_BUNDLE");
  setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
  char endpoint[64];
  snprintf(endpoint, sizeof endpoint, "http://127.0.0.1:%u", (unsigned)port);
  struct ddb_options opt = {.region = "us-east-1", .endpoint = endpoint};
  FUZZ_CHECK(aws_creds_provider_new(&provider) == TS_OK &&
                 ddb_client_new(&opt, provider, &client) == TS_OK,
             "cannot make the DynamoDB client");
  request_json =
      json_pack("{s:s, s:{s:{s:s}}, s:b}", "TableName", "TaTourneyStats", "Key",
                "player", "S", "alice", "ConsistentRead", 1);
  FUZZ_CHECK(request_json, "json_pack failed");
  return 0;
}

static bool is_text(const char *s, size_t cap) {
  return memchr(s, '\0', cap) != NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  pthread_mutex_lock(&answer_mu);
  free(answer);
  answer = malloc(size ? size : 1);
  FUZZ_CHECK(answer, "out of memory");
  if (size)
    memcpy(answer, data, size);
  answer_len = size;
  pthread_mutex_unlock(&answer_mu);

  struct ddb_call call = {.op = "GetItem", .request = request_json};
  enum ts_status st =
      ddb_execute(client, &call, 1, clock_now_ms() + DEADLINE_MS);
  FUZZ_CHECK(st == TS_OK, "ddb_execute: %s", ts_status_name(st));
  FUZZ_CHECK(is_text(call.error_type, sizeof call.error_type) &&
                 is_text(call.error_message, sizeof call.error_message),
             "error fields are not NUL-terminated");
  switch (call.outcome) {
  case DDB_DONE:
    FUZZ_CHECK(call.http_status == 200 && json_is_object(call.response),
               "DDB_DONE with HTTP %ld and %s body", call.http_status,
               json_is_object(call.response) ? "an object" : "no object");
    FUZZ_CHECK(call.attempts >= 1, "DDB_DONE without an attempt");
    break;
  case DDB_CONDITION_FAILED:
    FUZZ_CHECK(strcmp(call.error_type, "ConditionalCheckFailedException") ==
                       0 &&
                   json_is_object(call.response) && call.http_status != 200,
               "condition failure from HTTP %ld type \"%s\"", call.http_status,
               call.error_type);
    break;
  case DDB_REJECTED:
  case DDB_GAVE_UP:
    FUZZ_CHECK(call.error_type[0] != '\0', "a failure without an error type");
    break;
  default: FUZZ_CHECK(false, "outcome %d", (int)call.outcome);
  }
  ddb_call_clear(&call);
  FUZZ_CHECK(call.response == NULL, "ddb_call_clear kept the response");
  return 0;
}
