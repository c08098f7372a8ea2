/* Fuzzes aws/sigv4: sigv4_sign on a request and key whose every field
 * comes from the input, and the test seam's steps on the same fields.
 *
 * Input: 8 bytes of time, one byte of flags, one byte of header count,
 * then NUL-separated fields: method, path, query, access key id, secret,
 * session token, region, service, header name/value pairs, and the rest is
 * the payload.
 *
 * Invariants: never a crash, leak or UB; the status is TS_OK or
 * TS_ERR_INVALID; on TS_OK the Authorization value has the documented
 * shape (credential scope from the key and date, the signed headers list
 * the canonical request's, a 64-hex signature) and X-Amz-Date is the time
 * given; signing is deterministic; on error nothing is left allocated. */
#include <stdlib.h>
#include <string.h>

#include "aws/sigv4.h"
#include "aws/sigv4_test.h"
#include "input.h"

#define MAX_HEADERS 8

static bool is_hex64(const char *s) {
  if (strlen(s) != 64)
    return false;
  for (; *s; s++)
    if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
      return false;
  return true;
}

static void check_signed(const struct sigv4_request *req,
                         const struct sigv4_key *key,
                         const struct sigv4_result *res) {
  FUZZ_CHECK(strlen(res->amz_date) == 16 && res->amz_date[8] == 'T' &&
                 res->amz_date[15] == 'Z',
             "X-Amz-Date \"%s\" is not YYYYMMDDTHHMMSSZ", res->amz_date);
  const char *a = res->authorization;
  FUZZ_CHECK(a, "TS_OK without an Authorization value");
  static const char prefix[] = "AWS4-HMAC-SHA256 Credential=";
  FUZZ_CHECK(strncmp(a, prefix, sizeof prefix - 1) == 0,
             "Authorization starts wrongly: %s", a);
  a += sizeof prefix - 1;
  size_t ak = strlen(key->access_key_id);
  FUZZ_CHECK(strncmp(a, key->access_key_id, ak) == 0 && a[ak] == '/',
             "Credential does not start with the access key id");
  a += ak + 1;
  FUZZ_CHECK(strncmp(a, res->amz_date, 8) == 0 && a[8] == '/',
             "scope date is not the request date");
  a += 9;
  size_t rl = strlen(key->region), sl = strlen(key->service);
  FUZZ_CHECK(strncmp(a, key->region, rl) == 0 && a[rl] == '/' &&
                 strncmp(a + rl + 1, key->service, sl) == 0,
             "scope does not hold region and service");
  a += rl + 1 + sl;
  static const char mid[] = "/aws4_request, SignedHeaders=";
  FUZZ_CHECK(strncmp(a, mid, sizeof mid - 1) == 0, "scope ends wrongly: %s", a);
  a += sizeof mid - 1;
  const char *sig = strstr(a, ", Signature=");
  FUZZ_CHECK(sig && is_hex64(sig + 12), "no 64-hex Signature at the end");

  /* SignedHeaders is the canonical request's list, which holds host and
   * x-amz-date (and x-amz-security-token with a token). */
  char *creq = NULL, *sh = NULL;
  enum ts_status st = sigv4_canonical_request(req, res->amz_date,
                                              key->session_token, &creq, &sh);
  FUZZ_CHECK(st == TS_OK, "sign succeeded but canonical_request: %s",
             ts_status_name(st));
  FUZZ_CHECK(strlen(sh) == (size_t)(sig - a) && strncmp(a, sh, strlen(sh)) == 0,
             "SignedHeaders differs from the canonical request's");
  char *list = malloc(strlen(sh) + 3);
  FUZZ_CHECK(list, "out of memory");
  list[0] = ';';
  memcpy(list + 1, sh, strlen(sh));
  memcpy(list + 1 + strlen(sh), ";", 2);
  FUZZ_CHECK(strstr(list, ";host;") && strstr(list, ";x-amz-date;"),
             "SignedHeaders lacks host or x-amz-date: %s", sh);
  bool token = key->session_token && *key->session_token;
  FUZZ_CHECK(token == (strstr(list, ";x-amz-security-token;") != NULL),
             "x-amz-security-token signed %s a session token",
             token ? "without" : "with");
  for (const char *p = sh; *p; p++)
    FUZZ_CHECK(!(*p >= 'A' && *p <= 'Z'), "SignedHeaders not lower case");
  /* The canonical request's last line is the payload's SHA-256. */
  const char *nl = strrchr(creq, '\n');
  FUZZ_CHECK(nl && is_hex64(nl + 1), "canonical request lacks payload hash");
  free(list);
  free(creq);
  free(sh);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct input in = {data, size};
  time_t when = (time_t)input_take_u64(&in);
  uint8_t flags = input_take_u8(&in);
  size_t n_headers = input_take_u8(&in) % (MAX_HEADERS + 1);
  if (flags & 1) /* mostly plausible times: 1970..2106 */
    when = (time_t)(uint32_t)when;
  char *method = input_take_cstr(&in, NULL);
  char *path = input_take_cstr(&in, NULL);
  char *query = input_take_cstr(&in, NULL);
  char *akid = input_take_cstr(&in, NULL);
  char *secret = input_take_cstr(&in, NULL);
  char *token = input_take_cstr(&in, NULL);
  char *region = input_take_cstr(&in, NULL);
  char *service = input_take_cstr(&in, NULL);
  struct sigv4_header headers[MAX_HEADERS];
  char *hstr[2 * MAX_HEADERS];
  for (size_t i = 0; i < n_headers; i++) {
    hstr[2 * i] = input_take_cstr(&in, NULL);
    hstr[2 * i + 1] = input_take_cstr(&in, NULL);
    headers[i].name = hstr[2 * i];
    headers[i].value = hstr[2 * i + 1];
  }
  size_t payload_len;
  const uint8_t *payload = input_take_rest(&in, &payload_len);

  struct sigv4_request req = {
      .method = method,
      .path = path,
      .query = (flags & 2) ? NULL : query,
      .headers = n_headers ? headers : NULL,
      .n_headers = n_headers,
      .payload = payload_len ? payload : NULL,
      .payload_len = payload_len,
  };
  struct sigv4_key key = {
      .access_key_id = akid,
      .secret_access_key = secret,
      .session_token = (flags & 4) ? NULL : token,
      .region = region,
      .service = service,
  };
  struct sigv4_result r1, r2;
  enum ts_status st = sigv4_sign(&req, &key, when, &r1);
  FUZZ_CHECK(st == TS_OK || st == TS_ERR_INVALID, "sigv4_sign returned %s",
             ts_status_name(st));
  if (st == TS_OK) {
    check_signed(&req, &key, &r1);
    FUZZ_CHECK(sigv4_sign(&req, &key, when, &r2) == TS_OK &&
                   strcmp(r1.authorization, r2.authorization) == 0 &&
                   strcmp(r1.amz_date, r2.amz_date) == 0,
               "signing is not deterministic");
    sigv4_result_clear(&r2);
  } else {
    FUZZ_CHECK(r1.authorization == NULL, "an error left authorization set");
  }
  sigv4_result_clear(&r1);
  sigv4_result_clear(&r1); /* clearing twice is allowed */

  for (size_t i = 0; i < 2 * n_headers; i++)
    free(hstr[i]);
  free(method);
  free(path);
  free(query);
  free(akid);
  free(secret);
  free(token);
  free(region);
  free(service);
  return 0;
}
