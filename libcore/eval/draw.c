/* draw.c - boxes over an image (draw.h). Line widths and the font scale with the image so tags stay
 * readable on both a 320 and a 1280 pixel image. */
#include "draw.h"

#include <cairo.h>
#include <math.h>
#include <stdio.h>

#include "libcore/base/error.h"
#include "plot_internal.h"

/* no red in the class palette: red is kept for missed ground truth */
enum { NCOLOURS = 12 };
static const double class_colour[NCOLOURS][3] = {
    {0.12, 0.47, 0.71}, {1.00, 0.50, 0.05}, {0.17, 0.63, 0.17}, {0.58, 0.40, 0.74},
    {0.55, 0.34, 0.29}, {0.89, 0.47, 0.76}, {0.74, 0.74, 0.13}, {0.09, 0.75, 0.81},
    {0.00, 0.00, 0.55}, {0.00, 0.50, 0.50}, {0.60, 0.90, 0.20}, {1.00, 0.85, 0.00}};
static const double missed_colour[3] = {0.90, 0.00, 0.00};

typedef struct {
    cairo_t *cr;
    int w, h;
    double line, font; /* pixels */
} pen;

static const double *colour_of(const lathe_drawn_box *b) {
    if (b->kind == LATHE_DRAWN_MISSED) return missed_colour;
    unsigned k = b->label >= 0 ? (unsigned)b->label : (unsigned)(-(int64_t)b->label);
    return class_colour[k % NCOLOURS];
}

/* The box ordered and clipped to a little outside the image (so that cairo never sees huge
 * coordinates); 0 when it has a non-finite coordinate or lies wholly outside. */
static int visible_rect(const pen *p, const lathe_drawn_box *b, double r[4]) {
    if (!isfinite(b->x1) || !isfinite(b->y1) || !isfinite(b->x2) || !isfinite(b->y2)) return 0;
    double x1 = fmin(b->x1, b->x2), x2 = fmax(b->x1, b->x2), y1 = fmin(b->y1, b->y2), y2 = fmax(b->y1, b->y2);
    if (x2 < 0 || y2 < 0 || x1 > p->w || y1 > p->h) return 0;
    double m = 4 * p->line; /* past the edge by more than a line width: the clipped edge stays hidden */
    r[0] = fmax(x1, -m), r[1] = fmax(y1, -m), r[2] = fmin(x2, p->w + m), r[3] = fmin(y2, p->h + m);
    return 1;
}

static void outline(const pen *p, const lathe_drawn_box *b, const double r[4]) {
    const double *c = colour_of(b);
    double lw = b->kind == LATHE_DRAWN_MISSED ? 2 * p->line : p->line;
    double dash[2] = {4 * lw, 3 * lw};
    cairo_set_source_rgb(p->cr, c[0], c[1], c[2]);
    cairo_set_line_width(p->cr, lw);
    cairo_set_dash(p->cr, dash, b->kind == LATHE_DRAWN_PREDICTION ? 0 : 2, 0);
    cairo_rectangle(p->cr, r[0], r[1], r[2] - r[0], r[3] - r[1]);
    cairo_stroke(p->cr);
}

/* "name 0.87" on a filled tag above the box's top-left corner (inside when there is no room) */
static void tag(const pen *p, const lathe_drawn_box *b, const double r[4], const char *const *names, int nclasses) {
    char text[160], name[32];
    const char *cls = b->label >= 0 && b->label < nclasses && names && names[b->label] ? names[b->label] : NULL;
    if (!cls) snprintf(name, sizeof name, "class %d", (int)b->label), cls = name;
    if (b->score >= 0) snprintf(text, sizeof text, "%s %.2f", cls, b->score);
    else snprintf(text, sizeof text, "%s", cls);
    cairo_text_extents_t e;
    cairo_set_font_size(p->cr, p->font);
    cairo_text_extents(p->cr, text, &e);
    double pad = p->font * 0.25, tw = e.x_advance + 2 * pad, th = p->font * 1.3;
    double x = fmax(0, fmin(r[0], p->w - tw)), y = r[1] - th >= 0 ? r[1] - th : r[1];
    y = fmax(0, fmin(y, p->h - th));
    const double *c = colour_of(b);
    cairo_set_source_rgb(p->cr, c[0], c[1], c[2]);
    cairo_rectangle(p->cr, x, y, tw, th);
    cairo_fill(p->cr);
    double luma = 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2], ink = luma > 0.55 ? 0 : 1;
    cairo_set_source_rgb(p->cr, ink, ink, ink);
    cairo_move_to(p->cr, x + pad, y + th - p->font * 0.35);
    cairo_show_text(p->cr, text);
}

static void copy_pixels(cairo_surface_t *s, const uint8_t *rgb, int w, int h) {
    cairo_surface_flush(s);
    unsigned char *data = cairo_image_surface_get_data(s);
    int stride = cairo_image_surface_get_stride(s);
    for (int y = 0; y < h; y++) {
        uint32_t *row = (uint32_t *)(data + (size_t)y * stride); /* RGB24: native-endian 0x00RRGGBB */
        const uint8_t *src = rgb + (size_t)y * w * 3;
        for (int x = 0; x < w; x++)
            row[x] = (uint32_t)src[3 * x] << 16 | (uint32_t)src[3 * x + 1] << 8 | src[3 * x + 2];
    }
    cairo_surface_mark_dirty(s);
}

int lathe_draw_boxes(const uint8_t *rgb, int w, int h, const lathe_drawn_box *boxes, size_t n,
                     const char *const *class_names, int nclasses, lathe_png *out) {
    out->data = NULL;
    out->len = 0;
    if (!rgb || w < 1 || h < 1 || w > 32767 || h > 32767)
        return lathe_fail(LATHE_EINVAL, "cannot draw on an image of %dx%d", w, h);
    if (n && !boxes) return lathe_fail(LATHE_EINVAL, "%zu boxes but no array", n);
    for (size_t i = 0; i < n; i++)
        if (boxes[i].kind < LATHE_DRAWN_PREDICTION || boxes[i].kind > LATHE_DRAWN_MISSED)
            return lathe_fail(LATHE_EINVAL, "box %zu: unknown kind %d", i, boxes[i].kind);
    cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, w, h);
    cairo_t *cr = cairo_create(s);
    if (cairo_status(cr) != CAIRO_STATUS_SUCCESS) {
        cairo_destroy(cr);
        cairo_surface_destroy(s);
        return lathe_fail(LATHE_ENOMEM, "cairo surface of %dx%d", w, h);
    }
    copy_pixels(s, rgb, w, h);
    double side = w < h ? w : h;
    pen p = {cr, w, h, fmax(1.5, side / 320), fmin(fmax(side / 40, 9), 28)};
    cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_BOLD);
    double r[4];
    for (int pass = 0; pass < 3; pass++) /* ground truth, then predictions over it, then all tags */
        for (size_t i = 0; i < n; i++) {
            const lathe_drawn_box *b = &boxes[i];
            if (!visible_rect(&p, b, r)) continue;
            if (pass == 0 && b->kind != LATHE_DRAWN_PREDICTION) outline(&p, b, r);
            if (pass == 1 && b->kind == LATHE_DRAWN_PREDICTION) outline(&p, b, r);
            if (pass == 2 && b->kind != LATHE_DRAWN_TRUTH) tag(&p, b, r, class_names, nclasses);
        }
    int rc = plot_surface_png(s, lathe_png_encode_small, out); /* a photo a report keeps */
    cairo_destroy(cr);
    cairo_surface_destroy(s);
    return rc;
}
