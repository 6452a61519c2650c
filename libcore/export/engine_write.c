/* engine_write.c - a graph as lathe's engine file (export.h): the layer list that rebuilds it,
 * with BN folded into convs, activations fused into them (conv act:) and dropout dropped, and the
 * weights that go with it. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "export.h"
#include "fold_internal.h"
#include "kernels/nn.h"
#include "libcore/base/error.h"
#include "libcore/io/safetensors.h"

/* The tensors to write: names and data owned here (folded weights are new arrays). */
typedef struct {
    lathe_st_tensor *t;
    char **names;
    float **owned;
    size_t n, cap;
    int dtype;
} tensor_list;

static int push(tensor_list *l, const char *layer, const char *suffix, const float *data, const int *shape, int rank,
                float *owned) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        lathe_st_tensor *t = realloc(l->t, cap * sizeof *t);
        char **names = t ? realloc(l->names, cap * sizeof *names) : NULL;
        float **own = names ? realloc(l->owned, cap * sizeof *own) : NULL;
        if (t) l->t = t;
        if (names) l->names = names;
        if (!t || !names || !own) {
            free(owned);
            return lathe_fail(LATHE_ENOMEM, "engine tensors");
        }
        l->owned = own, l->cap = cap;
    }
    char name[160];
    snprintf(name, sizeof name, "%s.%s", layer, suffix);
    if (!(l->names[l->n] = strdup(name))) {
        free(owned);
        return lathe_fail(LATHE_ENOMEM, "engine tensors");
    }
    lathe_st_tensor *t = &l->t[l->n];
    memset(t, 0, sizeof *t);
    t->name = l->names[l->n], t->data = data, t->rank = rank, t->dtype = l->dtype;
    memcpy(t->shape, shape, sizeof(int) * (size_t)rank);
    l->owned[l->n++] = owned;
    return 0;
}

static int push_param(tensor_list *l, const char *layer, const char *suffix, const lathe_param *p) {
    return push(l, layer, suffix, p->data, p->shape, p->rank, NULL);
}

static void list_free(tensor_list *l) {
    for (size_t i = 0; i < l->n; i++) free(l->names[i]), free(l->owned[i]);
    free(l->t), free(l->names), free(l->owned);
}

/* One layer's entry of the rebuilt model (nothing for one that vanishes: a folded BN, dropout, an
 * activation fused into its conv), and its tensors. alias[i] is the layer whose output stands for
 * layer i's; act_of[c] the activation layer fused into conv c, or -1. */
