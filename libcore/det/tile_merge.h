/* tile_merge.h - one source image's detections from its overlapping tiles, merged into one set in
 * source pixels (the "NMS across tile seams" of tiled datasets): a duplicate of the same object seen
 * whole in two tiles is suppressed by IoU as in NMS, and a piece of an object that a tile's inner
 * edge cuts is merged into the detection of the same class, from another tile, that holds most of
 * it (intersection over the smaller box, as SAHI's greedy merge), so an object on a seam is found
 * once. Edges of the image itself cut nothing. */
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
    int max_det;  /* detections kept for the image, best first (100) */
} lathe_tile_merge_opts;

void lathe_tile_merge_defaults(lathe_tile_merge_opts *o);

/* dt: n detections of one image (x, y, w, h, score, category_id), tiles[i] the tile dt[i] came
 * from; width x height the source image. Reorders dt so that its first *kept entries are the merged
 * detections by score, descending (a merged box is the union of its pieces, with the best score).
 * Returns 0 or -LATHE_ENOMEM. */
int lathe_tile_merge(lathe_coco_ann *dt, const lathe_tile_rect *tiles, size_t n, double width, double height,
                     const lathe_tile_merge_opts *o, size_t *kept);

#ifdef __cplusplus
}
#endif
#endif
