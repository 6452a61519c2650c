/* test_optim.c - the CPU optimizers against a float64 reference written here from PyTorch's
 * documented update rules (torch.optim.SGD with momentum and Nesterov, torch.optim.AdamW), over
 * several steps: weight decay only on conv and linear weights, per-parameter learning-rate scales,
 * frozen parameters left alone, the biases' own rate (YOLO's bias warmup), global-norm clipping, the EMA of the weights and its swap, the
 * NaN/Inf guard (the step is skipped and nothing changes), and the learning-rate schedules; on a
 * graph large enough for the threaded step too, whose results must not depend on the thread count. */
#include "testutil.h"

#include <math.h>
#include <omp.h>

#include "libcore/base/config.h"
#include "libcore/base/error.h"
#include "libcore/nn/graph.h"
#include "libcore/nn/optim.h"

enum { STEPS = 6 };

typedef struct {
    const char *what;
    int kind, nesterov;
    double wd, clip, ema;
    int freeze_conv;      /* freezes c.* */
    float fc_lr_scale;    /* lr_scale of fc.* */
    double bias_factor;   /* > 0: biases (c.bias, n.bias, fc.bias) step at this times the weights' rate */
} optim_case;

static lathe_graph *graph_of(const char *input, int conv_out, int k) {
    char text[512];
    snprintf(text, sizeof text,
             "input: %s\nclasses: 3\nlayers:\n  - {name: c, type: conv, out: %d, k: %d}\n"
             "  - {name: n, type: bn}\n  - {type: gap}\n  - {name: fc, type: linear, out: classes}\n",
             input, conv_out, k);
    cJSON *m;
    assert_int_equal(lathe_config_parse(text, "model", &m), 0);
    lathe_graph *g;
    assert_int_equal(lathe_graph_build(m, 2, 3, &g), 0);
    cJSON_Delete(m);
    return g;
}

static lathe_graph *small_graph(void) { return graph_of("[2, 3, 3]", 2, 1); }

/* 74,523 values: over the size where a step shares its elements among threads, and not a whole
 * number of the step's blocks */
static lathe_graph *large_graph(void) { return graph_of("[64, 4, 4]", 128, 3); }

/* The reference's copy of every trainable parameter and its state, in float64. */
typedef struct {
    lathe_param *p;
    double *w, *m, *v, *ema;
} ref_param;

static double grad_value(size_t param, size_t k, int step) { return sin(0.37 * (double)(k + 1) + 1.3 * param + 0.71 * step); }

/* The optimizer a case describes: the defaults with its kind, Nesterov, decay, clipping and EMA */
static lathe_optim_opts case_opts(const optim_case *oc) {
    lathe_optim_opts o;
    lathe_optim_defaults(&o);
    o.kind = oc->kind, o.nesterov = oc->nesterov, o.weight_decay = oc->wd, o.clip = oc->clip, o.ema = oc->ema;
    return o;
}

