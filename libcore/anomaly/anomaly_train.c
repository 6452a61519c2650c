/* anomaly_train.c - the one pass that builds an anomaly head's memory from good samples (anomaly.h):
 * patch features of every good training image, then PatchCore's coreset bank or PaDiM's Gaussians,
 * an alarm threshold from calibration images, and the run's files. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "anomaly.h"
#include "anomaly_internal.h"
#include "libcore/base/config.h"
#include "libcore/base/error.h"
#include "libcore/base/fsutil.h"
#include "libcore/base/log.h"
#include "libcore/base/rng.h"
#include "libcore/io/safetensors.h"
#include "libcore/nn/checkpoint.h"
#include "libcore/nn/trainer.h"
#include "memory.h"
#include "metrics.h"

/* Patch features held at once before coreset selection, unless anomaly.max_patches says otherwise. */
#define AD_MAX_PATCHES_DEFAULT 500000

/* Labelled samples (any class) of each split, into n; all zero when the labels cannot be read. */
static void labelled_per_split(lathe_dataset *ds, uint64_t n[LATHE_NSPLITS]) {
    lathe_dataset_stats st;
    for (int s = 0; s < LATHE_NSPLITS; s++) n[s] = 0;
    if (lathe_dataset_stats_compute(ds, &st)) {
        lathe_clear_error();
        return;
    }
    for (int c = 0; c < st.nclasses; c++)
        for (int s = 0; s < LATHE_NSPLITS; s++) n[s] += st.images[c][s];
    lathe_dataset_stats_free(&st);
}

typedef struct {
    ad_model m;
    lathe_dataset *ds;
    ad_source train, val; /* val.m is NULL when the val split is not used */
    float *mem;          /* patch features kept for the memory: nrows x dims */
    size_t nrows, cap_rows;
    float *calib;        /* held-out images' features: ncalib x P x dims */
    size_t ncalib;
    double keep;         /* share of patches kept (max_patches) */
    uint64_t seed;
} ad_train;

/* Features of the good training samples into the memory rows, every tenth one into calib when
 * holdout is set. */
static int gather(ad_train *t, int holdout, volatile int *stop, size_t *images) {
    ad_model *m = &t->m;
    size_t P = (size_t)m->fh * m->fw, D = (size_t)m->dims;
    uint64_t n = ad_source_size(&t->train);
    int32_t *labels = malloc(sizeof(int32_t) * (size_t)m->batch);
    if (!labels) return lathe_fail(LATHE_ENOMEM, "labels");
    int rc = 0;
    *images = 0;
    for (uint64_t first = 0; !rc && first < n; first += (uint64_t)m->batch) {
        if (stop && *stop) {
            rc = lathe_fail(LATHE_EINTR, "stopped after %llu of %llu images", (unsigned long long)first, (unsigned long long)n);
            break;
        }
        int got = ad_source_batch(&t->train, first, m->batch, labels, NULL);
        if (got < 0) rc = got;
        for (int b = 0; !rc && b < got; b++) {
            uint64_t i = first + (uint64_t)b;
            const float *f = m->feat + (size_t)b * P * D;
            if (holdout && i % 10 == 9) {
                memcpy(t->calib + t->ncalib++ * P * D, f, sizeof(float) * P * D);
                continue;
            }
            (*images)++;
            for (size_t p = 0; p < P && t->nrows < t->cap_rows; p++) { /* a seeded, even sample of the patches */
                double u = (double)(lathe_mix64(t->seed ^ lathe_mix64(i * P + p)) >> 11) * 0x1.0p-53;
                if (t->keep < 1 && u >= t->keep) continue;
                memcpy(t->mem + t->nrows++ * D, f + p * D, sizeof(float) * D);
            }
        }
    }
    free(labels);
    return rc;
}

