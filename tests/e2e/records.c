/* DynamoDB Streams record builders for the end-to-end tests. */
#include "records.h"

#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static unsigned long long counter;

bool e2e_win_counts(enum e2e_win w) {
  return w == WIN_BOOL_TRUE || w == WIN_N_ONE || w == WIN_S_TRUE ||
         w == WIN_S_YES;
}

const char *e2e_win_name(enum e2e_win w) {
  static const char *const names[WIN__COUNT] = {
      [WIN_ABSENT] = "absent",       [WIN_BOOL_FALSE] = "BOOL false",
      [WIN_NULL] = "NULL",           [WIN_N_ZERO] = "N 0",
      [WIN_S_EMPTY] = "S \"\"",      [WIN_S_FALSE] = "S \"false\"",
      [WIN_BOOL_TRUE] = "BOOL true", [WIN_N_ONE] = "N 1",
      [WIN_S_TRUE] = "S \"true\"",   [WIN_S_YES] = "S \"yes\""};
  return (unsigned)w < WIN__COUNT ? names[w] : "?";
}

static json_t *winner_value(enum e2e_win w) {
  switch (w) {
  case WIN_BOOL_FALSE: return json_pack("{s:b}", "BOOL", 0);
  case WIN_NULL: return json_pack("{s:b}", "NULL", 1);
  case WIN_N_ZERO: return json_pack("{s:s}", "N", "0");
  case WIN_S_EMPTY: return json_pack("{s:s}", "S", "");
  case WIN_S_FALSE: return json_pack("{s:s}", "S", "false");
  case WIN_BOOL_TRUE: return json_pack("{s:b}", "BOOL", 1);
  case WIN_N_ONE: return json_pack("{s:s}", "N", "1");
  case WIN_S_TRUE: return json_pack("{s:s}", "S", "true");
  case WIN_S_YES: return json_pack("{s:s}", "S", "yes");
  case WIN_ABSENT:
  case WIN__COUNT: break;
  }
  return NULL;
}

static json_t *typed(char type, char dflt, const char *text) {
  char t[2] = {type ? type : dflt, '\0'};
  return json_pack("{s:s}", t, text);
}

json_t *e2e_image_json(const struct e2e_image *im, const char *game) {
  json_t *o = json_object();
  json_object_set_new(o, "game_id", json_pack("{s:s}", "S", game));
  if (im->player)
    json_object_set_new(o, "player", typed(im->player_type, 'S', im->player));
  if (im->score)
    json_object_set_new(o, "score", typed(im->score_type, 'N', im->score));
  json_t *w = winner_value(im->winner);
  if (w)
    json_object_set_new(o, "winner", w);
  json_object_set_new(o, "round", json_pack("{s:s}", "N", "3"));
  return o;
}

char *e2e_fresh_event_id(char *buf, size_t cap) {
  snprintf(buf, cap, "%sev%llu", e2e_run_prefix(), ++counter);
  return buf;
}

json_t *e2e_record(const char *event_name, const char *event_id,
                   const char *game, const struct e2e_image *old_img,
                   const struct e2e_image *new_img) {
  char id[128], key[128], seq[64];
  unsigned long long n = ++counter;
  if (!event_id)
    event_id = e2e_fresh_event_id(id, sizeof id);
  if (!game) {
    snprintf(key, sizeof key, "game-%llu", n);
    game = key;
  }
  /* Real sequence numbers are 21+ digits; this one is unique per run
   * because the run prefix has a millisecond stamp and the pid. */
  unsigned long long stamp = 0;
  for (const char *p = e2e_run_prefix(); *p; p++)
    if (*p >= '0' && *p <= '9')
      stamp = (stamp * 10u + (unsigned)(*p - '0')) % 100000000000000ull;
  snprintf(seq, sizeof seq, "9%014llu%08llu", stamp, n);
  json_t *ddb = json_pack("{s:{s:{s:s}}, s:i, s:s, s:i, s:s}", "Keys",
                          "game_id", "S", game, "ApproximateCreationDateTime",
                          1764230000, "SequenceNumber", seq, "SizeBytes", 59,
                          "StreamViewType", "NEW_AND_OLD_IMAGES");
  if (new_img)
    json_object_set_new(ddb, "NewImage", e2e_image_json(new_img, game));
  if (old_img)
    json_object_set_new(ddb, "OldImage", e2e_image_json(old_img, game));
  return json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:s}", "eventID", event_id,
                   "eventName", event_name, "eventVersion", "1.1",
                   "eventSource", "aws:dynamodb", "awsRegion", "us-east-1",
                   "dynamodb", ddb, "eventSourceARN",
                   "arn:aws:dynamodb:us-east-1:123456789012:table/TaTourney/"
                   "stream/2026-11-27T00:00:00.000");
}

