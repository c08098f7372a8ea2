/* Configuration: defaults, environment, flags winning over environment,
 * and clear errors for bad values. */
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server/config.h"
#include "unit.h"

static const char *const vars[] = {"TS_BIND",
                                   "TS_PORT",
                                   "TS_STORE",
                                   "TS_SQLITE_PATH",
                                   "TS_THREADS",
                                   "TS_INGEST_API_KEY",
                                   "TS_LOG_LEVEL",
                                   "TS_TTL_REMOVES",
                                   "TS_INGEST_API_KEY_FILE",
                                   "TS_LEADERBOARD_REFRESH_S"};

static void clear_env(void) {
  for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
    unsetenv(vars[i]);
}

static enum ts_status load(struct config *cfg, int argc, char **argv,
                           enum config_action *action) {
  FILE *sink = fopen("/dev/null", "w");
  enum ts_status st = config_load(cfg, argc, argv, sink, sink, action);
  fclose(sink);
  return st;
}

static void test_defaults_match_the_product_contract(void) {
  clear_env();
  struct config cfg;
  enum config_action action;
  char *argv[] = {"tourney-stats", NULL};
  CU_ASSERT_EQUAL_FATAL(load(&cfg, 1, argv, &action), TS_OK);
  CU_ASSERT_EQUAL(action, CONFIG_RUN);
  CU_ASSERT_STRING_EQUAL(cfg.bind, "0.0.0.0");
  CU_ASSERT_EQUAL(cfg.port, 8080);
  CU_ASSERT_STRING_EQUAL(cfg.store, "sqlite");
  CU_ASSERT_STRING_EQUAL(cfg.sqlite_path, "./data/tourney-stats.db");
  CU_ASSERT_STRING_EQUAL(cfg.table, "TaTourneyStats");
  CU_ASSERT_PTR_NULL(cfg.ingest_api_key);
  CU_ASSERT_STRING_EQUAL(cfg.ttl_removes, "skip");
  CU_ASSERT_EQUAL(cfg.leaderboard_refresh_s, 10);
  config_clear(&cfg);
}

static void test_flag_wins_over_environment(void) {
  clear_env();
  setenv("TS_PORT", "9000", 1);
  setenv("TS_SQLITE_PATH", "/tmp/env.db", 1);
  struct config cfg;
  enum config_action action;
  char *argv[] = {"tourney-stats", "--port", "0", NULL};
  CU_ASSERT_EQUAL_FATAL(load(&cfg, 3, argv, &action), TS_OK);
  CU_ASSERT_EQUAL(cfg.port, 0);
  CU_ASSERT_STRING_EQUAL(cfg.sqlite_path, "/tmp/env.db");
  config_clear(&cfg);
  clear_env();
}

