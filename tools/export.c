/* export.c - `lathe export RUN -o FILE`: a run's checkpoint as an ONNX model or a lathe engine
 * (libcore/export), with its preprocessing, class names and provenance in the file's metadata
 * (docs/EXPORT.md). */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "cli.h"
#include "commands.h"
#include "libcore/base/config.h"
#include "libcore/base/error.h"
#include "libcore/base/fsutil.h"
#include "libcore/data/transform.h"
#include "libcore/export/export.h"
#include "libcore/nn/checkpoint.h"
#include "libcore/nn/graph.h"

static void usage(FILE *out) {
    fprintf(out, "usage: lathe export RUN -o FILE [options]\n\n"
                 "Writes a run's checkpoint (a classifier or a detector, any architecture lathe builds) as an ONNX\n"
                 "model (opset 17) that onnxruntime, TensorRT and DeepStream read, or as a lathe engine (--format\n"
                 "lathe; the same metadata) for lathe's C API (docs/EXPORT.md). Batch norm is\n"
                 "folded into the convolution before it, dropout is dropped. Input `images`: float32 N x C x H x W,\n"
                 "already normalized as in training ((pixel / 255 - data.mean) / data.std), or with --input uint8\n"
                 "the pixels themselves, N x H x W x 3 RGB at the model's input size (a letterboxed image, or\n"
                 "what a dataset stores), normalized (for a one-channel model: luma) inside the graph.\n"
                 "Outputs: a classifier's `logits` N x K; a detector's `boxes` N x A x 4 (x1, y1, x2, y2 in\n"
                 "input pixels) and `scores` N x A x K (after the sigmoid), or with --nms `num_dets` N x 1,\n"
                 "`det_boxes` N x D x 4, `det_scores` N x D and `det_classes` N x D (D = --max-det; rows past\n"
                 "num_dets are zero). The metadata holds\n"
                 "lathe.task, lathe.class_names, lathe.input, lathe.mean, lathe.std, lathe.letterbox, lathe.run,\n"
                 "lathe.checkpoint (its xxh3-128 hash), lathe.version and lathe.tiling ({\"tile\", \"overlap\"} of a\n"
                 "model trained on tiles, else null).\n\n"
                 "  -o, --output FILE   the .onnx file to write (replaced atomically)\n"
                 "  --checkpoint C      best (default; the EMA weights when the run kept them), last, or a\n"
                 "                      .safetensors path\n"
                 "  --format F          onnx (default), or lathe: lathe's own engine (one safetensors file: the\n"
                 "                      folded weights and the layers that rebuild the graph) for the C API\n"
                 "                      (libcore/export/engine.h), lathe predict and lathe eval\n"
                 "  --precision P       --format lathe: fp32 (default), fp16 or bf16 weights\n"
                 "  --batch B           a fixed batch size, or dynamic (default)\n"
                 "  --input I           float (default) or uint8\n"
                 "  --nms N             detectors: none (default), onnx (standard NonMaxSuppression, per class;\n"
                 "                      onnxruntime and TensorRT >= 8.6 run it) or trt (TensorRT's EfficientNMS_TRT\n"
                 "                      plugin node, as DeepStream expects; int32 num_dets and det_classes)\n"
                 "  --max-det D         with --nms: detections kept per image (default 100)\n"
                 "  --conf X            with --nms: score floor (default 0.25; 0.001 for evaluation)\n"
                 "  --iou X             with --nms: IoU threshold (default 0.7)\n"
                 "  --log-format FMT    text (default) or json log lines on stderr\n"
                 "  -h, --help          this help\n");
}

static const struct option options[] = {
    {"output", required_argument, NULL, 'o'},     {"checkpoint", required_argument, NULL, 'c'},
    {"format", required_argument, NULL, 'f'},     {"batch", required_argument, NULL, 'b'},
    {"input", required_argument, NULL, 'i'},      {"nms", required_argument, NULL, 'n'},
    {"max-det", required_argument, NULL, 'M'},    {"conf", required_argument, NULL, 'C'},
    {"iou", required_argument, NULL, 'I'},        {"log-format", required_argument, NULL, 'l'},
    {"precision", required_argument, NULL, 'p'},
    {"help", no_argument, NULL, 'h'},             {NULL, 0, NULL, 0},
};

/* The checkpoint's hash for lathe.checkpoint: "xxh3-128:<32 hex digits>". */
static int checkpoint_hash(const char *path, char *out, size_t cap) {
    char *data = NULL;
    size_t len = 0;
    int rc = lathe_read_file(path, (size_t)1 << 34, &data, &len);
    if (rc) return rc;
    XXH128_hash_t h = XXH3_128bits(data, len);
    snprintf(out, cap, "xxh3-128:%016llx%016llx", (unsigned long long)h.high64, (unsigned long long)h.low64);
    free(data);
    return 0;
}

