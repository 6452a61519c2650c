/* test_det_head_loss.c - the detector loss of one image (libcore/det/loss.h): positives exist and
 * carry IoU-aware scores, the box-regression gradient (CIoU or GIoU through DFL decoding, plus DFL)
 * and the focal and BCE options' class gradients equal central differences of the loss (float32, loose
 * tolerance), the varifocal class gradient is varifocal's with its weights held constant, and an
 * image without boxes pushes every class score down (varifocal: 0.75 p^2-weighted; BCE: fully); and
 * the whole loss for fixed targets (class, CIoU, DFL parts and the weighted total) equals a value
 * written out in double from the definition, independent of lathe's kernels; a skipped class
 * (cls_skip) leaves the loss and gradient those of a head without it. */
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

/* ---- an independent value of the whole loss for fixed targets ---- */

static double sigmoid_d(double z) { return 1 / (1 + exp(-z)); }
static double bce_d(double z, double t) { return fmax(z, 0) - z * t + log1p(exp(-fabs(z))); }

/* 1 - CIoU of boxes p and t (x1, y1, x2, y2): IoU, centre distance over the enclosing diagonal,
 * aspect term alpha v with v = 4 / pi^2 (atan(wt / ht) - atan(wp / hp))^2, alpha = v / (1 - IoU + v) */
static double ciou_loss_d(const double *p, const double *t) {
    double iw = fmax(0, fmin(p[2], t[2]) - fmax(p[0], t[0])), ih = fmax(0, fmin(p[3], t[3]) - fmax(p[1], t[1]));
    double wp = p[2] - p[0], hp = p[3] - p[1], wt = t[2] - t[0], ht = t[3] - t[1];
    double inter = iw * ih, iou = inter / (wp * hp + wt * ht - inter);
    double cw = fmax(p[2], t[2]) - fmin(p[0], t[0]), ch = fmax(p[3], t[3]) - fmin(p[1], t[1]);
    double dx = (p[0] + p[2] - t[0] - t[2]) / 2, dy = (p[1] + p[3] - t[1] - t[3]) / 2;
    double v = 4 / (M_PI * M_PI) * pow(atan(wt / ht) - atan(wp / hp), 2), alpha = v / (1 - iou + v);
    return 1 - iou + (dx * dx + dy * dy) / (cw * cw + ch * ch) + alpha * v;
}

/* The loss of lathe_det_loss_assigned written out from its definition (loss.h, YOLOv8's): class
 * loss over every anchor and class against the IoU-aware score q of the assigned class; on the
 * positives, the distances decoded as the softmax expectation of the bins times the stride, CIoU
 * against the box, DFL (mean over the 4 sides of the cross-entropy split between the two bins around
 * the target distance, clamped to [0, B - 1.01]); class, CIoU and DFL sums weighted by q and divided
 * by max(1, sum q). Compared with lathe's float32 kernels at a relative 1e-4. */
