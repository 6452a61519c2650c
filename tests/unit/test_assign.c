/* test_assign.c - task-aligned assignment on hand-computed cases: the top k by s^alpha IoU^beta
 * among anchors inside the box, conflicts to the best-overlapping box, per-box normalization. */
#include "testutil.h"

#include <math.h>

#include "libcore/base/error.h"
#include "libcore/det/assign.h"

static void topk_and_normalization(void **state) {
    (void)state;
    lathe_assign_opts o = {2, 1, 6};
    float points[] = {2, 2, 5, 5, 8, 8, 12, 12};
    float scores[] = {0.5f, 0.9f, 0.4f, 0.99f};
    float pred[] = {0, 0, 10, 10, 0, 0, 5, 10, 0, 0, 10, 10, 0, 0, 10, 10};
    float gt[] = {0, 0, 10, 10};
    int32_t labels[] = {0}, assigned[4];
    float target[4];
    /* metrics: 0.5 * 1, 0.9 * 0.5^6, 0.4 * 1, (outside); top 2: anchors 0 and 2 */
    assert_int_equal(lathe_assign_tal(&o, 4, 1, points, scores, pred, 1, gt, labels, assigned, target), 2);
    assert_int_equal(assigned[0], 0), assert_int_equal(assigned[1], -1);
    assert_int_equal(assigned[2], 0), assert_int_equal(assigned[3], -1);
    assert_true(fabsf(target[0] - 1.0f) < 1e-6f && fabsf(target[2] - 0.8f) < 1e-6f && target[1] == 0 && target[3] == 0);
    o.topk = 10; /* every anchor inside may be positive */
    assert_int_equal(lathe_assign_tal(&o, 4, 1, points, scores, pred, 1, gt, labels, assigned, target), 3);
    assert_true(fabsf(target[1] - 0.9f * powf(0.5f, 6) / 0.5f) < 1e-6f);
}

static void conflicts_go_to_the_best_overlap(void **state) {
    (void)state;
    lathe_assign_opts o = {10, 1, 6};
    float points[] = {5, 5};
    float scores[] = {0.6f, 0.7f};                /* two classes */
    float pred[] = {0, 0, 10, 10};
    float gt[] = {0, 0, 12, 12, 0, 0, 10, 11};    /* IoU 100/144 and 100/110 */
    int32_t labels[] = {0, 1}, assigned[1];
    float target[1];
    assert_int_equal(lathe_assign_tal(&o, 1, 2, points, scores, pred, 2, gt, labels, assigned, target), 1);
    assert_int_equal(assigned[0], 1);
    assert_true(fabsf(target[0] - 100.0f / 110) < 1e-5f); /* its own best metric: normalized to the IoU */
    int32_t bad[] = {0, 2};
    assert_int_equal(lathe_assign_tal(&o, 1, 2, points, scores, pred, 2, gt, bad, assigned, target), -LATHE_EINVAL);
    assert_int_equal(lathe_assign_tal(&o, 1, 2, points, scores, pred, 0, gt, labels, assigned, target), 0);
    assert_int_equal(assigned[0], -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(topk_and_normalization),
        cmocka_unit_test(conflicts_go_to_the_best_overlap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
