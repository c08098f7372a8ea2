/* Decoding a request body of DynamoDB Streams records (or Kinesis records
 * that carry one) into per-player deltas, and aggregating the store's per-entry
 * verdicts into per-record outcomes. See batch.h for the life cycle and
 * PRODUCT.md "Ingestion" for the rules. */
#include "batch.h"
#include "batch_outcome.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/arena.h"
#include "../common/base64.h"
#include "../common/bounds.h"
#include "../common/buf.h"
#include "../common/digest.h"
#include "../common/hash.h"
#include "../common/jdoc.h"
#include "../common/utf8.h"
#include "backfill.h"

/* A SequenceNumber longer than this is not used as the itemIdentifier
 * (DynamoDB's are 21 to 40 digits); the eventID stands in for it. */
#define MAX_ITEM_IDENTIFIER_BYTES TS_MAX_EVENT_ID_BYTES

/* A value quoted in a reason is cut to this many bytes (plus "..."), so a
 * reason always fits TS_MAX_REASON_BYTES. Escaping can double it. */
#define QUOTE_MAX_BYTES 64u
#define QUOTE_BUF_BYTES (2u * QUOTE_MAX_BYTES + 6u)

_Static_assert(TS_MAX_RECORDS_PER_BATCH == 10000u,
               "update the too-large detail text below");

const struct record_names record_names_default = {
    .player = "player", .score = "score", .winner = "winner"};

struct entry_slot {
  struct batch_entry e;
  enum entry_outcome outcome;
  char *reason;      /* ENTRY_REJECTED: `player "x": store's reason`; owned */
  bool by_exclusion; /* rejected only because its record is excluded */
  bool held;         /* ENTRY_APPLIED, held for an open backfill (decide.h) */
  size_t same_as;    /* the player's previous entry with this eventID in
                        this batch, or NO_ENTRY */
};
#define NO_ENTRY ((size_t)-1)

struct player {
  char *name; /* in the batch's strings */
  size_t name_len;
  struct entry_slot *entries;
  size_t n, cap;
  bool write_noted;  /* batch_player_note_write */
  char *write_token; /* batch_player_set_write_token; NULL: none */
};

struct entry_ref {
  size_t player, entry;
};

struct rec {
  jdoc_ref json; /* the record object as received, in the batch's body
                   (for a Kinesis record, the outer one) */
  /* event_id, item_id and old_player live in the batch's strings. */
  char *event_id;    /* NULL when missing or unusable (a Kinesis record's:
                        the inner change record's) */
  char *item_id;     /* SequenceNumber (a Kinesis record's outer
                        kinesis.sequenceNumber), else eventID, else
                        "#<index>" */
  char *poison;      /* why the record is undecodable, else NULL */
  int64_t created_s; /* ApproximateCreationDateTime, 0: unknown */
  bool excluded;     /* another of its entries was rejected: apply none */
  struct entry_ref refs[2]; /* at most: old player and new player */
  size_t n_refs;
  char *json_text;    /* compact JSON, made on demand by batch_rejected() */
  struct jdoc *inner; /* a Kinesis record's change record, or NULL */
  bool has_seq;       /* item_id is the SequenceNumber */
  struct batch_change change;
  char *old_player; /* change.old_player's storage */
};

/* While decoding: the batch's players by name, and their entries by
 * (player, eventID), so that a repeat in the batch finds the entry before
 * it. Open addressing with linear probing, sized up front for two entries
 * per record at most half full, so it never grows and never fills. The
 * hashes start from hash_seed(): a client cannot choose names that share
 * slots. */
struct index_slot {
  uint64_t h;
  uint32_t player; /* index in b->players + 1; 0: an empty slot */
  uint32_t entry;  /* events: the player's latest entry with this eventID */
};

struct index {
  struct index_slot *names, *events; /* one allocation, names first */
  size_t mask;
  uint64_t seed;
};

/* Records whose outcome is RECORD_REJECTED, in record order. A cache that
 * the const accessors rebuild after the outcomes changed; its array is
 * allocated with the batch, so rebuilding cannot fail. */
struct rejected_index {
  bool valid;
  size_t n;
  size_t *records;
};

struct batch {
  struct jdoc *body;     /* the records as received; owned */
  struct arena *strings; /* every rec's and player's decoded strings */
  struct rec *recs;
  size_t n_recs;
  struct player *players;
  size_t n_players, cap_players;
  size_t modify_without_old, remove_without_old, ttl_removes_skipped;
  struct rejected_index *rejected;
};

/* ---- text helpers ---- */

/* A heap copy of text for a reason: at most TS_MAX_REASON_BYTES - 1 bytes,
 * cut on a character boundary, invalid UTF-8 and control bytes replaced by
 * '?', so that it can always go into a JSON string. NULL on NOMEM. */
static char *reason_dup(const char *text) {
  size_t len = strlen(text);
  char *out = malloc(TS_MAX_REASON_BYTES);
  if (!out)
    return NULL;
  const unsigned char *p = (const unsigned char *)text;
  size_t o = 0;
  for (size_t i = 0; i < len;) {
    size_t n = utf8_sequence_length(p + i, len - i);
    if (n == 0 || (n == 1 && (p[i] < 0x20 || p[i] == 0x7F))) {
      if (o + 1 > TS_MAX_REASON_BYTES - 1)
        break;
      out[o++] = '?';
      i++;
      continue;
    }
    if (o + n > TS_MAX_REASON_BYTES - 1)
      break;
    memcpy(out + o, p + i, n);
    o += n;
    i += n;
  }
  out[o] = '\0';
  return out;
}

/* Writes s as a short quoted excerpt for a reason: "..." with '"' and '\'
 * escaped, cut after QUOTE_MAX_BYTES on a character boundary. */
static void quote(char dst[QUOTE_BUF_BYTES], const char *s, size_t len) {
  size_t cut = len;
  bool truncated = false;
  if (cut > QUOTE_MAX_BYTES) {
    cut = QUOTE_MAX_BYTES;
    while (cut > 0 && ((unsigned char)s[cut] & 0xC0) == 0x80)
      cut--;
    truncated = true;
  }
  size_t o = 0;
  dst[o++] = '"';
  for (size_t i = 0; i < cut; i++) {
    if (s[i] == '"' || s[i] == '\\')
      dst[o++] = '\\';
    dst[o++] = s[i];
  }
  if (truncated) {
    memcpy(dst + o, "...", 3);
    o += 3;
  }
  dst[o++] = '"';
  dst[o] = '\0';
}

