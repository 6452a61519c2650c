/* contrastive.c - training an image-text head (contrastive.h): the run's texts embedded once by
 * the frozen text encoder, then the shared training loop (libcore/nn/trainer.h) with a task whose
 * loss is the symmetric InfoNCE of each batch's images against their descriptions. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "contrastive.h"
#include "contrastive_internal.h"
#include "libcore/base/config.h"
#include "libcore/base/error.h"
#include "libcore/base/hashmap.h"
#include "libcore/base/log.h"
#include "libcore/dist/dist.h"
#include "libcore/nn/train.h"
#include "libcore/nn/trainer.h"
#include "prompts.h"
#include "text_encoder.h"

/* Every sample's description, deduplicated, embedded once. */
static int embed_descriptions(cx_run *r, lathe_text_encoder *enc) {
    uint64_t n = lathe_dataset_count(r->ds);
    lathe_hashmap *ids = lathe_hashmap_create();
    r->sample_text = malloc((n + 1) * sizeof *r->sample_text);
    r->texts = malloc((n + 1) * sizeof *r->texts);
    int rc = ids && r->sample_text && r->texts ? 0 : lathe_fail(LATHE_ENOMEM, "descriptions of %llu samples",
                                                               (unsigned long long)n);
    for (uint64_t i = 0; !rc && i < n; i++) {
        lathe_dataset_sample s;
        if ((rc = lathe_dataset_get(r->ds, i, LATHE_READ_TEXT, &s))) break;
        size_t id;
        r->sample_text[i] = -1;
        if (s.text && *s.text) {
            if (lathe_hashmap_get(ids, s.text, &id)) {
                r->sample_text[i] = (int32_t)id;
            } else if (!(r->texts[r->ntexts] = strdup(s.text)) || lathe_hashmap_put(ids, s.text, r->ntexts)) {
                rc = lathe_fail(LATHE_ENOMEM, "descriptions");
            } else {
                r->sample_text[i] = (int32_t)r->ntexts++;
            }
        }
        lathe_dataset_sample_free(&s);
    }
    lathe_hashmap_free(ids);
    if (!rc && !r->ntexts) rc = lathe_fail(LATHE_EINVAL, "%s: no sample has a description (/text): an image-text head "
                                                         "learns from descriptions", lathe_dataset_dir(r->ds));
    if (!rc && !(r->text_emb = malloc(sizeof(float) * r->ntexts * r->dim))) rc = lathe_fail(LATHE_ENOMEM, "text embeddings");
    if (!rc) {
        lathe_log(LATHE_LOG_INFO, "text", "embedding %zu distinct descriptions of %llu samples", r->ntexts,
                  (unsigned long long)n);
        rc = lathe_text_encode(enc, (const char *const *)r->texts, r->ntexts, 32, r->text_emb);
    }
    return rc;
}

/* data.holdout_classes: names (or indices) of classes no training sample may show */
static int read_holdout(cx_run *r) {
    if (!(r->holdout = calloc((size_t)r->classes, 1))) return lathe_fail(LATHE_ENOMEM, "classes");
    int rc = lathe_holdout_classes(r->spec, (const char *const *)r->class_names, r->classes, r->holdout);
    for (int c = 0; !rc && c < r->classes; c++) r->any_holdout |= r->holdout[c];
    return rc;
}

int cx_open(cx_run *r, const cJSON *spec, const char *dataset, const char *text_model, int with_texts) {
    memset(r, 0, sizeof *r);
    r->spec = spec;
    r->batch = lathe_trainer_local_batch(spec); /* this rank's share; the negatives are the whole step's */
    r->seed = (uint64_t)lathe_config_num(spec, "train.seed", 0);
    if (lathe_config_num(spec, "train.batch", LATHE_TRAIN_BATCH_DEFAULT) < 2) /* the whole step's */
        return lathe_fail(LATHE_EINVAL, "train.batch must be >= 2: a contrastive batch needs negatives");
    const char *dir = dataset ? dataset : lathe_config_str(spec, "data.dataset", NULL);
    if (!dir) return lathe_fail(LATHE_EINVAL, "data.dataset is required");
    int rc = lathe_dataset_open(dir, &r->ds);
    if (rc) return rc;
    const lathe_manifest *m = lathe_dataset_manifest(r->ds);
    r->classes = m->nclasses;
    if (r->classes < 1) return lathe_fail(LATHE_EINVAL, "%s has no classes to prompt for", dir);
    r->class_names = m->class_names;
    if ((rc = read_holdout(r))) return rc;
    const cJSON *model = lathe_config_get(spec, "model");
    if (!cJSON_IsObject(model)) return lathe_fail(LATHE_EINVAL, "the spec has no model mapping");
    if ((rc = lathe_graph_build(model, r->batch, r->seed, &r->g))) return rc;
    lathe_layer_view last;
    lathe_graph_layer(r->g, lathe_graph_nlayers(r->g) - 1, &last);
    if (last.type != LATHE_LAYER_L2NORM)
        return lathe_fail(LATHE_EINVAL, "a contrastive model ends in an l2norm layer (its learned temperature), not %s",
                          last.name);
    lathe_graph_output(r->g, &r->dim);
    if (!with_texts) return 0;
    char model_dir[4096];
    lathe_text_encoder *enc = NULL;
    const char *named = text_model ? text_model : lathe_config_str(spec, "text.model", NULL);
    rc = lathe_text_model_find(named, model_dir, sizeof model_dir);
    if (!rc) rc = lathe_text_encoder_open(model_dir, lathe_config_str(spec, "text.device", "cpu"), &enc);
    if (!rc && lathe_text_encoder_dim(enc) != r->dim)
        rc = lathe_fail(LATHE_EINVAL, "the model's embeddings have %d values, the text encoder's %d: end the image "
                                      "encoder in linear out: %d before the l2norm", r->dim,
                        lathe_text_encoder_dim(enc), lathe_text_encoder_dim(enc));
    if (!rc && !(r->prompt_emb = malloc(sizeof(float) * r->classes * r->dim))) rc = lathe_fail(LATHE_ENOMEM, "prompts");
    if (!rc) rc = lathe_class_prompts(spec, (const char *const *)r->class_names, r->classes, 1, enc, r->prompt_emb);
    if (!rc) rc = embed_descriptions(r, enc);
    lathe_text_encoder_free(enc);
    return rc;
}

