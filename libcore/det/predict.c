/* predict.c - head outputs to detections (predict.h). */
#include "predict.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "decode.h"
#include "kernels/nms.h"
#include "libcore/base/error.h"

int lathe_det_head_init(lathe_det_head *hd, int h, int w, const int *strides, int nlevels, int bins, int classes) {
    memset(hd, 0, sizeof *hd);
    int strides_ok = strides != NULL;
    for (int l = 0; strides_ok && l < nlevels; l++) strides_ok = strides[l] >= 1;
    if (h < 1 || w < 1 || nlevels < 1 || bins < 2 || classes < 1 || !strides_ok)
        return lathe_fail(LATHE_EINVAL, "detection head: input %dx%d, %d levels, %d bins, %d classes, strides of at least 1",
                          w, h, nlevels, bins, classes);
    int A = lathe_det_anchors(h, w, strides, nlevels, NULL, NULL);
    hd->points = malloc(sizeof(float) * 2 * ((size_t)A + 1));
    hd->stride = malloc(sizeof(float) * ((size_t)A + 1));
    if (!hd->points || !hd->stride) {
        lathe_det_head_free(hd);
        return lathe_fail(LATHE_ENOMEM, "anchors");
    }
    lathe_det_anchors(h, w, strides, nlevels, hd->points, hd->stride);
    hd->A = A, hd->bins = bins, hd->classes = classes;
    return 0;
}

void lathe_det_head_free(lathe_det_head *hd) {
    free(hd->points), free(hd->stride);
    memset(hd, 0, sizeof *hd);
}

void lathe_det_predict_defaults(lathe_det_predict_opts *o) {
    o->conf = 0.001f, o->iou = 0.7f, o->max_det = 100, o->max_candidates = 3000;
}

typedef struct {
    float score;
    int32_t anchor, label;
} candidate;

static int by_score(const void *x, const void *y) { /* descending; ties by anchor then class: stable everywhere */
    const candidate *a = x, *b = y;
    if (a->score != b->score) return a->score < b->score ? 1 : -1;
    if (a->anchor != b->anchor) return a->anchor < b->anchor ? -1 : 1;
    return (a->label > b->label) - (a->label < b->label);
}

int lathe_det_predict(const lathe_det_head *hd, const lathe_det_predict_opts *o, const float *out, lathe_detection *dets) {
    int K = 4 * hd->bins + hd->classes, n = 0, cap = 1024;
    float logit_floor = o->conf > 0 && o->conf < 1 ? logf(o->conf / (1 - o->conf)) : -INFINITY;
    candidate *c = malloc(sizeof *c * (size_t)cap);
    if (!c) return lathe_fail(LATHE_ENOMEM, "candidates");
    for (int a = 0; a < hd->A; a++) {
        const float *cls = out + (size_t)a * K + 4 * hd->bins;
        for (int k = 0; k < hd->classes; k++) {
            if (!(cls[k] >= logit_floor)) continue; /* also drops NaN */
            if (n == cap) {
                candidate *g = realloc(c, sizeof *c * (size_t)(cap *= 2));
                if (!g) {
                    free(c);
                    return lathe_fail(LATHE_ENOMEM, "candidates");
                }
                c = g;
            }
            c[n++] = (candidate){1.0f / (1.0f + expf(-cls[k])), a, k};
        }
    }
    qsort(c, (size_t)n, sizeof *c, by_score);
    if (n > o->max_candidates) n = o->max_candidates;
    float *boxes = malloc(sizeof(float) * 4 * ((size_t)n + 1)), *scores = malloc(sizeof(float) * ((size_t)n + 1));
    int32_t *labels = malloc(sizeof(int32_t) * ((size_t)n + 1)), *keep = malloc(sizeof(int32_t) * ((size_t)o->max_det + 1));
    int kept = -1;
    if (boxes && scores && labels && keep) {
        int m = 0; /* candidates whose box is finite: NaN or infinite distance logits decode to no box */
        for (int i = 0; i < n; i++) {
            int a = c[i].anchor;
            float *b = boxes + 4 * m;
            lathe_det_decode(1, hd->bins, out + (size_t)a * K, hd->points + 2 * a, hd->stride + a, b);
            if (!(isfinite(b[0]) && isfinite(b[1]) && isfinite(b[2]) && isfinite(b[3]))) continue;
            scores[m] = c[i].score, labels[m] = c[i].label, m++;
        }
        kept = lathe_k_nms_cpu(boxes, scores, labels, m, o->iou, o->conf, o->max_det, keep);
        for (int i = 0; i < kept; i++) {
            memcpy(dets[i].box, boxes + 4 * keep[i], sizeof dets[i].box);
            dets[i].score = scores[keep[i]], dets[i].label = labels[keep[i]];
        }
    }
    free(c), free(boxes), free(scores), free(labels), free(keep);
    return kept < 0 ? lathe_fail(LATHE_ENOMEM, "detections") : kept;
}
