/* failio.c - an LD_PRELOAD shim for tests/interop/test_io_errors.py: makes chosen write calls fail
 * with an errno, as a dying disk does (EIO surfaces at write or at fsync), for files whose path
 * contains a given text. Built by the test itself (cc -shared -fPIC).
 *
 *   FAILIO_CALLS   comma list of fsync, fdatasync, write, pwrite (pwrite covers pwrite64)
 *   FAILIO_PATH    only files whose /proc/self/fd path contains this text (default: every file)
 *   FAILIO_AFTER   this many matching calls succeed first (default 0)
 *   FAILIO_ERRNO   the errno to fail with (default EIO)
 *
 * Standard input, output and error are never failed. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

static long matched;

static int wants(const char *call, int fd) {
    const char *calls = getenv("FAILIO_CALLS"), *path = getenv("FAILIO_PATH"), *after = getenv("FAILIO_AFTER");
    if (!calls || fd <= 2) return 0;
    size_t n = strlen(call);
    const char *p = calls;
    int listed = 0;
    while ((p = strstr(p, call)) != NULL) { /* a whole item of the comma list */
        if ((p == calls || p[-1] == ',') && (p[n] == '\0' || p[n] == ',')) listed = 1;
        p += n;
    }
    if (!listed) return 0;
    if (path && *path) {
        char link[64], target[4096];
        snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
        ssize_t len = readlink(link, target, sizeof target - 1);
        if (len < 0) return 0;
        target[len] = '\0';
        if (!strstr(target, path)) return 0;
    }
    long skip = after ? atol(after) : 0;
    return __atomic_fetch_add(&matched, 1, __ATOMIC_SEQ_CST) >= skip;
}

static int fail(void) {
    const char *e = getenv("FAILIO_ERRNO");
    errno = e ? atoi(e) : EIO;
    return -1;
}

int fsync(int fd) {
    static int (*real)(int);
    if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    return wants("fsync", fd) ? fail() : real(fd);
}

int fdatasync(int fd) {
    static int (*real)(int);
    if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    return wants("fdatasync", fd) ? fail() : real(fd);
}

ssize_t write(int fd, const void *buf, size_t n) {
    static ssize_t (*real)(int, const void *, size_t);
    if (!real) real = (ssize_t (*)(int, const void *, size_t))dlsym(RTLD_NEXT, "write");
    return wants("write", fd) ? fail() : real(fd, buf, n);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off) {
    static ssize_t (*real)(int, const void *, size_t, off_t);
    if (!real) real = (ssize_t (*)(int, const void *, size_t, off_t))dlsym(RTLD_NEXT, "pwrite");
    return wants("pwrite", fd) ? fail() : real(fd, buf, n, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off) {
    static ssize_t (*real)(int, const void *, size_t, off_t);
    if (!real) real = (ssize_t (*)(int, const void *, size_t, off_t))dlsym(RTLD_NEXT, "pwrite64");
    return wants("pwrite", fd) ? fail() : real(fd, buf, n, off);
}
