// nn.cu - the CUDA twins of the CPU nn kernels (kernels/nn_cuda.h). Elementwise kernels use a
// grid-stride loop; reductions (batch norm, bias gradients, the loss) give each output one block
// that sums in a fixed order, and backward passes of pooling and upsampling gather into each input
// element instead of scattering with atomics, so every result is the same on every run.
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "ctx.cuh"

extern "C" int lathe_kc_create(void *stream, lathe_cuda_ctx **out, const char **error) {
    *out = NULL;
    lathe_cuda_ctx *c = (lathe_cuda_ctx *)calloc(1, sizeof *c);
    if (!c) {
        if (error) *error = "out of host memory";
        return -1;
    }
    c->stream = (cudaStream_t)stream;
    *out = c; // freed by lathe_kc_free on any later failure too
    CHECK_CUDNN(cudnnCreate(&c->dnn), error);
    CHECK_CUDNN(cudnnSetStream(c->dnn, c->stream), error);
    CHECK_CUBLAS(cublasCreate(&c->blas), error);
    CHECK_CUBLAS(cublasSetStream(c->blas, c->stream), error);
    // fp32 products in fp32 (no TF32), so results stay comparable with the CPU twins
    CHECK_CUBLAS(cublasSetMathMode(c->blas, CUBLAS_PEDANTIC_MATH), error);
    c->workspace_bytes = 256u << 20;
    LATHE_CHECK_CUDA(cudaMalloc(&c->workspace, c->workspace_bytes), error);
    LATHE_CHECK_CUDA(cudaMalloc(&c->partials, (LATHE_KC_PARTIALS + 1) * sizeof(double)), error);
    return 0;
}

extern "C" void lathe_kc_free(lathe_cuda_ctx *c) {
    if (!c) return;
    if (c->dnn) cudnnDestroy(c->dnn);
    if (c->blas) cublasDestroy(c->blas);
    cudaFree(c->workspace);
    cudaFree(c->scratch);
    cudaFree(c->partials);
    cudaFree(c->channel_partials);
    cudaFree(c->half);
    free(c);
}

int kc_grow(lathe_cuda_ctx *c, void **buf, size_t *have, size_t need, size_t size, const char **error) {
    if (need <= *have) return 0;
    LATHE_CHECK_CUDA(cudaStreamSynchronize(c->stream), error); // the old buffer may still be read
    cudaFree(*buf);
    *buf = NULL, *have = 0;
    if (cudaMalloc(buf, need * size) != cudaSuccess) {
        if (error) *error = cudaGetErrorString(cudaGetLastError()); // and clear it for later checks
        *buf = NULL;
        return -1;
    }
    *have = need;
    return 0;
}

// ---- convolution (cuDNN) ----

void conv_destroy(conv_descs *d) {
    if (d->x) cudnnDestroyTensorDescriptor(d->x);
    if (d->y) cudnnDestroyTensorDescriptor(d->y);
    if (d->b) cudnnDestroyTensorDescriptor(d->b);
    if (d->w) cudnnDestroyFilterDescriptor(d->w);
    if (d->conv) cudnnDestroyConvolutionDescriptor(d->conv);
}

