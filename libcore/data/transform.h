/* transform.h - the geometric step of ingest: resize (separable, antialiased bilinear), letterbox
 * onto a square canvas, tiles of large images, the matching box transform, and the perceptual
 * hash. Pure functions on buffers: no I/O, no global state. */
#ifndef LATHE_DATA_TRANSFORM_H
#define LATHE_DATA_TRANSFORM_H
#include <stdint.h>

#include "../io/image.h"
#ifdef __cplusplus
extern "C" {
#endif

#define LATHE_LETTERBOX_FILL 114 /* the grey YOLO-family loaders pad with */

/* Where a W x H source lands in an S x S letterbox: stored = source * scale + pad. */
typedef struct {
    int width, height;   /* resized size inside the canvas */
    float scale_x, scale_y, pad_x, pad_y;
} lathe_letterbox;

lathe_letterbox lathe_letterbox_plan(int src_w, int src_h, int size);
/* Resizes src (any size, C channels) to plan's size and pastes it centred on an S x S canvas filled
 * with `fill`. nearest = 1 for masks (no new values). dst must hold S*S*C. Returns 0 or -LATHE_ENOMEM. */
int lathe_letterbox_into(const lathe_image *src, const lathe_letterbox *plan, int size, uint8_t fill, int nearest,
                         uint8_t *dst);
/* Resizes src to dst_w x dst_h into dst (row stride dst_stride bytes). Returns 0 or -LATHE_ENOMEM. */
int lathe_resize_into(const lathe_image *src, int dst_w, int dst_h, int nearest, uint8_t *dst, size_t dst_stride);

/* Tile origins along one axis of length n for tiles of t with overlap o: the last tile ends at the
 * edge; a source shorter than t gives one tile at 0. Writes up to cap origins, returns the count. */
int lathe_tile_origins(int n, int t, int o, int *origins, int cap);
/* Copies the t x t tile at (x0, y0) of src into dst, padding outside the source with fill. */
void lathe_tile_copy(const lathe_image *src, int x0, int y0, int t, uint8_t fill, uint8_t *dst);

/* 64-bit difference hash: the image reduced to 9x8 luma, one bit per horizontal gradient sign. */
uint64_t lathe_dhash(const lathe_image *img);

#ifdef __cplusplus
}
#endif
#endif
