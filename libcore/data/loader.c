/* loader.c - classification batches (loader.h). */
#include "loader.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "libcore/base/error.h"
#include "libcore/base/rng.h"
#include "order.h"
#include "libcore/io/shard.h"

struct lathe_loader {
    lathe_dataset *ds;
    lathe_loader_opts o;
    lathe_split_order split; /* the split's labelled samples and the epoch's order */
    int sw, sh;              /* stored image size */
};

int lathe_loader_create(lathe_dataset *ds, const lathe_loader_opts *o, lathe_loader **out) {
    *out = NULL;
    const lathe_manifest *m = lathe_dataset_manifest(ds);
    if (m->store != LATHE_STORE_PIXELS) return lathe_fail(LATHE_EINVAL, "training reads a pixels-store dataset");
    if ((o->c != 1 && o->c != 3) || o->h < 1 || o->w < 1)
        return lathe_fail(LATHE_EINVAL, "a classifier's input is 1 (luma) or 3 (RGB) channels of at least 1 x 1, not %d x %d x %d",
                          o->c, o->h, o->w);
    if (!(o->std > 0) || !(o->flip >= 0 && o->flip <= 1) || !(o->flipud >= 0 && o->flipud <= 1) ||
        !(o->rotate90 >= 0 && o->rotate90 <= 1) || o->crop < 0 || o->crop >= 1 || o->jitter < 0 || o->jitter >= 1)
        return lathe_fail(LATHE_EINVAL, "loader: std must be > 0, flip, flipud and rotate90 in [0, 1], crop and jitter "
                                        "in [0, 1)");
    lathe_loader *l = calloc(1, sizeof *l);
    if (!l) return lathe_fail(LATHE_ENOMEM, "loader");
    l->ds = ds, l->o = *o, l->sw = m->width, l->sh = m->height;
    int rc = lathe_split_order_init(&l->split, ds, o->split, 1, 1, o->seed, o->shuffle);
    if (rc) {
        lathe_loader_free(l);
        return rc;
    }
    if (!l->split.n) {
        lathe_loader_free(l);
        return lathe_fail(LATHE_EINVAL, "the %s split has no labelled sample", lathe_split_name(o->split));
    }
    *out = l;
    return 0;
}

void lathe_loader_free(lathe_loader *l) {
    if (!l) return;
    lathe_split_order_free(&l->split);
    free(l);
}

uint64_t lathe_loader_size(const lathe_loader *l) { return l->split.n; }

int lathe_loader_samples(lathe_loader *l, int epoch, uint64_t first, int n, uint64_t *samples) {
    if (first >= l->split.n) return 0;
    if ((uint64_t)n > l->split.n - first) n = (int)(l->split.n - first);
    const uint64_t *order = lathe_split_order_epoch(&l->split, epoch);
    for (int b = 0; b < n; b++) samples[b] = l->split.index[order[first + (uint64_t)b]];
    return n;
}

uint64_t lathe_loader_filter(lathe_loader *l, int (*drop)(void *ctx, uint64_t sample, int32_t label), void *ctx) {
    uint64_t kept = 0;
    for (uint64_t i = 0; i < l->split.n; i++)
        if (!drop(ctx, l->split.index[i], l->split.labels[i]))
            l->split.index[kept] = l->split.index[i], l->split.labels[kept++] = l->split.labels[i];
    l->split.n = kept, l->split.epoch = -1; /* the order is recomputed over what is left */
    return kept;
}

enum { FLIP_X = 1, FLIP_Y = 2, SWAP_XY = 4 }; /* together: the eight flips and turns of a square */

/* Area-averaged resize of the window [x0, x0+ww) x [y0, y0+hh) of img (sh, sw, 3) into dst (C, H, W),
 * flipped and turned as the FLIP_X | FLIP_Y | SWAP_XY bits of how say (output x runs along the
 * window's y when swapped). */
