/* suite_decide: the one decision of what a batch does to the players
 * (domain/decide.h), against an in-memory view of a store. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "domain/batch.h"
#include "domain/batch_outcome.h"
#include "domain/decide.h"
#include "records.h"
#include "unit.h"

/* A store's contents, written as text:
 *   stored   "bob=2/1/13 carol=0/0/0"   games/wins/total_score per player
 *   applied  "bob:e1 carol:e9"          (player, eventID) pairs applied
 *   room     "bob=1"                    bookkeeping room (default: none) */
struct fake_store {
  const char *stored, *applied, *room;
  const struct batch *b;
  enum ts_status fail; /* returned by `applied` when not TS_OK */
  const char *settled; /* a player taken as settled, or NULL */
  unsigned reads_of_settled;
  bool backfilling; /* a backfill session is open */
};

/* The value after "name=" in a space-separated list, copied to out. */
static bool lookup(const char *list, const char *name, char *out, size_t cap) {
  size_t n = strlen(name);
  for (const char *s = list; s && *s;) {
    const char *end = strchr(s, ' ');
    size_t len = end ? (size_t)(end - s) : strlen(s);
    if (len > n && strncmp(s, name, n) == 0 && s[n] == '=') {
      size_t v = len - n - 1;
      if (v >= cap)
        return false;
      memcpy(out, s + n + 1, v);
      out[v] = '\0';
      return true;
    }
    s = end ? end + 1 : s + len;
  }
  return false;
}

static bool parse_stats(const char *text, struct stats *out) {
  long long g, w;
  char total[64];
  memset(out, 0, sizeof *out);
  return sscanf(text, "%lld/%lld/%63s", &g, &w, total) == 3 &&
         (out->games = g, out->wins = w,
          decimal_parse(total, strlen(total), &out->total_score) == TS_OK);
}

static enum ts_status fake_stats(void *cls, size_t p, struct stats *out) {
  struct fake_store *f = cls;
  const char *name = batch_player_name(f->b, p);
  char text[128];
  if (f->settled && strcmp(name, f->settled) == 0)
    f->reads_of_settled++;
  memset(out, 0, sizeof *out);
  if (!lookup(f->stored, name, text, sizeof text))
    return TS_OK;
  return parse_stats(text, out) ? TS_OK : TS_ERR_IO;
}

static enum ts_status fake_applied(void *cls, size_t p, const char *event_id,
                                   bool *seen) {
  struct fake_store *f = cls;
  char pair[256];
  snprintf(pair, sizeof pair, "%s:%s", batch_player_name(f->b, p), event_id);
  size_t n = strlen(pair);
  *seen = false;
  for (const char *s = f->applied; s && (s = strstr(s, pair)); s += n)
    if ((s == f->applied || s[-1] == ' ') && (s[n] == ' ' || s[n] == '\0'))
      *seen = true;
  return f->fail;
}

static size_t fake_room(void *cls, size_t p) {
  struct fake_store *f = cls;
  char text[32];
  if (!lookup(f->room, batch_player_name(f->b, p), text, sizeof text))
    return SIZE_MAX;
  return (size_t)strtoul(text, NULL, 10);
}

static bool fake_settled(void *cls, size_t p) {
  struct fake_store *f = cls;
  return f->settled && strcmp(batch_player_name(f->b, p), f->settled) == 0;
}

static struct decide_view view_of(struct fake_store *f) {
  return (struct decide_view){.cls = f,
                              .stats = fake_stats,
                              .applied = fake_applied,
                              .room = fake_room,
                              .settled = fake_settled,
                              .backfilling = f->backfilling};
}

static struct batch *load(const char *text) {
  json_error_t err;
  json_t *body = json_loads(text, JSON_DECODE_ANY, &err);
  struct batch *b = NULL;
  const char *detail = NULL;
  TS_CHECK_CASE(body != NULL, text, "fixture is not JSON: %s", err.text);
  if (body &&
      batch_new(test_doc_of(body), &record_names_default, &b, &detail) != TS_OK)
    b = NULL;
  json_decref(body);
  CU_ASSERT_PTR_NOT_NULL_FATAL(b);
  return b;
}

