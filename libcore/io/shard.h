/* shard.h - one HDF5 shard of a lathe dataset (schema version 1, docs/FORMAT.md): the writer that
 * ingest drives and the names and types both the writer and the reader use.
 * The writer takes image and mask chunks already zstd-compressed by the caller's threads and moves
 * them with H5Dwrite_chunk; the small per-sample arrays are buffered and written at commit. A shard
 * is written under a temporary name and appears under its final name only once complete, fsynced. */
#ifndef LATHE_IO_SHARD_H
#define LATHE_IO_SHARD_H
#include <hdf5.h>
#include <stddef.h>
#include <stdint.h>

#include "../data/sample.h"
#ifdef __cplusplus
extern "C" {
#endif

#define LATHE_SCHEMA_VERSION 1

enum { LATHE_STORE_PIXELS = 0, LATHE_STORE_ENCODED = 1 };

typedef struct {
    int store;                          /* LATHE_STORE_* */
    int height, width, channels;        /* stored image size (pixels store) */
    int has_masks;                      /* /masks [N, H, W] (pixels store only) */
    int sensor_steps, sensor_channels;  /* T, S; 0 = no /sensors */
    const char *const *sensor_names;    /* S names */
    int has_text;
    const char *const *class_names;
    int nclasses;
    int zstd_level;
    const char *created_by;
    int has_source_boxes;               /* tiles: /source_boxes ... (the source image's whole boxes) */
} lathe_shard_schema;

typedef struct {
    const uint8_t *image_chunk; /* pixels store: one zstd frame of H*W*C bytes */
    size_t image_chunk_len;
    const uint8_t *encoded;     /* encoded store: the source file bytes */
    size_t encoded_len;
    const uint8_t *mask_chunk;  /* zstd frame of H*W bytes, NULL = no mask (zeros are stored) */
    size_t mask_chunk_len;
    const lathe_box *boxes;     /* in stored-image pixels */
    size_t nboxes;
    const lathe_box *source_boxes; /* has_source_boxes: the source image's boxes in source pixels, on */
    size_t nsource_boxes;          /* the first tile of each source image (none on the others) */
    int32_t label;              /* image-level class, -1 none */
    const float *sensors;       /* (T, S), NULL = missing (stored as NaN) */
    const char *text;           /* NULL = "" */
    lathe_meta meta;
} lathe_shard_sample;

typedef struct lathe_shard_writer lathe_shard_writer;

/* Starts the shard that will be called final_path, written meanwhile as "<dir>/.<name>.tmp".
 * capacity is the most samples it will hold. Returns 0 or a negative code. */
int lathe_shard_create(const char *final_path, const lathe_shard_schema *schema, size_t capacity,
                       lathe_shard_writer **out);
/* Appends one sample. Returns 0 or a negative code (-LATHE_ELIMIT when the shard is full). */
int lathe_shard_append(lathe_shard_writer *w, const lathe_shard_sample *s);
size_t lathe_shard_count(const lathe_shard_writer *w);
/* Writes the buffered arrays, closes, fsyncs and renames the file to its final name, fsyncs the
 * folder; reports the file's size and xxh64. Frees w whatever happens. */
int lathe_shard_commit(lathe_shard_writer *w, uint64_t *bytes, uint64_t *xxh64);
/* The same, under another final name (ingest names shards in the order they complete). */
int lathe_shard_commit_as(lathe_shard_writer *w, const char *final_path, uint64_t *bytes, uint64_t *xxh64);
/* Closes and deletes the temporary file. Frees w. */
void lathe_shard_abort(lathe_shard_writer *w);

/* One /meta row in memory, the layout lathe_shard_meta_type() describes (fields match the file's
 * members by name, so readers of older or reordered files still work). */
typedef struct {
    char *source;
    int64_t image_id;
    int32_t orig_width, orig_height;
    float scale_x, scale_y, pad_x, pad_y;
    int32_t tile_x, tile_y;
    uint64_t source_xxh64, phash;
    uint8_t split, orientation;
} lathe_shard_meta_row;

/* The HDF5 compound type of /meta (caller closes it). */
hid_t lathe_shard_meta_type(void);
/* The checksum each small dataset (boxes, labels, offsets, meta, sensors, text) carries in its
 * "xxh64" attribute, checked by every reader: XXH64 of n elements of type as lathe holds them in
 * memory (fixed-size values byte for byte; /meta rows field by field, strings with their lengths;
 * /text strings). */
#define LATHE_SHARD_HASH_ATTR "xxh64"
uint64_t lathe_shard_array_hash(hid_t type, const void *data, uint64_t n);
/* xxh64 of a whole file; returns 0 or -LATHE_EIO. */
int lathe_file_xxh64(const char *path, uint64_t *hash, uint64_t *bytes);

#ifdef __cplusplus
}
#endif
#endif
