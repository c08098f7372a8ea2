/* Fuzzes domain/batch: a request body parsed by jansson (json_loadb with
 * JSON_DECODE_ANY, which the server's parser matches: fuzz_json), decoded
 * by batch_new from the tree's document (common/jdoc.h), then every entry
 * marked with an outcome (twice, with a reset between) and the summary,
 * the rejected list and the counts read back; then batch_decide() against
 * a store view drawn from the input's hash.
 *
 * Invariants: the envelope verdict is the documented one; the body is not
 * modified; entries are consistent with their records (eventID, at most
 * two per record, nonzero deltas of one game at most); record outcomes
 * follow from the entry outcomes; counts partition `received`; the summary
 * and the rejected list agree with the counts and are valid JSON text.
 * The decision decides every entry, applies a record whole or not at all,
 * moves each player by exactly its applied deltas within the bookkeeping
 * room, calls a duplicate only what was applied, and decides the same
 * again on the same view.
 *
 * Kinesis records (kinesis.data: base64 of a change record): an entry's
 * eventID is the inner record's (decoded here with a reference base64
 * decoder and jansson), its change has no SequenceNumber, and a rejected
 * one is named by its outer kinesis.sequenceNumber. And differentially:
 * the body with every record wrapped as a Kinesis record (the harness
 * encodes it) decodes to the same players, entries and observations as
 * the body itself, and the same poison, its reason behind
 * "kinesis.data: ". */
#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/bounds.h"
#include "common/buf.h"
#include "common/jdoc.h"
#include "domain/batch.h"
#include "domain/batch_outcome.h"
#include "domain/decide.h"
#include "input.h"
#include "server/urlcode.h"

/* Attribute names that swap player and score, for inputs whose hash picks
 * them: the decoder must not assume the defaults. */
static const struct record_names swapped_names = {
    .player = "score", .score = "player", .winner = "winner"};

/* The verdict batch_new must give on the envelope, by batch.h. */
static enum ts_status expected_envelope(const json_t *body, size_t *n) {
  const json_t *records = NULL;
  if (json_is_object(body)) {
    records = json_object_get(body, "Records");
    if (records && !json_is_array(records))
      return TS_ERR_INVALID;
  } else if (json_is_array(body)) {
    records = body;
  } else {
    return TS_ERR_INVALID;
  }
  *n = records ? json_array_size(records) : 1;
  if (*n > TS_MAX_RECORDS_PER_BATCH)
    return TS_ERR_TOO_LARGE;
  for (size_t i = 0; records && i < *n; i++)
    if (!json_is_object(json_array_get(records, i)))
      return TS_ERR_INVALID;
  return TS_OK;
}

static const json_t *record_at(const json_t *body, size_t i) {
  if (json_is_array(body))
    return json_array_get(body, i);
  const json_t *records = json_object_get(body, "Records");
  return records ? json_array_get(records, i) : body;
}

/* ---- Kinesis records, by a reference independent of domain/batch.c ---- */

static bool is_kinesis(const json_t *rec) {
  const char *src = json_string_value(json_object_get(rec, "eventSource"));
  return json_object_get(rec, "kinesis") ||
         (src && strcmp(src, "aws:kinesis") == 0);
}

static int b64_value(char c) {
  static const char alphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const char *at = c ? strchr(alphabet, c) : NULL;
  return at ? (int)(at - alphabet) : -1;
}

/* RFC 4648 section 4, strictly: NULL when text is not canonical base64. */
static char *b64_decode_ref(const char *t, size_t len, size_t *out_len) {
  if (len == 0 || len % 4 != 0)
    return NULL;
  size_t pad = t[len - 1] == '=' ? (t[len - 2] == '=' ? 2 : 1) : 0;
  char *out = malloc(len / 4 * 3 + 1);
  FUZZ_CHECK(out, "out of memory");
  uint32_t acc = 0;
  size_t o = 0;
  for (size_t i = 0; i < len; i++) {
    int v = i >= len - pad ? 0 : b64_value(t[i]);
    if (v < 0) {
      free(out);
      return NULL;
    }
    acc = acc << 6 | (uint32_t)v;
    if (i % 4 == 3) {
      out[o++] = (char)(acc >> 16);
      out[o++] = (char)(acc >> 8);
      out[o++] = (char)acc;
      acc = 0;
    }
  }
  /* The bits the padding leaves over must be zero. */
  int last = pad ? b64_value(t[len - pad - 1]) : 0;
  if ((last & (pad == 2 ? 0x0F : pad == 1 ? 0x03 : 0)) != 0) {
    free(out);
    return NULL;
  }
  *out_len = o - pad;
  return out;
}

