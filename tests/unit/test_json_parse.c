/* suite_json_parse: the request-body parser accepts and refuses what
 * jansson's json_loadb(JSON_DECODE_ANY) does and builds an equal tree. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "common/json_parse.h"
#include "unit.h"

/* Parses text both ways; they must agree on the verdict and the tree. */
static void check_same_as_jansson(const char *name, const char *text,
                                  size_t len, int want_ok) {
  json_error_t jerr;
  json_t *ref = json_loadb(text, len, JSON_DECODE_ANY, &jerr);
  json_t *got = NULL;
  struct json_parse_error err;
  enum ts_status st = json_parse(text, len, &got, &err);
  TS_CHECK_CASE((ref != NULL) == want_ok, name, "fixture: jansson says %s (%s)",
                ref ? "valid" : "invalid", ref ? "" : jerr.text);
  TS_CHECK_CASE((st == TS_OK) == (ref != NULL), name,
                "json_parse says %s (%s), jansson %s", ts_status_name(st),
                st == TS_OK ? "" : err.text, ref ? "valid" : "invalid");
  if (ref && got)
    TS_CHECK_CASE(json_equal(ref, got), name, "trees differ");
  if (st != TS_OK)
    TS_CHECK_CASE(err.line >= 1 && err.column >= 1 && err.text[0], name,
                  "no position or reason for the error");
  json_decref(ref);
  json_decref(got);
}

