/* Fuzzes the DynamoDB client's pure rules: the error classification of its
 * test seam (aws/ddb_test.h) and the endpoint URL parsing of
 * ddb_client_new. (The response transport, from status line to parsed
 * body, is fuzz_ddb_http.)
 *
 * Input: the first byte picks the mode.
 *   0: classification. 4 bytes of status, the __type value up to a NUL
 *      (its part after the last '#' and before ':' is taken, as the
 *      client does), then the error body as JSON text. Invariants: the
 *      class is one of the three; ConditionalCheckFailedException is
 *      CONDITION whatever the status; any other 5xx is RETRY; a
 *      throttling type or 429 is RETRY; TransactionCanceledException is
 *      RETRY only when every CancellationReasons code is None or
 *      transient (and one is transient); the backoff ceiling is 25 ms
 *      doubling, capped at 1 s.
 *   1: endpoint. An endpoint URL and a region, NUL-separated, to
 *      ddb_client_new. Invariants: TS_OK or TS_ERR_INVALID; an accepted
 *      endpoint is http(s) without user info, query or fragment. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "aws/creds.h"
#include "aws/ddb_test.h"
#include "input.h"

static struct aws_creds_provider *provider;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  unsetenv("AWS_ENDPOINT_URL_DYNAMODB");
  unsetenv("AWS_ENDPOINT_URL");
  unsetenv("AWS_CA_BUNDLE");
  FUZZ_CHECK(aws_creds_provider_new(&provider) == TS_OK,
             "aws_creds_provider_new failed");
  return 0;
}

static void fuzz_endpoint(struct input *in) {
  char *endpoint = input_take_cstr(in, NULL);
  char *region = input_take_cstr(in, NULL);
  struct ddb_options opt = {.region = region, .endpoint = endpoint};
  struct ddb_client *c = (struct ddb_client *)0x1;
  enum ts_status st = ddb_client_new(&opt, provider, &c);
  FUZZ_CHECK(st == TS_OK || st == TS_ERR_INVALID, "ddb_client_new: %s",
             ts_status_name(st));
  if (st == TS_OK) {
    const char *e = ddb_client_endpoint(c);
    FUZZ_CHECK(
        e && (strncmp(e, "http://", 7) == 0 || strncmp(e, "https://", 8) == 0),
        "endpoint \"%s\" accepted as \"%s\"", endpoint, e ? e : "");
    const char *authority = strstr(e, "://") + 3;
    size_t alen = strcspn(authority, "/");
    FUZZ_CHECK(
        !strchr(e, '?') && !strchr(e, '#') && !memchr(authority, '@', alen),
        "endpoint \"%s\" kept a query, fragment or user: %s", endpoint, e);
  } else {
    FUZZ_CHECK(c == NULL, "a failed ddb_client_new left a client");
  }
  ddb_client_free(c);
  free(endpoint);
  free(region);
}

/* The client's reduction of __type (aws/ddb.c error_type_of). */
static void reduce_type(const char *t, char out[96]) {
  const char *hash = strrchr(t, '#');
  if (hash)
    t = hash + 1;
  size_t len = strcspn(t, ":");
  if (len >= 96)
    len = 95;
  memcpy(out, t, len);
  out[len] = '\0';
}

static bool in(const char *s, const char *const *list, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(s, list[i]) == 0)
      return true;
  return false;
}

/* TransactionCanceledException: retry only when every reason is "None"
 * (or has no code) or transient, and at least one is transient. */
static bool cancellation_transient(const json_t *body) {
  static const char *const transient[] = {
      "TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded",
      "RequestLimitExceeded"};
  const json_t *reasons = json_object_get(body, "CancellationReasons");
  if (!json_is_array(reasons))
    return false;
  bool any = false;
  for (size_t i = 0; i < json_array_size(reasons); i++) {
    const char *code =
        json_string_value(json_object_get(json_array_get(reasons, i), "Code"));
    if (!code || strcmp(code, "None") == 0)
      continue;
    if (!in(code, transient, 4))
      return false;
    any = true;
  }
  return any;
}

static void fuzz_classify(struct input *in_) {
  long status = (long)(int32_t)input_take_u32(in_);
  char *raw_type = input_take_cstr(in_, NULL);
  size_t body_len;
  const uint8_t *body_text = input_take_rest(in_, &body_len);
  json_t *body = json_loadb((const char *)body_text, body_len, 0, NULL);
  char type[96];
  reduce_type(raw_type, type);

  enum ddb_error_class c = ddb_classify_error(status, type, body);
  FUZZ_CHECK(c == DDB_CLASS_CONDITION || c == DDB_CLASS_RETRY ||
                 c == DDB_CLASS_REJECT,
             "class %d", (int)c);
  enum ddb_retry_reason why = ddb_retry_reason_of(status, type);
  FUZZ_CHECK(why == DDB_RETRY_THROTTLED || why == DDB_RETRY_TRANSIENT,
             "an answer's retry reason %d", (int)why);
  FUZZ_CHECK(status != 429 || why == DDB_RETRY_THROTTLED,
             "429 with type %s not counted as throttled", type);
  static const char *const throttling[] = {
      "ProvisionedThroughputExceededException",
      "ThrottlingException",
      "RequestLimitExceeded",
      "LimitExceededException",
      "TransactionConflictException",
      "InternalServerError",
      "ServiceUnavailable"};
  if (strcmp(type, "ConditionalCheckFailedException") == 0)
    FUZZ_CHECK(c == DDB_CLASS_CONDITION, "a failed condition classed %d",
               (int)c);
  else if (status >= 500 && status <= 599)
    FUZZ_CHECK(c == DDB_CLASS_RETRY, "HTTP %ld with type %s not retried",
               status, type);
  else if (in(type, throttling, sizeof throttling / sizeof throttling[0]))
    FUZZ_CHECK(c == DDB_CLASS_RETRY, "%s not retried", type);
  else if (strcmp(type, "TransactionCanceledException") == 0)
    FUZZ_CHECK((c == DDB_CLASS_RETRY) == cancellation_transient(body),
               "TransactionCanceledException classed %d against its reasons",
               (int)c);
  else if (status == 429)
    FUZZ_CHECK(c == DDB_CLASS_RETRY, "429 with type %s not retried", type);
  else
    FUZZ_CHECK(c != DDB_CLASS_CONDITION, "%s classed as a failed condition",
               type);
  /* Same answer without the body, except where the body is consulted. */
  if (strcmp(type, "TransactionCanceledException") != 0)
    FUZZ_CHECK(ddb_classify_error(status, type, NULL) == c,
               "the body changed the class of %s", type);
  FUZZ_CHECK(ddb_classify_error(status, NULL, body) ==
                 ddb_classify_error(status, "", body),
             "a NULL type is not the empty type");

  unsigned attempts = (unsigned)(status & 0xffff);
  uint32_t ceiling = ddb_backoff_ceiling_ms(attempts ? attempts : 1);
  uint64_t want = 25;
  for (unsigned i = 1; i < (attempts ? attempts : 1) && want < 1000; i++)
    want *= 2;
  if (want > 1000)
    want = 1000;
  FUZZ_CHECK(ceiling == want, "backoff ceiling after %u attempts: %u, want %u",
             attempts ? attempts : 1, ceiling, (unsigned)want);
  json_decref(body);
  free(raw_type);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct input in = {data, size};
  if (input_take_u8(&in) % 2 == 0)
    fuzz_classify(&in);
  else
    fuzz_endpoint(&in);
  return 0;
}
