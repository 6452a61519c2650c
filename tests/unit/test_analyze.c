/* test_analyze.c - the parts of `lathe analyze` with exact answers: the near-duplicate search
 * against brute force, union-find groups, image statistics on hand-built images, thumbnail
 * similarity, plots producing real PNGs. Whole-dataset behaviour is tested in
 * tests/interop/test_analyze.py against numpy and h5py. */
#include "testutil.h"

#include <math.h>

#include "libcore/analyze/image_stats.h"
#include "libcore/analyze/neardup.h"
#include "libcore/base/error.h"
#include "libcore/eval/plot.h"

static uint64_t next_random(uint64_t *s) { /* splitmix64 */
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Random hashes with planted neighbours at every distance up to 15: MIH must equal brute force
 * for every radius, and report each pair once, sorted. */
static void neardup_equals_brute_force(void **state) {
    (void)state;
    enum { N = 3000 };
    uint64_t *h = malloc(N * sizeof *h), seed = 42;
    uint8_t *use = malloc(N);
    for (int i = 0; i < N; i++) {
        use[i] = i % 97 != 0; /* some samples are excluded (corrupt) */
        if (i >= 16 && i % 4 == 0) { /* a neighbour of an earlier hash, i % 16 bits flipped */
            uint64_t v = h[i - 16 + (i % 7)];
            int flips = i % 16;
            for (int f = 0; f < flips;) {
                int bit = (int)(next_random(&seed) % 64);
                if ((v ^ h[i - 16 + (i % 7)]) >> bit & 1) continue;
                v ^= 1ull << bit, f++;
            }
            h[i] = v;
        } else {
            h[i] = next_random(&seed);
        }
    }
    for (int r = 0; r <= LATHE_NEARDUP_MAX_RADIUS; r += 3) {
        lathe_hash_pair *p;
        size_t np;
        assert_int_equal(lathe_neardup_pairs(h, use, N, r, NULL, NULL, &p, &np), 0);
        size_t k = 0;
        for (uint32_t a = 0; a < N; a++)
            for (uint32_t b = a + 1; b < N; b++) {
                if (!use[a] || !use[b] || lathe_hamming64(h[a], h[b]) > r) continue;
                assert_true(k < np);
                assert_int_equal(p[k].a, a);
                assert_int_equal(p[k].b, b);
                assert_int_equal(p[k].distance, lathe_hamming64(h[a], h[b]));
                k++;
            }
        assert_int_equal(k, np);
        if (r >= 6) assert_true(np > 100); /* the planted neighbours are there to be found */
        free(p);
    }
    lathe_hash_pair *p;
    size_t np;
    assert_int_equal(lathe_neardup_pairs(h, use, N, 16, NULL, NULL, &p, &np), -LATHE_EINVAL);
    free(h);
    free(use);
}

static int accept_even(void *ctx, uint32_t a, uint32_t b) {
    (void)ctx;
    return (a + b) % 2 == 0;
}

static void neardup_accept_and_groups(void **state) {
    (void)state;
    uint64_t h[] = {0, 1, 3, 0xffff0000ffffull, 0xffff0000fffeull, 7, 0x8000000000000000ull};
    lathe_hash_pair *p;
    size_t np;
    assert_int_equal(lathe_neardup_pairs(h, NULL, 7, 2, accept_even, NULL, &p, &np), 0);
    /* within 2 bits: (0,1) (0,2) (0,6) (1,2) (1,5) (1,6) (2,5) (3,4); kept with a+b even: (0,2) (0,6) (1,5) */
    assert_int_equal(np, 3);
    assert_int_equal(p[0].a, 0), assert_int_equal(p[0].b, 2);
    assert_int_equal(p[1].a, 0), assert_int_equal(p[1].b, 6);
    assert_int_equal(p[2].a, 1), assert_int_equal(p[2].b, 5);
    free(p);
    lathe_hash_pair pairs[] = {{4, 5, 0}, {1, 2, 0}, {5, 6, 0}, {2, 4, 0}};
    uint32_t g[8];
    lathe_neardup_groups(pairs, 4, 8, g);
    uint32_t want[] = {0, 1, 1, 3, 1, 1, 1, 7};
    for (int i = 0; i < 8; i++) assert_int_equal(g[i], want[i]);
}

static void image_stats_exact(void **state) {
    (void)state;
    enum { W = 40, H = 30 };
    uint8_t *px = malloc(W * H * 3);
    float *scratch = malloc(W * H * sizeof *scratch);
    /* a flat grey image: brightness = grey, no contrast, no sharpness */
    memset(px, 100, W * H * 3);
    lathe_image_stats st;
    lathe_rect all = {0, 0, W, H};
    assert_int_equal(lathe_image_stats_compute(px, W, H, all, scratch, &st), 0);
    assert_true(fabs(st.brightness - 100) < 1e-3);
    assert_true(st.contrast < 1e-3 && st.sharpness < 1e-6);
    /* left half black, right half white inside a padded rectangle: mean 127.5, std 127.5 */
    memset(px, 114, W * H * 3);
    lathe_rect r = {10, 5, 30, 25};
    for (int y = r.y0; y < r.y1; y++)
        for (int x = r.x0; x < r.x1; x++) memset(px + (y * W + x) * 3, x < 20 ? 0 : 255, 3);
    assert_int_equal(lathe_image_stats_compute(px, W, H, r, scratch, &st), 0);
    assert_true(fabs(st.brightness - 127.5) < 1e-3);
    assert_true(fabs(st.contrast - 127.5) < 1e-3);
    assert_true(fabs(st.bright_share - 0.5) < 1e-9 && fabs(st.dark_share - 0.5) < 1e-9);
    /* Laplacian: +-255 on the two columns beside the edge, 0 elsewhere, over 18x18 interior pixels */
    double n = 18.0 * 18, sum = 0, sum2 = 2 * 18 * 255.0 * 255;
    double var = sum2 / n - (sum / n) * (sum / n);
    assert_true(fabs(st.sharpness - var) < 1e-3 * var);
    /* an empty or outside rectangle is refused */
    lathe_rect bad = {30, 0, 30, 10};
    assert_int_equal(lathe_image_stats_compute(px, W, H, bad, scratch, &st), -LATHE_EINVAL);
    free(px);
    free(scratch);
}

static void content_rect_from_meta(void **state) {
    (void)state;
    /* 1280x960 letterboxed to 640x640: scale 0.5, pad_y 80 */
    lathe_rect r = lathe_content_rect(640, 640, 1280, 960, 0.5f, 0.5f, 0, 80, 0, 0);
    assert_int_equal(r.x0, 0), assert_int_equal(r.x1, 640), assert_int_equal(r.y0, 80), assert_int_equal(r.y1, 560);
    /* a 512 tile at (1024, 512) of a 1300x900 image, scale 1: content 276 x 388 */
    r = lathe_content_rect(512, 512, 1300, 900, 1, 1, 0, 0, 1024, 512);
    assert_int_equal(r.x0, 0), assert_int_equal(r.x1, 276), assert_int_equal(r.y1, 388);
}

static void similarity_ignores_brightness(void **state) {
    (void)state;
    uint8_t a[256], b[256], c[256], flat[256];
    uint64_t seed = 7;
    for (int i = 0; i < 256; i++) {
        a[i] = (uint8_t)(next_random(&seed) % 200);
        b[i] = (uint8_t)(a[i] / 2 + 40); /* contrast halved, brightness moved */
        c[i] = (uint8_t)(next_random(&seed) % 200);
        flat[i] = 9;
    }
    assert_true(lathe_thumb_similarity(a, b) > 0.99);
    assert_true(fabs(lathe_thumb_similarity(a, c)) < 0.3);
    assert_true(lathe_thumb_similarity(flat, flat) == 1);
    assert_true(lathe_thumb_similarity(flat, a) == 0);
}

static void plots_are_png(void **state) {
    (void)state;
    static const char png_magic[] = "\x89PNG\r\n\x1a\n";
    lathe_plot_frame f = {"title", "x", "y", 320, 200};
    lathe_png png;
    const char *names[] = {"a", "b", "c"}, *series[] = {"s1", "s2"};
    double values[] = {1, 2, 3, 3, 2, 1};
    assert_int_equal(lathe_plot_bars(&f, names, 3, values, 2, series, &png), 0);
    assert_true(png.len > 100 && memcmp(png.data, png_magic, 8) == 0);
    lathe_png_free(&png);
    double edges[] = {0, 1, 2, 3}, counts[] = {5, 0, 2};
    assert_int_equal(lathe_plot_histogram(&f, edges, counts, 3, &png), 0);
    assert_true(memcmp(png.data, png_magic, 8) == 0);
    lathe_png_free(&png);
    assert_int_equal(lathe_plot_heatmap(&f, values, 2, 3, NULL, NULL, &png), 0);
    assert_true(memcmp(png.data, png_magic, 8) == 0);
    lathe_png_free(&png);
    double flat_edges[] = {1, 1};
    assert_int_equal(lathe_plot_histogram(&f, flat_edges, counts, 1, &png), -LATHE_EINVAL);
    assert_int_equal(lathe_plot_bars(&f, names, 0, values, 1, NULL, &png), -LATHE_EINVAL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(neardup_equals_brute_force), cmocka_unit_test(neardup_accept_and_groups),
        cmocka_unit_test(image_stats_exact),          cmocka_unit_test(content_rect_from_meta),
        cmocka_unit_test(similarity_ignores_brightness), cmocka_unit_test(plots_are_png),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
