/* ingest.c - the ingest driver: resume or start, scan pass, then the ingest pass in which the
 * calling thread streams the source and dispatches candidates, worker threads process them, and
 * one writer thread takes results in input order and fills one open shard per split. A shard is
 * committed (renamed, then recorded in the manifest) when full; the manifest's per-split count of
 * committed candidates is what a rerun skips. */
#include "ingest.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>
#include <zstd.h>

#include "../base/error.h"
#include "../base/folder_lock.h"
#include "../base/fsutil.h"
#include "../base/log.h"
#include "../io/archive.h"
#include "ingest_internal.h"

void lathe_ingest_defaults(lathe_ingest_opts *o) {
    memset(o, 0, sizeof *o);
    o->store = LATHE_STORE_PIXELS;
    o->size = 640;
    o->min_visibility = 0.25;
    o->shard_size = 1000;
    o->split[0] = 0.8, o->split[1] = 0.1, o->split[2] = 0.1;
    o->box_policy = LATHE_BOX_CLIP;
    o->max_pixels = 100000000;
    o->max_entry_bytes = 256u << 20;
    o->max_label_bytes = (uint64_t)4 << 30;
    o->zstd_level = 1;
}

/* ---- the arguments that define a dataset (its identity when resuming) ---- */

static char *args_json(const lathe_ingest_opts *o, const char *format) {
    char src[PATH_MAX];
    if (!realpath(o->src, src)) snprintf(src, sizeof src, "%s", o->src);
    cJSON *a = cJSON_CreateObject();
    cJSON_AddStringToObject(a, "src", src);
    cJSON_AddStringToObject(a, "format", format);
    cJSON_AddStringToObject(a, "store", o->store == LATHE_STORE_PIXELS ? "pixels" : "encoded");
    cJSON_AddNumberToObject(a, "size", o->size);
    cJSON_AddNumberToObject(a, "tile", o->tile);
    cJSON_AddNumberToObject(a, "overlap", o->overlap);
    cJSON_AddNumberToObject(a, "min_visibility", o->min_visibility);
    cJSON_AddNumberToObject(a, "shard_size", (double)o->shard_size);
    cJSON *split = cJSON_AddArrayToObject(a, "split");
    for (int i = 0; i < 3; i++) cJSON_AddItemToArray(split, cJSON_CreateNumber(o->split[i]));
    static const char *const modes[] = {"auto", "source", "hash"};
    cJSON_AddStringToObject(a, "split_mode", modes[o->split_mode >= 0 && o->split_mode <= 2 ? o->split_mode : 0]);
    cJSON_AddNumberToObject(a, "carve", o->carve);
    cJSON_AddStringToObject(a, "group_by", o->group_by ? o->group_by : "");
    cJSON_AddNumberToObject(a, "part_index", o->part_index);
    cJSON_AddNumberToObject(a, "part_count", o->part_count);
    cJSON_AddStringToObject(a, "box_policy", o->box_policy == LATHE_BOX_CLIP ? "clip" : "reject");
    cJSON_AddBoolToObject(a, "reject_nan_sensors", o->reject_nan_sensors);
    cJSON_AddNumberToObject(a, "max_pixels", (double)o->max_pixels);
    cJSON_AddNumberToObject(a, "max_entry_bytes", (double)o->max_entry_bytes);
    cJSON_AddNumberToObject(a, "zstd_level", o->zstd_level);
    char *s = cJSON_PrintUnformatted(a);
    cJSON_Delete(a);
    return s;
}

/* Removes lathe's files from dir (shards, manifest, rejects, temporaries). */
/* lathe's own files in a dataset folder: shards, the manifest, rejects, temporaries. */
static int ours(const char *n, int *temporary) {
    size_t len = strlen(n);
    *temporary = n[0] == '.' && len > 4 && strcmp(n + len - 4, ".tmp") == 0;
    return *temporary || (strncmp(n, "shard-", 6) == 0 && strstr(n, ".h5")) || strcmp(n, "manifest.json") == 0 ||
           strncmp(n, "rejects", 7) == 0 || strncmp(n, "manifest.json.", 14) == 0;
}

static int clear_dataset(const char *dir, int only_temporaries) {
    DIR *d = opendir(dir);
    if (!d) return lathe_fail(LATHE_EIO, "%s: %s", dir, strerror(errno));
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(d))) {
        int tmp, mine = ours(e->d_name, &tmp);
        if (only_temporaries ? !tmp : !mine) continue;
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (unlink(path) != 0) rc = lathe_fail(LATHE_EIO, "removing %s: %s", path, strerror(errno));
    }
    closedir(d);
    return rc;
}

