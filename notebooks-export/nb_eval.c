/* nb_eval.c - the notebook of an evaluation folder (report.json): a detector's
 * (templates/eval_detect.py, with the charts report.html draws) or a classifier's and image-text
 * head's (templates/eval_classify.py); an anomaly head's is nb_anomaly.c's. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libcore/base/error.h"
#include "libcore/eval/det_report.h"
#include "libcore/eval/plot.h"
#include "nb_internal.h"

typedef struct {
    char *kind, *title;
    lathe_png png;
} chart;

typedef struct {
    const cJSON *report;
    chart *charts;
    size_t ncharts, cap;
} eval_ctx;

static int keep_chart(void *ctx, const char *kind, const char *title, const lathe_png *png) {
    eval_ctx *e = ctx;
    if (e->ncharts == e->cap) {
        size_t cap = e->cap ? 2 * e->cap : 8;
        chart *grown = realloc(e->charts, cap * sizeof *grown);
        if (!grown) return lathe_fail(LATHE_ENOMEM, "report charts");
        e->charts = grown, e->cap = cap;
    }
    chart *c = &e->charts[e->ncharts];
    c->kind = strdup(kind), c->title = strdup(title), c->png.data = malloc(png->len), c->png.len = png->len;
    if (!c->kind || !c->title || !c->png.data) {
        free(c->kind), free(c->title), free(c->png.data);
        return lathe_fail(LATHE_ENOMEM, "report charts");
    }
    memcpy(c->png.data, png->data, png->len);
    e->ncharts++;
    return 0;
}

static int has_charts(const eval_ctx *e, const char *kind) {
    for (size_t i = 0; i < e->ncharts; i++)
        if (!strcmp(e->charts[i].kind, kind)) return 1;
    return 0;
}

static int add_charts(const eval_ctx *e, const char *kind, cJSON **outputs) {
    int rc = 0;
    for (size_t i = 0; i < e->ncharts && !rc; i++)
        if (!strcmp(e->charts[i].kind, kind)) rc = lathe_ipynb_add_png(outputs, &e->charts[i].png, e->charts[i].title);
    return rc;
}

/* A table of the objects among obj's members (rows, index = their keys; members of another kind are
 * left out) with the members of the first as columns. */
static int rows_table(const cJSON *obj, cJSON **outputs) {
    const cJSON *first = obj ? obj->child : NULL, *v, *r;
    while (first && !cJSON_IsObject(first)) first = first->next;
    int k = 1 + cJSON_GetArraySize(first), rc = 0;
    const char **header = malloc((size_t)k * sizeof *header), **row = malloc((size_t)k * sizeof *row);
    char *text = malloc((size_t)k * 128);
    if (!header || !row || !text) rc = lathe_fail(LATHE_ENOMEM, "table");
    nb_table t;
    if (!rc) {
        int i = 1;
        header[0] = "";
        cJSON_ArrayForEach(v, first) header[i++] = v->string ? v->string : "";
        nb_table_init(&t, k, header);
        cJSON_ArrayForEach(r, obj) {
            if (!cJSON_IsObject(r)) continue;
            row[0] = r->string ? r->string : "";
            for (int j = 1; j < k; j++) nb_value_text(item(r, header[j]), text + (size_t)j * 128, 128), row[j] = text + (size_t)j * 128;
            if ((rc = nb_table_row(&t, row))) break;
        }
        rc = rc ? (nb_table_free(&t), rc) : nb_table_emit(&t, outputs);
    }
    free(header), free(row), free(text);
    return rc;
}

/* ---- a detector's report ---- */

static int detect_classes(const cJSON *report, cJSON **outputs) {
    static const char *const header[] = {"", "AP", "AP50", "best_f1_threshold", "f1", "precision", "recall"};
    static const char *const best_keys[] = {"threshold", "f1", "precision", "recall"};
    nb_table t;
    nb_table_init(&t, 7, header);
    const cJSON *c;
    int rc = 0;
    cJSON_ArrayForEach(c, item(report, "classes")) {
        char text[7][64];
        const char *row[7];
        row[0] = cJSON_IsString(item(c, "name")) ? item(c, "name")->valuestring : "?"; /* whole: not cut mid-character */
        nb_value_text(item(c, "AP"), text[1], 64);
        nb_value_text(item(c, "AP50"), text[2], 64);
        for (int k = 0; k < 4; k++) nb_value_text(item(item(c, "best_f1"), best_keys[k]), text[3 + k], 64);
        for (int k = 1; k < 7; k++) row[k] = text[k];
        if ((rc = nb_table_row(&t, row))) break;
    }
    return rc ? (nb_table_free(&t), rc) : nb_table_emit(&t, outputs);
}

