/* fuzz_voc.c - the Pascal VOC adapter (datasets/voc.c, libxml2 without entity expansion or network)
 * on one XML file, then the catalog's finish. */
#include "fuzz_one.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_adapter_file(&lathe_adapter_voc, "VOC2012/Annotations/a.xml", "VOC2012/JPEGImages/a.jpg", data, size);
    return 0;
}
