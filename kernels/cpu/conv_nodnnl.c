/* conv_nodnnl.c - conv_dnnl.h in a build without oneDNN (`make DNNL=0`, e.g. the GPU bundle: a GPU
 * machine need not have oneDNN): every call declines, so the graph runs its im2col + OpenBLAS
 * convolutions (nn.h), which have the same contract. */
#include "kernels/conv_dnnl.h"

int lathe_k_conv2d_fwd_dnnl(const lathe_conv_shape *s, const float *x, const float *w, const float *b, float *y) {
    (void)s, (void)x, (void)w, (void)b, (void)y;
    return -1;
}

int lathe_k_conv2d_fwd_dnnl_const(const lathe_conv_shape *s, const float *x, const float *w, const float *b, float *y,
                                  int act, float slope, void **wcache) {
    (void)s, (void)x, (void)w, (void)b, (void)y, (void)act, (void)slope, (void)wcache;
    return -1;
}

void lathe_k_conv_dnnl_wcache_free(void *wcache) { (void)wcache; }

int lathe_k_conv2d_bwd_dnnl(const lathe_conv_shape *s, const float *x, const float *w, const float *dy, float *dx,
                            float *dw, float *db) {
    (void)s, (void)x, (void)w, (void)dy, (void)dx, (void)dw, (void)db;
    return -1;
}

int lathe_k_conv2d_fwd_dnnl_yblocked(const lathe_conv_shape *s, const float *x, const float *w, const float *b, float *y) {
    return lathe_k_conv2d_fwd_dnnl(s, x, w, b, y);
}

int lathe_k_conv2d_bwd_dnnl_yblocked(const lathe_conv_shape *s, const float *x, const float *w, const float *dy,
                                     float *dx, float *dw, float *db) {
    return lathe_k_conv2d_bwd_dnnl(s, x, w, dy, dx, dw, db);
}

void lathe_k_conv_dnnl_release(void) {}
