/* test_conv_dnnl.c - the oneDNN convolutions keep nn.h's contract: forward, and backward data,
 * weights and bias gradients equal the im2col + OpenBLAS kernels (to float rounding) on shapes
 * with stride, padding, dilation, groups, depthwise, 1x1 and odd sizes; gradients accumulate into
 * what the buffers held; NULL gradients are skipped. Run with Winograd for the 3x3 stride-1 cases
 * (the default) and again with LATHE_CONV=direct. The output handed over blocked equals the plain
 * output reordered. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>

#include <math.h>

#include "kernels/conv_dnnl.h"

typedef struct {
    int n, c, h, w, k, r, stride, pad, dilation, groups, bias;
} conv_case;

static const conv_case cases[] = {
    {2, 3, 17, 13, 8, 3, 1, 1, 1, 1, 1},  {3, 8, 16, 16, 16, 3, 2, 1, 1, 1, 0}, {2, 16, 9, 9, 16, 1, 1, 0, 1, 1, 1},
    {1, 8, 12, 10, 8, 3, 1, 2, 2, 1, 1},  {2, 8, 11, 11, 16, 3, 1, 1, 1, 4, 1}, {2, 12, 10, 10, 12, 3, 2, 1, 1, 12, 0},
    {2, 4, 15, 15, 6, 5, 2, 2, 1, 2, 1},  {4, 32, 8, 8, 32, 3, 1, 1, 1, 1, 1},
};

static float *values(size_t n, unsigned seed) {
    float *p = malloc((n + 1) * sizeof *p);
    for (size_t i = 0; i < n; i++) seed = seed * 1664525u + 1013904223u, p[i] = (float)(seed >> 8) / 16777216.0f - 0.5f;
    return p;
}

static void assert_close(const float *a, const float *b, size_t n, const char *what, int which) {
    double worst = 0, scale = 1e-6;
    for (size_t i = 0; i < n; i++) scale = fmax(scale, fabs(b[i]));
    for (size_t i = 0; i < n; i++) {
        if (isnan(a[i]) != isnan(b[i])) fail_msg("case %d %s: NaN at %zu", which, what, i); /* fmax skips NaN */
        worst = fmax(worst, fabs(a[i] - b[i]));
    }
    if (worst > 2e-5 * scale) fail_msg("case %d %s: max difference %g (scale %g)", which, what, worst, scale);
}

static void check_case(const conv_case *c, int which) {
    lathe_conv_shape s = {c->n, c->c, c->h, c->w, c->k, c->r, c->r, c->stride, c->pad, c->dilation, c->groups, 0, 0, 2};
    s.p = lathe_k_conv_out(c->h, c->r, c->stride, c->pad, c->dilation);
    s.q = lathe_k_conv_out(c->w, c->r, c->stride, c->pad, c->dilation);
    size_t nx = (size_t)c->n * c->c * c->h * c->w, nw = (size_t)c->k * (c->c / c->groups) * c->r * c->r;
    size_t ny = (size_t)c->n * c->k * s.p * s.q;
    float *x = values(nx, 1), *w = values(nw, 2), *b = c->bias ? values(c->k, 3) : NULL, *dy = values(ny, 4);
    float *ws = malloc(lathe_k_conv_workspace(&s) * sizeof *ws);
    float *y0 = malloc(ny * 4), *y1 = malloc(ny * 4);
    lathe_k_conv2d_fwd_f32(&s, x, w, b, y0, ws);
    if (lathe_k_conv2d_fwd_dnnl(&s, x, w, b, y1)) fail_msg("case %d: oneDNN refused the shape", which);
    assert_close(y1, y0, ny, "forward", which);
    /* gradients start from nonzero values: both paths must add to them */
    float *dx0 = values(nx, 5), *dx1 = values(nx, 5), *dw0 = values(nw, 6), *dw1 = values(nw, 6);
    float *db0 = values(c->k, 7), *db1 = values(c->k, 7);
    lathe_k_conv2d_bwd_f32(&s, x, w, dy, dx0, dw0, db0, ws);
    assert_int_equal(lathe_k_conv2d_bwd_dnnl(&s, x, w, dy, dx1, dw1, db1), 0);
    assert_close(dx1, dx0, nx, "dx", which);
    assert_close(dw1, dw0, nw, "dw", which);
    assert_close(db1, db0, c->k, "db", which);
    /* frozen weights and the graph's first layer: NULL gradients are left alone */
    float *dw_before = values(nw, 8), *dw2 = values(nw, 8);
    assert_int_equal(lathe_k_conv2d_bwd_dnnl(&s, x, w, dy, NULL, dw2, NULL), 0);
    lathe_k_conv2d_bwd_f32(&s, x, w, dy, NULL, dw_before, NULL, ws);
    assert_close(dw2, dw_before, nw, "dw alone", which);
    free(x), free(w), free(b), free(dy), free(ws), free(y0), free(y1), free(dx0), free(dx1), free(dw0), free(dw1);
    free(db0), free(db1), free(dw_before), free(dw2);
}

static void equals_im2col_kernels(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) check_case(&cases[i], (int)i);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) check_case(&cases[i], (int)i); /* cached primitives */
    lathe_k_conv_dnnl_release();
}

static void direct_equals_im2col_kernels(void **state) {
    setenv("LATHE_CONV", "direct", 1);
    equals_im2col_kernels(state);
    unsetenv("LATHE_CONV");
    lathe_k_conv_dnnl_release();
}

