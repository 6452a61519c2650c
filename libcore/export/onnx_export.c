/* onnx_export.c - a lathe graph as an ONNX model (export.h): one walk over the layers, each
 * becoming standard opset-17 operators, then the detector's decoding and NMS. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "export.h"
#include "fold_internal.h"
#include "kernels/nn.h"
#include "libcore/base/error.h"
#include "libcore/det/decode.h"
#include "onnx_builder.h"

/* One layer's output in the ONNX graph: its value name and rank (4: N C H W; 2: N K after a
 * linear layer; 3: N A V for the detect layer). */
typedef struct {
    const char *name;
    int rank;
} value;

typedef struct {
    onnx_builder *b;
    const lathe_graph *g;
    const lathe_onnx_opts *o;
    lathe_fold f;          /* every layer's view, and which BNs fold into their convs */
    lathe_layer_view *v;   /* = f.v */
    value *val;            /* every layer's output */
} walk;

static const char *op1(walk *w, const char *op, const char *a) { return onnx_op(w->b, op, &a, 1); }
static const char *op2(walk *w, const char *op, const char *a, const char *c) {
    const char *in[2] = {a, c};
    return onnx_op(w->b, op, in, 2);
}

static const char *reshape(walk *w, const char *x, const int64_t *shape, int rank) {
    return op2(w, "Reshape", x, onnx_ints(w->b, shape, rank));
}

static const char *transpose(walk *w, const char *x, const int64_t *perm, int rank) {
    const char *out = onnx_name(w->b, "Transpose");
    onnx_node *n = onnx_node_add(w->b, "Transpose", NULL, &x, 1, &out, 1);
    onnx_attr_ints(w->b, n, "perm", perm, rank);
    return out;
}

/* A layer's input as N C H W (a linear layer's N K becomes N K 1 1). */
static const char *as4d(walk *w, int i) {
    const value *x = &w->val[i];
    if (x->rank == 4) return x->name;
    const int64_t shape[4] = {0, w->v[i].c, w->v[i].h, w->v[i].w};
    return reshape(w, x->name, shape, 4);
}

static const char *weight(walk *w, const lathe_param *p, const float *data) {
    int64_t dims[4];
    for (int k = 0; k < p->rank; k++) dims[k] = p->shape[k];
    return onnx_const_f32(w->b, p->name, dims, p->rank, data ? data : p->data);
}

static const char *activation(walk *w, const lathe_layer_view *l, const char *x);

/* Conv, with the batch norm that alone reads it folded in (fold_internal.h), and its fused
 * activation (act:) after it. */
static int conv(walk *w, int i) {
    const lathe_layer_view *l = &w->v[i];
    float *wt, *bias;
    int rc = lathe_fold_conv(&w->f, i, &wt, &bias);
    if (rc) return rc;
    int64_t bdims[1] = {l->weight->shape[0]};
    const char *in[3] = {as4d(w, l->in[0]), weight(w, l->weight, wt), onnx_const_f32(w->b, l->name, bdims, 1, bias)};
    free(wt), free(bias);
    const char *out = onnx_name(w->b, l->name);
    onnx_node *n = onnx_node_add(w->b, "Conv", l->name, in, 3, &out, 1);
    int64_t kk[2] = {l->k, l->k}, st[2] = {l->stride, l->stride}, dl[2] = {l->dilation, l->dilation};
    int64_t pads[4] = {l->pad, l->pad, l->pad, l->pad};
    onnx_attr_ints(w->b, n, "kernel_shape", kk, 2);
    onnx_attr_ints(w->b, n, "strides", st, 2);
    onnx_attr_ints(w->b, n, "pads", pads, 4);
    onnx_attr_ints(w->b, n, "dilations", dl, 2);
    onnx_attr_int(w->b, n, "group", l->groups);
    if (l->conv_act >= 0) {
        lathe_layer_view act = *l;
        act.act = l->conv_act;
        out = activation(w, &act, out);
    }
    w->val[i] = (value){out, 4};
    if (w->f.bn_of[i] >= 0) w->val[w->f.bn_of[i]] = w->val[i];
    return 0;
}

