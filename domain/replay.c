#include "replay.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../common/bounds.h"
#include "../common/jdoc.h"

#define NO_RECORD SIZE_MAX

/* Said of a dead letter whose stored text is not a record. */
static const char unreadable_reason[] =
    "the stored record is not a JSON object (cut for size, or not stored): "
    "it cannot be replayed";

struct replay {
  struct batch *b;
  size_t n;
  size_t *record; /* per dead letter: its record in b, or NO_RECORD */
};

enum ts_status replay_new(const char *const *records, size_t n,
                          const struct batch_options *opt,
                          struct replay **out) {
  *out = NULL;
  if (n > TS_MAX_RECORDS_PER_BATCH)
    return TS_ERR_TOO_LARGE;
  enum ts_status st = TS_ERR_NOMEM;
  json_t *array = json_array();
  struct replay *r = calloc(1, sizeof *r);
  if (!array || !r)
    goto out;
  r->n = n;
  r->record = calloc(n ? n : 1, sizeof *r->record);
  if (!r->record)
    goto out;
  for (size_t i = 0; i < n; i++) {
    r->record[i] = NO_RECORD;
    json_t *rec = records[i] ? json_loads(records[i], 0, NULL) : NULL;
    if (!json_is_object(rec)) {
      json_decref(rec);
      continue;
    }
    r->record[i] = json_array_size(array);
    if (json_array_append_new(array, rec) != 0)
      goto out;
  }
  st = TS_OK;
  /* Every element is an object, so the envelope is valid: only an
   * allocation can fail. */
  if (json_array_size(array) > 0) {
    struct jdoc *body;
    st = jdoc_from_json(array, &body);
    if (st == TS_OK) /* the batch takes body */
      st = batch_new_with(body, opt, &r->b, NULL);
  }
  if (st != TS_OK)
    goto out;
  *out = r;
  r = NULL;
out:
  replay_free(r);
  json_decref(array);
  return st;
}

void replay_free(struct replay *r) {
  if (!r)
    return;
  batch_free(r->b);
  free(r->record);
  free(r);
}

struct batch *replay_batch(struct replay *r) {
  return r->b;
}

/* The position of record `rec` among the batch's rejected records (which
 * are kept in record order). */
static size_t rejected_index(const struct batch *b, size_t rec) {
  size_t k = 0;
  for (size_t j = 0; j < rec; j++)
    k += batch_record_outcome(b, j) == RECORD_REJECTED;
  return k;
}

bool replay_result(const struct replay *r, size_t i, const char *old_id,
                   enum replay_verdict *verdict, char new_id[65],
                   const char **reason) {
  *reason = NULL;
  new_id[0] = '\0';
  if (i >= r->n || r->record[i] == NO_RECORD) {
    *verdict = REPLAY_UNREADABLE;
    *reason = unreadable_reason;
    snprintf(new_id, 65, "%s", old_id);
    return false;
  }
  size_t rec = r->record[i];
  switch (batch_record_outcome(r->b, rec)) {
  case RECORD_APPLIED: *verdict = REPLAY_APPLIED; return true;
  case RECORD_DUPLICATE: *verdict = REPLAY_DUPLICATE; return true;
  case RECORD_SKIPPED: *verdict = REPLAY_SKIPPED; return true;
  case RECORD_REJECTED: break;
  }
  *verdict = REPLAY_REJECTED;
  size_t k = rejected_index(r->b, rec);
  const char *event_id, *item, *record;
  batch_rejected(r->b, k, &event_id, &item, reason, &record);
  batch_rejected_id(r->b, k, new_id);
  return strcmp(new_id, old_id) != 0;
}
