/* conv_dnnl.c - convolutions through oneDNN (conv_dnnl.h).
 *
 * Per shape, one cache entry holds the three primitives (forward, backward data, backward
 * weights) created with "any" layouts, and for each operand a plain NCHW/OIHW memory whose
 * handle is pointed at the caller's buffer on every call, the primitive's own memory, and the
 * reorder between them (none where the layouts agree and nothing accumulates). Gradients
 * accumulate through a reorder with a sum post-op, so nn.h's contract holds.
 *
 * 3x3 stride-1 convolutions ask for oneDNN's Winograd F(4x4, 3x3) first (about half the time of
 * the direct kernels in all three directions here: docs/PERFORMANCE.md) and fall back to direct
 * when oneDNN refuses it; LATHE_CONV=direct keeps every shape direct. */
#include "kernels/conv_dnnl.h"

#include <dnnl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

enum { CACHE_ENTRIES = 64, SLOTS = 4 };

typedef struct {
    dnnl_memory_t plain, inner; /* inner == plain when no reorder is needed */
    dnnl_primitive_t reorder;   /* plain -> inner for inputs, inner -> plain for outputs */
    int output;
    int slot;                   /* the scratch buffer inner lives in (see cache.scratch) */
} operand;

typedef struct {
    lathe_conv_shape key; /* `threads` zeroed: oneDNN follows OpenMP's thread count */
    int bias;
    int act;              /* LATHE_ACT_* of an inference entry (no backward), or -1 */
    float slope;          /* its leaky slope */
    int act_after;        /* 1: the primitive has no post-op; the activation runs on the output after it */
    int refused;          /* oneDNN cannot run this shape: remembered, so it is not asked again */
    dnnl_primitive_t fwd, bwd_data, bwd_weights;
    operand f_x, f_w, f_b, f_y;            /* forward */
    operand d_dy, d_w, d_dx;               /* backward data */
    operand w_x, w_dy, w_dw, w_db;         /* backward weights */
    int dy_shared; /* both backward primitives read dy in the same layout, from the same slot */
    int y_block;   /* B when all three primitives keep y / dy in (N, K/B, P, Q, B), B dividing K, else 0 */
} entry;

static struct {
    pthread_mutex_t lock;
    int state; /* 0 untried, 1 ready, -1 off (LATHE_CONV=im2col, or no engine) */
    int winograd; /* 0 when LATHE_CONV=direct */
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    entry *entries[CACHE_ENTRIES];
    int n;
    /* the primitives' layouts live in these, shared by every shape (calls run one at a time), so
       the cache costs the largest layer's copies rather than a copy of every activation */
    void *scratch[SLOTS];
    size_t scratch_cap[SLOTS];
} cache = {PTHREAD_MUTEX_INITIALIZER, 0, 1, NULL, NULL, {0}, 0, {0}, {0}};

static int ready(void) {
    if (cache.state) return cache.state > 0;
    const char *mode = getenv("LATHE_CONV");
    if ((mode && !strcmp(mode, "im2col")) || dnnl_engine_create(&cache.engine, dnnl_cpu, 0) != dnnl_success ||
        dnnl_stream_create(&cache.stream, cache.engine, dnnl_stream_default_flags) != dnnl_success) {
        if (cache.engine) dnnl_engine_destroy(cache.engine), cache.engine = NULL;
        cache.state = -1;
        return 0;
    }
    cache.winograd = !(mode && !strcmp(mode, "direct"));
    cache.state = 1;
    return 1;
}

static void operand_free(operand *o) {
    if (o->reorder) dnnl_primitive_destroy(o->reorder);
    if (o->inner && o->inner != o->plain) dnnl_memory_destroy(o->inner);
    if (o->plain) dnnl_memory_destroy(o->plain);
    memset(o, 0, sizeof *o);
}

static void entry_free(entry *e) {
    if (!e) return;
    dnnl_primitive_t prims[] = {e->fwd, e->bwd_data, e->bwd_weights};
    for (int i = 0; i < 3; i++)
        if (prims[i]) dnnl_primitive_destroy(prims[i]);
    operand *ops[] = {&e->f_x, &e->f_w, &e->f_b, &e->f_y, &e->d_dy, &e->d_w, &e->d_dx, &e->w_x, &e->w_dy, &e->w_dw, &e->w_db};
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) operand_free(ops[i]);
    free(e);
}