/* 1 when the folder holds nothing but lathe's own files and its lock (an ingest that failed
 * before writing its manifest leaves such a folder), else 0. */
static int only_ours(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return 1;
    int only = 1, tmp;
    for (struct dirent *e; only && (e = readdir(d));)
        only = !strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") || !strcmp(e->d_name, LATHE_FOLDER_LOCK_NAME) ||
               ours(e->d_name, &tmp);
    closedir(d);
    return only;
}

/* 1 = resume, 2 = already complete, 0 = start fresh; negative on error. */
static int prepare_output(ingest_ctx *c, const char *args) {
    const lathe_ingest_opts *o = c->o;
    int rc = lathe_mkdirs(o->out);
    if (rc) return rc;
    lathe_manifest old;
    rc = lathe_manifest_load(o->out, &old);
    if (rc == -LATHE_ENOTFOUND) {
        if (!only_ours(o->out) && !o->overwrite)
            return lathe_fail(LATHE_EEXIST, "%s exists and is not a lathe dataset (use an empty folder, or --overwrite)", o->out);
        return clear_dataset(o->out, 0); /* what a failed earlier attempt left, or with --overwrite, lathe's files */
    }
    if (rc) {
        if (!o->overwrite) return lathe_fail_context(rc, "%s holds an unreadable manifest (use --overwrite)", o->out);
        return clear_dataset(o->out, 0);
    }
    int same = old.args_json && strcmp(old.args_json, args) == 0;
    if (!same) {
        lathe_manifest_free(&old);
        if (!o->overwrite)
            return lathe_fail(LATHE_EEXIST, "%s was made with other arguments; use --overwrite to replace it", o->out);
        return clear_dataset(o->out, 0);
    }
    if (old.complete) {
        c->manifest = old;
        return 2;
    }
    c->manifest = old;
    rc = clear_dataset(o->out, 1);
    return rc ? rc : 1;
}

/* ---- split and part: from a stable hash of the sample's group key ---- */

static void group_key(const ingest_ctx *c, const char *path, char *key, size_t cap) {
    regmatch_t m[2];
    if (c->has_group_re && regexec(&c->group_re, path, 2, m, 0) == 0) {
        int g = m[1].rm_so >= 0 ? 1 : 0;
        snprintf(key, cap, "%.*s", (int)(m[g].rm_eo - m[g].rm_so), path + m[g].rm_so);
    } else {
        snprintf(key, cap, "%s", path);
    }
}

/* The sample's split. Source splits: the one its label or list files name (COCO's
 * instances_val2017.json, VOC's and KITTI's ImageSets; the more specific word: KITTI's ImageSets
 * split the frames of its training/ folder), else its folder's; -1 outside any, LATHE_SPLIT_CONFLICT
 * when two files of different splits name it. Else from the stable hash. */
static int split_of(const ingest_ctx *c, const char *path, const lathe_record *rec, const char *key) {
    double u = (double)(XXH64(key, strlen(key), 0x5e1f) >> 11) * 0x1.0p-53;
    if (c->source_splits) {
        if (rec->split == LATHE_SPLIT_CONFLICT) return LATHE_SPLIT_CONFLICT;
        int s = rec->split >= 0 ? rec->split : lathe_ingest_source_split(path);
        return s == LATHE_SPLIT_TRAIN && c->carve_to >= 0 && u < c->o->carve ? c->carve_to : s;
    }
    if (u < c->o->split[0]) return LATHE_SPLIT_TRAIN;
    if (u < c->o->split[0] + c->o->split[1]) return LATHE_SPLIT_VAL;
    return LATHE_SPLIT_TEST;
}

