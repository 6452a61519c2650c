/* train_det.c - the detector as a lathe_task of the shared training loop (detector.h): batches
 * from the augmenting detection loader, the image loss of loss.c averaged over the batch (images
 * in parallel), and COCO mAP on the val split after every epoch. */
#include <stdlib.h>
#include <string.h>

#include "detector.h"
#include "hard_negatives.h"
#include "libcore/base/config.h"
#include "libcore/base/error.h"
#include "libcore/data/det_loader.h"
#include "libcore/dist/dist.h"
#include "libcore/mm/prompts.h"
#include "libcore/nn/trainer.h"
#include "loss.h"

typedef struct {
    lathe_detector d;
    lathe_det_loader *train;
    lathe_det_batch batch[2]; /* one trains while the other is prepared */
    lathe_det_loss_opts loss;
    int val_split;
    int32_t *assigned;        /* (batch, A) the step's targets: box index or -1 */
    float *score;             /* (batch, A) and their IoU-aware scores */
    unsigned char *held;      /* (classes) 1: data.holdout_classes, whose boxes are not trained on */
    double parts[3];          /* the epoch's class, box (CIoU) and DFL loss sums, and the steps they cover */
    double part_steps;
    lathe_hard_negatives hard; /* data.hard_background */
} det_trainer;

static double num(const cJSON *spec, const char *path, double def) { return lathe_config_num(spec, path, def); }

static int augment_options(const cJSON *spec, lathe_det_loader_opts *o) {
    const cJSON *a = lathe_config_get(spec, "data.augment");
    if (a && !cJSON_IsObject(a)) return lathe_fail(LATHE_EINVAL, "data.augment must be a mapping");
    o->augment = 1;
    o->background = (float)num(spec, "data.background", 1);
    o->flip = (float)lathe_config_prob(spec, "data.augment.flip", o->flip, 0.5);
    o->flipud = (float)lathe_config_prob(spec, "data.augment.flipud", o->flipud, 0.5);
    o->rotate90 = (float)lathe_config_prob(spec, "data.augment.rotate90", o->rotate90, 0.5);
    o->scale = (float)num(spec, "data.augment.scale", o->scale);
    o->translate = (float)num(spec, "data.augment.translate", o->translate);
    o->hsv_h = (float)num(spec, "data.augment.hsv_h", o->hsv_h);
    o->hsv_s = (float)num(spec, "data.augment.hsv_s", o->hsv_s);
    o->hsv_v = (float)num(spec, "data.augment.hsv_v", o->hsv_v);
    o->mosaic = (float)lathe_config_prob(spec, "data.augment.mosaic", o->mosaic, 1);
    double close = num(spec, "data.augment.close_mosaic", 0);
    int epochs = (int)num(spec, "train.epochs", 10);
    o->mosaic_epochs = close > 0 ? (epochs > (int)close ? epochs - (int)close : 0) : -1;
    return 0;
}

static uint64_t task_size(void *ctx) { return lathe_det_loader_size(((det_trainer *)ctx)->train); }

/* Removes the boxes of held-out classes from a batch (an open-vocabulary detector learns them from
 * their names only): they are neither targets nor, being gone, counted against the model. */
static void drop_held_out(const det_trainer *t, lathe_det_batch *b) {
    size_t kept = 0;
    for (int i = 0; i < b->n; i++) {
        int first = b->offsets[i], end = b->offsets[i + 1];
        b->offsets[i] = (int)kept;
        for (int j = first; j < end; j++)
            if (b->labels[j] < 0 || b->labels[j] >= t->d.classes || !t->held[b->labels[j]]) {
                memmove(b->boxes + 4 * kept, b->boxes + 4 * (size_t)j, 4 * sizeof *b->boxes);
                b->labels[kept++] = b->labels[j];
            }
    }
    b->offsets[b->n] = (int)kept, b->nboxes = kept;
}

static int task_load(void *ctx, int slot, int epoch, uint64_t pos, int n) {
    det_trainer *t = ctx;
    if (t->hard.k && t->hard.epoch != epoch) { /* a resumed run's first batch */
        int rc = lathe_hard_negatives_restore(&t->hard, t->train, epoch);
        if (rc) return rc;
    }
    int got = lathe_det_loader_batch(t->train, epoch, pos, n, &t->batch[slot]);
    if (got > 0 && t->held) drop_held_out(t, &t->batch[slot]);
    return got;
}

/* Targets of every image first, so the loss can be normalized by the batch's target-score sum
 * (YOLOv8's normalization: images with few or weak targets do not blow up their share), then each
 * image's loss and gradient; the step's loss is their sum. Images run in parallel. With several
 * ranks the sum is the whole step's, over every rank's images, so each rank's loss is its share
 * (loss_shared) and the ranks' gradients add up to one process's. */
