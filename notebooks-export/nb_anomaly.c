/* nb_anomaly.c - the notebook of an anomaly head's evaluation folder (report.json with task
 * anomaly, templates/eval_anomaly.py): its metrics, the per-class table and the drawn maps. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libcore/base/error.h"
#include "libcore/base/fsutil.h"
#include "libcore/eval/plot.h"
#include "nb_internal.h"

typedef struct {
    const cJSON *report;
    const char *dir;
} anomaly_ctx;


/* The summary the template's metrics cell prints: the headline keys, then best_f1_* and run_threshold_*. */
static int summary_table(const cJSON *r, cJSON **outputs) {
    cJSON *s = cJSON_CreateObject();
    int ok = s != NULL;
    static const char *const keys[] = {"images", "good", "defective", "image_auroc", "pixel_auroc", "pro"};
    for (int k = 0; ok && k < 6; k++) {
        cJSON *v = cJSON_Duplicate(item(r, keys[k]), 1);
        ok = v && cJSON_AddItemToObject(s, keys[k], v);
    }
    static const char *const groups[] = {"best_f1", "run_threshold"};
    for (int g = 0; ok && g < 2; g++) {
        const cJSON *v;
        cJSON_ArrayForEach(v, item(r, groups[g])) {
            char key[128];
            snprintf(key, sizeof key, "%s_%s", groups[g], v->string ? v->string : "?");
            cJSON *copy = cJSON_Duplicate(v, 1);
            if (!(ok = copy && cJSON_AddItemToObject(s, key, copy))) break;
        }
    }
    int rc = ok ? nb_object_table(s, outputs) : lathe_fail(LATHE_ENOMEM, "summary");
    cJSON_Delete(s);
    return rc;
}

static int class_table(const cJSON *r, cJSON **outputs) {
    static const char *const header[] = {"name", "images", "image_auroc"};
    nb_table t;
    nb_table_init(&t, 3, header);
    const cJSON *c;
    int rc = 0;
    cJSON_ArrayForEach(c, item(r, "classes")) {
        char images[32], auroc[64];
        nb_value_text(item(c, "images"), images, sizeof images);
        nb_value_text(item(c, "image_auroc"), auroc, sizeof auroc);
        const cJSON *name = item(c, "name");
        const char *cells[] = {cJSON_IsString(name) ? name->valuestring : "?", images, auroc};
        if ((rc = nb_table_row(&t, cells))) break;
    }
    if (!rc) rc = nb_table_emit(&t, outputs);
    nb_table_free(&t);
    return rc;
}

/* Each drawn map as the cell prints and shows it. A map file that is gone is said in its place. */
static int maps(const anomaly_ctx *a, cJSON **outputs) {
    const cJSON *m;
    int rc = 0;
    cJSON_ArrayForEach(m, item(a->report, "maps")) {
        const cJSON *file = item(m, "file"), *why = item(m, "why"), *sample = item(m, "sample");
        if (!cJSON_IsString(file) || strstr(file->valuestring, "..")) continue; /* only files inside the folder */
        char line[256], path[4400];
        snprintf(line, sizeof line, "%s: sample %.0f\n", cJSON_IsString(why) ? why->valuestring : "?",
                 cJSON_IsNumber(sample) ? sample->valuedouble : -1);
        if ((rc = lathe_ipynb_add_text(outputs, line))) break;
        snprintf(path, sizeof path, "%s/%s", a->dir, file->valuestring);
        char *data = NULL;
        size_t len = 0;
        if (lathe_read_file(path, 64u << 20, &data, &len)) {
            lathe_clear_error();
            snprintf(line, sizeof line, "(%s is missing)\n", file->valuestring);
            rc = lathe_ipynb_add_text(outputs, line);
        } else {
            lathe_png png = {(unsigned char *)data, len};
            rc = lathe_ipynb_add_png(outputs, &png, file->valuestring);
        }
        free(data);
        if (rc) break;
    }
    return rc;
}

static int anomaly_cell(void *ctx, const char *name, cJSON **outputs) {
    const anomaly_ctx *a = ctx;
    if (!strcmp(name, "metrics")) return kept(summary_table(a->report, outputs));
    if (!strcmp(name, "classes")) return kept(class_table(a->report, outputs));
    if (!strcmp(name, "maps")) return kept(maps(a, outputs));
    return lathe_fail(LATHE_EINVAL, "notebook template eval_anomaly: unknown cell %s", name);
}

int nb_build_eval_anomaly(lathe_ipynb *nb, const cJSON *r, const char *dir, const char *ref, const char *title,
                          const char *summary) {
    anomaly_ctx a = {r, dir};
    nb_var vars[] = {{"name", title}, {"summary", summary}, {"path", ref}};
    return nb_template_emit(nb, "eval_anomaly", vars, sizeof vars / sizeof *vars, anomaly_cell, &a);
}
