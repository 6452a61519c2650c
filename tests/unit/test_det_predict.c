/* test_det_predict.c - head outputs to detections on hand-built outputs: a 32 x 32 input over
 * strides 8 and 16 (16 + 4 anchors), 8 bins, 2 classes. Every anchor scores ~0 (class logits -10)
 * except the ones a test sets, whose side distributions are sharp (logit 30 on one bin), so their
 * boxes are known exactly: anchor point -/+ bin x stride. Checks class-aware NMS, the confidence
 * floor, score order, max_det and max_candidates, multi-label candidates, NaN outputs, and the
 * argument checks of lathe_det_head_init. */
#include <math.h>

#include "libcore/base/error.h"
#include "libcore/det/predict.h"
#include "testutil.h"

enum { IN = 32, BINS = 8, CLASSES = 2, K = 4 * BINS + CLASSES, A = 16 + 4, MAXDET = 16 };
static const int strides[] = {8, 16};

static lathe_det_head make_head(void) {
    lathe_det_head hd;
    assert_int_equal(lathe_det_head_init(&hd, IN, IN, strides, 2, BINS, CLASSES), 0);
    return hd;
}

/* An output (A, K) where nothing scores: uniform distances, class logits -10. */
static float *quiet_output(void) {
    float *out = malloc(sizeof(float) * A * K);
    assert_non_null(out);
    for (int a = 0; a < A; a++)
        for (int k = 0; k < K; k++) out[a * K + k] = k < 4 * BINS ? 0 : -10;
    return out;
}

/* Anchor a gets sharp side distances (bins, left top right bottom) and the two class logits. */
static void set_anchor(float *out, int a, const int dist[4], float logit0, float logit1) {
    float *o = out + (size_t)a * K;
    for (int side = 0; side < 4; side++)
        for (int j = 0; j < BINS; j++) o[side * BINS + j] = j == dist[side] ? 30 : 0;
    o[4 * BINS] = logit0, o[4 * BINS + 1] = logit1;
}

/* The box anchor a decodes to with those distances: point -/+ distance x stride. */
static void expected_box(const lathe_det_head *hd, int a, const int dist[4], float box[4]) {
    const float *p = hd->points + 2 * a, s = hd->stride[a];
    box[0] = p[0] - dist[0] * s, box[1] = p[1] - dist[1] * s, box[2] = p[0] + dist[2] * s, box[3] = p[1] + dist[3] * s;
}

static float sigmoid(float z) { return 1.0f / (1.0f + expf(-z)); }

static void assert_detection(const lathe_detection *d, const float box[4], float logit, int label) {
    for (int k = 0; k < 4; k++) assert_float_equal(d->box[k], box[k], 1e-3);
    assert_float_equal(d->score, sigmoid(logit), 1e-6);
    assert_int_equal(d->label, label);
}

static lathe_det_predict_opts opts(float conf, float iou, int max_det) {
    lathe_det_predict_opts o;
    lathe_det_predict_defaults(&o);
    o.conf = conf, o.iou = iou, o.max_det = max_det;
    return o;
}

/* Anchor indices: level 0 (stride 8) is a 4 x 4 grid with points 4, 12, 20, 28; level 1 (stride
 * 16) a 2 x 2 grid from index 16 with points 8, 24. */
static int anchor0(int gx, int gy) { return gy * 4 + gx; }
static int anchor1(int gx, int gy) { return 16 + gy * 2 + gx; }

