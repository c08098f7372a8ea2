#include "router.h"

#include <stdlib.h>
#include <string.h>

#include "urlcode.h"

/* The one route table of the service. */
static const struct route routes[] = {
    {"POST", "/v1/stream-records", handle_stream_records,
     ROUTE_JSON_BODY | ROUTE_JSON_DOC | ROUTE_INGEST_AUTH | ROUTE_OFFLOAD |
         ROUTE_DEFER | ROUTE_EXPECT_WRITE,
     "ingest"},
    {"GET", "/v1/players/{}/stats", handle_player_stats, 0, "player_stats"},
    {"GET", "/v1/players", handle_players_list, 0, "players_list"},
    {"GET", "/v1/leaderboard", handle_leaderboard, 0, "leaderboard"},
    {"GET", "/v1/dead-letters", handle_dead_letters_list, ROUTE_INGEST_AUTH,
     "dead_letters_list"},
    /* Writes to the store like ingestion: on the ingest workers. */
    {"POST", "/v1/dead-letters/replay", handle_dead_letters_replay,
     ROUTE_JSON_BODY | ROUTE_EMPTY_BODY_OK | ROUTE_INGEST_AUTH | ROUTE_OFFLOAD,
     "dead_letters_replay"},
    {"GET", "/", handle_dashboard, 0, "dashboard"},
    {"GET", "/openapi.yaml", handle_openapi, 0, "openapi"},
    {"GET", "/metrics", handle_metrics, 0, "metrics"},
    {"GET", "/healthz", handle_healthz, 0, "healthz"},
    {"GET", "/readyz", handle_readyz, 0, "readyz"},
};
#define N_ROUTES (sizeof routes / sizeof routes[0])

static bool method_matches(const char *route_method, const char *method) {
  if (strcmp(route_method, method) == 0)
    return true;
  return strcmp(route_method, "GET") == 0 && strcmp(method, "HEAD") == 0;
}

/* Compares a path to a pattern segment by segment. Captures are recorded
 * as (start, length) in the raw path. */
static bool path_matches(const char *pattern, const char *path,
                         const char *cap_start[REQUEST_MAX_PARAMS],
                         size_t cap_len[REQUEST_MAX_PARAMS], size_t *n_caps) {
  const char *p = pattern, *s = path;
  *n_caps = 0;
  while (*p && *s) {
    if (p[0] == '{' && p[1] == '}') {
      const char *end = strchr(s, '/');
      size_t len = end ? (size_t)(end - s) : strlen(s);
      if (len == 0 || *n_caps == REQUEST_MAX_PARAMS)
        return false;
      cap_start[*n_caps] = s;
      cap_len[(*n_caps)++] = len;
      s += len;
      p += 2;
      continue;
    }
    if (*p != *s)
      return false;
    p++, s++;
  }
  return *p == '\0' && *s == '\0';
}

enum router_result router_match(const char *method, const char *path,
                                const struct route **route,
                                char *params[REQUEST_MAX_PARAMS],
                                size_t *n_params, char allow[64]) {
  const char *cap_start[REQUEST_MAX_PARAMS];
  size_t cap_len[REQUEST_MAX_PARAMS], n_caps = 0;
  bool path_known = false;
  allow[0] = '\0';
  *n_params = 0;
  for (size_t i = 0; i < N_ROUTES; i++) {
    if (!path_matches(routes[i].pattern, path, cap_start, cap_len, &n_caps))
      continue;
    if (!method_matches(routes[i].method, method)) {
      if (path_known)
        strncat(allow, ", ", 63 - strlen(allow));
      strncat(allow, routes[i].method, 63 - strlen(allow));
      if (strcmp(routes[i].method, "GET") == 0)
        strncat(allow, ", HEAD", 63 - strlen(allow));
      path_known = true;
      continue;
    }
    for (size_t k = 0; k < n_caps; k++) {
      if (url_decode(cap_start[k], cap_len[k], false, &params[k]) != TS_OK) {
        for (size_t j = 0; j < k; j++) {
          free(params[j]);
          params[j] = NULL;
        }
        return ROUTER_BAD_PARAM;
      }
    }
    *n_params = n_caps;
    *route = &routes[i];
    return ROUTER_MATCH;
  }
  return path_known ? ROUTER_METHOD_NOT_ALLOWED : ROUTER_NOT_FOUND;
}

size_t router_route_count(void) { return N_ROUTES; }

const char *router_route_name(size_t index) {
  return index < N_ROUTES ? routes[index].name : NULL;
}

int router_route_index(const struct route *route) {
  return route ? (int)(route - routes) : -1;
}
