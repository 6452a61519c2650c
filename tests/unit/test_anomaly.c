/* test_anomaly.c - the anomaly head's numbers: AUROC, average precision, best-F1 and PRO on hand-built scores worked
 * out by hand (ties, empty classes, NaN); the greedy coreset against a plain reference (and on a
 * line, where its picks are known); nearest-neighbour distances against brute force; the Gaussian
 * per position against the Mahalanobis distance written out for two dimensions; a sensor window's
 * features on a ramp, a tone and a dead channel. */
#include <math.h>

#include "libcore/anomaly/memory.h"
#include "libcore/anomaly/metrics.h"
#include "libcore/anomaly/sensor_features.h"
#include "libcore/base/error.h"
#include "libcore/base/rng.h"
#include "testutil.h"

static void auroc_by_hand(void **state) {
    (void)state;
    double a;
    float s1[] = {0.1f, 0.4f, 0.35f, 0.8f};
    uint8_t y1[] = {0, 0, 1, 1};
    assert_int_equal(lathe_auroc(s1, y1, 4, &a), 0);
    assert_true(fabs(a - 0.75) < 1e-12); /* scikit-learn's roc_auc_score gives 0.75 */
    float s2[] = {0.5f, 0.5f, 0.2f, 0.9f}; /* a tie across the classes counts half: (0.5 + 1 + 1 + 1) / 4 */
    uint8_t y2[] = {1, 0, 0, 1};
    assert_int_equal(lathe_auroc(s2, y2, 4, &a), 0);
    assert_true(fabs(a - 0.875) < 1e-12);
    uint8_t none[] = {0, 0, 0, 0};
    assert_int_equal(lathe_auroc(s2, none, 4, &a), 0);
    assert_true(a == -1);
    float bad[] = {0.1f, NAN};
    uint8_t y3[] = {0, 1};
    assert_int_equal(lathe_auroc(bad, y3, 2, &a), -LATHE_EINVAL);
    assert_int_equal(lathe_auroc(s1, y1, 0, &a), 0);
    assert_true(a == -1);
}

static void average_precision_by_hand(void **state) {
    (void)state;
    /* 0.9+ 0.8- 0.7+ 0.6+ 0.2-: recall steps of 1/3 at precisions 1, 2/3, 3/4 (scikit-learn: 0.80556) */
    float s[] = {0.9f, 0.8f, 0.7f, 0.6f, 0.2f};
    uint8_t y[] = {1, 0, 1, 1, 0};
    double ap;
    assert_int_equal(lathe_average_precision(s, y, 5, &ap), 0);
    assert_true(fabs(ap - (1 + 2.0 / 3 + 0.75) / 3) < 1e-12);
    float tied[] = {0.5f, 0.5f, 0.5f, 0.1f}; /* one threshold for the three tied: precision 2/3 */
    uint8_t ty[] = {1, 0, 1, 0};
    assert_int_equal(lathe_average_precision(tied, ty, 4, &ap), 0);
    assert_true(fabs(ap - 2.0 / 3) < 1e-12);
    uint8_t none[] = {0, 0, 0, 0, 0};
    assert_int_equal(lathe_average_precision(s, none, 5, &ap), 0);
    assert_true(ap == -1);
    float bad[] = {NAN, 1};
    assert_int_equal(lathe_average_precision(bad, y, 2, &ap), -LATHE_EINVAL);
}

static void best_f1_by_hand(void **state) {
    (void)state;
    /* scores 0.9+ 0.8- 0.7+ 0.6+ 0.2-: at 0.6 tp 3 fp 1 fn 0 -> F1 6/7, the best */
    float s[] = {0.9f, 0.8f, 0.7f, 0.6f, 0.2f};
    uint8_t y[] = {1, 0, 1, 1, 0};
    lathe_f1_point p;
    assert_int_equal(lathe_best_f1(s, y, 5, &p), 0);
    assert_true(fabs(p.f1 - 6.0 / 7) < 1e-12 && fabs(p.precision - 0.75) < 1e-12 && p.recall == 1);
    assert_true(p.threshold == 0.6f);
    uint8_t none[] = {0, 0, 0, 0, 0};
    assert_int_equal(lathe_best_f1(s, none, 5, &p), 0);
    assert_true(p.f1 == 0 && p.threshold > 0.9f); /* nothing to find: no sample is called a defect */
}

/* One 4 x 4 map: region A (2 pixels, top left, 8-connected by a diagonal), region B (1 pixel, bottom
 * right), 13 good pixels scored 0.1 .. 0.13 except one good pixel at 0.95. */
