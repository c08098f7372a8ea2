/* Helpers shared by the handler files (not by the rest of the server). */
#ifndef TS_HANDLERS_UTIL_H
#define TS_HANDLERS_UTIL_H

#include <stdbool.h>
#include <stddef.h>

#include "../common/buf.h"
#include "../server/reply.h"
#include "../server/request.h"
#include "../store/store.h"

/* Appends a player's stats object: {"player", "games", "wins", "losses",
 * "total_score", "avg_score", "win_percent", "updated_at"}, numbers as
 * exact JSON numbers. */
void handlers_write_stats(struct buf *b, const struct player_row *row);
/* The same members without the braces, to embed in a larger object. */
void handlers_write_stats_fields(struct buf *b, const struct player_row *row);

/* limit: absent -> def; else an integer 1..TS_LIST_MAX_LIMIT. */
enum ts_status handlers_parse_limit(const char *text, size_t def,
                                    size_t *out) TS_WARN_UNUSED;
/* The same with another upper bound: an integer 1..max. */
enum ts_status handlers_parse_count(const char *text, size_t def, size_t max,
                                    size_t *out) TS_WARN_UNUSED;

/* Page cursors: base64url(prefix + key), opaque to clients; the prefix
 * names the listing and its version, so a cursor of one listing is refused
 * by another and its form can change later. handlers_cursor_decode checks
 * the cursor before any store sees it: NULL text gives *key NULL and
 * TS_OK; TS_ERR_INVALID when it is longer than TS_MAX_CURSOR_BYTES, not
 * base64url, of another prefix, holds a NUL, or key_ok refuses the key.
 * *key (owned) is the key. */
enum ts_status handlers_cursor_encode(const char *prefix, const char *key,
                                      char **out) TS_WARN_UNUSED;
enum ts_status handlers_cursor_decode(const char *text, const char *prefix,
                                      bool (*key_ok)(const char *key,
                                                     size_t len),
                                      char **key) TS_WARN_UNUSED;

/* Gives a 200 reply a strong ETag (a hash of its body) and turns it into a
 * 304 without body when the request's If-None-Match names that ETag (or is
 * "*"). */
void handlers_set_etag(const struct request *req, struct reply *rep);

#endif /* TS_HANDLERS_UTIL_H */
