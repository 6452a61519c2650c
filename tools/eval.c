/* eval.c - `lathe eval RUN`: a classifier run's checkpoint on a split of its dataset: accuracy,
 * per-class precision/recall/F1 and the confusion matrix into RUN/eval/report.json and report.html. */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "libcore/base/config.h"
#include "libcore/base/error.h"
#include "libcore/base/fsutil.h"
#include "libcore/eval/coco.h"
#include "libcore/eval/gate.h"
#include "libcore/io/dataset.h"
#include "libcore/nn/train.h"

static void usage(FILE *out) {
    fprintf(out, "usage: lathe eval RUN [options]\n"
                 "       lathe eval --detections RESULTS.json --gt COCO.json [-o DIR]\n\n"
                 "Evaluates a classifier run (a folder written by `lathe train`) on a dataset split: accuracy,\n"
                 "per-class precision, recall, F1 and support, macro averages and the confusion matrix, into\n"
                 "RUN/eval/report.json (keys in docs/FORMAT.md) and report.html. Prints the accuracy.\n\n"
                 "With --detections, evaluates a COCO results file from any detector against COCO ground\n"
                 "truth with pycocotools' semantics exactly (AP, AP50, AP75, AP small/medium/large,\n"
                 "AR1/10/100, AR small/medium/large; per-class AP; precision-recall curves), on all cores,\n"
                 "printing pycocotools' summary table and writing DIR/report.json (default eval-detections).\n\n"
                 "  --detections FILE   a COCO results file: [{image_id, category_id, bbox, score}, ...]\n"
                 "  --gt FILE           COCO ground truth (images, annotations, categories), or instead:\n"
                 "  --dataset D         with --detections: a lathe dataset's --split as ground truth (category_id =\n"
                 "                      class index, image_id = the source's COCO id, boxes in source pixels)\n"
                 "  --baseline FILE     a report.json to gate on: exit 3 with a table of every metric (overall\n"
                 "                      and per class) that fell by more than --max-drop\n"
                 "  --max-drop X        allowed absolute drop per metric (default 0.01)\n"
                 "  --checkpoint C      best (default), last, or a .safetensors path\n"
                 "  --split S           train, val (default) or test\n"
                 "  --dataset D         another dataset with the same classes (default: the run's)\n"
                 "  -o, --output DIR    where the report goes (default RUN/eval)\n"
                 "  --log-format FMT    text (default) or json log lines on stderr\n"
                 "  -h, --help          this help\n");
}

static const struct option options[] = {
    {"checkpoint", required_argument, NULL, 'c'}, {"split", required_argument, NULL, 's'},
    {"dataset", required_argument, NULL, 'd'},    {"output", required_argument, NULL, 'o'},
    {"log-format", required_argument, NULL, 'l'}, {"help", no_argument, NULL, 'h'},
    {"detections", required_argument, NULL, 'D'}, {"gt", required_argument, NULL, 'g'},
    {"baseline", required_argument, NULL, 'b'},   {"max-drop", required_argument, NULL, 'x'},
    {NULL, 0, NULL, 0},
};

/* pycocotools' summarize() lines */
static void print_coco(const lathe_coco_result *r) {
    static const char *const lines[12] = {
        "Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ]",
        "Average Precision  (AP) @[ IoU=0.50      | area=   all | maxDets=100 ]",
        "Average Precision  (AP) @[ IoU=0.75      | area=   all | maxDets=100 ]",
        "Average Precision  (AP) @[ IoU=0.50:0.95 | area= small | maxDets=100 ]",
        "Average Precision  (AP) @[ IoU=0.50:0.95 | area=medium | maxDets=100 ]",
        "Average Precision  (AP) @[ IoU=0.50:0.95 | area= large | maxDets=100 ]",
        "Average Recall     (AR) @[ IoU=0.50:0.95 | area=   all | maxDets=  1 ]",
        "Average Recall     (AR) @[ IoU=0.50:0.95 | area=   all | maxDets= 10 ]",
        "Average Recall     (AR) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ]",
        "Average Recall     (AR) @[ IoU=0.50:0.95 | area= small | maxDets=100 ]",
        "Average Recall     (AR) @[ IoU=0.50:0.95 | area=medium | maxDets=100 ]",
        "Average Recall     (AR) @[ IoU=0.50:0.95 | area= large | maxDets=100 ]"};
    for (int i = 0; i < 12; i++) printf(" %s = %0.3f\n", lines[i], r->stats[i]);
}

/* The CI gate: 0 when nothing regressed (or no baseline), EXIT_REGRESSION with a table, EXIT_FAIL
 * when the baseline cannot be read. */
