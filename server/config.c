/* Configuration from environment variables and flags. The one table below
 * is the list of settings: parsing, defaults and --help all come from it. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <sched.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/bounds.h"

enum kind { K_STR, K_PORT, K_UINT };

struct setting {
  const char *env;
  const char *flag;
  enum kind kind;
  const char *def; /* NULL: unset */
  size_t offset;
  const char *help;
  unsigned min, max; /* K_UINT's range */
};

#define OFF(field) offsetof(struct config, field)
#define STRINGIFY2(x) #x
#define STRINGIFY(x) STRINGIFY2(x)

static const struct setting settings[] = {
    {"TS_BIND", "bind", K_STR, "0.0.0.0", OFF(bind), "listen address", 0, 0},
    {"TS_PORT", "port", K_PORT, "8080", OFF(port),
     "listen port; 0 picks a free port and logs it", 0, 0},
    {"TS_STORE", "store", K_STR, "sqlite", OFF(store), "sqlite or dynamodb", 0,
     0},
    {"TS_SQLITE_PATH", "sqlite-path", K_STR, "./data/tourney-stats.db",
     OFF(sqlite_path), "embedded store file", 0, 0},
    {"TS_TABLE", "table", K_STR, "TaTourneyStats", OFF(table),
     "DynamoDB stats table", 0, 0},
    {"TS_DEAD_LETTER_TABLE", "dead-letter-table", K_STR,
     "TaTourneyStatsDeadLetters", OFF(dead_letter_table),
     "DynamoDB table for rejected records", 0, 0},
    {"TS_APPLIED_LOG_TABLE", "applied-log-table", K_STR, NULL,
     OFF(applied_log_table),
     "DynamoDB table of older applied eventIDs; unset: TS_TABLE + AppliedLog",
     0, 0},
    {"TS_INGEST_API_KEY", "ingest-api-key", K_STR, NULL, OFF(ingest_api_key),
     "when set, POST needs it in x-api-key (or as Basic password)", 0, 0},
    {"TS_INGEST_API_KEY_FILE", "ingest-api-key-file", K_STR, NULL,
     OFF(ingest_api_key_file),
     "the ingest key read from this file (not seen in the process list)", 0, 0},
    {"TS_THREADS", "threads", K_UINT, "0", OFF(threads),
     "HTTP threads; 0: one per CPU (SQLite), four per CPU and at "
     "least " STRINGIFY(TS_MIN_AUTO_THREADS_DYNAMODB) " (DynamoDB)",
     0, TS_MAX_THREADS},
    {"TS_INGEST_WORKERS", "ingest-workers", K_UINT,
     STRINGIFY(TS_DEFAULT_INGEST_WORKERS), OFF(ingest_workers),
     "batches applied at once", 1, TS_MAX_THREADS},
    {"TS_INGEST_QUEUE", "ingest-queue", K_UINT,
     STRINGIFY(TS_DEFAULT_INGEST_QUEUE), OFF(ingest_queue),
     "batches waiting for a worker; more are answered 429", 0,
     TS_MAX_INGEST_QUEUE},
    {"TS_MAX_CONNECTIONS", "max-connections", K_UINT,
     STRINGIFY(TS_DEFAULT_MAX_CONNECTIONS), OFF(max_connections),
     "HTTP connections open at once; near it, idle ones are closed first",
     TS_MIN_CONNECTIONS, TS_MAX_CONNECTIONS_LIMIT},
    {"TS_HEADER_TIMEOUT_S", "header-timeout-s", K_UINT,
     STRINGIFY(TS_DEFAULT_HEADER_TIMEOUT_S), OFF(header_timeout_s),
     "seconds from connect to a complete request header block", 1,
     TS_MAX_PHASE_TIMEOUT_S},
    {"TS_BODY_TIMEOUT_S", "body-timeout-s", K_UINT,
     STRINGIFY(TS_DEFAULT_BODY_TIMEOUT_S), OFF(body_timeout_s),
     "seconds from the header block to a complete body", 1,
     TS_MAX_PHASE_TIMEOUT_S},
    {"TS_KEEPALIVE_S", "keepalive-s", K_UINT, STRINGIFY(TS_DEFAULT_KEEPALIVE_S),
     OFF(keepalive_s),
     "seconds a kept-alive connection may wait for its next request", 1,
     TS_MAX_PHASE_TIMEOUT_S},
    {"TS_LEADERBOARD_REFRESH_S", "leaderboard-refresh-s", K_UINT, "10",
     OFF(leaderboard_refresh_s),
     "DynamoDB: seconds a leaderboard snapshot serves before it is "
     "refreshed in the background",
     1, TS_MAX_LEADERBOARD_REFRESH_S},
    {"TS_DDB_MAX_IN_FLIGHT", "ddb-max-in-flight", K_UINT,
     STRINGIFY(TS_DEFAULT_DDB_MAX_IN_FLIGHT), OFF(ddb_max_in_flight),
     "DynamoDB store: calls in flight at once, each on a connection of its "
     "own; more wait for a place",
     1, TS_MAX_DDB_MAX_IN_FLIGHT},
    {"TS_DRAIN_S", "drain-s", K_UINT, "10", OFF(drain_s),
     "on SIGTERM, seconds to let requests in flight finish", 0, TS_MAX_DRAIN_S},
    {"TS_ATTR_PLAYER", "attr-player", K_STR, "player", OFF(attr_player),
     "image attribute holding the player (S or N)", 0, 0},
    {"TS_ATTR_SCORE", "attr-score", K_STR, "score", OFF(attr_score),
     "image attribute holding the score (N)", 0, 0},
    {"TS_ATTR_WINNER", "attr-winner", K_STR, "winner", OFF(attr_winner),
     "image attribute marking a win", 0, 0},
    {"TS_LOG_LEVEL", "log-level", K_STR, "info", OFF(log_level),
     "debug, info, warn or error", 0, 0},
    {"TS_TTL_REMOVES", "ttl-removes", K_STR, "skip", OFF(ttl_removes),
     "skip or subtract a REMOVE made by DynamoDB's Time to Live", 0, 0},
    {"TS_SOURCE_TABLE", "source-table", K_STR, "TaTourney", OFF(source_table),
     "backfill/verify: the games table to read", 0, 0},
    {"TS_SCAN_SEGMENTS", "segments", K_UINT, "4", OFF(segments),
     "backfill/verify: parallel Scan segments", 1, TS_SCAN_SEGMENTS_MAX},
    {"TS_MAX_RCU", "max-rcu", K_UINT, "0", OFF(max_rcu),
     "backfill/verify: read capacity units per second at most, 0: unbounded", 0,
     1000000},
    {"TS_SETTLE_S", "settle-s", K_UINT, "60", OFF(settle_s),
     "backfill: seconds to wait for the stream to pass the Scan's end", 0,
     3600},
    {"TS_KINESIS_STREAM", "kinesis-stream", K_STR, NULL, OFF(kinesis_stream),
     "consume, or serve when set: the Kinesis stream (name or ARN) of "
     "DynamoDB change records to read",
     0, 0},
    {"TS_KINESIS_OWNER", "kinesis-owner", K_STR, NULL, OFF(kinesis_owner),
     "the consumer's lease owner id; unset: host-pid-random", 0, 0},
    {"TS_KINESIS_LEASE_MS", "kinesis-lease-ms", K_UINT,
     STRINGIFY(TS_KINESIS_LEASE_MS), OFF(kinesis_lease_ms),
     "ms a shard lease lasts unless renewed (renewed every third)",
     TS_KINESIS_MIN_LEASE_MS, TS_KINESIS_MAX_LEASE_MS},
    {"TS_KINESIS_POLL_MS", "kinesis-poll-ms", K_UINT,
     STRINGIFY(TS_KINESIS_POLL_MS), OFF(kinesis_poll_ms),
     "ms a shard rests after a read without records", 10,
     TS_KINESIS_MAX_POLL_MS},
    {"TS_KINESIS_BATCH", "kinesis-batch", K_UINT,
     STRINGIFY(TS_KINESIS_GET_RECORDS_LIMIT), OFF(kinesis_batch),
     "records one GetRecords asks for (one store batch)", 1,
     TS_KINESIS_MAX_GET_RECORDS_LIMIT},
};
#define N_SETTINGS (sizeof settings / sizeof settings[0])
_Static_assert(TS_LEADERBOARD_REFRESH_S == 10u,
               "TS_LEADERBOARD_REFRESH_S's default is written above");
