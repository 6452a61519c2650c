/* test_nn_parity.c - every CUDA nn kernel (kernels/nn_cuda.h) against its CPU twin (kernels/nn.h,
 * float32, or the update of libcore/nn/optim.c) on random data, forward and backward (gradients accumulate into non-zero buffers, as in
 * training), then a short timing of a convolution layer's training step on both. Prints SKIP and
 * exits 0 where no GPU or no CUDA build exists. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/nms.h"
#include "kernels/nn.h"
#include "kernels/preprocess.h"
#ifdef LATHE_HAVE_CUDA
#include <cuda_runtime_api.h>

#include "gputest.h"

#include "kernels/nn_cuda.h"

static int failures;
static lathe_cuda_ctx *ctx;

#define KC(call)                                                                                       \
    do {                                                                                               \
        const char *err_ = NULL;                                                                       \
        if ((call) != 0) {                                                                             \
            fprintf(stderr, "FAIL %s:%d: %s: %s\n", __FILE__, __LINE__, #call, err_ ? err_ : "?");     \
            exit(1);                                                                                   \
        }                                                                                              \
    } while (0)

static uint64_t seed = 99;
static float *rnd(size_t n) {
    float *v = malloc(n * sizeof *v);
    for (size_t i = 0; i < n; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        v[i] = (float)((double)(seed >> 11) / 9007199254740992.0 * 2 - 1);
    }
    return v;
}
static float *dev(const float *h, size_t n) {
    float *d;
    CHECK(cudaMalloc((void **)&d, n * sizeof *d + 4));
    CHECK(cudaMemcpy(d, h, n * sizeof *d, cudaMemcpyHostToDevice));
    return d;
}
static float *host(const float *d, size_t n) {
    float *h = malloc(n * sizeof *h + 4);
    CHECK(cudaDeviceSynchronize());
    CHECK(cudaMemcpy(h, d, n * sizeof *h, cudaMemcpyDeviceToHost));
    return h;
}
static float *copy(const float *v, size_t n) {
    float *c = malloc(n * sizeof *c);
    memcpy(c, v, n * sizeof *c);
    return c;
}

/* |gpu - cpu| <= tol * (1 + |cpu|) everywhere */
static void compare(const char *what, const float *cpu, const float *gpu_dev, size_t n, double tol) {
    float *g = host(gpu_dev, n);
    double worst = gputest_worst_error(cpu, g, n);
    int ok = worst <= tol;
    printf("%s %-34s worst %.2e (tol %.0e, %zu values)\n", ok ? "PASS" : "FAIL", what, worst, tol, n);
    failures += !ok;
    free(g);
}

/* ||gpu - cpu|| / ||cpu|| over all values: bf16 operands land between 1e-3 and 1e-2 */
static void compare_norm(const char *what, const float *cpu, const float *gpu_dev, size_t n, double tol) {
    float *g = host(gpu_dev, n);
    double e = gputest_norm_error(cpu, g, n);
    int ok = e <= tol; /* a NaN fails */
    printf("%s %-34s relative error %.2e (tol %.0e, %zu values)\n", ok ? "PASS" : "FAIL", what, e, tol, n);
    failures += !ok;
    free(g);
}

/* a convolution forward and backward, as linear_case does it */
static void conv_case(int bf16, int n, int c, int h, int w, int k, int r, int stride, int pad, int dil, int groups) {
    lathe_conv_shape s = {n, c, h, w, k, r, r, stride, pad, dil, groups, 0, 0, 1};
    s.p = lathe_k_conv_out(h, r, stride, pad, dil), s.q = lathe_k_conv_out(w, r, stride, pad, dil);
    size_t nx = (size_t)n * c * h * w, nw = (size_t)k * (c / groups) * r * r, ny = (size_t)n * k * s.p * s.q;
    float *x = rnd(nx), *wt = rnd(nw), *b = rnd(k), *dy = rnd(ny), *y = malloc(ny * 4);
    float *dx = bf16 ? calloc(nx, 4) : rnd(nx), *dw = bf16 ? calloc(nw, 4) : rnd(nw), *db = rnd(k);
    float *ws = malloc(lathe_k_conv_workspace(&s) * 4);
    float *xg = dev(x, nx), *wg = dev(wt, nw), *bg = dev(b, k), *dyg = dev(dy, ny), *yg = dev(y, ny);
    float *dxg = dev(dx, nx), *dwg = dev(dw, nw), *dbg = dev(db, k);
    lathe_k_conv2d_fwd_f32(&s, x, wt, b, y, ws);
    lathe_k_conv2d_bwd_f32(&s, x, wt, dy, dx, dw, db, ws);
    KC((bf16 ? lathe_kc_conv2d_fwd_bf16 : lathe_kc_conv2d_fwd)(ctx, &s, xg, wg, bg, yg, &err_));
    KC((bf16 ? lathe_kc_conv2d_bwd_bf16 : lathe_kc_conv2d_bwd)(ctx, &s, xg, wg, dyg, dxg, dwg, dbg, &err_));
    void (*cmp)(const char *, const float *, const float *, size_t, double) = bf16 ? compare_norm : compare;
    double tol = bf16 ? 1e-2 : 1e-4;
    char name[96];
    snprintf(name, sizeof name, "%sconv %dx%d s%d d%d g%d fwd", bf16 ? "bf16 " : "", r, r, stride, dil, groups);
    cmp(name, y, yg, ny, tol);
    snprintf(name, sizeof name, "%sconv %dx%d s%d d%d g%d dx/dw/db", bf16 ? "bf16 " : "", r, r, stride, dil, groups);
    cmp(name, dx, dxg, nx, tol);
    cmp(name, dw, dwg, nw, tol);
    compare(name, db, dbg, k, 1e-4); /* the bias gradient is float32 in both precisions */
    free(x), free(wt), free(b), free(dy), free(y), free(dx), free(dw), free(db), free(ws);
    cudaFree(xg), cudaFree(wg), cudaFree(bg), cudaFree(dyg), cudaFree(yg), cudaFree(dxg), cudaFree(dwg), cudaFree(dbg);
}

