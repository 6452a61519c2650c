/* text_encoder_cuda.c - the text encoder's transformer layers on a CUDA GPU: the weights live on
 * the device; a batch's embeddings go up, each layer runs the CUDA twins of the CPU path's kernels
 * (kernels/nn_cuda.h: cuBLAS linear layers, lathe's attention, layer norm and GELU) in the same
 * order, and the last hidden states come down for pooling. tests/gpu/test_text_parity.c compares
 * the two. */
#include <stdlib.h>
#include <string.h>

#include "libcore/base/error.h"
#include "libcore/base/log.h"
#include "libcore/nn/graph.h"
#include "text_encoder_internal.h"

#ifdef LATHE_HAVE_CUDA
#include <cuda_runtime_api.h>

#include "kernels/nn_cuda.h"
#include "kernels/preprocess.h"

struct text_gpu {
    int device;
    lathe_cuda_ctx *ctx;
    float *weights;      /* the host block's mirror: same offsets */
    float *acts;         /* x, qkv, ctx, t, f, mean, invstd for the largest batch so far */
    size_t act_floats;
    int32_t *lens;
    int lens_cap;
};

void text_gpu_free(struct text_gpu *g) {
    if (!g) return;
    cudaSetDevice(g->device);
    if (g->ctx) lathe_kc_free(g->ctx);
    cudaFree(g->weights), cudaFree(g->acts), cudaFree(g->lens);
    free(g);
}

int text_gpu_open(lathe_text_encoder *e, const char *device) {
    int automatic = !strcmp(device, "auto"), ordinal = automatic ? 0 : lathe_cuda_ordinal(device), count = 0;
    if (ordinal < 0) return lathe_fail(LATHE_EINVAL, "device %s: cpu, cuda, cuda:N or auto", device);
    const char *reason = NULL;
    if (!lathe_k_cuda_available(&reason) || cudaGetDeviceCount(&count) != cudaSuccess || ordinal >= count) {
        if (automatic) {
            lathe_log(LATHE_LOG_INFO, "device", "no usable GPU (%s): the text encoder runs on the CPU",
                      reason ? reason : "none");
            return 0;
        }
        return lathe_fail(LATHE_EUNSUPPORTED, "device %s: %s (%d CUDA devices)", device,
                          reason ? reason : "no such device", count);
    }
    struct text_gpu *g = calloc(1, sizeof *g);
    if (!g) return lathe_fail(LATHE_ENOMEM, "text encoder GPU state");
    g->device = ordinal;
    const char *error = "CUDA failed";
    int ok = cudaSetDevice(ordinal) == cudaSuccess && !lathe_kc_create(NULL, &g->ctx, &error) &&
             cudaMalloc((void **)&g->weights, e->nweights * sizeof(float)) == cudaSuccess &&
             cudaMemcpy(g->weights, e->weights, e->nweights * sizeof(float), cudaMemcpyHostToDevice) == cudaSuccess;
    if (!ok) {
        text_gpu_free(g);
        if (automatic) {
            lathe_log(LATHE_LOG_WARN, "device", "cannot use cuda:%d (%s): the text encoder runs on the CPU", ordinal,
                      error);
            return 0;
        }
        return lathe_fail(LATHE_ENOMEM, "text encoder on %s: %s", device, error);
    }
    e->gpu = g;
    return 0;
}

/* The device copy of a host weight pointer. */
static const float *dev(const lathe_text_encoder *e, const float *host) { return e->gpu->weights + (host - e->weights); }

static int reserve(struct text_gpu *g, size_t floats, int b) {
    if (floats > g->act_floats) {
        cudaFree(g->acts), g->acts = NULL, g->act_floats = 0;
        if (cudaMalloc((void **)&g->acts, floats * sizeof(float)) != cudaSuccess) return -1;
        g->act_floats = floats;
    }
    if (b > g->lens_cap) {
        cudaFree(g->lens), g->lens = NULL, g->lens_cap = 0;
        if (cudaMalloc((void **)&g->lens, (size_t)b * sizeof(int32_t)) != cudaSuccess) return -1;
        g->lens_cap = b;
    }
    return 0;
}

