/* bench_charts.c - PNG encoding of the pictures lathe's reports hold (README.md beside this file):
 * each chart kind drawn by libcore/eval/plot.c and a drawn photo, their pixels encoded by cairo's
 * own PNG writer (libpng's defaults: what lathe used until 2026-12-07) and by each of lathe's three
 * encoders; prints milliseconds per picture (median of REPEATS) and bytes.
 * Usage: bench_charts REPEATS [PHOTO.png|jpg ...] */
#include <cairo.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "libcore/eval/draw.h"
#include "libcore/eval/plot.h"
#include "libcore/io/image.h"

typedef struct {
    const char *name;
    lathe_image img;
} picture;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static cairo_status_t count_bytes(void *closure, const unsigned char *data, unsigned int len) {
    (void)data;
    *(size_t *)closure += len;
    return CAIRO_STATUS_SUCCESS;
}

/* the peer: cairo_surface_write_to_png_stream on an RGB24 surface holding the same pixels */
static int cairo_writer(const lathe_image *img, size_t *len) {
    cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, img->width, img->height);
    unsigned char *px = cairo_image_surface_get_data(s);
    if (!px) return cairo_surface_destroy(s), -1;
    int stride = cairo_image_surface_get_stride(s);
    for (int y = 0; y < img->height; y++)
        for (int x = 0; x < img->width; x++) {
            const uint8_t *p = img->pixels + ((size_t)y * img->width + x) * 3;
            ((uint32_t *)(px + (size_t)y * stride))[x] = (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
        }
    cairo_surface_mark_dirty(s);
    *len = 0;
    cairo_status_t st = cairo_surface_write_to_png_stream(s, count_bytes, len);
    cairo_surface_destroy(s);
    return st == CAIRO_STATUS_SUCCESS ? 0 : -1;
}

static int lathe_encoder(int which, const lathe_image *img, size_t *len) {
    uint8_t *out = NULL;
    int rc = which == 1 ? lathe_png_encode_graphics(img, &out, len)
             : which == 2 ? lathe_png_encode_small(img, &out, len)
                          : lathe_png_encode(img, &out, len);
    free(out);
    return rc;
}

/* PNG bytes -> the RGB pixels they hold (the chart as drawn) */
static int pixels_of(const lathe_png *png, const char *name, picture *out) {
    lathe_decode_opts o = {0, 0, 0, 3};
    out->name = name;
    return lathe_image_decode(png->data, png->len, &o, &out->img, NULL);
}

static int charts(picture *p) {
    double x[101], y[303], counts[40], edges[41], heat[100], bars[12];
    for (int i = 0; i < 101; i++) {
        x[i] = i / 100.0;
        for (int s = 0; s < 3; s++) y[s * 101 + i] = pow(1 - x[i], 1 + s) * 0.9; /* precision-recall-like */
    }
    for (int i = 0; i <= 40; i++) edges[i] = i * 0.025;
    for (int i = 0; i < 40; i++) counts[i] = 200 * exp(-pow((i - 18) / 7.0, 2));
    for (int i = 0; i < 100; i++) heat[i] = (i % 11 == 0) ? 50 + i : i % 7;
    for (int i = 0; i < 12; i++) bars[i] = 10 + 7 * (i % 5);
    const char *series[] = {"crack", "dent", "scratch"}, *classes[] = {"good", "scratch", "dent", "crack"},
               *names10[] = {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"};
    lathe_plot_frame f = {"precision-recall", "recall", "precision", 0, 0};
    lathe_png png[4];
    int rc = lathe_plot_lines(&f, x, 101, y, 3, series, &png[0]);
    f.title = "box sizes", f.xlabel = "relative size", f.ylabel = "boxes";
    if (!rc) rc = lathe_plot_histogram(&f, edges, counts, 40, &png[1]);
    f.title = "confusion", f.xlabel = "predicted", f.ylabel = "true";
    if (!rc) rc = lathe_plot_heatmap(&f, heat, 10, 10, names10, names10, &png[2]);
    f.title = "boxes per class", f.xlabel = "class", f.ylabel = "boxes";
    if (!rc) rc = lathe_plot_bars(&f, classes, 4, bars, 3, series, &png[3]);
    if (rc) return rc;
    const char *kinds[] = {"line chart", "histogram", "heatmap", "bar chart"};
    for (int i = 0; i < 4 && !rc; i++) rc = pixels_of(&png[i], kinds[i], &p[i]);
    for (int i = 0; i < 4; i++) lathe_png_free(&png[i]);
    return rc;
}

static int photo(const char *path, picture *p) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    uint8_t *bytes = n > 0 ? malloc((size_t)n) : NULL;
    int ok = bytes && fread(bytes, 1, (size_t)n, f) == (size_t)n;
    fclose(f);
    lathe_image img = {0};
    lathe_decode_opts o = {0, 0, 0, 3};
    int rc = ok ? lathe_image_decode(bytes, (size_t)n, &o, &img, NULL) : -1;
    free(bytes);
    if (rc) return rc;
    /* boxes drawn as a report draws them */
    lathe_drawn_box boxes[] = {{img.width * 0.2f, img.height * 0.2f, img.width * 0.45f, img.height * 0.5f, 0.81f, 0,
                                LATHE_DRAWN_PREDICTION},
                               {img.width * 0.6f, img.height * 0.55f, img.width * 0.8f, img.height * 0.7f, -1, 1,
                                LATHE_DRAWN_MISSED}};
    const char *classes[] = {"scratch", "dent"};
    lathe_png png;
    rc = lathe_draw_boxes(img.pixels, img.width, img.height, boxes, 2, classes, 2, &png);
    lathe_image_free(&img);
    if (!rc) rc = pixels_of(&png, path, p);
    lathe_png_free(&png);
    return rc;
}

