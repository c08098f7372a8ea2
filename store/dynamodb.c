/* The DynamoDB backend: the production store, shared by stateless replicas.
 *
 * One item per player in the stats table (key `player` S) holding the
 * seed's attributes (games, wins, avg_score N, win_percent S "66.67%"),
 * plus total_score (exact), updated_at, `version` (optimistic concurrency)
 * and the player's exactly-once log: which eventIDs were applied to it
 * within the retention, each as a 96-bit digest (12 bytes; a false match
 * needs ~2^48 events of one player).
 *
 * The log, bounded in the item (DynamoDB charges a write 1 unit per KB of
 * the whole item, so an item that grew with the player's recent games made
 * every game of a busy player cost tens of units):
 *   - `recent` (B): the newest digests with their records' creation times,
 *     at most TS_APPLIED_RECENT_MAX;
 *   - chunks: when a write would leave more in `recent`, all but the
 *     newest TS_APPLIED_RECENT_KEEP first go, by PutItem, to new immutable
 *     items of the applied-log table (key `id`: player '#' random nonce;
 *     `expires_at` for TTL), and only then is the player's item written,
 *     its `chunks` (B) gaining a descriptor per chunk (nonce, creation-time
 *     range, time spilled, count). A chunk is referenced only after it was
 *     written, so it is read strongly consistent and is always there; a
 *     writer that loses the item's condition leaves its chunk an orphan
 *     nobody refers to (TTL removes it) and writes a new one on its retry.
 *     A spill in the same TS_APPLIED_MERGE_WINDOW_S window as the chunk
 *     spilled last joins it: the new chunk holds that chunk's digests
 *     (read first) and the spilled ones, and its descriptor replaces the
 *     old one, so the item keeps about one descriptor per window however
 *     many games the player has; the old chunk is left to its TTL.
 *   - an eventID was applied when its digest is in `recent` or in a chunk
 *     the item refers to. A record carries the same creation time on every
 *     delivery, so only chunks whose range holds an entry's time are read
 *     (all of them for an entry without one); a new game reads none.
 *   - a descriptor leaves the item TS_DEDUP_RETENTION_S after its chunk
 *     was spilled (every digest in it was applied before).
 *   - items of the former format (`applied`: {"<unix hour>": {"BS":
 *     [digest...]}}) count their digests of hours within the retention as
 *     `recent` records of unknown time; the next write stores the new form.
 * Past TS_MAX_APPLIED_PER_PLAYER digests within the retention a record is
 * rejected (dead-lettered) rather than failing every later batch.
 *
 * store_apply, through store_run_tx:
 *   1. BatchGetItem (strongly consistent) of every player still pending
 *      and not guessed (store/guess.h: this process's last write of it, or
 *      no item for a player it knows nothing of);
 *      expired descriptors dropped; BatchGetItem of the chunks that may hold
 *      an entry not in `recent` (read_chunks);
 *   2. batch_decide() (domain/decide.h) on what was read: an eventID whose
 *      digest was found is a duplicate, the room left is
 *      TS_MAX_APPLIED_PER_PLAYER minus the digests held;
 *   3. PutItem the new chunks, then every changed player in parallel,
 *      conditioned on the version read (attribute_not_exists(player) for a
 *      new one);
 *   4. a failed condition leaves that player pending and the attempt
 *      returns TS_ERR_RETRY: the runner re-reads it and decides again
 *      (players already written are settled: their outcomes stand).
 *      Every such write stores a `write_id` (S) unique to it (a backfill's
 *      settling UpdateItem leaves it as it is). When the item
 *      read back holds the id of the write whose condition failed, that
 *      write had landed on an earlier attempt whose answer was lost (or
 *      libcurl sent it again by itself): its records are this batch's
 *      own, answered applied, not duplicate.
 * A player's write is atomic, so a batch cut short by the deadline (503)
 * leaves some players applied and others not; the resend then finds the
 * applied ones' eventIDs and counts them as duplicates.
 *
 * Rejected records go to a second table (TS_DEAD_LETTER_TABLE, key `id`,
 * batch_rejected_id(): a digest of the record as received and its reason),
 * written once every rejection is final. */
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../aws/creds.h"
#include "../aws/ddb.h"
#include "../common/backoff.h"
#include "../common/bounds.h"
#include "../common/buf.h"
#include "../common/digest.h"
#include "../common/log.h"
#include "../domain/backfill.h"
#include "guess.h"
#include "rank_cache.h"
#include "store_impl.h"
#include "turns.h"

/* Keys in one BatchGetItem call, and puts in one BatchWriteItem call
 * (DynamoDB's limits). */
#define DY_BATCH_GET_MAX 100
#define DY_BATCH_WRITE_MAX 25
/* Deadline for reads (get, list, ping). */
#define DY_READ_DEADLINE_MS 3000u
/* A dead-letter page filtered by reason reads this many items per Scan
 * call, and stops scanning after this long (its next page goes on). */
#define DY_SCAN_PAGE 1000u
#define DY_LIST_BUDGET_MS 1000u
/* Dead-letter records are cut to stay far below the 400 KB item limit. */
#define DY_MAX_RECORD_TEXT (256u * 1024u)
/* A player's PutItem: DynamoDB refuses items over 400 KB anyway. */
#define DY_MAX_PUT_BYTES (512u * 1024u)
/* create-table waits this long for ACTIVE. */
#define DY_CREATE_WAIT_MS 60000u

struct dy {
  struct aws_creds_provider *creds;
  struct ddb_client *client;
  char *table;
  char *dl_table;
  char *log_table; /* applied log: chunks of older applied eventIDs */
  atomic_uint apply_deadline_ms;
  struct rank_cache *board; /* leaderboards: top-K snapshot, see README */
  struct guess *guess;      /* items this process wrote (store/guess.h) */
  struct turns *turns;      /* players a batch is applying (store/turns.h) */
  /* The open backfill session as last read (store.h): "" when none. */
  pthread_mutex_t session_mu;
  char session[72];
  uint64_t session_read_ms;    /* 0: never read */
  char write_prefix[17];       /* random, per process: write ids' prefix */
  atomic_uint_fast64_t writes; /* write ids' counter */
};

/* "<16 hex of write_prefix>-<counter in hex>" */
#define DY_WRITE_ID_MAX 40

/* The item of the applied-log table that names the open backfill session
 * (chunk ids are "<player>#<hex>", never this). */
#define DY_SESSION_ID "#backfill-session"

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

/* ---- the exactly-once log: digests, packed records ---- */

/* An eventID is kept as the first DY_DIGEST bytes of its SHA-256 (a false
 * match needs ~2^48 events of one player). A `recent` record is the digest
 * and the record's creation time (u32 big-endian unix seconds, 0:
 * unknown); a chunk descriptor is the chunk's nonce, the range of its
 * creation times [lo, hi], the time it was spilled and its digest count
 * (u32 big-endian each). Binary attributes: DynamoDB counts their raw
 * bytes, not the base64 of the JSON. */
#define DY_DIGEST 12u
#define DY_RECENT_REC (DY_DIGEST + 4u)
#define DY_NONCE 8u
#define DY_CHUNK_DESC (DY_NONCE + 16u)

static void put_u32(unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)(v >> 24);
  p[1] = (unsigned char)(v >> 16);
  p[2] = (unsigned char)(v >> 8);
  p[3] = (unsigned char)v;
}

static uint32_t get_u32(const unsigned char *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
         (uint32_t)p[3];
}

