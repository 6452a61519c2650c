/* nb_analysis.c - the notebook of a dataset analysis (templates/analysis.py): analysis.json's
 * tables, and as stored charts the PNGs lathe analyze wrote into plots/ (in report.md's order). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libcore/base/error.h"
#include "libcore/base/fsutil.h"
#include "libcore/io/dataset.h"
#include "libcore/io/image.h"
#include "nb_internal.h"

enum { MAX_PLOTS = 64 };

typedef struct {
    const nb_input *in;
    const cJSON *a;
    char *plots[MAX_PLOTS]; /* names (plots/NAME.png) report.md shows, in its order */
    int nplots, used[MAX_PLOTS];
    int dataset_found;
    const char *dataset; /* the dataset folder, where it is found */
} analysis_ctx;

/* The charts report.md links ("](plots/NAME.png)"); each must be there. */
static int find_plots(analysis_ctx *c) {
    char path[4200], *md = NULL;
    size_t len;
    snprintf(path, sizeof path, "%s/report.md", c->in->path);
    if (!nb_exists(c->in->path, "report.md")) return lathe_fail(LATHE_ENOTFOUND, "%s is missing", path);
    int rc = lathe_read_file(path, 1 << 26, &md, &len);
    for (const char *p = md; !rc && p && (p = strstr(p, "](plots/")) && c->nplots < MAX_PLOTS;) {
        p += 8;
        const char *end = strstr(p, ".png)");
        if (!end || end - p > 200 || memchr(p, '/', (size_t)(end - p))) continue;
        char file[300];
        snprintf(file, sizeof file, "plots/%.*s.png", (int)(end - p), p);
        if (!nb_exists(c->in->path, file))
            rc = lathe_fail(LATHE_ENOTFOUND, "%s/%s is missing (report.md shows it; rerun lathe analyze)", c->in->path, file);
        else if (!(c->plots[c->nplots++] = strndup(p, (size_t)(end - p))))
            rc = lathe_fail(LATHE_ENOMEM, "plots");
    }
    free(md);
    return rc;
}

static int plot_index(const analysis_ctx *c, const char *name) {
    for (int i = 0; i < c->nplots; i++)
        if (!strcmp(c->plots[i], name)) return i;
    return -1;
}

static int add_plot_file(const analysis_ctx *c, int i, cJSON **outputs) {
    char path[4200];
    snprintf(path, sizeof path, "%s/plots/%s.png", c->in->path, c->plots[i]);
    lathe_png png = {NULL, 0};
    char *data = NULL;
    int rc = lathe_read_file(path, 1 << 26, &data, &png.len);
    if (!rc && (png.len < 8 || memcmp(data, "\x89PNG\r\n\x1a\n", 8) != 0))
        rc = lathe_fail(LATHE_EFORMAT, "%s is not a PNG file", path);
    png.data = (unsigned char *)data;
    if (!rc) rc = lathe_ipynb_add_png(outputs, &png, c->plots[i]);
    free(data);
    return rc;
}

static int splits_table(const cJSON *a, cJSON **outputs) {
    static const char *const header[] = {"", "samples", "objects_per_image_mean", "unlabeled"};
    nb_table t;
    nb_table_init(&t, 4, header);
    const cJSON *s;
    int rc = 0;
    cJSON_ArrayForEach(s, item(a, "splits")) {
        char text[3][64];
        nb_value_text(item(s, "samples"), text[0], 64);
        nb_value_text(item(item(s, "objects_per_image"), "mean"), text[1], 64);
        nb_value_text(item(s, "unlabeled"), text[2], 64);
        const char *row[4] = {s->string ? s->string : "", text[0], text[1], text[2]};
        if ((rc = nb_table_row(&t, row))) break;
    }
    return rc ? (nb_table_free(&t), rc) : nb_table_emit(&t, outputs);
}

