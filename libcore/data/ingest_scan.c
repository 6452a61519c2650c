/* ingest_scan.c - the first pass over the source: list every entry (rejecting unsafe ones and
 * duplicates), read label files into memory, spool sidecars (sensor CSVs, texts, masks) into an
 * unlinked temporary file, pick the label format, and build the catalog. Images are only counted
 * here; the second pass decodes them. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "../base/error.h"
#include "../base/log.h"
#include "../io/archive.h"
#include "ingest_internal.h"

typedef struct {
    char *path;
    uint8_t *data;
    size_t len;
} label_file;

typedef struct {
    char **paths;
    size_t npaths, cappaths;
    label_file *labels;
    size_t nlabels, caplabels;
} scan_lists;

static int push(void **arr, size_t *n, size_t *cap, size_t elem) {
    if (*n < *cap) return 0;
    size_t c = *cap ? *cap * 2 : 256;
    void *p = realloc(*arr, c * elem);
    if (!p) return lathe_fail(LATHE_ENOMEM, "scan lists");
    *arr = p;
    *cap = c;
    return 0;
}

static void lists_free(scan_lists *l) {
    for (size_t i = 0; i < l->npaths; i++) free(l->paths[i]);
    for (size_t i = 0; i < l->nlabels; i++) free(l->labels[i].data);
    free(l->paths);
    free(l->labels);
}

static int has_ext(const char *path, const char *ext) {
    const char *dot = strrchr(path, '.');
    return dot && !strchr(dot, '/') && strcasecmp(dot + 1, ext) == 0;
}

int lathe_ingest_source_split(const char *path) {
    int split = -1;
    for (const char *p = path, *slash; (slash = strchr(p, '/')); p = slash + 1) { /* folders only; the deepest wins */
        size_t n = (size_t)(slash - p);
        int whole = 1; /* a folder is a split only when its whole name is one word ("x_train" is not) */
        for (size_t i = 0; i < n; i++) whole &= isalnum((unsigned char)p[i]) != 0;
        int s = whole ? lathe_split_named(p, n) : -1;
        if (s >= 0) split = s;
    }
    return split;
}

int ingest_sidecar_key(const char *path, char kind, char *key, size_t cap) {
    static const char *const sensor_dirs[] = {"sensors", NULL};
    static const char *const text_dirs[] = {"text", "captions", "descriptions", NULL};
    const char *const *dirs = kind == 's' ? sensor_dirs : text_dirs;
    if (!has_ext(path, kind == 's' ? "csv" : "txt")) return 0;
    const char *after = NULL;
    for (const char *p = path; *p;) { /* the last matching folder component wins */
        const char *slash = strchr(p, '/');
        if (!slash) break;
        for (const char *const *d = dirs; *d; d++)
            if ((size_t)(slash - p) == strlen(*d) && strncmp(p, *d, strlen(*d)) == 0) after = slash + 1;
        p = slash + 1;
    }
    if (!after) return 0;
    const char *dot = strrchr(after, '.');
    size_t n = (size_t)(dot - after);
    if (n == 0 || n >= cap) return 0;
    memcpy(key, after, n);
    key[n] = '\0';
    return 1;
}

static int spool_put(ingest_ctx *c, char kind, const char *key, const uint8_t *data, size_t len) {
    int rc = push((void **)&c->refs, &c->nrefs, &c->caprefs, sizeof *c->refs);
    if (rc) return rc;
    size_t done = 0;
    while (done < len) {
        ssize_t n = pwrite(c->spool_fd, data + done, len - done, (off_t)(c->spool_size + done));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return lathe_fail(LATHE_EIO, "writing the sidecar spool: %s", strerror(errno));
        done += (size_t)n;
    }
    c->refs[c->nrefs] = (spool_ref){c->spool_size, len};
    c->spool_size += len;
    char full[4200];
    snprintf(full, sizeof full, "%c:%s", kind, key);
    return lathe_hashmap_put(c->sidecars, full, c->nrefs++);
}

int ingest_spool_read(const ingest_ctx *c, spool_ref ref, uint8_t **data) {
    uint8_t *buf = malloc(ref.len + 1);
    if (!buf) return lathe_fail(LATHE_ENOMEM, "sidecar of %llu bytes", (unsigned long long)ref.len);
    size_t done = 0;
    while (done < ref.len) {
        ssize_t n = pread(c->spool_fd, buf + done, ref.len - done, (off_t)(ref.offset + done));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            free(buf);
            return lathe_fail(LATHE_EIO, "reading the sidecar spool: %s", strerror(errno));
        }
        done += (size_t)n;
    }
    buf[ref.len] = 0;
    *data = buf;
    return 0;
}