/* After the scan: source splits or the hash (lathe_ingest_opts.split_mode), and the carve's target. */
static int resolve_splits(ingest_ctx *c) {
    const uint64_t *folder = c->in_split_folder;
    uint64_t named[LATHE_NSPLITS] = {0}, has[LATHE_NSPLITS];
    for (size_t i = 0; i < lathe_catalog_nrecords(c->cat); i++) { /* records a label file puts in a split */
        const lathe_record *r = lathe_catalog_at(c->cat, i);
        if (r->split >= 0) named[r->split]++;
    }
    for (int s = 0; s < LATHE_NSPLITS; s++) has[s] = folder[s] + named[s];
    uint64_t any = has[0] + has[1] + has[2];
    c->carve_to = -1;
    c->source_splits = c->o->split_mode == LATHE_SPLIT_SOURCE || (c->o->split_mode == LATHE_SPLIT_AUTO && any > 0);
    if (c->source_splits && !any)
        return lathe_fail(LATHE_EINVAL, "--split source: no image of %s lies in a train, val or test folder or is named "
                                        "by a label file of a split; give --split A,B,C for lathe's own split", c->o->src);
    if (!c->source_splits) return 0;
    if (c->o->carve > 0) c->carve_to = !has[LATHE_SPLIT_VAL] ? LATHE_SPLIT_VAL : !has[LATHE_SPLIT_TEST] ? LATHE_SPLIT_TEST : -1;
    if (c->o->carve > 0 && c->carve_to < 0)
        lathe_log(LATHE_LOG_WARN, "ingest.carve", "the source has train, val and test splits: --split source,%g carves nothing",
                  c->o->carve);
    lathe_log(LATHE_LOG_INFO, "ingest.splits",
              "splits from the source: train/val/test folders hold %" PRIu64 "/%" PRIu64 "/%" PRIu64 " images, label files "
              "of a split name %" PRIu64 "/%" PRIu64 "/%" PRIu64 "%s%s",
              folder[0], folder[1], folder[2], named[0], named[1], named[2],
              c->carve_to >= 0 ? "; a share of train becomes " : "", c->carve_to >= 0 ? lathe_split_name(c->carve_to) : "");
    return 0;
}

static int in_part(const ingest_ctx *c, const char *key) {
    if (c->o->part_count <= 1) return 1;
    return XXH64(key, strlen(key), 0x9a27) % (uint64_t)c->o->part_count == (uint64_t)c->o->part_index;
}

int ingest_owns(const ingest_ctx *c, const char *path) {
    if (c->o->part_count <= 1) return 1;
    char key[4096];
    group_key(c, path, key, sizeof key);
    return in_part(c, key);
}

/* ---- the pipeline: a bounded window of results between dispatcher, workers and writer ---- */

typedef struct {
    ingest_ctx *c;
    pthread_mutex_t lock;
    pthread_cond_t changed;
    size_t window;
    ingest_result **slots;   /* window slots; result of seq s lives in slots[s % window] */
    int *ready;
    uint64_t next_job, next_seq, next_write;
    int done_dispatch;
    int failed;              /* first fatal error code */
    /* dispatcher state: candidates below these are in the interrupted run's committed shards (a
     * copy: the writer moves manifest.committed on as it commits) */
    uint64_t resume_from[LATHE_NSPLITS];
    char failure[1024];
    /* writer state */
    lathe_shard_writer *open[LATHE_NSPLITS];
    uint64_t samples, shards;
    lathe_shard_schema schema;
    lathe_progress *progress;
} pipeline;

static void set_failure(pipeline *p, int rc) {
    pthread_mutex_lock(&p->lock);
    if (!p->failed) {
        p->failed = rc;
        snprintf(p->failure, sizeof p->failure, "%s", lathe_last_error());
    }
    pthread_cond_broadcast(&p->changed);
    pthread_mutex_unlock(&p->lock);
}

static void *worker_main(void *arg) {
    pipeline *p = arg;
    ZSTD_CCtx *cctx = ZSTD_createCCtx();
    if (!cctx) set_failure(p, lathe_fail(LATHE_ENOMEM, "zstd context"));
    for (;;) {
        pthread_mutex_lock(&p->lock);
        while (p->next_job == p->next_seq && !p->done_dispatch && !p->failed) pthread_cond_wait(&p->changed, &p->lock);
        if (p->next_job == p->next_seq || p->failed) {
            pthread_mutex_unlock(&p->lock);
            break;
        }
        ingest_result *r = p->slots[p->next_job++ % p->window];
        pthread_mutex_unlock(&p->lock);
        int rc = r->rejected ? 0 : ingest_process(p->c, cctx, r); /* rejected while reading */
        if (rc) set_failure(p, rc);
        pthread_mutex_lock(&p->lock);
        p->ready[r->job.seq % p->window] = 1;
        pthread_cond_broadcast(&p->changed);
        pthread_mutex_unlock(&p->lock);
    }
    ZSTD_freeCCtx(cctx);
    return NULL;
}

static int commit_shard(pipeline *p, int split, uint64_t committed) {
    ingest_ctx *c = p->c;
    char name[64], path[4200];
    snprintf(name, sizeof name, "shard-%05zu.h5", c->manifest.nshards);
    snprintf(path, sizeof path, "%s/%s", c->o->out, name);
    uint64_t samples = lathe_shard_count(p->open[split]), bytes, hash;
    int rc = lathe_shard_commit_as(p->open[split], path, &bytes, &hash);
    p->open[split] = NULL;
    if (rc) return rc;
    /* rejects of the committed candidates must be on disk before the manifest says so */
    if ((rc = ingest_rejects_sync(c))) return rc;
    if ((rc = lathe_manifest_add_shard(&c->manifest, name, split, samples, bytes, hash))) return rc;
    c->manifest.committed[split] = committed;
    p->shards++;
    lathe_log(LATHE_LOG_DEBUG, "ingest.shard", "%s: %llu %s samples", name, (unsigned long long)samples,
              lathe_split_name(split));
    return lathe_manifest_save(c->o->out, &c->manifest);
}

