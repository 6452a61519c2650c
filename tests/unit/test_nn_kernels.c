/* test_nn_kernels.c - every backward kernel (attention included) of kernels/nn.h against central finite differences of
 * its forward kernel, in double precision (the _f64 build of the same source): for a random input
 * and a random upstream gradient r, d(sum(r * f(x)))/dx must equal the backward result. Also checks
 * that the float build agrees with the double one. */
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/nn.h"
#include <omp.h>

static uint64_t rng_state = 12345;
static double uniform(void) { /* xorshift64*, in [-1, 1) */
    rng_state ^= rng_state >> 12, rng_state ^= rng_state << 25, rng_state ^= rng_state >> 27;
    return (double)((rng_state * 2685821657736338717ull) >> 11) / 9007199254740992.0 * 2 - 1;
}
static double *randv(size_t n) {
    double *v = malloc(n * sizeof *v);
    for (size_t i = 0; i < n; i++) v[i] = uniform();
    return v;
}

/* A forward pass as a closure: writes f(params) into y. */
typedef void (*fwd_fn)(void *ctx, double *y);

/* Checks the analytic gradient g of sum(r * f) w.r.t. the n values at p (perturbed in place) against
 * central differences: |numeric - g| / max(1, |numeric|) <= 1e-6, i.e. 1e-6 absolute for gradients
 * below 1 in size, 1e-6 relative above. */
static void check_grad(const char *what, fwd_fn f, void *ctx, double *p, size_t n, const double *g, const double *r,
                       size_t ny) {
    double *y = malloc(ny * sizeof *y);
    const double eps = 1e-6;
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double keep = p[i], lp = 0, lm = 0;
        p[i] = keep + eps;
        f(ctx, y);
        for (size_t k = 0; k < ny; k++) lp += r[k] * y[k];
        p[i] = keep - eps;
        f(ctx, y);
        for (size_t k = 0; k < ny; k++) lm += r[k] * y[k];
        p[i] = keep;
        double num = (lp - lm) / (2 * eps);
        double err = fabs(num - g[i]) / fmax(1.0, fabs(num));
        if (err > worst) worst = err;
    }
    if (worst > 1e-6) fail_msg("%s: worst gradient error %.3g (absolute below 1, relative above)", what, worst);
    free(y);
}

/* ---- convolution ---- */
typedef struct {
    lathe_conv_shape s;
    double *x, *w, *b, *ws;
} conv_ctx;
static void conv_f(void *c, double *y) {
    conv_ctx *k = c;
    lathe_k_conv2d_fwd_f64(&k->s, k->x, k->w, k->b, y, k->ws);
}

static void conv_case(int n, int c, int h, int w, int k, int r, int stride, int pad, int dil, int groups) {
    conv_ctx x = {{n, c, h, w, k, r, r, stride, pad, dil, groups, 0, 0, 2}, 0, 0, 0, 0};
    x.s.p = lathe_k_conv_out(h, r, stride, pad, dil), x.s.q = lathe_k_conv_out(w, r, stride, pad, dil);
    size_t nx = (size_t)n * c * h * w, nw = (size_t)k * (c / groups) * r * r, ny = (size_t)n * k * x.s.p * x.s.q;
    x.x = randv(nx), x.w = randv(nw), x.b = randv(k), x.ws = malloc(lathe_k_conv_workspace(&x.s) * sizeof(double));
    double *rr = randv(ny), *dx = calloc(nx, sizeof(double)), *dw = calloc(nw, sizeof(double)), *db = calloc(k, sizeof(double));
    lathe_k_conv2d_bwd_f64(&x.s, x.x, x.w, rr, dx, dw, db, x.ws);
    check_grad("conv dx", conv_f, &x, x.x, nx, dx, rr, ny);
    check_grad("conv dw", conv_f, &x, x.w, nw, dw, rr, ny);
    check_grad("conv db", conv_f, &x, x.b, k, db, rr, ny);
    /* the float build agrees with the double one */
    float *xf = malloc(nx * 4), *wf = malloc(nw * 4), *bf = malloc(k * 4), *yf = malloc(ny * 4);
    float *wsf = malloc(lathe_k_conv_workspace(&x.s) * 4);
    double *yd = malloc(ny * 8);
    for (size_t i = 0; i < nx; i++) xf[i] = (float)x.x[i];
    for (size_t i = 0; i < nw; i++) wf[i] = (float)x.w[i];
    for (int i = 0; i < k; i++) bf[i] = (float)x.b[i];
    lathe_k_conv2d_fwd_f32(&x.s, xf, wf, bf, yf, wsf);
    conv_f(&x, yd);
    for (size_t i = 0; i < ny; i++) assert_true(fabs(yf[i] - yd[i]) < 1e-4);
    free(xf), free(wf), free(bf), free(yf), free(wsf), free(yd);
    free(x.x), free(x.w), free(x.b), free(x.ws), free(rr), free(dx), free(dw), free(db);
}

static void conv_gradients(void **state) {
    (void)state;
    conv_case(2, 3, 7, 6, 4, 3, 1, 1, 1, 1);   /* plain 3x3 */
    conv_case(2, 4, 9, 8, 6, 3, 2, 1, 1, 2);   /* stride 2, groups 2 */
    conv_case(1, 2, 9, 9, 3, 3, 1, 2, 2, 1);   /* dilation 2 */
    conv_case(2, 4, 5, 5, 4, 3, 1, 1, 1, 4);   /* depthwise */
    conv_case(1, 3, 4, 4, 5, 1, 1, 0, 1, 1);   /* 1x1 */
}

