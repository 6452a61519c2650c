/* plot_internal.h - what plot.c shares with the other cairo drawing of libcore/eval (draw.c):
 * encoding a surface as PNG bytes. Not installed. */
#ifndef LATHE_EVAL_PLOT_INTERNAL_H
#define LATHE_EVAL_PLOT_INTERNAL_H
#include <cairo.h>

#include "libcore/io/image.h"
#include "plot.h"

/* A PNG encoder of libcore/io/image.h: lathe_png_encode_graphics (charts), lathe_png_encode_small (photos). */
typedef int (*plot_png_encoder)(const lathe_image *img, uint8_t **out, size_t *len);

/* Encodes an RGB24 image surface as PNG with encode into out (malloc'd bytes). Returns 0,
 * -LATHE_EINVAL or -LATHE_ENOMEM. */
int plot_surface_png(cairo_surface_t *surface, plot_png_encoder encode, lathe_png *out);

#endif
