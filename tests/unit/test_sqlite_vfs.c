/* suite_sqlite_vfs: a writer on the gathering VFS (store/sqlite_vfs.h) at
 * synchronous=FULL. What it commits is at once what another connection on
 * the default VFS reads, whatever the shape of the transaction, and it is
 * all there after the writer closes and the file is opened again. */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/bounds.h"
#include "store/sqlite_vfs.h"
#include "unit.h"

static char dir[64], path[96];

/* page_size applies when the file is new. */
static sqlite3 *open_db(const char *vfs, int page_size) {
  sqlite3 *db = NULL;
  char sql[128];
  int rc = sqlite3_open_v2(path, &db,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, vfs);
  CU_ASSERT_FATAL(rc == SQLITE_OK);
  snprintf(sql, sizeof sql,
           "PRAGMA page_size = %d; PRAGMA journal_mode = WAL;"
           " PRAGMA synchronous = FULL;",
           page_size);
  CU_ASSERT_FATAL(sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK);
  return db;
}

static int exec(sqlite3 *db, const char *sql) {
  return sqlite3_exec(db, sql, NULL, NULL, NULL);
}

/* count(*), sum(length(v)) of t, as the reader sees them. */
static void read_totals(sqlite3 *db, long long *rows, long long *bytes) {
  sqlite3_stmt *s = NULL;
  *rows = *bytes = -1;
  if (sqlite3_prepare_v2(db, "SELECT count(*), total(length(v)) FROM t", -1, &s,
                         NULL) == SQLITE_OK &&
      sqlite3_step(s) == SQLITE_ROW) {
    *rows = sqlite3_column_int64(s, 0);
    *bytes = (long long)sqlite3_column_double(s, 1);
  }
  sqlite3_finalize(s);
}

/* Inserts n rows of `size` random bytes in one transaction. */
static int insert(sqlite3 *db, int n, int size) {
  char sql[160];
  snprintf(sql, sizeof sql,
           "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c "
           "WHERE i < %d) INSERT INTO t(v) SELECT randomblob(%d) FROM c",
           n, size);
  return exec(db, sql);
}

/* Each transaction's frames take another path through the VFS: one page
 * (gathered, written at the sync), pages past the gathering buffer (written
 * when it fills), a row bigger than the buffer (overflow pages), a
 * transaction bigger than the page cache (SQLite spills frames and reads
 * them back before the commit), and updates in place. With 64 KiB pages a
 * frame is bigger than the buffer and is written as it comes. */
static void run_steps(int page_size) {
  static const struct {
    const char *name;
    int rows, size;  /* inserted, when rows > 0 */
    const char *sql; /* else run */
  } steps[] = {
      {"one small row", 1, 10, NULL},
      {"pages past the buffer", 40, 3000, NULL},
      {"a row bigger than the buffer", 1, 3 * TS_SQLITE_WAL_GATHER_BYTES, NULL},
      {"a small cache, frames spilled and read back", 0, 0,
       "PRAGMA cache_size = 4; BEGIN;"
       " WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c"
       " WHERE i < 300) INSERT INTO t(v) SELECT randomblob(900) FROM c;"
       " UPDATE t SET v = randomblob(900) WHERE id % 7 = 0; COMMIT;"
       " PRAGMA cache_size = -2000;"},
      {"updates in place", 0, 0,
       "UPDATE t SET v = randomblob(length(v)) WHERE id % 3 = 0"},
      {"many small transactions' worth in one", 500, 20, NULL},
  };
  snprintf(dir, sizeof dir, "/tmp/ts-vfs-XXXXXX");
  CU_ASSERT_FATAL(mkdtemp(dir) != NULL);
  snprintf(path, sizeof path, "%s/t.db", dir);
  const char *vfs = NULL;
  CU_ASSERT_FATAL(sqlite_vfs_gather_name(&vfs) == TS_OK && vfs);

  sqlite3 *w = open_db(vfs, page_size);
  CU_ASSERT_FATAL(exec(w, "CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)") ==
                  SQLITE_OK);
  sqlite3 *r = open_db(NULL, page_size);
  long long rows = 0, bytes = 0;
  for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
    int rc = steps[i].rows ? insert(w, steps[i].rows, steps[i].size)
                           : exec(w, steps[i].sql);
    TS_CHECK_CASE(rc == SQLITE_OK, steps[i].name, "page size %d: %s", page_size,
                  sqlite3_errmsg(w));
    long long wrows, wbytes, rrows, rbytes;
    read_totals(w, &wrows, &wbytes);
    read_totals(r, &rrows, &rbytes);
    TS_CHECK_CASE(wrows == rrows && wbytes == rbytes &&
                      wrows >= rows + (steps[i].rows ? steps[i].rows : 0),
                  steps[i].name,
                  "page size %d: writer %lld rows %lld bytes, reader %lld "
                  "rows %lld bytes",
                  page_size, wrows, wbytes, rrows, rbytes);
    rows = wrows;
    bytes = wbytes;
  }
  CU_ASSERT(sqlite3_close(r) == SQLITE_OK);
  CU_ASSERT(sqlite3_close(w) == SQLITE_OK);

  sqlite3 *again = open_db(NULL, page_size);
  long long arows, abytes;
  read_totals(again, &arows, &abytes);
  TS_CHECK_CASE(arows == rows && abytes == bytes, "reopened",
                "%lld rows %lld bytes, want %lld and %lld", arows, abytes, rows,
                bytes);
  sqlite3_stmt *s = NULL;
  CU_ASSERT(sqlite3_prepare_v2(again, "PRAGMA integrity_check", -1, &s, NULL) ==
                SQLITE_OK &&
            sqlite3_step(s) == SQLITE_ROW &&
            strcmp((const char *)sqlite3_column_text(s, 0), "ok") == 0);
  sqlite3_finalize(s);
  CU_ASSERT(sqlite3_close(again) == SQLITE_OK);
  char f[128];
  static const char *const suffix[] = {"", "-wal", "-shm"};
  for (size_t i = 0; i < 3; i++) {
    snprintf(f, sizeof f, "%s%s", path, suffix[i]);
    (void)unlink(f);
  }
  (void)rmdir(dir);
}

static void test_what_the_writer_commits_the_reader_sees_at_once(void) {
  static const int page_sizes[] = {4096, 65536};
  for (size_t i = 0; i < sizeof page_sizes / sizeof page_sizes[0]; i++)
    run_steps(page_sizes[i]);
}

void suite_sqlite_vfs(void) {
  TS_SUITE("sqlite_vfs",
           TS_TEST(test_what_the_writer_commits_the_reader_sees_at_once));
}
