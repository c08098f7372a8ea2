/* suite_backfill: a backfill session settles every player at exactly what
 * the source table holds, whatever the order of the Scan, the stream's
 * lag and the deliveries (domain/backfill.h), on the real SQLite store.
 *
 * Each case is a script run against a simulated source table:
 *   put K P W S   item K becomes (player P, winner W, score S): an INSERT
 *                 or MODIFY stream record is queued (OldImage included)
 *   del K         item K is deleted: a REMOVE is queued
 *   deliver       the oldest queued record is applied (store_apply)
 *   swap          the two oldest queued records change places (a stream
 *                 delivering out of order)
 *   expire        every queued record is lost (older than the stream)
 *   drift P       a record for a game the table never had is applied to P
 *   open          a backfill session opens
 *   scan K        the Scan reads item K as it is now
 *   scanall       the Scan reads every item it has not read yet
 *   settle        base from the Scan and the states, every player settled
 *   close         the session closes
 * A settle comes after the stream caught up with the Scan (every record
 * queued before the Scan's end delivered), as ops_backfill waits for.
 * After the script every queued record is delivered, and each player's
 * stats must be the sum of the games the table holds. */
#include <ftw.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "domain/backfill.h"
#include "store/store.h"
#include "unit.h"

#define MAX_ITEMS 16
#define MAX_QUEUE 64

struct item {
  char key[8];
  bool exists, scanned;
  char player[16];
  int win;
  char score[16];
};

struct sim {
  struct item items[MAX_ITEMS];
  size_t n_items;
  json_t *queue[MAX_QUEUE];
  size_t q_head, q_tail;
  unsigned seq;
  struct store *store;
  struct backfill_base *base;
  char session[64];
  char dir[64];
};

static int rm_one(const char *path, const struct stat *sb, int flag,
                  struct FTW *ftw) {
  (void)sb;
  (void)flag;
  (void)ftw;
  return remove(path);
}

static json_t *image(const struct item *it) {
  return json_pack("{s:{s:s}, s:{s:s}, s:{s:s}, s:{s:b}}", "id", "S", it->key,
                   "player", "S", it->player, "score", "N", it->score, "winner",
                   "BOOL", it->win);
}

static struct item *find(struct sim *s, const char *key) {
  for (size_t i = 0; i < s->n_items; i++)
    if (strcmp(s->items[i].key, key) == 0)
      return &s->items[i];
  CU_ASSERT_FATAL(s->n_items < MAX_ITEMS);
  struct item *it = &s->items[s->n_items++];
  memset(it, 0, sizeof *it);
  snprintf(it->key, sizeof it->key, "%s", key);
  return it;
}

static void enqueue(struct sim *s, const char *name, const char *key,
                    json_t *old_img, json_t *new_img) {
  char ev[32], seq[32];
  s->seq++;
  snprintf(ev, sizeof ev, "ev-%u", s->seq);
  snprintf(seq, sizeof seq, "%021u", s->seq);
  json_t *ddb = json_pack("{s:{s:{s:s}}, s:s, s:I}", "Keys", "id", "S", key,
                          "SequenceNumber", seq, "ApproximateCreationDateTime",
                          (json_int_t)1764000000 + s->seq);
  if (old_img)
    json_object_set_new(ddb, "OldImage", old_img);
  if (new_img)
    json_object_set_new(ddb, "NewImage", new_img);
  CU_ASSERT_FATAL(s->q_tail < MAX_QUEUE);
  s->queue[s->q_tail++] = json_pack("{s:s, s:s, s:o}", "eventID", ev,
                                    "eventName", name, "dynamodb", ddb);
}

static void apply_record(struct sim *s, json_t *rec) {
  struct batch *b = NULL;
  CU_ASSERT_FATAL(batch_new(test_doc_of(rec), NULL, &b, NULL) == TS_OK);
  CU_ASSERT(store_apply(s->store, b) == TS_OK);
  CU_ASSERT(batch_rejected_count(b) == 0);
  batch_free(b);
}

static void deliver(struct sim *s) {
  if (s->q_head == s->q_tail)
    return;
  json_t *rec = s->queue[s->q_head++];
  apply_record(s, rec);
  json_decref(rec);
}

