/* fusion.c - the image + sensor fusion head (fusion.h): the run, its batches (images from the
 * classification loader, standardized sensor windows, multi-label targets), modality dropout, and
 * training on the shared loop. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fusion.h"
#include "fusion_internal.h"
#include "kernels/nn.h"
#include "libcore/base/config.h"
#include "libcore/base/error.h"
#include "libcore/base/fsutil.h"
#include "libcore/base/rng.h"
#include "libcore/dist/dist.h"
#include "libcore/nn/train.h"
#include "libcore/nn/trainer.h"

int fx_open(fx_run *r, const cJSON *spec, const char *dataset) {
    memset(r, 0, sizeof *r);
    r->spec = spec;
    r->batch = lathe_trainer_local_batch(spec);
    r->seed = (uint64_t)lathe_config_num(spec, "train.seed", 0);
    const char *inputs = lathe_config_str(spec, "fusion.inputs", "both");
    r->inputs = !strcmp(inputs, "both") ? FX_BOTH : !strcmp(inputs, "image") ? FX_IMAGE : !strcmp(inputs, "sensors") ? FX_SENSORS : -1;
    r->drop_image = (float)lathe_config_num(spec, "fusion.modality_dropout.image", 0.1);
    r->drop_sensors = (float)lathe_config_num(spec, "fusion.modality_dropout.sensors", 0.2);
    if (r->inputs < 0) return lathe_fail(LATHE_EINVAL, "fusion.inputs: both, image or sensors, not %s", inputs);
    if (!(r->drop_image >= 0 && r->drop_sensors >= 0 && r->drop_image + r->drop_sensors <= 1))
        return lathe_fail(LATHE_EINVAL, "fusion.modality_dropout: image and sensors in [0, 1], together at most 1");
    if (r->batch < 1) return lathe_fail(LATHE_EINVAL, "train.batch must be >= 1");
    const char *dir = dataset ? dataset : lathe_config_str(spec, "data.dataset", NULL);
    if (!dir) return lathe_fail(LATHE_EINVAL, "data.dataset is required");
    int rc = lathe_dataset_open(dir, &r->ds);
    if (rc) return rc;
    const lathe_manifest *m = lathe_dataset_manifest(r->ds);
    r->classes = m->nclasses, r->good = lathe_good_class((const char *const *)m->class_names, m->nclasses);
    if (r->classes < 2) return lathe_fail(LATHE_EINVAL, "%s has %d classes: a fusion head needs two or more", dir, r->classes);
    if (m->sensor_steps < 1 || m->sensor_channels < 1)
        return lathe_fail(LATHE_EINVAL, "%s holds no sensor windows: a fusion head reads images and sensors", dir);
    cJSON *model = cJSON_Duplicate(lathe_config_get(spec, "model"), 1);
    if (!cJSON_IsObject(model)) {
        cJSON_Delete(model);
        return lathe_fail(LATHE_EINVAL, "the spec has no model mapping");
    }
    if (!cJSON_GetObjectItemCaseSensitive(model, "classes")) cJSON_AddNumberToObject(model, "classes", r->classes);
    rc = lathe_graph_build(model, r->batch, r->seed, &r->g);
    cJSON_Delete(model);
    if (rc) return rc;
    int one = 0, k;
    lathe_graph_input(r->g, &r->c, &r->h, &r->w);
    if (!lathe_graph_input_named(r->g, "sensors", &r->S, &r->T, &one))
        return lathe_fail(LATHE_EINVAL, "a fusion model declares its sensor input: {name: sensors, type: input, shape: "
                                        "[%d, %d, 1]} (channels, steps)", m->sensor_channels, m->sensor_steps);
    if (one != 1 || r->S != m->sensor_channels || r->T != m->sensor_steps)
        return lathe_fail(LATHE_EINVAL, "the sensors input is [%d, %d, %d]; %s's windows need [%d, %d, 1] (channels, steps)",
                          r->S, r->T, one, dir, m->sensor_channels, m->sensor_steps);
    lathe_graph_output(r->g, &k);
    return k == r->classes ? 0 : lathe_fail(LATHE_EINVAL, "the model ends in %d outputs for %d classes", k, r->classes);
}

void fx_close(fx_run *r) {
    lathe_graph_free(r->g);
    lathe_dataset_close(r->ds);
    free(r->smean), free(r->sstd);
    memset(r, 0, sizeof *r);
}

int fx_batch_alloc(const fx_run *r, fx_batch *b) {
    size_t n = (size_t)r->batch;
    b->x = malloc(sizeof(float) * n * r->c * r->h * r->w), b->s = malloc(sizeof(float) * n * r->S * r->T);
    b->target = malloc(sizeof(float) * n * r->classes), b->label = malloc(sizeof(int32_t) * n);
    b->index = malloc(sizeof(uint64_t) * n), b->has_sensors = malloc(n);
    return b->x && b->s && b->target && b->label && b->index && b->has_sensors ? 0 : lathe_fail(LATHE_ENOMEM, "batch buffers");
}

void fx_batch_free(fx_batch *b) {
    free(b->x), free(b->s), free(b->target), free(b->label), free(b->index), free(b->has_sensors);
    memset(b, 0, sizeof *b);
}

int fx_fill(const fx_run *r, fx_batch *b, int n) {
    for (int i = 0; i < n; i++) {
        lathe_dataset_sample smp;
        int rc = lathe_dataset_get(r->ds, b->index[i], LATHE_READ_SENSORS | LATHE_READ_BOXES, &smp);
        if (rc) return rc;
        float *s = b->s + (size_t)i * r->S * r->T, *t = b->target + (size_t)i * r->classes;
        int any = 0;
        for (int ch = 0; ch < r->S; ch++) /* [S, T]: channel by channel, standardized; a missing value is 0 */
            for (int k = 0; k < r->T; k++) {
                float v = smp.sensors && smp.sensor_channels == r->S ? smp.sensors[(size_t)k * r->S + ch] : NAN;
                any |= isfinite(v);
                s[(size_t)ch * r->T + k] = isfinite(v) ? (v - r->smean[ch]) / r->sstd[ch] : 0;
            }
        b->has_sensors[i] = (uint8_t)any;
        int defects = 0;
        for (int k = 0; k < r->classes; k++) t[k] = 0;
        if (smp.label >= 0 && smp.label < r->classes && smp.label != r->good) t[smp.label] = 1, defects++;
        for (size_t j = 0; j < smp.nboxes; j++) {
            int c = smp.boxes[j].label;
            if (c >= 0 && c < r->classes && c != r->good) defects += t[c] == 0, t[c] = 1;
        }
        if (!defects && r->good >= 0) t[r->good] = 1;
        lathe_dataset_sample_free(&smp);
    }
    return 0;
}

