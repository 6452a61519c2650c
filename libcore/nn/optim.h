/* optim.h - optimizers over a graph's parameters (SGD with momentum/Nesterov, AdamW), learning-rate
 * schedules with warmup, global-norm gradient clipping and a NaN/Inf guard. State lives in one
 * arena allocated at creation; a step allocates nothing. Frozen parameters are skipped; weight decay
 * applies only to parameters with decay set (conv and linear weights), never to biases and norms. */
#ifndef LATHE_NN_OPTIM_H
#define LATHE_NN_OPTIM_H
#include <stddef.h>

#include "graph.h"
#ifdef __cplusplus
extern "C" {
#endif

enum { LATHE_OPT_SGD, LATHE_OPT_ADAMW };
enum { LATHE_SCHED_CONSTANT, LATHE_SCHED_COSINE, LATHE_SCHED_LINEAR, LATHE_SCHED_STEP };

typedef struct {
    int kind;                 /* LATHE_OPT_* */
    double momentum;          /* SGD (0.9) */
    int nesterov;             /* SGD */
    double beta1, beta2, eps; /* AdamW (0.9, 0.999, 1e-8) */
    double weight_decay;      /* decoupled for AdamW, L2 added to the gradient for SGD */
    double clip;              /* global gradient-norm limit, 0 = none */
    double ema;               /* EMA decay of the weights (0 = none): ema = d ema + (1 - d) w after each
                                 step, d ramped as min(ema, (1 + steps) / (10 + steps)) */
} lathe_optim_opts;

typedef struct {
    int kind;                 /* LATHE_SCHED_* */
    double lr, final_lr;      /* peak and final learning rate */
    long warmup, total;       /* steps: linear warmup from 0, then the schedule until total */
    double step_gamma;        /* STEP: multiply by gamma ... */
    long step_every;          /* ... every this many steps after warmup */
    double warmup_bias_lr;    /* > 0: during warmup biases (parameters named *bias) start at this
                                 rate and fall linearly to lr, as YOLOv5/v8 warm them; 0: they rise
                                 from 0 like the weights */
} lathe_schedule;

typedef struct lathe_optim lathe_optim;

void lathe_optim_defaults(lathe_optim_opts *o);
int lathe_optim_create(lathe_graph *g, const lathe_optim_opts *o, lathe_optim **out);
void lathe_optim_free(lathe_optim *o);
/* Applies one update at learning rate lr. Returns 0, or 1 when a gradient held NaN or Inf (the
 * step is skipped, nothing changes), or -LATHE_EIO when a GPU call fails. *grad_norm (may be NULL)
 * gets the global norm before clipping. For a graph on a GPU the state lives there too and the
 * update runs there (the same fused updates, kernels/nn_cuda.h). */
int lathe_optim_step(lathe_optim *o, double lr, double *grad_norm);
/* The same with a separate rate for the biases (parameters whose name ends in "bias"): the step of
 * a schedule with warmup_bias_lr (lathe_schedule_bias_lr). */
int lathe_optim_step_lrs(lathe_optim *o, double lr, double bias_lr, double *grad_norm);
/* Exchanges the weights with their EMA (no-op without ema); call again to exchange back. Used to
 * evaluate and save with the averaged weights. Returns 0 or -LATHE_EIO (a GPU call failed). */
int lathe_optim_swap_ema(lathe_optim *o);
/* Copies the state to the host (to_host 1) or from it (0) when it lives on a GPU; else a no-op.
 * Checkpoints call it around lathe_optim_state. */
int lathe_optim_sync(lathe_optim *o, int to_host);
/* Steps taken (skipped ones excluded). */
long lathe_optim_steps(const lathe_optim *o);
void lathe_optim_set_steps(lathe_optim *o, long steps);
/* The state tensors, for checkpoints: name ("<param>.momentum", ".exp_avg", ".exp_avg_sq", ".ema"), data. */
size_t lathe_optim_nstate(const lathe_optim *o);
float *lathe_optim_state(lathe_optim *o, size_t i, const char **name, size_t *count);

double lathe_schedule_lr(const lathe_schedule *s, long step);
/* The biases' rate at step: lathe_schedule_lr's, except during a warmup with warmup_bias_lr > 0. */
double lathe_schedule_bias_lr(const lathe_schedule *s, long step);

#ifdef __cplusplus
}
#endif
#endif