static const char *activation(walk *w, const lathe_layer_view *l, const char *x) {
    switch (l->act) {
    case LATHE_ACT_RELU: return op1(w, "Relu", x);
    case LATHE_ACT_LEAKY: {
        const char *out = onnx_name(w->b, "LeakyRelu");
        onnx_node *n = onnx_node_add(w->b, "LeakyRelu", NULL, &x, 1, &out, 1);
        onnx_attr_float(w->b, n, "alpha", l->slope);
        return out;
    }
    case LATHE_ACT_SILU: return op2(w, "Mul", x, op1(w, "Sigmoid", x)); /* no SiLU operator before opset 24 */
    case LATHE_ACT_GELU: { /* 0.5 x (1 + erf(x / sqrt 2)): Gelu arrives in opset 20 */
        const char *e = op1(w, "Erf", op2(w, "Div", x, onnx_scalar(w->b, (float)sqrt(2.0))));
        return op2(w, "Mul", op2(w, "Mul", x, op2(w, "Add", e, onnx_scalar(w->b, 1))), onnx_scalar(w->b, 0.5f));
    }
    default: return op1(w, "Sigmoid", x);
    }
}

static const char *pool(walk *w, const lathe_layer_view *l, const char *op) {
    const char *x = as4d(w, l->in[0]), *out = onnx_name(w->b, l->name);
    onnx_node *n = onnx_node_add(w->b, op, l->name, &x, 1, &out, 1);
    int64_t kk[2] = {l->k, l->k}, st[2] = {l->stride, l->stride}, pads[4] = {l->pad, l->pad, l->pad, l->pad};
    onnx_attr_ints(w->b, n, "kernel_shape", kk, 2);
    onnx_attr_ints(w->b, n, "strides", st, 2);
    onnx_attr_ints(w->b, n, "pads", pads, 4);
    if (!strcmp(op, "AveragePool")) onnx_attr_int(w->b, n, "count_include_pad", 1); /* lathe divides by k x k */
    return out;
}

/* Multi-head self-attention over the H x W positions (tokens) with C features, as
 * lathe_k_mha_fwd: Q K V = x W_in^T + b_in, per head softmax(Q K^T / sqrt(d_h)) V, then W_out. */
static const char *attention(walk *w, const lathe_layer_view *l) {
    int D = l->c, L = l->h * l->w, H = l->heads, dh = D / H;
    const int64_t tokens[3] = {0, D, L}, split_heads[4] = {0, L, H, dh}, merged[3] = {0, L, D};
    const int64_t p021[3] = {0, 2, 1}, p0213[4] = {0, 2, 1, 3}, p0231[4] = {0, 2, 3, 1};
    const char *x = transpose(w, reshape(w, as4d(w, l->in[0]), tokens, 3), p021, 3); /* N L D */
    int64_t tdims[2] = {l->weight->shape[1], l->weight->shape[0]};
    float *wt = malloc(sizeof(float) * l->weight->count), *wo = malloc(sizeof(float) * l->out_weight->count);
    if (!wt || !wo) {
        free(wt), free(wo);
        return NULL;
    }
    for (int r = 0; r < (int)tdims[1]; r++) /* MatMul takes W^T */
        for (int c = 0; c < (int)tdims[0]; c++) wt[(size_t)c * tdims[1] + r] = l->weight->data[(size_t)r * tdims[0] + c];
    for (int r = 0; r < D; r++)
        for (int c = 0; c < D; c++) wo[(size_t)c * D + r] = l->out_weight->data[(size_t)r * D + c];
    int64_t odims[2] = {D, D};
    const char *qkv = op2(w, "Add", op2(w, "MatMul", x, onnx_const_f32(w->b, "attn_in_t", tdims, 2, wt)),
                          weight(w, l->bias, NULL));
    const char *parts[3] = {onnx_name(w->b, "q"), onnx_name(w->b, "k"), onnx_name(w->b, "v")};
    int64_t sizes[3] = {D, D, D};
    const char *split_in[2] = {qkv, onnx_ints(w->b, sizes, 3)};
    onnx_node *sp = onnx_node_add(w->b, "Split", NULL, split_in, 2, parts, 3);
    onnx_attr_int(w->b, sp, "axis", 2);
    const char *q = transpose(w, reshape(w, parts[0], split_heads, 4), p0213, 4); /* N H L dh */
    const char *kt = transpose(w, reshape(w, parts[1], split_heads, 4), p0231, 4); /* N H dh L */
    const char *v = transpose(w, reshape(w, parts[2], split_heads, 4), p0213, 4);
    const char *s = op2(w, "Mul", op2(w, "MatMul", q, kt), onnx_scalar(w->b, (float)(1 / sqrt((double)dh))));
    const char *out = onnx_name(w->b, "Softmax");
    onnx_node *sm = onnx_node_add(w->b, "Softmax", NULL, &s, 1, &out, 1);
    onnx_attr_int(w->b, sm, "axis", -1);
    const char *c = reshape(w, transpose(w, op2(w, "MatMul", out, v), p0213, 4), merged, 3); /* N L D */
    const char *y = op2(w, "Add", op2(w, "MatMul", c, onnx_const_f32(w->b, "attn_out_t", odims, 2, wo)),
                        weight(w, l->out_bias, NULL));
    free(wt), free(wo);
    const int64_t back[4] = {0, D, l->h, l->w};
    return reshape(w, transpose(w, y, p021, 3), back, 4);
}

