/* gputest.h - what the GPU parity tests share: a checked CUDA call that exits the test with the
 * failing call's text, the two error measures they compare with, and a monotonic clock. Only included where LATHE_HAVE_CUDA is defined. */
#ifndef LATHE_TESTS_GPUTEST_H
#define LATHE_TESTS_GPUTEST_H
#include <cuda_runtime_api.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define CHECK(call)                                                                                    \
    do {                                                                                               \
        cudaError_t st_ = (call);                                                                      \
        if (st_ != cudaSuccess) {                                                                      \
            fprintf(stderr, "FAIL %s:%d: %s: %s\n", __FILE__, __LINE__, #call, cudaGetErrorString(st_)); \
            exit(1);                                                                                   \
        }                                                                                              \
    } while (0)

/* The worst |b - a| / (1 + |a|) over n values; a NaN anywhere gives infinity, which fails any bound. */
static inline double gputest_worst_error(const float *a, const float *b, size_t n) {
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)b[i] - a[i]) / (1 + fabs(a[i]));
        if (isnan(e) || e > worst) worst = isnan(e) ? INFINITY : e;
    }
    return worst;
}

/* ||b - a|| / ||a|| over n values (a NaN gives NaN, which fails any bound): the measure for bf16,
 * whose operands carry 8 bits. */
static inline double gputest_norm_error(const float *a, const float *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) num += ((double)b[i] - a[i]) * ((double)b[i] - a[i]), den += (double)a[i] * a[i];
    return sqrt(num / (den > 0 ? den : 1));
}

static inline double gputest_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}
#endif
