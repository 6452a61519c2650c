/* detector.c - building and running a detector from a spec (detector.h). */
#include "detector.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libcore/base/config.h"
#include "libcore/base/error.h"
#include "libcore/base/fsutil.h"
#include "det_gather.h"
#include "flip_fuse.h"
#include "libcore/data/det_loader.h"
#include "libcore/dist/dist.h"
#include "libcore/eval/det_report.h"
#include "libcore/mm/prompts.h"
#include "libcore/nn/checkpoint.h"
#include "libcore/nn/trainer.h"
#include "tile_merge.h"

enum { MAX_LEVELS = 8 };

/* Names from the dataset, else from the spec's class_names (lathe train records them), else "class N". */
static int set_class_names(lathe_detector *d) {
    const lathe_manifest *m = d->ds ? lathe_dataset_manifest(d->ds) : NULL;
    const cJSON *listed = lathe_config_get(d->spec, "class_names");
    if (!(d->class_names = calloc((size_t)d->classes, sizeof *d->class_names))) return lathe_fail(LATHE_ENOMEM, "class names");
    for (int k = 0; k < d->classes; k++) {
        char fallback[32];
        snprintf(fallback, sizeof fallback, "class %d", k);
        const cJSON *name = cJSON_GetArrayItem(listed, k);
        const char *chosen = m && k < m->nclasses ? m->class_names[k] : cJSON_IsString(name) ? name->valuestring : fallback;
        if (!(d->class_names[k] = strdup(chosen))) return lathe_fail(LATHE_ENOMEM, "class names");
    }
    return 0;
}

int lathe_detector_open(lathe_detector *d, const cJSON *spec, const char *dataset, int need_dataset, int batch) {
    memset(d, 0, sizeof *d);
    d->spec = spec, d->batch = batch;
    d->mean = (float)lathe_config_num(spec, "data.mean", 0), d->std = (float)lathe_config_num(spec, "data.std", 1);
    d->flip = lathe_config_prob(spec, "eval.flip", 0, 1) > 0; /* true/false or 1/0 */
    const char *dir = dataset ? dataset : lathe_config_str(spec, "data.dataset", NULL);
    if (!dataset && !need_dataset && lathe_config_get(spec, "model.classes")) dir = NULL; /* the run recorded them */
    if (!dir && need_dataset) return lathe_fail(LATHE_EINVAL, "data.dataset is required");
    int rc = dir ? lathe_dataset_open(dir, &d->ds) : 0;
    if (rc) return rc;
    cJSON *model = cJSON_Duplicate(lathe_config_get(spec, "model"), 1);
    if (!cJSON_IsObject(model)) {
        cJSON_Delete(model);
        return lathe_fail(LATHE_EINVAL, "the spec has no model mapping");
    }
    if (!cJSON_GetObjectItemCaseSensitive(model, "classes")) {
        if (!d->ds) {
            cJSON_Delete(model);
            return lathe_fail(LATHE_EINVAL, "model.classes is needed without a dataset");
        }
        cJSON_AddNumberToObject(model, "classes", lathe_dataset_manifest(d->ds)->nclasses);
    }
    d->classes = (int)lathe_config_num(model, "classes", 0);
    d->bins = (int)lathe_config_num(model, "bins", 16);
    if (d->ds && (need_dataset || dataset) && d->classes < lathe_dataset_manifest(d->ds)->nclasses) {
        cJSON_Delete(model);
        return lathe_fail(LATHE_EINVAL, "model.classes is %d but %s has %d classes: the boxes of the others would be dropped",
                          d->classes, dir, lathe_dataset_manifest(d->ds)->nclasses);
    }
    rc = d->classes >= 1 && d->bins >= 2 ? lathe_graph_build(model, batch, (uint64_t)lathe_config_num(spec, "train.seed", 0), &d->g)
                                         : lathe_fail(LATHE_EINVAL, "model.classes must be >= 1 and model.bins >= 2");
    cJSON_Delete(model);
    if (rc) return rc;
    int strides[MAX_LEVELS], k, levels = lathe_graph_detect_levels(d->g, strides, MAX_LEVELS);
    if (levels == 0) return lathe_fail(LATHE_EINVAL, "a detector's model ends in a `detect` layer");
    if (levels < 0) return lathe_fail(LATHE_EINVAL, "detect: each level's map must divide the input evenly (at most %d levels)", MAX_LEVELS);
    lathe_graph_output(d->g, &k);
    lathe_graph_input(d->g, &d->c, &d->h, &d->w);
    if (d->c != 3) return lathe_fail(LATHE_EINVAL, "a detector takes 3-channel input, not %d", d->c);
    rc = lathe_det_head_init(&d->head, d->h, d->w, strides, levels, d->bins, d->classes);
    if (!rc && k != d->head.A * (4 * d->bins + d->classes))
        rc = lathe_fail(LATHE_EINVAL, "the detect layer gathers %d values per anchor; 4 x bins (%d) + classes (%d) = %d",
                        k / (d->head.A ? d->head.A : 1), d->bins, d->classes, 4 * d->bins + d->classes);
    if (!rc) rc = set_class_names(d);
    return rc ? rc : lathe_graph_set_device(d->g, lathe_config_str(spec, "train.device", "auto"));
}

