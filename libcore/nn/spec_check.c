/* spec_check.c - the spec's keys and their kinds (spec_check.h). */
#include "spec_check.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "libcore/base/config.h"
#include "libcore/base/error.h"

enum { K_NUM, K_INT, K_STR, K_BOOL, K_PROB, K_LIST, K_NAMES, K_MAP, K_TEXTS };

typedef struct {
    const char *path; /* dotted, from the spec's root */
    int kind;         /* K_PROB: a number in [lo, hi] or true/false; K_NAMES: a string or a list of them */
    double lo, hi;    /* K_NUM and K_INT (and K_PROB) */
    const char *words; /* K_STR: the values allowed, space-separated; NULL = any */
    /* K_TEXTS: a mapping of any keys to strings (class name -> phrase) */
} spec_key;

#define BIG 1e15
static const spec_key keys[] = {
    {"name", K_STR, 0, 0, NULL},
    {"task", K_STR, 0, 0, "classify detect contrastive anomaly fusion"},
    {"class_names", K_LIST, 0, 0, NULL},
    {"data", K_MAP, 0, 0, NULL},
    {"data.dataset", K_STR, 0, 0, NULL},
    {"data.train_split", K_STR, 0, 0, "train val test"},
    {"data.val_split", K_STR, 0, 0, "train val test"},
    {"data.mean", K_NUM, -BIG, BIG, NULL},
    {"data.std", K_NUM, 1e-12, BIG, NULL},
    {"data.background", K_NUM, 1e-6, 1, NULL},
    {"data.holdout_classes", K_NAMES, 0, 0, NULL},
    {"data.augment", K_MAP, 0, 0, NULL},
    {"data.augment.flip", K_PROB, 0, 1, NULL},
    {"data.augment.flipud", K_PROB, 0, 1, NULL},
    {"data.augment.rotate90", K_PROB, 0, 1, NULL},
    {"data.augment.crop", K_NUM, 0, 0.999999, NULL},
    {"data.augment.jitter", K_NUM, 0, 0.999999, NULL},
    {"data.augment.mosaic", K_PROB, 0, 1, NULL},
    {"data.augment.close_mosaic", K_INT, 0, 1e6, NULL},
    {"data.augment.scale", K_NUM, 0, 0.999999, NULL},
    {"data.augment.translate", K_NUM, 0, 0.5, NULL},
    {"data.augment.hsv_h", K_NUM, 0, 0.5, NULL},
    {"data.augment.hsv_s", K_NUM, 0, 1, NULL},
    {"data.augment.hsv_v", K_NUM, 0, 1, NULL},
    {"model", K_MAP, 0, 0, NULL},
    {"model.input", K_LIST, 0, 0, NULL},
    {"model.classes", K_INT, 1, 65536, NULL},
    {"model.width", K_NUM, 1e-6, 64, NULL},
    {"model.depth", K_NUM, 1e-6, 64, NULL},
    {"model.bins", K_INT, 2, 256, NULL},
    {"model.init", K_STR, 0, 0, "he torch"},
    {"model.layers", K_LIST, 0, 0, NULL},
    {"train", K_MAP, 0, 0, NULL},
    {"train.epochs", K_INT, 1, 1e6, NULL},
    {"train.batch", K_INT, 1, 65536, NULL},
    {"train.optimizer", K_STR, 0, 0, "adamw sgd"},
    {"train.lr", K_NUM, 0, 1e30, NULL},
    {"train.final_lr", K_NUM, 0, 1e30, NULL},
    {"train.schedule", K_STR, 0, 0, "cosine linear step constant"},
    {"train.warmup_epochs", K_NUM, 0, 1e6, NULL},
    {"train.warmup_bias_lr", K_NUM, 0, 10, NULL},
    {"train.step_gamma", K_NUM, 1e-12, 1e6, NULL},
    {"train.step_epochs", K_NUM, 1e-6, 1e6, NULL},
    {"train.weight_decay", K_NUM, 0, 1e6, NULL},
    {"train.momentum", K_NUM, 0, 0.999999, NULL},
    {"train.nesterov", K_BOOL, 0, 0, NULL},
    {"train.sync_bn", K_BOOL, 0, 0, NULL},
    {"train.bucket_mb", K_NUM, 0, 65536, NULL},
    {"train.clip", K_NUM, 0, BIG, NULL},
    {"train.ema", K_NUM, 0, 0.999999999, NULL},
    {"train.label_smoothing", K_NUM, 0, 0.999999, NULL},
    {"train.seed", K_INT, 0, 9007199254740991.0, NULL},
    {"train.checkpoint_every", K_INT, 0, 1e12, NULL},
    {"train.max_nan_steps", K_INT, 0, 1e12, NULL},
    {"train.init", K_STR, 0, 0, NULL},
    {"train.init_map", K_STR, 0, 0, NULL},
    {"train.lr_groups", K_LIST, 0, 0, NULL},
    {"train.freeze", K_NAMES, 0, 0, NULL},
    {"train.precision", K_STR, 0, 0, "fp32 bf16"},
    {"train.device", K_STR, 0, 0, NULL},
    {"train.loss", K_MAP, 0, 0, NULL},
    {"train.loss.cls", K_NUM, 0, 1e6, NULL},
    {"train.loss.box", K_NUM, 0, 1e6, NULL},
    {"train.loss.dfl", K_NUM, 0, 1e6, NULL},
    {"train.loss.cls_kind", K_STR, 0, 0, "varifocal bce focal"},
    {"train.loss.iou_kind", K_STR, 0, 0, "ciou giou"},
    {"train.assign", K_MAP, 0, 0, NULL},
    {"train.assign.topk", K_INT, 1, 1000, NULL},
    {"eval", K_MAP, 0, 0, NULL},
    {"eval.prompt", K_NAMES, 0, 0, NULL},
    {"eval.verdict_threshold", K_NUM, 0, 1, NULL},
    {"eval.class_text", K_TEXTS, 0, 0, NULL},
    {"fusion", K_MAP, 0, 0, NULL},
    {"fusion.inputs", K_STR, 0, 0, "both image sensors"},
    {"fusion.modality_dropout", K_MAP, 0, 0, NULL},
    {"fusion.modality_dropout.image", K_NUM, 0, 1, NULL},
    {"fusion.modality_dropout.sensors", K_NUM, 0, 1, NULL},
    {"eval.baselines", K_MAP, 0, 0, NULL},
    {"eval.baselines.image", K_STR, 0, 0, NULL},
    {"eval.baselines.sensors", K_STR, 0, 0, NULL},
    {"anomaly", K_MAP, 0, 0, NULL},
    {"anomaly.input", K_STR, 0, 0, "image sensors"},
    {"anomaly.method", K_STR, 0, 0, "patchcore gaussian"},
    {"anomaly.coreset", K_NUM, 1e-9, 1e12, NULL},
    {"anomaly.coreset_dims", K_INT, 1, 4096, NULL},
    {"anomaly.k", K_INT, 1, 16, NULL},
    {"anomaly.dims", K_INT, 0, 4096, NULL},
    {"anomaly.blur", K_NUM, 0, 64, NULL},
    {"anomaly.eps", K_NUM, 1e-12, 1e6, NULL},
    {"anomaly.max_patches", K_INT, 1, 1e12, NULL},
    {"text", K_MAP, 0, 0, NULL},
    {"text.model", K_STR, 0, 0, NULL},
    {"text.device", K_STR, 0, 0, NULL},
};
#undef BIG

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

/* Checks every key of the mapping `node` found at `path`, and the mappings below it. */
static int check_map(const cJSON *node, const char *path) {
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
        int rc = check_value(k, v);
        if (!rc && k->kind == K_MAP) rc = check_map(v, full);
        if (rc) return rc;
    }
    return 0;
}

int lathe_spec_check(const cJSON *spec) {
    if (!cJSON_IsObject(spec)) return lathe_fail(LATHE_EINVAL, "a spec is a mapping with the sections data, model and train");
    return check_map(spec, "");
}
