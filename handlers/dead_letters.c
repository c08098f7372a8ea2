/* GET /v1/dead-letters (paged) and POST /v1/dead-letters/replay. Both are
 * for the operator holding the ingest key. A replay re-decodes stored
 * records with the current configuration and applies them through the
 * ingestion path (domain/replay.h), so exactly-once holds however often
 * and from how many replicas it runs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/bounds.h"
#include "../common/buf.h"
#include "../common/log.h"
#include "../common/utf8.h"
#include "../domain/replay.h"
#include "../server/errors.h"
#include "../server/urlcode.h"
#include "handlers.h"
#include "handlers_util.h"

#define CURSOR_PREFIX "d1:"
/* An id is a SHA-256 in hex, or "v1-<row>" for a row of an old SQLite
 * file; anything longer was never handed out. */
#define MAX_ID_BYTES 80u

/* True for text that can be a dead letter's id. */
static bool id_valid(const char *s, size_t len) {
  if (len == 0 || len > MAX_ID_BYTES)
    return false;
  for (size_t i = 0; i < len; i++)
    if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'z') ||
          s[i] == '-'))
      return false;
  return true;
}

/* A reason filter: absent, or 1..TS_MAX_REASON_BYTES bytes. */
static bool reason_valid(const char *reason) {
  return !reason || (*reason && strlen(reason) < TS_MAX_REASON_BYTES);
}

/* The stored record as the JSON value it is; text that is not JSON (a
 * record cut for size) as a string, with any cut UTF-8 sequence made '?'. */
static void add_record(struct buf *b, const char *text) {
  json_t *parsed = text ? json_loads(text, JSON_DECODE_ANY, NULL) : NULL;
  if (parsed) {
    buf_adds(b, text); /* verbatim: numbers keep their spelling */
    json_decref(parsed);
    return;
  }
  char *copy = text ? strdup(text) : NULL;
  if (copy) {
    utf8_sanitize(copy);
    buf_add_json_string(b, copy);
    free(copy);
  } else if (text) {
    buf_adds(b, "\"\""); /* out of memory: the listing still answers */
  } else {
    buf_adds(b, "null");
  }
}

static void add_dead_letter(struct buf *b, const struct dead_letter *d) {
  buf_adds(b, "{\"id\":");
  buf_add_json_string(b, d->id);
  buf_adds(b, ",\"eventID\":");
  buf_add_json_string_or_null(b, d->event_id);
  buf_adds(b, ",\"itemIdentifier\":");
  buf_add_json_string_or_null(b, d->item_identifier);
  buf_adds(b, ",\"reason\":");
  buf_add_json_string(b, d->reason);
  buf_adds(b, ",\"received_at\":");
  buf_add_json_string(b, d->received_at);
  buf_adds(b, ",\"record\":");
  add_record(b, d->record);
  buf_adds(b, "}");
}

