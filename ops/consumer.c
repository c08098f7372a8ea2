/* The Kinesis consumer (see consumer.h). */
#include "consumer.h"

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../aws/creds.h"
#include "../aws/ddb.h"
#include "../common/backoff.h"
#include "../common/bounds.h"
#include "../common/clock.h"
#include "../common/jdoc.h"
#include "../common/log.h"
#include "../domain/kinesis.h"

struct worker {
  struct consumer *c;
  char shard[TS_KINESIS_ID_BYTES];
  struct shard_lease lease; /* the row as last written by this worker */
  int64_t written_ms;       /* wall clock of that write */
  pthread_t thread;
  atomic_bool done;      /* the thread has returned (join it) */
  atomic_bool hand_over; /* release the lease: another consumer's share */
  atomic_int_fast64_t millis_behind;
  atomic_uint_fast64_t records;
};

struct consumer {
  struct store *store;
  struct consumer_options o;
  char stream[TS_KINESIS_ID_BYTES]; /* name: the leases' key */
  char *stream_arn;                 /* when given an ARN */
  char owner[TS_KINESIS_OWNER_BYTES];
  struct aws_creds_provider *creds;
  struct ddb_client *kinesis;

  pthread_mutex_t mu; /* guards workers, stopping (with cv) */
  pthread_cond_t cv;
  bool stopping;
  struct worker *workers[TS_KINESIS_MAX_WORKERS];
  size_t n_workers;
  pthread_t coordinator;
  bool coordinator_started;
  /* The member slot this consumer holds (coordinator thread only). */
  struct shard_lease member;
  int member_slot; /* -1: none */

  atomic_uint_fast64_t read, applied, duplicates, skipped, rejected;
  atomic_uint_fast64_t batches, checkpoints, taken, lost, read_errors;
};

/* ---- small helpers ---- */

static bool stopping(struct consumer *c) {
  pthread_mutex_lock(&c->mu);
  bool s = c->stopping;
  pthread_mutex_unlock(&c->mu);
  return s;
}

/* Sleeps ms, or less when the consumer stops; returns !stopping. */
static bool nap(struct consumer *c, uint32_t ms) {
  struct timespec abs = clock_deadline_abs(CLOCK_REALTIME, ms);
  pthread_mutex_lock(&c->mu);
  while (!c->stopping && pthread_cond_timedwait(&c->cv, &c->mu, &abs) == 0) {
  }
  bool go_on = !c->stopping;
  pthread_mutex_unlock(&c->mu);
  return go_on;
}

/* Adds the stream's identity to a request: StreamName, and StreamARN too
 * when we were given one (Kinesis takes "either or both"; the ARN names a
 * stream of another account, and local servers such as kinesalite know
 * only the name). */
static int add_stream(struct consumer *c, json_t *req) {
  if (json_object_set_new(req, "StreamName", json_string(c->stream)) != 0)
    return -1;
  return c->stream_arn
             ? json_object_set_new(req, "StreamARN", json_string(c->stream_arn))
             : 0;
}

/* One Kinesis call; *resp (owned) on DDB_DONE. TS_ERR_RETRY for what may
 * pass (throttling past the deadline, a refused call); *error names it. */
static enum ts_status kcall(struct consumer *c, const char *op, json_t *req,
                            json_t **resp, char error[96]) {
  struct ddb_call call = {.op = op, .request = req};
  *resp = NULL;
  error[0] = '\0';
  enum ts_status st = ddb_execute(c->kinesis, &call, 1,
                                  clock_now_ms() + TS_KINESIS_CALL_DEADLINE_MS);
  if (st == TS_OK) {
    if (call.outcome == DDB_DONE) {
      *resp = call.response;
      call.response = NULL;
    } else {
      snprintf(error, 96, "%s", call.error_type[0] ? call.error_type : "?");
      log_event(LOG_WARN, "kinesis call failed", "{s:s, s:s, s:s, s:i}", "op",
                op, "error", call.error_type, "message", call.error_message,
                "attempts", (int)call.attempts);
      st = TS_ERR_RETRY;
    }
  }
  ddb_call_clear(&call);
  return st;
}

