/* The store interface: picks a backend by kind and dispatches through its
 * struct store_ops; plus the transaction runner and clocks every backend
 * shares. */
#include "store.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "../common/backoff.h"
#include "../common/bounds.h"
#include "../common/log.h"
#include "guess.h"
#include "store_impl.h"
#include "store_test.h"

struct store {
  const struct store_ops *ops;
  void *impl;
};

typedef enum ts_status (*backend_open_fn)(const struct store_options *opt,
                                          void **impl,
                                          const struct store_ops **ops);

static enum ts_status sqlite_create(const struct store_options *opt) {
  void *impl = NULL;
  const struct store_ops *ops = NULL;
  enum ts_status st = store_sqlite_open(opt, &impl, &ops);
  if (st == TS_OK)
    ops->close(impl);
  return st;
}

/* Known kinds. */
static const struct {
  const char *kind;
  backend_open_fn open;
  enum ts_status (*create)(const struct store_options *opt);
} backends[] = {
    {"sqlite", store_sqlite_open, sqlite_create},
    {"dynamodb", store_dynamodb_open, store_dynamodb_create_tables},
};

enum ts_status store_create_tables(const struct store_options *opt) {
  for (size_t i = 0;
       opt && opt->kind && i < sizeof backends / sizeof backends[0]; i++)
    if (strcmp(backends[i].kind, opt->kind) == 0)
      return backends[i].create(opt);
  return TS_ERR_INVALID;
}

enum ts_status store_open(const struct store_options *opt, struct store **out) {
  *out = NULL;
  if (!opt || !opt->kind)
    return TS_ERR_INVALID;
  backend_open_fn open = NULL;
  for (size_t i = 0; i < sizeof backends / sizeof backends[0]; i++)
    if (strcmp(backends[i].kind, opt->kind) == 0)
      open = backends[i].open;
  if (!open)
    return TS_ERR_INVALID;

  struct store *s = calloc(1, sizeof *s);
  if (!s)
    return TS_ERR_NOMEM;
  enum ts_status st = open(opt, &s->impl, &s->ops);
  if (st != TS_OK) {
    free(s);
    return st;
  }
  *out = s;
  return TS_OK;
}

void store_free(struct store *s) {
  if (!s)
    return;
  s->ops->close(s->impl);
  free(s);
}

enum ts_status store_apply(struct store *s, struct batch *b) {
  return s->ops->apply(s->impl, b, UINT64_MAX);
}

enum ts_status store_apply_by(struct store *s, struct batch *b,
                              uint64_t deadline_ms) {
  return s->ops->apply(s->impl, b, deadline_ms);
}

bool store_can_apply_async(const struct store *s) {
  return s->ops->apply_async != NULL;
}

enum ts_status store_apply_async(struct store *s, struct batch *b,
                                 uint64_t deadline_ms, store_done_fn done,
                                 void *cls) {
  if (!s->ops->apply_async)
    return TS_ERR_INVALID;
  return s->ops->apply_async(s->impl, b, deadline_ms, done, cls);
}

void store_expect_write(struct store *s) {
  if (s->ops->expect_write)
    s->ops->expect_write(s->impl);
}

enum ts_status store_get_player(struct store *s, const char *player,
                                struct player_row *out) {
  memset(out, 0, sizeof *out);
  return s->ops->get_player(s->impl, player, out);
}

enum ts_status store_list_players(struct store *s, const char *after,
                                  size_t limit, struct player_row **rows,
                                  size_t *n, bool *more) {
  *rows = NULL;
  *n = 0;
  *more = false;
  return s->ops->list_players(s->impl, after, limit, rows, n, more);
}

enum ts_status store_session_open(struct store *s, const char *id) {
  if (!id || !*id || strlen(id) > 64)
    return TS_ERR_INVALID;
  return s->ops->session_open(s->impl, id);
}

enum ts_status store_session_close(struct store *s, const char *id) {
  if (!id || !*id)
    return TS_ERR_INVALID;
  return s->ops->session_close(s->impl, id);
}

enum ts_status store_session_settle(struct store *s, const char *player,
                                    const struct stats *base,
                                    const char *session, bool *changed) {
  *changed = false;
  return s->ops->session_settle(s->impl, player, base, session, changed);
}

enum ts_status store_leaderboard(struct store *s, enum store_rank by,
                                 size_t limit, struct player_row **rows,
                                 size_t *n) {
  *rows = NULL;
  *n = 0;
  if ((unsigned)by >= STORE_RANKINGS)
    return TS_ERR_INVALID;
  return s->ops->leaderboard(s->impl, by, limit, rows, n);
}

enum ts_status store_list_dead_letters(struct store *s, const char *after,
                                       const char *reason, size_t limit,
                                       struct dead_letter **rows, size_t *n,
                                       char **next) {
  *rows = NULL;
  *n = 0;
  *next = NULL;
  if (limit == 0)
    return TS_ERR_INVALID;
  return s->ops->list_dead_letters(s->impl, after, reason, limit, rows, n,
                                   next);
}

