/* yolo.c - the YOLO label format (Ultralytics, Darknet, Roboflow): labels/.../NAME.txt, one normalized
 * "cls cx cy w h" line per box, class names from data.yaml/dataset.yaml (libfyaml) or classes.txt. */
#include <errno.h>
#include <libfyaml.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "datasets/adapters.h"
#include "libcore/base/error.h"
#include "libcore/base/yaml_check.h"

/* More classes than any real dataset has; guards against "nc: 1000000000" and, because the catalog
 * looks classes up linearly, against quadratic time on hostile input. */
#define YOLO_MAX_CLASSES 10000
/* Normalized coordinates are near [0, 1]; a magnitude beyond this is not a coordinate (and would
 * lose all precision as a float). Out-of-image boxes below it are ingest's to judge. */
#define YOLO_COORD_LIMIT 1e6
/* A data.yaml is a few kilobytes; anything this size is not one. */
#define YOLO_MAX_YAML_BYTES (1 << 20)

static const char *base_name(const char *path) {
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

static int is_yaml_file(const char *path) {
    const char *b = base_name(path);
    return strcasecmp(b, "data.yaml") == 0 || strcasecmp(b, "dataset.yaml") == 0 ||
           strcasecmp(b, "data.yml") == 0 || strcasecmp(b, "dataset.yml") == 0;
}

static int is_names_file(const char *path) {
    const char *b = base_name(path);
    return strcasecmp(b, "classes.txt") == 0 || strcasecmp(b, "obj.names") == 0;
}

/* Start of the last directory component called "labels" in path, or NULL. */
static const char *last_labels_dir(const char *path) {
    const char *found = NULL;
    for (const char *p = path; (p = strstr(p, "labels/")); p++)
        if (p == path || p[-1] == '/') found = p;
    return found;
}

static int is_label_file(const char *path) {
    return lathe_path_ends_with(path, ".txt") && last_labels_dir(path) && !is_names_file(path);
}

/* "a/labels/b/c.txt" -> "a/images/b/c" (malloc'd), the image path without its extension. NULL when
 * out of memory. */
static char *image_key(const char *label_path) {
    const char *dir = last_labels_dir(label_path);
    size_t len = strlen(label_path) - 4; /* without ".txt" */
    size_t pre = (size_t)(dir - label_path);
    char *key = malloc(len + 1);
    if (!key) return NULL;
    memcpy(key, label_path, pre);
    memcpy(key + pre, "images", 6);
    memcpy(key + pre + 6, dir + 6, len - pre - 6);
    key[len] = '\0';
    return key;
}

/* The source as one NUL-terminated buffer (a leading UTF-8 byte order mark dropped). */
static char *copy_text(const uint8_t *data, size_t len, size_t *out_len) {
    if (len >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0) {
        data += 3;
        len -= 3;
    }
    char *text = malloc(len + 1);
    if (!text) return NULL;
    if (len) memcpy(text, data, len);
    text[len] = '\0';
    *out_len = len;
    return text;
}

/* Cuts the next line out of [*cur, end): NUL-terminates it without its "\r\n", advances *cur and
 * returns the line, or NULL at the end. *has_nul is set when the line held a NUL byte. */
static char *next_line(char **cur, char *end, int *has_nul) {
    char *line = *cur;
    if (line >= end) return NULL;
    char *nl = memchr(line, '\n', (size_t)(end - line));
    char *stop = nl ? nl : end;
    *cur = nl ? nl + 1 : end;
    *has_nul = memchr(line, '\0', (size_t)(stop - line)) != NULL;
    *stop = '\0';
    if (stop > line && stop[-1] == '\r') stop[-1] = '\0';
    return line;
}

static char *trim(char *s) {
    while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\v' || *s == '\f') s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\v' || s[n - 1] == '\f'))
        s[--n] = '\0';
    return s;
}

/* A finite decimal number within YOLO_COORD_LIMIT, the whole token. Returns 0 or -1. */
static int parse_coord(const char *tok, double *out) {
    char *end;
    errno = 0;
    double v = strtod(tok, &end);
    if (end == tok || *end || errno == ERANGE || !isfinite(v) || fabs(v) > YOLO_COORD_LIMIT) return -1;
    *out = v;
    return 0;
}

