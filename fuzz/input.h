/* Shared by the fuzz targets: the libFuzzer entry points, a reader that
 * splits one fuzz input into fields, and a check that aborts (so libFuzzer
 * records the input as a crash) when an invariant is broken. */
#ifndef TS_FUZZ_INPUT_H
#define TS_FUZZ_INPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* libFuzzer's entry points (declared here for -Wmissing-prototypes). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* Reads an input front to back. Past the end every field is empty or 0, so
 * a target never needs to check for a short input. */
struct input {
  const uint8_t *p;
  size_t n;
};

/* The bytes up to the next NUL (which is consumed), or to the end, as a new
 * NUL-terminated string; *len (optional) is its length. Aborts on NOMEM. */
char *input_take_cstr(struct input *in, size_t *len);
/* Like input_take_cstr, but NULL (nothing consumed) at the end of input. */
char *input_take_cstr_or_null(struct input *in);
uint8_t input_take_u8(struct input *in);
uint32_t input_take_u32(struct input *in);
uint64_t input_take_u64(struct input *in);
/* The rest of the input (borrowed); the reader is then empty. */
const uint8_t *input_take_rest(struct input *in, size_t *len);
bool input_empty(const struct input *in);

/* FNV-1a of the input, for deterministic choices that should not cost the
 * fuzzer input bytes. */
uint64_t input_hash(const uint8_t *data, size_t size);

/* The flat document (common/jdoc.h) of a jansson tree, for batch_new
 * (which takes it): NULL when j is NULL or holds what text cannot. Aborts
 * on NOMEM. */
struct jdoc;
struct json_t;
struct jdoc *fuzz_doc_of(const struct json_t *j);

/* Prints "fuzz invariant broken: <text>" with the place and aborts. */
__attribute__((noreturn, format(printf, 3, 4))) void
fuzz_fail(const char *file, int line, const char *fmt, ...);

#define FUZZ_CHECK(cond, ...)                                                  \
  do {                                                                         \
    if (!(cond))                                                               \
      fuzz_fail(__FILE__, __LINE__, __VA_ARGS__);                              \
  } while (0)

#endif /* TS_FUZZ_INPUT_H */
