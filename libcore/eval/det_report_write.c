/* det_report_write.c - the detection report's files (det_report.h): report.json as it is, and the
 * same tables written once for both report.html (with charts and sample images inlined) and
 * report.md. Sections whose keys the report lacks are left out, so a report made by
 * lathe_coco_report alone still writes. */
#include "det_report.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "html.h"
#include "libcore/base/config.h"
#include "libcore/base/error.h"
#include "libcore/base/fsutil.h"

enum { CURVES_PER_CHART = 8 };

typedef struct {
    FILE *f;
    int md;                  /* 1: Markdown, 0: HTML */
    lathe_det_chart_fn sink; /* when set, charts go here instead of into the HTML */
    void *ctx;
} doc;

static const cJSON *item(const cJSON *o, const char *key) { return cJSON_GetObjectItemCaseSensitive(o, key); }

static double number(const cJSON *o, const char *key) {
    const cJSON *v = item(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static const char *string(const cJSON *o, const char *key) {
    const cJSON *v = item(o, key);
    return cJSON_IsString(v) ? v->valuestring : "";
}

/* a metric with 4 decimals; "n/a" for what is undefined (-1 in the COCO stats, null, absent) */
static const char *metric_text(char *buf, size_t cap, double v) {
    if (!isfinite(v) || v < 0) return "n/a";
    snprintf(buf, cap, "%.4f", v);
    return buf;
}

/* ---- document pieces, HTML or Markdown ---- */

static void heading(doc *o, const char *s) {
    fputs(o->md ? "## " : "<h2>", o->f);
    o->md ? lathe_md_cell(o->f, s) : lathe_html_escape(o->f, s);
    fputs(o->md ? "\n\n" : "</h2>\n", o->f);
}

static void paragraph(doc *o, const char *s) {
    fputs(o->md ? "" : "<p>", o->f);
    o->md ? lathe_md_cell(o->f, s) : lathe_html_escape(o->f, s);
    fputs(o->md ? "\n\n" : "</p>\n", o->f);
}

static void table_begin(doc *o) {
    if (!o->md) fputs("<table>\n", o->f);
}

static void table_end(doc *o) { fputs(o->md ? "\n" : "</table>\n", o->f); }

static void table_row(doc *o, const char *const *cells, int n, int header) {
    fputs(o->md ? "|" : "<tr>", o->f);
    for (int i = 0; i < n; i++) {
        if (o->md) {
            fputc(' ', o->f);
            lathe_md_cell(o->f, cells[i]);
            fputs(" |", o->f);
        } else {
            fputs(header ? "<th>" : "<td>", o->f);
            lathe_html_escape(o->f, cells[i]);
            fputs(header ? "</th>" : "</td>", o->f);
        }
    }
    fputs(o->md ? "\n" : "</tr>\n", o->f);
    for (int i = 0; o->md && header && i <= n; i++) fputs(i < n ? "| --- " : "|\n", o->f);
}

/* ---- tables ---- */

static void summary(doc *o, const cJSON *r) {
    double images = number(r, "images"), gt = number(r, "ground_truth"), dt = number(r, "detections");
    if (isnan(images) || isnan(gt) || isnan(dt)) return;
    char s[160];
    snprintf(s, sizeof s, "%.0f images, %.0f ground-truth boxes, %.0f detections.", images, gt, dt);
    paragraph(o, s);
}

static void metrics_table(doc *o, const cJSON *r) {
    const cJSON *m = item(r, "metrics"), *v;
    if (!cJSON_IsObject(m)) return;
    heading(o, "COCO metrics");
    table_begin(o);
    table_row(o, (const char *const[]){"metric", "value"}, 2, 1);
    char buf[32];
    cJSON_ArrayForEach(v, m) {
        if (!cJSON_IsNumber(v)) continue;
        table_row(o, (const char *const[]){v->string, metric_text(buf, sizeof buf, v->valuedouble)}, 2, 0);
    }
    table_end(o);
}

/* The image-level verdicts (lathe_det_report_verdicts): accuracy, then the matrix as a table. */
static void verdicts_table(doc *o, const cJSON *r) {
    const cJSON *v = item(r, "image_level"), *labels = item(v, "labels"), *matrix = item(v, "matrix");
    int L = cJSON_GetArraySize(labels);
    if (!cJSON_IsObject(v) || !cJSON_IsArray(labels) || !cJSON_IsArray(matrix) || cJSON_GetArraySize(matrix) != L || L < 1)
        return;
    heading(o, "Image-level verdicts");
    char s[512];
    snprintf(s, sizeof s, "Accuracy %.4f on %.0f images (%.4f naming the image's own label). An image's verdict is "
             "the class of its best detection scoring at least %g, else %s; it is right when it is the image's label "
             "or the class of one of its boxes. Rows are the images' own labels, columns the verdicts.",
             number(v, "accuracy"), number(v, "images"), number(v, "label_accuracy"), number(v, "score_threshold"),
             string(v, "good_class"));
    paragraph(o, s);
    const char **cells = malloc(((size_t)L + 1) * sizeof *cells);
    char(*num)[24] = malloc((size_t)L * sizeof *num);
    if (!cells || !num) {
        free(cells), free(num);
        return;
    }
    table_begin(o);
    cells[0] = "label \\ verdict";
    for (int k = 0; k < L; k++) cells[k + 1] = cJSON_IsString(cJSON_GetArrayItem(labels, k)) ? cJSON_GetArrayItem(labels, k)->valuestring : "";
    table_row(o, cells, L + 1, 1);
    for (int row = 0; row < L; row++) {
        const cJSON *line = cJSON_GetArrayItem(matrix, row);
        cells[0] = cJSON_GetArrayItem(labels, row)->valuestring ? cJSON_GetArrayItem(labels, row)->valuestring : "";
        for (int k = 0; k < L; k++) {
            const cJSON *c = cJSON_GetArrayItem(line, k);
            snprintf(num[k], sizeof num[k], "%.0f", cJSON_IsNumber(c) ? c->valuedouble : 0);
            cells[k + 1] = num[k];
        }
        table_row(o, cells, L + 1, 0);
    }
    table_end(o);
    free(cells), free(num);
}

static void classes_table(doc *o, const cJSON *r) {
    const cJSON *classes = item(r, "classes"), *c;
    if (!cJSON_IsArray(classes) || !cJSON_GetArraySize(classes)) return;
    heading(o, "Per class");
    table_begin(o);
    table_row(o, (const char *const[]){"class", "AP", "AP50", "best F1", "at score", "precision", "recall"}, 7, 1);
    char b[6][32];
    cJSON_ArrayForEach(c, classes) {
        const cJSON *f = item(c, "best_f1");
        const char *cells[7] = {string(c, "name"),
                                metric_text(b[0], 32, number(c, "AP")),
                                metric_text(b[1], 32, number(c, "AP50")),
                                metric_text(b[2], 32, number(f, "f1")),
                                metric_text(b[3], 32, number(f, "threshold")),
                                metric_text(b[4], 32, number(f, "precision")),
                                metric_text(b[5], 32, number(f, "recall"))};
        table_row(o, cells, 7, 0);
    }
    table_end(o);
    paragraph(o, "AP: IoU 0.50:0.95; best F1: at the score threshold with the highest F1, matching at IoU 0.5.");
}

/* The confusion matrix's labels and cells when they are well formed: (L) and (L, L). */
static int confusion_parts(const cJSON *r, const char ***labels, double **cells) {
    const cJSON *cm = item(r, "confusion"), *names = item(cm, "labels"), *matrix = item(cm, "matrix");
    int L = cJSON_GetArraySize(names);
    *labels = NULL, *cells = NULL;
    if (!cJSON_IsArray(names) || !cJSON_IsArray(matrix) || L < 1 || cJSON_GetArraySize(matrix) != L) return 0;
    *labels = malloc((size_t)L * sizeof **labels);
    *cells = malloc((size_t)L * L * sizeof **cells);
    int ok = *labels && *cells;
    for (int i = 0; ok && i < L; i++) {
        const cJSON *name = cJSON_GetArrayItem(names, i), *row = cJSON_GetArrayItem(matrix, i);
        ok = cJSON_IsString(name) && cJSON_IsArray(row) && cJSON_GetArraySize(row) == L;
        if (ok) (*labels)[i] = name->valuestring;
        for (int j = 0; ok && j < L; j++) {
            const cJSON *v = cJSON_GetArrayItem(row, j);
            ok = cJSON_IsNumber(v);
            if (ok) (*cells)[(size_t)i * L + j] = v->valuedouble;
        }
    }
    if (!ok) free(*labels), free(*cells), *labels = NULL, *cells = NULL;
    return ok ? L : 0;
}

static void confusion_caption(doc *o, const cJSON *r) {
    const cJSON *cm = item(r, "confusion");
    char s[320];
    snprintf(s, sizeof s, "Detections scoring at least %g, matched at IoU >= %g whatever their class. Rows: true "
             "class, columns: predicted class; the background row counts false positives, the background column "
             "missed ground truth.", number(cm, "score_threshold"), number(cm, "iou"));
    paragraph(o, s);
}

static void confusion_table(doc *o, const cJSON *r, const char **labels, const double *cells, int L) {
    const char **row = malloc(((size_t)L + 1) * sizeof *row);
    char(*buf)[24] = malloc((size_t)L * sizeof *buf);
    if (!row || !buf) { /* a Markdown nicety only: the matrix is in report.json */
        free(row), free(buf);
        return;
    }
    heading(o, "Confusion matrix");
    confusion_caption(o, r);
    table_begin(o);
    row[0] = "true \\ predicted";
    for (int j = 0; j < L; j++) row[j + 1] = labels[j];
    table_row(o, row, L + 1, 1);
    for (int i = 0; i < L; i++) {
        row[0] = labels[i];
        for (int j = 0; j < L; j++) {
            snprintf(buf[j], sizeof buf[j], "%.0f", cells[(size_t)i * L + j]);
            row[j + 1] = buf[j];
        }
        table_row(o, row, L + 1, 0);
    }
    table_end(o);
    free(row), free(buf);
}

/* ---- charts (HTML) ---- */

static int chart(doc *o, int rc, lathe_png *png, const char *kind, const char *alt) {
    if (rc) return rc;
    if (o->sink) {
        rc = o->sink(o->ctx, kind, alt, png);
        lathe_png_free(png);
        return rc;
    }
    fputs("<p>", o->f);
    lathe_html_png(o->f, png->data, png->len, alt);
    fputs("</p>\n", o->f);
    lathe_png_free(png);
    return 0;
}

/* Classes with a precision-recall curve (any defined point), CURVES_PER_CHART to a chart. */
static int pr_charts(doc *o, const cJSON *r) {
    const cJSON *classes = item(r, "classes");
    int K = cJSON_GetArraySize(classes), rc = 0, nseries = 0, charts = 0;
    double x[LATHE_COCO_R], *y = malloc(CURVES_PER_CHART * LATHE_COCO_R * sizeof *y);
    const char *names[CURVES_PER_CHART];
    if (!y) return lathe_fail(LATHE_ENOMEM, "precision-recall curves");
    for (int i = 0; i < LATHE_COCO_R; i++) x[i] = i / (double)(LATHE_COCO_R - 1);
    for (int k = 0; k <= K && !rc; k++) {
        const cJSON *c = cJSON_GetArrayItem(classes, k), *curve = item(c, "pr_curve_iou50");
        int defined = 0;
        for (int i = 0; k < K && cJSON_GetArraySize(curve) == LATHE_COCO_R && i < LATHE_COCO_R; i++) {
            const cJSON *v = cJSON_GetArrayItem(curve, i);
            double p = cJSON_IsNumber(v) && v->valuedouble >= 0 ? v->valuedouble : NAN; /* -1: no ground truth */
            y[nseries * LATHE_COCO_R + i] = p;
            defined |= !isnan(p);
        }
        if (defined) names[nseries++] = string(c, "name");
        if (nseries == CURVES_PER_CHART || (k == K && nseries)) {
            if (!charts++) heading(o, "Precision-recall at IoU 0.5");
            char title[64] = "Precision-recall at IoU 0.5";
            if (K > CURVES_PER_CHART) snprintf(title, sizeof title, "Precision-recall at IoU 0.5 (%d)", charts);
            lathe_plot_frame f = {title, "recall", "precision", 0, 0};
            lathe_png png;
            rc = chart(o, lathe_plot_lines(&f, x, LATHE_COCO_R, y, nseries, names, &png), &png, "pr", f.title);
            nseries = 0;
        }
    }
    free(y);
    return rc;
}

static int confusion_chart(doc *o, const cJSON *r, const char **labels, const double *cells, int L) {
    heading(o, "Confusion matrix");
    confusion_caption(o, r);
    int side = 14 * L + 200;
    side = side < 520 ? 520 : side > 1600 ? 1600 : side;
    lathe_plot_frame f = {"Confusion matrix", "predicted", "true", side < 640 ? 640 : side, side};
    lathe_png png;
    return chart(o, lathe_plot_heatmap(&f, cells, L, L, labels, labels, &png), &png, "confusion", f.title);
}

/* "loss" and "val_map" of the per-epoch objects in "training", against "epoch" (else 1, 2, ...). */
static int training_charts(doc *o, const cJSON *r) {
    const cJSON *t = item(r, "training");
    int n = cJSON_GetArraySize(t), rc = 0, titled = 0;
    if (!cJSON_IsArray(t) || n < 1) return 0;
    double *x = malloc(2 * (size_t)n * sizeof *x);
    if (!x) return lathe_fail(LATHE_ENOMEM, "training curves");
    double *y = x + n;
    static const char *const keys[2] = {"loss", "val_map"}, *const titles[2] = {"Training loss", "Validation mAP"};
    for (int k = 0; k < 2 && !rc; k++) {
        int defined = 0;
        for (int i = 0; i < n; i++) {
            const cJSON *e = cJSON_GetArrayItem(t, i);
            double epoch = number(e, "epoch");
            x[i] = isnan(epoch) ? i + 1 : epoch;
            y[i] = number(e, keys[k]);
            defined |= isfinite(y[i]);
        }
        if (!defined) continue;
        if (!titled++) heading(o, "Training");
        lathe_plot_frame f = {titles[k], "epoch", keys[k], 0, 0};
        lathe_png png;
        rc = chart(o, lathe_plot_lines(&f, x, (size_t)n, y, 1, NULL, &png), &png, "training", f.title);
    }
    free(x);
    return rc;
}

static void sample_figures(doc *o, const lathe_det_samples *s) {
    if (!s || !s->n) return;
    heading(o, "Samples");
    paragraph(o, "Predictions solid with their score, ground truth dashed, missed ground truth red.");
    for (size_t i = 0; i < s->n; i++) {
        const lathe_det_sample_image *im = &s->items[i];
        if (!im->png.data) continue;
        fputs("<figure>", o->f);
        lathe_html_png(o->f, im->png.data, im->png.len, im->caption ? im->caption : "sample");
        fputs("<figcaption>", o->f);
        lathe_html_escape(o->f, im->caption);
        fputs("</figcaption></figure>\n", o->f);
    }
}

/* ---- the files ---- */

static int write_body(doc *o, const cJSON *r, const char *title, const lathe_det_samples *samples) {
    const char **labels;
    double *cells;
    int L = confusion_parts(r, &labels, &cells), rc = 0;
    if (o->md) {
        fputs("# ", o->f);
        lathe_md_cell(o->f, title);
        fputs("\n\n", o->f);
    } else {
        fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>", o->f);
        lathe_html_escape(o->f, title);
        fputs("</title><style>body{font-family:sans-serif;max-width:1000px;margin:2em auto}table{border-collapse:"
              "collapse}td,th{border:1px solid #ccc;padding:3px 8px}img{max-width:100%}figure{margin:1em 0}"
              "</style></head><body>\n<h1>", o->f);
        lathe_html_escape(o->f, title);
        fputs("</h1>\n", o->f);
    }
    summary(o, r);
    metrics_table(o, r);
    classes_table(o, r);
    verdicts_table(o, r);
    if (o->md) {
        if (L) confusion_table(o, r, labels, cells, L);
    } else {
        rc = pr_charts(o, r);
        if (!rc && L) rc = confusion_chart(o, r, labels, cells, L);
        if (!rc) rc = training_charts(o, r);
        if (!rc) sample_figures(o, samples);
        fputs("</body></html>\n", o->f);
    }
    free(labels), free(cells);
    return rc;
}

/* Builds one document in memory and replaces dir/name with it. */
static int write_doc(const char *dir, const char *name, int md, const cJSON *r, const char *title,
                     const lathe_det_samples *samples) {
    char *text = NULL, path[4200];
    size_t len = 0;
    doc o = {open_memstream(&text, &len), md, NULL, NULL};
    if (!o.f) return lathe_fail(LATHE_ENOMEM, "%s", name);
    int rc = write_body(&o, r, title, samples);
    int bad = ferror(o.f);
    if (fclose(o.f) != 0 || bad) rc = rc ? rc : lathe_fail(LATHE_ENOMEM, "%s", name);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (!rc) rc = lathe_write_atomic(path, text, len);
    free(text);
    return rc;
}

int lathe_det_report_write(const cJSON *report, const char *title, const lathe_det_samples *samples,
                           const char *out_dir) {
    if (!report || !out_dir) return lathe_fail(LATHE_EINVAL, "a detection report needs a report and a folder");
    if (!title) title = "Detection report";
    char path[4200];
    snprintf(path, sizeof path, "%s/report.json", out_dir);
    int rc = lathe_mkdirs(out_dir);
    if (!rc) rc = lathe_json_save(path, report);
    if (!rc) rc = write_doc(out_dir, "report.html", 0, report, title, samples);
    if (!rc) rc = write_doc(out_dir, "report.md", 1, report, title, samples);
    return rc;
}

int lathe_det_report_charts(const cJSON *report, lathe_det_chart_fn fn, void *ctx) {
    if (!report || !fn) return lathe_fail(LATHE_EINVAL, "the report's charts need a report and a receiver");
    char *text = NULL; /* the headings and captions around the charts, not wanted here */
    size_t len = 0;
    doc o = {open_memstream(&text, &len), 0, fn, ctx};
    if (!o.f) return lathe_fail(LATHE_ENOMEM, "report charts");
    const char **labels;
    double *cells;
    int L = confusion_parts(report, &labels, &cells);
    int rc = pr_charts(&o, report);
    if (!rc && L) rc = confusion_chart(&o, report, labels, cells, L);
    if (!rc) rc = training_charts(&o, report);
    free(labels), free(cells);
    fclose(o.f);
    free(text);
    return rc;
}
