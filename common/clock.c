#include "clock.h"

#include <errno.h>
#include <string.h>
#include <time.h>

uint64_t clock_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void clock_utc_now(char buf[32]) {
  time_t now = time(NULL);
  struct tm tm;
  if (!gmtime_r(&now, &tm) || strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
    memcpy(buf, "1970-01-01T00:00:00Z", sizeof "1970-01-01T00:00:00Z");
}

void clock_sleep_ms(uint32_t ms) {
  struct timespec ts = {.tv_sec = (time_t)(ms / 1000u),
                        .tv_nsec = (long)(ms % 1000u) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
    ;
}

int64_t clock_wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + (int64_t)(ts.tv_nsec / 1000000L);
}

struct timespec clock_deadline_abs(clockid_t clock, uint64_t ms) {
  struct timespec ts;
  clock_gettime(clock, &ts);
  ts.tv_sec += (time_t)(ms / 1000u);
  ts.tv_nsec += (long)(ms % 1000u) * 1000000L;
  if (ts.tv_nsec >= 1000000000L) {
    ts.tv_sec++;
    ts.tv_nsec -= 1000000000L;
  }
  return ts;
}

bool clock_cond_init(pthread_cond_t *cv) {
  pthread_condattr_t attr;
  if (pthread_condattr_init(&attr) != 0)
    return false;
  bool ok = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) == 0 &&
            pthread_cond_init(cv, &attr) == 0;
  pthread_condattr_destroy(&attr);
  return ok;
}

void clock_cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu,
                           uint64_t deadline_ms) {
  uint64_t now = clock_now_ms();
  if (now >= deadline_ms)
    return;
  struct timespec at = clock_deadline_abs(CLOCK_MONOTONIC, deadline_ms - now);
  pthread_cond_timedwait(cv, mu, &at);
}