static int classes_table(const cJSON *a, cJSON **outputs) {
    static const char *const header[] = {"",           "images_train", "images_val", "images_test", "images_total",
                                         "boxes_train", "boxes_val",   "boxes_test", "boxes_total"};
    static const char *const splits[] = {"train", "val", "test", "total"};
    nb_table t;
    nb_table_init(&t, 9, header);
    const cJSON *c;
    int rc = 0;
    cJSON_ArrayForEach(c, item(a, "classes")) {
        char text[8][32];
        const char *row[9];
        row[0] = cJSON_IsString(item(c, "name")) ? item(c, "name")->valuestring : "?";
        for (int k = 0; k < 8; k++) {
            nb_value_text(item(item(c, k < 4 ? "images" : "boxes"), splits[k % 4]), text[k], 32);
            row[k + 1] = text[k];
        }
        if ((rc = nb_table_row(&t, row))) break;
    }
    return rc ? (nb_table_free(&t), rc) : nb_table_emit(&t, outputs);
}

static int findings_table(const cJSON *a, cJSON **outputs) {
    static const char *const header[] = {"", "count", "description"};
    nb_table t;
    nb_table_init(&t, 3, header);
    const cJSON *f;
    int rc = 0;
    cJSON_ArrayForEach(f, item(a, "findings")) {
        char count[32];
        nb_value_text(item(f, "count"), count, sizeof count);
        const char *row[3] = {f->string, count, cJSON_IsString(item(f, "description")) ? item(f, "description")->valuestring : ""};
        if ((rc = nb_table_row(&t, row))) break;
    }
    return rc ? (nb_table_free(&t), rc) : nb_table_emit(&t, outputs);
}

static int any_plot(const analysis_ctx *c, const char *const *names) {
    for (; *names; names++)
        if (plot_index(c, *names) >= 0) return 1;
    return 0;
}

enum { SAMPLES = 8, SAMPLE_HEIGHT = 128, GAP = 4 };

/* The first SAMPLES images of the dataset side by side, each scaled to SAMPLE_HEIGHT rows (nearest
 * pixel), as a PNG: the stored output of the cell that reads them with h5py. */
static int samples_strip(const char *dir, lathe_png *png) {
    lathe_dataset *ds = NULL;
    lathe_dataset_sample s[SAMPLES] = {{0}};
    lathe_image strip = {0};
    int rc = lathe_dataset_open(dir, &ds), n = 0, width = 0;
    for (uint64_t i = 0; !rc && i < lathe_dataset_count(ds) && n < SAMPLES; i++, n++) {
        rc = lathe_dataset_get(ds, i, LATHE_READ_PIXELS | LATHE_READ_DECODE, &s[n]);
        if (!rc && (!s[n].pixels || s[n].width < 1 || s[n].height < 1)) rc = lathe_fail(LATHE_EFORMAT, "%s: sample %llu has no pixels", dir, (unsigned long long)i);
        if (rc) break;
        width += (int)((double)s[n].width * SAMPLE_HEIGHT / s[n].height + 0.5) + (n ? GAP : 0);
    }
    if (!rc && n) rc = lathe_image_alloc(&strip, width, SAMPLE_HEIGHT, 3);
    if (!rc && n) {
        memset(strip.pixels, 255, (size_t)width * SAMPLE_HEIGHT * 3);
        int x0 = 0;
        for (int k = 0; k < n; k++) {
            int w = (int)((double)s[k].width * SAMPLE_HEIGHT / s[k].height + 0.5), c = s[k].channels;
            for (int y = 0; y < SAMPLE_HEIGHT; y++)
                for (int x = 0; x < w && x0 + x < width; x++) {
                    const uint8_t *p = s[k].pixels + ((size_t)(y * s[k].height / SAMPLE_HEIGHT) * s[k].width +
                                                      (size_t)x * s[k].width / w) * c;
                    uint8_t *q = strip.pixels + ((size_t)y * width + x0 + x) * 3;
                    for (int ch = 0; ch < 3; ch++) q[ch] = p[c >= 3 ? ch : 0];
                }
            x0 += w + GAP;
        }
        uint8_t *bytes = NULL;
        rc = lathe_png_encode(&strip, &bytes, &png->len);
        png->data = bytes;
    }
    for (int k = 0; k < n && k < SAMPLES; k++) lathe_dataset_sample_free(&s[k]);
    lathe_image_free(&strip);
    lathe_dataset_close(ds);
    return rc;
}

