/* Where jansson's nodes live while json_parse builds a tree.
 *
 * A batch of 100 stream records is about 6,500 jansson nodes (objects,
 * their hash tables, keys, strings), each one malloc'ed and later freed:
 * malloc and free were a quarter of the instructions of such a POST on
 * the embedded store (callgrind, docs/BENCHMARKS.md). Inside a pooled
 * section a node is instead cut from a chunk of one reserved address range
 * that only this thread fills, from one section to the next (small trees
 * share a chunk); a chunk goes back to the pool once the thread has moved
 * on from it and its last node is freed, on whatever thread that happens.
 *
 * Contract: installed once (json_pool_install replaces jansson's allocator
 * for the whole process). Outside a pooled section, and for what a section
 * cannot place, jansson allocates with malloc exactly as before, so
 * json_dumps' text is still freed with free(). A tree built in a section
 * keeps its chunks alive until every node in them is freed: parse, use and
 * free; copy (json_deep_copy, outside a section) what must live long. */
#ifndef TS_COMMON_JSON_POOL_H
#define TS_COMMON_JSON_POOL_H

#include <stddef.h>

/* Reserves the range and hands jansson the pool's allocator. Idempotent
 * and thread-safe; if the range cannot be reserved, jansson keeps malloc. */
void json_pool_install(void);

/* Brackets one tree's construction on the calling thread. Sections do not
 * nest. */
void json_pool_begin(void);
void json_pool_end(void);

/* The calling thread lets go of its chunk now rather than when it exits
 * (it will not parse again for a while). */
void json_pool_thread_done(void);

#endif /* TS_COMMON_JSON_POOL_H */
