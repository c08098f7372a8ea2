/* suite_rank_cache: the top-K leaderboard sets (order, ties, the bound K,
 * which positions stay exact when players move) and the cache around them
 * (first refresh, read-your-writes, writes during a refresh, failures). */
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "store/rank_cache.h"
#include "unit.h"

#define NO_LIMIT 1000u

/* A row of a fixture: wins/games and the total score as text. */
struct fx {
  const char *player;
  int64_t games, wins;
  const char *total;
  int64_t version;
};

static struct rank_row row_of(const struct fx *f) {
  struct rank_row r = {f->player, {f->games, f->wins, {0, 0}}, "", f->version};
  enum ts_status st =
      decimal_parse(f->total, strlen(f->total), &r.stats.total_score);
  TS_CHECK_CASE(st == TS_OK, f->player, "fixture score %s does not parse",
                f->total);
  return r;
}

static void fold(struct rank_set *s, const struct fx *fs, size_t n) {
  struct rank_row rows[16];
  CU_ASSERT_FATAL(n <= 16);
  for (size_t i = 0; i < n; i++)
    rows[i] = row_of(&fs[i]);
  CU_ASSERT_EQUAL_FATAL(rank_set_fold(s, rows, n), TS_OK);
}

/* The names of ranking `by`, space-separated ("" when empty). */
static void names(const struct rank_set *s, enum store_rank by, char *buf,
                  size_t cap) {
  struct player_row *rows = NULL;
  size_t n = 0, used = 0;
  buf[0] = '\0';
  CU_ASSERT_EQUAL_FATAL(rank_set_top(s, by, NO_LIMIT, &rows, &n), TS_OK);
  for (size_t i = 0; i < n; i++)
    used += (size_t)snprintf(buf + used, cap - used, "%s%s", i ? " " : "",
                             rows[i].player);
  player_rows_free(rows, n);
}

static void expect(const char *case_name, const struct rank_set *s,
                   enum store_rank by, const char *want, size_t known) {
  char got[512];
  names(s, by, got, sizeof got);
  TS_CHECK_CASE(strcmp(got, want) == 0, case_name, "order \"%s\", want \"%s\"",
                got, want);
  size_t k = rank_set_known(s, by);
  TS_CHECK_CASE(k == known, case_name, "known %zu, want %zu", k, known);
}

#define ALL SIZE_MAX

static void test_each_ranking_orders_by_its_key_then_name_in_byte_order(void) {
  static const struct fx rows[] = {
      /* games wins total: avg, win% */
      {"alice", 4, 2, "40", 1}, /* 10.00, 50.00 */
      {"Bob", 2, 2, "10", 1},   /* 5.00, 100.00 */
      {"carol", 4, 1, "40", 1}, /* 10.00, 25.00 */
      {"dave", 3, 2, "10", 1},  /* 3.33, 66.67 */
      {"bob", 2, 1, "20", 1},   /* 10.00, 50.00 */
      {"idle", 0, 0, "0", 1},   /* no games: never ranked */
  };
  static const struct {
    const char *name;
    enum store_rank by;
    const char *want;
  } cases[] = {
      {"wins, ties by byte order (B < a < d)", STORE_RANK_WINS,
       "Bob alice dave bob carol"},
      {"games", STORE_RANK_GAMES, "alice carol dave Bob bob"},
      {"avg_score, three at 10.00", STORE_RANK_AVG_SCORE,
       "alice bob carol Bob dave"},
      {"win_percent", STORE_RANK_WIN_PERCENT, "Bob dave alice bob carol"},
  };
  struct rank_set *s = NULL;
  CU_ASSERT_EQUAL_FATAL(rank_set_new(10, &s), TS_OK);
  fold(s, rows, sizeof rows / sizeof rows[0]);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    expect(cases[i].name, s, cases[i].by, cases[i].want, ALL);
  rank_set_free(s);
}

