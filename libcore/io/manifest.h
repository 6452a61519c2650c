/* manifest.h - manifest.json, the entry point of a dataset: schema, classes, the shards with
 * their split, sample count, size and xxh64, the ingest arguments, and the resume state of an
 * unfinished ingest. Replaced atomically, so a reader sees the old or the new one. */
#ifndef LATHE_IO_MANIFEST_H
#define LATHE_IO_MANIFEST_H
#include <stddef.h>
#include <stdint.h>

#include "../data/sample.h"
#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    char *file;      /* relative to the dataset folder: "shard-00000.h5" */
    int split;       /* LATHE_SPLIT_* */
    uint64_t samples, bytes, xxh64;
} lathe_manifest_shard;

typedef struct {
    int schema;                 /* LATHE_SCHEMA_VERSION */
    char *created_by;
    int store;                  /* LATHE_STORE_* */
    int height, width, channels;
    int has_masks, has_text;
    int sensor_steps, sensor_channels;
    char **sensor_names;
    char **class_names;
    int nclasses;
    char *source_format;        /* adapter name */
    char *split_origin;         /* where the splits came from: "source" (its train/val/test folders) or
                                   "hash" (the stable hash of --split); NULL in manifests of older lathe */
    char *args_json;            /* the ingest arguments as a JSON object (identity for resume) */
    lathe_manifest_shard *shards;
    size_t nshards;
    uint64_t committed[LATHE_NSPLITS]; /* candidates of each split fully inside committed shards */
    int complete;               /* 1 once the ingest finished */
    uint64_t rejected;          /* lines of rejects.jsonl (complete datasets) */
    char *part;                 /* "I/N" for a --part dataset, NULL otherwise */
} lathe_manifest;

/* Reads DIR/manifest.json. Returns 0, -LATHE_ENOTFOUND, or -LATHE_EFORMAT with what is wrong. */
int lathe_manifest_load(const char *dir, lathe_manifest *m);
/* Writes DIR/manifest.json atomically. Returns 0 or a negative code. */
int lathe_manifest_save(const char *dir, const lathe_manifest *m);
/* Appends a shard entry (copies file). Returns 0 or -LATHE_ENOMEM. */
int lathe_manifest_add_shard(lathe_manifest *m, const char *file, int split, uint64_t samples, uint64_t bytes,
                             uint64_t xxh64);
/* Total samples over all shards, or over one split (split < 0: all). */
uint64_t lathe_manifest_samples(const lathe_manifest *m, int split);
/* The ingest's tiling from args_json: *tile the --tile side (0 when the dataset was letterboxed, or
 * when args_json says nothing usable), *overlap its --overlap (0 when absent or not below *tile). */
void lathe_manifest_tiling(const lathe_manifest *m, int *tile, int *overlap);
void lathe_manifest_free(lathe_manifest *m);

#ifdef __cplusplus
}
#endif
#endif
