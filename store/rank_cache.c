/* Top-K leaderboard snapshots (see rank_cache.h). */
#include "rank_cache.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/clock.h"
#include "../common/log.h"

/* ---- rank_set ---- */

struct entry {
  struct player_row row; /* owned */
  int64_t version;
  int64_t key; /* of this ranking */
};

struct ranking {
  struct entry *e; /* sorted, at most k */
  size_t n;
  bool has_floor; /* a row was dropped: the set is not complete */
  int64_t floor_key;
  char *floor_name; /* owned */
};

struct rank_set {
  size_t k;
  struct ranking r[STORE_RANKINGS];
};

static int64_t rank_key(const struct stats *s, enum store_rank by) {
  int64_t avg = 0, pct = 0;
  if (stats_rank_keys(s, &avg, &pct) != TS_OK)
    avg = pct = 0;
  switch (by) {
  case STORE_RANK_WINS: return s->wins;
  case STORE_RANK_GAMES: return s->games;
  case STORE_RANK_AVG_SCORE: return avg;
  case STORE_RANK_WIN_PERCENT: return pct;
  }
  return 0;
}

/* The leaderboard order: key descending, then name in byte order. */
static int order(int64_t ka, const char *na, int64_t kb, const char *nb) {
  if (ka != kb)
    return ka > kb ? -1 : 1;
  return strcmp(na, nb);
}

static int entry_cmp(const void *a, const void *b) {
  const struct entry *x = a, *y = b;
  return order(x->key, x->row.player, y->key, y->row.player);
}

/* By name, then the highest version first. */
static int by_name_cmp(const void *a, const void *b) {
  const struct rank_row *x = *(const struct rank_row *const *)a;
  const struct rank_row *y = *(const struct rank_row *const *)b;
  int c = strcmp(x->player, y->player);
  if (c != 0)
    return c;
  return x->version > y->version ? -1 : x->version < y->version ? 1 : 0;
}

static int name_key_cmp(const void *key, const void *elem) {
  return strcmp(key, (*(const struct rank_row *const *)elem)->player);
}

static void entries_free(struct entry *e, size_t n) {
  for (size_t i = 0; e && i < n; i++)
    player_row_clear(&e[i].row);
  free(e);
}

enum ts_status rank_set_new(size_t k, struct rank_set **out) {
  *out = NULL;
  if (k == 0)
    return TS_ERR_INVALID;
  struct rank_set *s = calloc(1, sizeof *s);
  if (!s)
    return TS_ERR_NOMEM;
  s->k = k;
  *out = s;
  return TS_OK;
}

void rank_set_free(struct rank_set *s) {
  if (!s)
    return;
  for (int r = 0; r < (int)STORE_RANKINGS; r++) {
    entries_free(s->r[r].e, s->r[r].n);
    free(s->r[r].floor_name);
  }
  free(s);
}

/* Folds the rows upd (sorted by name, one per player) into ranking r.
 * On an error r keeps its old rows. */
