/* nb_run.c - the notebook of a training run (templates/run.py) and the comparison of several
 * (templates/compare.py): metrics.json, config.yaml and log.jsonl, and the curves drawn from it. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "libcore/base/config.h"
#include "libcore/base/error.h"
#include "libcore/base/fsutil.h"
#include "libcore/eval/plot.h"
#include "nb_internal.h"

/* What a run folder holds, loaded. */
typedef struct {
    const nb_input *in;
    cJSON *metrics, *spec, *log; /* log: the array of log.jsonl's objects */
    char *spec_text;
    int finished; /* metrics.json is there: training ended (stopped or running runs have none) */
} run_files;

static void run_files_free(run_files *r) {
    cJSON_Delete(r->metrics), cJSON_Delete(r->spec), cJSON_Delete(r->log);
    free(r->spec_text);
}

/* log.jsonl as an array of its objects; each line must be one JSON object. */
static int load_log(const char *dir, cJSON **out) {
    char path[4200], *text = NULL;
    size_t len = 0;
    snprintf(path, sizeof path, "%s/log.jsonl", dir);
    *out = NULL;
    if (!nb_exists(dir, "log.jsonl")) return lathe_fail(LATHE_ENOTFOUND, "%s is missing", path);
    int rc = lathe_read_file(path, 1 << 28, &text, &len);
    if (rc) return rc;
    cJSON *log = cJSON_CreateArray();
    rc = log ? 0 : lathe_fail(LATHE_ENOMEM, "%s", path);
    int line = 0;
    for (char *p = text, *nl; !rc && p && *p; p = nl ? nl + 1 : NULL) {
        nl = strchr(p, '\n');
        if (nl) *nl = '\0';
        line++;
        if (strspn(p, " \t\r") == strlen(p)) continue;
        cJSON *e = cJSON_Parse(p);
        if (!cJSON_IsObject(e)) {
            cJSON_Delete(e);
            rc = lathe_fail(LATHE_EFORMAT, "%s line %d is not a JSON object (corrupt or cut short)", path, line);
        } else if (!cJSON_AddItemToArray(log, e)) {
            cJSON_Delete(e);
            rc = lathe_fail(LATHE_ENOMEM, "%s", path);
        }
    }
    free(text);
    if (rc) cJSON_Delete(log);
    else *out = log;
    return rc;
}

static int load_run(const nb_input *in, run_files *r) {
    memset(r, 0, sizeof *r);
    r->in = in;
    char cfg[4200];
    size_t len;
    snprintf(cfg, sizeof cfg, "%s/config.yaml", in->path);
    r->finished = nb_exists(in->path, "metrics.json");
    int rc = r->finished ? nb_load_json(in->path, "metrics.json", &r->metrics) : 0;
    if (!rc && !r->finished && !(r->metrics = cJSON_CreateObject())) rc = lathe_fail(LATHE_ENOMEM, "%s", in->path);
    if (!rc && !cJSON_IsObject(r->metrics)) rc = lathe_fail(LATHE_EFORMAT, "%s/metrics.json is not a JSON object", in->path);
    if (!rc) rc = load_log(in->path, &r->log);
    if (!rc) rc = lathe_read_file(cfg, 1 << 24, &r->spec_text, &len);
    if (!rc && (rc = lathe_config_parse(r->spec_text, cfg, &r->spec)))
        rc = lathe_fail_context(-rc, "%s is not a readable spec", cfg);
    if (rc) run_files_free(r);
    return rc;
}

/* ---- the log's columns and curves ---- */

static int is_loss(const char *k) { return !strcmp(k, "loss") || !strncmp(k, "loss_", 5) || !strcmp(k, "val_loss"); }
static int is_validation(const char *k) {
    return !strncmp(k, "val_", 4) && !strstr(k, "loss") && !strstr(k, "detections");
}