/* ---- linear ---- */
typedef struct {
    int m, d, k;
    double *x, *w, *b;
} lin_ctx;
static void lin_f(void *c, double *y) {
    lin_ctx *l = c;
    lathe_k_linear_fwd_f64(l->m, l->d, l->k, l->x, l->w, l->b, y);
}
static void linear_gradients(void **state) {
    (void)state;
    lin_ctx l = {3, 5, 4, randv(15), randv(20), randv(4)};
    double *r = randv(12), *dx = calloc(15, 8), *dw = calloc(20, 8), *db = calloc(4, 8);
    lathe_k_linear_bwd_f64(3, 5, 4, l.x, l.w, r, dx, dw, db);
    check_grad("linear dx", lin_f, &l, l.x, 15, dx, r, 12);
    check_grad("linear dw", lin_f, &l, l.w, 20, dw, r, 12);
    check_grad("linear db", lin_f, &l, l.b, 4, db, r, 12);
    free(l.x), free(l.w), free(l.b), free(r), free(dx), free(dw), free(db);
}

/* ---- batch norm (train and eval) ---- */
typedef struct {
    int n, c, hw, train;
    double *x, *g, *b, *rm, *rv, *sm, *si;
} bn_ctx;
static void bn_f(void *ctx, double *y) {
    bn_ctx *b = ctx;
    double rm[8], rv[8];
    memcpy(rm, b->rm, sizeof(double) * b->c), memcpy(rv, b->rv, sizeof(double) * b->c);
    lathe_k_bn_fwd_f64(b->n, b->c, b->hw, b->x, b->g, b->b, rm, rv, 0.1, 1e-5, b->train, b->sm, b->si, y);
}
static void bn_gradients(void **state) {
    (void)state;
    for (int train = 0; train <= 1; train++) {
        bn_ctx b = {3, 4, 5, train, randv(60), randv(4), randv(4), randv(4), randv(4), malloc(32), malloc(32)};
        for (int i = 0; i < 4; i++) b.rv[i] = 1 + fabs(b.rv[i]);
        double *r = randv(60), *y = malloc(60 * 8), *dx = calloc(60, 8), *dg = calloc(4, 8), *db = calloc(4, 8);
        bn_f(&b, y);
        lathe_k_bn_bwd_f64(3, 4, 5, train, b.x, b.g, b.sm, b.si, r, dx, dg, db);
        check_grad(train ? "bn dx (train)" : "bn dx (eval)", bn_f, &b, b.x, 60, dx, r, 60);
        check_grad("bn dgamma", bn_f, &b, b.g, 4, dg, r, 60);
        check_grad("bn dbeta", bn_f, &b, b.b, 4, db, r, 60);
        free(b.x), free(b.g), free(b.b), free(b.rm), free(b.rv), free(b.sm), free(b.si), free(r), free(y), free(dx),
            free(dg), free(db);
    }
}

/* ---- layer norm ---- */
typedef struct {
    double *x, *g, *b, mean[4], inv[4];
} ln_ctx;
static void ln_f(void *ctx, double *y) {
    ln_ctx *l = ctx;
    lathe_k_layernorm_fwd_f64(4, 6, l->x, l->g, l->b, 1e-5, l->mean, l->inv, y);
}
static void layernorm_gradients(void **state) {
    (void)state;
    ln_ctx l = {randv(24), randv(6), randv(6), {0}, {0}};
    double *r = randv(24), *y = malloc(24 * 8), *dx = calloc(24, 8), *dg = calloc(6, 8), *db = calloc(6, 8);
    ln_f(&l, y);
    lathe_k_layernorm_bwd_f64(4, 6, l.x, l.g, l.mean, l.inv, r, dx, dg, db);
    check_grad("layernorm dx", ln_f, &l, l.x, 24, dx, r, 24);
    check_grad("layernorm dgamma", ln_f, &l, l.g, 6, dg, r, 24);
    check_grad("layernorm dbeta", ln_f, &l, l.b, 6, db, r, 24);
    free(l.x), free(l.g), free(l.b), free(r), free(y), free(dx), free(dg), free(db);
}

/* ---- activations ---- */
typedef struct {
    int act;
    double *x;
} act_ctx;
static void act_f(void *ctx, double *y) {
    act_ctx *a = ctx;
    lathe_k_act_fwd_f64(a->act, 40, a->x, 0.1, y);
}
static void activation_gradients(void **state) {
    (void)state;
    static const char *const names[] = {"relu", "leaky", "silu", "gelu", "sigmoid"};
    for (int act = 0; act <= LATHE_ACT_SIGMOID; act++) {
        act_ctx a = {act, randv(40)};
        for (int i = 0; i < 40; i++)
            if (fabs(a.x[i]) < 1e-3) a.x[i] = 0.5; /* ReLU kinks: keep away from 0 */
        double *r = randv(40), *dx = calloc(40, 8);
        lathe_k_act_bwd_f64(act, 40, a.x, 0.1, r, dx);
        check_grad(names[act], act_f, &a, a.x, 40, dx, r, 40);
        free(a.x), free(r), free(dx);
    }
}

/* The float32 activations (their exp is a vectorized polynomial of their own, not libm's): every
 * element's derivative against a central difference of the float32 forward itself. The ops are
 * elementwise, so one perturbed forward gives every element's difference at once. n is odd so the
 * vector loops' tails run too; x spans the ranges where exp saturates. */
