/* anomaly.c - the anomaly head's model (anomaly_internal.h): options, the feature model, its memory
 * on disk, patch features and anomaly maps. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anomaly_internal.h"
#include "libcore/base/config.h"
#include "libcore/base/error.h"
#include "libcore/io/safetensors.h"
#include "libcore/nn/checkpoint.h"
#include "libcore/nn/trainer.h"
#include "memory.h"
#include "sensor_features.h"

/* The sensor head's shape: a row of channels x features per window, nothing to build. */
static int init_sensors(ad_model *m, const lathe_manifest *man) {
    if (!man || man->sensor_steps < 2 || man->sensor_channels < 1)
        return lathe_fail(LATHE_EINVAL, "anomaly.input sensors: the dataset holds no sensor windows");
    m->fc = man->sensor_channels * LATHE_SENSOR_FEATURES, m->fh = m->fw = 1;
    return 0;
}

/* The spec's model: its input, and the feature map it ends in. */
static int build_feature_model(ad_model *m, const cJSON *spec) {
    const cJSON *model = lathe_config_get(spec, "model");
    if (!cJSON_IsObject(model)) return lathe_fail(LATHE_EINVAL, "the spec has no model mapping (the feature model)");
    int rc = lathe_graph_build(model, m->batch, (uint64_t)lathe_config_num(spec, "train.seed", 0), &m->g);
    if (rc) return rc;
    lathe_graph_input(m->g, &m->c, &m->h, &m->w);
    lathe_layer_view v;
    lathe_graph_layer(m->g, lathe_graph_nlayers(m->g) - 1, &v);
    m->fc = v.c, m->fh = v.h, m->fw = v.w;
    if (v.type == LATHE_LAYER_DETECT || v.type == LATHE_LAYER_LINEAR || v.type == LATHE_LAYER_GAP ||
        v.type == LATHE_LAYER_VOCAB || (m->fh == 1 && m->fw == 1))
        return lathe_fail(LATHE_EINVAL, "the anomaly head's model must end in a feature map (C x H x W), not in "
                                        "layer %s (%d x %d x %d)", v.name, v.c, v.h, v.w);
    return 0;
}

const char *ad_method_name(const ad_model *m) { return m->method == AD_GAUSSIAN ? "gaussian" : "patchcore"; }

int ad_model_init(ad_model *m, const cJSON *spec, const lathe_manifest *man) {
    memset(m, 0, sizeof *m);
    m->threshold = NAN;
    const char *input = lathe_config_str(spec, "anomaly.input", "image");
    m->sensors = !strcmp(input, "sensors") ? 1 : !strcmp(input, "image") ? 0 : -1;
    if (m->sensors < 0) return lathe_fail(LATHE_EINVAL, "anomaly.input: image or sensors, not %s", input);
    const char *method = lathe_config_str(spec, "anomaly.method", "patchcore");
    m->method = !strcmp(method, "patchcore") ? AD_PATCHCORE : !strcmp(method, "gaussian") ? AD_GAUSSIAN : -1;
    if (m->method < 0) return lathe_fail(LATHE_EINVAL, "anomaly.method: patchcore or gaussian, not %s", method);
    m->k = (int)lathe_config_num(spec, "anomaly.k", 1);
    m->blur = lathe_config_num(spec, "anomaly.blur", 4);
    m->batch = (int)lathe_config_num(spec, "train.batch", LATHE_TRAIN_BATCH_DEFAULT);
    m->mean = (float)lathe_config_num(spec, "data.mean", 0.5), m->std = (float)lathe_config_num(spec, "data.std", 0.25);
    if (m->k < 1 || m->k > 16) return lathe_fail(LATHE_EINVAL, "anomaly.k: 1..16 neighbours, not %d", m->k);
    if (!(m->blur >= 0 && m->blur <= 64)) return lathe_fail(LATHE_EINVAL, "anomaly.blur: 0..64 pixels, not %g", m->blur);
    if (m->batch < 1) return lathe_fail(LATHE_EINVAL, "train.batch must be >= 1");
    if (!(m->std > 0)) return lathe_fail(LATHE_EINVAL, "data.std must be > 0");
    int rc = m->sensors ? init_sensors(m, man) : build_feature_model(m, spec);
    if (rc) return rc;
    int dims = (int)lathe_config_num(spec, "anomaly.dims", 0);
    if (!dims && m->method == AD_GAUSSIAN) dims = m->fc < 100 ? m->fc : 100; /* PaDiM keeps 100 of resnet18's 448 */
    if (dims < 0 || dims > 4096) return lathe_fail(LATHE_EINVAL, "anomaly.dims: 1..4096 (0: all %d), not %d", m->fc, dims);
    m->dims = dims && dims < m->fc ? dims : m->fc;
    if (m->method == AD_GAUSSIAN && m->dims > LATHE_GAUSS_MAX_DIMS)
        return lathe_fail(LATHE_EINVAL, "anomaly.dims: a Gaussian per position of %d features is too wide (at most %d)",
                          m->dims, LATHE_GAUSS_MAX_DIMS);
    if (m->dims < m->fc && (rc = lathe_random_projection(m->fc, m->dims, (uint64_t)lathe_config_num(spec, "train.seed", 0), &m->proj)))
        return rc;
    m->feat = malloc(sizeof(float) * (size_t)m->batch * m->fh * m->fw * m->dims);
    return m->feat ? 0 : lathe_fail(LATHE_ENOMEM, "patch features of a batch");
}