/* A class id: a non-negative integer that fits int32 ("3", or "3.0" as some exporters write it). */
static int parse_class_id(const char *tok, int64_t *out) {
    char *end;
    errno = 0;
    long long v = strtoll(tok, &end, 10);
    if (end != tok && !*end) {
        if (errno == ERANGE || v < 0 || v > INT32_MAX) return -1;
        *out = v;
        return 0;
    }
    double d;
    if (parse_coord(tok, &d) || d < 0 || d > INT32_MAX || d != floor(d)) return -1;
    *out = (int64_t)d;
    return 0;
}

/* Parses one label line. Returns 1 and fills box, 0 for a blank line, -1 when malformed (why says
 * what). Forms: "cls cx cy w h", "cls cx cy w h conf" (prediction files; conf ignored), and
 * "cls x1 y1 x2 y2 x3 y3 ..." (Ultralytics segment labels: the box is the polygon's extent, as
 * Ultralytics itself derives it). */
static int parse_label_line(char *line, lathe_box *box, char *why, size_t cap) {
    char *save = NULL;
    const char *sep = " \t\r\v\f";
    char *tok = strtok_r(line, sep, &save);
    if (!tok) return 0;
    int64_t cls;
    if (parse_class_id(tok, &cls)) {
        snprintf(why, cap, "class id '%.40s' is not a non-negative integer", tok);
        return -1;
    }
    double first[5] = {0};
    double minx = INFINITY, miny = INFINITY, maxx = -INFINITY, maxy = -INFINITY;
    size_t count = 0;
    while ((tok = strtok_r(NULL, sep, &save))) {
        double v;
        if (parse_coord(tok, &v)) {
            snprintf(why, cap, "value %zu '%.40s' is not a finite number of sane size", count + 1, tok);
            return -1;
        }
        if (count < 5) first[count] = v;
        if (count % 2 == 0) {
            minx = fmin(minx, v);
            maxx = fmax(maxx, v);
        } else {
            miny = fmin(miny, v);
            maxy = fmax(maxy, v);
        }
        count++;
    }
    memset(box, 0, sizeof *box);
    box->label = (int32_t)cls;
    box->id = -1;
    box->area = -1;
    if (count == 4 || count == 5) {
        double cx = first[0], cy = first[1], w = first[2], h = first[3];
        box->x1 = (float)(cx - w / 2);
        box->y1 = (float)(cy - h / 2);
        box->x2 = (float)(cx + w / 2);
        box->y2 = (float)(cy + h / 2);
        return 1;
    }
    if (count >= 6 && count % 2 == 0) {
        box->x1 = (float)minx;
        box->y1 = (float)miny;
        box->x2 = (float)maxx;
        box->y2 = (float)maxy;
        return 1;
    }
    snprintf(why, cap,
             "%zu values after the class, expected 4 (cx cy w h), 5 (with a confidence) or an even "
             "count of at least 6 (polygon)",
             count);
    return -1;
}

static int parse_labels(lathe_catalog *cat, const char *path, const uint8_t *data, size_t len) {
    char *key = image_key(path);
    if (!key) return lathe_fail(LATHE_ENOMEM, "%s: image key", path);
    lathe_record *rec = lathe_catalog_record(cat, key);
    free(key);
    if (!rec) return lathe_fail(LATHE_ENOMEM, "%s: catalog record", path);
    rec->normalized = 1;
    size_t n;
    char *text = copy_text(data, len, &n);
    if (!text) return lathe_fail(LATHE_ENOMEM, "%s: %zu bytes", path, len);
    char *cur = text, *line;
    int lineno = 0, has_nul, rc = 0;
    while (!rc && (line = next_line(&cur, text + n, &has_nul))) {
        lineno++;
        if (has_nul) {
            lathe_catalog_reject(cat, path, "malformed_label", "line %d: contains a NUL byte", lineno);
            continue;
        }
        lathe_box box;
        char why[200];
        int got = parse_label_line(line, &box, why, sizeof why);
        if (got < 0) lathe_catalog_reject(cat, path, "malformed_label", "line %d: %s", lineno, why);
        else if (got > 0) rc = lathe_record_add_box(rec, &box);
    }
    free(text);
    return rc;
}

