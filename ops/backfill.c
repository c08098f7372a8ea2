/* backfill and verify: Scan the source table, decode every item as the
 * INSERT of its game (the decoder ingestion uses), then settle or compare
 * per player. See domain/backfill.h for why the result is exact while the
 * stream goes on. */
#include "backfill.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../common/backoff.h"
#include "../common/bounds.h"
#include "../common/clock.h"
#include "../common/jdoc.h"
#include "../domain/backfill.h"
#include "source.h"

/* Rejected items quoted on stderr; the rest are only counted. */
#define OPS_REJECTS_SHOWN 10u
/* How often the stats are re-read while waiting for the stream. */
#define OPS_SETTLE_POLL_MS 1000u
#define OPS_LIST_PAGE 1000u

struct scan_ctx {
  const struct ops_options *o;
  struct source *src;
  struct backfill_base *base;
  const char *names[8];
  size_t n_names;
  uint64_t items, rejected, keyless;
  FILE *err;
};

/* One item: its key, then its game through batch_new_with() as an INSERT
 * record. */
static enum ts_status on_item(void *cls, const json_t *item) {
  struct scan_ctx *x = cls;
  x->items++;
  char key[BACKFILL_KEY_HEX];
  if (!backfill_item_key(item, x->names, x->n_names, key)) {
    x->keyless++;
    return TS_OK;
  }
  enum ts_status st = TS_ERR_NOMEM;
  struct batch *b = NULL;
  struct jdoc *body;
  json_t *rec = json_pack("{s:s, s:s, s:{s:O}}", "eventID", key, "eventName",
                          "INSERT", "dynamodb", "NewImage", item);
  if (!rec)
    goto out;
  const char *detail = NULL;
  if ((st = jdoc_from_json(rec, &body)) != TS_OK)
    goto out;
  st = batch_new_with(body, &x->o->batch, &b, &detail); /* takes body */
  if (st != TS_OK)
    goto out;
  if (batch_rejected_count(b) > 0) {
    const char *ev, *id, *reason, *text;
    batch_rejected(b, 0, &ev, &id, &reason, &text);
    if (x->rejected++ < OPS_REJECTS_SHOWN) {
      char *item_text = json_dumps(item, JSON_COMPACT | JSON_SORT_KEYS);
      fprintf(x->err, "item not counted (%s): %s\n", reason ? reason : "?",
              item_text ? item_text : "(unprintable)");
      free(item_text);
    }
    goto out;
  }
  if (batch_player_count(b) == 1 && batch_entry_count(b, 0) == 1)
    st = backfill_base_add_item(x->base, key, batch_player_name(b, 0),
                                &batch_entry(b, 0, 0)->delta);
out:
  batch_free(b);
  json_decref(rec);
  return st;
}

/* Scans the source into *base. */
static enum ts_status scan_source(const struct ops_options *o, FILE *err,
                                  struct backfill_base **base,
                                  struct scan_ctx *x) {
  struct source_options so = {.table = o->source_table,
                              .segments = o->segments,
                              .max_rcu = (double)o->max_rcu,
                              .progress = err};
  struct source_stats stats = {0};
  *x = (struct scan_ctx){.o = o, .err = err};
  enum ts_status st = source_open(&so, &x->src);
  if (st != TS_OK) {
    fprintf(err, "%s: cannot read the source table %s: %s\n", "tourney-stats",
            o->source_table, ts_status_name(st));
    goto out;
  }
  x->n_names = source_key_count(x->src);
  if (x->n_names == 0 || x->n_names > 8) {
    st = TS_ERR_INVALID;
    goto out;
  }
  for (size_t i = 0; i < x->n_names; i++)
    x->names[i] = source_key_name(x->src, i);
  if ((st = backfill_base_new(&x->base)) != TS_OK)
    goto out;
  st = source_scan(x->src, on_item, x, &stats);
  if (st != TS_OK)
    fprintf(err, "tourney-stats: the Scan of %s failed: %s\n", o->source_table,
            ts_status_name(st));
  else
    fprintf(err,
            "scan done: %" PRIu64 " items, %zu games of %zu players "
            "counted, %" PRIu64 " not counted (poison), %" PRIu64
            " without a key, %" PRIu64 " pages, %.1f RCU, %.1f s\n",
            x->items, backfill_base_items(x->base),
            backfill_base_players(x->base), x->rejected, x->keyless,
            stats.pages, stats.rcu, stats.seconds);
out:
  source_free(x->src);
  x->src = NULL;
  if (st == TS_OK) {
    *base = x->base;
  } else {
    backfill_base_free(x->base);
    *base = NULL;
  }
  x->base = NULL;
  return st;
}

