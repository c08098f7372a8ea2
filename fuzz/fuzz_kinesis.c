/* Fuzzes domain/kinesis: the parsers of Kinesis answers (ListShards,
 * GetRecords), the envelope a GetRecords answer becomes, and the lineage
 * rule, against the contracts in kinesis.h.
 *
 * Input: a shard id, NUL, a byte of "finished" bits, then a JSON text read
 * as both a ListShards and a GetRecords answer.
 *
 * Invariants: ListShards pages never leave the bound and a refused page
 * adds nothing; a parsed GetRecords answer has one envelope record per
 * Kinesis record, each named "<shard>:<seq>" with its sequence number, in
 * increasing order, the last one the checkpoint; the envelope is accepted
 * whole by batch_new_with() (its records may be poison, never the
 * envelope); a finished shard is never readable, nor one whose listed
 * parent is not finished. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "domain/batch.h"
#include "domain/kinesis.h"
#include "input.h"

static void check_shards(const json_t *answer, uint8_t bits) {
  struct kinesis_shard *sh = NULL;
  size_t n = 0;
  char next[64];
  enum ts_status st = kinesis_shards_parse(answer, &sh, &n, next, sizeof next);
  FUZZ_CHECK(st == TS_OK || n == 0, "a refused first page added shards");
  FUZZ_CHECK(n <= TS_KINESIS_MAX_SHARDS, "over the bound");
  FUZZ_CHECK(strlen(next) < sizeof next, "token not terminated");
  bool finished[8];
  size_t m = n < 8 ? n : 8;
  for (size_t i = 0; i < m; i++)
    finished[i] = (bits >> i) & 1u;
  for (size_t i = 0; i < m; i++) {
    bool r = kinesis_shard_readable(sh, finished, m, i);
    FUZZ_CHECK(!(r && finished[i]), "a finished shard is readable");
    for (size_t j = 0; r && j < m; j++)
      if (!finished[j] && (strcmp(sh[i].parent, sh[j].id) == 0 ||
                           strcmp(sh[i].adjacent, sh[j].id) == 0))
        fuzz_fail(__FILE__, __LINE__,
                  "shard %zu readable before its parent %zu", i, j);
  }
  free(sh);
}

static void check_read(const json_t *answer, const char *shard) {
  struct kinesis_read r;
  if (kinesis_read_parse(answer, shard, &r) != TS_OK) {
    FUZZ_CHECK(!r.envelope && !r.next_iterator, "a refused answer kept parts");
    return;
  }
  const json_t *recs = json_object_get(r.envelope, "Records");
  FUZZ_CHECK(json_array_size(recs) == r.records, "records miscounted");
  const char *prev = NULL;
  size_t i;
  const json_t *rec;
  json_array_foreach(recs, i, rec) {
    const char *seq = json_string_value(
        json_object_get(json_object_get(rec, "kinesis"), "sequenceNumber"));
    const char *id = json_string_value(json_object_get(rec, "eventID"));
    FUZZ_CHECK(seq && id, "a record without its names");
    size_t sl = strlen(shard);
    FUZZ_CHECK(strncmp(id, shard, sl) == 0 && id[sl] == ':' &&
                   strcmp(id + sl + 1, seq) == 0,
               "eventID %s is not <shard>:<seq>", id);
    FUZZ_CHECK(!prev || kinesis_seq_less(prev, seq), "not increasing");
    prev = seq;
  }
  FUZZ_CHECK(prev ? strcmp(prev, r.last_seq) == 0 : r.last_seq[0] == '\0',
             "checkpoint is not the last record");
  struct batch *b = NULL;
  const char *detail = NULL;
  enum ts_status st =
      batch_new_with(fuzz_doc_of(r.envelope), NULL, &b, &detail);
  FUZZ_CHECK(st == TS_OK || st == TS_ERR_NOMEM, "the envelope was refused: %s",
             detail ? detail : "?");
  if (b)
    FUZZ_CHECK(batch_record_count(b) == r.records, "batch lost records");
  batch_free(b);
  kinesis_read_clear(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct input in = {data, size};
  char *shard = input_take_cstr(&in, NULL);
  uint8_t bits = input_take_u8(&in);
  size_t len = 0;
  const uint8_t *text = input_take_rest(&in, &len);
  json_t *answer = json_loadb((const char *)text, len, JSON_DECODE_ANY, NULL);
  if (answer) {
    check_shards(answer, bits);
    check_read(answer, shard[0] ? shard : "shardId-000000000000");
    json_decref(answer);
  }
  free(shard);
  return 0;
}