static void test_k_bounds_the_rows_and_ends_completeness(void) {
  static const struct fx rows[] = {
      {"e", 5, 1, "0", 1}, {"a", 5, 5, "0", 1}, {"d", 5, 2, "0", 1},
      {"c", 5, 3, "0", 1}, {"b", 5, 4, "0", 1},
  };
  struct rank_set *s = NULL;
  CU_ASSERT_EQUAL_FATAL(rank_set_new(3, &s), TS_OK);
  fold(s, rows, 2); /* e a: fewer than K, every player seen */
  expect("two of K=3", s, STORE_RANK_WINS, "a e", ALL);
  fold(s, rows + 2, 3);
  expect("five folded into K=3", s, STORE_RANK_WINS, "a b c", 3);
  /* Folded one page at a time, as a Scan does: the same top. */
  struct rank_set *paged = NULL;
  CU_ASSERT_EQUAL_FATAL(rank_set_new(3, &paged), TS_OK);
  for (size_t i = 0; i < 5; i++)
    fold(paged, &rows[i], 1);
  expect("one row per page", paged, STORE_RANK_WINS, "a b c", 3);
  rank_set_free(paged);
  rank_set_free(s);
}

static void test_moves_keep_exactly_the_positions_still_known(void) {
  /* K=3 over a..e by wins 5..1: holds a b c, floor d (4th). Each step
   * folds one newer row into the set left by the step before. */
  static const struct fx start[] = {
      {"a", 9, 5, "0", 1}, {"b", 9, 4, "0", 1}, {"c", 9, 3, "0", 1},
      {"d", 9, 2, "0", 1}, {"e", 9, 1, "0", 1},
  };
  static const struct {
    const char *name;
    struct fx row;
    const char *want;
    size_t known;
  } steps[] = {
      {"a moves down but stays above the floor: still exact",
       {"a", 9, 3, "0", 2},
       "b a c",
       3},
      {"a moves below the floor: it leaves, one position less known",
       {"a", 9, 0, "0", 3},
       "b c",
       2},
      {"a row of b no newer than the one held changes nothing",
       {"b", 9, 9, "0", 1},
       "b c",
       2},
      {"e improves to the top: exact, inserted",
       {"e", 9, 7, "0", 2},
       "e b c",
       3},
      {"a improves past the others: inserted, c dropped, floor c",
       {"a", 9, 8, "0", 4},
       "a e b",
       3},
      {"c (dropped) improves but not past the floor: not kept",
       {"c", 9, 3, "0", 2},
       "a e b",
       3},
      {"b loses every game: 0 wins sorts after the floor, it leaves",
       {"b", 9, 0, "0", 2},
       "a e",
       2},
      {"a player with no games left is not ranked",
       {"a", 0, 0, "0", 5},
       "e",
       1},
  };
  struct rank_set *s = NULL;
  CU_ASSERT_EQUAL_FATAL(rank_set_new(3, &s), TS_OK);
  fold(s, start, 5);
  expect("start", s, STORE_RANK_WINS, "a b c", 3);
  for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
    fold(s, &steps[i].row, 1);
    expect(steps[i].name, s, STORE_RANK_WINS, steps[i].want, steps[i].known);
  }
  rank_set_free(s);
}

static void test_complete_set_stays_complete_when_players_move(void) {
  static const struct fx start[] = {
      {"a", 3, 3, "0", 1}, {"b", 3, 2, "0", 1}, {"c", 3, 1, "0", 1}};
  static const struct fx moves[] = {
      {"a", 3, 0, "0", 2}, /* to the bottom */
      {"d", 1, 1, "0", 1}, /* new */
      {"c", 0, 0, "0", 2}, /* no games: out */
  };
  struct rank_set *s = NULL;
  CU_ASSERT_EQUAL_FATAL(rank_set_new(5, &s), TS_OK);
  fold(s, start, 3);
  fold(s, moves, 3);
  expect("every player held", s, STORE_RANK_WINS, "b d a", ALL);
  rank_set_free(s);
}

static void test_newest_row_of_a_player_wins_within_one_fold(void) {
  static const struct fx rows[] = {
      {"p", 2, 2, "0", 3}, {"p", 2, 0, "0", 1}, {"q", 2, 1, "0", 1}};
  struct rank_set *s = NULL;
  CU_ASSERT_EQUAL_FATAL(rank_set_new(4, &s), TS_OK);
  fold(s, rows, 3);
  expect("version 3 of p", s, STORE_RANK_WINS, "p q", ALL);
  rank_set_free(s);
}

