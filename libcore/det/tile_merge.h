/* tile_merge.h - one source image's detections from its overlapping tiles, merged into one set in
 * source pixels (the "NMS across tile seams" of tiled datasets). A detection that reaches a tile's
 * inner edge is a cut view: its score is scaled by cut_score, since the tile saw part of the object
 * at most. Then, best first, as in NMS: a duplicate of the same class (IoU above iou) is suppressed;
 * a cut piece and a detection of the same class from another tile that overlap mostly (intersection
 * over the smaller box at least ios) are one object: one box is kept, with the better score; the
 * whole view's box when one of the two is whole, the union of both when both are cut (an object
 * wider than the overlap, which no tile sees whole). So an object on a seam is found once. Edges of
 * the image itself cut nothing.
 * Why not SAHI's greedy union of every such pair: on the demo's defect tiles it cost half the AP50
 * (docs/PERFORMANCE.md, "The demo"): unions of pieces with neighbouring defects, and cut pieces that
 * outscored the whole view. */
#ifndef LATHE_DET_TILE_MERGE_H
#define LATHE_DET_TILE_MERGE_H
#include <stddef.h>

#include "libcore/eval/coco.h"
#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    double x0, y0, x1, y1; /* the tile's extent in source pixels */
} lathe_tile_rect;

typedef struct {
    double iou;   /* suppress a lower-scored detection of the same class above this IoU (0.7) */
    double ios;   /* merge a cut piece whose intersection over the smaller box reaches this (0.5) */
    double edge;  /* a box within this many pixels of a tile's inner edge is cut by it (2) */
    double cut_score; /* factor on a cut box's score, 0..1 (0.5) */
    double min_score; /* merged detections under this score are dropped (0; predict's --conf) */
    int max_det;  /* detections kept for the image, best first (100) */
} lathe_tile_merge_opts;

void lathe_tile_merge_defaults(lathe_tile_merge_opts *o);

/* dt: n detections of one image (x, y, w, h, score, category_id), tiles[i] the tile dt[i] came
 * from; width x height the source image. Reorders dt so that its first *kept entries are the merged
 * detections by score, descending (cut views with their scaled scores; a union of cut pieces has the
 * best of their scores).
 * Returns 0 or -LATHE_ENOMEM. */
int lathe_tile_merge(lathe_coco_ann *dt, const lathe_tile_rect *tiles, size_t n, double width, double height,
                     const lathe_tile_merge_opts *o, size_t *kept);

#ifdef __cplusplus
}
#endif
#endif
