/* fusion_eval.c - scoring a fusion run (fusion.h): the fused model's top class against the image
 * labels (the classifier's report), average precision of each class as a multi-label detector of
 * it, and the ablation: the same model with one input masked, and separately trained runs. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fusion.h"
#include "fusion_internal.h"
#include "kernels/nn.h"
#include "libcore/anomaly/metrics.h"
#include "libcore/base/config.h"
#include "libcore/base/error.h"
#include "libcore/base/log.h"
#include "libcore/eval/classify.h"
#include "libcore/nn/checkpoint.h"

typedef struct {
    size_t n;
    float *logits, *target;
    int32_t *label;
    uint64_t without_sensors;
    double loss;
} fx_pass;

static void pass_free(fx_pass *p) { free(p->logits), free(p->target), free(p->label); }

/* Runs the model over the split once per entry of modes (the inputs each pass gives it), keeping
 * every sample's logits and targets in p[m]; each batch is read and filled once for all of them. */
static int run_passes(fx_run *r, lathe_loader *l, const int *modes, int nmodes, fx_pass *p) {
    size_t n = lathe_loader_size(l);
    int k = r->classes, rc = 0;
    for (int m = 0; m < nmodes; m++) {
        memset(&p[m], 0, sizeof p[m]);
        p[m].n = n;
        p[m].logits = malloc(sizeof(float) * (n + 1) * k), p[m].target = malloc(sizeof(float) * (n + 1) * k);
        p[m].label = malloc(sizeof(int32_t) * (n + 1));
        if (!p[m].logits || !p[m].target || !p[m].label) rc = lathe_fail(LATHE_ENOMEM, "scores of %zu samples", n);
    }
    fx_batch b = {0};
    if (!rc) rc = fx_batch_alloc(r, &b);
    lathe_graph_set_train(r->g, 0);
    for (uint64_t first = 0; !rc && first < n; first += (uint64_t)r->batch) {
        int got = lathe_loader_batch(l, 0, first, r->batch, b.x, b.label);
        if (got < 0) rc = got;
        if (!rc) lathe_loader_samples(l, 0, first, got, b.index);
        if (!rc) rc = fx_fill(r, &b, got);
        for (int m = 0; !rc && m < nmodes; m++) {
            if ((rc = fx_forward(r, &b, got, modes[m], 0, 0))) break;
            const float *out = lathe_graph_output(r->g, NULL);
            memcpy(p[m].logits + first * k, out, sizeof(float) * (size_t)got * k);
            memcpy(p[m].target + first * k, b.target, sizeof(float) * (size_t)got * k);
            memcpy(p[m].label + first, b.label, sizeof(int32_t) * (size_t)got);
            p[m].loss += lathe_k_bce_logits_f32((size_t)got * k, out, b.target, NULL) * got;
            for (int i = 0; i < got; i++) p[m].without_sensors += !b.has_sensors[i];
        }
    }
    for (int m = 0; m < nmodes && n; m++) p[m].loss /= (double)n;
    fx_batch_free(&b);
    return rc;
}

static int top(const float *row, int k) {
    int best = 0;
    for (int j = 1; j < k; j++) best = row[j] > row[best] ? j : best;
    return best;
}

/* accuracy (top class against the image label) and mAP (mean AP over classes with positives) of a
 * pass; with `detail` also the per-class AP list. */
