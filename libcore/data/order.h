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
} lathe_split_order;

/* Lists split's samples (labelled_only: those whose label is >= 0; with_labels: keep the labels).
 * Returns 0 or the reader's errors / -LATHE_ENOMEM (s is then empty: safe to free). */
int lathe_split_order_init(lathe_split_order *s, lathe_dataset *ds, int split, int labelled_only, int with_labels,
                           uint64_t seed, int shuffle);
void lathe_split_order_free(lathe_split_order *s);
/* Epoch's order (positions 0..n-1, shuffled from (seed, epoch) when shuffle is set), computed when
 * the epoch changes. One caller at a time. */
const uint64_t *lathe_split_order_epoch(lathe_split_order *s, int epoch);

#ifdef __cplusplus
}
#endif
#endif