static bool equals_ascii_nocase(const char *s, size_t len, const char *word) {
  size_t wlen = strlen(word);
  if (len != wlen)
    return false;
  for (size_t i = 0; i < len; i++) {
    char c = s[i];
    if (c >= 'A' && c <= 'Z')
      c = (char)(c - 'A' + 'a');
    if (c != word[i])
      return false;
  }
  return true;
}

static bool equals(const char *s, size_t len, const char *word) {
  return strlen(word) == len && memcmp(s, word, len) == 0;
}

/* ---- decoding one image ---- */

/* One game as an image describes it. */
struct game {
  char player[TS_MAX_PLAYER_BYTES + 1];
  size_t player_len;
  struct stats contribution; /* (1, 0|1, score) */
};

/* A poison reason being built; fail() fills it. */
struct why {
  char text[TS_MAX_REASON_BYTES];
};

__attribute__((format(printf, 2, 3))) static bool fail(struct why *why,
                                                       const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  /* The analyzer misreads ap as unstarted here. */
  // NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized)
  vsnprintf(why->text, sizeof why->text, fmt, ap);
  va_end(ap);
  return false;
}

/* ---- members by name ---- */

/* A member name and its length. */
struct name {
  const char *s;
  size_t len;
};
#define NAME(lit)                                                              \
  { lit, sizeof lit - 1 }

/* out[i] = the value of obj's member names[i], JDOC_NONE when obj has none
 * (or is not an object). One pass over the members, the last of a
 * repeated name winning as in jansson; a record's objects have a handful
 * of members (docs/BENCHMARKS.md change 29). Names may repeat: each gets
 * the member. */
static void pick(const struct jdoc *d, jdoc_ref obj, const struct name *names,
                 size_t n, jdoc_ref *out) {
  for (size_t i = 0; i < n; i++)
    out[i] = JDOC_NONE;
  if (jdoc_type(d, obj) != JDOC_OBJECT)
    return;
  for (jdoc_ref k = jdoc_first(d, obj); k != JDOC_NONE;
       k = jdoc_next(d, obj, k)) {
    const char *key = jdoc_string(d, k);
    size_t len = jdoc_length(d, k);
    for (size_t i = 0; i < n; i++)
      if (names[i].len == len && memcmp(names[i].s, key, len) == 0)
        out[i] = jdoc_value(k);
  }
}

/* A DynamoDB attribute value has exactly one member, named by its type:
 * true with *type and *v set when attr is one. A repeated member name is
 * one member, its last value (jansson's rule). */
static bool attribute_value(const struct jdoc *d, jdoc_ref attr,
                            struct name *type, jdoc_ref *v) {
  jdoc_ref k =
      jdoc_type(d, attr) == JDOC_OBJECT ? jdoc_first(d, attr) : JDOC_NONE;
  if (k == JDOC_NONE)
    return false;
  *type = (struct name){jdoc_string(d, k), jdoc_length(d, k)};
  *v = jdoc_value(k);
  while ((k = jdoc_next(d, attr, k)) != JDOC_NONE) {
    if (jdoc_length(d, k) != type->len ||
        memcmp(jdoc_string(d, k), type->s, type->len) != 0)
      return false;
    *v = jdoc_value(k);
  }
  return true;
}

static bool is_string(const struct jdoc *d, jdoc_ref v) {
  return jdoc_type(d, v) == JDOC_STRING;
}

/* The image's attributes are picked by the caller: attr is the one named
 * `name`, JDOC_NONE when the image has none. */
static bool decode_player(const struct jdoc *d, jdoc_ref attr, const char *img,
                          const char *name, struct game *g, struct why *why) {
  if (attr == JDOC_NONE)
    return fail(why, "%s: %s is missing", img, name);
  struct name type;
  jdoc_ref v;
  if (!attribute_value(d, attr, &type, &v))
    return fail(why, "%s: %s is not a DynamoDB attribute value", img, name);
  if (equals(type.s, type.len, "S")) {
    if (!is_string(d, v))
      return fail(why, "%s: %s S value is not a string", img, name);
    const char *s = jdoc_string(d, v);
    size_t len = jdoc_length(d, v);
    if (len == 0)
      return fail(why, "%s: %s is empty", img, name);
    if (len > TS_MAX_PLAYER_BYTES)
      return fail(why, "%s: %s is longer than %u bytes", img, name,
                  TS_MAX_PLAYER_BYTES);
    if (!utf8_valid(s, len))
      return fail(why, "%s: %s is not valid UTF-8", img, name);
    memcpy(g->player, s, len);
    g->player[len] = '\0';
    g->player_len = len;
    return true;
  }
  if (equals(type.s, type.len, "N")) {
    if (!is_string(d, v))
      return fail(why, "%s: %s N value is not a string", img, name);
    struct decimal dec;
    enum ts_status st =
        decimal_parse(jdoc_string(d, v), jdoc_length(d, v), &dec);
    if (st != TS_OK) {
      char q[QUOTE_BUF_BYTES];
      quote(q, jdoc_string(d, v), jdoc_length(d, v));
      return fail(why, "%s: %s N %s is %s", img, name, q,
                  st == TS_ERR_RANGE ? "out of range" : "not a number");
    }
    /* The canonical text, so that 42, 42.0 and 4.2e1 are one player. */
    g->player_len = decimal_format(dec, g->player);
    return true;
  }
  return fail(why, "%s: %s must be S or N", img, name);
}

static bool decode_score(const struct jdoc *d, jdoc_ref attr, const char *img,
                         const char *name, struct decimal *score,
                         struct why *why) {
  if (attr == JDOC_NONE)
    return fail(why, "%s: %s is missing", img, name);
  struct name type;
  jdoc_ref v;
  if (!attribute_value(d, attr, &type, &v))
    return fail(why, "%s: %s is not a DynamoDB attribute value", img, name);
  if (!equals(type.s, type.len, "N"))
    return fail(why, "%s: %s must be N", img, name);
  if (!is_string(d, v))
    return fail(why, "%s: %s N value is not a string", img, name);
  const char *s = jdoc_string(d, v);
  size_t len = jdoc_length(d, v);
  if (decimal_parse_score(s, len, score) == TS_OK)
    return true;
  /* Which rule it breaks (a score is a decimal within the score bounds). */
  char q[QUOTE_BUF_BYTES];
  quote(q, s, len);
  struct decimal dec;
  enum ts_status st = decimal_parse(s, len, &dec);
  if (st == TS_ERR_RANGE)
    return fail(why, "%s: %s %s is out of range", img, name, q);
  if (st != TS_OK)
    return fail(why, "%s: %s %s is not a number", img, name, q);
  if (dec.scale > TS_SCORE_MAX_SCALE)
    return fail(why, "%s: %s %s has more than %d decimal places", img, name, q,
                TS_SCORE_MAX_SCALE);
  return fail(why, "%s: %s %s has more than %d integer digits", img, name, q,
              TS_SCORE_MAX_INT_DIGITS);
}

