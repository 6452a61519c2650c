/* trainer.h - the training loop every task shares (classifiers, detectors). A task supplies its
 * data and its loss through lathe_task; the loop owns the rest, as the spec's `train` section
 * says (docs/TRAINING.md): optimizer, schedule, init/freeze/lr groups, a helper thread that
 * prepares the next batch during each step, the NaN guard, checkpoints (last.safetensors every
 * epoch and every checkpoint_every steps, best.safetensors by the task's validation metric, the
 * EMA weights used for validation), log.jsonl, metrics.json and an exact resume.
 *
 * Data-parallel (libcore/dist, docs/SCALE.md): with several ranks, train.batch is the global batch;
 * each rank takes its share of every step's samples (rank r the r-th slice of batch / ranks), the
 * gradients are summed over the ranks before the update, so every rank keeps the same weights, and
 * only rank 0 writes the log, the checkpoints and metrics.json. */
#ifndef LATHE_NN_TRAINER_H
#define LATHE_NN_TRAINER_H
#include <cjson/cJSON.h>
#include <stdint.h>

#include "graph.h"
#ifdef __cplusplus
extern "C" {
#endif

/* train.batch when a spec leaves it out (every task and tool uses this one value). */
#define LATHE_TRAIN_BATCH_DEFAULT 32
/* train.bucket_mb when a spec leaves it out: with several ranks, the gradients travel in buckets of
 * this many MiB, each sent as backward finishes it (grad_sum.h; docs/SCALE.md) */
#define LATHE_TRAIN_BUCKET_MB_DEFAULT 4

typedef struct {
    void *ctx;
    const char *metric; /* the validation metric best.safetensors maximizes, e.g. "val_accuracy" */
    /* training samples per epoch */
    uint64_t (*size)(void *ctx);
    /* Prepares samples [pos, pos + n) of epoch's order into buffer slot 0 or 1 (on the helper
     * thread, while the other slot trains). Returns how many, or a negative LATHE_E* code. */
    int (*load)(void *ctx, int slot, int epoch, uint64_t pos, int n);
    /* Copies slot's batch into the graph's input, runs forward (step seeds dropout), and returns
     * the loss with the graph's doutput filled. A negative return is an error code. With several
     * ranks n may be 0 (this rank's share of a short last batch): return 0, after the same
     * collectives as the other ranks. */
    double (*step)(void *ctx, int slot, int n, lathe_graph *g, uint64_t step);
    /* Evaluates g (eval mode is set) on the validation split: adds its keys (val_loss, the metric,
     * anything else) to the epoch's log entry and sets *metric. Returns 0 or an error code. Every
     * rank calls it; rank 0's entry and metric are the ones kept (a task may split the work). */
    int (*validate)(void *ctx, lathe_graph *g, cJSON *entry, double *metric);
    /* 1: step's loss and gradient are this rank's share of the whole step's (the task normalizes by a
     * sum over all the ranks' samples, which it gathers itself with lathe_dist_sum_f64), so the
     * ranks' are added as they are; 0: a mean over its own n samples, weighted by n when added */
    int loss_shared;
} lathe_task;

/* The batch one rank's graph and buffers take: train.batch over the ranks (train.batch itself in
 * one process; lathe_trainer_run refuses a batch the ranks do not divide). */
int lathe_trainer_local_batch(const cJSON *spec);

/* Imports train.init (with train.init_map), then applies train.lr_groups and train.freeze to g.
 * A resumed run (resume, with a last checkpoint in run_dir) skips the import: the checkpoint holds
 * the weights, so the file it came from may be gone. Returns 0 or -LATHE_EINVAL / the checkpoint's
 * errors. */
int lathe_trainer_prepare(const cJSON *spec, lathe_graph *g, const char *run_dir, int resume);

/* Trains g on task into run_dir as spec's train section says; resume continues from
 * run_dir/checkpoints/last.safetensors when it exists. stop (may be NULL) is polled between
 * steps: when it becomes nonzero a checkpoint is written and -LATHE_EINTR returned. Returns 0 or a
 * negative LATHE_E* code with a message. */
int lathe_trainer_run(const cJSON *spec, lathe_graph *g, const lathe_task *task, const char *run_dir, int resume,
                      volatile int *stop);

#ifdef __cplusplus
}
#endif
#endif
