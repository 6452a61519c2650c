/* anomaly_eval.c - scoring a split with an anomaly head (anomaly.h): image AUROC overall and per
 * defect class, pixel AUROC and PRO against the masks, the F1-best threshold and the run's own, and
 * the report files with the maps of the most telling images drawn. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anomaly.h"
#include "anomaly_internal.h"
#include "libcore/base/config.h"
#include "libcore/base/error.h"
#include "libcore/base/fsutil.h"
#include "libcore/base/log.h"
#include "libcore/data/transform.h"
#include "libcore/eval/html.h"
#include "libcore/io/image.h"
#include "metrics.h"

/* PRO is integrated up to this false positive rate, as MVTec AD's evaluation does. */
#define AD_PRO_FPR 0.3
/* Images drawn in the report: the highest-scoring defective ones, the lowest-scoring defective
 * ones (misses first) and the highest-scoring good ones (nearest to false alarms). */
#define AD_DRAW_EACH 4

typedef struct {
    size_t n;
    int mh, mw, has_masks;
    float *score, *maps;
    uint8_t *defect, *masks;
    int32_t *label;
    uint64_t *sample;
} ad_scored;

static void scored_free(ad_scored *s) {
    free(s->score), free(s->maps), free(s->defect), free(s->masks), free(s->label), free(s->sample);
}

/* The split's mask of sample i at map size (nearest), 1 inside a defect. */
static int read_mask(lathe_dataset *ds, uint64_t i, int mh, int mw, uint8_t *dst) {
    lathe_dataset_sample s;
    int rc = lathe_dataset_get(ds, i, LATHE_READ_MASK, &s);
    if (!rc && s.mask) { /* ingest's nearest-neighbour resize, then 0/1 */
        const lathe_manifest *man = lathe_dataset_manifest(ds);
        lathe_image mask = {.width = man->width, .height = man->height, .channels = 1, .pixels = s.mask};
        rc = lathe_resize_into(&mask, mw, mh, 1, dst, (size_t)mw);
        for (size_t p = 0; !rc && p < (size_t)mh * mw; p++) dst[p] = dst[p] != 0;
    } else if (!rc) {
        memset(dst, 0, (size_t)mh * mw);
    }
    lathe_dataset_sample_free(&s);
    return rc;
}

static int score_split(ad_model *m, lathe_dataset *ds, ad_source *src, ad_scored *s) {
    const lathe_manifest *man = lathe_dataset_manifest(ds);
    s->n = ad_source_size(src);
    s->has_masks = !m->sensors && man->has_masks;
    if (!m->sensors) ad_map_size(man->height, man->width, &s->mh, &s->mw); /* a window has no map */
    size_t per = (size_t)s->mh * s->mw, P = (size_t)m->fh * m->fw, n1 = s->n + 1;
    s->score = malloc(sizeof(float) * n1), s->maps = malloc(sizeof(float) * (per ? n1 * per : 1));
    s->defect = calloc(n1, 1), s->masks = calloc(per ? n1 * per : 1, 1);
    s->label = malloc(sizeof(int32_t) * n1 + sizeof(int32_t) * (size_t)m->batch), s->sample = malloc(sizeof(uint64_t) * n1);
    float *patch = malloc(sizeof(float) * P);
    int rc = s->score && s->maps && s->defect && s->masks && s->label && s->sample && patch
                 ? 0
                 : lathe_fail(LATHE_ENOMEM, "maps of %zu images at %dx%d", s->n, s->mw, s->mh);
    for (uint64_t first = 0; !rc && first < s->n; first += (uint64_t)m->batch) {
        int got = ad_source_batch(src, first, m->batch, s->label + first, s->sample + first);
        if (got < 0) rc = got;
        for (int b = 0; !rc && b < got; b++) {
            size_t i = (size_t)first + (size_t)b;
            rc = ad_patch_scores(m, m->feat + (size_t)b * P * m->dims, patch);
            if (!rc) s->score[i] = ad_score(m, patch, s->mh, s->mw, s->maps + i * per);
            s->defect[i] = s->label[i] != 0;
            if (!rc && s->has_masks) rc = read_mask(ds, s->sample[i], s->mh, s->mw, s->masks + i * per);
        }
    }
    free(patch);
    return rc;
}

