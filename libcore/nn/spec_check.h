/* spec_check.h - the keys an experiment spec may hold outside model.layers (docs/TRAINING.md),
 * each with its kind and range, checked before a run starts: a typo, a value of the wrong kind, a
 * fraction where a whole number goes or a value out of range is an error naming the key, never a
 * default used in its place. model.layers is checked by the graph builder. */
#ifndef LATHE_NN_SPEC_CHECK_H
#define LATHE_NN_SPEC_CHECK_H
#include <cjson/cJSON.h>
#ifdef __cplusplus
extern "C" {
#endif

/* Returns 0 or -LATHE_EINVAL with the key and what it must be. */
int lathe_spec_check(const cJSON *spec);

#ifdef __cplusplus
}
#endif
#endif