/* winner: absent, BOOL false, NULL, N 0, S "" and S "false" (any case) are
 * not a win; any other present value is. A malformed typed value (BOOL not
 * a boolean, N not a number, ...) is unusable, hence poison. */
static bool decode_winner(const struct jdoc *d, jdoc_ref attr, const char *img,
                          const char *name, bool *win, struct why *why) {
  *win = false;
  if (attr == JDOC_NONE)
    return true;
  struct name type;
  jdoc_ref v;
  if (!attribute_value(d, attr, &type, &v))
    return fail(why, "%s: %s is not a DynamoDB attribute value", img, name);
  if (equals(type.s, type.len, "BOOL")) {
    enum jdoc_type t = jdoc_type(d, v);
    if (t != JDOC_TRUE && t != JDOC_FALSE)
      return fail(why, "%s: %s BOOL value is not a boolean", img, name);
    *win = t == JDOC_TRUE;
    return true;
  }
  if (equals(type.s, type.len, "NULL"))
    return true;
  if (equals(type.s, type.len, "N")) {
    if (!is_string(d, v))
      return fail(why, "%s: %s N value is not a string", img, name);
    struct decimal dec;
    enum ts_status st =
        decimal_parse(jdoc_string(d, v), jdoc_length(d, v), &dec);
    if (st == TS_ERR_INVALID) {
      char q[QUOTE_BUF_BYTES];
      quote(q, jdoc_string(d, v), jdoc_length(d, v));
      return fail(why, "%s: %s N %s is not a number", img, name, q);
    }
    /* Out of range means too large or too precise, and so not zero. */
    *win = st == TS_ERR_RANGE || !decimal_is_zero(dec);
    return true;
  }
  if (equals(type.s, type.len, "S")) {
    if (!is_string(d, v))
      return fail(why, "%s: %s S value is not a string", img, name);
    size_t len = jdoc_length(d, v);
    *win = len != 0 && !equals_ascii_nocase(jdoc_string(d, v), len, "false");
    return true;
  }
  *win = true; /* L, M, SS, B, ...: present and not false */
  return true;
}

static bool decode_image(const struct jdoc *d, jdoc_ref image, const char *img,
                         const struct record_names *names, struct game *g,
                         struct why *why) {
  enum { PLAYER, SCORE, WINNER };
  const struct name wanted[] = {
      [PLAYER] = {names->player, strlen(names->player)},
      [SCORE] = {names->score, strlen(names->score)},
      [WINNER] = {names->winner, strlen(names->winner)}};
  jdoc_ref attr[3];
  pick(d, image, wanted, 3, attr);
  struct decimal score;
  bool win;
  if (!decode_player(d, attr[PLAYER], img, names->player, g, why) ||
      !decode_score(d, attr[SCORE], img, names->score, &score, why) ||
      !decode_winner(d, attr[WINNER], img, names->winner, &win, why))
    return false;
  g->contribution = (struct stats){1, win ? 1 : 0, score};
  return true;
}

/* ---- folding into players and entries ---- */

static struct stats negated(const struct stats *s) {
  return (struct stats){-s->games, -s->wins, decimal_neg(s->total_score)};
}

static enum ts_status index_new(size_t records, struct index *ix) {
  size_t cap = 16;
  while (cap < 4 * records) /* records <= TS_MAX_RECORDS_PER_BATCH */
    cap *= 2;
  ix->names = calloc(2 * cap, sizeof *ix->names);
  ix->events = ix->names ? ix->names + cap : NULL;
  ix->mask = cap - 1;
  ix->seed = hash_seed();
  return ix->names ? TS_OK : TS_ERR_NOMEM;
}

static void index_free(struct index *ix) { free(ix->names); }

/* The slot of player name: its own, or the empty one where it goes. */
static struct index_slot *name_slot(const struct index *ix,
                                    const struct batch *b, const char *name,
                                    size_t len, uint64_t h) {
  for (size_t i = h & ix->mask;; i = (i + 1) & ix->mask) {
    struct index_slot *s = &ix->names[i];
    if (!s->player)
      return s;
    const struct player *pl = &b->players[s->player - 1];
    if (s->h == h && pl->name_len == len && memcmp(pl->name, name, len) == 0)
      return s;
  }
}

/* The slot of (player p, event_id): the player's latest entry with that
 * eventID, or the empty slot where it goes. */
static struct index_slot *event_slot(const struct index *ix,
                                     const struct batch *b, size_t p,
                                     const char *event_id, uint64_t h) {
  for (size_t i = h & ix->mask;; i = (i + 1) & ix->mask) {
    struct index_slot *s = &ix->events[i];
    if (!s->player)
      return s;
    if (s->h == h && s->player == p + 1 &&
        strcmp(b->players[p].entries[s->entry].e.event_id, event_id) == 0)
      return s;
  }
}

/* Appends r's entry for player name with delta, unless the delta is zero. */
static enum ts_status add_entry(struct batch *b, struct rec *r, size_t record,
                                const char *name, size_t len,
                                const struct stats *delta, struct index *ix) {
  if (stats_is_zero(delta))
    return TS_OK;
  uint64_t h = hash_mix(hash_fnv1a(ix->seed, name, len));
  struct index_slot *known = name_slot(ix, b, name, len, h);
  size_t p;
  if (known->player) {
    p = known->player - 1;
  } else {
    if (b->n_players == b->cap_players) {
      size_t cap = b->cap_players ? 2 * b->cap_players : 8;
      struct player *grown = realloc(b->players, cap * sizeof *grown);
      if (!grown)
        return TS_ERR_NOMEM;
      b->players = grown;
      b->cap_players = cap;
    }
    p = b->n_players;
    struct player *pl = &b->players[p];
    *pl = (struct player){.name_len = len};
    if (!(pl->name = arena_strndup(b->strings, name, len)))
      return TS_ERR_NOMEM;
    b->n_players++;
    *known = (struct index_slot){.h = h, .player = (uint32_t)(p + 1)};
  }
  struct player *pl = &b->players[p];
  if (pl->n == pl->cap) {
    size_t cap = pl->cap ? 2 * pl->cap : 4;
    struct entry_slot *grown = realloc(pl->entries, cap * sizeof *grown);
    if (!grown)
      return TS_ERR_NOMEM;
    pl->entries = grown;
    pl->cap = cap;
  }
  /* (player, eventID) seen before in this batch: link to that entry, so
   * that the store can tell whether its effect is already applied. */
  uint64_t he = hash_fnv1a(ix->seed, &p, sizeof p);
  he = hash_mix(hash_fnv1a(he, r->event_id, strlen(r->event_id)));
  struct index_slot *prev = event_slot(ix, b, p, r->event_id, he);
  size_t same_as = prev->player ? prev->entry : NO_ENTRY;
  *prev = (struct index_slot){
      .h = he, .player = (uint32_t)(p + 1), .entry = (uint32_t)pl->n};
  pl->entries[pl->n] = (struct entry_slot){.e = {.record = record,
                                                 .event_id = r->event_id,
                                                 .delta = *delta,
                                                 .created_s = r->created_s,
                                                 .change = &r->change},
                                           .outcome = ENTRY_PENDING,
                                           .reason = NULL,
                                           .same_as = same_as};
  r->refs[r->n_refs++] = (struct entry_ref){p, pl->n};
  pl->n++;
  return TS_OK;
}

