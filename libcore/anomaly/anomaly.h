/* anomaly.h - anomaly heads (task: anomaly, docs/MULTIMODAL.md "Anomaly"): learn "normal" from good
 * samples only and score how far each patch of a new image is from it. A feature model (the spec's
 * `model`, any lathe layers ending in a feature map, its weights from train.init or its seed)
 * turns an image into patch features; PatchCore remembers a coreset of the good patches and scores
 * the distance to the nearest, PaDiM fits a Gaussian per patch position and scores the Mahalanobis
 * distance. The image score is the highest value of the anomaly map (patch scores upsampled to the
 * image and smoothed). Training is one pass: nothing is learned by gradient. */
#ifndef LATHE_ANOMALY_ANOMALY_H
#define LATHE_ANOMALY_ANOMALY_H
#include <cjson/cJSON.h>
#include <stddef.h>
#ifdef __cplusplus
extern "C" {
#endif

/* Builds the memory of a run from the good samples (image label 0) of the train split into run_dir:
 * checkpoints/best.safetensors (the feature model's weights), checkpoints/memory.safetensors (the
 * bank or the Gaussians, and the alarm threshold), metrics.json and log.jsonl. The threshold is the
 * F1-best one on the val split's labelled samples when it has defects, else three standard
 * deviations above its good ones' mean score (at least their highest); without a val split every
 * tenth good training image is held out of the memory for it. stop (may be NULL) is polled between batches (-LATHE_EINTR). resume redoes the pass
 * (it is deterministic). Returns 0 or a negative LATHE_E* code with a message. */
int lathe_train_anomaly(const cJSON *spec, const char *run_dir, int resume, volatile int *stop);

/* Scores a split (of the spec's dataset, or `dataset`): image AUROC (good = label 0 against every
 * other label), per defect class, pixel AUROC and PRO where the dataset has masks, the F1-best
 * threshold and the run threshold's accuracy; writes report.json, report.md, report.html and the
 * drawn maps of the most telling images (maps/) into out_dir. *report (may be NULL) gets report.json. */
int lathe_eval_anomaly(const cJSON *spec, const char *checkpoint, const char *dataset, const char *split,
                       const char *out_dir, cJSON **report);

/* Scores image files (JPEG or PNG) with a run: each becomes OUT/maps/<index>-<stem>.png (the anomaly
 * map at the file's size as grey levels, 128 at the run's threshold, or at score 1 when it has none)
 * and an entry of OUT/anomaly.json (id, file_name, width, height, score, anomalous, map). Images
 * are letterboxed to the model's square input, as ingest --size does. A file that cannot be read
 * or decoded is logged and counted in *skipped; the others are still scored. */
int lathe_predict_anomaly(const cJSON *spec, const char *checkpoint, const char *const *files, size_t n,
                          const char *out_dir, size_t *skipped);

#ifdef __cplusplus
}
#endif
#endif
