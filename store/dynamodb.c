/* The DynamoDB backend: the production store, shared by stateless replicas.
 *
 * One item per player in the stats table (key `player` S) holding the
 * seed's attributes (games, wins, avg_score N, win_percent S "66.67%"),
 * plus total_score (exact), updated_at, `version` (optimistic concurrency)
 * and `applied`: the eventIDs applied to this player within the retention,
 * which makes delivery exactly-once. To keep a busy player's item far below
 * DynamoDB's 400 KB, an eventID is kept as a 96-bit digest (12 bytes; a
 * false match needs ~2^48 events) in a binary set per hour of application:
 * applied = {"<unix hour>": {"BS": [digest, ...]}, ...}; whole hours fall
 * out past the retention. Past TS_MAX_APPLIED_PER_PLAYER digests a record
 * is rejected (dead-lettered) rather than failing every later batch.
 *
 * store_apply, through store_run_tx:
 *   1. BatchGetItem (strongly consistent) of every player still pending;
 *   2. batch_decide() (domain/decide.h) on what was read: an eventID whose
 *      digest is in `applied` is a duplicate, old hours are dropped first,
 *      the room left is TS_MAX_APPLIED_PER_PLAYER minus the digests held;
 *   3. PutItem every changed player in parallel, conditioned on the version
 *      read (attribute_not_exists(player) for a new one);
 *   4. a failed condition leaves that player pending and the attempt
 *      returns TS_ERR_RETRY: the runner re-reads it and decides again
 *      (players already written are settled: their outcomes stand).
 * A player's write is atomic, so a batch cut short by the deadline (503)
 * leaves some players applied and others not; the resend then finds the
 * applied ones' eventIDs and counts them as duplicates.
 *
 * Rejected records go to a second table (TS_DEAD_LETTER_TABLE, key `id`,
 * batch_rejected_id(): a digest of the record as received and its reason),
 * written once every rejection is final. */
#include <jansson.h>
#include <openssl/evp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../aws/creds.h"
#include "../aws/ddb.h"
#include "../common/bounds.h"
#include "../common/log.h"
#include "rank_cache.h"
#include "store_impl.h"

/* Keys in one BatchGetItem call (DynamoDB's limit). */
#define DY_BATCH_GET_MAX 100
/* Deadline for reads (get, list, ping). */
#define DY_READ_DEADLINE_MS 3000u
/* A dead-letter page filtered by reason reads this many items per Scan
 * call, and stops scanning after this long (its next page goes on). */
#define DY_SCAN_PAGE 1000u
#define DY_LIST_BUDGET_MS 1000u
/* Dead-letter records are cut to stay far below the 400 KB item limit. */
#define DY_MAX_RECORD_TEXT (256u * 1024u)
/* create-table waits this long for ACTIVE. */
#define DY_CREATE_WAIT_MS 60000u

struct dy {
  struct aws_creds_provider *creds;
  struct ddb_client *client;
  char *table;
  char *dl_table;
  atomic_uint apply_deadline_ms;
  struct rank_cache *board; /* leaderboards: top-K snapshot, see README */
};

/* ---- attribute helpers ---- */

static json_t *attr_s(const char *s) { return json_pack("{s:s}", "S", s); }

static json_t *attr_n_text(const char *text) {
  return json_pack("{s:s}", "N", text);
}

static json_t *attr_n_int(int64_t v) {
  char text[24];
  snprintf(text, sizeof text, "%lld", (long long)v);
  return attr_n_text(text);
}

static json_t *attr_n_dec(struct decimal d) {
  char text[DECIMAL_TEXT_MAX];
  decimal_format(d, text);
  return attr_n_text(text);
}

/* The text of attribute `name` of type `type` ("S", "N"), or NULL. */
static const char *attr_text(const json_t *item, const char *name,
                             const char *type) {
  json_t *a = json_object_get(item, name);
  return json_string_value(json_object_get(a, type));
}

static bool parse_int64(const char *text, int64_t *out) {
  struct decimal d;
  if (!text || decimal_parse(text, strlen(text), &d) != TS_OK || d.scale != 0 ||
      d.coef > INT64_MAX || d.coef < INT64_MIN)
    return false;
  *out = (int64_t)d.coef;
  return true;
}

/* Frees n calls and the requests they borrow (either array may be NULL). */
static void calls_free(struct ddb_call *calls, json_t **reqs, size_t n) {
  for (size_t c = 0; c < n; c++) {
    if (calls)
      ddb_call_clear(&calls[c]);
    if (reqs)
      json_decref(reqs[c]);
  }
  free(calls);
  free(reqs);
}

/* What a finished call means for the request (DDB_CONDITION_FAILED is the
 * caller's to handle). A table that is not there (ResourceNotFoundException:
 * deleted, or DynamoDB Local restarted empty) is an outage an operator
 * mends with create-table, not a fault of the request: 503, so that the
 * sender retries, with the table named in the log. Any other refusal is
 * logged and TS_ERR_IO. */
static enum ts_status call_status(const char *table,
                                  const struct ddb_call *call) {
  switch (call->outcome) {
  case DDB_DONE: return TS_OK;
  case DDB_GAVE_UP: return TS_ERR_UNAVAILABLE;
  default: break;
  }
  bool missing = strcmp(call->error_type, "ResourceNotFoundException") == 0;
  log_event(LOG_ERROR,
            missing ? "DynamoDB table is missing (run create-table)"
                    : "DynamoDB refused a call",
            "{s:s, s:s, s:s, s:s}", "op", call->op, "table", table, "error",
            call->error_type, "message", call->error_message);
  return missing ? TS_ERR_UNAVAILABLE : TS_ERR_IO;
}

/* ---- one player's state across attempts ---- */

struct pstate {
  size_t p;     /* player index in the batch */
  bool pending; /* not yet written (or nothing to write) */
  bool read;    /* item below is current */
  bool exists;
  bool has_version;
  int64_t version;
  char *seed_games; /* for items without version: the condition */
  char *seed_avg;
  struct stats cur;
  json_t *applied; /* object digest (base64) -> integer unix hour */
  /* What this process wrote, for its leaderboard snapshot. */
  bool wrote;
  struct stats wrote_stats;
  int64_t wrote_version;
  char wrote_at[32];
};

static void pstate_reset_item(struct pstate *ps) {
  free(ps->seed_games);
  free(ps->seed_avg);
  ps->seed_games = ps->seed_avg = NULL;
  json_decref(ps->applied);
  ps->applied = NULL;
  ps->exists = ps->has_version = false;
  ps->version = 0;
  memset(&ps->cur, 0, sizeof ps->cur);
}