static int describe(const lathe_conv_shape *s, int bf16, conv_descs *d, const char **error) {
    cudnnDataType_t t = bf16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT; // x, w, y; bias and arithmetic stay float
    memset(d, 0, sizeof *d);
    CHECK_CUDNN(cudnnCreateTensorDescriptor(&d->x), error);
    CHECK_CUDNN(cudnnCreateTensorDescriptor(&d->y), error);
    CHECK_CUDNN(cudnnCreateTensorDescriptor(&d->b), error);
    CHECK_CUDNN(cudnnCreateFilterDescriptor(&d->w), error);
    CHECK_CUDNN(cudnnCreateConvolutionDescriptor(&d->conv), error);
    CHECK_CUDNN(cudnnSetTensor4dDescriptor(d->x, CUDNN_TENSOR_NCHW, t, s->n, s->c, s->h, s->w), error);
    CHECK_CUDNN(cudnnSetTensor4dDescriptor(d->y, CUDNN_TENSOR_NCHW, t, s->n, s->k, s->p, s->q), error);
    CHECK_CUDNN(cudnnSetTensor4dDescriptor(d->b, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, s->k, 1, 1), error);
    CHECK_CUDNN(cudnnSetFilter4dDescriptor(d->w, t, CUDNN_TENSOR_NCHW, s->k, s->c / s->groups, s->r, s->s),
                error);
    CHECK_CUDNN(cudnnSetConvolution2dDescriptor(d->conv, s->pad, s->pad, s->stride, s->stride, s->dilation, s->dilation,
                                                CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT),
                error);
    CHECK_CUDNN(cudnnSetConvolutionGroupCount(d->conv, s->groups), error);
    // fp32: FMA, no TF32 (comparable with the CPU); bf16: the tensor cores
    CHECK_CUDNN(cudnnSetConvolutionMathType(d->conv, bf16 ? CUDNN_TENSOR_OP_MATH : CUDNN_FMA_MATH), error);
    return 0;
}

static bool same_shape(const lathe_conv_shape *a, const lathe_conv_shape *b) { // the geometry, batch included
    return a->n == b->n && a->c == b->c && a->h == b->h && a->w == b->w && a->k == b->k && a->r == b->r &&
           a->s == b->s && a->stride == b->stride && a->pad == b->pad && a->dilation == b->dilation &&
           a->groups == b->groups;
}

// The workspace grows to what the fastest algorithms ask for, up to this; beyond it, or where the
// device has no room, the fastest ones that fit the workspace there is.
static const size_t WORKSPACE_CAP = (size_t)2 << 30;

static int grow_workspace(lathe_cuda_ctx *c, size_t bytes) {
    if (bytes <= c->workspace_bytes) return 0;
    if (cudaStreamSynchronize(c->stream) != cudaSuccess) return -1; // the old one may still be in use
    void *p;
    if (cudaMalloc(&p, bytes) != cudaSuccess) {
        cudaGetLastError(); // clear it: running with the old workspace is fine
        return -1;
    }
    cudaFree(c->workspace);
    c->workspace = p, c->workspace_bytes = bytes;
    return 0;
}

// The first deterministic algorithm of cuDNN's list (fastest first) that ran and needs at most
// limit bytes of workspace; -1 where none.
template <typename Perf> static int first_fit(const Perf *p, int got, size_t limit, size_t *memory) {
    for (int i = 0; i < got; i++)
        if (p[i].status == CUDNN_STATUS_SUCCESS && p[i].memory <= limit && p[i].determinism == CUDNN_DETERMINISTIC) {
            *memory = p[i].memory;
            return i;
        }
    return -1;
}

