/* train.c - the classifier training loop and its evaluation (train.h). */
#include "train.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkpoint.h"
#include "graph.h"
#include "kernels/nn.h"
#include "libcore/base/config.h"
#include "libcore/base/error.h"
#include "libcore/base/fsutil.h"
#include "libcore/base/log.h"
#include "libcore/data/loader.h"
#include "libcore/eval/classify.h"
#include "optim.h"

typedef struct {
    const cJSON *spec;
    lathe_dataset *ds;
    lathe_graph *g;
    lathe_optim *opt;
    lathe_loader *train, *val;
    int batch, epochs, classes;
    uint64_t seed;
    float *x, *x2; /* the step's batch and the one being prefetched */
    int32_t *y, *y2;
} trainer;

static double num(const cJSON *spec, const char *path, double def) { return lathe_config_num(spec, path, def); }

/* The next training batch is read, resampled and augmented on a helper thread while the current
 * step runs (the loader is deterministic, so the overlap changes no result). */
typedef struct {
    lathe_loader *l;
    int epoch, n, got;
    uint64_t pos;
    float *x;
    int32_t *y;
    pthread_t thread;
    int running;
    char error[256];
} prefetch;

static void *prefetch_run(void *arg) {
    prefetch *p = arg;
    p->got = lathe_loader_batch(p->l, p->epoch, p->pos, p->n, p->x, p->y);
    if (p->got < 0) snprintf(p->error, sizeof p->error, "%s", lathe_last_error());
    return NULL;
}

static int prefetch_start(prefetch *p, int epoch, uint64_t pos) {
    p->epoch = epoch, p->pos = pos, p->error[0] = 0;
    if (pthread_create(&p->thread, NULL, prefetch_run, p)) return lathe_fail(LATHE_ENOMEM, "cannot start the loader thread");
    p->running = 1;
    return 0;
}

/* Waits for the batch; returns its size or the loader's error (message restored in this thread). */
static int prefetch_wait(prefetch *p) {
    if (!p->running) return 0;
    pthread_join(p->thread, NULL);
    p->running = 0;
    return p->got < 0 ? lathe_fail(-p->got, "%s", p->error) : p->got;
}

static int loader_for(trainer *t, const char *split_key, const char *def, int augment, lathe_loader **out) {
    int c, h, w;
    lathe_graph_input(t->g, &c, &h, &w);
    const char *name = lathe_config_str(t->spec, split_key, def);
    int split = lathe_split_parse(name);
    if (split < 0) return lathe_fail(LATHE_EINVAL, "%s: unknown split %s", split_key, name);
    lathe_loader_opts o = {split, c, h, w, (float)num(t->spec, "data.mean", 0.5), (float)num(t->spec, "data.std", 0.25),
                           augment, 0, 0, 0, t->seed};
    if (augment) {
        const cJSON *f = lathe_config_get(t->spec, "data.augment.flip");
        o.flip = cJSON_IsTrue(f);
        o.crop = (float)num(t->spec, "data.augment.crop", 0);
        o.jitter = (float)num(t->spec, "data.augment.jitter", 0);
    }
    return lathe_loader_create(t->ds, &o, out);
}

