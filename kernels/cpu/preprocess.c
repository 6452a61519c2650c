/* preprocess.c - CPU twin of kernels/cuda/preprocess.cu (see kernels/preprocess.h). */
#include "kernels/preprocess.h"

void lathe_k_preprocess_cpu(const uint8_t *src, float *dst, int n, int h, int w, int c, const float *mean,
                            const float *std) {
    float scale[LATHE_K_MAX_CHANNELS], shift[LATHE_K_MAX_CHANNELS];
    /* (x / 255 - m) / s as one multiply-add, in the same order as the CUDA kernel */
    for (int k = 0; k < c; k++) {
        scale[k] = 1.0f / (255.0f * std[k]);
        shift[k] = -mean[k] / std[k];
    }
    size_t plane = (size_t)h * w;
#pragma omp parallel for collapse(2) schedule(static)
    for (int i = 0; i < n; i++) {
        for (int y = 0; y < h; y++) {
            const uint8_t *row = src + ((size_t)i * plane + (size_t)y * w) * c;
            float *out = dst + (size_t)i * c * plane + (size_t)y * w;
            for (int x = 0; x < w; x++)
                for (int k = 0; k < c; k++) out[k * plane + x] = (float)row[x * c + k] * scale[k] + shift[k];
        }
    }
}
