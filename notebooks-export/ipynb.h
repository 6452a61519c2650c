/* ipynb.h - a Jupyter notebook (nbformat 4.5) built cell by cell and written as JSON: markdown
 * cells, code cells with stored outputs (tables as text/html + text/plain, charts as image/png,
 * printed text as a stdout stream), so the notebook renders before anyone runs it. In read-only
 * mode (no_code) a code cell becomes a markdown cell holding its outputs: tables as HTML, text in a
 * fenced block, charts as cell attachments. */
#ifndef LATHE_NOTEBOOKS_IPYNB_H
#define LATHE_NOTEBOOKS_IPYNB_H
#include <cjson/cJSON.h>
#include <stddef.h>

#include "libcore/eval/plot.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lathe_ipynb lathe_ipynb;

/* A table of strings: cols header names, rows x cols cells (row-major); the first column is the
 * index (pandas' row labels), named by header[0]. */
typedef struct {
    int rows, cols;
    const char *const *header;
    char *const *cells;
} lathe_ipynb_table;

/* A new notebook (no_code: the read-only form above). NULL when out of memory. */
lathe_ipynb *lathe_ipynb_new(int no_code);
void lathe_ipynb_free(lathe_ipynb *nb);
/* Adds a markdown cell. 0 or -LATHE_ENOMEM. */
int lathe_ipynb_markdown(lathe_ipynb *nb, const char *text);
/* Adds a code cell with source and the outputs made by the calls below (a cJSON array, taken over
 * whatever happens; NULL for none). 0 or -LATHE_ENOMEM. */
int lathe_ipynb_code(lathe_ipynb *nb, const char *source, cJSON *outputs);
/* Outputs, appended to the array *outputs (created when NULL): 0 or -LATHE_ENOMEM. */
int lathe_ipynb_add_text(cJSON **outputs, const char *text);
int lathe_ipynb_add_png(cJSON **outputs, const lathe_png *png, const char *title);
int lathe_ipynb_add_table(cJSON **outputs, const lathe_ipynb_table *t);
/* Puts key = value (taken over) into the notebook's metadata.lathe object. */
int lathe_ipynb_set_meta(lathe_ipynb *nb, const char *key, cJSON *value);
/* Writes the notebook to path durably (lathe_write_atomic). 0, -LATHE_ENOMEM or -LATHE_EIO. */
int lathe_ipynb_save(const lathe_ipynb *nb, const char *path);

#ifdef __cplusplus
}
#endif
#endif
