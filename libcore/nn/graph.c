/* graph.c - building and running a static graph (graph.h). Building plans every tensor first
 * (shapes, sizes, offsets), then allocates three arenas (parameters with their gradients,
 * activations with theirs, and integer scratch) and one convolution workspace; forward and backward
 * only index into them. */
#include "graph.h"

#include <fnmatch.h>
#include <omp.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "blocks.h"
#include "graph_internal.h"
#include "kernels/conv_dnnl.h"
#include "kernels/nn.h"
#include "libcore/base/config.h"
#include "libcore/base/error.h"
#include "libcore/dist/dist.h"

/* ---- reading the description ---- */

static int get_int(const cJSON *o, const char *key, int def) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? lathe_json_int(v->valuedouble) : cJSON_IsBool(v) ? cJSON_IsTrue(v) : def; /* flags too */
}
static double get_num(const cJSON *o, const char *key, double def) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : def;
}
static float get_float(const cJSON *o, const char *key, float def) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? (float)v->valuedouble : def;
}

/* A [C, H, W] list of whole numbers 1..LATHE_MODEL_SIDE_MAX into c, h, w; 0 when it is not one. */
static int shape_of(const cJSON *shape, int *c, int *h, int *w) {
    int v[3], ok = cJSON_IsArray(shape) && cJSON_GetArraySize(shape) == 3;
    for (int k = 0; ok && k < 3; k++) {
        const cJSON *x = cJSON_GetArrayItem(shape, k);
        ok = cJSON_IsNumber(x) && x->valuedouble == floor(x->valuedouble) && x->valuedouble >= 1 &&
             x->valuedouble <= LATHE_MODEL_SIDE_MAX;
        if (ok) v[k] = (int)x->valuedouble;
    }
    if (ok) *c = v[0], *h = v[1], *w = v[2];
    return ok;
}

/* `out` of conv and linear (and vocab's `box`): a number, `classes` (model.classes) or `distances` (4 x model.bins,
 * a detection head's box branch); -1 when none of them */
static int out_of_key(const cJSON *v, const cJSON *model) {
    if (cJSON_IsNumber(v)) return lathe_json_int(v->valuedouble);
    if (cJSON_IsString(v) && !strcmp(v->valuestring, "classes")) return get_int(model, "classes", -1);
    if (cJSON_IsString(v) && !strcmp(v->valuestring, "distances")) {
        int bins = get_int(model, "bins", 16);
        return bins >= 2 && bins <= LATHE_MODEL_BINS_MAX ? 4 * bins : -1;
    }
    return -1;
}
static int out_of(const cJSON *d, const cJSON *model) { return out_of_key(cJSON_GetObjectItemCaseSensitive(d, "out"), model); }

/* Layer types by name (activations are one type, told apart by act). */
static const struct {
    const char *name;
    int type, act;
} layer_types[] = {
    {"conv", L_CONV, 0},          {"bn", L_BN, 0},           {"relu", L_ACT, LATHE_ACT_RELU},
    {"leaky", L_ACT, LATHE_ACT_LEAKY}, {"silu", L_ACT, LATHE_ACT_SILU}, {"gelu", L_ACT, LATHE_ACT_GELU},
    {"sigmoid", L_ACT, LATHE_ACT_SIGMOID}, {"maxpool", L_MAXPOOL, 0}, {"avgpool", L_AVGPOOL, 0},
    {"gap", L_GAP, 0},            {"upsample", L_UPSAMPLE, 0}, {"concat", L_CONCAT, 0},
    {"add", L_ADD, 0},            {"linear", L_LINEAR, 0},   {"dropout", L_DROPOUT, 0},
    {"layernorm", L_LAYERNORM, 0}, {"attention", L_ATTENTION, 0},
    {"detect", L_DETECT, 0},      {"l2norm", L_L2NORM, 0},   {"vocab", L_VOCAB, 0},
    {"input", L_INPUT, 0}, /* a further input: {name, type: input, shape: [C, H, W]} */
    {"film", L_FILM, 0},   /* from: [x (C x H x W), p (2C x 1 x 1)]: x (1 + p's first C) + p's last C */
};

static int type_of(const char *t, int *act) {
    for (size_t i = 0; i < sizeof layer_types / sizeof layer_types[0]; i++)
        if (!strcmp(t, layer_types[i].name)) {
            *act = layer_types[i].act;
            return layer_types[i].type;
        }
    return -1;
}

/* An activation's LATHE_ACT_* from its name (a conv's act:), or -1. */
static int act_named(const char *name) {
    int act;
    return type_of(name, &act) == L_ACT ? act : -1;
}

const char *lathe_graph_act_name(int act) {
    for (size_t i = 0; i < sizeof layer_types / sizeof layer_types[0]; i++)
        if (layer_types[i].type == L_ACT && layer_types[i].act == act) return layer_types[i].name;
    return NULL;
}

/* ---- checking a layer's arguments ---- */

enum { ARG_INT, ARG_NUM, ARG_FLAG, ARG_OUT, ARG_ACT, ARG_SHAPE };

typedef struct {
    const char *key;
    int kind;       /* ARG_*: ARG_OUT is a whole number or `classes` / `distances`; ARG_ACT an
                       activation's name; ARG_SHAPE a list [C, H, W] of whole numbers in [lo, hi] */
    double lo, hi;  /* ARG_INT and ARG_NUM */
} layer_arg;

#define END {NULL, 0, 0, 0}
static const layer_arg conv_args[] = {{"out", ARG_OUT, 1, 65536},      {"k", ARG_INT, 1, 63},        {"stride", ARG_INT, 1, 64},
                                      {"pad", ARG_INT, 0, 63},         {"dilation", ARG_INT, 1, 64}, {"groups", ARG_INT, -1, 65536},
                                      {"bias", ARG_FLAG, 0, 1},        {"bias_init", ARG_NUM, -1e6, 1e6},
                                      {"fixed_width", ARG_FLAG, 0, 1}, {"act", ARG_ACT, 0, 0},
                                      {"slope", ARG_NUM, -1e3, 1e3},   END};
static const layer_arg norm_args[] = {{"eps", ARG_NUM, 1e-12, 1}, {"momentum", ARG_NUM, 0, 1}, END};
static const layer_arg layernorm_args[] = {{"eps", ARG_NUM, 1e-12, 1}, END};
static const layer_arg leaky_args[] = {{"slope", ARG_NUM, -1e3, 1e3}, END};
static const layer_arg pool_args[] = {{"k", ARG_INT, 1, 63}, {"stride", ARG_INT, 1, 64}, {"pad", ARG_INT, 0, 31}, END};
static const layer_arg upsample_args[] = {{"factor", ARG_INT, 1, 16}, END};
static const layer_arg linear_args[] = {{"out", ARG_OUT, 1, 65536}, {"bias", ARG_FLAG, 0, 1}, {"fixed_width", ARG_FLAG, 0, 1}, END};
static const layer_arg dropout_args[] = {{"p", ARG_NUM, 0, 0.999999}, END};
static const layer_arg attention_args[] = {{"heads", ARG_INT, 1, 4096}, END};
static const layer_arg l2norm_args[] = {{"temperature", ARG_NUM, 1e-4, 100}, {"learn", ARG_FLAG, 0, 1},
                                        {"max_scale", ARG_NUM, 1, 1e4}, END};
static const layer_arg vocab_args[] = {{"out", ARG_OUT, 1, 65536}, {"box", ARG_OUT, 0, 65536},
                                       {"temperature", ARG_NUM, 1e-4, 100}, {"bias_init", ARG_NUM, -1e3, 1e3}, END};
static const layer_arg input_args[] = {{"shape", ARG_SHAPE, 1, 1 << 24}, END};
static const layer_arg concat_args[] = {{"tokens", ARG_FLAG, 0, 1}, END};
static const layer_arg no_args[] = {END};
#undef END

static const layer_arg *args_of(int type, int act) {
    switch (type) {
    case L_CONV: return conv_args;
    case L_BN: return norm_args;
    case L_LAYERNORM: return layernorm_args;
    case L_ACT: return act == LATHE_ACT_LEAKY ? leaky_args : no_args;
    case L_MAXPOOL:
    case L_AVGPOOL: return pool_args;
    case L_UPSAMPLE: return upsample_args;
    case L_LINEAR: return linear_args;
    case L_DROPOUT: return dropout_args;
    case L_ATTENTION: return attention_args;
    case L_L2NORM: return l2norm_args;
    case L_VOCAB: return vocab_args;
    case L_INPUT: return input_args;
    case L_CONCAT: return concat_args;
    default: return no_args; /* gap, add, detect */
    }
}

