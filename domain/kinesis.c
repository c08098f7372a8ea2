/* Kinesis reading rules (see kinesis.h). */
#include "kinesis.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Copies a JSON string of at most cap-1 bytes; false when v is not a
 * string, is empty while required, or is too long. */
static bool copy_str(const json_t *v, char *out, size_t cap, bool required) {
  out[0] = '\0';
  if (!v)
    return !required;
  const char *s = json_string_value(v);
  if (!s)
    return false;
  size_t len = json_string_length(v);
  if (len >= cap || strlen(s) != len || (required && len == 0))
    return false;
  memcpy(out, s, len + 1);
  return true;
}

static bool all_digits(const char *s) {
  if (!s || !*s)
    return false;
  for (const char *p = s; *p; p++)
    if (*p < '0' || *p > '9')
      return false;
  return true;
}

enum ts_status kinesis_shards_parse(const json_t *answer,
                                    struct kinesis_shard **shards, size_t *n,
                                    char *next, size_t cap) {
  const json_t *list = json_object_get(answer, "Shards");
  const json_t *tok = json_object_get(answer, "NextToken");
  next[0] = '\0';
  if (!json_is_object(answer) || (list && !json_is_array(list)) ||
      (tok && !json_is_null(tok) && !copy_str(tok, next, cap, false)))
    return TS_ERR_INVALID;
  size_t add = list ? json_array_size(list) : 0;
  if (add == 0)
    return TS_OK;
  if (add > TS_KINESIS_MAX_SHARDS || *n > TS_KINESIS_MAX_SHARDS - add)
    return TS_ERR_TOO_LARGE;
  struct kinesis_shard *grown = realloc(*shards, (*n + add) * sizeof *grown);
  if (!grown)
    return TS_ERR_NOMEM;
  *shards = grown;
  /* Counted in only once the whole page is read: a refused page adds
   * nothing. */
  size_t i;
  const json_t *sh;
  json_array_foreach(list, i, sh) {
    struct kinesis_shard *out = &grown[*n + i];
    if (!json_is_object(sh) ||
        !copy_str(json_object_get(sh, "ShardId"), out->id, sizeof out->id,
                  true) ||
        !copy_str(json_object_get(sh, "ParentShardId"), out->parent,
                  sizeof out->parent, false) ||
        !copy_str(json_object_get(sh, "AdjacentParentShardId"), out->adjacent,
                  sizeof out->adjacent, false))
      return TS_ERR_INVALID;
  }
  *n += add;
  return TS_OK;
}

bool kinesis_shard_readable(const struct kinesis_shard *shards,
                            const bool *finished, size_t n, size_t i) {
  if (i >= n || finished[i])
    return false;
  const char *parents[2] = {shards[i].parent, shards[i].adjacent};
  for (size_t k = 0; k < 2; k++) {
    if (!parents[k][0])
      continue;
    /* every listing of the parent (an id listed twice, or a shard naming
     * itself, is not read on the strength of another copy) */
    for (size_t j = 0; j < n; j++)
      if (!finished[j] && strcmp(shards[j].id, parents[k]) == 0)
        return false;
  }
  return true;
}

enum lease_state kinesis_lease_state(const struct shard_lease *l,
                                     const char *me, int64_t now_ms) {
  if (l->finished)
    return LEASE_FINISHED;
  if (!l->owner[0] || l->expires_ms <= now_ms)
    return LEASE_FREE;
  return strcmp(l->owner, me) == 0 ? LEASE_MINE : LEASE_HELD;
}

bool kinesis_lease_may_take(enum lease_state s, size_t held, size_t target) {
  return s == LEASE_MINE || (s == LEASE_FREE && held < target);
}

void kinesis_lease_take(const struct shard_lease *cur, const char *me,
                        int64_t now_ms, uint32_t lease_ms,
                        struct shard_lease *next) {
  *next = *cur;
  snprintf(next->owner, sizeof next->owner, "%s", me);
  next->expires_ms = now_ms + (int64_t)lease_ms;
  next->version = cur->version + 1;
}

void kinesis_lease_checkpoint(const struct shard_lease *cur, const char *seq,
                              bool end, int64_t now_ms, uint32_t lease_ms,
                              struct shard_lease *next) {
  *next = *cur;
  if (seq && *seq)
    snprintf(next->checkpoint, sizeof next->checkpoint, "%s", seq);
  next->expires_ms = now_ms + (int64_t)lease_ms;
  next->version = cur->version + 1;
  if (end) {
    next->finished = true;
    next->owner[0] = '\0';
    next->expires_ms = 0;
  }
}

void kinesis_lease_release(const struct shard_lease *cur,
                           struct shard_lease *next) {
  *next = *cur;
  next->owner[0] = '\0';
  next->expires_ms = 0;
  next->version = cur->version + 1;
}

bool kinesis_lease_same(const struct shard_lease *stored,
                        const struct shard_lease *written) {
  return stored->version == written->version &&
         stored->expires_ms == written->expires_ms &&
         stored->finished == written->finished &&
         strcmp(stored->owner, written->owner) == 0 &&
         strcmp(stored->checkpoint, written->checkpoint) == 0;
}