/* Takes the item read from the table (NULL: no item) into ps. Items the
 * original Lambda wrote have no total_score: it is adopted as
 * avg_score * games (exact for the Lambda's integer averages; its average
 * was not a true mean, so this is the best that can be recovered). */
static enum ts_status pstate_take_item(struct pstate *ps, const char *player,
                                       const json_t *item, bool for_write) {
  pstate_reset_item(ps);
  ps->read = true;
  ps->applied = json_object();
  if (!ps->applied)
    return TS_ERR_NOMEM;
  if (!item)
    return TS_OK;
  ps->exists = true;
  const char *games = attr_text(item, "games", "N");
  const char *wins = attr_text(item, "wins", "N");
  const char *total = attr_text(item, "total_score", "N");
  const char *avg = attr_text(item, "avg_score", "N");
  const char *version = attr_text(item, "version", "N");
  if (!parse_int64(games, &ps->cur.games) ||
      (wins && !parse_int64(wins, &ps->cur.wins)))
    goto corrupt;
  if (version) {
    if (!parse_int64(version, &ps->version))
      goto corrupt;
    ps->has_version = true;
  } else {
    ps->seed_games = strdup(games);
    ps->seed_avg = avg ? strdup(avg) : NULL;
    if (!ps->seed_games || (avg && !ps->seed_avg))
      return TS_ERR_NOMEM;
  }
  if (total) {
    if (decimal_parse(total, strlen(total), &ps->cur.total_score) != TS_OK)
      goto corrupt;
  } else {
    struct decimal a = {0, 0};
    if (avg && decimal_parse(avg, strlen(avg), &a) != TS_OK)
      goto corrupt;
    if (decimal_mul_int(a, ps->cur.games, &ps->cur.total_score) != TS_OK)
      goto corrupt;
    if (for_write) /* once: the write that follows stores total_score */
      log_event(LOG_INFO, "adopting an item written by the original Lambda",
                "{s:s, s:s, s:s?}", "player", player, "games", games,
                "avg_score", avg);
  }
  json_t *map = json_object_get(json_object_get(item, "applied"), "M");
  const char *hour_text;
  json_t *v;
  json_object_foreach(map, hour_text, v) {
    int64_t hour;
    json_t *set = json_object_get(v, "BS");
    if (!parse_int64(hour_text, &hour) || !json_is_array(set))
      goto corrupt;
    size_t i;
    json_t *d;
    json_array_foreach(set, i, d) {
      if (!json_is_string(d))
        goto corrupt;
      if (json_object_set_new(ps->applied, json_string_value(d),
                              json_integer(hour)) != 0)
        return TS_ERR_NOMEM;
    }
  }
  return TS_OK;
corrupt:
  log_event(LOG_ERROR, "stored item is not a stats item", "{s:s}", "player",
            player);
  return TS_ERR_IO;
}

/* The base64 text of the first 12 bytes of SHA-256(event_id): 16 chars. */
static bool event_digest(const char *event_id, char out[17]) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  if (!EVP_Digest(event_id, strlen(event_id), md, &md_len, EVP_sha256(),
                  NULL) ||
      md_len < 12)
    return false;
  return EVP_EncodeBlock((unsigned char *)out, md, 12) == 16;
}

/* Drops the digests of hours past the retention: what counts as applied,
 * and the room left, depend only on the retention. */
static enum ts_status pstate_drop_expired(struct pstate *ps, int64_t now_s) {
  /* Keep whole hours that may still hold a digest within the retention. */
  int64_t oldest_hour = (now_s - (int64_t)TS_DEDUP_RETENTION_S) / 3600;
  const char *id;
  json_t *v;
  void *tmp;
  json_object_foreach_safe(ps->applied, tmp, id, v) {
    if (json_integer_value(v) < oldest_hour &&
        json_object_del(ps->applied, id) != 0)
      return TS_ERR_IO;
  }
  return TS_OK;
}

/* ---- the decision's view of the items read ---- */

static enum ts_status view_stats(void *cls, size_t p, struct stats *out) {
  const struct pstate *ps = cls;
  *out = ps[p].cur;
  return TS_OK;
}

static enum ts_status view_applied(void *cls, size_t p, const char *event_id,
                                   bool *seen) {
  const struct pstate *ps = cls;
  char digest[17];
  if (!event_digest(event_id, digest))
    return TS_ERR_NOMEM;
  *seen = json_object_get(ps[p].applied, digest) != NULL;
  return TS_OK;
}

static size_t view_room(void *cls, size_t p) {
  const struct pstate *ps = cls;
  size_t held = json_object_size(ps[p].applied);
  return held < TS_MAX_APPLIED_PER_PLAYER ? TS_MAX_APPLIED_PER_PLAYER - held
                                          : 0;
}

/* Written by an earlier attempt (or nothing to write): outcomes final. */
static bool view_settled(void *cls, size_t p) {
  const struct pstate *ps = cls;
  return !ps[p].pending;
}

/* ---- writes ---- */

/* The `applied` attribute: the digests kept plus those of the entries
 * applied now, one binary set per hour. NULL on NOMEM: a digest missing
 * from the item would be applied without its exactly-once mark. */
static json_t *applied_attribute(const struct batch *b, const struct pstate *ps,
                                 int64_t now_s) {
  json_t *all = json_deep_copy(ps->applied), *map = json_object();
  size_t n = batch_entry_count(b, ps->p);
  bool ok = all && map;
  for (size_t e = 0; ok && e < n; e++) {
    char digest[17];
    if (batch_entry_outcome(b, ps->p, e) != ENTRY_APPLIED)
      continue;
    ok = event_digest(batch_entry(b, ps->p, e)->event_id, digest) &&
         json_object_set_new(all, digest, json_integer(now_s / 3600)) == 0;
  }
  const char *id;
  json_t *v;
  json_object_foreach(ok ? all : NULL, id, v) {
    char hour[24];
    snprintf(hour, sizeof hour, "%lld", (long long)json_integer_value(v));
    json_t *bucket = json_object_get(map, hour);
    if (!bucket && (!(bucket = json_pack("{s:[]}", "BS")) ||
                    json_object_set_new(map, hour, bucket) != 0))
      bucket = NULL;
    ok = bucket && json_array_append_new(json_object_get(bucket, "BS"),
                                         json_string(id)) == 0;
    if (!ok)
      break;
  }
  json_decref(all);
  if (!ok) {
    json_decref(map);
    return NULL;
  }
  return map;
}

