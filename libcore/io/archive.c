/* archive.c - entries of a folder (sorted walk, lstat: links and devices reported, not followed)
 * or of an archive streamed through libarchive (names checked here: libarchive's own path
 * protections apply only when extracting to disk). */
#include "archive.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../base/error.h"
#include "../base/utf8.h"

struct lathe_archive {
    /* folder */
    char *root;
    char **paths; /* sorted relative paths of every non-directory entry */
    size_t npaths, cappaths, next;
    /* archive */
    struct archive *ar;
    locale_t utf8; /* C.UTF-8 for reading entry headers ((locale_t)0 where the system has none) */
    char *name;    /* normalised current entry name */
    int data_read;
    long headers;     /* entry headers read so far */
    int ended;        /* the archive broke off: no entry follows */
    int skipping;     /* damaged headers are being skipped (one damaged_entry for the run of them) */
    int64_t sparse_size; /* a sparse entry's size (libarchive returns no bytes for one all hole); else -1 */
    char detail[640]; /* a damaged_entry's detail */
    /* both */
    char *current;
    char *shown; /* the current name with invalid UTF-8 repaired (NULL when it was valid) */
};

int lathe_archive_is_folder(const char *src) {
    struct stat st;
    return stat(src, &st) == 0 && S_ISDIR(st.st_mode);
}

static int add_path(lathe_archive *a, const char *rel) {
    if (a->npaths == a->cappaths) {
        size_t cap = a->cappaths ? a->cappaths * 2 : 256;
        char **p = realloc(a->paths, cap * sizeof *p);
        if (!p) return lathe_fail(LATHE_ENOMEM, "listing the source folder");
        a->paths = p;
        a->cappaths = cap;
    }
    if (!(a->paths[a->npaths] = strdup(rel))) return lathe_fail(LATHE_ENOMEM, "listing the source folder");
    a->npaths++;
    return 0;
}

static int by_name(const struct dirent **x, const struct dirent **y) { return strcmp((*x)->d_name, (*y)->d_name); }

/* Appends the entries under root/rel, depth first, names in byte order. */
static int walk(lathe_archive *a, const char *rel, int depth) {
    if (depth > 64) return lathe_fail(LATHE_ELIMIT, "%s: folders nested deeper than 64", rel);
    char dir[4096];
    snprintf(dir, sizeof dir, "%s%s%s", a->root, *rel ? "/" : "", rel);
    struct dirent **names;
    int n = scandir(dir, &names, NULL, by_name);
    if (n < 0) return lathe_fail(LATHE_EIO, "%s: %s", dir, strerror(errno));
    int rc = 0;
    for (int i = 0; i < n; i++) {
        const char *name = names[i]->d_name;
        if (!rc && strcmp(name, ".") && strcmp(name, "..")) {
            char child[4096], full[4096];
            snprintf(child, sizeof child, "%s%s%s", rel, *rel ? "/" : "", name);
            snprintf(full, sizeof full, "%s/%s", a->root, child);
            struct stat st;
            if (lstat(full, &st) != 0) rc = lathe_fail(LATHE_EIO, "%s: %s", full, strerror(errno));
            else if (S_ISDIR(st.st_mode)) rc = walk(a, child, depth + 1);
            else rc = add_path(a, child);
        }
        free(names[i]);
    }
    free(names);
    return rc;
}

static int open_folder(lathe_archive *a, const char *src) {
    if (!(a->root = strdup(src))) return lathe_fail(LATHE_ENOMEM, "source path");
    size_t n = strlen(a->root);
    while (n > 1 && a->root[n - 1] == '/') a->root[--n] = '\0';
    return walk(a, "", 0);
}

