/* train.c - the classifier training loop and its evaluation (train.h). */
#include "train.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "graph.h"
#include "kernels/nn.h"
#include "libcore/base/config.h"
#include "libcore/base/error.h"
#include "libcore/base/fsutil.h"
#include "libcore/base/log.h"
#include "libcore/data/loader.h"
#include "libcore/dist/dist.h"
#include "libcore/eval/classify.h"
#include "trainer.h"

typedef struct {
    const cJSON *spec;
    lathe_dataset *ds;
    lathe_graph *g;
    lathe_loader *train, *val;
    int batch, classes;
    uint64_t seed;
    float smoothing;
    float *x[2]; /* two batch slots: one trains while the other is prepared */
    int32_t *y[2];
    uint64_t *cm; /* validation confusion matrix */
} trainer;

static double num(const cJSON *spec, const char *path, double def) { return lathe_config_num(spec, path, def); }

void lathe_train_augment_opts(const cJSON *spec, lathe_loader_opts *o) {
    o->flip = (float)lathe_config_prob(spec, "data.augment.flip", 0, 0.5);
    o->flipud = (float)lathe_config_prob(spec, "data.augment.flipud", 0, 0.5);
    o->rotate90 = (float)lathe_config_prob(spec, "data.augment.rotate90", 0, 0.5);
    o->crop = (float)num(spec, "data.augment.crop", 0);
    o->jitter = (float)num(spec, "data.augment.jitter", 0);
}

static int loader_for(trainer *t, const char *split_key, const char *def, int augment, lathe_loader **out) {
    int c, h, w;
    lathe_graph_input(t->g, &c, &h, &w);
    const char *name = lathe_config_str(t->spec, split_key, def);
    int split = lathe_split_parse(name);
    if (split < 0) return lathe_fail(LATHE_EINVAL, "%s: unknown split %s", split_key, name);
    lathe_loader_opts o = {.split = split, .c = c, .h = h, .w = w, .mean = (float)num(t->spec, "data.mean", 0.5),
                           .std = (float)num(t->spec, "data.std", 0.25), .shuffle = augment, .seed = t->seed};
    if (augment) lathe_train_augment_opts(t->spec, &o);
    return lathe_loader_create(t->ds, &o, out);
}

/* Builds the dataset and graph of a spec. */
static int setup(trainer *t, const cJSON *spec, const char *dataset_override) {
    memset(t, 0, sizeof *t);
    t->spec = spec;
    t->batch = lathe_trainer_local_batch(spec);
    t->seed = (uint64_t)num(spec, "train.seed", 0);
    if (t->batch < 1) return lathe_fail(LATHE_EINVAL, "train.batch must be >= 1");
    const char *dir = dataset_override ? dataset_override : lathe_config_str(spec, "data.dataset", NULL);
    if (!dir) return lathe_fail(LATHE_EINVAL, "data.dataset is required");
    int rc = lathe_dataset_open(dir, &t->ds);
    if (rc) return rc;
    const lathe_manifest *m = lathe_dataset_manifest(t->ds);
    /* a batch larger than the whole dataset is one step per epoch either way: no buffers for more */
    if ((uint64_t)t->batch > lathe_dataset_count(t->ds) && lathe_dataset_count(t->ds) > 0) t->batch = (int)lathe_dataset_count(t->ds);
    cJSON *model = cJSON_Duplicate(lathe_config_get(spec, "model"), 1);
    if (!cJSON_IsObject(model)) {
        cJSON_Delete(model);
        return lathe_fail(LATHE_EINVAL, "the spec has no model mapping");
    }
    if (!cJSON_GetObjectItemCaseSensitive(model, "classes")) cJSON_AddNumberToObject(model, "classes", m->nclasses);
    t->classes = (int)cJSON_GetObjectItemCaseSensitive(model, "classes")->valuedouble;
    rc = t->classes < m->nclasses ? lathe_fail(LATHE_EINVAL, "model.classes is %d but %s has %d classes: the samples of "
                                                             "the others would be dropped", t->classes, dir, m->nclasses)
                                  : lathe_graph_build(model, t->batch, t->seed, &t->g);
    cJSON_Delete(model);
    if (rc) return rc;
    int k;
    lathe_graph_output(t->g, &k);
    if (k != t->classes) return lathe_fail(LATHE_EINVAL, "the model ends in %d outputs for %d classes", k, t->classes);
    int c, h, w;
    lathe_graph_input(t->g, &c, &h, &w);
    for (int s = 0; s < 2; s++) {
        t->x[s] = malloc((size_t)t->batch * c * h * w * sizeof *t->x[s]);
        t->y[s] = malloc((size_t)t->batch * sizeof *t->y[s]);
        if (!t->x[s] || !t->y[s]) return lathe_fail(LATHE_ENOMEM, "batch buffers");
    }
    return 0;
}

