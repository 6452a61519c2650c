/* coco.c - COCO detection JSON (instances_*.json): categories, images and bbox annotations.
 * Besides the standard keys it reads an image's "label" (image-level category id) and
 * "description"/"caption" (text). Annotations with broken fields are rejected one by one. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "adapters.h"
#include "libcore/base/config.h"
#include "libcore/base/error.h"
#include "libcore/base/hashmap.h"

static int ends_with_json(const char *path) {
    size_t n = strlen(path);
    return n > 5 && strcasecmp(path + n - 5, ".json") == 0;
}

/* A COCO-named JSON outranks every other format: when an archive carries several label formats
 * (lathe synth --yolo --voc), COCO holds the most (ids, areas, image labels, descriptions). */
static int coco_detect(const char *const *paths, size_t n) {
    int score = 0;
    for (size_t i = 0; i < n; i++) {
        if (!ends_with_json(paths[i])) continue;
        if (strstr(paths[i], "instances") || strstr(paths[i], "annotations") || strstr(paths[i], "coco")) return 100;
        score = 10;
    }
    return score;
}

static lathe_entry_role coco_role(const char *path) { return ends_with_json(path) ? LATHE_ENTRY_LABEL : LATHE_ENTRY_OTHER; }

/* An integral JSON number that fits int64 (cJSON's valueint saturates at 2^31-1). */
static int get_int64(const cJSON *obj, const char *key, int64_t *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble != floor(v->valuedouble) ||
        fabs(v->valuedouble) > 9007199254740992.0)
        return -1;
    *out = (int64_t)v->valuedouble;
    return 0;
}

static const char *get_string(const cJSON *obj, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int parse_categories(lathe_catalog *cat, const char *path, const cJSON *cats) {
    const cJSON *c;
    int index = 0;
    cJSON_ArrayForEach(c, cats) {
        int64_t id;
        const char *name = get_string(c, "name");
        if (get_int64(c, "id", &id) || !name) {
            lathe_catalog_reject(cat, path, "malformed_label", "categories[%d] has no integer id or no name", index);
        } else {
            int rc = lathe_catalog_declare_class(cat, id, name);
            if (rc) return rc;
        }
        index++;
    }
    return 0;
}

/* split: the split the annotation file's name says (instances_val2017.json: val), or -1 */
static int parse_images(lathe_catalog *cat, const char *path, const cJSON *images, lathe_hashmap *by_id, int split) {
    const cJSON *im;
    size_t index = 0;
    cJSON_ArrayForEach(im, images) {
        int64_t id, w = 0, h = 0, label;
        const char *file = get_string(im, "file_name");
        char key[32];
        if (get_int64(im, "id", &id) || !file || !*file) {
            lathe_catalog_reject(cat, path, "malformed_label", "images[%zu] has no integer id or no file_name", index++);
            continue;
        }
        snprintf(key, sizeof key, "%lld", (long long)id);
        if (lathe_hashmap_get(by_id, key, NULL)) {
            lathe_catalog_reject(cat, path, "duplicate_image_id", "images[%zu]: id %lld appears twice", index++,
                                 (long long)id);
            continue;
        }
        lathe_record *r = lathe_catalog_record(cat, file);
        if (!r) return lathe_fail(LATHE_ENOMEM, "coco image record");
        r->image_id = id;
        if (split >= 0) lathe_record_put_split(r, split);
        if (!get_int64(im, "width", &w) && !get_int64(im, "height", &h) && w > 0 && h > 0 && w < (1 << 30) &&
            h < (1 << 30)) {
            r->width = (int)w;
            r->height = (int)h;
        }
        if (!get_int64(im, "label", &label) && label >= INT32_MIN && label <= INT32_MAX) r->label = (int32_t)label;
        const char *text = get_string(im, "description");
        if (!text) text = get_string(im, "caption");
        if (text && lathe_record_set(&r->text, text)) return -LATHE_ENOMEM;
        if (lathe_hashmap_put(by_id, key, lathe_catalog_nrecords(cat) - 1)) return -LATHE_ENOMEM;
        index++;
    }
    return 0;
}

static int read_bbox(const cJSON *ann, float xywh[4]) {
    const cJSON *bbox = cJSON_GetObjectItemCaseSensitive(ann, "bbox");
    if (!cJSON_IsArray(bbox) || cJSON_GetArraySize(bbox) != 4) return -1;
    for (int k = 0; k < 4; k++) {
        const cJSON *v = cJSON_GetArrayItem(bbox, k);
        if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || fabs(v->valuedouble) > 1e9) return -1;
        xywh[k] = (float)v->valuedouble;
    }
    return 0;
}