void lathe_detector_close(lathe_detector *d) {
    for (int k = 0; d->class_names && k < d->classes; k++) free(d->class_names[k]);
    free(d->class_names);
    lathe_det_head_free(&d->head);
    lathe_graph_free(d->g);
    lathe_dataset_close(d->ds);
    memset(d, 0, sizeof *d);
}

/* The detections of the n images of the graph's output into dets (n x o->max_det), counts (n). */
static int detections(lathe_detector *d, int n, const lathe_det_predict_opts *o, lathe_detection *dets, int *counts) {
    const float *out = lathe_graph_output(d->g, NULL);
    size_t per = (size_t)d->head.A * (4 * d->bins + d->classes);
    int failed = 0;
#pragma omp parallel for schedule(dynamic, 1)
    for (int i = 0; i < n; i++) {
        counts[i] = lathe_det_predict(&d->head, o, out + (size_t)i * per, dets + (size_t)i * o->max_det);
        if (counts[i] < 0) {
#pragma omp atomic write
            failed = 1;
        }
    }
    return failed ? lathe_fail(LATHE_ENOMEM, "detections") : 0;
}

/* The mirrored view: a second forward of the inputs flipped, each image's detections fused with
 * the plain view's in dets / counts (both views' found with o), those under min_score dropped. */
static int add_mirrored_view(lathe_detector *d, int n, const lathe_det_predict_opts *o, float min_score,
                             lathe_detection *dets, int *counts) {
    size_t m = (size_t)o->max_det;
    lathe_detection *mirrored = malloc(sizeof *mirrored * m * (size_t)n), *fused = malloc(sizeof *fused * 2 * m);
    int *mcounts = malloc(sizeof *mcounts * (size_t)n);
    float *x = lathe_graph_input(d->g, NULL, NULL, NULL);
    int rc = mirrored && fused && mcounts ? 0 : lathe_fail(LATHE_ENOMEM, "the mirrored view's detections");
    if (!rc) {
        lathe_det_flip_inputs(x, n, d->c, d->h, d->w);
        rc = lathe_graph_forward(d->g, n, 0);
        lathe_det_flip_inputs(x, n, d->c, d->h, d->w);
    }
    if (!rc) rc = detections(d, n, o, mirrored, mcounts);
    for (int i = 0; !rc && i < n; i++) {
        lathe_detection *a = dets + (size_t)i * m, *b = mirrored + (size_t)i * m;
        lathe_det_unflip(b, mcounts[i], d->w);
        int k = lathe_det_fuse_views(a, counts[i], b, mcounts[i], o->max_det, fused);
        while (k > 0 && fused[k - 1].score < min_score) k--; /* by score, descending */
        if (k < 0) rc = k;
        else memcpy(a, fused, sizeof *a * (size_t)k), counts[i] = k;
    }
    free(mirrored), free(fused), free(mcounts);
    return rc;
}

int lathe_detector_run(lathe_detector *d, int n, const lathe_det_predict_opts *o, lathe_detection *dets, int *counts) {
    /* with the mirror each view goes down to evaluation's floor: a view's detection under o->conf
     * still counts when the other view sees the object too; the fused score meets o->conf */
    lathe_det_predict_opts view = *o;
    if (d->flip && view.conf > LATHE_FLIP_VIEW_CONF) view.conf = LATHE_FLIP_VIEW_CONF;
    lathe_graph_set_train(d->g, 0);
    int rc = lathe_graph_forward(d->g, n, 0);
    if (!rc) rc = detections(d, n, &view, dets, counts);
    if (!rc && d->flip) rc = add_mirrored_view(d, n, &view, o->conf, dets, counts);
    return rc;
}

