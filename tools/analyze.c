/* analyze.c - `lathe analyze DATASET -o DIR`: statistics and quality findings of a dataset into
 * DIR/analysis.json, report.html, report.md and plots/; `--fail-on KINDS` turns findings into exit
 * code 3 for CI; `--compare REF` (a dataset or an analysis.json) describes how DATASET differs. */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "libcore/analyze/analyze.h"
#include "libcore/base/config.h"
#include "libcore/base/error.h"
#include "libcore/base/folder_lock.h"
#include "libcore/base/output_set.h"
#include "libcore/base/fsutil.h"
#include "libcore/io/dataset.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: lathe analyze DATASET -o DIR [options]\n\n"
            "Finds what is wrong with a dataset written by `lathe ingest` before training does: statistics per\n"
            "split and class (objects per image, box sizes, centres, co-occurrence, label balance, brightness,\n"
            "contrast, sharpness, colour, sensor channels, text) and quality findings, each with its sample ids.\n"
            "Writes DIR/analysis.json (keys in docs/FORMAT.md), DIR/report.html (self-contained), DIR/report.md\n"
            "and DIR/plots/*.png. Sample ids are global indices, as `lathe info` and the reader count them.\n\n"
            "Finding kinds: corrupt, empty-class, rare-class, degenerate-box, tiny-box, border-box,\n"
            "double-label, overexposed, underexposed, blurred, duplicate, near-duplicate, leakage, sensor-nan,\n"
            "sensor-constant, sensor-drift; with --compare also class-mix-shift, box-size-shift,\n"
            "brightness-shift, sensor-shift.\n\n"
            "  -o, --output DIR      where the reports go (created)\n"
            "  --fail-on KINDS       comma-separated finding kinds (or 'any'): exit 3 when any is found\n"
            "  --compare REF         a reference dataset folder or its analysis.json: report the differences\n"
            "  --radius N            near-duplicate candidates: Hamming radius of the 64-bit hash, 0..15 (12)\n"
            "  --similarity X        near-duplicates: 48x48 luma grids correlated at least X, -1..1 (0.95)\n"
            "  --tiny-box PX         boxes with a side under PX stored pixels are tiny (4)\n"
            "  --border PX           boxes within PX of the image content's edge are on the border (1)\n"
            "  --double-iou X        same-class boxes with IoU >= X in one image are double labels (0.9)\n"
            "  --dark Y              mean luma under Y (0..255) is underexposed (25)\n"
            "  --bright Y            mean luma over Y is overexposed (230)\n"
            "  --clip-share X        ... or over this share of pixels at Y <= 5 / Y >= 250 (0.25)\n"
            "  --blur-ratio X        sharpness under X times the dataset median is blurred (0.1)\n"
            "  --rare-ratio X        classes under X times the median class count are rare (0.1)\n"
            "  --sensor-nan X        sensor channels with a NaN share above X (0.1)\n"
            "  --drift X             sensor channels drifting more than X standard deviations (1.0)\n"
            "  --heatmap-bins N      box-centre heatmap of N x N cells, 2..64 (16)\n"
            "  --max-listed N        sample ids listed per finding, 0 = all (1000); counts are always exact\n"
            "  --threads N           threads (default: all cores)\n"
            "  --notebook            also write DIR/notebook.ipynb: the analysis as a Jupyter notebook that\n"
            "                        renders as it is and reruns (lathe notebook, docs/CLI.md)\n"
            "  --log-format FMT      text (default) or json log lines on stderr\n"
            "  -h, --help            this help\n\n"
            "Exit status: 0 done, 1 failure (unreadable dataset, cannot write DIR), 2 bad usage,\n"
            "3 a --fail-on finding was found (listed on stderr; reports are written first).\n");
}

enum {
    OPT_FAIL_ON = 256, OPT_COMPARE, OPT_RADIUS, OPT_SIMILARITY, OPT_TINY, OPT_BORDER, OPT_DOUBLE, OPT_DARK, OPT_BRIGHT, OPT_CLIP,
    OPT_BLUR, OPT_RARE, OPT_SNAN, OPT_DRIFT, OPT_BINS, OPT_LISTED, OPT_THREADS, OPT_LOG, OPT_NOTEBOOK,
};