/* Layer norm over everything of a sample (lathe's layernorm): LayerNormalization from axis 1 with
 * gamma and beta shaped like the sample. */
static const char *layernorm(walk *w, int i) {
    const lathe_layer_view *l = &w->v[i];
    const value *x = &w->val[l->in[0]];
    int64_t dims[3] = {l->c, l->h, l->w}, flat[1] = {l->c};
    int rank = x->rank == 2 ? 1 : 3;
    const int64_t *d = rank == 1 ? flat : dims;
    const char *in[3] = {x->name, onnx_const_f32(w->b, l->weight->name, d, rank, l->weight->data),
                         onnx_const_f32(w->b, l->bias->name, d, rank, l->bias->data)};
    const char *out = onnx_name(w->b, l->name);
    onnx_node *n = onnx_node_add(w->b, "LayerNormalization", l->name, in, 3, &out, 1);
    onnx_attr_int(w->b, n, "axis", 1);
    onnx_attr_float(w->b, n, "epsilon", l->eps);
    return out;
}

/* The detect layer: each level's maps (N, V, h, w) as rows of anchors, concatenated: (N, A, V). */
static const char *detect_rows(walk *w, const lathe_layer_view *l) {
    const char *lv[8];
    for (int k = 0; k < l->nin; k++) {
        const int64_t shape[3] = {0, w->v[l->in[k]].c, -1};
        lv[k] = reshape(w, as4d(w, l->in[k]), shape, 3);
    }
    const char *cat = lv[0];
    if (l->nin > 1) {
        cat = onnx_name(w->b, "Concat");
        onnx_node *n = onnx_node_add(w->b, "Concat", NULL, lv, l->nin, &cat, 1);
        onnx_attr_int(w->b, n, "axis", 2);
    }
    const int64_t perm[3] = {0, 2, 1};
    return transpose(w, cat, perm, 3);
}

static const char *slice(walk *w, const char *x, int64_t start, int64_t end, int64_t axis);

/* An open-vocabulary head over detect's rows (N, A, box + E): the box values, then each anchor's
 * normalized embedding against the text rows, e^s cos + b, with the vocabulary the run was trained
 * with baked in as a constant (E x K). */
static const char *vocab_rows(walk *w, const lathe_layer_view *l) {
    const lathe_layer_view *a = &w->v[l->in[0]];
    int box = l->w - l->weight->shape[0], e = l->weight->shape[1], k = l->weight->shape[0];
    const char *x = w->val[l->in[0]].name;
    float *tt = malloc(sizeof(float) * (size_t)e * k);
    if (!tt) return NULL;
    for (int c = 0; c < k; c++)
        for (int j = 0; j < e; j++) tt[(size_t)j * k + c] = l->weight->data[(size_t)c * e + j];
    int64_t td[2] = {e, k};
    const char *text = onnx_const_f32(w->b, "vocabulary", td, 2, tt);
    free(tt);
    const char *emb = slice(w, x, box, a->w, 2);
    const char *norm = onnx_name(w->b, "ReduceL2");
    onnx_node *r = onnx_node_add(w->b, "ReduceL2", NULL, &emb, 1, &norm, 1);
    const int64_t axis2[1] = {2};
    onnx_attr_ints(w->b, r, "axes", axis2, 1);
    onnx_attr_int(w->b, r, "keepdims", 1);
    const char *u = op2(w, "Div", emb, op2(w, "Max", norm, onnx_scalar(w->b, 1e-12f)));
    const char *logits = op2(w, "MatMul", u, text);
    logits = op2(w, "Add", op2(w, "Mul", logits, onnx_scalar(w->b, expf(l->log_scale->data[0]))),
                 onnx_scalar(w->b, l->bias->data[0]));
    const char *parts[2] = {slice(w, x, 0, box, 2), logits}, *y = onnx_name(w->b, l->name);
    onnx_node *cat = onnx_node_add(w->b, "Concat", l->name, parts, 2, &y, 1);
    onnx_attr_int(w->b, cat, "axis", 2);
    return y;
}

