/* optim.c - SGD and AdamW (optim.h). Updates run per parameter tensor in a fixed order, each
 * element independent and the elements shared among the threads; each tensor's squared-gradient
 * sum runs in element order, and the sums are added in tensor order, so results do not depend on
 * the thread count. */
#include "optim.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libcore/base/error.h"
#include "optim_internal.h"

void lathe_optim_defaults(lathe_optim_opts *o) {
    memset(o, 0, sizeof *o);
    o->kind = LATHE_OPT_ADAMW;
    o->momentum = 0.9, o->beta1 = 0.9, o->beta2 = 0.999, o->eps = 1e-8, o->weight_decay = 0.01;
}

int lathe_optim_create(lathe_graph *g, const lathe_optim_opts *o, lathe_optim **out) {
    *out = NULL;
    if (o->kind != LATHE_OPT_SGD && o->kind != LATHE_OPT_ADAMW) return lathe_fail(LATHE_EINVAL, "unknown optimizer");
    if (o->momentum < 0 || o->momentum >= 1 || o->beta1 < 0 || o->beta1 >= 1 || o->beta2 < 0 || o->beta2 >= 1 ||
        o->eps <= 0 || o->weight_decay < 0 || o->clip < 0 || o->ema < 0 || o->ema >= 1)
        return lathe_fail(LATHE_EINVAL, "optimizer settings out of range");
    lathe_optim *op = calloc(1, sizeof *op);
    int per = optim_slots(o);
    size_t np = lathe_graph_nparams(g), floats = 0, k = 0;
    op->state = op ? calloc(np * per + 1, sizeof *op->state) : NULL;
    for (size_t i = 0; i < np; i++)
        if (lathe_graph_param(g, i)->grad) floats += per * lathe_graph_param(g, i)->count;
    if (op && op->state) op->arena = calloc(floats ? floats : 1, sizeof(float));
    if (op && op->arena) op->norms = calloc(np ? np : 1, sizeof(double));
    if (!op || !op->state || !op->arena || !op->norms) {
        if (op) free(op->arena), free(op->state), free(op);
        return lathe_fail(LATHE_ENOMEM, "optimizer state of %zu floats", floats);
    }
    op->g = g, op->o = *o;
    float *at = op->arena;
    for (size_t i = 0; i < np; i++) {
        lathe_param *p = lathe_graph_param(g, i);
        if (!p->grad) continue;
        for (int s = 0; s < per; s++, k++) {
            int ema_slot = o->ema > 0 && s == per - 1;
            snprintf(op->state[k].name, sizeof op->state[k].name, "%s.%s", p->name,
                     ema_slot ? "ema" : o->kind == LATHE_OPT_SGD ? "momentum" : s == 0 ? "exp_avg" : "exp_avg_sq");
            op->state[k].data = at, op->state[k].count = p->count;
            if (ema_slot) memcpy(at, p->data, p->count * sizeof *at); /* the average starts at the weights */
            at += p->count;
        }
    }
    op->nstate = k;
    int rc = optim_dev_create(op);
    if (rc) {
        lathe_optim_free(op);
        return rc;
    }
    *out = op;
    return 0;
}

void lathe_optim_free(lathe_optim *o) {
    if (!o) return;
    optim_dev_free(o);
    free(o->arena), free(o->norms), free(o->state), free(o);
}

long lathe_optim_steps(const lathe_optim *o) { return o->steps; }
void lathe_optim_set_steps(lathe_optim *o, long steps) { o->steps = steps; }
size_t lathe_optim_nstate(const lathe_optim *o) { return o->nstate; }

float *lathe_optim_state(lathe_optim *o, size_t i, const char **name, size_t *count) {
    if (i >= o->nstate) return NULL;
    if (name) *name = o->state[i].name;
    if (count) *count = o->state[i].count;
    return o->state[i].data;
}

