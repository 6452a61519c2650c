/* order.c - split listing and epoch orders (order.h). */
#include "order.h"

#include <stdlib.h>

#include "libcore/base/error.h"
#include "libcore/base/rng.h"

int lathe_split_samples(lathe_dataset *ds, int split, int labelled_only, uint64_t **index, int32_t **labels,
                        uint64_t *n) {
    uint64_t total = lathe_dataset_count(ds);
    *n = 0;
    *index = malloc((total + 1) * sizeof **index);
    if (labels) *labels = malloc((total + 1) * sizeof **labels);
    if (!*index || (labels && !*labels)) {
        free(*index), *index = NULL;
        if (labels) free(*labels), *labels = NULL;
        return lathe_fail(LATHE_ENOMEM, "the sample list of %llu samples", (unsigned long long)total);
    }
    for (uint64_t i = 0; i < total; i++) {
        lathe_dataset_sample s;
        int rc = lathe_dataset_get(ds, i, 0, &s); /* the label and split only */
        if (rc) {
            free(*index), *index = NULL;
            if (labels) free(*labels), *labels = NULL;
            return rc;
        }
        if (s.split == split && (!labelled_only || s.label >= 0)) {
            if (labels) (*labels)[*n] = s.label;
            (*index)[(*n)++] = i;
        }
        lathe_dataset_sample_free(&s);
    }
    return 0;
}

void lathe_epoch_order(uint64_t *order, uint64_t n, uint64_t seed, int epoch, int shuffle) {
    for (uint64_t i = 0; i < n; i++) order[i] = i;
    if (!shuffle || n < 2) return;
    uint64_t s = lathe_mix64(seed ^ lathe_mix64((uint64_t)epoch + 1));
    for (uint64_t i = n - 1; i > 0; i--) {
        uint64_t j = (uint64_t)(lathe_rng_unit(&s) * (double)(i + 1));
        uint64_t t = order[i];
        order[i] = order[j], order[j] = t;
    }
}