static int parse_annotations(lathe_catalog *cat, const char *path, const cJSON *anns, const lathe_hashmap *by_id) {
    lathe_hashmap *seen = lathe_hashmap_create();
    if (!seen) return lathe_fail(LATHE_ENOMEM, "annotation ids");
    const cJSON *ann;
    size_t index = 0;
    int rc = 0;
    cJSON_ArrayForEach(ann, anns) {
        int64_t id = -1, image_id, category;
        float xywh[4];
        char key[32];
        size_t rec;
        index++;
        if (get_int64(ann, "image_id", &image_id) || get_int64(ann, "category_id", &category) || read_bbox(ann, xywh) ||
            category < INT32_MIN || category > INT32_MAX) {
            lathe_catalog_reject(cat, path, "malformed_label",
                                 "annotations[%zu] lacks an integer image_id/category_id or a 4-number bbox", index - 1);
            continue;
        }
        if (!get_int64(ann, "id", &id)) {
            snprintf(key, sizeof key, "%lld", (long long)id);
            if (lathe_hashmap_get(seen, key, NULL)) {
                lathe_catalog_reject(cat, path, "duplicate_annotation_id",
                                     "annotation id %lld appears more than once; the later one is skipped", (long long)id);
                continue;
            }
            if ((rc = lathe_hashmap_put(seen, key, 0))) break;
        }
        snprintf(key, sizeof key, "%lld", (long long)image_id);
        if (!lathe_hashmap_get(by_id, key, &rec)) {
            lathe_catalog_reject(cat, path, "unknown_image", "annotation %lld refers to image id %lld, which is not listed",
                                 (long long)id, (long long)image_id);
            continue;
        }
        const cJSON *area = cJSON_GetObjectItemCaseSensitive(ann, "area");
        const cJSON *crowd = cJSON_GetObjectItemCaseSensitive(ann, "iscrowd");
        const cJSON *ignore = cJSON_GetObjectItemCaseSensitive(ann, "ignore");
        lathe_box box = {
            .x1 = xywh[0], .y1 = xywh[1], .x2 = xywh[0] + xywh[2], .y2 = xywh[1] + xywh[3],
            .label = (int32_t)category, .id = id,
            .area = cJSON_IsNumber(area) && isfinite(area->valuedouble) ? (float)area->valuedouble : -1.0f,
            .flags = (uint8_t)((cJSON_IsNumber(crowd) && crowd->valuedouble != 0 ? LATHE_BOX_CROWD : 0) |
                               (cJSON_IsNumber(ignore) && ignore->valuedouble != 0 ? LATHE_BOX_IGNORE : 0)),
        };
        /* a negative width or height is kept as x2 < x1 so that ingest applies --box-policy to it */
        if ((rc = lathe_record_add_box(lathe_catalog_at(cat, rec), &box))) break;
    }
    lathe_hashmap_free(seen);
    return rc;
}

static int coco_parse(lathe_catalog *cat, const char *path, const uint8_t *data, size_t len) {
    size_t at;
    cJSON *root = lathe_json_parse((const char *)data, len, &at);
    if (!root && errno == ENOMEM)
        return lathe_fail(LATHE_ENOMEM, "%s: out of memory for its JSON tree (%zu bytes of text)", path, len);
    if (!root) return lathe_fail(LATHE_EFORMAT, "%s: invalid JSON near byte %zu", path, at);
    const cJSON *images = cJSON_GetObjectItemCaseSensitive(root, "images");
    if (!cJSON_IsArray(images)) { /* some other JSON file (metadata): not a COCO label file */
        cJSON_Delete(root);
        return 0;
    }
    const cJSON *cats = cJSON_GetObjectItemCaseSensitive(root, "categories");
    const cJSON *anns = cJSON_GetObjectItemCaseSensitive(root, "annotations");
    lathe_hashmap *by_id = lathe_hashmap_create();
    int rc = by_id ? 0 : lathe_fail(LATHE_ENOMEM, "image ids");
    if (!rc && cats && !cJSON_IsArray(cats)) rc = lathe_fail(LATHE_EFORMAT, "%s: \"categories\" is not a list", path);
    if (!rc && anns && !cJSON_IsArray(anns)) rc = lathe_fail(LATHE_EFORMAT, "%s: \"annotations\" is not a list", path);
    if (!rc && cats) rc = parse_categories(cat, path, cats);
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    if (!rc) rc = parse_images(cat, path, images, by_id, lathe_split_named(base, strlen(base)));
    if (!rc && anns) rc = parse_annotations(cat, path, anns, by_id);
    lathe_hashmap_free(by_id);
    cJSON_Delete(root);
    return rc;
}

const lathe_adapter lathe_adapter_coco = {
    .name = "coco",
    .summary = "COCO JSON (images, categories, bbox annotations; image \"label\" and \"description\" extensions)",
    .detect = coco_detect,
    .role = coco_role,
    .parse = coco_parse,
    .scan_paths = NULL,
};
