/* det_loader.c - detection batches with on-the-fly augmentation (det_loader.h).
 *
 * An item is drawn on a canvas, then mapped to the output by one affine transform:
 *   plain:  the canvas is the letterboxed input frame (W x H), one image scaled by r and padded;
 *   mosaic: the canvas is 2W x 2H, four images scaled by r meet at a random centre (xc, yc), each
 *           in its quadrant, and the output looks at the canvas middle.
 * output = S Q (canvas - canvas centre) + output centre + T, with S = scale (an axis negated on a
 * flip) and Q the identity or, for a quarter turn, the swap of x and y (a turn is a swap and one
 * flip). Pixels are pulled through the inverse, so every output pixel is computed once. */
#include "det_loader.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "libcore/base/error.h"
#include "libcore/base/rng.h"
#include "libcore/io/shard.h"
#include "order.h"

struct lathe_det_loader {
    lathe_dataset *ds;
    lathe_det_loader_opts o;
    lathe_split_order split; /* the split's samples and the epoch's order (shuffled when augmenting) */
    int sw, sh;              /* stored image size */
    float r;                 /* stored -> input scale of the letterbox */
};

enum { GRAY = 114, MAX_TILES = 4 };

typedef struct {
    uint64_t sample;
    double off_x, off_y;          /* canvas = stored * r + off */
    double x0, y0, x1, y1;        /* the part of the canvas the tile covers */
} tile;

typedef struct {
    int ntiles, mosaic;
    tile t[MAX_TILES];
    double xc, yc;                /* mosaic centre */
    double cw, ch;                /* canvas size */
    double sx, sy, tx, ty;        /* output = (sx, sy) * Q (canvas - canvas centre) + output centre + (tx, ty) */
    int swap;                     /* Q swaps x and y (a quarter turn, with one of sx, sy negated) */
    float gh, gs, gv;             /* HSV gains */
} plan;

void lathe_det_loader_defaults(lathe_det_loader_opts *o) {
    memset(o, 0, sizeof *o);
    o->split = LATHE_SPLIT_TRAIN, o->std = 1;
    o->flip = 0.5f, o->scale = 0.5f, o->translate = 0.1f;
    o->hsv_h = 0.015f, o->hsv_s = 0.7f, o->hsv_v = 0.4f;
    o->mosaic = 1, o->mosaic_epochs = -1, o->background = 1;
}

int lathe_det_batch_init(lathe_det_batch *b, int cap, int h, int w) {
    memset(b, 0, sizeof *b);
    b->cap = cap, b->box_cap = (size_t)cap * 16;
    b->x = malloc((size_t)cap * 3 * h * w * sizeof *b->x);
    b->boxes = malloc(b->box_cap * 4 * sizeof *b->boxes);
    b->labels = malloc(b->box_cap * sizeof *b->labels);
    b->offsets = calloc((size_t)cap + 1, sizeof *b->offsets);
    b->samples = calloc((size_t)cap, sizeof *b->samples);
    if (b->x && b->boxes && b->labels && b->offsets && b->samples) return 0;
    lathe_det_batch_free(b);
    return lathe_fail(LATHE_ENOMEM, "a detection batch of %d images", cap);
}

void lathe_det_batch_free(lathe_det_batch *b) {
    free(b->x), free(b->boxes), free(b->labels), free(b->offsets), free(b->samples);
    memset(b, 0, sizeof *b);
}

