/* ingest_work.c - what a worker does with one image: decode (at the reduced JPEG scale the target
 * allows), check labels and sidecars, letterbox or tile, hash, and zstd-compress the stored pixels.
 * Any problem with the input rejects the candidate with a reason; nothing here touches HDF5. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>
#include <zstd.h>

#include "../base/error.h"
#include "../base/utf8.h"
#include "ingest_internal.h"
#include "transform.h"

#define MAX_TILES 4096

void ingest_result_free(ingest_result *r) {
    for (int t = 0; t < r->ntiles; t++) {
        free(r->tiles[t].image_chunk);
        free(r->tiles[t].mask_chunk);
        free(r->tiles[t].boxes);
    }
    free(r->tiles);
    free(r->source_boxes);
    free(r->sensors);
    free(r->text);
    free(r->job.path);
    free(r->job.data);
    memset(r, 0, sizeof *r);
}

static int reject(ingest_ctx *c, ingest_result *r, const char *reason, const char *detail) {
    ingest_reject(c, r->job.entry, r->job.path, reason, r->job.split, (int64_t)r->job.pos, -1, "%s", detail);
    r->rejected = 1;
    return 0;
}

static const char *decode_reason(int rc, size_t len) {
    if (len == 0) return "empty_file";
    switch (-rc) {
    case LATHE_ELIMIT: return "too_many_pixels";
    case LATHE_EUNSUPPORTED: return "unsupported_format";
    default: return "corrupt_image";
    }
}

static int compress(void *cctx, const uint8_t *src, size_t n, int level, uint8_t **out, size_t *len) {
    size_t bound = ZSTD_compressBound(n);
    *out = malloc(bound);
    if (!*out) return lathe_fail(LATHE_ENOMEM, "chunk of %zu bytes", bound);
    /* one frame with its content size (what hdf5plugin needs) and a checksum (so the reader and
     * verify catch a flipped bit instead of returning wrong pixels) */
    ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, level);
    ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1);
    size_t got = ZSTD_compress2(cctx, *out, bound, src, n);
    if (ZSTD_isError(got)) {
        free(*out);
        *out = NULL;
        return lathe_fail(LATHE_EIO, "zstd: %s", ZSTD_getErrorName(got));
    }
    /* the chunk waits in the writer queue: keep only what it needs, not the worst-case bound */
    uint8_t *fit = realloc(*out, got ? got : 1);
    if (fit) *out = fit;
    *len = got;
    return 0;
}

/* Source-pixel boxes after --box-policy; 1 when the sample is rejected. */
static int check_boxes(ingest_ctx *c, ingest_result *r, int W, int H, lathe_box **out, size_t *nout) {
    const lathe_record *rec = r->job.rec;
    *out = malloc((rec->nboxes ? rec->nboxes : 1) * sizeof **out);
    *nout = 0;
    if (!*out) return lathe_fail(LATHE_ENOMEM, "boxes");
    int clip = c->o->box_policy == LATHE_BOX_CLIP;
    for (size_t i = 0; i < rec->nboxes; i++) {
        lathe_box b = rec->boxes[i];
        if (rec->normalized) b.x1 *= W, b.x2 *= W, b.y1 *= H, b.y2 *= H;
        char detail[200];
        snprintf(detail, sizeof detail, "box %zu (id %lld) [%g %g %g %g] in a %dx%d image", i, (long long)b.id, b.x1,
                 b.y1, b.x2, b.y2, W, H);
        if (!(b.x2 > b.x1 && b.y2 > b.y1)) {
            if (!clip) return reject(c, r, "box_negative_size", detail), 1;
            ingest_reject(c, r->job.entry, r->job.path, "box_negative_size", r->job.split, (int64_t)r->job.pos, (int)i,
                          "%s: box dropped", detail);
            continue;
        }
        if (b.x1 < 0 || b.y1 < 0 || b.x2 > W || b.y2 > H) {
            if (!clip) return reject(c, r, "box_outside_image", detail), 1;
            b.x1 = fmaxf(b.x1, 0), b.y1 = fmaxf(b.y1, 0), b.x2 = fminf(b.x2, (float)W), b.y2 = fminf(b.y2, (float)H);
            if (!(b.x2 > b.x1 && b.y2 > b.y1)) {
                ingest_reject(c, r->job.entry, r->job.path, "box_outside_image", r->job.split, (int64_t)r->job.pos,
                              (int)i, "%s: nothing left after clipping, box dropped", detail);
                continue;
            }
        }
        (*out)[(*nout)++] = b;
    }
    return 0;
}

