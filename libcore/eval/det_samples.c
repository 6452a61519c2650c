/* det_samples.c - the sample images of the detection report (det_report.h): the images with the most
 * errors at a score threshold, drawn at their stored pixels (a tiled dataset's whole images, put back
 * together from the tiles) with predictions and ground truth. A
 * ground truth here is missed when no prediction of its class covers it at IoU >= 0.5, and a
 * prediction false when no ground truth of its class does: plain overlap, no one-to-one matching,
 * so the picture reads the same as the rule. */
#include "det_report.h"

#include <stdint.h>
#include <stdio.h> /* asprintf: the build defines _GNU_SOURCE */
#include <stdlib.h>
#include <string.h>

#include "det_report_internal.h"
#include "draw.h"
#include "libcore/base/error.h"
#include "libcore/io/dataset.h"

typedef struct {
    size_t img; /* index in d->images */
    size_t missed, false_positives;
} ranked;

static int cmp_ranked(const void *x, const void *y) { /* most errors first, then image id (d->images is sorted) */
    const ranked *p = x, *q = y;
    size_t a = p->missed + p->false_positives, b = q->missed + q->false_positives;
    if (a != b) return a > b ? -1 : 1;
    return (p->img > q->img) - (p->img < q->img);
}

static int is_missed(const lathe_coco_data *d, const det_index *ix, size_t i, const lathe_coco_ann *gt, float thr) {
    if (!det_counts(gt)) return 0;
    for (size_t j = ix->dt_start[i]; j < ix->dt_start[i + 1]; j++) {
        const lathe_coco_ann *dt = &d->dt[ix->dt[j]];
        if (dt->score >= thr && dt->category_id == gt->category_id && lathe_coco_iou(dt, gt, 0) >= LATHE_DET_MATCH_IOU)
            return 0;
    }
    return 1;
}

static int is_false_positive(const lathe_coco_data *d, const det_index *ix, size_t i, const lathe_coco_ann *dt) {
    for (size_t g = ix->gt_start[i]; g < ix->gt_start[i + 1]; g++) {
        const lathe_coco_ann *gt = &d->gt[ix->gt[g]];
        if (gt->category_id == dt->category_id && lathe_coco_iou(dt, gt, gt->iscrowd) >= LATHE_DET_MATCH_IOU) return 0;
    }
    return 1;
}

/* The images worth showing (ground truth, or a detection >= thr), most errors first. */
static size_t rank_images(const lathe_coco_data *d, const det_index *ix, float thr, ranked *out) {
    size_t n = 0;
    for (size_t i = 0; i < ix->nimages; i++) {
        ranked r = {i, 0, 0};
        size_t shown = ix->gt_start[i + 1] - ix->gt_start[i];
        for (size_t g = ix->gt_start[i]; g < ix->gt_start[i + 1]; g++)
            r.missed += is_missed(d, ix, i, &d->gt[ix->gt[g]], thr);
        for (size_t j = ix->dt_start[i]; j < ix->dt_start[i + 1]; j++) {
            const lathe_coco_ann *dt = &d->dt[ix->dt[j]];
            if (!(dt->score >= thr)) continue;
            shown++;
            r.false_positives += is_false_positive(d, ix, i, dt);
        }
        if (shown) out[n++] = r;
    }
    if (n) qsort(out, n, sizeof *out, cmp_ranked);
    return n;
}

typedef struct {
    int64_t image_id;
    uint64_t index; /* the dataset sample */
} id_sample;

static int cmp_id_sample(const void *x, const void *y) {
    const id_sample *p = x, *q = y;
    if (p->image_id != q->image_id) return p->image_id < q->image_id ? -1 : 1;
    return (p->index > q->index) - (p->index < q->index);
}

