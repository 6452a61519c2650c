/* coco.c - COCO bbox evaluation (coco.h), a transcription of pycocotools' COCOeval: evaluateImg
 * (greedy matching of score-sorted detections to ground truth, non-ignored first, crowds reusable)
 * with maxDets 100 once per (category, area, image), then accumulate (precision/recall per maxDets
 * by truncating each image's list, a stable sort of all scores, 101-point interpolation) and
 * summarize. Sorting is stable everywhere pycocotools uses mergesort, so ties resolve the same way. */
#include "coco.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libcore/base/config.h"
#include "libcore/base/error.h"
#include "libcore/base/fsutil.h"
#include "libcore/base/log.h"
#include "libcore/io/dataset.h"

#define MAXDET 100
static const double area_lo[LATHE_COCO_A] = {0, 0, 32.0 * 32, 96.0 * 96};
static const double area_hi[LATHE_COCO_A] = {1e10, 32.0 * 32, 96.0 * 96, 1e10};
static const int max_dets[LATHE_COCO_M] = {1, 10, 100};

/* numpy.linspace values, computed as numpy does (start + i * step, the last exactly stop), with
 * step = (stop - start) / (num - 1): (0.95 - 0.5) is 0.44999999999999996, not 0.45, and with 0.45
 * thresholds 7 and 8 would be 0.8500000000000001 and 0.9 instead of pycocotools' 0.85 and
 * 0.8999999999999999 (an IoU of exactly 0.85 would not match at 0.85) */
static double iou_thr(int t) { return t == LATHE_COCO_T - 1 ? 0.95 : 0.5 + t * ((0.95 - 0.5) / 9); }
static double rec_thr(int r) { return r == LATHE_COCO_R - 1 ? 1.0 : r * (1.0 / 100); }

/* ---- loading ---- */

#define MAX_JSON_BYTES ((size_t)8 << 30)

static int num_field(const cJSON *o, const char *key, double *v) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(x)) return 0;
    *v = x->valuedouble;
    return 1;
}

/* An id: a whole number under 2^53 in magnitude, which a double holds exactly (1.0 is 1). pycocotools
 * keys by the number itself, so ids that the parser's double rounds together (2^53 + 1 reads as 2^53)
 * or fractional ones (1.5) cannot be keyed alike here: they are refused (-1) with the field named
 * (id_error), not merged or truncated. 0 when the field is absent or not a number. */
static int id_field(const cJSON *o, const char *key, int64_t *id) {
    double v;
    if (!num_field(o, key, &v)) return 0;
    if (!(fabs(v) < 9007199254740992.0) || v != floor(v)) return -1;
    *id = (int64_t)v;
    return 1;
}

/* The error of a record whose id fields did not all read (id_field 1): names the first bad field. */
static int id_error(const char *path, const char *what, size_t k, const cJSON *o, const char *const *keys, int n) {
    for (int i = 0; i < n; i++) {
        int64_t id;
        int r = id_field(o, keys[i], &id);
        if (r == 0) return lathe_fail(LATHE_EFORMAT, "%s: %s %zu has no numeric %s", path, what, k, keys[i]);
        double v = r < 0 ? cJSON_GetObjectItemCaseSensitive(o, keys[i])->valuedouble : 0;
        if (r < 0)
            return lathe_fail(LATHE_EFORMAT, v == floor(v) ? "%s: %s %zu: %s %.0f is not a whole number under 2^53"
                                                           : "%s: %s %zu: %s %.15g is not a whole number under 2^53",
                              path, what, k, keys[i], v);
    }
    return lathe_fail(LATHE_EFORMAT, "%s: %s %zu lacks a field", path, what, k);
}

/* iscrowd as pycocotools reads it: the region is ignored when the value is true (any number but 0,
 * or true), and matched as a crowd (IoU over the detection's area, many matches) when int() of it
 * is 1; so 0.5 is ignored but matched as a box. Absent is 0. Returns 0, or -1 for another type. */
static int crowd_field(const cJSON *o, lathe_coco_ann *a) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, "iscrowd");
    double v = !x ? 0 : cJSON_IsBool(x) ? cJSON_IsTrue(x) : cJSON_IsNumber(x) ? x->valuedouble : NAN;
    if (isnan(v)) return -1;
    a->ignore = v != 0;          /* pycocotools' _prepare: ignore = iscrowd for bbox evaluation */
    a->iscrowd = trunc(v) != 0; /* evaluateImg: int(o['iscrowd']) */
    return 0;
}

static int cmp_i64(const void *x, const void *y);

/* The first id that appears twice among n (sorted in place), or 0 with *dup unset. */
static int first_repeat(int64_t *ids, size_t n, int64_t *dup) {
    if (n) qsort(ids, n, sizeof *ids, cmp_i64);
    for (size_t i = 1; i < n; i++)
        if (ids[i] == ids[i - 1]) return *dup = ids[i], 1;
    return 0;
}