static int analysis_cell(void *ctx, const char *name, cJSON **outputs) {
    analysis_ctx *c = ctx;
    static const char *const box_plots[] = {"objects_per_image", "box_area", "box_aspect", "box_centers", "cooccurrence", NULL};
    static const char *const image_plots[] = {"brightness", "contrast", "sharpness", NULL};
    static const char *const sensor_plots[] = {"sensors", NULL};
    if (!strcmp(name, "splits")) return kept(splits_table(c->a, outputs));
    if (!strcmp(name, "classes")) return kept(classes_table(c->a, outputs));
    if (!strcmp(name, "findings")) return kept(findings_table(c->a, outputs));
    if (!strcmp(name, "boxes_title")) return any_plot(c, box_plots);
    if (!strcmp(name, "images_title")) return any_plot(c, image_plots);
    if (!strcmp(name, "sensors_title")) return any_plot(c, sensor_plots);
    if (!strcmp(name, "samples_title")) return c->dataset_found;
    if (!strcmp(name, "samples")) {
        if (!c->dataset_found) return 0;
        lathe_png png = {NULL, 0};
        int rc = samples_strip(c->dataset, &png);
        if (!rc && png.data) rc = lathe_ipynb_add_png(outputs, &png, "The first samples");
        free(png.data);
        return kept(rc);
    }
    if (!strncmp(name, "plot_", 5)) {
        int i = plot_index(c, name + 5);
        if (i < 0) return 0;
        c->used[i] = 1;
        return kept(add_plot_file(c, i, outputs));
    }
    return lathe_fail(LATHE_EINVAL, "notebook template analysis: unknown cell %s", name);
}

static int other_plot_cell(void *ctx, const char *name, cJSON **outputs) {
    (void)name;
    const analysis_ctx *c = ctx;
    for (int i = 0; i < c->nplots; i++)
        if (!c->used[i]) return kept(add_plot_file(c, i, outputs));
    return 0;
}

int nb_build_analysis(lathe_ipynb *nb, const nb_input *in) {
    cJSON *a;
    int rc = nb_load_json(in->path, "analysis.json", &a);
    if (rc) return rc;
    analysis_ctx c = {.in = in, .a = a};
    if (!cJSON_IsObject(a) || !item(a, "lathe_analysis") || !cJSON_IsObject(item(a, "splits")))
        rc = lathe_fail(LATHE_EFORMAT, "%s/analysis.json is not one lathe analyze writes", in->path);
    if (!rc) rc = find_plots(&c);
    /* the dataset, for the cell that shows samples: where analyze read it, if it is still there */
    char dataset[4200] = "";
    const cJSON *ds = item(a, "dataset");
    if (!rc && cJSON_IsString(ds) && nb_exists(ds->valuestring, "manifest.json"))
        c.dataset_found = lathe_notebook_ref(in->out_dir, ds->valuestring, in->absolute, dataset, sizeof dataset) == 0;
    if (c.dataset_found) c.dataset = ds->valuestring;
    char summary[4096] = "";
    if (!rc) {
        char text[256];
        size_t len = 0;
        nb_value_text(item(a, "samples"), text, sizeof text);
        len += (size_t)snprintf(summary + len, sizeof summary - len, "- **dataset**: `%s`, %s samples\n",
                                cJSON_IsString(ds) ? ds->valuestring : "?", text);
        const cJSON *f;
        cJSON_ArrayForEach(f, item(a, "findings")) {
            const cJSON *count = item(f, "count");
            if (!f->string || !cJSON_IsNumber(count) || count->valuedouble <= 0 || len >= sizeof summary) continue;
            len += (size_t)snprintf(summary + len, sizeof summary - len, "- **%s**: %.0f\n", f->string, count->valuedouble);
        }
        if (len < sizeof summary) snprintf(summary + len, sizeof summary - len, "- **folder**: `%s`\n", in->ref);
    }
    nb_var vars[] = {{"name", in->name}, {"summary", summary}, {"path", in->ref}, {"dataset", dataset}};
    if (!rc) rc = nb_template_emit(nb, "analysis", vars, sizeof vars / sizeof *vars, analysis_cell, &c);
    for (int i = 0; !rc && i < c.nplots; i++) { /* charts analysis.py has no code for */
        if (c.used[i]) continue;
        char file[300];
        snprintf(file, sizeof file, "%s.png", c.plots[i]);
        nb_var pv[] = {{"file", file}};
        rc = nb_template_emit(nb, "analysis_plot", pv, 1, other_plot_cell, &c);
        c.used[i] = 1;
    }
    for (int i = 0; i < c.nplots; i++) free(c.plots[i]);
    cJSON_Delete(a);
    return rc;
}