static int write_result(pipeline *p, ingest_result *r) {
    if (r->rejected || r->ntiles == 0) return 0;
    int s = r->job.split, rc;
    size_t cap = p->c->o->shard_size > (size_t)r->ntiles ? p->c->o->shard_size : (size_t)r->ntiles;
    if (p->open[s] && lathe_shard_count(p->open[s]) + (size_t)r->ntiles > p->c->o->shard_size &&
        (rc = commit_shard(p, s, r->job.pos)))
        return rc;
    if (!p->open[s]) {
        char path[4200];
        snprintf(path, sizeof path, "%s/open-%s.h5", p->c->o->out, lathe_split_name(s));
        if ((rc = lathe_shard_create(path, &p->schema, cap, &p->open[s]))) return rc;
    }
    for (int t = 0; t < r->ntiles; t++) {
        const ingest_tile *tile = &r->tiles[t];
        lathe_shard_sample smp = {
            .image_chunk = tile->image_chunk, .image_chunk_len = tile->image_len,
            .encoded = r->job.data, .encoded_len = r->job.len,
            .mask_chunk = tile->mask_chunk, .mask_chunk_len = tile->mask_len,
            .boxes = tile->boxes, .nboxes = tile->nboxes, .label = r->label,
            .source_boxes = t == 0 ? r->source_boxes : NULL, .nsource_boxes = t == 0 ? r->nsource_boxes : 0,
            .sensors = r->sensors, .text = r->text, .meta = tile->meta,
        };
        if ((rc = lathe_shard_append(p->open[s], &smp))) return rc;
        p->samples++;
    }
    if (lathe_shard_count(p->open[s]) >= p->c->o->shard_size) return commit_shard(p, s, r->job.pos + 1);
    return 0;
}

static void *writer_main(void *arg) {
    pipeline *p = arg;
    for (;;) {
        pthread_mutex_lock(&p->lock);
        while (!p->failed && !(p->next_write < p->next_seq && p->ready[p->next_write % p->window]) &&
               !(p->done_dispatch && p->next_write == p->next_seq))
            pthread_cond_wait(&p->changed, &p->lock);
        if (p->failed || p->next_write == p->next_seq) {
            pthread_mutex_unlock(&p->lock);
            break;
        }
        ingest_result *r = p->slots[p->next_write % p->window];
        pthread_mutex_unlock(&p->lock);
        int rc = write_result(p, r);
        ingest_result_free(r);
        free(r);
        pthread_mutex_lock(&p->lock);
        p->slots[p->next_write % p->window] = NULL;
        p->ready[p->next_write % p->window] = 0;
        p->next_write++;
        pthread_cond_broadcast(&p->changed);
        pthread_mutex_unlock(&p->lock);
        lathe_progress_update(p->progress, p->next_write);
        if (rc) {
            set_failure(p, rc);
            break;
        }
    }
    return NULL;
}

/* Hands one job to the workers, waiting while the window is full. */
static int dispatch(pipeline *p, ingest_result *r) {
    pthread_mutex_lock(&p->lock);
    while (!p->failed && p->next_seq - p->next_write >= p->window) pthread_cond_wait(&p->changed, &p->lock);
    int failed = p->failed;
    if (!failed) {
        r->job.seq = p->next_seq;
        p->slots[p->next_seq % p->window] = r;
        p->ready[p->next_seq % p->window] = 0;
        p->next_seq++;
        pthread_cond_broadcast(&p->changed);
    }
    pthread_mutex_unlock(&p->lock);
    return failed;
}

/* ---- the ingest pass over the source ---- */

typedef struct {
    uint64_t candidates[LATHE_NSPLITS];
} pass_state;

