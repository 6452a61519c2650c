/* optim_cuda.c - the optimizer's state and updates on the GPU, for a graph that runs there
 * (optim.h). The state arena has the host arena's layout; a step sums each parameter's squared
 * gradients on the device (a fixed-order reduction), copies those sums down to form the global norm
 * on the host exactly as the CPU step does, then runs the fused SGD or AdamW update and the EMA of
 * every parameter on the device. Checkpoints copy the state across with lathe_optim_sync. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "libcore/base/error.h"
#include "optim_internal.h"

#ifdef LATHE_HAVE_CUDA
#include <cuda_runtime_api.h>

#include "kernels/nn_cuda.h"

static size_t arena_floats(const lathe_optim *o) {
    size_t n = 0;
    for (size_t i = 0; i < o->nstate; i++) n += o->state[i].count;
    return n;
}

static int dev_fail(const char *what, const char *error) {
    return lathe_fail(LATHE_EIO, "optimizer %s on the GPU: %s", what, error ? error : "failed");
}

int optim_dev_create(lathe_optim *o) {
    lathe_cuda_ctx *c = lathe_graph_cuda(o->g);
    if (!c) return 0;
    size_t floats = arena_floats(o), np = lathe_graph_nparams(o->g);
    if (cudaMalloc((void **)&o->arena_dev, (floats ? floats : 1) * sizeof(float)) != cudaSuccess ||
        cudaMalloc((void **)&o->norms_dev, (np ? np : 1) * sizeof(double)) != cudaSuccess)
        return lathe_fail(LATHE_ENOMEM, "optimizer state of %zu floats on the GPU", floats);
    if (cudaMemset(o->arena_dev, 0, (floats ? floats : 1) * sizeof(float)) != cudaSuccess)
        return dev_fail("state", cudaGetErrorString(cudaGetLastError()));
    float *at = o->arena_dev;
    int per = optim_slots(&o->o);
    size_t si = 0;
    for (size_t i = 0; i < np; i++) {
        lathe_param *p = lathe_graph_param(o->g, i);
        if (!p->grad) continue;
        for (int s = 0; s < per; s++, si++) {
            o->state[si].data_dev = at, at += p->count;
            /* the EMA starts at the weights, as on the CPU */
            if (o->o.ema > 0 && s == per - 1 &&
                cudaMemcpy(o->state[si].data_dev, p->data_dev, p->count * sizeof(float), cudaMemcpyDeviceToDevice) !=
                    cudaSuccess)
                return dev_fail("EMA", cudaGetErrorString(cudaGetLastError()));
        }
    }
    return 0;
}

void optim_dev_free(lathe_optim *o) {
    if (!o->arena_dev && !o->norms_dev) return;
    cudaFree(o->arena_dev), cudaFree(o->norms_dev);
    o->arena_dev = NULL, o->norms_dev = NULL;
}

int optim_dev_step(lathe_optim *o, double lr, double bias_lr, double *grad_norm) {
    lathe_cuda_ctx *c = lathe_graph_cuda(o->g);
    const char *err = NULL;
    size_t np = lathe_graph_nparams(o->g);
    for (size_t i = 0; i < np; i++) {
        lathe_param *p = lathe_graph_param(o->g, i);
        if (p->grad && !p->frozen && lathe_kc_sumsq(c, p->count, p->grad_dev, &o->norms_dev[i], &err))
            return dev_fail("gradient norm", err);
    }
    if (lathe_graph_wait(o->g)) return -LATHE_EIO; /* wait for the sums */
    if (cudaMemcpy(o->norms, o->norms_dev, np * sizeof(double), cudaMemcpyDeviceToHost) != cudaSuccess)
        return dev_fail("gradient norm", cudaGetErrorString(cudaGetLastError()));
    optim_step st;
    if (optim_begin_step(o, optim_norm(o), grad_norm, &st)) return 1;
    int per = optim_slots(&o->o);
    size_t si = 0;
    for (size_t i = 0; i < np; i++) {
        lathe_param *p = lathe_graph_param(o->g, i);
        if (!p->grad) continue;
        float *m = o->state[si].data_dev, *v = o->o.kind == LATHE_OPT_ADAMW ? o->state[si + 1].data_dev : NULL;
        float *ema = o->o.ema > 0 ? o->state[si + per - 1].data_dev : NULL;
        si += per;
        if (p->frozen) continue;
        float wd = p->decay ? (float)o->o.weight_decay : 0.0f;
        float flr = (float)(optim_is_bias(p) ? bias_lr : lr) * p->lr_scale;
        int rc = o->o.kind == LATHE_OPT_SGD
                     ? lathe_kc_sgd_step(c, p->count, p->data_dev, p->grad_dev, m, flr, (float)o->o.momentum,
                                         o->o.nesterov, wd, st.scale, &err)
                     : lathe_kc_adamw_step(c, p->count, p->data_dev, p->grad_dev, m, v, flr, (float)o->o.beta1,
                                           (float)o->o.beta2, (float)o->o.eps, wd, st.scale, (float)st.c1,
                                           (float)st.c2, &err);
        if (!rc && ema) rc = lathe_kc_ema(c, p->count, ema, p->data_dev, st.decay, &err);
        if (rc) return dev_fail("update", err);
    }
    return 0;
}

int optim_dev_swap_ema(lathe_optim *o) {
    lathe_cuda_ctx *c = lathe_graph_cuda(o->g);
    const char *err = NULL;
    int per = optim_slots(&o->o);
    size_t si = 0;
    for (size_t i = 0; i < lathe_graph_nparams(o->g); i++) {
        lathe_param *p = lathe_graph_param(o->g, i);
        if (!p->grad) continue;
        if (lathe_kc_swap(c, p->count, p->data_dev, o->state[si + per - 1].data_dev, &err)) return dev_fail("EMA", err);
        si += per;
    }
    return 0;
}

int lathe_optim_sync(lathe_optim *o, int to_host) {
    if (!o->arena_dev) return 0;
    if (lathe_graph_wait(o->g)) return -LATHE_EIO;
    size_t bytes = arena_floats(o) * sizeof(float);
    cudaError_t st = to_host ? cudaMemcpy(o->arena, o->arena_dev, bytes, cudaMemcpyDeviceToHost)
                             : cudaMemcpy(o->arena_dev, o->arena, bytes, cudaMemcpyHostToDevice);
    return st == cudaSuccess ? 0 : dev_fail("state copy", cudaGetErrorString(st));
}

#else /* a build without CUDA: graphs never run on a GPU, so there is no device state */

int optim_dev_create(lathe_optim *o) {
    (void)o;
    return 0;
}
void optim_dev_free(lathe_optim *o) { (void)o; }
int optim_dev_step(lathe_optim *o, double lr, double bias_lr, double *grad_norm) {
    (void)o, (void)lr, (void)bias_lr, (void)grad_norm;
    return lathe_fail(LATHE_EINVAL, "lathe was built without CUDA");
}
int optim_dev_swap_ema(lathe_optim *o) {
    (void)o;
    return lathe_fail(LATHE_EINVAL, "lathe was built without CUDA");
}
int lathe_optim_sync(lathe_optim *o, int to_host) {
    (void)o, (void)to_host;
    return 0;
}
#endif
