/* manifest.c - manifest.json read and written with cJSON (64-bit numbers as strings where they
 * can exceed 2^53: checksums are hex strings). */
#include "manifest.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../base/config.h"
#include "../base/error.h"
#include "../base/fsutil.h"
#include "shard.h"

#define MANIFEST_MAX_BYTES ((size_t)1 << 30)

static cJSON *string_array(char *const *values, int n) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; a && i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateString(values[i]));
    return a;
}

int lathe_manifest_save(const char *dir, const lathe_manifest *m) {
    cJSON *root = cJSON_CreateObject();
    if (!root) return lathe_fail(LATHE_ENOMEM, "manifest");
    cJSON_AddNumberToObject(root, "lathe_schema", m->schema);
    cJSON_AddStringToObject(root, "created_by", m->created_by ? m->created_by : "lathe");
    cJSON_AddBoolToObject(root, "complete", m->complete);
    cJSON_AddStringToObject(root, "store", m->store == LATHE_STORE_PIXELS ? "pixels" : "encoded");
    cJSON *size = cJSON_AddArrayToObject(root, "image_size");
    cJSON_AddItemToArray(size, cJSON_CreateNumber(m->height));
    cJSON_AddItemToArray(size, cJSON_CreateNumber(m->width));
    cJSON_AddNumberToObject(root, "channels", m->channels);
    cJSON_AddItemToObject(root, "class_names", string_array(m->class_names, m->nclasses));
    cJSON_AddBoolToObject(root, "masks", m->has_masks);
    cJSON_AddBoolToObject(root, "text", m->has_text);
    cJSON *sensors = cJSON_AddObjectToObject(root, "sensors");
    cJSON_AddNumberToObject(sensors, "steps", m->sensor_steps);
    cJSON_AddItemToObject(sensors, "channels", string_array(m->sensor_names, m->sensor_channels));
    cJSON_AddStringToObject(root, "source_format", m->source_format ? m->source_format : "");
    if (m->split_origin) cJSON_AddStringToObject(root, "split_origin", m->split_origin);
    if (m->part) cJSON_AddStringToObject(root, "part", m->part);
    cJSON *args = m->args_json ? cJSON_Parse(m->args_json) : NULL;
    cJSON_AddItemToObject(root, "args", args ? args : cJSON_CreateObject());
    cJSON *splits = cJSON_AddObjectToObject(root, "splits");
    for (int s = 0; s < LATHE_NSPLITS; s++)
        cJSON_AddNumberToObject(splits, lathe_split_name(s), (double)lathe_manifest_samples(m, s));
    cJSON_AddNumberToObject(root, "samples", (double)lathe_manifest_samples(m, -1));
    cJSON_AddNumberToObject(root, "rejected", (double)m->rejected);
    cJSON *shards = cJSON_AddArrayToObject(root, "shards");
    for (size_t i = 0; i < m->nshards; i++) {
        const lathe_manifest_shard *sh = &m->shards[i];
        char hex[17];
        snprintf(hex, sizeof hex, "%016" PRIx64, sh->xxh64);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "file", sh->file);
        cJSON_AddStringToObject(o, "split", lathe_split_name(sh->split));
        cJSON_AddNumberToObject(o, "samples", (double)sh->samples);
        cJSON_AddNumberToObject(o, "bytes", (double)sh->bytes);
        cJSON_AddStringToObject(o, "xxh64", hex);
        cJSON_AddItemToArray(shards, o);
    }
    cJSON *resume = cJSON_AddObjectToObject(root, "resume");
    for (int s = 0; s < LATHE_NSPLITS; s++)
        cJSON_AddNumberToObject(resume, lathe_split_name(s), (double)m->committed[s]);
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (!text) return lathe_fail(LATHE_ENOMEM, "manifest text");
    char path[4200];
    snprintf(path, sizeof path, "%s/manifest.json", dir);
    size_t n = strlen(text);
    text[n] = '\n'; /* cJSON's buffer has room for the NUL we overwrite; we write n + 1 bytes */
    int rc = lathe_write_atomic(path, text, n + 1);
    cJSON_free(text);
    return rc;
}