json_t *e2e_insert(const char *player, const char *score, enum e2e_win w) {
  struct e2e_image im = {.player = player, .score = score, .winner = w};
  return e2e_record("INSERT", NULL, NULL, NULL, &im);
}

json_t *e2e_modify(const struct e2e_image *old_img,
                   const struct e2e_image *new_img) {
  return e2e_record("MODIFY", NULL, NULL, old_img, new_img);
}

json_t *e2e_remove(const struct e2e_image *old_img) {
  return e2e_record("REMOVE", NULL, NULL, old_img, NULL);
}

const char *e2e_record_event_id(const json_t *rec) {
  return json_string_value(json_object_get(rec, "eventID"));
}

const char *e2e_record_sequence(const json_t *rec) {
  return json_string_value(
      json_object_get(json_object_get(rec, "dynamodb"), "SequenceNumber"));
}

json_t *e2e_lambda(json_t *records) {
  return json_pack("{s:O}", "Records", records);
}

json_t *e2e_pipes(json_t *records) { return json_incref(records); }

json_t *e2e_records(json_t *first, ...) {
  json_t *arr = json_array();
  va_list ap;
  va_start(ap, first);
  for (json_t *r = first; r; r = va_arg(ap, json_t *))
    json_array_append_new(arr, r);
  va_end(ap);
  return arr;
}

char *e2e_base64(const void *bytes, size_t n) {
  char *out = malloc(4 * ((n + 2) / 3) + 1);
  if (out)
    EVP_EncodeBlock((unsigned char *)out, bytes, (int)n);
  return out;
}

/* A fresh outer sequenceNumber (Kinesis's are 56 digits; unique per run
 * like the stream records'). */
static void kinesis_ids(json_t *outer) {
  char seq[80], id[128];
  unsigned long long stamp = 0;
  for (const char *p = e2e_run_prefix(); *p; p++)
    if (*p >= '0' && *p <= '9')
      stamp = (stamp * 10u + (unsigned)(*p - '0')) % 100000000000000ull;
  snprintf(seq, sizeof seq, "49590338271490256608559692538%014llu%010llu",
           stamp, ++counter);
  snprintf(id, sizeof id, "shardId-000000000000:%s", seq);
  json_object_set_new(json_object_get(outer, "kinesis"), "sequenceNumber",
                      json_string(seq));
  json_object_set_new(outer, "eventID", json_string(id));
}

json_t *e2e_kinesis_data(const char *data) {
  json_t *outer = json_pack(
      "{s:{s:s, s:s, s:s, s:f}, s:s, s:s, s:s, s:s, s:s, s:s}", "kinesis",
      "kinesisSchemaVersion", "1.0", "partitionKey", "5C3F0A5B7E2D4B19", "data",
      data, "approximateArrivalTimestamp", 1764230000.123, "eventSource",
      "aws:kinesis", "eventVersion", "1.0", "eventName", "aws:kinesis:record",
      "invokeIdentityArn", "arn:aws:iam::123456789012:role/lambda-role",
      "awsRegion", "us-east-1", "eventSourceARN",
      "arn:aws:kinesis:us-east-1:123456789012:stream/TaTourneyChanges");
  kinesis_ids(outer);
  return outer;
}

json_t *e2e_kinesis(json_t *inner) {
  json_t *ddb = json_object_get(inner, "dynamodb");
  json_object_del(ddb, "SequenceNumber");
  json_object_del(ddb, "StreamViewType");
  json_object_set_new(ddb, "ApproximateCreationDateTime",
                      json_integer(1764230000123));
  json_object_set_new(ddb, "ApproximateCreationDateTimePrecision",
                      json_string("MILLISECOND"));
  json_object_del(inner, "eventVersion");
  json_object_del(inner, "eventSourceARN");
  json_object_set_new(inner, "recordFormat", json_string("application/json"));
  json_object_set_new(inner, "tableName", json_string("TaTourney"));
  if (!json_object_get(inner, "userIdentity"))
    json_object_set_new(inner, "userIdentity", json_null());
  char *text = json_dumps(inner, JSON_COMPACT);
  char *b64 = text ? e2e_base64(text, strlen(text)) : NULL;
  json_t *outer = e2e_kinesis_data(b64 ? b64 : "");
  free(b64);
  free(text);
  json_decref(inner);
  return outer;
}

json_t *e2e_kinesis_redelivery(const json_t *outer) {
  json_t *copy = json_deep_copy(outer);
  kinesis_ids(copy);
  return copy;
}

const char *e2e_kinesis_sequence(const json_t *outer) {
  return json_string_value(
      json_object_get(json_object_get(outer, "kinesis"), "sequenceNumber"));
}
