/* Structured logs: one JSON object per line on stdout, e.g.
 *   {"ts":"2026-11-27T09:17:02.123Z","level":"info","msg":"listening","port":8080}
 * Safe from any thread; a line is written with one write. */
#ifndef TS_COMMON_LOG_H
#define TS_COMMON_LOG_H

#include <stdbool.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

/* Sets the lowest level written ("debug".."error"); unknown keeps info. */
void log_set_level(const char *name);
bool log_enabled(enum log_level level);
/* Sends every line to fd instead of stdout; call before threads start. */
void log_set_fd(int fd);

/* Writes one line: msg plus the fields built by jansson's json_pack `fmt`
 * (an object format such as "{s:s, s:i}", or NULL for no fields). A field
 * that cannot be packed is replaced by "log_error". */
void log_event(enum log_level level, const char *msg, const char *fmt, ...);

/* The request this thread is serving: while set, every line the thread
 * writes carries it as "request_id", whichever layer writes it. The text
 * is borrowed until log_set_request_id(NULL). */
void log_set_request_id(const char *id);

#endif /* TS_COMMON_LOG_H */
