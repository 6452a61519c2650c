/* archive.h - a dataset source read as a stream of entries: a folder (walked in sorted order) or a
 * .tar, .tar.gz, .tar.zst, .zip, ... read with libarchive without extracting anything to disk.
 * Unsafe entries (absolute paths, "..", links, devices) are reported, never followed. */
#ifndef LATHE_IO_ARCHIVE_H
#define LATHE_IO_ARCHIVE_H
#include <stddef.h>
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif

typedef struct lathe_archive lathe_archive;

typedef struct {
    const char *path;          /* relative, '/'-separated, no leading "./"; valid until the next call */
    int64_t size;              /* declared size, -1 if unknown (zip data descriptors: never trusted) */
    const char *reject_reason; /* non-NULL: the entry must be skipped for this reason ("unsafe_path", */
    const char *reject_detail; /*   "not_regular_file"), with a human detail */
} lathe_entry;

/* Opens a folder or an archive file. Returns 0 or a negative code (-LATHE_ENOTFOUND, -LATHE_EFORMAT). */
int lathe_archive_open(const char *src, lathe_archive **out);
/* Moves to the next entry: 1 with *entry filled, 0 at the end, or a negative code when the archive
 * itself is damaged (the message says where). Directories are skipped. */
int lathe_archive_next(lathe_archive *a, lathe_entry *entry);
/* Reads the data of the current entry (only once per entry). Fails with -LATHE_ELIMIT when it holds
 * more than max_bytes (counted as read, not as declared). *data is malloc'ed (NUL-terminated for
 * convenience, not counted in *len). */
int lathe_archive_read(lathe_archive *a, uint64_t max_bytes, uint8_t **data, size_t *len);
void lathe_archive_close(lathe_archive *a);
/* 1 when src names a folder, 0 when a file. */
int lathe_archive_is_folder(const char *src);

#ifdef __cplusplus
}
#endif
#endif
