/* text_encoder_internal.h - the encoder's state shared by its loader (text_model.c), its CPU
 * forward (text_encoder.c) and its CUDA forward (text_encoder_cuda.c). */
#ifndef LATHE_MM_TEXT_ENCODER_INTERNAL_H
#define LATHE_MM_TEXT_ENCODER_INTERNAL_H
#include <stdint.h>

#include "text_encoder.h"
#include "wordpiece.h"

/* One transformer layer: Q, K and V stacked into one (3D, D) projection. */
typedef struct {
    float *wqkv, *bqkv, *wo, *bo, *ln1_g, *ln1_b, *wi, *bi, *wf, *bf, *ln2_g, *ln2_b;
} text_layer;

struct text_gpu; /* text_encoder_cuda.c */

struct lathe_text_encoder {
    lathe_wordpiece *tok;
    int dim, heads, nlayers, inter, max_pos, vocab, max_tokens;
    float eps;
    int pool_cls, normalize; /* CLS-token pooling instead of the masked mean; L2 normalization */
    float *weights;          /* every tensor, in one block */
    size_t nweights;
    float *word, *pos, *type0, *emb_g, *emb_b;
    text_layer *layer;
    struct text_gpu *gpu; /* NULL: the CPU runs the layers */
    float *scratch;       /* the CPU forward's buffers, grown to the largest batch */
    size_t scratch_floats;
};

/* text_model.c: reads dir's config and weights into e (tok, shapes, weights). */
int text_model_load(lathe_text_encoder *e, const char *dir);
/* text_model.c: dir's config.json (BERT shapes), sentence_bert_config.json (max_seq_length),
 * 1_Pooling/config.json (mean or CLS) and modules.json (Normalize) into e's shapes and flags; the
 * last three may be absent. Returns 0 or a negative code naming the file and key. */
int text_model_read_config(lathe_text_encoder *e, const char *dir);

/* text_encoder_cuda.c: places e's weights on the GPU `ordinal` (-1: "auto", which may keep the CPU
 * with a log line); runs the transformer layers over x (b, l, dim) in place; frees the GPU state. */
int text_gpu_open(lathe_text_encoder *e, const char *device);
int text_gpu_layers(lathe_text_encoder *e, int b, int l, const int32_t *lens, float *x);
void text_gpu_free(struct text_gpu *g);

#endif