static int entry(const lathe_fold *f, int i, const int *alias, const int *act_of, cJSON *layers, tensor_list *tl) {
    const lathe_layer_view *l = &f->v[i];
    if (alias[i] != i) return 0;
    cJSON *e = cJSON_CreateObject(), *from = cJSON_CreateArray();
    if (!e || !from || !cJSON_AddItemToArray(layers, e)) {
        cJSON_Delete(e), cJSON_Delete(from);
        return lathe_fail(LATHE_ENOMEM, "engine model");
    }
    cJSON_AddStringToObject(e, "name", l->name);
    for (int k = 0; k < l->nin; k++) cJSON_AddItemToArray(from, cJSON_CreateString(f->v[alias[l->in[k]]].name));
    cJSON_AddItemToObject(e, "from", from);
    int rc = 0;
    switch (l->type) {
    case LATHE_LAYER_CONV: {
        float *w, *b;
        if ((rc = lathe_fold_conv(f, i, &w, &b))) return rc;
        int K = l->weight->shape[0];
        cJSON_AddStringToObject(e, "type", "conv");
        cJSON_AddNumberToObject(e, "out", K), cJSON_AddNumberToObject(e, "k", l->k);
        cJSON_AddNumberToObject(e, "stride", l->stride), cJSON_AddNumberToObject(e, "pad", l->pad);
        cJSON_AddNumberToObject(e, "dilation", l->dilation), cJSON_AddNumberToObject(e, "groups", l->groups);
        cJSON_AddBoolToObject(e, "fixed_width", 1);
        const lathe_layer_view *a = act_of[i] >= 0 ? &f->v[act_of[i]] : NULL;
        int act = a ? a->act : l->conv_act;
        if (act >= 0) {
            cJSON_AddStringToObject(e, "act", lathe_graph_act_name(act));
            if (act == LATHE_ACT_LEAKY) cJSON_AddNumberToObject(e, "slope", a ? a->slope : l->slope);
        }
        rc = push(tl, l->name, "weight", w, l->weight->shape, 4, w);
        if (!rc) rc = push(tl, l->name, "bias", b, &K, 1, b);
        else free(b);
        break;
    }
    case LATHE_LAYER_BN:
        cJSON_AddStringToObject(e, "type", "bn"), cJSON_AddNumberToObject(e, "eps", l->eps);
        rc = push_param(tl, l->name, "weight", l->weight);
        if (!rc) rc = push_param(tl, l->name, "bias", l->bias);
        if (!rc) rc = push_param(tl, l->name, "running_mean", l->running_mean);
        if (!rc) rc = push_param(tl, l->name, "running_var", l->running_var);
        break;
    case LATHE_LAYER_LAYERNORM:
        cJSON_AddStringToObject(e, "type", "layernorm"), cJSON_AddNumberToObject(e, "eps", l->eps);
        rc = push_param(tl, l->name, "weight", l->weight);
        if (!rc) rc = push_param(tl, l->name, "bias", l->bias);
        break;
    case LATHE_LAYER_ACT:
        cJSON_AddStringToObject(e, "type", lathe_graph_act_name(l->act));
        if (l->act == LATHE_ACT_LEAKY) cJSON_AddNumberToObject(e, "slope", l->slope);
        break;
    case LATHE_LAYER_MAXPOOL:
    case LATHE_LAYER_AVGPOOL:
        cJSON_AddStringToObject(e, "type", l->type == LATHE_LAYER_MAXPOOL ? "maxpool" : "avgpool");
        cJSON_AddNumberToObject(e, "k", l->k), cJSON_AddNumberToObject(e, "stride", l->stride);
        cJSON_AddNumberToObject(e, "pad", l->pad);
        break;
    case LATHE_LAYER_GAP: cJSON_AddStringToObject(e, "type", "gap"); break;
    case LATHE_LAYER_UPSAMPLE:
        cJSON_AddStringToObject(e, "type", "upsample"), cJSON_AddNumberToObject(e, "factor", l->factor);
        break;
    case LATHE_LAYER_CONCAT:
        cJSON_AddStringToObject(e, "type", "concat");
        if (l->tokens) cJSON_AddNumberToObject(e, "tokens", 1); /* the engine's graph is built from this list */
        break;
    case LATHE_LAYER_ADD: cJSON_AddStringToObject(e, "type", "add"); break;
    case LATHE_LAYER_DETECT: cJSON_AddStringToObject(e, "type", "detect"); break;
    case LATHE_LAYER_LINEAR:
        cJSON_AddStringToObject(e, "type", "linear"), cJSON_AddNumberToObject(e, "out", l->weight->shape[0]);
        cJSON_AddBoolToObject(e, "bias", l->bias != NULL), cJSON_AddBoolToObject(e, "fixed_width", 1);
        rc = push_param(tl, l->name, "weight", l->weight);
        if (!rc && l->bias) rc = push_param(tl, l->name, "bias", l->bias);
        break;
    case LATHE_LAYER_ATTENTION:
        cJSON_AddStringToObject(e, "type", "attention"), cJSON_AddNumberToObject(e, "heads", l->heads);
        rc = push_param(tl, l->name, "in_proj_weight", l->weight);
        if (!rc) rc = push_param(tl, l->name, "in_proj_bias", l->bias);
        if (!rc) rc = push_param(tl, l->name, "out_proj.weight", l->out_weight);
        if (!rc) rc = push_param(tl, l->name, "out_proj.bias", l->out_bias);
        break;
    case LATHE_LAYER_VOCAB: /* the run's vocabulary travels as the text rows */
        cJSON_AddStringToObject(e, "type", "vocab"), cJSON_AddNumberToObject(e, "out", l->weight->shape[0]);
        cJSON_AddNumberToObject(e, "box", l->w - l->weight->shape[0]);
        rc = push_param(tl, l->name, "text", l->weight);
        if (!rc) rc = push_param(tl, l->name, "bias", l->bias);
        if (!rc) rc = push_param(tl, l->name, "logit_scale", l->log_scale);
        break;
    default: return lathe_fail(LATHE_EUNSUPPORTED, "layer %s (type %d) has no engine form", l->name, (int)l->type);
    }
    if (l->type == LATHE_LAYER_CONV && !cJSON_GetObjectItemCaseSensitive(e, "bias")) cJSON_AddBoolToObject(e, "bias", 1);
    return rc;
}

