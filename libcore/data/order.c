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

void lathe_split_order_free(lathe_split_order *s) {
    free(s->index), free(s->labels), free(s->order), free(s->all_empty);
    memset(s, 0, sizeof *s);
}

const uint64_t *lathe_split_order_epoch(lathe_split_order *s, int epoch) {
    if (s->epoch == epoch) return s->order;
    if (s->all_empty) { /* this epoch's samples without boxes: the first of a shuffle of all of them */
        uint64_t *pick = s->index + s->nboxed, r = lathe_mix64(~s->seed ^ lathe_mix64((uint64_t)epoch + 1));
        memcpy(pick, s->all_empty, s->nempty * sizeof *pick);
        for (uint64_t i = s->nempty - 1; s->nempty > 1 && i > 0; i--) {
            uint64_t j = (uint64_t)(lathe_rng_unit(&r) * (double)(i + 1)), t = pick[i];
            pick[i] = pick[j], pick[j] = t;
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
