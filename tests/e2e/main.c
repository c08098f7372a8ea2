/* End-to-end runner: the real binary (TS_TEST_BIN) over HTTP.
 * Exit status is non-zero when any assertion, suite set-up or suite
 * clean-up failed (a clean-up fails when a server did not exit 0). */
#include <CUnit/Basic.h>
#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "harness.h"
#include "suites.h"
#include "tests/support/failures.h"

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  if (e2e_config_load() != TS_OK)
    return 2;
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
    return 2;
  if (CU_initialize_registry() != CUE_SUCCESS)
    return 2;
#define TS_CALL_SUITE(name) e2e_suite_##name();
  TS_E2E_SUITES(TS_CALL_SUITE)
#undef TS_CALL_SUITE
  CU_basic_set_mode(CU_BRM_VERBOSE);
  /* Optional arguments: run one suite, or one test of it, by name (for
   * iterating). */
  if (argc > 1) {
    CU_pSuite s = CU_get_suite(argv[1]);
    CU_pTest t = s && argc > 2 ? CU_get_test(s, argv[2]) : NULL;
    if (!s || (argc > 2 && !t)) {
      fprintf(stderr, "no suite %s or no test %s in it\n", argv[1],
              argc > 2 ? argv[2] : "");
      CU_cleanup_registry();
      return 2;
    }
    if (t)
      CU_basic_run_test(s, t);
    else
      CU_basic_run_suite(s);
  } else {
    CU_basic_run_tests();
  }
  test_print_failures(stderr);
  CU_pRunSummary sum = CU_get_run_summary();
  unsigned failed =
      sum->nAssertsFailed + sum->nTestsFailed + sum->nSuitesFailed;
  unsigned ran = sum->nTestsRun;
  CU_cleanup_registry();
  curl_global_cleanup();
  if (ran == 0) {
    fprintf(stderr, "no end-to-end test ran\n");
    return 1;
  }
  return failed ? 1 : 0;
}
