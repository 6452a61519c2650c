/* det_report_internal.h - what the parts of the detection report share: the boxes of a
 * lathe_coco_data grouped image by image, with their category indices. Not installed. */
#ifndef LATHE_EVAL_DET_REPORT_INTERNAL_H
#define LATHE_EVAL_DET_REPORT_INTERNAL_H
#include <stddef.h>

#include "coco.h"

typedef struct {
    size_t nimages;              /* d->nimages: image i is d->images[i] */
    size_t *gt, *dt;             /* indices into d->gt and d->dt, image by image; detections by score
                                    descending, ties in input order */
    size_t *gt_start, *dt_start; /* (nimages + 1): image i's boxes are gt[gt_start[i] .. gt_start[i + 1]) */
    long *gt_class, *dt_class;   /* category index of each d->gt / d->dt entry, -1 when d lacks it */
} det_index;

/* Groups d's boxes (d->images and d->categories sorted, as the loaders leave them). Boxes on an
 * image d lacks and detections with a NaN score are left out. Returns 0 or -LATHE_ENOMEM. */
int det_index_build(const lathe_coco_data *d, det_index *ix);
void det_index_free(det_index *ix);

/* Ground truth that is neither crowd nor ignored: it can be missed and matched once. */
static inline int det_counts(const lathe_coco_ann *g) { return !g->iscrowd && !g->ignore; }

#endif
