/* graph_cuda.c - the graph on a CUDA GPU (graph.h: lathe_graph_set_device). The device holds the
 * parameters (weights in one block, their gradients in another), the activations (outputs and saved
 * values, then every activation gradient in one block, so one memset clears a step's gradients) and
 * the attention workspace. The host keeps pinned buffers for the input, the output and its gradient
 * only: the task's loss runs on the host, so a step moves the batch up, the output down and its
 * gradient up. Each layer calls its CUDA twin (kernels/nn_cuda.h) on one stream, in the CPU run's
 * order; tests/gpu/test_graph_parity.c compares the two runs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph_internal.h"
#include "kernels/preprocess.h"
#include "libcore/base/error.h"
#include "libcore/base/log.h"
#include "libcore/dist/dist.h"

int lathe_cuda_ordinal(const char *device) {
    if (!strcmp(device, "cuda")) return 0;
    if (strncmp(device, "cuda:", 5) || !device[5]) return -1;
    char *end;
    long v = strtol(device + 5, &end, 10);
    return *end || v < 0 || v > 1023 ? -1 : (int)v;
}

#ifdef LATHE_HAVE_CUDA
#include <cuda_runtime_api.h>

#include "kernels/nn_cuda.h"

/* Returns -1 from the enclosing function with the CUDA error text in *error. */
#define CHECK_CUDA(call, error)                                                                   \
    do {                                                                                          \
        cudaError_t st_ = (call);                                                                 \
        if (st_ != cudaSuccess) return *(error) = cudaGetErrorString(st_), -1;                    \
    } while (0)

struct graph_gpu {
    int device;
    cudaStream_t stream;
    lathe_cuda_ctx *ctx;
    float *params, *grads, *acts, *dys, *workspace; /* device blocks */
    size_t grad_floats, dy_floats;
    int32_t *ints;
    float *host; /* pinned: input, output, output gradient */
    int bf16;    /* convolutions and linear layers in bf16 mixed precision */
    /* LATHE_GPU_PROFILE set: an event before each layer's pass, and each layer's GPU time summed
     * over the passes (forward, backward), printed when the graph is freed */
    cudaEvent_t *marks;
    double *ms_fwd, *ms_bwd;
    int passes, warmup[2]; /* warmup: forward and backward passes left out so far */
};

static const char *const type_names[] = {"input", "conv", "bn", "act", "maxpool", "avgpool", "gap", "upsample",
                                         "concat", "add", "linear", "dropout", "layernorm", "attention", "detect",
                                         "l2norm", "vocab", "film"};

static void profile_start(lathe_graph *g, struct graph_gpu *G) {
    const char *env = getenv("LATHE_GPU_PROFILE");
    if (!env || !*env || !strcmp(env, "0")) return;
    G->marks = calloc((size_t)g->nlayers + 1, sizeof *G->marks);
    G->ms_fwd = calloc((size_t)g->nlayers, sizeof *G->ms_fwd);
    G->ms_bwd = calloc((size_t)g->nlayers, sizeof *G->ms_bwd);
    for (int i = 0; G->marks && i <= g->nlayers; i++)
        if (cudaEventCreate(&G->marks[i]) != cudaSuccess) G->marks[i] = NULL;
}

static void mark(struct graph_gpu *G, int i) {
    if (G->marks && G->marks[i]) cudaEventRecord(G->marks[i], G->stream);
}

/* After a pass has finished: layer i's time is from its mark to the next layer's (forward: i + 1;
 * backward: i - 1, the pass's end marked at 0). The first two passes of each direction, which
 * hold cuDNN's algorithm search, are left out. */
static void profile_add(lathe_graph *g, struct graph_gpu *G, int backward) {
    if (!G->marks || G->warmup[backward]++ < 2) return;
    for (int i = 1; i < g->nlayers; i++) {
        float ms = 0;
        int next = backward ? i - 1 : i + 1;
        if (G->marks[i] && G->marks[next] && cudaEventElapsedTime(&ms, G->marks[i], G->marks[next]) == cudaSuccess)
            (backward ? G->ms_bwd : G->ms_fwd)[i] += ms;
    }
    G->passes += !backward;
}

