/* nms.h - class-aware non-maximum suppression for detection (CPU and CUDA, one contract).
 * Boxes are (N, 4) as x1, y1, x2, y2. Candidates with score >= score_thr are visited by score
 * (descending; equal scores by index); a candidate is kept unless a kept box of the same class
 * overlaps it with IoU > iou_thr. At most max_out are kept; keep receives their indices in the
 * order kept. Both versions keep exactly the same boxes. */
#ifndef LATHE_KERNELS_NMS_H
#define LATHE_KERNELS_NMS_H
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif

/* IoU of two x1, y1, x2, y2 boxes in float, as NMS (both versions) computes it; 0 when they do not
 * overlap. */
float lathe_k_box_iou(const float *a, const float *b);

/* Returns the number kept (>= 0), or -1 when memory runs out. */
int lathe_k_nms_cpu(const float *boxes, const float *scores, const int32_t *classes, int n, float iou_thr,
                    float score_thr, int max_out, int32_t *keep);

/* The same on the GPU: boxes, scores and classes are device pointers; keep is a host array. The
 * IoU tests run on the device as a bit matrix (64 candidates per word), the greedy pass on the host.
 * Returns the number kept, or -1 with the CUDA error text in *error. */
int lathe_k_nms_cuda(const float *boxes_gpu, const float *scores_gpu, const int32_t *classes_gpu, int n, float iou_thr,
                     float score_thr, int max_out, int32_t *keep, void *stream, const char **error);

#ifdef __cplusplus
}
#endif
#endif
