/* analyze_summary.c - the numbers `lathe analyze` reports about a distribution: running
 * statistics, exact quantiles and histograms, as JSON. */
#include <math.h>
#include <stdlib.h>

#include "analyze_internal.h"

void running_add(running_stat *s, double x) {
    if (!isfinite(x)) return;
    if (s->n == 0) s->min = s->max = x;
    if (x < s->min) s->min = x;
    if (x > s->max) s->max = x;
    s->n++;
    double d = x - s->mean;
    s->mean += d / (double)s->n;
    s->m2 += d * (x - s->mean);
}

static void add_number_or_null(cJSON *o, const char *key, int present, double v) {
    if (present && isfinite(v)) cJSON_AddNumberToObject(o, key, v);
    else cJSON_AddNullToObject(o, key);
}

cJSON *running_json(const running_stat *s) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "count", (double)s->n);
    add_number_or_null(o, "mean", s->n > 0, s->mean);
    add_number_or_null(o, "std", s->n > 0, s->n ? sqrt(s->m2 / (double)s->n) : 0);
    add_number_or_null(o, "min", s->n > 0, s->min);
    add_number_or_null(o, "max", s->n > 0, s->max);
    return o;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* numpy.percentile's default ("linear"): position q (n-1) between the two neighbours */
static double quantile(const double *sorted, size_t n, double q) {
    double pos = q * (double)(n - 1);
    size_t lo = (size_t)floor(pos);
    size_t hi = lo + 1 < n ? lo + 1 : lo;
    return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - (double)lo);
}

cJSON *histogram_json(const double *v, size_t n, int bins, double lo, double hi) {
    cJSON *o = cJSON_CreateObject();
    cJSON *edges = cJSON_AddArrayToObject(o, "edges");
    cJSON *counts = cJSON_AddArrayToObject(o, "counts");
    uint64_t *c = calloc((size_t)bins, sizeof *c);
    if (!c) return o;
    double width = (hi - lo) / bins;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(v[i]) || v[i] < lo || v[i] > hi) continue;
        int b = width > 0 ? (int)((v[i] - lo) / width) : 0;
        c[b >= bins ? bins - 1 : b]++;
    }
    for (int b = 0; b <= bins; b++) cJSON_AddItemToArray(edges, cJSON_CreateNumber(lo + width * b));
    for (int b = 0; b < bins; b++) cJSON_AddItemToArray(counts, cJSON_CreateNumber((double)c[b]));
    free(c);
    return o;
}

cJSON *summary_json(double *v, size_t n, int bins, double lo, double hi, int log_bins) {
    size_t k = 0; /* drop non-finite values */
    for (size_t i = 0; i < n; i++)
        if (isfinite(v[i])) v[k++] = v[i];
    n = k;
    if (n) qsort(v, n, sizeof *v, cmp_double);
    cJSON *o = cJSON_CreateObject();
    double sum = 0, sum2 = 0;
    for (size_t i = 0; i < n; i++) sum += v[i];
    double mean = n ? sum / (double)n : 0;
    for (size_t i = 0; i < n; i++) sum2 += (v[i] - mean) * (v[i] - mean);
    cJSON_AddNumberToObject(o, "count", (double)n);
    add_number_or_null(o, "mean", n > 0, mean);
    add_number_or_null(o, "std", n > 0, n ? sqrt(sum2 / (double)n) : 0);
    add_number_or_null(o, "min", n > 0, n ? v[0] : 0);
    add_number_or_null(o, "p05", n > 0, n ? quantile(v, n, 0.05) : 0);
    add_number_or_null(o, "median", n > 0, n ? quantile(v, n, 0.5) : 0);
    add_number_or_null(o, "p95", n > 0, n ? quantile(v, n, 0.95) : 0);
    add_number_or_null(o, "max", n > 0, n ? v[n - 1] : 0);
    if (bins > 0) {
        if (log_bins) { /* v is sorted: the positive values are a suffix */
            size_t first = 0;
            while (first < n && v[first] <= 0) first++;
            for (size_t i = first; i < n; i++) v[i] = log10(v[i]);
            v += first, n -= first;
        }
        if (lo == hi) {
            lo = n ? floor(v[0]) : 0;
            hi = n ? ceil(v[n - 1]) : 1;
            if (hi <= lo) hi = lo + 1;
        }
        cJSON *h = histogram_json(v, n, bins, lo, hi);
        if (log_bins) cJSON_AddBoolToObject(h, "log10", 1);
        cJSON_AddItemToObject(o, "histogram", h);
    }
    return o;
}

cJSON *u64_array(const uint64_t *v, size_t n) {
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber((double)v[i]));
    return a;
}

cJSON *finding_add(cJSON *findings, const char *kind, const char *description) {
    cJSON *f = cJSON_GetObjectItemCaseSensitive(findings, kind);
    if (f) return f;
    f = cJSON_AddObjectToObject(findings, kind);
    cJSON_AddNumberToObject(f, "count", 0);
    cJSON_AddStringToObject(f, "description", description);
    cJSON_AddArrayToObject(f, "samples");
    return f;
}

void finding_sample(const analyze_ctx *c, cJSON *finding, uint64_t sample) {
    cJSON *count = cJSON_GetObjectItemCaseSensitive(finding, "count");
    cJSON_SetNumberValue(count, count->valuedouble + 1);
    cJSON *samples = cJSON_GetObjectItemCaseSensitive(finding, "samples");
    if (c->opts->max_listed == 0 || cJSON_GetArraySize(samples) < c->opts->max_listed)
        cJSON_AddItemToArray(samples, cJSON_CreateNumber((double)sample));
}

void finding_count(cJSON *finding, double count) {
    cJSON_SetNumberValue(cJSON_GetObjectItemCaseSensitive(finding, "count"), count);
}

int record_defective(const analyze_ctx *c, const analyze_record *r) {
    return r->nboxes > 0 || (r->label >= 0 && r->label != c->good_class);
}
