/* nn_cuda.h - the CUDA twins of kernels/nn.h (float32): same shapes, same accumulate-into-gradient
 * contract, device pointers (suffix _gpu), a stream (NULL = default) and, on failure, -1 with the
 * CUDA/cuDNN/cuBLAS error text in *error. Convolutions go through cuDNN (the fastest algorithm
 * cudnnFind* reports for the shape, cached per context), linear layers through cuBLAS; the rest are
 * lathe's own kernels, written so every reduction has a fixed order (no atomics): results are
 * deterministic run to run. tests/gpu/test_nn_parity.c compares each with its CPU twin. */
#ifndef LATHE_KERNELS_NN_CUDA_H
#define LATHE_KERNELS_NN_CUDA_H
#include <stddef.h>
#include <stdint.h>

#include "nn.h"
#ifdef __cplusplus
extern "C" {
#endif

typedef struct lathe_cuda_ctx lathe_cuda_ctx; /* cuDNN and cuBLAS handles, a workspace, the stream */

int lathe_kc_create(void *stream, lathe_cuda_ctx **out, const char **error);
void lathe_kc_free(lathe_cuda_ctx *ctx);

int lathe_kc_conv2d_fwd(lathe_cuda_ctx *ctx, const lathe_conv_shape *s, const float *x_gpu, const float *w_gpu,
                        const float *b_gpu, float *y_gpu, const char **error);
int lathe_kc_conv2d_bwd(lathe_cuda_ctx *ctx, const lathe_conv_shape *s, const float *x_gpu, const float *w_gpu,
                        const float *dy_gpu, float *dx_gpu, float *dw_gpu, float *db_gpu, const char **error);
int lathe_kc_linear_fwd(lathe_cuda_ctx *ctx, int m, int d, int k, const float *x_gpu, const float *w_gpu,
                        const float *b_gpu, float *y_gpu, const char **error);
int lathe_kc_linear_bwd(lathe_cuda_ctx *ctx, int m, int d, int k, const float *x_gpu, const float *w_gpu,
                        const float *dy_gpu, float *dx_gpu, float *dw_gpu, float *db_gpu, const char **error);
int lathe_kc_bn_fwd(lathe_cuda_ctx *ctx, int n, int c, int hw, const float *x_gpu, const float *gamma_gpu,
                    const float *beta_gpu, float *running_mean_gpu, float *running_var_gpu, float momentum, float eps,
                    int train, float *saved_mean_gpu, float *saved_invstd_gpu, float *y_gpu, const char **error);
int lathe_kc_bn_bwd(lathe_cuda_ctx *ctx, int n, int c, int hw, int train, const float *x_gpu, const float *gamma_gpu,
                    const float *saved_mean_gpu, const float *saved_invstd_gpu, const float *dy_gpu, float *dx_gpu,
                    float *dgamma_gpu, float *dbeta_gpu, const char **error);
int lathe_kc_act_fwd(lathe_cuda_ctx *ctx, int act, size_t n, const float *x_gpu, float slope, float *y_gpu,
                     const char **error);
int lathe_kc_act_bwd(lathe_cuda_ctx *ctx, int act, size_t n, const float *x_gpu, float slope, const float *dy_gpu,
                     float *dx_gpu, const char **error);
int lathe_kc_maxpool_fwd(lathe_cuda_ctx *ctx, int n, int c, int h, int w, int r, int stride, int pad, int p, int q,
                         const float *x_gpu, float *y_gpu, int32_t *argmax_gpu, const char **error);
int lathe_kc_maxpool_bwd(lathe_cuda_ctx *ctx, int n, int c, int h, int w, int r, int stride, int pad, int p, int q,
                         const int32_t *argmax_gpu, const float *dy_gpu, float *dx_gpu, const char **error);
int lathe_kc_avgpool_fwd(lathe_cuda_ctx *ctx, int n, int c, int h, int w, int r, int stride, int pad, int p, int q,
                         const float *x_gpu, float *y_gpu, const char **error);
int lathe_kc_avgpool_bwd(lathe_cuda_ctx *ctx, int n, int c, int h, int w, int r, int stride, int pad, int p, int q,
                         const float *dy_gpu, float *dx_gpu, const char **error);
int lathe_kc_upsample_fwd(lathe_cuda_ctx *ctx, int n, int c, int h, int w, int f, const float *x_gpu, float *y_gpu,
                          const char **error);
int lathe_kc_upsample_bwd(lathe_cuda_ctx *ctx, int n, int c, int h, int w, int f, const float *dy_gpu, float *dx_gpu,
                          const char **error);
int lathe_kc_layernorm_fwd(lathe_cuda_ctx *ctx, int m, int d, const float *x_gpu, const float *gamma_gpu,
                           const float *beta_gpu, float eps, float *mean_gpu, float *invstd_gpu, float *y_gpu,
                           const char **error);
int lathe_kc_layernorm_bwd(lathe_cuda_ctx *ctx, int m, int d, const float *x_gpu, const float *gamma_gpu,
                           const float *mean_gpu, const float *invstd_gpu, const float *dy_gpu, float *dx_gpu,
                           float *dgamma_gpu, float *dbeta_gpu, const char **error);
/* the graph's data movement, pooling to 1x1 and dropout: as lathe_k_transpose, _add_rows, _gap_*,
 * _dropout_* of nn.h (dropout draws the same mask for the same key) */
int lathe_kc_transpose(lathe_cuda_ctx *ctx, int n, int rows, int cols, const float *x_gpu, size_t x_stride,
                       float *y_gpu, size_t y_stride, int accumulate, const char **error);
int lathe_kc_add_rows(lathe_cuda_ctx *ctx, int n, size_t cols, const float *x_gpu, size_t x_stride, float *y_gpu,
                      size_t y_stride, const char **error);
int lathe_kc_gap_fwd(lathe_cuda_ctx *ctx, int nc, int hw, const float *x_gpu, float *y_gpu, const char **error);
int lathe_kc_gap_bwd(lathe_cuda_ctx *ctx, int nc, int hw, const float *dy_gpu, float *dx_gpu, const char **error);
/* FiLM as lathe_k_film_fwd / _bwd (the backward's sums: one thread per channel, in the CPU's order) */
int lathe_kc_film_fwd(lathe_cuda_ctx *ctx, int n, int c, int hw, const float *x_gpu, const float *p_gpu, float *y_gpu,
                      const char **error);
int lathe_kc_film_bwd(lathe_cuda_ctx *ctx, int n, int c, int hw, const float *x_gpu, const float *p_gpu,
                      const float *dy_gpu, float *dx_gpu, float *dp_gpu, const char **error);
int lathe_kc_dropout_fwd(lathe_cuda_ctx *ctx, size_t n, const float *x_gpu, float drop, uint64_t key, float *mask_gpu,
                         float *y_gpu, const char **error);
int lathe_kc_dropout_bwd(lathe_cuda_ctx *ctx, size_t n, const float *mask_gpu, const float *dy_gpu, float *dx_gpu,
                         const char **error);
/* multi-head self-attention as lathe_k_mha_*: saved_gpu holds lathe_k_mha_saved floats (the CPU
 * layout); the backward pass needs lathe_kc_mha_workspace floats in ws_gpu (more than the CPU's:
 * every head of an image at once) */
size_t lathe_kc_mha_workspace(int b, int l, int d, int h);
int lathe_kc_mha_fwd(lathe_cuda_ctx *ctx, int b, int l, int d, int h, const float *x_gpu, const float *w_in_gpu,
                     const float *b_in_gpu, const float *w_out_gpu, const float *b_out_gpu, float *saved_gpu,
                     float *y_gpu, const char **error);
int lathe_kc_mha_bwd(lathe_cuda_ctx *ctx, int b, int l, int d, int h, const float *x_gpu, const float *w_in_gpu,
                     const float *w_out_gpu, const float *saved_gpu, const float *dy_gpu, float *dx_gpu,
                     float *dw_in_gpu, float *db_in_gpu, float *dw_out_gpu, float *db_out_gpu, float *ws_gpu,
                     const char **error);
/* a contrastive head's scaled L2 normalization, as lathe_k_l2norm_* (log_scale_gpu and
 * dlog_scale_gpu: one float on the device; norm_gpu: 2 M floats, the second half the backward's
 * per-row scale gradients, summed in order) */
int lathe_kc_l2norm_fwd(lathe_cuda_ctx *ctx, int m, int d, const float *x_gpu, const float *log_scale_gpu,
                        float max_scale, float *norm_gpu, float *y_gpu, const char **error);
int lathe_kc_l2norm_bwd(lathe_cuda_ctx *ctx, int m, int d, const float *x_gpu, const float *log_scale_gpu,
                        float max_scale, const float *norm_gpu, const float *dy_gpu, float *dx_gpu,
                        float *dlog_scale_gpu, const char **error);
/* an open-vocabulary head's text scoring, as lathe_k_vocab_* (log_scale_gpu, bias_gpu and their
 * gradients: one float each on the device; ws_gpu: M E floats, E >= 2) */
int lathe_kc_vocab_fwd(lathe_cuda_ctx *ctx, int m, int box, int e, int k, const float *x_gpu, const float *text_gpu,
                       const float *log_scale_gpu, const float *bias_gpu, float *saved_gpu, float *y_gpu,
                       const char **error);
int lathe_kc_vocab_bwd(lathe_cuda_ctx *ctx, int m, int box, int e, int k, const float *text_gpu,
                       const float *log_scale_gpu, const float *saved_gpu, const float *dy_gpu, float *ws_gpu,
                       float *dx_gpu, float *dlog_scale_gpu, float *dbias_gpu, const char **error);
/* scaled dot-product attention for inference, as lathe_k_sdpa_fwd (lens_gpu on the device) */
int lathe_kc_sdpa_fwd(lathe_cuda_ctx *ctx, int b, int l, int d, int h, const float *qkv_gpu, const int32_t *lens_gpu,
                      float *y_gpu, const char **error);
/* mean loss into *loss (host), gradient of the mean into dlogits_gpu (may be NULL) */
int lathe_kc_softmax_ce(lathe_cuda_ctx *ctx, int m, int k, const float *logits_gpu, const int32_t *labels_gpu,
                        float smoothing, float *dlogits_gpu, double *loss, const char **error);
/* fused optimizer updates of n values (the CPU versions live in libcore/nn/optim.c):
 * SGD: g' = g*scale + wd*w; m = mu*m + g'; w -= lr*(nesterov ? g' + mu*m : m)
 * AdamW: w -= lr*wd*w; m,v moments; w -= lr/c1 * m / (sqrt(v)/sqrt(c2) + eps) */
int lathe_kc_sgd_step(lathe_cuda_ctx *ctx, size_t n, float *w_gpu, const float *g_gpu, float *m_gpu, float lr,
                      float mu, int nesterov, float wd, float scale, const char **error);
int lathe_kc_adamw_step(lathe_cuda_ctx *ctx, size_t n, float *w_gpu, const float *g_gpu, float *m_gpu, float *v_gpu,
                        float lr, float b1, float b2, float eps, float wd, float scale, float c1, float c2,
                        const char **error);

/* bf16 mixed precision: the same layers with their operands rounded to bf16 (round to nearest
 * even) and multiplied on the tensor cores with float32 accumulation; inputs, outputs and gradients
 * stay float32 (accumulated as the fp32 versions do; a convolution's y, dx and dw pass through bf16
 * once, as cuDNN wants them in the operands' type). A convolution shape without a deterministic
 * bf16 algorithm runs in float32. The operands' bf16 copies live in the
 * context's scratch: lathe_kc_bf16_reserve sizes it up front (the graph does, for its largest
 * layer; a call that needs more grows it). The casts are exposed for their parity test. */
int lathe_kc_bf16_reserve(lathe_cuda_ctx *ctx, size_t elems, const char **error);
size_t lathe_kc_conv2d_bf16_scratch(const lathe_conv_shape *s);
size_t lathe_kc_linear_bf16_scratch(int m, int d, int k);
int lathe_kc_conv2d_fwd_bf16(lathe_cuda_ctx *ctx, const lathe_conv_shape *s, const float *x_gpu, const float *w_gpu,
                             const float *b_gpu, float *y_gpu, const char **error);
int lathe_kc_conv2d_bwd_bf16(lathe_cuda_ctx *ctx, const lathe_conv_shape *s, const float *x_gpu, const float *w_gpu,
                             const float *dy_gpu, float *dx_gpu, float *dw_gpu, float *db_gpu, const char **error);
int lathe_kc_linear_fwd_bf16(lathe_cuda_ctx *ctx, int m, int d, int k, const float *x_gpu, const float *w_gpu,
                             const float *b_gpu, float *y_gpu, const char **error);
int lathe_kc_linear_bwd_bf16(lathe_cuda_ctx *ctx, int m, int d, int k, const float *x_gpu, const float *w_gpu,
                             const float *dy_gpu, float *dx_gpu, float *dw_gpu, float *db_gpu, const char **error);
int lathe_kc_to_bf16(lathe_cuda_ctx *ctx, size_t n, const float *x_gpu, uint16_t *y_gpu, const char **error);
int lathe_kc_from_bf16(lathe_cuda_ctx *ctx, size_t n, const uint16_t *x_gpu, float *y_gpu, int accumulate,
                       const char **error);

/* *out_gpu (one double on the device) = the sum of x^2 over n values, added in a fixed order (the
 * optimizer's gradient norm); EMA of weights: ema = decay ema + (1 - decay) w; and an exchange of
 * two buffers (evaluating with the averaged weights) */
int lathe_kc_sumsq(lathe_cuda_ctx *ctx, size_t n, const float *x_gpu, double *out_gpu, const char **error);
int lathe_kc_ema(lathe_cuda_ctx *ctx, size_t n, float *ema_gpu, const float *w_gpu, float decay, const char **error);
int lathe_kc_swap(lathe_cuda_ctx *ctx, size_t n, float *a_gpu, float *b_gpu, const char **error);

#ifdef __cplusplus
}
#endif
#endif