/* A JSON list of one number repeated n times ("[0.5, 0.5, 0.5]"): lathe normalizes all channels alike. */
static void repeated(double v, int n, char *out, size_t cap) {
    size_t at = (size_t)snprintf(out, cap, "[");
    for (int i = 0; i < n && at < cap; i++) at += (size_t)snprintf(out + at, cap - at, "%s%.9g", i ? ", " : "", v);
    if (at < cap) snprintf(out + at, cap - at, "]");
}

/* The graph of the run's model with its recorded classes, and the checkpoint's weights in it. */
static int load_model(cJSON *spec, const char *ck, lathe_graph **g) {
    /* lathe train records the classes; a run of an older lathe takes them from its dataset */
    int rc = cJSON_IsObject(lathe_config_get(spec, "model")) ? cli_record_classes(spec)
                                                             : lathe_fail(LATHE_EINVAL, "the run's config.yaml has no model mapping");
    cJSON *model = rc ? NULL : cJSON_Duplicate(lathe_config_get(spec, "model"), 1);
    if (!rc && !model) rc = lathe_fail(LATHE_ENOMEM, "the model mapping");
    if (!rc) rc = lathe_graph_build(model, 1, 0, g);
    cJSON_Delete(model);
    if (!rc) rc = lathe_checkpoint_load(ck, *g, NULL);
    if (!rc) lathe_graph_set_train(*g, 0);
    return rc;
}

