/* SigV4 signer: each step against AWS's published SigV4 test suite
 * (aws-sig-v4-test-suite, as republished in awslabs/aws-c-auth
 * tests/aws-signing-test-suite/v4), the S3 GET example of the SigV4
 * documentation, and a DynamoDB-shaped request.
 *
 * The published requests carry their own X-Amz-Date header; our signer adds
 * that header itself, so the inputs below leave it out and the expected
 * canonical requests (which include it) are the published ones. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aws/sigv4.h"
#include "aws/sigv4_test.h"

#include "../unit/unit.h"

#define AKID "AKIDEXAMPLE"
#define SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define T_20150830 ((time_t)1440938160) /* 2015-08-30T12:36:00Z */
#define EMPTY_SHA256                                                           \
  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define HOST_EXAMPLE                                                           \
  { "Host", "example.amazonaws.com" }
#define UNRESERVED                                                             \
  "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
#define STS_TOKEN                                                              \
  "AQoDYXdzEPT//////////"                                                      \
  "wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIe" \
  "oIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/"                                         \
  "kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9H" \
  "FvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+"         \
  "scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA=="

/* The canonical request tail shared by most cases: x-amz-date, then the
 * signed headers line and the payload hash. */
#define DATE_LINE "x-amz-date:20150830T123600Z\n"

struct vector {
  const char *name;
  const char *method, *path, *query;
  struct sigv4_header headers[5];
  size_t n_headers;
  const char *payload;
  const char *token;
  const char *akid, *secret;    /* NULL: AKIDEXAMPLE and its secret */
  const char *region, *service; /* NULL: us-east-1 / service */
  time_t when;                  /* 0: 2015-08-30T12:36:00Z */
  const char *creq;             /* expected canonical request */
  const char *creq_hash;        /* last line of the expected string to sign,
                                   NULL where the suite does not publish it */
  const char *signature;
};