static const struct option options[] = {
    {"output", required_argument, NULL, 'o'},       {"help", no_argument, NULL, 'h'},
    {"fail-on", required_argument, NULL, OPT_FAIL_ON}, {"compare", required_argument, NULL, OPT_COMPARE},
    {"radius", required_argument, NULL, OPT_RADIUS},
    {"similarity", required_argument, NULL, OPT_SIMILARITY}, {"tiny-box", required_argument, NULL, OPT_TINY},
    {"border", required_argument, NULL, OPT_BORDER}, {"double-iou", required_argument, NULL, OPT_DOUBLE},
    {"dark", required_argument, NULL, OPT_DARK},     {"bright", required_argument, NULL, OPT_BRIGHT},
    {"clip-share", required_argument, NULL, OPT_CLIP}, {"blur-ratio", required_argument, NULL, OPT_BLUR},
    {"rare-ratio", required_argument, NULL, OPT_RARE}, {"sensor-nan", required_argument, NULL, OPT_SNAN},
    {"drift", required_argument, NULL, OPT_DRIFT},   {"heatmap-bins", required_argument, NULL, OPT_BINS},
    {"max-listed", required_argument, NULL, OPT_LISTED}, {"threads", required_argument, NULL, OPT_THREADS},
    {"log-format", required_argument, NULL, OPT_LOG}, {"notebook", no_argument, NULL, OPT_NOTEBOOK},
    {NULL, 0, NULL, 0},
};

static int real_option(const char *name, const char *v, double lo, double hi, double *out) {
    if (cli_parse_double(v, lo, hi, out)) return cli_usage_error("analyze", "--%s needs a number in [%g, %g]", name, lo, hi);
    return 0;
}

static int int_option(const char *name, const char *v, long long lo, long long hi, int *out) {
    long long n;
    if (cli_parse_int(v, lo, hi, &n)) return cli_usage_error("analyze", "--%s needs a whole number %lld..%lld", name, lo, hi);
    *out = (int)n;
    return 0;
}

static int apply_option(int opt, const char *v, lathe_analyze_opts *o) {
    switch (opt) {
    case OPT_RADIUS: return int_option("radius", v, 0, 15, &o->radius);
    case OPT_SIMILARITY: return real_option("similarity", v, -1, 1, &o->similarity);
    case OPT_TINY: return real_option("tiny-box", v, 0, 1e6, &o->tiny_box);
    case OPT_BORDER: return real_option("border", v, 0, 1e6, &o->border_px);
    case OPT_DOUBLE: return real_option("double-iou", v, 1e-6, 1, &o->double_iou);
    case OPT_DARK: return real_option("dark", v, 0, 255, &o->dark_mean);
    case OPT_BRIGHT: return real_option("bright", v, 0, 255, &o->bright_mean);
    case OPT_CLIP: return real_option("clip-share", v, 1e-6, 1, &o->clip_share);
    case OPT_BLUR: return real_option("blur-ratio", v, 0, 1e6, &o->blur_ratio);
    case OPT_RARE: return real_option("rare-ratio", v, 0, 1e6, &o->rare_ratio);
    case OPT_SNAN: return real_option("sensor-nan", v, 0, 1, &o->sensor_nan);
    case OPT_DRIFT: return real_option("drift", v, 1e-6, 1e6, &o->drift);
    case OPT_BINS: return int_option("heatmap-bins", v, 2, 64, &o->heatmap_bins);
    case OPT_LISTED: return int_option("max-listed", v, 0, 1000000000, &o->max_listed);
    case OPT_THREADS: return int_option("threads", v, 1, 1024, &o->threads);
    case OPT_LOG:
        if (cli_set_log_format(v)) return cli_usage_error("analyze", "unknown --log-format '%s' (text or json)", v);
        return 0;
    default: return cli_usage_error("analyze", "unknown option");
    }
}

/* Checks every kind of a comma-separated list; 0 or a usage error. */
static int check_kinds(const char *list) {
    char *copy = strdup(list), *save = NULL;
    if (!copy) return EXIT_FAIL;
    int rc = 0;
    for (char *k = strtok_r(copy, ",", &save); k && !rc; k = strtok_r(NULL, ",", &save))
        if (strcmp(k, "any") && !lathe_analyze_is_kind(k))
            rc = cli_usage_error("analyze", "--fail-on: unknown finding kind '%s'", k);
    free(copy);
    return rc;
}

static int listed(const char *list, const char *kind) {
    size_t n = strlen(kind);
    for (const char *p = list; *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if ((len == n && !strncmp(p, kind, n)) || (len == 3 && !strncmp(p, "any", 3))) return 1;
        p += len + (end != NULL);
    }
    return 0;
}

/* Adds "failed": [kinds] to the analysis and prints them; returns how many failed. */
static int apply_gate(cJSON *analysis, const char *fail_on) {
    cJSON *failed = cJSON_AddArrayToObject(analysis, "failed");
    int n = 0;
    for (int k = 0; lathe_analyze_kinds[k]; k++) {
        double count = lathe_analyze_finding_count(analysis, lathe_analyze_kinds[k]);
        if (!fail_on || !listed(fail_on, lathe_analyze_kinds[k]) || count <= 0) continue;
        cJSON_AddItemToArray(failed, cJSON_CreateString(lathe_analyze_kinds[k]));
        if (n++ == 0) fprintf(stderr, "lathe analyze: quality gate failed (--fail-on %s):\n", fail_on);
        fprintf(stderr, "  %-18s %g\n", lathe_analyze_kinds[k], count);
    }
    return n;
}

