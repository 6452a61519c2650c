/* plot_internal.h - what plot.c shares with the other cairo drawing of libcore/eval (draw.c):
 * encoding a surface as PNG bytes. Not installed. */
#ifndef LATHE_EVAL_PLOT_INTERNAL_H
#define LATHE_EVAL_PLOT_INTERNAL_H
#include <cairo.h>

#include "plot.h"

/* Encodes surface as PNG into out (malloc'd bytes). Returns 0 or -LATHE_ENOMEM. */
int plot_surface_png(cairo_surface_t *surface, lathe_png *out);

#endif