void handle_dead_letters_list(struct request *req, struct reply *rep) {
  char *limit_text = NULL, *cursor_text = NULL, *reason = NULL;
  char *after = NULL, *next = NULL, *next_id = NULL;
  struct dead_letter *rows = NULL;
  size_t n = 0, limit = 0;
  struct buf b;
  buf_init(&b, TS_MAX_REPLY_BYTES);

  if (request_query(req, "limit", &limit_text) != TS_OK ||
      handlers_parse_count(limit_text, TS_DEAD_LETTER_DEFAULT_LIMIT,
                           TS_DEAD_LETTER_MAX_LIMIT, &limit) != TS_OK) {
    error_reply(rep, TS_E_BAD_PARAMETER,
                "limit must be an integer from 1 to %u",
                TS_DEAD_LETTER_MAX_LIMIT);
    goto out;
  }
  if (request_query(req, "cursor", &cursor_text) != TS_OK ||
      handlers_cursor_decode(cursor_text, CURSOR_PREFIX, id_valid, &after) !=
          TS_OK) {
    error_reply(rep, TS_E_BAD_CURSOR,
                "cursor must be a next_cursor value from an earlier page");
    goto out;
  }
  if (request_query(req, "reason", &reason) != TS_OK || !reason_valid(reason)) {
    error_reply(rep, TS_E_BAD_PARAMETER,
                "reason must be a dead letter's reason, 1 to %u bytes",
                TS_MAX_REASON_BYTES - 1);
    goto out;
  }
  enum ts_status st = store_list_dead_letters(req->app->store, after, reason,
                                              limit, &rows, &n, &next_id);
  if (st != TS_OK) {
    error_reply(rep, error_from_status(st), "could not list dead letters (%s)",
                ts_status_name(st));
    goto out;
  }
  buf_adds(&b, "{\"items\":[");
  for (size_t i = 0; i < n; i++) {
    if (i)
      buf_adds(&b, ",");
    add_dead_letter(&b, &rows[i]);
  }
  buf_adds(&b, "],\"next_cursor\":");
  if (next_id) {
    if (handlers_cursor_encode(CURSOR_PREFIX, next_id, &next) != TS_OK) {
      error_reply(rep, TS_E_INTERNAL, "could not build the cursor");
      goto out;
    }
    buf_add_json_string(&b, next);
  } else {
    buf_adds(&b, "null");
  }
  buf_adds(&b, "}");
  if (buf_status(&b) != TS_OK) {
    error_reply(rep, TS_E_INTERNAL, "the page is too large; ask for fewer");
    goto out;
  }
  reply_buf_take(rep, 200, &b);
out:
  buf_free(&b);
  dead_letters_free(rows, n);
  free(limit_text);
  free(cursor_text);
  free(reason);
  free(after);
  free(next);
  free(next_id);
}

/* ---- replay ---- */

/* What a replay call selects: the body {"ids":[...], "reason":"...",
 * "limit":N, "cursor":"..."}, every member optional. ids borrow from the
 * body; after (the decoded cursor) is owned. */
struct selection {
  const char **ids;
  size_t n_ids;
  const char *reason;
  size_t limit;
  char *after;
};

#define DETAIL_BYTES 128

/* Reads the body (NULL: an empty body, select everything). On a bad body
 * returns false with detail saying what is wrong. */
static bool selection_parse(const json_t *body, struct selection *sel,
                            char detail[DETAIL_BYTES]) {
  *sel = (struct selection){.limit = TS_REPLAY_DEFAULT_LIMIT};
  detail[0] = '\0';
  if (!body)
    return true;
  if (!json_is_object(body)) {
    snprintf(detail, DETAIL_BYTES, "the body must be a JSON object (or empty)");
    return false;
  }
  const char *key;
  const json_t *value;
  json_object_foreach((json_t *)body, key, value) {
    if (strcmp(key, "ids") && strcmp(key, "reason") && strcmp(key, "limit") &&
        strcmp(key, "cursor")) {
      snprintf(detail, DETAIL_BYTES,
               "the body has a member other than ids, "
               "reason, limit and cursor");
      return false;
    }
  }
  /* A cursor continues a walk past the ones that stayed rejected. */
  const json_t *cursor = json_object_get(body, "cursor");
  if (cursor &&
      (json_object_get(body, "ids") || !json_is_string(cursor) ||
       handlers_cursor_decode(json_string_value(cursor), CURSOR_PREFIX,
                              id_valid, &sel->after) != TS_OK)) {
    snprintf(detail, DETAIL_BYTES,
             "cursor must be a next_cursor from an earlier answer, and "
             "comes without ids");
    return false;
  }
  const json_t *limit = json_object_get(body, "limit");
  if (limit && (!json_is_integer(limit) || json_integer_value(limit) < 1 ||
                json_integer_value(limit) > TS_REPLAY_MAX_LIMIT)) {
    snprintf(detail, DETAIL_BYTES, "limit must be an integer from 1 to %u",
             TS_REPLAY_MAX_LIMIT);
    return false;
  }
  if (limit)
    sel->limit = (size_t)json_integer_value(limit);
  const json_t *reason = json_object_get(body, "reason");
  if (reason &&
      (!json_is_string(reason) || !reason_valid(json_string_value(reason)) ||
       strlen(json_string_value(reason)) != json_string_length(reason))) {
    snprintf(detail, DETAIL_BYTES, "reason must be a non-empty string");
    return false;
  }
  sel->reason = json_string_value(reason);
  const json_t *ids = json_object_get(body, "ids");
  if (!ids)
    return true;
  if (!json_is_array(ids) || json_array_size(ids) == 0 ||
      json_array_size(ids) > TS_REPLAY_MAX_LIMIT) {
    snprintf(detail, DETAIL_BYTES,
             "ids must be an array of 1 to %u dead letter ids",
             TS_REPLAY_MAX_LIMIT);
    return false;
  }
  sel->ids = calloc(json_array_size(ids), sizeof *sel->ids);
  if (!sel->ids) {
    snprintf(detail, DETAIL_BYTES, "out of memory");
    return false;
  }
  for (size_t i = 0; i < json_array_size(ids); i++) {
    const json_t *id = json_array_get(ids, i);
    const char *s = json_string_value(id);
    if (!s || !id_valid(s, json_string_length(id))) {
      snprintf(detail, DETAIL_BYTES,
               "every id must be an id from GET /v1/dead-letters");
      return false;
    }
    bool seen = false; /* one dead letter, replayed once per call */
    for (size_t k = 0; k < sel->n_ids && !seen; k++)
      seen = strcmp(sel->ids[k], s) == 0;
    if (!seen)
      sel->ids[sel->n_ids++] = s;
  }
  return true;
}