/* Refuses what a layer would otherwise read wrongly or not at all: an argument its type does not
 * take (a typo), a value of the wrong kind, a fraction where a whole number goes, or one out of range. */
static int check_layer_args(const cJSON *d, int type, int act, int entry, const char *type_name) {
    const cJSON *v;
    cJSON_ArrayForEach(v, d) {
        const char *key = v->string;
        if (!strcmp(key, "type") || !strcmp(key, "name") || !strcmp(key, "from")) continue;
        const layer_arg *a = args_of(type, act), repeat = {"repeat", ARG_INT, 1, LATHE_MODEL_REPEAT_MAX};
        while (a->key && strcmp(a->key, key)) a++;
        if (!strcmp(key, "repeat")) a = &repeat;
        if (!a->key) {
            char takes[160] = "";
            for (const layer_arg *b = args_of(type, act); b->key; b++)
                snprintf(takes + strlen(takes), sizeof takes - strlen(takes), "%s%s", *takes ? ", " : "", b->key);
            return lathe_fail(LATHE_EINVAL, "layer %d (%s): %s takes no argument %s (%s)", entry, type_name, type_name, key,
                              *takes ? takes : "it takes none");
        }
        if (a->kind == ARG_OUT && cJSON_IsString(v) &&
            (!strcmp(v->valuestring, "classes") || !strcmp(v->valuestring, "distances")))
            continue;
        if (a->kind == ARG_FLAG && cJSON_IsBool(v)) continue;
        if (a->kind == ARG_SHAPE) {
            int good = cJSON_IsArray(v) && cJSON_GetArraySize(v) == 3;
            const cJSON *x;
            cJSON_ArrayForEach(x, v) good &= cJSON_IsNumber(x) && x->valuedouble == floor(x->valuedouble) &&
                                             x->valuedouble >= a->lo && x->valuedouble <= a->hi;
            if (good) continue;
            return lathe_fail(LATHE_EINVAL, "layer %d (%s): %s must be [C, H, W], whole numbers in [%g, %g]", entry,
                              type_name, key, a->lo, a->hi);
        }
        if (a->kind == ARG_ACT) {
            if (cJSON_IsString(v) && act_named(v->valuestring) >= 0) continue;
            return lathe_fail(LATHE_EINVAL, "layer %d (%s): %s must be relu, leaky, silu, gelu or sigmoid", entry, type_name, key);
        }
        int whole = a->kind != ARG_NUM;
        if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || (whole && v->valuedouble != floor(v->valuedouble)) ||
            v->valuedouble < a->lo || v->valuedouble > a->hi)
            return lathe_fail(LATHE_EINVAL, "layer %d (%s): %s must be %s in [%g, %g]%s", entry, type_name, key,
                              whole ? "a whole number" : "a number", a->lo, a->hi,
                              a->kind == ARG_OUT ? ", classes or distances" : a->kind == ARG_FLAG ? " (or true/false)" : "");
    }
    return 0;
}

static int find_layer(const lathe_graph *g, int upto, const char *name) {
    for (int i = upto - 1; i >= 0; i--)
        if (!strcmp(g->layers[i].name, name)) return i;
    return -1;
}

static int add_input(lathe_graph *g, int i, const cJSON *item) {
    layer *l = &g->layers[i];
    if (l->nin == 8) return lathe_fail(LATHE_EINVAL, "layer %s: more than 8 inputs", l->name);
    int at = -1;
    if (cJSON_IsNumber(item)) at = item->valuedouble < 0 ? i + lathe_json_int(item->valuedouble) : lathe_json_int(item->valuedouble) + 1;
    else if (cJSON_IsString(item)) at = find_layer(g, i, item->valuestring);
    if (at < 0 || at >= i)
        return lathe_fail(LATHE_EINVAL, "layer %s: input %s is not an earlier layer", l->name,
                          cJSON_IsString(item) ? item->valuestring : "(index)");
    l->in[l->nin++] = at;
    return 0;
}

/* inputs of layer i from "from": -k (relative), k (the k-th layer, 0-based), a name, or a list of
 * those; by default the previous layer */
static int resolve_inputs(lathe_graph *g, int i, const cJSON *from) {
    if (g->layers[i].type == L_INPUT) { /* a further input reads nothing: the caller fills it */
        g->layers[i].nin = 0;
        return from ? lathe_fail(LATHE_EINVAL, "layer %s: an input takes no from", g->layers[i].name) : 0;
    }
    if (!from) {
        g->layers[i].in[0] = i - 1, g->layers[i].nin = 1;
        return 0;
    }
    if (!cJSON_IsArray(from)) return add_input(g, i, from);
    const cJSON *item;
    cJSON_ArrayForEach(item, from) {
        int rc = add_input(g, i, item);
        if (rc) return rc;
    }
    return g->layers[i].nin ? 0 : lathe_fail(LATHE_EINVAL, "layer %s: empty from", g->layers[i].name);
}

static int add_param(lathe_graph *g, const layer *l, const char *suffix, int rank, const int *shape, int decay,
                     int learnable, size_t *cap) {
    if (g->nparams == *cap) {
        size_t ncap = *cap ? *cap * 2 : 32;
        lathe_param *p = realloc(g->params, ncap * sizeof *p);
        if (!p) return -1;
        g->params = p, *cap = ncap;
    }
    lathe_param *p = &g->params[g->nparams];
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s.%s", l->name, suffix);
    p->rank = rank, p->count = 1;
    for (int k = 0; k < rank; k++) p->shape[k] = shape[k], p->count *= (size_t)shape[k];
    p->decay = decay;
    p->lr_scale = 1;
    p->layer = (int)(l - g->layers);
    /* offsets for now (stored in the pointers' place as integers, fixed once the arena exists) */
    p->data = (float *)(uintptr_t)(g->param_floats + 1);
    g->param_floats += p->count;
    if (learnable) {
        p->grad = (float *)(uintptr_t)(g->param_floats + 1);
        g->param_floats += p->count;
    }
    return (int)g->nparams++;
}

/* Shapes and parameters of layer i from its description; returns 0 or -LATHE_EINVAL. */
/* " (inputs a 8 x 16 x 16, b 8 x 8 x 8)": a layer's inputs, for a message; one buffer, read at once. */
static const char *inputs_text(const lathe_graph *g, const layer *l) {
    static _Thread_local char text[600];
    size_t at = (size_t)snprintf(text, sizeof text, " (inputs");
    for (int k = 0; k < l->nin && at < sizeof text; k++) {
        const layer *b = &g->layers[l->in[k]];
        at += (size_t)snprintf(text + at, sizeof text - at, "%s %s %d x %d x %d", k ? "," : "", b->name, b->c, b->h, b->w);
    }
    if (at < sizeof text) snprintf(text + at, sizeof text - at, ")");
    return text;
}

