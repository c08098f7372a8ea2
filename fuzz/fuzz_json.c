/* Fuzzes common/json_parse against jansson: for any bytes, json_parse
 * accepts exactly when json_loadb(JSON_DECODE_ANY) does, and then builds an
 * equal tree; a refusal names a position inside (or just past) the text.
 * The one intended difference: text with a NUL byte is always refused
 * (jansson skips one after a number or literal). */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "common/json_parse.h"
#include "input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *text = (const char *)data;
  json_error_t jerr;
  json_t *ref = json_loadb(text, size, JSON_DECODE_ANY, &jerr);
  json_t *got = NULL;
  struct json_parse_error err;
  enum ts_status st = json_parse(text, size, &got, &err);
  FUZZ_CHECK(st == TS_OK || st == TS_ERR_INVALID, "status %s",
             ts_status_name(st));
  if (memchr(data, 0, size)) {
    FUZZ_CHECK(st == TS_ERR_INVALID && !got, "a NUL byte was accepted");
    json_decref(ref);
    return 0;
  }
  FUZZ_CHECK((st == TS_OK) == (ref != NULL), "json_parse %s, jansson %s (%s)",
             ts_status_name(st), ref ? "accepts" : "refuses",
             ref ? "" : jerr.text);
  if (ref)
    FUZZ_CHECK(json_equal(ref, got), "the trees differ");
  else
    FUZZ_CHECK(got == NULL && err.line >= 1 && err.column >= 1 &&
                   (size_t)err.line <= size + 1 &&
                   (size_t)err.column <= size + 1,
               "bad error position %d:%d", err.line, err.column);
  json_decref(ref);
  json_decref(got);
  return 0;
}
