/* Every bound of the service in one place: buffers, queues, batch sizes,
 * deadlines. A value that is also configurable is the default here. */
#ifndef TS_COMMON_BOUNDS_H
#define TS_COMMON_BOUNDS_H

/* An aligned table reads better than wrapped comments: */
/* clang-format off */

/* HTTP */
#define TS_MAX_BODY_BYTES (6u * 1024u * 1024u) /* Lambda's 6 MB payload limit */
/* An ingest answer quotes the ids of rejected records from the body, and
 * escaping makes a byte at most six. */
#define TS_MAX_INGEST_REPLY_BYTES (6u * TS_MAX_BODY_BYTES + 4096u)
#define TS_MAX_URL_BYTES 4096u                 /* path + query, else 414 */
/* Connections (server/conn_guard.h). A phase's deadline is not extended
 * by bytes trickling in: the header block of a connection's first request,
 * the body, and the kept-alive idle time, which covers the next request's
 * header block and is above a load balancer's idle timeout (an ALB's is 60 s
 * by default, 30 s in deploy/), so the balancer closes first. */
#define TS_DEFAULT_MAX_CONNECTIONS 1024        /* TS_MAX_CONNECTIONS */
#define TS_MIN_CONNECTIONS 16u
#define TS_MAX_CONNECTIONS_LIMIT 65536u
#define TS_DEFAULT_HEADER_TIMEOUT_S 10         /* TS_HEADER_TIMEOUT_S */
#define TS_DEFAULT_BODY_TIMEOUT_S 30           /* TS_BODY_TIMEOUT_S */
#define TS_DEFAULT_KEEPALIVE_S 65              /* TS_KEEPALIVE_S */
#define TS_MAX_PHASE_TIMEOUT_S 3600u
#define TS_CONN_REAP_INTERVAL_MS 100u          /* how often deadlines are checked */
#define TS_CONN_RESERVE_DIVISOR 8u   /* evict when within limit/8 of the limit */
#define TS_CONN_EVICT_MIN_AGE_MS 50u  /* a client has sent its request by then */
#define TS_FD_HEADROOM 64u   /* descriptors beyond connections: store, logs */
/* MHD threads when TS_THREADS is 0 (the default): one per CPU on SQLite;
 * on DynamoDB four per CPU and at least this many (server/config.c). */
#define TS_MIN_AUTO_THREADS_DYNAMODB 8
#define TS_MAX_THREADS 256u
/* Ingestion never waits long for the store on an HTTP thread: it runs on
 * its own workers (server/workers.h), or on the embedded store is
 * committed by the store's committer thread (TS_DEFER_MAX_BODY_BYTES), or
 * on DynamoDB is tried on the HTTP thread for a short while first
 * (TS_INGEST_TRY_MS), so that a store that stalls never holds the HTTP
 * threads; past workers + queue batches in progress a POST is answered 429
 * with Retry-After at once. */
#define TS_DEFAULT_INGEST_WORKERS 16
#define TS_DEFAULT_INGEST_QUEUE 64
#define TS_MAX_INGEST_QUEUE 4096u
/* On the embedded store a batch whose body is at most this is decoded on
 * its HTTP thread and committed by the store's committer thread, which
 * resumes the connection (no worker between them); a larger one is
 * decoded and applied on a worker, so that no HTTP thread spends more
 * than a few milliseconds decoding while reads wait behind it. */
#define TS_DEFER_MAX_BODY_BYTES (64u * 1024u)
/* A request body's buffer is sized from Content-Length up to this at once,
 * so that a batch is not copied on every doubling; past it, it grows. */
#define TS_BODY_PRESIZE_MAX_BYTES (256u * 1024u)
/* On DynamoDB a batch whose body is at most TS_TRY_MAX_BODY_BYTES (a
 * Pipe's single records) is applied on its HTTP thread with at most
 * TS_INGEST_TRY_MS of its deadline: two thread hand-offs fewer when the
 * store answers at once. A try that runs out hands the batch to a worker
 * for the rest of its deadline and stops all tries for
 * TS_INGEST_TRY_PAUSE_MS, so a store that stalls holds each HTTP thread
 * at most about TS_INGEST_TRY_MS per pause. */
