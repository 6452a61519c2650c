/* test_engine.c - lathe's engine file and C API (libcore/export/engine.h): a classifier with every
 * foldable and unfoldable layer kind and a small detector, exported and reopened, give the graph's
 * own logits and detections (fp32 to 1e-4; fp16 and bf16 weights to their rounding), uint8 input
 * equals the loader's normalization, a graph with constant weights gives the same logits and refuses
 * to train, and truncated, tampered or foreign files are clear errors. */
#include "testutil.h"

#include <cjson/cJSON.h>
#include <math.h>

#include "libcore/base/error.h"
#include "libcore/export/engine.h"
#include "libcore/export/export.h"
#include "libcore/io/safetensors.h"
#include "libcore/nn/checkpoint.h"
#include "libcore/nn/graph.h"

static const char *classifier_json =
    "{\"input\": [3, 16, 16], \"classes\": 5, \"layers\": ["
    "{\"name\": \"c1\", \"type\": \"conv\", \"out\": 8, \"k\": 3, \"bias\": 0},"
    "{\"name\": \"b1\", \"type\": \"bn\"},"
    "{\"name\": \"a1\", \"type\": \"silu\"},"
    "{\"name\": \"c2\", \"type\": \"conv\", \"out\": 8, \"k\": 3, \"stride\": 2},"
    "{\"name\": \"r2\", \"type\": \"relu\"},"
    "{\"name\": \"b2\", \"type\": \"bn\"},"
    "{\"name\": \"up\", \"type\": \"upsample\", \"factor\": 2},"
    "{\"name\": \"cat\", \"type\": \"concat\", \"from\": [\"up\", \"a1\"]},"
    "{\"name\": \"dw\", \"type\": \"conv\", \"out\": 16, \"k\": 3, \"groups\": -1, \"dilation\": 2},"
    "{\"name\": \"b3\", \"type\": \"bn\"},"
    "{\"name\": \"sum\", \"type\": \"add\", \"from\": [\"b3\", \"cat\"]},"
    "{\"name\": \"pool\", \"type\": \"maxpool\", \"k\": 2},"
    "{\"name\": \"pool2\", \"type\": \"maxpool\", \"k\": 4, \"from\": \"sum\"},"
    "{\"name\": \"tok\", \"type\": \"concat\", \"tokens\": 1, \"from\": [\"pool\", \"pool2\"]},"
    "{\"name\": \"ln\", \"type\": \"layernorm\"},"
    "{\"name\": \"att\", \"type\": \"attention\", \"heads\": 2},"
    "{\"name\": \"g\", \"type\": \"gelu\"},"
    "{\"name\": \"gap\", \"type\": \"gap\"},"
    "{\"name\": \"drop\", \"type\": \"dropout\", \"p\": 0.3},"
    "{\"name\": \"fc\", \"type\": \"linear\", \"out\": \"classes\"}]}";

static const char *detector_json =
    "{\"input\": [3, 32, 32], \"classes\": 2, \"bins\": 4, \"layers\": ["
    "{\"name\": \"s\", \"type\": \"conv\", \"out\": 8, \"k\": 3, \"stride\": 2, \"bias\": 0},"
    "{\"name\": \"sb\", \"type\": \"bn\"},"
    "{\"name\": \"p3\", \"type\": \"leaky\", \"slope\": 0.1},"
    "{\"name\": \"d\", \"type\": \"conv\", \"out\": 8, \"k\": 3, \"stride\": 2},"
    "{\"name\": \"p4\", \"type\": \"relu\"},"
    "{\"name\": \"h3\", \"type\": \"conv\", \"out\": 18, \"k\": 1, \"from\": [\"p3\"]},"
    "{\"name\": \"h4\", \"type\": \"conv\", \"out\": 18, \"k\": 1, \"from\": [\"p4\"]},"
    "{\"name\": \"det\", \"type\": \"detect\", \"from\": [\"h3\", \"h4\"]}]}";

static uint64_t seed = 11;
static float uni(void) {
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((double)(seed >> 11) / 9007199254740992.0);
}