/* ---- a worker: one shard ---- */

enum write_result {
  WRITE_DONE,
  WRITE_REFUSED, /* the row changed under us: another owner */
  WRITE_FAILED,  /* the store did not answer: try again until the margin */
};

/* Writes next over w->lease (compare-and-set on its version). */
static enum write_result lease_write(struct worker *w,
                                     const struct shard_lease *next) {
  struct consumer *c = w->c;
  bool written = false;
  int64_t before = clock_wall_ms();
  enum ts_status st = store_lease_put(c->store, c->stream, w->shard, next,
                                      w->lease.version, &written);
  if (st == TS_OK && written) {
    w->lease = *next;
    w->written_ms = before; /* the expiry counts from before the write */
    return WRITE_DONE;
  }
  if (st != TS_OK)
    log_event(LOG_WARN, "kinesis lease write failed", "{s:s, s:s}", "shard",
              w->shard, "status", ts_status_name(st));
  return st == TS_OK ? WRITE_REFUSED : WRITE_FAILED;
}

static void lease_lost(struct worker *w, const char *why) {
  atomic_fetch_add(&w->c->lost, 1);
  log_event(LOG_WARN, "kinesis lease lost: work on the shard stops",
            "{s:s, s:s, s:s}", "shard", w->shard, "owner", w->c->owner, "why",
            why);
}

/* A new iterator after the checkpoint (else at the oldest record). */
static enum ts_status get_iterator(struct worker *w, char **iterator) {
  struct consumer *c = w->c;
  char error[96];
  json_t *resp = NULL;
  *iterator = NULL;
  json_t *req = w->lease.checkpoint[0]
                    ? json_pack("{s:s, s:s, s:s}", "ShardId", w->shard,
                                "ShardIteratorType", "AFTER_SEQUENCE_NUMBER",
                                "StartingSequenceNumber", w->lease.checkpoint)
                    : json_pack("{s:s, s:s}", "ShardId", w->shard,
                                "ShardIteratorType", "TRIM_HORIZON");
  if (!req || add_stream(c, req) != 0) {
    json_decref(req);
    return TS_ERR_NOMEM;
  }
  enum ts_status st = kcall(c, "GetShardIterator", req, &resp, error);
  const char *it = json_string_value(json_object_get(resp, "ShardIterator"));
  if (st == TS_OK && !it)
    st = TS_ERR_RETRY;
  if (st == TS_OK && !(*iterator = strdup(it)))
    st = TS_ERR_NOMEM;
  json_decref(resp);
  json_decref(req);
  return st;
}

/* Applies one read batch until it is applied, the lease must be given up,
 * or the consumer stops. */
static bool apply_read(struct worker *w, const struct kinesis_read *r) {
  struct consumer *c = w->c;
  for (unsigned attempt = 1;; attempt++) {
    if (kinesis_lease_must_stop(w->written_ms, clock_wall_ms(),
                                c->o.lease_ms) ||
        stopping(c))
      return false;
    struct batch *b = NULL;
    struct jdoc *body;
    const char *detail = NULL;
    enum ts_status st = jdoc_from_json(r->envelope, &body);
    if (st == TS_OK) /* the batch takes body */
      st = batch_new_with(body, &c->o.batch, &b, &detail);
    if (st == TS_OK)
      st = store_apply_by(c->store, b,
                          clock_now_ms() + TS_KINESIS_APPLY_DEADLINE_MS);
    if (st == TS_OK) {
      struct batch_counts n;
      batch_counts(b, &n);
      atomic_fetch_add(&c->read, n.received);
      atomic_fetch_add(&c->applied, n.applied);
      atomic_fetch_add(&c->duplicates, n.duplicates);
      atomic_fetch_add(&c->skipped, n.skipped);
      atomic_fetch_add(&c->rejected, n.rejected);
      atomic_fetch_add(&c->batches, 1);
      atomic_fetch_add(&w->records, n.received);
      batch_free(b);
      return true;
    }
    batch_free(b);
    log_event(LOG_WARN, "kinesis batch not applied, retrying",
              "{s:s, s:s, s:s}", "shard", w->shard, "status",
              ts_status_name(st), "detail", detail ? detail : "");
    nap(c, backoff_pause_ms(c->o.poll_ms, TS_KINESIS_BACKOFF_CAP_MS, attempt));
  }
}