/* The PutItem of a changed player: the stats the decision reached, the
 * applied eventIDs, conditioned on the item being as it was read. */
static enum ts_status player_put(struct dy *dy, const struct batch *b,
                                 const struct pstate *ps,
                                 const struct stats *next, int64_t now_s,
                                 const char *now_utc, json_t **put) {
  *put = NULL;
  struct decimal avg, pct;
  if (stats_derive(next, &avg, &pct) != TS_OK)
    return TS_ERR_IO;
  char pct_text[DECIMAL_TEXT_MAX + 1];
  size_t len = decimal_format_fixed(pct, 2, pct_text);
  pct_text[len] = '%';
  pct_text[len + 1] = '\0';
  json_t *map = applied_attribute(b, ps, now_s);
  if (!map)
    return TS_ERR_NOMEM;
  json_t *item = json_pack(
      "{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:{s:o}}", "player",
      attr_s(batch_player_name(b, ps->p)), "games", attr_n_int(next->games),
      "wins", attr_n_int(next->wins), "total_score",
      attr_n_dec(next->total_score), "avg_score", attr_n_dec(avg),
      "win_percent", attr_s(pct_text), "updated_at", attr_s(now_utc), "version",
      attr_n_int(ps->has_version ? ps->version + 1 : 1), "applied", "M", map);
  if (!item)
    return TS_ERR_NOMEM;

  json_t *req = NULL;
  if (!ps->exists) {
    req = json_pack("{s:s, s:o, s:s, s:{s:s}}", "TableName", dy->table, "Item",
                    item, "ConditionExpression", "attribute_not_exists(#p)",
                    "ExpressionAttributeNames", "#p", "player");
  } else if (ps->has_version) {
    req = json_pack("{s:s, s:o, s:s, s:{s:s}, s:{s:o}}", "TableName", dy->table,
                    "Item", item, "ConditionExpression", "#v = :v",
                    "ExpressionAttributeNames", "#v", "version",
                    "ExpressionAttributeValues", ":v", attr_n_int(ps->version));
  } else {
    /* An item of the original Lambda: unchanged since it was read. */
    req = json_pack("{s:s, s:o, s:s, s:{s:s, s:s, s:s}, s:{s:o, s:o}}",
                    "TableName", dy->table, "Item", item, "ConditionExpression",
                    "attribute_not_exists(#v) AND #g = :g AND #a = :a",
                    "ExpressionAttributeNames", "#v", "version", "#g", "games",
                    "#a", "avg_score", "ExpressionAttributeValues", ":g",
                    attr_n_text(ps->seed_games), ":a",
                    attr_n_text(ps->seed_avg ? ps->seed_avg : "0"));
  }
  if (!req)
    return TS_ERR_NOMEM;
  *put = req;
  return TS_OK;
}

/* ---- reads ---- */

/* A BatchGetItem of the players todo[from..to) (strongly consistent). */
static json_t *batch_get_request(const struct dy *dy, const struct batch *b,
                                 const struct pstate *ps, const size_t *todo,
                                 size_t from, size_t to) {
  json_t *keys = json_array();
  for (size_t k = from; keys && k < to; k++)
    if (json_array_append_new(keys, json_pack("{s:o}", "player",
                                              attr_s(batch_player_name(
                                                  b, ps[todo[k]].p)))) != 0) {
      json_decref(keys);
      keys = NULL;
    }
  if (!keys)
    return NULL;
  return json_pack("{s:{s:{s:o, s:b}}}", "RequestItems", dy->table, "Keys",
                   keys, "ConsistentRead", 1);
}

/* Takes a BatchGetItem answer for todo[from..to): each item returned goes
 * to its player (found through `index`, name -> position in ps); a player
 * neither returned nor among UnprocessedKeys has no item. */
static enum ts_status take_batch_get(const struct dy *dy, const struct batch *b,
                                     struct pstate *ps, const json_t *index,
                                     const size_t *todo, size_t from, size_t to,
                                     const json_t *response) {
  enum ts_status st = TS_OK;
  const json_t *items =
      json_object_get(json_object_get(response, "Responses"), dy->table);
  size_t k;
  json_t *item;
  json_array_foreach(items, k, item) {
    const char *name = attr_text(item, "player", "S");
    json_t *at = name ? json_object_get(index, name) : NULL;
    struct pstate *p = at ? &ps[json_integer_value(at)] : NULL;
    if (p && !p->read && (st = pstate_take_item(p, name, item, true)) != TS_OK)
      return st;
  }
  json_t *later = json_object();
  if (!later)
    return TS_ERR_NOMEM;
  const json_t *unprocessed = json_object_get(
      json_object_get(json_object_get(response, "UnprocessedKeys"), dy->table),
      "Keys");
  json_array_foreach(unprocessed, k, item) {
    const char *name = attr_text(item, "player", "S");
    if (name && json_object_set_new(later, name, json_true()) != 0)
      st = TS_ERR_NOMEM;
  }
  for (k = from; st == TS_OK && k < to; k++) {
    struct pstate *p = &ps[todo[k]];
    const char *name = batch_player_name(b, p->p);
    if (!p->read && !json_object_get(later, name))
      st = pstate_take_item(p, name, NULL, true);
  }
  json_decref(later);
  return st;
}

/* One round: BatchGetItem calls (DY_BATCH_GET_MAX keys each, in parallel)
 * for todo[0..n_todo). */
static enum ts_status read_round(struct dy *dy, const struct batch *b,
                                 struct pstate *ps, const json_t *index,
                                 const size_t *todo, size_t n_todo,
                                 uint64_t deadline_ms) {
  size_t n_calls = (n_todo + DY_BATCH_GET_MAX - 1) / DY_BATCH_GET_MAX;
  struct ddb_call *calls = calloc(n_calls, sizeof *calls);
  json_t **reqs = calloc(n_calls, sizeof *reqs);
  enum ts_status st = TS_OK;
  if (!calls || !reqs) {
    st = TS_ERR_NOMEM;
    goto out;
  }
  for (size_t c = 0; c < n_calls; c++) {
    size_t from = c * DY_BATCH_GET_MAX;
    size_t to =
        from + DY_BATCH_GET_MAX < n_todo ? from + DY_BATCH_GET_MAX : n_todo;
    calls[c].op = "BatchGetItem";
    calls[c].request = reqs[c] = batch_get_request(dy, b, ps, todo, from, to);
    if (!reqs[c])
      st = TS_ERR_NOMEM;
  }
  if (st == TS_OK)
    st = ddb_execute(dy->client, calls, n_calls, deadline_ms);
  for (size_t c = 0; st == TS_OK && c < n_calls; c++) {
    size_t from = c * DY_BATCH_GET_MAX;
    size_t to =
        from + DY_BATCH_GET_MAX < n_todo ? from + DY_BATCH_GET_MAX : n_todo;
    st = call_status(dy->table, &calls[c]);
    if (st == TS_OK)
      st = take_batch_get(dy, b, ps, index, todo, from, to, calls[c].response);
  }
out:
  calls_free(calls, reqs, n_calls);
  return st;
}