int lathe_det_loader_create(lathe_dataset *ds, const lathe_det_loader_opts *o, lathe_det_loader **out) {
    *out = NULL;
    const lathe_manifest *m = lathe_dataset_manifest(ds);
    if (m->store != LATHE_STORE_PIXELS) return lathe_fail(LATHE_EINVAL, "training reads a pixels-store dataset");
    if (m->channels != 3) return lathe_fail(LATHE_EINVAL, "a detector reads RGB images, not %d channels", m->channels);
    if (o->h < 8 || o->w < 8 || !(o->std > 0) || !(o->flip >= 0 && o->flip <= 1) || !(o->mosaic >= 0 && o->mosaic <= 1) ||
        !(o->flipud >= 0 && o->flipud <= 1) || !(o->rotate90 >= 0 && o->rotate90 <= 1) ||
        !(o->scale >= 0 && o->scale < 1) || !(o->translate >= 0 && o->translate < 0.5f) || !(o->hsv_h >= 0 && o->hsv_h <= 0.5f) ||
        !(o->hsv_s >= 0 && o->hsv_s <= 1) || !(o->hsv_v >= 0 && o->hsv_v <= 1))
        return lathe_fail(LATHE_EINVAL, "detection loader: input of at least 8x8; flip, flipud, rotate90 and mosaic in "
                                        "[0, 1], scale in [0, 1), translate in [0, 0.5), hsv_h in [0, 0.5], hsv_s and "
                                        "hsv_v in [0, 1]");
    lathe_det_loader *l = calloc(1, sizeof *l);
    if (!l) return lathe_fail(LATHE_ENOMEM, "detection loader");
    l->ds = ds, l->o = *o, l->sw = m->width, l->sh = m->height;
    l->r = fminf((float)o->w / (float)l->sw, (float)o->h / (float)l->sh);
    int rc = lathe_split_order_init(&l->split, ds, o->split, 0, 0, o->seed, o->augment);
    if (!rc && o->augment) rc = lathe_split_order_sample_background(&l->split, ds, o->background);
    if (rc) {
        lathe_det_loader_free(l);
        return rc;
    }
    if (!l->split.n) {
        lathe_det_loader_free(l);
        return lathe_fail(LATHE_EINVAL, "the %s split has no sample", lathe_split_name(o->split));
    }
    *out = l;
    return 0;
}

void lathe_det_loader_free(lathe_det_loader *l) {
    if (!l) return;
    lathe_split_order_free(&l->split);
    free(l);
}

uint64_t lathe_det_loader_size(const lathe_det_loader *l) { return l->split.n; }

void lathe_det_loader_letterbox(const lathe_det_loader *l, float *scale, float *pad_x, float *pad_y) {
    *scale = l->r;
    *pad_x = (float)((l->o.w - l->sw * (double)l->r) / 2), *pad_y = (float)((l->o.h - l->sh * (double)l->r) / 2);
}

static double uniform(uint64_t *s, double a, double b) { return a + (b - a) * lathe_rng_unit(s); }

/* Decides an item: which images, where, and the transform (the split's order holds epoch's). */
/* One image letterboxed to the input, nothing else (what evaluation sees). */
static void plain_plan(const lathe_det_loader *l, uint64_t sample, plan *p) {
    double W = l->o.w, H = l->o.h, iw = l->sw * l->r, ih = l->sh * l->r;
    memset(p, 0, sizeof *p);
    p->sx = p->sy = 1, p->gs = p->gv = 1;
    p->ntiles = 1, p->cw = W, p->ch = H;
    tile *t = &p->t[0];
    t->sample = sample, t->off_x = (W - iw) / 2, t->off_y = (H - ih) / 2;
    t->x0 = t->off_x, t->y0 = t->off_y, t->x1 = t->off_x + iw, t->y1 = t->off_y + ih;
}

static void make_plan(const lathe_det_loader *l, int epoch, uint64_t pos, plan *p) {
    const lathe_det_loader_opts *o = &l->o;
    double W = o->w, H = o->h, r = l->r, iw = l->sw * r, ih = l->sh * r;
    uint64_t s = lathe_mix64(o->seed ^ lathe_mix64((uint64_t)epoch * 0x1000003ull + pos + 11));
    uint64_t first = l->split.index[l->split.order[pos]];
    plain_plan(l, first, p);
    int mosaic_on = o->augment && (o->mosaic_epochs < 0 || epoch < o->mosaic_epochs);
    p->mosaic = mosaic_on && lathe_rng_unit(&s) < o->mosaic;
    if (p->mosaic) {
        p->ntiles = 4, p->cw = 2 * W, p->ch = 2 * H;
        p->xc = uniform(&s, 0.5 * W, 1.5 * W), p->yc = uniform(&s, 0.5 * H, 1.5 * H);
        for (int k = 0; k < 4; k++) {
            tile *t = &p->t[k];
            uint64_t n = l->split.n;
            t->sample = k == 0 ? first : l->split.index[(uint64_t)(lathe_rng_unit(&s) * (double)n) % n];
            int right = k & 1, below = k >> 1; /* quadrant of the centre the image sits in */
            t->off_x = right ? p->xc : p->xc - iw, t->off_y = below ? p->yc : p->yc - ih;
            t->x0 = fmax(right ? p->xc : 0, t->off_x), t->x1 = fmin(right ? p->cw : p->xc, t->off_x + iw);
            t->y0 = fmax(below ? p->yc : 0, t->off_y), t->y1 = fmin(below ? p->ch : p->yc, t->off_y + ih);
        }
    }
    if (o->augment) {
        double sc = uniform(&s, 1 - o->scale, 1 + o->scale);
        int flip = lathe_rng_unit(&s) < o->flip;
        p->sx = flip ? -sc : sc, p->sy = sc;
        p->tx = uniform(&s, -o->translate, o->translate) * W, p->ty = uniform(&s, -o->translate, o->translate) * H;
        p->gh = (float)uniform(&s, -o->hsv_h, o->hsv_h);
        p->gs = (float)uniform(&s, 1 - o->hsv_s, 1 + o->hsv_s), p->gv = (float)uniform(&s, 1 - o->hsv_v, 1 + o->hsv_v);
        /* drawn last, and only when asked for, so that runs without them keep their plans */
        if (o->flipud > 0 && lathe_rng_unit(&s) < o->flipud) p->sy = -p->sy;
        if (o->rotate90 > 0 && lathe_rng_unit(&s) < o->rotate90) {
            p->swap = 1; /* a swap and one flip: a quarter turn, either way at random */
            if (lathe_rng_unit(&s) < 0.5) p->sx = -p->sx;
            else p->sy = -p->sy;
        }
    }
}

