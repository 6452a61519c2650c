/* detect.c - a complete program on lathe's C inference API (libcore/export/engine.h), built against
 * the installed library: runs an engine that `lathe export --format lathe` wrote on JPEG/PNG files
 * and prints, per image, each detection (or a classifier's best class) in the photo's pixels.
 *   make -C experiments/engine   (uses pkg-config lathe; PKG_CONFIG_PATH for a non-standard PREFIX)
 *   experiments/engine/detect ENGINE IMAGE...
 * Each image is letterboxed to the engine's square input as lathe's ingest does. Exit 1 when an
 * image or the engine cannot be read. */
#include <stdio.h>
#include <stdlib.h>

#include "libcore/base/error.h"
#include "libcore/data/transform.h"
#include "libcore/export/engine.h"
#include "libcore/io/image.h"

static int run_one(lathe_engine *e, const char *path) {
    const lathe_engine_info *in = lathe_engine_get_info(e);
    FILE *f = fopen(path, "rb");
    if (!f) return fprintf(stderr, "%s: cannot open\n", path), 1;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *data = len > 0 ? malloc((size_t)len) : NULL;
    int ok = data && fread(data, 1, (size_t)len, f) == (size_t)len;
    fclose(f);
    lathe_image img = {0};
    lathe_decode_opts opts = {.max_pixels = 100000000ull, .channels = 3};
    if (!ok || lathe_image_decode(data, (size_t)len, &opts, &img, NULL)) {
        fprintf(stderr, "%s: %s\n", path, ok ? lathe_last_error() : "cannot read");
        free(data);
        return 1;
    }
    free(data);
    lathe_letterbox plan = lathe_letterbox_plan(img.width, img.height, in->w);
    unsigned char *canvas = malloc((size_t)in->w * in->w * 3);
    lathe_detection dets[100];
    int count = 0, rc = !canvas || lathe_letterbox_into(&img, &plan, in->w, (uint8_t)in->letterbox, 0, canvas);
    float *logits = malloc(sizeof(float) * (size_t)in->classes);
    lathe_engine_output out = {logits, dets, &count};
    if (!rc && logits) rc = lathe_engine_run_u8(e, canvas, 1, &out);
    if (rc || !logits) fprintf(stderr, "%s: %s\n", path, lathe_last_error());
    else if (in->detector)
        for (int k = 0; k < count; k++) { /* input pixels back to the photo's */
            const float *b = dets[k].box;
            printf("%s\t%s\t%.3f\t%.1f\t%.1f\t%.1f\t%.1f\n", path, in->class_names[dets[k].label], dets[k].score,
                   (b[0] - plan.pad_x) / plan.scale_x, (b[1] - plan.pad_y) / plan.scale_y,
                   (b[2] - plan.pad_x) / plan.scale_x, (b[3] - plan.pad_y) / plan.scale_y);
        }
    else {
        int best = 0;
        for (int k = 1; k < in->classes; k++) best = logits[k] > logits[best] ? k : best;
        printf("%s\t%s\t%.4f\n", path, in->class_names[best], logits[best]);
    }
    if (!rc && in->detector && count == 0) printf("%s\t(no detection)\n", path);
    free(canvas), free(logits);
    lathe_image_free(&img);
    return rc ? 1 : 0;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: detect ENGINE IMAGE...\n");
        return 2;
    }
    lathe_engine *e;
    if (lathe_engine_open(argv[1], "cpu", 1, &e)) {
        fprintf(stderr, "%s\n", lathe_last_error());
        return 1;
    }
    if (lathe_engine_get_info(e)->h != lathe_engine_get_info(e)->w) {
        fprintf(stderr, "%s: this example letterboxes to a square input\n", argv[1]);
        lathe_engine_close(e);
        return 1;
    }
    int failed = 0;
    for (int i = 2; i < argc; i++) failed |= run_one(e, argv[i]);
    lathe_engine_close(e);
    return failed;
}
