/* fusion_internal.h - what fusion.c (the run, its batches, training) and fusion_eval.c (scoring,
 * ablation, the report) share. Not installed. */
#ifndef LATHE_MM_FUSION_INTERNAL_H
#define LATHE_MM_FUSION_INTERNAL_H
#include <cjson/cJSON.h>
#include <stdint.h>

#include "libcore/data/loader.h"
#include "libcore/io/dataset.h"
#include "libcore/nn/graph.h"

/* Which inputs a pass gives the model; the others are masked (zeros: what a missing input is). */
enum { FX_BOTH = 0, FX_IMAGE = 1, FX_SENSORS = 2 };

typedef struct {
    const cJSON *spec;
    lathe_dataset *ds;
    lathe_graph *g;
    int batch, classes, good;  /* good: the class that means no defect, or -1 */
    int c, h, w, S, T;         /* image input; sensor input [S, T, 1] */
    float *smean, *sstd;       /* per sensor channel, from the train split */
    int inputs;                /* fusion.inputs: FX_* the run trains (and is scored) with */
    float drop_image, drop_sensors;
    uint64_t seed;
} fx_run;

/* One batch: images as the loader gives them, sensor windows standardized ([S, T] per sample, zeros
 * where missing), multi-label targets (K per sample), image labels, dataset indices, and whether
 * each window had any value. */
typedef struct {
    float *x, *s, *target;
    int32_t *label;
    uint64_t *index;
    uint8_t *has_sensors;
} fx_batch;

/* Opens the dataset (dataset, else data.dataset) and builds the model; reads the fusion section. */
int fx_open(fx_run *r, const cJSON *spec, const char *dataset);
void fx_close(fx_run *r);
int fx_batch_alloc(const fx_run *r, fx_batch *b);
void fx_batch_free(fx_batch *b);
/* Fills b's sensors, targets and flags for the n samples whose indices b->index holds. */
int fx_fill(const fx_run *r, fx_batch *b, int n);
/* Copies b into the graph's inputs, masking what `inputs` leaves out (and, with dropout keys, what
 * modality dropout draws for each sample), and runs forward. */
int fx_forward(fx_run *r, const fx_batch *b, int n, int inputs, uint64_t dropout_key, uint64_t step);
/* The loader of a split's labelled samples (augmented and shuffled for training). */
int fx_loader(const fx_run *r, int split, int train, lathe_loader **out);
/* Reads (or computes from the train split and writes) the sensor statistics of run_dir. */
int fx_sensor_norm(fx_run *r, const char *run_dir, int compute);
#endif
