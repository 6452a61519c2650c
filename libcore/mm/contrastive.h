/* contrastive.h - image-text heads (task: contrastive, docs/MULTIMODAL.md): an image encoder from
 * lathe's layers whose last layer (l2norm) gives scaled unit embeddings in the text encoder's space,
 * trained with a symmetric InfoNCE loss against the frozen text encoder's embeddings of each
 * sample's description (computed once per run, before the first step). Evaluation scores zero-shot
 * classification from class prompts, retrieval both ways, and classes held out of training. */
#ifndef LATHE_MM_CONTRASTIVE_H
#define LATHE_MM_CONTRASTIVE_H
#include <cjson/cJSON.h>
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif

/* The symmetric InfoNCE loss of a batch: logits (n x n) = img (n x d, the l2norm layer's scaled
 * unit rows) . txt^T (n x d, unit rows); row i's target is the uniform distribution over the
 * columns whose text_id equals text_id[i] (identical descriptions are not negatives), and the same
 * by column. Returns (CE over rows + CE over columns) / 2, means over the batch; dimg (may be NULL)
 * gets its gradient. */
double lathe_infonce(int n, int d, const float *img, const float *txt, const int32_t *text_id, float *dimg);

/* Trains (lathe train) and evaluates (lathe eval) a contrastive run from its resolved spec: as
 * lathe_train_classifier and lathe_eval_classifier (libcore/nn/train.h) do for classifiers. */
int lathe_train_contrastive(const cJSON *spec, const char *run_dir, int resume, volatile int *stop);
int lathe_eval_contrastive(const cJSON *spec, const char *checkpoint, const char *dataset, const char *split,
                           const char *out_dir, cJSON **report);

/* Image embeddings (n x text dim, unit rows) of a split's labelled images, in dataset order, from a
 * contrastive run (its resolved spec, whose train.batch becomes batch, and a checkpoint file) into
 * a .npy file (lathe embed --dataset; needs no text model). */
int lathe_contrastive_embed_images(cJSON *spec, const char *checkpoint, const char *dataset, const char *split,
                                   const char *device, int batch, const char *out_npy);

#ifdef __cplusplus
}
#endif
#endif
