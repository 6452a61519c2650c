/* analyze_sensors.c - sensor channels in `lathe analyze`: statistics of every value, NaN share,
 * drift along sample order, and how well each channel separates good from defective samples
 * (AUROC of the per-sample window mean and standard deviation); the sensor findings. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "analyze_internal.h"
#include "libcore/base/error.h"

int sensors_init(analyze_ctx *c) {
    c->channels = c->m->sensor_steps > 0 ? c->m->sensor_channels : 0;
    if (!c->channels) return 0;
    size_t s = (size_t)c->channels;
    c->sensor_feat = malloc(c->n * s * 2 * sizeof *c->sensor_feat);
    c->nan_mask = calloc(c->n, sizeof *c->nan_mask);
    c->chan = calloc(s, sizeof *c->chan);
    c->chan_nan = calloc(s, sizeof *c->chan_nan);
    c->chan_values = calloc(s, sizeof *c->chan_values);
    if (!c->sensor_feat || !c->nan_mask || !c->chan || !c->chan_nan || !c->chan_values)
        return lathe_fail(LATHE_ENOMEM, "sensor statistics");
    for (size_t i = 0; i < c->n * s * 2; i++) c->sensor_feat[i] = NAN;
    return 0;
}

void sensors_free(analyze_ctx *c) {
    free(c->sensor_feat), free(c->nan_mask), free(c->chan), free(c->chan_nan), free(c->chan_values);
}

void sensors_add(analyze_ctx *c, const lathe_dataset_sample *s) {
    if (!c->channels || !s->sensors) return;
    int steps = s->sensor_steps, width = s->sensor_channels;
    float *feat = c->sensor_feat + s->index * (size_t)c->channels * 2;
    for (int ch = 0; ch < c->channels && ch < width; ch++) {
        double sum = 0, sum2 = 0;
        int k = 0;
        for (int t = 0; t < steps; t++) {
            float v = s->sensors[(size_t)t * width + ch];
            c->chan_values[ch]++;
            if (isnan(v)) {
                c->chan_nan[ch]++;
                if (ch < 32) c->nan_mask[s->index] |= 1u << ch;
                continue;
            }
            running_add(&c->chan[ch], v);
            sum += v, sum2 += (double)v * v, k++;
        }
        if (!k) continue;
        double mean = sum / k, var = sum2 / k - mean * mean;
        feat[2 * ch] = (float)mean;
        feat[2 * ch + 1] = (float)sqrt(var > 0 ? var : 0);
    }
}

typedef struct {
    float v;
    uint8_t positive;
} scored;

static int cmp_scored(const void *x, const void *y) {
    float a = ((const scored *)x)->v, b = ((const scored *)y)->v;
    return (a > b) - (a < b);
}

/* Area under the ROC curve of score v for positives against negatives (Mann-Whitney U with tied
 * ranks averaged); NaN when either class is empty. */
static double auroc(scored *s, size_t n) {
    if (n) qsort(s, n, sizeof *s, cmp_scored);
    double rank_sum = 0, npos = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && s[j].v == s[i].v) j++;
        double rank = (double)(i + 1 + j) / 2; /* mean of ranks i+1 .. j */
        for (size_t k = i; k < j; k++)
            if (s[k].positive) rank_sum += rank, npos++;
        i = j;
    }
    double nneg = (double)n - npos;
    if (npos == 0 || nneg == 0) return NAN;
    return (rank_sum - npos * (npos + 1) / 2) / (npos * nneg);
}

static void number_or_null(cJSON *o, const char *key, double v) {
    if (isfinite(v)) cJSON_AddNumberToObject(o, key, v);
    else cJSON_AddNullToObject(o, key);
}

/* least-squares slope of the per-sample means against t = i / (n - 1), in channel std units */
static double drift_of(const analyze_ctx *c, int ch, double std) {
    double st = 0, sm = 0, stt = 0, stm = 0, k = 0;
    double scale = c->n > 1 ? 1.0 / (double)(c->n - 1) : 0;
    for (uint64_t i = 0; i < c->n; i++) {
        float m = c->sensor_feat[(i * c->channels + ch) * 2];
        if (isnan(m)) continue;
        double t = (double)i * scale;
        st += t, sm += m, stt += t * t, stm += t * m, k++;
    }
    double den = k * stt - st * st;
    if (k < 2 || den <= 0 || !(std > 0)) return 0;
    return (k * stm - st * sm) / den / std;
}

