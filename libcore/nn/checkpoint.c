/* checkpoint.c - training state in safetensors (checkpoint.h). */
#include "checkpoint.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libcore/base/error.h"
#include "libcore/base/fsutil.h"
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

int lathe_checkpoint_load(const char *path, lathe_graph *g, lathe_optim *opt) {
    lathe_st_file *f;
    int rc = lathe_st_open(path, &f);
    if (rc) return rc;
    for (size_t i = 0; i < lathe_graph_nparams(g) && !rc; i++) {
        lathe_param *p = lathe_graph_param(g, i);
        rc = lathe_st_read_f32(f, p->name, p->data, p->count);
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
        lathe_optim_set_steps(opt, steps ? atol(steps) : 0);
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

int lathe_checkpoint_import(const char *path, const char *mapping, lathe_graph *g, size_t *loaded) {
    *loaded = 0;
    char *map = NULL;
    size_t maplen = 0;
    int rc = mapping ? lathe_read_file(mapping, 1 << 24, &map, &maplen) : 0;
    if (rc) return rc;
    lathe_st_file *f;
    rc = lathe_st_open(path, &f);
    if (rc) {
        free(map);
        return rc;
    }
    for (size_t i = 0; i < lathe_st_count(f); i++) {
        const char *theirs = lathe_st_name(f, i, NULL, NULL, NULL);
        const char *ours = theirs;
        char line[512], a[256], b[256];
        for (const char *p = map; p && *p;) { /* "their_name our_name" per line */
            const char *end = strchr(p, '\n');
            size_t len = end ? (size_t)(end - p) : strlen(p);
            snprintf(line, sizeof line, "%.*s", (int)(len < sizeof line ? len : sizeof line - 1), p);
            if (line[0] != '#' && sscanf(line, "%255s %255s", a, b) == 2 && !strcmp(a, theirs)) {
                ours = b;
                break;
            }
            p += len + (end != NULL);
        }
        lathe_param *p = lathe_graph_find_param(g, ours);
        if (p && lathe_st_read_f32(f, theirs, p->data, p->count) == 0) (*loaded)++;
        lathe_clear_error();
    }
    lathe_st_close(f);
    free(map);
    return lathe_graph_sync(g, 0);
}
