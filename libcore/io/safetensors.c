/* safetensors.c - reading and writing safetensors files (safetensors.h). The header is JSON
 * through cJSON; offsets are taken from valuedouble and required to be integral (cJSON's valueint
 * saturates at 2^31-1), and duplicate keys, which cJSON accepts silently, are refused. */
#include "safetensors.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "libcore/base/config.h"
#include "libcore/base/error.h"
#include "libcore/base/fsutil.h"

#define MAX_HEADER (100u << 20)

/* float32 to bfloat16, round to nearest even (NaN stays a quiet NaN) */
static uint16_t to_bf16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40);
    return (uint16_t)((x + 0x7fffu + ((x >> 16) & 1)) >> 16);
}

/* float32 to IEEE half, round to nearest even; beyond the range: infinity; tiny: subnormal or 0 */
static uint16_t to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000u, ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u) return (uint16_t)(sign | 0x7e00u);              /* NaN */
    if (ax >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u);             /* rounds past 65504: inf */
    if (ax < 0x38800000u) {                                                /* below 2^-14: subnormal */
        float a;
        memcpy(&a, &ax, 4);
        return (uint16_t)(sign | (uint32_t)lrintf(a * 16777216.0f));      /* units of 2^-24, to even */
    }
    uint32_t m = ax + 0xfffu + ((ax >> 13) & 1);                           /* round the 13 dropped bits */
    return (uint16_t)(sign | ((m - 0x38000000u) >> 13));
}

static const char *const st_dtype_name[3] = {"F32", "F16", "BF16"};

/* The content hash: XXH64 over the tensors in name order, each its name (NUL included) and its
 * bytes, so it does not change when another writer (Python's safetensors) lays the same tensors out
 * in another order. */
typedef struct {
    const char *name;
    const uint8_t *data;
    size_t len;
} hashed;

static int by_name(const void *a, const void *b) { return strcmp(((const hashed *)a)->name, ((const hashed *)b)->name); }

static uint64_t content_hash(hashed *t, size_t n) {
    qsort(t, n, sizeof *t, by_name);
    XXH64_state_t *st = XXH64_createState();
    if (!st) return 0;
    XXH64_reset(st, 0);
    for (size_t i = 0; i < n; i++) XXH64_update(st, t[i].name, strlen(t[i].name) + 1), XXH64_update(st, t[i].data, t[i].len);
    uint64_t h = XXH64_digest(st);
    XXH64_freeState(st);
    return h;
}