int ad_model_device(ad_model *m, const cJSON *spec) {
    return m->g ? lathe_graph_set_device(m->g, lathe_config_str(spec, "train.device", "auto")) : 0;
}

void ad_model_free(ad_model *m) {
    lathe_graph_free(m->g);
    free(m->proj), free(m->bank), free(m->gmean), free(m->gchol), free(m->feat), free(m->fmean), free(m->fstd);
    memset(m, 0, sizeof *m);
}

int ad_features(ad_model *m, int n) {
    lathe_graph_set_train(m->g, 0);
    int rc = lathe_graph_forward(m->g, n, 0);
    if (rc) return rc;
    const float *out = lathe_graph_output(m->g, NULL);
    size_t P = (size_t)m->fh * m->fw;
    float *rows = m->proj ? malloc(sizeof(float) * P * m->fc) : NULL;
    if (m->proj && !rows) return lathe_fail(LATHE_ENOMEM, "patch features");
    for (int b = 0; b < n; b++) { /* NCHW -> one row of C per position, projected */
        const float *x = out + (size_t)b * m->fc * P;
        float *dst = m->proj ? rows : m->feat + (size_t)b * P * m->dims;
        for (size_t p = 0; p < P; p++)
            for (int c = 0; c < m->fc; c++) dst[p * m->fc + c] = x[(size_t)c * P + p];
        if (m->proj) lathe_project_rows(rows, P, m->fc, m->proj, m->dims, m->feat + (size_t)b * P * m->dims);
    }
    free(rows);
    return 0;
}

int ad_patch_scores(const ad_model *m, const float *feat, float *scores) {
    int P = m->fh * m->fw;
    if (m->method == AD_GAUSSIAN) {
        lathe_gauss_distance(m->gmean, m->gchol, P, m->dims, feat, scores);
        return 0;
    }
    return lathe_knn_distance(m->bank, m->nbank, feat, (size_t)P, m->dims, m->k, scores);
}

/* One pass of a normalized Gaussian along n values at stride s, edges mirrored (scipy's "reflect"). */
static void gauss_pass(float *x, int n, size_t s, const float *kern, int r, float *tmp) {
    for (int i = 0; i < n; i++) {
        double acc = 0;
        for (int t = -r; t <= r; t++) {
            int j = i + t;
            while (j < 0 || j >= n) j = j < 0 ? -j - 1 : 2 * n - j - 1;
            acc += kern[t + r] * x[(size_t)j * s];
        }
        tmp[i] = (float)acc;
    }
    for (int i = 0; i < n; i++) x[(size_t)i * s] = tmp[i];
}

float ad_map(const ad_model *m, const float *scores, int oh, int ow, float *map) {
    for (int y = 0; y < oh; y++) { /* bilinear, pixel centres aligned as PyTorch's align_corners=False */
        float fy = ((float)y + 0.5f) * (float)m->fh / (float)oh - 0.5f;
        fy = fy < 0 ? 0 : fy;
        int y0 = (int)fy, y1 = y0 + 1 < m->fh ? y0 + 1 : y0;
        float wy = fy - (float)y0;
        for (int x = 0; x < ow; x++) {
            float fx = ((float)x + 0.5f) * (float)m->fw / (float)ow - 0.5f;
            fx = fx < 0 ? 0 : fx;
            int x0 = (int)fx, x1 = x0 + 1 < m->fw ? x0 + 1 : x0;
            float wx = fx - (float)x0;
            const float *r0 = scores + (size_t)y0 * m->fw, *r1 = scores + (size_t)y1 * m->fw;
            map[(size_t)y * ow + x] = (1 - wy) * ((1 - wx) * r0[x0] + wx * r0[x1]) + wy * ((1 - wx) * r1[x0] + wx * r1[x1]);
        }
    }
    double sigma = m->blur * (double)oh / (double)m->h;
    if (sigma > 0.3) {
        int r = (int)ceil(4 * sigma); /* truncated at 4 sigma, as scipy.ndimage.gaussian_filter */
        float kern[1025], *tmp = malloc(sizeof(float) * (size_t)(oh > ow ? oh : ow));
        if (r > 512) r = 512;
        double sum = 0;
        for (int t = -r; t <= r; t++) sum += kern[t + r] = (float)exp(-0.5 * t * t / (sigma * sigma));
        for (int t = 0; t <= 2 * r; t++) kern[t] = (float)(kern[t] / sum);
        if (tmp) { /* without the scratch row the map stays unsmoothed: never wrong, only noisier */
            for (int y = 0; y < oh; y++) gauss_pass(map + (size_t)y * ow, ow, 1, kern, r, tmp);
            for (int x = 0; x < ow; x++) gauss_pass(map + x, oh, (size_t)ow, kern, r, tmp);
        }
        free(tmp);
    }
    float best = -INFINITY;
    for (size_t i = 0; i < (size_t)oh * ow; i++) best = map[i] > best ? map[i] : best;
    return best;
}