static int layer(walk *w, int i) {
    const lathe_layer_view *l = &w->v[i];
    const char *x = l->nin ? w->val[l->in[0]].name : NULL, *y = NULL;
    int rank = l->nin ? w->val[l->in[0]].rank : 4;
    switch (l->type) {
    case LATHE_LAYER_CONV: return conv(w, i);
    case LATHE_LAYER_BN: {
        if (w->f.folded[i]) return 0;
        const char *in[5] = {as4d(w, l->in[0]), weight(w, l->weight, NULL), weight(w, l->bias, NULL),
                             weight(w, l->running_mean, NULL), weight(w, l->running_var, NULL)};
        y = onnx_name(w->b, l->name);
        onnx_node *n = onnx_node_add(w->b, "BatchNormalization", l->name, in, 5, &y, 1);
        onnx_attr_float(w->b, n, "epsilon", l->eps);
        rank = 4;
        break;
    }
    case LATHE_LAYER_ACT: y = activation(w, l, x); break;
    case LATHE_LAYER_MAXPOOL: y = pool(w, l, "MaxPool"), rank = 4; break;
    case LATHE_LAYER_AVGPOOL: y = pool(w, l, "AveragePool"), rank = 4; break;
    case LATHE_LAYER_GAP: y = op1(w, "GlobalAveragePool", as4d(w, l->in[0])), rank = 4; break;
    case LATHE_LAYER_UPSAMPLE: { /* nearest: output pixel (i, j) reads (i / f, j / f) */
        const float scales[4] = {1, 1, (float)l->factor, (float)l->factor};
        int64_t four[1] = {4};
        const char *in[3] = {as4d(w, l->in[0]), "", onnx_const_f32(w->b, "scales", four, 1, scales)};
        y = onnx_name(w->b, l->name);
        onnx_node *n = onnx_node_add(w->b, "Resize", l->name, in, 3, &y, 1);
        onnx_attr_string(w->b, n, "mode", "nearest");
        onnx_attr_string(w->b, n, "coordinate_transformation_mode", "asymmetric");
        onnx_attr_string(w->b, n, "nearest_mode", "floor");
        rank = 4;
        break;
    }
    case LATHE_LAYER_CONCAT: {
        if (l->tokens) return lathe_fail(LATHE_EUNSUPPORTED, "layer %s: concat with tokens has no ONNX form yet", l->name);
        const char *in[8];
        for (int k = 0; k < l->nin; k++) in[k] = as4d(w, l->in[k]);
        y = onnx_name(w->b, l->name);
        onnx_node *n = onnx_node_add(w->b, "Concat", l->name, in, l->nin, &y, 1);
        onnx_attr_int(w->b, n, "axis", 1);
        rank = 4;
        break;
    }
    case LATHE_LAYER_ADD: {
        int same = 1;
        for (int k = 1; k < l->nin; k++) same &= w->val[l->in[k]].rank == rank;
        y = same ? x : as4d(w, l->in[0]);
        for (int k = 1; k < l->nin; k++) y = op2(w, "Add", y, same ? w->val[l->in[k]].name : as4d(w, l->in[k]));
        rank = same ? rank : 4;
        break;
    }
    case LATHE_LAYER_LINEAR: {
        const char *flat = x;
        if (rank != 2) {
            flat = onnx_name(w->b, "Flatten");
            onnx_node *f = onnx_node_add(w->b, "Flatten", NULL, &x, 1, &flat, 1);
            onnx_attr_int(w->b, f, "axis", 1);
        }
        const char *in[3] = {flat, weight(w, l->weight, NULL), l->bias ? weight(w, l->bias, NULL) : ""};
        y = onnx_name(w->b, l->name);
        onnx_node *n = onnx_node_add(w->b, "Gemm", l->name, in, l->bias ? 3 : 2, &y, 1);
        onnx_attr_int(w->b, n, "transB", 1);
        rank = 2;
        break;
    }
    case LATHE_LAYER_DROPOUT: y = x; break; /* inference: the identity */
    case LATHE_LAYER_LAYERNORM: y = layernorm(w, i); break;
    case LATHE_LAYER_ATTENTION:
        if (!(y = attention(w, l))) return lathe_fail(LATHE_ENOMEM, "weights of %s", l->name);
        rank = 4;
        break;
    case LATHE_LAYER_DETECT: y = detect_rows(w, l), rank = 3; break;
    case LATHE_LAYER_VOCAB:
        if (!(y = vocab_rows(w, l))) return lathe_fail(LATHE_ENOMEM, "vocabulary of %s", l->name);
        rank = 3;
        break;
    default: return lathe_fail(LATHE_EUNSUPPORTED, "layer %s (type %d) has no ONNX form", l->name, (int)l->type);
    }
    w->val[i] = (value){y, rank};
    return 0;
}