static void *worker_main(void *arg) {
  struct worker *w = arg;
  struct consumer *c = w->c;
  char *iterator = NULL;
  unsigned failures = 0;
  bool own = true;
  log_event(LOG_INFO, "kinesis shard taken", "{s:s, s:s, s:s}", "shard",
            w->shard, "owner", c->owner, "checkpoint", w->lease.checkpoint);
  while (own && !stopping(c)) {
    int64_t now = clock_wall_ms();
    if (atomic_load(&w->hand_over)) {
      log_event(LOG_INFO, "kinesis shard handed over", "{s:s, s:s}", "shard",
                w->shard, "owner", c->owner);
      break; /* released below: another consumer's share */
    }
    if (kinesis_lease_must_stop(w->written_ms, now, c->o.lease_ms)) {
      lease_lost(w, "not renewed in time");
      own = false;
      break;
    }
    if (now - w->written_ms >=
        (int64_t)(c->o.lease_ms / TS_KINESIS_RENEW_DIVISOR)) {
      struct shard_lease next;
      kinesis_lease_take(&w->lease, c->owner, now, c->o.lease_ms, &next);
      enum write_result wr = lease_write(w, &next);
      if (wr == WRITE_REFUSED) {
        lease_lost(w, "taken over");
        own = false;
        break;
      }
      if (wr == WRITE_FAILED) {
        nap(c, TS_KINESIS_MIN_GAP_MS);
        continue;
      }
    }
    if (!iterator) {
      enum ts_status st = get_iterator(w, &iterator);
      if (st != TS_OK) {
        atomic_fetch_add(&c->read_errors, 1);
        nap(c, backoff_pause_ms(c->o.poll_ms, TS_KINESIS_BACKOFF_CAP_MS,
                                ++failures));
        continue;
      }
    }
    json_t *req = json_pack("{s:s, s:i}", "ShardIterator", iterator, "Limit",
                            (int)c->o.limit);
    json_t *resp = NULL;
    char error[96];
    enum ts_status st =
        req ? kcall(c, "GetRecords", req, &resp, error) : TS_ERR_NOMEM;
    json_decref(req);
    if (st != TS_OK) {
      atomic_fetch_add(&c->read_errors, 1);
      if (strcmp(error, "ExpiredIteratorException") == 0) {
        free(iterator); /* a new one from the checkpoint */
        iterator = NULL;
      }
      nap(c, backoff_pause_ms(c->o.poll_ms, TS_KINESIS_BACKOFF_CAP_MS,
                              ++failures));
      continue;
    }
    struct kinesis_read r;
    st = kinesis_read_parse(resp, w->shard, &r);
    json_decref(resp);
    if (st != TS_OK) {
      atomic_fetch_add(&c->read_errors, 1);
      log_event(LOG_ERROR, "kinesis GetRecords answer not understood",
                "{s:s, s:s}", "shard", w->shard, "status", ts_status_name(st));
      nap(c, backoff_pause_ms(c->o.poll_ms, TS_KINESIS_BACKOFF_CAP_MS,
                              ++failures));
      continue;
    }
    failures = 0;
    if (r.millis_behind >= 0)
      atomic_store(&w->millis_behind, r.millis_behind);
    bool end = r.next_iterator == NULL;
    if (r.records > 0 && !apply_read(w, &r)) {
      kinesis_read_clear(&r);
      continue; /* the loop's checks tell why */
    }
    if (r.records > 0 || end) {
      struct shard_lease next;
      kinesis_lease_checkpoint(&w->lease, r.last_seq, end, clock_wall_ms(),
                               c->o.lease_ms, &next);
      enum write_result wr = lease_write(w, &next);
      if (wr != WRITE_DONE) {
        /* Applied but not checkpointed: whoever reads the shard next
         * reads these records again as duplicates. */
        lease_lost(w, wr == WRITE_REFUSED ? "taken over"
                                          : "checkpoint not written");
        own = wr == WRITE_FAILED; /* still ours: release it below */
        kinesis_read_clear(&r);
        break;
      }
      atomic_fetch_add(&c->checkpoints, 1);
    }
    free(iterator);
    iterator = r.next_iterator;
    r.next_iterator = NULL;
    size_t n = r.records;
    kinesis_read_clear(&r);
    if (end) {
      log_event(LOG_INFO, "kinesis shard read to its end", "{s:s, s:s}",
                "shard", w->shard, "checkpoint", w->lease.checkpoint);
      own = false; /* finished: the lease was let go with the checkpoint */
      break;
    }
    nap(c, n > 0 ? TS_KINESIS_MIN_GAP_MS : c->o.poll_ms);
  }
  if (own) { /* stopping: let the next consumer take it at once */
    struct shard_lease next;
    kinesis_lease_release(&w->lease, &next);
    if (lease_write(w, &next) == WRITE_DONE)
      log_event(LOG_INFO, "kinesis lease released", "{s:s, s:s}", "shard",
                w->shard, "checkpoint", w->lease.checkpoint);
  }
  free(iterator);
  atomic_store(&w->done, true);
  return NULL;
}

