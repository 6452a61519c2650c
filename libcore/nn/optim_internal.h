/* optim_internal.h - the optimizer's state, shared by optim.c (the CPU updates) and optim_cuda.c
 * (the same updates on the device copies of a graph that runs on a GPU). */
#ifndef LATHE_NN_OPTIM_INTERNAL_H
#define LATHE_NN_OPTIM_INTERNAL_H
#include "optim.h"

typedef struct {
    char name[112];
    float *data, *data_dev; /* data_dev: the device copy (NULL on the CPU) */
    size_t count;
} state_tensor;

struct lathe_optim {
    lathe_graph *g;
    lathe_optim_opts o;
    float *arena, *arena_dev; /* arena_dev: the state on the GPU, when the graph is there */
    double *norms_dev;        /* device: each parameter's sum of squared gradients */
    double *norms;            /* on the host (a GPU's copied from norms_dev), added in order */
    state_tensor *state;      /* per parameter: 1 (SGD) or 2 (AdamW) tensors (+1 with EMA), in order */
    size_t nstate;
    long steps;
};

/* State tensors per learnable parameter: momentum (SGD) or the two moments (AdamW), then the EMA. */
static inline int optim_slots(const lathe_optim_opts *o) {
    return (o->kind == LATHE_OPT_ADAMW ? 2 : 1) + (o->ema > 0);
}

/* What one step applies to every parameter, from the global gradient norm. */
typedef struct {
    float scale, decay; /* clipping factor, EMA decay */
    double c1, c2;      /* AdamW bias corrections */
} optim_step;

/* 1 for a bias (its name ends in "bias": conv, linear and norm biases, attention's in_proj_bias) */
int optim_is_bias(const lathe_param *p);

/* The global gradient norm from norms: the trained parameters' sums added in parameter order,
 * the same on either device and for any thread count. */
double optim_norm(const lathe_optim *o);

/* Records the norm; returns 1 when it is not finite (skip the step), else counts the step and fills st. */
int optim_begin_step(lathe_optim *o, double norm, double *grad_norm, optim_step *st);

/* optim_cuda.c: the device state (a no-op returning 0 for a graph on the CPU), the step and the
 * EMA exchange on it, and its release */
int optim_dev_create(lathe_optim *o);
int optim_dev_step(lathe_optim *o, double lr, double bias_lr, double *grad_norm);
int optim_dev_swap_ema(lathe_optim *o);
void optim_dev_free(lathe_optim *o);
#endif