int fx_forward(fx_run *r, const fx_batch *b, int n, int inputs, uint64_t dropout_key, uint64_t step) {
    float *img = lathe_graph_input(r->g, NULL, NULL, NULL), *sen = lathe_graph_input_named(r->g, "sensors", NULL, NULL, NULL);
    size_t pi = (size_t)r->c * r->h * r->w, ps = (size_t)r->S * r->T;
    for (int i = 0; i < n; i++) {
        int mask_img = inputs == FX_SENSORS, mask_sen = inputs == FX_IMAGE || !b->has_sensors[i];
        if (dropout_key) { /* one draw per sample: drop the sensors, or the image, or neither; never both */
            uint64_t st = lathe_mix64(dropout_key ^ lathe_mix64((uint64_t)i + 1));
            double u = lathe_rng_unit(&st);
            if (inputs == FX_BOTH && !mask_sen && u < r->drop_sensors) mask_sen = 1;
            else if (inputs == FX_BOTH && !mask_sen && u >= 1 - r->drop_image) mask_img = 1;
        }
        if (mask_img) memset(img + i * pi, 0, sizeof(float) * pi);
        else memcpy(img + i * pi, b->x + i * pi, sizeof(float) * pi);
        if (mask_sen) memset(sen + i * ps, 0, sizeof(float) * ps);
        else memcpy(sen + i * ps, b->s + i * ps, sizeof(float) * ps);
    }
    return lathe_graph_forward(r->g, n, step);
}

int fx_loader(const fx_run *r, int split, int train, lathe_loader **out) {
    lathe_loader_opts o = {.split = split, .c = r->c, .h = r->h, .w = r->w, .mean = (float)lathe_config_num(r->spec, "data.mean", 0.5),
                           .std = (float)lathe_config_num(r->spec, "data.std", 0.25), .shuffle = train, .seed = r->seed};
    if (train) lathe_train_augment_opts(r->spec, &o);
    return lathe_loader_create(r->ds, &o, out);
}

/* ---- sensor statistics: computed once from the train split, kept in RUN/sensor_norm.json ---- */

