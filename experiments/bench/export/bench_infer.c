/* bench_infer.c - the lathe side of the export benchmark (run.sh beside this file), timed over whole
 * batches of random input:
 *   bench_infer graph RUN CHECKPOINT BATCH REPS THREADS   the run's model on lathe's training graph
 *       (unfused: BN and dropout as their own layers); a detector's time includes what its ONNX
 *       export computes after the head: every anchor's box decoded, every score through the sigmoid
 *   bench_infer engine ENGINE BATCH REPS THREADS          the exported engine through the C API
 *       (BN folded; a detector's time includes lathe_engine_run's decoding and NMS at conf 0.25)
 * Prints one JSON line: batch, ms_per_batch (median of REPS after 3 warm-ups), images_per_s. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "libcore/base/config.h"
#include "libcore/base/error.h"
#include "kernels/det_decode.h"
#include "libcore/det/decode.h"
#include "libcore/export/engine.h"
#include "libcore/nn/checkpoint.h"
#include "libcore/nn/graph.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void report(double *ms, int reps, int batch) {
    qsort(ms, (size_t)reps, sizeof *ms, by_value);
    double med = ms[reps / 2];
    printf("{\"batch\": %d, \"ms_per_batch\": %.3f, \"images_per_s\": %.2f}\n", batch, med, batch * 1e3 / med);
}

static int bench_engine(const char *path, int batch, int reps) {
    lathe_engine *e;
    if (lathe_engine_open(path, "cpu", batch, &e)) return fprintf(stderr, "bench_infer: %s\n", lathe_last_error()), 1;
    const lathe_engine_info *in = lathe_engine_get_info(e);
    size_t n = (size_t)batch * in->c * in->h * in->w;
    float *x = malloc(sizeof(float) * n), *logits = malloc(sizeof(float) * (size_t)batch * in->classes);
    lathe_detection *dets = malloc(sizeof *dets * (size_t)batch * 100);
    int *counts = malloc(sizeof(int) * (size_t)batch);
    double *ms = malloc(sizeof(double) * (size_t)reps);
    if (!x || !logits || !dets || !counts || !ms) return fprintf(stderr, "bench_infer: out of memory\n"), 1;
    unsigned s = 1;
    for (size_t i = 0; i < n; i++) x[i] = (float)((s = s * 1103515245u + 12345u) >> 8) / 16777216.0f;
    lathe_engine_output out = {logits, dets, counts};
    for (int r = -3; r < reps; r++) {
        double t0 = now();
        if (lathe_engine_run_f32(e, x, batch, &out)) return fprintf(stderr, "bench_infer: %s\n", lathe_last_error()), 1;
        if (r >= 0) ms[r] = (now() - t0) * 1e3;
    }
    report(ms, reps, batch);
    free(x), free(logits), free(dets), free(counts), free(ms);
    lathe_engine_close(e);
    return 0;
}

int main(int argc, char **argv) {
    int engine = argc == 6 && !strcmp(argv[1], "engine");
    if (!engine && (argc != 7 || strcmp(argv[1], "graph"))) {
        fprintf(stderr, "usage: bench_infer graph RUN CHECKPOINT BATCH REPS THREADS\n"
                        "       bench_infer engine ENGINE BATCH REPS THREADS\n");
        return 2;
    }
    argv++, argc--; /* the mode */
    if (engine) {
        int batch = atoi(argv[2]), reps = atoi(argv[3]), threads = atoi(argv[4]);
        if (batch < 1 || reps < 1 || threads < 1) return fprintf(stderr, "bench_infer: bad numbers\n"), 2;
        omp_set_num_threads(threads);
        return bench_engine(argv[1], batch, reps);
    }
    int batch = atoi(argv[3]), reps = atoi(argv[4]), threads = atoi(argv[5]);
    if (batch < 1 || reps < 1 || threads < 1) return fprintf(stderr, "bench_infer: bad numbers\n"), 2;
    omp_set_num_threads(threads);
    char cfg[4200];
    snprintf(cfg, sizeof cfg, "%s/config.yaml", argv[1]);
    cJSON *spec = NULL;
    lathe_graph *g = NULL;
    int rc = lathe_config_load(cfg, &spec);
    if (!rc) rc = lathe_graph_build(lathe_config_get(spec, "model"), batch, 0, &g);
    if (!rc) rc = lathe_checkpoint_load(argv[2], g, NULL);
    if (rc) return fprintf(stderr, "bench_infer: %s\n", lathe_last_error()), 1;
    lathe_graph_set_train(g, 0);
    int c, h, w, k, strides[8], levels = lathe_graph_detect_levels(g, strides, 8);
    float *x = lathe_graph_input(g, &c, &h, &w);
    unsigned s = 1;
    for (size_t i = 0; i < (size_t)batch * c * h * w; i++) x[i] = (float)((s = s * 1103515245u + 12345u) >> 8) / 16777216.0f;
    int bins = (int)lathe_config_num(spec, "model.bins", 16), classes = (int)lathe_config_num(spec, "model.classes", 1);
    int A = levels > 0 ? lathe_det_anchors(h, w, strides, levels, NULL, NULL) : 0;
    float *points = malloc(sizeof(float) * 2 * (A + 1)), *stride = malloc(sizeof(float) * (A + 1));
    float *boxes = malloc(sizeof(float) * 4 * ((size_t)batch * A + 1)), *scores = malloc(sizeof(float) * ((size_t)batch * A * classes + 1));
    double *ms = malloc(sizeof(double) * (size_t)reps);
    if (!points || !stride || !boxes || !scores || !ms) return fprintf(stderr, "bench_infer: out of memory\n"), 1;
    if (A) lathe_det_anchors(h, w, strides, levels, points, stride);
    for (int r = -3; r < reps; r++) {
        double t0 = now();
        lathe_graph_forward(g, batch, 0);
        const float *y = lathe_graph_output(g, &k);
        if (A) { /* what the ONNX graph computes after the head */
            int V = 4 * bins + classes;
            for (int i = 0; i < batch; i++) {
                const float *rows = y + (size_t)i * A * V;
                lathe_k_dfl_decode_cpu(A, bins, V, rows, points, stride, boxes + (size_t)i * A * 4);
                for (int a = 0; a < A; a++)
                    for (int j = 0; j < classes; j++)
                        scores[((size_t)i * A + a) * classes + j] = 1 / (1 + expf(-rows[(size_t)a * V + 4 * bins + j]));
            }
        }
        if (r >= 0) ms[r] = (now() - t0) * 1e3;
    }
    report(ms, reps, batch);
    free(points), free(stride), free(boxes), free(scores), free(ms);
    lathe_graph_free(g);
    cJSON_Delete(spec);
    return 0;
}
