/* bn_sync.c - synchronized batch norm (train.sync_bn, docs/SCALE.md): in training, a batch norm of a
 * data-parallel run takes its statistics over every rank's samples, as one process with the whole
 * batch would. Forward: the channel sums, then the centred squares around the global mean (the
 * kernel's two passes), each summed over the ranks; the kernel then normalizes with those in place
 * of the running statistics, which get their momentum update after. Backward: the sums of dy and of
 * dy x-hat over the ranks enter dx; the weight and bias gradients stay this rank's (the trainer sums
 * them with the others). Losses are then in the whole step's units on every rank (the trainer
 * scales each rank's output gradient by its share of the step's samples). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "graph_internal.h"
#include "kernels/nn.h"
#include "libcore/base/error.h"
#include "libcore/dist/dist.h"

static float *param(lathe_graph *g, int i) { return g->params[i].data; }
static float *grad(lathe_graph *g, int i) { return i >= 0 && !g->params[i].frozen ? g->params[i].grad : NULL; }

int graph_bn_sync_fwd(lathe_graph *g, layer *l, const layer *a, int n) {
    int c = l->c, hw = l->h * l->w;
    double *s = g->bn_sums, *keep = s + 2 * c + 1; /* made with the graph: nothing here can fail for memory */
    const float *x = a->y;
#pragma omp parallel for schedule(static)
    for (int ch = 0; ch < c; ch++) {
        double t = 0;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < hw; j++) t += x[((size_t)i * c + ch) * hw + j];
        s[ch] = t;
    }
    s[2 * c] = (double)n * hw;
    double *mean = s, *sq = s + c, count;
    int rc = lathe_dist_sum_f64(s, (size_t)c) ? -LATHE_EIO : lathe_dist_sum_f64(s + 2 * c, 1);
    count = s[2 * c];
    if (!rc) {
        for (int ch = 0; ch < c; ch++) mean[ch] /= count;
#pragma omp parallel for schedule(static)
        for (int ch = 0; ch < c; ch++) {
            double t = 0, m = mean[ch];
            for (int i = 0; i < n; i++)
                for (int j = 0; j < hw; j++) {
                    double d = x[((size_t)i * c + ch) * hw + j] - m;
                    t += d * d;
                }
            sq[ch] = t;
        }
        rc = lathe_dist_sum_f64(sq, (size_t)c);
    }
    if (!rc) {
        float *rm = param(g, l->prm), *rv = param(g, l->prv);
        for (int ch = 0; ch < c; ch++) keep[ch] = rm[ch], keep[c + ch] = rv[ch], rm[ch] = (float)mean[ch], rv[ch] = (float)(sq[ch] / count);
        lathe_k_bn_fwd_f32(n, c, hw, x, param(g, l->pw), param(g, l->pb), rm, rv, l->momentum, l->eps, 0, l->aux, l->aux + c, l->y);
        double mo = l->momentum;
        for (int ch = 0; ch < c; ch++) {
            double var = sq[ch] / count;
            rm[ch] = (float)((1 - mo) * keep[ch] + mo * mean[ch]);
            rv[ch] = (float)((1 - mo) * keep[c + ch] + mo * (count > 1 ? var * count / (count - 1) : var));
        }
    }
    return rc ? lathe_fail_context(LATHE_EIO, "layer %s: sync_bn", l->name) : 0;
}

int graph_bn_sync_bwd(lathe_graph *g, layer *l, const layer *a, int n, float *dx) {
    int c = l->c, hw = l->h * l->w;
    double *s = g->bn_sums;
    const float *x = a->y, *dy = l->dy, *mean = l->aux, *invstd = l->aux + c, *gamma = param(g, l->pw);
    float *dgamma = grad(g, l->pw), *dbeta = grad(g, l->pb);
#pragma omp parallel for schedule(static)
    for (int ch = 0; ch < c; ch++) {
        double sdy = 0, sdyx = 0;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < hw; j++) {
                size_t k = ((size_t)i * c + ch) * hw + j;
                sdy += dy[k], sdyx += dy[k] * (double)(x[k] - mean[ch]) * invstd[ch];
            }
        s[ch] = sdy, s[c + ch] = sdyx;
        if (dbeta) dbeta[ch] += (float)sdy; /* this rank's: the trainer adds the ranks' gradients */
        if (dgamma) dgamma[ch] += (float)sdyx;
    }
    s[2 * c] = (double)n * hw;
    int rc = lathe_dist_sum_f64(s, 2 * (size_t)c + 1);
    double count = s[2 * c];
#pragma omp parallel for schedule(static)
    for (int ch = 0; ch < (rc || !dx ? 0 : c); ch++) {
        float gi = gamma[ch] * invstd[ch];
        double sdy = s[ch], sdyx = s[c + ch];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < hw; j++) {
                size_t k = ((size_t)i * c + ch) * hw + j;
                dx[k] += gi * (float)(dy[k] - sdy / count - (x[k] - mean[ch]) * invstd[ch] * sdyx / count);
            }
    }
    return rc ? lathe_fail_context(LATHE_EIO, "layer %s: sync_bn", l->name) : 0;
}
