/* test_graph_parity.c - whole graphs on the GPU against the same graphs on the CPU: one model with
 * every layer type (conv with groups and dilation, batch norm, every activation, pools, upsample,
 * concat, add, dropout, layer norm, attention, linear, l2norm), one detector (two levels gathered by
 * `detect`) and the same detector with an open-vocabulary head (`vocab`). Same weights, same input, one layer frozen: the outputs, every parameter gradient and
 * the running statistics are compared after forward and backward in training mode, the outputs of
 * a partial batch in eval mode, the weights after SGD and AdamW steps (with clipping and EMA), a
 * step after the CPU's optimizer state was loaded into the GPU's, and a checkpoint written from
 * the GPU graph loaded back into the CPU graph. Then both models again with the GPU in bf16 mixed
 * precision, within bf16's error of the float32 CPU run. (Convolutions before batch norm have no bias: its
 * gradient is rounding noise, which AdamW's first step would blow up differently on each device.) Prints SKIP and exits 0 where no GPU or no CUDA build exists. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kernels/preprocess.h"
#include "libcore/base/error.h"
#include "libcore/nn/checkpoint.h"
#include "libcore/nn/graph.h"
#include "libcore/nn/optim.h"
#ifdef LATHE_HAVE_CUDA
#include "gputest.h"

static int failures;

static const char *const every_layer =
    "{\"input\": [3, 16, 16], \"classes\": 5, \"layers\": ["
    "{\"name\": \"stem\", \"type\": \"conv\", \"out\": 8, \"k\": 3, \"stride\": 2, \"bias\": 0},"
    "{\"name\": \"stem_bn\", \"type\": \"bn\"}, {\"type\": \"silu\"},"
    "{\"name\": \"dw\", \"type\": \"conv\", \"out\": 8, \"k\": 3, \"groups\": -1, \"dilation\": 2, \"bias\": 0},"
    "{\"name\": \"dw_bn\", \"type\": \"bn\"}, {\"type\": \"leaky\", \"slope\": 0.1},"
    "{\"name\": \"pool\", \"type\": \"maxpool\", \"k\": 2},"
    "{\"name\": \"avg\", \"type\": \"avgpool\", \"k\": 3, \"stride\": 1, \"pad\": 1, \"from\": \"pool\"},"
    "{\"name\": \"up\", \"type\": \"upsample\", \"factor\": 2, \"from\": \"avg\"},"
    "{\"name\": \"down\", \"type\": \"conv\", \"out\": 8, \"k\": 1, \"stride\": 2},"
    "{\"name\": \"cat\", \"type\": \"concat\", \"from\": [\"pool\", \"down\"]},"
    "{\"name\": \"mix\", \"type\": \"conv\", \"out\": 8, \"k\": 1}, {\"type\": \"gelu\"},"
    "{\"name\": \"res\", \"type\": \"add\", \"from\": [\"pool\", -1]},"
    "{\"name\": \"attn\", \"type\": \"attention\", \"heads\": 2},"
    "{\"name\": \"sum\", \"type\": \"add\", \"from\": [\"res\", \"attn\"]},"
    "{\"type\": \"sigmoid\"}, {\"name\": \"drop\", \"type\": \"dropout\", \"p\": 0.25},"
    "{\"name\": \"ln\", \"type\": \"layernorm\"}, {\"type\": \"relu\"}, {\"type\": \"gap\"},"
    "{\"name\": \"fc\", \"type\": \"linear\", \"out\": \"classes\"},"
    "{\"name\": \"emb\", \"type\": \"l2norm\", \"temperature\": 0.5}]}";

static const char *const detector =
    "{\"input\": [3, 32, 32], \"classes\": 3, \"bins\": 8, \"layers\": ["
    "{\"name\": \"c1\", \"type\": \"conv\", \"out\": 8, \"k\": 3, \"stride\": 2, \"bias\": 0}, {\"type\": \"bn\"}, {\"type\": \"silu\"},"
    "{\"name\": \"p3\", \"type\": \"conv\", \"out\": 16, \"k\": 3, \"stride\": 2}, {\"type\": \"silu\"},"
    "{\"name\": \"p4\", \"type\": \"conv\", \"out\": 16, \"k\": 3, \"stride\": 2}, {\"type\": \"silu\"},"
    "{\"name\": \"h3\", \"type\": \"conv\", \"out\": 35, \"k\": 1, \"from\": \"p3\"},"
    "{\"name\": \"h4\", \"type\": \"conv\", \"out\": 35, \"k\": 1, \"from\": -2},"
    "{\"name\": \"detect\", \"type\": \"detect\", \"from\": [\"h3\", \"h4\"]}]}";

/* the detector with an open-vocabulary head: 4 x 8 box values and a 12-wide embedding per anchor */
static const char *const open_vocab =
    "{\"input\": [3, 32, 32], \"classes\": 3, \"bins\": 8, \"layers\": ["
    "{\"name\": \"c1\", \"type\": \"conv\", \"out\": 8, \"k\": 3, \"stride\": 2, \"bias\": 0}, {\"type\": \"bn\"}, {\"type\": \"silu\"},"
    "{\"name\": \"p3\", \"type\": \"conv\", \"out\": 16, \"k\": 3, \"stride\": 2}, {\"type\": \"silu\"},"
    "{\"name\": \"p4\", \"type\": \"conv\", \"out\": 16, \"k\": 3, \"stride\": 2}, {\"type\": \"silu\"},"
    "{\"name\": \"h3\", \"type\": \"conv\", \"out\": 44, \"k\": 1, \"from\": \"p3\"},"
    "{\"name\": \"h4\", \"type\": \"conv\", \"out\": 44, \"k\": 1, \"from\": -2},"
    "{\"name\": \"detect\", \"type\": \"detect\", \"from\": [\"h3\", \"h4\"]},"
    "{\"name\": \"vocab\", \"type\": \"vocab\", \"out\": \"classes\", \"box\": \"distances\"}]}";