static int bbox_of(const cJSON *o, lathe_coco_ann *a) {
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(o, "bbox");
    if (!cJSON_IsArray(b) || cJSON_GetArraySize(b) != 4) return 0;
    double v[4];
    for (int i = 0; i < 4; i++) {
        const cJSON *x = cJSON_GetArrayItem(b, i);
        if (!cJSON_IsNumber(x) || !isfinite(x->valuedouble)) return 0;
        v[i] = x->valuedouble;
    }
    a->x = v[0], a->y = v[1], a->w = v[2], a->h = v[3];
    return 1;
}

static int cmp_i64(const void *x, const void *y) {
    int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
    return (a > b) - (a < b);
}

/* Sorts v and drops repeated values; returns how many remain. */
static size_t sort_unique(int64_t *v, size_t n) {
    if (n) qsort(v, n, sizeof *v, cmp_i64);
    size_t u = 0;
    for (size_t i = 0; i < n; i++)
        if (!u || v[u - 1] != v[i]) v[u++] = v[i];
    return u;
}

static long find_i64(const int64_t *v, size_t n, int64_t key) {
    const int64_t *p = bsearch(&key, v, n, sizeof *v, cmp_i64);
    return p ? (long)(p - v) : -1;
}

/* The results list into d->dt (d->images must be ready: results on unknown images are refused). */
static int read_results(lathe_coco_data *d, const cJSON *dt, const char *dt_path) {
    size_t nd = (size_t)cJSON_GetArraySize(dt), k = 0;
    free(d->dt);
    d->dt = calloc(nd + 1, sizeof *d->dt);
    if (!d->dt) return lathe_fail(LATHE_ENOMEM, "%zu results", nd);
    const cJSON *it;
    cJSON_ArrayForEach(it, dt) {
        lathe_coco_ann *a = &d->dt[k];
        int64_t img, cat;
        double score;
        static const char *const keys[2] = {"image_id", "category_id"};
        if (id_field(it, keys[0], &img) != 1 || id_field(it, keys[1], &cat) != 1) return id_error(dt_path, "result", k, it, keys, 2);
        if (!bbox_of(it, a) || !num_field(it, "score", &score))
            return lathe_fail(LATHE_EFORMAT, "%s: result %zu lacks image_id, category_id, bbox or score", dt_path, k);
        a->id = (int64_t)k + 1, a->image_id = img, a->category_id = cat, a->score = score;
        a->area = a->w * a->h;
        if (find_i64(d->images, d->nimages, a->image_id) < 0)
            return lathe_fail(LATHE_EFORMAT, "%s: result %zu is on image %lld, which the ground truth lacks", dt_path, k,
                              (long long)a->image_id);
        k++;
    }
    d->ndt = k;
    return 0;
}

int lathe_coco_set_detections(lathe_coco_data *d, const lathe_coco_ann *dt, size_t n) {
    free(d->dt);
    d->ndt = 0;
    if (!(d->dt = malloc((n + 1) * sizeof *d->dt))) return lathe_fail(LATHE_ENOMEM, "%zu detections", n);
    for (size_t k = 0; k < n; k++) {
        lathe_coco_ann *a = &d->dt[k];
        *a = dt[k];
        a->id = (int64_t)k + 1, a->area = a->w * a->h, a->iscrowd = a->ignore = 0;
        if (find_i64(d->images, d->nimages, a->image_id) < 0)
            return lathe_fail(LATHE_EINVAL, "detection %zu is on image %lld, which the ground truth lacks", k,
                              (long long)a->image_id);
    }
    d->ndt = n;
    return 0;
}

/* Annotation ids must be unique: pycocotools looks annotations up by id, so of two with one id it
 * evaluates the later in place of both (on the earlier one's image too), which no one means. Id 0
 * is allowed but said: pycocotools records a match as the ground truth's id and tests it for truth,
 * so a detection matching annotation 0 is never a true positive; lathe does the same to agree. */
static int check_annotation_ids(const lathe_coco_data *d, const char *gt_path) {
    int64_t *ids = malloc((d->ngt + 1) * sizeof *ids), dup;
    if (!ids) return lathe_fail(LATHE_ENOMEM, "annotation ids");
    for (size_t i = 0; i < d->ngt; i++) ids[i] = d->gt[i].id;
    int rc = first_repeat(ids, d->ngt, &dup)
                 ? lathe_fail(LATHE_EFORMAT, "%s: annotation id %lld appears twice", gt_path, (long long)dup)
                 : 0;
    if (!rc && find_i64(ids, d->ngt, 0) >= 0)
        lathe_log(LATHE_LOG_WARN, "eval.gt",
                  "%s: an annotation has id 0; pycocotools never counts a detection that matches it as a true "
                  "positive, and lathe agrees with pycocotools: number annotations from 1",
                  gt_path);
    free(ids);
    return rc;
}

