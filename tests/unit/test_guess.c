/* suite_guess: write guesses (store/guess.h): when they are used (trust
 * earned by right guesses and reads that match, lost by wrong ones), what
 * an entry holds, and what replaces or forgets it. */
#include <stdio.h>
#include <string.h>

#include "common/bounds.h"
#include "store/guess.h"
#include "unit.h"

static struct guess *fresh(void) {
  struct guess *g = NULL;
  CU_ASSERT_EQUAL_FATAL(guess_new(64, &g), TS_OK);
  return g;
}

static void note(struct guess *g, const char *player, int64_t version,
                 const char *at) {
  unsigned char recent[32];
  memset(recent, (int)version, sizeof recent);
  struct guess_item it = {.version = version,
                          .stats = {version, 1, {0, 0}},
                          .recent = recent,
                          .recent_len = sizeof recent};
  snprintf(it.updated_at, sizeof it.updated_at, "%s", at);
  guess_note_write(g, player, &it);
}

/* Steps of a scenario, one letter each: 'w' our write of "p" (the next
 * version), 'r' a read that finds our last write, 'o' a read that finds
 * another writer's newer version, 'h' a guessed write that held, 'f' one
 * that failed (another writer's item read after it), 'F' one that failed on
 * its own first copy (resent, the item read after it is that write); 's' and
 * 'S' reads of a player this process never wrote, finding the version of our
 * last write of "p" or a newer one (no evidence either way, even if the two
 * share a slot). New-player evidence: 'n' and 'N' reads of a player this
 * process never wrote that found no item or one, 'y' and 'x' new-player
 * writes that held or failed, 'k' a read of "p" that found no item (no
 * evidence: "p" is known). */
static void play(struct guess *g, const char *steps, int64_t *version) {
  for (const char *s = steps; *s; s++) {
    switch (*s) {
    case 'w': note(g, "p", ++*version, "t"); break;
    case 'r': guess_note_read(g, "p", *version, "t"); break;
    case 'o': guess_note_read(g, "p", *version + 1, "t2"); break;
    case 'h': guess_note_held(g); break;
    case 'f':
      if (guess_note_failed(g, "p", *version))
        guess_note_verdict(g, false);
      break;
    case 'F':
      if (guess_note_failed(g, "p", *version))
        guess_note_verdict(g, true);
      break;
    case 's': guess_note_read(g, "stranger", *version, "t"); break;
    case 'S': guess_note_read(g, "stranger", *version + 1, "t2"); break;
    case 'n': guess_note_unknown_read(g, "stranger", false); break;
    case 'N': guess_note_unknown_read(g, "stranger", true); break;
    case 'y': guess_note_new_outcome(g, true); break;
    case 'x': guess_note_new_outcome(g, false); break;
    case 'k': guess_note_unknown_read(g, "p", false); break;
    }
  }
}

static char *repeat(char *buf, size_t cap, const char *unit, int times) {
  size_t len = 0, n = strlen(unit);
  for (int i = 0; i < times && len + n < cap; i++, len += n)
    memcpy(buf + len, unit, n);
  buf[len] = '\0';
  return buf;
}

/* Writes and matching reads of "p", `rounds` of them: trust earned. */
static void earn_trust(struct guess *g, int64_t *version, int rounds) {
  char a[1024];
  play(g, repeat(a, sizeof a, "wr", rounds), version);
}