/* A model: the latest row of every player, folded into a small set in
 * random steps; after each step every position the set claims to know
 * must equal the true order of the model. */
#define M_PLAYERS 12
static uint64_t rng_next(uint64_t *x) {
  *x ^= *x << 13;
  *x ^= *x >> 7;
  *x ^= *x << 17;
  return *x;
}

static int model_cmp_by;
static const struct fx *model_rows;
static int fx_cmp(const void *a, const void *b) {
  const struct fx *x = &model_rows[*(const int *)a];
  const struct fx *y = &model_rows[*(const int *)b];
  struct rank_row rx = row_of(x), ry = row_of(y);
  int64_t kx = 0, ky = 0, avg = 0, pct = 0;
  for (int i = 0; i < 2; i++) {
    const struct stats *st = i ? &ry.stats : &rx.stats;
    int64_t *k = i ? &ky : &kx;
    CU_ASSERT(stats_rank_keys(st, &avg, &pct) == TS_OK);
    *k = model_cmp_by == STORE_RANK_WINS        ? st->wins
         : model_cmp_by == STORE_RANK_GAMES     ? st->games
         : model_cmp_by == STORE_RANK_AVG_SCORE ? avg
                                                : pct;
  }
  if (kx != ky)
    return kx > ky ? -1 : 1;
  return strcmp(x->player, y->player);
}

static void test_random_moves_never_show_a_wrong_position(void) {
  static const char *const who[M_PLAYERS] = {
      "p0", "p1", "p2", "p3", "p4", "p5", "p6", "p7", "p8", "p9", "pa", "pb"};
  static char totals[M_PLAYERS][16];
  struct fx model[M_PLAYERS];
  uint64_t rng = 20261203u;
  model_rows = model;
  struct rank_set *s = NULL;
  CU_ASSERT_EQUAL_FATAL(rank_set_new(4, &s), TS_OK);
  for (int p = 0; p < M_PLAYERS; p++) {
    int64_t games = (int64_t)(rng_next(&rng) % 6);
    snprintf(totals[p], sizeof totals[p], "%d", (int)(rng_next(&rng) % 50));
    model[p] = (struct fx){who[p], games,
                           games ? (int64_t)(rng_next(&rng) % (games + 1)) : 0,
                           totals[p], 1};
  }
  fold(s, model, M_PLAYERS);
  size_t shown = 0;
  for (int step = 0; step < 400; step++) {
    if (step % 25 == 24) { /* a refresh: a new set, a Scan's pages of 3 */
      rank_set_free(s);
      s = NULL;
      CU_ASSERT_EQUAL_FATAL(rank_set_new(4, &s), TS_OK);
      for (int p = 0; p < M_PLAYERS; p += 3)
        fold(s, &model[p], 3);
    }
    int p = (int)(rng_next(&rng) % M_PLAYERS);
    int64_t games = (int64_t)(rng_next(&rng) % 6);
    snprintf(totals[p], sizeof totals[p], "%d", (int)(rng_next(&rng) % 50));
    model[p].games = games;
    model[p].wins = games ? (int64_t)(rng_next(&rng) % (games + 1)) : 0;
    model[p].version++;
    fold(s, &model[p], 1);
    for (int by = 0; by < 4; by++) {
      int order[M_PLAYERS], n = 0;
      for (int q = 0; q < M_PLAYERS; q++)
        if (model[q].games > 0)
          order[n++] = q;
      model_cmp_by = by;
      qsort(order, (size_t)n, sizeof order[0], fx_cmp);
      struct player_row *rows = NULL;
      size_t got = 0, known = rank_set_known(s, (enum store_rank)by);
      CU_ASSERT_EQUAL_FATAL(
          rank_set_top(s, (enum store_rank)by, NO_LIMIT, &rows, &got), TS_OK);
      char case_name[64];
      snprintf(case_name, sizeof case_name, "step %d ranking %d", step, by);
      TS_CHECK_CASE(known == SIZE_MAX ? got == (size_t)n : got == known,
                    case_name, "%zu rows, known %zu, %d ranked", got, known, n);
      for (size_t i = 0; i < got && i < (size_t)n; i++)
        TS_CHECK_CASE(strcmp(rows[i].player, model[order[i]].player) == 0 &&
                          rows[i].stats.wins == model[order[i]].wins &&
                          rows[i].stats.games == model[order[i]].games,
                      case_name, "position %zu: %s, want %s", i + 1,
                      rows[i].player, model[order[i]].player);
      shown += got;
      player_rows_free(rows, got);
    }
  }
  CU_ASSERT(shown > 400); /* the test looked at something */
  rank_set_free(s);
}

