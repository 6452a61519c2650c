/* checkpoint.h - a training state as one safetensors file: every graph parameter and buffer under
 * its own name, the optimizer state under "optim.<param>.<slot>", and metadata strings (step,
 * epoch, position in the epoch, seed, the best metric, the spec). Written durably (temporary name,
 * fsync, rename); readable by the Python safetensors package. */
#ifndef LATHE_NN_CHECKPOINT_H
#define LATHE_NN_CHECKPOINT_H
#include "graph.h"
#include "optim.h"
#ifdef __cplusplus
extern "C" {
#endif

/* meta: nmeta key/value pairs stored as metadata. opt may be NULL (weights only). */
int lathe_checkpoint_save(const char *path, lathe_graph *g, lathe_optim *opt, const char *const *meta, size_t nmeta);
/* Restores every parameter (and, with opt, the optimizer state and step) from path; every tensor
 * the graph needs must be there with its size. Returns 0, -LATHE_ENOTFOUND or -LATHE_EFORMAT.
 * The file's metadata value for `key` is copied to value (cap bytes) when both are given. */
int lathe_checkpoint_load(const char *path, lathe_graph *g, lathe_optim *opt);
/* Metadata of a checkpoint, copied into value (cap bytes); 0 or -LATHE_ENOTFOUND. */
int lathe_checkpoint_meta(const char *path, const char *key, char *value, size_t cap);
/* Imports weights by name from any safetensors file: each graph parameter whose name (after the
 * mapping file's renames: lines "their_name our_name", '#' comments) is found with the same shape
 * is loaded; the rest keep their values, and each found in another shape or a non-float dtype is
 * logged as a warning. *loaded counts them. Returns 0, or -LATHE_EFORMAT (a malformed mapping
 * line, NaN/Inf values), -LATHE_ENOTFOUND (a mapping line naming a tensor the file or the model
 * lacks; nothing at all imported) or the file's errors. */
int lathe_checkpoint_import(const char *path, const char *mapping, lathe_graph *g, size_t *loaded);

#ifdef __cplusplus
}
#endif
#endif
