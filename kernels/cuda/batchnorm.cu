// batchnorm.cu - batch norm (kernels/nn_cuda.h: lathe_kc_bn_*) and the per-channel sums it shares
// with the bf16 convolution's bias gradient (ctx.cuh: kc_channel_sums_add).
//
// A channel's sum runs over n planes of hw values. One block per channel (as before) left most of
// the GPU idle on the early layers of a detector (16 channels of 32 x 320 x 320: 16 busy
// multiprocessors of 132), so each channel is cut into fixed chunks of CHUNK values of one plane:
// a block per (plane, chunk) writes its partial sums, then one block per channel adds those in a
// fixed order. The cut depends on (n, hw) alone, so every run gives the same bits. Elementwise
// passes use the same blocks, so no value needs a division to find its channel.
#include "ctx.cuh"

enum { CHUNK = 4096 };

static int chunks_per_plane(int hw) { return (hw + CHUNK - 1) / CHUNK; }

enum { SUMS_X, SUMS_DY_XHAT, SUMS_DY };

// Block (b, ch): plane b / cpp of channel ch, its chunk b % cpp. Partials of channel ch land at
// out[ch * gridDim.x + b]: SUMS_X (x, x^2), SUMS_DY_XHAT (dy, dy * xhat), SUMS_DY (dy, 0).
template <int MODE>
__global__ static void plane_sums(int c, int hw, int cpp, const float *x, const float *dy, const float *sm,
                                  const float *si, double2 *out) {
    __shared__ double part[THREADS];
    int ch = blockIdx.y, b = blockIdx.x, k = b % cpp;
    size_t base = ((size_t)(b / cpp) * c + ch) * hw;
    int hi = min(hw, (k + 1) * CHUNK);
    double a = 0, q = 0;
    if (MODE == SUMS_X) {
        for (int j = k * CHUNK + threadIdx.x; j < hi; j += THREADS) {
            double v = x[base + j];
            a += v, q += v * v;
        }
    } else if (MODE == SUMS_DY_XHAT) {
        float mean = sm[ch], invstd = si[ch];
        for (int j = k * CHUNK + threadIdx.x; j < hi; j += THREADS) {
            float d = dy[base + j];
            a += d, q += d * (x[base + j] - mean) * invstd;
        }
    } else {
        for (int j = k * CHUNK + threadIdx.x; j < hi; j += THREADS) a += dy[base + j];
    }
    a = block_sum(a, part);
    q = block_sum(q, part);
    if (threadIdx.x == 0) out[(size_t)ch * gridDim.x + b] = make_double2(a, q);
}

// One block per channel: the sum of its m partials, in a fixed order.
__device__ static double2 channel_total(int m, const double2 *partials, double *part) {
    const double2 *p = partials + (size_t)blockIdx.x * m;
    double a = 0, q = 0;
    for (int i = threadIdx.x; i < m; i += THREADS) a += p[i].x, q += p[i].y;
    return make_double2(block_sum(a, part), block_sum(q, part));
}

__global__ static void stats_finish(int m, size_t count, const double2 *partials, float *rm, float *rv, float momentum,
                                    float eps, float *sm, float *si) {
    __shared__ double part[THREADS];
    double2 t = channel_total(m, partials, part);
    if (threadIdx.x) return;
    int ch = blockIdx.x;
    double mean = t.x / count, var = fmax(t.y / count - mean * mean, 0.0);
    rm[ch] = (float)((1 - momentum) * rm[ch] + momentum * mean);
    rv[ch] = (float)((1 - momentum) * rv[ch] + momentum * (count > 1 ? var * count / (count - 1) : var));
    sm[ch] = (float)mean, si[ch] = (float)(1 / sqrt(var + eps));
}

__global__ static void stats_running(int c, const float *rm, const float *rv, float eps, float *sm, float *si) {
    int ch = blockIdx.x * blockDim.x + threadIdx.x;
    if (ch < c) sm[ch] = rm[ch], si[ch] = (float)(1 / sqrt((double)rv[ch] + eps));
}

__global__ static void bn_apply(int c, int hw, int cpp, const float *x, const float *gamma, const float *beta,
                                const float *sm, const float *si, float *y) {
    int ch = blockIdx.y, b = blockIdx.x, k = b % cpp;
    size_t base = ((size_t)(b / cpp) * c + ch) * hw;
    float scale = gamma[ch] * si[ch], shift = beta[ch] - sm[ch] * scale;
    int hi = min(hw, (k + 1) * CHUNK);
    for (int j = k * CHUNK + threadIdx.x; j < hi; j += THREADS) y[base + j] = x[base + j] * scale + shift;
}

// dgamma += sum dy * xhat, dbeta += sum dy; the two sums stay in totals[ch] for bn_dx.
__global__ static void grads_finish(int m, const double2 *partials, float *dgamma, float *dbeta, double2 *totals) {
    __shared__ double part[THREADS];
    double2 t = channel_total(m, partials, part);
    if (threadIdx.x) return;
    if (dgamma) dgamma[blockIdx.x] += (float)t.y;
    if (dbeta) dbeta[blockIdx.x] += (float)t.x;
    totals[blockIdx.x] = t;
}