/* The log's keys in order of first appearance (as pandas orders the columns of a list of records). */
static int log_columns(const cJSON *log, const char ***out, int *n) {
    int cap = 0;
    *out = NULL, *n = 0;
    const cJSON *e, *v;
    cJSON_ArrayForEach(e, log) cJSON_ArrayForEach(v, e) {
        int seen = 0;
        for (int i = 0; i < *n && !seen; i++) seen = !strcmp((*out)[i], v->string);
        if (seen) continue;
        if (*n == cap) {
            cap = cap ? 2 * cap : 16;
            const char **grown = realloc(*out, (size_t)cap * sizeof *grown);
            if (!grown) return free(*out), *out = NULL, lathe_fail(LATHE_ENOMEM, "log columns");
            *out = grown;
        }
        (*out)[(*n)++] = v->string;
    }
    return 0;
}

static double epoch_of(const cJSON *e, int i) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(e, "epoch");
    return cJSON_IsNumber(v) ? v->valuedouble : i + 1;
}

static int log_table(const cJSON *log, cJSON **outputs) {
    const char **cols;
    int n, rc = log_columns(log, &cols, &n);
    if (rc) return rc;
    const char **header = malloc((size_t)(n + 1) * sizeof *header), **row = malloc((size_t)(n + 1) * sizeof *row);
    char *text = malloc((size_t)(n + 1) * 64);
    nb_table t;
    int k = 1;
    if (!header || !row || !text) rc = lathe_fail(LATHE_ENOMEM, "log table");
    for (int c = 0; !rc && c < n; c++)
        if (strcmp(cols[c], "epoch") != 0) header[k++] = cols[c];
    if (!rc) header[0] = "epoch", nb_table_init(&t, k, header);
    int i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, log) {
        if (rc) break;
        for (int c = 0; c < k; c++) {
            char *cell = text + (size_t)c * 64;
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(e, header[c]);
            if (c == 0) snprintf(cell, 64, "%g", epoch_of(e, i));
            else nb_value_text(v, cell, 64);
            row[c] = cell;
        }
        rc = nb_table_row(&t, row);
        i++;
    }
    if (!rc) rc = nb_table_emit(&t, outputs);
    else if (header && row && text) nb_table_free(&t);
    free(header), free(row), free(text), free(cols);
    return rc;
}

/* One chart of the columns picked by wanted, against epoch; none picked: nothing. */
static int curve_chart(const cJSON *log, int (*wanted)(const char *), const char *title, cJSON **outputs) {
    const char **cols;
    int n, rc = log_columns(log, &cols, &n), rows = cJSON_GetArraySize(log), ns = 0;
    if (rc) return rc;
    const char **names = malloc((size_t)(n ? n : 1) * sizeof *names);
    double *x = malloc((size_t)(rows ? rows : 1) * sizeof *x), *y = malloc((size_t)(n ? n : 1) * (rows ? rows : 1) * sizeof *y);
    if (!names || !x || !y) rc = lathe_fail(LATHE_ENOMEM, "training curves");
    for (int c = 0; !rc && c < n; c++) {
        if (!wanted(cols[c])) continue;
        int numeric = 0;
        for (int i = 0; i < rows; i++) {
            const cJSON *e = cJSON_GetArrayItem(log, i), *v = cJSON_GetObjectItemCaseSensitive(e, cols[c]);
            x[i] = epoch_of(e, i);
            y[(size_t)ns * rows + i] = cJSON_IsNumber(v) ? v->valuedouble : NAN;
            numeric |= cJSON_IsNumber(v);
        }
        if (numeric) names[ns++] = cols[c];
    }
    if (!rc && ns && rows) {
        lathe_plot_frame f = {title, "epoch", "value", 0, 0};
        lathe_png png;
        rc = lathe_plot_lines(&f, x, (size_t)rows, y, ns, names, &png);
        if (!rc) rc = lathe_ipynb_add_png(outputs, &png, title), lathe_png_free(&png);
    }
    free(names), free(x), free(y), free(cols);
    return rc;
}