/* Reads every pending, unread player, retrying UnprocessedKeys (throttled)
 * until the deadline. */
static enum ts_status read_players(struct dy *dy, const struct batch *b,
                                   struct pstate *ps, size_t n,
                                   uint64_t deadline_ms) {
  enum ts_status st = TS_OK;
  size_t *todo = malloc((n ? n : 1) * sizeof *todo);
  json_t *index = json_object();
  size_t n_todo = 0;
  if (!todo || !index) {
    st = TS_ERR_NOMEM;
    goto out;
  }
  for (size_t i = 0; i < n; i++) {
    if (!ps[i].pending || ps[i].read)
      continue;
    todo[n_todo++] = i;
    if (json_object_set_new(index, batch_player_name(b, ps[i].p),
                            json_integer((json_int_t)i)) != 0) {
      st = TS_ERR_NOMEM;
      goto out;
    }
  }
  while (n_todo > 0) {
    st = read_round(dy, b, ps, index, todo, n_todo, deadline_ms);
    if (st != TS_OK)
      goto out;
    size_t left = 0;
    for (size_t t = 0; t < n_todo; t++)
      if (!ps[todo[t]].read)
        todo[left++] = todo[t];
    n_todo = left;
    if (n_todo && clock_now_ms() >= deadline_ms) {
      st = TS_ERR_UNAVAILABLE;
      goto out;
    }
    if (n_todo) {
      struct timespec pause = {0, 20 * 1000 * 1000};
      nanosleep(&pause, NULL); /* UnprocessedKeys: throttled, back off */
    }
  }
out:
  free(todo);
  json_decref(index);
  return st;
}

/* ---- dead letters ---- */

static json_t *dead_letter_put(struct dy *dy, const struct batch *b, size_t i,
                               const char *now_utc) {
  const char *event_id, *item, *reason, *record;
  batch_rejected(b, i, &event_id, &item, &reason, &record);
  char id[65];
  batch_rejected_id(b, i, id);
  json_t *it = json_pack("{s:o, s:o, s:o}", "id", attr_s(id), "reason",
                         attr_s(reason ? reason : "rejected"), "received_at",
                         attr_s(now_utc));
  if (!it)
    return NULL;
  /* Every field or none: a dead letter without its record is lost data. */
  bool ok =
      !event_id || json_object_set_new(it, "event_id", attr_s(event_id)) == 0;
  ok = ok &&
       (!item || json_object_set_new(it, "item_identifier", attr_s(item)) == 0);
  if (ok && record) {
    size_t len = strlen(record);
    json_t *text = json_stringn(
        record, len > DY_MAX_RECORD_TEXT ? DY_MAX_RECORD_TEXT : len);
    ok = text &&
         json_object_set_new(it, "record", json_pack("{s:o}", "S", text)) == 0;
  }
  if (!ok) {
    json_decref(it);
    return NULL;
  }
  return json_pack("{s:s, s:o}", "TableName", dy->dl_table, "Item", it);
}

/* Writes every rejected record of the batch to the dead-letter table, in
 * parallel; idempotent (the id is a hash of the record's key and reason). */
static enum ts_status keep_dead_letters(struct dy *dy, const struct batch *b,
                                        uint64_t deadline_ms) {
  size_t n = batch_rejected_count(b);
  if (n == 0)
    return TS_OK;
  enum ts_status st = TS_OK;
  struct ddb_call *calls = calloc(n, sizeof *calls);
  json_t **reqs = calloc(n, sizeof *reqs);
  char now_utc[32];
  clock_utc_now(now_utc);
  if (!calls || !reqs) {
    st = TS_ERR_NOMEM;
    goto out;
  }
  for (size_t i = 0; i < n; i++) {
    reqs[i] = dead_letter_put(dy, b, i, now_utc);
    if (!reqs[i]) {
      st = TS_ERR_NOMEM;
      goto out;
    }
    calls[i].op = "PutItem";
    calls[i].request = reqs[i];
  }
  st = ddb_execute(dy->client, calls, n, deadline_ms);
  for (size_t i = 0; st == TS_OK && i < n; i++) {
    st = call_status(dy->dl_table, &calls[i]);
  }
out:
  calls_free(calls, reqs, n);
  return st;
}

/* ---- apply ---- */

struct apply_ctx {
  struct dy *dy;
  struct batch *b;
  struct pstate *ps;
  size_t n;
  uint64_t deadline_ms;
};

static enum ts_status apply_attempt(void *cls) {
  struct apply_ctx *a = cls;
  struct dy *dy = a->dy;
  enum ts_status st = read_players(dy, a->b, a->ps, a->n, a->deadline_ms);
  if (st != TS_OK)
    return st;
  int64_t now_s = (int64_t)time(NULL);
  char now_utc[32];
  clock_utc_now(now_utc);
  for (size_t i = 0; i < a->n && st == TS_OK; i++)
    if (a->ps[i].pending)
      st = pstate_drop_expired(&a->ps[i], now_s);
  if (st != TS_OK)
    return st;

  struct ddb_call *calls = calloc(a->n + 1, sizeof *calls);
  json_t **reqs = calloc(a->n + 1, sizeof *reqs);
  size_t *owner = calloc(a->n + 1, sizeof *owner);
  struct decide_player *next = calloc(a->n + 1, sizeof *next);
  size_t n_calls = 0;
  if (!calls || !reqs || !owner || !next) {
    st = TS_ERR_NOMEM;
    goto out;
  }
  const struct decide_view view = {.cls = a->ps,
                                   .stats = view_stats,
                                   .applied = view_applied,
                                   .room = view_room,
                                   .settled = view_settled};
  st = batch_decide(a->b, &view, next);
  for (size_t i = 0; st == TS_OK && i < a->n; i++) {
    if (!a->ps[i].pending)
      continue;
    if (!next[i].changed) { /* all duplicates or rejected: done */
      a->ps[i].pending = false;
      continue;
    }
    st = player_put(dy, a->b, &a->ps[i], &next[i].next, now_s, now_utc,
                    &reqs[n_calls]);
    calls[n_calls].op = "PutItem";
    calls[n_calls].request = reqs[n_calls];
    owner[n_calls++] = i;
  }
  if (st != TS_OK || n_calls == 0)
    goto out;

