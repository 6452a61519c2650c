/* dataset.h - the reader of a lathe dataset (manifest.json + HDF5 shards, docs/FORMAT.md): random
 * access to sample i, where i runs over the shards in manifest order, from many threads at once.
 * Image and mask chunks leave HDF5 compressed (H5Dread_chunk) and are decompressed in the caller's
 * thread, so readers decompress in parallel outside HDF5's global lock. The small per-sample arrays
 * (labels, boxes, meta, sensors, text) of a shard are read once, on first use, and kept in memory.
 * Shard files are opened lazily; at most max_open_files stay open (least recently used closed). */
#ifndef LATHE_IO_DATASET_H
#define LATHE_IO_DATASET_H
#include <stddef.h>
#include <stdint.h>

#include "../data/sample.h"
#include "manifest.h"
#ifdef __cplusplus
extern "C" {
#endif

/* What lathe_dataset_get reads; the image-level label and the sample's position are always filled. */
enum {
    LATHE_READ_PIXELS = 1 << 0,  /* pixels store: (H, W, C) pixels; encoded store: the source bytes */
    LATHE_READ_BOXES = 1 << 1,   /* boxes with label, flags, id, area */
    LATHE_READ_MASK = 1 << 2,    /* (H, W) mask, when the dataset has masks */
    LATHE_READ_SENSORS = 1 << 3, /* (T, S) sensor window, when the dataset has sensors */
    LATHE_READ_TEXT = 1 << 4,    /* caption, when the dataset has text */
    LATHE_READ_META = 1 << 5,    /* /meta row */
    LATHE_READ_SOURCE_BOXES = 1 << 7, /* tiled datasets: the source image's whole boxes (first tile only) */
    LATHE_READ_ALL = 0xbf,       /* everything the dataset holds, as stored */
    LATHE_READ_DECODE = 1 << 6,  /* with LATHE_READ_PIXELS, encoded store: also decode to pixels */
};

typedef struct {
    uint64_t index;        /* global sample index */
    size_t shard;          /* manifest shard index */
    uint64_t row;          /* row inside the shard */
    int split;             /* LATHE_SPLIT_* of the shard */
    int32_t label;         /* image-level class, -1 none */
    int width, height, channels; /* size of pixels (0 when no pixels were read) */
    uint8_t *pixels;       /* (H, W, C) or NULL */
    uint8_t *encoded;      /* encoded store with LATHE_READ_PIXELS: the source file bytes, or NULL */
    size_t encoded_len;
    uint8_t *mask;         /* (H, W) or NULL (not asked, or no masks) */
    lathe_box *boxes;      /* nboxes, NULL when none or not asked */
    size_t nboxes;
    lathe_box *source_boxes; /* tiled datasets with LATHE_READ_SOURCE_BOXES: the source image's boxes in */
    size_t nsource_boxes;    /* source pixels, held by the image's first tile (NULL/0 on the others) */
    float *sensors;        /* (T, S), NaN where missing; NULL when not asked or no sensors */
    int sensor_steps, sensor_channels;
    char *text;            /* UTF-8; NULL when not asked or no text */
    int has_meta;          /* 1 when meta was read */
    lathe_meta meta;       /* meta.source is owned by the sample */
} lathe_dataset_sample;

typedef struct lathe_dataset lathe_dataset;

typedef struct {
    int max_open_files;  /* HDF5 files kept open at once (0 = 64) */
    int skip_file_check; /* 1: do not check the shard files against the manifest: that each exists with
                            its size (at open) and that its bytes hash to its xxh64 (before HDF5 first
                            reads it). For lathe verify, which reports those problems itself and then
                            looks inside the changed file to say what changed */
} lathe_dataset_options;

/* Opens the dataset in dir: loads manifest.json, registers the zstd filter and checks that every
 * shard file exists with the size the manifest records. Shards themselves open on first use, after
 * their bytes are checked against the manifest's xxh64 (a changed shard is -LATHE_EFORMAT naming it,
 * and libhdf5 never reads it).
 * Returns 0, -LATHE_ENOTFOUND (no manifest, or a shard file is missing), -LATHE_EFORMAT (bad
 * manifest, or a shard file of the wrong size), or -LATHE_ENOMEM, with a message. */
int lathe_dataset_open(const char *dir, lathe_dataset **out);
/* The same with options (opts may be NULL). */
int lathe_dataset_open_ex(const char *dir, const lathe_dataset_options *opts, lathe_dataset **out);
/* Closes every shard and frees ds (NULL is fine). No lathe_dataset_get may be running. */
void lathe_dataset_close(lathe_dataset *ds);

/* 1 when the dataset's shards hold /source_boxes (tiled ingest writes them), 0 when not, or a
 * negative code when the first shard cannot be read. */
int lathe_dataset_has_source_boxes(lathe_dataset *ds);

/* Total samples over all shards. */
uint64_t lathe_dataset_count(const lathe_dataset *ds);
const lathe_manifest *lathe_dataset_manifest(const lathe_dataset *ds);
const char *lathe_dataset_dir(const lathe_dataset *ds);
/* Global index of the first sample of shard s (s == nshards gives the total). */
uint64_t lathe_dataset_shard_first(const lathe_dataset *ds, size_t s);
/* The shard and row of sample i. Returns 0 or -LATHE_EINVAL when i >= count. */
int lathe_dataset_locate(const lathe_dataset *ds, uint64_t i, size_t *shard, uint64_t *row);

/* Reads sample i: the fields `what` asks for (LATHE_READ_*), the label and the position always.
 * Thread-safe. On failure *out is left empty (safe to free) and the code is -LATHE_EINVAL (i out
 * of range), -LATHE_EIO (a shard cannot be opened or read), -LATHE_EFORMAT (a shard does not
 * match the manifest or its schema, a chunk does not decompress to H*W*C bytes, an encoded image
 * does not decode) or -LATHE_ENOMEM, with a message naming the shard and row. */
int lathe_dataset_get(lathe_dataset *ds, uint64_t i, unsigned what, lathe_dataset_sample *out);
/* Frees what a sample holds and empties it. */
void lathe_dataset_sample_free(lathe_dataset_sample *s);

/* Frees the cached small arrays of shard s except its labels (boxes, meta, sensors, text are read
 * again on the next use), so a pass over a large dataset keeps one shard's arrays at a time. No
 * lathe_dataset_get of shard s may be running. Out-of-range s is ignored. */
void lathe_dataset_drop_caches(lathe_dataset *ds, size_t s);

/* Pixels store: decompresses the pixels of sample i into dst (H*W*C bytes, cap at least that), with
 * no allocation but the compressed chunk. Thread-safe. Returns 0, -LATHE_EINVAL (i out of range,
 * cap too small, not a pixels store) or the errors of lathe_dataset_get. */
int lathe_dataset_read_pixels(lathe_dataset *ds, uint64_t i, uint8_t *dst, size_t cap);

/* ---- tiled datasets (dataset_tiles.c) ---- */

/* 1 when the dataset was ingested as tiles (--tile): several samples per source image. */
int lathe_dataset_tiled(const lathe_dataset *ds);
/* The id of each sample's source image, as COCO results name it (*out: count entries, malloc'd):
 * /meta image_id when the source had one, else the index of the image's first sample, so the tiles
 * of one image share it (they are consecutive, the first at origin 0, 0). Returns 0 or the errors
 * of lathe_dataset_get. */
int lathe_dataset_image_ids(lathe_dataset *ds, int64_t **out);
/* The whole source image of sample i with its pixels and meta (what: LATHE_READ_PIXELS |
 * LATHE_READ_META at least): in a tiled dataset the tiles of i's image pasted at their origins (i
 * must be the image's first tile), meta then that of the source (no tile origin, scale 1, no
 * padding); otherwise sample i as lathe_dataset_get reads it. Returns 0, -LATHE_EINVAL (i is not a
 * first tile), -LATHE_ELIMIT (the image is over 2^28 pixels) or the errors of lathe_dataset_get. */
int lathe_dataset_get_whole(lathe_dataset *ds, uint64_t i, unsigned what, lathe_dataset_sample *out);

/* Per-class counts, for `lathe info`. Classes are indexed [class][split] (split of the shard). */
typedef struct {
    int nclasses;
    uint64_t (*boxes)[LATHE_NSPLITS];  /* boxes of each class */
    uint64_t (*images)[LATHE_NSPLITS]; /* samples whose image-level label is the class */
    uint64_t total_boxes[LATHE_NSPLITS];
    uint64_t unlabeled[LATHE_NSPLITS]; /* samples with label -1 */
    uint64_t bad_labels;               /* image or box labels outside the classes */
    uint64_t split_mismatches;         /* samples whose /meta split is not their shard's in the manifest */
} lathe_dataset_stats;

/* Counts boxes and image labels per class and split over every shard (reads the label arrays and
 * each sample's /meta split, keeps nothing). Returns 0 or the errors of lathe_dataset_get; free
 * with lathe_dataset_stats_free. */
int lathe_dataset_stats_compute(lathe_dataset *ds, lathe_dataset_stats *st);
void lathe_dataset_stats_free(lathe_dataset_stats *st);

/* A problem found by lathe_dataset_check_shard: row is the shard row it concerns, or -1. */
typedef void (*lathe_dataset_problem_fn)(void *ctx, size_t shard, int64_t row, const char *message);

/* Checks shard s against the manifest and schema version 1: the root attributes (lathe_schema,
 * class_names, image_size, store), every dataset present with its type class and a shape that
 * agrees with the manifest's sample count and image size, one chunk per image and mask,
 * box_offsets running monotonically from 0 to M, labels in [-1, nclasses), box labels in
 * [0, nclasses), the sensor channel names and each /meta split. Each problem goes to fn (may be
 * NULL). Does not read image chunks (lathe_dataset_get does that). Thread-safe.
 * Returns the number of problems found (0 = clean); a shard that cannot be opened is one problem. */
int lathe_dataset_check_shard(lathe_dataset *ds, size_t s, lathe_dataset_problem_fn fn, void *ctx);

#ifdef __cplusplus
}
#endif
#endif