/* Declares class id with name, rejecting (but keeping the first name) when another class list of
 * the source already gave this id a different name. */
static int declare_named(lathe_catalog *cat, const char *path, int line, int64_t id, const char *name) {
    for (size_t i = 0; i < lathe_catalog_nclasses(cat); i++) {
        const lathe_class *c = lathe_catalog_class_at(cat, i);
        if (c->source_id != id) continue;
        if (name && c->name && strcmp(c->name, name) != 0)
            lathe_catalog_reject(cat, path, "class_conflict", "line %d: class %lld is '%s' here but '%s' elsewhere",
                                 line, (long long)id, name, c->name);
        break;
    }
    return lathe_catalog_declare_class(cat, id, name);
}

/* classes.txt / obj.names: one name per line, ids from 0. Blank lines at the end are ignored; a
 * blank line between names still takes an id (so later ids stay right) and is rejected. */
static int parse_names_file(lathe_catalog *cat, const char *path, const uint8_t *data, size_t len) {
    size_t n;
    char *text = copy_text(data, len, &n);
    if (!text) return lathe_fail(LATHE_ENOMEM, "%s: %zu bytes", path, len);
    char *cur = text, *line;
    int lineno = 0, has_nul, rc = 0, blanks = 0;
    int64_t id = 0;
    while (!rc && (line = next_line(&cur, text + n, &has_nul))) {
        lineno++;
        char *name = trim(line);
        if (!*name || has_nul) {
            blanks++;
            continue;
        }
        for (; blanks > 0; blanks--, id++) {
            lathe_catalog_reject(cat, path, "malformed_label", "class %lld has an empty name", (long long)id);
            if ((rc = lathe_catalog_declare_class(cat, id, NULL))) break;
        }
        if (rc) break;
        if (id >= YOLO_MAX_CLASSES) {
            rc = lathe_fail(LATHE_ELIMIT, "%s: line %d: more than %d classes", path, lineno, YOLO_MAX_CLASSES);
            break;
        }
        rc = declare_named(cat, path, lineno, id++, name);
    }
    free(text);
    return rc;
}

/* 1-based line of a scalar node, 0 when unknown. */
static int node_line(struct fy_node *node) {
    struct fy_token *tok = node ? fy_node_get_scalar_token(node) : NULL;
    const struct fy_mark *mark = tok ? fy_token_start_mark(tok) : NULL;
    return mark ? mark->line + 1 : 0;
}

/* The text of a scalar node of the document parsed from src (not an alias, no NUL byte) copied into
 * buf; -1 otherwise (out of memory too: the file is then refused as if malformed). */
static int scalar_text(struct fy_node *node, const lathe_yaml_source *src, char *buf, size_t cap) {
    if (!node || !fy_node_is_scalar(node) || fy_node_is_alias(node)) return -1;
    size_t len;
    char *s = lathe_yaml_scalar_copy(node, src, &len);
    int rc = s && len < cap && !memchr(s, '\0', len) ? 0 : -1;
    if (!rc) memcpy(buf, s, len + 1);
    free(s);
    return rc;
}

static int scalar_int(struct fy_node *node, const lathe_yaml_source *src, int64_t *out) {
    char buf[64], *end;
    if (scalar_text(node, src, buf, sizeof buf)) return -1;
    errno = 0;
    long long v = strtoll(buf, &end, 10);
    if (end == buf || *end || errno == ERANGE) return -1;
    *out = v;
    return 0;
}

/* Declares the classes of a names: sequence or id -> name mapping (key is the names: key, for
 * positions). A single bad entry is rejected; returns a negative code only when out of memory. */