/* The members of a change record and of its dynamodb that decoding reads,
 * picked once (pick()). */
enum {
  C_EVENT_ID,
  C_EVENT_NAME,
  C_EVENT_SOURCE,
  C_DYNAMODB,
  C_KINESIS,
  C_USER_IDENTITY,
  C_COUNT
};
enum { D_SEQ, D_CREATED, D_NEW, D_OLD, D_VIEW, D_KEYS, D_COUNT };

struct change_view {
  const struct jdoc *doc; /* the record's document */
  jdoc_ref m[C_COUNT];    /* the record's */
  jdoc_ref d[D_COUNT];    /* its dynamodb's; all JDOC_NONE when not an
                             object */
};

static void view_of(const struct jdoc *doc, jdoc_ref change,
                    struct change_view *v) {
  static const struct name record[C_COUNT] = {
      [C_EVENT_ID] = NAME("eventID"),
      [C_EVENT_NAME] = NAME("eventName"),
      [C_EVENT_SOURCE] = NAME("eventSource"),
      [C_DYNAMODB] = NAME("dynamodb"),
      [C_KINESIS] = NAME("kinesis"),
      [C_USER_IDENTITY] = NAME("userIdentity")};
  static const struct name ddb[D_COUNT] = {
      [D_SEQ] = NAME("SequenceNumber"),
      [D_CREATED] = NAME("ApproximateCreationDateTime"),
      [D_NEW] = NAME("NewImage"),
      [D_OLD] = NAME("OldImage"),
      [D_VIEW] = NAME("StreamViewType"),
      [D_KEYS] = NAME("Keys")};
  v->doc = doc;
  pick(doc, change, record, C_COUNT, v->m);
  pick(doc, v->m[C_DYNAMODB], ddb, D_COUNT, v->d);
}

/* An image member of dynamodb (v, named key): JDOC_NONE when absent or
 * JSON null. */
static bool get_image(const struct jdoc *d, jdoc_ref v, const char *key,
                      jdoc_ref *out, struct why *why) {
  *out = JDOC_NONE;
  enum jdoc_type t = jdoc_type(d, v);
  if (t == JDOC_ABSENT || t == JDOC_NULL)
    return true;
  if (t != JDOC_OBJECT)
    return fail(why, "dynamodb.%s is not an object", key);
  *out = v;
  return true;
}

enum event_name { EVENT_INSERT, EVENT_MODIFY, EVENT_REMOVE };

/* Validates eventID. Returns false with why set when it is unusable. A
 * repeat of an eventID is not decided here: see add_entry(). */
static bool decode_event_id(struct batch *b, struct rec *r,
                            const struct change_view *change, struct why *why,
                            enum ts_status *st) {
  const struct jdoc *d = change->doc;
  jdoc_ref id = change->m[C_EVENT_ID];
  if (id == JDOC_NONE)
    return fail(why, "missing eventID");
  if (!is_string(d, id))
    return fail(why, "eventID is not a string");
  const char *s = jdoc_string(d, id);
  size_t len = jdoc_length(d, id);
  if (len == 0)
    return fail(why, "eventID is empty");
  if (len > TS_MAX_EVENT_ID_BYTES)
    return fail(why, "eventID is longer than %u bytes", TS_MAX_EVENT_ID_BYTES);
  if (!utf8_valid(s, len))
    return fail(why, "eventID is not valid UTF-8");
  if (!(r->event_id = arena_strndup(b->strings, s, len)))
    *st = TS_ERR_NOMEM;
  return true;
}

/* True when DynamoDB's Time to Live made the change: its userIdentity
 * (who) is {"type":"Service","principalId":"dynamodb.amazonaws.com"}. */
static bool made_by_ttl(const struct jdoc *d, jdoc_ref who) {
  jdoc_ref type = jdoc_get(d, who, "type");
  jdoc_ref principal = jdoc_get(d, who, "principalId");
  return is_string(d, type) && is_string(d, principal) &&
         strcmp(jdoc_string(d, type), "Service") == 0 &&
         strcmp(jdoc_string(d, principal), "dynamodb.amazonaws.com") == 0;
}

/* Everything after the eventID of the change record `change` (r->json, or
 * what a Kinesis record carries): returns false with why set for poison. */