static int plan_layer(lathe_graph *g, int i, const cJSON *d, const cJSON *model, double width, size_t *cap) {
    layer *l = &g->layers[i];
    const layer *a = &g->layers[l->in[0]];
    l->pw = l->pb = l->prm = l->prv = -1;
    l->c = a->c, l->h = a->h, l->w = a->w;
    int ok = 1;
    const char *why = ""; /* what does not fit, for the message */
    switch (l->type) {
    case L_CONV: {
        int out = out_of(d, model);
        if (out < 1) return lathe_fail(LATHE_EINVAL, "layer %s: conv needs out: N, classes or distances", l->name);
        /* class and distance counts are never scaled */
        if (cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(d, "out")) && get_int(d, "fixed_width", 0) == 0)
            out = (int)fmax(1, lround(out * width));
        int k = get_int(d, "k", 3), groups = get_int(d, "groups", 1), dil = get_int(d, "dilation", 1);
        if (groups == -1) groups = a->c; /* depthwise */
        lathe_conv_shape s = {g->batch, a->c, a->h, a->w, out, k, k, get_int(d, "stride", 1),
                              get_int(d, "pad", dil * (k - 1) / 2), dil, groups, 0, 0, g->threads};
        if (k < 1 || groups < 1 || a->c % groups || out % groups)
            return lathe_fail(LATHE_EINVAL, "layer %s: %d input and %d output channels do not split into %d groups",
                              l->name, a->c, out, groups);
        s.p = lathe_k_conv_out(a->h, k, s.stride, s.pad, dil), s.q = lathe_k_conv_out(a->w, k, s.stride, s.pad, dil);
        ok = s.p > 0 && s.q > 0, why = "the kernel (with its dilation and padding) is larger than the input";
        l->cs = s, l->c = out, l->h = s.p, l->w = s.q;
        int wshape[4] = {out, a->c / groups, k, k};
        l->pw = add_param(g, l, "weight", 4, wshape, 1, 1, cap);
        if (get_int(d, "bias", 1)) l->pb = add_param(g, l, "bias", 1, &out, 0, 1, cap);
        l->bias_init = get_float(d, "bias_init", 0);
        const cJSON *act = cJSON_GetObjectItemCaseSensitive(d, "act");
        l->conv_act = cJSON_IsString(act) ? act_named(act->valuestring) : -1, l->slope = get_float(d, "slope", 0.1f);
        g->fused |= l->conv_act >= 0;
        size_t ws = lathe_k_conv_workspace(&s);
        if (ws > g->workspace_floats) g->workspace_floats = ws;
        l->macs = (double)out * s.p * s.q * (a->c / groups) * k * k;
        break;
    }
    case L_BN:
    case L_LAYERNORM: {
        int n = l->type == L_BN ? a->c : (int)per_sample(a);
        l->eps = get_float(d, "eps", 1e-5f), l->momentum = get_float(d, "momentum", 0.1f);
        l->pw = add_param(g, l, "weight", 1, &n, 0, 1, cap);
        l->pb = add_param(g, l, "bias", 1, &n, 0, 1, cap);
        if (l->type == L_BN) {
            l->prm = add_param(g, l, "running_mean", 1, &n, 0, 0, cap);
            l->prv = add_param(g, l, "running_var", 1, &n, 0, 0, cap);
            l->aux_len = 2 * (size_t)n;
        } else {
            l->aux_len = 2 * (size_t)g->batch;
        }
        break;
    }
    case L_ACT: l->slope = get_float(d, "slope", 0.1f); break;
    case L_MAXPOOL:
    case L_AVGPOOL: {
        int k = get_int(d, "k", 2);
        l->cs.r = k, l->cs.stride = get_int(d, "stride", k), l->cs.pad = get_int(d, "pad", 0);
        l->h = lathe_k_conv_out(a->h, k, l->cs.stride, l->cs.pad, 1);
        l->w = lathe_k_conv_out(a->w, k, l->cs.stride, l->cs.pad, 1);
        ok = l->h > 0 && l->w > 0 && l->cs.pad < k, why = "the window is larger than the input, or pad >= k";
        l->macs = (double)l->c * l->h * l->w * k * k;
        break;
    }
    case L_GAP: l->h = l->w = 1; break;
    case L_INPUT: {
        const cJSON *shape = cJSON_GetObjectItemCaseSensitive(d, "shape");
        if (!cJSON_IsArray(shape)) return lathe_fail(LATHE_EINVAL, "layer %s: an input needs shape: [C, H, W]", l->name);
        if (!shape_of(shape, &l->c, &l->h, &l->w))
            return lathe_fail(LATHE_EINVAL, "layer %s: shape must be [C, H, W] of whole numbers 1..%d", l->name,
                              LATHE_MODEL_SIDE_MAX);
        break;
    }
    case L_UPSAMPLE:
        l->factor = get_int(d, "factor", 2);
        ok = l->factor >= 1 && (int64_t)l->h * l->factor <= LATHE_MODEL_SIDE_MAX &&
             (int64_t)l->w * l->factor <= LATHE_MODEL_SIDE_MAX;
        why = "upsampled past 65536 positions a side";
        if (ok) l->h *= l->factor, l->w *= l->factor;
        break;
    case L_FILM: {
        const layer *p = l->nin == 2 ? &g->layers[l->in[1]] : NULL;
        ok = p && per_sample(p) == 2 * (size_t)a->c,
        why = "film takes from: [features C x H x W, modulation of 2C values (a scale and a shift per channel)]";
        l->macs = 2.0 * (double)per_sample(a);
        break;
    }
    case L_CONCAT:
        l->tokens = get_int(d, "tokens", 0);
        if (l->tokens) { /* every input's positions one after another, as tokens of C features: C x L x 1 */
            int64_t len = 0;
            for (int k = 0; k < l->nin; k++) {
                const layer *b = &g->layers[l->in[k]];
                ok &= b->c == a->c, why = "concat with tokens: 1 needs inputs of one channel count";
                len += (int64_t)b->h * b->w;
            }
            if (ok && len > (1 << 30)) ok = 0, why = "more than 2^30 tokens";
            l->h = ok ? (int)len : 0, l->w = 1;
            break;
        }
        int64_t channels = 0;
        for (int k = 0; k < l->nin; k++) {
            const layer *b = &g->layers[l->in[k]];
            ok &= b->h == a->h && b->w == a->w, why = "concat needs inputs of one height and width";
            channels += b->c;
        }
        if (ok && channels > (1 << 24)) ok = 0, why = "more than 2^24 channels";
        l->c = ok ? (int)channels : 0;
        break;
    case L_ADD:
        for (int k = 1; k < l->nin; k++) {
            const layer *b = &g->layers[l->in[k]];
            ok &= b->c == a->c && b->h == a->h && b->w == a->w, why = "add needs inputs of one shape";
        }
        break;
    case L_LINEAR: {
        int out = out_of(d, model);
        if (out < 1) return lathe_fail(LATHE_EINVAL, "layer %s: linear needs out: N or out: classes", l->name);
        int din = (int)per_sample(a), wshape[2] = {out, din};
        l->c = out, l->h = l->w = 1;
        l->pw = add_param(g, l, "weight", 2, wshape, 1, 1, cap);
        if (get_int(d, "bias", 1)) l->pb = add_param(g, l, "bias", 1, &out, 0, 1, cap);
        l->macs = (double)out * din;
        break;
    }
    case L_ATTENTION: { /* tokens: the H x W positions; features: the C channels */
        int dm = a->c, len = a->h * a->w;
        l->heads = get_int(d, "heads", 1);
        ok = l->heads >= 1 && dm % l->heads == 0, why = "heads must divide the channels";
        int win[2] = {3 * dm, dm}, wout[2] = {dm, dm}, bin = 3 * dm;
        l->pw = add_param(g, l, "in_proj_weight", 2, win, 1, 1, cap);
        l->pb = add_param(g, l, "in_proj_bias", 1, &bin, 0, 1, cap);
        l->prm = add_param(g, l, "out_proj.weight", 2, wout, 1, 1, cap);
        l->prv = add_param(g, l, "out_proj.bias", 1, &dm, 0, 1, cap);
        /* aux: x and y (or dy) as (N, L, D), dx as (N, L, D), then the kernel's saved activations */
        l->aux_len = 3 * (size_t)g->batch * len * dm + lathe_k_mha_saved(g->batch, len, dm, l->heads);
        size_t ws = lathe_k_mha_workspace(g->batch, len, dm, l->heads);
        if (ws > g->workspace_floats) g->workspace_floats = ws;
        l->macs = 4.0 * len * dm * dm + 2.0 * len * len * dm;
        break;
    }
    case L_DETECT: { /* the head maps of every level, anchor by anchor: (A, C) with A = sum H x W */
        int anchors = 0;
        for (int k = 0; k < l->nin; k++) {
            const layer *b = &g->layers[l->in[k]];
            ok &= b->c == a->c, why = "detect needs inputs of one channel count";
            anchors += b->h * b->w;
        }
        l->c = anchors, l->h = 1, l->w = a->c;
        break;
    }
    case L_L2NORM: { /* each sample's values as one vector: scaled unit embeddings (contrastive heads) */
        int one = 1;
        l->scale_init = logf(1 / get_float(d, "temperature", 0.07f));
        l->max_scale = get_float(d, "max_scale", 100);
        l->pw = add_param(g, l, "logit_scale", 1, &one, 0, get_int(d, "learn", 1), cap);
        l->aux_len = 2 * (size_t)g->batch; /* norms, and the GPU backward's per-row scale gradients */
        break;
    }
    case L_VOCAB: { /* a detect layer's anchors: box values kept, the rest an embedding scored against text */
        int out = out_of(d, model), one = 1, e;
        const cJSON *box = cJSON_GetObjectItemCaseSensitive(d, "box");
        l->box = box ? out_of_key(box, model) : 0;
        e = a->w - l->box;
        ok = a->h == 1 && out >= 1 && l->box >= 0 && e >= 2;
        why = "vocab takes a detect layer's anchors (A x 1 x box + E, E >= 2) and out: classes";
        if (!ok) break;
        int tshape[2] = {out, e};
        l->c = a->c, l->h = 1, l->w = l->box + out;
        l->bias_init = get_float(d, "bias_init", -4.6f);
        l->scale_init = logf(1 / get_float(d, "temperature", 0.07f));
        l->pw = add_param(g, l, "text", 2, tshape, 0, 0, cap); /* class prompts' embeddings: set by the task */
        l->pb = add_param(g, l, "bias", 1, &one, 0, 1, cap);
        l->prm = add_param(g, l, "logit_scale", 1, &one, 0, 1, cap);
        l->aux_len = (size_t)g->batch * a->c * (1 + (size_t)e); /* norms and unit embeddings */
        size_t ws = (size_t)g->batch * a->c * e;
        if (ws > g->workspace_floats) g->workspace_floats = ws;
        l->macs = (double)a->c * e * out;
        break;
    }
    case L_DROPOUT:
        l->drop = get_float(d, "p", 0.5f);
        ok = l->drop >= 0 && l->drop < 1, why = "p must be in [0, 1)";
        l->aux_len = (size_t)g->batch * per_sample(a);
        break;
    default: break;
    }
    if (g->nparams && !g->params) return lathe_fail(LATHE_ENOMEM, "parameters");
    if (!ok)
        return lathe_fail(LATHE_EINVAL, "layer %s: its input (%d x %d x %d) does not fit: %s%s", l->name, a->c, a->h, a->w,
                          why, l->nin > 1 ? inputs_text(g, l) : "");
    return 0;
}

