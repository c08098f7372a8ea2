/* A digest of a CUnit run's failures, printed after the run.
 *
 * CUnit prints each failure next to its test, where a server's log lines
 * and other tests' output (ctest -j) can bury it. The digest repeats every
 * failure on one line, "FAILED suite / test: file:line: condition", at the
 * end of the output, where a CI summary that keeps the tail still shows
 * which test failed and why. */
#ifndef TS_TEST_FAILURES_H
#define TS_TEST_FAILURES_H

#include <stddef.h>
#include <stdio.h>

/* Prints the digest of the run just finished to out; prints nothing when
 * nothing failed. Call before CU_cleanup_registry(). */
void test_print_failures(FILE *out);

/* Writes "case NAME: " and then fmt's text into buf (cap bytes, always
 * terminated, cut when longer): a table-driven case's failure. */
void test_format_case(char *buf, size_t cap, const char *case_name,
                      const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
