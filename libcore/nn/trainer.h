/* trainer.h - the training loop every task shares (classifiers, detectors). A task supplies its
 * data and its loss through lathe_task; the loop owns the rest, as the spec's `train` section
 * says (docs/TRAINING.md): optimizer, schedule, init/freeze/lr groups, a helper thread that
 * prepares the next batch during each step, the NaN guard, checkpoints (last.safetensors every
 * epoch and every checkpoint_every steps, best.safetensors by the task's validation metric, the
 * EMA weights used for validation), log.jsonl, metrics.json and an exact resume. */
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

typedef struct {
    void *ctx;
    const char *metric; /* the validation metric best.safetensors maximizes, e.g. "val_accuracy" */
    /* training samples per epoch */
    uint64_t (*size)(void *ctx);
    /* Prepares samples [pos, pos + n) of epoch's order into buffer slot 0 or 1 (on the helper
     * thread, while the other slot trains). Returns how many, or a negative LATHE_E* code. */
    int (*load)(void *ctx, int slot, int epoch, uint64_t pos, int n);
    /* Copies slot's batch into the graph's input, runs forward (step seeds dropout), and returns
     * the loss with the graph's doutput filled. A negative return is an error code. */
    double (*step)(void *ctx, int slot, int n, lathe_graph *g, uint64_t step);
    /* Evaluates g (eval mode is set) on the validation split: adds its keys (val_loss, the metric,
     * anything else) to the epoch's log entry and sets *metric. Returns 0 or an error code. */
    int (*validate)(void *ctx, lathe_graph *g, cJSON *entry, double *metric);
} lathe_task;

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
