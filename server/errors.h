/* The error registry (errors.def) and the one function that turns an
 * error into an application/problem+json reply (RFC 9457). */
#ifndef TS_SERVER_ERRORS_H
#define TS_SERVER_ERRORS_H

#include "../common/status.h"

enum ts_error {
#define X(name, code, status, title) TS_E_##name,
#include "errors.def"
#undef X
  TS_E__COUNT
};

struct reply;

const char *error_code(enum ts_error e);
unsigned error_http_status(enum ts_error e);

/* Fills *rep with the problem for e; `detail_fmt` (printf) says what is
 * wrong in this request. Replaces anything *rep held. 503s carry
 * Retry-After. */
void error_reply(struct reply *rep, enum ts_error e, const char *detail_fmt,
                 ...) __attribute__((format(printf, 3, 4)));

/* The registry error for a store status that is not TS_OK. */
enum ts_error error_from_status(enum ts_status st);

#endif /* TS_SERVER_ERRORS_H */
