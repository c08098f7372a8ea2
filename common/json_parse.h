/* A JSON text (RFC 8259) in memory -> a jansson tree, accepting and
 * rejecting exactly what json_loadb(text, len, JSON_DECODE_ANY) does and
 * building an equal tree (fuzz/fuzz_json.c checks both against jansson).
 *
 * Why not json_loadb: jansson reads its input through a character stream
 * that decodes UTF-8 byte by byte, which made parsing nearly half of the
 * CPU time of a 100-record batch (callgrind, docs/BENCHMARKS.md). This
 * parser scans the buffer directly and hands jansson finished keys and
 * strings; the tree is still jansson's, so nothing downstream changes.
 *
 * jansson's rules kept: any value at the top level; only JSON whitespace;
 * strings valid UTF-8 without control characters, escapes with surrogate
 * pairs, no \u0000; numbers by the JSON grammar, an integer when it has no
 * fraction or exponent (out of long long range: an error), else a double
 * (overflow: an error); duplicate keys: the last wins; nesting deeper than
 * TS_JSON_MAX_DEPTH (jansson's 2048): an error. One difference, on
 * purpose: a NUL byte is refused wherever it is (it is not JSON
 * whitespace); jansson's reader skips one that directly follows a number
 * or a literal ("[1\0]" passes there), an artefact no client relies on.
 *
 * It is common/jdoc.h's parser and jdoc_to_json: a reader that walks a
 * document once needs no jansson tree at all. The tree's nodes come from
 * common/json_pool.h: free it when done with it, and copy what must
 * outlive the request. */
#ifndef TS_COMMON_JSON_PARSE_H
#define TS_COMMON_JSON_PARSE_H

#include <jansson.h>
#include <stddef.h>

#include "jdoc.h" /* struct json_parse_error, TS_JSON_MAX_DEPTH */
#include "status.h"

/* *out gets a new tree (the caller owns it) and TS_OK; TS_ERR_INVALID with
 * *err filled for text that is not one JSON value; TS_ERR_NOMEM. */
enum ts_status json_parse(const char *text, size_t len, json_t **out,
                          struct json_parse_error *err) TS_WARN_UNUSED;

#endif /* TS_COMMON_JSON_PARSE_H */