/* A whole number 0..2^53 (exact in a double), else -1. */
static int u64_of(const cJSON *v, uint64_t *out) {
    if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 9007199254740992.0 ||
        v->valuedouble != floor(v->valuedouble))
        return -1;
    *out = (uint64_t)v->valuedouble;
    return 0;
}

/* A whole number 0..2^30, else -1. */
static int int_of(const cJSON *v, int *out) {
    uint64_t u;
    if (u64_of(v, &u) || u > (1u << 30)) return -1;
    *out = (int)u;
    return 0;
}

static int get_u64(const cJSON *o, const char *key, uint64_t *out) {
    return u64_of(cJSON_GetObjectItemCaseSensitive(o, key), out);
}

static int get_int(const cJSON *o, const char *key, int *out) { return int_of(cJSON_GetObjectItemCaseSensitive(o, key), out); }

static int get_strings(const cJSON *a, char ***out, int *n) {
    *out = NULL;
    *n = 0;
    if (!cJSON_IsArray(a)) return -1;
    int count = cJSON_GetArraySize(a);
    char **v = calloc(count ? (size_t)count : 1, sizeof *v);
    if (!v) return -1;
    for (int i = 0; i < count; i++) {
        const cJSON *s = cJSON_GetArrayItem(a, i);
        if (!cJSON_IsString(s) || !(v[i] = strdup(s->valuestring))) {
            for (int k = 0; k < i; k++) free(v[k]);
            free(v);
            return -1;
        }
    }
    *out = v;
    *n = count;
    return 0;
}

static char *dup_string(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? strdup(v->valuestring) : NULL;
}

/* 1 when a shard file name is a plain name inside the dataset folder. */
static int safe_file_name(const char *f) { return *f && !strchr(f, '/') && strcmp(f, ".") && strcmp(f, ".."); }

static int parse_shards(const cJSON *shards, lathe_manifest *m) {
    const cJSON *o;
    cJSON_ArrayForEach(o, shards) {
        const cJSON *file = cJSON_GetObjectItemCaseSensitive(o, "file");
        const cJSON *split = cJSON_GetObjectItemCaseSensitive(o, "split");
        const cJSON *hash = cJSON_GetObjectItemCaseSensitive(o, "xxh64");
        uint64_t samples, bytes;
        char *end = NULL;
        if (!cJSON_IsString(file) || !safe_file_name(file->valuestring) || !cJSON_IsString(split) ||
            lathe_split_parse(split->valuestring) < 0 || !cJSON_IsString(hash) || get_u64(o, "samples", &samples) ||
            get_u64(o, "bytes", &bytes))
            return lathe_fail(LATHE_EFORMAT, "manifest: shard %zu is malformed", m->nshards);
        uint64_t h = strtoull(hash->valuestring, &end, 16);
        if (!end || *end || strlen(hash->valuestring) != 16)
            return lathe_fail(LATHE_EFORMAT, "manifest: shard %zu has a bad xxh64", m->nshards);
        int rc = lathe_manifest_add_shard(m, file->valuestring, lathe_split_parse(split->valuestring), samples, bytes, h);
        if (rc) return rc;
    }
    return 0;
}