static void pro_by_hand(void **state) {
    (void)state;
    uint8_t mask[16] = {1, 0, 0, 0, /**/ 0, 1, 0, 0, /**/ 0, 0, 0, 0, /**/ 0, 0, 0, 1};
    float map[16];
    for (int i = 0; i < 16; i++) map[i] = 0.1f + 0.001f * (float)i;
    map[0] = 0.9f, map[5] = 0.5f, map[15] = 0.8f, map[2] = 0.95f;
    double pro;
    size_t regions;
    /* thresholds from the top: 0.95 fpr 1/13, pro 0; 0.9 (A half) fpr 1/13, pro 0.25; 0.8 (B) 1/13,
     * 0.75; 0.5 (A whole) 1/13, 1; below: fpr rises to 1 at pro 1. Area to fpr 0.3: the step at
     * 1/13 contributes nothing, then pro 1 from 1/13 to 0.3: (0.3 - 1/13) / 0.3. */
    assert_int_equal(lathe_pro(map, mask, 1, 4, 4, 0.3, &pro, &regions), 0);
    assert_int_equal(regions, 2);
    assert_true(fabs(pro - (0.3 - 1.0 / 13) / 0.3) < 1e-9);
    /* every region found before any good pixel: the whole area */
    map[2] = 0.12f;
    assert_int_equal(lathe_pro(map, mask, 1, 4, 4, 0.3, &pro, &regions), 0);
    assert_true(fabs(pro - 1) < 1e-9);
    /* no region at all */
    uint8_t empty[16] = {0};
    assert_int_equal(lathe_pro(map, empty, 1, 4, 4, 0.3, &pro, &regions), 0);
    assert_true(pro == -1 && regions == 0);
    assert_int_equal(lathe_pro(map, mask, 1, 4, 4, 0, &pro, NULL), -LATHE_EINVAL);
    map[3] = NAN;
    assert_int_equal(lathe_pro(map, mask, 1, 4, 4, 0.3, &pro, NULL), -LATHE_EINVAL);
}

/* The plainest greedy k-center, for comparison. */
static void reference_coreset(const float *x, size_t n, int d, size_t m, size_t first, size_t *chosen) {
    double *best = malloc(sizeof(double) * n);
    for (size_t i = 0; i < n; i++) best[i] = INFINITY;
    size_t cur = first;
    for (size_t t = 0; t < m; t++) {
        chosen[t] = cur;
        size_t far = 0;
        for (size_t i = 0; i < n; i++) {
            double s = 0;
            for (int k = 0; k < d; k++) s += ((double)x[i * d + k] - x[cur * d + k]) * ((double)x[i * d + k] - x[cur * d + k]);
            if (s < best[i]) best[i] = s;
            if (best[i] > best[far]) far = i;
        }
        cur = far;
    }
    free(best);
}

static void coreset_picks_farthest(void **state) {
    (void)state;
    float line[11];
    for (int i = 0; i < 11; i++) line[i] = (float)i;
    size_t chosen[5];
    assert_int_equal(lathe_coreset(line, 11, 1, 5, 0, chosen), 0);
    /* 0, then 10, then 5, then the lowest of the rows two away (2), then 7 (two from 5, three from 10) */
    size_t want[] = {0, 10, 5, 2, 7};
    for (int i = 0; i < 5; i++) assert_int_equal(chosen[i], want[i]);
    assert_int_equal(lathe_coreset(line, 11, 1, 12, 0, chosen), -LATHE_EINVAL);
    /* random rows over several blocks (and a ragged last one): the reference's picks, all distinct */
    enum { N = 517, D = 7, M = 60 };
    float *x = malloc(sizeof(float) * N * D);
    uint64_t s = 42;
    for (int i = 0; i < N * D; i++) x[i] = (float)lathe_rng_unit(&s);
    size_t got[M], ref[M];
    assert_int_equal(lathe_coreset(x, N, D, M, 17, got), 0);
    reference_coreset(x, N, D, M, 17, ref);
    for (int i = 0; i < M; i++) {
        assert_int_equal(got[i], ref[i]);
        for (int j = 0; j < i; j++) assert_true(got[i] != got[j]);
    }
    free(x);
}

static void knn_equals_brute_force(void **state) {
    (void)state;
    enum { M = 300, Q = 70, D = 11 };
    float *bank = malloc(sizeof(float) * M * D), *q = malloc(sizeof(float) * Q * D), out[Q];
    uint64_t s = 7;
    for (int i = 0; i < M * D; i++) bank[i] = (float)lathe_rng_unit(&s) * 4 - 2;
    for (int i = 0; i < Q * D; i++) q[i] = (float)lathe_rng_unit(&s) * 4 - 2;
    memcpy(q, bank + 5 * D, sizeof(float) * D); /* a query on a bank row: distance 0 */
    for (int k = 1; k <= 3; k += 2) {
        assert_int_equal(lathe_knn_distance(bank, M, q, Q, D, k, out), 0);
        for (int i = 0; i < Q; i++) {
            double near[3] = {INFINITY, INFINITY, INFINITY};
            for (int j = 0; j < M; j++) {
                double d2 = 0;
                for (int t = 0; t < D; t++) d2 += ((double)q[i * D + t] - bank[j * D + t]) * ((double)q[i * D + t] - bank[j * D + t]);
                double v = sqrt(d2);
                for (int a = 0; a < k; a++)
                    if (v < near[a]) {
                        for (int b = k - 1; b > a; b--) near[b] = near[b - 1];
                        near[a] = v;
                        break;
                    }
            }
            double mean = 0;
            for (int a = 0; a < k; a++) mean += near[a] / k;
            assert_true(fabs(out[i] - mean) < 2e-3);
        }
        if (k == 1) assert_true(out[0] < 2e-3); /* the query that is a bank row */
    }
    assert_int_equal(lathe_knn_distance(bank, M, q, Q, D, 0, out), -LATHE_EINVAL);
    assert_int_equal(lathe_knn_distance(bank, 2, q, Q, D, 3, out), -LATHE_EINVAL);
    free(bank), free(q);
}