void lathe_det_to_source(const lathe_detection *det, int n, const lathe_meta *mt, int64_t image_id, float r, float px,
                      float py, lathe_coco_ann *out) {
    double sx = mt->scale_x > 0 ? mt->scale_x : 1, sy = mt->scale_y > 0 ? mt->scale_y : 1;
    double W = mt->orig_width > 0 ? mt->orig_width : INFINITY, H = mt->orig_height > 0 ? mt->orig_height : INFINITY;
    for (int i = 0; i < n; i++) {
        double v[4];
        for (int j = 0; j < 4; j++) {
            double stored = (det[i].box[j] - (j % 2 ? py : px)) / r;
            double src = j % 2 ? (stored - mt->pad_y) / sy + mt->tile_y : (stored - mt->pad_x) / sx + mt->tile_x;
            v[j] = fmin(fmax(src, 0), j % 2 ? H : W);
        }
        lathe_coco_ann *a = &out[i];
        memset(a, 0, sizeof *a);
        a->image_id = image_id, a->category_id = det[i].label, a->score = det[i].score;
        a->x = v[0], a->y = v[1], a->w = v[2] - v[0], a->h = v[3] - v[1];
    }
}

/* Grows the results, and when tracked (a tiled dataset) the tile and source image size of each, to
 * hold `more` further entries. */
static int reserve(lathe_coco_ann **out, lathe_tile_rect **rects, double (**sizes)[2], size_t n, size_t more, size_t *cap) {
    if (n + more <= *cap) return 0;
    size_t c = 2 * *cap + more + 256;
    lathe_coco_ann *g = realloc(*out, c * sizeof *g);
    if (!g) return lathe_fail(LATHE_ENOMEM, "detections");
    *out = g;
    if (rects) {
        lathe_tile_rect *t = realloc(*rects, c * sizeof *t);
        if (t) *rects = t;
        double(*z)[2] = t ? realloc(*sizes, c * sizeof *z) : NULL;
        if (z) *sizes = z;
        if (!t || !z) return lathe_fail(LATHE_ENOMEM, "detections");
    }
    *cap = c;
    return 0;
}

lathe_tile_merge_opts lathe_detector_merge_opts(const lathe_det_predict_opts *o) {
    lathe_tile_merge_opts mo;
    lathe_tile_merge_defaults(&mo);
    mo.iou = o->iou, mo.max_det = o->max_det, mo.min_score = o->conf;
    return mo;
}

/* Merges each source image's tile detections (a run of equal image ids, as tiles are consecutive)
 * in place; *n shrinks to what is kept. */
static int merge_tiles(lathe_coco_ann *dt, lathe_tile_rect *rects, const double (*sizes)[2], size_t *n,
                       const lathe_det_predict_opts *o) {
    lathe_tile_merge_opts mo = lathe_detector_merge_opts(o);
    size_t w = 0;
    for (size_t a = 0, b; a < *n; a = b) {
        for (b = a; b < *n && dt[b].image_id == dt[a].image_id;) b++;
        size_t kept;
        int rc = lathe_tile_merge(dt + a, rects + a, b - a, sizes[a][0], sizes[a][1], &mo, &kept);
        if (rc) return rc;
        memmove(dt + w, dt + a, kept * sizeof *dt);
        w += kept;
    }
    *n = w;
    return 0;
}

