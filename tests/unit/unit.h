/* Helpers shared by the unit-test suites. */
#ifndef TS_TESTS_UNIT_UNIT_H
#define TS_TESTS_UNIT_UNIT_H

#include <CUnit/CUnit.h>
#include <jansson.h>
#include <stdio.h>

#include "common/jdoc.h"

#include "suites.h"
#include "tests/support/failures.h"

/* Adds a suite with the given tests; aborts the run if CUnit cannot. */
#define TS_SUITE(name, ...)                                                    \
  do {                                                                         \
    CU_pSuite s_ = CU_add_suite(name, NULL, NULL);                             \
    struct {                                                                   \
      const char *n;                                                           \
      CU_TestFunc f;                                                           \
    } t_[] = {__VA_ARGS__};                                                    \
    for (size_t i_ = 0; s_ && i_ < sizeof t_ / sizeof t_[0]; i_++)             \
      CU_add_test(s_, t_[i_].n, t_[i_].f);                                     \
  } while (0)

/* A test entry: {"name that says the rule", function}. */
#define TS_TEST(fn)                                                            \
  { #fn, fn }

/* Fails with the case name and what differed, for table-driven tests.
 * cond is evaluated once, so it may call what it checks. The failure's
 * condition is "case NAME: what differed", so the run's digest of
 * failures (tests/support/failures.h) says it too; a passing check
 * formats nothing (CUnit copies the text it is given). */
#define TS_CHECK_CASE(cond, case_name, ...)                                    \
  do {                                                                         \
    const int ok_ = !!(cond);                                                  \
    char why_[512];                                                            \
    const char *text_ = #cond;                                                 \
    if (!ok_) {                                                                \
      test_format_case(why_, sizeof why_, case_name, __VA_ARGS__);             \
      fprintf(stderr, "\n  %s\n", why_);                                       \
      text_ = why_;                                                            \
    }                                                                          \
    CU_assertImplementation(ok_ ? CU_TRUE : CU_FALSE, __LINE__, text_,         \
                            __FILE__, "", CU_FALSE);                           \
  } while (0)

/* The document of a tree a test built, for batch_new (which takes it);
 * NULL when j is NULL or holds what JSON text cannot (a NUL). */
static inline struct jdoc *test_doc_of(const json_t *j) {
  struct jdoc *d = NULL;
  if (j && jdoc_from_json(j, &d) != TS_OK)
    d = NULL;
  return d;
}

#endif
