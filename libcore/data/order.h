/* order.h - what the training loaders share: the samples of a split, and the order an epoch
 * visits them in (a Fisher-Yates shuffle drawn from (seed, epoch), so it repeats on every run). */
#ifndef LATHE_DATA_ORDER_H
#define LATHE_DATA_ORDER_H
#include <stdint.h>

#include "libcore/io/dataset.h"
#ifdef __cplusplus
extern "C" {
#endif

/* The dataset indices of split's samples in dataset order into *index (malloc'd, n + 1 entries),
 * with their image-level labels into *labels when labels is not NULL; labelled_only keeps only
 * samples whose label is >= 0. Returns 0 or the reader's errors / -LATHE_ENOMEM. */
int lathe_split_samples(lathe_dataset *ds, int split, int labelled_only, uint64_t **index, int32_t **labels,
                        uint64_t *n);

/* order[0..n) = the positions 0..n-1, shuffled from (seed, epoch) when shuffle is nonzero. */
void lathe_epoch_order(uint64_t *order, uint64_t n, uint64_t seed, int epoch, int shuffle);

#ifdef __cplusplus
}
#endif
#endif
