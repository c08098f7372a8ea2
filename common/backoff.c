#include "backoff.h"

#include <stdint.h>
#include <sys/random.h>
#include <sys/types.h>

#include "clock.h"

static _Thread_local uint64_t rng_state;

uint64_t backoff_random(void) {
  if (rng_state == 0) {
    uint64_t seed = 0;
    if (getrandom(&seed, sizeof seed, GRND_NONBLOCK) != (ssize_t)sizeof seed)
      seed = clock_now_ms() ^ (uint64_t)(uintptr_t)&rng_state;
    rng_state = seed ? seed : 0x9e3779b97f4a7c15u;
  }
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 0x2545f4914f6cdd1du;
}

uint32_t backoff_ceiling_ms(uint32_t base_ms, uint32_t cap_ms,
                            unsigned attempts_done) {
  uint32_t ms = base_ms;
  for (unsigned i = 1; i < attempts_done && ms < cap_ms; i++)
    ms = ms > UINT32_MAX / 2 ? UINT32_MAX : ms * 2;
  return ms < cap_ms ? ms : cap_ms;
}

uint32_t backoff_pause_ms(uint32_t base_ms, uint32_t cap_ms,
                          unsigned attempts_done) {
  uint64_t ceiling = backoff_ceiling_ms(base_ms, cap_ms, attempts_done);
  return (uint32_t)(backoff_random() % (ceiling + 1u));
}