static void teardown(trainer *t) {
    lathe_loader_free(t->train), lathe_loader_free(t->val);
    lathe_graph_free(t->g);
    lathe_dataset_close(t->ds);
    for (int s = 0; s < 2; s++) free(t->x[s]), free(t->y[s]);
}

/* Forward over a whole loader in eval mode: mean loss and the confusion matrix (k x k). With
 * several ranks each takes every ranks-th batch and the sums are gathered. */
static int evaluate(trainer *t, lathe_loader *l, uint64_t *cm, double *loss) {
    int k = t->classes;
    memset(cm, 0, sizeof(uint64_t) * k * k);
    double sums[2] = {0, 0}; /* loss x samples, samples */
    uint64_t n = lathe_loader_size(l), stride = lathe_dist_batch_stride((uint64_t)t->batch);
    int rc = 0;
    for (uint64_t first = lathe_dist_first_batch((uint64_t)t->batch); !rc && first < n; first += stride) {
        int got = lathe_loader_batch(l, 0, first, t->batch, t->x[0], t->y[0]);
        if (got < 0) {
            rc = got;
            break;
        }
        int c, h, w;
        float *in = lathe_graph_input(t->g, &c, &h, &w);
        memcpy(in, t->x[0], sizeof(float) * (size_t)got * c * h * w);
        if ((rc = lathe_graph_forward(t->g, got, 0))) break;
        const float *out = lathe_graph_output(t->g, NULL);
        sums[0] += lathe_k_softmax_ce_f32(got, k, out, t->y[0], 0, NULL) * got;
        for (int b = 0; b < got; b++) {
            int best = 0;
            for (int j = 1; j < k; j++)
                if (out[(size_t)b * k + j] > out[(size_t)b * k + best]) best = j;
            if (t->y[0][b] >= 0 && t->y[0][b] < k) cm[(size_t)t->y[0][b] * k + best]++;
        }
        sums[1] += got;
    }
    if ((rc = lathe_dist_agree(rc))) return rc;
    if ((rc = lathe_dist_sum_u64(cm, (size_t)k * k)) || (rc = lathe_dist_sum_f64(sums, 2))) return rc;
    *loss = sums[1] > 0 ? sums[0] / sums[1] : 0;
    return 0;
}

static double accuracy(const uint64_t *cm, int k) {
    uint64_t all = 0, right = 0;
    for (int i = 0; i < k; i++)
        for (int j = 0; j < k; j++) all += cm[i * k + j], right += i == j ? cm[i * k + j] : 0;
    return all ? (double)right / (double)all : 0;
}

/* ---- the classifier as a lathe_task ---- */

static uint64_t task_size(void *ctx) { return lathe_loader_size(((trainer *)ctx)->train); }

static int task_load(void *ctx, int slot, int epoch, uint64_t pos, int n) {
    trainer *t = ctx;
    return lathe_loader_batch(t->train, epoch, pos, n, t->x[slot], t->y[slot]);
}

static double task_step(void *ctx, int slot, int n, lathe_graph *g, uint64_t step) {
    trainer *t = ctx;
    if (!n) return 0; /* this rank's share of a short last batch */
    int c, h, w;
    float *in = lathe_graph_input(g, &c, &h, &w);
    memcpy(in, t->x[slot], sizeof(float) * (size_t)n * c * h * w);
    int rc = lathe_graph_forward(g, n, step);
    if (rc) return rc;
    return lathe_k_softmax_ce_f32(n, t->classes, lathe_graph_output(g, NULL), t->y[slot], t->smoothing,
                                  lathe_graph_doutput(g));
}

