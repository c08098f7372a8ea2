/* Clocks every layer uses: one monotonic millisecond clock for deadlines,
 * one wall-clock text for records. */
#ifndef TS_COMMON_CLOCK_H
#define TS_COMMON_CLOCK_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

/* Milliseconds on CLOCK_MONOTONIC: for deadlines and durations. */
uint64_t clock_now_ms(void);

/* The current UTC time as RFC 3339 to the second ("2026-12-03T08:13:32Z"). */
void clock_utc_now(char buf[32]);

/* Sleeps ms milliseconds, resuming after signals. */
void clock_sleep_ms(uint32_t ms);

/* Wall-clock unix milliseconds (CLOCK_REALTIME): for times other hosts
 * compare, such as a lease's expiry; never for durations in a process. */
int64_t clock_wall_ms(void);

/* The absolute time ms milliseconds from now on clock: the deadline that
 * pthread_cond_timedwait, pthread_mutex_timedlock and sem_timedwait take.
 * clock must be the one the wait measures: CLOCK_REALTIME, or the clock
 * given to pthread_condattr_setclock (CLOCK_MONOTONIC). */
struct timespec clock_deadline_abs(clockid_t clock, uint64_t ms);

/* Initializes cv so that its timed waits measure CLOCK_MONOTONIC, the
 * clock of clock_now_ms deadlines. False when it could not (cv is then
 * not initialized). */
bool clock_cond_init(pthread_cond_t *cv);

/* One wait on cv (made by clock_cond_init; mu held) until a signal or
 * deadline_ms (clock_now_ms); returns at once when that has passed. The
 * caller looks at its condition again, as after any wait. */
void clock_cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu,
                           uint64_t deadline_ms);

#endif /* TS_COMMON_CLOCK_H */
