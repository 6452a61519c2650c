/* test_codecs.c - JPEG/PNG decoding and encoding: round trips, scaled decoding, EXIF orientation,
 * and every way a damaged or hostile image must fail (with the right code, never a crash). */
#include "testutil.h"

#include <turbojpeg.h>

#include "libcore/base/error.h"
#include "libcore/io/image.h"

static lathe_image gradient(int w, int h, int c) {
    lathe_image img;
    assert_int_equal(lathe_image_alloc(&img, w, h, c), 0);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int k = 0; k < c; k++) img.pixels[((size_t)y * w + x) * c + k] = (uint8_t)(x + y + k * 15 > 255 ? 255 : x + y + k * 15);
    return img;
}

typedef int (*png_encoder)(const lathe_image *img, uint8_t **out, size_t *len);

/* each of the three encoders (fast, graphics, small) */
static void png_round_trip_is_exact(void **state) {
    (void)state;
    png_encoder encoders[] = {lathe_png_encode, lathe_png_encode_graphics, lathe_png_encode_small};
    for (int run = 0; run < 6; run++) {
        int e = run / 2, c = run % 2 ? 3 : 1;
        lathe_image img = gradient(37, 23, c), back;
        uint8_t *png;
        size_t len;
        assert_int_equal(encoders[e](&img, &png, &len), 0);
        lathe_decode_opts opts = {.channels = c};
        lathe_image_info info;
        assert_int_equal(lathe_image_decode(png, len, &opts, &back, &info), 0);
        assert_int_equal(info.format, LATHE_FORMAT_PNG);
        assert_int_equal(back.width, 37);
        assert_int_equal(back.height, 23);
        assert_int_equal(back.channels, c);
        assert_memory_equal(back.pixels, img.pixels, (size_t)37 * 23 * c);
        lathe_image_free(&back);
        /* gray decoded as RGB is replicated */
        if (c == 1) {
            opts.channels = 3;
            assert_int_equal(lathe_image_decode(png, len, &opts, &back, NULL), 0);
            assert_int_equal(back.pixels[3 * 5 + 1], img.pixels[5]);
            lathe_image_free(&back);
        }
        free(png);
        lathe_image_free(&img);
    }
}

static void jpeg_decodes_close_and_scales(void **state) {
    (void)state;
    lathe_image img = gradient(128, 96, 3), back;
    uint8_t *jpg;
    size_t len;
    assert_int_equal(lathe_jpeg_encode(&img, 95, &jpg, &len), 0);
    lathe_image_info info;
    assert_int_equal(lathe_image_decode(jpg, len, NULL, &back, &info), 0);
    assert_int_equal(info.format, LATHE_FORMAT_JPEG);
    assert_int_equal(back.width, 128);
    double err = 0;
    for (size_t i = 0; i < (size_t)128 * 96 * 3; i++) err += abs((int)back.pixels[i] - (int)img.pixels[i]);
    assert_true(err / (128.0 * 96 * 3) < 6.0);
    lathe_image_free(&back);
    /* asking for at least 60x40 picks the 1/2 scale: 64x48 */
    lathe_decode_opts opts = {.min_width = 60, .min_height = 40, .channels = 3};
    assert_int_equal(lathe_image_decode(jpg, len, &opts, &back, &info), 0);
    assert_int_equal(back.width, 64);
    assert_int_equal(back.height, 48);
    assert_int_equal(info.width, 128); /* info keeps the full size */
    lathe_image_free(&back);
    free(jpg);
    lathe_image_free(&img);
}

/* A CMYK source as TurboJPEG writes it (YCCK, Adobe's inverted samples): no black ink and the
 * colour inks 255 - RGB, so what a print workflow would show is the RGB itself. Decoded as RGB it
 * is close to that RGB; decoded as gray, the luma of its RGB decoding (Pillow's weights). */
