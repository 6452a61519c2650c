/* hard_negatives.h - hard-negative mining for detector training (data.hard_background: k). A
 * tiled dataset is mostly empty tiles, and training draws a share of them each epoch
 * (data.background); drawn uniformly, the rare clutter a model takes for a defect (a board trace,
 * a gripper's edge) comes up a couple of times a run. With mining, at the end of every epoch k x
 * the draw's size empty tiles, drawn at random, are scored as validation sees them (the EMA
 * weights, no augmentation: the highest class logit over the anchors), and the next epoch's draw
 * is the highest-scoring of them. The choice is kept in RUN/checkpoints/hard_background.json (the
 * last two epochs'), so a resumed run draws its first epoch as the interrupted one did. */
#ifndef LATHE_DET_HARD_NEGATIVES_H
#define LATHE_DET_HARD_NEGATIVES_H
#include <cjson/cJSON.h>
#include <stdint.h>

#include "detector.h"
#include "libcore/data/det_loader.h"
#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int k;                      /* candidates scored per place of the draw (>= 2; 0: off) */
    uint64_t seed;              /* train.seed: the candidates are drawn from (seed, epoch) */
    int epochs;                 /* train.epochs: after the last one nothing is mined */
    const char *run_dir;
    const unsigned char *held;  /* (classes) 1: held-out classes, whose scores do not count; may be NULL */
    int epoch;                  /* the epoch whose choice the loader holds (-1: none yet) */
    cJSON *kept;                /* {"epoch": [samples]}, as the file has it */
} lathe_hard_negatives;

/* Scores the candidates for epoch next_epoch with d's graph in eval mode (batches in b, whose
 * buffers it overwrites) and hands the loader the highest-scoring. With several ranks each scores
 * its share and all get every score. Returns 0 or a negative LATHE_E* code. */
int lathe_hard_negatives_mine(lathe_hard_negatives *h, lathe_detector *d, lathe_det_loader *l, lathe_det_batch *b,
                              int next_epoch);
/* The sample numbers kept (the file's JSON; NULL: no file) list for epoch into *samples (malloc'd,
 * *n of them; none when there is no list for it). what names the file in messages. Returns 0,
 * -LATHE_EFORMAT (not a mapping of lists of sample numbers) or -LATHE_ENOMEM. */
int lathe_hard_negatives_list(const cJSON *kept, int epoch, const char *what, uint64_t **samples, uint64_t *n);
/* The choice the file keeps for epoch (none when it has no list for it) into the loader: for a
 * run resumed in that epoch. Returns 0, -LATHE_EFORMAT (lathe_hard_negatives_list) or the file's
 * errors. */
int lathe_hard_negatives_restore(lathe_hard_negatives *h, lathe_det_loader *l, int epoch);
void lathe_hard_negatives_free(lathe_hard_negatives *h);

#ifdef __cplusplus
}
#endif
#endif
