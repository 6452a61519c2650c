// attention.cu - the CUDA twin of multi-head self-attention (kernels/nn.h: lathe_k_mha_*): the
// projections through lathe_kc_linear_*, each image's heads as one strided-batched cuBLAS product
// (a head is a column block of Q, K, V, so heads sit dh floats apart), and the row softmax and its
// backward as lathe's own kernels (one block per row, sums in a fixed order). The saved values
// have the CPU layout: Q, K, V, C (B L D each), then the probabilities (B H L L).
#include "ctx.cuh"

// Row-major C (m x n) = alpha op(A) op(B) + beta C for `batch` matrices `stride` floats apart:
// cuBLAS is column-major, so it computes C^T = op(B)^T op(A)^T with the operands swapped.
static int gemm_rm(lathe_cuda_ctx *c, bool ta, bool tb, int m, int n, int k, float alpha, const float *a, int lda,
                   long long sa, const float *b, int ldb, long long sb, float beta, float *cc, int ldc, long long sc,
                   int batch, const char **error) {
    CHECK_CUBLAS(cublasSgemmStridedBatched(c->blas, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N, n,
                                           m, k, &alpha, b, ldb, sb, a, lda, sa, &beta, cc, ldc, sc, batch),
                 error);
    return 0;
}

__global__ static void softmax_rows_k(int l, float *p) {
    __shared__ double part[THREADS];
    __shared__ float mx_shared[THREADS];
    float *row = p + (size_t)blockIdx.x * l;
    float mx = -INFINITY;
    for (int j = threadIdx.x; j < l; j += blockDim.x) mx = fmaxf(mx, row[j]);
    mx_shared[threadIdx.x] = mx;
    __syncthreads();
    for (int w = blockDim.x / 2; w > 0; w /= 2) {
        if (threadIdx.x < w) mx_shared[threadIdx.x] = fmaxf(mx_shared[threadIdx.x], mx_shared[threadIdx.x + w]);
        __syncthreads();
    }
    mx = mx_shared[0];
    double s = 0;
    for (int j = threadIdx.x; j < l; j += blockDim.x) {
        row[j] = expf(row[j] - mx);
        s += row[j];
    }
    double sum = block_sum(s, part);
    for (int j = threadIdx.x; j < l; j += blockDim.x) row[j] = (float)(row[j] / sum);
}

// dS = P (dP - rowsum(dP P)) scale, in place over dP
__global__ static void softmax_bwd_rows_k(int l, const float *p, float *dp, float scale) {
    __shared__ double part[THREADS];
    const float *pr = p + (size_t)blockIdx.x * l;
    float *dr = dp + (size_t)blockIdx.x * l;
    double dot = 0;
    for (int j = threadIdx.x; j < l; j += blockDim.x) dot += (double)dr[j] * pr[j];
    dot = block_sum(dot, part);
    for (int j = threadIdx.x; j < l; j += blockDim.x) dr[j] = (float)(pr[j] * (dr[j] - dot)) * scale;
}

extern "C" size_t lathe_kc_mha_workspace(int b, int l, int d, int h) {
    return 4 * (size_t)b * l * d + (size_t)h * l * l;
}

extern "C" int lathe_kc_mha_fwd(lathe_cuda_ctx *c, int b, int l, int d, int h, const float *x, const float *w_in,
                                const float *b_in, const float *w_out, const float *b_out, float *saved, float *y,
                                const char **error) {
    int m = b * l, dh = d / h;
    size_t md = (size_t)m * d, ll = (size_t)l * l;
    float *q = saved, *k = q + md, *v = k + md, *cc = v + md, *p = cc + md;
    float scale = (float)(1 / sqrt((double)dh));
    for (int j = 0; j < 3; j++)
        if (lathe_kc_linear_fwd(c, m, d, d, x, w_in + (size_t)j * d * d, b_in + (size_t)j * d, saved + (size_t)j * md,
                                error))
            return -1;
    for (int bi = 0; bi < b; bi++) {
        size_t off = (size_t)bi * l * d;
        float *pb = p + (size_t)bi * h * ll;
        if (gemm_rm(c, false, true, l, l, dh, scale, q + off, d, dh, k + off, d, dh, 0, pb, l, (long long)ll, h, error))
            return -1;
        softmax_rows_k<<<h * l, THREADS, 0, c->stream>>>(l, pb);
        LATHE_CHECK_CUDA(cudaGetLastError(), error);
        if (gemm_rm(c, false, false, l, dh, l, 1, pb, l, (long long)ll, v + off, d, dh, 0, cc + off, d, dh, h, error))
            return -1;
    }
    return lathe_kc_linear_fwd(c, m, d, d, cc, w_out, b_out, y, error);
}

extern "C" int lathe_kc_mha_bwd(lathe_cuda_ctx *c, int b, int l, int d, int h, const float *x, const float *w_in,
                                const float *w_out, const float *saved, const float *dy, float *dx, float *dw_in,
                                float *db_in, float *dw_out, float *db_out, float *ws, const char **error) {
    int m = b * l, dh = d / h;
    size_t md = (size_t)m * d, dd = (size_t)d * d, ll = (size_t)l * l;
    const float *q = saved, *k = q + md, *v = k + md, *cc = v + md, *p = cc + md;
    float *dq = ws, *dk = dq + md, *dv = dk + md, *dc = dv + md, *dp = dc + md;
    float scale = (float)(1 / sqrt((double)dh));
    LATHE_CHECK_CUDA(cudaMemsetAsync(ws, 0, sizeof(float) * 4 * md, c->stream), error);
    if (lathe_kc_linear_bwd(c, m, d, d, cc, w_out, dy, dc, dw_out, db_out, error)) return -1;
    for (int bi = 0; bi < b; bi++) {
        size_t off = (size_t)bi * l * d;
        const float *pb = p + (size_t)bi * h * ll;
        // dP = dC_h V_h^T; dV_h += P^T dC_h
        if (gemm_rm(c, false, true, l, l, dh, 1, dc + off, d, dh, v + off, d, dh, 0, dp, l, (long long)ll, h, error) ||
            gemm_rm(c, true, false, l, dh, l, 1, pb, l, (long long)ll, dc + off, d, dh, 1, dv + off, d, dh, h, error))
            return -1;
        softmax_bwd_rows_k<<<h * l, THREADS, 0, c->stream>>>(l, pb, dp, scale);
        LATHE_CHECK_CUDA(cudaGetLastError(), error);
        // dQ_h += dS K_h; dK_h += dS^T Q_h
        if (gemm_rm(c, false, false, l, dh, l, 1, dp, l, (long long)ll, k + off, d, dh, 1, dq + off, d, dh, h, error) ||
            gemm_rm(c, true, false, l, dh, l, 1, dp, l, (long long)ll, q + off, d, dh, 1, dk + off, d, dh, h, error))
            return -1;
    }
    for (int j = 0; j < 3; j++)
        if (lathe_kc_linear_bwd(c, m, d, d, x, w_in + (size_t)j * dd, ws + (size_t)j * md, dx,
                                dw_in ? dw_in + (size_t)j * dd : NULL, db_in ? db_in + (size_t)j * d : NULL, error))
            return -1;
    return 0;
}
