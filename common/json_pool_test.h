/* A narrow seam for unit tests: lets a test see where the pool placed a
 * node and run it out of chunks. Not for production callers. */
#ifndef TS_COMMON_JSON_POOL_TEST_H
#define TS_COMMON_JSON_POOL_TEST_H

#include <stdbool.h>
#include <stddef.h>

/* Whether the pool placed p. */
bool json_pool_test_owns(const void *p);

/* Chunks that hold nodes or are being filled. */
size_t json_pool_test_chunks_out(void);

/* At most `chunks` chunks out at once from now on, as if the range ended
 * there; SIZE_MAX lifts the cap. */
void json_pool_test_cap(size_t chunks);

#endif /* TS_COMMON_JSON_POOL_TEST_H */
