/* fold_internal.h - what both exporters (ONNX, lathe engine) do to a graph first: each layer's view, how many
 * layers read it, and a batch norm folded into the convolution it alone follows. */
#ifndef LATHE_EXPORT_FOLD_INTERNAL_H
#define LATHE_EXPORT_FOLD_INTERNAL_H
#include "libcore/nn/graph.h"

typedef struct {
    int n;                  /* layers */
    lathe_layer_view *v;    /* each layer's view */
    int *uses;              /* how many layers read each layer */
    int *bn_of;             /* a conv's folded BN (its index), else -1 */
    int *folded;            /* 1: a BN folded into the conv before it */
} lathe_fold;

/* Fills f for g. Returns 0 or -LATHE_ENOMEM. */
int lathe_fold_plan(const lathe_graph *g, lathe_fold *f);
void lathe_fold_free(lathe_fold *f);

/* Conv i's weight and bias with its folded BN (if any) applied, malloc'd: w' = w gamma /
 * sqrt(var + eps), b' = (b - mean) gamma / sqrt(var + eps) + beta (b = 0 without a bias).
 * Returns 0 or -LATHE_ENOMEM. */
int lathe_fold_conv(const lathe_fold *f, int i, float **weight, float **bias);
#endif
