/* blocks.c - composite blocks expanded into primitive layers (blocks.h). A pure rewrite of the
 * cJSON layer list: each block emits named conv/bn/activation/pool/concat/add entries that graph.c
 * then builds like hand-written ones. The expansion is shape-blind: the channel counts it writes
 * come from the blocks' own arguments and model.width, never from the input's shape. Every
 * generated conv says fixed_width: 1, because its `out` is already scaled here. */
#include "blocks.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph.h"
#include "libcore/base/config.h"
#include "libcore/base/error.h"

enum {
    MAX_CHANNELS = 1 << 16,
    CSP_MAX = 6,          /* bottlenecks of a csp: its concat of cv1a, cv1b and each of them takes <= 8 inputs */
    REQUIRED = INT_MIN,   /* int_arg default of an argument that must be given */
};

typedef struct {
    const char *key;
    double value;
} arg;

typedef struct {
    char s[LATHE_GRAPH_NAME_MAX];
} lname;

typedef struct {
    cJSON *layers;       /* the expanded list being written */
    int pos;             /* graph index of the next emitted layer (0 is the model input) */
    double width, depth; /* model.width and model.depth */
    lname block;         /* the block (or layer) being expanded: prefix of generated names, and for messages */
    const char *in_name; /* the block's input: a layer name, or NULL and then ... */
    int in_at;           /* ... its graph index in the expanded list */
    int rc;              /* the first failure; once it is set every helper below does nothing */
} expansion;

/* Stands for the block's own input in a FROM list. */
static const char IN[] = "(block input)";

/* A NULL-terminated list of inputs, and a {NULL}-terminated list of numeric arguments. */
#define FROM(...) ((const char *const[]){__VA_ARGS__, NULL})
#define ARGS(...) ((const arg[]){__VA_ARGS__, {NULL, 0}})

static const cJSON *get(const cJSON *o, const char *key) { return cJSON_GetObjectItemCaseSensitive(o, key); }

__attribute__((format(printf, 2, 3))) static void fail(expansion *x, const char *fmt, ...) {
    if (x->rc) return;
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    x->rc = lathe_fail(LATHE_EINVAL, "layer %s: %s", x->block.s, msg);
}

static void out_of_memory(expansion *x) {
    if (!x->rc) x->rc = lathe_fail(LATHE_ENOMEM, "expanding layer %s", x->block.s);
}

/* A generated layer name; one longer than graph.c's layer names hold fails. */
__attribute__((format(printf, 2, 3))) static lname nm(expansion *x, const char *fmt, ...) {
    lname n;
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(n.s, sizeof n.s, fmt, ap);
    va_end(ap);
    if (len < 0 || (size_t)len >= sizeof n.s)
        fail(x, "generated name %s... is longer than %d characters", n.s, LATHE_GRAPH_NAME_MAX - 1);
    return n;
}

/* ---- arguments ---- */

/* An integer argument in [lo, hi]; def when absent (REQUIRED: absence fails too). */
static int int_arg(expansion *x, const cJSON *d, const char *key, int def, int lo, int hi) {
    const cJSON *v = get(d, key);
    if (!v && def != REQUIRED) return def;
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < lo || v->valuedouble > hi) {
        if (cJSON_IsNumber(v)) fail(x, "%s must be an integer in [%d, %d], not %g", key, lo, hi, v->valuedouble);
        else fail(x, "%s must be an integer in [%d, %d]", key, lo, hi);
        return lo;
    }
    return (int)v->valuedouble;
}

/* A 0/1 argument; YAML's true and false are accepted too. */
static int flag_arg(expansion *x, const cJSON *d, const char *key, int def) {
    const cJSON *v = get(d, key);
    return cJSON_IsBool(v) ? cJSON_IsTrue(v) : int_arg(x, d, key, def, 0, 1);
}

/* Refuses keys a block does not read, so that a typo (`stide: 2`) is not silently ignored. */
static void check_keys(expansion *x, const cJSON *d, const char *type, const char *keys) {
    const cJSON *k;
    cJSON_ArrayForEach(k, d) {
        if (!lathe_word_listed("type name from", k->string) && !lathe_word_listed(keys, k->string))
            fail(x, "a %s block takes no argument %s (it takes %s)", type, k->string, keys);
    }
}

/* Channel count c scaled by model.width, rounded up to a multiple of 8 and at least 8 (as
 * Ultralytics' make_divisible); with fixed_width only rounded. The 1e-9 keeps 80 x 0.1 at 8. */