/* ---- the coordinator ---- */

/* Lists every shard (ListShards, all pages). */
static enum ts_status list_shards(struct consumer *c,
                                  struct kinesis_shard **shards, size_t *n) {
  enum ts_status st = TS_OK;
  char token[4096] = "";
  *shards = NULL;
  *n = 0;
  do {
    json_t *req = json_object();
    int bad = !req;
    if (!bad && token[0])
      bad = json_object_set_new(req, "NextToken", json_string(token));
    else if (!bad)
      bad = add_stream(c, req);
    json_t *resp = NULL;
    char error[96];
    st = bad ? TS_ERR_NOMEM : kcall(c, "ListShards", req, &resp, error);
    json_decref(req);
    if (st == TS_OK)
      st = kinesis_shards_parse(resp, shards, n, token, sizeof token);
    json_decref(resp);
  } while (st == TS_OK && token[0]);
  if (st != TS_OK) {
    free(*shards);
    *shards = NULL;
    *n = 0;
  }
  return st;
}

/* Joins workers whose threads returned; true when one finished its
 * shard. */
static bool reap(struct consumer *c) {
  bool ended = false;
  pthread_mutex_lock(&c->mu);
  for (size_t i = 0; i < c->n_workers;) {
    struct worker *w = c->workers[i];
    if (!atomic_load(&w->done)) {
      i++;
      continue;
    }
    c->workers[i] = c->workers[--c->n_workers];
    pthread_mutex_unlock(&c->mu);
    pthread_join(w->thread, NULL);
    ended |= w->lease.finished;
    free(w);
    pthread_mutex_lock(&c->mu);
  }
  pthread_mutex_unlock(&c->mu);
  return ended;
}

static bool working_on(struct consumer *c, const char *shard) {
  bool found = false;
  pthread_mutex_lock(&c->mu);
  for (size_t i = 0; i < c->n_workers && !found; i++)
    found = strcmp(c->workers[i]->shard, shard) == 0;
  pthread_mutex_unlock(&c->mu);
  return found;
}

/* Takes the lease of shard (row cur: free, or ours with no worker on it)
 * and starts its worker. */
static void take(struct consumer *c, const char *shard,
                 const struct shard_lease *cur) {
  struct worker *w = calloc(1, sizeof *w);
  if (!w)
    return;
  w->c = c;
  snprintf(w->shard, sizeof w->shard, "%s", shard);
  w->lease = *cur;
  atomic_init(&w->done, false);
  atomic_init(&w->hand_over, false);
  atomic_init(&w->millis_behind, -1);
  atomic_init(&w->records, 0);
  struct shard_lease next;
  kinesis_lease_take(cur, c->owner, clock_wall_ms(), c->o.lease_ms, &next);
  if (lease_write(w, &next) != WRITE_DONE) { /* another consumer won */
    free(w);
    return;
  }
  atomic_fetch_add(&c->taken, 1);
  pthread_mutex_lock(&c->mu);
  bool ok = !c->stopping && c->n_workers < TS_KINESIS_MAX_WORKERS &&
            pthread_create(&w->thread, NULL, worker_main, w) == 0;
  if (ok)
    c->workers[c->n_workers++] = w;
  pthread_mutex_unlock(&c->mu);
  if (!ok) { /* give it back */
    struct shard_lease back;
    kinesis_lease_release(&w->lease, &back);
    (void)lease_write(w, &back);
    free(w);
  }
}