/* The change record a Kinesis record carries (new reference), or NULL. */
static json_t *kinesis_inner(const json_t *rec) {
  const json_t *data = json_object_get(json_object_get(rec, "kinesis"), "data");
  if (!json_is_string(data))
    return NULL;
  size_t n = 0;
  char *bytes =
      b64_decode_ref(json_string_value(data), json_string_length(data), &n);
  if (!bytes)
    return NULL;
  json_t *inner = json_loadb(bytes, n, JSON_DECODE_ANY, NULL);
  free(bytes);
  return inner;
}

/* The record whose eventID an entry of record rec carries. */
static const char *expected_event_id(const json_t *rec, json_t **hold) {
  *hold = NULL;
  if (!is_kinesis(rec))
    return json_string_value(json_object_get(rec, "eventID"));
  *hold = kinesis_inner(rec);
  FUZZ_CHECK(json_is_object(*hold),
             "a Kinesis record has entries, but its data does not decode");
  return json_string_value(json_object_get(*hold, "eventID"));
}

/* Text that may go into a JSON string and a log line. */
static void check_text(const char *s, size_t max, const char *what) {
  FUZZ_CHECK(s != NULL, "%s is NULL", what);
  size_t len = strlen(s);
  FUZZ_CHECK(len < max, "%s is %zu bytes (bound %zu)", what, len, max);
  FUZZ_CHECK(utf8_valid(s, len), "%s is not valid UTF-8", what);
}

static void check_reason(const char *s) {
  check_text(s, TS_MAX_REASON_BYTES, "reason");
  for (const unsigned char *p = (const unsigned char *)s; *p; p++)
    FUZZ_CHECK(*p >= 0x20 && *p != 0x7f, "reason holds control byte 0x%02x",
               *p);
}

/* Structure of the decoded batch, before any outcome. */
static void check_entries(const struct batch *b, const json_t *body, size_t n) {
  size_t *per_record = calloc(n ? n : 1, sizeof *per_record);
  FUZZ_CHECK(per_record, "out of memory");
  for (size_t p = 0; p < batch_player_count(b); p++) {
    const char *name = batch_player_name(b, p);
    FUZZ_CHECK(name && *name, "player %zu has no name", p);
    check_text(name, TS_MAX_PLAYER_BYTES + 1, "player name");
    size_t ne = batch_entry_count(b, p);
    FUZZ_CHECK(ne > 0, "player %s is listed without entries", name);
    FUZZ_CHECK(batch_entry(b, p, ne) == NULL, "entry past the end exists");
    for (size_t e = 0; e < ne; e++) {
      const struct batch_entry *en = batch_entry(b, p, e);
      FUZZ_CHECK(en, "entry %zu of player %zu missing", e, p);
      FUZZ_CHECK(en->record < n, "entry names record %zu of %zu", en->record,
                 n);
      per_record[en->record]++;
      const json_t *rec = record_at(body, en->record);
      json_t *hold;
      const char *id = expected_event_id(rec, &hold);
      FUZZ_CHECK(en->event_id && id && strcmp(en->event_id, id) == 0,
                 "entry eventID is not its record's%s",
                 is_kinesis(rec) ? " (the inner one)" : "");
      json_decref(hold);
      if (is_kinesis(rec))
        FUZZ_CHECK(en->change && en->change->seq == NULL,
                   "a Kinesis record's change has a SequenceNumber");
      const struct stats *d = &en->delta;
      FUZZ_CHECK(!stats_is_zero(d), "a zero delta was kept");
      FUZZ_CHECK(d->games >= -1 && d->games <= 1 && d->wins >= -1 &&
                     d->wins <= 1,
                 "delta of more than one game: games %lld wins %lld",
                 (long long)d->games, (long long)d->wins);
      if (d->games != 0)
        FUZZ_CHECK(d->wins == 0 || d->wins == d->games,
                   "one game with wins %lld of games %lld", (long long)d->wins,
                   (long long)d->games);
    }
  }
  for (size_t i = 0; i < n; i++)
    FUZZ_CHECK(per_record[i] <= 2, "record %zu has %zu entries", i,
               per_record[i]);
  free(per_record);
}