static int declare_yaml_names(lathe_catalog *cat, const char *path, const lathe_yaml_source *src, struct fy_node *names,
                              struct fy_node *key) {
    char name[512];
    void *iter = NULL;
    int rc = 0;
    int is_seq = fy_node_is_sequence(names);
    if (is_seq) {
        struct fy_node *item;
        for (int64_t i = 0; !rc && (item = fy_node_sequence_iterate(names, &iter)); i++) {
            if (scalar_text(item, src, name, sizeof name)) {
                lathe_catalog_reject(cat, path, "malformed_label", "line %d: names[%lld] is not a plain string",
                                     node_line(item) ? node_line(item) : node_line(key), (long long)i);
                rc = lathe_catalog_declare_class(cat, i, NULL);
            } else {
                char *t = trim(name);
                rc = declare_named(cat, path, node_line(item), i, *t ? t : NULL);
            }
        }
        return rc;
    }
    struct fy_node_pair *pair;
    while (!rc && (pair = fy_node_mapping_iterate(names, &iter))) {
        struct fy_node *k = fy_node_pair_key(pair), *v = fy_node_pair_value(pair);
        int64_t id;
        if (scalar_int(k, src, &id) || id < 0 || id > INT32_MAX) {
            lathe_catalog_reject(cat, path, "malformed_label", "line %d: class key is not a non-negative integer id",
                                 node_line(k) ? node_line(k) : node_line(key));
            continue;
        }
        if (scalar_text(v, src, name, sizeof name)) {
            lathe_catalog_reject(cat, path, "malformed_label", "line %d: the name of class %lld is not a plain string",
                                 node_line(k), (long long)id);
            rc = lathe_catalog_declare_class(cat, id, NULL);
        } else {
            char *t = trim(name);
            rc = declare_named(cat, path, node_line(v), id, *t ? t : NULL);
        }
    }
    return rc;
}

/* data.yaml's train:/val:/test: (a path or a list of paths, relative to path:): each folder named
 * holds images of that split (lathe_catalog_split_folder), each list file (*.txt) names them
 * (lathe_catalog_name_list: every .txt outside labels/ was kept for this, yolo_parse). */
static int split_folders(lathe_catalog *cat, const lathe_yaml_source *src, struct fy_node *value, int split) {
    char text[1024];
    int rc = 0;
    if (value && fy_node_is_scalar(value) && !scalar_text(value, src, text, sizeof text)) {
        rc = lathe_path_ends_with(text, ".txt") ? lathe_catalog_name_list(cat, text, split)
                                                : lathe_catalog_split_folder(cat, text, split);
    } else if (value && fy_node_is_sequence(value)) {
        void *iter = NULL;
        struct fy_node *item;
        while (!rc && (item = fy_node_sequence_iterate(value, &iter))) /* paths only: no nesting */
            if (!scalar_text(item, src, text, sizeof text))
                rc = lathe_path_ends_with(text, ".txt") ? lathe_catalog_name_list(cat, text, split)
                                                        : lathe_catalog_split_folder(cat, text, split);
    }
    return rc;
}

/* The data.yaml of Ultralytics: names (a list, or a map id -> name) and/or nc. As Ultralytics does,
 * a names count that differs from nc makes the file unusable. Aliases are never resolved. */
