/* nn_f32.c - the float32 CPU kernels of nn.h (what training uses). */
#include <cblas.h>

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

size_t lathe_k_mha_saved(int b, int l, int d, int h) { return 4 * (size_t)b * l * d + (size_t)b * h * l * l; }
size_t lathe_k_mha_workspace(int b, int l, int d, int h) {
    (void)h;
    return 4 * (size_t)b * l * d + (size_t)l * l;
}
