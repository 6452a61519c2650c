/* fuzz_coco.c - the COCO label adapter (datasets/coco.c) on one annotations JSON, then the catalog's
 * finish (class numbering, relabelling) and a path match, as ingest's scan pass runs them. */
#include "fuzz_one.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_adapter_file(&lathe_adapter_coco, "annotations/instances_train.json", "train/images/a.jpg", data, size);
    return 0;
}