/* The graph input, and the normalized float NCHW value the first layer reads. uint8 input is RGB
 * whatever the model's channels: a one-channel model gets luma (0.299 R + 0.587 G + 0.114 B, as
 * lathe's loader converts) inside the graph. */
static const char *input(walk *w, int batch) {
    const lathe_layer_view *in = &w->v[0];
    int64_t n = batch > 0 ? batch : -1;
    if (!w->o->input_uint8) {
        int64_t dims[4] = {n, in->c, in->h, in->w};
        onnx_graph_input(w->b, "images", ONNX_FLOAT, dims, 4);
        return "images";
    }
    int64_t dims[4] = {n, in->h, in->w, 3};
    onnx_graph_input(w->b, "images", ONNX_UINT8, dims, 4);
    const char *img = "images", *f = onnx_name(w->b, "Cast");
    onnx_node *cast = onnx_node_add(w->b, "Cast", NULL, &img, 1, &f, 1);
    onnx_attr_int(w->b, cast, "to", ONNX_FLOAT);
    const int64_t nchw[4] = {0, 3, 1, 2};
    const char *x = transpose(w, f, nchw, 4);
    if (in->c == 1) {
        const float luma[3] = {0.299f, 0.587f, 0.114f};
        const int64_t ldims[4] = {1, 3, 1, 1};
        x = op2(w, "Conv", x, onnx_const_f32(w->b, "luma", ldims, 4, luma));
    }
    /* (v / 255 - mean) / std as one multiply and one add */
    x = op2(w, "Mul", x, onnx_scalar(w->b, (float)(1.0 / (255.0 * w->o->std))));
    return op2(w, "Add", x, onnx_scalar(w->b, -w->o->mean / w->o->std));
}

static const char *slice(walk *w, const char *x, int64_t start, int64_t end, int64_t axis) {
    const char *in[4] = {x, onnx_ints(w->b, &start, 1), onnx_ints(w->b, &end, 1), onnx_ints(w->b, &axis, 1)};
    return onnx_op(w->b, "Slice", in, 4);
}

/* Decoding of the head rows (N, A, 4 B + C): boxes (N, A, 4) and scores (N, A, C), as
 * lathe_k_dfl_decode_cpu and the sigmoid of predict.c. */
static int decode(walk *w, const char *rows, int A, const char **boxes, const char **scores) {
    int B = w->o->bins, C = w->o->classes, strides[8];
    const lathe_layer_view *d = &w->v[lathe_graph_nlayers(w->g) - 1];
    if (d->w != 4 * B + C)
        return lathe_fail(LATHE_EINVAL, "the detect layer gives %d values per anchor, not 4 x %d bins + %d classes", d->w, B, C);
    int levels = lathe_graph_detect_levels(w->g, strides, 8);
    if (levels < 1) return lathe_fail(LATHE_EINVAL, "the detect layer's levels do not divide the input evenly");
    float *points = malloc(sizeof(float) * 2 * (size_t)A), *stride = malloc(sizeof(float) * (size_t)A);
    float *proj = malloc(sizeof(float) * (size_t)B);
    if (!points || !stride || !proj) {
        free(points), free(stride), free(proj);
        return lathe_fail(LATHE_ENOMEM, "anchors");
    }
    lathe_det_anchors(w->v[0].h, w->v[0].w, strides, levels, points, stride);
    for (int j = 0; j < B; j++) proj[j] = (float)j;
    int64_t pd[2] = {A, 2}, sd[2] = {A, 1}, bd[2] = {B, 1};
    const char *pts = onnx_const_f32(w->b, "anchor_points", pd, 2, points);
    const char *str = onnx_const_f32(w->b, "anchor_strides", sd, 2, stride);
    const char *bins = onnx_const_f32(w->b, "bins", bd, 2, proj);
    free(points), free(stride), free(proj);
    const int64_t sides[4] = {0, A, 4, B}, flat[3] = {0, A, 4};
    const char *logits = reshape(w, slice(w, rows, 0, 4 * B, 2), sides, 4);
    const char *prob = onnx_name(w->b, "Softmax");
    onnx_node *sm = onnx_node_add(w->b, "Softmax", NULL, &logits, 1, &prob, 1);
    onnx_attr_int(w->b, sm, "axis", -1);
    const char *dist = op2(w, "Mul", reshape(w, op2(w, "MatMul", prob, bins), flat, 3), str); /* N A 4, pixels */
    const char *corners[2] = {op2(w, "Sub", pts, slice(w, dist, 0, 2, 2)), op2(w, "Add", pts, slice(w, dist, 2, 4, 2))};
    *boxes = onnx_name(w->b, "boxes");
    onnx_node *cat = onnx_node_add(w->b, "Concat", NULL, corners, 2, boxes, 1);
    onnx_attr_int(w->b, cat, "axis", 2);
    *scores = op1(w, "Sigmoid", slice(w, rows, 4 * B, 4 * B + C, 2));
    return 0;
}