int lathe_coco_load(const char *gt_path, const char *dt_path, lathe_coco_data *d) {
    memset(d, 0, sizeof *d);
    cJSON *gt = NULL, *dt = NULL;
    int rc = lathe_json_load(gt_path, MAX_JSON_BYTES, &gt);
    if (!rc) rc = lathe_json_load(dt_path, MAX_JSON_BYTES, &dt);
    const cJSON *images = cJSON_GetObjectItemCaseSensitive(gt, "images");
    const cJSON *anns = cJSON_GetObjectItemCaseSensitive(gt, "annotations");
    const cJSON *cats = cJSON_GetObjectItemCaseSensitive(gt, "categories");
    if (!rc && (!cJSON_IsArray(images) || !cJSON_IsArray(anns) || !cJSON_IsArray(cats)))
        rc = lathe_fail(LATHE_EFORMAT, "%s: needs images, annotations and categories lists", gt_path);
    if (!rc && !cJSON_IsArray(dt)) rc = lathe_fail(LATHE_EFORMAT, "%s: a results file is a JSON list", dt_path);
    size_t ni = rc ? 0 : (size_t)cJSON_GetArraySize(images), nc = rc ? 0 : (size_t)cJSON_GetArraySize(cats);
    size_t na = rc ? 0 : (size_t)cJSON_GetArraySize(anns);
    if (!rc) {
        d->images = malloc((ni + 1) * sizeof *d->images);
        d->categories = malloc((nc + 1) * sizeof *d->categories);
        d->category_names = calloc(nc + 1, sizeof *d->category_names);
        d->gt = calloc(na + 1, sizeof *d->gt);
        if (!d->images || !d->categories || !d->category_names || !d->gt)
            rc = lathe_fail(LATHE_ENOMEM, "COCO data");
    }
    const cJSON *it;
    size_t k = 0;
    if (!rc) cJSON_ArrayForEach(it, images) {
            int64_t id;
            static const char *const keys[1] = {"id"};
            if (id_field(it, "id", &id) != 1) {
                rc = id_error(gt_path, "image", k, it, keys, 1);
                break;
            }
            d->images[k++] = id;
        }
    if (!rc) {
        d->nimages = sort_unique(d->images, ni); /* unique, as pycocotools' imgs dict */
    }
    k = 0;
    if (!rc) cJSON_ArrayForEach(it, cats) {
            int64_t id;
            const cJSON *name = cJSON_GetObjectItemCaseSensitive(it, "name");
            static const char *const keys[1] = {"id"};
            if (id_field(it, "id", &id) != 1) {
                rc = id_error(gt_path, "category", k, it, keys, 1);
                break;
            }
            d->categories[k] = id;
            if (!(d->category_names[k] = strdup(cJSON_IsString(name) ? name->valuestring : ""))) {
                rc = lathe_fail(LATHE_ENOMEM, "category names");
                break;
            }
            d->ncategories = ++k; /* so that lathe_coco_data_free frees the names read so far */
        }
    if (!rc) { /* a repeated category id: pycocotools keeps the last name and weighs the id twice */
        int64_t *ids = malloc((nc + 1) * sizeof *ids), dup;
        if (!ids) rc = lathe_fail(LATHE_ENOMEM, "category ids");
        else if (memcpy(ids, d->categories, nc * sizeof *ids), first_repeat(ids, nc, &dup))
            rc = lathe_fail(LATHE_EFORMAT, "%s: category id %lld appears twice", gt_path, (long long)dup);
        free(ids);
    }
    if (!rc) { /* sorted ids, names following */
        d->ncategories = nc;
        for (size_t i = 1; i < nc; i++)
            for (size_t j = i; j > 0 && d->categories[j - 1] > d->categories[j]; j--) {
                int64_t t = d->categories[j];
                d->categories[j] = d->categories[j - 1], d->categories[j - 1] = t;
                char *s = d->category_names[j];
                d->category_names[j] = d->category_names[j - 1], d->category_names[j - 1] = s;
            }
    }
    k = 0;
    if (!rc) cJSON_ArrayForEach(it, anns) {
            lathe_coco_ann *a = &d->gt[k];
            int64_t id, img, cat;
            double v;
            static const char *const keys[3] = {"id", "image_id", "category_id"};
            if (id_field(it, keys[0], &id) != 1 || id_field(it, keys[1], &img) != 1 || id_field(it, keys[2], &cat) != 1) {
                rc = id_error(gt_path, "annotation", k, it, keys, 3);
                break;
            }
            if (!bbox_of(it, a)) {
                rc = lathe_fail(LATHE_EFORMAT, "%s: annotation %zu lacks a bbox of 4 numbers", gt_path, k);
                break;
            }
            if (crowd_field(it, a)) {
                rc = lathe_fail(LATHE_EFORMAT, "%s: annotation %zu: iscrowd is not a number or a boolean", gt_path, k);
                break;
            }
            a->id = id, a->image_id = img, a->category_id = cat;
            a->area = num_field(it, "area", &v) ? v : a->w * a->h;
            k++;
        }
    d->ngt = rc ? 0 : k;
    if (!rc) rc = check_annotation_ids(d, gt_path);
    if (!rc) rc = read_results(d, dt, dt_path);
    cJSON_Delete(gt);
    cJSON_Delete(dt);
    if (rc) lathe_coco_data_free(d);
    return rc;
}

