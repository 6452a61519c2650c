/* contrastive_internal.h - what training (contrastive.c) and scoring (contrastive_eval.c) of an
 * image-text run share: the dataset, the image graph, the texts' embeddings and the class prompts'. */
#ifndef LATHE_MM_CONTRASTIVE_INTERNAL_H
#define LATHE_MM_CONTRASTIVE_INTERNAL_H
#include <cjson/cJSON.h>
#include <stdint.h>

#include "libcore/data/loader.h"
#include "libcore/io/dataset.h"
#include "libcore/nn/graph.h"

typedef struct {
    const cJSON *spec;
    lathe_dataset *ds;
    lathe_graph *g;
    int batch, dim, classes;
    uint64_t seed;
    char **texts;          /* the distinct descriptions (ntexts) */
    float *text_emb;       /* their embeddings, ntexts x dim, unit rows */
    size_t ntexts;
    int32_t *sample_text;  /* dataset index -> its description's id, -1 without one */
    float *prompt_emb;     /* classes x dim: each class's prompts embedded, averaged, renormalized */
    char **class_names;    /* classes */
    unsigned char *holdout; /* classes: 1 where the class is held out of training */
    int any_holdout;
} cx_run;

/* Opens spec's dataset (or `dataset`), builds the graph at spec's batch and, with_texts, embeds
 * every sample's description and the class prompts with the text encoder (text_model: a folder or
 * NULL for spec's text.model, else the default). Returns 0 or a negative LATHE_E* code; cx_close
 * frees what was made either way. */
int cx_open(cx_run *r, const cJSON *spec, const char *dataset, const char *text_model, int with_texts);
void cx_close(cx_run *r);
/* A loader over split (-1: every sample) without augmentation or shuffling. */
int cx_eval_loader(cx_run *r, int split, lathe_loader **out);
/* Scores the graph (eval mode) on a loader's samples: the zero-shot confusion matrix (classes x
 * classes), retrieval recall at 1/5/10 both ways and the held-out classes' accuracy, as a report
 * (cJSON, "accuracy" the zero-shot accuracy). Returns 0 or an error code. */
int cx_score(cx_run *r, lathe_loader *l, cJSON **report);
/* The image embeddings (n x dim, unit rows) of a loader's samples; *labels and *samples (may be NULL)
 * get theirs. Frees nothing on error. */
int cx_embed(cx_run *r, lathe_loader *l, float **emb, int32_t **labels, uint64_t **samples, uint64_t *n);

#endif