/* ---- the run's notebook ---- */

static int run_cell(void *ctx, const char *name, cJSON **outputs) {
    const run_files *r = ctx;
    int epochs = cJSON_GetArraySize(r->log);
    if (!strcmp(name, "metrics_title")) return r->finished;
    if (!strcmp(name, "metrics")) return r->finished ? kept(nb_object_table(r->metrics, outputs)) : 0;
    if (!strcmp(name, "unfinished")) return !r->finished;
    if (!strcmp(name, "spec")) return kept(lathe_ipynb_add_text(outputs, r->spec_text));
    if (!strcmp(name, "no_log")) return epochs == 0;
    if (!strcmp(name, "log_title")) return epochs > 0;
    if (!strcmp(name, "log")) return epochs > 0 ? kept(log_table(r->log, outputs)) : 0;
    if (!strcmp(name, "curves")) {
        if (!epochs) return 0;
        int rc = curve_chart(r->log, is_loss, "Training loss", outputs);
        if (!rc) rc = curve_chart(r->log, is_validation, "Validation", outputs);
        return kept(rc);
    }
    return lathe_fail(LATHE_EINVAL, "notebook template run: unknown cell %s", name);
}

static void append(char *buf, size_t cap, const char *fmt, const char *a, const char *b) {
    size_t len = strlen(buf);
    if (len < cap) snprintf(buf + len, cap - len, fmt, a, b);
}

static void run_summary(const run_files *r, char *out, size_t cap) {
    char text[1024], when[64] = "", path[4200];
    struct stat st;
    out[0] = '\0';
    append(out, cap, "- **%s**: %s\n", "task", lathe_config_str(r->spec, "task", "classify"));
    append(out, cap, "- **%s**: `%s`\n", "dataset", lathe_config_str(r->spec, "data.dataset", "?"));
    if (!strcmp(lathe_config_str(r->spec, "task", "classify"), "anomaly")) /* one pass, no epochs */
        snprintf(text, sizeof text, "one pass over the good training images (%s)", lathe_config_str(r->spec, "anomaly.method", "patchcore"));
    else
        snprintf(text, sizeof text, "%d logged of %g in the spec", cJSON_GetArraySize(r->log),
                 lathe_config_num(r->spec, "train.epochs", NAN));
    append(out, cap, "- **%s**: %s\n", "epochs", text);
    const cJSON *v;
    cJSON_ArrayForEach(v, r->metrics) {
        if (strncmp(v->string, "best", 4) != 0) continue;
        nb_value_text(v, text, sizeof text);
        append(out, cap, "- **%s**: %s\n", v->string, text);
    }
    snprintf(path, sizeof path, "%s/log.jsonl", r->in->path);
    if (stat(path, &st) == 0) strftime(when, sizeof when, "%Y-%m-%d %H:%M UTC", gmtime(&st.st_mtime));
    if (*when) append(out, cap, "- **%s**: %s (log.jsonl)\n", "last written", when);
    append(out, cap, "- **%s**: `%s`\n", "folder", r->in->ref);
}

int nb_build_run(lathe_ipynb *nb, const nb_input *in) {
    run_files r;
    int rc = load_run(in, &r);
    if (rc) return rc;
    char summary[8192], eval_dir[4200], eval_ref[4200], eval_name[300];
    run_summary(&r, summary, sizeof summary);
    nb_var vars[] = {{"name", in->name}, {"summary", summary}, {"path", in->ref}};
    rc = nb_template_emit(nb, "run", vars, sizeof vars / sizeof *vars, run_cell, &r);
    run_files_free(&r);
    snprintf(eval_dir, sizeof eval_dir, "%s/eval", in->path);
    if (!rc && nb_exists(eval_dir, "report.json")) { /* what `lathe eval RUN` wrote */
        snprintf(eval_ref, sizeof eval_ref, "%s/eval", in->ref);
        snprintf(eval_name, sizeof eval_name, "%s/eval", in->name);
        rc = nb_build_eval(nb, in, eval_dir, eval_ref, eval_name);
    }
    return rc;
}