static void test_guesses_are_used_only_after_enough_right_evidence(void) {
  char a[1024];
  static const struct {
    const char *name;
    const char *unit; /* repeated `times` */
    int times;
    bool trusted;
  } cases[] = {
      {"nothing seen yet", "", 0, false},
      {"reads that match, one short of the bar", "wr", TS_GUESS_TRUST_MIN - 1,
       false},
      {"reads that match, up to the bar", "wr", TS_GUESS_TRUST_MIN, true},
      {"a replica taking turns with another (every other read is theirs)",
       "wrwo", 40, false},
      {"one wrong in twenty is worth it",
       "wrwrwrwrwrwrwrwrwrwrwrwrwrwrwrwrwrwrwrwo", 4, true},
      {"one wrong in four is not", "wrwrwrwo", 20, false},
      {"guessed writes failing on their own landed copy are right", "wrwF",
       TS_GUESS_TRUST_MIN / 2, true},
      {"failing on another writer's item they are wrong", "wrwf",
       TS_GUESS_TRUST_MIN, false},
      {"reads of players never written here give no trust", "wrs",
       TS_GUESS_TRUST_MIN - 1, false},
      {"reads of players never written here take none away", "wrS",
       TS_GUESS_TRUST_MIN, true},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct guess *g = fresh();
    int64_t v = 0;
    play(g, repeat(a, sizeof a, cases[i].unit, cases[i].times), &v);
    TS_CHECK_CASE(guess_trusted(g) == cases[i].trusted, cases[i].name,
                  "trusted %d, want %d", guess_trusted(g), cases[i].trusted);
    guess_free(g);
  }
}

static void test_players_are_guessed_new_only_while_unknown_ones_were(void) {
  char a[1024];
  static const struct {
    const char *name;
    const char *unit; /* repeated `times` */
    int times;
    bool trusted_new, trusted;
  } cases[] = {
      {"nothing seen yet", "", 0, false, false},
      {"reads that found no item, one short of the bar", "n",
       TS_GUESS_TRUST_MIN - 1, false, false},
      {"reads that found no item, up to the bar", "n", TS_GUESS_TRUST_MIN, true,
       false},
      {"new-player writes that held keep it", "ny", TS_GUESS_TRUST_MIN / 2,
       true, false},
      {"a restarted replica finding items it does not know", "nnnN", 40, false,
       false},
      {"one failed new-player write in twenty is worth it",
       "nnnnnnnnnnnnnnnnnnnx", 4, true, false},
      {"one in four is not", "nnnx", 20, false, false},
      {"reads of a player written here say nothing of new ones", "wk",
       TS_GUESS_TRUST_MIN, false, false},
      {"trust in known players' guesses does not carry over", "wr",
       TS_GUESS_TRUST_MIN, false, true},
      {"nor the other way", "wn", TS_GUESS_TRUST_MIN, true, false},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct guess *g = fresh();
    int64_t v = 0;
    play(g, repeat(a, sizeof a, cases[i].unit, cases[i].times), &v);
    TS_CHECK_CASE(guess_new_trusted(g) == cases[i].trusted_new, cases[i].name,
                  "trusted new %d, want %d", guess_new_trusted(g),
                  cases[i].trusted_new);
    TS_CHECK_CASE(guess_trusted(g) == cases[i].trusted, cases[i].name,
                  "trusted %d, want %d", guess_trusted(g), cases[i].trusted);
    /* Never for a player this process holds an entry for: "q", written
     * after the steps (a write is no evidence), and "p" when written. */
    note(g, "q", 1, "t");
    TS_CHECK_CASE(guess_take_new(g, "stranger") == cases[i].trusted_new,
                  cases[i].name, "take_new(stranger) %d",
                  guess_take_new(g, "stranger"));
    TS_CHECK_CASE(!guess_take_new(g, "q") &&
                      (v == 0 || !guess_take_new(g, "p")),
                  cases[i].name, "a player written here taken as new");
    guess_free(g);
  }
}

static void test_wrong_guesses_take_trust_away_faster_than_right_ones(void) {
  char a[1024];
  struct guess *g = fresh();
  int64_t v = 0;
  play(g, repeat(a, sizeof a, "wh", TS_GUESS_TRUST_MAX), &v); /* ceiling */
  CU_ASSERT(guess_trusted(g));
  /* From the ceiling, this many wrong guesses end guessing. */
  int wrong = 0;
  while (guess_trusted(g) && wrong < 100) {
    play(g, "wf", &v);
    wrong++;
  }
  int want =
      (TS_GUESS_TRUST_MAX - TS_GUESS_TRUST_MIN) / TS_GUESS_WRONG_COST + 1;
  TS_CHECK_CASE(wrong == want, "from the ceiling",
                "%d wrong guesses ended trust, want %d", wrong, want);
  guess_free(g);
}