/* Decides what one entry is and dispatches it when it is a candidate of this run. */
static int ingest_entry(pipeline *p, lathe_archive *a, const lathe_entry *e, int64_t idx, pass_state *st,
                        lathe_hashmap *seen, lathe_ingest_summary *sum) {
    ingest_ctx *c = p->c;
    if (e->reject_reason || lathe_hashmap_get(seen, e->path, NULL)) return 0; /* reported by the scan */
    int rc = lathe_hashmap_put(seen, e->path, 0);
    if (rc) return rc;
    char key[4096];
    lathe_entry_role role = c->adapter->role ? c->adapter->role(e->path) : LATHE_ENTRY_OTHER;
    if (role == LATHE_ENTRY_LABEL || role == LATHE_ENTRY_MASK || ingest_sidecar_key(e->path, 's', key, sizeof key) ||
        ingest_sidecar_key(e->path, 't', key, sizeof key))
        return 0;
    if (lathe_path_is_unsupported_image(e->path)) {
        lathe_record *named = lathe_catalog_match(c->cat, e->path);
        if (named) named->matched = 1; /* present, just not decodable: not also "missing" */
        ingest_reject(c, idx, e->path, "unsupported_format", -1, -1, -1, "only JPEG and PNG images are ingested");
        return 0;
    }
    /* not data: non-images, hidden files and the resource forks macOS puts in zips */
    if (!lathe_path_is_image(e->path) || lathe_path_is_debris(e->path)) {
        sum->ignored++;
        return 0;
    }
    sum->images++;
    lathe_record *rec = lathe_catalog_match(c->cat, e->path);
    if (!rec) {
        ingest_reject(c, idx, e->path, "not_in_labels", -1, -1, -1, "no %s label names this image", c->adapter->name);
        return 0;
    }
    if (rec->matched) {
        ingest_reject(c, idx, e->path, "ambiguous_image", -1, -1, -1, "label record '%s' already matched another entry",
                      rec->file);
        return 0;
    }
    rec->matched = 1;
    group_key(c, e->path, key, sizeof key);
    if (!in_part(c, key)) return 0;
    int split = split_of(c, e->path, rec, key);
    if (split == LATHE_SPLIT_CONFLICT) {
        ingest_reject(c, idx, e->path, "in_two_splits", -1, -1, -1,
                      "label or list files of two splits name this image");
        return 0;
    }
    if (split < 0) {
        ingest_reject(c, idx, e->path, "outside_source_splits", -1, -1, -1,
                      "the source's splits come from its train/val/test folders and label files, and name none here");
        return 0;
    }
    uint64_t pos = st->candidates[split]++;
    if (pos < p->resume_from[split]) {
        sum->resumed_skipped++;
        return 0;
    }
    ingest_result *r = calloc(1, sizeof *r);
    if (!r || !(r->job.path = strdup(e->path))) {
        free(r);
        return lathe_fail(LATHE_ENOMEM, "job");
    }
    r->job.entry = idx, r->job.split = split, r->job.pos = pos, r->job.rec = rec;
    rc = lathe_archive_read(a, c->o->max_entry_bytes, &r->job.data, &r->job.len);
    if (rc == -LATHE_ELIMIT || rc == -LATHE_EFORMAT) {
        ingest_reject(c, idx, e->path, rc == -LATHE_ELIMIT ? "entry_too_large" : "damaged_entry", split, (int64_t)pos,
                      -1, "%s", lathe_last_error());
        r->rejected = 1;
        rc = 0;
    }
    if (rc) {
        ingest_result_free(r);
        free(r);
        return rc;
    }
    return dispatch(p, r);
}

static int run_pass(pipeline *p, lathe_ingest_summary *sum) {
    ingest_ctx *c = p->c;
    lathe_archive *a;
    int rc = lathe_archive_open(c->o->src, &a);
    if (rc) return rc;
    lathe_hashmap *seen = lathe_hashmap_create();
    if (!seen) rc = lathe_fail(LATHE_ENOMEM, "entry index");
    pass_state st = {{0}};
    lathe_entry e;
    int64_t idx = -1;
    while (!rc && (rc = lathe_archive_next(a, &e)) == 1) {
        idx++;
        sum->entries++;
        if (c->o->stop && *c->o->stop) {
            rc = lathe_fail(LATHE_EINTR, "interrupted");
            break;
        }
        rc = ingest_entry(p, a, &e, idx, &st, seen, sum);
    }
    lathe_hashmap_free(seen);
    lathe_archive_close(a);
    if (rc) return rc;
    /* records no entry matched: their images are missing from the source */
    for (size_t i = 0; i < lathe_catalog_nrecords(c->cat); i++) {
        const lathe_record *r = lathe_catalog_at(c->cat, i);
        char key[4096];
        group_key(c, r->file, key, sizeof key);
        if (!r->matched && in_part(c, key))
            ingest_reject(c, -1, r->file, "missing_file", -1, -1, -1, "the labels name this image but the source lacks it");
    }
    for (int s = 0; s < LATHE_NSPLITS; s++) sum->per_split[s] = st.candidates[s];
    return 0;
}

