#include "arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bounds.h"

struct chunk {
  struct chunk *next;
  size_t cap, used;
  char data[];
};

struct arena {
  struct chunk *head; /* the chunk being filled; older ones follow */
  size_t next_cap;    /* the size of the next chunk */
  size_t bytes;
};

struct arena *arena_new(size_t first_bytes) {
  struct arena *a = malloc(sizeof *a);
  if (!a)
    return NULL;
  a->head = NULL;
  a->next_cap =
      first_bytes < TS_ARENA_MIN_CHUNK_BYTES   ? TS_ARENA_MIN_CHUNK_BYTES
      : first_bytes > TS_ARENA_MAX_CHUNK_BYTES ? TS_ARENA_MAX_CHUNK_BYTES
                                               : first_bytes;
  a->bytes = sizeof *a;
  return a;
}

void arena_free(struct arena *a) {
  if (!a)
    return;
  for (struct chunk *c = a->head, *next; c; c = next) {
    next = c->next;
    free(c);
  }
  free(a);
}

/* n bytes from the current chunk, or from a new one. */
static char *take(struct arena *a, size_t n) {
  struct chunk *c = a->head;
  if (!c || c->cap - c->used < n) {
    size_t cap = a->next_cap > n ? a->next_cap : n;
    if (cap > SIZE_MAX - sizeof *c)
      return NULL;
    struct chunk *fresh = malloc(sizeof *c + cap);
    if (!fresh)
      return NULL;
    fresh->cap = cap;
    fresh->used = 0;
    a->bytes += sizeof *c + cap;
    if (a->next_cap < TS_ARENA_MAX_CHUNK_BYTES / 2)
      a->next_cap *= 2;
    else
      a->next_cap = TS_ARENA_MAX_CHUNK_BYTES;
    fresh->next = c; /* what c has left stays unused */
    a->head = fresh;
    c = fresh;
  }
  char *p = c->data + c->used;
  c->used += n;
  return p;
}

char *arena_strndup(struct arena *a, const char *s, size_t len) {
  if (len == SIZE_MAX)
    return NULL;
  char *p = take(a, len + 1);
  if (p) {
    memcpy(p, s, len);
    p[len] = '\0';
  }
  return p;
}

size_t arena_bytes(const struct arena *a) { return a->bytes; }
