/* replay.c - a fuzz target without libFuzzer: runs its LLVMFuzzerTestOneInput once on each file
 * named, and on every file of each folder named, in name order. `make fuzz-memcheck` links each
 * target with this driver against the plain library and runs it under valgrind's memcheck, which
 * sees what the sanitizers of `make fuzz` cannot: values a library left unset (a decoder that
 * reports success without writing its outputs) being read, through code no sanitizer instrumented.
 * Exits 0 when every input ran (a library error is a fine outcome, as in the fuzzing build), 2 when
 * an input could not be read. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Runs the target on the file at path; 0 when it ran, -1 when the file could not be read. */
static int replay_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return -1;
    }
    uint8_t *data = NULL;
    size_t size = 0, cap = 0;
    for (;;) {
        if (size == cap) {
            cap = cap ? cap * 2 : 65536;
            uint8_t *grown = realloc(data, cap);
            if (!grown) {
                fprintf(stderr, "%s: out of memory\n", path);
                free(data);
                fclose(f);
                return -1;
            }
            data = grown;
        }
        size_t got = fread(data + size, 1, cap - size, f);
        size += got;
        if (got == 0) break;
    }
    int failed = ferror(f);
    fclose(f);
    if (failed) {
        perror(path);
        free(data);
        return -1;
    }
    /* an exact-size copy, so that a read one byte past the input is past a heap block */
    uint8_t *input = malloc(size ? size : 1);
    if (!input) {
        fprintf(stderr, "%s: out of memory\n", path);
        free(data);
        return -1;
    }
    if (size) memcpy(input, data, size);
    free(data);
    (void)LLVMFuzzerTestOneInput(input, size);
    free(input);
    return 0;
}

static int by_name(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Runs the target on every regular file of the folder dir, in name order; returns the inputs run,
 * or -1 when the folder or a file in it could not be read. */
static long replay_dir(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) {
        perror(dir);
        return -1;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    long result = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 256;
            char **grown = realloc(names, cap * sizeof *names);
            if (!grown) {
                fprintf(stderr, "%s: out of memory for its file names\n", dir);
                result = -1;
                break;
            }
            names = grown;
        }
        if (!(names[n] = strdup(e->d_name))) {
            fprintf(stderr, "%s: out of memory for its file names\n", dir);
            result = -1;
            break;
        }
        n++;
    }
    closedir(d);
    if (result == 0 && n) qsort(names, n, sizeof *names, by_name);
    for (size_t i = 0; i < n; i++) {
        char path[4096];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (result >= 0 && stat(path, &st) == 0 && S_ISREG(st.st_mode))
            result = replay_file(path) == 0 ? result + 1 : -1;
        free(names[i]);
    }
    free(names);
    return result;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE|FOLDER...\n", argv[0]);
        return 2;
    }
    long runs = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        long ran = stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode) ? replay_dir(argv[i])
                                                                   : (replay_file(argv[i]) == 0 ? 1 : -1);
        if (ran < 0) return 2;
        runs += ran;
    }
    fprintf(stderr, "%s: %ld inputs replayed\n", argv[0], runs);
    return 0;
}
