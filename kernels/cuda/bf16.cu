// bf16.cu - bf16 mixed precision for the layers that do the arithmetic (kernels/nn_cuda.h:
// lathe_kc_*_bf16). Activations, weights and gradients stay float32 in the graph (the master
// copies); a convolution or linear layer rounds its operands to bf16 (round to nearest even) into
// the context's scratch and multiplies on the tensor cores with float32 accumulation. A linear
// layer's products land in float32 directly (cublasGemmEx); cuDNN wants a convolution's output in
// its input's type, so y, dx and dw are rounded to bf16 once more before they are widened into the
// float32 buffers. Biases and their gradients stay float32. A shape for which cuDNN has no
// deterministic bf16 algorithm runs in float32.
#include <cuda_bf16.h>

#include "ctx.cuh"

static int launched(const char **error) {
    LATHE_CHECK_CUDA(cudaGetLastError(), error);
    return 0;
}

__global__ static void to_bf16_k(size_t n, const float *x, __nv_bfloat16 *y) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        y[i] = __float2bfloat16_rn(x[i]);
}

__global__ static void from_bf16_k(size_t n, const __nv_bfloat16 *x, float *y, int accumulate) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        float v = __bfloat162float(x[i]);
        y[i] = accumulate ? y[i] + v : v;
    }
}

// y (n, k, pq) += b[k]
__global__ static void bias_nchw_k(size_t total, int k, int pq, const float *b, float *y) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x)
        y[i] += b[(i / pq) % k];
}

extern "C" int lathe_kc_to_bf16(lathe_cuda_ctx *c, size_t n, const float *x, uint16_t *y, const char **error) {
    to_bf16_k<<<grid(n), THREADS, 0, c->stream>>>(n, x, (__nv_bfloat16 *)y);
    return launched(error);
}

extern "C" int lathe_kc_from_bf16(lathe_cuda_ctx *c, size_t n, const uint16_t *x, float *y, int accumulate,
                                  const char **error) {
    from_bf16_k<<<grid(n), THREADS, 0, c->stream>>>(n, (const __nv_bfloat16 *)x, y, accumulate);
    return launched(error);
}

extern "C" int lathe_kc_bf16_reserve(lathe_cuda_ctx *c, size_t elems, const char **error) {
    return kc_grow(c, (void **)&c->half, &c->half_elems, elems, sizeof(uint16_t), error);
}

// Regions of the scratch start at multiples of 64 values (128 bytes), as tensor-core kernels like.
static size_t aligned(size_t n) { return (n + 63) / 64 * 64; }

// Values of the scratch: x, w, y (or dy), then dx or dw; nx, nw, ny get the aligned region sizes.
static size_t conv_elems(const lathe_conv_shape *s, size_t *nx, size_t *nw, size_t *ny) {
    *nx = aligned((size_t)s->n * s->c * s->h * s->w), *nw = aligned((size_t)s->k * (s->c / s->groups) * s->r * s->s);
    *ny = aligned((size_t)s->n * s->k * s->p * s->q);
    return *nx + *nw + *ny + (*nx > *nw ? *nx : *nw);
}

extern "C" size_t lathe_kc_conv2d_bf16_scratch(const lathe_conv_shape *s) {
    size_t nx, nw, ny;
    return conv_elems(s, &nx, &nw, &ny);
}

extern "C" int lathe_kc_conv2d_fwd_bf16(lathe_cuda_ctx *c, const lathe_conv_shape *s, const float *x, const float *w,
                                        const float *b, float *y, const char **error) {
    conv_descs d;
    conv_algos *a;
    int rc = conv_plan(c, s, 1, &d, &a, error);
    if (rc == 1) { // no deterministic bf16 algorithm for this shape: float32
        conv_destroy(&d);
        return lathe_kc_conv2d_fwd(c, s, x, w, b, y, error);
    }
    size_t nx, nw, ny, cx = (size_t)s->n * s->c * s->h * s->w, cw = (size_t)s->k * (s->c / s->groups) * s->r * s->s;
    size_t cy = (size_t)s->n * s->k * s->p * s->q;
    if (!rc) rc = lathe_kc_bf16_reserve(c, conv_elems(s, &nx, &nw, &ny), error);
    uint16_t *xh = c->half, *wh = xh + nx, *yh = wh + nw;
    if (!rc) rc = lathe_kc_to_bf16(c, cx, x, xh, error) || lathe_kc_to_bf16(c, cw, w, wh, error) ? -1 : 0;
    const float one = 1, zero = 0;
    cudnnStatus_t st;
    if (!rc && (st = cudnnConvolutionForward(c->dnn, &one, d.x, xh, d.w, wh, d.conv, a->fwd, c->workspace,
                                       c->workspace_bytes, &zero, d.y, yh)) != CUDNN_STATUS_SUCCESS)
        rc = -1, *error = dnn_error("cudnnConvolutionForward (bf16)", st);
    conv_destroy(&d);
    if (!rc) rc = lathe_kc_from_bf16(c, cy, yh, y, 0, error);
    if (!rc && b) {
        bias_nchw_k<<<grid(cy), THREADS, 0, c->stream>>>(cy, s->k, s->p * s->q, b, y);
        rc = launched(error);
    }
    return rc;
}

