/* metrics.h - how well scores tell positives from the rest (the anomaly heads' and the fusion head's
 * reports, docs/MULTIMODAL.md): the area under the ROC curve (ties counted half, as scikit-learn's
 * roc_auc_score), average precision, MVTec AD's
 * per-region overlap (PRO: the mean share of each connected defect region above a threshold,
 * integrated over the false positive rate up to a limit and normalized by it), and the threshold
 * with the best F1. Exact: every distinct score is a threshold. */
#ifndef LATHE_ANOMALY_METRICS_H
#define LATHE_ANOMALY_METRICS_H
#include <stddef.h>
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif

/* AUROC of n scores against positive[i] (nonzero: a defect) into *auroc, or -1 when either class
 * is empty. Returns 0, -LATHE_EINVAL (a NaN score) or -LATHE_ENOMEM. */
int lathe_auroc(const float *score, const uint8_t *positive, size_t n, double *auroc);

/* Average precision of n scores against positive[i] into *ap (scikit-learn's average_precision_score:
 * the sum over thresholds of the recall gained times the precision there, ties taken together), or
 * -1 without a positive sample. Returns 0, -LATHE_EINVAL (a NaN score) or -LATHE_ENOMEM. */
int lathe_average_precision(const float *score, const uint8_t *positive, size_t n, double *ap);

/* PRO over n maps of h x w scores and their masks (nonzero: defect), regions 8-connected per image,
 * integrated for false positive rates 0..fpr_limit (MVTec AD uses 0.3) and divided by fpr_limit,
 * into *pro; -1 when there is no defect region or no good pixel. *regions (may be NULL) gets the
 * number of regions. Returns 0, -LATHE_EINVAL (a NaN score, fpr_limit outside (0, 1]) or -LATHE_ENOMEM. */
int lathe_pro(const float *maps, const uint8_t *masks, size_t n, int h, int w, double fpr_limit, double *pro,
              size_t *regions);

/* The threshold t (a sample is called a defect when score >= t) with the best F1 over n scores,
 * with its F1, precision and recall; with no positive sample t is just above the highest score and
 * the rest 0. Returns 0, -LATHE_EINVAL (NaN) or -LATHE_ENOMEM. */
typedef struct {
    double threshold, f1, precision, recall;
} lathe_f1_point;
int lathe_best_f1(const float *score, const uint8_t *positive, size_t n, lathe_f1_point *out);

#ifdef __cplusplus
}
#endif
#endif