static int compute_norm(fx_run *r) {
    double *sum = calloc((size_t)r->S * 3, sizeof(double)), *sq = sum ? sum + r->S : NULL, *cnt = sum ? sum + 2 * r->S : NULL;
    if (!sum) return lathe_fail(LATHE_ENOMEM, "sensor statistics");
    int rc = 0;
    for (int pass = 0; pass < 2 && !rc; pass++) { /* means, then spreads about them */
        for (uint64_t i = 0; !rc && i < lathe_dataset_count(r->ds); i++) {
            lathe_dataset_sample s;
            rc = lathe_dataset_get(r->ds, i, LATHE_READ_SENSORS, &s);
            for (int t = 0; !rc && s.split == LATHE_SPLIT_TRAIN && s.sensors && t < s.sensor_steps; t++)
                for (int ch = 0; ch < r->S && ch < s.sensor_channels; ch++) {
                    double v = s.sensors[(size_t)t * s.sensor_channels + ch];
                    if (!isfinite(v)) continue;
                    if (pass == 0) sum[ch] += v, cnt[ch] += 1;
                    else sq[ch] += (v - r->smean[ch]) * (v - r->smean[ch]);
                }
            lathe_dataset_sample_free(&s);
        }
        for (int ch = 0; pass == 0 && ch < r->S; ch++) r->smean[ch] = (float)(cnt[ch] ? sum[ch] / cnt[ch] : 0);
    }
    for (int ch = 0; !rc && ch < r->S; ch++) { /* a channel without values, or a constant one, keeps unit spread */
        double sd = cnt[ch] > 1 ? sqrt(sq[ch] / (cnt[ch] - 1)) : 0;
        r->sstd[ch] = (float)(sd > 1e-6 ? sd : 1);
    }
    free(sum);
    return rc;
}

int fx_sensor_norm(fx_run *r, const char *run_dir, int compute) {
    char path[4300];
    snprintf(path, sizeof path, "%s/sensor_norm.json", run_dir);
    r->smean = calloc((size_t)r->S, sizeof(float)), r->sstd = calloc((size_t)r->S, sizeof(float));
    if (!r->smean || !r->sstd) return lathe_fail(LATHE_ENOMEM, "sensor statistics");
    int rc = 0;
    if (compute) {
        rc = compute_norm(r);
        cJSON *j = rc ? NULL : cJSON_CreateObject();
        cJSON *names = j ? cJSON_AddArrayToObject(j, "channels") : NULL, *mean = j ? cJSON_AddArrayToObject(j, "mean") : NULL;
        cJSON *std = j ? cJSON_AddArrayToObject(j, "std") : NULL;
        const lathe_manifest *m = lathe_dataset_manifest(r->ds);
        for (int ch = 0; std && ch < r->S; ch++) {
            cJSON_AddItemToArray(names, cJSON_CreateString(m->sensor_names && m->sensor_names[ch] ? m->sensor_names[ch] : ""));
            cJSON_AddItemToArray(mean, cJSON_CreateNumber(r->smean[ch]));
            cJSON_AddItemToArray(std, cJSON_CreateNumber(r->sstd[ch]));
        }
        if (!rc) rc = std ? lathe_mkdirs(run_dir) : lathe_fail(LATHE_ENOMEM, "sensor statistics");
        if (!rc) rc = lathe_json_save(path, j);
        cJSON_Delete(j);
        return rc;
    }
    cJSON *j = NULL;
    rc = lathe_json_load(path, 1 << 20, &j);
    const cJSON *mean = cJSON_GetObjectItemCaseSensitive(j, "mean"), *std = cJSON_GetObjectItemCaseSensitive(j, "std");
    if (!rc && (cJSON_GetArraySize(mean) != r->S || cJSON_GetArraySize(std) != r->S))
        rc = lathe_fail(LATHE_EFORMAT, "%s: statistics of %d channels, the model reads %d", path, cJSON_GetArraySize(mean), r->S);
    for (int ch = 0; !rc && ch < r->S; ch++) {
        const cJSON *a = cJSON_GetArrayItem(mean, ch), *b = cJSON_GetArrayItem(std, ch);
        if (!cJSON_IsNumber(a) || !cJSON_IsNumber(b) || !isfinite(a->valuedouble) || !(b->valuedouble > 0))
            rc = lathe_fail(LATHE_EFORMAT, "%s: channel %d's statistics", path, ch);
        else r->smean[ch] = (float)a->valuedouble, r->sstd[ch] = (float)b->valuedouble;
    }
    cJSON_Delete(j);
    return rc;
}

/* ---- training ---- */

typedef struct {
    fx_run r;
    lathe_loader *train, *val;
    fx_batch b[2], vb;
} fx_train;

