/* Every CUnit suite of the unit-test binary, one line each. A suite file
 * defines `void suite_<name>(void)` that adds its suite and tests. */
#ifndef TS_TESTS_UNIT_SUITES_H
#define TS_TESTS_UNIT_SUITES_H

#define TS_UNIT_SUITES(X)                                                      \
  X(decimal)                                                                   \
  X(json_parse)                                                                \
  X(jdoc)                                                                      \
  X(json_pool)                                                                 \
  X(arena)                                                                     \
  X(stats)                                                                     \
  X(batch)                                                                     \
  X(decide)                                                                    \
  X(backfill)                                                                  \
  X(store_sqlite)                                                              \
  X(recent)                                                                    \
  X(pair_filter)                                                               \
  X(row_cache)                                                                 \
  X(sqlite_vfs)                                                                \
  X(rank_cache)                                                                \
  X(guess)                                                                     \
  X(turns)                                                                     \
  X(http_util)                                                                 \
  X(conn_guard)                                                                \
  X(config)                                                                    \
  X(sigv4)                                                                     \
  X(creds)                                                                     \
  X(ddb)                                                                       \
  X(kinesis_rules)

#define TS_DECLARE_SUITE(name) void suite_##name(void);
TS_UNIT_SUITES(TS_DECLARE_SUITE)
#undef TS_DECLARE_SUITE

#endif