int ingest_sidecar_find(const ingest_ctx *c, char kind, const char *path, spool_ref *ref) {
    char key[4200];
    size_t idx;
    if (kind == 'm') {
        snprintf(key, sizeof key, "m:%s", path);
        if (!lathe_hashmap_get(c->sidecars, key, &idx)) return 0;
        *ref = c->refs[idx];
        return 1;
    }
    /* "a/images/x.jpg" looks for the keys "a/images/x", "images/x", "x" in that order */
    const char *dot = strrchr(path, '.');
    size_t n = dot && !strchr(dot, '/') ? (size_t)(dot - path) : strlen(path);
    for (const char *p = path; p && p < path + n; p = strchr(p, '/'), p = p ? p + 1 : NULL) {
        snprintf(key, sizeof key, "%c:%.*s", kind, (int)(path + n - p), p);
        if (lathe_hashmap_get(c->sidecars, key, &idx)) {
            *ref = c->refs[idx];
            return 1;
        }
    }
    return 0;
}

/* What the entry is to any candidate adapter (or the chosen one). */
static lathe_entry_role any_role(const ingest_ctx *c, const char *path) {
    const lathe_adapter *one[2] = {c->adapter, NULL};
    const lathe_adapter *const *list = c->adapter ? one : c->o->adapters;
    lathe_entry_role best = LATHE_ENTRY_OTHER;
    for (; list && *list; list++) {
        lathe_entry_role r = (*list)->role ? (*list)->role(path) : LATHE_ENTRY_OTHER;
        if (r == LATHE_ENTRY_LABEL) return r;
        if (r == LATHE_ENTRY_MASK) best = r;
    }
    return best;
}

static int read_entry(ingest_ctx *c, lathe_archive *a, int64_t idx, const char *path, uint8_t **data, size_t *len) {
    int rc = lathe_archive_read(a, c->o->max_entry_bytes, data, len);
    if (rc == -LATHE_ELIMIT) {
        ingest_reject(c, idx, path, "entry_too_large", -1, -1, -1, "%s", lathe_last_error());
        return 1;
    }
    if (rc == -LATHE_EFORMAT) {
        ingest_reject(c, idx, path, "damaged_entry", -1, -1, -1, "%s", lathe_last_error());
        return 1;
    }
    return rc ? lathe_fail_context(-rc, "%s", path) : 0; /* out of memory, an I/O error: which entry */
}

static int keep_sidecar(ingest_ctx *c, lathe_archive *a, int64_t idx, const char *path, char kind, const char *key) {
    uint8_t *data;
    size_t len;
    int rc = read_entry(c, a, idx, path, &data, &len);
    if (rc) return rc > 0 ? 0 : rc;
    if (kind == 's' && c->sensors.channels == 0) {
        lathe_sensor_layout layout;
        if (lathe_sensors_layout((const char *)data, len, &layout) == 0) c->sensors = layout;
    }
    if (kind == 't') c->has_text = 1;
    rc = spool_put(c, kind, key, data, len);
    free(data);
    return rc;
}