/* The operand between a plain layout and the primitive's md. output: the reorder runs inner ->
 * plain, with a sum post-op when accumulate. */
static int reserve(int slot, const dnnl_memory_desc_t *md);

static int operand_make(operand *o, const dnnl_memory_desc_t *plain_md, const dnnl_memory_desc_t *md, int output,
                        int accumulate, int slot) {
    o->output = output, o->slot = slot;
    if (dnnl_memory_create(&o->plain, plain_md, cache.engine, DNNL_MEMORY_NONE) != dnnl_success) return -1;
    if (!accumulate && dnnl_memory_desc_equal(plain_md, md)) {
        o->inner = o->plain;
        return 0;
    }
    if (dnnl_memory_create(&o->inner, md, cache.engine, DNNL_MEMORY_NONE) != dnnl_success || reserve(slot, md)) return -1;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t ops = NULL;
    int rc = 0;
    if (accumulate) {
        rc = dnnl_primitive_attr_create(&attr) != dnnl_success || dnnl_post_ops_create(&ops) != dnnl_success ||
                     dnnl_post_ops_append_sum(ops, 1.0f) != dnnl_success ||
                     dnnl_primitive_attr_set_post_ops(attr, ops) != dnnl_success
                 ? -1
                 : 0;
    }
    dnnl_primitive_desc_t pd = NULL;
    if (!rc)
        rc = dnnl_reorder_primitive_desc_create(&pd, output ? md : plain_md, cache.engine, output ? plain_md : md,
                                                cache.engine, attr) != dnnl_success ||
                     dnnl_primitive_create(&o->reorder, pd) != dnnl_success
                 ? -1
                 : 0;
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (ops) dnnl_post_ops_destroy(ops);
    if (attr) dnnl_primitive_attr_destroy(attr);
    return rc;
}

static const dnnl_memory_desc_t *md_of(dnnl_primitive_desc_t pd, dnnl_query_t what) {
    return dnnl_primitive_desc_query_md(pd, what, 0);
}

/* Plain descriptors of a shape: x, w (5D with groups), b, y. */
static int plain_mds(const lathe_conv_shape *s, dnnl_memory_desc_t *x, dnnl_memory_desc_t *w, dnnl_memory_desc_t *b,
                     dnnl_memory_desc_t *y) {
    dnnl_dims_t xd = {s->n, s->c, s->h, s->w}, yd = {s->n, s->k, s->p, s->q}, bd = {s->k};
    dnnl_dims_t wd = {s->k, s->c, s->r, s->s}, gwd = {s->groups, s->k / s->groups, s->c / s->groups, s->r, s->s};
    int grouped = s->groups > 1;
    return dnnl_memory_desc_init_by_tag(x, 4, xd, dnnl_f32, dnnl_nchw) != dnnl_success ||
                   dnnl_memory_desc_init_by_tag(y, 4, yd, dnnl_f32, dnnl_nchw) != dnnl_success ||
                   dnnl_memory_desc_init_by_tag(b, 1, bd, dnnl_f32, dnnl_x) != dnnl_success ||
                   dnnl_memory_desc_init_by_tag(w, grouped ? 5 : 4, grouped ? gwd : wd, dnnl_f32,
                                                grouped ? dnnl_goihw : dnnl_oihw) != dnnl_success
               ? -1
               : 0;
}

/* The activation act (LATHE_ACT_*) as a oneDNN eltwise post-op on the convolution's output. */
static int act_attr(int act, float slope, dnnl_primitive_attr_t *attr) {
    dnnl_alg_kind_t alg = act == LATHE_ACT_SILU      ? dnnl_eltwise_swish
                          : act == LATHE_ACT_GELU    ? dnnl_eltwise_gelu_erf
                          : act == LATHE_ACT_SIGMOID ? dnnl_eltwise_logistic
                                                     : dnnl_eltwise_relu;
    float alpha = act == LATHE_ACT_SILU ? 1.0f : act == LATHE_ACT_LEAKY ? slope : 0.0f;
    dnnl_post_ops_t ops = NULL;
    int rc = dnnl_primitive_attr_create(attr) != dnnl_success || dnnl_post_ops_create(&ops) != dnnl_success ||
             dnnl_post_ops_append_eltwise(ops, 1.0f, alg, alpha, 0.0f) != dnnl_success ||
             dnnl_primitive_attr_set_post_ops(*attr, ops) != dnnl_success;
    if (ops) dnnl_post_ops_destroy(ops);
    return rc;
}