/* a linear layer forward and backward: float32 elementwise, gradients accumulating into what they
 * held; or bf16 normwise, dx and dw from zero (the error is then all bf16's) */
static void linear_case(int bf16) {
    int m = 37, d = 53, k = 19;
    float *x = rnd((size_t)m * d), *w = rnd((size_t)k * d), *b = rnd(k), *dy = rnd((size_t)m * k), *y = malloc(sizeof(float) * m * k);
    float *dx = bf16 ? calloc((size_t)m * d, 4) : rnd((size_t)m * d), *dw = bf16 ? calloc((size_t)k * d, 4) : rnd((size_t)k * d);
    float *db = rnd(k), *xg = dev(x, (size_t)m * d), *wg = dev(w, (size_t)k * d), *bg = dev(b, k);
    float *dyg = dev(dy, (size_t)m * k), *yg = dev(y, (size_t)m * k), *dxg = dev(dx, (size_t)m * d), *dwg = dev(dw, (size_t)k * d);
    float *dbg = dev(db, k);
    lathe_k_linear_fwd_f32(m, d, k, x, w, b, y);
    lathe_k_linear_bwd_f32(m, d, k, x, w, dy, dx, dw, db);
    KC((bf16 ? lathe_kc_linear_fwd_bf16 : lathe_kc_linear_fwd)(ctx, m, d, k, xg, wg, bg, yg, &err_));
    KC((bf16 ? lathe_kc_linear_bwd_bf16 : lathe_kc_linear_bwd)(ctx, m, d, k, xg, wg, dyg, dxg, dwg, dbg, &err_));
    void (*cmp)(const char *, const float *, const float *, size_t, double) = bf16 ? compare_norm : compare;
    double tol = bf16 ? 1e-2 : 1e-5;
    cmp(bf16 ? "bf16 linear fwd" : "linear fwd", y, yg, (size_t)m * k, tol);
    cmp(bf16 ? "bf16 linear dx" : "linear dx", dx, dxg, (size_t)m * d, tol);
    cmp(bf16 ? "bf16 linear dw" : "linear dw", dw, dwg, (size_t)k * d, tol);
    compare(bf16 ? "bf16 linear db (float32)" : "linear db", db, dbg, k, 1e-5);
    free(x), free(w), free(b), free(dy), free(y), free(dx), free(dw), free(db);
    cudaFree(xg), cudaFree(wg), cudaFree(bg), cudaFree(dyg), cudaFree(yg), cudaFree(dxg), cudaFree(dwg), cudaFree(dbg);
}

