/* analyze.h - `lathe analyze`: statistics and quality findings of a lathe dataset, as one JSON
 * document (keys in docs/FORMAT.md, "analysis.json"), and the comparison of two such documents.
 * Streaming: image data passes through once, on all cores; what is kept is a record of a few dozen
 * bytes per sample (plus two floats per sensor channel), never pixels. */
#ifndef LATHE_ANALYZE_ANALYZE_H
#define LATHE_ANALYZE_ANALYZE_H
#include <cjson/cJSON.h>

#include "libcore/io/dataset.h"
#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int threads;          /* worker threads, 0 = OpenMP's default */
    int radius;           /* near-duplicate candidates: Hamming radius on the 64-bit hash, 0..15 */
    double similarity;    /* near-duplicates: correlation of the 48x48 luma grids (best of 5 scales) at least this */
    double tiny_box;      /* a box whose shorter side is under this many stored pixels is tiny */
    double border_px;     /* a box within this many pixels of the image content's edge is on the border */
    double double_iou;    /* two boxes of one class in one image with IoU >= this are a double label */
    double dark_mean, bright_mean; /* mean luma below / above: under- / overexposed */
    double clip_share;    /* share of pixels at Y <= 5 (or >= 250) above which: under- (over-)exposed */
    double blur_ratio;    /* sharpness under blur_ratio x the dataset median: blurred */
    double rare_ratio;    /* class count under rare_ratio x the median class count: rare-class */
    double sensor_nan;    /* NaN share of a channel above which: sensor-nan */
    double drift;         /* |drift| of a channel (in standard deviations) above which: sensor-drift */
    int heatmap_bins;     /* box-centre heatmap is bins x bins, 2..64 */
    int max_listed;       /* sample ids listed per finding at most (count is always exact); 0 = all */
} lathe_analyze_opts;

/* The defaults documented in docs/CLI.md. */
void lathe_analyze_defaults(lathe_analyze_opts *o);
/* Checks ranges; returns 0 or -LATHE_EINVAL naming the option. */
int lathe_analyze_check(const lathe_analyze_opts *o);

/* Analyzes every sample of ds. A sample that cannot be read (corrupt chunk, undecodable image)
 * becomes a "corrupt" finding, not a failure. Returns 0 with *out (free with cJSON_Delete), or
 * -LATHE_EINVAL (bad options), -LATHE_ENOMEM, -LATHE_EFORMAT (the dataset has no samples). */
int lathe_analyze_run(lathe_dataset *ds, const lathe_analyze_opts *o, cJSON **out);

/* Adds to `analysis` a "compare" object describing how it differs from `reference` (another
 * analysis document): class mix, box sizes, brightness, sensor channels; the shifts beyond the
 * documented thresholds also become findings (class-mix-shift, box-size-shift, brightness-shift,
 * sensor-shift). Returns 0, -LATHE_EFORMAT (reference is not an analysis) or -LATHE_ENOMEM. */
int lathe_analyze_compare(cJSON *analysis, const cJSON *reference, const char *reference_name);

/* Finding kinds, in report order, and whether kind is one ("any" is accepted by callers too). */
extern const char *const lathe_analyze_kinds[];
int lathe_analyze_is_kind(const char *kind);
/* The count of a finding kind in an analysis document (0 when absent). */
double lathe_analyze_finding_count(const cJSON *analysis, const char *kind);

/* Writes report.html (self-contained: plots inline as PNG data URIs), report.md and plots/ (PNG)
 * into dir. Returns 0, -LATHE_EIO or -LATHE_ENOMEM. */
int lathe_analyze_write_reports(const cJSON *analysis, const char *dir);

#ifdef __cplusplus
}
#endif
#endif
