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

/* Returns the regressions as a JSON list of {metric, baseline, value, drop} (empty when none). */
cJSON *lathe_gate_compare(const cJSON *report, const cJSON *baseline, double max_drop);
/* Prints the regressions as a table. */
void lathe_gate_print(const cJSON *regressions, double max_drop, FILE *out);

#ifdef __cplusplus
}
#endif
#endif