int lathe_detector_split(lathe_detector *d, int split, const lathe_det_predict_opts *o, lathe_coco_ann **out, size_t *n) {
    *out = NULL, *n = 0;
    lathe_det_loader_opts lo;
    lathe_det_loader_defaults(&lo);
    lo.split = split, lo.h = d->h, lo.w = d->w, lo.mean = d->mean, lo.std = d->std;
    lathe_det_loader *l = NULL;
    lathe_det_batch b = {0};
    int64_t *image_ids = NULL;
    int tiled = lathe_dataset_tiled(d->ds);
    lathe_tile_rect *rects = NULL;  /* tiled: the tile of each detection */
    double (*sizes)[2] = NULL;      /* tiled: the source image size of each detection */
    int rc = lathe_dataset_image_ids(d->ds, &image_ids);
    if (!rc) rc = lathe_det_loader_create(d->ds, &lo, &l);
    if (!rc) rc = lathe_det_batch_init(&b, d->batch, d->h, d->w);
    lathe_detection *dets = rc ? NULL : malloc(sizeof *dets * (size_t)d->batch * o->max_det);
    int *counts = rc ? NULL : malloc(sizeof *counts * (size_t)d->batch);
    uint64_t total = rc ? 0 : lathe_det_loader_size(l);
    size_t cap = 0;
    if (!rc && (!dets || !counts)) rc = lathe_fail(LATHE_ENOMEM, "detections");
    float r = 1, px = 0, py = 0;
    if (!rc) lathe_det_loader_letterbox(l, &r, &px, &py);
    const lathe_manifest *m = lathe_dataset_manifest(d->ds);
    size_t per = (size_t)3 * d->h * d->w;
    /* with several ranks (a data-parallel run's validation) each scores every ranks-th batch */
    uint64_t world = (uint64_t)lathe_dist_world(), batches = (total + (uint64_t)d->batch - 1) / (uint64_t)d->batch;
    size_t *per_batch = rc ? NULL : malloc(sizeof *per_batch * (size_t)(batches / world + 1)), nb = 0;
    if (!rc && !per_batch) rc = lathe_fail(LATHE_ENOMEM, "detections");
    for (uint64_t first = lathe_dist_first_batch((uint64_t)d->batch); !rc && first < total;
         first += lathe_dist_batch_stride((uint64_t)d->batch)) {
        size_t before = *n;
        int got = lathe_det_loader_batch(l, 0, first, d->batch, &b);
        if (got < 0) {
            rc = got;
            break;
        }
        memcpy(lathe_graph_input(d->g, NULL, NULL, NULL), b.x, sizeof(float) * per * (size_t)got);
        if ((rc = lathe_detector_run(d, got, o, dets, counts))) break;
        for (int i = 0; i < got && !rc; i++) {
            lathe_dataset_sample s;
            if ((rc = lathe_dataset_get(d->ds, b.samples[i], LATHE_READ_META, &s))) break;
            rc = reserve(out, tiled ? &rects : NULL, &sizes, *n, (size_t)counts[i], &cap);
            if (!rc) lathe_det_to_source(dets + (size_t)i * o->max_det, counts[i], &s.meta, image_ids[b.samples[i]], r, px, py,
                                         *out + *n);
            for (int k = 0; !rc && tiled && k < counts[i]; k++) {
                const lathe_meta *mt = &s.meta;
                double sx = mt->scale_x > 0 ? mt->scale_x : 1, sy = mt->scale_y > 0 ? mt->scale_y : 1;
                rects[*n + k] = (lathe_tile_rect){mt->tile_x, mt->tile_y, mt->tile_x + m->width / sx, mt->tile_y + m->height / sy};
                sizes[*n + k][0] = mt->orig_width, sizes[*n + k][1] = mt->orig_height;
            }
            if (!rc) *n += (size_t)counts[i];
            lathe_dataset_sample_free(&s);
        }
        per_batch[nb++] = *n - before;
    }
    if (world > 1 && !(rc = lathe_dist_agree(rc)))
        rc = det_gather_ranks(batches, per_batch, nb, out, tiled ? &rects : NULL, &sizes, n);
    free(per_batch);
    if (!rc && tiled) rc = merge_tiles(*out, rects, (const double(*)[2])sizes, n, o);
    free(dets), free(counts), free(image_ids), free(rects), free(sizes);
    lathe_det_batch_free(&b);
    lathe_det_loader_free(l);
    if (rc) free(*out), *out = NULL, *n = 0;
    return rc;
}

int lathe_coco_results_write(const char *path, const lathe_coco_ann *dt, size_t n) {
    size_t cap = 128 * (n + 1), len = 0;
    char *text = malloc(cap);
    if (!text) return lathe_fail(LATHE_ENOMEM, "results of %zu detections", n);
    for (size_t i = 0; i <= n; i++) {
        char one[512]; /* a record, or the closing bracket; %g keeps even absurd coordinates short */
        int k = i < n ? snprintf(one, sizeof one,
                                 "%s\n{\"image_id\": %lld, \"category_id\": %lld, \"bbox\": [%.9g, %.9g, %.9g, %.9g], \"score\": %.5f}",
                                 i ? "," : "[", (long long)dt[i].image_id, (long long)dt[i].category_id, dt[i].x, dt[i].y,
                                 dt[i].w, dt[i].h, dt[i].score)
                      : snprintf(one, sizeof one, "%s\n]\n", n ? "" : "[");
        if (k < 0 || (size_t)k >= sizeof one) {
            free(text);
            return lathe_fail(LATHE_EINVAL, "detection %zu does not print as a COCO result", i);
        }
        if (len + (size_t)k + 1 > cap) {
            char *bigger = realloc(text, cap = 2 * cap + (size_t)k);
            if (!bigger) {
                free(text);
                return lathe_fail(LATHE_ENOMEM, "results of %zu detections", n);
            }
            text = bigger;
        }
        memcpy(text + len, one, (size_t)k + 1), len += (size_t)k;
    }
    int rc = lathe_write_atomic(path, text, len);
    free(text);
    return rc;
}

