/* bench_train.c - lathe's side of the training benchmark: builds the model of a spec, then times
 * training steps (forward, loss, backward, SGD with momentum) on random data at a fixed batch,
 * after warm-up. The loss is softmax cross-entropy for a classifier; for a detector (a model that
 * ends in `detect`) it is the real detection loss of libcore/det (task-aligned assignment,
 * BCE, CIoU, DFL) against four fixed random boxes per image, computed on the host as the trainer
 * does. Prints one JSON line: images_per_s, step_ms, loss_ms (the host loss per step, the output's
 * copy from a GPU included), peak_rss_mib, params, gflop_per_image.
 *
 * usage: bench_train SPEC.yaml BATCH STEPS THREADS [DEVICE [PRECISION]]
 *        DEVICE: cpu (default), cuda or cuda:N, exit 77 when that GPU cannot be used here;
 *        PRECISION: fp32 (default) or bf16 (a GPU's mixed precision)
 *        bench_train SPEC.yaml --model-json   the model as primitive layers (blocks expanded, bases
 *                                             merged, width applied, classes and distances
 *                                             resolved) for the PyTorch peer */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "kernels/nn.h"
#include "libcore/base/config.h"
#include "libcore/base/error.h"
#include "libcore/base/log.h"
#include "libcore/det/loss.h"
#include "libcore/det/predict.h"
#include "libcore/nn/blocks.h"
#include "libcore/nn/graph.h"
#include "libcore/nn/optim.h"

void openblas_set_num_threads(int);

enum { BOXES = 4, MAX_LEVELS = 8 };

/* Prints the model with every layer primitive and every channel count a number. */
static int dump_model(const cJSON *model) {
    cJSON *expanded = NULL;
    if (lathe_blocks_expand(model, &expanded)) return 1;
    cJSON *m = expanded ? expanded : cJSON_Duplicate(model, 1);
    double width = lathe_config_num(m, "width", 1);
    int classes = (int)lathe_config_num(m, "classes", 2), bins = (int)lathe_config_num(m, "bins", 16);
    cJSON *layer;
    cJSON_ArrayForEach(layer, cJSON_GetObjectItemCaseSensitive(m, "layers")) {
        cJSON *out = cJSON_GetObjectItemCaseSensitive(layer, "out");
        if (cJSON_IsString(out))
            cJSON_ReplaceItemInObject(layer, "out", cJSON_CreateNumber(!strcmp(out->valuestring, "distances") ? 4 * bins : classes));
        else if (cJSON_IsNumber(out) && lathe_config_num(layer, "fixed_width", 0) == 0)
            cJSON_SetNumberValue(out, fmax(1, lround(out->valuedouble * width)));
    }
    cJSON_DeleteItemFromObjectCaseSensitive(m, "width");
    cJSON_AddNumberToObject(m, "bins", bins);
    char *text = cJSON_PrintUnformatted(m);
    puts(text);
    cJSON_free(text);
    cJSON_Delete(m);
    return 0;
}

typedef struct {
    lathe_det_head head;
    lathe_det_loss_opts loss;
    float *gt;      /* (batch, BOXES, 4) */
    int32_t *labels;
} detector;

static double random_unit(uint64_t *s) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(*s >> 11) / 9007199254740992.0;
}

static int detector_init(detector *d, lathe_graph *g, const cJSON *model, int batch) {
    int strides[MAX_LEVELS], levels = lathe_graph_detect_levels(g, strides, MAX_LEVELS), c, h, w;
    int classes = (int)lathe_config_num(model, "classes", 2), bins = (int)lathe_config_num(model, "bins", 16);
    lathe_graph_input(g, &c, &h, &w);
    if (levels < 1 || lathe_det_head_init(&d->head, h, w, strides, levels, bins, classes)) return 1;
    lathe_det_loss_defaults(&d->loss, classes, bins);
    d->gt = malloc(sizeof *d->gt * (size_t)batch * BOXES * 4);
    d->labels = malloc(sizeof *d->labels * (size_t)batch * BOXES);
    uint64_t s = 7;
    for (int i = 0; i < batch * BOXES; i++) {
        float bw = (float)(w * (0.05 + 0.3 * random_unit(&s))), bh = (float)(h * (0.05 + 0.3 * random_unit(&s)));
        float x = (float)((w - bw) * random_unit(&s)), y = (float)((h - bh) * random_unit(&s));
        float *b = d->gt + 4 * i;
        b[0] = x, b[1] = y, b[2] = x + bw, b[3] = y + bh;
        d->labels[i] = i % classes;
    }
    return 0;
}