static void resample(const lathe_loader *l, const uint8_t *img, double x0, double y0, double ww, double hh, int how,
                     float gain, float bias, float *dst) {
    int H = l->o.h, W = l->o.w, C = l->o.c, swap = how & SWAP_XY;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            int xs = how & FLIP_X ? W - 1 - x : x, ys = how & FLIP_Y ? H - 1 - y : y;
            int i = swap ? ys : xs, ni = swap ? H : W, j = swap ? xs : ys, nj = swap ? W : H;
            int ya = (int)floor(y0 + hh * j / nj), yb = (int)ceil(y0 + hh * (j + 1) / nj);
            int xa = (int)floor(x0 + ww * i / ni), xb = (int)ceil(x0 + ww * (i + 1) / ni);
            if (yb <= ya) yb = ya + 1;
            if (xb <= xa) xb = xa + 1;
            double acc[3] = {0, 0, 0};
            int k = 0;
            for (int yy = ya; yy < yb; yy++)
                for (int xx = xa; xx < xb; xx++) {
                    int cy = yy < 0 ? 0 : yy >= l->sh ? l->sh - 1 : yy, cx = xx < 0 ? 0 : xx >= l->sw ? l->sw - 1 : xx;
                    const uint8_t *p = img + ((size_t)cy * l->sw + cx) * 3;
                    acc[0] += p[0], acc[1] += p[1], acc[2] += p[2], k++;
                }
            for (int c = 0; c < C; c++) {
                double v = C == 1 ? (0.299 * acc[0] + 0.587 * acc[1] + 0.114 * acc[2]) / k : acc[c] / k;
                v = v / 255.0 * gain + bias;
                dst[((size_t)c * H + y) * W + x] = (float)((v - l->o.mean) / l->o.std);
            }
        }
}

int lathe_loader_batch(lathe_loader *l, int epoch, uint64_t first, int n, float *x, int32_t *labels) {
    if (first >= l->split.n) return 0;
    if ((uint64_t)n > l->split.n - first) n = (int)(l->split.n - first);
    const uint64_t *order = lathe_split_order_epoch(&l->split, epoch);
    size_t frame = (size_t)l->sw * l->sh * 3, per = (size_t)l->o.c * l->o.h * l->o.w;
    uint64_t bad = UINT64_MAX; /* the first sample that could not be read, and why */
    char why[256] = "";
#pragma omp parallel
    {
        uint8_t *img = malloc(frame);
#pragma omp for schedule(dynamic, 1)
        for (int b = 0; b < n; b++) {
            uint64_t pos = order[first + (uint64_t)b], sample = l->split.index[pos];
            labels[b] = l->split.labels[pos];
            if (!img || lathe_dataset_read_pixels(l->ds, sample, img, frame)) {
#pragma omp critical(loader_error)
                if (sample < bad) bad = sample, snprintf(why, sizeof why, "%s", img ? lathe_last_error() : "out of memory");
                continue;
            }
            uint64_t s = lathe_mix64(l->o.seed ^ lathe_mix64((uint64_t)epoch * 0x1000003ull + pos + 7));
            double keep = 1 - l->o.crop * lathe_rng_unit(&s);
            double ww = l->sw * keep, hh = l->sh * keep;
            double x0 = (l->sw - ww) * lathe_rng_unit(&s), y0 = (l->sh - hh) * lathe_rng_unit(&s);
            int how = l->o.flip > 0 && lathe_rng_unit(&s) < l->o.flip ? FLIP_X : 0;
            float gain = 1 + l->o.jitter * (float)(2 * lathe_rng_unit(&s) - 1);
            float bias = l->o.jitter * 0.5f * (float)(2 * lathe_rng_unit(&s) - 1);
            /* drawn last, and only when asked for, so that runs without them keep their batches */
            if (l->o.flipud > 0 && lathe_rng_unit(&s) < l->o.flipud) how ^= FLIP_Y;
            if (l->o.rotate90 > 0 && lathe_rng_unit(&s) < l->o.rotate90) /* a swap and one flip: a quarter turn */
                how ^= SWAP_XY | (lathe_rng_unit(&s) < 0.5 ? FLIP_X : FLIP_Y);
            resample(l, img, x0, y0, ww, hh, how, gain, bias, x + (size_t)b * per);
        }
        free(img);
    }
    return bad != UINT64_MAX ? lathe_fail(LATHE_EIO, "sample %" PRIu64 " (epoch %d) could not be read: %s", bad, epoch + 1, why)
                             : n;
}
