/* Fuzzes server/router: router_match on an arbitrary method and path.
 * Input: method, NUL, path (up to the next NUL).
 *
 * Invariants: captures are freshly allocated, valid UTF-8, one per "{}" of
 * the matched pattern, and nothing is left allocated on the other results;
 * `allow` stays a NUL-terminated string inside its 64 bytes, is empty
 * exactly when the path is unknown, and never lists the method that was
 * refused; HEAD is routed like GET; matching is deterministic. */
#include <stdlib.h>
#include <string.h>

#include "input.h"
#include "server/router.h"
#include "server/urlcode.h"

struct outcome {
  enum router_result result;
  const struct route *route;
  char *params[REQUEST_MAX_PARAMS];
  size_t n_params;
  char allow[64];
};

static void free_params(struct outcome *o) {
  for (size_t i = 0; i < REQUEST_MAX_PARAMS; i++) {
    free(o->params[i]);
    o->params[i] = NULL;
  }
}

static size_t count_captures(const char *pattern) {
  size_t n = 0;
  for (const char *p = strstr(pattern, "{}"); p; p = strstr(p + 2, "{}"))
    n++;
  return n;
}

/* Whether the comma-separated list holds word. */
static bool list_has(const char *list, const char *word) {
  size_t wl = strlen(word);
  for (const char *p = list; *p;) {
    while (*p == ' ' || *p == ',')
      p++;
    size_t n = strcspn(p, ",");
    if (n == wl && memcmp(p, word, wl) == 0)
      return true;
    p += n;
  }
  return false;
}

static void match(const char *method, const char *path, struct outcome *o) {
  memset(o, 0, sizeof *o);
  memset(o->allow, 'X', sizeof o->allow);
  o->n_params = 99;
  o->result =
      router_match(method, path, &o->route, o->params, &o->n_params, o->allow);
  FUZZ_CHECK(memchr(o->allow, '\0', sizeof o->allow),
             "allow is not NUL-terminated within 64 bytes");
  switch (o->result) {
  case ROUTER_MATCH:
    FUZZ_CHECK(o->route && o->route->handler && o->route->pattern,
               "a match without a route");
    FUZZ_CHECK(strcmp(o->route->method, method) == 0 ||
                   (strcmp(o->route->method, "GET") == 0 &&
                    strcmp(method, "HEAD") == 0),
               "route for %s matched method %s", o->route->method, method);
    FUZZ_CHECK(o->n_params == count_captures(o->route->pattern),
               "%zu captures for pattern %s", o->n_params, o->route->pattern);
    for (size_t i = 0; i < REQUEST_MAX_PARAMS; i++) {
      if (i >= o->n_params) {
        FUZZ_CHECK(o->params[i] == NULL, "param %zu set past n_params", i);
        continue;
      }
      FUZZ_CHECK(o->params[i] && *o->params[i], "capture %zu empty", i);
      FUZZ_CHECK(utf8_valid(o->params[i], strlen(o->params[i])),
                 "capture %zu is not valid UTF-8", i);
      FUZZ_CHECK(!strchr(o->params[i], '/') || strstr(path, "%2F") ||
                     strstr(path, "%2f"),
                 "capture %zu holds '/' that was not escaped", i);
    }
    break;
  case ROUTER_NOT_FOUND:
    FUZZ_CHECK(o->allow[0] == '\0', "unknown path but allow \"%s\"", o->allow);
    break;
  case ROUTER_METHOD_NOT_ALLOWED:
    FUZZ_CHECK(o->allow[0] != '\0', "method not allowed, allow empty");
    FUZZ_CHECK(!list_has(o->allow, method),
               "%s refused but listed in Allow: %s", method, o->allow);
    break;
  case ROUTER_BAD_PARAM: break;
  default: FUZZ_CHECK(false, "router_match returned %d", (int)o->result);
  }
  if (o->result != ROUTER_MATCH)
    for (size_t i = 0; i < REQUEST_MAX_PARAMS; i++)
      FUZZ_CHECK(o->params[i] == NULL, "param %zu left set on result %d", i,
                 (int)o->result);
}

static bool same_outcome(const struct outcome *a, const struct outcome *b) {
  if (a->result != b->result || strcmp(a->allow, b->allow) != 0)
    return false;
  if (a->result != ROUTER_MATCH)
    return true;
  if (a->route != b->route || a->n_params != b->n_params)
    return false;
  for (size_t i = 0; i < a->n_params; i++)
    if (strcmp(a->params[i], b->params[i]) != 0)
      return false;
  return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct input in = {data, size};
  char *method = input_take_cstr(&in, NULL);
  char *path = input_take_cstr(&in, NULL);
  struct outcome first, again;
  match(method, path, &first);
  match(method, path, &again);
  FUZZ_CHECK(same_outcome(&first, &again), "router_match is not deterministic");
  free_params(&again);
  if (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0) {
    struct outcome other;
    match(strcmp(method, "GET") == 0 ? "HEAD" : "GET", path, &other);
    /* Allow lists the methods of the path, whichever of the two was used. */
    FUZZ_CHECK(first.result == other.result && first.route == other.route,
               "HEAD %s is routed unlike GET", path);
    free_params(&other);
  }
  free_params(&first);
  free(method);
  free(path);
  return 0;
}
