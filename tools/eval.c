/* eval.c - `lathe eval RUN`: a run's checkpoint on a split of its dataset (a classifier: accuracy,
 * per-class precision/recall/F1, confusion matrix; a detector: COCO metrics and the detection
 * report), and `lathe eval --detections`: any detector's COCO results against ground truth. Both
 * can gate on a baseline report (exit 3). */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "libcore/base/config.h"
#include "libcore/base/error.h"
#include "libcore/base/folder_lock.h"
#include "libcore/base/output_set.h"
#include "libcore/base/fsutil.h"
#include "libcore/base/log.h"
#include "libcore/det/detector.h"
#include "libcore/anomaly/anomaly.h"
#include "libcore/mm/contrastive.h"
#include "libcore/mm/fusion.h"
#include "libcore/eval/coco.h"
#include "libcore/eval/det_report.h"
#include "libcore/eval/gate.h"
#include "libcore/io/dataset.h"
#include "libcore/nn/train.h"

static void usage(FILE *out) {
    fprintf(out, "usage: lathe eval RUN [options]\n"
                 "       lathe eval --detections RESULTS.json --gt COCO.json [-o DIR]\n\n"
                 "Evaluates a run (a folder written by `lathe train`, or an engine file from `lathe export --format\n"
                 "lathe` with --dataset; its report goes to ENGINE.eval/) on a dataset split, into RUN/eval/ (keys in\n"
                 "docs/FORMAT.md). A classifier: accuracy, per-class precision, recall, F1 and support, macro\n"
                 "averages and the confusion matrix (report.json, report.html); prints the accuracy. A detector:\n"
                 "its detections (detections.json, COCO results in source pixels), COCO metrics as below plus\n"
                 "the confusion matrix with background, the best-F1 score threshold per class and the training\n"
                 "curves (report.json, report.html with PR curves and sample images, report.md); prints mAP.\n"
                 "An image-text run (task: contrastive): zero-shot accuracy from the class prompts (eval.prompt)\n"
                 "with the classifier's per-class table, recall at 1/5/10 image->text and text->image over the\n"
                 "split's descriptions, and the accuracy on classes held out of training (docs/MULTIMODAL.md).\n"
                 "A fusion run (task: fusion): the classifier's report of its top class, multi-label average\n"
                 "precision per class, and the ablation: image only, sensors only and both (each input masked\n"
                 "as a missing one), with the runs eval.baselines names (docs/MULTIMODAL.md).\n"
                 "An anomaly run (task: anomaly): image AUROC (good against every defect class, and per class),\n"
                 "pixel AUROC and PRO against the dataset's masks, the F1-best threshold and the run's own, and\n"
                 "the anomaly maps of the most telling images drawn (report.json, report.md, report.html, maps/).\n"
                 "On a tiled dataset (ingest --tile) a detector is scored on whole source images: its tiles'\n"
                 "detections merged per image (as lathe predict does), against each image's whole boxes.\n\n"
                 "With --detections, evaluates a COCO results file from any detector against COCO ground\n"
                 "truth with pycocotools' semantics exactly (AP, AP50, AP75, AP small/medium/large,\n"
                 "AR1/10/100, AR small/medium/large; per-class AP; precision-recall curves), on all cores,\n"
                 "printing pycocotools' summary table and writing DIR/report.json, report.html and report.md\n"
                 "(default DIR: eval-detections).\n\n"
                 "  --detections FILE   a COCO results file: [{image_id, category_id, bbox, score}, ...]\n"
                 "  --gt FILE           COCO ground truth (images, annotations, categories), or instead:\n"
                 "  --dataset D         with --detections: a lathe dataset's --split as ground truth (category_id =\n"
                 "                      class index, image_id = the source's COCO id, boxes in source pixels)\n"
                 "  --baseline FILE     a report.json to gate on: exit 3 with a table of every metric (overall\n"
                 "                      and per class) that fell by more than --max-drop; exit 1 when FILE\n"
                 "                      cannot gate this report (not one, another kind, no metric defined)\n"
                 "  --max-drop X        allowed absolute drop per metric (default 0.01)\n"
                 "  --checkpoint C      best (default), last, or a .safetensors path\n"
                 "  --split S           train, val (default) or test\n"
                 "  --dataset D         another dataset with the same classes (default: the run's)\n"
                 "  -o, --output DIR    where the report goes (default RUN/eval)\n"
                 "  --device D          cpu, cuda, cuda:N or auto (default: the run's train.device, else auto)\n"
                 "  --flip on|off       a detector's test-time mirror: each image is also scored flipped left to\n"
                 "                      right and the two views' detections fused (a box both views find keeps\n"
                 "                      the mean score, one view's alone half its score); twice the time\n"
                 "                      (default: the run's eval.flip, else off)\n"
                 "  --notebook          also write DIR/notebook.ipynb: the report as a Jupyter notebook that\n"
                 "                      renders as it is and reruns (lathe notebook, docs/CLI.md)\n"
                 "  --log-format FMT    text (default) or json log lines on stderr\n"
                 "  -h, --help          this help\n");
}

