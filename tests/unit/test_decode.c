/* test_decode.c - anchor grids, and boxes surviving encode -> ideal DFL logits -> decode. */
#include "testutil.h"

#include <math.h>

#include "libcore/det/decode.h"

static void anchors(void **state) {
    (void)state;
    int strides[] = {8, 16, 32};
    assert_int_equal(lathe_det_anchors(64, 96, strides, 3, NULL, NULL), 8 * 12 + 4 * 6 + 2 * 3);
    assert_int_equal(lathe_det_anchors(70, 70, strides, 1, NULL, NULL), 9 * 9); /* partial cells count */
    float pts[2 * 144], st[144];
    lathe_det_anchors(64, 96, strides, 3, pts, st);
    assert_true(pts[0] == 4 && pts[1] == 4 && st[0] == 8);
    assert_true(pts[2 * 13] == 12 && pts[2 * 13 + 1] == 12); /* row 1, column 1 of P3 */
    assert_true(st[96] == 16 && pts[2 * 96] == 8 && st[125] == 32 && st[120] == 32 && st[119] == 16);
}

static void round_trip(void **state) {
    (void)state;
    enum { B = 16 };
    float points[] = {40, 40, 100, 60}, stride[] = {8, 16};
    float boxes[] = {20.5f, 11.25f, 70, 77.75f, 60, 40, 150, 100}, dist[8], out[8];
    lathe_det_encode(2, B, boxes, points, stride, dist);
    float logits[2 * 4 * B];
    for (int i = 0; i < 8; i++) { /* the ideal two-bin distribution of each distance */
        int lo = (int)floorf(dist[i]);
        float frac = dist[i] - lo;
        for (int j = 0; j < B; j++) {
            float p = j == lo ? 1 - frac : j == lo + 1 ? frac : 0;
            logits[i * B + j] = p > 0 ? logf(p) : -80;
        }
    }
    lathe_det_decode(2, B, logits, points, stride, out);
    for (int i = 0; i < 8; i++) assert_true(fabsf(out[i] - boxes[i]) < 1e-3f);
    /* distances beyond the bins clip */
    float far[] = {-500, 0, 500, 80};
    lathe_det_encode(1, B, far, points, stride, dist);
    assert_true(fabsf(dist[0] - (B - 1.01f)) < 1e-6f && fabsf(dist[2] - (B - 1.01f)) < 1e-6f);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(anchors), cmocka_unit_test(round_trip)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