static void cmyk_jpeg_decodes_to_rgb_and_gray(void **state) {
    (void)state;
    lathe_image img = gradient(64, 48, 3), rgb, gray;
    size_t n = (size_t)64 * 48;
    uint8_t *cmyk = malloc(n * 4), *jpg = NULL;
    for (size_t i = 0; i < n; i++) /* stored inverted: 255 - ink = the RGB value; K stored 255, no ink */
        memcpy(cmyk + 4 * i, img.pixels + 3 * i, 3), cmyk[4 * i + 3] = 255;
    tjhandle tj = tjInitCompress();
    unsigned long len = 0;
    assert_int_equal(tjCompress2(tj, cmyk, 64, 64 * 4, 48, TJPF_CMYK, &jpg, &len, TJSAMP_444, 100, 0), 0);
    tjDestroy(tj);
    lathe_image_info info;
    assert_int_equal(lathe_image_decode(jpg, len, NULL, &rgb, &info), 0);
    assert_int_equal(info.source_channels, 4);
    assert_int_equal(rgb.channels, 3);
    int worst = 0;
    for (size_t i = 0; i < n * 3; i++) {
        int d = abs((int)rgb.pixels[i] - (int)img.pixels[i]);
        worst = d > worst ? d : worst;
    }
    assert_true(worst <= 3);
    lathe_decode_opts opts = {.channels = 1};
    assert_int_equal(lathe_image_decode(jpg, len, &opts, &gray, NULL), 0);
    assert_int_equal(gray.channels, 1);
    for (size_t i = 0; i < n; i++) {
        const uint8_t *p = rgb.pixels + 3 * i;
        assert_int_equal(gray.pixels[i], (p[0] * 19595 + p[1] * 38470 + p[2] * 7471 + 0x8000) >> 16);
    }
    lathe_image_free(&gray);
    lathe_image_free(&rgb);
    lathe_image_free(&img);
    tjFree(jpg);
    free(cmyk);
}

/* A JPEG with an APP1 Exif segment holding only the orientation tag, inserted after SOI. */
static uint8_t *with_orientation(const uint8_t *jpg, size_t len, int orientation, int little, size_t *out_len) {
    uint8_t app1[] = {0xFF, 0xE1, 0, 34, 'E', 'x', 'i', 'f', 0, 0,
                      'M', 'M', 0, 42, 0, 0, 0, 8, /* TIFF header, IFD at 8 */
                      0, 1,                          /* one entry */
                      0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, (uint8_t)orientation, 0, 0, /* SHORT */
                      0, 0, 0, 0};
    if (little) { /* the same in Intel byte order */
        uint8_t le[] = {'I', 'I', 42, 0, 8, 0, 0, 0, 1, 0, 0x12, 0x01, 3, 0, 1, 0, 0, 0, (uint8_t)orientation, 0, 0, 0, 0, 0, 0, 0};
        memcpy(app1 + 10, le, sizeof le);
    }
    uint8_t *out = malloc(len + sizeof app1);
    memcpy(out, jpg, 2);
    memcpy(out + 2, app1, sizeof app1);
    memcpy(out + 2 + sizeof app1, jpg + 2, len - 2);
    *out_len = len + sizeof app1;
    return out;
}

static void exif_orientation_is_applied(void **state) {
    (void)state;
    lathe_image img = gradient(40, 24, 3), plain;
    uint8_t *jpg;
    size_t len;
    assert_int_equal(lathe_jpeg_encode(&img, 95, &jpg, &len), 0);
    assert_int_equal(lathe_image_decode(jpg, len, NULL, &plain, NULL), 0);
    for (int o = 1; o <= 8; o++) {
        for (int little = 0; little <= 1; little++) {
            size_t olen;
            uint8_t *oj = with_orientation(jpg, len, o, little, &olen);
            assert_int_equal(lathe_jpeg_exif_orientation(oj, olen), o);
            lathe_image got, want;
            lathe_image_info info;
            assert_int_equal(lathe_image_decode(oj, olen, NULL, &got, &info), 0);
            assert_int_equal(info.orientation, o);
            assert_int_equal(got.width, o >= 5 ? 24 : 40);
            assert_int_equal(lathe_image_alloc(&want, plain.width, plain.height, 3), 0);
            memcpy(want.pixels, plain.pixels, (size_t)40 * 24 * 3);
            assert_int_equal(lathe_image_orient(&want, o), 0);
            assert_memory_equal(got.pixels, want.pixels, (size_t)40 * 24 * 3);
            lathe_image_free(&got);
            /* an orientation the caller names wins over the file's (a dataset's recorded one) */
            assert_int_equal(lathe_image_decode_as(oj, olen, NULL, 9 - o, &got, &info), 0);
            assert_int_equal(info.orientation, 9 - o);
            assert_int_equal(info.width, 9 - o >= 5 ? 24 : 40);
            memcpy(want.pixels, plain.pixels, (size_t)40 * 24 * 3);
            want.width = 40, want.height = 24;
            assert_int_equal(lathe_image_orient(&want, 9 - o), 0);
            assert_int_equal(got.width, want.width);
            assert_memory_equal(got.pixels, want.pixels, (size_t)40 * 24 * 3);
            lathe_image_free(&got);
            lathe_image_free(&want);
            free(oj);
        }
    }
    /* orientation 6 (shown rotated 90 degrees clockwise): the source's bottom-left becomes top-left */
    lathe_image r;
    assert_int_equal(lathe_image_alloc(&r, plain.width, plain.height, 3), 0);
    memcpy(r.pixels, plain.pixels, (size_t)40 * 24 * 3);
    assert_int_equal(lathe_image_orient(&r, 6), 0);
    assert_memory_equal(r.pixels, plain.pixels + (size_t)(23 * 40) * 3, 3);
    lathe_image_free(&r);
    lathe_image_free(&plain);
    free(jpg);
    lathe_image_free(&img);
}

