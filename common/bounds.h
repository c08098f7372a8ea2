/* Every bound of the service in one place: buffers, queues, batch sizes,
 * deadlines. A value that is also configurable is the default here. */
#ifndef TS_COMMON_BOUNDS_H
#define TS_COMMON_BOUNDS_H

/* An aligned table reads better than wrapped comments: */
/* clang-format off */

/* HTTP */
#define TS_MAX_BODY_BYTES (6u * 1024u * 1024u) /* Lambda's 6 MB payload limit */
#define TS_MAX_URL_BYTES 4096u                 /* path + query, else 414 */
#define TS_MAX_CONNECTIONS 1024u
#define TS_CONNECTION_TIMEOUT_S 30u            /* idle connection */
#define TS_DEFAULT_THREADS 8                   /* MHD worker threads */
#define TS_MAX_THREADS 256u
/* Ingestion runs on its own workers (server/workers.h), so that a store
 * that stalls never holds the HTTP threads; past workers + queue a POST
 * is answered 429 with Retry-After at once. */
#define TS_DEFAULT_INGEST_WORKERS 16
#define TS_DEFAULT_INGEST_QUEUE 64
#define TS_MAX_INGEST_QUEUE 4096u
#define TS_MAX_DRAIN_S 120u /* TS_DRAIN_S: the drain on SIGTERM */
#define TS_SHUTDOWN_GRACE_MS 10000u            /* SIGTERM: wait for in-flight */
#define TS_HEALTHCHECK_TIMEOUT_MS 2000u        /* `healthcheck` subcommand */

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
/* DynamoDB keeps a player's applied eventIDs in the player's item (12-byte
 * digests): this many stay well below the 400 KB item limit. */
#define TS_MAX_APPLIED_PER_PLAYER 25000u

/* Scores: at most this many digits after the point, and magnitude below
 * 10^TS_SCORE_MAX_INT_DIGITS, so that sums of up to ~10^11 games stay
 * exact in a 128-bit coefficient (< 10^38, DynamoDB's precision). */
#define TS_SCORE_MAX_SCALE 12
#define TS_SCORE_MAX_INT_DIGITS 15
#define TS_DECIMAL_MAX_DIGITS 38               /* any stored decimal */

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

/* Store */
#define TS_SQLITE_BUSY_TIMEOUT_MS 250u         /* per attempt; the runner retries */
/* The WAL is cut back to this size after a checkpoint (it is reused, not
 * shrunk, otherwise: a small disk would stay full). */
#define TS_SQLITE_WAL_LIMIT_BYTES (64 * 1024 * 1024)
/* After a write failed for want of space (SQLITE_FULL), the store reports
 * not ready until the disk has this much free again or a write succeeds. */
#define TS_SQLITE_MIN_FREE_BYTES (4u * 1024u * 1024u)
#define TS_TX_MAX_ATTEMPTS 8u
#define TS_TX_BACKOFF_BASE_MS 5u
#define TS_TX_BACKOFF_CAP_MS 200u

/* SigV4: a canonical request, string to sign or Authorization header
 * (headers and hashes only; the payload is hashed, not copied) */
#define TS_MAX_SIGV4_TEXT_BYTES (64u * 1024u)

/* Responses */
#define TS_MAX_REPLY_BYTES (8u * 1024u * 1024u)
#define TS_MAX_LOG_LINE_BYTES 8192u

/* clang-format on */

#endif /* TS_COMMON_BOUNDS_H */
