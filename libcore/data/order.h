/* order.h - what the training loaders share: the samples of a split, and the order an epoch
 * visits them in (a Fisher-Yates shuffle drawn from (seed, epoch), so it repeats on every run). */
#ifndef LATHE_DATA_ORDER_H
#define LATHE_DATA_ORDER_H
#include <stdint.h>

#include "libcore/io/dataset.h"
#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    uint64_t *index;  /* dataset indices of the split's samples, in dataset order (n) */
    int32_t *labels;  /* their image-level labels (n), NULL unless asked for */
    uint64_t *order;  /* positions into index in the order of epoch `epoch` (n) */
    uint64_t n, seed;
    int shuffle, epoch; /* epoch -1: no order computed yet */
    /* background sampling (lathe_split_order_sample_background): index holds the samples with boxes,
     * then the epoch's draw of those without; all_empty lists every sample without boxes (in
     * dataset order), preferred marks those the next draw takes first (hard negatives) */
    uint64_t *all_empty;
    unsigned char *preferred;
    uint64_t nboxed, nempty;
} lathe_split_order;

/* Lists split's samples (labelled_only: those whose label is >= 0; with_labels: keep the labels).
 * Returns 0 or the reader's errors / -LATHE_ENOMEM (s is then empty: safe to free). */
int lathe_split_order_init(lathe_split_order *s, lathe_dataset *ds, int split, int labelled_only, int with_labels,
                           uint64_t seed, int shuffle);
void lathe_split_order_free(lathe_split_order *s);
/* Keeps every sample with boxes and, each epoch, a fresh draw of round(share x count) of those
 * without (the empty tiles of a tiled dataset, mostly), drawn from (seed, epoch): n becomes the
 * epoch's size. share 1 keeps everything, as without this call. Returns 0, -LATHE_EINVAL (share
 * outside (0, 1]) or the reader's errors. */
int lathe_split_order_sample_background(lathe_split_order *s, lathe_dataset *ds, double share);
/* Hard negatives: the draws of samples without boxes from the next epoch on take these (dataset
 * indices of all_empty; others are ignored, and beyond the draw's size the first ones) before
 * filling up at random from the rest; n 0 goes back to plain random draws. Returns 0, or
 * -LATHE_EINVAL without background sampling / -LATHE_ENOMEM. */
int lathe_split_order_prefer_background(lathe_split_order *s, const uint64_t *samples, uint64_t n);
/* Epoch's order (positions 0..n-1, shuffled from (seed, epoch) when shuffle is set; with background
 * sampling, also the epoch's draw of samples without boxes into index), computed when the epoch
 * changes. One caller at a time. */
const uint64_t *lathe_split_order_epoch(lathe_split_order *s, int epoch);

#ifdef __cplusplus
}
#endif
#endif
