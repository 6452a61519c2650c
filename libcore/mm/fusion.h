/* fusion.h - image + sensor fusion heads (task: fusion, docs/MULTIMODAL.md "Fusion"): one graph with
 * two inputs, the image (model.input) and the sensor window (an input layer named `sensors`, shape
 * [S, T, 1]: S channels of T steps), whose branches the model's layers join (concat, FiLM), trained
 * multi-label (binary cross-entropy per class: a sample's image label and its boxes' classes; the
 * good class only when nothing else) with modality dropout, so a sample without sensors (or with a
 * window of NaN) is still classified from its image. Sensor channels are standardized by the train
 * split's statistics, kept in the run (sensor_norm.json). */
#ifndef LATHE_MM_FUSION_H
#define LATHE_MM_FUSION_H
#include <cjson/cJSON.h>
#ifdef __cplusplus
extern "C" {
#endif

/* Trains a fusion run as lathe_train_classifier does a classifier (libcore/nn/train.h): the shared
 * loop, val_accuracy (the highest-scoring class against the image label) picks best.safetensors. */
int lathe_train_fusion(const cJSON *spec, const char *run_dir, int resume, volatile int *stop);

/* Evaluates a fusion run's checkpoint on a split: the classifier's report of the fused model's top
 * class, multi-label average precision per class, and an "ablation" object scoring the same split
 * with the image only (the sensor input masked, as a missing window), the sensors only (the image
 * masked) and both, plus the separately trained runs eval.baselines names ({image: RUN, sensors:
 * RUN}); writes report.json, report.html and report.md into out_dir. */
int lathe_eval_fusion(const cJSON *spec, const char *checkpoint, const char *dataset, const char *split,
                      const char *out_dir, cJSON **report);

#ifdef __cplusplus
}
#endif
#endif
