/* test_blocks.c - composite blocks (libcore/nn/blocks.c) expanded and built: the parameter names
 * and shapes each generates (torchvision's ResNet state_dict keys, YOLOv8-style cbs/csp/sppf),
 * width and depth scaling, numeric `from` across blocks, output shapes, the reference detector
 * experiments/detect/models/yolo_like.yaml, and refusals of bad arguments. */
#include "testutil.h"

#include <math.h>

#include "libcore/base/config.h"
#include "libcore/base/error.h"
#include "libcore/nn/graph.h"

static cJSON *model_of(const char *yaml) {
    cJSON *c;
    assert_int_equal(lathe_config_parse(yaml, "model", &c), 0);
    return c;
}

static lathe_graph *build(const char *yaml) {
    cJSON *m = model_of(yaml);
    lathe_graph *g;
    int rc = lathe_graph_build(m, 1, 1, &g);
    if (rc) fail_msg("build: %s", lathe_last_error());
    cJSON_Delete(m);
    return g;
}

/* The parameter's shape as "a,b,c,d", or "missing". */
static const char *shape_of(lathe_graph *g, const char *name) {
    static char s[64];
    lathe_param *p = lathe_graph_find_param(g, name);
    if (!p) return "missing";
    s[0] = '\0';
    for (int k = 0; k < p->rank; k++) snprintf(s + strlen(s), sizeof s - strlen(s), k ? ",%d" : "%d", p->shape[k]);
    return s;
}

static int output_size(const lathe_graph *g) {
    int k;
    lathe_graph_output(g, &k);
    return k;
}

/* The output shape (C, H, W) of the layer `name`, read from the graph's summary table. */
static void layer_shape(const lathe_graph *g, const char *name, int chw[3]) {
    char *text = NULL, line[256], lname[128], type[32];
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    lathe_graph_summary(g, f);
    fclose(f);
    chw[0] = chw[1] = chw[2] = -1;
    for (const char *at = text; *at;) {
        size_t n = strcspn(at, "\n");
        snprintf(line, sizeof line, "%.*s", (int)n, at);
        int i, c, h, w;
        if (sscanf(line, "%d %127s %31s %d x %d x %d", &i, lname, type, &c, &h, &w) == 6 && !strcmp(lname, name))
            chw[0] = c, chw[1] = h, chw[2] = w;
        at += n + (at[n] != '\0');
    }
    free(text);
}

static void cbs_csp_sppf_names_and_widths(void **state) {
    (void)state;
    /* width 0.5, depth 0.5: cbs 32 -> 16; csp out 64 -> 32, hidden 64 x 0.5 x 0.5 = 16, n 2 -> 1 */
    lathe_graph *g = build("input: [3, 32, 32]\nwidth: 0.5\ndepth: 0.5\nlayers:\n"
                           "  - {name: stem, type: cbs, out: 32, k: 3, stride: 2}\n"
                           "  - {name: c2f, type: csp, out: 64, n: 2}\n"
                           "  - {name: spp, type: sppf, out: 96, k: 5}\n"
                           "  - {name: side, type: cbs, out: 24, fixed_width: 1, from: stem}\n"
                           "  - {name: cat, type: concat, from: [c2f, -1, -2]}\n");
    assert_string_equal(shape_of(g, "stem.conv.weight"), "16,3,3,3");
    assert_string_equal(shape_of(g, "stem.conv.bias"), "missing");
    assert_string_equal(shape_of(g, "stem.bn.running_var"), "16");
    assert_string_equal(shape_of(g, "c2f.cv1a.conv.weight"), "16,16,1,1");
    assert_string_equal(shape_of(g, "c2f.cv1b.bn.weight"), "16");
    assert_string_equal(shape_of(g, "c2f.m.0.cv1.conv.weight"), "16,16,3,3");
    assert_string_equal(shape_of(g, "c2f.m.0.cv2.conv.weight"), "16,16,3,3");
    assert_string_equal(shape_of(g, "c2f.m.1.cv1.conv.weight"), "missing"); /* depth 0.5: one bottleneck */
    assert_string_equal(shape_of(g, "c2f.cv2.conv.weight"), "32,48,1,1");    /* concat of cv1a, cv1b, m.0 */
    assert_string_equal(shape_of(g, "spp.cv1.conv.weight"), "24,32,1,1"); /* out / 2 */
    assert_string_equal(shape_of(g, "spp.cv2.conv.weight"), "48,96,1,1");
    assert_string_equal(shape_of(g, "side.conv.weight"), "24,16,1,1");     /* fixed width, from the stem */
    int chw[3];
    layer_shape(g, "c2f", chw); /* the block's name is its output */
    assert_true(chw[0] == 32 && chw[1] == 16 && chw[2] == 16);
    layer_shape(g, "c2f.m.0", chw); /* the shortcut's add */
    assert_true(chw[0] == 16 && chw[1] == 16);
    /* -1 is the block before (side, 24), -2 the one before it (spp, 48: a block counts as one) */
    layer_shape(g, "cat", chw);
    assert_int_equal(chw[0], 32 + 24 + 48);
    assert_int_equal(output_size(g), 104 * 16 * 16);
    float *x = lathe_graph_input(g, NULL, NULL, NULL);
    for (int i = 0; i < 3 * 32 * 32; i++) x[i] = (float)(i % 5) * 0.2f - 0.4f;
    lathe_graph_forward(g, 1, 0);
    float *dy = lathe_graph_doutput(g);
    for (int i = 0; i < 104 * 16 * 16; i++) dy[i] = (float)(i % 3) - 1.0f;
    lathe_graph_backward(g, 1);
    const char *const reached[] = {"stem.conv.weight", "c2f.cv1a.conv.weight", "c2f.m.0.cv1.bn.weight",
                                   "spp.cv1.conv.weight", "side.conv.weight"};
    for (size_t n = 0; n < sizeof reached / sizeof reached[0]; n++) { /* every path carries gradient */
        lathe_param *p = lathe_graph_find_param(g, reached[n]);
        double sum = 0;
        for (size_t i = 0; i < p->count; i++) sum += fabs(p->grad[i]);
        if (!(sum > 0)) fail_msg("%s: no gradient", reached[n]);
    }
    lathe_graph_free(g);
}