/* GPU time per layer type and the slowest layers, per forward pass, on stderr. */
static void profile_print(const lathe_graph *g, const struct graph_gpu *G) {
    if (!G->marks || !G->passes || !G->ms_fwd || !G->ms_bwd) return;
    enum { TYPES = sizeof type_names / sizeof type_names[0] };
    double fwd[TYPES] = {0}, bwd[TYPES] = {0}, total = 0;
    for (int i = 1; i < g->nlayers; i++) {
        int t = g->layers[i].type;
        if (t >= 0 && t < TYPES) fwd[t] += G->ms_fwd[i] / G->passes, bwd[t] += G->ms_bwd[i] / G->passes;
        total += (G->ms_fwd[i] + G->ms_bwd[i]) / G->passes;
    }
    fprintf(stderr, "GPU time per step by layer type (ms, mean of %d steps; total %.2f):\n", G->passes, total);
    for (int t = 0; t < TYPES; t++)
        if (fwd[t] + bwd[t] > 0)
            fprintf(stderr, "  %-10s forward %8.3f  backward %8.3f  %5.1f%%\n", type_names[t], fwd[t], bwd[t],
                    100 * (fwd[t] + bwd[t]) / total);
    fprintf(stderr, "slowest layers (forward + backward, ms):\n");
    char *shown = calloc((size_t)g->nlayers, 1);
    for (int k = 0; shown && k < 15; k++) {
        int best = -1;
        for (int i = 1; i < g->nlayers; i++)
            if (!shown[i] && (best < 0 || G->ms_fwd[i] + G->ms_bwd[i] > G->ms_fwd[best] + G->ms_bwd[best])) best = i;
        if (best < 0) break;
        shown[best] = 1;
        const layer *l = &g->layers[best];
        fprintf(stderr, "  %-28s %-9s %3dx%3dx%-3d %8.3f + %8.3f\n", l->name, type_names[l->type], l->c, l->h, l->w,
                G->ms_fwd[best] / G->passes, G->ms_bwd[best] / G->passes);
    }
    free(shown);
}

static void release(const lathe_graph *g, struct graph_gpu *G) {
    if (!G) return;
    profile_print(g, G);
    for (int i = 0; G->marks && i <= g->nlayers; i++)
        if (G->marks[i]) cudaEventDestroy(G->marks[i]);
    free(G->marks), free(G->ms_fwd), free(G->ms_bwd);
    lathe_kc_free(G->ctx);
    cudaFree(G->params), cudaFree(G->grads), cudaFree(G->acts), cudaFree(G->dys), cudaFree(G->workspace);
    cudaFree(G->ints);
    cudaFreeHost(G->host);
    if (G->stream) cudaStreamDestroy(G->stream);
    free(G);
}

void graph_gpu_free(lathe_graph *g) {
    release(g, g->gpu);
    g->gpu = NULL;
}

/* Makes the graph's GPU current for this thread (a second graph, or another thread, may have
 * switched it): every entry point that queues work calls this first. */
static void use(const lathe_graph *g) { cudaSetDevice(g->gpu->device); }

/* Reports a failure after letting queued work drain, so no copy is still reading a host buffer. */
static int cuda_fail(const lathe_graph *g, const char *what, const char *error) {
    if (g->gpu) cudaStreamSynchronize(g->gpu->stream);
    return lathe_fail(LATHE_EIO, "%s on cuda:%d: %s", what, g->gpu ? g->gpu->device : -1, error ? error : "failed");
}

/* Waits for the stream: a kernel's fault shows here, not at its launch. */
static int finish(lathe_graph *g, const char *what) {
    use(g);
    cudaError_t st = cudaStreamSynchronize(g->gpu->stream);
    return st == cudaSuccess ? 0 : cuda_fail(g, what, cudaGetErrorString(st));
}

