#include "status.h"

const char *ts_status_name(enum ts_status st) {
  switch (st) {
  case TS_OK: return "ok";
  case TS_ERR_NOMEM: return "out_of_memory";
  case TS_ERR_INVALID: return "invalid";
  case TS_ERR_NOT_FOUND: return "not_found";
  case TS_ERR_TOO_LARGE: return "too_large";
  case TS_ERR_RANGE: return "out_of_range";
  case TS_ERR_RETRY: return "retry";
  case TS_ERR_UNAVAILABLE: return "unavailable";
  case TS_ERR_IO: return "io_error";
  }
  return "unknown";
}
