/* trainer.c - the shared training loop (trainer.h). */
#include "trainer.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <omp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkpoint.h"
#include "libcore/base/config.h"
#include "libcore/base/error.h"
#include "libcore/base/fsutil.h"
#include "libcore/base/log.h"
#include "libcore/dist/dist.h"
#include "optim.h"
#include "grad_sum.h"
#include "ranks_gpu.h"

static double num(const cJSON *spec, const char *path, double def) { return lathe_config_num(spec, path, def); }

int lathe_trainer_local_batch(const cJSON *spec) {
    int batch = (int)num(spec, "train.batch", LATHE_TRAIN_BATCH_DEFAULT), world = lathe_dist_world();
    return world > 1 && batch % world == 0 ? batch / world : batch;
}

/* The next batch is prepared on a helper thread while the current step runs (loaders are
 * deterministic, so the overlap changes no result). With several ranks, each prepares its slice
 * of the step's m samples: rank r of W those from pos + r m / W to pos + (r + 1) m / W (batch / W
 * each in a full step; a short last step shared as evenly, so a rank gets none only when m < W). */
typedef struct {
    const lathe_task *task;
    int slot, epoch, batch, n, got; /* batch: the step's samples, every rank's; n: this rank's */
    int threads; /* the caller's OpenMP threads: a new thread would start from the default (all cores) */
    uint64_t pos, size;
    pthread_t thread;
    int running;
    char error[256];
} prefetch;

static void *prefetch_run(void *arg) {
    prefetch *p = arg;
    omp_set_num_threads(p->threads);
    p->got = p->n > 0 ? p->task->load(p->task->ctx, p->slot, p->epoch, p->pos, p->n) : 0;
    if (p->got < 0) snprintf(p->error, sizeof p->error, "%s", lathe_last_error());
    return NULL;
}