/* Every stored row, page by page. fn gets each row; rows are freed after. */
static enum ts_status each_row(struct store *s,
                               enum ts_status (*fn)(void *cls,
                                                    const struct player_row *),
                               void *cls) {
  char *after = NULL;
  enum ts_status st = TS_OK;
  for (;;) {
    struct player_row *rows = NULL;
    size_t n = 0;
    bool more = false;
    st = store_list_players(s, after, OPS_LIST_PAGE, &rows, &n, &more);
    if (st != TS_OK)
      break;
    for (size_t i = 0; i < n && st == TS_OK; i++)
      st = fn(cls, &rows[i]);
    free(after);
    after = n > 0 ? strdup(rows[n - 1].player) : NULL;
    player_rows_free(rows, n);
    if (st != TS_OK || !more)
      break;
    if (!after) {
      st = TS_ERR_NOMEM;
      break;
    }
  }
  free(after);
  return st;
}

/* ---- backfill ---- */

struct collect {
  const char *session;
  struct backfill_base *base; /* NULL: only the tracking figures */
  int64_t max_created_s;
  uint64_t keyless;
  bool overflow;
  json_t *stored; /* names of every stored player */
};

static enum ts_status collect_row(void *cls, const struct player_row *row) {
  struct collect *c = cls;
  struct backfill_tracked t;
  backfill_state_tracked(row->session_state, c->session, &t);
  if (t.max_created_s > c->max_created_s)
    c->max_created_s = t.max_created_s;
  c->keyless += t.keyless;
  c->overflow |= t.overflow;
  if (c->stored && json_object_set_new(c->stored, row->player, json_true()))
    return TS_ERR_NOMEM;
  return c->base
             ? backfill_base_add_state(c->base, row->session_state, c->session)
             : TS_OK;
}

struct settle_ctx {
  struct store *s;
  const char *session;
  json_t *settled; /* names done */
  uint64_t players, changed, failed;
  FILE *err;
};

static enum ts_status settle_one(void *cls, const char *player,
                                 const struct stats *base) {
  struct settle_ctx *x = cls;
  bool changed = false;
  enum ts_status st =
      store_session_settle(x->s, player, base, x->session, &changed);
  if (st == TS_ERR_NOT_FOUND) {
    fprintf(x->err, "backfill: another backfill replaced this one; it "
                    "settles the players: stopping\n");
    return st;
  }
  if (st == TS_ERR_INVALID) {
    /* The stream subtracted a game the source never had for this player:
     * say so and go on, the others are still right. */
    fprintf(x->err,
            "backfill: player %s not settled: the result would be "
            "negative\n",
            player);
    x->failed++;
    st = TS_OK;
  }
  if (st != TS_OK)
    return st;
  x->players++;
  x->changed += changed;
  return json_object_set_new(x->settled, player, json_true()) ? TS_ERR_NOMEM
                                                              : TS_OK;
}

/* "bf-<unix seconds>-<12 random hex digits>": two backfills started in the
 * same second by different processes get different ids. */
static void session_id(char out[64]) {
  uint64_t r = backoff_random() & 0xffffffffffffu; /* 48 bits */
  snprintf(out, 64, "bf-%" PRId64 "-%012" PRIx64, (int64_t)time(NULL), r);
}

