// vocab.cu - the CUDA twin of an open-vocabulary head's text scoring (kernels/nn.h:
// lathe_k_vocab_*): one block per row normalizes its embedding and copies its box values, one cuBLAS
// product scores every row against the K text rows, and the scale and bias are applied from their
// device values. Reductions (the scale's and bias's gradients) go through per-row partial sums
// added in order: deterministic run to run.
#include "ctx.cuh"

// Row-major C (m x n, leading dimension ldc) = A (m x k, lda) op(B) with op(B) = B^T (B: n x k)
// when tb, else B (k x n): cuBLAS is column-major, so it computes C^T with the operands swapped.
static int gemm(lathe_cuda_ctx *c, bool tb, int m, int n, int k, const float *a, int lda, const float *b, int ldb,
                float *cc, int ldc, const char **error) {
    const float one = 1, zero = 0;
    CHECK_CUBLAS(cublasSgemm(c->blas, tb ? CUBLAS_OP_T : CUBLAS_OP_N, CUBLAS_OP_N, n, m, k, &one, b, ldb, a, lda, &zero,
                             cc, ldc),
                 error);
    return 0;
}

__global__ static void vocab_norm_k(int box, int e, int k, const float *x, float *norm, float *u, float *y) {
    __shared__ double part[THREADS];
    const float *r = x + (size_t)blockIdx.x * (box + e);
    double s = 0;
    for (int j = threadIdx.x; j < e; j += blockDim.x) s += (double)r[box + j] * r[box + j];
    s = block_sum(s, part);
    float nrm = (float)fmax(sqrt(s), 1e-12);
    if (threadIdx.x == 0) norm[blockIdx.x] = nrm;
    for (int j = threadIdx.x; j < e; j += blockDim.x) u[(size_t)blockIdx.x * e + j] = r[box + j] / nrm;
    for (int j = threadIdx.x; j < box; j += blockDim.x) y[(size_t)blockIdx.x * (box + k) + j] = r[j];
}

__global__ static void vocab_affine_k(int m, int box, int k, const float *log_scale, const float *bias, float *y) {
    size_t n = (size_t)m * k;
    float s = expf(*log_scale), b = *bias;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        float *v = y + (i / k) * (box + k) + box + i % k;
        *v = *v * s + b;
    }
}

extern "C" int lathe_kc_vocab_fwd(lathe_cuda_ctx *c, int m, int box, int e, int k, const float *x, const float *text,
                                  const float *log_scale, const float *bias, float *saved, float *y,
                                  const char **error) {
    float *norm = saved, *u = saved + m;
    vocab_norm_k<<<m, THREADS, 0, c->stream>>>(box, e, k, x, norm, u, y);
    LATHE_CHECK_CUDA(cudaGetLastError(), error);
    if (gemm(c, true, m, k, e, u, e, text, e, y + box, box + k, error)) return -1;
    vocab_affine_k<<<grid((size_t)m * k), THREADS, 0, c->stream>>>(m, box, k, log_scale, bias, y);
    LATHE_CHECK_CUDA(cudaGetLastError(), error);
    return 0;
}

// row i's shares of the scale's and the bias's gradients into rows[i] and rows[m + i]
__global__ static void vocab_param_rows_k(int m, int box, int e, int k, const float *u, const float *text,
                                          const float *log_scale, const float *dy, float *rows) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= m) return;
    float s = expf(*log_scale);
    double ds = 0, db = 0;
    for (int c = 0; c < k; c++) {
        float g = dy[(size_t)i * (box + k) + box + c];
        double dot = 0;
        for (int j = 0; j < e; j++) dot += (double)u[(size_t)i * e + j] * text[(size_t)c * e + j];
        ds += g * dot * s, db += g;
    }
    rows[i] = (float)ds, rows[m + i] = (float)db;
}

__global__ static void vocab_param_sum_k(int m, const float *rows, float *dlog_scale, float *dbias) {
    __shared__ double part[THREADS];
    double s = 0, b = 0;
    for (int i = threadIdx.x; i < m; i += blockDim.x) s += rows[i];
    s = block_sum(s, part);
    for (int i = threadIdx.x; i < m; i += blockDim.x) b += rows[m + i];
    b = block_sum(b, part);
    if (threadIdx.x == 0) {
        if (dlog_scale) *dlog_scale += (float)s;
        if (dbias) *dbias += (float)b;
    }
}

// dx row i: the box values' gradients, and (du - u (u . du)) / |x| with du = e^s ws row i
__global__ static void vocab_dx_k(int box, int e, int k, const float *norm, const float *u, const float *log_scale,
                                  const float *du, const float *dy, float *dx) {
    __shared__ double part[THREADS];
    const float *ui = u + (size_t)blockIdx.x * e, *gi = du + (size_t)blockIdx.x * e;
    float s = expf(*log_scale), nrm = norm[blockIdx.x];
    double ug = 0;
    for (int j = threadIdx.x; j < e; j += blockDim.x) ug += (double)ui[j] * gi[j];
    ug = block_sum(ug, part) * s;
    float *dr = dx + (size_t)blockIdx.x * (box + e);
    for (int j = threadIdx.x; j < box; j += blockDim.x) dr[j] += dy[(size_t)blockIdx.x * (box + k) + j];
    for (int j = threadIdx.x; j < e; j += blockDim.x) dr[box + j] += (s * gi[j] - ui[j] * (float)ug) / nrm;
}

extern "C" int lathe_kc_vocab_bwd(lathe_cuda_ctx *c, int m, int box, int e, int k, const float *text,
                                  const float *log_scale, const float *saved, const float *dy, float *ws, float *dx,
                                  float *dlog_scale, float *dbias, const char **error) {
    const float *norm = saved, *u = saved + m;
    if (dlog_scale || dbias) { // ws holds the per-row sums first (2 M <= M E floats for E >= 2)
        vocab_param_rows_k<<<grid((size_t)m), THREADS, 0, c->stream>>>(m, box, e, k, u, text, log_scale, dy, ws);
        LATHE_CHECK_CUDA(cudaGetLastError(), error);
        vocab_param_sum_k<<<1, THREADS, 0, c->stream>>>(m, ws, dlog_scale, dbias);
        LATHE_CHECK_CUDA(cudaGetLastError(), error);
    }
    if (!dx) return 0;
    if (gemm(c, false, m, e, k, dy + box, box + k, text, e, ws, e, error)) return -1;
    vocab_dx_k<<<m, THREADS, 0, c->stream>>>(box, e, k, norm, u, log_scale, ws, dy, dx);
    LATHE_CHECK_CUDA(cudaGetLastError(), error);
    return 0;
}
