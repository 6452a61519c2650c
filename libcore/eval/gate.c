/* gate.c - baseline comparison of evaluation reports (gate.h). */
#include "gate.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libcore/base/config.h"
#include "libcore/base/error.h"

typedef struct {
    cJSON *out;      /* the regressions */
    double max_drop;
    int compared;    /* metrics the baseline defines */
} gate_run;

static void check(gate_run *g, const char *metric, const cJSON *base, const cJSON *now) {
    if (!cJSON_IsNumber(base) || base->valuedouble < 0) return; /* not in the baseline, or undefined */
    g->compared++;
    double b = base->valuedouble, v = cJSON_IsNumber(now) ? now->valuedouble : -1;
    if (v < 0) v = 0; /* a metric that vanished counts as zero */
    if (b - v > g->max_drop + 1e-12) {
        cJSON *r = cJSON_CreateObject();
        cJSON_AddStringToObject(r, "metric", metric);
        cJSON_AddNumberToObject(r, "baseline", b);
        cJSON_AddNumberToObject(r, "value", v);
        cJSON_AddNumberToObject(r, "drop", b - v);
        cJSON_AddItemToArray(g->out, r);
    }
}

/* What a report evaluates, from its keys: a detector's `metrics` object, a classifier's `accuracy`,
 * an anomaly head's `image_auroc`; NULL for none of them. */
static const char *report_kind(const cJSON *r) {
    if (cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(r, "metrics"))) return "detector";
    if (cJSON_GetObjectItemCaseSensitive(r, "image_auroc")) return "anomaly";
    if (cJSON_GetObjectItemCaseSensitive(r, "accuracy")) return "classifier";
    return NULL;
}

/* Classes are matched by name: each must have one, and no name may repeat. */
static int check_class_names(const cJSON *classes, const char *whose) {
    const char *repeated;
    if (lathe_json_names_problem(classes, &repeated) < 0) return 0;
    return repeated ? lathe_fail(LATHE_EFORMAT, "%s names two classes %s: the gate matches classes by name", whose, repeated)
                    : lathe_fail(LATHE_EFORMAT, "%s has a class without a name", whose);
}

int lathe_gate_compare(const cJSON *report, const cJSON *baseline, double max_drop, cJSON **regressions) {
    *regressions = NULL;
    const char *kind = report_kind(report), *base_kind = report_kind(baseline);
    if (!base_kind)
        return lathe_fail(LATHE_EFORMAT, "the baseline is not a lathe evaluation report (no metrics, accuracy or "
                                         "image_auroc)");
    if (kind && strcmp(kind, base_kind))
        return lathe_fail(LATHE_EFORMAT, "the baseline is a %s's report and this evaluation a %s's", base_kind, kind);
    const cJSON *base_classes = cJSON_GetObjectItemCaseSensitive(baseline, "classes");
    const cJSON *classes = cJSON_GetObjectItemCaseSensitive(report, "classes");
    int rc = check_class_names(base_classes, "the baseline");
    if (!rc) rc = check_class_names(classes, "this evaluation");
    if (rc) return rc;
    gate_run g = {cJSON_CreateArray(), max_drop, 0};
    if (!g.out) return lathe_fail(LATHE_ENOMEM, "gate");
    const cJSON *m, *rm = cJSON_GetObjectItemCaseSensitive(report, "metrics");
    cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(baseline, "metrics"))
        check(&g, m->string, m, cJSON_GetObjectItemCaseSensitive(rm, m->string));
    check(&g, "accuracy", cJSON_GetObjectItemCaseSensitive(baseline, "accuracy"),
          cJSON_GetObjectItemCaseSensitive(report, "accuracy"));
    static const char *const anomaly[] = {"image_auroc", "pixel_auroc", "pro"};
    for (int k = 0; k < 3; k++)
        check(&g, anomaly[k], cJSON_GetObjectItemCaseSensitive(baseline, anomaly[k]),
              cJSON_GetObjectItemCaseSensitive(report, anomaly[k]));
    check(&g, "macro.f1", cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(baseline, "macro"), "f1"),
          cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(report, "macro"), "f1"));
    const cJSON *c;
    cJSON_ArrayForEach(c, base_classes) {
        const char *name = cJSON_GetObjectItemCaseSensitive(c, "name")->valuestring;
        const cJSON *now = lathe_json_named(classes, name);
        static const char *const keys[] = {"AP", "f1", "image_auroc"};
        for (int k = 0; k < 3; k++) {
            size_t len = strlen(keys[k]) + strlen(name) + 3;
            char *metric = malloc(len);
            if (!metric) {
                cJSON_Delete(g.out);
                return lathe_fail(LATHE_ENOMEM, "gate");
            }
            snprintf(metric, len, "%s[%s]", keys[k], name);
            check(&g, metric, cJSON_GetObjectItemCaseSensitive(c, keys[k]), cJSON_GetObjectItemCaseSensitive(now, keys[k]));
            free(metric);
        }
    }
    if (!g.compared) {
        cJSON_Delete(g.out);
        return lathe_fail(LATHE_EFORMAT, "the baseline defines no metric to compare (each absent, not a number, or -1)");
    }
    *regressions = g.out;
    return 0;
}

void lathe_gate_print(const cJSON *regressions, double max_drop, FILE *out) {
    fprintf(out, "lathe eval: %d metric(s) fell by more than %g:\n", cJSON_GetArraySize(regressions), max_drop);
    fprintf(out, "  %-28s %10s %10s %10s\n", "metric", "baseline", "now", "drop");
    const cJSON *r;
    cJSON_ArrayForEach(r, regressions) {
        const cJSON *metric = cJSON_GetObjectItemCaseSensitive(r, "metric");
        fprintf(out, "  %-28s %10.4f %10.4f %10.4f\n", cJSON_IsString(metric) ? metric->valuestring : "?",
                cJSON_GetObjectItemCaseSensitive(r, "baseline")->valuedouble,
                cJSON_GetObjectItemCaseSensitive(r, "value")->valuedouble,
                cJSON_GetObjectItemCaseSensitive(r, "drop")->valuedouble);
    }
}
