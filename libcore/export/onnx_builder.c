/* onnx_builder.c - an ONNX model on protobuf-c's generated structures (onnx_builder.h). */
#include "onnx_builder.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libcore/base/error.h"
#include "libcore/base/fsutil.h"
#include "onnx.pb-c.h"

/* A growing array of pointers. */
typedef struct {
    void **at;
    size_t n, cap;
} ptr_list;

struct onnx_builder {
    ptr_list pool;                   /* every allocation, freed together */
    ptr_list nodes, inits, inputs, outputs, meta, opsets;
    char *graph_name;
    unsigned long serial;            /* for fresh names */
    int failed;                      /* an allocation failed */
};

static int list_push(ptr_list *l, void *p) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        void **at = realloc(l->at, cap * sizeof *at);
        if (!at) return -1;
        l->at = at, l->cap = cap;
    }
    l->at[l->n++] = p;
    return 0;
}

/* Zeroed memory owned by the builder (NULL after a failure, which is remembered). */
static void *take(onnx_builder *b, size_t size) {
    void *p = calloc(1, size ? size : 1);
    if (!p || list_push(&b->pool, p)) {
        free(p);
        b->failed = 1;
        return NULL;
    }
    return p;
}

static char *copy_str(onnx_builder *b, const char *s) {
    size_t n = strlen(s) + 1;
    char *p = take(b, n);
    if (p) memcpy(p, s, n);
    return p;
}

static void add_to(onnx_builder *b, ptr_list *l, void *p) {
    if (!p || list_push(l, p)) b->failed = 1;
}

onnx_builder *onnx_builder_new(const char *graph_name) {
    onnx_builder *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    b->graph_name = copy_str(b, graph_name);
    if (b->failed) {
        onnx_builder_free(b);
        return NULL;
    }
    return b;
}

void onnx_builder_free(onnx_builder *b) {
    if (!b) return;
    for (size_t i = 0; i < b->pool.n; i++) free(b->pool.at[i]);
    free(b->pool.at), free(b->nodes.at), free(b->inits.at), free(b->inputs.at), free(b->outputs.at);
    free(b->meta.at), free(b->opsets.at);
    free(b);
}

const char *onnx_name(onnx_builder *b, const char *stem) {
    char text[160];
    snprintf(text, sizeof text, "%s_%lu", stem, b->serial++);
    char *s = copy_str(b, text);
    return s ? s : "";
}

onnx_node *onnx_node_add(onnx_builder *b, const char *op, const char *name, const char *const *in, int nin,
                         const char *const *out, int nout) {
    Onnx__NodeProto *n = take(b, sizeof *n);
    char **ins = take(b, sizeof(char *) * (size_t)(nin + 1)), **outs = take(b, sizeof(char *) * (size_t)(nout + 1));
    if (!n || !ins || !outs) return NULL;
    onnx__node_proto__init(n);
    for (int i = 0; i < nin; i++) ins[i] = copy_str(b, in[i]);
    for (int i = 0; i < nout; i++) outs[i] = copy_str(b, out[i]);
    n->n_input = (size_t)nin, n->input = ins, n->n_output = (size_t)nout, n->output = outs;
    n->op_type = copy_str(b, op), n->name = copy_str(b, name ? name : onnx_name(b, op));
    add_to(b, &b->nodes, n);
    return n;
}

const char *onnx_op(onnx_builder *b, const char *op, const char *const *in, int nin) {
    const char *out = onnx_name(b, op);
    onnx_node_add(b, op, NULL, in, nin, &out, 1);
    return out;
}

static Onnx__AttributeProto *attr(onnx_builder *b, onnx_node *n, const char *name, Onnx__AttributeProto__AttributeType t) {
    if (!n) return NULL;
    Onnx__AttributeProto *a = take(b, sizeof *a);
    Onnx__AttributeProto **list = take(b, sizeof *list * (n->n_attribute + 1));
    if (!a || !list) return NULL;
    onnx__attribute_proto__init(a);
    a->name = copy_str(b, name), a->has_type = 1, a->type = t;
    if (n->n_attribute) memcpy(list, n->attribute, sizeof *list * n->n_attribute);
    list[n->n_attribute++] = a;
    n->attribute = list; /* the old list stays in the pool */
    return a;
}

