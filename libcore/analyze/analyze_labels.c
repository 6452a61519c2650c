/* analyze_labels.c - what `lathe analyze` learns from labels and text: samples and objects per
 * split, image-level label balance, per-class box statistics (in source pixels, COCO size
 * classes), box-centre heatmap, class co-occurrence, the box findings and the text vocabulary.
 * One sequential pass over the small arrays (the reader keeps them in memory per shard). */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "analyze_internal.h"
#include "libcore/base/error.h"
#include "libcore/base/hashmap.h"

enum { SMALL, MEDIUM, LARGE, NSIZES };
/* log10 of the box area in source pixels, 0..7 in 28 bins; log2 of the aspect, -4..4 in 32 bins */
enum { AREA_BINS = 28, ASPECT_BINS = 32 };

static void bin_add(uint64_t *hist, int bins, double lo, double hi, double v) {
    if (!isfinite(v)) return;
    int b = (int)floor((v - lo) / (hi - lo) * bins);
    hist[b < 0 ? 0 : b >= bins ? bins - 1 : b]++;
}

static cJSON *fixed_histogram(const uint64_t *hist, int bins, double lo, double hi, const char *scale) {
    cJSON *o = cJSON_CreateObject();
    cJSON *edges = cJSON_AddArrayToObject(o, "edges");
    for (int b = 0; b <= bins; b++) cJSON_AddItemToArray(edges, cJSON_CreateNumber(lo + (hi - lo) * b / bins));
    cJSON_AddItemToObject(o, "counts", u64_array(hist, (size_t)bins));
    cJSON_AddStringToObject(o, "scale", scale);
    return o;
}

typedef struct {
    running_stat width, height, area, aspect; /* source pixels */
    uint64_t sizes[NSIZES];
    uint64_t boxes[LATHE_NSPLITS], images[LATHE_NSPLITS], labels[LATHE_NSPLITS];
} class_acc;

typedef struct {
    int nclasses, bins;
    class_acc *cls;     /* nclasses + 1: the last one gathers every box */
    uint64_t *heat;     /* (bins, bins): rows y, columns x of the box centre in the content */
    uint64_t area_hist[AREA_BINS], aspect_hist[ASPECT_BINS];
    uint64_t *cooc;     /* (nclasses, nclasses) images holding both classes */
    uint64_t unlabeled[LATHE_NSPLITS], samples[LATHE_NSPLITS], bad_labels;
    lathe_hashmap *words;
    char **word_list;   /* index -> word, as inserted */
    uint64_t *word_count;
    size_t nwords, words_cap;
    uint64_t text_samples, empty_text;
    double *text_len;   /* words per sample with text */
} label_acc;

static double iou(const lathe_box *a, const lathe_box *b) {
    double ix = fmin(a->x2, b->x2) - fmax(a->x1, b->x1), iy = fmin(a->y2, b->y2) - fmax(a->y1, b->y1);
    if (ix <= 0 || iy <= 0) return 0;
    double inter = ix * iy;
    double ua = (double)(a->x2 - a->x1) * (a->y2 - a->y1) + (double)(b->x2 - b->x1) * (b->y2 - b->y1) - inter;
    return ua > 0 ? inter / ua : 0;
}

static int add_word(label_acc *a, const char *w) {
    size_t idx;
    if (lathe_hashmap_get(a->words, w, &idx)) {
        a->word_count[idx]++;
        return 0;
    }
    if (a->nwords == a->words_cap) {
        size_t cap = a->words_cap ? a->words_cap * 2 : 1024;
        char **wl = realloc(a->word_list, cap * sizeof *wl);
        if (wl) a->word_list = wl;
        uint64_t *wc = realloc(a->word_count, cap * sizeof *wc);
        if (wc) a->word_count = wc;
        if (!wl || !wc) return lathe_fail(LATHE_ENOMEM, "vocabulary");
        a->words_cap = cap;
    }
    char *copy = strdup(w);
    if (!copy || lathe_hashmap_put(a->words, w, a->nwords)) {
        free(copy);
        return lathe_fail(LATHE_ENOMEM, "vocabulary");
    }
    a->word_list[a->nwords] = copy;
    a->word_count[a->nwords++] = 1;
    return 0;
}