int lathe_st_write(const char *path, const lathe_st_tensor *t, size_t n, const char *const *meta, size_t nmeta) {
    cJSON *h = cJSON_CreateObject();
    if (nmeta) {
        cJSON *m = cJSON_AddObjectToObject(h, "__metadata__");
        for (size_t i = 0; i < nmeta; i++) cJSON_AddStringToObject(m, meta[2 * i], meta[2 * i + 1]);
    }
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        if (cJSON_GetObjectItemCaseSensitive(h, t[i].name)) {
            cJSON_Delete(h);
            return lathe_fail(LATHE_EINVAL, "%s: tensor %s twice", path, t[i].name);
        }
        size_t count = 1;
        if (t[i].dtype < LATHE_ST_F32 || t[i].dtype > LATHE_ST_BF16) {
            cJSON_Delete(h);
            return lathe_fail(LATHE_EINVAL, "%s: tensor %s of unknown dtype %d", path, t[i].name, t[i].dtype);
        }
        cJSON *e = cJSON_AddObjectToObject(h, t[i].name), *shape;
        cJSON_AddStringToObject(e, "dtype", st_dtype_name[t[i].dtype]);
        shape = cJSON_AddArrayToObject(e, "shape");
        for (int k = 0; k < t[i].rank; k++) {
            cJSON_AddItemToArray(shape, cJSON_CreateNumber(t[i].shape[k]));
            count *= (size_t)t[i].shape[k];
        }
        cJSON *range = cJSON_AddArrayToObject(e, "data_offsets");
        cJSON_AddItemToArray(range, cJSON_CreateNumber((double)off));
        off += count * (t[i].dtype == LATHE_ST_F32 ? 4 : 2);
        cJSON_AddItemToArray(range, cJSON_CreateNumber((double)off));
    }
    /* the tensors' bytes first: their hash goes into the header (checked by lathe_st_open) */
    uint8_t *payload = malloc(off ? off : 1), *data = payload;
    if (!payload) {
        cJSON_Delete(h);
        return lathe_fail(LATHE_ENOMEM, "%s: %zu bytes", path, off);
    }
    for (size_t i = 0; i < n; i++) {
        size_t count = 1;
        for (int k = 0; k < t[i].rank; k++) count *= (size_t)t[i].shape[k];
        for (size_t k = 0; k < count; k++) { /* little-endian */
            uint32_t bits;
            memcpy(&bits, &t[i].data[k], 4);
            if (t[i].dtype != LATHE_ST_F32) bits = t[i].dtype == LATHE_ST_F16 ? to_f16(t[i].data[k]) : to_bf16(t[i].data[k]);
            for (int b = 0; b < (t[i].dtype == LATHE_ST_F32 ? 4 : 2); b++) *data++ = (uint8_t)(bits >> (8 * b));
        }
    }
    hashed *parts = malloc((n ? n : 1) * sizeof *parts);
    if (!parts) {
        free(payload), cJSON_Delete(h);
        return lathe_fail(LATHE_ENOMEM, "%s: content hash", path);
    }
    for (size_t i = 0, at = 0; i < n; i++) {
        size_t count = 1;
        for (int k = 0; k < t[i].rank; k++) count *= (size_t)t[i].shape[k];
        parts[i] = (hashed){t[i].name, payload + at, count * (t[i].dtype == LATHE_ST_F32 ? 4 : 2)};
        at += parts[i].len;
    }
    char hash[24];
    snprintf(hash, sizeof hash, "%016llx", (unsigned long long)content_hash(parts, n));
    free(parts);
    cJSON *m = cJSON_GetObjectItemCaseSensitive(h, "__metadata__");
    if (!m) m = cJSON_AddObjectToObject(h, "__metadata__");
    cJSON_AddStringToObject(m, LATHE_ST_HASH_KEY, hash);
    char *json = cJSON_PrintUnformatted(h);
    cJSON_Delete(h);
    if (!json) {
        free(payload);
        return lathe_fail(LATHE_ENOMEM, "safetensors header");
    }
    size_t hlen = strlen(json), padded = (hlen + 7) / 8 * 8; /* pad with spaces: data starts aligned */
    size_t total = 8 + padded + off;
    uint8_t *buf = malloc(total);
    if (!buf) {
        free(json), free(payload);
        return lathe_fail(LATHE_ENOMEM, "%s: %zu bytes", path, total);
    }
    for (int k = 0; k < 8; k++) buf[k] = (uint8_t)((uint64_t)padded >> (8 * k));
    memcpy(buf + 8, json, hlen);
    memset(buf + 8 + hlen, ' ', padded - hlen);
    free(json);
    memcpy(buf + 8 + padded, payload, off);
    free(payload);
    int rc = lathe_write_atomic(path, buf, total);
    free(buf);
    return rc;
}

typedef struct {
    char *name, dtype[8];
    int64_t shape[8];
    int rank;
    size_t begin, end;
} entry;

struct lathe_st_file {
    uint8_t *buf;
    size_t len, data_start;
    entry *e;
    size_t n;
    cJSON *meta;
};

static int dtype_size(const char *d) {
    static const struct {
        const char *name;
        int size;
    } t[] = {{"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8}, {"I32", 4},
             {"I16", 2}, {"I8", 1},  {"U8", 1},  {"BOOL", 1}};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (!strcmp(d, t[i].name)) return t[i].size;
    return 0;
}

static int exact_u64(const cJSON *v, uint64_t *out) {
    if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 9007199254740992.0 ||
        v->valuedouble != floor(v->valuedouble))
        return 0;
    *out = (uint64_t)v->valuedouble;
    return 1;
}

static int cmp_begin(const void *a, const void *b) {
    const entry *x = a, *y = b;
    return (x->begin > y->begin) - (x->begin < y->begin);
}

