/* transform.c - resampling, letterbox, tiles and dHash (see transform.h). The resampler is the
 * separable triangle filter widened by the downscale factor (antialiased like Pillow's BILINEAR);
 * weights are computed once per output row/column. */
#include "transform.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../base/error.h"

lathe_letterbox lathe_letterbox_plan(int src_w, int src_h, int size) {
    double s = fmin((double)size / src_w, (double)size / src_h);
    lathe_letterbox p;
    p.width = (int)lround(src_w * s);
    p.height = (int)lround(src_h * s);
    if (p.width < 1) p.width = 1;
    if (p.height < 1) p.height = 1;
    if (p.width > size) p.width = size;
    if (p.height > size) p.height = size;
    p.scale_x = (float)p.width / src_w;
    p.scale_y = (float)p.height / src_h;
    p.pad_x = (float)((size - p.width) / 2);
    p.pad_y = (float)((size - p.height) / 2);
    return p;
}

/* Filter taps of one axis: for each output index, first source index, count and weights. */
typedef struct {
    int *first, *count;
    float *weights; /* out_n * max_taps */
    int max_taps;
} taps;

static void taps_free(taps *t) {
    free(t->first);
    free(t->count);
    free(t->weights);
}

static int taps_plan(taps *t, int in_n, int out_n) {
    double scale = (double)in_n / out_n;
    double support = scale > 1 ? scale : 1.0; /* triangle of radius 1, widened when shrinking */
    t->max_taps = (int)ceil(support) * 2 + 1;
    t->first = malloc(sizeof(int) * out_n);
    t->count = malloc(sizeof(int) * out_n);
    t->weights = malloc(sizeof(float) * out_n * t->max_taps);
    if (!t->first || !t->count || !t->weights) {
        taps_free(t);
        return lathe_fail(LATHE_ENOMEM, "resize taps");
    }
    for (int o = 0; o < out_n; o++) {
        double center = (o + 0.5) * scale;
        int lo = (int)floor(center - support), hi = (int)ceil(center + support);
        if (lo < 0) lo = 0;
        if (hi > in_n) hi = in_n;
        double sum = 0;
        int n = 0;
        float *w = t->weights + (size_t)o * t->max_taps;
        for (int i = lo; i < hi && n < t->max_taps; i++, n++) {
            double x = fabs((i + 0.5 - center) / support);
            w[n] = (float)(x < 1 ? 1 - x : 0);
            sum += w[n];
        }
        for (int k = 0; k < n; k++) w[k] = sum > 0 ? (float)(w[k] / sum) : (k == 0 ? 1.0f : 0.0f);
        t->first[o] = lo;
        t->count[o] = n;
    }
    return 0;
}

static int resize_nearest(const lathe_image *src, int dst_w, int dst_h, uint8_t *dst, size_t stride) {
    int C = src->channels;
    for (int y = 0; y < dst_h; y++) {
        int sy = (int)((y + 0.5) * src->height / dst_h);
        if (sy >= src->height) sy = src->height - 1;
        for (int x = 0; x < dst_w; x++) {
            int sx = (int)((x + 0.5) * src->width / dst_w);
            if (sx >= src->width) sx = src->width - 1;
            memcpy(dst + y * stride + (size_t)x * C, src->pixels + ((size_t)sy * src->width + sx) * C, (size_t)C);
        }
    }
    return 0;
}

static uint8_t clamp_u8(float v) { return v <= 0 ? 0 : v >= 255 ? 255 : (uint8_t)(v + 0.5f); }

