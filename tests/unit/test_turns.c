/* suite_turns: player turns (store/turns.h): one holder per name, a line
 * that gives a free name to the caller that waited longest, what a full
 * table answers, names found again after others leave their probe chain,
 * and waits that end on a release, a leave or their deadline. */
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <string.h>

#include "common/clock.h"
#include "store/turns.h"
#include "unit.h"

static struct turns *fresh(size_t slots) {
  struct turns *t = NULL;
  CU_ASSERT_EQUAL_FATAL(turns_new(slots, &t), TS_OK);
  return t;
}

/* A claim by a new caller each time (a ticket of its own). */
static enum turn claim1(struct turns *t, const char *name) {
  enum turn got;
  uint64_t ticket = 0;
  (void)turns_claim(t, &name, 1, NULL, &ticket, &got);
  return got;
}

static void release1(struct turns *t, const char *name) {
  turns_release(t, &name, 1);
}

static void test_slots_must_be_a_power_of_two(void) {
  static const struct {
    size_t slots;
    enum ts_status want;
  } cases[] = {{0, TS_ERR_INVALID}, {1, TS_ERR_INVALID}, {3, TS_ERR_INVALID},
               {2, TS_OK},          {64, TS_OK},         {100, TS_ERR_INVALID}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct turns *t = NULL;
    enum ts_status st = turns_new(cases[i].slots, &t);
    char label[32];
    snprintf(label, sizeof label, "%zu slots", cases[i].slots);
    TS_CHECK_CASE(st == cases[i].want && (st == TS_OK) == (t != NULL), label,
                  "%s", ts_status_name(st));
    turns_free(t);
  }
  turns_free(NULL);
}

/* A script of steps by callers 1-4, none of them asleep in turns_wait (a
 * caller's ticket comes with its first claim, so the order of first
 * claims is their age): "1+a" claims a and wants MINE, "1=a" wants BUSY
 * (in line), "1?a" wants BUSY without a place in line (a caller that will
 * not wait), "1!a" wants UNORDERED; "1-a" releases a, "1~a" leaves a's
 * line. Then the names held. What a line does for a caller asleep is
 * test_a_name_released_while_its_first_in_line_sleeps_is_kept_for_it. */
static void test_a_name_has_one_holder_and_an_awake_line_holds_up_nobody(void) {
  static const struct {
    const char *name;
    size_t slots;
    const char *steps[8];
    size_t held;
  } cases[] = {
      {"a second claim waits", 8, {"1+a", "2=a", "2+b"}, 2},
      {"a release frees the name", 8, {"1+a", "1-a", "2+a", "3=a"}, 1},
      {"names are compared whole", 8, {"1+a", "1+ab", "1+b", "2=ab"}, 3},
      {"a full table goes unordered",
       4,
       {"1+a", "1+b", "1+c", "1!d", "2=a"},
       3},
      {"a release makes room",
       4,
       {"1+a", "1+b", "1+c", "1-b", "1+d", "1!e"},
       3},
      {"two slots hold one name", 2, {"1+a", "1!b", "1-a", "1+b"}, 1},
      {"a name released while its first in line is awake goes to any claim",
       8,
       {"1+a", "2=a", "1-a", "3+a", "2=a"},
       1},
      {"an awake line keeps no slot", 2, {"1+a", "2=a", "1-a", "3+b"}, 1},
      {"a caller that left its line is not first in it",
       8,
       {"1+a", "2=a", "2~a", "3=a", "1-a", "3+a"},
       1},
      {"a caller that will not wait keeps no place",
       8,
       {"1+a", "2?a", "1-a", "3+a"},
       1},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct turns *t = fresh(cases[i].slots);
    uint64_t tickets[5] = {0};
    for (size_t s = 0; s < 8 && cases[i].steps[s]; s++) {
      const char *step = cases[i].steps[s], *name = step + 2;
      uint64_t *ticket = &tickets[step[0] - '0'];
      if (step[1] == '-') {
        turns_release(t, &name, 1);
        continue;
      }
      if (step[1] == '~') {
        turns_leave(t, &name, 1, *ticket);
        continue;
      }
      enum turn want = step[1] == '+'   ? TURN_MINE
                       : step[1] == '!' ? TURN_UNORDERED
                                        : TURN_BUSY;
      bool queue = step[1] != '?';
      enum turn got;
      (void)turns_claim(t, &name, 1, &queue, ticket, &got);
      TS_CHECK_CASE(got == want, cases[i].name, "step %s: got %d, want %d",
                    step, (int)got, (int)want);
    }
    size_t held = turns_held(t);
    TS_CHECK_CASE(held == cases[i].held, cases[i].name, "%zu held, want %zu",
                  held, cases[i].held);
    turns_free(t);
  }
}

