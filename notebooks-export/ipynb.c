/* ipynb.c - the notebook writer (ipynb.h). nbformat 4.5: every cell has an id, sources and texts
 * are lists of lines, outputs of an unrun cell are display_data / stream (no execution count). */
#include "ipynb.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libcore/base/error.h"
#include "libcore/base/fsutil.h"
#include "libcore/eval/html.h"

struct lathe_ipynb {
    cJSON *root, *cells, *lathe_meta;
    int no_code, ncells, nattach;
};

/* text as nbformat's list of lines, each but the last ending in \n */
static cJSON *lines(const char *text) {
    cJSON *a = cJSON_CreateArray();
    for (const char *p = text; a && p && *p;) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) + 1 : strlen(p);
        char *line = strndup(p, n);
        cJSON *s = line ? cJSON_CreateString(line) : NULL;
        free(line);
        if (!s || !cJSON_AddItemToArray(a, s)) {
            cJSON_Delete(s);
            cJSON_Delete(a);
            return NULL;
        }
        p += n;
    }
    return a;
}

/* A malloc'ed string of what writer puts into a memory stream; NULL when out of memory. */
typedef void (*writer_fn)(FILE *f, const void *arg);
static char *written(writer_fn w, const void *arg) {
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) return NULL;
    w(f, arg);
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) {
        free(text);
        return NULL;
    }
    return text;
}

lathe_ipynb *lathe_ipynb_new(int no_code) {
    lathe_ipynb *nb = calloc(1, sizeof *nb);
    if (!nb) return NULL;
    nb->no_code = no_code;
    nb->root = cJSON_CreateObject();
    cJSON *meta = cJSON_AddObjectToObject(nb->root, "metadata");
    cJSON *kernel = meta ? cJSON_AddObjectToObject(meta, "kernelspec") : NULL;
    cJSON *lang = meta ? cJSON_AddObjectToObject(meta, "language_info") : NULL;
    nb->lathe_meta = meta ? cJSON_AddObjectToObject(meta, "lathe") : NULL;
    nb->cells = cJSON_AddArrayToObject(nb->root, "cells");
    int ok = kernel && lang && nb->lathe_meta && nb->cells && cJSON_AddStringToObject(kernel, "name", "python3") &&
             cJSON_AddStringToObject(kernel, "display_name", "Python 3") &&
             cJSON_AddStringToObject(kernel, "language", "python") && cJSON_AddStringToObject(lang, "name", "python") &&
             cJSON_AddNumberToObject(nb->root, "nbformat", 4) && cJSON_AddNumberToObject(nb->root, "nbformat_minor", 5);
    if (!ok) {
        lathe_ipynb_free(nb);
        return NULL;
    }
    return nb;
}

void lathe_ipynb_free(lathe_ipynb *nb) {
    if (!nb) return;
    cJSON_Delete(nb->root);
    free(nb);
}

int lathe_ipynb_set_meta(lathe_ipynb *nb, const char *key, cJSON *value) {
    if (!value || !cJSON_AddItemToObject(nb->lathe_meta, key, value)) {
        cJSON_Delete(value);
        return lathe_fail(LATHE_ENOMEM, "notebook metadata");
    }
    return 0;
}

/* A new cell of type with its id and source, appended; NULL when out of memory. */
static cJSON *new_cell(lathe_ipynb *nb, const char *type, const char *source) {
    char id[32];
    snprintf(id, sizeof id, "cell-%d", ++nb->ncells);
    cJSON *cell = cJSON_CreateObject(), *src = lines(source);
    int ok = cell && src && cJSON_AddStringToObject(cell, "cell_type", type) && cJSON_AddStringToObject(cell, "id", id) &&
             cJSON_AddObjectToObject(cell, "metadata") && cJSON_AddItemToObject(cell, "source", src);
    if (!ok || !cJSON_AddItemToArray(nb->cells, cell)) {
        if (!ok) cJSON_Delete(src);
        cJSON_Delete(cell);
        return NULL;
    }
    return cell;
}

int lathe_ipynb_markdown(lathe_ipynb *nb, const char *text) {
    return new_cell(nb, "markdown", text) ? 0 : lathe_fail(LATHE_ENOMEM, "notebook cell");
}

/* ---- outputs ---- */

static int add_output(cJSON **outputs, cJSON *o) {
    if (!*outputs) *outputs = cJSON_CreateArray();
    if (!o || !*outputs || !cJSON_AddItemToArray(*outputs, o)) {
        cJSON_Delete(o);
        return lathe_fail(LATHE_ENOMEM, "notebook output");
    }
    return 0;
}