  st = ddb_execute(dy->client, calls, n_calls, a->deadline_ms);
  if (st != TS_OK)
    goto out;
  bool conflict = false, gave_up = false, refused = false;
  for (size_t c = 0; c < n_calls; c++) {
    if (calls[c].outcome == DDB_CONDITION_FAILED) {
      a->ps[owner[c]].read = false; /* another writer won: re-read, decide */
      conflict = true;
      continue;
    }
    struct pstate *ps = &a->ps[owner[c]];
    switch (call_status(dy->table, &calls[c])) {
    case TS_OK:
      ps->pending = false;
      ps->wrote = true;
      ps->wrote_stats = next[owner[c]].next;
      ps->wrote_version = ps->has_version ? ps->version + 1 : 1;
      snprintf(ps->wrote_at, sizeof ps->wrote_at, "%s", now_utc);
      break;
    case TS_ERR_UNAVAILABLE: gave_up = true; break;
    default: refused = true; break;
    }
  }
  st = refused    ? TS_ERR_IO
       : gave_up  ? TS_ERR_UNAVAILABLE
       : conflict ? TS_ERR_RETRY
                  : TS_OK;
out:
  calls_free(calls, reqs, n_calls);
  free(owner);
  free(next);
  return st;
}

/* Read-your-writes: the players written (also by a batch that failed
 * later: their writes stand) go into this process's leaderboards before
 * the batch is answered. */
static void note_writes(struct dy *dy, const struct batch *b,
                        const struct pstate *ps, size_t n) {
  struct rank_row *rows = calloc(n ? n : 1, sizeof *rows);
  size_t m = 0;
  enum ts_status st = TS_ERR_NOMEM;
  if (rows) {
    for (size_t i = 0; i < n; i++)
      if (ps[i].wrote)
        rows[m++] =
            (struct rank_row){batch_player_name(b, ps[i].p), ps[i].wrote_stats,
                              ps[i].wrote_at, ps[i].wrote_version};
    st = rank_cache_note(dy->board, rows, m);
  }
  if (st != TS_OK)
    log_event(LOG_WARN, "leaderboard snapshot dropped", "{s:s}", "status",
              ts_status_name(st));
  free(rows);
}

static enum ts_status dy_apply(void *impl, struct batch *b,
                               uint64_t deadline_ms) {
  struct dy *dy = impl;
  size_t n = batch_player_count(b);
  struct apply_ctx a = {
      .dy = dy,
      .b = b,
      .n = n,
      .ps = calloc(n ? n : 1, sizeof(struct pstate)),
      .deadline_ms = clock_now_ms() + atomic_load(&dy->apply_deadline_ms),
  };
  if (!a.ps)
    return TS_ERR_NOMEM;
  if (deadline_ms < a.deadline_ms)
    a.deadline_ms = deadline_ms;
  for (size_t i = 0; i < n; i++) {
    a.ps[i].p = i;
    a.ps[i].pending = true;
  }
  enum ts_status st =
      store_run_tx("dynamodb.apply", apply_attempt, &a, NULL, a.deadline_ms);
  /* Only now is every rejection final (a re-read can change one). */
  if (st == TS_OK)
    st = keep_dead_letters(dy, b, a.deadline_ms);
  note_writes(dy, b, a.ps, n);
  for (size_t i = 0; i < n; i++)
    pstate_reset_item(&a.ps[i]);
  free(a.ps);
  return st;
}

/* ---- queries ---- */

#define DY_PROJECTION "#p, games, wins, total_score, avg_score, updated_at"

/* Fills row from an item read with DY_PROJECTION. */
static enum ts_status row_from_item(const json_t *item,
                                    struct player_row *row) {
  struct pstate ps = {0};
  const char *player = attr_text(item, "player", "S");
  if (!player)
    return TS_ERR_IO;
  enum ts_status st = pstate_take_item(&ps, player, item, false);
  if (st == TS_OK) {
    row->player = strdup(player);
    row->stats = ps.cur;
    const char *updated = attr_text(item, "updated_at", "S");
    snprintf(row->updated_at, sizeof row->updated_at, "%s",
             updated ? updated : "");
    if (!row->player)
      st = TS_ERR_NOMEM;
  }
  pstate_reset_item(&ps);
  return st;
}

/* One read call with the read deadline; maps its outcome to a status. */
static enum ts_status read_call(struct dy *dy, struct ddb_call *call) {
  enum ts_status st =
      ddb_execute(dy->client, call, 1, clock_now_ms() + DY_READ_DEADLINE_MS);
  return st != TS_OK ? st : call_status(dy->table, call);
}

static enum ts_status dy_get_player(void *impl, const char *player,
                                    struct player_row *out) {
  struct dy *dy = impl;
  json_t *req = json_pack(
      "{s:s, s:{s:o}, s:b, s:s, s:{s:s}}", "TableName", dy->table, "Key",
      "player", attr_s(player), "ConsistentRead", 1, "ProjectionExpression",
      DY_PROJECTION, "ExpressionAttributeNames", "#p", "player");
  if (!req)
    return TS_ERR_NOMEM;
  struct ddb_call call = {.op = "GetItem", .request = req};
  enum ts_status st = read_call(dy, &call);
  if (st == TS_OK) {
    json_t *item = json_object_get(call.response, "Item");
    st = item ? row_from_item(item, out) : TS_ERR_NOT_FOUND;
  }
  ddb_call_clear(&call);
  json_decref(req);
  return st;
}

/* Pages follow the table's key order (a Scan), not byte order: the cursor
 * carries the last key as DynamoDB's ExclusiveStartKey. */
static enum ts_status dy_list_players(void *impl, const char *after,
                                      size_t limit, struct player_row **rows,
                                      size_t *n, bool *more) {
  struct dy *dy = impl;
  json_t *req = json_pack(
      "{s:s, s:I, s:b, s:s, s:{s:s}}", "TableName", dy->table, "Limit",
      (json_int_t)limit, "ConsistentRead", 1, "ProjectionExpression",
      DY_PROJECTION, "ExpressionAttributeNames", "#p", "player");
  if (!req)
    return TS_ERR_NOMEM;
  /* Without its start key the page would restart at the first player. */
  if (after &&
      json_object_set_new(req, "ExclusiveStartKey",
                          json_pack("{s:o}", "player", attr_s(after))) != 0) {
    json_decref(req);
    return TS_ERR_NOMEM;
  }
  struct ddb_call call = {.op = "Scan", .request = req};
  enum ts_status st = read_call(dy, &call);
  if (st != TS_OK)
    goto out;
  json_t *items = json_object_get(call.response, "Items");
  size_t count = json_array_size(items);
  *rows = calloc(count ? count : 1, sizeof **rows);
  if (!*rows) {
    st = TS_ERR_NOMEM;
    goto out;
  }
  for (size_t i = 0; i < count && st == TS_OK; i++) {
    st = row_from_item(json_array_get(items, i), &(*rows)[i]);
    if (st == TS_OK)
      (*n)++;
  }
  *more = json_object_get(call.response, "LastEvaluatedKey") != NULL;
out:
  ddb_call_clear(&call);
  json_decref(req);
  return st;
}

