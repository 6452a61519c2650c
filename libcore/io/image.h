/* image.h - decoded images and the JPEG/PNG codecs (libjpeg-turbo's TurboJPEG API, libpng).
 * Pixels are 8-bit, row-major (H, W, C), C = 1 (gray) or 3 (RGB). Decoding applies the EXIF
 * orientation (a JPEG's APP1, a PNG's eXIf chunk), so width/height are those of the image as it is
 * meant to be seen. */
#ifndef LATHE_IO_IMAGE_H
#define LATHE_IO_IMAGE_H
#include <stddef.h>
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int width, height, channels;
    uint8_t *pixels; /* (H, W, C), owned; free with lathe_image_free */
} lathe_image;

enum { LATHE_FORMAT_UNKNOWN = 0, LATHE_FORMAT_JPEG, LATHE_FORMAT_PNG };

typedef struct {
    uint64_t max_pixels;  /* reject (LATHE_ELIMIT) before decoding when W*H is larger; 0 = no limit */
    int min_width;        /* JPEG: decode at the smallest scale (1/8..1) whose size still covers */
    int min_height;       /*   min_width x min_height after orientation; 0 = full size */
    int channels;         /* 3 = RGB (gray is replicated, alpha dropped), 1 = luma */
} lathe_decode_opts;

typedef struct {
    int format;               /* LATHE_FORMAT_* */
    int width, height;        /* full size after EXIF orientation */
    int orientation;          /* EXIF orientation applied, 1..8 (1 = none) */
    int source_channels;      /* channels as stored (1 gray, 2 gray+alpha, 3, 4, palette = 3) */
    int bit_depth;            /* 8 or 16 */
} lathe_image_info;

/* Allocates an uninitialised (H, W, C) image. Returns 0 or -LATHE_ENOMEM/-LATHE_EINVAL. */
int lathe_image_alloc(lathe_image *img, int width, int height, int channels);
void lathe_image_free(lathe_image *img);

/* Which codec the magic bytes name (LATHE_FORMAT_UNKNOWN for anything else). */
int lathe_image_sniff(const uint8_t *data, size_t len);
/* Reads the header only: format, size after orientation. Returns 0 or a negative code. */
int lathe_image_probe(const uint8_t *data, size_t len, lathe_image_info *info);
/* Decodes a JPEG or PNG held in memory. Fails with -LATHE_EFORMAT (corrupt, truncated, empty),
 * -LATHE_EUNSUPPORTED (not JPEG/PNG) or -LATHE_ELIMIT (over max_pixels), with a message; on
 * failure *img is left empty. info may be NULL. */
int lathe_image_decode(const uint8_t *data, size_t len, const lathe_decode_opts *opts, lathe_image *img,
                       lathe_image_info *info);
/* As lathe_image_decode, but turned by orientation (1..8) whatever EXIF orientation the file holds:
 * a dataset's encoded store decodes each image as its ingest recorded it in /meta. */
int lathe_image_decode_as(const uint8_t *data, size_t len, const lathe_decode_opts *opts, int orientation,
                          lathe_image *img, lathe_image_info *info);

/* Encodes to JPEG (quality 1..100, 4:2:0) or PNG; *out is malloc'ed. Returns 0 or a negative code. */
int lathe_jpeg_encode(const lathe_image *img, int quality, uint8_t **out, size_t *len);
int lathe_png_encode(const lathe_image *img, uint8_t **out, size_t *len);
/* PNG for drawn graphics (charts: flat colour, sharp edges): on those, smaller than the other two, and fast. */
int lathe_png_encode_graphics(const lathe_image *img, uint8_t **out, size_t *len);
/* PNG as small as libpng makes it (every filter tried, level 6): photos kept in reports. Slow. */
int lathe_png_encode_small(const lathe_image *img, uint8_t **out, size_t *len);

/* EXIF orientation (1..8) found in a JPEG's APP1 segment, 1 when absent or unreadable. */
int lathe_jpeg_exif_orientation(const uint8_t *data, size_t len);
/* Applies an EXIF orientation to img in place (reallocating). Returns 0 or -LATHE_ENOMEM. */
int lathe_image_orient(lathe_image *img, int orientation);

#ifdef __cplusplus
}
#endif
#endif
