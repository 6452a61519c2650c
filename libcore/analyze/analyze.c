/* analyze.c - the driver of `lathe analyze`: one parallel pass over the pixels of every sample
 * (records of analyze_internal.h), then the label, image, duplicate and sensor parts, each adding
 * its keys to the analysis document. */
#include "analyze.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "analyze_internal.h"
#include "libcore/base/error.h"
#include "libcore/base/log.h"

/* kind, description; report order */
static const char *const kind_table[][2] = {
    {"corrupt", "samples that cannot be read: pixels that do not decode, or labels, boxes, meta, sensors or text that fail their checksum"},
    {"empty-class", "classes with no instance at all, or none in the train split"},
    {"rare-class", "classes with fewer instances than rare_ratio x the median class"},
    {"degenerate-box", "samples with a box under 1 stored pixel wide or high"},
    {"tiny-box", "samples with a box whose shorter side is under tiny_box stored pixels"},
    {"border-box", "samples with a box within border_px of the image content's edge"},
    {"double-label", "samples with two boxes of one class overlapping at IoU >= double_iou"},
    {"overexposed", "images with mean luma above bright_mean or clip_share of pixels at Y >= 250"},
    {"underexposed", "images with mean luma below dark_mean or clip_share of pixels at Y <= 5"},
    {"blurred", "images whose Laplacian variance is under blur_ratio x the dataset median"},
    {"duplicate", "groups of samples with identical pixels"},
    {"near-duplicate", "groups of samples alike up to re-encoding, small crops, brightness and contrast: hashes within radius bits, then 48x48 luma grids correlated at >= similarity"},
    {"leakage", "duplicate or near-duplicate groups that span more than one split"},
    {"sensor-nan", "sensor channels with a NaN share above sensor_nan (samples: those with NaN)"},
    {"sensor-constant", "sensor channels that never change"},
    {"sensor-drift", "sensor channels whose mean moves more than drift standard deviations along sample order"},
    {"class-mix-shift", "--compare: class shares differ by a total variation distance above 0.1"},
    {"box-size-shift", "--compare: mean box area differs by more than a factor 1.5"},
    {"brightness-shift", "--compare: mean brightness moved by more than half the reference's std"},
    {"sensor-shift", "--compare: channels whose mean moved by more than 1 reference std"},
};
enum { NKINDS = sizeof kind_table / sizeof kind_table[0] };

const char *const lathe_analyze_kinds[] = {
    "corrupt", "empty-class", "rare-class", "degenerate-box", "tiny-box", "border-box", "double-label",
    "overexposed", "underexposed", "blurred", "duplicate", "near-duplicate", "leakage", "sensor-nan",
    "sensor-constant", "sensor-drift", "class-mix-shift", "box-size-shift", "brightness-shift", "sensor-shift",
    NULL};

int lathe_analyze_is_kind(const char *kind) {
    for (int i = 0; lathe_analyze_kinds[i]; i++)
        if (!strcmp(kind, lathe_analyze_kinds[i])) return 1;
    return 0;
}

double lathe_analyze_finding_count(const cJSON *analysis, const char *kind) {
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(analysis, "findings"), kind);
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(f, "count");
    return cJSON_IsNumber(c) ? c->valuedouble : 0;
}

void lathe_analyze_defaults(lathe_analyze_opts *o) {
    memset(o, 0, sizeof *o);
    o->radius = 12;
    o->similarity = 0.95;
    o->tiny_box = 4;
    o->border_px = 1;
    o->double_iou = 0.9;
    o->dark_mean = 25;
    o->bright_mean = 230;
    o->clip_share = 0.25;
    o->blur_ratio = 0.1;
    o->rare_ratio = 0.1;
    o->sensor_nan = 0.1;
    o->drift = 1.0;
    o->heatmap_bins = 16;
    o->max_listed = 1000;
}