/* The anchor geometry, and the arguments lathe_det_head_init refuses (leaving an empty head). */
static void head_geometry_and_bad_arguments(void **state) {
    (void)state;
    lathe_det_head hd = make_head();
    assert_int_equal(hd.A, A);
    assert_true(hd.bins == BINS && hd.classes == CLASSES);
    assert_true(hd.points[0] == 4 && hd.points[1] == 4 && hd.stride[0] == 8);
    assert_true(hd.points[2 * 6] == 20 && hd.points[2 * 6 + 1] == 12 && hd.stride[6] == 8);
    assert_true(hd.points[2 * 16] == 8 && hd.points[2 * 16 + 1] == 8 && hd.stride[16] == 16);
    assert_true(hd.points[2 * 19] == 24 && hd.points[2 * 19 + 1] == 24 && hd.stride[19] == 16);
    lathe_det_head_free(&hd);
    assert_null(hd.points);
    static const int zero[] = {8, 0}, negative[] = {-8, 16};
    assert_int_equal(lathe_det_head_init(&hd, 0, IN, strides, 2, BINS, CLASSES), -LATHE_EINVAL);
    assert_int_equal(lathe_det_head_init(&hd, IN, -1, strides, 2, BINS, CLASSES), -LATHE_EINVAL);
    assert_int_equal(lathe_det_head_init(&hd, IN, IN, strides, 0, BINS, CLASSES), -LATHE_EINVAL);
    assert_int_equal(lathe_det_head_init(&hd, IN, IN, strides, 2, 1, CLASSES), -LATHE_EINVAL);
    assert_int_equal(lathe_det_head_init(&hd, IN, IN, strides, 2, BINS, 0), -LATHE_EINVAL);
    assert_int_equal(lathe_det_head_init(&hd, IN, IN, NULL, 2, BINS, CLASSES), -LATHE_EINVAL);
    assert_int_equal(lathe_det_head_init(&hd, IN, IN, zero, 2, BINS, CLASSES), -LATHE_EINVAL);
    assert_int_equal(lathe_det_head_init(&hd, IN, IN, negative, 2, BINS, CLASSES), -LATHE_EINVAL);
    assert_true(hd.A == 0 && hd.points == NULL && hd.stride == NULL);
    lathe_det_head_free(&hd); /* harmless on a refused head */
}

/* Two boxes of the same class with IoU 2/3 > 0.5: NMS keeps only the higher-scoring one. The same
 * geometry with different classes: both kept, by score. */
static void nms_is_class_aware(void **state) {
    (void)state;
    lathe_det_head hd = make_head();
    float *out = quiet_output();
    static const int d0[4] = {1, 1, 1, 1}, d1[4] = {2, 1, 1, 1};
    int a0 = anchor0(1, 1), a1 = anchor0(2, 1); /* points (12, 12) and (20, 12) */
    float b0[4], b1[4];
    expected_box(&hd, a0, d0, b0); /* (4, 4, 20, 20) */
    expected_box(&hd, a1, d1, b1); /* (4, 4, 28, 20): IoU 256 / 384 */
    assert_true(b0[0] == 4 && b0[2] == 20 && b1[0] == 4 && b1[2] == 28);
    lathe_det_predict_opts o = opts(0.25f, 0.5f, MAXDET);
    lathe_detection dets[MAXDET];

    set_anchor(out, a0, d0, 1, -10);
    set_anchor(out, a1, d1, 3, -10);
    assert_int_equal(lathe_det_predict(&hd, &o, out, dets), 1);
    assert_detection(&dets[0], b1, 3, 0);

    set_anchor(out, a1, d1, -10, 3); /* the stronger one is now class 1 */
    assert_int_equal(lathe_det_predict(&hd, &o, out, dets), 2);
    assert_detection(&dets[0], b1, 3, 1);
    assert_detection(&dets[1], b0, 1, 0);

    o.iou = 0.7f; /* same class again, but the overlap is under the threshold: both kept */
    set_anchor(out, a1, d1, 3, -10);
    assert_int_equal(lathe_det_predict(&hd, &o, out, dets), 2);
    assert_detection(&dets[0], b1, 3, 0);
    assert_detection(&dets[1], b0, 1, 0);
    free(out);
    lathe_det_head_free(&hd);
}

/* Separate boxes scored 0.5, 2, -2, 3, 1.5 (logits): the one under conf is dropped, the rest come
 * sorted by score; max_det and max_candidates cap the count, keeping the best. */
