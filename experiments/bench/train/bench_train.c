/* bench_train.c - lathe's side of the training benchmark: builds the model of a spec, then times
 * training steps (forward, softmax cross-entropy, backward, SGD with momentum) on random data at a
 * fixed batch, after warm-up. Prints one JSON line: images_per_s, step_ms, peak_rss_mib.
 *
 * usage: bench_train SPEC.yaml BATCH STEPS THREADS */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

#include "kernels/nn.h"
#include "libcore/base/config.h"
#include "libcore/base/error.h"
#include "libcore/base/log.h"
#include "libcore/nn/graph.h"
#include "libcore/nn/optim.h"

void openblas_set_num_threads(int);

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: bench_train SPEC.yaml BATCH STEPS THREADS\n");
        return 2;
    }
    int batch = atoi(argv[2]), steps = atoi(argv[3]), threads = atoi(argv[4]);
    omp_set_num_threads(threads);
    openblas_set_num_threads(threads);
    cJSON *spec;
    lathe_graph *g;
    lathe_optim *opt;
    if (lathe_config_load(argv[1], &spec) || lathe_graph_build(lathe_config_get(spec, "model"), batch, 1, &g)) {
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
    int32_t *labels = malloc(sizeof *labels * batch);
    uint64_t s = 42;
    for (size_t i = 0; i < (size_t)batch * c * h * w; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = (float)((double)(s >> 11) / 9007199254740992.0 * 2 - 1);
    }
    for (int i = 0; i < batch; i++) labels[i] = i % k;
    double t0 = 0;
    for (int i = -2; i < steps; i++) { /* two warm-up steps */
        if (i == 0) t0 = lathe_now();
        lathe_graph_forward(g, batch, (uint64_t)i);
        lathe_k_softmax_ce_f32(batch, k, lathe_graph_output(g, NULL), labels, 0, lathe_graph_doutput(g));
        lathe_graph_backward(g, batch);
        lathe_optim_step(opt, 0.01, NULL);
    }
    double dt = lathe_now() - t0;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("{\"images_per_s\": %.2f, \"step_ms\": %.2f, \"peak_rss_mib\": %.1f, \"params\": %zu, \"gflop_per_image\": %.4f}\n",
           batch * steps / dt, 1000 * dt / steps, ru.ru_maxrss / 1024.0, lathe_graph_param_count(g),
           lathe_graph_flops(g) / 1e9);
    lathe_optim_free(opt);
    lathe_graph_free(g);
    cJSON_Delete(spec);
    free(labels);
    return 0;
}
