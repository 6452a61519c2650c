/* fuzz_one.h - the bodies several targets share: one label file through an adapter and the
 * catalog's finish (coco, kitti, voc), and one image through the decode path (jpeg, png). */
#ifndef LATHE_TESTS_FUZZ_ONE_H
#define LATHE_TESTS_FUZZ_ONE_H
#include "fuzz.h"

#include "datasets/adapters.h"
#include "libcore/io/image.h"

/* adapter's parse of data as the file `label`, then finish and a match of `image`, as ingest's scan
 * pass runs them. */
static inline void fuzz_adapter_file(const lathe_adapter *adapter, const char *label, const char *image,
                                     const uint8_t *data, size_t size) {
    lathe_catalog *cat = lathe_catalog_create();
    if (!cat) return;
    if (adapter->parse(cat, label, data, size) == 0 && lathe_catalog_finish(cat) == 0)
        (void)lathe_catalog_match(cat, image);
    lathe_catalog_free(cat);
}

/* Sniff, header probe, then a full decode to RGB and a reduced decode to luma with a pixel cap, as
 * ingest's workers run them on every image of an archive. */
static inline void fuzz_image(const uint8_t *data, size_t size) {
    lathe_image_info info;
    (void)lathe_image_sniff(data, size);
    (void)lathe_image_probe(data, size, &info);
    /* ingest's --max-pixels default is far larger; a small cap keeps each run fast */
    lathe_decode_opts full = {.max_pixels = 1u << 22, .channels = 3};
    lathe_decode_opts small = {.max_pixels = 1u << 22, .min_width = 24, .min_height = 16, .channels = 1};
    lathe_image img = {0};
    if (lathe_image_decode(data, size, &full, &img, &info) == 0) lathe_image_free(&img);
    if (lathe_image_decode(data, size, &small, &img, NULL) == 0) lathe_image_free(&img);
}
#endif
