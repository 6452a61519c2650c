/* ingest_internal.h - state shared by the parts of the ingest pipeline (scan pass, workers, writer,
 * rejects). Not a public header. */
#ifndef LATHE_DATA_INGEST_INTERNAL_H
#define LATHE_DATA_INGEST_INTERNAL_H
#include <pthread.h>
#include <regex.h>
#include <stdio.h>

#include "../base/hashmap.h"
#include "../io/manifest.h"
#include "../io/shard.h"
#include "catalog.h"
#include "ingest.h"
#include "sensors.h"

/* Bytes of a sidecar (sensor CSV, text, mask) kept in the spool file during an ingest. */
typedef struct {
    uint64_t offset;
    uint64_t len;
} spool_ref;

typedef struct {
    const lathe_ingest_opts *o;
    lathe_catalog *cat;
    const lathe_adapter *adapter;
    /* spool: sidecars read in the scan pass, looked up by "s:", "t:" or "m:" + key */
    int spool_fd;
    uint64_t spool_size;
    lathe_hashmap *sidecars;
    spool_ref *refs;
    size_t nrefs, caprefs;
    /* schema found by the scan */
    lathe_sensor_layout sensors;
    int has_text, has_masks;
    uint64_t images_seen; /* image entries in the source, for progress */
    uint64_t in_split_folder[3]; /* images by the split their folders name */
    int source_splits;    /* the split mode resolved after the scan: 1 source folders, 0 hash */
    int carve_to;         /* source splits: the split --split source,X carves out of train, or -1 */
    regex_t group_re;
    int has_group_re;
    /* rejects.partial.jsonl, appended by every thread */
    FILE *rejects;
    pthread_mutex_t rejects_lock;
    uint64_t nrejects;
    lathe_manifest manifest;
} ingest_ctx;

/* The scan pass: every entry path, label files parsed into the catalog, sidecars spooled,
 * adapter chosen, catalog finished. Entry-level rejects are recorded. */
int ingest_scan(ingest_ctx *c);
/* Finds the sidecar of kind 's' (sensors), 't' (text) for an image path, or 'm' for a mask path. */
int ingest_sidecar_find(const ingest_ctx *c, char kind, const char *path, spool_ref *ref);
/* Reads a spooled sidecar (thread-safe, pread). *data is malloc'ed and NUL-terminated. */
int ingest_spool_read(const ingest_ctx *c, spool_ref ref, uint8_t **data);
/* 1 when the ingest treats path as a sidecar of this kind ('s', 't'), writing its key. */
int ingest_sidecar_key(const char *path, char kind, char *key, size_t cap);

/* 1 when this run (--part I/N) owns path: its rejects are reported by this part alone. */
int ingest_owns(const ingest_ctx *c, const char *path);
/* Appends one line to the rejects. entry: index of the entry in the source stream (-1: label
 * files); split/pos: the candidate's split and position (-1 when none); box: index or -1. */
void ingest_reject(ingest_ctx *c, int64_t entry, const char *path, const char *reason, int split, int64_t pos,
                   int box, const char *fmt, ...) __attribute__((format(printf, 8, 9)));
/* Opens rejects.partial.jsonl keeping only the lines of candidates inside committed shards. */
int ingest_rejects_open(ingest_ctx *c, const char *dir);
/* Makes appended lines durable (before a manifest records the candidates as committed). */
int ingest_rejects_sync(ingest_ctx *c);
/* Sorts the lines into rejects.jsonl, removes the partial file; *count = lines. */
int ingest_rejects_finish(ingest_ctx *c, const char *dir, uint64_t *count);
void ingest_rejects_close(ingest_ctx *c);

#endif

/* One candidate image handed to a worker. */
typedef struct {
    uint64_t seq;           /* order in which the writer takes results */
    int64_t entry;          /* index in the source stream */
    int split;
    uint64_t pos;           /* position among the candidates of its split */
    char *path;
    uint8_t *data;
    size_t len;
    const lathe_record *rec;
} ingest_job;

/* One stored sample (an image, or one tile of it) ready for the shard writer. */
typedef struct {
    uint8_t *image_chunk;   /* zstd frame (pixels) or NULL (encoded: the job's data) */
    size_t image_len;
    uint8_t *mask_chunk;
    size_t mask_len;
    lathe_box *boxes;
    size_t nboxes;
    lathe_meta meta;
} ingest_tile;

typedef struct {
    ingest_job job;
    int rejected;
    ingest_tile *tiles;
    int ntiles;
    lathe_box *source_boxes; /* tiles: the image's whole boxes in source pixels (on its first tile) */
    size_t nsource_boxes;
    float *sensors;         /* T*S or NULL */
    char *text;
    int32_t label;
} ingest_result;

/* Decodes, checks and transforms one candidate (worker thread). Rejections are recorded and
 * leave result->rejected set; returns a negative code only for failures that stop the ingest. */
int ingest_process(ingest_ctx *c, void *zstd_cctx, ingest_result *result);
void ingest_result_free(ingest_result *r);