/* Sensors, text and mask of the candidate; 1 when the sample is rejected. */
static int load_sidecars(ingest_ctx *c, ingest_result *r, lathe_image *mask, int W, int H) {
    spool_ref ref;
    uint8_t *data = NULL;
    int rc;
    if (c->sensors.channels && ingest_sidecar_find(c, 's', r->job.path, &ref)) {
        if ((rc = ingest_spool_read(c, ref, &data))) return rc;
        size_t n = (size_t)c->sensors.steps * c->sensors.channels;
        int nans = 0;
        r->sensors = malloc(n * sizeof(float));
        if (!r->sensors) rc = lathe_fail(LATHE_ENOMEM, "sensor window");
        else if (lathe_sensors_parse((const char *)data, ref.len, &c->sensors, r->sensors, &nans))
            rc = reject(c, r, "bad_sensor_csv", lathe_last_error()) + 1;
        else if (nans && c->o->reject_nan_sensors)
            rc = reject(c, r, "nan_sensor_values", "the sensor window holds NaN (--sensor-nan reject)") + 1;
        free(data);
        if (rc) return rc;
    }
    const char *text = r->job.rec->text;
    data = NULL;
    if (ingest_sidecar_find(c, 't', r->job.path, &ref)) {
        if ((rc = ingest_spool_read(c, ref, &data))) return rc;
        size_t n = ref.len;
        while (n && (data[n - 1] == '\n' || data[n - 1] == '\r')) data[--n] = 0;
        text = (const char *)data;
    }
    if (text && !lathe_utf8_valid(text, strlen(text))) {
        free(data);
        return reject(c, r, "bad_text_encoding", "the description is not valid UTF-8"), 1;
    }
    if (text && !(r->text = strdup(text))) rc = lathe_fail(LATHE_ENOMEM, "text");
    free(data);
    if (rc) return rc;
    if (c->has_masks && r->job.rec->mask_file && ingest_sidecar_find(c, 'm', r->job.rec->mask_file, &ref)) {
        if ((rc = ingest_spool_read(c, ref, &data))) return rc;
        lathe_decode_opts mo = {.max_pixels = c->o->max_pixels, .channels = 1};
        if (lathe_image_decode(data, ref.len, &mo, mask, NULL)) rc = reject(c, r, "corrupt_mask", lathe_last_error()) + 1;
        else if (mask->width != W || mask->height != H) {
            char detail[160];
            snprintf(detail, sizeof detail, "mask is %dx%d, image is %dx%d", mask->width, mask->height, W, H);
            rc = reject(c, r, "mask_size_mismatch", detail) + 1;
        }
        free(data);
    }
    return rc;
}

static void fill_meta(const ingest_ctx *c, const ingest_result *r, const lathe_image_info *info, uint64_t phash,
                      lathe_meta *m) {
    (void)c;
    memset(m, 0, sizeof *m);
    m->source = r->job.path;
    m->image_id = r->job.rec->image_id;
    m->orig_width = info->width;
    m->orig_height = info->height;
    m->scale_x = m->scale_y = 1;
    m->source_xxh64 = XXH64(r->job.data, r->job.len, 0);
    m->phash = phash;
    m->split = (uint8_t)r->job.split;
    m->orientation = (uint8_t)info->orientation;
}