static int prefetch_start(prefetch *p, int slot, int epoch, uint64_t pos) {
    uint64_t world = (uint64_t)lathe_dist_world(), r = (uint64_t)lathe_dist_rank();
    uint64_t m = p->size - pos < (uint64_t)p->batch ? p->size - pos : (uint64_t)p->batch;
    p->slot = slot, p->epoch = epoch, p->pos = pos + r * m / world, p->error[0] = 0, p->threads = omp_get_max_threads();
    p->n = (int)((r + 1) * m / world - r * m / world);
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

static int optim_from_spec(const cJSON *spec, lathe_graph *g, lathe_optim **out) {
    lathe_optim_opts o;
    lathe_optim_defaults(&o);
    const char *kind = lathe_config_str(spec, "train.optimizer", "adamw");
    if (!strcmp(kind, "sgd")) o.kind = LATHE_OPT_SGD;
    else if (strcmp(kind, "adamw")) return lathe_fail(LATHE_EINVAL, "train.optimizer: sgd or adamw, not %s", kind);
    o.momentum = num(spec, "train.momentum", 0.9);
    o.nesterov = lathe_config_prob(spec, "train.nesterov", 0, 1) > 0; /* true/false or 1/0 */
    o.weight_decay = num(spec, "train.weight_decay", o.kind == LATHE_OPT_SGD ? 5e-4 : 0.01);
    o.clip = num(spec, "train.clip", 0);
    o.ema = num(spec, "train.ema", 0);
    return lathe_optim_create(g, &o, out);
}

static int schedule_from_spec(const cJSON *spec, long steps_per_epoch, int epochs, lathe_schedule *s) {
    const char *kind = lathe_config_str(spec, "train.schedule", "cosine");
    s->kind = !strcmp(kind, "linear") ? LATHE_SCHED_LINEAR : !strcmp(kind, "step") ? LATHE_SCHED_STEP
              : !strcmp(kind, "constant") ? LATHE_SCHED_CONSTANT : !strcmp(kind, "cosine") ? LATHE_SCHED_COSINE : -1;
    if (s->kind < 0) return lathe_fail(LATHE_EINVAL, "train.schedule: cosine, linear, step or constant, not %s", kind);
    s->lr = num(spec, "train.lr", 1e-3), s->final_lr = num(spec, "train.final_lr", 0);
    s->warmup = (long)(num(spec, "train.warmup_epochs", 0) * steps_per_epoch);
    s->warmup_bias_lr = num(spec, "train.warmup_bias_lr", 0);
    s->total = (long)epochs * steps_per_epoch;
    s->step_gamma = num(spec, "train.step_gamma", 0.1);
    s->step_every = (long)(num(spec, "train.step_epochs", 10) * steps_per_epoch);
    return 0;
}

int lathe_trainer_prepare(const cJSON *spec, lathe_graph *g, const char *run_dir, int resume) {
    char last[4300];
    snprintf(last, sizeof last, "%s/checkpoints/last.safetensors", run_dir);
    const char *init = resume && !access(last, F_OK) ? NULL : lathe_config_str(spec, "train.init", NULL);
    if (!lathe_config_get(spec, "train.init") && lathe_config_get(spec, "train.init_map"))
        return lathe_fail(LATHE_EINVAL, "train.init_map renames the tensors of train.init, which is not set");
    if (init) {
        size_t loaded;
        int rc = lathe_checkpoint_import(init, lathe_config_str(spec, "train.init_map", NULL), g, &loaded);
        if (rc) return rc;
        lathe_log(LATHE_LOG_INFO, "train.init", "imported %zu of %zu tensors from %s (the rest keep their initial values)",
                  loaded, lathe_graph_nparams(g), init);
    }
    const cJSON *groups = lathe_config_get(spec, "train.lr_groups"), *grp;
    if (groups && !cJSON_IsArray(groups)) return lathe_fail(LATHE_EINVAL, "train.lr_groups must be a list");
    cJSON_ArrayForEach(grp, groups) {
        const char *pat = lathe_config_str(grp, "pattern", NULL);
        double scale = lathe_config_num(grp, "lr_scale", -1);
        if (!pat || !(scale >= 0))
            return lathe_fail(LATHE_EINVAL, "train.lr_groups: each entry needs pattern and lr_scale >= 0");
        if (!lathe_graph_set_lr_scale(g, pat, (float)scale))
            return lathe_fail(LATHE_EINVAL, "train.lr_groups: %s matches no parameter", pat);
    }
    const cJSON *fr = lathe_config_get(spec, "train.freeze"), *it;
    if (fr && !cJSON_IsString(fr) && !cJSON_IsArray(fr))
        return lathe_fail(LATHE_EINVAL, "train.freeze: a name pattern or a list of them");
    if (cJSON_IsString(fr) && !lathe_graph_freeze(g, fr->valuestring))
        return lathe_fail(LATHE_EINVAL, "train.freeze: %s matches no parameter", fr->valuestring);
    if (cJSON_IsArray(fr))
        cJSON_ArrayForEach(it, fr) if (cJSON_IsString(it) && !lathe_graph_freeze(g, it->valuestring))
            return lathe_fail(LATHE_EINVAL, "train.freeze: %s matches no parameter", it->valuestring);
    size_t trainable = 0;
    for (size_t i = 0; i < lathe_graph_nparams(g); i++) trainable += lathe_graph_param(g, i)->grad && !lathe_graph_param(g, i)->frozen;
    if (!trainable) return lathe_fail(LATHE_EINVAL, "train.freeze leaves no parameter to train");
    static const char *const named[] = {"train.device", "train.precision"}; /* `device: 1` is not cuda:1 */
    for (int i = 0; i < 2; i++) {
        const cJSON *v = lathe_config_get(spec, named[i]);
        if (v && !cJSON_IsString(v))
            return lathe_fail(LATHE_EINVAL, "%s must be a name (%s)", named[i],
                              i == 0 ? "cpu, cuda, cuda:N or auto" : "fp32 or bf16");
    }
    int rc = lathe_graph_set_device(g, lathe_config_str(spec, "train.device", "auto"));
    return rc ? rc : lathe_graph_set_precision(g, lathe_config_str(spec, "train.precision", "fp32"));
}

typedef struct {
    const cJSON *spec;
    lathe_graph *g;
    lathe_optim *opt;
    const lathe_task *task;
    uint64_t seed;
    char last[4300], best[4300];
    double epoch_loss; /* the current epoch's loss summed over its samples so far, and their count: */
    uint64_t epoch_seen; /* a mid-epoch checkpoint keeps them, so a resumed epoch logs its whole loss */
    lathe_grad_sum *sum; /* with several ranks: the gradients' buckets, summed as backward finishes them */
    int prescaled;       /* train.sync_bn: each rank's output gradient is scaled by its share of the step
                            before backward (the synchronized statistics couple the ranks' samples) */
} loop;

/* With train.sync_bn a mean loss's output gradient becomes its share of the step's (got of whole
 * samples), so every rank's backward is in the units of one process's. */
static void prescale_output(loop *L, int got, int whole) {
    int k;
    lathe_graph_output(L->g, &k);
    float *d = lathe_graph_doutput(L->g), w = (float)got / (float)whole;
    for (size_t i = 0; i < (size_t)got * (size_t)k; i++) d[i] *= w;
}

/* Before a step's backward with several ranks: turns this rank's loss over its *n samples into the
 * whole step's, all ranks together, and *n into the step's sample count (a task's mean over its own
 * samples weighted by their count, a shared loss (lathe_task.loss_shared) added as it is), and
 * readies the gradients' sum. rc: this rank's step failed; then every rank returns the first
 * failing rank's error. */
static int ranks_step(loop *L, double *loss, int *n, int rc) {
    int shared = L->task->loss_shared, mine = *n;
    double x[3] = {rc ? 0 : shared ? *loss : *loss * mine, mine, rc != 0}; /* loss x samples, samples, failed */
    int err = lathe_dist_sum_f64(x, 3);
    if (err) return err;
    if (x[2] > 0) return lathe_dist_agree(rc);
    *loss = shared ? x[0] : x[0] / x[1], *n = (int)x[1];
    return lathe_grad_sum_begin(L->sum, mine, *n, shared || L->prescaled, mine == 0);
}

/* 1 when some rank was asked to stop (SIGTERM to one of them is a stop for all), else 0. */
static int any_rank_stops(volatile int *stop, int *out) {
    double s = stop && *stop;
    int rc = lathe_dist_sum_f64(&s, 1);
    *out = s > 0;
    return rc;
}

/* Writes a checkpoint (rank 0 only: every rank holds the same weights). */
static int save(loop *L, const char *path, int epoch, uint64_t position, double best, long skipped) {
    if (!lathe_dist_writer()) return 0;
    char e[32], p[32], b[32], s[32], k[32];
    snprintf(e, sizeof e, "%d", epoch);
    snprintf(p, sizeof p, "%" PRIu64, position);
    snprintf(b, sizeof b, "%.17g", best);
    snprintf(s, sizeof s, "%" PRIu64, L->seed);
    snprintf(k, sizeof k, "%ld", skipped); /* NaN-skipped steps: they count in the dropout seeds and the budget */
    char ls[40], ln[32];
    snprintf(ls, sizeof ls, "%.17g", position ? L->epoch_loss : 0.0);
    snprintf(ln, sizeof ln, "%" PRIu64, position ? L->epoch_seen : 0);
    const char *meta[] = {"epoch", e, "position", p, "best_metric", b, "metric", L->task->metric, "seed", s,
                          "skipped_steps", k, "epoch_loss_sum", ls, "epoch_loss_samples", ln,
                          "format", "lathe-checkpoint-1"};
    return lathe_checkpoint_save(path, L->g, L->opt, meta, 9);
}

/* Validates the averaged weights (when EMA is on), logs the epoch, keeps the best. */
static int end_epoch(loop *L, FILE *log, cJSON *entry, int epoch, int epochs, double *best, long skipped) {
    int rc = lathe_optim_swap_ema(L->opt);
    if (rc) return rc;
    lathe_graph_set_train(L->g, 0);
    double metric = 0;
    rc = L->task->validate(L->task->ctx, L->g, entry, &metric);
    lathe_graph_set_train(L->g, 1);
    if (!rc && log) {
        char *text = cJSON_PrintUnformatted(entry);
        if (!text) rc = lathe_fail(LATHE_ENOMEM, "log line");
        else fprintf(log, "%s\n", text), fflush(log);
        cJSON_free(text);
        const cJSON *loss = cJSON_GetObjectItemCaseSensitive(entry, "loss");
        const cJSON *ips = cJSON_GetObjectItemCaseSensitive(entry, "images_per_s");
        lathe_log(LATHE_LOG_INFO, "train.epoch", "epoch %d/%d: loss %.4f, %s %.4f, %.0f images/s", epoch + 1, epochs,
                  loss ? loss->valuedouble : 0, L->task->metric, metric, ips ? ips->valuedouble : 0);
    }
    /* a tie keeps the later epoch: a small val split saturates (accuracy 1.000 from epoch 3 of the
     * digits), and the first epoch to reach it is a model still at full learning rate */
    if (!rc && metric >= *best) {
        *best = metric;
        rc = save(L, L->best, epoch + 1, 0, *best, skipped);
    }
    int swapped = lathe_optim_swap_ema(L->opt);
    if (!rc) rc = swapped;
    if (!rc) rc = save(L, L->last, epoch + 1, 0, *best, skipped);
    return lathe_dist_agree(rc);
}

/* One integer of a checkpoint's metadata, which must be there and lie in [lo, hi]. */
static int meta_int(const char *path, const char *key, long long lo, long long hi, long long *out) {
    char v[64], *end;
    if (lathe_checkpoint_meta(path, key, v, sizeof v))
        return lathe_fail(LATHE_EFORMAT, "%s: no %s in its metadata: not a lathe training checkpoint", path, key);
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno || end == v || *end || x < lo || x > hi)
        return lathe_fail(LATHE_EFORMAT, "%s: %s \"%s\" is not a whole number in %lld..%lld", path, key, v, lo, hi);
    *out = x;
    return 0;
}

