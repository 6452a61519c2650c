/* det_verdict.c - image-level verdicts from a detector (det_report.h): what an inspection station
 * decides per part. An image with a detection scoring at least the threshold is defective, of the
 * class whose detections at or above it have the largest sum of scores (a part with three scratches,
 * one of them taken for a crack at a higher score, is a scratched part: on three demo detectors
 * never below the best single detection's class and up to 2 points above); else it is "good".
 * Verdicts are compared with the images' own labels. A part
 * with two kinds of defect carries one label (lathe synth's: the kind it was made with first), so a
 * verdict naming the other kind, which one of its boxes shows, is right too; the exact label's
 * accuracy is reported beside. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "det_report.h"
#include "libcore/base/error.h"
#include "libcore/io/dataset.h"

typedef struct {
    int64_t image_id;
    int32_t label;
} image_label;

static int cmp_image(const void *x, const void *y) {
    const image_label *p = x, *q = y;
    return (p->image_id > q->image_id) - (p->image_id < q->image_id);
}

/* The labels of the split's source images (their first samples' /labels), sorted by image id. */
static int split_labels(struct lathe_dataset *ds, int split, image_label **out, size_t *n) {
    uint64_t count = lathe_dataset_count(ds);
    int64_t *ids = NULL;
    *n = 0;
    int rc = lathe_dataset_image_ids(ds, &ids);
    if (!rc && !(*out = malloc((count + 1) * sizeof **out))) rc = lathe_fail(LATHE_ENOMEM, "image labels");
    for (uint64_t i = 0; !rc && i < count; i++) {
        if (i > 0 && ids[i] == ids[i - 1]) continue; /* a later tile of the same image */
        lathe_dataset_sample s;
        if ((rc = lathe_dataset_get(ds, i, 0, &s))) break;
        if (s.split == split) (*out)[(*n)++] = (image_label){ids[i], s.label};
        lathe_dataset_sample_free(&s);
    }
    free(ids);
    if (!rc) qsort(*out, *n, sizeof **out, cmp_image);
    return rc;
}

int lathe_det_report_verdicts(struct lathe_dataset *ds, int split, const lathe_coco_data *d, double conf,
                              cJSON *report) {
    if (!ds || !d || !report) return lathe_fail(LATHE_EINVAL, "verdicts need a dataset, detections and a report");
    int good = lathe_good_class((const char *const *)d->category_names, (int)d->ncategories), rc = 0;
    size_t K = d->ncategories, n = 0, judged = 0, correct = 0;
    if (good < 0) return 0; /* nothing says which verdict means a good part */
    image_label *labels = NULL;
    double *sum = NULL, *cm = NULL; /* sum (n, K): each image's scores at or above conf, by class */
    int *verdict = NULL;
    unsigned char *shown = NULL; /* (n, K): 1 where one of the image's boxes is of the class */
    size_t exact = 0;
    rc = split_labels(ds, split, &labels, &n);
    if (!rc && (!(sum = calloc(n * K + 1, sizeof *sum)) || !(verdict = malloc((n + 1) * sizeof *verdict)) ||
                !(cm = calloc(K * K + 1, sizeof *cm)) || !(shown = calloc(n * K + 1, 1))))
        rc = lathe_fail(LATHE_ENOMEM, "verdicts of %zu images", n);
    for (size_t j = 0; !rc && j < d->ngt; j++) {
        const lathe_coco_ann *a = &d->gt[j];
        image_label key = {a->image_id, 0};
        const image_label *hit = bsearch(&key, labels, n, sizeof key, cmp_image);
        if (hit && a->category_id >= 0 && a->category_id < (int64_t)K) shown[(size_t)(hit - labels) * K + (size_t)a->category_id] = 1;
    }
    for (size_t j = 0; !rc && j < d->ndt; j++) { /* each image's detections at or above conf, summed by class */
        const lathe_coco_ann *a = &d->dt[j];
        image_label key = {a->image_id, 0};
        const image_label *hit = bsearch(&key, labels, n, sizeof key, cmp_image);
        if (!hit || !(a->score >= conf) || a->category_id < 0 || a->category_id >= (int64_t)K) continue;
        sum[(size_t)(hit - labels) * K + (size_t)a->category_id] += a->score;
    }
    for (size_t i = 0; !rc && i < n; i++) { /* the largest sum (the lower class of a tie); none: good */
        double most = 0;
        verdict[i] = good;
        for (size_t k = 0; k < K; k++)
            if (sum[i * K + k] > most) most = sum[i * K + k], verdict[i] = (int)k;
    }
    for (size_t i = 0; !rc && i < n; i++) {
        if (labels[i].label < 0 || labels[i].label >= (int32_t)K) continue; /* unlabelled images are not judged */
        int v = verdict[i];
        judged++, exact += v == labels[i].label;
        correct += v == labels[i].label || (v != good && shown[i * K + (size_t)v]);
        cm[(size_t)labels[i].label * K + (size_t)verdict[i]]++;
    }
    if (!rc && judged) {
        cJSON *o = cJSON_CreateObject(), *matrix = cJSON_CreateArray();
        int ok = o && matrix;
        for (size_t r = 0; ok && r < K; r++) ok = cJSON_AddItemToArray(matrix, cJSON_CreateDoubleArray(cm + r * K, (int)K));
        ok = ok && cJSON_AddNumberToObject(o, "score_threshold", conf) &&
             cJSON_AddStringToObject(o, "good_class", d->category_names[good]) &&
             cJSON_AddNumberToObject(o, "images", (double)judged) &&
             cJSON_AddNumberToObject(o, "accuracy", (double)correct / (double)judged) &&
             cJSON_AddNumberToObject(o, "label_accuracy", (double)exact / (double)judged) &&
             cJSON_AddItemToObject(o, "labels", cJSON_CreateStringArray((const char *const *)d->category_names, (int)K));
        if (ok && (ok = cJSON_AddItemToObject(o, "matrix", matrix))) matrix = NULL;
        cJSON_Delete(matrix);
        cJSON_DeleteItemFromObjectCaseSensitive(report, "image_level");
        if (ok && cJSON_AddItemToObject(report, "image_level", o)) o = NULL;
        else rc = lathe_fail(LATHE_ENOMEM, "verdict report");
        cJSON_Delete(o);
    }
    free(labels), free(sum), free(verdict), free(cm), free(shown);
    return rc;
}

int lathe_det_verdict_pick(const double *accuracy, const double *threshold, int n) {
    double top = -1;
    for (int k = 0; k < n; k++) top = accuracy[k] > top ? accuracy[k] : top;
    int pick = -1, pick_len = 0;
    for (int k = 0; k < n;) {
        if (accuracy[k] != top) {
            k++;
            continue;
        }
        int end = k;
        while (end < n && accuracy[end] == top) end++;
        /* the run k..end-1: its middle, the nearer to 0.25 of two middles */
        int mid = k + (end - 1 - k) / 2;
        if ((end - k) % 2 == 0 && fabs(threshold[mid + 1] - 0.25) < fabs(threshold[mid] - 0.25)) mid++;
        if (end - k > pick_len || (end - k == pick_len && fabs(threshold[mid] - 0.25) < fabs(threshold[pick] - 0.25)))
            pick = mid, pick_len = end - k;
        k = end;
    }
    return pick;
}