int lathe_coco_load_dataset(lathe_dataset *ds, int split, const char *dt_path, lathe_coco_data *d) {
    memset(d, 0, sizeof *d);
    const lathe_manifest *m = lathe_dataset_manifest(ds);
    uint64_t n = lathe_dataset_count(ds), nboxes = 0;
    size_t ni = 0, cap = 1024;
    cJSON *dt = NULL;
    int rc = dt_path ? lathe_json_load(dt_path, MAX_JSON_BYTES, &dt) : 0;
    if (!rc && dt_path && !cJSON_IsArray(dt)) rc = lathe_fail(LATHE_EFORMAT, "%s: a results file is a JSON list", dt_path);
    /* a tiled dataset's ground truth is each source image's whole boxes, which its first tile holds */
    int tiled = lathe_dataset_tiled(ds), has_source = tiled && !rc ? lathe_dataset_has_source_boxes(ds) : 0;
    if (!rc && has_source < 0) rc = has_source;
    if (!rc && tiled && !has_source)
        rc = lathe_fail(LATHE_EUNSUPPORTED, "this tiled dataset predates whole-image boxes (/source_boxes): ingest it again "
                        "with this lathe, or evaluate against its COCO ground truth (--gt)");
    int64_t *image_ids = NULL;
    if (!rc) rc = lathe_dataset_image_ids(ds, &image_ids);
    d->images = malloc((n + 1) * sizeof *d->images);
    d->categories = malloc(((size_t)m->nclasses + 1) * sizeof *d->categories);
    d->category_names = calloc((size_t)m->nclasses + 1, sizeof *d->category_names);
    d->gt = malloc(cap * sizeof *d->gt);
    if (!rc && (!d->images || !d->categories || !d->category_names || !d->gt)) rc = lathe_fail(LATHE_ENOMEM, "ground truth");
    for (int c = 0; !rc && c < m->nclasses; c++) {
        d->categories[c] = c;
        d->category_names[c] = strdup(m->class_names[c]);
    }
    d->ncategories = rc ? 0 : (size_t)m->nclasses;
    for (uint64_t i = 0; !rc && i < n; i++) {
        lathe_dataset_sample s;
        rc = lathe_dataset_get(ds, i, (tiled ? LATHE_READ_SOURCE_BOXES : LATHE_READ_BOXES) | LATHE_READ_META, &s);
        if (rc) break;
        const lathe_meta *mt = &s.meta;
        if (s.split != split) {
            lathe_dataset_sample_free(&s);
            continue;
        }
        int64_t img = image_ids[i];
        d->images[ni++] = img;
        /* source boxes are in source pixels already; stored boxes go back through the letterbox */
        double sx = mt->scale_x > 0 && !tiled ? mt->scale_x : 1, sy = mt->scale_y > 0 && !tiled ? mt->scale_y : 1;
        double px = tiled ? 0 : mt->pad_x, py = tiled ? 0 : mt->pad_y;
        size_t nb = tiled ? s.nsource_boxes : s.nboxes;
        for (size_t b = 0; b < nb && !rc; b++) {
            if (d->ngt == cap) {
                lathe_coco_ann *g = realloc(d->gt, 2 * cap * sizeof *g);
                if (!g) {
                    rc = lathe_fail(LATHE_ENOMEM, "ground truth");
                    break;
                }
                d->gt = g, cap *= 2;
            }
            const lathe_box *bx = tiled ? &s.source_boxes[b] : &s.boxes[b];
            lathe_coco_ann *a = &d->gt[d->ngt++];
            memset(a, 0, sizeof *a);
            a->id = (int64_t)++nboxes; /* matching needs unique positive ids only */
            a->image_id = img, a->category_id = bx->label;
            a->x = (bx->x1 - px) / sx, a->y = (bx->y1 - py) / sy;
            a->w = (bx->x2 - bx->x1) / sx, a->h = (bx->y2 - bx->y1) / sy;
            a->area = bx->area >= 0 ? bx->area : a->w * a->h;
            a->iscrowd = (bx->flags & LATHE_BOX_CROWD) != 0;
            a->ignore = a->iscrowd || (bx->flags & LATHE_BOX_IGNORE);
        }
        lathe_dataset_sample_free(&s);
    }
    if (!rc) {
        d->nimages = sort_unique(d->images, ni);
        if (dt_path) rc = read_results(d, dt, dt_path);
    }
    free(image_ids);
    cJSON_Delete(dt);
    if (rc) lathe_coco_data_free(d);
    return rc;
}

