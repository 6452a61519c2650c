/* memory.h - what an anomaly head remembers of good parts and how it scores a new patch against it
 * (docs/MULTIMODAL.md, "Anomaly"): PatchCore's memory bank of patch features, cut down by greedy
 * k-center coreset selection, scored by the distance to the nearest remembered patch; and PaDiM's
 * Gaussian per patch position, scored by the Mahalanobis distance. Rows are patch feature vectors. */
#ifndef LATHE_ANOMALY_MEMORY_H
#define LATHE_ANOMALY_MEMORY_H
#include <stddef.h>
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif

/* A d x e random projection (Gaussian entries scaled by 1/sqrt(e), seeded), for rows x -> x P. */
int lathe_random_projection(int d, int e, uint64_t seed, float **out);
/* rows (n x d) times proj (d x e) into out (n x e). */
void lathe_project_rows(const float *rows, size_t n, int d, const float *proj, int e, float *out);

/* Greedy k-center coreset (PatchCore): m of the n rows (d wide), each next one the row farthest from
 * those chosen so far, starting from row `first`; distances are measured in x as given (project it
 * first to make this cheaper). chosen gets m distinct row indices in the order picked. Returns 0,
 * -LATHE_EINVAL (m > n, first >= n) or -LATHE_ENOMEM. */
int lathe_coreset(const float *x, size_t n, int d, size_t m, size_t first, size_t *chosen);

/* Anomaly score of each of nq query rows: the mean Euclidean distance to its k nearest rows of the
 * bank (m x d), into out (nq). Returns 0, -LATHE_EINVAL (k < 1 or k > m) or -LATHE_ENOMEM. */
int lathe_knn_distance(const float *bank, size_t m, const float *q, size_t nq, int d, int k, float *out);

/* Fits a Gaussian per position to n samples of p positions x d features (x: n x p x d, row-major):
 * mean (p x d) and the lower Cholesky factor of covariance + eps I (p x d x d, upper part zero).
 * Returns 0, -LATHE_EINVAL (n < 2, d above LATHE_GAUSS_MAX_DIMS, or a covariance that is not
 * positive definite) or -LATHE_ENOMEM. */
#define LATHE_GAUSS_MAX_DIMS 512
int lathe_gauss_fit(const float *x, size_t n, int p, int d, double eps, float *mean, float *chol);
/* Mahalanobis distance of one sample's p positions (q: p x d) to the fitted Gaussians, into out (p). */
void lathe_gauss_distance(const float *mean, const float *chol, int p, int d, const float *q, float *out);

#ifdef __cplusplus
}
#endif
#endif