int main(int argc, char **argv) {
    int repeats = argc > 1 ? atoi(argv[1]) : 0;
    if (repeats < 1 || repeats > 1000) {
        fprintf(stderr, "usage: bench_charts REPEATS [PHOTO ...]\n");
        return 1;
    }
    int n = 4 + (argc - 2);
    picture *pics = calloc((size_t)n, sizeof *pics);
    double *t = malloc(sizeof(double) * (size_t)repeats);
    if (!pics || !t || charts(pics)) return fprintf(stderr, "bench: cannot draw the charts\n"), 1;
    for (int i = 2; i < argc; i++)
        if (photo(argv[i], &pics[4 + i - 2])) return fprintf(stderr, "bench: cannot read %s\n", argv[i]), 1;
    const char *enc[] = {"cairo writer", "lathe graphics", "lathe small", "lathe fast"};
    printf("%-28s %-10s %14s %9s %9s\n", "picture", "size", "encoder", "ms", "bytes");
    double sum_ms[4] = {0}, sum_bytes[4] = {0};
    for (int i = 0; i < n; i++) {
        const char *name = strrchr(pics[i].name, '/') ? strrchr(pics[i].name, '/') + 1 : pics[i].name;
        for (int e = 0; e < 4; e++) {
            size_t len = 0;
            for (int r = 0; r < repeats; r++) {
                double t0 = now();
                int rc = e == 0 ? cairo_writer(&pics[i].img, &len) : lathe_encoder(e, &pics[i].img, &len);
                t[r] = now() - t0;
                if (rc) return fprintf(stderr, "bench: %s failed on %s\n", enc[e], name), 1;
            }
            qsort(t, (size_t)repeats, sizeof *t, by_value);
            printf("%-28s %4dx%-5d %14s %9.2f %9zu\n", name, pics[i].img.width, pics[i].img.height, enc[e],
                   t[repeats / 2] * 1e3, len);
            if (i < 4) sum_ms[e] += t[repeats / 2] * 1e3, sum_bytes[e] += (double)len;
        }
    }
    printf("four charts: cairo writer %.1f ms %.0f bytes; lathe graphics %.1f ms %.0f bytes (%.2fx faster, %.2fx the bytes)\n",
           sum_ms[0], sum_bytes[0], sum_ms[1], sum_bytes[1], sum_ms[0] / sum_ms[1], sum_bytes[1] / sum_bytes[0]);
    for (int i = 0; i < n; i++) lathe_image_free(&pics[i].img);
    free(pics);
    free(t);
    return 0;
}
