// nms.cu - class-aware NMS on the GPU (kernels/nms.h): the device fills a bit matrix, row i telling
// which later candidates (in score order) box i suppresses; the host walks it greedily. The IoU
// arithmetic uses round-to-nearest intrinsics so no multiply-add is fused, which keeps every
// comparison identical to the CPU version's.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "common.cuh"
#include "kernels/nms.h"

__device__ static float iou_rn(const float *a, const float *b) {
    float w = __fsub_rn(fminf(a[2], b[2]), fmaxf(a[0], b[0]));
    float h = __fsub_rn(fminf(a[3], b[3]), fmaxf(a[1], b[1]));
    if (w <= 0 || h <= 0) return 0;
    float inter = __fmul_rn(w, h);
    float ua = __fsub_rn(__fadd_rn(__fmul_rn(__fsub_rn(a[2], a[0]), __fsub_rn(a[3], a[1])),
                                   __fmul_rn(__fsub_rn(b[2], b[0]), __fsub_rn(b[3], b[1]))),
                         inter);
    return ua > 0 ? __fdiv_rn(inter, ua) : 0;
}

// one thread per (row i, 64-candidate word): bit b set when candidate 64*word+b (after i) is suppressed by i
__global__ static void suppress(const float *boxes, const int32_t *classes, const int32_t *order, int m, int words,
                                float thr, unsigned long long *mask) {
    size_t id = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (id >= (size_t)m * words) return;
    int i = (int)(id / words), word = (int)(id % words);
    const float *a = boxes + 4 * (size_t)order[i];
    int ca = classes[order[i]];
    unsigned long long bits = 0;
    for (int b = 0; b < 64; b++) {
        int j = word * 64 + b;
        if (j <= i || j >= m) continue;
        if (classes[order[j]] == ca && iou_rn(a, boxes + 4 * (size_t)order[j]) > thr) bits |= 1ull << b;
    }
    mask[id] = bits;
}

extern "C" int lathe_k_nms_cuda(const float *boxes, const float *scores, const int32_t *classes, int n, float iou_thr,
                                float score_thr, int max_out, int32_t *keep, void *stream, const char **error) {
    cudaStream_t st = (cudaStream_t)stream;
    std::vector<float> s(n > 0 ? n : 1);
    LATHE_CHECK_CUDA(cudaMemcpyAsync(s.data(), scores, sizeof(float) * n, cudaMemcpyDeviceToHost, st), error);
    LATHE_CHECK_CUDA(cudaStreamSynchronize(st), error);
    std::vector<int32_t> order;
    for (int i = 0; i < n; i++)
        if (s[i] >= score_thr) order.push_back(i);
    std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return s[a] > s[b]; });
    int m = (int)order.size(), words = (m + 63) / 64;
    if (m == 0) return 0;
    int32_t *order_gpu;
    unsigned long long *mask_gpu;
    LATHE_CHECK_CUDA(cudaMalloc((void **)&order_gpu, sizeof(int32_t) * m), error);
    cudaError_t e = cudaMalloc((void **)&mask_gpu, sizeof(unsigned long long) * (size_t)m * words);
    if (e != cudaSuccess) {
        cudaFree(order_gpu);
        LATHE_CHECK_CUDA(e, error);
    }
    std::vector<unsigned long long> mask((size_t)m * words);
    e = cudaMemcpyAsync(order_gpu, order.data(), sizeof(int32_t) * m, cudaMemcpyHostToDevice, st);
    if (e == cudaSuccess) {
        size_t work = (size_t)m * words;
        suppress<<<lathe_blocks(work, 256), 256, 0, st>>>(boxes, classes, order_gpu, m, words, iou_thr, mask_gpu);
        e = cudaGetLastError();
    }
    if (e == cudaSuccess)
        e = cudaMemcpyAsync(mask.data(), mask_gpu, sizeof(unsigned long long) * mask.size(), cudaMemcpyDeviceToHost, st);
    if (e == cudaSuccess) e = cudaStreamSynchronize(st);
    cudaFree(order_gpu);
    cudaFree(mask_gpu);
    LATHE_CHECK_CUDA(e, error);
    std::vector<unsigned long long> removed(words, 0);
    int kept = 0;
    for (int i = 0; i < m && kept < max_out; i++) {
        if (removed[i / 64] >> (i % 64) & 1) continue;
        keep[kept++] = order[i];
        for (int w = 0; w < words; w++) removed[w] |= mask[(size_t)i * words + w];
    }
    return kept;
}