/* Builds the dataset, graph and (with optimizer) the optimizer of a spec. */
static int setup(trainer *t, const cJSON *spec, const char *dataset_override, int with_optimizer) {
    memset(t, 0, sizeof *t);
    t->spec = spec;
    t->batch = (int)num(spec, "train.batch", 32);
    t->epochs = (int)num(spec, "train.epochs", 10);
    t->seed = (uint64_t)num(spec, "train.seed", 0);
    if (t->batch < 1 || t->epochs < 1) return lathe_fail(LATHE_EINVAL, "train.batch and train.epochs must be >= 1");
    const char *dir = dataset_override ? dataset_override : lathe_config_str(spec, "data.dataset", NULL);
    if (!dir) return lathe_fail(LATHE_EINVAL, "data.dataset is required");
    int rc = lathe_dataset_open(dir, &t->ds);
    if (rc) return rc;
    const lathe_manifest *m = lathe_dataset_manifest(t->ds);
    cJSON *model = cJSON_Duplicate(lathe_config_get(spec, "model"), 1);
    if (!cJSON_IsObject(model)) {
        cJSON_Delete(model);
        return lathe_fail(LATHE_EINVAL, "the spec has no model mapping");
    }
    if (!cJSON_GetObjectItemCaseSensitive(model, "classes")) cJSON_AddNumberToObject(model, "classes", m->nclasses);
    t->classes = (int)cJSON_GetObjectItemCaseSensitive(model, "classes")->valuedouble;
    rc = lathe_graph_build(model, t->batch, t->seed, &t->g);
    cJSON_Delete(model);
    if (rc) return rc;
    int k;
    lathe_graph_output(t->g, &k);
    if (k != t->classes) return lathe_fail(LATHE_EINVAL, "the model ends in %d outputs for %d classes", k, t->classes);
    int c, h, w;
    lathe_graph_input(t->g, &c, &h, &w);
    t->x = malloc((size_t)t->batch * c * h * w * sizeof *t->x);
    t->y = malloc((size_t)t->batch * sizeof *t->y);
    t->x2 = malloc((size_t)t->batch * c * h * w * sizeof *t->x2);
    t->y2 = malloc((size_t)t->batch * sizeof *t->y2);
    if (!t->x || !t->y || !t->x2 || !t->y2) return lathe_fail(LATHE_ENOMEM, "batch buffers");
    if (with_optimizer) {
        lathe_optim_opts o;
        lathe_optim_defaults(&o);
        const char *kind = lathe_config_str(spec, "train.optimizer", "adamw");
        if (!strcmp(kind, "sgd")) o.kind = LATHE_OPT_SGD;
        else if (strcmp(kind, "adamw")) return lathe_fail(LATHE_EINVAL, "train.optimizer: sgd or adamw, not %s", kind);
        o.momentum = num(spec, "train.momentum", 0.9);
        o.nesterov = cJSON_IsTrue(lathe_config_get(spec, "train.nesterov"));
        o.weight_decay = num(spec, "train.weight_decay", o.kind == LATHE_OPT_SGD ? 5e-4 : 0.01);
        o.clip = num(spec, "train.clip", 0);
        o.ema = num(spec, "train.ema", 0);
        rc = lathe_optim_create(t->g, &o, &t->opt);
    }
    return rc;
}

static void teardown(trainer *t) {
    lathe_loader_free(t->train), lathe_loader_free(t->val);
    lathe_optim_free(t->opt);
    lathe_graph_free(t->g);
    lathe_dataset_close(t->ds);
    free(t->x), free(t->y), free(t->x2), free(t->y2);
}

/* Forward over a whole loader in eval mode: mean loss and the confusion matrix (k x k). */
static int evaluate(trainer *t, lathe_loader *l, uint64_t *cm, double *loss) {
    int k = t->classes;
    memset(cm, 0, sizeof(uint64_t) * k * k);
    lathe_graph_set_train(t->g, 0);
    double total = 0;
    uint64_t n = lathe_loader_size(l), seen = 0;
    for (uint64_t first = 0; first < n; first += (uint64_t)t->batch) {
        int got = lathe_loader_batch(l, 0, first, t->batch, t->x, t->y);
        if (got < 0) return got;
        int c, h, w;
        float *in = lathe_graph_input(t->g, &c, &h, &w);
        memcpy(in, t->x, sizeof(float) * (size_t)got * c * h * w);
        lathe_graph_forward(t->g, got, 0);
        const float *out = lathe_graph_output(t->g, NULL);
        total += lathe_k_softmax_ce_f32(got, k, out, t->y, 0, NULL) * got;
        for (int b = 0; b < got; b++) {
            int best = 0;
            for (int j = 1; j < k; j++)
                if (out[(size_t)b * k + j] > out[(size_t)b * k + best]) best = j;
            if (t->y[b] >= 0 && t->y[b] < k) cm[(size_t)t->y[b] * k + best]++;
        }
        seen += (uint64_t)got;
    }
    lathe_graph_set_train(t->g, 1);
    *loss = seen ? total / (double)seen : 0;
    return 0;
}

static double accuracy(const uint64_t *cm, int k) {
    uint64_t all = 0, right = 0;
    for (int i = 0; i < k; i++)
        for (int j = 0; j < k; j++) all += cm[i * k + j], right += i == j ? cm[i * k + j] : 0;
    return all ? (double)right / (double)all : 0;
}

static int save(trainer *t, const char *path, int epoch, uint64_t position, double best) {
    char e[32], p[32], b[32], s[32];
    snprintf(e, sizeof e, "%d", epoch);
    snprintf(p, sizeof p, "%" PRIu64, position);
    snprintf(b, sizeof b, "%.17g", best);
    snprintf(s, sizeof s, "%" PRIu64, t->seed);
    const char *meta[] = {"epoch", e, "position", p, "best_accuracy", b, "seed", s, "format", "lathe-checkpoint-1"};
    return lathe_checkpoint_save(path, t->g, t->opt, meta, 5);
}

