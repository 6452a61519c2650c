/* det_gather.h - a split's detections from every rank of a data-parallel run (det_gather.c). */
#ifndef LATHE_DET_DET_GATHER_H
#define LATHE_DET_DET_GATHER_H
#include <stddef.h>
#include <stdint.h>

#include "libcore/eval/coco.h"
#include "tile_merge.h"

/* With several ranks lathe_detector_split scores every ranks-th of the split's batches (rank r the
 * batches r, r + ranks, ...). This puts every rank's detections, and for a tiled dataset their tiles
 * and source sizes (rects and sizes NULL otherwise), together on every rank in the order one process
 * finds them, batch after batch. per_batch[k]: how many of this rank's *n came from its k-th batch
 * (nb of them); batches: the split's. The arrays are replaced (malloc'ed); 0 or a negative error. */
int det_gather_ranks(uint64_t batches, const size_t *per_batch, size_t nb, lathe_coco_ann **dt, lathe_tile_rect **rects,
                     double (**sizes)[2], size_t *n);
#endif
