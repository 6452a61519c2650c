/* assign.h - task-aligned target assignment (TOOD, as YOLOv8-style anchor-free heads use it): for
 * each ground-truth box, the anchor points inside it are ranked by the alignment metric
 * s^alpha * IoU^beta (s: the predicted score of the box's class at that anchor, IoU: between the
 * anchor's predicted box and the ground truth); the top k become its positives. An anchor claimed
 * by several boxes goes to the one its prediction overlaps most. Each positive's target score is
 * its metric normalized per box: metric / max metric of the box x max IoU of the box's positives.
 * Shape letters: A anchors, C classes, G ground-truth boxes; boxes are x1, y1, x2, y2. */
#ifndef LATHE_DET_ASSIGN_H
#define LATHE_DET_ASSIGN_H
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int topk;          /* positives per box at most (10) */
    float alpha, beta; /* exponents of the metric (1, 6) */
} lathe_assign_opts;

/* points (A, 2) anchor centres; scores (A, C) predicted probabilities; pred (A, 4); gt (G, 4) and
 * gt_labels (G, in 0..C-1). Writes, per anchor, assigned (index of its box, or -1) and
 * target_score (0 for negatives). Returns the number of positives, or -LATHE_ENOMEM /
 * -LATHE_EINVAL (a label outside the classes). */
int lathe_assign_tal(const lathe_assign_opts *o, int A, int C, const float *points, const float *scores,
                     const float *pred, int G, const float *gt, const int32_t *gt_labels, int32_t *assigned,
                     float *target_score);

#ifdef __cplusplus
}
#endif
#endif
