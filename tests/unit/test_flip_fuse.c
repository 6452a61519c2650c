/* test_flip_fuse.c - the test-time mirror (libcore/det/flip_fuse.h) on hand-made inputs and
 * detections: mirroring a batch of planar images, mapping mirrored boxes back, and fusing two
 * views' detections (the mean score and the score-weighted box of a pair, half the score of a
 * detection one view makes, no pair across classes or under the match IoU, the closest pair first,
 * the same result whichever view comes first, the order by score and the max_det cap). */
#include "libcore/det/flip_fuse.h"
#include "testutil.h"

static lathe_detection det(float x1, float y1, float x2, float y2, float score, int label) {
    return (lathe_detection){{x1, y1, x2, y2}, score, label};
}

static void assert_det(const lathe_detection *d, float x1, float y1, float x2, float y2, float score, int label) {
    assert_float_equal(d->box[0], x1, 1e-5), assert_float_equal(d->box[1], y1, 1e-5);
    assert_float_equal(d->box[2], x2, 1e-5), assert_float_equal(d->box[3], y2, 1e-5);
    assert_float_equal(d->score, score, 1e-6);
    assert_int_equal(d->label, label);
}

/* Two images of two channels, 2 x 3 each: every row reversed, twice is the original. */
static void inputs_mirror_row_by_row(void **state) {
    (void)state;
    float x[2 * 2 * 2 * 3], orig[sizeof x / sizeof x[0]];
    for (int i = 0; i < 24; i++) x[i] = orig[i] = (float)i;
    lathe_det_flip_inputs(x, 2, 2, 2, 3);
    for (int row = 0; row < 8; row++)
        for (int c = 0; c < 3; c++) assert_float_equal(x[row * 3 + c], orig[row * 3 + 2 - c], 0);
    lathe_det_flip_inputs(x, 2, 2, 2, 3);
    assert_memory_equal(x, orig, sizeof x);
    float even[4] = {1, 2, 3, 4}; /* an even width swaps the middle pair too */
    lathe_det_flip_inputs(even, 1, 1, 1, 4);
    assert_float_equal(even[0], 4, 0), assert_float_equal(even[1], 3, 0), assert_float_equal(even[3], 1, 0);
}

/* A box of a mirrored input of width 100 maps back with its x sides exchanged; y stays. */
static void boxes_map_back(void **state) {
    (void)state;
    lathe_detection d[2] = {det(10, 20, 30, 40, 0.5f, 1), det(0, 0, 100, 50, 0.25f, 0)};
    lathe_det_unflip(d, 2, 100);
    assert_det(&d[0], 70, 20, 90, 40, 0.5f, 1);
    assert_det(&d[1], 0, 0, 100, 50, 0.25f, 0);
}

/* A pair: mean score, score-weighted box. A lone detection of either view: half its score. */
static void pairs_average_and_loners_halve(void **state) {
    (void)state;
    lathe_detection a[2] = {det(0, 0, 10, 10, 0.9f, 0), det(50, 50, 60, 60, 0.4f, 1)};
    lathe_detection b[2] = {det(1, 0, 11, 10, 0.3f, 0), det(80, 80, 90, 90, 0.6f, 1)};
    lathe_detection out[4];
    assert_int_equal(lathe_det_fuse_views(a, 2, b, 2, 100, out), 3);
    assert_det(&out[0], 0.25f, 0, 10.25f, 10, 0.6f, 0); /* (0.9 x 0 + 0.3 x 1) / 1.2 */
    assert_det(&out[1], 80, 80, 90, 90, 0.3f, 1);
    assert_det(&out[2], 50, 50, 60, 60, 0.2f, 1);
}

/* Other classes, or an overlap under LATHE_FLIP_MATCH_IOU, are two objects. */
static void no_pair_across_classes_or_small_overlap(void **state) {
    (void)state;
    lathe_detection a[1] = {det(0, 0, 10, 10, 0.8f, 0)};
    lathe_detection other_class[1] = {det(0, 0, 10, 10, 0.8f, 1)};
    lathe_detection beside[1] = {det(4, 0, 14, 10, 0.8f, 0)}; /* IoU 60 / 140 = 0.43 */
    lathe_detection out[2];
    assert_int_equal(lathe_det_fuse_views(a, 1, other_class, 1, 100, out), 2);
    assert_float_equal(out[0].score, 0.4f, 1e-6), assert_float_equal(out[1].score, 0.4f, 1e-6);
    assert_int_equal(lathe_det_fuse_views(a, 1, beside, 1, 100, out), 2);
    assert_float_equal(out[0].score, 0.4f, 1e-6), assert_float_equal(out[1].score, 0.4f, 1e-6);
    assert_int_equal(lathe_det_fuse_views(a, 1, NULL, 0, 100, out), 1); /* one view empty */
    assert_det(&out[0], 0, 0, 10, 10, 0.4f, 0);
    assert_int_equal(lathe_det_fuse_views(NULL, 0, NULL, 0, 100, out), 0);
}

/* a[0] overlaps b[0] (IoU 0.91) and b[1] (IoU 1): it pairs with its exact twin b[1], and b[0] is
 * left alone although a[0] scores best and b[0] comes first. */
static void the_closest_pair_first(void **state) {
    (void)state;
    lathe_detection a[1] = {det(0, 0, 10, 10, 0.9f, 0)};
    lathe_detection b[2] = {det(0, 0, 10, 11, 0.8f, 0), det(0, 0, 10, 10, 0.5f, 0)};
    lathe_detection out[3];
    assert_int_equal(lathe_det_fuse_views(a, 1, b, 2, 100, out), 2);
    assert_det(&out[0], 0, 0, 10, 10, 0.7f, 0);
    assert_det(&out[1], 0, 0, 10, 11, 0.4f, 0);
}

/* Swapping the views gives the same detections in the same order (an image and its mirror fuse
 * alike), and max_det keeps the best. */
static void symmetric_and_capped(void **state) {
    (void)state;
    lathe_detection a[3] = {det(0, 0, 10, 10, 0.9f, 0), det(20, 20, 30, 30, 0.5f, 1), det(40, 0, 50, 8, 0.2f, 2)};
    lathe_detection b[3] = {det(1, 1, 11, 11, 0.7f, 0), det(21, 20, 31, 30, 0.6f, 1), det(70, 70, 75, 75, 0.1f, 0)};
    lathe_detection ab[6], ba[6];
    int n = lathe_det_fuse_views(a, 3, b, 3, 100, ab);
    assert_int_equal(n, 4);
    assert_int_equal(lathe_det_fuse_views(b, 3, a, 3, 100, ba), n);
    for (int i = 0; i < n; i++) {
        assert_det(&ba[i], ab[i].box[0], ab[i].box[1], ab[i].box[2], ab[i].box[3], ab[i].score, ab[i].label);
        if (i) assert_true(ab[i - 1].score >= ab[i].score);
    }
    assert_int_equal(lathe_det_fuse_views(a, 3, b, 3, 2, ab), 2);
    assert_float_equal(ab[0].score, 0.8f, 1e-6), assert_float_equal(ab[1].score, 0.55f, 1e-6);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(inputs_mirror_row_by_row),
        cmocka_unit_test(boxes_map_back),
        cmocka_unit_test(pairs_average_and_loners_halve),
        cmocka_unit_test(no_pair_across_classes_or_small_overlap),
        cmocka_unit_test(the_closest_pair_first),
        cmocka_unit_test(symmetric_and_capped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
