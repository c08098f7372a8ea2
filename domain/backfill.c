/* Backfill sessions: the per-player session state and the base. See
 * backfill.h for the design.
 *
 * A state is compact JSON:
 *   {"s": session, "g": D.games, "w": D.wins, "t": "D.total_score",
 *    "c": latest ApproximateCreationDateTime, "o": overflowed, "u": keyless,
 *    "k": {key: [seq, old player or null, old win 0|1, "old score"]}} */
#include "backfill.h"

#include <stdlib.h>
#include <string.h>

#include "../common/bounds.h"
#include "../common/digest.h"
#include "../common/jdoc.h"

/* ---- item keys ---- */

static int cmp_names(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

bool backfill_item_key(const json_t *attrs, const char *const *names, size_t n,
                       char out[BACKFILL_KEY_HEX]) {
  out[0] = '\0';
  if (!json_is_object(attrs))
    return false;
  const char *all[8];
  if (!names) { /* dynamodb.Keys: every member */
    n = json_object_size(attrs);
    if (n == 0 || n > 8)
      return false;
    size_t i = 0;
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)attrs, k, v) all[i++] = k;
    (void)v;
  } else {
    if (n == 0 || n > 8)
      return false;
    memcpy(all, names, n * sizeof *all);
  }
  qsort(all, n, sizeof *all, cmp_names);
  /* name, type, value per key attribute, in name order; the digest
   * separates parts with NUL, so a value holding a NUL is refused. */
  const char *parts[24];
  for (size_t i = 0; i < n; i++) {
    const json_t *av = json_object_get(attrs, all[i]);
    if (!json_is_object(av) || json_object_size(av) != 1)
      return false;
    const char *type = NULL;
    const json_t *val = NULL;
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)av, k, v) {
      type = k;
      val = v;
    }
    if (!type || !json_is_string(val) ||
        (strcmp(type, "S") && strcmp(type, "N") && strcmp(type, "B")) ||
        strlen(json_string_value(val)) != json_string_length(val))
      return false;
    parts[3 * i] = all[i];
    parts[3 * i + 1] = type;
    parts[3 * i + 2] = json_string_value(val);
  }
  char hex[DIGEST_HEX_BYTES];
  digest_sha256_hex(parts, 3 * n, hex);
  if (strlen(hex) < BACKFILL_KEY_HEX - 1)
    return false; /* out of memory in OpenSSL */
  memcpy(out, hex, BACKFILL_KEY_HEX - 1);
  out[BACKFILL_KEY_HEX - 1] = '\0';
  return true;
}

/* ---- states ---- */

/* Sequence numbers are decimal digit strings: shorter is lower. "" is
 * unknown and never lower. */
static bool seq_lower(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  if (la == 0 || lb == 0)
    return false;
  return la != lb ? la < lb : strcmp(a, b) < 0;
}

/* Counts in a state stay far from int64's ends (a player has at most
 * ~10^11 games), so that adding a batch's deltas cannot overflow. */
#define STATE_INT_MAX ((int64_t)1 << 62)

static bool get_int(const json_t *o, const char *k, int64_t *out) {
  const json_t *v = json_object_get(o, k);
  if (!json_is_integer(v))
    return false;
  *out = (int64_t)json_integer_value(v);
  return *out > -STATE_INT_MAX && *out < STATE_INT_MAX;
}

static bool get_dec(const json_t *o, const char *k, struct decimal *out) {
  const json_t *v = json_object_get(o, k);
  return json_is_string(v) &&
         decimal_parse(json_string_value(v), json_string_length(v), out) ==
             TS_OK;
}

/* The state of `session` parsed from text, NULL when it is none, another
 * session's, or not a state. */
static json_t *state_load(const char *text, const char *session) {
  if (!text || !*text || !session)
    return NULL;
  json_t *j = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
  const json_t *s = json_object_get(j, "s");
  struct decimal d;
  int64_t i;
  if (!json_is_string(s) || strcmp(json_string_value(s), session) != 0 ||
      !get_int(j, "g", &i) || !get_int(j, "w", &i) || !get_int(j, "c", &i) ||
      !get_int(j, "u", &i) || !get_dec(j, "t", &d) ||
      !json_is_boolean(json_object_get(j, "o")) ||
      !json_is_object(json_object_get(j, "k"))) {
    json_decref(j);
    return NULL;
  }
  return j;
}