int lathe_ipynb_add_text(cJSON **outputs, const char *text) {
    cJSON *o = cJSON_CreateObject(), *t = lines(text);
    int ok = o && t && cJSON_AddStringToObject(o, "output_type", "stream") && cJSON_AddStringToObject(o, "name", "stdout") &&
             cJSON_AddItemToObject(o, "text", t);
    if (!ok) {
        cJSON_Delete(t);
        cJSON_Delete(o);
        return lathe_fail(LATHE_ENOMEM, "notebook output");
    }
    return add_output(outputs, o);
}

/* display_data with data (taken over) */
static int add_display(cJSON **outputs, cJSON *data) {
    cJSON *o = cJSON_CreateObject();
    if (!o || !data || !cJSON_AddItemToObject(o, "data", data)) {
        cJSON_Delete(data);
        cJSON_Delete(o);
        return lathe_fail(LATHE_ENOMEM, "notebook output");
    }
    if (!cJSON_AddStringToObject(o, "output_type", "display_data") || !cJSON_AddObjectToObject(o, "metadata")) {
        cJSON_Delete(o);
        return lathe_fail(LATHE_ENOMEM, "notebook output");
    }
    return add_output(outputs, o);
}

typedef struct {
    const unsigned char *data;
    size_t len;
} bytes;

static void write_base64(FILE *f, const void *arg) {
    const bytes *b = arg;
    lathe_base64_write(f, b->data, b->len);
}

int lathe_ipynb_add_png(cJSON **outputs, const lathe_png *png, const char *title) {
    bytes b = {png->data, png->len};
    char *b64 = written(write_base64, &b), plain[512];
    snprintf(plain, sizeof plain, "<Figure: %s>", title ? title : "chart");
    cJSON *data = b64 ? cJSON_CreateObject() : NULL;
    int ok = data && cJSON_AddStringToObject(data, "image/png", b64) && cJSON_AddStringToObject(data, "text/plain", plain);
    free(b64);
    if (!ok) {
        cJSON_Delete(data);
        return lathe_fail(LATHE_ENOMEM, "notebook chart");
    }
    return add_display(outputs, data);
}

static void write_html_table(FILE *f, const void *arg) {
    const lathe_ipynb_table *t = arg;
    fputs("<table border=\"1\" class=\"dataframe\">\n  <thead>\n    <tr style=\"text-align: right;\">\n", f);
    for (int c = 0; c < t->cols; c++) {
        fputs("      <th>", f);
        lathe_html_escape(f, t->header[c]);
        fputs("</th>\n", f);
    }
    fputs("    </tr>\n  </thead>\n  <tbody>\n", f);
    for (int r = 0; r < t->rows; r++) {
        fputs("    <tr>\n", f);
        for (int c = 0; c < t->cols; c++) {
            fputs(c ? "      <td>" : "      <th>", f);
            lathe_html_escape(f, t->cells[(size_t)r * t->cols + c]);
            fputs(c ? "</td>\n" : "</th>\n", f);
        }
        fputs("    </tr>\n", f);
    }
    fputs("  </tbody>\n</table>", f);
}

/* Columns padded to their widest cell: the index left-aligned, values right-aligned (as pandas). */
static void write_plain_table(FILE *f, const void *arg) {
    const lathe_ipynb_table *t = arg;
    int *w = calloc((size_t)t->cols, sizeof *w);
    if (!w) return;
    for (int c = 0; c < t->cols; c++) {
        w[c] = (int)strlen(t->header[c]);
        for (int r = 0; r < t->rows; r++) {
            int n = (int)strlen(t->cells[(size_t)r * t->cols + c]);
            if (n > w[c]) w[c] = n;
        }
    }
    for (int r = -1; r < t->rows; r++) {
        for (int c = 0; c < t->cols; c++) {
            const char *s = r < 0 ? t->header[c] : t->cells[(size_t)r * t->cols + c];
            fprintf(f, c ? "  %*s" : "%-*s", w[c], s);
        }
        if (r + 1 < t->rows) fputc('\n', f);
    }
    free(w);
}