/* ONNX NonMaxSuppression per class, then each image's best max_det by score, padded:
 * num_dets (N, 1), det_boxes (N, K, 4), det_scores (N, K), det_classes (N, K). */
static void nms_onnx(walk *w, const char *boxes, const char *scores, int batch) {
    onnx_builder *b = w->b;
    int K = w->o->max_det;
    const int64_t p021[3] = {0, 2, 1}, k64 = K;
    const char *cls_first = transpose(w, scores, p021, 3); /* N C A */
    const char *in[5] = {boxes, cls_first, onnx_ints(b, &k64, 1), onnx_scalar(b, w->o->iou), onnx_scalar(b, w->o->conf)};
    const char *sel = onnx_op(b, "NonMaxSuppression", in, 5); /* M x (image, class, anchor) */
    const int64_t col0 = 0, col1 = 1, col2 = 2, minus1 = -1;
    const char *img = reshape(w, slice(w, sel, col0, col1, 1), &minus1, 1);  /* M */
    const char *cls = reshape(w, slice(w, sel, col1, col2, 1), &minus1, 1);  /* M */
    const char *sc = op2(w, "GatherND", cls_first, sel);                      /* M */
    const char *ia[2] = {slice(w, sel, 0, 1, 1), slice(w, sel, 2, 3, 1)};
    const char *img_anchor = onnx_name(b, "Concat");
    onnx_node *c1 = onnx_node_add(b, "Concat", NULL, ia, 2, &img_anchor, 1);
    onnx_attr_int(b, c1, "axis", 1);
    const char *bx = op2(w, "GatherND", boxes, img_anchor);                    /* M 4 */
    /* a score matrix (N, M): image n's own selections, -1 elsewhere, then K columns of -1 so TopK
     * has K to take even when M < K */
    const char *shape_in = boxes, *n_dim = onnx_op(b, "Shape", &shape_in, 1);
    const char *nn = slice(w, n_dim, 0, 1, 0);
    const char *zero = onnx_const_i64(b, "zero", NULL, 0, &col0), *one = onnx_const_i64(b, "one", NULL, 0, &col1);
    const char *nscal = reshape(w, nn, NULL, 0);
    const char *rin[3] = {zero, nscal, one};
    const char *rows = onnx_op(b, "Range", rin, 3);                            /* N */
    const int64_t col_shape[2] = {-1, 1};
    const char *mine = op2(w, "Equal", reshape(w, rows, col_shape, 2), img); /* N M */
    const char *neg = onnx_scalar(b, -1);
    const char *win[3] = {mine, sc, neg};
    const char *mat = onnx_op(b, "Where", win, 3);
    const int64_t pad_shape[2] = {1, K};
    float *negs = malloc(sizeof(float) * (size_t)K);
    for (int k = 0; negs && k < K; k++) negs[k] = -1;
    const char *pad_row = negs ? onnx_const_f32(b, "pad", pad_shape, 2, negs) : "";
    free(negs);
    const char *nk[2] = {nn, onnx_ints(b, &k64, 1)};
    const char *pad_shape_dyn = onnx_name(b, "Concat");
    onnx_node *c2 = onnx_node_add(b, "Concat", NULL, nk, 2, &pad_shape_dyn, 1);
    onnx_attr_int(b, c2, "axis", 0);
    const char *pad = op2(w, "Expand", pad_row, pad_shape_dyn);                 /* N K */
    const char *mp[2] = {mat, pad};
    const char *padded = onnx_name(b, "Concat");
    onnx_node *c3 = onnx_node_add(b, "Concat", NULL, mp, 2, &padded, 1);
    onnx_attr_int(b, c3, "axis", 1);
    const char *tin[2] = {padded, onnx_ints(b, &k64, 1)};
    const char *tout[2] = {onnx_name(b, "top_scores"), onnx_name(b, "top_index")};
    onnx_node *tk = onnx_node_add(b, "TopK", NULL, tin, 2, tout, 2);
    onnx_attr_int(b, tk, "axis", 1);
    onnx_attr_int(b, tk, "sorted", 1);
    const char *valid = op2(w, "Greater", tout[0], onnx_scalar(b, -0.5f));      /* N K */
    const char *validf = onnx_name(b, "Cast");
    onnx_node *cv = onnx_node_add(b, "Cast", NULL, &valid, 1, &validf, 1);
    onnx_attr_int(b, cv, "to", ONNX_FLOAT);
    /* rows of the selections padded with K zero rows, so every index TopK gives is in range */
    const int64_t zb_shape[2] = {K, 4}, zc_shape[1] = {K};
    float *zf = calloc((size_t)K * 4 + 1, sizeof(float));
    int64_t *zi = calloc((size_t)K + 1, sizeof(int64_t));
    const char *zb = zf ? onnx_const_f32(b, "zero_boxes", zb_shape, 2, zf) : "";
    const char *zc = zi ? onnx_const_i64(b, "zero_classes", zc_shape, 1, zi) : "";
    free(zf), free(zi);
    const char *bb[2] = {bx, zb}, *cc[2] = {cls, zc};
    const char *all_boxes = onnx_name(b, "Concat"), *all_cls = onnx_name(b, "Concat");
    onnx_attr_int(b, onnx_node_add(b, "Concat", NULL, bb, 2, &all_boxes, 1), "axis", 0);
    onnx_attr_int(b, onnx_node_add(b, "Concat", NULL, cc, 2, &all_cls, 1), "axis", 0);
    const char *gb = op2(w, "Gather", all_boxes, tout[1]);                      /* N K 4 */
    const char *gc = op2(w, "Gather", all_cls, tout[1]);                        /* N K */
    const int64_t unsq[1] = {2};
    const char *vb = op2(w, "Unsqueeze", validf, onnx_ints(b, unsq, 1));
    const char *outs[4] = {"num_dets", "det_boxes", "det_scores", "det_classes"};
    const int64_t ax1[1] = {1};
    const char *cnt_f = onnx_name(b, "ReduceSum");
    const char *rs_in[2] = {validf, onnx_ints(b, ax1, 1)};
    onnx_node *rs = onnx_node_add(b, "ReduceSum", NULL, rs_in, 2, &cnt_f, 1);
    onnx_attr_int(b, rs, "keepdims", 1);
    onnx_attr_int(b, onnx_node_add(b, "Cast", NULL, &cnt_f, 1, &outs[0], 1), "to", ONNX_INT64);
    const char *m1[2] = {gb, vb}, *m2[2] = {tout[0], validf};
    onnx_node_add(b, "Mul", NULL, m1, 2, &outs[1], 1);
    onnx_node_add(b, "Mul", NULL, m2, 2, &outs[2], 1);
    const char *vi = onnx_name(b, "Cast");
    onnx_attr_int(b, onnx_node_add(b, "Cast", NULL, &valid, 1, &vi, 1), "to", ONNX_INT64);
    const char *m3[2] = {gc, vi};
    onnx_node_add(b, "Mul", NULL, m3, 2, &outs[3], 1);
    int64_t n = batch > 0 ? batch : -1;
    const int64_t d_num[2] = {n, 1}, d_boxes[3] = {n, K, 4}, d_k[2] = {n, K};
    onnx_graph_output(b, outs[0], ONNX_INT64, d_num, 2);
    onnx_graph_output(b, outs[1], ONNX_FLOAT, d_boxes, 3);
    onnx_graph_output(b, outs[2], ONNX_FLOAT, d_k, 2);
    onnx_graph_output(b, outs[3], ONNX_INT64, d_k, 2);
}