static uint32_t clamp_u32(int64_t v) {
  return v <= 0 ? 0 : v >= (int64_t)UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

static bool event_digest_raw(const char *event_id,
                             unsigned char out[DY_DIGEST]) {
  unsigned char md[DIGEST_SHA256_BYTES];
  if (!digest_sha256(event_id, strlen(event_id), md))
    return false;
  memcpy(out, md, DY_DIGEST);
  return true;
}

/* The digests a player's log is known to hold (its `recent` records, and
 * the chunks read for the batch): looked up once per record. A small set
 * is scanned (a player's `recent` holds at most 96); a larger one, grown by
 * chunks read, is sorted on its first lookup after an add and searched.
 * Replaces a jansson object keyed by base64 text, which cost about 18k
 * instructions per player to fill (callgrind, 2026-12-04). */
struct digest_set {
  unsigned char *d; /* n digests of DY_DIGEST bytes */
  size_t n, cap;
  bool sorted;
};
#define DY_DSET_SCAN_MAX 128u

static void dset_clear(struct digest_set *s) {
  free(s->d);
  memset(s, 0, sizeof *s);
}

static enum ts_status dset_add(struct digest_set *s,
                               const unsigned char *digest) {
  if (s->n == s->cap) {
    size_t cap = s->cap ? 2 * s->cap : 32;
    unsigned char *p = realloc(s->d, cap * DY_DIGEST);
    if (!p)
      return TS_ERR_NOMEM;
    s->d = p;
    s->cap = cap;
  }
  memcpy(s->d + s->n++ * DY_DIGEST, digest, DY_DIGEST);
  s->sorted = false;
  return TS_OK;
}

static int digest_cmp(const void *a, const void *b) {
  return memcmp(a, b, DY_DIGEST);
}

static bool dset_has(struct digest_set *s, const unsigned char *digest) {
  if (s->n <= DY_DSET_SCAN_MAX) {
    for (size_t i = 0; i < s->n; i++)
      if (memcmp(s->d + i * DY_DIGEST, digest, DY_DIGEST) == 0)
        return true;
    return false;
  }
  if (!s->sorted) {
    qsort(s->d, s->n, DY_DIGEST, digest_cmp);
    s->sorted = true;
  }
  return bsearch(digest, s->d, s->n, DY_DIGEST, digest_cmp) != NULL;
}

/* {"B": base64 of n bytes}, or NULL on NOMEM. */
static json_t *attr_b(const unsigned char *bytes, size_t n) {
  char *text = malloc(4 * ((n + 2) / 3) + 1);
  if (!text)
    return NULL;
  EVP_EncodeBlock((unsigned char *)text, bytes, (int)n);
  json_t *a = json_pack("{s:s}", "B", text);
  free(text);
  return a;
}

/* Decodes the B attribute `name` of item into *out (malloc'd, *n bytes);
 * an absent attribute is empty. TS_ERR_IO when it is not base64 of a whole
 * number of `unit`-byte records. */
static enum ts_status attr_b_take(const json_t *item, const char *name,
                                  size_t unit, unsigned char **out, size_t *n) {
  *out = NULL;
  *n = 0;
  const char *text = attr_text(item, name, "B");
  if (!text)
    return json_object_get(item, name) ? TS_ERR_IO : TS_OK;
  size_t len = strlen(text);
  if (len % 4 != 0 || len > INT32_MAX)
    return TS_ERR_IO;
  if (len == 0)
    return TS_OK;
  *out = malloc(len / 4 * 3);
  if (!*out)
    return TS_ERR_NOMEM;
  int got = EVP_DecodeBlock(*out, (const unsigned char *)text, (int)len);
  size_t pad = text[len - 1] == '=' ? (text[len - 2] == '=' ? 2 : 1) : 0;
  if (got < 0 || (size_t)got < pad)
    return TS_ERR_IO;
  *n = (size_t)got - pad;
  return *n % unit == 0 ? TS_OK : TS_ERR_IO;
}

/* ---- one player's state across attempts ---- */

struct pstate {
  size_t p;     /* player index in the batch */
  bool pending; /* not yet written (or nothing to write) */
  bool turn;    /* claimed in dy->turns: release when written */
  bool waiting; /* pending, but another batch holds the player's turn */
  bool waited;  /* waited at least once (counted once) */
  bool read;    /* item below is current */
  bool exists;
  bool has_version;
  int64_t version;
  char *seed_games; /* for items without version: the condition */
  char *seed_avg;
  struct stats cur;
  /* The log as read: `recent` records oldest first (legacy `applied`
   * digests first of all, time unknown), chunk descriptors, and per
   * descriptor whether its digests were read into `seen`. */
  unsigned char *recent;
  size_t n_recent;
  unsigned char *chunks;
  size_t n_chunks;
  bool *chunk_read;
  struct digest_set seen; /* recent, and the chunks read */
  char *state; /* session_state as read (domain/backfill.h), or NULL */
  /* Taken from this process's last write instead of read (store/guess.h):
   * the write is conditioned on updated_at and the stats as well. */
  bool guessed;
  /* Taken as having no item without reading (guess_take_new): the write
   * is conditioned on there being none, as after such a read. */
  bool guessed_new;
  bool tried_guess; /* once per apply: a wrong guess is then read */
  char guessed_at[32];
  /* What this process wrote, for its leaderboard snapshot. */
  bool wrote;
  struct stats wrote_stats;
  int64_t wrote_version;
  char wrote_at[32];
  /* The item's write_id as read ("" when it has none). */
  char write_id[DY_WRITE_ID_MAX];
  char read_at[32]; /* the item's updated_at as read ("" when none) */
};

static void pstate_reset_item(struct pstate *ps) {
  free(ps->seed_games);
  free(ps->seed_avg);
  ps->seed_games = ps->seed_avg = NULL;
  free(ps->recent);
  free(ps->chunks);
  free(ps->chunk_read);
  ps->recent = ps->chunks = NULL;
  ps->chunk_read = NULL;
  ps->n_recent = ps->n_chunks = 0;
  dset_clear(&ps->seen);
  free(ps->state);
  ps->state = NULL;
  ps->exists = ps->has_version = ps->guessed = ps->guessed_new = false;
  ps->version = 0;
  memset(&ps->cur, 0, sizeof ps->cur);
}

/* Indexes the log taken into ps (an item read or a guess): the digests of
 * `recent` into seen, and a not-yet-read flag per chunk. */
static enum ts_status pstate_index_log(struct pstate *ps) {
  ps->chunk_read = calloc(ps->n_chunks ? ps->n_chunks : 1, sizeof(bool));
  if (!ps->chunk_read)
    return TS_ERR_NOMEM;
  enum ts_status st = TS_OK;
  for (size_t i = 0; st == TS_OK && i < ps->n_recent; i++)
    st = dset_add(&ps->seen, ps->recent + i * DY_RECENT_REC);
  return st;
}

/* Items written before the applied log (an `applied` map of unix hour ->
 * binary set of base64 digests) keep counting: their digests of hours
 * within the retention become `recent` records of unknown time, and the
 * next write stores them in the new form. */
static enum ts_status take_legacy_applied(struct pstate *ps,
                                          const json_t *item) {
  json_t *map = json_object_get(json_object_get(item, "applied"), "M");
  int64_t oldest_hour =
      ((int64_t)time(NULL) - (int64_t)TS_DEDUP_RETENTION_S) / 3600;
  size_t total = 0;
  const char *hour_text;
  json_t *v;
  json_object_foreach(map, hour_text, v) {
    if (!json_is_array(json_object_get(v, "BS")))
      return TS_ERR_IO;
    total += json_array_size(json_object_get(v, "BS"));
  }
  if (total == 0)
    return TS_OK;
  unsigned char *grown =
      realloc(ps->recent, (ps->n_recent + total) * DY_RECENT_REC);
  if (!grown)
    return TS_ERR_NOMEM;
  ps->recent = grown;
  /* Legacy records go first: they are the oldest. */
  memmove(ps->recent + total * DY_RECENT_REC, ps->recent,
          ps->n_recent * DY_RECENT_REC);
  size_t k = 0;
  json_object_foreach(map, hour_text, v) {
    int64_t hour;
    if (!parse_int64(hour_text, &hour))
      return TS_ERR_IO;
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(v, "BS"), i, d) {
      unsigned char raw[16];
      const char *text = json_string_value(d);
      if (!text || strlen(text) != 16 ||
          EVP_DecodeBlock(raw, (const unsigned char *)text, 16) != 12)
        return TS_ERR_IO;
      if (hour < oldest_hour)
        continue; /* past the retention: dropped, as before */
      unsigned char *rec = ps->recent + k++ * DY_RECENT_REC;
      memcpy(rec, raw, DY_DIGEST);
      put_u32(rec + DY_DIGEST, 0);
    }
  }
  memmove(ps->recent + k * DY_RECENT_REC, ps->recent + total * DY_RECENT_REC,
          ps->n_recent * DY_RECENT_REC);
  ps->n_recent += k;
  return TS_OK;
}

/* Takes the item read from the table (NULL: no item) into ps. Items the
 * original Lambda wrote have no total_score: it is adopted as
 * avg_score * games (exact for the Lambda's integer averages; its average
 * was not a true mean, so this is the best that can be recovered). */
static enum ts_status pstate_take_item(struct pstate *ps, const char *player,
                                       const json_t *item, bool for_write) {
  pstate_reset_item(ps);
  ps->read = true;
  ps->write_id[0] = ps->read_at[0] = '\0';
  if (!item)
    return TS_OK;
  ps->exists = true;
  /* A longer text is cut: it then matches no id of ours (they fit). */
  const char *write_id = attr_text(item, "write_id", "S");
  const char *read_at = attr_text(item, "updated_at", "S");
  snprintf(ps->write_id, sizeof ps->write_id, "%s", write_id ? write_id : "");
  snprintf(ps->read_at, sizeof ps->read_at, "%s", read_at ? read_at : "");
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
  const char *state = attr_text(item, "session_state", "S");
  if (state && !(ps->state = strdup(state)))
    return TS_ERR_NOMEM;
  if (!for_write)
    return TS_OK; /* a query: the log is not needed */
  size_t len = 0;
  enum ts_status st =
      attr_b_take(item, "recent", DY_RECENT_REC, &ps->recent, &len);
  ps->n_recent = len / DY_RECENT_REC;
  if (st == TS_OK)
    st = attr_b_take(item, "chunks", DY_CHUNK_DESC, &ps->chunks, &len);
  ps->n_chunks = st == TS_OK ? len / DY_CHUNK_DESC : 0;
  if (st == TS_OK)
    st = take_legacy_applied(ps, item);
  if (st == TS_OK)
    st = pstate_index_log(ps);
  if (st == TS_ERR_IO)
    goto corrupt;
  return st;
corrupt:
  log_event(LOG_ERROR, "stored item is not a stats item", "{s:s}", "player",
            player);
  return TS_ERR_IO;
}

/* Takes what this process last wrote to the player's item (guess_take)
 * into ps, as pstate_take_item would take that item read back. */
static enum ts_status pstate_take_guess(struct pstate *ps,
                                        struct guess_item *it) {
  pstate_reset_item(ps);
  ps->read = ps->exists = ps->has_version = ps->guessed = true;
  ps->version = it->version;
  ps->cur = it->stats;
  snprintf(ps->guessed_at, sizeof ps->guessed_at, "%s", it->updated_at);
  ps->recent = it->recent; /* taken */
  ps->n_recent = it->recent_len / DY_RECENT_REC;
  ps->chunks = it->chunks;
  ps->n_chunks = it->chunks_len / DY_CHUNK_DESC;
  it->recent = it->chunks = NULL;
  return pstate_index_log(ps);
}

/* Guesses every pending unread player this process wrote last, while
 * guesses have been right lately, and one it holds nothing of as new,
 * while such guesses have been right lately (store/guess.h); a player once
 * per apply, so that a wrong guess is read next. */
static enum ts_status guess_players(struct dy *dy, const struct batch *b,
                                    struct pstate *ps, size_t n) {
  for (size_t i = 0; i < n; i++) {
    /* A player whose write's outcome is not known yet is read: only the
     * item itself can say whether that write landed (note_own_writes). */
    if (!ps[i].pending || ps[i].read || ps[i].tried_guess ||
        batch_player_write_token(b, ps[i].p))
      continue;
    const char *name = batch_player_name(b, ps[i].p);
    struct guess_item it;
    enum ts_status st = guess_take(dy->guess, name, &it);
    if (st == TS_ERR_NOT_FOUND) {
      if (!guess_take_new(dy->guess, name))
        continue;
      ps[i].tried_guess = true;
      if ((st = pstate_take_item(&ps[i], name, NULL, true)) != TS_OK)
        return st;
      ps[i].guessed_new = true;
      continue;
    }
    ps[i].tried_guess = true;
    if (st == TS_OK)
      st = pstate_take_guess(&ps[i], &it);
    guess_item_clear(&it);
    if (st != TS_OK)
      return st;
  }
  return TS_OK;
}

/* Drops the descriptors of chunks spilled before the retention (every
 * digest in a chunk was applied before the chunk was written): what
 * counts as applied, and the room left, depend only on the retention.
 * `recent` records stay until they are spilled (at most
 * TS_APPLIED_RECENT_MAX): remembering an eventID longer than the
 * retention is harmless, and a record's creation time is the sender's
 * clock, not ours, so it does not decide what is forgotten. */
static void pstate_drop_expired(struct pstate *ps, int64_t now_s) {
  int64_t oldest = now_s - (int64_t)TS_DEDUP_RETENTION_S;
  size_t k = 0;
  for (size_t i = 0; i < ps->n_chunks; i++) {
    const unsigned char *d = ps->chunks + i * DY_CHUNK_DESC;
    if ((int64_t)get_u32(d + DY_NONCE + 8) < oldest)
      continue;
    memmove(ps->chunks + k * DY_CHUNK_DESC, d, DY_CHUNK_DESC);
    ps->chunk_read[k++] = ps->chunk_read[i];
  }
  ps->n_chunks = k;
}

/* Digests the player holds within the retention. */
static size_t pstate_held(const struct pstate *ps) {
  size_t held = ps->n_recent;
  for (size_t i = 0; i < ps->n_chunks; i++)
    held += get_u32(ps->chunks + i * DY_CHUNK_DESC + DY_NONCE + 12);
  return held;
}

/* Whether entry e of the player may be in chunk i, by its creation time:
 * a record keeps its ApproximateCreationDateTime on every delivery, so a
 * chunk whose range does not hold it cannot hold its eventID; a record
 * without one may be in any chunk. */
static bool chunk_may_hold(const struct pstate *ps, size_t i,
                           int64_t created_s) {
  const unsigned char *d = ps->chunks + i * DY_CHUNK_DESC;
  return created_s == 0 || ((int64_t)get_u32(d + DY_NONCE) <= created_s &&
                            created_s <= (int64_t)get_u32(d + DY_NONCE + 4));
}

/* ---- the decision's view of the items read ---- */

static enum ts_status view_stats(void *cls, size_t p, struct stats *out) {
  const struct pstate *ps = cls;
  *out = ps[p].cur;
  return TS_OK;
}

/* `seen` holds `recent` and every chunk that may hold one of the player's
 * entries (read_chunks ran before the decision). */
static enum ts_status view_applied(void *cls, size_t p, const char *event_id,
                                   bool *seen) {
  struct pstate *ps = cls;
  unsigned char raw[DY_DIGEST];
  if (!event_digest_raw(event_id, raw))
    return TS_ERR_NOMEM;
  *seen = dset_has(&ps[p].seen, raw);
  return TS_OK;
}

