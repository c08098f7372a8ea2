/* The HTTP layer: a libmicrohttpd daemon with a worker thread pool that
 * runs the router and the handlers. */
#ifndef TS_SERVER_HTTP_H
#define TS_SERVER_HTTP_H

#include <stdint.h>

#include "../common/status.h"
#include "app.h"

struct http_server;

/* Binds cfg->bind:cfg->port and starts serving. *port is the bound port
 * (useful when cfg->port is 0). *out is owned; stop it with
 * http_server_stop(). */
enum ts_status http_server_start(struct app *app, struct http_server **out,
                                 uint16_t *port) TS_WARN_UNUSED;

/* Stops accepting, waits up to grace_ms for in-flight requests to finish,
 * then stops the daemon and frees srv. Accepts NULL. */
void http_server_stop(struct http_server *srv, unsigned grace_ms);

#endif /* TS_SERVER_HTTP_H */
