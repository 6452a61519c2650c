/* det_loss.h - the detection losses, forward and gradient, on plain buffers (CPU; _f32 for
 * training, _f64 for the finite-difference tests, one source). Boxes are (N, 4) x1, y1, x2, y2.
 * Each returns its loss and, when the gradient pointer is not NULL, writes (not accumulates) the
 * gradient of that loss. Weighted losses are sum(w_i L_i) / sum(w_i) (0 when the weights sum to 0). */
#ifndef LATHE_KERNELS_DET_LOSS_H
#define LATHE_KERNELS_DET_LOSS_H
#include <stddef.h>
#ifdef __cplusplus
extern "C" {
#endif

enum { LATHE_IOU_GIOU = 0, LATHE_IOU_DIOU = 1, LATHE_IOU_CIOU = 2 };

#define LATHE_DET_DECLARE(T, SUF)                                                                          \
    /* 1 - GIoU, 1 - IoU + rho^2/c^2 (DIoU), or DIoU + alpha v (CIoU, alpha's dependence included) */  \
    double lathe_k_iou_loss##SUF(int kind, int n, const T *pred, const T *target, const T *weight, T *dpred); \
    /* distribution focal loss: logits (N, 4, bins), targets (N, 4) distances in bin units, each in     \
     * [0, bins - 1]; the two bins around the target share it linearly; per box the mean of its 4 sides */ \
    double lathe_k_dfl##SUF(int n, int bins, const T *logits, const T *target, const T *weight, T *dlogits);   \
    /* sigmoid focal loss with soft targets t in [0, 1], mean over n */                                    \
    double lathe_k_focal##SUF(size_t n, const T *logits, const T *targets, T alpha, T gamma, T *dlogits);   \
    /* binary cross-entropy of sigmoid logits against soft targets in [0, 1]; returns the sum over n */ \
    double lathe_k_bce##SUF(size_t n, const T *logits, const T *targets, T *dlogits);                        \
    /* varifocal loss: targets q are IoU-aware scores (0 for negatives); the weight q (positives) or     \
     * alpha p^gamma (negatives) is a constant, as in the paper; returns the sum over n */                 \
    double lathe_k_varifocal##SUF(size_t n, const T *logits, const T *targets, T alpha, T gamma, T *dlogits);

LATHE_DET_DECLARE(float, _f32)
LATHE_DET_DECLARE(double, _f64)

#ifdef __cplusplus
}
#endif
#endif
