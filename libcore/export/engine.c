/* engine.c - lathe's inference API (engine.h): the engine file's layer list rebuilt as a graph
 * (inference mode), its weights checked and loaded, batches run, a detector's head decoded. */
#include "engine.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libcore/base/config.h"
#include "libcore/base/error.h"
#include "libcore/io/safetensors.h"
#include "libcore/nn/graph.h"

struct lathe_engine {
    lathe_engine_info info;
    lathe_graph *g;
    lathe_det_head head;
    lathe_det_predict_opts nms;
    char **names;
};

static const char *meta_or(const lathe_st_file *f, const char *key, const char *def) {
    const char *v = lathe_st_meta(f, key);
    return v ? v : def;
}

/* A number from the JSON list metadata value of key ("[0.5, 0.5, 0.5]": the first), else def. */
static double first_number(const lathe_st_file *f, const char *key, double def) {
    cJSON *j = cJSON_Parse(meta_or(f, key, ""));
    const cJSON *x = cJSON_IsArray(j) ? cJSON_GetArrayItem(j, 0) : j;
    double v = cJSON_IsNumber(x) && isfinite(x->valuedouble) ? x->valuedouble : def;
    cJSON_Delete(j);
    return v;
}

static int class_names(lathe_engine *e, const lathe_st_file *f, const char *path) {
    int K = e->info.classes;
    cJSON *j = cJSON_Parse(meta_or(f, "lathe.class_names", "[]"));
    if (!(e->names = calloc((size_t)K + 1, sizeof *e->names))) {
        cJSON_Delete(j);
        return lathe_fail(LATHE_ENOMEM, "class names");
    }
    for (int k = 0; k < K; k++) {
        const cJSON *n = cJSON_GetArrayItem(j, k);
        char fallback[32];
        snprintf(fallback, sizeof fallback, "class %d", k);
        if (!(e->names[k] = strdup(cJSON_IsString(n) ? n->valuestring : fallback))) {
            cJSON_Delete(j);
            return lathe_fail(LATHE_ENOMEM, "class names of %s", path);
        }
    }
    cJSON_Delete(j);
    e->info.class_names = (const char *const *)e->names;
    return 0;
}

/* Every parameter from the file (exactly the graph's tensors, each finite), and no tensor the
 * graph does not know: a file with extra or renamed tensors was not written for this model. */
static int load_weights(lathe_graph *g, const lathe_st_file *f, const char *path) {
    size_t n = lathe_graph_nparams(g);
    if (lathe_st_count(f) != n)
        return lathe_fail(LATHE_EFORMAT, "%s holds %zu tensors, its model %zu", path, lathe_st_count(f), n);
    for (size_t i = 0; i < n; i++) {
        lathe_param *p = lathe_graph_param(g, i);
        if (lathe_st_read_f32(f, p->name, p->data, p->count))
            return lathe_fail(LATHE_EFORMAT, "%s: tensor %s is missing or not of %zu values", path, p->name, p->count);
        for (size_t k = 0; k < p->count; k++)
            if (!isfinite(p->data[k])) return lathe_fail(LATHE_EFORMAT, "%s: tensor %s holds NaN or infinity", path, p->name);
    }
    return 0;
}

static int open_file(lathe_engine *e, const lathe_st_file *f, const char *path, const char *device, int max_batch) {
    if (strcmp(meta_or(f, "lathe.engine", ""), "1"))
        return lathe_fail(LATHE_EFORMAT, "%s is not a lathe engine (no lathe.engine \"1\" in its metadata)", path);
    cJSON *model = cJSON_Parse(meta_or(f, "lathe.model", ""));
    if (!cJSON_IsObject(model)) {
        cJSON_Delete(model);
        return lathe_fail(LATHE_EFORMAT, "%s: its lathe.model is not a JSON model", path);
    }
    int rc = lathe_graph_build(model, max_batch, 0, &e->g);
    const cJSON *bins = cJSON_GetObjectItemCaseSensitive(model, "bins"), *classes = cJSON_GetObjectItemCaseSensitive(model, "classes");
    int nbins = cJSON_IsNumber(bins) ? lathe_json_int(bins->valuedouble) : 0;
    int nclasses = cJSON_IsNumber(classes) ? lathe_json_int(classes->valuedouble) : 0;
    cJSON_Delete(model);
    if (rc) return lathe_fail_context(LATHE_EFORMAT, "%s: its model does not build", path);
    rc = load_weights(e->g, f, path);
    if (rc) return rc;
    lathe_engine_info *in = &e->info;
    int k, strides[8], levels = lathe_graph_detect_levels(e->g, strides, 8);
    lathe_graph_input(e->g, &in->c, &in->h, &in->w);
    lathe_graph_output(e->g, &k);
    in->detector = levels > 0, in->max_batch = max_batch, in->letterbox = (int)first_number(f, "lathe.letterbox", 114);
    in->mean = (float)first_number(f, "lathe.mean", in->detector ? 0 : 0.5);
    in->std = (float)first_number(f, "lathe.std", in->detector ? 1 : 0.25);
    in->precision = meta_or(f, "lathe.precision", "fp32");
    if (!(in->std > 0)) return lathe_fail(LATHE_EFORMAT, "%s: lathe.std must be above 0", path);
    if (in->detector) {
        in->classes = nclasses;
        if (nbins < 2 || nbins > LATHE_MODEL_BINS_MAX || nclasses < 1 || nclasses > LATHE_MODEL_CLASSES_MAX ||
            (k % (4 * nbins + nclasses)))
            return lathe_fail(LATHE_EFORMAT, "%s: a detector without a valid bins/classes record", path);
        rc = lathe_det_head_init(&e->head, in->h, in->w, strides, levels, nbins, nclasses);
        if (!rc && e->head.A * (4 * nbins + nclasses) != k)
            rc = lathe_fail(LATHE_EFORMAT, "%s: %d head values for %d anchors", path, k, e->head.A);
    } else {
        if (levels < 0) return lathe_fail(LATHE_EFORMAT, "%s: its detect levels do not divide the input", path);
        in->classes = k;
    }
    if (!rc) rc = class_names(e, f, path);
    lathe_graph_set_train(e->g, 0);
    lathe_graph_set_constant_weights(e->g);
    if (!rc) rc = lathe_graph_set_device(e->g, device ? device : "cpu");
    if (!rc && lathe_graph_device(e->g) >= 0 && !strcmp(in->precision, "bf16")) rc = lathe_graph_set_precision(e->g, "bf16");
    return rc;
}