#define TS_TRY_MAX_BODY_BYTES 4096u
#define TS_INGEST_TRY_MS 100u
#define TS_INGEST_TRY_PAUSE_MS 1000u
#define TS_MAX_DRAIN_S 120u /* TS_DRAIN_S: the drain on SIGTERM */
#define TS_SHUTDOWN_GRACE_MS 10000u            /* SIGTERM: wait for in-flight */
#define TS_HEALTHCHECK_TIMEOUT_MS 2000u        /* `healthcheck` subcommand */

/* malloc (server/main.c). glibc hands a freed heap top back to the kernel
 * once it passes a threshold that starts at 128 KiB; a connection's 32 KiB
 * pool, allocated and freed per connection, kept crossing it, and every
 * page came back zero-filled through a fault (a quarter of the CPU of a
 * `Connection: close` GET). Free memory up to the trim bound
 * stays in each arena; blocks from the mmap bound up are mapped apart and
 * returned on free. The cost: up to the trim bound per arena stays
 * resident after a burst (arenas: one per CPU). */
#define TS_MALLOC_TRIM_BYTES (8u * 1024u * 1024u)
#define TS_MALLOC_MMAP_BYTES (1024u * 1024u)

/* JSON trees parsed from text (common/json_pool.h): nodes come from 64 KiB
 * chunks of one reserved address range; a node larger than
 * TS_JSON_POOL_MAX_NODE, or any node once the range is in use, is
 * malloc'ed as before. The range is reserved, not committed: what is
 * resident is what the trees alive at once have ever used. */
#define TS_JSON_POOL_BYTES (128u * 1024u * 1024u)
#define TS_JSON_POOL_CHUNK_BYTES (64u * 1024u)
#define TS_JSON_POOL_MAX_NODE 1024u

/* Many small strings freed together (common/arena.h): chunks from
 * TS_ARENA_MIN_CHUNK_BYTES, doubling up to TS_ARENA_MAX_CHUNK_BYTES. */
#define TS_ARENA_MIN_CHUNK_BYTES 512u
#define TS_ARENA_MAX_CHUNK_BYTES (64u * 1024u)

/* Ingestion */
#define TS_MAX_RECORDS_PER_BATCH 10000u        /* a Pipe's BatchSize maximum */
#define TS_MAX_PLAYER_BYTES 1024u              /* DynamoDB keys allow 2048 */
#define TS_MAX_EVENT_ID_BYTES 256u
#define TS_MAX_REASON_BYTES 512u
#define TS_MAX_REQUEST_ID_BYTES 128u /* X-Request-Id kept from a client */
#define TS_MAX_API_KEY_BYTES 1024u /* TS_INGEST_API_KEY_FILE's key */
#define TS_INGEST_DEADLINE_MS 4000u            /* well inside a Pipe's 5 s */
#define TS_RETRY_AFTER_S 1u                    /* Retry-After on 503 */

/* Exactly-once: the stream keeps a record 24 h; applied eventIDs are kept
 * longer so that any resend within the retention is recognised. */
#define TS_DEDUP_RETENTION_S (26u * 3600u)
/* A player may have this many eventIDs applied within the retention; past
 * it a record is rejected (dead-lettered). DynamoDB keeps them as 12-byte
 * digests outside the player's item, 24 bytes per chunk in it (below). */
#define TS_MAX_APPLIED_PER_PLAYER 25000u
/* DynamoDB (store/dynamodb.c): the player's item holds the digests of its
 * latest applications (`recent`, 16 bytes each); when a write would leave
 * more than RECENT_MAX there, all but the newest RECENT_KEEP first go to
 * immutable chunk items of the applied-log table (at most CHUNK_MAX
 * digests each, 48 KB) and the item keeps a 24-byte descriptor per chunk.
 * DynamoDB charges a write 1 unit per KB of the whole item: the item stays
 * near 1-2 KB for an ordinary player instead of growing 12 bytes a game. */
#define TS_APPLIED_RECENT_MAX 96u
#define TS_APPLIED_RECENT_KEEP 32u
#define TS_APPLIED_CHUNK_MAX 4096u
/* A spill joins the chunk spilled last when both fall in the same window
 * of this many seconds (and the two hold at most CHUNK_MAX): the item then
 * keeps at most one descriptor per window, about 10 within the retention,
 * however many games the player has, and a merged chunk's digests are kept
 * at most this much longer than the retention. */
#define TS_APPLIED_MERGE_WINDOW_S (3u * 3600u)
/* A chunk item expires (DynamoDB TTL) this long after its descriptor
 * leaves the player's item (at TS_DEDUP_RETENTION_S): never while read. */