int lathe_analyze_check(const lathe_analyze_opts *o) {
    if (o->threads < 0) return lathe_fail(LATHE_EINVAL, "threads must be >= 0");
    if (o->radius < 0 || o->radius > LATHE_NEARDUP_MAX_RADIUS)
        return lathe_fail(LATHE_EINVAL, "radius must be 0..%d", LATHE_NEARDUP_MAX_RADIUS);
    if (!(o->similarity >= -1 && o->similarity <= 1)) return lathe_fail(LATHE_EINVAL, "similarity must be in [-1, 1]");
    if (!(o->tiny_box >= 0) || !(o->border_px >= 0)) return lathe_fail(LATHE_EINVAL, "box thresholds must be >= 0");
    if (!(o->double_iou > 0 && o->double_iou <= 1)) return lathe_fail(LATHE_EINVAL, "double-iou must be in (0, 1]");
    if (!(o->dark_mean >= 0 && o->bright_mean <= 255 && o->dark_mean < o->bright_mean))
        return lathe_fail(LATHE_EINVAL, "exposure limits must satisfy 0 <= dark < bright <= 255");
    if (!(o->clip_share > 0 && o->clip_share <= 1)) return lathe_fail(LATHE_EINVAL, "clip-share must be in (0, 1]");
    if (!(o->blur_ratio >= 0 && o->rare_ratio >= 0)) return lathe_fail(LATHE_EINVAL, "ratios must be >= 0");
    if (!(o->sensor_nan >= 0 && o->sensor_nan <= 1)) return lathe_fail(LATHE_EINVAL, "sensor-nan must be in [0, 1]");
    if (!(o->drift > 0)) return lathe_fail(LATHE_EINVAL, "drift must be > 0");
    if (o->heatmap_bins < 2 || o->heatmap_bins > 64) return lathe_fail(LATHE_EINVAL, "heatmap bins must be 2..64");
    if (o->max_listed < 0) return lathe_fail(LATHE_EINVAL, "max-listed must be >= 0");
    return 0;
}

int analyze_system_failure(analyze_ctx *c, int rc) {
    if (rc != -LATHE_EIO && rc != -LATHE_ENOMEM) return 0;
#pragma omp critical(analyze_fatal)
    if (!c->fatal[0]) snprintf(c->fatal, sizeof c->fatal, "%s", lathe_last_error());
    return 1;
}

static void note_corrupt(analyze_ctx *c, uint64_t i) {
    const char *msg = lathe_last_error();
#pragma omp critical(analyze_corrupt)
    if (cJSON_GetArraySize(c->corrupt_errors) < 100) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "sample", (double)i);
        cJSON_AddStringToObject(e, "message", msg ? msg : "unreadable");
        cJSON_AddItemToArray(c->corrupt_errors, e);
    }
}

int analyze_scratch_luma(analyze_scratch *sc, size_t n) {
    if (n <= sc->luma_cap) return 0;
    float *grown = realloc(sc->luma, n * sizeof *grown);
    if (!grown) return lathe_fail(LATHE_ENOMEM, "luma of %zu pixels", n);
    sc->luma = grown, sc->luma_cap = n;
    return 0;
}

void analyze_scratch_free(analyze_scratch *sc) {
    free(sc->frame);
    free(sc->luma);
}

int analyze_read_image(analyze_ctx *c, uint64_t i, analyze_scratch *sc, lathe_dataset_sample *s, const uint8_t **px,
                       int *w, int *h, lathe_rect *rect) {
    int pixels_store = c->m->store == LATHE_STORE_PIXELS;
    unsigned what = LATHE_READ_META | (pixels_store ? 0 : LATHE_READ_PIXELS | LATHE_READ_DECODE);
    int rc = lathe_dataset_get(c->ds, i, what, s);
    if (rc && !pixels_store) { /* the image does not decode: still learn its split and label */
        char why[512];
        snprintf(why, sizeof why, "%s", lathe_last_error());
        if (lathe_dataset_get(c->ds, i, LATHE_READ_META, s) == 0) lathe_fail(-rc, "%s", why);
    }
    if (rc) return rc;
    *px = s->pixels, *w = s->width, *h = s->height;
    if (pixels_store) {
        *w = c->m->width, *h = c->m->height;
        size_t frame = (size_t)*w * *h * 3;
        if (!sc->frame) sc->frame = malloc(frame);
        if (!sc->frame) return lathe_fail(LATHE_ENOMEM, "frame of %zu bytes", frame);
        rc = lathe_dataset_read_pixels(c->ds, i, sc->frame, frame);
        if (rc) return rc;
        *px = sc->frame;
    }
    if (!*px || (!pixels_store && s->channels != 3))
        return lathe_fail(LATHE_EFORMAT, "sample %llu: no RGB pixels", (unsigned long long)i);
    const lathe_meta *mt = &s->meta;
    *rect = lathe_content_rect(*w, *h, mt->orig_width, mt->orig_height, mt->scale_x, mt->scale_y, mt->pad_x, mt->pad_y,
                               mt->tile_x, mt->tile_y);
    if (rect->x1 <= rect->x0 || rect->y1 <= rect->y0) *rect = (lathe_rect){0, 0, *w, *h};
    return analyze_scratch_luma(sc, (size_t)(rect->x1 - rect->x0) * (rect->y1 - rect->y0));
}