/* The batch's detection loss and its gradient into the graph's doutput (images in parallel). */
static void detector_loss(detector *d, lathe_graph *g, int batch) {
    const float *out = lathe_graph_output(g, NULL);
    float *dout = lathe_graph_doutput(g);
    size_t per = (size_t)d->head.A * (4 * d->head.bins + d->head.classes);
#pragma omp parallel for schedule(dynamic, 1)
    for (int i = 0; i < batch; i++)
        lathe_det_loss_image(&d->loss, d->head.A, d->head.points, d->head.stride, out + i * per, BOXES,
                             d->gt + (size_t)i * BOXES * 4, d->labels + (size_t)i * BOXES, dout + i * per, NULL);
}

int main(int argc, char **argv) {
    cJSON *spec;
    if (argc == 3 && !strcmp(argv[2], "--model-json")) {
        if (lathe_config_load(argv[1], &spec)) return fprintf(stderr, "bench_train: %s\n", lathe_last_error()), 1;
        int rc = dump_model(lathe_config_get(spec, "model"));
        cJSON_Delete(spec);
        return rc;
    }
    if (argc < 5 || argc > 7) {
        fprintf(stderr, "usage: bench_train SPEC.yaml BATCH STEPS THREADS [cpu|cuda|cuda:N [fp32|bf16]] | "
                        "SPEC.yaml --model-json\n");
        return 2;
    }
    const char *device = argc >= 6 ? argv[5] : "cpu", *precision = argc == 7 ? argv[6] : "fp32";
    int batch = atoi(argv[2]), steps = atoi(argv[3]), threads = atoi(argv[4]);
    omp_set_num_threads(threads);
    openblas_set_num_threads(threads);
    lathe_graph *g;
    lathe_optim *opt;
    if (lathe_config_load(argv[1], &spec) || lathe_graph_build(lathe_config_get(spec, "model"), batch, 1, &g)) {
        fprintf(stderr, "bench_train: %s\n", lathe_last_error());
        return 1;
    }
    int drc = lathe_graph_set_device(g, device);
    if (drc) { /* 77: no usable GPU here, which a caller may report as skipped */
        fprintf(stderr, "bench_train: %s\n", lathe_last_error());
        return drc == -LATHE_ENOTFOUND ? 77 : 1;
    }
    if (lathe_graph_set_precision(g, precision)) {
        fprintf(stderr, "bench_train: %s\n", lathe_last_error());
        return 1;
    }
    lathe_optim_opts o;
    lathe_optim_defaults(&o);
    o.kind = LATHE_OPT_SGD, o.momentum = 0.9, o.weight_decay = 0;
    if (lathe_optim_create(g, &o, &opt)) return 1;
    int c, h, w, k;
    float *x = lathe_graph_input(g, &c, &h, &w);
    lathe_graph_output(g, &k);
    int is_detector = lathe_graph_detect_levels(g, (int[MAX_LEVELS]){0}, MAX_LEVELS) > 0;
    detector det = {0};
    if (is_detector && detector_init(&det, g, lathe_config_get(spec, "model"), batch)) {
        fprintf(stderr, "bench_train: %s\n", lathe_last_error());
        return 1;
    }
    int32_t *labels = malloc(sizeof *labels * batch);
    uint64_t s = 42;
    for (size_t i = 0; i < (size_t)batch * c * h * w; i++) x[i] = (float)(random_unit(&s) * 2 - 1);
    for (int i = 0; i < batch; i++) labels[i] = i % k;
    double t0 = 0, loss_s = 0;
    int rc = 0;
    for (int i = -2; i < steps && !rc; i++) { /* two warm-up steps */
        if (i == 0 && !(rc = lathe_graph_wait(g))) t0 = lathe_now();
        if (rc || (rc = lathe_graph_forward(g, batch, (uint64_t)i))) break;
        double l0 = lathe_now();
        if (is_detector) detector_loss(&det, g, batch);
        else lathe_k_softmax_ce_f32(batch, k, lathe_graph_output(g, NULL), labels, 0, lathe_graph_doutput(g));
        if (i >= 0) loss_s += lathe_now() - l0;
        if (!(rc = lathe_graph_backward(g, batch))) rc = lathe_optim_step(opt, 0.01, NULL) < 0 ? -LATHE_EIO : 0;
    }
    if (!rc) rc = lathe_graph_wait(g); /* the last update's kernels */
    if (rc) {
        fprintf(stderr, "bench_train: %s\n", lathe_last_error());
        return 1;
    }
    double dt = lathe_now() - t0;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("{\"images_per_s\": %.2f, \"step_ms\": %.2f, \"loss_ms\": %.2f, \"peak_rss_mib\": %.1f, \"params\": %zu, "
           "\"gflop_per_image\": %.4f, \"device\": \"%s\", \"precision\": \"%s\"}\n",
           batch * steps / dt, 1000 * dt / steps, 1000 * loss_s / steps, ru.ru_maxrss / 1024.0, lathe_graph_param_count(g),
           lathe_graph_flops(g) / 1e9, device, precision);
    lathe_det_head_free(&det.head);
    free(det.gt), free(det.labels);
    lathe_optim_free(opt);
    lathe_graph_free(g);
    cJSON_Delete(spec);
    free(labels);
    return 0;
}