static void activation_gradients_f32(void **state) {
    (void)state;
    static const char *const names[] = {"relu", "leaky", "silu", "gelu", "sigmoid"};
    enum { N = 1003 };
    const float h = 1e-2f;
    float *x = malloc(N * sizeof *x), *xp = malloc(N * sizeof *xp), *xm = malloc(N * sizeof *xm);
    float *yp = malloc(N * sizeof *yp), *ym = malloc(N * sizeof *ym), *dy = malloc(N * sizeof *dy), *dx = malloc(N * sizeof *dx);
    assert_non_null(x && xp && xm && yp && ym && dy && dx);
    for (int i = 0; i < N; i++) {
        x[i] = -12.0f + 24.0f * (float)i / (N - 1);
        if (fabsf(x[i]) < 4 * h) x[i] = 0.25f; /* ReLU kinks: away from 0 by more than h */
        xp[i] = x[i] + h, xm[i] = x[i] - h, dy[i] = 1.0f;
    }
    for (int act = 0; act <= LATHE_ACT_SIGMOID; act++) {
        lathe_k_act_fwd_f32(act, N, xp, 0.1f, yp);
        lathe_k_act_fwd_f32(act, N, xm, 0.1f, ym);
        memset(dx, 0, N * sizeof *dx); /* the backward accumulates into dx */
        lathe_k_act_bwd_f32(act, N, x, 0.1f, dy, dx);
        double worst = 0;
        for (int i = 0; i < N; i++) {
            double fd = ((double)yp[i] - (double)ym[i]) / (2.0 * h), err = fabs(dx[i] - fd) / fmax(1.0, fabs(fd));
            if (err > worst) worst = err;
        }
        if (worst > 2e-3) fail_msg("%s float32 backward: worst error %g against the central difference", names[act], worst);
        /* and the float32 forward against the double one (libm's exp and erf): within float rounding */
        double xd[N], yd[N];
        for (int i = 0; i < N; i++) xd[i] = x[i];
        lathe_k_act_fwd_f32(act, N, x, 0.1f, yp);
        lathe_k_act_fwd_f64(act, N, xd, 0.1, yd);
        for (int i = 0; i < N; i++)
            if (fabs(yp[i] - yd[i]) > 2e-6 + 1e-6 * fabs(yd[i]))
                fail_msg("%s float32 forward at %g: %.9g, double %.9g", names[act], x[i], yp[i], yd[i]);
    }
    free(x), free(xp), free(xm), free(yp), free(ym), free(dy), free(dx);
}

/* ---- batch norm and activation fused (lathe_k_bn_act_*) ---- */
typedef struct {
    int act, train;
    double *x, *g, *b, *rm, *rv, sm[4], si[4];
} bn_act_ctx;
static void bn_act_f(void *ctx, double *y) {
    bn_act_ctx *b = ctx;
    double rm[4], rv[4];
    memcpy(rm, b->rm, sizeof rm), memcpy(rv, b->rv, sizeof rv);
    lathe_k_bn_act_fwd_f64(3, 4, 5, b->x, b->g, b->b, rm, rv, 0.1, 1e-5, b->train, b->act, 0.1, b->sm, b->si, y);
}

/* The fused kernels against finite differences (double), and in float against the two kernels
 * they replace, run one after the other: rows longer than the fused kernels' chunk and with a
 * ragged tail, every activation, training and running statistics, gradients accumulated onto what
 * dx held or written over it (assign), a frozen gamma and beta, and no dx (the graph's input). The
 * fusion changes no bits. */