static uint64_t seed = 2024;
static float rnd(void) {
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((double)(seed >> 11) / 9007199254740992.0 * 2 - 1);
}

/* |b - a| <= tol (1 + |a|) everywhere */
static void compare(const char *what, const char *name, const float *a, const float *b, size_t n, double tol) {
    double worst = gputest_worst_error(a, b, n);
    int ok = worst <= tol;
    if (!ok || !name) printf("%s %-44s worst %.2e (tol %.0e, %zu values)\n", ok ? "PASS" : "FAIL", what, worst, tol, n);
    if (!ok && name) printf("     (parameter %s)\n", name);
    failures += !ok;
}

static lathe_graph *build(const char *json, int batch) {
    cJSON *m = cJSON_Parse(json);
    lathe_graph *g = NULL;
    if (!m || lathe_graph_build(m, batch, 11, &g)) {
        printf("FAIL building the model: %s\n", lathe_last_error());
        exit(1);
    }
    cJSON_Delete(m);
    lathe_param *text = lathe_graph_find_param(g, "vocab.text"); /* fixed unit rows, as prompts would give */
    for (int r = 0; text && r < text->shape[0]; r++) {
        float *row = text->data + (size_t)r * text->shape[1];
        double norm = 0;
        for (int j = 0; j < text->shape[1]; j++) row[j] = sinf(0.7f * (float)(r * text->shape[1] + j) + 1), norm += row[j] * row[j];
        for (int j = 0; j < text->shape[1]; j++) row[j] /= (float)sqrt(norm);
    }
    return g;
}