static void scan_item(struct sim *s, struct item *it) {
  if (it->scanned || !it->exists)
    return;
  it->scanned = true;
  const char *names[] = {"id"};
  char key[BACKFILL_KEY_HEX];
  json_t *img = image(it);
  CU_ASSERT_FATAL(backfill_item_key(img, names, 1, key));
  struct stats c = {1, it->win, {0, 0}};
  CU_ASSERT_FATAL(decimal_parse(it->score, strlen(it->score), &c.total_score) ==
                  TS_OK);
  CU_ASSERT(backfill_base_add_item(s->base, key, it->player, &c) == TS_OK);
  json_decref(img);
}

struct settle_ctx {
  struct sim *s;
  json_t *named;
};

static enum ts_status settle_one(void *cls, const char *player,
                                 const struct stats *base) {
  struct settle_ctx *x = cls;
  bool changed;
  json_object_set_new(x->named, player, json_true());
  return store_session_settle(x->s->store, player, base, x->s->session,
                              &changed);
}

/* What ops_backfill does: the base from the Scan and every state, each
 * player it names settled at it, every other stored player at zero. */
static void settle(struct sim *s) {
  struct player_row *rows = NULL;
  size_t n = 0;
  bool more = false;
  struct settle_ctx x = {.s = s, .named = json_object()};
  CU_ASSERT_FATAL(store_list_players(s->store, NULL, 1000, &rows, &n, &more) ==
                  TS_OK);
  for (size_t i = 0; i < n; i++)
    CU_ASSERT(backfill_base_add_state(s->base, rows[i].session_state,
                                      s->session) == TS_OK);
  CU_ASSERT(backfill_base_each(s->base, settle_one, &x) == TS_OK);
  static const struct stats zero = {0, 0, {0, 0}};
  for (size_t i = 0; i < n; i++) {
    bool changed;
    if (!json_object_get(x.named, rows[i].player))
      CU_ASSERT(store_session_settle(s->store, rows[i].player, &zero,
                                     s->session, &changed) == TS_OK);
  }
  json_decref(x.named);
  player_rows_free(rows, n);
}

static void step(struct sim *s, const char *line) {
  char op[16] = "", a[16] = "", p[16] = "", sc[16] = "";
  int w = 0;
  sscanf(line, "%15s %15s %15s %d %15s", op, a, p, &w, sc);
  if (strcmp(op, "put") == 0) {
    struct item *it = find(s, a);
    json_t *old = it->exists ? image(it) : NULL;
    bool insert = !it->exists;
    it->exists = true;
    snprintf(it->player, sizeof it->player, "%s", p);
    it->win = w;
    snprintf(it->score, sizeof it->score, "%s", sc);
    enqueue(s, insert ? "INSERT" : "MODIFY", a, old, image(it));
  } else if (strcmp(op, "del") == 0) {
    struct item *it = find(s, a);
    CU_ASSERT_FATAL(it->exists);
    json_t *old = image(it);
    it->exists = false;
    enqueue(s, "REMOVE", a, old, NULL);
  } else if (strcmp(op, "deliver") == 0) {
    deliver(s);
  } else if (strcmp(op, "swap") == 0) {
    CU_ASSERT_FATAL(s->q_tail - s->q_head >= 2);
    json_t *first = s->queue[s->q_head];
    s->queue[s->q_head] = s->queue[s->q_head + 1];
    s->queue[s->q_head + 1] = first;
  } else if (strcmp(op, "expire") == 0) {
    while (s->q_head < s->q_tail)
      json_decref(s->queue[s->q_head++]);
  } else if (strcmp(op, "drift") == 0) {
    char rec[256];
    snprintf(rec, sizeof rec,
             "{\"eventID\":\"ghost-%s\",\"eventName\":\"INSERT\",\"dynamodb\":"
             "{\"Keys\":{\"id\":{\"S\":\"ghost\"}},\"NewImage\":{\"player\":"
             "{\"S\":\"%s\"},\"score\":{\"N\":\"7\"},\"winner\":{\"BOOL\":"
             "true}}}}",
             a, a);
    json_t *j = json_loads(rec, 0, NULL);
    CU_ASSERT_FATAL(j != NULL);
    apply_record(s, j);
    json_decref(j);
  } else if (strcmp(op, "open") == 0) {
    snprintf(s->session, sizeof s->session, "test-%u", s->seq);
    CU_ASSERT(store_session_open(s->store, s->session) == TS_OK);
    CU_ASSERT_FATAL(backfill_base_new(&s->base) == TS_OK);
  } else if (strcmp(op, "scan") == 0) {
    scan_item(s, find(s, a));
  } else if (strcmp(op, "scanall") == 0) {
    for (size_t i = 0; i < s->n_items; i++)
      scan_item(s, &s->items[i]);
  } else if (strcmp(op, "settle") == 0) {
    settle(s);
  } else if (strcmp(op, "close") == 0) {
    CU_ASSERT(store_session_close(s->store, s->session) == TS_OK);
  } else {
    CU_FAIL_FATAL("unknown step");
  }
}