_Static_assert(TS_SHUTDOWN_GRACE_MS == 10000u,
               "TS_DRAIN_S's default is TS_SHUTDOWN_GRACE_MS in seconds");

static void usage(FILE *out) {
  fprintf(out, "usage: tourney-stats [options] [serve]        run the server\n"
               "       tourney-stats [options] create-table  create the "
               "store's tables if missing, wait until usable, exit\n"
               "       tourney-stats [options] healthcheck   exit 0 when the "
               "server on --bind/--port answers GET /healthz\n"
               "       tourney-stats [options] backfill      rebuild every "
               "player's stats from --source-table, exactly, while the "
               "stream goes on\n"
               "       tourney-stats [options] verify [--json]  compare the "
               "stats with --source-table; exit 1 when any differ\n"
               "       tourney-stats [options] consume       read "
               "--kinesis-stream into the store until SIGTERM (leases "
               "shared with other consumers)\n"
               "       tourney-stats --help | --version\n\n"
               "Aggregates DynamoDB Streams game records into per-player "
               "stats and serves them over HTTP.\n"
               "Every option can also be set by its environment variable; "
               "a flag wins.\n\n");
  for (size_t i = 0; i < N_SETTINGS; i++) {
    const struct setting *s = &settings[i];
    fprintf(out, "  --%-16s %-18s %s", s->flag, s->env, s->help);
    if (s->kind == K_UINT)
      fprintf(out, ", %u..%u", s->min, s->max);
    if (s->def)
      fprintf(out, " (default %s)", s->def);
    fputc('\n', out);
  }
  fprintf(out, "  --%-16s %-18s %s\n", "help", "", "print this and exit");
  fprintf(out, "  --%-16s %-18s %s\n", "version", "", "print the version");
  fprintf(out,
          "\nAWS_REGION, AWS_ENDPOINT_URL_DYNAMODB, AWS_ENDPOINT_URL_KINESIS, "
          "AWS_ACCESS_KEY_ID, ... have their AWS SDK meaning.\n");
}

