/* test_det_head_loss.c - the detector loss of one image (libcore/det/loss.h): positives exist and
 * carry IoU-aware scores, the box-regression gradient (CIoU or GIoU through DFL decoding, plus DFL)
 * and the focal and BCE options' class gradients equal central differences of the loss (float32, loose
 * tolerance), the varifocal class gradient is varifocal's with its weights held constant, and an
 * image without boxes pushes every class score down (varifocal: 0.75 p^2-weighted; BCE: fully). */
#include "testutil.h"

#include <math.h>

#include "libcore/base/error.h"
#include "libcore/det/decode.h"
#include "libcore/det/loss.h"

enum { C = 3, B = 8, PER = 4 * B + C };

static uint64_t seed = 5;
static float uni(void) {
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((double)(seed >> 11) / 9007199254740992.0);
}

/* Central differences of the loss for fixed targets against its gradient, over the box logits
 * (first 4 B of each anchor) or the class logits. */
static void check_gradient(int iou_kind, int cls_kind, int class_logits) {
    int strides[] = {8, 16};
    int A = lathe_det_anchors(32, 32, strides, 2, NULL, NULL);
    float points[2 * 64], stride[64], out[64 * PER], dout[64 * PER];
    lathe_det_anchors(32, 32, strides, 2, points, stride);
    for (int i = 0; i < A * PER; i++) out[i] = 0.6f * (uni() - 0.5f);
    for (int a = 0; a < A; a++)
        for (int c = 0; c < C; c++) out[a * PER + 4 * B + c] = 1.5f * (uni() - 0.5f);
    float gt[] = {2, 3, 20, 18, 12, 10, 30, 31};
    int32_t labels[] = {0, 2};
    lathe_det_loss_opts o;
    lathe_det_loss_defaults(&o, C, B);
    o.iou_kind = iou_kind, o.cls_kind = cls_kind;
    double parts[3];
    double loss = lathe_det_loss_image(&o, A, points, stride, out, 2, gt, labels, dout, parts);
    assert_true(loss > 0 && parts[0] > 0 && parts[1] > 0 && parts[2] > 0);
    int32_t assigned[64];
    float score[64];
    assert_true(lathe_det_assign_image(&o, A, points, stride, out, 2, gt, labels, assigned, score) > 0);
    if (class_logits) o.w_iou = o.w_dfl = 0;
    else o.w_cls = 0; /* varifocal's weights are constants by definition: checked by formula below */
    lathe_det_loss_assigned(&o, A, points, stride, out, gt, labels, assigned, score, dout, NULL);
    int checked = 0, first = class_logits ? 4 * B : 0, last = class_logits ? PER : 4 * B;
    for (int a = 0; a < A; a++)
        for (int j = first; j < last; j += class_logits ? 1 : 3) {
            float *x = &out[a * PER + j], keep = *x, eps = 1e-3f;
            *x = keep + eps;
            double lp = lathe_det_loss_assigned(&o, A, points, stride, out, gt, labels, assigned, score, NULL, NULL);
            *x = keep - eps;
            double lm = lathe_det_loss_assigned(&o, A, points, stride, out, gt, labels, assigned, score, NULL, NULL);
            *x = keep;
            double num = (lp - lm) / (2 * eps), ana = dout[a * PER + j];
            if (fabs(num - ana) > 2e-3 + 3e-2 * fabs(num))
                fail_msg("iou %d class loss %d: anchor %d logit %d: analytic %.6f, numeric %.6f", iou_kind, cls_kind, a, j, ana,
                         num);
            checked += ana != 0;
        }
    assert_true(checked > 0); /* some positives were checked */
}

static void box_gradient_matches_finite_differences(void **state) {
    (void)state;
    check_gradient(LATHE_IOU_CIOU, LATHE_CLS_VARIFOCAL, 0);
    check_gradient(LATHE_IOU_GIOU, LATHE_CLS_VARIFOCAL, 0);
}

static void focal_and_bce_class_gradients_match_finite_differences(void **state) {
    (void)state;
    check_gradient(LATHE_IOU_CIOU, LATHE_CLS_FOCAL, 1);
    check_gradient(LATHE_IOU_CIOU, LATHE_CLS_BCE, 1);
}

static void class_gradient_and_empty_images(void **state) {
    (void)state;
    int strides[] = {16};
    int A = lathe_det_anchors(32, 32, strides, 1, NULL, NULL);
    float points[8], stride[4], out[4 * PER], dout[4 * PER];
    lathe_det_anchors(32, 32, strides, 1, points, stride);
    for (int i = 0; i < A * PER; i++) out[i] = 0.3f * (uni() - 0.5f);
    lathe_det_loss_opts o;
    lathe_det_loss_defaults(&o, C, B);
    o.cls_kind = LATHE_CLS_VARIFOCAL;
    /* no boxes: every class logit is pushed down with 0.5 * 0.75 p^2 * p (norm 1) */
    double loss = lathe_det_loss_image(&o, A, points, stride, out, 0, NULL, NULL, dout, NULL);
    assert_true(loss > 0);
    for (int a = 0; a < A; a++)
        for (int c = 0; c < C; c++) {
            float z = out[a * PER + 4 * B + c], p = 1 / (1 + expf(-z));
            assert_true(fabsf(dout[a * PER + 4 * B + c] - 0.5f * 0.75f * p * p * p) < 1e-6f);
        }
    for (int j = 0; j < 4 * B; j++) assert_true(dout[j] == 0); /* no box loss without boxes */
    /* BCE: the same image pushes every class logit down with 0.5 p, at full weight */
    o.cls_kind = LATHE_CLS_BCE;
    assert_true(lathe_det_loss_image(&o, A, points, stride, out, 0, NULL, NULL, dout, NULL) > 0);
    for (int a = 0; a < A; a++)
        for (int c = 0; c < C; c++) {
            float z = out[a * PER + 4 * B + c], p = 1 / (1 + expf(-z));
            assert_true(fabsf(dout[a * PER + 4 * B + c] - 0.5f * p) < 1e-6f);
        }
    int32_t bad[] = {7};
    float gt[] = {0, 0, 10, 10};
    assert_true(lathe_det_loss_image(&o, A, points, stride, out, 1, gt, bad, dout, NULL) == -LATHE_EINVAL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(box_gradient_matches_finite_differences),
        cmocka_unit_test(focal_and_bce_class_gradients_match_finite_differences),
        cmocka_unit_test(class_gradient_and_empty_images),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
