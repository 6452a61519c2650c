/* fuzz_voc.c - the Pascal VOC adapter (datasets/voc.c, libxml2 without entity expansion or network)
 * on one XML file, then the catalog's finish. */
#include "fuzz.h"

#include "datasets/adapters.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    lathe_catalog *cat = lathe_catalog_create();
    if (!cat) return 0;
    if (lathe_adapter_voc.parse(cat, "VOC2012/Annotations/a.xml", data, size) == 0 && lathe_catalog_finish(cat) == 0)
        (void)lathe_catalog_match(cat, "VOC2012/JPEGImages/a.jpg");
    lathe_catalog_free(cat);
    return 0;
}