void cx_close(cx_run *r) {
    lathe_graph_free(r->g);
    lathe_dataset_close(r->ds);
    for (size_t i = 0; r->texts && i < r->ntexts; i++) free(r->texts[i]);
    free(r->texts), free(r->text_emb), free(r->sample_text), free(r->prompt_emb), free(r->holdout);
    memset(r, 0, sizeof *r);
}

/* ---- training ---- */

typedef struct {
    cx_run r;
    lathe_loader *train, *val;
    float *x[2], *txt;
    int32_t *y[2], *tid[2];
    uint64_t *idx[2];
} cx_train;

/* samples a training step may not see: no description, or a held-out class in the label or a box */
static int held_out(void *ctx, uint64_t sample, int32_t label) {
    cx_train *t = ctx;
    if (t->r.sample_text[sample] < 0) return 1;
    if (label >= 0 && label < t->r.classes && t->r.holdout[label]) return 1;
    if (!t->r.any_holdout) return 0;
    lathe_dataset_sample s;
    if (lathe_dataset_get(t->r.ds, sample, LATHE_READ_BOXES, &s)) return 1;
    int hit = 0;
    for (size_t b = 0; b < s.nboxes; b++)
        hit |= s.boxes[b].label >= 0 && s.boxes[b].label < t->r.classes && t->r.holdout[s.boxes[b].label];
    lathe_dataset_sample_free(&s);
    return hit;
}

static uint64_t task_size(void *ctx) { return lathe_loader_size(((cx_train *)ctx)->train); }

static int task_load(void *ctx, int slot, int epoch, uint64_t pos, int n) {
    cx_train *t = ctx;
    int got = lathe_loader_batch(t->train, epoch, pos, n, t->x[slot], t->y[slot]);
    if (got > 0) lathe_loader_samples(t->train, epoch, pos, got, t->idx[slot]);
    for (int b = 0; b < got; b++) t->tid[slot][b] = t->r.sample_text[t->idx[slot][b]];
    return got;
}

/* With several ranks the negatives are the whole step's: every rank gathers every rank's image and
 * text embeddings (in one process's order), computes the step's InfoNCE, keeps the gradient rows of
 * its own images, and returns its share of the loss (loss_shared). */
static double step_over_ranks(cx_train *t, int slot, int n, lathe_graph *g) {
    int d = t->r.dim, world = lathe_dist_world();
    size_t *sizes = malloc(sizeof *sizes * (size_t)world), at = 0;
    void *img = NULL, *txt = NULL, *ids = NULL;
    int rc = sizes ? 0 : lathe_fail(LATHE_ENOMEM, "gather");
    if (!rc) rc = lathe_dist_allgather(lathe_graph_output(g, NULL), sizeof(float) * (size_t)n * d, &img, sizes);
    if (!rc) rc = lathe_dist_allgather(t->txt, sizeof(float) * (size_t)n * d, &txt, NULL);
    if (!rc) rc = lathe_dist_allgather(t->tid[slot], sizeof(int32_t) * (size_t)n, &ids, NULL);
    size_t all = 0;
    for (int r = 0; !rc && r < world; r++) at += r < lathe_dist_rank() ? sizes[r] : 0, all += sizes[r];
    all /= sizeof(float) * (size_t)d, at /= sizeof(float) * (size_t)d;
    float *dall = rc ? NULL : malloc(sizeof *dall * (all ? all : 1) * (size_t)d);
    double loss = rc ? 0 : dall ? lathe_infonce((int)all, d, img, txt, ids, dall) : NAN;
    if (!rc && isnan(loss)) rc = lathe_fail(LATHE_ENOMEM, "contrastive loss of a step of %zu", all);
    if (!rc) memcpy(lathe_graph_doutput(g), dall + at * (size_t)d, sizeof *dall * (size_t)n * d);
    free(sizes), free(img), free(txt), free(ids), free(dall);
    return rc ? rc : loss * (double)n / (double)all;
}