/* ---- several runs ---- */

typedef struct {
    char *key, *value;
} setting;

static int by_key(const void *a, const void *b) { return strcmp(((const setting *)a)->key, ((const setting *)b)->key); }

typedef struct {
    setting *items;
    size_t n, cap;
} settings;

static int add_setting(settings *out, const char *key, const char *value) {
    if (out->n == out->cap) {
        size_t cap = out->cap ? 2 * out->cap : 64;
        setting *grown = realloc(out->items, cap * sizeof *grown);
        if (!grown) return lathe_fail(LATHE_ENOMEM, "spec differences");
        out->items = grown, out->cap = cap;
    }
    setting *s = &out->items[out->n];
    s->key = strdup(key), s->value = strdup(value);
    if (!s->key || !s->value) {
        free(s->key), free(s->value);
        return lathe_fail(LATHE_ENOMEM, "spec differences");
    }
    out->n++;
    return 0;
}

/* Every leaf of the spec as "a.b.0.c" = its compact JSON (as the notebook's flatten() does). */
static int flatten(const cJSON *v, const char *prefix, settings *out) {
    if (cJSON_IsObject(v) || cJSON_IsArray(v)) {
        const cJSON *c;
        int i = 0, rc = 0;
        cJSON_ArrayForEach(c, v) {
            char key[1024], index[16];
            snprintf(index, sizeof index, "%d", i++);
            const char *part = cJSON_IsObject(v) ? c->string : index;
            snprintf(key, sizeof key, "%s%s%s", prefix, *prefix ? "." : "", part);
            if ((rc = flatten(c, key, out))) return rc;
        }
        return 0;
    }
    char *value = cJSON_PrintUnformatted(v);
    int rc = value ? add_setting(out, prefix, value) : lathe_fail(LATHE_ENOMEM, "spec differences");
    free(value);
    return rc;
}

static void settings_free(settings *s) {
    for (size_t i = 0; i < s->n; i++) free(s->items[i].key), free(s->items[i].value);
    free(s->items);
}

static const char *lookup(const settings *s, const char *key) {
    setting probe = {(char *)key, NULL};
    const setting *hit = bsearch(&probe, s->items, s->n, sizeof *s->items, by_key);
    return hit ? hit->value : "-";
}

typedef struct {
    run_files *runs;
    const char **names;
    size_t n;
    const char *metric;
} compare_ctx;

static int metrics_side_by_side(const compare_ctx *c, cJSON **outputs) {
    cJSON *keys = cJSON_CreateObject(); /* the union of the keys, in order of first appearance */
    int rc = keys ? 0 : lathe_fail(LATHE_ENOMEM, "metrics table");
    for (size_t r = 0; !rc && r < c->n; r++) {
        const cJSON *v;
        cJSON_ArrayForEach(v, c->runs[r].metrics) if (!cJSON_GetObjectItemCaseSensitive(keys, v->string) &&
                                                       !cJSON_AddTrueToObject(keys, v->string)) rc = -LATHE_ENOMEM;
    }
    int k = cJSON_GetArraySize(keys) + 1;
    const char **header = malloc((size_t)k * sizeof *header), **row = malloc((size_t)k * sizeof *row);
    char *text = malloc((size_t)k * 256);
    if (!rc && (!header || !row || !text)) rc = lathe_fail(LATHE_ENOMEM, "metrics table");
    nb_table t;
    if (!rc) {
        int i = 1;
        const cJSON *v;
        header[0] = "";
        cJSON_ArrayForEach(v, keys) header[i++] = v->string;
        nb_table_init(&t, k, header);
        for (size_t r = 0; !rc && r < c->n; r++) {
            row[0] = c->names[r];
            for (int j = 1; j < k; j++) {
                const cJSON *m = cJSON_GetObjectItemCaseSensitive(c->runs[r].metrics, header[j]);
                nb_value_text(m, text + (size_t)j * 256, 256);
                row[j] = text + (size_t)j * 256;
            }
            rc = nb_table_row(&t, row);
        }
        rc = rc ? (nb_table_free(&t), rc) : nb_table_emit(&t, outputs);
    }
    free(header), free(row), free(text);
    cJSON_Delete(keys);
    return rc;
}

