/* contrastive_eval.c - scoring an image-text run (contrastive.h): its image embeddings against the
 * class prompts (zero-shot accuracy, the held-out classes' share of it) and against the split's
 * descriptions (recall at 1, 5 and 10 both ways), the report lathe eval writes, and lathe embed's
 * image embeddings. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "contrastive.h"
#include "contrastive_internal.h"
#include "libcore/base/config.h"
#include "libcore/base/error.h"
#include "libcore/eval/classify.h"
#include "libcore/io/npy.h"
#include "libcore/nn/checkpoint.h"

int cx_eval_loader(cx_run *r, int split, lathe_loader **out) {
    int c, h, w;
    lathe_graph_input(r->g, &c, &h, &w);
    lathe_loader_opts o = {.split = split, .c = c, .h = h, .w = w, .mean = (float)lathe_config_num(r->spec, "data.mean", 0.5),
                           .std = (float)lathe_config_num(r->spec, "data.std", 0.25)};
    return lathe_loader_create(r->ds, &o, out);
}

int cx_embed(cx_run *r, lathe_loader *l, float **emb, int32_t **labels, uint64_t **samples, uint64_t *n) {
    int c, h, w, d = r->dim;
    uint64_t total = lathe_loader_size(l);
    float *in = lathe_graph_input(r->g, &c, &h, &w);
    *emb = malloc(sizeof(float) * (total + 1) * d);
    int32_t *lab = malloc(sizeof(int32_t) * (total + 1));
    uint64_t *idx = malloc(sizeof(uint64_t) * (total + 1));
    if (!*emb || !lab || !idx) {
        free(lab), free(idx);
        return lathe_fail(LATHE_ENOMEM, "embeddings of %llu images", (unsigned long long)total);
    }
    int rc = 0;
    lathe_graph_set_train(r->g, 0);
    for (uint64_t first = 0; !rc && first < total; first += (uint64_t)r->batch) {
        int got = lathe_loader_batch(l, 0, first, r->batch, in, lab + first);
        if (got < 0) rc = got;
        if (!rc) lathe_loader_samples(l, 0, first, got, idx + first);
        if (!rc) rc = lathe_graph_forward(r->g, got, 0);
        const float *out = rc ? NULL : lathe_graph_output(r->g, NULL);
        for (int b = 0; !rc && b < got; b++) { /* unit rows: the learned scale does not change a ranking */
            const float *y = out + (size_t)b * d;
            float *e = *emb + (first + (uint64_t)b) * d;
            double norm = 0;
            for (int k = 0; k < d; k++) norm += (double)y[k] * y[k];
            for (int k = 0; k < d; k++) e[k] = (float)(y[k] / fmax(sqrt(norm), 1e-12));
        }
    }
    if (labels) *labels = lab;
    else free(lab);
    if (samples) *samples = idx;
    else free(idx);
    *n = total;
    return rc;
}

static double dot(const float *a, const float *b, int d) {
    double s = 0;
    for (int k = 0; k < d; k++) s += (double)a[k] * b[k];
    return s;
}

/* Recall at 1, 5 and 10 both ways over the n images and the distinct texts among them: an image's
 * query hits when its own description ranks in the top k of the texts; a text's when one of its
 * images ranks in the top k of the images. */
