/* FNV-1a, 64 bits: the in-memory hash of the store's name-keyed tables
 * (store/guess.c, store/recent.c) and of the ETag (handlers/etag.c). Not
 * for anything an attacker could steer into collisions that matter: both
 * tables are bounded and only slow down, never answer wrong, when keys
 * collide, and an ETag is a cache validator, not a secret. */
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

#endif /* TS_COMMON_HASH_H */