// The fastest deterministic algorithms cuDNN measures for this shape and type (once; then cached).
// Where a direction has none, fp32 takes cuDNN's always-available algorithm, with the workspace it
// asks for, and bf16 is marked unsupported (the caller runs that shape in fp32).
static int algos(lathe_cuda_ctx *c, const lathe_conv_shape *s, int bf16, conv_descs *d, conv_algos **out,
                 const char **error) {
    for (int i = 0; i < c->ncache; i++)
        if (c->cache[i].bf16 == bf16 && same_shape(&c->cache[i].s, s)) {
            *out = &c->cache[i];
            return 0;
        }
    conv_algos a;
    a.s = *s, a.bf16 = bf16, a.unsupported = 0;
    int got[3] = {0, 0, 0}, pick[3];
    cudnnConvolutionFwdAlgoPerf_t fp[8];
    cudnnConvolutionBwdDataAlgoPerf_t dp[8];
    cudnnConvolutionBwdFilterAlgoPerf_t wp[8];
    CHECK_CUDNN(cudnnFindConvolutionForwardAlgorithm(c->dnn, d->x, d->w, d->conv, d->y, 8, &got[0], fp), error);
    CHECK_CUDNN(cudnnFindConvolutionBackwardDataAlgorithm(c->dnn, d->w, d->y, d->conv, d->x, 8, &got[1], dp), error);
    CHECK_CUDNN(cudnnFindConvolutionBackwardFilterAlgorithm(c->dnn, d->x, d->y, d->conv, d->w, 8, &got[2], wp), error);
    size_t mem[3] = {0, 0, 0}, limit = WORKSPACE_CAP;
    for (int attempt = 0; attempt < 2; attempt++) { // the fastest; then those that fit the workspace there is
        pick[0] = first_fit(fp, got[0], limit, &mem[0]);
        pick[1] = first_fit(dp, got[1], limit, &mem[1]);
        pick[2] = first_fit(wp, got[2], limit, &mem[2]);
        size_t need = mem[0] > mem[1] ? mem[0] : mem[1];
        need = need > mem[2] ? need : mem[2];
        if (need <= c->workspace_bytes || !grow_workspace(c, need)) break;
        limit = c->workspace_bytes;
    }
    a.fwd = pick[0] >= 0 ? fp[pick[0]].algo : CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM;
    a.bwd_data = pick[1] >= 0 ? dp[pick[1]].algo : CUDNN_CONVOLUTION_BWD_DATA_ALGO_1;
    a.bwd_filter = pick[2] >= 0 ? wp[pick[2]].algo : CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1;
    a.unsupported = bf16 && (pick[0] < 0 || pick[1] < 0 || pick[2] < 0);
    if (!a.unsupported) { // the defaults' workspace, where a default was taken
        size_t need = 0, b;
        if (pick[0] < 0 && cudnnGetConvolutionForwardWorkspaceSize(c->dnn, d->x, d->w, d->conv, d->y, a.fwd, &b) ==
                               CUDNN_STATUS_SUCCESS && b > need)
            need = b;
        if (pick[1] < 0 && cudnnGetConvolutionBackwardDataWorkspaceSize(c->dnn, d->w, d->y, d->conv, d->x, a.bwd_data,
                                                                        &b) == CUDNN_STATUS_SUCCESS && b > need)
            need = b;
        if (pick[2] < 0 && cudnnGetConvolutionBackwardFilterWorkspaceSize(c->dnn, d->x, d->y, d->conv, d->w,
                                                                          a.bwd_filter, &b) == CUDNN_STATUS_SUCCESS &&
            b > need)
            need = b;
        if (grow_workspace(c, need)) {
            if (error) *error = "no room on the device for a convolution's cuDNN workspace";
            return -1;
        }
    }
    int slot = c->ncache < ALGO_CACHE ? c->ncache++ : ALGO_CACHE - 1;
    c->cache[slot] = a;
    *out = &c->cache[slot];
    return 0;
}

int conv_plan(lathe_cuda_ctx *c, const lathe_conv_shape *s, int bf16, conv_descs *d, conv_algos **a,
              const char **error) {
    int rc = describe(s, bf16, d, error);
    if (!rc) rc = algos(c, s, bf16, d, a, error);
    return rc ? rc : (*a)->unsupported;
}

extern "C" int lathe_kc_conv2d_fwd(lathe_cuda_ctx *c, const lathe_conv_shape *s, const float *x, const float *w,
                                   const float *b, float *y, const char **error) {
    conv_descs d;
    conv_algos *a;
    int rc = conv_plan(c, s, 0, &d, &a, error);
    const float one = 1, zero = 0;
    cudnnStatus_t st;
    if (!rc && (st = cudnnConvolutionForward(c->dnn, &one, d.x, x, d.w, w, d.conv, a->fwd, c->workspace, c->workspace_bytes,
                                       &zero, d.y, y)) != CUDNN_STATUS_SUCCESS)
        rc = -1, *error = dnn_error("cudnnConvolutionForward", st);
    if (!rc && b && (st = cudnnAddTensor(c->dnn, &one, d.b, b, &one, d.y, y)) != CUDNN_STATUS_SUCCESS)
        rc = -1, *error = dnn_error("cudnnAddTensor", st);
    conv_destroy(&d);
    return rc;
}

