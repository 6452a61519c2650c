/* tokenize.c - a test helper (tests/interop/test_tokenizer.py): lathe's WordPiece tokenizer on each
 * line of stdin, its ids on one line of stdout, separated by spaces.
 *   tokenize MODEL_DIR MAX_LEN < lines
 * Lines are split on '\n' only (a trailing '\r' is part of the text; so are NUL bytes); a last line
 * without '\n' counts, an input that ends in '\n' has no empty line after it. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libcore/base/error.h"
#include "libcore/mm/wordpiece.h"

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: tokenize MODEL_DIR MAX_LEN < lines\n");
        return 2;
    }
    char *end;
    long max_len = strtol(argv[2], &end, 10);
    if (*end || max_len < 2 || max_len > 1 << 24) {
        fprintf(stderr, "tokenize: MAX_LEN must be an integer in [2, %d]\n", 1 << 24);
        return 2;
    }
    lathe_wordpiece *t;
    if (lathe_wordpiece_open(argv[1], &t)) {
        fprintf(stderr, "tokenize: %s\n", lathe_last_error());
        return 1;
    }
    size_t len = 0, cap = 1 << 16;
    char *text = malloc(cap);
    int32_t *ids = malloc(sizeof *ids * (size_t)max_len);
    if (!text || !ids) return fprintf(stderr, "tokenize: out of memory\n"), 1;
    for (size_t n; (n = fread(text + len, 1, cap - len, stdin)) > 0;) {
        len += n;
        if (len == cap && !(text = realloc(text, cap *= 2))) return fprintf(stderr, "tokenize: out of memory\n"), 1;
    }
    if (ferror(stdin)) return fprintf(stderr, "tokenize: cannot read stdin\n"), 1;
    for (size_t at = 0; at < len;) {
        char *nl = memchr(text + at, '\n', len - at);
        size_t n = nl ? (size_t)(nl - (text + at)) : len - at;
        int count = lathe_wordpiece_encode(t, text + at, n, (int)max_len, ids);
        if (count < 0) return fprintf(stderr, "tokenize: %s\n", lathe_last_error()), 1;
        for (int i = 0; i < count; i++) printf(i ? " %d" : "%d", ids[i]);
        putchar('\n');
        at += n + 1;
    }
    free(text), free(ids);
    lathe_wordpiece_free(t);
    return fflush(stdout) || ferror(stdout) ? 1 : 0;
}