#define TS_APPLIED_CHUNK_TTL_MARGIN_S 3600u
/* Write guesses (store/guess.h): entries kept (in sets of TS_GUESS_WAYS
 * per name hash), the most log bytes (`recent` + `chunks`) one may hold, so at most about
 * 17 MB (an ordinary player's entry is under 2 KB; 4 KB holds a player
 * with ~5,000 games a day, whose writes gain most); the trust score's cost
 * of a wrong guess (a right one earns 1), its ceiling, and the score from
 * which guesses are used. */
#define TS_GUESS_SLOTS 4096u
#define TS_GUESS_MAX_LOG_BYTES 4096u
#define TS_GUESS_WRONG_COST 8
#define TS_GUESS_TRUST_MAX 64
#define TS_GUESS_TRUST_MIN 16
/* A player's entry may sit in any slot of its name's set, and a new one
 * replaces the set's least recently used. With one slot per name hash,
 * 1,000 players in 4,096 slots shared a slot in about a fifth of the
 * cases, and each such pair evicted the other on every write. */
#define TS_GUESS_WAYS 4u
/* Player turns (store/turns.h): the table's slots, a power of two, so at
 * most 16,383 players held or waited for at once by the batches one
 * process applies (16 workers' batches of 100 players hold 1,600, and
 * wait for at most as many); past it a batch's players go on without a
 * turn, as they would without turns at all. */
#define TS_TURN_SLOTS 16384u

/* Scores: at most this many digits after the point, and magnitude below
 * 10^TS_SCORE_MAX_INT_DIGITS, so that sums of up to ~10^11 games stay
 * exact in a 128-bit coefficient (< 10^38, DynamoDB's precision). */
#define TS_SCORE_MAX_SCALE 12
#define TS_SCORE_MAX_INT_DIGITS 15
#define TS_DECIMAL_MAX_DIGITS 38               /* any stored decimal */

/* Backfill sessions (domain/backfill.h, ops/backfill.c). A player's
 * session state keeps at most this many item keys (~80 bytes each); past
 * it the session cannot be exact and the backfill stops (run it again at
 * a quieter time, or shorter with more segments). */
#define TS_BACKFILL_KEYS_PER_PLAYER 2000u
/* A replica re-reads whether a session is open at least this often; the
 * backfill waits this plus an ingest deadline before it scans, so that
 * every write from then on is tracked. */
#define TS_BACKFILL_SESSION_REFRESH_MS 1000u

/* Kinesis consumer (ops/consumer.h, domain/kinesis.h). A shard is read by
 * the holder of its lease (a row in the store); a lease lasts LEASE_MS
 * from its last write (TS_KINESIS_LEASE_MS), its holder renews it every
 * RENEW_MS (and with each checkpoint) and stops work on the shard once
 * LEASE_MS - MARGIN_MS has passed since its last successful write, so
 * that it has stopped before anyone may take the lease over (MARGIN_MS
 * covers clock skew between hosts and a GetRecords in flight). A read asks
 * for at most GET_RECORDS_LIMIT records (one store_apply batch, well under
 * TS_MAX_RECORDS_PER_BATCH); after a read with no records the shard rests
 * POLL_MS (TS_KINESIS_POLL_MS), after one with records MIN_GAP_MS (Kinesis
 * allows 5 GetRecords a second per shard); throttled or failing calls back
 * off from POLL_MS doubling to BACKOFF_CAP_MS. The shard list is re-read
 * every LIST_MS (splits and merges), leases are looked at every
 * SCAN_LEASES_MS. */