/* ---- the cache, with a fake Scan ---- */

struct fake {
  atomic_int scans;
  struct fx table[4];
  size_t n;
  enum ts_status result;
  struct rank_cache *cache;   /* to write from inside a Scan */
  const struct fx *mid_write; /* written while the Scan runs */
};

static enum ts_status fake_scan(void *cls, struct rank_set *into,
                                const atomic_bool *stop) {
  struct fake *f = cls;
  (void)stop;
  atomic_fetch_add(&f->scans, 1);
  if (f->result != TS_OK)
    return f->result;
  struct rank_row rows[4];
  for (size_t i = 0; i < f->n; i++)
    rows[i] = row_of(&f->table[i]);
  if (f->mid_write) { /* after the Scan read the table: it misses this */
    struct rank_row w = row_of(f->mid_write);
    CU_ASSERT(rank_cache_note(f->cache, &w, 1) == TS_OK);
  }
  return rank_set_fold(into, rows, f->n);
}

static struct rank_cache *cache_new(struct fake *f, uint32_t refresh_ms) {
  struct rank_cache_options opt = {.k = 3,
                                   .refresh_ms = refresh_ms,
                                   .wait_ms = 2000,
                                   .journal_max = 16,
                                   .grace_ms = 60000,
                                   .scan = fake_scan,
                                   .scan_cls = f};
  struct rank_cache *c = NULL;
  CU_ASSERT_EQUAL_FATAL(rank_cache_new(&opt, &c), TS_OK);
  f->cache = c;
  return c;
}

/* The first player of the wins ranking, or "" (status in *st). */
static void top1(struct rank_cache *c, char *buf, size_t cap,
                 enum ts_status *st) {
  struct player_row *rows = NULL;
  size_t n = 0;
  *st = rank_cache_top(c, STORE_RANK_WINS, 1, &rows, &n);
  snprintf(buf, cap, "%s", n ? rows[0].player : "");
  player_rows_free(rows, n);
}

static void test_cache_reads_nothing_until_asked_then_reads_your_writes(void) {
  struct fake f = {.table = {{"a", 2, 1, "0", 1}, {"b", 2, 0, "0", 1}}, .n = 2};
  atomic_init(&f.scans, 0);
  struct rank_cache *c = cache_new(&f, 60000);
  struct fx w = {"b", 3, 3, "0", 2};
  struct rank_row r = row_of(&w);
  CU_ASSERT(rank_cache_note(c, &r, 1) == TS_OK);
  CU_ASSERT_EQUAL(atomic_load(&f.scans), 0);
  char got[16];
  enum ts_status st;
  top1(c, got, sizeof got, &st);
  CU_ASSERT(st == TS_OK && strcmp(got, "a") == 0);
  CU_ASSERT_EQUAL(atomic_load(&f.scans), 1);
  /* This process wrote b: shown at once, no new Scan. */
  CU_ASSERT(rank_cache_note(c, &r, 1) == TS_OK);
  top1(c, got, sizeof got, &st);
  CU_ASSERT(st == TS_OK && strcmp(got, "b") == 0);
  CU_ASSERT_EQUAL(atomic_load(&f.scans), 1);
  rank_cache_free(c);
}

static void test_write_during_a_refresh_is_in_its_result(void) {
  /* The Scan reads b at version 1; b's version 2 is written meanwhile. */
  struct fx w = {"b", 3, 3, "0", 2};
  struct fake f = {.table = {{"a", 2, 1, "0", 1}, {"b", 2, 0, "0", 1}},
                   .n = 2,
                   .mid_write = &w};
  atomic_init(&f.scans, 0);
  struct rank_cache *c = cache_new(&f, 60000);
  char got[16];
  enum ts_status st;
  top1(c, got, sizeof got, &st);
  CU_ASSERT(st == TS_OK && strcmp(got, "b") == 0);
  rank_cache_free(c);
}

