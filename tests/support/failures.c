#include "failures.h"

#include <CUnit/CUnit.h>
#include <CUnit/TestRun.h>
#include <stdarg.h>

void test_print_failures(FILE *out) {
  unsigned n = 0;
  for (CU_pFailureRecord f = CU_get_failure_list(); f; f = f->pNext) {
    if (n++ == 0)
      fputs("\nfailures of this run:\n", out);
    /* A suite's set-up or clean-up failure has no test. */
    fprintf(out, "FAILED %s / %s: %s:%u: %s\n",
            f->pSuite && f->pSuite->pName ? f->pSuite->pName : "?",
            f->pTest && f->pTest->pName ? f->pTest->pName : "(suite)",
            f->strFileName ? f->strFileName : "?", f->uiLineNumber,
            f->strCondition ? f->strCondition : "");
  }
  fflush(out);
}

void test_format_case(char *buf, size_t cap, const char *case_name,
                      const char *fmt, ...) {
  if (cap == 0)
    return;
  int n = snprintf(buf, cap, "case %s: ", case_name);
  if (n < 0 || (size_t)n >= cap)
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf + n, cap - (size_t)n, fmt, ap);
  va_end(ap);
}