/* PatchCore's bank: the coreset of the memory rows, chosen on a projection when they are wide. */
static int build_bank(ad_train *t, const cJSON *spec) {
    ad_model *m = &t->m;
    size_t D = (size_t)m->dims, rows = t->nrows;
    double share = lathe_config_num(spec, "anomaly.coreset", m->sensors ? 1 : 0.1); /* windows are few: keep them */
    if (!(share > 0)) return lathe_fail(LATHE_EINVAL, "anomaly.coreset: a share in (0, 1] or a count > 1, not %g", share);
    size_t want = share <= 1 ? (size_t)ceil(share * (double)rows) : (size_t)share;
    if (want > rows) want = rows;
    if (want < (size_t)m->k) return lathe_fail(LATHE_EINVAL, "the bank would hold %zu patches, fewer than anomaly.k", want);
    m->bank = malloc(sizeof(float) * want * D);
    size_t *chosen = malloc(sizeof(size_t) * (want ? want : 1));
    int rc = m->bank && chosen ? 0 : lathe_fail(LATHE_ENOMEM, "a bank of %zu patches", want);
    if (!rc && want == rows) {
        memcpy(m->bank, t->mem, sizeof(float) * rows * D);
    } else if (!rc) {
        int e = (int)lathe_config_num(spec, "anomaly.coreset_dims", 64);
        if (e < 1) rc = lathe_fail(LATHE_EINVAL, "anomaly.coreset_dims must be >= 1");
        float *proj = NULL, *small = NULL;
        if (!rc && (size_t)e < D) {
            rc = lathe_random_projection((int)D, e, t->seed + 1, &proj);
            small = rc ? NULL : malloc(sizeof(float) * rows * (size_t)e);
            if (!rc && !small) rc = lathe_fail(LATHE_ENOMEM, "projected patches");
            if (!rc) lathe_project_rows(t->mem, rows, (int)D, proj, e, small);
        }
        if (!rc) rc = lathe_coreset(small ? small : t->mem, rows, small ? e : (int)D, want, lathe_mix64(t->seed) % rows, chosen);
        for (size_t i = 0; !rc && i < want; i++) memcpy(m->bank + i * D, t->mem + chosen[i] * D, sizeof(float) * D);
        free(proj), free(small);
    }
    m->nbank = want;
    free(chosen);
    return rc;
}

/* Image scores of the calibration images (held-out features, or the val loader's), their labels. */
static int calibrate(ad_train *t, float **scores, uint8_t **defect, size_t *n) {
    ad_model *m = &t->m;
    size_t P = (size_t)m->fh * m->fw, D = (size_t)m->dims;
    int mh, mw;
    ad_map_size(m->h, m->w, &mh, &mw);
    *n = t->val.m ? ad_source_size(&t->val) : t->ncalib;
    *scores = malloc(sizeof(float) * (*n + 1)), *defect = calloc(*n + 1, 1);
    float *patch = malloc(sizeof(float) * P), *map = malloc(sizeof(float) * (size_t)mh * mw);
    int32_t *labels = malloc(sizeof(int32_t) * (size_t)m->batch);
    int rc = *scores && *defect && patch && map && labels ? 0 : lathe_fail(LATHE_ENOMEM, "calibration scores");
    for (size_t first = 0; !rc && first < *n; first += (size_t)m->batch) {
        int got = (int)(*n - first < (size_t)m->batch ? *n - first : (size_t)m->batch);
        const float *feat = t->calib + first * P * D;
        if (t->val.m) {
            got = ad_source_batch(&t->val, first, m->batch, labels, NULL);
            rc = got < 0 ? got : 0;
            feat = m->feat;
            for (int b = 0; !rc && b < got; b++) (*defect)[first + (size_t)b] = labels[b] != 0;
        }
        for (int b = 0; !rc && b < got; b++) {
            rc = ad_patch_scores(m, feat + (size_t)b * P * D, patch);
            if (!rc) (*scores)[first + (size_t)b] = ad_score(m, patch, mh, mw, map);
        }
    }
    free(patch), free(map), free(labels);
    return rc;
}

/* The threshold from good calibration images only: three standard deviations above their mean
 * score (a tail a dozen images cannot show by their maximum), and never below the highest of them. */
static float good_only_threshold(const float *scores, size_t n) {
    double sum = 0, sq = 0, hi = -INFINITY;
    for (size_t i = 0; i < n; i++) sum += scores[i], hi = fmax(hi, scores[i]);
    double mean = sum / (double)n;
    for (size_t i = 0; i < n; i++) sq += (scores[i] - mean) * (scores[i] - mean);
    double sd = n > 1 ? sqrt(sq / (double)(n - 1)) : 0;
    return nextafterf((float)fmax(mean + 3 * sd, hi), INFINITY);
}

static int save_memory(const ad_train *t, const char *path, const char *calibration) {
    const ad_model *m = &t->m;
    int P = m->fh * m->fw, D = m->dims;
    lathe_st_tensor ts[5];
    size_t nt = 0;
    if (m->method == AD_PATCHCORE)
        ts[nt++] = (lathe_st_tensor){.name = "bank", .data = m->bank, .shape = {(int)m->nbank, D}, .rank = 2};
    else {
        ts[nt++] = (lathe_st_tensor){.name = "mean", .data = m->gmean, .shape = {P, D}, .rank = 2};
        ts[nt++] = (lathe_st_tensor){.name = "cholesky", .data = m->gchol, .shape = {P, D, D}, .rank = 3};
    }
    if (m->proj) ts[nt++] = (lathe_st_tensor){.name = "projection", .data = m->proj, .shape = {m->fc, D}, .rank = 2};
    if (m->sensors) {
        ts[nt++] = (lathe_st_tensor){.name = "feature_mean", .data = m->fmean, .shape = {m->fc}, .rank = 1};
        ts[nt++] = (lathe_st_tensor){.name = "feature_std", .data = m->fstd, .shape = {m->fc}, .rank = 1};
    }
    char thr[32], fmap[64];
    snprintf(thr, sizeof thr, "%.9g", m->threshold);
    snprintf(fmap, sizeof fmap, "%d,%d,%d", m->fc, m->fh, m->fw);
    const char *meta[] = {"method", ad_method_name(m), "threshold", thr,
                          "calibration", calibration, "feature_map", fmap};
    return lathe_st_write(path, ts, nt, meta, 4);
}

