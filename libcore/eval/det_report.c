/* det_report.c - the detection report's confusion matrix and best-F1 points (det_report.h), and the
 * grouping of boxes by image they and the sample images share (det_report_internal.h). Both match
 * greedily by score, each image on its own, as COCOeval does: a detection takes the unused ground
 * truth it overlaps most at IoU >= 0.5. */
#include "det_report.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "det_report_internal.h"
#include "libcore/base/error.h"

/* ---- boxes by image ---- */

typedef struct {
    size_t img, at; /* image index, index in d->gt or d->dt */
    double score;
} keyed;

static int cmp_keyed(const void *x, const void *y) { /* image, score descending, input order */
    const keyed *p = x, *q = y;
    if (p->img != q->img) return p->img < q->img ? -1 : 1;
    if (p->score != q->score) return p->score > q->score ? -1 : 1;
    return (p->at > q->at) - (p->at < q->at);
}

static long find_id(const int64_t *v, size_t n, int64_t key) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v[mid] < key) lo = mid + 1;
        else hi = mid;
    }
    return lo < n && v[lo] == key ? (long)lo : -1;
}

/* One kind of box (ground truth: scores all 0) grouped into order, start and class. */
static void group(const lathe_coco_data *d, const lathe_coco_ann *a, size_t n, int scored, keyed *buf, size_t *order,
                  size_t *start, long *cls) {
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        cls[i] = find_id(d->categories, d->ncategories, a[i].category_id);
        long img = find_id(d->images, d->nimages, a[i].image_id);
        if (img < 0 || (scored && isnan(a[i].score))) continue;
        buf[m++] = (keyed){(size_t)img, i, scored ? a[i].score : 0};
    }
    if (m) qsort(buf, m, sizeof *buf, cmp_keyed);
    memset(start, 0, (d->nimages + 1) * sizeof *start);
    for (size_t i = 0; i < m; i++) order[i] = buf[i].at, start[buf[i].img + 1]++;
    for (size_t i = 0; i < d->nimages; i++) start[i + 1] += start[i];
}

int det_index_build(const lathe_coco_data *d, det_index *ix) {
    memset(ix, 0, sizeof *ix);
    size_t I = d->nimages, ng = d->ngt, nd = d->ndt;
    /* one block: gt (ng), dt (nd), gt_start and dt_start (I + 1 each), then gt_class (ng), dt_class (nd) */
    size_t nsize = ng + nd + 2 * (I + 1);
    char *block = malloc(nsize * sizeof(size_t) + (ng + nd) * sizeof(long) + 1);
    keyed *buf = malloc(((ng > nd ? ng : nd) + 1) * sizeof *buf);
    if (!block || !buf) {
        free(block), free(buf);
        return lathe_fail(LATHE_ENOMEM, "grouping %zu boxes by image", ng + nd);
    }
    ix->nimages = I;
    ix->gt = (size_t *)block, ix->dt = ix->gt + ng, ix->gt_start = ix->dt + nd, ix->dt_start = ix->gt_start + I + 1;
    ix->gt_class = (long *)(ix->dt_start + I + 1), ix->dt_class = ix->gt_class + ng;
    group(d, d->gt, ng, 0, buf, ix->gt, ix->gt_start, ix->gt_class);
    group(d, d->dt, nd, 1, buf, ix->dt, ix->dt_start, ix->dt_class);
    free(buf);
    return 0;
}

void det_index_free(det_index *ix) {
    free(ix->gt); /* the block */
    memset(ix, 0, sizeof *ix);
}

/* ---- what a detection can overlap ---- */

/* Image i's ground truth in a grid of square cells by top-left corner, so that a detection is compared
 * only with the boxes near it, not with every box of the image (a million boxes on a few images would
 * be quadratic). A box of width w and height h overlaps a detection at (x, y, dw, dh) only if its
 * corner lies in (x - w, x + dw) x (y - h, y + dh), so in the cells that cover
 * (x - wmax, x + dw) x (y - hmax, y + dh) for the image's widest and tallest boxes; cells are as large
 * as those, so a detection visits a few. Boxes with a coordinate that is not finite go to one more
 * cell that every detection visits, so the matches are exactly those of a scan of every box. */
