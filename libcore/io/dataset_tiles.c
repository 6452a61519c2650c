/* dataset_tiles.c - what tiled datasets add to the reader (dataset.h): which samples make one source
 * image, and that image put back together from its tiles. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "../base/error.h"
#include "dataset.h"

#define MAX_WHOLE_PIXELS ((uint64_t)1 << 28)

int lathe_dataset_tiled(const lathe_dataset *ds) {
    int tile, overlap;
    lathe_manifest_tiling(lathe_dataset_manifest(ds), &tile, &overlap);
    return tile > 0;
}

static int first_tile(const lathe_meta *m) { return m->tile_x == 0 && m->tile_y == 0; }

int lathe_dataset_image_ids(lathe_dataset *ds, int64_t **out) {
    uint64_t n = lathe_dataset_count(ds);
    int64_t *ids = malloc((n ? n : 1) * sizeof *ids), current = -1;
    if (!(*out = ids)) return lathe_fail(LATHE_ENOMEM, "image ids of %" PRIu64 " samples", n);
    for (uint64_t i = 0; i < n; i++) {
        lathe_dataset_sample s;
        int rc = lathe_dataset_get(ds, i, LATHE_READ_META, &s);
        if (rc) {
            free(ids), *out = NULL;
            return rc;
        }
        if (current < 0 || first_tile(&s.meta)) current = s.meta.image_id >= 0 ? s.meta.image_id : (int64_t)i;
        ids[i] = current;
        lathe_dataset_sample_free(&s);
    }
    return 0;
}

/* Pastes tile t (its pixels at its origin) into the canvas of W x H x C, clipped to it. */
static void paste(const lathe_dataset_sample *t, uint8_t *canvas, int W, int H, int C) {
    int x0 = t->meta.tile_x, y0 = t->meta.tile_y;
    int w = t->width < W - x0 ? t->width : W - x0, h = t->height < H - y0 ? t->height : H - y0;
    for (int y = 0; y < h && w > 0; y++)
        memcpy(canvas + ((size_t)(y0 + y) * W + x0) * C, t->pixels + (size_t)y * t->width * C, (size_t)w * C);
}

int lathe_dataset_get_whole(lathe_dataset *ds, uint64_t i, unsigned what, lathe_dataset_sample *out) {
    int rc = lathe_dataset_get(ds, i, what | LATHE_READ_META, out);
    if (rc || !lathe_dataset_tiled(ds)) return rc;
    lathe_meta *m = &out->meta;
    uint64_t W = (uint64_t)(m->orig_width > 0 ? m->orig_width : 0), H = (uint64_t)(m->orig_height > 0 ? m->orig_height : 0);
    if (!first_tile(m)) rc = lathe_fail(LATHE_EINVAL, "sample %" PRIu64 " is not the first tile of its image", i);
    else if (W == 0 || H == 0 || W * H > MAX_WHOLE_PIXELS)
        rc = lathe_fail(LATHE_ELIMIT, "sample %" PRIu64 ": a source image of %" PRIu64 "x%" PRIu64 " is not put together", i, W, H);
    if (rc || !(what & LATHE_READ_PIXELS) || !out->pixels) {
        if (rc) lathe_dataset_sample_free(out);
        return rc;
    }
    int C = out->channels;
    uint8_t *canvas = calloc(W * H, (size_t)C);
    if (!canvas) {
        lathe_dataset_sample_free(out);
        return lathe_fail(LATHE_ENOMEM, "a %" PRIu64 "x%" PRIu64 " image", W, H);
    }
    paste(out, canvas, (int)W, (int)H, C);
    uint64_t n = lathe_dataset_count(ds);
    for (uint64_t j = i + 1; !rc && j < n; j++) { /* the image's other tiles follow it */
        lathe_dataset_sample t;
        if ((rc = lathe_dataset_get(ds, j, LATHE_READ_PIXELS | LATHE_READ_META, &t))) break;
        int same = !first_tile(&t.meta) && t.meta.source_xxh64 == m->source_xxh64 && t.channels == C;
        if (same) paste(&t, canvas, (int)W, (int)H, C);
        lathe_dataset_sample_free(&t);
        if (!same) break;
    }
    if (rc) {
        free(canvas);
        lathe_dataset_sample_free(out);
        return rc;
    }
    free(out->pixels), free(out->mask); /* a tile's mask is not the image's */
    out->mask = NULL;
    out->pixels = canvas, out->width = (int)W, out->height = (int)H;
    m->tile_x = m->tile_y = 0, m->scale_x = m->scale_y = 1, m->pad_x = m->pad_y = 0;
    return 0;
}