static uint64_t task_size(void *ctx) { return lathe_loader_size(((fx_train *)ctx)->train); }

static int task_load(void *ctx, int slot, int epoch, uint64_t pos, int n) {
    fx_train *t = ctx;
    fx_batch *b = &t->b[slot];
    int got = lathe_loader_batch(t->train, epoch, pos, n, b->x, b->label);
    if (got > 0) lathe_loader_samples(t->train, epoch, pos, got, b->index);
    int rc = got > 0 ? fx_fill(&t->r, b, got) : 0;
    return rc ? rc : got;
}

static double task_step(void *ctx, int slot, int n, lathe_graph *g, uint64_t step) {
    fx_train *t = ctx;
    if (!n) return 0; /* this rank's share of a short last batch */
    int rc = fx_forward(&t->r, &t->b[slot], n, t->r.inputs, lathe_mix64(t->r.seed ^ (step * 0x9e3779b97f4a7c15ull)) | 1, step);
    if (rc) return rc;
    return lathe_k_bce_logits_f32((size_t)n * t->r.classes, lathe_graph_output(g, NULL), t->b[slot].target,
                                  lathe_graph_doutput(g));
}

static int task_validate(void *ctx, lathe_graph *g, cJSON *entry, double *metric) {
    fx_train *t = ctx;
    uint64_t n = lathe_loader_size(t->val), stride = lathe_dist_batch_stride((uint64_t)t->r.batch);
    double sums[2] = {0, 0}; /* loss x samples, right; with several ranks each takes every ranks-th batch */
    int k = t->r.classes, rc = 0;
    for (uint64_t first = lathe_dist_first_batch((uint64_t)t->r.batch); !rc && first < n; first += stride) {
        int got = lathe_loader_batch(t->val, 0, first, t->r.batch, t->vb.x, t->vb.label);
        if (got < 0) {
            rc = got;
            break;
        }
        lathe_loader_samples(t->val, 0, first, got, t->vb.index);
        rc = fx_fill(&t->r, &t->vb, got);
        if (!rc) rc = fx_forward(&t->r, &t->vb, got, t->r.inputs, 0, 0);
        if (rc) break;
        const float *out = lathe_graph_output(g, NULL);
        sums[0] += lathe_k_bce_logits_f32((size_t)got * k, out, t->vb.target, NULL) * got;
        for (int b = 0; b < got; b++) {
            int best = 0;
            for (int j = 1; j < k; j++) best = out[(size_t)b * k + j] > out[(size_t)b * k + best] ? j : best;
            sums[1] += best == t->vb.label[b];
        }
    }
    if ((rc = lathe_dist_agree(rc)) || (rc = lathe_dist_sum_f64(sums, 2))) return rc;
    *metric = n ? sums[1] / (double)n : 0;
    cJSON_AddNumberToObject(entry, "val_loss", n ? sums[0] / (double)n : 0);
    cJSON_AddNumberToObject(entry, "val_accuracy", *metric);
    return 0;
}

int lathe_train_fusion(const cJSON *spec, const char *run_dir, int resume, volatile int *stop) {
    fx_train t;
    memset(&t, 0, sizeof t);
    int rc = fx_open(&t.r, spec, NULL);
    char norm[4300];
    snprintf(norm, sizeof norm, "%s/sensor_norm.json", run_dir);
    if (!rc) rc = fx_sensor_norm(&t.r, run_dir, !(resume && !access(norm, F_OK))); /* a resume keeps its statistics */
    if (!rc) rc = fx_loader(&t.r, LATHE_SPLIT_TRAIN, 1, &t.train);
    if (!rc) rc = fx_loader(&t.r, LATHE_SPLIT_VAL, 0, &t.val);
    for (int s = 0; !rc && s < 2; s++) rc = fx_batch_alloc(&t.r, &t.b[s]);
    if (!rc) rc = fx_batch_alloc(&t.r, &t.vb);
    if (!rc) rc = lathe_trainer_prepare(spec, t.r.g, run_dir, resume);
    lathe_task task = {&t, "val_accuracy", task_size, task_load, task_step, task_validate, 0};
    if (!rc) rc = lathe_trainer_run(spec, t.r.g, &task, run_dir, resume, stop);
    for (int s = 0; s < 2; s++) fx_batch_free(&t.b[s]);
    fx_batch_free(&t.vb);
    lathe_loader_free(t.train), lathe_loader_free(t.val);
    fx_close(&t.r);
    return rc;
}