static enum ts_status fold_ranking(struct ranking *r, enum store_rank by,
                                   size_t k, const struct rank_row **upd,
                                   size_t m) {
  enum ts_status st = TS_ERR_NOMEM;
  bool *stale = calloc(m ? m : 1, sizeof *stale); /* older than the row held */
  bool *taken = calloc(m ? m : 1, sizeof *taken); /* candidate moved to out */
  /* per row held: 0 kept so far, 1 replaced by a newer row, 2 moved to out */
  unsigned char *held = calloc(r->n ? r->n : 1, sizeof *held);
  struct entry *cand = calloc(m ? m : 1, sizeof *cand);
  struct entry *out = calloc(k, sizeof *out);
  size_t nc = 0, no = 0;
  if (!stale || !taken || !held || !cand || !out)
    goto out;
  for (size_t i = 0; i < r->n; i++) {
    const struct rank_row **u =
        bsearch(r->e[i].row.player, upd, m, sizeof *upd, name_key_cmp);
    if (!u)
      continue;
    if ((*u)->version <= r->e[i].version)
      stale[u - upd] = true;
    else
      held[i] = 1;
  }
  for (size_t j = 0; j < m; j++) {
    const struct rank_row *u = upd[j];
    if (stale[j] || u->stats.games <= 0)
      continue;
    int64_t key = rank_key(&u->stats, by);
    /* Players not held sort after the floor: one that lands there now
     * may have others above it that this set never saw. */
    if (r->has_floor && order(key, u->player, r->floor_key, r->floor_name) >= 0)
      continue;
    struct entry *c = &cand[nc];
    c->row.player = strdup(u->player);
    if (!c->row.player)
      goto out;
    c->row.stats = u->stats;
    snprintf(c->row.updated_at, sizeof c->row.updated_at, "%s",
             u->updated_at ? u->updated_at : "");
    c->version = u->version;
    c->key = key;
    nc++;
  }
  qsort(cand, nc, sizeof *cand, entry_cmp);

  /* Merge the rows held with the candidates; past k, the first row
   * dropped is the new floor (it sorts before the old one). */
  const struct entry *dropped = NULL;
  size_t i = 0, j = 0;
  while (!dropped && (i < r->n || j < nc)) {
    if (i < r->n && held[i] == 1) {
      i++;
      continue;
    }
    bool old = j == nc || (i < r->n && entry_cmp(&r->e[i], &cand[j]) < 0);
    const struct entry *next = old ? &r->e[i] : &cand[j];
    if (no == k) {
      dropped = next;
      break;
    }
    out[no++] = *next;
    if (old)
      held[i++] = 2;
    else
      taken[j++] = true;
  }
  if (dropped) {
    char *name = strdup(dropped->row.player);
    if (!name)
      goto out;
    free(r->floor_name);
    r->floor_name = name;
    r->floor_key = dropped->key;
    r->has_floor = true;
  }
  /* Commit: rows moved to out belong to it now; the others go. */
  for (size_t x = 0; x < r->n; x++)
    if (held[x] != 2)
      player_row_clear(&r->e[x].row);
  for (size_t x = 0; x < nc; x++)
    if (taken[x])
      cand[x].row.player = NULL;
  free(r->e);
  r->e = out;
  r->n = no;
  out = NULL;
  st = TS_OK;
out:
  entries_free(cand, nc);
  free(out); /* on an error its rows still belong to r->e or cand */
  free(stale);
  free(taken);
  free(held);
  return st;
}

enum ts_status rank_set_fold(struct rank_set *s, const struct rank_row *rows,
                             size_t n) {
  if (n == 0)
    return TS_OK;
  const struct rank_row **upd = malloc(n * sizeof *upd);
  if (!upd)
    return TS_ERR_NOMEM;
  for (size_t i = 0; i < n; i++)
    upd[i] = &rows[i];
  qsort(upd, n, sizeof *upd, by_name_cmp);
  size_t m = 0; /* keep each player's newest row */
  for (size_t i = 0; i < n; i++)
    if (m == 0 || strcmp(upd[m - 1]->player, upd[i]->player) != 0)
      upd[m++] = upd[i];
  enum ts_status st = TS_OK;
  for (int r = 0; r < (int)STORE_RANKINGS && st == TS_OK; r++)
    st = fold_ranking(&s->r[r], (enum store_rank)r, s->k, upd, m);
  free(upd);
  return st;
}

size_t rank_set_known(const struct rank_set *s, enum store_rank by) {
  const struct ranking *r = &s->r[by];
  return r->has_floor ? r->n : SIZE_MAX;
}

enum ts_status rank_set_top(const struct rank_set *s, enum store_rank by,
                            size_t limit, struct player_row **rows, size_t *n) {
  const struct ranking *r = &s->r[by];
  size_t keep = r->n < limit ? r->n : limit;
  *n = 0;
  *rows = calloc(keep ? keep : 1, sizeof **rows);
  if (!*rows)
    return TS_ERR_NOMEM;
  for (size_t i = 0; i < keep; i++) {
    (*rows)[i] = r->e[i].row;
    (*rows)[i].player = strdup(r->e[i].row.player);
    if (!(*rows)[i].player) {
      player_rows_free(*rows, i);
      *rows = NULL;
      return TS_ERR_NOMEM;
    }
  }
  *n = keep;
  return TS_OK;
}

/* ---- rank_cache ---- */

/* A row this process wrote, kept for the next refresh's result. */
struct jrow {
  char *player; /* owned */
  struct stats stats;
  char updated_at[32];
  int64_t version;
  uint64_t at_ms; /* when it was noted */
};

struct rank_cache {
  struct rank_cache_options opt;
  pthread_mutex_t mu;
  pthread_cond_t wake; /* refresher: a refresh is wanted, or stopping */
  pthread_cond_t done; /* readers: a refresh ended (CLOCK_MONOTONIC) */
  pthread_t thread;
  bool started;
  atomic_bool stop;
  bool want;       /* a refresh was asked for */
  bool refreshing; /* a Scan runs */
  uint64_t ended;  /* refreshes ended so far */
  uint64_t last_start_ms;
  /* Writes since then (or grace_ms before the Scan in flight began), in
   * the order noted: an eventually consistent Scan may miss them. */
  struct rank_set *live; /* NULL until the first refresh */
  struct jrow *journal;
  size_t jn, jcap;
  bool journal_full;
};