/* TensorRT's EfficientNMS_TRT plugin node (domain TRT; plugin version 1, attributes as the plugin's
 * README lists them): corner boxes, scores after the sigmoid, class-aware as lathe's NMS. TensorRT
 * runs it; onnxruntime does not know it. */
static void nms_trt(walk *w, const char *boxes, const char *scores, int batch) {
    const char *in[2] = {boxes, scores}, *outs[4] = {"num_dets", "det_boxes", "det_scores", "det_classes"};
    onnx_node *n = onnx_node_add(w->b, "EfficientNMS_TRT", "efficient_nms", in, 2, outs, 4);
    onnx_node_domain(w->b, n, "TRT");
    onnx_opset(w->b, "TRT", 1);
    onnx_attr_string(w->b, n, "plugin_version", "1");
    onnx_attr_int(w->b, n, "background_class", -1);
    onnx_attr_int(w->b, n, "box_coding", 0);
    onnx_attr_int(w->b, n, "class_agnostic", 0);
    onnx_attr_float(w->b, n, "iou_threshold", w->o->iou);
    onnx_attr_int(w->b, n, "max_output_boxes", w->o->max_det);
    onnx_attr_int(w->b, n, "score_activation", 0);
    onnx_attr_float(w->b, n, "score_threshold", w->o->conf);
    int64_t N = batch > 0 ? batch : -1, K = w->o->max_det;
    const int64_t d_num[2] = {N, 1}, d_boxes[3] = {N, K, 4}, d_k[2] = {N, K};
    onnx_graph_output(w->b, outs[0], ONNX_INT32, d_num, 2);
    onnx_graph_output(w->b, outs[1], ONNX_FLOAT, d_boxes, 3);
    onnx_graph_output(w->b, outs[2], ONNX_FLOAT, d_k, 2);
    onnx_graph_output(w->b, outs[3], ONNX_INT32, d_k, 2);
}

