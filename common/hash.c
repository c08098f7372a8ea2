#include "hash.h"

#include <pthread.h>
#include <stdint.h>
#include <sys/random.h>
#include <sys/types.h>
#include <time.h>

static pthread_once_t once = PTHREAD_ONCE_INIT;
static uint64_t seed;

static void draw(void) {
  uint64_t s = 0;
  if (getrandom(&s, sizeof s, GRND_NONBLOCK) != (ssize_t)sizeof s) {
    /* No entropy yet (early boot): the clock and where we are loaded. */
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    s = hash_mix((uint64_t)t.tv_nsec ^ ((uint64_t)t.tv_sec << 32) ^
                 (uint64_t)(uintptr_t)&seed);
  }
  seed = s ^ HASH_FNV1A_INIT;
}

uint64_t hash_seed(void) {
  pthread_once(&once, draw);
  return seed;
}