extern "C" int lathe_kc_conv2d_bwd(lathe_cuda_ctx *c, const lathe_conv_shape *s, const float *x, const float *w,
                                   const float *dy, float *dx, float *dw, float *db, const char **error) {
    conv_descs d;
    conv_algos *a;
    int rc = conv_plan(c, s, 0, &d, &a, error);
    const float one = 1; // beta 1: accumulate, as the CPU kernels do
    cudnnStatus_t st;
    if (!rc && dx &&
        (st = cudnnConvolutionBackwardData(c->dnn, &one, d.w, w, d.y, dy, d.conv, a->bwd_data, c->workspace,
                                     c->workspace_bytes, &one, d.x, dx)) != CUDNN_STATUS_SUCCESS)
        rc = -1, *error = dnn_error("cudnnConvolutionBackwardData", st);
    if (!rc && dw &&
        (st = cudnnConvolutionBackwardFilter(c->dnn, &one, d.x, x, d.y, dy, d.conv, a->bwd_filter, c->workspace,
                                       c->workspace_bytes, &one, d.w, dw)) != CUDNN_STATUS_SUCCESS)
        rc = -1, *error = dnn_error("cudnnConvolutionBackwardFilter", st);
    if (!rc && db && (st = cudnnConvolutionBackwardBias(c->dnn, &one, d.y, dy, &one, d.b, db)) != CUDNN_STATUS_SUCCESS)
        rc = -1, *error = dnn_error("cudnnConvolutionBackwardBias", st);
    conv_destroy(&d);
    return rc;
}

// ---- linear (cuBLAS, column-major view of row-major buffers) ----

__global__ static void add_bias(int m, int k, const float *b, float *y) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (size_t)m * k; i += (size_t)gridDim.x * blockDim.x)
        y[i] += b[i % k];
}

// one block per column j: sum over rows in a fixed order
__global__ static void sum_rows(int m, int k, const float *dy, float *db) {
    __shared__ double part[THREADS];
    int j = blockIdx.x;
    double acc = 0;
    for (int i = threadIdx.x; i < m; i += blockDim.x) acc += dy[(size_t)i * k + j];
    part[threadIdx.x] = acc;
    __syncthreads();
    for (int w = blockDim.x / 2; w > 0; w /= 2) {
        if (threadIdx.x < w) part[threadIdx.x] += part[threadIdx.x + w];
        __syncthreads();
    }
    if (threadIdx.x == 0) db[j] += (float)part[0];
}

int kc_add_bias_rows(lathe_cuda_ctx *c, int m, int k, const float *b, float *y, const char **error) {
    add_bias<<<grid((size_t)m * k), THREADS, 0, c->stream>>>(m, k, b, y);
    LATHE_CHECK_CUDA(cudaGetLastError(), error);
    return 0;
}

int kc_sum_rows(lathe_cuda_ctx *c, int m, int k, const float *dy, float *db, const char **error) {
    sum_rows<<<k, THREADS, 0, c->stream>>>(m, k, dy, db);
    LATHE_CHECK_CUDA(cudaGetLastError(), error);
    return 0;
}

extern "C" int lathe_kc_linear_fwd(lathe_cuda_ctx *c, int m, int d, int k, const float *x, const float *w,
                                   const float *b, float *y, const char **error) {
    const float one = 1, zero = 0;
    // row-major y (m,k) = x (m,d) w^T: column-major y^T (k,m) = w (k,d as col-major d x k)^T ... = W x^T
    CHECK_CUBLAS(cublasSgemm(c->blas, CUBLAS_OP_T, CUBLAS_OP_N, k, m, d, &one, w, d, x, d, &zero, y, k), error);
    if (b) add_bias<<<grid((size_t)m * k), THREADS, 0, c->stream>>>(m, k, b, y);
    LATHE_CHECK_CUDA(cudaGetLastError(), error);
    return 0;
}

