/* suite_recent: the newest applied pairs in memory (store/recent.h): what
 * counts as seen, what a commit keeps and a rollback undoes, and that a
 * cycle hands out every pair once, in key order, before letting go of
 * exactly its snapshot. */
#include <stdio.h>
#include <string.h>

#include "store/recent.h"
#include "unit.h"

static struct recent *fresh(void) {
  struct recent *r = recent_new();
  CU_ASSERT_FATAL(r != NULL);
  return r;
}

/* Adds whatever is there: a cutoff no pair reaches. */
static void add(struct recent *r, const char *player, const char *event_id,
                int64_t at, int64_t rowid) {
  bool seen = true;
  CU_ASSERT_EQUAL_FATAL(
      recent_add(r, player, event_id, at, rowid, INT64_MAX, &seen), TS_OK);
  CU_ASSERT_FALSE(seen);
}

static void test_seen_means_the_newest_pair_within_the_cutoff(void) {
  struct recent *r = fresh();
  add(r, "ab", "c", 100, 1);
  add(r, "a", "bc", 50, 2);
  add(r, "x", "e1", 10, 3);
  add(r, "x", "e1", 200, 4); /* applied again after it expired */
  static const struct {
    const char *name, *player, *event_id;
    int64_t cutoff;
    bool seen;
  } cases[] = {
      {"at the cutoff", "ab", "c", 100, true},
      {"past the cutoff", "ab", "c", 101, false},
      {"the split of the key counts", "a", "bc", 50, true},
      {"another split is another key", "a", "b", 0, false},
      {"the newest of a key judges", "x", "e1", 150, true},
      {"unknown player", "y", "e1", 0, false},
      {"unknown event", "x", "e2", 0, false},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    TS_CHECK_CASE(recent_seen(r, cases[i].player, cases[i].event_id,
                              cases[i].cutoff) == cases[i].seen,
                  cases[i].name, "seen %d", !cases[i].seen);
  recent_free(r);
}

static void test_rollback_forgets_only_what_was_pending(void) {
  struct recent *r = fresh();
  add(r, "p", "kept", 1, 1);
  recent_commit(r);
  add(r, "p", "gone", 1, 2);
  add(r, "p", "kept", 5, 3); /* a newer pair of a committed key */
  CU_ASSERT(recent_seen(r, "p", "gone", 0));
  CU_ASSERT(recent_seen(r, "p", "kept", 5));
  recent_rollback(r);
  CU_ASSERT(!recent_seen(r, "p", "gone", 0));
  /* The committed pair judges again, not the rolled-back newer one. */
  CU_ASSERT(recent_seen(r, "p", "kept", 1));
  CU_ASSERT(!recent_seen(r, "p", "kept", 5));
  CU_ASSERT_EQUAL(recent_count(r), 1u);
  recent_free(r);
}

struct taken {
  char keys[64][32];
  size_t n;
};

static enum ts_status take(void *cls, const struct recent_pair *p) {
  struct taken *t = cls;
  if (t->n == 64)
    return TS_ERR_TOO_LARGE;
  snprintf(t->keys[t->n++], sizeof t->keys[0], "%s/%s", p->player, p->event_id);
  return TS_OK;
}

static void test_a_cycle_moves_its_snapshot_once_in_key_order(void) {
  struct recent *r = fresh();
  const char *players[] = {"m", "b", "z", "b", "a"};
  const char *events[] = {"1", "2", "1", "1", "9"};
  for (size_t i = 0; i < 5; i++)
    add(r, players[i], events[i], 10, (int64_t)i + 1);
  recent_commit(r);
  CU_ASSERT_EQUAL_FATAL(recent_cycle_start(r), TS_OK);
  CU_ASSERT(recent_cycle_size(r) > 0);
  struct taken t = {0};
  bool last = false;
  int64_t max_rowid = 0;
  /* A slice that fails rolls back: the next one hands out the same pairs. */
  CU_ASSERT_EQUAL(recent_slice(r, 2, take, &t, &last, &max_rowid), TS_OK);
  recent_rollback(r);
  t.n = 0;
  CU_ASSERT_EQUAL(recent_slice(r, 2, take, &t, &last, &max_rowid), TS_OK);
  CU_ASSERT(!last);
  add(r, "c", "new", 10, 6); /* comes in while the cycle runs */
  recent_commit(r);
  CU_ASSERT_EQUAL(recent_slice(r, 2, take, &t, &last, &max_rowid), TS_OK);
  CU_ASSERT(!last);
  recent_commit(r);
  CU_ASSERT_EQUAL(recent_slice(r, 2, take, &t, &last, &max_rowid), TS_OK);
  CU_ASSERT(last);
  CU_ASSERT_EQUAL(max_rowid, 5);
  static const char *const want[] = {"a/9", "b/1", "b/2", "m/1", "z/1"};
  CU_ASSERT_EQUAL_FATAL(t.n, 5u);
  for (size_t i = 0; i < 5; i++)
    TS_CHECK_CASE(strcmp(t.keys[i], want[i]) == 0, want[i], "got %s",
                  t.keys[i]);
  /* Until the commit the snapshot's pairs are still seen. */
  CU_ASSERT(recent_seen(r, "m", "1", 0));
  recent_commit(r);
  CU_ASSERT_EQUAL(recent_cycle_size(r), 0);
  CU_ASSERT_EQUAL(recent_count(r), 1u);
  CU_ASSERT(!recent_seen(r, "m", "1", 0));
  CU_ASSERT(recent_seen(r, "c", "new", 0));
  recent_free(r);
}

/* The sort compares the first eight bytes of players as a number; past
 * them, and between players that are prefixes of each other, it must still
 * be strcmp's order. */
static void
test_a_cycle_orders_players_by_every_byte_not_the_first_eight(void) {
  struct recent *r = fresh();
  static const char *const players[] = {
      "player-0002", "player-0001b", "player-0001", "player-", "player",
      "player-0001", "p\xc3\xa9",    "p",           "playerZ", "player-0001"};
  static const char *const events[] = {"e", "e", "b", "e", "e",
                                       "a", "e", "e", "e", "aa"};
  for (size_t i = 0; i < 10; i++)
    add(r, players[i], events[i], 10, (int64_t)i + 1);
  recent_commit(r);
  CU_ASSERT_EQUAL_FATAL(recent_cycle_start(r), TS_OK);
  struct taken t = {0};
  bool last = false;
  int64_t max_rowid = 0;
  CU_ASSERT_EQUAL(recent_slice(r, 64, take, &t, &last, &max_rowid), TS_OK);
  CU_ASSERT(last);
  static const char *const want[] = {"p/e",
                                     "player/e",
                                     "player-/e",
                                     "player-0001/a",
                                     "player-0001/aa",
                                     "player-0001/b",
                                     "player-0001b/e",
                                     "player-0002/e",
                                     "playerZ/e",
                                     "p\xc3\xa9/e"};
  CU_ASSERT_EQUAL_FATAL(t.n, 10u);
  for (size_t i = 0; i < 10; i++)
    TS_CHECK_CASE(strcmp(t.keys[i], want[i]) == 0, want[i], "got %s",
                  t.keys[i]);
  recent_free(r);
}

/* recent_add is the check and the add in one: a pair within the cutoff is
 * not added again; an expired one is, and is the one judged after. */
static void test_adding_a_pair_within_the_cutoff_adds_nothing(void) {
  struct recent *r = fresh();
  bool seen = true;
  CU_ASSERT_EQUAL(recent_add(r, "p", "e", 100, 1, 50, &seen), TS_OK);
  CU_ASSERT_FALSE(seen);
  CU_ASSERT_EQUAL(recent_add(r, "p", "e", 120, 2, 100, &seen), TS_OK);
  CU_ASSERT(seen);
  CU_ASSERT_EQUAL(recent_count(r), 1u);
  CU_ASSERT_EQUAL(recent_add(r, "p", "e", 300, 3, 101, &seen), TS_OK);
  CU_ASSERT_FALSE(seen);
  CU_ASSERT_EQUAL(recent_count(r), 2u);
  CU_ASSERT(recent_seen(r, "p", "e", 300));
  CU_ASSERT(!recent_seen(r, "p", "e", 301));
  recent_free(r);
}

static void test_dropping_the_committed_keeps_what_this_transaction_adds(void) {
  struct recent *r = fresh();
  for (int i = 0; i < 300; i++) { /* past the first table size */
    char ev[16];
    snprintf(ev, sizeof ev, "e%d", i);
    add(r, "p", ev, 1, i + 1);
  }
  recent_commit(r);
  CU_ASSERT_EQUAL_FATAL(recent_cycle_start(r), TS_OK);
  recent_drop_committed(r);
  add(r, "q", "after", 1, 301);
  recent_commit(r);
  CU_ASSERT_EQUAL(recent_cycle_size(r), 0);
  CU_ASSERT_EQUAL(recent_count(r), 1u);
  CU_ASSERT(!recent_seen(r, "p", "e7", 0));
  CU_ASSERT(recent_seen(r, "q", "after", 0));
  /* A cycle needs committed pairs and none pending. */
  add(r, "q", "pending", 1, 302);
  CU_ASSERT_EQUAL(recent_cycle_start(r), TS_ERR_INVALID);
  recent_free(r);
}

void suite_recent(void) {
  TS_SUITE(
      "recent", TS_TEST(test_seen_means_the_newest_pair_within_the_cutoff),
      TS_TEST(test_rollback_forgets_only_what_was_pending),
      TS_TEST(test_a_cycle_moves_its_snapshot_once_in_key_order),
      TS_TEST(test_a_cycle_orders_players_by_every_byte_not_the_first_eight),
      TS_TEST(test_adding_a_pair_within_the_cutoff_adds_nothing),
      TS_TEST(test_dropping_the_committed_keeps_what_this_transaction_adds));
}