static json_t *state_fresh(const char *session) {
  return json_pack("{s:s, s:I, s:I, s:s, s:I, s:b, s:I, s:{}}", "s", session,
                   "g", (json_int_t)0, "w", (json_int_t)0, "t", "0", "c",
                   (json_int_t)0, "o", 0, "u", (json_int_t)0, "k");
}

static int set_int(json_t *o, const char *k, int64_t v) {
  return json_object_set_new(o, k, json_integer((json_int_t)v));
}

static json_t *key_entry(const struct batch_change *ch) {
  if (!ch->has_old)
    return json_pack("[s]", ch->seq ? ch->seq : "");
  char score[DECIMAL_TEXT_MAX];
  decimal_format(ch->old.total_score, score);
  return json_pack("[s, s, I, s]", ch->seq ? ch->seq : "", ch->old_player,
                   (json_int_t)ch->old.wins, score);
}

enum ts_status backfill_fold(const char *stored, const char *session,
                             const struct batch *b, size_t p, char **next) {
  *next = NULL;
  if (!session || !*session)
    return TS_OK;
  enum ts_status st = TS_ERR_NOMEM;
  json_t *j = state_load(stored, session);
  if (!j && !(j = state_fresh(session)))
    return TS_ERR_NOMEM;
  int64_t g = 0, w = 0, c = 0, u = 0;
  struct decimal t;
  get_int(j, "g", &g);
  get_int(j, "w", &w);
  get_int(j, "c", &c);
  get_int(j, "u", &u);
  if (!get_dec(j, "t", &t))
    t = decimal_from_int(0);
  bool overflow = json_is_true(json_object_get(j, "o"));
  json_t *keys = json_object_get(j, "k");
  size_t n = batch_entry_count(b, p);
  for (size_t e = 0; e < n; e++) {
    if (batch_entry_outcome(b, p, e) != ENTRY_APPLIED)
      continue;
    const struct batch_entry *en = batch_entry(b, p, e);
    g += en->delta.games;
    w += en->delta.wins;
    struct decimal sum;
    if (decimal_add(t, en->delta.total_score, &sum) == TS_OK)
      t = sum; /* cannot overflow: |D| never exceeds the stored totals */
    if (en->created_s > c)
      c = en->created_s;
    const struct batch_change *ch = en->change;
    char key[BACKFILL_KEY_HEX];
    json_t *item_keys = NULL;
    if (ch && ch->keys != JDOC_NONE &&
        !(item_keys = jdoc_to_json(ch->doc, ch->keys)))
      goto out;
    bool keyed = item_keys && backfill_item_key(item_keys, NULL, 0, key);
    json_decref(item_keys);
    if (!keyed) {
      u++;
      continue;
    }
    json_t *have = json_object_get(keys, key);
    if (have) {
      const char *hs = json_string_value(json_array_get(have, 0));
      if (!(ch->seq && hs && seq_lower(ch->seq, hs)))
        continue; /* the first record of the item is what counts */
    } else if (json_object_size(keys) >= TS_BACKFILL_KEYS_PER_PLAYER) {
      overflow = true;
      continue;
    }
    json_t *ent = key_entry(ch);
    if (!ent || json_object_set_new(keys, key, ent) != 0)
      goto out;
  }
  char total[DECIMAL_TEXT_MAX];
  decimal_format(t, total);
  if (set_int(j, "g", g) || set_int(j, "w", w) || set_int(j, "c", c) ||
      set_int(j, "u", u) || json_object_set_new(j, "t", json_string(total)) ||
      json_object_set_new(j, "o", json_boolean(overflow)))
    goto out;
  *next = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
  st = *next ? TS_OK : TS_ERR_NOMEM;
out:
  json_decref(j);
  return st;
}