/* one chart: column of every run's log against epoch, a series per run */
static int overlaid(const compare_ctx *c, const char *column, const char *title, cJSON **outputs) {
    int epochs = 0;
    for (size_t r = 0; r < c->n; r++) {
        const cJSON *e;
        int i = 0;
        cJSON_ArrayForEach(e, c->runs[r].log) {
            double ep = epoch_of(e, i++);
            if (ep >= 1 && ep <= 1e6 && ep > epochs) epochs = (int)ep;
        }
    }
    if (!epochs) return 0;
    double *x = malloc((size_t)epochs * sizeof *x), *y = malloc((size_t)epochs * c->n * sizeof *y);
    int rc = x && y ? 0 : lathe_fail(LATHE_ENOMEM, "curves");
    for (int i = 0; !rc && i < epochs; i++) x[i] = i + 1;
    for (size_t i = 0; !rc && i < (size_t)epochs * c->n; i++) y[i] = NAN;
    for (size_t r = 0; !rc && r < c->n; r++) {
        const cJSON *e;
        int i = 0;
        cJSON_ArrayForEach(e, c->runs[r].log) {
            double ep = epoch_of(e, i++);
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(e, column);
            if (ep >= 1 && ep <= epochs && ep == floor(ep) && cJSON_IsNumber(v)) y[r * epochs + (size_t)ep - 1] = v->valuedouble;
        }
    }
    if (!rc) {
        lathe_plot_frame f = {title, "epoch", column, 0, 0};
        lathe_png png;
        rc = lathe_plot_lines(&f, x, (size_t)epochs, y, (int)c->n, c->names, &png);
        if (rc == -LATHE_EINVAL) rc = 0; /* no run logged the column */
        else if (!rc) rc = lathe_ipynb_add_png(outputs, &png, title), lathe_png_free(&png);
    }
    free(x), free(y);
    return rc;
}

static int spec_differences(const compare_ctx *c, cJSON **outputs) {
    settings *s = calloc(c->n, sizeof *s);
    settings all = {0};
    int rc = s ? 0 : lathe_fail(LATHE_ENOMEM, "spec differences");
    for (size_t r = 0; !rc && r < c->n; r++) {
        rc = flatten(c->runs[r].spec, "", &s[r]);
        if (!rc) qsort(s[r].items, s[r].n, sizeof *s[r].items, by_key);
        for (size_t i = 0; !rc && i < s[r].n; i++) rc = add_setting(&all, s[r].items[i].key, "");
    }
    if (!rc) qsort(all.items, all.n, sizeof *all.items, by_key);
    const char **header = malloc((c->n + 1) * sizeof *header), **row = malloc((c->n + 1) * sizeof *row);
    if (!rc && (!header || !row)) rc = lathe_fail(LATHE_ENOMEM, "spec differences");
    nb_table t;
    if (!rc) {
        header[0] = "";
        for (size_t r = 0; r < c->n; r++) header[r + 1] = c->names[r];
        nb_table_init(&t, (int)c->n + 1, header);
        for (size_t i = 0; !rc && i < all.n; i++) {
            const char *key = all.items[i].key;
            if (i && !strcmp(key, all.items[i - 1].key)) continue;
            int differ = 0;
            row[0] = key;
            for (size_t r = 0; r < c->n; r++) {
                row[r + 1] = lookup(&s[r], key);
                differ |= r && strcmp(row[r + 1], row[1]) != 0;
            }
            if (differ) rc = nb_table_row(&t, row);
        }
        rc = rc ? (nb_table_free(&t), rc) : nb_table_emit(&t, outputs);
    }
    for (size_t r = 0; s && r < c->n; r++) settings_free(&s[r]);
    settings_free(&all);
    free(s), free(header), free(row);
    return rc;
}

