/* ingest_rejects.c - rejects.jsonl: one JSON object per skipped entry, sample, box or annotation.
 * During an ingest lines go to rejects.partial.jsonl in any order; a resumed run keeps the lines
 * of candidates already committed and regenerates the rest; the end sorts them by (entry, line)
 * so the file is the same whether or not the ingest was interrupted. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../base/error.h"
#include "../base/fsutil.h"
#include "ingest_internal.h"

#define REJECTS_MAX_BYTES ((size_t)4 << 30)

void ingest_reject(ingest_ctx *c, int64_t entry, const char *path, const char *reason, int split, int64_t pos,
                   int box, const char *fmt, ...) {
    if (split < 0 && !ingest_owns(c, path ? path : "")) return; /* another part reports it */
    char detail[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    cJSON *o = cJSON_CreateObject();
    if (!o) return;
    cJSON_AddNumberToObject(o, "entry", (double)entry);
    cJSON_AddStringToObject(o, "path", path ? path : "");
    cJSON_AddStringToObject(o, "reason", reason);
    cJSON_AddStringToObject(o, "detail", detail);
    if (split >= 0) {
        cJSON_AddStringToObject(o, "split", lathe_split_name(split));
        cJSON_AddNumberToObject(o, "pos", (double)pos);
    }
    if (box >= 0) cJSON_AddNumberToObject(o, "box", box);
    char *line = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!line) return;
    pthread_mutex_lock(&c->rejects_lock);
    if (c->rejects) {
        fputs(line, c->rejects);
        fputc('\n', c->rejects);
    }
    c->nrejects++;
    pthread_mutex_unlock(&c->rejects_lock);
    cJSON_free(line);
}

/* A line survives a resume when its candidate lies inside the committed shards. */
static int keep_on_resume(const ingest_ctx *c, const char *line) {
    cJSON *o = cJSON_Parse(line);
    if (!o) return 0;
    const cJSON *split = cJSON_GetObjectItemCaseSensitive(o, "split");
    const cJSON *pos = cJSON_GetObjectItemCaseSensitive(o, "pos");
    int s = cJSON_IsString(split) ? lathe_split_parse(split->valuestring) : -1;
    int keep = s >= 0 && cJSON_IsNumber(pos) && pos->valuedouble < (double)c->manifest.committed[s];
    cJSON_Delete(o);
    return keep;
}

int ingest_rejects_open(ingest_ctx *c, const char *dir) {
    char path[4200], tmp[4300];
    snprintf(path, sizeof path, "%s/rejects.partial.jsonl", dir);
    snprintf(tmp, sizeof tmp, "%s/rejects.partial.jsonl.tmp", dir);
    FILE *old = fopen(path, "r");
    FILE *f = fopen(tmp, "w");
    if (!f) {
        if (old) fclose(old);
        return lathe_fail(LATHE_EIO, "%s: %s", tmp, strerror(errno));
    }
    if (old) {
        char *line = NULL;
        size_t cap = 0;
        ssize_t n;
        while ((n = getline(&line, &cap, old)) > 0) {
            if (line[n - 1] != '\n') break; /* a torn last line from a kill: regenerated */
            if (keep_on_resume(c, line)) fputs(line, f);
        }
        free(line);
        fclose(old);
    }
    if (fclose(f) != 0) return lathe_fail(LATHE_EIO, "%s: %s", tmp, strerror(errno));
    int rc = lathe_rename_durable(tmp, path);
    if (rc) return rc;
    c->rejects = fopen(path, "a");
    if (!c->rejects) return lathe_fail(LATHE_EIO, "%s: %s", path, strerror(errno));
    return 0;
}

int ingest_rejects_sync(ingest_ctx *c) {
    pthread_mutex_lock(&c->rejects_lock);
    int bad = !c->rejects || fflush(c->rejects) != 0 || fdatasync(fileno(c->rejects)) != 0;
    pthread_mutex_unlock(&c->rejects_lock);
    return bad ? lathe_fail(LATHE_EIO, "writing rejects: %s", strerror(errno)) : 0;
}

void ingest_rejects_close(ingest_ctx *c) {
    if (c->rejects) fclose(c->rejects);
    c->rejects = NULL;
}

typedef struct {
    double entry;
    char *line;
} sorted_line;

static int compare_lines(const void *a, const void *b) {
    const sorted_line *x = a, *y = b;
    if (x->entry != y->entry) return x->entry < y->entry ? -1 : 1;
    return strcmp(x->line, y->line);
}

int ingest_rejects_finish(ingest_ctx *c, const char *dir, uint64_t *count) {
    char path[4200], final[4200];
    snprintf(path, sizeof path, "%s/rejects.partial.jsonl", dir);
    snprintf(final, sizeof final, "%s/rejects.jsonl", dir);
    int rc = ingest_rejects_sync(c);
    ingest_rejects_close(c);
    char *text;
    size_t len;
    if (!rc) rc = lathe_read_file(path, REJECTS_MAX_BYTES, &text, &len);
    if (rc) return rc;
    size_t n = 0, cap = 256;
    sorted_line *lines = malloc(cap * sizeof *lines);
    for (char *p = text, *nl; lines && (nl = strchr(p, '\n')); p = nl + 1) {
        *nl = '\0';
        if (n == cap && !(lines = realloc(lines, (cap *= 2) * sizeof *lines))) break;
        lines[n].entry = strtod(p + strlen("{\"entry\":"), NULL);
        lines[n++].line = p;
    }
    if (!lines) {
        free(text);
        return lathe_fail(LATHE_ENOMEM, "sorting rejects");
    }
    if (n) qsort(lines, n, sizeof *lines, compare_lines);
    size_t total = 0;
    for (size_t i = 0; i < n; i++) total += strlen(lines[i].line) + 1;
    char *out = malloc(total + 1), *w = out;
    if (!out) rc = lathe_fail(LATHE_ENOMEM, "sorting rejects");
    for (size_t i = 0; out && i < n; i++) {
        size_t k = strlen(lines[i].line);
        memcpy(w, lines[i].line, k);
        w[k] = '\n';
        w += k + 1;
    }
    if (!rc) rc = lathe_write_atomic(final, out, total);
    if (!rc) unlink(path);
    free(out);
    free(lines);
    free(text);
    *count = n;
    return rc;
}
