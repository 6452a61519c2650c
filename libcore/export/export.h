/* export.h - a trained graph as an ONNX model (docs/EXPORT.md): the exporter walks the graph's
 * layers (lathe_graph_layer), so every model lathe builds exports, and a layer it cannot express
 * is an error naming it. Batch norm that follows a convolution is folded into it; dropout is the
 * identity. The input is float32 NCHW, already normalized, or uint8 NHWC pixels with the scaling,
 * normalization and layout change inside the graph. A graph ending in `detect` gets its head
 * decoded in the graph: boxes (x1, y1, x2, y2 in input pixels) and per-class scores, optionally
 * through ONNX NonMaxSuppression, or TensorRT's EfficientNMS_TRT plugin, into fixed-size detections. */
#ifndef LATHE_EXPORT_EXPORT_H
#define LATHE_EXPORT_EXPORT_H
#include <stddef.h>

#include "libcore/nn/graph.h"
#ifdef __cplusplus
extern "C" {
#endif

enum { LATHE_NMS_NONE = 0, LATHE_NMS_ONNX = 1, LATHE_NMS_TRT = 2 };

typedef struct {
    int batch;                /* > 0: that batch size; 0: dynamic (the symbolic dimension "N") */
    int input_uint8;          /* 1: uint8 NHWC input, (v / 255 - mean) / std inside the graph */
    float mean, std;          /* the input normalization the model was trained with */
    /* detectors (a graph ending in detect): */
    int bins, classes;        /* distance bins per side, and classes */
    int nms;                  /* LATHE_NMS_* */
    int max_det;              /* detections per image kept by NMS */
    float conf, iou;          /* NMS score floor and IoU threshold */
    const char *const *meta;  /* nmeta key, value pairs for metadata_props */
    size_t nmeta;
} lathe_onnx_opts;

/* ONNX opset lathe writes (Debian's onnx 1.12 reads up to 17). */
#define LATHE_ONNX_OPSET 17

/* Writes g (its current weights, eval behaviour) to path as ONNX. Returns 0, -LATHE_EUNSUPPORTED
 * naming a layer that has no ONNX form, -LATHE_EINVAL (bad options), -LATHE_ENOMEM or -LATHE_EIO. */
int lathe_export_onnx(const lathe_graph *g, const lathe_onnx_opts *o, const char *path);

/* lathe's own engine (docs/EXPORT.md, "The lathe engine"): one safetensors file whose tensors are
 * the inference weights (BN folded into convs, an activation that alone reads a conv fused into it,
 * dropout gone) stored as precision says, and whose
 * metadata holds the layer list that rebuilds the graph (lathe.model, JSON), lathe.engine "1",
 * lathe.precision and the caller's metadata (task, class names, input, normalization, ...). */
enum { LATHE_ENGINE_FP32 = 0, LATHE_ENGINE_FP16 = 1, LATHE_ENGINE_BF16 = 2 };

typedef struct {
    int precision;            /* LATHE_ENGINE_* */
    int bins, classes;        /* a detector's head (recorded in the model) */
    const char *const *meta;  /* nmeta key, value pairs added to the file's metadata */
    size_t nmeta;
} lathe_engine_write_opts;

/* Writes g (its current weights) as a lathe engine at path. Returns 0, -LATHE_EUNSUPPORTED naming a
 * layer the engine cannot hold, -LATHE_ENOMEM or -LATHE_EIO. */
int lathe_export_engine(const lathe_graph *g, const lathe_engine_write_opts *o, const char *path);

#ifdef __cplusplus
}
#endif
#endif
