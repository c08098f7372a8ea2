/* GET /v1/players/{player}/stats and GET /v1/players (paged). Numbers are
 * written as exact decimal text, which jansson's double-based reals cannot
 * do, so these bodies are built with the bounded buffer writer. */
#include <stdlib.h>
#include <string.h>

#include "../common/bounds.h"
#include "../common/buf.h"
#include "../common/utf8.h"
#include "../server/errors.h"
#include "../server/urlcode.h"
#include "handlers.h"
#include "handlers_util.h"

#define CURSOR_PREFIX "p1:"

void handlers_write_stats_fields(struct buf *b, const struct player_row *row) {
  char total[DECIMAL_TEXT_MAX], avg[DECIMAL_TEXT_MAX], pct[DECIMAL_TEXT_MAX];
  struct decimal avg_d, pct_d;
  if (stats_derive(&row->stats, &avg_d, &pct_d) != TS_OK) {
    avg_d = decimal_from_int(0);
    pct_d = decimal_from_int(0);
  }
  decimal_format(row->stats.total_score, total);
  decimal_format(avg_d, avg);
  decimal_format(pct_d, pct);
  buf_adds(b, "\"player\":");
  buf_add_json_string(b, row->player);
  buf_adds(b, ",\"games\":");
  buf_add_i64(b, row->stats.games);
  buf_adds(b, ",\"wins\":");
  buf_add_i64(b, row->stats.wins);
  buf_adds(b, ",\"losses\":");
  buf_add_i64(b, row->stats.games - row->stats.wins);
  buf_adds(b, ",\"total_score\":");
  buf_adds(b, total);
  buf_adds(b, ",\"avg_score\":");
  buf_adds(b, avg);
  buf_adds(b, ",\"win_percent\":");
  buf_adds(b, pct);
  buf_adds(b, ",\"updated_at\":");
  /* An item the original Lambda wrote has no updated_at until our first
   * write: null rather than a string that is not a time. */
  if (row->updated_at[0])
    buf_add_json_string(b, row->updated_at);
  else
    buf_adds(b, "null");
}

void handlers_write_stats(struct buf *b, const struct player_row *row) {
  buf_adds(b, "{");
  handlers_write_stats_fields(b, row);
  buf_adds(b, "}");
}

void handle_player_stats(struct request *req, struct reply *rep) {
  const char *player = req->params[0];
  if (strlen(player) > TS_MAX_PLAYER_BYTES) {
    error_reply(rep, TS_E_BAD_PLAYER_NAME, "player names are at most %u bytes",
                TS_MAX_PLAYER_BYTES);
    return;
  }
  struct player_row row = {0};
  enum ts_status st = store_get_player(req->app->store, player, &row);
  if (st == TS_ERR_NOT_FOUND) {
    error_reply(rep, TS_E_PLAYER_NOT_FOUND, "no stats for this player yet");
    return;
  }
  if (st != TS_OK) {
    error_reply(rep, error_from_status(st), "could not read the player (%s)",
                ts_status_name(st));
    return;
  }
  struct buf b;
  buf_init(&b, TS_MAX_REPLY_BYTES);
  handlers_write_stats(&b, &row);
  player_row_clear(&row);
  reply_buf_take(rep, 200, &b);
  handlers_set_etag(req, rep);
}

enum ts_status handlers_parse_limit(const char *text, size_t def, size_t *out) {
  return handlers_parse_count(text, def, TS_LIST_MAX_LIMIT, out);
}

enum ts_status handlers_parse_count(const char *text, size_t def, size_t max,
                                    size_t *out) {
  *out = def;
  if (!text)
    return TS_OK;
  if (!*text || strlen(text) > 9)
    return TS_ERR_INVALID;
  for (const char *p = text; *p; p++)
    if (*p < '0' || *p > '9')
      return TS_ERR_INVALID;
  unsigned long v = strtoul(text, NULL, 10);
  if (v < 1 || v > max)
    return TS_ERR_INVALID;
  *out = v;
  return TS_OK;
}

/* A players cursor names a player, so it is held to a player name's rules:
 * a longer one (which no page ever returned) would reach the store, and
 * DynamoDB refuses keys over 2048 bytes. */
static bool player_key_ok(const char *key, size_t len) {
  return len <= TS_MAX_PLAYER_BYTES && utf8_valid(key, len);
}

void handle_players_list(struct request *req, struct reply *rep) {
  char *limit_text = NULL, *cursor_text = NULL, *after = NULL, *next = NULL;
  struct player_row *rows = NULL;
  size_t n = 0, limit = 0;
  bool more = false;
  struct buf b;
  buf_init(&b, TS_MAX_REPLY_BYTES);

  if (request_query(req, "limit", &limit_text) != TS_OK ||
      handlers_parse_limit(limit_text, TS_LIST_DEFAULT_LIMIT, &limit) !=
          TS_OK) {
    error_reply(rep, TS_E_BAD_PARAMETER,
                "limit must be an integer from 1 to %u", TS_LIST_MAX_LIMIT);
    goto out;
  }
  if (request_query(req, "cursor", &cursor_text) != TS_OK ||
      handlers_cursor_decode(cursor_text, CURSOR_PREFIX, player_key_ok,
                             &after) != TS_OK) {
    error_reply(rep, TS_E_BAD_CURSOR,
                "cursor must be a next_cursor value from an earlier page");
    goto out;
  }
  enum ts_status st =
      store_list_players(req->app->store, after, limit, &rows, &n, &more);
  if (st != TS_OK) {
    error_reply(rep, error_from_status(st), "could not list players (%s)",
                ts_status_name(st));
    goto out;
  }
  buf_adds(&b, "{\"players\":[");
  for (size_t i = 0; i < n; i++) {
    if (i)
      buf_adds(&b, ",");
    handlers_write_stats(&b, &rows[i]);
  }
  buf_adds(&b, "],\"next_cursor\":");
  if (more && n > 0) {
    if (handlers_cursor_encode(CURSOR_PREFIX, rows[n - 1].player, &next) !=
        TS_OK) {
      error_reply(rep, TS_E_INTERNAL, "could not build the cursor");
      goto out;
    }
    buf_add_json_string(&b, next);
  } else {
    buf_adds(&b, "null");
  }
  buf_adds(&b, "}");
  reply_buf_take(rep, 200, &b);
out:
  buf_free(&b);
  player_rows_free(rows, n);
  free(limit_text);
  free(cursor_text);
  free(after);
  free(next);
}