extern "C" int lathe_kc_linear_bwd(lathe_cuda_ctx *c, int m, int d, int k, const float *x, const float *w,
                                   const float *dy, float *dx, float *dw, float *db, const char **error) {
    const float one = 1;
    if (dx) // dx (m,d) += dy (m,k) w (k,d): column-major dx^T (d,m) += w^T... = W(d x k col) * dy^T
        CHECK_CUBLAS(cublasSgemm(c->blas, CUBLAS_OP_N, CUBLAS_OP_N, d, m, k, &one, w, d, dy, k, &one, dx, d), error);
    if (dw) // dw (k,d) += dy^T (k,m) x (m,d): column-major dw^T (d,k) += x^T(d,m) dy(m,k)
        CHECK_CUBLAS(cublasSgemm(c->blas, CUBLAS_OP_N, CUBLAS_OP_T, d, k, m, &one, x, d, dy, k, &one, dw, d), error);
    if (db) sum_rows<<<k, THREADS, 0, c->stream>>>(m, k, dy, db);
    LATHE_CHECK_CUDA(cudaGetLastError(), error);
    return 0;
}

// ---- activations ----

__device__ static float sigm(float v) { return v >= 0 ? 1 / (1 + expf(-v)) : expf(v) / (1 + expf(v)); }

__global__ static void act_fwd(int act, size_t n, const float *x, float slope, float *y) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        float v = x[i];
        switch (act) {
        case LATHE_ACT_RELU: y[i] = v > 0 ? v : 0; break;
        case LATHE_ACT_LEAKY: y[i] = v > 0 ? v : slope * v; break;
        case LATHE_ACT_SILU: y[i] = v * sigm(v); break;
        case LATHE_ACT_GELU: y[i] = (float)(0.5 * v * (1 + erf(v / sqrt(2.0)))); break;
        default: y[i] = sigm(v);
        }
    }
}

__global__ static void act_bwd(int act, size_t n, const float *x, float slope, const float *dy, float *dx) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        float v = x[i], g;
        switch (act) {
        case LATHE_ACT_RELU: g = v > 0 ? 1.f : 0.f; break;
        case LATHE_ACT_LEAKY: g = v > 0 ? 1.f : slope; break;
        case LATHE_ACT_SILU: {
            float s = sigm(v);
            g = s * (1 + v * (1 - s));
            break;
        }
        case LATHE_ACT_GELU: g = (float)(0.5 * (1 + erf(v / sqrt(2.0))) + v * exp(-0.5 * v * v) / sqrt(2 * M_PI)); break;
        default: {
            float s = sigm(v);
            g = s * (1 - s);
        }
        }
        dx[i] += dy[i] * g;
    }
}

extern "C" int lathe_kc_act_fwd(lathe_cuda_ctx *c, int act, size_t n, const float *x, float slope, float *y,
                                const char **error) {
    act_fwd<<<grid(n), THREADS, 0, c->stream>>>(act, n, x, slope, y);
    LATHE_CHECK_CUDA(cudaGetLastError(), error);
    return 0;
}

extern "C" int lathe_kc_act_bwd(lathe_cuda_ctx *c, int act, size_t n, const float *x, float slope, const float *dy,
                                float *dx, const char **error) {
    act_bwd<<<grid(n), THREADS, 0, c->stream>>>(act, n, x, slope, dy, dx);
    LATHE_CHECK_CUDA(cudaGetLastError(), error);
    return 0;
}

// ---- pooling and upsampling ----