static void other_ops(void) {
    /* batch norm, train and eval */
    int n = 6, c = 5, hw = 77;
    size_t sz = (size_t)n * c * hw;
    float *bx = rnd(sz), *g = rnd(c), *be = rnd(c), *bdy = rnd(sz);
    for (int train = 1; train >= 0; train--) {
        float *rm = rnd(c), *rv = rnd(c);
        for (int i = 0; i < c; i++) rv[i] = fabsf(rv[i]) + 0.5f;
        float *rmg = dev(rm, c), *rvg = dev(rv, c), *smg = dev(rm, c), *sig = dev(rm, c), *byg = dev(bx, sz);
        float sm[8], si[8], *by = malloc(sz * 4), *bdx = rnd(sz), *dg = rnd(c), *dbe = rnd(c);
        float *bxg = dev(bx, sz), *gg = dev(g, c), *beg = dev(be, c), *bdyg = dev(bdy, sz), *bdxg = dev(bdx, sz);
        float *dgg = dev(dg, c), *dbeg = dev(dbe, c);
        lathe_k_bn_fwd_f32(n, c, hw, bx, g, be, rm, rv, 0.1f, 1e-5f, train, sm, si, by);
        lathe_k_bn_bwd_f32(n, c, hw, train, bx, g, sm, si, bdy, bdx, dg, dbe);
        KC(lathe_kc_bn_fwd(ctx, n, c, hw, bxg, gg, beg, rmg, rvg, 0.1f, 1e-5f, train, smg, sig, byg, &err_));
        KC(lathe_kc_bn_bwd(ctx, n, c, hw, train, bxg, gg, smg, sig, bdyg, bdxg, dgg, dbeg, &err_));
        compare(train ? "bn fwd (train)" : "bn fwd (eval)", by, byg, sz, 1e-5);
        compare("bn running mean/var", rm, rmg, c, 1e-5);
        compare("bn running var", rv, rvg, c, 1e-5);
        compare(train ? "bn dx (train)" : "bn dx (eval)", bdx, bdxg, sz, 1e-4);
        compare("bn dgamma/dbeta", dg, dgg, c, 1e-4);
        compare("bn dbeta", dbe, dbeg, c, 1e-4);
        free(rm), free(rv), free(by), free(bdx), free(dg), free(dbe);
        cudaFree(rmg), cudaFree(rvg), cudaFree(smg), cudaFree(sig), cudaFree(byg), cudaFree(bxg), cudaFree(gg);
        cudaFree(beg), cudaFree(bdyg), cudaFree(bdxg), cudaFree(dgg), cudaFree(dbeg);
    }

    /* activations */
    size_t na = 100003;
    float *ax = rnd(na);
    for (size_t i = 0; i < na; i++) ax[i] *= 6;
    float *axg = dev(ax, na), *ady = rnd(na), *adyg = dev(ady, na);
    static const char *const names[] = {"relu", "leaky", "silu", "gelu", "sigmoid"};
    for (int act = 0; act <= LATHE_ACT_SIGMOID; act++) {
        float *ay = malloc(na * 4), *adx = rnd(na), *ayg = dev(ay, na), *adxg = dev(adx, na);
        lathe_k_act_fwd_f32(act, na, ax, 0.1f, ay);
        lathe_k_act_bwd_f32(act, na, ax, 0.1f, ady, adx);
        KC(lathe_kc_act_fwd(ctx, act, na, axg, 0.1f, ayg, &err_));
        KC(lathe_kc_act_bwd(ctx, act, na, axg, 0.1f, adyg, adxg, &err_));
        char nm[64];
        snprintf(nm, sizeof nm, "%s fwd", names[act]);
        compare(nm, ay, ayg, na, 1e-5);
        snprintf(nm, sizeof nm, "%s bwd", names[act]);
        compare(nm, adx, adxg, na, 1e-5);
        free(ay), free(adx), cudaFree(ayg), cudaFree(adxg);
    }

    /* pooling and upsampling */
    int pn = 3, pc = 4, ph = 13, pw = 11;
    size_t psz = (size_t)pn * pc * ph * pw;
    float *px = rnd(psz), *pxg = dev(px, psz);
    int cases[][3] = {{2, 2, 0}, {3, 2, 1}, {5, 1, 2}, {3, 3, 1}};
    for (int ci = 0; ci < 4; ci++) {
        int r = cases[ci][0], st = cases[ci][1], pd = cases[ci][2];
        int p = lathe_k_conv_out(ph, r, st, pd, 1), q = lathe_k_conv_out(pw, r, st, pd, 1);
        size_t osz = (size_t)pn * pc * p * q;
        float *py = malloc(osz * 4), *pdy = rnd(osz), *pdx = rnd(psz), *pyg = dev(py, osz), *pdyg = dev(pdy, osz);
        float *pdxg = dev(pdx, psz);
        int32_t *arg = malloc(osz * 4), *argg;
        CHECK(cudaMalloc((void **)&argg, osz * 4));
        char nm[64];
        lathe_k_maxpool_fwd_f32(pn, pc, ph, pw, r, st, pd, p, q, px, py, arg);
        lathe_k_maxpool_bwd_f32(pn, pc, ph, pw, p, q, arg, pdy, pdx);
        KC(lathe_kc_maxpool_fwd(ctx, pn, pc, ph, pw, r, st, pd, p, q, pxg, pyg, argg, &err_));
        KC(lathe_kc_maxpool_bwd(ctx, pn, pc, ph, pw, r, st, pd, p, q, argg, pdyg, pdxg, &err_));
        snprintf(nm, sizeof nm, "maxpool k%d s%d p%d fwd", r, st, pd);
        compare(nm, py, pyg, osz, 0);
        snprintf(nm, sizeof nm, "maxpool k%d s%d p%d bwd", r, st, pd);
        compare(nm, pdx, pdxg, psz, 1e-6);
        free(pdx);
        pdx = rnd(psz);
        CHECK(cudaMemcpy(pdxg, pdx, psz * 4, cudaMemcpyHostToDevice));
        lathe_k_avgpool_fwd_f32(pn, pc, ph, pw, r, st, pd, p, q, px, py);
        lathe_k_avgpool_bwd_f32(pn, pc, ph, pw, r, st, pd, p, q, pdy, pdx);
        KC(lathe_kc_avgpool_fwd(ctx, pn, pc, ph, pw, r, st, pd, p, q, pxg, pyg, &err_));
        KC(lathe_kc_avgpool_bwd(ctx, pn, pc, ph, pw, r, st, pd, p, q, pdyg, pdxg, &err_));
        snprintf(nm, sizeof nm, "avgpool k%d s%d p%d fwd", r, st, pd);
        compare(nm, py, pyg, osz, 1e-6);
        snprintf(nm, sizeof nm, "avgpool k%d s%d p%d bwd", r, st, pd);
        compare(nm, pdx, pdxg, psz, 1e-6);
        free(py), free(pdy), free(pdx), free(arg), cudaFree(pyg), cudaFree(pdyg), cudaFree(pdxg), cudaFree(argg);
    }
    size_t usz = psz * 9;
    float *uy = malloc(usz * 4), *udy = rnd(usz), *udx = rnd(psz), *uyg = dev(uy, usz), *udyg = dev(udy, usz);
    float *udxg = dev(udx, psz);
    lathe_k_upsample_fwd_f32(pn, pc, ph, pw, 3, px, uy);
    lathe_k_upsample_bwd_f32(pn, pc, ph, pw, 3, udy, udx);
    KC(lathe_kc_upsample_fwd(ctx, pn, pc, ph, pw, 3, pxg, uyg, &err_));
    KC(lathe_kc_upsample_bwd(ctx, pn, pc, ph, pw, 3, udyg, udxg, &err_));
    compare("upsample x3 fwd", uy, uyg, usz, 0);
    compare("upsample x3 bwd", udx, udxg, psz, 1e-6);

    /* softmax cross-entropy */
    int cm = 65, ck = 300;
    float *z = rnd((size_t)cm * ck), *dz = malloc(sizeof(float) * cm * ck);
    int32_t *lab = malloc(cm * 4), *labg;
    for (int i = 0; i < cm; i++) lab[i] = i % 7 == 3 ? -1 : (i * 37) % ck;
    CHECK(cudaMalloc((void **)&labg, cm * 4));
    CHECK(cudaMemcpy(labg, lab, cm * 4, cudaMemcpyHostToDevice));
    float *zg = dev(z, (size_t)cm * ck), *dzg = dev(dz, (size_t)cm * ck);
    double lc = lathe_k_softmax_ce_f32(cm, ck, z, lab, 0.1f, dz), lg = 0;
    KC(lathe_kc_softmax_ce(ctx, cm, ck, zg, labg, 0.1f, dzg, &lg, &err_));
    int ok = fabs(lc - lg) <= 1e-5 * (1 + fabs(lc));
    printf("%s %-34s cpu %.8f gpu %.8f\n", ok ? "PASS" : "FAIL", "softmax ce loss", lc, lg);
    failures += !ok;
    compare("softmax ce dlogits", dz, dzg, (size_t)cm * ck, 1e-6);

    /* optimizer steps */
    size_t no = 10007;
    float *ow = rnd(no), *og = rnd(no), *om = rnd(no), *ov = rnd(no);
    for (size_t i = 0; i < no; i++) ov[i] = fabsf(ov[i]);
    float *owg = dev(ow, no), *ogg = dev(og, no), *omg = dev(om, no), *ovg = dev(ov, no);
    float *cw = copy(ow, no), *cmm = copy(om, no), *cv = copy(ov, no);
    for (size_t i = 0; i < no; i++) { /* the CPU update of libcore/nn/optim.c, AdamW */
        float gk = og[i] * 0.5f;
        cmm[i] = 0.9f * cmm[i] + 0.1f * gk;
        cv[i] = 0.999f * cv[i] + 0.001f * gk * gk;
        cw[i] -= 0.01f * 0.05f * cw[i];
        cw[i] -= (0.01f / 0.19f) * cmm[i] / (sqrtf(cv[i]) / sqrtf(0.002f) + 1e-8f);
    }
    KC(lathe_kc_adamw_step(ctx, no, owg, ogg, omg, ovg, 0.01f, 0.9f, 0.999f, 1e-8f, 0.05f, 0.5f, 0.19f, 0.002f, &err_));
    compare("adamw weights", cw, owg, no, 1e-5);
    compare("adamw second moment", cv, ovg, no, 1e-6);
}