static void csp_without_shortcut_and_numeric_input(void **state) {
    (void)state;
    lathe_graph *g = build("input: [8, 8, 8]\nlayers:\n"
                           "  - {name: a, type: conv, out: 8, k: 1}\n"
                           "  - {name: b, type: conv, out: 16, k: 1}\n"
                           "  - {name: c, type: csp, out: 16, n: 2, shortcut: false, fixed_width: 1, from: 0}\n");
    assert_string_equal(shape_of(g, "c.cv1a.conv.weight"), "8,8,1,1"); /* from layer 0: a, 8 channels */
    int chw[3];
    layer_shape(g, "c.m.0", chw);
    assert_int_equal(chw[0], -1); /* no shortcut: no add */
    assert_string_equal(shape_of(g, "c.cv2.conv.weight"), "16,32,1,1");
    lathe_graph_free(g);
}

/* torchvision's resnet18 state_dict keys without fc.* and num_batches_tracked, in its order */
static int resnet18_keys(char keys[][64]) {
    static const char *const bn[] = {"weight", "bias", "running_mean", "running_var"};
    int n = 0;
    snprintf(keys[n++], 64, "conv1.weight");
    for (int k = 0; k < 4; k++) snprintf(keys[n++], 64, "bn1.%s", bn[k]);
    for (int layer = 1; layer <= 4; layer++)
        for (int b = 0; b < 2; b++) {
            for (int c = 1; c <= 2; c++) {
                snprintf(keys[n++], 64, "layer%d.%d.conv%d.weight", layer, b, c);
                for (int k = 0; k < 4; k++) snprintf(keys[n++], 64, "layer%d.%d.bn%d.%s", layer, b, c, bn[k]);
            }
            if (layer > 1 && b == 0) {
                snprintf(keys[n++], 64, "layer%d.0.downsample.0.weight", layer);
                for (int k = 0; k < 4; k++) snprintf(keys[n++], 64, "layer%d.0.downsample.1.%s", layer, bn[k]);
            }
        }
    return n;
}

