#include "json_pool.h"
#include "json_pool_test.h"

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "bounds.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
/* Under ASan every node is followed by a poisoned gap, and a chunk in the
 * pool's free list is poisoned whole, so that overflows and uses after the
 * chunk went back are still reported. */
#define REDZONE 16u
#define POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
/* LeakSanitizer does not see into the range, so each node also owns a
 * one-byte malloc'ed witness, kept in the 16 bytes before it and freed with
 * it: a tree nobody freed is still reported, with the stack that parsed
 * it. */
#define WITNESS 16u
static void witness_new(char *p) {
  UNPOISON(p - WITNESS, sizeof(void *));
  *(void **)(p - WITNESS) = malloc(1);
  POISON(p - WITNESS, sizeof(void *));
}
static void witness_free(char *p) {
  UNPOISON(p - WITNESS, sizeof(void *));
  free(*(void **)(p - WITNESS));
  POISON(p - WITNESS, sizeof(void *));
}
#else
#define REDZONE 0u
#define WITNESS 0u
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#define witness_new(p) ((void)(p))
#define witness_free(p) ((void)(p))
#endif

#define CHUNK ((uintptr_t)TS_JSON_POOL_CHUNK_BYTES)
#define ALIGN 16u
/* Added to a chunk's count while a thread still fills it, so that frees
 * before it is retired never bring the count to zero (a chunk holds at
 * most CHUNK / ALIGN nodes). */
#define FILLING ((int_fast64_t)1 << 40)

/* At the start of every chunk; nodes follow it. */
struct chunk {
  _Atomic int_fast64_t live; /* nodes not yet freed (+ FILLING) */
  size_t used;               /* bytes cut, header included */
  int_fast64_t cut;          /* nodes cut since it was taken */
  struct chunk *next_free;
};
#define HEADER ((sizeof(struct chunk) + ALIGN - 1) / ALIGN * ALIGN)

static struct {
  pthread_once_t once;
  uintptr_t base, end;  /* the range, both multiples of CHUNK */
  pthread_mutex_t lock; /* guards fresh and free_list */
  uintptr_t fresh;      /* first chunk never handed out */
  struct chunk *free_list;
  size_t out; /* chunks taken and not given back */
  size_t cap; /* at most this many out (json_pool_test_cap) */
} pool = {.once = PTHREAD_ONCE_INIT,
          .lock = PTHREAD_MUTEX_INITIALIZER,
          .cap = SIZE_MAX};

/* The chunk this thread cuts nodes from. It stays with the thread from
 * one section to the next, so that small trees share chunks, and is
 * retired when full, by json_pool_thread_done, or when the thread exits
 * (the key's destructor). */
static _Thread_local struct chunk *filling;
static _Thread_local bool in_section;
static pthread_key_t filling_key;

static bool owns(const void *p) {
  uintptr_t a = (uintptr_t)p;
  return a >= pool.base && a < pool.end;
}

bool json_pool_test_owns(const void *p) { return owns(p); }

size_t json_pool_test_chunks_out(void) {
  pthread_mutex_lock(&pool.lock);
  size_t n = pool.out;
  pthread_mutex_unlock(&pool.lock);
  return n;
}

void json_pool_test_cap(size_t chunks) {
  pthread_mutex_lock(&pool.lock);
  pool.cap = chunks;
  pthread_mutex_unlock(&pool.lock);
}

static struct chunk *take_chunk(void) {
  pthread_mutex_lock(&pool.lock);
  struct chunk *c = NULL;
  if (pool.out >= pool.cap) {
    /* as if the range were used up */
  } else if (pool.free_list) {
    c = pool.free_list;
    pool.free_list = c->next_free;
  } else if (pool.fresh < pool.end) {
    c = (struct chunk *)pool.fresh;
    pool.fresh += CHUNK;
  }
  if (c)
    pool.out++;
  pthread_mutex_unlock(&pool.lock);
  if (!c)
    return NULL; /* the range is in use: malloc */
  UNPOISON(c, HEADER);
  atomic_init(&c->live, FILLING);
  c->used = HEADER;
  c->cut = 0;
  c->next_free = NULL;
  return c;
}

static void give_back(struct chunk *c) {
  POISON((char *)c + HEADER, CHUNK - HEADER);
  pthread_mutex_lock(&pool.lock);
  c->next_free = pool.free_list;
  pool.free_list = c;
  pool.out--;
  pthread_mutex_unlock(&pool.lock);
}

/* The filling thread lets go: from now on the last free returns it. */
static void retire(struct chunk *c) {
  int_fast64_t delta = c->cut - FILLING;
  if (atomic_fetch_add(&c->live, delta) + delta == 0)
    give_back(c);
}

static void *pool_malloc(size_t n) {
  if (!in_section || n > TS_JSON_POOL_MAX_NODE)
    return malloc(n);
  size_t need = (WITNESS + n + REDZONE + ALIGN - 1) / ALIGN * ALIGN;
  if (!filling || filling->used + need > CHUNK) {
    if (filling)
      retire(filling);
    filling = take_chunk();
    (void)pthread_setspecific(filling_key, filling);
    if (!filling)
      return malloc(n);
  }
  char *p = (char *)filling + filling->used + WITNESS;
  filling->used += need;
  filling->cut++;
  UNPOISON(p, n);
  witness_new(p);
  return p;
}

static void pool_free(void *p) {
  if (!owns(p)) {
    free(p);
    return;
  }
  witness_free(p);
  struct chunk *c = (struct chunk *)((uintptr_t)p & ~(CHUNK - 1));
  if (atomic_fetch_sub(&c->live, 1) == 1)
    give_back(c);
}

static void thread_exits(void *c) { retire(c); }

static void install(void) {
  if (pthread_key_create(&filling_key, thread_exits) != 0)
    return;                                        /* jansson keeps malloc */
  size_t len = (size_t)TS_JSON_POOL_BYTES + CHUNK; /* room to align */
  void *m = mmap(NULL, len, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (m == MAP_FAILED)
    return; /* jansson keeps malloc */
  uintptr_t a = ((uintptr_t)m + CHUNK - 1) & ~(CHUNK - 1);
  pool.fresh = a;
  pool.end = a + TS_JSON_POOL_BYTES;
  POISON((void *)a, TS_JSON_POOL_BYTES);
  /* Ranges first: a node freed after the switch must be recognised. */
  pool.base = a;
  json_set_alloc_funcs(pool_malloc, pool_free);
}

void json_pool_install(void) { pthread_once(&pool.once, install); }

void json_pool_begin(void) { in_section = true; }

void json_pool_end(void) { in_section = false; }

void json_pool_thread_done(void) {
  if (filling) {
    retire(filling);
    filling = NULL;
    (void)pthread_setspecific(filling_key, NULL);
  }
}