/* the graph's data movement, gap, dropout, layer norm, attention and the optimizer's helpers */
static void graph_ops(void) {
    /* transpose with item strides, written and accumulated */
    int n = 3, rows = 7, cols = 13;
    size_t xs = (size_t)rows * cols + 5, ys = (size_t)rows * cols + 3;
    float *x = rnd(xs * n), *xg = dev(x, xs * n);
    for (int acc = 0; acc <= 1; acc++) {
        float *y = rnd(ys * n), *yg = dev(y, ys * n);
        lathe_k_transpose_f32(n, rows, cols, x, xs, y, ys, acc);
        KC(lathe_kc_transpose(ctx, n, rows, cols, xg, xs, yg, ys, acc, &err_));
        compare(acc ? "transpose, accumulated" : "transpose", y, yg, ys * n, 0);
        free(y), cudaFree(yg);
    }
    float *y = rnd(ys * n), *yg = dev(y, ys * n);
    lathe_k_add_rows_f32(n, 50, x, xs, y, ys);
    KC(lathe_kc_add_rows(ctx, n, 50, xg, xs, yg, ys, &err_));
    compare("add_rows", y, yg, ys * n, 0);
    free(x), free(y), cudaFree(xg), cudaFree(yg);

    /* global average pool */
    int nc = 11, hw = 97;
    float *gx = rnd((size_t)nc * hw), *gy = malloc(nc * 4), *gdy = rnd(nc), *gdx = rnd((size_t)nc * hw);
    float *gxg = dev(gx, (size_t)nc * hw), *gyg = dev(gy, nc), *gdyg = dev(gdy, nc), *gdxg = dev(gdx, (size_t)nc * hw);
    lathe_k_gap_fwd_f32(nc, hw, gx, gy);
    lathe_k_gap_bwd_f32(nc, hw, gdy, gdx);
    KC(lathe_kc_gap_fwd(ctx, nc, hw, gxg, gyg, &err_));
    KC(lathe_kc_gap_bwd(ctx, nc, hw, gdyg, gdxg, &err_));
    compare("gap fwd", gy, gyg, nc, 1e-6);
    compare("gap bwd", gdx, gdxg, (size_t)nc * hw, 1e-6);
    free(gx), free(gy), free(gdy), free(gdx), cudaFree(gxg), cudaFree(gyg), cudaFree(gdyg), cudaFree(gdxg);

    /* FiLM: a scale and a shift per channel */
    int fn = 3, fc = 5, fhw = 37;
    size_t fx = (size_t)fn * fc * fhw, fp = (size_t)fn * 2 * fc;
    float *xf = rnd(fx), *pf = rnd(fp), *yf = malloc(fx * 4), *dyf = rnd(fx), *dxf = rnd(fx), *dpf = rnd(fp);
    float *xfg = dev(xf, fx), *pfg = dev(pf, fp), *yfg = dev(yf, fx), *dyfg = dev(dyf, fx), *dxfg = dev(dxf, fx), *dpfg = dev(dpf, fp);
    lathe_k_film_fwd_f32(fn, fc, fhw, xf, pf, yf);
    lathe_k_film_bwd_f32(fn, fc, fhw, xf, pf, dyf, dxf, dpf);
    KC(lathe_kc_film_fwd(ctx, fn, fc, fhw, xfg, pfg, yfg, &err_));
    KC(lathe_kc_film_bwd(ctx, fn, fc, fhw, xfg, pfg, dyfg, dxfg, dpfg, &err_));
    compare("film fwd", yf, yfg, fx, 1e-6);
    compare("film bwd dx", dxf, dxfg, fx, 1e-6);
    compare("film bwd dp", dpf, dpfg, fp, 1e-5);
    free(xf), free(pf), free(yf), free(dyf), free(dxf), free(dpf);
    cudaFree(xfg), cudaFree(pfg), cudaFree(yfg), cudaFree(dyfg), cudaFree(dxfg), cudaFree(dpfg);

    /* dropout: the very same mask */
    size_t nd = 100003;
    float *dx0 = rnd(nd), *mask = malloc(nd * 4), *dy0 = malloc(nd * 4), *ddy = rnd(nd), *ddx = rnd(nd);
    float *dx0g = dev(dx0, nd), *maskg = dev(dx0, nd), *dy0g = dev(dx0, nd), *ddyg = dev(ddy, nd), *ddxg = dev(ddx, nd);
    lathe_k_dropout_fwd_f32(nd, dx0, 0.3f, 0x1234567890abcdefull, mask, dy0);
    lathe_k_dropout_bwd_f32(nd, mask, ddy, ddx);
    KC(lathe_kc_dropout_fwd(ctx, nd, dx0g, 0.3f, 0x1234567890abcdefull, maskg, dy0g, &err_));
    KC(lathe_kc_dropout_bwd(ctx, nd, maskg, ddyg, ddxg, &err_));
    compare("dropout mask", mask, maskg, nd, 0);
    compare("dropout fwd", dy0, dy0g, nd, 0);
    compare("dropout bwd", ddx, ddxg, nd, 0);
    free(dx0), free(mask), free(dy0), free(ddy), free(ddx);
    cudaFree(dx0g), cudaFree(maskg), cudaFree(dy0g), cudaFree(ddyg), cudaFree(ddxg);

    /* layer norm */
    int m = 9, d = 130;
    size_t md = (size_t)m * d;
    float *lx = rnd(md), *lg = rnd(d), *lb = rnd(d), *ly = malloc(md * 4), *lmu = malloc(m * 4), *lis = malloc(m * 4);
    float *ldy = rnd(md), *ldx = rnd(md), *ldg = rnd(d), *ldb = rnd(d);
    float *lxg = dev(lx, md), *lgg = dev(lg, d), *lbg = dev(lb, d), *lyg = dev(lx, md), *lmug = dev(lx, m);
    float *lisg = dev(lx, m), *ldyg = dev(ldy, md), *ldxg = dev(ldx, md), *ldgg = dev(ldg, d), *ldbg = dev(ldb, d);
    lathe_k_layernorm_fwd_f32(m, d, lx, lg, lb, 1e-5f, lmu, lis, ly);
    lathe_k_layernorm_bwd_f32(m, d, lx, lg, lmu, lis, ldy, ldx, ldg, ldb);
    KC(lathe_kc_layernorm_fwd(ctx, m, d, lxg, lgg, lbg, 1e-5f, lmug, lisg, lyg, &err_));
    KC(lathe_kc_layernorm_bwd(ctx, m, d, lxg, lgg, lmug, lisg, ldyg, ldxg, ldgg, ldbg, &err_));
    compare("layernorm fwd", ly, lyg, md, 1e-5);
    compare("layernorm dx", ldx, ldxg, md, 1e-4);
    compare("layernorm dgamma", ldg, ldgg, d, 1e-4);
    compare("layernorm dbeta", ldb, ldbg, d, 1e-5);
    free(lx), free(lg), free(lb), free(ly), free(lmu), free(lis), free(ldy), free(ldx), free(ldg), free(ldb);
    cudaFree(lxg), cudaFree(lgg), cudaFree(lbg), cudaFree(lyg), cudaFree(lmug), cudaFree(lisg), cudaFree(ldyg);
    cudaFree(ldxg), cudaFree(ldgg), cudaFree(ldbg);

    /* multi-head attention */
    int ab = 2, al = 10, ad = 16, ah = 4;
    size_t an = (size_t)ab * al * ad, sv = lathe_k_mha_saved(ab, al, ad, ah);
    float *ax = rnd(an), *wi = rnd(3 * (size_t)ad * ad), *bi = rnd(3 * (size_t)ad), *wo = rnd((size_t)ad * ad);
    float *bo = rnd(ad), *ay = malloc(an * 4), *saved = malloc(sv * 4), *ady = rnd(an), *adx = rnd(an);
    float *dwi = rnd(3 * (size_t)ad * ad), *dbi = rnd(3 * (size_t)ad), *dwo = rnd((size_t)ad * ad), *dbo = rnd(ad);
    float *ws = malloc(lathe_k_mha_workspace(ab, al, ad, ah) * 4);
    float *axg = dev(ax, an), *wig = dev(wi, 3 * (size_t)ad * ad), *big = dev(bi, 3 * (size_t)ad);
    float *wog = dev(wo, (size_t)ad * ad), *bog = dev(bo, ad), *ayg = dev(ax, an), *savedg, *wsg;
    float *adyg = dev(ady, an), *adxg = dev(adx, an), *dwig = dev(dwi, 3 * (size_t)ad * ad);
    float *dbig = dev(dbi, 3 * (size_t)ad), *dwog = dev(dwo, (size_t)ad * ad), *dbog = dev(dbo, ad);
    CHECK(cudaMalloc((void **)&savedg, sv * 4));
    CHECK(cudaMalloc((void **)&wsg, lathe_kc_mha_workspace(ab, al, ad, ah) * 4));
    lathe_k_mha_fwd_f32(ab, al, ad, ah, ax, wi, bi, wo, bo, saved, ay);
    lathe_k_mha_bwd_f32(ab, al, ad, ah, ax, wi, wo, saved, ady, adx, dwi, dbi, dwo, dbo, ws);
    KC(lathe_kc_mha_fwd(ctx, ab, al, ad, ah, axg, wig, big, wog, bog, savedg, ayg, &err_));
    KC(lathe_kc_mha_bwd(ctx, ab, al, ad, ah, axg, wig, wog, savedg, adyg, adxg, dwig, dbig, dwog, dbog, wsg, &err_));
    compare("attention fwd", ay, ayg, an, 1e-4);
    compare("attention saved (Q K V C P)", saved, savedg, sv, 1e-4);
    compare("attention dx", adx, adxg, an, 1e-4);
    compare("attention dw_in", dwi, dwig, 3 * (size_t)ad * ad, 1e-4);
    compare("attention db_in", dbi, dbig, 3 * (size_t)ad, 1e-4);
    compare("attention dw_out", dwo, dwog, (size_t)ad * ad, 1e-4);
    compare("attention db_out", dbo, dbog, ad, 1e-4);
    free(ax), free(wi), free(bi), free(wo), free(bo), free(ay), free(saved), free(ady), free(adx), free(dwi);
    free(dbi), free(dwo), free(dbo), free(ws);
    cudaFree(axg), cudaFree(wig), cudaFree(big), cudaFree(wog), cudaFree(bog), cudaFree(ayg), cudaFree(savedg);
    cudaFree(wsg), cudaFree(adyg), cudaFree(adxg), cudaFree(dwig), cudaFree(dbig), cudaFree(dwog), cudaFree(dbog);

    /* inference attention over packed QKV with a padding mask (the text encoder's) */
    {
        int sb = 3, sl = 37, sd = 48, sh = 4;
        int32_t slens[3] = {37, 20, 1}, *slensg;
        size_t sq = (size_t)sb * sl * 3 * sd, so = (size_t)sb * sl * sd;
        float *sqkv = rnd(sq), *sy = malloc(so * 4), *sqkvg = dev(sqkv, sq), *syg = dev(sqkv, so);
        CHECK(cudaMalloc((void **)&slensg, sizeof slens));
        CHECK(cudaMemcpy(slensg, slens, sizeof slens, cudaMemcpyHostToDevice));
        float *sws = malloc(lathe_k_sdpa_workspace(sl) * 4);
        lathe_k_sdpa_fwd_f32(sb, sl, sd, sh, sqkv, slens, sws, sy);
        free(sws);
        KC(lathe_kc_sdpa_fwd(ctx, sb, sl, sd, sh, sqkvg, slensg, syg, &err_));
        compare("sdpa fwd (masked)", sy, syg, so, 1e-5);
        free(sqkv), free(sy);
        cudaFree(sqkvg), cudaFree(syg), cudaFree(slensg);
    }

    /* scaled L2 normalization (contrastive heads), with and without the scale clamped */
    for (int clamp = 0; clamp < 2; clamp++) {
        int nm_ = 33, ndim = 384;
        size_t nn = (size_t)nm_ * ndim;
        float ls = 2.66f, max_scale = clamp ? 5 : 100, dls = 0.25f;
        float *nx = rnd(nn), *ny = malloc(nn * 4), *nrm = malloc(2 * (size_t)nm_ * 4), *ndy = rnd(nn), *ndx = rnd(nn);
        float *nxg = dev(nx, nn), *nyg = dev(nx, nn), *nrmg = dev(nx, 2 * (size_t)nm_), *ndyg = dev(ndy, nn);
        float *ndxg = dev(ndx, nn), *lsg = dev(&ls, 1), *dlsg = dev(&dls, 1);
        lathe_k_l2norm_fwd_f32(nm_, ndim, nx, &ls, max_scale, nrm, ny);
        lathe_k_l2norm_bwd_f32(nm_, ndim, nx, &ls, max_scale, nrm, ndy, ndx, &dls);
        KC(lathe_kc_l2norm_fwd(ctx, nm_, ndim, nxg, lsg, max_scale, nrmg, nyg, &err_));
        KC(lathe_kc_l2norm_bwd(ctx, nm_, ndim, nxg, lsg, max_scale, nrmg, ndyg, ndxg, dlsg, &err_));
        compare(clamp ? "l2norm fwd (clamped)" : "l2norm fwd", ny, nyg, nn, 1e-5);
        compare(clamp ? "l2norm dx (clamped)" : "l2norm dx", ndx, ndxg, nn, 1e-5);
        compare(clamp ? "l2norm dlog_scale (clamped)" : "l2norm dlog_scale", &dls, dlsg, 1, 1e-4);
        free(nx), free(ny), free(nrm), free(ndy), free(ndx);
        cudaFree(nxg), cudaFree(nyg), cudaFree(nrmg), cudaFree(ndyg), cudaFree(ndxg), cudaFree(lsg), cudaFree(dlsg);
    }

    /* an open-vocabulary head's text scoring */
    {
        int vm = 700, vb = 64, ve = 384, vk = 7;
        size_t nx = (size_t)vm * (vb + ve), ny = (size_t)vm * (vb + vk), nsv = (size_t)vm + (size_t)vm * ve;
        float ls = 2.6f, bias = -4.0f, dls = 0.5f, dbias = -0.25f;
        float *vx = rnd(nx), *vt = rnd((size_t)vk * ve), *vy = malloc(ny * 4), *vs = malloc(nsv * 4);
        float *vdy = rnd(ny), *vdx = rnd(nx), *vws = malloc((size_t)vm * ve * 4);
        float *vxg = dev(vx, nx), *vtg = dev(vt, (size_t)vk * ve), *vyg = dev(vx, ny), *vsg = dev(vx, nsv);
        float *vdyg = dev(vdy, ny), *vdxg = dev(vdx, nx), *vwsg = dev(vx, (size_t)vm * ve), *lsg = dev(&ls, 1);
        float *bg = dev(&bias, 1), *dlsg = dev(&dls, 1), *dbg = dev(&dbias, 1);
        lathe_k_vocab_fwd_f32(vm, vb, ve, vk, vx, vt, &ls, &bias, vs, vy);
        lathe_k_vocab_bwd_f32(vm, vb, ve, vk, vt, &ls, vs, vdy, vws, vdx, &dls, &dbias);
        KC(lathe_kc_vocab_fwd(ctx, vm, vb, ve, vk, vxg, vtg, lsg, bg, vsg, vyg, &err_));
        KC(lathe_kc_vocab_bwd(ctx, vm, vb, ve, vk, vtg, lsg, vsg, vdyg, vwsg, vdxg, dlsg, dbg, &err_));
        compare("vocab fwd", vy, vyg, ny, 1e-4);
        compare("vocab dx", vdx, vdxg, nx, 1e-4);
        compare("vocab dlog_scale", &dls, dlsg, 1, 1e-4);
        compare("vocab dbias", &dbias, dbg, 1, 1e-4);
        free(vx), free(vt), free(vy), free(vs), free(vdy), free(vdx), free(vws);
        cudaFree(vxg), cudaFree(vtg), cudaFree(vyg), cudaFree(vsg), cudaFree(vdyg), cudaFree(vdxg), cudaFree(vwsg);
        cudaFree(lsg), cudaFree(bg), cudaFree(dlsg), cudaFree(dbg);
    }

    /* sum of squares, EMA, swap, SGD */
    size_t no = 1000003;
    float *o1 = rnd(no), *o2 = rnd(no), *o3 = rnd(no), *o1g = dev(o1, no), *o2g = dev(o2, no), *o3g = dev(o3, no);
    double want = 0, got = 0, *sg;
    for (size_t i = 0; i < no; i++) want += (double)o1[i] * o1[i];
    CHECK(cudaMalloc((void **)&sg, sizeof(double)));
    KC(lathe_kc_sumsq(ctx, no, o1g, sg, &err_));
    CHECK(cudaDeviceSynchronize());
    CHECK(cudaMemcpy(&got, sg, sizeof got, cudaMemcpyDeviceToHost));
    int ok = fabs(got - want) <= 1e-9 * want;
    printf("%s %-34s cpu %.9g gpu %.9g\n", ok ? "PASS" : "FAIL", "sum of squares", want, got);
    failures += !ok;
    for (size_t i = 0; i < no; i++) o2[i] = 0.9f * o2[i] + (1 - 0.9f) * o1[i];
    KC(lathe_kc_ema(ctx, no, o2g, o1g, 0.9f, &err_));
    compare("ema", o2, o2g, no, 1e-6);
    KC(lathe_kc_swap(ctx, no, o1g, o3g, &err_));
    compare("swap (first)", o3, o1g, no, 0);
    compare("swap (second)", o1, o3g, no, 0);
    /* SGD, Nesterov, as libcore/nn/optim.c: the weights are o3 now, gradients o2, momentum o1 */
    float *w = copy(o3, no), *mo = copy(o1, no);
    for (size_t i = 0; i < no; i++) {
        float gk = o2[i] * 0.5f + 0.01f * w[i];
        mo[i] = 0.9f * mo[i] + gk;
        w[i] -= 0.1f * (gk + 0.9f * mo[i]);
    }
    KC(lathe_kc_sgd_step(ctx, no, o1g, o2g, o3g, 0.1f, 0.9f, 1, 0.01f, 0.5f, &err_));
    compare("sgd nesterov weights", w, o1g, no, 1e-6);
    compare("sgd momentum", mo, o3g, no, 1e-6);
    free(o1), free(o2), free(o3), free(w), free(mo), cudaFree(o1g), cudaFree(o2g), cudaFree(o3g), cudaFree(sg);
}

