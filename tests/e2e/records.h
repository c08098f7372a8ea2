/* Builders of DynamoDB Streams records and request envelopes, so that the
 * tests read as "insert a game for alice scoring 12.5, won". */
#ifndef TS_TESTS_E2E_RECORDS_H
#define TS_TESTS_E2E_RECORDS_H

#include <jansson.h>
#include <stdbool.h>

/* Spellings of the winner attribute in an image. */
enum e2e_win {
  WIN_ABSENT,     /* no winner attribute: not a win */
  WIN_BOOL_FALSE, /* {"BOOL":false}: not a win */
  WIN_NULL,       /* {"NULL":true}: not a win */
  WIN_N_ZERO,     /* {"N":"0"}: not a win */
  WIN_S_EMPTY,    /* {"S":""}: not a win */
  WIN_S_FALSE,    /* {"S":"false"}: not a win */
  WIN_BOOL_TRUE,  /* {"BOOL":true}: a win */
  WIN_N_ONE,      /* {"N":"1"}: a win */
  WIN_S_TRUE,     /* {"S":"true"}: a win */
  WIN_S_YES,      /* {"S":"yes"}: a win (present and not false) */
  WIN__COUNT
};

/* True when the spelling counts as a win. */
bool e2e_win_counts(enum e2e_win w);
const char *e2e_win_name(enum e2e_win w);

/* One image of a source item. player or score NULL: attribute absent. */
struct e2e_image {
  const char *player;
  const char *score; /* the N (or S) text, e.g. "12.5" */
  enum e2e_win winner;
  char player_type; /* 'S' (default when 0) or 'N' */
  char score_type;  /* 'N' (default when 0) or 'S' */
};

/* The image in DynamoDB JSON, e.g. {"player":{"S":"alice"},...}. */
json_t *e2e_image_json(const struct e2e_image *im, const char *game);

/* A stream record. event_id NULL: a fresh unique id. game NULL: a fresh
 * key. old_img/new_img NULL: no OldImage/NewImage. Every record gets a
 * fresh, run-unique SequenceNumber. New reference. */
json_t *e2e_record(const char *event_name, const char *event_id,
                   const char *game, const struct e2e_image *old_img,
                   const struct e2e_image *new_img);

json_t *e2e_insert(const char *player, const char *score, enum e2e_win w);
json_t *e2e_modify(const struct e2e_image *old_img,
                   const struct e2e_image *new_img);
json_t *e2e_remove(const struct e2e_image *old_img);

const char *e2e_record_event_id(const json_t *rec);
const char *e2e_record_sequence(const json_t *rec);

/* Writes a fresh run-unique event id into buf (at least 64 bytes). */
char *e2e_fresh_event_id(char *buf, size_t cap);

/* Kinesis Data Streams for DynamoDB, as a Lambda or a Pipe with a Kinesis
 * source delivers it. e2e_kinesis takes a stream record from the builders
 * above (stealing the reference), turns it into the Kinesis-for-DynamoDB
 * change format (no SequenceNumber, ApproximateCreationDateTime in
 * milliseconds, recordFormat, tableName), and returns the outer Kinesis
 * record with its base64 in kinesis.data and a fresh, run-unique outer
 * sequenceNumber and eventID. New reference. */
json_t *e2e_kinesis(json_t *inner);
/* The outer record with kinesis.data set to the string data as it is (for
 * poison that is not base64, or base64 of something else). */
json_t *e2e_kinesis_data(const char *data);
/* base64 of n bytes, malloc'd. */
char *e2e_base64(const void *bytes, size_t n);
/* The same Kinesis record delivered again: a deep copy with a new outer
 * sequenceNumber and eventID (another delivery, or another shard after a
 * reshard). New reference. */
json_t *e2e_kinesis_redelivery(const json_t *outer);
/* The outer kinesis.sequenceNumber. */
const char *e2e_kinesis_sequence(const json_t *outer);

/* Envelopes. Each takes a reference to records (an array) and returns a
 * new body: {"Records":records} or records itself. */
json_t *e2e_lambda(json_t *records);
json_t *e2e_pipes(json_t *records);

/* Builds an array of the given records, stealing each reference; ends at
 * NULL. */
json_t *e2e_records(json_t *first, ...);

#endif /* TS_TESTS_E2E_RECORDS_H */
