/* nn.h - the CPU kernels of the compute core, forward and backward, on plain buffers.
 * Shape letters: N batch, C channels in, K channels out, H W input, P Q output, R S kernel,
 * M rows, D features. Layout NCHW, row-major. Every kernel exists as _f32 (what lathe trains with)
 * and _f64 (the same source compiled for double: the finite-difference tests). Backward kernels
 * ACCUMULATE into their d* outputs (callers zero them once per step), so a tensor used by two
 * layers receives both gradients. Kernels know buffers and shapes only. */
#ifndef LATHE_KERNELS_NN_H
#define LATHE_KERNELS_NN_H
#include <stddef.h>
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int n, c, h, w;       /* input */
    int k, r, s;          /* filters (K, C/groups, R, S) */
    int stride, pad, dilation, groups;
    int p, q;             /* output size: (h + 2 pad - dilation (r - 1) - 1) / stride + 1 */
    int threads;          /* images run in parallel on this many threads (>= 1; the workspace is sized
                             for it, and the result does not depend on it) */
} lathe_conv_shape;

/* The blocked batch norm kernels' sums: per channel, LATHE_K_BN_PARTS sample ranges x
 * LATHE_K_BN_LANES lanes, for two sums, and two totals */
#define LATHE_K_BN_PARTS 8
#define LATHE_K_BN_LANES 8
#define LATHE_K_BN_BLOCKED_SCRATCH(c) ((size_t)(c) * (2 * LATHE_K_BN_PARTS * LATHE_K_BN_LANES + 2))

/* Floats of the workspace of lathe_k_sdpa_fwd: an L x L score matrix per OpenMP thread. */
size_t lathe_k_sdpa_workspace(int l);
/* Floats of saved activations and of backward workspace for multi-head attention. */
size_t lathe_k_mha_saved(int b, int l, int d, int h);
size_t lathe_k_mha_workspace(int b, int l, int d, int h);

/* Output size of a convolution or pooling window along one axis; < 1 means it does not fit. */
int lathe_k_conv_out(int in, int kernel, int stride, int pad, int dilation);
/* Floats of the workspace a conv call needs: per thread, an im2col matrix (C/groups) R S x P Q and
 * (for the backward pass) private weight and bias gradients. */
size_t lathe_k_conv_workspace(const lathe_conv_shape *s);