/* The split's samples by image id (lathe_dataset_image_ids, as lathe_coco_load_dataset). */
static int split_samples(lathe_dataset *ds, int split, id_sample **out, size_t *n) {
    uint64_t count = lathe_dataset_count(ds);
    int64_t *image_ids = NULL;
    *n = 0;
    int rc = lathe_dataset_image_ids(ds, &image_ids);
    if (!rc && !(*out = malloc((count + 1) * sizeof **out)))
        rc = lathe_fail(LATHE_ENOMEM, "%llu sample ids", (unsigned long long)count);
    for (uint64_t i = 0; !rc && i < count; i++) {
        lathe_dataset_sample s;
        if ((rc = lathe_dataset_get(ds, i, 0, &s))) break; /* the split */
        if (s.split == split) (*out)[(*n)++] = (id_sample){image_ids[i], i};
        lathe_dataset_sample_free(&s);
    }
    free(image_ids);
    if (!rc && *n) qsort(*out, *n, sizeof **out, cmp_id_sample);
    return rc;
}

/* The first sample of the image (tiles share an image id: the first is the first tile), or -1. */
static int64_t find_sample(const id_sample *v, size_t n, int64_t image_id) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v[mid].image_id < image_id) lo = mid + 1;
        else hi = mid;
    }
    return lo < n && v[lo].image_id == image_id ? (int64_t)v[lo].index : -1;
}

/* A box in source pixels (COCO x, y, w, h) at stored pixels: stored = (source - tile origin) * scale + pad. */
static lathe_drawn_box to_stored(const lathe_coco_ann *a, const lathe_meta *m, long cls, size_t K, int kind) {
    double sx = m->scale_x > 0 ? m->scale_x : 1, sy = m->scale_y > 0 ? m->scale_y : 1;
    lathe_drawn_box b;
    b.x1 = (float)((a->x - m->tile_x) * sx + m->pad_x), b.x2 = (float)((a->x + a->w - m->tile_x) * sx + m->pad_x);
    b.y1 = (float)((a->y - m->tile_y) * sy + m->pad_y), b.y2 = (float)((a->y + a->h - m->tile_y) * sy + m->pad_y);
    b.score = kind == LATHE_DRAWN_PREDICTION ? (float)a->score : -1;
    /* a category d lacks keeps its id when that cannot be taken for a class index */
    int outside = a->category_id < 0 || (a->category_id >= (int64_t)K && a->category_id <= INT32_MAX);
    b.label = cls >= 0 ? (int32_t)cls : outside ? (int32_t)a->category_id : -1;
    b.kind = kind;
    return b;
}

/* RGB pixels of a sample: its own when RGB, grey spread into rgb_buf (which the caller frees). */
static int rgb_pixels(const lathe_dataset_sample *s, uint8_t **rgb_buf, const uint8_t **rgb) {
    if (s->pixels && s->channels == 3) {
        *rgb = s->pixels;
        return 0;
    }
    if (!s->pixels || s->channels != 1)
        return lathe_fail(LATHE_EUNSUPPORTED, "sample %llu: %d channels, not RGB or grey", (unsigned long long)s->index,
                          s->channels);
    size_t n = (size_t)s->width * s->height;
    if (!(*rgb_buf = malloc(3 * n + 1)))
        return lathe_fail(LATHE_ENOMEM, "RGB copy of sample %llu", (unsigned long long)s->index);
    for (size_t p = 0; p < n; p++) memset(*rgb_buf + 3 * p, s->pixels[p], 3);
    *rgb = *rgb_buf;
    return 0;
}

