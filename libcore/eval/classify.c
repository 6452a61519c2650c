/* classify.c - classification metrics and their report (classify.h). */
#include "classify.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "html.h"
#include "libcore/base/config.h"
#include "libcore/base/error.h"
#include "libcore/base/fsutil.h"
#include "plot.h"

cJSON *lathe_classify_report(const uint64_t *cm, int k, const char *const *names, double loss) {
    cJSON *r = cJSON_CreateObject();
    uint64_t total = 0, right = 0;
    for (int i = 0; i < k; i++)
        for (int j = 0; j < k; j++) total += cm[i * k + j], right += i == j ? cm[i * k + j] : 0;
    cJSON_AddNumberToObject(r, "samples", (double)total);
    cJSON_AddNumberToObject(r, "accuracy", total ? (double)right / total : 0);
    if (isfinite(loss)) cJSON_AddNumberToObject(r, "loss", loss);
    cJSON *classes = cJSON_AddArrayToObject(r, "classes");
    double mp = 0, mr = 0, mf = 0;
    int present = 0;
    for (int i = 0; i < k; i++) {
        uint64_t tp = cm[i * k + i], row = 0, col = 0;
        for (int j = 0; j < k; j++) row += cm[i * k + j], col += cm[j * k + i];
        double p = col ? (double)tp / col : 0, rc = row ? (double)tp / row : 0, f = p + rc > 0 ? 2 * p * rc / (p + rc) : 0;
        cJSON *c = cJSON_CreateObject();
        cJSON_AddStringToObject(c, "name", names[i]);
        cJSON_AddNumberToObject(c, "precision", p);
        cJSON_AddNumberToObject(c, "recall", rc);
        cJSON_AddNumberToObject(c, "f1", f);
        cJSON_AddNumberToObject(c, "support", (double)row);
        cJSON_AddItemToArray(classes, c);
        if (row) mp += p, mr += rc, mf += f, present++;
    }
    cJSON *macro = cJSON_AddObjectToObject(r, "macro");
    cJSON_AddNumberToObject(macro, "precision", present ? mp / present : 0);
    cJSON_AddNumberToObject(macro, "recall", present ? mr / present : 0);
    cJSON_AddNumberToObject(macro, "f1", present ? mf / present : 0);
    cJSON *m = cJSON_AddArrayToObject(r, "confusion");
    for (int i = 0; i < k; i++) {
        cJSON *row = cJSON_CreateArray();
        for (int j = 0; j < k; j++) cJSON_AddItemToArray(row, cJSON_CreateNumber((double)cm[i * k + j]));
        cJSON_AddItemToArray(m, row);
    }
    return r;
}

int lathe_classify_write(const cJSON *r, const char *title, const char *dir) {
    char path[4200];
    snprintf(path, sizeof path, "%s/report.json", dir);
    int rc = lathe_mkdirs(dir);
    if (!rc) rc = lathe_json_save(path, r);
    if (rc) return rc;
    const cJSON *classes = cJSON_GetObjectItemCaseSensitive(r, "classes"), *cm = cJSON_GetObjectItemCaseSensitive(r, "confusion");
    int k = cJSON_GetArraySize(classes);
    snprintf(path, sizeof path, "%s/report.html.tmp", dir);
    FILE *f = fopen(path, "w");
    if (!f) return lathe_fail(LATHE_EIO, "cannot write %s", path);
    fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>", f);
    lathe_html_escape(f, title);
    fputs("</title><style>body{font-family:sans-serif;max-width:900px;margin:2em auto}table{border-collapse:collapse}"
          "td,th{border:1px solid #ccc;padding:3px 8px}</style></head><body>\n<h1>", f);
    lathe_html_escape(f, title);
    fprintf(f, "</h1>\n<p>%.0f samples, accuracy %.4f, macro F1 %.4f</p>\n<table><tr><th>class</th><th>precision</th>"
               "<th>recall</th><th>F1</th><th>support</th></tr>\n",
            cJSON_GetObjectItemCaseSensitive(r, "samples")->valuedouble,
            cJSON_GetObjectItemCaseSensitive(r, "accuracy")->valuedouble,
            cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(r, "macro"), "f1")->valuedouble);
    const char **names = calloc((size_t)(k ? k : 1), sizeof *names);
    double *v = calloc((size_t)(k ? k * k : 1), sizeof *v);
    int i = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, classes) {
        fputs("<tr><td>", f);
        lathe_html_escape(f, cJSON_GetObjectItemCaseSensitive(c, "name")->valuestring);
        fprintf(f, "</td><td>%.4f</td><td>%.4f</td><td>%.4f</td><td>%.0f</td></tr>\n",
                cJSON_GetObjectItemCaseSensitive(c, "precision")->valuedouble,
                cJSON_GetObjectItemCaseSensitive(c, "recall")->valuedouble,
                cJSON_GetObjectItemCaseSensitive(c, "f1")->valuedouble,
                cJSON_GetObjectItemCaseSensitive(c, "support")->valuedouble);
        if (names) names[i] = cJSON_GetObjectItemCaseSensitive(c, "name")->valuestring;
        for (int j = 0; v && j < k; j++) v[i * k + j] = cJSON_GetArrayItem(cJSON_GetArrayItem(cm, i), j)->valuedouble;
        i++;
    }
    fputs("</table>\n", f);
    lathe_png png;
    lathe_plot_frame fr = {"Confusion matrix (rows: true class, columns: predicted)", "predicted", "true", 640, 520};
    if (names && v && k > 0 && lathe_plot_heatmap(&fr, v, k, k, names, names, &png) == 0) {
        lathe_html_png(f, png.data, png.len, fr.title);
        lathe_png_free(&png);
    }
    free(names), free(v);
    const cJSON *ab = cJSON_GetObjectItemCaseSensitive(r, "ablation"), *row;
    if (cJSON_IsObject(ab)) { /* a fusion head's: each input alone and both (docs/MULTIMODAL.md) */
        fputs("<h2>Ablation</h2>\n<table><tr><th>inputs</th><th>how</th><th>accuracy</th><th>mAP</th>"
              "<th>separately trained run</th></tr>\n", f);
        cJSON_ArrayForEach(row, ab) {
            const cJSON *b = cJSON_GetObjectItemCaseSensitive(row, "baseline");
            fputs("<tr><td>", f), lathe_html_escape(f, row->string ? row->string : "?"), fputs("</td><td>", f);
            lathe_html_escape(f, lathe_config_str(row, "how", ""));
            fprintf(f, "</td><td>%.4f</td><td>%.4f</td><td>", lathe_config_num(row, "accuracy", 0), lathe_config_num(row, "map", 0));
            if (cJSON_IsObject(b)) {
                lathe_html_escape(f, lathe_config_str(b, "run", ""));
                fprintf(f, ": accuracy %.4f, mAP %.4f", lathe_config_num(b, "accuracy", 0), lathe_config_num(b, "map", 0));
            }
            fputs("</td></tr>\n", f);
        }
        fputs("</table>\n", f);
    }
    fputs("</body></html>\n", f);
    int bad = ferror(f) | (fclose(f) != 0);
    char final[4200];
    snprintf(final, sizeof final, "%s/report.html", dir);
    return bad ? lathe_fail(LATHE_EIO, "writing %s", path) : lathe_rename_durable(path, final);
}
