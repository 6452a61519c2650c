/* test_det_loss.c - the detection losses (kernels/det_loss.h): gradients against central finite
 * differences in double precision (IoU-family with overlapping, nested and disjoint boxes; DFL;
 * focal), hand-computed values (perfect boxes cost 0, a known GIoU and CIoU, varifocal's constant weights),
 * and the float build against the double one. */
#include "testutil.h"

#include <math.h>

#include "kernels/det_loss.h"

static uint64_t state = 77;
static double uni(void) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(state >> 11) / 9007199254740992.0;
}

typedef double (*loss_fn)(void *ctx, double *grad);

/* worst relative error between grad and central differences of f over the n values at x */
static double fd_error(loss_fn f, void *ctx, double *x, size_t n, const double *grad) {
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double keep = x[i], h = 1e-6;
        x[i] = keep + h;
        double lp = f(ctx, NULL);
        x[i] = keep - h;
        double lm = f(ctx, NULL);
        x[i] = keep;
        double num = (lp - lm) / (2 * h), e = fabs(num - grad[i]) / fmax(1, fabs(num));
        if (e > worst) worst = e;
    }
    return worst;
}

typedef struct {
    int kind, n;
    double *pred, *target, *weight;
} iou_ctx;
static double iou_f(void *c, double *g) {
    iou_ctx *k = c;
    return lathe_k_iou_loss_f64(k->kind, k->n, k->pred, k->target, k->weight, g);
}

static void iou_losses(void **state_) {
    (void)state_;
    enum { N = 24 };
    double pred[4 * N], target[4 * N], weight[N], grad[4 * N];
    for (int i = 0; i < N; i++) {
        double tx = 50 * uni(), ty = 50 * uni(), tw = 5 + 40 * uni(), th = 5 + 40 * uni();
        double shift = i % 3 == 2 ? 120 : 10 * (uni() - 0.5); /* every third pair disjoint */
        double px = tx + shift + 3 * uni(), py = ty + 6 * (uni() - 0.5), pw = tw * (0.6 + 0.8 * uni()), ph = th * (0.6 + 0.8 * uni());
        double t[4] = {tx, ty, tx + tw, ty + th}, p[4] = {px, py, px + pw, py + ph};
        memcpy(target + 4 * i, t, sizeof t), memcpy(pred + 4 * i, p, sizeof p);
        weight[i] = 0.2 + uni();
    }
    static const char *const names[] = {"giou", "diou", "ciou"};
    for (int kind = 0; kind < 3; kind++) {
        iou_ctx c = {kind, N, pred, target, weight};
        double loss = iou_f(&c, grad);
        assert_true(loss > 0);
        double e = fd_error(iou_f, &c, pred, 4 * N, grad);
        if (e > 1e-6) fail_msg("%s: gradient error %.3g", names[kind], e);
        /* perfect boxes cost nothing */
        iou_ctx same = {kind, N, target, target, weight};
        assert_true(fabs(iou_f(&same, NULL)) < 1e-8);
    }
    /* a hand-computed GIoU: [0,0,2,2] vs [1,1,3,3]: IoU 1/7, enclosing 9, GIoU = 1/7 - 2/9 */
    double a[4] = {0, 0, 2, 2}, b[4] = {1, 1, 3, 3};
    assert_true(fabs(lathe_k_iou_loss_f64(LATHE_IOU_GIOU, 1, a, b, NULL, NULL) - (1 - (1.0 / 7 - 2.0 / 9))) < 1e-8);
    /* a hand-computed CIoU: [0,0,4,2] vs [0,0,2,2]: IoU 1/2, centres 1 apart, enclosing diagonal² 20,
     * v = 4/pi² (atan(2/2) - atan(4/2))², alpha = v / (1 - IoU + v) */
    double cp[4] = {0, 0, 4, 2}, ct[4] = {0, 0, 2, 2}, cv = 4 / (M_PI * M_PI) * pow(atan(1.0) - atan(2.0), 2);
    double ciou = 1 - 0.5 + 1.0 / 20 + cv * cv / (1 - 0.5 + cv);
    assert_true(fabs(lathe_k_iou_loss_f64(LATHE_IOU_CIOU, 1, cp, ct, NULL, NULL) - ciou) < 1e-8);
    /* and DIoU, the same pair without the aspect term: 1 - 1/2 + 1/20 */
    assert_true(fabs(lathe_k_iou_loss_f64(LATHE_IOU_DIOU, 1, cp, ct, NULL, NULL) - 0.55) < 1e-8);
    /* float agrees with double */
    float pf[4 * N], tf[4 * N], wf[N], gf[4 * N];
    for (int i = 0; i < 4 * N; i++) pf[i] = (float)pred[i], tf[i] = (float)target[i];
    for (int i = 0; i < N; i++) wf[i] = (float)weight[i];
    double lf = lathe_k_iou_loss_f32(LATHE_IOU_CIOU, N, pf, tf, wf, gf);
    iou_ctx c = {LATHE_IOU_CIOU, N, pred, target, weight};
    assert_true(fabs(lf - iou_f(&c, grad)) < 1e-4);
}