static int open_file(lathe_archive *a, const char *src) {
    if (access(src, R_OK) != 0) return lathe_fail(LATHE_ENOTFOUND, "%s: %s", src, strerror(errno));
    a->ar = archive_read_new();
    if (!a->ar) return lathe_fail(LATHE_ENOMEM, "archive reader");
    a->utf8 = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
    archive_read_support_filter_all(a->ar);
    archive_read_support_format_all(a->ar);
    if (archive_read_open_filename(a->ar, src, 1 << 16) != ARCHIVE_OK)
        return lathe_fail(LATHE_EFORMAT, "%s: %s", src, archive_error_string(a->ar));
    return 0;
}

int lathe_archive_open(const char *src, lathe_archive **out) {
    *out = NULL;
    struct stat st;
    if (stat(src, &st) != 0) return lathe_fail(LATHE_ENOTFOUND, "%s: %s", src, strerror(errno));
    lathe_archive *a = calloc(1, sizeof *a);
    if (!a) return lathe_fail(LATHE_ENOMEM, "archive");
    int rc = S_ISDIR(st.st_mode) ? open_folder(a, src) : open_file(a, src);
    if (rc) {
        lathe_archive_close(a);
        return rc;
    }
    *out = a;
    return 0;
}

/* Normalises an archive name in place-free fashion into a->name; returns the reason it is unsafe. */
static const char *normalise(lathe_archive *a, const char *raw, const char **detail) {
    free(a->name);
    a->name = NULL;
    *detail = NULL;
    if (!raw || !*raw) {
        *detail = "entry without a name";
        return "unsafe_path";
    }
    while (raw[0] == '.' && raw[1] == '/') raw += 2;
    if (!(a->name = strdup(raw))) {
        *detail = "out of memory";
        return "unsafe_path";
    }
    if (raw[0] == '/' || raw[0] == '\\' || (raw[0] && raw[1] == ':')) {
        *detail = "absolute path";
        return "unsafe_path";
    }
    /* every component: no "..", no backslash tricks; empty and "." components dropped, so that
     * a//b.jpg and a/./b.jpg are the a/b.jpg an extractor would write (a duplicate_entry) */
    char *out = a->name;
    for (const char *p = a->name; *p;) {
        const char *end = strchr(p, '/');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if ((n == 2 && p[0] == '.' && p[1] == '.') || memchr(p, '\\', n)) {
            *detail = "path leaves the archive root";
            return "unsafe_path";
        }
        if (n && !(n == 1 && p[0] == '.')) {
            if (out != a->name) *out++ = '/';
            memmove(out, p, n), out += n;
        }
        p += n + (end ? 1 : 0);
    }
    *out = 0;
    if (!*a->name) {
        *detail = "entry without a name";
        return "unsafe_path";
    }
    return NULL;
}

/* name as valid UTF-8: as it is, or with each byte that starts no valid sequence made U+FFFD (a
 * GNU tar or a folder may hold Latin-1 names; rejects.jsonl and the shards' UTF-8 strings may not) */
static const char *utf8_name(lathe_archive *a, const char *name) {
    free(a->shown);
    a->shown = NULL;
    if (lathe_utf8_valid(name, strlen(name))) return name;
    a->shown = lathe_utf8_repair(name);
    return a->shown ? a->shown : name;
}

/* libarchive's own finding about the data (a truncated file, a bad header), not an I/O error: its
 * ARCHIVE_ERRNO_FILE_FORMAT and ARCHIVE_ERRNO_MISC, which are EILSEQ and -1 on Linux (defined in
 * its archive_platform.h, which is not installed) */
static int format_error(struct archive *ar) {
    int e = archive_errno(ar);
    return e == EILSEQ || e == -1 || e == 0;
}

/* A damaged_entry for what could not be read after the current entry (where the archive broke off,
 * or a header libarchive skipped): good entries before it are still ingested, as bad input never
 * stops the run; a broken first header is no archive at all and fails (lathe_archive_next). */
static int damaged_after(lathe_archive *a, lathe_entry *entry, int retry) {
    snprintf(a->detail, sizeof a->detail, "%s: %s",
             retry ? "a damaged header after this entry was skipped" : "the archive breaks off after this entry",
             archive_error_string(a->ar));
    entry->path = a->name ? utf8_name(a, a->name) : "(the archive's first entry)";
    entry->size = -1;
    entry->reject_reason = "damaged_entry";
    entry->reject_detail = a->detail;
    a->data_read = 1; /* nothing to read */
    a->ended = !retry;
    return 1;
}