/* The dead letters the call replays: the named ones (of the reason, when
 * one is given) or the page of the reason (or of all) after the cursor,
 * at most sel->limit; *more when others match beyond, and then *next (the
 * id to continue after, owned) unless ids were named. */
static enum ts_status select_dead_letters(struct store *store,
                                          const struct selection *sel,
                                          struct dead_letter **rows, size_t *n,
                                          bool *more, char **next) {
  *more = false;
  *next = NULL;
  if (!sel->ids) {
    enum ts_status st = store_list_dead_letters(store, sel->after, sel->reason,
                                                sel->limit, rows, n, next);
    *more = *next != NULL;
    return st;
  }
  enum ts_status st =
      store_get_dead_letters(store, sel->ids, sel->n_ids, rows, n);
  if (st != TS_OK)
    return st;
  size_t kept = 0;
  for (size_t i = 0; i < *n; i++) {
    struct dead_letter *d = &(*rows)[i];
    bool keep = (!sel->reason || strcmp(d->reason, sel->reason) == 0) &&
                kept < sel->limit;
    if (!keep) {
      *more = *more || !sel->reason || strcmp(d->reason, sel->reason) == 0;
      dead_letter_clear(d);
      continue;
    }
    (*rows)[kept++] = *d;
  }
  *n = kept;
  return TS_OK;
}

struct replay_counts {
  size_t applied, duplicates, skipped;
};

/* Decides what becomes of each selected dead letter (domain/replay.h),
 * collects the entries to delete into *gone and the ones that stay into
 * still (a JSON array). */
static enum ts_status settle(const struct replay *rp,
                             const struct dead_letter *rows, size_t n,
                             const char **gone, size_t *n_gone, json_t *still,
                             struct replay_counts *c) {
  *n_gone = 0;
  for (size_t i = 0; i < n; i++) {
    enum replay_verdict v;
    char new_id[65];
    const char *reason;
    if (replay_result(rp, i, rows[i].id, &v, new_id, &reason))
      gone[(*n_gone)++] = rows[i].id;
    switch (v) {
    case REPLAY_APPLIED: c->applied++; break;
    case REPLAY_DUPLICATE: c->duplicates++; break;
    case REPLAY_SKIPPED: c->skipped++; break;
    case REPLAY_REJECTED:
    case REPLAY_UNREADABLE: {
      json_t *one = json_pack("{s:s, s:o, s:s}", "id", new_id, "eventID",
                              rows[i].event_id ? json_string(rows[i].event_id)
                                               : json_null(),
                              "reason", reason);
      if (!one || json_array_append_new(still, one) != 0)
        return TS_ERR_NOMEM;
      break;
    }
    }
  }
  return TS_OK;
}

