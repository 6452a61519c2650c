/* predict.h - from the anchor-free head's outputs to detections: the anchor geometry of a model's
 * input, per-class scores (sigmoid of the class logits) above a confidence floor, every
 * (anchor, class) pair a candidate (multi-label, as COCO evaluation wants), the best candidates
 * decoded from their distance distributions, then class-aware NMS (kernels/nms.h). */
#ifndef LATHE_DET_PREDICT_H
#define LATHE_DET_PREDICT_H
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int A, bins, classes;   /* anchors; per anchor 4 x bins distance logits then classes logits */
    float *points, *stride; /* (A, 2), (A) */
} lathe_det_head;

/* Anchors of an h x w input over the given strides (each >= 1). Returns 0, -LATHE_EINVAL or
 * -LATHE_ENOMEM. */
int lathe_det_head_init(lathe_det_head *hd, int h, int w, const int *strides, int nlevels, int bins, int classes);
void lathe_det_head_free(lathe_det_head *hd);

typedef struct {
    float conf;         /* score floor (0.001 for evaluation, 0.25 to show) */
    float iou;          /* NMS IoU (0.7) */
    int max_det;        /* detections kept per image (100, COCO's maxDets) */
    int max_candidates; /* best (anchor, class) pairs that reach NMS (3000) */
} lathe_det_predict_opts;

void lathe_det_predict_defaults(lathe_det_predict_opts *o);

typedef struct {
    float box[4]; /* x1, y1, x2, y2 in input pixels */
    float score;
    int32_t label;
} lathe_detection;

/* out: one image's head outputs (A, 4 bins + classes). dets has room for o->max_det. NaN scores
 * and boxes that do not decode to finite numbers are never candidates. Returns how many were kept
 * (by score, descending), or -LATHE_ENOMEM. */
int lathe_det_predict(const lathe_det_head *hd, const lathe_det_predict_opts *o, const float *out, lathe_detection *dets);

#ifdef __cplusplus
}
#endif
#endif