#define RUN(call)                                                                                      \
    do {                                                                                               \
        if ((call) < 0 || lathe_graph_wait(gpu)) {                                                     \
            printf("FAIL %s: %s\n", #call, lathe_last_error());                                        \
            exit(1);                                                                                   \
        }                                                                                              \
    } while (0)

/* every parameter's gradient (copied down) and value (synced) against the CPU graph's */
static void compare_params(const char *model, lathe_graph *cpu, lathe_graph *gpu, double tol, int grads) {
    char what[96];
    int before = failures;
    RUN(lathe_graph_sync(gpu, 1));
    for (size_t i = 0; i < lathe_graph_nparams(cpu); i++) {
        lathe_param *a = lathe_graph_param(cpu, i), *b = lathe_graph_param(gpu, i);
        if (grads && a->grad) {
            float *gb = malloc(b->count * sizeof *gb);
            CHECK(cudaMemcpy(gb, b->grad_dev, b->count * sizeof *gb, cudaMemcpyDeviceToHost));
            compare("gradient", a->name, a->grad, gb, a->count, tol);
            free(gb);
        }
        compare("value", a->name, a->data, b->data, a->count, tol);
    }
    snprintf(what, sizeof what, "%s: every %s", model, grads ? "gradient and running statistic" : "weight");
    printf("%s %s (%zu tensors, tol %.0e)\n", failures > before ? "FAIL" : "PASS", what, lathe_graph_nparams(cpu), tol);
}

/* The model twice with the same weights, the second on cuda:0 in `precision`, the layer `frozen`
 * (NULL: none) frozen in both, and one random input in both; *k gets the outputs per sample. */
/* two inputs: an image branch and a sensor window [S, T, 1] on its own branch, joined by FiLM (the
 * sensors scale and shift the image features), by attention over both as one token sequence
 * (concat with tokens) and by concat */
static const char *const two_inputs =
    "{\"input\": [3, 8, 8], \"classes\": 3, \"layers\": ["
    "{\"name\": \"c1\", \"type\": \"conv\", \"out\": 4, \"k\": 3}, {\"type\": \"relu\", \"name\": \"feat\"},"
    "{\"name\": \"sensors\", \"type\": \"input\", \"shape\": [5, 16, 1]},"
    "{\"name\": \"s1\", \"type\": \"conv\", \"out\": 4, \"k\": 3}, {\"type\": \"silu\", \"name\": \"steps\"}, {\"type\": \"gap\", \"name\": \"sen\"},"
    "{\"name\": \"mod\", \"type\": \"linear\", \"out\": 8}, {\"name\": \"film\", \"type\": \"film\", \"from\": [\"feat\", \"mod\"]},"
    "{\"name\": \"tok\", \"type\": \"concat\", \"tokens\": 1, \"from\": [\"film\", \"steps\"]},"
    "{\"name\": \"joint\", \"type\": \"attention\", \"heads\": 2},"
    "{\"type\": \"gap\", \"name\": \"img\"}, {\"type\": \"concat\", \"from\": [\"img\", \"sen\"]},"
    "{\"name\": \"mix\", \"type\": \"linear\", \"out\": 8}, {\"type\": \"relu\"},"
    "{\"name\": \"fc\", \"type\": \"linear\", \"out\": \"classes\"}]}";

static void twins(const char *model, const char *json, int batch, const char *frozen, const char *precision,
                  lathe_graph **cpu, lathe_graph **gpu, int *k) {
    *cpu = build(json, batch), *gpu = build(json, batch);
    if (frozen && (lathe_graph_freeze(*cpu, frozen) != 2 || lathe_graph_freeze(*gpu, frozen) != 2)) {
        printf("FAIL freezing %s\n", frozen);
        exit(1);
    }
    if (lathe_graph_set_device(*gpu, "cuda:0") || lathe_graph_set_precision(*gpu, precision)) {
        printf("FAIL placing %s on cuda:0 in %s: %s\n", model, precision, lathe_last_error());
        exit(1);
    }
    int c, h, w;
    float *xc = lathe_graph_input(*cpu, &c, &h, &w), *xg = lathe_graph_input(*gpu, NULL, NULL, NULL);
    for (size_t i = 0; i < (size_t)batch * c * h * w; i++) xc[i] = xg[i] = rnd();
    float *sc = lathe_graph_input_named(*cpu, "sensors", &c, &h, &w), *sg = lathe_graph_input_named(*gpu, "sensors", NULL, NULL, NULL);
    for (size_t i = 0; sc && i < (size_t)batch * c * h * w; i++) sc[i] = sg[i] = rnd(); /* a second input, uploaded too */
    lathe_graph_output(*cpu, k);
}

static void run_model(const char *model, const char *json, int batch) {
    lathe_graph *cpu, *gpu;
    int k;
    twins(model, json, batch, strstr(model, "detector") ? "p4" : "mix", "fp32", &cpu, &gpu, &k);
    char what[96];
    for (int step = 0; step < 2; step++) { /* the second pass sees running statistics the first moved */
        RUN(lathe_graph_forward(cpu, batch, 7));
        RUN(lathe_graph_forward(gpu, batch, 7));
        snprintf(what, sizeof what, "%s: output, pass %d", model, step + 1);
        compare(what, NULL, lathe_graph_output(cpu, NULL), lathe_graph_output(gpu, NULL), (size_t)batch * k, 1e-4);
        float *dc = lathe_graph_doutput(cpu), *dg = lathe_graph_doutput(gpu);
        for (size_t i = 0; i < (size_t)batch * k; i++) dc[i] = dg[i] = rnd() / batch;
        RUN(lathe_graph_backward(cpu, batch));
        RUN(lathe_graph_backward(gpu, batch));
    }
    compare_params(model, cpu, gpu, 1e-3, 1);
    /* eval mode (running statistics, no dropout) on a partial batch */
    lathe_graph_set_train(cpu, 0), lathe_graph_set_train(gpu, 0);
    RUN(lathe_graph_forward(cpu, batch - 1, 0));
    RUN(lathe_graph_forward(gpu, batch - 1, 0));
    snprintf(what, sizeof what, "%s: eval output, %d of %d samples", model, batch - 1, batch);
    compare(what, NULL, lathe_graph_output(cpu, NULL), lathe_graph_output(gpu, NULL), (size_t)(batch - 1) * k, 1e-4);
    lathe_graph_set_train(cpu, 1), lathe_graph_set_train(gpu, 1);

    /* optimizers: a step of each, with clipping, EMA and the biases' own rate, then the averaged weights */
    for (int kind = LATHE_OPT_SGD; kind <= LATHE_OPT_ADAMW; kind++) {
        lathe_optim_opts o;
        lathe_optim_defaults(&o);
        o.kind = kind, o.nesterov = 1, o.clip = 0.5, o.ema = 0.9;
        /* The attention's key bias has a gradient of zero up to rounding (softmax ignores a shift
         * that every key shares): with AdamW's default eps (1e-8) the first step turns that noise
         * into steps of the full learning rate, differently on each device. */
        o.eps = 1e-4;
        lathe_optim *oc, *og;
        if (lathe_optim_create(cpu, &o, &oc) || lathe_optim_create(gpu, &o, &og)) {
            printf("FAIL optimizer: %s\n", lathe_last_error());
            exit(1);
        }
        double nc = 0, ng = 0; /* the biases at their own rate, as during train.warmup_bias_lr */
        RUN(lathe_optim_step_lrs(oc, 0.05, 0.2, &nc));
        RUN(lathe_optim_step_lrs(og, 0.05, 0.2, &ng));
        int ok = fabs(nc - ng) <= 1e-4 * (1 + nc);
        printf("%s %s: gradient norm cpu %.6f gpu %.6f\n", ok ? "PASS" : "FAIL", model, nc, ng);
        failures += !ok;
        RUN(lathe_optim_swap_ema(oc));
        RUN(lathe_optim_swap_ema(og));
        compare_params(kind == LATHE_OPT_SGD ? "after SGD + EMA swap" : "after AdamW + EMA swap", cpu, gpu, 1e-3, 0);
        RUN(lathe_optim_swap_ema(oc));
        RUN(lathe_optim_swap_ema(og));
        if (kind == LATHE_OPT_ADAMW) { /* the CPU's state, through a checkpoint, into the GPU's: same next step */
            char ck[] = "/tmp/lathe_optim_parity_XXXXXX";
            int fd = mkstemp(ck);
            if (fd >= 0) close(fd);
            const char *meta[] = {"format", "lathe-checkpoint-1"};
            RUN(lathe_checkpoint_save(ck, cpu, oc, meta, 1));
            RUN(lathe_checkpoint_load(ck, gpu, og));
            RUN(lathe_optim_step(oc, 0.05, NULL));
            RUN(lathe_optim_step(og, 0.05, NULL));
            compare_params("after a CPU state loaded into the GPU and a step", cpu, gpu, 1e-3, 0);
            unlink(ck);
        }
        lathe_optim_free(oc), lathe_optim_free(og);
    }

    /* a checkpoint of the GPU graph restores the CPU graph */
    char path[] = "/tmp/lathe_graph_parity_XXXXXX";
    int fd = mkstemp(path);
    if (fd >= 0) close(fd);
    const char *meta[] = {"format", "lathe-checkpoint-1"};
    RUN(lathe_checkpoint_save(path, gpu, NULL, meta, 1));
    RUN(lathe_checkpoint_load(path, cpu, NULL));
    compare_params("after a checkpoint from the GPU", cpu, gpu, 0, 0);
    unlink(path);
    lathe_graph_free(cpu), lathe_graph_free(gpu);
}
/* The model in bf16 mixed precision on the GPU against float32 on the CPU: outputs and the weight
 * gradients within bf16's error, and the master weights still float32 (a step moves them by less
 * than bf16's spacing would allow). */
static void bf16_model(const char *model, const char *json, int batch, int smooth) {
    lathe_graph *cpu, *gpu;
    int k;
    twins(model, json, batch, NULL, "bf16", &cpu, &gpu, &k);
    RUN(lathe_graph_forward(cpu, batch, 7));
    RUN(lathe_graph_forward(gpu, batch, 7));
    double e = gputest_norm_error(lathe_graph_output(cpu, NULL), lathe_graph_output(gpu, NULL), (size_t)batch * k);
    int ok = e <= 3e-2;
    printf("%s %s, bf16: output relative error %.2e (tol 3e-2)\n", ok ? "PASS" : "FAIL", model, e);
    failures += !ok;
    float *dc = lathe_graph_doutput(cpu), *dg = lathe_graph_doutput(gpu);
    for (size_t i = 0; i < (size_t)batch * k; i++) dc[i] = dg[i] = rnd() / batch;
    RUN(lathe_graph_backward(cpu, batch));
    RUN(lathe_graph_backward(gpu, batch));
    double worst = 0;
    const char *where = "";
    /* gradients only where the model is smooth: bf16's error flips a max pool's argmax or a ReLU
     * kink now and then, which moves a whole gradient entry (the every-layer model has both) */
    for (size_t i = 0; smooth && i < lathe_graph_nparams(cpu); i++) {
        lathe_param *a = lathe_graph_param(cpu, i), *b = lathe_graph_param(gpu, i);
        if (!a->grad || !strstr(a->name, "weight")) continue;
        float *gb = malloc(b->count * sizeof *gb);
        CHECK(cudaMemcpy(gb, b->grad_dev, b->count * sizeof *gb, cudaMemcpyDeviceToHost));
        double ei = gputest_norm_error(a->grad, gb, a->count);
        if (isnan(ei) || ei > worst) worst = isnan(ei) ? INFINITY : ei, where = a->name;
        free(gb);
    }
    ok = worst <= 5e-2;
    if (smooth)
        printf("%s %s, bf16: worst weight-gradient relative error %.2e at %s (tol 5e-2)\n", ok ? "PASS" : "FAIL", model,
           worst, where);
    failures += smooth && !ok;
    lathe_optim_opts o;
    lathe_optim_defaults(&o);
    o.kind = LATHE_OPT_SGD;
    lathe_optim *og;
    if (lathe_optim_create(gpu, &o, &og)) exit(1);
    RUN(lathe_optim_step(og, 1e-4, NULL)); /* updates far below bf16's spacing: kept only in float32 */
    RUN(lathe_graph_sync(gpu, 1));
    lathe_param *a = lathe_graph_param(cpu, 0), *b = lathe_graph_param(gpu, 0);
    size_t moved = 0;
    for (size_t i = 0; i < a->count; i++) moved += a->data[i] != b->data[i];
    ok = moved > a->count / 2;
    printf("%s %s, bf16: %zu of %zu master weights of %s moved by a tiny step\n", ok ? "PASS" : "FAIL", model, moved,
           a->count, a->name);
    failures += !ok;
    lathe_optim_free(og);
    lathe_graph_free(cpu), lathe_graph_free(gpu);
}
#endif

int main(void) {
    const char *reason = NULL;
    if (!lathe_k_cuda_available(&reason)) {
        printf("SKIP graph parity: %s\n", reason);
        return 0;
    }
#ifdef LATHE_HAVE_CUDA
    run_model("every layer", every_layer, 4);
    run_model("detector", detector, 3);
    run_model("open-vocabulary detector", open_vocab, 3);
    run_model("two inputs", two_inputs, 3);
    bf16_model("every layer", every_layer, 4, 0);
    bf16_model("detector", detector, 3, 1);
    printf("graph parity: %s (%d failed)\n", failures ? "FAILED" : "ok", failures);
    return failures ? 1 : 0;
#endif
}