static bool parse_uint(const char *text, unsigned long max,
                       unsigned long *out) {
  if (!text || !*text)
    return false;
  for (const char *p = text; *p; p++)
    if (*p < '0' || *p > '9')
      return false;
  errno = 0;
  char *end = NULL;
  unsigned long v = strtoul(text, &end, 10);
  if (errno || *end || v > max)
    return false;
  *out = v;
  return true;
}

static enum ts_status set_value(struct config *cfg, const struct setting *s,
                                const char *value, FILE *err) {
  char *base = (char *)cfg;
  unsigned long v = 0;
  switch (s->kind) {
  case K_STR: {
    char **slot = (char **)(base + s->offset);
    char *copy = strdup(value);
    if (!copy)
      return TS_ERR_NOMEM;
    free(*slot);
    *slot = copy;
    return TS_OK;
  }
  case K_PORT:
    if (!parse_uint(value, 65535, &v)) {
      fprintf(err,
              "tourney-stats: %s / --%s must be a port 0..65535, got "
              "\"%s\"\n",
              s->env, s->flag, value);
      return TS_ERR_INVALID;
    }
    *(uint16_t *)(base + s->offset) = (uint16_t)v;
    return TS_OK;
  case K_UINT:
    if (!parse_uint(value, s->max, &v) || v < s->min) {
      fprintf(err, "tourney-stats: %s / --%s must be %u..%u, got \"%s\"\n",
              s->env, s->flag, s->min, s->max, value);
      return TS_ERR_INVALID;
    }
    *(unsigned *)(base + s->offset) = (unsigned)v;
    return TS_OK;
  }
  return TS_ERR_INVALID;
}