/* Marks every entry from bits of seed; a rejected entry gets a reason made
 * of raw input bytes (possibly invalid UTF-8 and control bytes), or none.
 * expected[r] receives what the record outcome must be for records with
 * entries (-1 for records without). */
static void mark(struct batch *b, uint64_t seed, const char *junk,
                 int *expected, size_t n) {
  bool *any = calloc(n ? n : 1, sizeof *any);
  bool *rejected = calloc(n ? n : 1, sizeof *rejected);
  bool *applied = calloc(n ? n : 1, sizeof *applied);
  FUZZ_CHECK(any && rejected && applied, "out of memory");
  size_t k = 0;
  for (size_t p = 0; p < batch_player_count(b); p++) {
    for (size_t e = 0; e < batch_entry_count(b, p); e++, k++) {
      unsigned bits = (unsigned)(seed >> (2 * (k % 32))) & 3u;
      enum entry_outcome o = bits == 1   ? ENTRY_DUPLICATE
                             : bits == 2 ? ENTRY_REJECTED
                                         : ENTRY_APPLIED;
      size_t r = batch_entry(b, p, e)->record;
      batch_entry_set_outcome(b, p, e, o, (k & 1) ? junk : NULL);
      any[r] = true;
      rejected[r] |= o == ENTRY_REJECTED;
      applied[r] |= o == ENTRY_APPLIED;
    }
  }
  /* batch_entry_applied_earlier against a brute-force scan. */
  for (size_t p = 0; p < batch_player_count(b); p++)
    for (size_t e = 0; e < batch_entry_count(b, p); e++) {
      bool want = false;
      for (size_t f = 0; f < e; f++) {
        enum entry_outcome o = batch_entry_outcome(b, p, f);
        want |= strcmp(batch_entry(b, p, f)->event_id,
                       batch_entry(b, p, e)->event_id) == 0 &&
                (o == ENTRY_APPLIED || o == ENTRY_DUPLICATE);
      }
      FUZZ_CHECK(batch_entry_applied_earlier(b, p, e) == want,
                 "applied_earlier of player %zu entry %zu is %d, want %d", p, e,
                 !want, want);
    }
  for (size_t r = 0; r < n; r++)
    expected[r] = !any[r]       ? -1
                  : rejected[r] ? (int)RECORD_REJECTED
                  : applied[r]  ? (int)RECORD_APPLIED
                                : (int)RECORD_DUPLICATE;
  free(any);
  free(rejected);
  free(applied);
}

static size_t int_field(const json_t *o, const char *key) {
  const json_t *v = json_object_get(o, key);
  FUZZ_CHECK(json_is_integer(v) && json_integer_value(v) >= 0,
             "summary.%s is not a count", key);
  return (size_t)json_integer_value(v);
}

