/* analyze_internal.h - what the parts of `lathe analyze` share: the per-sample record of the
 * pixel pass, the running statistics and the JSON builders. Not installed. */
#ifndef LATHE_ANALYZE_INTERNAL_H
#define LATHE_ANALYZE_INTERNAL_H
#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "analyze.h"
#include "image_stats.h"
#include "libcore/io/shard.h"
#include "neardup.h"

/* Running mean/variance (Welford), min and max. */
typedef struct {
    uint64_t n;
    double mean, m2, min, max;
} running_stat;

/* One sample, as the pixel pass leaves it (56 bytes). */
typedef struct {
    uint64_t content; /* XXH64 of the stored (decoded) pixels: equal => exact duplicate */
    uint64_t phash;   /* image_stats.h */
    float brightness, contrast, sharpness, rgb[3], bright_share, dark_share;
    int32_t label;    /* image-level class, -1 none */
    uint16_t nboxes;  /* saturates at 65535 */
    uint8_t split;    /* LATHE_SPLIT_* */
    uint8_t ok;       /* 1 when the sample was read and measured */
} analyze_record;

typedef struct {
    const lathe_analyze_opts *opts;
    lathe_dataset *ds;
    const lathe_manifest *m;
    uint64_t n;
    analyze_record *rec;     /* n */
    uint8_t *thumbs;         /* (n, 16 x 16) near-duplicate thumbnails (image_stats.h) */
    int good_class;          /* index of the class named good/ok/normal, -1 none */
    int channels;            /* S, 0 without sensors */
    float *sensor_feat;      /* (n, S, 2): window mean and standard deviation, NaN when none */
    uint32_t *nan_mask;      /* (n): bit ch set when channel ch (< 32) of the sample holds a NaN */
    running_stat *chan;      /* (S): every finite value of the channel */
    uint64_t *chan_nan, *chan_values; /* (S): NaN values, all values */
    cJSON *corrupt_errors;   /* [{"sample", "message"}], the first 100 */
    char fatal[512];         /* the first system failure (a full disk, out of file descriptors): not
                                a corrupt sample, the run's error (set once, under analyze_fatal) */
    double search_seconds, verify_seconds; /* near-duplicate stages 1-2 and 3 */
} analyze_ctx;

void running_add(running_stat *s, double x);
/* {"count", "mean", "std", "min", "max"} (population std; nulls when empty). */
cJSON *running_json(const running_stat *s);

/* {"count", "mean", "std", "min", "p05", "median", "p95", "max", "histogram"?}: exact quantiles
 * with linear interpolation (numpy's default) of v (sorted in place). With bins > 0 also
 * "histogram": {"edges": bins+1, "counts": bins} over [lo, hi] (lo == hi: from the data's range);
 * log_bins != 0 bins log10(v) for v > 0 (then edges are log10 values). */
cJSON *summary_json(double *v, size_t n, int bins, double lo, double hi, int log_bins);
/* {"edges": [...], "counts": [...]} of v over [lo, hi] in bins equal bins (last bin closed). */
cJSON *histogram_json(const double *v, size_t n, int bins, double lo, double hi);
cJSON *u64_array(const uint64_t *v, size_t n);
/* "defective" in the sense of sensors' separation: has boxes or an image label other than good. */
int record_defective(const analyze_ctx *c, const analyze_record *r);

/* Per-thread scratch of the pixel readers (zero-initialized, freed with analyze_scratch_free). */
typedef struct {
    uint8_t *frame;          /* pixels store: one stored image */
    float *luma;             /* at least the content rectangle's pixels */
    size_t luma_cap;
} analyze_scratch;
int analyze_scratch_luma(analyze_scratch *sc, size_t n);
void analyze_scratch_free(analyze_scratch *sc);
/* Reads sample i (its meta into s, which the caller frees whatever the result) and points *px at
 * its (H, W, 3) pixels with their content rectangle; sc->luma then holds room for the rectangle.
 * Returns 0 or the reader's error (the message names the sample). */
int analyze_read_image(analyze_ctx *c, uint64_t i, analyze_scratch *sc, lathe_dataset_sample *s, const uint8_t **px,
                       int *w, int *h, lathe_rect *rect);

/* The parts of the analysis, each adding its keys to root. Return 0 or a negative LATHE_E* code. */
int analyze_labels(analyze_ctx *c, cJSON *root, cJSON *findings);
int analyze_images(analyze_ctx *c, cJSON *root, cJSON *findings);
int analyze_duplicates(analyze_ctx *c, cJSON *findings);
int analyze_sensors(analyze_ctx *c, cJSON *root, cJSON *findings);
/* Sensor accumulators: allocated for the dataset's channels (0 or -LATHE_ENOMEM), fed one sample
 * at a time in index order by the label pass, freed. */
int sensors_init(analyze_ctx *c);
void sensors_add(analyze_ctx *c, const lathe_dataset_sample *s);
void sensors_free(analyze_ctx *c);

/* A finding: {"count": 0, "samples": [], "description": ...} added under findings[kind]. */
cJSON *finding_add(cJSON *findings, const char *kind, const char *description);
/* Appends sample id to a finding (counted always, listed up to max_listed). */
void finding_sample(const analyze_ctx *c, cJSON *finding, uint64_t sample);
/* A failed read of sample i: the system's failure (-LATHE_EIO, -LATHE_ENOMEM) is kept as the run's
 * error and returns 1; anything else is the sample's own fault and returns 0. */
int analyze_system_failure(analyze_ctx *c, int rc);
/* Marks a finding count without sample ids (for class- or channel-level findings). */
void finding_count(cJSON *finding, double count);

#endif