static int gate(const cJSON *report, const char *baseline, double max_drop) {
    if (!baseline) return EXIT_OK;
    cJSON *b;
    if (lathe_json_load(baseline, 1 << 28, &b)) {
        cli_error("reading the baseline", NULL);
        return EXIT_FAIL;
    }
    cJSON *reg = lathe_gate_compare(report, b, max_drop);
    int n = cJSON_GetArraySize(reg);
    if (n) lathe_gate_print(reg, max_drop, stderr);
    else printf("baseline %s: no metric fell by more than %g\n", baseline, max_drop);
    cJSON_Delete(reg);
    cJSON_Delete(b);
    return n ? EXIT_REGRESSION : EXIT_OK;
}

static int eval_detections(const char *dets, const char *gt, const char *dataset, const char *split, const char *out,
                           const char *baseline, double max_drop) {
    lathe_coco_data d;
    lathe_coco_result r;
    char what[4300];
    snprintf(what, sizeof what, "eval --detections %s", dets);
    int rc;
    if (gt) {
        rc = lathe_coco_load(gt, dets, &d);
    } else {
        lathe_dataset *ds = NULL;
        int sp = lathe_split_parse(split);
        rc = sp < 0 ? lathe_fail(LATHE_EINVAL, "unknown split %s", split) : lathe_dataset_open(dataset, &ds);
        if (!rc) rc = lathe_coco_load_dataset(ds, sp, dets, &d);
        lathe_dataset_close(ds);
    }
    if (!rc) rc = lathe_coco_evaluate(&d, &r);
    if (rc) {
        cli_error(what, NULL);
        return EXIT_FAIL;
    }
    print_coco(&r);
    cJSON *report = lathe_coco_report(&d, &r);
    char *text = cJSON_Print(report);
    char path[4200];
    snprintf(path, sizeof path, "%s/report.json", out);
    rc = text ? lathe_mkdirs(out) : lathe_fail(LATHE_ENOMEM, "report");
    if (!rc) rc = lathe_write_atomic(path, text, strlen(text));
    cJSON_free(text);
    int verdict = rc ? EXIT_FAIL : gate(report, baseline, max_drop);
    cJSON_Delete(report);
    lathe_coco_result_free(&r);
    lathe_coco_data_free(&d);
    if (rc) cli_error(what, NULL);
    return verdict;
}

int cmd_eval(int argc, char **argv) {
    const char *checkpoint = "best", *split = "val", *dataset = NULL, *out = NULL, *dets = NULL, *gt = NULL;
    const char *baseline = NULL;
    double max_drop = 0.01;
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "ho:", options, NULL)) != -1) {
        switch (opt) {
        case 'h': usage(stdout); return EXIT_OK;
        case 'c': checkpoint = optarg; break;
        case 's': split = optarg; break;
        case 'd': dataset = optarg; break;
        case 'o': out = optarg; break;
        case 'D': dets = optarg; break;
        case 'g': gt = optarg; break;
        case 'b': baseline = optarg; break;
        case 'x':
            if (cli_parse_double(optarg, 0, 1, &max_drop)) return cli_usage_error("eval", "--max-drop needs 0..1");
            break;
        case 'l':
            if (cli_set_log_format(optarg)) return cli_usage_error("eval", "unknown --log-format '%s'", optarg);
            break;
        default: return cli_usage_error("eval", "bad option");
        }
    }
    if (dets || gt) {
        if (!dets || (!gt == !dataset)) return cli_usage_error("eval", "--detections needs --gt or --dataset (one of them)");
        if (optind != argc) return cli_usage_error("eval", "--detections takes no RUN");
        return eval_detections(dets, gt, dataset, split, out ? out : "eval-detections", baseline, max_drop);
    }
    if (optind != argc - 1) return cli_usage_error("eval", "exactly one RUN is required");
    const char *run = argv[optind];
    char cfg[4200], ck[4200], outdir[4200], what[4300];
    snprintf(cfg, sizeof cfg, "%s/config.yaml", run);
    if (!strcmp(checkpoint, "best") || !strcmp(checkpoint, "last"))
        snprintf(ck, sizeof ck, "%s/checkpoints/%s.safetensors", run, checkpoint);
    else snprintf(ck, sizeof ck, "%s", checkpoint);
    snprintf(outdir, sizeof outdir, "%s", out ? out : run);
    if (!out) snprintf(outdir, sizeof outdir, "%s/eval", run);
    snprintf(what, sizeof what, "eval %s", run);
    cJSON *spec = NULL, *report = NULL;
    int rc = lathe_config_load(cfg, &spec);
    if (!rc) rc = lathe_eval_classifier(spec, ck, dataset, split, outdir, &report);
    if (!rc)
        printf("accuracy %.4f on %.0f samples of %s; report: %s/report.html\n",
               cJSON_GetObjectItemCaseSensitive(report, "accuracy")->valuedouble,
               cJSON_GetObjectItemCaseSensitive(report, "samples")->valuedouble, split, outdir);
    int verdict = rc ? EXIT_FAIL : gate(report, baseline, max_drop);
    cJSON_Delete(spec);
    cJSON_Delete(report);
    if (rc) cli_error(what, NULL);
    return verdict;
}