static void check_outcomes(struct batch *b, const json_t *body, size_t n,
                           const int *expected) {
  struct batch_counts c;
  batch_counts(b, &c);
  FUZZ_CHECK(c.received == n, "received %zu of %zu records", c.received, n);
  FUZZ_CHECK(c.applied + c.duplicates + c.skipped + c.rejected == c.received,
             "counts %zu+%zu+%zu+%zu do not partition %zu", c.applied,
             c.duplicates, c.skipped, c.rejected, c.received);
  FUZZ_CHECK(c.modify_without_old + c.remove_without_old <= n,
             "more observations than records");
  size_t rejected = 0;
  for (size_t r = 0; r < n; r++) {
    enum record_outcome o = batch_record_outcome(b, r);
    rejected += o == RECORD_REJECTED;
    if (expected[r] >= 0)
      FUZZ_CHECK((int)o == expected[r],
                 "record %zu: outcome %d, its entries say %d", r, (int)o,
                 expected[r]);
    else
      FUZZ_CHECK(o != RECORD_APPLIED, "record %zu applied without entries", r);
  }
  FUZZ_CHECK(rejected == c.rejected, "rejected outcomes %zu, count %zu",
             rejected, c.rejected);
  size_t nrej = batch_rejected_count(b);
  FUZZ_CHECK(nrej == c.rejected, "rejected list %zu, count %zu", nrej,
             c.rejected);

  struct buf answer;
  buf_init(&answer, TS_MAX_INGEST_REPLY_BYTES);
  FUZZ_CHECK(batch_summary_write(b, &answer) == TS_OK,
             "batch_summary_write failed");
  json_error_t jerr;
  json_t *summary = json_loads(answer.data, 0, &jerr);
  FUZZ_CHECK(summary, "the summary is not JSON: %s", jerr.text);
  buf_free(&answer);
  FUZZ_CHECK(int_field(summary, "received") == c.received &&
                 int_field(summary, "applied") == c.applied &&
                 int_field(summary, "duplicates") == c.duplicates &&
                 int_field(summary, "skipped") == c.skipped,
             "summary counts differ from batch_counts");
  const json_t *list = json_object_get(summary, "rejected");
  FUZZ_CHECK(json_is_array(list) && json_array_size(list) == nrej,
             "summary.rejected is not the rejected list");

  for (size_t i = 0; i < nrej; i++) {
    const char *id, *item, *reason, *json;
    batch_rejected(b, i, &id, &item, &reason, &json);
    check_reason(reason);
    if (id)
      check_text(id, TS_MAX_EVENT_ID_BYTES + 1, "rejected eventID");
    if (item)
      check_text(item, TS_MAX_EVENT_ID_BYTES + 1, "itemIdentifier");
    FUZZ_CHECK(json, "rejected record %zu has no JSON text", i);
    json_t *back = json_loads(json, 0, NULL);
    FUZZ_CHECK(back, "rejected record JSON text does not parse");
    bool found = false;
    for (size_t r = 0; r < n && !found; r++)
      found = json_equal(back, record_at(body, r));
    FUZZ_CHECK(found, "rejected record JSON is no record of the body");
    const char *seq = json_string_value(
        json_object_get(json_object_get(back, "kinesis"), "sequenceNumber"));
    if (is_kinesis(back) && seq && *seq && strlen(seq) <= TS_MAX_EVENT_ID_BYTES)
      FUZZ_CHECK(item && strcmp(item, seq) == 0,
                 "a rejected Kinesis record is not named by its outer "
                 "sequenceNumber");
    json_decref(back);
    const json_t *one = json_array_get(list, i);
    const char *sreason = json_string_value(json_object_get(one, "reason"));
    FUZZ_CHECK(sreason && strcmp(sreason, reason) == 0,
               "summary reason differs from batch_rejected's");
  }
  const char *id, *item, *reason, *json;
  batch_rejected(b, nrej, &id, &item, &reason, &json);
  FUZZ_CHECK(!id && !item && !reason && !json,
             "batch_rejected past the end gave something");
  json_decref(summary);
}

/* ---- the decision, against a view drawn from a seed ---- */

struct seeded_view {
  uint64_t seed;
  const struct batch *b;
};

static uint64_t mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdu;
  x ^= x >> 33;
  return x;
}

static enum ts_status seeded_stats(void *cls, size_t p, struct stats *out) {
  const struct seeded_view *v = cls;
  uint64_t h = mix(v->seed + p);
  memset(out, 0, sizeof *out);
  out->games = (int64_t)(h % 4);
  out->wins = out->games ? (int64_t)((h >> 8) % (uint64_t)(out->games + 1)) : 0;
  out->total_score.coef = (__int128)((h >> 16) % 1000);
  return TS_OK;
}

