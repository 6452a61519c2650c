/* nb_common.c - files and tables the notebook builders share (nb_internal.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "libcore/base/config.h"
#include "libcore/base/error.h"
#include "libcore/base/utf8.h"
#include "nb_internal.h"

enum { MAX_JSON = 1 << 30 }; /* report.json of a large evaluation holds every PR curve: generous */

int nb_exists(const char *dir, const char *file) {
    char path[4200];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", dir, file);
    return stat(path, &st) == 0;
}

int nb_load_json(const char *dir, const char *file, cJSON **out) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    *out = NULL;
    if (!nb_exists(dir, file)) return lathe_fail(LATHE_ENOTFOUND, "%s is missing", path);
    int rc = lathe_json_load(path, MAX_JSON, out);
    if (rc == -LATHE_EFORMAT) return lathe_fail(LATHE_EFORMAT, "%s is not valid JSON (corrupt or cut short)", path);
    return rc;
}

void nb_table_init(nb_table *t, int cols, const char *const *header) {
    memset(t, 0, sizeof *t);
    t->cols = cols;
    t->header = header;
}

int nb_table_row(nb_table *t, const char *const *cells) {
    if ((t->rows + 1) * t->cols > t->cap) {
        int cap = t->cap ? 2 * t->cap : 16 * t->cols;
        char **grown = realloc(t->cells, (size_t)cap * sizeof *grown);
        if (!grown) return lathe_fail(LATHE_ENOMEM, "notebook table");
        t->cells = grown, t->cap = cap;
    }
    for (int c = 0; c < t->cols; c++) {
        char *s = strdup(cells[c] ? cells[c] : "");
        if (!s) {
            while (c--) free(t->cells[(size_t)t->rows * t->cols + c]);
            return lathe_fail(LATHE_ENOMEM, "notebook table");
        }
        t->cells[(size_t)t->rows * t->cols + c] = s;
    }
    t->rows++;
    return 0;
}

void nb_table_free(nb_table *t) {
    for (int i = 0; i < t->rows * t->cols; i++) free(t->cells[i]);
    free(t->cells);
    t->cells = NULL, t->rows = t->cap = 0;
}

int nb_table_emit(nb_table *t, cJSON **outputs) {
    lathe_ipynb_table view = {t->rows, t->cols, t->header, t->cells};
    int rc = lathe_ipynb_add_table(outputs, &view);
    nb_table_free(t);
    return rc;
}

/* s into buf, cut (when it must be) before a UTF-8 character rather than inside one: a notebook
 * with half a character in it is no UTF-8, and Jupyter cannot open it */
static void copy_text(char *buf, size_t cap, const char *s) {
    size_t n = lathe_utf8_cut(s, strlen(s), cap);
    memcpy(buf, s, n);
    buf[n] = 0;
}

void nb_value_text(const cJSON *v, char *buf, size_t cap) {
    if (cJSON_IsNumber(v)) {
        double x = v->valuedouble;
        if (isfinite(x) && x == floor(x) && fabs(x) < 1e15) snprintf(buf, cap, "%.0f", x);
        else snprintf(buf, cap, "%.6g", x);
    } else if (!v || cJSON_IsNull(v)) {
        snprintf(buf, cap, "NaN");
    } else if (cJSON_IsString(v)) {
        copy_text(buf, cap, v->valuestring);
    } else if (cJSON_IsBool(v)) {
        snprintf(buf, cap, "%s", cJSON_IsTrue(v) ? "True" : "False");
    } else {
        char *s = cJSON_PrintUnformatted(v);
        copy_text(buf, cap, s ? s : "");
        free(s);
    }
}

int nb_object_table(const cJSON *obj, cJSON **outputs) {
    static const char *const header[] = {"", "value"};
    nb_table t;
    nb_table_init(&t, 2, header);
    const cJSON *v;
    char text[1024], index[16];
    int rc = 0, i = 0;
    cJSON_ArrayForEach(v, obj) {
        nb_value_text(v, text, sizeof text);
        snprintf(index, sizeof index, "%d", i++); /* the members of a list are named by position */
        const char *row[2] = {v->string ? v->string : index, text};
        if ((rc = nb_table_row(&t, row))) break;
    }
    if (rc) {
        nb_table_free(&t);
        return rc;
    }
    return nb_table_emit(&t, outputs);
}
