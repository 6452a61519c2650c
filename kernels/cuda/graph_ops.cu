// graph_ops.cu - the CUDA twins of the graph's data movement (transpose, add_rows), global average
// pooling, dropout and layer norm (kernels/nn.h), and the optimizer's helpers (sum of squares, EMA,
// swap). Reductions give each output one block or one thread that adds in a fixed order, so
// results repeat exactly; dropout draws the CPU's splitmix64 values, so the masks are identical.
#include "ctx.cuh"

static int launched(const char **error) {
    LATHE_CHECK_CUDA(cudaGetLastError(), error);
    return 0;
}

// ---- data movement ----

// one thread per destination element: coalesced writes, strided reads (the maps are small)
__global__ static void transpose_k(int n, int rows, int cols, const float *x, size_t xs, float *y, size_t ys,
                                   int accumulate) {
    size_t per = (size_t)rows * cols, total = per * n;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
        size_t b = i / per, at = i % per, j = at / rows, r = at % rows; // y[b][j][r] = x[b][r][j]
        float v = x[b * xs + r * cols + j];
        float *o = &y[b * ys + at];
        *o = accumulate ? *o + v : v;
    }
}

extern "C" int lathe_kc_transpose(lathe_cuda_ctx *c, int n, int rows, int cols, const float *x, size_t x_stride,
                                  float *y, size_t y_stride, int accumulate, const char **error) {
    transpose_k<<<grid((size_t)n * rows * cols), THREADS, 0, c->stream>>>(n, rows, cols, x, x_stride, y, y_stride,
                                                                           accumulate);
    return launched(error);
}

__global__ static void add_rows_k(int n, size_t cols, const float *x, size_t xs, float *y, size_t ys) {
    size_t total = cols * n;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
        size_t b = i / cols, j = i % cols;
        y[b * ys + j] += x[b * xs + j];
    }
}

extern "C" int lathe_kc_add_rows(lathe_cuda_ctx *c, int n, size_t cols, const float *x, size_t x_stride, float *y,
                                 size_t y_stride, const char **error) {
    add_rows_k<<<grid(cols * n), THREADS, 0, c->stream>>>(n, cols, x, x_stride, y, y_stride);
    return launched(error);
}

// ---- global average pooling: one block per plane ----

__global__ static void gap_fwd_k(int hw, const float *x, float *y) {
    __shared__ double part[THREADS];
    const float *p = x + (size_t)blockIdx.x * hw;
    double s = 0;
    for (int j = threadIdx.x; j < hw; j += blockDim.x) s += p[j];
    s = block_sum(s, part);
    if (threadIdx.x == 0) y[blockIdx.x] = (float)(s / hw);
}

__global__ static void gap_bwd_k(int nc, int hw, const float *dy, float *dx) {
    size_t total = (size_t)nc * hw;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x)
        dx[i] += dy[i / hw] / (float)hw;
}

extern "C" int lathe_kc_gap_fwd(lathe_cuda_ctx *c, int nc, int hw, const float *x, float *y, const char **error) {
    gap_fwd_k<<<nc, THREADS, 0, c->stream>>>(hw, x, y);
    return launched(error);
}

extern "C" int lathe_kc_gap_bwd(lathe_cuda_ctx *c, int nc, int hw, const float *dy, float *dx, const char **error) {
    gap_bwd_k<<<grid((size_t)nc * hw), THREADS, 0, c->stream>>>(nc, hw, dy, dx);
    return launched(error);
}

// ---- FiLM: a scale and a shift per channel from another layer ----

__global__ static void film_fwd_k(int n, int c, int hw, const float *x, const float *p, float *y) {
    size_t total = (size_t)n * c * hw;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
        size_t plane = i / hw, b = plane / c, k = plane % c;
        y[i] = x[i] * (1 + p[b * 2 * c + k]) + p[b * 2 * c + c + k];
    }
}

__global__ static void film_bwd_dx_k(int n, int c, int hw, const float *p, const float *dy, float *dx) {
    size_t total = (size_t)n * c * hw;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
        size_t plane = i / hw, b = plane / c, k = plane % c;
        dx[i] += dy[i] * (1 + p[b * 2 * c + k]);
    }
}

