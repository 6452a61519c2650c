/* infonce.c - the symmetric InfoNCE loss of image-text batches (contrastive.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "contrastive.h"

/* softmax cross-entropy of one row or column of logits (stride apart) against the uniform target
 * over the entries whose id equals `id`; adds (p - t) * scale into the gradient g (same stride) */
static double soft_ce(int n, const double *logits, size_t stride, const int32_t *ids, int32_t id, double scale,
                      double *g) {
    double mx = -INFINITY, sum = 0, hits = 0, loss = 0;
    for (int j = 0; j < n; j++) mx = fmax(mx, logits[j * stride]), hits += ids[j] == id;
    for (int j = 0; j < n; j++) sum += exp(logits[j * stride] - mx);
    double lse = mx + log(sum);
    for (int j = 0; j < n; j++) {
        double t = ids[j] == id ? 1 / hits : 0, p = exp(logits[j * stride] - lse);
        loss -= t ? t * (logits[j * stride] - lse) : 0;
        g[j * stride] += (p - t) * scale;
    }
    return loss;
}

double lathe_infonce(int n, int d, const float *img, const float *txt, const int32_t *text_id, float *dimg) {
    if (n < 1) return 0;
    double *logits = malloc(sizeof(double) * n * n), *g = calloc((size_t)n * n, sizeof(double));
    if (!logits || !g) {
        free(logits), free(g);
        return NAN;
    }
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            double s = 0;
            for (int k = 0; k < d; k++) s += (double)img[(size_t)i * d + k] * txt[(size_t)j * d + k];
            logits[(size_t)i * n + j] = s;
        }
    double loss = 0, scale = 0.5 / n;
    for (int i = 0; i < n; i++) /* image i against every text */
        loss += soft_ce(n, logits + (size_t)i * n, 1, text_id, text_id[i], scale, g + (size_t)i * n);
    for (int j = 0; j < n; j++) /* text j against every image */
        loss += soft_ce(n, logits + j, (size_t)n, text_id, text_id[j], scale, g + j);
    if (dimg)
        for (int i = 0; i < n; i++)
            for (int k = 0; k < d; k++) {
                double s = 0;
                for (int j = 0; j < n; j++) s += g[(size_t)i * n + j] * txt[(size_t)j * d + k];
                dimg[(size_t)i * d + k] = (float)s;
            }
    free(logits), free(g);
    return loss * scale;
}
