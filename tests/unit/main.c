/* Unit-test runner: registers every suite from suites.h and runs them.
 * Exit status is non-zero when any assertion failed. */
#include <CUnit/Basic.h>
#include <stdio.h>

#include "suites.h"
#include "tests/support/failures.h"

int main(void) {
  if (CU_initialize_registry() != CUE_SUCCESS)
    return 2;
#define TS_CALL_SUITE(name) suite_##name();
  TS_UNIT_SUITES(TS_CALL_SUITE)
#undef TS_CALL_SUITE
  CU_basic_set_mode(CU_BRM_VERBOSE);
  CU_basic_run_tests();
  test_print_failures(stderr);
  unsigned failed =
      CU_get_number_of_failures() + CU_get_number_of_tests_failed();
  unsigned ran = CU_get_number_of_tests_run();
  CU_cleanup_registry();
  if (ran == 0) {
    fprintf(stderr, "no unit test ran\n");
    return 1;
  }
  return failed ? 1 : 0;
}