static uint64_t grace_start(const struct rank_cache *c, uint64_t at_ms) {
  return at_ms > c->opt.grace_ms ? at_ms - c->opt.grace_ms : 0;
}

/* Drops the journal's rows noted before from_ms. */
static void journal_prune(struct rank_cache *c, uint64_t from_ms) {
  size_t old = 0;
  while (old < c->jn && c->journal[old].at_ms < from_ms)
    free(c->journal[old++].player);
  if (old == 0)
    return;
  memmove(c->journal, c->journal + old, (c->jn - old) * sizeof *c->journal);
  c->jn -= old;
}

static void journal_clear(struct rank_cache *c) {
  for (size_t i = 0; i < c->jn; i++)
    free(c->journal[i].player);
  free(c->journal);
  c->journal = NULL;
  c->jn = c->jcap = 0;
  c->journal_full = false;
}

/* Keeps rows (copied) for the next refresh; sets journal_full when one
 * could not be kept. */
static void journal_add(struct rank_cache *c, const struct rank_row *rows,
                        size_t n) {
  uint64_t now = clock_now_ms();
  for (size_t i = 0; i < n && !c->journal_full; i++) {
    if (c->jn == c->jcap && !c->refreshing && c->jn)
      journal_prune(c, grace_start(c, now));
    if (c->jn == c->jcap) {
      size_t cap = c->jcap ? c->jcap * 2 : 64;
      struct jrow *grown = NULL;
      if (c->jn < c->opt.journal_max)
        grown = realloc(c->journal, cap * sizeof *grown);
      if (!grown) {
        c->journal_full = true;
        break;
      }
      c->journal = grown;
      c->jcap = cap;
    }
    struct jrow *j = &c->journal[c->jn];
    j->player = strdup(rows[i].player);
    if (!j->player) {
      c->journal_full = true;
      break;
    }
    j->stats = rows[i].stats;
    snprintf(j->updated_at, sizeof j->updated_at, "%s",
             rows[i].updated_at ? rows[i].updated_at : "");
    j->version = rows[i].version;
    j->at_ms = now;
    c->jn++;
  }
}

/* Makes next (consumed) the live set, after folding in what this process
 * wrote while its Scan ran or shortly before: the Scan may have read a
 * player before the write, or (eventually consistent) an older item. With
 * the journal incomplete the old set, which has every write, stays (unless
 * there is none). Called with the lock held. */
static enum ts_status install(struct rank_cache *c, struct rank_set *next) {
  enum ts_status st = TS_OK;
  struct rank_row *rows = NULL;
  if (c->journal_full && c->live) {
    st = TS_ERR_RETRY;
    goto out;
  }
  if (c->jn) {
    rows = calloc(c->jn, sizeof *rows);
    if (!rows) {
      st = TS_ERR_NOMEM;
      goto out;
    }
    for (size_t i = 0; i < c->jn; i++)
      rows[i] =
          (struct rank_row){c->journal[i].player, c->journal[i].stats,
                            c->journal[i].updated_at, c->journal[i].version};
    if ((st = rank_set_fold(next, rows, c->jn)) != TS_OK)
      goto out;
  }
  rank_set_free(c->live);
  c->live = next;
  next = NULL;
out:
  free(rows);
  rank_set_free(next);
  return st;
}

static void *refresher_main(void *arg) {
  struct rank_cache *c = arg;
  pthread_mutex_lock(&c->mu);
  for (;;) {
    while (!atomic_load(&c->stop) && !c->want)
      pthread_cond_wait(&c->wake, &c->mu);
    if (atomic_load(&c->stop))
      break;
    c->want = false;
    c->refreshing = true;
    c->last_start_ms = clock_now_ms();
    uint64_t started = c->last_start_ms;
    journal_prune(c, grace_start(c, started));
    c->journal_full = false;
    pthread_mutex_unlock(&c->mu);

    struct rank_set *next = NULL;
    enum ts_status st = rank_set_new(c->opt.k, &next);
    if (st == TS_OK)
      st = c->opt.scan(c->opt.scan_cls, next, &c->stop);

    pthread_mutex_lock(&c->mu);
    if (st == TS_OK)
      st = install(c, next);
    else
      rank_set_free(next);
    if (st != TS_OK)
      log_event(LOG_WARN, "leaderboard refresh failed", "{s:s, s:I}", "status",
                ts_status_name(st), "ms",
                (json_int_t)(clock_now_ms() - started));
    else
      log_event(LOG_DEBUG, "leaderboard refreshed", "{s:I}", "ms",
                (json_int_t)(clock_now_ms() - started));
    c->refreshing = false;
    c->ended++;
    pthread_cond_broadcast(&c->done);
  }
  pthread_mutex_unlock(&c->mu);
  return NULL;
}

