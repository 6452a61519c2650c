/* preprocess.h - the loader's last step before a network: stored uint8 images (N, H, W, C) become
 * normalized float32 planes (N, C, H, W): (x / 255 - mean[c]) / std[c]. A CPU kernel and a CUDA
 * kernel with the same contract; kernels know buffers and shapes only. */
#ifndef LATHE_KERNELS_PREPROCESS_H
#define LATHE_KERNELS_PREPROCESS_H
#include <stddef.h>
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif

#define LATHE_K_MAX_CHANNELS 4

/* CPU (OpenMP over images and rows). src (N, H, W, C) u8, dst (N, C, H, W) f32; C <= 4. */
void lathe_k_preprocess_cpu(const uint8_t *src, float *dst, int n, int h, int w, int c, const float *mean,
                            const float *std);

/* 1 when lathe was built with CUDA and a device is present, else 0 (why in *reason when given). */
int lathe_k_cuda_available(const char **reason);
/* The same on the GPU: src_gpu and dst_gpu are device pointers; runs on `stream` (a cudaStream_t,
 * NULL = default). Returns 0, or -1 with the CUDA error text in *error. */
int lathe_k_preprocess_cuda(const uint8_t *src_gpu, float *dst_gpu, int n, int h, int w, int c, const float *mean,
                            const float *std, void *stream, const char **error);

#ifdef __cplusplus
}
#endif
#endif
