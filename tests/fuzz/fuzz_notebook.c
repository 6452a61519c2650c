/* fuzz_notebook.c - `lathe notebook` (notebooks-export/) on folders of hostile files: the first byte
 * picks the kind and the form, the rest is split at NUL bytes into the folder's files:
 *   kind 0, a training run: config.yaml, log.jsonl, metrics.json (absent when its part is missing);
 *   kind 1, an evaluation: report.json (a detector's charts are drawn, a classifier's matrix);
 *   kind 2, an analysis: analysis.json, report.md (plots it links are absent: an error).
 * Bit 2 of the first byte writes the read-only form. Any type or shape a report can take must give
 * a notebook or an error, never a crash. */
#include "fuzz.h"

#include <sys/stat.h>

#include "notebooks-export/notebook.h"

static const char *const files[3][3] = {
    {"config.yaml", "log.jsonl", "metrics.json"},
    {"report.json", NULL, NULL},
    {"analysis.json", "report.md", NULL},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    int kind = data[0] % 3, no_code = data[0] >> 2 & 1;
    char folder[4200], path[4200], out[4200];
    snprintf(folder, sizeof folder, "%s/in%d", fuzz_dir(), kind);
    mkdir(folder, 0700);
    const uint8_t *rest = data + 1;
    size_t left = size - 1;
    for (int f = 0; f < 3 && files[kind][f]; f++) {
        char name[64];
        snprintf(name, sizeof name, "in%d/%s", kind, files[kind][f]);
        snprintf(path, sizeof path, "%s/%s", fuzz_dir(), name);
        remove(path);
        if (!rest) continue; /* fewer parts than files: this one is absent */
        size_t first, next_len;
        const uint8_t *next;
        fuzz_split(rest, left, &first, &next, &next_len);
        fuzz_write(name, rest, first, path, sizeof path);
        rest = next, left = next_len;
    }
    snprintf(out, sizeof out, "%s/out.ipynb", fuzz_dir());
    lathe_notebook_input in = {folder, "in"};
    lathe_notebook_opts opts = {no_code, 0};
    (void)lathe_notebook_write(&in, 1, &opts, out);
    return 0;
}