static bool decode_changes(struct batch *b, struct rec *r,
                           const struct change_view *change, size_t index,
                           const struct batch_options *opt, struct index *ix,
                           struct why *why, enum ts_status *st) {
  const struct record_names *names = &opt->names;
  const struct jdoc *d = change->doc;
  jdoc_ref name = change->m[C_EVENT_NAME];
  if (name == JDOC_NONE)
    return fail(why, "missing eventName");
  if (!is_string(d, name))
    return fail(why, "eventName is not a string");
  const char *ns = jdoc_string(d, name);
  size_t nlen = jdoc_length(d, name);
  enum event_name ev;
  if (equals(ns, nlen, "INSERT"))
    ev = EVENT_INSERT;
  else if (equals(ns, nlen, "MODIFY"))
    ev = EVENT_MODIFY;
  else if (equals(ns, nlen, "REMOVE"))
    ev = EVENT_REMOVE;
  else {
    char q[QUOTE_BUF_BYTES];
    quote(q, ns, nlen);
    return fail(why, "eventName %s is not INSERT, MODIFY or REMOVE", q);
  }
  jdoc_ref ddb = change->m[C_DYNAMODB];
  if (ddb == JDOC_NONE)
    return fail(why, "missing dynamodb");
  if (jdoc_type(d, ddb) != JDOC_OBJECT)
    return fail(why, "dynamodb is not an object");
  jdoc_ref new_image, old_image;
  if (!get_image(d, change->d[D_NEW], "NewImage", &new_image, why) ||
      !get_image(d, change->d[D_OLD], "OldImage", &old_image, why))
    return false;

  /* Decode first, fold after: a poison record has no entries. */
  struct game gn, go;
  bool use_new = ev != EVENT_REMOVE,
       use_old = ev != EVENT_INSERT && old_image != JDOC_NONE;
  if (use_new && new_image == JDOC_NONE) {
    /* Usually a stream that does not carry images: say which it is. */
    jdoc_ref view = change->d[D_VIEW];
    if (!is_string(d, view))
      return fail(why, "%s without dynamodb.NewImage",
                  ev == EVENT_INSERT ? "INSERT" : "MODIFY");
    char q[QUOTE_BUF_BYTES];
    quote(q, jdoc_string(d, view), jdoc_length(d, view));
    return fail(why,
                "%s without dynamodb.NewImage (StreamViewType %s; the "
                "stream needs NEW_AND_OLD_IMAGES)",
                ev == EVENT_INSERT ? "INSERT" : "MODIFY", q);
  }
  if (use_new && !decode_image(d, new_image, "NewImage", names, &gn, why))
    return false;
  if (use_old && !decode_image(d, old_image, "OldImage", names, &go, why))
    return false;
  r->change.doc = d;
  r->change.keys = jdoc_type(d, change->d[D_KEYS]) == JDOC_OBJECT
                       ? change->d[D_KEYS]
                       : JDOC_NONE;
  r->change.seq = r->has_seq ? r->item_id : NULL;
  if (use_old) {
    if (!(r->old_player =
              arena_strndup(b->strings, go.player, go.player_len))) {
      *st = TS_ERR_NOMEM;
      return true;
    }
    r->change.has_old = true;
    r->change.old_player = r->old_player;
    r->change.old = go.contribution;
  }

  if (ev == EVENT_REMOVE && !use_old) {
    b->remove_without_old++;
    return true;
  }
  if (ev == EVENT_REMOVE && !opt->ttl_removes_subtract &&
      made_by_ttl(d, change->m[C_USER_IDENTITY])) {
    b->ttl_removes_skipped++;
    return true;
  }
  if (ev == EVENT_MODIFY && !use_old)
    b->modify_without_old++;
  if (use_new && use_old && gn.player_len == go.player_len &&
      memcmp(gn.player, go.player, gn.player_len) == 0) {
    struct stats net = {gn.contribution.games - go.contribution.games,
                        gn.contribution.wins - go.contribution.wins,
                        {0, 0}};
    if (decimal_sub(gn.contribution.total_score, go.contribution.total_score,
                    &net.total_score) != TS_OK)
      return fail(why, "score difference is out of range");
    *st = add_entry(b, r, index, gn.player, gn.player_len, &net, ix);
    return true;
  }
  if (use_old) {
    struct stats minus = negated(&go.contribution);
    *st = add_entry(b, r, index, go.player, go.player_len, &minus, ix);
    if (*st != TS_OK)
      return true;
  }
  if (use_new)
    *st =
        add_entry(b, r, index, gn.player, gn.player_len, &gn.contribution, ix);
  return true;
}

/* dynamodb.ApproximateCreationDateTime in unix seconds, 0 when it is
 * absent or not a plausible time: a JSON number (seconds; past 10^11 it is
 * milliseconds, past 10^14 microseconds: Kinesis Data Streams for
 * DynamoDB sends either, by the table's ApproximateCreationDateTime-
 * Precision; the ranges do not meet before the year 5138) or a string of
 * digits. ISO 8601 text (some SDKs) is not
 * decoded: 0, which only costs the store a wider lookup. */
static int64_t decode_created(const struct jdoc *d, jdoc_ref v) {
  double t = 0;
  enum jdoc_type type = jdoc_type(d, v);
  if (type == JDOC_INTEGER || type == JDOC_REAL) {
    t = jdoc_number(d, v);
  } else if (type == JDOC_STRING && jdoc_length(d, v) > 0 &&
             jdoc_length(d, v) < 20) {
    const char *s = jdoc_string(d, v);
    for (const char *c = s; *c; c++)
      if (*c < '0' || *c > '9')
        return 0;
    t = strtod(s, NULL);
  }
  if (t >= 1e14)
    t /= 1e6;
  else if (t >= 1e11)
    t /= 1000.0;
  return t >= 1.0 && t < 4294967296.0 ? (int64_t)t : 0;
}

/* An identifier for the answer and the dead letters (a SequenceNumber,
 * a Kinesis sequenceNumber) when v is a usable one: *out stays NULL when
 * it is not. Only allocation failure is an error. */
static enum ts_status item_identifier(struct batch *b, const struct jdoc *d,
                                      jdoc_ref v, char **out) {
  size_t len = jdoc_length(d, v);
  if (is_string(d, v) && len > 0 && len <= MAX_ITEM_IDENTIFIER_BYTES &&
      !(*out = arena_strndup(b->strings, jdoc_string(d, v), len)))
    return TS_ERR_NOMEM;
  return TS_OK;
}

/* A Kinesis record (Kinesis Data Streams for DynamoDB, as a Lambda or a
 * Pipe delivers it): it has a `kinesis` member, or says eventSource
 * "aws:kinesis". */
static bool is_kinesis(const struct change_view *record) {
  jdoc_ref source = record->m[C_EVENT_SOURCE];
  return record->m[C_KINESIS] != JDOC_NONE ||
         (is_string(record->doc, source) &&
          strcmp(jdoc_string(record->doc, source), "aws:kinesis") == 0);
}

/* The DynamoDB change record a Kinesis record carries: kinesis.data is
 * strict base64 (common/base64.h) of at most TS_MAX_BODY_BYTES of JSON
 * text (common/json_parse.h, which refuses a NUL byte) holding an object.
 * Returns false with why set when it is poison; *inner (a new document)
 * otherwise, or NULL with *st set on allocation failure. */
