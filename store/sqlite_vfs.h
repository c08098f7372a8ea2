/* A VFS over SQLite's default one that gathers the write-ahead log's writes.
 *
 * SQLite writes each WAL frame with two pwrite calls (its 24-byte header,
 * then the page), so a group commit of a dozen records made about a
 * hundred system calls before its one fsync (docs/BENCHMARKS.md, change
 * 15). Through this VFS a WAL file's writes that follow each other are
 * kept in one buffer (TS_SQLITE_WAL_GATHER_BYTES) and written with one call
 * when anything else happens to the file: a sync, a read, a truncate, its
 * size asked, a write elsewhere, the buffer full, or the close. Every other
 * file, and every other call, goes to the default VFS unchanged.
 *
 * Contract: only for a connection at synchronous=FULL. There SQLite syncs
 * the WAL at every commit before it publishes the new frames in the
 * wal-index, so no other connection can look for a frame still in the
 * buffer. At NORMAL a commit does not sync: open with the default VFS. */
#ifndef TS_STORE_SQLITE_VFS_H
#define TS_STORE_SQLITE_VFS_H

#include "../common/status.h"

/* Registers the VFS once (thread-safe) and sets *name to pass to
 * sqlite3_open_v2. */
enum ts_status sqlite_vfs_gather_name(const char **name) TS_WARN_UNUSED;

#endif /* TS_STORE_SQLITE_VFS_H */