static void test_bad_values_are_refused(void) {
  static const struct {
    const char *name, *flag, *value;
  } cases[] = {
      {"port too large", "--port", "65536"},
      {"port not a number", "--port", "80x"},
      {"negative port", "--port", "-1"},
      {"unknown store", "--store", "postgres"},
      {"more threads than the bound", "--threads", "257"},
      {"unknown log level", "--log-level", "loud"},
      {"unknown TTL remove rule", "--ttl-removes", "ignore"},
      {"leaderboard refresh of 0 s", "--leaderboard-refresh-s", "0"},
      {"leaderboard refresh over an hour", "--leaderboard-refresh-s", "3601"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    clear_env();
    struct config cfg;
    enum config_action action;
    char *argv[] = {"tourney-stats", (char *)cases[i].flag,
                    (char *)cases[i].value, NULL};
    enum ts_status st = load(&cfg, 3, argv, &action);
    TS_CHECK_CASE(st == TS_ERR_INVALID, cases[i].name, "status %s",
                  ts_status_name(st));
    config_clear(&cfg);
  }
}

/* TS_THREADS=0 (the default) picks the thread count from the CPUs: one
 * each on SQLite, four each and at least 8 on DynamoDB; a number is kept. */
static void test_thread_count_follows_the_cpus_unless_given(void) {
  cpu_set_t set;
  CU_ASSERT_FATAL(sched_getaffinity(0, sizeof set, &set) == 0);
  unsigned cpus = (unsigned)CPU_COUNT(&set);
  static const struct {
    const char *name, *store, *threads;
  } cases[] = {
      {"sqlite, default", "sqlite", NULL},
      {"dynamodb, default", "dynamodb", NULL},
      {"sqlite, 0", "sqlite", "0"},
      {"given", "sqlite", "5"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    clear_env();
    struct config cfg;
    enum config_action action;
    char *argv[] = {
        "tourney-stats",          "--store",
        (char *)cases[i].store,   cases[i].threads ? "--threads" : NULL,
        (char *)cases[i].threads, NULL};
    int argc = cases[i].threads ? 5 : 3;
    CU_ASSERT_FATAL(load(&cfg, argc, argv, &action) == TS_OK);
    unsigned want = cases[i].threads && strcmp(cases[i].threads, "0") != 0 ? 5u
                    : strcmp(cases[i].store, "dynamodb") == 0
                        ? (4 * cpus > 8 ? 4 * cpus : 8)
                        : cpus;
    TS_CHECK_CASE(cfg.threads == want, cases[i].name, "threads %u, want %u",
                  cfg.threads, want);
    config_clear(&cfg);
  }
}

/* TS_INGEST_API_KEY_FILE keeps the key out of the process list: its first
 * line is the key; a file that cannot be the key is refused at start. */
static void test_ingest_key_comes_from_a_file(void) {
  static const struct {
    const char *name, *content; /* NULL: the file does not exist */
    bool also_env;
    const char *want; /* NULL: refused */
  } cases[] = {
      {"a key and a newline", "k3y-from-a-file\n", false, "k3y-from-a-file"},
      {"a key and CRLF", "k3y\r\n", false, "k3y"},
      {"a key without a newline", "k3y", false, "k3y"},
      {"an empty file", "", false, NULL},
      {"two lines", "k3y\nmore\n", false, NULL},
      {"a missing file", NULL, false, NULL},
      {"both the file and TS_INGEST_API_KEY", "k3y\n", true, NULL},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    clear_env();
    char path[] = "/tmp/ts-key-XXXXXX";
    int fd = mkstemp(path);
    CU_ASSERT_FATAL(fd >= 0);
    close(fd);
    if (cases[i].content) {
      FILE *f = fopen(path, "wb");
      CU_ASSERT_FATAL(f != NULL);
      fputs(cases[i].content, f);
      fclose(f);
    } else {
      unlink(path);
    }
    setenv("TS_INGEST_API_KEY_FILE", path, 1);
    if (cases[i].also_env)
      setenv("TS_INGEST_API_KEY", "other", 1);
    struct config cfg;
    enum config_action action;
    char *argv[] = {"tourney-stats", NULL};
    enum ts_status st = load(&cfg, 1, argv, &action);
    if (cases[i].want)
      TS_CHECK_CASE(st == TS_OK && cfg.ingest_api_key &&
                        strcmp(cfg.ingest_api_key, cases[i].want) == 0,
                    cases[i].name, "status %s, key %s", ts_status_name(st),
                    cfg.ingest_api_key ? cfg.ingest_api_key : "(none)");
    else
      TS_CHECK_CASE(st == TS_ERR_INVALID, cases[i].name, "status %s",
                    ts_status_name(st));
    config_clear(&cfg);
    unlink(path);
  }
  clear_env();
}

static void test_help_asks_to_exit(void) {
  clear_env();
  struct config cfg;
  enum config_action action;
  char *argv[] = {"tourney-stats", "--help", NULL};
  CU_ASSERT_EQUAL(load(&cfg, 2, argv, &action), TS_OK);
  CU_ASSERT_EQUAL(action, CONFIG_EXIT);
  config_clear(&cfg);
}

/* GNU getopt keeps a pointer into a short-option cluster unless fully
 * reset; a second config_load must not continue the first one's argv. */
static void test_each_load_starts_from_its_own_argv(void) {
  clear_env();
  for (int round = 0; round < 2; round++) {
    struct config cfg;
    enum config_action action;
    char a0[] = "tourney-stats", a1[] = "-hV";
    char *argv[] = {a0, a1, NULL};
    FILE *out = tmpfile();
    FILE *sink = fopen("/dev/null", "w");
    CU_ASSERT_EQUAL(config_load(&cfg, 2, argv, out, sink, &action), TS_OK);
    CU_ASSERT_EQUAL(action, CONFIG_EXIT);
    char first[16] = {0};
    rewind(out);
    CU_ASSERT_PTR_NOT_NULL(fgets(first, sizeof first, out));
    TS_CHECK_CASE(strncmp(first, "usage:", 6) == 0, round ? "second" : "first",
                  "printed \"%s\" instead of the usage", first);
    fclose(out);
    fclose(sink);
    config_clear(&cfg);
  }
}

void suite_config(void) {
  TS_SUITE("config", TS_TEST(test_defaults_match_the_product_contract),
           TS_TEST(test_flag_wins_over_environment),
           TS_TEST(test_bad_values_are_refused),
           TS_TEST(test_thread_count_follows_the_cpus_unless_given),
           TS_TEST(test_ingest_key_comes_from_a_file),
           TS_TEST(test_help_asks_to_exit),
           TS_TEST(test_each_load_starts_from_its_own_argv));
}