static void resnet18_matches_torchvision(void **state) {
    (void)state;
    lathe_graph *g = build("input: [3, 64, 64]\nwidth: 0.25\nlayers:\n  - {name: backbone, type: resnet, depth: 18}\n");
    char keys[128][64];
    int n = resnet18_keys(keys);
    /* 20 convs (1 weight) and 20 batch norms (4 tensors): torchvision's 122 keys less fc.weight,
     * fc.bias and the 20 num_batches_tracked */
    assert_int_equal(n, 100);
    assert_int_equal(lathe_graph_nparams(g), 100);
    for (int i = 0; i < n; i++) assert_string_equal(lathe_graph_param(g, (size_t)i)->name, keys[i]);
    assert_string_equal(shape_of(g, "conv1.weight"), "64,3,7,7"); /* width does not apply */
    assert_string_equal(shape_of(g, "layer2.0.downsample.0.weight"), "128,64,1,1");
    assert_string_equal(shape_of(g, "layer4.1.conv2.weight"), "512,512,3,3");
    assert_string_equal(shape_of(g, "layer1.0.downsample.0.weight"), "missing");
    assert_int_equal(lathe_graph_param_count(g), 11176512); /* torchvision: 11689512 less fc's 513000 */
    int chw[3];
    layer_shape(g, "layer2", chw);
    assert_true(chw[0] == 128 && chw[1] == 8 && chw[2] == 8);
    layer_shape(g, "layer3", chw);
    assert_true(chw[0] == 256 && chw[1] == 4 && chw[2] == 4);
    assert_int_equal(output_size(g), 512 * 2 * 2);
    float *x = lathe_graph_input(g, NULL, NULL, NULL);
    for (int i = 0; i < 3 * 64 * 64; i++) x[i] = (float)(i % 7) * 0.1f;
    lathe_graph_forward(g, 1, 0);
    const float *y = lathe_graph_output(g, NULL);
    for (int i = 0; i < 512 * 4; i++) assert_true(y[i] >= 0); /* after the final ReLU */
    lathe_graph_free(g);
}

static void resnet50_bottlenecks(void **state) {
    (void)state;
    lathe_graph *g = build("input: [3, 64, 64]\nlayers:\n  - {type: resnet, depth: 50}\n"
                           "  - {name: p4, type: conv, out: 8, k: 1, from: layer3}\n");
    assert_int_equal(lathe_graph_nparams(g), 53 * 5 + 1 + 1); /* 53 conv + bn pairs, then p4's weight and bias */
    assert_string_equal(shape_of(g, "layer1.0.conv3.weight"), "256,64,1,1");
    assert_string_equal(shape_of(g, "layer1.0.downsample.0.weight"), "256,64,1,1");
    assert_string_equal(shape_of(g, "layer1.1.downsample.0.weight"), "missing");
    assert_string_equal(shape_of(g, "layer4.2.bn3.running_mean"), "2048");
    /* torchvision v1.5: the stride is on conv2 */
    int chw[3];
    layer_shape(g, "layer2.0.conv1", chw);
    assert_int_equal(chw[1], 16);
    layer_shape(g, "layer2.0.conv2", chw);
    assert_int_equal(chw[1], 8);
    layer_shape(g, "layer4", chw);
    assert_true(chw[0] == 2048 && chw[1] == 2 && chw[2] == 2);
    layer_shape(g, "p4", chw);
    assert_true(chw[0] == 8 && chw[1] == 4 && chw[2] == 4);
    lathe_graph_free(g);
}

static void yolo_like_reference_model(void **state) {
    (void)state;
    cJSON *spec;
    assert_int_equal(lathe_config_load("experiments/detect/models/yolo_like.yaml", &spec), 0);
    cJSON *m = cJSON_GetObjectItemCaseSensitive(spec, "model");
    size_t params[2];
    for (int size = 0; size < 2; size++) { /* n and s as Ultralytics scales them */
        assert_int_equal(lathe_config_override(spec, size ? "model.width=0.5" : "model.width=0.25"), 0);
        assert_int_equal(lathe_config_override(spec, "model.depth=0.33"), 0);
        assert_int_equal(lathe_config_override(spec, "model.classes=3"), 0);
        lathe_graph *g;
        if (lathe_graph_build(m, 1, 0, &g)) fail_msg("yolo_like: %s", lathe_last_error());
        assert_int_equal(output_size(g), 525 * (4 * 16 + 3)); /* 20x20 + 10x10 + 5x5 anchors */
        int chw[3];
        layer_shape(g, "neck.p3", chw);
        assert_true(chw[1] == 20 && chw[2] == 20);
        layer_shape(g, "neck.p5", chw);
        assert_true(chw[0] == (size ? 512 : 256) && chw[1] == 5);
        assert_string_equal(shape_of(g, "head.cls3.2.weight"), size ? "3,128,1,1" : "3,64,1,1");
        assert_string_equal(shape_of(g, "head.box5.2.weight"), "64,64,1,1");
        assert_string_equal(shape_of(g, "backbone.4.m.1.cv1.conv.weight"), size ? "64,64,3,3" : "32,32,3,3");
        assert_string_equal(shape_of(g, "backbone.4.m.2.cv1.conv.weight"), "missing"); /* n 6 x 0.33 = 2 */
        params[size] = lathe_graph_param_count(g);
        lathe_graph_free(g);
    }
    /* exactly YOLOv8n and YOLOv8s with 3 classes (less the DFL's fixed 16-weight conv): cv1a and
     * cv1b hold what C2f's cv1 holds */
    assert_int_equal(params[0], 3011417);
    assert_int_equal(params[1], 11136745);
    assert_true(params[0] < params[1]);
    cJSON_Delete(spec);
}

