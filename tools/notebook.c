/* notebook.c - `lathe notebook`: a Jupyter notebook of training runs, evaluations and dataset
 * analyses (notebooks-export/notebook.h), and the --notebook option train, eval and analyze share. */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "commands.h"
#include "libcore/base/config.h"
#include "libcore/base/error.h"
#include "libcore/base/fsutil.h"
#include "notebooks-export/notebook.h"

static void usage(FILE *out) {
    fprintf(out, "usage: lathe notebook PATH... -o OUT.ipynb [options]\n\n"
                 "Writes a Jupyter notebook (nbformat 4.5) of what lathe wrote. Each PATH is a training run\n"
                 "(runs/NAME: spec, metrics, per-epoch log and curves, and its eval/ when there), an evaluation\n"
                 "folder (lathe eval's report.json: a detector's COCO metrics, per-class AP, PR curves, confusion\n"
                 "matrix, verdicts; a classifier's or image-text head's accuracy, per-class table, retrieval) or an\n"
                 "analysis folder (lathe analyze: splits, classes, findings, every chart, samples via h5py); a\n"
                 "report.json or analysis.json file stands for its folder. Two or more runs add a comparison\n"
                 "first: metrics side by side, curves overlaid, the spec settings that differ.\n\n"
                 "The notebook renders without running (tables and lathe's charts are stored as outputs) and\n"
                 "reruns top to bottom (code cells load the same files with json, pandas and h5py and redraw each\n"
                 "table and chart with matplotlib). Its paths are relative to OUT's folder unless --absolute.\n\n"
                 "  -o, --output F      the notebook to write (replaced atomically; an existing file that is not a\n"
                 "                      notebook is refused)\n"
                 "  --absolute          absolute paths in the notebook's code (for a notebook that moves)\n"
                 "  --no-code           a read-only report: markdown cells only, tables and charts inlined\n"
                 "  --log-format FMT    text (default) or json log lines on stderr\n"
                 "  -h, --help          this help\n\n"
                 "Exit status: 0 written, 1 failure (a missing or corrupt file, named), 2 bad usage.\n");
}

static const struct option options[] = {
    {"output", required_argument, NULL, 'o'}, {"absolute", no_argument, NULL, 'a'},
    {"no-code", no_argument, NULL, 'n'},      {"log-format", required_argument, NULL, 'l'},
    {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
};

/* An existing out that is not a notebook (say a report.json given by mistake) is not replaced. */
static int check_target(const char *out) {
    struct stat st;
    if (stat(out, &st) != 0) return 0;
    if (S_ISDIR(st.st_mode)) return lathe_fail(LATHE_EEXIST, "%s is a folder: name the .ipynb file to write", out);
    cJSON *j = NULL;
    int ok = lathe_json_load(out, 1 << 30, &j) == 0 && cJSON_GetObjectItemCaseSensitive(j, "nbformat") &&
             cJSON_GetObjectItemCaseSensitive(j, "cells");
    cJSON_Delete(j);
    return ok ? 0 : lathe_fail(LATHE_EEXIST, "%s exists and is not a notebook: not replaced", out);
}

/* path, or for a report.json / analysis.json its folder, into out */
static void input_folder(const char *path, char *out, size_t cap) {
    const char *slash = strrchr(path, '/'), *base = slash ? slash + 1 : path;
    struct stat st;
    if ((!strcmp(base, "report.json") || !strcmp(base, "analysis.json")) && stat(path, &st) == 0 && S_ISREG(st.st_mode))
        lathe_dirname(path, out, cap);
    else
        snprintf(out, cap, "%s", path);
}

int cmd_notebook(int argc, char **argv) {
    const char *out = NULL;
    lathe_notebook_opts opts = {0};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "o:h", options, NULL)) != -1) {
        switch (c) {
        case 'o': out = optarg; break;
        case 'a': opts.absolute = 1; break;
        case 'n': opts.no_code = 1; break;
        case 'l':
            if (cli_set_log_format(optarg)) return cli_usage_error("notebook", "unknown --log-format '%s'", optarg);
            break;
        case 'h': usage(stdout); return EXIT_OK;
        default: usage(stderr); return EXIT_USAGE;
        }
    }
    if (optind >= argc) return cli_usage_error("notebook", "name at least one run, evaluation or analysis folder");
    if (!out) return cli_usage_error("notebook", "-o OUT.ipynb is required");
    size_t n = (size_t)(argc - optind);
    char(*folders)[PATH_MAX] = calloc(n, sizeof *folders), (*refs)[PATH_MAX] = calloc(n, sizeof *refs);
    lathe_notebook_input *in = calloc(n, sizeof *in);
    char out_dir[PATH_MAX];
    lathe_dirname(out, out_dir, sizeof out_dir);
    int rc = folders && refs && in ? 0 : lathe_fail(LATHE_ENOMEM, "notebook");
    if (!rc) rc = check_target(out);
    if (!rc) rc = lathe_mkdirs(out_dir);
    for (size_t i = 0; !rc && i < n; i++) {
        input_folder(argv[optind + (int)i], folders[i], PATH_MAX);
        const char *kind;
        rc = lathe_notebook_kind(folders[i], &kind);
        if (!rc) rc = lathe_notebook_ref(out_dir, folders[i], opts.absolute, refs[i], PATH_MAX);
        in[i].path = folders[i], in[i].ref = refs[i];
    }
    if (!rc) rc = lathe_notebook_write(in, n, &opts, out);
    free(folders), free(refs), free(in);
    if (rc) {
        cli_error("notebook", NULL);
        return EXIT_FAIL;
    }
    printf("notebook: %s\n", out);
    return EXIT_OK;
}

int cli_notebook_beside(const char *dir, const char *file) {
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    lathe_notebook_input in = {dir, "."};
    lathe_notebook_opts opts = {0};
    return lathe_notebook_write(&in, 1, &opts, path);
}