int lathe_engine_open(const char *path, const char *device, int max_batch, lathe_engine **out) {
    *out = NULL;
    if (max_batch < 1 || max_batch > 65536) return lathe_fail(LATHE_EINVAL, "max_batch %d: 1..65536", max_batch);
    lathe_st_file *f;
    int rc = lathe_st_open(path, &f);
    if (rc) return rc;
    lathe_engine *e = calloc(1, sizeof *e);
    if (!e) rc = lathe_fail(LATHE_ENOMEM, "engine");
    else rc = open_file(e, f, path, device, max_batch);
    if (!rc) {
        /* the info's precision points into the file's metadata: keep a copy that outlives it */
        static const char *const known[3] = {"fp32", "fp16", "bf16"};
        const char *p = e->info.precision;
        e->info.precision = !strcmp(p, known[1]) ? known[1] : !strcmp(p, known[2]) ? known[2] : known[0];
    }
    lathe_st_close(f);
    if (rc) {
        lathe_engine_close(e);
        return rc;
    }
    lathe_det_predict_defaults(&e->nms);
    e->nms.conf = 0.25f;
    *out = e;
    return 0;
}

void lathe_engine_close(lathe_engine *e) {
    if (!e) return;
    for (int k = 0; e->names && k < e->info.classes; k++) free(e->names[k]);
    free(e->names);
    lathe_det_head_free(&e->head);
    lathe_graph_free(e->g);
    free(e);
}

const lathe_engine_info *lathe_engine_get_info(const lathe_engine *e) { return &e->info; }

int lathe_engine_set_nms(lathe_engine *e, float conf, float iou, int max_det) {
    if (!(conf >= 0 && conf < 1) || !(iou > 0 && iou <= 1) || max_det < 1)
        return lathe_fail(LATHE_EINVAL, "NMS: conf %g in [0, 1), iou %g in (0, 1], max_det %d >= 1", conf, iou, max_det);
    e->nms.conf = conf, e->nms.iou = iou, e->nms.max_det = max_det;
    return 0;
}

/* Forward over the graph's input, then the outputs the caller asked for. */
static int finish(lathe_engine *e, int n, lathe_engine_output *out) {
    int rc = lathe_graph_forward(e->g, n, 0), k;
    if (rc) return rc;
    const float *y = lathe_graph_output(e->g, &k);
    if (!e->info.detector) {
        memcpy(out->logits, y, sizeof(float) * (size_t)n * k);
        return 0;
    }
    for (int i = 0; i < n; i++) {
        int kept = lathe_det_predict(&e->head, &e->nms, y + (size_t)i * k, out->dets + (size_t)i * e->nms.max_det);
        if (kept < 0) return kept;
        out->counts[i] = kept;
    }
    return 0;
}

static int check_run(const lathe_engine *e, const void *in, int n, const lathe_engine_output *out) {
    if (!in || n < 1 || n > e->info.max_batch) return lathe_fail(LATHE_EINVAL, "%d images for an engine of batch %d", n, e->info.max_batch);
    if (!out || (e->info.detector ? !out->dets || !out->counts : !out->logits))
        return lathe_fail(LATHE_EINVAL, "no output buffers for the %s", e->info.detector ? "detections" : "logits");
    return 0;
}

int lathe_engine_run_f32(lathe_engine *e, const float *x, int n, lathe_engine_output *out) {
    int rc = check_run(e, x, n, out);
    if (rc) return rc;
    memcpy(lathe_graph_input(e->g, NULL, NULL, NULL), x, sizeof(float) * (size_t)n * e->info.c * e->info.h * e->info.w);
    return finish(e, n, out);
}

int lathe_engine_run_u8(lathe_engine *e, const uint8_t *images, int n, lathe_engine_output *out) {
    int rc = check_run(e, images, n, out);
    if (rc) return rc;
    const lathe_engine_info *in = &e->info;
    if (in->c != 1 && in->c != 3) return lathe_fail(LATHE_EINVAL, "uint8 RGB input for a model of %d channels", in->c);
    float *x = lathe_graph_input(e->g, NULL, NULL, NULL);
    size_t plane = (size_t)in->h * in->w;
    for (int i = 0; i < n; i++) /* as lathe's loader: (v / 255 - mean) / std in double, luma for one channel */
        for (size_t p = 0; p < plane; p++) {
            const uint8_t *px = images + ((size_t)i * plane + p) * 3;
            float *dst = x + (size_t)i * in->c * plane + p;
            if (in->c == 1) dst[0] = (float)(((0.299 * px[0] + 0.587 * px[1] + 0.114 * px[2]) / 255.0 - in->mean) / in->std);
            else
                for (int c = 0; c < 3; c++) dst[c * plane] = (float)((px[c] / 255.0 - in->mean) / in->std);
        }
    return finish(e, n, out);
}