static enum ts_status seeded_applied(void *cls, size_t p, const char *event_id,
                                     bool *seen) {
  const struct seeded_view *v = cls;
  *seen = (mix(v->seed ^
               input_hash((const uint8_t *)event_id, strlen(event_id)) ^ p) &
           7u) == 0;
  return TS_OK;
}

static size_t seeded_room(void *cls, size_t p) {
  const struct seeded_view *v = cls;
  uint64_t h = mix(v->seed * 31u + p);
  return (h & 3u) == 0 ? (size_t)((h >> 2) % 3) : SIZE_MAX;
}

static void check_decision(struct batch *b, const json_t *body, size_t n,
                           uint64_t seed) {
  struct seeded_view sv = {.seed = seed, .b = b};
  const struct decide_view view = {.cls = &sv,
                                   .stats = seeded_stats,
                                   .applied = seeded_applied,
                                   .room = seeded_room};
  size_t players = batch_player_count(b);
  struct decide_player *d = calloc(players ? players : 1, sizeof *d);
  int *expected = calloc(n ? n : 1, sizeof *expected);
  bool *rejected = calloc(n ? n : 1, sizeof *rejected);
  bool *applied = calloc(n ? n : 1, sizeof *applied);
  FUZZ_CHECK(d && expected && rejected && applied, "out of memory");
  FUZZ_CHECK(batch_decide(b, &view, d) == TS_OK, "batch_decide failed");
  for (size_t p = 0; p < players; p++) {
    struct stats want;
    FUZZ_CHECK(seeded_stats(&sv, p, &want) == TS_OK, "view");
    size_t used = 0;
    bool any = false;
    for (size_t e = 0; e < batch_entry_count(b, p); e++) {
      const struct batch_entry *en = batch_entry(b, p, e);
      enum entry_outcome o = batch_entry_outcome(b, p, e);
      FUZZ_CHECK(o != ENTRY_PENDING, "player %zu entry %zu undecided", p, e);
      rejected[en->record] |= o == ENTRY_REJECTED;
      applied[en->record] |= o == ENTRY_APPLIED;
      if (o == ENTRY_DUPLICATE) {
        bool seen = false;
        FUZZ_CHECK(seeded_applied(&sv, p, en->event_id, &seen) == TS_OK,
                   "view");
        FUZZ_CHECK(seen || batch_entry_applied_earlier(b, p, e),
                   "player %zu entry %zu a duplicate of nothing", p, e);
      }
      if (o != ENTRY_APPLIED)
        continue;
      any = true;
      used++;
      FUZZ_CHECK(stats_apply(&want, &en->delta) == TS_OK,
                 "player %zu entry %zu applied but stats_apply refuses", p, e);
    }
    FUZZ_CHECK(d[p].changed == any, "player %zu changed is %d", p,
               d[p].changed);
    FUZZ_CHECK(used <= seeded_room(&sv, p), "player %zu: %zu applied, room %zu",
               p, used, seeded_room(&sv, p));
    if (any)
      FUZZ_CHECK(d[p].next.games == want.games && d[p].next.wins == want.wins &&
                     decimal_cmp(d[p].next.total_score, want.total_score) == 0,
                 "player %zu: next stats are not the applied deltas", p);
  }
  for (size_t r = 0; r < n; r++) {
    FUZZ_CHECK(!(rejected[r] && applied[r]), "record %zu applied in part", r);
    expected[r] = -1;
  }
  /* The record outcomes, from the entries (check_outcomes checks them). */
  for (size_t p = 0; p < players; p++)
    for (size_t e = 0; e < batch_entry_count(b, p); e++) {
      size_t r = batch_entry(b, p, e)->record;
      expected[r] = rejected[r]  ? (int)RECORD_REJECTED
                    : applied[r] ? (int)RECORD_APPLIED
                                 : (int)RECORD_DUPLICATE;
    }
  check_outcomes(b, body, n, expected);
  /* The same view decides the same. */
  enum entry_outcome *first = NULL;
  size_t total = 0;
  for (size_t p = 0; p < players; p++)
    total += batch_entry_count(b, p);
  first = calloc(total ? total : 1, sizeof *first);
  FUZZ_CHECK(first, "out of memory");
  for (size_t p = 0, k = 0; p < players; p++)
    for (size_t e = 0; e < batch_entry_count(b, p); e++)
      first[k++] = batch_entry_outcome(b, p, e);
  FUZZ_CHECK(batch_decide(b, &view, d) == TS_OK, "batch_decide failed again");
  for (size_t p = 0, k = 0; p < players; p++)
    for (size_t e = 0; e < batch_entry_count(b, p); e++)
      FUZZ_CHECK(first[k++] == batch_entry_outcome(b, p, e),
                 "player %zu entry %zu decided differently again", p, e);
  free(first);
  free(d);
  free(expected);
  free(rejected);
  free(applied);
}