static int pass_metrics(const fx_pass *p, int k, const char *const *names, cJSON *out, int detail) {
    float *col = malloc(sizeof(float) * (p->n + 1));
    uint8_t *pos = malloc(p->n + 1);
    if (!col || !pos) {
        free(col), free(pos);
        return lathe_fail(LATHE_ENOMEM, "average precision");
    }
    size_t right = 0, counted = 0;
    for (size_t i = 0; i < p->n; i++) right += top(p->logits + i * k, k) == p->label[i], counted += p->label[i] >= 0;
    double sum = 0;
    int classes = 0, rc = 0;
    cJSON *list = detail ? cJSON_AddArrayToObject(out, "classes") : NULL;
    for (int c = 0; !rc && c < k; c++) { /* each class's score as a detector of that class */
        size_t positives = 0;
        for (size_t i = 0; i < p->n; i++) col[i] = p->logits[i * k + c], positives += pos[i] = p->target[i * k + c] > 0.5f;
        double ap;
        rc = lathe_average_precision(col, pos, p->n, &ap);
        if (!rc && ap >= 0) sum += ap, classes++;
        if (rc || !list) continue;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", names[c]);
        cJSON_AddNumberToObject(o, "positives", (double)positives);
        ap >= 0 ? cJSON_AddNumberToObject(o, "ap", ap) : cJSON_AddNullToObject(o, "ap");
        cJSON_AddItemToArray(list, o);
    }
    cJSON_AddNumberToObject(out, "accuracy", counted ? (double)right / (double)counted : 0);
    cJSON_AddNumberToObject(out, "map", classes ? sum / classes : 0);
    free(col), free(pos);
    return rc;
}

/* A run's model (its config.yaml, checkpoint and sensor statistics) on dataset. */
static int open_run(fx_run *r, const cJSON *spec, const char *checkpoint, const char *run_dir, const char *dataset) {
    int rc = fx_open(r, spec, dataset);
    if (!rc) rc = fx_sensor_norm(r, run_dir, 0);
    if (!rc) rc = lathe_checkpoint_load(checkpoint, r->g, NULL);
    if (!rc) rc = lathe_graph_set_device(r->g, lathe_config_str(spec, "train.device", "auto"));
    return rc;
}

/* The run folder of a checkpoint: RUN for RUN/checkpoints/X.safetensors, else the file's folder. */
static void run_of(const char *checkpoint, char *out, size_t cap) {
    snprintf(out, cap, "%s", checkpoint);
    char *slash = strrchr(out, '/');
    if (!slash) {
        snprintf(out, cap, ".");
        return;
    }
    *slash = 0;
    size_t len = strlen(out);
    if (len >= 12 && !strcmp(out + len - 12, "/checkpoints")) out[len - 12] = 0;
    else if (!strcmp(out, "checkpoints")) snprintf(out, cap, ".");
}

/* eval.baselines.<key>: a separately trained run scored on the same split; its metrics into o. */
static int baseline(const cJSON *spec, const char *key, const char *dataset, int split, const char *const *names, cJSON *o) {
    char path[4400];
    snprintf(path, sizeof path, "eval.baselines.%s", key);
    const char *run = lathe_config_str(spec, path, NULL);
    if (!run) return 0;
    cJSON *bspec = NULL;
    fx_run b;
    memset(&b, 0, sizeof b);
    lathe_loader *l = NULL;
    fx_pass p = {0};
    snprintf(path, sizeof path, "%s/config.yaml", run);
    int rc = lathe_config_load(path, &bspec);
    if (!rc && strcmp(lathe_config_str(bspec, "task", "classify"), "fusion"))
        rc = lathe_fail(LATHE_EINVAL, "eval.baselines.%s: %s is not a fusion run", key, run);
    snprintf(path, sizeof path, "%s/checkpoints/best.safetensors", run);
    if (!rc) rc = open_run(&b, bspec, path, run, dataset);
    if (!rc) rc = fx_loader(&b, split, 0, &l);
    if (!rc) rc = run_passes(&b, l, &b.inputs, 1, &p);
    cJSON *m = rc ? NULL : cJSON_AddObjectToObject(o, "baseline");
    if (m) {
        cJSON_AddStringToObject(m, "run", run);
        cJSON_AddStringToObject(m, "inputs", b.inputs == FX_IMAGE ? "image" : b.inputs == FX_SENSORS ? "sensors" : "both");
        rc = pass_metrics(&p, b.classes, names, m, 0);
    }
    pass_free(&p);
    lathe_loader_free(l);
    fx_close(&b);
    cJSON_Delete(bspec);
    return rc;
}