static void bn_act_fused(void **state) {
    (void)state;
    static const char *const names[] = {"relu", "leaky", "silu", "gelu", "sigmoid"};
    for (int act = 0; act <= LATHE_ACT_SIGMOID; act++)
        for (int train = 0; train <= 1; train++) {
            bn_act_ctx b = {act, train, randv(60), randv(4), randv(4), randv(4), randv(4), {0}, {0}};
            for (int i = 0; i < 4; i++) b.rv[i] = 1 + fabs(b.rv[i]);
            double *r = randv(60), *y = malloc(60 * 8), *dx = calloc(60, 8), *dg = calloc(4, 8), *db = calloc(4, 8);
            bn_act_f(&b, y);
            lathe_k_bn_act_bwd_f64(3, 4, 5, train, act, 0.1, b.x, b.g, b.b, b.sm, b.si, r, dx, 0, dg, db);
            char what[64];
            snprintf(what, sizeof what, "bn+%s dx (%s)", names[act], train ? "train" : "eval");
            check_grad(what, bn_act_f, &b, b.x, 60, dx, r, 60);
            check_grad("bn+act dgamma", bn_act_f, &b, b.g, 4, dg, r, 60);
            check_grad("bn+act dbeta", bn_act_f, &b, b.b, 4, db, r, 60);
            free(b.x), free(b.g), free(b.b), free(b.rm), free(b.rv), free(r), free(y), free(dx), free(dg), free(db);
        }
    enum { N = 3, C = 5 };
    const int sizes[] = {7, 1100, 512};
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
        int hw = sizes[si];
        size_t m = (size_t)N * C * hw;
        float *x = malloc(m * 4), *dy = malloc(m * 4), *z = malloc(m * 4), *y1 = malloc(m * 4), *y2 = malloc(m * 4);
        float *dz = malloc(m * 4), *dx1 = malloc(m * 4), *dx2 = malloc(m * 4);
        assert_non_null(x && dy && z && y1 && y2 && dz && dx1 && dx2);
        for (size_t i = 0; i < m; i++) x[i] = (float)(3 * uniform() + 0.5), dy[i] = (float)uniform();
        float gamma[C], beta[C], rm1[C], rv1[C], rm2[C], rv2[C], sm1[C], si1[C], sm2[C], si2[C];
        float dg1[C] = {0}, db1[C] = {0}, dg2[C] = {0}, db2[C] = {0};
        for (int c = 0; c < C; c++)
            gamma[c] = (float)(1 + 0.5 * uniform()), beta[c] = (float)uniform(), rm1[c] = rm2[c] = (float)uniform(),
            rv1[c] = rv2[c] = (float)(1.5 + uniform());
        for (int act = 0; act <= LATHE_ACT_SIGMOID; act++)
            for (int train = 0; train <= 1; train++) {
                lathe_k_bn_fwd_f32(N, C, hw, x, gamma, beta, rm1, rv1, 0.1f, 1e-3f, train, sm1, si1, z);
                lathe_k_act_fwd_f32(act, m, z, 0.1f, y1);
                lathe_k_bn_act_fwd_f32(N, C, hw, x, gamma, beta, rm2, rv2, 0.1f, 1e-3f, train, act, 0.1f, sm2, si2, y2);
                assert_memory_equal(y1, y2, m * 4);
                assert_memory_equal(rm1, rm2, sizeof rm1), assert_memory_equal(rv1, rv2, sizeof rv1);
                assert_memory_equal(sm1, sm2, sizeof sm1), assert_memory_equal(si1, si2, sizeof si1);
                for (size_t i = 0; i < m; i++) dx1[i] = dx2[i] = (float)i * 1e-4f, dz[i] = 0;
                lathe_k_act_bwd_f32(act, m, z, 0.1f, dy, dz);
                lathe_k_bn_bwd_f32(N, C, hw, train, x, gamma, sm1, si1, dz, dx1, dg1, db1);
                lathe_k_bn_act_bwd_f32(N, C, hw, train, act, 0.1f, x, gamma, beta, sm2, si2, dy, dx2, 0, dg2, db2);
                if (memcmp(dx1, dx2, m * 4) || memcmp(dg1, dg2, sizeof dg1) || memcmp(db1, db2, sizeof db1))
                    fail_msg("bn+%s backward (%s, hw %d) differs from the two kernels'", names[act],
                             train ? "train" : "eval", hw);
                /* assign: dx overwritten whatever it held, as the two kernels give from zeros */
                for (size_t i = 0; i < m; i++) dx1[i] = 0, dx2[i] = NAN;
                lathe_k_bn_bwd_f32(N, C, hw, train, x, gamma, sm1, si1, dz, dx1, NULL, NULL);
                lathe_k_bn_act_bwd_f32(N, C, hw, train, act, 0.1f, x, gamma, beta, sm2, si2, dy, dx2, 1, NULL, NULL);
                if (memcmp(dx1, dx2, m * 4))
                    fail_msg("bn+%s backward (%s, hw %d, assign) differs from the two kernels'", names[act],
                             train ? "train" : "eval", hw);
                lathe_k_bn_act_bwd_f32(N, C, hw, train, act, 0.1f, x, gamma, beta, sm2, si2, dy, NULL, 1, NULL, NULL);
                lathe_k_bn_act_bwd_f32(N, C, hw, train, act, 0.1f, x, gamma, beta, sm2, si2, dy, NULL, 0, dg2, db2);
                lathe_k_bn_bwd_f32(N, C, hw, train, x, gamma, sm1, si1, dz, NULL, dg1, db1);
                assert_memory_equal(dg1, dg2, sizeof dg1), assert_memory_equal(db1, db2, sizeof db1);
            }
        free(x), free(dy), free(z), free(y1), free(y2), free(dz), free(dx1), free(dx2);
    }
}

/* ---- the same with the conv's side in oneDNN's channel-blocked layout (lathe_k_bn_act_*_blocked) ---- */

/* NCHW -> (N, C / blk, HW, blk) and back */
static void to_blocked(const float *x, int n, int c, int hw, int blk, float *xb, int back) {
    for (int i = 0; i < n; i++)
        for (int ch = 0; ch < c; ch++)
            for (int j = 0; j < hw; j++) {
                size_t plain = ((size_t)i * c + ch) * hw + j;
                size_t blocked = (((size_t)i * (c / blk) + ch / blk) * hw + j) * blk + ch % blk;
                if (back) xb[plain] = x[blocked];
                else xb[blocked] = x[plain];
            }
}

static int close_to(const float *a, const float *b, size_t m, double tol) {
    for (size_t i = 0; i < m; i++)
        if (!(fabs((double)a[i] - b[i]) <= tol * fmax(1.0, fabs((double)a[i])))) return 0;
    return 1;
}

typedef struct {
    int act, train, blk;
    double *x, *g, *b, *rm, *rv, sm[16], si[16], scratch[LATHE_K_BN_BLOCKED_SCRATCH(16)];
} bn_blk_ctx;
static void bn_blk_f(void *ctx, double *y) {
    bn_blk_ctx *b = ctx;
    double rm[16], rv[16];
    memcpy(rm, b->rm, sizeof rm), memcpy(rv, b->rv, sizeof rv);
    lathe_k_bn_act_fwd_blocked_f64(3, 16, 5, b->blk, b->x, b->g, b->b, rm, rv, 0.1, 1e-5, b->train, b->act, 0.1, b->sm,
                                   b->si, y, b->scratch);
}

/* The blocked kernels: their backward against finite differences of their forward (double, x
 * blocked, y plain), and in float against the plain kernels to rounding (1e-5 relative), for blocks
 * of 8 and 16, several blocks, fewer samples than the sums' sample ranges and more, rows longer than
 * a chunk with a ragged tail, every activation, training and running statistics; the same bits for
 * one thread and two. */
