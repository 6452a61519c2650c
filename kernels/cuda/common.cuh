// common.cuh - helpers shared by lathe's CUDA kernels: the checked-call macro and launch sizes.
#ifndef LATHE_KERNELS_CUDA_COMMON_CUH
#define LATHE_KERNELS_CUDA_COMMON_CUH
#include <cuda_runtime.h>

// Returns -1 from the enclosing function with the CUDA error text in *error (a const char **).
#define LATHE_CHECK_CUDA(call, error)                                                             \
    do {                                                                                          \
        cudaError_t lathe_status_ = (call);                                                       \
        if (lathe_status_ != cudaSuccess) {                                                       \
            if (error) *(error) = cudaGetErrorString(lathe_status_);                              \
            return -1;                                                                            \
        }                                                                                         \
    } while (0)

static inline unsigned lathe_blocks(size_t work, unsigned threads) {
    return (unsigned)((work + threads - 1) / threads);
}
#endif
