/* image_stats.c - per-image measurements for `lathe analyze` (see image_stats.h). */
#include "image_stats.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "libcore/base/error.h"

static int clampi(long v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : (int)v; }

lathe_rect lathe_content_rect(int width, int height, int orig_width, int orig_height, float scale_x,
                              float scale_y, float pad_x, float pad_y, int tile_x, int tile_y) {
    lathe_rect r;
    r.x0 = clampi(lround(pad_x - (double)tile_x * scale_x), 0, width);
    r.y0 = clampi(lround(pad_y - (double)tile_y * scale_y), 0, height);
    r.x1 = clampi(lround(pad_x + (double)(orig_width - tile_x) * scale_x), 0, width);
    r.y1 = clampi(lround(pad_y + (double)(orig_height - tile_y) * scale_y), 0, height);
    if (r.x1 < r.x0) r.x1 = r.x0;
    if (r.y1 < r.y0) r.y1 = r.y0;
    return r;
}

/* The near-duplicate descriptor. Factory images share most of their layout (the same belt, rails
 * and lighting), and a crop moves the borders most, so both the thumbnail and the hash look at the
 * central 80% of the content only: there a crop of a few percent is a small change of scale, while
 * what differs between two parts dominates (docs/ARCHITECTURE.md has the measurements). The
 * thumbnail is the area-averaged luma on a 16x16 grid; the 64-bit hash sets bit (8v+u) where the
 * 2-D DCT-II coefficient (u, v) of that grid, u, v < 8, exceeds the median of the 63 AC ones (a
 * brightness shift moves only the DC term, which the median ignores). */
void lathe_area_grid(const float *y, int w, int h, double fraction, int side, float *grid) {
    int cw = (int)lround(w * fraction), ch = (int)lround(h * fraction);
    if (cw < 1) cw = 1;
    if (ch < 1) ch = 1;
    if (cw > w) cw = w;
    if (ch > h) ch = h;
    int cx = (w - cw) / 2, cy = (h - ch) / 2;
    for (int gy = 0; gy < side; gy++) {
        int ya = cy + (int)((long)gy * ch / side), yb = cy + (int)((long)(gy + 1) * ch / side);
        if (yb <= ya) yb = ya + 1;
        for (int gx = 0; gx < side; gx++) {
            int xa = cx + (int)((long)gx * cw / side), xb = cx + (int)((long)(gx + 1) * cw / side);
            if (xb <= xa) xb = xa + 1;
            double sum = 0;
            int k = 0;
            for (int yy = ya; yy < yb && yy < h; yy++)
                for (int xx = xa; xx < xb && xx < w; xx++) sum += y[(size_t)yy * w + xx], k++;
            grid[gy * side + gx] = k ? (float)(sum / k) : 0;
        }
    }
}

static uint64_t describe(const float *y, int w, int h, uint8_t *thumb) {
    enum { G = LATHE_THUMB_SIDE, K = 8 };
    float cells[G * G];
    lathe_area_grid(y, w, h, 0.8, G, cells);
    double grid[G][G];
    for (int i = 0; i < G * G; i++) {
        grid[i / G][i % G] = cells[i];
        thumb[i] = (uint8_t)lroundf(cells[i] < 0 ? 0 : cells[i] > 255 ? 255 : cells[i]);
    }
    double basis[K][G]; /* cos(pi (2x+1) u / 2G) */
    for (int u = 0; u < K; u++)
        for (int x = 0; x < G; x++) basis[u][x] = cos(M_PI * (2 * x + 1) * u / (2.0 * G));
    double rows[G][K]; /* DCT along x of every row */
    for (int gy = 0; gy < G; gy++)
        for (int u = 0; u < K; u++) {
            double s = 0;
            for (int x = 0; x < G; x++) s += grid[gy][x] * basis[u][x];
            rows[gy][u] = s;
        }
    double coef[K * K], ac[K * K - 1];
    for (int v = 0; v < K; v++)
        for (int u = 0; u < K; u++) {
            double s = 0;
            for (int gy = 0; gy < G; gy++) s += rows[gy][u] * basis[v][gy];
            coef[v * K + u] = s;
        }
    memcpy(ac, coef + 1, sizeof ac);
    for (int i = 1; i < K * K - 1; i++) { /* insertion sort of 63 values for their median */
        double t = ac[i];
        int j = i - 1;
        for (; j >= 0 && ac[j] > t; j--) ac[j + 1] = ac[j];
        ac[j + 1] = t;
    }
    double median = ac[(K * K - 1) / 2];
    uint64_t bits = 0;
    for (int i = 0; i < K * K; i++)
        if (coef[i] > median) bits |= 1ull << i;
    return bits;
}

