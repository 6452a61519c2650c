/* analyze_images.c - image statistics (brightness, contrast, sharpness, colour, clipped shares;
 * overall with histograms and per split) and the exposure and blur findings of `lathe analyze`. */
#include <math.h>
#include <stdlib.h>

#include "analyze_internal.h"
#include "libcore/base/error.h"

enum { F_BRIGHT, F_CONTRAST, F_SHARP, F_R, F_G, F_B, F_BSHARE, F_DSHARE, NFIELDS };
static const char *const field_names[NFIELDS] = {"brightness", "contrast", "sharpness", "red", "green", "blue",
                                                 "bright_share", "dark_share"};

static double field(const analyze_record *r, int f) {
    switch (f) {
    case F_BRIGHT: return r->brightness;
    case F_CONTRAST: return r->contrast;
    case F_SHARP: return r->sharpness;
    case F_R: case F_G: case F_B: return r->rgb[f - F_R];
    case F_BSHARE: return r->bright_share;
    default: return r->dark_share;
    }
}

/* values of field f of the measured samples of split (-1: all) into v; returns how many */
static size_t gather(const analyze_ctx *c, int f, int split, double *v) {
    size_t k = 0;
    for (uint64_t i = 0; i < c->n; i++)
        if (c->rec[i].ok && (split < 0 || c->rec[i].split == split)) v[k++] = field(&c->rec[i], f);
    return k;
}

static cJSON *field_summary(const analyze_ctx *c, int f, int split, double *v, int with_histogram) {
    size_t k = gather(c, f, split, v);
    int bins = with_histogram ? (f == F_BSHARE || f == F_DSHARE ? 20 : 32) : 0;
    double lo = 0, hi = f == F_BSHARE || f == F_DSHARE ? 1 : 255;
    if (f == F_CONTRAST) hi = 128;
    if (f == F_SHARP) lo = hi = 0; /* log10 bins over the data's range */
    return summary_json(v, k, bins, lo, hi, f == F_SHARP);
}

int analyze_images(analyze_ctx *c, cJSON *root, cJSON *findings) {
    double *v = malloc(c->n * sizeof *v);
    if (!v) return lathe_fail(LATHE_ENOMEM, "image statistics");
    cJSON *images = cJSON_AddObjectToObject(root, "images");
    for (int f = 0; f < NFIELDS; f++) cJSON_AddItemToObject(images, field_names[f], field_summary(c, f, -1, v, 1));
    cJSON *per_split = cJSON_AddObjectToObject(images, "per_split");
    for (int s = 0; s < LATHE_NSPLITS; s++) {
        cJSON *o = cJSON_AddObjectToObject(per_split, lathe_split_name(s));
        for (int f = 0; f < NFIELDS; f++) cJSON_AddItemToObject(o, field_names[f], field_summary(c, f, s, v, 0));
    }
    /* blur is relative to this dataset's median sharpness */
    cJSON *sharp = cJSON_GetObjectItemCaseSensitive(images, "sharpness");
    const cJSON *med = cJSON_GetObjectItemCaseSensitive(sharp, "median");
    double blur_below = cJSON_IsNumber(med) ? c->opts->blur_ratio * med->valuedouble : 0;
    cJSON_AddNumberToObject(images, "blur_threshold", blur_below);
    cJSON *over = finding_add(findings, "overexposed", ""), *under = finding_add(findings, "underexposed", "");
    cJSON *blur = finding_add(findings, "blurred", "");
    for (uint64_t i = 0; i < c->n; i++) {
        const analyze_record *r = &c->rec[i];
        if (!r->ok) continue;
        if (r->brightness > c->opts->bright_mean || r->bright_share > c->opts->clip_share) finding_sample(c, over, i);
        if (r->brightness < c->opts->dark_mean || r->dark_share > c->opts->clip_share) finding_sample(c, under, i);
        if (r->sharpness < blur_below) finding_sample(c, blur, i);
    }
    free(v);
    return 0;
}