/* Device blocks sized and laid out from the built graph; host state untouched until all succeed. */
static int allocate(lathe_graph *g, struct graph_gpu *G, const char **error) {
    size_t pfloats = 0, acts = 0, ws = 1;
    for (size_t i = 0; i < g->nparams; i++) {
        pfloats += g->params[i].count;
        if (g->params[i].grad) G->grad_floats += g->params[i].count;
    }
    for (int i = 0; i < g->nlayers; i++) {
        const layer *l = &g->layers[i];
        acts += (size_t)g->batch * per_sample(l) + l->aux_len;
        G->dy_floats += (size_t)g->batch * per_sample(l);
        if (l->type == L_ATTENTION) {
            size_t need = lathe_kc_mha_workspace(g->batch, l->h * l->w, l->c, l->heads);
            ws = need > ws ? need : ws;
        }
        if (l->type == L_VOCAB) {
            size_t need = (size_t)g->batch * l->c * (g->layers[l->in[0]].w - l->box);
            ws = need > ws ? need : ws;
        }
    }
    const layer *out = &g->layers[g->nlayers - 1];
    size_t host = (size_t)g->batch * 2 * per_sample(out);
    for (int i = 0; i < g->nlayers; i++) /* every input, then the output and its gradient */
        if (g->layers[i].type == L_INPUT) host += (size_t)g->batch * per_sample(&g->layers[i]);
    /* a blocking stream: the plain (default-stream) copies of sync and checkpoints wait for it */
    CHECK_CUDA(cudaStreamCreate(&G->stream), error);
    CHECK_CUDA(cudaMalloc((void **)&G->params, (pfloats ? pfloats : 1) * sizeof(float)), error);
    CHECK_CUDA(cudaMalloc((void **)&G->grads, (G->grad_floats ? G->grad_floats : 1) * sizeof(float)), error);
    CHECK_CUDA(cudaMalloc((void **)&G->acts, acts * sizeof(float)), error);
    CHECK_CUDA(cudaMalloc((void **)&G->dys, G->dy_floats * sizeof(float)), error);
    CHECK_CUDA(cudaMalloc((void **)&G->workspace, ws * sizeof(float)), error);
    CHECK_CUDA(cudaMalloc((void **)&G->ints, (g->int_count ? g->int_count : 1) * sizeof(int32_t)), error);
    CHECK_CUDA(cudaMallocHost((void **)&G->host, host * sizeof(float)), error);
    CHECK_CUDA(cudaMemset(G->grads, 0, (G->grad_floats ? G->grad_floats : 1) * sizeof(float)), error);
    return lathe_kc_create(G->stream, &G->ctx, error);
}

/* Points every parameter and layer at its device copy, copies the weights up and hands the host's
 * activation arena over to the pinned buffers. */
static int adopt(lathe_graph *g, struct graph_gpu *G, const char **error) {
    float *pd = G->params, *gd = G->grads;
    for (size_t i = 0; i < g->nparams; i++) {
        lathe_param *p = &g->params[i];
        CHECK_CUDA(cudaMemcpy(pd, p->data, p->count * sizeof(float), cudaMemcpyHostToDevice), error);
        p->data_dev = pd, pd += p->count;
        if (p->grad) p->grad_dev = gd, gd += p->count;
    }
    float *ad = G->acts, *dd = G->dys;
    int32_t *id = G->ints;
    for (int i = 0; i < g->nlayers; i++) {
        layer *l = &g->layers[i];
        size_t n = (size_t)g->batch * per_sample(l);
        l->y_dev = ad, ad += n;
        l->aux_dev = l->aux_len ? ad : NULL, ad += l->aux_len;
        l->dy_dev = dd, dd += n;
        l->ints_dev = l->type == L_MAXPOOL ? id : NULL;
        if (l->type == L_MAXPOOL) id += n;
        l->y = l->dy = l->aux = NULL, l->ints = NULL;
    }
    layer *out = &g->layers[g->nlayers - 1];
    float *host = G->host;
    for (int i = 0; i < g->nlayers; i++)
        if (g->layers[i].type == L_INPUT) g->layers[i].y = host, host += (size_t)g->batch * per_sample(&g->layers[i]);
    out->y = host;
    out->dy = out->y + (size_t)g->batch * per_sample(out);
    free(g->act_arena), free(g->int_arena), free(g->workspace);
    g->act_arena = NULL, g->int_arena = NULL, g->workspace = NULL;
    return 0;
}