/* Replays the selected dead letters and builds the 200 answer in *answer.
 * Nothing is deleted before the batch is applied: a failure leaves them
 * for the next replay, which then finds the applied ones duplicates. */
static enum ts_status replay_rows(struct request *req,
                                  const struct dead_letter *rows, size_t n,
                                  bool more, const char *next_id,
                                  json_t **answer) {
  char *next = NULL;
  enum ts_status st = TS_ERR_NOMEM;
  struct replay *rp = NULL;
  struct replay_counts c = {0};
  size_t n_gone = 0;
  const char **records = calloc(n ? n : 1, sizeof *records);
  const char **gone = calloc(n ? n : 1, sizeof *gone);
  json_t *still = json_array();
  *answer = NULL;
  if (!records || !gone || !still)
    goto out;
  for (size_t i = 0; i < n; i++)
    records[i] = rows[i].record;
  st = replay_new(records, n, &req->app->batch, &rp);
  /* The ingestion path: the domain decides, the store writes and keeps
   * what is rejected again. */
  if (st == TS_OK && replay_batch(rp))
    st = store_apply_by(req->app->store, replay_batch(rp), req->deadline_ms);
  if (st == TS_OK)
    st = settle(rp, rows, n, gone, &n_gone, still, &c);
  if (st == TS_OK)
    st = store_delete_dead_letters(req->app->store, gone, n_gone);
  if (st == TS_OK && next_id)
    st = handlers_cursor_encode(CURSOR_PREFIX, next_id, &next);
  if (st != TS_OK)
    goto out;
  log_event(LOG_INFO, "dead letters replayed", "{s:i, s:i, s:i, s:i, s:i}",
            "selected", (int)n, "applied", (int)c.applied, "duplicates",
            (int)c.duplicates, "skipped", (int)c.skipped, "still_rejected",
            (int)json_array_size(still));
  *answer =
      json_pack("{s:I, s:I, s:I, s:I, s:O, s:b, s:s?}", "selected",
                (json_int_t)n, "applied", (json_int_t)c.applied, "duplicates",
                (json_int_t)c.duplicates, "skipped", (json_int_t)c.skipped,
                "still_rejected", still, "more", more, "next_cursor", next);
  st = *answer ? TS_OK : TS_ERR_NOMEM;
out:
  free(next);
  replay_free(rp);
  json_decref(still);
  free(records);
  free(gone);
  return st;
}

void handle_dead_letters_replay(struct request *req, struct reply *rep) {
  struct selection sel = {0};
  struct dead_letter *rows = NULL;
  size_t n = 0;
  bool more = false;
  char *next_id = NULL;
  json_t *answer = NULL;
  char detail[DETAIL_BYTES];

  if (!selection_parse(req->body, &sel, detail)) {
    error_reply(rep, TS_E_BAD_REPLAY_REQUEST, "%s", detail);
    goto out;
  }
  enum ts_status st =
      select_dead_letters(req->app->store, &sel, &rows, &n, &more, &next_id);
  if (st == TS_OK)
    st = replay_rows(req, rows, n, more, next_id, &answer);
  if (st != TS_OK) {
    enum ts_error e = error_from_status(st);
    log_event(e == TS_E_STORE_UNAVAILABLE ? LOG_WARN : LOG_ERROR,
              "replay not done", "{s:s, s:i}", "status", ts_status_name(st),
              "selected", (int)n);
    error_reply(rep, e, "the replay was not completed (%s); send it again",
                ts_status_name(st));
    goto out;
  }
  reply_json_take(rep, 200, answer);
out:
  dead_letters_free(rows, n);
  free(next_id);
  free(sel.ids);
  free(sel.after);
}