static double seconds_since(const struct timespec *t0) {
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0->tv_nsec);
}

/* log.jsonl (the pass as one line) and metrics.json (the same, indented). */
static int write_run_files(const char *run_dir, cJSON *metrics) {
    char path[4300];
    char *text = cJSON_PrintUnformatted(metrics);
    int rc = text ? 0 : lathe_fail(LATHE_ENOMEM, "metrics");
    if (!rc) {
        snprintf(path, sizeof path, "%s/log.jsonl", run_dir);
        size_t len = strlen(text);
        text[len] = '\n'; /* cJSON's buffer ends in a NUL: write it as the line's end, then put it back */
        rc = lathe_write_atomic(path, text, len + 1);
        text[len] = 0;
    }
    free(text);
    text = rc ? NULL : cJSON_Print(metrics);
    if (!rc && !text) rc = lathe_fail(LATHE_ENOMEM, "metrics");
    if (!rc) {
        snprintf(path, sizeof path, "%s/metrics.json", run_dir);
        rc = lathe_write_atomic(path, text, strlen(text));
    }
    free(text);
    return rc;
}

int lathe_train_anomaly(const cJSON *spec, const char *run_dir, int resume, volatile int *stop) {
    (void)resume; /* one deterministic pass: a resumed run does it again */
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    ad_train t;
    memset(&t, 0, sizeof t);
    t.seed = (uint64_t)lathe_config_num(spec, "train.seed", 0);
    const char *dir = lathe_config_str(spec, "data.dataset", NULL);
    ad_model *m = &t.m;
    int rc = dir ? lathe_dataset_open(dir, &t.ds) : lathe_fail(LATHE_EINVAL, "data.dataset is required");
    if (!rc) rc = ad_model_init(m, spec, lathe_dataset_manifest(t.ds));
    if (!rc && m->g) rc = lathe_trainer_prepare(spec, m->g, run_dir, 0); /* train.init: pretrained features */
    if (!rc) rc = ad_model_device(m, spec);
    if (!rc) rc = ad_source_open(m, t.ds, LATHE_SPLIT_TRAIN, 1, &t.train);
    if (!rc && m->sensors) rc = ad_sensor_standardization(m, &t.train);
    uint64_t labelled[LATHE_NSPLITS] = {0};
    if (!rc) labelled_per_split(t.ds, labelled); /* one pass over the labels for both splits */
    uint64_t all = labelled[LATHE_SPLIT_TRAIN], good = rc ? 0 : ad_source_size(&t.train);
    if (!rc && !good) rc = lathe_fail(LATHE_EINVAL, "the train split of %s has no good sample (image label 0)", dir);
    if (!rc && all > good)
        lathe_log(LATHE_LOG_INFO, "anomaly", "%llu defective training samples left out (the memory is of good parts only)",
                  (unsigned long long)(all - good));
    if (!rc && t.train.missing)
        lathe_log(LATHE_LOG_INFO, "anomaly", "%zu good training windows lack a channel (scored as typical there)",
                  t.train.missing);
    int has_val = !rc && labelled[LATHE_SPLIT_VAL] > 0, holdout = !rc && !has_val && good >= 10;
    if (has_val) rc = ad_source_open(m, t.ds, LATHE_SPLIT_VAL, 0, &t.val);
    size_t P = (size_t)m->fh * m->fw, D = (size_t)m->dims;
    double max_patches = lathe_config_num(spec, "anomaly.max_patches", AD_MAX_PATCHES_DEFAULT);
    if (!rc && !(max_patches >= 1)) rc = lathe_fail(LATHE_EINVAL, "anomaly.max_patches must be >= 1");
    size_t mem_images = (size_t)good - (holdout ? (size_t)good / 10 : 0), total = mem_images * P;
    if (!rc) {
        t.keep = (double)total > max_patches ? max_patches / (double)total : 1;
        /* PaDiM needs every position of every image: the cap does not apply to it */
        t.cap_rows = m->method == AD_GAUSSIAN ? total : (size_t)fmin((double)total, max_patches * 1.01 + 64);
        if (m->method == AD_GAUSSIAN) t.keep = 1;
        if ((double)t.cap_rows * (double)D * 4 > 8.0 * (1ull << 30))
            rc = lathe_fail(LATHE_ELIMIT, "the patch features of %zu images would take %.1f GiB: lower anomaly.dims or, "
                                          "with patchcore, anomaly.max_patches", mem_images,
                            (double)t.cap_rows * (double)D * 4 / (1ull << 30));
    }
    if (!rc && !(t.mem = malloc(sizeof(float) * (t.cap_rows ? t.cap_rows : 1) * D)))
        rc = lathe_fail(LATHE_ENOMEM, "patch features of %zu images", mem_images);
    if (!rc && holdout && !(t.calib = malloc(sizeof(float) * ((size_t)good / 10 + 1) * P * D)))
        rc = lathe_fail(LATHE_ENOMEM, "held-out features");
    size_t images = 0;
    if (!rc) rc = gather(&t, holdout, stop, &images);
    if (!rc && m->method == AD_GAUSSIAN) {
        m->gmean = malloc(sizeof(float) * P * D), m->gchol = malloc(sizeof(float) * P * D * D);
        rc = m->gmean && m->gchol ? lathe_gauss_fit(t.mem, images, (int)P, (int)D, lathe_config_num(spec, "anomaly.eps", 0.01),
                                                    m->gmean, m->gchol)
                                  : lathe_fail(LATHE_ENOMEM, "Gaussians of %zu positions", P);
    } else if (!rc) {
        rc = build_bank(&t, spec);
    }
    free(t.mem);
    t.mem = NULL;
    float *scores = NULL;
    uint8_t *defect = NULL;
    size_t ncal = 0;
    const char *calibration = has_val ? "val" : holdout ? "held-out good training images" : "none";
    if (!rc && (has_val || holdout)) rc = calibrate(&t, &scores, &defect, &ncal);
    double val_auroc = -1;
    if (!rc && ncal) {
        lathe_f1_point best;
        rc = lathe_auroc(scores, defect, ncal, &val_auroc);
        if (!rc) rc = lathe_best_f1(scores, defect, ncal, &best);
        if (!rc && val_auroc >= 0) m->threshold = (float)best.threshold;
        else if (!rc) m->threshold = good_only_threshold(scores, ncal);
    }
    char ck_dir[4300], path[4400];
    snprintf(ck_dir, sizeof ck_dir, "%s/checkpoints", run_dir);
    if (!rc) rc = lathe_mkdirs(ck_dir);
    if (!rc) {
        snprintf(path, sizeof path, "%s/memory.safetensors", ck_dir);
        rc = save_memory(&t, path, calibration);
    }
    if (!rc) { /* the feature model's weights (a sensor head has none: the file says what the run is) */
        const char *meta[] = {"task", "anomaly"};
        snprintf(path, sizeof path, "%s/best.safetensors", ck_dir);
        rc = m->g ? lathe_checkpoint_save(path, m->g, NULL, meta, 1) : lathe_st_write(path, NULL, 0, meta, 1);
    }
    if (!rc) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddNumberToObject(j, "epoch", 1); /* the one pass, as log.jsonl's readers index it */
        cJSON_AddStringToObject(j, "task", "anomaly");
        cJSON_AddStringToObject(j, "method", ad_method_name(m));
        cJSON_AddStringToObject(j, "input", m->sensors ? "sensors" : "image");
        if (m->sensors) cJSON_AddNumberToObject(j, "windows_missing_a_channel", (double)t.train.missing);
        cJSON_AddNumberToObject(j, "images", (double)images);
        cJSON_AddNumberToObject(j, "defective_left_out", (double)(all - good));
        cJSON_AddNumberToObject(j, "patches", (double)(images * P));
        if (m->method == AD_PATCHCORE) cJSON_AddNumberToObject(j, "bank", (double)m->nbank);
        cJSON_AddNumberToObject(j, "features", (double)D);
        cJSON_AddStringToObject(j, "calibration", calibration);
        cJSON_AddNumberToObject(j, "calibration_images", (double)ncal);
        if (isfinite(m->threshold)) cJSON_AddNumberToObject(j, "threshold", m->threshold);
        if (val_auroc >= 0) cJSON_AddNumberToObject(j, "val_image_auroc", val_auroc);
        cJSON_AddNumberToObject(j, "seconds", seconds_since(&t0));
        rc = write_run_files(run_dir, j);
        if (!rc)
            lathe_log(LATHE_LOG_INFO, "anomaly", "%zu good %s, %zu patches -> %s; threshold %g (%s)", images,
                      m->sensors ? "windows" : "images", images * P,
                      m->method == AD_GAUSSIAN ? "a Gaussian per position" : "coreset bank", (double)m->threshold, calibration);
        cJSON_Delete(j);
    }
    free(scores), free(defect), free(t.calib);
    ad_source_close(&t.train), ad_source_close(&t.val);
    lathe_dataset_close(t.ds);
    ad_model_free(m);
    return rc;
}
