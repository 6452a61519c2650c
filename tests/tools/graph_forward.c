/* graph_forward.c - a test helper (tests/interop/test_export.py): a run's model forward on given
 * inputs, the reference its ONNX export is compared with.
 *   graph_forward RUN CHECKPOINT INPUT.f32 N OUT
 * INPUT.f32: N x C x H x W float32 (normalized). Writes OUT.out.f32, the graph's output (N x K, or
 * a detector's N x A x V head rows), and for a detector OUT.boxes.f32 (N x A x 4, input pixels)
 * and OUT.scores.f32 (N x A x classes, after the sigmoid), decoded as lathe predicts. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libcore/base/config.h"
#include "libcore/base/error.h"
#include "libcore/det/decode.h"
#include "libcore/nn/checkpoint.h"
#include "libcore/nn/graph.h"

static int write_f32(const char *prefix, const char *what, const float *x, size_t n) {
    char path[4200];
    snprintf(path, sizeof path, "%s.%s.f32", prefix, what);
    FILE *f = fopen(path, "wb");
    int ok = f && fwrite(x, sizeof *x, n, f) == n;
    if (f && fclose(f)) ok = 0;
    return ok ? 0 : -1;
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: graph_forward RUN CHECKPOINT INPUT.f32 N OUT\n");
        return 2;
    }
    char cfg[4200];
    snprintf(cfg, sizeof cfg, "%s/config.yaml", argv[1]);
    int n = atoi(argv[4]);
    cJSON *spec = NULL;
    lathe_graph *g = NULL;
    int rc = lathe_config_load(cfg, &spec);
    if (!rc) rc = lathe_graph_build(lathe_config_get(spec, "model"), n, 0, &g);
    if (!rc) rc = lathe_checkpoint_load(argv[2], g, NULL);
    if (rc) {
        fprintf(stderr, "graph_forward: %s\n", lathe_last_error());
        return 1;
    }
    lathe_graph_set_train(g, 0);
    int c, h, w, k;
    float *x = lathe_graph_input(g, &c, &h, &w);
    size_t in = (size_t)n * c * h * w;
    FILE *f = fopen(argv[3], "rb");
    if (!f || fread(x, sizeof *x, in, f) != in) return fprintf(stderr, "graph_forward: cannot read %zu floats\n", in), 1;
    fclose(f);
    lathe_graph_forward(g, n, 0);
    const float *y = lathe_graph_output(g, &k);
    if (write_f32(argv[5], "out", y, (size_t)n * k)) return 1;
    int strides[8], levels = lathe_graph_detect_levels(g, strides, 8);
    if (levels > 0) {
        int bins = (int)lathe_config_num(spec, "model.bins", 16), classes = (int)lathe_config_num(spec, "model.classes", 0);
        int A = lathe_det_anchors(h, w, strides, levels, NULL, NULL), V = 4 * bins + classes;
        float *points = malloc(sizeof(float) * 2 * A), *stride = malloc(sizeof(float) * A);
        float *boxes = malloc(sizeof(float) * 4 * (size_t)n * A), *scores = malloc(sizeof(float) * (size_t)n * A * classes);
        lathe_det_anchors(h, w, strides, levels, points, stride);
        for (int i = 0; i < n; i++) {
            const float *rows = y + (size_t)i * A * V;
            for (int a = 0; a < A; a++) {
                lathe_det_decode(1, bins, rows + (size_t)a * V, points + 2 * a, stride + a, boxes + 4 * ((size_t)i * A + a));
                for (int j = 0; j < classes; j++)
                    scores[((size_t)i * A + a) * classes + j] = 1 / (1 + expf(-rows[(size_t)a * V + 4 * bins + j]));
            }
        }
        if (write_f32(argv[5], "boxes", boxes, 4 * (size_t)n * A) || write_f32(argv[5], "scores", scores, (size_t)n * A * classes))
            return 1;
        free(points), free(stride), free(boxes), free(scores);
    }
    lathe_graph_free(g);
    cJSON_Delete(spec);
    return 0;
}