int lathe_graph_set_device(lathe_graph *g, const char *device) {
    int automatic = !strcmp(device, "auto"), ordinal = automatic ? 0 : lathe_cuda_ordinal(device);
    if ((automatic || !strcmp(device, "cuda")) && lathe_dist_world() > 1) ordinal = lathe_dist_local_rank(); /* a GPU a rank */
    if (!strcmp(device, "cpu")) {
        if (g->gpu) return lathe_fail(LATHE_EINVAL, "the graph already runs on cuda:%d", g->gpu->device);
        return 0;
    }
    if (ordinal < 0) return lathe_fail(LATHE_EINVAL, "device %s: cpu, cuda, cuda:N or auto", device);
    if (g->gpu) return g->gpu->device == ordinal ? 0 : lathe_fail(LATHE_EINVAL, "the graph already runs on cuda:%d", g->gpu->device);
    const char *reason = NULL;
    int count = 0;
    if (!lathe_k_cuda_available(&reason) || cudaGetDeviceCount(&count) != cudaSuccess || ordinal >= count) {
        if (!reason) reason = "no such device";
        if (automatic) {
            lathe_log(LATHE_LOG_INFO, "device", "no usable GPU (%s): running on the CPU", reason);
            return 0;
        }
        return lathe_fail(LATHE_ENOTFOUND, "device %s: %s (%d CUDA devices)", device, reason, count);
    }
    struct graph_gpu *G = calloc(1, sizeof *G);
    if (!G) return lathe_fail(LATHE_ENOMEM, "device state");
    G->device = ordinal;
    const char *error = NULL;
    int rc = cudaSetDevice(ordinal) != cudaSuccess ? -1 : allocate(g, G, &error);
    if (!rc) rc = adopt(g, G, &error);
    if (rc) {
        for (size_t i = 0; i < g->nparams; i++) g->params[i].data_dev = g->params[i].grad_dev = NULL;
        for (int i = 0; i < g->nlayers; i++)
            g->layers[i].y_dev = g->layers[i].dy_dev = g->layers[i].aux_dev = NULL, g->layers[i].ints_dev = NULL;
        release(g, G);
        if (automatic) { /* "when one can be used": this one cannot (memory, a busy exclusive GPU) */
            lathe_log(LATHE_LOG_WARN, "device", "cannot use cuda:%d (%s): running on the CPU", ordinal,
                      error ? error : "CUDA failed");
            return 0;
        }
        return lathe_fail(LATHE_ENOMEM, "cannot place the graph on %s: %s", device, error ? error : "CUDA failed");
    }
    g->gpu = G;
    profile_start(g, G);
    struct cudaDeviceProp prop;
    if (cudaGetDeviceProperties(&prop, ordinal) == cudaSuccess)
        lathe_log(LATHE_LOG_INFO, "device", "running on cuda:%d (%s)", ordinal, prop.name);
    return 0;
}

int lathe_graph_set_precision(lathe_graph *g, const char *precision) {
    int bf16 = !strcmp(precision, "bf16");
    if (!bf16 && strcmp(precision, "fp32")) return lathe_fail(LATHE_EINVAL, "precision %s: fp32 or bf16", precision);
    if (bf16 && !g->gpu) return lathe_fail(LATHE_EINVAL, "precision bf16 runs on a GPU only; this graph runs on the CPU");
    if (!g->gpu) return 0;
    size_t scratch = 0; /* the bf16 copies of the largest layer's operands, reserved now, not mid-step */
    for (int i = 1; bf16 && i < g->nlayers; i++) {
        const layer *l = &g->layers[i], *a = &g->layers[l->in[0]];
        size_t need = l->type == L_CONV     ? lathe_kc_conv2d_bf16_scratch(&l->cs)
                      : l->type == L_LINEAR ? lathe_kc_linear_bf16_scratch(g->batch, (int)per_sample(a), l->c)
                                            : 0;
        scratch = need > scratch ? need : scratch;
    }
    const char *error = NULL;
    use(g);
    if (scratch && lathe_kc_bf16_reserve(g->gpu->ctx, scratch, &error))
        return lathe_fail(LATHE_ENOMEM, "bf16 scratch of %zu values on cuda:%d: %s", scratch, g->gpu->device, error);
    g->gpu->bf16 = bf16;
    return 0;
}

int lathe_graph_device(const lathe_graph *g) { return g->gpu ? g->gpu->device : -1; }
void *lathe_graph_cuda(lathe_graph *g) {
    if (!g->gpu) return NULL;
    use(g);
    return g->gpu->ctx;
}

int lathe_graph_wait(lathe_graph *g) { return g->gpu ? finish(g, "queued work") : 0; }

void *lathe_graph_stream(lathe_graph *g) { return g->gpu ? (void *)g->gpu->stream : NULL; }

int lathe_graph_sync(lathe_graph *g, int to_host) {
    if (!g->gpu) return 0;
    if (lathe_graph_wait(g)) return -LATHE_EIO;
    for (size_t i = 0; i < g->nparams; i++) {
        lathe_param *p = &g->params[i];
        cudaError_t st = to_host ? cudaMemcpy(p->data, p->data_dev, p->count * sizeof(float), cudaMemcpyDeviceToHost)
                                 : cudaMemcpy(p->data_dev, p->data, p->count * sizeof(float), cudaMemcpyHostToDevice);
        if (st != cudaSuccess) return cuda_fail(g, p->name, cudaGetErrorString(st));
    }
    return 0;
}