#define LATHE_K_DECLARE(T, SUF)                                                                              \
    /* y (N,K,P,Q) = conv(x (N,C,H,W), w (K,C/g,R,S)) + b (K) (b may be NULL); ws: conv_workspace */        \
    void lathe_k_conv2d_fwd##SUF(const lathe_conv_shape *s, const T *x, const T *w, const T *b, T *y, T *ws); \
    /* dx, dw, db accumulate (each may be NULL) */                                                          \
    void lathe_k_conv2d_bwd##SUF(const lathe_conv_shape *s, const T *x, const T *w, const T *dy, T *dx, T *dw, \
                                 T *db, T *ws);                                                             \
    /* y (M,K) = x (M,D) w^T (K,D) + b (K) */                                                               \
    void lathe_k_linear_fwd##SUF(int m, int d, int k, const T *x, const T *w, const T *b, T *y);             \
    void lathe_k_linear_bwd##SUF(int m, int d, int k, const T *x, const T *w, const T *dy, T *dx, T *dw, T *db); \
    /* batch norm over (N, H W) per channel. train: batch statistics, saved mean/invstd (C), running    \
     * stats updated with momentum (new = (1-m) old + m batch, unbiased var); eval: running stats */     \
    void lathe_k_bn_fwd##SUF(int n, int c, int hw, const T *x, const T *gamma, const T *beta, T *running_mean,  \
                             T *running_var, T momentum, T eps, int train, T *saved_mean, T *saved_invstd, T *y); \
    /* train 0: the statistics were constants (eval mode), so dx = dy gamma invstd */                   \
    void lathe_k_bn_bwd##SUF(int n, int c, int hw, int train, const T *x, const T *gamma, const T *saved_mean, \
                             const T *saved_invstd, const T *dy, T *dx, T *dgamma, T *dbeta);                  \
    /* batch norm, then activation act on its output, in one pass: y = act(bn(x)), the bn's output not \
     * stored (its backward takes dy at the activation's output and makes the bn's output again; assign: \
     * dx is overwritten, not accumulated, and serves as the backward's scratch) */                        \
    void lathe_k_bn_act_fwd##SUF(int n, int c, int hw, const T *x, const T *gamma, const T *beta,             \
                                 T *running_mean, T *running_var, T momentum, T eps, int train, int act,       \
                                 T slope, T *saved_mean, T *saved_invstd, T *y);                               \
    void lathe_k_bn_act_bwd##SUF(int n, int c, int hw, int train, int act, T slope, const T *x, const T *gamma, \
                                 const T *beta, const T *saved_mean, const T *saved_invstd, const T *dy, T *dx, \
                                 int assign, T *dgamma, T *dbeta);                                              \
    /* the same with x and dx in the channel-blocked layout (N, C / blk, H W, blk) of oneDNN's            \
     * convolutions (blk 8 or 16, dividing c), y and dy NCHW; dx is overwritten; scratch holds          \
     * LATHE_K_BN_BLOCKED_SCRATCH(c) doubles. Sums per fixed range of samples: the results do not depend \
     * on the thread count, and equal the plain kernels' to rounding. */                                 \
    void lathe_k_bn_act_fwd_blocked##SUF(int n, int c, int hw, int blk, const T *x, const T *gamma,          \
                                         const T *beta, T *running_mean, T *running_var, T momentum, T eps,  \
                                         int train, int act, T slope, T *saved_mean, T *saved_invstd, T *y,  \
                                         double *scratch);                                                   \
    void lathe_k_bn_act_bwd_blocked##SUF(int n, int c, int hw, int blk, int train, int act, T slope,          \
                                         const T *x, const T *gamma, const T *beta, const T *saved_mean,     \
                                         const T *saved_invstd, const T *dy, T *dx, T *dgamma, T *dbeta,     \
                                         double *scratch);                                                   \
    /* layer norm over the last d values of each of m rows */                                              \
    void lathe_k_layernorm_fwd##SUF(int m, int d, const T *x, const T *gamma, const T *beta, T eps, T *mean,    \
                                    T *invstd, T *y);                                                      \
    void lathe_k_layernorm_bwd##SUF(int m, int d, const T *x, const T *gamma, const T *mean, const T *invstd,   \
                                    const T *dy, T *dx, T *dgamma, T *dbeta);                              \
    /* elementwise activations: act one of LATHE_ACT_*, slope for leaky ReLU */                             \
    void lathe_k_act_fwd##SUF(int act, size_t n, const T *x, T slope, T *y);                                 \
    void lathe_k_act_bwd##SUF(int act, size_t n, const T *x, T slope, const T *dy, T *dx);                   \
    /* max pool (argmax saved as the input offset inside the image) and average pool (padding counted) */  \
    void lathe_k_maxpool_fwd##SUF(int n, int c, int h, int w, int r, int stride, int pad, int p, int q,       \
                                  const T *x, T *y, int32_t *argmax);                                      \
    void lathe_k_maxpool_bwd##SUF(int n, int c, int h, int w, int p, int q, const int32_t *argmax,          \
                                  const T *dy, T *dx);                                                     \
    void lathe_k_avgpool_fwd##SUF(int n, int c, int h, int w, int r, int stride, int pad, int p, int q,       \
                                  const T *x, T *y);                                                       \
    void lathe_k_avgpool_bwd##SUF(int n, int c, int h, int w, int r, int stride, int pad, int p, int q,       \
                                  const T *dy, T *dx);                                                     \
    /* nearest upsampling by an integer factor */                                                           \
    void lathe_k_upsample_fwd##SUF(int n, int c, int h, int w, int f, const T *x, T *y);                     \
    void lathe_k_upsample_bwd##SUF(int n, int c, int h, int w, int f, const T *dy, T *dx);                   \
    /* per item b of n: y (cols, rows) = x (rows, cols) transposed, items x_stride and y_stride apart  \
     * (accumulate: y +=); the graph's concat-free moves (detect heads, attention tokens) */            \
    void lathe_k_transpose##SUF(int n, int rows, int cols, const T *x, size_t x_stride, T *y, size_t y_stride, \
                                int accumulate);                                                       \
    /* per item b of n: y[b y_stride + j] += x[b x_stride + j] for j < cols (concat and add backward) */ \
    void lathe_k_add_rows##SUF(int n, size_t cols, const T *x, size_t x_stride, T *y, size_t y_stride);   \
    /* global average pool of nc planes of hw values, and its backward (accumulates) */               \
    void lathe_k_gap_fwd##SUF(int nc, int hw, const T *x, T *y);                                         \
    void lathe_k_gap_bwd##SUF(int nc, int hw, const T *dy, T *dx);                                       \
    /* inverted dropout: mask[j] = 1/(1-drop) when splitmix64(key ^ j) as a fraction < 1 - drop, else \
     * 0; y = x mask. The same key gives the same mask on every device and thread count. */            \
    void lathe_k_dropout_fwd##SUF(size_t n, const T *x, T drop, uint64_t key, T *mask, T *y);            \
    void lathe_k_dropout_bwd##SUF(size_t n, const T *mask, const T *dy, T *dx);                          \
    /* softmax cross-entropy of logits (M,K) with labels (M) and label smoothing e: returns the mean   \
     * loss over rows with label >= 0; dlogits (may be NULL) gets the gradient of that mean */          \
    double lathe_k_softmax_ce##SUF(int m, int k, const T *logits, const int32_t *labels, T smoothing,         \
                                   T *dlogits);                                                            \
    /* FiLM (feature-wise linear modulation): y[n][c][j] = x[n][c][j] (1 + p[n][c]) + p[n][C + c] over the \
     * hw positions j of each channel, p holding 2C values per sample (a scale and a shift per channel) */ \
    void lathe_k_film_fwd##SUF(int n, int c, int hw, const T *x, const T *p, T *y);                         \
    /* its gradient, added: dx += dy (1 + scale), dp[scale] += sum_j dy x, dp[shift] += sum_j dy (either     \
     * output may be NULL) */                                                                               \
    void lathe_k_film_bwd##SUF(int n, int c, int hw, const T *x, const T *p, const T *dy, T *dx, T *dp);    \
    /* binary cross-entropy with logits, mean over n values; dlogits (may be NULL) gets its gradient */     \
    double lathe_k_bce_logits##SUF(size_t n, const T *logits, const T *targets, T *dlogits);                \
    /* multi-head self-attention over x (B, L, D) with H heads (D % H == 0): Q, K, V = x Wq^T + bq, ...; \
     * per head softmax(Q K^T / sqrt(D/H)) V, heads concatenated, then y = C Wo^T + bo. w_in (3D, D)   \
     * stacks Wq, Wk, Wv and b_in (3D) their biases, as PyTorch's in_proj_weight/bias; w_out (D, D),    \
     * b_out (D). saved: lathe_k_mha_saved floats (Q, K, V, C, the attention probabilities); the       \
     * backward pass needs lathe_k_mha_workspace floats in ws. */                                       \
    void lathe_k_mha_fwd##SUF(int b, int l, int d, int h, const T *x, const T *w_in, const T *b_in,         \
                              const T *w_out, const T *b_out, T *saved, T *y);                            \
    /* rows of y (M, D) = e^s x / |x| (the norm floored at 1e-12, e^s at most max_scale), with s =  \
     * *log_scale: a contrastive head's scaled unit embeddings; norms (M) saved for the backward */ \
    void lathe_k_l2norm_fwd##SUF(int m, int d, const T *x, const T *log_scale, T max_scale, T *norm, T *y); \
    /* dx += e^s (dy - u (u . dy)) / |x| with u = x / |x|; *dlog_scale += sum(dy . y) (either may be  \
     * NULL; no scale gradient while e^s is clamped) */                                                 \
    void lathe_k_l2norm_bwd##SUF(int m, int d, const T *x, const T *log_scale, T max_scale, const T *norm,   \
                                 const T *dy, T *dx, T *dlog_scale);                                        \
    /* an open-vocabulary head's text scoring, per row m of x (M rows of box + E values): y row m =   \
     * its first box values, then e^s (u . text_k) + bias for each of the K rows of text (K, E), with \
     * u = the row's last E values / their norm, s = *log_scale. saved: M + M E floats (norms, u). */  \
    void lathe_k_vocab_fwd##SUF(int m, int box, int e, int k, const T *x, const T *text, const T *log_scale,   \
                                const T *bias, T *saved, T *y);                                            \
    /* dx, dlog_scale and dbias accumulate (each may be NULL); text is a constant; ws: M E floats */     \
    void lathe_k_vocab_bwd##SUF(int m, int box, int e, int k, const T *text, const T *log_scale,           \
                                const T *saved, const T *dy, T *ws, T *dx, T *dlog_scale, T *dbias);       \
    /* scaled dot-product attention for inference over packed projections qkv (B, L, 3D): row t of  \
     * item b holds Q, K and V side by side, head j the columns [j D/H, (j+1) D/H) of each. Keys at   \
     * t >= lens[b] are masked (a padded batch); y (B, L, D) gets the heads' context rows, and rows at \
     * t >= lens[b] are zero. L <= LATHE_K_SDPA_MAX_L. ws: lathe_k_sdpa_workspace floats. Parallel over \
     * (b, head), each one GEMM for the scores and one for the context: the same sums on any thread count. */\
    void lathe_k_sdpa_fwd##SUF(int b, int l, int d, int h, const T *qkv, const int32_t *lens, T *ws, T *y); \
    void lathe_k_mha_bwd##SUF(int b, int l, int d, int h, const T *x, const T *w_in, const T *w_out,        \
                              const T *saved, const T *dy, T *dx, T *dw_in, T *db_in, T *dw_out, T *db_out, T *ws);

/* bf16 (bfloat16, the top 16 bits of a float32) rounded to nearest even, any NaN to 0x7fff; and back
 * (accumulate: y +=). The CPU twins of the GPU's bf16 casts (kernels/nn_cuda.h). */
void lathe_k_to_bf16(size_t n, const float *x, uint16_t *y);
void lathe_k_from_bf16(size_t n, const uint16_t *x, float *y, int accumulate);

/* the longest sequence lathe_k_sdpa_fwd takes (scores of a query row live on the stack) */
#define LATHE_K_SDPA_MAX_L 1024

enum { LATHE_ACT_RELU, LATHE_ACT_LEAKY, LATHE_ACT_SILU, LATHE_ACT_GELU, LATHE_ACT_SIGMOID };

LATHE_K_DECLARE(float, _f32)
LATHE_K_DECLARE(double, _f64)

#ifdef __cplusplus
}
#endif
#endif