// one thread per (sample, channel), summing its plane in order in double, as the CPU
__global__ static void film_bwd_dp_k(int n, int c, int hw, const float *x, const float *dy, float *dp) {
    size_t planes = (size_t)n * c;
    for (size_t q = blockIdx.x * (size_t)blockDim.x + threadIdx.x; q < planes; q += (size_t)gridDim.x * blockDim.x) {
        size_t b = q / c, k = q % c;
        const float *xr = x + q * hw, *dr = dy + q * hw;
        double ds = 0, dt = 0;
        for (int j = 0; j < hw; j++) ds += (double)dr[j] * xr[j], dt += dr[j];
        dp[b * 2 * c + k] += (float)ds, dp[b * 2 * c + c + k] += (float)dt;
    }
}

extern "C" int lathe_kc_film_fwd(lathe_cuda_ctx *ctx, int n, int c, int hw, const float *x, const float *p, float *y,
                                 const char **error) {
    film_fwd_k<<<grid((size_t)n * c * hw), THREADS, 0, ctx->stream>>>(n, c, hw, x, p, y);
    return launched(error);
}

extern "C" int lathe_kc_film_bwd(lathe_cuda_ctx *ctx, int n, int c, int hw, const float *x, const float *p,
                                 const float *dy, float *dx, float *dp, const char **error) {
    if (dx) film_bwd_dx_k<<<grid((size_t)n * c * hw), THREADS, 0, ctx->stream>>>(n, c, hw, p, dy, dx);
    if (dp) film_bwd_dp_k<<<grid((size_t)n * c), THREADS, 0, ctx->stream>>>(n, c, hw, x, dy, dp);
    return launched(error);
}

// ---- dropout ----

__global__ static void dropout_fwd_k(size_t n, const float *x, float keep, float scale, unsigned long long key,
                                     float *mask, float *y) {
    for (size_t j = blockIdx.x * (size_t)blockDim.x + threadIdx.x; j < n; j += (size_t)gridDim.x * blockDim.x) {
        unsigned long long z = (key ^ (unsigned long long)j) + 0x9e3779b97f4a7c15ull; // splitmix64, as the CPU
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        double u = (double)((z ^ (z >> 31)) >> 11) / 9007199254740992.0;
        mask[j] = u < (double)keep ? scale : 0.0f; // in double, as the CPU: drop 0 keeps all
        y[j] = x[j] * mask[j];
    }
}

__global__ static void dropout_bwd_k(size_t n, const float *mask, const float *dy, float *dx) {
    for (size_t j = blockIdx.x * (size_t)blockDim.x + threadIdx.x; j < n; j += (size_t)gridDim.x * blockDim.x)
        dx[j] += __fmul_rn(dy[j], mask[j]); // no fused multiply-add: the CPU's two roundings, bit for bit
}

extern "C" int lathe_kc_dropout_fwd(lathe_cuda_ctx *c, size_t n, const float *x, float drop, uint64_t key, float *mask,
                                    float *y, const char **error) {
    float keep = 1 - drop;
    dropout_fwd_k<<<grid(n), THREADS, 0, c->stream>>>(n, x, keep, 1 / keep, key, mask, y);
    return launched(error);
}

extern "C" int lathe_kc_dropout_bwd(lathe_cuda_ctx *c, size_t n, const float *mask, const float *dy, float *dx,
                                    const char **error) {
    dropout_bwd_k<<<grid(n), THREADS, 0, c->stream>>>(n, mask, dy, dx);
    return launched(error);
}

// ---- layer norm: one block per row; the parameter gradients one thread per column ----

__global__ static void ln_fwd_k(int d, const float *x, const float *gamma, const float *beta, float eps, float *mean,
                                float *invstd, float *y) {
    __shared__ double part[THREADS];
    size_t row = blockIdx.x;
    const float *p = x + row * d;
    double s = 0;
    for (int j = threadIdx.x; j < d; j += blockDim.x) s += p[j];
    double mu = block_sum(s, part) / d, s2 = 0;
    for (int j = threadIdx.x; j < d; j += blockDim.x) s2 += (p[j] - mu) * (p[j] - mu);
    float is = (float)(1 / sqrt(block_sum(s2, part) / d + eps));
    if (threadIdx.x == 0) mean[row] = (float)mu, invstd[row] = is;
    for (int j = threadIdx.x; j < d; j += blockDim.x) y[row * d + j] = (p[j] - (float)mu) * is * gamma[j] + beta[j];
}