static int analyze_dataset(const char *dir, const lathe_analyze_opts *o, cJSON **out) {
    lathe_dataset *ds = NULL;
    int rc = lathe_dataset_open(dir, &ds);
    if (rc) return rc;
    rc = lathe_analyze_run(ds, o, out);
    lathe_dataset_close(ds);
    return rc;
}

static int load_reference(const char *ref, const lathe_analyze_opts *o, cJSON **out) {
    size_t len = strlen(ref);
    if (len > 5 && !strcmp(ref + len - 5, ".json")) {
        return lathe_json_load(ref, (size_t)1 << 30, out);
    }
    return analyze_dataset(ref, o, out);
}

static int write_outputs(const cJSON *analysis, const char *dir) {
    char path[4200];
    snprintf(path, sizeof path, "%s/analysis.json", dir);
    int rc = lathe_mkdirs(dir);
    if (!rc) rc = lathe_json_save(path, analysis);
    if (!rc) rc = lathe_analyze_write_reports(analysis, dir);
    return rc;
}

int cmd_analyze(int argc, char **argv) {
    lathe_analyze_opts o;
    lathe_analyze_defaults(&o);
    const char *out = NULL, *fail_on = NULL, *compare = NULL;
    int notebook = 0;
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "o:h", options, NULL)) != -1) {
        int rc = 0;
        if (opt == 'h') {
            usage(stdout);
            return EXIT_OK;
        } else if (opt == '?') {
            return cli_usage_error("analyze", "bad option");
        } else if (opt == 'o') {
            out = optarg;
        } else if (opt == OPT_FAIL_ON) {
            fail_on = optarg;
            rc = check_kinds(fail_on);
        } else if (opt == OPT_COMPARE) {
            compare = optarg;
        } else if (opt == OPT_NOTEBOOK) {
            notebook = 1;
        } else {
            rc = apply_option(opt, optarg, &o);
        }
        if (rc) return rc;
    }
    cli_exit_on_signals(); /* stops at once, also when a script ignored SIGINT: the report swaps in whole or not */
    if (optind != argc - 1) return cli_usage_error("analyze", "exactly one DATASET is required");
    if (!out) return cli_usage_error("analyze", "-o DIR is required");
    if (lathe_analyze_check(&o)) return cli_usage_error("analyze", "%s", lathe_last_error());
    const char *dir = argv[optind];
    char what[4200];
    snprintf(what, sizeof what, "analyze %s", dir);
    cJSON *analysis = NULL, *reference = NULL;
    lathe_lock *lock = NULL; /* taken first: a second writer of -o DIR fails before the work */
    lathe_output_set set = {.stage = ""};
    snprintf(what, sizeof what, "writing %s", out);
    int rc = lathe_folder_lock(out, &lock);
    if (!rc) rc = lathe_output_set_begin(&set, out); /* the report is replaced whole, plots included */
    if (!rc) snprintf(what, sizeof what, "analyze %s", dir);
    if (!rc) rc = analyze_dataset(dir, &o, &analysis);
    if (!rc && compare) {
        snprintf(what, sizeof what, "analyze --compare %s", compare);
        rc = load_reference(compare, &o, &reference);
        if (!rc) rc = lathe_analyze_compare(analysis, reference, compare);
    }
    int failed = rc ? 0 : apply_gate(analysis, fail_on);
    if (!rc) {
        snprintf(what, sizeof what, "writing %s", out);
        rc = write_outputs(analysis, set.stage);
        if (!rc && notebook) rc = cli_notebook_beside(set.stage, "notebook.ipynb"); /* swaps in with the report */
        if (!rc) rc = lathe_output_set_publish(&set);
    }
    lathe_output_set_discard(&set);
    if (!rc) {
        printf("analyzed %g samples of %s in %.1f s\n",
               cJSON_GetObjectItemCaseSensitive(analysis, "samples")->valuedouble, dir,
               cJSON_GetObjectItemCaseSensitive(analysis, "seconds")->valuedouble);
        for (int k = 0; lathe_analyze_kinds[k]; k++) {
            double c = lathe_analyze_finding_count(analysis, lathe_analyze_kinds[k]);
            if (c > 0) printf("  %-18s %g\n", lathe_analyze_kinds[k], c);
        }
        printf("report: %s/report.html (also report.md, analysis.json)\n", out);
    }
    lathe_folder_unlock(lock);
    cJSON_Delete(analysis);
    cJSON_Delete(reference);
    if (rc) {
        cli_error(what, NULL);
        return EXIT_FAIL;
    }
    return failed ? EXIT_REGRESSION : EXIT_OK;
}
