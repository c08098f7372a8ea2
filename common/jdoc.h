/* A JSON text (RFC 8259) parsed into a flat document: one array of nodes,
 * each value followed by its children, and one buffer of the decoded
 * strings. What it accepts and refuses is exactly what json_parse (and so
 * jansson's json_loadb with JSON_DECODE_ANY) does: json_parse is this
 * parser plus jdoc_to_json, and fuzz/fuzz_json.c checks it against
 * jansson.
 *
 * Why: building a jansson tree (a hash table per object, a node per
 * value, each allocated and later freed) was three quarters of the
 * parsing of a batch of stream records and a fifth of all the server's
 * instructions on the embedded store (callgrind, docs/BENCHMARKS.md
 * change 31). A reader that walks a record's members once needs no hash
 * tables: here a document is two allocations, and freeing it is two
 * frees.
 *
 * Values are named by a jdoc_ref (an index); JDOC_NONE is no value, and
 * every accessor takes it (a type of JDOC_ABSENT, no members). An
 * object's members are (key, value) pairs: the key a string node, its
 * value the next node. Duplicate keys are kept in the document; jdoc_get
 * and a reader that walks the members and keeps the last match both see
 * jansson's "the last wins". Strings are NUL-terminated; a string cannot
 * hold a NUL (\u0000 is refused, as jansson does). A document is
 * immutable and may be read from several threads at once. */
#ifndef TS_COMMON_JDOC_H
#define TS_COMMON_JDOC_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"

#define TS_JSON_MAX_DEPTH 2048u

/* Where and why a text was refused. */
struct json_parse_error {
  char text[80];
  int line;   /* 1-based */
  int column; /* 1-based, in bytes */
};

enum jdoc_type {
  JDOC_ABSENT = 0, /* JDOC_NONE */
  JDOC_NULL,
  JDOC_FALSE,
  JDOC_TRUE,
  JDOC_INTEGER,
  JDOC_REAL,
  JDOC_STRING,
  JDOC_ARRAY,
  JDOC_OBJECT,
};

typedef uint32_t jdoc_ref;
#define JDOC_NONE UINT32_MAX

struct jdoc;

/* *out gets a new document (the caller owns it) and TS_OK; TS_ERR_INVALID
 * with *err filled (err may be NULL) for text that is not one JSON value;
 * TS_ERR_NOMEM. The text is not kept. */
enum ts_status jdoc_parse(const char *text, size_t len, struct jdoc **out,
                          struct json_parse_error *err) TS_WARN_UNUSED;
void jdoc_free(struct jdoc *d);

/* The top-level value. The readers below take a NULL document as one
 * without values. */
jdoc_ref jdoc_root(const struct jdoc *d);

enum jdoc_type jdoc_type(const struct jdoc *d, jdoc_ref v);
/* A string's bytes (NUL-terminated) and length; NULL and 0 for any other
 * value. */
const char *jdoc_string(const struct jdoc *d, jdoc_ref v);
size_t jdoc_length(const struct jdoc *d, jdoc_ref v);
/* An integer's value (0 for any other value); a number's (integer or
 * real) as a double (0 for any other value). */
long long jdoc_integer(const struct jdoc *d, jdoc_ref v);
double jdoc_number(const struct jdoc *d, jdoc_ref v);
/* An array's elements or an object's members (duplicates counted); 0 for
 * any other value. */
size_t jdoc_count(const struct jdoc *d, jdoc_ref v);

/* Arrays: for (e = jdoc_first(d, a); e != JDOC_NONE; e = jdoc_next(d, a, e))
 * Objects: the same loop visits each member's key; its value is
 * jdoc_value(k). */
jdoc_ref jdoc_first(const struct jdoc *d, jdoc_ref container);
jdoc_ref jdoc_next(const struct jdoc *d, jdoc_ref container, jdoc_ref at);
jdoc_ref jdoc_value(jdoc_ref key);

/* The value of obj's last member named name, JDOC_NONE when there is none
 * or obj is not an object. */
jdoc_ref jdoc_get(const struct jdoc *d, jdoc_ref obj, const char *name);

/* A new jansson tree equal to what json_parse builds from the value's
 * text (duplicate keys: the last wins); NULL when out of memory. */
json_t *jdoc_to_json(const struct jdoc *d, jdoc_ref v);

/* A document of a jansson tree (its compact text, parsed): for callers
 * that build what a document reader takes. TS_ERR_INVALID when the tree
 * holds what a text cannot (a string with a NUL), TS_ERR_NOMEM. */
enum ts_status jdoc_from_json(const json_t *v,
                              struct jdoc **out) TS_WARN_UNUSED;

#endif /* TS_COMMON_JDOC_H */