__global__ static void ln_bwd_dx_k(int d, const float *x, const float *gamma, const float *mean, const float *invstd,
                                   const float *dy, float *dx) {
    __shared__ double part[THREADS];
    size_t row = blockIdx.x;
    const float *p = x + row * d, *g = dy + row * d;
    float mu = mean[row], is = invstd[row];
    double a = 0, b = 0;
    for (int j = threadIdx.x; j < d; j += blockDim.x) {
        float xh = (p[j] - mu) * is;
        a += g[j] * gamma[j], b += g[j] * gamma[j] * xh;
    }
    double sg = block_sum(a, part), sgx = block_sum(b, part);
    for (int j = threadIdx.x; j < d; j += blockDim.x) {
        float xh = (p[j] - mu) * is;
        dx[row * d + j] += is * (float)(g[j] * gamma[j] - sg / d - xh * sgx / d);
    }
}

__global__ static void ln_bwd_params_k(int m, int d, const float *x, const float *mean, const float *invstd,
                                       const float *dy, float *dgamma, float *dbeta) {
    int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= d) return;
    float ga = dgamma ? dgamma[j] : 0, be = dbeta ? dbeta[j] : 0;
    for (int i = 0; i < m; i++) { // rows in order, as the CPU adds them
        float g = dy[(size_t)i * d + j];
        ga += g * ((x[(size_t)i * d + j] - mean[i]) * invstd[i]);
        be += g;
    }
    if (dgamma) dgamma[j] = ga;
    if (dbeta) dbeta[j] = be;
}

extern "C" int lathe_kc_layernorm_fwd(lathe_cuda_ctx *c, int m, int d, const float *x, const float *gamma,
                                      const float *beta, float eps, float *mean, float *invstd, float *y,
                                      const char **error) {
    ln_fwd_k<<<m, THREADS, 0, c->stream>>>(d, x, gamma, beta, eps, mean, invstd, y);
    return launched(error);
}

extern "C" int lathe_kc_layernorm_bwd(lathe_cuda_ctx *c, int m, int d, const float *x, const float *gamma,
                                      const float *mean, const float *invstd, const float *dy, float *dx,
                                      float *dgamma, float *dbeta, const char **error) {
    if (dgamma || dbeta)
        ln_bwd_params_k<<<lathe_blocks(d, THREADS), THREADS, 0, c->stream>>>(m, d, x, mean, invstd, dy, dgamma, dbeta);
    if (dx) ln_bwd_dx_k<<<m, THREADS, 0, c->stream>>>(d, x, gamma, mean, invstd, dy, dx);
    return launched(error);
}

// ---- optimizer helpers ----

// stage 1: LATHE_KC_PARTIALS blocks, each a strided share; stage 2: one block adds them in order
__global__ static void sumsq_part_k(size_t n, const float *x, double *partials) {
    __shared__ double part[THREADS];
    double s = 0;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        s += (double)x[i] * x[i];
    s = block_sum(s, part);
    if (threadIdx.x == 0) partials[blockIdx.x] = s;
}

__global__ static void sumsq_total_k(const double *partials, double *out) {
    if (threadIdx.x != 0) return;
    double s = 0;
    for (int b = 0; b < LATHE_KC_PARTIALS; b++) s += partials[b];
    *out = s;
}

extern "C" int lathe_kc_sumsq(lathe_cuda_ctx *c, size_t n, const float *x, double *out, const char **error) {
    sumsq_part_k<<<LATHE_KC_PARTIALS, THREADS, 0, c->stream>>>(n, x, c->partials);
    sumsq_total_k<<<1, 32, 0, c->stream>>>(c->partials, out);
    return launched(error);
}

__global__ static void ema_k(size_t n, float *ema, const float *w, float decay) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        ema[i] = decay * ema[i] + (1 - decay) * w[i];
}

__global__ static void swap_k(size_t n, float *a, float *b) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        float t = a[i];
        a[i] = b[i], b[i] = t;
    }
}