/* Per record: A applied, D duplicate, S skipped, R rejected. */
static void outcomes_of(const struct batch *b, char *out, size_t cap) {
  static const char letter[] = {[RECORD_APPLIED] = 'A',
                                [RECORD_DUPLICATE] = 'D',
                                [RECORD_SKIPPED] = 'S',
                                [RECORD_REJECTED] = 'R'};
  size_t n = batch_record_count(b);
  for (size_t i = 0; i < n && i + 1 < cap; i++)
    out[i] = letter[batch_record_outcome(b, i)];
  out[n < cap ? n : cap - 1] = '\0';
}

/* Changed players' next stats, "bob=1/1/10 carol=...", in batch order. */
static void next_of(const struct batch *b, const struct decide_player *d,
                    char *out, size_t cap) {
  size_t at = 0;
  out[0] = '\0';
  for (size_t p = 0; p < batch_player_count(b) && at < cap; p++) {
    if (!d[p].changed)
      continue;
    char total[DECIMAL_TEXT_MAX];
    decimal_format(d[p].next.total_score, total);
    int w = snprintf(out + at, cap - at, "%s%s=%lld/%lld/%s", at ? " " : "",
                     batch_player_name(b, p), (long long)d[p].next.games,
                     (long long)d[p].next.wins, total);
    at += w > 0 ? (size_t)w : 0;
  }
}

static const char *first_reason(const struct batch *b) {
  if (batch_rejected_count(b) == 0)
    return NULL;
  const char *id, *item, *reason, *json;
  batch_rejected(b, 0, &id, &item, &reason, &json);
  return reason;
}

#define BELOW_ZERO "\x01"
#define TOO_BIG "\x02"
#define FULL "\x03"
#define EXCLUDED "applied whole or not at all"

/* The reason text a case expects (a marker for the domain's own texts). */
static const char *reason_text(const char *want) {
  if (strcmp(want, BELOW_ZERO) == 0)
    return stats_apply_reason(TS_ERR_INVALID);
  if (strcmp(want, TOO_BIG) == 0)
    return stats_apply_reason(TS_ERR_RANGE);
  if (strcmp(want, FULL) == 0)
    return stats_reason_bookkeeping_full;
  return want;
}

#define MAX38 "99999999999999999999999999999999999999"

/* A batch decided against a store: the records' outcomes (A applied, H
 * applied and held for an open backfill, D duplicate, S skipped, R
 * rejected) and the changed players' next stats. */
struct decide_case {
  const char *name, *stored, *applied, *room, *body;
  const char *outcomes, *next;
  const char *reason; /* in the first rejected record's reason */
};

static void check_cases(const struct decide_case *cases, size_t count,
                        bool backfilling) {
  for (size_t i = 0; i < count; i++) {
    struct batch *b = load(cases[i].body);
    struct fake_store f = {.stored = cases[i].stored,
                           .applied = cases[i].applied,
                           .room = cases[i].room,
                           .b = b,
                           .fail = TS_OK,
                           .backfilling = backfilling};
    const struct decide_view v = view_of(&f);
    size_t n = batch_player_count(b);
    struct decide_player *d = calloc(n ? n : 1, sizeof *d);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    /* A held record is an applied one, told apart by the batch's count. */
    char want_outcomes[32];
    size_t want_held = 0;
    snprintf(want_outcomes, sizeof want_outcomes, "%s", cases[i].outcomes);
    for (char *c = want_outcomes; *c; c++)
      if (*c == 'H') {
        *c = 'A';
        want_held++;
      }
    /* Twice: a retried attempt decides again from scratch, the same. */
    for (int round = 0; round < 2; round++) {
      enum ts_status st = batch_decide(b, &v, d);
      char got[32], next[256];
      outcomes_of(b, got, sizeof got);
      next_of(b, d, next, sizeof next);
      struct batch_counts counts;
      batch_counts(b, &counts);
      TS_CHECK_CASE(st == TS_OK, cases[i].name, "batch_decide: %s",
                    ts_status_name(st));
      TS_CHECK_CASE(strcmp(got, want_outcomes) == 0 && counts.held == want_held,
                    cases[i].name, "records %s, %zu held; want %s (round %d)",
                    got, counts.held, cases[i].outcomes, round);
      TS_CHECK_CASE(strcmp(next, cases[i].next) == 0, cases[i].name,
                    "next \"%s\", want \"%s\" (round %d)", next, cases[i].next,
                    round);
      const char *reason = first_reason(b);
      const char *want = cases[i].reason ? reason_text(cases[i].reason) : NULL;
      TS_CHECK_CASE(want ? reason && strstr(reason, want) : !reason,
                    cases[i].name, "reason \"%s\", want it to hold \"%s\"",
                    reason ? reason : "(none)", want ? want : "(none)");
    }
    free(d);
    batch_free(b);
  }
}