#define TS_KINESIS_LEASE_MS 10000              /* TS_KINESIS_LEASE_MS */
#define TS_KINESIS_MIN_LEASE_MS 1000u
#define TS_KINESIS_MAX_LEASE_MS 600000u
#define TS_KINESIS_RENEW_DIVISOR 3u            /* renew every lease/3 */
#define TS_KINESIS_MARGIN_DIVISOR 5u           /* stop lease/5 before its end */
#define TS_KINESIS_GET_RECORDS_LIMIT 1000      /* TS_KINESIS_BATCH */
#define TS_KINESIS_MAX_GET_RECORDS_LIMIT 10000u /* Kinesis's own limit */
#define TS_KINESIS_POLL_MS 1000                /* TS_KINESIS_POLL_MS */
#define TS_KINESIS_MAX_POLL_MS 60000u
#define TS_KINESIS_MIN_GAP_MS 200u
#define TS_KINESIS_BACKOFF_CAP_MS 10000u
#define TS_KINESIS_LIST_MS 10000u
#define TS_KINESIS_SCAN_LEASES_MS 1000u
#define TS_KINESIS_CALL_DEADLINE_MS 10000u     /* one Kinesis call, retries in */
#define TS_KINESIS_APPLY_DEADLINE_MS 30000u    /* one batch's store_apply */
#define TS_KINESIS_MAX_SHARDS 1024u            /* shards listed (open + closed) */
#define TS_KINESIS_MAX_WORKERS 64u             /* shards read at once by one process */
/* Consumers announce themselves in this many member rows (a lease row per
 * slot, "consumer-<i>"), so that each knows how many share the shards;
 * more consumers work, unannounced, on what is left free. */
#define TS_KINESIS_MAX_MEMBERS 16u
#define TS_KINESIS_ID_BYTES 256u  /* a stream name (128), shard id (128) */
#define TS_KINESIS_SEQ_BYTES 130u /* a sequence number: up to 128 digits */
#define TS_KINESIS_OWNER_BYTES 128u
#define TS_KINESIS_PROGRESS_MS 5000u           /* a progress line this often */

/* Queries */
#define TS_LIST_DEFAULT_LIMIT 50u
#define TS_LIST_MAX_LIMIT 1000u
#define TS_MAX_CURSOR_BYTES 4096u
#define TS_LEADERBOARD_DEFAULT_LIMIT 10u
/* The DynamoDB store answers leaderboards from a per-process top-K
 * snapshot (store/rank_cache.h): K rows per ranking, twice the largest
 * limit, so that players moving down can leave it before a refresh is
 * needed. */
#define TS_LEADERBOARD_TOP_K (2u * TS_LIST_MAX_LIMIT)
#define TS_LEADERBOARD_REFRESH_S 10u           /* TS_LEADERBOARD_REFRESH_S */
#define TS_MAX_LEADERBOARD_REFRESH_S 3600u
#define TS_LEADERBOARD_WAIT_MS 3000u     /* a request waits for a refresh */
#define TS_LEADERBOARD_REFRESH_DEADLINE_MS 120000u /* one whole refresh Scan */
/* Rows this process wrote while a refresh runs, or this long before it
 * began (an eventually consistent Scan may still read the older item),
 * are folded into its result (read your writes). Past JOURNAL_MAX rows
 * the result is dropped, the old snapshot (which has every write) stays,
 * and a later request refreshes again. */
#define TS_LEADERBOARD_WRITE_GRACE_MS 5000u
#define TS_LEADERBOARD_JOURNAL_MAX 65536u

/* Dead letters: a listed page, and what one replay call takes on (a
 * replay is one batch through store_apply, so it stays well inside
 * TS_MAX_RECORDS_PER_BATCH and the ingest deadline). */
#define TS_DEAD_LETTER_DEFAULT_LIMIT 50u
#define TS_DEAD_LETTER_MAX_LIMIT 100u
#define TS_REPLAY_DEFAULT_LIMIT 500u
#define TS_REPLAY_MAX_LIMIT 500u               /* also the most ids named */

/* Store */
#define TS_SQLITE_BUSY_TIMEOUT_MS 250u         /* per attempt; the runner retries */
/* The WAL is cut back to this size after a checkpoint (it is reused, not
 * shrunk, otherwise: a small disk would stay full). */
#define TS_SQLITE_WAL_LIMIT_BYTES (64 * 1024 * 1024)
/* The writer's WAL frames are gathered up to this much and written with
 * one call (store/sqlite_vfs.h). SQLite's unix VFS writes at most 128 KiB
 * - 1 bytes per call (it masks the length with 0x1ffff), so this stays
 * below; a group commit of 12 single records is about 200 KiB, 4 calls. */
#define TS_SQLITE_WAL_GATHER_BYTES (64u * 1024u)
/* The WAL is checkpointed once it holds this many pages (SQLite's default
 * is 1,000): a busy page is copied to the database once per checkpoint,
 * not once per 1,000 frames. 10,000 pages of 4 KiB is a WAL of about 41
 * MB, under TS_SQLITE_WAL_LIMIT_BYTES. The copying is done by a thread of
 * its own (store/sqlite.c); past TS_SQLITE_WAL_STALL_PAGES the writer
 * waits for it, so a disk slower than the writes bounds the WAL. */