/* A graph with random weights and batch-norm statistics far from the identity (so folding shows). */
static lathe_graph *random_graph(const char *json, int batch) {
    cJSON *model = cJSON_Parse(json);
    lathe_graph *g = NULL;
    assert_int_equal(lathe_graph_build(model, batch, 3, &g), 0);
    cJSON_Delete(model);
    for (size_t i = 0; i < lathe_graph_nparams(g); i++) {
        lathe_param *p = lathe_graph_param(g, i);
        int var = strstr(p->name, "running_var") != NULL;
        for (size_t k = 0; k < p->count; k++) p->data[k] = var ? 0.5f + uni() : p->data[k] + 0.2f * (uni() - 0.5f);
    }
    lathe_graph_set_train(g, 0);
    return g;
}

static void fill_input(lathe_graph *g, int n, uint8_t *pixels) {
    int c, h, w;
    float *x = lathe_graph_input(g, &c, &h, &w);
    for (int i = 0; i < n * h * w * 3; i++) pixels[i] = (uint8_t)(uni() * 255.99f);
    for (int i = 0; i < n; i++) /* the loader's normalization (mean 0.5, std 0.25 here) */
        for (int p = 0; p < h * w; p++)
            for (int ch = 0; ch < c; ch++)
                x[((size_t)i * c + ch) * h * w + p] = (float)((pixels[((size_t)i * h * w + p) * 3 + ch] / 255.0 - 0.5) / 0.25);
}

static char *export_engine(lathe_graph *g, const char *dir, const char *file, int precision, int bins, int classes) {
    char *path = malloc(4300);
    snprintf(path, 4300, "%s/%s", dir, file);
    const char *meta[] = {"lathe.mean", "[0.5, 0.5, 0.5]", "lathe.std", "[0.25, 0.25, 0.25]", "lathe.class_names",
                          "[\"a\", \"b\", \"c\", \"d\", \"e\"]"};
    lathe_engine_write_opts o = {precision, bins, classes, meta, 3};
    assert_int_equal(lathe_export_engine(g, &o, path), 0);
    return path;
}