static cJSON *retrieval(const cx_run *r, const float *emb, const uint64_t *idx, uint64_t n) {
    int d = r->dim, ks[3] = {1, 5, 10};
    size_t nt = r->ntexts;
    char *present = calloc(nt + 1, 1);
    double *sim = malloc(sizeof(double) * (nt + 1)), *img_sim = malloc(sizeof(double) * (n + 1));
    uint64_t hits_i[3] = {0}, hits_t[3] = {0}, queries_t = 0;
    cJSON *out = cJSON_CreateObject();
    if (!present || !sim || !img_sim || !out) goto done;
    for (uint64_t i = 0; i < n; i++) present[r->sample_text[idx[i]]] = 1;
    for (uint64_t i = 0; i < n; i++) { /* image -> text: the rank of its own text among the present texts */
        int32_t own = r->sample_text[idx[i]];
        double s_own = dot(emb + i * d, r->text_emb + (size_t)own * d, d);
        size_t better = 0;
        for (size_t t = 0; t < nt; t++)
            if (present[t] && (int32_t)t != own) better += dot(emb + i * d, r->text_emb + t * d, d) > s_own;
        for (int k = 0; k < 3; k++) hits_i[k] += better < (size_t)ks[k];
    }
    for (size_t t = 0; t < nt; t++) { /* text -> image: the best rank of any of its images */
        if (!present[t]) continue;
        queries_t++;
        double best_own = -INFINITY;
        for (uint64_t i = 0; i < n; i++) {
            img_sim[i] = dot(emb + i * d, r->text_emb + t * d, d);
            if (r->sample_text[idx[i]] == (int32_t)t) best_own = fmax(best_own, img_sim[i]);
        }
        uint64_t better = 0;
        for (uint64_t i = 0; i < n; i++) better += r->sample_text[idx[i]] != (int32_t)t && img_sim[i] > best_own;
        for (int k = 0; k < 3; k++) hits_t[k] += better < (uint64_t)ks[k];
    }
    cJSON *i2t = cJSON_AddObjectToObject(out, "image_to_text"), *t2i = cJSON_AddObjectToObject(out, "text_to_image");
    for (int k = 0; k < 3; k++) {
        char key[8];
        snprintf(key, sizeof key, "R@%d", ks[k]);
        cJSON_AddNumberToObject(i2t, key, n ? (double)hits_i[k] / (double)n : 0);
        cJSON_AddNumberToObject(t2i, key, queries_t ? (double)hits_t[k] / (double)queries_t : 0);
    }
    cJSON_AddNumberToObject(i2t, "queries", (double)n);
    cJSON_AddNumberToObject(t2i, "queries", (double)queries_t);
done:
    free(present), free(sim), free(img_sim);
    return out;
}

int cx_score(cx_run *r, lathe_loader *l, cJSON **report) {
    *report = NULL;
    float *emb = NULL;
    int32_t *labels = NULL;
    uint64_t *idx = NULL, n = 0, held = 0, held_right = 0;
    int k = r->classes, d = r->dim;
    uint64_t *cm = calloc((size_t)k * k, sizeof *cm);
    int rc = cm ? cx_embed(r, l, &emb, &labels, &idx, &n) : lathe_fail(LATHE_ENOMEM, "confusion matrix");
    for (uint64_t i = 0; !rc && i < n; i++) {
        int best = 0;
        double bs = -INFINITY;
        for (int c = 0; c < k; c++) {
            double s = dot(emb + i * d, r->prompt_emb + (size_t)c * d, d);
            if (s > bs) bs = s, best = c;
        }
        if (labels[i] < 0 || labels[i] >= k) continue;
        cm[(size_t)labels[i] * k + best]++;
        if (r->holdout[labels[i]]) held++, held_right += best == labels[i];
    }
    cJSON *rep = rc ? NULL : lathe_classify_report(cm, k, (const char **)r->class_names, 0);
    if (!rc && !rep) rc = lathe_fail(LATHE_ENOMEM, "report");
    if (!rc) {
        cJSON_DeleteItemFromObjectCaseSensitive(rep, "loss");
        cJSON_AddStringToObject(rep, "task", "contrastive");
        cJSON_AddNumberToObject(rep, "chance", 1.0 / k);
        cJSON *ret = retrieval(r, emb, idx, n), *ho = cJSON_CreateObject(), *names = cJSON_CreateArray();
        for (int c = 0; c < k; c++)
            if (r->holdout[c]) cJSON_AddItemToArray(names, cJSON_CreateString(r->class_names[c]));
        cJSON_AddItemToObject(ho, "classes", names);
        cJSON_AddNumberToObject(ho, "samples", (double)held);
        if (held) cJSON_AddNumberToObject(ho, "accuracy", (double)held_right / (double)held);
        else cJSON_AddNullToObject(ho, "accuracy");
        cJSON_AddItemToObject(rep, "retrieval", ret);
        cJSON_AddItemToObject(rep, "holdout", ho);
        const cJSON *prompt = lathe_config_get(r->spec, "eval.prompt");
        if (prompt) cJSON_AddItemToObject(rep, "prompts", cJSON_Duplicate(prompt, 1));
    }
    free(cm), free(emb), free(labels), free(idx);
    if (rc) cJSON_Delete(rep);
    else *report = rep;
    return rc;
}

