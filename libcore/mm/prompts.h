/* prompts.h - classes named in text: each class's prompt embedding (the spec's eval.prompt
 * templates filled with the class's words, embedded by the text encoder and averaged), for the
 * zero-shot scoring of image-text heads and the text rows of open-vocabulary detectors
 * (docs/MULTIMODAL.md). */
#ifndef LATHE_MM_PROMPTS_H
#define LATHE_MM_PROMPTS_H
#include <cjson/cJSON.h>

#include "libcore/nn/graph.h"
#include "text_encoder.h"
#ifdef __cplusplus
extern "C" {
#endif

/* out (k x the encoder's width): class c's prompts embedded, averaged and renormalized. A class's
 * words are spec's eval.class_text.<name> when class_text is set, else the name with `_` as spaces;
 * the prompts are eval.prompt (a string with {} or a list of them), else three built in. Returns 0,
 * -LATHE_EINVAL (a bad eval.prompt) or the encoder's errors. */
int lathe_class_prompts(const cJSON *spec, const char *const *names, int k, int class_text, lathe_text_encoder *enc,
                        float *out);

/* spec's data.holdout_classes (a class name or a list of names or indices) as held[c] = 1 for
 * each of the k classes held out of training. Returns 0 or -LATHE_EINVAL naming an unknown class. */
int lathe_holdout_classes(const cJSON *spec, const char *const *names, int k, unsigned char *held);

/* For a graph ending in an open-vocabulary head (a `vocab` layer), fills its text rows with the
 * prompt embeddings of the k class names (the text encoder of spec's text.model, else the default
 * one, on the CPU). 0 when the graph has no such head. Returns 0 or a negative LATHE_E* code (k
 * differing from the head's classes, no text model, an encoder of another width). */
int lathe_vocab_set_classes(lathe_graph *g, const cJSON *spec, const char *const *names, int k, int class_text);

#ifdef __cplusplus
}
#endif
#endif