static void test_accepts_and_refuses_exactly_what_jansson_does(void) {
  static const struct {
    const char *name, *text;
    int ok;
  } cases[] = {
      {"stream record",
       "{\"Records\":[{\"eventID\":\"e1\",\"eventName\":\"INSERT\","
       "\"dynamodb\":{\"ApproximateCreationDateTime\":1764000000.5,"
       "\"NewImage\":{\"player\":{\"S\":\"ann\"},\"score\":{\"N\":\"1.5\"},"
       "\"winner\":{\"BOOL\":true}},\"SizeBytes\":120}}]}",
       1},
      {"scalars at the top", " 12 ", 1},
      {"true", "true", 1},
      {"null in array", "[null,false,true]", 1},
      {"empty object and array", "{\"a\":{},\"b\":[]}", 1},
      {"negative zero", "-0", 1},
      {"real forms", "[0.5,-1.25e3,1E+2,1e-2,2e-400]", 1},
      {"int64 limits", "[9223372036854775807,-9223372036854775808]", 1},
      {"escapes", "\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\te\"", 1},
      {"unicode escapes", "\"\\u00e9\\u20AC\\ud83d\\ude00\"", 1},
      {"raw utf-8", "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"", 1},
      {"DEL is not a control character", "\"\x7f\"", 1},
      {"duplicate keys: the last wins", "{\"a\":1,\"a\":2}", 1},
      {"empty key", "{\"\":1}", 1},
      {"whitespace everywhere", " \t\r\n[ 1 ,\n{ \"a\" : 2 } ] \n", 1},
      {"empty", "", 0},
      {"only whitespace", "  \n", 0},
      {"trailing comma in array", "[1,]", 0},
      {"trailing comma in object", "{\"a\":1,}", 0},
      {"two values", "1 2", 0},
      {"leading zero", "01", 0},
      {"dot without digits", "1.", 0},
      {"bare dot", ".5", 0},
      {"empty exponent", "1e", 0},
      {"plus sign", "+1", 0},
      {"lone minus", "-", 0},
      {"integer too big", "9223372036854775808", 0},
      {"negative integer too big", "-9223372036854775809", 0},
      {"real overflow", "1e999", 0},
      {"nan", "NaN", 0},
      {"single quotes", "'a'", 0},
      {"unterminated string", "\"abc", 0},
      {"control character", "\"a\tb\"", 0},
      {"bad escape", "\"\\x41\"", 0},
      {"short unicode escape", "\"\\u12\"", 0},
      {"u0000", "\"\\u0000\"", 0},
      {"lone high surrogate", "\"\\ud83d\"", 0},
      {"lone low surrogate", "\"\\ude00\"", 0},
      {"high surrogate then non-low", "\"\\ud83d\\u0041\"", 0},
      {"invalid utf-8", "\"\xff\"", 0},
      {"overlong utf-8", "\"\xc0\xaf\"", 0},
      {"utf-8 surrogate", "\"\xed\xa0\x80\"", 0},
      {"truncated utf-8", "\"\xe2\x82\"", 0},
      {"truex", "[truex]", 0},
      {"nul", "nul", 0},
      {"key not a string", "{1:2}", 0},
      {"missing colon", "{\"a\" 1}", 0},
      {"missing comma", "[1 2]", 0},
      {"unclosed array", "[1", 0},
      {"unclosed object", "{\"a\":1", 0},
      {"garbage after value", "{}x", 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    check_same_as_jansson(cases[i].name, cases[i].text, strlen(cases[i].text),
                          cases[i].ok);
  check_same_as_jansson("NUL in a string", "\"a\0b\"", 5, 0);
  check_same_as_jansson("NUL before a value", "[\0 1]", 5, 0);
}

/* A NUL byte is refused everywhere, also where jansson's reader skips it
 * (right after a number or a literal). */
static void test_nul_byte_is_refused_wherever_it_is(void) {
  static const struct {
    const char *name, *text;
    size_t len;
  } cases[] = {
      {"after a number in an array", "[1\0]", 4},
      {"after a top-level number", "1\0", 2},
      {"after a literal", "[true\0]", 7},
      {"alone", "\0", 1},
      {"in a key", "{\"a\0\":1}", 8},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    json_t *v = NULL;
    struct json_parse_error err;
    enum ts_status st = json_parse(cases[i].text, cases[i].len, &v, &err);
    TS_CHECK_CASE(st == TS_ERR_INVALID && v == NULL, cases[i].name,
                  "json_parse says %s", ts_status_name(st));
    json_decref(v);
  }
}

/* Nesting: jansson counts every value's depth (scalars too) and refuses
 * one deeper than 2048. */
static void test_nesting_deeper_than_jansson_allows_is_refused(void) {
  static const struct {
    const char *name;
    size_t arrays;
    int scalar, ok;
  } cases[] = {
      {"2048 arrays", 2048, 0, 1},
      {"2049 arrays", 2049, 0, 0},
      {"2047 arrays around a scalar", 2047, 1, 1},
      {"2048 arrays around a scalar", 2048, 1, 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    size_t n = cases[i].arrays;
    char *t = malloc(2 * n + 2);
    CU_ASSERT_FATAL(t != NULL);
    memset(t, '[', n);
    size_t len = n;
    if (cases[i].scalar)
      t[len++] = '1';
    memset(t + len, ']', n);
    len += n;
    check_same_as_jansson(cases[i].name, t, len, cases[i].ok);
    free(t);
  }
}

/* The position points at the offending byte, line by line. */
static void test_error_position_names_line_and_column(void) {
  json_t *v = NULL;
  struct json_parse_error err;
  const char *text = "{\n  \"a\": 1,\n  \"b\": x\n}";
  CU_ASSERT(json_parse(text, strlen(text), &v, &err) == TS_ERR_INVALID);
  CU_ASSERT(v == NULL);
  CU_ASSERT_EQUAL(err.line, 3);
  CU_ASSERT_EQUAL(err.column, 8);
}

void suite_json_parse(void) {
  TS_SUITE("json_parse",
           TS_TEST(test_accepts_and_refuses_exactly_what_jansson_does),
           TS_TEST(test_nul_byte_is_refused_wherever_it_is),
           TS_TEST(test_nesting_deeper_than_jansson_allows_is_refused),
           TS_TEST(test_error_position_names_line_and_column));
}