static void test_decision_follows_the_rules_for_every_record(void) {
  static const struct decide_case cases[] = {
      {"a new player's first game is applied", "", "", "",
       "[" REC("e1", "INSERT", NEW(PS("bob") SC("10") WIN)) "]", "A",
       "bob=1/1/10", NULL},
      {"a game adds to what is stored", "bob=2/1/13", "", "",
       "[" REC("e1", "INSERT", NEW(PS("bob") SC("7.5") LOSS)) "]", "A",
       "bob=3/1/20.5", NULL},
      {"an eventID the store applied is a duplicate", "bob=1/0/10", "bob:e1",
       "", "[" REC("e1", "INSERT", NEW(PS("bob") SC("10"))) "]", "D", "", NULL},
      {"a repeat in the batch is a duplicate once applied", "", "", "",
       "[" REC("e1", "INSERT", NEW(PS("bob") SC("10") LOSS)) "," REC(
           "e2", "INSERT",
           NEW(PS("bob") SC("1") LOSS)) "," REC("e1", "INSERT",
                                                NEW(PS("bob") SC("10")
                                                        LOSS)) "]",
       "AAD", "bob=2/0/11", NULL},
      {"one eventID for two players counts for both", "", "", "",
       "[" REC("e1", "INSERT", NEW(PS("bob") SC("10"))) "," REC(
           "e1", "INSERT", NEW(PS("carol") SC("5"))) "]",
       "AA", "bob=1/0/10 carol=1/0/5", NULL},
      {"a repeat after a poison record counts", "", "", "",
       "[" REC("e1", "INSERT", NEW(PS("bob") SC("x"))) "," REC(
           "e1", "INSERT", NEW(PS("bob") SC("10"))) "]",
       "RA", "bob=1/0/10", "not a number"},
      {"removing a game never counted is rejected", "", "", "",
       "[" REC("e1", "REMOVE", OLD(PS("bob") SC("10"))) "]", "R", "",
       BELOW_ZERO},
      {"a MODIFY within one player applies the difference", "bob=1/0/10", "",
       "",
       "[" REC(
           "e1", "MODIFY",
           OLD(PS("bob") SC("10") LOSS) "," NEW(PS("bob") SC("15") WIN)) "]",
       "A", "bob=1/1/15", NULL},
      {"wins never go below zero", "bob=1/0/10", "", "",
       "[" REC(
           "e1", "MODIFY",
           OLD(PS("bob") SC("10") WIN) "," NEW(PS("bob") SC("10") LOSS)) "]",
       "R", "", BELOW_ZERO},
      {"a move whose old player would go below zero moves nothing", "", "", "",
       "[" REC("e1", "MODIFY",
               OLD(PS("bob") SC("10")) "," NEW(PS("carol") SC("10"))) "]",
       "R", "", BELOW_ZERO},
      {"exclusions reach a fixed point across players", "bob=1/0/10", "", "",
       "[" REC("e1", "REMOVE", OLD(PS("bob") SC("10"))) "," REC(
           "e2", "MODIFY",
           OLD(PS("bob") SC("10")) "," NEW(PS("carol") SC(
               "10"))) "," REC("e3", "REMOVE", OLD(PS("carol") SC("10"))) "]",
       "ARR", "bob=0/0/0", BELOW_ZERO},
      {"a repeat after an excluded entry counts on its own", "", "", "",
       "[" REC("e1", "MODIFY",
               OLD(PS("bob") SC("10")) "," NEW(PS("alice") SC(
                   "10"))) "," REC("e1", "INSERT",
                                   NEW(PS("alice") SC("10"))) "]",
       "RA", "alice=1/0/10", BELOW_ZERO},
      {"the other player of an excluded record says why", "", "", "",
       "[" REC("e1", "MODIFY",
               OLD(PS("alice") SC("10")) "," NEW(PS("bob") SC("10"))) "]",
       "R", "", BELOW_ZERO},
      {"full bookkeeping rejects new eventIDs but not duplicates", "bob=1/0/1",
       "bob:e0", "bob=1",
       "[" REC("e0", "INSERT", NEW(PS("bob") SC("1"))) "," REC(
           "e1", "INSERT",
           NEW(PS("bob") SC("2"))) "," REC("e2", "INSERT",
                                           NEW(PS("bob") SC("3"))) "]",
       "DAR", "bob=2/0/3", FULL},
      {"no room at all rejects the first new eventID", "", "", "bob=0",
       "[" REC("e1", "INSERT", NEW(PS("bob") SC("1"))) "]", "R", "", FULL},
      {"a total beyond 38 digits is rejected", "bob=1/0/" MAX38, "", "",
       "[" REC("e1", "INSERT", NEW(PS("bob") SC("1"))) "]", "R", "", TOO_BIG},
      {"a MODIFY that changes nothing is skipped", "bob=1/0/10", "", "",
       "[" REC("e1", "MODIFY",
               OLD(PS("bob") SC("10")) "," NEW(PS("bob") SC("10"))) "]",
       "S", "", NULL},
      {"an empty batch decides nothing", "", "", "", "[]", "", "", NULL},
  };
  check_cases(cases, sizeof cases / sizeof cases[0], false);
}

