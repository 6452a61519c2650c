/* fuzz_manifest.c - the dataset manifest (libcore/io/manifest.c, and the checks lathe_dataset_open
 * adds): manifest.json loaded, its tiling and counts read, then opened as a dataset without the
 * shard files (which do not exist here) and a sample located and read (which must fail cleanly). */
#include "fuzz.h"

#include "libcore/io/dataset.h"
#include "libcore/io/manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[4200];
    fuzz_write("manifest.json", data, size, path, sizeof path);
    lathe_manifest m;
    if (lathe_manifest_load(fuzz_dir(), &m) != 0) return 0;
    int tile, overlap;
    lathe_manifest_tiling(&m, &tile, &overlap);
    for (int s = -1; s < LATHE_NSPLITS; s++) (void)lathe_manifest_samples(&m, s);
    lathe_manifest_free(&m);
    lathe_dataset_options opts = {.skip_file_check = 1};
    lathe_dataset *ds = NULL;
    if (lathe_dataset_open_ex(fuzz_dir(), &opts, &ds) != 0) return 0;
    uint64_t n = lathe_dataset_count(ds);
    size_t shard;
    uint64_t row;
    if (n && lathe_dataset_locate(ds, n - 1, &shard, &row) == 0) {
        lathe_dataset_sample s = {0};
        if (lathe_dataset_get(ds, n - 1, LATHE_READ_ALL, &s) == 0) lathe_dataset_sample_free(&s);
    }
    (void)lathe_dataset_tiled(ds);
    lathe_dataset_close(ds);
    return 0;
}
