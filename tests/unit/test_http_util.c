/* Percent-decoding, UTF-8 checks, base64url cursors, the JSON string
 * writer and the route table. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/digest.h"
#include "common/hex.h"
#include "server/router.h"
#include "server/urlcode.h"
#include "unit.h"

static void test_url_decode_decodes_escapes_and_rejects_bad_ones(void) {
  static const struct {
    const char *name, *in;
    bool plus;
    enum ts_status st;
    const char *out;
  } cases[] = {
      {"plain", "alice", false, TS_OK, "alice"},
      {"slash escaped stays in one segment", "a%2Fb", false, TS_OK, "a/b"},
      {"space", "a%20b", false, TS_OK, "a b"},
      {"plus in path is literal", "a+b", false, TS_OK, "a+b"},
      {"plus in query is space", "a+b", true, TS_OK, "a b"},
      {"utf-8 emoji", "%F0%9F%8E%AE", false, TS_OK, "\xF0\x9F\x8E\xAE"},
      {"lower-case hex", "%c3%a9", false, TS_OK, "\xC3\xA9"},
      {"truncated escape", "a%2", false, TS_ERR_INVALID, NULL},
      {"lone percent", "%", false, TS_ERR_INVALID, NULL},
      {"non-hex escape", "%zz", false, TS_ERR_INVALID, NULL},
      {"NUL byte", "a%00b", false, TS_ERR_INVALID, NULL},
      {"invalid utf-8", "%FF", false, TS_ERR_INVALID, NULL},
      {"overlong utf-8", "%C0%AF", false, TS_ERR_INVALID, NULL},
      {"surrogate", "%ED%A0%80", false, TS_ERR_INVALID, NULL},
      {"truncated utf-8", "%E2%82", false, TS_ERR_INVALID, NULL},
      {"empty", "", false, TS_OK, ""},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char *out = NULL;
    enum ts_status st =
        url_decode(cases[i].in, strlen(cases[i].in), cases[i].plus, &out);
    TS_CHECK_CASE(st == cases[i].st, cases[i].name, "status %s",
                  ts_status_name(st));
    if (cases[i].out && out)
      TS_CHECK_CASE(strcmp(out, cases[i].out) == 0, cases[i].name, "got %s",
                    out);
    free(out);
  }
}

static void test_utf8_sanitize_replaces_invalid_bytes_only(void) {
  static const struct {
    const char *name, *in, *out;
  } cases[] = {
      {"ascii", "text/plain", "text/plain"},
      {"valid multibyte kept", "caf\xC3\xA9 \xF0\x9F\x8E\xAE",
       "caf\xC3\xA9 \xF0\x9F\x8E\xAE"},
      {"stray bytes", "text/\xFF\xFE", "text/??"},
      {"cut at the end", "ab\xE2\x82", "ab??"},
      {"overlong", "\xC0\xAF", "??"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char buf[64];
    snprintf(buf, sizeof buf, "%s", cases[i].in);
    utf8_sanitize(buf);
    TS_CHECK_CASE(strcmp(buf, cases[i].out) == 0, cases[i].name, "got %s", buf);
  }
}

static void test_b64url_round_trips_and_rejects_non_canonical(void) {
  const char *inputs[] = {
      "", "a", "ab", "abc", "abcd", "p1:player/with?odd", "\xF0\x9F\x8E\xAE"};
  for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
    char *enc = NULL, *dec = NULL;
    size_t len = 0;
    CU_ASSERT_EQUAL_FATAL(b64url_encode(inputs[i], strlen(inputs[i]), &enc),
                          TS_OK);
    CU_ASSERT(strpbrk(enc, "+/=") == NULL);
    CU_ASSERT_EQUAL(b64url_decode(enc, strlen(enc), &dec, &len), TS_OK);
    TS_CHECK_CASE(dec && len == strlen(inputs[i]) &&
                      memcmp(dec, inputs[i], len) == 0,
                  inputs[i], "encoded %s", enc);
    free(enc);
    free(dec);
  }
  const char *bad[] = {"a", "ab=", "a*b", "YR", "YWJjZA=="};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char *dec = NULL;
    size_t len = 0;
    TS_CHECK_CASE(b64url_decode(bad[i], strlen(bad[i]), &dec, &len) ==
                      TS_ERR_INVALID,
                  bad[i], "accepted");
    free(dec);
  }
}

static void test_json_string_writer_escapes_quotes_and_controls(void) {
  struct buf b;
  buf_init(&b, 1024);
  buf_add_json_string(&b, "a\"b\\c\n\x01\xC3\xA9");
  CU_ASSERT_EQUAL(buf_status(&b), TS_OK);
  CU_ASSERT_STRING_EQUAL(b.data, "\"a\\\"b\\\\c\\n\\u0001\xC3\xA9\"");
  buf_free(&b);
}

/* A key takes a ',' only after a value: not at the start, nor right
 * after an object or an array opens. */