static float *pdev(lathe_graph *g, int i) { return i >= 0 ? g->params[i].data_dev : NULL; }
static float *gdev(lathe_graph *g, int i) { return i >= 0 && !g->params[i].frozen ? g->params[i].grad_dev : NULL; }

static int layer_forward(lathe_graph *g, int i, int n, uint64_t step, const char **err) {
    lathe_cuda_ctx *c = g->gpu->ctx;
    layer *l = &g->layers[i];
    const layer *a = &g->layers[l->in[0]];
    size_t sz = (size_t)n * per_sample(l);
    switch (l->type) {
    case L_CONV: {
        lathe_conv_shape s = l->cs;
        s.n = n;
        int rc = (g->gpu->bf16 ? lathe_kc_conv2d_fwd_bf16 : lathe_kc_conv2d_fwd)(c, &s, a->y_dev, pdev(g, l->pw),
                                                                                 pdev(g, l->pb), l->y_dev, err);
        return rc || l->conv_act < 0 ? rc : lathe_kc_act_fwd(c, l->conv_act, sz, l->y_dev, l->slope, l->y_dev, err);
    }
    case L_BN:
        return lathe_kc_bn_fwd(c, n, l->c, l->h * l->w, a->y_dev, pdev(g, l->pw), pdev(g, l->pb), pdev(g, l->prm),
                               pdev(g, l->prv), l->momentum, l->eps, g->train, l->aux_dev, l->aux_dev + l->c, l->y_dev, err);
    case L_LAYERNORM:
        return lathe_kc_layernorm_fwd(c, n, (int)per_sample(l), a->y_dev, pdev(g, l->pw), pdev(g, l->pb), l->eps,
                                      l->aux_dev, l->aux_dev + g->batch, l->y_dev, err);
    case L_ACT: return lathe_kc_act_fwd(c, l->act, sz, a->y_dev, l->slope, l->y_dev, err);
    case L_VOCAB:
        return lathe_kc_vocab_fwd(c, n * l->c, l->box, a->w - l->box, l->w - l->box, a->y_dev, pdev(g, l->pw),
                                  pdev(g, l->prm), pdev(g, l->pb), l->aux_dev, l->y_dev, err);
    case L_L2NORM:
        return lathe_kc_l2norm_fwd(c, n, (int)per_sample(l), a->y_dev, pdev(g, l->pw), l->max_scale, l->aux_dev,
                                   l->y_dev, err);
    case L_MAXPOOL:
        return lathe_kc_maxpool_fwd(c, n, l->c, a->h, a->w, l->cs.r, l->cs.stride, l->cs.pad, l->h, l->w, a->y_dev,
                                    l->y_dev, l->ints_dev, err);
    case L_AVGPOOL:
        return lathe_kc_avgpool_fwd(c, n, l->c, a->h, a->w, l->cs.r, l->cs.stride, l->cs.pad, l->h, l->w, a->y_dev,
                                    l->y_dev, err);
    case L_GAP: return lathe_kc_gap_fwd(c, n * l->c, a->h * a->w, a->y_dev, l->y_dev, err);
    case L_FILM: return lathe_kc_film_fwd(c, n, l->c, l->h * l->w, a->y_dev, g->layers[l->in[1]].y_dev, l->y_dev, err);
    case L_UPSAMPLE: return lathe_kc_upsample_fwd(c, n, a->c, a->h, a->w, l->factor, a->y_dev, l->y_dev, err);
    case L_CONCAT: {
        size_t off = 0;
        for (int k = 0; k < l->nin; k++) {
            const layer *b = &g->layers[l->in[k]];
            size_t rows, len, pitch;
            concat_rows(l, b, n, &rows, &len, &pitch);
            cudaError_t st = cudaMemcpy2DAsync(l->y_dev + off, pitch * sizeof(float), b->y_dev, len * sizeof(float),
                                               len * sizeof(float), rows, cudaMemcpyDeviceToDevice, g->gpu->stream);
            if (st != cudaSuccess) return *err = cudaGetErrorString(st), -1;
            off += len;
        }
        return 0;
    }
    case L_ADD: {
        cudaError_t st = cudaMemcpyAsync(l->y_dev, a->y_dev, sz * sizeof(float), cudaMemcpyDeviceToDevice, g->gpu->stream);
        if (st != cudaSuccess) return *err = cudaGetErrorString(st), -1;
        for (int k = 1; k < l->nin; k++)
            if (lathe_kc_add_rows(c, 1, sz, g->layers[l->in[k]].y_dev, 0, l->y_dev, 0, err)) return -1;
        return 0;
    }
    case L_LINEAR:
        return (g->gpu->bf16 ? lathe_kc_linear_fwd_bf16 : lathe_kc_linear_fwd)(c, n, (int)per_sample(a), l->c, a->y_dev, pdev(g, l->pw), pdev(g, l->pb), l->y_dev,
                                   err);
    case L_ATTENTION: {
        int len = l->h * l->w, dm = l->c;
        size_t bld = (size_t)g->batch * len * dm, per = (size_t)len * dm;
        float *xt = l->aux_dev, *yt = xt + bld, *saved = l->aux_dev + 3 * bld;
        if (lathe_kc_transpose(c, n, dm, len, a->y_dev, per, xt, per, 0, err) ||
            lathe_kc_mha_fwd(c, n, len, dm, l->heads, xt, pdev(g, l->pw), pdev(g, l->pb), pdev(g, l->prm),
                             pdev(g, l->prv), saved, yt, err))
            return -1;
        return lathe_kc_transpose(c, n, len, dm, yt, per, l->y_dev, per, 0, err);
    }
    case L_DETECT:
        for (int k = 0, at = 0; k < l->nin; k++) {
            const layer *b = &g->layers[l->in[k]];
            int hw = b->h * b->w;
            if (lathe_kc_transpose(c, n, b->c, hw, b->y_dev, per_sample(b), l->y_dev + (size_t)at * b->c,
                                   per_sample(l), 0, err))
                return -1;
            at += hw;
        }
        return 0;
    case L_DROPOUT:
        return lathe_kc_dropout_fwd(c, sz, a->y_dev, g->train ? l->drop : 0, graph_dropout_key(g, i, step), l->aux_dev,
                                    l->y_dev, err);
    default: return 0;
    }
}

