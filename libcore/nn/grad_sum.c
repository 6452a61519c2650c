/* grad_sum.c - a data-parallel step's gradients summed over the ranks in buckets (grad_sum.h).
 * Backward finishes the parameters from the last layer to the first, so the buckets take the
 * trainable parameters in that order; the graph's backward hook sends each bucket once backward
 * has passed the lowest layer in it. On CPU ranks a bucket's gradients are copied, times this
 * rank's weight, into its stretch of one flat buffer and summed there in place (MPI_Iallreduce),
 * then copied back divided by the step's samples: the same arithmetic as one sum of everything. */
#include "grad_sum.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "libcore/base/error.h"
#include "libcore/dist/dist.h"
#include "ranks_gpu.h"

typedef struct {
    size_t first, count; /* its parameters: order[first .. first + count) */
    size_t off, floats;  /* its stretch of the flat buffer (CPU ranks) */
    int ready_at;        /* the lowest layer it holds: sent once backward is past it */
} bucket;

struct lathe_grad_sum {
    lathe_graph *g;
    size_t *order; /* the trainable parameters' indices, backward's order */
    bucket *b;
    int nb, next;  /* next: the first bucket not yet sent this step */
    float *flat;   /* CPU ranks: every bucket's stretch, side by side */
    float weight, divide;
    int gpu;
};

static int send(lathe_grad_sum *s, const bucket *b) {
    if (s->gpu) return lathe_ranks_gpu_bucket(s->g, s->order + b->first, b->count);
    float *to = s->flat + b->off;
    for (size_t k = 0; k < b->count; k++) {
        const lathe_param *p = lathe_graph_param(s->g, s->order[b->first + k]);
        for (size_t i = 0; i < p->count; i++) to[i] = p->grad[i] * s->weight;
        to += p->count;
    }
    return lathe_dist_sum_f32_start(s->flat + b->off, b->floats);
}

/* The graph's backward hook: sends the buckets backward has finished with the layer it just ran. */
static int layer_done(void *ctx, int layer) {
    lathe_grad_sum *s = ctx;
    while (s->next < s->nb && s->b[s->next].ready_at >= layer) {
        int rc = send(s, &s->b[s->next++]);
        if (rc) return rc;
    }
    return s->gpu ? 0 : lathe_dist_progress(); /* MPI moves the sums along only inside its calls */
}

int lathe_grad_sum_new(lathe_graph *g, double bucket_mb, lathe_grad_sum **out) {
    *out = NULL;
    if (!(bucket_mb >= 0)) return lathe_fail(LATHE_EINVAL, "train.bucket_mb must be 0 or more (MiB), not %g", bucket_mb);
    size_t np = lathe_graph_nparams(g), cap = bucket_mb > 0 ? (size_t)(bucket_mb * (1 << 18)) : SIZE_MAX, floats = 0;
    if (!cap) cap = 1;
    lathe_grad_sum *s = calloc(1, sizeof *s);
    if (s) s->order = malloc((np ? np : 1) * sizeof *s->order), s->b = malloc((np ? np : 1) * sizeof *s->b);
    if (!s || !s->order || !s->b) {
        lathe_grad_sum_free(s);
        return lathe_fail(LATHE_ENOMEM, "gradient buckets of %zu parameters", np);
    }
    s->g = g, s->gpu = lathe_graph_device(g) >= 0;
    size_t n = 0;
    bucket *b = NULL;
    for (size_t i = np; i-- > 0;) { /* parameters are made layer by layer: backward's order is theirs reversed */
        const lathe_param *p = lathe_graph_param(g, i);
        if (!p->grad || p->frozen) continue;
        if (!b || b->floats >= cap) b = &s->b[s->nb++], *b = (bucket){.first = n, .off = floats};
        s->order[n++] = i, b->count++, b->floats += p->count, b->ready_at = p->layer, floats += p->count;
    }
    size_t pieces = 0; /* the started sums a step holds at once (MPI's, made room for now) */
    for (int j = 0; j < s->nb; j++) pieces += (s->b[j].floats + LATHE_DIST_PIECE - 1) / LATHE_DIST_PIECE;
    if (!s->gpu && (!(s->flat = malloc((floats ? floats : 1) * sizeof *s->flat)) || lathe_dist_sum_reserve(pieces))) {
        lathe_grad_sum_free(s);
        return lathe_fail(LATHE_ENOMEM, "gradient buffer of %zu floats", floats);
    }
    lathe_graph_set_backward_hook(g, layer_done, s);
    *out = s;
    return 0;
}

int lathe_grad_sum_begin(lathe_grad_sum *s, int mine, int total, int as_is, int zero) {
    s->next = 0;
    if (s->gpu) /* (agreed: a rank that cannot begin would leave the others waiting for its buckets) */
        return lathe_dist_agree(lathe_ranks_gpu_begin(s->g, as_is ? 1.0f : (float)mine / (float)total, zero, s->nb));
    s->weight = as_is ? 1.0f : (float)mine, s->divide = as_is ? 1.0f : (float)total;
    for (size_t k = 0; zero && k < lathe_graph_nparams(s->g); k++) { /* no backward: the last step's are there */
        lathe_param *p = lathe_graph_param(s->g, k);
        if (p->grad && !p->frozen) memset(p->grad, 0, p->count * sizeof *p->grad);
    }
    return 0;
}

int lathe_grad_sum_finish(lathe_grad_sum *s) {
    int rc = 0;
    while (s->next < s->nb) { /* every rank sends every bucket, whatever happened to its backward */
        int r = send(s, &s->b[s->next++]);
        if (!rc) rc = r;
    }
    if (s->gpu) { /* backward's kernels first (a fault shows there), then agreed: NCCL would wait forever for
                     the sums of a rank that failed to queue them, so then every rank abandons them */
        if (!rc) rc = lathe_graph_wait(s->g);
        rc = lathe_dist_agree(rc);
        int r = lathe_ranks_gpu_finish(s->g, rc != 0);
        return rc ? rc : r;
    }
    int r = lathe_dist_sum_finish();
    if (rc || (rc = r)) return rc;
    const float *from = s->flat;
    for (int j = 0; j < s->nb; j++)
        for (size_t k = 0; k < s->b[j].count; k++) {
            lathe_param *p = lathe_graph_param(s->g, s->order[s->b[j].first + k]);
            for (size_t i = 0; i < p->count; i++) p->grad[i] = from[i] / s->divide;
            from += p->count;
        }
    return 0;
}

int lathe_grad_sum_buckets(const lathe_grad_sum *s) { return s->nb; }
int lathe_grad_sum_sent(const lathe_grad_sum *s) { return s->next; }

void lathe_grad_sum_bucket(const lathe_grad_sum *s, int j, size_t *floats, int *layer) {
    *floats = s->b[j].floats, *layer = s->b[j].ready_at;
}

void lathe_grad_sum_free(lathe_grad_sum *s) {
    if (!s) return;
    if (s->g) lathe_graph_set_backward_hook(s->g, NULL, NULL);
    free(s->order), free(s->b), free(s->flat), free(s);
}
