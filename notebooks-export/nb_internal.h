/* nb_internal.h - what the notebook builders (nb_run.c, nb_eval.c, nb_analysis.c) share: the
 * input being written, its files loaded with errors that name them, and tables of JSON values. */
#ifndef LATHE_NOTEBOOKS_NB_INTERNAL_H
#define LATHE_NOTEBOOKS_NB_INTERNAL_H
#include <cjson/cJSON.h>
#include <stddef.h>

#include "ipynb.h"
#include "notebook.h"
#include "template.h"

typedef struct {
    const char *path, *ref; /* as lathe_notebook_input */
    char name[256];         /* the folder's name, for titles */
    const char *out_dir;    /* the notebook's folder, and whether its paths are absolute */
    int absolute;
} nb_input;

/* A cell callback's answer (template.h): keep the cell (1), or the builder's error. */
static inline int kept(int rc) { return rc ? rc : 1; }
/* An object's member, or NULL (for any o, also a non-object). */
static inline const cJSON *item(const cJSON *o, const char *key) { return cJSON_GetObjectItemCaseSensitive(o, key); }

/* Loads path/file as JSON. A missing file is -LATHE_ENOTFOUND and unparsable JSON -LATHE_EFORMAT,
 * both naming the file. */
int nb_load_json(const char *dir, const char *file, cJSON **out);
/* 1 when path/file exists */
int nb_exists(const char *dir, const char *file);

/* A table being filled: cells are copies. */
typedef struct {
    int cols, rows, cap;
    const char *const *header;
    char **cells;
} nb_table;
void nb_table_init(nb_table *t, int cols, const char *const *header);
/* Appends a row of cols strings (copied). 0 or -LATHE_ENOMEM. */
int nb_table_row(nb_table *t, const char *const *cells);
/* Adds the table to *outputs and frees its cells. */
int nb_table_emit(nb_table *t, cJSON **outputs);
void nb_table_free(nb_table *t);
/* A JSON value as a table cell: numbers with up to 6 significant digits (whole numbers whole),
 * null as NaN, strings as they are, anything else as compact JSON. */
void nb_value_text(const cJSON *v, char *buf, size_t cap);
/* A table of an object's members: index = keys, one column `value`. */
int nb_object_table(const cJSON *obj, cJSON **outputs);

/* The builders: each appends its cells to nb. */
int nb_build_run(lathe_ipynb *nb, const nb_input *in);
int nb_build_eval(lathe_ipynb *nb, const nb_input *in, const char *dir, const char *ref, const char *title);
/* An anomaly head's report r (nb_anomaly.c), its maps read from dir; summary is the markdown list. */
int nb_build_eval_anomaly(lathe_ipynb *nb, const cJSON *r, const char *dir, const char *ref, const char *title,
                          const char *summary);
int nb_build_analysis(lathe_ipynb *nb, const nb_input *in);
int nb_build_compare(lathe_ipynb *nb, const nb_input *runs, size_t n);

#endif
