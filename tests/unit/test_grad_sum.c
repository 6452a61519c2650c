/* test_grad_sum.c - the buckets a data-parallel step's gradients are summed in (libcore/nn/grad_sum.c),
 * in one process: the plan follows backward's order (the last layers' parameters first), sizes the
 * buckets as asked and leaves frozen parameters out; backward itself sends every bucket (none is
 * left for the end); the sum gives back the gradients it was handed, and a rank without samples
 * adds zeros. The sums over real ranks: tests/interop/test_distributed.py. */
#include "testutil.h"

#include <string.h>

#include "libcore/base/config.h"
#include "libcore/base/error.h"
#include "libcore/nn/grad_sum.h"
#include "libcore/nn/graph.h"

static lathe_graph *graph(void) {
    cJSON *m;
    assert_int_equal(lathe_config_parse("input: [2, 6, 6]\nclasses: 3\nlayers:\n  - {name: c1, type: conv, out: 4, k: 3}\n"
                                        "  - {name: n1, type: bn}\n  - {type: silu}\n  - {name: c2, type: conv, out: 8, k: 3}\n"
                                        "  - {type: gap}\n  - {name: fc, type: linear, out: classes}\n",
                                        "model", &m),
                     0);
    lathe_graph *g;
    assert_int_equal(lathe_graph_build(m, 2, 5, &g), 0);
    cJSON_Delete(m);
    return g;
}

static size_t trainable(lathe_graph *g, size_t *count) {
    size_t floats = 0;
    *count = 0;
    for (size_t i = 0; i < lathe_graph_nparams(g); i++) {
        const lathe_param *p = lathe_graph_param(g, i);
        if (p->grad && !p->frozen) floats += p->count, ++*count;
    }
    return floats;
}

/* Buckets in backward's order, each full but the last, every trainable float in one of them. */
static void check_plan(lathe_graph *g, double mb, int expect_buckets) {
    lathe_grad_sum *s;
    assert_int_equal(lathe_grad_sum_new(g, mb, &s), 0);
    size_t params, floats = trainable(g, &params), seen = 0, cap = mb > 0 ? (size_t)(mb * (1 << 18)) : (size_t)-1;
    int nb = lathe_grad_sum_buckets(s), before = 1 << 30;
    if (expect_buckets) assert_int_equal(nb, expect_buckets);
    for (int j = 0; j < nb; j++) {
        size_t f;
        int layer;
        lathe_grad_sum_bucket(s, j, &f, &layer);
        assert_true(layer >= 1 && layer <= before); /* backward reaches them one after the other */
        if (j < nb - 1) assert_true(f >= (cap ? cap : 1));
        before = layer, seen += f;
    }
    assert_int_equal(seen, floats);
    lathe_grad_sum_free(s);
}

static void buckets_follow_backward(void **state) {
    (void)state;
    lathe_graph *g = graph();
    size_t params;
    trainable(g, &params);
    check_plan(g, 1e-9, (int)params); /* smaller than any parameter: one bucket each */
    check_plan(g, 0, 1);              /* one bucket, sent when backward reaches the first layer */
    check_plan(g, 0.0005, 0);         /* 131 floats: c2.weight (288) alone, the small ones together */
    assert_true(lathe_graph_freeze(g, "c1") > 0);
    size_t after;
    trainable(g, &after);
    assert_int_equal(after, params - 2);
    check_plan(g, 1e-9, (int)after);
    lathe_grad_sum *s = NULL;
    assert_int_equal(lathe_grad_sum_new(g, -1, &s), -LATHE_EINVAL);
    assert_null(s);
    lathe_graph_free(g);
}

static void run_step(lathe_graph *g) {
    int c, h, w, k;
    float *x = lathe_graph_input(g, &c, &h, &w);
    for (int i = 0; i < 2 * c * h * w; i++) x[i] = (float)((i * 37) % 11) / 11.0f - 0.4f;
    assert_int_equal(lathe_graph_forward(g, 2, 0), 0);
    lathe_graph_output(g, &k);
    float *d = lathe_graph_doutput(g);
    for (int i = 0; i < 2 * k; i++) d[i] = 0.1f * (float)(i - 2);
    assert_int_equal(lathe_graph_backward(g, 2), 0);
}

static void backward_sends_every_bucket_and_the_sum_is_the_gradient(void **state) {
    (void)state;
    lathe_graph *g = graph();
    lathe_graph_set_train(g, 1);
    run_step(g); /* the gradients without buckets */
    size_t params, floats = trainable(g, &params);
    float *want = malloc(floats * sizeof *want), *at = want;
    for (size_t i = 0; i < lathe_graph_nparams(g); i++) {
        const lathe_param *p = lathe_graph_param(g, i);
        if (p->grad) memcpy(at, p->grad, p->count * sizeof *at), at += p->count;
    }
    const double sizes[] = {1e-9, 0.0005, 0}; /* a bucket a parameter, some shared, one for all */
    for (int t = 0; t < 3; t++) {
        lathe_grad_sum *s;
        assert_int_equal(lathe_grad_sum_new(g, sizes[t], &s), 0);
        assert_int_equal(lathe_grad_sum_begin(s, 2, 2, 0, 0), 0); /* weight 2, divided by 2: exact */
        assert_int_equal(lathe_grad_sum_sent(s), 0);
        run_step(g);
        assert_int_equal(lathe_grad_sum_sent(s), lathe_grad_sum_buckets(s)); /* all on their way before backward ended */
        assert_int_equal(lathe_grad_sum_finish(s), 0);
        at = want; /* a bucket copied before its last gradient was written would differ */
        for (size_t i = 0; i < lathe_graph_nparams(g); i++) {
            const lathe_param *p = lathe_graph_param(g, i);
            if (!p->grad) continue;
            assert_memory_equal(p->grad, at, p->count * sizeof *at);
            at += p->count;
        }
        /* a rank with no samples runs no backward: its buckets go at the end, all zeros */
        assert_int_equal(lathe_grad_sum_begin(s, 0, 4, 0, 1), 0);
        assert_int_equal(lathe_grad_sum_finish(s), 0);
        assert_int_equal(lathe_grad_sum_sent(s), lathe_grad_sum_buckets(s));
        for (size_t i = 0; i < lathe_graph_nparams(g); i++) {
            const lathe_param *p = lathe_graph_param(g, i);
            for (size_t j = 0; p->grad && j < p->count; j++) assert_true(p->grad[j] == 0);
        }
        lathe_grad_sum_free(s);
    }
    run_step(g); /* the hook went with the sums */
    free(want);
    lathe_graph_free(g);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(buckets_follow_backward),
                                       cmocka_unit_test(backward_sends_every_bucket_and_the_sum_is_the_gradient)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