__global__ static void pool_fwd(int max, int nc, int h, int w, int r, int stride, int pad, int p, int q,
                                const float *x, float *y, int32_t *arg) {
    size_t total = (size_t)nc * p * q;
    for (size_t o = blockIdx.x * (size_t)blockDim.x + threadIdx.x; o < total; o += (size_t)gridDim.x * blockDim.x) {
        size_t plane = o / ((size_t)p * q);
        int i = (int)(o % ((size_t)p * q) / q), j = (int)(o % q);
        const float *px = x + plane * h * w;
        float best = -INFINITY, acc = 0;
        int at = -1;
        for (int a = 0; a < r; a++) {
            int yy = i * stride - pad + a;
            if (yy < 0 || yy >= h) continue;
            for (int b = 0; b < r; b++) {
                int xx = j * stride - pad + b;
                if (xx < 0 || xx >= w) continue;
                float v = px[yy * w + xx];
                acc += v;
                if (at < 0 || v > best) best = v, at = yy * w + xx;
            }
        }
        if (max) {
            y[o] = at < 0 ? 0 : best;
            arg[o] = at;
        } else {
            y[o] = acc / (float)(r * r);
        }
    }
}

// gather: each input element sums the gradients of the windows that contain it
__global__ static void pool_bwd(int max, int nc, int h, int w, int r, int stride, int pad, int p, int q,
                                const int32_t *arg, const float *dy, float *dx) {
    size_t total = (size_t)nc * h * w;
    for (size_t e = blockIdx.x * (size_t)blockDim.x + threadIdx.x; e < total; e += (size_t)gridDim.x * blockDim.x) {
        size_t plane = e / ((size_t)h * w);
        int yy = (int)(e % ((size_t)h * w) / w), xx = (int)(e % w), self = yy * w + xx;
        // windows i with i*stride - pad <= yy < i*stride - pad + r
        int ilo = yy + pad - r + 1, jlo = xx + pad - r + 1;
        int i0 = ilo <= 0 ? 0 : (ilo + stride - 1) / stride, i1 = (yy + pad) / stride;
        int j0 = jlo <= 0 ? 0 : (jlo + stride - 1) / stride, j1 = (xx + pad) / stride;
        float acc = 0;
        for (int i = i0; i <= i1 && i < p; i++)
            for (int j = j0; j <= j1 && j < q; j++) {
                int top = i * stride - pad, left = j * stride - pad;
                if (yy < top || yy >= top + r || xx < left || xx >= left + r) continue;
                size_t o = plane * p * q + (size_t)i * q + j;
                if (max) acc += arg[o] == self ? dy[o] : 0;
                else acc += dy[o] / (float)(r * r);
            }
        dx[e] += acc;
    }
}

extern "C" int lathe_kc_maxpool_fwd(lathe_cuda_ctx *c, int n, int ch, int h, int w, int r, int stride, int pad, int p,
                                    int q, const float *x, float *y, int32_t *arg, const char **error) {
    pool_fwd<<<grid((size_t)n * ch * p * q), THREADS, 0, c->stream>>>(1, n * ch, h, w, r, stride, pad, p, q, x, y, arg);
    LATHE_CHECK_CUDA(cudaGetLastError(), error);
    return 0;
}

extern "C" int lathe_kc_maxpool_bwd(lathe_cuda_ctx *c, int n, int ch, int h, int w, int r, int stride, int pad, int p,
                                    int q, const int32_t *arg, const float *dy, float *dx, const char **error) {
    pool_bwd<<<grid((size_t)n * ch * h * w), THREADS, 0, c->stream>>>(1, n * ch, h, w, r, stride, pad, p, q, arg, dy, dx);
    LATHE_CHECK_CUDA(cudaGetLastError(), error);
    return 0;
}

extern "C" int lathe_kc_avgpool_fwd(lathe_cuda_ctx *c, int n, int ch, int h, int w, int r, int stride, int pad, int p,
                                    int q, const float *x, float *y, const char **error) {
    pool_fwd<<<grid((size_t)n * ch * p * q), THREADS, 0, c->stream>>>(0, n * ch, h, w, r, stride, pad, p, q, x, y, NULL);
    LATHE_CHECK_CUDA(cudaGetLastError(), error);
    return 0;
}

extern "C" int lathe_kc_avgpool_bwd(lathe_cuda_ctx *c, int n, int ch, int h, int w, int r, int stride, int pad, int p,
                                    int q, const float *dy, float *dx, const char **error) {
    pool_bwd<<<grid((size_t)n * ch * h * w), THREADS, 0, c->stream>>>(0, n * ch, h, w, r, stride, pad, p, q, NULL, dy, dx);
    LATHE_CHECK_CUDA(cudaGetLastError(), error);
    return 0;
}