/* Creates the primitives and operands of a shape with algorithm alg; NULL when oneDNN refuses it.
 * With an activation (act >= 0) only the forward primitive, the activation fused into it. */
static entry *entry_create(const lathe_conv_shape *s, int bias, dnnl_alg_kind_t alg, int act, float slope) {
    entry *e = calloc(1, sizeof *e);
    if (!e) return NULL;
    e->key = *s, e->key.threads = 0, e->bias = bias, e->act = act, e->slope = slope;
    dnnl_memory_desc_t x, w, b, y, ax, aw, ay;
    if (plain_mds(s, &x, &w, &b, &y)) goto fail;
    ax = x, aw = w, ay = y; /* the same dims with "any" layout */
    if (dnnl_memory_desc_init_by_tag(&ax, 4, x.dims, dnnl_f32, dnnl_format_tag_any) != dnnl_success ||
        dnnl_memory_desc_init_by_tag(&aw, w.ndims, w.dims, dnnl_f32, dnnl_format_tag_any) != dnnl_success ||
        dnnl_memory_desc_init_by_tag(&ay, 4, y.dims, dnnl_f32, dnnl_format_tag_any) != dnnl_success)
        goto fail;
    dnnl_dims_t strides = {s->stride, s->stride}, dil = {s->dilation - 1, s->dilation - 1}, pad = {s->pad, s->pad};
    /* oneDNN wants the right padding that makes the output size come out exactly */
    dnnl_dims_t pad_r = {(s->p - 1) * s->stride + (s->r - 1) * s->dilation + 1 - s->h - s->pad,
                         (s->q - 1) * s->stride + (s->s - 1) * s->dilation + 1 - s->w - s->pad};
    dnnl_convolution_desc_t fd, dd, wd;
    dnnl_primitive_desc_t fpd = NULL, dpd = NULL, wpd = NULL;
    dnnl_primitive_attr_t attr = NULL;
    int bad = act >= 0 && act_attr(act, slope, &attr);
    bad = bad ||
          dnnl_dilated_convolution_forward_desc_init(&fd, act >= 0 ? dnnl_forward_inference : dnnl_forward_training, alg, &ax,
                                                     &aw, bias ? &b : NULL, &ay, strides, dil, pad, pad_r) != dnnl_success ||
          dnnl_primitive_desc_create(&fpd, &fd, attr, cache.engine, NULL) != dnnl_success ||
          dnnl_primitive_create(&e->fwd, fpd) != dnnl_success;
    if (attr) dnnl_primitive_attr_destroy(attr);
    if (act < 0)
        bad = bad ||
              dnnl_dilated_convolution_backward_data_desc_init(&dd, alg, &ax, &aw, &ay, strides, dil, pad, pad_r) != dnnl_success ||
              dnnl_primitive_desc_create(&dpd, &dd, NULL, cache.engine, fpd) != dnnl_success ||
              dnnl_dilated_convolution_backward_weights_desc_init(&wd, alg, &ax, &aw, bias ? &b : NULL, &ay, strides, dil,
                                                                  pad, pad_r) != dnnl_success ||
              dnnl_primitive_desc_create(&wpd, &wd, NULL, cache.engine, fpd) != dnnl_success ||
              dnnl_primitive_create(&e->bwd_data, dpd) != dnnl_success ||
              dnnl_primitive_create(&e->bwd_weights, wpd) != dnnl_success;
    /* slots: no two operands live at once share one. The backward pass keeps dy in slot 0 for
       both of its primitives, so dy is reordered once when their layouts agree (dy_shared). */
    bad = bad || operand_make(&e->f_x, &x, md_of(fpd, dnnl_query_src_md), 0, 0, 0) ||
          operand_make(&e->f_w, &w, md_of(fpd, dnnl_query_weights_md), 0, 0, 1) ||
          (bias && operand_make(&e->f_b, &b, &b, 0, 0, 2)) ||
          operand_make(&e->f_y, &y, md_of(fpd, dnnl_query_dst_md), 1, 0, 3);
    bad = bad || (act < 0 && (operand_make(&e->d_dy, &y, md_of(dpd, dnnl_query_diff_dst_md), 0, 0, 0) ||
                              operand_make(&e->d_w, &w, md_of(dpd, dnnl_query_weights_md), 0, 0, 1) ||
                              operand_make(&e->d_dx, &x, md_of(dpd, dnnl_query_diff_src_md), 1, 1, 3) ||
                              operand_make(&e->w_x, &x, md_of(wpd, dnnl_query_src_md), 0, 0, 2) ||
                              operand_make(&e->w_dy, &y, md_of(wpd, dnnl_query_diff_dst_md), 0, 0, 0) ||
                              operand_make(&e->w_dw, &w, md_of(wpd, dnnl_query_diff_weights_md), 1, 1, 1) ||
                              (bias && operand_make(&e->w_db, &b, &b, 1, 1, 3))));
    e->dy_shared = !bad && act < 0 && e->d_dy.reorder && e->w_dy.reorder &&
                   dnnl_memory_desc_equal(md_of(dpd, dnnl_query_diff_dst_md), md_of(wpd, dnnl_query_diff_dst_md));
    for (int blk = 16; !bad && act < 0 && blk >= 8 && !e->y_block; blk /= 2) {
        dnnl_memory_desc_t m;
        if (s->k % blk == 0 &&
            dnnl_memory_desc_init_by_tag(&m, 4, y.dims, dnnl_f32, blk == 16 ? dnnl_nChw16c : dnnl_nChw8c) == dnnl_success &&
            dnnl_memory_desc_equal(&m, md_of(fpd, dnnl_query_dst_md)) && dnnl_memory_desc_equal(&m, md_of(dpd, dnnl_query_diff_dst_md)) &&
            dnnl_memory_desc_equal(&m, md_of(wpd, dnnl_query_diff_dst_md)))
            e->y_block = blk;
    }
    if (fpd) dnnl_primitive_desc_destroy(fpd);
    if (dpd) dnnl_primitive_desc_destroy(dpd);
    if (wpd) dnnl_primitive_desc_destroy(wpd);
    if (!bad) return e;
fail:
    entry_free(e);
    return NULL;
}

