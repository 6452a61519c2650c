/* kitti.c - the KITTI object label format: label_2/<stem>.txt with one object per line (type,
 * truncation, occlusion, alpha, 2D box in pixels, 3D dimensions, location, rotation[, score]). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "datasets/adapters.h"
#include "libcore/base/error.h"

/* Values beyond this are not KITTI quantities (pixels, metres, radians). */
#define KITTI_VALUE_LIMIT 1e7
#define KITTI_MAX_FIELDS 16
/* Far more object types than any real label set; the catalog looks classes up linearly, so hostile
 * files with endless distinct types would otherwise cost quadratic time. */
#define KITTI_MAX_CLASSES 10000

/* Start of the last directory component of path whose name begins with prefix ("label_" finds
 * label_2, label_3), or NULL. */
static const char *last_dir_with_prefix(const char *path, const char *prefix) {
    const char *found = NULL;
    for (const char *p = path; (p = strstr(p, prefix)); p++)
        if ((p == path || p[-1] == '/') && strchr(p, '/')) found = p;
    return found;
}

static const char *last_label_dir(const char *path) { return last_dir_with_prefix(path, "label_"); }

static int is_label_file(const char *path) { return lathe_path_ends_with(path, ".txt") && last_label_dir(path); }

/* "training/label_2/000042.txt" -> "training/image_2/000042" (malloc'd): the image path without its
 * extension. NULL when out of memory. */
static char *image_key(const char *label_path) {
    const char *dir = last_label_dir(label_path);
    size_t len = strlen(label_path) - 4, pre = (size_t)(dir - label_path);
    char *key = malloc(len + 1);
    if (!key) return NULL;
    memcpy(key, label_path, pre);
    memcpy(key + pre, "image_", 6);
    memcpy(key + pre + 6, dir + 6, len - pre - 6);
    key[len] = '\0';
    return key;
}

static int parse_value(const char *tok, double *out) {
    char *end;
    errno = 0;
    double v = strtod(tok, &end);
    if (end == tok || *end || errno == ERANGE || !isfinite(v) || fabs(v) > KITTI_VALUE_LIMIT) return -1;
    *out = v;
    return 0;
}

/* One label line into box (all but the label) and type. Returns 1 for an object, 0 for a blank line
 * or a DontCare region, -1 when malformed (why says what).
 * DontCare lines mark regions that were not labelled (far or crowded objects). They carry no class,
 * and lathe boxes need one, so they are dropped: training treats those regions as background, and
 * evaluation of a KITTI-sourced dataset cannot forgive detections inside them. */
static int parse_line(char *line, lathe_box *box, const char **type, char *why, size_t cap) {
    char *save = NULL, *fields[KITTI_MAX_FIELDS + 1];
    const char *sep = " \t\r\v\f";
    int n = 0;
    for (char *tok = strtok_r(line, sep, &save); tok; tok = strtok_r(NULL, sep, &save)) {
        if (n <= KITTI_MAX_FIELDS) fields[n] = tok;
        n++;
    }
    if (n == 0) return 0;
    if (n != 15 && n != 16) {
        snprintf(why, cap, "%d fields, expected 15 (type truncated occluded alpha x1 y1 x2 y2 h w l x y z ry) or "
                 "16 (with a score)", n);
        return -1;
    }
    double v[KITTI_MAX_FIELDS];
    for (int i = 1; i < n; i++) {
        if (parse_value(fields[i], &v[i])) {
            snprintf(why, cap, "field %d '%.40s' is not a finite number of sane size", i + 1, fields[i]);
            return -1;
        }
    }
    if (strcmp(fields[0], "DontCare") == 0) return 0;
    *type = fields[0];
    memset(box, 0, sizeof *box);
    box->x1 = (float)v[4];
    box->y1 = (float)v[5];
    box->x2 = (float)v[6];
    box->y2 = (float)v[7];
    box->id = -1;
    box->area = -1;
    return 1;
}

static int kitti_parse(lathe_catalog *cat, const char *path, const uint8_t *data, size_t len) {
    int list = lathe_imagesets_split(path);
    if (list >= 0) return lathe_catalog_read_split_list(cat, path, data, len, list);
    if (!is_label_file(path)) return lathe_fail(LATHE_EINVAL, "kitti: %s is not in a label_* folder", path);
    char *key = image_key(path);
    if (!key) return lathe_fail(LATHE_ENOMEM, "%s: image key", path);
    lathe_record *rec = lathe_catalog_record(cat, key);
    free(key);
    if (!rec) return lathe_fail(LATHE_ENOMEM, "%s: catalog record", path);
    char *text = malloc(len + 1);
    if (!text) return lathe_fail(LATHE_ENOMEM, "%s: %zu bytes", path, len);
    if (len) memcpy(text, data, len);
    text[len] = '\0';
    char *cur = text, *end = text + len;
    int lineno = 0, rc = 0;
    while (!rc && cur < end) {
        char *line = cur, *nl = memchr(cur, '\n', (size_t)(end - cur)), *stop = nl ? nl : end;
        cur = nl ? nl + 1 : end;
        lineno++;
        if (memchr(line, '\0', (size_t)(stop - line))) {
            lathe_catalog_reject(cat, path, "malformed_label", "line %d: contains a NUL byte", lineno);
            continue;
        }
        *stop = '\0';
        lathe_box box;
        const char *type = NULL;
        char why[200];
        int got = parse_line(line, &box, &type, why, sizeof why);
        if (got < 0) {
            lathe_catalog_reject(cat, path, "malformed_label", "line %d: %s", lineno, why);
        } else if (got > 0) {
            int64_t id = lathe_catalog_class_named(cat, type);
            if (id < 0) rc = (int)id;
            else if (lathe_catalog_nclasses(cat) > KITTI_MAX_CLASSES)
                rc = lathe_fail(LATHE_ELIMIT, "%s: line %d: more than %d object types", path, lineno,
                                KITTI_MAX_CLASSES);
            box.label = (int32_t)id;
            if (!rc) rc = lathe_record_add_box(rec, &box);
        }
    }
    free(text);
    return rc;
}

/* label_N/NAME.txt, and the split lists of the KITTI object benchmark's usual ImageSets/{train,val,
 * test,trainval}.txt (one frame id a line), when a source has them */
static lathe_entry_role kitti_role(const char *path) {
    return (is_label_file(path) || lathe_imagesets_split(path) >= 0) && !lathe_path_is_debris(path) ? LATHE_ENTRY_LABEL
                                                                                                     : LATHE_ENTRY_OTHER;
}

/* label_N/NAME.txt scores; an image_N folder beside it scores higher. */
static int kitti_detect(const char *const *paths, size_t n) {
    size_t labels = 0, images = 0;
    for (size_t i = 0; i < n; i++) {
        if (lathe_path_is_debris(paths[i])) continue;
        if (is_label_file(paths[i])) labels++;
        else if (lathe_path_is_image(paths[i]) && last_dir_with_prefix(paths[i], "image_")) images++;
    }
    if (!labels) return 0;
    return images ? 85 : 75;
}

/* KITTI object labels: 2D boxes in pixels as given, classes by type name, DontCare dropped. A label
 * "x/label_2/s.txt" describes the image "x/image_2/s.<ext>" (records keyed without extension). */
const lathe_adapter lathe_adapter_kitti = {
    .name = "kitti",
    .summary = "KITTI: label_2/*.txt (type ... x1 y1 x2 y2 ... ry [score]) beside image_2/",
    .detect = kitti_detect,
    .role = kitti_role,
    .parse = kitti_parse,
    .scan_paths = NULL,
};