/* Words are runs of letters and digits (ASCII, lower-cased) or of bytes >= 0x80 (UTF-8). */
static int add_text(label_acc *a, const char *text, uint64_t sample) {
    if (!text) return 0;
    a->text_samples++;
    char word[128];
    size_t len = 0, count = 0;
    for (const unsigned char *p = (const unsigned char *)text;; p++) {
        if (*p && (isalnum(*p) || *p >= 0x80)) {
            if (len + 1 < sizeof word) word[len++] = (char)tolower(*p);
            continue;
        }
        if (len) {
            word[len] = 0;
            int rc = add_word(a, word);
            if (rc) return rc;
            count++, len = 0;
        }
        if (!*p) break;
    }
    if (count == 0) a->empty_text++;
    a->text_len[sample] = (double)count;
    return 0;
}

typedef struct {
    cJSON *degenerate, *tiny, *border, *dbl;
} box_findings;

static void add_boxes(analyze_ctx *c, label_acc *a, const lathe_dataset_sample *s, uint8_t *present,
                      box_findings *bf) {
    const lathe_meta *mt = &s->meta;
    int w = c->m->store == LATHE_STORE_PIXELS ? c->m->width : mt->orig_width;
    int h = c->m->store == LATHE_STORE_PIXELS ? c->m->height : mt->orig_height;
    lathe_rect rect = lathe_content_rect(w, h, mt->orig_width, mt->orig_height, mt->scale_x, mt->scale_y, mt->pad_x,
                                         mt->pad_y, mt->tile_x, mt->tile_y);
    double sx = mt->scale_x > 0 ? mt->scale_x : 1, sy = mt->scale_y > 0 ? mt->scale_y : 1;
    int degenerate = 0, tiny = 0, border = 0, dbl = 0;
    for (size_t k = 0; k < s->nboxes; k++) {
        const lathe_box *b = &s->boxes[k];
        if (b->label < 0 || b->label >= a->nclasses) {
            a->bad_labels++;
            continue;
        }
        present[b->label] = 1;
        double bw = b->x2 - b->x1, bh = b->y2 - b->y1; /* stored pixels */
        double ws = bw / sx, hs = bh / sy, area = ws * hs;
        int size = area < 32 * 32 ? SMALL : area < 96 * 96 ? MEDIUM : LARGE;
        if (area > 0) bin_add(a->area_hist, AREA_BINS, 0, 7, log10(area));
        if (ws > 0 && hs > 0) bin_add(a->aspect_hist, ASPECT_BINS, -4, 4, log2(ws / hs));
        class_acc *targets[2] = {&a->cls[b->label], &a->cls[a->nclasses]};
        for (int t = 0; t < 2; t++) {
            running_add(&targets[t]->width, ws);
            running_add(&targets[t]->height, hs);
            running_add(&targets[t]->area, area);
            if (hs > 0) running_add(&targets[t]->aspect, ws / hs);
            targets[t]->sizes[size]++;
            targets[t]->boxes[s->split]++;
        }
        degenerate |= bw < 1 || bh < 1;
        tiny |= bw >= 1 && bh >= 1 && fmin(bw, bh) < c->opts->tiny_box;
        border |= b->x1 <= rect.x0 + c->opts->border_px || b->y1 <= rect.y0 + c->opts->border_px ||
                  b->x2 >= rect.x1 - c->opts->border_px || b->y2 >= rect.y1 - c->opts->border_px;
        int rw = rect.x1 - rect.x0, rh = rect.y1 - rect.y0;
        if (rw > 0 && rh > 0) {
            int gx = (int)floor(((b->x1 + b->x2) / 2 - rect.x0) / rw * a->bins);
            int gy = (int)floor(((b->y1 + b->y2) / 2 - rect.y0) / rh * a->bins);
            gx = gx < 0 ? 0 : gx >= a->bins ? a->bins - 1 : gx;
            gy = gy < 0 ? 0 : gy >= a->bins ? a->bins - 1 : gy;
            a->heat[gy * a->bins + gx]++;
        }
        for (size_t j = k + 1; j < s->nboxes && !dbl; j++)
            dbl = s->boxes[j].label == b->label && iou(b, &s->boxes[j]) >= c->opts->double_iou;
    }
    if (degenerate) finding_sample(c, bf->degenerate, s->index);
    if (tiny) finding_sample(c, bf->tiny, s->index);
    if (border) finding_sample(c, bf->border, s->index);
    if (dbl) finding_sample(c, bf->dbl, s->index);
}

