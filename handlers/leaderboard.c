/* GET /v1/leaderboard?by=wins|win_percent|avg_score|games&limit=N */
#include <stdlib.h>
#include <string.h>

#include "../common/bounds.h"
#include "../server/errors.h"
#include "handlers.h"
#include "handlers_util.h"

static const struct {
  const char *name;
  enum store_rank rank;
} orders[] = {
    {"wins", STORE_RANK_WINS},
    {"win_percent", STORE_RANK_WIN_PERCENT},
    {"avg_score", STORE_RANK_AVG_SCORE},
    {"games", STORE_RANK_GAMES},
};

void handle_leaderboard(struct request *req, struct reply *rep) {
  char *by_text = NULL, *limit_text = NULL;
  struct player_row *rows = NULL;
  size_t n = 0, limit = 0, o = 0;
  struct buf b;
  buf_init(&b, TS_MAX_REPLY_BYTES);

  if (request_query(req, "by", &by_text) != TS_OK) {
    error_reply(rep, TS_E_BAD_PARAMETER,
                "by must be wins, win_percent, avg_score or games");
    goto out;
  }
  if (by_text) {
    for (o = 0; o < sizeof orders / sizeof orders[0]; o++)
      if (strcmp(by_text, orders[o].name) == 0)
        break;
    if (o == sizeof orders / sizeof orders[0]) {
      error_reply(rep, TS_E_BAD_PARAMETER,
                  "by must be wins, win_percent, avg_score or games");
      goto out;
    }
  }
  if (request_query(req, "limit", &limit_text) != TS_OK ||
      handlers_parse_limit(limit_text, TS_LEADERBOARD_DEFAULT_LIMIT, &limit) !=
          TS_OK) {
    error_reply(rep, TS_E_BAD_PARAMETER,
                "limit must be an integer from 1 to %u", TS_LIST_MAX_LIMIT);
    goto out;
  }
  enum ts_status st =
      store_leaderboard(req->app->store, orders[o].rank, limit, &rows, &n);
  if (st != TS_OK) {
    error_reply(rep, error_from_status(st), "could not rank players (%s)",
                ts_status_name(st));
    goto out;
  }
  buf_adds(&b, "{\"by\":");
  buf_add_json_string(&b, orders[o].name);
  buf_adds(&b, ",\"players\":[");
  for (size_t i = 0; i < n; i++) {
    if (i)
      buf_adds(&b, ",");
    /* {"rank":N, ...stats} */
    buf_adds(&b, "{\"rank\":");
    buf_add_i64(&b, (int64_t)(i + 1));
    buf_adds(&b, ",");
    handlers_write_stats_fields(&b, &rows[i]);
    buf_adds(&b, "}");
  }
  buf_adds(&b, "]}");
  reply_buf_take(rep, 200, &b);
out:
  buf_free(&b);
  player_rows_free(rows, n);
  free(by_text);
  free(limit_text);
}