#define TS_SQLITE_WAL_CHECKPOINT_PAGES 10000
#define TS_SQLITE_WAL_STALL_PAGES (3 * TS_SQLITE_WAL_CHECKPOINT_PAGES)
/* A checkpoint round flushes the database at most this many times, each
 * followed by a copy of what the writer appended during the flush. */
#define TS_SQLITE_CKPT_FLUSHES 3
/* A checkpoint failing the same way is logged again after this long. */
#define TS_SQLITE_CKPT_LOG_MS 60000u
/* applied_recent (store/recent.h): a cycle moving its pairs into
 * applied_events starts once it holds this many; each write transaction
 * of a cycle moves this many, or as many as it applies if more (one begun
 * before its batch came: as many as it expects, and the difference if
 * more come), scaled up when the cycle holds more than the first bound
 * (store/sqlite.c, move_slice).
 * The pairs are also held in memory (about 100 bytes each): past the last
 * bound every pair moves at once, in one transaction. */
#define TS_SQLITE_RECENT_MERGE_ROWS 16384u
#define TS_SQLITE_RECENT_SLICE_ROWS 256u
#define TS_SQLITE_RECENT_MAX_ROWS (4u * TS_SQLITE_RECENT_MERGE_ROWS)
/* A write transaction's new pairs go to applied_recent as JSON text, one
 * row per this many bytes or fewer (a row per transaction in practice);
 * the text of one pair is at most PAIR_TEXT bytes (every byte of its
 * strings escaped as \u00XX, the time, the punctuation). */
#define TS_SQLITE_PAIRS_ROW_BYTES (64u * 1024u)
#define TS_SQLITE_PAIR_TEXT_BYTES                                              \
  (6u * (TS_MAX_PLAYER_BYTES + TS_MAX_EVENT_ID_BYTES) + 64u)
/* The filter of applied_events' pairs (store/pair_filter.h): sized for
 * four times the pairs the table holds when it is built (between MIN and
 * MAX), 16 bits a pair, so at most 4 MiB. A larger table is served by a
 * filter of MAX pairs, overfull, up to MAX_LOAD times that: absent pairs
 * test true 0.5% of the time at its capacity, 3% at twice it, 17% at four
 * times (measured), so even then five new pairs in six skip the lookup;
 * it is built again once it has taken twice the pairs it was built with
 * (to forget the purged). A table of more than MAX * MAX_LOAD pairs goes
 * without (every new pair looked up). Built again
 * once no other connection has committed for QUIET ms, and no more often.
 * A build reads the table in slices, one per write transaction, of
 * SCAN_PER_RECORD keys for each record the transaction plans (at least
 * SCAN_MIN, at most SCAN_MAX): a millisecond or two of reading at most, where
 * a build in one go held a transaction 25 ms at 270,000 pairs. A table
 * found too large is read again after twice the last wait, from QUIET ms
 * up to TOO_LARGE_MAX ms. */
#define TS_SQLITE_FILTER_MIN_PAIRS 65536u
#define TS_SQLITE_FILTER_MAX_PAIRS (2u * 1024u * 1024u)
#define TS_SQLITE_FILTER_MAX_LOAD 4u
#define TS_SQLITE_FILTER_QUIET_MS 5000u
#define TS_SQLITE_FILTER_TOO_LARGE_MAX_MS (3600u * 1000u)
#define TS_SQLITE_FILTER_SCAN_PER_RECORD 16u
#define TS_SQLITE_FILTER_SCAN_MIN 2048u
#define TS_SQLITE_FILTER_SCAN_MAX 16384u
/* How long the committer, having begun a transaction for a batch on its
 * way (store_expect_write, or after a group of HTTP batches), waits for it
 * before committing the housekeeping alone. One sender's next batch comes
 * within a millisecond; parsing the largest body (6 MB) takes tens. Other
 * threads that need the writer end the wait at once, and so do other
 * processes of the service, which announce their wait (store/sqlite.c);
 * a writer that does not (the sqlite3 shell) waits it out. */
#define TS_SQLITE_EXPECT_WAIT_MS 50u
/* The writer's copy of player rows (store/row_cache.h): at most this many
 * rows and bytes of names, past which it forgets them all and fills again.
 * Its slots (twice the rows, about 80 bytes each) are touched as they fill:
 * 2.5 MiB at most, names aside. */