static void run(const json_t *body, const struct record_names *names,
                uint64_t seed, const char *junk) {
  size_t n = 0;
  enum ts_status want = expected_envelope(body, &n);
  struct batch *b = (struct batch *)0x1;
  const char *detail = NULL;
  enum ts_status st;
  if (names && (seed & 8)) { /* the TTL rule either way */
    struct batch_options opt = {.names = *names,
                                .ttl_removes_subtract = (seed & 16) != 0};
    st = batch_new_with(fuzz_doc_of(body), &opt, &b, &detail);
  } else {
    st = batch_new(fuzz_doc_of(body), names, &b, &detail);
  }
  FUZZ_CHECK(st == want, "batch_new: %s, the envelope says %s",
             ts_status_name(st), ts_status_name(want));
  if (st != TS_OK) {
    FUZZ_CHECK(b == NULL && detail && *detail,
               "an envelope error without NULL batch and detail");
    return;
  }
  FUZZ_CHECK(b && batch_record_count(b) == n, "batch has %zu records of %zu",
             b ? batch_record_count(b) : 0, n);
  check_entries(b, body, n);
  int *expected = calloc(n ? n : 1, sizeof *expected);
  FUZZ_CHECK(expected, "out of memory");
  mark(b, seed, junk, expected, n);
  check_outcomes(b, body, n, expected);
  /* A retried transaction: reset, decide again, read again (the rejected
   * cache must follow). */
  batch_reset_outcomes(b);
  mark(b, ~seed * 0x9E3779B97F4A7C15u, junk, expected, n);
  check_outcomes(b, body, n, expected);
  free(expected);
  check_decision(b, body, n, seed * 0x2545F4914F6CDD1Du);
  batch_free(b);
}

/* ---- Kinesis, differentially ---- */

/* The body with each record replaced by a Kinesis record carrying it;
 * NULL when a record is a Kinesis record already. */
static json_t *wrapped(const json_t *body, size_t n) {
  json_t *recs = json_array();
  FUZZ_CHECK(recs, "out of memory");
  for (size_t i = 0; i < n; i++) {
    const json_t *rec = record_at(body, i);
    if (is_kinesis(rec)) {
      json_decref(recs);
      return NULL;
    }
    char *text = json_dumps(rec, JSON_COMPACT);
    FUZZ_CHECK(text, "a record cannot be serialised");
    size_t len = strlen(text);
    char *b64 = malloc(4 * ((len + 2) / 3) + 1);
    FUZZ_CHECK(b64, "out of memory");
    EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)text,
                    (int)len);
    char seq[32];
    snprintf(seq, sizeof seq, "49590%zu", i);
    json_array_append_new(recs, json_pack("{s:{s:s,s:s},s:s,s:s}", "kinesis",
                                          "data", b64, "sequenceNumber", seq,
                                          "eventSource", "aws:kinesis",
                                          "eventID", "shardId-000000000000:1"));
    free(b64);
    free(text);
  }
  if (json_is_array(body))
    return recs;
  if (json_object_get(body, "Records"))
    return json_pack("{s:o}", "Records", recs);
  json_t *one = json_incref(json_array_get(recs, 0));
  json_decref(recs);
  return one;
}

/* Both changes carry equal dynamodb.Keys, or neither does. */
static bool same_keys(const struct batch_change *x,
                      const struct batch_change *y) {
  json_t *a = jdoc_to_json(x->doc, x->keys), *b = jdoc_to_json(y->doc, y->keys);
  bool same = a == b || json_equal(a, b);
  json_decref(a);
  json_decref(b);
  return same;
}