/* While a backfill session is open, a delta the stored stats cannot take
 * (below zero) is held: applied, its player written, the stats unchanged
 * (the settlement counts it). Every other rule stands. */
static void test_open_backfill_holds_what_would_go_below_zero(void) {
  static const struct decide_case cases[] = {
      {"removing a game never counted is held", "", "", "",
       "[" REC("e1", "REMOVE", SEQ("1") "," OLD(PS("bob") SC("10"))) "]", "H",
       "bob=0/0/0", NULL},
      {"a held removal leaves the stored stats", "bob=2/0/5", "", "",
       "[" REC("e1", "REMOVE", SEQ("1") "," OLD(PS("bob") SC("10") WIN)) "]",
       "H", "bob=2/0/5", NULL},
      {"a move from an uncounted player is held there and applied here", "", "",
       "",
       "[" REC("e1", "MODIFY",
               SEQ("1") "," OLD(PS("bob") SC("10")) "," NEW(PS("carol")
                                                                SC("10"))) "]",
       "H", "bob=0/0/0 carol=1/0/10", NULL},
      {"a game after a held one adds to the stats", "", "", "",
       "[" REC("e1", "REMOVE", SEQ("1") "," OLD(PS("bob") SC("10"))) "," REC(
           "e2", "INSERT", SEQ("2") "," NEW(PS("bob") SC("4") WIN)) "]",
       "HA", "bob=1/1/4", NULL},
      {"a removal the stats can take is applied as ever", "bob=2/1/15", "", "",
       "[" REC("e1", "REMOVE", SEQ("1") "," OLD(PS("bob") SC("10") WIN)) "]",
       "A", "bob=1/0/5", NULL},
      {"a held eventID sent again is a duplicate", "", "bob:e1", "",
       "[" REC("e1", "REMOVE", SEQ("1") "," OLD(PS("bob") SC("10"))) "]", "D",
       "", NULL},
      {"without a SequenceNumber (Kinesis) it is still rejected", "", "", "",
       "[" REC("e1", "REMOVE", OLD(PS("bob") SC("10"))) "]", "R", "",
       BELOW_ZERO},
      {"a total beyond 38 digits is still rejected", "bob=1/0/" MAX38, "", "",
       "[" REC("e1", "INSERT", SEQ("1") "," NEW(PS("bob") SC("1"))) "]", "R",
       "", TOO_BIG},
      {"full bookkeeping still rejects", "", "", "bob=0",
       "[" REC("e1", "REMOVE", SEQ("1") "," OLD(PS("bob") SC("10"))) "]", "R",
       "", FULL},
      {"a poison record is still rejected", "", "", "",
       "[" REC("e1", "INSERT", SEQ("1") "," NEW(PS("bob") SC("x"))) "]", "R",
       "", "not a number"},
  };
  check_cases(cases, sizeof cases / sizeof cases[0], true);
}

