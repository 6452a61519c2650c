/* assign.c - task-aligned assignment (assign.h). Per box: metrics of the anchors inside it, a
 * partial selection of the top k (ties to the lower anchor index), then per anchor the box with
 * the highest IoU among those that chose it, then the per-box normalization. */
#include "assign.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/nms.h"
#include "libcore/base/error.h"

int lathe_assign_tal(const lathe_assign_opts *o, int A, int C, const float *points, const float *scores,
                     const float *pred, int G, const float *gt, const int32_t *gt_labels, int32_t *assigned,
                     float *target_score) {
    for (int a = 0; a < A; a++) assigned[a] = -1, target_score[a] = 0;
    if (G == 0 || A == 0) return 0;
    for (int g = 0; g < G; g++)
        if (gt_labels[g] < 0 || gt_labels[g] >= C) return lathe_fail(LATHE_EINVAL, "box %d has label %d of %d classes", g, gt_labels[g], C);
    float *metric = malloc(sizeof(float) * (size_t)A * G), *iou = malloc(sizeof(float) * (size_t)A * G);
    uint8_t *chosen = calloc((size_t)A * G, 1);
    int *cand = malloc(sizeof(int) * (size_t)A);
    if (!metric || !iou || !chosen || !cand) {
        free(metric), free(iou), free(chosen), free(cand);
        return lathe_fail(LATHE_ENOMEM, "assignment of %d anchors to %d boxes", A, G);
    }
    int k = o->topk > 0 ? o->topk : 10;
    for (int g = 0; g < G; g++) {
        const float *b = gt + 4 * (size_t)g;
        int nc = 0;
        for (int a = 0; a < A; a++) {
            size_t at = (size_t)g * A + a;
            float px = points[2 * a], py = points[2 * a + 1];
            int inside = px > b[0] && px < b[2] && py > b[1] && py < b[3];
            iou[at] = lathe_k_box_iou(pred + 4 * (size_t)a, b);
            metric[at] = inside ? powf(scores[(size_t)a * C + gt_labels[g]], o->alpha) * powf(iou[at], o->beta) : -1;
            if (inside) cand[nc++] = a;
        }
        /* the top k candidates by metric (ties: lower anchor first), by selection */
        for (int s = 0; s < k && s < nc; s++) {
            int best = s;
            for (int j = s + 1; j < nc; j++) {
                float mj = metric[(size_t)g * A + cand[j]], mb = metric[(size_t)g * A + cand[best]];
                if (mj > mb || (mj == mb && cand[j] < cand[best])) best = j;
            }
            int t = cand[s];
            cand[s] = cand[best], cand[best] = t;
            chosen[(size_t)g * A + cand[s]] = 1;
        }
    }
    int positives = 0;
    for (int a = 0; a < A; a++) { /* an anchor chosen by several boxes keeps the best-overlapping one */
        int best = -1;
        for (int g = 0; g < G; g++)
            if (chosen[(size_t)g * A + a] && (best < 0 || iou[(size_t)g * A + a] > iou[(size_t)best * A + a])) best = g;
        assigned[a] = best;
        positives += best >= 0;
    }
    for (int g = 0; g < G; g++) { /* normalize each box's metrics by its best metric and best IoU */
        float max_m = 0, max_iou = 0;
        for (int a = 0; a < A; a++)
            if (assigned[a] == g) {
                max_m = fmaxf(max_m, metric[(size_t)g * A + a]);
                max_iou = fmaxf(max_iou, iou[(size_t)g * A + a]);
            }
        for (int a = 0; a < A; a++)
            if (assigned[a] == g) target_score[a] = max_m > 0 ? metric[(size_t)g * A + a] / max_m * max_iou : 0;
    }
    free(metric), free(iou), free(chosen), free(cand);
    return positives;
}