static int class_ap_chart(const cJSON *report, cJSON **outputs) {
    const cJSON *classes = item(report, "classes");
    int n = cJSON_GetArraySize(classes), rc = 0;
    if (n < 1) return 0;
    const char **names = malloc((size_t)n * sizeof *names);
    double *v = malloc(2 * (size_t)n * sizeof *v);
    if (!names || !v) rc = lathe_fail(LATHE_ENOMEM, "AP chart");
    for (int i = 0; !rc && i < n; i++) {
        const cJSON *c = cJSON_GetArrayItem(classes, i);
        double ap = cJSON_IsNumber(item(c, "AP")) ? item(c, "AP")->valuedouble : 0;
        double ap50 = cJSON_IsNumber(item(c, "AP50")) ? item(c, "AP50")->valuedouble : 0;
        names[i] = cJSON_IsString(item(c, "name")) ? item(c, "name")->valuestring : "?";
        v[i] = ap > 0 ? ap : 0, v[n + i] = ap50 > 0 ? ap50 : 0;
    }
    if (!rc) {
        static const char *const series[] = {"AP", "AP50"};
        lathe_plot_frame f = {"AP per class", "class", "AP", 0, 0};
        lathe_png png;
        rc = lathe_plot_bars(&f, names, (size_t)n, v, 2, series, &png);
        if (!rc) rc = lathe_ipynb_add_png(outputs, &png, f.title), lathe_png_free(&png);
    }
    free(names), free(v);
    return rc;
}

static int matrix_table(const cJSON *labels, const cJSON *matrix, cJSON **outputs) {
    int k = cJSON_GetArraySize(labels), rc = 0;
    const char **header = malloc((size_t)(k + 1) * sizeof *header), **row = malloc((size_t)(k + 1) * sizeof *row);
    char *text = malloc((size_t)(k + 1) * 32);
    if (!header || !row || !text) rc = lathe_fail(LATHE_ENOMEM, "matrix");
    nb_table t;
    if (!rc) {
        header[0] = "";
        for (int i = 0; i < k; i++) {
            const cJSON *l = cJSON_GetArrayItem(labels, i);
            header[i + 1] = cJSON_IsString(l) ? l->valuestring : "?";
        }
        nb_table_init(&t, k + 1, header);
        for (int i = 0; !rc && i < k; i++) {
            row[0] = header[i + 1];
            for (int j = 0; j < k; j++)
                nb_value_text(cJSON_GetArrayItem(cJSON_GetArrayItem(matrix, i), j), text + (size_t)j * 32, 32), row[j + 1] = text + (size_t)j * 32;
            rc = nb_table_row(&t, row);
        }
        rc = rc ? (nb_table_free(&t), rc) : nb_table_emit(&t, outputs);
    }
    free(header), free(row), free(text);
    return rc;
}

static int detect_cell(void *ctx, const char *name, cJSON **outputs) {
    const eval_ctx *e = ctx;
    const cJSON *r = e->report, *level = item(r, "image_level"), *ov = item(r, "open_vocabulary");
    if (!strcmp(name, "metrics")) return kept(nb_object_table(item(r, "metrics"), outputs));
    if (!strcmp(name, "classes")) return kept(detect_classes(r, outputs));
    if (!strcmp(name, "class_ap")) return cJSON_GetArraySize(item(r, "classes")) > 0 ? kept(class_ap_chart(r, outputs)) : 0;
    if (!strcmp(name, "verdicts_title")) return cJSON_IsObject(level);
    if (!strcmp(name, "verdicts")) {
        if (!cJSON_IsObject(level)) return 0;
        char line[128];
        const cJSON *images = item(level, "images"), *acc = item(level, "accuracy");
        snprintf(line, sizeof line, "%.0f images judged, accuracy %.4f\n", cJSON_IsNumber(images) ? images->valuedouble : 0,
                 cJSON_IsNumber(acc) ? acc->valuedouble : NAN);
        int rc = lathe_ipynb_add_text(outputs, line);
        if (!rc) rc = matrix_table(item(level, "labels"), item(level, "matrix"), outputs);
        return kept(rc);
    }
    if (!strcmp(name, "open_vocabulary_title")) return cJSON_IsObject(ov);
    if (!strcmp(name, "open_vocabulary")) {
        if (!cJSON_IsObject(ov)) return 0;
        char line[1024] = "named only in text: ";
        const cJSON *c;
        size_t len = strlen(line);
        cJSON_ArrayForEach(c, item(ov, "novel_classes")) if (cJSON_IsString(c) && len < sizeof line)
            len += (size_t)snprintf(line + len, sizeof line - len, "%s%s", len > 20 ? ", " : "", c->valuestring);
        if (len < sizeof line) snprintf(line + len, sizeof line - len, "\n");
        int rc = lathe_ipynb_add_text(outputs, line);
        return kept(rc ? rc : rows_table(ov, outputs));
    }
    static const char *const chart_kinds[] = {"pr", "confusion", "training"};
    for (int k = 0; k < 3; k++) {
        char title[64];
        snprintf(title, sizeof title, "%s_title", chart_kinds[k]);
        if (!strcmp(name, title)) return has_charts(e, chart_kinds[k]);
        if (!strcmp(name, chart_kinds[k])) return has_charts(e, chart_kinds[k]) ? kept(add_charts(e, chart_kinds[k], outputs)) : 0;
    }
    return lathe_fail(LATHE_EINVAL, "notebook template eval_detect: unknown cell %s", name);
}

