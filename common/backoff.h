/* Exponential backoff with full jitter (the AWS SDKs' strategy), shared by
 * the store's transaction runner and the DynamoDB client. */
#ifndef TS_COMMON_BACKOFF_H
#define TS_COMMON_BACKOFF_H

#include <stdint.h>

/* The ceiling after attempts_done failed attempts: base, doubled for each
 * attempt after the first, never above cap. */
uint32_t backoff_ceiling_ms(uint32_t base_ms, uint32_t cap_ms,
                            unsigned attempts_done);

/* Full jitter: a pause drawn uniformly from [0, ceiling]. */
uint32_t backoff_pause_ms(uint32_t base_ms, uint32_t cap_ms,
                          unsigned attempts_done);

/* A per-thread 64-bit generator (xorshift64*, seeded from getrandom): for
 * values that only need to differ between threads and processes, not to be
 * secret (jitter, a backfill's session id). */
uint64_t backoff_random(void);

#endif /* TS_COMMON_BACKOFF_H */
