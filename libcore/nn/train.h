/* train.h - training and evaluating image classifiers (a dataset's /labels) from a resolved spec
 * (docs/TRAINING.md): data, model, train sections. Writes into the run folder log.jsonl (one JSON
 * object per logged step and per epoch), checkpoints/last.safetensors (every epoch and every
 * train.checkpoint_every steps) and checkpoints/best.safetensors (best validation accuracy), and
 * metrics.json at the end. The next batch is prepared on a helper thread during each step. Resuming continues from last.safetensors exactly where it stopped: data
 * order, augmentation and dropout are functions of (seed, epoch, position, step), so a resumed run
 * ends with the same weights, bit for bit, as one that was never interrupted (same thread count). */
#ifndef LATHE_NN_TRAIN_H
#define LATHE_NN_TRAIN_H
#include <cjson/cJSON.h>

#include "libcore/data/loader.h"
#ifdef __cplusplus
extern "C" {
#endif

/* Sets o's augmentation (flip, flipud, rotate90, crop, jitter) from spec's data.augment, each off
 * when left out: what every image-level trainer (classifier, image-text head) draws its items with. */
void lathe_train_augment_opts(const cJSON *spec, lathe_loader_opts *o);

/* Trains. stop (may be NULL) is polled between steps: when it becomes nonzero a checkpoint is
 * written and -LATHE_EINTR returned. Returns 0 or a negative LATHE_E* code with a message. */
int lathe_train_classifier(const cJSON *spec, const char *run_dir, int resume, volatile int *stop);

/* Evaluates checkpoint (built from spec's model) on a split of the spec's dataset (or `dataset`
 * when not NULL) and writes report.json and report.html into out_dir. *report (may be NULL) gets
 * the report. Returns 0 or a negative LATHE_E* code. */
int lathe_eval_classifier(const cJSON *spec, const char *checkpoint, const char *dataset, const char *split,
                          const char *out_dir, cJSON **report);

#ifdef __cplusplus
}
#endif
#endif
