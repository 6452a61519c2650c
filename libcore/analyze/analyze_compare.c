/* analyze_compare.c - `lathe analyze A --compare B`: how analysis A differs from reference B in
 * class mix, box sizes, brightness and sensor channels, from the two documents alone. */
#include <math.h>

#include "analyze_internal.h"
#include "libcore/base/config.h"
#include "libcore/base/error.h"

static const cJSON *at(const cJSON *o, const char *a, const char *b, const char *c) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, a);
    if (b) x = cJSON_GetObjectItemCaseSensitive(x, b);
    if (c) x = cJSON_GetObjectItemCaseSensitive(x, c);
    return x;
}

static double num(const cJSON *x) { return cJSON_IsNumber(x) ? x->valuedouble : NAN; }

static void put(cJSON *o, const char *key, double v) {
    if (isfinite(v)) cJSON_AddNumberToObject(o, key, v);
    else cJSON_AddNullToObject(o, key);
}

/* instances (boxes + image labels) of each class name, and their total */
static double class_total(const cJSON *cls) {
    return num(at(cls, "boxes", "total", NULL)) + num(at(cls, "image_labels", "total", NULL));
}

static double all_instances(const cJSON *classes) {
    double t = 0;
    const cJSON *k;
    cJSON_ArrayForEach(k, classes) t += class_total(k);
    return t;
}

/* shares by class name over the union of both class lists; returns the total variation distance */
static double class_mix(cJSON *out, const cJSON *ca, const cJSON *cb) {
    double ta = all_instances(ca), tb = all_instances(cb), tv = 0;
    cJSON *list = cJSON_AddArrayToObject(out, "classes");
    const cJSON *lists[2] = {ca, cb};
    for (int side = 0; side < 2; side++) {
        const cJSON *k;
        cJSON_ArrayForEach(k, lists[side]) {
            const char *name = cJSON_GetObjectItemCaseSensitive(k, "name")->valuestring;
            if (side == 1 && lathe_json_named(ca, name)) continue; /* already listed from A */
            const cJSON *a = lathe_json_named(ca, name), *b = lathe_json_named(cb, name);
            double sa = a && ta > 0 ? class_total(a) / ta : 0, sb = b && tb > 0 ? class_total(b) / tb : 0;
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "name", name);
            put(o, "share", sa);
            put(o, "reference_share", sb);
            put(o, "change", sa - sb);
            cJSON_AddItemToArray(list, o);
            tv += fabs(sa - sb);
        }
    }
    tv /= 2;
    put(out, "total_variation", tv);
    return tv;
}

/* A list of named things (classes, sensor channels) to match by name: each an object with a string
 * name, no name twice. Returns 0 or -LATHE_EFORMAT naming the list of doc. */
static int check_named(const cJSON *list, const char *what, const char *doc) {
    const char *repeated;
    int k = lathe_json_names_problem(list, &repeated);
    if (k < 0) return 0;
    return repeated ? lathe_fail(LATHE_EFORMAT, "%s: two %ss are named %s (they are matched by name)", doc, what, repeated)
                    : lathe_fail(LATHE_EFORMAT, "%s: %s %d has no name", doc, what, k);
}

/* How far mean a moved from reference mean b, in reference standard deviations s: against a
 * constant reference (s 0) any move is infinitely far. NAN when a number is missing. */
static double shift_in_std(double a, double b, double s) {
    if (isnan(a) || isnan(b) || isnan(s)) return NAN;
    if (s > 0) return (a - b) / s;
    return a == b ? 0 : a > b ? INFINITY : -INFINITY;
}

static void mark(cJSON *findings, const char *kind, int hit, const char *what) {
    cJSON *f = finding_add(findings, kind, "");
    cJSON *items = cJSON_GetObjectItemCaseSensitive(f, "items");
    if (!items) items = cJSON_AddArrayToObject(f, "items");
    if (hit) {
        cJSON_AddItemToArray(items, cJSON_CreateString(what));
        finding_count(f, cJSON_GetArraySize(items));
    }
}