static int outputs(walk *w, int batch) {
    int last = lathe_graph_nlayers(w->g) - 1;
    const lathe_layer_view *l = &w->v[last];
    const value *y = &w->val[last];
    int64_t n = batch > 0 ? batch : -1;
    if (l->type != LATHE_LAYER_DETECT && l->type != LATHE_LAYER_VOCAB) { /* a classifier's logits (N, K) */
        if (w->o->nms != LATHE_NMS_NONE) return lathe_fail(LATHE_EINVAL, "NMS is for detectors; this model ends in %s", l->name);
        const char *out = "logits";
        if (y->rank == 2) {
            onnx_node_add(w->b, "Identity", NULL, &y->name, 1, &out, 1);
        } else {
            onnx_node *f = onnx_node_add(w->b, "Flatten", NULL, &y->name, 1, &out, 1);
            onnx_attr_int(w->b, f, "axis", 1);
        }
        int64_t dims[2] = {n, (int64_t)l->c * l->h * l->w};
        onnx_graph_output(w->b, out, ONNX_FLOAT, dims, 2);
        return 0;
    }
    const char *boxes = NULL, *scores = NULL;
    int rc = decode(w, y->name, l->c, &boxes, &scores);
    if (rc) return rc;
    if (w->o->nms == LATHE_NMS_ONNX || w->o->nms == LATHE_NMS_TRT) {
        (w->o->nms == LATHE_NMS_ONNX ? nms_onnx : nms_trt)(w, boxes, scores, batch);
        return 0;
    }
    if (w->o->nms != LATHE_NMS_NONE) return lathe_fail(LATHE_EUNSUPPORTED, "NMS kind %d", w->o->nms);
    const char *names[2] = {"boxes", "scores"}, *from[2] = {boxes, scores};
    for (int k = 0; k < 2; k++) onnx_node_add(w->b, "Identity", NULL, &from[k], 1, &names[k], 1);
    int64_t bd[3] = {n, l->c, 4}, sd[3] = {n, l->c, w->o->classes};
    onnx_graph_output(w->b, names[0], ONNX_FLOAT, bd, 3);
    onnx_graph_output(w->b, names[1], ONNX_FLOAT, sd, 3);
    return 0;
}

int lathe_export_onnx(const lathe_graph *g, const lathe_onnx_opts *o, const char *path) {
    if (o->batch < 0) return lathe_fail(LATHE_EINVAL, "batch %d: a size >= 1, or 0 for dynamic", o->batch);
    if (!(o->std > 0) || !isfinite(o->mean)) return lathe_fail(LATHE_EINVAL, "input normalization mean %g std %g", o->mean, o->std);
    if (o->nms && (o->max_det < 1 || !(o->iou > 0 && o->iou <= 1) || !(o->conf >= 0 && o->conf < 1)))
        return lathe_fail(LATHE_EINVAL, "NMS: max_det %d, iou %g, conf %g", o->max_det, o->iou, o->conf);
    int L = lathe_graph_nlayers(g);
    walk w = {onnx_builder_new("lathe"), g, o, {0}, NULL, calloc((size_t)L, sizeof(value))};
    int rc = w.b && w.val ? lathe_fold_plan(g, &w.f) : lathe_fail(LATHE_ENOMEM, "export of %d layers", L);
    w.v = w.f.v;
    if (!rc && w.v[0].c != 3 && o->input_uint8 && w.v[0].c != 1)
        rc = lathe_fail(LATHE_EINVAL, "uint8 input takes 1 or 3 channels, not %d", w.v[0].c);
    if (!rc) w.val[0] = (value){input(&w, o->batch), 4};
    for (int i = 1; !rc && i < L; i++) rc = layer(&w, i);
    if (!rc) rc = outputs(&w, o->batch);
    for (size_t k = 0; !rc && k < o->nmeta; k++) onnx_metadata(w.b, o->meta[2 * k], o->meta[2 * k + 1]);
    if (!rc) rc = onnx_write(w.b, LATHE_ONNX_OPSET, path);
    onnx_builder_free(w.b);
    lathe_fold_free(&w.f);
    free(w.val);
    return rc;
}
