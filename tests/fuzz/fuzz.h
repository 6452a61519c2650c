/* fuzz.h - helpers shared by the libFuzzer targets (tests/fuzz/fuzz_*.c, built by `make fuzz`): one
 * private temporary folder per process (removed at exit), files written into it, and NUL-terminated
 * copies of the input. Every target treats a library error as a fine outcome: only a crash, a
 * sanitizer report, a leak or a hang is a finding. */
#ifndef LATHE_TESTS_FUZZ_H
#define LATHE_TESTS_FUZZ_H
#include <ftw.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char fuzz_dir_path[4096];

static inline int fuzz_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static inline void fuzz_rm_dir(void) {
    if (fuzz_dir_path[0]) nftw(fuzz_dir_path, fuzz_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* The process's scratch folder under $TMPDIR (or /tmp), created on first use and removed at exit.
 * Aborts when it cannot be created: the harness, not the library, is broken then. */
static inline const char *fuzz_dir(void) {
    if (!fuzz_dir_path[0]) {
        const char *root = getenv("TMPDIR");
        snprintf(fuzz_dir_path, sizeof fuzz_dir_path, "%s/lathe-fuzz-XXXXXX", root && *root ? root : "/tmp");
        if (!mkdtemp(fuzz_dir_path)) {
            perror("fuzz: mkdtemp");
            abort();
        }
        atexit(fuzz_rm_dir);
    }
    return fuzz_dir_path;
}

/* Writes data to fuzz_dir()/name (replacing it) and puts its path into path. Aborts on failure. */
static inline void fuzz_write(const char *name, const void *data, size_t len, char *path, size_t cap) {
    snprintf(path, cap, "%s/%s", fuzz_dir(), name);
    FILE *f = fopen(path, "wb");
    if (!f || (len && fwrite(data, 1, len, f) != len) || fclose(f)) {
        perror(path);
        abort();
    }
}

/* A malloc'ed NUL-terminated copy of data (embedded NULs kept; most parsers then see a prefix). */
static inline char *fuzz_text(const uint8_t *data, size_t len) {
    char *s = malloc(len + 1);
    if (!s) abort();
    if (len) memcpy(s, data, len);
    s[len] = '\0';
    return s;
}

/* Splits data at its first NUL: *first_len bytes before it, and the rest after it in *second
 * (NULL, 0 when there is no NUL). Targets that take two inputs use it. */
static inline void fuzz_split(const uint8_t *data, size_t len, size_t *first_len, const uint8_t **second,
                              size_t *second_len) {
    const uint8_t *nul = len ? memchr(data, 0, len) : NULL;
    *first_len = nul ? (size_t)(nul - data) : len;
    *second = nul ? nul + 1 : NULL;
    *second_len = nul ? len - *first_len - 1 : 0;
}
#endif