static enum ts_status check(const struct config *cfg, FILE *err) {
  if (strcmp(cfg->store, "sqlite") != 0 &&
      strcmp(cfg->store, "dynamodb") != 0) {
    fprintf(err,
            "tourney-stats: TS_STORE / --store must be sqlite or "
            "dynamodb, got \"%s\"\n",
            cfg->store);
    return TS_ERR_INVALID;
  }
  const char *levels[] = {"debug", "info", "warn", "error"};
  bool ok = false;
  for (size_t i = 0; i < 4; i++)
    ok = ok || strcmp(cfg->log_level, levels[i]) == 0;
  if (!ok) {
    fprintf(err,
            "tourney-stats: TS_LOG_LEVEL / --log-level must be debug, "
            "info, warn or error, got \"%s\"\n",
            cfg->log_level);
    return TS_ERR_INVALID;
  }
  if (strcmp(cfg->ttl_removes, "skip") != 0 &&
      strcmp(cfg->ttl_removes, "subtract") != 0) {
    fprintf(err,
            "tourney-stats: TS_TTL_REMOVES / --ttl-removes must be skip or "
            "subtract, got \"%s\"\n",
            cfg->ttl_removes);
    return TS_ERR_INVALID;
  }
  if (!*cfg->attr_player || !*cfg->attr_score || !*cfg->attr_winner) {
    fprintf(err, "tourney-stats: attribute names must not be empty\n");
    return TS_ERR_INVALID;
  }
  if (cfg->ingest_api_key && !*cfg->ingest_api_key) {
    free(cfg->ingest_api_key); /* an empty key means "no key" */
    ((struct config *)cfg)->ingest_api_key = NULL;
  }
  return TS_OK;
}

/* TS_INGEST_API_KEY_FILE: the key is the file's first line (a trailing
 * newline, as editors and secret mounts leave one, is not part of it). */
static enum ts_status load_key_file(struct config *cfg, FILE *err) {
  if (!cfg->ingest_api_key_file)
    return TS_OK;
  if (cfg->ingest_api_key) {
    fprintf(err, "tourney-stats: set TS_INGEST_API_KEY or "
                 "TS_INGEST_API_KEY_FILE, not both\n");
    return TS_ERR_INVALID;
  }
  FILE *f = fopen(cfg->ingest_api_key_file, "rb");
  if (!f) {
    fprintf(err, "tourney-stats: cannot read TS_INGEST_API_KEY_FILE %s: %s\n",
            cfg->ingest_api_key_file, strerror(errno));
    return TS_ERR_INVALID;
  }
  char key[TS_MAX_API_KEY_BYTES + 2];
  size_t n = fread(key, 1, sizeof key - 1, f);
  fclose(f);
  key[n] = '\0';
  while (n > 0 && (key[n - 1] == '\n' || key[n - 1] == '\r'))
    key[--n] = '\0';
  const char *why = n == 0                         ? "is empty"
                    : n > TS_MAX_API_KEY_BYTES     ? "is too long"
                    : strlen(key) != n             ? "holds a NUL byte"
                    : strpbrk(key, "\r\n") != NULL ? "holds more than one line"
                                                   : NULL;
  if (why) {
    fprintf(err, "tourney-stats: TS_INGEST_API_KEY_FILE %s %s\n",
            cfg->ingest_api_key_file, why);
    return TS_ERR_INVALID;
  }
  cfg->ingest_api_key = strdup(key);
  return cfg->ingest_api_key ? TS_OK : TS_ERR_NOMEM;
}

/* TS_THREADS=0. The HTTP threads answer reads themselves: on SQLite a read
 * is a few microseconds of CPU, so one thread per CPU is all the machine
 * can use, and more only cost context switches (and, with one listening
 * socket polled by every thread, a wake-up of each per new connection:
 * with 8 threads on 2 CPUs, Connection: close POSTs ran ~25% slower). On
 * DynamoDB a read waits a network round trip, so more threads keep the
 * CPUs busy. */
unsigned config_cpu_count(void) {
  long cpus = 0;
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0)
    cpus = CPU_COUNT(&set);
  if (cpus <= 0)
    cpus = sysconf(_SC_NPROCESSORS_ONLN);
  if (cpus <= 0)
    cpus = 1;
  if (cpus > (long)TS_MAX_THREADS / 4)
    cpus = (long)TS_MAX_THREADS / 4;
  return (unsigned)cpus;
}

static unsigned auto_threads(const struct config *cfg) {
  unsigned cpus = config_cpu_count();
  if (cfg->store && strcmp(cfg->store, "dynamodb") == 0)
    return 4u * cpus > TS_MIN_AUTO_THREADS_DYNAMODB
               ? 4u * cpus
               : TS_MIN_AUTO_THREADS_DYNAMODB;
  return cpus;
}

