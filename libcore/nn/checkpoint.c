/* checkpoint.c - training state in safetensors (checkpoint.h). */
#include "checkpoint.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libcore/base/error.h"
#include "libcore/base/fsutil.h"
#include "libcore/base/log.h"
#include "libcore/io/safetensors.h"

int lathe_checkpoint_save(const char *path, lathe_graph *g, lathe_optim *opt, const char *const *meta, size_t nmeta) {
    int synced = lathe_graph_sync(g, 1); /* a graph on a GPU: its current values, copied down */
    if (!synced && opt) synced = lathe_optim_sync(opt, 1);
    if (synced) return synced;
    size_t np = lathe_graph_nparams(g), ns = opt ? lathe_optim_nstate(opt) : 0;
    lathe_st_tensor *t = calloc(np + ns + 1, sizeof *t);
    char (*names)[128] = calloc(ns + 1, sizeof *names);
    char step[32];
    const char **all_meta = calloc(2 * (nmeta + 1), sizeof *all_meta);
    if (!t || !names || !all_meta) {
        free(t), free(names), free(all_meta);
        return lathe_fail(LATHE_ENOMEM, "checkpoint");
    }
    for (size_t i = 0; i < np; i++) {
        lathe_param *p = lathe_graph_param(g, i);
        t[i].name = p->name, t[i].data = p->data, t[i].rank = p->rank;
        for (int k = 0; k < p->rank; k++) t[i].shape[k] = p->shape[k];
    }
    for (size_t i = 0; i < ns; i++) {
        const char *name;
        size_t count;
        float *data = lathe_optim_state(opt, i, &name, &count);
        snprintf(names[i], sizeof names[i], "optim.%s", name);
        t[np + i].name = names[i], t[np + i].data = data, t[np + i].rank = 1, t[np + i].shape[0] = (int)count;
    }
    for (size_t i = 0; i < 2 * nmeta; i++) all_meta[i] = meta[i];
    snprintf(step, sizeof step, "%ld", opt ? lathe_optim_steps(opt) : 0L);
    all_meta[2 * nmeta] = "optimizer_steps", all_meta[2 * nmeta + 1] = step;
    int rc = lathe_st_write(path, t, np + ns, all_meta, nmeta + 1);
    free(t), free(names), free(all_meta);
    return rc;
}

/* The index of tensor `name` in f, or -1. */
static long find_tensor(const lathe_st_file *f, const char *name) {
    for (size_t i = 0; i < lathe_st_count(f); i++)
        if (!strcmp(lathe_st_name(f, i, NULL, NULL, NULL), name)) return (long)i;
    return -1;
}

/* "[3, 8, 3, 3]" */
static void shape_text(const int64_t *shape, int rank, char *out, size_t cap) {
    size_t at = (size_t)snprintf(out, cap, "[");
    for (int k = 0; k < rank && at < cap; k++) at += (size_t)snprintf(out + at, cap - at, "%s%lld", k ? ", " : "", (long long)shape[k]);
    if (at < cap) snprintf(out + at, cap - at, "]");
}

/* 0 when tensor i of f has p's shape; else -LATHE_EFORMAT naming both shapes (values of the same
 * count in another shape would load scrambled). */
static int check_shape(const lathe_st_file *f, size_t i, const lathe_param *p) {
    int64_t shape[8] = {0}, ours[4];
    int rank = 0;
    const char *name = lathe_st_name(f, i, NULL, shape, &rank);
    int same = rank == p->rank;
    for (int k = 0; k < p->rank; k++) ours[k] = p->shape[k], same &= k < rank && shape[k] == p->shape[k];
    if (same) return 0;
    char a[96], b[96];
    shape_text(shape, rank < 8 ? rank : 8, a, sizeof a), shape_text(ours, p->rank, b, sizeof b);
    return lathe_fail(LATHE_EFORMAT, "%s is %s there, %s here", name, a, b);
}

