/* onnx_builder.h - an ONNX model under construction, on the protobuf-c structures generated from
 * Debian's onnx.proto (build/gen/onnx.pb-c.h): nodes with attributes, initializers, graph inputs
 * and outputs with shapes (a dimension < 0 is the symbolic batch "N"), metadata; then written as
 * one file. Every string and array belongs to the builder and is freed with it. A failed
 * allocation is remembered and reported by onnx_write, so building code needs no checks. */
#ifndef LATHE_EXPORT_ONNX_BUILDER_H
#define LATHE_EXPORT_ONNX_BUILDER_H
#include <stddef.h>
#include <stdint.h>

typedef struct onnx_builder onnx_builder;
typedef struct Onnx__NodeProto onnx_node;

/* ONNX element types lathe writes (TensorProto.DataType) */
enum { ONNX_FLOAT = 1, ONNX_UINT8 = 2, ONNX_INT32 = 6, ONNX_INT64 = 7 };

onnx_builder *onnx_builder_new(const char *graph_name);
void onnx_builder_free(onnx_builder *b);

/* A fresh value name "<stem>_<n>", unique in the model; the string belongs to the builder. */
const char *onnx_name(onnx_builder *b, const char *stem);
/* A node computing outputs from inputs (an empty string is an omitted optional input). */
onnx_node *onnx_node_add(onnx_builder *b, const char *op, const char *name, const char *const *in, int nin,
                         const char *const *out, int nout);
/* The common case: one output, a fresh name from op; returns that name. */
const char *onnx_op(onnx_builder *b, const char *op, const char *const *in, int nin);
void onnx_attr_int(onnx_builder *b, onnx_node *n, const char *name, int64_t v);
void onnx_attr_ints(onnx_builder *b, onnx_node *n, const char *name, const int64_t *v, int count);
void onnx_attr_float(onnx_builder *b, onnx_node *n, const char *name, float v);
void onnx_attr_string(onnx_builder *b, onnx_node *n, const char *name, const char *v);
/* Node domain (custom operators such as TensorRT's plugins). */
void onnx_node_domain(onnx_builder *b, onnx_node *n, const char *domain);

/* Constant tensors (copied): returns their name (a fresh one from stem). */
const char *onnx_const_f32(onnx_builder *b, const char *stem, const int64_t *dims, int rank, const float *data);
const char *onnx_const_i64(onnx_builder *b, const char *stem, const int64_t *dims, int rank, const int64_t *data);
/* Shorthands: a 1-D int64 tensor, and a float scalar (rank 0). */
const char *onnx_ints(onnx_builder *b, const int64_t *v, int count);
const char *onnx_scalar(onnx_builder *b, float v);

/* Graph inputs and outputs: element type, dims (< 0: the symbolic batch "N"). */
void onnx_graph_input(onnx_builder *b, const char *name, int elem, const int64_t *dims, int rank);
void onnx_graph_output(onnx_builder *b, const char *name, int elem, const int64_t *dims, int rank);
void onnx_metadata(onnx_builder *b, const char *key, const char *value);
/* An extra operator set the model imports (custom domains). */
void onnx_opset(onnx_builder *b, const char *domain, int64_t version);

/* Serializes the model (IR version 8, default opset `opset`, producer lathe) and writes it
 * durably to path. Returns 0, -LATHE_ENOMEM (an allocation failed while building) or -LATHE_EIO. */
int onnx_write(onnx_builder *b, int opset, const char *path);

#endif