/* Draws image r (dataset sample `index`; a tiled dataset's whole image) into item. */
static int draw_sample(lathe_dataset *ds, uint64_t index, const lathe_coco_data *d, const det_index *ix,
                       const ranked *r, float thr, lathe_det_sample_image *item) {
    lathe_dataset_sample s;
    int rc = lathe_dataset_get_whole(ds, index, LATHE_READ_PIXELS | LATHE_READ_META | LATHE_READ_DECODE, &s);
    if (rc) return rc;
    size_t i = r->img, K = d->ncategories, n = 0;
    size_t cap = ix->gt_start[i + 1] - ix->gt_start[i] + ix->dt_start[i + 1] - ix->dt_start[i];
    lathe_drawn_box *boxes = malloc((cap + 1) * sizeof *boxes);
    uint8_t *rgb_buf = NULL;
    const uint8_t *rgb = NULL;
    if (!boxes) rc = lathe_fail(LATHE_ENOMEM, "boxes of sample %llu", (unsigned long long)index);
    if (!rc) rc = rgb_pixels(&s, &rgb_buf, &rgb);
    for (size_t g = ix->gt_start[i]; !rc && g < ix->gt_start[i + 1]; g++) {
        const lathe_coco_ann *gt = &d->gt[ix->gt[g]];
        int kind = is_missed(d, ix, i, gt, thr) ? LATHE_DRAWN_MISSED : LATHE_DRAWN_TRUTH;
        boxes[n++] = to_stored(gt, &s.meta, ix->gt_class[ix->gt[g]], K, kind);
    }
    for (size_t j = ix->dt_start[i]; !rc && j < ix->dt_start[i + 1]; j++)
        if (d->dt[ix->dt[j]].score >= thr)
            boxes[n++] = to_stored(&d->dt[ix->dt[j]], &s.meta, ix->dt_class[ix->dt[j]], K, LATHE_DRAWN_PREDICTION);
    if (!rc)
        rc = lathe_draw_boxes(rgb, s.width, s.height, boxes, n, (const char *const *)d->category_names, (int)K,
                              &item->png);
    char *caption = NULL;
    if (!rc && asprintf(&caption, "image %lld%s%s%s: %zu missed, %zu false positive%s", (long long)d->images[i],
                        s.meta.source ? " (" : "", s.meta.source ? s.meta.source : "", s.meta.source ? ")" : "",
                        r->missed, r->false_positives, r->false_positives == 1 ? "" : "s") < 0) {
        caption = NULL;
        lathe_png_free(&item->png);
        rc = lathe_fail(LATHE_ENOMEM, "caption");
    }
    item->caption = caption;
    free(boxes), free(rgb_buf);
    lathe_dataset_sample_free(&s);
    return rc;
}

int lathe_det_report_samples(lathe_dataset *ds, int split, const lathe_coco_data *d, float score_thr, int max_images,
                             lathe_det_samples *out) {
    memset(out, 0, sizeof *out);
    if (!ds || !d) return lathe_fail(LATHE_EINVAL, "sample images need a dataset and detections");
    if (max_images < 0) return lathe_fail(LATHE_EINVAL, "max_images %d", max_images);
    if (max_images == 0) return 0;
    det_index ix;
    int rc = det_index_build(d, &ix);
    if (rc) return rc;
    ranked *order = malloc((d->nimages + 1) * sizeof *order);
    id_sample *ids = NULL;
    size_t nranked = 0, nids = 0;
    if (!order) rc = lathe_fail(LATHE_ENOMEM, "ranking %zu images", d->nimages);
    if (!rc) nranked = rank_images(d, &ix, score_thr, order);
    if (!rc && nranked) rc = split_samples(ds, split, &ids, &nids);
    size_t cap = nranked < (size_t)max_images ? nranked : (size_t)max_images;
    if (!rc && cap && !(out->items = calloc(cap, sizeof *out->items)))
        rc = lathe_fail(LATHE_ENOMEM, "%zu samples", cap);
    for (size_t r = 0; !rc && r < nranked && out->n < cap; r++) {
        int64_t index = find_sample(ids, nids, d->images[order[r].img]);
        if (index < 0) continue; /* an image of d that this split lacks */
        rc = draw_sample(ds, (uint64_t)index, d, &ix, &order[r], score_thr, &out->items[out->n]);
        if (!rc) out->n++;
    }
    free(order), free(ids);
    det_index_free(&ix);
    if (rc || !out->n) lathe_det_samples_free(out); /* nothing drawn leaves nothing to free */
    return rc;
}

void lathe_det_samples_free(lathe_det_samples *s) {
    for (size_t i = 0; s->items && i < s->n; i++) {
        free((char *)s->items[i].caption); /* captions of lathe_det_report_samples are its own */
        lathe_png_free(&s->items[i].png);
    }
    free(s->items);
    memset(s, 0, sizeof *s);
}