/* ---- a classifier's (or an image-text head's) report ---- */

/* Puts a copy of v (when there) into o as key; 0 when out of memory. */
static int add_copy(cJSON *o, const char *key, const cJSON *v) {
    if (!v) return 1;
    cJSON *copy = cJSON_Duplicate(v, 1);
    if (copy && cJSON_AddItemToObject(o, key, copy)) return 1;
    cJSON_Delete(copy);
    return 0;
}

static int classify_summary(const cJSON *r, cJSON **outputs) {
    cJSON *s = cJSON_CreateObject();
    const cJSON *v;
    int ok = s != NULL;
    if (ok) ok = add_copy(s, "samples", item(r, "samples")) && add_copy(s, "accuracy", item(r, "accuracy"));
    cJSON_ArrayForEach(v, item(r, "macro")) {
        char key[128];
        snprintf(key, sizeof key, "macro_%s", v->string ? v->string : "?");
        if (ok) ok = add_copy(s, key, v);
    }
    static const char *const extra[] = {"loss", "chance"};
    for (int k = 0; k < 2 && ok; k++) ok = add_copy(s, extra[k], item(r, extra[k]));
    int rc = ok ? nb_object_table(s, outputs) : lathe_fail(LATHE_ENOMEM, "summary");
    cJSON_Delete(s);
    return rc;
}

static int classify_classes(const cJSON *r, cJSON **outputs) {
    cJSON *rows = cJSON_CreateObject();
    const cJSON *c;
    int ok = rows != NULL;
    cJSON_ArrayForEach(c, item(r, "classes")) {
        cJSON *copy = ok ? cJSON_Duplicate(c, 1) : NULL;
        const cJSON *name = item(c, "name");
        if (copy) cJSON_DeleteItemFromObjectCaseSensitive(copy, "name");
        ok = copy && cJSON_AddItemToObject(rows, cJSON_IsString(name) ? name->valuestring : "?", copy);
        if (!ok) cJSON_Delete(copy);
    }
    int rc = ok ? rows_table(rows, outputs) : lathe_fail(LATHE_ENOMEM, "classes");
    cJSON_Delete(rows);
    return rc;
}

static int classify_confusion(const cJSON *r, cJSON **outputs) {
    const cJSON *classes = item(r, "classes"), *cm = item(r, "confusion");
    int k = cJSON_GetArraySize(classes), rc = 0;
    if (k < 1 || cJSON_GetArraySize(cm) != k) return 0;
    const char **names = malloc((size_t)k * sizeof *names);
    double *v = malloc((size_t)k * k * sizeof *v);
    if (!names || !v) rc = lathe_fail(LATHE_ENOMEM, "confusion matrix");
    for (int i = 0; !rc && i < k; i++) {
        const cJSON *name = item(cJSON_GetArrayItem(classes, i), "name");
        names[i] = cJSON_IsString(name) ? name->valuestring : "?";
        for (int j = 0; j < k; j++) {
            const cJSON *x = cJSON_GetArrayItem(cJSON_GetArrayItem(cm, i), j);
            v[(size_t)i * k + j] = cJSON_IsNumber(x) ? x->valuedouble : 0;
        }
    }
    if (!rc) { /* as classify.c draws it into report.html */
        lathe_plot_frame f = {"Confusion matrix (rows: true class, columns: predicted)", "predicted", "true", 640, 520};
        lathe_png png;
        rc = lathe_plot_heatmap(&f, v, k, k, names, names, &png);
        if (!rc) rc = lathe_ipynb_add_png(outputs, &png, f.title), lathe_png_free(&png);
    }
    free(names), free(v);
    return rc;
}

