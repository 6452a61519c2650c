/* test_det_parity.c - the CUDA DFL box decoding (kernels/det_decode.h) against its CPU twin on
 * random logits read with a row stride (head output rows: 4 x bins distance logits, then classes),
 * with guard values around the output and a NaN that must come out NaN on both, then a short timing
 * of both. |gpu - cpu| <= 1e-4 * stride per coordinate. Prints SKIP and exits 0 where no GPU (or no
 * CUDA build) exists. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/det_decode.h"
#include "kernels/preprocess.h"
#ifdef LATHE_HAVE_CUDA
#include <cuda_runtime_api.h>

#include "gputest.h"
#endif

#define GUARD 64
#define GUARD_VALUE -12345.0f

#ifdef LATHE_HAVE_CUDA

static uint64_t seed = 2024;
static double uniform(void) { /* [0, 1) */
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(seed >> 11) / 9007199254740992.0;
}

static float *upload(const float *h, size_t n) {
    float *d;
    CHECK(cudaMalloc((void **)&d, (n ? n : 1) * sizeof *d));
    if (n) CHECK(cudaMemcpy(d, h, n * sizeof *d, cudaMemcpyHostToDevice));
    return d;
}

/* decodes a anchors on both; returns the number of failures (printed) */
static int check_case(int a, int bins, int stride_k, int with_nan) {
    size_t nl = (size_t)a * stride_k, nb = 4 * (size_t)a;
    float *logits = malloc(sizeof(float) * (nl ? nl : 1)), *points = malloc(sizeof(float) * 2 * (a ? a : 1));
    float *stride = malloc(sizeof(float) * (a ? a : 1)), *ref = malloc(sizeof(float) * (nb ? nb : 1));
    float *got = malloc(sizeof(float) * (nb + 2 * GUARD));
    for (size_t i = 0; i < nl; i++) logits[i] = (float)(uniform() * 20 - 10);
    for (int i = 0; i < a; i++) {
        points[2 * i] = (float)(uniform() * 640), points[2 * i + 1] = (float)(uniform() * 640);
        stride[i] = (float)(8 << (int)(uniform() * 3));
    }
    int nan_at = -1; /* a NaN logit in anchor a / 2, side 2 (right): x2 must be NaN on both */
    if (with_nan && a > 0) nan_at = a / 2, logits[(size_t)nan_at * stride_k + 2 * (size_t)bins + bins / 2] = NAN;
    lathe_k_dfl_decode_cpu(a, bins, stride_k, logits, points, stride, ref);

    float *logits_gpu = upload(logits, nl), *points_gpu = upload(points, 2 * (size_t)a);
    float *stride_gpu = upload(stride, (size_t)a), *boxes_gpu;
    for (size_t i = 0; i < nb + 2 * GUARD; i++) got[i] = GUARD_VALUE;
    boxes_gpu = upload(got, nb + 2 * GUARD);
    const char *err = NULL;
    int bad = 0;
    if (lathe_k_dfl_decode_cuda(a, bins, stride_k, logits_gpu, points_gpu, stride_gpu, boxes_gpu + GUARD, NULL, &err)) {
        fprintf(stderr, "FAIL launch a=%d bins=%d stride_k=%d: %s\n", a, bins, stride_k, err ? err : "?");
        bad = 1;
    }
    CHECK(cudaDeviceSynchronize());
    CHECK(cudaMemcpy(got, boxes_gpu, sizeof(float) * (nb + 2 * GUARD), cudaMemcpyDeviceToHost));
    for (size_t i = 0; i < GUARD; i++) bad += got[i] != GUARD_VALUE || got[GUARD + nb + i] != GUARD_VALUE;
    if (bad) fprintf(stderr, "FAIL a=%d bins=%d: the kernel failed or wrote outside its output\n", a, bins);
    double worst = 0; /* in units of the anchor's stride */
    for (size_t i = 0; i < nb; i++) {
        float r = ref[i], g = got[GUARD + i];
        if ((int)(i / 4) == nan_at && i % 4 == 2) {
            if (!isnan(r) || !isnan(g)) {
                fprintf(stderr, "FAIL a=%d: a NaN logit gave cpu %g gpu %g (want NaN on both)\n", a, r, g);
                bad++;
            }
            continue;
        }
        double e = fabs((double)g - r) / stride[i / 4];
        if (!(e <= 1e-4)) {
            if (bad < 5) fprintf(stderr, "FAIL a=%d bins=%d at %zu: gpu %.9g cpu %.9g\n", a, bins, i, g, r);
            bad++;
        }
        if (isnan(e) || e > worst) worst = isnan(e) ? INFINITY : e; /* a NaN fails */
    }
    printf("%s dfl decode a=%-5d bins=%-2d stride_k=%-3d worst %.2e x stride (tol 1e-4)\n", bad ? "FAIL" : "PASS", a,
           bins, stride_k, worst);
    cudaFree(logits_gpu), cudaFree(points_gpu), cudaFree(stride_gpu), cudaFree(boxes_gpu);
    free(logits), free(points), free(stride), free(ref), free(got);
    return bad;
}

