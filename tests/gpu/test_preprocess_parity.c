/* test_preprocess_parity.c - the CUDA preprocess kernel against its CPU twin over many shapes
 * (sizes that are not multiples of the block size included), with guard values around the output,
 * then a short timing of both. Prints SKIP and exits 0 where no GPU (or no CUDA build) exists. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/preprocess.h"
#ifdef LATHE_HAVE_CUDA
#include <cuda_runtime_api.h>

#include "gputest.h"
#endif

#define GUARD 64
#define GUARD_VALUE -12345.0f

#ifdef LATHE_HAVE_CUDA

static int check_shape(int n, int h, int w, int c) {
    static const float mean[4] = {0.485f, 0.456f, 0.406f, 0.5f}, std[4] = {0.229f, 0.224f, 0.225f, 0.25f};
    size_t in_bytes = (size_t)n * h * w * c, out_n = in_bytes;
    uint8_t *src = malloc(in_bytes ? in_bytes : 1);
    float *ref = malloc(sizeof(float) * (out_n + 1)), *got = malloc(sizeof(float) * (out_n + 2 * GUARD));
    for (size_t i = 0; i < in_bytes; i++) src[i] = (uint8_t)((i * 2654435761u) >> 24);
    lathe_k_preprocess_cpu(src, ref, n, h, w, c, mean, std);
    uint8_t *src_gpu;
    float *dst_gpu;
    CHECK(cudaMalloc((void **)&src_gpu, in_bytes ? in_bytes : 1));
    CHECK(cudaMalloc((void **)&dst_gpu, sizeof(float) * (out_n + 2 * GUARD)));
    for (size_t i = 0; i < out_n + 2 * GUARD; i++) got[i] = GUARD_VALUE;
    CHECK(cudaMemcpy(dst_gpu, got, sizeof(float) * (out_n + 2 * GUARD), cudaMemcpyHostToDevice));
    CHECK(cudaMemcpy(src_gpu, src, in_bytes, cudaMemcpyHostToDevice));
    const char *err = NULL;
    if (lathe_k_preprocess_cuda(src_gpu, dst_gpu + GUARD, n, h, w, c, mean, std, NULL, &err)) {
        fprintf(stderr, "FAIL launch %dx%dx%dx%d: %s\n", n, h, w, c, err);
        exit(1);
    }
    CHECK(cudaDeviceSynchronize());
    CHECK(cudaMemcpy(got, dst_gpu, sizeof(float) * (out_n + 2 * GUARD), cudaMemcpyDeviceToHost));
    int bad = 0;
    for (size_t i = 0; i < GUARD; i++) bad += got[i] != GUARD_VALUE || got[GUARD + out_n + i] != GUARD_VALUE;
    if (bad) fprintf(stderr, "FAIL %dx%dx%dx%d: the kernel wrote outside its output\n", n, h, w, c);
    for (size_t i = 0; i < out_n && bad < 5; i++) {
        float r = ref[i], g = got[GUARD + i];
        if (!(fabsf(g - r) <= 1e-6f + 1e-6f * fabsf(r))) {
            fprintf(stderr, "FAIL %dx%dx%dx%d at %zu: gpu %.9g cpu %.9g\n", n, h, w, c, i, g, r);
            bad++;
        }
    }
    cudaFree(src_gpu);
    cudaFree(dst_gpu);
    free(src), free(ref), free(got);
    return bad;
}

static void bench(void) {
    static const float mean[3] = {0.485f, 0.456f, 0.406f}, std[3] = {0.229f, 0.224f, 0.225f};
    int n = 32, h = 640, w = 640, c = 3;
    size_t bytes = (size_t)n * h * w * c;
    uint8_t *src = malloc(bytes), *src_gpu;
    float *dst = malloc(bytes * sizeof(float)), *dst_gpu;
    memset(src, 77, bytes);
    double t0 = gputest_now();
    for (int r = 0; r < 3; r++) lathe_k_preprocess_cpu(src, dst, n, h, w, c, mean, std);
    double cpu = (gputest_now() - t0) / 3;
    CHECK(cudaMalloc((void **)&src_gpu, bytes));
    CHECK(cudaMalloc((void **)&dst_gpu, bytes * sizeof(float)));
    CHECK(cudaMemcpy(src_gpu, src, bytes, cudaMemcpyHostToDevice));
    const char *err;
    lathe_k_preprocess_cuda(src_gpu, dst_gpu, n, h, w, c, mean, std, NULL, &err); /* warm-up */
    CHECK(cudaDeviceSynchronize());
    cudaEvent_t a, b;
    cudaEventCreate(&a), cudaEventCreate(&b);
    cudaEventRecord(a, 0);
    for (int r = 0; r < 20; r++) lathe_k_preprocess_cuda(src_gpu, dst_gpu, n, h, w, c, mean, std, NULL, &err);
    cudaEventRecord(b, 0);
    CHECK(cudaEventSynchronize(b));
    float ms;
    cudaEventElapsedTime(&ms, a, b);
    double gpu = ms / 20 / 1000;
    double moved = bytes * 5.0; /* 1 byte read + 4 bytes written per value */
    printf("bench preprocess %dx%dx%dx%d: cpu %.2f ms (%.1f GB/s), gpu %.3f ms (%.1f GB/s), gpu/cpu %.1fx\n", n, h, w,
           c, cpu * 1e3, moved / cpu / 1e9, gpu * 1e3, moved / gpu / 1e9, cpu / gpu);
    cudaFree(src_gpu), cudaFree(dst_gpu), free(src), free(dst);
}
#endif

int main(void) {
    const char *reason = NULL;
    if (!lathe_k_cuda_available(&reason)) {
        printf("SKIP preprocess parity: %s\n", reason);
        return 0;
    }
#ifdef LATHE_HAVE_CUDA
    static const int shapes[][4] = {{1, 1, 1, 1}, {1, 7, 5, 3}, {2, 33, 17, 3}, {3, 64, 64, 1}, {1, 255, 257, 4},
                                    {4, 100, 3, 2}, {0, 8, 8, 3}, {2, 640, 640, 3}, {5, 31, 1023, 3}};
    int bad = 0;
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++)
        bad += check_shape(shapes[i][0], shapes[i][1], shapes[i][2], shapes[i][3]);
    if (bad) return 1;
    printf("PASS preprocess parity: %zu shapes, GPU equals CPU within 1e-6\n", sizeof shapes / sizeof *shapes);
    bench();
#endif
    return 0;
}
