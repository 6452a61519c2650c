/* test_contrastive.c - the symmetric InfoNCE loss of image-text heads (libcore/mm/contrastive.h):
 * its gradient against central finite differences (with identical descriptions in the batch), its
 * value on batches whose answer is known (the l2norm layer it trains through: test_nn_kernels). */
#include "testutil.h"

#include <math.h>

#include "libcore/mm/contrastive.h"

static uint64_t state = 1234;
static float uni(void) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((double)(state >> 11) / 9007199254740992.0 * 2 - 1);
}

enum { N = 6, D = 5 };

static void unit_rows(float *v, int n, int d) {
    for (int i = 0; i < n; i++) {
        double s = 0;
        for (int k = 0; k < d; k++) s += (double)v[i * d + k] * v[i * d + k];
        for (int k = 0; k < d; k++) v[i * d + k] = (float)(v[i * d + k] / sqrt(s));
    }
}

static void gradient_matches_finite_differences(void **st) {
    (void)st;
    float img[N * D], txt[N * D], g[N * D];
    int32_t ids[N] = {0, 1, 2, 1, 3, 0}; /* rows 1 and 3, 0 and 5 share a description */
    for (int i = 0; i < N * D; i++) img[i] = 3 * uni(), txt[i] = uni();
    unit_rows(txt, N, D);
    double loss = lathe_infonce(N, D, img, txt, ids, g);
    assert_true(loss > 0 && isfinite(loss));
    double worst = 0;
    for (int i = 0; i < N * D; i++) {
        float keep = img[i], h = 1e-2f;
        img[i] = keep + h;
        double lp = lathe_infonce(N, D, img, txt, ids, NULL);
        img[i] = keep - h;
        double lm = lathe_infonce(N, D, img, txt, ids, NULL);
        img[i] = keep;
        double num = (lp - lm) / (2.0 * h);
        worst = fmax(worst, fabs(num - g[i]) / fmax(1e-2, fabs(num)));
    }
    printf("InfoNCE gradient: worst relative error %.2e\n", worst);
    assert_true(worst < 2e-3);
}

static void known_values(void **st) {
    (void)st;
    /* every image aligned with its own text, strongly: loss -> 0; reversed pairs: loss large */
    float txt[3 * 3] = {1, 0, 0, 0, 1, 0, 0, 0, 1}, img[3 * 3], g[9];
    int32_t ids[3] = {0, 1, 2}, same[3] = {7, 7, 7};
    for (int i = 0; i < 9; i++) img[i] = 50 * txt[i];
    assert_true(lathe_infonce(3, 3, img, txt, ids, g) < 1e-12);
    for (int i = 0; i < 9; i++) assert_true(fabsf(g[i]) < 1e-12f);
    /* equal logits: each side is log(n) */
    for (int i = 0; i < 9; i++) img[i] = 0;
    assert_true(fabs(lathe_infonce(3, 3, img, txt, ids, NULL) - log(3.0)) < 1e-12);
    /* one description for the whole batch: no negatives, uniform targets; equal logits are optimal */
    assert_true(fabs(lathe_infonce(3, 3, img, txt, same, g) - log(3.0)) < 1e-12);
    for (int i = 0; i < 9; i++) assert_true(fabsf(g[i]) < 1e-12f);
    /* a single pair has nothing to contrast */
    assert_true(lathe_infonce(1, 3, img, txt, ids, g) == 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(gradient_matches_finite_differences),
        cmocka_unit_test(known_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