static void check_same_entries(const struct batch *a, const struct batch *k) {
  FUZZ_CHECK(batch_player_count(a) == batch_player_count(k),
             "wrapped as Kinesis: %zu players, plain %zu",
             batch_player_count(k), batch_player_count(a));
  for (size_t p = 0; p < batch_player_count(a); p++) {
    FUZZ_CHECK(strcmp(batch_player_name(a, p), batch_player_name(k, p)) == 0 &&
                   batch_entry_count(a, p) == batch_entry_count(k, p),
               "wrapped as Kinesis: player %zu differs", p);
    for (size_t e = 0; e < batch_entry_count(a, p); e++) {
      const struct batch_entry *x = batch_entry(a, p, e),
                               *y = batch_entry(k, p, e);
      FUZZ_CHECK(
          x->record == y->record && strcmp(x->event_id, y->event_id) == 0 &&
              x->delta.games == y->delta.games &&
              x->delta.wins == y->delta.wins &&
              decimal_cmp(x->delta.total_score, y->delta.total_score) == 0 &&
              x->created_s == y->created_s && same_keys(x->change, y->change) &&
              x->change->has_old == y->change->has_old &&
              y->change->seq == NULL,
          "wrapped as Kinesis: player %zu entry %zu differs", p, e);
    }
  }
  struct batch_counts ca, ck;
  batch_counts(a, &ca);
  batch_counts(k, &ck);
  FUZZ_CHECK(ca.rejected == ck.rejected && ca.skipped == ck.skipped &&
                 ca.modify_without_old == ck.modify_without_old &&
                 ca.remove_without_old == ck.remove_without_old &&
                 ca.ttl_removes_skipped == ck.ttl_removes_skipped,
             "wrapped as Kinesis: the counts differ");
  static const char prefix[] = "kinesis.data: ";
  for (size_t i = 0; i < ca.rejected; i++) {
    const char *ia, *ik, *ra, *rk, *ja, *jk;
    batch_rejected(a, i, &ia, &ik, &ra, &ja);
    batch_rejected(k, i, &ia, &ik, &rk, &jk);
    /* The reason behind the prefix, cut to the same bound. */
    FUZZ_CHECK(strncmp(rk, prefix, sizeof prefix - 1) == 0 &&
                   strncmp(rk + sizeof prefix - 1, ra,
                           strlen(rk) - (sizeof prefix - 1)) == 0,
               "wrapped as Kinesis: reason \"%s\", plain \"%s\"", rk, ra);
  }
}

static void run_wrapped(const json_t *body) {
  size_t n = 0;
  if (expected_envelope(body, &n) != TS_OK || n == 0)
    return;
  json_t *k = wrapped(body, n);
  if (!k)
    return;
  struct batch *a = NULL, *b = NULL;
  FUZZ_CHECK(batch_new(fuzz_doc_of(body), NULL, &a, NULL) == TS_OK &&
                 batch_new(fuzz_doc_of(k), NULL, &b, NULL) == TS_OK,
             "batch_new failed on a valid envelope");
  check_same_entries(a, b);
  batch_free(a);
  batch_free(b);
  json_decref(k);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  json_error_t err;
  json_t *body = json_loadb((const char *)data, size, JSON_DECODE_ANY, &err);
  if (!body)
    return 0;
  json_t *copy = json_deep_copy(body);
  FUZZ_CHECK(copy, "out of memory");
  uint64_t seed = input_hash(data, size);
  /* Up to 40 raw input bytes as a store's reason. */
  char junk[41];
  size_t jn = size < 40 ? size : 40;
  memcpy(junk, data + (size - jn), jn);
  junk[jn] = '\0';

  run(body, &record_names_default, seed, junk);
  if ((seed & 3) == 0)
    run(body, &swapped_names, seed >> 2, junk);
  run(body, NULL, seed >> 7, junk); /* NULL: the defaults */
  run_wrapped(body);

  FUZZ_CHECK(json_equal(body, copy), "batch_new modified the body");
  json_decref(copy);
  json_decref(body);
  return 0;
}
