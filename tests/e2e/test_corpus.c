/* Replays the malformed-request corpus, tests/requests/invalid/<case>/:
 *
 *   request   first line "METHOD TARGET", then "Name: value" header lines,
 *             an empty line, then the body (bytes as they are). Without an
 *             empty line there is no body. Without a Content-Type line none
 *             is sent.
 *   body      optional: the body as a file (binary), replaces the above
 *   generate  optional: the body built from directives, one per line:
 *               text <bytes to the end of the line>
 *               repeat <count> <bytes to the end of the line>
 *             ('#' starts a comment line)
 *   expected  "STATUS CODE" (more such lines: accepted alternatives, for
 *             points the contract leaves open), then optional lines
 *             "header NAME" (must be present) or
 *             "header NAME contains TEXT".
 *
 * For every case: the answer is that problem+json, the server is still
 * alive, and the stored stats are exactly as before. */
#include <CUnit/CUnit.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "harness.h"
#include "records.h"
#include "suites.h"
#include "tests/unit/unit.h"

/* The corpus must not silently shrink to nothing. */
#define MIN_CASES 20
#define MAX_ALTERNATIVES 4
#define MAX_HEADER_CHECKS 4
#define MAX_GENERATED_BYTES (64u * 1024u * 1024u)

static struct e2e_server *srv;
static char *data_dir;

static int up(void) {
  if (e2e_dir_new(&data_dir) != TS_OK)
    return CUE_SINIT_FAILED;
  struct e2e_server_opts opt = {.dir = data_dir};
  return e2e_server_start(&opt, &srv) == TS_OK ? 0 : CUE_SINIT_FAILED;
}

static int down(void) {
  int rc = e2e_suite_server_down(&srv);
  if (rc == 0 && CU_get_number_of_failures() == 0)
    e2e_dir_remove(data_dir);
  else
    fprintf(stderr, "  (corpus server data kept in %s)\n", data_dir);
  free(data_dir);
  data_dir = NULL;
  return rc;
}

struct corpus_case {
  char name[256];
  char *method, *target;
  char **headers; /* NULL-terminated */
  bool has_content_type;
  char *body; /* NULL: none */
  size_t body_len;
  struct {
    long status;
    char code[64];
  } alt[MAX_ALTERNATIVES];
  size_t n_alt;
  struct {
    char name[64];
    char contains[128]; /* empty: presence only */
  } hdr[MAX_HEADER_CHECKS];
  size_t n_hdr;
};

static void case_clear(struct corpus_case *c) {
  free(c->method);
  free(c->target);
  for (size_t i = 0; c->headers && c->headers[i]; i++)
    free(c->headers[i]);
  free(c->headers);
  free(c->body);
  memset(c, 0, sizeof *c);
}

static bool append(char **buf, size_t *len, size_t *cap, const char *p,
                   size_t n) {
  if (*len + n + 1 > MAX_GENERATED_BYTES)
    return false;
  if (*len + n + 1 > *cap) {
    size_t ncap = *cap ? *cap : 4096;
    while (ncap < *len + n + 1)
      ncap *= 2;
    char *nb = realloc(*buf, ncap);
    if (!nb)
      return false;
    *buf = nb;
    *cap = ncap;
  }
  memcpy(*buf + *len, p, n);
  *len += n;
  (*buf)[*len] = '\0';
  return true;
}

/* Builds a body from a `generate` file. */
static bool generate_body(const char *text, char **out, size_t *out_len) {
  char *buf = NULL;
  size_t len = 0, cap = 0;
  const char *p = text;
  bool ok = append(&buf, &len, &cap, "", 0);
  while (ok && *p) {
    const char *eol = strchr(p, '\n');
    size_t llen = eol ? (size_t)(eol - p) : strlen(p);
    if (llen > 0 && p[llen - 1] == '\r')
      llen--;
    if (llen == 0 || p[0] == '#') {
      /* blank or comment */
    } else if (llen >= 5 && strncmp(p, "text ", 5) == 0) {
      ok = append(&buf, &len, &cap, p + 5, llen - 5);
    } else if (llen > 7 && strncmp(p, "repeat ", 7) == 0) {
      char *end = NULL;
      unsigned long count = strtoul(p + 7, &end, 10);
      ok = end && *end == ' ' && end < p + llen && count <= 100000000ul;
      size_t plen = ok ? (size_t)(p + llen - (end + 1)) : 0;
      for (unsigned long i = 0; ok && i < count; i++)
        ok = append(&buf, &len, &cap, end + 1, plen);
    } else {
      ok = false;
    }
    p = eol ? eol + 1 : p + llen;
  }
  if (!ok) {
    free(buf);
    return false;
  }
  *out = buf;
  *out_len = len;
  return true;
}