__global__ static void bn_dx(int c, int hw, int cpp, size_t count, int train, const float *x, const float *gamma,
                             const float *sm, const float *si, const double2 *totals, const float *dy, float *dx) {
    int ch = blockIdx.y, b = blockIdx.x, k = b % cpp;
    size_t base = ((size_t)(b / cpp) * c + ch) * hw;
    float mean = sm[ch], invstd = si[ch], gi = gamma[ch] * invstd;
    double sdy = totals[ch].x, sdyx = totals[ch].y;
    int hi = min(hw, (k + 1) * CHUNK);
    for (int j = k * CHUNK + threadIdx.x; j < hi; j += THREADS) {
        size_t at = base + j;
        dx[at] += train ? gi * (float)(dy[at] - sdy / count - (x[at] - mean) * invstd * sdyx / count) : gi * dy[at];
    }
}

// Room for c channels' partials of (n, hw) planes and c totals.
static int reserve(lathe_cuda_ctx *ctx, int n, int c, int hw, const char **error) {
    size_t need = (size_t)c * ((size_t)n * chunks_per_plane(hw) + 1);
    return kc_grow(ctx, (void **)&ctx->channel_partials, &ctx->channel_partials_len, need, sizeof(double2), error);
}

static bool fits(int n, int c, int hw) { return c <= 65535 && (long long)n * chunks_per_plane(hw) <= 0x7fffffff; }
static bool empty(int n, int c, int hw) { return n <= 0 || c <= 0 || hw <= 0; }

int kc_channel_sums_add(lathe_cuda_ctx *ctx, int n, int c, int hw, const float *dy, float *db, const char **error) {
    if (empty(n, c, hw)) return 0;
    if (!fits(n, c, hw)) return *error = "too many channels or planes for the per-channel sums", -1;
    if (reserve(ctx, n, c, hw, error)) return -1;
    int cpp = chunks_per_plane(hw), m = n * cpp;
    plane_sums<SUMS_DY><<<dim3(m, c), THREADS, 0, ctx->stream>>>(c, hw, cpp, NULL, dy, NULL, NULL, ctx->channel_partials);
    double2 *totals = ctx->channel_partials + (size_t)c * m;
    grads_finish<<<c, THREADS, 0, ctx->stream>>>(m, ctx->channel_partials, NULL, db, totals);
    LATHE_CHECK_CUDA(cudaGetLastError(), error);
    return 0;
}

extern "C" int lathe_kc_bn_fwd(lathe_cuda_ctx *ctx, int n, int c, int hw, const float *x, const float *gamma,
                               const float *beta, float *rm, float *rv, float momentum, float eps, int train, float *sm,
                               float *si, float *y, const char **error) {
    if (empty(n, c, hw)) return 0;
    if (!fits(n, c, hw)) return *error = "batch norm: too many channels or planes", -1;
    int cpp = chunks_per_plane(hw), m = n * cpp;
    if (train) {
        if (reserve(ctx, n, c, hw, error)) return -1;
        plane_sums<SUMS_X><<<dim3(m, c), THREADS, 0, ctx->stream>>>(c, hw, cpp, x, NULL, NULL, NULL, ctx->channel_partials);
        stats_finish<<<c, THREADS, 0, ctx->stream>>>(m, (size_t)n * hw, ctx->channel_partials, rm, rv, momentum, eps, sm, si);
    } else {
        stats_running<<<lathe_blocks(c, THREADS), THREADS, 0, ctx->stream>>>(c, rm, rv, eps, sm, si);
    }
    bn_apply<<<dim3(m, c), THREADS, 0, ctx->stream>>>(c, hw, cpp, x, gamma, beta, sm, si, y);
    LATHE_CHECK_CUDA(cudaGetLastError(), error);
    return 0;
}

extern "C" int lathe_kc_bn_bwd(lathe_cuda_ctx *ctx, int n, int c, int hw, int train, const float *x, const float *gamma,
                               const float *sm, const float *si, const float *dy, float *dx, float *dgamma,
                               float *dbeta, const char **error) {
    if (empty(n, c, hw)) return 0;
    if (!fits(n, c, hw)) return *error = "batch norm: too many channels or planes", -1;
    if (reserve(ctx, n, c, hw, error)) return -1;
    int cpp = chunks_per_plane(hw), m = n * cpp;
    double2 *totals = ctx->channel_partials + (size_t)c * m;
    plane_sums<SUMS_DY_XHAT><<<dim3(m, c), THREADS, 0, ctx->stream>>>(c, hw, cpp, x, dy, sm, si, ctx->channel_partials);
    grads_finish<<<c, THREADS, 0, ctx->stream>>>(m, ctx->channel_partials, dgamma, dbeta, totals);
    if (dx) bn_dx<<<dim3(m, c), THREADS, 0, ctx->stream>>>(c, hw, cpp, (size_t)n * hw, train, x, gamma, sm, si, totals, dy, dx);
    LATHE_CHECK_CUDA(cudaGetLastError(), error);
    return 0;
}