static int channels(expansion *x, double c, int fixed) {
    double v = fixed ? fmax(1, round(c)) : fmax(8, 8 * ceil(c * x->width / 8 - 1e-9));
    if (v > MAX_CHANNELS) {
        fail(x, "%.0f channels after width scaling is more than %d", v, MAX_CHANNELS);
        return 1;
    }
    return (int)v;
}

/* ---- emitting primitive layers ---- */

static int add_ref(const expansion *x, cJSON *list, const char *ref) {
    cJSON *r = ref != IN      ? cJSON_CreateString(ref)
               : x->in_name ? cJSON_CreateString(x->in_name)
                            : cJSON_CreateNumber(x->in_at - x->pos); /* relative to the layer being emitted */
    if (r && cJSON_AddItemToArray(list, r)) return 1;
    cJSON_Delete(r);
    return 0;
}

/* Appends the layer `type` named `name` reading `from` (NULL: the previous layer) with `args`
 * (NULL: none). */
static void emit(expansion *x, const char *type, const char *name, const char *const *from, const arg *args) {
    if (x->rc) return;
    cJSON *l = cJSON_CreateObject();
    if (!l || !cJSON_AddItemToArray(x->layers, l)) {
        cJSON_Delete(l);
        out_of_memory(x);
        return;
    }
    int ok = cJSON_AddStringToObject(l, "type", type) && cJSON_AddStringToObject(l, "name", name);
    for (const arg *a = args; ok && a && a->key; a++) ok = cJSON_AddNumberToObject(l, a->key, a->value) != NULL;
    cJSON *list = ok && from ? cJSON_AddArrayToObject(l, "from") : NULL;
    ok = ok && (!from || list);
    for (; ok && from && *from; from++) ok = add_ref(x, list, *from);
    if (!ok) out_of_memory(x);
    x->pos++;
}

/* Ultralytics' Conv: conv without bias, batch norm (eps 1e-3, momentum 0.03 as Ultralytics sets
 * them), SiLU. Parameters under `prefix`; the SiLU, the output, is named `out`. */
static void cbs(expansion *x, const char *prefix, const char *out, const char *const *from, int c, int k, int stride,
                int groups) {
    emit(x, "conv", nm(x, "%s.conv", prefix).s, from,
         ARGS({"out", c}, {"k", k}, {"stride", stride}, {"groups", groups}, {"bias", 0}, {"fixed_width", 1}));
    emit(x, "bn", nm(x, "%s.bn", prefix).s, NULL, ARGS({"eps", 1e-3}, {"momentum", 0.03}));
    emit(x, "silu", out, NULL, NULL);
}

/* ---- the blocks ---- */

static void cbs_block(expansion *x, const cJSON *d) {
    int fixed = flag_arg(x, d, "fixed_width", 0), out = int_arg(x, d, "out", REQUIRED, 1, MAX_CHANNELS);
    int k = int_arg(x, d, "k", 1, 1, 63), stride = int_arg(x, d, "stride", 1, 1, 64);
    int groups = int_arg(x, d, "groups", 1, -1, MAX_CHANNELS);
    if (groups == 0) fail(x, "groups must be -1 (depthwise) or at least 1");
    cbs(x, x->block.s, x->block.s, FROM(IN), channels(x, out, fixed), k, stride, groups);
}

/* YOLOv8's C2f. Its cv1 (one 1x1 conv to 2c, split in halves) is written as two 1x1 convs cv1a and
 * cv1b to c each, since the graph has no split: the same parameters and outputs, under two names. */