static void repeats_exactly(void **state) {
    (void)state;
    const conv_case *c = &cases[7];
    lathe_conv_shape s = {c->n, c->c, c->h, c->w, c->k, c->r, c->r, c->stride, c->pad, c->dilation, c->groups, 8, 8, 2};
    size_t nx = (size_t)c->n * c->c * 64, nw = (size_t)c->k * c->c * 9, ny = (size_t)c->n * c->k * 64;
    float *x = values(nx, 1), *w = values(nw, 2), *dy = values(ny, 3);
    float *dw[2] = {calloc(nw, 4), calloc(nw, 4)};
    for (int run = 0; run < 2; run++) assert_int_equal(lathe_k_conv2d_bwd_dnnl(&s, x, w, dy, NULL, dw[run], NULL), 0);
    assert_memory_equal(dw[0], dw[1], nw * sizeof(float));
    free(x), free(w), free(dy), free(dw[0]), free(dw[1]);
    lathe_k_conv_dnnl_release();
}

/* (N, K, P, Q) -> (N, K / blk, P Q, blk) */
static void block(const float *y, int n, int k, int pq, int blk, float *yb) {
    for (int i = 0; i < n; i++)
        for (int ch = 0; ch < k; ch++)
            for (int j = 0; j < pq; j++)
                yb[(((size_t)i * (k / blk) + ch / blk) * pq + j) * blk + ch % blk] = y[((size_t)i * k + ch) * pq + j];
}

/* The handover to a batch norm in oneDNN's blocked layout: where the three primitives agree on a
 * channel block, the forward pass writing y blocked (and returning the block) and the backward pass
 * reading dy blocked give the plain calls' results bit for bit (only the reorders are left out); a
 * shape whose channels no block divides has none: the blocked forward returns 0 and writes nothing. */
static void blocked_output_equals_plain(void **state) {
    (void)state;
    int blocked = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const conv_case *c = &cases[i];
        lathe_conv_shape s = {c->n, c->c, c->h, c->w, c->k, c->r, c->r, c->stride, c->pad, c->dilation, c->groups, 0, 0, 2};
        s.p = lathe_k_conv_out(c->h, c->r, c->stride, c->pad, c->dilation);
        s.q = lathe_k_conv_out(c->w, c->r, c->stride, c->pad, c->dilation);
        float *x = values((size_t)c->n * c->c * c->h * c->w, 1), *w = values((size_t)c->k * (c->c / c->groups) * c->r * c->r, 2);
        float *b = c->bias ? values(c->k, 3) : NULL;
        size_t ny = (size_t)c->n * c->k * s.p * s.q, nx = (size_t)c->n * c->c * c->h * c->w;
        size_t nw = (size_t)c->k * (c->c / c->groups) * c->r * c->r;
        float *y = malloc(ny * 4), *yb = malloc(ny * 4), *ybo = malloc(ny * 4), *dy = values(ny, 4), *dyb = malloc(ny * 4);
        for (size_t k = 0; k < ny; k++) ybo[k] = NAN;
        int blk = lathe_k_conv2d_fwd_dnnl_yblocked(&s, x, w, b, ybo);
        assert_true(blk == 0 || blk == 8 || blk == 16);
        if (c->k % 8) assert_int_equal(blk, 0);
        if (!blk) /* nothing written */
            for (size_t k = 0; k < ny; k++) assert_true(isnan(ybo[k]));
        if (blk) {
            blocked++;
            assert_int_equal(c->k % blk, 0);
            assert_int_equal(lathe_k_conv2d_fwd_dnnl(&s, x, w, b, y), 0);
            block(y, c->n, c->k, s.p * s.q, blk, yb);
            assert_memory_equal(yb, ybo, ny * 4);
            block(dy, c->n, c->k, s.p * s.q, blk, dyb);
            float *dx0 = values(nx, 5), *dx1 = values(nx, 5), *dw0 = values(nw, 6), *dw1 = values(nw, 6);
            float *db0 = values(c->k, 7), *db1 = values(c->k, 7);
            assert_int_equal(lathe_k_conv2d_bwd_dnnl(&s, x, w, dy, dx0, dw0, b ? db0 : NULL), 0);
            assert_int_equal(lathe_k_conv2d_bwd_dnnl_yblocked(&s, x, w, dyb, dx1, dw1, b ? db1 : NULL), 0);
            assert_memory_equal(dx0, dx1, nx * 4);
            assert_memory_equal(dw0, dw1, nw * 4);
            assert_memory_equal(db0, db1, (size_t)c->k * 4);
            free(dx0), free(dx1), free(dw0), free(dw1), free(db0), free(db1);
        }
        free(x), free(w), free(b), free(y), free(yb), free(ybo), free(dy), free(dyb);
    }
    if (!blocked) fail_msg("oneDNN blocked the output of none of the shapes (a CPU without AVX2?)");
    lathe_k_conv_dnnl_release();
}

int main(void) {
#ifdef LATHE_NO_DNNL
    puts("SKIP conv_dnnl: this build has no oneDNN (DNNL=0)");
    return 0;
#endif
    unsetenv("LATHE_CONV");
    const struct CMUnitTest tests[] = {cmocka_unit_test(equals_im2col_kernels),
                                       cmocka_unit_test(direct_equals_im2col_kernels),
                                       cmocka_unit_test(repeats_exactly),
                                       cmocka_unit_test(blocked_output_equals_plain)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
