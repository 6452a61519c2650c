/* template.h - the notebook templates (notebooks-export/templates/NAME.py, compiled into lathe at
 * build time): Python files in the "percent" cell format Jupytext and VS Code read. A line
 * "# %%" starts a code cell, "# %% [markdown]" a markdown cell (its lines lose the leading "# "),
 * and a word after either names the cell: a named cell is kept only when the builder asks for it,
 * and the builder gives its stored outputs. {{key}} is replaced by the variable's value: as it is
 * in markdown, as a Python string literal in code. */
#ifndef LATHE_NOTEBOOKS_TEMPLATE_H
#define LATHE_NOTEBOOKS_TEMPLATE_H
#include <cjson/cJSON.h>
#include <stddef.h>

#include "ipynb.h"

typedef struct {
    const char *name, *text;
} lathe_nb_template;

/* every template, ended by {NULL, NULL} (build/gen/nb_templates.c) */
extern const lathe_nb_template lathe_nb_templates[];

typedef struct {
    const char *key, *value;
} nb_var;

/* Decides about the named cell `name`: returns 1 to keep it (setting *outputs to the stored outputs
 * of a code cell, or leaving it NULL), 0 to leave it out, or a negative code to stop. */
typedef int (*nb_cell_fn)(void *ctx, const char *name, cJSON **outputs);

/* Appends the cells of template `name` to nb, with vars substituted. Returns 0, fn's negative
 * code, -LATHE_ENOMEM, or -LATHE_EINVAL for a template that names no known variable (a bug). */
int nb_template_emit(lathe_ipynb *nb, const char *name, const nb_var *vars, size_t nvars, nb_cell_fn fn, void *ctx);

#endif
