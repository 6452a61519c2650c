// preprocess.cu - u8 (N, H, W, C) -> normalized f32 (N, C, H, W) on the GPU (kernels/preprocess.h).
// One thread per pixel: it reads the pixel's C bytes (adjacent) and writes C floats to C planes,
// each warp writing 32 consecutive floats per plane, so stores coalesce; the per-channel scale and
// shift are computed once on the host and passed by value.
#include "common.cuh"
#include "kernels/preprocess.h"

struct affine {
    float scale[LATHE_K_MAX_CHANNELS], shift[LATHE_K_MAX_CHANNELS];
};

static __global__ void preprocess_kernel(const uint8_t *__restrict__ src, float *__restrict__ dst, size_t pixels,
                                         size_t plane, int c, affine a) {
    size_t p = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (p >= pixels) return;
    size_t image = p / plane, at = p % plane;
    const uint8_t *in = src + p * c;
    float *out = dst + image * c * plane + at;
    for (int k = 0; k < c; k++) out[k * plane] = (float)in[k] * a.scale[k] + a.shift[k];
}

extern "C" int lathe_k_preprocess_cuda(const uint8_t *src_gpu, float *dst_gpu, int n, int h, int w, int c,
                                       const float *mean, const float *std, void *stream, const char **error) {
    if (c < 1 || c > LATHE_K_MAX_CHANNELS || n < 0 || h < 0 || w < 0) {
        if (error) *error = "bad shape";
        return -1;
    }
    affine a;
    for (int k = 0; k < c; k++) {  // the same arithmetic as the CPU twin
        a.scale[k] = 1.0f / (255.0f * std[k]);
        a.shift[k] = -mean[k] / std[k];
    }
    size_t plane = (size_t)h * w, pixels = plane * n;
    if (pixels == 0) return 0;
    const unsigned threads = 256;
    preprocess_kernel<<<lathe_blocks(pixels, threads), threads, 0, (cudaStream_t)stream>>>(src_gpu, dst_gpu, pixels,
                                                                                          plane, c, a);
    LATHE_CHECK_CUDA(cudaGetLastError(), error);
    return 0;
}
