/* loader.h - batches for image classification from a lathe dataset (pixels store): the samples of
 * one split that carry an image-level label, resized to the model's input (area averaging), luma
 * when the model takes one channel, normalized to (x / 255 - mean) / std, with optional
 * augmentation (horizontal and vertical flips, quarter turns, random crop-and-scale,
 * brightness/contrast jitter). Shuffling and augmentation are functions of (seed, epoch, position),
 * so a batch is the same on every run and after a resume, whatever the thread count. Items of a batch are prepared on all cores. */
#ifndef LATHE_DATA_LOADER_H
#define LATHE_DATA_LOADER_H
#include <stdint.h>

#include "libcore/io/dataset.h"
#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int split;            /* LATHE_SPLIT_* */
    int c, h, w;          /* model input */
    float mean, std;      /* normalization, on 0..1 values */
    int shuffle;          /* reshuffle every epoch */
    float flip;           /* probability of a horizontal flip */
    float flipud;         /* probability of a vertical flip */
    float rotate90;       /* probability of a quarter turn (either way; the crop window turned with it) */
    float crop;           /* random crop keeping at least 1 - crop of each side, 0 = none */
    float jitter;         /* brightness and contrast factors in [1 - jitter, 1 + jitter], 0 = none */
    uint64_t seed;
} lathe_loader_opts;

typedef struct lathe_loader lathe_loader;

/* Lists the split's labelled samples. Returns 0, -LATHE_EINVAL (not a pixels store, no labelled
 * sample in the split, bad options) or the reader's errors. */
int lathe_loader_create(lathe_dataset *ds, const lathe_loader_opts *o, lathe_loader **out);
void lathe_loader_free(lathe_loader *l);
/* Labelled samples in the split. */
uint64_t lathe_loader_size(const lathe_loader *l);
/* Fills x (n, C, H, W) and labels (n) with the samples at positions [first, first + n) of epoch's
 * order (n is clipped at the end; returns how many were filled, or a negative error). */
int lathe_loader_batch(lathe_loader *l, int epoch, uint64_t first, int n, float *x, int32_t *labels);
/* The dataset indices of the samples at positions [first, first + n) of epoch's order, as
 * lathe_loader_batch fills them (a contrastive batch's texts). Returns how many, as it does. */
int lathe_loader_samples(lathe_loader *l, int epoch, uint64_t first, int n, uint64_t *samples);
/* Drops, before the first batch, the samples for which drop(ctx, dataset index, label) is nonzero
 * (classes held out of training). Returns the samples left; 0 leaves the loader empty. */
uint64_t lathe_loader_filter(lathe_loader *l, int (*drop)(void *ctx, uint64_t sample, int32_t label), void *ctx);

#ifdef __cplusplus
}
#endif
#endif
