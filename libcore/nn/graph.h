/* graph.h - a model as a static graph, built once from its YAML description (docs/MODELS.md):
 * shapes inferred, every parameter in one arena, every activation and gradient in another, so a
 * training step allocates nothing. It runs on the CPU (kernels/nn.h) or, after lathe_graph_set_device,
 * on a CUDA GPU (kernels/nn_cuda.h): the same layers, the same results within float rounding.
 * Shape letters: N batch, C channels, H W spatial, K classes. Activations are NCHW float32. */
#ifndef LATHE_NN_GRAPH_H
#define LATHE_NN_GRAPH_H
#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#ifdef __cplusplus
extern "C" {
#endif

typedef struct lathe_graph lathe_graph;

/* Layer names hold up to LATHE_GRAPH_NAME_MAX - 1 characters. */
#define LATHE_GRAPH_NAME_MAX 64

/* One learnable (or running-statistics) tensor, named like PyTorch's state_dict keys. */
typedef struct {
    char name[96];      /* "<layer>.weight", ".bias", ".running_mean", ".running_var" */
    float *data, *grad; /* grad is NULL for buffers (running statistics) */
    size_t count;
    int shape[4], rank;
    int decay;          /* 1: weight decay applies (conv and linear weights), 0: biases and norms */
    int frozen;         /* 1: the optimizer leaves it alone (lathe_graph_freeze) */
    float lr_scale;     /* its learning rate is the schedule's times this (1 unless a group sets it) */
    int layer;          /* the index of the layer that owns it (lathe_graph_set_backward_hook) */
    float *data_dev, *grad_dev; /* the device copies while the graph runs on a GPU, else NULL; data is
                                   then current only after lathe_graph_sync(g, 1) */
} lathe_param;

/* Builds the graph of `model` (the `model` mapping of a spec) for batches of up to `batch`, its
 * blocks (cbs, csp, sppf, resnet) first expanded into primitive layers (blocks.h).
 * Returns 0, -LATHE_EINVAL naming the layer and the problem (unknown type, shapes that do not fit,
 * an unknown input name, a bad block argument), or -LATHE_ENOMEM. Parameters are initialized from
 * `seed` (Kaiming uniform for conv and linear weights, zero biases, BN gamma 1 beta 0). */
int lathe_graph_build(const cJSON *model, int batch, uint64_t seed, lathe_graph **out);
/* The model's bounds, one set for a spec's check (spec_check.c), the builder (which also reads
 * models that come without a spec: an engine's) and the block expansion: model.width and
 * model.depth in (0, SCALE_MAX], a layer's repeat 1..REPEAT_MAX, an input or upsampled side
 * 1..SIDE_MAX, model.bins 2..BINS_MAX, model.classes 1..CLASSES_MAX. */
enum {
    LATHE_MODEL_SCALE_MAX = 64,
    LATHE_MODEL_REPEAT_MAX = 1000,
    LATHE_MODEL_SIDE_MAX = 65536,
    LATHE_MODEL_BINS_MAX = 256,
    LATHE_MODEL_CLASSES_MAX = 65536
};
void lathe_graph_free(lathe_graph *g);

/* The input buffer (batch, C, H, W) to fill before forward, and its shape. */
float *lathe_graph_input(lathe_graph *g, int *c, int *h, int *w);
/* A model may declare further inputs among its layers ({name: sensors, type: input, shape: [C, H, W]}:
 * a second branch starts there; `from` and the layers after it read it like any layer). The buffer
 * of the input layer called name ("input" is the first), to fill before forward as the first, and
 * its shape; NULL when there is no such input. Fetch it again after lathe_graph_set_device. */
float *lathe_graph_input_named(lathe_graph *g, const char *name, int *c, int *h, int *w);
/* Input layers (1, or more when the model declares further inputs). */
int lathe_graph_ninputs(const lathe_graph *g);
/* The output (N, K) of the last forward and the buffer for its gradient (filled by the caller). */
const float *lathe_graph_output(const lathe_graph *g, int *k);
float *lathe_graph_doutput(lathe_graph *g);
/* train 1: batch norm uses batch statistics and dropout drops; 0: inference behaviour. */
void lathe_graph_set_train(lathe_graph *g, int train);
/* Runs the layers on the first n (<= batch) samples. `step` seeds dropout (deterministic). On a GPU
 * the input is copied up first and the output back after. Returns 0, or -LATHE_EIO naming the
 * layer when a GPU call fails (the CPU run cannot fail). */
int lathe_graph_forward(lathe_graph *g, int n, uint64_t step);
/* Zeroes every gradient, then back-propagates doutput through the graph (frozen parameters get no
 * gradient; activations still do, so layers below a frozen one still learn). Returns as forward. */
int lathe_graph_backward(lathe_graph *g, int n);

/* Moves the graph to `device`: "cpu" (no change), "cuda" or "cuda:N" (that GPU; an error when none
 * can be used), or "auto" (the first GPU when one can be used, else the CPU, saying which). With
 * several ranks (libcore/dist) "cuda" and "auto" mean the GPU of the rank's place on its node. Call it
 * once, before training or inference and before creating an optimizer; parameters are copied up,
 * and the input buffer moves to pinned memory (fetch lathe_graph_input again, then fill it).
 * "auto" also falls back to the CPU when the GPU cannot take the graph (memory). Returns 0, -LATHE_EINVAL (a bad
 * name), -LATHE_ENOTFOUND (no such GPU, or a build without CUDA) or -LATHE_ENOMEM / -LATHE_EIO. */
int lathe_graph_set_device(lathe_graph *g, const char *device);
/* A device name's CUDA ordinal: "cuda" -> 0, "cuda:N" -> N; -1 for anything else ("cpu", "auto"). */
int lathe_cuda_ordinal(const char *device);
/* "fp32" (the default) or "bf16": on a GPU, convolutions and linear layers round their operands to
 * bf16 and multiply on the tensor cores with float32 accumulation; weights (the master copies),
 * activations, gradients and the optimizer stay float32. bf16 on the CPU is -LATHE_EINVAL. Call it
 * after lathe_graph_set_device; returns 0, -LATHE_EINVAL or -LATHE_ENOMEM (the bf16 scratch). */
int lathe_graph_set_precision(lathe_graph *g, const char *precision);
/* Declares that g's parameters will not change again (an inference engine, after its weights are
 * loaded): on the CPU each convolution then keeps its weights in oneDNN's layout instead of
 * converting them on every forward. Backward is refused from then on (-LATHE_EINVAL). */
void lathe_graph_set_constant_weights(lathe_graph *g);
/* -1 on the CPU, else the CUDA device ordinal. */
int lathe_graph_device(const lathe_graph *g);
/* Copies every parameter and buffer to the host (to_host 1) or from it (0); a no-op on the CPU.
 * Checkpoints call it: saving reads host copies, loading writes them. */
int lathe_graph_sync(lathe_graph *g, int to_host);
/* Waits for the work queued on the GPU (0 at once on the CPU); -LATHE_EIO when a kernel failed. */
int lathe_graph_wait(lathe_graph *g);
/* The kernels' context (lathe_cuda_ctx of kernels/nn_cuda.h) of a graph on a GPU, else NULL: the
 * optimizer updates the device copies through it. It also makes that GPU current for the thread. */
void *lathe_graph_cuda(lathe_graph *g);

/* Called by lathe_graph_backward after each layer's backward, with the layer's index, highest first
 * (on a GPU once the layer's kernels are queued on the graph's stream: lathe_graph_stream): a
 * parameter's gradient is final once the hook has seen its layer (lathe_param.layer), so the
 * gradients can travel while backward goes on. A non-zero return ends backward with that error.
 * fn NULL removes it. */
typedef int (*lathe_backward_hook)(void *ctx, int layer);
void lathe_graph_set_backward_hook(lathe_graph *g, lathe_backward_hook fn, void *ctx);
/* The CUDA stream (a cudaStream_t) the graph's kernels run on, or NULL on the CPU. */
void *lathe_graph_stream(lathe_graph *g);

size_t lathe_graph_nparams(const lathe_graph *g);
lathe_param *lathe_graph_param(lathe_graph *g, size_t i);
lathe_param *lathe_graph_find_param(lathe_graph *g, const char *name);
/* Freezes (frozen = 1) the parameters whose names match the fnmatch pattern, or whose layer name
 * starts with it followed by '.'; returns how many. */
size_t lathe_graph_freeze(lathe_graph *g, const char *pattern);
/* Sets lr_scale of the parameters matching pattern (as lathe_graph_freeze matches); returns how many. */
size_t lathe_graph_set_lr_scale(lathe_graph *g, const char *pattern, float scale);
/* Layers, output shapes, parameters and multiply-accumulates per sample, as a table. */
void lathe_graph_summary(const lathe_graph *g, FILE *out);
/* When the graph ends in a `detect` layer: the stride (input size / map size) of each level it
 * gathers, into strides (max entries); returns the number of levels, 0 for another last layer, or
 * -1 when a level's map does not divide the input evenly or there are more than max levels. */
int lathe_graph_detect_levels(const lathe_graph *g, int *strides, int max);
/* The layer types a graph is built of (docs/MODELS.md), as lathe_graph_layer reports them. */
typedef enum {
    LATHE_LAYER_INPUT, LATHE_LAYER_CONV, LATHE_LAYER_BN, LATHE_LAYER_ACT, LATHE_LAYER_MAXPOOL, LATHE_LAYER_AVGPOOL,
    LATHE_LAYER_GAP, LATHE_LAYER_UPSAMPLE, LATHE_LAYER_CONCAT, LATHE_LAYER_ADD, LATHE_LAYER_LINEAR,
    LATHE_LAYER_DROPOUT, LATHE_LAYER_LAYERNORM, LATHE_LAYER_ATTENTION, LATHE_LAYER_DETECT, LATHE_LAYER_L2NORM, LATHE_LAYER_VOCAB,
    LATHE_LAYER_FILM,
} lathe_layer_type;

/* One layer as code that walks the graph sees it (the exporter): what it computes, from which
 * layers (indices below its own), its output shape per sample and its tensors. Layer 0 is the input. */
typedef struct {
    const char *name;
    lathe_layer_type type;
    int act;                    /* ACT: LATHE_ACT_* (kernels/nn.h) */
    float slope;                /* ACT leaky: the negative slope */
    int in[8], nin;
    int c, h, w;                /* output per sample (DETECT: c anchors, w values per anchor) */
    int k, stride, pad;         /* CONV, MAXPOOL, AVGPOOL: square window, stride, padding per side */
    int dilation, groups;       /* CONV */
    int conv_act;               /* CONV: an activation fused into it (LATHE_ACT_*, slope above) or -1 */
    int y_block;                /* CONV on the CPU: the channel block of oneDNN's layout its output went to its
                                   bn in at the last forward pass (docs/ARCHITECTURE.md), 0 NCHW */
    int factor;                 /* UPSAMPLE: nearest-neighbour factor */
    int tokens;                 /* CONCAT: along the positions (each input's H x W after one another, C x L x 1) */
    int heads;                  /* ATTENTION */
    float eps;                  /* BN, LAYERNORM */
    const lathe_param *weight, *bias; /* CONV, LINEAR (bias may be NULL); BN, LAYERNORM gamma and beta;
                                         ATTENTION the input projection (3 D x D, 3 D); VOCAB the text
                                         rows (K x E) and the bias (1) */
    const lathe_param *log_scale;     /* L2NORM, VOCAB: the learned log scale (1) */
    const lathe_param *running_mean, *running_var; /* BN */
    const lathe_param *out_weight, *out_bias;      /* ATTENTION: the output projection (D x D, D) */
} lathe_layer_view;

int lathe_graph_nlayers(const lathe_graph *g);
/* The layer type name of activation act (LATHE_ACT_*: "relu", "silu", ...), as a model's YAML and a
 * conv's act: spell it; NULL for another value. */
const char *lathe_graph_act_name(int act);
/* Fills v for layer i (0 <= i < lathe_graph_nlayers); -LATHE_EINVAL for another i. */
int lathe_graph_layer(const lathe_graph *g, int i, lathe_layer_view *v);

/* Total learnable parameters and forward FLOPs (2 x MACs) per sample. */
size_t lathe_graph_param_count(const lathe_graph *g);
double lathe_graph_flops(const lathe_graph *g);

#ifdef __cplusplus
}
#endif
#endif
