/* memory.c - the memory bank (coreset, nearest-neighbour distance) and the Gaussian per position of
 * the anomaly heads (memory.h). Distances go through BLAS: |q - b|^2 = |q|^2 + |b|^2 - 2 q.b. */
#include "memory.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu/simd.h"
#include "libcore/base/error.h"
#include "libcore/base/rng.h"

/* LAPACK's Cholesky factorization (OpenBLAS carries LAPACK; Debian ships no LAPACKE header for it) */
extern void dpotrf_(const char *uplo, const int *n, double *a, const int *lda, int *info);

int lathe_random_projection(int d, int e, uint64_t seed, float **out) {
    float *p = malloc(sizeof(float) * (size_t)d * (size_t)e);
    if (!p) return lathe_fail(LATHE_ENOMEM, "a %d x %d projection", d, e);
    uint64_t s = lathe_mix64(seed ^ 0x70726f6aull);
    for (size_t i = 0; i < (size_t)d * (size_t)e; i += 2) { /* Box-Muller, two normals per draw */
        double u = 1 - lathe_rng_unit(&s), v = lathe_rng_unit(&s), r = sqrt(-2 * log(u)) / sqrt((double)e);
        p[i] = (float)(r * cos(2 * M_PI * v));
        if (i + 1 < (size_t)d * (size_t)e) p[i + 1] = (float)(r * sin(2 * M_PI * v));
    }
    *out = p;
    return 0;
}

void lathe_project_rows(const float *rows, size_t n, int d, const float *proj, int e, float *out) {
    if (n) cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, e, d, 1, rows, d, proj, e, 0, out, e);
}

static float sqnorm(const float *x, int d) {
    float s = 0;
    for (int k = 0; k < d; k++) s += x[k] * x[k];
    return s;
}

/* The coreset's rows in blocks of CORESET_BLOCK, each stored dimension by dimension (d x block):
 * the distance update then runs down whole vectors of rows, with no per-row horizontal sums. */
#define CORESET_BLOCK 64

/* best[r] = min(best[r], |row r - c|^2) over one block (xt: d x CORESET_BLOCK). */
LATHE_SIMD_CLONES static void block_update(const float *xt, int d, const float *c, float *best) {
    float acc[CORESET_BLOCK] = {0};
    for (int k = 0; k < d; k++) {
        const float *col = xt + (size_t)k * CORESET_BLOCK;
        float ck = c[k];
        for (int r = 0; r < CORESET_BLOCK; r++) acc[r] += (col[r] - ck) * (col[r] - ck);
    }
    for (int r = 0; r < CORESET_BLOCK; r++) best[r] = acc[r] < best[r] ? acc[r] : best[r];
}

int lathe_coreset(const float *x, size_t n, int d, size_t m, size_t first, size_t *chosen) {
    if (m > n || (n && first >= n)) return lathe_fail(LATHE_EINVAL, "coreset of %zu from %zu rows", m, n);
    size_t nb = (n + CORESET_BLOCK - 1) / CORESET_BLOCK, padded = nb * CORESET_BLOCK;
    float *best = malloc(sizeof(float) * (padded ? padded : 1)), *xt = malloc(sizeof(float) * (padded ? padded : 1) * d);
    float *c = malloc(sizeof(float) * (size_t)d);
    if (!best || !xt || !c) {
        free(best), free(xt), free(c);
        return lathe_fail(LATHE_ENOMEM, "coreset distances of %zu rows", n);
    }
    for (size_t i = 0; i < padded; i++) {
        float *blk = xt + (i / CORESET_BLOCK) * CORESET_BLOCK * (size_t)d;
        for (int k = 0; k < d; k++) blk[(size_t)k * CORESET_BLOCK + i % CORESET_BLOCK] = i < n ? x[i * (size_t)d + k] : 0;
        best[i] = i < n ? INFINITY : -INFINITY; /* padding never becomes the farthest */
    }
    size_t cur = first;
    for (size_t t = 0; t < m; t++) {
        chosen[t] = cur;
        memcpy(c, x + cur * (size_t)d, sizeof(float) * (size_t)d);
        size_t far = cur;
        float far_d = -1;
#pragma omp parallel
        {
            size_t my = cur;
            float my_d = -1;
#pragma omp for schedule(static) nowait
            for (size_t b = 0; b < nb; b++) {
                float *bb = best + b * CORESET_BLOCK;
                block_update(xt + b * CORESET_BLOCK * (size_t)d, d, c, bb);
                for (int r = 0; r < CORESET_BLOCK; r++) /* rows ascend: a tie keeps the lowest index */
                    if (bb[r] > my_d) my_d = bb[r], my = b * CORESET_BLOCK + (size_t)r;
            }
#pragma omp critical
            if (my_d > far_d || (my_d == far_d && my < far)) far_d = my_d, far = my;
        }
        cur = far; /* a chosen row is at distance 0: never picked again while others remain */
    }
    free(best), free(xt), free(c);
    return 0;
}

/* Queries in blocks of this many rows against the whole bank: one BLAS call per block. */
#define KNN_BLOCK 256

