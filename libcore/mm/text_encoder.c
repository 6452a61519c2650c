/* text_encoder.c - sentence embeddings (text_encoder.h): tokenize every text, sort by length so a
 * padded batch wastes little, embed tokens on the host, run the transformer layers on the CPU or
 * the GPU, then pool (masked mean or CLS) and L2-normalize into each text's row. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/nn.h"
#include "libcore/base/error.h"
#include "text_encoder_internal.h"

int lathe_text_encoder_open(const char *dir, const char *device, lathe_text_encoder **out) {
    *out = NULL;
    lathe_text_encoder *e = calloc(1, sizeof *e);
    if (!e) return lathe_fail(LATHE_ENOMEM, "text encoder");
    int rc = text_model_load(e, dir);
    if (!rc && device && strcmp(device, "cpu")) rc = text_gpu_open(e, device);
    if (rc) {
        lathe_text_encoder_free(e);
        return rc;
    }
    *out = e;
    return 0;
}

void lathe_text_encoder_free(lathe_text_encoder *e) {
    if (!e) return;
    text_gpu_free(e->gpu);
    lathe_wordpiece_free(e->tok);
    free(e->weights), free(e->layer), free(e->scratch), free(e);
}

int lathe_text_encoder_dim(const lathe_text_encoder *e) { return e->dim; }
int lathe_text_encoder_max_tokens(const lathe_text_encoder *e) { return e->max_tokens; }

static float *scratch(lathe_text_encoder *e, size_t floats) {
    if (floats > e->scratch_floats) {
        float *p = realloc(e->scratch, floats * sizeof(float));
        if (!p) return NULL;
        e->scratch = p, e->scratch_floats = floats;
    }
    return e->scratch;
}

/* y += x over n floats (the residual connections) */
static void add_into(size_t n, const float *x, float *y) {
    for (size_t i = 0; i < n; i++) y[i] += x[i];
}

/* The transformer layers over x (b, l, dim) in place, on the CPU. */
static int cpu_layers(lathe_text_encoder *e, int b, int l, const int32_t *lens, float *x) {
    size_t m = (size_t)b * l, d = (size_t)e->dim;
    float *qkv = scratch(e, m * (3 * d + 2 * d + (size_t)e->inter + 2) + lathe_k_sdpa_workspace(l));
    if (!qkv) return lathe_fail(LATHE_ENOMEM, "text encoder activations (%zu tokens)", m);
    float *ctx = qkv + 3 * m * d, *t = ctx + m * d, *f = t + m * d, *mean = f + m * e->inter, *inv = mean + m;
    float *ws = inv + m;
    for (int i = 0; i < e->nlayers; i++) {
        const text_layer *L = &e->layer[i];
        lathe_k_linear_fwd_f32((int)m, e->dim, 3 * e->dim, x, L->wqkv, L->bqkv, qkv);
        lathe_k_sdpa_fwd_f32(b, l, e->dim, e->heads, qkv, lens, ws, ctx);
        lathe_k_linear_fwd_f32((int)m, e->dim, e->dim, ctx, L->wo, L->bo, t);
        add_into(m * d, x, t);
        lathe_k_layernorm_fwd_f32((int)m, e->dim, t, L->ln1_g, L->ln1_b, e->eps, mean, inv, ctx);
        lathe_k_linear_fwd_f32((int)m, e->dim, e->inter, ctx, L->wi, L->bi, f);
        lathe_k_act_fwd_f32(LATHE_ACT_GELU, m * e->inter, f, 0, f);
        lathe_k_linear_fwd_f32((int)m, e->inter, e->dim, f, L->wf, L->bf, t);
        add_into(m * d, ctx, t);
        lathe_k_layernorm_fwd_f32((int)m, e->dim, t, L->ln2_g, L->ln2_b, e->eps, mean, inv, x);
    }
    return 0;
}

/* Token, position and type-0 embeddings of the b sequences (ids[j] the tokens of sequence j),
 * padded to l with [PAD] (id 0), layer-normalized into x (b, l, dim). */
static void embed_tokens(const lathe_text_encoder *e, int b, int l, const int32_t *const *ids, const int32_t *lens,
                         float *x, float *stats) {
    int d = e->dim;
    for (int j = 0; j < b; j++)
        for (int t = 0; t < l; t++) {
            int id = t < lens[j] ? ids[j][t] : 0;
            float *row = x + ((size_t)j * l + t) * d;
            const float *w = e->word + (size_t)id * d, *p = e->pos + (size_t)t * d;
            for (int k = 0; k < d; k++) row[k] = w[k] + p[k] + e->type0[k];
        }
    lathe_k_layernorm_fwd_f32(b * l, d, x, e->emb_g, e->emb_b, e->eps, stats, stats + (size_t)b * l, x);
}