/* bf16 mixed precision: the casts bit for bit against the CPU's, then convolutions and linear layers
 * in bf16 against the float32 CPU kernels, forward and backward (accumulating into float32) */
static void bf16_ops(void) {
    size_t n = 100003;
    float *x = rnd(n);
    for (size_t i = 0; i < n; i++) x[i] *= (float)(1 << (i % 20)); /* many exponents */
    /* ties both ways, FLT_MAX (to inf), NaNs of both signs (to 0x7fff), -0, subnormals, negative ties */
    uint32_t ties[] = {0x3f808000u, 0x3f818000u, 0xbf808000u, 0x7f7fffffu, 0x7fc00001u, 0xffc00000u,
                       0x80000000u, 0x00008000u, 0x00018000u, 0x807f8000u, 0xbf818000u};
    memcpy(x, ties, sizeof ties);
    uint16_t *h = malloc(n * 2), *hg;
    float *xg = dev(x, n), *back = malloc(n * 4), *backg;
    CHECK(cudaMalloc((void **)&hg, n * 2));
    CHECK(cudaMalloc((void **)&backg, n * 4));
    lathe_k_to_bf16(n, x, h);
    KC(lathe_kc_to_bf16(ctx, n, xg, hg, &err_));
    uint16_t *hh = malloc(n * 2);
    CHECK(cudaDeviceSynchronize());
    CHECK(cudaMemcpy(hh, hg, n * 2, cudaMemcpyDeviceToHost));
    int ok = !memcmp(h, hh, n * 2);
    printf("%s %-34s %zu values, ties to even included\n", ok ? "PASS" : "FAIL", "bf16 cast, bit for bit", n);
    failures += !ok;
    lathe_k_from_bf16(n, h, back, 0);
    KC(lathe_kc_from_bf16(ctx, n, hg, backg, 0, &err_));
    float *gb = host(backg, n); /* bit for bit: inf and NaN included */
    ok = !memcmp(back, gb, n * 4);
    printf("%s %-34s %zu values\n", ok ? "PASS" : "FAIL", "bf16 -> float, bit for bit", n);
    failures += !ok;
    free(gb);
    free(x), free(h), free(hh), free(back), cudaFree(xg), cudaFree(hg), cudaFree(backg);

    conv_case(1, 4, 16, 20, 20, 32, 3, 1, 1, 1, 1);
    conv_case(1, 2, 8, 15, 15, 8, 3, 2, 2, 2, 2);
    conv_case(1, 3, 24, 9, 9, 48, 1, 1, 0, 1, 1);
    conv_case(1, 2, 12, 14, 14, 12, 3, 1, 1, 1, 12); /* depthwise: cuDNN's bf16 gaps are here, if any */
    linear_case(1);
}