/* The per-epoch log of a run, as a JSON array (NULL when there is none). */
static cJSON *training_curves(const char *log_path) {
    char *text = NULL;
    size_t len = 0;
    if (!log_path || lathe_read_file(log_path, 1 << 26, &text, &len)) return NULL;
    cJSON *arr = cJSON_CreateArray();
    for (char *line = strtok(text, "\n"); line && arr; line = strtok(NULL, "\n")) {
        cJSON *o = cJSON_Parse(line);
        if (cJSON_IsObject(o)) cJSON_AddItemToArray(arr, o);
        else cJSON_Delete(o);
    }
    free(text);
    return arr;
}

int lathe_detector_score(lathe_detector *d, int split, lathe_coco_data *data, lathe_coco_result *res) {
    memset(data, 0, sizeof *data), memset(res, 0, sizeof *res);
    lathe_det_predict_opts o;
    lathe_det_predict_defaults(&o);
    lathe_coco_ann *dt = NULL;
    size_t ndt = 0;
    int rc = lathe_detector_split(d, split, &o, &dt, &ndt);
    if (!rc) rc = lathe_coco_load_dataset(d->ds, split, NULL, data);
    if (!rc) rc = lathe_coco_set_detections(data, dt, ndt);
    if (!rc) rc = lathe_coco_evaluate(data, res);
    free(dt);
    if (rc) lathe_coco_data_free(data), lathe_coco_result_free(res);
    return rc;
}

/* With data.holdout_classes: report.open_vocabulary, the mean per-class AP and AP50 of the classes
 * trained on (base) and of those named only in text (novel), over classes with ground truth. */
static int base_and_novel(const lathe_detector *d, cJSON *r) {
    unsigned char *held = calloc((size_t)d->classes, 1);
    int rc = held ? lathe_holdout_classes(d->spec, (const char *const *)d->class_names, d->classes, held)
                  : lathe_fail(LATHE_ENOMEM, "classes");
    cJSON *ov = rc ? NULL : cJSON_AddObjectToObject(r, "open_vocabulary"), *names = cJSON_AddArrayToObject(ov, "novel_classes");
    double sum[2][2] = {{0}}, count[2] = {0};
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(r, "classes")) {
        int id = (int)lathe_config_num(c, "id", -1), novel = id >= 0 && id < d->classes && held[id];
        if (novel) cJSON_AddItemToArray(names, cJSON_CreateString(lathe_config_str(c, "name", "?")));
        if (lathe_config_num(c, "AP", -1) < 0) continue; /* no ground truth in this split */
        sum[novel][0] += lathe_config_num(c, "AP", 0), sum[novel][1] += lathe_config_num(c, "AP50", 0), count[novel]++;
    }
    for (int g = 0; ov && g < 2; g++) {
        cJSON *o = cJSON_AddObjectToObject(ov, g ? "novel" : "base");
        cJSON_AddNumberToObject(o, "classes", count[g]);
        if (count[g]) {
            cJSON_AddNumberToObject(o, "AP", sum[g][0] / count[g]);
            cJSON_AddNumberToObject(o, "AP50", sum[g][1] / count[g]);
        } else {
            cJSON_AddNullToObject(o, "AP"), cJSON_AddNullToObject(o, "AP50");
        }
    }
    free(held);
    return rc;
}

/* The image-level verdict's score threshold: eval.verdict_threshold when the spec sets it; else,
 * evaluating another split than val, the one of 0.05, 0.10, .., 0.95 with the best image-level
 * accuracy on the val split's images (of several, the middle of the longest run of them:
 * lathe_det_verdict_pick), as an operating point is chosen on held-out data; else (no val images
 * with labels) 0.25. *from says which, *val_accuracy (-1 when not from val) what it reached there. */