int lathe_resize_into(const lathe_image *src, int dst_w, int dst_h, int nearest, uint8_t *dst, size_t dst_stride) {
    int C = src->channels, W = src->width, H = src->height;
    if (dst_w == W && dst_h == H) {
        for (int y = 0; y < H; y++) memcpy(dst + y * dst_stride, src->pixels + (size_t)y * W * C, (size_t)W * C);
        return 0;
    }
    if (nearest) return resize_nearest(src, dst_w, dst_h, dst, dst_stride);
    taps tx = {0}, ty = {0};
    int rc = taps_plan(&tx, W, dst_w);
    if (!rc && (rc = taps_plan(&ty, H, dst_h))) taps_free(&tx);
    if (rc) return rc;
    /* horizontal pass into a float buffer of H rows, then vertical pass into dst */
    float *mid = malloc(sizeof(float) * (size_t)H * dst_w * C);
    if (!mid) {
        taps_free(&tx);
        taps_free(&ty);
        return lathe_fail(LATHE_ENOMEM, "resize buffer");
    }
    for (int y = 0; y < H; y++) {
        const uint8_t *row = src->pixels + (size_t)y * W * C;
        float *out = mid + (size_t)y * dst_w * C;
        for (int x = 0; x < dst_w; x++) {
            const float *w = tx.weights + (size_t)x * tx.max_taps;
            const uint8_t *p = row + (size_t)tx.first[x] * C;
            for (int c = 0; c < C; c++) {
                float acc = 0;
                for (int k = 0; k < tx.count[x]; k++) acc += w[k] * p[k * C + c];
                out[x * C + c] = acc;
            }
        }
    }
    for (int y = 0; y < dst_h; y++) {
        const float *w = ty.weights + (size_t)y * ty.max_taps;
        uint8_t *out = dst + y * dst_stride;
        for (int i = 0; i < dst_w * C; i++) {
            float acc = 0;
            for (int k = 0; k < ty.count[y]; k++) acc += w[k] * mid[(size_t)(ty.first[y] + k) * dst_w * C + i];
            out[i] = clamp_u8(acc);
        }
    }
    free(mid);
    taps_free(&tx);
    taps_free(&ty);
    return 0;
}

int lathe_letterbox_into(const lathe_image *src, const lathe_letterbox *plan, int size, uint8_t fill, int nearest,
                         uint8_t *dst) {
    int C = src->channels;
    size_t stride = (size_t)size * C;
    int px = (int)plan->pad_x, py = (int)plan->pad_y;
    /* fill only the borders: the resized image covers the rest */
    for (int y = 0; y < size; y++) {
        uint8_t *row = dst + y * stride;
        if (y < py || y >= py + plan->height) {
            memset(row, fill, stride);
        } else {
            memset(row, fill, (size_t)px * C);
            memset(row + (size_t)(px + plan->width) * C, fill, (size_t)(size - px - plan->width) * C);
        }
    }
    return lathe_resize_into(src, plan->width, plan->height, nearest, dst + py * stride + (size_t)px * C, stride);
}

int lathe_tile_origins(int n, int t, int o, int *origins, int cap) {
    if (n <= t) {
        if (cap > 0) origins[0] = 0;
        return 1;
    }
    int step = t - o > 0 ? t - o : t, count = 0;
    for (int at = 0;; at += step) {
        int start = at + t >= n ? n - t : at;
        if (count < cap) origins[count] = start;
        count++;
        if (start == n - t) break;
    }
    return count;
}

void lathe_tile_copy(const lathe_image *src, int x0, int y0, int t, uint8_t fill, uint8_t *dst) {
    int C = src->channels;
    for (int y = 0; y < t; y++) {
        uint8_t *row = dst + (size_t)y * t * C;
        int sy = y0 + y;
        if (sy >= src->height) {
            memset(row, fill, (size_t)t * C);
            continue;
        }
        int w = src->width - x0 < t ? src->width - x0 : t;
        memcpy(row, src->pixels + ((size_t)sy * src->width + x0) * C, (size_t)w * C);
        if (w < t) memset(row + (size_t)w * C, fill, (size_t)(t - w) * C);
    }
}

uint64_t lathe_dhash(const lathe_image *img) {
    /* average into a 9x8 luma grid over a sparse pixel lattice (about 128 samples per side is
     * plenty for 72 cells and keeps the hash far below the decode cost) */
    double cell[8][9] = {{0}};
    int counts[8][9] = {{0}};
    int C = img->channels;
    int side = img->width < img->height ? img->width : img->height;
    int step = side / 128 > 1 ? side / 128 : 1;
    for (int y = step / 2; y < img->height; y += step) {
        int gy = (int)((int64_t)y * 8 / img->height);
        const uint8_t *row = img->pixels + (size_t)y * img->width * C;
        for (int x = step / 2; x < img->width; x += step) {
            int gx = (int)((int64_t)x * 9 / img->width);
            const uint8_t *p = row + (size_t)x * C;
            cell[gy][gx] += C >= 3 ? 0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2] : p[0];
            counts[gy][gx]++;
        }
    }
    uint64_t h = 0;
    for (int y = 0; y < 8; y++)
        for (int x = 0; x < 8; x++) {
            double a = counts[y][x] ? cell[y][x] / counts[y][x] : 0;
            double b = counts[y][x + 1] ? cell[y][x + 1] / counts[y][x + 1] : 0;
            h = h << 1 | (a > b);
        }
    return h;
}