enum ts_status config_load(struct config *cfg, int argc, char **argv, FILE *out,
                           FILE *err, enum config_action *action) {
  enum ts_status st = TS_OK;
  struct option longopts[N_SETTINGS + 4];
  memset(cfg, 0, sizeof *cfg);
  *action = CONFIG_RUN;

  /* defaults, then the environment */
  for (size_t i = 0; i < N_SETTINGS; i++) {
    const char *v = getenv(settings[i].env);
    if (!v)
      v = settings[i].def;
    if (v && (st = set_value(cfg, &settings[i], v, err)) != TS_OK)
      return st;
  }

  /* then flags */
  for (size_t i = 0; i < N_SETTINGS; i++)
    longopts[i] = (struct option){settings[i].flag, required_argument, NULL,
                                  (int)(i + 1)};
  longopts[N_SETTINGS] = (struct option){"help", no_argument, NULL, 'h'};
  longopts[N_SETTINGS + 1] = (struct option){"version", no_argument, NULL, 'V'};
  longopts[N_SETTINGS + 2] = (struct option){"json", no_argument, NULL, 'j'};
  longopts[N_SETTINGS + 3] = (struct option){NULL, 0, NULL, 0};
  /* optind = 0 fully reinitialises GNU getopt; 1 would keep its pointer
   * into a short-option cluster of the previous call's argv. */
  optind = 0;
  opterr = 0;
  for (;;) {
    int c = getopt_long(argc, argv, "hV", longopts, NULL);
    if (c == -1)
      break;
    if (c == 'h') {
      usage(out);
      *action = CONFIG_EXIT;
      return TS_OK;
    }
    if (c == 'V') {
      fprintf(out, "tourney-stats %s\n", TS_VERSION);
      *action = CONFIG_EXIT;
      return TS_OK;
    }
    if (c == 'j') {
      cfg->json = true;
      continue;
    }
    if (c >= 1 && (size_t)c <= N_SETTINGS) {
      if ((st = set_value(cfg, &settings[c - 1], optarg, err)) != TS_OK)
        return st;
      continue;
    }
    if (optopt >= ' ' && optopt < 127) /* a short option's letter */
      fprintf(err,
              "tourney-stats: unknown or incomplete option \"-%c\" (see "
              "--help)\n",
              optopt);
    else
      fprintf(err,
              "tourney-stats: unknown or incomplete option \"%s\" (see "
              "--help)\n",
              argv[optind - 1]);
    return TS_ERR_INVALID;
  }
  if (optind < argc && strcmp(argv[optind], "create-table") == 0) {
    *action = CONFIG_CREATE_TABLE;
    optind++;
  } else if (optind < argc && strcmp(argv[optind], "healthcheck") == 0) {
    *action = CONFIG_HEALTHCHECK;
    optind++;
  } else if (optind < argc && strcmp(argv[optind], "backfill") == 0) {
    *action = CONFIG_BACKFILL;
    optind++;
  } else if (optind < argc && strcmp(argv[optind], "verify") == 0) {
    *action = CONFIG_VERIFY;
    optind++;
  } else if (optind < argc && strcmp(argv[optind], "consume") == 0) {
    *action = CONFIG_CONSUME;
    optind++;
  } else if (optind < argc && strcmp(argv[optind], "serve") == 0) {
    optind++;
  }
  if (optind < argc) {
    fprintf(err, "tourney-stats: unexpected argument \"%s\" (see --help)\n",
            argv[optind]);
    return TS_ERR_INVALID;
  }
  st = check(cfg, err);
  if (st == TS_OK && cfg->kinesis_stream && !*cfg->kinesis_stream) {
    free(cfg->kinesis_stream); /* empty: no stream */
    cfg->kinesis_stream = NULL;
  }
  if (st == TS_OK && *action == CONFIG_CONSUME && !cfg->kinesis_stream) {
    fprintf(err, "tourney-stats: consume needs TS_KINESIS_STREAM / "
                 "--kinesis-stream\n");
    st = TS_ERR_INVALID;
  }
  if (st == TS_OK && cfg->threads == 0)
    cfg->threads = auto_threads(cfg);
  return st == TS_OK ? load_key_file(cfg, err) : st;
}

void config_clear(struct config *cfg) {
  if (!cfg)
    return;
  for (size_t i = 0; i < N_SETTINGS; i++)
    if (settings[i].kind == K_STR) {
      char **slot = (char **)((char *)cfg + settings[i].offset);
      free(*slot);
      *slot = NULL;
    }
}