int lathe_eval_fusion(const cJSON *spec, const char *checkpoint, const char *dataset, const char *split,
                      const char *out_dir, cJSON **report) {
    if (report) *report = NULL;
    fx_run r;
    memset(&r, 0, sizeof r);
    lathe_loader *l = NULL;
    fx_pass pass[3];
    memset(pass, 0, sizeof pass);
    char run_dir[4300];
    run_of(checkpoint, run_dir, sizeof run_dir);
    int sp = lathe_split_parse(split);
    int rc = sp < 0 ? lathe_fail(LATHE_EINVAL, "unknown split %s", split) : open_run(&r, spec, checkpoint, run_dir, dataset);
    if (!rc) rc = fx_loader(&r, sp, 0, &l);
    static const int modes[3] = {FX_BOTH, FX_IMAGE, FX_SENSORS};
    if (!rc) rc = run_passes(&r, l, modes, 3, pass);
    int k = r.classes;
    const char *const *names = rc ? NULL : (const char *const *)lathe_dataset_manifest(r.ds)->class_names;
    uint64_t *cm = rc ? NULL : calloc((size_t)k * k, sizeof *cm);
    if (!rc && !cm) rc = lathe_fail(LATHE_ENOMEM, "confusion matrix");
    const fx_pass *fused = &pass[r.inputs == FX_BOTH ? 0 : r.inputs == FX_IMAGE ? 1 : 2]; /* what the run was trained on */
    for (size_t i = 0; !rc && i < fused->n; i++)
        if (fused->label[i] >= 0 && fused->label[i] < k) cm[(size_t)fused->label[i] * k + top(fused->logits + i * k, k)]++;
    cJSON *rep = rc ? NULL : lathe_classify_report(cm, k, names, fused->loss);
    if (!rc && !rep) rc = lathe_fail(LATHE_ENOMEM, "report");
    if (!rc) {
        cJSON_AddStringToObject(rep, "task", "fusion");
        cJSON_AddStringToObject(rep, "inputs", r.inputs == FX_IMAGE ? "image" : r.inputs == FX_SENSORS ? "sensors" : "both");
        cJSON_AddNumberToObject(rep, "samples_without_sensors", (double)fused->without_sensors);
        rc = pass_metrics(fused, k, names, cJSON_AddObjectToObject(rep, "multilabel"), 1);
        cJSON *ab = cJSON_AddObjectToObject(rep, "ablation");
        static const char *const keys[3] = {"fused", "image", "sensor"};
        static const char *const baseline_keys[3] = {NULL, "image", "sensors"};
        for (int m = 0; !rc && m < 3; m++) {
            cJSON *o = cJSON_AddObjectToObject(ab, keys[m]);
            cJSON_AddStringToObject(o, "how", m == 0 ? "both inputs" : m == 1 ? "the sensor input masked (as a missing window)"
                                                                         : "the image masked");
            rc = pass_metrics(&pass[m], k, names, o, 0);
            if (!rc && baseline_keys[m]) rc = baseline(spec, baseline_keys[m], dataset ? dataset : lathe_config_str(spec, "data.dataset", NULL), sp, names, o);
        }
        cJSON_AddStringToObject(rep, "checkpoint", checkpoint);
        cJSON_AddStringToObject(rep, "split", split);
        if (!rc && fused->without_sensors)
            lathe_log(LATHE_LOG_INFO, "fusion", "%llu samples without a sensor window: classified from the image",
                      (unsigned long long)fused->without_sensors);
        char title[4400];
        snprintf(title, sizeof title, "lathe eval: %s on %s", checkpoint, split);
        if (!rc) rc = lathe_classify_write(rep, title, out_dir);
    }
    if (report && !rc) *report = rep;
    else cJSON_Delete(rep);
    free(cm);
    for (int m = 0; m < 3; m++) pass_free(&pass[m]);
    lathe_loader_free(l);
    fx_close(&r);
    return rc;
}