/* ---- building ---- */

static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Weights uniform, bounded by fan-in (model.init: he or torch); zero biases; norms at identity */
static void init_params(lathe_graph *g) {
    uint64_t state = g->seed;
    for (size_t i = 0; i < g->nparams; i++) {
        lathe_param *p = &g->params[i];
        const char *suffix = strrchr(p->name, '.') + 1;
        if (p->decay) {
            size_t fan_in = p->count / (size_t)p->shape[0];
            float bound = g->init_torch ? 1.0f / sqrtf((float)fan_in) : sqrtf(6.0f / (float)fan_in);
            for (size_t k = 0; k < p->count; k++)
                p->data[k] = bound * (float)((double)(splitmix(&state) >> 11) / 9007199254740992.0 * 2 - 1);
        } else {
            float v = !strcmp(suffix, "running_var") || (!strcmp(suffix, "weight")) ? 1.0f : 0.0f;
            for (size_t k = 0; k < p->count; k++) p->data[k] = v;
        }
    }
}

/* LATHE_FUSE=0: every layer runs alone and keeps its output and gradient apart (the reference the
 * tests compare the fused, shared arena with); LATHE_FUSE=plain: fused, but a conv hands its output
 * to its bn in NCHW (the reference for the blocked handover, and its benchmark's other side) */
static int plans_off(void) {
    const char *env = getenv("LATHE_FUSE");
    return env && !strcmp(env, "0");
}

static int blocked_off(void) {
    const char *env = getenv("LATHE_FUSE");
    return env && !strcmp(env, "plain");
}

/* Values per sample the CPU keeps of a layer's output: none for a bn whose act runs with it; and of
 * its gradient: none for those and for inputs (nothing flows into an input). */
static size_t kept_per_sample(const layer *l) { return l->act_after ? 0 : per_sample(l); }
static size_t kept_grad_per_sample(const layer *l) { return l->type == L_INPUT ? 0 : kept_per_sample(l); }

/* The backward step up to which a layer's gradient is read: its own, or for an act run by its bn,
 * the bn's; the output's is kept to the end (the caller fills it before the pass). */
static int dy_last(const lathe_graph *g, int i) {
    return i == g->nlayers - 1 ? 0 : g->layers[i].in_bn ? g->layers[i].in[0] : i;
}

/* The floats layer l's gradient takes in the shared region, rounded to 64 bytes */
static size_t grad_slot(const lathe_graph *g, const layer *l) {
    return ((size_t)g->batch * kept_grad_per_sample(l) + 15) / 16 * 16;
}

static int by_grad_size(const void *pa, const void *pb, void *ctx) {
    const lathe_graph *g = ctx;
    int a = *(const int *)pa, b = *(const int *)pb;
    size_t sa = kept_grad_per_sample(&g->layers[a]), sb = kept_grad_per_sample(&g->layers[b]);
    return sa != sb ? (sa < sb ? 1 : -1) : a - b;
}

/* Activation gradients share memory where their lives do not overlap. The backward pass runs the
 * layers from the last to the first, and layer i's gradient lives from the step of its last reader
 * (the first to write it; the output's: from before the pass to after it) down to dy_last. Largest
 * first, each goes to the lowest offset clear of every placed gradient whose life overlaps its
 * own (detector_n: a fifth of the memory of one gradient per layer). Returns the floats needed. */
static size_t plan_gradients(lathe_graph *g) {
    int L = g->nlayers, *order = malloc((size_t)L * sizeof *order), placed = 0;
    for (int i = 0; i < L; i++) g->layers[i].dy_first = i == L - 1 ? L : i;
    for (int j = 1; j < L; j++)
        for (int k = 0; k < g->layers[j].nin; k++) {
            layer *b = &g->layers[g->layers[j].in[k]];
            if (b->dy_first < j) b->dy_first = j;
        }
    size_t peak = 0;
    if (!order || plans_off()) { /* every gradient apart */
        for (int i = 0; i < L; i++) g->layers[i].dy_off = peak, peak += (size_t)g->batch * kept_grad_per_sample(&g->layers[i]);
        free(order);
        return peak;
    }
    for (int i = 0; i < L; i++) order[i] = i;
    qsort_r(order, (size_t)L, sizeof *order, by_grad_size, g);
    for (int k = 0; k < L; k++) {
        layer *l = &g->layers[order[k]];
        size_t size = grad_slot(g, l), off = 0;
        if (!size) break; /* sorted: the rest keep no gradient */
        int lo = dy_last(g, order[k]), hi = l->dy_first;
        for (int m = 0; m < placed; m++) { /* any overlap in time and space moves it past, and starts over */
            const layer *p = &g->layers[order[m]];
            size_t psize = grad_slot(g, p);
            if (dy_last(g, order[m]) <= hi && lo <= p->dy_first && off < p->dy_off + psize && p->dy_off < off + size)
                off = p->dy_off + psize, m = -1;
        }
        l->dy_off = off, placed++;
        if (off + size > peak) peak = off + size;
    }
    free(order);
    return peak;
}

/* Each bn whose only reader is an act runs with it (lathe_k_bn_act_*): one pass over memory
 * instead of three, and neither the bn's output nor its gradient is stored; where the bn is its
 * input's only reader (a conv's bn), its backward writes that gradient rather than adding to it, so
 * it needs no zeroing, and a conv there may keep its output and gradient in oneDNN's blocked
 * layout (y_block): the bn reads and writes that layout as it passes over them anyway, which saves
 * the conv's reorders of y out and dy in. */
static void plan_bn_act(lathe_graph *g) {
    if (plans_off()) return;
    int *readers = calloc((size_t)g->nlayers, sizeof *readers), *reader = calloc((size_t)g->nlayers, sizeof *reader);
    if (readers && reader)
        for (int j = 1; j < g->nlayers; j++)
            for (int k = 0; k < g->layers[j].nin; k++) readers[g->layers[j].in[k]]++, reader[g->layers[j].in[k]] = j;
    for (int i = 1; readers && reader && i < g->nlayers; i++) {
        layer *b = &g->layers[i], *a = &g->layers[reader[i]], *in = &g->layers[b->in[0]];
        if (b->type != L_BN || readers[i] != 1 || a->type != L_ACT || a->nin != 1) continue;
        b->act_after = reader[i], a->in_bn = 1;
        in->dy_written = readers[b->in[0]] == 1 && in->type != L_INPUT;
        in->y_blockable = in->dy_written && in->type == L_CONV && in->conv_act < 0 && !blocked_off();
    }
    free(readers), free(reader);
}