static const struct option options[] = {
    {"checkpoint", required_argument, NULL, 'c'}, {"split", required_argument, NULL, 's'},
    {"dataset", required_argument, NULL, 'd'},    {"output", required_argument, NULL, 'o'},
    {"log-format", required_argument, NULL, 'l'}, {"device", required_argument, NULL, 'V'},
    {"flip", required_argument, NULL, 'F'}, {"help", no_argument, NULL, 'h'},
    {"detections", required_argument, NULL, 'D'}, {"gt", required_argument, NULL, 'g'},
    {"baseline", required_argument, NULL, 'b'},   {"max-drop", required_argument, NULL, 'x'},
    {"notebook", no_argument, NULL, 'N'},
    {NULL, 0, NULL, 0},
};

/* pycocotools' summarize() lines, from a report's metrics (keys as lathe_coco_report names them) */
static void print_metrics(const cJSON *metrics) {
    static const char *const keys[12] = {"AP", "AP50", "AP75", "AP_small", "AP_medium", "AP_large",
                                         "AR1", "AR10", "AR100", "AR_small", "AR_medium", "AR_large"};
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
    for (int i = 0; i < 12; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(metrics, keys[i]);
        printf(" %s = %0.3f\n", lines[i], cJSON_IsNumber(v) ? v->valuedouble : -1.0);
    }
}

/* The CI gate: 0 when nothing regressed (or no baseline), EXIT_REGRESSION with a table, EXIT_FAIL
 * when the baseline cannot be read or cannot gate this report (lathe_gate_compare). */
static int gate(const cJSON *report, const char *baseline, double max_drop) {
    if (!baseline) return EXIT_OK;
    cJSON *b;
    if (lathe_json_load(baseline, 1 << 28, &b)) {
        cli_error("reading the baseline", NULL);
        return EXIT_FAIL;
    }
    cJSON *reg;
    if (lathe_gate_compare(report, b, max_drop, &reg)) {
        char what[4300];
        snprintf(what, sizeof what, "gating on %s", baseline);
        cli_error(what, NULL);
        cJSON_Delete(b);
        return EXIT_FAIL;
    }
    int n = cJSON_GetArraySize(reg);
    if (n) lathe_gate_print(reg, max_drop, stderr);
    else printf("baseline %s: no metric fell by more than %g\n", baseline, max_drop);
    cJSON_Delete(reg);
    cJSON_Delete(b);
    return n ? EXIT_REGRESSION : EXIT_OK;
}

static int notebook; /* --notebook */

/* --notebook: the report's notebook into the stage, so it swaps in with the report */
static int stage_notebook(int rc, const lathe_output_set *set) {
    return !rc && notebook ? cli_notebook_beside(set->stage, "notebook.ipynb") : rc;
}