static void check_case(const optim_case *oc, lathe_graph *(*build)(void)) {
    lathe_graph *g = build();
    if (oc->freeze_conv) assert_int_equal(lathe_graph_freeze(g, "c"), 2);
    size_t np = lathe_graph_nparams(g), nr = 0;
    ref_param ref[16];
    assert_true(np <= 16);
    for (size_t i = 0; i < np; i++) {
        lathe_param *p = lathe_graph_param(g, i);
        if (!p->grad) continue; /* running statistics */
        /* weight decay: conv and linear weights only */
        int weight = strstr(p->name, ".weight") && p->name[0] != 'n';
        assert_int_equal(p->decay, weight);
        if (!strncmp(p->name, "fc.", 3)) p->lr_scale = oc->fc_lr_scale;
        ref_param *r = &ref[nr++];
        r->p = p, r->w = calloc(p->count, 8), r->m = calloc(p->count, 8), r->v = calloc(p->count, 8);
        r->ema = calloc(p->count, 8);
        for (size_t k = 0; k < p->count; k++) r->w[k] = r->ema[k] = p->data[k];
    }
    lathe_optim_opts o = case_opts(oc);
    lathe_optim *opt;
    assert_int_equal(lathe_optim_create(g, &o, &opt), 0);
    for (int t = 1; t <= STEPS; t++) {
        double lr = 0.05 / t, sq = 0;
        for (size_t i = 0; i < nr; i++)
            for (size_t k = 0; k < ref[i].p->count; k++) {
                ref[i].p->grad[k] = (float)grad_value(i, k, t);
                if (!ref[i].p->frozen) sq += (double)ref[i].p->grad[k] * ref[i].p->grad[k];
            }
        double norm;
        double bias_lr = oc->bias_factor > 0 ? lr * oc->bias_factor : lr;
        assert_int_equal(oc->bias_factor > 0 ? lathe_optim_step_lrs(opt, lr, bias_lr, &norm) : lathe_optim_step(opt, lr, &norm), 0);
        assert_true(fabs(norm - sqrt(sq)) <= 1e-6 * sqrt(sq));
        double scale = oc->clip > 0 && norm > oc->clip ? oc->clip / norm : 1;
        double decay = fmin(oc->ema, (1.0 + t) / (10.0 + t));
        for (size_t i = 0; i < nr; i++) {
            ref_param *r = &ref[i];
            int bias = !strcmp(r->p->name + strlen(r->p->name) - 5, ".bias");
            double plr = (bias ? bias_lr : lr) * r->p->lr_scale, wd = r->p->decay ? oc->wd : 0;
            for (size_t k = 0; k < r->p->count && !r->p->frozen; k++) {
                double gk = r->p->grad[k] * scale;
                if (oc->kind == LATHE_OPT_SGD) { /* L2 decay into the gradient, momentum buffer, Nesterov look-ahead */
                    gk += wd * r->w[k];
                    r->m[k] = o.momentum * r->m[k] + gk;
                    r->w[k] -= plr * (oc->nesterov ? gk + o.momentum * r->m[k] : r->m[k]);
                } else { /* decoupled decay, then the bias-corrected Adam step */
                    r->w[k] *= 1 - plr * wd;
                    r->m[k] = o.beta1 * r->m[k] + (1 - o.beta1) * gk;
                    r->v[k] = o.beta2 * r->v[k] + (1 - o.beta2) * gk * gk;
                    double c1 = 1 - pow(o.beta1, t), c2 = 1 - pow(o.beta2, t);
                    r->w[k] -= plr / c1 * r->m[k] / (sqrt(r->v[k]) / sqrt(c2) + o.eps);
                }
            }
            for (size_t k = 0; k < r->p->count && oc->ema > 0; k++) r->ema[k] = decay * r->ema[k] + (1 - decay) * r->w[k];
        }
    }
    assert_int_equal(lathe_optim_steps(opt), STEPS);
    for (size_t i = 0; i < nr; i++)
        for (size_t k = 0; k < ref[i].p->count; k++)
            if (fabs(ref[i].p->data[k] - ref[i].w[k]) > 1e-5 * (1 + fabs(ref[i].w[k])))
                fail_msg("%s: %s[%zu] is %.8f, the reference %.8f", oc->what, ref[i].p->name, k, ref[i].p->data[k], ref[i].w[k]);
    if (oc->ema > 0) { /* the swap puts the average in the weights, and back */
        assert_int_equal(lathe_optim_swap_ema(opt), 0);
        for (size_t i = 0; i < nr; i++)
            for (size_t k = 0; k < ref[i].p->count; k++)
                if (fabs(ref[i].p->data[k] - ref[i].ema[k]) > 1e-5 * (1 + fabs(ref[i].ema[k])))
                    fail_msg("%s: EMA of %s[%zu] is %.8f, the reference %.8f", oc->what, ref[i].p->name, k,
                             ref[i].p->data[k], ref[i].ema[k]);
        assert_int_equal(lathe_optim_swap_ema(opt), 0);
        assert_true(fabs(ref[0].p->data[0] - ref[0].w[0]) <= 1e-5 * (1 + fabs(ref[0].w[0])));
    }
    lathe_optim_free(opt);
    for (size_t i = 0; i < nr; i++) free(ref[i].w), free(ref[i].m), free(ref[i].v), free(ref[i].ema);
    lathe_graph_free(g);
}

static void updates_match_the_reference(void **state) {
    (void)state;
    static const optim_case cases[] = {
        {"sgd momentum", LATHE_OPT_SGD, 0, 0, 0, 0, 0, 1, 0},
        {"sgd nesterov, weight decay", LATHE_OPT_SGD, 1, 0.01, 0, 0, 0, 1, 0},
        {"sgd, frozen conv, fc at half rate", LATHE_OPT_SGD, 0, 0.01, 0, 0, 1, 0.5f, 0},
        {"adamw", LATHE_OPT_ADAMW, 0, 0, 0, 0, 0, 1, 0},
        {"adamw, weight decay, fc at a tenth", LATHE_OPT_ADAMW, 0, 0.05, 0, 0, 0, 0.1f, 0},
        {"adamw, clipping, ema", LATHE_OPT_ADAMW, 0, 0.01, 0.5, 0.9, 0, 1, 0},
        {"sgd, clipping, ema, frozen conv", LATHE_OPT_SGD, 1, 0, 0.5, 0.99, 1, 1, 0},
        {"adamw, biases at 20x, fc at half rate", LATHE_OPT_ADAMW, 0, 0.01, 0, 0, 0, 0.5f, 20},
        {"sgd, biases at 3x", LATHE_OPT_SGD, 0, 0.01, 0, 0, 0, 1, 3},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) check_case(&cases[i], small_graph);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) check_case(&cases[i], large_graph);
}