static void test_json_key_writer_separates_members_only_after_a_value(void) {
  static const struct {
    const char *before, *want;
  } cases[] = {
      {"", "\"k\":"},
      {"{", "{\"k\":"},
      {"[", "[\"k\":"},
      {"{\"a\":1", "{\"a\":1,\"k\":"},
      {"{\"a\":{}", "{\"a\":{},\"k\":"},
      {"[{\"a\":\"x\"}", "[{\"a\":\"x\"},\"k\":"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct buf b;
    buf_init(&b, 64);
    buf_adds(&b, cases[i].before);
    buf_add_json_key(&b, "k");
    TS_CHECK_CASE(buf_status(&b) == TS_OK && strcmp(b.data, cases[i].want) == 0,
                  cases[i].before, "wrote %s", b.data ? b.data : "(failed)");
    buf_free(&b);
  }
  struct buf full;
  buf_init(&full, 4);
  buf_adds(&full, "{");
  buf_add_json_key(&full, "long");
  CU_ASSERT_EQUAL(buf_status(&full), TS_ERR_TOO_LARGE);
  buf_free(&full);
}

/* Ids and tags are 16 lower-case digits, leading zeros kept, as printf's
 * %016llx wrote them before. */
static void test_hex_u64_writes_sixteen_lower_case_digits(void) {
  static const struct {
    uint64_t v;
    const char *want;
  } cases[] = {
      {0, "0000000000000000"},
      {0xf, "000000000000000f"},
      {0x0123456789abcdefu, "0123456789abcdef"},
      {UINT64_MAX, "ffffffffffffffff"},
      {0x8000000000000001u, "8000000000000001"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char out[17];
    memset(out, 'x', sizeof out);
    hex_u64(cases[i].v, out);
    TS_CHECK_CASE(strcmp(out, cases[i].want) == 0, cases[i].want, "wrote %.17s",
                  out);
  }
}

/* Integers as printf's %lld writes them, the extremes included. */
static void test_i64_writer_matches_printf(void) {
  static const int64_t cases[] = {0,
                                  1,
                                  -1,
                                  9,
                                  10,
                                  -10,
                                  123456789,
                                  INT64_MAX,
                                  INT64_MIN,
                                  INT64_MIN + 1,
                                  1000000000000000000};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char want[32];
    snprintf(want, sizeof want, "%lld", (long long)cases[i]);
    struct buf b;
    buf_init(&b, 64);
    buf_add_i64(&b, cases[i]);
    TS_CHECK_CASE(buf_status(&b) == TS_OK && strcmp(b.data, want) == 0, want,
                  "wrote %s", b.data ? b.data : "(failed)");
    buf_free(&b);
  }
}

static void test_buffer_over_its_maximum_fails_and_stays_failed(void) {
  struct buf b;
  buf_init(&b, 8);
  buf_adds(&b, "12345678");
  CU_ASSERT_EQUAL(buf_status(&b), TS_OK);
  buf_adds(&b, "9");
  CU_ASSERT_EQUAL(buf_status(&b), TS_ERR_TOO_LARGE);
  buf_adds(&b, "");
  CU_ASSERT_PTR_NULL(buf_take(&b, NULL));
  buf_free(&b);
}

/* A reservation is a hint: it makes room for that many bytes at once (cut
 * to the maximum) and never fails the buffer; appends still grow it or
 * fail it past the maximum. */
static void test_reserve_makes_room_and_never_fails_the_buffer(void) {
  static const struct {
    const char *name;
    size_t max, reserve, room, add; /* after one byte: reserve, append */
    enum ts_status want;
  } cases[] = {
      {"within the maximum", 8192, 3000, 3000, 3000, TS_OK},
      {"past the maximum, cut", 2000, 100000, 1999, 1999, TS_OK},
      {"append past the reservation grows", 8192, 300, 300, 5000, TS_OK},
      {"append past the maximum still fails", 2000, 2000, 1999, 2000,
       TS_ERR_TOO_LARGE},
  };
  static char bytes[5000];
  memset(bytes, 'a', sizeof bytes);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct buf b;
    buf_init(&b, cases[i].max);
    buf_adds(&b, "x");
    buf_reserve(&b, cases[i].reserve);
    if (buf_status(&b) != TS_OK || b.cap < 1 + cases[i].room + 1)
      CU_FAIL(cases[i].name);
    buf_add(&b, bytes, cases[i].add);
    if (buf_status(&b) != cases[i].want)
      CU_FAIL(cases[i].name);
    if (cases[i].want == TS_OK && b.len != 1 + cases[i].add)
      CU_FAIL(cases[i].name);
    buf_free(&b);
  }
}