__global__ static void up_fwd(int nc, int h, int w, int f, const float *x, float *y) {
    size_t total = (size_t)nc * h * f * w * f;
    for (size_t o = blockIdx.x * (size_t)blockDim.x + threadIdx.x; o < total; o += (size_t)gridDim.x * blockDim.x) {
        size_t plane = o / ((size_t)h * f * w * f);
        int i = (int)(o % ((size_t)h * f * w * f) / (w * f)), j = (int)(o % (w * f));
        y[o] = x[plane * h * w + (size_t)(i / f) * w + j / f];
    }
}

__global__ static void up_bwd(int nc, int h, int w, int f, const float *dy, float *dx) {
    size_t total = (size_t)nc * h * w;
    for (size_t e = blockIdx.x * (size_t)blockDim.x + threadIdx.x; e < total; e += (size_t)gridDim.x * blockDim.x) {
        size_t plane = e / ((size_t)h * w);
        int i = (int)(e % ((size_t)h * w) / w), j = (int)(e % w);
        float acc = 0;
        for (int a = 0; a < f; a++)
            for (int b = 0; b < f; b++) acc += dy[plane * h * w * f * f + (size_t)(i * f + a) * w * f + j * f + b];
        dx[e] += acc;
    }
}

extern "C" int lathe_kc_upsample_fwd(lathe_cuda_ctx *c, int n, int ch, int h, int w, int f, const float *x, float *y,
                                     const char **error) {
    up_fwd<<<grid((size_t)n * ch * h * w * f * f), THREADS, 0, c->stream>>>(n * ch, h, w, f, x, y);
    LATHE_CHECK_CUDA(cudaGetLastError(), error);
    return 0;
}

extern "C" int lathe_kc_upsample_bwd(lathe_cuda_ctx *c, int n, int ch, int h, int w, int f, const float *dy, float *dx,
                                     const char **error) {
    up_bwd<<<grid((size_t)n * ch * h * w), THREADS, 0, c->stream>>>(n * ch, h, w, f, dy, dx);
    LATHE_CHECK_CUDA(cudaGetLastError(), error);
    return 0;
}

// ---- softmax cross-entropy: one block per row, then one block sums the rows in order ----

__global__ static void ce_rows(int k, const float *z, const int32_t *labels, float smoothing, int valid, float *dz,
                               float *row_loss) {
    __shared__ double part[THREADS];
    int i = blockIdx.x, lab = labels[i];
    const float *zi = z + (size_t)i * k;
    if (lab < 0 || lab >= k) {
        for (int j = threadIdx.x; dz && j < k; j += blockDim.x) dz[(size_t)i * k + j] = 0;
        if (threadIdx.x == 0) row_loss[i] = 0;
        return;
    }
    double mx = -INFINITY;
    for (int j = threadIdx.x; j < k; j += blockDim.x) mx = fmax(mx, (double)zi[j]);
    part[threadIdx.x] = mx;
    __syncthreads();
    for (int w = blockDim.x / 2; w > 0; w /= 2) {
        if (threadIdx.x < w) part[threadIdx.x] = fmax(part[threadIdx.x], part[threadIdx.x + w]);
        __syncthreads();
    }
    mx = part[0];
    __syncthreads();
    double s = 0;
    for (int j = threadIdx.x; j < k; j += blockDim.x) s += exp(zi[j] - mx);
    double lse = mx + log(block_sum(s, part));
    double l = 0;
    for (int j = threadIdx.x; j < k; j += blockDim.x) {
        double t = (j == lab ? 1 - smoothing : 0) + (double)smoothing / k;
        l -= t * (zi[j] - lse);
        if (dz) dz[(size_t)i * k + j] = (float)((exp(zi[j] - lse) - t) / valid);
    }
    double total = block_sum(l, part);
    if (threadIdx.x == 0) row_loss[i] = (float)total;
}