int lathe_manifest_load(const char *dir, lathe_manifest *m) {
    memset(m, 0, sizeof *m);
    char path[4200], *text;
    size_t len;
    snprintf(path, sizeof path, "%s/manifest.json", dir);
    int rc = lathe_read_file(path, MANIFEST_MAX_BYTES, &text, &len);
    if (rc) return rc;
    cJSON *root = lathe_json_parse(text, len, NULL);
    free(text);
    if (!root) return lathe_fail(LATHE_EFORMAT, "%s: not valid JSON", path);
    const cJSON *size = cJSON_GetObjectItemCaseSensitive(root, "image_size");
    const cJSON *sensors = cJSON_GetObjectItemCaseSensitive(root, "sensors");
    const cJSON *store = cJSON_GetObjectItemCaseSensitive(root, "store");
    const cJSON *resume = cJSON_GetObjectItemCaseSensitive(root, "resume");
    const cJSON *args = cJSON_GetObjectItemCaseSensitive(root, "args");
    uint64_t rejected = 0;
    rc = 0;
    if (get_int(root, "lathe_schema", &m->schema) || m->schema != LATHE_SCHEMA_VERSION)
        rc = lathe_fail(LATHE_EFORMAT, "%s: lathe_schema is not %d", path, LATHE_SCHEMA_VERSION);
    else if (!cJSON_IsArray(size) || cJSON_GetArraySize(size) != 2 || int_of(cJSON_GetArrayItem(size, 0), &m->height) ||
             int_of(cJSON_GetArrayItem(size, 1), &m->width) || !cJSON_IsString(store) ||
             get_int(root, "channels", &m->channels) ||
             get_strings(cJSON_GetObjectItemCaseSensitive(root, "class_names"), &m->class_names, &m->nclasses) ||
             !cJSON_IsObject(sensors) || get_int(sensors, "steps", &m->sensor_steps) ||
             get_strings(cJSON_GetObjectItemCaseSensitive(sensors, "channels"), &m->sensor_names, &m->sensor_channels) ||
             !cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(root, "shards")))
        rc = lathe_fail(LATHE_EFORMAT, "%s: missing or malformed schema keys", path);
    if (!rc) {
        m->store = strcmp(store->valuestring, "encoded") == 0 ? LATHE_STORE_ENCODED : LATHE_STORE_PIXELS;
        m->complete = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, "complete"));
        m->has_masks = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, "masks"));
        m->has_text = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, "text"));
        m->created_by = dup_string(root, "created_by");
        m->source_format = dup_string(root, "source_format");
        m->split_origin = dup_string(root, "split_origin");
        m->part = dup_string(root, "part");
        m->args_json = args ? cJSON_PrintUnformatted(args) : NULL;
        if (!get_u64(root, "rejected", &rejected)) m->rejected = rejected;
        for (int s = 0; resume && s < LATHE_NSPLITS; s++) get_u64(resume, lathe_split_name(s), &m->committed[s]);
        rc = parse_shards(cJSON_GetObjectItemCaseSensitive(root, "shards"), m);
    }
    cJSON_Delete(root);
    if (rc) lathe_manifest_free(m);
    return rc;
}

int lathe_manifest_add_shard(lathe_manifest *m, const char *file, int split, uint64_t samples, uint64_t bytes,
                             uint64_t xxh64) {
    lathe_manifest_shard *p = realloc(m->shards, (m->nshards + 1) * sizeof *p);
    if (!p) return lathe_fail(LATHE_ENOMEM, "manifest shards");
    m->shards = p;
    lathe_manifest_shard *sh = &m->shards[m->nshards];
    if (!(sh->file = strdup(file))) return lathe_fail(LATHE_ENOMEM, "manifest shards");
    sh->split = split;
    sh->samples = samples;
    sh->bytes = bytes;
    sh->xxh64 = xxh64;
    m->nshards++;
    return 0;
}

uint64_t lathe_manifest_samples(const lathe_manifest *m, int split) {
    uint64_t n = 0;
    for (size_t i = 0; i < m->nshards; i++)
        if (split < 0 || m->shards[i].split == split) n += m->shards[i].samples;
    return n;
}

static void free_strings(char **v, int n) {
    for (int i = 0; i < n; i++) free(v[i]);
    free(v);
}

void lathe_manifest_tiling(const lathe_manifest *m, int *tile, int *overlap) {
    cJSON *args = m->args_json ? cJSON_Parse(m->args_json) : NULL;
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(args, "tile"), *o = cJSON_GetObjectItemCaseSensitive(args, "overlap");
    *tile = cJSON_IsNumber(t) && t->valuedouble > 0 && t->valuedouble <= INT_MAX ? (int)t->valuedouble : 0;
    *overlap = *tile && cJSON_IsNumber(o) && o->valuedouble >= 0 && o->valuedouble < *tile ? (int)o->valuedouble : 0;
    cJSON_Delete(args);
}

void lathe_manifest_free(lathe_manifest *m) {
    free(m->created_by);
    free_strings(m->sensor_names, m->sensor_channels);
    free_strings(m->class_names, m->nclasses);
    free(m->source_format);
    free(m->split_origin);
    cJSON_free(m->args_json);
    free(m->part);
    for (size_t i = 0; i < m->nshards; i++) free(m->shards[i].file);
    free(m->shards);
    memset(m, 0, sizeof *m);
}