/* The entry of a shape (and fused activation, -1 none), created on first use (oldest evicted when
 * the cache is full). */
static entry *lookup(const lathe_conv_shape *s, int bias, int act, float slope) {
    lathe_conv_shape key = *s;
    key.threads = 0;
    for (int i = 0; i < cache.n; i++) {
        const entry *c = cache.entries[i];
        if (c->bias == bias && c->act == act && (act != LATHE_ACT_LEAKY || c->slope == slope) && !memcmp(&c->key, &key, sizeof key))
            return c->refused ? NULL : cache.entries[i];
    }
    int winograd = cache.winograd && s->r == 3 && s->s == 3 && s->stride == 1 && s->dilation == 1 && s->groups == 1;
    /* With an activation: oneDNN's Winograd kernels take no eltwise post-op. At batch 8 and up
       Winograd with the activation after it beats the direct kernel with it fused (detector_n's
       engine at batch 32: 65 against 74-80 ms); below, the fused direct kernel wins (batch 1: 3.0
       against 5-6 ms). */
    if (act >= 0 && s->n < 8) winograd = 0;
    entry *e = winograd ? entry_create(s, bias, dnnl_convolution_winograd, act, slope) : NULL;
    if (!e && winograd && act >= 0 && (e = entry_create(s, bias, dnnl_convolution_winograd, -1, 0)))
        e->act = act, e->slope = slope, e->act_after = 1;
    if (!e) e = entry_create(s, bias, dnnl_convolution_direct, act, slope);
    if (!e && (e = calloc(1, sizeof *e))) e->key = key, e->bias = bias, e->act = act, e->slope = slope, e->refused = 1;
    if (!e) return NULL;
    if (cache.n == CACHE_ENTRIES) {
        entry_free(cache.entries[0]);
        memmove(cache.entries, cache.entries + 1, sizeof cache.entries[0] * (CACHE_ENTRIES - 1));
        cache.n--;
    }
    cache.entries[cache.n++] = e;
    return e->refused ? NULL : e;
}

/* Grows scratch slot `slot` to hold md (done when a shape's entry is made, so a call never
 * allocates and cannot fail halfway through). */
static int reserve(int slot, const dnnl_memory_desc_t *md) {
    size_t need = dnnl_memory_desc_get_size(md);
    if (need <= cache.scratch_cap[slot]) return 0;
    void *p = NULL;
    if (posix_memalign(&p, 64, need)) return -1;
    free(cache.scratch[slot]);
    cache.scratch[slot] = p, cache.scratch_cap[slot] = need;
    return 0;
}

