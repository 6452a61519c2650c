/* png.c - PNG through libpng's classic API: every colour type and bit depth decoded to 8-bit
 * gray or RGB the way Pillow's convert() does it (palette expanded, 16-bit keeps the high byte,
 * alpha dropped, no gamma) and turned as its eXIf orientation says; and 8-bit encoding. Errors
 * longjmp back into lathe's return codes. */
#include <png.h>
#include <zlib.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

#include "../base/error.h"
#include "image_codec.h"

typedef struct {
    const uint8_t *data;
    size_t len, at;
    char message[200];
} png_source;

static void on_error(png_structp png, png_const_charp msg) {
    png_source *src = png_get_error_ptr(png);
    snprintf(src->message, sizeof src->message, "%s", msg);
    png_longjmp(png, 1);
}

static void on_warning(png_structp png, png_const_charp msg) {
    (void)png;
    (void)msg; /* ancillary-chunk complaints: the pixels are still good */
}

static void read_bytes(png_structp png, png_bytep out, png_size_t n) {
    png_source *src = png_get_io_ptr(png);
    if (n > src->len - src->at) png_error(png, "truncated file");
    memcpy(out, src->data + src->at, n);
    src->at += n;
}

typedef struct {
    png_structp png;
    png_infop info;
    png_bytep *rows;
    lathe_image *img;
} png_reader;

static void reader_close(png_reader *r) {
    free(r->rows);
    r->rows = NULL;
    png_destroy_read_struct(&r->png, r->info ? &r->info : NULL, NULL);
}

static int reader_open(png_reader *r, png_source *src) {
    memset(r, 0, sizeof *r);
    if (src->len < 8 || png_sig_cmp(src->data, 0, 8)) return lathe_fail(LATHE_EFORMAT, "not a png");
    r->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, src, on_error, on_warning);
    if (!r->png || !(r->info = png_create_info_struct(r->png))) {
        reader_close(r);
        return lathe_fail(LATHE_ENOMEM, "png decoder");
    }
    png_set_read_fn(r->png, src, read_bytes);
    /* ancillary chunks (text, ICC) may not make us allocate without bound */
    png_set_chunk_malloc_max(r->png, 8u << 20);
    png_set_user_limits(r->png, 1u << 20, 1u << 20);
    return 0;
}

/* The EXIF orientation of an eXIf chunk before the pixels, read as Pillow's exif_transpose reads it;
 * 1 without one. Where lathe and Pillow part: an eXIf after IDAT is not read (the probe stops at the
 * pixels, and probe and decode must agree on the size; Pillow reads it), one that starts with
 * "Exif\0\0" is dropped by libpng as a bad byte order (Pillow skips the prefix), and of two eXIf
 * chunks libpng keeps the first (Pillow the last). */
static int exif_orientation(png_structp png, png_infop pinfo) {
    png_uint_32 n = 0;
    png_bytep exif = NULL;
    if (!(png_get_eXIf_1(png, pinfo, &n, &exif) & PNG_INFO_eXIf) || !exif) return 1;
    return lathe_exif_orientation(exif, n);
}

/* info's size is the image's as shown, after its orientation; decoding reads the stored size. */
static void fill_info(png_structp png, png_infop pinfo, lathe_image_info *info) {
    int type = png_get_color_type(png, pinfo);
    int w = (int)png_get_image_width(png, pinfo), h = (int)png_get_image_height(png, pinfo);
    info->format = LATHE_FORMAT_PNG;
    lathe_image_info_set_shown(info, w, h, exif_orientation(png, pinfo));
    info->bit_depth = png_get_bit_depth(png, pinfo) == 16 ? 16 : 8;
    info->source_channels = type == PNG_COLOR_TYPE_GRAY ? 1 : type == PNG_COLOR_TYPE_GRAY_ALPHA ? 2
                            : type == PNG_COLOR_TYPE_RGB_ALPHA ? 4 : 3;
}

int lathe_png_probe(const uint8_t *data, size_t len, lathe_image_info *info) {
    png_source src = {data, len, 0, ""};
    png_reader r;
    int rc = reader_open(&r, &src);
    if (rc) return rc;
    if (setjmp(png_jmpbuf(r.png))) {
        reader_close(&r);
        return lathe_fail(LATHE_EFORMAT, "corrupt png: %s", src.message);
    }
    png_read_info(r.png, r.info);
    fill_info(r.png, r.info, info);
    reader_close(&r);
    return 0;
}