/* Where a resumed run continues, from its last checkpoint's metadata, checked against this run:
 * the epoch within its epochs and the position within an epoch of n samples. */
static int resume_point(const char *path, int epochs, uint64_t n, int *epoch, uint64_t *pos, double *best, long *skipped) {
    char v[64], *end;
    long long e, p, k;
    int rc = meta_int(path, "epoch", 0, epochs, &e);
    if (!rc) rc = meta_int(path, "position", 0, (long long)n, &p);
    if (!rc) rc = meta_int(path, "skipped_steps", 0, LLONG_MAX, &k);
    if (!rc && lathe_checkpoint_meta(path, "best_metric", v, sizeof v))
        rc = lathe_fail(LATHE_EFORMAT, "%s: no best_metric in its metadata: not a lathe training checkpoint", path);
    double b = rc ? 0 : strtod(v, &end);
    if (!rc && (end == v || *end || isnan(b)))
        rc = lathe_fail(LATHE_EFORMAT, "%s: best_metric \"%s\" is not a number", path, v);
    if (rc) return rc;
    *epoch = (int)e, *pos = (uint64_t)p, *best = b, *skipped = (long)k;
    return 0;
}

/* The loss of the interrupted epoch so far (checkpoints of older lathe have none: 0, 0). */
static void resume_loss(const char *path, double *sum, uint64_t *samples) {
    char v[64];
    long long c;
    *sum = 0, *samples = 0;
    if (!lathe_checkpoint_meta(path, "epoch_loss_sum", v, sizeof v) && !meta_int(path, "epoch_loss_samples", 0, LLONG_MAX, &c)) {
        double x = strtod(v, NULL);
        if (isfinite(x)) *sum = x, *samples = (uint64_t)c;
    }
    lathe_clear_error();
}

