/* anomaly_internal.h - what the anomaly head's files share (not installed): the feature model with
 * its memory, patch features, anomaly maps. anomaly.c builds and loads it, anomaly_train.c fills the
 * memory, anomaly_eval.c scores a split, anomaly_predict.c scores files. */
#ifndef LATHE_ANOMALY_INTERNAL_H
#define LATHE_ANOMALY_INTERNAL_H
#include <cjson/cJSON.h>
#include <stdint.h>

#include "libcore/data/loader.h"
#include "libcore/io/dataset.h"
#include "libcore/nn/graph.h"

enum { AD_PATCHCORE = 0, AD_GAUSSIAN = 1 };

typedef struct {
    lathe_graph *g;
    int batch, c, h, w;   /* model input */
    int fc, fh, fw;       /* the feature map the model ends in */
    int dims;             /* features per patch kept (fc, or the projection's width) */
    float *proj;          /* fc x dims random projection, NULL when dims == fc */
    int method, k;        /* AD_*, neighbours averaged (PatchCore) */
    double blur;          /* sigma of the map's smoothing, in input pixels */
    float mean, std;      /* input normalization */
    /* the memory */
    float *bank;          /* PatchCore: nbank x dims */
    size_t nbank;
    float *gmean, *gchol; /* Gaussian: (fh fw) x dims, (fh fw) x dims x dims */
    float threshold;      /* an image score at or above it is an alarm; NaN when none was set */
    float *feat;          /* scratch: batch x (fh fw) x dims */
} ad_model;

/* Reads the anomaly section and builds the feature model on the CPU (seeded; weights not loaded,
 * the device not set: load the weights, then move it). */
int ad_model_init(ad_model *m, const cJSON *spec);
/* Loads the feature model's weights from checkpoint and the memory from memory.safetensors beside it. */
int ad_model_load(ad_model *m, const char *checkpoint);
void ad_model_free(ad_model *m);
/* Runs the model on the n images in its input buffer; m->feat then holds n x (fh fw) x dims. */
int ad_features(ad_model *m, int n);
/* Patch scores (fh fw) of one image's features against the memory. */
int ad_patch_scores(const ad_model *m, const float *feat, float *scores);
/* The anomaly map (oh x ow) of patch scores: bilinear upsampling over the whole input, then a
 * Gaussian of sigma m->blur input pixels (scaled to the map); returns its maximum, the image score. */
float ad_map(const ad_model *m, const float *scores, int oh, int ow, float *map);
/* A loader of the split's labelled samples in dataset order, sized for the model. */
int ad_loader(const ad_model *m, lathe_dataset *ds, int split, lathe_loader **out);
/* The largest map size at most 256 on its long side, keeping (h, w)'s aspect. */
void ad_map_size(int h, int w, int *mh, int *mw);
#endif
