/* gate.c - baseline comparison of evaluation reports (gate.h). */
#include "gate.h"

#include <math.h>
#include <stdio.h>

#include "libcore/base/config.h"

static void check(cJSON *out, const char *metric, const cJSON *base, const cJSON *now, double max_drop) {
    if (!cJSON_IsNumber(base) || base->valuedouble < 0) return; /* not in the baseline, or undefined */
    double b = base->valuedouble, v = cJSON_IsNumber(now) ? now->valuedouble : -1;
    if (v < 0) v = 0; /* a metric that vanished counts as zero */
    if (b - v > max_drop + 1e-12) {
        cJSON *r = cJSON_CreateObject();
        cJSON_AddStringToObject(r, "metric", metric);
        cJSON_AddNumberToObject(r, "baseline", b);
        cJSON_AddNumberToObject(r, "value", v);
        cJSON_AddNumberToObject(r, "drop", b - v);
        cJSON_AddItemToArray(out, r);
    }
}

cJSON *lathe_gate_compare(const cJSON *report, const cJSON *baseline, double max_drop) {
    cJSON *out = cJSON_CreateArray();
    const cJSON *bm = cJSON_GetObjectItemCaseSensitive(baseline, "metrics"), *m;
    const cJSON *rm = cJSON_GetObjectItemCaseSensitive(report, "metrics");
    cJSON_ArrayForEach(m, bm) check(out, m->string, m, cJSON_GetObjectItemCaseSensitive(rm, m->string), max_drop);
    check(out, "accuracy", cJSON_GetObjectItemCaseSensitive(baseline, "accuracy"),
          cJSON_GetObjectItemCaseSensitive(report, "accuracy"), max_drop);
    static const char *const anomaly[] = {"image_auroc", "pixel_auroc", "pro"};
    for (int k = 0; k < 3; k++)
        check(out, anomaly[k], cJSON_GetObjectItemCaseSensitive(baseline, anomaly[k]),
              cJSON_GetObjectItemCaseSensitive(report, anomaly[k]), max_drop);
    check(out, "macro.f1", cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(baseline, "macro"), "f1"),
          cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(report, "macro"), "f1"), max_drop);
    const cJSON *c, *rc = cJSON_GetObjectItemCaseSensitive(report, "classes");
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(baseline, "classes")) {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(c, "name");
        if (!cJSON_IsString(n)) continue;
        const cJSON *now = lathe_json_named(rc, n->valuestring);
        static const char *const keys[] = {"AP", "f1", "image_auroc"};
        for (int k = 0; k < 3; k++) {
            char metric[256];
            snprintf(metric, sizeof metric, "%s[%s]", keys[k], n->valuestring);
            check(out, metric, cJSON_GetObjectItemCaseSensitive(c, keys[k]), cJSON_GetObjectItemCaseSensitive(now, keys[k]),
                  max_drop);
        }
    }
    return out;
}

void lathe_gate_print(const cJSON *regressions, double max_drop, FILE *out) {
    fprintf(out, "lathe eval: %d metric(s) fell by more than %g:\n", cJSON_GetArraySize(regressions), max_drop);
    fprintf(out, "  %-28s %10s %10s %10s\n", "metric", "baseline", "now", "drop");
    const cJSON *r;
    cJSON_ArrayForEach(r, regressions)
        fprintf(out, "  %-28s %10.4f %10.4f %10.4f\n", cJSON_GetObjectItemCaseSensitive(r, "metric")->valuestring,
                cJSON_GetObjectItemCaseSensitive(r, "baseline")->valuedouble,
                cJSON_GetObjectItemCaseSensitive(r, "value")->valuedouble,
                cJSON_GetObjectItemCaseSensitive(r, "drop")->valuedouble);
}
