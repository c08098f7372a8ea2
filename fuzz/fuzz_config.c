/* Fuzzes server/config: config_load on an arbitrary argv. The input split
 * on NUL bytes gives argv[1..] (argv[0] is "tourney-stats"); no TS_*
 * variable is set. Output and error text go to memory streams, not to the
 * terminal.
 *
 * Invariants: the status is TS_OK or TS_ERR_INVALID; on TS_ERR_INVALID a
 * message was written; --help/--version write to `out`; an accepted
 * configuration holds the checked values (store, log level, non-empty
 * attribute names, threads 1..TS_MAX_THREADS, a NULL or non-empty key);
 * config_clear frees everything (LeakSanitizer); and config_load is a
 * function of its arguments: two calls on the same argv give the same
 * result and the same text. */
/* open_memstream needs _GNU_SOURCE, which the build defines. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/bounds.h"
#include "input.h"
#include "server/config.h"

/* More arguments than any useful command line; keeps each run short. */
#define MAX_ARGS 64

static const char *const settings_env[] = {"TS_BIND",
                                           "TS_PORT",
                                           "TS_STORE",
                                           "TS_SQLITE_PATH",
                                           "TS_TABLE",
                                           "TS_DEAD_LETTER_TABLE",
                                           "TS_INGEST_API_KEY",
                                           "TS_THREADS",
                                           "TS_ATTR_PLAYER",
                                           "TS_ATTR_SCORE",
                                           "TS_ATTR_WINNER",
                                           "TS_LOG_LEVEL",
                                           "TS_APPLIED_LOG_TABLE"};

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  for (size_t i = 0; i < sizeof settings_env / sizeof settings_env[0]; i++)
    unsetenv(settings_env[i]);
  return 0;
}

struct result {
  enum ts_status st;
  enum config_action action;
  char *out, *err; /* the text written */
  char *summary;   /* the accepted configuration, as text */
};

static void result_clear(struct result *r) {
  free(r->out);
  free(r->err);
  free(r->summary);
}

static const char *or_null(const char *s) { return s ? s : "(null)"; }

/* One call on a fresh copy of the arguments (getopt permutes argv). */
static void load(char *const *args, int argc, struct result *r) {
  char *argv[MAX_ARGS + 2];
  for (int i = 0; i < argc; i++)
    argv[i] = args[i];
  argv[argc] = NULL;
  size_t out_len = 0, err_len = 0;
  FILE *out = open_memstream(&r->out, &out_len);
  FILE *err = open_memstream(&r->err, &err_len);
  FUZZ_CHECK(out && err, "open_memstream failed");
  struct config cfg;
  r->st = config_load(&cfg, argc, argv, out, err, &r->action);
  fclose(out);
  fclose(err);
  r->summary = NULL;
  FUZZ_CHECK(r->st == TS_OK || r->st == TS_ERR_INVALID,
             "config_load returned %s", ts_status_name(r->st));
  if (r->st == TS_ERR_INVALID)
    FUZZ_CHECK(err_len > 0, "an invalid configuration without a message");
  if (r->st == TS_OK && r->action == CONFIG_EXIT)
    FUZZ_CHECK(out_len > 0, "--help or --version printed nothing");
  if (r->st == TS_OK && r->action != CONFIG_EXIT) {
    FUZZ_CHECK(cfg.bind && cfg.store && cfg.sqlite_path && cfg.table &&
                   cfg.dead_letter_table && cfg.attr_player && cfg.attr_score &&
                   cfg.attr_winner && cfg.log_level,
               "an accepted configuration with an unset string");
    FUZZ_CHECK(strcmp(cfg.store, "sqlite") == 0 ||
                   strcmp(cfg.store, "dynamodb") == 0,
               "store \"%s\" accepted", cfg.store);
    FUZZ_CHECK(strcmp(cfg.log_level, "debug") == 0 ||
                   strcmp(cfg.log_level, "info") == 0 ||
                   strcmp(cfg.log_level, "warn") == 0 ||
                   strcmp(cfg.log_level, "error") == 0,
               "log level \"%s\" accepted", cfg.log_level);
    FUZZ_CHECK(*cfg.attr_player && *cfg.attr_score && *cfg.attr_winner,
               "an empty attribute name accepted");
    FUZZ_CHECK(cfg.threads >= 1 && cfg.threads <= TS_MAX_THREADS,
               "threads %u accepted", cfg.threads);
    FUZZ_CHECK(!cfg.ingest_api_key || *cfg.ingest_api_key,
               "an empty ingest key kept");
    size_t len = 0;
    FILE *s = open_memstream(&r->summary, &len);
    FUZZ_CHECK(s, "open_memstream failed");
    fprintf(s, "%s|%u|%s|%s|%s|%s|%s|%u|%s|%s|%s|%s|%d", cfg.bind,
            (unsigned)cfg.port, cfg.store, cfg.sqlite_path, cfg.table,
            cfg.dead_letter_table, or_null(cfg.ingest_api_key), cfg.threads,
            cfg.attr_player, cfg.attr_score, cfg.attr_winner, cfg.log_level,
            (int)r->action);
    fclose(s);
  }
  config_clear(&cfg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct input in = {data, size};
  char *args[MAX_ARGS + 1];
  int argc = 0;
  args[argc++] = strdup("tourney-stats");
  while (!input_empty(&in) && argc < MAX_ARGS + 1)
    args[argc++] = input_take_cstr(&in, NULL);

  struct result a, b;
  load(args, argc, &a);
  load(args, argc, &b);
  FUZZ_CHECK(a.st == b.st && a.action == b.action,
             "config_load gave %s/%d, then %s/%d on the same argv",
             ts_status_name(a.st), (int)a.action, ts_status_name(b.st),
             (int)b.action);
  FUZZ_CHECK(strcmp(a.out, b.out) == 0 && strcmp(a.err, b.err) == 0,
             "config_load wrote different text on the same argv:\n"
             "first: %s%s\nsecond: %s%s",
             a.out, a.err, b.out, b.err);
  FUZZ_CHECK((a.summary == NULL) == (b.summary == NULL) &&
                 (!a.summary || strcmp(a.summary, b.summary) == 0),
             "config_load gave different configurations on the same argv");
  result_clear(&a);
  result_clear(&b);
  for (int i = 0; i < argc; i++)
    free(args[i]);
  return 0;
}