static int layer_backward(lathe_graph *g, int i, int n, const char **err) {
    lathe_cuda_ctx *c = g->gpu->ctx;
    layer *l = &g->layers[i];
    layer *a = &g->layers[l->in[0]];
    size_t sz = (size_t)n * per_sample(l);
    float *dx = a->type == L_INPUT ? NULL : a->dy_dev; /* nothing flows into an input */
    switch (l->type) {
    case L_CONV: {
        lathe_conv_shape s = l->cs;
        s.n = n;
        return (g->gpu->bf16 ? lathe_kc_conv2d_bwd_bf16 : lathe_kc_conv2d_bwd)(c, &s, a->y_dev, pdev(g, l->pw), l->dy_dev,
                                                                               dx, gdev(g, l->pw), gdev(g, l->pb), err);
    }
    case L_BN:
        return lathe_kc_bn_bwd(c, n, l->c, l->h * l->w, g->train, a->y_dev, pdev(g, l->pw), l->aux_dev,
                               l->aux_dev + l->c, l->dy_dev, dx, gdev(g, l->pw), gdev(g, l->pb), err);
    case L_LAYERNORM:
        return lathe_kc_layernorm_bwd(c, n, (int)per_sample(l), a->y_dev, pdev(g, l->pw), l->aux_dev,
                                      l->aux_dev + g->batch, l->dy_dev, dx, gdev(g, l->pw), gdev(g, l->pb), err);
    case L_ACT: return dx ? lathe_kc_act_bwd(c, l->act, sz, a->y_dev, l->slope, l->dy_dev, dx, err) : 0;
    case L_VOCAB:
        return lathe_kc_vocab_bwd(c, n * l->c, l->box, a->w - l->box, l->w - l->box, pdev(g, l->pw), pdev(g, l->prm),
                                  l->aux_dev, l->dy_dev, g->gpu->workspace, dx, gdev(g, l->prm), gdev(g, l->pb), err);
    case L_L2NORM:
        return lathe_kc_l2norm_bwd(c, n, (int)per_sample(l), a->y_dev, pdev(g, l->pw), l->max_scale, l->aux_dev,
                                   l->dy_dev, dx, gdev(g, l->pw), err);
    case L_MAXPOOL:
        return dx ? lathe_kc_maxpool_bwd(c, n, l->c, a->h, a->w, l->cs.r, l->cs.stride, l->cs.pad, l->h, l->w,
                                         l->ints_dev, l->dy_dev, dx, err)
                  : 0;
    case L_AVGPOOL:
        return dx ? lathe_kc_avgpool_bwd(c, n, l->c, a->h, a->w, l->cs.r, l->cs.stride, l->cs.pad, l->h, l->w,
                                         l->dy_dev, dx, err)
                  : 0;
    case L_GAP: return dx ? lathe_kc_gap_bwd(c, n * l->c, a->h * a->w, l->dy_dev, dx, err) : 0;
    case L_FILM: {
        const layer *p = &g->layers[l->in[1]];
        return lathe_kc_film_bwd(c, n, l->c, l->h * l->w, a->y_dev, p->y_dev, l->dy_dev, dx,
                                 p->type == L_INPUT ? NULL : p->dy_dev, err);
    }
    case L_UPSAMPLE: return dx ? lathe_kc_upsample_bwd(c, n, a->c, a->h, a->w, l->factor, l->dy_dev, dx, err) : 0;
    case L_CONCAT:
        for (size_t k = 0, off = 0; k < (size_t)l->nin; k++) {
            layer *b = &g->layers[l->in[k]];
            size_t rows, len, pitch;
            concat_rows(l, b, n, &rows, &len, &pitch);
            if (b->type != L_INPUT && lathe_kc_add_rows(c, (int)rows, len, l->dy_dev + off, pitch, b->dy_dev, len, err))
                return -1;
            off += len;
        }
        return 0;
    case L_ADD:
        for (int k = 0; k < l->nin; k++) {
            const layer *b = &g->layers[l->in[k]];
            if (b->type != L_INPUT && lathe_kc_add_rows(c, 1, sz, l->dy_dev, 0, b->dy_dev, 0, err)) return -1;
        }
        return 0;
    case L_LINEAR:
        return (g->gpu->bf16 ? lathe_kc_linear_bwd_bf16 : lathe_kc_linear_bwd)(c, n, (int)per_sample(a), l->c, a->y_dev, pdev(g, l->pw), l->dy_dev, dx,
                                   gdev(g, l->pw), gdev(g, l->pb), err);
    case L_DROPOUT: return dx ? lathe_kc_dropout_bwd(c, sz, l->aux_dev, l->dy_dev, dx, err) : 0;
    case L_DETECT:
        for (int k = 0, at = 0; k < l->nin; k++) {
            layer *b = &g->layers[l->in[k]];
            int hw = b->h * b->w;
            if (b->type != L_INPUT && lathe_kc_transpose(c, n, hw, b->c, l->dy_dev + (size_t)at * b->c, per_sample(l),
                                                         b->dy_dev, per_sample(b), 1, err))
                return -1;
            at += hw;
        }
        return 0;
    case L_ATTENTION: {
        int len = l->h * l->w, dm = l->c;
        size_t bld = (size_t)g->batch * len * dm, per = (size_t)len * dm;
        float *xt = l->aux_dev, *dyt = xt + bld, *dxt = dyt + bld, *saved = l->aux_dev + 3 * bld;
        cudaError_t st = cudaMemsetAsync(dxt, 0, sizeof(float) * (size_t)n * len * dm, g->gpu->stream);
        if (st != cudaSuccess) return *err = cudaGetErrorString(st), -1;
        if (lathe_kc_transpose(c, n, dm, len, l->dy_dev, per, dyt, per, 0, err) ||
            lathe_kc_mha_bwd(c, n, len, dm, l->heads, xt, pdev(g, l->pw), pdev(g, l->prm), saved, dyt, dxt,
                             gdev(g, l->pw), gdev(g, l->pb), gdev(g, l->prm), gdev(g, l->prv), g->gpu->workspace, err))
            return -1;
        return dx ? lathe_kc_transpose(c, n, len, dm, dxt, per, dx, per, 1, err) : 0;
    }
    default: return 0;
    }
}