static int start_threads(pipeline *p, pthread_t *workers, int nworkers, pthread_t *writer) {
    if (pthread_create(writer, NULL, writer_main, p) != 0) return lathe_fail(LATHE_EIO, "cannot start the writer thread");
    for (int i = 0; i < nworkers; i++)
        if (pthread_create(&workers[i], NULL, worker_main, p) != 0) {
            set_failure(p, lathe_fail(LATHE_EIO, "cannot start worker threads"));
            for (int k = 0; k < i; k++) pthread_join(workers[k], NULL);
            pthread_join(*writer, NULL);
            return p->failed;
        }
    return 0;
}

static int pipeline_run(ingest_ctx *c, lathe_ingest_summary *sum) {
    int nworkers = c->o->threads > 0 ? c->o->threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (nworkers < 1) nworkers = 1;
    pipeline p = {.c = c, .window = (size_t)nworkers * 4 + 4};
    const char **class_names = malloc(sizeof(char *) * (lathe_catalog_nclasses(c->cat) + 1));
    p.slots = calloc(p.window, sizeof *p.slots);
    p.ready = calloc(p.window, sizeof *p.ready);
    pthread_t *workers = calloc((size_t)nworkers, sizeof *workers), writer;
    if (!class_names || !p.slots || !p.ready || !workers) {
        free(class_names), free(p.slots), free(p.ready), free(workers);
        return lathe_fail(LATHE_ENOMEM, "pipeline");
    }
    for (size_t i = 0; i < lathe_catalog_nclasses(c->cat); i++) class_names[i] = lathe_catalog_class_at(c->cat, i)->name;
    int pixels = c->o->store == LATHE_STORE_PIXELS;
    int side = c->o->tile ? c->o->tile : c->o->size;
    p.schema = (lathe_shard_schema){
        .store = c->o->store, .height = pixels ? side : 0, .width = pixels ? side : 0, .channels = 3,
        .has_masks = pixels && c->has_masks, .sensor_steps = c->sensors.steps, .sensor_channels = c->sensors.channels,
        .sensor_names = (const char *const *)c->sensors.names, .has_text = c->has_text,
        .has_source_boxes = pixels && c->o->tile > 0,
        .class_names = class_names, .nclasses = (int)lathe_catalog_nclasses(c->cat), .zstd_level = c->o->zstd_level,
        .created_by = "lathe " LATHE_VERSION,
    };
    memcpy(p.resume_from, c->manifest.committed, sizeof p.resume_from);
    pthread_mutex_init(&p.lock, NULL);
    pthread_cond_init(&p.changed, NULL);
    p.progress = lathe_progress_start("ingest", c->images_seen);
    int rc = start_threads(&p, workers, nworkers, &writer);
    if (!rc) {
        rc = run_pass(&p, sum);
        pthread_mutex_lock(&p.lock);
        p.done_dispatch = 1;
        if (rc && !p.failed) p.failed = rc, snprintf(p.failure, sizeof p.failure, "%s", lathe_last_error());
        pthread_cond_broadcast(&p.changed);
        pthread_mutex_unlock(&p.lock);
        for (int i = 0; i < nworkers; i++) pthread_join(workers[i], NULL);
        pthread_join(writer, NULL);
        rc = p.failed;
        if (rc) lathe_fail(rc, "%s", p.failure);
    }
    /* results still in the window after a failure */
    for (uint64_t s = p.next_write; s < p.next_seq; s++) {
        ingest_result *r = p.slots[s % p.window];
        if (r) ingest_result_free(r), free(r);
    }
    for (int s = 0; !rc && s < LATHE_NSPLITS; s++)
        if (p.open[s]) rc = commit_shard(&p, s, sum->per_split[s]);
    for (int s = 0; s < LATHE_NSPLITS; s++) {
        if (p.open[s]) lathe_shard_abort(p.open[s]); /* interrupted: the next run redoes these */
        if (!rc) c->manifest.committed[s] = sum->per_split[s];
    }
    lathe_progress_finish(p.progress, p.next_write);
    pthread_mutex_destroy(&p.lock);
    pthread_cond_destroy(&p.changed);
    free(class_names), free(p.slots), free(p.ready), free(workers);
    return rc;
}

/* ---- the whole run ---- */

static void summarize(const ingest_ctx *c, lathe_ingest_summary *sum) {
    sum->samples = lathe_manifest_samples(&c->manifest, -1);
    sum->shards = c->manifest.nshards;
    for (int s = 0; s < LATHE_NSPLITS; s++) sum->per_split[s] = lathe_manifest_samples(&c->manifest, s);
    sum->rejected = c->manifest.rejected;
}

