/* cli.c - shared command-line helpers (see cli.h). */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "libcore/base/config.h"
#include "libcore/base/error.h"
#include "libcore/base/log.h"
#include "libcore/base/utf8.h"
#include "libcore/io/dataset.h"
#include "libcore/io/manifest.h"
#include "libcore/io/safetensors.h"
#include "libcore/nn/spec_check.h"

void cli_error(const char *what, const char *why) {
    const char *reason = why ? why : lathe_last_error();
    fprintf(stderr, "lathe: error: %s: %s\n", what, reason && *reason ? reason : "unknown error");
}

int cli_usage_error(const char *cmd, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "lathe %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n(see `lathe %s --help`)\n", cmd);
    return EXIT_USAGE;
}

int cli_set_log_format(const char *value) {
    if (strcmp(value, "text") == 0) lathe_log_set_json(0);
    else if (strcmp(value, "json") == 0) lathe_log_set_json(1);
    else return -1;
    return 0;
}

int cli_parse_int(const char *s, long long min, long long max, long long *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max) return -1;
    *out = v;
    return 0;
}

int cli_parse_double(const char *s, double min, double max, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < min || v > max) return -1;
    *out = v;
    return 0;
}

void openblas_set_num_threads(int); /* OpenBLAS's own control (its OpenMP build follows OpenMP too) */

void cli_set_threads(int n) {
    if (n > 0) omp_set_num_threads(n), openblas_set_num_threads(n);
}

/* spec.section.key = value (taken over; a section of another type is replaced). */
static int set_in_section(cJSON *spec, const char *section, const char *key, cJSON *value) {
    cJSON *sec = cJSON_GetObjectItemCaseSensitive(spec, section);
    if (!cJSON_IsObject(sec)) {
        cJSON_DeleteItemFromObjectCaseSensitive(spec, section);
        sec = cJSON_AddObjectToObject(spec, section);
    }
    if (!sec || !value) {
        cJSON_Delete(value);
        return lathe_fail(LATHE_ENOMEM, "spec");
    }
    cJSON_DeleteItemFromObjectCaseSensitive(sec, key);
    cJSON_AddItemToObject(sec, key, value);
    return 0;
}

int cli_set_device(cJSON *spec, const char *device) { return set_in_section(spec, "train", "device", cJSON_CreateString(device)); }

int cli_set_flip(cJSON *spec, const char *on_off) {
    int on = !strcmp(on_off, "on");
    if (!on && strcmp(on_off, "off")) return lathe_fail(LATHE_EINVAL, "--flip takes on or off, not '%s'", on_off);
    return set_in_section(spec, "eval", "flip", cJSON_CreateBool(on));
}

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig) {
    (void)sig;
    stop_requested = 1;
}

volatile sig_atomic_t *cli_stop_on_signals(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL); /* Slurm's --signal before a time limit; mpirun passes it on to every rank */
    return &stop_requested;
}

static void on_signal_exit(int sig) {
    static const char msg[] = "lathe: interrupted: the earlier output is kept\n";
    ssize_t w = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)w;
    _exit(sig == SIGINT ? 130 : 128 + sig);
}

void cli_exit_on_signals(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal_exit;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

void cli_stem(const char *path, char *out, size_t cap) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *dot = strrchr(base, '.');
    size_t n = lathe_utf8_cut(base, dot && dot != base ? (size_t)(dot - base) : strlen(base), cap);
    memcpy(out, base, n);
    out[n] = 0;
}

void cli_run_files(const char *run, const char *checkpoint, char *cfg, size_t cfg_cap, char *ck, size_t ck_cap) {
    snprintf(cfg, cfg_cap, "%s/config.yaml", run);
    if (!strcmp(checkpoint, "best") || !strcmp(checkpoint, "last"))
        snprintf(ck, ck_cap, "%s/checkpoints/%s.safetensors", run, checkpoint);
    else snprintf(ck, ck_cap, "%s", checkpoint);
}