/* Mean over the first lens[j] rows of sequence j (or its CLS row), L2-normalized when the model
 * says so, into out row j. */
static void pool(const lathe_text_encoder *e, int l, int j, int len, const float *x, float *out) {
    int d = e->dim, n = e->pool_cls ? 1 : len;
    double norm = 0;
    for (int k = 0; k < d; k++) {
        double s = 0;
        for (int t = 0; t < n; t++) s += x[((size_t)j * l + t) * d + k];
        out[k] = (float)(s / n);
        norm += (double)out[k] * out[k];
    }
    if (!e->normalize) return;
    float inv = (float)(1 / fmax(sqrt(norm), 1e-12));
    for (int k = 0; k < d; k++) out[k] *= inv;
}

typedef struct {
    int32_t *ids;   /* every text's tokens, back to back */
    size_t *start;  /* text i's tokens: ids[start[i] .. start[i] + len[i]) */
    int32_t *len;
    size_t *order;  /* texts by decreasing length (ties by index) */
} token_table;

static int by_length(const void *a, const void *b, void *lengths) {
    size_t i = *(const size_t *)a, j = *(const size_t *)b;
    int32_t li = ((const int32_t *)lengths)[i], lj = ((const int32_t *)lengths)[j];
    return li != lj ? (li < lj) - (li > lj) : (i > j) - (i < j);
}

static int tokenize_all(const lathe_text_encoder *e, const char *const *texts, size_t n, token_table *tt) {
    size_t cap = n * 16 + 64, used = 0;
    tt->ids = malloc(cap * sizeof *tt->ids), tt->start = malloc((n + 1) * sizeof *tt->start);
    tt->len = malloc((n + 1) * sizeof *tt->len), tt->order = malloc((n + 1) * sizeof *tt->order);
    if (!tt->ids || !tt->start || !tt->len || !tt->order) return lathe_fail(LATHE_ENOMEM, "tokens of %zu texts", n);
    for (size_t i = 0; i < n; i++) {
        if (cap - used < (size_t)e->max_tokens) {
            cap = cap * 2 + (size_t)e->max_tokens;
            int32_t *p = realloc(tt->ids, cap * sizeof *p);
            if (!p) return lathe_fail(LATHE_ENOMEM, "tokens of %zu texts", n);
            tt->ids = p;
        }
        const char *s = texts[i] ? texts[i] : "";
        int k = lathe_wordpiece_encode(e->tok, s, strlen(s), e->max_tokens, tt->ids + used);
        if (k < 0) return k;
        tt->start[i] = used, tt->len[i] = k, tt->order[i] = i;
        used += (size_t)k;
    }
    qsort_r(tt->order, n, sizeof *tt->order, by_length, tt->len);
    return 0;
}

int lathe_text_encode(lathe_text_encoder *e, const char *const *texts, size_t n, int batch, float *out) {
    if (batch < 1) return lathe_fail(LATHE_EINVAL, "text encoder: batch %d", batch);
    token_table tt = {0};
    int rc = tokenize_all(e, texts, n, &tt);
    size_t d = (size_t)e->dim;
    float *x = NULL, *stats = NULL;
    const int32_t **ids = malloc((size_t)batch * sizeof *ids);
    int32_t *lens = malloc((size_t)batch * sizeof *lens);
    if (!rc && (!ids || !lens)) rc = lathe_fail(LATHE_ENOMEM, "text encoder batch");
    for (size_t at = 0; !rc && at < n; at += (size_t)batch) {
        int b = n - at < (size_t)batch ? (int)(n - at) : batch, l = tt.len[tt.order[at]]; /* longest first */
        for (int j = 0; j < b; j++) {
            size_t i = tt.order[at + j];
            ids[j] = tt.ids + tt.start[i], lens[j] = tt.len[i];
        }
        size_t m = (size_t)b * l;
        float *nx = realloc(x, m * d * sizeof *x), *ns = nx ? realloc(stats, 2 * m * sizeof *ns) : NULL;
        if (nx) x = nx;
        if (ns) stats = ns;
        if (!nx || !ns) {
            rc = lathe_fail(LATHE_ENOMEM, "text encoder batch of %zu tokens", m);
            break;
        }
        embed_tokens(e, b, l, ids, lens, x, stats);
        rc = e->gpu ? text_gpu_layers(e, b, l, lens, x) : cpu_layers(e, b, l, lens, x);
        for (int j = 0; !rc && j < b; j++) pool(e, l, j, lens[j], x, out + tt.order[at + j] * d);
    }
    free(x), free(stats), free(ids), free(lens);
    free(tt.ids), free(tt.start), free(tt.len), free(tt.order);
    return rc;
}