/* STEPS steps of the large graph on `threads` threads; returns its weights and every state tensor,
 * one after another. */
static float *steps_on(const optim_case *oc, int threads, size_t *n) {
    omp_set_num_threads(threads);
    lathe_graph *g = large_graph();
    lathe_optim_opts o = case_opts(oc);
    lathe_optim *opt;
    assert_int_equal(lathe_optim_create(g, &o, &opt), 0);
    size_t np = lathe_graph_nparams(g), total = 0;
    for (int t = 1; t <= STEPS; t++) {
        for (size_t i = 0; i < np; i++) {
            lathe_param *p = lathe_graph_param(g, i);
            for (size_t k = 0; p->grad && k < p->count; k++) p->grad[k] = (float)grad_value(i, k, t);
        }
        assert_int_equal(lathe_optim_step(opt, 0.05 / t, NULL), 0);
    }
    for (size_t i = 0; i < np; i++) total += lathe_graph_param(g, i)->count;
    for (size_t i = 0; i < lathe_optim_nstate(opt); i++) {
        size_t count;
        assert_non_null(lathe_optim_state(opt, i, NULL, &count));
        total += count;
    }
    float *all = malloc(total * sizeof *all), *at = all;
    for (size_t i = 0; i < np; i++) {
        const lathe_param *p = lathe_graph_param(g, i);
        memcpy(at, p->data, p->count * sizeof *at), at += p->count;
    }
    for (size_t i = 0; i < lathe_optim_nstate(opt); i++) {
        size_t count;
        const float *st = lathe_optim_state(opt, i, NULL, &count);
        memcpy(at, st, count * sizeof *at), at += count;
    }
    lathe_optim_free(opt);
    lathe_graph_free(g);
    *n = total;
    return all;
}

/* The weights and the state after several steps are the same bits on 1, 2 and 3 threads. */
static void results_do_not_depend_on_the_thread_count(void **state) {
    (void)state;
    static const optim_case cases[] = {
        {"sgd nesterov, decay, clipping, ema", LATHE_OPT_SGD, 1, 0.01, 0.5, 0.99, 0, 1, 0},
        {"adamw, decay, clipping, ema", LATHE_OPT_ADAMW, 0, 0.01, 0.5, 0.9, 0, 1, 0},
    };
    int before = omp_get_max_threads();
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        size_t n1, n;
        float *one = steps_on(&cases[c], 1, &n1);
        for (int threads = 2; threads <= 3; threads++) {
            float *many = steps_on(&cases[c], threads, &n);
            assert_int_equal(n, n1);
            if (memcmp(one, many, n * sizeof *one))
                fail_msg("%s: %d threads give other bits than one", cases[c].what, threads);
            free(many);
        }
        free(one);
    }
    omp_set_num_threads(before);
}

/* A NaN or Inf anywhere in the gradients: the step is skipped and says so (1); weights, state and
 * the step count stay as they were, and the next finite step runs. */
static void nan_guard_skips_the_step(void **state) {
    (void)state;
    lathe_graph *g = small_graph();
    lathe_optim_opts o;
    lathe_optim_defaults(&o);
    o.ema = 0.9;
    lathe_optim *opt;
    assert_int_equal(lathe_optim_create(g, &o, &opt), 0);
    size_t np = lathe_graph_nparams(g);
    for (size_t i = 0; i < np; i++)
        if (lathe_graph_param(g, i)->grad)
            for (size_t k = 0; k < lathe_graph_param(g, i)->count; k++) lathe_graph_param(g, i)->grad[k] = 0.1f;
    assert_int_equal(lathe_optim_step(opt, 0.01, NULL), 0);
    lathe_param *fc = lathe_graph_find_param(g, "fc.weight");
    float *before = malloc(fc->count * sizeof *before);
    memcpy(before, fc->data, fc->count * sizeof *before);
    const char *name;
    size_t count;
    float *m = lathe_optim_state(opt, 0, &name, &count), m0 = m[0];
    const float bad[] = {NAN, INFINITY, -INFINITY};
    for (int b = 0; b < 3; b++) {
        float keep = fc->grad[1];
        fc->grad[1] = bad[b];
        double norm = 0;
        assert_int_equal(lathe_optim_step(opt, 0.01, &norm), 1);
        assert_false(isfinite(norm));
        assert_memory_equal(fc->data, before, fc->count * sizeof *before);
        assert_true(m[0] == m0);
        assert_int_equal(lathe_optim_steps(opt), 1);
        fc->grad[1] = keep;
    }
    assert_int_equal(lathe_optim_step(opt, 0.01, NULL), 0);
    assert_int_equal(lathe_optim_steps(opt), 2);
    assert_memory_not_equal(fc->data, before, fc->count * sizeof *before);
    free(before);
    lathe_optim_free(opt);
    lathe_graph_free(g);
}

