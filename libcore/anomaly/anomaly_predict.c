/* anomaly_predict.c - an anomaly run on image files (anomaly.h): each letterboxed to the model's
 * input as ingest --size did, scored, and its map written back at the file's own size. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anomaly.h"
#include "anomaly_internal.h"
#include "libcore/base/config.h"
#include "libcore/base/error.h"
#include "libcore/base/fsutil.h"
#include "libcore/base/log.h"
#include "libcore/data/transform.h"
#include "libcore/io/image.h"

enum { AD_MAX_FILE_BYTES = 256 << 20 };
#define AD_MAX_PIXELS 100000000ull /* decompression-bomb guard: 100 megapixels */

/* The file name without folder and extension, as a map's name ("a/b.png" -> "b"). */
static void stem_of(const char *path, char *out, size_t cap) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *dot = strrchr(base, '.');
    size_t len = dot && dot > base ? (size_t)(dot - base) : strlen(base);
    snprintf(out, cap, "%.*s", (int)(len < cap ? len : cap - 1), base);
}

/* The map (input size, over the letterbox canvas) cut to the image's part of the canvas, as grey
 * levels (128 at score `at`, 255 at twice it), resized to the file's size. */
static int map_png(const ad_model *m, const float *map, const lathe_letterbox *plan, const lathe_image *img, float at,
                   uint8_t **png, size_t *len) {
    lathe_image cut = {0}, grey = {0};
    int x0 = (int)lroundf(plan->pad_x), y0 = (int)lroundf(plan->pad_y);
    int rc = lathe_image_alloc(&cut, plan->width, plan->height, 1);
    if (!rc) rc = lathe_image_alloc(&grey, img->width, img->height, 1);
    for (int y = 0; !rc && y < plan->height; y++)
        for (int x = 0; x < plan->width; x++) {
            int sy = y + y0 < m->h ? y + y0 : m->h - 1, sx = x + x0 < m->w ? x + x0 : m->w - 1;
            float v = 128 * map[(size_t)sy * m->w + sx] / at;
            cut.pixels[(size_t)y * plan->width + x] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v + 0.5f);
        }
    if (!rc) rc = lathe_resize_into(&cut, img->width, img->height, 0, grey.pixels, (size_t)img->width);
    if (!rc) rc = lathe_png_encode(&grey, png, len);
    lathe_image_free(&cut), lathe_image_free(&grey);
    return rc;
}

/* Scores one decoded image: its map (m->h x m->w) and score. */
static int score_image(ad_model *m, const lathe_image *img, uint8_t *canvas, float *patch, float *map,
                       lathe_letterbox *plan, float *score) {
    *plan = lathe_letterbox_plan(img->width, img->height, m->w);
    int rc = lathe_letterbox_into(img, plan, m->w, LATHE_LETTERBOX_FILL, 0, canvas);
    if (rc) return rc;
    float *x = lathe_graph_input(m->g, NULL, NULL, NULL);
    size_t hw = (size_t)m->h * m->w;
    for (int c = 0; c < m->c; c++) /* one channel: luma, as the loader gives it */
        for (size_t p = 0; p < hw; p++) {
            const uint8_t *q = canvas + p * 3;
            float v = m->c == 1 ? (0.299f * q[0] + 0.587f * q[1] + 0.114f * q[2]) : q[c];
            x[(size_t)c * hw + p] = (v / 255.0f - m->mean) / m->std;
        }
    rc = ad_features(m, 1);
    if (!rc) rc = ad_patch_scores(m, m->feat, patch);
    if (!rc) *score = ad_map(m, patch, m->h, m->w, map);
    return rc;
}