static int parse_header(lathe_st_file *f, const char *path, const char *json, size_t hlen) {
    cJSON *h = lathe_json_parse(json, hlen, NULL); /* the header's padding is spaces */
    if (!cJSON_IsObject(h)) {
        cJSON_Delete(h);
        return lathe_fail(LATHE_EFORMAT, "%s: the header is not a JSON object", path);
    }
    size_t n = (size_t)cJSON_GetArraySize(h);
    f->e = calloc(n ? n : 1, sizeof *f->e);
    if (!f->e) {
        cJSON_Delete(h);
        return lathe_fail(LATHE_ENOMEM, "%s", path);
    }
    size_t data_len = f->len - f->data_start;
    int rc = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, h) {
        for (size_t k = 0; k < f->n && !rc; k++)
            if (!strcmp(f->e[k].name, it->string)) rc = lathe_fail(LATHE_EFORMAT, "%s: %s appears twice", path, it->string);
        if (rc) break;
        if (!strcmp(it->string, "__metadata__")) {
            const cJSON *v;
            cJSON_ArrayForEach(v, it) if (!cJSON_IsString(v)) rc = lathe_fail(LATHE_EFORMAT, "%s: metadata %s is not a string", path, v->string);
            if (!rc) f->meta = cJSON_Duplicate(it, 1);
            continue;
        }
        entry *e = &f->e[f->n];
        const cJSON *dt = cJSON_GetObjectItemCaseSensitive(it, "dtype"), *sh = cJSON_GetObjectItemCaseSensitive(it, "shape");
        const cJSON *off = cJSON_GetObjectItemCaseSensitive(it, "data_offsets");
        uint64_t b = 0, en = 0, count = 1;
        int size = cJSON_IsString(dt) ? dtype_size(dt->valuestring) : 0;
        if (!size || !cJSON_IsArray(sh) || cJSON_GetArraySize(sh) > 8 || cJSON_GetArraySize(off) != 2 ||
            !exact_u64(cJSON_GetArrayItem(off, 0), &b) || !exact_u64(cJSON_GetArrayItem(off, 1), &en)) {
            rc = lathe_fail(LATHE_EFORMAT, "%s: tensor %s has a bad dtype, shape or data_offsets", path, it->string);
            break;
        }
        const cJSON *d;
        cJSON_ArrayForEach(d, sh) {
            uint64_t v;
            /* a product past 2^64 would wrap, and [2^32, 2^32] would then claim zero bytes */
            if (!exact_u64(d, &v) || __builtin_mul_overflow(count, v, &count))
                rc = lathe_fail(LATHE_EFORMAT, "%s: tensor %s: bad shape", path, it->string);
            else e->shape[e->rank++] = (int64_t)v;
        }
        if (rc) break;
        if (en < b || en > data_len || count > data_len || en - b != count * (uint64_t)size) {
            rc = lathe_fail(LATHE_EFORMAT, "%s: tensor %s: bytes [%llu, %llu) do not hold its shape or lie outside the file",
                            path, it->string, (unsigned long long)b, (unsigned long long)en);
            break;
        }
        e->name = strdup(it->string);
        snprintf(e->dtype, sizeof e->dtype, "%s", dt->valuestring);
        e->begin = (size_t)b, e->end = (size_t)en;
        f->n++;
    }
    cJSON_Delete(h);
    if (rc) return rc;
    entry *sorted = malloc((f->n ? f->n : 1) * sizeof *sorted);
    if (!sorted) return lathe_fail(LATHE_ENOMEM, "%s", path);
    memcpy(sorted, f->e, f->n * sizeof *sorted);
    if (f->n) qsort(sorted, f->n, sizeof *sorted, cmp_begin);
    size_t at = 0;
    for (size_t k = 0; k < f->n && !rc; k++) {
        if (sorted[k].begin != at) rc = lathe_fail(LATHE_EFORMAT, "%s: tensors overlap or leave a gap at byte %zu", path, at);
        at = sorted[k].end;
    }
    if (!rc && at != data_len) rc = lathe_fail(LATHE_EFORMAT, "%s: %zu bytes after the last tensor", path, data_len - at);
    free(sorted);
    return rc;
}