static void classifier_logits_match_the_graph(void **state) {
    (void)state;
    char *dir = test_tempdir("engine");
    enum { N = 3, K = 5 };
    lathe_graph *g = random_graph(classifier_json, N);
    uint8_t pixels[N * 16 * 16 * 3];
    fill_input(g, N, pixels);
    float x[N * 3 * 16 * 16], want[N * K], got[N * K];
    memcpy(x, lathe_graph_input(g, NULL, NULL, NULL), sizeof x);
    lathe_graph_forward(g, N, 0);
    memcpy(want, lathe_graph_output(g, NULL), sizeof want);
    static const float tol[3] = {1e-4f, 3e-2f, 2e-1f}; /* fp32, fp16, bf16 weights */
    static const char *const files[3] = {"c32.lathe", "c16.lathe", "cbf.lathe"};
    for (int prec = 0; prec < 3; prec++) {
        char *path = export_engine(g, dir, files[prec], prec, 0, 0);
        lathe_engine *e;
        assert_int_equal(lathe_engine_open(path, "cpu", 4, &e), 0);
        const lathe_engine_info *in = lathe_engine_get_info(e);
        assert_int_equal(in->detector, 0);
        assert_int_equal(in->classes, K);
        assert_int_equal(in->c * 100 + in->h, 316);
        assert_string_equal(in->class_names[4], "e");
        lathe_engine_output out = {got, NULL, NULL};
        assert_int_equal(lathe_engine_run_f32(e, x, N, &out), 0);
        for (int i = 0; i < N * K; i++)
            if (fabsf(got[i] - want[i]) > tol[prec] * (1 + fabsf(want[i])))
                fail_msg("precision %d logit %d: engine %.6f, graph %.6f", prec, i, got[i], want[i]);
        if (prec == 0) { /* uint8 input: the same normalization inside */
            float again[N * K];
            out.logits = again;
            assert_int_equal(lathe_engine_run_u8(e, pixels, N, &out), 0);
            for (int i = 0; i < N * K; i++) assert_true(fabsf(again[i] - got[i]) < 1e-5f * (1 + fabsf(got[i])));
            assert_int_equal(lathe_engine_run_f32(e, x, 5, &out), -LATHE_EINVAL); /* above max_batch */
            lathe_engine_output none = {NULL, NULL, NULL};
            assert_int_equal(lathe_engine_run_f32(e, x, 1, &none), -LATHE_EINVAL);
        }
        lathe_engine_close(e);
        free(path);
    }
    /* constant weights: the same logits, twice (the second from the weights kept in oneDNN's
       layout), and no training from then on */
    lathe_graph_set_constant_weights(g);
    for (int rep = 0; rep < 2; rep++) {
        memcpy(lathe_graph_input(g, NULL, NULL, NULL), x, sizeof x);
        lathe_graph_forward(g, N, 0);
        assert_memory_equal(lathe_graph_output(g, NULL), want, sizeof want);
    }
    assert_int_equal(lathe_graph_backward(g, N), -LATHE_EINVAL);
    lathe_graph_free(g);
    /* a conv with a fused activation (act:) builds and runs, and refuses to train */
    cJSON *fused = cJSON_Parse("{\"input\": [3, 8, 8], \"layers\": [{\"type\": \"conv\", \"out\": 4, \"act\": \"leaky\","
                               " \"slope\": 0.2}, {\"type\": \"gap\"}]}");
    assert_int_equal(lathe_graph_build(fused, 1, 0, &g), 0);
    lathe_graph_forward(g, 1, 0);
    assert_int_equal(lathe_graph_backward(g, 1), -LATHE_EINVAL);
    assert_non_null(strstr(lathe_last_error(), "inference"));
    lathe_graph_free(g);
    cJSON_ReplaceItemInObject(cJSON_GetArrayItem(cJSON_GetObjectItem(fused, "layers"), 0), "act", cJSON_CreateString("tanh"));
    assert_int_equal(lathe_graph_build(fused, 1, 0, &g), -LATHE_EINVAL);
    cJSON_Delete(fused);
    free(dir);
}

/* At batch 8 and up a Winograd-eligible conv runs Winograd with its activation after it rather
 * than fused (kernels/cpu/conv_dnnl.c): the same logits. */
static void large_batches_match_the_graph(void **state) {
    (void)state;
    char *dir = test_tempdir("engine");
    enum { N = 8, K = 5 };
    lathe_graph *g = random_graph(classifier_json, N);
    uint8_t pixels[N * 16 * 16 * 3];
    fill_input(g, N, pixels);
    static float x[N * 3 * 16 * 16];
    float want[N * K], got[N * K];
    memcpy(x, lathe_graph_input(g, NULL, NULL, NULL), sizeof x);
    lathe_graph_forward(g, N, 0);
    memcpy(want, lathe_graph_output(g, NULL), sizeof want);
    char *path = export_engine(g, dir, "big.lathe", 0, 0, 0);
    lathe_engine *e;
    assert_int_equal(lathe_engine_open(path, "cpu", N, &e), 0);
    lathe_engine_output out = {got, NULL, NULL};
    for (int rep = 0; rep < 2; rep++) {
        assert_int_equal(lathe_engine_run_f32(e, x, N, &out), 0);
        for (int i = 0; i < N * K; i++)
            if (fabsf(got[i] - want[i]) > 1e-4f * (1 + fabsf(want[i])))
                fail_msg("logit %d: engine %.6f, graph %.6f", i, got[i], want[i]);
    }
    lathe_engine_close(e);
    lathe_graph_free(g);
    free(path);
    free(dir);
}