typedef struct {
    size_t *start;   /* each cell's first entry in g (ncells + 2: the extra cell last) */
    size_t *g;       /* positions in ix->gt, cell by cell, in image order within a cell */
    size_t *cell;    /* scratch: each box's cell */
    size_t cap;      /* cells the scratch holds */
    size_t nx, ny;
    double x0, y0, size, wmax, hmax;
} grid;

static int finite_box(const lathe_coco_ann *a) { return isfinite(a->x) && isfinite(a->y) && isfinite(a->w) && isfinite(a->h); }

static void grid_image(const lathe_coco_data *d, const det_index *ix, size_t i, grid *gr) {
    size_t g0 = ix->gt_start[i], g1 = ix->gt_start[i + 1];
    double x0 = INFINITY, y0 = INFINITY, x1 = -INFINITY, y1 = -INFINITY, wmax = 0, hmax = 0;
    for (size_t g = g0; g < g1; g++) {
        const lathe_coco_ann *a = &d->gt[ix->gt[g]];
        if (!finite_box(a)) continue;
        x0 = fmin(x0, a->x), y0 = fmin(y0, a->y), x1 = fmax(x1, a->x), y1 = fmax(y1, a->y);
        wmax = fmax(wmax, a->w), hmax = fmax(hmax, a->h);
    }
    double size = fmax(fmax(wmax, hmax), 1);
    if (x0 > x1) x0 = x1 = y0 = y1 = 0; /* no finite box */
    while (((x1 - x0) / size + 1) * ((y1 - y0) / size + 1) > (double)gr->cap) size *= 2;
    gr->nx = (size_t)((x1 - x0) / size) + 1, gr->ny = (size_t)((y1 - y0) / size) + 1;
    gr->x0 = x0, gr->y0 = y0, gr->size = size, gr->wmax = wmax, gr->hmax = hmax;
    size_t ncells = gr->nx * gr->ny;
    memset(gr->start, 0, (ncells + 2) * sizeof *gr->start);
    for (size_t g = g0; g < g1; g++) { /* counting sort by cell, stable */
        const lathe_coco_ann *a = &d->gt[ix->gt[g]];
        size_t c = ncells;
        if (finite_box(a)) {
            size_t cx = (size_t)((a->x - x0) / size), cy = (size_t)((a->y - y0) / size);
            c = (cy < gr->ny ? cy : gr->ny - 1) * gr->nx + (cx < gr->nx ? cx : gr->nx - 1);
        }
        gr->cell[g - g0] = c, gr->start[c + 1]++;
    }
    for (size_t c = 0; c <= ncells; c++) gr->start[c + 1] += gr->start[c];
    for (size_t g = g0; g < g1; g++) gr->g[gr->start[gr->cell[g - g0]]++] = g;
    for (size_t c = ncells + 1; c > 0; c--) gr->start[c] = gr->start[c - 1]; /* back to each cell's first */
    gr->start[0] = 0;
}

/* The cells [lo, hi] of one axis that can hold the corner of a box meeting [from, to); 0 when none. */
static int cell_range(double from, double to, double o, double size, size_t n, size_t *lo, size_t *hi) {
    double a = floor((from - o) / size), b = floor((to - o) / size);
    if (!(b >= 0) || !(a <= (double)(n - 1))) return 0;
    *lo = a > 0 ? (size_t)a : 0, *hi = b < (double)(n - 1) ? (size_t)b : n - 1;
    return 1;
}

/* Writes to near the ground truth positions of the image that can overlap dt (at most all of them);
 * returns their count. */
static size_t grid_near(const grid *gr, const lathe_coco_ann *dt, size_t *near) {
    size_t lx = 0, hx = gr->nx - 1, ly = 0, hy = gr->ny - 1, ncells = gr->nx * gr->ny, n = 0;
    int any = !finite_box(dt) || /* a detection that is not finite is compared with everything */
              (cell_range(dt->x - gr->wmax, dt->x + dt->w, gr->x0, gr->size, gr->nx, &lx, &hx) &&
               cell_range(dt->y - gr->hmax, dt->y + dt->h, gr->y0, gr->size, gr->ny, &ly, &hy));
    for (size_t cy = ly; any && cy <= hy; cy++) /* a row's cells lx..hx are one run of g */
        for (size_t k = gr->start[cy * gr->nx + lx]; k < gr->start[cy * gr->nx + hx + 1]; k++) near[n++] = gr->g[k];
    for (size_t k = gr->start[ncells]; k < gr->start[ncells + 1]; k++) near[n++] = gr->g[k];
    return n;
}

