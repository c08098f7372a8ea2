/* Status codes shared by every module.
 *
 * Every fallible function returns one of these (TS_OK = 0) and passes its
 * results through out-parameters. The mapping to HTTP lives in one place,
 * server/errors.c; modules below the server never think in HTTP. */
#ifndef TS_COMMON_STATUS_H
#define TS_COMMON_STATUS_H

enum ts_status {
  TS_OK = 0,
  TS_ERR_NOMEM,       /* an allocation failed */
  TS_ERR_INVALID,     /* the input is malformed; not retryable */
  TS_ERR_NOT_FOUND,   /* the thing asked for does not exist */
  TS_ERR_TOO_LARGE,   /* over a bound from common/bounds.h */
  TS_ERR_RANGE,       /* a number would leave its representable range */
  TS_ERR_RETRY,       /* transient (SQLITE_BUSY, throttling, failed condition):
                         the transaction runner tries again */
  TS_ERR_UNAVAILABLE, /* the store could not be reached in time: answer 503 */
  TS_ERR_IO,          /* the store failed and retrying will not help: 500 */
};

/* A short, static, lower-case name for logs ("ok", "busy", ...). */
const char *ts_status_name(enum ts_status st);

#if defined(__GNUC__)
#define TS_WARN_UNUSED __attribute__((warn_unused_result))
#else
#define TS_WARN_UNUSED
#endif

#endif /* TS_COMMON_STATUS_H */
