/* `tourney-stats backfill` and `tourney-stats verify`: rebuilding and
 * checking every player's stats from the source table (README "Backfill
 * and verify"; the design in domain/backfill.h). */
#ifndef TS_OPS_BACKFILL_H
#define TS_OPS_BACKFILL_H

#include <stdbool.h>
#include <stdio.h>

#include "../domain/batch.h"
#include "../store/store.h"

struct ops_options {
  const char *source_table;
  unsigned segments;
  unsigned max_rcu;  /* 0: unbounded */
  unsigned settle_s; /* backfill: wait for the stream past the Scan's end */
  bool json;         /* verify: JSON on out instead of a table */
  bool remote_store; /* other processes may write the store (DynamoDB):
                        wait until they all track the session */
  struct batch_options batch; /* how items are decoded, as ingestion does */
};

/* Exit codes of both commands. */
enum ops_exit {
  OPS_EXIT_OK = 0,
  OPS_EXIT_DIFFER = 1, /* verify: some player differs */
  OPS_EXIT_FAILED = 3, /* could not finish (source, store, or overflow) */
};

/* Progress and the summary go to err. */
int ops_backfill(struct store *s, const struct ops_options *o, FILE *err);
/* The report goes to out (a table, or JSON with o->json), progress to
 * err. */
int ops_verify(struct store *s, const struct ops_options *o, FILE *out,
               FILE *err);

#endif /* TS_OPS_BACKFILL_H */