static int parse_yaml(lathe_catalog *cat, const char *path, const uint8_t *data, size_t len) {
    if (len > YOLO_MAX_YAML_BYTES)
        return lathe_fail(LATHE_ELIMIT, "%s: %zu bytes, more than a data.yaml can be (%d)", path, len,
                          YOLO_MAX_YAML_BYTES);
    struct fy_document *doc;
    int rc = lathe_yaml_parse((const char *)data, len, path, &doc);
    if (rc) return rc;
    const lathe_yaml_source src = {(const char *)data, len};
    struct fy_node *root = fy_document_root(doc);
    struct fy_node *names = NULL, *names_key = NULL, *nc_node = NULL, *nc_key = NULL;
    if (!root || !fy_node_is_mapping(root) || fy_node_is_alias(root)) {
        rc = lathe_fail(LATHE_EFORMAT, "%s: line 1: the document is %s, not a mapping with names: or nc:", path,
                        !root ? "empty" : fy_node_is_sequence(root) ? "a sequence" : "a scalar");
        goto done;
    }
    void *iter = NULL;
    struct fy_node_pair *pair;
    char key[16];
    while ((pair = fy_node_mapping_iterate(root, &iter))) {
        struct fy_node *k = fy_node_pair_key(pair);
        if (scalar_text(k, &src, key, sizeof key)) continue;
        int split = !strcmp(key, "train") ? 0 : !strcmp(key, "val") ? 1 : !strcmp(key, "test") ? 2 : -1;
        if (split >= 0 && (rc = split_folders(cat, &src, fy_node_pair_value(pair), split))) goto done;
        if (strcmp(key, "names") == 0) {
            names_key = k;
            names = fy_node_pair_value(pair);
        } else if (strcmp(key, "nc") == 0) {
            nc_key = k;
            nc_node = fy_node_pair_value(pair);
        }
    }
    int64_t nc = -1, count = -1;
    if (nc_key && (scalar_int(nc_node, &src, &nc) || nc < 0)) {
        rc = lathe_fail(LATHE_EFORMAT, "%s: line %d: nc is not a class count", path, node_line(nc_key));
        goto done;
    }
    if (nc > YOLO_MAX_CLASSES) {
        rc = lathe_fail(LATHE_ELIMIT, "%s: line %d: nc %lld is more than %d classes", path, node_line(nc_key),
                        (long long)nc, YOLO_MAX_CLASSES);
        goto done;
    }
    if (names_key) {
        if (!names || fy_node_is_alias(names) || !(fy_node_is_sequence(names) || fy_node_is_mapping(names))) {
            rc = lathe_fail(LATHE_EFORMAT, "%s: line %d: names must be a list or a map of id: name", path,
                            node_line(names_key));
            goto done;
        }
        count = fy_node_is_sequence(names) ? fy_node_sequence_item_count(names) : fy_node_mapping_item_count(names);
        if (nc >= 0 && count != nc)
            rc = lathe_fail(LATHE_EFORMAT, "%s: line %d: names has %lld entries but nc is %lld", path,
                            node_line(nc_key), (long long)count, (long long)nc);
        else if (count > YOLO_MAX_CLASSES)
            rc = lathe_fail(LATHE_ELIMIT, "%s: line %d: %lld class names, more than %d", path, node_line(names_key),
                            (long long)count, YOLO_MAX_CLASSES);
        else
            rc = declare_yaml_names(cat, path, &src, names, names_key);
    } else if (nc >= 0) {
        for (int64_t i = 0; !rc && i < nc; i++) rc = lathe_catalog_declare_class(cat, i, NULL);
    } else {
        rc = lathe_fail(LATHE_EFORMAT, "%s: line 1: neither names: nor nc: is given", path);
    }
done:
    fy_document_destroy(doc);
    return rc;
}

/* The split of an image list beside data.yaml (train.txt, val.txt, test.txt, and Ultralytics'
 * autosplit_train.txt ...: one image path a line, as data.yaml's train:/val: may name them), or -1.
 * Files under labels/ are label files, never lists. */
static int split_list(const char *path) {
    static const char *const names[] = {"train.txt", "val.txt", "test.txt"};
    if (last_labels_dir(path) || is_names_file(path)) return -1;
    const char *b = base_name(path);
    if (!strncasecmp(b, "autosplit_", 10)) b += 10;
    for (int s = 0; s < 3; s++)
        if (strcasecmp(b, names[s]) == 0) return s;
    return -1;
}

/* A .txt outside labels/ that is no class list: an image list, perhaps (data.yaml may name it). */
static int maybe_list(const char *path) {
    return lathe_path_ends_with(path, ".txt") && !last_labels_dir(path) && !is_names_file(path);
}

static lathe_entry_role yolo_role(const char *path) {
    if (lathe_path_is_debris(path)) return LATHE_ENTRY_OTHER;
    return is_yaml_file(path) || is_names_file(path) || is_label_file(path) || maybe_list(path) ? LATHE_ENTRY_LABEL
                                                                                                : LATHE_ENTRY_OTHER;
}

static int yolo_parse(lathe_catalog *cat, const char *path, const uint8_t *data, size_t len) {
    if (is_yaml_file(path)) return parse_yaml(cat, path, data, len);
    if (is_names_file(path)) return parse_names_file(cat, path, data, len);
    if (split_list(path) >= 0) return lathe_catalog_read_split_list(cat, path, data, len, split_list(path));
    if (maybe_list(path)) return lathe_catalog_keep_list(cat, path, data, len); /* read if data.yaml names it */
    if (!is_label_file(path)) return lathe_fail(LATHE_EINVAL, "yolo: %s is not a YOLO label file", path);
    return parse_labels(cat, path, data, len);
}

