/* Process-wide state handed to every handler: configuration, the store,
 * and how records are read. Created once in main(), read-only after
 * the server starts (the store is itself thread-safe), except `draining`,
 * which SIGTERM sets once. */
#ifndef TS_SERVER_APP_H
#define TS_SERVER_APP_H

#include <stdatomic.h>

#include "../domain/batch.h"
#include "../store/store.h"
#include "config.h"

struct app {
  const struct config *cfg;
  struct store *store;
  struct batch_options batch; /* attribute names, TTL removes */
  /* SIGTERM was seen: /readyz is 503, new ingestion is refused with 503
   * and Retry-After, every answer closes its connection. */
  atomic_bool draining;
};

#endif /* TS_SERVER_APP_H */