static size_t view_room(void *cls, size_t p) {
  size_t held = pstate_held(&((const struct pstate *)cls)[p]);
  return held < TS_MAX_APPLIED_PER_PLAYER ? TS_MAX_APPLIED_PER_PLAYER - held
                                          : 0;
}

/* Written by an earlier attempt (or nothing to write): outcomes final. */
static bool view_settled(void *cls, size_t p) {
  const struct pstate *ps = cls;
  return !ps[p].pending;
}

/* ---- writes ---- */

/* The log a changed player's item will hold: `recent` plus the entries
 * applied now; when that passes TS_APPLIED_RECENT_MAX, the oldest go to
 * new chunks (written by spill_puts before the item) and their
 * descriptors join `chunks`. */
struct next_log {
  unsigned char *recent; /* records, oldest first */
  size_t n_recent;
  unsigned char *chunks; /* descriptors: the kept ones, then the new */
  size_t n_chunks, n_new_chunks;
  unsigned char *spilled; /* records spilled, in new-chunk order */
  size_t n_spilled;
  /* The first new chunk replaces the chunk of descriptor `merge_from`
   * (merge_target): it holds that chunk's digests (`merged`, read by
   * write_chunks), then the spilled ones. */
  bool merging;
  unsigned char merge_from[DY_CHUNK_DESC];
  unsigned char *merged;
  size_t n_merged;
};

static void next_log_clear(struct next_log *l) {
  free(l->recent);
  free(l->chunks);
  free(l->spilled);
  free(l->merged);
  memset(l, 0, sizeof *l);
}

/* The kept descriptor a spill of `spill` digests joins: the newest one
 * spilled in the same TS_APPLIED_MERGE_WINDOW_S window as now, if the two
 * fit in one chunk; SIZE_MAX when none. Merging keeps the item's
 * descriptors to about one per window (DynamoDB charges every write by the
 * whole item) at the cost of reading that chunk and writing it again, with
 * the new digests, as a new immutable chunk. */
static size_t merge_target(const struct pstate *ps, size_t spill,
                           int64_t now_s) {
  const int64_t w = (int64_t)TS_APPLIED_MERGE_WINDOW_S;
  size_t best = SIZE_MAX;
  uint32_t best_t = 0;
  for (size_t i = 0; i < ps->n_chunks; i++) {
    const unsigned char *d = ps->chunks + i * DY_CHUNK_DESC;
    uint32_t t = get_u32(d + DY_NONCE + 8);
    if ((int64_t)t / w == now_s / w &&
        get_u32(d + DY_NONCE + 12) + spill <= TS_APPLIED_CHUNK_MAX &&
        (best == SIZE_MAX || t >= best_t)) {
      best = i;
      best_t = t;
    }
  }
  return best;
}

/* The chunk item key: the player's name, '#', the nonce in hex. */
static char *chunk_id(const char *player, const unsigned char *nonce) {
  size_t len = strlen(player);
  char *id = malloc(len + 2 + 2 * DY_NONCE);
  if (!id)
    return NULL;
  memcpy(id, player, len);
  id[len] = '#';
  for (size_t i = 0; i < DY_NONCE; i++)
    snprintf(id + len + 1 + 2 * i, 3, "%02x", nonce[i]);
  return id;
}

static enum ts_status next_log_build(const struct batch *b,
                                     const struct pstate *ps, int64_t now_s,
                                     struct next_log *out) {
  memset(out, 0, sizeof *out);
  size_t n_entries = batch_entry_count(b, ps->p);
  size_t cap = ps->n_recent + n_entries;
  out->recent = malloc((cap ? cap : 1) * DY_RECENT_REC);
  if (!out->recent)
    return TS_ERR_NOMEM;
  if (ps->n_recent) /* ps->recent is NULL when empty */
    memcpy(out->recent, ps->recent, ps->n_recent * DY_RECENT_REC);
  size_t n = ps->n_recent;
  for (size_t e = 0; e < n_entries; e++) {
    if (batch_entry_outcome(b, ps->p, e) != ENTRY_APPLIED)
      continue;
    const struct batch_entry *en = batch_entry(b, ps->p, e);
    unsigned char *rec = out->recent + n++ * DY_RECENT_REC;
    if (!event_digest_raw(en->event_id, rec))
      return TS_ERR_NOMEM;
    put_u32(rec + DY_DIGEST, clamp_u32(en->created_s));
  }
  size_t spill = n > TS_APPLIED_RECENT_MAX ? n - TS_APPLIED_RECENT_KEEP : 0;
  size_t pieces = (spill + TS_APPLIED_CHUNK_MAX - 1) / TS_APPLIED_CHUNK_MAX;
  size_t m = pieces == 1 ? merge_target(ps, spill, now_s) : SIZE_MAX;
  out->chunks = malloc((ps->n_chunks + pieces + 1) * DY_CHUNK_DESC);
  if (!out->chunks)
    return TS_ERR_NOMEM;
  for (size_t i = 0; i < ps->n_chunks; i++) {
    const unsigned char *d = ps->chunks + i * DY_CHUNK_DESC;
    if (i == m) {
      out->merging = true;
      memcpy(out->merge_from, d, DY_CHUNK_DESC);
    } else {
      memcpy(out->chunks + out->n_chunks++ * DY_CHUNK_DESC, d, DY_CHUNK_DESC);
    }
  }
  if (spill) {
    out->spilled = malloc(spill * DY_RECENT_REC);
    if (!out->spilled)
      return TS_ERR_NOMEM;
    memcpy(out->spilled, out->recent, spill * DY_RECENT_REC);
    out->n_spilled = spill;
    memmove(out->recent, out->recent + spill * DY_RECENT_REC,
            (n - spill) * DY_RECENT_REC);
    n -= spill;
  }
  for (size_t c = 0, from = 0; c < pieces; c++) {
    size_t to = spill * (c + 1) / pieces; /* even pieces */
    unsigned char *d = out->chunks + out->n_chunks++ * DY_CHUNK_DESC;
    uint32_t lo = UINT32_MAX, hi = 0;
    for (size_t i = from; i < to; i++) {
      uint32_t t = get_u32(out->spilled + i * DY_RECENT_REC + DY_DIGEST);
      /* A record of unknown time was created before it was applied,
       * hence before now: it may be anywhere in [0, now]. */
      if (t == 0) {
        lo = 0;
        t = clamp_u32(now_s);
      }
      lo = t < lo ? t : lo;
      hi = t > hi ? t : hi;
    }
    uint32_t count = (uint32_t)(to - from);
    if (c == 0 && out->merging) { /* the merged chunk's range and count */
      const unsigned char *f = out->merge_from;
      lo = get_u32(f + DY_NONCE) < lo ? get_u32(f + DY_NONCE) : lo;
      hi = get_u32(f + DY_NONCE + 4) > hi ? get_u32(f + DY_NONCE + 4) : hi;
      count += get_u32(f + DY_NONCE + 12);
    }
    if (RAND_bytes(d, DY_NONCE) != 1)
      return TS_ERR_IO;
    put_u32(d + DY_NONCE, lo);
    put_u32(d + DY_NONCE + 4, hi);
    put_u32(d + DY_NONCE + 8, clamp_u32(now_s));
    put_u32(d + DY_NONCE + 12, count);
    out->n_new_chunks++;
    from = to;
  }
  out->n_recent = n;
  return TS_OK;
}

/* The PutItems of the new chunks of l (player's), in the applied-log
 * table, into reqs[*n...]. A chunk is immutable and its key fresh: if the
 * player's write then fails, nothing refers to it and its TTL removes it. */
static enum ts_status spill_puts(const struct dy *dy, const char *player,
                                 const struct next_log *l, int64_t now_s,
                                 json_t **reqs, size_t *n) {
  size_t first = l->n_chunks - l->n_new_chunks, from = 0;
  for (size_t c = 0; c < l->n_new_chunks; c++) {
    const unsigned char *d = l->chunks + (first + c) * DY_CHUNK_DESC;
    size_t count = get_u32(d + DY_NONCE + 12);
    size_t old = c == 0 && l->merging ? l->n_merged : 0; /* merged first */
    unsigned char *digests = malloc(count * DY_DIGEST);
    char *id = chunk_id(player, d);
    json_t *bin = NULL;
    if (digests && id && old <= count) {
      if (old)
        memcpy(digests, l->merged, old * DY_DIGEST);
      for (size_t i = old; i < count; i++)
        memcpy(digests + i * DY_DIGEST,
               l->spilled + (from + i - old) * DY_RECENT_REC, DY_DIGEST);
      bin = attr_b(digests, count * DY_DIGEST);
    }
    json_t *req =
        bin ? json_pack("{s:s, s:{s:o, s:o, s:o, s:o}}", "TableName",
                        dy->log_table, "Item", "id", attr_s(id), "player",
                        attr_s(player), "digests", bin, "expires_at",
                        attr_n_int(now_s + (int64_t)TS_DEDUP_RETENTION_S +
                                   (int64_t)TS_APPLIED_CHUNK_TTL_MARGIN_S))
            : NULL;
    free(digests);
    free(id);
    if (!req)
      return TS_ERR_NOMEM;
    reqs[(*n)++] = req;
    from += count - old;
  }
  return TS_OK;
}

/* ---- the PutItem as text ----
 * The one write of every batch is written as JSON text: building it as
 * jansson objects and dumping them took about a third of the server's
 * instructions per single-record POST (callgrind, 2026-12-04). Attribute
 * and expression names are ours and need no escaping; every value that is
 * not ours (a player name, a session state) goes through
 * buf_add_json_string. */

static void tx_str(struct buf *b, const char *name, const char *value) {
  buf_add_json_key(b, name);
  buf_add_json_string(b, value);
}

/* "name":{"S":value} */
static void tx_attr_s(struct buf *b, const char *name, const char *value) {
  buf_add_json_key(b, name);
  buf_adds(b, "{\"S\":");
  buf_add_json_string(b, value);
  buf_add(b, "}", 1);
}

/* "name":{"N":"text"} (text from a stored item is escaped like any
 * value not made here). */
static void tx_attr_n(struct buf *b, const char *name, const char *text) {
  buf_add_json_key(b, name);
  buf_adds(b, "{\"N\":");
  buf_add_json_string(b, text);
  buf_add(b, "}", 1);
}

static void tx_attr_n_int(struct buf *b, const char *name, int64_t v) {
  char text[24];
  snprintf(text, sizeof text, "%lld", (long long)v);
  tx_attr_n(b, name, text);
}

static void tx_attr_n_dec(struct buf *b, const char *name, struct decimal d) {
  char text[DECIMAL_TEXT_MAX];
  decimal_format(d, text);
  tx_attr_n(b, name, text);
}

/* "name":{"B":"base64"}, encoded a run of whole 3-byte groups at a time
 * (the base64 of the runs joined is the base64 of the whole). */
static void tx_attr_b(struct buf *b, const char *name,
                      const unsigned char *bytes, size_t n) {
  unsigned char text[4 * 64 + 1];
  buf_add_json_key(b, name);
  buf_adds(b, "{\"B\":\"");
  for (size_t at = 0; at < n;) {
    size_t run = n - at < 3 * 64 ? n - at : 3 * 64;
    int len = EVP_EncodeBlock(text, bytes + at, (int)run);
    buf_add(b, text, (size_t)len);
    at += run;
  }
  buf_adds(b, "\"}");
}

