/* flip_fuse.c - fusing a plain and a mirrored view's detections (flip_fuse.h). Quadratic in one
 * image's detections per view, which max_det keeps small. */
#include "flip_fuse.h"

#include <stdlib.h>
#include <string.h>

#include "kernels/nms.h"
#include "libcore/base/error.h"

void lathe_det_flip_inputs(float *x, int n, int c, int h, int w) {
    for (long row = 0; row < (long)n * c * h; row++) {
        float *p = x + row * w;
        for (int i = 0, j = w - 1; i < j; i++, j--) {
            float t = p[i];
            p[i] = p[j], p[j] = t;
        }
    }
}

void lathe_det_unflip(lathe_detection *d, int n, int w) {
    for (int i = 0; i < n; i++) {
        float x1 = d[i].box[0];
        d[i].box[0] = (float)w - d[i].box[2], d[i].box[2] = (float)w - x1;
    }
}

static int by_score(const void *x, const void *y) { /* descending; ties by label then box: stable everywhere */
    const lathe_detection *a = x, *b = y;
    if (a->score != b->score) return a->score < b->score ? 1 : -1;
    if (a->label != b->label) return a->label < b->label ? -1 : 1;
    return memcmp(a->box, b->box, sizeof a->box);
}

typedef struct {
    float iou, score; /* the pair's overlap and summed score */
    int i, j;
} pair;

static int by_overlap(const void *x, const void *y) { /* IoU, then summed score, descending */
    const pair *p = x, *q = y;
    if (p->iou != q->iou) return p->iou < q->iou ? 1 : -1;
    if (p->score != q->score) return p->score < q->score ? 1 : -1;
    if (p->i != q->i) return p->i < q->i ? -1 : 1;
    return (p->j > q->j) - (p->j < q->j);
}

int lathe_det_fuse_views(const lathe_detection *a, int na, const lathe_detection *b, int nb, int max_det,
                         lathe_detection *out) {
    /* the pairs that may be one object, the closest first: the views play the same part, so the
     * result does not depend on which is a and which b (an image and its mirror fuse alike) */
    pair *pairs = malloc(sizeof *pairs * ((size_t)na * (size_t)nb + 1));
    unsigned char *used = calloc((size_t)na + (size_t)nb + 1, 1);
    if (!pairs || !used) {
        free(pairs), free(used);
        return lathe_fail(LATHE_ENOMEM, "fusing %d and %d detections", na, nb);
    }
    size_t np = 0;
    for (int i = 0; i < na; i++)
        for (int j = 0; j < nb; j++) {
            float o = a[i].label == b[j].label ? lathe_k_box_iou(a[i].box, b[j].box) : 0;
            if (o >= LATHE_FLIP_MATCH_IOU) pairs[np++] = (pair){o, a[i].score + b[j].score, i, j};
        }
    qsort(pairs, np, sizeof *pairs, by_overlap);
    int n = 0;
    for (size_t k = 0; k < np; k++) {
        const lathe_detection *p = &a[pairs[k].i], *q = &b[pairs[k].j];
        if (used[pairs[k].i] || used[na + pairs[k].j]) continue;
        used[pairs[k].i] = used[na + pairs[k].j] = 1;
        lathe_detection f = *p;
        float s = p->score + q->score;
        for (int c = 0; c < 4; c++) f.box[c] = s > 0 ? (p->score * p->box[c] + q->score * q->box[c]) / s : p->box[c];
        f.score = s / 2;
        out[n++] = f;
    }
    for (int i = 0; i < na + nb; i++) /* seen by one view only */
        if (!used[i]) out[n] = i < na ? a[i] : b[i - na], out[n++].score /= 2;
    free(pairs), free(used);
    qsort(out, (size_t)n, sizeof *out, by_score);
    return n < max_det ? n : max_det;
}