void onnx_attr_int(onnx_builder *b, onnx_node *n, const char *name, int64_t v) {
    Onnx__AttributeProto *a = attr(b, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
    if (a) a->has_i = 1, a->i = v;
}

void onnx_attr_ints(onnx_builder *b, onnx_node *n, const char *name, const int64_t *v, int count) {
    Onnx__AttributeProto *a = attr(b, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
    int64_t *copy = take(b, sizeof *copy * (size_t)count);
    if (!a || !copy) return;
    if (count) memcpy(copy, v, sizeof *copy * (size_t)count);
    a->n_ints = (size_t)count, a->ints = copy;
}

void onnx_attr_float(onnx_builder *b, onnx_node *n, const char *name, float v) {
    Onnx__AttributeProto *a = attr(b, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
    if (a) a->has_f = 1, a->f = v;
}

void onnx_attr_string(onnx_builder *b, onnx_node *n, const char *name, const char *v) {
    Onnx__AttributeProto *a = attr(b, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING);
    char *s = copy_str(b, v);
    if (a && s) a->has_s = 1, a->s.data = (uint8_t *)s, a->s.len = strlen(s);
}

void onnx_node_domain(onnx_builder *b, onnx_node *n, const char *domain) {
    if (n) n->domain = copy_str(b, domain);
}

static const char *constant(onnx_builder *b, const char *stem, int type, const int64_t *dims, int rank, const void *data,
                            size_t elem) {
    Onnx__TensorProto *t = take(b, sizeof *t);
    int64_t *d = take(b, sizeof *d * (size_t)(rank + 1));
    size_t count = 1;
    for (int i = 0; i < rank; i++) count *= (size_t)dims[i];
    uint8_t *raw = take(b, count * elem); /* little-endian on every machine lathe builds for */
    const char *name = onnx_name(b, stem);
    if (!t || !d || !raw) return name;
    onnx__tensor_proto__init(t);
    if (rank) memcpy(d, dims, sizeof *d * (size_t)rank);
    if (count) memcpy(raw, data, count * elem);
    t->n_dims = (size_t)rank, t->dims = d, t->has_data_type = 1, t->data_type = type;
    t->has_raw_data = 1, t->raw_data.data = raw, t->raw_data.len = count * elem;
    t->name = (char *)name;
    add_to(b, &b->inits, t);
    return name;
}

const char *onnx_const_f32(onnx_builder *b, const char *stem, const int64_t *dims, int rank, const float *data) {
    return constant(b, stem, ONNX_FLOAT, dims, rank, data, sizeof(float));
}

const char *onnx_const_i64(onnx_builder *b, const char *stem, const int64_t *dims, int rank, const int64_t *data) {
    return constant(b, stem, ONNX_INT64, dims, rank, data, sizeof(int64_t));
}

const char *onnx_ints(onnx_builder *b, const int64_t *v, int count) {
    int64_t dims[1] = {count};
    return onnx_const_i64(b, "ints", dims, 1, v);
}

const char *onnx_scalar(onnx_builder *b, float v) { return onnx_const_f32(b, "scalar", NULL, 0, &v); }

static Onnx__ValueInfoProto *value_info(onnx_builder *b, const char *name, int elem, const int64_t *dims, int rank) {
    Onnx__ValueInfoProto *v = take(b, sizeof *v);
    Onnx__TypeProto *tp = take(b, sizeof *tp);
    Onnx__TypeProto__Tensor *tt = take(b, sizeof *tt);
    Onnx__TensorShapeProto *sh = take(b, sizeof *sh);
    Onnx__TensorShapeProto__Dimension **dl = take(b, sizeof *dl * (size_t)(rank + 1));
    if (!v || !tp || !tt || !sh || !dl) return NULL;
    onnx__value_info_proto__init(v), onnx__type_proto__init(tp), onnx__type_proto__tensor__init(tt);
    onnx__tensor_shape_proto__init(sh);
    for (int i = 0; i < rank; i++) {
        Onnx__TensorShapeProto__Dimension *d = take(b, sizeof *d);
        if (!d) return NULL;
        onnx__tensor_shape_proto__dimension__init(d);
        if (dims[i] < 0) d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM, d->dim_param = copy_str(b, "N");
        else d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE, d->dim_value = dims[i];
        dl[i] = d;
    }
    sh->n_dim = (size_t)rank, sh->dim = dl;
    tt->has_elem_type = 1, tt->elem_type = elem, tt->shape = sh;
    tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE, tp->tensor_type = tt;
    v->name = copy_str(b, name), v->type = tp;
    return v;
}

void onnx_graph_input(onnx_builder *b, const char *name, int elem, const int64_t *dims, int rank) {
    add_to(b, &b->inputs, value_info(b, name, elem, dims, rank));
}

void onnx_graph_output(onnx_builder *b, const char *name, int elem, const int64_t *dims, int rank) {
    add_to(b, &b->outputs, value_info(b, name, elem, dims, rank));
}

void onnx_metadata(onnx_builder *b, const char *key, const char *value) {
    Onnx__StringStringEntryProto *e = take(b, sizeof *e);
    if (!e) return;
    onnx__string_string_entry_proto__init(e);
    e->key = copy_str(b, key), e->value = copy_str(b, value);
    add_to(b, &b->meta, e);
}

void onnx_opset(onnx_builder *b, const char *domain, int64_t version) {
    Onnx__OperatorSetIdProto *o = take(b, sizeof *o);
    if (!o) return;
    onnx__operator_set_id_proto__init(o);
    o->domain = copy_str(b, domain), o->has_version = 1, o->version = version;
    add_to(b, &b->opsets, o);
}

int onnx_write(onnx_builder *b, int opset, const char *path) {
    onnx_opset(b, "", opset);
    if (b->failed) return lathe_fail(LATHE_ENOMEM, "building the ONNX model for %s", path);
    Onnx__GraphProto graph;
    Onnx__ModelProto model;
    onnx__graph_proto__init(&graph), onnx__model_proto__init(&model);
    graph.name = b->graph_name;
    graph.n_node = b->nodes.n, graph.node = (Onnx__NodeProto **)b->nodes.at;
    graph.n_initializer = b->inits.n, graph.initializer = (Onnx__TensorProto **)b->inits.at;
    graph.n_input = b->inputs.n, graph.input = (Onnx__ValueInfoProto **)b->inputs.at;
    graph.n_output = b->outputs.n, graph.output = (Onnx__ValueInfoProto **)b->outputs.at;
    model.has_ir_version = 1, model.ir_version = 8; /* ONNX 1.10-1.12: opset 17 and below */
    model.producer_name = "lathe", model.producer_version = LATHE_VERSION;
    model.graph = &graph;
    model.n_opset_import = b->opsets.n, model.opset_import = (Onnx__OperatorSetIdProto **)b->opsets.at;
    model.n_metadata_props = b->meta.n, model.metadata_props = (Onnx__StringStringEntryProto **)b->meta.at;
    size_t len = onnx__model_proto__get_packed_size(&model);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf) return lathe_fail(LATHE_ENOMEM, "%zu bytes of ONNX model", len);
    onnx__model_proto__pack(&model, buf);
    int rc = lathe_write_atomic(path, buf, len);
    free(buf);
    return rc;
}