static cJSON *splits_json(const uint64_t *v) {
    cJSON *o = cJSON_CreateObject();
    uint64_t total = 0;
    for (int s = 0; s < LATHE_NSPLITS; s++) cJSON_AddNumberToObject(o, lathe_split_name(s), (double)v[s]), total += v[s];
    cJSON_AddNumberToObject(o, "total", (double)total);
    return o;
}

static cJSON *box_stats_json(const class_acc *k) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "width", running_json(&k->width));
    cJSON_AddItemToObject(o, "height", running_json(&k->height));
    cJSON_AddItemToObject(o, "area", running_json(&k->area));
    cJSON_AddItemToObject(o, "aspect", running_json(&k->aspect));
    cJSON *sz = cJSON_AddObjectToObject(o, "sizes");
    cJSON_AddNumberToObject(sz, "small", (double)k->sizes[SMALL]);
    cJSON_AddNumberToObject(sz, "medium", (double)k->sizes[MEDIUM]);
    cJSON_AddNumberToObject(sz, "large", (double)k->sizes[LARGE]);
    return o;
}

static int cmp_double_asc(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

/* class findings: empty-class (no instance, or none in train) and rare-class */
static void class_findings(const analyze_ctx *c, const label_acc *a, cJSON *findings) {
    cJSON *empty = finding_add(findings, "empty-class", ""), *rare = finding_add(findings, "rare-class", "");
    cJSON *empty_list = cJSON_AddArrayToObject(empty, "classes"), *rare_list = cJSON_AddArrayToObject(rare, "classes");
    double *count = malloc((size_t)(a->nclasses ? a->nclasses : 1) * sizeof *count);
    double *sorted = malloc((size_t)(a->nclasses ? a->nclasses : 1) * sizeof *sorted);
    if (!count || !sorted) goto out;
    for (int k = 0; k < a->nclasses; k++) {
        const class_acc *x = &a->cls[k];
        count[k] = 0;
        for (int s = 0; s < LATHE_NSPLITS; s++) count[k] += (double)(x->boxes[s] + x->labels[s]);
        sorted[k] = count[k];
    }
    qsort(sorted, (size_t)a->nclasses, sizeof *sorted, cmp_double_asc);
    double median = a->nclasses ? (a->nclasses % 2 ? sorted[a->nclasses / 2]
                                                    : (sorted[a->nclasses / 2 - 1] + sorted[a->nclasses / 2]) / 2)
                                : 0;
    int nempty = 0, nrare = 0;
    for (int k = 0; k < a->nclasses; k++) {
        const class_acc *x = &a->cls[k];
        int in_train = x->boxes[LATHE_SPLIT_TRAIN] + x->labels[LATHE_SPLIT_TRAIN] > 0;
        if (count[k] == 0 || !in_train) {
            cJSON_AddItemToArray(empty_list, cJSON_CreateString(c->m->class_names[k]));
            nempty++;
        } else if (count[k] < c->opts->rare_ratio * median) {
            cJSON_AddItemToArray(rare_list, cJSON_CreateString(c->m->class_names[k]));
            nrare++;
        }
    }
    finding_count(empty, nempty);
    finding_count(rare, nrare);
out:
    free(count);
    free(sorted);
}

typedef struct {
    size_t idx;
    uint64_t count;
    const char *word;
} word_rank;

static int cmp_rank(const void *x, const void *y) {
    const word_rank *a = x, *b = y;
    if (a->count != b->count) return a->count > b->count ? -1 : 1;
    return strcmp(a->word, b->word);
}

static cJSON *text_json(label_acc *a, uint64_t n) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "samples_with_text", (double)a->text_samples);
    cJSON_AddNumberToObject(o, "empty", (double)a->empty_text);
    cJSON_AddNumberToObject(o, "vocabulary", (double)a->nwords);
    uint64_t total = 0;
    for (size_t i = 0; i < a->nwords; i++) total += a->word_count[i];
    cJSON_AddNumberToObject(o, "words", (double)total);
    word_rank *r = malloc((a->nwords ? a->nwords : 1) * sizeof *r);
    cJSON *top = cJSON_AddArrayToObject(o, "top_words");
    if (r) {
        for (size_t i = 0; i < a->nwords; i++) r[i] = (word_rank){i, a->word_count[i], a->word_list[i]};
        qsort(r, a->nwords, sizeof *r, cmp_rank);
        for (size_t i = 0; i < a->nwords && i < 25; i++) {
            cJSON *pair = cJSON_CreateArray();
            cJSON_AddItemToArray(pair, cJSON_CreateString(r[i].word));
            cJSON_AddItemToArray(pair, cJSON_CreateNumber((double)r[i].count));
            cJSON_AddItemToArray(top, pair);
        }
        free(r);
    }
    size_t k = 0; /* lengths of the samples that have text (NaN marks the others) */
    for (uint64_t i = 0; i < n; i++)
        if (!isnan(a->text_len[i])) a->text_len[k++] = a->text_len[i];
    cJSON_AddItemToObject(o, "length_words", summary_json(a->text_len, k, 20, 0, 0, 0));
    return o;
}

