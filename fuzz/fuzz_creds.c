/* Fuzzes aws/creds: the shared-file (INI) parser, the Expiration parser
 * and the container FULL_URI rule.
 *
 * The INI parser is reachable only through files: the input becomes the
 * config file and the credentials file (temp files named by
 * AWS_CONFIG_FILE and AWS_SHARED_CREDENTIALS_FILE) with every other
 * provider off (no AWS_ACCESS_KEY_ID, no container variables,
 * AWS_EC2_METADATA_DISABLED=true), so no network is ever tried.
 *
 * Input: the first byte picks the mode.
 *   0: INI. The rest split on NUL: config file, credentials file, and
 *      optionally AWS_PROFILE. aws_creds_get must answer TS_OK (keys from
 *      the files: non-empty, trimmed, one line, present in a file),
 *      TS_ERR_NOT_FOUND or TS_ERR_INVALID (a bound broken); never
 *      TS_ERR_UNAVAILABLE. aws_region_resolve: NULL or a value of the
 *      config file.
 *   1: Expiration. creds_test_parse_expiration on the rest (to a NUL):
 *      TS_OK only for the documented shape, and then (seconds below 60)
 *      the time formats back to the same date and time.
 *   2: FULL_URI. creds_test_full_uri_allowed on the rest: true only for
 *      http(s) URLs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "aws/creds.h"
#include "aws/creds_test.h"
#include "input.h"

static char dir[] = "/tmp/ts-fuzz-creds-XXXXXX";
static char config_path[64], credentials_path[64];
static struct aws_creds_provider *provider;

static const char *const unset_vars[] = {
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT",
    "AWS_PROFILE",
};

static void remove_files(void) {
  unlink(config_path);
  unlink(credentials_path);
  rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  FUZZ_CHECK(mkdtemp(dir), "mkdtemp failed");
  snprintf(config_path, sizeof config_path, "%s/config", dir);
  snprintf(credentials_path, sizeof credentials_path, "%s/credentials", dir);
  atexit(remove_files);
  for (size_t i = 0; i < sizeof unset_vars / sizeof unset_vars[0]; i++)
    unsetenv(unset_vars[i]);
  setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
  setenv("AWS_CONFIG_FILE", config_path, 1);
  setenv("AWS_SHARED_CREDENTIALS_FILE", credentials_path, 1);
  FUZZ_CHECK(aws_creds_provider_new(&provider) == TS_OK,
             "aws_creds_provider_new failed");
  return 0;
}

static void write_file(const char *path, const char *text, size_t len) {
  FILE *f = fopen(path, "wb");
  FUZZ_CHECK(f, "cannot write %s", path);
  FUZZ_CHECK(fwrite(text, 1, len, f) == len, "short write to %s", path);
  fclose(f);
}

/* A value as the parser may return it: non-empty, no blank at either
 * end, no line break, and somewhere in one of the files. */
static void check_value(const char *v, const char *what, const char *a,
                        const char *b) {
  FUZZ_CHECK(v && *v, "%s is empty", what);
  size_t n = strlen(v);
  FUZZ_CHECK(v[0] != ' ' && v[0] != '\t' && v[n - 1] != ' ' &&
                 v[n - 1] != '\t' && v[n - 1] != '\r',
             "%s is not trimmed: \"%s\"", what, v);
  FUZZ_CHECK(!strchr(v, '\n'), "%s spans lines", what);
  FUZZ_CHECK(strstr(a, v) || (b && strstr(b, v)), "%s is in no file: \"%s\"",
             what, v);
}

static void fuzz_ini(struct input *in) {
  size_t config_len, credentials_len;
  char *config = input_take_cstr(in, &config_len);
  char *credentials = input_take_cstr(in, &credentials_len);
  char *profile = input_take_cstr_or_null(in);
  write_file(config_path, config, config_len);
  write_file(credentials_path, credentials, credentials_len);
  if (profile)
    setenv("AWS_PROFILE", profile, 1);
  else
    unsetenv("AWS_PROFILE");

  struct aws_creds c;
  enum ts_status st = aws_creds_get(provider, &c);
  FUZZ_CHECK(st == TS_OK || st == TS_ERR_NOT_FOUND || st == TS_ERR_INVALID,
             "aws_creds_get from files returned %s", ts_status_name(st));
  if (st == TS_OK) {
    FUZZ_CHECK(c.source && strcmp(c.source, "shared-files") == 0,
               "credentials from %s", c.source ? c.source : "(null)");
    check_value(c.access_key_id, "access key id", config, credentials);
    check_value(c.secret_access_key, "secret", config, credentials);
    if (c.session_token)
      check_value(c.session_token, "session token", config, credentials);
    FUZZ_CHECK(c.expiration == 0, "shared-file credentials expire");
  } else {
    FUZZ_CHECK(!c.access_key_id && !c.secret_access_key && !c.session_token,
               "a failed aws_creds_get left values");
  }
  aws_creds_clear(&c);

  char *region = aws_region_resolve();
  if (region)
    check_value(region, "region", config, NULL);
  free(region);
  free(config);
  free(credentials);
  free(profile);
}

static bool digits(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (s[i] < '0' || s[i] > '9')
      return false;
  return true;
}

static void fuzz_expiration(struct input *in) {
  size_t len;
  char *s = input_take_cstr(in, &len);
  time_t t = 0;
  enum ts_status st = creds_test_parse_expiration(s, &t);
  FUZZ_CHECK(st == TS_OK || st == TS_ERR_INVALID,
             "parse_expiration returned %s", ts_status_name(st));
  if (st == TS_OK) {
    FUZZ_CHECK(len >= 20 && s[4] == '-' && s[7] == '-' && s[10] == 'T' &&
                   s[13] == ':' && s[16] == ':' && s[len - 1] == 'Z' &&
                   digits(s, 4) && digits(s + 5, 2) && digits(s + 8, 2) &&
                   digits(s + 11, 2) && digits(s + 14, 2) && digits(s + 17, 2),
               "accepted \"%s\", not YYYY-MM-DDTHH:MM:SS[.f]Z", s);
    FUZZ_CHECK(len == 20 ||
                   (s[19] == '.' && len > 21 && digits(s + 20, len - 21)),
               "accepted \"%s\" with an odd fraction", s);
    FUZZ_CHECK(t >= 0, "accepted a time before 1970: \"%s\"", s);
    if (s[17] < '6') { /* a leap second normalises to the next minute */
      struct tm tm;
      char back[32];
      FUZZ_CHECK(gmtime_r(&t, &tm) &&
                     strftime(back, sizeof back, "%Y-%m-%dT%H:%M:%S", &tm) ==
                         19 &&
                     strncmp(back, s, 19) == 0,
                 "\"%s\" parsed to another time", s);
    }
  }
  free(s);
  FUZZ_CHECK(creds_test_parse_expiration(NULL, &t) == TS_ERR_INVALID,
             "NULL accepted");
}

static void fuzz_full_uri(struct input *in) {
  char *uri = input_take_cstr(in, NULL);
  if (creds_test_full_uri_allowed(uri))
    FUZZ_CHECK(strncasecmp(uri, "http", 4) == 0,
               "allowed a URI that is not http(s): %s", uri);
  free(uri);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct input in = {data, size};
  switch (input_take_u8(&in) % 3) {
  case 0: fuzz_ini(&in); break;
  case 1: fuzz_expiration(&in); break;
  default: fuzz_full_uri(&in); break;
  }
  return 0;
}