static int compare_i32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* Without any class list, the class ids that the labels use become the classes (class_<id>). */
static int declare_seen_ids(lathe_catalog *cat) {
    size_t total = 0;
    for (size_t i = 0; i < lathe_catalog_nrecords(cat); i++) total += lathe_catalog_at(cat, i)->nboxes;
    if (!total) return 0;
    int32_t *ids = malloc(total * sizeof *ids);
    if (!ids) return lathe_fail(LATHE_ENOMEM, "yolo: %zu class ids", total);
    size_t k = 0;
    for (size_t i = 0; i < lathe_catalog_nrecords(cat); i++) {
        const lathe_record *r = lathe_catalog_at(cat, i);
        for (size_t b = 0; b < r->nboxes; b++) ids[k++] = r->boxes[b].label;
    }
    if (total) qsort(ids, total, sizeof *ids, compare_i32);
    size_t distinct = 0;
    for (size_t i = 0; i < total; i++)
        if (i == 0 || ids[i] != ids[i - 1]) ids[distinct++] = ids[i];
    int rc = 0;
    if (distinct > YOLO_MAX_CLASSES)
        rc = lathe_fail(LATHE_ELIMIT, "yolo: the labels use %zu distinct class ids and no class list names them; "
                        "more than %d", distinct, YOLO_MAX_CLASSES);
    for (size_t i = 0; !rc && i < distinct; i++) rc = lathe_catalog_declare_class(cat, ids[i], NULL);
    free(ids);
    return rc;
}

/* Declares classes when no list did, and gives each image under images/ without a label file an
 * empty record: YOLO's background images. */
static int yolo_scan_paths(lathe_catalog *cat, const char *const *paths, size_t n) {
    int rc = 0;
    if (lathe_catalog_nclasses(cat) == 0 && (rc = declare_seen_ids(cat))) return rc;
    for (size_t i = 0; i < n; i++) {
        const char *p = paths[i];
        if (!lathe_path_is_image(p) || !lathe_path_has_dir(p, "images") || lathe_path_is_debris(p)) continue;
        const char *dot = strrchr(p, '.');
        char *bare = strndup(p, (size_t)(dot - p));
        if (!bare) return lathe_fail(LATHE_ENOMEM, "yolo: image path");
        int known = lathe_catalog_find(cat, bare) || lathe_catalog_find(cat, p);
        free(bare);
        if (known) continue;
        lathe_record *rec = lathe_catalog_record(cat, p);
        if (!rec) return lathe_fail(LATHE_ENOMEM, "yolo: record for %s", p);
        rec->normalized = 1;
    }
    return 0;
}

/* Scores the .txt files under labels/: highest with a class list (data.yaml, classes.txt), then with
 * an images/ folder beside them. */
static int yolo_detect(const char *const *paths, size_t n) {
    size_t labels = 0, lists = 0, images = 0;
    for (size_t i = 0; i < n; i++) {
        if (lathe_path_is_debris(paths[i])) continue;
        if (is_label_file(paths[i])) labels++;
        else if (is_yaml_file(paths[i]) || is_names_file(paths[i])) lists++;
        else if (lathe_path_is_image(paths[i]) && lathe_path_has_dir(paths[i], "images")) images++;
    }
    if (!labels) return 0;
    if (lists) return 90;
    return images ? 70 : 40;
}

/* YOLO txt labels. A label "a/labels/b/c.txt" describes the image "a/images/b/c.<ext>": records are
 * keyed by the image path without extension, boxes are normalized x1,y1,x2,y2 (record->normalized). */
const lathe_adapter lathe_adapter_yolo = {
    .name = "yolo",
    .summary = "YOLO: labels/**/*.txt (cls cx cy w h, normalized) + data.yaml or classes.txt",
    .detect = yolo_detect,
    .role = yolo_role,
    .parse = yolo_parse,
    .scan_paths = yolo_scan_paths,
};
