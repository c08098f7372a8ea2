/* A bump allocator for many small strings that are freed together (a
 * batch's eventIDs, item identifiers and player names): one malloc per
 * chunk instead of one per string, and one free per chunk at the end.
 *
 * Contract: what arena_strndup returns lives until arena_free and is never
 * freed on its own. Chunks grow geometrically up to TS_ARENA_MAX_CHUNK_BYTES
 * (a larger string gets a chunk of its own), so a batch of N strings costs
 * O(log N) mallocs. Not thread-safe: one owner. */
#ifndef TS_COMMON_ARENA_H
#define TS_COMMON_ARENA_H

#include <stddef.h>

struct arena;

/* An empty arena whose first chunk will hold about first_bytes; NULL when
 * out of memory. */
struct arena *arena_new(size_t first_bytes);
/* Frees every string handed out and the arena; accepts NULL. */
void arena_free(struct arena *a);

/* A NUL-terminated copy of the len bytes at s; NULL when out of memory. */
char *arena_strndup(struct arena *a, const char *s, size_t len);

/* Bytes taken from malloc so far (chunks and headers), for tests. */
size_t arena_bytes(const struct arena *a);

#endif /* TS_COMMON_ARENA_H */