/* Keeps the log lines of the epochs a resumed run does not train again (epoch <= done): a line
 * written before its epoch's checkpoint failed, or torn by a kill, is not left to be written twice. */
static int trim_log(const char *path, int done) {
    char *text;
    size_t len;
    int rc = lathe_read_file(path, (size_t)1 << 30, &text, &len);
    if (rc == -LATHE_ENOTFOUND) return lathe_clear_error(), 0;
    if (rc) return rc;
    size_t kept = 0;
    for (char *line = text, *next; line < text + len; line = next) {
        char *nl = memchr(line, '\n', (size_t)(text + len - line));
        next = nl ? nl + 1 : text + len;
        if (!nl) break; /* a torn last line */
        *nl = '\0';
        cJSON *j = cJSON_Parse(line);
        const cJSON *ep = cJSON_GetObjectItemCaseSensitive(j, "epoch");
        int keep = cJSON_IsNumber(ep) && ep->valuedouble <= done;
        cJSON_Delete(j);
        if (!keep) continue;
        size_t n = (size_t)(nl - line);
        memmove(text + kept, line, n);
        text[kept + n] = '\n';
        kept += n + 1;
    }
    rc = kept == len ? 0 : lathe_write_atomic(path, text, kept);
    free(text);
    return rc;
}

