/* flip_fuse.h - test-time augmentation by a left-right mirror (eval.flip, docs/TRAINING.md): the
 * detector also sees each input mirrored, and the two views' detections are fused. A detection of
 * one view and one of the same class from the other that overlap (IoU at least LATHE_FLIP_MATCH_IOU;
 * the closest pairs first, each detection in one pair at most) are one object: the score-weighted
 * mean of the two boxes, the mean of the two scores. A detection only one view makes keeps half its
 * score. So what scores high is what both views see: a stray
 * response of one view (a false alarm's usual shape) is damped, a defect seen twice is not. */
#ifndef LATHE_DET_FLIP_FUSE_H
#define LATHE_DET_FLIP_FUSE_H
#include "predict.h"
#ifdef __cplusplus
extern "C" {
#endif

#define LATHE_FLIP_MATCH_IOU 0.5f
/* Each view's score floor (evaluation's): a detection one view scores under the caller's floor
 * still pairs with the other view's, and the fused score is held to the caller's floor after. */
#define LATHE_FLIP_VIEW_CONF 0.001f

/* Mirrors the images of a batch (n, c channels of h x w, planar) left to right, in place. */
void lathe_det_flip_inputs(float *x, int n, int c, int h, int w);

/* Maps n detections of a mirrored input of width w back to the input's pixels. */
void lathe_det_unflip(lathe_detection *d, int n, int w);

/* Fuses one image's detections of the plain view (a, na) and of the mirrored view mapped back (b,
 * nb) into out (room for na + nb), by score, descending, at most max_det. Returns how many, or
 * -LATHE_ENOMEM. */
int lathe_det_fuse_views(const lathe_detection *a, int na, const lathe_detection *b, int nb, int max_det,
                         lathe_detection *out);

#ifdef __cplusplus
}
#endif
#endif