static double task_step(void *ctx, int slot, int n, lathe_graph *g, uint64_t step) {
    cx_train *t = ctx;
    int c, h, w, d = t->r.dim;
    float *in = lathe_graph_input(g, &c, &h, &w);
    memcpy(in, t->x[slot], sizeof(float) * (size_t)n * c * h * w);
    int rc = n ? lathe_graph_forward(g, n, step) : 0;
    if ((rc = lathe_dist_agree(rc))) return rc;
    for (int b = 0; b < n; b++)
        memcpy(t->txt + (size_t)b * d, t->r.text_emb + (size_t)t->tid[slot][b] * d, sizeof(float) * d);
    if (lathe_dist_world() > 1) return step_over_ranks(t, slot, n, g);
    double loss = lathe_infonce(n, d, lathe_graph_output(g, NULL), t->txt, t->tid[slot], lathe_graph_doutput(g));
    return isnan(loss) ? lathe_fail(LATHE_ENOMEM, "contrastive loss of a batch of %d", n) : loss;
}

static int task_validate(void *ctx, lathe_graph *g, cJSON *entry, double *metric) {
    cx_train *t = ctx;
    (void)g;
    cJSON *rep = NULL;
    int rc = cx_score(&t->r, t->val, &rep);
    if (rc) return rc;
    *metric = lathe_config_num(rep, "accuracy", 0);
    cJSON_AddNumberToObject(entry, "val_zero_shot_accuracy", *metric);
    cJSON_AddNumberToObject(entry, "val_image_to_text_R1", lathe_config_num(rep, "retrieval.image_to_text.R@1", 0));
    cJSON_AddNumberToObject(entry, "val_text_to_image_R1", lathe_config_num(rep, "retrieval.text_to_image.R@1", 0));
    cJSON_Delete(rep);
    return 0;
}

static int train_loader(cx_train *t, lathe_loader **out) {
    int c, h, w;
    lathe_graph_input(t->r.g, &c, &h, &w);
    const char *name = lathe_config_str(t->r.spec, "data.train_split", "train");
    int split = lathe_split_parse(name);
    if (split < 0) return lathe_fail(LATHE_EINVAL, "data.train_split: unknown split %s", name);
    const cJSON *s = t->r.spec;
    lathe_loader_opts o = {.split = split, .c = c, .h = h, .w = w, .mean = (float)lathe_config_num(s, "data.mean", 0.5),
                           .std = (float)lathe_config_num(s, "data.std", 0.25), .shuffle = 1, .seed = t->r.seed};
    lathe_train_augment_opts(s, &o);
    int rc = lathe_loader_create(t->r.ds, &o, out);
    if (!rc && lathe_loader_filter(*out, held_out, t) < 2)
        rc = lathe_fail(LATHE_EINVAL, "the %s split has fewer than 2 samples with a description outside "
                                      "data.holdout_classes", name);
    return rc;
}

int lathe_train_contrastive(const cJSON *spec, const char *run_dir, int resume, volatile int *stop) {
    cx_train t;
    memset(&t, 0, sizeof t);
    int rc = cx_open(&t.r, spec, NULL, NULL, 1);
    if (!rc) rc = train_loader(&t, &t.train);
    if (!rc) {
        int split = lathe_split_parse(lathe_config_str(spec, "data.val_split", "val"));
        rc = split < 0 ? lathe_fail(LATHE_EINVAL, "data.val_split: unknown split") : cx_eval_loader(&t.r, split, &t.val);
    }
    int c, h, w, b = t.r.batch;
    if (!rc) lathe_graph_input(t.r.g, &c, &h, &w);
    for (int s = 0; !rc && s < 2; s++) {
        t.x[s] = malloc(sizeof(float) * b * c * h * w), t.y[s] = malloc(sizeof(int32_t) * b);
        t.tid[s] = malloc(sizeof(int32_t) * b), t.idx[s] = malloc(sizeof(uint64_t) * b);
        if (!t.x[s] || !t.y[s] || !t.tid[s] || !t.idx[s]) rc = lathe_fail(LATHE_ENOMEM, "batch buffers");
    }
    if (!rc && !(t.txt = malloc(sizeof(float) * b * t.r.dim))) rc = lathe_fail(LATHE_ENOMEM, "batch texts");
    if (!rc) rc = lathe_trainer_prepare(spec, t.r.g, run_dir, resume);
    lathe_task task = {&t, "val_zero_shot_accuracy", task_size, task_load, task_step, task_validate, 1};
    if (!rc) rc = lathe_trainer_run(spec, t.r.g, &task, run_dir, resume, stop);
    for (int s = 0; s < 2; s++) free(t.x[s]), free(t.y[s]), free(t.tid[s]), free(t.idx[s]);
    free(t.txt);
    lathe_loader_free(t.train), lathe_loader_free(t.val);
    cx_close(&t.r);
    return rc;
}