/* Checks that the ranks can share this run of n samples an epoch, and plans the buckets their
 * gradients are summed in. */
static int ranks_ready(loop *L, int batch, uint64_t n) {
    int world = lathe_dist_world();
    if (world == 1) return 0;
    if (batch % world)
        return lathe_fail(LATHE_EINVAL, "train.batch %d is not a multiple of the %d ranks (each rank takes train.batch / "
                                        "ranks samples a step)", batch, world);
    uint64_t last = n % (uint64_t)batch;
    L->prescaled = lathe_dist_sync_bn() && !L->task->loss_shared;
    if (lathe_dist_sync_bn() && last && last < (uint64_t)world)
        return lathe_fail(LATHE_EINVAL, "train.sync_bn: the last step of each epoch has %d sample%s for %d ranks, and a rank "
                                        "without samples has no statistics to share: pick a train.batch that leaves none "
                                        "or at least %d", (int)last, last == 1 ? "" : "s", world, world);
    double on_gpu = lathe_graph_device(L->g) >= 0; /* every rank on a GPU, or none: one kind of sum */
    int rc = lathe_dist_sum_f64(&on_gpu, 1);
    if (rc) return rc;
    if (on_gpu > 0 && on_gpu < world)
        return lathe_fail(LATHE_EINVAL, "%d of the %d ranks have a GPU (one each, by the rank on its node): give every "
                                        "rank one, or train.device=cpu", (int)on_gpu, world);
    if (on_gpu > 0 && !lathe_ranks_gpu_built()) return lathe_ranks_gpu_begin(L->g, 1, 0, 0); /* its reason */
    if (on_gpu > 0 && lathe_dist_sync_bn())
        return lathe_fail(LATHE_EUNSUPPORTED, "train.sync_bn runs on CPU ranks only for now: leave it out on GPUs");
    double mb = num(L->spec, "train.bucket_mb", LATHE_TRAIN_BUCKET_MB_DEFAULT);
    if ((rc = lathe_grad_sum_new(L->g, mb, &L->sum))) return rc;
    int nb = lathe_grad_sum_buckets(L->sum);
    if (lathe_dist_writer())
        lathe_log(LATHE_LOG_INFO, "train.ranks", "%d ranks on %s, %d samples each a step; gradients summed in %d bucket%s "
                  "(train.bucket_mb %g), each sent as backward finishes it", world, on_gpu > 0 ? "GPUs (NCCL)" : "CPUs (MPI)",
                  batch / world, nb, nb == 1 ? "" : "s", mb);
    return 0;
}