static bool parse_expected(struct corpus_case *c, const char *text) {
  const char *p = text;
  while (*p) {
    const char *eol = strchr(p, '\n');
    size_t llen = eol ? (size_t)(eol - p) : strlen(p);
    char line[512];
    if (llen >= sizeof line)
      return false;
    memcpy(line, p, llen);
    line[llen] = '\0';
    if (llen && line[llen - 1] == '\r')
      line[--llen] = '\0';
    p = eol ? eol + 1 : p + llen;
    if (llen == 0 || line[0] == '#')
      continue;
    if (strncmp(line, "header ", 7) == 0) {
      if (c->n_hdr == MAX_HEADER_CHECKS)
        return false;
      char *name = line + 7, *sp = strchr(name, ' ');
      const char *contains = "";
      if (sp) {
        *sp = '\0';
        if (strncmp(sp + 1, "contains ", 9) != 0)
          return false;
        contains = sp + 10;
      }
      if (snprintf(c->hdr[c->n_hdr].name, sizeof c->hdr[0].name, "%s", name) >=
              (int)sizeof c->hdr[0].name ||
          snprintf(c->hdr[c->n_hdr].contains, sizeof c->hdr[0].contains, "%s",
                   contains) >= (int)sizeof c->hdr[0].contains)
        return false;
      c->n_hdr++;
      continue;
    }
    if (c->n_alt == MAX_ALTERNATIVES)
      return false;
    char *end = NULL;
    long status = strtol(line, &end, 10);
    if (!end || *end != ' ' || status < 100 || status > 599)
      return false;
    c->alt[c->n_alt].status = status;
    snprintf(c->alt[c->n_alt].code, sizeof c->alt[0].code, "%s", end + 1);
    c->n_alt++;
  }
  return c->n_alt > 0;
}

static bool parse_request(struct corpus_case *c, const char *text, size_t len) {
  const char *p = text, *end = text + len;
  size_t n_hdr = 0;
  c->headers = calloc(64, sizeof *c->headers);
  if (!c->headers)
    return false;
  /* request line */
  const char *eol = memchr(p, '\n', (size_t)(end - p));
  if (!eol)
    eol = end;
  const char *sp = memchr(p, ' ', (size_t)(eol - p));
  if (!sp)
    return false;
  size_t tlen = (size_t)(eol - sp - 1);
  if (tlen && sp[tlen] == '\r')
    tlen--;
  c->method = strndup(p, (size_t)(sp - p));
  c->target = strndup(sp + 1, tlen);
  p = eol < end ? eol + 1 : end;
  /* headers up to an empty line */
  bool blank = false;
  while (p < end) {
    eol = memchr(p, '\n', (size_t)(end - p));
    if (!eol)
      eol = end;
    size_t llen = (size_t)(eol - p);
    if (llen && p[llen - 1] == '\r')
      llen--;
    const char *next = eol < end ? eol + 1 : end;
    if (llen == 0) {
      blank = true;
      p = next;
      break;
    }
    if (n_hdr + 1 >= 64)
      return false;
    c->headers[n_hdr] = strndup(p, llen);
    if (strncasecmp(p, "Content-Type:", 13) == 0)
      c->has_content_type = true;
    n_hdr++;
    p = next;
  }
  if (blank) {
    c->body = malloc((size_t)(end - p) + 1);
    if (!c->body)
      return false;
    memcpy(c->body, p, (size_t)(end - p));
    c->body[end - p] = '\0';
    c->body_len = (size_t)(end - p);
  }
  return c->method && c->target;
}

/* root/name/file into buf; false when it does not fit. */
static bool case_path(char *buf, size_t cap, const char *root, const char *name,
                      const char *file) {
  return snprintf(buf, cap, "%s/%s/%s", root, name, file) < (int)cap;
}

static bool load_case(const char *root, const char *name,
                      struct corpus_case *c) {
  char path[4096];
  char *text = NULL;
  size_t len = 0;
  bool ok = false;
  if (snprintf(c->name, sizeof c->name, "%s", name) >= (int)sizeof c->name)
    goto out;
  if (!case_path(path, sizeof path, root, name, "request"))
    goto out;
  if (e2e_read_file(path, &text, &len) != TS_OK || !parse_request(c, text, len))
    goto out;
  free(text);
  text = NULL;
  if (!case_path(path, sizeof path, root, name, "body"))
    goto out;
  if (e2e_read_file(path, &text, &len) == TS_OK) {
    free(c->body);
    c->body = text;
    c->body_len = len;
    text = NULL;
  }
  if (!case_path(path, sizeof path, root, name, "generate"))
    goto out;
  if (e2e_read_file(path, &text, &len) == TS_OK) {
    free(c->body);
    c->body = NULL;
    if (!generate_body(text, &c->body, &c->body_len))
      goto out;
  }
  free(text);
  text = NULL;
  if (!case_path(path, sizeof path, root, name, "expected"))
    goto out;
  if (e2e_read_file(path, &text, &len) != TS_OK || !parse_expected(c, text))
    goto out;
  /* A bodiless GET or DELETE sends no body at all. */
  if (c->body && c->body_len == 0 && strcmp(c->method, "POST") != 0 &&
      strcmp(c->method, "PUT") != 0 && strcmp(c->method, "PATCH") != 0) {
    free(c->body);
    c->body = NULL;
  }
  ok = true;
out:
  free(text);
  return ok;
}

/* Every player in the store, for "nothing changed". */
static json_t *snapshot(void) {
  size_t pages = 0;
  return e2e_list_all(srv, 1000, &pages);
}

