/* gputest.h - what the GPU parity tests share: a checked CUDA call that exits the test with the
 * failing call's text, and a monotonic clock. Only included where LATHE_HAVE_CUDA is defined. */
#ifndef LATHE_TESTS_GPUTEST_H
#define LATHE_TESTS_GPUTEST_H
#include <cuda_runtime_api.h>
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

static inline double gputest_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}
#endif