/* Points the operand's plain side at the caller's buffer and its inner side (when it has its own
 * layout) at its scratch slot. */
static int point(operand *o, const void *data) {
    if (dnnl_memory_set_data_handle(o->plain, (void *)data) != dnnl_success) return 1;
    return o->inner != o->plain && dnnl_memory_set_data_handle(o->inner, cache.scratch[o->slot]) != dnnl_success;
}

static int run_reorder(const operand *o) {
    if (!o->reorder) return 0;
    dnnl_exec_arg_t a[2] = {{DNNL_ARG_FROM, o->output ? o->inner : o->plain}, {DNNL_ARG_TO, o->output ? o->plain : o->inner}};
    return dnnl_primitive_execute(o->reorder, cache.stream, 2, a) != dnnl_success;
}

static int execute(dnnl_primitive_t p, const dnnl_exec_arg_t *args, int n) {
    return dnnl_primitive_execute(p, cache.stream, n, args) != dnnl_success;
}

/* Constant weights kept in oneDNN's layout (lathe_k_conv2d_fwd_dnnl_const), with the layout they were
 * made for. */
typedef struct {
    dnnl_memory_desc_t md;
    void *data;
} wcache_t;

void lathe_k_conv_dnnl_wcache_free(void *wcache) {
    wcache_t *c = wcache;
    if (c) free(c->data);
    free(c);
}

/* Points the weights operand at w, or at its cached reordered copy (made when missing or made for
 * another layout); 0 or 1 on failure. */
static int weights(operand *o, const float *w, void **wcache) {
    if (!wcache || !o->reorder) return point(o, w) || run_reorder(o);
    const dnnl_memory_desc_t *md = NULL;
    if (dnnl_memory_get_memory_desc(o->inner, &md) != dnnl_success) return 1;
    wcache_t *c = *wcache;
    if (c && dnnl_memory_desc_equal(&c->md, md)) return dnnl_memory_set_data_handle(o->inner, c->data) != dnnl_success;
    if (!c && !(c = *wcache = calloc(1, sizeof *c))) return 1;
    free(c->data), c->data = NULL;
    if (posix_memalign(&c->data, 64, dnnl_memory_desc_get_size(md))) return c->data = NULL, 1;
    c->md = *md;
    return dnnl_memory_set_data_handle(o->plain, (void *)w) != dnnl_success ||
           dnnl_memory_set_data_handle(o->inner, c->data) != dnnl_success || run_reorder(o);
}

/* Points the operand's primitive side straight at the caller's buffer, which holds the primitive's
 * own layout (no reorder runs). */
static int point_inner(operand *o, void *data) { return dnnl_memory_set_data_handle(o->inner, data) != dnnl_success; }

/* y_blocked: y is written in the entry's blocked layout (y_block), not NCHW; a shape without one
 * returns 0 with nothing written. Returns 0 or -1, or with y_blocked the block. */
static int forward(const lathe_conv_shape *s, const float *x, const float *w, const float *b, float *y, int act, float slope,
                   void **wcache, int y_blocked) {
    pthread_mutex_lock(&cache.lock);
    entry *e = ready() ? lookup(s, b != NULL, act, slope) : NULL;
    if (e && y_blocked && !e->y_block) {
        pthread_mutex_unlock(&cache.lock);
        return 0;
    }
    int rc = !e;
    if (!rc) {
        rc = point(&e->f_x, x) || weights(&e->f_w, w, wcache) || (b && point(&e->f_b, b)) ||
             (y_blocked ? point_inner(&e->f_y, y) : point(&e->f_y, y)) || run_reorder(&e->f_x) || (b && run_reorder(&e->f_b));
        dnnl_exec_arg_t a[4] = {{DNNL_ARG_SRC, e->f_x.inner}, {DNNL_ARG_WEIGHTS, e->f_w.inner}, {DNNL_ARG_DST, e->f_y.inner},
                                {DNNL_ARG_BIAS, b ? e->f_b.inner : NULL}};
        rc = rc || execute(e->fwd, a, b ? 4 : 3) || (!y_blocked && run_reorder(&e->f_y)) ||
             dnnl_stream_wait(cache.stream) != dnnl_success;
        if (!rc && e->act_after) lathe_k_act_fwd_f32(e->act, (size_t)s->n * s->k * s->p * s->q, y, e->slope, y);
    }
    pthread_mutex_unlock(&cache.lock);
    return rc ? -1 : y_blocked ? e->y_block : 0;
}