/* Member slots: each consumer holds one lease row "consumer-<i>" (the
 * lowest free or expired one, renewed with every look at the leases), so
 * that the others count it before it holds any shard. Returns how many
 * other members are live. */
static size_t members(struct consumer *c, int64_t now) {
  size_t others = 0;
  int free_slot = -1;
  struct shard_lease rows[TS_KINESIS_MAX_MEMBERS];
  for (unsigned i = 0; i < TS_KINESIS_MAX_MEMBERS; i++) {
    char key[32];
    snprintf(key, sizeof key, "consumer-%u", i);
    if (store_lease_get(c->store, c->stream, key, &rows[i]) != TS_OK)
      return others;
    enum lease_state ls = kinesis_lease_state(&rows[i], c->owner, now);
    if (ls == LEASE_HELD)
      others++;
    else if (ls == LEASE_FREE && free_slot < 0 && c->member_slot < 0)
      free_slot = (int)i;
    /* Slots are taken lowest free first and never lose their row, so
     * none past a never-written one has been used: stop reading. */
    if (rows[i].version == 0)
      break;
  }
  int slot = c->member_slot >= 0 ? c->member_slot : free_slot;
  if (slot < 0)
    return others;
  const struct shard_lease *cur = &rows[slot];
  if (c->member_slot == slot && cur->version != c->member.version) {
    c->member_slot = -1; /* taken over after we failed to renew: find one */
    return others;
  }
  char key[32];
  snprintf(key, sizeof key, "consumer-%d", slot);
  struct shard_lease next;
  bool written = false;
  kinesis_lease_take(cur, c->owner, now, c->o.lease_ms, &next);
  if (store_lease_put(c->store, c->stream, key, &next, cur->version,
                      &written) == TS_OK &&
      written) {
    c->member = next;
    c->member_slot = slot;
  }
  return others;
}

static void member_release(struct consumer *c) {
  if (c->member_slot < 0)
    return;
  char key[32];
  snprintf(key, sizeof key, "consumer-%d", c->member_slot);
  struct shard_lease next;
  bool written = false;
  kinesis_lease_release(&c->member, &next);
  if (store_lease_put(c->store, c->stream, key, &next, c->member.version,
                      &written) != TS_OK)
    log_event(LOG_WARN, "kinesis member slot not released (it expires)",
              "{s:s}", "owner", c->owner);
  c->member_slot = -1;
}

/* One look at the leases: take free ones of readable shards up to this
 * consumer's share (kinesis_lease_target over the live members), and our
 * own that no worker of ours holds whatever the share
 * (kinesis_lease_may_take); hand one over when holding more than the
 * share, so that a consumer that joins gets its share without any lease
 * taken from a live holder. */
