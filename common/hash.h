/* FNV-1a, 64 bits: the in-memory hash of the store's name-keyed tables
 * (store/guess.c, store/recent.c) and of the ETag (handlers/etag.c). Not
 * for anything an attacker could steer into collisions that matter: both
 * tables are bounded and only slow down, never answer wrong, when keys
 * collide, and an ETag is a cache validator, not a secret.
 *
 * A table whose keys all come from one request (a batch's players) starts
 * from hash_seed() and takes its slot from hash_mix()'s output, so that a
 * client cannot choose keys that share slots. */
#ifndef TS_COMMON_HASH_H
#define TS_COMMON_HASH_H

#include <stddef.h>
#include <stdint.h>

/* FNV's 64-bit offset basis. */
#define HASH_FNV1A_INIT UINT64_C(14695981039346656037)

/* Folds the n bytes at p into h (start from HASH_FNV1A_INIT). */
static inline uint64_t hash_fnv1a(uint64_t h, const void *p, size_t n) {
  const unsigned char *c = p;
  for (size_t i = 0; i < n; i++)
    h = (h ^ c[i]) * UINT64_C(1099511628211);
  return h;
}

/* A finalizer (MurmurHash3's fmix64): every output bit depends on every
 * input bit, so that the high bits of a FNV-1a hash can pick a slot. */
static inline uint64_t hash_mix(uint64_t h) {
  h ^= h >> 33;
  h *= UINT64_C(0xff51afd7ed558ccd);
  h ^= h >> 33;
  h *= UINT64_C(0xc4ceb9fe1a85ec53);
  h ^= h >> 33;
  return h;
}

/* A random value drawn once per process (getrandom), never shown to
 * anyone: the start of hashes over keys a client chooses. */
uint64_t hash_seed(void);

#endif /* TS_COMMON_HASH_H */