int lathe_eval_contrastive(const cJSON *spec, const char *checkpoint, const char *dataset, const char *split,
                           const char *out_dir, cJSON **report) {
    if (report) *report = NULL;
    cx_run r;
    lathe_loader *l = NULL;
    cJSON *rep = NULL;
    int sp = lathe_split_parse(split);
    int rc = sp < 0 ? lathe_fail(LATHE_EINVAL, "unknown split %s", split) : cx_open(&r, spec, dataset, NULL, 1);
    if (!rc) rc = lathe_graph_set_device(r.g, lathe_config_str(spec, "train.device", "auto"));
    if (!rc) rc = lathe_checkpoint_load(checkpoint, r.g, NULL);
    if (!rc) rc = cx_eval_loader(&r, sp, &l);
    if (!rc) rc = cx_score(&r, l, &rep);
    if (!rc) {
        cJSON_AddStringToObject(rep, "checkpoint", checkpoint);
        cJSON_AddStringToObject(rep, "split", split);
        char title[4400];
        snprintf(title, sizeof title, "lathe eval: %s on %s (zero-shot from class prompts)", checkpoint, split);
        rc = lathe_classify_write(rep, title, out_dir);
    }
    if (!rc && report) *report = rep;
    else cJSON_Delete(rep);
    lathe_loader_free(l);
    if (sp >= 0) cx_close(&r);
    return rc;
}

int lathe_contrastive_embed_images(cJSON *spec, const char *checkpoint, const char *dataset, const char *split,
                                   const char *device, int batch, const char *out_npy) {
    int rc = 0, sp = lathe_split_parse(split);
    if (strcmp(lathe_config_str(spec, "task", "classify"), "contrastive"))
        rc = lathe_fail(LATHE_EINVAL, "a %s run: image embeddings come from an image-text run (task: contrastive)",
                        lathe_config_str(spec, "task", "classify"));
    if (!rc && sp < 0) rc = lathe_fail(LATHE_EINVAL, "unknown split %s", split);
    cJSON *train = rc ? NULL : cJSON_GetObjectItemCaseSensitive(spec, "train");
    if (train) cJSON_DeleteItemFromObjectCaseSensitive(train, "batch"), cJSON_AddNumberToObject(train, "batch", batch);
    cx_run r;
    int opened = 0;
    lathe_loader *l = NULL;
    float *emb = NULL;
    uint64_t n = 0;
    if (!rc) rc = cx_open(&r, spec, dataset, NULL, 0), opened = 1; /* images only: no text model needed */
    if (!rc) rc = lathe_graph_set_device(r.g, device);
    if (!rc) rc = lathe_checkpoint_load(checkpoint, r.g, NULL);
    if (!rc) rc = cx_eval_loader(&r, sp, &l);
    if (!rc) rc = cx_embed(&r, l, &emb, NULL, NULL, &n);
    if (!rc) rc = lathe_npy_write_f32(out_npy, emb, n, (size_t)r.dim);
    if (!rc) fprintf(stderr, "embed: %llu images of %s -> %s [%llu, %d]\n", (unsigned long long)n, split, out_npy,
                     (unsigned long long)n, r.dim);
    free(emb);
    lathe_loader_free(l);
    if (opened) cx_close(&r);
    return rc;
}