/* Every player's stats against the sum of the table's games. */
static void check_exact(struct sim *s, const char *name) {
  struct player_row *rows = NULL;
  size_t n = 0;
  bool more = false;
  CU_ASSERT_FATAL(store_list_players(s->store, NULL, 1000, &rows, &n, &more) ==
                  TS_OK);
  for (size_t i = 0; i < n; i++) {
    struct stats want = {0, 0, {0, 0}};
    for (size_t k = 0; k < s->n_items; k++) {
      const struct item *it = &s->items[k];
      if (!it->exists || strcmp(it->player, rows[i].player) != 0)
        continue;
      struct decimal d, sum;
      CU_ASSERT_FATAL(decimal_parse(it->score, strlen(it->score), &d) == TS_OK);
      CU_ASSERT_FATAL(decimal_add(want.total_score, d, &sum) == TS_OK);
      want.games++;
      want.wins += it->win;
      want.total_score = sum;
    }
    const struct stats *got = &rows[i].stats;
    char gt[DECIMAL_TEXT_MAX], wt[DECIMAL_TEXT_MAX];
    decimal_format(got->total_score, gt);
    decimal_format(want.total_score, wt);
    TS_CHECK_CASE(got->games == want.games && got->wins == want.wins &&
                      decimal_cmp(got->total_score, want.total_score) == 0,
                  name, "player %s: stored %lld/%lld/%s, table %lld/%lld/%s",
                  rows[i].player, (long long)got->games, (long long)got->wins,
                  gt, (long long)want.games, (long long)want.wins, wt);
  }
  /* and no player of the table is missing */
  for (size_t k = 0; k < s->n_items; k++) {
    bool found = !s->items[k].exists;
    for (size_t i = 0; !found && i < n; i++)
      found = strcmp(rows[i].player, s->items[k].player) == 0;
    TS_CHECK_CASE(found, name, "player %s has no row", s->items[k].player);
  }
  player_rows_free(rows, n);
}