static void detector_detections_match_the_graph(void **state) {
    (void)state;
    char *dir = test_tempdir("engine");
    enum { N = 2 };
    lathe_graph *g = random_graph(detector_json, N);
    uint8_t pixels[N * 32 * 32 * 3];
    fill_input(g, N, pixels);
    float x[N * 3 * 32 * 32];
    memcpy(x, lathe_graph_input(g, NULL, NULL, NULL), sizeof x);
    lathe_graph_forward(g, N, 0);
    int k, strides[2];
    const float *y = lathe_graph_output(g, &k);
    assert_int_equal(lathe_graph_detect_levels(g, strides, 2), 2);
    lathe_det_head hd;
    assert_int_equal(lathe_det_head_init(&hd, 32, 32, strides, 2, 4, 2), 0);
    lathe_det_predict_opts o;
    lathe_det_predict_defaults(&o);
    o.conf = 0.01f, o.max_det = 20;
    lathe_detection want[N][20], got[N][20];
    int want_n[N], got_n[N];
    for (int i = 0; i < N; i++) want_n[i] = lathe_det_predict(&hd, &o, y + (size_t)i * k, want[i]);
    char *path = export_engine(g, dir, "d.lathe", 0, 4, 2);
    lathe_engine *e;
    assert_int_equal(lathe_engine_open(path, NULL, N, &e), 0);
    assert_int_equal(lathe_engine_get_info(e)->detector, 1);
    assert_int_equal(lathe_engine_get_info(e)->classes, 2);
    assert_int_equal(lathe_engine_set_nms(e, 0.01f, 0.7f, 20), 0);
    assert_int_equal(lathe_engine_set_nms(e, 1.5f, 0.7f, 20), -LATHE_EINVAL);
    lathe_engine_output out = {NULL, &got[0][0], got_n};
    assert_int_equal(lathe_engine_run_f32(e, x, N, &out), 0);
    for (int i = 0; i < N; i++) {
        assert_true(want_n[i] > 0);
        assert_int_equal(got_n[i], want_n[i]);
        for (int d = 0; d < got_n[i]; d++) {
            assert_int_equal(got[i][d].label, want[i][d].label);
            assert_true(fabsf(got[i][d].score - want[i][d].score) < 1e-4f);
            for (int c = 0; c < 4; c++) assert_true(fabsf(got[i][d].box[c] - want[i][d].box[c]) < 1e-3f);
        }
    }
    lathe_engine_close(e);
    lathe_det_head_free(&hd);
    lathe_graph_free(g);
    free(path);
    free(dir);
}

/* Rewrites the engine at src to dst with one change: the model text, a tensor renamed or poisoned. */
static void tamper(const char *src, const char *dst, const char *model, int rename, int poison) {
    lathe_st_file *f;
    assert_int_equal(lathe_st_open(src, &f), 0);
    size_t n = lathe_st_count(f);
    lathe_st_tensor *t = calloc(n, sizeof *t);
    float **data = calloc(n, sizeof *data);
    for (size_t i = 0; i < n; i++) {
        const char *dtype;
        int64_t shape[8];
        int rank;
        const char *name = lathe_st_name(f, i, &dtype, shape, &rank);
        size_t count = 1;
        for (int r = 0; r < rank; r++) count *= (size_t)shape[r], t[i].shape[r] = (int)shape[r];
        data[i] = malloc(sizeof(float) * count);
        assert_int_equal(lathe_st_read_f32(f, name, data[i], count), 0);
        if (poison && i == 0) data[i][0] = NAN;
        t[i].name = rename && i == 0 ? "renamed.weight" : name, t[i].data = data[i], t[i].rank = rank;
    }
    const char *meta[] = {"lathe.engine", "1", "lathe.model", model ? model : lathe_st_meta(f, "lathe.model")};
    assert_int_equal(lathe_st_write(dst, t, n, meta, 2), 0);
    lathe_st_close(f);
    for (size_t i = 0; i < n; i++) free(data[i]);
    free(data), free(t);
}