/* The ground truth g beats the match m so far at IoU v: a higher IoU, or an equal one earlier in
 * the image's order (the tie-break of a scan in that order). */
static int better(double v, size_t g, double best, long m) { return v > best || (v == best && (long)g < m); }

/* ---- confusion matrix ---- */

/* Adds image i's cells to cm (K + 1, K + 1). used: scratch of at least the image's ground truth. */
static void confusion_image(const lathe_coco_data *d, const det_index *ix, size_t i, uint8_t *used, grid *gr,
                            size_t *near, double *cm) {
    size_t K = d->ncategories, g0 = ix->gt_start[i], g1 = ix->gt_start[i + 1];
    memset(used, 0, g1 - g0);
    grid_image(d, ix, i, gr);
    for (size_t j = ix->dt_start[i]; j < ix->dt_start[i + 1]; j++) {
        const lathe_coco_ann *dt = &d->dt[ix->dt[j]];
        long dc = ix->dt_class[ix->dt[j]];
        if (dc < 0 || !(dt->score >= LATHE_DET_CONFUSION_SCORE)) continue;
        long m = -1, covered = 0;
        double best = -1;
        for (size_t e = 0, n = grid_near(gr, dt, near); e < n; e++) {
            size_t g = near[e]; /* any class: a wrong class lands off the diagonal */
            const lathe_coco_ann *gt = &d->gt[ix->gt[g]];
            if (ix->gt_class[ix->gt[g]] < 0) continue;
            if (!det_counts(gt)) {
                covered |= lathe_coco_iou(dt, gt, 1) >= LATHE_DET_MATCH_IOU;
                continue;
            }
            double v = lathe_coco_iou(dt, gt, 0);
            if (!used[g - g0] && v >= LATHE_DET_MATCH_IOU && better(v, g, best, m)) best = v, m = (long)g;
        }
        if (m >= 0) {
            used[m - (long)g0] = 1;
            cm[(size_t)ix->gt_class[ix->gt[m]] * (K + 1) + (size_t)dc]++;
        } else if (!covered) {
            cm[K * (K + 1) + (size_t)dc]++; /* a false positive: background row */
        }
    }
    for (size_t g = g0; g < g1; g++) {
        long gc = ix->gt_class[ix->gt[g]];
        if (gc >= 0 && det_counts(&d->gt[ix->gt[g]]) && !used[g - g0]) cm[(size_t)gc * (K + 1) + K]++; /* missed */
    }
}

static cJSON *confusion_json(const lathe_coco_data *d, const det_index *ix, uint8_t *used, grid *gr, size_t *near) {
    size_t K = d->ncategories;
    double *cm = calloc((K + 1) * (K + 1), sizeof *cm);
    const char **labels = malloc((K + 1) * sizeof *labels);
    cJSON *o = cJSON_CreateObject(), *matrix = cJSON_CreateArray();
    int ok = cm && labels && o && matrix;
    for (size_t i = 0; ok && i < ix->nimages; i++) confusion_image(d, ix, i, used, gr, near, cm);
    for (size_t k = 0; ok && k < K; k++) labels[k] = d->category_names[k];
    if (ok) labels[K] = "background";
    for (size_t r = 0; ok && r <= K; r++)
        ok = cJSON_AddItemToArray(matrix, cJSON_CreateDoubleArray(cm + r * (K + 1), (int)K + 1));
    ok = ok && cJSON_AddNumberToObject(o, "iou", LATHE_DET_MATCH_IOU) &&
         cJSON_AddNumberToObject(o, "score_threshold", LATHE_DET_CONFUSION_SCORE) &&
         cJSON_AddItemToObject(o, "labels", cJSON_CreateStringArray(labels, (int)K + 1));
    if (ok && (ok = cJSON_AddItemToObject(o, "matrix", matrix))) matrix = NULL;
    free(cm), free(labels);
    cJSON_Delete(matrix);
    if (!ok) cJSON_Delete(o);
    return ok ? o : NULL;
}

