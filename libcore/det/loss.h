/* loss.h - the anchor-free detector's loss for one image: task-aligned assignment on the current
 * predictions, a classification loss (binary cross-entropy by default) against the assigned IoU-aware scores, CIoU and
 * distribution focal loss on the positives, each normalized by the sum of target scores (as
 * YOLOv8-style heads do), and the gradient of the weighted total with respect to the raw head
 * outputs (targets and varifocal weights held constant). Shape letters: A anchors, B bins,
 * C classes, G ground-truth boxes. */
#ifndef LATHE_DET_LOSS_H
#define LATHE_DET_LOSS_H
#include <stdint.h>

#include "assign.h"
#include "kernels/det_loss.h"
#ifdef __cplusplus
extern "C" {
#endif

/* Classification losses: varifocal against the IoU-aware scores (negatives weighted by 0.75 p^2);
 * binary cross-entropy against the same soft targets, every anchor and class at full weight
 * (YOLOv8's choice: it pushes background scores down faster); RetinaNet's focal loss on hard
 * targets (alpha 0.25, gamma 2). */
enum { LATHE_CLS_VARIFOCAL = 0, LATHE_CLS_BCE = 1, LATHE_CLS_FOCAL = 2 };

typedef struct {
    int classes, bins;
    float w_cls, w_iou, w_dfl;  /* loss weights (0.5, 7.5, 1.5 as YOLOv8 uses them) */
    int cls_kind;               /* the classification loss, LATHE_CLS_* above (default BCE) */
    int iou_kind;               /* LATHE_IOU_CIOU (default) or LATHE_IOU_GIOU (kernels/det_loss.h) */
    double norm;                /* 0: normalize by the image's target-score sum (at least 1); > 0: by
                                   this (a batch trainer passes the batch's sum, as YOLOv8 does) */
    const unsigned char *cls_skip; /* (C) or NULL: 1 for a class outside the class loss (no loss, zero
                                   gradient): an open-vocabulary detector's held-out classes, which
                                   training must not teach to be absent everywhere */
    lathe_assign_opts assign;
} lathe_det_loss_opts;

void lathe_det_loss_defaults(lathe_det_loss_opts *o, int classes, int bins);

/* out (A, 4B + C): per anchor the 4 sides' B distance logits, then C class logits. points (A, 2),
 * stride (A) from lathe_det_anchors; gt (G, 4) in input pixels with labels (G). dout (may be NULL)
 * receives the gradient (same shape as out); parts (may be NULL) the three unweighted losses
 * (class, CIoU, DFL). Returns the weighted total, or a negative LATHE_E* code cast to double
 * (-LATHE_ENOMEM, -LATHE_EINVAL for a label outside the classes). */
double lathe_det_loss_image(const lathe_det_loss_opts *o, int A, const float *points, const float *stride,
                            const float *out, int G, const float *gt, const int32_t *gt_labels, float *dout,
                            double parts[3]);

/* The two halves of lathe_det_loss_image: the targets (assigned box per anchor or -1, and its
 * IoU-aware score) from the current outputs, then the loss and gradient for fixed targets. The
 * gradient treats the targets as constants, so it is the exact derivative of the second half. */
int lathe_det_assign_image(const lathe_det_loss_opts *o, int A, const float *points, const float *stride,
                           const float *out, int G, const float *gt, const int32_t *gt_labels, int32_t *assigned,
                           float *score);
double lathe_det_loss_assigned(const lathe_det_loss_opts *o, int A, const float *points, const float *stride,
                               const float *out, const float *gt, const int32_t *gt_labels, const int32_t *assigned,
                               const float *score, float *dout, double parts[3]);

#ifdef __cplusplus
}
#endif
#endif