/* Two positions, two features: position 0 from known samples, checked against (x-mu)^T S^-1 (x-mu)
 * with the 2 x 2 inverse written out; position 1 degenerate (all samples equal), held up by eps. */
static void gaussian_is_mahalanobis(void **state) {
    (void)state;
    enum { N = 5 };
    float x[N][2][2] = {{{1, 2}, {3, 3}}, {{2, 1}, {3, 3}}, {{3, 5}, {3, 3}}, {{4, 3}, {3, 3}}, {{5, 4}, {3, 3}}};
    float mean[4], chol[8], q[4] = {2.5f, 4.0f, 3.5f, 3.0f}, out[2];
    double eps = 0.01;
    assert_int_equal(lathe_gauss_fit(&x[0][0][0], N, 2, 2, eps, mean, chol), 0);
    double mu0 = 3, mu1 = 3, s00 = 0, s01 = 0, s11 = 0;
    for (int i = 0; i < N; i++) {
        double a = x[i][0][0] - mu0, b = x[i][0][1] - mu1;
        s00 += a * a / (N - 1), s01 += a * b / (N - 1), s11 += b * b / (N - 1);
    }
    s00 += eps, s11 += eps;
    double det = s00 * s11 - s01 * s01, a = q[0] - mu0, b = q[1] - mu1;
    double want = sqrt((s11 * a * a - 2 * s01 * a * b + s00 * b * b) / det);
    lathe_gauss_distance(mean, chol, 2, 2, q, out);
    assert_true(fabs(out[0] - want) < 1e-5);
    assert_true(fabs(out[1] - 0.5 / sqrt(eps)) < 1e-3); /* 0.5 away along a variance of eps */
    assert_int_equal(lathe_gauss_fit(&x[0][0][0], N, 2, 2, 0, mean, chol), -LATHE_EINVAL); /* not positive definite */
    assert_int_equal(lathe_gauss_fit(&x[0][0][0], 1, 2, 2, eps, mean, chol), -LATHE_EINVAL);
}

/* Channel 0 a ramp 0..63 (slope 63 over the window, no tone), channel 1 a tone of 8 cycles in 64
 * steps (bin 8) on a level of 5, channel 2 dead (all NaN), channel 3 a ramp with its middle missing. */
static void sensor_window_features(void **state) {
    (void)state;
    enum { T = 64, S = 4, F = LATHE_SENSOR_FEATURES };
    float w[T * S], f[S * F];
    for (int t = 0; t < T; t++) {
        w[t * S + 0] = (float)t;
        w[t * S + 1] = 5 + sinf(2 * (float)M_PI * 8 * (float)t / T);
        w[t * S + 2] = NAN;
        w[t * S + 3] = t >= 20 && t < 40 ? NAN : (float)t;
    }
    assert_int_equal(lathe_sensor_features(w, T, S, f), 1); /* one channel without values */
    assert_true(fabsf(f[0] - 31.5f) < 1e-4 && fabsf(f[2] - 63) < 1e-3 && fabsf(f[3] - 1) < 1e-5 && fabsf(f[4] - 31.5f) < 1e-4);
    for (int b = 0; b < LATHE_SENSOR_BANDS; b++) assert_true(f[5 + b] < 1e-6); /* a detrended ramp: no spectrum */
    const float *tone = f + F;
    /* a whole number of cycles still leans a little: the least-squares slope is small, not zero */
    assert_true(fabsf(tone[0] - 5) < 1e-5 && fabsf(tone[1] - sqrtf(0.5f)) < 1e-4 && fabsf(tone[2]) < 0.5f);
    int loud = 0; /* bins 1..32 in 8 log-spaced bands: bin 8 lies in the band starting at 6 (edges 1 2 3 4 6 9 13 21 32) */
    for (int b = 1; b < LATHE_SENSOR_BANDS; b++)
        if (tone[5 + b] > tone[5 + loud]) loud = b;
    assert_int_equal(loud, 4);
    for (int k = 0; k < F; k++) assert_true(isnan(f[2 * F + k]));
    assert_true(fabsf(f[3 * F + 2] - 63) < 1e-3 && fabsf(f[3 * F + 3] - 63.0f / 43) < 1e-4); /* 42 steps of 1 and the gap, one of 21 */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(auroc_by_hand),          cmocka_unit_test(average_precision_by_hand),
        cmocka_unit_test(best_f1_by_hand),
        cmocka_unit_test(pro_by_hand),            cmocka_unit_test(coreset_picks_farthest),
        cmocka_unit_test(knn_equals_brute_force), cmocka_unit_test(gaussian_is_mahalanobis),
        cmocka_unit_test(sensor_window_features),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
