/* Configuration: environment variables, each with a matching flag; a flag
 * wins over its variable. `tourney-stats --help` lists them all. */
#ifndef TS_SERVER_CONFIG_H
#define TS_SERVER_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "../common/status.h"

struct config {
  char *bind;              /* TS_BIND, --bind */
  uint16_t port;           /* TS_PORT, --port; 0 picks a free port */
  char *store;             /* TS_STORE, --store: sqlite | dynamodb */
  char *sqlite_path;       /* TS_SQLITE_PATH, --sqlite-path */
  char *table;             /* TS_TABLE, --table */
  char *dead_letter_table; /* TS_DEAD_LETTER_TABLE, --dead-letter-table */
  char *applied_log_table; /* TS_APPLIED_LOG_TABLE, NULL: derived */
  char *ingest_api_key;    /* TS_INGEST_API_KEY, --ingest-api-key; NULL: open */
  char *ingest_api_key_file; /* TS_INGEST_API_KEY_FILE: the key, from a file */
  unsigned threads;          /* TS_THREADS, --threads */
  unsigned drain_s;          /* TS_DRAIN_S, --drain-s: the drain on SIGTERM */
  unsigned ingest_workers;   /* TS_INGEST_WORKERS: batches applied at once */
  unsigned ingest_queue;     /* TS_INGEST_QUEUE: batches waiting beyond */
  unsigned max_connections;  /* TS_MAX_CONNECTIONS */
  unsigned header_timeout_s; /* TS_HEADER_TIMEOUT_S: connect -> headers */
  unsigned body_timeout_s;   /* TS_BODY_TIMEOUT_S: headers -> body */
  unsigned keepalive_s;      /* TS_KEEPALIVE_S: answer -> next headers */
  unsigned leaderboard_refresh_s; /* TS_LEADERBOARD_REFRESH_S: snapshot age */
  unsigned ddb_max_in_flight;     /* TS_DDB_MAX_IN_FLIGHT: DynamoDB calls */
  char *attr_player;              /* TS_ATTR_PLAYER, --attr-player */
  char *attr_score;               /* TS_ATTR_SCORE, --attr-score */
  char *attr_winner;              /* TS_ATTR_WINNER, --attr-winner */
  char *log_level;      /* TS_LOG_LEVEL, --log-level: debug|info|warn|error */
  char *ttl_removes;    /* TS_TTL_REMOVES, --ttl-removes: skip|subtract */
  char *source_table;   /* TS_SOURCE_TABLE, --source-table (backfill, verify) */
  unsigned segments;    /* TS_SCAN_SEGMENTS, --segments */
  unsigned max_rcu;     /* TS_MAX_RCU, --max-rcu; 0: unbounded */
  unsigned settle_s;    /* TS_SETTLE_S, --settle-s */
  bool json;            /* --json (verify) */
  char *kinesis_stream; /* TS_KINESIS_STREAM, --kinesis-stream: name or ARN */
  char *kinesis_owner;  /* TS_KINESIS_OWNER: lease owner id; NULL: made */
  unsigned kinesis_lease_ms; /* TS_KINESIS_LEASE_MS */
  unsigned kinesis_poll_ms;  /* TS_KINESIS_POLL_MS */
  unsigned kinesis_batch;    /* TS_KINESIS_BATCH: GetRecords Limit */
};

enum config_action {
  CONFIG_RUN,          /* start the server */
  CONFIG_CREATE_TABLE, /* `create-table`: create the store's tables, exit */
  CONFIG_HEALTHCHECK,  /* `healthcheck`: exit 0 when the server answers */
  CONFIG_BACKFILL,     /* `backfill`: rebuild stats from the source table */
  CONFIG_VERIFY,       /* `verify`: compare stats with the source table */
  CONFIG_CONSUME,      /* `consume`: read TS_KINESIS_STREAM until SIGTERM */
  CONFIG_EXIT,         /* --help or --version was printed: exit 0 */
};

/* Fills *cfg from the environment and argv. On TS_ERR_INVALID a message
 * naming the bad setting has been written to err. The caller frees with
 * config_clear() in every case. */
enum ts_status config_load(struct config *cfg, int argc, char **argv, FILE *out,
                           FILE *err,
                           enum config_action *action) TS_WARN_UNUSED;
void config_clear(struct config *cfg);

/* The CPUs this process may run on (its affinity mask), 1..TS_MAX_THREADS/4. */
unsigned config_cpu_count(void);

#endif /* TS_SERVER_CONFIG_H */