int cli_checkpoint_exists(const char *run, const char *checkpoint, const char *ck) {
    if (!access(ck, F_OK)) return 0;
    char last[4300];
    snprintf(last, sizeof last, "%s/checkpoints/last.safetensors", run);
    if (!strcmp(checkpoint, "best") && !access(last, F_OK))
        return lathe_fail(LATHE_ENOTFOUND, "%s has no best.safetensors yet (it stopped in its first epoch): use --checkpoint last",
                          run);
    return lathe_fail(LATHE_ENOTFOUND, "no checkpoint %s", ck);
}

/* A run's config.yaml records model.classes and class_names from the dataset, so `lathe predict`
 * on image files and `lathe export` need no dataset. */
int cli_record_classes(cJSON *spec) {
    const char *dir = lathe_config_str(spec, "data.dataset", NULL);
    cJSON *model = cJSON_GetObjectItemCaseSensitive(spec, "model");
    if (!dir || !cJSON_IsObject(model) || cJSON_GetObjectItemCaseSensitive(spec, "class_names")) return 0;
    lathe_dataset *ds;
    int rc = lathe_dataset_open(dir, &ds);
    if (rc) return rc;
    const lathe_manifest *m = lathe_dataset_manifest(ds);
    if (!cJSON_GetObjectItemCaseSensitive(model, "classes")) cJSON_AddNumberToObject(model, "classes", m->nclasses);
    cJSON *names = cJSON_AddArrayToObject(spec, "class_names");
    for (int k = 0; names && k < m->nclasses; k++) cJSON_AddItemToArray(names, cJSON_CreateString(m->class_names[k]));
    lathe_dataset_close(ds);
    return names ? 0 : lathe_fail(LATHE_ENOMEM, "class names");
}

int cli_check_dataset_classes(const cJSON *spec, const char *dataset) {
    const cJSON *names = lathe_config_get(spec, "class_names");
    const char *task = lathe_config_str(spec, "task", "classify");
    if (!dataset || !cJSON_IsArray(names) || (strcmp(task, "classify") && strcmp(task, "detect"))) return 0;
    lathe_dataset *ds;
    int rc = lathe_dataset_open(dataset, &ds);
    if (rc) return rc;
    const lathe_manifest *m = lathe_dataset_manifest(ds);
    int n = cJSON_GetArraySize(names);
    if (m->nclasses != n)
        rc = lathe_fail(LATHE_EINVAL, "%s has %d classes and the run %d: --dataset needs the run's classes, in its order",
                        dataset, m->nclasses, n);
    for (int k = 0; !rc && k < n; k++) {
        const cJSON *name = cJSON_GetArrayItem(names, k);
        if (cJSON_IsString(name) && strcmp(name->valuestring, m->class_names[k]))
            rc = lathe_fail(LATHE_EINVAL, "%s names class %d \"%s\" where the run has \"%s\": --dataset needs the run's "
                            "classes, in its order", dataset, k, m->class_names[k], name->valuestring);
    }
    lathe_dataset_close(ds);
    return rc;
}

/* A JSON metadata value of an engine, parsed (NULL when absent or not JSON). */
static cJSON *engine_json(const lathe_st_file *f, const char *key) {
    const char *v = lathe_st_meta(f, key);
    return v ? cJSON_Parse(v) : NULL;
}