void lathe_coco_data_free(lathe_coco_data *d) {
    for (size_t i = 0; d->category_names && i < d->ncategories; i++) free(d->category_names[i]);
    free(d->category_names), free(d->images), free(d->categories), free(d->gt), free(d->dt);
    memset(d, 0, sizeof *d);
}

/* ---- evaluation ---- */

typedef struct {
    const lathe_coco_ann *a;
    size_t order; /* position in the input: the tie-break of a stable sort */
} ref;

static int cmp_dt_score(const void *x, const void *y) { /* score descending, then input order */
    const ref *p = x, *q = y;
    if (p->a->score != q->a->score) return p->a->score > q->a->score ? -1 : 1;
    return (p->order > q->order) - (p->order < q->order);
}

/* One image's matches for one (category, area), maxDets 100, in a per-category pool: its
 * detections' scores at pool.scores[off .. off + nd), match and ignore flags per IoU threshold at
 * pool.matched/ignored[(off + i) * T + t]. */
typedef struct {
    int nd, npig, present;
    size_t off;
} image_eval;

typedef struct {
    double *scores;
    uint8_t *matched, *ignored;
} pool;

double lathe_coco_iou(const lathe_coco_ann *d, const lathe_coco_ann *g, int crowd) {
    double w = fmin(d->x + d->w, g->x + g->w) - fmax(d->x, g->x);
    if (w <= 0) return 0;
    double h = fmin(d->y + d->h, g->y + g->h) - fmax(d->y, g->y);
    if (h <= 0) return 0;
    double inter = w * h, da = d->w * d->h, ga = g->w * g->h;
    double u = crowd ? da : da + ga - inter;
    return inter / u;
}

typedef struct { /* per-thread scratch, sized for the largest image */
    int *gt_order;
    uint8_t *gt_ig;
    int64_t *gtm;
    double *ious;
    ref *dts;
} scratch;

/* evaluateImg: gts g (ng, input order), score-sorted dts (nd <= 100), their IoUs (nd, ng) */
static void evaluate_image(const ref *g, int ng, const ref *dt, int nd, const double *ious, int area, scratch *sc,
                           image_eval *e, pool *pl) {
    int *order = sc->gt_order;
    uint8_t *gt_ig = sc->gt_ig;
    e->nd = nd, e->npig = 0, e->present = 1;
    int k = 0; /* stable argsort of the ignore flags: non-ignored first */
    for (int pass = 0; pass < 2; pass++)
        for (int j = 0; j < ng; j++) {
            const lathe_coco_ann *a = g[j].a;
            int ig = a->ignore || a->area < area_lo[area] || a->area > area_hi[area];
            if (ig == pass) order[k++] = j;
        }
    for (int j = 0; j < ng; j++) {
        const lathe_coco_ann *a = g[order[j]].a;
        gt_ig[j] = a->ignore || a->area < area_lo[area] || a->area > area_hi[area];
        e->npig += !gt_ig[j];
    }
    for (int i = 0; i < nd; i++) pl->scores[e->off + i] = dt[i].a->score;
    for (int t = 0; t < LATHE_COCO_T; t++) {
        memset(sc->gtm, 0, sizeof(int64_t) * (size_t)ng);
        for (int i = 0; i < nd; i++) {
            double iou = fmin(iou_thr(t), 1 - 1e-10);
            int m = -1;
            for (int j = 0; j < ng; j++) {
                if (sc->gtm[j] > 0 && !g[order[j]].a->iscrowd) continue;
                if (m > -1 && gt_ig[m] == 0 && gt_ig[j] == 1) break;
                double v = ious[(size_t)i * ng + order[j]];
                if (v < iou) continue;
                iou = v, m = j;
            }
            size_t at = (e->off + i) * LATHE_COCO_T + t;
            const lathe_coco_ann *da = dt[i].a;
            /* pycocotools keeps the matched ground truth's id and counts it as a match when the id is
             * true: a match to annotation 0 uses that annotation up but counts as none */
            int credited = m > -1 && g[order[m]].a->id != 0;
            pl->matched[at] = credited;
            /* ignored: matched to an ignored ground truth, or not credited and outside the area range */
            pl->ignored[at] = (m > -1 && gt_ig[m]) || (!credited && (da->area < area_lo[area] || da->area > area_hi[area]));
            if (m > -1) sc->gtm[m] = da->id;
        }
    }
}

