/* anomaly_source.c - the samples an anomaly pass reads (anomaly_internal.h): images through the
 * classification loader and the feature model, or sensor windows through their summary features,
 * standardized by the good training windows' statistics. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "anomaly_internal.h"
#include "libcore/base/error.h"
#include "memory.h"
#include "sensor_features.h"

static int drop_defective(void *ctx, uint64_t sample, int32_t label) {
    (void)ctx, (void)sample;
    return label != 0;
}

/* Every labelled sample of the split (good ones only with good_only): its raw sensor features. */
static int open_sensors(ad_source *s, lathe_dataset *ds, int split, int good_only) {
    ad_model *m = s->m;
    uint64_t total = lathe_dataset_count(ds);
    size_t cap = 0;
    int rc = 0;
    for (uint64_t i = 0; !rc && i < total; i++) {
        lathe_dataset_sample smp;
        rc = lathe_dataset_get(ds, i, LATHE_READ_SENSORS, &smp);
        int take = !rc && smp.split == split && smp.label >= 0 && (!good_only || smp.label == 0);
        if (take && s->n == cap) {
            cap = cap ? 2 * cap : 256;
            float *raw = realloc(s->raw, sizeof(float) * cap * m->fc);
            int32_t *labels = raw ? realloc(s->labels, sizeof(int32_t) * cap) : NULL;
            uint64_t *index = labels ? realloc(s->index, sizeof(uint64_t) * cap) : NULL;
            if (raw) s->raw = raw;
            if (labels) s->labels = labels;
            if (index) s->index = index;
            if (!index) rc = lathe_fail(LATHE_ENOMEM, "sensor features of %zu windows", cap);
        }
        if (take && !rc) {
            float *f = s->raw + s->n * (size_t)m->fc;
            if (smp.sensors && smp.sensor_channels * LATHE_SENSOR_FEATURES == m->fc) {
                int gone = lathe_sensor_features(smp.sensors, smp.sensor_steps, smp.sensor_channels, f);
                if (gone < 0) rc = gone;
                s->missing += gone > 0;
            } else { /* no window at all: every feature missing, scored as the typical good window */
                for (int k = 0; k < m->fc; k++) f[k] = NAN;
                s->missing++;
            }
            s->labels[s->n] = smp.label, s->index[s->n] = i, s->n++;
        }
        lathe_dataset_sample_free(&smp);
    }
    return rc;
}

int ad_source_open(ad_model *m, lathe_dataset *ds, int split, int good_only, ad_source *s) {
    memset(s, 0, sizeof *s);
    s->m = m;
    if (m->sensors) return open_sensors(s, ds, split, good_only);
    lathe_loader_opts o = {.split = split, .c = m->c, .h = m->h, .w = m->w, .mean = m->mean, .std = m->std};
    int rc = lathe_loader_create(ds, &o, &s->l);
    if (!rc && good_only) lathe_loader_filter(s->l, drop_defective, NULL);
    return rc;
}

uint64_t ad_source_size(const ad_source *s) { return s->l ? lathe_loader_size(s->l) : s->n; }

int ad_source_batch(ad_source *s, uint64_t first, int n, int32_t *labels, uint64_t *samples) {
    ad_model *m = s->m;
    if (s->l) {
        int got = lathe_loader_batch(s->l, 0, first, n, lathe_graph_input(m->g, NULL, NULL, NULL), labels);
        if (got < 0) return got;
        if (samples) lathe_loader_samples(s->l, 0, first, got, samples);
        int rc = ad_features(m, got);
        return rc ? rc : got;
    }
    int got = first >= s->n ? 0 : (int)(s->n - first < (uint64_t)n ? s->n - first : (uint64_t)n);
    float *z = m->proj ? malloc(sizeof(float) * (size_t)m->fc) : NULL;
    if (m->proj && !z) return lathe_fail(LATHE_ENOMEM, "sensor features");
    for (int b = 0; b < got; b++) { /* standardized; a missing feature sits at the good windows' mean */
        const float *r = s->raw + (first + (uint64_t)b) * (size_t)m->fc;
        float *dst = m->proj ? z : m->feat + (size_t)b * m->dims;
        for (int k = 0; k < m->fc; k++) dst[k] = isfinite(r[k]) ? (r[k] - m->fmean[k]) / m->fstd[k] : 0;
        if (m->proj) lathe_project_rows(z, 1, m->fc, m->proj, m->dims, m->feat + (size_t)b * m->dims);
        labels[b] = s->labels[first + (uint64_t)b];
        if (samples) samples[b] = s->index[first + (uint64_t)b];
    }
    free(z);
    return got;
}

void ad_source_close(ad_source *s) {
    lathe_loader_free(s->l);
    free(s->raw), free(s->labels), free(s->index);
    memset(s, 0, sizeof *s);
}

int ad_sensor_standardization(ad_model *m, const ad_source *s) {
    m->fmean = calloc((size_t)m->fc, sizeof(float)), m->fstd = calloc((size_t)m->fc, sizeof(float));
    if (!m->fmean || !m->fstd) return lathe_fail(LATHE_ENOMEM, "feature statistics");
    for (int k = 0; k < m->fc; k++) {
        double sum = 0, sq = 0, cnt = 0;
        for (size_t i = 0; i < s->n; i++) {
            double v = s->raw[i * (size_t)m->fc + k];
            if (isfinite(v)) sum += v, cnt += 1;
        }
        double mean = cnt ? sum / cnt : 0;
        for (size_t i = 0; i < s->n; i++) {
            double v = s->raw[i * (size_t)m->fc + k];
            if (isfinite(v)) sq += (v - mean) * (v - mean);
        }
        double sd = cnt > 1 ? sqrt(sq / (cnt - 1)) : 0;
        m->fmean[k] = (float)mean;
        m->fstd[k] = (float)(sd > 1e-6 * (1 + fabs(mean)) ? sd : 1e-6 * (1 + fabs(mean))); /* a constant feature */
    }
    return 0;
}