/* A refresh of the leaderboard snapshot (store/rank_cache.h): one paged,
 * eventually consistent Scan (half the read cost of a consistent one; the
 * snapshot is seconds old anyway), each page folded into the top-K sets
 * and dropped, so memory is the K rows plus one page. */
#define DY_RANK_PROJECTION DY_PROJECTION ", version"

/* The rows of one Scan page, folded into `into`. */
static enum ts_status fold_page(const json_t *items, struct rank_set *into) {
  size_t count = json_array_size(items), n = 0;
  enum ts_status st = TS_ERR_NOMEM;
  struct player_row *rows = calloc(count ? count : 1, sizeof *rows);
  struct rank_row *ranked = calloc(count ? count : 1, sizeof *ranked);
  if (!rows || !ranked)
    goto out;
  st = TS_OK;
  for (size_t i = 0; i < count && st == TS_OK; i++) {
    const json_t *item = json_array_get(items, i);
    const char *version = attr_text(item, "version", "N");
    int64_t v = 0; /* an item of the original Lambda has none */
    if (version && !parse_int64(version, &v)) {
      st = TS_ERR_IO;
      break;
    }
    st = row_from_item(item, &rows[n]);
    if (st == TS_OK) {
      ranked[n] = (struct rank_row){rows[n].player, rows[n].stats,
                                    rows[n].updated_at, v};
      n++;
    }
  }
  if (st == TS_OK)
    st = rank_set_fold(into, ranked, n);
out:
  player_rows_free(rows, n);
  free(ranked);
  return st;
}

static enum ts_status board_scan(void *cls, struct rank_set *into,
                                 const atomic_bool *stop) {
  struct dy *dy = cls;
  enum ts_status st = TS_OK;
  json_t *start = NULL;
  uint64_t deadline = clock_now_ms() + TS_LEADERBOARD_REFRESH_DEADLINE_MS;
  do {
    /* A page at a time, so that store_free never waits for a whole Scan. */
    uint64_t now = clock_now_ms(), page_deadline = now + DY_READ_DEADLINE_MS;
    if (atomic_load(stop) || now >= deadline) {
      st = TS_ERR_UNAVAILABLE;
      break;
    }
    json_t *req = json_pack("{s:s, s:b, s:s, s:{s:s}}", "TableName", dy->table,
                            "ConsistentRead", 0, "ProjectionExpression",
                            DY_RANK_PROJECTION, "ExpressionAttributeNames",
                            "#p", "player");
    if (!req || (start && json_object_set(req, "ExclusiveStartKey", start))) {
      json_decref(req);
      st = TS_ERR_NOMEM;
      break;
    }
    json_decref(start);
    start = NULL;
    struct ddb_call call = {.op = "Scan", .request = req};
    st = ddb_execute(dy->client, &call, 1,
                     page_deadline < deadline ? page_deadline : deadline);
    if (st == TS_OK)
      st = call_status(dy->table, &call);
    if (st == TS_OK)
      st = fold_page(json_object_get(call.response, "Items"), into);
    if (st == TS_OK) {
      start = json_object_get(call.response, "LastEvaluatedKey");
      json_incref(start);
    }
    ddb_call_clear(&call);
    json_decref(req);
  } while (st == TS_OK && start);
  json_decref(start);
  return st;
}

/* DynamoDB has no order across partition keys: leaderboards come from the
 * process's top-K snapshot (see rank_cache.h and the README for freshness
 * and cost). */
static enum ts_status dy_leaderboard(void *impl, enum store_rank by,
                                     size_t limit, struct player_row **rows,
                                     size_t *n) {
  struct dy *dy = impl;
  return rank_cache_top(dy->board, by, limit, rows, n);
}

static enum ts_status describe(struct dy *dy, const char *table,
                               uint64_t deadline_ms, const char **status,
                               struct ddb_call *call, json_t **req) {
  *req = json_pack("{s:s}", "TableName", table);
  if (!*req)
    return TS_ERR_NOMEM;
  call->op = "DescribeTable";
  call->request = *req;
  enum ts_status st = ddb_execute(dy->client, call, 1, deadline_ms);
  if (st != TS_OK)
    return st;
  if (call->outcome == DDB_GAVE_UP)
    return TS_ERR_UNAVAILABLE;
  if (call->outcome != DDB_DONE)
    return TS_ERR_NOT_FOUND;
  *status = json_string_value(
      json_object_get(json_object_get(call->response, "Table"), "TableStatus"));
  return TS_OK;
}

static enum ts_status dy_ping(void *impl) {
  struct dy *dy = impl;
  struct ddb_call call = {0};
  json_t *req = NULL;
  const char *status = NULL;
  enum ts_status st =
      describe(dy, dy->table, clock_now_ms() + 2000u, &status, &call, &req);
  if (st == TS_OK && (!status || strcmp(status, "ACTIVE") != 0) &&
      (!status || strcmp(status, "UPDATING") != 0))
    st = TS_ERR_UNAVAILABLE;
  if (st == TS_ERR_NOT_FOUND)
    st = TS_ERR_UNAVAILABLE;
  ddb_call_clear(&call);
  json_decref(req);
  return st;
}

/* ---- dead letters: list, get, delete ---- */

/* Copies the S attribute `name` of item; *out NULL when absent. False on
 * NOMEM. */
static bool item_dup(const json_t *item, const char *name, char **out) {
  const char *text = attr_text(item, name, "S");
  *out = text ? strdup(text) : NULL;
  return !text || *out;
}