/* The reason names the player whose entry was refused, and the other
 * player of the record gets the exclusion, with the same text whichever
 * store asked. */
static void test_rejected_entries_name_their_player_and_the_rule(void) {
  struct batch *b =
      load("[" REC("e1", "MODIFY",
                   OLD(PS("alice") SC("10")) "," NEW(PS("bob") SC("10"))) "]");
  struct fake_store f = {.b = b, .fail = TS_OK};
  const struct decide_view v = view_of(&f);
  struct decide_player d[2];
  CU_ASSERT_EQUAL_FATAL(batch_decide(b, &v, d), TS_OK);
  char want[512];
  snprintf(want, sizeof want, "player \"alice\": %s",
           stats_apply_reason(TS_ERR_INVALID));
  const char *reason = first_reason(b);
  TS_CHECK_CASE(reason && strcmp(reason, want) == 0, "reason",
                "\"%s\", want \"%s\"", reason ? reason : "(none)", want);
  CU_ASSERT_EQUAL(batch_entry_outcome(b, 1, 0), ENTRY_REJECTED);
  CU_ASSERT_FALSE(d[0].changed || d[1].changed);
  batch_free(b);
}

/* A player written by an earlier attempt keeps its outcomes and is not read
 * again; its rejection still keeps the rest of its record out. */
static void test_settled_player_is_not_read_and_still_excludes(void) {
  static const struct {
    const char *name;
    enum entry_outcome settled_as;
    const char *outcomes;
    bool other_changed;
  } cases[] = {
      {"settled as rejected", ENTRY_REJECTED, "R", false},
      {"settled as applied", ENTRY_APPLIED, "A", true},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct batch *b = load(
        "[" REC("e1", "MODIFY",
                OLD(PS("bob") SC("10")) "," NEW(PS("carol") SC("10"))) "]");
    batch_entry_set_outcome(b, 0, 0, cases[i].settled_as, "settled");
    struct fake_store f = {
        .stored = "bob=0/0/0", .b = b, .fail = TS_OK, .settled = "bob"};
    const struct decide_view v = view_of(&f);
    struct decide_player d[2] = {{0}};
    CU_ASSERT_EQUAL(batch_decide(b, &v, d), TS_OK);
    char got[8];
    outcomes_of(b, got, sizeof got);
    TS_CHECK_CASE(strcmp(got, cases[i].outcomes) == 0, cases[i].name,
                  "record %s, want %s", got, cases[i].outcomes);
    TS_CHECK_CASE(f.reads_of_settled == 0, cases[i].name,
                  "the settled player was read %u times", f.reads_of_settled);
    TS_CHECK_CASE(batch_entry_outcome(b, 0, 0) == cases[i].settled_as,
                  cases[i].name, "the settled outcome changed");
    TS_CHECK_CASE(d[1].changed == cases[i].other_changed, cases[i].name,
                  "carol changed: %d", d[1].changed);
    batch_free(b);
  }
}