/* NMS: the GPU keeps exactly the boxes the CPU keeps, in the same order */
static void nms_parity(void) {
    for (int round = 0; round < 4; round++) {
        int n = round == 3 ? 5000 : 300 * (round + 1);
        float *boxes = malloc(sizeof(float) * 4 * n), *scores = rnd(n);
        int32_t *classes = malloc(sizeof(int32_t) * n), *k1 = malloc(sizeof(int32_t) * n), *k2 = malloc(sizeof(int32_t) * n);
        for (int i = 0; i < n; i++) {
            float *r = rnd(4);
            boxes[4 * i] = 100 * (r[0] + 1), boxes[4 * i + 1] = 100 * (r[1] + 1);
            boxes[4 * i + 2] = boxes[4 * i] + 5 + 30 * (r[2] + 1), boxes[4 * i + 3] = boxes[4 * i + 1] + 5 + 30 * (r[3] + 1);
            scores[i] = roundf((scores[i] + 1) * 50) / 100; /* ties */
            classes[i] = i % (round + 1);
            free(r);
        }
        float *bg = dev(boxes, 4 * (size_t)n), *sg = dev(scores, n);
        int32_t *cg;
        CHECK(cudaMalloc((void **)&cg, sizeof(int32_t) * n));
        CHECK(cudaMemcpy(cg, classes, sizeof(int32_t) * n, cudaMemcpyHostToDevice));
        int a = lathe_k_nms_cpu(boxes, scores, classes, n, 0.45f, 0.1f, 300, k1);
        const char *err = NULL;
        int b = lathe_k_nms_cuda(bg, sg, cg, n, 0.45f, 0.1f, 300, k2, NULL, &err);
        if (b < 0) printf("FAIL nms launch: %s\n", err ? err : "?");
        int ok = a == b && !memcmp(k1, k2, sizeof(int32_t) * (a > 0 ? a : 0));
        printf("%s nms %5d boxes, %d classes: kept %d / %d\n", ok ? "PASS" : "FAIL", n, round + 1, a, b);
        failures += !ok;
        free(boxes), free(scores), free(classes), free(k1), free(k2), cudaFree(bg), cudaFree(sg), cudaFree(cg);
    }
}