int optim_begin_step(lathe_optim *o, double norm, double *grad_norm, optim_step *st) {
    if (grad_norm) *grad_norm = norm;
    if (!isfinite(norm)) return 1; /* NaN/Inf guard: skip the step, leave weights and state alone */
    st->scale = o->o.clip > 0 && norm > o->o.clip ? (float)(o->o.clip / norm) : 1.0f;
    o->steps++;
    st->c1 = 1 - pow(o->o.beta1, (double)o->steps), st->c2 = 1 - pow(o->o.beta2, (double)o->steps);
    st->decay = (float)fmin(o->o.ema, (1.0 + (double)o->steps) / (10.0 + (double)o->steps));
    return 0;
}

int optim_is_bias(const lathe_param *p) {
    size_t n = strlen(p->name);
    return n >= 4 && !strcmp(p->name + n - 4, "bias");
}

int lathe_optim_step(lathe_optim *o, double lr, double *grad_norm) { return lathe_optim_step_lrs(o, lr, lr, grad_norm); }

/* Below this many values a step runs on one thread (the threads' start costs more). */
enum { THREADED_VALUES = 1 << 16 };

double optim_norm(const lathe_optim *o) {
    double sq = 0;
    for (size_t i = 0; i < lathe_graph_nparams(o->g); i++) {
        const lathe_param *p = lathe_graph_param(o->g, i);
        if (p->grad && !p->frozen) sq += o->norms[i];
    }
    return sqrt(sq);
}

/* The global gradient norm: each tensor's sum in element order (tensors in parallel). */
static double grad_norm_cpu(lathe_optim *o, size_t np, size_t values) {
#pragma omp parallel for schedule(dynamic, 1) if (values > THREADED_VALUES)
    for (size_t i = 0; i < np; i++) {
        const lathe_param *p = lathe_graph_param(o->g, i);
        double s = 0;
        for (size_t k = 0; p->grad && !p->frozen && k < p->count; k++) s += (double)p->grad[k] * p->grad[k];
        o->norms[i] = s;
    }
    return optim_norm(o);
}

/* One tensor's update, in blocks shared among the threads of the enclosing parallel region (nowait:
 * no element depends on another); the EMA follows each block while it is in L1. restrict and
 * -fno-math-errno let the loops vectorize. */
enum { BLOCK = 2048 };

static void ema_blend(size_t first, size_t end, const float *restrict w, float *restrict ema, float decay) {
    for (size_t k = first; k < end; k++) ema[k] = decay * ema[k] + (1 - decay) * w[k];
}

static void update_sgd(size_t n, float *restrict w, const float *restrict g, float *restrict m, float *restrict ema,
                       float scale, float wd, float lr, float mu, int nesterov, float decay) {
#pragma omp for schedule(static) nowait
    for (size_t b = 0; b < n; b += BLOCK) {
        size_t end = n - b < BLOCK ? n : b + BLOCK;
        for (size_t k = b; k < end; k++) {
            float gk = g[k] * scale + wd * w[k];
            m[k] = mu * m[k] + gk;
            w[k] -= lr * (nesterov ? gk + mu * m[k] : m[k]);
        }
        if (ema) ema_blend(b, end, w, ema, decay);
    }
}

static void update_adamw(size_t n, float *restrict w, const float *restrict g, float *restrict m, float *restrict v,
                         float *restrict ema, float scale, float wd, float lr, float b1, float b2, float step,
                         float denom_c, float eps, float decay) {
#pragma omp for schedule(static) nowait
    for (size_t b = 0; b < n; b += BLOCK) {
        size_t end = n - b < BLOCK ? n : b + BLOCK;
        for (size_t k = b; k < end; k++) {
            float gk = g[k] * scale;
            m[k] = b1 * m[k] + (1 - b1) * gk;
            v[k] = b2 * v[k] + (1 - b2) * gk * gk;
            w[k] -= lr * wd * w[k]; /* decoupled weight decay */
            w[k] -= step * m[k] / (sqrtf(v[k]) / denom_c + eps);
        }
        if (ema) ema_blend(b, end, w, ema, decay);
    }
}

