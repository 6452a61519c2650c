/* gate.h - the CI accuracy gate: a report against a baseline report of the same kind; every metric
 * that fell by more than max_drop (absolute) is a regression. Metrics compared: detection
 * `metrics.*` and each class's `AP`; classification `accuracy`, `macro.f1` and each class's `f1`;
 * anomaly `image_auroc`, `pixel_auroc`, `pro` and each class's `image_auroc` (classes matched by
 * name). A metric the baseline lacks or leaves undefined (-1, null) is skipped. */
#ifndef LATHE_EVAL_GATE_H
#define LATHE_EVAL_GATE_H
#include <cjson/cJSON.h>
#include <stdio.h>
#ifdef __cplusplus
extern "C" {
#endif

/* The regressions as a JSON list of {metric, baseline, value, drop} (empty when none) into
 * *regressions (cJSON_Delete it). Returns 0, or -LATHE_EFORMAT when the baseline cannot gate this
 * report: not an evaluation report, one of another kind (a classifier's against a detector's), two
 * classes of one name on either side, or no metric it defines; or -LATHE_ENOMEM. */
int lathe_gate_compare(const cJSON *report, const cJSON *baseline, double max_drop, cJSON **regressions);
/* Prints the regressions as a table. */
void lathe_gate_print(const cJSON *regressions, double max_drop, FILE *out);

#ifdef __cplusplus
}
#endif
#endif