/* A batch decided again after a write of it that may have landed (a retry,
 * or a worker finishing a try cut short): what that write applied is found
 * applied, and is still this batch's applied record, counted once. */
static void test_own_earlier_write_found_applied_stays_applied(void) {
  static const struct {
    const char *name;
    bool wrote_before;
    const char *stored, *applied; /* the store when decided again */
    const char *outcomes, *next;
  } cases[] = {
      {"the earlier write landed: applied, nothing to write again", true,
       "bob=2/1/17", "bob:e1 bob:e2", "AD", ""},
      {"the earlier write did not land: applied again", true, "bob=1/0/7",
       "bob:e2", "AD", "bob=2/1/17"},
      {"no earlier write: found applied is a duplicate", false, "bob=2/1/17",
       "bob:e1 bob:e2", "DD", ""},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    /* e1 is new; e2 was applied before the batch (a duplicate at first). */
    struct batch *b =
        load("[" REC("e1", "INSERT", NEW(PS("bob") SC("10") WIN)) "," REC(
            "e2", "INSERT", NEW(PS("bob") SC("7"))) "]");
    struct fake_store first = {
        .stored = "bob=1/0/7", .applied = "bob:e2", .b = b, .fail = TS_OK};
    struct decide_view v = view_of(&first);
    struct decide_player d[1] = {{0}};
    CU_ASSERT_EQUAL(batch_decide(b, &v, d), TS_OK);
    char got[8], next[64];
    outcomes_of(b, got, sizeof got);
    TS_CHECK_CASE(strcmp(got, "AD") == 0, cases[i].name, "first %s", got);
    struct fake_store again = {.stored = cases[i].stored,
                               .applied = cases[i].applied,
                               .b = b,
                               .fail = TS_OK};
    if (cases[i].wrote_before)
      batch_player_note_write(b, 0);
    v = view_of(&again);
    d[0] = (struct decide_player){0};
    CU_ASSERT_EQUAL(batch_decide(b, &v, d), TS_OK);
    outcomes_of(b, got, sizeof got);
    next_of(b, d, next, sizeof next);
    TS_CHECK_CASE(strcmp(got, cases[i].outcomes) == 0, cases[i].name,
                  "records %s, want %s", got, cases[i].outcomes);
    TS_CHECK_CASE(strcmp(next, cases[i].next) == 0, cases[i].name,
                  "next \"%s\", want \"%s\"", next, cases[i].next);
    batch_free(b);
  }
}

/* A store that cannot answer ends the decision with its status: nothing
 * decided on half the facts gets written. */
static void test_view_failure_ends_the_decision_with_its_status(void) {
  static const enum ts_status fails[] = {TS_ERR_IO, TS_ERR_UNAVAILABLE,
                                         TS_ERR_RETRY};
  for (size_t i = 0; i < sizeof fails / sizeof fails[0]; i++) {
    struct batch *b =
        load("[" REC("e1", "INSERT", NEW(PS("bob") SC("10"))) "]");
    struct fake_store f = {.b = b, .fail = fails[i]};
    const struct decide_view v = view_of(&f);
    struct decide_player d[1];
    enum ts_status st = batch_decide(b, &v, d);
    TS_CHECK_CASE(st == fails[i], ts_status_name(fails[i]), "got %s",
                  ts_status_name(st));
    batch_free(b);
  }
}

void suite_decide(void) {
  TS_SUITE("decide", TS_TEST(test_decision_follows_the_rules_for_every_record),
           TS_TEST(test_open_backfill_holds_what_would_go_below_zero),
           TS_TEST(test_rejected_entries_name_their_player_and_the_rule),
           TS_TEST(test_settled_player_is_not_read_and_still_excludes),
           TS_TEST(test_own_earlier_write_found_applied_stays_applied),
           TS_TEST(test_view_failure_ends_the_decision_with_its_status));
}