int lathe_export_engine(const lathe_graph *g, const lathe_engine_write_opts *o, const char *path) {
    static const int dtypes[3] = {LATHE_ST_F32, LATHE_ST_F16, LATHE_ST_BF16};
    static const char *const names[3] = {"fp32", "fp16", "bf16"};
    if (o->precision < 0 || o->precision > 2) return lathe_fail(LATHE_EINVAL, "engine precision %d", o->precision);
    lathe_fold f;
    int rc = lathe_fold_plan(g, &f);
    if (rc) return rc;
    tensor_list tl = {0};
    tl.dtype = dtypes[o->precision];
    int *alias = malloc(sizeof(int) * (size_t)f.n), *act_of = malloc(sizeof(int) * (size_t)f.n);
    cJSON *model = cJSON_CreateObject(), *input = cJSON_CreateArray(), *layers = cJSON_CreateArray();
    if (!alias || !act_of || !model || !input || !layers) rc = lathe_fail(LATHE_ENOMEM, "engine model");
    if (!rc) {
        cJSON_AddItemToArray(input, cJSON_CreateNumber(f.v[0].c)), cJSON_AddItemToArray(input, cJSON_CreateNumber(f.v[0].h));
        cJSON_AddItemToArray(input, cJSON_CreateNumber(f.v[0].w));
        cJSON_AddItemToObject(model, "input", input), input = NULL;
        cJSON_AddNumberToObject(model, "width", 1), cJSON_AddNumberToObject(model, "depth", 1);
        if (o->bins > 0) cJSON_AddNumberToObject(model, "bins", o->bins);
        if (o->classes > 0) cJSON_AddNumberToObject(model, "classes", o->classes);
        cJSON_AddItemToObject(model, "layers", layers), layers = NULL;
        alias[0] = 0, act_of[0] = -1;
        for (int i = 1; i < f.n; i++) { /* a vanished layer's readers read what it read */
            const lathe_layer_view *l = &f.v[i];
            act_of[i] = -1;
            alias[i] = l->type == LATHE_LAYER_DROPOUT || (l->type == LATHE_LAYER_BN && f.folded[i]) ? alias[l->in[0]] : i;
            /* an activation that alone reads a conv (or the BN folded into it) fuses into the conv */
            int in = l->nin ? l->in[0] : 0, c = alias[in];
            if (l->type == LATHE_LAYER_ACT && f.v[c].type == LATHE_LAYER_CONV && f.v[c].conv_act < 0 && act_of[c] < 0 &&
                f.uses[in] == 1 && f.uses[c] == 1)
                act_of[c] = i, alias[i] = c;
        }
        for (int i = 1; !rc && i < f.n; i++)
            rc = entry(&f, i, alias, act_of, cJSON_GetObjectItemCaseSensitive(model, "layers"), &tl);
        if (!rc && alias[f.n - 1] != f.n - 1)
            rc = lathe_fail(LATHE_EUNSUPPORTED, "the model ends in %s, which an engine drops", f.v[f.n - 1].name);
    }
    char *json = rc ? NULL : cJSON_PrintUnformatted(model);
    if (!rc && !json) rc = lathe_fail(LATHE_ENOMEM, "engine model");
    const char **meta = rc ? NULL : malloc(sizeof(char *) * 2 * (o->nmeta + 3));
    if (!rc && !meta) rc = lathe_fail(LATHE_ENOMEM, "engine metadata");
    if (!rc) {
        const char *own[6] = {"lathe.engine", "1", "lathe.model", json, "lathe.precision", names[o->precision]};
        memcpy(meta, own, sizeof own);
        for (size_t k = 0; k < 2 * o->nmeta; k++) meta[6 + k] = o->meta[k];
        rc = lathe_st_write(path, tl.t, tl.n, meta, o->nmeta + 3);
    }
    free(meta), free(json), free(alias), free(act_of);
    cJSON_Delete(model), cJSON_Delete(input), cJSON_Delete(layers);
    list_free(&tl);
    lathe_fold_free(&f);
    return rc;
}