/* SHA-256 of bytes (FIPS 180-2 vectors), and of NUL-terminated parts. */
static void test_sha256_matches_the_standard_vectors(void) {
  static const struct {
    const char *in, *hex;
  } cases[] = {
      {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
      {"abc",
       "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
      {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    unsigned char md[DIGEST_SHA256_BYTES];
    char hex[2 * DIGEST_SHA256_BYTES + 1];
    CU_ASSERT_FATAL(digest_sha256(cases[i].in, strlen(cases[i].in), md));
    for (size_t k = 0; k < sizeof md; k++)
      snprintf(hex + 2 * k, 3, "%02x", md[k]);
    CU_ASSERT_STRING_EQUAL(hex, cases[i].hex);
  }
  const char *parts[] = {"ab", "c"};
  char out[DIGEST_HEX_BYTES];
  digest_sha256_hex(parts, 2, out);
  CU_ASSERT_STRING_EQUAL(
      out, "629c2f14f654f026086f2aefe1855533d0897f49df86a19073be17b237361b09");
}

static void test_router_matches_routes_and_reports_404_405(void) {
  static const struct {
    const char *name, *method, *path;
    enum router_result want;
    const char *param;
  } cases[] = {
      {"ingest", "POST", "/v1/stream-records", ROUTER_MATCH, NULL},
      {"stats with escaped slash", "GET", "/v1/players/a%2Fb/stats",
       ROUTER_MATCH, "a/b"},
      {"HEAD answers like GET", "HEAD", "/v1/players", ROUTER_MATCH, NULL},
      {"list", "GET", "/v1/players", ROUTER_MATCH, NULL},
      {"unknown path", "GET", "/v2/players", ROUTER_NOT_FOUND, NULL},
      {"trailing slash is another path", "GET", "/v1/players/",
       ROUTER_NOT_FOUND, NULL},
      {"empty capture", "GET", "/v1/players//stats", ROUTER_NOT_FOUND, NULL},
      {"extra segment", "GET", "/v1/players/a/b/stats", ROUTER_NOT_FOUND, NULL},
      {"wrong method", "DELETE", "/v1/players", ROUTER_METHOD_NOT_ALLOWED,
       NULL},
      {"GET on ingest", "GET", "/v1/stream-records", ROUTER_METHOD_NOT_ALLOWED,
       NULL},
      {"bad utf-8 capture", "GET", "/v1/players/%FF/stats", ROUTER_BAD_PARAM,
       NULL},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const struct route *r = NULL;
    char *params[REQUEST_MAX_PARAMS] = {0};
    size_t n = 0;
    char allow[64];
    enum router_result got =
        router_match(cases[i].method, cases[i].path, &r, params, &n, allow);
    TS_CHECK_CASE(got == cases[i].want, cases[i].name, "got %d", (int)got);
    if (cases[i].param)
      TS_CHECK_CASE(n == 1 && strcmp(params[0], cases[i].param) == 0,
                    cases[i].name, "param %s", n ? params[0] : "(none)");
    if (got == ROUTER_METHOD_NOT_ALLOWED)
      TS_CHECK_CASE(strlen(allow) > 0, cases[i].name, "empty Allow");
    for (size_t k = 0; k < n; k++)
      free(params[k]);
  }
}

void suite_http_util(void) {
  TS_SUITE("http_util",
           TS_TEST(test_url_decode_decodes_escapes_and_rejects_bad_ones),
           TS_TEST(test_utf8_sanitize_replaces_invalid_bytes_only),
           TS_TEST(test_b64url_round_trips_and_rejects_non_canonical),
           TS_TEST(test_json_string_writer_escapes_quotes_and_controls),
           TS_TEST(test_json_key_writer_separates_members_only_after_a_value),
           TS_TEST(test_hex_u64_writes_sixteen_lower_case_digits),
           TS_TEST(test_i64_writer_matches_printf),
           TS_TEST(test_buffer_over_its_maximum_fails_and_stays_failed),
           TS_TEST(test_reserve_makes_room_and_never_fails_the_buffer),
           TS_TEST(test_sha256_matches_the_standard_vectors),
           TS_TEST(test_router_matches_routes_and_reports_404_405));
}
