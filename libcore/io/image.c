/* image.c - image buffers, format sniffing, the decode dispatch and EXIF orientation. */
#include "image.h"

#include <stdlib.h>
#include <string.h>

#include "../base/error.h"
#include "image_codec.h"

int lathe_image_alloc(lathe_image *img, int width, int height, int channels) {
    img->pixels = NULL;
    img->width = img->height = img->channels = 0;
    if (width <= 0 || height <= 0 || channels <= 0 || channels > 4)
        return lathe_fail(LATHE_EINVAL, "image of %dx%dx%d", width, height, channels);
    size_t bytes = (size_t)width * (size_t)height * (size_t)channels;
    if (!(img->pixels = malloc(bytes))) return lathe_fail(LATHE_ENOMEM, "image of %zu bytes", bytes);
    img->width = width;
    img->height = height;
    img->channels = channels;
    return 0;
}

void lathe_image_rgb_to_luma(lathe_image *img) {
    size_t n = (size_t)img->width * img->height;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *p = img->pixels + 3 * i;
        img->pixels[i] = (uint8_t)((p[0] * 19595 + p[1] * 38470 + p[2] * 7471 + 0x8000) >> 16);
    }
    img->channels = 1;
}

void lathe_image_free(lathe_image *img) {
    if (!img) return;
    free(img->pixels);
    img->pixels = NULL;
    img->width = img->height = img->channels = 0;
}

int lathe_image_sniff(const uint8_t *data, size_t len) {
    if (len >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF) return LATHE_FORMAT_JPEG;
    if (len >= 8 && memcmp(data, "\x89PNG\r\n\x1a\n", 8) == 0) return LATHE_FORMAT_PNG;
    return LATHE_FORMAT_UNKNOWN;
}

/* A name for formats lathe recognises but does not decode, for the reject message. */
static const char *other_format(const uint8_t *data, size_t len) {
    if (len >= 2 && data[0] == 'B' && data[1] == 'M') return "BMP";
    if (len >= 4 && (memcmp(data, "II*\0", 4) == 0 || memcmp(data, "MM\0*", 4) == 0)) return "TIFF";
    if (len >= 6 && (memcmp(data, "GIF87a", 6) == 0 || memcmp(data, "GIF89a", 6) == 0)) return "GIF";
    if (len >= 12 && memcmp(data, "RIFF", 4) == 0 && memcmp(data + 8, "WEBP", 4) == 0) return "WebP";
    return NULL;
}

static int unknown_format(const uint8_t *data, size_t len) {
    if (len == 0) return lathe_fail(LATHE_EFORMAT, "empty file");
    const char *name = other_format(data, len);
    if (name) return lathe_fail(LATHE_EUNSUPPORTED, "%s images are not supported (JPEG and PNG are)", name);
    return lathe_fail(LATHE_EUNSUPPORTED, "not a JPEG or PNG image");
}

int lathe_image_probe(const uint8_t *data, size_t len, lathe_image_info *info) {
    switch (lathe_image_sniff(data, len)) {
    case LATHE_FORMAT_JPEG: return lathe_jpeg_probe(data, len, info);
    case LATHE_FORMAT_PNG: return lathe_png_probe(data, len, info);
    default: return unknown_format(data, len);
    }
}

int lathe_image_decode_as(const uint8_t *data, size_t len, const lathe_decode_opts *opts, int orientation,
                          lathe_image *img, lathe_image_info *info) {
    lathe_image_info local;
    lathe_decode_opts defaults = {.channels = 3};
    if (!info) info = &local;
    if (!opts) opts = &defaults;
    img->pixels = NULL;
    switch (lathe_image_sniff(data, len)) {
    case LATHE_FORMAT_JPEG: return lathe_jpeg_decode(data, len, opts, orientation, img, info);
    case LATHE_FORMAT_PNG: return lathe_png_decode(data, len, opts, orientation, img, info);
    default: return unknown_format(data, len);
    }
}

int lathe_image_decode(const uint8_t *data, size_t len, const lathe_decode_opts *opts, lathe_image *img,
                       lathe_image_info *info) {
    return lathe_image_decode_as(data, len, opts, 0, img, info);
}

static uint16_t read16(const uint8_t *p, int little) { return little ? p[0] | p[1] << 8 : p[0] << 8 | p[1]; }
static uint32_t read32(const uint8_t *p, int little) {
    return little ? (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24
                  : (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

int lathe_exif_orientation(const uint8_t *tiff, size_t len) {
    if (len < 8) return 1;
    int little;
    if (tiff[0] == 'I' && tiff[1] == 'I') little = 1;
    else if (tiff[0] == 'M' && tiff[1] == 'M') little = 0;
    else return 1;
    uint32_t ifd = read32(tiff + 4, little);
    if (ifd > len - 2) return 1;
    uint16_t count = read16(tiff + ifd, little);
    for (uint32_t i = 0; i < count; i++) {
        size_t at = (size_t)ifd + 2 + (size_t)i * 12;
        if (at + 12 > len) return 1;
        if (read16(tiff + at, little) != 0x0112) continue;
        uint16_t type = read16(tiff + at + 2, little);
        if (type != 3) return 1; /* SHORT */
        uint16_t v = read16(tiff + at + 8, little);
        return v >= 1 && v <= 8 ? v : 1;
    }
    return 1;
}

void lathe_image_info_set_shown(lathe_image_info *info, int w, int h, int orientation) {
    info->orientation = orientation;
    info->width = orientation >= 5 ? h : w;
    info->height = orientation >= 5 ? w : h;
}

void lathe_image_info_orient_as(lathe_image_info *info, int orientation) {
    if (orientation < 1 || orientation > 8) return;
    int swap = info->orientation >= 5;
    lathe_image_info_set_shown(info, swap ? info->height : info->width, swap ? info->width : info->height, orientation);
}

/* Source pixel (sx, sy) for output pixel (ox, oy) under EXIF orientation o of a W x H source. */
static void source_of(int o, int W, int H, int ox, int oy, int *sx, int *sy) {
    switch (o) {
    case 2: *sx = W - 1 - ox, *sy = oy; break;          /* mirrored */
    case 3: *sx = W - 1 - ox, *sy = H - 1 - oy; break;  /* rotated 180 */
    case 4: *sx = ox, *sy = H - 1 - oy; break;          /* flipped */
    case 5: *sx = oy, *sy = ox; break;                  /* transposed */
    case 6: *sx = oy, *sy = H - 1 - ox; break;          /* shown rotated 90 clockwise */
    case 7: *sx = W - 1 - oy, *sy = H - 1 - ox; break;  /* transversed */
    case 8: *sx = W - 1 - oy, *sy = ox; break;          /* shown rotated 90 counter-clockwise */
    default: *sx = ox, *sy = oy; break;
    }
}

int lathe_image_orient(lathe_image *img, int orientation) {
    if (orientation <= 1 || orientation > 8) return 0;
    int W = img->width, H = img->height, C = img->channels;
    int ow = orientation >= 5 ? H : W, oh = orientation >= 5 ? W : H;
    lathe_image out;
    int rc = lathe_image_alloc(&out, ow, oh, C);
    if (rc) return rc;
    for (int oy = 0; oy < oh; oy++) {
        for (int ox = 0; ox < ow; ox++) {
            int sx, sy;
            source_of(orientation, W, H, ox, oy, &sx, &sy);
            memcpy(out.pixels + ((size_t)oy * ow + ox) * C, img->pixels + ((size_t)sy * W + sx) * C, (size_t)C);
        }
    }
    lathe_image_free(img);
    *img = out;
    return 0;
}
