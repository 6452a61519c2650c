/* fuzz_yolo.c - the YOLO adapter (datasets/yolo.c): a class list and a label file. The input is
 * "LIST\0LABELS": LIST is data.yaml (libfyaml) when it starts with a letter, else classes.txt; without
 * a NUL the first byte picks which one file the whole input is (label txt, classes.txt, data.yaml).
 * Then scan_paths (classes from the ids, background images) and the catalog's finish. */
#include "fuzz.h"

#include "datasets/adapters.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const char *const kinds[] = {"ds/labels/train/a.txt", "ds/classes.txt", "ds/data.yaml"};
    static const char *const paths[] = {"ds/images/train/a.jpg", "ds/images/train/b.png", "ds/labels/train/a.txt"};
    lathe_catalog *cat = lathe_catalog_create();
    if (!cat) return 0;
    size_t first;
    const uint8_t *second;
    size_t second_len;
    fuzz_split(data, size, &first, &second, &second_len);
    int rc;
    if (second) {
        int yaml = first && ((data[0] | 0x20) >= 'a' && (data[0] | 0x20) <= 'z');
        rc = lathe_adapter_yolo.parse(cat, kinds[yaml ? 2 : 1], data, first);
        if (!rc) rc = lathe_adapter_yolo.parse(cat, kinds[0], second, second_len);
    } else {
        rc = lathe_adapter_yolo.parse(cat, kinds[size ? data[0] % 3 : 0], size ? data + 1 : data, size ? size - 1 : 0);
    }
    if (!rc) rc = lathe_adapter_yolo.scan_paths(cat, paths, 3);
    if (!rc && lathe_catalog_finish(cat) == 0) (void)lathe_catalog_match(cat, "ds/images/train/a");
    lathe_catalog_free(cat);
    return 0;
}
