/* detector.h - a detector built from a spec (docs/TRAINING.md, `task: detect`): the graph ending in
 * a `detect` layer, its anchors, and what runs it: training (train_det.c), detections on a dataset
 * split mapped back to source pixels (COCO results), on image files, and evaluation with COCO
 * metrics and the detection report. */
#ifndef LATHE_DET_DETECTOR_H
#define LATHE_DET_DETECTOR_H
#include <cjson/cJSON.h>
#include <stddef.h>

#include "libcore/eval/coco.h"
#include "libcore/io/dataset.h"
#include "libcore/nn/graph.h"
#include "predict.h"
#include "tile_merge.h"
#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    const cJSON *spec;
    lathe_dataset *ds;        /* the spec's dataset (or the override), NULL when opened without one */
    lathe_graph *g;
    lathe_det_head head;
    int classes, bins, batch, c, h, w;
    float mean, std;          /* input normalization (data.mean 0, data.std 1) */
    int flip;                 /* eval.flip: lathe_detector_run also scores each input mirrored (flip_fuse.h) */
    char **class_names;       /* classes entries */
} lathe_detector;

/* Opens the dataset (`dataset` when not NULL, else the spec's data.dataset, which need_dataset 0
 * skips when the spec records model.classes: classes and names then come from model.classes and
 * class_names, as `lathe train` records them) and builds the graph for batches of `batch`.
 * Returns 0 or a negative LATHE_E* code naming the problem (no detect layer, a head of the wrong
 * width for 4 x model.bins + classes, ...). */
int lathe_detector_open(lathe_detector *d, const cJSON *spec, const char *dataset, int need_dataset, int batch);
void lathe_detector_close(lathe_detector *d);

/* Forward (eval mode) over the n images in the graph's input, then detections per image into
 * dets (n x o->max_det) with counts (n); with d->flip a second forward of the inputs mirrored, each
 * image's two views fused (flip_fuse.h; the input is as it was after). Returns 0 or a negative code. */
int lathe_detector_run(lathe_detector *d, int n, const lathe_det_predict_opts *o, lathe_detection *dets, int *counts);

/* Detections on every sample of a split, as COCO results in source pixels (image_id as the dataset's
 * COCO ground truth has it). *out is malloc'd. Returns 0 or a negative code. */
int lathe_detector_split(lathe_detector *d, int split, const lathe_det_predict_opts *o, lathe_coco_ann **out, size_t *n);

/* How a tiled image's detections are merged under predict options o: their NMS IoU, score floor and
 * count per image, the merge's defaults for the rest (eval and predict merge alike). */
lathe_tile_merge_opts lathe_detector_merge_opts(const lathe_det_predict_opts *o);

/* The split's detections (score floor 0.001, NMS IoU 0.7, 100 per image) scored against its
 * ground truth: data holds both, res the COCO evaluation. Free with lathe_coco_data_free and
 * lathe_coco_result_free (done already on failure). Returns 0 or a negative code. */
int lathe_detector_score(lathe_detector *d, int split, lathe_coco_data *data, lathe_coco_result *res);

/* One image's detections (n, in input pixels) as COCO results in source pixels: stored = (input -
 * (px, py)) / r undoes the model's letterbox, then mt (stored = source * scale + pad - tile origin *
 * scale) the dataset's; boxes are clipped to the source image (mt->orig_width/height when set). */
void lathe_det_to_source(const lathe_detection *det, int n, const lathe_meta *mt, int64_t image_id, float r, float px,
                         float py, lathe_coco_ann *out);

/* Writes results as a COCO results JSON list (image_id, category_id, bbox, score). */
int lathe_coco_results_write(const char *path, const lathe_coco_ann *dt, size_t n);

/* Evaluates a checkpoint on a split: out_dir/detections.json, report.json (COCO metrics, per-class
 * AP, PR curves, confusion matrix, best-F1 thresholds, the run's training curves from
 * training_log when it exists), report.html with sample images, report.md. *report (may be NULL)
 * gets the report. Returns 0 or a negative code. */
int lathe_eval_detector(const cJSON *spec, const char *checkpoint, const char *dataset, const char *split,
                        const char *out_dir, const char *training_log, cJSON **report);

/* Trains a detector as the spec says into run_dir (the shared loop of libcore/nn/trainer.h; the
 * validation metric is val_map, COCO AP@[.5:.95] on the val split). */
int lathe_train_detector(const cJSON *spec, const char *run_dir, int resume, volatile int *stop);

#ifdef __cplusplus
}
#endif
#endif