static void balance(struct consumer *c, const struct kinesis_shard *shards,
                    size_t n) {
  struct shard_lease *rows = calloc(n ? n : 1, sizeof *rows);
  bool *finished = calloc(n ? n : 1, sizeof *finished);
  const char **others = calloc(n ? n : 1, sizeof *others);
  if (!rows || !finished || !others)
    goto out;
  int64_t now = clock_wall_ms();
  size_t n_members = members(c, now);
  size_t n_others = 0, readable = 0, held = 0;
  for (size_t i = 0; i < n; i++) {
    if (store_lease_get(c->store, c->stream, shards[i].id, &rows[i]) != TS_OK)
      goto out; /* decide on a whole view only */
    finished[i] = rows[i].finished;
  }
  for (size_t i = 0; i < n; i++) {
    enum lease_state ls = kinesis_lease_state(&rows[i], c->owner, now);
    if (kinesis_shard_readable(shards, finished, n, i))
      readable++;
    if (ls != LEASE_HELD)
      continue;
    bool seen = false;
    for (size_t k = 0; k < n_others && !seen; k++)
      seen = strcmp(others[k], rows[i].owner) == 0;
    if (!seen)
      others[n_others++] = rows[i].owner;
  }
  /* members announced, or more owners seen holding leases */
  size_t target = kinesis_lease_target(
      readable, n_members > n_others ? n_members : n_others);
  pthread_mutex_lock(&c->mu);
  for (size_t i = 0; i < c->n_workers; i++)
    held += !atomic_load(&c->workers[i]->done) &&
            !atomic_load(&c->workers[i]->hand_over);
  if (held > target && target > 0) {
    for (size_t i = c->n_workers; i-- > 0;) {
      struct worker *w = c->workers[i];
      if (!atomic_load(&w->done) && !atomic_load(&w->hand_over)) {
        atomic_store(&w->hand_over, true);
        break; /* one a look: the others see it free and take it */
      }
    }
  }
  pthread_mutex_unlock(&c->mu);
  for (size_t i = 0; i < n; i++) {
    if (!kinesis_shard_readable(shards, finished, n, i) ||
        !kinesis_lease_may_take(kinesis_lease_state(&rows[i], c->owner, now),
                                held, target) ||
        working_on(c, shards[i].id))
      continue;
    take(c, shards[i].id, &rows[i]);
    held++;
  }
out:
  free(rows);
  free(finished);
  free(others);
}

static void *coordinator_main(void *arg) {
  struct consumer *c = arg;
  struct kinesis_shard *shards = NULL;
  size_t n = 0;
  uint64_t listed_ms = 0;
  bool listed = false;
  unsigned failures = 0;
  while (!stopping(c)) {
    uint64_t now = clock_now_ms();
    if (!listed || now - listed_ms >= TS_KINESIS_LIST_MS) {
      struct kinesis_shard *fresh = NULL;
      size_t m = 0;
      enum ts_status st = list_shards(c, &fresh, &m);
      if (st == TS_OK) {
        free(shards);
        shards = fresh;
        n = m;
        listed = true;
        listed_ms = now;
        failures = 0;
      } else {
        log_event(LOG_WARN, "kinesis ListShards failed", "{s:s, s:s}", "stream",
                  c->stream, "status", ts_status_name(st));
        if (!listed) {
          nap(c, backoff_pause_ms(c->o.poll_ms, TS_KINESIS_BACKOFF_CAP_MS,
                                  ++failures));
          continue;
        }
      }
    }
    /* A worker that read its shard to the end (a split or merge) makes
     * its children readable: list again at once, they may be new. */
    if (reap(c))
      listed_ms = 0;
    balance(c, shards, n);
    nap(c, TS_KINESIS_SCAN_LEASES_MS);
  }
  member_release(c);
  free(shards);
  return NULL;
}

/* ---- life cycle ---- */

static void make_owner(char out[TS_KINESIS_OWNER_BYTES]) {
  char host[64] = "host";
  if (gethostname(host, sizeof host) != 0)
    snprintf(host, sizeof host, "host");
  host[sizeof host - 1] = '\0';
  snprintf(out, TS_KINESIS_OWNER_BYTES, "%s-%ld-%08x", host, (long)getpid(),
           (unsigned)(backoff_random() & 0xffffffffu));
}