static void fix_pointers(lathe_graph *g) {
    for (size_t i = 0; i < g->nparams; i++) {
        lathe_param *p = &g->params[i];
        p->data = g->param_arena + ((uintptr_t)p->data - 1);
        if (p->grad) p->grad = g->param_arena + ((uintptr_t)p->grad - 1);
    }
    size_t per = g->grad_floats; /* the gradients first, at their planned offsets */
    for (int i = 0; i < g->nlayers; i++) {
        layer *l = &g->layers[i];
        size_t n = (size_t)g->batch * kept_per_sample(l);
        l->y = n ? g->act_arena + per : NULL, per += n;
        l->dy = kept_grad_per_sample(l) ? g->act_arena + l->dy_off : NULL;
        l->aux = l->aux_len ? g->act_arena + per : NULL;
        per += l->aux_len;
        l->ints = l->type == L_MAXPOOL ? g->int_arena + l->int_off : NULL;
    }
}

static int build(const cJSON *model, int batch, uint64_t seed, lathe_graph **out) {
    const cJSON *input = cJSON_GetObjectItemCaseSensitive(model, "input");
    const cJSON *layers = cJSON_GetObjectItemCaseSensitive(model, "layers");
    if (!cJSON_IsArray(input) || cJSON_GetArraySize(input) != 3)
        return lathe_fail(LATHE_EINVAL, "model.input must be [C, H, W]");
    if (!cJSON_IsArray(layers) || cJSON_GetArraySize(layers) == 0)
        return lathe_fail(LATHE_EINVAL, "model.layers must be a non-empty list");
    if (batch < 1) return lathe_fail(LATHE_EINVAL, "batch must be >= 1");
    /* as a spec's check has them (spec_check.c), for models that come without one (an engine's) */
    double width = get_num(model, "width", 1), depth = get_num(model, "depth", 1);
    if (!(width > 0 && width <= LATHE_MODEL_SCALE_MAX) || !(depth > 0 && depth <= LATHE_MODEL_SCALE_MAX))
        return lathe_fail(LATHE_EINVAL, "model.width and model.depth must be in (0, %d]", LATHE_MODEL_SCALE_MAX);
    width = (float)width, depth = (float)depth; /* read as floats, as blocks.c reads them */
    /* he: Kaiming uniform with ReLU's gain (bound sqrt(6 / fan_in)); torch: PyTorch's default for
     * nn.Conv2d and nn.Linear weights (kaiming_uniform_ with a = sqrt(5): bound 1 / sqrt(fan_in)), what
     * YOLOv8 trains from. Under batch norm the scale sets how far an Adam step moves a filter's direction. */
    const cJSON *init = cJSON_GetObjectItemCaseSensitive(model, "init");
    if (init && !(cJSON_IsString(init) && (!strcmp(init->valuestring, "he") || !strcmp(init->valuestring, "torch"))))
        return lathe_fail(LATHE_EINVAL, "model.init: he or torch");
    size_t total = 1;
    const cJSON *d;
    cJSON_ArrayForEach(d, layers) {
        int rep = get_int(d, "repeat", 1);
        rep = rep > LATHE_MODEL_REPEAT_MAX ? LATHE_MODEL_REPEAT_MAX : rep; /* more is refused below, naming the layer */
        total += rep > 1 ? (size_t)fmax(1, lround(rep * depth)) : 1;
    }
    if (total > (1 << 20)) return lathe_fail(LATHE_EINVAL, "model: %zu layers (with repeats), more than 2^20", total);
    lathe_graph *g = calloc(1, sizeof *g);
    if (!g || !(g->layers = calloc(total, sizeof *g->layers))) {
        free(g);
        return lathe_fail(LATHE_ENOMEM, "graph");
    }
    g->batch = batch, g->seed = seed, g->train = 1, g->threads = omp_get_max_threads();
    g->sync_bn = lathe_dist_sync_bn();
    g->init_torch = init && !strcmp(init->valuestring, "torch");
    layer *in = &g->layers[0];
    snprintf(in->name, sizeof in->name, "input");
    in->type = L_INPUT, in->pw = in->pb = in->prm = in->prv = -1;
    int rc = shape_of(input, &in->c, &in->h, &in->w)
                 ? 0
                 : lathe_fail(LATHE_EINVAL, "model.input must be [C, H, W] of whole numbers 1..%d", LATHE_MODEL_SIDE_MAX);
    size_t cap = 0;
    int i = 1, entry = 0;
    cJSON_ArrayForEach(d, layers) {
        if (rc) break;
        int rep = get_int(d, "repeat", 1);
        rep = rep > LATHE_MODEL_REPEAT_MAX ? LATHE_MODEL_REPEAT_MAX : rep; /* as counted above; refused below */
        rep = rep > 1 ? (int)fmax(1, lround(rep * depth)) : 1;
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(d, "type");
        const cJSON *nm = cJSON_GetObjectItemCaseSensitive(d, "name");
        for (int r = 0; r < rep && !rc; r++, i++) {
            layer *l = &g->layers[i];
            if (cJSON_IsString(nm) && rep == 1) snprintf(l->name, sizeof l->name, "%s", nm->valuestring);
            else if (cJSON_IsString(nm)) snprintf(l->name, sizeof l->name, "%s.%d", nm->valuestring, r);
            else snprintf(l->name, sizeof l->name, "layers.%d", i - 1);
            if (find_layer(g, i, l->name) >= 0) {
                rc = lathe_fail(LATHE_EINVAL, "layer name %s is used twice", l->name);
                break;
            }
            l->type = cJSON_IsString(t) ? type_of(t->valuestring, &l->act) : -1;
            if (l->type < 0) {
                rc = lathe_fail(LATHE_EINVAL, "layer %d (%s): unknown type %s", entry, l->name,
                                cJSON_IsString(t) ? t->valuestring : "(none)");
                break;
            }
            if (r == 0) rc = check_layer_args(d, l->type, l->act, entry, t->valuestring);
            if (!rc) rc = resolve_inputs(g, i, r == 0 ? cJSON_GetObjectItemCaseSensitive(d, "from") : NULL);
            if (!rc && (l->type == L_CONCAT || l->type == L_ADD) && l->nin < 2)
                rc = lathe_fail(LATHE_EINVAL, "layer %s: %s needs at least two inputs (from)", l->name,
                                t->valuestring);
            if (!rc) rc = plan_layer(g, i, d, model, width, &cap);
            /* so that the arena sums below cannot wrap: 2^40 floats is far past any machine's memory */
            if (!rc && per_sample(&g->layers[i]) > ((size_t)1 << 40) / (size_t)batch)
                rc = lathe_fail(LATHE_ENOMEM, "layer %s: %zu values a sample at batch %d, more than memory holds",
                                g->layers[i].name, per_sample(&g->layers[i]), batch);
        }
        entry++;
    }
    g->nlayers = rc ? i : (int)total;
    if (!rc) {
        if (!g->sync_bn) plan_bn_act(g); /* a synchronized bn runs apart (bn_sync.c) */
        g->act_floats = g->grad_floats = plan_gradients(g);
        for (int k = 0; k < g->nlayers; k++) {
            layer *l = &g->layers[k];
            g->act_floats += (size_t)batch * kept_per_sample(l) + l->aux_len;
            if (l->type == L_MAXPOOL) l->int_off = g->int_count, g->int_count += (size_t)batch * per_sample(l);
        }
        g->param_arena = calloc(g->param_floats ? g->param_floats : 1, sizeof(float));
        g->act_arena = calloc(g->act_floats, sizeof(float));
        g->int_arena = calloc(g->int_count ? g->int_count : 1, sizeof(int32_t));
        g->workspace = malloc((g->workspace_floats ? g->workspace_floats : 1) * sizeof(float));
        /* a synchronized bn's sums live in one buffer made now, not per step: a rank short of memory
           mid-backward would leave the others waiting in the sum; the blocked bn kernels' sums too */
        size_t sums = 0;
        for (int k = 0; k < g->nlayers; k++) {
            const layer *l = &g->layers[k];
            if (g->sync_bn && l->type == L_BN && 4 * (size_t)l->c + 1 > sums) sums = 4 * (size_t)l->c + 1;
            if (l->y_blockable && LATHE_K_BN_BLOCKED_SCRATCH(l->c) > sums) sums = LATHE_K_BN_BLOCKED_SCRATCH(l->c);
        }
        if (sums && !(g->bn_sums = malloc(sums * sizeof *g->bn_sums))) rc = lathe_fail(LATHE_ENOMEM, "batch norm sums");
        else if (!g->param_arena || !g->act_arena || !g->int_arena || !g->workspace)
            rc = lathe_fail(LATHE_ENOMEM, "the model needs %.1f GiB of parameters and %.1f GiB of activations at batch %d, "
                                          "more than this machine gives (lower the batch, the input size or the widths)",
                            g->param_floats * 4.0 / (1 << 30), g->act_floats * 4.0 / (1 << 30), batch);
    }
    if (rc) {
        lathe_graph_free(g);
        return rc;
    }
    fix_pointers(g);
    init_params(g);
    for (int j = 0; j < g->nlayers; j++) {
        const layer *lj = &g->layers[j];
        if (lj->type == L_CONV && lj->pb >= 0)
            for (size_t k = 0; k < g->params[lj->pb].count; k++) g->params[lj->pb].data[k] = lj->bias_init;
        if (lj->type == L_L2NORM) g->params[lj->pw].data[0] = lj->scale_init;
        if (lj->type == L_VOCAB) g->params[lj->pb].data[0] = lj->bias_init, g->params[lj->prm].data[0] = lj->scale_init;
    }
    *out = g;
    return 0;
}

