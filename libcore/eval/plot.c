/* plot.c - cairo charts (see plot.h). Layout: a title band, a plot area with margins for the
 * axis labels, "nice" tick steps (1, 2, 5 x 10^k) on the value axis. */
#include "plot.h"

#include "plot_internal.h"

#include <cairo.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libcore/base/error.h"
#include "libcore/base/fsutil.h"
#include "libcore/base/fuzzing.h"
#include "libcore/io/image.h"

enum { MARGIN_L = 70, MARGIN_R = 20, MARGIN_T = 40, MARGIN_B = 60, LEGEND_W = 130 };

enum { NCOLOURS = 10 };
static const double palette[NCOLOURS][3] = {{0.22, 0.42, 0.69}, {0.89, 0.47, 0.16}, {0.30, 0.63, 0.31},
                                            {0.80, 0.25, 0.25}, {0.55, 0.40, 0.70}, {0.55, 0.34, 0.29},
                                            {0.89, 0.47, 0.76}, {0.50, 0.50, 0.50}, {0.74, 0.74, 0.13},
                                            {0.09, 0.75, 0.81}};

typedef struct {
    cairo_surface_t *surface;
    cairo_t *cr;
    int w, h;
    double x0, y0, x1, y1; /* plot area */
} canvas;

static int canvas_open(const lathe_plot_frame *f, canvas *c) {
    c->w = f->width > 0 ? f->width : 640;
    c->h = f->height > 0 ? f->height : 360;
    c->surface = cairo_image_surface_create(CAIRO_FORMAT_RGB24, c->w, c->h);
    c->cr = cairo_create(c->surface);
    if (cairo_status(c->cr) != CAIRO_STATUS_SUCCESS) {
        cairo_destroy(c->cr);
        cairo_surface_destroy(c->surface);
        return lathe_fail(LATHE_ENOMEM, "cairo surface of %dx%d", c->w, c->h);
    }
    cairo_set_source_rgb(c->cr, 1, 1, 1);
    cairo_paint(c->cr);
    c->x0 = MARGIN_L, c->y0 = MARGIN_T, c->x1 = c->w - MARGIN_R, c->y1 = c->h - MARGIN_B;
    cairo_select_font_face(c->cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    return 0;
}

static void text_at(cairo_t *cr, const char *s, double x, double y, double size, double align, double angle) {
    cairo_text_extents_t e;
    cairo_set_font_size(cr, size);
    cairo_text_extents(cr, s, &e);
    cairo_save(cr);
    cairo_translate(cr, x, y);
    cairo_rotate(cr, angle);
    cairo_move_to(cr, -e.x_advance * align, e.height / 2);
    cairo_show_text(cr, s);
    cairo_restore(cr);
}

static void frame_labels(canvas *c, const lathe_plot_frame *f) {
    cairo_set_source_rgb(c->cr, 0.1, 0.1, 0.1);
    if (f->title) {
        cairo_select_font_face(c->cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_BOLD);
        text_at(c->cr, f->title, c->w / 2.0, 18, 15, 0.5, 0);
        cairo_select_font_face(c->cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    }
    if (f->xlabel) text_at(c->cr, f->xlabel, (c->x0 + c->x1) / 2, c->h - 12, 12, 0.5, 0);
    if (f->ylabel) text_at(c->cr, f->ylabel, 16, (c->y0 + c->y1) / 2, 12, 0.5, -M_PI / 2);
    cairo_set_line_width(c->cr, 1);
    cairo_move_to(c->cr, c->x0, c->y0);
    cairo_line_to(c->cr, c->x0, c->y1);
    cairo_line_to(c->cr, c->x1, c->y1);
    cairo_stroke(c->cr);
}

static double nice_step(double range, int ticks) {
    double raw = range / ticks, mag = pow(10, floor(log10(raw))), r = raw / mag;
    return (r <= 1 ? 1 : r <= 2 ? 2 : r <= 5 ? 5 : 10) * mag;
}

#define MAX_TICKS 64

/* The multiples of step from lo up to limit, into ticks[MAX_TICKS]; returns how many. Each is
 * computed from its index, not by adding steps, and the list ends where a value stops growing:
 * past 2^53 steps from zero a step no longer moves a double, and `v += step` looped forever (a
 * log whose epoch is 8.8e15, found by the notebook fuzz target). + 0.0: no "-0". */
static int axis_ticks(double lo, double limit, double step, double *ticks) {
    if (!(step > 0) || !isfinite(step)) return 0;
    double first = ceil(lo / step);
    int n = 0;
    for (int k = 0; k < MAX_TICKS; k++) {
        double v = (first + k) * step + 0.0;
        if (!(v <= limit) || (n && !(v > ticks[n - 1]))) break;
        ticks[n++] = v;
    }
    return n;
}

static void number_text(char *buf, size_t cap, double v) {
    if (fabs(v) >= 1e5 || (fabs(v) < 1e-2 && v != 0)) snprintf(buf, cap, "%.2g", v);
    else snprintf(buf, cap, "%g", round(v * 1000) / 1000);
}

/* value axis on the left from lo to top with grid lines; returns top (1 above lo when the range is empty) */
static double value_axis(canvas *c, double lo, double top) {
    if (!(top > lo)) top = lo + 1;
    double ticks[MAX_TICKS];
    int nt = axis_ticks(lo, top + (top - lo) * 1e-4, nice_step(top - lo, 5), ticks);
    char buf[32];
    cairo_set_source_rgb(c->cr, 0.3, 0.3, 0.3);
    for (int t = 0; t < nt; t++) {
        double v = ticks[t], y = c->y1 - (c->y1 - c->y0) * (v - lo) / (top - lo);
        number_text(buf, sizeof buf, v);
        text_at(c->cr, buf, c->x0 - 6, y, 10, 1, 0);
        cairo_set_source_rgb(c->cr, 0.9, 0.9, 0.9);
        cairo_move_to(c->cr, c->x0, y);
        cairo_line_to(c->cr, c->x1, y);
        cairo_stroke(c->cr);
        cairo_set_source_rgb(c->cr, 0.3, 0.3, 0.3);
    }
    return top;
}

/* each series' colour and name, one row per series from the top of the plot area, starting at x */
static void legend(canvas *c, const char *const *series, int nseries, double x) {
    for (int s = 0; s < nseries && series; s++) {
        const double *col = palette[s % NCOLOURS];
        cairo_set_source_rgb(c->cr, col[0], col[1], col[2]);
        cairo_rectangle(c->cr, x, c->y0 + 4 + 16 * s, 10, 10);
        cairo_fill(c->cr);
        cairo_set_source_rgb(c->cr, 0.1, 0.1, 0.1);
        text_at(c->cr, series[s], x + 15, c->y0 + 9 + 16 * s, 10, 0, 0);
    }
}

/* RGB24 is one native-endian 32-bit word a pixel, 0x00RRGGBB. A loop over every pixel with no
 * decision in it: a fuzzing build leaves it out of libFuzzer's coverage, whose per-pixel compare
 * hooks were a quarter of the notebook target's time (docs/RELIABILITY.md, "Fuzzing record") */
LATHE_NO_COVERAGE static void rgb24_to_rgb(const unsigned char *px, int stride, lathe_image *rgb) {
    for (int y = 0; y < rgb->height; y++) {
        const uint32_t *row = (const uint32_t *)(px + (size_t)y * stride);
        uint8_t *dst = rgb->pixels + (size_t)y * rgb->width * 3;
        for (int x = 0; x < rgb->width; x++, dst += 3)
            dst[0] = (uint8_t)(row[x] >> 16), dst[1] = (uint8_t)(row[x] >> 8), dst[2] = (uint8_t)row[x];
    }
}

/* through lathe's PNG encoders, the caller's pick: charts with lathe_png_encode_graphics, 2x faster
 * and 12% smaller than cairo's own writer (libpng's defaults), which was 80% of a notebook's time
 * (docs/PERFORMANCE.md, "Report pictures") */
int plot_surface_png(cairo_surface_t *surface, plot_png_encoder encode, lathe_png *out) {
    out->data = NULL;
    out->len = 0;
    cairo_surface_flush(surface);
    if (cairo_surface_status(surface) != CAIRO_STATUS_SUCCESS)
        return lathe_fail(LATHE_ENOMEM, "PNG encoding: %s", cairo_status_to_string(cairo_surface_status(surface)));
    const unsigned char *px = cairo_image_surface_get_data(surface);
    int w = cairo_image_surface_get_width(surface), h = cairo_image_surface_get_height(surface);
    int stride = cairo_image_surface_get_stride(surface);
    if (!px || cairo_image_surface_get_format(surface) != CAIRO_FORMAT_RGB24 || w < 1 || h < 1)
        return lathe_fail(LATHE_EINVAL, "PNG encoding: not an RGB image surface");
    lathe_image rgb = {w, h, 3, malloc((size_t)w * h * 3)};
    if (!rgb.pixels) return lathe_fail(LATHE_ENOMEM, "PNG encoding of %dx%d", w, h);
    rgb24_to_rgb(px, stride, &rgb);
    int rc = encode(&rgb, &out->data, &out->len);
    free(rgb.pixels);
    return rc;
}

static int canvas_close(canvas *c, lathe_png *out) {
    int rc = plot_surface_png(c->surface, lathe_png_encode_graphics, out);
    cairo_destroy(c->cr);
    cairo_surface_destroy(c->surface);
    return rc;
}

void lathe_png_free(lathe_png *p) {
    free(p->data);
    p->data = NULL;
    p->len = 0;
}

int lathe_png_write_file(const lathe_png *p, const char *path) {
    if (!p || !p->data || !path) return lathe_fail(LATHE_EINVAL, "no PNG to write");
    return lathe_write_atomic(path, p->data, p->len);
}

int lathe_plot_bars(const lathe_plot_frame *f, const char *const *names, size_t n, const double *values, int nseries,
                    const char *const *series, lathe_png *out) {
    if (n == 0 || nseries < 1) return lathe_fail(LATHE_EINVAL, "bar chart without bars");
    canvas c;
    int rc = canvas_open(f, &c);
    if (rc) return rc;
    double top = 0;
    for (size_t i = 0; i < n * (size_t)nseries; i++)
        if (isfinite(values[i]) && values[i] > top) top = values[i];
    top = value_axis(&c, 0, top * 1.05);
    double slot = (c.x1 - c.x0) / n, bw = slot * 0.8 / nseries;
    for (size_t i = 0; i < n; i++) {
        for (int s = 0; s < nseries; s++) {
            double v = values[(size_t)s * n + i];
            if (!isfinite(v) || v <= 0) continue;
            const double *col = palette[s % NCOLOURS];
            cairo_set_source_rgb(c.cr, col[0], col[1], col[2]);
            double hgt = (c.y1 - c.y0) * v / top;
            cairo_rectangle(c.cr, c.x0 + slot * i + slot * 0.1 + bw * s, c.y1 - hgt, bw, hgt);
            cairo_fill(c.cr);
        }
        cairo_set_source_rgb(c.cr, 0.2, 0.2, 0.2);
        text_at(c.cr, names[i], c.x0 + slot * (i + 0.5), c.y1 + 10, n > 12 ? 8 : 10, n > 8 ? 1 : 0.5, n > 8 ? -M_PI / 5 : 0);
    }
    legend(&c, series, nseries, c.x1 - 90); /* top right, inside the plot area */
    frame_labels(&c, f);
    return canvas_close(&c, out);
}

int lathe_plot_histogram(const lathe_plot_frame *f, const double *edges, const double *counts, size_t nbins,
                         lathe_png *out) {
    if (nbins == 0 || !(edges[nbins] > edges[0])) return lathe_fail(LATHE_EINVAL, "histogram without a range");
    canvas c;
    int rc = canvas_open(f, &c);
    if (rc) return rc;
    double top = 0;
    for (size_t i = 0; i < nbins; i++) top = fmax(top, counts[i]);
    top = value_axis(&c, 0, top * 1.05);
    double lo = edges[0], span = edges[nbins] - lo, pw = c.x1 - c.x0;
    const double *col = palette[0];
    for (size_t i = 0; i < nbins; i++) {
        double xa = c.x0 + pw * (edges[i] - lo) / span, xb = c.x0 + pw * (edges[i + 1] - lo) / span;
        double hgt = (c.y1 - c.y0) * counts[i] / top;
        cairo_set_source_rgb(c.cr, col[0], col[1], col[2]);
        cairo_rectangle(c.cr, xa + 0.5, c.y1 - hgt, fmax(xb - xa - 1, 1), hgt);
        cairo_fill(c.cr);
    }
    double step = nice_step(span, 6), ticks[MAX_TICKS];
    int nt = axis_ticks(lo, edges[nbins] + step * 1e-6, step, ticks);
    char buf[32];
    cairo_set_source_rgb(c.cr, 0.2, 0.2, 0.2);
    for (int t = 0; t < nt; t++) {
        number_text(buf, sizeof buf, ticks[t]);
        text_at(c.cr, buf, c.x0 + pw * (ticks[t] - lo) / span, c.y1 + 12, 10, 0.5, 0);
    }
    frame_labels(&c, f);
    return canvas_close(&c, out);
}

int lathe_plot_heatmap(const lathe_plot_frame *f, const double *v, int rows, int cols, const char *const *row_names,
                       const char *const *col_names, lathe_png *out) {
    if (rows < 1 || cols < 1) return lathe_fail(LATHE_EINVAL, "empty heatmap");
    canvas c;
    int rc = canvas_open(f, &c);
    if (rc) return rc;
    if (row_names || col_names) c.x0 = 110, c.y1 = c.h - 80;
    double top = 0;
    for (int i = 0; i < rows * cols; i++) top = fmax(top, v[i]);
    double cw = (c.x1 - c.x0) / cols, ch = (c.y1 - c.y0) / rows;
    char buf[32];
    for (int r = 0; r < rows; r++)
        for (int k = 0; k < cols; k++) {
            double t = top > 0 ? v[r * cols + k] / top : 0; /* white to dark blue */
            cairo_set_source_rgb(c.cr, 1 - 0.85 * t, 1 - 0.7 * t, 1 - 0.35 * t);
            cairo_rectangle(c.cr, c.x0 + k * cw, c.y0 + r * ch, cw + 0.5, ch + 0.5);
            cairo_fill(c.cr);
            if (rows <= 12 && cols <= 12) {
                cairo_set_source_rgb(c.cr, t > 0.6 ? 1 : 0.1, t > 0.6 ? 1 : 0.1, t > 0.6 ? 1 : 0.1);
                number_text(buf, sizeof buf, v[r * cols + k]);
                text_at(c.cr, buf, c.x0 + (k + 0.5) * cw, c.y0 + (r + 0.5) * ch, 10, 0.5, 0);
            }
        }
    cairo_set_source_rgb(c.cr, 0.2, 0.2, 0.2);
    for (int r = 0; r < rows && row_names; r++) text_at(c.cr, row_names[r], c.x0 - 6, c.y0 + (r + 0.5) * ch, 10, 1, 0);
    for (int k = 0; k < cols && col_names; k++)
        text_at(c.cr, col_names[k], c.x0 + (k + 0.5) * cw, c.y1 + 8, 10, 1, -M_PI / 4);
    if (!row_names && !col_names)
        for (int t = 0; t <= 4; t++) {
            snprintf(buf, sizeof buf, "%.2g", t / 4.0);
            text_at(c.cr, buf, c.x0 + (c.x1 - c.x0) * t / 4, c.y1 + 12, 10, 0.5, 0);
            text_at(c.cr, buf, c.x0 - 6, c.y0 + (c.y1 - c.y0) * t / 4, 10, 1, 0);
        }
    frame_labels(&c, f);
    return canvas_close(&c, out);
}

int lathe_plot_lines(const lathe_plot_frame *f, const double *x, size_t n, const double *y, int nseries,
                     const char *const *series, lathe_png *out) {
    if (n == 0 || nseries < 1) return lathe_fail(LATHE_EINVAL, "line chart without points");
    double xlo = INFINITY, xhi = -INFINITY, ylo = 0, yhi = 0;
    for (size_t i = 0; i < n; i++)
        if (isfinite(x[i])) xlo = fmin(xlo, x[i]), xhi = fmax(xhi, x[i]);
    if (!(xlo <= xhi)) return lathe_fail(LATHE_EINVAL, "line chart without a finite x");
    if (xhi == xlo) xlo -= 0.5, xhi += 0.5;
    for (size_t i = 0; i < n * (size_t)nseries; i++)
        if (isfinite(y[i])) ylo = fmin(ylo, y[i]), yhi = fmax(yhi, y[i]);
    canvas c;
    int rc = canvas_open(f, &c);
    if (rc) return rc;
    if (series) c.x1 = c.w - LEGEND_W;
    yhi = value_axis(&c, ylo, yhi + 0.05 * (yhi - ylo));
    double pw = c.x1 - c.x0, ph = c.y1 - c.y0, step = nice_step(xhi - xlo, 6), ticks[MAX_TICKS];
    int nt = axis_ticks(xlo, xhi + step * 1e-6, step, ticks);
    char buf[32];
    cairo_set_source_rgb(c.cr, 0.2, 0.2, 0.2);
    for (int t = 0; t < nt; t++) {
        number_text(buf, sizeof buf, ticks[t]);
        text_at(c.cr, buf, c.x0 + pw * (ticks[t] - xlo) / (xhi - xlo), c.y1 + 12, 10, 0.5, 0);
    }
    cairo_set_line_width(c.cr, 2);
    cairo_set_line_join(c.cr, CAIRO_LINE_JOIN_ROUND);
    for (int s = 0; s < nseries; s++) {
        const double *col = palette[s % NCOLOURS], *ys = y + (size_t)s * n;
        cairo_set_source_rgb(c.cr, col[0], col[1], col[2]);
        int drawing = 0; /* a non-finite point breaks the line */
        for (size_t i = 0; i < n; i++) {
            if (!isfinite(x[i]) || !isfinite(ys[i])) {
                drawing = 0;
                continue;
            }
            double px = c.x0 + pw * (x[i] - xlo) / (xhi - xlo), py = c.y1 - ph * (ys[i] - ylo) / (yhi - ylo);
            if (drawing) cairo_line_to(c.cr, px, py);
            else cairo_move_to(c.cr, px, py);
            drawing = 1;
        }
        cairo_stroke(c.cr);
        for (size_t i = 0; n <= 30 && i < n; i++) { /* dots show where the few points are */
            if (!isfinite(x[i]) || !isfinite(ys[i])) continue;
            cairo_arc(c.cr, c.x0 + pw * (x[i] - xlo) / (xhi - xlo), c.y1 - ph * (ys[i] - ylo) / (yhi - ylo), 3, 0,
                      2 * M_PI);
            cairo_fill(c.cr);
        }
    }
    legend(&c, series, nseries, c.x1 + 10);
    frame_labels(&c, f);
    return canvas_close(&c, out);
}