enum ts_status consumer_start(struct store *store,
                              const struct consumer_options *opt,
                              struct consumer **out) {
  enum ts_status st = TS_ERR_INVALID;
  *out = NULL;
  struct consumer *c = calloc(1, sizeof *c);
  if (!c)
    return TS_ERR_NOMEM;
  pthread_mutex_init(&c->mu, NULL);
  pthread_cond_init(&c->cv, NULL);
  c->store = store;
  c->member_slot = -1;
  c->o = *opt;
  c->o.lease_ms = opt->lease_ms ? opt->lease_ms : TS_KINESIS_LEASE_MS;
  c->o.poll_ms = opt->poll_ms ? opt->poll_ms : TS_KINESIS_POLL_MS;
  c->o.limit = opt->limit ? opt->limit : TS_KINESIS_GET_RECORDS_LIMIT;
  kinesis_stream_name(opt->stream, c->stream);
  if (!c->stream[0] || c->o.limit > TS_KINESIS_MAX_GET_RECORDS_LIMIT) {
    log_event(LOG_ERROR, "kinesis: not a stream name or ARN", "{s:s}", "stream",
              opt->stream ? opt->stream : "");
    goto fail;
  }
  st = TS_ERR_NOMEM;
  if (strncmp(opt->stream, "arn:", 4) == 0 &&
      !(c->stream_arn = strdup(opt->stream)))
    goto fail;
  c->o.stream = NULL; /* borrowed: not kept */
  if (opt->owner && *opt->owner)
    snprintf(c->owner, sizeof c->owner, "%s", opt->owner);
  else
    make_owner(c->owner);
  if ((st = ddb_client_from_env_for(DDB_SERVICE_KINESIS, &c->creds, &c->kinesis,
                                    NULL)) != TS_OK)
    goto fail;
  st = TS_ERR_NOMEM;
  if (pthread_create(&c->coordinator, NULL, coordinator_main, c) != 0)
    goto fail;
  c->coordinator_started = true;
  log_event(LOG_INFO, "kinesis consumer started", "{s:s, s:s, s:s, s:i, s:i}",
            "stream", c->stream, "endpoint", ddb_client_endpoint(c->kinesis),
            "owner", c->owner, "lease_ms", (int)c->o.lease_ms, "limit",
            (int)c->o.limit);
  *out = c;
  return TS_OK;
fail:
  consumer_stop(c);
  return st;
}

void consumer_stop(struct consumer *c) {
  if (!c)
    return;
  pthread_mutex_lock(&c->mu);
  c->stopping = true;
  pthread_cond_broadcast(&c->cv);
  pthread_mutex_unlock(&c->mu);
  if (c->coordinator_started)
    pthread_join(c->coordinator, NULL);
  /* the workers release their leases as they return */
  for (size_t i = 0; i < c->n_workers; i++) {
    pthread_join(c->workers[i]->thread, NULL);
    free(c->workers[i]);
  }
  ddb_client_free(c->kinesis);
  aws_creds_provider_free(c->creds);
  free(c->stream_arn);
  pthread_cond_destroy(&c->cv);
  pthread_mutex_destroy(&c->mu);
  free(c);
}

void consumer_totals(struct consumer *c, struct consumer_totals *out) {
  *out = (struct consumer_totals){
      .read = atomic_load(&c->read),
      .applied = atomic_load(&c->applied),
      .duplicates = atomic_load(&c->duplicates),
      .skipped = atomic_load(&c->skipped),
      .rejected = atomic_load(&c->rejected),
      .batches = atomic_load(&c->batches),
      .checkpoints = atomic_load(&c->checkpoints),
      .leases_taken = atomic_load(&c->taken),
      .leases_lost = atomic_load(&c->lost),
      .read_errors = atomic_load(&c->read_errors),
  };
  pthread_mutex_lock(&c->mu);
  for (size_t i = 0; i < c->n_workers; i++)
    out->shards_held += !atomic_load(&c->workers[i]->done);
  pthread_mutex_unlock(&c->mu);
}

size_t consumer_shards(struct consumer *c, struct consumer_shard *out,
                       size_t cap) {
  size_t k = 0;
  pthread_mutex_lock(&c->mu);
  for (size_t i = 0; i < c->n_workers && k < cap; i++) {
    struct worker *w = c->workers[i];
    if (atomic_load(&w->done))
      continue;
    snprintf(out[k].shard, sizeof out[k].shard, "%s", w->shard);
    out[k].millis_behind = atomic_load(&w->millis_behind);
    out[k].records = atomic_load(&w->records);
    k++;
  }
  pthread_mutex_unlock(&c->mu);
  return k;
}

const char *consumer_owner(const struct consumer *c) { return c->owner; }
