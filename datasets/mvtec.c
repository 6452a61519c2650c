/* mvtec.c - the MVTec AD anomaly layout: <obj>/train/good/NAME.png, <obj>/test/<defect|good>/NAME.png and
 * <obj>/ground_truth/<defect>/<stem>_mask.png. Image-level labels (good = class 0) and defect masks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "datasets/adapters.h"
#include "libcore/base/error.h"

/* Same rule as class folders: hidden components and __MACOSX never become classes or samples. */
/* Where the last three components of path start: grandparent folder, parent folder, file name.
 * Returns -1 when path has fewer than two folders. */
typedef struct {
    const char *grand, *parent, *base;
    size_t grand_len, parent_len;
} path_tail;

static int split_tail(const char *path, path_tail *t) {
    const char *s1 = strrchr(path, '/');
    if (!s1 || s1 == path) return -1;
    const char *s2 = s1;
    while (s2 > path && s2[-1] != '/') s2--;
    if (s2 == path || s2 - 1 == path) return -1;
    const char *s3 = s2 - 1;
    while (s3 > path && s3[-1] != '/') s3--;
    t->grand = s3;
    t->grand_len = (size_t)(s2 - 1 - s3);
    t->parent = s2;
    t->parent_len = (size_t)(s1 - s2);
    t->base = s1 + 1;
    return t->grand_len && t->parent_len ? 0 : -1;
}

static int component_is(const char *s, size_t len, const char *name) {
    return strlen(name) == len && strncmp(s, name, len) == 0;
}

/* An image that is a sample: not a mask, not debris, in a good/ folder or in test/<defect>/.
 * Returns 1 and fills t for samples. */
static int sample_tail(const char *path, path_tail *t) {
    if (!lathe_path_is_image(path) || lathe_path_is_debris(path) || lathe_path_has_dir(path, "ground_truth")) return 0;
    if (split_tail(path, t)) return 0;
    return component_is(t->parent, t->parent_len, "good") || component_is(t->grand, t->grand_len, "test");
}

static int compare_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* 1 when key is one of the n sorted strings. */
static int contains(char *const *sorted, size_t n, const char *key) {
    return bsearch(&key, sorted, n, sizeof *sorted, compare_str) != NULL;
}

/* The defect types (test/<defect>/ folders other than good), sorted and distinct, into *out. */
static int collect_defects(const char *const *paths, size_t n, char ***out, size_t *count) {
    char **names = NULL;
    size_t k = 0, cap = 0;
    path_tail t;
    for (size_t i = 0; i < n; i++) {
        if (!sample_tail(paths[i], &t) || component_is(t.parent, t.parent_len, "good")) continue;
        if (k && component_is(t.parent, t.parent_len, names[k - 1])) continue; /* sorted paths: runs */
        if (k == cap) {
            cap = cap ? cap * 2 : 16;
            char **grown = realloc(names, cap * sizeof *names);
            if (!grown) goto oom;
            names = grown;
        }
        if (!(names[k] = strndup(t.parent, t.parent_len))) goto oom;
        k++;
    }
    if (k) qsort(names, k, sizeof *names, compare_str);
    size_t distinct = 0;
    for (size_t i = 0; i < k; i++) {
        if (distinct && strcmp(names[i], names[distinct - 1]) == 0) free(names[i]);
        else names[distinct++] = names[i];
    }
    *out = names;
    *count = distinct;
    return 0;
oom:
    for (size_t i = 0; i < k; i++) free(names[i]);
    free(names);
    return lathe_fail(LATHE_ENOMEM, "mvtec: defect names");
}

/* The mask of a defect image: <prefix>/ground_truth/<defect>/<stem>_mask.png (MVTec AD), else
 * <stem>.png in that folder (VisA and other MVTec-style exports). Writes it to mask and returns 1
 * when that entry exists. */
static int find_mask(const char *path, const path_tail *t, char *const *sorted, size_t n, char *mask, size_t cap) {
    static const char *const suffixes[] = {"_mask.png", ".png"};
    char stem[512];
    lathe_path_stem(t->base, stem, sizeof stem);
    for (size_t s = 0; s < sizeof suffixes / sizeof *suffixes; s++) {
        int len = snprintf(mask, cap, "%.*sground_truth/%.*s/%s%s", (int)(t->grand - path), path, (int)t->parent_len,
                           t->parent, stem, suffixes[s]);
        if (len > 0 && (size_t)len < cap && contains(sorted, n, mask)) return 1;
    }
    return 0;
}