static int task_validate(void *ctx, lathe_graph *g, cJSON *entry, double *metric) {
    trainer *t = ctx;
    (void)g;
    double loss;
    int rc = evaluate(t, t->val, t->cm, &loss);
    if (rc) return rc;
    *metric = accuracy(t->cm, t->classes);
    cJSON_AddNumberToObject(entry, "val_loss", loss);
    cJSON_AddNumberToObject(entry, "val_accuracy", *metric);
    return 0;
}

int lathe_train_classifier(const cJSON *spec, const char *run_dir, int resume, volatile int *stop) {
    trainer t;
    int rc = setup(&t, spec, NULL);
    if (!rc) rc = loader_for(&t, "data.train_split", "train", 1, &t.train);
    if (!rc) rc = loader_for(&t, "data.val_split", "val", 0, &t.val);
    if (!rc) rc = lathe_trainer_prepare(spec, t.g, run_dir, resume);
    if (!rc && !(t.cm = calloc((size_t)t.classes * t.classes, sizeof *t.cm))) rc = lathe_fail(LATHE_ENOMEM, "confusion matrix");
    t.smoothing = (float)num(spec, "train.label_smoothing", 0);
    lathe_task task = {&t, "val_accuracy", task_size, task_load, task_step, task_validate, 0};
    if (!rc) rc = lathe_trainer_run(spec, t.g, &task, run_dir, resume, stop);
    free(t.cm);
    teardown(&t);
    return rc;
}

int lathe_eval_classifier(const cJSON *spec, const char *checkpoint, const char *dataset, const char *split,
                          const char *out_dir, cJSON **report) {
    if (report) *report = NULL;
    trainer t;
    int rc = setup(&t, spec, dataset);
    lathe_loader *l = NULL;
    if (!rc) rc = lathe_graph_set_device(t.g, lathe_config_str(spec, "train.device", "auto"));
    if (!rc) rc = lathe_checkpoint_load(checkpoint, t.g, NULL);
    if (!rc) lathe_graph_set_train(t.g, 0);
    if (!rc) {
        int c, h, w;
        lathe_graph_input(t.g, &c, &h, &w);
        int sp = lathe_split_parse(split);
        lathe_loader_opts o = {.split = sp, .c = c, .h = h, .w = w, .mean = (float)num(spec, "data.mean", 0.5),
                               .std = (float)num(spec, "data.std", 0.25)};
        rc = sp < 0 ? lathe_fail(LATHE_EINVAL, "unknown split %s", split) : lathe_loader_create(t.ds, &o, &l);
    }
    uint64_t *cm = rc ? NULL : calloc((size_t)t.classes * t.classes, sizeof *cm);
    double loss = 0;
    if (!rc && !cm) rc = lathe_fail(LATHE_ENOMEM, "confusion matrix");
    if (!rc) rc = evaluate(&t, l, cm, &loss);
    if (!rc) {
        const lathe_manifest *m = lathe_dataset_manifest(t.ds);
        const char **names = calloc((size_t)t.classes, sizeof *names);
        char (*fallback)[16] = calloc((size_t)t.classes, sizeof *fallback);
        for (int i = 0; names && fallback && i < t.classes; i++) {
            snprintf(fallback[i], sizeof fallback[i], "class %d", i);
            names[i] = i < m->nclasses ? m->class_names[i] : fallback[i];
        }
        cJSON *r = names && fallback ? lathe_classify_report(cm, t.classes, names, loss) : NULL;
        free(names), free(fallback);
        if (!r) rc = lathe_fail(LATHE_ENOMEM, "report");
        else {
            cJSON_AddStringToObject(r, "checkpoint", checkpoint);
            cJSON_AddStringToObject(r, "split", split);
            char title[4400];
            snprintf(title, sizeof title, "lathe eval: %s on %s", checkpoint, split);
            rc = lathe_classify_write(r, title, out_dir);
            if (report && !rc) *report = r;
            else cJSON_Delete(r);
        }
    }
    free(cm);
    lathe_loader_free(l);
    teardown(&t);
    return rc;
}