static int verdict_threshold(lathe_detector *d, const cJSON *spec, int sp, double *t, const char **from,
                             double *val_accuracy) {
    *t = LATHE_DET_CONFUSION_SCORE, *from = "default", *val_accuracy = -1;
    const cJSON *fixed = lathe_config_get(spec, "eval.verdict_threshold");
    if (cJSON_IsNumber(fixed)) {
        *t = fixed->valuedouble, *from = "spec";
        return 0;
    }
    if (sp == LATHE_SPLIT_VAL || !lathe_manifest_samples(lathe_dataset_manifest(d->ds), LATHE_SPLIT_VAL)) return 0;
    lathe_coco_data data = {0};
    lathe_coco_result res = {0};
    int rc = lathe_detector_score(d, LATHE_SPLIT_VAL, &data, &res);
    double cand[19], acc[19];
    for (int k = 0; !rc && k < 19; k++) {
        cand[k] = (k + 1) / 20.0;
        cJSON *tmp = cJSON_CreateObject();
        rc = tmp ? lathe_det_report_verdicts(d->ds, LATHE_SPLIT_VAL, &data, cand[k], tmp) : lathe_fail(LATHE_ENOMEM, "verdicts");
        acc[k] = lathe_config_num(tmp, "image_level.accuracy", -1);
        cJSON_Delete(tmp);
    }
    int pick = rc ? -1 : lathe_det_verdict_pick(acc, cand, 19);
    if (pick >= 0 && acc[pick] >= 0) /* else no labelled val image: the default */
        *t = cand[pick], *val_accuracy = acc[pick], *from = "val";
    lathe_coco_result_free(&res);
    lathe_coco_data_free(&data);
    return rc;
}

int lathe_eval_detector(const cJSON *spec, const char *checkpoint, const char *dataset, const char *split,
                        const char *out_dir, const char *training_log, cJSON **report) {
    if (report) *report = NULL;
    int sp = lathe_split_parse(split);
    if (sp < 0) return lathe_fail(LATHE_EINVAL, "unknown split %s", split);
    lathe_detector d;
    int rc = lathe_detector_open(&d, spec, dataset, 1, (int)lathe_config_num(spec, "train.batch", LATHE_TRAIN_BATCH_DEFAULT));
    if (!rc) rc = lathe_checkpoint_load(checkpoint, d.g, NULL);
    lathe_coco_data data = {0};
    lathe_coco_result res = {0};
    cJSON *r = NULL;
    char path[4300];
    snprintf(path, sizeof path, "%s/detections.json", out_dir);
    if (!rc) rc = lathe_detector_score(&d, sp, &data, &res);
    if (!rc) rc = lathe_mkdirs(out_dir);
    if (!rc) rc = lathe_coco_results_write(path, data.dt, data.ndt);
    if (!rc && !(r = lathe_coco_report(&data, &res))) rc = lathe_fail(LATHE_ENOMEM, "report");
    if (!rc) rc = lathe_det_report_extend(&data, r);
    double verdict_t, val_accuracy;
    const char *verdict_from;
    if (!rc) rc = verdict_threshold(&d, spec, sp, &verdict_t, &verdict_from, &val_accuracy);
    if (!rc) rc = lathe_det_report_verdicts(d.ds, sp, &data, verdict_t, r);
    cJSON *verdicts = r ? cJSON_GetObjectItemCaseSensitive(r, "image_level") : NULL;
    if (!rc && verdicts) {
        cJSON_AddStringToObject(verdicts, "threshold_from", verdict_from);
        if (val_accuracy >= 0) cJSON_AddNumberToObject(verdicts, "val_accuracy", val_accuracy);
    }
    if (!rc && lathe_config_get(spec, "data.holdout_classes")) rc = base_and_novel(&d, r);
    if (!rc) {
        cJSON_AddStringToObject(r, "checkpoint", checkpoint);
        cJSON_AddStringToObject(r, "split", split);
        cJSON_AddBoolToObject(r, "flip", d.flip);
        cJSON *curves = training_curves(training_log);
        if (curves) cJSON_AddItemToObject(r, "training", curves);
        lathe_det_samples samples = {0};
        rc = lathe_det_report_samples(d.ds, sp, &data, 0.25f, 8, &samples);
        char title[4400];
        snprintf(title, sizeof title, "lathe eval: %s on %s", checkpoint, split);
        if (!rc) rc = lathe_det_report_write(r, title, &samples, out_dir);
        lathe_det_samples_free(&samples);
    }
    if (report && !rc) *report = r;
    else cJSON_Delete(r);
    lathe_coco_result_free(&res);
    lathe_coco_data_free(&data);
    lathe_detector_close(&d);
    return rc;
}
