/* spec_check.c - the spec's keys and their kinds (spec_check.h). */
#include "spec_check.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "libcore/base/config.h"
#include "libcore/base/error.h"
#include "libcore/nn/graph.h"

enum { K_NUM, K_INT, K_STR, K_BOOL, K_PROB, K_LIST, K_NAMES, K_MAP, K_TEXTS };

typedef struct {
    const char *path; /* dotted, from the spec's root */
    int kind;         /* K_PROB: a number in [lo, hi] or true/false; K_NAMES: a string or a list of them */
    double lo, hi;    /* K_NUM and K_INT (and K_PROB) */
    const char *words; /* K_STR: the values allowed, space-separated; NULL = any */
    /* K_TEXTS: a mapping of any keys to strings (class name -> phrase) */
    const char *tasks; /* the tasks that read it, space-separated; NULL = every task */
} spec_key;

/* the loaders that read data.augment: the image loader (lathe_train_augment_opts: classify,
 * contrastive, fusion) and the detector's (train_det.c); anomaly reads none */
#define GEOMETRIC "classify detect contrastive fusion"
#define IMAGE_ONLY "classify contrastive fusion"

#define BIG 1e15
static const spec_key keys[] = {
    {"name", K_STR, 0, 0, NULL, NULL},
    {"task", K_STR, 0, 0, "classify detect contrastive anomaly fusion", NULL},
    {"class_names", K_LIST, 0, 0, NULL, NULL},
    {"data", K_MAP, 0, 0, NULL, NULL},
    {"data.dataset", K_STR, 0, 0, NULL, NULL},
    {"data.train_split", K_STR, 0, 0, "train val test", NULL},
    {"data.val_split", K_STR, 0, 0, "train val test", NULL},
    {"data.mean", K_NUM, -BIG, BIG, NULL, NULL},
    {"data.std", K_NUM, 1e-12, BIG, NULL, NULL},
    {"data.background", K_NUM, 1e-6, 1, NULL, NULL},
    {"data.hard_background", K_INT, 0, 16, NULL, "detect"},
    {"data.holdout_classes", K_NAMES, 0, 0, NULL, NULL},
    {"data.augment", K_MAP, 0, 0, NULL, NULL},
    {"data.augment.flip", K_PROB, 0, 1, NULL, GEOMETRIC},
    {"data.augment.flipud", K_PROB, 0, 1, NULL, GEOMETRIC},
    {"data.augment.rotate90", K_PROB, 0, 1, NULL, GEOMETRIC},
    {"data.augment.crop", K_NUM, 0, 0.999999, NULL, IMAGE_ONLY},
    {"data.augment.jitter", K_NUM, 0, 0.999999, NULL, IMAGE_ONLY},
    {"data.augment.mosaic", K_PROB, 0, 1, NULL, "detect"},
    {"data.augment.close_mosaic", K_INT, 0, 1e6, NULL, "detect"},
    {"data.augment.scale", K_NUM, 0, 0.999999, NULL, "detect"},
    {"data.augment.translate", K_NUM, 0, 0.5, NULL, "detect"},
    {"data.augment.hsv_h", K_NUM, 0, 0.5, NULL, "detect"},
    {"data.augment.hsv_s", K_NUM, 0, 1, NULL, "detect"},
    {"data.augment.hsv_v", K_NUM, 0, 1, NULL, "detect"},
    {"model", K_MAP, 0, 0, NULL, NULL},
    {"model.input", K_LIST, 0, 0, NULL, NULL},
    {"model.classes", K_INT, 1, LATHE_MODEL_CLASSES_MAX, NULL, NULL},
    {"model.width", K_NUM, 1e-6, LATHE_MODEL_SCALE_MAX, NULL, NULL},
    {"model.depth", K_NUM, 1e-6, LATHE_MODEL_SCALE_MAX, NULL, NULL},
    {"model.bins", K_INT, 2, LATHE_MODEL_BINS_MAX, NULL, NULL},
    {"model.init", K_STR, 0, 0, "he torch", NULL},
    {"model.layers", K_LIST, 0, 0, NULL, NULL},
    {"train", K_MAP, 0, 0, NULL, NULL},
    {"train.epochs", K_INT, 1, 1e6, NULL, NULL},
    {"train.batch", K_INT, 1, 65536, NULL, NULL},
    {"train.optimizer", K_STR, 0, 0, "adamw sgd", NULL},
    {"train.lr", K_NUM, 0, 1e30, NULL, NULL},
    {"train.final_lr", K_NUM, 0, 1e30, NULL, NULL},
    {"train.schedule", K_STR, 0, 0, "cosine linear step constant", NULL},
    {"train.warmup_epochs", K_NUM, 0, 1e6, NULL, NULL},
    {"train.warmup_bias_lr", K_NUM, 0, 10, NULL, NULL},
    {"train.step_gamma", K_NUM, 1e-12, 1e6, NULL, NULL},
    {"train.step_epochs", K_NUM, 1e-6, 1e6, NULL, NULL},
    {"train.weight_decay", K_NUM, 0, 1e6, NULL, NULL},
    {"train.momentum", K_NUM, 0, 0.999999, NULL, NULL},
    {"train.nesterov", K_BOOL, 0, 0, NULL, NULL},
    {"train.sync_bn", K_BOOL, 0, 0, NULL, NULL},
    {"train.bucket_mb", K_NUM, 0, 65536, NULL, NULL},
    {"train.clip", K_NUM, 0, BIG, NULL, NULL},
    {"train.ema", K_NUM, 0, 0.999999999, NULL, NULL},
    {"train.label_smoothing", K_NUM, 0, 0.999999, NULL, NULL},
    {"train.seed", K_INT, 0, 9007199254740991.0, NULL, NULL},
    {"train.checkpoint_every", K_INT, 0, 1e12, NULL, NULL},
    {"train.max_nan_steps", K_INT, 0, 1e12, NULL, NULL},
    {"train.init", K_STR, 0, 0, NULL, NULL},
    {"train.init_map", K_STR, 0, 0, NULL, NULL},
    {"train.lr_groups", K_LIST, 0, 0, NULL, NULL},
    {"train.freeze", K_NAMES, 0, 0, NULL, NULL},
    {"train.precision", K_STR, 0, 0, "fp32 bf16", NULL},
    {"train.device", K_STR, 0, 0, NULL, NULL},
    {"train.loss", K_MAP, 0, 0, NULL, NULL},
    {"train.loss.cls", K_NUM, 0, 1e6, NULL, NULL},
    {"train.loss.box", K_NUM, 0, 1e6, NULL, NULL},
    {"train.loss.dfl", K_NUM, 0, 1e6, NULL, NULL},
    {"train.loss.cls_kind", K_STR, 0, 0, "varifocal bce focal", NULL},
    {"train.loss.iou_kind", K_STR, 0, 0, "ciou giou", NULL},
    {"train.assign", K_MAP, 0, 0, NULL, NULL},
    {"train.assign.topk", K_INT, 1, 1000, NULL, NULL},
    {"eval", K_MAP, 0, 0, NULL, NULL},
    {"eval.prompt", K_NAMES, 0, 0, NULL, NULL},
    {"eval.verdict_threshold", K_NUM, 0, 1, NULL, NULL},
    {"eval.flip", K_BOOL, 0, 0, NULL, NULL},
    {"eval.class_text", K_TEXTS, 0, 0, NULL, NULL},
    {"fusion", K_MAP, 0, 0, NULL, NULL},
    {"fusion.inputs", K_STR, 0, 0, "both image sensors", NULL},
    {"fusion.modality_dropout", K_MAP, 0, 0, NULL, NULL},
    {"fusion.modality_dropout.image", K_NUM, 0, 1, NULL, NULL},
    {"fusion.modality_dropout.sensors", K_NUM, 0, 1, NULL, NULL},
    {"eval.baselines", K_MAP, 0, 0, NULL, NULL},
    {"eval.baselines.image", K_STR, 0, 0, NULL, NULL},
    {"eval.baselines.sensors", K_STR, 0, 0, NULL, NULL},
    {"anomaly", K_MAP, 0, 0, NULL, NULL},
    {"anomaly.input", K_STR, 0, 0, "image sensors", NULL},
    {"anomaly.method", K_STR, 0, 0, "patchcore gaussian", NULL},
    {"anomaly.coreset", K_NUM, 1e-9, 1e12, NULL, NULL},
    {"anomaly.coreset_dims", K_INT, 1, 4096, NULL, NULL},
    {"anomaly.k", K_INT, 1, 16, NULL, NULL},
    {"anomaly.dims", K_INT, 0, 4096, NULL, NULL},
    {"anomaly.blur", K_NUM, 0, 64, NULL, NULL},
    {"anomaly.eps", K_NUM, 1e-12, 1e6, NULL, NULL},
    {"anomaly.max_patches", K_INT, 1, 1e12, NULL, NULL},
    {"text", K_MAP, 0, 0, NULL, NULL},
    {"text.model", K_STR, 0, 0, NULL, NULL},
    {"text.device", K_STR, 0, 0, NULL, NULL},
};
#undef BIG
#undef GEOMETRIC
#undef IMAGE_ONLY

