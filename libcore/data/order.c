/* order.c - split listing and epoch orders (order.h). */
#include "order.h"

#include <stdlib.h>
#include <string.h>

#include "libcore/base/error.h"
#include "libcore/base/rng.h"

int lathe_split_order_init(lathe_split_order *s, lathe_dataset *ds, int split, int labelled_only, int with_labels,
                           uint64_t seed, int shuffle) {
    memset(s, 0, sizeof *s);
    s->seed = seed, s->shuffle = shuffle, s->epoch = -1;
    uint64_t total = lathe_dataset_count(ds);
    s->index = malloc((total + 1) * sizeof *s->index);
    s->order = malloc((total + 1) * sizeof *s->order);
    if (with_labels) s->labels = malloc((total + 1) * sizeof *s->labels);
    if (!s->index || !s->order || (with_labels && !s->labels)) {
        lathe_split_order_free(s);
        return lathe_fail(LATHE_ENOMEM, "the sample list of %llu samples", (unsigned long long)total);
    }
    for (uint64_t i = 0; i < total; i++) {
        lathe_dataset_sample smp;
        int rc = lathe_dataset_get(ds, i, 0, &smp); /* the label and split only */
        if (rc) {
            lathe_split_order_free(s);
            return rc;
        }
        if (smp.split == split && (!labelled_only || smp.label >= 0)) {
            if (s->labels) s->labels[s->n] = smp.label;
            s->index[s->n++] = i;
        }
        lathe_dataset_sample_free(&smp);
    }
    return 0;
}

int lathe_split_order_sample_background(lathe_split_order *s, lathe_dataset *ds, double share) {
    if (!(share > 0 && share <= 1)) return lathe_fail(LATHE_EINVAL, "the share of samples without boxes must be in (0, 1], not %g", share);
    if (share == 1 || s->labels) return 0; /* labels follow index: classification never samples */
    uint64_t *empty = malloc((s->n + 1) * sizeof *empty), nboxed = 0, nempty = 0;
    if (!empty) return lathe_fail(LATHE_ENOMEM, "the sample list");
    for (uint64_t i = 0; i < s->n; i++) {
        lathe_dataset_sample smp;
        int rc = lathe_dataset_get(ds, s->index[i], LATHE_READ_BOXES, &smp);
        if (rc) {
            free(empty);
            return rc;
        }
        if (smp.nboxes) s->index[nboxed++] = s->index[i];
        else empty[nempty++] = s->index[i];
        lathe_dataset_sample_free(&smp);
    }
    memcpy(s->index + nboxed, empty, nempty * sizeof *empty);
    s->all_empty = empty, s->nboxed = nboxed, s->nempty = nempty;
    uint64_t keep = (uint64_t)(share * (double)nempty + 0.5);
    s->n = nboxed + (keep || nboxed ? keep : 1); /* never an empty epoch */
    s->epoch = -1;
    return 0;
}

static int by_value(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int lathe_split_order_prefer_background(lathe_split_order *s, const uint64_t *samples, uint64_t n) {
    if (!s->all_empty) return lathe_fail(LATHE_EINVAL, "hard negatives need background sampling (a share below 1)");
    if (!s->preferred && !(s->preferred = calloc(s->nempty + 1, 1))) return lathe_fail(LATHE_ENOMEM, "hard negatives");
    memset(s->preferred, 0, s->nempty);
    uint64_t room = s->n - s->nboxed, taken = 0; /* the draw's size, and how much of it is chosen */
    for (uint64_t i = 0; i < n && taken < room; i++) {
        const uint64_t *at = bsearch(&samples[i], s->all_empty, s->nempty, sizeof *at, by_value);
        if (at && !s->preferred[at - s->all_empty]) s->preferred[at - s->all_empty] = 1, taken++;
    }
    s->epoch = -1; /* the next epoch's draw is computed anew */
    return 0;
}

void lathe_split_order_free(lathe_split_order *s) {
    free(s->index), free(s->labels), free(s->order), free(s->all_empty), free(s->preferred);
    memset(s, 0, sizeof *s);
}

const uint64_t *lathe_split_order_epoch(lathe_split_order *s, int epoch) {
    if (s->epoch == epoch) return s->order;
    if (s->all_empty) { /* this epoch's samples without boxes: the preferred ones, then a shuffle of the rest */
        uint64_t *pick = s->index + s->nboxed, r = lathe_mix64(~s->seed ^ lathe_mix64((uint64_t)epoch + 1)), k = 0;
        for (uint64_t i = 0; s->preferred && i < s->nempty; i++)
            if (s->preferred[i]) pick[k++] = s->all_empty[i];
        uint64_t *rest = pick + k, m = 0;
        for (uint64_t i = 0; i < s->nempty; i++)
            if (!s->preferred || !s->preferred[i]) rest[m++] = s->all_empty[i];
        for (uint64_t i = m - 1; m > 1 && i > 0; i--) {
            uint64_t j = (uint64_t)(lathe_rng_unit(&r) * (double)(i + 1)), t = rest[i];
            rest[i] = rest[j], rest[j] = t;
        }
    }
    for (uint64_t i = 0; i < s->n; i++) s->order[i] = i;
    if (s->shuffle && s->n > 1) {
        uint64_t r = lathe_mix64(s->seed ^ lathe_mix64((uint64_t)epoch + 1));
        for (uint64_t i = s->n - 1; i > 0; i--) {
            uint64_t j = (uint64_t)(lathe_rng_unit(&r) * (double)(i + 1));
            uint64_t t = s->order[i];
            s->order[i] = s->order[j], s->order[j] = t;
        }
    }
    s->epoch = epoch;
    return s->order;
}