static void bn_act_blocked_layout(void **state) {
    (void)state;
    for (int blk = 8; blk <= 16; blk += 8)
        for (int train = 0; train <= 1; train++) {
            bn_blk_ctx b = {LATHE_ACT_SILU, train, blk, randv(240), randv(16), randv(16), randv(16), randv(16), {0}, {0}, {0}};
            for (int i = 0; i < 16; i++) b.rv[i] = 1 + fabs(b.rv[i]);
            double *r = randv(240), *y = malloc(240 * 8), *dx = malloc(240 * 8), *dg = calloc(16, 8), *db = calloc(16, 8);
            bn_blk_f(&b, y);
            lathe_k_bn_act_bwd_blocked_f64(3, 16, 5, blk, train, b.act, 0.1, b.x, b.g, b.b, b.sm, b.si, r, dx, dg, db,
                                           b.scratch);
            check_grad(train ? "blocked bn+silu dx (train)" : "blocked bn+silu dx (eval)", bn_blk_f, &b, b.x, 240, dx, r, 240);
            check_grad("blocked bn+silu dgamma", bn_blk_f, &b, b.g, 16, dg, r, 240);
            check_grad("blocked bn+silu dbeta", bn_blk_f, &b, b.b, 16, db, r, 240);
            free(b.x), free(b.g), free(b.b), free(b.rm), free(b.rv), free(r), free(y), free(dx), free(dg), free(db);
        }
    static const char *const names[] = {"relu", "leaky", "silu", "gelu", "sigmoid"};
    const int shapes[][4] = {{3, 16, 7, 8}, {9, 32, 1100, 16}, {2, 16, 512, 16}, {11, 24, 64, 8}}; /* n, c, hw, blk */
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        int n = shapes[si][0], c = shapes[si][1], hw = shapes[si][2], blk = shapes[si][3];
        size_t m = (size_t)n * c * hw;
        float *x = malloc(m * 4), *xb = malloc(m * 4), *dy = malloc(m * 4), *y1 = malloc(m * 4), *y2 = malloc(m * 4);
        float *dx1 = malloc(m * 4), *dx2 = malloc(m * 4), *dx2p = malloc(m * 4), *y3 = malloc(m * 4), *dx3 = malloc(m * 4);
        double *scratch = malloc(LATHE_K_BN_BLOCKED_SCRATCH(c) * sizeof *scratch);
        float *gamma = malloc(c * 4), *beta = malloc(c * 4), *rm1 = malloc(c * 4), *rv1 = malloc(c * 4);
        float *rm2 = malloc(c * 4), *rv2 = malloc(c * 4), *sm1 = malloc(c * 4), *si1 = malloc(c * 4);
        float *sm2 = malloc(c * 4), *si2 = malloc(c * 4), *dg1 = calloc(c, 4), *db1 = calloc(c, 4), *dg2 = calloc(c, 4),
              *db2 = calloc(c, 4);
        assert_non_null(x && xb && dy && y1 && y2 && dx1 && dx2 && dx2p && y3 && dx3 && scratch && dg1 && db1 && dg2 && db2);
        for (size_t i = 0; i < m; i++) x[i] = (float)(3 * uniform() + 0.5), dy[i] = (float)uniform();
        to_blocked(x, n, c, hw, blk, xb, 0);
        for (int k = 0; k < c; k++)
            gamma[k] = (float)(1 + 0.5 * uniform()), beta[k] = (float)uniform(), rm1[k] = rm2[k] = (float)uniform(),
            rv1[k] = rv2[k] = (float)(1.5 + uniform());
        for (int act = 0; act <= LATHE_ACT_SIGMOID; act++)
            for (int train = 0; train <= 1; train++) {
                float rm0[32], rv0[32]; /* the running statistics before the blocked kernel's update */
                memcpy(rm0, rm2, c * 4), memcpy(rv0, rv2, c * 4);
                lathe_k_bn_act_fwd_f32(n, c, hw, x, gamma, beta, rm1, rv1, 0.1f, 1e-3f, train, act, 0.1f, sm1, si1, y1);
                lathe_k_bn_act_fwd_blocked_f32(n, c, hw, blk, xb, gamma, beta, rm2, rv2, 0.1f, 1e-3f, train, act, 0.1f, sm2,
                                               si2, y2, scratch);
                if (!close_to(y1, y2, m, 1e-5) || !close_to(rm1, rm2, c, 1e-6) || !close_to(rv1, rv2, c, 1e-6) ||
                    !close_to(sm1, sm2, c, 1e-6) || !close_to(si1, si2, c, 1e-6))
                    fail_msg("blocked bn+%s forward (%s, n %d, c %d, hw %d, blk %d) differs from the plain kernel's", names[act],
                             train ? "train" : "eval", n, c, hw, blk);
                lathe_k_bn_act_bwd_f32(n, c, hw, train, act, 0.1f, x, gamma, beta, sm1, si1, dy, dx1, 1, dg1, db1);
                for (size_t i = 0; i < m; i++) dx2[i] = NAN; /* written over, whatever it held */
                lathe_k_bn_act_bwd_blocked_f32(n, c, hw, blk, train, act, 0.1f, xb, gamma, beta, sm2, si2, dy, dx2, dg2, db2,
                                               scratch);
                to_blocked(dx2, n, c, hw, blk, dx2p, 1);
                if (!close_to(dx1, dx2p, m, 1e-5) || !close_to(dg1, dg2, c, 1e-5) || !close_to(db1, db2, c, 1e-5))
                    fail_msg("blocked bn+%s backward (%s, n %d, c %d, hw %d, blk %d) differs from the plain kernel's", names[act],
                             train ? "train" : "eval", n, c, hw, blk);
                /* one thread: the same bits (the sums run per fixed sample range) */
                int threads = omp_get_max_threads();
                omp_set_num_threads(1);
                memcpy(rm1, rm0, c * 4), memcpy(rv1, rv0, c * 4);
                lathe_k_bn_act_fwd_blocked_f32(n, c, hw, blk, xb, gamma, beta, rm1, rv1, 0.1f, 1e-3f, train, act, 0.1f, sm1,
                                               si1, y3, scratch);
                lathe_k_bn_act_bwd_blocked_f32(n, c, hw, blk, train, act, 0.1f, xb, gamma, beta, sm2, si2, dy, dx3, NULL,
                                               NULL, scratch);
                omp_set_num_threads(threads);
                assert_memory_equal(y2, y3, m * 4);
                assert_memory_equal(rm1, rm2, c * 4), assert_memory_equal(rv1, rv2, c * 4);
                assert_memory_equal(sm1, sm2, c * 4), assert_memory_equal(si1, si2, c * 4);
                assert_memory_equal(dx2, dx3, m * 4);
            }
        free(x), free(xb), free(dy), free(y1), free(y2), free(dx1), free(dx2), free(dx2p), free(y3), free(dx3), free(scratch);
        free(gamma), free(beta), free(rm1), free(rv1), free(rm2), free(rv2), free(sm1), free(si1), free(sm2), free(si2);
        free(dg1), free(db1), free(dg2), free(db2);
    }
}