/* Weights a model can run with: finite, and running variances not negative (training never saves
 * others: its NaN guard skips such steps). */
static int check_values(const lathe_param *p) {
    size_t n = strlen(p->name);
    int variance = n >= 12 && !strcmp(p->name + n - 12, ".running_var");
    for (size_t k = 0; k < p->count; k++)
        if (!isfinite(p->data[k]) || (variance && p->data[k] < 0))
            return lathe_fail(LATHE_EFORMAT, "%s holds %s", p->name, isfinite(p->data[k]) ? "a negative variance" : "NaN or Inf values");
    return 0;
}

int lathe_checkpoint_load(const char *path, lathe_graph *g, lathe_optim *opt) {
    lathe_st_file *f;
    int rc = lathe_st_open(path, &f);
    if (rc) return rc;
    for (size_t i = 0; i < lathe_graph_nparams(g) && !rc; i++) {
        lathe_param *p = lathe_graph_param(g, i);
        long at = find_tensor(f, p->name);
        rc = at < 0 ? lathe_fail(LATHE_ENOTFOUND, "no tensor %s", p->name) : check_shape(f, (size_t)at, p);
        if (!rc) rc = lathe_st_read_f32(f, p->name, p->data, p->count);
        if (!rc) rc = check_values(p);
    }
    for (size_t i = 0; opt && i < lathe_optim_nstate(opt) && !rc; i++) {
        const char *name;
        size_t count;
        float *data = lathe_optim_state(opt, i, &name, &count);
        char full[160];
        snprintf(full, sizeof full, "optim.%s", name);
        rc = lathe_st_read_f32(f, full, data, count);
    }
    if (!rc && opt) {
        const char *steps = lathe_st_meta(f, "optimizer_steps");
        char *end = NULL;
        long n = steps ? strtol(steps, &end, 10) : 0;
        if (steps && (end == steps || *end || n < 0))
            rc = lathe_fail(LATHE_EFORMAT, "optimizer_steps \"%s\" is not a whole number >= 0", steps);
        else lathe_optim_set_steps(opt, n);
    }
    if (!rc) rc = lathe_graph_sync(g, 0); /* a graph on a GPU: the loaded values, copied up */
    if (!rc && opt) rc = lathe_optim_sync(opt, 0);
    if (rc) rc = lathe_fail_context(-rc, "checkpoint %s", path);
    lathe_st_close(f);
    return rc;
}

int lathe_checkpoint_meta(const char *path, const char *key, char *value, size_t cap) {
    lathe_st_file *f;
    int rc = lathe_st_open(path, &f);
    if (rc) return rc;
    const char *v = lathe_st_meta(f, key);
    if (v) snprintf(value, cap, "%s", v);
    else rc = lathe_fail(LATHE_ENOTFOUND, "%s has no metadata %s", path, key);
    lathe_st_close(f);
    return rc;
}

/* A mapping file: "their_name our_name" per line; blank lines and '#' comments skipped. Returns the
 * pairs (names in one buffer) or -LATHE_EFORMAT naming the line. */
typedef struct {
    char (*theirs)[256], (*ours)[256];
    size_t n;
} name_map;

