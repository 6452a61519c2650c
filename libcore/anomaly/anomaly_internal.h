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
    int sensors;          /* anomaly.input: 0 images (the feature model), 1 the sensor window */
    lathe_graph *g;       /* images only */
    int batch, c, h, w;   /* model input */
    int fc, fh, fw;       /* the feature map the model ends in; sensors: channels x features, 1, 1 */
    int dims;             /* features per patch kept (fc, or the projection's width) */
    float *proj;          /* fc x dims random projection, NULL when dims == fc */
    int method, k;        /* AD_*, neighbours averaged (PatchCore) */
    double blur;          /* sigma of the map's smoothing, in input pixels */
    float mean, std;      /* input normalization */
    /* the memory */
    float *bank;          /* PatchCore: nbank x dims */
    size_t nbank;
    float *gmean, *gchol; /* Gaussian: (fh fw) x dims, (fh fw) x dims x dims */
    float *fmean, *fstd;  /* sensors: each feature's mean and spread over the good training windows */
    float threshold;      /* an image score at or above it is an alarm; NaN when none was set */
    float *feat;          /* scratch: batch x (fh fw) x dims */
} ad_model;

/* anomaly.method as the spec and the memory file spell it. */
const char *ad_method_name(const ad_model *m);
/* Reads the anomaly section and builds the feature model on the CPU (seeded; weights not loaded,
 * the device not set: load the weights, then move it). man: the dataset's manifest (its sensor
 * channels, for anomaly.input sensors; may be NULL for images). */
int ad_model_init(ad_model *m, const cJSON *spec, const lathe_manifest *man);
/* Loads the feature model's weights from checkpoint and the memory from memory.safetensors beside it. */
int ad_model_load(ad_model *m, const char *checkpoint);
void ad_model_free(ad_model *m);
/* Runs the model on the n images in its input buffer; m->feat then holds n x (fh fw) x dims. */
int ad_features(ad_model *m, int n);
/* Moves the model to spec's train.device (images; nothing to move for sensors). */
int ad_model_device(ad_model *m, const cJSON *spec);

/* Where a pass gets its samples' features: a split's labelled samples in dataset order (only the
 * good ones with good_only), images through the loader and the feature model, sensor windows
 * through lathe_sensor_features and the model's standardization. */
typedef struct {
    ad_model *m;
    lathe_loader *l;      /* images */
    float *raw;           /* sensors: n x fc features as computed (NaN for a channel without values) */
    int32_t *labels;
    uint64_t *index;
    size_t n;
    size_t missing;       /* sensors: windows with a channel that has no value */
} ad_source;
int ad_source_open(ad_model *m, lathe_dataset *ds, int split, int good_only, ad_source *s);
uint64_t ad_source_size(const ad_source *s);
/* Features of positions [first, first + n) into m->feat, their labels and dataset indices; returns
 * how many (n clipped at the end) or a negative code. */
int ad_source_batch(ad_source *s, uint64_t first, int n, int32_t *labels, uint64_t *samples);
void ad_source_close(ad_source *s);
/* Sensors: sets m's feature mean and spread from the source's windows (finite values only). */
int ad_sensor_standardization(ad_model *m, const ad_source *s);
/* Patch scores (fh fw) of one image's features against the memory. */
int ad_patch_scores(const ad_model *m, const float *feat, float *scores);
/* The anomaly map (oh x ow) of patch scores: bilinear upsampling over the whole input, then a
 * Gaussian of sigma m->blur input pixels (scaled to the map); returns its maximum, the image score. */
float ad_map(const ad_model *m, const float *scores, int oh, int ow, float *map);
/* An image's (or window's) score from its patch scores: ad_map's maximum, or a window's one score. */
float ad_score(const ad_model *m, const float *scores, int oh, int ow, float *map);
/* The largest map size at most 256 on its long side, keeping (h, w)'s aspect. */
void ad_map_size(int h, int w, int *mh, int *mw);
#endif