int lathe_graph_build(const cJSON *model, int batch, uint64_t seed, lathe_graph **out) {
    *out = NULL;
    cJSON *expanded;
    int rc = lathe_blocks_expand(model, &expanded);
    if (rc) return rc;
    rc = build(expanded ? expanded : model, batch, seed, out);
    cJSON_Delete(expanded);
    return rc;
}

void lathe_graph_free(lathe_graph *g) {
    if (!g) return;
    graph_gpu_free(g);
    for (int i = 0; g->layers && i < g->nlayers; i++) lathe_k_conv_dnnl_wcache_free(g->layers[i].wcache);
    free(g->layers), free(g->params), free(g->param_arena), free(g->act_arena), free(g->int_arena), free(g->workspace);
    free(g->bn_sums), free(g);
}

/* ---- running on the CPU ---- */

/* memcpy / zeroing of activation-sized buffers, split between the threads (one thread alone left
 * the others waiting at the next kernel: 4% of detector_n's step) */
enum { MOVE_CHUNK = 1 << 16 };
static void copy_floats(float *dst, const float *src, size_t n) {
    size_t chunks = (n + MOVE_CHUNK - 1) / MOVE_CHUNK;
#pragma omp parallel for schedule(static) if (chunks > 4)
    for (size_t k = 0; k < chunks; k++) {
        size_t at = k * MOVE_CHUNK, len = n - at < MOVE_CHUNK ? n - at : MOVE_CHUNK;
        if (src) memcpy(dst + at, src + at, len * sizeof(float));
        else memset(dst + at, 0, len * sizeof(float));
    }
}
static void zero_floats(float *p, size_t n) { copy_floats(p, NULL, n); }

static float *pdata(lathe_graph *g, int i) { return i >= 0 ? g->params[i].data : NULL; }
static float *pgrad(lathe_graph *g, int i) { return i >= 0 && !g->params[i].frozen ? g->params[i].grad : NULL; }

void lathe_graph_set_train(lathe_graph *g, int train) { g->train = train; }

void lathe_graph_set_constant_weights(lathe_graph *g) { g->const_weights = 1; }

int lathe_graph_forward(lathe_graph *g, int n, uint64_t step) {
    LATHE_ASSERT(n >= 1 && n <= g->batch);
    if (g->gpu) return graph_gpu_forward(g, n, step);
    for (int i = 1; i < g->nlayers; i++) {
        layer *l = &g->layers[i];
        const layer *a = &g->layers[l->in[0]];
        size_t sz = (size_t)n * per_sample(l);
        switch (l->type) {
        case L_CONV: {
            lathe_conv_shape s = l->cs;
            s.n = n;
            /* the blocked handover to the bn (plan_bn_act), where oneDNN keeps y in such a layout */
            int blk = l->y_blockable && !g->const_weights
                          ? lathe_k_conv2d_fwd_dnnl_yblocked(&s, a->y, pdata(g, l->pw), pdata(g, l->pb), l->y)
                          : 0;
            l->y_block = blk > 0 ? blk : 0;
            if (l->y_block) break;
            /* oneDNN (with constant weights: kept in its layout, the activation fused), else im2col */
            int declined = g->const_weights ? lathe_k_conv2d_fwd_dnnl_const(&s, a->y, pdata(g, l->pw), pdata(g, l->pb), l->y,
                                                                            l->conv_act, l->slope, &l->wcache)
                                            : lathe_k_conv2d_fwd_dnnl(&s, a->y, pdata(g, l->pw), pdata(g, l->pb), l->y);
            if (declined) lathe_k_conv2d_fwd_f32(&s, a->y, pdata(g, l->pw), pdata(g, l->pb), l->y, g->workspace);
            if (l->conv_act >= 0 && (declined || !g->const_weights)) lathe_k_act_fwd_f32(l->conv_act, sz, l->y, l->slope, l->y);
            break;
        }
        case L_BN:
            if (g->sync_bn && g->train) {
                int rc = graph_bn_sync_fwd(g, l, a, n);
                if (rc) return rc;
                break;
            }
            if (l->act_after && a->type == L_CONV && a->y_block) {
                const layer *t = &g->layers[l->act_after];
                lathe_k_bn_act_fwd_blocked_f32(n, l->c, l->h * l->w, a->y_block, a->y, pdata(g, l->pw), pdata(g, l->pb),
                                               pdata(g, l->prm), pdata(g, l->prv), l->momentum, l->eps, g->train, t->act,
                                               t->slope, l->aux, l->aux + l->c, t->y, g->bn_sums);
                break;
            }
            if (l->act_after) {
                const layer *t = &g->layers[l->act_after];
                lathe_k_bn_act_fwd_f32(n, l->c, l->h * l->w, a->y, pdata(g, l->pw), pdata(g, l->pb), pdata(g, l->prm),
                                       pdata(g, l->prv), l->momentum, l->eps, g->train, t->act, t->slope, l->aux,
                                       l->aux + l->c, t->y);
                break;
            }
            lathe_k_bn_fwd_f32(n, l->c, l->h * l->w, a->y, pdata(g, l->pw), pdata(g, l->pb), pdata(g, l->prm),
                               pdata(g, l->prv), l->momentum, l->eps, g->train, l->aux, l->aux + l->c, l->y);
            break;
        case L_LAYERNORM:
            lathe_k_layernorm_fwd_f32(n, (int)per_sample(l), a->y, pdata(g, l->pw), pdata(g, l->pb), l->eps, l->aux,
                                      l->aux + g->batch, l->y);
            break;
        case L_ACT:
            if (!l->in_bn) lathe_k_act_fwd_f32(l->act, sz, a->y, l->slope, l->y);
            break;
        case L_L2NORM:
            lathe_k_l2norm_fwd_f32(n, (int)per_sample(l), a->y, pdata(g, l->pw), l->max_scale, l->aux, l->y);
            break;
        case L_VOCAB:
            lathe_k_vocab_fwd_f32(n * l->c, l->box, a->w - l->box, l->w - l->box, a->y, pdata(g, l->pw),
                                  pdata(g, l->prm), pdata(g, l->pb), l->aux, l->y);
            break;
        case L_MAXPOOL:
            lathe_k_maxpool_fwd_f32(n, l->c, a->h, a->w, l->cs.r, l->cs.stride, l->cs.pad, l->h, l->w, a->y, l->y,
                                    l->ints);
            break;
        case L_FILM: lathe_k_film_fwd_f32(n, l->c, l->h * l->w, a->y, g->layers[l->in[1]].y, l->y); break;
        case L_AVGPOOL:
            lathe_k_avgpool_fwd_f32(n, l->c, a->h, a->w, l->cs.r, l->cs.stride, l->cs.pad, l->h, l->w, a->y, l->y);
            break;
        case L_GAP: lathe_k_gap_fwd_f32(n * l->c, a->h * a->w, a->y, l->y); break;
        case L_UPSAMPLE: lathe_k_upsample_fwd_f32(n, a->c, a->h, a->w, l->factor, a->y, l->y); break;
        case L_CONCAT:
            for (size_t k = 0, off = 0; k < (size_t)l->nin; k++) { /* each input's rows into its stretch of the output's */
                const layer *b = &g->layers[l->in[k]];
                size_t rows, len, pitch;
                concat_rows(l, b, n, &rows, &len, &pitch);
#pragma omp parallel for schedule(static) if (sz > 262144)
                for (size_t r = 0; r < rows; r++) memcpy(l->y + r * pitch + off, b->y + r * len, len * sizeof(float));
                off += len;
            }
            break;
        case L_ADD:
            copy_floats(l->y, a->y, sz);
            for (int k = 1; k < l->nin; k++) lathe_k_add_rows_f32(1, sz, g->layers[l->in[k]].y, 0, l->y, 0);
            break;
        case L_LINEAR:
            lathe_k_linear_fwd_f32(n, (int)per_sample(a), l->c, a->y, pdata(g, l->pw), pdata(g, l->pb), l->y);
            break;
        case L_ATTENTION: { /* (N, D, L) channel planes -> (N, L, D) token rows and back */
            int len = l->h * l->w, dm = l->c;
            size_t bld = (size_t)g->batch * len * dm, per = (size_t)len * dm;
            float *xt = l->aux, *yt = xt + bld, *saved = l->aux + 3 * bld;
            lathe_k_transpose_f32(n, dm, len, a->y, per, xt, per, 0);
            lathe_k_mha_fwd_f32(n, len, dm, l->heads, xt, pdata(g, l->pw), pdata(g, l->pb), pdata(g, l->prm),
                                pdata(g, l->prv), saved, yt);
            lathe_k_transpose_f32(n, len, dm, yt, per, l->y, per, 0);
            break;
        }
        case L_DETECT: /* each level's (C, H W) maps become its anchors' rows (H W, C) */
            for (int k = 0, at = 0; k < l->nin; k++) {
                const layer *b = &g->layers[l->in[k]];
                int hw = b->h * b->w;
                lathe_k_transpose_f32(n, b->c, hw, b->y, per_sample(b), l->y + (size_t)at * b->c, per_sample(l), 0);
                at += hw;
            }
            break;
        case L_DROPOUT: /* the mask hashes (seed, step, layer, element): repeatable */
            lathe_k_dropout_fwd_f32(sz, a->y, g->train ? l->drop : 0, graph_dropout_key(g, i, step), l->aux, l->y);
            break;
        default: break;
        }
    }
    return 0;
}