void backfill_state_session(const char *state, char *out, size_t cap) {
  if (cap == 0)
    return;
  out[0] = '\0';
  if (!state || !*state)
    return;
  json_t *j = json_loads(state, 0, NULL);
  const json_t *s = json_object_get(j, "s");
  if (json_is_string(s) && json_string_length(s) < cap)
    memcpy(out, json_string_value(s), json_string_length(s) + 1);
  json_decref(j);
}

void backfill_state_tracked(const char *state, const char *session,
                            struct backfill_tracked *out) {
  memset(out, 0, sizeof *out);
  out->delta.total_score = decimal_from_int(0);
  json_t *j = state_load(state, session);
  if (!j)
    return;
  int64_t u = 0;
  get_int(j, "g", &out->delta.games);
  get_int(j, "w", &out->delta.wins);
  get_int(j, "c", &out->max_created_s);
  get_int(j, "u", &u);
  out->keyless = (uint64_t)u;
  get_dec(j, "t", &out->delta.total_score);
  out->overflow = json_is_true(json_object_get(j, "o"));
  json_decref(j);
}

enum ts_status backfill_settled(const struct stats *base, const char *state,
                                const char *session, struct stats *out) {
  struct backfill_tracked t;
  backfill_state_tracked(state, session, &t);
  *out = *base;
  return stats_apply(out, &t.delta);
}

/* ---- the base ---- */

struct contrib {
  size_t player; /* index in names */
  struct stats c;
};

struct touched {
  char *seq;
  bool has_old;
  struct contrib old;
};

struct backfill_base {
  json_t *player_index; /* name -> index */
  char **names;
  size_t n_names, cap_names;
  json_t *item_index; /* key -> index in items */
  struct contrib *items;
  size_t n_items, cap_items;
  json_t *touched_index; /* key -> index in touched */
  struct touched *touched;
  size_t n_touched, cap_touched;
};

enum ts_status backfill_base_new(struct backfill_base **out) {
  struct backfill_base *bb = calloc(1, sizeof *bb);
  *out = NULL;
  if (!bb)
    return TS_ERR_NOMEM;
  bb->player_index = json_object();
  bb->item_index = json_object();
  bb->touched_index = json_object();
  if (!bb->player_index || !bb->item_index || !bb->touched_index) {
    backfill_base_free(bb);
    return TS_ERR_NOMEM;
  }
  *out = bb;
  return TS_OK;
}

void backfill_base_free(struct backfill_base *bb) {
  if (!bb)
    return;
  json_decref(bb->player_index);
  json_decref(bb->item_index);
  json_decref(bb->touched_index);
  for (size_t i = 0; i < bb->n_names; i++)
    free(bb->names[i]);
  free(bb->names);
  free(bb->items);
  for (size_t i = 0; i < bb->n_touched; i++)
    free(bb->touched[i].seq);
  free(bb->touched);
  free(bb);
}

static bool grow(void **arr, size_t *cap, size_t n, size_t size) {
  if (n < *cap)
    return true;
  size_t nc = *cap ? 2 * *cap : 64;
  void *g = realloc(*arr, nc * size);
  if (!g)
    return false;
  *arr = g;
  *cap = nc;
  return true;
}

static enum ts_status player_of(struct backfill_base *bb, const char *name,
                                size_t *out) {
  const json_t *known = json_object_get(bb->player_index, name);
  if (known) {
    *out = (size_t)json_integer_value(known);
    return TS_OK;
  }
  if (!grow((void **)&bb->names, &bb->cap_names, bb->n_names,
            sizeof *bb->names))
    return TS_ERR_NOMEM;
  char *copy = strdup(name);
  if (!copy)
    return TS_ERR_NOMEM;
  if (json_object_set_new(bb->player_index, name,
                          json_integer((json_int_t)bb->n_names)) != 0) {
    free(copy);
    return TS_ERR_NOMEM;
  }
  bb->names[bb->n_names] = copy;
  *out = bb->n_names++;
  return TS_OK;
}

