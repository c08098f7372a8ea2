/* DynamoDB Streams records as C string literals, for the domain's tests:
 * REC("e1", "INSERT", SEQ("1") "," NEW(PS("bob") SC("10") WIN)). */
#ifndef TS_TESTS_UNIT_RECORDS_H
#define TS_TESTS_UNIT_RECORDS_H

#define REC(id, ev, ddb)                                                       \
  "{\"eventID\":\"" id "\",\"eventName\":\"" ev "\",\"dynamodb\":{" ddb "}}"
#define NEW(img) "\"NewImage\":{" img "}"
#define OLD(img) "\"OldImage\":{" img "}"
#define SEQ(s) "\"SequenceNumber\":\"" s "\""
#define PS(name) "\"player\":{\"S\":\"" name "\"}"
#define SC(n) ",\"score\":{\"N\":\"" n "\"}"
#define WIN ",\"winner\":{\"BOOL\":true}"
#define LOSS ",\"winner\":{\"BOOL\":false}"

#endif