typedef struct {
    int n, bins;
    double *z, *t, *w;
} dfl_ctx;
static double dfl_f(void *c, double *g) {
    dfl_ctx *k = c;
    return lathe_k_dfl_f64(k->n, k->bins, k->z, k->t, k->w, g);
}

static void dfl_loss(void **state_) {
    (void)state_;
    enum { N = 5, B = 16 };
    double z[N * 4 * B], t[N * 4], w[N], g[N * 4 * B];
    for (int i = 0; i < N * 4 * B; i++) z[i] = 4 * (uni() - 0.5);
    for (int i = 0; i < N * 4; i++) t[i] = (B - 1) * uni();
    t[3] = 0, t[4] = B - 1; /* the ends */
    for (int i = 0; i < N; i++) w[i] = uni() + 0.1;
    dfl_ctx c = {N, B, z, t, w};
    dfl_f(&c, g);
    double e = fd_error(dfl_f, &c, z, N * 4 * B, g);
    if (e > 1e-6) fail_msg("dfl: gradient error %.3g", e);
    /* a sharp distribution on the right bins costs almost nothing */
    double zz[4 * B], tt[4] = {3.25, 0, 7, 14.5};
    for (int s = 0; s < 4; s++)
        for (int j = 0; j < B; j++) {
            int lo = (int)floor(tt[s]);
            double frac = tt[s] - lo;
            double pj = j == lo ? 1 - frac : j == lo + 1 ? frac : 0;
            zz[s * B + j] = pj > 0 ? log(pj) : -60;
        }
    double entropy = 0;
    for (int s = 0; s < 4; s++) {
        double frac = tt[s] - floor(tt[s]);
        if (frac > 0 && frac < 1) entropy -= frac * log(frac) + (1 - frac) * log(1 - frac);
    }
    assert_true(fabs(lathe_k_dfl_f64(1, B, zz, tt, NULL, NULL) - entropy / 4) < 1e-9);
}

typedef struct {
    size_t n;
    double *x, *t;
} focal_ctx;
static double focal_f(void *c, double *g) {
    focal_ctx *k = c;
    return lathe_k_focal_f64(k->n, k->x, k->t, 0.25, 2.0, g);
}

static void focal_and_varifocal(void **state_) {
    (void)state_;
    enum { N = 40 };
    double x[N], t[N], g[N];
    for (int i = 0; i < N; i++) x[i] = 8 * (uni() - 0.5), t[i] = i % 4 == 0 ? uni() : (i % 4 == 1);
    focal_ctx c = {N, x, t};
    focal_f(&c, g);
    double e = fd_error(focal_f, &c, x, N, g);
    if (e > 1e-6) fail_msg("focal: gradient error %.3g", e);
    /* gamma 0 and alpha 0.5 is half the binary cross-entropy */
    double xx[2] = {0.3, -1.2}, tt[2] = {1, 0};
    double bce = (log1p(exp(-0.3)) + log1p(exp(-1.2))) / 2;
    assert_true(fabs(lathe_k_focal_f64(2, xx, tt, 0.5, 0, NULL) - bce / 2) < 1e-12);
    /* varifocal: positives weighted by q, negatives by alpha p^gamma, weights held constant */
    double vx[2] = {0.4, -0.7}, vq[2] = {0.8, 0}, vg[2];
    double p0 = 1 / (1 + exp(-0.4)), p1 = 1 / (1 + exp(0.7));
    double want = 0.8 * ((0.4 > 0 ? 0.4 : 0) - 0.4 * 0.8 + log1p(exp(-0.4))) + 0.75 * p1 * p1 * log1p(exp(-0.7));
    assert_true(fabs(lathe_k_varifocal_f64(2, vx, vq, 0.75, 2, vg) - want) < 1e-12);
    assert_true(fabs(vg[0] - 0.8 * (p0 - 0.8)) < 1e-12 && fabs(vg[1] - 0.75 * p1 * p1 * p1) < 1e-12);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(iou_losses),
        cmocka_unit_test(dfl_loss),
        cmocka_unit_test(focal_and_varifocal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