static void whole_loss_equals_its_definition(void **state) {
    (void)state;
    int strides[] = {16};
    int A = lathe_det_anchors(32, 32, strides, 1, NULL, NULL);
    float points[8], stride[4], out[4 * PER];
    lathe_det_anchors(32, 32, strides, 1, points, stride);
    for (int i = 0; i < A * PER; i++) out[i] = 2.0f * (uni() - 0.5f);
    /* the second box reaches far left: its left distance is clamped to B - 1.01 */
    float gt[] = {2, 3, 20, 18, -200, 10, 30, 31};
    int32_t labels[] = {1, 2}, assigned[4] = {0, -1, -1, 1};
    float score[4] = {0.6f, 0, 0, 0.9f};
    for (int kind = LATHE_CLS_VARIFOCAL; kind <= LATHE_CLS_BCE; kind++) {
        double cls = 0, iou = 0, dfl = 0, norm = 0;
        for (int a = 0; a < A; a++) norm += assigned[a] >= 0 ? score[a] : 0;
        norm = fmax(norm, 1);
        for (int a = 0; a < A; a++)
            for (int c = 0; c < C; c++) {
                double z = out[a * PER + 4 * B + c], q = assigned[a] >= 0 && labels[assigned[a]] == c ? score[a] : 0;
                double p = sigmoid_d(z), w = kind == LATHE_CLS_BCE ? 1 : q > 0 ? q : 0.75 * p * p;
                cls += w * bce_d(z, q);
            }
        for (int a = 0; a < A; a++) {
            if (assigned[a] < 0) continue;
            const float *g = gt + 4 * assigned[a];
            double px = points[2 * a], py = points[2 * a + 1], d[4], box[4], target[4] = {g[0], g[1], g[2], g[3]};
            double want[4] = {(px - g[0]) / stride[a], (py - g[1]) / stride[a], (g[2] - px) / stride[a], (g[3] - py) / stride[a]};
            double side_ce = 0;
            for (int k = 0; k < 4; k++) {
                const float *z = out + a * PER + k * B;
                double mx = z[0], sum = 0, e = 0;
                for (int j = 1; j < B; j++) mx = fmax(mx, z[j]);
                for (int j = 0; j < B; j++) sum += exp(z[j] - mx), e += j * exp(z[j] - mx);
                d[k] = e / sum * stride[a];
                double t = fmin(fmax(want[k], 0), B - 1.01), lo = floor(t), f = t - lo;
                double logp_lo = z[(int)lo] - mx - log(sum), logp_hi = z[(int)lo + 1] - mx - log(sum);
                side_ce += -(1 - f) * logp_lo - f * logp_hi;
            }
            box[0] = px - d[0], box[1] = py - d[1], box[2] = px + d[2], box[3] = py + d[3];
            iou += score[a] * ciou_loss_d(box, target);
            dfl += score[a] * side_ce / 4;
        }
        cls /= norm, iou /= norm, dfl /= norm;
        lathe_det_loss_opts o;
        lathe_det_loss_defaults(&o, C, B);
        o.cls_kind = kind;
        double parts[3];
        double total = lathe_det_loss_assigned(&o, A, points, stride, out, gt, labels, assigned, score, NULL, parts);
        double want_parts[3] = {cls, iou, dfl}, want_total = 0.5 * cls + 7.5 * iou + 1.5 * dfl;
        for (int k = 0; k < 3; k++)
            if (fabs(parts[k] - want_parts[k]) > 1e-4 * fabs(want_parts[k]))
                fail_msg("class loss %d: part %d is %.8f, its definition %.8f", kind, k, parts[k], want_parts[k]);
        if (fabs(total - want_total) > 1e-4 * want_total)
            fail_msg("class loss %d: total %.8f, its definition %.8f", kind, total, want_total);
    }
}

/* A class in cls_skip (an open-vocabulary detector's held-out class) is outside the class loss:
 * the loss and gradient equal those of the same head without that class's column, for every class
 * loss, and the skipped column's gradient is zero. */
static void skipped_class_is_left_out(void **state) {
    (void)state;
    enum { C2 = C - 1, PER2 = 4 * B + C2 };
    int strides[] = {8, 16};
    int A = lathe_det_anchors(32, 32, strides, 2, NULL, NULL);
    float points[2 * 64], stride[64], out[64 * PER], out2[64 * PER2], dout[64 * PER], dout2[64 * PER2];
    lathe_det_anchors(32, 32, strides, 2, points, stride);
    for (int i = 0; i < A * PER; i++) out[i] = 1.2f * (uni() - 0.5f);
    for (int a = 0; a < A; a++) { /* out without class 1's column */
        memcpy(out2 + a * PER2, out + a * PER, sizeof(float) * (4 * B + 1));
        out2[a * PER2 + 4 * B + 1] = out[a * PER + 4 * B + 2];
    }
    float gt[] = {2, 3, 20, 18, 12, 10, 30, 31};
    int32_t labels[] = {0, 2}, labels2[] = {0, 1};
    const unsigned char skip[C] = {0, 1, 0};
    for (int kind = LATHE_CLS_VARIFOCAL; kind <= LATHE_CLS_FOCAL; kind++) {
        lathe_det_loss_opts o, o2;
        lathe_det_loss_defaults(&o, C, B);
        lathe_det_loss_defaults(&o2, C2, B);
        o.cls_kind = o2.cls_kind = kind, o.cls_skip = skip;
        double parts[3], parts2[3];
        double loss = lathe_det_loss_image(&o, A, points, stride, out, 2, gt, labels, dout, parts);
        double loss2 = lathe_det_loss_image(&o2, A, points, stride, out2, 2, gt, labels2, dout2, parts2);
        assert_true(loss > 0);
        assert_float_equal(loss, loss2, 1e-6 * loss2);
        for (int k = 0; k < 3; k++) assert_float_equal(parts[k], parts2[k], 1e-6 * parts2[k]);
        for (int a = 0; a < A; a++) {
            assert_memory_equal(dout + a * PER, dout2 + a * PER2, sizeof(float) * (4 * B + 1));
            assert_true(dout[a * PER + 4 * B + 1] == 0);
            assert_true(dout[a * PER + 4 * B + 2] == dout2[a * PER2 + 4 * B + 1]);
        }
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(box_gradient_matches_finite_differences),
        cmocka_unit_test(whole_loss_equals_its_definition),
        cmocka_unit_test(focal_and_bce_class_gradients_match_finite_differences),
        cmocka_unit_test(class_gradient_and_empty_images),
        cmocka_unit_test(skipped_class_is_left_out),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