int lathe_analyze_compare(cJSON *analysis, const cJSON *reference, const char *reference_name) {
    if (!cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(reference, "lathe_analysis")) ||
        !cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(reference, "classes")))
        return lathe_fail(LATHE_EFORMAT, "%s is not a lathe analysis", reference_name);
    const cJSON *ref_channels = at(reference, "sensors", "channels", NULL);
    int bad = check_named(at(reference, "classes", NULL, NULL), "class", reference_name);
    if (!bad && ref_channels) bad = check_named(ref_channels, "sensor channel", reference_name);
    if (!bad && num(at(reference, "images", "brightness", "std")) < 0)
        bad = lathe_fail(LATHE_EFORMAT, "%s: images.brightness.std is negative", reference_name);
    const cJSON *ch;
    cJSON_ArrayForEach(ch, ref_channels) if (!bad && num(cJSON_GetObjectItemCaseSensitive(ch, "std")) < 0) bad =
        lathe_fail(LATHE_EFORMAT, "%s: sensor channel %s has a negative std", reference_name,
                   cJSON_GetObjectItemCaseSensitive(ch, "name")->valuestring);
    if (bad) return bad;
    cJSON *findings = cJSON_GetObjectItemCaseSensitive(analysis, "findings");
    cJSON *cmp = cJSON_CreateObject();
    if (!cmp || !findings) return lathe_fail(LATHE_ENOMEM, "comparison");
    cJSON_AddStringToObject(cmp, "reference", reference_name);
    put(cmp, "samples", num(at(analysis, "samples", NULL, NULL)));
    put(cmp, "reference_samples", num(at(reference, "samples", NULL, NULL)));

    cJSON *mix = cJSON_AddObjectToObject(cmp, "class_mix");
    double tv = class_mix(mix, at(analysis, "classes", NULL, NULL), at(reference, "classes", NULL, NULL));
    mark(findings, "class-mix-shift", tv > 0.1, "class shares");

    cJSON *boxes = cJSON_AddObjectToObject(cmp, "box_area");
    double aa = num(cJSON_GetObjectItemCaseSensitive(at(analysis, "boxes", "stats", "area"), "mean"));
    double ab = num(cJSON_GetObjectItemCaseSensitive(at(reference, "boxes", "stats", "area"), "mean"));
    put(boxes, "mean", aa);
    put(boxes, "reference_mean", ab);
    put(boxes, "ratio", ab > 0 ? aa / ab : NAN);
    static const char *const sizes[] = {"small", "medium", "large"};
    for (int s = 0; s < 3; s++) {
        const cJSON *za = at(analysis, "boxes", "stats", "sizes"), *zb = at(reference, "boxes", "stats", "sizes");
        double ta = 0, tb = 0;
        for (int k = 0; k < 3; k++) {
            ta += num(cJSON_GetObjectItemCaseSensitive(za, sizes[k]));
            tb += num(cJSON_GetObjectItemCaseSensitive(zb, sizes[k]));
        }
        double na = num(cJSON_GetObjectItemCaseSensitive(za, sizes[s]));
        double nb = num(cJSON_GetObjectItemCaseSensitive(zb, sizes[s]));
        char key[40];
        snprintf(key, sizeof key, "%s_share", sizes[s]);
        put(boxes, key, ta > 0 ? na / ta : NAN);
        snprintf(key, sizeof key, "reference_%s_share", sizes[s]);
        put(boxes, key, tb > 0 ? nb / tb : NAN);
    }
    mark(findings, "box-size-shift", ab > 0 && aa > 0 && fabs(log(aa / ab)) > log(1.5), "mean box area");

    cJSON *bright = cJSON_AddObjectToObject(cmp, "brightness");
    double ma = num(at(analysis, "images", "brightness", "mean")), mb = num(at(reference, "images", "brightness", "mean"));
    double sb = num(at(reference, "images", "brightness", "std"));
    put(bright, "mean", ma);
    put(bright, "reference_mean", mb);
    put(bright, "median", num(at(analysis, "images", "brightness", "median")));
    put(bright, "reference_median", num(at(reference, "images", "brightness", "median")));
    double shift = shift_in_std(ma, mb, sb);
    put(bright, "shift_std", shift); /* null when infinite: JSON has no infinity */
    mark(findings, "brightness-shift", fabs(shift) > 0.5, "mean brightness");

    cJSON *sens = cJSON_AddArrayToObject(cmp, "sensors");
    cJSON_ArrayForEach(ch, at(analysis, "sensors", "channels", NULL)) {
        const char *name = cJSON_GetObjectItemCaseSensitive(ch, "name")->valuestring;
        const cJSON *rc = lathe_json_named(ref_channels, name); /* names are unique (check_named) */
        if (!rc) continue;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", name);
        double a = num(cJSON_GetObjectItemCaseSensitive(ch, "mean")), b = num(cJSON_GetObjectItemCaseSensitive(rc, "mean"));
        double s = num(cJSON_GetObjectItemCaseSensitive(rc, "std"));
        put(o, "mean", a);
        put(o, "reference_mean", b);
        put(o, "nan_share", num(cJSON_GetObjectItemCaseSensitive(ch, "nan_share")));
        put(o, "reference_nan_share", num(cJSON_GetObjectItemCaseSensitive(rc, "nan_share")));
        double sh = shift_in_std(a, b, s);
        put(o, "shift_std", sh);
        cJSON_AddItemToArray(sens, o);
        mark(findings, "sensor-shift", fabs(sh) > 1.0, name);
    }
    cJSON_DeleteItemFromObjectCaseSensitive(analysis, "compare");
    cJSON_AddItemToObject(analysis, "compare", cmp);
    return 0;
}