static int add_samples(lathe_catalog *cat, const char *const *paths, size_t n, char *const *defects,
                       size_t ndefects, char *const *sorted) {
    char mask[4096], defect[256];
    path_tail t;
    for (size_t i = 0; i < n; i++) {
        const char *p = paths[i];
        if (!sample_tail(p, &t)) continue;
        lathe_record *rec = lathe_catalog_record(cat, p);
        if (!rec) return lathe_fail(LATHE_ENOMEM, "mvtec: record for %s", p);
        if (component_is(t.parent, t.parent_len, "good")) {
            rec->label = 0;
            continue;
        }
        snprintf(defect, sizeof defect, "%.*s", (int)t.parent_len, t.parent);
        const char *key = defect;
        char *const *hit = bsearch(&key, defects, ndefects, sizeof *defects, compare_str);
        rec->label = hit ? (int32_t)(hit - defects) + 1 : -1;
        if (find_mask(p, &t, sorted, n, mask, sizeof mask)) {
            int rc = lathe_record_set(&rec->mask_file, mask);
            if (rc) return rc;
        } else {
            lathe_catalog_reject(cat, p, "missing_mask",
                                 "defect '%s' image has no mask %.*sground_truth/%s/<stem>_mask.png", defect,
                                 (int)(t.grand - p), p, defect);
        }
    }
    return 0;
}

/* Declares good = 0 and the defect types 1.. in name order, then one record per sample image with
 * its class as the image label and its mask. A defect image without a mask keeps its record (the
 * label is still right) and is rejected as missing_mask. */
static int mvtec_scan_paths(lathe_catalog *cat, const char *const *paths, size_t n) {
    char **defects = NULL;
    size_t ndefects = 0;
    int rc = collect_defects(paths, n, &defects, &ndefects);
    if (rc) return rc;
    char **sorted = malloc((n ? n : 1) * sizeof *sorted);
    if (!sorted) {
        rc = lathe_fail(LATHE_ENOMEM, "mvtec: %zu paths", n);
        goto done;
    }
    for (size_t i = 0; i < n; i++) sorted[i] = (char *)paths[i];
    if (n) qsort(sorted, n, sizeof *sorted, compare_str); /* cheap insurance: the contract says sorted */
    rc = lathe_catalog_declare_class(cat, 0, "good");
    for (size_t i = 0; !rc && i < ndefects; i++) rc = lathe_catalog_declare_class(cat, (int64_t)i + 1, defects[i]);
    if (!rc) rc = add_samples(cat, paths, n, defects, ndefects, sorted);
done:
    free(sorted);
    for (size_t i = 0; i < ndefects; i++) free(defects[i]);
    free(defects);
    return rc;
}

static lathe_entry_role mvtec_role(const char *path) {
    if (!lathe_path_is_image(path) || lathe_path_is_debris(path)) return LATHE_ENTRY_OTHER;
    return lathe_path_has_dir(path, "ground_truth") ? LATHE_ENTRY_MASK : LATHE_ENTRY_IMAGE;
}

/* ground_truth/ masks plus good/ images score high; train/good and test/ without masks lower. */
static int mvtec_detect(const char *const *paths, size_t n) {
    int masks = 0, good = 0, test = 0;
    for (size_t i = 0; i < n; i++) {
        const char *p = paths[i];
        if (!lathe_path_is_image(p) || lathe_path_is_debris(p)) continue;
        if (lathe_path_has_dir(p, "ground_truth")) masks = 1;
        else if (lathe_path_has_dir(p, "good")) good = 1;
        else if (lathe_path_has_dir(p, "test")) test = 1;
    }
    if (masks && good) return 90;
    return good && test ? 50 : 0;
}

/* MVTec AD: image-level labels (0 = good, defects 1.. by name) and mask paths for defect images. */
const lathe_adapter lathe_adapter_mvtec = {
    .name = "mvtec",
    .summary = "MVTec AD: <obj>/train/good, <obj>/test/<defect>, <obj>/ground_truth/<defect>/*_mask.png",
    .detect = mvtec_detect,
    .role = mvtec_role,
    .parse = NULL,
    .scan_paths = mvtec_scan_paths,
};