static bool unwrap_kinesis(const struct change_view *record,
                           struct jdoc **inner, struct why *why,
                           enum ts_status *st) {
  const struct jdoc *d = record->doc;
  *inner = NULL;
  jdoc_ref k = record->m[C_KINESIS];
  if (k == JDOC_NONE)
    return fail(why, "missing kinesis");
  if (jdoc_type(d, k) != JDOC_OBJECT)
    return fail(why, "kinesis is not an object");
  jdoc_ref data = jdoc_get(d, k, "data");
  if (data == JDOC_NONE)
    return fail(why, "missing kinesis.data");
  if (!is_string(d, data))
    return fail(why, "kinesis.data is not a string");
  size_t data_len = jdoc_length(d, data);
  if (data_len == 0)
    return fail(why, "kinesis.data is empty");
  unsigned char *bytes = NULL;
  size_t n = 0;
  struct base64_error berr = {"", 0};
  switch (base64_decode(jdoc_string(d, data), data_len, TS_MAX_BODY_BYTES,
                        &bytes, &n, &berr)) {
  case TS_OK: break;
  case TS_ERR_NOMEM: *st = TS_ERR_NOMEM; return true;
  case TS_ERR_TOO_LARGE:
    return fail(why, "kinesis.data decodes to more than %u bytes",
                TS_MAX_BODY_BYTES);
  default:
    if (berr.offset >= data_len) /* its length */
      return fail(why, "kinesis.data is not base64: %s (%zu characters)",
                  berr.what, data_len);
    return fail(why, "kinesis.data is not base64: %s at byte %zu", berr.what,
                berr.offset + 1);
  }
  struct json_parse_error jerr = {"", 0, 0};
  enum ts_status ps = jdoc_parse((const char *)bytes, n, inner, &jerr);
  free(bytes);
  if (ps == TS_ERR_NOMEM) {
    *st = TS_ERR_NOMEM;
    return true;
  }
  if (ps != TS_OK)
    return fail(why, "kinesis.data is not JSON: %s at line %d, column %d",
                jerr.text, jerr.line, jerr.column);
  if (jdoc_type(*inner, jdoc_root(*inner)) != JDOC_OBJECT) {
    jdoc_free(*inner);
    *inner = NULL;
    return fail(why, "kinesis.data is not a JSON object");
  }
  return true;
}

/* Decodes record `index`. Only allocation failure is an error; unusable
 * content makes the record poison.
 *
 * A Kinesis record is unwrapped first; the change record inside then goes
 * through exactly the decoding of a DynamoDB Streams record. Its eventID
 * is the inner one (the outer eventID and sequenceNumber differ per
 * delivery and shard, so exactly-once must not key on them), its
 * itemIdentifier the outer kinesis.sequenceNumber (what a Pipe's partial
 * batch failure names), and it has no per-item SequenceNumber
 * (change.seq NULL). The dead letter keeps the outer record. */
static enum ts_status decode_record(struct batch *b, size_t index,
                                    const struct batch_options *opt,
                                    struct index *ix) {
  struct rec *r = &b->recs[index];
  struct why why = {{0}};
  enum ts_status st = TS_OK;
  struct jdoc *inner = NULL;
  struct change_view change;
  view_of(b->body, r->json, &change);
  bool kinesis = is_kinesis(&change), ok = true;

  if (kinesis) {
    st = item_identifier(
        b, b->body, jdoc_get(b->body, change.m[C_KINESIS], "sequenceNumber"),
        &r->item_id);
    if (st == TS_OK)
      ok = unwrap_kinesis(&change, &inner, &why, &st);
    view_of(inner, jdoc_root(inner), &change); /* none when NULL */
  } else {
    st = item_identifier(b, b->body, change.d[D_SEQ], &r->item_id);
    r->has_seq = r->item_id != NULL;
  }
  if (st != TS_OK)
    goto out;
  bool unwrapped = ok; /* poison from here on is the change record's */

  r->created_s = ok ? decode_created(change.doc, change.d[D_CREATED]) : 0;
  if (ok)
    ok = decode_event_id(b, r, &change, &why, &st);
  if (st != TS_OK)
    goto out;
  if (ok && !r->item_id &&
      !(r->item_id =
            arena_strndup(b->strings, r->event_id, strlen(r->event_id)))) {
    st = TS_ERR_NOMEM;
    goto out;
  }
  if (!r->item_id) { /* neither: its position, never null in the answer */
    char pos[24];
    int n = snprintf(pos, sizeof pos, "#%zu", index);
    if (!(r->item_id = arena_strndup(b->strings, pos, (size_t)n))) {
      st = TS_ERR_NOMEM;
      goto out;
    }
  }
  if (ok)
    ok = decode_changes(b, r, &change, index, opt, ix, &why, &st);
  if (st != TS_OK || ok)
    goto out;
  if (kinesis && unwrapped) {
    /* Say that the fault is inside the data, not in the outer record. */
    char text[sizeof why.text + 16];
    snprintf(text, sizeof text, "kinesis.data: %s", why.text);
    r->poison = reason_dup(text);
  } else {
    r->poison = reason_dup(why.text);
  }
  if (!r->poison)
    st = TS_ERR_NOMEM;
out:
  /* The inner document stays for change.keys (the dead letter keeps the
   * outer record). */
  r->inner = inner;
  return st;
}

/* ---- life cycle ---- */

static void invalidate_rejected(struct batch *b) { b->rejected->valid = false; }

enum ts_status batch_new(struct jdoc *body, const struct record_names *names,
                         struct batch **out, const char **detail) {
  struct batch_options opt = {.names = names ? *names : record_names_default};
  return batch_new_with(body, &opt, out, detail);
}

enum ts_status batch_new_with(struct jdoc *body,
                              const struct batch_options *opt,
                              struct batch **out, const char **detail) {
  const char *ignored;
  if (!detail)
    detail = &ignored;
  *out = NULL;
  *detail = NULL;
  static const struct batch_options defaults = {
      .names = {"player", "score", "winner"}};
  if (!opt)
    opt = &defaults;
  enum ts_status st = TS_ERR_INVALID;
  struct index ix = {0};
  struct batch *b = NULL;

  jdoc_ref root = jdoc_root(body), records = JDOC_NONE;
  size_t n;
  if (jdoc_type(body, root) == JDOC_OBJECT) {
    records = jdoc_get(body, root, "Records");
    if (records != JDOC_NONE && jdoc_type(body, records) != JDOC_ARRAY) {
      *detail = "\"Records\" is not an array";
      goto fail;
    }
  } else if (jdoc_type(body, root) == JDOC_ARRAY) {
    records = root;
  } else {
    *detail = "the body is not a JSON object or array";
    goto fail;
  }
  /* no Records: the body is one record */
  n = records != JDOC_NONE ? jdoc_count(body, records) : 1;
  if (n > TS_MAX_RECORDS_PER_BATCH) {
    *detail = "the batch has more than 10000 records";
    st = TS_ERR_TOO_LARGE;
    goto fail;
  }
  for (jdoc_ref e = jdoc_first(body, records); e != JDOC_NONE;
       e = jdoc_next(body, records, e)) {
    if (jdoc_type(body, e) != JDOC_OBJECT) {
      *detail = "a record in the batch is not a JSON object";
      goto fail;
    }
  }

  st = TS_ERR_NOMEM;
  b = calloc(1, sizeof *b);
  if (!b || index_new(n, &ix) != TS_OK)
    goto fail;
  b->body = body; /* the batch's from here on */
  body = NULL;
  /* About what a record's eventID, item identifier and player take. */
  if (!(b->strings = arena_new(n * 64)))
    goto fail;
  b->recs = calloc(n ? n : 1, sizeof *b->recs);
  b->rejected = calloc(1, sizeof *b->rejected);
  if (!b->recs || !b->rejected)
    goto fail;
  b->rejected->records = calloc(n ? n : 1, sizeof *b->rejected->records);
  if (!b->rejected->records)
    goto fail;
  jdoc_ref e = records != JDOC_NONE ? jdoc_first(b->body, records) : root;
  for (size_t i = 0; i < n; i++) {
    b->recs[i].json = e;
    b->recs[i].change.keys = JDOC_NONE;
    b->n_recs = i + 1;
    st = decode_record(b, i, opt, &ix);
    if (st != TS_OK)
      goto fail;
    e = jdoc_next(b->body, records, e);
  }
  st = TS_OK;
  *out = b;
  b = NULL;
fail:
  if (st == TS_ERR_NOMEM)
    *detail = "out of memory";
  jdoc_free(body);
  batch_free(b);
  index_free(&ix);
  return st;
}