static enum ts_status dead_from_item(const json_t *item,
                                     struct dead_letter *d) {
  memset(d, 0, sizeof *d);
  enum ts_status st = TS_ERR_NOMEM;
  if (!item_dup(item, "id", &d->id) ||
      !item_dup(item, "event_id", &d->event_id) ||
      !item_dup(item, "item_identifier", &d->item_identifier) ||
      !item_dup(item, "reason", &d->reason) ||
      !item_dup(item, "record", &d->record))
    goto fail;
  const char *at = attr_text(item, "received_at", "S");
  st = TS_ERR_IO; /* an item we did not write */
  if (!d->id || !d->reason || !at || strlen(at) >= sizeof d->received_at)
    goto fail;
  memcpy(d->received_at, at, strlen(at) + 1);
  return TS_OK;
fail:
  dead_letter_clear(d);
  return st;
}

/* Pages follow the table's key order (a consistent Scan) from the item
 * after `after`. A reason is a filter, which DynamoDB applies after Limit
 * (Limit counts the items read): a filtered scan reads pages of
 * DY_SCAN_PAGE items until the page is full, the table ends or
 * DY_LIST_BUDGET_MS pass; the next page then starts where the scan stopped
 * (LastEvaluatedKey), or after the last item returned when matching items
 * were left out of a full page. */
static enum ts_status dy_list_dead_letters(void *impl, const char *after,
                                           const char *reason, size_t limit,
                                           struct dead_letter **rows, size_t *n,
                                           char **next) {
  struct dy *dy = impl;
  enum ts_status st = TS_OK;
  uint64_t budget = clock_now_ms() + DY_LIST_BUDGET_MS;
  bool left_out = false;
  json_t *start = after ? json_pack("{s:o}", "id", attr_s(after)) : NULL;
  *rows = calloc(limit, sizeof **rows);
  if (!*rows || (after && !start)) {
    json_decref(start);
    return TS_ERR_NOMEM;
  }
  for (;;) {
    size_t read = reason ? DY_SCAN_PAGE : limit - *n;
    json_t *req = json_pack("{s:s, s:I, s:b}", "TableName", dy->dl_table,
                            "Limit", (json_int_t)read, "ConsistentRead", 1);
    bool ok = req &&
              (!start || json_object_set(req, "ExclusiveStartKey", start) == 0);
    json_t *filter =
        reason
            ? json_pack("{s:s, s:{s:s}, s:{s:o}}", "FilterExpression",
                        "#r = :r", "ExpressionAttributeNames", "#r", "reason",
                        "ExpressionAttributeValues", ":r", attr_s(reason))
            : NULL;
    ok = ok && (!reason || (filter && json_object_update(req, filter) == 0));
    json_decref(filter);
    if (!ok) {
      json_decref(req);
      st = TS_ERR_NOMEM;
      break;
    }
    struct ddb_call call = {.op = "Scan", .request = req};
    st =
        ddb_execute(dy->client, &call, 1, clock_now_ms() + DY_READ_DEADLINE_MS);
    if (st == TS_OK)
      st = call_status(dy->dl_table, &call);
    json_t *items = json_object_get(call.response, "Items");
    for (size_t i = 0; st == TS_OK && i < json_array_size(items); i++) {
      if (*n == limit) {
        left_out = true;
        break;
      }
      st = dead_from_item(json_array_get(items, i), &(*rows)[*n]);
      if (st == TS_OK)
        (*n)++;
    }
    json_decref(start);
    start = json_incref(json_object_get(call.response, "LastEvaluatedKey"));
    ddb_call_clear(&call);
    json_decref(req);
    if (st != TS_OK || !start || *n == limit || clock_now_ms() >= budget)
      break;
  }
  const char *at = left_out ? (*rows)[*n - 1].id : attr_text(start, "id", "S");
  if (st == TS_OK && (left_out || start) && (!at || !(*next = strdup(at))))
    st = at ? TS_ERR_NOMEM : TS_ERR_IO;
  json_decref(start);
  return st;
}

/* One call per id, run in parallel; build(dy, id) makes each request. */
static enum ts_status
per_id_calls(struct dy *dy, const char *op, const char *const *ids,
             size_t n_ids,
             json_t *(*build)(const struct dy *dy, const char *id),
             struct ddb_call **calls_out, json_t ***reqs_out) {
  struct ddb_call *calls = calloc(n_ids, sizeof *calls);
  json_t **reqs = calloc(n_ids, sizeof *reqs);
  enum ts_status st = TS_ERR_NOMEM;
  *calls_out = calls;
  *reqs_out = reqs;
  if (!calls || !reqs)
    return st;
  for (size_t i = 0; i < n_ids; i++) {
    if (!(reqs[i] = build(dy, ids[i])))
      return st;
    calls[i].op = op;
    calls[i].request = reqs[i];
  }
  st = ddb_execute(dy->client, calls, n_ids,
                   clock_now_ms() + DY_READ_DEADLINE_MS);
  for (size_t i = 0; st == TS_OK && i < n_ids; i++)
    st = call_status(dy->dl_table, &calls[i]);
  return st;
}

static json_t *dead_get_request(const struct dy *dy, const char *id) {
  return json_pack("{s:s, s:{s:o}, s:b}", "TableName", dy->dl_table, "Key",
                   "id", attr_s(id), "ConsistentRead", 1);
}

static json_t *dead_delete_request(const struct dy *dy, const char *id) {
  return json_pack("{s:s, s:{s:o}}", "TableName", dy->dl_table, "Key", "id",
                   attr_s(id));
}

static enum ts_status dy_get_dead_letters(void *impl, const char *const *ids,
                                          size_t n_ids,
                                          struct dead_letter **rows,
                                          size_t *n) {
  struct ddb_call *calls = NULL;
  json_t **reqs = NULL;
  enum ts_status st = per_id_calls(impl, "GetItem", ids, n_ids,
                                   dead_get_request, &calls, &reqs);
  if (st == TS_OK && !(*rows = calloc(n_ids, sizeof **rows)))
    st = TS_ERR_NOMEM;
  for (size_t i = 0; st == TS_OK && i < n_ids; i++) {
    json_t *item = json_object_get(calls[i].response, "Item");
    if (!item)
      continue;
    st = dead_from_item(item, &(*rows)[*n]);
    if (st == TS_OK)
      (*n)++;
  }
  calls_free(calls, reqs, n_ids);
  return st;
}

/* DeleteItem of a key that is not there succeeds: idempotent as is. */
static enum ts_status dy_delete_dead_letters(void *impl, const char *const *ids,
                                             size_t n_ids) {
  struct ddb_call *calls = NULL;
  json_t **reqs = NULL;
  enum ts_status st = per_id_calls(impl, "DeleteItem", ids, n_ids,
                                   dead_delete_request, &calls, &reqs);
  calls_free(calls, reqs, n_ids);
  return st;
}