static double task_step(void *ctx, int slot, int n, lathe_graph *g, uint64_t step) {
    det_trainer *t = ctx;
    const lathe_det_batch *b = &t->batch[slot];
    const lathe_det_head *hd = &t->d.head;
    memcpy(lathe_graph_input(g, NULL, NULL, NULL), b->x, sizeof(float) * 3 * t->d.h * t->d.w * (size_t)n);
    int rc = n ? lathe_graph_forward(g, n, step) : 0;
    const float *out = lathe_graph_output(g, NULL);
    float *dout = lathe_graph_doutput(g);
    size_t per = (size_t)hd->A * (4 * hd->bins + hd->classes), A = (size_t)hd->A;
    double total = 0, parts[3] = {0, 0, 0}, norm = 0;
    int failed = rc, m = rc ? 0 : n; /* images to assign */
#pragma omp parallel for schedule(dynamic, 1)
    for (int i = 0; i < m; i++) {
        int first = b->offsets[i], count = b->offsets[i + 1] - first;
        int arc = lathe_det_assign_image(&t->loss, hd->A, hd->points, hd->stride, out + i * per, count,
                                        b->boxes + 4 * (size_t)first, b->labels + first, t->assigned + i * A,
                                        t->score + i * A);
        if (arc < 0) {
#pragma omp atomic write
            failed = arc;
        }
    }
    for (size_t k = 0; !failed && k < (size_t)n * A; k++) norm += t->assigned[k] >= 0 ? t->score[k] : 0;
    if ((failed = lathe_dist_agree(failed)) || (failed = lathe_dist_sum_f64(&norm, 1))) return failed;
    if (!n) return 0;
    lathe_det_loss_opts o = t->loss;
    o.norm = norm > 1 ? norm : 1;
#pragma omp parallel for schedule(dynamic, 1) reduction(+ : total) reduction(+ : parts[:3])
    for (int i = 0; i < n; i++) {
        double p[3];
        int first = b->offsets[i];
        double l = lathe_det_loss_assigned(&o, hd->A, hd->points, hd->stride, out + i * per, b->boxes + 4 * (size_t)first,
                                           b->labels + first, t->assigned + i * A, t->score + i * A, dout + i * per, p);
        if (l < 0) {
#pragma omp atomic write
            failed = (int)l;
            continue;
        }
        total += l, parts[0] += p[0], parts[1] += p[1], parts[2] += p[2];
    }
    if (failed) return failed;
    for (int j = 0; j < 3; j++) t->parts[j] += parts[j];
    t->part_steps++;
    return total;
}

static int task_validate(void *ctx, lathe_graph *g, cJSON *entry, double *metric) {
    det_trainer *t = ctx;
    (void)g; /* the detector's own graph */
    static const char *const names[3] = {"loss_cls", "loss_box", "loss_dfl"};
    int rc = lathe_dist_sum_f64(t->parts, 3); /* each rank's are its share of every step's */
    if (rc) return rc;
    for (int j = 0; j < 3; j++) cJSON_AddNumberToObject(entry, names[j], t->part_steps ? t->parts[j] / t->part_steps : 0);
    memset(t->parts, 0, sizeof t->parts), t->part_steps = 0;
    lathe_coco_data data; /* with several ranks each scores its share of the images, and all get every rank's */
    lathe_coco_result res;
    rc = lathe_detector_score(&t->d, t->val_split, &data, &res);
    if (!rc) {
        *metric = res.stats[0] > 0 ? res.stats[0] : 0; /* -1 (no ground truth) counts as 0 */
        cJSON_AddNumberToObject(entry, "val_map", *metric);
        cJSON_AddNumberToObject(entry, "val_map50", res.stats[1] > 0 ? res.stats[1] : 0);
        cJSON_AddNumberToObject(entry, "val_detections", (double)data.ndt);
        lathe_coco_result_free(&res);
        lathe_coco_data_free(&data);
    }
    if (!rc && t->hard.k) /* entry's epoch counts from 1: the next one's index */
        rc = lathe_hard_negatives_mine(&t->hard, &t->d, t->train, &t->batch[0], (int)lathe_config_num(entry, "epoch", 0));
    return rc;
}

/* The val split must be scorable: samples in it, and a dataset COCO ground truth can come from. */
static int check_val_split(det_trainer *t) {
    lathe_coco_data gt;
    int rc = lathe_coco_load_dataset(t->d.ds, t->val_split, NULL, &gt);
    if (!rc && !gt.nimages)
        rc = lathe_fail(LATHE_EINVAL, "data.val_split %s has no sample to validate on", lathe_split_name(t->val_split));
    lathe_coco_data_free(&gt);
    return rc;
}

/* A training split without a single box teaches only "nothing here": refused before an epoch. */
static int check_train_boxes(det_trainer *t, int split) {
    lathe_coco_data gt;
    int rc = lathe_coco_load_dataset(t->d.ds, split, NULL, &gt);
    if (!rc && !gt.ngt)
        rc = lathe_fail(LATHE_EINVAL, "the %s split holds no box to train a detector on", lathe_split_name(split));
    lathe_coco_data_free(&gt);
    return rc;
}