static cJSON *f1_json(const lathe_f1_point *p) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "threshold", p->threshold);
    cJSON_AddNumberToObject(o, "f1", p->f1);
    cJSON_AddNumberToObject(o, "precision", p->precision);
    cJSON_AddNumberToObject(o, "recall", p->recall);
    return o;
}

/* Accuracy, precision, recall, false alarms and misses of threshold t. */
static cJSON *at_threshold(const ad_scored *s, double t) {
    double tp = 0, fp = 0, fn = 0, tn = 0;
    for (size_t i = 0; i < s->n; i++) {
        int alarm = s->score[i] >= t;
        tp += alarm && s->defect[i], fp += alarm && !s->defect[i], fn += !alarm && s->defect[i], tn += !alarm && !s->defect[i];
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "threshold", t);
    cJSON_AddNumberToObject(o, "accuracy", s->n ? (tp + tn) / (double)s->n : 0);
    cJSON_AddNumberToObject(o, "precision", tp + fp > 0 ? tp / (tp + fp) : 0);
    cJSON_AddNumberToObject(o, "recall", tp + fn > 0 ? tp / (tp + fn) : 0);
    cJSON_AddNumberToObject(o, "false_alarms", fp);
    cJSON_AddNumberToObject(o, "missed", fn);
    return o;
}

/* Image AUROC of good (label 0) against one defect class. */
static int class_auroc(const ad_scored *s, int32_t cls, double *auroc, size_t *count) {
    float *sc = malloc(sizeof(float) * (s->n + 1));
    uint8_t *pos = malloc(s->n + 1);
    size_t k = 0;
    *count = 0;
    if (!sc || !pos) {
        free(sc), free(pos);
        return lathe_fail(LATHE_ENOMEM, "per-class scores");
    }
    for (size_t i = 0; i < s->n; i++)
        if (s->label[i] == 0 || s->label[i] == cls) {
            sc[k] = s->score[i], pos[k++] = s->label[i] == cls;
            *count += s->label[i] == cls;
        }
    int rc = lathe_auroc(sc, pos, k, auroc);
    free(sc), free(pos);
    return rc;
}

/* The report's numbers (report.json without its drawings). */
static int build_report(const ad_model *m, const ad_scored *s, const lathe_manifest *man, cJSON *r) {
    double auroc = -1, pix = -1, pro = -1;
    size_t regions = 0, ndef = 0, npix = s->n * (size_t)s->mh * s->mw, defect_px = 0;
    lathe_f1_point best;
    int rc = lathe_auroc(s->score, s->defect, s->n, &auroc);
    if (!rc) rc = lathe_best_f1(s->score, s->defect, s->n, &best);
    for (size_t i = 0; i < s->n; i++) ndef += s->defect[i];
    for (size_t i = 0; s->has_masks && i < npix; i++) defect_px += s->masks[i];
    if (!rc && s->has_masks && defect_px) rc = lathe_auroc(s->maps, s->masks, npix, &pix);
    if (!rc && s->has_masks && defect_px) rc = lathe_pro(s->maps, s->masks, s->n, s->mh, s->mw, AD_PRO_FPR, &pro, &regions);
    if (rc) return rc;
    cJSON_AddStringToObject(r, "task", "anomaly");
    cJSON_AddStringToObject(r, "method", ad_method_name(m));
    cJSON_AddStringToObject(r, "input", m->sensors ? "sensors" : "image");
    cJSON_AddNumberToObject(r, "images", (double)s->n);
    cJSON_AddNumberToObject(r, "good", (double)(s->n - ndef));
    cJSON_AddNumberToObject(r, "defective", (double)ndef);
    auroc >= 0 ? cJSON_AddNumberToObject(r, "image_auroc", auroc) : cJSON_AddNullToObject(r, "image_auroc");
    pix >= 0 ? cJSON_AddNumberToObject(r, "pixel_auroc", pix) : cJSON_AddNullToObject(r, "pixel_auroc");
    pro >= 0 ? cJSON_AddNumberToObject(r, "pro", pro) : cJSON_AddNullToObject(r, "pro");
    cJSON_AddNumberToObject(r, "pro_fpr_limit", AD_PRO_FPR);
    cJSON_AddNumberToObject(r, "defect_regions", (double)regions);
    if (m->sensors) {
        cJSON_AddNullToObject(r, "map_size");
    } else {
        cJSON *size = cJSON_AddArrayToObject(r, "map_size");
        cJSON_AddItemToArray(size, cJSON_CreateNumber(s->mh)), cJSON_AddItemToArray(size, cJSON_CreateNumber(s->mw));
    }
    cJSON_AddItemToObject(r, "best_f1", f1_json(&best));
    if (isfinite(m->threshold)) cJSON_AddItemToObject(r, "run_threshold", at_threshold(s, m->threshold));
    else cJSON_AddNullToObject(r, "run_threshold");
    cJSON *classes = cJSON_AddArrayToObject(r, "classes");
    for (int c = 1; c < man->nclasses; c++) {
        size_t count;
        double a;
        if ((rc = class_auroc(s, c, &a, &count))) return rc;
        if (!count) continue;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", man->class_names[c]);
        cJSON_AddNumberToObject(o, "images", (double)count);
        a >= 0 ? cJSON_AddNumberToObject(o, "image_auroc", a) : cJSON_AddNullToObject(o, "image_auroc");
        cJSON_AddItemToArray(classes, o);
    }
    cJSON *samples = cJSON_AddArrayToObject(r, "samples");
    for (size_t i = 0; i < s->n; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "sample", (double)s->sample[i]);
        cJSON_AddNumberToObject(o, "label", s->label[i]);
        cJSON_AddNumberToObject(o, "score", s->score[i]);
        cJSON_AddItemToArray(samples, o);
    }
    return 0;
}