static void csp_block(expansion *x, const cJSON *d) {
    int fixed = flag_arg(x, d, "fixed_width", 0), out = int_arg(x, d, "out", REQUIRED, 1, MAX_CHANNELS);
    int n = int_arg(x, d, "n", 1, 1, 64), shortcut = flag_arg(x, d, "shortcut", 1);
    const cJSON *ev = get(d, "e");
    double e = !ev ? 0.5 : cJSON_IsNumber(ev) ? ev->valuedouble : -1;
    if (!(e > 0 && e <= 1)) fail(x, "e must be a number in (0, 1]");
    int nb = (int)fmax(1, lround(n * x->depth));
    if (nb > CSP_MAX)
        fail(x, "%d bottlenecks (n x model.depth) is more than %d, as its concat takes 8 inputs", nb, CSP_MAX);
    if (x->rc) return;
    const char *p = x->block.s;
    int c2 = channels(x, out, fixed), c = channels(x, out * e, fixed);
    lname cv1a = nm(x, "%s.cv1a", p), cv1b = nm(x, "%s.cv1b", p), outs[CSP_MAX];
    cbs(x, cv1a.s, cv1a.s, FROM(IN), c, 1, 1, 1);
    cbs(x, cv1b.s, cv1b.s, FROM(IN), c, 1, 1, 1);
    const char *cat[CSP_MAX + 3] = {cv1a.s, cv1b.s};
    for (int i = 0; i < nb; i++) { /* Bottleneck(c, c, shortcut, k=(3, 3), e=1.0) */
        lname m = nm(x, "%s.m.%d", p, i), m1 = nm(x, "%s.cv1", m.s), m2 = nm(x, "%s.cv2", m.s);
        const char *in = i ? outs[i - 1].s : cv1b.s;
        cbs(x, m1.s, m1.s, FROM(in), c, 3, 1, 1);
        cbs(x, m2.s, m2.s, NULL, c, 3, 1, 1);
        if (shortcut) emit(x, "add", m.s, FROM(m2.s, in), NULL);
        outs[i] = shortcut ? m : m2;
        cat[2 + i] = outs[i].s;
    }
    emit(x, "concat", nm(x, "%s.cat", p).s, cat, NULL);
    cbs(x, nm(x, "%s.cv2", p).s, p, NULL, c2, 1, 1, 1);
}

/* YOLOv8's SPPF. Its hidden width is c1 // 2; shape-blind, this uses out // 2 instead, the same in
 * every YOLOv8 model (SPPF(c, c)). */
static void sppf_block(expansion *x, const cJSON *d) {
    int fixed = flag_arg(x, d, "fixed_width", 0), out = int_arg(x, d, "out", REQUIRED, 1, MAX_CHANNELS);
    int k = int_arg(x, d, "k", 5, 1, 63);
    if (k % 2 == 0) fail(x, "k must be odd, so that the stride-1 pools keep the size");
    if (x->rc) return;
    const char *p = x->block.s;
    int c2 = channels(x, out, fixed);
    lname cv1 = nm(x, "%s.cv1", p), m[3];
    cbs(x, cv1.s, cv1.s, FROM(IN), c2 > 1 ? c2 / 2 : 1, 1, 1, 1);
    for (int i = 0; i < 3; i++) {
        m[i] = nm(x, "%s.m.%d", p, i);
        emit(x, "maxpool", m[i].s, NULL, ARGS({"k", k}, {"stride", 1}, {"pad", k / 2}));
    }
    emit(x, "concat", nm(x, "%s.cat", p).s, FROM(cv1.s, m[0].s, m[1].s, m[2].s), NULL);
    cbs(x, nm(x, "%s.cv2", p).s, p, NULL, c2, 1, 1, 1);
}

/* torchvision's conv (no bias) and BatchNorm2d (eps 1e-5, momentum 0.1), named <prefix>.<conv>
 * and <prefix>.<bn> (just <conv>, <bn> without prefix). */
static void conv_bn(expansion *x, const char *prefix, const char *conv, const char *bn, const char *const *from, int c,
                    int k, int stride) {
    emit(x, "conv", prefix ? nm(x, "%s.%s", prefix, conv).s : conv, from,
         ARGS({"out", c}, {"k", k}, {"stride", stride}, {"bias", 0}, {"fixed_width", 1}));
    emit(x, "bn", prefix ? nm(x, "%s.%s", prefix, bn).s : bn, NULL, ARGS({"eps", 1e-5}, {"momentum", 0.1}));
}

/* One BasicBlock, or Bottleneck (expansion 4, the stride on its 3x3 conv2 as torchvision's v1.5),
 * named p, reading `in` (inplanes channels); its final ReLU, the output, is named `out`. */
static void resnet_unit(expansion *x, const char *p, const char *in, int inplanes, int planes, int stride,
                        int bottleneck, const char *out) {
    int outc = bottleneck ? 4 * planes : planes;
    if (bottleneck) {
        conv_bn(x, p, "conv1", "bn1", FROM(in), planes, 1, 1);
        emit(x, "relu", nm(x, "%s.relu1", p).s, NULL, NULL);
        conv_bn(x, p, "conv2", "bn2", NULL, planes, 3, stride);
        emit(x, "relu", nm(x, "%s.relu2", p).s, NULL, NULL);
        conv_bn(x, p, "conv3", "bn3", NULL, outc, 1, 1);
    } else {
        conv_bn(x, p, "conv1", "bn1", FROM(in), planes, 3, stride);
        emit(x, "relu", nm(x, "%s.relu1", p).s, NULL, NULL);
        conv_bn(x, p, "conv2", "bn2", NULL, planes, 3, 1);
    }
    lname last = nm(x, "%s.%s", p, bottleneck ? "bn3" : "bn2"), down = nm(x, "%s.downsample.1", p);
    int project = stride != 1 || inplanes != outc;
    if (project) conv_bn(x, p, "downsample.0", "downsample.1", FROM(in), outc, 1, stride);
    emit(x, "add", nm(x, "%s.add", p).s, FROM(last.s, project ? down.s : in), NULL);
    emit(x, "relu", out, NULL, NULL);
}