static void run_script(const char *name, const char *const *steps) {
  struct sim *s = calloc(1, sizeof *s);
  CU_ASSERT_FATAL(s != NULL);
  snprintf(s->dir, sizeof s->dir, "/tmp/ts-backfill-XXXXXX");
  CU_ASSERT_FATAL(mkdtemp(s->dir) != NULL);
  char path[128];
  snprintf(path, sizeof path, "%s/stats.db", s->dir);
  struct store_options opt = {.kind = "sqlite", .sqlite_path = path};
  CU_ASSERT_FATAL(store_open(&opt, &s->store) == TS_OK);
  for (size_t i = 0; steps[i]; i++)
    step(s, steps[i]);
  while (s->q_head < s->q_tail)
    deliver(s);
  check_exact(s, name);
  /* After the session: ordinary ingestion stays exact. */
  step(s, "put zz1 ann 1 3.25");
  step(s, "put zz2 bob 0 1");
  step(s, "del zz1");
  while (s->q_head < s->q_tail)
    deliver(s);
  check_exact(s, name);
  store_free(s->store);
  backfill_base_free(s->base);
  for (size_t i = s->q_head; i < s->q_tail; i++)
    json_decref(s->queue[i]);
  nftw(s->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
  free(s);
}

static void test_settles_exactly_whatever_the_stream_lag_and_scan_order(void) {
  /* The history before the session (what the stream never delivered, or
   * delivered before) is the same in every case: */
#define HISTORY                                                                \
  "put a ann 1 10", "put b ann 0 2.5", "put c bob 1 7", "put d cat 0 1",       \
      "deliver", "deliver"
  static const struct {
    const char *name;
    const char *steps[24];
  } cases[] = {
      {"quiet stream: the Scan alone",
       {HISTORY, "deliver", "deliver", "open", "scanall", "settle", "close",
        NULL}},
      {"history older than the stream is counted",
       {"put a ann 1 10", "put b bob 0 4", "expire", "open", "scanall",
        "settle", "close", NULL}},
      {"history partly expired, the rest delivered during the Scan",
       {HISTORY, "expire", "put e eve 1 2", "put a ann 0 10", "open", "scan a",
        "deliver", "scanall", "deliver", "settle", "close", NULL}},
      {"change after the Scan read the item, delivered after",
       {HISTORY, "open", "scanall", "put a ann 0 11", "deliver", "deliver",
        "deliver", "settle", "close", NULL}},
      {"change the Scan saw, delivered only after the Scan (lag)",
       {HISTORY, "deliver", "deliver", "open", "put c bob 0 8", "scanall",
        "deliver", "settle", "close", NULL}},
      {"change the Scan saw, delivered before the Scan read it",
       {HISTORY, "deliver", "deliver", "open", "put c bob 0 8", "deliver",
        "scanall", "settle", "close", NULL}},
      {"game moved to another player, the Scan between the two",
       {HISTORY, "deliver", "deliver", "open", "scan a", "put a bob 1 10",
        "scanall", "deliver", "settle", "close", NULL}},
      {"insert and delete inside the session, Scan in the middle",
       {HISTORY, "deliver", "deliver", "open", "put e dan 1 3", "scanall",
        "del e", "deliver", "deliver", "settle", "close", NULL}},
      {"delete the Scan missed, delivered late",
       {HISTORY, "deliver", "deliver", "open", "del b", "scanall", "deliver",
        "settle", "close", NULL}},
      {"two changes of one item, the Scan between them",
       {HISTORY, "deliver", "deliver", "open", "put d cat 1 2", "deliver",
        "scan d", "put d cat 0 5", "scanall", "deliver", "settle", "close",
        NULL}},
      {"drifted stats are repaired",
       {HISTORY, "deliver", "deliver", "drift ann", "drift eve", "open",
        "scanall", "settle", "close", NULL}},
      {"records delivered after the settle stay exact",
       {HISTORY, "deliver", "deliver", "open", "scanall", "settle",
        "put b ann 1 2.5", "deliver", "put f bob 1 1", "deliver", "close",
        NULL}},
      {"a record of the old history still in flight at the open",
       {HISTORY, "open", "put a ann 0 10", "scan a", "scanall", "deliver",
        "deliver", "deliver", "settle", "close", NULL}},
      /* A store behind the table (an empty one: the history expired): a
       * record that takes a player below zero is held in the session
       * (decide.h rule 3), and settles exactly. */
      {"behind: a delete of a game never counted, before the Scan",
       {HISTORY, "expire", "open", "del a", "deliver", "scanall", "settle",
        "close", NULL}},
      {"behind: a delete of a game never counted, the Scan saw the game",
       {HISTORY, "expire", "open", "scan a", "del a", "deliver", "scanall",
        "settle", "close", NULL}},
      {"behind: a game moved from a player never counted",
       {HISTORY, "expire", "open", "put a bob 1 10", "scanall", "deliver",
        "settle", "close", NULL}},
      {"behind: a win taken from a player with none counted",
       {HISTORY, "expire", "drift ann", "open", "put a ann 0 10", "deliver",
        "scanall", "settle", "close", NULL}},
      {"a delete delivered before its own insert",
       {HISTORY, "deliver", "deliver", "open", "put e dan 1 3", "del e", "swap",
        "deliver", "deliver", "scanall", "settle", "close", NULL}},
  };
#undef HISTORY
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    run_script(cases[i].name, cases[i].steps);
}

static void test_item_key_ignores_order_and_non_key_attributes(void) {
  json_t *a = json_loads("{\"h\":{\"S\":\"x\"},\"r\":{\"N\":\"5\"},"
                         "\"score\":{\"N\":\"1\"}}",
                         0, NULL);
  json_t *keys =
      json_loads("{\"r\":{\"N\":\"5\"},\"h\":{\"S\":\"x\"}}", 0, NULL);
  json_t *other =
      json_loads("{\"h\":{\"S\":\"x5\"},\"r\":{\"N\":\"\"}}", 0, NULL);
  const char *names[] = {"r", "h"};
  char k1[BACKFILL_KEY_HEX], k2[BACKFILL_KEY_HEX], k3[BACKFILL_KEY_HEX];
  CU_ASSERT(backfill_item_key(a, names, 2, k1));
  CU_ASSERT(backfill_item_key(keys, NULL, 0, k2));
  CU_ASSERT(backfill_item_key(other, NULL, 0, k3));
  CU_ASSERT_STRING_EQUAL(k1, k2);
  CU_ASSERT(strcmp(k1, k3) != 0);
  const char *missing[] = {"h", "nope"};
  CU_ASSERT(!backfill_item_key(a, missing, 2, k1));
  json_t *bad = json_loads("{\"h\":{\"L\":[]}}", 0, NULL);
  CU_ASSERT(!backfill_item_key(bad, NULL, 0, k1));
  json_decref(a);
  json_decref(keys);
  json_decref(other);
  json_decref(bad);
}

static void test_state_of_another_session_starts_over(void) {
  struct backfill_tracked t;
  backfill_state_tracked("{\"s\":\"old\",\"g\":3,\"w\":1,\"t\":\"5\",\"c\":9,"
                         "\"o\":false,\"u\":0,\"k\":{}}",
                         "new", &t);
  CU_ASSERT(t.delta.games == 0 && t.max_created_s == 0);
  backfill_state_tracked("{\"s\":\"new\",\"g\":3,\"w\":1,\"t\":\"5\",\"c\":9,"
                         "\"o\":true,\"u\":2,\"k\":{}}",
                         "new", &t);
  CU_ASSERT(t.delta.games == 3 && t.delta.wins == 1 && t.max_created_s == 9 &&
            t.overflow && t.keyless == 2);
  backfill_state_tracked("not json", "new", &t);
  CU_ASSERT(t.delta.games == 0);
}

static void test_a_replaced_session_can_no_longer_settle(void) {
  char dir[64], path[128];
  snprintf(dir, sizeof dir, "/tmp/ts-backfill-XXXXXX");
  CU_ASSERT_FATAL(mkdtemp(dir) != NULL);
  snprintf(path, sizeof path, "%s/stats.db", dir);
  struct store_options opt = {.kind = "sqlite", .sqlite_path = path};
  struct store *s = NULL;
  CU_ASSERT_FATAL(store_open(&opt, &s) == TS_OK);
  struct stats base = {3, 1, {0, 0}};
  bool changed = false;
  CU_ASSERT(store_session_open(s, "first") == TS_OK);
  CU_ASSERT(store_session_open(s, "second") == TS_OK);
  CU_ASSERT(store_session_settle(s, "ann", &base, "first", &changed) ==
            TS_ERR_NOT_FOUND);
  CU_ASSERT(!changed);
  CU_ASSERT(store_session_settle(s, "ann", &base, "second", &changed) == TS_OK);
  CU_ASSERT(changed);
  CU_ASSERT(store_session_close(s, "first") == TS_OK); /* not the open one */
  CU_ASSERT(store_session_settle(s, "ann", &base, "second", &changed) == TS_OK);
  CU_ASSERT(store_session_close(s, "second") == TS_OK);
  CU_ASSERT(store_session_settle(s, "ann", &base, "second", &changed) ==
            TS_ERR_NOT_FOUND);
  store_free(s);
  nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

void suite_backfill(void) {
  TS_SUITE("backfill",
           TS_TEST(test_settles_exactly_whatever_the_stream_lag_and_scan_order),
           TS_TEST(test_item_key_ignores_order_and_non_key_attributes),
           TS_TEST(test_state_of_another_session_starts_over),
           TS_TEST(test_a_replaced_session_can_no_longer_settle));
}