static int eval_detections(const char *dets, const char *gt, const char *dataset, const char *split, const char *out,
                           const char *baseline, double max_drop) {
    lathe_coco_data d = {0};
    lathe_coco_result r = {0};
    lathe_dataset *ds = NULL;
    lathe_det_samples samples = {0};
    cJSON *report = NULL;
    char what[4300], title[4400];
    snprintf(what, sizeof what, "eval --detections %s", dets);
    snprintf(title, sizeof title, "lathe eval: %s", dets);
    lathe_lock *lock = NULL; /* one writer of the report folder, from the start; the report replaced whole */
    lathe_output_set set = {.stage = ""};
    double t0 = lathe_now();
    int sp = lathe_split_parse(split), rc = lathe_folder_lock(out, &lock);
    if (!rc) rc = lathe_output_set_begin(&set, out);
    if (rc) {
    } else if (gt) {
        rc = lathe_coco_load(gt, dets, &d);
    } else {
        rc = sp < 0 ? lathe_fail(LATHE_EINVAL, "unknown split %s", split) : lathe_dataset_open(dataset, &ds);
        if (!rc) rc = lathe_coco_load_dataset(ds, sp, dets, &d);
    }
    /* what a large file costs is said as it goes: reading it, then matching */
    if (!rc)
        lathe_log(LATHE_LOG_INFO, "eval.loaded", "%zu ground-truth boxes, %zu detections, %zu images (%.1f s)", d.ngt,
                  d.ndt, d.nimages, lathe_now() - t0);
    if (!rc) rc = lathe_coco_evaluate(&d, &r);
    if (!rc && !(report = lathe_coco_report(&d, &r))) rc = lathe_fail(LATHE_ENOMEM, "report");
    if (!rc) rc = lathe_det_report_extend(&d, report);
    if (!rc) /* after the confusion matrix and best-F1 points, which match every detection */
        lathe_log(LATHE_LOG_INFO, "eval.matched", "matched and scored (%.1f s)", lathe_now() - t0);
    if (!rc && ds) rc = lathe_det_report_samples(ds, sp, &d, LATHE_DET_CONFUSION_SCORE, 8, &samples);
    if (!rc) rc = lathe_det_report_write(report, title, &samples, set.stage);
    rc = stage_notebook(rc, &set);
    if (!rc) rc = lathe_output_set_publish(&set);
    lathe_output_set_discard(&set);
    lathe_folder_unlock(lock);
    if (!rc) print_metrics(cJSON_GetObjectItemCaseSensitive(report, "metrics"));
    int verdict = rc ? EXIT_FAIL : gate(report, baseline, max_drop);
    if (rc) cli_error(what, NULL);
    else printf("report: %s/report.html\n", out);
    lathe_det_samples_free(&samples);
    cJSON_Delete(report);
    lathe_coco_result_free(&r);
    lathe_coco_data_free(&d);
    lathe_dataset_close(ds);
    return verdict;
}