int ops_backfill(struct store *s, const struct ops_options *o, FILE *err) {
  int rc = OPS_EXIT_FAILED;
  char session[64];
  struct backfill_base *base = NULL;
  struct scan_ctx scan;
  struct collect col = {0};
  struct settle_ctx set = {0};
  bool opened = false;
  enum ts_status st;

  session_id(session);
  if ((st = store_session_open(s, session)) != TS_OK) {
    fprintf(err, "tourney-stats: cannot open a backfill session: %s\n",
            ts_status_name(st));
    goto out;
  }
  opened = true;
  fprintf(err, "backfill: session %s open\n", session);
  if (o->remote_store) {
    /* Every replica learns of the session within the refresh, and a write
     * it began before lasts at most an ingest deadline: after that, every
     * delta applied anywhere is tracked. */
    unsigned wait_ms =
        TS_BACKFILL_SESSION_REFRESH_MS + TS_INGEST_DEADLINE_MS + 500u;
    fprintf(err, "backfill: waiting %u ms until every replica tracks it\n",
            wait_ms);
    clock_sleep_ms(wait_ms);
  }
  if (scan_source(o, err, &base, &scan) != TS_OK)
    goto out;
  int64_t scan_end_s = (int64_t)time(NULL);

  /* The stream must have applied every change the Scan may have seen. */
  col.session = session;
  uint64_t waited_ms = 0;
  for (;;) {
    col.max_created_s = 0;
    if ((st = each_row(s, collect_row, &col)) != TS_OK) {
      fprintf(err, "tourney-stats: cannot read the stats: %s\n",
              ts_status_name(st));
      goto out;
    }
    if (col.max_created_s > scan_end_s)
      break;
    if (waited_ms >= (uint64_t)o->settle_s * 1000u) {
      if (o->settle_s > 0)
        fprintf(err,
                "backfill: no stream record newer than the Scan's end "
                "arrived in %u s: taking the stream as caught up (idle)\n",
                o->settle_s);
      break;
    }
    clock_sleep_ms(OPS_SETTLE_POLL_MS);
    waited_ms += OPS_SETTLE_POLL_MS;
  }
  col = (struct collect){.session = session, .base = base};
  if (!(col.stored = json_object()) ||
      (st = each_row(s, collect_row, &col)) != TS_OK) {
    fprintf(err, "tourney-stats: cannot read the stats\n");
    goto out;
  }
  if (col.overflow) {
    fprintf(err,
            "tourney-stats: a player got more than %u changed games "
            "during the backfill: run it again at a quieter time\n",
            TS_BACKFILL_KEYS_PER_PLAYER);
    goto out;
  }
  if (col.keyless)
    fprintf(err,
            "backfill: warning: %" PRIu64 " stream records had no "
            "dynamodb.Keys; games they changed may be off\n",
            col.keyless);

  set = (struct settle_ctx){
      .s = s, .session = session, .settled = json_object(), .err = err};
  if (!set.settled ||
      (st = backfill_base_each(base, settle_one, &set)) != TS_OK)
    goto settle_failed;
  static const struct stats zero = {0, 0, {0, 0}};
  const char *name;
  json_t *v;
  json_object_foreach(col.stored, name, v) {
    if (json_object_get(set.settled, name))
      continue;
    if ((st = settle_one(&set, name, &zero)) != TS_OK)
      goto settle_failed;
  }
  fprintf(err,
          "backfill done: %" PRIu64 " players settled, %" PRIu64
          " changed, %" PRIu64 " not settled\n",
          set.players, set.changed, set.failed);
  rc = set.failed ? OPS_EXIT_FAILED : OPS_EXIT_OK;
  goto out;
settle_failed:
  fprintf(err,
          "tourney-stats: settling the players failed: %s (run it "
          "again: a backfill is repeatable)\n",
          ts_status_name(st));
out:
  if (opened && store_session_close(s, session) != TS_OK)
    fprintf(err,
            "backfill: could not close session %s (the next backfill "
            "replaces it)\n",
            session);
  backfill_base_free(base);
  json_decref(col.stored);
  json_decref(set.settled);
  return rc;
}

/* ---- verify ---- */

struct expected_ctx {
  json_t *expected; /* name -> [games, wins, "score"] */
};

static json_t *stats_json(const struct stats *s) {
  char t[DECIMAL_TEXT_MAX];
  decimal_format(s->total_score, t);
  return json_pack("{s:I, s:I, s:s}", "games", (json_int_t)s->games, "wins",
                   (json_int_t)s->wins, "total_score", t);
}

static enum ts_status keep_expected(void *cls, const char *player,
                                    const struct stats *base) {
  struct expected_ctx *x = cls;
  json_t *j = stats_json(base);
  return j && json_object_set_new(x->expected, player, j) == 0 ? TS_OK
                                                               : TS_ERR_NOMEM;
}

struct compare_ctx {
  json_t *expected;
  json_t *seen;
  json_t *differ; /* array of reports */
  uint64_t checked;
};

static bool stats_of(const json_t *j, struct stats *out) {
  const char *t = json_string_value(json_object_get(j, "total_score"));
  out->games = json_integer_value(json_object_get(j, "games"));
  out->wins = json_integer_value(json_object_get(j, "wins"));
  return t && decimal_parse(t, strlen(t), &out->total_score) == TS_OK;
}