int lathe_knn_distance(const float *bank, size_t m, const float *q, size_t nq, int d, int k, float *out) {
    if (k < 1 || (size_t)k > m) return lathe_fail(LATHE_EINVAL, "k = %d nearest of a bank of %zu", k, m);
    float *bn = malloc(sizeof(float) * m), *dot = malloc(sizeof(float) * KNN_BLOCK * m);
    if (!bn || !dot) {
        free(bn), free(dot);
        return lathe_fail(LATHE_ENOMEM, "distances to a bank of %zu rows", m);
    }
    for (size_t j = 0; j < m; j++) bn[j] = sqnorm(bank + j * (size_t)d, d);
    for (size_t first = 0; first < nq; first += KNN_BLOCK) {
        int rows = (int)(nq - first < KNN_BLOCK ? nq - first : KNN_BLOCK);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, (int)m, d, 1, q + first * (size_t)d, d, bank, d, 0,
                    dot, (int)m);
#pragma omp parallel for schedule(static)
        for (int i = 0; i < rows; i++) {
            float qn = sqnorm(q + (first + (size_t)i) * (size_t)d, d), near[16];
            const float *row = dot + (size_t)i * m;
            int kk = k < 16 ? k : 16, have = 0; /* the kk smallest, sorted (k above 16 averages 16) */
            for (size_t j = 0; j < m; j++) {
                float v = qn + bn[j] - 2 * row[j];
                if (have == kk && v >= near[kk - 1]) continue;
                int at = have < kk ? have++ : kk - 1;
                while (at > 0 && near[at - 1] > v) near[at] = near[at - 1], at--;
                near[at] = v;
            }
            double s = 0;
            for (int t = 0; t < kk; t++) s += sqrt(fmax(near[t], 0)); /* rounding can dip below 0 */
            out[first + (size_t)i] = (float)(s / kk);
        }
    }
    free(bn), free(dot);
    return 0;
}

int lathe_gauss_fit(const float *x, size_t n, int p, int d, double eps, float *mean, float *chol) {
    if (n < 2) return lathe_fail(LATHE_EINVAL, "a Gaussian per position needs 2 samples or more, not %zu", n);
    if (d < 1 || d > LATHE_GAUSS_MAX_DIMS)
        return lathe_fail(LATHE_EINVAL, "a Gaussian per position of %d features (1..%d: project them)", d,
                          LATHE_GAUSS_MAX_DIMS);
    double *a = malloc(sizeof(double) * (size_t)d * (size_t)d * 2), *mu = a ? a + (size_t)d * d : NULL;
    if (!a) return lathe_fail(LATHE_ENOMEM, "a %d x %d covariance", d, d);
    int rc = 0;
    size_t stride = (size_t)p * d;
    for (int pos = 0; !rc && pos < p; pos++) {
        const float *x0 = x + (size_t)pos * d;
        for (int k = 0; k < d; k++) {
            double s = 0;
            for (size_t i = 0; i < n; i++) s += x0[i * stride + (size_t)k];
            mu[k] = s / (double)n;
            mean[(size_t)pos * d + k] = (float)mu[k];
        }
        memset(a, 0, sizeof(double) * (size_t)d * d);
        for (size_t i = 0; i < n; i++) { /* lower triangle of sum (x - mu)(x - mu)^T */
            const float *r = x0 + i * stride;
            for (int u = 0; u < d; u++) {
                double du = r[u] - mu[u];
                double *row = a + (size_t)u * d;
                for (int v = 0; v <= u; v++) row[v] += du * (r[v] - mu[v]);
            }
        }
        for (int u = 0; u < d; u++) {
            for (int v = 0; v <= u; v++) a[(size_t)u * d + v] /= (double)(n - 1);
            a[(size_t)u * d + u] += eps;
        }
        /* row-major lower = column-major upper: LAPACK's "U" factor U^T U is our L L^T with L = U^T */
        int info = 0;
        dpotrf_("U", &d, a, &d, &info);
        if (info) rc = lathe_fail(LATHE_EINVAL, "position %d: the covariance is not positive definite (eps %g)", pos, eps);
        float *l = chol + (size_t)pos * d * d;
        for (int u = 0; u < d; u++)
            for (int v = 0; v < d; v++) l[(size_t)u * d + v] = v <= u ? (float)a[(size_t)u * d + v] : 0;
    }
    free(a);
    return rc;
}

void lathe_gauss_distance(const float *mean, const float *chol, int p, int d, const float *q, float *out) {
#pragma omp parallel for schedule(static)
    for (int pos = 0; pos < p; pos++) {
        const float *l = chol + (size_t)pos * d * d, *mu = mean + (size_t)pos * d, *x = q + (size_t)pos * d;
        double z[LATHE_GAUSS_MAX_DIMS], s = 0; /* solve L z = x - mu; the distance is |z| */
        for (int u = 0; u < d; u++) {
            double t = x[u] - mu[u];
            for (int v = 0; v < u; v++) t -= l[(size_t)u * d + v] * z[v];
            z[u] = t / l[(size_t)u * d + u];
            s += z[u] * z[u];
        }
        out[pos] = (float)sqrt(s);
    }
}
