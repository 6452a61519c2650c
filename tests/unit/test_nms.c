/* test_nms.c - the two thresholds of the CPU NMS (kernels/nms.h), each at the threshold and one
 * float step either side. A candidate is suppressed only when its IoU with a kept box of its class
 * is greater than iou_thr (torchvision.ops.nms discards boxes with IoU > iou_threshold, so a box
 * whose IoU equals the threshold is kept); a score equal to score_thr is a candidate. The box pairs
 * have IoUs that float and double both hold exactly, so "equal" means equal. */
#include <math.h>

#include "kernels/nms.h"
#include "testutil.h"

/* The same IoU in double, as an independent check that the pairs below are exact. */
static double iou_double(const float *a, const float *b) {
    double w = fmin(a[2], b[2]) - fmax(a[0], b[0]), h = fmin(a[3], b[3]) - fmax(a[1], b[1]);
    if (w <= 0 || h <= 0) return 0;
    double inter = w * h;
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter);
}

/* Two boxes of one class, the first scoring higher, whose IoU is exactly iou; NMS at iou_thr. */
static int kept_at(const float boxes[8], float iou, float iou_thr) {
    static const float scores[2] = {0.9f, 0.8f};
    static const int32_t classes[2] = {3, 3};
    int32_t keep[2] = {-1, -1};
    assert_true(lathe_k_box_iou(boxes, boxes + 4) == iou);
    assert_true(iou_double(boxes, boxes + 4) == (double)iou);
    int n = lathe_k_nms_cpu(boxes, scores, classes, 2, iou_thr, 0.0f, 10, keep);
    assert_true(n == 1 || n == 2);
    assert_int_equal(keep[0], 0);
    if (n == 2) assert_int_equal(keep[1], 1);
    return n;
}

/* IoU equal to the threshold: both kept; a threshold one step under the IoU: the weaker box goes;
 * one step over: both kept. Two pairs: IoU 1/2 (shifted sideways: overlap 16 of union 32) and 3/4
 * (one inside the other: 48 of 64). */
static void iou_equal_to_the_threshold_is_kept(void **state) {
    (void)state;
    static const float half[8] = {0, 0, 6, 4, 2, 0, 8, 4};
    static const float three_quarters[8] = {1, 1, 9, 9, 1, 3, 9, 9};
    assert_int_equal(kept_at(half, 0.5f, 0.5f), 2);
    assert_int_equal(kept_at(half, 0.5f, nextafterf(0.5f, 0)), 1);
    assert_int_equal(kept_at(half, 0.5f, nextafterf(0.5f, 1)), 2);
    assert_int_equal(kept_at(three_quarters, 0.75f, 0.75f), 2);
    assert_int_equal(kept_at(three_quarters, 0.75f, nextafterf(0.75f, 0)), 1);
    assert_int_equal(kept_at(three_quarters, 0.75f, nextafterf(0.75f, 1)), 2);
}

/* A score equal to score_thr is a candidate; one step under it is not. Disjoint boxes, so only the
 * floor decides. */
static void score_equal_to_the_floor_is_a_candidate(void **state) {
    (void)state;
    static const float boxes[8] = {0, 0, 4, 4, 10, 10, 14, 14};
    const float scores[2] = {0.5f, nextafterf(0.25f, 0)};
    static const int32_t classes[2] = {0, 0};
    int32_t keep[2] = {-1, -1};
    assert_int_equal(lathe_k_nms_cpu(boxes, scores, classes, 2, 0.5f, 0.5f, 10, keep), 1);
    assert_int_equal(keep[0], 0);
    assert_int_equal(lathe_k_nms_cpu(boxes, scores, classes, 2, 0.5f, nextafterf(0.5f, 1), 10, keep), 0);
    assert_int_equal(lathe_k_nms_cpu(boxes, scores, classes, 2, 0.5f, 0.25f, 10, keep), 1);
    assert_int_equal(lathe_k_nms_cpu(boxes, scores, classes, 2, 0.5f, nextafterf(0.25f, 0), 10, keep), 2);
    assert_true(keep[0] == 0 && keep[1] == 1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(iou_equal_to_the_threshold_is_kept),
        cmocka_unit_test(score_equal_to_the_floor_is_a_candidate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
