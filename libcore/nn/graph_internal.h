/* graph_internal.h - the graph's layers and arenas, shared by graph.c (building, the CPU run) and
 * graph_cuda.c (the same layers on a GPU). Nothing outside libcore/nn includes this. */
#ifndef LATHE_NN_GRAPH_INTERNAL_H
#define LATHE_NN_GRAPH_INTERNAL_H
#include "graph.h"
#include "kernels/nn.h"

/* the public lathe_layer_type under short names */
enum {
    L_INPUT = LATHE_LAYER_INPUT, L_CONV = LATHE_LAYER_CONV, L_BN = LATHE_LAYER_BN, L_ACT = LATHE_LAYER_ACT,
    L_MAXPOOL = LATHE_LAYER_MAXPOOL, L_AVGPOOL = LATHE_LAYER_AVGPOOL, L_GAP = LATHE_LAYER_GAP,
    L_UPSAMPLE = LATHE_LAYER_UPSAMPLE, L_CONCAT = LATHE_LAYER_CONCAT, L_ADD = LATHE_LAYER_ADD,
    L_LINEAR = LATHE_LAYER_LINEAR, L_DROPOUT = LATHE_LAYER_DROPOUT, L_LAYERNORM = LATHE_LAYER_LAYERNORM,
    L_ATTENTION = LATHE_LAYER_ATTENTION, L_DETECT = LATHE_LAYER_DETECT, L_L2NORM = LATHE_LAYER_L2NORM,
    L_VOCAB = LATHE_LAYER_VOCAB, L_FILM = LATHE_LAYER_FILM,
};

typedef struct {
    char name[LATHE_GRAPH_NAME_MAX];
    int type, act;
    float slope, drop, eps, momentum;
    float bias_init;           /* conv, vocab: the bias's initial value (a prior, e.g. for detection scores) */
    float scale_init;          /* l2norm, vocab: the log scale's initial value, log(1 / temperature) */
    float max_scale;           /* l2norm: the largest scale (e^s is clamped there) */
    int box;                   /* vocab: the values per anchor passed through (4 x bins) */
    int conv_act;              /* conv: a fused activation (LATHE_ACT_*, slope in `slope`) or -1 */
    int act_after;             /* bn: the act layer run with it on the CPU (lathe_k_bn_act_*, its only
                                  reader), 0 none; such a bn keeps no y or dy of its own */
    int in_bn;                 /* act: run by its input bn (above) */
    int dy_written;            /* its only reader is such a bn, whose backward writes dy whole: not zeroed */
    int y_blockable;           /* conv: its only reader is such a bn, so y and dy may stay in oneDNN's
                                  channel-blocked layout between them (CPU) */
    int y_block;               /* conv: the block of that layout its y and dy are in this step, 0 NCHW */
    int dy_first;              /* the backward step (layer index) that first writes dy, where it is
                                  zeroed: its last reader; itself when nothing reads it; nlayers for
                                  the output. dy shares memory with gradients not live meanwhile */
    size_t dy_off;             /* where dy starts in the gradient region of the activation arena */
    int in[8], nin;
    int c, h, w;               /* output per sample */
    lathe_conv_shape cs;       /* conv: the whole geometry; pools: r, stride, pad */
    int factor;                /* upsample */
    int tokens;                /* concat: along the positions (C x L x 1), not the channels */
    int heads;                 /* attention */
    int pw, pb, prm, prv;      /* parameter indices (-1 none): weight/gamma, bias/beta, running stats
                                  (batch norm) or the output projection (attention) */
    size_t aux_len, int_off;   /* saved values per layer (floats); where its argmax starts in the int arena */
    float *y, *dy, *aux;       /* aux: BN mean+invstd, LN mean+invstd, dropout mask as 0/1 floats */
    int32_t *ints;             /* maxpool argmax */
    float *y_dev, *dy_dev, *aux_dev; /* the same on the GPU (NULL while the graph runs on the CPU) */
    int32_t *ints_dev;
    void *wcache;              /* conv with constant weights: its weights in oneDNN's layout */
    double macs;               /* multiply-accumulates per sample */
} layer;

struct lathe_graph {
    layer *layers;
    int nlayers, batch, train, threads;
    int const_weights;         /* lathe_graph_set_constant_weights: inference only from then on */
    int fused;                 /* some conv has a fused activation: inference only */
    lathe_param *params;
    size_t nparams;
    float *param_arena, *act_arena, *workspace;
    int32_t *int_arena;
    size_t param_floats, act_floats, int_count, workspace_floats;
    size_t grad_floats;        /* the activation gradients at the arena's start (plan_gradients) */
    uint64_t seed;
    int init_torch;            /* model.init: 0 he (bound sqrt(6 / fan_in)), 1 torch (1 / sqrt(fan_in)) */
    int sync_bn;               /* training batch norms take every rank's statistics (bn_sync.c), unfused */
    double *bn_sums;           /* with sync_bn: bn_sync.c's sums, 4 C + 1 for the widest bn; else the
                                  blocked bn kernels' (nn.h) for the widest conv handing over blocked */
    struct graph_gpu *gpu;     /* NULL on the CPU (graph_cuda.c) */
    lathe_backward_hook hook;  /* lathe_graph_set_backward_hook */
    void *hook_ctx;
};

static inline size_t per_sample(const layer *l) { return (size_t)l->c * l->h * l->w; }

/* How a concat layer l lays its input b into its output for n samples: rows of len values (one per
 * sample; with tokens one per (sample, channel)), pitch apart in the output, side by side. */
static inline void concat_rows(const layer *l, const layer *b, int n, size_t *rows, size_t *len, size_t *pitch) {
    *rows = (size_t)n * (l->tokens ? (size_t)l->c : 1);
    *len = l->tokens ? (size_t)b->h * b->w : per_sample(b);
    *pitch = l->tokens ? (size_t)l->h : per_sample(l);
}

/* The dropout mask key of layer i at a step (the elements' index is mixed in by the kernel). */
static inline uint64_t graph_dropout_key(const lathe_graph *g, int i, uint64_t step) {
    return g->seed ^ (step * 0x9e3779b97f4a7c15ull) ^ ((uint64_t)i << 48);
}

/* bn_sync.c: a training batch norm whose statistics are every rank's (g->sync_bn); dx may be NULL.
 * 0, or -LATHE_EIO when the ranks' sums fail. */
int graph_bn_sync_fwd(lathe_graph *g, layer *l, const layer *a, int n);
int graph_bn_sync_bwd(lathe_graph *g, layer *l, const layer *a, int n, float *dx);

/* graph_cuda.c: the run on the GPU (0 or -LATHE_EIO naming the layer), and its release */
int graph_gpu_forward(lathe_graph *g, int n, uint64_t step);
int graph_gpu_backward(lathe_graph *g, int n);
void graph_gpu_free(lathe_graph *g);
#endif