extern "C" int lathe_kc_ema(lathe_cuda_ctx *c, size_t n, float *ema, const float *w, float decay, const char **error) {
    ema_k<<<grid(n), THREADS, 0, c->stream>>>(n, ema, w, decay);
    return launched(error);
}

extern "C" int lathe_kc_swap(lathe_cuda_ctx *c, size_t n, float *a, float *b, const char **error) {
    swap_k<<<grid(n), THREADS, 0, c->stream>>>(n, a, b);
    return launched(error);
}

// ---- a contrastive head's scaled L2 normalization: one block per row, sums in a fixed order ----

__device__ static inline float clamped_scale(const float *log_scale, float max_scale) {
    return fminf(expf(*log_scale), max_scale);
}

__global__ static void l2norm_fwd_k(int d, const float *x, const float *log_scale, float max_scale, float *norm,
                                    float *y) {
    __shared__ double part[THREADS];
    const float *r = x + (size_t)blockIdx.x * d;
    double s = 0;
    for (int j = threadIdx.x; j < d; j += blockDim.x) s += (double)r[j] * r[j];
    s = block_sum(s, part);
    float nrm = (float)fmax(sqrt(s), 1e-12), f = clamped_scale(log_scale, max_scale) / nrm;
    if (threadIdx.x == 0) norm[blockIdx.x] = nrm;
    for (int j = threadIdx.x; j < d; j += blockDim.x) y[(size_t)blockIdx.x * d + j] = r[j] * f;
}

// dx += e^s (dy - u (u . dy)) / |x|; row i's share of the scale gradient into rows[i]
__global__ static void l2norm_bwd_k(int d, const float *x, const float *log_scale, float max_scale, const float *norm,
                                    const float *dy, float *dx, float *rows) {
    __shared__ double part[THREADS];
    const float *r = x + (size_t)blockIdx.x * d, *g = dy + (size_t)blockIdx.x * d;
    double ug = 0;
    for (int j = threadIdx.x; j < d; j += blockDim.x) ug += (double)r[j] * g[j];
    ug = block_sum(ug, part) / norm[blockIdx.x];
    float scale = clamped_scale(log_scale, max_scale), nrm = norm[blockIdx.x];
    if (threadIdx.x == 0) rows[blockIdx.x] = (float)(ug * scale);
    if (dx)
        for (int j = threadIdx.x; j < d; j += blockDim.x)
            dx[(size_t)blockIdx.x * d + j] += scale * (g[j] - r[j] / nrm * (float)ug) / nrm;
}

__global__ static void l2norm_scale_grad_k(int m, const float *log_scale, float max_scale, const float *rows,
                                           float *dlog_scale) {
    __shared__ double part[THREADS];
    double s = 0;
    for (int i = threadIdx.x; i < m; i += blockDim.x) s += rows[i];
    s = block_sum(s, part);
    if (threadIdx.x == 0 && expf(*log_scale) < max_scale) *dlog_scale += (float)s;
}

extern "C" int lathe_kc_l2norm_fwd(lathe_cuda_ctx *c, int m, int d, const float *x, const float *log_scale,
                                   float max_scale, float *norm, float *y, const char **error) {
    l2norm_fwd_k<<<m, THREADS, 0, c->stream>>>(d, x, log_scale, max_scale, norm, y);
    LATHE_CHECK_CUDA(cudaGetLastError(), error);
    return 0;
}

extern "C" int lathe_kc_l2norm_bwd(lathe_cuda_ctx *c, int m, int d, const float *x, const float *log_scale,
                                   float max_scale, const float *norm, const float *dy, float *dx, float *dlog_scale,
                                   const char **error) {
    float *rows = (float *)norm + m; // the second half of the saved block (nn_cuda.h)
    l2norm_bwd_k<<<m, THREADS, 0, c->stream>>>(d, x, log_scale, max_scale, norm, dy, dx, rows);
    LATHE_CHECK_CUDA(cudaGetLastError(), error);
    if (dlog_scale) {
        l2norm_scale_grad_k<<<1, THREADS, 0, c->stream>>>(m, log_scale, max_scale, rows, dlog_scale);
        LATHE_CHECK_CUDA(cudaGetLastError(), error);
    }
    return 0;
}