int lathe_png_decode(const uint8_t *data, size_t len, const lathe_decode_opts *opts, int orientation,
                     lathe_image *img, lathe_image_info *info) {
    png_source src = {data, len, 0, ""};
    png_reader r;
    int rc = reader_open(&r, &src);
    if (rc) return rc;
    r.img = img;
    if (setjmp(png_jmpbuf(r.png))) {
        lathe_image_free(r.img);
        reader_close(&r);
        return lathe_fail(LATHE_EFORMAT, "corrupt png: %s", src.message);
    }
    png_read_info(r.png, r.info);
    fill_info(r.png, r.info, info);
    lathe_image_info_orient_as(info, orientation);
    if (opts->max_pixels && (uint64_t)info->width * (uint64_t)info->height > opts->max_pixels) {
        reader_close(&r);
        return lathe_fail(LATHE_ELIMIT, "%dx%d pixels is over the limit of %llu", info->width, info->height,
                          (unsigned long long)opts->max_pixels);
    }
    int type = png_get_color_type(r.png, r.info);
    png_set_strip_16(r.png);
    png_set_strip_alpha(r.png);
    if (type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(r.png);
    if (type == PNG_COLOR_TYPE_GRAY || type == PNG_COLOR_TYPE_GRAY_ALPHA) {
        png_set_expand_gray_1_2_4_to_8(r.png);
        if (opts->channels != 1) png_set_gray_to_rgb(r.png);
    }
    png_set_interlace_handling(r.png);
    png_read_update_info(r.png, r.info);
    int got = png_get_channels(r.png, r.info);
    if (got != 1 && got != 3) png_error(r.png, "unexpected channel count after expansion");
    int w = (int)png_get_image_width(r.png, r.info), h = (int)png_get_image_height(r.png, r.info);
    if (lathe_image_alloc(img, w, h, got)) png_error(r.png, "out of memory for pixels");
    r.rows = malloc(sizeof *r.rows * (size_t)h);
    if (!r.rows) png_error(r.png, "out of memory for rows");
    for (int y = 0; y < h; y++) r.rows[y] = img->pixels + (size_t)y * w * got;
    png_read_image(r.png, r.rows);
    png_read_end(r.png, NULL);
    reader_close(&r);
    if (opts->channels == 1 && img->channels == 3) lathe_image_rgb_to_luma(img);
    rc = lathe_image_orient(img, info->orientation);
    if (rc) lathe_image_free(img);
    return rc;
}

typedef struct {
    uint8_t *buf;
    size_t len, cap;
    int failed;
} png_sink;

static void write_bytes(png_structp png, png_bytep in, png_size_t n) {
    png_sink *sink = png_get_io_ptr(png);
    if (sink->len + n > sink->cap) {
        size_t cap = sink->cap ? sink->cap * 2 : 1 << 16;
        while (cap < sink->len + n) cap *= 2;
        uint8_t *p = realloc(sink->buf, cap);
        if (!p) {
            sink->failed = 1;
            png_error(png, "out of memory");
        }
        sink->buf = p;
        sink->cap = cap;
    }
    memcpy(sink->buf + sink->len, in, n);
    sink->len += n;
}

static void flush_bytes(png_structp png) { (void)png; }

static int png_encode(const lathe_image *img, int level, int filter, int strategy, uint8_t **out, size_t *len) {
    if (img->channels != 1 && img->channels != 3) return lathe_fail(LATHE_EINVAL, "png of %d channels", img->channels);
    png_source errs = {NULL, 0, 0, ""};
    png_sink sink = {NULL, 0, 0, 0};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &errs, on_error, on_warning);
    png_infop pinfo = png ? png_create_info_struct(png) : NULL;
    if (!pinfo) {
        png_destroy_write_struct(&png, NULL);
        return lathe_fail(LATHE_ENOMEM, "png encoder");
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &pinfo);
        free(sink.buf);
        return lathe_fail(sink.failed ? LATHE_ENOMEM : LATHE_EINVAL, "png encoding: %s", errs.message);
    }
    png_set_write_fn(png, &sink, write_bytes, flush_bytes);
    png_set_IHDR(png, pinfo, (png_uint_32)img->width, (png_uint_32)img->height, 8,
                 img->channels == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_set_compression_level(png, level);
    png_set_filter(png, 0, filter);
    png_set_compression_strategy(png, strategy);
    png_write_info(png, pinfo);
    for (int y = 0; y < img->height; y++)
        png_write_row(png, img->pixels + (size_t)y * img->width * img->channels);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &pinfo);
    *out = sink.buf;
    *len = sink.len;
    return 0;
}

/* fast over small: level 1 with the Sub filter and run-length matching encodes a noisy 1280x960
 * image about 3.5x faster than libpng's all-filter search, and smaller */
int lathe_png_encode(const lathe_image *img, uint8_t **out, size_t *len) {
    return png_encode(img, 1, PNG_FILTER_SUB, Z_RLE, out, len);
}

/* flat colour with sharp edges (charts): unfiltered rows are long runs deflate matches well. At
 * level 6 the four chart kinds encode 2x faster than with libpng's defaults (every filter tried on
 * each row, level 6) and 12% smaller; level 3 was 5.8x faster but 11% larger, and a chart costs
 * milliseconds either way (experiments/bench/charts) */
int lathe_png_encode_graphics(const lathe_image *img, uint8_t **out, size_t *len) {
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
    /* a fuzzing build parses, it does not ship charts: zlib's level 6 was a third of the notebook
     * target's time (docs/ARCHITECTURE.md, "Fuzzing") */
    return png_encode(img, 1, PNG_FILTER_NONE, Z_RLE, out, len);
#else
    return png_encode(img, 6, PNG_FILTER_NONE, Z_DEFAULT_STRATEGY, out, len);
#endif
}

/* libpng's own defaults, as cairo's writer uses them: every filter tried on each row, level 6. The
 * smallest and slowest: photos kept in a report (a 640x480 line photo with boxes ~300 KB, against
 * ~470 KB from lathe_png_encode in a sixth of the time) */
int lathe_png_encode_small(const lathe_image *img, uint8_t **out, size_t *len) {
    return png_encode(img, Z_DEFAULT_COMPRESSION, PNG_ALL_FILTERS, Z_FILTERED, out, len);
}