/* Many names in a small table share probe chains; releasing some in any
 * order must leave every other one found (still held by its claimer). */
static void test_names_are_found_after_others_leave_their_chain(void) {
  enum { N = 48 };
  static char names[N][8];
  const char *all[N];
  for (int i = 0; i < N; i++) {
    snprintf(names[i], sizeof names[i], "n%d", i);
    all[i] = names[i];
  }
  for (int stride = 1; stride <= 5; stride++) {
    struct turns *t = fresh(64);
    enum turn got[N];
    uint64_t ticket = 0;
    (void)turns_claim(t, all, N, NULL, &ticket, got);
    int mine = 0;
    for (int i = 0; i < N; i++)
      mine += got[i] == TURN_MINE;
    CU_ASSERT_EQUAL(mine, N);
    /* release every stride-th name, then check each one's state */
    const char *gone[N];
    size_t n_gone = 0;
    for (int i = 0; i < N; i += stride)
      gone[n_gone++] = all[i];
    turns_release(t, gone, n_gone);
    for (int i = 0; i < N; i++) {
      enum turn want = i % stride == 0 ? TURN_MINE : TURN_BUSY;
      enum turn g = claim1(t, all[i]);
      char label[32];
      snprintf(label, sizeof label, "stride %d, %s", stride, all[i]);
      TS_CHECK_CASE(g == want, label, "got %d, want %d", (int)g, (int)want);
    }
    CU_ASSERT_EQUAL(turns_held(t), (size_t)N);
    turns_free(t);
  }
}

struct releaser {
  struct turns *t;
  const char *name;
  uint32_t after_ms;
};

static void *release_later(void *cls) {
  struct releaser *r = cls;
  clock_sleep_ms(r->after_ms);
  release1(r->t, r->name);
  return NULL;
}

/* A wait ends with TS_OK on a release after its epoch (at once when one
 * came before the wait), and with TS_ERR_UNAVAILABLE at its deadline when
 * none comes. */
static void test_a_wait_ends_on_a_release_or_at_its_deadline(void) {
  struct turns *t = fresh(8);
  enum turn got;
  const char *a = "a";
  uint64_t holder = 0, waiter = 0, later = 0;
  uint64_t epoch = turns_claim(t, &a, 1, NULL, &holder, &got);
  CU_ASSERT_EQUAL(got, TURN_MINE);
  uint64_t start = clock_now_ms();
  CU_ASSERT_EQUAL(turns_wait(t, holder, epoch, start + 30), TS_ERR_UNAVAILABLE);
  CU_ASSERT(clock_now_ms() >= start + 30);

  /* a release between the claim and the wait is not missed */
  uint64_t seen = turns_claim(t, &a, 1, NULL, &waiter, &got);
  CU_ASSERT_EQUAL(got, TURN_BUSY);
  release1(t, "a");
  CU_ASSERT_EQUAL(turns_wait(t, waiter, seen, clock_now_ms() + 60000), TS_OK);
  (void)turns_leave(t, &a, 1, waiter);

  /* a release from another thread wakes the waiter */
  CU_ASSERT_EQUAL(claim1(t, "a"), TURN_MINE);
  seen = turns_claim(t, &a, 1, NULL, &later, &got);
  CU_ASSERT_EQUAL(got, TURN_BUSY);
  struct releaser r = {t, "a", 20};
  pthread_t th;
  CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, release_later, &r), 0);
  CU_ASSERT_EQUAL(turns_wait(t, later, seen, clock_now_ms() + 60000), TS_OK);
  pthread_join(th, NULL);
  (void)turns_claim(t, &a, 1, NULL, &later, &got);
  CU_ASSERT_EQUAL(got, TURN_MINE);
  turns_free(t);
}