static const char *const kind_names[] = {"a number", "a whole number", "a string", "true or false (or 1 or 0)", "a number or true/false",
                                         "a list", "a name or a list of names", "a mapping",
                                         "a mapping of names to strings"};

static const spec_key *find(const char *path) {
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (!strcmp(keys[i].path, path)) return &keys[i];
    return NULL;
}

/* The known keys under section `path` ("" for the root), for the message about an unknown one. */
static void known_under(const char *path, char *out, size_t cap) {
    size_t len = strlen(path), at = 0;
    out[0] = 0;
    for (size_t i = 0; i < sizeof keys / sizeof keys[0] && at + 1 < cap; i++) {
        const char *k = keys[i].path, *rest = len ? k + len + 1 : k;
        if (len && (strncmp(k, path, len) || k[len] != '.')) continue;
        if (strchr(rest, '.')) continue;
        at += (size_t)snprintf(out + at, cap - at, "%s%s", at ? ", " : "", rest);
    }
}

static int check_value(const spec_key *k, const cJSON *v) {
    int ok;
    switch (k->kind) {
    case K_STR: ok = cJSON_IsString(v) && (!k->words || lathe_word_listed(k->words, v->valuestring)); break;
    case K_BOOL: ok = cJSON_IsBool(v) || (cJSON_IsNumber(v) && (v->valuedouble == 0 || v->valuedouble == 1)); break;
    case K_LIST: ok = cJSON_IsArray(v); break;
    case K_MAP: ok = cJSON_IsObject(v); break;
    case K_TEXTS: {
        ok = cJSON_IsObject(v);
        const cJSON *e;
        if (ok) cJSON_ArrayForEach(e, v) ok &= cJSON_IsString(e);
        break;
    }
    case K_NAMES: {
        ok = cJSON_IsString(v) || cJSON_IsArray(v);
        const cJSON *e;
        if (cJSON_IsArray(v)) cJSON_ArrayForEach(e, v) ok &= cJSON_IsString(e);
        break;
    }
    default: /* numbers */
        if (k->kind == K_PROB && cJSON_IsBool(v)) return 0;
        ok = cJSON_IsNumber(v) && isfinite(v->valuedouble) && v->valuedouble >= k->lo && v->valuedouble <= k->hi &&
             (k->kind != K_INT || v->valuedouble == floor(v->valuedouble));
    }
    if (ok) return 0;
    char *text = cJSON_PrintUnformatted(v);
    int rc;
    if (k->kind == K_STR && k->words)
        rc = lathe_fail(LATHE_EINVAL, "%s must be one of: %s (not %s)", k->path, k->words, text ? text : "?");
    else if (k->kind == K_NUM || k->kind == K_INT || k->kind == K_PROB)
        rc = lathe_fail(LATHE_EINVAL, "%s must be %s in [%g, %g] (not %s)", k->path, kind_names[k->kind], k->lo, k->hi,
                        text ? text : "?");
    else rc = lathe_fail(LATHE_EINVAL, "%s must be %s (not %s)", k->path, kind_names[k->kind], text ? text : "?");
    cJSON_free(text);
    return rc;
}