/* ---- best F1 ---- */

enum { FALSE_POSITIVE, TRUE_POSITIVE, IGNORED };

typedef struct {
    long cls;
    double score;
    size_t order; /* position in ix->dt: the tie-break */
    int outcome;
} outcome_rec;

static int cmp_outcome(const void *x, const void *y) { /* class, score descending, order */
    const outcome_rec *p = x, *q = y;
    if (p->cls != q->cls) return p->cls < q->cls ? -1 : 1;
    if (p->score != q->score) return p->score > q->score ? -1 : 1;
    return (p->order > q->order) - (p->order < q->order);
}

/* Same-class matching of image i's detections into rec (one per detection of a known class);
 * counts the ground truth that can be missed into npos (K). Returns the records written. */
static size_t match_image(const lathe_coco_data *d, const det_index *ix, size_t i, uint8_t *used, grid *gr,
                          size_t *near, outcome_rec *rec, size_t *npos) {
    size_t g0 = ix->gt_start[i], g1 = ix->gt_start[i + 1], n = 0;
    memset(used, 0, g1 - g0);
    grid_image(d, ix, i, gr);
    for (size_t g = g0; g < g1; g++)
        if (ix->gt_class[ix->gt[g]] >= 0 && det_counts(&d->gt[ix->gt[g]])) npos[ix->gt_class[ix->gt[g]]]++;
    for (size_t j = ix->dt_start[i]; j < ix->dt_start[i + 1]; j++) {
        const lathe_coco_ann *dt = &d->dt[ix->dt[j]];
        long c = ix->dt_class[ix->dt[j]];
        if (c < 0) continue;
        long m = -1;
        double best = -1;
        size_t nn = grid_near(gr, dt, near);
        /* ignored ground truth only when nothing else matches; crowds may take many detections */
        for (int counted = 1; counted >= 0 && m < 0; counted--)
            for (size_t e = 0; e < nn; e++) {
                size_t g = near[e];
                const lathe_coco_ann *gt = &d->gt[ix->gt[g]];
                if (ix->gt_class[ix->gt[g]] != c || det_counts(gt) != counted || (used[g - g0] && !gt->iscrowd))
                    continue;
                double v = lathe_coco_iou(dt, gt, gt->iscrowd);
                if (v >= LATHE_DET_MATCH_IOU && better(v, g, best, m)) best = v, m = (long)g;
            }
        if (m >= 0) used[m - (long)g0] = 1;
        int outcome = m < 0 ? FALSE_POSITIVE : det_counts(&d->gt[ix->gt[m]]) ? TRUE_POSITIVE : IGNORED;
        rec[n++] = (outcome_rec){c, dt->score, j, outcome};
    }
    return n;
}

/* {threshold, f1, precision, recall} of the score threshold with the highest F1 over one class's
 * records (score descending); threshold null when no threshold finds a true positive. */
static cJSON *best_f1_json(const outcome_rec *rec, size_t n, size_t npos) {
    double tp = 0, fp = 0, f1 = 0, threshold = NAN, precision = 0, recall = 0;
    for (size_t s = 0; s < n && npos; s++) {
        if (rec[s].outcome == TRUE_POSITIVE) tp++;
        else if (rec[s].outcome == FALSE_POSITIVE) fp++;
        if (s + 1 < n && rec[s + 1].score == rec[s].score) continue; /* a threshold keeps all of a tie */
        if (tp + fp == 0) continue;
        double p = tp / (tp + fp), r = tp / (double)npos, f = p + r > 0 ? 2 * p * r / (p + r) : 0;
        if (f > f1) f1 = f, threshold = rec[s].score, precision = p, recall = r;
    }
    cJSON *o = cJSON_CreateObject();
    int ok = o && (isnan(threshold) ? cJSON_AddNullToObject(o, "threshold") != NULL
                                    : cJSON_AddNumberToObject(o, "threshold", threshold) != NULL);
    ok = ok && cJSON_AddNumberToObject(o, "f1", f1) && cJSON_AddNumberToObject(o, "precision", precision) &&
         cJSON_AddNumberToObject(o, "recall", recall);
    if (!ok) cJSON_Delete(o);
    return ok ? o : NULL;
}