static void bad_block_arguments(void **state) {
    (void)state;
    static const char *const bad[] = {
        "input: [3, 64, 64]\nlayers: [{name: r, type: resnet, depth: 20}]\n",
        "input: [3, 64, 64]\nlayers: [{name: r, type: resnet}]\n",
        "input: [3, 8, 8]\nlayers: [{name: c, type: csp, out: 8, n: 0}]\n",
        "input: [3, 8, 8]\nlayers: [{name: c, type: csp, out: 8, e: 1.5}]\n",
        "input: [3, 8, 8]\nlayers: [{name: c, type: csp, out: 8, n: 7}]\n", /* concat of 9 */
        "input: [3, 8, 8]\nlayers: [{name: c, type: cbs}]\n",
        "input: [3, 8, 8]\nlayers: [{name: c, type: cbs, out: 8, stide: 2}]\n",
        "input: [3, 8, 8]\nlayers: [{name: c, type: cbs, out: 8.5}]\n",
        "input: [3, 8, 8]\nlayers: [{name: c, type: cbs, out: 8, groups: 0}]\n",
        "input: [3, 8, 8]\nlayers: [{name: s, type: sppf, out: 8, k: 4}]\n",
        "input: [3, 8, 8]\nlayers: [{type: relu}, {name: c, type: cbs, out: 8, from: [0, -1]}]\n",
        "input: [3, 8, 8]\nlayers: [{name: c, type: cbs, out: 8, from: 3}]\n",
        "input: [3, 8, 8]\nlayers: [{name: c, type: cbs, out: 8}, {type: relu, from: 5}]\n",
        "input: [3, 8, 8]\nlayers: [{name: c, type: cbs, out: 8, from: nowhere}]\n",
        "input: [3, 8, 8]\nlayers: [{name: c, type: cbs, out: 8}, {name: c.conv, type: relu}]\n",
        ("input: [3, 8, 8]\nlayers: [{type: csp, out: 8, name: "
         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa}]\n"), /* names over 63 characters */
        "input: [3, 8, 8]\nlayers: [{type: conv, k: 1}]\n", /* conv without out */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cJSON *m = model_of(bad[i]);
        lathe_graph *g = NULL;
        lathe_clear_error();
        if (lathe_graph_build(m, 1, 0, &g) != -LATHE_EINVAL) fail_msg("accepted: %s", bad[i]);
        assert_null(g);
        assert_true(strstr(lathe_last_error(), "layer ") != NULL);
        cJSON_Delete(m);
    }
    cJSON *m = model_of("input: [3, 8, 8]\nlayers: [{name: r, type: resnet, depth: 20}]\n");
    lathe_graph *g;
    assert_int_equal(lathe_graph_build(m, 1, 0, &g), -LATHE_EINVAL);
    assert_non_null(strstr(lathe_last_error(), "layer r: resnet depth must be 18, 34 or 50"));
    cJSON_Delete(m);
}

static void conv_out_classes_and_unnamed_blocks(void **state) {
    (void)state;
    lathe_graph *g = build("input: [3, 8, 8]\nclasses: 5\nwidth: 0.5\nlayers:\n"
                           "  - {type: cbs, out: 16}\n  - {type: relu}\n  - {type: cbs, out: 16}\n"
                           "  - {name: head, type: conv, out: classes, k: 1}\n");
    /* an unnamed block is named layers.<i> by the graph position of its first layer */
    assert_string_equal(shape_of(g, "layers.0.conv.weight"), "8,3,1,1");
    assert_string_equal(shape_of(g, "layers.4.conv.weight"), "8,8,1,1"); /* after 3 + 1 layers */
    assert_string_equal(shape_of(g, "head.weight"), "5,8,1,1");         /* classes are not width-scaled */
    int chw[3];
    layer_shape(g, "layers.3", chw); /* the unnamed relu keeps graph.c's default name */
    assert_int_equal(chw[0], 8);
    lathe_graph_free(g);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(cbs_csp_sppf_names_and_widths),
        cmocka_unit_test(csp_without_shortcut_and_numeric_input),
        cmocka_unit_test(resnet18_matches_torchvision),
        cmocka_unit_test(resnet50_bottlenecks),
        cmocka_unit_test(yolo_like_reference_model),
        cmocka_unit_test(bad_block_arguments),
        cmocka_unit_test(conv_out_classes_and_unnamed_blocks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