int cmd_eval(int argc, char **argv) {
    const char *checkpoint = "best", *split = "val", *dataset = NULL, *out = NULL, *dets = NULL, *gt = NULL;
    const char *baseline = NULL, *device = NULL, *flip = NULL;
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
        case 'V': device = optarg; break;
        case 'F': flip = optarg; break;
        case 'N': notebook = 1; break;
        case 'l':
            if (cli_set_log_format(optarg)) return cli_usage_error("eval", "unknown --log-format '%s'", optarg);
            break;
        default: return cli_usage_error("eval", "bad option");
        }
    }
    cli_exit_on_signals(); /* stops at once, also when a script ignored SIGINT: the report swaps in whole or not */
    if (dets || gt) {
        if (!dets || (!gt == !dataset)) return cli_usage_error("eval", "--detections needs --gt or --dataset (one of them)");
        if (optind != argc) return cli_usage_error("eval", "--detections takes no RUN");
        return eval_detections(dets, gt, dataset, split, out ? out : "eval-detections", baseline, max_drop);
    }
    if (optind != argc - 1) return cli_usage_error("eval", "exactly one RUN is required");
    const char *run = argv[optind];
    char ck[4200], outdir[4200], what[4300];
    int engine = 0;
    cJSON *spec = NULL, *report = NULL;
    int rc = cli_open_run(run, checkpoint, &spec, ck, sizeof ck, &engine);
    if (out) snprintf(outdir, sizeof outdir, "%s", out);
    else snprintf(outdir, sizeof outdir, engine ? "%s.eval" : "%s/eval", run);
    snprintf(what, sizeof what, "eval %s", run);
    if (!rc && engine && !dataset)
        rc = lathe_fail(LATHE_EINVAL, "an engine records no dataset: give --dataset (and --split)");
    if (!rc) rc = cli_check_dataset_classes(spec, dataset);
    if (!rc && device) rc = cli_set_device(spec, device);
    if (!rc && flip && strcmp(lathe_config_str(spec, "task", "classify"), "detect"))
        rc = lathe_fail(LATHE_EINVAL, "--flip is a detector's: %s is a %s run", run, lathe_config_str(spec, "task", "classify"));
    if (!rc && flip) rc = cli_set_flip(spec, flip);
    lathe_lock *lock = NULL; /* one writer of the report folder; the report replaced whole */
    lathe_output_set set = {.stage = ""};
    if (!rc) rc = lathe_folder_lock(outdir, &lock);
    if (!rc) rc = lathe_output_set_begin(&set, outdir);
    int detector = !rc && !strcmp(lathe_config_str(spec, "task", "classify"), "detect");
    if (detector) {
        char log[4300];
        snprintf(log, sizeof log, "%s/log.jsonl", run);
        rc = lathe_eval_detector(spec, ck, dataset, split, set.stage, log, &report);
        rc = stage_notebook(rc, &set);
        if (!rc) rc = lathe_output_set_publish(&set);
        if (!rc) {
            const cJSON *metrics = cJSON_GetObjectItemCaseSensitive(report, "metrics");
            print_metrics(metrics);
            const cJSON *verdicts = cJSON_GetObjectItemCaseSensitive(report, "image_level");
            if (verdicts)
                printf("image-level accuracy %.4f on %.0f images (verdict: of the detections at score >= %g, the class "
                       "with the largest sum of scores, else %s, right when it is the image's label or the class of one "
                       "of its boxes; %.4f naming the label itself; threshold: %s)\n", lathe_config_num(verdicts, "accuracy", -1),
                       lathe_config_num(verdicts, "images", 0), lathe_config_num(verdicts, "score_threshold", 0),
                       lathe_config_str(verdicts, "good_class", "good"), lathe_config_num(verdicts, "label_accuracy", -1),
                       !strcmp(lathe_config_str(verdicts, "threshold_from", ""), "val") ? "the best on val"
                       : !strcmp(lathe_config_str(verdicts, "threshold_from", ""), "spec") ? "eval.verdict_threshold"
                                                                                           : "the default");
            const cJSON *ov = cJSON_GetObjectItemCaseSensitive(report, "open_vocabulary");
            if (ov)
                printf("open vocabulary: base classes AP50 %.4f, novel classes (named only in text) AP50 %.4f\n",
                       lathe_config_num(ov, "base.AP50", -1), lathe_config_num(ov, "novel.AP50", -1));
            printf("mAP %.4f (AP50 %.4f) on %s%s; report: %s/report.html\n", lathe_config_num(metrics, "AP", -1),
                   lathe_config_num(metrics, "AP50", -1), split,
                   cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(report, "flip")) ? " (test-time mirror)" : "", outdir);
        }
    } else if (!rc && !strcmp(lathe_config_str(spec, "task", "classify"), "contrastive")) {
        rc = engine ? lathe_fail(LATHE_EUNSUPPORTED, "engines of image-text runs are not made yet: evaluate the run")
                    : lathe_eval_contrastive(spec, ck, dataset, split, set.stage, &report);
        rc = stage_notebook(rc, &set);
        if (!rc) rc = lathe_output_set_publish(&set);
        if (!rc) {
            char held[96] = "no held-out classes";
            if (lathe_config_num(report, "holdout.samples", 0) > 0)
                snprintf(held, sizeof held, "held-out classes %.4f on %.0f samples",
                         lathe_config_num(report, "holdout.accuracy", 0), lathe_config_num(report, "holdout.samples", 0));
            printf("zero-shot accuracy %.4f on %.0f samples of %s (chance %.4f); image->text R@1 %.4f, text->image R@1 "
                   "%.4f; %s; report: %s/report.html\n",
                   lathe_config_num(report, "accuracy", 0), lathe_config_num(report, "samples", 0), split,
                   lathe_config_num(report, "chance", 0), lathe_config_num(report, "retrieval.image_to_text.R@1", 0),
                   lathe_config_num(report, "retrieval.text_to_image.R@1", 0), held, outdir);
        }
    } else if (!rc && !strcmp(lathe_config_str(spec, "task", "classify"), "fusion")) {
        rc = engine ? lathe_fail(LATHE_EUNSUPPORTED, "engines of fusion runs are not made: evaluate the run")
                    : lathe_eval_fusion(spec, ck, dataset, split, set.stage, &report);
        rc = stage_notebook(rc, &set);
        if (!rc) rc = lathe_output_set_publish(&set);
        if (!rc)
            printf("accuracy %.4f on %.0f samples of %s (image only %.4f, sensors only %.4f; mAP %.4f; %.0f without sensors); "
                   "report: %s/report.html\n", lathe_config_num(report, "accuracy", 0), lathe_config_num(report, "samples", 0),
                   split, lathe_config_num(report, "ablation.image.accuracy", 0),
                   lathe_config_num(report, "ablation.sensor.accuracy", 0), lathe_config_num(report, "multilabel.map", 0),
                   lathe_config_num(report, "samples_without_sensors", 0), outdir);
    } else if (!rc && !strcmp(lathe_config_str(spec, "task", "classify"), "anomaly")) {
        rc = engine ? lathe_fail(LATHE_EUNSUPPORTED, "engines of anomaly runs are not made: evaluate the run")
                    : lathe_eval_anomaly(spec, ck, dataset, split, set.stage, &report);
        rc = stage_notebook(rc, &set);
        if (!rc) rc = lathe_output_set_publish(&set);
        if (!rc) {
            const cJSON *t = cJSON_GetObjectItemCaseSensitive(report, "run_threshold");
            int windows = !strcmp(lathe_config_str(report, "input", "image"), "sensors");
            char pixel[160];
            snprintf(pixel, sizeof pixel, "%s", windows ? "sensor windows: no pixel metrics" : "no masks: no pixel metrics");
            if (cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(report, "pixel_auroc")))
                snprintf(pixel, sizeof pixel, "pixel AUROC %.4f, PRO %.4f", lathe_config_num(report, "pixel_auroc", 0),
                         lathe_config_num(report, "pro", 0));
            printf("%s AUROC %.4f on %.0f %ss of %s (%.0f good, %.0f defective); %s; best F1 %.4f", windows ? "window" : "image",
                   lathe_config_num(report, "image_auroc", -1), lathe_config_num(report, "images", 0),
                   windows ? "window" : "image", split,
                   lathe_config_num(report, "good", 0), lathe_config_num(report, "defective", 0), pixel,
                   lathe_config_num(report, "best_f1.f1", 0));
            if (cJSON_IsObject(t))
                printf("; run threshold %.4g: accuracy %.4f", lathe_config_num(t, "threshold", 0),
                       lathe_config_num(t, "accuracy", 0));
            printf("; report: %s/report.html\n", outdir);
        }
    } else if (!rc) {
        rc = lathe_eval_classifier(spec, ck, dataset, split, set.stage, &report);
        rc = stage_notebook(rc, &set);
        if (!rc) rc = lathe_output_set_publish(&set);
        if (!rc)
            printf("accuracy %.4f on %.0f samples of %s; report: %s/report.html\n",
                   cJSON_GetObjectItemCaseSensitive(report, "accuracy")->valuedouble,
                   cJSON_GetObjectItemCaseSensitive(report, "samples")->valuedouble, split, outdir);
    }
    lathe_output_set_discard(&set);
    lathe_folder_unlock(lock);
    int verdict = rc ? EXIT_FAIL : gate(report, baseline, max_drop);
    cJSON_Delete(spec);
    cJSON_Delete(report);
    if (rc) cli_error(what, NULL);
    return verdict;
}