int lathe_trainer_run(const cJSON *spec, lathe_graph *g, const lathe_task *task, const char *run_dir, int resume,
                      volatile int *stop) {
    loop L = {spec, g, NULL, task, (uint64_t)num(spec, "train.seed", 0), {0}, {0}, 0, 0, NULL, 0};
    int batch = (int)num(spec, "train.batch", LATHE_TRAIN_BATCH_DEFAULT), epochs = (int)num(spec, "train.epochs", 10);
    int writer = lathe_dist_writer(), world = lathe_dist_world();
    if (batch < 1 || epochs < 1) return lathe_fail(LATHE_EINVAL, "train.batch and train.epochs must be >= 1");
    char ckdir[4200], logpath[4200];
    snprintf(ckdir, sizeof ckdir, "%s/checkpoints", run_dir);
    snprintf(L.last, sizeof L.last, "%s/last.safetensors", ckdir);
    snprintf(L.best, sizeof L.best, "%s/best.safetensors", ckdir);
    snprintf(logpath, sizeof logpath, "%s/log.jsonl", run_dir);
    uint64_t n = task->size(task->ctx);
    long steps_per_epoch = (long)((n + (uint64_t)batch - 1) / (uint64_t)batch);
    lathe_schedule sched;
    int rc = schedule_from_spec(spec, steps_per_epoch, epochs, &sched);
    if (!rc) rc = ranks_ready(&L, batch, n);
    if (!rc) rc = optim_from_spec(spec, g, &L.opt);
    if (!rc && writer) rc = lathe_mkdirs_writable(ckdir); /* tried before the first epoch, not found failing after it */
    int start_epoch = 0;
    uint64_t start_pos = 0;
    double best = -1;
    long bad_steps = 0;
    int resumed = 0;
    if (!rc && resume && access(L.last, F_OK) == 0) {
        rc = lathe_checkpoint_load(L.last, g, L.opt);
        if (!rc) rc = resume_point(L.last, epochs, n, &start_epoch, &start_pos, &best, &bad_steps);
        if (!rc) resume_loss(L.last, &L.epoch_loss, &L.epoch_seen);
        if (!rc && writer) rc = trim_log(logpath, start_epoch);
        if (!rc) lathe_log(LATHE_LOG_INFO, "train.resume", "resuming at epoch %d, sample %" PRIu64, start_epoch + 1, start_pos);
        resumed = !rc;
    } else if (!rc && resume) { /* stopped before its first checkpoint: the same run from the start */
        lathe_log(LATHE_LOG_WARN, "train.resume", "%s has no checkpoint yet: training from the start", run_dir);
    }
    FILE *log = rc || !writer ? NULL : fopen(logpath, resumed ? "a" : "w");
    if (!rc && writer && !log) rc = lathe_fail(LATHE_EIO, "cannot write %s: %s", logpath, strerror(errno));
    rc = lathe_dist_agree(rc);
    long ck_every = (long)num(spec, "train.checkpoint_every", 0), max_bad = (long)num(spec, "train.max_nan_steps", 10);
    for (int epoch = start_epoch; !rc && epoch < epochs; epoch++) {
        double t0 = lathe_now(), wait = 0;
        uint64_t seen = 0, first = epoch == start_epoch ? start_pos : 0;
        if (first == 0) L.epoch_loss = 0, L.epoch_seen = 0; /* else: the interrupted epoch's so far */
        char what[64];
        snprintf(what, sizeof what, "epoch %d/%d", epoch + 1, epochs);
        lathe_progress *prog = writer ? lathe_progress_start(what, n) : NULL;
        prefetch pf = {.task = task, .batch = batch, .size = n};
        int slot = 0;
        if (first < n) rc = lathe_dist_agree(prefetch_start(&pf, slot, epoch, first));
        for (uint64_t pos = first; !rc && pos < n; pos += (uint64_t)batch) {
            double w0 = lathe_now();
            int got = prefetch_wait(&pf), stopping = 0;
            wait += lathe_now() - w0;
            if ((rc = lathe_dist_agree(got < 0 ? got : 0))) break;
            if ((rc = any_rank_stops(stop, &stopping))) break;
            if (stopping) {
                rc = lathe_dist_agree(save(&L, L.last, epoch, pos, best, bad_steps));
                if (!rc) rc = lathe_fail(LATHE_EINTR, "stopped at epoch %d, sample %" PRIu64 " (checkpoint written)", epoch + 1, pos);
                break;
            }
            int ready = slot; /* the ready slot trains; the other one takes the next batch */
            slot = 1 - slot;
            if (pos + (uint64_t)batch < n && (rc = lathe_dist_agree(prefetch_start(&pf, slot, epoch, pos + (uint64_t)batch))))
                break;
            long step = lathe_optim_steps(L.opt) + bad_steps;
            double loss = task->step(task->ctx, ready, got, g, (uint64_t)step);
            int mine = got; /* got becomes the step's samples, all ranks' */
            if (world > 1) rc = ranks_step(&L, &loss, &got, loss < 0 ? (int)loss : 0);
            else if (loss < 0) rc = (int)loss;
            if (rc) break;
            if (L.prescaled && mine > 0) prescale_output(&L, mine, got);
            rc = mine > 0 ? lathe_graph_backward(g, mine) : 0; /* sends the finished buckets as it goes */
            if (world > 1) {
                int summed = lathe_grad_sum_finish(L.sum);
                if (!rc) rc = summed;
            }
            if ((rc = lathe_dist_agree(rc))) break;
            long done = lathe_optim_steps(L.opt);
            int stepped = lathe_optim_step_lrs(L.opt, lathe_schedule_lr(&sched, done), lathe_schedule_bias_lr(&sched, done), NULL);
            if (stepped < 0) {
                rc = stepped;
                break;
            }
            if (stepped) {
                bad_steps++;
                lathe_log(LATHE_LOG_WARN, "train.nan", "step %ld: gradient is NaN/Inf, step skipped (%ld so far)", step, bad_steps);
                if (bad_steps > max_bad)
                    rc = lathe_fail(LATHE_EFORMAT, "%ld steps with NaN/Inf gradients: lower train.lr or check the data", bad_steps);
                continue;
            }
            L.epoch_loss += loss * got, L.epoch_seen += (uint64_t)got, seen += (uint64_t)got;
            lathe_progress_update(prog, pos + (uint64_t)got);
            if (ck_every > 0 && lathe_optim_steps(L.opt) % ck_every == 0 && pos + (uint64_t)got < n)
                rc = lathe_dist_agree(save(&L, L.last, epoch, pos + (uint64_t)got, best, bad_steps));
        }
        prefetch_wait(&pf); /* a stop or an error may leave a batch in flight */
        lathe_progress_finish(prog, seen);
        if (rc) break;
        double seconds = lathe_now() - t0;
        cJSON *entry = cJSON_CreateObject();
        cJSON_AddNumberToObject(entry, "epoch", epoch + 1);
        cJSON_AddNumberToObject(entry, "steps", (double)lathe_optim_steps(L.opt));
        cJSON_AddNumberToObject(entry, "loss", L.epoch_seen ? L.epoch_loss / (double)L.epoch_seen : 0);
        cJSON_AddNumberToObject(entry, "lr", lathe_schedule_lr(&sched, lathe_optim_steps(L.opt)));
        cJSON_AddNumberToObject(entry, "images_per_s", seconds > 0 ? (double)seen / seconds : 0);
        cJSON_AddNumberToObject(entry, "seconds", seconds);
        cJSON_AddNumberToObject(entry, "data_wait_share", seconds > 0 ? wait / seconds : 0);
        rc = entry ? end_epoch(&L, log, entry, epoch, epochs, &best, bad_steps) : lathe_dist_agree(lathe_fail(LATHE_ENOMEM, "log line"));
        cJSON_Delete(entry);
    }
    if (!rc && writer) {
        char path[4300], text[512];
        snprintf(path, sizeof path, "%s/metrics.json", run_dir);
        int len = snprintf(text, sizeof text, "{\"best_%s\": %.6g, \"epochs\": %d, \"steps\": %ld, \"skipped_steps\": %ld}\n",
                           task->metric, best, epochs, lathe_optim_steps(L.opt), bad_steps);
        rc = lathe_write_atomic(path, text, (size_t)len);
    }
    rc = lathe_dist_agree(rc); /* metrics.json's error, rank 0's alone (every other one is agreed by now) */
    if (log) fclose(log);
    lathe_optim_free(L.opt);
    lathe_ranks_gpu_free();
    lathe_grad_sum_free(L.sum);
    return rc;
}
