/* fuzz_paths.c - the formats that live in the paths alone: MVTec (good/defect folders, ground_truth
 * masks) and class folders, plus every adapter's detect() and role(). The input is a list of entry
 * paths, one a line, sorted as ingest sorts them before scan_paths. */
#include "fuzz.h"

#include "datasets/adapters.h"

static int compare_paths(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = fuzz_text(data, size);
    size_t n = 0, cap = 1;
    for (size_t i = 0; i < size; i++) cap += data[i] == '\n';
    char **paths = malloc(cap * sizeof *paths);
    if (!paths) abort();
    for (char *save = NULL, *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
        paths[n++] = line;
    if (n) qsort(paths, n, sizeof *paths, compare_paths);
    const char *const *list = (const char *const *)paths;
    (void)lathe_adapter_detect(list, n);
    for (const lathe_adapter *const *a = lathe_adapters(); *a; a++)
        for (size_t i = 0; i < n && (*a)->role; i++) (void)(*a)->role(list[i]);
    const lathe_adapter *layouts[] = {&lathe_adapter_mvtec, &lathe_adapter_folders};
    for (size_t k = 0; k < 2; k++) {
        lathe_catalog *cat = lathe_catalog_create();
        if (!cat) break;
        if (layouts[k]->scan_paths(cat, list, n) == 0 && lathe_catalog_finish(cat) == 0)
            for (size_t i = 0; i < n; i++) (void)lathe_catalog_match(cat, list[i]);
        lathe_catalog_free(cat);
    }
    free(paths);
    free(text);
    return 0;
}
