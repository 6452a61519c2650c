/* test_decode.c - anchor grids, boxes surviving encode -> ideal DFL logits -> decode, and decoding
 * in place from head output rows (a row stride). */
#include "testutil.h"

#include <math.h>

#include "kernels/det_decode.h"
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

/* decoding head output rows (A, 4 B + C) with the row stride equals decoding the compacted (A, 4, B)
 * logits, bit for bit; enough anchors for the OpenMP path, and the class logits and the guard after
 * the last box are left alone */
static void row_stride(void **state) {
    (void)state;
    enum { A = 1500, B = 16, C = 3, K = 4 * B + C };
    float *rows = malloc(sizeof(float) * A * K), *compact = malloc(sizeof(float) * A * 4 * B);
    float *points = malloc(sizeof(float) * A * 2), *stride = malloc(sizeof(float) * A);
    float *want = malloc(sizeof(float) * A * 4), *got = malloc(sizeof(float) * (A * 4 + 1));
    assert_non_null(rows), assert_non_null(compact), assert_non_null(points), assert_non_null(stride);
    assert_non_null(want), assert_non_null(got);
    uint64_t seed = 7;
    for (int i = 0; i < A * K; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        rows[i] = (float)((double)(seed >> 11) / 9007199254740992.0 * 16 - 8);
    }
    for (int i = 0; i < A; i++) {
        memcpy(compact + (size_t)i * 4 * B, rows + (size_t)i * K, sizeof(float) * 4 * B);
        points[2 * i] = (float)(i % 80) * 8 + 4, points[2 * i + 1] = (float)(i / 80) * 8 + 4;
        stride[i] = (float)(8 << (i % 3));
    }
    lathe_det_decode(A, B, compact, points, stride, want);
    got[A * 4] = -12345.0f;
    lathe_k_dfl_decode_cpu(A, B, K, rows, points, stride, got);
    assert_memory_equal(got, want, sizeof(float) * A * 4);
    assert_true(got[A * 4] == -12345.0f);
    for (int i = 0; i < A; i++) /* distances lie in [0, B - 1] strides */
        assert_true(got[4 * i] <= points[2 * i] && got[4 * i + 2] >= points[2 * i] &&
                    got[4 * i + 2] - got[4 * i] <= 2 * (B - 1) * stride[i]);
    /* one anchor at a time (as prediction decodes) gives the same boxes */
    float one[4];
    lathe_k_dfl_decode_cpu(1, B, K, rows + (size_t)(A - 1) * K, points + 2 * (A - 1), stride + A - 1, one);
    assert_memory_equal(one, want + 4 * (A - 1), sizeof one);
    free(rows), free(compact), free(points), free(stride), free(want), free(got);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(anchors), cmocka_unit_test(round_trip),
                                       cmocka_unit_test(row_stride)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