#define TS_SQLITE_ROW_CACHE_ROWS 16384u
#define TS_SQLITE_ROW_CACHE_NAME_BYTES (1024u * 1024u)
/* The writer's page cache, in KiB (SQLite's default is 2,000 KiB). Its
 * lookups in applied_events fall across the whole table, and a page it
 * misses is searched for in the WAL and read with a system call. Readers
 * keep the default: another connection's commit empties a reader's cache
 * at its next read, so a larger one would not stay warm. */
#define TS_SQLITE_WRITER_CACHE_KIB 8192u
#define TS_SQLITE_READER_CACHE_KIB 2000u
/* After a write failed for want of space (SQLITE_FULL), the store reports
 * not ready until the disk has this much free again or a write succeeds. */
#define TS_SQLITE_MIN_FREE_BYTES (4u * 1024u * 1024u)
#define TS_TX_MAX_ATTEMPTS 8u
#define TS_TX_BACKOFF_BASE_MS 5u
#define TS_TX_BACKOFF_CAP_MS 200u
/* AWS calls in flight at once per client (TS_DDB_MAX_IN_FLIGHT for the
 * store's), each on a connection of its own; more wait for a place. Every
 * thread applying a batch sends up to 32 at once (aws/ddb.c), so without a
 * bound the sum grows with TS_THREADS and TS_INGEST_WORKERS: 768 with the
 * defaults on 2 CPUs, which this default leaves unbound. At DynamoDB's few
 * milliseconds a call, 1024 carry over a hundred thousand calls a second.
 * A store on one CPU (dynalite, DynamoDB Local) fails connections under
 * such a load: 256 there gave no connection errors and no 503 with 32
 * senders of batches of 100, at about 12% fewer records a second
 * (docs/BENCHMARKS.md, change 35). */
#define TS_DEFAULT_DDB_MAX_IN_FLIGHT 1024 /* TS_DDB_MAX_IN_FLIGHT */
#define TS_MAX_DDB_MAX_IN_FLIGHT 4096u
/* DynamoDB's batch calls: what comes back unprocessed (throttled) is sent
 * again after a pause with full jitter, from this base doubling to this
 * cap, never past the call's deadline. */
#define TS_DDB_UNPROCESSED_BASE_MS 20u
#define TS_DDB_UNPROCESSED_CAP_MS 1000u

/* Source-table scans (ops/source.h: backfill and verify read TaTourney).
 * A parallel Scan: one thread per segment. A page asks for at most
 * PAGE_LIMIT items (DynamoDB also ends a page at 1 MB); under a read rate
 * (max_rcu) fewer, so that the pages of all segments in flight together
 * cost about 1/PAGE_RATE_DIVISOR of a second's budget: the last pages,
 * paid for after they are read, leave the scan's rate under max_rcu plus
 * that fraction of a second, with room for a page costing more than its
 * estimate. ddb_execute retries a page's call until PAGE_DEADLINE; a page that
 * still gave up is tried again PAGE_RETRIES times, with full-jitter
 * backoff (RETRY_BASE doubling to RETRY_CAP), before the scan fails:
 * about a minute of throttling or outage in all. */
#define TS_SCAN_SEGMENTS_DEFAULT 4u
#define TS_SCAN_SEGMENTS_MAX 16u
#define TS_SCAN_PAGE_LIMIT 1000u
#define TS_SCAN_PAGE_RATE_DIVISOR 2u
#define TS_SCAN_PAGE_DEADLINE_MS 10000u        /* also DescribeTable's */
#define TS_SCAN_PAGE_RETRIES 4u
#define TS_SCAN_RETRY_BASE_MS 1000u
#define TS_SCAN_RETRY_CAP_MS 8000u
#define TS_SCAN_PROGRESS_MS 1000u              /* a progress line this often */

/* SigV4: a canonical request, string to sign or Authorization header
 * (headers and hashes only; the payload is hashed, not copied) */
#define TS_MAX_SIGV4_TEXT_BYTES (64u * 1024u)

/* Responses */
#define TS_MAX_REPLY_BYTES (8u * 1024u * 1024u)
#define TS_MAX_LOG_LINE_BYTES 8192u

/* clang-format on */

#endif /* TS_COMMON_BOUNDS_H */