double lathe_grid_similarity(const float *a, const float *b, int n) {
    double ma = 0, mb = 0;
    for (int i = 0; i < n; i++) ma += a[i], mb += b[i];
    ma /= n, mb /= n;
    double ab = 0, aa = 0, bb = 0;
    for (int i = 0; i < n; i++) {
        double x = a[i] - ma, y = b[i] - mb;
        ab += x * y, aa += x * x, bb += y * y;
    }
    if (aa == 0 || bb == 0) return aa == bb ? 1 : 0;
    return ab / sqrt(aa * bb);
}

double lathe_thumb_similarity(const uint8_t *a, const uint8_t *b) {
    enum { N = LATHE_THUMB_SIDE * LATHE_THUMB_SIDE };
    float fa[N], fb[N];
    for (int i = 0; i < N; i++) fa[i] = a[i], fb[i] = b[i];
    return lathe_grid_similarity(fa, fb, N);
}

void lathe_luma(const uint8_t *pixels, int width, lathe_rect r, float *out) {
    int w = r.x1 - r.x0;
    for (int yy = r.y0; yy < r.y1; yy++) {
        const uint8_t *p = pixels + ((size_t)yy * width + r.x0) * 3;
        float *dst = out + (size_t)(yy - r.y0) * w;
        for (int xx = 0; xx < w; xx++, p += 3) dst[xx] = 0.299f * p[0] + 0.587f * p[1] + 0.114f * p[2];
    }
}

int lathe_image_stats_compute(const uint8_t *pixels, int width, int height, lathe_rect r, float *scratch,
                              lathe_image_stats *out) {
    memset(out, 0, sizeof *out);
    if (r.x0 < 0 || r.y0 < 0 || r.x1 > width || r.y1 > height || r.x1 <= r.x0 || r.y1 <= r.y0)
        return lathe_fail(LATHE_EINVAL, "content rectangle [%d,%d)x[%d,%d) is empty or outside %dx%d", r.x0,
                          r.x1, r.y0, r.y1, width, height);
    int w = r.x1 - r.x0, h = r.y1 - r.y0;
    double sum = 0, sum2 = 0, rgb[3] = {0, 0, 0};
    size_t bright = 0, dark = 0;
    for (int yy = 0; yy < h; yy++) {
        const uint8_t *p = pixels + ((size_t)(r.y0 + yy) * width + r.x0) * 3;
        float *dst = scratch + (size_t)yy * w;
        double rs = 0, gs = 0, bs = 0, ys = 0, ys2 = 0; /* per-row partial sums keep precision */
        for (int xx = 0; xx < w; xx++, p += 3) {
            float lum = 0.299f * p[0] + 0.587f * p[1] + 0.114f * p[2];
            dst[xx] = lum;
            rs += p[0], gs += p[1], bs += p[2];
            ys += lum, ys2 += (double)lum * lum;
            bright += lum >= 250.0f;
            dark += lum <= 5.0f;
        }
        rgb[0] += rs, rgb[1] += gs, rgb[2] += bs, sum += ys, sum2 += ys2;
    }
    double n = (double)w * h;
    out->brightness = sum / n;
    double var = sum2 / n - out->brightness * out->brightness;
    out->contrast = sqrt(var > 0 ? var : 0);
    for (int c = 0; c < 3; c++) out->rgb[c] = rgb[c] / n;
    out->bright_share = (double)bright / n;
    out->dark_share = (double)dark / n;
    if (w >= 3 && h >= 3) {
        double ls = 0, ls2 = 0;
        for (int yy = 1; yy < h - 1; yy++) {
            const float *row = scratch + (size_t)yy * w;
            double rsum = 0, rsum2 = 0;
            for (int xx = 1; xx < w - 1; xx++) {
                float lap = row[xx - w] + row[xx + w] + row[xx - 1] + row[xx + 1] - 4.0f * row[xx];
                rsum += lap, rsum2 += (double)lap * lap;
            }
            ls += rsum, ls2 += rsum2;
        }
        double m = (double)(w - 2) * (h - 2), mean = ls / m;
        double lv = ls2 / m - mean * mean;
        out->sharpness = lv > 0 ? lv : 0;
    }
    out->phash = describe(scratch, w, h, out->thumb);
    return 0;
}
