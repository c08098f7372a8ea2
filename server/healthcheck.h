/* `tourney-stats healthcheck`: asks the server that the same settings
 * describe whether it is alive, for a container's HEALTHCHECK, which has
 * neither curl nor wget in the runtime image. */
#ifndef TS_SERVER_HEALTHCHECK_H
#define TS_SERVER_HEALTHCHECK_H

#include "../common/status.h"
#include "config.h"

/* GET /healthz on cfg's bind address and port (a wildcard bind is asked on
 * loopback), within TS_HEALTHCHECK_TIMEOUT_MS. TS_OK when it answers 200;
 * otherwise TS_ERR_UNAVAILABLE, with the reason written to err. */
enum ts_status healthcheck_probe(const struct config *cfg,
                                 FILE *err) TS_WARN_UNUSED;

#endif /* TS_SERVER_HEALTHCHECK_H */
