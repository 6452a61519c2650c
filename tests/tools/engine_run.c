/* engine_run.c - a test helper (tests/interop/test_export.py): an engine file through lathe's C API
 * on given pixels, its detections as JSON.
 *   engine_run ENGINE PIXELS.u8 N CONF IOU MAX_DET OUT.json
 * PIXELS.u8: N x H x W x 3 uint8 at the engine's input size. OUT.json: [[image, label, score, x1, y1,
 * x2, y2], ...] in input pixels. */
#include <stdio.h>
#include <stdlib.h>

#include "libcore/base/error.h"
#include "libcore/export/engine.h"

int main(int argc, char **argv) {
    if (argc != 8) {
        fprintf(stderr, "usage: engine_run ENGINE PIXELS.u8 N CONF IOU MAX_DET OUT.json\n");
        return 2;
    }
    int n = atoi(argv[3]), max_det = atoi(argv[6]);
    lathe_engine *e;
    if (lathe_engine_open(argv[1], "cpu", 1, &e) || lathe_engine_set_nms(e, (float)atof(argv[4]), (float)atof(argv[5]), max_det)) {
        fprintf(stderr, "engine_run: %s\n", lathe_last_error());
        return 1;
    }
    const lathe_engine_info *in = lathe_engine_get_info(e);
    size_t per = (size_t)in->h * in->w * 3;
    unsigned char *px = malloc(per);
    lathe_detection *dets = malloc(sizeof *dets * (size_t)max_det);
    FILE *f = fopen(argv[2], "rb"), *out = fopen(argv[7], "w");
    if (!px || !dets || !f || !out) return fprintf(stderr, "engine_run: cannot read or write\n"), 1;
    fprintf(out, "[");
    int first = 1;
    for (int i = 0; i < n; i++) {
        int count = 0;
        lathe_engine_output o = {NULL, dets, &count};
        if (fread(px, 1, per, f) != per || lathe_engine_run_u8(e, px, 1, &o))
            return fprintf(stderr, "engine_run: image %d: %s\n", i, lathe_last_error()), 1;
        for (int k = 0; k < count; k++, first = 0)
            fprintf(out, "%s[%d, %d, %.9g, %.9g, %.9g, %.9g, %.9g]", first ? "" : ", ", i, dets[k].label, dets[k].score,
                    dets[k].box[0], dets[k].box[1], dets[k].box[2], dets[k].box[3]);
    }
    fprintf(out, "]\n");
    fclose(f);
    if (fclose(out)) return 1;
    free(px), free(dets);
    lathe_engine_close(e);
    return 0;
}