static enum ts_status report(struct compare_ctx *x, const char *player,
                             const struct stats *stored,
                             const struct stats *want) {
  x->checked++;
  if (stored->games == want->games && stored->wins == want->wins &&
      decimal_cmp(stored->total_score, want->total_score) == 0)
    return TS_OK;
  struct stats d = {
      stored->games - want->games, stored->wins - want->wins, {0, 0}};
  if (decimal_sub(stored->total_score, want->total_score, &d.total_score) !=
      TS_OK)
    d.total_score = decimal_from_int(0);
  json_t *r = json_pack("{s:s, s:o, s:o, s:o}", "player", player, "stored",
                        stats_json(stored), "expected", stats_json(want),
                        "difference", stats_json(&d));
  return r && json_array_append_new(x->differ, r) == 0 ? TS_OK : TS_ERR_NOMEM;
}

static enum ts_status compare_row(void *cls, const struct player_row *row) {
  struct compare_ctx *x = cls;
  struct stats want = {0, 0, {0, 0}};
  const json_t *e = json_object_get(x->expected, row->player);
  if (e && !stats_of(e, &want))
    return TS_ERR_IO;
  if (json_object_set_new(x->seen, row->player, json_true()))
    return TS_ERR_NOMEM;
  return report(x, row->player, &row->stats, &want);
}

static void print_table(FILE *out, const json_t *differ, uint64_t checked) {
  fprintf(out, "%-24s %21s %21s %30s\n", "player", "games stored/source",
          "wins stored/source", "total_score stored/source");
  size_t i;
  const json_t *r;
  json_array_foreach(differ, i, r) {
    const json_t *s = json_object_get(r, "stored");
    const json_t *e = json_object_get(r, "expected");
    char g[48], w[48], t[128];
    snprintf(g, sizeof g, "%" JSON_INTEGER_FORMAT "/%" JSON_INTEGER_FORMAT,
             json_integer_value(json_object_get(s, "games")),
             json_integer_value(json_object_get(e, "games")));
    snprintf(w, sizeof w, "%" JSON_INTEGER_FORMAT "/%" JSON_INTEGER_FORMAT,
             json_integer_value(json_object_get(s, "wins")),
             json_integer_value(json_object_get(e, "wins")));
    snprintf(t, sizeof t, "%s/%s",
             json_string_value(json_object_get(s, "total_score")),
             json_string_value(json_object_get(e, "total_score")));
    fprintf(out, "%-24s %21s %21s %30s\n",
            json_string_value(json_object_get(r, "player")), g, w, t);
  }
  fprintf(out, "%zu of %" PRIu64 " players differ\n", json_array_size(differ),
          checked);
}

int ops_verify(struct store *s, const struct ops_options *o, FILE *out,
               FILE *err) {
  int rc = OPS_EXIT_FAILED;
  struct backfill_base *base = NULL;
  struct scan_ctx scan;
  struct expected_ctx ex = {.expected = json_object()};
  struct compare_ctx cmp = {
      .expected = ex.expected, .seen = json_object(), .differ = json_array()};
  enum ts_status st;
  if (!ex.expected || !cmp.seen || !cmp.differ)
    goto out;
  if (scan_source(o, err, &base, &scan) != TS_OK)
    goto out;
  if ((st = backfill_base_each(base, keep_expected, &ex)) != TS_OK)
    goto out;
  if ((st = each_row(s, compare_row, &cmp)) != TS_OK) {
    fprintf(err, "tourney-stats: cannot read the stats: %s\n",
            ts_status_name(st));
    goto out;
  }
  const char *name;
  json_t *e;
  json_object_foreach(ex.expected, name, e) {
    if (json_object_get(cmp.seen, name))
      continue;
    struct stats want, none = {0, 0, {0, 0}};
    if (!stats_of(e, &want) || report(&cmp, name, &none, &want) != TS_OK)
      goto out;
  }
  if (o->json) {
    json_t *doc = json_pack(
        "{s:I, s:I, s:O}", "checked", (json_int_t)cmp.checked, "differ",
        (json_int_t)json_array_size(cmp.differ), "players", cmp.differ);
    if (!doc || json_dumpf(doc, out, JSON_INDENT(2)) != 0) {
      json_decref(doc);
      goto out;
    }
    fputc('\n', out);
    json_decref(doc);
  } else {
    print_table(out, cmp.differ, cmp.checked);
  }
  rc = json_array_size(cmp.differ) ? OPS_EXIT_DIFFER : OPS_EXIT_OK;
out:
  backfill_base_free(base);
  json_decref(ex.expected);
  json_decref(cmp.seen);
  json_decref(cmp.differ);
  return rc;
}
