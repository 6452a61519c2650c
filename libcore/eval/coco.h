/* coco.h - COCO detection metrics with pycocotools' semantics exactly (COCOeval, iouType "bbox"):
 * IoU thresholds 0.50:0.05:0.95, 101 recall points, area ranges all/small/medium/large on the
 * ground truth's `area` (the detection's box area for detections), maxDets 1/10/100, crowd regions
 * (IoU over the detection's area; a crowd may match many detections) and ignore flags. Categories
 * are evaluated in parallel; the result does not depend on the thread count. */
#ifndef LATHE_EVAL_COCO_H
#define LATHE_EVAL_COCO_H
#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int64_t id, image_id, category_id;
    double x, y, w, h; /* bbox as COCO writes it: left, top, width, height */
    double area;       /* ground truth: the annotation's area; detections: w * h */
    double score;      /* detections */
    int iscrowd, ignore;
} lathe_coco_ann;

typedef struct {
    int64_t *images;   /* sorted image ids (the ground truth's) */
    size_t nimages;
    int64_t *categories; /* sorted category ids */
    char **category_names;
    size_t ncategories;
    lathe_coco_ann *gt, *dt;
    size_t ngt, ndt;
} lathe_coco_data;

/* Reads a COCO ground-truth file (images, annotations, categories) and a results file (a list of
 * {image_id, category_id, bbox, score}) as pycocotools' COCO() and loadRes() do. Detections on an
 * image the ground truth lacks are refused (pycocotools asserts the same). Returns 0, -LATHE_ENOTFOUND,
 * -LATHE_EFORMAT naming the file and the record, or -LATHE_ENOMEM. */
int lathe_coco_load(const char *gt_path, const char *dt_path, lathe_coco_data *out);
void lathe_coco_data_free(lathe_coco_data *d);

struct lathe_dataset;
/* The same with the ground truth of one split of a lathe dataset: image ids are the source's (COCO
 * `id`, or the sample index when the source had none), category ids the dataset's class indices
 * (names from the manifest), boxes mapped back to source pixels through /meta, `area` the source's
 * annotation area when it recorded one (else the box's), crowd boxes as iscrowd and "difficult"
 * boxes ignored. Tiled datasets are refused (one source image is many samples). */
int lathe_coco_load_dataset(struct lathe_dataset *ds, int split, const char *dt_path, lathe_coco_data *out);
/* dt_path NULL above loads the ground truth alone; this then sets the detections from memory (ids
 * and areas assigned as loadRes does). Returns 0, -LATHE_EINVAL (an image the ground truth lacks)
 * or -LATHE_ENOMEM. */
int lathe_coco_set_detections(lathe_coco_data *d, const lathe_coco_ann *dt, size_t n);

enum { LATHE_COCO_T = 10, LATHE_COCO_R = 101, LATHE_COCO_A = 4, LATHE_COCO_M = 3 };

typedef struct {
    double stats[12];   /* AP, AP50, AP75, APs, APm, APl, AR1, AR10, AR100, ARs, ARm, ARl (-1: undefined) */
    double *precision;  /* (T, R, K, A, M) as COCOeval.eval['precision'], -1 where undefined */
    double *recall;     /* (T, K, A, M) */
    size_t ncategories; /* K */
} lathe_coco_result;

/* IoU of a detection and a ground-truth box as pycocotools computes it; with crowd set, the
 * intersection over the detection's area. 0 when they do not overlap. */
double lathe_coco_iou(const lathe_coco_ann *dt, const lathe_coco_ann *gt, int crowd);

/* Evaluates. Returns 0 or -LATHE_ENOMEM. */
int lathe_coco_evaluate(const lathe_coco_data *d, lathe_coco_result *out);
void lathe_coco_result_free(lathe_coco_result *r);
/* AP@[.5:.95] of category k (all areas, 100 detections), -1 when undefined. */
double lathe_coco_category_ap(const lathe_coco_result *r, size_t k, int iou_index /* -1: mean over T */);
/* report.json's detection keys (docs/FORMAT.md): metrics, per-class AP/AP50, precision-recall curves. */
cJSON *lathe_coco_report(const lathe_coco_data *d, const lathe_coco_result *r);

#ifdef __cplusplus
}
#endif
#endif
