/* A loopback proxy in front of a private dynalite that makes the faults
 * real DynamoDB makes and dynalite never does, per operation (the end of
 * X-Amz-Target): throttling, unprocessed batch items, and answers lost or
 * failed after the write landed. Everything else is passed on untouched,
 * so the store under test still talks to a real DynamoDB implementation.
 * HTTP/1.1 with Content-Length only, one exchange at a time per
 * connection, as libcurl talks to DynamoDB. dynalite does not check
 * signatures, so a request whose body the proxy shortens still passes. */
#ifndef TS_TESTS_E2E_FAULT_PROXY_H
#define TS_TESTS_E2E_FAULT_PROXY_H

#include "harness.h"

struct e2e_fault_proxy;

/* Starts the proxy in front of dynalite d. */
enum ts_status
e2e_fault_proxy_start(const struct e2e_dynalite *d,
                      struct e2e_fault_proxy **out) TS_WARN_UNUSED;
/* "http://127.0.0.1:<port>" */
const char *e2e_fault_proxy_endpoint(const struct e2e_fault_proxy *p);

/* From now on, answers to `operation` (e.g. "PutItem") wait ms after
 * dynalite gave them: the store has done the work before its caller hears
 * of it. 0 stops holding. One operation at a time. */
void e2e_fault_proxy_hold(struct e2e_fault_proxy *p, const char *operation,
                          unsigned ms);
/* How many answers were held back so far. */
unsigned e2e_fault_proxy_held(struct e2e_fault_proxy *p);
/* The most calls in flight through the proxy at once so far: read from the
 * store under test and not yet answered (an answer held included; a
 * passed-on call leaves the count just before its answer is sent). */
unsigned e2e_fault_proxy_peak(struct e2e_fault_proxy *p);

enum e2e_fault {
  E2E_FAULT_NONE = 0,
  /* Answered 400 ProvisionedThroughputExceededException; dynalite never
   * sees the call. */
  E2E_FAULT_THROTTLE,
  /* Passed on (the write lands), then the connection is closed without an
   * answer. */
  E2E_FAULT_LOSE_ANSWER,
  /* Passed on (the write lands), then answered 500 InternalServerError. */
  E2E_FAULT_FAIL_AFTER,
  /* BatchGetItem, BatchWriteItem: every second item of each table (the
   * item, when it is the only one) is kept back from dynalite and
   * returned as UnprocessedKeys / UnprocessedItems, as DynamoDB does when
   * it runs out of capacity part way. */
  E2E_FAULT_UNPROCESSED,
  /* Passed on, answered E2E_FAULT_SLOW_MS after dynalite answered. */
  E2E_FAULT_SLOW,
};
#define E2E_FAULT_SLOW_MS 300u

/* The next `count` calls of `operation` meet `fault` (E2E_FAULT_NONE or
 * count 0: none). Up to 4 operations at once; a later call for the same
 * operation replaces its entry. */
void e2e_fault_proxy_inject(struct e2e_fault_proxy *p, const char *operation,
                            enum e2e_fault fault, unsigned count);
/* The same, after the next `skip` calls of `operation` passed untouched. */
void e2e_fault_proxy_inject_after(struct e2e_fault_proxy *p,
                                  const char *operation, enum e2e_fault fault,
                                  unsigned count, unsigned skip);
/* How many calls of `operation` met a fault so far. */
unsigned e2e_fault_proxy_injected(struct e2e_fault_proxy *p,
                                  const char *operation);

/* Stops accepting; connections still open end when either side closes
 * (stop the server first). NULL is accepted. */
void e2e_fault_proxy_stop(struct e2e_fault_proxy *p);

#endif /* TS_TESTS_E2E_FAULT_PROXY_H */