int lathe_archive_next(lathe_archive *a, lathe_entry *entry) {
    memset(entry, 0, sizeof *entry);
    a->data_read = 0;
    if (!a->ar) {
        if (a->next >= a->npaths) return 0;
        a->current = a->paths[a->next++];
        entry->path = utf8_name(a, a->current);
        char full[4096];
        snprintf(full, sizeof full, "%s/%s", a->root, a->current);
        struct stat st;
        if (lstat(full, &st) != 0) return lathe_fail(LATHE_EIO, "%s: %s", full, strerror(errno));
        entry->size = st.st_size;
        if (!S_ISREG(st.st_mode)) {
            entry->reject_reason = "not_regular_file";
            entry->reject_detail = S_ISLNK(st.st_mode) ? "symbolic link (not followed)" : "device, fifo or socket";
        }
        return 1;
    }
    while (!a->ended) {
        struct archive_entry *ae;
        /* libarchive converts a name the archive marks as UTF-8 (a zip's flag bit 11, which Python's
         * zipfile sets on non-ASCII names; a pax header's path) into the thread's locale; in the C
         * locale lathe runs in, a non-ASCII name has no conversion and the entry comes back nameless.
         * Headers are read in C.UTF-8 instead, this thread only, so such names arrive as the UTF-8
         * that a folder's or a GNU tar's raw names already are. */
        locale_t caller = a->utf8 ? uselocale(a->utf8) : (locale_t)0;
        int r = archive_read_next_header(a->ar, &ae), got = r == ARCHIVE_OK || r == ARCHIVE_WARN;
        const char *raw = got ? archive_entry_pathname(ae) : NULL;
        int hardlink = got && archive_entry_hardlink(ae) != NULL;
        if (a->utf8) uselocale(caller);
        if (r == ARCHIVE_EOF) return 0;
        if (r == ARCHIVE_RETRY && a->skipping) continue;
        if (r == ARCHIVE_RETRY || (r < ARCHIVE_WARN && a->headers > 0 && format_error(a->ar)))
            return a->skipping = 1, damaged_after(a, entry, r == ARCHIVE_RETRY);
        if (r < ARCHIVE_WARN) return lathe_fail(LATHE_EFORMAT, "damaged archive: %s", archive_error_string(a->ar));
        a->headers++, a->skipping = 0;
        mode_t type = archive_entry_filetype(ae);
        if (type == AE_IFDIR) continue;
        const char *detail;
        const char *reason = normalise(a, raw, &detail);
        entry->path = a->name ? utf8_name(a, a->name) : "";
        entry->size = archive_entry_size_is_set(ae) ? archive_entry_size(ae) : -1;
        a->sparse_size = archive_entry_sparse_count(ae) > 0 ? entry->size : -1;
        if (reason) {
            entry->reject_reason = reason;
            entry->reject_detail = detail;
        } else if (hardlink || type != AE_IFREG) {
            entry->reject_reason = "not_regular_file";
            entry->reject_detail = type == AE_IFLNK ? "symbolic link (not followed)"
                                   : hardlink       ? "hard link (not followed)"
                                                                : "device, fifo or socket";
        }
        return 1;
    }
    return 0;
}