int lathe_graph_backward(lathe_graph *g, int n) {
    LATHE_ASSERT(n >= 1 && n <= g->batch);
    if (g->const_weights) return lathe_fail(LATHE_EINVAL, "a graph with constant weights (an engine) does not train");
    if (g->fused)
        return lathe_fail(LATHE_EINVAL, "a conv with act: (a fused activation) is for inference; train with the activation "
                                        "as its own layer");
    if (g->gpu) return graph_gpu_backward(g, n);
    for (size_t k = 0; k < g->nparams; k++)
        if (g->params[k].grad) zero_floats(g->params[k].grad, g->params[k].count);
    for (int i = g->nlayers - 1; i >= 1; i--) {
        layer *l = &g->layers[i];
        layer *a = &g->layers[l->in[0]];
        size_t sz = (size_t)n * per_sample(l);
        float *dx = a->dy; /* NULL for an input: nothing flows into it */
        for (int k = -1; k < l->nin; k++) { /* the gradients this step writes first start from zero */
            layer *b = k < 0 ? l : &g->layers[l->in[k]];
            if (b->dy && b->dy_first == i && !b->dy_written) zero_floats(b->dy, (size_t)n * per_sample(b));
        }
        switch (l->type) {
        case L_CONV: {
            lathe_conv_shape s = l->cs;
            s.n = n;
            if (l->y_block) { /* dy is blocked: no other kernel could read it */
                if (lathe_k_conv2d_bwd_dnnl_yblocked(&s, a->y, pdata(g, l->pw), l->dy, dx, pgrad(g, l->pw), pgrad(g, l->pb)))
                    return lathe_fail(LATHE_ENOMEM, "oneDNN could not run the backward pass of conv %s", l->name);
                break;
            }
            if (lathe_k_conv2d_bwd_dnnl(&s, a->y, pdata(g, l->pw), l->dy, dx, pgrad(g, l->pw), pgrad(g, l->pb)))
                lathe_k_conv2d_bwd_f32(&s, a->y, pdata(g, l->pw), l->dy, dx, pgrad(g, l->pw), pgrad(g, l->pb),
                                       g->workspace);
            break;
        }
        case L_BN:
            if (g->sync_bn && g->train) {
                int rc = graph_bn_sync_bwd(g, l, a, n, dx);
                if (rc) return rc;
                break;
            }
            if (l->act_after && a->type == L_CONV && a->y_block) {
                const layer *t = &g->layers[l->act_after];
                lathe_k_bn_act_bwd_blocked_f32(n, l->c, l->h * l->w, a->y_block, g->train, t->act, t->slope, a->y,
                                               pdata(g, l->pw), pdata(g, l->pb), l->aux, l->aux + l->c, t->dy, dx,
                                               pgrad(g, l->pw), pgrad(g, l->pb), g->bn_sums);
                break;
            }
            if (l->act_after) {
                const layer *t = &g->layers[l->act_after];
                lathe_k_bn_act_bwd_f32(n, l->c, l->h * l->w, g->train, t->act, t->slope, a->y, pdata(g, l->pw),
                                       pdata(g, l->pb), l->aux, l->aux + l->c, t->dy, dx, a->dy_written,
                                       pgrad(g, l->pw), pgrad(g, l->pb));
                break;
            }
            lathe_k_bn_bwd_f32(n, l->c, l->h * l->w, g->train, a->y, pdata(g, l->pw), l->aux, l->aux + l->c, l->dy, dx,
                               pgrad(g, l->pw), pgrad(g, l->pb));
            break;
        case L_LAYERNORM:
            lathe_k_layernorm_bwd_f32(n, (int)per_sample(l), a->y, pdata(g, l->pw), l->aux, l->aux + g->batch, l->dy,
                                      dx, pgrad(g, l->pw), pgrad(g, l->pb));
            break;
        case L_ACT:
            if (dx && !l->in_bn) lathe_k_act_bwd_f32(l->act, sz, a->y, l->slope, l->dy, dx);
            break;
        case L_L2NORM:
            lathe_k_l2norm_bwd_f32(n, (int)per_sample(l), a->y, pdata(g, l->pw), l->max_scale, l->aux, l->dy, dx,
                                   pgrad(g, l->pw));
            break;
        case L_VOCAB:
            lathe_k_vocab_bwd_f32(n * l->c, l->box, a->w - l->box, l->w - l->box, pdata(g, l->pw), pdata(g, l->prm),
                                  l->aux, l->dy, g->workspace, dx, pgrad(g, l->prm), pgrad(g, l->pb));
            break;
        case L_MAXPOOL:
            if (dx) lathe_k_maxpool_bwd_f32(n, l->c, a->h, a->w, l->h, l->w, l->ints, l->dy, dx);
            break;
        case L_AVGPOOL:
            if (dx)
                lathe_k_avgpool_bwd_f32(n, l->c, a->h, a->w, l->cs.r, l->cs.stride, l->cs.pad, l->h, l->w, l->dy, dx);
            break;
        case L_GAP:
            if (dx) lathe_k_gap_bwd_f32(n * l->c, a->h * a->w, l->dy, dx);
            break;
        case L_FILM: {
            layer *p = &g->layers[l->in[1]];
            lathe_k_film_bwd_f32(n, l->c, l->h * l->w, a->y, p->y, l->dy, dx, p->type == L_INPUT ? NULL : p->dy);
            break;
        }
        case L_UPSAMPLE:
            if (dx) lathe_k_upsample_bwd_f32(n, a->c, a->h, a->w, l->factor, l->dy, dx);
            break;
        case L_CONCAT:
            for (size_t k = 0, off = 0; k < (size_t)l->nin; k++) {
                layer *b = &g->layers[l->in[k]];
                size_t rows, len, pitch;
                concat_rows(l, b, n, &rows, &len, &pitch);
                if (b->type != L_INPUT) lathe_k_add_rows_f32((int)rows, len, l->dy + off, pitch, b->dy, len);
                off += len;
            }
            break;
        case L_ADD:
            for (int k = 0; k < l->nin; k++)
                if (g->layers[l->in[k]].type != L_INPUT) lathe_k_add_rows_f32(1, sz, l->dy, 0, g->layers[l->in[k]].dy, 0);
            break;
        case L_LINEAR:
            lathe_k_linear_bwd_f32(n, (int)per_sample(a), l->c, a->y, pdata(g, l->pw), l->dy, dx, pgrad(g, l->pw),
                                   pgrad(g, l->pb));
            break;
        case L_DROPOUT:
            if (dx) lathe_k_dropout_bwd_f32(sz, l->aux, l->dy, dx);
            break;
        case L_DETECT:
            for (int k = 0, at = 0; k < l->nin; k++) {
                layer *b = &g->layers[l->in[k]];
                int hw = b->h * b->w;
                if (b->type != L_INPUT)
                    lathe_k_transpose_f32(n, hw, b->c, l->dy + (size_t)at * b->c, per_sample(l), b->dy, per_sample(b), 1);
                at += hw;
            }
            break;
        case L_ATTENTION: {
            int len = l->h * l->w, dm = l->c;
            size_t bld = (size_t)g->batch * len * dm, per = (size_t)len * dm;
            float *xt = l->aux, *dyt = xt + bld, *dxt = dyt + bld, *saved = l->aux + 3 * bld;
            lathe_k_transpose_f32(n, dm, len, l->dy, per, dyt, per, 0);
            memset(dxt, 0, sizeof(float) * (size_t)n * len * dm);
            lathe_k_mha_bwd_f32(n, len, dm, l->heads, xt, pdata(g, l->pw), pdata(g, l->prm), saved, dyt, dxt,
                                pgrad(g, l->pw), pgrad(g, l->pb), pgrad(g, l->prm), pgrad(g, l->prv), g->workspace);
            if (dx) lathe_k_transpose_f32(n, len, dm, dxt, per, dx, per, 1);
            break;
        }
        default: break;
        }
        int rc = g->hook ? g->hook(g->hook_ctx, i) : 0;
        if (rc) return rc;
    }
    return 0;
}

