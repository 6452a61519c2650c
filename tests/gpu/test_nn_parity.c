/* test_nn_parity.c - every CUDA nn kernel (kernels/nn_cuda.h) against its CPU twin (kernels/nn.h,
 * float32) on random data, forward and backward (gradients accumulate into non-zero buffers, as in
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
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)g[i] - cpu[i]) / (1 + fabs(cpu[i]));
        if (!(e <= worst)) worst = e;
    }
    int ok = worst <= tol;
    printf("%s %-34s worst %.2e (tol %.0e, %zu values)\n", ok ? "PASS" : "FAIL", what, worst, tol, n);
    failures += !ok;
    free(g);
}

static void conv_case(int n, int c, int h, int w, int k, int r, int stride, int pad, int dil, int groups) {
    lathe_conv_shape s = {n, c, h, w, k, r, r, stride, pad, dil, groups, 0, 0, 1};
    s.p = lathe_k_conv_out(h, r, stride, pad, dil), s.q = lathe_k_conv_out(w, r, stride, pad, dil);
    size_t nx = (size_t)n * c * h * w, nw = (size_t)k * (c / groups) * r * r, ny = (size_t)n * k * s.p * s.q;
    float *x = rnd(nx), *wt = rnd(nw), *b = rnd(k), *dy = rnd(ny), *y = malloc(ny * 4);
    float *dx = rnd(nx), *dw = rnd(nw), *db = rnd(k), *ws = malloc(lathe_k_conv_workspace(&s) * 4);
    float *xg = dev(x, nx), *wg = dev(wt, nw), *bg = dev(b, k), *dyg = dev(dy, ny), *yg = dev(y, ny);
    float *dxg = dev(dx, nx), *dwg = dev(dw, nw), *dbg = dev(db, k);
    lathe_k_conv2d_fwd_f32(&s, x, wt, b, y, ws);
    lathe_k_conv2d_bwd_f32(&s, x, wt, dy, dx, dw, db, ws);
    KC(lathe_kc_conv2d_fwd(ctx, &s, xg, wg, bg, yg, &err_));
    KC(lathe_kc_conv2d_bwd(ctx, &s, xg, wg, dyg, dxg, dwg, dbg, &err_));
    char name[96];
    snprintf(name, sizeof name, "conv %dx%d s%d d%d g%d fwd", r, r, stride, dil, groups);
    compare(name, y, yg, ny, 1e-4);
    snprintf(name, sizeof name, "conv %dx%d s%d d%d g%d dx/dw/db", r, r, stride, dil, groups);
    compare(name, dx, dxg, nx, 1e-4);
    compare(name, dw, dwg, nw, 1e-4);
    compare(name, db, dbg, k, 1e-4);
    free(x), free(wt), free(b), free(dy), free(y), free(dx), free(dw), free(db), free(ws);
    cudaFree(xg), cudaFree(wg), cudaFree(bg), cudaFree(dyg), cudaFree(yg), cudaFree(dxg), cudaFree(dwg), cudaFree(dbg);
}

static void other_ops(void) {
    /* linear */
    int m = 37, d = 53, k = 19;
    float *x = rnd((size_t)m * d), *w = rnd((size_t)k * d), *b = rnd(k), *dy = rnd((size_t)m * k);
    float *y = malloc(sizeof(float) * m * k), *dx = rnd((size_t)m * d), *dw = rnd((size_t)k * d), *db = rnd(k);
    float *xg = dev(x, (size_t)m * d), *wg = dev(w, (size_t)k * d), *bg = dev(b, k), *dyg = dev(dy, (size_t)m * k);
    float *yg = dev(y, (size_t)m * k), *dxg = dev(dx, (size_t)m * d), *dwg = dev(dw, (size_t)k * d), *dbg = dev(db, k);
    lathe_k_linear_fwd_f32(m, d, k, x, w, b, y);
    lathe_k_linear_bwd_f32(m, d, k, x, w, dy, dx, dw, db);
    KC(lathe_kc_linear_fwd(ctx, m, d, k, xg, wg, bg, yg, &err_));
    KC(lathe_kc_linear_bwd(ctx, m, d, k, xg, wg, dyg, dxg, dwg, dbg, &err_));
    compare("linear fwd", y, yg, (size_t)m * k, 1e-5);
    compare("linear dx", dx, dxg, (size_t)m * d, 1e-5);
    compare("linear dw", dw, dwg, (size_t)k * d, 1e-5);
    compare("linear db", db, dbg, k, 1e-5);

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
    conv_case(2, 3, 17, 15, 8, 3, 1, 1, 1, 1);
    conv_case(4, 16, 20, 20, 32, 3, 2, 1, 1, 1);
    conv_case(2, 8, 15, 15, 8, 3, 1, 2, 2, 2);
    conv_case(2, 12, 14, 14, 12, 3, 1, 1, 1, 12);
    conv_case(3, 24, 9, 9, 48, 1, 1, 0, 1, 1);
    conv_case(1, 3, 31, 29, 6, 5, 2, 2, 1, 1);
    other_ops();
    nms_parity();
    timing();
    lathe_kc_free(ctx);
    printf("nn parity: %s (%d failed)\n", failures ? "FAILED" : "ok", failures);
    return failures ? 1 : 0;
#endif
}
