/* analyze_report.c - report.html (self-contained, plots inline) and report.md (plots linked from
 * plots/) of an analysis document. Both are written through one set of calls (heading, paragraph,
 * table, plot), so the two always hold the same content. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analyze_internal.h"
#include "libcore/base/error.h"
#include "libcore/base/fsutil.h"
#include "libcore/eval/html.h"
#include "libcore/eval/plot.h"

typedef struct {
    FILE *html, *md;
    const char *dir;
    int rc; /* first failure */
} report;

static void heading(report *r, int level, const char *text) {
    fprintf(r->html, "<h%d>", level);
    lathe_html_escape(r->html, text);
    fprintf(r->html, "</h%d>\n", level);
    fprintf(r->md, "\n%.*s %s\n\n", level, "####", text);
}

static void para(report *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void para(report *r, const char *fmt, ...) {
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    fputs("<p>", r->html);
    lathe_html_escape(r->html, buf);
    fputs("</p>\n", r->html);
    fprintf(r->md, "%s\n\n", buf);
}

/* A table row of n cells; header != 0 for the first row (Markdown then adds its rule). */
static void row(report *r, int header, int n, const char *const *cells, const char *css_class) {
    fprintf(r->html, css_class ? "<tr class=\"%s\">" : "<tr>", css_class);
    fputs("|", r->md);
    for (int i = 0; i < n; i++) {
        fputs(header ? "<th>" : "<td>", r->html);
        lathe_html_escape(r->html, cells[i]);
        fputs(header ? "</th>" : "</td>", r->html);
        fputc(' ', r->md);
        lathe_md_cell(r->md, cells[i]);
        fputs(" |", r->md);
    }
    fputs("</tr>\n", r->html);
    fputc('\n', r->md);
    if (header) {
        fputs("|", r->md);
        for (int i = 0; i < n; i++) fputs(" --- |", r->md);
        fputc('\n', r->md);
    }
}

static void table_start(report *r, int n, const char *const *cols) {
    fputs("<table>\n", r->html);
    row(r, 1, n, cols, NULL);
}

static void table_end(report *r) {
    fputs("</table>\n", r->html);
    fputc('\n', r->md);
}

/* Writes plots/<name>.png, links it from the Markdown and inlines it in the HTML. Takes png. */
static void figure(report *r, const char *name, const char *title, int rc, lathe_png *png) {
    if (rc) { /* nothing to draw (an empty histogram): say so instead of failing the report */
        para(r, "(%s: no data to plot)", title);
        lathe_clear_error();
        return;
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/plots/%s.png", r->dir, name);
    int w = lathe_write_atomic(path, png->data, png->len);
    if (w && !r->rc) r->rc = w;
    fputs("<figure>", r->html);
    lathe_html_png(r->html, png->data, png->len, title);
    fputs("<figcaption>", r->html);
    lathe_html_escape(r->html, title);
    fputs("</figcaption></figure>\n", r->html);
    fprintf(r->md, "![%s](plots/%s.png)\n\n", title, name);
    lathe_png_free(png);
}

static const cJSON *get(const cJSON *o, const char *key) { return cJSON_GetObjectItemCaseSensitive(o, key); }
static double num(const cJSON *o, const char *key) {
    const cJSON *x = get(o, key);
    return cJSON_IsNumber(x) ? x->valuedouble : NAN;
}

static void fmt_num(char *buf, size_t cap, double v) {
    if (isnan(v)) snprintf(buf, cap, "-");
    else if (v == floor(v) && fabs(v) < 1e15) snprintf(buf, cap, "%.0f", v);
    else snprintf(buf, cap, "%.4g", v);
}

/* up to `limit` sample ids of a JSON array, "a, b, c, ..." */
static void id_list(char *buf, size_t cap, const cJSON *ids, int limit) {
    buf[0] = 0;
    int k = 0;
    const cJSON *x;
    cJSON_ArrayForEach(x, ids) {
        size_t len = strlen(buf);
        if (k == limit) {
            snprintf(buf + len, cap - len, ", ...");
            break;
        }
        if (cJSON_IsNumber(x)) snprintf(buf + len, cap - len, "%s%.0f", k ? ", " : "", x->valuedouble);
        else if (cJSON_IsString(x)) snprintf(buf + len, cap - len, "%s%s", k ? ", " : "", x->valuestring);
        k++;
    }
}

static void findings_section(report *r, const cJSON *a) {
    heading(r, 2, "Findings");
    const cJSON *failed = get(a, "failed");
    if (cJSON_GetArraySize(failed) > 0) {
        char list[512];
        id_list(list, sizeof list, failed, 20);
        para(r, "Quality gate FAILED on: %s", list);
    }
    static const char *const cols[] = {"kind", "count", "what it means", "involved (first ids, classes or channels)"};
    table_start(r, 4, cols);
    const cJSON *f;
    cJSON_ArrayForEach(f, get(a, "findings")) {
        char count[32], ids[1024];
        fmt_num(count, sizeof count, num(f, "count"));
        const cJSON *names = get(f, "classes") ? get(f, "classes") : get(f, "channels") ? get(f, "channels") : get(f, "items");
        id_list(ids, sizeof ids, cJSON_GetArraySize(names) ? names : get(f, "samples"), 20);
        const cJSON *d = get(f, "description");
        const char *cells[] = {f->string, count, cJSON_IsString(d) ? d->valuestring : "", ids};
        row(r, 0, 4, cells, num(f, "count") > 0 ? "hit" : NULL);
    }
    table_end(r);
    static const char *const groups_of[] = {"leakage", "duplicate", "near-duplicate"};
    for (int g = 0; g < 3; g++) {
        const cJSON *groups = get(get(get(a, "findings"), groups_of[g]), "groups");
        if (cJSON_GetArraySize(groups) == 0) continue;
        char title[64];
        snprintf(title, sizeof title, "%s groups (first 50)", groups_of[g]);
        heading(r, 3, title);
        static const char *const gcols[] = {"samples", "splits", "max Hamming distance"};
        table_start(r, 3, gcols);
        int k = 0;
        const cJSON *grp;
        cJSON_ArrayForEach(grp, groups) {
            if (k++ == 50) break;
            char ids[1024], splits[64], d[16];
            id_list(ids, sizeof ids, get(grp, "samples"), 30);
            id_list(splits, sizeof splits, get(grp, "splits"), 3);
            fmt_num(d, sizeof d, num(grp, "max_distance"));
            const char *cells[] = {ids, splits, d};
            row(r, 0, 3, cells, NULL);
        }
        table_end(r);
    }
}

static const char *const split_names[LATHE_NSPLITS] = {"train", "val", "test"};

static void classes_section(report *r, const cJSON *a) {
    heading(r, 2, "Classes");
    const cJSON *classes = get(a, "classes");
    int n = cJSON_GetArraySize(classes);
    static const char *const cols[] = {"class", "images train/val/test", "boxes train/val/test",
                                       "box w x h (mean, source px)", "small/medium/large"};
    table_start(r, 5, cols);
    const char **names = calloc((size_t)(n ? n : 1), sizeof *names);
    double *counts = calloc((size_t)(n ? n : 1) * LATHE_NSPLITS, sizeof *counts);
    int k = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, classes) {
        char images[96], boxes[96], wh[64], sizes[64];
        const cJSON *im = get(c, "images"), *bx = get(c, "boxes"), *st = get(c, "box_stats"), *sz = get(st, "sizes");
        snprintf(images, sizeof images, "%.0f / %.0f / %.0f", num(im, "train"), num(im, "val"), num(im, "test"));
        snprintf(boxes, sizeof boxes, "%.0f / %.0f / %.0f", num(bx, "train"), num(bx, "val"), num(bx, "test"));
        double mw = num(get(st, "width"), "mean"), mh = num(get(st, "height"), "mean");
        if (isnan(mw) || isnan(mh)) snprintf(wh, sizeof wh, "-"); /* a class without boxes */
        else snprintf(wh, sizeof wh, "%.1f x %.1f", mw, mh);
        snprintf(sizes, sizeof sizes, "%.0f / %.0f / %.0f", num(sz, "small"), num(sz, "medium"), num(sz, "large"));
        const char *cells[] = {get(c, "name")->valuestring, images, boxes, wh, sizes};
        row(r, 0, 5, cells, NULL);
        if (names && counts) {
            names[k] = get(c, "name")->valuestring;
            for (int s = 0; s < LATHE_NSPLITS; s++) counts[(size_t)s * n + k] = num(im, split_names[s]);
        }
        k++;
    }
    table_end(r);
    if (names && counts && n > 0) {
        lathe_png png;
        lathe_plot_frame f = {"Images per class and split", "class", "images", 0, 0};
        int rc = lathe_plot_bars(&f, names, (size_t)n, counts, LATHE_NSPLITS, split_names, &png);
        figure(r, "class_images", f.title, rc, &png);
    }
    free(names);
    free(counts);
}

/* A histogram object {"edges", "counts"} as a figure. */
static void histogram_figure(report *r, const cJSON *h, const char *name, const char *title, const char *xlabel,
                             const char *ylabel) {
    const cJSON *edges = get(h, "edges"), *counts = get(h, "counts");
    int n = cJSON_GetArraySize(counts);
    lathe_png png = {0};
    int rc = -LATHE_EINVAL;
    double *e = malloc(sizeof(double) * (size_t)(n + 1)), *c = malloc(sizeof(double) * (size_t)(n ? n : 1));
    if (e && c && n > 0 && cJSON_GetArraySize(edges) == n + 1) {
        for (int i = 0; i <= n; i++) e[i] = cJSON_GetArrayItem(edges, i)->valuedouble;
        for (int i = 0; i < n; i++) c[i] = cJSON_GetArrayItem(counts, i)->valuedouble;
        lathe_plot_frame f = {title, xlabel, ylabel, 0, 0};
        rc = lathe_plot_histogram(&f, e, c, (size_t)n, &png);
    }
    free(e);
    free(c);
    figure(r, name, title, rc, &png);
}

/* A square matrix [[...]] as a heatmap figure; names NULL for a normalized-position map. */
static void matrix_figure(report *r, const cJSON *m, const cJSON *names, const char *name, const char *title,
                          const char *xlabel, const char *ylabel) {
    int rows = cJSON_GetArraySize(m), cols = rows ? cJSON_GetArraySize(cJSON_GetArrayItem(m, 0)) : 0;
    double *v = malloc(sizeof(double) * (size_t)(rows > 0 && cols > 0 ? rows * cols : 1));
    const char **labels = names ? calloc((size_t)(rows ? rows : 1), sizeof *labels) : NULL;
    lathe_png png = {0};
    int rc = -LATHE_EINVAL;
    if (v && rows > 0 && cols > 0 && (!names || labels)) {
        for (int i = 0; i < rows; i++)
            for (int k = 0; k < cols; k++)
                v[i * cols + k] = cJSON_GetArrayItem(cJSON_GetArrayItem(m, i), k)->valuedouble;
        for (int i = 0; labels && i < rows; i++) labels[i] = cJSON_GetArrayItem(names, i)->valuestring;
        lathe_plot_frame f = {title, xlabel, ylabel, 640, 480};
        rc = lathe_plot_heatmap(&f, v, rows, cols, labels, labels, &png);
    }
    free(v);
    free(labels);
    figure(r, name, title, rc, &png);
}

static void summary_rows(report *r, const char *label, const cJSON *s) {
    char v[7][32];
    static const char *const keys[] = {"count", "mean", "std", "min", "median", "p95", "max"};
    for (int i = 0; i < 7; i++) fmt_num(v[i], sizeof v[i], num(s, keys[i]));
    const char *cells[] = {label, v[0], v[1], v[2], v[3], v[4], v[5], v[6]};
    row(r, 0, 8, cells, NULL);
}

static const char *const summary_cols[] = {"", "count", "mean", "std", "min", "median", "p95", "max"};

static void boxes_section(report *r, const cJSON *a) {
    heading(r, 2, "Boxes");
    const cJSON *b = get(a, "boxes"), *st = get(b, "stats");
    para(r, "%.0f boxes (train %.0f, val %.0f, test %.0f); sizes in source pixels; COCO size classes: %.0f small, "
            "%.0f medium, %.0f large.",
         num(get(b, "count"), "total"), num(get(b, "count"), "train"), num(get(b, "count"), "val"),
         num(get(b, "count"), "test"), num(get(st, "sizes"), "small"), num(get(st, "sizes"), "medium"),
         num(get(st, "sizes"), "large"));
    table_start(r, 8, summary_cols);
    summary_rows(r, "objects per image", get(b, "per_image"));
    summary_rows(r, "box width", get(st, "width"));
    summary_rows(r, "box height", get(st, "height"));
    summary_rows(r, "box area", get(st, "area"));
    summary_rows(r, "aspect (w/h)", get(st, "aspect"));
    table_end(r);
    histogram_figure(r, get(get(b, "per_image"), "histogram"), "objects_per_image", "Objects per image",
                     "boxes in the image", "images");
    histogram_figure(r, get(b, "area_histogram"), "box_area", "Box area", "log10(area in source pixels)", "boxes");
    histogram_figure(r, get(b, "aspect_histogram"), "box_aspect", "Box aspect ratio", "log2(width / height)",
                     "boxes");
    matrix_figure(r, get(get(b, "center_heatmap"), "counts"), NULL, "box_centers", "Box centres in the image",
                  "x (share of width)", "y (share of height)");
    const cJSON *co = get(a, "cooccurrence");
    if (cJSON_GetArraySize(get(co, "classes")) > 0)
        matrix_figure(r, get(co, "counts"), get(co, "classes"), "cooccurrence", "Class co-occurrence (images)",
                      "class", "class");
}

static void images_section(report *r, const cJSON *a) {
    heading(r, 2, "Images");
    const cJSON *im = get(a, "images");
    para(r, "Measured over the image content (letterbox padding excluded). Luma Y = 0.299 R + 0.587 G + 0.114 B; "
            "sharpness is the variance of the Laplacian of Y; blurred below %.4g.",
         num(im, "blur_threshold"));
    table_start(r, 8, summary_cols);
    static const char *const keys[] = {"brightness", "contrast", "sharpness", "red", "green", "blue"};
    for (int k = 0; k < 6; k++) summary_rows(r, keys[k], get(im, keys[k]));
    for (int s = 0; s < LATHE_NSPLITS; s++) {
        char label[64];
        snprintf(label, sizeof label, "brightness, %s", split_names[s]);
        summary_rows(r, label, get(get(get(im, "per_split"), split_names[s]), "brightness"));
    }
    table_end(r);
    histogram_figure(r, get(get(im, "brightness"), "histogram"), "brightness", "Image brightness",
                     "mean luma (0-255)", "images");
    histogram_figure(r, get(get(im, "contrast"), "histogram"), "contrast", "Image contrast", "std of luma",
                     "images");
    histogram_figure(r, get(get(im, "sharpness"), "histogram"), "sharpness", "Image sharpness",
                     "log10(variance of the Laplacian)", "images");
}

static void sensors_section(report *r, const cJSON *a) {
    const cJSON *s = get(a, "sensors");
    if (!cJSON_IsObject(s)) return;
    heading(r, 2, "Sensors");
    para(r, "%.0f steps per window; %.0f good and %.0f defective samples. Separation: AUROC of the per-sample window "
            "mean or std between good and defective, as |AUROC - 0.5| x 2 (0 none, 1 perfect). Drift: change of "
            "the window mean from the first to the last sample, in standard deviations.",
         num(s, "steps"), num(s, "good_samples"), num(s, "defective_samples"));
    static const char *const cols[] = {"channel", "mean", "std", "min", "max", "NaN share", "drift", "separation"};
    table_start(r, 8, cols);
    const cJSON *ch;
    int n = cJSON_GetArraySize(get(s, "channels")), k = 0;
    const char **names = calloc((size_t)(n ? n : 1), sizeof *names);
    double *vals = calloc((size_t)(n ? n : 1) * 2, sizeof *vals);
    cJSON_ArrayForEach(ch, get(s, "channels")) {
        char v[7][32];
        static const char *const keys[] = {"mean", "std", "min", "max", "nan_share", "drift", "separation"};
        for (int i = 0; i < 7; i++) fmt_num(v[i], sizeof v[i], num(ch, keys[i]));
        const char *cells[] = {get(ch, "name")->valuestring, v[0], v[1], v[2], v[3], v[4], v[5], v[6]};
        row(r, 0, 8, cells, NULL);
        if (names && vals) {
            names[k] = get(ch, "name")->valuestring;
            vals[k] = isnan(num(ch, "separation")) ? 0 : num(ch, "separation");
            vals[n + k] = num(ch, "nan_share");
        }
        k++;
    }
    table_end(r);
    if (names && vals && n > 0) {
        static const char *const series[] = {"separation", "NaN share"};
        lathe_png png;
        lathe_plot_frame f = {"Sensor channels: separation of good and defective, NaN share", "channel", "0..1", 0, 0};
        int rc = lathe_plot_bars(&f, names, (size_t)n, vals, 2, series, &png);
        figure(r, "sensors", f.title, rc, &png);
    }
    free(names);
    free(vals);
}

static void text_section(report *r, const cJSON *a) {
    const cJSON *t = get(a, "text");
    if (!cJSON_IsObject(t)) return;
    heading(r, 2, "Text");
    para(r, "%.0f samples with text (%.0f empty), %.0f words, vocabulary of %.0f; words per text: mean %.1f, "
            "min %.0f, max %.0f.",
         num(t, "samples_with_text"), num(t, "empty"), num(t, "words"), num(t, "vocabulary"),
         num(get(t, "length_words"), "mean"), num(get(t, "length_words"), "min"), num(get(t, "length_words"), "max"));
    char words[2048] = "";
    const cJSON *w;
    cJSON_ArrayForEach(w, get(t, "top_words")) {
        size_t len = strlen(words);
        snprintf(words + len, sizeof words - len, "%s%s (%.0f)", len ? ", " : "",
                 cJSON_GetArrayItem(w, 0)->valuestring, cJSON_GetArrayItem(w, 1)->valuedouble);
    }
    para(r, "Most frequent words: %s", words);
}

static void compare_section(report *r, const cJSON *a) {
    const cJSON *c = get(a, "compare");
    if (!cJSON_IsObject(c)) return;
    heading(r, 2, "Compared with the reference");
    para(r, "Reference: %s (%.0f samples; this dataset %.0f). Class mix total variation distance %.3f; mean box area "
            "ratio %.3f; brightness mean %.1f against %.1f (shift %.2f reference std).",
         get(c, "reference")->valuestring, num(c, "reference_samples"), num(c, "samples"),
         num(get(c, "class_mix"), "total_variation"), num(get(c, "box_area"), "ratio"),
         num(get(c, "brightness"), "mean"), num(get(c, "brightness"), "reference_mean"),
         num(get(c, "brightness"), "shift_std"));
    static const char *const cols[] = {"class", "share", "reference share", "change"};
    table_start(r, 4, cols);
    const cJSON *k;
    cJSON_ArrayForEach(k, get(get(c, "class_mix"), "classes")) {
        char v[3][32];
        fmt_num(v[0], 32, num(k, "share")), fmt_num(v[1], 32, num(k, "reference_share")), fmt_num(v[2], 32, num(k, "change"));
        const char *cells[] = {get(k, "name")->valuestring, v[0], v[1], v[2]};
        row(r, 0, 4, cells, NULL);
    }
    table_end(r);
    static const char *const scols[] = {"channel", "mean", "reference mean", "shift (reference std)"};
    if (cJSON_GetArraySize(get(c, "sensors")) > 0) {
        table_start(r, 4, scols);
        cJSON_ArrayForEach(k, get(c, "sensors")) {
            char v[3][32];
            fmt_num(v[0], 32, num(k, "mean")), fmt_num(v[1], 32, num(k, "reference_mean")), fmt_num(v[2], 32, num(k, "shift_std"));
            const char *cells[] = {get(k, "name")->valuestring, v[0], v[1], v[2]};
            row(r, 0, 4, cells, NULL);
        }
        table_end(r);
    }
}

static const char *const css =
    "body{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}"
    "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px}"
    "tr.hit td{background:#fff3e0}figure{margin:1em 0}figcaption{font-size:12px;color:#555}";

int lathe_analyze_write_reports(const cJSON *a, const char *dir) {
    char path[4200], tmp_html[4200], tmp_md[4200];
    snprintf(path, sizeof path, "%s/plots", dir);
    int rc = lathe_mkdirs(path);
    if (rc) return rc;
    snprintf(tmp_html, sizeof tmp_html, "%s/report.html.tmp", dir);
    snprintf(tmp_md, sizeof tmp_md, "%s/report.md.tmp", dir);
    report r = {fopen(tmp_html, "w"), NULL, dir, 0};
    int err = r.html ? 0 : errno;
    if (r.html && !(r.md = fopen(tmp_md, "w"))) err = errno;
    if (err) { /* EMFILE, ENOSPC, EACCES...: the reason goes with the message */
        if (r.html) fclose(r.html);
        return lathe_fail(LATHE_EIO, "cannot write the reports in %s: %s", dir, strerror(err));
    }
    const cJSON *ds = get(a, "dataset");
    const char *name = cJSON_IsString(ds) ? ds->valuestring : "?";
    fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>lathe analyze: ", r.html);
    lathe_html_escape(r.html, name);
    fprintf(r.html, "</title><style>%s</style></head><body>\n", css);
    char title[4200];
    snprintf(title, sizeof title, "lathe analyze: %s", name);
    heading(&r, 1, title);
    const cJSON *sp = get(a, "splits");
    para(&r, "%.0f samples (train %.0f, val %.0f, test %.0f), %.0f analyzed, in %.1f s.", num(a, "samples"),
         num(get(sp, "train"), "samples"), num(get(sp, "val"), "samples"), num(get(sp, "test"), "samples"),
         num(a, "analyzed"), num(a, "seconds"));
    findings_section(&r, a);
    compare_section(&r, a);
    classes_section(&r, a);
    boxes_section(&r, a);
    images_section(&r, a);
    sensors_section(&r, a);
    text_section(&r, a);
    fputs("</body></html>\n", r.html);
    int bad = ferror(r.html) | ferror(r.md);
    bad |= fclose(r.html) != 0;
    bad |= fclose(r.md) != 0;
    if (bad && !r.rc) r.rc = lathe_fail(LATHE_EIO, "writing the reports in %s", dir);
    if (!r.rc) {
        snprintf(path, sizeof path, "%s/report.html", dir);
        r.rc = lathe_rename_durable(tmp_html, path);
    }
    if (!r.rc) {
        snprintf(path, sizeof path, "%s/report.md", dir);
        r.rc = lathe_rename_durable(tmp_md, path);
    }
    return r.rc;
}