int graph_gpu_forward(lathe_graph *g, int n, uint64_t step) {
    struct graph_gpu *G = g->gpu;
    use(g);
    layer *out = &g->layers[g->nlayers - 1];
    const char *err = NULL;
    cudaError_t st = cudaSuccess;
    for (int i = 0; i < g->nlayers && st == cudaSuccess; i++) { /* every input up */
        const layer *in = &g->layers[i];
        if (in->type == L_INPUT)
            st = cudaMemcpyAsync(in->y_dev, in->y, (size_t)n * per_sample(in) * sizeof(float), cudaMemcpyHostToDevice,
                                 G->stream);
    }
    if (st != cudaSuccess) return cuda_fail(g, "input upload", cudaGetErrorString(st));
    for (int i = 1; i < g->nlayers; i++) {
        mark(G, i);
        if (layer_forward(g, i, n, step, &err)) return cuda_fail(g, g->layers[i].name, err);
    }
    mark(G, g->nlayers);
    st = cudaMemcpyAsync(out->y, out->y_dev, (size_t)n * per_sample(out) * sizeof(float), cudaMemcpyDeviceToHost,
                         G->stream);
    if (st != cudaSuccess) return cuda_fail(g, "output download", cudaGetErrorString(st));
    int rc = finish(g, "forward");
    if (!rc) profile_add(g, G, 0);
    return rc;
}

