// det_decode.cu - DFL box decoding on the GPU (kernels/det_decode.h). One thread per anchor side:
// a side's bins are a short serial loop (16 in the reference heads), and 4 A threads fill the GPU
// for any real input (8400 anchors at 640 x 640); each thread writes one coordinate, so the writes
// coalesce. Float with expf rather than the CPU's double: the expectation of <= 64 bins loses a few
// ulp, far inside the 1e-4 * stride the parity test allows.
#include "common.cuh"
#include "kernels/det_decode.h"

__global__ static void dfl_decode(int a, int bins, int stride_k, const float *logits, const float *points,
                                  const float *stride, float *boxes) {
    size_t id = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (id >= (size_t)a * 4) return;
    size_t i = id / 4;
    int side = (int)(id % 4);
    const float *z = logits + i * stride_k + (size_t)side * bins;
    // the CPU's maximum, NaN handling included (a NaN in z[0] stays)
    float mx = z[0];
    for (int j = 1; j < bins; j++) mx = z[j] > mx ? z[j] : mx;
    float s = 0, e = 0;
    for (int j = 0; j < bins; j++) {
        float p = expf(z[j] - mx);
        s += p, e += p * j;
    }
    float d = e / s * stride[i];
    // sides 0, 1 (left, top) subtract from x, y; sides 2, 3 (right, bottom) add
    float pt = points[2 * i + (side & 1)];
    boxes[id] = side < 2 ? pt - d : pt + d;
}

extern "C" int lathe_k_dfl_decode_cuda(int a, int bins, int stride_k, const float *logits_gpu, const float *points_gpu,
                                       const float *stride_gpu, float *boxes_gpu, void *stream, const char **error) {
    if (a < 0 || bins < 1 || stride_k < 4 * bins) {
        if (error) *error = "dfl decode: needs a >= 0, bins >= 1 and stride_k >= 4 * bins";
        return -1;
    }
    if (a == 0) return 0;  // a launch of zero blocks is an error
    size_t work = (size_t)a * 4;
    dfl_decode<<<lathe_blocks(work, 256), 256, 0, (cudaStream_t)stream>>>(a, bins, stride_k, logits_gpu, points_gpu,
                                                                          stride_gpu, boxes_gpu);
    LATHE_CHECK_CUDA(cudaGetLastError(), error);
    return 0;
}