/* Reads and measures sample i into c->rec[i] and its thumbnail. */
static void measure_sample(analyze_ctx *c, uint64_t i, analyze_scratch *sc) {
    analyze_record *r = &c->rec[i];
    memset(r, 0, sizeof *r);
    lathe_dataset_sample s;
    const uint8_t *px = NULL;
    int w = 0, h = 0;
    lathe_rect rect;
    int rc = analyze_read_image(c, i, sc, &s, &px, &w, &h, &rect);
    r->split = (uint8_t)s.split, r->label = s.label;
    lathe_image_stats st;
    if (!rc) rc = lathe_image_stats_compute(px, w, h, rect, sc->luma, &st);
    if (!rc) {
        r->content = XXH64(px, (size_t)w * h * 3, 0);
        r->phash = st.phash;
        memcpy(c->thumbs + i * sizeof st.thumb, st.thumb, sizeof st.thumb);
        r->brightness = (float)st.brightness, r->contrast = (float)st.contrast;
        r->sharpness = (float)st.sharpness;
        for (int k = 0; k < 3; k++) r->rgb[k] = (float)st.rgb[k];
        r->bright_share = (float)st.bright_share, r->dark_share = (float)st.dark_share;
        r->ok = 1;
    }
    if (rc && !analyze_system_failure(c, rc)) note_corrupt(c, i);
    lathe_dataset_sample_free(&s);
}

static int pixel_pass(analyze_ctx *c) {
    lathe_progress *prog = lathe_progress_start("analyze", c->n);
    uint64_t done = 0;
    int threads = c->opts->threads > 0 ? c->opts->threads : omp_get_max_threads();
#pragma omp parallel num_threads(threads)
    {
        analyze_scratch sc = {0};
#pragma omp for schedule(dynamic, 16)
        for (uint64_t i = 0; i < c->n; i++) {
            measure_sample(c, i, &sc);
            uint64_t d;
#pragma omp atomic capture
            d = ++done;
            if (omp_get_thread_num() == 0) lathe_progress_update(prog, d);
        }
        analyze_scratch_free(&sc);
    }
    lathe_progress_finish(prog, done);
    return c->fatal[0] ? lathe_fail(LATHE_EIO, "%s", c->fatal) : 0;
}

static cJSON *options_json(const lathe_analyze_opts *o) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "radius", o->radius);
    cJSON_AddNumberToObject(j, "similarity", o->similarity);
    cJSON_AddNumberToObject(j, "tiny_box", o->tiny_box);
    cJSON_AddNumberToObject(j, "border_px", o->border_px);
    cJSON_AddNumberToObject(j, "double_iou", o->double_iou);
    cJSON_AddNumberToObject(j, "dark_mean", o->dark_mean);
    cJSON_AddNumberToObject(j, "bright_mean", o->bright_mean);
    cJSON_AddNumberToObject(j, "clip_share", o->clip_share);
    cJSON_AddNumberToObject(j, "blur_ratio", o->blur_ratio);
    cJSON_AddNumberToObject(j, "rare_ratio", o->rare_ratio);
    cJSON_AddNumberToObject(j, "sensor_nan", o->sensor_nan);
    cJSON_AddNumberToObject(j, "drift", o->drift);
    cJSON_AddNumberToObject(j, "heatmap_bins", o->heatmap_bins);
    return j;
}

