/* fuzz_jpeg.c - the JPEG decode path (libcore/io): sniff, header probe, then a full decode to RGB and a
 * reduced decode to luma with a pixel cap, as ingest's workers run it on every image of an archive. */
#include "fuzz.h"

#include "libcore/io/image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    lathe_image_info info;
    (void)lathe_image_sniff(data, size);
    (void)lathe_image_probe(data, size, &info);
    (void)lathe_jpeg_exif_orientation(data, size);
    /* ingest's --max-pixels default is far larger; a small cap keeps each run fast */
    lathe_decode_opts full = {.max_pixels = 1u << 22, .channels = 3};
    lathe_decode_opts small = {.max_pixels = 1u << 22, .min_width = 24, .min_height = 16, .channels = 1};
    lathe_image img = {0};
    if (lathe_image_decode(data, size, &full, &img, &info) == 0) lathe_image_free(&img);
    if (lathe_image_decode(data, size, &small, &img, NULL) == 0) lathe_image_free(&img);
    return 0;
}