int lathe_st_open(const char *path, lathe_st_file **out) {
    *out = NULL;
    lathe_st_file *f = calloc(1, sizeof *f);
    if (!f) return lathe_fail(LATHE_ENOMEM, "%s", path);
    char *data = NULL;
    int rc = lathe_read_file(path, (size_t)1 << 40, &data, &f->len);
    f->buf = (uint8_t *)data;
    uint64_t hlen = 0;
    if (!rc && f->len < 8) rc = lathe_fail(LATHE_EFORMAT, "%s: shorter than a safetensors header", path);
    if (!rc) {
        for (int k = 0; k < 8; k++) hlen |= (uint64_t)f->buf[k] << (8 * k);
        if (hlen > MAX_HEADER || hlen > f->len - 8) rc = lathe_fail(LATHE_EFORMAT, "%s: header length %llu is impossible", path, (unsigned long long)hlen);
    }
    if (!rc) {
        f->data_start = 8 + (size_t)hlen;
        rc = parse_header(f, path, (const char *)f->buf + 8, (size_t)hlen);
    }
    const cJSON *want = rc ? NULL : cJSON_GetObjectItemCaseSensitive(f->meta, LATHE_ST_HASH_KEY);
    if (cJSON_IsString(want)) { /* written by lathe: the tensors must be the bytes it wrote */
        char got[24] = "?";
        hashed *parts = malloc((f->n ? f->n : 1) * sizeof *parts);
        for (size_t i = 0; parts && i < f->n; i++)
            parts[i] = (hashed){f->e[i].name, f->buf + f->data_start + f->e[i].begin, f->e[i].end - f->e[i].begin};
        if (parts) snprintf(got, sizeof got, "%016llx", (unsigned long long)content_hash(parts, f->n));
        free(parts);
        if (strcmp(got, want->valuestring))
            rc = lathe_fail(LATHE_EFORMAT, "%s: its tensors do not match the content hash lathe wrote (%s, now %s): the file is "
                                           "corrupt", path, want->valuestring, got);
    }
    if (rc) {
        lathe_st_close(f);
        return rc;
    }
    *out = f;
    return 0;
}

void lathe_st_close(lathe_st_file *f) {
    if (!f) return;
    for (size_t i = 0; i < f->n; i++) free(f->e[i].name);
    free(f->e), free(f->buf);
    cJSON_Delete(f->meta);
    free(f);
}

size_t lathe_st_count(const lathe_st_file *f) { return f->n; }

const char *lathe_st_name(const lathe_st_file *f, size_t i, const char **dtype, int64_t *shape, int *rank) {
    if (i >= f->n) return NULL;
    if (dtype) *dtype = f->e[i].dtype;
    if (shape) memcpy(shape, f->e[i].shape, sizeof f->e[i].shape);
    if (rank) *rank = f->e[i].rank;
    return f->e[i].name;
}

static float half_to_float(uint16_t h, int bf16) {
    if (bf16) {
        uint32_t bits = (uint32_t)h << 16;
        float v;
        memcpy(&v, &bits, 4);
        return v;
    }
    int sign = h >> 15, exp = (h >> 10) & 31, man = h & 1023;
    float v = exp == 0 ? ldexpf((float)man, -24) : exp == 31 ? (man ? NAN : INFINITY) : ldexpf((float)(man | 1024), exp - 25);
    return sign ? -v : v;
}

int lathe_st_read_f32(const lathe_st_file *f, const char *name, float *dst, size_t count) {
    for (size_t i = 0; i < f->n; i++) {
        const entry *e = &f->e[i];
        if (strcmp(e->name, name)) continue;
        int size = dtype_size(e->dtype);
        if ((e->end - e->begin) / (size_t)size != count)
            return lathe_fail(LATHE_EFORMAT, "%s holds %zu values, %zu expected", name, (e->end - e->begin) / size, count);
        const uint8_t *p = f->buf + f->data_start + e->begin;
        for (size_t k = 0; k < count; k++, p += size) {
            if (!strcmp(e->dtype, "F32")) {
                uint32_t bits = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
                memcpy(&dst[k], &bits, 4);
            } else if (!strcmp(e->dtype, "F64")) {
                uint64_t bits = 0;
                for (int b = 0; b < 8; b++) bits |= (uint64_t)p[b] << (8 * b);
                double d;
                memcpy(&d, &bits, 8);
                dst[k] = (float)d;
            } else if (!strcmp(e->dtype, "F16") || !strcmp(e->dtype, "BF16")) {
                dst[k] = half_to_float((uint16_t)(p[0] | p[1] << 8), e->dtype[0] == 'B');
            } else {
                return lathe_fail(LATHE_EFORMAT, "%s is %s, not a floating-point tensor", name, e->dtype);
            }
        }
        return 0;
    }
    return lathe_fail(LATHE_ENOTFOUND, "no tensor %s", name);
}

const char *lathe_st_meta(const lathe_st_file *f, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(f->meta, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}