int graph_gpu_backward(lathe_graph *g, int n) {
    struct graph_gpu *G = g->gpu;
    use(g);
    layer *out = &g->layers[g->nlayers - 1];
    const char *err = NULL;
    cudaError_t st = cudaMemsetAsync(G->dys, 0, G->dy_floats * sizeof(float), G->stream);
    if (st == cudaSuccess && G->grad_floats) st = cudaMemsetAsync(G->grads, 0, G->grad_floats * sizeof(float), G->stream);
    if (st == cudaSuccess)
        st = cudaMemcpyAsync(out->dy_dev, out->dy, (size_t)n * per_sample(out) * sizeof(float), cudaMemcpyHostToDevice,
                             G->stream);
    if (st != cudaSuccess) return cuda_fail(g, "gradient upload", cudaGetErrorString(st));
    for (int i = g->nlayers - 1; i >= 1; i--) {
        mark(G, i);
        if (layer_backward(g, i, n, &err)) return cuda_fail(g, g->layers[i].name, err);
        int rc = g->hook ? g->hook(g->hook_ctx, i) : 0;
        if (rc) return rc;
    }
    mark(G, 0);
    int rc = finish(g, "backward");
    if (!rc) profile_add(g, G, 1);
    return rc;
}

#else /* a build without CUDA: the graph stays on the CPU */

void graph_gpu_free(lathe_graph *g) { (void)g; }
int graph_gpu_forward(lathe_graph *g, int n, uint64_t step) {
    (void)g, (void)n, (void)step;
    return lathe_fail(LATHE_EINVAL, "lathe was built without CUDA");
}
int graph_gpu_backward(lathe_graph *g, int n) {
    (void)g, (void)n;
    return lathe_fail(LATHE_EINVAL, "lathe was built without CUDA");
}

int lathe_graph_set_device(lathe_graph *g, const char *device) {
    (void)g;
    if (!strcmp(device, "cpu")) return 0;
    if (!strcmp(device, "auto")) {
        lathe_log(LATHE_LOG_INFO, "device", "lathe was built without CUDA: running on the CPU");
        return 0;
    }
    if (lathe_cuda_ordinal(device) < 0) return lathe_fail(LATHE_EINVAL, "device %s: cpu, cuda, cuda:N or auto", device);
    return lathe_fail(LATHE_ENOTFOUND, "device %s: lathe was built without CUDA (CUDA=0 or no nvcc)", device);
}

int lathe_graph_device(const lathe_graph *g) {
    (void)g;
    return -1;
}
int lathe_graph_set_precision(lathe_graph *g, const char *precision) {
    (void)g;
    if (!strcmp(precision, "fp32")) return 0;
    if (strcmp(precision, "bf16")) return lathe_fail(LATHE_EINVAL, "precision %s: fp32 or bf16", precision);
    return lathe_fail(LATHE_EINVAL, "precision bf16 runs on a GPU only; lathe was built without CUDA");
}
void *lathe_graph_cuda(lathe_graph *g) {
    (void)g;
    return NULL;
}
int lathe_graph_sync(lathe_graph *g, int to_host) {
    (void)g, (void)to_host;
    return 0;
}
int lathe_graph_wait(lathe_graph *g) {
    (void)g;
    return 0;
}
void *lathe_graph_stream(lathe_graph *g) {
    (void)g;
    return NULL;
}
#endif