/* The PutItem of a changed player: the stats the decision reached, the
 * log l, conditioned on the item being as it was read. *put is compact
 * JSON text (ddb_call.request_text), malloc'd. */
static enum ts_status player_put(struct dy *dy, const struct batch *b,
                                 const struct pstate *ps,
                                 const struct stats *next,
                                 const struct next_log *l, const char *now_utc,
                                 const char *state, const char *write_id,
                                 char **put) {
  *put = NULL;
  struct decimal avg, pct;
  if (stats_derive(next, &avg, &pct) != TS_OK)
    return TS_ERR_IO;
  char pct_text[DECIMAL_TEXT_MAX + 1];
  size_t len = decimal_format_fixed(pct, 2, pct_text);
  pct_text[len] = '%';
  pct_text[len + 1] = '\0';

  struct buf t;
  buf_init(&t, DY_MAX_PUT_BYTES);
  buf_add(&t, "{", 1);
  tx_str(&t, "TableName", dy->table);
  buf_add_json_key(&t, "Item");
  buf_add(&t, "{", 1);
  tx_attr_s(&t, "player", batch_player_name(b, ps->p));
  tx_attr_n_int(&t, "games", next->games);
  tx_attr_n_int(&t, "wins", next->wins);
  tx_attr_n_dec(&t, "total_score", next->total_score);
  tx_attr_n_dec(&t, "avg_score", avg);
  tx_attr_s(&t, "win_percent", pct_text);
  tx_attr_s(&t, "updated_at", now_utc);
  tx_attr_n_int(&t, "version", ps->has_version ? ps->version + 1 : 1);
  tx_attr_s(&t, "write_id", write_id);
  /* Empty logs are left out (an empty binary is not worth a byte). */
  if (l->n_recent)
    tx_attr_b(&t, "recent", l->recent, l->n_recent * DY_RECENT_REC);
  if (l->n_chunks)
    tx_attr_b(&t, "chunks", l->chunks, l->n_chunks * DY_CHUNK_DESC);
  if (state)
    tx_attr_s(&t, "session_state", state);
  buf_add(&t, "}", 1);

  if (!ps->exists) {
    tx_str(&t, "ConditionExpression", "attribute_not_exists(#p)");
    buf_add_json_key(&t, "ExpressionAttributeNames");
    buf_adds(&t, "{\"#p\":\"player\"}");
  } else if (ps->guessed) {
    /* Not read: the item must be exactly what this process wrote. The
     * stats guard against an edit behind the service's back that left the
     * version as it was. */
    tx_str(&t, "ConditionExpression",
           "#v = :v AND #u = :u AND #g = :g AND #w = :w AND #t = :t");
    buf_add_json_key(&t, "ExpressionAttributeNames");
    buf_adds(&t, "{\"#v\":\"version\",\"#u\":\"updated_at\",\"#g\":\"games\","
                 "\"#w\":\"wins\",\"#t\":\"total_score\"}");
    buf_add_json_key(&t, "ExpressionAttributeValues");
    buf_add(&t, "{", 1);
    tx_attr_n_int(&t, ":v", ps->version);
    tx_attr_s(&t, ":u", ps->guessed_at);
    tx_attr_n_int(&t, ":g", ps->cur.games);
    tx_attr_n_int(&t, ":w", ps->cur.wins);
    tx_attr_n_dec(&t, ":t", ps->cur.total_score);
    buf_add(&t, "}", 1);
  } else if (ps->has_version) {
    tx_str(&t, "ConditionExpression", "#v = :v");
    buf_add_json_key(&t, "ExpressionAttributeNames");
    buf_adds(&t, "{\"#v\":\"version\"}");
    buf_add_json_key(&t, "ExpressionAttributeValues");
    buf_add(&t, "{", 1);
    tx_attr_n_int(&t, ":v", ps->version);
    buf_add(&t, "}", 1);
  } else {
    /* An item of the original Lambda, or one edited by hand (no version):
     * unchanged since it was read. An avg_score it did not have must still
     * be absent; compared with a value, the condition could never hold
     * and every write of the player would be retried to a 503. */
    tx_str(&t, "ConditionExpression",
           ps->seed_avg ? "attribute_not_exists(#v) AND #g = :g AND #a = :a"
                        : "attribute_not_exists(#v) AND #g = :g AND "
                          "attribute_not_exists(#a)");
    buf_add_json_key(&t, "ExpressionAttributeNames");
    buf_adds(&t, "{\"#v\":\"version\",\"#g\":\"games\",\"#a\":\"avg_score\"}");
    buf_add_json_key(&t, "ExpressionAttributeValues");
    buf_add(&t, "{", 1);
    tx_attr_n(&t, ":g", ps->seed_games);
    if (ps->seed_avg)
      tx_attr_n(&t, ":a", ps->seed_avg);
    buf_add(&t, "}", 1);
  }
  buf_add(&t, "}", 1);
  *put = buf_take(&t, NULL); /* NULL when an append failed */
  enum ts_status st = *put ? TS_OK : buf_status(&t);
  buf_free(&t);
  return st;
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
    /* Before guess_note_read, which may forget a stale entry. */
    if (p && !p->tried_guess)
      guess_note_unknown_read(dy->guess, name, true);
    if (p && p->has_version && !p->tried_guess)
      guess_note_read(dy->guess, name, p->version,
                      attr_text(item, "updated_at", "S"));
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
    if (p->read || json_object_get(later, name))
      continue;
    st = pstate_take_item(p, name, NULL, true);
    if (st == TS_OK && !p->tried_guess)
      guess_note_unknown_read(dy->guess, name, false);
  }
  json_decref(later);
  return st;
}

/* Before sending again what a batch call left unprocessed (throttled):
 * false when the deadline has passed, else true after a pause with full
 * jitter (rounds: how many came back unprocessed so far), cut at the
 * deadline. */
static bool unprocessed_pause(unsigned rounds, uint64_t deadline_ms) {
  uint64_t now = clock_now_ms();
  if (now >= deadline_ms)
    return false;
  uint64_t ms = backoff_pause_ms(TS_DDB_UNPROCESSED_BASE_MS,
                                 TS_DDB_UNPROCESSED_CAP_MS, rounds);
  if (ms > deadline_ms - now)
    ms = deadline_ms - now;
  clock_sleep_ms((uint32_t)ms);
  return true;
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
  for (unsigned rounds = 1; n_todo > 0; rounds++) {
    st = read_round(dy, b, ps, index, todo, n_todo, deadline_ms);
    if (st != TS_OK)
      goto out;
    size_t left = 0;
    for (size_t t = 0; t < n_todo; t++)
      if (!ps[todo[t]].read)
        todo[left++] = todo[t];
    n_todo = left;
    if (n_todo && !unprocessed_pause(rounds, deadline_ms)) {
      st = TS_ERR_UNAVAILABLE;
      goto out;
    }
  }
out:
  free(todo);
  json_decref(index);
  return st;
}

/* ---- reads of the applied log ---- */

/* Sends todo's entries (taken, hence the name: key objects for BatchGetItem,
 * PutRequests for BatchWriteItem) to `table` in calls of DynamoDB's per-call
 * limit, in parallel, and sends again what comes back unprocessed (throttled)
 * until none is left or the deadline passes (TS_ERR_UNAVAILABLE). Reads are
 * strongly consistent; the items they found are appended to found. */
static enum ts_status batch_rounds_take(struct dy *dy, const char *op,
                                        const char *table, json_t *todo,
                                        uint64_t deadline_ms, json_t *found) {
  const bool write = strcmp(op, "BatchWriteItem") == 0;
  const size_t per_call = write ? DY_BATCH_WRITE_MAX : DY_BATCH_GET_MAX;
  enum ts_status st = todo ? TS_OK : TS_ERR_NOMEM;
  unsigned rounds = 0; /* that left something unprocessed */
  while (st == TS_OK && json_array_size(todo) > 0) {
    size_t n = json_array_size(todo);
    size_t n_calls = (n + per_call - 1) / per_call;
    struct ddb_call *calls = calloc(n_calls, sizeof *calls);
    json_t **reqs = calloc(n_calls, sizeof *reqs);
    json_t *later = json_array();
    if (!calls || !reqs || !later)
      st = TS_ERR_NOMEM;
    for (size_t c = 0; st == TS_OK && c < n_calls; c++) {
      json_t *slice = json_array();
      for (size_t k = c * per_call; slice && k < n && k < (c + 1) * per_call;
           k++)
        if (json_array_append(slice, json_array_get(todo, k)) != 0) {
          json_decref(slice);
          slice = NULL;
        }
      if (!slice)
        reqs[c] = NULL;
      else if (write)
        reqs[c] = json_pack("{s:{s:o}}", "RequestItems", table, slice);
      else
        reqs[c] = json_pack("{s:{s:{s:o, s:b}}}", "RequestItems", table, "Keys",
                            slice, "ConsistentRead", 1);
      calls[c].op = op;
      calls[c].request = reqs[c];
      if (!reqs[c])
        st = TS_ERR_NOMEM;
    }
    if (st == TS_OK)
      st = ddb_execute(dy->client, calls, n_calls, deadline_ms);
    for (size_t c = 0; st == TS_OK && c < n_calls; c++) {
      st = call_status(table, &calls[c]);
      const json_t *resp = calls[c].response;
      json_t *got = json_object_get(json_object_get(resp, "Responses"), table);
      if (st == TS_OK && found && json_is_array(got) &&
          json_array_extend(found, got) != 0)
        st = TS_ERR_NOMEM;
      json_t *un =
          write ? json_object_get(json_object_get(resp, "UnprocessedItems"),
                                  table)
                : json_object_get(
                      json_object_get(json_object_get(resp, "UnprocessedKeys"),
                                      table),
                      "Keys");
      if (st == TS_OK && json_is_array(un) && json_array_extend(later, un) != 0)
        st = TS_ERR_NOMEM;
    }
    calls_free(calls, reqs, n_calls);
    json_decref(todo);
    todo = later;
    if (st == TS_OK && json_array_size(todo) > 0 &&
        !unprocessed_pause(++rounds, deadline_ms))
      st = TS_ERR_UNAVAILABLE;
  }
  json_decref(todo);
  return st;
}

/* Every item of `table` whose key (attribute `key`, S) is in ids (a JSON
 * array of strings), with strongly consistent BatchGetItem calls of
 * DY_BATCH_GET_MAX keys in parallel, UnprocessedKeys retried until the
 * deadline. *items (new array) holds the items found, in no order. */
static enum ts_status batch_get_all(struct dy *dy, const char *table,
                                    const char *key, const json_t *ids,
                                    uint64_t deadline_ms, json_t **items) {
  enum ts_status st = TS_ERR_NOMEM;
  json_t *todo = json_array(); /* key objects not yet answered */
  *items = json_array();
  size_t i;
  json_t *id;
  if (!todo || !*items)
    goto out;
  json_array_foreach(ids, i, id) {
    if (json_array_append_new(todo, json_pack("{s:{s:O}}", key, "S", id)))
      goto out;
  }
  st = batch_rounds_take(dy, "BatchGetItem", table, todo, deadline_ms, *items);
  todo = NULL; /* taken */
out:
  json_decref(todo);
  if (st != TS_OK) {
    json_decref(*items);
    *items = NULL;
  }
  return st;
}

/* Takes one chunk's digests (*digests, n of them; set *digests to NULL to
 * keep them) for the caller's tag of that chunk. */
typedef enum ts_status (*chunk_take_fn)(void *cls, const json_t *tag,
                                        unsigned char **digests, size_t n);