/* An eventually consistent Scan that still reads b's older item after
 * this process wrote b (before the refresh began): b stays as written. */
static void test_scan_reading_an_older_item_keeps_the_own_write(void) {
  struct fake f = {.table = {{"a", 2, 1, "0", 1}, {"b", 2, 0, "0", 1}}, .n = 2};
  atomic_init(&f.scans, 0);
  struct rank_cache *c = cache_new(&f, 20);
  char got[16];
  enum ts_status st;
  top1(c, got, sizeof got, &st);
  CU_ASSERT(st == TS_OK && strcmp(got, "a") == 0);
  struct fx w = {"b", 3, 3, "0", 2};
  struct rank_row r = row_of(&w);
  CU_ASSERT(rank_cache_note(c, &r, 1) == TS_OK);
  uint64_t deadline = clock_now_ms() + 3000;
  while (atomic_load(&f.scans) < 3 && clock_now_ms() < deadline) {
    struct timespec ts = {0, 30 * 1000000L};
    nanosleep(&ts, NULL);
    top1(c, got, sizeof got, &st); /* starts refreshes; always b */
    TS_CHECK_CASE(st == TS_OK && strcmp(got, "b") == 0, "after a refresh",
                  "top %s, status %s, scans %d", got, ts_status_name(st),
                  atomic_load(&f.scans));
  }
  CU_ASSERT(atomic_load(&f.scans) >= 3);
  rank_cache_free(c);
}

static void test_stale_snapshot_refreshes_in_the_background(void) {
  struct fake f = {.table = {{"a", 2, 1, "0", 1}}, .n = 1};
  atomic_init(&f.scans, 0);
  struct rank_cache *c = cache_new(&f, 50);
  char got[16];
  enum ts_status st;
  top1(c, got, sizeof got, &st);
  CU_ASSERT(st == TS_OK && strcmp(got, "a") == 0);
  /* Another replica writes c; this one sees it after a refresh. */
  f.table[1] = (struct fx){"c", 5, 5, "0", 1};
  f.n = 2;
  uint64_t deadline = clock_now_ms() + 3000;
  while (strcmp(got, "c") != 0 && clock_now_ms() < deadline) {
    struct timespec ts = {0, 20 * 1000000L};
    nanosleep(&ts, NULL);
    top1(c, got, sizeof got, &st); /* answered from the snapshot at once */
    CU_ASSERT(st == TS_OK);
  }
  CU_ASSERT(strcmp(got, "c") == 0);
  CU_ASSERT(atomic_load(&f.scans) >= 2);
  rank_cache_free(c);
}

static void test_no_snapshot_and_a_failing_scan_is_unavailable(void) {
  struct fake f = {.n = 0, .result = TS_ERR_UNAVAILABLE};
  atomic_init(&f.scans, 0);
  struct rank_cache *c = cache_new(&f, 60000);
  char got[16];
  enum ts_status st;
  uint64_t t0 = clock_now_ms();
  top1(c, got, sizeof got, &st);
  CU_ASSERT_EQUAL(st, TS_ERR_UNAVAILABLE);
  CU_ASSERT(clock_now_ms() - t0 < 2000); /* the failure ended the wait */
  rank_cache_free(c);
}

void suite_rank_cache(void) {
  TS_SUITE("rank_cache",
           TS_TEST(test_each_ranking_orders_by_its_key_then_name_in_byte_order),
           TS_TEST(test_k_bounds_the_rows_and_ends_completeness),
           TS_TEST(test_moves_keep_exactly_the_positions_still_known),
           TS_TEST(test_complete_set_stays_complete_when_players_move),
           TS_TEST(test_newest_row_of_a_player_wins_within_one_fold),
           TS_TEST(test_random_moves_never_show_a_wrong_position),
           TS_TEST(test_cache_reads_nothing_until_asked_then_reads_your_writes),
           TS_TEST(test_write_during_a_refresh_is_in_its_result),
           TS_TEST(test_scan_reading_an_older_item_keeps_the_own_write),
           TS_TEST(test_stale_snapshot_refreshes_in_the_background),
           TS_TEST(test_no_snapshot_and_a_failing_scan_is_unavailable));
}
