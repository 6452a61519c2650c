/* image_stats.h - what `lathe analyze` measures in one image: brightness, contrast, sharpness,
 * colour, clipped shares and a DCT perceptual hash, over the content rectangle only (letterbox
 * padding and tile padding excluded). Shape letters: H height, W width, C channels (3). */
#ifndef LATHE_ANALYZE_IMAGE_STATS_H
#define LATHE_ANALYZE_IMAGE_STATS_H
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif

enum { LATHE_THUMB_SIDE = 16 };

typedef struct {
    int x0, y0, x1, y1; /* content rectangle in pixels: columns x0..x1-1, rows y0..y1-1 */
} lathe_rect;

typedef struct {
    double brightness; /* mean luma Y = 0.299 R + 0.587 G + 0.114 B, 0..255 */
    double contrast;   /* population standard deviation of Y */
    double sharpness;  /* population variance of the 4-neighbour Laplacian of Y over interior pixels
                          (0 when the rectangle is under 3x3) */
    double rgb[3];     /* mean of each channel */
    double bright_share, dark_share; /* shares of pixels with Y >= 250 and Y <= 5 */
    uint64_t phash;    /* 64-bit DCT hash of the thumbnail (see image_stats.c) */
    uint8_t thumb[LATHE_THUMB_SIDE * LATHE_THUMB_SIDE]; /* luma of the central 80%, 16x16 area averages */
} lathe_image_stats;

/* The content rectangle of a stored image (H x W) from its /meta mapping
 * (stored = (source - tile) * scale + pad), clamped to the image; empty when it lies outside. */
lathe_rect lathe_content_rect(int width, int height, int orig_width, int orig_height, float scale_x,
                              float scale_y, float pad_x, float pad_y, int tile_x, int tile_y);

/* Measures pixels (H, W, 3) inside r. Returns 0, or -LATHE_EINVAL when r is empty or not inside
 * the image. scratch must hold (x1-x0)*(y1-y0) floats (luma). */
int lathe_image_stats_compute(const uint8_t *pixels, int width, int height, lathe_rect r, float *scratch,
                              lathe_image_stats *out);

/* Luma Y = 0.299 R + 0.587 G + 0.114 B (float) of the pixels (H, W, 3) inside r, row by row. */
void lathe_luma(const uint8_t *pixels, int width, lathe_rect r, float *out);
/* Area averages of the central `fraction` (0..1] of luma (h, w) on a side x side grid. */
void lathe_area_grid(const float *luma, int w, int h, double fraction, int side, float *grid);
/* Pearson correlation of two grids of n cells, -1..1 (flat grids: 1 when both are flat, else 0). */
double lathe_grid_similarity(const float *a, const float *b, int n);

/* Pearson correlation of two thumbnails, -1..1 (1: the same picture up to brightness and contrast). */
double lathe_thumb_similarity(const uint8_t *a, const uint8_t *b);

/* Bits that differ between two hashes. */
static inline int lathe_hamming64(uint64_t a, uint64_t b) { return __builtin_popcountll(a ^ b); }

#ifdef __cplusplus
}
#endif
#endif
