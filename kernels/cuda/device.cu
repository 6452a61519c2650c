// device.cu - whether a CUDA device can be used.
#include "common.cuh"
#include "kernels/preprocess.h"

extern "C" int lathe_k_cuda_available(const char **reason) {
    int count = 0;
    cudaError_t st = cudaGetDeviceCount(&count);
    if (st != cudaSuccess || count == 0) {
        if (reason) *reason = st != cudaSuccess ? cudaGetErrorString(st) : "no CUDA device";
        cudaGetLastError();  // clear the sticky error of a failed probe
        return 0;
    }
    return 1;
}