int lathe_train_detector(const cJSON *spec, const char *run_dir, int resume, volatile int *stop) {
    det_trainer t;
    memset(&t, 0, sizeof t);
    int batch = lathe_trainer_local_batch(spec); /* this rank's share of train.batch */
    if (batch < 1) return lathe_fail(LATHE_EINVAL, "train.batch must be >= 1");
    int rc = lathe_detector_open(&t.d, spec, NULL, 1, batch);
    t.d.flip = 0; /* eval.flip is for evaluation and prediction: an epoch's validation scores the plain view */
    lathe_det_loader_opts lo;
    lathe_det_loader_defaults(&lo);
    const char *train_split = lathe_config_str(spec, "data.train_split", "train");
    const char *val_split = lathe_config_str(spec, "data.val_split", "val");
    lo.split = lathe_split_parse(train_split), t.val_split = lathe_split_parse(val_split);
    if (!rc && (lo.split < 0 || t.val_split < 0))
        rc = lathe_fail(LATHE_EINVAL, "data.train_split / data.val_split: train, val or test");
    lo.h = t.d.h, lo.w = t.d.w, lo.mean = t.d.mean, lo.std = t.d.std, lo.seed = (uint64_t)num(spec, "train.seed", 0);
    if (!rc) rc = augment_options(spec, &lo);
    t.hard = (lathe_hard_negatives){(int)num(spec, "data.hard_background", 0), lo.seed, (int)num(spec, "train.epochs", 10),
                                    run_dir, NULL, -1, NULL};
    if (!rc && t.hard.k && (t.hard.k < 2 || !(lo.background < 1)))
        rc = lathe_fail(LATHE_EINVAL, "data.hard_background scores that many candidates per place of the background draw: "
                                      "0 (off) or 2..16, with data.background below 1");
    if (!rc && lathe_config_get(spec, "data.holdout_classes")) {
        t.held = calloc((size_t)t.d.classes, 1);
        rc = t.held ? lathe_holdout_classes(spec, (const char *const *)t.d.class_names, t.d.classes, t.held)
                    : lathe_fail(LATHE_ENOMEM, "classes");
    }
    if (!rc) rc = check_val_split(&t); /* before an epoch is spent, not after */
    if (!rc) rc = check_train_boxes(&t, lo.split);
    if (!rc) rc = lathe_det_loader_create(t.d.ds, &lo, &t.train);
    for (int s = 0; s < 2 && !rc; s++) rc = lathe_det_batch_init(&t.batch[s], batch, t.d.h, t.d.w);
    if (!rc && (!(t.assigned = malloc(sizeof *t.assigned * (size_t)batch * t.d.head.A)) ||
                !(t.score = malloc(sizeof *t.score * (size_t)batch * t.d.head.A))))
        rc = lathe_fail(LATHE_ENOMEM, "targets of a batch");
    lathe_det_loss_defaults(&t.loss, t.d.classes, t.d.bins);
    t.loss.w_cls = (float)num(spec, "train.loss.cls", t.loss.w_cls);
    t.loss.w_iou = (float)num(spec, "train.loss.box", t.loss.w_iou);
    t.loss.w_dfl = (float)num(spec, "train.loss.dfl", t.loss.w_dfl);
    t.loss.assign.topk = (int)num(spec, "train.assign.topk", t.loss.assign.topk);
    t.loss.cls_skip = t.held; /* a held-out class is neither a target nor a negative: its name stays unseen */
    t.hard.held = t.held;
    const char *cls_kind = lathe_config_str(spec, "train.loss.cls_kind", "bce");
    const char *iou_kind = lathe_config_str(spec, "train.loss.iou_kind", "ciou");
    t.loss.cls_kind = !strcmp(cls_kind, "focal") ? LATHE_CLS_FOCAL : !strcmp(cls_kind, "varifocal") ? LATHE_CLS_VARIFOCAL : LATHE_CLS_BCE;
    t.loss.iou_kind = !strcmp(iou_kind, "giou") ? LATHE_IOU_GIOU : LATHE_IOU_CIOU;
    if (!rc && ((t.loss.cls_kind == LATHE_CLS_BCE && strcmp(cls_kind, "bce")) ||
                (strcmp(iou_kind, "ciou") && strcmp(iou_kind, "giou"))))
        rc = lathe_fail(LATHE_EINVAL, "train.loss.cls_kind: varifocal, bce or focal; train.loss.iou_kind: ciou or giou");
    /* an open-vocabulary head scores its class names' prompts (checkpoints keep them: evaluation,
     * prediction and engines need no text model) */
    if (!rc) rc = lathe_vocab_set_classes(t.d.g, spec, (const char *const *)t.d.class_names, t.d.classes, 1);
    if (!rc) rc = lathe_trainer_prepare(spec, t.d.g, run_dir, resume);
    lathe_task task = {&t, "val_map", task_size, task_load, task_step, task_validate, 1};
    if (!rc) rc = lathe_trainer_run(spec, t.d.g, &task, run_dir, resume, stop);
    for (int s = 0; s < 2; s++) lathe_det_batch_free(&t.batch[s]);
    free(t.assigned), free(t.score), free(t.held);
    lathe_hard_negatives_free(&t.hard);
    lathe_det_loader_free(t.train);
    lathe_detector_close(&t.d);
    return rc;
}