int lathe_ipynb_add_table(cJSON **outputs, const lathe_ipynb_table *t) {
    char *html = written(write_html_table, t), *plain = written(write_plain_table, t);
    cJSON *data = cJSON_CreateObject(), *h = html ? lines(html) : NULL, *p = plain ? lines(plain) : NULL;
    free(html), free(plain);
    int ok = data && h && p && cJSON_AddItemToObject(data, "text/html", h);
    if (ok) h = NULL, ok = cJSON_AddItemToObject(data, "text/plain", p);
    if (ok) p = NULL;
    cJSON_Delete(h), cJSON_Delete(p);
    if (!ok) {
        cJSON_Delete(data);
        return lathe_fail(LATHE_ENOMEM, "notebook table");
    }
    return add_display(outputs, data);
}

/* ---- code cells ---- */

static char *joined(const cJSON *list) {
    size_t n = 1;
    const cJSON *s;
    cJSON_ArrayForEach(s, list) n += cJSON_IsString(s) ? strlen(s->valuestring) : 0;
    char *out = malloc(n), *p = out;
    if (!out) return NULL;
    cJSON_ArrayForEach(s, list) if (cJSON_IsString(s)) p = stpcpy(p, s->valuestring);
    *p = '\0';
    return out;
}

/* The read-only form of a code cell: its outputs as one markdown cell (charts as attachments). */
static int outputs_as_markdown(lathe_ipynb *nb, const cJSON *outputs) {
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    cJSON *attachments = cJSON_CreateObject();
    int rc = f && attachments ? 0 : -LATHE_ENOMEM;
    const cJSON *o;
    cJSON_ArrayForEach(o, outputs) {
        const cJSON *data = cJSON_GetObjectItemCaseSensitive(o, "data");
        const cJSON *png = cJSON_GetObjectItemCaseSensitive(data, "image/png");
        const cJSON *html = cJSON_GetObjectItemCaseSensitive(data, "text/html");
        char *s = NULL;
        if (rc) break;
        if (cJSON_IsString(png)) {
            char name[32];
            snprintf(name, sizeof name, "chart%d.png", ++nb->nattach);
            cJSON *att = cJSON_AddObjectToObject(attachments, name);
            if (!att || !cJSON_AddStringToObject(att, "image/png", png->valuestring)) rc = -LATHE_ENOMEM;
            const cJSON *alt = cJSON_GetObjectItemCaseSensitive(data, "text/plain");
            fprintf(f, "![%s](attachment:%s)\n\n", cJSON_IsString(alt) ? alt->valuestring : "chart", name);
        } else if (html && (s = joined(html))) {
            fprintf(f, "%s\n\n", s);
        } else if ((s = joined(cJSON_GetObjectItemCaseSensitive(o, "text")))) {
            fprintf(f, "```text\n%s\n```\n\n", s);
        }
        free(s);
    }
    if (f && fclose(f) != 0 && !rc) rc = -LATHE_ENOMEM;
    cJSON *cell = !rc && len ? new_cell(nb, "markdown", text) : NULL;
    if (!rc && len && !cell) rc = -LATHE_ENOMEM;
    if (cell && cJSON_GetArraySize(attachments) && cJSON_AddItemToObject(cell, "attachments", attachments))
        attachments = NULL;
    cJSON_Delete(attachments);
    free(text);
    return rc ? lathe_fail(LATHE_ENOMEM, "notebook cell") : 0;
}

int lathe_ipynb_code(lathe_ipynb *nb, const char *source, cJSON *outputs) {
    int rc = 0;
    if (nb->no_code) {
        if (outputs) rc = outputs_as_markdown(nb, outputs);
        cJSON_Delete(outputs);
        return rc;
    }
    cJSON *cell = new_cell(nb, "code", source);
    if (!outputs) outputs = cJSON_CreateArray();
    if (!cell || !outputs || !cJSON_AddNullToObject(cell, "execution_count") ||
        !cJSON_AddItemToObject(cell, "outputs", outputs)) {
        cJSON_Delete(outputs);
        return lathe_fail(LATHE_ENOMEM, "notebook cell");
    }
    return 0;
}

int lathe_ipynb_save(const lathe_ipynb *nb, const char *path) {
    char *text = cJSON_PrintBuffered(nb->root, 1 << 20, 1);
    if (!text) return lathe_fail(LATHE_ENOMEM, "%s", path);
    size_t len = strlen(text);
    char *with_newline = realloc(text, len + 2);
    if (!with_newline) {
        free(text);
        return lathe_fail(LATHE_ENOMEM, "%s", path);
    }
    with_newline[len] = '\n';
    int rc = lathe_write_atomic(path, with_newline, len + 1);
    free(with_newline);
    return rc;
}