/* BatchGetItem, strongly consistent, of the applied-log chunks `where`
 * names (chunk id -> the caller's tag), each handed to take. The item read
 * refers to every one of them, and a chunk is referenced only after it was
 * written: one that is missing is a broken log (TS_ERR_IO), never "not
 * applied". */
static enum ts_status chunks_fetch(struct dy *dy, json_t *where,
                                   uint64_t deadline_ms, chunk_take_fn take,
                                   void *cls) {
  if (json_object_size(where) == 0)
    return TS_OK;
  json_t *items = NULL, *ids = json_array();
  const char *key;
  json_t *v;
  enum ts_status st = ids ? TS_OK : TS_ERR_NOMEM;
  json_object_foreach(where, key, v) {
    if (st == TS_OK && json_array_append_new(ids, json_string(key)))
      st = TS_ERR_NOMEM;
  }
  if (st == TS_OK)
    st = batch_get_all(dy, dy->log_table, "id", ids, deadline_ms, &items);
  size_t k;
  json_t *item;
  json_array_foreach(st == TS_OK ? items : NULL, k, item) {
    const char *id = attr_text(item, "id", "S");
    json_t *tag = id ? json_object_get(where, id) : NULL;
    unsigned char *digests = NULL;
    size_t len = 0;
    if (!tag)
      continue;
    st = attr_b_take(item, "digests", DY_DIGEST, &digests, &len);
    if (st == TS_OK)
      st = take(cls, tag, &digests, len / DY_DIGEST);
    free(digests);
    if (st != TS_OK)
      break;
    json_object_del(where, id);
  }
  if (st == TS_OK && json_object_size(where) > 0) {
    log_event(LOG_ERROR,
              "a chunk the player's item refers to is missing from the "
              "applied log",
              "{s:s, s:s}", "table", dy->log_table, "id",
              json_object_iter_key(json_object_iter(where)));
    st = TS_ERR_IO;
  }
  json_decref(ids);
  json_decref(items);
  return st;
}

/* read_chunks' take: the digests join the player's `seen`. */
static enum ts_status seen_take(void *cls, const json_t *tag,
                                unsigned char **digests, size_t n) {
  struct pstate *p =
      &((struct pstate *)cls)[json_integer_value(json_array_get(tag, 0))];
  enum ts_status st = TS_OK;
  for (size_t d = 0; st == TS_OK && d < n; d++)
    st = dset_add(&p->seen, *digests + d * DY_DIGEST);
  if (st == TS_OK)
    p->chunk_read[json_integer_value(json_array_get(tag, 1))] = true;
  return st;
}

/* Reads, for every pending player, the chunks that may hold one of its
 * entries not found in `recent` (chunk_may_hold), into `seen`. Only these
 * can make an entry a duplicate, so the decision needs no others; a fresh
 * record is normally newer than every chunk and reads none. A chunk is
 * referenced only after it was written, and read strongly consistent: one
 * that is missing is a broken log (TS_ERR_IO), never "not applied". */
static enum ts_status read_chunks(struct dy *dy, const struct batch *b,
                                  struct pstate *ps, size_t n,
                                  uint64_t deadline_ms) {
  enum ts_status st = TS_ERR_NOMEM;
  json_t *where = json_object();
  if (!where)
    goto out;
  for (size_t i = 0; i < n; i++) {
    struct pstate *p = &ps[i];
    if (!p->pending || p->n_chunks == 0)
      continue;
    const char *player = batch_player_name(b, p->p);
    for (size_t e = 0; e < batch_entry_count(b, p->p); e++) {
      const struct batch_entry *en = batch_entry(b, p->p, e);
      unsigned char raw[DY_DIGEST];
      if (!event_digest_raw(en->event_id, raw))
        goto out;
      if (dset_has(&p->seen, raw))
        continue;
      for (size_t c = 0; c < p->n_chunks; c++) {
        if (p->chunk_read[c] || !chunk_may_hold(p, c, en->created_s))
          continue;
        char *id = chunk_id(player, p->chunks + c * DY_CHUNK_DESC);
        if (!id)
          goto out;
        int bad = !json_object_get(where, id) &&
                  json_object_set_new(
                      where, id,
                      json_pack("[I, I]", (json_int_t)i, (json_int_t)c)) != 0;
        free(id);
        if (bad)
          goto out;
      }
    }
  }
  st = chunks_fetch(dy, where, deadline_ms, seen_take, ps);
out:
  json_decref(where);
  return st;
}

/* ---- dead letters ---- */

/* The dead letter of the batch's i-th rejected record, whose id
 * (batch_rejected_id) is id, as a PutRequest. */
static json_t *dead_letter_put(const struct batch *b, size_t i,
                               const char *now_utc, const char *id) {
  const char *event_id, *item, *reason, *record;
  batch_rejected(b, i, &event_id, &item, &reason, &record);
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
  return json_pack("{s:{s:o}}", "PutRequest", "Item", it);
}

/* Writes every rejected record of the batch to the dead-letter table with
 * BatchWriteItem (DY_BATCH_WRITE_MAX per call, in parallel): a batch that
 * rejects thousands of records must be kept well inside its deadline, or
 * every resend would do it all again. Idempotent: the id is a digest of
 * the record and the reason, so a record rejected twice in one batch is
 * one dead letter (and one call may not name a key twice). */
static enum ts_status keep_dead_letters(struct dy *dy, const struct batch *b,
                                        uint64_t deadline_ms) {
  size_t n = batch_rejected_count(b);
  if (n == 0)
    return TS_OK;
  enum ts_status st = TS_ERR_NOMEM;
  json_t *todo = json_array();
  json_t *seen = json_object();
  char now_utc[32];
  clock_utc_now(now_utc);
  if (!todo || !seen)
    goto out;
  for (size_t i = 0; i < n; i++) {
    char id[65];
    batch_rejected_id(b, i, id);
    if (json_object_get(seen, id))
      continue;
    json_t *put = dead_letter_put(b, i, now_utc, id);
    if (!put)
      goto out;
    if (json_object_set_new(seen, id, json_true()) != 0) {
      json_decref(put);
      goto out;
    }
    if (json_array_append_new(todo, put) != 0) /* takes put either way */
      goto out;
  }
  st = batch_rounds_take(dy, "BatchWriteItem", dy->dl_table, todo, deadline_ms,
                         NULL);
  todo = NULL; /* taken */
out:
  json_decref(todo);
  json_decref(seen);
  return st;
}

/* ---- apply ---- */

/* ---- backfill sessions ---- */

/* Reads the open session (consistent) into the cache. */
static enum ts_status session_read(struct dy *dy, uint64_t deadline_ms) {
  json_t *req =
      json_pack("{s:s, s:{s:o}, s:b}", "TableName", dy->log_table, "Key", "id",
                attr_s(DY_SESSION_ID), "ConsistentRead", 1);
  if (!req)
    return TS_ERR_NOMEM;
  struct ddb_call call = {.op = "GetItem", .request = req};
  enum ts_status st = ddb_execute(dy->client, &call, 1, deadline_ms);
  if (st == TS_OK)
    st = call_status(dy->log_table, &call);
  if (st == TS_OK) {
    const char *id =
        attr_text(json_object_get(call.response, "Item"), "session", "S");
    pthread_mutex_lock(&dy->session_mu);
    snprintf(dy->session, sizeof dy->session, "%s", id ? id : "");
    dy->session_read_ms = clock_now_ms();
    pthread_mutex_unlock(&dy->session_mu);
  }
  ddb_call_clear(&call);
  json_decref(req);
  return st;
}

/* The open session for a write, in out ("" when none): the cache when it
 * is fresh, re-read when it is older than TS_BACKFILL_SESSION_REFRESH_MS
 * or when a player about to be written carries a state of a session the
 * cache does not name (a session opened, or replaced, since: the write
 * must be tracked like the writes before it). */
static enum ts_status session_known(struct dy *dy, const struct pstate *ps,
                                    size_t n, uint64_t deadline_ms,
                                    char out[72]) {
  for (int pass = 0; pass < 2; pass++) {
    pthread_mutex_lock(&dy->session_mu);
    bool stale =
        dy->session_read_ms == 0 ||
        clock_now_ms() - dy->session_read_ms >= TS_BACKFILL_SESSION_REFRESH_MS;
    memcpy(out, dy->session, 72);
    pthread_mutex_unlock(&dy->session_mu);
    for (size_t i = 0; !stale && pass == 0 && i < n; i++) {
      char seen[72];
      if (!ps[i].pending || !ps[i].state)
        continue;
      backfill_state_session(ps[i].state, seen, sizeof seen);
      stale = seen[0] && strcmp(seen, out) != 0;
    }
    if (!stale)
      return TS_OK;
    enum ts_status st = session_read(dy, deadline_ms);
    if (st != TS_OK)
      return st;
  }
  return TS_OK;
}

static enum ts_status dy_session_open(void *impl, const char *id) {
  struct dy *dy = impl;
  char now_utc[32];
  clock_utc_now(now_utc);
  json_t *req = json_pack("{s:s, s:{s:o, s:o, s:o}}", "TableName",
                          dy->log_table, "Item", "id", attr_s(DY_SESSION_ID),
                          "session", attr_s(id), "opened_at", attr_s(now_utc));
  if (!req)
    return TS_ERR_NOMEM;
  struct ddb_call call = {.op = "PutItem", .request = req};
  enum ts_status st =
      ddb_execute(dy->client, &call, 1, clock_now_ms() + DY_READ_DEADLINE_MS);
  if (st == TS_OK)
    st = call_status(dy->log_table, &call);
  ddb_call_clear(&call);
  json_decref(req);
  return st == TS_OK ? session_read(dy, clock_now_ms() + DY_READ_DEADLINE_MS)
                     : st;
}

static enum ts_status dy_session_close(void *impl, const char *id) {
  struct dy *dy = impl;
  json_t *req =
      json_pack("{s:s, s:{s:o}, s:s, s:{s:s}, s:{s:o}}", "TableName",
                dy->log_table, "Key", "id", attr_s(DY_SESSION_ID),
                "ConditionExpression", "#s = :s", "ExpressionAttributeNames",
                "#s", "session", "ExpressionAttributeValues", ":s", attr_s(id));
  if (!req)
    return TS_ERR_NOMEM;
  struct ddb_call call = {.op = "DeleteItem", .request = req};
  enum ts_status st =
      ddb_execute(dy->client, &call, 1, clock_now_ms() + DY_READ_DEADLINE_MS);
  if (st == TS_OK && call.outcome != DDB_CONDITION_FAILED)
    st = call_status(dy->log_table, &call);
  ddb_call_clear(&call);
  json_decref(req);
  return st;
}

struct settle_ctx {
  struct dy *dy;
  const char *player;
  const struct stats *base;
  const char *session;
  bool changed;
  uint64_t deadline_ms;
};

/* One attempt: read the item, write base + its tracked delta conditioned
 * on the version read (the exactly-once log and the state stay as they
 * are: an UpdateItem of the stats only). */
