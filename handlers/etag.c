/* Strong ETags for GET responses and conditional requests (RFC 9110
 * §8.8.3, §13.1.2). The tag is a 64-bit FNV-1a hash of the body: a
 * validator for caches, not a security feature, so a fast hash is right. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../common/hash.h"
#include "../common/hex.h"
#include "handlers_util.h"

/* Does the If-None-Match list name `etag`? Weak comparison, as the RFC
 * requires for If-None-Match: a W/ prefix is ignored. */
static bool none_match_hits(const char *header, const char *etag) {
  size_t elen = strlen(etag);
  const char *p = header;
  while (*p) {
    while (*p == ' ' || *p == '\t' || *p == ',')
      p++;
    if (*p == '*')
      return true;
    if (p[0] == 'W' && p[1] == '/')
      p += 2;
    const char *end = p;
    if (*end == '"') {
      end = strchr(end + 1, '"');
      if (!end)
        return false;
      end++;
    } else {
      while (*end && *end != ',')
        end++;
    }
    if ((size_t)(end - p) == elen && memcmp(p, etag, elen) == 0)
      return true;
    p = end;
  }
  return false;
}

void handlers_set_etag(const struct request *req, struct reply *rep) {
  const char *data = rep->body ? rep->body : (const char *)rep->static_body;
  if (rep->status != 200 || !data)
    return;
  char tag[19];
  tag[0] = '"';
  hex_u64(hash_fnv1a(HASH_FNV1A_INIT, data, rep->len), tag + 1);
  tag[17] = '"';
  tag[18] = '\0';
  char *copy = strdup(tag);
  if (!copy)
    return; /* no ETag is still a correct answer */
  free(rep->etag);
  rep->etag = copy;
  const char *inm = request_header(req, "If-None-Match");
  if (inm && none_match_hits(inm, tag)) {
    rep->status = 304;
    free(rep->body);
    rep->body = NULL;
    rep->static_body = NULL;
    rep->len = 0;
  }
}