static void conf_order_and_caps(void **state) {
    (void)state;
    lathe_det_head hd = make_head();
    float *out = quiet_output();
    static const int d[4] = {0, 0, 1, 1};
    static const float logits[5] = {0.5f, 2, -2, 3, 1.5f};
    int anchors[5] = {anchor0(0, 0), anchor0(3, 0), anchor0(0, 3), anchor0(3, 3), anchor1(1, 0)};
    float boxes[5][4];
    for (int i = 0; i < 5; i++) {
        set_anchor(out, anchors[i], d, i % 2 ? logits[i] : -10, i % 2 ? -10 : logits[i]);
        expected_box(&hd, anchors[i], d, boxes[i]);
    }
    static const int by_score[4] = {3, 1, 4, 0}; /* candidate 2 (score 0.12) is under 0.25 */
    lathe_det_predict_opts o = opts(0.25f, 0.7f, MAXDET);
    lathe_detection dets[MAXDET];
    assert_int_equal(lathe_det_predict(&hd, &o, out, dets), 4);
    for (int i = 0; i < 4; i++) assert_detection(&dets[i], boxes[by_score[i]], logits[by_score[i]], by_score[i] % 2 ? 0 : 1);
    for (int i = 1; i < 4; i++) assert_true(dets[i - 1].score >= dets[i].score);

    o.conf = 0.1f; /* now candidate 2 makes it, last */
    assert_int_equal(lathe_det_predict(&hd, &o, out, dets), 5);
    assert_detection(&dets[4], boxes[2], -2, 1);

    o.conf = 0.25f, o.max_det = 2;
    assert_int_equal(lathe_det_predict(&hd, &o, out, dets), 2);
    assert_detection(&dets[0], boxes[3], 3, 0);
    assert_detection(&dets[1], boxes[1], 2, 0);

    o.max_det = MAXDET, o.max_candidates = 3;
    assert_int_equal(lathe_det_predict(&hd, &o, out, dets), 3);
    for (int i = 0; i < 3; i++) assert_detection(&dets[i], boxes[by_score[i]], logits[by_score[i]], by_score[i] % 2 ? 0 : 1);
    free(out);
    lathe_det_head_free(&hd);
}

/* Multi-label: one anchor with both classes above conf is two detections of the same box. */
static void one_anchor_two_classes(void **state) {
    (void)state;
    lathe_det_head hd = make_head();
    float *out = quiet_output();
    static const int d[4] = {3, 2, 1, 4};
    int a = anchor1(1, 1); /* point (24, 24), stride 16 */
    set_anchor(out, a, d, 1, 2);
    float box[4];
    expected_box(&hd, a, d, box); /* (-24, -8, 40, 88): decoded boxes are not clipped */
    lathe_det_predict_opts o = opts(0.25f, 0.7f, MAXDET);
    lathe_detection dets[MAXDET];
    assert_int_equal(lathe_det_predict(&hd, &o, out, dets), 2);
    assert_detection(&dets[0], box, 2, 1);
    assert_detection(&dets[1], box, 1, 0);
    free(out);
    lathe_det_head_free(&hd);
}

/* NaN never becomes a detection: not as a class logit, nor in the distance logits of an anchor
 * that scores; the finite anchors beside them are still found. */
static void nan_outputs_are_dropped(void **state) {
    (void)state;
    lathe_det_head hd = make_head();
    float *out = quiet_output();
    static const int d[4] = {1, 1, 1, 1};
    set_anchor(out, anchor0(0, 0), d, NAN, NAN);
    set_anchor(out, anchor0(2, 2), d, 5, 5);
    out[(size_t)anchor0(2, 2) * K + 3] = NAN; /* one bin of the left side */
    set_anchor(out, anchor1(1, 0), d, 5, 5);
    out[(size_t)anchor1(1, 0) * K + 2 * BINS] = NAN; /* the first bin of the right side */
    set_anchor(out, anchor0(3, 0), d, 2, NAN);
    lathe_det_predict_opts o = opts(0.001f, 0.7f, MAXDET);
    lathe_detection dets[MAXDET];
    assert_int_equal(lathe_det_predict(&hd, &o, out, dets), 1);
    float box[4];
    expected_box(&hd, anchor0(3, 0), d, box);
    assert_detection(&dets[0], box, 2, 0);
    for (int k = 0; k < 4; k++) assert_false(isnan(dets[0].box[k]));
    free(out);
    lathe_det_head_free(&hd);
}

/* Nothing above conf (every score ~4.5e-5, under the default 0.001): no detection. */
static void nothing_above_conf(void **state) {
    (void)state;
    lathe_det_head hd = make_head();
    float *out = quiet_output();
    lathe_det_predict_opts o;
    lathe_det_predict_defaults(&o);
    lathe_detection dets[100];
    assert_int_equal(o.max_det, 100);
    assert_int_equal(lathe_det_predict(&hd, &o, out, dets), 0);
    free(out);
    lathe_det_head_free(&hd);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(head_geometry_and_bad_arguments),
        cmocka_unit_test(nms_is_class_aware),
        cmocka_unit_test(conf_order_and_caps),
        cmocka_unit_test(one_anchor_two_classes),
        cmocka_unit_test(nan_outputs_are_dropped),
        cmocka_unit_test(nothing_above_conf),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
