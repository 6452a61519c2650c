/* blocks.h - composite layer types of a model spec (cbs, csp, sppf, resnet), expanded into the
 * primitive layers of graph.c before a graph is built, with generated names chosen so that
 * parameter names match PyTorch's (Ultralytics YOLOv8 modules, torchvision ResNet). The table of
 * blocks and the names they generate is in docs/TRAINING.md. */
#ifndef LATHE_NN_BLOCKS_H
#define LATHE_NN_BLOCKS_H
#include <cjson/cJSON.h>
#ifdef __cplusplus
extern "C" {
#endif

/* Expands the blocks of model.layers. *out receives a new model mapping (the model with its
 * `layers` replaced by the expanded list; the caller frees it with cJSON_Delete), or NULL when
 * model has no block (or no layer list, or a width or depth that lathe_graph_build refuses): build
 * from model as it is then. Numeric `from` values keep their meaning, a block counting as one
 * layer. Returns 0, -LATHE_EINVAL naming the layer and the problem (a bad or unknown argument, a
 * numeric `from` that is not an earlier layer, a generated name too long), or -LATHE_ENOMEM. */
int lathe_blocks_expand(const cJSON *model, cJSON **out);

#ifdef __cplusplus
}
#endif
#endif