static int read_map(const char *path, name_map *m) {
    char *text = NULL;
    size_t len = 0;
    int rc = lathe_read_file(path, 1 << 24, &text, &len);
    if (rc) return rc;
    if (memchr(text, 0, len)) rc = lathe_fail(LATHE_EFORMAT, "%s is not a text file", path);
    size_t lines = 1;
    for (size_t k = 0; k < len; k++) lines += text[k] == '\n';
    m->theirs = rc ? NULL : calloc(lines, sizeof *m->theirs), m->ours = rc ? NULL : calloc(lines, sizeof *m->ours);
    if (!rc && (!m->theirs || !m->ours)) rc = lathe_fail(LATHE_ENOMEM, "name mapping");
    size_t line_no = 0;
    for (char *p = text, *end; !rc && p < text + len; p = end + 1) {
        end = memchr(p, '\n', (size_t)(text + len - p));
        if (!end) end = text + len;
        *end = 0, line_no++;
        char a[512], b[512], extra[2];
        int got = sscanf(p, "%511s %511s %1s", a, b, extra);
        if (got <= 0 || a[0] == '#') continue;
        if (got != 2 || strlen(a) > 255 || strlen(b) > 255)
            rc = lathe_fail(LATHE_EFORMAT, "%s line %zu: expected \"their_name our_name\"", path, line_no);
        else snprintf(m->theirs[m->n], 256, "%s", a), snprintf(m->ours[m->n++], 256, "%s", b);
    }
    free(text);
    return rc;
}

/* Reads tensor `theirs` of f into p (shapes checked already) when every value is finite. */
static int import_one(const lathe_st_file *f, const char *theirs, lathe_param *p) {
    float *v = malloc(p->count * sizeof *v);
    int rc = v ? 0 : lathe_fail(LATHE_ENOMEM, "%s", theirs);
    if (!rc) rc = lathe_st_read_f32(f, theirs, v, p->count);
    for (size_t k = 0; !rc && k < p->count; k++)
        if (!isfinite(v[k])) rc = lathe_fail(LATHE_EFORMAT, "%s holds NaN or Inf values", theirs);
    if (!rc) memcpy(p->data, v, p->count * sizeof *v);
    free(v);
    return rc;
}

int lathe_checkpoint_import(const char *path, const char *mapping, lathe_graph *g, size_t *loaded) {
    *loaded = 0;
    name_map m = {0};
    lathe_st_file *f = NULL;
    int rc = mapping ? read_map(mapping, &m) : 0;
    if (!rc) rc = lathe_st_open(path, &f);
    for (size_t k = 0; !rc && k < m.n; k++) { /* every line must name something real on both sides */
        if (find_tensor(f, m.theirs[k]) < 0) rc = lathe_fail(LATHE_ENOTFOUND, "%s: %s names %s, which it does not hold", mapping, path, m.theirs[k]);
        else if (!lathe_graph_find_param(g, m.ours[k])) rc = lathe_fail(LATHE_ENOTFOUND, "%s: the model has no parameter %s", mapping, m.ours[k]);
    }
    for (size_t i = 0; !rc && i < lathe_st_count(f); i++) {
        const char *dtype, *theirs = lathe_st_name(f, i, &dtype, NULL, NULL), *ours = theirs;
        for (size_t k = 0; k < m.n; k++)
            if (!strcmp(m.theirs[k], theirs)) ours = m.ours[k];
        lathe_param *p = lathe_graph_find_param(g, ours);
        if (!p) continue; /* not a parameter of this model (another head, a counter): left out */
        if (dtype[0] != 'F' && strcmp(dtype, "BF16")) {
            lathe_log(LATHE_LOG_WARN, "train.init", "%s not imported: %s is %s, not floating point", ours, theirs, dtype);
            continue;
        }
        if (check_shape(f, i, p)) { /* another shape: a head for another class list */
            lathe_log(LATHE_LOG_WARN, "train.init", "%s not imported: %s", ours, lathe_last_error());
            lathe_clear_error();
            continue;
        }
        rc = import_one(f, theirs, p);
        *loaded += !rc;
    }
    if (!rc && !*loaded)
        rc = lathe_fail(LATHE_ENOTFOUND, "no tensor of %s matches a parameter of the model by name and shape%s", path,
                        mapping ? "" : " (a mapping file, train.init_map, renames theirs to ours)");
    if (rc && f) rc = lathe_fail_context(-rc, "importing %s", path);
    lathe_st_close(f);
    free(m.theirs), free(m.ours);
    return rc ? rc : lathe_graph_sync(g, 0);
}