static enum ts_status settle_attempt(void *cls) {
  struct settle_ctx *x = cls;
  struct dy *dy = x->dy;
  struct pstate ps = {0};
  json_t *req = json_pack("{s:s, s:{s:o}, s:b}", "TableName", dy->table, "Key",
                          "player", attr_s(x->player), "ConsistentRead", 1);
  json_t *put = NULL;
  struct ddb_call get = {.op = "GetItem", .request = req}, write = {0};
  enum ts_status st = req ? TS_OK : TS_ERR_NOMEM;
  if (st == TS_OK)
    st = ddb_execute(dy->client, &get, 1, x->deadline_ms);
  if (st == TS_OK)
    st = call_status(dy->table, &get);
  if (st == TS_OK)
    st = pstate_take_item(&ps, x->player, json_object_get(get.response, "Item"),
                          true);
  /* A state of another session is either stale (an earlier session's,
   * not written over since) or a newer backfill's, which replaced this one
   * and tracks this player's writes since: the marker tells which. */
  char seen[72] = "";
  backfill_state_session(ps.state, seen, sizeof seen);
  if (st == TS_OK && seen[0] && strcmp(seen, x->session) != 0 &&
      (st = session_read(dy, x->deadline_ms)) == TS_OK) {
    pthread_mutex_lock(&dy->session_mu);
    if (strcmp(dy->session, x->session) != 0)
      st = TS_ERR_NOT_FOUND;
    pthread_mutex_unlock(&dy->session_mu);
  }
  struct stats next;
  if (st == TS_OK)
    st = backfill_settled(x->base, ps.state, x->session, &next);
  if (st != TS_OK)
    goto out;
  if ((!ps.exists && stats_is_zero(&next)) ||
      (ps.exists && ps.cur.games == next.games && ps.cur.wins == next.wins &&
       decimal_cmp(ps.cur.total_score, next.total_score) == 0))
    goto out;
  struct decimal avg, pct;
  if ((st = stats_derive(&next, &avg, &pct)) != TS_OK)
    goto out;
  char pct_text[DECIMAL_TEXT_MAX + 1], now_utc[32];
  size_t len = decimal_format_fixed(pct, 2, pct_text);
  pct_text[len] = '%';
  pct_text[len + 1] = '\0';
  clock_utc_now(now_utc);
  json_t *vals = json_pack(
      "{s:o, s:o, s:o, s:o, s:o, s:o, s:o}", ":g", attr_n_int(next.games), ":w",
      attr_n_int(next.wins), ":t", attr_n_dec(next.total_score), ":a",
      attr_n_dec(avg), ":p", attr_s(pct_text), ":u", attr_s(now_utc), ":nv",
      attr_n_int(ps.has_version ? ps.version + 1 : 1));
  const char *cond = "attribute_not_exists(#pl)";
  if (vals && ps.exists && ps.has_version) {
    cond = "#v = :v";
    json_object_set_new(vals, ":v", attr_n_int(ps.version));
  } else if (vals && ps.exists) {
    cond = "attribute_not_exists(#v) AND #g = :g0";
    json_object_set_new(vals, ":g0", attr_n_text(ps.seed_games));
  }
  json_t *names = json_pack("{s:s, s:s}", "#g", "games", "#v", "version");
  if (names && !ps.exists)
    json_object_set_new(names, "#pl", json_string("player"));
  put = vals && names
            ? json_pack("{s:s, s:{s:o}, s:s, s:s, s:O, s:O}", "TableName",
                        dy->table, "Key", "player", attr_s(x->player),
                        "UpdateExpression",
                        "SET #g = :g, wins = :w, total_score = :t, "
                        "avg_score = :a, win_percent = :p, updated_at = :u, "
                        "#v = :nv",
                        "ConditionExpression", cond, "ExpressionAttributeNames",
                        names, "ExpressionAttributeValues", vals)
            : NULL;
  json_decref(names);
  json_decref(vals);
  if (!put) {
    st = TS_ERR_NOMEM;
    goto out;
  }
  write = (struct ddb_call){.op = "UpdateItem", .request = put};
  if ((st = ddb_execute(dy->client, &write, 1, x->deadline_ms)) != TS_OK)
    goto out;
  if (write.outcome == DDB_CONDITION_FAILED) {
    st = TS_ERR_RETRY; /* ingestion wrote in between: read again */
    goto out;
  }
  st = call_status(dy->table, &write);
  x->changed = st == TS_OK;
out:
  pstate_reset_item(&ps);
  ddb_call_clear(&get);
  ddb_call_clear(&write);
  json_decref(req);
  json_decref(put);
  return st;
}

static enum ts_status dy_session_settle(void *impl, const char *player,
                                        const struct stats *base,
                                        const char *session, bool *changed) {
  struct settle_ctx x = {.dy = impl,
                         .player = player,
                         .base = base,
                         .session = session,
                         .deadline_ms = clock_now_ms() + 30000u};
  enum ts_status st =
      store_run_tx("dynamodb.settle", settle_attempt, &x, NULL, x.deadline_ms);
  *changed = x.changed;
  return st;
}

struct apply_ctx {
  struct dy *dy;
  struct batch *b;
  struct pstate *ps;
  size_t n;
  uint64_t deadline_ms;
  uint64_t ticket; /* the batch's place in the turns' lines; 0: none yet */
};

/* read_merged's take: the digests of the chunk logs[tag] joins, which must
 * be as many as its descriptor says. */
static enum ts_status merged_take(void *cls, const json_t *tag,
                                  unsigned char **digests, size_t n) {
  struct next_log *l = &((struct next_log *)cls)[json_integer_value(tag)];
  if (n != get_u32(l->merge_from + DY_NONCE + 12)) {
    log_event(LOG_ERROR,
              "a chunk of the applied log holds other than its count",
              "{s:I, s:I}", "digests", (json_int_t)n, "count",
              (json_int_t)get_u32(l->merge_from + DY_NONCE + 12));
    return TS_ERR_IO;
  }
  l->merged = *digests;
  l->n_merged = n;
  *digests = NULL;
  return TS_OK;
}

/* Reads the digests of every chunk a spill joins (logs[i].merge_from)
 * into logs[i].merged (chunks_fetch); one holding other than its
 * descriptor's count is a broken log too (TS_ERR_IO). */
static enum ts_status read_merged(struct dy *dy, const struct batch *b,
                                  const struct pstate *ps,
                                  struct next_log *logs, size_t n,
                                  uint64_t deadline_ms) {
  enum ts_status st = TS_ERR_NOMEM;
  json_t *where = json_object();
  if (!where)
    goto out;
  for (size_t i = 0; i < n; i++) {
    if (!logs[i].merging)
      continue;
    char *id = chunk_id(batch_player_name(b, ps[i].p), logs[i].merge_from);
    int bad =
        !id || json_object_set_new(where, id, json_integer((json_int_t)i));
    free(id);
    if (bad)
      goto out;
  }
  st = chunks_fetch(dy, where, deadline_ms, merged_take, logs);
out:
  json_decref(where);
  return st;
}

/* Writes the new chunks of every changed player (logs[i] of player i) in
 * parallel. Only once all of a player's chunks are written may its item
 * refer to them: any failure ends the attempt (the chunks written are
 * orphans, removed by their TTL). */
static enum ts_status write_chunks(struct dy *dy, const struct batch *b,
                                   const struct pstate *ps,
                                   struct next_log *logs, size_t n,
                                   int64_t now_s, uint64_t deadline_ms) {
  size_t total = 0, n_calls = 0;
  for (size_t i = 0; i < n; i++)
    total += logs[i].n_new_chunks;
  if (total == 0)
    return TS_OK;
  enum ts_status st = read_merged(dy, b, ps, logs, n, deadline_ms);
  if (st != TS_OK)
    return st;
  st = TS_ERR_NOMEM;
  struct ddb_call *calls = calloc(total, sizeof *calls);
  json_t **reqs = calloc(total, sizeof *reqs);
  if (!calls || !reqs)
    goto out;
  st = TS_OK;
  for (size_t i = 0; st == TS_OK && i < n; i++)
    if (logs[i].n_new_chunks)
      st = spill_puts(dy, batch_player_name(b, ps[i].p), &logs[i], now_s, reqs,
                      &n_calls);
  for (size_t c = 0; c < n_calls; c++) {
    calls[c].op = "PutItem";
    calls[c].request = reqs[c];
  }
  if (st == TS_OK)
    st = ddb_execute(dy->client, calls, n_calls, deadline_ms);
  for (size_t c = 0; st == TS_OK && c < n_calls; c++)
    st = call_status(dy->log_table, &calls[c]);
out:
  calls_free(calls, reqs, n_calls);
  return st;
}

/* What the decision needs of every pending player: its item (guessed or
 * read), the chunks that may hold its entries, and the open session. */
static enum ts_status read_all(struct dy *dy, struct apply_ctx *a,
                               int64_t now_s, char session[72]) {
  enum ts_status st = guess_players(dy, a->b, a->ps, a->n);
  if (st == TS_OK)
    st = read_players(dy, a->b, a->ps, a->n, a->deadline_ms);
  if (st != TS_OK)
    return st;
  for (size_t i = 0; i < a->n; i++)
    if (a->ps[i].pending)
      pstate_drop_expired(&a->ps[i], now_s);
  st = read_chunks(dy, a->b, a->ps, a->n, a->deadline_ms);
  if (st == TS_OK)
    st = session_known(dy, a->ps, a->n, a->deadline_ms, session);
  return st;
}

/* A guess is checked only by the condition of the write it leads to, and
 * a rejected record writes nothing: a guessed player that rejects one is
 * to be read and decided again. True when there is one. */
static bool unguess_rejecting(struct apply_ctx *a) {
  bool any = false;
  for (size_t i = 0; i < a->n; i++) {
    struct pstate *ps = &a->ps[i];
    if (!ps->pending || !(ps->guessed || ps->guessed_new))
      continue;
    size_t n = batch_entry_count(a->b, ps->p);
    for (size_t e = 0; e < n; e++)
      if (batch_entry_outcome(a->b, ps->p, e) == ENTRY_REJECTED) {
        ps->read = ps->guessed = ps->guessed_new = false;
        any = true;
        break;
      }
  }
  return any;
}

/* Remembers the item just written for the player's next guess; an item
 * with a session state is not guessed (guess.h holds no state). */
static void note_guess(struct dy *dy, const char *player,
                       const struct pstate *ps, const struct next_log *l,
                       const char *state) {
  if (state) {
    guess_forget(dy->guess, player);
    return;
  }
  struct guess_item it = {.version = ps->wrote_version,
                          .stats = ps->wrote_stats,
                          .recent = l->recent,
                          .recent_len = l->n_recent * DY_RECENT_REC,
                          .chunks = l->chunks,
                          .chunks_len = l->n_chunks * DY_CHUNK_DESC};
  snprintf(it.updated_at, sizeof it.updated_at, "%s", ps->wrote_at);
  guess_note_write(dy->guess, player, &it);
}

/* Marks that start a write token (batch.h): a write never answered; a
 * new-player guess, or a guessed write, whose condition failed (such a
 * guess is judged when the item is read again). Any other write whose
 * condition failed leaves its bare write id. */
#define DY_UNANSWERED '?'
#define DY_NEW_GUESS_FAILED '+'
#define DY_GUESS_FAILED '*'

/* Players whose write failed its condition, or was never answered, read
 * again. When the item holds that very write's id, the write landed on an
 * earlier attempt (and failed its own retry, if it was answered). Noting
 * it lets the decision call the records it finds applied this batch's own
 * (applied, not duplicate), and the item read is what the batch wrote,
 * for this process's leaderboards. Counting does not depend on it: a
 * record in the log is never applied again either way. Another id after a
 * failed condition was another writer's doing: a lost write (unless the
 * write guessed the player new: the item may be this process's own, its
 * entry gone from the guesses); after no answer, the write did not land. */