static int letterbox_sample(ingest_ctx *c, void *cctx, ingest_result *r, const lathe_image *img,
                            const lathe_image *mask, const lathe_image_info *info, lathe_box *boxes, size_t nboxes,
                            uint64_t phash) {
    int S = c->o->size;
    lathe_letterbox plan = lathe_letterbox_plan(info->width, info->height, S);
    ingest_tile *t = &r->tiles[0];
    uint8_t *canvas = malloc((size_t)S * S * 3);
    if (!canvas) return lathe_fail(LATHE_ENOMEM, "letterbox canvas");
    int rc = lathe_letterbox_into(img, &plan, S, LATHE_LETTERBOX_FILL, 0, canvas);
    if (!rc) rc = compress(cctx, canvas, (size_t)S * S * 3, c->o->zstd_level, &t->image_chunk, &t->image_len);
    if (!rc && mask->pixels) {
        rc = lathe_letterbox_into(mask, &plan, S, 0, 1, canvas);
        if (!rc) rc = compress(cctx, canvas, (size_t)S * S, c->o->zstd_level, &t->mask_chunk, &t->mask_len);
    }
    free(canvas);
    if (rc) return rc;
    for (size_t i = 0; i < nboxes; i++) {
        lathe_box *b = &boxes[i];
        b->x1 = b->x1 * plan.scale_x + plan.pad_x, b->x2 = b->x2 * plan.scale_x + plan.pad_x;
        b->y1 = b->y1 * plan.scale_y + plan.pad_y, b->y2 = b->y2 * plan.scale_y + plan.pad_y;
    }
    t->boxes = boxes;
    t->nboxes = nboxes;
    fill_meta(c, r, info, phash, &t->meta);
    t->meta.scale_x = plan.scale_x, t->meta.scale_y = plan.scale_y;
    t->meta.pad_x = plan.pad_x, t->meta.pad_y = plan.pad_y;
    r->ntiles = 1;
    return 0;
}

/* The boxes of one tile: clipped, kept when min_visibility of their area shows. */
static int tile_boxes(const ingest_ctx *c, const lathe_box *boxes, size_t n, int x0, int y0, int T, ingest_tile *t) {
    t->boxes = malloc((n ? n : 1) * sizeof *t->boxes);
    if (!t->boxes) return lathe_fail(LATHE_ENOMEM, "tile boxes");
    for (size_t i = 0; i < n; i++) {
        lathe_box b = boxes[i];
        float area = (b.x2 - b.x1) * (b.y2 - b.y1);
        b.x1 = fmaxf(b.x1 - x0, 0), b.y1 = fmaxf(b.y1 - y0, 0);
        b.x2 = fminf(b.x2 - x0, (float)T), b.y2 = fminf(b.y2 - y0, (float)T);
        if (b.x2 - b.x1 < 1 || b.y2 - b.y1 < 1) continue;
        if ((b.x2 - b.x1) * (b.y2 - b.y1) < c->o->min_visibility * area) continue; /* a sliver */
        t->boxes[t->nboxes++] = b;
    }
    return 0;
}

static int tile_samples(ingest_ctx *c, void *cctx, ingest_result *r, const lathe_image *img, const lathe_image *mask,
                        const lathe_image_info *info, lathe_box *boxes, size_t nboxes, uint64_t phash) {
    int T = c->o->tile, xs[MAX_TILES], ys[MAX_TILES];
    int nx = lathe_tile_origins(img->width, T, c->o->overlap, xs, MAX_TILES);
    int ny = lathe_tile_origins(img->height, T, c->o->overlap, ys, MAX_TILES);
    if (nx > MAX_TILES || ny > MAX_TILES || (int64_t)nx * ny > MAX_TILES) {
        free(boxes);
        return reject(c, r, "too_many_tiles", "the image would make more than 4096 tiles");
    }
    r->tiles = calloc((size_t)nx * ny, sizeof *r->tiles);
    uint8_t *buf = malloc((size_t)T * T * 3);
    int rc = r->tiles && buf ? 0 : lathe_fail(LATHE_ENOMEM, "tiles");
    for (int j = 0; !rc && j < ny; j++) {
        for (int i = 0; !rc && i < nx; i++) {
            ingest_tile *t = &r->tiles[r->ntiles++];
            lathe_tile_copy(img, xs[i], ys[j], T, LATHE_LETTERBOX_FILL, buf);
            rc = compress(cctx, buf, (size_t)T * T * 3, c->o->zstd_level, &t->image_chunk, &t->image_len);
            if (!rc && mask->pixels) {
                lathe_tile_copy(mask, xs[i], ys[j], T, 0, buf);
                rc = compress(cctx, buf, (size_t)T * T, c->o->zstd_level, &t->mask_chunk, &t->mask_len);
            }
            if (!rc) rc = tile_boxes(c, boxes, nboxes, xs[i], ys[j], T, t);
            fill_meta(c, r, info, phash, &t->meta);
            t->meta.tile_x = xs[i], t->meta.tile_y = ys[j];
        }
    }
    free(buf);
    r->source_boxes = boxes, r->nsource_boxes = nboxes; /* whole, for evaluation on source images */
    return rc;
}

