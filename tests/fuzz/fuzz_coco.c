/* fuzz_coco.c - the COCO label adapter (datasets/coco.c) on one annotations JSON, then the catalog's
 * finish (class numbering, relabelling) and a path match, as ingest's scan pass runs them. */
#include "fuzz.h"

#include "datasets/adapters.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    lathe_catalog *cat = lathe_catalog_create();
    if (!cat) return 0;
    if (lathe_adapter_coco.parse(cat, "annotations/instances_train.json", data, size) == 0 &&
        lathe_catalog_finish(cat) == 0)
        (void)lathe_catalog_match(cat, "train/images/a.jpg");
    lathe_catalog_free(cat);
    return 0;
}
