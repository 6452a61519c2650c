/* bench_embed.c - the lathe side of the text benchmark (run.sh): loads the text encoder once, then
 * embeds the sentences of a file REPS times at a batch size and prints one JSON line with the
 * median sentences per second. usage: bench_embed MODEL_DIR SENTENCES.txt BATCH REPS THREADS */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "libcore/base/error.h"
#include "libcore/base/fsutil.h"
#include "libcore/mm/text_encoder.h"

void openblas_set_num_threads(int);

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: bench_embed MODEL_DIR SENTENCES.txt BATCH REPS THREADS\n");
        return 2;
    }
    int batch = atoi(argv[3]), reps = atoi(argv[4]), threads = atoi(argv[5]);
    omp_set_num_threads(threads), openblas_set_num_threads(threads);
    char *data = NULL;
    size_t len = 0, n = 0;
    lathe_text_encoder *enc = NULL;
    if (lathe_read_file(argv[2], 1 << 26, &data, &len) || lathe_text_encoder_open(argv[1], "cpu", &enc)) {
        fprintf(stderr, "bench_embed: %s\n", lathe_last_error());
        return 1;
    }
    char **lines = malloc((len + 1) * sizeof *lines);
    for (char *s = strtok(data, "\n"); s; s = strtok(NULL, "\n")) lines[n++] = s;
    float *out = malloc(n * (size_t)lathe_text_encoder_dim(enc) * sizeof *out);
    double *rate = malloc((size_t)(reps + 1) * sizeof *rate);
    if (lathe_text_encode(enc, (const char *const *)lines, n < 8 ? n : 8, batch, out)) return 1; /* warm-up */
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        if (lathe_text_encode(enc, (const char *const *)lines, n, batch, out)) {
            fprintf(stderr, "bench_embed: %s\n", lathe_last_error());
            return 1;
        }
        rate[r] = (double)n / (now() - t0);
    }
    qsort(rate, (size_t)reps, sizeof *rate, by_value);
    printf("{\"sentences\": %zu, \"batch\": %d, \"sentences_per_s\": %.2f}\n", n, batch, rate[reps / 2]);
    lathe_text_encoder_free(enc);
    free(rate), free(out), free(lines), free(data);
    return 0;
}