typedef struct {
    double score;
    size_t order, at; /* at: the detection's pool index */
} scored;

static int cmp_scored(const void *x, const void *y) {
    const scored *p = x, *q = y;
    if (p->score != q->score) return p->score > q->score ? -1 : 1;
    return (p->order > q->order) - (p->order < q->order);
}

/* accumulate for one (category, area) over its images, for each maxDets. Detections ignored by
 * the matching are skipped: in pycocotools they repeat the previous cumulative counts, which
 * changes neither the interpolated precision nor the final recall. */
static void accumulate(const image_eval *ev, const pool *pl, size_t nimg, size_t k, size_t K, int area,
                       lathe_coco_result *r, scored *buf, double *rc, double *pr) {
    for (int mi = 0; mi < LATHE_COCO_M; mi++) {
        int md = max_dets[mi];
        size_t n = 0;
        long npig = 0;
        for (size_t i = 0; i < nimg; i++) {
            if (!ev[i].present) continue;
            npig += ev[i].npig;
            for (int j = 0; j < ev[i].nd && j < md; j++, n++) buf[n] = (scored){pl->scores[ev[i].off + j], n, ev[i].off + j};
        }
        if (npig == 0) continue; /* precision and recall stay -1 */
        if (n) qsort(buf, n, sizeof *buf, cmp_scored);
        for (int t = 0; t < LATHE_COCO_T; t++) {
            double ctp = 0, cfp = 0;
            size_t nd = 0;
            for (size_t s = 0; s < n; s++) {
                size_t at = buf[s].at * LATHE_COCO_T + t;
                if (pl->ignored[at]) continue;
                if (pl->matched[at]) ctp++;
                else cfp++;
                rc[nd] = ctp / (double)npig;
                pr[nd] = ctp / (ctp + cfp + 2.220446049250313e-16);
                nd++;
            }
            r->recall[(((size_t)t * K + k) * LATHE_COCO_A + area) * LATHE_COCO_M + mi] = nd ? rc[nd - 1] : 0;
            for (size_t s = nd; s-- > 1;)
                if (pr[s] > pr[s - 1]) pr[s - 1] = pr[s];
            size_t pi = 0;
            for (int ri = 0; ri < LATHE_COCO_R; ri++) {
                double thr = rec_thr(ri);
                while (pi < nd && rc[pi] < thr) pi++; /* numpy.searchsorted(rc, thr, side='left') */
                r->precision[((((size_t)t * LATHE_COCO_R + ri) * K + k) * LATHE_COCO_A + area) * LATHE_COCO_M + mi] =
                    pi < nd ? pr[pi] : 0;
            }
        }
    }
}

typedef struct {
    size_t cat, img, order;
    const lathe_coco_ann *a;
} keyed;

static int cmp_keyed(const void *x, const void *y) {
    const keyed *p = x, *q = y;
    if (p->cat != q->cat) return p->cat < q->cat ? -1 : 1;
    if (p->img != q->img) return p->img < q->img ? -1 : 1;
    return (p->order > q->order) - (p->order < q->order);
}

/* anns keyed by (category index, image index, input order), sorted; those of unknown categories
 * (or images) are left out, as pycocotools never evaluates them */
static keyed *key_anns(const lathe_coco_data *d, const lathe_coco_ann *a, size_t n, size_t *kept) {
    keyed *k = malloc((n + 1) * sizeof *k);
    if (!k) return NULL;
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        long c = find_i64(d->categories, d->ncategories, a[i].category_id);
        long im = find_i64(d->images, d->nimages, a[i].image_id);
        if (c >= 0 && im >= 0) k[m++] = (keyed){(size_t)c, (size_t)im, i, &a[i]};
    }
    if (m) qsort(k, m, sizeof *k, cmp_keyed);
    *kept = m;
    return k;
}