/* A map's colour (dark blue, through green and yellow, to red) for v in 0..1. */
static void heat(float v, uint8_t *rgb) {
    v = v < 0 ? 0 : v > 1 ? 1 : v;
    float r = 1.5f - fabsf(4 * v - 3), g = 1.5f - fabsf(4 * v - 2), b = 1.5f - fabsf(4 * v - 1);
    rgb[0] = (uint8_t)(255 * (r < 0 ? 0 : r > 1 ? 1 : r)), rgb[1] = (uint8_t)(255 * (g < 0 ? 0 : g > 1 ? 1 : g));
    rgb[2] = (uint8_t)(255 * (b < 0 ? 0 : b > 1 ? 1 : b));
}

/* Sample i drawn as [photo | photo under its map, the mask's outline in white] into a PNG. scale:
 * the map value drawn red (twice the threshold, or the highest score). */
static int draw(lathe_dataset *ds, const ad_scored *s, size_t i, float scale, uint8_t **png, size_t *len) {
    int mh = s->mh, mw = s->mw, gap = 4;
    lathe_dataset_sample smp;
    lathe_image out = {0}, pic = {0};
    int rc = lathe_dataset_get(ds, s->sample[i], LATHE_READ_PIXELS | LATHE_READ_DECODE, &smp);
    if (!rc && smp.channels != 3 && smp.channels != 1) rc = lathe_fail(LATHE_EFORMAT, "sample %llu: %d channels",
                                                                     (unsigned long long)s->sample[i], smp.channels);
    if (!rc) rc = lathe_image_alloc(&out, 2 * mw + gap, mh, 3);
    if (!rc) rc = lathe_image_alloc(&pic, mw, mh, smp.channels);
    lathe_image src = {.pixels = smp.pixels, .width = smp.width, .height = smp.height, .channels = smp.channels};
    if (!rc) rc = lathe_resize_into(&src, mw, mh, 0, pic.pixels, (size_t)mw * smp.channels);
    if (!rc) {
        memset(out.pixels, 255, (size_t)out.width * mh * 3);
        const float *map = s->maps + i * (size_t)mh * mw;
        const uint8_t *mask = s->masks + i * (size_t)mh * mw;
        for (int y = 0; y < mh; y++)
            for (int x = 0; x < mw; x++) {
                const uint8_t *p = pic.pixels + ((size_t)y * mw + x) * pic.channels;
                uint8_t rgb[3] = {p[0], p[pic.channels > 1], p[pic.channels > 1 ? 2 : 0]}, h[3];
                uint8_t *a = out.pixels + ((size_t)y * out.width + x) * 3, *b = a + (size_t)(mw + gap) * 3;
                memcpy(a, rgb, 3);
                float v = map[(size_t)y * mw + x] / scale;
                heat(v, h);
                float alpha = 0.25f + 0.5f * (v < 0 ? 0 : v > 1 ? 1 : v);
                for (int k = 0; k < 3; k++) b[k] = (uint8_t)((1 - alpha) * rgb[k] + alpha * h[k] + 0.5f);
                int m0 = mask[(size_t)y * mw + x], edge = 0;
                if (m0)
                    edge = (x == 0 || !mask[(size_t)y * mw + x - 1]) || (x == mw - 1 || !mask[(size_t)y * mw + x + 1]) ||
                           (y == 0 || !mask[(size_t)(y - 1) * mw + x]) || (y == mh - 1 || !mask[(size_t)(y + 1) * mw + x]);
                if (edge) b[0] = b[1] = b[2] = 255;
            }
        rc = lathe_png_encode(&out, png, len);
    }
    lathe_image_free(&out), lathe_image_free(&pic);
    lathe_dataset_sample_free(&smp);
    return rc;
}

