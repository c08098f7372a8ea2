/* suite_jdoc: the flat document's readers. What the parser accepts and
 * refuses is suite_json_parse's (json_parse is this parser plus
 * jdoc_to_json); here: walking members and elements, the last of a
 * repeated key winning, decoded strings, and the absent value. */
#include <jansson.h>
#include <string.h>

#include "common/jdoc.h"
#include "unit.h"

static struct jdoc *parse(const char *text) {
  struct jdoc *d = NULL;
  struct json_parse_error err;
  enum ts_status st = jdoc_parse(text, strlen(text), &d, &err);
  TS_CHECK_CASE(st == TS_OK, text, "jdoc_parse: %s at %d:%d", err.text,
                err.line, err.column);
  return d;
}

static void test_elements_are_walked_in_order_past_nested_values(void) {
  struct jdoc *d =
      parse("[[1,[2,3]],{\"k\":{\"l\":null}},\"s\",true,false,null,-5,2.5]");
  CU_ASSERT_PTR_NOT_NULL_FATAL(d);
  static const enum jdoc_type want[] = {JDOC_ARRAY,   JDOC_OBJECT, JDOC_STRING,
                                        JDOC_TRUE,    JDOC_FALSE,  JDOC_NULL,
                                        JDOC_INTEGER, JDOC_REAL};
  jdoc_ref root = jdoc_root(d);
  CU_ASSERT_EQUAL(jdoc_type(d, root), JDOC_ARRAY);
  CU_ASSERT_EQUAL(jdoc_count(d, root), 8);
  size_t i = 0;
  for (jdoc_ref e = jdoc_first(d, root); e != JDOC_NONE;
       e = jdoc_next(d, root, e), i++) {
    CU_ASSERT_FATAL(i < 8);
    CU_ASSERT_EQUAL(jdoc_type(d, e), want[i]);
    if (i == 0)
      CU_ASSERT_EQUAL(jdoc_count(d, e), 2);
    if (i == 6)
      CU_ASSERT_EQUAL(jdoc_integer(d, e), -5);
    if (i == 7)
      CU_ASSERT_DOUBLE_EQUAL(jdoc_number(d, e), 2.5, 0);
  }
  CU_ASSERT_EQUAL(i, 8);
  jdoc_free(d);
}

static void test_a_repeated_key_is_kept_and_the_last_wins(void) {
  struct jdoc *d = parse("{\"a\":1,\"b\":{\"x\":[1,{\"a\":2}]},\"a\":\"z\"}");
  CU_ASSERT_PTR_NOT_NULL_FATAL(d);
  jdoc_ref root = jdoc_root(d);
  CU_ASSERT_EQUAL(jdoc_count(d, root), 3);
  const char *keys[3] = {0};
  size_t n = 0;
  for (jdoc_ref k = jdoc_first(d, root); k != JDOC_NONE && n < 3;
       k = jdoc_next(d, root, k))
    keys[n++] = jdoc_string(d, k);
  CU_ASSERT_EQUAL_FATAL(n, 3);
  CU_ASSERT(keys[0] && strcmp(keys[0], "a") == 0);
  CU_ASSERT(keys[1] && strcmp(keys[1], "b") == 0);
  CU_ASSERT(keys[2] && strcmp(keys[2], "a") == 0);
  jdoc_ref a = jdoc_get(d, root, "a");
  CU_ASSERT_EQUAL(jdoc_type(d, a), JDOC_STRING);
  CU_ASSERT(jdoc_string(d, a) && strcmp(jdoc_string(d, a), "z") == 0);
  CU_ASSERT_EQUAL(jdoc_type(d, jdoc_get(d, root, "b")), JDOC_OBJECT);
  CU_ASSERT_EQUAL(jdoc_get(d, root, "x"), JDOC_NONE); /* not a member */
  /* The tree is jansson's reading of the text. */
  json_t *tree = jdoc_to_json(d, root);
  json_t *ref =
      json_loads("{\"a\":\"z\",\"b\":{\"x\":[1,{\"a\":2}]}}", 0, NULL);
  CU_ASSERT(tree && ref && json_equal(tree, ref));
  json_decref(tree);
  json_decref(ref);
  jdoc_free(d);
}

static void test_strings_are_decoded_and_terminated(void) {
  static const struct {
    const char *text, *want;
  } cases[] = {
      {"\"plain\"", "plain"},
      {"\"\"", ""},
      {"\"a\\u00e9\\ud83d\\ude00\\n\\\"\\/\"",
       "a\xc3\xa9\xf0\x9f\x98\x80\n\"/"},
      {"\"caf\xc3\xa9\"", "caf\xc3\xa9"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct jdoc *d = parse(cases[i].text);
    if (!d)
      continue;
    jdoc_ref r = jdoc_root(d);
    TS_CHECK_CASE(jdoc_length(d, r) == strlen(cases[i].want) &&
                      strcmp(jdoc_string(d, r), cases[i].want) == 0,
                  cases[i].text, "decoded to \"%s\" (%zu bytes)",
                  jdoc_string(d, r) ? jdoc_string(d, r) : "(null)",
                  jdoc_length(d, r));
    jdoc_free(d);
  }
}

static void test_the_absent_value_reads_as_nothing(void) {
  struct jdoc *d = parse("{\"s\":\"x\",\"e\":{},\"l\":[]}");
  CU_ASSERT_PTR_NOT_NULL_FATAL(d);
  jdoc_ref root = jdoc_root(d), s = jdoc_get(d, root, "s");
  CU_ASSERT_EQUAL(jdoc_type(d, JDOC_NONE), JDOC_ABSENT);
  CU_ASSERT_EQUAL(jdoc_count(d, JDOC_NONE), 0);
  CU_ASSERT_EQUAL(jdoc_first(d, JDOC_NONE), JDOC_NONE);
  CU_ASSERT_PTR_NULL(jdoc_string(d, JDOC_NONE));
  CU_ASSERT_EQUAL(jdoc_get(d, JDOC_NONE, "s"), JDOC_NONE);
  CU_ASSERT_EQUAL(jdoc_get(d, s, "s"), JDOC_NONE); /* s is not an object */
  CU_ASSERT_EQUAL(jdoc_first(d, s), JDOC_NONE);
  CU_ASSERT_EQUAL(jdoc_first(d, jdoc_get(d, root, "e")), JDOC_NONE);
  CU_ASSERT_EQUAL(jdoc_first(d, jdoc_get(d, root, "l")), JDOC_NONE);
  CU_ASSERT_PTR_NULL(jdoc_to_json(d, JDOC_NONE));
  CU_ASSERT_EQUAL(jdoc_root(NULL), JDOC_NONE);
  CU_ASSERT_EQUAL(jdoc_type(NULL, 0), JDOC_ABSENT);
  jdoc_free(d);
  jdoc_free(NULL);
}

void suite_jdoc(void) {
  TS_SUITE("jdoc",
           TS_TEST(test_elements_are_walked_in_order_past_nested_values),
           TS_TEST(test_a_repeated_key_is_kept_and_the_last_wins),
           TS_TEST(test_strings_are_decoded_and_terminated),
           TS_TEST(test_the_absent_value_reads_as_nothing));
}