static void damaged_inputs_fail_cleanly(void **state) {
    (void)state;
    lathe_image img = gradient(64, 64, 3), out;
    uint8_t *jpg, *png;
    size_t jlen, plen;
    assert_int_equal(lathe_jpeg_encode(&img, 90, &jpg, &jlen), 0);
    assert_int_equal(lathe_png_encode(&img, &png, &plen), 0);
    /* empty, unknown, GIF */
    assert_int_equal(lathe_image_decode((const uint8_t *)"", 0, NULL, &out, NULL), -LATHE_EFORMAT);
    assert_int_equal(lathe_image_decode((const uint8_t *)"hello world", 11, NULL, &out, NULL), -LATHE_EUNSUPPORTED);
    assert_int_equal(lathe_image_decode((const uint8_t *)"GIF89a......", 12, NULL, &out, NULL), -LATHE_EUNSUPPORTED);
    assert_non_null(strstr(lathe_last_error(), "GIF"));
    /* truncated at several points */
    for (size_t cut = 3; cut < jlen; cut += jlen / 7) {
        int rc = lathe_image_decode(jpg, cut, NULL, &out, NULL);
        assert_int_equal(rc, -LATHE_EFORMAT);
        assert_null(out.pixels);
    }
    for (size_t cut = 9; cut < plen; cut += plen / 7) assert_int_equal(lathe_image_decode(png, cut, NULL, &out, NULL), -LATHE_EFORMAT);
    /* a flipped byte in the PNG data fails its CRC */
    png[plen / 2] ^= 0x55;
    assert_int_equal(lathe_image_decode(png, plen, NULL, &out, NULL), -LATHE_EFORMAT);
    /* pixel limit, checked before decoding */
    lathe_decode_opts small = {.max_pixels = 64 * 63, .channels = 3};
    assert_int_equal(lathe_image_decode(jpg, jlen, &small, &out, NULL), -LATHE_ELIMIT);
    free(jpg);
    free(png);
    lathe_image_free(&img);
}

/* A PNG header claiming 60000 x 60000 pixels: refused from the header alone (decompression bomb). */
static void png_bomb_is_refused_before_decoding(void **state) {
    (void)state;
    static const uint8_t header[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R',
                                     0, 0, 0xEA, 0x60, 0, 0, 0xEA, 0x60, 8, 0, 0, 0, 0, 0x51, 0x47, 0x2e, 0x1c};
    lathe_image out;
    lathe_decode_opts opts = {.max_pixels = 100000000, .channels = 3};
    int rc = lathe_image_decode(header, sizeof header, &opts, &out, NULL);
    assert_true(rc == -LATHE_ELIMIT || rc == -LATHE_EFORMAT); /* the CRC above is not computed: either is safe */
    assert_null(out.pixels);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(png_round_trip_is_exact),
        cmocka_unit_test(jpeg_decodes_close_and_scales),
        cmocka_unit_test(cmyk_jpeg_decodes_to_rgb_and_gray),
        cmocka_unit_test(exif_orientation_is_applied),
        cmocka_unit_test(damaged_inputs_fail_cleanly),
        cmocka_unit_test(png_bomb_is_refused_before_decoding),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
