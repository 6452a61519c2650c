/* classify.h - classification metrics from a confusion matrix: accuracy, per-class precision,
 * recall, F1 and support, macro averages; as JSON (report.json keys in docs/FORMAT.md) and as a
 * self-contained HTML report with the confusion matrix drawn. */
#ifndef LATHE_EVAL_CLASSIFY_H
#define LATHE_EVAL_CLASSIFY_H
#include <cjson/cJSON.h>
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif

/* confusion (k, k): rows true class, columns predicted. names: k class names. */
cJSON *lathe_classify_report(const uint64_t *confusion, int k, const char *const *names, double loss);
/* Writes report.json and report.html (title on top) into dir. Returns 0 or -LATHE_EIO. */
int lathe_classify_write(const cJSON *report, const char *title, const char *dir);

#ifdef __cplusplus
}
#endif
#endif
