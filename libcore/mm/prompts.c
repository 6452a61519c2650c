/* prompts.c - class prompts as text embeddings (prompts.h). */
#include "prompts.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libcore/base/config.h"
#include "libcore/base/error.h"
#include "libcore/base/log.h"

static const char *const default_prompts[] = {"a photo of a part with a {}", "a {} on a part",
                                              "an inspection image showing a {}"};

/* A class's words: eval.class_text.<name> (when asked), else the name with underscores as spaces. */
static void class_phrase(const cJSON *spec, const char *name, int class_text, char *out, size_t cap) {
    const cJSON *map = class_text ? lathe_config_get(spec, "eval.class_text") : NULL;
    const cJSON *v = map ? cJSON_GetObjectItemCaseSensitive(map, name) : NULL;
    snprintf(out, cap, "%s", cJSON_IsString(v) ? v->valuestring : name);
    if (!cJSON_IsString(v))
        for (char *p = out; *p; p++) *p = *p == '_' ? ' ' : *p;
}

/* prompt with its first "{}" replaced by phrase */
static char *fill(const char *prompt, const char *phrase) {
    const char *at = strstr(prompt, "{}");
    size_t len = strlen(prompt) + strlen(phrase) + 1;
    char *s = malloc(len);
    if (!s) return NULL;
    if (at) snprintf(s, len, "%.*s%s%s", (int)(at - prompt), prompt, phrase, at + 2);
    else snprintf(s, len, "%s", prompt);
    return s;
}

int lathe_class_prompts(const cJSON *spec, const char *const *names, int k, int class_text, lathe_text_encoder *enc,
                        float *out) {
    const cJSON *p = lathe_config_get(spec, "eval.prompt");
    int np = cJSON_IsString(p) ? 1 : cJSON_IsArray(p) ? cJSON_GetArraySize(p) : p ? -1 : 3;
    if (np < 1) return lathe_fail(LATHE_EINVAL, "eval.prompt: a string with {} or a non-empty list of them");
    int dim = lathe_text_encoder_dim(enc);
    char **texts = calloc((size_t)np * k, sizeof *texts);
    float *emb = malloc(sizeof(float) * np * k * dim);
    int rc = texts && emb ? 0 : lathe_fail(LATHE_ENOMEM, "prompts");
    for (int c = 0; !rc && c < k; c++)
        for (int j = 0; !rc && j < np; j++) {
            const cJSON *item = cJSON_IsArray(p) ? cJSON_GetArrayItem(p, j) : p;
            if (item && !cJSON_IsString(item)) rc = lathe_fail(LATHE_EINVAL, "eval.prompt: item %d is not a string", j);
            char phrase[256];
            class_phrase(spec, names[c], class_text, phrase, sizeof phrase);
            if (!rc && !(texts[c * np + j] = fill(item ? item->valuestring : default_prompts[j], phrase)))
                rc = lathe_fail(LATHE_ENOMEM, "prompts");
        }
    if (!rc) rc = lathe_text_encode(enc, (const char *const *)texts, (size_t)np * k, 32, emb);
    for (int c = 0; !rc && c < k; c++) {
        float *row = out + (size_t)c * dim;
        double norm = 0;
        for (int d = 0; d < dim; d++) {
            double s = 0;
            for (int j = 0; j < np; j++) s += emb[((size_t)c * np + j) * dim + d];
            row[d] = (float)s, norm += s * s;
        }
        for (int d = 0; d < dim; d++) row[d] = (float)(row[d] / sqrt(norm));
        lathe_log(LATHE_LOG_DEBUG, "prompt", "class %s: \"%s\"", names[c], texts[(size_t)c * np]);
    }
    for (int i = 0; texts && i < np * k; i++) free(texts[i]);
    free(texts), free(emb);
    return rc;
}

int lathe_vocab_set_classes(lathe_graph *g, const cJSON *spec, const char *const *names, int k, int class_text) {
    lathe_layer_view v;
    int rc = lathe_graph_layer(g, lathe_graph_nlayers(g) - 1, &v);
    if (rc || v.type != LATHE_LAYER_VOCAB) return rc;
    char name[LATHE_GRAPH_NAME_MAX + 8];
    snprintf(name, sizeof name, "%s.text", v.name);
    lathe_param *text = lathe_graph_find_param(g, name);
    if (!text) return lathe_fail(LATHE_EINVAL, "the open-vocabulary head %s has no text rows", v.name);
    if (text->shape[0] != k)
        return lathe_fail(LATHE_EINVAL, "the open-vocabulary head %s scores %d classes, not %d", v.name, text->shape[0], k);
    char dir[4096];
    lathe_text_encoder *enc = NULL;
    rc = lathe_text_model_find(lathe_config_str(spec, "text.model", NULL), dir, sizeof dir);
    if (!rc) rc = lathe_text_encoder_open(dir, lathe_config_str(spec, "text.device", "cpu"), &enc);
    if (!rc && lathe_text_encoder_dim(enc) != text->shape[1])
        rc = lathe_fail(LATHE_EINVAL, "the open-vocabulary head %s embeds %d values per anchor, the text encoder %d: "
                                      "give its head convs 4 x bins + %d outputs", v.name, text->shape[1],
                        lathe_text_encoder_dim(enc), lathe_text_encoder_dim(enc));
    if (!rc) rc = lathe_class_prompts(spec, names, k, class_text, enc, text->data);
    lathe_text_encoder_free(enc);
    return rc ? rc : lathe_graph_sync(g, 0);
}

int lathe_holdout_classes(const cJSON *spec, const char *const *names, int k, unsigned char *held) {
    const cJSON *h = lathe_config_get(spec, "data.holdout_classes");
    memset(held, 0, (size_t)k);
    if (!h) return 0;
    if (!cJSON_IsArray(h) && !cJSON_IsString(h)) return lathe_fail(LATHE_EINVAL, "data.holdout_classes: class names");
    int n = cJSON_IsArray(h) ? cJSON_GetArraySize(h) : 1;
    for (int i = 0; i < n; i++) {
        const cJSON *it = cJSON_IsArray(h) ? cJSON_GetArrayItem(h, i) : h;
        int c = -1;
        for (int j = 0; j < k && cJSON_IsString(it); j++)
            if (!strcmp(names[j], it->valuestring)) c = j;
        if (cJSON_IsNumber(it) && it->valuedouble >= 0 && it->valuedouble < k) c = (int)it->valuedouble;
        if (c < 0)
            return lathe_fail(LATHE_EINVAL, "data.holdout_classes: %s is not one of the dataset's classes (%s%s%s%s)",
                              cJSON_IsString(it) ? it->valuestring : "an entry", names[0], k > 1 ? ", " : "",
                              k > 1 ? names[1] : "", k > 2 ? ", ..." : "");
        held[c] = 1;
    }
    return 0;
}