/* NMS at the threshold (tests/unit/test_nms.c pins the CPU's side): a class-0 pair with IoU exactly
 * 0.5 and a class-1 pair with IoU exactly 0.75, at thresholds equal to each and one float step under;
 * an IoU equal to the threshold does not suppress. The GPU keeps what the CPU keeps. */
static void nms_at_threshold(void) {
    static const float boxes[16] = {0, 0, 6, 4, 2, 0, 8, 4, 21, 1, 29, 9, 21, 3, 29, 9};
    static const float scores[4] = {0.9f, 0.8f, 0.7f, 0.6f};
    static const int32_t classes[4] = {0, 0, 1, 1};
    const float thr[4] = {0.5f, nextafterf(0.5f, 0), 0.75f, nextafterf(0.75f, 0)};
    static const int want[4] = {3, 2, 4, 3};
    float *bg = dev(boxes, 16), *sg = dev(scores, 4);
    int32_t *cg;
    CHECK(cudaMalloc((void **)&cg, sizeof classes));
    CHECK(cudaMemcpy(cg, classes, sizeof classes, cudaMemcpyHostToDevice));
    for (int i = 0; i < 4; i++) {
        int32_t k1[4], k2[4];
        const char *err = NULL;
        int a = lathe_k_nms_cpu(boxes, scores, classes, 4, thr[i], 0, 10, k1);
        int b = lathe_k_nms_cuda(bg, sg, cg, 4, thr[i], 0, 10, k2, NULL, &err);
        if (b < 0) printf("FAIL nms launch: %s\n", err ? err : "?");
        int ok = a == want[i] && a == b && !memcmp(k1, k2, sizeof(int32_t) * (size_t)a);
        printf("%s nms at IoU threshold %.9g: kept %d / %d, want %d\n", ok ? "PASS" : "FAIL", thr[i], a, b, want[i]);
        failures += !ok;
    }
    cudaFree(bg), cudaFree(sg), cudaFree(cg);
}

