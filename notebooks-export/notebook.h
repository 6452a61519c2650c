/* notebook.h - `lathe notebook`: Jupyter notebooks of what lathe writes. Each input is a training
 * run (config.yaml, log.jsonl, metrics.json; its eval/ when there), an evaluation folder
 * (report.json of a detector, a classifier or an image-text head) or an analysis folder
 * (analysis.json and its plots/). The notebook renders without running (summaries in markdown,
 * tables and lathe's own charts stored as outputs) and reruns cleanly (code cells load the same
 * files and redraw every table and chart with pandas and matplotlib). Two or more runs add a
 * comparison: metrics side by side, curves overlaid, the spec settings that differ. */
#ifndef LATHE_NOTEBOOKS_NOTEBOOK_H
#define LATHE_NOTEBOOKS_NOTEBOOK_H
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    const char *path; /* where lathe reads the folder now */
    const char *ref;  /* how the notebook's code names it (relative to the notebook's folder, or absolute) */
} lathe_notebook_input;

typedef struct {
    int no_code;  /* a read-only report: markdown cells only, outputs inlined */
    int absolute; /* paths the notebook finds by itself (an analysis's dataset) are absolute */
} lathe_notebook_opts;

/* The kind of folder at path into *kind: "run", "eval" or "analysis". Returns 0, -LATHE_ENOTFOUND,
 * or -LATHE_EFORMAT (not a folder, or not one lathe writes). */
int lathe_notebook_kind(const char *path, const char **kind);

/* Writes the notebook of inputs[0..n) to out_path (atomically). A missing or corrupt file of an
 * input fails it with a message naming the file. Returns 0, -LATHE_EINVAL, -LATHE_ENOTFOUND,
 * -LATHE_EFORMAT, -LATHE_ENOMEM or -LATHE_EIO. */
int lathe_notebook_write(const lathe_notebook_input *inputs, size_t n, const lathe_notebook_opts *opts,
                         const char *out_path);

/* The path to name target by from a notebook written into folder dir: relative when absolute is 0
 * (both are resolved first; target must exist), else target's absolute path. 0 or a negative code. */
int lathe_notebook_ref(const char *dir, const char *target, int absolute, char *out, size_t cap);

#ifdef __cplusplus
}
#endif
#endif