static void to_output(const lathe_det_loader *l, const plan *p, double cx, double cy, double *ox, double *oy) {
    double u = cx - p->cw / 2, v = cy - p->ch / 2;
    *ox = p->sx * (p->swap ? v : u) + l->o.w / 2.0 + p->tx;
    *oy = p->sy * (p->swap ? u : v) + l->o.h / 2.0 + p->ty;
}

/* Bilinear sample of channel values at stored coordinates (x, y) (pixel centres at +0.5). */
static void bilinear(const uint8_t *img, int sw, int sh, double x, double y, float rgb[3]) {
    x -= 0.5, y -= 0.5;
    int xa = (int)floor(x), ya = (int)floor(y);
    double fx = x - xa, fy = y - ya;
    int xb = xa + 1 < sw ? xa + 1 : sw - 1, yb = ya + 1 < sh ? ya + 1 : sh - 1;
    xa = xa < 0 ? 0 : xa, ya = ya < 0 ? 0 : ya;
    const uint8_t *p00 = img + ((size_t)ya * sw + xa) * 3, *p01 = img + ((size_t)ya * sw + xb) * 3;
    const uint8_t *p10 = img + ((size_t)yb * sw + xa) * 3, *p11 = img + ((size_t)yb * sw + xb) * 3;
    for (int c = 0; c < 3; c++)
        rgb[c] = (float)((1 - fy) * ((1 - fx) * p00[c] + fx * p01[c]) + fy * ((1 - fx) * p10[c] + fx * p11[c]));
}

/* Hue rotation, saturation and value gains through HSV, on 0..255 values. */
static void hsv_jitter(float rgb[3], float gh, float gs, float gv) {
    float r = rgb[0], g = rgb[1], b = rgb[2];
    float mx = fmaxf(r, fmaxf(g, b)), mn = fminf(r, fminf(g, b)), d = mx - mn;
    float h = 0;
    if (d > 0) {
        h = mx == r ? (g - b) / d : mx == g ? 2 + (b - r) / d : 4 + (r - g) / d;
        h /= 6;
    }
    float s = mx > 0 ? d / mx : 0, v = mx;
    h += gh, h -= floorf(h);
    s = fminf(1, s * gs), v = fminf(255, v * gv);
    float hh = h * 6, f = hh - floorf(hh);
    float p = v * (1 - s), q = v * (1 - s * f), t = v * (1 - s * (1 - f));
    switch ((int)hh % 6) {
    case 0: rgb[0] = v, rgb[1] = t, rgb[2] = p; break;
    case 1: rgb[0] = q, rgb[1] = v, rgb[2] = p; break;
    case 2: rgb[0] = p, rgb[1] = v, rgb[2] = t; break;
    case 3: rgb[0] = p, rgb[1] = q, rgb[2] = v; break;
    case 4: rgb[0] = t, rgb[1] = p, rgb[2] = v; break;
    default: rgb[0] = v, rgb[1] = p, rgb[2] = q; break;
    }
}

