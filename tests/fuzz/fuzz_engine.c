/* fuzz_engine.c - the lathe engine reader (libcore/export/engine.c: `lathe eval ENGINE`, `lathe
 * predict ENGINE` and the C API's lathe_engine_open): the layer list in the file's metadata rebuilt
 * as a graph, its tensors checked and loaded, the detector head's record checked, then one batch
 * run. The first byte picks the input: even, the rest is a whole engine file; odd, the rest is a
 * layer list (the JSON an engine's lathe.model holds, or a spec's model mapping), which the harness
 * builds and writes as an engine with every tensor the model needs, so mutations of the layers
 * reach the weight loader, the head checks and a forward pass rather than stopping at a tensor
 * count. */
#include "fuzz.h"

#include <cjson/cJSON.h>

#include "libcore/export/engine.h"
#include "libcore/io/safetensors.h"
#include "libcore/nn/graph.h"

/* Larger models are legitimate but slow to run: the harness does not write or run them. (Models too
 * large for memory meet lathe's ENOMEM path: run.sh has ASan fail any allocation above 256 MiB.) */
enum { MAX_PARAMS = 1 << 18, MAX_INPUT = 3 * 64 * 64 };

/* Writes the graph the layer list builds, its initial weights as the tensors, to path as an engine.
 * Returns 0 when written, else nonzero (the list does not build, or the model is too large). */
static int write_engine(const char *json, const char *path) {
    cJSON *model = cJSON_Parse(json);
    lathe_graph *g = NULL;
    int rc = cJSON_IsObject(model) ? lathe_graph_build(model, 1, 1, &g) : -1;
    cJSON_Delete(model);
    if (rc) return rc;
    int c, h, w;
    lathe_graph_input(g, &c, &h, &w);
    size_t n = lathe_graph_nparams(g), total = 0;
    lathe_st_tensor *t = calloc(n + 1, sizeof *t);
    for (size_t i = 0; t && i < n; i++) {
        const lathe_param *p = lathe_graph_param(g, i);
        t[i].name = p->name, t[i].data = p->data, t[i].rank = p->rank, t[i].dtype = LATHE_ST_F16;
        for (int k = 0; k < p->rank && k < 8; k++) t[i].shape[k] = p->shape[k];
        total += p->count;
    }
    rc = !t || total > MAX_PARAMS || (size_t)c * h * w > MAX_INPUT;
    const char *meta[] = {"lathe.engine", "1", "lathe.model", json, "lathe.class_names", "[\"good\", \"scratch\"]"};
    if (!rc) rc = lathe_st_write(path, t, n, meta, 3);
    free(t);
    lathe_graph_free(g);
    return rc;
}

/* Opens the engine at path and runs one batch of grey images through it. */
static void open_and_run(const char *path) {
    lathe_engine *e = NULL;
    if (lathe_engine_open(path, "cpu", 1, &e)) return;
    const lathe_engine_info *in = lathe_engine_get_info(e);
    size_t pixels = (size_t)in->h * in->w * 3;
    uint8_t *img = pixels <= MAX_INPUT ? malloc(pixels) : NULL;
    float *logits = malloc(sizeof(float) * ((size_t)in->classes + 1));
    lathe_detection dets[100];
    int counts[1];
    lathe_engine_output out = {in->detector ? NULL : logits, in->detector ? dets : NULL, counts};
    if (img && logits) {
        memset(img, 114, pixels);
        (void)lathe_engine_set_nms(e, 0.01f, 0.7f, 100);
        (void)lathe_engine_run_u8(e, img, 1, &out);
    }
    free(img), free(logits);
    lathe_engine_close(e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    char path[4200];
    if (data[0] & 1) {
        char *json = fuzz_text(data + 1, size - 1);
        snprintf(path, sizeof path, "%s/built.lathe", fuzz_dir());
        int rc = write_engine(json, path);
        free(json);
        if (rc) return 0;
    } else {
        fuzz_write("input.lathe", data + 1, size - 1, path, sizeof path);
    }
    open_and_run(path);
    return 0;
}