int cmd_export(int argc, char **argv) {
    const char *checkpoint = "best", *out = NULL, *format = "onnx", *input = "float", *nms = "none", *precision = NULL;
    long long batch = 0, max_det = 100;
    double conf = 0.25, iou = 0.7;
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "ho:", options, NULL)) != -1) {
        switch (opt) {
        case 'h': usage(stdout); return EXIT_OK;
        case 'o': out = optarg; break;
        case 'c': checkpoint = optarg; break;
        case 'f': format = optarg; break;
        case 'i': input = optarg; break;
        case 'n': nms = optarg; break;
        case 'p': precision = optarg; break;
        case 'b':
            if (strcmp(optarg, "dynamic") && cli_parse_int(optarg, 1, 65536, &batch))
                return cli_usage_error("export", "--batch needs 1..65536 or dynamic, not '%s'", optarg);
            if (!strcmp(optarg, "dynamic")) batch = 0;
            break;
        case 'M':
            if (cli_parse_int(optarg, 1, 100000, &max_det)) return cli_usage_error("export", "--max-det needs 1..100000");
            break;
        case 'C':
            if (cli_parse_double(optarg, 0, 0.999999, &conf)) return cli_usage_error("export", "--conf needs 0..1");
            break;
        case 'I':
            if (cli_parse_double(optarg, 0.000001, 1, &iou)) return cli_usage_error("export", "--iou needs (0, 1]");
            break;
        case 'l':
            if (cli_set_log_format(optarg)) return cli_usage_error("export", "unknown --log-format '%s'", optarg);
            break;
        default: return cli_usage_error("export", "bad option");
        }
    }
    if (optind >= argc) return cli_usage_error("export", "which RUN?");
    if (optind + 1 < argc) return cli_usage_error("export", "one RUN at a time ('%s' is extra)", argv[optind + 1]);
    if (!out) return cli_usage_error("export", "where to? (-o FILE)");
    int engine = !strcmp(format, "lathe");
    if (!engine && strcmp(format, "onnx")) return cli_usage_error("export", "--format: onnx or lathe, not '%s'", format);
    if (precision && !engine) return cli_usage_error("export", "--precision goes with --format lathe (ONNX is written in fp32)");
    if (precision && strcmp(precision, "fp32") && strcmp(precision, "fp16") && strcmp(precision, "bf16"))
        return cli_usage_error("export", "--precision: fp32, fp16 or bf16, not '%s'", precision);
    if (engine && (strcmp(input, "float") || strcmp(nms, "none") || batch))
        return cli_usage_error("export", "--input, --nms and --batch are for ONNX: an engine takes both inputs, any batch, "
                                         "and does NMS in lathe_engine_run");
    if (strcmp(input, "float") && strcmp(input, "uint8")) return cli_usage_error("export", "--input: float or uint8, not '%s'", input);
    if (strcmp(nms, "none") && strcmp(nms, "onnx") && strcmp(nms, "trt"))
        return cli_usage_error("export", "--nms: none, onnx or trt, not '%s'", nms);
    const char *run = argv[optind];
    char ck[4200], what[4300], hash[64], shape[64], mean[128], stdv[128], pad[16];
    snprintf(what, sizeof what, "export %s", run);
    cJSON *spec = NULL;
    lathe_graph *g = NULL;
    char *names = NULL;
    int from_engine = 0;
    int rc = cli_open_run(run, checkpoint, &spec, ck, sizeof ck, &from_engine);
    if (!rc && from_engine) rc = lathe_fail(LATHE_EINVAL, "%s is an engine: export the run it came from", run);
    const char *task = rc ? "" : lathe_config_str(spec, "task", "classify");
    int detect = !strcmp(task, "detect");
    if (!rc && strcmp(task, "classify") && !detect)
        rc = lathe_fail(LATHE_EUNSUPPORTED, "%s: task %s has no exporter yet", run, task);
    if (!rc && !detect && strcmp(nms, "none")) rc = lathe_fail(LATHE_EINVAL, "--nms is for detectors; %s is a classifier", run);
    if (!rc) rc = load_model(spec, ck, &g);
    if (!rc) rc = checkpoint_hash(ck, hash, sizeof hash);
    const cJSON *class_names = spec ? cJSON_GetObjectItemCaseSensitive(spec, "class_names") : NULL;
    if (!rc && !cJSON_IsArray(class_names))
        rc = lathe_fail(LATHE_EINVAL, "the run's config.yaml records no class_names, nor a dataset to take them from");
    if (!rc && !(names = cJSON_PrintUnformatted(class_names))) rc = lathe_fail(LATHE_ENOMEM, "class names");
    lathe_onnx_opts o = {0};
    if (!rc) {
        int c, h, w;
        lathe_graph_input(g, &c, &h, &w);
        o.batch = (int)batch, o.input_uint8 = !strcmp(input, "uint8");
        o.mean = (float)lathe_config_num(spec, "data.mean", detect ? 0 : 0.5);
        o.std = (float)lathe_config_num(spec, "data.std", detect ? 1 : 0.25);
        o.bins = (int)lathe_config_num(spec, "model.bins", 16), o.classes = (int)lathe_config_num(spec, "model.classes", 0);
        o.nms = !strcmp(nms, "onnx") ? LATHE_NMS_ONNX : !strcmp(nms, "trt") ? LATHE_NMS_TRT : LATHE_NMS_NONE;
        o.max_det = (int)max_det, o.conf = (float)conf, o.iou = (float)iou;
        snprintf(shape, sizeof shape, "[%d, %d, %d]", c, h, w);
        repeated(o.mean, c, mean, sizeof mean), repeated(o.std, c, stdv, sizeof stdv);
        snprintf(pad, sizeof pad, "%d", LATHE_LETTERBOX_FILL);
        char tiling[64]; /* lathe.tiling: {"tile": T, "overlap": O} for a model of tiles, else null */
        int tile, overlap;
        cli_run_tiling(spec, &tile, &overlap);
        if (tile) snprintf(tiling, sizeof tiling, "{\"tile\": %d, \"overlap\": %d}", tile, overlap);
        else snprintf(tiling, sizeof tiling, "null");
        const char *meta[] = {"lathe.task", task, "lathe.class_names", names, "lathe.input", shape, "lathe.mean", mean,
                              "lathe.std", stdv, "lathe.letterbox", pad, "lathe.run", lathe_config_str(spec, "name", run),
                              "lathe.checkpoint", hash, "lathe.version", LATHE_VERSION, "lathe.tiling", tiling};
        o.meta = meta, o.nmeta = sizeof meta / sizeof meta[0] / 2;
        if (engine) {
            lathe_engine_write_opts eo = {!precision || !strcmp(precision, "fp32") ? LATHE_ENGINE_FP32
                                          : !strcmp(precision, "fp16")             ? LATHE_ENGINE_FP16
                                                                                   : LATHE_ENGINE_BF16,
                                          detect ? o.bins : 0, detect ? o.classes : 0, meta, o.nmeta};
            rc = lathe_export_engine(g, &eo, out);
            if (!rc) printf("exported %s (%s) to %s: lathe engine, %s weights\n", run, checkpoint, out, precision ? precision : "fp32");
        } else {
            rc = lathe_export_onnx(g, &o, out);
            if (!rc)
                printf("exported %s (%s) to %s: ONNX opset %d, input images %s %s, %s\n", run, checkpoint, out,
                       LATHE_ONNX_OPSET, o.input_uint8 ? "uint8 N x H x W x 3" : "float32 N x C x H x W",
                       batch ? "fixed batch" : "dynamic batch",
                       !detect ? "output logits" : o.nms ? "outputs num_dets, det_boxes, det_scores, det_classes" : "outputs boxes, scores");
        }
    }
    if (rc) cli_error(what, NULL);
    cJSON_free(names);
    lathe_graph_free(g);
    cJSON_Delete(spec);
    return rc ? EXIT_FAIL : EXIT_OK;
}