extern "C" int lathe_kc_conv2d_bwd_bf16(lathe_cuda_ctx *c, const lathe_conv_shape *s, const float *x, const float *w,
                                        const float *dy, float *dx, float *dw, float *db, const char **error) {
    conv_descs d;
    conv_algos *a;
    int rc = conv_plan(c, s, 1, &d, &a, error);
    if (rc == 1) {
        conv_destroy(&d);
        return lathe_kc_conv2d_bwd(c, s, x, w, dy, dx, dw, db, error);
    }
    size_t nx, nw, ny, cx = (size_t)s->n * s->c * s->h * s->w, cw = (size_t)s->k * (s->c / s->groups) * s->r * s->s;
    size_t cy = (size_t)s->n * s->k * s->p * s->q;
    if (!rc) rc = lathe_kc_bf16_reserve(c, conv_elems(s, &nx, &nw, &ny), error);
    uint16_t *xh = c->half, *wh = xh + nx, *dyh = wh + nw, *out = dyh + ny; // out: dx, then dw, in bf16
    if (!rc && (lathe_kc_to_bf16(c, cx, x, xh, error) || lathe_kc_to_bf16(c, cw, w, wh, error) ||
                lathe_kc_to_bf16(c, cy, dy, dyh, error)))
        rc = -1;
    const float one = 1, zero = 0;
    if (!rc && dx) {
        cudnnStatus_t st;
        if ((st = cudnnConvolutionBackwardData(c->dnn, &one, d.w, wh, d.y, dyh, d.conv, a->bwd_data, c->workspace,
                                         c->workspace_bytes, &zero, d.x, out)) != CUDNN_STATUS_SUCCESS)
            rc = -1, *error = dnn_error("cudnnConvolutionBackwardData (bf16)", st);
        if (!rc) rc = lathe_kc_from_bf16(c, cx, out, dx, 1, error);
    }
    if (!rc && dw) {
        cudnnStatus_t st;
        if ((st = cudnnConvolutionBackwardFilter(c->dnn, &one, d.x, xh, d.y, dyh, d.conv, a->bwd_filter, c->workspace,
                                           c->workspace_bytes, &zero, d.w, out)) != CUDNN_STATUS_SUCCESS)
            rc = -1, *error = dnn_error("cudnnConvolutionBackwardFilter (bf16)", st);
        if (!rc) rc = lathe_kc_from_bf16(c, cw, out, dw, 1, error);
    }
    conv_destroy(&d);
    if (!rc && db) {
        rc = kc_channel_sums_add(c, s->n, s->k, s->p * s->q, dy, db, error);
    }
    return rc;
}

// Column-major y (rows x cols) = op(a) op(b) + beta y, with a and b bf16 and y float: the same
// arguments as the fp32 linear layer's cublasSgemm calls (nn.cu), through cublasGemmEx and outside
// the handle's pedantic fp32 mode (which would keep the tensor cores out).
static int gemm_bf16(lathe_cuda_ctx *c, cublasOperation_t ta, cublasOperation_t tb, int rows, int cols, int inner,
                     const uint16_t *a, int lda, const uint16_t *b, int ldb, float beta, float *y, int ldy,
                     const char **error) {
    const float one = 1;
    CHECK_CUBLAS(cublasSetMathMode(c->blas, CUBLAS_DEFAULT_MATH), error);
    cublasStatus_t st = cublasGemmEx(c->blas, ta, tb, rows, cols, inner, &one, a, CUDA_R_16BF, lda, b, CUDA_R_16BF, ldb,
                                     &beta, y, CUDA_R_32F, ldy, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    CHECK_CUBLAS(cublasSetMathMode(c->blas, CUBLAS_PEDANTIC_MATH), error);
    CHECK_CUBLAS(st, error);
    return 0;
}

extern "C" size_t lathe_kc_linear_bf16_scratch(int m, int d, int k) {
    return aligned((size_t)m * d) + aligned((size_t)k * d) + aligned((size_t)m * k);
}

extern "C" int lathe_kc_linear_fwd_bf16(lathe_cuda_ctx *c, int m, int d, int k, const float *x, const float *w,
                                        const float *b, float *y, const char **error) {
    if (lathe_kc_bf16_reserve(c, lathe_kc_linear_bf16_scratch(m, d, k), error)) return -1;
    uint16_t *xh = c->half, *wh = xh + aligned((size_t)m * d);
    if (lathe_kc_to_bf16(c, (size_t)m * d, x, xh, error) || lathe_kc_to_bf16(c, (size_t)k * d, w, wh, error) ||
        gemm_bf16(c, CUBLAS_OP_T, CUBLAS_OP_N, k, m, d, wh, d, xh, d, 0, y, k, error)) // y = x w^T
        return -1;
    return b ? kc_add_bias_rows(c, m, k, b, y, error) : 0;
}

extern "C" int lathe_kc_linear_bwd_bf16(lathe_cuda_ctx *c, int m, int d, int k, const float *x, const float *w,
                                        const float *dy, float *dx, float *dw, float *db, const char **error) {
    if (lathe_kc_bf16_reserve(c, lathe_kc_linear_bf16_scratch(m, d, k), error)) return -1;
    uint16_t *xh = c->half, *wh = xh + aligned((size_t)m * d), *dyh = wh + aligned((size_t)k * d);
    if (lathe_kc_to_bf16(c, (size_t)m * d, x, xh, error) || lathe_kc_to_bf16(c, (size_t)k * d, w, wh, error) ||
        lathe_kc_to_bf16(c, (size_t)m * k, dy, dyh, error))
        return -1;
    if (dx && gemm_bf16(c, CUBLAS_OP_N, CUBLAS_OP_N, d, m, k, wh, d, dyh, k, 1, dx, d, error)) return -1; // dx += dy w
    if (dw && gemm_bf16(c, CUBLAS_OP_N, CUBLAS_OP_T, d, k, m, xh, d, dyh, k, 1, dw, d, error)) return -1; // dw += dy^T x
    return db ? kc_sum_rows(c, m, k, dy, db, error) : 0;
}
