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

// The largest v over the block (blockDim.x == THREADS); red: THREADS floats of shared memory.
__device__ static float block_max(float v, float *red) {
    red[threadIdx.x] = v;
    __syncthreads();
    for (int w = blockDim.x / 2; w > 0; w /= 2) {
        if (threadIdx.x < w) red[threadIdx.x] = fmaxf(red[threadIdx.x], red[threadIdx.x + w]);
        __syncthreads();
    }
    float r = red[0];
    __syncthreads();
    return r;
}

__global__ static void softmax_rows_k(int l, float *p) {
    __shared__ double part[THREADS];
    __shared__ float red[THREADS];
    float *row = p + (size_t)blockIdx.x * l;
    float mx = -INFINITY;
    for (int j = threadIdx.x; j < l; j += blockDim.x) mx = fmaxf(mx, row[j]);
    mx = block_max(mx, red);
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

// Scaled dot-product attention for inference (lathe_k_sdpa_fwd): one block per (query row, head,
// item). The block scores the row's keys into shared memory, takes max and sum by fixed-order tree
// reductions, then thread e sums p_j v_j[e] over j in order: the same sums every run.
__global__ static void sdpa_row_k(int l, int d, int h, const float *qkv, const int32_t *lens, float *y) {
    __shared__ float p[LATHE_K_SDPA_MAX_L];
    __shared__ float red[THREADS];
    __shared__ double part[THREADS];
    int i = blockIdx.x, hi = blockIdx.y, bi = blockIdx.z, dh = d / h;
    int n = min(lens[bi], l);
    size_t row = (size_t)3 * d;
    const float *base = qkv + (size_t)bi * l * row;
    float *out = y + ((size_t)bi * l + i) * d + (size_t)hi * dh;
    if (i >= n) {
        for (int e = threadIdx.x; e < dh; e += blockDim.x) out[e] = 0;
        return;
    }
    const float *q = base + (size_t)i * row + (size_t)hi * dh;
    float scale = rsqrtf((float)dh), mx = -INFINITY;
    for (int j = threadIdx.x; j < n; j += blockDim.x) {
        const float *k = base + (size_t)j * row + d + (size_t)hi * dh;
        float acc = 0;
        for (int e = 0; e < dh; e++) acc += q[e] * k[e];
        p[j] = acc * scale;
        mx = fmaxf(mx, p[j]);
    }
    mx = block_max(mx, red);
    double s = 0;
    for (int j = threadIdx.x; j < n; j += blockDim.x) {
        p[j] = expf(p[j] - mx);
        s += p[j];
    }
    float inv = (float)(1 / block_sum(s, part));
    __syncthreads();
    for (int e = threadIdx.x; e < dh; e += blockDim.x) {
        float acc = 0;
        for (int j = 0; j < n; j++) acc += p[j] * inv * base[(size_t)j * row + 2 * (size_t)d + (size_t)hi * dh + e];
        out[e] = acc;
    }
}

extern "C" int lathe_kc_sdpa_fwd(lathe_cuda_ctx *c, int b, int l, int d, int h, const float *qkv,
                                 const int32_t *lens, float *y, const char **error) {
    if (l > LATHE_K_SDPA_MAX_L) return *error = "attention: sequence longer than LATHE_K_SDPA_MAX_L", -1;
    if (h < 1 || d % h) return *error = "attention: width not a multiple of the heads", -1;
    sdpa_row_k<<<dim3(l, h, b), THREADS, 0, c->stream>>>(l, d, h, qkv, lens, y);
    LATHE_CHECK_CUDA(cudaGetLastError(), error);
    return 0;
}