bool kinesis_lease_must_stop(int64_t written_ms, int64_t now_ms,
                             uint32_t lease_ms) {
  int64_t usable =
      (int64_t)lease_ms - (int64_t)(lease_ms / TS_KINESIS_MARGIN_DIVISOR);
  return now_ms - written_ms >= usable;
}

size_t kinesis_lease_target(size_t readable, size_t others) {
  size_t owners = others + 1;
  return (readable + owners - 1) / owners;
}

void kinesis_read_clear(struct kinesis_read *r) {
  if (!r)
    return;
  json_decref(r->envelope);
  free(r->next_iterator);
  *r = (struct kinesis_read){.millis_behind = -1};
}

bool kinesis_seq_less(const char *a, const char *b) {
  if (!all_digits(a) || !all_digits(b))
    return false;
  while (*a == '0' && a[1])
    a++;
  while (*b == '0' && b[1])
    b++;
  size_t la = strlen(a), lb = strlen(b);
  return la != lb ? la < lb : strcmp(a, b) < 0;
}

/* One Kinesis record as a Lambda Kinesis event record. */
static json_t *lambda_record(const json_t *rec, const char *shard,
                             const char *seq) {
  const json_t *data = json_object_get(rec, "Data");
  const json_t *key = json_object_get(rec, "PartitionKey");
  const json_t *at = json_object_get(rec, "ApproximateArrivalTimestamp");
  char event_id[TS_KINESIS_ID_BYTES + TS_KINESIS_SEQ_BYTES + 2];
  snprintf(event_id, sizeof event_id, "%s:%s", shard, seq);
  const char *pk = json_string_value(key);
  json_t *k =
      json_pack("{s:s, s:O, s:s, s:s}", "kinesisSchemaVersion", "1.0", "data",
                data, "sequenceNumber", seq, "partitionKey", pk ? pk : "");
  if (k && json_is_number(at) &&
      json_object_set(k, "approximateArrivalTimestamp", (json_t *)at) != 0) {
    json_decref(k);
    k = NULL;
  }
  if (!k)
    return NULL;
  return json_pack("{s:o, s:s, s:s, s:s, s:s}", "kinesis", k, "eventSource",
                   "aws:kinesis", "eventVersion", "1.0", "eventID", event_id,
                   "eventName", "aws:kinesis:record");
}

enum ts_status kinesis_read_parse(const json_t *answer, const char *shard,
                                  struct kinesis_read *out) {
  enum ts_status st = TS_ERR_INVALID;
  json_t *records = NULL;
  *out = (struct kinesis_read){.millis_behind = -1};
  const json_t *list = json_object_get(answer, "Records");
  const json_t *it = json_object_get(answer, "NextShardIterator");
  const json_t *behind = json_object_get(answer, "MillisBehindLatest");
  if (!shard || !*shard || strlen(shard) >= TS_KINESIS_ID_BYTES ||
      !json_is_object(answer) || !json_is_array(list) ||
      (it && !json_is_null(it) && !json_is_string(it)) ||
      (behind && !json_is_integer(behind)))
    goto fail;
  if (json_array_size(list) > TS_KINESIS_MAX_GET_RECORDS_LIMIT) {
    st = TS_ERR_TOO_LARGE;
    goto fail;
  }
  st = TS_ERR_NOMEM;
  if (!(records = json_array()))
    goto fail;
  size_t i;
  const json_t *rec;
  json_array_foreach(list, i, rec) {
    char seq[TS_KINESIS_SEQ_BYTES];
    st = TS_ERR_INVALID;
    if (!json_is_object(rec) ||
        !copy_str(json_object_get(rec, "SequenceNumber"), seq, sizeof seq,
                  true) ||
        !all_digits(seq) || !json_is_string(json_object_get(rec, "Data")))
      goto fail;
    /* Kinesis returns a shard's records in sequence order; a later one
     * below an earlier one would move the checkpoint back. */
    if (out->last_seq[0] && !kinesis_seq_less(out->last_seq, seq))
      goto fail;
    st = TS_ERR_NOMEM;
    if (json_array_append_new(records, lambda_record(rec, shard, seq)) != 0)
      goto fail;
    memcpy(out->last_seq, seq, sizeof seq);
  }
  st = TS_ERR_NOMEM;
  out->records = json_array_size(records);
  if (!(out->envelope = json_pack("{s:o}", "Records", records))) {
    records = NULL;
    goto fail;
  }
  records = NULL;
  if (json_is_string(it) && json_string_length(it) > 0 &&
      !(out->next_iterator = strdup(json_string_value(it))))
    goto fail;
  out->millis_behind = behind ? (int64_t)json_integer_value(behind) : -1;
  return TS_OK;
fail:
  json_decref(records);
  kinesis_read_clear(out);
  return st;
}

void kinesis_stream_name(const char *name_or_arn,
                         char out[TS_KINESIS_ID_BYTES]) {
  const char *name = name_or_arn ? name_or_arn : "";
  out[0] = '\0';
  if (strncmp(name, "arn:", 4) == 0) {
    const char *slash = strstr(name, ":stream/");
    if (!slash)
      return;
    name = slash + strlen(":stream/");
  }
  size_t len = strlen(name);
  if (len == 0 || len >= TS_KINESIS_ID_BYTES || strchr(name, '#'))
    return;
  memcpy(out, name, len + 1);
}
