/* plot.h - small titled charts with labelled axes drawn with cairo into PNG bytes: bars (one or
 * more series), histograms, heatmaps and line charts. Used by the analysis and evaluation reports. */
#ifndef LATHE_EVAL_PLOT_H
#define LATHE_EVAL_PLOT_H
#include <stddef.h>
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    const char *title, *xlabel, *ylabel;
    int width, height; /* pixels, 0 = 640 x 360 */
} lathe_plot_frame;

typedef struct {
    unsigned char *data; /* PNG file bytes (malloc) */
    size_t len;
} lathe_png;

/* Grouped bars: values (nseries, n), series named in series (may be NULL when nseries is 1),
 * categories named in names. Returns 0, -LATHE_EINVAL or -LATHE_ENOMEM. */
int lathe_plot_bars(const lathe_plot_frame *f, const char *const *names, size_t n, const double *values, int nseries,
                    const char *const *series, lathe_png *out);
/* Histogram: counts of nbins bins between edges (nbins + 1). */
int lathe_plot_histogram(const lathe_plot_frame *f, const double *edges, const double *counts, size_t nbins,
                         lathe_png *out);
/* Heatmap of v (rows, cols), row 0 at the top; row and column names may be NULL (then the axes run
 * 0..1, for normalized positions). Cells are labelled with their values when the grid is small. */
int lathe_plot_heatmap(const lathe_plot_frame *f, const double *v, int rows, int cols, const char *const *row_names,
                       const char *const *col_names, lathe_png *out);
/* Lines: nseries series of values y (nseries, n) over the shared x (n), named in series (NULL: no
 * legend). The value axis runs from min(0, smallest y) to the largest; a non-finite y or x breaks
 * the line there. Returns 0, -LATHE_EINVAL (no points, no finite x) or -LATHE_ENOMEM. */
int lathe_plot_lines(const lathe_plot_frame *f, const double *x, size_t n, const double *y, int nseries,
                     const char *const *series, lathe_png *out);
void lathe_png_free(lathe_png *p);
/* Writes the PNG bytes to path durably (lathe_write_atomic). Returns 0, -LATHE_EINVAL (no bytes) or -LATHE_EIO. */
int lathe_png_write_file(const lathe_png *p, const char *path);

#ifdef __cplusplus
}
#endif
#endif
