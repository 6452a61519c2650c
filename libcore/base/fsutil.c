/* fsutil.c - durable file replacement and small file helpers (see fsutil.h). */
#include "fsutil.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"

void lathe_dirname(const char *path, char *out, size_t cap) {
    const char *slash = strrchr(path, '/');
    if (!slash) {
        snprintf(out, cap, ".");
        return;
    }
    size_t n = slash == path ? 1 : (size_t)(slash - path);
    if (n >= cap) n = cap - 1;
    memcpy(out, path, n);
    out[n] = '\0';
}

int lathe_fsync_path(const char *path) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return lathe_fail(LATHE_EIO, "%s: %s", path, strerror(errno));
    int rc = fsync(fd);
    int err = errno;
    close(fd);
    /* some file systems refuse fsync on folders; that is not a data-loss risk we can fix */
    if (rc != 0 && err != EINVAL) return lathe_fail(LATHE_EIO, "fsync %s: %s", path, strerror(err));
    return 0;
}

int lathe_rename_durable(const char *tmp, const char *path) {
    int rc = lathe_fsync_path(tmp);
    if (rc) return rc;
    if (rename(tmp, path) != 0) return lathe_fail(LATHE_EIO, "rename %s -> %s: %s", tmp, path, strerror(errno));
    char dir[4096];
    lathe_dirname(path, dir, sizeof dir);
    return lathe_fsync_path(dir);
}

int lathe_write_atomic(const char *path, const void *data, size_t len) {
    /* a hidden temporary of its own (DIR/.NAME.XXXXXX.tmp), so two processes replacing one file
     * never write into each other's temporary: the last rename wins, whole. A killed writer's
     * temporary is removed by the folder's next writer (lathe_folder_lock). */
    char tmp[4200], dir[4096];
    lathe_dirname(path, dir, sizeof dir);
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    if (snprintf(tmp, sizeof tmp, "%s/.%s" LATHE_TEMP_SUFFIX, dir, base) >= (int)sizeof tmp)
        return lathe_fail(LATHE_EINVAL, "path too long: %s", path);
    int fd = mkstemps(tmp, 4); /* the XXXXXX before ".tmp" */
    if (fd < 0) return lathe_fail(LATHE_EIO, "%s: %s", path, strerror(errno));
    FILE *f = fdopen(fd, "wb");
    if (!f) {
        int err = errno;
        close(fd), unlink(tmp);
        return lathe_fail(LATHE_EIO, "%s: %s", tmp, strerror(err));
    }
    size_t n = fwrite(data, 1, len, f);
    int err = errno, mode = fchmod(fd, 0644); /* mkstemp makes 0600; outputs are for readers too */
    int closed = fclose(f);
    if (n != len || closed != 0 || mode != 0) {
        if (n == len) err = errno;
        unlink(tmp);
        return lathe_fail(LATHE_EIO, "writing %s: %s", tmp, strerror(err));
    }
    int rc = lathe_rename_durable(tmp, path);
    if (rc) unlink(tmp);
    return rc;
}

int lathe_is_atomic_temp(const char *name) {
    size_t len = strlen(name), tail = strlen(LATHE_TEMP_SUFFIX);
    if (name[0] != '.' || len < tail + 2 || strcmp(name + len - 4, ".tmp") != 0 || name[len - tail] != '.') return 0;
    for (size_t i = len - tail + 1; i < len - 4; i++)
        if (!isalnum((unsigned char)name[i])) return 0;
    return 1;
}

int lathe_mkdirs(const char *path) {
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(buf, 0777) != 0 && errno != EEXIST) return lathe_fail(LATHE_EIO, "mkdir %s: %s", buf, strerror(errno));
        *p = '/';
    }
    if (mkdir(buf, 0777) != 0 && errno != EEXIST) return lathe_fail(LATHE_EIO, "mkdir %s: %s", buf, strerror(errno));
    return 0;
}

int lathe_read_file(const char *path, size_t max_bytes, char **data, size_t *len) {
    *data = NULL;
    *len = 0;
    struct stat pre;
    if (stat(path, &pre) == 0 && !S_ISREG(pre.st_mode) && !S_ISDIR(pre.st_mode)) /* a FIFO would block the open */
        return lathe_fail(LATHE_EIO, "%s is not a regular file", path);
    FILE *f = fopen(path, "rb");
    if (!f) return lathe_fail(errno == ENOENT ? LATHE_ENOTFOUND : LATHE_EIO, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0) {
        fclose(f);
        return lathe_fail(LATHE_EIO, "%s: %s", path, strerror(errno));
    }
    if (S_ISDIR(st.st_mode)) {
        fclose(f);
        return lathe_fail(LATHE_EIO, "%s is a folder, not a file", path);
    }
    if ((uint64_t)st.st_size > max_bytes) {
        fclose(f);
        return lathe_fail(LATHE_ELIMIT, "%s: %lld bytes is over %zu", path, (long long)st.st_size, max_bytes);
    }
    char *buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        fclose(f);
        return lathe_fail(LATHE_ENOMEM, "%s: %lld bytes", path, (long long)st.st_size);
    }
    size_t n = fread(buf, 1, (size_t)st.st_size, f);
    fclose(f);
    if (n != (size_t)st.st_size) {
        free(buf);
        return lathe_fail(LATHE_EIO, "%s: short read", path);
    }
    buf[n] = '\0';
    *data = buf;
    *len = n;
    return 0;
}

int lathe_mkdirs_writable(const char *path) {
    char probe[4300];
    snprintf(probe, sizeof probe, "%s/.write-test", path);
    int rc = lathe_mkdirs(path);
    if (!rc) rc = lathe_write_atomic(probe, "", 0);
    if (rc) return lathe_fail_context(rc, "cannot write to %s", path);
    unlink(probe);
    return 0;
}
