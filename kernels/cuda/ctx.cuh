// ctx.cuh - the kernels' context (kernels/nn_cuda.h: lathe_cuda_ctx) and the checked-call macros
// of the cuDNN and cuBLAS calls, shared by the .cu files that implement nn_cuda.h.
#ifndef LATHE_KERNELS_CUDA_CTX_CUH
#define LATHE_KERNELS_CUDA_CTX_CUH
#include <cublas_v2.h>
#include <cudnn.h>
#include <stdio.h>

#include "common.cuh"
#include "kernels/nn_cuda.h"

#define CHECK_CUDNN(call, error)                                                                   \
    do {                                                                                           \
        cudnnStatus_t st_ = (call);                                                                \
        if (st_ != CUDNN_STATUS_SUCCESS) {                                                         \
            if (error) *(error) = cudnnGetErrorString(st_);                                        \
            return -1;                                                                             \
        }                                                                                          \
    } while (0)
#define CHECK_CUBLAS(call, error)                                                                  \
    do {                                                                                           \
        cublasStatus_t st_ = (call);                                                               \
        if (st_ != CUBLAS_STATUS_SUCCESS) {                                                        \
            if (error) *(error) = cublasGetStatusString(st_);                                      \
            return -1;                                                                             \
        }                                                                                          \
    } while (0)

// "what failed: cuDNN's reason", in a buffer of the calling thread (an error text outlives the call).
static inline const char *dnn_error(const char *what, cudnnStatus_t st) {
    static thread_local char text[192];
    snprintf(text, sizeof text, "%s failed: %s", what, cudnnGetErrorString(st));
    return text;
}

enum { THREADS = 256, ALGO_CACHE = 256 }; // conv shapes x batch sizes (a partial last batch is a shape)

struct conv_algos {
    lathe_conv_shape s;
    int bf16;        // the algorithms of the bf16 tensors (tensor cores) differ from fp32's
    int unsupported; // bf16: cuDNN has no deterministic algorithm for a direction of this shape
    cudnnConvolutionFwdAlgo_t fwd;
    cudnnConvolutionBwdDataAlgo_t bwd_data;
    cudnnConvolutionBwdFilterAlgo_t bwd_filter;
};

struct lathe_cuda_ctx {
    cudaStream_t stream;
    cudnnHandle_t dnn;
    cublasHandle_t blas;
    void *workspace;
    size_t workspace_bytes;
    conv_algos cache[ALGO_CACHE];
    int ncache;
    float *scratch; // device: loss partial sums
    size_t scratch_floats;
    double *partials; // device: LATHE_KC_PARTIALS partial sums of lathe_kc_sumsq, then its result
    unsigned short *half; // device: bf16 copies of a layer's operands (bf16.cu)
    size_t half_elems;
    double2 *channel_partials; // device: per-channel partial sums and totals (batchnorm.cu)
    size_t channel_partials_len;
};

struct conv_descs {
    cudnnTensorDescriptor_t x, y, b;
    cudnnFilterDescriptor_t w;
    cudnnConvolutionDescriptor_t conv;
};

// nn.cu: a convolution's descriptors (x, w, y in bf16 or fp32; the bias and the arithmetic fp32) and
// its cached algorithms (0), or 1 when bf16 has no deterministic algorithm for the shape (the
// caller runs fp32 instead); conv_destroy releases the descriptors. The row-bias add and its gradient
// (bias of a (m, k) output) for the linear layers of both precisions.
int conv_plan(lathe_cuda_ctx *c, const lathe_conv_shape *s, int bf16, conv_descs *d, conv_algos **a, const char **error);
void conv_destroy(conv_descs *d);
int kc_add_bias_rows(lathe_cuda_ctx *c, int m, int k, const float *b, float *y, const char **error);
int kc_sum_rows(lathe_cuda_ctx *c, int m, int k, const float *dy, float *db, const char **error);
// nn.cu: a scratch buffer *buf of *have values of size bytes grown to need values (after the
// stream drains: queued kernels may still read the old one); its contents are not kept.
int kc_grow(lathe_cuda_ctx *c, void **buf, size_t *have, size_t need, size_t size, const char **error);
// batchnorm.cu: db[ch] += the sum of dy (n, c, hw) over n and hw, in a fixed order.
int kc_channel_sums_add(lathe_cuda_ctx *c, int n, int ch, int hw, const float *dy, float *db, const char **error);

enum { LATHE_KC_PARTIALS = 64 };

static inline unsigned grid(size_t n) {
    size_t b = (n + THREADS - 1) / THREADS;
    return (unsigned)(b < 65535 ? (b ? b : 1) : 65535);
}

// The sum of v over the block (blockDim.x == THREADS), added in a fixed order; part: THREADS doubles
// of shared memory.
__device__ static inline double block_sum(double v, double *part) {
    part[threadIdx.x] = v;
    __syncthreads();
    for (int w = blockDim.x / 2; w > 0; w /= 2) {
        if (threadIdx.x < w) part[threadIdx.x] += part[threadIdx.x + w];
        __syncthreads();
    }
    double r = part[0];
    __syncthreads();
    return r;
}

#endif
