/* `tourney-stats healthcheck`: one GET /healthz with libcurl. */
#include "healthcheck.h"

#include <curl/curl.h>
#include <stdio.h>
#include <string.h>

#include "../common/bounds.h"

/* The body is not needed: the status says it all. */
static size_t discard(char *ptr, size_t size, size_t n, void *user) {
  (void)ptr;
  (void)user;
  return size * n;
}

/* The address to ask: a wildcard bind listens on loopback too. */
static const char *probe_host(const char *bind, char *buf, size_t cap) {
  if (!bind || !*bind || strcmp(bind, "0.0.0.0") == 0)
    return "127.0.0.1";
  if (strcmp(bind, "::") == 0)
    return "[::1]";
  if (strchr(bind, ':')) { /* an IPv6 literal goes in brackets */
    int n = snprintf(buf, cap, "[%s]", bind);
    return n > 0 && (size_t)n < cap ? buf : NULL;
  }
  return bind;
}

enum ts_status healthcheck_probe(const struct config *cfg, FILE *err) {
  enum ts_status st = TS_ERR_UNAVAILABLE;
  char hostbuf[128], url[192];
  const char *host = probe_host(cfg->bind, hostbuf, sizeof hostbuf);
  CURL *curl = NULL;
  if (cfg->port == 0) {
    fprintf(err, "healthcheck: TS_PORT is 0 (a free port): say which port\n");
    goto out;
  }
  int n = host ? snprintf(url, sizeof url, "http://%s:%u/healthz", host,
                          (unsigned)cfg->port)
               : -1;
  if (n < 0 || (size_t)n >= sizeof url) {
    fprintf(err, "healthcheck: bind address too long\n");
    goto out;
  }
  if (!(curl = curl_easy_init())) {
    fprintf(err, "healthcheck: out of memory\n");
    goto out;
  }
  curl_easy_setopt(curl, CURLOPT_URL, url);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)TS_HEALTHCHECK_TIMEOUT_MS);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, discard);
  CURLcode rc = curl_easy_perform(curl);
  long status = 0;
  if (rc != CURLE_OK) {
    fprintf(err, "healthcheck: %s: %s\n", url, curl_easy_strerror(rc));
    goto out;
  }
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  if (status != 200) {
    fprintf(err, "healthcheck: %s answered %ld\n", url, status);
    goto out;
  }
  st = TS_OK;
out:
  curl_easy_cleanup(curl);
  return st;
}