int ingest_process(ingest_ctx *c, void *cctx, ingest_result *r) {
    const lathe_ingest_opts *o = c->o;
    lathe_image img = {0}, mask = {0};
    lathe_image_info info;
    lathe_decode_opts opts = {.max_pixels = o->max_pixels, .channels = 3};
    int rc = 0;
    r->label = r->job.rec->label;
    if (r->job.len == 0) return reject(c, r, "empty_file", "the image file is empty");
    if (lathe_image_probe(r->job.data, r->job.len, &info))
        return reject(c, r, decode_reason(lathe_image_probe(r->job.data, r->job.len, &info), r->job.len), lathe_last_error());
    if (o->store == LATHE_STORE_PIXELS && !o->tile) {
        lathe_letterbox plan = lathe_letterbox_plan(info.width, info.height, o->size);
        opts.min_width = plan.width, opts.min_height = plan.height;
    } else if (o->store == LATHE_STORE_ENCODED) {
        opts.min_width = opts.min_height = 64; /* a full entropy decode at 1/8 scale still finds damage */
    }
    if ((rc = lathe_image_decode(r->job.data, r->job.len, &opts, &img, &info)))
        return reject(c, r, decode_reason(rc, r->job.len), lathe_last_error());
    const lathe_record *rec = r->job.rec;
    int W = info.width, H = info.height;
    lathe_box *boxes = NULL;
    size_t nboxes = 0;
    if (rec->width && (rec->width != W || rec->height != H)) {
        char detail[160];
        snprintf(detail, sizeof detail, "labels say %dx%d, the image is %dx%d", rec->width, rec->height, W, H);
        reject(c, r, "size_mismatch", detail);
    } else if ((rc = check_boxes(c, r, W, H, &boxes, &nboxes)) == 0 && !r->rejected) {
        rc = load_sidecars(c, r, &mask, W, H);
        if (rc > 0) rc = 0;
    }
    if (rc || r->rejected) {
        free(boxes);
        lathe_image_free(&img);
        lathe_image_free(&mask);
        return rc < 0 ? rc : 0;
    }
    uint64_t phash = lathe_dhash(&img);
    if (o->store == LATHE_STORE_PIXELS && o->tile) {
        rc = tile_samples(c, cctx, r, &img, &mask, &info, boxes, nboxes, phash);
    } else {
        r->tiles = calloc(1, sizeof *r->tiles);
        if (!r->tiles) rc = lathe_fail(LATHE_ENOMEM, "sample");
        else if (o->store == LATHE_STORE_PIXELS) rc = letterbox_sample(c, cctx, r, &img, &mask, &info, boxes, nboxes, phash);
        else {
            r->tiles[0].boxes = boxes, r->tiles[0].nboxes = nboxes;
            fill_meta(c, r, &info, phash, &r->tiles[0].meta);
            r->ntiles = 1;
        }
        if (rc) free(boxes);
    }
    lathe_image_free(&img);
    lathe_image_free(&mask);
    return rc;
}