/* The spec of an engine file: its model, task, class names, normalization and run name. */
static int engine_spec(const char *path, cJSON **out) {
    lathe_st_file *f;
    int rc = lathe_st_open(path, &f);
    if (rc) {
        char why[512];
        snprintf(why, sizeof why, "%s", lathe_last_error());
        return lathe_fail(LATHE_EFORMAT, "%s is neither a run folder nor a lathe engine file (%s)", path, why);
    }
    const char *task = lathe_st_meta(f, "lathe.task"), *name = lathe_st_meta(f, "lathe.run");
    cJSON *spec = cJSON_CreateObject(), *model = engine_json(f, "lathe.model"), *names = engine_json(f, "lathe.class_names");
    cJSON *mean = engine_json(f, "lathe.mean"), *stdv = engine_json(f, "lathe.std"), *data = cJSON_CreateObject();
    if (!lathe_st_meta(f, "lathe.engine") || strcmp(lathe_st_meta(f, "lathe.engine"), "1"))
        rc = lathe_fail(LATHE_EFORMAT, "%s is neither a run folder nor a lathe engine (lathe export --format lathe)", path);
    else if (!spec || !data) rc = lathe_fail(LATHE_ENOMEM, "spec of %s", path);
    else if (!cJSON_IsObject(model) || !task || !cJSON_IsArray(names) || !cJSON_IsArray(mean) || !cJSON_IsArray(stdv) ||
             !cJSON_IsNumber(cJSON_GetArrayItem(mean, 0)) || !cJSON_IsNumber(cJSON_GetArrayItem(stdv, 0)))
        rc = lathe_fail(LATHE_EFORMAT, "%s: an engine without its model, task, class names or normalization", path);
    if (!rc) {
        cJSON_AddStringToObject(spec, "name", name ? name : "engine");
        cJSON_AddStringToObject(spec, "task", task);
        if (!cJSON_GetObjectItemCaseSensitive(model, "classes"))
            cJSON_AddNumberToObject(model, "classes", cJSON_GetArraySize(names));
        cJSON_AddItemToObject(spec, "model", model), model = NULL;
        cJSON_AddItemToObject(spec, "class_names", names), names = NULL;
        cJSON_AddNumberToObject(data, "mean", cJSON_GetArrayItem(mean, 0)->valuedouble);
        cJSON_AddNumberToObject(data, "std", cJSON_GetArrayItem(stdv, 0)->valuedouble);
        cJSON *tiling = engine_json(f, "lathe.tiling"); /* {"tile": T, "overlap": O}: a model of tiles */
        const cJSON *tile = cJSON_GetObjectItemCaseSensitive(tiling, "tile");
        const cJSON *overlap = cJSON_GetObjectItemCaseSensitive(tiling, "overlap");
        if (cJSON_IsNumber(tile) && cJSON_IsNumber(overlap))
            cJSON_AddNumberToObject(data, "tile", tile->valuedouble), cJSON_AddNumberToObject(data, "overlap", overlap->valuedouble);
        cJSON_Delete(tiling);
        cJSON_AddItemToObject(spec, "data", data), data = NULL;
        *out = spec, spec = NULL;
    }
    cJSON_Delete(spec), cJSON_Delete(model), cJSON_Delete(names), cJSON_Delete(mean), cJSON_Delete(stdv), cJSON_Delete(data);
    lathe_st_close(f);
    return rc;
}

int cli_open_run(const char *run, const char *checkpoint, cJSON **spec, char *ck, size_t ck_cap, int *engine) {
    struct stat st;
    *spec = NULL, *engine = !stat(run, &st) && S_ISREG(st.st_mode);
    if (*engine) {
        if (strcmp(checkpoint, "best")) return lathe_fail(LATHE_EINVAL, "--checkpoint is for run folders; %s is an engine", run);
        snprintf(ck, ck_cap, "%s", run);
        return engine_spec(run, spec);
    }
    char cfg[4200];
    cli_run_files(run, checkpoint, cfg, sizeof cfg, ck, ck_cap);
    int rc = lathe_config_load(cfg, spec);
    if (!rc) rc = lathe_spec_check(*spec); /* a config.yaml edited by hand */
    if (!rc) rc = cli_checkpoint_exists(run, checkpoint, ck);
    return rc;
}

void cli_run_tiling(const cJSON *spec, int *tile, int *overlap) {
    *tile = (int)lathe_config_num(spec, "data.tile", 0), *overlap = (int)lathe_config_num(spec, "data.overlap", 0);
    const char *dir = lathe_config_str(spec, "data.dataset", NULL);
    lathe_manifest m;
    if (!*tile && dir && !lathe_manifest_load(dir, &m)) {
        lathe_manifest_tiling(&m, tile, overlap);
        lathe_manifest_free(&m);
    }
    if (*tile < 8 || *tile > 16384 || *overlap < 0 || *overlap >= *tile) *tile = *overlap = 0; /* what ingest --tile accepts */
}