/* ---- pooling and upsampling ---- */
typedef struct {
    int kind; /* 0 max, 1 avg, 2 upsample */
    double *x;
    int32_t arg[64];
} pool_ctx;
static void pool_f(void *ctx, double *y) {
    pool_ctx *p = ctx;
    if (p->kind == 0) lathe_k_maxpool_fwd_f64(2, 2, 5, 5, 3, 2, 1, 3, 3, p->x, y, p->arg);
    else if (p->kind == 1) lathe_k_avgpool_fwd_f64(2, 2, 5, 5, 3, 2, 1, 3, 3, p->x, y);
    else lathe_k_upsample_fwd_f64(2, 2, 5, 5, 2, p->x, y);
}
static void pooling_gradients(void **state) {
    (void)state;
    for (int kind = 0; kind < 3; kind++) {
        pool_ctx p = {kind, randv(100), {0}};
        size_t ny = kind == 2 ? 400 : 36;
        double *r = randv(ny), *y = malloc(ny * 8), *dx = calloc(100, 8);
        pool_f(&p, y);
        if (kind == 0) lathe_k_maxpool_bwd_f64(2, 2, 5, 5, 3, 3, p.arg, r, dx);
        else if (kind == 1) lathe_k_avgpool_bwd_f64(2, 2, 5, 5, 3, 2, 1, 3, 3, r, dx);
        else lathe_k_upsample_bwd_f64(2, 2, 5, 5, 2, r, dx);
        check_grad(kind == 0 ? "maxpool" : kind == 1 ? "avgpool" : "upsample", pool_f, &p, p.x, 100, dx, r, ny);
        free(p.x), free(r), free(y), free(dx);
    }
}

/* ---- losses ---- */
typedef struct {
    double *z;
    int32_t labels[5];
    double *t;
} loss_ctx;
static void ce_f(void *ctx, double *y) {
    loss_ctx *l = ctx;
    y[0] = lathe_k_softmax_ce_f64(5, 4, l->z, l->labels, 0.1, NULL);
}
static void bce_f(void *ctx, double *y) {
    loss_ctx *l = ctx;
    y[0] = lathe_k_bce_logits_f64(20, l->z, l->t, NULL);
}
static void loss_gradients(void **state) {
    (void)state;
    loss_ctx l = {randv(20), {0, 3, -1, 2, 1}, randv(20)};
    for (int i = 0; i < 20; i++) l.t[i] = (l.t[i] + 1) / 2;
    double one = 1, dz[20];
    double loss = lathe_k_softmax_ce_f64(5, 4, l.z, l.labels, 0.1, dz);
    assert_true(loss > 0);
    check_grad("softmax ce", ce_f, &l, l.z, 20, dz, &one, 1);
    for (int j = 0; j < 4; j++) assert_true(dz[2 * 4 + j] == 0); /* the ignored row */
    lathe_k_bce_logits_f64(20, l.z, l.t, dz);
    check_grad("bce", bce_f, &l, l.z, 20, dz, &one, 1);
    /* a perfect prediction without smoothing costs ~0 */
    double zz[4] = {50, 0, 0, 0};
    int32_t lab[1] = {0};
    assert_true(lathe_k_softmax_ce_f64(1, 4, zz, lab, 0, NULL) < 1e-12);
    free(l.z), free(l.t);
}

/* ---- a contrastive head's scaled L2 normalization ---- */
typedef struct {
    double *x, log_scale, max_scale, norm[4];
} l2_ctx;
static void l2_f(void *ctx, double *y) {
    l2_ctx *a = ctx;
    lathe_k_l2norm_fwd_f64(4, 5, a->x, &a->log_scale, a->max_scale, a->norm, y);
}
static void l2norm_gradients(void **state) {
    (void)state;
    for (int clamped = 0; clamped < 2; clamped++) {
        l2_ctx a = {randv(20), 0.7, clamped ? 1.5 : 100, {0}};
        double *r = randv(20), y[20], dx[20] = {0}, ds = 0;
        l2_f(&a, y);
        for (int i = 0; i < 4; i++) { /* rows of length e^s (clamped: max_scale) */
            double n = 0;
            for (int j = 0; j < 5; j++) n += y[i * 5 + j] * y[i * 5 + j];
            assert_true(fabs(sqrt(n) - (clamped ? 1.5 : exp(0.7))) < 1e-12);
        }
        lathe_k_l2norm_bwd_f64(4, 5, a.x, &a.log_scale, a.max_scale, a.norm, r, dx, &ds);
        check_grad("l2norm dx", l2_f, &a, a.x, 20, dx, r, 20);
        check_grad("l2norm dlog_scale", l2_f, &a, &a.log_scale, 1, &ds, r, 20);
        free(a.x), free(r);
    }
}