void ad_map_size(int h, int w, int *mh, int *mw) {
    int big = h > w ? h : w;
    double s = big > 256 ? 256.0 / big : 1;
    *mh = (int)lround(h * s), *mw = (int)lround(w * s);
    if (*mh < 1) *mh = 1;
    if (*mw < 1) *mw = 1;
}

float ad_score(const ad_model *m, const float *scores, int oh, int ow, float *map) {
    return m->sensors ? scores[0] : ad_map(m, scores, oh, ow, map);
}

int ad_model_load(ad_model *m, const char *checkpoint) {
    int rc = m->g ? lathe_checkpoint_load(checkpoint, m->g, NULL) : 0;
    if (rc) return rc;
    char path[4200];
    const char *slash = strrchr(checkpoint, '/');
    snprintf(path, sizeof path, "%.*smemory.safetensors", slash ? (int)(slash - checkpoint + 1) : 0, checkpoint);
    lathe_st_file *f;
    if ((rc = lathe_st_open(path, &f))) return rc;
    const char *method = lathe_st_meta(f, "method"), *thr = lathe_st_meta(f, "threshold");
    if (!method || strcmp(method, ad_method_name(m)))
        rc = lathe_fail(LATHE_EFORMAT, "%s: holds the memory of method %s, the spec says %s", path,
                        method ? method : "(none)", ad_method_name(m));
    m->threshold = thr ? strtof(thr, NULL) : NAN;
    size_t P = (size_t)m->fh * m->fw, D = (size_t)m->dims;
    for (size_t i = 0; !rc && i < lathe_st_count(f); i++) {
        int64_t shape[8];
        int rank;
        const char *name = lathe_st_name(f, i, NULL, shape, &rank);
        if (!strcmp(name, "bank") && m->method == AD_PATCHCORE) {
            if (rank != 2 || shape[1] != (int64_t)D || shape[0] < 1)
                rc = lathe_fail(LATHE_EFORMAT, "%s: the bank is not N x %zu", path, D);
            else if (!(m->bank = malloc(sizeof(float) * (size_t)shape[0] * D))) rc = lathe_fail(LATHE_ENOMEM, "bank");
            else m->nbank = (size_t)shape[0], rc = lathe_st_read_f32(f, "bank", m->bank, m->nbank * D);
        }
    }
    if (!rc && m->method == AD_PATCHCORE && !m->bank) rc = lathe_fail(LATHE_EFORMAT, "%s: no bank", path);
    if (!rc && (size_t)m->k > m->nbank && m->method == AD_PATCHCORE)
        rc = lathe_fail(LATHE_EINVAL, "anomaly.k is %d but the bank holds %zu patches", m->k, m->nbank);
    if (!rc && m->method == AD_GAUSSIAN) {
        m->gmean = malloc(sizeof(float) * P * D), m->gchol = malloc(sizeof(float) * P * D * D);
        rc = m->gmean && m->gchol ? lathe_st_read_f32(f, "mean", m->gmean, P * D) : lathe_fail(LATHE_ENOMEM, "Gaussians");
        if (!rc) rc = lathe_st_read_f32(f, "cholesky", m->gchol, P * D * D);
    }
    if (!rc && m->sensors) {
        m->fmean = malloc(sizeof(float) * (size_t)m->fc), m->fstd = malloc(sizeof(float) * (size_t)m->fc);
        rc = m->fmean && m->fstd ? lathe_st_read_f32(f, "feature_mean", m->fmean, (size_t)m->fc)
                                 : lathe_fail(LATHE_ENOMEM, "feature statistics");
        if (!rc) rc = lathe_st_read_f32(f, "feature_std", m->fstd, (size_t)m->fc);
        for (int k = 0; !rc && k < m->fc; k++)
            if (!(m->fstd[k] > 0) || !isfinite(m->fmean[k])) rc = lathe_fail(LATHE_EFORMAT, "%s: feature %d's statistics", path, k);
    }
    if (!rc && m->proj) { /* the projection is the seed's; the file's copy says it is the same one */
        float *saved = malloc(sizeof(float) * (size_t)m->fc * D);
        rc = saved ? lathe_st_read_f32(f, "projection", saved, (size_t)m->fc * D) : lathe_fail(LATHE_ENOMEM, "projection");
        if (!rc && memcmp(saved, m->proj, sizeof(float) * (size_t)m->fc * D))
            rc = lathe_fail(LATHE_EFORMAT, "%s: its projection is not the one train.seed gives", path);
        free(saved);
    }
    lathe_st_close(f);
    return rc;
}