void batch_free(struct batch *b) {
  if (!b)
    return;
  for (size_t i = 0; i < b->n_recs; i++) {
    struct rec *r = &b->recs[i];
    jdoc_free(r->inner);
    free(r->poison);
    free(r->json_text);
  }
  free(b->recs);
  for (size_t p = 0; p < b->n_players; p++) {
    for (size_t e = 0; e < b->players[p].n; e++)
      free(b->players[p].entries[e].reason);
    free(b->players[p].entries);
    free(b->players[p].write_token);
  }
  free(b->players);
  if (b->rejected)
    free(b->rejected->records);
  free(b->rejected);
  arena_free(b->strings);
  jdoc_free(b->body);
  free(b);
}

/* ---- accessors ---- */

size_t batch_record_count(const struct batch *b) { return b->n_recs; }

size_t batch_player_count(const struct batch *b) { return b->n_players; }

const char *batch_player_name(const struct batch *b, size_t player) {
  return player < b->n_players ? b->players[player].name : NULL;
}

size_t batch_entry_count(const struct batch *b, size_t player) {
  return player < b->n_players ? b->players[player].n : 0;
}

const struct batch_entry *batch_entry(const struct batch *b, size_t player,
                                      size_t entry) {
  if (player >= b->n_players || entry >= b->players[player].n)
    return NULL;
  return &b->players[player].entries[entry].e;
}

/* An outcome without a reason (the caller adds one for ENTRY_REJECTED). */
static void slot_set(struct entry_slot *slot, enum entry_outcome outcome) {
  free(slot->reason);
  slot->reason = NULL;
  slot->outcome = outcome;
  slot->by_exclusion = false;
  slot->held = false;
}

void batch_entry_set_outcome(struct batch *b, size_t player, size_t entry,
                             enum entry_outcome outcome, const char *reason) {
  if (player >= b->n_players || entry >= b->players[player].n)
    return;
  struct entry_slot *slot = &b->players[player].entries[entry];
  slot_set(slot, outcome);
  invalidate_rejected(b);
  if (outcome != ENTRY_REJECTED)
    return;
  /* `player "bob": <reason>`; on NOMEM the reason stays NULL and
   * batch_rejected() reports a fixed text instead. */
  char q[QUOTE_BUF_BYTES], text[TS_MAX_REASON_BYTES];
  const char *name = b->players[player].name;
  quote(q, name, strlen(name));
  snprintf(text, sizeof text, "player %s: %s", q,
           reason ? reason : "rejected by the store");
  slot->reason = reason_dup(text);
}

void batch_entry_set_held(struct batch *b, size_t player, size_t entry) {
  if (player < b->n_players && entry < b->players[player].n &&
      b->players[player].entries[entry].outcome == ENTRY_APPLIED)
    b->players[player].entries[entry].held = true;
}

void batch_player_reset_outcomes(struct batch *b, size_t player) {
  if (player >= b->n_players)
    return;
  for (size_t e = 0; e < b->players[player].n; e++)
    slot_set(&b->players[player].entries[e], ENTRY_PENDING);
  invalidate_rejected(b);
}

void batch_reset_exclusions(struct batch *b) {
  for (size_t i = 0; i < b->n_recs; i++)
    b->recs[i].excluded = false;
}

void batch_reset_outcomes(struct batch *b) {
  for (size_t p = 0; p < b->n_players; p++)
    batch_player_reset_outcomes(b, p);
  batch_reset_exclusions(b);
  invalidate_rejected(b);
}

static const struct entry_slot *slot_of(const struct batch *b,
                                        struct entry_ref ref) {
  return &b->players[ref.player].entries[ref.entry];
}

void batch_player_note_write(struct batch *b, size_t player) {
  if (player < b->n_players)
    b->players[player].write_noted = true;
}

bool batch_player_write_noted(const struct batch *b, size_t player) {
  return player < b->n_players && b->players[player].write_noted;
}

enum ts_status batch_player_set_write_token(struct batch *b, size_t player,
                                            const char *token) {
  if (player >= b->n_players)
    return TS_ERR_INVALID;
  char *copy = NULL;
  if (token && *token && !(copy = strdup(token)))
    return TS_ERR_NOMEM;
  free(b->players[player].write_token);
  b->players[player].write_token = copy;
  return TS_OK;
}

const char *batch_player_write_token(const struct batch *b, size_t player) {
  return player < b->n_players ? b->players[player].write_token : NULL;
}

void batch_player_clear_write_token(struct batch *b, size_t player) {
  if (player < b->n_players) {
    free(b->players[player].write_token);
    b->players[player].write_token = NULL;
  }
}

enum entry_outcome batch_entry_outcome(const struct batch *b, size_t player,
                                       size_t entry) {
  if (player >= b->n_players || entry >= b->players[player].n)
    return ENTRY_PENDING;
  return b->players[player].entries[entry].outcome;
}

bool batch_player_alone(const struct batch *b, size_t player) {
  if (player >= b->n_players)
    return false;
  const struct player *pl = &b->players[player];
  for (size_t e = 0; e < pl->n; e++) {
    const struct rec *r = &b->recs[pl->entries[e].e.record];
    for (size_t k = 0; k < r->n_refs; k++)
      if (r->refs[k].player != player)
        return false;
  }
  return true;
}

size_t batch_exclude_rejected_records(struct batch *b) {
  size_t newly = 0;
  for (size_t i = 0; i < b->n_recs; i++) {
    struct rec *r = &b->recs[i];
    if (r->excluded)
      continue;
    for (size_t k = 0; k < r->n_refs; k++)
      if (slot_of(b, r->refs[k])->outcome == ENTRY_REJECTED) {
        r->excluded = true;
        newly++;
        break;
      }
  }
  return newly;
}

