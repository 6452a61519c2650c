/* fsutil.h - file-system steps that crash safety rests on: atomic replace (write a temporary,
 * fsync, rename, fsync the folder), whole-file reads and folder creation. */
#ifndef LATHE_BASE_FSUTIL_H
#define LATHE_BASE_FSUTIL_H
#include <stddef.h>
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif

/* The temporaries lathe_write_atomic makes: DIR/.NAME.XXXXXX.tmp (six random characters). */
#define LATHE_TEMP_SUFFIX ".XXXXXX.tmp"
/* Replaces path with data atomically: readers see the old or the new content, never a mix.
 * Returns 0 or -LATHE_EIO. */
int lathe_write_atomic(const char *path, const void *data, size_t len);
/* 1 when a file name (no folder) has the form of a lathe_write_atomic temporary, else 0. */
int lathe_is_atomic_temp(const char *name);
/* fsyncs a file, or a folder (so that renames inside it are durable). Returns 0 or -LATHE_EIO. */
int lathe_fsync_path(const char *path);
/* fsyncs tmp, renames it to path and fsyncs the folder. Returns 0 or -LATHE_EIO. */
int lathe_rename_durable(const char *tmp, const char *path);
/* Creates a folder and its parents (like mkdir -p). Returns 0 or -LATHE_EIO. */
int lathe_mkdirs(const char *path);
/* Creates folder path (like lathe_mkdirs) and tries a write there, so a folder that cannot take
 * output fails before the work, not after it. Returns 0 or -LATHE_EIO naming the folder. */
int lathe_mkdirs_writable(const char *path);
/* Reads a whole file (NUL-terminated, not counted) of at most max_bytes. Returns 0 or a negative
 * code (-LATHE_ENOTFOUND, -LATHE_ELIMIT, -LATHE_EIO). */
int lathe_read_file(const char *path, size_t max_bytes, char **data, size_t *len);
/* The folder part of path written to out ("." when none). */
void lathe_dirname(const char *path, char *out, size_t cap);

#ifdef __cplusplus
}
#endif
#endif