static int by_score_desc(const void *a, const void *b, void *ctx) {
    const float *score = ctx;
    float x = score[*(const size_t *)a], y = score[*(const size_t *)b];
    return (x < y) - (x > y);
}

/* The images to draw, in report order, with a caption each; returns how many. */
static size_t pick(const ad_scored *s, size_t *out, const char **why) {
    size_t *order = malloc(sizeof(size_t) * (s->n + 1)), k = 0;
    if (!order) return 0;
    for (size_t i = 0; i < s->n; i++) order[i] = i;
    qsort_r(order, s->n, sizeof *order, by_score_desc, s->score); /* no shared state: evaluations may run at once */
    size_t taken = 0;
    for (size_t j = 0; j < s->n && taken < AD_DRAW_EACH; j++)
        if (s->defect[order[j]]) out[k] = order[j], why[k++] = "defective, highest scores", taken++;
    size_t first_low = k;
    taken = 0;
    for (size_t j = s->n; j-- > 0 && taken < AD_DRAW_EACH;) {
        int seen = 0;
        for (size_t t = 0; t < first_low; t++) seen |= out[t] == order[j];
        if (s->defect[order[j]] && !seen) out[k] = order[j], why[k++] = "defective, lowest scores", taken++;
    }
    taken = 0;
    for (size_t j = 0; j < s->n && taken < AD_DRAW_EACH; j++)
        if (!s->defect[order[j]]) out[k] = order[j], why[k++] = "good, highest scores", taken++;
    free(order);
    return k;
}

static void number_cell(FILE *f, const cJSON *r, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(r, key);
    if (cJSON_IsNumber(v)) fprintf(f, "%.4f", v->valuedouble);
    else fputs("n/a", f);
}

