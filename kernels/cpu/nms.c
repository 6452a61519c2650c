/* nms.c - class-aware NMS on the CPU (kernels/nms.h). */
#include <stdlib.h>

#include "kernels/nms.h"

/* qsort has no context argument: sort (score, index) pairs */
typedef struct {
    float score;
    int32_t index;
} cand;

static int by_score(const void *a, const void *b) {
    const cand *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    return (x->index > y->index) - (x->index < y->index);
}

float lathe_k_box_iou(const float *a, const float *b) {
    float w = (a[2] < b[2] ? a[2] : b[2]) - (a[0] > b[0] ? a[0] : b[0]);
    float h = (a[3] < b[3] ? a[3] : b[3]) - (a[1] > b[1] ? a[1] : b[1]);
    if (w <= 0 || h <= 0) return 0;
    float inter = w * h, ua = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
    return ua > 0 ? inter / ua : 0;
}

int lathe_k_nms_cpu(const float *boxes, const float *scores, const int32_t *classes, int n, float iou_thr,
                    float score_thr, int max_out, int32_t *keep) {
    cand *c = malloc(sizeof *c * (size_t)(n > 0 ? n : 1));
    if (!c) return -1;
    int m = 0;
    for (int i = 0; i < n; i++)
        if (scores[i] >= score_thr) c[m++] = (cand){scores[i], i};
    if (m > 1) qsort(c, (size_t)m, sizeof *c, by_score);
    int kept = 0;
    for (int i = 0; i < m && kept < max_out; i++) {
        const float *b = boxes + 4 * (size_t)c[i].index;
        int ok = 1;
        for (int k = 0; k < kept && ok; k++)
            ok = classes[keep[k]] != classes[c[i].index] || lathe_k_box_iou(boxes + 4 * (size_t)keep[k], b) <= iou_thr;
        if (ok) keep[kept++] = c[i].index;
    }
    free(c);
    return kept;
}