static void dy_close(void *impl) {
  struct dy *dy = impl;
  if (!dy)
    return;
  rank_cache_free(dy->board); /* first: its refresher uses the client */
  ddb_client_free(dy->client);
  aws_creds_provider_free(dy->creds);
  free(dy->table);
  free(dy->dl_table);
  free(dy);
}

static const struct store_ops dy_ops = {
    .name = "dynamodb",
    .apply = dy_apply,
    .get_player = dy_get_player,
    .list_players = dy_list_players,
    .leaderboard = dy_leaderboard,
    .list_dead_letters = dy_list_dead_letters,
    .get_dead_letters = dy_get_dead_letters,
    .delete_dead_letters = dy_delete_dead_letters,
    .ping = dy_ping,
    .close = dy_close,
};

static enum ts_status dy_new(const struct store_options *opt, struct dy **out) {
  *out = NULL;
  enum ts_status st = TS_ERR_NOMEM;
  char *region = aws_region_resolve();
  struct dy *dy = calloc(1, sizeof *dy);
  if (!dy)
    goto fail;
  atomic_init(&dy->apply_deadline_ms, TS_INGEST_DEADLINE_MS);
  dy->table = strdup(opt->table ? opt->table : "TaTourneyStats");
  dy->dl_table = strdup(opt->dead_letter_table ? opt->dead_letter_table
                                               : "TaTourneyStatsDeadLetters");
  if (!dy->table || !dy->dl_table)
    goto fail;
  if (!region) {
    /* A local endpoint (dynalite, DynamoDB Local) still needs a region to
     * sign with; real DynamoDB needs the right one. */
    const char *ep = getenv("AWS_ENDPOINT_URL_DYNAMODB");
    if (!ep || !*ep)
      ep = getenv("AWS_ENDPOINT_URL");
    if (!ep || !*ep) {
      log_event(LOG_ERROR, "no AWS region: set AWS_REGION", NULL);
      st = TS_ERR_INVALID;
      goto fail;
    }
    region = strdup("us-east-1");
    if (!region)
      goto fail;
  }
  if ((st = aws_creds_provider_new(&dy->creds)) != TS_OK)
    goto fail;
  struct ddb_options dopt = {.region = region, .endpoint = NULL};
  if ((st = ddb_client_new(&dopt, dy->creds, &dy->client)) != TS_OK)
    goto fail;
  unsigned refresh_s = opt->leaderboard_refresh_s ? opt->leaderboard_refresh_s
                                                  : TS_LEADERBOARD_REFRESH_S;
  struct rank_cache_options ropt = {.k = TS_LEADERBOARD_TOP_K,
                                    .refresh_ms = refresh_s * 1000u,
                                    .wait_ms = TS_LEADERBOARD_WAIT_MS,
                                    .journal_max = TS_LEADERBOARD_JOURNAL_MAX,
                                    .grace_ms = TS_LEADERBOARD_WRITE_GRACE_MS,
                                    .scan = board_scan,
                                    .scan_cls = dy};
  if ((st = rank_cache_new(&ropt, &dy->board)) != TS_OK)
    goto fail;
  log_event(LOG_INFO, "dynamodb store", "{s:s, s:s, s:s, s:s}", "endpoint",
            ddb_client_endpoint(dy->client), "region", region, "table",
            dy->table, "dead_letter_table", dy->dl_table);
  free(region);
  *out = dy;
  return TS_OK;
fail:
  free(region);
  dy_close(dy);
  return st;
}

enum ts_status store_dynamodb_open(const struct store_options *opt, void **impl,
                                   const struct store_ops **ops) {
  struct dy *dy = NULL;
  enum ts_status st = dy_new(opt, &dy);
  if (st != TS_OK)
    return st;
  *impl = dy;
  *ops = &dy_ops;
  return TS_OK;
}

/* ---- create-table ---- */

static enum ts_status create_one(struct dy *dy, const char *table,
                                 const char *key) {
  json_t *req =
      json_pack("{s:s, s:[{s:s, s:s}], s:[{s:s, s:s}], s:s}", "TableName",
                table, "AttributeDefinitions", "AttributeName", key,
                "AttributeType", "S", "KeySchema", "AttributeName", key,
                "KeyType", "HASH", "BillingMode", "PAY_PER_REQUEST");
  if (!req)
    return TS_ERR_NOMEM;
  struct ddb_call call = {.op = "CreateTable", .request = req};
  enum ts_status st =
      ddb_execute(dy->client, &call, 1, clock_now_ms() + DY_READ_DEADLINE_MS);
  if (st == TS_OK) {
    if (call.outcome == DDB_DONE) {
      log_event(LOG_INFO, "creating table", "{s:s}", "table", table);
    } else if (strcmp(call.error_type, "ResourceInUseException") == 0) {
      log_event(LOG_INFO, "table exists", "{s:s}", "table", table);
    } else {
      log_event(LOG_ERROR, "could not create table", "{s:s, s:s, s:s}", "table",
                table, "error", call.error_type, "message", call.error_message);
      st = call.outcome == DDB_GAVE_UP ? TS_ERR_UNAVAILABLE : TS_ERR_IO;
    }
  }
  ddb_call_clear(&call);
  json_decref(req);
  if (st != TS_OK)
    return st;

  uint64_t until = clock_now_ms() + DY_CREATE_WAIT_MS;
  for (;;) {
    struct ddb_call d = {0};
    json_t *dreq = NULL;
    const char *status = NULL;
    st = describe(dy, table, clock_now_ms() + DY_READ_DEADLINE_MS, &status, &d,
                  &dreq);
    bool active = st == TS_OK && status && strcmp(status, "ACTIVE") == 0;
    ddb_call_clear(&d);
    json_decref(dreq);
    if (active)
      return TS_OK;
    if (st != TS_OK && st != TS_ERR_NOT_FOUND)
      return st;
    if (clock_now_ms() >= until)
      return TS_ERR_UNAVAILABLE;
    struct timespec pause = {0, 200 * 1000 * 1000};
    nanosleep(&pause, NULL);
  }
}

enum ts_status store_dynamodb_create_tables(const struct store_options *opt) {
  struct dy *dy = NULL;
  enum ts_status st = dy_new(opt, &dy);
  if (st == TS_OK)
    st = create_one(dy, dy->table, "player");
  if (st == TS_OK)
    st = create_one(dy, dy->dl_table, "id");
  if (st == TS_OK)
    log_event(LOG_INFO, "tables active", "{s:s, s:s}", "table", dy->table,
              "dead_letter_table", dy->dl_table);
  dy_close(dy);
  return st;
}