static void free_acc(label_acc *a) {
    free(a->cls);
    free(a->heat);
    free(a->cooc);
    lathe_hashmap_free(a->words);
    for (size_t i = 0; i < a->nwords; i++) free(a->word_list[i]);
    free(a->word_list);
    free(a->word_count);
    free(a->text_len);
}

static cJSON *matrix_json(const uint64_t *v, int rows, int cols) {
    cJSON *m = cJSON_CreateArray();
    for (int r = 0; r < rows; r++) cJSON_AddItemToArray(m, u64_array(v + (size_t)r * cols, (size_t)cols));
    return m;
}

static void write_json(analyze_ctx *c, label_acc *a, cJSON *root, double *per_image) {
    cJSON *splits = cJSON_AddObjectToObject(root, "splits");
    for (int s = 0; s < LATHE_NSPLITS; s++) {
        cJSON *o = cJSON_AddObjectToObject(splits, lathe_split_name(s));
        cJSON_AddNumberToObject(o, "samples", (double)a->samples[s]);
        size_t k = 0;
        for (uint64_t i = 0; i < c->n; i++)
            if (c->rec[i].split == s) per_image[k++] = c->rec[i].nboxes;
        cJSON_AddItemToObject(o, "objects_per_image", summary_json(per_image, k, 0, 0, 0, 0));
        cJSON_AddNumberToObject(o, "unlabeled", (double)a->unlabeled[s]);
    }
    cJSON *classes = cJSON_AddArrayToObject(root, "classes");
    for (int k = 0; k < a->nclasses; k++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "index", k);
        cJSON_AddStringToObject(o, "name", c->m->class_names[k]);
        cJSON_AddItemToObject(o, "images", splits_json(a->cls[k].images));
        cJSON_AddItemToObject(o, "image_labels", splits_json(a->cls[k].labels));
        cJSON_AddItemToObject(o, "boxes", splits_json(a->cls[k].boxes));
        cJSON_AddItemToObject(o, "box_stats", box_stats_json(&a->cls[k]));
        cJSON_AddItemToArray(classes, o);
    }
    cJSON *boxes = cJSON_AddObjectToObject(root, "boxes");
    cJSON_AddItemToObject(boxes, "count", splits_json(a->cls[a->nclasses].boxes));
    cJSON_AddItemToObject(boxes, "stats", box_stats_json(&a->cls[a->nclasses]));
    for (uint64_t i = 0; i < c->n; i++) per_image[i] = c->rec[i].nboxes;
    cJSON_AddItemToObject(boxes, "per_image", summary_json(per_image, c->n, 20, 0, 0, 0));
    cJSON_AddNumberToObject(boxes, "bad_labels", (double)a->bad_labels);
    cJSON_AddItemToObject(boxes, "area_histogram", fixed_histogram(a->area_hist, AREA_BINS, 0, 7, "log10"));
    cJSON_AddItemToObject(boxes, "aspect_histogram", fixed_histogram(a->aspect_hist, ASPECT_BINS, -4, 4, "log2"));
    cJSON *heat = cJSON_AddObjectToObject(boxes, "center_heatmap");
    cJSON_AddNumberToObject(heat, "bins", a->bins);
    cJSON_AddItemToObject(heat, "counts", matrix_json(a->heat, a->bins, a->bins));
    cJSON *co = cJSON_AddObjectToObject(root, "cooccurrence");
    cJSON *names = cJSON_AddArrayToObject(co, "classes");
    for (int k = 0; k < a->nclasses; k++) cJSON_AddItemToArray(names, cJSON_CreateString(c->m->class_names[k]));
    cJSON_AddItemToObject(co, "counts", matrix_json(a->cooc, a->nclasses, a->nclasses));
    cJSON *labels = cJSON_AddObjectToObject(root, "image_labels");
    cJSON_AddItemToObject(labels, "unlabeled", splits_json(a->unlabeled));
    if (c->m->has_text) cJSON_AddItemToObject(root, "text", text_json(a, c->n));
    else cJSON_AddNullToObject(root, "text");
}

