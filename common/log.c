#include "log.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bounds.h"

/* Where lines go: stdout for the server, stderr for commands whose stdout
 * is a report (set before any thread starts). */
static int log_fd = STDOUT_FILENO;

void log_set_fd(int fd) { log_fd = fd; }

static enum log_level min_level = LOG_INFO;
static const char *const level_names[] = {"debug", "info", "warn", "error"};

void log_set_level(const char *name) {
  for (int i = 0; i < 4; i++)
    if (name && strcmp(name, level_names[i]) == 0)
      min_level = (enum log_level)i;
}

bool log_enabled(enum log_level level) { return level >= min_level; }

static void timestamp(char buf[32]) {
  struct timespec ts;
  struct tm tm;
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  size_t n = strftime(buf, 32, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(buf + n, 32 - n, ".%03ldZ", ts.tv_nsec / 1000000L);
}

static _Thread_local const char *request_id;

void log_set_request_id(const char *id) { request_id = id; }

void log_event(enum log_level level, const char *msg, const char *fmt, ...) {
  if (!log_enabled(level))
    return;
  char ts[32];
  timestamp(ts);
  json_t *line = json_pack("{s:s, s:s, s:s}", "ts", ts, "level",
                           level_names[level], "msg", msg ? msg : "");
  if (!line)
    return;
  if (request_id)
    json_object_set_new(line, "request_id", json_string(request_id));
  if (fmt) {
    va_list ap;
    va_start(ap, fmt);
    json_error_t jerr;
    json_t *fields = json_vpack_ex(&jerr, 0, fmt, ap);
    va_end(ap);
    if (json_is_object(fields))
      json_object_update(line, fields);
    else
      json_object_set_new(line, "log_error", json_string(jerr.text));
    json_decref(fields);
  }
  char *text = json_dumps(line, JSON_COMPACT | JSON_ENSURE_ASCII);
  json_decref(line);
  if (!text)
    return;
  size_t len = strlen(text);
  if (len > TS_MAX_LOG_LINE_BYTES - 2)
    len = TS_MAX_LOG_LINE_BYTES - 2; /* bounded; a cut line is still a line */
  text[len] = '\n';
  /* one write() per line, so lines from threads never interleave */
  ssize_t off = 0;
  while ((size_t)off < len + 1) {
    ssize_t w = write(log_fd, text + off, len + 1 - (size_t)off);
    if (w <= 0)
      break;
    off += w;
  }
  free(text);
}