enum ts_status backfill_base_add_item(struct backfill_base *bb, const char *key,
                                      const char *player,
                                      const struct stats *contribution) {
  if (json_object_get(bb->item_index, key))
    return TS_OK;
  size_t p;
  enum ts_status st = player_of(bb, player, &p);
  if (st != TS_OK)
    return st;
  if (!grow((void **)&bb->items, &bb->cap_items, bb->n_items,
            sizeof *bb->items))
    return TS_ERR_NOMEM;
  if (json_object_set_new(bb->item_index, key,
                          json_integer((json_int_t)bb->n_items)) != 0)
    return TS_ERR_NOMEM;
  bb->items[bb->n_items++] = (struct contrib){p, *contribution};
  return TS_OK;
}

enum ts_status backfill_base_add_state(struct backfill_base *bb,
                                       const char *state, const char *session) {
  json_t *j = state_load(state, session);
  if (!j)
    return TS_OK;
  enum ts_status st = TS_OK;
  const char *key;
  json_t *ent;
  json_object_foreach(json_object_get(j, "k"), key, ent) {
    const char *seq = json_string_value(json_array_get(ent, 0));
    if (!seq)
      continue;
    struct touched t = {.seq = NULL, .has_old = json_array_size(ent) == 4};
    if (t.has_old) {
      const char *player = json_string_value(json_array_get(ent, 1));
      const json_t *win = json_array_get(ent, 2);
      const char *score = json_string_value(json_array_get(ent, 3));
      if (!player || !json_is_integer(win) || !score ||
          decimal_parse(score, strlen(score), &t.old.c.total_score) != TS_OK)
        continue; /* not written by this code */
      t.old.c.games = 1;
      t.old.c.wins = json_integer_value(win) ? 1 : 0;
      if ((st = player_of(bb, player, &t.old.player)) != TS_OK)
        break;
    }
    const json_t *known = json_object_get(bb->touched_index, key);
    if (known) {
      struct touched *have = &bb->touched[json_integer_value(known)];
      if (!seq_lower(seq, have->seq))
        continue;
      char *copy = strdup(seq);
      if (!copy) {
        st = TS_ERR_NOMEM;
        break;
      }
      free(have->seq);
      t.seq = copy;
      *have = t;
      continue;
    }
    if (!grow((void **)&bb->touched, &bb->cap_touched, bb->n_touched,
              sizeof *bb->touched) ||
        !(t.seq = strdup(seq))) {
      st = TS_ERR_NOMEM;
      break;
    }
    if (json_object_set_new(bb->touched_index, key,
                            json_integer((json_int_t)bb->n_touched)) != 0) {
      free(t.seq);
      st = TS_ERR_NOMEM;
      break;
    }
    bb->touched[bb->n_touched++] = t;
  }
  json_decref(j);
  return st;
}

static enum ts_status add_to(struct stats *s, const struct stats *c) {
  s->games += c->games;
  s->wins += c->wins;
  return decimal_add(s->total_score, c->total_score, &s->total_score);
}

enum ts_status
backfill_base_each(const struct backfill_base *bb,
                   enum ts_status (*fn)(void *cls, const char *player,
                                        const struct stats *base),
                   void *cls) {
  struct stats *sum = calloc(bb->n_names ? bb->n_names : 1, sizeof *sum);
  if (!sum)
    return TS_ERR_NOMEM;
  enum ts_status st = TS_OK;
  const char *key;
  const json_t *v;
  json_object_foreach(bb->item_index, key, v) {
    if (json_object_get(bb->touched_index, key))
      continue; /* the first tracked record's OldImage stands for it */
    const struct contrib *c = &bb->items[json_integer_value(v)];
    if ((st = add_to(&sum[c->player], &c->c)) != TS_OK)
      goto out;
  }
  for (size_t i = 0; i < bb->n_touched; i++)
    if (bb->touched[i].has_old && (st = add_to(&sum[bb->touched[i].old.player],
                                               &bb->touched[i].old.c)) != TS_OK)
      goto out;
  for (size_t p = 0; p < bb->n_names && st == TS_OK; p++)
    if (!stats_is_zero(&sum[p]))
      st = fn(cls, bb->names[p], &sum[p]);
out:
  free(sum);
  return st;
}

size_t backfill_base_items(const struct backfill_base *bb) {
  return bb->n_items;
}

size_t backfill_base_players(const struct backfill_base *bb) {
  return bb->n_names;
}
