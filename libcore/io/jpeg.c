/* jpeg.c - JPEG through libjpeg-turbo's TurboJPEG API: header probe, decoding at a reduced scale
 * (the DCT scaling TurboJPEG offers) with the EXIF orientation applied, and encoding. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

#include "../base/error.h"
#include "image_codec.h"

int lathe_jpeg_exif_orientation(const uint8_t *data, size_t len) {
    if (len < 4 || data[0] != 0xFF || data[1] != 0xD8) return 1;
    size_t at = 2;
    while (at + 4 <= len) {
        if (data[at] != 0xFF) return 1;
        uint8_t marker = data[at + 1];
        if (marker == 0xFF) { /* fill byte */
            at++;
            continue;
        }
        if (marker == 0xDA || marker == 0xD9) return 1; /* scan data or end: no EXIF before it */
        size_t seglen = (size_t)data[at + 2] << 8 | data[at + 3];
        if (seglen < 2 || at + 2 + seglen > len) return 1;
        const uint8_t *seg = data + at + 4;
        size_t body = seglen - 2;
        if (marker == 0xE1 && body >= 6 && memcmp(seg, "Exif\0\0", 6) == 0)
            return lathe_exif_orientation(seg + 6, body - 6);
        at += 2 + seglen;
    }
    return 1;
}

static int tj_failure(tjhandle tj, int code, const char *what) {
    return lathe_fail(code, "%s: %s", what, tj ? tjGetErrorStr2(tj) : tjGetErrorStr2(NULL));
}

/* tjDecompress2 failed. Warnings (a truncated file, a corrupt segment) are failures too: a damaged
 * image is rejected. */
static int decompress_failure(tjhandle tj) {
    return tj_failure(tj, LATHE_EFORMAT, tjGetErrorCode(tj) == TJERR_WARNING ? "damaged jpeg" : "corrupt jpeg");
}

int lathe_jpeg_probe(const uint8_t *data, size_t len, lathe_image_info *info) {
    tjhandle tj = tjInitDecompress();
    if (!tj) return tj_failure(NULL, LATHE_ENOMEM, "jpeg decoder");
    /* TurboJPEG 2.1 can return 0 without setting these (a datastream cut after SOI: tables only),
     * so they start as a size the check below refuses, never as stack garbage */
    int w = 0, h = 0, subsamp = -1, colorspace = -1;
    int rc = 0;
    if (len > ULONG_MAX || tjDecompressHeader3(tj, data, (unsigned long)len, &w, &h, &subsamp, &colorspace) != 0)
        rc = tj_failure(tj, LATHE_EFORMAT, "corrupt jpeg header");
    tjDestroy(tj);
    if (rc) return rc;
    if (w <= 0 || h <= 0) return lathe_fail(LATHE_EFORMAT, "jpeg of size %dx%d", w, h);
    info->format = LATHE_FORMAT_JPEG;
    lathe_image_info_set_shown(info, w, h, lathe_jpeg_exif_orientation(data, len));
    info->source_channels = colorspace == TJCS_GRAY ? 1 : colorspace == TJCS_CMYK || colorspace == TJCS_YCCK ? 4 : 3;
    info->bit_depth = 8;
    return 0;
}

/* The smallest TurboJPEG scale whose output still covers need_w x need_h (stored orientation). */
static tjscalingfactor pick_scale(int w, int h, int need_w, int need_h) {
    tjscalingfactor best = {1, 1};
    int n = 0;
    tjscalingfactor *factors = tjGetScalingFactors(&n);
    if (need_w <= 0 || need_h <= 0 || !factors) return best;
    int best_w = w;
    for (int i = 0; i < n; i++) {
        tjscalingfactor f = factors[i];
        if (f.num > f.denom) continue; /* never upscale inside the decoder */
        int sw = TJSCALED(w, f), sh = TJSCALED(h, f);
        if (sw >= need_w && sh >= need_h && sw < best_w) {
            best = f;
            best_w = sw;
        }
    }
    return best;
}

/* CMYK as stored (Adobe's inverted samples: 255 is no ink) into RGB as Pillow's convert("RGB") makes
 * it, which, like OpenCV, takes every CMYK JPEG to be stored Adobe's way: with k the stored K and
 * i = 255 - stored C (the ink), R = k - round(i * k / 255), the same for G and B. */