/* A sample whose pixels read but whose boxes, meta, sensors or text do not (a checksum mismatch):
 * corrupt too, with the reader's message. */
static void corrupt_later(analyze_ctx *c, cJSON *corrupt, uint64_t i) {
    c->rec[i].ok = 0;
    finding_sample(c, corrupt, i);
    cJSON *errors = cJSON_GetObjectItemCaseSensitive(corrupt, "errors");
    if (cJSON_GetArraySize(errors) < 100) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "sample", (double)i);
        cJSON_AddStringToObject(e, "message", lathe_last_error());
        cJSON_AddItemToArray(errors, e);
    }
}

int analyze_labels(analyze_ctx *c, cJSON *root, cJSON *findings) {
    label_acc a = {.nclasses = c->m->nclasses, .bins = c->opts->heatmap_bins};
    int nc = a.nclasses;
    a.cls = calloc((size_t)nc + 1, sizeof *a.cls);
    a.heat = calloc((size_t)a.bins * a.bins, sizeof *a.heat);
    a.cooc = calloc((size_t)(nc ? nc * nc : 1), sizeof *a.cooc);
    a.words = lathe_hashmap_create();
    a.text_len = malloc(c->n * sizeof *a.text_len);
    uint8_t *present = calloc((size_t)nc + 1, 1);
    double *per_image = malloc(c->n * sizeof *per_image);
    int rc = 0;
    if (!a.cls || !a.heat || !a.cooc || !a.words || !a.text_len || !present || !per_image)
        rc = lathe_fail(LATHE_ENOMEM, "label statistics");
    box_findings bf = {finding_add(findings, "degenerate-box", ""), finding_add(findings, "tiny-box", ""),
                       finding_add(findings, "border-box", ""), finding_add(findings, "double-label", "")};
    unsigned what = LATHE_READ_BOXES | LATHE_READ_META | (c->m->has_text ? LATHE_READ_TEXT : 0) |
                    (c->channels ? LATHE_READ_SENSORS : 0);
    cJSON *corrupt = cJSON_GetObjectItemCaseSensitive(findings, "corrupt");
    for (uint64_t i = 0; i < c->n && !rc; i++) {
        a.text_len[i] = NAN;
        lathe_dataset_sample s;
        int got = lathe_dataset_get(c->ds, i, what, &s);
        if (got && analyze_system_failure(c, got)) {
            rc = lathe_fail(LATHE_EIO, "%s", c->fatal);
            break;
        }
        if (got) { /* pixels read, but its boxes, sensors or text do not */
            if (c->rec[i].ok) corrupt_later(c, corrupt, i);
            continue;
        }
        c->rec[i].nboxes = (uint16_t)(s.nboxes > 65535 ? 65535 : s.nboxes);
        a.samples[s.split]++;
        memset(present, 0, (size_t)nc);
        if (s.label >= 0 && s.label < nc) {
            a.cls[s.label].labels[s.split]++;
            present[s.label] = 1;
        } else if (s.label < 0) a.unlabeled[s.split]++;
        else a.bad_labels++;
        add_boxes(c, &a, &s, present, &bf);
        for (int k = 0; k < nc; k++) {
            if (!present[k]) continue;
            a.cls[k].images[s.split]++;
            for (int j = 0; j < nc; j++) a.cooc[(size_t)k * nc + j] += present[j];
        }
        sensors_add(c, &s);
        rc = add_text(&a, s.text, i);
        size_t shard = s.shard;
        lathe_dataset_sample_free(&s);
        if (i + 1 == lathe_dataset_shard_first(c->ds, shard + 1)) /* one shard's arrays at a time */
            lathe_dataset_drop_caches(c->ds, shard);
    }
    if (!rc) {
        class_findings(c, &a, findings);
        write_json(c, &a, root, per_image);
    }
    free(present);
    free(per_image);
    free_acc(&a);
    return rc;
}
