/* conv_dnnl.h - float32 CPU convolutions through oneDNN, with the contract of nn.h's
 * lathe_k_conv2d_fwd_f32 / _bwd_f32 (NCHW tensors, OIHW weights, gradients accumulate). oneDNN
 * computes in the blocked layouts it picks for the machine; the plain tensors are reordered in
 * and out on every call (experiments/bench/conv: 1.6x faster than im2col + OpenBLAS on the
 * detector's shapes, reorders included). Primitives are created once per shape and cached;
 * 3x3 stride-1 shapes use oneDNN's Winograd kernels where it has them. LATHE_CONV=direct in the
 * environment keeps oneDNN on its direct algorithm, LATHE_CONV=im2col turns this path off (for
 * comparisons). Results are deterministic for a thread count, as oneDNN's CPU primitives are. */
#ifndef LATHE_KERNELS_CONV_DNNL_H
#define LATHE_KERNELS_CONV_DNNL_H
#include "nn.h"
#ifdef __cplusplus
extern "C" {
#endif

/* y = conv(x, w) + b (b may be NULL). Returns 0, or -1 when oneDNN is off or refuses the shape:
 * the caller then runs lathe_k_conv2d_fwd_f32. */
int lathe_k_conv2d_fwd_dnnl(const lathe_conv_shape *s, const float *x, const float *w, const float *b, float *y);
/* The same for inference with weights that no longer change (an engine): y = act(conv(x, w) + b)
 * with the activation act (LATHE_ACT_*, slope for leaky; -1 none) fused into the convolution, and
 * *wcache (NULL at first; one per weight tensor) keeping w in the layout oneDNN picked for this
 * shape, made on the first call and reused while that layout stays the same, so w is not reordered
 * on every call. w must not change while its cache lives. Returns as lathe_k_conv2d_fwd_dnnl. */
int lathe_k_conv2d_fwd_dnnl_const(const lathe_conv_shape *s, const float *x, const float *w, const float *b, float *y,
                                  int act, float slope, void **wcache);
/* Frees a weight cache of lathe_k_conv2d_fwd_dnnl_const (NULL is fine). */
void lathe_k_conv_dnnl_wcache_free(void *wcache);
/* dx, dw, db accumulate (each may be NULL). Returns 0 or -1 as above; a -1 comes before anything
 * is written (a refused shape, or no memory for its buffers, found when its primitives are made). */
int lathe_k_conv2d_bwd_dnnl(const lathe_conv_shape *s, const float *x, const float *w, const float *dy, float *dx,
                            float *dw, float *db);
/* lathe_k_conv2d_fwd_dnnl with y written in the channel-blocked layout (N, K/B, P, Q, B) in which
 * this shape's three training primitives all keep y and dy, B (16 or 8) dividing K: returns B. 0
 * when they agree on no such block (nothing written: run lathe_k_conv2d_fwd_dnnl), -1 as that call
 * (oneDNN off or refusing the shape, or failing). The graph hands y to the batch norm after the
 * conv in that layout (nn.h, lathe_k_bn_act_fwd_blocked) and takes dy back in it:
 * lathe_k_conv2d_bwd_dnnl_yblocked reads dy in it (-1 as lathe_k_conv2d_bwd_dnnl, or when the
 * shape has no block). No reorder either way. */
int lathe_k_conv2d_fwd_dnnl_yblocked(const lathe_conv_shape *s, const float *x, const float *w, const float *b, float *y);
int lathe_k_conv2d_bwd_dnnl_yblocked(const lathe_conv_shape *s, const float *x, const float *w, const float *dy,
                                     float *dx, float *dw, float *db);
/* Frees every cached primitive and the engine (the next call creates them again, reading
 * LATHE_CONV anew). */
void lathe_k_conv_dnnl_release(void);

#ifdef __cplusplus
}
#endif
#endif