static int fill_manifest_schema(ingest_ctx *c, const char *args) {
    lathe_manifest *m = &c->manifest;
    int pixels = c->o->store == LATHE_STORE_PIXELS;
    int side = c->o->tile ? c->o->tile : c->o->size;
    m->schema = LATHE_SCHEMA_VERSION;
    m->store = c->o->store;
    m->height = m->width = pixels ? side : 0;
    m->channels = 3;
    m->has_masks = pixels && c->has_masks;
    m->has_text = c->has_text;
    m->sensor_steps = c->sensors.steps;
    m->sensor_channels = c->sensors.channels;
    m->nclasses = (int)lathe_catalog_nclasses(c->cat);
    m->class_names = calloc((size_t)m->nclasses + 1, sizeof(char *));
    m->sensor_names = calloc((size_t)m->sensor_channels + 1, sizeof(char *));
    m->created_by = strdup("lathe " LATHE_VERSION);
    m->source_format = strdup(c->adapter->name);
    m->split_origin = strdup(c->source_splits ? "source" : "hash");
    m->args_json = strdup(args);
    if (!m->class_names || !m->sensor_names || !m->created_by || !m->source_format || !m->args_json || !m->split_origin)
        return lathe_fail(LATHE_ENOMEM, "manifest");
    for (int i = 0; i < m->nclasses; i++)
        if (!(m->class_names[i] = strdup(lathe_catalog_class_at(c->cat, (size_t)i)->name))) return -LATHE_ENOMEM;
    for (int i = 0; i < m->sensor_channels; i++)
        if (!(m->sensor_names[i] = strdup(c->sensors.names[i]))) return -LATHE_ENOMEM;
    if (c->o->part_count > 1) {
        char part[48];
        snprintf(part, sizeof part, "%d/%d", c->o->part_index, c->o->part_count);
        if (!(m->part = strdup(part))) return -LATHE_ENOMEM;
    }
    return 0;
}

/* A resumed run must see the source the interrupted one saw. */
static int same_schema(const lathe_manifest *old, const lathe_manifest *now) {
    if (old->nclasses != now->nclasses || old->sensor_channels != now->sensor_channels ||
        old->sensor_steps != now->sensor_steps || old->has_text != now->has_text || old->has_masks != now->has_masks)
        return 0;
    for (int i = 0; i < old->nclasses; i++)
        if (strcmp(old->class_names[i], now->class_names[i])) return 0;
    return 1;
}

static int validate(const lathe_ingest_opts *o) {
    if (!o->src || !o->out) return lathe_fail(LATHE_EINVAL, "source and output are required");
    if (o->store == LATHE_STORE_PIXELS && !o->tile && (o->size < 8 || o->size > 16384))
        return lathe_fail(LATHE_EINVAL, "size %d is outside 8..16384", o->size);
    if (o->tile && (o->tile < 8 || o->tile > 16384 || o->overlap < 0 || o->overlap >= o->tile))
        return lathe_fail(LATHE_EINVAL, "tile %d with overlap %d (need 8 <= tile, 0 <= overlap < tile)", o->tile, o->overlap);
    if (o->tile && o->store != LATHE_STORE_PIXELS) /* tiles are cut from decoded pixels; the encoded store keeps sources whole */
        return lathe_fail(LATHE_EINVAL, "tiles (tile %d) are cut from decoded pixels: not with the encoded store", o->tile);
    if (o->shard_size < 1) return lathe_fail(LATHE_EINVAL, "shard size must be at least 1");
    double sum = o->split[0] + o->split[1] + o->split[2];
    if (o->split[0] < 0 || o->split[1] < 0 || o->split[2] < 0 || sum < 0.999 || sum > 1.001)
        return lathe_fail(LATHE_EINVAL, "split shares must be >= 0 and sum to 1");
    if (o->split_mode < LATHE_SPLIT_AUTO || o->split_mode > LATHE_SPLIT_HASH || !(o->carve >= 0 && o->carve < 1))
        return lathe_fail(LATHE_EINVAL, "split mode %d with carve %g (carve: 0 <= share < 1)", o->split_mode, o->carve);
    if (o->part_count < 0 || (o->part_count > 0 && (o->part_index < 0 || o->part_index >= o->part_count)))
        return lathe_fail(LATHE_EINVAL, "part %d/%d", o->part_index, o->part_count);
    if (o->zstd_level < 1 || o->zstd_level > 19) return lathe_fail(LATHE_EINVAL, "zstd level %d is outside 1..19", o->zstd_level);
    if (!o->adapter && (!o->adapters || !o->detect)) return lathe_fail(LATHE_EINVAL, "no label format and no detector");
    return 0;
}