static const struct vector vectors[] = {
    {.name = "get-vanilla",
     .method = "GET",
     .path = "/",
     .headers = {HOST_EXAMPLE},
     .n_headers = 1,
     .creq = "GET\n/\n\nhost:example.amazonaws.com\n" DATE_LINE
             "\nhost;x-amz-date\n" EMPTY_SHA256,
     .creq_hash =
         "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
     .signature =
         "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
    {.name = "get-vanilla-query (empty query)",
     .method = "GET",
     .path = "/",
     .query = "",
     .headers = {HOST_EXAMPLE},
     .n_headers = 1,
     .creq = "GET\n/\n\nhost:example.amazonaws.com\n" DATE_LINE
             "\nhost;x-amz-date\n" EMPTY_SHA256,
     .creq_hash =
         "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
     .signature =
         "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
    {.name = "get-vanilla-empty-query-key",
     .method = "GET",
     .path = "/",
     .query = "Param1=value1",
     .headers = {HOST_EXAMPLE},
     .n_headers = 1,
     .creq = "GET\n/\nParam1=value1\nhost:example.amazonaws.com\n" DATE_LINE
             "\nhost;x-amz-date\n" EMPTY_SHA256,
     .creq_hash =
         "1e24db194ed7d0eec2de28d7369675a243488e08526e8c1c73571282f7c517ab",
     .signature =
         "a67d582fa61cc504c4bae71f336f98b97f1ea3c7a6bfe1b6e45aec72011b9aeb"},
    {.name = "get-vanilla-query-order-key",
     .method = "GET",
     .path = "/",
     .query = "Param1=value2&Param1=Value1",
     .headers = {HOST_EXAMPLE},
     .n_headers = 1,
     .creq =
         "GET\n/"
         "\nParam1=Value1&Param1=value2\nhost:example.amazonaws.com\n" DATE_LINE
         "\nhost;x-amz-date\n" EMPTY_SHA256,
     .creq_hash =
         "704b4cef673542d84cdff252633f065e8daeba5f168b77116f8b1bcaf3d38f89",
     .signature =
         "eedbc4e291e521cf13422ffca22be7d2eb8146eecf653089df300a15b2382bd1"},
    {.name = "get-vanilla-query-order-key-case",
     .method = "GET",
     .path = "/",
     .query = "Param2=value2&Param1=value1",
     .headers = {HOST_EXAMPLE},
     .n_headers = 1,
     .creq =
         "GET\n/"
         "\nParam1=value1&Param2=value2\nhost:example.amazonaws.com\n" DATE_LINE
         "\nhost;x-amz-date\n" EMPTY_SHA256,
     .creq_hash =
         "816cd5b414d056048ba4f7c5386d6e0533120fb1fcfa93762cf0fc39e2cf19e0",
     .signature =
         "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"},
    {.name = "get-vanilla-query-order-value",
     .method = "GET",
     .path = "/",
     .query = "Param1=value2&Param1=value1",
     .headers = {HOST_EXAMPLE},
     .n_headers = 1,
     .creq =
         "GET\n/"
         "\nParam1=value1&Param1=value2\nhost:example.amazonaws.com\n" DATE_LINE
         "\nhost;x-amz-date\n" EMPTY_SHA256,
     .creq_hash =
         "c968629d70850097a2d8781c9bf7edcb988b04cac14cca9be4acc3595f884606",
     .signature =
         "5772eed61e12b33fae39ee5e7012498b51d56abc0abb7c60486157bd471c4694"},
    {.name = "get-vanilla-query-unreserved",
     .method = "GET",
     .path = "/",
     .query = UNRESERVED "=" UNRESERVED,
     .headers = {HOST_EXAMPLE},
     .n_headers = 1,
     .creq = "GET\n/\n" UNRESERVED "=" UNRESERVED
             "\nhost:example.amazonaws.com\n" DATE_LINE
             "\nhost;x-amz-date\n" EMPTY_SHA256,
     .creq_hash =
         "c30d4703d9f799439be92736156d47ccfb2d879ddf56f5befa6d1d6aab979177",
     .signature =
         "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197"},
    {.name = "get-vanilla-utf8-query",
     .method = "GET",
     .path = "/",
     .query = "\xe1\x88\xb4=bar",
     .headers = {HOST_EXAMPLE},
     .n_headers = 1,
     .creq = "GET\n/\n%E1%88%B4=bar\nhost:example.amazonaws.com\n" DATE_LINE
             "\nhost;x-amz-date\n" EMPTY_SHA256,
     .creq_hash =
         "eb30c5bed55734080471a834cc727ae56beb50e5f39d1bff6d0d38cb192a7073",
     .signature =
         "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04"},
    {.name = "get-unreserved (path)",
     .method = "GET",
     .path = "/" UNRESERVED,
     .headers = {HOST_EXAMPLE},
     .n_headers = 1,
     .creq = "GET\n/" UNRESERVED "\n\nhost:example.amazonaws.com\n" DATE_LINE
             "\nhost;x-amz-date\n" EMPTY_SHA256,
     .creq_hash =
         "6a968768eefaa713e2a6b16b589a8ea192661f098f37349f4e2c0082757446f9",
     .signature =
         "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f"},
    {.name = "get-space (path given encoded)",
     .method = "GET",
     .path = "/example%20space/",
     .headers = {HOST_EXAMPLE},
     .n_headers = 1,
     .creq = "GET\n/example%20space/\n\nhost:example.amazonaws.com\n" DATE_LINE
             "\nhost;x-amz-date\n" EMPTY_SHA256,
     .creq_hash =
         "63ee75631ed7234ae61b5f736dfc7754cdccfedbff4b5128a915706ee9390d86",
     .signature =
         "652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741"},
    {.name = "get-header-key-duplicate",
     .method = "GET",
     .path = "/",
     .headers = {HOST_EXAMPLE,
                 {"My-Header1", "value2"},
                 {"My-Header1", "value2"},
                 {"My-Header1", "value1"}},
     .n_headers = 4,
     .creq = "GET\n/\n\nhost:example.amazonaws.com\n"
             "my-header1:value2,value2,value1\n" DATE_LINE
             "\nhost;my-header1;x-amz-date\n" EMPTY_SHA256,
     .creq_hash =
         "dc7f04a3abfde8d472b0ab1a418b741b7c67174dad1551b4117b15527fbe966c",
     .signature =
         "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea"},
    {.name = "get-header-value-order",
     .method = "GET",
     .path = "/",
     .headers = {HOST_EXAMPLE,
                 {"My-Header1", "value4"},
                 {"My-Header1", "value1"},
                 {"My-Header1", "value3"},
                 {"My-Header1", "value2"}},
     .n_headers = 5,
     .creq = "GET\n/\n\nhost:example.amazonaws.com\n"
             "my-header1:value4,value1,value3,value2\n" DATE_LINE
             "\nhost;my-header1;x-amz-date\n" EMPTY_SHA256,
     .creq_hash =
         "31ce73cd3f3d9f66977ad3dd957dc47af14df92fcd8509f59b349e9137c58b86",
     .signature =
         "08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01"},
    {.name = "get-header-value-trim",
     .method = "GET",
     .path = "/",
     .headers = {HOST_EXAMPLE,
                 {"My-Header1", " value1"},
                 {"My-Header2", " \"a   b   c\""}},
     .n_headers = 3,
     .creq = "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value1\n"
             "my-header2:\"a b c\"\n" DATE_LINE
             "\nhost;my-header1;my-header2;x-amz-date\n" EMPTY_SHA256,
     .creq_hash =
         "a726db9b0df21c14f559d0a978e563112acb1b9e05476f0a6a1c7d68f28605c7",
     .signature =
         "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736"},
    /* The multiline case's continuation lines, as an HTTP parser hands them
     * over: one value each, with their leading blanks. */
    {.name = "get-header-value-multiline",
     .method = "GET",
     .path = "/",
     .headers = {HOST_EXAMPLE,
                 {"My-Header1", "value1"},
                 {"My-Header1", "  value2"},
                 {"My-Header1", "     value3"}},
     .n_headers = 4,
     .creq = "GET\n/\n\nhost:example.amazonaws.com\n"
             "my-header1:value1,value2,value3\n" DATE_LINE
             "\nhost;my-header1;x-amz-date\n" EMPTY_SHA256,
     .signature =
         "ba17b383a53190154eb5fa66a1b836cc297cc0a3d70a5d00705980573d8ff790"},
    {.name = "post-vanilla",
     .method = "POST",
     .path = "/",
     .headers = {HOST_EXAMPLE},
     .n_headers = 1,
     .creq = "POST\n/\n\nhost:example.amazonaws.com\n" DATE_LINE
             "\nhost;x-amz-date\n" EMPTY_SHA256,
     .creq_hash =
         "553f88c9e4d10fc9e109e2aeb65f030801b70c2f6468faca261d401ae622fc87",
     .signature =
         "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"},
    {.name = "post-header-key-case (HOST in upper case)",
     .method = "POST",
     .path = "/",
     .headers = {{"HOST", "example.amazonaws.com"}},
     .n_headers = 1,
     .creq = "POST\n/\n\nhost:example.amazonaws.com\n" DATE_LINE
             "\nhost;x-amz-date\n" EMPTY_SHA256,
     .creq_hash =
         "553f88c9e4d10fc9e109e2aeb65f030801b70c2f6468faca261d401ae622fc87",
     .signature =
         "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"},
    {.name = "post-vanilla-query",
     .method = "POST",
     .path = "/",
     .query = "Param1=value1",
     .headers = {HOST_EXAMPLE},
     .n_headers = 1,
     .creq = "POST\n/\nParam1=value1\nhost:example.amazonaws.com\n" DATE_LINE
             "\nhost;x-amz-date\n" EMPTY_SHA256,
     .creq_hash =
         "9d659678c1756bb3113e2ce898845a0a79dbbc57b740555917687f1b3340fbbd",
     .signature =
         "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11"},
    /* Given out of order (the published request lists Host first), so that
     * the sort is what puts host before my-header1. */
    {.name = "post-header-key-sort",
     .method = "POST",
     .path = "/",
     .headers = {{"My-Header1", "value1"}, HOST_EXAMPLE},
     .n_headers = 2,
     .creq =
         "POST\n/\n\nhost:example.amazonaws.com\nmy-header1:value1\n" DATE_LINE
         "\nhost;my-header1;x-amz-date\n" EMPTY_SHA256,
     .creq_hash =
         "9368318c2967cf6de74404b30c65a91e8f6253e0a8659d6d5319f1a812f87d65",
     .signature =
         "c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c"},
    {.name = "post-header-value-case",
     .method = "POST",
     .path = "/",
     .headers = {HOST_EXAMPLE, {"My-Header1", "VALUE1"}},
     .n_headers = 2,
     .creq =
         "POST\n/\n\nhost:example.amazonaws.com\nmy-header1:VALUE1\n" DATE_LINE
         "\nhost;my-header1;x-amz-date\n" EMPTY_SHA256,
     .creq_hash =
         "d51ced243e649e3de6ef63afbbdcbca03131a21a7103a1583706a64618606a93",
     .signature =
         "cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d"},
    {.name = "post-x-www-form-urlencoded",
     .method = "POST",
     .path = "/",
     .headers = {{"Content-Type", "application/x-www-form-urlencoded"},
                 HOST_EXAMPLE},
     .n_headers = 2,
     .payload = "Param1=value1",
     .creq = "POST\n/\n\ncontent-type:application/x-www-form-urlencoded\n"
             "host:example.amazonaws.com\n" DATE_LINE
             "\ncontent-type;host;x-amz-date\n"
             "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
     .creq_hash =
         "42a5e5bb34198acb3e84da4f085bb7927f2bc277ca766e6d19c73c2154021281",
     .signature =
         "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"},
    /* The published files of this case disagree with each other; its
     * signature is that of "charset=utf8" without Content-Length signed,
     * as other implementations' suites also note. */
    {.name = "post-x-www-form-urlencoded-parameters",
     .method = "POST",
     .path = "/",
     .headers = {{"Content-Type",
                  "application/x-www-form-urlencoded; charset=utf8"},
                 HOST_EXAMPLE},
     .n_headers = 2,
     .payload = "Param1=value1",
     .creq = "POST\n/\n\n"
             "content-type:application/x-www-form-urlencoded; charset=utf8\n"
             "host:example.amazonaws.com\n" DATE_LINE
             "\ncontent-type;host;x-amz-date\n"
             "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
     .creq_hash =
         "2e1cf7ed91881a30569e46552437e4156c823447bf1781b921b5d486c568dd1c",
     .signature =
         "1a72ec8f64bd914b0e42e42607c7fbce7fb2c7465f63e3092b3b0d39fa77a6fe"},
    /* The signer adds X-Amz-Security-Token itself, so it is signed: the
     * "header-before" form. */
    {.name = "post-sts-header-before",
     .method = "POST",
     .path = "/",
     .headers = {HOST_EXAMPLE},
     .n_headers = 1,
     .token = STS_TOKEN,
     .creq = "POST\n/\n\nhost:example.amazonaws.com\n" DATE_LINE
             "x-amz-security-token:" STS_TOKEN
             "\n\nhost;x-amz-date;x-amz-security-token\n" EMPTY_SHA256,
     .creq_hash =
         "c237e1b440d4c63c32ca95b5b99481081cb7b13c7e40434868e71567c1a882f6",
     .signature =
         "85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead"},
    /* The SigV4 documentation's S3 "GET Object" example, with that page's
     * own example key pair (the trailing blank after "bytes=0-9" is
     * trimmed by the signer). */
    {.name = "s3 GET Object example",
     .akid = "AKIAIOSFODNN7EXAMPLE",
     .secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
     .method = "GET",
     .path = "/test.txt",
     .headers = {{"Host", "examplebucket.s3.amazonaws.com"},
                 {"Range", "bytes=0-9 "},
                 {"x-amz-content-sha256", EMPTY_SHA256}},
     .n_headers = 3,
     .service = "s3",
     .when = (time_t)1369353600, /* 2013-05-24T00:00:00Z */
     .creq = "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\n"
             "range:bytes=0-9\n"
             "x-amz-content-sha256:" EMPTY_SHA256 "\n"
             "x-amz-date:20130524T000000Z\n"
             "\nhost;range;x-amz-content-sha256;x-amz-date\n" EMPTY_SHA256,
     .creq_hash =
         "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972",
     .signature =
         "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"},
};

#define N_VECTORS (sizeof vectors / sizeof vectors[0])

static struct sigv4_request request_of(const struct vector *v) {
  return (struct sigv4_request){
      .method = v->method,
      .path = v->path,
      .query = v->query,
      .headers = v->headers,
      .n_headers = v->n_headers,
      .payload = v->payload,
      .payload_len = v->payload ? strlen(v->payload) : 0,
  };
}

static time_t when_of(const struct vector *v) {
  return v->when ? v->when : T_20150830;
}

static struct sigv4_key key_of(const struct vector *v) {
  return (struct sigv4_key){
      .access_key_id = v->akid ? v->akid : AKID,
      .secret_access_key = v->secret ? v->secret : SECRET,
      .session_token = v->token,
      .region = v->region ? v->region : "us-east-1",
      .service = v->service ? v->service : "service",
  };
}

static void amz_date_of(const struct vector *v, char out[17]) {
  time_t t = when_of(v);
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}

/* The signed headers list: the second-to-last line of a canonical
 * request. */
static const char *signed_headers_line(const char *creq, int *len) {
  const char *last = strrchr(creq, '\n');
  const char *p = last;
  while (p > creq && p[-1] != '\n')
    p--;
  *len = (int)(last - p);
  return p;
}

static void test_canonical_request_matches_published_vectors(void) {
  for (size_t i = 0; i < N_VECTORS; i++) {
    const struct vector *v = &vectors[i];
    struct sigv4_request req = request_of(v);
    char date[17];
    amz_date_of(v, date);
    char *creq = NULL, *signed_headers = NULL;
    enum ts_status st =
        sigv4_canonical_request(&req, date, v->token, &creq, &signed_headers);
    TS_CHECK_CASE(st == TS_OK, v->name, "status %s", ts_status_name(st));
    if (st == TS_OK) {
      TS_CHECK_CASE(strcmp(creq, v->creq) == 0, v->name,
                    "canonical request\n--- got\n%s\n--- want\n%s", creq,
                    v->creq);
      int len;
      const char *want = signed_headers_line(v->creq, &len);
      TS_CHECK_CASE((size_t)len == strlen(signed_headers) &&
                        strncmp(want, signed_headers, (size_t)len) == 0,
                    v->name, "signed headers %s", signed_headers);
    }
    free(creq);
    free(signed_headers);
  }
}

static void test_string_to_sign_hashes_the_published_canonical_request(void) {
  for (size_t i = 0; i < N_VECTORS; i++) {
    const struct vector *v = &vectors[i];
    if (!v->creq_hash)
      continue;
    struct sigv4_key key = key_of(v);
    char date[17], want[512];
    amz_date_of(v, date);
    snprintf(want, sizeof want,
             "AWS4-HMAC-SHA256\n%s\n%.8s/%s/%s/aws4_request\n%s", date, date,
             key.region, key.service, v->creq_hash);
    char *sts = NULL;
    enum ts_status st =
        sigv4_string_to_sign(date, key.region, key.service, v->creq, &sts);
    TS_CHECK_CASE(st == TS_OK && strcmp(sts, want) == 0, v->name,
                  "string to sign\n--- got\n%s\n--- want\n%s",
                  sts ? sts : "(null)", want);
    free(sts);
  }
}

static void hex(const unsigned char *b, size_t n, char *out) {
  for (size_t i = 0; i < n; i++)
    snprintf(out + 2 * i, 3, "%02x", b[i]);
}

static void test_signing_key_matches_documented_examples(void) {
  static const struct {
    const char *name, *date, *region, *service, *want;
  } cases[] = {
      {"iam 20120215", "20120215", "us-east-1", "iam",
       "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"},
      {"iam 20150830", "20150830", "us-east-1", "iam",
       "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    unsigned char key[SIGV4_SIGNING_KEY_BYTES];
    char got[2 * SIGV4_SIGNING_KEY_BYTES + 1] = "";
    enum ts_status st = sigv4_signing_key(
        SECRET, cases[i].date, cases[i].region, cases[i].service, key);
    if (st == TS_OK)
      hex(key, sizeof key, got);
    TS_CHECK_CASE(st == TS_OK && strcmp(got, cases[i].want) == 0, cases[i].name,
                  "key %s", got);
  }
}

static void test_authorization_header_matches_published_signatures(void) {
  for (size_t i = 0; i < N_VECTORS; i++) {
    const struct vector *v = &vectors[i];
    struct sigv4_request req = request_of(v);
    struct sigv4_key key = key_of(v);
    struct sigv4_result res;
    char date[17], want[512];
    amz_date_of(v, date);
    int sh_len;
    const char *sh = signed_headers_line(v->creq, &sh_len);
    snprintf(want, sizeof want,
             "AWS4-HMAC-SHA256 Credential=%s"
             "/%.8s/%s/%s/aws4_request, SignedHeaders=%.*s, Signature=%s",
             key.access_key_id, date, key.region, key.service, sh_len, sh,
             v->signature);
    enum ts_status st = sigv4_sign(&req, &key, when_of(v), &res);
    TS_CHECK_CASE(st == TS_OK, v->name, "status %s", ts_status_name(st));
    if (st == TS_OK) {
      TS_CHECK_CASE(strcmp(res.amz_date, date) == 0, v->name, "date %s",
                    res.amz_date);
      TS_CHECK_CASE(strcmp(res.authorization, want) == 0, v->name,
                    "authorization\n--- got\n%s\n--- want\n%s",
                    res.authorization, want);
    }
    sigv4_result_clear(&res);
  }
}

/* The signing key is cached per thread by (secret, day, region, service):
 * signing the published vectors again after other secrets, days, regions
 * and services have been used must still give the published signatures,
 * and each of those changes must change the signature. */
static void test_cached_signing_key_follows_secret_day_region_service(void) {
  const struct vector *v = &vectors[0];
  struct sigv4_request req = request_of(v);
  struct sigv4_key key = key_of(v);
  struct sigv4_result first, other, again;
  CU_ASSERT_EQUAL_FATAL(sigv4_sign(&req, &key, when_of(v), &first), TS_OK);
  static const struct {
    const char *name, *secret, *region, *service;
    time_t shift;
  } cases[] = {
      {"another secret", "another-secret", NULL, NULL, 0},
      {"the next day", NULL, NULL, NULL, 86400},
      {"another region", NULL, "eu-west-1", NULL, 0},
      {"another service", NULL, NULL, "dynamodb", 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct sigv4_key k = key;
    if (cases[i].secret)
      k.secret_access_key = cases[i].secret;
    if (cases[i].region)
      k.region = cases[i].region;
    if (cases[i].service)
      k.service = cases[i].service;
    CU_ASSERT_EQUAL_FATAL(
        sigv4_sign(&req, &k, when_of(v) + cases[i].shift, &other), TS_OK);
    const char *a = strstr(first.authorization, "Signature=");
    const char *b = strstr(other.authorization, "Signature=");
    TS_CHECK_CASE(a && b && strcmp(a, b) != 0, cases[i].name,
                  "same signature as the published one");
    sigv4_result_clear(&other);
    CU_ASSERT_EQUAL_FATAL(sigv4_sign(&req, &key, when_of(v), &again), TS_OK);
    TS_CHECK_CASE(strcmp(first.authorization, again.authorization) == 0,
                  cases[i].name, "signed again after it: %s",
                  again.authorization);
    sigv4_result_clear(&again);
  }
  sigv4_result_clear(&first);
}

/* post-sts-header-after signs without the token (5da7c1a2...); we always
 * sign it, so the signature must differ from that one and list it. */
static void test_session_token_is_covered_by_the_signature(void) {
  struct sigv4_header h[] = {HOST_EXAMPLE};
  struct sigv4_request req = {
      .method = "POST", .path = "/", .headers = h, .n_headers = 1};
  struct sigv4_key key = {AKID, SECRET, STS_TOKEN, "us-east-1", "service"};
  struct sigv4_result res;
  CU_ASSERT_EQUAL_FATAL(sigv4_sign(&req, &key, T_20150830, &res), TS_OK);
  CU_ASSERT_PTR_NOT_NULL(
      strstr(res.authorization,
             "SignedHeaders=host;x-amz-date;x-amz-security-token,"));
  CU_ASSERT_PTR_NULL(strstr(
      res.authorization,
      "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"));
  sigv4_result_clear(&res);
  /* An empty token means none. */
  key.session_token = "";
  CU_ASSERT_EQUAL_FATAL(sigv4_sign(&req, &key, T_20150830, &res), TS_OK);
  CU_ASSERT_PTR_NOT_NULL(strstr(
      res.authorization,
      "SignedHeaders=host;x-amz-date, Signature="
      "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"));
  sigv4_result_clear(&res);
}

/* A DynamoDB GetItem with a session token. The expected signature was taken
 * from curl 7.88.1's --aws-sigv4 signing the same request (whose result
 * matches botocore's SigV4Auth, reference/aws-facts.md 6.3), captured at
 * 2026-11-27T09:38:01Z. */
static void test_dynamodb_request_signs_target_and_token(void) {
  static const char body[] = "{\"TableName\":\"TaTourneyStats\",\"Key\":{"
                             "\"player\":{\"S\":\"alice\"}},"
                             "\"ConsistentRead\":true}";
  struct sigv4_header h[] = {
      {"Host", "dynamodb.us-east-1.amazonaws.com"},
      {"Content-Type", "application/x-amz-json-1.0"},
      {"X-Amz-Target", "DynamoDB_20120810.GetItem"},
  };
  struct sigv4_request req = {.method = "POST",
                              .path = "/",
                              .headers = h,
                              .n_headers = 3,
                              .payload = body,
                              .payload_len = sizeof body - 1};
  struct sigv4_key key = {AKID, SECRET,
                          "FwoGZXIvYXdzEXAMPLEsessionTOKEN/+=", "us-east-1",
                          "dynamodb"};
  struct sigv4_result res;
  CU_ASSERT_EQUAL_FATAL(sigv4_sign(&req, &key, (time_t)1795772281, &res),
                        TS_OK);
  CU_ASSERT_STRING_EQUAL(res.amz_date, "20261127T093801Z");
  static const char prefix[] =
      "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261127/us-east-1/dynamodb/"
      "aws4_request, SignedHeaders=content-type;host;x-amz-date;"
      "x-amz-security-token;x-amz-target, Signature=";
  CU_ASSERT_EQUAL(strncmp(res.authorization, prefix, sizeof prefix - 1), 0);
  const char *sig = res.authorization + strlen(prefix);
  CU_ASSERT_EQUAL(strlen(sig), 64);
  CU_ASSERT_EQUAL(strspn(sig, "0123456789abcdef"), 64);
  CU_ASSERT_STRING_EQUAL(
      sig, "32c6a40652557add3b2de43c3f699e63e7b61ecb89d82f614f181f7f4ed13523");
  sigv4_result_clear(&res);
}

static void test_query_is_decoded_reencoded_and_sorted(void) {
  static const struct {
    const char *name, *query, *want;
  } cases[] = {
      {"encoded and raw forms sort by encoded bytes", "b=2&a=x%2Fy&c&a=x%20y&&",
       "a=x%20y&a=x%2Fy&b=2&c="},
      {"lower-case escapes become upper case", "k=%2b%e1%88%b4",
       "k=%2B%E1%88%B4"},
      {"plus is a literal plus", "k=a+b", "k=a%2Bb"},
      {"escaped unreserved bytes are decoded", "%7E=%41%2d", "~=A-"},
      {"reserved bytes are escaped", "k=a/b:c@d=e", "k=a%2Fb%3Ac%40d%3De"},
      {"a key without '=' gets an empty value", "flag", "flag="},
      {"an empty value stays", "k=", "k="},
  };
  struct sigv4_header h[] = {HOST_EXAMPLE};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct sigv4_request req = {.method = "GET",
                                .path = "/",
                                .query = cases[i].query,
                                .headers = h,
                                .n_headers = 1};
    char *creq = NULL;
    enum ts_status st =
        sigv4_canonical_request(&req, "20150830T123600Z", NULL, &creq, NULL);
    const char *q = st == TS_OK ? strchr(strchr(creq, '\n') + 1, '\n') + 1 : "";
    size_t qlen = strcspn(q, "\n");
    TS_CHECK_CASE(st == TS_OK && qlen == strlen(cases[i].want) &&
                      strncmp(q, cases[i].want, qlen) == 0,
                  cases[i].name, "status %s, query %.*s", ts_status_name(st),
                  (int)qlen, q);
    free(creq);
  }
}

static void test_header_values_are_trimmed_and_folded(void) {
  static const struct {
    const char *name, *value, *want;
  } cases[] = {
      {"tabs and spaces around", "\t  a  \t", "a"},
      {"inner runs of blanks", "a \t \t b   c", "a b c"},
      {"empty", "", ""},
      {"only blanks", " \t ", ""},
      {"quoted text is folded too", "\"a   b\"", "\"a b\""},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct sigv4_header h[] = {HOST_EXAMPLE, {"X-Test", cases[i].value}};
    struct sigv4_request req = {
        .method = "GET", .path = "/", .headers = h, .n_headers = 2};
    char *creq = NULL, want[128];
    snprintf(want, sizeof want, "\nx-test:%s\n", cases[i].want);
    enum ts_status st =
        sigv4_canonical_request(&req, "20150830T123600Z", NULL, &creq, NULL);
    TS_CHECK_CASE(st == TS_OK && strstr(creq, want), cases[i].name,
                  "status %s\n%s", ts_status_name(st), creq ? creq : "");
    free(creq);
  }
}

static void test_requests_that_cannot_be_signed_are_refused(void) {
  static const struct {
    const char *name;
    const char *method, *path, *query;
    struct sigv4_header extra;
    const char *akid, *secret, *region, *service;
    size_t payload_len_without_payload;
  } cases[] = {
      {.name = "no Host header", .extra = {"Accept", "*/*"}},
      {.name = "caller's X-Amz-Date", .extra = {"X-Amz-Date", "x"}},
      {.name = "caller's X-Amz-Security-Token",
       .extra = {"x-amz-security-token", "t"}},
      {.name = "caller's Authorization", .extra = {"Authorization", "x"}},
      {.name = "CR LF in a value", .extra = {"X-A", "a\r\nX-Evil: 1"}},
      {.name = "colon in a name", .extra = {"X:A", "1"}},
      {.name = "empty name", .extra = {"", "1"}},
      {.name = "NULL value", .extra = {"X-A", NULL}},
      {.name = "bad escape in query", .query = "a=%G1"},
      {.name = "truncated escape in query", .query = "a=%4"},
      {.name = "space in query", .query = "a=b c"},
      {.name = "path without leading slash", .path = "x"},
      {.name = "space in path", .path = "/a b"},
      {.name = "empty method", .method = ""},
      {.name = "method with a space", .method = "GET /"},
      {.name = "payload length without payload",
       .payload_len_without_payload = 3},
      {.name = "empty access key id", .akid = ""},
      {.name = "access key id with a slash", .akid = "AK/ID"},
      {.name = "empty secret", .secret = ""},
      {.name = "region with a slash", .region = "us/east-1"},
      {.name = "empty service", .service = ""},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    bool no_host = strcmp(cases[i].name, "no Host header") == 0;
    struct sigv4_header h[2] = {HOST_EXAMPLE, cases[i].extra};
    size_t n = cases[i].extra.name || cases[i].extra.value ? 2 : 1;
    struct sigv4_request req = {
        .method = cases[i].method ? cases[i].method : "GET",
        .path = cases[i].path ? cases[i].path : "/",
        .query = cases[i].query,
        .headers = no_host ? h + 1 : h,
        .n_headers = no_host ? 1 : n,
        .payload_len = cases[i].payload_len_without_payload,
    };
    struct sigv4_key key = {
        .access_key_id = cases[i].akid ? cases[i].akid : AKID,
        .secret_access_key = cases[i].secret ? cases[i].secret : SECRET,
        .region = cases[i].region ? cases[i].region : "us-east-1",
        .service = cases[i].service ? cases[i].service : "service",
        .session_token = "tok",
    };
    struct sigv4_result res;
    enum ts_status st = sigv4_sign(&req, &key, T_20150830, &res);
    TS_CHECK_CASE(st == TS_ERR_INVALID, cases[i].name, "status %s",
                  ts_status_name(st));
    TS_CHECK_CASE(res.authorization == NULL, cases[i].name,
                  "authorization left behind");
    sigv4_result_clear(&res);
  }
}

static void test_result_clear_accepts_null_and_is_repeatable(void) {
  sigv4_result_clear(NULL);
  struct sigv4_result r = {0};
  sigv4_result_clear(&r);
  sigv4_result_clear(&r);
  CU_ASSERT_PTR_NULL(r.authorization);
}

void suite_sigv4(void) {
  TS_SUITE("sigv4", TS_TEST(test_canonical_request_matches_published_vectors),
           TS_TEST(test_string_to_sign_hashes_the_published_canonical_request),
           TS_TEST(test_signing_key_matches_documented_examples),
           TS_TEST(test_authorization_header_matches_published_signatures),
           TS_TEST(test_cached_signing_key_follows_secret_day_region_service),
           TS_TEST(test_session_token_is_covered_by_the_signature),
           TS_TEST(test_dynamodb_request_signs_target_and_token),
           TS_TEST(test_query_is_decoded_reencoded_and_sorted),
           TS_TEST(test_header_values_are_trimmed_and_folded),
           TS_TEST(test_requests_that_cannot_be_signed_are_refused),
           TS_TEST(test_result_clear_accepts_null_and_is_repeatable));
}
