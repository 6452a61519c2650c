/* template.c - cells from the percent-format templates (template.h). */
#include "template.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libcore/base/error.h"

static const char *template_text(const char *name) {
    for (const lathe_nb_template *t = lathe_nb_templates; t->name; t++)
        if (strcmp(t->name, name) == 0) return t->text;
    return NULL;
}

static const char *var_value(const nb_var *vars, size_t n, const char *key, size_t len) {
    for (size_t i = 0; i < n; i++)
        if (strlen(vars[i].key) == len && strncmp(vars[i].key, key, len) == 0) return vars[i].value;
    return NULL;
}

/* The cell body [body, end) with variables substituted and, in markdown, each line's "# " taken
 * off; trailing blank lines dropped. NULL with the error set. */
static char *cell_text(const char *body, const char *end, int markdown, const nb_var *vars, size_t nvars,
                       const char *tname) {
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    if (!f) return lathe_fail(LATHE_ENOMEM, "notebook template"), NULL;
    int bad = 0;
    for (const char *p = body; p < end && !bad;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *stop = nl ? nl : end;
        if (markdown && stop - p >= 1 && p[0] == '#') p += (stop - p >= 2 && p[1] == ' ') ? 2 : 1;
        while (p < stop && !bad) {
            const char *open = strstr(p, "{{");
            if (!open || open >= stop) {
                fwrite(p, 1, (size_t)(stop - p), f);
                break;
            }
            const char *close = strstr(open, "}}");
            const char *v = close && close < stop ? var_value(vars, nvars, open + 2, (size_t)(close - open - 2)) : NULL;
            if (!v) {
                lathe_fail(LATHE_EINVAL, "notebook template %s: unknown variable at '%.40s'", tname, open);
                bad = 1;
                break;
            }
            fwrite(p, 1, (size_t)(open - p), f);
            if (markdown) fputs(v, f);
            else {
                cJSON *s = cJSON_CreateString(v);
                char *lit = s ? cJSON_PrintUnformatted(s) : NULL; /* a JSON string is a Python literal */
                if (lit) fputs(lit, f);
                else bad = 1, lathe_fail(LATHE_ENOMEM, "notebook template");
                free(lit);
                cJSON_Delete(s);
            }
            p = close + 2;
        }
        fputc('\n', f);
        p = nl ? nl + 1 : end;
    }
    if (fclose(f) != 0 && !bad) bad = 1, lathe_fail(LATHE_ENOMEM, "notebook template");
    if (bad) {
        free(out);
        return NULL;
    }
    while (len && (out[len - 1] == '\n' || out[len - 1] == ' ')) out[--len] = '\0';
    return out;
}

int nb_template_emit(lathe_ipynb *nb, const char *name, const nb_var *vars, size_t nvars, nb_cell_fn fn, void *ctx) {
    const char *text = template_text(name);
    if (!text) return lathe_fail(LATHE_EINVAL, "no notebook template named %s", name);
    const char *p = strstr(text, "# %%");
    while (p) {
        const char *header_end = strchr(p, '\n');
        if (!header_end) break;
        const char *next = strstr(header_end, "\n# %%");
        const char *end = next ? next + 1 : text + strlen(text);
        char header[128] = "";
        snprintf(header, sizeof header, "%.*s", (int)(header_end - p), p);
        int markdown = strstr(header, "[markdown]") != NULL;
        const char *cell_name = markdown ? strstr(header, "[markdown]") + 10 : header + 4;
        while (*cell_name == ' ') cell_name++;
        cJSON *outputs = NULL;
        int keep = *cell_name ? fn(ctx, cell_name, &outputs) : 1;
        if (keep < 0) {
            cJSON_Delete(outputs);
            return keep;
        }
        if (keep) {
            char *body = cell_text(header_end + 1, end, markdown, vars, nvars, name);
            int rc = !body ? -LATHE_EINVAL : markdown ? lathe_ipynb_markdown(nb, body) : lathe_ipynb_code(nb, body, outputs);
            if (!body || markdown) cJSON_Delete(outputs);
            free(body);
            if (rc) return rc;
        } else {
            cJSON_Delete(outputs);
        }
        p = next ? next + 1 : NULL;
    }
    return 0;
}