int lathe_coco_evaluate(const lathe_coco_data *d, lathe_coco_result *r) {
    size_t K = d->ncategories, I = d->nimages, T = LATHE_COCO_T, R = LATHE_COCO_R, A = LATHE_COCO_A, M = LATHE_COCO_M;
    memset(r, 0, sizeof *r);
    r->ncategories = K;
    r->precision = malloc((T * R * K * A * M + 1) * sizeof(double));
    r->recall = malloc((T * K * A * M + 1) * sizeof(double));
    size_t ng = 0, nd = 0;
    keyed *gk = key_anns(d, d->gt, d->ngt, &ng), *dk = key_anns(d, d->dt, d->ndt, &nd);
    if (!r->precision || !r->recall || !gk || !dk) {
        free(gk), free(dk), lathe_coco_result_free(r);
        return lathe_fail(LATHE_ENOMEM, "COCO evaluation");
    }
    for (size_t i = 0; i < T * R * K * A * M; i++) r->precision[i] = -1;
    for (size_t i = 0; i < T * K * A * M; i++) r->recall[i] = -1;
    /* where each category's records start */
    size_t *gstart = calloc(K + 1, sizeof *gstart), *dstart = calloc(K + 1, sizeof *dstart);
    int failed = !gstart || !dstart;
    for (size_t i = 0; !failed && i < ng; i++) gstart[gk[i].cat + 1]++;
    for (size_t i = 0; !failed && i < nd; i++) dstart[dk[i].cat + 1]++;
    for (size_t c = 0; !failed && c < K; c++) gstart[c + 1] += gstart[c], dstart[c + 1] += dstart[c];
    int maxg = 1;
    for (size_t i = 0, run = 0; !failed && i < ng; i++) { /* the most gt of one (category, image) */
        run = i && gk[i].cat == gk[i - 1].cat && gk[i].img == gk[i - 1].img ? run + 1 : 1;
        if ((int)run > maxg) maxg = (int)run;
    }
#pragma omp parallel if (K > 1)
    {
        scratch sc = {malloc(sizeof(int) * maxg), malloc((size_t)maxg), malloc(sizeof(int64_t) * maxg),
                      malloc(sizeof(double) * MAXDET * (size_t)maxg), NULL};
        size_t cap_d = 0;
        image_eval *ev = malloc((I + 1) * A * sizeof *ev);
        pool pl = {0};
        scored *buf = NULL;
        double *rc = NULL, *pr = NULL;
        int mine_failed = !sc.gt_order || !sc.gt_ig || !sc.gtm || !sc.ious || !ev;
#pragma omp for schedule(dynamic, 1)
        for (size_t c = 0; c < K; c++) {
            if (mine_failed || failed) continue;
            size_t g0 = gstart[c], g1 = gstart[c + 1], d0 = dstart[c], d1 = dstart[c + 1];
            size_t ndc = d1 - d0; /* at most this many pooled detections per area */
            if (ndc + 1 > cap_d) {
                cap_d = ndc + 1;
                free(pl.scores), free(pl.matched), free(pl.ignored), free(buf), free(rc), free(pr), free(sc.dts);
                pl.scores = malloc(cap_d * A * sizeof(double));
                pl.matched = malloc(cap_d * A * T), pl.ignored = malloc(cap_d * A * T);
                buf = malloc(cap_d * sizeof *buf), rc = malloc(cap_d * sizeof *rc), pr = malloc(cap_d * sizeof *pr);
                sc.dts = malloc(cap_d * sizeof *sc.dts);
                if (!pl.scores || !pl.matched || !pl.ignored || !buf || !rc || !pr || !sc.dts) {
                    mine_failed = 1;
                    continue;
                }
            }
            for (size_t i = 0; i < I * A; i++) ev[i].present = 0;
            size_t gi = g0, di = d0, used = 0;
            while (gi < g1 || di < d1) { /* images of this category in id order */
                size_t img = gi < g1 && (di >= d1 || gk[gi].img <= dk[di].img) ? gk[gi].img : dk[di].img;
                size_t ga = gi, da = di;
                while (gi < g1 && gk[gi].img == img) gi++;
                while (di < d1 && dk[di].img == img) di++;
                int n_g = (int)(gi - ga), n_d = (int)(di - da);
                ref *dts = sc.dts, *gts;
                for (int j = 0; j < n_d; j++) dts[j] = (ref){dk[da + j].a, dk[da + j].order};
                if (n_d > 1) qsort(dts, (size_t)n_d, sizeof *dts, cmp_dt_score);
                if (n_d > MAXDET) n_d = MAXDET;
                gts = malloc(sizeof(ref) * (size_t)(n_g ? n_g : 1));
                if (!gts) {
                    mine_failed = 1;
                    break;
                }
                for (int j = 0; j < n_g; j++) gts[j] = (ref){gk[ga + j].a, gk[ga + j].order};
                for (int i = 0; i < n_d; i++)
                    for (int j = 0; j < n_g; j++)
                        sc.ious[(size_t)i * n_g + j] = lathe_coco_iou(dts[i].a, gts[j].a, gts[j].a->iscrowd);
                for (int a = 0; a < (int)A; a++) {
                    pool view = {pl.scores + a * cap_d, pl.matched + a * cap_d * T, pl.ignored + a * cap_d * T};
                    image_eval *e = &ev[(size_t)a * I + img];
                    e->off = used;
                    evaluate_image(gts, n_g, dts, n_d, sc.ious, a, &sc, e, &view);
                }
                used += (size_t)n_d;
                free(gts);
            }
            for (int a = 0; a < (int)A && !mine_failed; a++) {
                pool view = {pl.scores + a * cap_d, pl.matched + a * cap_d * T, pl.ignored + a * cap_d * T};
                accumulate(ev + (size_t)a * I, &view, I, c, K, a, r, buf, rc, pr);
            }
        }
        if (mine_failed) {
#pragma omp atomic write
            failed = 1;
        }
        free(sc.gt_order), free(sc.gt_ig), free(sc.gtm), free(sc.ious), free(sc.dts), free(ev);
        free(pl.scores), free(pl.matched), free(pl.ignored), free(buf), free(rc), free(pr);
    }
    free(gk), free(dk), free(gstart), free(dstart);
    if (failed) {
        lathe_coco_result_free(r);
        return lathe_fail(LATHE_ENOMEM, "COCO evaluation");
    }
    /* summarize */
    static const struct {
        int ap, t, a, m;
    } spec[12] = {{1, -1, 0, 2}, {1, 0, 0, 2}, {1, 5, 0, 2}, {1, -1, 1, 2}, {1, -1, 2, 2}, {1, -1, 3, 2},
                  {0, -1, 0, 0}, {0, -1, 0, 1}, {0, -1, 0, 2}, {0, -1, 1, 2}, {0, -1, 2, 2}, {0, -1, 3, 2}};
    for (int s = 0; s < 12; s++) {
        double sum = 0;
        size_t cnt = 0;
        for (size_t t = 0; t < T; t++) {
            if (spec[s].t >= 0 && (int)t != spec[s].t) continue;
            if (spec[s].ap) {
                for (size_t ri = 0; ri < R; ri++)
                    for (size_t c = 0; c < K; c++) {
                        double v = r->precision[(((t * R + ri) * K + c) * A + spec[s].a) * M + spec[s].m];
                        if (v > -1) sum += v, cnt++;
                    }
            } else {
                for (size_t c = 0; c < K; c++) {
                    double v = r->recall[((t * K + c) * A + spec[s].a) * M + spec[s].m];
                    if (v > -1) sum += v, cnt++;
                }
            }
        }
        r->stats[s] = cnt ? sum / (double)cnt : -1;
    }
    return 0;
}