static int classify_cell(void *ctx, const char *name, cJSON **outputs) {
    const eval_ctx *e = ctx;
    const cJSON *r = e->report, *ret = item(r, "retrieval"), *ho = item(r, "holdout");
    int holdout = cJSON_GetArraySize(item(ho, "classes")) > 0;
    if (!strcmp(name, "metrics")) return kept(classify_summary(r, outputs));
    if (!strcmp(name, "classes")) return kept(classify_classes(r, outputs));
    if (!strcmp(name, "confusion")) return kept(classify_confusion(r, outputs));
    if (!strcmp(name, "retrieval_title")) return cJSON_IsObject(ret);
    if (!strcmp(name, "retrieval")) return cJSON_IsObject(ret) ? kept(rows_table(ret, outputs)) : 0;
    if (!strcmp(name, "holdout_title")) return holdout;
    if (!strcmp(name, "holdout")) return holdout ? kept(nb_object_table(ho, outputs)) : 0;
    return lathe_fail(LATHE_EINVAL, "notebook template eval_classify: unknown cell %s", name);
}

static void line(char *buf, size_t cap, const char *label, const cJSON *v) {
    char text[256];
    size_t len = strlen(buf);
    if (!v || len >= cap) return;
    nb_value_text(v, text, sizeof text);
    snprintf(buf + len, cap - len, "- **%s**: %s\n", label, text);
}

int nb_build_eval(lathe_ipynb *nb, const nb_input *in, const char *dir, const char *ref, const char *title) {
    (void)in;
    cJSON *r;
    int rc = nb_load_json(dir, "report.json", &r);
    if (rc) return rc;
    int detector = cJSON_IsObject(item(r, "metrics")), classifier = cJSON_IsNumber(item(r, "accuracy"));
    const cJSON *task = item(r, "task");
    int anomaly = cJSON_IsString(task) && !strcmp(task->valuestring, "anomaly") && cJSON_IsNumber(item(r, "images"));
    if (!cJSON_IsObject(r) || (!detector && !classifier && !anomaly)) {
        cJSON_Delete(r);
        return lathe_fail(LATHE_EFORMAT, "%s/report.json is not a report lathe eval writes (no detector metrics, no "
                                         "accuracy, not an anomaly report)", dir);
    }
    if (anomaly) {
        char summary[2048] = "";
        static const char *const keys[] = {"method", "images", "image_auroc", "pixel_auroc", "pro", "split", "checkpoint"};
        for (int k = 0; k < 7; k++) line(summary, sizeof summary, keys[k], item(r, keys[k]));
        size_t len = strlen(summary);
        if (len < sizeof summary) snprintf(summary + len, sizeof summary - len, "- **folder**: `%s`\n", ref);
        rc = nb_build_eval_anomaly(nb, r, dir, ref, title, summary);
        cJSON_Delete(r);
        return rc;
    }
    eval_ctx e = {r, NULL, 0, 0};
    char summary[4096] = "";
    if (detector) {
        rc = lathe_det_report_charts(r, keep_chart, &e);
        static const char *const keys[] = {"images", "ground_truth", "detections", "split", "checkpoint"};
        for (int k = 0; k < 5; k++) line(summary, sizeof summary, keys[k], item(r, keys[k]));
        line(summary, sizeof summary, "AP (IoU 0.50:0.95)", item(item(r, "metrics"), "AP"));
        line(summary, sizeof summary, "AP50", item(item(r, "metrics"), "AP50"));
        line(summary, sizeof summary, "image-level accuracy", item(item(r, "image_level"), "accuracy"));
    } else {
        static const char *const keys[] = {"task", "samples", "accuracy", "chance", "split", "checkpoint"};
        for (int k = 0; k < 6; k++) line(summary, sizeof summary, keys[k], item(r, keys[k]));
    }
    size_t len = strlen(summary);
    if (len < sizeof summary) snprintf(summary + len, sizeof summary - len, "- **folder**: `%s`\n", ref);
    nb_var vars[] = {{"name", title}, {"summary", summary}, {"path", ref}};
    if (!rc)
        rc = nb_template_emit(nb, detector ? "eval_detect" : "eval_classify", vars, sizeof vars / sizeof *vars,
                              detector ? detect_cell : classify_cell, &e);
    for (size_t i = 0; i < e.ncharts; i++) free(e.charts[i].kind), free(e.charts[i].title), free(e.charts[i].png.data);
    free(e.charts);
    cJSON_Delete(r);
    return rc;
}