static int write_report(lathe_dataset *ds, const ad_model *m, const ad_scored *s, cJSON *r, const char *title,
                        const char *dir) {
    char path[4300];
    snprintf(path, sizeof path, "%s/maps", dir);
    int rc = lathe_mkdirs(path);
    size_t chosen[3 * AD_DRAW_EACH];
    const char *why[3 * AD_DRAW_EACH];
    size_t nd = rc || m->sensors ? 0 : pick(s, chosen, why); /* a window has no map to draw */
    float scale = isfinite(m->threshold) && m->threshold > 0 ? 2 * m->threshold : 0;
    for (size_t i = 0; !scale && i < s->n; i++) scale = fmaxf(scale, s->score[i]);
    if (!(scale > 0)) scale = 1;
    char *html = NULL, *md = NULL;
    size_t html_len = 0, md_len = 0;
    FILE *h = rc ? NULL : open_memstream(&html, &html_len), *f = rc ? NULL : open_memstream(&md, &md_len);
    if (!rc && (!h || !f)) rc = lathe_fail(LATHE_ENOMEM, "report");
    if (!rc) {
        fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>", h);
        lathe_html_escape(h, title);
        fputs("</title><style>body{font-family:sans-serif;max-width:1000px;margin:2em auto}table{border-collapse:"
              "collapse}td,th{border:1px solid #ccc;padding:3px 8px}figure{display:inline-block;margin:6px}</style>"
              "</head><body>\n<h1>", h);
        lathe_html_escape(h, title);
        fprintf(h, "</h1>\n<p>%.0f images (%.0f good, %.0f defective), method %s</p>\n<table>\n",
                lathe_config_num(r, "images", 0), lathe_config_num(r, "good", 0), lathe_config_num(r, "defective", 0),
                lathe_config_str(r, "method", ""));
        fprintf(f, "# %s\n\n%.0f images (%.0f good, %.0f defective), method %s\n\n| metric | value |\n| --- | --- |\n", title,
                lathe_config_num(r, "images", 0), lathe_config_num(r, "good", 0), lathe_config_num(r, "defective", 0),
                lathe_config_str(r, "method", ""));
        const char *keys[] = {"image_auroc", "pixel_auroc", "pro"}, *names[] = {"image AUROC", "pixel AUROC", "PRO (FPR <= 0.3)"};
        for (int k = 0; k < 3; k++) {
            fprintf(h, "<tr><th>%s</th><td>", names[k]), number_cell(h, r, keys[k]), fputs("</td></tr>\n", h);
            fprintf(f, "| %s | ", names[k]), number_cell(f, r, keys[k]), fputs(" |\n", f);
        }
        const cJSON *b = cJSON_GetObjectItemCaseSensitive(r, "best_f1"), *t = cJSON_GetObjectItemCaseSensitive(r, "run_threshold");
        fprintf(h, "<tr><th>best F1</th><td>%.4f at score %.4g (precision %.4f, recall %.4f)</td></tr>\n",
                lathe_config_num(b, "f1", 0), lathe_config_num(b, "threshold", 0), lathe_config_num(b, "precision", 0),
                lathe_config_num(b, "recall", 0));
        fprintf(f, "| best F1 | %.4f at score %.4g |\n", lathe_config_num(b, "f1", 0), lathe_config_num(b, "threshold", 0));
        if (cJSON_IsObject(t)) {
            fprintf(h, "<tr><th>run threshold</th><td>%.4g: accuracy %.4f, %.0f false alarms, %.0f missed</td></tr>\n",
                    lathe_config_num(t, "threshold", 0), lathe_config_num(t, "accuracy", 0),
                    lathe_config_num(t, "false_alarms", 0), lathe_config_num(t, "missed", 0));
            fprintf(f, "| run threshold | %.4g: accuracy %.4f, %.0f false alarms, %.0f missed |\n",
                    lathe_config_num(t, "threshold", 0), lathe_config_num(t, "accuracy", 0),
                    lathe_config_num(t, "false_alarms", 0), lathe_config_num(t, "missed", 0));
        }
        fputs("</table>\n<h2>Per defect class</h2>\n<table><tr><th>class</th><th>images</th><th>image AUROC</th></tr>\n", h);
        fputs("\n| class | images | image AUROC |\n| --- | --- | --- |\n", f);
        const cJSON *c;
        cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(r, "classes")) {
            fputs("<tr><td>", h), lathe_html_escape(h, lathe_config_str(c, "name", "")), fputs("</td>", h);
            fprintf(h, "<td>%.0f</td><td>", lathe_config_num(c, "images", 0)), number_cell(h, c, "image_auroc");
            fputs("</td></tr>\n", h);
            fputs("| ", f), lathe_md_cell(f, lathe_config_str(c, "name", ""));
            fprintf(f, " | %.0f | ", lathe_config_num(c, "images", 0)), number_cell(f, c, "image_auroc"), fputs(" |\n", f);
        }
        if (!m->sensors) {
            fprintf(h, "</table>\n<h2>Maps</h2>\n<p>Each: the image, and the image under its anomaly map (red at "
                       "score %.4g), the defect mask outlined in white.</p>\n", (double)scale);
            fputs("\n## Maps\n\n", f);
        } else {
            fputs("</table>\n", h);
        }
    }
    cJSON *maps = rc ? NULL : cJSON_AddArrayToObject(r, "maps");
    for (size_t k = 0; !rc && k < nd; k++) {
        uint8_t *png = NULL;
        size_t len = 0;
        size_t i = chosen[k];
        rc = draw(ds, s, i, scale, &png, &len);
        char rel[64], cap[160];
        snprintf(rel, sizeof rel, "maps/%03zu.png", k);
        snprintf(path, sizeof path, "%s/%s", dir, rel);
        if (!rc) rc = lathe_write_atomic(path, png, len);
        snprintf(cap, sizeof cap, "%s: sample %llu, label %d, score %.4g", why[k], (unsigned long long)s->sample[i],
                 s->label[i], (double)s->score[i]);
        if (!rc) {
            fputs("<figure>", h), lathe_html_png(h, png, len, cap), fputs("<figcaption>", h), lathe_html_escape(h, cap);
            fputs("</figcaption></figure>\n", h);
            fprintf(f, "- ![%s](%s)\n", cap, rel);
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "file", rel);
            cJSON_AddNumberToObject(o, "sample", (double)s->sample[i]);
            cJSON_AddStringToObject(o, "why", why[k]);
            cJSON_AddItemToArray(maps, o);
        }
        free(png);
    }
    if (h) fputs("</body></html>\n", h), fclose(h);
    if (f) fclose(f);
    if (!rc) {
        snprintf(path, sizeof path, "%s/report.html", dir);
        rc = lathe_write_atomic(path, html, html_len);
    }
    if (!rc) {
        snprintf(path, sizeof path, "%s/report.md", dir);
        rc = lathe_write_atomic(path, md, md_len);
    }
    if (!rc) {
        snprintf(path, sizeof path, "%s/report.json", dir);
        rc = lathe_json_save(path, r);
    }
    free(html), free(md);
    return rc;
}