/* A caller in line that sleeps in turns_wait; once woken it waits for
 * `go`, then claims the name or leaves its line. */
struct sleeper_job {
  struct turns *t;
  const char *name;
  uint64_t ticket, epoch;
  bool leave;
  sem_t go;
  enum ts_status woke;
  enum turn got;
};

static void *sleep_then_act(void *cls) {
  struct sleeper_job *j = cls;
  j->woke = turns_wait(j->t, j->ticket, j->epoch, clock_now_ms() + 60000);
  while (sem_wait(&j->go) != 0)
    ;
  if (j->leave)
    turns_leave(j->t, &j->name, 1, j->ticket);
  else
    (void)turns_claim(j->t, &j->name, 1, NULL, &j->ticket, &j->got);
  return NULL;
}

/* Two slots: a is held, and caller w (in line for a) sleeps. Released, a
 * stays w's: a later caller finds it busy, and its place keeps the one
 * slot (b goes unordered). Then w either claims a (MINE) or leaves its
 * line, which frees a and wakes the later caller, who gets it. */
static void
test_a_name_released_while_its_first_in_line_sleeps_is_kept_for_it(void) {
  for (int leave = 0; leave <= 1; leave++) {
    const char *label = leave ? "the first in line leaves" : "it claims";
    struct turns *t = fresh(2);
    const char *a = "a", *b = "b";
    uint64_t holder = 0, later = 0;
    enum turn got;
    (void)turns_claim(t, &a, 1, NULL, &holder, &got);
    CU_ASSERT_EQUAL(got, TURN_MINE);
    struct sleeper_job j = {.t = t, .name = a, .leave = leave != 0};
    CU_ASSERT_EQUAL_FATAL(sem_init(&j.go, 0, 0), 0);
    j.epoch = turns_claim(t, &a, 1, NULL, &j.ticket, &got);
    CU_ASSERT_EQUAL(got, TURN_BUSY);
    pthread_t th;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, sleep_then_act, &j), 0);
    for (int i = 0; i < 5000 && turns_sleeping(t) == 0; i++)
      clock_sleep_ms(1);
    CU_ASSERT_EQUAL(turns_sleeping(t), 1);

    release1(t, a);
    uint64_t seen = turns_claim(t, &a, 1, NULL, &later, &got);
    TS_CHECK_CASE(got == TURN_BUSY, label,
                  "a later claim of a released name kept for a sleeper: "
                  "got %d, want BUSY",
                  (int)got);
    (void)turns_claim(t, &b, 1, NULL, &later, &got);
    TS_CHECK_CASE(got == TURN_UNORDERED, label,
                  "the kept name's slot is taken: b got %d, want UNORDERED",
                  (int)got);
    sem_post(&j.go);
    if (leave) {
      TS_CHECK_CASE(turns_wait(t, later, seen, clock_now_ms() + 60000) == TS_OK,
                    label, "the leave woke nobody");
      (void)turns_claim(t, &a, 1, NULL, &later, &got);
      TS_CHECK_CASE(got == TURN_MINE, label,
                    "after the leave the later caller got %d, want MINE",
                    (int)got);
    }
    pthread_join(th, NULL);
    CU_ASSERT_EQUAL(j.woke, TS_OK);
    if (!leave)
      TS_CHECK_CASE(j.got == TURN_MINE, label, "the sleeper got %d, want MINE",
                    (int)j.got);
    CU_ASSERT_EQUAL(turns_held(t), 1);
    sem_destroy(&j.go);
    turns_free(t);
  }
}

void suite_turns(void) {
  TS_SUITE(
      "turns", TS_TEST(test_slots_must_be_a_power_of_two),
      TS_TEST(test_a_name_has_one_holder_and_an_awake_line_holds_up_nobody),
      TS_TEST(
          test_a_name_released_while_its_first_in_line_sleeps_is_kept_for_it),
      TS_TEST(test_names_are_found_after_others_leave_their_chain),
      TS_TEST(test_a_wait_ends_on_a_release_or_at_its_deadline));
}