void lathe_coco_result_free(lathe_coco_result *r) {
    free(r->precision), free(r->recall);
    memset(r, 0, sizeof *r);
}

double lathe_coco_category_ap(const lathe_coco_result *r, size_t k, int iou_index) {
    double sum = 0;
    size_t cnt = 0, K = r->ncategories;
    for (int t = 0; t < LATHE_COCO_T; t++) {
        if (iou_index >= 0 && t != iou_index) continue;
        for (int ri = 0; ri < LATHE_COCO_R; ri++) {
            double v = r->precision[((((size_t)t * LATHE_COCO_R + ri) * K + k) * LATHE_COCO_A + 0) * LATHE_COCO_M + 2];
            if (v > -1) sum += v, cnt++;
        }
    }
    return cnt ? sum / (double)cnt : -1;
}

cJSON *lathe_coco_report(const lathe_coco_data *d, const lathe_coco_result *r) {
    static const char *const names[12] = {"AP", "AP50", "AP75", "AP_small", "AP_medium", "AP_large",
                                          "AR1", "AR10", "AR100", "AR_small", "AR_medium", "AR_large"};
    cJSON *o = cJSON_CreateObject();
    cJSON *m = cJSON_AddObjectToObject(o, "metrics");
    for (int s = 0; s < 12; s++) cJSON_AddNumberToObject(m, names[s], r->stats[s]);
    cJSON_AddNumberToObject(o, "images", (double)d->nimages);
    cJSON_AddNumberToObject(o, "ground_truth", (double)d->ngt);
    cJSON_AddNumberToObject(o, "detections", (double)d->ndt);
    cJSON *classes = cJSON_AddArrayToObject(o, "classes");
    for (size_t k = 0; k < d->ncategories; k++) {
        cJSON *c = cJSON_CreateObject();
        cJSON_AddNumberToObject(c, "id", (double)d->categories[k]);
        cJSON_AddStringToObject(c, "name", d->category_names[k]);
        cJSON_AddNumberToObject(c, "AP", lathe_coco_category_ap(r, k, -1));
        cJSON_AddNumberToObject(c, "AP50", lathe_coco_category_ap(r, k, 0));
        cJSON *curve = cJSON_AddArrayToObject(c, "pr_curve_iou50"); /* precision at recall 0, 0.01, ..., 1 */
        for (int ri = 0; ri < LATHE_COCO_R; ri++)
            cJSON_AddItemToArray(curve, cJSON_CreateNumber(
                r->precision[((((size_t)0 * LATHE_COCO_R + ri) * r->ncategories + k) * LATHE_COCO_A) * LATHE_COCO_M + 2]));
        cJSON_AddItemToArray(classes, c);
    }
    return o;
}
