#include "sqlite_vfs.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "../common/bounds.h"

#define VFS_NAME "ts-wal-gather"

/* Our file; the default VFS's file follows it in the same allocation. */
struct wfile {
  sqlite3_file base;
  sqlite3_file *real;
  unsigned char *buf; /* TS_SQLITE_WAL_GATHER_BYTES once written to */
  size_t len;         /* bytes gathered, to go at off */
  sqlite3_int64 off;
};

static sqlite3_vfs *real_vfs;

#define REAL(f) (((struct wfile *)(f))->real)
#define RM(f) (REAL(f)->pMethods)

/* Writes what is gathered. On failure the bytes stay gathered, so that a
 * later flush (the close's) tries again; SQLite rolls the transaction back
 * on the error it gets now. */
static int flush(struct wfile *w) {
  if (w->len == 0)
    return SQLITE_OK;
  int rc = w->real->pMethods->xWrite(w->real, w->buf, (int)w->len, w->off);
  if (rc == SQLITE_OK)
    w->len = 0;
  return rc;
}

static int g_write(sqlite3_file *f, const void *data, int amt,
                   sqlite3_int64 off) {
  struct wfile *w = (struct wfile *)f;
  size_t n = (size_t)amt;
  if (w->len && off == w->off + (sqlite3_int64)w->len &&
      w->len + n <= TS_SQLITE_WAL_GATHER_BYTES) {
    memcpy(w->buf + w->len, data, n);
    w->len += n;
    return SQLITE_OK;
  }
  int rc = flush(w);
  if (rc != SQLITE_OK)
    return rc;
  if (n > TS_SQLITE_WAL_GATHER_BYTES)
    return RM(f)->xWrite(REAL(f), data, amt, off);
  if (!w->buf && !(w->buf = malloc(TS_SQLITE_WAL_GATHER_BYTES)))
    return RM(f)->xWrite(REAL(f), data, amt, off); /* unbuffered, still right */
  memcpy(w->buf, data, n);
  w->len = n;
  w->off = off;
  return SQLITE_OK;
}

static int g_close(sqlite3_file *f) {
  struct wfile *w = (struct wfile *)f;
  int rc = flush(w);
  int rc2 = RM(f)->xClose(REAL(f));
  free(w->buf);
  w->buf = NULL;
  w->len = 0;
  return rc != SQLITE_OK ? rc : rc2;
}

/* The calls that see the file: what is gathered goes first. */
static int g_read(sqlite3_file *f, void *data, int amt, sqlite3_int64 off) {
  int rc = flush((struct wfile *)f);
  return rc != SQLITE_OK ? rc : RM(f)->xRead(REAL(f), data, amt, off);
}
static int g_truncate(sqlite3_file *f, sqlite3_int64 size) {
  int rc = flush((struct wfile *)f);
  return rc != SQLITE_OK ? rc : RM(f)->xTruncate(REAL(f), size);
}
static int g_sync(sqlite3_file *f, int flags) {
  int rc = flush((struct wfile *)f);
  return rc != SQLITE_OK ? rc : RM(f)->xSync(REAL(f), flags);
}
static int g_file_size(sqlite3_file *f, sqlite3_int64 *size) {
  int rc = flush((struct wfile *)f);
  return rc != SQLITE_OK ? rc : RM(f)->xFileSize(REAL(f), size);
}
static int g_file_control(sqlite3_file *f, int op, void *arg) {
  int rc = flush((struct wfile *)f);
  return rc != SQLITE_OK ? rc : RM(f)->xFileControl(REAL(f), op, arg);
}
static int g_fetch(sqlite3_file *f, sqlite3_int64 off, int amt, void **pp) {
  *pp = NULL;
  int rc = flush((struct wfile *)f);
  return rc != SQLITE_OK ? rc : RM(f)->xFetch(REAL(f), off, amt, pp);
}