int lathe_predict_anomaly(const cJSON *spec, const char *checkpoint, const char *const *files, size_t n,
                          const char *out_dir, size_t *skipped) {
    ad_model m;
    memset(&m, 0, sizeof m);
    *skipped = 0;
    int rc = strcmp(lathe_config_str(spec, "anomaly.input", "image"), "image")
                 ? lathe_fail(LATHE_EUNSUPPORTED, "a sensor anomaly run scores a dataset's windows: lathe eval --dataset D")
                 : ad_model_init(&m, spec, NULL);
    if (!rc) rc = ad_model_load(&m, checkpoint);
    if (!rc) rc = ad_model_device(&m, spec);
    if (!rc && m.h != m.w)
        rc = lathe_fail(LATHE_EUNSUPPORTED, "predict letterboxes image files to a square input, not %dx%d", m.w, m.h);
    char path[4400];
    snprintf(path, sizeof path, "%s/maps", out_dir);
    if (!rc) rc = lathe_mkdirs(path);
    uint8_t *canvas = rc ? NULL : malloc((size_t)m.w * m.h * 3);
    float *patch = rc ? NULL : malloc(sizeof(float) * (size_t)m.fh * m.fw), *map = rc ? NULL : malloc(sizeof(float) * (size_t)m.h * m.w);
    if (!rc && (!canvas || !patch || !map)) rc = lathe_fail(LATHE_ENOMEM, "prediction buffers");
    cJSON *out = cJSON_CreateObject(), *images = cJSON_AddArrayToObject(out, "images");
    float at = isfinite(m.threshold) && m.threshold > 0 ? m.threshold : NAN;
    if (isfinite(at)) cJSON_AddNumberToObject(out, "threshold", at);
    else cJSON_AddNullToObject(out, "threshold");
    float *scores = rc ? NULL : malloc(sizeof(float) * (n + 1));
    if (!rc && !scores) rc = lathe_fail(LATHE_ENOMEM, "scores");
    lathe_decode_opts dopt = {.max_pixels = AD_MAX_PIXELS, .channels = 3};
    for (size_t i = 0; !rc && i < n; i++) {
        char *data = NULL;
        size_t len = 0;
        lathe_image img = {0};
        lathe_letterbox plan;
        int r = lathe_read_file(files[i], AD_MAX_FILE_BYTES, &data, &len);
        if (!r) r = lathe_image_decode((const uint8_t *)data, len, &dopt, &img, NULL);
        free(data);
        if (!r) r = score_image(&m, &img, canvas, patch, map, &plan, &scores[i]);
        if (r == -LATHE_ENOMEM || r == -LATHE_EIO) rc = r;
        else if (r) {
            lathe_log(LATHE_LOG_ERROR, "predict.skip", "%s: %s", files[i], lathe_last_error());
            lathe_clear_error();
            scores[i] = NAN, ++*skipped;
        } else {
            char stem[240], rel[300];
            stem_of(files[i], stem, sizeof stem);
            snprintf(rel, sizeof rel, "maps/%zu-%s.png", i, stem); /* unique: a.png and a.jpg both written */
            uint8_t *png = NULL;
            size_t plen = 0;
            rc = map_png(&m, map, &plan, &img, isfinite(at) ? at : 1, &png, &plen);
            snprintf(path, sizeof path, "%s/%s", out_dir, rel);
            if (!rc) rc = lathe_write_atomic(path, png, plen);
            free(png);
            cJSON *o = cJSON_CreateObject();
            cJSON_AddNumberToObject(o, "id", (double)i);
            cJSON_AddStringToObject(o, "file_name", files[i]);
            cJSON_AddNumberToObject(o, "width", img.width);
            cJSON_AddNumberToObject(o, "height", img.height);
            cJSON_AddNumberToObject(o, "score", scores[i]);
            if (isfinite(at)) cJSON_AddBoolToObject(o, "anomalous", scores[i] >= at);
            cJSON_AddStringToObject(o, "map", rel);
            cJSON_AddItemToArray(images, o);
        }
        lathe_image_free(&img);
    }
    snprintf(path, sizeof path, "%s/anomaly.json", out_dir);
    if (!rc) rc = lathe_json_save(path, out);
    cJSON_Delete(out);
    free(canvas), free(patch), free(map), free(scores);
    ad_model_free(&m);
    return rc;
}