/* a 3x3, 64-channel conv layer's training step (forward + backward) at batch 32, 56x56 */
static void timing(void) {
    lathe_conv_shape s = {32, 64, 56, 56, 64, 3, 3, 1, 1, 1, 1, 56, 56, 1};
    s.threads = 16;
    size_t nx = (size_t)32 * 64 * 56 * 56, nw = 64 * 64 * 9;
    float *x = rnd(nx), *w = rnd(nw), *y = malloc(nx * 4), *dx = calloc(nx, 4), *dw = calloc(nw, 4);
    float *ws = malloc(lathe_k_conv_workspace(&s) * 4);
    double t0 = gputest_now();
    lathe_k_conv2d_fwd_f32(&s, x, w, NULL, y, ws);
    lathe_k_conv2d_bwd_f32(&s, x, w, y, dx, dw, NULL, ws);
    double cpu = gputest_now() - t0;
    float *xg = dev(x, nx), *wg = dev(w, nw), *yg = dev(y, nx), *dxg = dev(dx, nx), *dwg = dev(dw, nw);
    KC(lathe_kc_conv2d_fwd(ctx, &s, xg, wg, NULL, yg, &err_)); /* algorithm search, untimed */
    KC(lathe_kc_conv2d_bwd(ctx, &s, xg, wg, yg, dxg, dwg, NULL, &err_));
    CHECK(cudaDeviceSynchronize());
    t0 = gputest_now();
    for (int i = 0; i < 20; i++) {
        KC(lathe_kc_conv2d_fwd(ctx, &s, xg, wg, NULL, yg, &err_));
        KC(lathe_kc_conv2d_bwd(ctx, &s, xg, wg, yg, dxg, dwg, NULL, &err_));
    }
    CHECK(cudaDeviceSynchronize());
    double gpu = (gputest_now() - t0) / 20;
    printf("conv 3x3 64->64 @56x56, batch 32, forward + backward: cpu %.1f ms (%d threads), gpu %.3f ms, %.0fx; "
           "gpu %.0f images/s\n", cpu * 1e3, s.threads, gpu * 1e3, cpu / gpu, 32 / gpu);
}
#endif

int main(void) {
    const char *reason = NULL;
    if (!lathe_k_cuda_available(&reason)) {
        printf("SKIP nn parity: %s\n", reason);
        return 0;
    }
#ifdef LATHE_HAVE_CUDA
    const char *err = NULL;
    if (lathe_kc_create(NULL, &ctx, &err)) {
        printf("FAIL cuda context: %s\n", err);
        return 1;
    }
    conv_case(0, 2, 3, 17, 15, 8, 3, 1, 1, 1, 1);
    conv_case(0, 4, 16, 20, 20, 32, 3, 2, 1, 1, 1);
    conv_case(0, 2, 8, 15, 15, 8, 3, 1, 2, 2, 2);
    conv_case(0, 2, 12, 14, 14, 12, 3, 1, 1, 1, 12);
    conv_case(0, 3, 24, 9, 9, 48, 1, 1, 0, 1, 1);
    conv_case(0, 1, 3, 31, 29, 6, 5, 2, 2, 1, 1);
    linear_case(0);
    other_ops();
    graph_ops();
    bf16_ops();
    nms_parity();
    nms_at_threshold();
    timing();
    lathe_kc_free(ctx);
    printf("nn parity: %s (%d failed)\n", failures ? "FAILED" : "ok", failures);
    return failures ? 1 : 0;
#endif
}