/* a batch of 32 images at 640 x 640 (8400 anchors each), from head output rows of 80 classes */
static void bench(void) {
    int a = 32 * 8400, bins = 16, stride_k = 4 * 16 + 80;
    size_t nl = (size_t)a * stride_k;
    float *logits = malloc(sizeof(float) * nl), *points = malloc(sizeof(float) * 2 * a);
    float *stride = malloc(sizeof(float) * a), *boxes = malloc(sizeof(float) * 4 * a);
    for (size_t i = 0; i < nl; i++) logits[i] = (float)(uniform() * 8 - 4);
    for (int i = 0; i < a; i++) points[2 * i] = points[2 * i + 1] = 100, stride[i] = 16;
    double t0 = gputest_now();
    for (int r = 0; r < 3; r++) lathe_k_dfl_decode_cpu(a, bins, stride_k, logits, points, stride, boxes);
    double cpu = (gputest_now() - t0) / 3;
    float *logits_gpu = upload(logits, nl), *points_gpu = upload(points, 2 * (size_t)a);
    float *stride_gpu = upload(stride, (size_t)a), *boxes_gpu = upload(boxes, 4 * (size_t)a);
    const char *err = NULL;
    if (lathe_k_dfl_decode_cuda(a, bins, stride_k, logits_gpu, points_gpu, stride_gpu, boxes_gpu, NULL, &err)) {
        fprintf(stderr, "FAIL bench launch: %s\n", err ? err : "?");
        exit(1);
    }
    CHECK(cudaDeviceSynchronize());
    cudaEvent_t e0, e1;
    CHECK(cudaEventCreate(&e0));
    CHECK(cudaEventCreate(&e1));
    CHECK(cudaEventRecord(e0, 0));
    for (int r = 0; r < 20; r++)
        lathe_k_dfl_decode_cuda(a, bins, stride_k, logits_gpu, points_gpu, stride_gpu, boxes_gpu, NULL, &err);
    CHECK(cudaEventRecord(e1, 0));
    CHECK(cudaEventSynchronize(e1));
    float ms;
    CHECK(cudaEventElapsedTime(&ms, e0, e1));
    double gpu = ms / 20 / 1000;
    printf("bench dfl decode %d anchors, bins 16: cpu %.2f ms, gpu %.3f ms, gpu/cpu %.1fx\n", a, cpu * 1e3, gpu * 1e3,
           cpu / gpu);
    cudaEventDestroy(e0), cudaEventDestroy(e1);
    cudaFree(logits_gpu), cudaFree(points_gpu), cudaFree(stride_gpu), cudaFree(boxes_gpu);
    free(logits), free(points), free(stride), free(boxes);
}
#endif

int main(void) {
    const char *reason = NULL;
    if (!lathe_k_cuda_available(&reason)) {
        printf("SKIP det parity: %s\n", reason);
        return 0;
    }
#ifdef LATHE_HAVE_CUDA
    /* the contract's case (5000 anchors, 16 bins, rows of 4 x 16 distance + 3 class logits), then
     * sizes that are not multiples of the block, compact rows, one bin, and no anchors */
    static const int cases[][4] = {{5000, 16, 4 * 16 + 3, 1}, {1, 16, 64, 0},  {333, 8, 37, 1},
                                   {8400, 16, 64, 0},         {77, 1, 4, 0},   {1000, 64, 4 * 64 + 80, 1},
                                   {0, 16, 64, 0}};
    int bad = 0;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        bad += check_case(cases[i][0], cases[i][1], cases[i][2], cases[i][3]);
    const char *err = NULL; /* a row stride shorter than a row is refused */
    if (lathe_k_dfl_decode_cuda(10, 16, 63, NULL, NULL, NULL, NULL, NULL, &err) != -1 || !err) {
        fprintf(stderr, "FAIL dfl decode accepted stride_k < 4 * bins\n");
        bad++;
    }
    if (bad) {
        printf("det parity: FAILED (%d)\n", bad);
        return 1;
    }
    printf("PASS det parity: %zu cases, GPU equals CPU within 1e-4 x stride\n", sizeof cases / sizeof *cases);
    bench();
#endif
    return 0;
}
