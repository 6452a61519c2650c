/* fuzz_kitti.c - the KITTI adapter (datasets/kitti.c) on one a label_2/NAME.txt file, then the catalog's finish. */
#include "fuzz.h"

#include "datasets/adapters.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    lathe_catalog *cat = lathe_catalog_create();
    if (!cat) return 0;
    if (lathe_adapter_kitti.parse(cat, "training/label_2/000001.txt", data, size) == 0 &&
        lathe_catalog_finish(cat) == 0)
        (void)lathe_catalog_match(cat, "training/image_2/000001");
    lathe_catalog_free(cat);
    return 0;
}