/* ---- an open-vocabulary head's text scoring ---- */
enum { VM = 5, VB = 3, VE = 4, VK = 3 };
typedef struct {
    double *x, *text, log_scale, bias, saved[VM + VM * VE];
} vocab_ctx;
static void vocab_f(void *ctx, double *y) {
    vocab_ctx *a = ctx;
    lathe_k_vocab_fwd_f64(VM, VB, VE, VK, a->x, a->text, &a->log_scale, &a->bias, a->saved, y);
}
static void vocab_gradients(void **state) {
    (void)state;
    vocab_ctx a = {randv(VM * (VB + VE)), randv(VK * VE), 0.9, -0.3, {0}};
    size_t nx = VM * (VB + VE), ny = VM * (VB + VK);
    double *r = randv(ny), y[VM * (VB + VK)], dx[VM * (VB + VE)] = {0}, ds = 0, db = 0, ws[VM * VE];
    for (int c = 0; c < VK; c++) { /* the text rows are unit vectors (prompt embeddings) */
        double n = 0;
        for (int j = 0; j < VE; j++) n += a.text[c * VE + j] * a.text[c * VE + j];
        for (int j = 0; j < VE; j++) a.text[c * VE + j] /= sqrt(n);
    }
    vocab_f(&a, y);
    for (int i = 0; i < VM; i++) /* box values pass through; class values are e^s cos + b, within e^s of b */
        for (int j = 0; j < VB + VK; j++) {
            double v = y[i * (VB + VK) + j];
            if (j < VB) assert_true(v == a.x[i * (VB + VE) + j]);
            else assert_true(fabs(v - a.bias) <= exp(0.9) + 1e-12);
        }
    lathe_k_vocab_bwd_f64(VM, VB, VE, VK, a.text, &a.log_scale, a.saved, r, ws, dx, &ds, &db);
    check_grad("vocab dx", vocab_f, &a, a.x, nx, dx, r, ny);
    check_grad("vocab dlog_scale", vocab_f, &a, &a.log_scale, 1, &ds, r, ny);
    check_grad("vocab dbias", vocab_f, &a, &a.bias, 1, &db, r, ny);
    free(a.x), free(a.text), free(r);
}

/* Inference attention over packed QKV with a padding mask equals multi-head attention (output
 * projection the identity) run on each sequence cut to its length; padded rows are zero. */
static void sdpa_matches_attention(void **state) {
    (void)state;
    enum { B = 2, L = 5, D = 6, H = 2 };
    int32_t lens[B] = {5, 3};
    double *x = randv(B * L * D), *w = randv(3 * D * D), *b = randv(3 * D), qkv[B * L * 3 * D], y[B * L * D];
    double eye[D * D] = {0}, zero[D] = {0};
    for (int i = 0; i < D; i++) eye[i * D + i] = 1;
    lathe_k_linear_fwd_f64(B * L, D, 3 * D, x, w, b, qkv);
    /* the packed layout: row t holds Q, K, V of token t (one linear of the stacked weights) */
    double *ws = malloc(lathe_k_sdpa_workspace(L) * sizeof(double));
    lathe_k_sdpa_fwd_f64(B, L, D, H, qkv, lens, ws, y);
    free(ws);
    for (int bi = 0; bi < B; bi++) {
        double *saved = malloc(lathe_k_mha_saved(1, lens[bi], D, H) * sizeof(double)), ref[L * D];
        lathe_k_mha_fwd_f64(1, lens[bi], D, H, x + bi * L * D, w, b, eye, zero, saved, ref);
        for (int t = 0; t < L; t++)
            for (int k = 0; k < D; k++) {
                double want = t < lens[bi] ? ref[t * D + k] : 0;
                assert_true(fabs(y[(bi * L + t) * D + k] - want) < 1e-12);
            }
        free(saved);
    }
    free(x), free(w), free(b);
}

/* ---- multi-head attention ---- */
typedef struct {
    double *x, *w, *b, *saved;
} mha_ctx;
enum { MB = 2, ML = 5, MD = 6, MH = 2 };
static void mha_f(void *ctx, double *y) {
    mha_ctx *a = ctx;
    lathe_k_mha_fwd_f64(MB, ML, MD, MH, a->x, a->w, a->b, a->w + 3 * MD * MD, a->b + 3 * MD, a->saved, y);
}
static void attention_gradients(void **state) {
    (void)state;
    size_t nx = MB * ML * MD, nw = 4 * MD * MD, nb = 4 * MD;
    mha_ctx a = {randv(nx), randv(nw), randv(nb), malloc(lathe_k_mha_saved(MB, ML, MD, MH) * sizeof(double))};
    double *r = randv(nx), *y = malloc(nx * 8), *dx = calloc(nx, 8), *dw = calloc(nw, 8), *db = calloc(nb, 8);
    double *ws = malloc(lathe_k_mha_workspace(MB, ML, MD, MH) * sizeof(double));
    mha_f(&a, y);
    lathe_k_mha_bwd_f64(MB, ML, MD, MH, a.x, a.w, a.w + 3 * MD * MD, a.saved, r, dx, dw, db, dw + 3 * MD * MD,
                        db + 3 * MD, ws);
    check_grad("attention dx", mha_f, &a, a.x, nx, dx, r, nx);
    check_grad("attention dw", mha_f, &a, a.w, nw, dw, r, nx);
    check_grad("attention db", mha_f, &a, a.b, nb, db, r, nx);
    /* each attention row is a probability distribution */
    const double *p = a.saved + 4 * nx;
    for (int row = 0; row < MB * MH * ML; row++) {
        double s = 0;
        for (int j = 0; j < ML; j++) s += p[row * ML + j];
        assert_true(fabs(s - 1) < 1e-12);
    }
    free(a.x), free(a.w), free(a.b), free(a.saved), free(r), free(y), free(dx), free(dw), free(db), free(ws);
}

