/* decode.h - the anchor-free head's geometry: anchor points of the P3..P5 grids, boxes decoded
 * from distribution-regression logits (the expectation of a softmax over bins per side), and
 * ground-truth boxes encoded as the distances the head learns. Boxes are x1, y1, x2, y2 in input
 * pixels; distances are in units of the level's stride. Shape letters: A anchors, B bins. */
#ifndef LATHE_DET_DECODE_H
#define LATHE_DET_DECODE_H
#ifdef __cplusplus
extern "C" {
#endif

/* Anchors of an H x W input for the given strides, level after level, row-major inside a level:
 * points (A, 2) cell centres and stride (A). Returns A (pass NULL buffers to count only). */
int lathe_det_anchors(int h, int w, const int *strides, int nlevels, float *points, float *stride);
/* boxes (A, 4) from logits (A, 4, B): side distance = sum_j softmax_j * j, times the stride. */
void lathe_det_decode(int a, int bins, const float *logits, const float *points, const float *stride, float *boxes);
/* distances (A, 4) of boxes (A, 4) from their anchors, in stride units, clipped to [0, B - 1.01]. */
void lathe_det_encode(int a, int bins, const float *boxes, const float *points, const float *stride, float *dist);

#ifdef __cplusplus
}
#endif
#endif
