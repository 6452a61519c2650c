/* det_loader.h - detection batches from a lathe dataset (pixels store): every sample of a split
 * (images without boxes are negatives) letterboxed to the model's input with its boxes, and, for
 * training, augmented on the fly: mosaic (four images around a random centre, switched off from a
 * given epoch on), random scale and translation, horizontal and vertical flips, quarter turns, and
 * HSV jitter (hue, saturation, value gains). Geometry is one inverse mapping per output pixel
 * (bilinear), so each step costs one pass over the output. Boxes follow the same transform, are
 * clipped to the image, and are dropped when less than 2 pixels wide or high or under a tenth of
 * their area survives; crowd and ignored boxes never become targets. Everything random is a
 * function of (seed, epoch, position), so a batch is the same on every run, after a resume, and for
 * any thread count. */
#ifndef LATHE_DATA_DET_LOADER_H
#define LATHE_DATA_DET_LOADER_H
#include <stddef.h>
#include <stdint.h>

#include "libcore/io/dataset.h"
#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int split;                  /* LATHE_SPLIT_* */
    int h, w;                   /* model input (3 channels) */
    float mean, std;            /* normalization of 0..1 values */
    int augment;                /* 0: letterbox only, in dataset order */
    float flip;                 /* probability of a horizontal flip */
    float flipud;               /* probability of a vertical flip */
    float rotate90;             /* probability of a quarter turn (either way) */
    float scale, translate;     /* scale gain in [1 - scale, 1 + scale]; shift up to translate x size */
    float hsv_h, hsv_s, hsv_v;  /* hue shift up to hsv_h turns; saturation, value gains in [1 - g, 1 + g] */
    float mosaic;               /* probability that an item is a mosaic of four images */
    int mosaic_epochs;          /* epochs >= this one get no mosaic (-1: never switched off) */
    float background;           /* with augment: share of samples without boxes drawn each epoch (1: all) */
    uint64_t seed;
} lathe_det_loader_opts;

/* The augmentation defaults (YOLO's usual: flip 0.5, scale 0.5, translate 0.1, HSV 0.015/0.7/0.4,
 * mosaic 1; no vertical flip or quarter turn) with augment = 0. */
void lathe_det_loader_defaults(lathe_det_loader_opts *o);

/* A batch: n images and their boxes, boxes of item i at rows offsets[i] .. offsets[i + 1]. */
typedef struct {
    int n, cap;
    float *x;          /* (cap, 3, H, W) */
    float *boxes;      /* (M, 4) x1, y1, x2, y2 in input pixels */
    int32_t *labels;   /* (M) */
    int *offsets;      /* (cap + 1) */
    uint64_t *samples; /* (cap) dataset index of each item */
    size_t nboxes, box_cap;
} lathe_det_batch;

int lathe_det_batch_init(lathe_det_batch *b, int cap, int h, int w);
void lathe_det_batch_free(lathe_det_batch *b);

typedef struct lathe_det_loader lathe_det_loader;

/* Lists the split's samples. Returns 0, -LATHE_EINVAL (not a pixels store, an empty split, bad
 * options) or the reader's errors. */
int lathe_det_loader_create(lathe_dataset *ds, const lathe_det_loader_opts *o, lathe_det_loader **out);
void lathe_det_loader_free(lathe_det_loader *l);
uint64_t lathe_det_loader_size(const lathe_det_loader *l);
/* Fills b with the items at positions [first, first + n) of epoch's order (n clipped at the end;
 * at most b->cap). Returns how many, or a negative LATHE_E* code. Items run on all cores. */
int lathe_det_loader_batch(lathe_det_loader *l, int epoch, uint64_t first, int n, lathe_det_batch *b);
/* Fills b with the given dataset samples letterboxed and unaugmented, as evaluation sees them
 * (n at most b->cap). Returns n or a negative LATHE_E* code. */
int lathe_det_loader_samples(lathe_det_loader *l, const uint64_t *samples, int n, lathe_det_batch *b);
/* Background sampling (background < 1): the split's samples without boxes (*samples, in dataset
 * order; the count is returned) and how many of them each epoch draws (*draw). 0 without it. */
uint64_t lathe_det_loader_background(const lathe_det_loader *l, const uint64_t **samples, uint64_t *draw);
/* Hard negatives: the next epochs' draws of samples without boxes start with these (order.h,
 * lathe_split_order_prefer_background). Returns 0 or a negative LATHE_E* code. */
int lathe_det_loader_prefer_background(lathe_det_loader *l, const uint64_t *samples, uint64_t n);
/* The letterbox of unaugmented items: input = stored * scale + pad. */
void lathe_det_loader_letterbox(const lathe_det_loader *l, float *scale, float *pad_x, float *pad_y);

#ifdef __cplusplus
}
#endif
#endif
