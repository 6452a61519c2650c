/* fuzz_kitti.c - the KITTI adapter (datasets/kitti.c) on one a label_2/NAME.txt file, then the catalog's finish. */
#include "fuzz_one.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_adapter_file(&lathe_adapter_kitti, "training/label_2/000001.txt", "training/image_2/000001", data, size);
    return 0;
}
