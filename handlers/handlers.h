/* Every endpoint handler. A handler gets a request the router has already
 * checked (route, method, size, media type, JSON) and fills a reply; it
 * never talks to libmicrohttpd. One file per endpoint family. */
#ifndef TS_HANDLERS_HANDLERS_H
#define TS_HANDLERS_HANDLERS_H

#include "../server/reply.h"
#include "../server/request.h"

typedef void (*handler_fn)(struct request *req, struct reply *rep);

/* ingest.c */
void handle_stream_records(struct request *req, struct reply *rep);
/* players.c */
void handle_player_stats(struct request *req, struct reply *rep);
void handle_players_list(struct request *req, struct reply *rep);
/* leaderboard.c */
void handle_leaderboard(struct request *req, struct reply *rep);
/* dead_letters.c */
void handle_dead_letters_list(struct request *req, struct reply *rep);
void handle_dead_letters_replay(struct request *req, struct reply *rep);
/* meta.c */
void handle_dashboard(struct request *req, struct reply *rep);
void handle_openapi(struct request *req, struct reply *rep);
void handle_metrics(struct request *req, struct reply *rep);
/* health.c */
void handle_healthz(struct request *req, struct reply *rep);
void handle_readyz(struct request *req, struct reply *rep);

#endif /* TS_HANDLERS_HANDLERS_H */