static void seed_baseline(void) {
  char tag[64], p[128];
  json_t *recs = json_array();
  /* The corpus bodies name "corpus-victim"; give it history. */
  json_array_append_new(recs,
                        e2e_insert("corpus-victim", "7.5", WIN_BOOL_TRUE));
  json_array_append_new(recs, e2e_insert("corpus-victim", "2.5", WIN_ABSENT));
  for (int i = 0; i < 3; i++) {
    snprintf(tag, sizeof tag, "corpus-%d", i);
    json_array_append_new(
        recs, e2e_insert(e2e_name(p, sizeof p, tag), "1", WIN_N_ONE));
  }
  json_t *body = e2e_lambda(recs);
  struct e2e_reply r;
  struct e2e_summary sum;
  if (e2e_ingest(srv, "corpus baseline", body, &r, &sum))
    e2e_check_summary("corpus baseline", &sum, 5, 5, 0, 0, 0);
  e2e_reply_clear(&r);
  json_decref(body);
  json_decref(recs);
}

static int by_name(const struct dirent **a, const struct dirent **b) {
  return strcmp((*a)->d_name, (*b)->d_name);
}

/* Replays one case; when the stats changed, *baseline becomes the new
 * state so that the next cases are judged on their own. */
static void replay(const struct corpus_case *c, json_t **baseline) {
  const char **hdrs = (const char **)c->headers;
  struct e2e_request rq = {.method = c->method,
                           .target = c->target,
                           .headers = hdrs,
                           .body = c->body,
                           .body_len = c->body_len,
                           .no_content_type = !c->has_content_type,
                           .timeout_ms = 20000};
  struct e2e_reply r;
  (void)e2e_http(srv, &rq, &r);
  size_t match = 0;
  for (size_t i = 0; i < c->n_alt; i++) {
    const char *code = json_string_value(json_object_get(r.json, "code"));
    if (r.status == c->alt[i].status && code &&
        strcmp(code, c->alt[i].code) == 0)
      match = i;
  }
  e2e_check_problem(c->name, &r, c->alt[match].status, c->alt[match].code);
  for (size_t i = 0; i < c->n_hdr; i++) {
    char value[1024];
    bool has = e2e_reply_header(&r, c->hdr[i].name, value, sizeof value);
    TS_CHECK_CASE(has && strstr(value, c->hdr[i].contains), c->name,
                  "header %s is %s, expected it to contain \"%s\"",
                  c->hdr[i].name, has ? value : "(missing)",
                  c->hdr[i].contains);
  }
  e2e_reply_clear(&r);

  /* Still alive? If not, say so and bring it back for the next cases. */
  struct e2e_reply h;
  enum ts_status st = e2e_get(srv, "/healthz", &h);
  bool alive = st == TS_OK && h.status == 200;
  e2e_reply_clear(&h);
  TS_CHECK_CASE(alive, c->name,
                "the server did not answer /healthz afterwards");
  if (!alive) {
    int code = -1;
    e2e_server_stop(srv, &code);
    fprintf(stderr, "    server exit status %d; restarting it\n", code);
    srv = NULL;
    struct e2e_server_opts opt = {.dir = data_dir};
    CU_ASSERT_FATAL(e2e_server_start(&opt, &srv) == TS_OK);
  }
  json_t *now = snapshot();
  bool same = now && json_equal(now, *baseline);
  TS_CHECK_CASE(same, c->name, "the stored stats changed");
  if (!same && now) {
    json_decref(*baseline);
    *baseline = now;
  } else {
    json_decref(now);
  }
}

static void test_malformed_requests_get_problem_json_and_change_nothing(void) {
  const char *root_dir = e2e_requests_dir();
  CU_ASSERT_FATAL(root_dir != NULL);
  char root[4096];
  snprintf(root, sizeof root, "%s/invalid", root_dir);
  seed_baseline();
  json_t *baseline = snapshot();
  CU_ASSERT_FATAL(baseline != NULL);
  struct dirent **list = NULL;
  int n = scandir(root, &list, NULL, by_name);
  TS_CHECK_CASE(n >= MIN_CASES, root, "%d entries, expected at least %d", n,
                MIN_CASES);
  int replayed = 0;
  for (int i = 0; i < n; i++) {
    const char *name = list[i]->d_name;
    /* Every folder is a case; files here (a README) are not. */
    if (name[0] != '.' && list[i]->d_type == DT_DIR) {
      struct corpus_case c = {0};
      bool ok = load_case(root, name, &c);
      TS_CHECK_CASE(ok, name, "cannot read request/expected of the case");
      if (ok) {
        replay(&c, &baseline);
        replayed++;
      }
      case_clear(&c);
    }
    free(list[i]);
  }
  free(list);
  TS_CHECK_CASE(replayed >= MIN_CASES, root, "replayed %d cases", replayed);
  json_decref(baseline);
}

void e2e_suite_corpus(void) {
  E2E_SUITE(
      "corpus", up, down,
      TS_TEST(test_malformed_requests_get_problem_json_and_change_nothing));
}
