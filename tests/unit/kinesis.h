/* Kinesis records (Kinesis Data Streams for DynamoDB, as a Lambda or a
 * Pipe delivers them) around a DynamoDB change record, for the domain's
 * and the store's tests. */
#ifndef TS_TESTS_UNIT_KINESIS_H
#define TS_TESTS_UNIT_KINESIS_H

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A change record in the Kinesis-for-DynamoDB format: no SequenceNumber,
 * ApproximateCreationDateTime in milliseconds, recordFormat and tableName.
 * ddb is the rest of the dynamodb member (images, without a leading
 * comma). */
#define KREC(id, ev, ddb)                                                      \
  "{\"awsRegion\":\"us-east-1\",\"eventID\":\"" id "\",\"eventName\":\"" ev    \
  "\",\"userIdentity\":null,\"recordFormat\":\"application/json\","            \
  "\"tableName\":\"TaTourney\",\"dynamodb\":{"                                 \
  "\"ApproximateCreationDateTime\":1764230000123,\"Keys\":{\"game_id\":{"      \
  "\"S\":\"g-" id "\"}}," ddb ",\"SizeBytes\":59,"                             \
  "\"ApproximateCreationDateTimePrecision\":\"MILLISECOND\"},"                 \
  "\"eventSource\":\"aws:dynamodb\"}"

/* base64 of n bytes as a JSON string literal ("..."); malloc'd. */
static inline char *kinesis_b64(const char *bytes, size_t n) {
  char *out = malloc(4 * ((n + 2) / 3) + 3);
  if (!out)
    abort();
  out[0] = '"';
  int len = EVP_EncodeBlock((unsigned char *)out + 1,
                            (const unsigned char *)bytes, (int)n);
  out[1 + len] = '"';
  out[2 + len] = '\0';
  return out;
}

/* The outer Kinesis record whose kinesis.data member is the JSON text
 * data_json (say a base64 string from kinesis_b64); seq NULL: no
 * sequenceNumber. outer_id is the outer eventID's sequence part. */
static inline char *kinesis_wrap(const char *data_json, const char *seq,
                                 const char *outer_id) {
  char seq_member[128] = "";
  if (seq)
    snprintf(seq_member, sizeof seq_member, "\"sequenceNumber\":\"%s\",", seq);
  const char *parts[] = {
      "{\"kinesis\":{\"kinesisSchemaVersion\":\"1.0\",\"partitionKey\":"
      "\"5C3F0A5B7E2D\",",
      seq_member,
      "\"data\":",
      data_json,
      ",\"approximateArrivalTimestamp\":1764230000.5},\"eventSource\":"
      "\"aws:kinesis\",\"eventVersion\":\"1.0\",\"eventID\":"
      "\"shardId-000000000000:",
      outer_id,
      "\",\"eventName\":\"aws:kinesis:record\",\"invokeIdentityArn\":"
      "\"arn:aws:iam::123456789012:role/r\",\"awsRegion\":\"us-east-1\","
      "\"eventSourceARN\":\"arn:aws:kinesis:us-east-1:123456789012:stream/"
      "games\"}"};
  size_t n = 1;
  for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
    n += strlen(parts[i]);
  char *out = malloc(n);
  if (!out)
    abort();
  size_t at = 0;
  for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
    memcpy(out + at, parts[i], strlen(parts[i]));
    at += strlen(parts[i]);
  }
  out[at] = '\0';
  return out;
}

/* The Kinesis record that carries the change record text inner. */
static inline char *kinesis_record(const char *inner, const char *seq,
                                   const char *outer_id) {
  char *data = kinesis_b64(inner, strlen(inner));
  char *out = kinesis_wrap(data, seq, outer_id);
  free(data);
  return out;
}

#endif
