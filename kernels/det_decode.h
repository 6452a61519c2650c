/* det_decode.h - box decoding of the anchor-free detection head (CPU and CUDA, one contract).
 * Per anchor i and side k (left, top, right, bottom) the distance is the expectation of a softmax
 * over `bins` logits, sum_j p_j * j, times stride[i]; the box is x1, y1, x2, y2 =
 * point - (d0, d1), point + (d2, d3). Shape letters: A anchors, B bins, S = stride_k.
 *   logits (A, S): anchor i's 4 x B distance logits start at logits + i * S (S >= 4 B), so the
 *                  head's output rows (4 B distance logits, then the class logits) decode in place
 *   points (A, 2), stride (A), boxes (A, 4)
 * A NaN or +inf logit (or a side whose logits are all -inf) makes that coordinate NaN, in both
 * versions. */
#ifndef LATHE_KERNELS_DET_DECODE_H
#define LATHE_KERNELS_DET_DECODE_H
#ifdef __cplusplus
extern "C" {
#endif

/* CPU (OpenMP over anchors; each anchor is independent, so results do not depend on the thread
 * count). The softmax subtracts each side's maximum and accumulates in double. Expects bins >= 1
 * and stride_k >= 4 * bins. */
void lathe_k_dfl_decode_cpu(int a, int bins, int stride_k, const float *logits, const float *points,
                            const float *stride, float *boxes);

/* The same on the GPU: every pointer is a device pointer; runs on `stream` (a cudaStream_t, NULL =
 * default) and does not wait for it. One thread per anchor side, in float with expf (not the fast
 * __expf): |gpu - cpu| <= 1e-4 * stride per coordinate for bins <= 64 (tests/gpu/test_det_parity.c).
 * Returns 0, or -1 with the reason in *error (bins < 1, stride_k < 4 * bins, a < 0, or the CUDA
 * error text; "built without CUDA" in a CPU-only build). */
int lathe_k_dfl_decode_cuda(int a, int bins, int stride_k, const float *logits_gpu, const float *points_gpu,
                            const float *stride_gpu, float *boxes_gpu, void *stream, const char **error);

#ifdef __cplusplus
}
#endif
#endif