static void render(const lathe_det_loader *l, const plan *p, uint8_t *const *img, float *dst) {
    int W = l->o.w, H = l->o.h;
    double r = l->r;
    int jitter = p->gh != 0 || p->gs != 1 || p->gv != 1;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            double a = (x + 0.5 - W / 2.0 - p->tx) / p->sx, b = (y + 0.5 - H / 2.0 - p->ty) / p->sy;
            double cx = (p->swap ? b : a) + p->cw / 2, cy = (p->swap ? a : b) + p->ch / 2;
            float rgb[3] = {GRAY, GRAY, GRAY};
            for (int k = 0; k < p->ntiles; k++) {
                const tile *t = &p->t[k];
                if (cx >= t->x0 && cx < t->x1 && cy >= t->y0 && cy < t->y1) {
                    bilinear(img[k], l->sw, l->sh, (cx - t->off_x) / r, (cy - t->off_y) / r, rgb);
                    break;
                }
            }
            if (jitter) hsv_jitter(rgb, p->gh, p->gs, p->gv);
            for (int c = 0; c < 3; c++)
                dst[((size_t)c * H + y) * W + x] = (rgb[c] / 255.0f - l->o.mean) / l->o.std;
        }
}

/* The item's boxes through the plan: appended to *out (5 floats each: box and label), count returned. */
static int place_boxes(const lathe_det_loader *l, const plan *p, const lathe_dataset_sample *s, const tile *t,
                       float *out) {
    int kept = 0;
    double r = l->r;
    for (size_t i = 0; i < s->nboxes; i++) {
        const lathe_box *b = &s->boxes[i];
        if (b->flags & (LATHE_BOX_CROWD | LATHE_BOX_IGNORE)) continue;
        double x0 = b->x1 * r + t->off_x, y0 = b->y1 * r + t->off_y, x1 = b->x2 * r + t->off_x, y1 = b->y2 * r + t->off_y;
        double before = (x1 - x0) * (y1 - y0) * fabs(p->sx * p->sy);
        x0 = fmax(x0, t->x0), y0 = fmax(y0, t->y0), x1 = fmin(x1, t->x1), y1 = fmin(y1, t->y1);
        if (!(x1 > x0 && y1 > y0)) continue; /* nothing of it on the tile (NaN coordinates too) */
        double ax, ay, bx, by;
        to_output(l, p, x0, y0, &ax, &ay);
        to_output(l, p, x1, y1, &bx, &by);
        double ox0 = fmax(0, fmin(ax, bx)), ox1 = fmin(l->o.w, fmax(ax, bx));
        double oy0 = fmax(0, fmin(ay, by)), oy1 = fmin(l->o.h, fmax(ay, by));
        double w = ox1 - ox0, h = oy1 - oy0;
        if (w < 2 || h < 2 || w * h < 0.1 * before) continue;
        float *o = out + 5 * kept++;
        o[0] = (float)ox0, o[1] = (float)oy0, o[2] = (float)ox1, o[3] = (float)oy1, o[4] = (float)b->label;
    }
    return kept;
}

/* One item as plan p says: pixels into dst, boxes into a new array (*boxes, 5 floats each). */
static int make_item(lathe_det_loader *l, const plan *p, uint8_t *const *img, size_t frame, float *dst, float **boxes,
                     int *nboxes, uint64_t *sample) {
    *sample = p->t[0].sample, *boxes = NULL, *nboxes = 0;
    lathe_dataset_sample s[MAX_TILES];
    memset(s, 0, sizeof s);
    size_t total = 0;
    int rc = 0;
    for (int k = 0; k < p->ntiles && !rc; k++) {
        rc = lathe_dataset_get(l->ds, p->t[k].sample, LATHE_READ_BOXES, &s[k]);
        if (!rc) rc = lathe_dataset_read_pixels(l->ds, p->t[k].sample, img[k], frame);
        total += s[k].nboxes;
    }
    if (!rc && total && !(*boxes = malloc(total * 5 * sizeof **boxes))) rc = lathe_fail(LATHE_ENOMEM, "boxes of an item");
    for (int k = 0; k < p->ntiles && !rc && *boxes; k++) *nboxes += place_boxes(l, p, &s[k], &p->t[k], *boxes + 5 * *nboxes);
    for (int k = 0; k < p->ntiles; k++) lathe_dataset_sample_free(&s[k]);
    if (!rc) render(l, p, img, dst);
    return rc;
}