int text_gpu_layers(lathe_text_encoder *e, int b, int l, const int32_t *lens, float *x_host) {
    struct text_gpu *g = e->gpu;
    int m = b * l, d = e->dim;
    size_t md = (size_t)m * d;
    cudaSetDevice(g->device);
    if (reserve(g, md * 6 + (size_t)m * e->inter + 2 * (size_t)m, b))
        return lathe_fail(LATHE_ENOMEM, "text encoder activations on the GPU (%d tokens)", m);
    float *x = g->acts, *qkv = x + md, *ctx = qkv + 3 * md, *t = ctx + md, *f = t + md;
    float *mean = f + (size_t)m * e->inter, *inv = mean + m;
    const char *error = "CUDA failed";
    int rc = cudaMemcpy(x, x_host, md * sizeof(float), cudaMemcpyHostToDevice) != cudaSuccess ||
             cudaMemcpy(g->lens, lens, (size_t)b * sizeof(int32_t), cudaMemcpyHostToDevice) != cudaSuccess;
    for (int i = 0; !rc && i < e->nlayers; i++) {
        const text_layer *L = &e->layer[i];
        rc = lathe_kc_linear_fwd(g->ctx, m, d, 3 * d, x, dev(e, L->wqkv), dev(e, L->bqkv), qkv, &error) ||
             lathe_kc_sdpa_fwd(g->ctx, b, l, d, e->heads, qkv, g->lens, ctx, &error) ||
             lathe_kc_linear_fwd(g->ctx, m, d, d, ctx, dev(e, L->wo), dev(e, L->bo), t, &error) ||
             lathe_kc_add_rows(g->ctx, 1, md, x, 0, t, 0, &error) ||
             lathe_kc_layernorm_fwd(g->ctx, m, d, t, dev(e, L->ln1_g), dev(e, L->ln1_b), e->eps, mean, inv, ctx,
                                    &error) ||
             lathe_kc_linear_fwd(g->ctx, m, d, e->inter, ctx, dev(e, L->wi), dev(e, L->bi), f, &error) ||
             lathe_kc_act_fwd(g->ctx, LATHE_ACT_GELU, (size_t)m * e->inter, f, 0, f, &error) ||
             lathe_kc_linear_fwd(g->ctx, m, e->inter, d, f, dev(e, L->wf), dev(e, L->bf), t, &error) ||
             lathe_kc_add_rows(g->ctx, 1, md, ctx, 0, t, 0, &error) ||
             lathe_kc_layernorm_fwd(g->ctx, m, d, t, dev(e, L->ln2_g), dev(e, L->ln2_b), e->eps, mean, inv, x,
                                    &error);
    }
    if (!rc) rc = cudaMemcpy(x_host, x, md * sizeof(float), cudaMemcpyDeviceToHost) != cudaSuccess;
    return rc ? lathe_fail(LATHE_EIO, "text encoder on cuda:%d: %s", g->device, error) : 0;
}

#else /* built without CUDA */

void text_gpu_free(struct text_gpu *g) { (void)g; }

int text_gpu_open(lathe_text_encoder *e, const char *device) {
    (void)e;
    if (!strcmp(device, "auto")) return 0;
    return lathe_fail(LATHE_EUNSUPPORTED, "device %s: lathe was built without CUDA (CUDA=0 or no nvcc)", device);
}

int text_gpu_layers(lathe_text_encoder *e, int b, int l, const int32_t *lens, float *x) {
    (void)e, (void)b, (void)l, (void)lens, (void)x;
    return lathe_fail(LATHE_EUNSUPPORTED, "lathe was built without CUDA");
}
#endif