/* The rest as they are. */
static int p_write(sqlite3_file *f, const void *data, int amt,
                   sqlite3_int64 off) {
  return RM(f)->xWrite(REAL(f), data, amt, off);
}
static int p_close(sqlite3_file *f) { return RM(f)->xClose(REAL(f)); }
static int p_read(sqlite3_file *f, void *data, int amt, sqlite3_int64 off) {
  return RM(f)->xRead(REAL(f), data, amt, off);
}
static int p_truncate(sqlite3_file *f, sqlite3_int64 size) {
  return RM(f)->xTruncate(REAL(f), size);
}
static int p_sync(sqlite3_file *f, int flags) {
  return RM(f)->xSync(REAL(f), flags);
}
static int p_file_size(sqlite3_file *f, sqlite3_int64 *size) {
  return RM(f)->xFileSize(REAL(f), size);
}
static int p_file_control(sqlite3_file *f, int op, void *arg) {
  return RM(f)->xFileControl(REAL(f), op, arg);
}
static int p_fetch(sqlite3_file *f, sqlite3_int64 off, int amt, void **pp) {
  return RM(f)->xFetch(REAL(f), off, amt, pp);
}
static int p_lock(sqlite3_file *f, int lock) {
  return RM(f)->xLock(REAL(f), lock);
}
static int p_unlock(sqlite3_file *f, int lock) {
  return RM(f)->xUnlock(REAL(f), lock);
}
static int p_check_reserved(sqlite3_file *f, int *out) {
  return RM(f)->xCheckReservedLock(REAL(f), out);
}
static int p_sector_size(sqlite3_file *f) {
  return RM(f)->xSectorSize(REAL(f));
}
static int p_device(sqlite3_file *f) {
  return RM(f)->xDeviceCharacteristics(REAL(f));
}
static int p_shm_map(sqlite3_file *f, int pg, int pgsz, int extend,
                     void volatile **pp) {
  return RM(f)->xShmMap(REAL(f), pg, pgsz, extend, pp);
}
static int p_shm_lock(sqlite3_file *f, int offset, int n, int flags) {
  return RM(f)->xShmLock(REAL(f), offset, n, flags);
}
static void p_shm_barrier(sqlite3_file *f) { RM(f)->xShmBarrier(REAL(f)); }
static int p_shm_unmap(sqlite3_file *f, int del) {
  return RM(f)->xShmUnmap(REAL(f), del);
}
static int p_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p) {
  return RM(f)->xUnfetch(REAL(f), off, p);
}

/* Version 3 tables; used only over a default file of version 3 (xOpen). */
static const sqlite3_io_methods gather_methods = {
    3,           g_close,          g_read,         g_write,
    g_truncate,  g_sync,           g_file_size,    p_lock,
    p_unlock,    p_check_reserved, g_file_control, p_sector_size,
    p_device,    p_shm_map,        p_shm_lock,     p_shm_barrier,
    p_shm_unmap, g_fetch,          p_unfetch};

static const sqlite3_io_methods pass_methods = {
    3,           p_close,          p_read,         p_write,
    p_truncate,  p_sync,           p_file_size,    p_lock,
    p_unlock,    p_check_reserved, p_file_control, p_sector_size,
    p_device,    p_shm_map,        p_shm_lock,     p_shm_barrier,
    p_shm_unmap, p_fetch,          p_unfetch};

static int v_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f,
                  int flags, int *out_flags) {
  (void)vfs;
  struct wfile *w = (struct wfile *)f;
  memset(w, 0, sizeof *w);
  w->real = (sqlite3_file *)(w + 1);
  int rc = real_vfs->xOpen(real_vfs, name, w->real, flags, out_flags);
  if (rc != SQLITE_OK || !w->real->pMethods) {
    w->base.pMethods = NULL; /* SQLite then calls no xClose */
    return rc != SQLITE_OK ? rc : SQLITE_CANTOPEN;
  }
  if (w->real->pMethods->iVersion < 3) {
    /* not the unix VFS this was written against: leave it alone */
    w->real->pMethods->xClose(w->real);
    w->base.pMethods = NULL;
    return SQLITE_CANTOPEN;
  }
  w->base.pMethods =
      (flags & SQLITE_OPEN_WAL) ? &gather_methods : &pass_methods;
  return SQLITE_OK;
}

