/* The end-to-end suites; each file defines `void e2e_suite_<name>(void)`. */
#ifndef TS_TESTS_E2E_SUITES_H
#define TS_TESTS_E2E_SUITES_H

#define TS_E2E_SUITES(X)                                                       \
  X(lifecycle)                                                                 \
  X(ingest)                                                                    \
  X(queries)                                                                   \
  X(random_stream)                                                             \
  X(corpus)                                                                    \
  X(api)                                                                       \
  X(dead_letters)                                                              \
  X(dynamodb)                                                                  \
  X(dynamodb_faults)                                                           \
  X(leaderboard)                                                               \
  X(sqlite)                                                                    \
  X(backfill)                                                                  \
  X(kinesis)

#define TS_E2E_DECLARE(name) void e2e_suite_##name(void);
TS_E2E_SUITES(TS_E2E_DECLARE)
#undef TS_E2E_DECLARE

#endif