static void test_take_gives_a_copy_of_the_last_write_while_trusted(void) {
  struct guess *g = fresh();
  int64_t v = 0;
  struct guess_item it;
  note(g, "p", 1, "t");
  CU_ASSERT_EQUAL(guess_take(g, "p", &it), TS_ERR_NOT_FOUND); /* no trust */
  earn_trust(g, &v, TS_GUESS_TRUST_MIN);
  CU_ASSERT_EQUAL_FATAL(guess_take(g, "p", &it), TS_OK);
  CU_ASSERT_EQUAL(it.version, v);
  CU_ASSERT_EQUAL(it.stats.games, v);
  CU_ASSERT_STRING_EQUAL(it.updated_at, "t");
  CU_ASSERT_EQUAL_FATAL(it.recent_len, 32u);
  CU_ASSERT_EQUAL(it.recent[31], (unsigned char)v);
  it.recent[0] ^= 0xff; /* a copy: the entry does not change */
  struct guess_item again;
  CU_ASSERT_EQUAL_FATAL(guess_take(g, "p", &again), TS_OK);
  CU_ASSERT_EQUAL(again.recent[0], (unsigned char)v);
  struct guess_item none;
  CU_ASSERT_EQUAL(guess_take(g, "q", &none), TS_ERR_NOT_FOUND);
  guess_item_clear(&it);
  guess_item_clear(&again);
  guess_item_clear(NULL);
  guess_free(g);
  guess_free(NULL);
}

static void test_entries_follow_the_newest_write_and_forget_stale_ones(void) {
  struct guess *g = fresh();
  int64_t v = 0;
  struct guess_item it;
  earn_trust(g, &v, TS_GUESS_TRUST_MIN + 8);
  static const struct {
    const char *name;
    const char *steps;
    bool found;
  } cases[] = {
      {"an older write does not replace a newer one", "<", true},
      {"a read of another writer's version forgets it", "o", false},
      {"a failed guess forgets it", "f", false},
      {"so does one failing on its own landed copy", "F", false},
      {"losing to our own newer write keeps the newer one", "=", true},
      {"a write with a session state forgets it", "x", false},
      {"a log over the bound is not kept", "L", false},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    note(g, "p", ++v, "t");
    switch (cases[i].steps[0]) {
    case '<': note(g, "p", v - 1, "old"); break;
    case '=': /* nothing to judge: a read would have lost the race too */
      CU_ASSERT_FALSE(guess_note_failed(g, "p", v - 1));
      break;
    case 'x': guess_forget(g, "p"); break;
    case 'L': {
      static unsigned char big[TS_GUESS_MAX_LOG_BYTES + 1];
      struct guess_item b = {
          .version = ++v, .recent = big, .recent_len = sizeof big};
      guess_note_write(g, "p", &b);
      break;
    }
    default: play(g, cases[i].steps, &v); break;
    }
    enum ts_status st = guess_take(g, "p", &it);
    TS_CHECK_CASE((st == TS_OK) == cases[i].found, cases[i].name,
                  "take gave %s", ts_status_name(st));
    if (st == TS_OK)
      TS_CHECK_CASE(it.version == v && strcmp(it.updated_at, "t") == 0,
                    cases[i].name, "version %lld at %s, want %lld at t",
                    (long long)it.version, it.updated_at, (long long)v);
    guess_item_clear(&it);
    earn_trust(g, &v, TS_GUESS_WRONG_COST + 1); /* back for the next case */
  }
  guess_free(g);
}

/* Players whose names share a set keep their entries side by side; a
 * new one replaces the set's least recently written or taken entry. One
 * set here (TS_GUESS_WAYS slots): every name falls in it. */