bool batch_entry_excluded(const struct batch *b, size_t player, size_t entry) {
  if (player >= b->n_players || entry >= b->players[player].n)
    return false;
  return b->recs[b->players[player].entries[entry].e.record].excluded;
}

void batch_entry_set_excluded(struct batch *b, size_t player, size_t entry) {
  batch_entry_set_outcome(b, player, entry, ENTRY_REJECTED,
                          "not applied: another part of this record was "
                          "rejected, and a record is applied whole or not "
                          "at all");
  if (player < b->n_players && entry < b->players[player].n)
    b->players[player].entries[entry].by_exclusion = true;
}

bool batch_entry_applied_earlier(const struct batch *b, size_t player,
                                 size_t entry) {
  if (player >= b->n_players || entry >= b->players[player].n)
    return false;
  const struct player *pl = &b->players[player];
  for (size_t e = pl->entries[entry].same_as; e != NO_ENTRY;
       e = pl->entries[e].same_as)
    if (pl->entries[e].outcome == ENTRY_APPLIED ||
        pl->entries[e].outcome == ENTRY_DUPLICATE)
      return true;
  return false;
}

enum record_outcome batch_record_outcome(const struct batch *b, size_t record) {
  if (record >= b->n_recs)
    return RECORD_SKIPPED;
  const struct rec *r = &b->recs[record];
  if (r->poison)
    return RECORD_REJECTED;
  size_t duplicates = 0;
  for (size_t i = 0; i < r->n_refs; i++) {
    enum entry_outcome o = slot_of(b, r->refs[i])->outcome;
    if (o == ENTRY_REJECTED)
      return RECORD_REJECTED;
    duplicates += o == ENTRY_DUPLICATE;
  }
  if (r->n_refs == 0)
    return RECORD_SKIPPED;
  if (duplicates == r->n_refs)
    return RECORD_DUPLICATE;
  return RECORD_APPLIED;
}

/* Rebuilds the rejected-records cache if outcomes changed since. Writes
 * through the const batch into memory the batch owns (a cache). */
static const struct rejected_index *rejected_index(const struct batch *b) {
  struct rejected_index *x = b->rejected;
  if (!x->valid) {
    x->n = 0;
    for (size_t i = 0; i < b->n_recs; i++)
      if (batch_record_outcome(b, i) == RECORD_REJECTED)
        x->records[x->n++] = i;
    x->valid = true;
  }
  return x;
}

size_t batch_rejected_count(const struct batch *b) {
  return rejected_index(b)->n;
}

void batch_rejected_id(const struct batch *b, size_t i, char out[65]) {
  const char *event_id, *item, *reason, *record;
  out[0] = '\0';
  if (i >= batch_rejected_count(b))
    return;
  batch_rejected(b, i, &event_id, &item, &reason, &record);
  /* Without the record's text (it could not be serialised) its
   * identifiers stand in. */
  const char *parts[] = {record ? "record" : "ids", record ? record : event_id,
                         record ? "" : item, reason};
  digest_sha256_hex(parts, 4, out);
}

/* The fields of the i-th rejected record; false when there is none. */
static bool rejected_fields(const struct batch *b, size_t i,
                            struct rec **record, const char **reason) {
  const struct rejected_index *x = rejected_index(b);
  if (i >= x->n)
    return false;
  struct rec *r = &b->recs[x->records[i]];
  *record = r;
  *reason = r->poison;
  /* The entry that was rejected on its own merits names the reason; the
   * record's other entries were only held back with it. */
  for (int pass = 0; pass < 2 && !*reason; pass++)
    for (size_t k = 0; !*reason && k < r->n_refs; k++) {
      const struct entry_slot *slot = slot_of(b, r->refs[k]);
      if (slot->outcome == ENTRY_REJECTED && (pass || !slot->by_exclusion))
        *reason = slot->reason
                      ? slot->reason
                      : "rejected by the store (reason lost: out of memory)";
    }
  return true;
}

void batch_rejected(const struct batch *b, size_t i, const char **event_id,
                    const char **item_identifier, const char **reason,
                    const char **record_json) {
  struct rec *r;
  if (!rejected_fields(b, i, &r, reason)) {
    *event_id = *item_identifier = *reason = *record_json = NULL;
    return;
  }
  *event_id = r->event_id;
  *item_identifier = r->item_id;
  if (!r->json_text) { /* jansson's compact text, as it always was */
    json_t *tree = jdoc_to_json(b->body, r->json);
    r->json_text = tree ? json_dumps(tree, JSON_COMPACT) : NULL; /* NOMEM */
    json_decref(tree);
  }
  *record_json = r->json_text;
}

void batch_counts(const struct batch *b, struct batch_counts *out) {
  *out = (struct batch_counts){.received = b->n_recs,
                               .modify_without_old = b->modify_without_old,
                               .remove_without_old = b->remove_without_old,
                               .ttl_removes_skipped = b->ttl_removes_skipped};
  for (size_t i = 0; i < b->n_recs; i++) {
    switch (batch_record_outcome(b, i)) {
    case RECORD_APPLIED:
      out->applied++;
      for (size_t k = 0; k < b->recs[i].n_refs; k++)
        if (slot_of(b, b->recs[i].refs[k])->held) {
          out->held++;
          break;
        }
      break;
    case RECORD_DUPLICATE: out->duplicates++; break;
    case RECORD_SKIPPED: out->skipped++; break;
    case RECORD_REJECTED: out->rejected++; break;
    }
  }
}

enum ts_status batch_summary_write(const struct batch *b, struct buf *out) {
  struct batch_counts c;
  batch_counts(b, &c);
  buf_addf(out,
           "{\"received\":%zu,\"applied\":%zu,\"duplicates\":%zu,"
           "\"skipped\":%zu,\"rejected\":[",
           c.received, c.applied, c.duplicates, c.skipped);
  size_t n = batch_rejected_count(b);
  for (size_t i = 0; i < n; i++) {
    struct rec *r;
    const char *reason;
    if (!rejected_fields(b, i, &r, &reason))
      break;
    buf_adds(out, i ? ",{" : "{");
    buf_add_json_key(out, "eventID");
    buf_add_json_string_or_null(out, r->event_id);
    buf_add_json_key(out, "itemIdentifier");
    buf_add_json_string_or_null(out, r->item_id);
    buf_add_json_key(out, "reason");
    buf_add_json_string_or_null(out, reason);
    buf_add(out, "}", 1);
  }
  buf_adds(out, "]}");
  return buf_status(out);
}