int analyze_sensors(analyze_ctx *c, cJSON *root, cJSON *findings) {
    if (!c->channels) {
        cJSON_AddNullToObject(root, "sensors");
        return 0;
    }
    scored *sc = malloc(c->n * sizeof *sc);
    if (!sc) return lathe_fail(LATHE_ENOMEM, "sensor separation");
    cJSON *sensors = cJSON_AddObjectToObject(root, "sensors");
    cJSON_AddNumberToObject(sensors, "steps", c->m->sensor_steps);
    uint64_t ngood = 0, ndef = 0;
    for (uint64_t i = 0; i < c->n; i++) record_defective(c, &c->rec[i]) ? ndef++ : ngood++;
    cJSON_AddNumberToObject(sensors, "good_samples", (double)ngood);
    cJSON_AddNumberToObject(sensors, "defective_samples", (double)ndef);
    cJSON *list = cJSON_AddArrayToObject(sensors, "channels");
    cJSON *fnan = finding_add(findings, "sensor-nan", ""), *fconst = finding_add(findings, "sensor-constant", "");
    cJSON *fdrift = finding_add(findings, "sensor-drift", "");
    cJSON *nan_ch = cJSON_AddArrayToObject(fnan, "channels"), *const_ch = cJSON_AddArrayToObject(fconst, "channels");
    cJSON *drift_ch = cJSON_AddArrayToObject(fdrift, "channels");
    uint32_t listed_nan = 0; /* channels whose NaN samples are listed */
    for (int ch = 0; ch < c->channels; ch++) {
        const running_stat *rs = &c->chan[ch];
        const char *name = c->m->sensor_names[ch];
        cJSON *o = running_json(rs);
        cJSON_AddStringToObject(o, "name", name);
        double nan_share = c->chan_values[ch] ? (double)c->chan_nan[ch] / (double)c->chan_values[ch] : 0;
        cJSON_AddNumberToObject(o, "nan_share", nan_share);
        double std = rs->n ? sqrt(rs->m2 / (double)rs->n) : 0;
        double drift = drift_of(c, ch, std);
        cJSON_AddNumberToObject(o, "drift", drift);
        double auc[2];
        for (int f = 0; f < 2; f++) {
            size_t k = 0;
            for (uint64_t i = 0; i < c->n; i++) {
                float v = c->sensor_feat[(i * c->channels + ch) * 2 + f];
                if (!isnan(v)) sc[k++] = (scored){v, (uint8_t)record_defective(c, &c->rec[i])};
            }
            auc[f] = auroc(sc, k);
        }
        number_or_null(o, "auroc_mean", auc[0]);
        number_or_null(o, "auroc_std", auc[1]);
        double sep0 = isnan(auc[0]) ? -1 : fabs(auc[0] - 0.5) * 2, sep1 = isnan(auc[1]) ? -1 : fabs(auc[1] - 0.5) * 2;
        number_or_null(o, "separation", fmax(sep0, sep1) >= 0 ? fmax(sep0, sep1) : NAN);
        cJSON_AddStringToObject(o, "separation_feature", sep1 > sep0 ? "std" : "mean");
        cJSON_AddItemToArray(list, o);
        if (nan_share > c->opts->sensor_nan) {
            cJSON_AddItemToArray(nan_ch, cJSON_CreateString(name));
            if (ch < 32) listed_nan |= 1u << ch;
        }
        if (rs->n > 0 && rs->max == rs->min) cJSON_AddItemToArray(const_ch, cJSON_CreateString(name));
        if (fabs(drift) > c->opts->drift) cJSON_AddItemToArray(drift_ch, cJSON_CreateString(name));
    }
    for (uint64_t i = 0; i < c->n && listed_nan; i++)
        if (c->nan_mask[i] & listed_nan) finding_sample(c, fnan, i);
    /* channel-level findings count channels; sensor-nan counts channels, lists their samples */
    finding_count(fnan, cJSON_GetArraySize(nan_ch));
    finding_count(fconst, cJSON_GetArraySize(const_ch));
    finding_count(fdrift, cJSON_GetArraySize(drift_ch));
    free(sc);
    return 0;
}