static void test_a_set_holds_its_ways_and_replaces_the_least_recent(void) {
  struct guess *g = NULL;
  CU_ASSERT_EQUAL_FATAL(guess_new(TS_GUESS_WAYS, &g), TS_OK);
  int64_t v = 0;
  earn_trust(g, &v, TS_GUESS_TRUST_MIN + 8); /* "p" holds a slot */
  char name[16];
  for (unsigned i = 1; i < TS_GUESS_WAYS; i++) {
    snprintf(name, sizeof name, "q%u", i);
    note(g, name, 1, "t");
  }
  struct guess_item it;
  for (unsigned i = 0; i < TS_GUESS_WAYS; i++) { /* takes q1 last */
    if (i == 0)
      snprintf(name, sizeof name, "p");
    else
      snprintf(name, sizeof name, "q%u", TS_GUESS_WAYS - i);
    enum ts_status st = guess_take(g, name, &it); /* the macro reads twice */
    TS_CHECK_CASE(st == TS_OK, "a full set", "%s was not kept", name);
    guess_item_clear(&it);
  }
  /* Least recent now: "p" (taken first); then q{WAYS-1} ... q1. */
  note(g, "new", 1, "t");
  static const struct {
    const char *name;
    bool kept;
  } cases[] = {{"p", false}, {"q1", true}, {"new", true}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    enum ts_status st = guess_take(g, cases[i].name, &it);
    TS_CHECK_CASE((st == TS_OK) == cases[i].kept, cases[i].name, "take gave %s",
                  ts_status_name(st));
    guess_item_clear(&it);
  }
  guess_free(g);
}

static void test_counts_are_the_guessed_writes_by_outcome(void) {
  uint64_t h0, f0, h1, f1;
  guess_counts(&h0, &f0);
  struct guess *g = fresh();
  guess_note_held(g);
  guess_note_held(g);
  /* A failure counts once judged: failed on another writer's item, or
   * held after all (its own first copy); at once when it lost to a newer
   * write of this process. */
  CU_ASSERT_TRUE(guess_note_failed(g, "b", 1));
  guess_note_verdict(g, false);
  CU_ASSERT_TRUE(guess_note_failed(g, "c", 1));
  guess_counts(&h1, &f1);
  CU_ASSERT_EQUAL(h1 - h0, 2u);
  CU_ASSERT_EQUAL(f1 - f0, 1u);
  guess_note_verdict(g, true);
  note(g, "d", 5, "t");
  CU_ASSERT_FALSE(guess_note_failed(g, "d", 4));
  guess_counts(&h1, &f1);
  CU_ASSERT_EQUAL(h1 - h0, 3u);
  CU_ASSERT_EQUAL(f1 - f0, 2u);
  /* New-player writes count apart. */
  uint64_t nh0, nf0, nh1, nf1;
  guess_new_counts(&nh0, &nf0);
  guess_note_new_outcome(g, true);
  guess_note_new_outcome(g, false);
  guess_note_new_outcome(g, false);
  guess_new_counts(&nh1, &nf1);
  guess_counts(&h0, &f0);
  CU_ASSERT_EQUAL(nh1 - nh0, 1u);
  CU_ASSERT_EQUAL(nf1 - nf0, 2u);
  CU_ASSERT_EQUAL(h0, h1);
  CU_ASSERT_EQUAL(f0, f1);
  guess_free(g);
}

void suite_guess(void) {
  TS_SUITE("guess",
           TS_TEST(test_guesses_are_used_only_after_enough_right_evidence),
           TS_TEST(test_players_are_guessed_new_only_while_unknown_ones_were),
           TS_TEST(test_wrong_guesses_take_trust_away_faster_than_right_ones),
           TS_TEST(test_take_gives_a_copy_of_the_last_write_while_trusted),
           TS_TEST(test_entries_follow_the_newest_write_and_forget_stale_ones),
           TS_TEST(test_a_set_holds_its_ways_and_replaces_the_least_recent),
           TS_TEST(test_counts_are_the_guessed_writes_by_outcome));
}