/* The VFS's own calls go to the default VFS with the default VFS's
 * handle (the unix VFS keeps state in it). */
static int v_delete(sqlite3_vfs *v, const char *name, int sync_dir) {
  (void)v;
  return real_vfs->xDelete(real_vfs, name, sync_dir);
}
static int v_access(sqlite3_vfs *v, const char *name, int flags, int *out) {
  (void)v;
  return real_vfs->xAccess(real_vfs, name, flags, out);
}
static int v_full_pathname(sqlite3_vfs *v, const char *name, int n, char *out) {
  (void)v;
  return real_vfs->xFullPathname(real_vfs, name, n, out);
}
static void *v_dl_open(sqlite3_vfs *v, const char *name) {
  (void)v;
  return real_vfs->xDlOpen(real_vfs, name);
}
static void v_dl_error(sqlite3_vfs *v, int n, char *msg) {
  (void)v;
  real_vfs->xDlError(real_vfs, n, msg);
}
static void (*v_dl_sym(sqlite3_vfs *v, void *h, const char *sym))(void) {
  (void)v;
  return real_vfs->xDlSym(real_vfs, h, sym);
}
static void v_dl_close(sqlite3_vfs *v, void *h) {
  (void)v;
  real_vfs->xDlClose(real_vfs, h);
}
static int v_randomness(sqlite3_vfs *v, int n, char *out) {
  (void)v;
  return real_vfs->xRandomness(real_vfs, n, out);
}
static int v_sleep(sqlite3_vfs *v, int us) {
  (void)v;
  return real_vfs->xSleep(real_vfs, us);
}
static int v_current_time(sqlite3_vfs *v, double *out) {
  (void)v;
  return real_vfs->xCurrentTime(real_vfs, out);
}
static int v_last_error(sqlite3_vfs *v, int n, char *out) {
  (void)v;
  return real_vfs->xGetLastError(real_vfs, n, out);
}
static int v_current_time64(sqlite3_vfs *v, sqlite3_int64 *out) {
  (void)v;
  return real_vfs->xCurrentTimeInt64(real_vfs, out);
}

static sqlite3_vfs gather_vfs;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static int registered = SQLITE_ERROR;

static void register_vfs(void) {
  real_vfs = sqlite3_vfs_find(NULL);
  if (!real_vfs || real_vfs->iVersion < 2 || !real_vfs->xCurrentTimeInt64)
    return;
  gather_vfs = (sqlite3_vfs){
      .iVersion = 2,
      .szOsFile = (int)sizeof(struct wfile) + real_vfs->szOsFile,
      .mxPathname = real_vfs->mxPathname,
      .zName = VFS_NAME,
      .xOpen = v_open,
      .xDelete = v_delete,
      .xAccess = v_access,
      .xFullPathname = v_full_pathname,
      .xDlOpen = v_dl_open,
      .xDlError = v_dl_error,
      .xDlSym = v_dl_sym,
      .xDlClose = v_dl_close,
      .xRandomness = v_randomness,
      .xSleep = v_sleep,
      .xCurrentTime = v_current_time,
      .xGetLastError = v_last_error,
      .xCurrentTimeInt64 = v_current_time64,
  };
  registered = sqlite3_vfs_register(&gather_vfs, 0);
}

enum ts_status sqlite_vfs_gather_name(const char **name) {
  pthread_once(&once, register_vfs);
  *name = registered == SQLITE_OK ? VFS_NAME : NULL;
  return registered == SQLITE_OK ? TS_OK : TS_ERR_IO;
}
