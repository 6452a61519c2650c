/* fold.c - layer views and batch-norm folding shared by the exporters (fold_internal.h). */
#include "fold_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "libcore/base/error.h"

int lathe_fold_plan(const lathe_graph *g, lathe_fold *f) {
    memset(f, 0, sizeof *f);
    if (lathe_graph_ninputs(g) > 1) /* both exporters read one image */
        return lathe_fail(LATHE_EUNSUPPORTED, "a model with %d inputs (an image-and-sensor model) has no exported form "
                                              "yet: one image input only", lathe_graph_ninputs(g));
    f->n = lathe_graph_nlayers(g);
    size_t n = (size_t)f->n;
    f->v = calloc(n, sizeof *f->v), f->uses = calloc(n, sizeof *f->uses);
    f->bn_of = malloc(n * sizeof *f->bn_of), f->folded = calloc(n, sizeof *f->folded);
    if (!f->v || !f->uses || !f->bn_of || !f->folded) {
        lathe_fold_free(f);
        return lathe_fail(LATHE_ENOMEM, "views of %d layers", f->n);
    }
    for (int i = 0; i < f->n; i++) {
        lathe_graph_layer(g, i, &f->v[i]);
        f->bn_of[i] = -1;
        for (int k = 0; k < f->v[i].nin; k++) f->uses[f->v[i].in[k]]++;
    }
    /* a BN folds into a conv when it reads that conv and nothing else does */
    for (int i = 1; i + 1 < f->n; i++)
        if (f->v[i].type == LATHE_LAYER_CONV && f->uses[i] == 1 && f->v[i + 1].type == LATHE_LAYER_BN && f->v[i + 1].in[0] == i)
            f->bn_of[i] = i + 1, f->folded[i + 1] = 1;
    return 0;
}

void lathe_fold_free(lathe_fold *f) {
    free(f->v), free(f->uses), free(f->bn_of), free(f->folded);
    memset(f, 0, sizeof *f);
}

int lathe_fold_conv(const lathe_fold *f, int i, float **weight, float **bias) {
    const lathe_layer_view *l = &f->v[i];
    const lathe_param *pw = l->weight;
    int K = pw->shape[0];
    size_t per = pw->count / (size_t)K;
    float *w = malloc(sizeof(float) * pw->count), *b = malloc(sizeof(float) * (size_t)K);
    if (!w || !b) {
        free(w), free(b);
        return lathe_fail(LATHE_ENOMEM, "weights of %s", l->name);
    }
    memcpy(w, pw->data, sizeof(float) * pw->count);
    for (int k = 0; k < K; k++) b[k] = l->bias ? l->bias->data[k] : 0;
    if (f->bn_of[i] >= 0) {
        const lathe_layer_view *bn = &f->v[f->bn_of[i]];
        for (int k = 0; k < K; k++) {
            double s = bn->weight->data[k] / sqrt((double)bn->running_var->data[k] + bn->eps);
            for (size_t j = 0; j < per; j++) w[(size_t)k * per + j] = (float)(w[(size_t)k * per + j] * s);
            b[k] = (float)((b[k] - bn->running_mean->data[k]) * s + bn->bias->data[k]);
        }
    }
    *weight = w, *bias = b;
    return 0;
}