int lathe_optim_step_lrs(lathe_optim *o, double lr, double bias_lr, double *grad_norm) {
    if (o->arena_dev) return optim_dev_step(o, lr, bias_lr, grad_norm);
    if (lathe_graph_cuda(o->g))
        return lathe_fail(LATHE_EINVAL, "the optimizer was created before its graph moved to the GPU: create it after");
    size_t np = lathe_graph_nparams(o->g), values = 0;
    for (size_t i = 0; i < np; i++) values += lathe_graph_param(o->g, i)->count;
    optim_step st;
    if (optim_begin_step(o, grad_norm_cpu(o, np, values), grad_norm, &st)) return 1;
    int per = optim_slots(&o->o);
#pragma omp parallel if (values > THREADED_VALUES)
    for (size_t i = 0, si = 0; i < np; i++) { /* every thread walks the tensors, sharing each one's elements */
        lathe_param *p = lathe_graph_param(o->g, i);
        if (!p->grad) continue;
        float *m = o->state[si].data, *v = o->o.kind == LATHE_OPT_ADAMW ? o->state[si + 1].data : NULL;
        float *ema = o->o.ema > 0 ? o->state[si + per - 1].data : NULL;
        si += per;
        if (p->frozen) continue;
        double plr = optim_is_bias(p) ? bias_lr : lr;
        float wd = p->decay ? (float)o->o.weight_decay : 0.0f, flr = (float)plr * p->lr_scale;
        if (o->o.kind == LATHE_OPT_SGD)
            update_sgd(p->count, p->data, p->grad, m, ema, st.scale, wd, flr, (float)o->o.momentum, o->o.nesterov, st.decay);
        else
            update_adamw(p->count, p->data, p->grad, m, v, ema, st.scale, wd, flr, (float)o->o.beta1, (float)o->o.beta2,
                         (float)(plr * p->lr_scale / st.c1), (float)sqrt(st.c2), (float)o->o.eps, st.decay);
    }
    return 0;
}

int lathe_optim_swap_ema(lathe_optim *o) {
    if (!(o->o.ema > 0)) return 0;
    if (o->arena_dev) return optim_dev_swap_ema(o);
    int per = optim_slots(&o->o); /* ema > 0 here */
    size_t si = 0;
    for (size_t i = 0; i < lathe_graph_nparams(o->g); i++) {
        lathe_param *p = lathe_graph_param(o->g, i);
        if (!p->grad) continue;
        float *ema = o->state[si + per - 1].data;
        si += per;
        for (size_t k = 0; k < p->count; k++) {
            float t = p->data[k];
            p->data[k] = ema[k], ema[k] = t;
        }
    }
    return 0;
}

double lathe_schedule_bias_lr(const lathe_schedule *s, long step) {
    if (!(s->warmup_bias_lr > 0) || s->warmup <= 0 || step >= s->warmup) return lathe_schedule_lr(s, step);
    double at_end = lathe_schedule_lr(s, s->warmup); /* where the weights' rate arrives */
    return s->warmup_bias_lr + (at_end - s->warmup_bias_lr) * (double)step / (double)s->warmup;
}

double lathe_schedule_lr(const lathe_schedule *s, long step) {
    if (s->warmup > 0 && step < s->warmup) return s->lr * (double)(step + 1) / (double)s->warmup;
    long span = s->total - s->warmup, t = step - s->warmup;
    double frac = span > 0 ? fmin(1.0, (double)t / (double)span) : 1.0;
    switch (s->kind) {
    case LATHE_SCHED_COSINE: return s->final_lr + (s->lr - s->final_lr) * 0.5 * (1 + cos(M_PI * frac));
    case LATHE_SCHED_LINEAR: return s->lr + (s->final_lr - s->lr) * frac;
    case LATHE_SCHED_STEP: return s->lr * pow(s->step_gamma, s->step_every > 0 ? (double)(t / s->step_every) : 0);
    default: return s->lr;
    }
}