/* torchvision's ResNet without avgpool and fc. Its names are top-level (conv1, layer1.0.conv1, ...)
 * as in torchvision's state_dict, whatever the block's name. */
static void resnet_block(expansion *x, const cJSON *d) {
    static const struct {
        int depth, bottleneck, units[4];
    } table[] = {{18, 0, {2, 2, 2, 2}}, {34, 0, {3, 4, 6, 3}}, {50, 1, {3, 4, 6, 3}}};
    int depth = int_arg(x, d, "depth", REQUIRED, 1, 1000), t = 0;
    while (t < 3 && table[t].depth != depth) t++;
    if (t == 3) fail(x, "resnet depth must be 18, 34 or 50, not %d", depth);
    if (x->rc) return;
    conv_bn(x, NULL, "conv1", "bn1", FROM(IN), 64, 7, 2);
    emit(x, "relu", "relu", NULL, NULL);
    emit(x, "maxpool", "maxpool", NULL, ARGS({"k", 3}, {"stride", 2}, {"pad", 1}));
    lname prev = nm(x, "maxpool");
    int inplanes = 64;
    for (int s = 0; s < 4; s++) {
        int planes = 64 << s, units = table[t].units[s];
        for (int b = 0; b < units; b++) { /* the last unit's output is the stage's: layer1 .. layer4 */
            lname unit = nm(x, "layer%d.%d", s + 1, b), out = b < units - 1 ? unit : nm(x, "layer%d", s + 1);
            resnet_unit(x, unit.s, prev.s, inplanes, planes, b == 0 && s > 0 ? 2 : 1, table[t].bottleneck, out.s);
            inplanes = table[t].bottleneck ? 4 * planes : planes;
            prev = out;
        }
    }
}

typedef struct {
    const char *type, *keys; /* keys: the arguments it reads besides type, name and from */
    void (*expand)(expansion *x, const cJSON *d);
} block_kind;

static const block_kind kinds[] = {
    {"cbs", "out k stride groups fixed_width", cbs_block},
    {"csp", "out n shortcut e fixed_width", csp_block},
    {"sppf", "out k fixed_width", sppf_block},
    {"resnet", "depth", resnet_block},
};

static const block_kind *kind_of(const cJSON *d) {
    const cJSON *t = get(d, "type");
    for (size_t i = 0; cJSON_IsString(t) && i < sizeof kinds / sizeof kinds[0]; i++)
        if (!strcmp(t->valuestring, kinds[i].type)) return &kinds[i];
    return NULL;
}

/* ---- the layer list ---- */

/* Graph layers a primitive entry becomes: its repeat times model.depth, counted as graph.c does. */
static int copies(const cJSON *d, double depth) {
    const cJSON *r = get(d, "repeat");
    int rep = cJSON_IsNumber(r) ? lathe_json_int(r->valuedouble) : 1;
    rep = rep > LATHE_MODEL_REPEAT_MAX ? LATHE_MODEL_REPEAT_MAX : rep; /* graph.c refuses more */
    return rep > 1 ? (int)fmax(1, lround(rep * depth)) : 1;
}

/* The graph index (before expansion) that a numeric `from` v of the layer at index o means (graph.c:
 * -k is k layers back, k >= 0 the k-th layer), or -1 when that is not an earlier layer. */
static int old_target(double v, int o) {
    if (!(fabs(v) < o + 1.0)) return -1;
    int t = v < 0 ? o + (int)v : (int)v + 1;
    return t >= 0 && t < o ? t : -1;
}

/* Rewrites a numeric `from` of the primitive layer at old index o, new index p, so that it reaches
 * the same layer after expansion (newpos: new index of each old one). */
static void remap(expansion *x, cJSON *ref, int o, int p, const int *newpos) {
    if (!cJSON_IsNumber(ref)) return;
    int t = old_target(ref->valuedouble, o);
    if (t < 0) fail(x, "input %g is not an earlier layer", ref->valuedouble);
    else cJSON_SetNumberHelper(ref, ref->valuedouble < 0 ? newpos[t] - p : newpos[t] - 1);
}