static int gather(lathe_det_batch *b, int n, float **items, const int *counts) {
    size_t total = 0;
    for (int i = 0; i < n; i++) total += (size_t)counts[i];
    if (total > b->box_cap) {
        float *bx = realloc(b->boxes, total * 4 * sizeof *bx);
        if (bx) b->boxes = bx;
        int32_t *lb = bx ? realloc(b->labels, total * sizeof *lb) : NULL;
        if (!lb) return lathe_fail(LATHE_ENOMEM, "boxes of a batch");
        b->labels = lb, b->box_cap = total;
    }
    b->nboxes = 0;
    for (int i = 0; i < n; i++) {
        b->offsets[i] = (int)b->nboxes;
        for (int j = 0; j < counts[i]; j++, b->nboxes++) {
            memcpy(b->boxes + 4 * b->nboxes, items[i] + 5 * j, 4 * sizeof(float));
            b->labels[b->nboxes] = (int32_t)items[i][5 * j + 4];
        }
    }
    b->offsets[n] = (int)b->nboxes;
    b->n = n;
    return 0;
}

/* Items [first, first + n) of epoch's order, or (samples not NULL) those samples plain, into b. */
static int load_items(lathe_det_loader *l, int epoch, uint64_t first, const uint64_t *samples, int n, lathe_det_batch *b) {
    size_t frame = (size_t)l->sw * l->sh * 3, per = (size_t)3 * l->o.h * l->o.w;
    float **items = calloc((size_t)n + 1, sizeof *items);
    int *counts = calloc((size_t)n + 1, sizeof *counts), failed = 0;
    char why[256] = ""; /* the first failure's message, from the worker thread that met it */
    if (!items || !counts) {
        free(items), free(counts);
        return lathe_fail(LATHE_ENOMEM, "a detection batch");
    }
#pragma omp parallel
    {
        uint8_t *img[MAX_TILES] = {0};
        int ok = 1;
        for (int k = 0; k < MAX_TILES; k++) ok &= (img[k] = malloc(frame)) != NULL;
#pragma omp for schedule(dynamic, 1)
        for (int i = 0; i < n; i++) {
            plan p;
            if (samples) plain_plan(l, samples[i], &p);
            else make_plan(l, epoch, first + (uint64_t)i, &p);
            int rc = ok ? make_item(l, &p, img, frame, b->x + (size_t)i * per, &items[i], &counts[i], &b->samples[i])
                        : lathe_fail(LATHE_ENOMEM, "image buffers");
            if (rc) {
#pragma omp critical(det_loader_failure)
                if (!failed) failed = -rc, snprintf(why, sizeof why, "%s", lathe_last_error());
            }
        }
        for (int k = 0; k < MAX_TILES; k++) free(img[k]);
    }
    int rc = failed ? lathe_fail(failed, "a detection batch of epoch %d: %s", epoch, why) : gather(b, n, items, counts);
    for (int i = 0; i < n; i++) free(items[i]);
    free(items), free(counts);
    return rc ? rc : n;
}

int lathe_det_loader_batch(lathe_det_loader *l, int epoch, uint64_t first, int n, lathe_det_batch *b) {
    /* epoch -1 would match the split order's "no order yet"; a negative n would pass the clip below */
    if (epoch < 0 || n < 0) return lathe_fail(LATHE_EINVAL, "detection batch: epoch %d, %d items", epoch, n);
    if (first >= l->split.n) return 0;
    if ((uint64_t)n > l->split.n - first) n = (int)(l->split.n - first);
    if (n > b->cap) n = b->cap;
    lathe_split_order_epoch(&l->split, epoch);
    return load_items(l, epoch, first, NULL, n, b);
}

int lathe_det_loader_samples(lathe_det_loader *l, const uint64_t *samples, int n, lathe_det_batch *b) {
    uint64_t count = lathe_dataset_count(l->ds);
    if (n < 0 || n > b->cap) return lathe_fail(LATHE_EINVAL, "detection batch: %d items for %d places", n, b->cap);
    for (int i = 0; i < n; i++)
        if (samples[i] >= count) return lathe_fail(LATHE_EINVAL, "sample %llu of %llu", (unsigned long long)samples[i], (unsigned long long)count);
    return n ? load_items(l, 0, 0, samples, n, b) : 0;
}

uint64_t lathe_det_loader_background(const lathe_det_loader *l, const uint64_t **samples, uint64_t *draw) {
    *samples = l->split.all_empty;
    *draw = l->split.all_empty ? l->split.n - l->split.nboxed : 0;
    return l->split.all_empty ? l->split.nempty : 0;
}

int lathe_det_loader_prefer_background(lathe_det_loader *l, const uint64_t *samples, uint64_t n) {
    return lathe_split_order_prefer_background(&l->split, samples, n);
}
