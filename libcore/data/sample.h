/* sample.h - the sample schema shared by ingest, the shard format and the reader.
 * Shape letters: N samples, M boxes, H height, W width, C channels, T sensor steps, S sensors. */
#ifndef LATHE_DATA_SAMPLE_H
#define LATHE_DATA_SAMPLE_H
#include <stddef.h>
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif

enum { LATHE_BOX_CROWD = 1, LATHE_BOX_IGNORE = 2 };

typedef struct {
    float x1, y1, x2, y2; /* pixels, x2 > x1 and y2 > y1 once validated */
    int32_t label;        /* class index (source id inside a catalog before finish) */
    uint8_t flags;        /* LATHE_BOX_CROWD | LATHE_BOX_IGNORE */
    int64_t id;           /* source annotation id, -1 if none */
    float area;           /* source area (COCO segmentation area), -1 if none */
} lathe_box;

enum { LATHE_SPLIT_TRAIN = 0, LATHE_SPLIT_VAL = 1, LATHE_SPLIT_TEST = 2, LATHE_NSPLITS = 3 };
const char *lathe_split_name(int split);
/* LATHE_SPLIT_* for "train"/"val"/"test", or -1. */
int lathe_split_parse(const char *name);
/* The class that means "no defect" among n class names: the first named good, ok, normal or pass
 * (any case; NULL names skipped), or -1. Verdicts, analysis and the fusion head's labels read it. */
int lathe_good_class(const char *const *names, int n);

/* Per-sample facts kept in /meta: how stored pixels map back to the source image. */
typedef struct {
    char *source;          /* entry path in the source archive */
    int64_t image_id;      /* source image id, -1 if none */
    int32_t orig_width, orig_height; /* source image size after EXIF orientation */
    float scale_x, scale_y;          /* stored = source * scale + pad - tile origin*scale */
    float pad_x, pad_y;
    int32_t tile_x, tile_y;          /* tile origin in source pixels (0 without tiling) */
    uint64_t source_xxh64;           /* xxh64 of the source file bytes */
    uint64_t phash;                  /* 64-bit perceptual hash (dHash of the stored image) */
    uint8_t split;                   /* LATHE_SPLIT_* */
    uint8_t orientation;             /* EXIF orientation that was applied (1..8) */
} lathe_meta;

#ifdef __cplusplus
}
#endif
#endif
