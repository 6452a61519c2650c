/* det_report.h - the detection evaluation report beyond the COCO metrics: a confusion matrix with a
 * background row and column, each class's best-F1 operating point, and the report written as
 * report.json, a self-contained report.html (tables, precision-recall curves, the confusion matrix,
 * training curves, sample images with their boxes drawn) and report.md (the tables). */
#ifndef LATHE_EVAL_DET_REPORT_H
#define LATHE_EVAL_DET_REPORT_H
#include <cjson/cJSON.h>
#include <stddef.h>

#include "coco.h"
#include "plot.h"
#ifdef __cplusplus
extern "C" {
#endif

#define LATHE_DET_MATCH_IOU 0.5         /* IoU that makes a detection a hit, here and in the samples */
#define LATHE_DET_CONFUSION_SCORE 0.25  /* detections below this score stay out of the confusion matrix */

/* Adds "confusion" (IoU 0.5, score >= 0.25, class-agnostic greedy matching by score; rows true
 * class, columns predicted class, the last row and column "background": false positives and
 * missed ground truth) and each class's "best_f1" ({threshold, f1, precision, recall} over its
 * score-sorted detections matched at IoU 0.5) to a report made by lathe_coco_report from d, as
 * docs/FORMAT.md describes. Crowd and ignored ground truth is neither missed nor a reason for a
 * false positive. Keys already there are replaced; on failure the report is left as it was.
 * Returns 0, -LATHE_EINVAL (d or report NULL, or the report's classes not those of d) or -LATHE_ENOMEM. */
int lathe_det_report_extend(const lathe_coco_data *d, cJSON *report);

typedef struct {
    const char *caption;
    lathe_png png;
} lathe_det_sample_image;

typedef struct {
    lathe_det_sample_image *items;
    size_t n;
} lathe_det_samples;

/* Receives one chart of a report: its kind ("pr": precision-recall curves, up to 8 classes a chart;
 * "confusion"; "training": loss, validation mAP), its title and PNG (the caller frees it after the
 * call: copy what you keep). A negative return stops lathe_det_report_charts with that code. */
typedef int (*lathe_det_chart_fn)(void *ctx, const char *kind, const char *title, const lathe_png *png);
/* Draws the charts report.html holds (not the sample images), in its order, and hands each to fn.
 * Returns 0, fn's negative return, -LATHE_EINVAL or -LATHE_ENOMEM. */
int lathe_det_report_charts(const cJSON *report, lathe_det_chart_fn fn, void *ctx);

/* Writes out_dir/report.json (the report as it is), out_dir/report.html and out_dir/report.md,
 * creating out_dir when missing. The report is one from lathe_coco_report, best extended; keys it
 * lacks leave their section out, and an optional "training" list of per-epoch objects adds curves
 * of "loss" and "val_map" against "epoch". samples may be NULL. Each file is replaced atomically.
 * Returns 0, -LATHE_EINVAL (report or out_dir NULL), -LATHE_EIO or -LATHE_ENOMEM. */
int lathe_det_report_write(const cJSON *report, const char *title, const lathe_det_samples *samples,
                           const char *out_dir);

struct lathe_dataset;
/* Image-level verdicts (det_verdict.c): each of the split's source images (a tiled dataset's whole
 * images) with a detection in d scoring >= conf gets the class whose detections >= conf have the
 * largest sum of scores, else the dataset's "good" class (named good, ok, normal or pass). A verdict is right when it is the image's own label, or a
 * class other than good of one of the image's boxes in d (a part with a dent and a scratch is rightly
 * called either). Adds "image_level" {score_threshold, good_class, images, accuracy, label_accuracy
 * (verdicts equal to the label), labels, matrix (rows the labels, columns the verdicts)} to report;
 * adds nothing when no class is a good one or no image has a label. Returns 0, -LATHE_EINVAL (a
 * NULL argument), the errors of lathe_dataset_get or -LATHE_ENOMEM. */
int lathe_det_report_verdicts(struct lathe_dataset *ds, int split, const lathe_coco_data *d, double conf,
                              cJSON *report);

/* The verdict threshold to keep of n ascending candidates with the accuracies they reach on held-out
 * images: the middle of the longest run of consecutive candidates that reach the best accuracy (the
 * operating point farthest from where accuracy falls off; of two middles, or of equally long runs,
 * the one nearer 0.25). Returns its index, -1 when n < 1. */
int lathe_det_verdict_pick(const double *accuracy, const double *threshold, int n);

/* Builds up to max_images sample images of one split of ds: the images of d with ground truth or a
 * detection scoring >= score_thr, those with the most errors first (then by image id), each drawn
 * at its stored pixels with its predictions >= score_thr and its ground truth. Errors: a missed
 * ground truth (no same-class prediction >= score_thr at IoU >= 0.5; drawn red) and a false positive
 * (a prediction >= score_thr no same-class ground truth covers at IoU >= 0.5, over the prediction's
 * area for a crowd). d holds boxes in source pixels with the image ids lathe_coco_load_dataset
 * gives (meta.image_id, else the sample index); images of d the split lacks are passed over. The
 * captions and PNGs belong to out (lathe_det_samples_free). Returns 0, -LATHE_EINVAL (ds or d
 * NULL, max_images < 0), the errors of lathe_dataset_get, -LATHE_EUNSUPPORTED (pixels neither RGB
 * nor grey) or -LATHE_ENOMEM; out is left empty on failure and when no image qualifies. */
int lathe_det_report_samples(struct lathe_dataset *ds, int split, const lathe_coco_data *d, float score_thr,
                             int max_images, lathe_det_samples *out);
void lathe_det_samples_free(lathe_det_samples *s);

#ifdef __cplusplus
}
#endif
#endif