static void note_own_writes(struct apply_ctx *a) {
  for (size_t i = 0; i < a->n; i++) {
    struct pstate *ps = &a->ps[i];
    const char *failed = batch_player_write_token(a->b, ps->p);
    if (!failed || !ps->read || ps->guessed)
      continue;
    bool unanswered = failed[0] == DY_UNANSWERED;
    bool new_guess = failed[0] == DY_NEW_GUESS_FAILED;
    bool guess = failed[0] == DY_GUESS_FAILED;
    bool own =
        strcmp(ps->write_id, failed + (unanswered || new_guess || guess)) == 0;
    /* A guess is right when the item is the write itself, resent. */
    if (new_guess)
      guess_note_new_outcome(a->dy->guess, own);
    else if (guess)
      guess_note_verdict(a->dy->guess, own);
    if (!own) {
      if (!unanswered && !new_guess)
        store_note_lost_write();
    } else {
      batch_player_note_write(a->b, ps->p);
      /* What this process remembers of the player predates the write
       * that landed: a guess from it would fail. */
      guess_forget(a->dy->guess, batch_player_name(a->b, ps->p));
      ps->wrote = true;
      ps->wrote_stats = ps->cur;
      ps->wrote_version = ps->version;
      snprintf(ps->wrote_at, sizeof ps->wrote_at, "%s", ps->read_at);
    }
    batch_player_clear_write_token(a->b, ps->p);
  }
}

/* A write id no other write of any process makes: a random per-process
 * prefix and a counter. */
static void next_write_id(struct dy *dy, char out[DY_WRITE_ID_MAX]) {
  uint_fast64_t n = atomic_fetch_add(&dy->writes, 1) + 1;
  snprintf(out, DY_WRITE_ID_MAX, "%s-%llx", dy->write_prefix,
           (unsigned long long)n);
}

static enum ts_status apply_attempt(void *cls) {
  struct apply_ctx *a = cls;
  struct dy *dy = a->dy;
  int64_t now_s = (int64_t)time(NULL);
  char now_utc[32];
  clock_utc_now(now_utc);
  char session[72];
  enum ts_status st = read_all(dy, a, now_s, session);
  if (st != TS_OK)
    return st;
  note_own_writes(a);

  struct ddb_call *calls = calloc(a->n + 1, sizeof *calls);
  char **states = calloc(a->n + 1, sizeof *states);
  char **puts = calloc(a->n + 1, sizeof *puts);
  size_t *owner = calloc(a->n + 1, sizeof *owner);
  struct decide_player *next = calloc(a->n + 1, sizeof *next);
  struct next_log *logs = calloc(a->n + 1, sizeof *logs);
  char(*write_ids)[DY_WRITE_ID_MAX] = calloc(a->n + 1, sizeof *write_ids);
  size_t n_calls = 0;
  if (!calls || !puts || !owner || !next || !logs || !states || !write_ids) {
    st = TS_ERR_NOMEM;
    goto out;
  }
  struct decide_view view = {.cls = a->ps,
                             .stats = view_stats,
                             .applied = view_applied,
                             .room = view_room,
                             .settled = view_settled,
                             .backfilling = session[0] != '\0'};
  st = batch_decide(a->b, &view, next);
  if (st == TS_OK && unguess_rejecting(a)) {
    st = read_all(dy, a, now_s, session);
    view.backfilling = session[0] != '\0';
    if (st == TS_OK)
      st = batch_decide(a->b, &view, next);
  }
  for (size_t i = 0; st == TS_OK && i < a->n; i++) {
    if (!a->ps[i].pending)
      continue;
    if (!next[i].changed) { /* all duplicates or rejected: done */
      a->ps[i].pending = false;
      continue;
    }
    st = next_log_build(a->b, &a->ps[i], now_s, &logs[i]);
  }
  if (st == TS_OK)
    st = write_chunks(dy, a->b, a->ps, logs, a->n, now_s, a->deadline_ms);
  for (size_t i = 0; st == TS_OK && i < a->n; i++) {
    if (!a->ps[i].pending)
      continue;
    st = backfill_fold(a->ps[i].state, session[0] ? session : NULL, a->b,
                       a->ps[i].p, &states[i]);
    next_write_id(dy, write_ids[n_calls]);
    if (st == TS_OK)
      st = player_put(dy, a->b, &a->ps[i], &next[i].next, &logs[i], now_utc,
                      states[i], write_ids[n_calls], &puts[n_calls]);
    calls[n_calls].op = "PutItem";
    calls[n_calls].request_text = puts[n_calls];
    owner[n_calls++] = i;
  }
  if (st != TS_OK || n_calls == 0)
    goto out;

  st = ddb_execute(dy->client, calls, n_calls, a->deadline_ms);
  if (st != TS_OK)
    goto out;
  bool conflict = false, gave_up = false, refused = false;
  for (size_t c = 0; c < n_calls; c++) {
    struct pstate *ps = &a->ps[owner[c]];
    const char *player = batch_player_name(a->b, ps->p);
    if (calls[c].outcome == DDB_CONDITION_FAILED) {
      /* Kept in the batch: a worker finishing a try cut short reads the
       * player with a pstate of its own. A guess is judged when the item
       * is read again (note_own_writes): it may hold this very write,
       * resent. */
      char token[DY_WRITE_ID_MAX + 1];
      if (ps->guessed_new)
        snprintf(token, sizeof token, "%c%s", DY_NEW_GUESS_FAILED,
                 write_ids[c]);
      else if (ps->guessed && guess_note_failed(dy->guess, player, ps->version))
        snprintf(token, sizeof token, "%c%s", DY_GUESS_FAILED, write_ids[c]);
      else
        snprintf(token, sizeof token, "%s", write_ids[c]);
      if ((st = batch_player_set_write_token(a->b, ps->p, token)) != TS_OK)
        goto out;
      ps->read = false; /* another writer won: re-read, decide */
      conflict = true;
      continue;
    }
    enum ts_status cst = call_status(dy->table, &calls[c]);
    if (cst == TS_OK || cst == TS_ERR_UNAVAILABLE) /* may have landed */
      batch_player_note_write(a->b, ps->p);
    switch (cst) {
    case TS_OK:
      if (ps->guessed)
        guess_note_held(dy->guess);
      else if (ps->guessed_new)
        guess_note_new_outcome(dy->guess, true);
      ps->pending = false;
      ps->wrote = true;
      ps->wrote_stats = next[owner[c]].next;
      ps->wrote_version = ps->has_version ? ps->version + 1 : 1;
      snprintf(ps->wrote_at, sizeof ps->wrote_at, "%s", now_utc);
      note_guess(dy, player, ps, &logs[owner[c]], states[owner[c]]);
      break;
    case TS_ERR_UNAVAILABLE: {
      /* Only the item can say whether it landed: whichever attempt goes on
       * with the batch reads it (no guess: what this process remembers
       * may be a version behind) and compares write ids. */
      char token[DY_WRITE_ID_MAX + 1];
      snprintf(token, sizeof token, "%c%s", DY_UNANSWERED, write_ids[c]);
      if ((st = batch_player_set_write_token(a->b, ps->p, token)) != TS_OK)
        goto out;
      guess_forget(dy->guess, player);
      ps->read = ps->guessed = ps->guessed_new = false;
      gave_up = true;
      break;
    }
    default: refused = true; break;
    }
  }
  st = refused    ? TS_ERR_IO
       : gave_up  ? TS_ERR_UNAVAILABLE
       : conflict ? TS_ERR_RETRY
                  : TS_OK;
out:
  calls_free(calls, NULL, n_calls);
  for (size_t c = 0; puts && c < n_calls; c++)
    free(puts[c]);
  free(puts);
  for (size_t i = 0; logs && i < a->n; i++)
    next_log_clear(&logs[i]);
  for (size_t i = 0; states && i < a->n; i++)
    free(states[i]);
  free(states);
  free(logs);
  free(owner);
  free(next);
  free(write_ids);
  return st;
}

/* apply_in_turns's scratch: room for every player's name, claim and
 * whether it may wait. */
struct turn_scratch {
  const char **names;
  enum turn *got;
  bool *queue;
};

/* Claims the turn of every pending player that has none; a player that
 * another batch holds waits (pending false, waiting true), in line for it,
 * unless it shares a record with another player of the batch
 * (batch_player_alone), which goes on without a turn, as does every player
 * when the table is full. Returns turns_claim's epoch; *waiting: how many
 * wait. */
static uint64_t claim_turns(struct apply_ctx *a, struct turn_scratch *x,
                            size_t *waiting) {
  size_t n = 0;
  for (size_t i = 0; i < a->n; i++) {
    struct pstate *ps = &a->ps[i];
    if (ps->waiting) {
      ps->waiting = false;
      ps->pending = true;
    }
    if (ps->pending && !ps->turn) {
      x->queue[n] = batch_player_alone(a->b, ps->p);
      x->names[n++] = batch_player_name(a->b, ps->p);
    }
  }
  uint64_t epoch =
      turns_claim(a->dy->turns, x->names, n, x->queue, &a->ticket, x->got);
  *waiting = 0;
  for (size_t i = 0, k = 0; i < a->n; i++) {
    struct pstate *ps = &a->ps[i];
    if (!ps->pending || ps->turn)
      continue;
    bool queued = x->queue[k];
    enum turn t = x->got[k++];
    if (t == TURN_MINE)
      ps->turn = true;
    else if (t == TURN_BUSY && queued) {
      ps->pending = false;
      ps->waiting = true;
      (*waiting)++;
      if (!ps->waited)
        store_note_turn_wait();
      ps->waited = true;
    }
  }
  return epoch;
}

/* Releases the turns of the players written; of every player when all. */
static void release_turns(struct apply_ctx *a, const char **names, bool all) {
  size_t n = 0;
  for (size_t i = 0; i < a->n; i++) {
    struct pstate *ps = &a->ps[i];
    if (ps->turn && (all || !ps->pending)) {
      names[n++] = batch_player_name(a->b, ps->p);
      ps->turn = false;
    }
  }
  if (n > 0)
    turns_release(a->dy->turns, names, n);
}

/* The batch stops waiting: it leaves the lines of the players that still
 * wait, whose names go with it. */
static void leave_turns(struct apply_ctx *a, const char **names) {
  size_t n = 0;
  for (size_t i = 0; i < a->n; i++)
    if (a->ps[i].waiting)
      names[n++] = batch_player_name(a->b, a->ps[i].p);
  if (n > 0)
    turns_leave(a->dy->turns, names, n, a->ticket);
}

/* Applies the batch in rounds: each round reads, decides and writes the
 * players whose turn it holds (and those without turns), through the
 * transaction runner; the players that waited go in a later round, once
 * the batch holding them has released them, and then usually start from
 * that batch's write (store/guess.h) instead of losing to it. A round's
 * players are settled for the next one's decision (view_settled), as a
 * retry's written players are. */