/* Each class's best_f1 into best (K), NULL where the allocation failed. Returns 0 or -LATHE_ENOMEM. */
static int best_f1_all(const lathe_coco_data *d, const det_index *ix, uint8_t *used, grid *gr, size_t *near,
                       cJSON **best) {
    size_t K = d->ncategories, n = 0;
    outcome_rec *rec = malloc((d->ndt + 1) * sizeof *rec);
    size_t *npos = calloc(K + 1, sizeof *npos);
    if (!rec || !npos) {
        free(rec), free(npos);
        return lathe_fail(LATHE_ENOMEM, "best F1 of %zu detections", d->ndt);
    }
    for (size_t i = 0; i < ix->nimages; i++) n += match_image(d, ix, i, used, gr, near, rec + n, npos);
    if (n) qsort(rec, n, sizeof *rec, cmp_outcome);
    int rc = 0;
    for (size_t k = 0, s = 0; k < K; k++) {
        size_t e = s;
        while (e < n && rec[e].cls == (long)k) e++;
        if (!(best[k] = best_f1_json(rec + s, e - s, npos[k]))) rc = lathe_fail(LATHE_ENOMEM, "best F1");
        s = e;
    }
    free(rec), free(npos);
    return rc;
}

/* ---- the report ---- */

static void set_key(cJSON *o, const char *key, cJSON *v) {
    cJSON_DeleteItemFromObjectCaseSensitive(o, key);
    cJSON_AddItemToObject(o, key, v);
}

int lathe_det_report_extend(const lathe_coco_data *d, cJSON *report) {
    cJSON *classes = cJSON_GetObjectItemCaseSensitive(report, "classes"), *c;
    int objects = cJSON_IsArray(classes);
    cJSON_ArrayForEach(c, classes) objects &= cJSON_IsObject(c);
    if (!d) return lathe_fail(LATHE_EINVAL, "no detection data");
    if (!objects || (size_t)cJSON_GetArraySize(classes) != d->ncategories)
        return lathe_fail(LATHE_EINVAL, "the report's classes are not the %zu categories of the data", d->ncategories);
    size_t K = d->ncategories;
    det_index ix;
    int rc = det_index_build(d, &ix);
    if (rc) return rc;
    size_t most = 0; /* the most ground truth of one image: the scratch's size */
    for (size_t i = 0; i < ix.nimages; i++)
        if (ix.gt_start[i + 1] - ix.gt_start[i] > most) most = ix.gt_start[i + 1] - ix.gt_start[i];
    uint8_t *used = malloc(most + 1);
    size_t *near = malloc((most + 1) * sizeof *near);
    grid gr = {.cap = 4 * most + 1};
    gr.start = malloc((gr.cap + 2) * sizeof *gr.start), gr.g = malloc((most + 1) * sizeof *gr.g);
    gr.cell = malloc((most + 1) * sizeof *gr.cell);
    cJSON **best = calloc(K + 1, sizeof *best), *confusion = NULL;
    if (!used || !near || !gr.start || !gr.g || !gr.cell || !best) rc = lathe_fail(LATHE_ENOMEM, "detection report");
    if (!rc && !(confusion = confusion_json(d, &ix, used, &gr, near))) rc = lathe_fail(LATHE_ENOMEM, "confusion matrix");
    if (!rc) rc = best_f1_all(d, &ix, used, &gr, near, best);
    if (!rc) { /* every piece is built: only now is the report changed */
        set_key(report, "confusion", confusion);
        confusion = NULL;
        size_t k = 0;
        cJSON_ArrayForEach(c, classes) set_key(c, "best_f1", best[k]), best[k++] = NULL;
    }
    for (size_t k = 0; best && k < K; k++) cJSON_Delete(best[k]);
    cJSON_Delete(confusion);
    free(best), free(used), free(near), free(gr.start), free(gr.g), free(gr.cell);
    det_index_free(&ix);
    return rc;
}