static void bad_settings_are_refused(void **state) {
    (void)state;
    lathe_graph *g = small_graph();
    lathe_optim_opts o;
    lathe_optim *opt = NULL;
    double *fields[] = {&o.momentum, &o.beta1, &o.beta2, &o.eps, &o.weight_decay, &o.clip, &o.ema};
    const double bad[] = {1.0, -0.1, 1.0, 0.0, -1.0, -1.0, 1.0};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        lathe_optim_defaults(&o);
        *fields[i] = bad[i];
        assert_int_equal(lathe_optim_create(g, &o, &opt), -LATHE_EINVAL);
        assert_null(opt);
    }
    lathe_optim_defaults(&o);
    o.kind = 7;
    assert_int_equal(lathe_optim_create(g, &o, &opt), -LATHE_EINVAL);
    lathe_graph_free(g);
}

/* Warmup rises linearly from lr / warmup to lr; then cosine, linear and step decay to their ends.
 * With warmup_bias_lr the biases' rate falls from it to where the weights' arrives, then follows it. */
static void schedules(void **state) {
    (void)state;
    lathe_schedule s = {LATHE_SCHED_COSINE, 1.0, 0.1, 10, 110, 0, 0, 0};
    assert_true(fabs(lathe_schedule_bias_lr(&s, 3) - lathe_schedule_lr(&s, 3)) < 1e-12); /* off: the weights' */
    s.warmup_bias_lr = 5.0;
    assert_true(fabs(lathe_schedule_bias_lr(&s, 0) - 5.0) < 1e-12);
    assert_true(fabs(lathe_schedule_bias_lr(&s, 5) - 3.0) < 1e-12); /* halfway from 5 to 1 */
    assert_true(fabs(lathe_schedule_bias_lr(&s, 10) - 1.0) < 1e-12);
    assert_true(fabs(lathe_schedule_bias_lr(&s, 60) - 0.55) < 1e-12);
    s.warmup_bias_lr = 0;
    assert_true(fabs(lathe_schedule_lr(&s, 0) - 0.1) < 1e-12);
    assert_true(fabs(lathe_schedule_lr(&s, 9) - 1.0) < 1e-12);
    assert_true(fabs(lathe_schedule_lr(&s, 10) - 1.0) < 1e-12);
    assert_true(fabs(lathe_schedule_lr(&s, 60) - 0.55) < 1e-12); /* halfway: the mean of the ends */
    assert_true(fabs(lathe_schedule_lr(&s, 110) - 0.1) < 1e-12);
    assert_true(fabs(lathe_schedule_lr(&s, 500) - 0.1) < 1e-12); /* past the end: stays at the end */
    s.kind = LATHE_SCHED_LINEAR;
    assert_true(fabs(lathe_schedule_lr(&s, 35) - 0.775) < 1e-12);
    s = (lathe_schedule){LATHE_SCHED_STEP, 1.0, 0, 0, 100, 0.1, 30, 0};
    assert_true(fabs(lathe_schedule_lr(&s, 29) - 1.0) < 1e-12);
    assert_true(fabs(lathe_schedule_lr(&s, 30) - 0.1) < 1e-12);
    assert_true(fabs(lathe_schedule_lr(&s, 65) - 0.01) < 1e-12);
    s = (lathe_schedule){LATHE_SCHED_CONSTANT, 0.3, 0, 0, 100, 0, 0, 0};
    assert_true(fabs(lathe_schedule_lr(&s, 77) - 0.3) < 1e-12);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(updates_match_the_reference), cmocka_unit_test(nan_guard_skips_the_step),
                                       cmocka_unit_test(results_do_not_depend_on_the_thread_count),
                                       cmocka_unit_test(bad_settings_are_refused), cmocka_unit_test(schedules)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