/* Checks every key of the mapping `node` found at `path`, and the mappings below it, for a spec of
 * `task`. */
static int check_map(const cJSON *node, const char *path, const char *task) {
    const cJSON *v;
    cJSON_ArrayForEach(v, node) {
        char full[256];
        if (snprintf(full, sizeof full, "%s%s%s", path, *path ? "." : "", v->string) >= (int)sizeof full)
            return lathe_fail(LATHE_EINVAL, "spec key %.64s...: too long", full);
        const spec_key *k = find(full);
        if (!k) {
            char known[1024];
            known_under(path, known, sizeof known);
            return lathe_fail(LATHE_EINVAL, "unknown spec key %s (%s takes: %s)", full, *path ? path : "the spec", known);
        }
        if (k->tasks && !lathe_word_listed(k->tasks, task))
            return lathe_fail(LATHE_EINVAL, "%s is read only by the tasks: %s (this spec's task is %s: it would be ignored)",
                              full, k->tasks, task);
        int rc = check_value(k, v);
        if (!rc && k->kind == K_MAP) rc = check_map(v, full, task);
        if (rc) return rc;
    }
    return 0;
}

int lathe_spec_check(const cJSON *spec) {
    if (!cJSON_IsObject(spec)) return lathe_fail(LATHE_EINVAL, "a spec is a mapping with the sections data, model and train");
    const cJSON *task = cJSON_GetObjectItemCaseSensitive(spec, "task");
    int rc = task ? check_value(find("task"), task) : 0; /* first: the other keys are checked against it */
    return rc ? rc : check_map(spec, "", task ? task->valuestring : "classify");
}
