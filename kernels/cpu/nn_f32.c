/* nn_f32.c - the float32 CPU kernels of nn.h (what training uses). */
#include <cblas.h>
#include <omp.h>
#include <string.h>

#include "kernels/nn.h"

#define T float
#define SUF _f32
#define GEMM cblas_sgemm
#include "nn_ops.inc"

int lathe_k_conv_out(int in, int kernel, int stride, int pad, int dilation) {
    if (stride < 1 || dilation < 1) return 0;
    return (in + 2 * pad - dilation * (kernel - 1) - 1) / stride + 1;
}

size_t lathe_k_conv_workspace(const lathe_conv_shape *s) {
    size_t col = (size_t)(s->c / s->groups) * s->r * s->s * s->p * s->q;
    size_t grads = (size_t)s->k * (s->c / s->groups) * s->r * s->s + (size_t)s->k;
    return (size_t)(s->threads > 0 ? s->threads : 1) * (col + grads);
}

size_t lathe_k_sdpa_workspace(int l) { return (size_t)omp_get_max_threads() * l * l; }

size_t lathe_k_mha_saved(int b, int l, int d, int h) { return 4 * (size_t)b * l * d + (size_t)b * h * l * l; }
size_t lathe_k_mha_workspace(int b, int l, int d, int h) {
    (void)h;
    return 4 * (size_t)b * l * d + (size_t)l * l;
}

void lathe_k_to_bf16(size_t n, const float *x, uint16_t *y) {
    for (size_t i = 0; i < n; i++) {
        uint32_t bits;
        memcpy(&bits, &x[i], sizeof bits);
        if ((bits & 0x7fffffffu) > 0x7f800000u) y[i] = 0x7fff; /* NaN: the canonical one, as CUDA's cast */
        else y[i] = (uint16_t)((bits + 0x7fffu + ((bits >> 16) & 1)) >> 16);        /* nearest, ties to even */
    }
}

void lathe_k_from_bf16(size_t n, const uint16_t *x, float *y, int accumulate) {
    for (size_t i = 0; i < n; i++) {
        uint32_t bits = (uint32_t)x[i] << 16;
        float v;
        memcpy(&v, &bits, sizeof v);
        y[i] = accumulate ? y[i] + v : v;
    }
}