int lathe_analyze_run(lathe_dataset *ds, const lathe_analyze_opts *o, cJSON **out) {
    *out = NULL;
    int rc = lathe_analyze_check(o);
    if (rc) return rc;
    analyze_ctx c = {.opts = o, .ds = ds, .m = lathe_dataset_manifest(ds), .n = lathe_dataset_count(ds)};
    if (c.n == 0) return lathe_fail(LATHE_EFORMAT, "%s holds no samples", lathe_dataset_dir(ds));
    c.good_class = lathe_good_class((const char *const *)c.m->class_names, c.m->nclasses);
    c.rec = malloc(c.n * sizeof *c.rec);
    c.thumbs = malloc(c.n * LATHE_THUMB_SIDE * LATHE_THUMB_SIDE);
    c.corrupt_errors = cJSON_CreateArray();
    cJSON *root = cJSON_CreateObject();
    if (!c.rec || !c.thumbs || !c.corrupt_errors || !root || sensors_init(&c))
        rc = lathe_fail(LATHE_ENOMEM, "records of %llu samples", (unsigned long long)c.n);
    double t0 = lathe_now(), t[5];
    if (!rc) rc = pixel_pass(&c);
    for (size_t s = 0; s < c.m->nshards; s++) lathe_dataset_drop_caches(ds, s); /* the pass's /meta */
    t[0] = lathe_now();
    cJSON *findings = NULL;
    if (!rc) {
        cJSON_AddNumberToObject(root, "lathe_analysis", 1);
        /* absolute, so a notebook written from another folder finds the same dataset (or none) */
        char *where = realpath(lathe_dataset_dir(ds), NULL);
        cJSON_AddStringToObject(root, "dataset", where ? where : lathe_dataset_dir(ds));
        free(where);
        cJSON_AddNumberToObject(root, "samples", (double)c.n);
        cJSON_AddItemToObject(root, "options", options_json(o));
        findings = cJSON_CreateObject();
        for (int k = 0; k < NKINDS; k++) {
            LATHE_ASSERT(!strcmp(kind_table[k][0], lathe_analyze_kinds[k]));
            finding_add(findings, kind_table[k][0], kind_table[k][1]);
        }
        cJSON *corrupt = cJSON_GetObjectItemCaseSensitive(findings, "corrupt");
        uint64_t analyzed = 0;
        for (uint64_t i = 0; i < c.n; i++) {
            if (c.rec[i].ok) analyzed++;
            else finding_sample(&c, corrupt, i);
        }
        cJSON_AddItemToObject(corrupt, "errors", c.corrupt_errors);
        c.corrupt_errors = NULL;
        cJSON_AddNumberToObject(root, "analyzed", (double)analyzed);
        rc = analyze_labels(&c, root, findings);
        for (uint64_t i = analyzed = 0; i < c.n; i++) analyzed += c.rec[i].ok; /* the label pass may find more */
        cJSON_SetNumberValue(cJSON_GetObjectItemCaseSensitive(root, "analyzed"), (double)analyzed);
    }
    t[1] = lathe_now();
    if (!rc) rc = analyze_images(&c, root, findings);
    t[2] = lathe_now();
    if (!rc) rc = analyze_duplicates(&c, findings);
    t[3] = lathe_now();
    if (!rc) rc = analyze_sensors(&c, root, findings);
    t[4] = lathe_now();
    if (!rc) {
        cJSON_AddItemToObject(root, "findings", findings);
        findings = NULL;
        cJSON_AddNumberToObject(root, "seconds", t[4] - t0);
        static const char *const stages[] = {"pixels", "labels", "images", "duplicates", "sensors"};
        cJSON *timing = cJSON_AddObjectToObject(root, "stage_seconds");
        for (int k = 0; k < 5; k++) cJSON_AddNumberToObject(timing, stages[k], t[k] - (k ? t[k - 1] : t0));
        cJSON_AddNumberToObject(timing, "near_duplicate_search", c.search_seconds);
        cJSON_AddNumberToObject(timing, "near_duplicate_verify", c.verify_seconds);
    }
    cJSON_Delete(findings);
    cJSON_Delete(c.corrupt_errors);
    free(c.rec);
    free(c.thumbs);
    sensors_free(&c);
    if (rc) {
        cJSON_Delete(root);
        return rc;
    }
    *out = root;
    return 0;
}