static void log_line(FILE *log, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void log_line(FILE *log, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vfprintf(log, fmt, ap);
    va_end(ap);
    fputc('\n', log);
    fflush(log);
}

static int apply_freeze_and_init(trainer *t) {
    const char *init = lathe_config_str(t->spec, "train.init", NULL);
    if (init) {
        size_t loaded;
        int rc = lathe_checkpoint_import(init, lathe_config_str(t->spec, "train.init_map", NULL), t->g, &loaded);
        if (rc) return rc;
        lathe_log(LATHE_LOG_INFO, "train.init", "imported %zu tensors from %s", loaded, init);
    }
    const cJSON *groups = lathe_config_get(t->spec, "train.lr_groups"), *grp;
    if (groups && !cJSON_IsArray(groups)) return lathe_fail(LATHE_EINVAL, "train.lr_groups must be a list");
    cJSON_ArrayForEach(grp, groups) {
        const char *pat = lathe_config_str(grp, "pattern", NULL);
        double scale = lathe_config_num(grp, "lr_scale", -1);
        if (!pat || !(scale >= 0))
            return lathe_fail(LATHE_EINVAL, "train.lr_groups: each entry needs pattern and lr_scale >= 0");
        size_t n = lathe_graph_set_lr_scale(t->g, pat, (float)scale);
        if (!n) return lathe_fail(LATHE_EINVAL, "train.lr_groups: %s matches no parameter", pat);
    }
    const cJSON *fr = lathe_config_get(t->spec, "train.freeze"), *it;
    if (cJSON_IsString(fr)) lathe_graph_freeze(t->g, fr->valuestring);
    if (cJSON_IsArray(fr))
        cJSON_ArrayForEach(it, fr) if (cJSON_IsString(it)) lathe_graph_freeze(t->g, it->valuestring);
    return 0;
}

int lathe_train_classifier(const cJSON *spec, const char *run_dir, int resume, volatile int *stop) {
    trainer t;
    int rc = setup(&t, spec, NULL, 1);
    if (!rc) rc = loader_for(&t, "data.train_split", "train", 1, &t.train);
    if (!rc) rc = loader_for(&t, "data.val_split", "val", 0, &t.val);
    if (!rc) rc = apply_freeze_and_init(&t);
    char ckdir[4200], last[4300], best_path[4300], logpath[4200];
    snprintf(ckdir, sizeof ckdir, "%s/checkpoints", run_dir);
    snprintf(last, sizeof last, "%s/last.safetensors", ckdir);
    snprintf(best_path, sizeof best_path, "%s/best.safetensors", ckdir);
    snprintf(logpath, sizeof logpath, "%s/log.jsonl", run_dir);
    if (!rc) rc = lathe_mkdirs(ckdir);
    int start_epoch = 0;
    uint64_t start_pos = 0;
    double best = -1;
    if (!rc && resume && access(last, F_OK) == 0) {
        char v[64];
        rc = lathe_checkpoint_load(last, t.g, t.opt);
        if (!rc && !lathe_checkpoint_meta(last, "epoch", v, sizeof v)) start_epoch = atoi(v);
        if (!rc && !lathe_checkpoint_meta(last, "position", v, sizeof v)) start_pos = strtoull(v, NULL, 10);
        if (!rc && !lathe_checkpoint_meta(last, "best_accuracy", v, sizeof v)) best = atof(v);
        if (!rc) lathe_log(LATHE_LOG_INFO, "train.resume", "resuming at epoch %d, sample %" PRIu64, start_epoch + 1, start_pos);
    }
    FILE *log = rc ? NULL : fopen(logpath, resume ? "a" : "w");
    if (!rc && !log) rc = lathe_fail(LATHE_EIO, "cannot write %s", logpath);
    uint64_t n = rc ? 0 : lathe_loader_size(t.train);
    long steps_per_epoch = (long)((n + (uint64_t)t.batch - 1) / (uint64_t)t.batch);
    lathe_schedule sched = {LATHE_SCHED_COSINE, num(spec, "train.lr", 1e-3), num(spec, "train.final_lr", 0),
                            (long)(num(spec, "train.warmup_epochs", 0) * steps_per_epoch), (long)t.epochs * steps_per_epoch,
                            num(spec, "train.step_gamma", 0.1), (long)(num(spec, "train.step_epochs", 10) * steps_per_epoch)};
    const char *sk = lathe_config_str(spec, "train.schedule", "cosine");
    sched.kind = !strcmp(sk, "linear") ? LATHE_SCHED_LINEAR : !strcmp(sk, "step") ? LATHE_SCHED_STEP
                 : !strcmp(sk, "constant") ? LATHE_SCHED_CONSTANT : LATHE_SCHED_COSINE;
    float smoothing = (float)num(spec, "train.label_smoothing", 0);
    long ck_every = (long)num(spec, "train.checkpoint_every", 0), max_bad = (long)num(spec, "train.max_nan_steps", 10);
    int k = t.classes;
    uint64_t *cm = rc ? NULL : calloc((size_t)k * k, sizeof *cm);
    if (!rc && !cm) rc = lathe_fail(LATHE_ENOMEM, "confusion matrix");
    int c, h, w;
    if (!rc) lathe_graph_input(t.g, &c, &h, &w);
    long bad_steps = 0;
    for (int epoch = start_epoch; !rc && epoch < t.epochs; epoch++) {
        double t0 = lathe_now(), loss_sum = 0;
        uint64_t seen = 0;
        char what[64];
        snprintf(what, sizeof what, "epoch %d/%d", epoch + 1, t.epochs);
        lathe_progress *prog = lathe_progress_start(what, n);
        uint64_t first = epoch == start_epoch ? start_pos : 0;
        prefetch pf = {t.train, 0, t.batch, 0, 0, t.x2, t.y2, 0, 0, {0}};
        double wait = 0;
        if (first < n) rc = prefetch_start(&pf, epoch, first);
        for (uint64_t pos = first; !rc && pos < n; pos += (uint64_t)t.batch) {
            double w0 = lathe_now();
            int got = prefetch_wait(&pf);
            wait += lathe_now() - w0;
            if (got < 0) {
                rc = got;
                break;
            }
            float *bx = pf.x; /* the ready batch becomes the step's; the other buffer takes the next one */
            int32_t *by = pf.y;
            pf.x = bx == t.x2 ? t.x : t.x2, pf.y = by == t.y2 ? t.y : t.y2;
            if (stop && *stop) {
                rc = save(&t, last, epoch, pos, best);
                if (!rc) rc = lathe_fail(LATHE_EINTR, "stopped at epoch %d, sample %" PRIu64 " (checkpoint written)", epoch + 1, pos);
                break;
            }
            if (pos + (uint64_t)t.batch < n && (rc = prefetch_start(&pf, epoch, pos + (uint64_t)t.batch))) break;
            long step = lathe_optim_steps(t.opt) + bad_steps;
            memcpy(lathe_graph_input(t.g, NULL, NULL, NULL), bx, sizeof(float) * (size_t)got * c * h * w);
            lathe_graph_forward(t.g, got, (uint64_t)step);
            double loss = lathe_k_softmax_ce_f32(got, k, lathe_graph_output(t.g, NULL), by, smoothing,
                                                 lathe_graph_doutput(t.g));
            lathe_graph_backward(t.g, got);
            double lr = lathe_schedule_lr(&sched, lathe_optim_steps(t.opt)), gnorm;
            if (lathe_optim_step(t.opt, lr, &gnorm)) {
                bad_steps++;
                lathe_log(LATHE_LOG_WARN, "train.nan", "step %ld: gradient is NaN/Inf, step skipped (%ld so far)", step, bad_steps);
                if (bad_steps > max_bad)
                    rc = lathe_fail(LATHE_EFORMAT, "%ld steps with NaN/Inf gradients: lower train.lr or check the data", bad_steps);
                continue;
            }
            loss_sum += loss * got, seen += (uint64_t)got;
            lathe_progress_update(prog, pos + (uint64_t)got);
            if (ck_every > 0 && lathe_optim_steps(t.opt) % ck_every == 0 && pos + (uint64_t)got < n)
                rc = save(&t, last, epoch, pos + (uint64_t)got, best);
        }
        prefetch_wait(&pf); /* a stop or an error may leave a batch in flight */
        lathe_progress_finish(prog, seen);
        if (rc) break;
        double seconds = lathe_now() - t0, val_loss;
        lathe_optim_swap_ema(t.opt); /* validate (and keep as best) the averaged weights, when there are any */
        rc = evaluate(&t, t.val, cm, &val_loss);
        if (rc) {
            lathe_optim_swap_ema(t.opt);
            break;
        }
        double acc = accuracy(cm, k);
        log_line(log, "{\"epoch\": %d, \"steps\": %ld, \"loss\": %.6g, \"val_loss\": %.6g, \"val_accuracy\": %.6g, "
                      "\"lr\": %.6g, \"images_per_s\": %.1f, \"seconds\": %.3f, \"data_wait_share\": %.4f}",
                 epoch + 1, lathe_optim_steps(t.opt), seen ? loss_sum / seen : 0, val_loss, acc,
                 lathe_schedule_lr(&sched, lathe_optim_steps(t.opt)), seconds > 0 ? seen / seconds : 0, seconds,
                 seconds > 0 ? wait / seconds : 0);
        lathe_log(LATHE_LOG_INFO, "train.epoch", "epoch %d/%d: loss %.4f, val loss %.4f, val accuracy %.4f, %.0f images/s",
                  epoch + 1, t.epochs, seen ? loss_sum / seen : 0, val_loss, acc, seconds > 0 ? seen / seconds : 0);
        if (acc > best) {
            best = acc;
            rc = save(&t, best_path, epoch + 1, 0, best);
        }
        lathe_optim_swap_ema(t.opt);
        if (!rc) rc = save(&t, last, epoch + 1, 0, best);
    }
    if (!rc) {
        char path[4300];
        snprintf(path, sizeof path, "%s/metrics.json", run_dir);
        char text[512];
        int len = snprintf(text, sizeof text, "{\"best_val_accuracy\": %.6g, \"epochs\": %d, \"steps\": %ld, \"skipped_steps\": %ld}\n",
                           best, t.epochs, lathe_optim_steps(t.opt), bad_steps);
        rc = lathe_write_atomic(path, text, (size_t)len);
    }
    if (log) fclose(log);
    free(cm);
    teardown(&t);
    return rc;
}

int lathe_eval_classifier(const cJSON *spec, const char *checkpoint, const char *dataset, const char *split,
                          const char *out_dir, cJSON **report) {
    if (report) *report = NULL;
    trainer t;
    int rc = setup(&t, spec, dataset, 0);
    lathe_loader *l = NULL;
    if (!rc) rc = lathe_checkpoint_load(checkpoint, t.g, NULL);
    if (!rc) {
        int c, h, w;
        lathe_graph_input(t.g, &c, &h, &w);
        int sp = lathe_split_parse(split);
        lathe_loader_opts o = {sp, c, h, w, (float)num(spec, "data.mean", 0.5), (float)num(spec, "data.std", 0.25), 0, 0, 0, 0, 0};
        rc = sp < 0 ? lathe_fail(LATHE_EINVAL, "unknown split %s", split) : lathe_loader_create(t.ds, &o, &l);
    }
    uint64_t *cm = rc ? NULL : calloc((size_t)t.classes * t.classes, sizeof *cm);
    double loss = 0;
    if (!rc && !cm) rc = lathe_fail(LATHE_ENOMEM, "confusion matrix");
    if (!rc) rc = evaluate(&t, l, cm, &loss);
    if (!rc) {
        const lathe_manifest *m = lathe_dataset_manifest(t.ds);
        const char **names = calloc((size_t)t.classes, sizeof *names);
        char (*fallback)[16] = calloc((size_t)t.classes, sizeof *fallback);
        for (int i = 0; names && fallback && i < t.classes; i++) {
            snprintf(fallback[i], sizeof fallback[i], "class %d", i);
            names[i] = i < m->nclasses ? m->class_names[i] : fallback[i];
        }
        cJSON *r = names && fallback ? lathe_classify_report(cm, t.classes, names, loss) : NULL;
        free(names), free(fallback);
        if (!r) rc = lathe_fail(LATHE_ENOMEM, "report");
        else {
            cJSON_AddStringToObject(r, "checkpoint", checkpoint);
            cJSON_AddStringToObject(r, "split", split);
            char title[4400];
            snprintf(title, sizeof title, "lathe eval: %s on %s", checkpoint, split);
            rc = lathe_classify_write(r, title, out_dir);
            if (report && !rc) *report = r;
            else cJSON_Delete(r);
        }
    }
    free(cm);
    lathe_loader_free(l);
    teardown(&t);
    return rc;
}