/* The graph's data-movement kernels, gap and dropout (exact), and the bf16 casts of mixed precision. */
static void data_movement_dropout_and_bf16(void **state) {
    (void)state;
    double x[2 * 12], t[2 * 12 + 4], back[2 * 12];
    for (int i = 0; i < 24; i++) x[i] = i * 0.5 - 3;
    lathe_k_transpose_f64(2, 3, 4, x, 12, t, 14, 0); /* items 14 apart on the output side */
    assert_true(t[1 * 3 + 2] == x[2 * 4 + 1] && t[14 + 3 * 3 + 1] == x[12 + 1 * 4 + 3]);
    lathe_k_transpose_f64(2, 4, 3, t, 14, back, 12, 0);
    assert_memory_equal(back, x, sizeof back);
    lathe_k_transpose_f64(2, 4, 3, t, 14, back, 12, 1); /* accumulated: twice x */
    lathe_k_add_rows_f64(2, 12, x, 12, back, 12);       /* three times */
    for (int i = 0; i < 24; i++) assert_true(back[i] == 3 * x[i]);
    double gy[2], gdx[24] = {0};
    lathe_k_gap_fwd_f64(2, 12, x, gy);
    assert_true(fabs(gy[0] - (-3 + 2.5) / 2) < 1e-15 && fabs(gy[1] - (3 + 8.5) / 2) < 1e-15);
    lathe_k_gap_bwd_f64(2, 12, (double[]){12, 24}, gdx);
    assert_true(gdx[0] == 1 && gdx[23] == 2);

    /* dropout: p = 0 is an exact identity; p = 0.5 keeps about half, scaled by 2, the same for a key */
    enum { N = 20000 };
    float *in = malloc(sizeof(float) * N), *mask = malloc(sizeof(float) * N), *out = malloc(sizeof(float) * N);
    float *mask2 = malloc(sizeof(float) * N), *dx = calloc(N, sizeof(float));
    for (int i = 0; i < N; i++) in[i] = (float)(i % 97) - 48.5f;
    for (uint64_t key = 0; key < 50; key++) { /* 1M draws, each kept: none may round up to 1.0f and drop */
        lathe_k_dropout_fwd_f32(N, in, 0, key * 0x9e3779b97f4a7c15ull, mask, out);
        for (int i = 0; i < N; i++) assert_true(mask[i] == 1 && out[i] == in[i]);
    }
    lathe_k_dropout_fwd_f32(N, in, 0.5f, 42, mask, out);
    lathe_k_dropout_fwd_f32(N, in, 0.5f, 42, mask2, out);
    assert_memory_equal(mask, mask2, sizeof(float) * N);
    int kept = 0;
    for (int i = 0; i < N; i++) {
        assert_true(mask[i] == 0 || mask[i] == 2);
        assert_true(out[i] == in[i] * mask[i]);
        kept += mask[i] == 2;
    }
    assert_in_range(kept, N / 2 - 500, N / 2 + 500);
    lathe_k_dropout_fwd_f32(N, in, 0.5f, 43, mask2, out);
    assert_memory_not_equal(mask, mask2, sizeof(float) * N);
    lathe_k_dropout_bwd_f32(N, mask, in, dx);
    for (int i = 0; i < N; i++) assert_true(dx[i] == in[i] * mask[i]);
    free(in), free(mask), free(out), free(mask2), free(dx);

    /* bf16: round to nearest, ties to even; any NaN the canonical 0x7fff; inf and signed zero kept */
    uint32_t bits[] = {0x3f800000u, 0x3f808000u, 0x3f818000u, 0x3f80c000u, 0x3f807fffu, 0x7f800000u, 0x80000000u,
                       0x7fc00000u, 0x7f800001u, 0xc0490fdbu};
    uint16_t want[] = {0x3f80, 0x3f80, 0x3f82, 0x3f81, 0x3f80, 0x7f80, 0x8000, 0x7fff, 0x7fff, 0xc049};
    float f[10], r[10];
    uint16_t h[10];
    memcpy(f, bits, sizeof f);
    lathe_k_to_bf16(10, f, h);
    for (int i = 0; i < 10; i++) assert_int_equal(h[i], want[i]);
    lathe_k_from_bf16(10, h, r, 0);
    assert_true(isnan(r[7]) && isnan(r[8]) && r[0] == 1 && isinf(r[5]) && signbit(r[6]));
    assert_true(fabsf(r[9] - (float)-M_PI) < 0.01f); /* 8 bits of mantissa */
    lathe_k_from_bf16(1, h, r, 1);
    assert_true(r[0] == 2);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(conv_gradients),      cmocka_unit_test(linear_gradients),
        cmocka_unit_test(bn_gradients),        cmocka_unit_test(layernorm_gradients),
        cmocka_unit_test(activation_gradients),
        cmocka_unit_test(activation_gradients_f32), cmocka_unit_test(bn_act_fused),
        cmocka_unit_test(pooling_gradients),
        cmocka_unit_test(loss_gradients),      cmocka_unit_test(attention_gradients),
        cmocka_unit_test(l2norm_gradients),    cmocka_unit_test(sdpa_matches_attention),
        cmocka_unit_test(vocab_gradients),     cmocka_unit_test(bn_act_blocked_layout),
        cmocka_unit_test(data_movement_dropout_and_bf16),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