static void ctx_free(ingest_ctx *c) {
    if (c->spool_fd > 0) close(c->spool_fd);
    lathe_hashmap_free(c->sidecars);
    free(c->refs);
    lathe_sensors_layout_free(&c->sensors);
    if (c->has_group_re) regfree(&c->group_re);
    ingest_rejects_close(c);
    pthread_mutex_destroy(&c->rejects_lock);
    lathe_catalog_free(c->cat);
    lathe_manifest_free(&c->manifest);
}

static int ingest_locked(const lathe_ingest_opts *o, lathe_ingest_summary *sum);

/* The whole ingest holds the output folder's lock: a second writer fails at once. */
int lathe_ingest_run(const lathe_ingest_opts *o, lathe_ingest_summary *sum) {
    memset(sum, 0, sizeof *sum);
    int rc = validate(o);
    lathe_lock *lock = NULL;
    if (!rc) rc = lathe_folder_lock(o->out, &lock);
    if (!rc) rc = ingest_locked(o, sum);
    lathe_folder_unlock(lock);
    return rc;
}

static int ingest_locked(const lathe_ingest_opts *o, lathe_ingest_summary *sum) {
    int rc;
    ingest_ctx c = {.o = o, .adapter = o->adapter, .spool_fd = -1};
    pthread_mutex_init(&c.rejects_lock, NULL);
    if (!(c.cat = lathe_catalog_create())) return lathe_fail(LATHE_ENOMEM, "catalog");
    if (o->group_by && *o->group_by) {
        if (regcomp(&c.group_re, o->group_by, REG_EXTENDED) != 0) {
            ctx_free(&c);
            return lathe_fail(LATHE_EINVAL, "--group-by '%s' is not a valid extended regular expression", o->group_by);
        }
        c.has_group_re = 1;
    }
    /* the arguments name the requested format; auto-detection is part of the identity too */
    char *args = args_json(o, o->adapter ? o->adapter->name : "auto");
    rc = args ? prepare_output(&c, args) : lathe_fail(LATHE_ENOMEM, "arguments");
    if (rc == 2) {
        summarize(&c, sum);
        sum->already_complete = 1;
        sum->format = NULL;
        for (const lathe_adapter *const *a = o->adapters; a && *a && c.manifest.source_format; a++)
            if (strcmp((*a)->name, c.manifest.source_format) == 0) sum->format = (*a)->name;
        cJSON_free(args);
        ctx_free(&c);
        return 0;
    }
    int resuming = rc == 1;
    lathe_manifest old = c.manifest;
    memset(&c.manifest, 0, sizeof c.manifest);
    if (rc >= 0 && (rc = ingest_rejects_open(&c, o->out)) == 0) { /* before the scan: it records rejects */
        for (int s = 0; s < LATHE_NSPLITS; s++) c.manifest.committed[s] = old.committed[s];
        rc = ingest_scan(&c);
        if (!rc) rc = resolve_splits(&c);
    }
    if (!rc) rc = fill_manifest_schema(&c, args);
    if (!rc && resuming) {
        if (!same_schema(&old, &c.manifest)) {
            rc = lathe_fail(LATHE_EEXIST, "the source changed since the interrupted ingest into %s; use --overwrite", o->out);
        } else {
            for (size_t i = 0; !rc && i < old.nshards; i++)
                rc = lathe_manifest_add_shard(&c.manifest, old.shards[i].file, old.shards[i].split,
                                              old.shards[i].samples, old.shards[i].bytes, old.shards[i].xxh64);
            lathe_log(LATHE_LOG_INFO, "ingest.resume", "resuming: %zu shards already written", old.nshards);
        }
    }
    lathe_manifest_free(&old);
    if (!rc) rc = lathe_manifest_save(o->out, &c.manifest);
    if (!rc) rc = pipeline_run(&c, sum);
    if (!rc) {
        c.manifest.complete = 1;
        rc = ingest_rejects_finish(&c, o->out, &c.manifest.rejected);
        if (!rc) rc = lathe_manifest_save(o->out, &c.manifest);
    }
    uint64_t images = sum->images, entries = sum->entries, ignored = sum->ignored, skipped = sum->resumed_skipped;
    summarize(&c, sum);
    sum->images = images, sum->entries = entries, sum->ignored = ignored, sum->resumed_skipped = skipped;
    sum->format = c.adapter ? c.adapter->name : NULL;
    cJSON_free(args);
    ctx_free(&c);
    return rc;
}
