/* ingest.h - `lathe ingest` as a library call: a folder or archive, read as a stream, becomes a
 * dataset of HDF5 shards (docs/FORMAT.md). Decoding, resizing, hashing and compression run on
 * lathe's own worker threads; one writer thread moves finished chunks into HDF5 in input order.
 * Killed at any moment, the same call resumes and ends with exactly the samples of an
 * uninterrupted run (docs/ARCHITECTURE.md, "Crash safety"). */
#ifndef LATHE_DATA_INGEST_H
#define LATHE_DATA_INGEST_H
#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "catalog.h"
#ifdef __cplusplus
extern "C" {
#endif

enum { LATHE_BOX_CLIP = 0, LATHE_BOX_REJECT = 1 };

typedef struct {
    const char *src;                       /* folder or archive */
    const char *out;                       /* dataset folder */
    const lathe_adapter *adapter;          /* NULL: detect among `adapters` */
    const lathe_adapter *const *adapters;  /* NULL-terminated candidates for detection */
    const lathe_adapter *(*detect)(const char *const *paths, size_t n); /* picks among them */
    int store;                             /* LATHE_STORE_PIXELS / _ENCODED */
    int size;                              /* letterbox side (pixels store, no tiling) */
    int tile, overlap;                     /* tile side and overlap; tile 0 = letterbox */
    double min_visibility;                 /* tiles: keep a clipped box showing this share of its area */
    size_t shard_size;                     /* samples per shard */
    double split[3];                       /* train/val/test shares, summing to 1 (split_mode hash) */
    int split_mode;                        /* LATHE_SPLIT_AUTO (default), _SOURCE or _HASH, below */
    double carve;                          /* source splits: this share of train becomes the split the
                                              source lacks (val, else test), by the stable hash; 0 none */
    const char *group_by;                  /* POSIX extended regex; its first group (or match) keys the split */
    int part_index, part_count;            /* --part I/N; count 0 = whole source */
    int box_policy;                        /* LATHE_BOX_CLIP / _REJECT */
    int reject_nan_sensors;                /* 1: a sensor window with NaN rejects the sample */
    uint64_t max_pixels;                   /* decompression-bomb limit per image */
    uint64_t max_entry_bytes;              /* largest entry read into memory */
    uint64_t max_label_bytes;              /* label files are held in memory through the scan: their
                                              sum past this fails the run (a bomb of many labels) */
    int threads;                           /* workers; 0 = number of CPUs */
    int zstd_level;
    int overwrite;                         /* replace a dataset made with other arguments */
    volatile sig_atomic_t *stop;           /* set by a signal handler to stop cleanly; may be NULL */
} lathe_ingest_opts;

typedef struct {
    uint64_t entries, images, samples, shards, rejected, ignored, resumed_skipped;
    uint64_t per_split[3];
    int already_complete;                  /* the dataset existed, complete, with these arguments */
    const char *format;                    /* adapter used */
} lathe_ingest_summary;

/* Where samples' splits come from. SOURCE: the source's own split folders, the deepest folder of an
 * image's path named train/training, val/valid/validation or test/testing (any case, digits may
 * follow: val2017); an image outside them is rejected (outside_source_splits). HASH: the stable hash
 * of the group key against split[]. AUTO: SOURCE when any image lies in such a folder, else HASH. */
enum { LATHE_SPLIT_AUTO = 0, LATHE_SPLIT_SOURCE = 1, LATHE_SPLIT_HASH = 2 };
/* The split a source path's folders name (LATHE_SPLIT_TRAIN/VAL/TEST), or -1. */
int lathe_ingest_source_split(const char *path);

void lathe_ingest_defaults(lathe_ingest_opts *o);
/* Runs (or resumes) an ingest. Returns 0, -LATHE_EINTR when stopped through opts->stop (committed
 * shards stay; rerun to resume), or another negative code with the message set. */
int lathe_ingest_run(const lathe_ingest_opts *o, lathe_ingest_summary *summary);
/* Joins complete --part datasets (same schema and classes) into out: shards are hard-linked (copied
 * across file systems) and renumbered, rejects concatenated. Returns 0 or a negative code. */
int lathe_ingest_merge(const char *out, const char *const *parts, size_t nparts, lathe_ingest_summary *summary);

#ifdef __cplusplus
}
#endif
#endif