int lathe_eval_anomaly(const cJSON *spec, const char *checkpoint, const char *dataset, const char *split,
                       const char *out_dir, cJSON **report) {
    if (report) *report = NULL;
    ad_model m;
    ad_scored s;
    memset(&s, 0, sizeof s);
    memset(&m, 0, sizeof m);
    lathe_dataset *ds = NULL;
    ad_source src = {0};
    const char *dir = dataset ? dataset : lathe_config_str(spec, "data.dataset", NULL);
    int sp = lathe_split_parse(split);
    int rc = sp < 0 ? lathe_fail(LATHE_EINVAL, "unknown split %s", split) : 0;
    if (!rc && !dir) rc = lathe_fail(LATHE_EINVAL, "data.dataset is required");
    if (!rc) rc = lathe_dataset_open(dir, &ds);
    if (!rc) rc = ad_model_init(&m, spec, lathe_dataset_manifest(ds));
    if (!rc) rc = ad_model_load(&m, checkpoint);
    if (!rc) rc = ad_model_device(&m, spec);
    if (!rc) rc = ad_source_open(&m, ds, sp, 0, &src);
    if (!rc) rc = score_split(&m, ds, &src, &s);
    if (!rc && m.sensors && src.missing)
        lathe_log(LATHE_LOG_INFO, "anomaly", "%zu windows lack a channel: scored from the others", src.missing);
    cJSON *r = rc ? NULL : cJSON_CreateObject();
    if (!rc && !r) rc = lathe_fail(LATHE_ENOMEM, "report");
    if (!rc) rc = build_report(&m, &s, lathe_dataset_manifest(ds), r);
    if (!rc && m.sensors) cJSON_AddNumberToObject(r, "windows_missing_a_channel", (double)src.missing);
    if (!rc) {
        cJSON_AddStringToObject(r, "checkpoint", checkpoint);
        cJSON_AddStringToObject(r, "split", split);
        char title[4400];
        snprintf(title, sizeof title, "lathe eval: %s on %s", checkpoint, split);
        rc = lathe_mkdirs(out_dir);
        if (!rc) rc = write_report(ds, &m, &s, r, title, out_dir);
    }
    if (report && !rc) *report = r;
    else cJSON_Delete(r);
    scored_free(&s);
    ad_source_close(&src);
    lathe_dataset_close(ds);
    ad_model_free(&m);
    return rc;
}
