/* hard_negatives.c - hard-negative mining for detector training (hard_negatives.h). */
#include "hard_negatives.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "libcore/base/config.h"
#include "libcore/base/error.h"
#include "libcore/base/rng.h"
#include "libcore/dist/dist.h"

/* The highest class logit over an image's anchors (held-out classes aside): how sure the model is
 * that something is there. */
static double top_logit(const lathe_hard_negatives *h, const lathe_det_head *hd, const float *out) {
    int K = 4 * hd->bins + hd->classes;
    double top = -INFINITY;
    for (int a = 0; a < hd->A; a++)
        for (int k = 0; k < hd->classes; k++)
            if (!h->held || !h->held[k]) top = fmax(top, out[(size_t)a * K + 4 * hd->bins + k]);
    return top;
}

typedef struct {
    double score;
    uint64_t sample;
} candidate;

static int by_score_down(const void *a, const void *b) {
    const candidate *x = a, *y = b;
    return x->score > y->score ? -1 : x->score < y->score ? 1 : (x->sample > y->sample) - (x->sample < y->sample);
}

static void kept_path(const lathe_hard_negatives *h, char *path, size_t size) {
    snprintf(path, size, "%s/checkpoints/hard_background.json", h->run_dir);
}

/* The choice for epoch into h->kept, which then holds it and the epoch before's, and the file. */
static int keep(lathe_hard_negatives *h, int epoch, const uint64_t *samples, uint64_t n) {
    char key[32], before[32], path[4200];
    snprintf(key, sizeof key, "%d", epoch), snprintf(before, sizeof before, "%d", epoch - 1);
    if (!h->kept && !(h->kept = cJSON_CreateObject())) return lathe_fail(LATHE_ENOMEM, "hard negatives");
    for (cJSON *e = h->kept->child, *next; e; e = next) {
        next = e->next;
        if (strcmp(e->string, before)) cJSON_DeleteItemFromObjectCaseSensitive(h->kept, e->string);
    }
    cJSON *list = cJSON_AddArrayToObject(h->kept, key);
    for (uint64_t i = 0; list && i < n; i++)
        if (!cJSON_AddItemToArray(list, cJSON_CreateNumber((double)samples[i]))) list = NULL;
    if (!list) return lathe_fail(LATHE_ENOMEM, "hard negatives");
    kept_path(h, path, sizeof path);
    return lathe_dist_writer() ? lathe_json_save(path, h->kept) : 0;
}

int lathe_hard_negatives_list(const cJSON *kept, int epoch, const char *what, uint64_t **samples, uint64_t *n) {
    char key[32];
    snprintf(key, sizeof key, "%d", epoch);
    const cJSON *list = cJSON_IsObject(kept) ? cJSON_GetObjectItemCaseSensitive(kept, key) : NULL;
    *n = 0;
    if (kept && !cJSON_IsObject(kept)) return lathe_fail(LATHE_EFORMAT, "%s is not a mapping of epochs to lists", what);
    if (list && !cJSON_IsArray(list)) return lathe_fail(LATHE_EFORMAT, "%s: epoch %s is not a list", what, key);
    if (!(*samples = malloc(((uint64_t)cJSON_GetArraySize(list) + 1) * sizeof **samples)))
        return lathe_fail(LATHE_ENOMEM, "hard negatives");
    const cJSON *v;
    cJSON_ArrayForEach(v, list) {
        if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0 && v->valuedouble < 9007199254740992.0)) {
            free(*samples), *samples = NULL, *n = 0;
            return lathe_fail(LATHE_EFORMAT, "%s: epoch %s lists something other than sample numbers", what, key);
        }
        (*samples)[(*n)++] = (uint64_t)v->valuedouble;
    }
    return 0;
}

int lathe_hard_negatives_restore(lathe_hard_negatives *h, lathe_det_loader *l, int epoch) {
    char path[4200];
    kept_path(h, path, sizeof path);
    cJSON *json = NULL;
    uint64_t *samples = NULL, n = 0;
    int rc = access(path, F_OK) ? 0 : lathe_json_load(path, (size_t)1 << 28, &json);
    if (!rc) rc = lathe_hard_negatives_list(json, epoch, path, &samples, &n);
    if (!rc) rc = lathe_det_loader_prefer_background(l, samples, n);
    if (!rc) cJSON_Delete(h->kept), h->epoch = epoch, h->kept = json, json = NULL;
    cJSON_Delete(json), free(samples);
    return rc;
}

int lathe_hard_negatives_mine(lathe_hard_negatives *h, lathe_detector *d, lathe_det_loader *l, lathe_det_batch *b,
                              int next_epoch) {
    const uint64_t *empty;
    uint64_t draw, n = lathe_det_loader_background(l, &empty, &draw);
    uint64_t pool = draw * (uint64_t)h->k < n ? draw * (uint64_t)h->k : n;
    if (h->k < 2 || pool <= draw || next_epoch >= h->epochs) return 0; /* nothing to choose, or no epoch left */
    uint64_t *pick = malloc(n * sizeof *pick);
    double *score = calloc(pool, sizeof *score);
    candidate *c = malloc(pool * sizeof *c);
    int rc = pick && score && c ? 0 : lathe_fail(LATHE_ENOMEM, "hard negatives");
    uint64_t r = lathe_mix64(h->seed ^ 0x68617264ull ^ lathe_mix64((uint64_t)next_epoch));
    if (!rc) memcpy(pick, empty, n * sizeof *pick);
    for (uint64_t i = 0; !rc && i < pool; i++) { /* the first pool of a shuffle */
        uint64_t j = i + (uint64_t)(lathe_rng_unit(&r) * (double)(n - i)), tmp = pick[i];
        pick[i] = pick[j], pick[j] = tmp;
    }
    uint64_t B = (uint64_t)b->cap;
    size_t per = (size_t)d->head.A * (4 * d->bins + d->classes);
    for (uint64_t first = lathe_dist_first_batch(B); !rc && first < pool; first += lathe_dist_batch_stride(B)) {
        int got = lathe_det_loader_samples(l, pick + first, (int)(pool - first < B ? pool - first : B), b);
        if (got < 0) rc = got;
        if (!rc) {
            memcpy(lathe_graph_input(d->g, NULL, NULL, NULL), b->x, sizeof(float) * 3 * d->h * d->w * (size_t)got);
            rc = lathe_graph_forward(d->g, got, 0);
        }
        const float *out = rc ? NULL : lathe_graph_output(d->g, NULL);
        for (int i = 0; !rc && i < got; i++) score[first + (uint64_t)i] = top_logit(h, &d->head, out + (size_t)i * per);
    }
    rc = lathe_dist_agree(rc);
    if (!rc) rc = lathe_dist_sum_f64(score, pool); /* each rank's share, zeros elsewhere */
    for (uint64_t i = 0; !rc && i < pool; i++) c[i] = (candidate){score[i], pick[i]};
    if (!rc) qsort(c, pool, sizeof *c, by_score_down);
    for (uint64_t i = 0; !rc && i < draw; i++) pick[i] = c[i].sample;
    if (!rc) rc = lathe_det_loader_prefer_background(l, pick, draw);
    if (!rc) rc = lathe_dist_agree(keep(h, next_epoch, pick, draw));
    if (!rc) h->epoch = next_epoch;
    free(pick), free(score), free(c);
    return rc;
}

void lathe_hard_negatives_free(lathe_hard_negatives *h) {
    cJSON_Delete(h->kept);
    h->kept = NULL;
}