enum ts_status rank_cache_new(const struct rank_cache_options *opt,
                              struct rank_cache **out) {
  *out = NULL;
  if (opt->k == 0 || !opt->scan)
    return TS_ERR_INVALID;
  struct rank_cache *c = calloc(1, sizeof *c);
  if (!c)
    return TS_ERR_NOMEM;
  c->opt = *opt;
  atomic_init(&c->stop, false);
  bool ok = pthread_mutex_init(&c->mu, NULL) == 0;
  bool wake_ok = ok && pthread_cond_init(&c->wake, NULL) == 0;
  bool done_ok = wake_ok && clock_cond_init(&c->done);
  if (!done_ok) {
    if (wake_ok)
      pthread_cond_destroy(&c->wake);
    if (ok)
      pthread_mutex_destroy(&c->mu);
    free(c);
    return TS_ERR_NOMEM;
  }
  *out = c;
  return TS_OK;
}

void rank_cache_free(struct rank_cache *c) {
  if (!c)
    return;
  pthread_mutex_lock(&c->mu);
  atomic_store(&c->stop, true);
  pthread_cond_broadcast(&c->wake);
  pthread_cond_broadcast(&c->done);
  pthread_mutex_unlock(&c->mu);
  if (c->started)
    pthread_join(c->thread, NULL);
  pthread_cond_destroy(&c->done);
  pthread_cond_destroy(&c->wake);
  pthread_mutex_destroy(&c->mu);
  rank_set_free(c->live);
  journal_clear(c);
  free(c);
}

/* Asks the refresher for one refresh unless one is asked for or running.
 * Called with the lock held. */
static void ask_refresh(struct rank_cache *c) {
  if (c->want || c->refreshing)
    return;
  c->want = true;
  pthread_cond_signal(&c->wake);
}

enum ts_status rank_cache_top(struct rank_cache *c, enum store_rank by,
                              size_t limit, struct player_row **rows,
                              size_t *n) {
  *rows = NULL;
  *n = 0;
  enum ts_status st = TS_OK;
  pthread_mutex_lock(&c->mu);
  if (!c->started) {
    if (pthread_create(&c->thread, NULL, refresher_main, c) != 0) {
      st = TS_ERR_NOMEM;
      goto out;
    }
    c->started = true;
  }
  uint64_t now = clock_now_ms();
  if (c->live && rank_set_known(c->live, by) >= limit) {
    if (now - c->last_start_ms >= c->opt.refresh_ms)
      ask_refresh(c);
    st = rank_set_top(c->live, by, limit, rows, n);
    goto out;
  }
  /* No snapshot, or it no longer knows `limit` positions: wait for the
   * next refresh to end, up to wait_ms. */
  ask_refresh(c);
  uint64_t ended = c->ended, deadline = now + c->opt.wait_ms;
  struct timespec ts = {.tv_sec = (time_t)(deadline / 1000u),
                        .tv_nsec = (long)(deadline % 1000u) * 1000000L};
  while (!atomic_load(&c->stop) && c->ended == ended &&
         !(c->live && rank_set_known(c->live, by) >= limit))
    if (pthread_cond_timedwait(&c->done, &c->mu, &ts) == ETIMEDOUT)
      break;
  /* What is known exactly, possibly fewer rows than asked. */
  st = c->live ? rank_set_top(c->live, by, limit, rows, n) : TS_ERR_UNAVAILABLE;
  if (c->live && *n < limit && rank_set_known(c->live, by) != SIZE_MAX)
    log_event(LOG_WARN, "leaderboard answered with the rows known exactly",
              "{s:I, s:I}", "limit", (json_int_t)limit, "rows", (json_int_t)*n);
out:
  pthread_mutex_unlock(&c->mu);
  return st;
}

enum ts_status rank_cache_note(struct rank_cache *c,
                               const struct rank_row *rows, size_t n) {
  enum ts_status st = TS_OK;
  pthread_mutex_lock(&c->mu);
  if (c->live && (st = rank_set_fold(c->live, rows, n)) != TS_OK) {
    /* Half folded, it could show a player above where it now is: drop
     * it, the next request waits for a refresh. */
    rank_set_free(c->live);
    c->live = NULL;
  }
  if (c->started)
    journal_add(c, rows, n);
  pthread_mutex_unlock(&c->mu);
  return st;
}