enum ts_status store_get_dead_letters(struct store *s, const char *const *ids,
                                      size_t n_ids, struct dead_letter **rows,
                                      size_t *n) {
  *rows = NULL;
  *n = 0;
  if (n_ids == 0)
    return TS_OK;
  return s->ops->get_dead_letters(s->impl, ids, n_ids, rows, n);
}

enum ts_status store_delete_dead_letters(struct store *s,
                                         const char *const *ids, size_t n_ids) {
  if (n_ids == 0)
    return TS_OK;
  return s->ops->delete_dead_letters(s->impl, ids, n_ids);
}

/* Stream and shard names are parts of a key ("#kinesis#<stream>#<shard>"
 * on DynamoDB): bounded, non-empty, without '#'. */
static bool lease_key_ok(const char *stream, const char *shard) {
  return stream && shard && *stream && *shard &&
         strlen(stream) < TS_KINESIS_ID_BYTES &&
         strlen(shard) < TS_KINESIS_ID_BYTES && !strchr(stream, '#') &&
         !strchr(shard, '#');
}

enum ts_status store_lease_get(struct store *s, const char *stream,
                               const char *shard, struct shard_lease *out) {
  memset(out, 0, sizeof *out);
  if (!lease_key_ok(stream, shard))
    return TS_ERR_INVALID;
  return s->ops->lease_get(s->impl, stream, shard, out);
}

enum ts_status store_lease_put(struct store *s, const char *stream,
                               const char *shard,
                               const struct shard_lease *next,
                               uint64_t expected, bool *written) {
  *written = false;
  if (!lease_key_ok(stream, shard) || next->version != expected + 1)
    return TS_ERR_INVALID;
  return s->ops->lease_put(s->impl, stream, shard, next, expected, written);
}

enum ts_status store_ping(struct store *s) { return s->ops->ping(s->impl); }

void *store_test_impl(struct store *s, const struct store_ops **ops) {
  *ops = s->ops;
  return s->impl;
}

void player_row_clear(struct player_row *row) {
  if (!row)
    return;
  free(row->player);
  free(row->session_state);
  memset(row, 0, sizeof *row);
}

void dead_letter_clear(struct dead_letter *d) {
  if (!d)
    return;
  free(d->id);
  free(d->event_id);
  free(d->item_identifier);
  free(d->reason);
  free(d->record);
  memset(d, 0, sizeof *d);
}

void dead_letters_free(struct dead_letter *rows, size_t n) {
  if (!rows)
    return;
  for (size_t i = 0; i < n; i++)
    dead_letter_clear(&rows[i]);
  free(rows);
}

void player_rows_free(struct player_row *rows, size_t n) {
  if (!rows)
    return;
  for (size_t i = 0; i < n; i++)
    player_row_clear(&rows[i]);
  free(rows);
}

/* ---- transaction runner ---- */

enum ts_status store_run_tx(const char *name, store_tx_fn fn, void *cls,
                            void (*rollback)(void *cls), uint64_t deadline_ms) {

  for (unsigned attempt = 1;; attempt++) {
    enum ts_status st = fn(cls);
    if (st != TS_ERR_RETRY)
      return st;
    if (rollback)
      rollback(cls);
    uint64_t now = clock_now_ms();
    if (attempt >= TS_TX_MAX_ATTEMPTS || now >= deadline_ms) {
      log_event(LOG_WARN, "store transaction gave up", "{s:s, s:i}", "tx", name,
                "attempts", (int)attempt);
      return TS_ERR_UNAVAILABLE;
    }
    /* Full jitter, never past the deadline. */
    uint64_t pause =
        backoff_pause_ms(TS_TX_BACKOFF_BASE_MS, TS_TX_BACKOFF_CAP_MS, attempt);
    if (pause > deadline_ms - now)
      pause = deadline_ms - now;
    clock_sleep_ms((uint32_t)pause);
  }
}

void store_write_guess_counts(uint64_t *held, uint64_t *failed) {
  guess_counts(held, failed);
}

void store_new_player_guess_counts(uint64_t *held, uint64_t *failed) {
  guess_new_counts(held, failed);
}

static atomic_uint_fast64_t lost_writes;

void store_note_lost_write(void) { atomic_fetch_add(&lost_writes, 1); }

uint64_t store_lost_write_count(void) { return atomic_load(&lost_writes); }

static atomic_uint_fast64_t turn_waits;

void store_note_turn_wait(void) { atomic_fetch_add(&turn_waits, 1); }

uint64_t store_turn_wait_count(void) { return atomic_load(&turn_waits); }

static atomic_uint_fast64_t early_with_batch, early_alone;

void store_note_early_transaction(bool with_batch) {
  atomic_fetch_add(with_batch ? &early_with_batch : &early_alone, 1);
}

void store_early_transaction_counts(uint64_t *with_batch, uint64_t *alone) {
  *with_batch = atomic_load(&early_with_batch);
  *alone = atomic_load(&early_alone);
}
