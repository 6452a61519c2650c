/* notebook.c - lathe_notebook_write: which builder each input gets, the comparison of several runs,
 * and the paths the notebook's code uses (notebook.h). */
#include "notebook.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "libcore/base/error.h"
#include "libcore/base/fsutil.h"
#include "nb_internal.h"

int lathe_notebook_kind(const char *path, const char **kind) {
    struct stat st;
    *kind = NULL;
    if (stat(path, &st) != 0) return lathe_fail(LATHE_ENOTFOUND, "%s: %s", path, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return lathe_fail(LATHE_EFORMAT, "%s: not a folder (give the run, evaluation or analysis folder)", path);
    *kind = nb_exists(path, "config.yaml")     ? "run"
            : nb_exists(path, "analysis.json") ? "analysis"
            : nb_exists(path, "report.json")   ? "eval"
                                               : NULL;
    if (*kind) return 0;
    return lathe_fail(LATHE_EFORMAT,
                      "%s: not a lathe training run, evaluation or analysis folder (it has no config.yaml, "
                      "report.json or analysis.json)",
                      path);
}

/* Splits an absolute path into its components (in place); returns how many. */
static int components(char *path, char **parts, int cap) {
    int n = 0;
    for (char *s = strtok(path, "/"); s && n < cap; s = strtok(NULL, "/")) parts[n++] = s;
    return n;
}

int lathe_notebook_ref(const char *dir, const char *target, int absolute, char *out, size_t cap) {
    char d[PATH_MAX], t[PATH_MAX];
    if (!realpath(target, t)) return lathe_fail(LATHE_ENOTFOUND, "%s: %s", target, strerror(errno));
    if (absolute) {
        snprintf(out, cap, "%s", t);
        return 0;
    }
    if (!realpath(dir, d)) return lathe_fail(LATHE_ENOTFOUND, "%s: %s", dir, strerror(errno));
    char *dp[512], *tp[512];
    int nd = components(d, dp, 512), nt = components(t, tp, 512), common = 0;
    while (common < nd && common < nt && strcmp(dp[common], tp[common]) == 0) common++;
    size_t len = 0;
    out[0] = '\0';
    for (int i = common; i < nd && len < cap; i++) len += (size_t)snprintf(out + len, cap - len, "%s..", len ? "/" : "");
    for (int i = common; i < nt && len < cap; i++) len += (size_t)snprintf(out + len, cap - len, "%s%s", len ? "/" : "", tp[i]);
    if (len >= cap) return lathe_fail(LATHE_EINVAL, "the path from %s to %s is too long", dir, target);
    if (!len) snprintf(out, cap, ".");
    return 0;
}

static void folder_name(const char *path, char *out, size_t cap) {
    char copy[PATH_MAX];
    snprintf(copy, sizeof copy, "%s", path);
    size_t n = strlen(copy);
    while (n > 1 && copy[n - 1] == '/') copy[--n] = '\0';
    const char *slash = strrchr(copy, '/');
    snprintf(out, cap, "%s", slash && slash[1] ? slash + 1 : copy);
    if (strcmp(out, ".") == 0 || strcmp(out, "..") == 0) { /* name "." after the folder it stands for */
        char real[PATH_MAX];
        if (realpath(path, real)) folder_name(real, out, cap);
    }
}

int lathe_notebook_write(const lathe_notebook_input *inputs, size_t n, const lathe_notebook_opts *opts,
                         const char *out_path) {
    if (!inputs || !n || !out_path) return lathe_fail(LATHE_EINVAL, "a notebook needs at least one input and a path");
    char out_dir[PATH_MAX];
    lathe_dirname(out_path, out_dir, sizeof out_dir);
    nb_input *in = calloc(n, sizeof *in);
    const char **kinds = calloc(n, sizeof *kinds);
    lathe_ipynb *nb = lathe_ipynb_new(opts && opts->no_code);
    cJSON *sources = cJSON_CreateArray();
    int rc = in && kinds && nb && sources ? 0 : lathe_fail(LATHE_ENOMEM, "notebook");
    size_t runs = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        in[i].path = inputs[i].path, in[i].ref = inputs[i].ref ? inputs[i].ref : inputs[i].path;
        in[i].out_dir = out_dir, in[i].absolute = opts && opts->absolute;
        folder_name(in[i].path, in[i].name, sizeof in[i].name);
        rc = lathe_notebook_kind(in[i].path, &kinds[i]);
        cJSON *s = rc ? NULL : cJSON_CreateObject();
        if (s) cJSON_AddItemToArray(sources, s);
        if (!rc && !(s && cJSON_AddStringToObject(s, "kind", kinds[i]) && cJSON_AddStringToObject(s, "path", in[i].ref)))
            rc = lathe_fail(LATHE_ENOMEM, "notebook");
        runs += !rc && strcmp(kinds[i], "run") == 0;
    }
    if (!rc && runs >= 2) { /* the comparison first: it is what a notebook of several runs is for */
        nb_input *r = calloc(runs, sizeof *r);
        size_t k = 0;
        for (size_t i = 0; r && i < n; i++)
            if (strcmp(kinds[i], "run") == 0) r[k++] = in[i];
        rc = r ? nb_build_compare(nb, r, runs) : lathe_fail(LATHE_ENOMEM, "notebook");
        free(r);
    }
    for (size_t i = 0; i < n && !rc; i++) {
        if (strcmp(kinds[i], "run") == 0) rc = nb_build_run(nb, &in[i]);
        else if (strcmp(kinds[i], "analysis") == 0) rc = nb_build_analysis(nb, &in[i]);
        else rc = nb_build_eval(nb, &in[i], in[i].path, in[i].ref, in[i].name);
    }
    if (!rc) rc = lathe_ipynb_set_meta(nb, "sources", sources), sources = NULL;
    if (!rc) rc = lathe_ipynb_set_meta(nb, "version", cJSON_CreateString(LATHE_VERSION));
    if (!rc) rc = lathe_ipynb_save(nb, out_path);
    cJSON_Delete(sources);
    lathe_ipynb_free(nb);
    free(in), free(kinds);
    return rc;
}