static int compare_cell(void *ctx, const char *name, cJSON **outputs) {
    const compare_ctx *c = ctx;
    if (!strcmp(name, "metrics")) return kept(metrics_side_by_side(c, outputs));
    if (!strcmp(name, "spec_diff")) return kept(spec_differences(c, outputs));
    if (!strcmp(name, "curves")) {
        char title[300];
        snprintf(title, sizeof title, "Validation %s", c->metric);
        int rc = overlaid(c, "loss", "Training loss", outputs);
        if (!rc) rc = overlaid(c, c->metric, title, outputs);
        return kept(rc);
    }
    return lathe_fail(LATHE_EINVAL, "notebook template compare: unknown cell %s", name);
}

int nb_build_compare(lathe_ipynb *nb, const nb_input *in, size_t n) {
    run_files *runs = calloc(n, sizeof *runs);
    const char **names = calloc(n, sizeof *names);
    char (*unique)[300] = calloc(n, sizeof *unique);
    cJSON *paths = cJSON_CreateObject();
    int rc = runs && names && unique && paths ? 0 : lathe_fail(LATHE_ENOMEM, "comparison");
    size_t loaded = 0;
    for (; !rc && loaded < n; loaded++)
        if ((rc = load_run(&in[loaded], &runs[loaded]))) break;
    for (size_t r = 0; !rc && r < n; r++) { /* names as the notebook's RUNS keys: unique */
        snprintf(unique[r], sizeof unique[r], "%s", in[r].name);
        for (int k = 2; cJSON_GetObjectItemCaseSensitive(paths, unique[r]); k++)
            snprintf(unique[r], sizeof unique[r], "%s (%d)", in[r].name, k);
        names[r] = unique[r];
        if (!cJSON_AddStringToObject(paths, names[r], in[r].ref)) rc = lathe_fail(LATHE_ENOMEM, "comparison");
    }
    const char *metric = "val_map";
    for (size_t r = 0, found = 0; !rc && r < n && !found; r++) {
        const cJSON *e, *v;
        cJSON_ArrayForEach(e, runs[r].log) cJSON_ArrayForEach(v, e) if (!found && is_validation(v->string)) {
            metric = v->string;
            found = 1;
        }
    }
    char *paths_json = rc ? NULL : cJSON_PrintUnformatted(paths), count[32], summary[8192] = "";
    if (!rc && !paths_json) rc = lathe_fail(LATHE_ENOMEM, "comparison");
    snprintf(count, sizeof count, "%zu", n);
    for (size_t r = 0; !rc && r < n; r++) {
        char task[300];
        snprintf(task, sizeof task, "%s, %d epochs", lathe_config_str(runs[r].spec, "task", "classify"),
                 cJSON_GetArraySize(runs[r].log));
        append(summary, sizeof summary, "- **%s**: ", names[r], "");
        append(summary, sizeof summary, "`%s` (%s)\n", in[r].ref, task);
    }
    if (!rc) {
        compare_ctx c = {runs, names, n, metric};
        nb_var vars[] = {{"count", count}, {"summary", summary}, {"runs", paths_json}, {"metric", metric}};
        rc = nb_template_emit(nb, "compare", vars, sizeof vars / sizeof *vars, compare_cell, &c);
    }
    for (size_t r = 0; runs && r < loaded && r < n; r++) run_files_free(&runs[r]);
    free(paths_json), free(runs), free(names), free(unique);
    cJSON_Delete(paths);
    return rc;
}