__global__ static void count_valid(int m, int k, const int32_t *labels, float *out) {
    if (threadIdx.x || blockIdx.x) return;
    int v = 0;
    for (int i = 0; i < m; i++) v += labels[i] >= 0 && labels[i] < k;
    out[0] = (float)v;
}

extern "C" int lathe_kc_softmax_ce(lathe_cuda_ctx *c, int m, int k, const float *z, const int32_t *labels,
                                   float smoothing, float *dz, double *loss, const char **error) {
    if ((size_t)m + 1 > c->scratch_floats) {
        cudaFree(c->scratch);
        c->scratch = NULL;
        LATHE_CHECK_CUDA(cudaMalloc((void **)&c->scratch, sizeof(float) * ((size_t)m + 1)), error);
        c->scratch_floats = (size_t)m + 1;
    }
    count_valid<<<1, 1, 0, c->stream>>>(m, k, labels, c->scratch + m);
    float valid_f;
    LATHE_CHECK_CUDA(cudaMemcpyAsync(&valid_f, c->scratch + m, sizeof valid_f, cudaMemcpyDeviceToHost, c->stream), error);
    LATHE_CHECK_CUDA(cudaStreamSynchronize(c->stream), error);
    int valid = (int)valid_f;
    ce_rows<<<m, THREADS, 0, c->stream>>>(k, z, labels, smoothing, valid ? valid : 1, dz, c->scratch);
    LATHE_CHECK_CUDA(cudaGetLastError(), error);
    float *rows = (float *)malloc(sizeof(float) * m);
    if (!rows) {
        *error = "out of host memory";
        return -1;
    }
    cudaError_t st = cudaMemcpyAsync(rows, c->scratch, sizeof(float) * m, cudaMemcpyDeviceToHost, c->stream);
    if (st == cudaSuccess) st = cudaStreamSynchronize(c->stream);
    double total = 0;
    for (int i = 0; i < m; i++) total += rows[i]; // host sum in row order
    free(rows);
    LATHE_CHECK_CUDA(st, error);
    *loss = valid ? total / valid : 0;
    return 0;
}

// ---- optimizers ----

__global__ static void sgd(size_t n, float *w, const float *g, float *m, float lr, float mu, int nesterov, float wd,
                           float scale) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        float gk = g[i] * scale + wd * w[i];
        m[i] = mu * m[i] + gk;
        w[i] -= lr * (nesterov ? gk + mu * m[i] : m[i]);
    }
}

__global__ static void adamw(size_t n, float *w, const float *g, float *m, float *v, float lr, float b1, float b2,
                             float eps, float wd, float scale, float c1, float c2) {
    float step = lr / c1, denom_c = sqrtf(c2);
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        float gk = g[i] * scale;
        m[i] = b1 * m[i] + (1 - b1) * gk;
        v[i] = b2 * v[i] + (1 - b2) * gk * gk;
        w[i] -= lr * wd * w[i];
        w[i] -= step * m[i] / (sqrtf(v[i]) / denom_c + eps);
    }
}

extern "C" int lathe_kc_sgd_step(lathe_cuda_ctx *c, size_t n, float *w, const float *g, float *m, float lr, float mu,
                                 int nesterov, float wd, float scale, const char **error) {
    sgd<<<grid(n), THREADS, 0, c->stream>>>(n, w, g, m, lr, mu, nesterov, wd, scale);
    LATHE_CHECK_CUDA(cudaGetLastError(), error);
    return 0;
}

extern "C" int lathe_kc_adamw_step(lathe_cuda_ctx *c, size_t n, float *w, const float *g, float *m, float *v, float lr,
                                   float b1, float b2, float eps, float wd, float scale, float c1, float c2,
                                   const char **error) {
    adamw<<<grid(n), THREADS, 0, c->stream>>>(n, w, g, m, v, lr, b1, b2, eps, wd, scale, c1, c2);
    LATHE_CHECK_CUDA(cudaGetLastError(), error);
    return 0;
}