static void broken_files_are_clear_errors(void **state) {
    (void)state;
    char *dir = test_tempdir("engine");
    lathe_graph *g = random_graph(classifier_json, 1);
    char *path = export_engine(g, dir, "good.lathe", 0, 0, 0), bad[4400];
    lathe_engine *e;
    size_t len = 0;
    uint8_t *bytes = test_read_file(path, &len);
    snprintf(bad, sizeof bad, "%s/cut.lathe", dir);
    size_t cuts[] = {0, 7, 100, len / 2, len - 1};
    for (size_t c = 0; c < sizeof cuts / sizeof cuts[0]; c++) { /* truncated anywhere */
        FILE *f = fopen(bad, "wb");
        fwrite(bytes, 1, cuts[c], f);
        fclose(f);
        assert_int_equal(lathe_engine_open(bad, "cpu", 1, &e), -LATHE_EFORMAT);
        assert_null(e);
    }
    free(bytes);
    snprintf(bad, sizeof bad, "%s/model.lathe", dir);
    tamper(path, bad, "{\"input\": [3, 16, 16], \"layers\": [{\"type\": \"nonsense\"}]}", 0, 0);
    assert_int_equal(lathe_engine_open(bad, "cpu", 1, &e), -LATHE_EFORMAT);
    assert_non_null(strstr(lathe_last_error(), "does not build"));
    /* numbers no model has (found by fuzz_engine: the first was an undefined conversion to int) */
    static const char *const hostile[] = {
        "{\"input\": [3, 1e46, 16], \"layers\": [{\"type\": \"gap\"}]}",
        "{\"input\": [3, 16.5, 16], \"layers\": [{\"type\": \"gap\"}]}",
        "{\"input\": [3, 16, 16], \"width\": 1e300, \"layers\": [{\"type\": \"gap\"}]}",
        "{\"input\": [3, 16, 16], \"depth\": 1e15, \"layers\": [{\"type\": \"relu\", \"repeat\": 1e12}]}",
        "{\"input\": [3, 16, 16], \"layers\": [{\"type\": \"conv\", \"out\": -1e40, \"k\": 1e40}]}",
        "{\"input\": [3, 16, 16], \"layers\": [{\"type\": \"relu\", \"from\": -1e40}]}",
    };
    for (size_t k = 0; k < sizeof hostile / sizeof *hostile; k++) {
        tamper(path, bad, hostile[k], 0, 0);
        assert_int_equal(lathe_engine_open(bad, "cpu", 1, &e), -LATHE_EFORMAT);
        assert_non_null(strstr(lathe_last_error(), "does not build"));
    }
    tamper(path, bad, "not json", 0, 0);
    assert_int_equal(lathe_engine_open(bad, "cpu", 1, &e), -LATHE_EFORMAT);
    tamper(path, bad, NULL, 1, 0);
    assert_int_equal(lathe_engine_open(bad, "cpu", 1, &e), -LATHE_EFORMAT);
    tamper(path, bad, NULL, 0, 1);
    assert_int_equal(lathe_engine_open(bad, "cpu", 1, &e), -LATHE_EFORMAT);
    assert_non_null(strstr(lathe_last_error(), "NaN"));
    /* a training checkpoint is not an engine */
    snprintf(bad, sizeof bad, "%s/ck.safetensors", dir);
    assert_int_equal(lathe_checkpoint_save(bad, g, NULL, NULL, 0), 0);
    assert_int_equal(lathe_engine_open(bad, "cpu", 1, &e), -LATHE_EFORMAT);
    assert_non_null(strstr(lathe_last_error(), "not a lathe engine"));
    snprintf(bad, sizeof bad, "%s/none.lathe", dir);
    assert_int_equal(lathe_engine_open(bad, "cpu", 1, &e), -LATHE_ENOTFOUND);
    assert_int_equal(lathe_engine_open(path, "cpu", 0, &e), -LATHE_EINVAL);
    assert_int_equal(lathe_engine_open(path, "tpu", 1, &e), -LATHE_EINVAL);
    lathe_graph_free(g);
    free(path);
    free(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(classifier_logits_match_the_graph),
        cmocka_unit_test(large_batches_match_the_graph),
        cmocka_unit_test(detector_detections_match_the_graph),
        cmocka_unit_test(broken_files_are_clear_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