void lathe_graph_set_backward_hook(lathe_graph *g, lathe_backward_hook fn, void *ctx) { g->hook = fn, g->hook_ctx = ctx; }

/* ---- access ---- */

float *lathe_graph_input_named(lathe_graph *g, const char *name, int *c, int *h, int *w) {
    for (int i = 0; i < g->nlayers; i++) {
        const layer *l = &g->layers[i];
        if (l->type != L_INPUT || strcmp(l->name, name)) continue;
        if (c) *c = l->c;
        if (h) *h = l->h;
        if (w) *w = l->w;
        return l->y;
    }
    return NULL;
}

int lathe_graph_ninputs(const lathe_graph *g) {
    int n = 0;
    for (int i = 0; i < g->nlayers; i++) n += g->layers[i].type == L_INPUT;
    return n;
}

float *lathe_graph_input(lathe_graph *g, int *c, int *h, int *w) {
    if (c) *c = g->layers[0].c;
    if (h) *h = g->layers[0].h;
    if (w) *w = g->layers[0].w;
    return g->layers[0].y;
}

const float *lathe_graph_output(const lathe_graph *g, int *k) {
    const layer *l = &g->layers[g->nlayers - 1];
    if (k) *k = (int)per_sample(l);
    return l->y;
}

float *lathe_graph_doutput(lathe_graph *g) { return g->layers[g->nlayers - 1].dy; }
size_t lathe_graph_nparams(const lathe_graph *g) { return g->nparams; }
lathe_param *lathe_graph_param(lathe_graph *g, size_t i) { return i < g->nparams ? &g->params[i] : NULL; }

lathe_param *lathe_graph_find_param(lathe_graph *g, const char *name) {
    for (size_t i = 0; i < g->nparams; i++)
        if (!strcmp(g->params[i].name, name)) return &g->params[i];
    return NULL;
}

static int matches(const char *pattern, const char *name) {
    size_t plen = strlen(pattern);
    return fnmatch(pattern, name, 0) == 0 || (!strncmp(name, pattern, plen) && name[plen] == '.');
}

size_t lathe_graph_freeze(lathe_graph *g, const char *pattern) {
    size_t n = 0;
    for (size_t i = 0; i < g->nparams; i++)
        if (matches(pattern, g->params[i].name)) g->params[i].frozen = 1, n++;
    return n;
}

size_t lathe_graph_set_lr_scale(lathe_graph *g, const char *pattern, float scale) {
    size_t n = 0;
    for (size_t i = 0; i < g->nparams; i++)
        if (matches(pattern, g->params[i].name)) g->params[i].lr_scale = scale, n++;
    return n;
}

size_t lathe_graph_param_count(const lathe_graph *g) {
    size_t n = 0;
    for (size_t i = 0; i < g->nparams; i++)
        if (g->params[i].grad) n += g->params[i].count;
    return n;
}

double lathe_graph_flops(const lathe_graph *g) {
    double macs = 0;
    for (int i = 0; i < g->nlayers; i++) macs += g->layers[i].macs;
    return 2 * macs;
}

void lathe_graph_summary(const lathe_graph *g, FILE *out) {
    static const char *const names[] = {"input", "conv", "bn", "act",       "maxpool",   "avgpool", "gap",
                                        "upsample", "concat", "add", "linear", "dropout", "layernorm", "attention",
                                        "detect", "l2norm", "vocab", "film"}; /* by lathe_layer_type */
    fprintf(out, "%-4s %-24s %-9s %-18s %12s %14s\n", "#", "layer", "type", "output (C x H x W)", "params", "MACs");
    for (int i = 0; i < g->nlayers; i++) {
        const layer *l = &g->layers[i];
        size_t params = 0;
        int idx[4] = {l->pw, l->pb, l->type == L_ATTENTION ? l->prm : -1, l->type == L_ATTENTION ? l->prv : -1};
        for (int k = 0; k < 4; k++)
            if (idx[k] >= 0) params += g->params[idx[k]].count;
        char shape[40];
        snprintf(shape, sizeof shape, "%d x %d x %d", l->c, l->h, l->w);
        fprintf(out, "%-4d %-24s %-9s %-18s %12zu %14.0f\n", i, l->name, names[l->type], shape, params, l->macs);
    }
    fprintf(out, "parameters: %zu learnable; forward: %.3f GFLOP per sample\n", lathe_graph_param_count(g),
            lathe_graph_flops(g) / 1e9);
}

int lathe_graph_detect_levels(const lathe_graph *g, int *strides, int max) {
    const layer *last = &g->layers[g->nlayers - 1], *in = &g->layers[0];
    if (last->type == L_VOCAB) last = &g->layers[last->in[0]]; /* an open-vocabulary head scores detect's anchors */
    if (last->type != L_DETECT) return 0;
    for (int k = 0; k < last->nin && k < max; k++) {
        const layer *b = &g->layers[last->in[k]];
        if (in->h % b->h || in->w % b->w || in->h / b->h != in->w / b->w) return -1;
        strides[k] = in->h / b->h;
    }
    return last->nin <= max ? last->nin : -1;
}

int lathe_graph_nlayers(const lathe_graph *g) { return g->nlayers; }

int lathe_graph_layer(const lathe_graph *g, int i, lathe_layer_view *v) {
    if (i < 0 || i >= g->nlayers) return lathe_fail(LATHE_EINVAL, "layer %d of %d", i, g->nlayers);
    const layer *l = &g->layers[i];
    const lathe_param *p[4] = {NULL, NULL, NULL, NULL};
    int idx[4] = {l->pw, l->pb, l->prm, l->prv};
    for (int k = 0; k < 4; k++) p[k] = idx[k] >= 0 ? &g->params[idx[k]] : NULL;
    memset(v, 0, sizeof *v);
    v->name = l->name, v->type = (lathe_layer_type)l->type, v->act = l->act, v->slope = l->slope;
    memcpy(v->in, l->in, sizeof v->in), v->nin = l->nin;
    v->c = l->c, v->h = l->h, v->w = l->w;
    v->k = l->cs.r, v->stride = l->cs.stride, v->pad = l->cs.pad;
    v->dilation = l->cs.dilation, v->groups = l->cs.groups, v->factor = l->factor, v->heads = l->heads, v->eps = l->eps;
    v->tokens = l->tokens;
    v->weight = p[0], v->bias = p[1];
    v->conv_act = l->type == L_CONV ? l->conv_act : -1;
    v->y_block = l->type == L_CONV ? l->y_block : 0;
    if (l->type == L_CONV && l->conv_act == LATHE_ACT_LEAKY) v->slope = l->slope;
    if (l->type == L_BN) v->running_mean = p[2], v->running_var = p[3];
    if (l->type == L_ATTENTION) v->out_weight = p[2], v->out_bias = p[3];
    if (l->type == L_VOCAB) v->log_scale = p[2];
    if (l->type == L_L2NORM) v->weight = NULL, v->log_scale = p[0];
    return 0;
}