int lathe_k_conv2d_fwd_dnnl(const lathe_conv_shape *s, const float *x, const float *w, const float *b, float *y) {
    return forward(s, x, w, b, y, -1, 0, NULL, 0);
}

int lathe_k_conv2d_fwd_dnnl_yblocked(const lathe_conv_shape *s, const float *x, const float *w, const float *b, float *y) {
    return forward(s, x, w, b, y, -1, 0, NULL, 1);
}

int lathe_k_conv2d_fwd_dnnl_const(const lathe_conv_shape *s, const float *x, const float *w, const float *b, float *y,
                                  int act, float slope, void **wcache) {
    return forward(s, x, w, b, y, act, slope, wcache, 0);
}

/* dy_blocked: dy is in the entry's blocked layout (y_block), read as it is by both primitives */
static int backward(const lathe_conv_shape *s, const float *x, const float *w, const float *dy, float *dx, float *dw,
                    float *db, int dy_blocked) {
    pthread_mutex_lock(&cache.lock);
    entry *e = ready() ? lookup(s, db != NULL, -1, 0) : NULL;
    int rc = !e || (dy_blocked && !e->y_block), dy_ready = dy_blocked;
    if (!rc && dx) {
        rc = (dy_blocked ? point_inner(&e->d_dy, (void *)dy) : point(&e->d_dy, dy) || run_reorder(&e->d_dy)) ||
             point(&e->d_w, w) || point(&e->d_dx, dx) || run_reorder(&e->d_w);
        dnnl_exec_arg_t a[3] = {{DNNL_ARG_DIFF_DST, e->d_dy.inner}, {DNNL_ARG_WEIGHTS, e->d_w.inner},
                                {DNNL_ARG_DIFF_SRC, e->d_dx.inner}};
        rc = rc || execute(e->bwd_data, a, 3) || run_reorder(&e->d_dx);
        dy_ready = dy_ready || e->dy_shared;
    }
    if (!rc && (dw || db)) {
        /* frozen weights (dw NULL): the gradient goes to scratch and is not added anywhere */
        rc = point(&e->w_x, x) || (dy_blocked ? point_inner(&e->w_dy, (void *)dy) : point(&e->w_dy, dy)) ||
             point(&e->w_dw, dw) || (db && point(&e->w_db, db)) || run_reorder(&e->w_x) ||
             (!dy_ready && run_reorder(&e->w_dy));
        dnnl_exec_arg_t a[4] = {{DNNL_ARG_SRC, e->w_x.inner}, {DNNL_ARG_DIFF_DST, e->w_dy.inner},
                                {DNNL_ARG_DIFF_WEIGHTS, e->w_dw.inner}, {DNNL_ARG_DIFF_BIAS, db ? e->w_db.inner : NULL}};
        rc = rc || execute(e->bwd_weights, a, db ? 4 : 3) || (dw && run_reorder(&e->w_dw)) || (db && run_reorder(&e->w_db));
    }
    rc = rc || dnnl_stream_wait(cache.stream) != dnnl_success;
    pthread_mutex_unlock(&cache.lock);
    return rc ? -1 : 0;
}

int lathe_k_conv2d_bwd_dnnl(const lathe_conv_shape *s, const float *x, const float *w, const float *dy, float *dx,
                            float *dw, float *db) {
    return backward(s, x, w, dy, dx, dw, db, 0);
}

int lathe_k_conv2d_bwd_dnnl_yblocked(const lathe_conv_shape *s, const float *x, const float *w, const float *dy,
                                     float *dx, float *dw, float *db) {
    return backward(s, x, w, dy, dx, dw, db, 1);
}

void lathe_k_conv_dnnl_release(void) {
    pthread_mutex_lock(&cache.lock);
    for (int i = 0; i < cache.n; i++) entry_free(cache.entries[i]);
    cache.n = 0;
    for (int k = 0; k < SLOTS; k++) free(cache.scratch[k]), cache.scratch[k] = NULL, cache.scratch_cap[k] = 0;
    if (cache.stream) dnnl_stream_destroy(cache.stream), cache.stream = NULL;
    if (cache.engine) dnnl_engine_destroy(cache.engine), cache.engine = NULL;
    cache.state = 0; /* the next call reads LATHE_CONV again */
    pthread_mutex_unlock(&cache.lock);
}