static void copy_layer(expansion *x, const cJSON *d, int o, const int *newpos) {
    cJSON *c = cJSON_Duplicate(d, 1), *ref;
    if (!c || !cJSON_AddItemToArray(x->layers, c)) {
        cJSON_Delete(c);
        out_of_memory(x);
        return;
    }
    cJSON *from = cJSON_GetObjectItemCaseSensitive(c, "from");
    if (cJSON_IsArray(from)) cJSON_ArrayForEach(ref, from) remap(x, ref, o, x->pos, newpos);
    else remap(x, from, o, x->pos, newpos);
    x->pos += copies(d, x->depth);
}

/* The block's one input: a name, or a number resolved to its expanded index; by default the
 * previous layer. */
static void block_input(expansion *x, const cJSON *from, int o, const int *newpos) {
    x->in_name = NULL, x->in_at = x->pos - 1;
    if (cJSON_IsArray(from)) {
        if (cJSON_GetArraySize(from) != 1) {
            fail(x, "a block takes one input (concat several first)");
            return;
        }
        from = from->child;
    }
    int t = cJSON_IsNumber(from) ? old_target(from->valuedouble, o) : -1;
    if (cJSON_IsString(from)) x->in_name = from->valuestring;
    else if (t >= 0) x->in_at = newpos[t];
    else if (from) fail(x, "from must be an earlier layer's name or index");
}

static void expand_block(expansion *x, const block_kind *k, const cJSON *d, int o, const int *newpos) {
    const cJSON *name = get(d, "name");
    if (name && !cJSON_IsString(name)) fail(x, "name must be a string");
    check_keys(x, d, k->type, k->keys);
    block_input(x, get(d, "from"), o, newpos);
    k->expand(x, d);
}

/* A layer's name for messages and as a block's prefix: its `name`, or graph.c's default
 * layers.<i> for the position of its first layer (no primitive layer can hold that name then). */
static void set_label(expansion *x, const cJSON *d) {
    const cJSON *name = get(d, "name");
    if (cJSON_IsString(name)) snprintf(x->block.s, sizeof x->block.s, "%s", name->valuestring);
    else snprintf(x->block.s, sizeof x->block.s, "layers.%d", x->pos - 1);
}

static void expand_list(expansion *x, const cJSON *layers, int *newpos) {
    const cJSON *d;
    int o = 1;
    newpos[0] = 0;
    cJSON_ArrayForEach(d, layers) {
        set_label(x, d);
        const block_kind *k = kind_of(d);
        if (k) {
            expand_block(x, k, d, o, newpos);
            newpos[o++] = x->pos - 1; /* the block's output is its last layer */
        } else {
            int p = x->pos, n = copies(d, x->depth);
            copy_layer(x, d, o, newpos);
            for (int r = 0; r < n; r++) newpos[o++] = p + r;
        }
        if (x->rc) return;
    }
}

int lathe_blocks_expand(const cJSON *model, cJSON **out) {
    *out = NULL;
    const cJSON *layers = get(model, "layers"), *d;
    /* width and depth read as graph.c reads them (as floats), so both count repeats alike */
    const cJSON *w = get(model, "width"), *dp = get(model, "depth");
    double wd = cJSON_IsNumber(w) ? w->valuedouble : 1, dd = cJSON_IsNumber(dp) ? dp->valuedouble : 1;
    if (!cJSON_IsArray(layers) || !(wd > 0 && wd <= LATHE_MODEL_SCALE_MAX) || !(dd > 0 && dd <= LATHE_MODEL_SCALE_MAX))
        return 0; /* graph.c refuses them */
    expansion x = {.width = (float)wd, .depth = (float)dd, .pos = 1};
    int old_layers = 1, blocks = 0;
    cJSON_ArrayForEach(d, layers) {
        blocks += kind_of(d) != NULL;
        old_layers += kind_of(d) ? 1 : copies(d, x.depth);
    }
    if (!blocks) return 0;
    int *newpos = malloc((size_t)old_layers * sizeof *newpos);
    x.layers = cJSON_CreateArray();
    if (!newpos || !x.layers) out_of_memory(&x);
    else expand_list(&x, layers, newpos);
    free(newpos);
    if (!x.rc) {
        *out = cJSON_Duplicate(model, 1);
        if (*out && cJSON_ReplaceItemInObjectCaseSensitive(*out, "layers", x.layers)) return 0;
        out_of_memory(&x);
    }
    cJSON_Delete(x.layers);
    cJSON_Delete(*out);
    *out = NULL;
    return x.rc;
}
