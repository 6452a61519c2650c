/* fuzz_jpeg.c - the JPEG decode path (libcore/io): sniff, header probe, then a full decode to RGB and a
 * reduced decode to luma with a pixel cap, as ingest's workers run it on every image of an archive. */
#include "fuzz_one.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_image(data, size);
    (void)lathe_jpeg_exif_orientation(data, size);
    return 0;
}
