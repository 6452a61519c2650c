/* test_det_overfit.c - the detection pieces working together: a small YAML detector (two stride
 * levels, 1x1 heads, the `detect` layer gathering them per anchor) trained with the image loss of
 * libcore/det/loss.c and AdamW on one synthetic image must drive its loss down and find the box:
 * the most confident anchor's decoded box overlaps the ground truth at IoU > 0.5. */
#include "testutil.h"

#include <math.h>

#include "libcore/base/config.h"
#include "libcore/det/decode.h"
#include "libcore/det/loss.h"
#include "libcore/nn/graph.h"
#include "libcore/nn/optim.h"

enum { C = 1, B = 8, PER = 4 * B + C };

static const char *model_yaml =
    "input: [3, 32, 32]\n"
    "layers:\n"
    "  - {type: conv, out: 16, k: 3, stride: 2}\n  - {type: silu}\n"
    "  - {type: conv, out: 32, k: 3, stride: 2}\n  - {type: silu, name: p3}\n"
    "  - {type: conv, out: 32, k: 3, stride: 2}\n  - {type: silu, name: p4}\n"
    "  - {name: h3, type: conv, out: 33, k: 1, from: p3, fixed_width: 1}\n"
    "  - {name: h4, type: conv, out: 33, k: 1, from: p4, fixed_width: 1}\n"
    "  - {name: out, type: detect, from: [h3, h4]}\n";

static float iou(const float *a, const float *b) {
    float w = fminf(a[2], b[2]) - fmaxf(a[0], b[0]), h = fminf(a[3], b[3]) - fmaxf(a[1], b[1]);
    if (w <= 0 || h <= 0) return 0;
    return w * h / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h);
}

static void overfit_one_image(void **state) {
    (void)state;
    cJSON *m;
    assert_int_equal(lathe_config_parse(model_yaml, "detector", &m), 0);
    lathe_graph *g;
    assert_int_equal(lathe_graph_build(m, 1, 3, &g), 0);
    int k;
    lathe_graph_output(g, &k);
    int strides[] = {4, 8};
    int A = lathe_det_anchors(32, 32, strides, 2, NULL, NULL);
    assert_int_equal(k, A * PER);
    float points[2 * 80], stride[80];
    lathe_det_anchors(32, 32, strides, 2, points, stride);
    float *x = lathe_graph_input(g, NULL, NULL, NULL);
    float gt[4] = {8, 6, 24, 22};
    int32_t label[1] = {0};
    for (int c = 0; c < 3; c++)
        for (int yy = 0; yy < 32; yy++)
            for (int xx = 0; xx < 32; xx++) {
                int inside = xx >= 8 && xx < 24 && yy >= 6 && yy < 22;
                x[(c * 32 + yy) * 32 + xx] = inside ? 1.0f : -0.5f + 0.1f * (float)sin(xx * 1.3 + yy * 0.7 + c);
            }
    lathe_optim_opts oo;
    lathe_optim_defaults(&oo);
    oo.weight_decay = 0;
    lathe_optim *opt;
    assert_int_equal(lathe_optim_create(g, &oo, &opt), 0);
    lathe_det_loss_opts lo;
    lathe_det_loss_defaults(&lo, C, B);
    float *dout = malloc(sizeof(float) * (size_t)A * PER);
    double first = 0, last = 0;
    for (int step = 0; step < 400; step++) {
        lathe_graph_forward(g, 1, (uint64_t)step);
        double loss = lathe_det_loss_image(&lo, A, points, stride, lathe_graph_output(g, NULL), 1, gt, label, dout, NULL);
        assert_true(loss >= 0);
        if (step == 0) first = loss;
        last = loss;
        memcpy(lathe_graph_doutput(g), dout, sizeof(float) * (size_t)A * PER);
        lathe_graph_backward(g, 1);
        assert_int_equal(lathe_optim_step(opt, 3e-3, NULL), 0);
    }
    assert_true(last < 0.5 * first);
    lathe_graph_forward(g, 1, 0);
    const float *out = lathe_graph_output(g, NULL);
    int best = 0;
    for (int a = 1; a < A; a++)
        if (out[a * PER + 4 * B] > out[best * PER + 4 * B]) best = a;
    float logits[4 * B], box[4];
    memcpy(logits, out + best * PER, sizeof logits);
    lathe_det_decode(1, B, logits, points + 2 * best, stride + best, box);
    float overlap = iou(box, gt);
    if (overlap <= 0.5f) fail_msg("best anchor %d: box %.1f %.1f %.1f %.1f, IoU %.3f (loss %.3f -> %.3f)", best, box[0],
                                  box[1], box[2], box[3], overlap, first, last);
    free(dout);
    lathe_optim_free(opt);
    lathe_graph_free(g);
    cJSON_Delete(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(overfit_one_image)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