static int read_folder_entry(lathe_archive *a, uint64_t max_bytes, uint8_t **data, size_t *len) {
    char full[4096];
    snprintf(full, sizeof full, "%s/%s", a->root, a->current);
    int fd = open(full, O_RDONLY | O_NOFOLLOW);
    if (fd < 0) return lathe_fail(LATHE_EIO, "%s: %s", full, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return lathe_fail(LATHE_EIO, "%s: not a regular file", full);
    }
    if ((uint64_t)st.st_size > max_bytes) {
        close(fd);
        return lathe_fail(LATHE_ELIMIT, "%lld bytes is over the entry limit of %llu", (long long)st.st_size,
                          (unsigned long long)max_bytes);
    }
    uint8_t *buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        close(fd);
        return lathe_fail(LATHE_ENOMEM, "%lld bytes for %s", (long long)st.st_size, full);
    }
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        got += (size_t)n;
    }
    close(fd);
    if (got != (size_t)st.st_size) {
        free(buf);
        return lathe_fail(LATHE_EIO, "%s: short read", full);
    }
    buf[got] = 0;
    *data = buf;
    *len = got;
    return 0;
}

static int read_archive_entry(lathe_archive *a, uint64_t max_bytes, uint8_t **data, size_t *len) {
    size_t cap = 1 << 16, got = 0;
    uint8_t *buf = malloc(cap + 1);
    if (!buf) return lathe_fail(LATHE_ENOMEM, "entry buffer");
    for (;;) {
        if (got == cap) {
            if (cap >= max_bytes) { /* full: an entry of exactly max_bytes ends here */
                uint8_t probe;
                la_ssize_t more = archive_read_data(a->ar, &probe, 1);
                if (more == 0) break;
                free(buf);
                if (more < 0) return lathe_fail(LATHE_EFORMAT, "damaged entry: %s", archive_error_string(a->ar));
                return lathe_fail(LATHE_ELIMIT, "more than %llu bytes (entry limit)", (unsigned long long)max_bytes);
            }
            size_t cap2 = cap * 2 > max_bytes ? (size_t)max_bytes : cap * 2;
            uint8_t *p = realloc(buf, cap2 + 1);
            if (!p) {
                free(buf);
                return lathe_fail(LATHE_ENOMEM, "out of memory for an entry buffer of %zu bytes", cap2);
            }
            buf = p;
            cap = cap2;
        }
        la_ssize_t n = archive_read_data(a->ar, buf + got, cap - got);
        if (n == 0) break;
        if (n < 0) {
            free(buf);
            return lathe_fail(LATHE_EFORMAT, "damaged entry: %s", archive_error_string(a->ar));
        }
        got += (size_t)n;
    }
    if (a->sparse_size > (int64_t)got && (uint64_t)a->sparse_size <= max_bytes) {
        /* a sparse entry that is all hole reads as no bytes (libarchive 3.6; a trailing hole after
         * data is filled): its bytes are zeros, as tar extracts them and Python's tarfile reads them */
        uint8_t *p = realloc(buf, (size_t)a->sparse_size + 1);
        if (!p) {
            free(buf);
            return lathe_fail(LATHE_ENOMEM, "out of memory for an entry of %lld bytes", (long long)a->sparse_size);
        }
        buf = p;
        memset(buf + got, 0, (size_t)a->sparse_size - got);
        got = (size_t)a->sparse_size;
    }
    if (got > max_bytes || a->sparse_size > (int64_t)max_bytes) {
        free(buf);
        return lathe_fail(LATHE_ELIMIT, "more than %llu bytes (entry limit)", (unsigned long long)max_bytes);
    }
    buf[got] = 0;
    *data = buf;
    *len = got;
    return 0;
}

int lathe_archive_read(lathe_archive *a, uint64_t max_bytes, uint8_t **data, size_t *len) {
    *data = NULL;
    *len = 0;
    if (a->data_read) return lathe_fail(LATHE_EINVAL, "entry data already read");
    a->data_read = 1;
    return a->ar ? read_archive_entry(a, max_bytes, data, len) : read_folder_entry(a, max_bytes, data, len);
}

void lathe_archive_close(lathe_archive *a) {
    if (!a) return;
    if (a->ar) archive_read_free(a->ar);
    if (a->utf8) freelocale(a->utf8);
    for (size_t i = 0; i < a->npaths; i++) free(a->paths[i]);
    free(a->paths);
    free(a->root);
    free(a->name);
    free(a->shown);
    free(a);
}
