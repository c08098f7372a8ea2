/* Backend side of the store interface: the vtable a backend fills in and
 * the transaction runner every backend's work goes through. Not for
 * callers outside store/. */
#ifndef TS_STORE_IMPL_H
#define TS_STORE_IMPL_H

#include <stdint.h>

#include "../common/clock.h"
#include "../domain/decide.h"
#include "store.h"

struct store_ops {
  const char *name;
  /* deadline_ms: answer by then at the latest (the backend's own apply
   * deadline may end it sooner). */
  enum ts_status (*apply)(void *impl, struct batch *b, uint64_t deadline_ms);
  /* store_apply_async; NULL where the backend has none. */
  enum ts_status (*apply_async)(void *impl, struct batch *b,
                                uint64_t deadline_ms, store_done_fn done,
                                void *cls);
  /* store_expect_write; NULL where it means nothing. */
  void (*expect_write)(void *impl);
  enum ts_status (*get_player)(void *impl, const char *player,
                               struct player_row *out);
  enum ts_status (*list_players)(void *impl, const char *after, size_t limit,
                                 struct player_row **rows, size_t *n,
                                 bool *more);
  enum ts_status (*leaderboard)(void *impl, enum store_rank by, size_t limit,
                                struct player_row **rows, size_t *n);
  enum ts_status (*list_dead_letters)(void *impl, const char *after,
                                      const char *reason, size_t limit,
                                      struct dead_letter **rows, size_t *n,
                                      char **next);
  enum ts_status (*get_dead_letters)(void *impl, const char *const *ids,
                                     size_t n_ids, struct dead_letter **rows,
                                     size_t *n);
  enum ts_status (*delete_dead_letters)(void *impl, const char *const *ids,
                                        size_t n_ids);
  enum ts_status (*session_open)(void *impl, const char *id);
  enum ts_status (*session_close)(void *impl, const char *id);
  enum ts_status (*session_settle)(void *impl, const char *player,
                                   const struct stats *base,
                                   const char *session, bool *changed);
  enum ts_status (*lease_get)(void *impl, const char *stream, const char *shard,
                              struct shard_lease *out);
  enum ts_status (*lease_put)(void *impl, const char *stream, const char *shard,
                              const struct shard_lease *next, uint64_t expected,
                              bool *written);
  enum ts_status (*ping)(void *impl);
  void (*close)(void *impl);
};

/* One unit of store work. Returns TS_ERR_RETRY for a soft failure
 * (SQLITE_BUSY, throttling, a failed condition): the runner undoes the
 * attempt through `rollback` (may be NULL) and tries again. */
typedef enum ts_status (*store_tx_fn)(void *cls);

/* Runs fn until it returns something other than TS_ERR_RETRY, at most
 * TS_TX_MAX_ATTEMPTS times and until deadline_ms (monotonic, from
 * clock_now_ms()) passes, sleeping with exponential backoff and full jitter
 * between attempts. A retry budget exhausted gives TS_ERR_UNAVAILABLE.
 * `name` is for logs. */
enum ts_status store_run_tx(const char *name, store_tx_fn fn, void *cls,
                            void (*rollback)(void *cls),
                            uint64_t deadline_ms) TS_WARN_UNUSED;

/* Backend constructors. */
enum ts_status store_sqlite_open(const struct store_options *opt, void **impl,
                                 const struct store_ops **ops) TS_WARN_UNUSED;
enum ts_status store_dynamodb_open(const struct store_options *opt, void **impl,
                                   const struct store_ops **ops) TS_WARN_UNUSED;
enum ts_status
store_dynamodb_create_tables(const struct store_options *opt) TS_WARN_UNUSED;

/* Counts one store_lost_write_count. */
void store_note_lost_write(void);
/* Counts one store_turn_wait_count. */
void store_note_turn_wait(void);
/* Counts one store_early_transaction_counts. */
void store_note_early_transaction(bool with_batch);

#endif /* TS_STORE_IMPL_H */
