/* adapters.c - the registry of label formats: the list in auto-detect priority order, lookup by
 * --format name, and auto-detection from the entry paths of a source. */
#include "datasets/adapters.h"

#include <string.h>

static const lathe_adapter *const registry[] = {
    &lathe_adapter_coco, &lathe_adapter_mvtec, &lathe_adapter_yolo,    &lathe_adapter_voc,
    &lathe_adapter_kitti, &lathe_adapter_folders, NULL,
};

const lathe_adapter *const *lathe_adapters(void) { return registry; }

const lathe_adapter *lathe_adapter_find(const char *name) {
    if (!name) return NULL;
    for (const lathe_adapter *const *a = registry; *a; a++)
        if (strcmp((*a)->name, name) == 0) return *a;
    return NULL;
}

/* Highest score wins; on a tie the earlier adapter in priority order. */
const lathe_adapter *lathe_adapter_detect(const char *const *paths, size_t n) {
    const lathe_adapter *best = &lathe_adapter_folders;
    int best_score = 0;
    for (const lathe_adapter *const *a = registry; *a; a++) {
        int score = (*a)->detect ? (*a)->detect(paths, n) : 0;
        if (score > best_score) {
            best = *a;
            best_score = score;
        }
    }
    return best;
}