static enum ts_status apply_in_turns(struct apply_ctx *a) {
  size_t room = a->n ? a->n : 1;
  struct turn_scratch x = {.names = calloc(room, sizeof *x.names),
                           .got = calloc(room, sizeof *x.got),
                           .queue = calloc(room, sizeof *x.queue)};
  enum ts_status st = TS_ERR_NOMEM;
  if (!x.names || !x.got || !x.queue)
    goto out;
  for (;;) {
    size_t waiting;
    uint64_t epoch = claim_turns(a, &x, &waiting);
    bool any = false;
    for (size_t i = 0; i < a->n && !any; i++)
      any = a->ps[i].pending;
    st = any ? store_run_tx("dynamodb.apply", apply_attempt, a, NULL,
                            a->deadline_ms)
             : TS_OK;
    release_turns(a, x.names, st != TS_OK);
    if (st != TS_OK || waiting == 0)
      break;
    if (!any && (st = turns_wait(a->dy->turns, a->ticket, epoch,
                                 a->deadline_ms)) != TS_OK)
      break;
  }
  leave_turns(a, x.names);
out:
  free(x.names);
  free(x.got);
  free(x.queue);
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
  enum ts_status st = apply_in_turns(&a);
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

#define DY_PROJECTION                                                          \
  "#p, games, wins, total_score, avg_score, updated_at, session_state"

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
    row->session_state = ps.state;
    ps.state = NULL;
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

/* ---- Kinesis leases (store.h) ----
 * An item of the applied-log table, id "#kinesis#<stream>#<shard>" (chunk
 * ids are "<player>#<hex>" and the session's "#backfill-session": never
 * this), without expires_at so that TTL leaves it. A write is a PutItem
 * conditioned on the version read (attribute_not_exists for the first). */

static void lease_id(const char *stream, const char *shard, char *out,
                     size_t cap) {
  snprintf(out, cap, "#kinesis#%s#%s", stream, shard);
}

struct lease_ctx {
  struct dy *dy;
  const char *stream, *shard;
  struct shard_lease *out;
  const struct shard_lease *next;
  uint64_t expected;
  bool written;
};

static enum ts_status lease_get_attempt(void *cls) {
  struct lease_ctx *x = cls;
  char id[2 * TS_KINESIS_ID_BYTES + 16];
  lease_id(x->stream, x->shard, id, sizeof id);
  json_t *req = json_pack("{s:s, s:{s:o}, s:b}", "TableName", x->dy->log_table,
                          "Key", "id", attr_s(id), "ConsistentRead", 1);
  if (!req)
    return TS_ERR_NOMEM;
  struct ddb_call call = {.op = "GetItem", .request = req};
  enum ts_status st = ddb_execute(x->dy->client, &call, 1,
                                  clock_now_ms() + DY_READ_DEADLINE_MS);
  if (st == TS_OK)
    st = call_status(x->dy->log_table, &call);
  const json_t *item = json_object_get(call.response, "Item");
  memset(x->out, 0, sizeof *x->out);
  if (st == TS_OK && item) {
    const char *owner = attr_text(item, "owner", "S");
    const char *cp = attr_text(item, "checkpoint", "S");
    const char *exp = attr_text(item, "lease_expires_ms", "N");
    const char *ver = attr_text(item, "lease_version", "N");
    const json_t *fin =
        json_object_get(json_object_get(item, "finished"), "BOOL");
    int64_t e = 0, v = 0;
    if (!exp || !ver || !parse_int64(exp, &e) || !parse_int64(ver, &v) ||
        v < 1) {
      st = TS_ERR_IO;
    } else {
      snprintf(x->out->owner, sizeof x->out->owner, "%s", owner ? owner : "");
      snprintf(x->out->checkpoint, sizeof x->out->checkpoint, "%s",
               cp ? cp : "");
      x->out->expires_ms = e;
      x->out->version = (uint64_t)v;
      x->out->finished = json_is_true(fin);
    }
  }
  ddb_call_clear(&call);
  json_decref(req);
  return st;
}

/* A lease write refused by its condition: another writer's row, or our
 * own write, landed while its answer was lost and refused when sent
 * again. Taking that for a lost race stopped the shard's worker, and the
 * row, still ours, was taken again only once it expired. The row read
 * back tells (kinesis_lease_same). */
static enum ts_status lease_put_landed(struct lease_ctx *x) {
  struct shard_lease stored;
  struct lease_ctx get = *x;
  get.out = &stored;
  enum ts_status st = lease_get_attempt(&get);
  x->written = st == TS_OK && kinesis_lease_same(&stored, x->next);
  return st;
}

static enum ts_status lease_put_attempt(void *cls) {
  struct lease_ctx *x = cls;
  const struct shard_lease *n = x->next;
  char id[2 * TS_KINESIS_ID_BYTES + 16];
  lease_id(x->stream, x->shard, id, sizeof id);
  x->written = false;
  /* DynamoDB refuses empty strings in keys only; owner and checkpoint
   * may be "". */
  json_t *req = json_pack(
      "{s:s, s:{s:o, s:o, s:o, s:o, s:{s:b}, s:o}}", "TableName",
      x->dy->log_table, "Item", "id", attr_s(id), "owner", attr_s(n->owner),
      "checkpoint", attr_s(n->checkpoint), "lease_expires_ms",
      attr_n_int(n->expires_ms), "finished", "BOOL", n->finished ? 1 : 0,
      "lease_version", attr_n_int((int64_t)n->version));
  if (!req)
    return TS_ERR_NOMEM;
  int set =
      x->expected == 0
          ? json_object_set_new(req, "ConditionExpression",
                                json_string("attribute_not_exists(id)"))
          : json_object_set_new(req, "ConditionExpression",
                                json_string("lease_version = :v")) ||
                json_object_set_new(
                    req, "ExpressionAttributeValues",
                    json_pack("{s:o}", ":v", attr_n_int((int64_t)x->expected)));
  if (set != 0) {
    json_decref(req);
    return TS_ERR_NOMEM;
  }
  struct ddb_call call = {.op = "PutItem", .request = req};
  enum ts_status st = ddb_execute(x->dy->client, &call, 1,
                                  clock_now_ms() + DY_READ_DEADLINE_MS);
  if (st == TS_OK && call.outcome != DDB_CONDITION_FAILED) {
    st = call_status(x->dy->log_table, &call);
    x->written = st == TS_OK;
  } else if (st == TS_OK) {
    st = lease_put_landed(x);
  }
  ddb_call_clear(&call);
  json_decref(req);
  return st;
}

static enum ts_status dy_lease_get(void *impl, const char *stream,
                                   const char *shard, struct shard_lease *out) {
  struct lease_ctx x = {
      .dy = impl, .stream = stream, .shard = shard, .out = out};
  return store_run_tx("dynamodb.lease_get", lease_get_attempt, &x, NULL,
                      clock_now_ms() + DY_READ_DEADLINE_MS);
}

static enum ts_status dy_lease_put(void *impl, const char *stream,
                                   const char *shard,
                                   const struct shard_lease *next,
                                   uint64_t expected, bool *written) {
  struct lease_ctx x = {.dy = impl,
                        .stream = stream,
                        .shard = shard,
                        .next = next,
                        .expected = expected};
  enum ts_status st = store_run_tx("dynamodb.lease_put", lease_put_attempt, &x,
                                   NULL, clock_now_ms() + DY_READ_DEADLINE_MS);
  *written = st == TS_OK && x.written;
  return st;
}

static void dy_close(void *impl) {
  struct dy *dy = impl;
  if (!dy)
    return;
  rank_cache_free(dy->board); /* first: its refresher uses the client */
  guess_free(dy->guess);
  turns_free(dy->turns);
  ddb_client_free(dy->client);
  aws_creds_provider_free(dy->creds);
  free(dy->table);
  free(dy->dl_table);
  free(dy->log_table);
  pthread_mutex_destroy(&dy->session_mu);
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
    .session_open = dy_session_open,
    .session_close = dy_session_close,
    .session_settle = dy_session_settle,
    .lease_get = dy_lease_get,
    .lease_put = dy_lease_put,
    .ping = dy_ping,
    .close = dy_close,
};

static enum ts_status dy_new(const struct store_options *opt, struct dy **out) {
  *out = NULL;
  enum ts_status st = TS_ERR_NOMEM;
  char *region = NULL;
  struct dy *dy = calloc(1, sizeof *dy);
  if (!dy)
    goto fail;
  atomic_init(&dy->apply_deadline_ms, TS_INGEST_DEADLINE_MS);
  pthread_mutex_init(&dy->session_mu, NULL);
  dy->table = strdup(opt->table ? opt->table : "TaTourneyStats");
  dy->dl_table = strdup(opt->dead_letter_table ? opt->dead_letter_table
                                               : "TaTourneyStatsDeadLetters");
  if (!dy->table || !dy->dl_table)
    goto fail;
  if (opt->applied_log_table && *opt->applied_log_table) {
    dy->log_table = strdup(opt->applied_log_table);
  } else {
    size_t cap = strlen(dy->table) + sizeof "AppliedLog";
    if ((dy->log_table = malloc(cap)))
      snprintf(dy->log_table, cap, "%sAppliedLog", dy->table);
  }
  if (!dy->log_table)
    goto fail;
  if ((st = ddb_client_from_env(&dy->creds, &dy->client, &region)) != TS_OK)
    goto fail;
  ddb_client_set_max_in_flight(dy->client, opt->ddb_max_in_flight);
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
  if ((st = guess_new(TS_GUESS_SLOTS, &dy->guess)) != TS_OK ||
      (st = turns_new(TS_TURN_SLOTS, &dy->turns)) != TS_OK)
    goto fail;
  unsigned char r[8];
  if (RAND_bytes(r, sizeof r) != 1) {
    st = TS_ERR_IO;
    goto fail;
  }
  for (size_t i = 0; i < sizeof r; i++)
    snprintf(dy->write_prefix + 2 * i, 3, "%02x", r[i]);
  log_event(LOG_INFO, "dynamodb store", "{s:s, s:s, s:s, s:s, s:s}", "endpoint",
            ddb_client_endpoint(dy->client), "region", region, "table",
            dy->table, "dead_letter_table", dy->dl_table, "applied_log_table",
            dy->log_table);
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
    clock_sleep_ms(200);
  }
}

/* Turns on DynamoDB's TTL on the applied log's expires_at, which removes
 * chunks no item refers to any more (and orphans of lost races). Already
 * on is fine. A DynamoDB without TTL (dynalite) only keeps the chunks:
 * a warning, not a failure. */
static enum ts_status enable_ttl(struct dy *dy, const char *table) {
  json_t *req = json_pack("{s:s, s:{s:b, s:s}}", "TableName", table,
                          "TimeToLiveSpecification", "Enabled", 1,
                          "AttributeName", "expires_at");
  if (!req)
    return TS_ERR_NOMEM;
  struct ddb_call call = {.op = "UpdateTimeToLive", .request = req};
  enum ts_status st =
      ddb_execute(dy->client, &call, 1, clock_now_ms() + DY_READ_DEADLINE_MS);
  if (st == TS_OK && call.outcome == DDB_GAVE_UP)
    st = TS_ERR_UNAVAILABLE;
  else if (st == TS_OK && call.outcome != DDB_DONE &&
           !strstr(call.error_message, "already enabled"))
    log_event(LOG_WARN, "could not enable TTL (chunks will not expire)",
              "{s:s, s:s, s:s}", "table", table, "error", call.error_type,
              "message", call.error_message);
  ddb_call_clear(&call);
  json_decref(req);
  return st;
}

enum ts_status store_dynamodb_create_tables(const struct store_options *opt) {
  struct dy *dy = NULL;
  enum ts_status st = dy_new(opt, &dy);
  if (st == TS_OK)
    st = create_one(dy, dy->table, "player");
  if (st == TS_OK)
    st = create_one(dy, dy->dl_table, "id");
  if (st == TS_OK)
    st = create_one(dy, dy->log_table, "id");
  if (st == TS_OK)
    st = enable_ttl(dy, dy->log_table);
  if (st == TS_OK)
    log_event(LOG_INFO, "tables active", "{s:s, s:s, s:s}", "table", dy->table,
              "dead_letter_table", dy->dl_table, "applied_log_table",
              dy->log_table);
  dy_close(dy);
  return st;
}