static int scan_entries(ingest_ctx *c, scan_lists *l) {
    uint64_t label_bytes = 0;
    lathe_archive *a;
    int rc = lathe_archive_open(c->o->src, &a);
    if (rc) return rc;
    lathe_hashmap *seen = lathe_hashmap_create();
    if (!seen) rc = lathe_fail(LATHE_ENOMEM, "entry index");
    lathe_entry e;
    int64_t idx = -1;
    while (!rc && (rc = lathe_archive_next(a, &e)) == 1) {
        rc = 0;
        idx++;
        if (e.reject_reason) {
            ingest_reject(c, idx, e.path, e.reject_reason, -1, -1, -1, "%s", e.reject_detail);
            continue;
        }
        if (lathe_hashmap_get(seen, e.path, NULL)) {
            ingest_reject(c, idx, e.path, "duplicate_entry", -1, -1, -1, "the source holds this path twice; the first is used");
            continue;
        }
        if ((rc = lathe_hashmap_put(seen, e.path, 0)) || (rc = push((void **)&l->paths, &l->npaths, &l->cappaths, sizeof *l->paths)))
            break;
        if (!(l->paths[l->npaths] = strdup(e.path))) {
            rc = lathe_fail(LATHE_ENOMEM, "entry path");
            break;
        }
        l->npaths++;
        char key[4096];
        lathe_entry_role role = any_role(c, e.path);
        if (role == LATHE_ENTRY_LABEL) {
            if ((rc = push((void **)&l->labels, &l->nlabels, &l->caplabels, sizeof *l->labels))) break;
            label_file *lf = &l->labels[l->nlabels];
            lf->path = l->paths[l->npaths - 1];
            int r = read_entry(c, a, idx, e.path, &lf->data, &lf->len);
            if (r < 0) rc = r;
            else if (r == 0) l->nlabels++;
            /* not a reject: a run without some of its label files would lose their boxes unsaid */
            if (r == 0 && (label_bytes += lf->len) > c->o->max_label_bytes)
                rc = lathe_fail(LATHE_ELIMIT,
                                "the source's label files pass %llu bytes in all at %s (--max-label-bytes: "
                                "they are held in memory while the source is scanned)",
                                (unsigned long long)c->o->max_label_bytes, e.path);
        } else if (role == LATHE_ENTRY_MASK) {
            rc = keep_sidecar(c, a, idx, e.path, 'm', e.path);
        } else if (ingest_sidecar_key(e.path, 's', key, sizeof key)) {
            rc = keep_sidecar(c, a, idx, e.path, 's', key);
        } else if (ingest_sidecar_key(e.path, 't', key, sizeof key)) {
            rc = keep_sidecar(c, a, idx, e.path, 't', key);
        } else if (lathe_path_is_image(e.path)) {
            c->images_seen++;
            int s = lathe_ingest_source_split(e.path);
            if (s >= 0) c->in_split_folder[s]++;
        }
    }
    if (rc > 0) rc = 0;
    lathe_hashmap_free(seen);
    lathe_archive_close(a);
    return rc;
}

static int compare_labels(const void *a, const void *b) {
    return strcmp(((const label_file *)a)->path, ((const label_file *)b)->path);
}

static int compare_paths(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int build_catalog(ingest_ctx *c, scan_lists *l) {
    if (!c->adapter) c->adapter = c->o->detect((const char *const *)l->paths, l->npaths);
    if (!c->adapter) return lathe_fail(LATHE_EUNSUPPORTED, "no label format recognises this source");
    lathe_log(LATHE_LOG_INFO, "ingest.format", "label format: %s", c->adapter->name);
    /* label files in path order, so the catalog does not depend on the archive's order */
    if (l->nlabels) qsort(l->labels, l->nlabels, sizeof *l->labels, compare_labels);
    for (size_t i = 0; i < l->nlabels; i++) {
        const label_file *lf = &l->labels[i];
        if (!c->adapter->parse || !c->adapter->role || c->adapter->role(lf->path) != LATHE_ENTRY_LABEL) continue;
        int rc = c->adapter->parse(c->cat, lf->path, lf->data, lf->len);
        if (rc) return rc;
    }
    if (l->npaths) qsort(l->paths, l->npaths, sizeof *l->paths, compare_paths);
    if (c->adapter->scan_paths) {
        int rc = c->adapter->scan_paths(c->cat, (const char *const *)l->paths, l->npaths);
        if (rc) return rc;
    }
    int rc = lathe_catalog_finish(c->cat);
    if (rc) return rc;
    for (size_t i = 0; i < lathe_catalog_nrejects(c->cat); i++) {
        const lathe_label_reject *r = lathe_catalog_reject_at(c->cat, i);
        ingest_reject(c, -1, r->path, r->reason, -1, -1, -1, "%s", r->detail);
    }
    for (size_t i = 0; i < lathe_catalog_nrecords(c->cat); i++) {
        const lathe_record *r = lathe_catalog_at(c->cat, i);
        if (r->mask_file) c->has_masks = 1;
        if (r->text) c->has_text = 1;
    }
    return 0;
}

int ingest_scan(ingest_ctx *c) {
    char spool[4200];
    snprintf(spool, sizeof spool, "%s/.spool.%d", c->o->out, (int)getpid());
    c->spool_fd = open(spool, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (c->spool_fd < 0) return lathe_fail(LATHE_EIO, "%s: %s", spool, strerror(errno));
    unlink(spool); /* anonymous from now on: gone with the process, even when killed */
    c->sidecars = lathe_hashmap_create();
    if (!c->sidecars) return lathe_fail(LATHE_ENOMEM, "sidecar index");
    scan_lists l = {0};
    int rc = scan_entries(c, &l);
    if (!rc) rc = build_catalog(c, &l);
    lists_free(&l);
    return rc;
}