static void cmyk_to_rgb(const uint8_t *cmyk, size_t n, uint8_t *rgb) {
    for (size_t p = 0; p < n; p++, cmyk += 4, rgb += 3) {
        int k = cmyk[3];
        for (int c = 0; c < 3; c++) {
            int t = (255 - cmyk[c]) * k + 128;
            rgb[c] = (uint8_t)(k - (((t >> 8) + t) >> 8));
        }
    }
}

/* A CMYK or YCCK JPEG (print and Photoshop workflows) decoded by TurboJPEG as CMYK, into img's
 * 3 channels. */
static int decode_cmyk(tjhandle tj, const uint8_t *data, size_t len, lathe_image *img) {
    size_t n = (size_t)img->width * img->height;
    uint8_t *cmyk = malloc(n * 4);
    if (!cmyk) return lathe_fail(LATHE_ENOMEM, "CMYK jpeg of %dx%d", img->width, img->height);
    int rc = 0;
    if (tjDecompress2(tj, data, (unsigned long)len, cmyk, img->width, img->width * 4, img->height, TJPF_CMYK,
                      TJFLAG_STOPONWARNING) != 0)
        rc = decompress_failure(tj);
    else
        cmyk_to_rgb(cmyk, n, img->pixels);
    free(cmyk);
    return rc;
}

int lathe_jpeg_decode(const uint8_t *data, size_t len, const lathe_decode_opts *opts, int orientation,
                      lathe_image *img, lathe_image_info *info) {
    int rc = lathe_jpeg_probe(data, len, info);
    if (rc) return rc;
    lathe_image_info_orient_as(info, orientation);
    if (opts->max_pixels && (uint64_t)info->width * (uint64_t)info->height > opts->max_pixels)
        return lathe_fail(LATHE_ELIMIT, "%dx%d pixels is over the limit of %llu", info->width, info->height,
                          (unsigned long long)opts->max_pixels);
    int swap = info->orientation >= 5;
    int stored_w = swap ? info->height : info->width, stored_h = swap ? info->width : info->height;
    tjscalingfactor f = pick_scale(stored_w, stored_h, swap ? opts->min_height : opts->min_width,
                                   swap ? opts->min_width : opts->min_height);
    int sw = TJSCALED(stored_w, f), sh = TJSCALED(stored_h, f);
    int cmyk = info->source_channels == 4, channels = opts->channels == 1 && !cmyk ? 1 : 3;
    rc = lathe_image_alloc(img, sw, sh, channels);
    if (rc) return rc;
    tjhandle tj = tjInitDecompress();
    if (!tj) {
        lathe_image_free(img);
        return tj_failure(NULL, LATHE_ENOMEM, "jpeg decoder");
    }
    if (cmyk) {
        rc = decode_cmyk(tj, data, len, img);
    } else if (tjDecompress2(tj, data, (unsigned long)len, img->pixels, sw, sw * channels, sh,
                             channels == 1 ? TJPF_GRAY : TJPF_RGB, TJFLAG_STOPONWARNING) != 0) {
        rc = decompress_failure(tj);
    }
    tjDestroy(tj);
    if (rc) {
        lathe_image_free(img);
        return rc;
    }
    if (cmyk && opts->channels == 1) lathe_image_rgb_to_luma(img);
    rc = lathe_image_orient(img, info->orientation);
    if (rc) lathe_image_free(img);
    return rc;
}

int lathe_jpeg_encode(const lathe_image *img, int quality, uint8_t **out, size_t *len) {
    if (img->channels != 1 && img->channels != 3) return lathe_fail(LATHE_EINVAL, "jpeg of %d channels", img->channels);
    tjhandle tj = tjInitCompress();
    if (!tj) return tj_failure(NULL, LATHE_ENOMEM, "jpeg encoder");
    unsigned char *buf = NULL;
    unsigned long size = 0;
    int rc = 0;
    if (tjCompress2(tj, img->pixels, img->width, img->width * img->channels, img->height,
                    img->channels == 1 ? TJPF_GRAY : TJPF_RGB, &buf, &size,
                    img->channels == 1 ? TJSAMP_GRAY : TJSAMP_420, quality, 0) != 0) {
        rc = tj_failure(tj, LATHE_EINVAL, "jpeg encoding");
    } else if (!(*out = malloc(size))) {
        rc = lathe_fail(LATHE_ENOMEM, "jpeg of %lu bytes", size);
    } else {
        memcpy(*out, buf, size);
        *len = size;
    }
    tjFree(buf);
    tjDestroy(tj);
    return rc;
}
