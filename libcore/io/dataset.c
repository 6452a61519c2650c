/* dataset.c - the dataset reader (dataset.h). One mutex guards the lazily opened HDF5 files and the
 * per-shard caches of small arrays; image and mask chunks are fetched raw with H5Dread_chunk (under
 * HDF5's own global lock only) and zstd-decompressed in the calling thread with no lock held.
 * Every shard is checked against the manifest when its file opens, so a reader never indexes past
 * what the file holds. HDF5's error printing is switched off around each public call. */
#include "dataset.h"
#include "h5_error.h"

#include <errno.h>
#include <hdf5.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include <cjson/cJSON.h>

#include "../base/error.h"
#include "../base/log.h"
#include "h5z_zstd.h"
#include "image.h"
#include "shard.h"

#define DEFAULT_MAX_OPEN 64
#define MAX_DECODE_PIXELS ((uint64_t)1 << 28)

/* The small per-sample arrays of one shard, all or some loaded (NULL = not loaded). */
typedef struct {
    int32_t *labels;   /* (N) */
    int64_t *offsets;  /* (N + 1) */
    lathe_box *boxes;  /* (M) */
    uint64_t nboxes;
    int64_t *source_offsets;  /* (N + 1) tiled datasets: /source_box_offsets */
    lathe_box *source_boxes;  /* (K) */
    lathe_meta *meta;  /* (N), source owned */
    float *sensors;    /* (N, T, S) */
    char **text;       /* (N) */
} shard_data;

/* How image/mask chunks are stored: through the zstd filter, or raw (no filter). */
typedef struct {
    int images_raw, masks_raw;
} chunk_layout;

typedef struct {
    const char *name;   /* manifest file name */
    char *path;         /* dir/name */
    uint64_t n;         /* samples */
    int split;
    hid_t file, images, masks, encoded; /* -1 while closed */
    chunk_layout layout;
    int refs;           /* readers holding the file open */
    uint64_t last_use;
    uint64_t xxh64;     /* the manifest's hash of the file */
    _Atomic int hashed; /* 0 not yet, 1 the file's bytes matched xxh64, -1 they did not (skip_file_check: 1) */
    _Atomic uint64_t got_xxh64; /* what the file hashed to, when it did not match */
    shard_data data;    /* caches: written under the mutex, read-only once set */
} shard;

struct lathe_dataset {
    char *dir;
    lathe_manifest m;
    shard *shards;
    uint64_t *first;    /* (nshards + 1) global index of each shard's first sample */
    pthread_mutex_t mu;
    int open_files, max_open;
    uint64_t clock;
    size_t image_bytes, mask_bytes; /* H*W*C, H*W (pixels store) */
    size_t sensor_values;           /* T*S */
};

/* ---- problem reporting, shared by the reader (first problem = error) and check_shard ---- */

typedef struct {
    lathe_dataset_problem_fn fn;
    void *ctx;
    size_t shard;
    int count;
    char first[512];
} reporter;

static void problem(reporter *r, int64_t row, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void problem(reporter *r, int64_t row, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!r->count) snprintf(r->first, sizeof r->first, "%s", msg);
    r->count++;
    if (r->fn) r->fn(r->ctx, r->shard, row, msg);
}

/* ---- small HDF5 helpers ---- */

static hid_t utf8_string_type(void) {
    hid_t str = H5Tcopy(H5T_C_S1);
    H5Tset_size(str, H5T_VARIABLE);
    H5Tset_cset(str, H5T_CSET_UTF8);
    return str;
}

/* Opens /name when it exists; a required one that is absent or unopenable is a problem. */
static hid_t open_dataset(hid_t file, const char *name, int required, reporter *r) {
    htri_t exists = H5Lexists(file, name, H5P_DEFAULT);
    if (exists <= 0) {
        if (required) problem(r, -1, "/%s is missing", name);
        return -1;
    }
    hid_t d = H5Dopen2(file, name, H5P_DEFAULT);
    if (d < 0) problem(r, -1, "/%s cannot be opened", name);
    return d;
}

static void format_dims(char *out, size_t cap, int rank, const hsize_t *dims) {
    size_t len = (size_t)snprintf(out, cap, "[");
    for (int i = 0; i < rank && len < cap; i++)
        len += (size_t)snprintf(out + len, cap - len, "%s%llu", i ? ", " : "", (unsigned long long)dims[i]);
    if (len < cap) snprintf(out + len, cap - len, "]");
}

/* Checks the type class (and for 1-byte images the size), rank and dims of d against want.
 * Returns 1 when all match, 0 after reporting the difference. */
static int check_shape(hid_t d, const char *name, H5T_class_t cls, size_t type_size, int rank, const hsize_t *want,
                       reporter *r) {
    hid_t type = H5Dget_type(d);
    H5T_class_t got_cls = type >= 0 ? H5Tget_class(type) : H5T_NO_CLASS;
    size_t got_size = type >= 0 ? H5Tget_size(type) : 0;
    if (type >= 0) H5Tclose(type);
    if (got_cls != cls || (type_size && got_size != type_size)) {
        problem(r, -1, "/%s has the wrong element type", name);
        return 0;
    }
    hid_t space = H5Dget_space(d);
    hsize_t dims[H5S_MAX_RANK];
    int got_rank = space >= 0 ? H5Sget_simple_extent_ndims(space) : -1;
    if (got_rank >= 0 && got_rank <= H5S_MAX_RANK) H5Sget_simple_extent_dims(space, dims, NULL);
    if (space >= 0) H5Sclose(space);
    int same = got_rank == rank;
    for (int i = 0; same && i < rank; i++) same = dims[i] == want[i];
    if (!same) {
        char have[160], expected[160];
        if (got_rank >= 0 && got_rank <= H5S_MAX_RANK) format_dims(have, sizeof have, got_rank, dims);
        else snprintf(have, sizeof have, "an unreadable shape");
        format_dims(expected, sizeof expected, rank, want);
        problem(r, -1, "/%s has shape %s, expected %s", name, have, expected);
    }
    return same;
}

/* Checks that d stores one chunk per sample (chunk = [1, rest of dims]) and that its filters are
 * none or zstd alone (what the direct chunk reader understands). *raw = 1 when unfiltered. */
static int check_chunks(hid_t d, const char *name, int rank, const hsize_t *dims, int *raw, reporter *r) {
    hid_t dcpl = H5Dget_create_plist(d);
    int ok = dcpl >= 0 && H5Pget_layout(dcpl) == H5D_CHUNKED;
    hsize_t chunk[H5S_MAX_RANK];
    if (ok) ok = H5Pget_chunk(dcpl, rank, chunk) == rank;
    for (int i = 0; ok && i < rank; i++) ok = chunk[i] == (i == 0 ? 1 : dims[i]);
    if (!ok) problem(r, -1, "/%s is not stored as one chunk per sample", name);
    int nfilters = ok ? H5Pget_nfilters(dcpl) : -1;
    if (ok && nfilters == 0) {
        *raw = 1;
    } else if (ok) {
        unsigned flags = 0, cd[4];
        size_t ncd = 4;
        char fname[64];
        H5Z_filter_t id = nfilters == 1 ? H5Pget_filter2(dcpl, 0, &flags, &ncd, cd, sizeof fname, fname, NULL) : -1;
        if (id != LATHE_H5Z_ZSTD) {
            problem(r, -1, "/%s has a filter pipeline other than zstd (filter %d) alone", name, LATHE_H5Z_ZSTD);
            ok = 0;
        }
        *raw = 0;
    }
    if (dcpl >= 0) H5Pclose(dcpl);
    return ok;
}

/* Reads an integer attribute of n values. Returns 0, or -1 when absent or not n integers. */
static int read_int_attr(hid_t obj, const char *name, int *values, int n) {
    if (H5Aexists(obj, name) <= 0) return -1;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0) return -1;
    hid_t type = H5Aget_type(a), space = H5Aget_space(a);
    int ok = type >= 0 && H5Tget_class(type) == H5T_INTEGER && space >= 0 && H5Sget_simple_extent_npoints(space) == n &&
             H5Aread(a, H5T_NATIVE_INT, values) >= 0;
    if (type >= 0) H5Tclose(type);
    if (space >= 0) H5Sclose(space);
    H5Aclose(a);
    return ok ? 0 : -1;
}

static void free_strings(char **v, size_t n) {
    for (size_t i = 0; v && i < n; i++) free(v[i]);
    free(v);
}

/* Reads a variable-length string attribute (a list; a null dataspace is an empty list). Returns
 * 0, -1 when absent or of another type, -LATHE_ENOMEM. */
static int read_strings_attr(hid_t obj, const char *name, char ***out, size_t *n) {
    *out = NULL;
    *n = 0;
    if (H5Aexists(obj, name) <= 0) return -1;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0) return -1;
    hid_t type = H5Aget_type(a), space = H5Aget_space(a), mem = utf8_string_type();
    int rc = type >= 0 && space >= 0 && H5Tget_class(type) == H5T_STRING && H5Tis_variable_str(type) > 0 ? 0 : -1;
    hssize_t count = rc ? 0 : H5Sget_simple_extent_type(space) == H5S_NULL ? 0 : H5Sget_simple_extent_npoints(space);
    if (count < 0) rc = -1;
    char **raw = NULL, **copy = NULL;
    if (!rc && count > 0) {
        raw = calloc((size_t)count, sizeof *raw);
        copy = calloc((size_t)count, sizeof *copy);
        if (!raw || !copy) rc = -LATHE_ENOMEM;
        else if (H5Aread(a, mem, raw) < 0) rc = -1;
        else {
            for (hssize_t i = 0; i < count && !rc; i++)
                if (!(copy[i] = strdup(raw[i] ? raw[i] : ""))) rc = -LATHE_ENOMEM;
            H5Dvlen_reclaim(mem, space, H5P_DEFAULT, raw);
        }
    }
    free(raw);
    if (rc) free_strings(copy, (size_t)count);
    else {
        *out = copy;
        *n = (size_t)count;
    }
    H5Tclose(mem);
    if (type >= 0) H5Tclose(type);
    if (space >= 0) H5Sclose(space);
    H5Aclose(a);
    return rc;
}

/* Compares a string attribute with the manifest's list. */
static void check_names_attr(hid_t obj, const char *where, const char *name, char *const *want, int nwant,
                             reporter *r) {
    char **got;
    size_t n;
    int rc = read_strings_attr(obj, name, &got, &n);
    if (rc == -LATHE_ENOMEM) {
        problem(r, -1, "%s%s: out of memory", where, name);
        return;
    }
    if (rc) {
        problem(r, -1, "%s%s attribute is missing or not a list of strings", where, name);
        return;
    }
    if (n != (size_t)nwant) problem(r, -1, "%s%s has %zu names, the manifest %d", where, name, n, nwant);
    for (size_t i = 0; i < n && i < (size_t)nwant; i++)
        if (strcmp(got[i], want[i]) != 0) {
            problem(r, -1, "%s%s[%zu] is '%s', the manifest says '%s'", where, name, i, got[i], want[i]);
            break;
        }
    free_strings(got, n);
}

/* ---- the structure of one shard against the manifest ---- */

static int masks_expected(const lathe_manifest *m) { return m->has_masks && m->store == LATHE_STORE_PIXELS; }

/* Checks everything that the metadata alone tells (no array contents): attributes, datasets,
 * types, shapes, chunking. Problems go to r; *layout says how chunks are stored. */
static void check_structure(const lathe_dataset *ds, const shard *sh, hid_t file, chunk_layout *layout, reporter *r) {
    const lathe_manifest *m = &ds->m;
    int schema = 0, size[2] = {0, 0};
    if (read_int_attr(file, "lathe_schema", &schema, 1)) problem(r, -1, "root attribute lathe_schema is missing");
    else if (schema != LATHE_SCHEMA_VERSION)
        problem(r, -1, "lathe_schema is %d, this lathe reads %d", schema, LATHE_SCHEMA_VERSION);
    if (read_int_attr(file, "image_size", size, 2)) problem(r, -1, "root attribute image_size is missing");
    else if (size[0] != m->height || size[1] != m->width)
        problem(r, -1, "image_size is %dx%d, the manifest says %dx%d", size[0], size[1], m->height, m->width);
    check_names_attr(file, "", "class_names", m->class_names, m->nclasses, r);
    char **store;
    size_t nstore;
    if (!read_strings_attr(file, "store", &store, &nstore)) {
        const char *want = m->store == LATHE_STORE_PIXELS ? "pixels" : "encoded";
        if (nstore != 1 || strcmp(store[0], want) != 0)
            problem(r, -1, "store attribute is '%s', the manifest says '%s'", nstore ? store[0] : "", want);
        free_strings(store, nstore);
    }

    hsize_t n = sh->n, h = (hsize_t)m->height, w = (hsize_t)m->width, c = (hsize_t)m->channels;
    layout->images_raw = layout->masks_raw = 0;
    if (m->store == LATHE_STORE_PIXELS) {
        hsize_t want[4] = {n, h, w, c};
        hid_t d = open_dataset(file, "images", 1, r);
        if (d >= 0 && check_shape(d, "images", H5T_INTEGER, 1, 4, want, r))
            check_chunks(d, "images", 4, want, &layout->images_raw, r);
        if (d >= 0) H5Dclose(d);
    } else {
        hsize_t want[1] = {n};
        hid_t d = open_dataset(file, "encoded", 1, r);
        if (d >= 0 && check_shape(d, "encoded", H5T_VLEN, 0, 1, want, r)) {
            hid_t type = H5Dget_type(d), base = H5Tget_super(type);
            if (base < 0 || H5Tget_class(base) != H5T_INTEGER || H5Tget_size(base) != 1)
                problem(r, -1, "/encoded is not variable-length bytes");
            if (base >= 0) H5Tclose(base);
            H5Tclose(type);
        }
        if (d >= 0) H5Dclose(d);
    }
    hid_t masks = open_dataset(file, "masks", masks_expected(m), r);
    if (masks >= 0 && !masks_expected(m)) problem(r, -1, "/masks is present but the manifest has no masks");
    else if (masks >= 0) {
        hsize_t want[3] = {n, h, w};
        if (check_shape(masks, "masks", H5T_INTEGER, 1, 3, want, r))
            check_chunks(masks, "masks", 3, want, &layout->masks_raw, r);
    }
    if (masks >= 0) H5Dclose(masks);

    /* per-box arrays: M from /boxes */
    hsize_t nbox = 0;
    hid_t boxes = open_dataset(file, "boxes", 1, r);
    if (boxes >= 0) {
        hid_t space = H5Dget_space(boxes);
        hsize_t dims[2] = {0, 0};
        if (space >= 0 && H5Sget_simple_extent_ndims(space) == 2) H5Sget_simple_extent_dims(space, dims, NULL);
        if (space >= 0) H5Sclose(space);
        nbox = dims[0];
        hsize_t want[2] = {nbox, 4};
        check_shape(boxes, "boxes", H5T_FLOAT, 0, 2, want, r);
        H5Dclose(boxes);
    }
    static const struct {
        const char *name;
        H5T_class_t cls;
        int required;
    } per_box[] = {{"box_labels", H5T_INTEGER, 1},
                   {"box_flags", H5T_INTEGER, 1},
                   {"box_ids", H5T_INTEGER, 0},
                   {"box_areas", H5T_FLOAT, 0}};
    for (size_t i = 0; i < sizeof per_box / sizeof per_box[0]; i++) {
        hid_t d = open_dataset(file, per_box[i].name, per_box[i].required, r);
        if (d >= 0) check_shape(d, per_box[i].name, per_box[i].cls, 0, 1, &nbox, r), H5Dclose(d);
    }
    hsize_t n1 = n + 1;
    hid_t d = open_dataset(file, "box_offsets", 1, r);
    if (d >= 0) check_shape(d, "box_offsets", H5T_INTEGER, 0, 1, &n1, r), H5Dclose(d);
    if ((d = open_dataset(file, "labels", 1, r)) >= 0) check_shape(d, "labels", H5T_INTEGER, 0, 1, &n, r), H5Dclose(d);
    if ((d = open_dataset(file, "meta", 1, r)) >= 0) check_shape(d, "meta", H5T_COMPOUND, 0, 1, &n, r), H5Dclose(d);
    if ((d = open_dataset(file, "text", m->has_text, r)) >= 0) {
        if (!m->has_text) problem(r, -1, "/text is present but the manifest has no text");
        else check_shape(d, "text", H5T_STRING, 0, 1, &n, r);
        H5Dclose(d);
    }
    if ((d = open_dataset(file, "sensors", m->sensor_steps > 0, r)) >= 0) {
        if (m->sensor_steps <= 0) problem(r, -1, "/sensors is present but the manifest has no sensors");
        else {
            hsize_t want[3] = {n, (hsize_t)m->sensor_steps, (hsize_t)m->sensor_channels};
            check_shape(d, "sensors", H5T_FLOAT, 0, 3, want, r);
            check_names_attr(d, "/sensors ", "channels", m->sensor_names, m->sensor_channels, r);
        }
        H5Dclose(d);
    }
}

/* ---- loading the small arrays ---- */

/* Reads all of /name (elems elements, already checked by check_structure) as memtype into buf. */
/* Its checksum, where it has one (shards of older lathe have none): it must match what was read. */
static int check_hash(hid_t d, const char *name, hid_t memtype, const void *buf, uint64_t elems) {
    if (H5Aexists(d, LATHE_SHARD_HASH_ATTR) <= 0) return 0;
    uint64_t want = 0;
    hid_t a = H5Aopen(d, LATHE_SHARD_HASH_ATTR, H5P_DEFAULT);
    herr_t st = a < 0 ? -1 : H5Aread(a, H5T_NATIVE_UINT64, &want);
    if (a >= 0) H5Aclose(a);
    if (st < 0 || want != lathe_shard_array_hash(memtype, buf, elems))
        return lathe_fail(LATHE_EFORMAT, "/%s: checksum mismatch: the shard is corrupt", name);
    return 0;
}

static int read_whole(hid_t file, const char *name, hid_t memtype, void *buf, uint64_t elems) {
    if (elems == 0) return 0;
    hid_t d = H5Dopen2(file, name, H5P_DEFAULT);
    herr_t st = d < 0 ? -1 : H5Dread(d, memtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
    int rc = st < 0 ? lathe_fail(LATHE_EFORMAT, "/%s cannot be read (corrupt?)", name) : check_hash(d, name, memtype, buf, elems);
    if (d >= 0) H5Dclose(d);
    return rc;
}

static void *alloc_array(uint64_t count, size_t size) {
    if (count > SIZE_MAX / size - 1) return NULL;
    return malloc((size_t)(count ? count : 1) * size);
}

static int load_labels(hid_t file, uint64_t n, shard_data *d) {
    int32_t *labels = alloc_array(n, sizeof *labels);
    if (!labels) return lathe_fail(LATHE_ENOMEM, "labels of %" PRIu64 " samples", n);
    int rc = read_whole(file, "labels", H5T_NATIVE_INT32, labels, n);
    if (rc) free(labels);
    else d->labels = labels;
    return rc;
}

static uint64_t dataset_length(hid_t file, const char *name) {
    hid_t d = H5Dopen2(file, name, H5P_DEFAULT);
    hid_t space = d >= 0 ? H5Dget_space(d) : -1;
    hsize_t dims[H5S_MAX_RANK] = {0};
    if (space >= 0 && H5Sget_simple_extent_ndims(space) >= 1) H5Sget_simple_extent_dims(space, dims, NULL);
    if (space >= 0) H5Sclose(space);
    if (d >= 0) H5Dclose(d);
    return dims[0];
}

/* Loads the box list named prefix + "boxes", "box_labels", ... and its offsets; checks the offsets
 * run monotonically from 0 to M. */
static int load_box_list(hid_t file, uint64_t n, const char *prefix, int64_t **offsets_out, lathe_box **boxes_out,
                         uint64_t *m_out) {
    char name[5][64];
    static const char *const suffix[5] = {"boxes", "box_offsets", "box_labels", "box_flags", "box_ids"};
    for (int k = 0; k < 5; k++) snprintf(name[k], sizeof name[k], "%s%s", prefix, suffix[k]);
    char areas_name[64];
    snprintf(areas_name, sizeof areas_name, "%sbox_areas", prefix);
    uint64_t m = dataset_length(file, name[0]);
    int64_t *offsets = alloc_array(n + 1, sizeof *offsets), *ids = alloc_array(m, sizeof *ids);
    float *coords = alloc_array(m, 4 * sizeof *coords), *areas = alloc_array(m, sizeof *areas);
    int32_t *labels = alloc_array(m, sizeof *labels);
    uint8_t *flags = alloc_array(m, 1);
    lathe_box *boxes = alloc_array(m, sizeof *boxes);
    if (boxes) memset(boxes, 0, (size_t)(m ? m : 1) * sizeof *boxes); /* zeroed padding: copies hash alike */
    int rc = 0;
    if (!offsets || !ids || !coords || !areas || !labels || !flags || !boxes)
        rc = lathe_fail(LATHE_ENOMEM, "%" PRIu64 " boxes", m);
    if (!rc) rc = read_whole(file, name[1], H5T_NATIVE_INT64, offsets, n + 1);
    if (!rc) rc = read_whole(file, name[0], H5T_NATIVE_FLOAT, coords, 4 * m);
    if (!rc) rc = read_whole(file, name[2], H5T_NATIVE_INT32, labels, m);
    if (!rc) rc = read_whole(file, name[3], H5T_NATIVE_UINT8, flags, m);
    if (!rc) { /* ids and areas are optional: -1 when absent */
        for (uint64_t i = 0; i < m; i++) ids[i] = -1, areas[i] = -1;
        if (H5Lexists(file, name[4], H5P_DEFAULT) > 0) rc = read_whole(file, name[4], H5T_NATIVE_INT64, ids, m);
        if (!rc && H5Lexists(file, areas_name, H5P_DEFAULT) > 0)
            rc = read_whole(file, areas_name, H5T_NATIVE_FLOAT, areas, m);
    }
    if (!rc && offsets[0] != 0) rc = lathe_fail(LATHE_EFORMAT, "%s[0] is %" PRId64 ", not 0", name[1], offsets[0]);
    for (uint64_t i = 0; !rc && i < n; i++)
        if (offsets[i + 1] < offsets[i] || (uint64_t)offsets[i + 1] > m)
            rc = lathe_fail(LATHE_EFORMAT, "%s[%" PRIu64 "] = %" PRId64 " after %" PRId64
                            ": not monotone within [0, %" PRIu64 "]", name[1], i + 1, offsets[i + 1], offsets[i], m);
    if (!rc && (uint64_t)offsets[n] != m)
        rc = lathe_fail(LATHE_EFORMAT, "%s end at %" PRId64 ", /%s holds %" PRIu64, name[1], offsets[n], name[0], m);
    for (uint64_t i = 0; !rc && i < m; i++) {
        lathe_box *b = &boxes[i];
        b->x1 = coords[4 * i], b->y1 = coords[4 * i + 1], b->x2 = coords[4 * i + 2], b->y2 = coords[4 * i + 3];
        b->label = labels[i], b->flags = flags[i], b->id = ids[i], b->area = areas[i];
    }
    free(ids);
    free(coords);
    free(areas);
    free(labels);
    free(flags);
    if (rc) {
        free(offsets);
        free(boxes);
        return rc;
    }
    *offsets_out = offsets;
    *boxes_out = boxes;
    *m_out = m;
    return 0;
}

/* The boxes, and in a tiled dataset the source boxes (none when the shard predates them). */
static int load_boxes(hid_t file, uint64_t n, shard_data *d) {
    int rc = load_box_list(file, n, "", &d->offsets, &d->boxes, &d->nboxes);
    if (!rc && H5Lexists(file, "source_boxes", H5P_DEFAULT) > 0) {
        uint64_t k;
        rc = load_box_list(file, n, "source_", &d->source_offsets, &d->source_boxes, &k);
    }
    return rc;
}

static int load_meta(hid_t file, uint64_t n, shard_data *d) {
    lathe_shard_meta_row *rows = alloc_array(n, sizeof *rows);
    lathe_meta *meta = calloc(n ? n : 1, sizeof *meta);
    if (!rows || !meta) {
        free(rows);
        free(meta);
        return lathe_fail(LATHE_ENOMEM, "meta of %" PRIu64 " samples", n);
    }
    memset(rows, 0, (size_t)(n ? n : 1) * sizeof *rows);
    hid_t type = lathe_shard_meta_type();
    int rc = read_whole(file, "meta", type, rows, n);
    for (uint64_t i = 0; !rc && i < n; i++) {
        const lathe_shard_meta_row *r = &rows[i];
        meta[i] = (lathe_meta){NULL, r->image_id, r->orig_width, r->orig_height, r->scale_x, r->scale_y, r->pad_x,
                               r->pad_y, r->tile_x, r->tile_y, r->source_xxh64, r->phash, r->split, r->orientation};
        if (!(meta[i].source = strdup(r->source ? r->source : ""))) rc = lathe_fail(LATHE_ENOMEM, "meta strings");
    }
    if (n) {
        hsize_t dims[1] = {n};
        hid_t space = H5Screate_simple(1, dims, NULL);
        H5Dvlen_reclaim(type, space, H5P_DEFAULT, rows);
        H5Sclose(space);
    }
    H5Tclose(type);
    free(rows);
    if (rc) {
        for (uint64_t i = 0; i < n; i++) free(meta[i].source);
        free(meta);
        return rc;
    }
    d->meta = meta;
    return 0;
}

static int load_sensors(hid_t file, uint64_t n, size_t values, shard_data *d) {
    if (values && n > SIZE_MAX / values) return lathe_fail(LATHE_ENOMEM, "sensors");
    float *s = alloc_array(n * values, sizeof *s);
    if (!s) return lathe_fail(LATHE_ENOMEM, "sensors of %" PRIu64 " samples", n);
    int rc = read_whole(file, "sensors", H5T_NATIVE_FLOAT, s, n * values);
    if (rc) free(s);
    else d->sensors = s;
    return rc;
}

static int load_text(hid_t file, uint64_t n, shard_data *d) {
    char **raw = calloc(n ? n : 1, sizeof *raw), **text = calloc(n ? n : 1, sizeof *text);
    if (!raw || !text) {
        free(raw);
        free(text);
        return lathe_fail(LATHE_ENOMEM, "text of %" PRIu64 " samples", n);
    }
    hid_t type = utf8_string_type();
    int rc = read_whole(file, "text", type, raw, n);
    for (uint64_t i = 0; !rc && i < n; i++)
        if (!(text[i] = strdup(raw[i] ? raw[i] : ""))) rc = lathe_fail(LATHE_ENOMEM, "text strings");
    if (n) {
        hsize_t dims[1] = {n};
        hid_t space = H5Screate_simple(1, dims, NULL);
        H5Dvlen_reclaim(type, space, H5P_DEFAULT, raw);
        H5Sclose(space);
    }
    H5Tclose(type);
    free(raw);
    if (rc) {
        free_strings(text, n);
        return rc;
    }
    d->text = text;
    return 0;
}

static void shard_data_free(shard_data *d, uint64_t n) {
    free(d->labels);
    free(d->offsets);
    free(d->boxes);
    free(d->source_offsets);
    free(d->source_boxes);
    if (d->meta)
        for (uint64_t i = 0; i < n; i++) free(d->meta[i].source);
    free(d->meta);
    free(d->sensors);
    free_strings(d->text, d->text ? n : 0);
    memset(d, 0, sizeof *d);
}

void lathe_dataset_drop_caches(lathe_dataset *ds, size_t s) {
    if (s >= ds->m.nshards) return;
    pthread_mutex_lock(&ds->mu);
    shard *sh = &ds->shards[s];
    int32_t *labels = sh->data.labels; /* kept: 4 bytes a sample, needed by every read */
    sh->data.labels = NULL;
    shard_data_free(&sh->data, sh->n);
    memset(&sh->data, 0, sizeof sh->data);
    sh->data.labels = labels;
    pthread_mutex_unlock(&ds->mu);
}

/* ---- opening and closing shard files (under ds->mu) ---- */

static void close_shard_file(lathe_dataset *ds, shard *sh) {
    if (sh->file < 0) return;
    if (sh->images >= 0) H5Dclose(sh->images);
    if (sh->masks >= 0) H5Dclose(sh->masks);
    if (sh->encoded >= 0) H5Dclose(sh->encoded);
    H5Fclose(sh->file);
    sh->file = sh->images = sh->masks = sh->encoded = -1;
    ds->open_files--;
}

/* Closes the least recently used open file that no reader holds. */
static void evict_one(lathe_dataset *ds) {
    shard *lru = NULL;
    for (size_t i = 0; i < ds->m.nshards; i++) {
        shard *sh = &ds->shards[i];
        if (sh->file >= 0 && sh->refs == 0 && (!lru || sh->last_use < lru->last_use)) lru = sh;
    }
    if (lru) close_shard_file(ds, lru);
}

/* Opens an HDF5 file read-only; a missing file is -LATHE_ENOTFOUND, an unreadable one -LATHE_EFORMAT. */
static int open_h5(const char *path, hid_t *out) {
    *out = -1;
    if (access(path, R_OK) != 0)
        return lathe_fail(errno == ENOENT ? LATHE_ENOTFOUND : LATHE_EIO, "%s: %s", path, strerror(errno));
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    char why[256];
    if (f < 0 && lathe_h5_os_error(why, sizeof why, NULL)) /* out of file descriptors, an I/O error: not the file's fault */
        return lathe_fail(LATHE_EIO, "%s: cannot open: %s", path, why);
    if (f < 0) return lathe_fail(LATHE_EFORMAT, "%s: not a readable HDF5 file (truncated or corrupt)", path);
    *out = f;
    return 0;
}

static int open_shard_file(lathe_dataset *ds, shard *sh) {
    if (ds->open_files >= ds->max_open) evict_one(ds);
    hid_t f;
    int rc = open_h5(sh->path, &f);
    if (rc) return rc;
    reporter r = {0};
    check_structure(ds, sh, f, &sh->layout, &r);
    if (r.count) {
        H5Fclose(f);
        return lathe_fail(LATHE_EFORMAT, "%s: %s", sh->path, r.first);
    }
    sh->file = f;
    sh->images = ds->m.store == LATHE_STORE_PIXELS ? H5Dopen2(f, "images", H5P_DEFAULT) : -1;
    sh->encoded = ds->m.store == LATHE_STORE_ENCODED ? H5Dopen2(f, "encoded", H5P_DEFAULT) : -1;
    sh->masks = masks_expected(&ds->m) ? H5Dopen2(f, "masks", H5P_DEFAULT) : -1;
    ds->open_files++;
    hid_t pixels = ds->m.store == LATHE_STORE_PIXELS ? sh->images : sh->encoded;
    if (pixels < 0 || (masks_expected(&ds->m) && sh->masks < 0)) {
        close_shard_file(ds, sh);
        return lathe_fail(LATHE_EFORMAT, "%s: cannot open its image datasets", sh->path);
    }
    return 0;
}

/* What a reader is about to trust, checked once as each cache is loaded (the cache is dropped on a
 * failure, so every later read fails too): labels within the manifest's classes, each sample's
 * split the one the manifest lists its shard under. */
static int check_loaded(const lathe_dataset *ds, shard *sh, int labels, int boxes, int meta) {
    shard_data *d = &sh->data;
    int nc = ds->m.nclasses, rc = 0;
    for (uint64_t i = 0; labels && !rc && i < sh->n; i++)
        if (d->labels[i] < -1 || d->labels[i] >= nc)
            rc = lathe_fail(LATHE_EFORMAT, "/labels: sample %" PRIu64 " has label %d, outside the manifest's %d classes", i,
                            d->labels[i], nc);
    for (uint64_t k = 0; boxes && !rc && k < d->nboxes; k++)
        if (d->boxes[k].label < 0 || d->boxes[k].label >= nc)
            rc = lathe_fail(LATHE_EFORMAT, "/box_labels: box %" PRIu64 " has label %d, outside the manifest's %d classes", k,
                            d->boxes[k].label, nc);
    for (uint64_t i = 0; meta && !rc && i < sh->n; i++)
        if (d->meta[i].split != sh->split)
            rc = lathe_fail(LATHE_EFORMAT, "/meta: sample %" PRIu64 " belongs to split %s, but the manifest lists the shard under %s",
                            i, d->meta[i].split < LATHE_NSPLITS ? lathe_split_name(d->meta[i].split) : "?",
                            lathe_split_name(sh->split));
    if (rc) shard_data_free(d, sh->n);
    return rc;
}

/* A shard's bytes are checked against the manifest's xxh64 before libhdf5 first reads them, once per
 * dataset handle: a flipped bit anywhere in the file, in HDF5's own structures too (the global heap,
 * object headers, B-trees, which no dataset checksum covers and where libhdf5 1.10 can crash:
 * docs/RELIABILITY.md, finding 7), is an error naming the shard. Hashed outside the mutex, so
 * other threads go on reading other shards; two threads may hash one shard at once, harmlessly. A
 * mismatch is remembered, so a caller that goes on (analyze counts every sample) does not rehash. */
static int check_file_hash(shard *sh) {
    int state = atomic_load(&sh->hashed);
    if (!state) {
        uint64_t got = 0;
        int rc = lathe_file_xxh64(sh->path, &got, NULL);
        if (rc) return rc; /* cannot be read (EMFILE, EIO): not remembered, the next read tries again */
        atomic_store(&sh->got_xxh64, got);
        state = got == sh->xxh64 ? 1 : -1;
        atomic_store(&sh->hashed, state);
    }
    if (state > 0) return 0;
    return lathe_fail(LATHE_EFORMAT, "%s: the file's xxh64 is %016" PRIx64 ", the manifest says %016" PRIx64
                      " (changed after ingest: a flipped bit or an edit; not handed to HDF5; lathe verify lists what changed)",
                      sh->path, (uint64_t)atomic_load(&sh->got_xxh64), sh->xxh64);
}

/* acquire()'s `what` for the diagnostics (stats, like verify, count bad labels rather than fail on
 * them): the file opened and held, no cache loaded or checked. */
#define ACQUIRE_FILE_ONLY (1u << 31)

/* Makes shard sh ready: checks its file's hash (the first time), loads the caches `what` needs (labels
 * always) and, with hold, keeps the file open for chunk reads until release(). */
static int acquire(lathe_dataset *ds, shard *sh, unsigned what, int hold) {
    int hash_rc = check_file_hash(sh);
    if (hash_rc) return hash_rc;
    pthread_mutex_lock(&ds->mu);
    shard_data *d = &sh->data;
    if (what & ACQUIRE_FILE_ONLY) {
        int rc = sh->file < 0 ? open_shard_file(ds, sh) : 0;
        if (!rc) sh->refs++;
        sh->last_use = ++ds->clock;
        pthread_mutex_unlock(&ds->mu);
        return rc;
    }
    int need_boxes = (what & (LATHE_READ_BOXES | LATHE_READ_SOURCE_BOXES)) && !d->boxes, need_meta = (what & LATHE_READ_META) && !d->meta;
    int need_sensors = (what & LATHE_READ_SENSORS) && !d->sensors, need_text = (what & LATHE_READ_TEXT) && !d->text;
    int rc = 0;
    if (sh->file < 0 && (hold || !d->labels || need_boxes || need_meta || need_sensors || need_text))
        rc = open_shard_file(ds, sh);
    int need_labels = !d->labels;
    if (!rc && need_labels) rc = load_labels(sh->file, sh->n, d);
    if (!rc && need_boxes) rc = load_boxes(sh->file, sh->n, d);
    if (!rc && need_meta) rc = load_meta(sh->file, sh->n, d);
    if (!rc) rc = check_loaded(ds, sh, need_labels, need_boxes, need_meta);
    if (!rc && need_sensors) rc = load_sensors(sh->file, sh->n, ds->sensor_values, d);
    if (!rc && need_text) rc = load_text(sh->file, sh->n, d);
    if (!rc && hold) sh->refs++;
    sh->last_use = ++ds->clock;
    pthread_mutex_unlock(&ds->mu);
    return rc;
}

static void release(lathe_dataset *ds, shard *sh) {
    pthread_mutex_lock(&ds->mu);
    LATHE_ASSERT(sh->refs > 0);
    sh->refs--;
    pthread_mutex_unlock(&ds->mu);
}

/* ---- chunks ---- */

/* Reads the chunk of `row` from d (held open) and decompresses it into dst, which must hold exactly
 * expect bytes. The zstd frame must record its content size and that size must be expect. */
static int read_chunk(hid_t d, const char *what, int raw, uint64_t row, uint8_t *dst, size_t expect) {
    hsize_t offset[4] = {row, 0, 0, 0}, nbytes = 0;
    if (H5Dget_chunk_storage_size(d, offset, &nbytes) < 0 || nbytes == 0)
        return lathe_fail(LATHE_EFORMAT, "%s chunk is missing", what);
    size_t cap = raw ? expect : ZSTD_compressBound(expect);
    if (nbytes > cap)
        return lathe_fail(LATHE_EFORMAT, "%s chunk is %llu bytes, more than any encoding of %zu bytes",
                          what, (unsigned long long)nbytes, expect);
    uint8_t *buf = malloc((size_t)nbytes);
    if (!buf) return lathe_fail(LATHE_ENOMEM, "a chunk of %llu bytes", (unsigned long long)nbytes);
    uint32_t filters = 0;
    int rc = 0;
    if (H5Dread_chunk(d, H5P_DEFAULT, offset, &filters, buf) < 0) {
        rc = lathe_fail(LATHE_EIO, "%s chunk cannot be read", what);
    } else if (raw || (filters & 1)) { /* no filter, or zstd skipped when the chunk was written */
        if (nbytes != expect) rc = lathe_fail(LATHE_EFORMAT, "%s chunk (unfiltered) is %llu bytes, expected %zu",
                                              what, (unsigned long long)nbytes, expect);
        else memcpy(dst, buf, expect);
    } else {
        unsigned long long size = ZSTD_getFrameContentSize(buf, (size_t)nbytes);
        if (size == ZSTD_CONTENTSIZE_ERROR) rc = lathe_fail(LATHE_EFORMAT, "%s chunk is not a zstd frame", what);
        else if (size == ZSTD_CONTENTSIZE_UNKNOWN)
            rc = lathe_fail(LATHE_EFORMAT, "%s chunk: the zstd frame does not record its size (streamed?)", what);
        else if (size != expect)
            rc = lathe_fail(LATHE_EFORMAT, "%s chunk decompresses to %llu bytes, expected %zu", what, size, expect);
        else {
            size_t got = ZSTD_decompress(dst, expect, buf, (size_t)nbytes);
            if (ZSTD_isError(got))
                rc = lathe_fail(LATHE_EFORMAT, "%s chunk is corrupt: %s", what, ZSTD_getErrorName(got));
            else if (got != expect)
                rc = lathe_fail(LATHE_EFORMAT, "%s chunk decompressed to %zu bytes, expected %zu", what, got, expect);
        }
    }
    free(buf);
    return rc;
}

/* Reads the encoded bytes of `row`; *data is malloc'ed. */
static int read_encoded(hid_t d, uint64_t row, uint8_t **data, size_t *len) {
    hid_t vlen = H5Tvlen_create(H5T_NATIVE_UINT8);
    hid_t file_space = H5Dget_space(d);
    hsize_t start[1] = {row}, one[1] = {1};
    hid_t mem_space = H5Screate_simple(1, one, NULL);
    hvl_t value = {0, NULL};
    int rc = 0;
    if (file_space < 0 || H5Sselect_hyperslab(file_space, H5S_SELECT_SET, start, NULL, one, NULL) < 0 ||
        H5Dread(d, vlen, mem_space, file_space, H5P_DEFAULT, &value) < 0) {
        rc = lathe_fail(LATHE_EFORMAT, "the encoded image cannot be read");
    } else {
        *data = malloc(value.len ? value.len : 1);
        if (!*data) rc = lathe_fail(LATHE_ENOMEM, "%zu encoded bytes", value.len);
        else if (value.len) memcpy(*data, value.p, value.len);
        *len = value.len;
        H5Dvlen_reclaim(vlen, mem_space, H5P_DEFAULT, &value);
    }
    H5Sclose(mem_space);
    if (file_space >= 0) H5Sclose(file_space);
    H5Tclose(vlen);
    return rc;
}

/* ---- public API ---- */

static int check_manifest(const lathe_manifest *m, const char *dir) {
    int bad_size = m->height <= 0 || m->width <= 0 || m->height > 65536 || m->width > 65536;
    if (m->store == LATHE_STORE_PIXELS && (bad_size || m->channels < 1 || m->channels > 4))
        return lathe_fail(LATHE_EFORMAT, "%s/manifest.json: image size %dx%dx%d is not a valid pixels store", dir,
                          m->height, m->width, m->channels);
    if (m->sensor_steps < 0 || (m->sensor_steps > 0 && m->sensor_channels <= 0) ||
        (size_t)m->sensor_steps * (size_t)m->sensor_channels > ((size_t)1 << 24))
        return lathe_fail(LATHE_EFORMAT, "%s/manifest.json: sensor window %dx%d is not valid", dir, m->sensor_steps,
                          m->sensor_channels);
    return 0;
}

static int check_files(const lathe_dataset *ds) {
    for (size_t i = 0; i < ds->m.nshards; i++) {
        const shard *sh = &ds->shards[i];
        for (size_t j = 0; j < i; j++) /* listed twice, its samples would be read twice */
            if (!strcmp(ds->shards[j].name, sh->name))
                return lathe_fail(LATHE_EFORMAT, "dataset %s: the manifest lists shard %s twice (%zu and %zu)", ds->dir,
                                  sh->name, j, i);
        struct stat st;
        if (stat(sh->path, &st) != 0)
            return lathe_fail(errno == ENOENT ? LATHE_ENOTFOUND : LATHE_EIO, "dataset %s: shard %s: %s", ds->dir,
                              sh->name, strerror(errno));
        if ((uint64_t)st.st_size != ds->m.shards[i].bytes)
            return lathe_fail(LATHE_EFORMAT, "dataset %s: shard %s is %lld bytes, the manifest says %" PRIu64
                              " (truncated or replaced)", ds->dir, sh->name, (long long)st.st_size,
                              ds->m.shards[i].bytes);
    }
    return 0;
}

static int open_impl(const char *dir, const lathe_dataset_options *opts, lathe_dataset **out) {
    *out = NULL;
    int rc = lathe_h5z_zstd_register();
    if (rc) return rc;
    lathe_dataset *ds = calloc(1, sizeof *ds);
    if (!ds) return lathe_fail(LATHE_ENOMEM, "dataset");
    pthread_mutex_init(&ds->mu, NULL);
    ds->max_open = opts && opts->max_open_files > 0 ? opts->max_open_files : DEFAULT_MAX_OPEN;
    struct rlimit nofile; /* a low descriptor limit (ulimit -n) keeps fewer shards open, not fails */
    if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur != RLIM_INFINITY && nofile.rlim_cur < 4 * (rlim_t)ds->max_open)
        ds->max_open = nofile.rlim_cur > 16 ? (int)((nofile.rlim_cur - 12) / 4) : 1;
    if (!(ds->dir = strdup(dir))) {
        lathe_dataset_close(ds);
        return lathe_fail(LATHE_ENOMEM, "dataset");
    }
    if ((rc = lathe_manifest_load(dir, &ds->m))) {
        lathe_dataset_close(ds);
        return rc;
    }
    if ((rc = check_manifest(&ds->m, dir))) {
        lathe_dataset_close(ds);
        return rc;
    }
    const lathe_manifest *m = &ds->m;
    ds->image_bytes = (size_t)m->height * (size_t)m->width * (size_t)m->channels;
    ds->mask_bytes = (size_t)m->height * (size_t)m->width;
    ds->sensor_values = m->sensor_steps > 0 ? (size_t)m->sensor_steps * (size_t)m->sensor_channels : 0;
    ds->shards = calloc(m->nshards ? m->nshards : 1, sizeof *ds->shards);
    ds->first = calloc(m->nshards + 1, sizeof *ds->first);
    if (!ds->shards || !ds->first) {
        lathe_dataset_close(ds);
        return lathe_fail(LATHE_ENOMEM, "dataset of %zu shards", m->nshards);
    }
    for (size_t i = 0; i < m->nshards; i++) {
        shard *sh = &ds->shards[i];
        sh->file = sh->images = sh->masks = sh->encoded = -1;
        sh->name = m->shards[i].file;
        sh->n = m->shards[i].samples;
        sh->split = m->shards[i].split;
        sh->xxh64 = m->shards[i].xxh64;
        atomic_init(&sh->hashed, opts && opts->skip_file_check ? 1 : 0);
        size_t len = strlen(dir) + strlen(sh->name) + 2;
        if (!(sh->path = malloc(len))) {
            lathe_dataset_close(ds);
            return lathe_fail(LATHE_ENOMEM, "dataset paths");
        }
        snprintf(sh->path, len, "%s/%s", dir, sh->name);
        ds->first[i + 1] = ds->first[i] + sh->n;
    }
    if (!(opts && opts->skip_file_check) && (rc = check_files(ds))) {
        lathe_dataset_close(ds);
        return rc;
    }
    if (!m->complete && !(opts && opts->skip_file_check)) /* a reader of a dataset still (or no longer) being written */
        lathe_log(LATHE_LOG_WARN, "dataset.incomplete",
                  "%s: its ingest has not finished (%" PRIu64 " samples so far): rerun the ingest to complete it", dir,
                  ds->first[m->nshards]);
    *out = ds;
    return 0;
}

int lathe_dataset_open_ex(const char *dir, const lathe_dataset_options *opts, lathe_dataset **out) {
    int rc;
    H5E_BEGIN_TRY { rc = open_impl(dir, opts, out); }
    H5E_END_TRY;
    return rc;
}

int lathe_dataset_open(const char *dir, lathe_dataset **out) { return lathe_dataset_open_ex(dir, NULL, out); }

void lathe_dataset_close(lathe_dataset *ds) {
    if (!ds) return;
    H5E_BEGIN_TRY {
        for (size_t i = 0; ds->shards && i < ds->m.nshards; i++) {
            close_shard_file(ds, &ds->shards[i]);
            shard_data_free(&ds->shards[i].data, ds->shards[i].n);
            free(ds->shards[i].path);
        }
    }
    H5E_END_TRY;
    free(ds->shards);
    free(ds->first);
    lathe_manifest_free(&ds->m);
    free(ds->dir);
    pthread_mutex_destroy(&ds->mu);
    free(ds);
}

int lathe_dataset_has_source_boxes(lathe_dataset *ds) {
    if (ds->m.nshards == 0) return 0;
    shard *sh = &ds->shards[0]; /* ingest writes the same arrays into every shard */
    int rc = acquire(ds, sh, LATHE_READ_BOXES, 0);
    return rc ? rc : sh->data.source_offsets != NULL;
}

uint64_t lathe_dataset_count(const lathe_dataset *ds) { return ds->first[ds->m.nshards]; }
const lathe_manifest *lathe_dataset_manifest(const lathe_dataset *ds) { return &ds->m; }
const char *lathe_dataset_dir(const lathe_dataset *ds) { return ds->dir; }

uint64_t lathe_dataset_shard_first(const lathe_dataset *ds, size_t s) {
    return ds->first[s < ds->m.nshards ? s : ds->m.nshards];
}

int lathe_dataset_locate(const lathe_dataset *ds, uint64_t i, size_t *shard_out, uint64_t *row) {
    if (i >= lathe_dataset_count(ds))
        return lathe_fail(LATHE_EINVAL, "sample %" PRIu64 " is out of range (the dataset holds %" PRIu64 ")", i,
                          lathe_dataset_count(ds));
    /* the first shard whose end is past i; it is not empty and starts at or before i */
    size_t lo = 0, hi = ds->m.nshards;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ds->first[mid + 1] <= i) lo = mid + 1;
        else hi = mid;
    }
    *shard_out = lo;
    *row = i - ds->first[lo];
    return 0;
}

void lathe_dataset_sample_free(lathe_dataset_sample *s) {
    if (!s) return;
    free(s->pixels);
    free(s->encoded);
    free(s->mask);
    free(s->boxes);
    free(s->source_boxes);
    free(s->sensors);
    free(s->text);
    free(s->meta.source);
    memset(s, 0, sizeof *s);
    s->label = -1;
}

/* Copies what the caches hold for `row` into out. */
static int copy_cached(const lathe_dataset *ds, const shard *sh, uint64_t row, unsigned what,
                       lathe_dataset_sample *out) {
    const shard_data *d = &sh->data;
    out->label = d->labels[row];
    if (what & LATHE_READ_BOXES) {
        uint64_t a = (uint64_t)d->offsets[row], b = (uint64_t)d->offsets[row + 1];
        out->nboxes = (size_t)(b - a);
        if (out->nboxes) {
            if (!(out->boxes = malloc(out->nboxes * sizeof *out->boxes))) return lathe_fail(LATHE_ENOMEM, "boxes");
            memcpy(out->boxes, d->boxes + a, out->nboxes * sizeof *out->boxes);
        }
    }
    if ((what & LATHE_READ_SOURCE_BOXES) && d->source_offsets) {
        uint64_t a = (uint64_t)d->source_offsets[row], b = (uint64_t)d->source_offsets[row + 1];
        out->nsource_boxes = (size_t)(b - a);
        if (out->nsource_boxes) {
            if (!(out->source_boxes = malloc(out->nsource_boxes * sizeof *out->source_boxes)))
                return lathe_fail(LATHE_ENOMEM, "source boxes");
            memcpy(out->source_boxes, d->source_boxes + a, out->nsource_boxes * sizeof *out->source_boxes);
        }
    }
    if (what & LATHE_READ_SENSORS) {
        out->sensor_steps = ds->m.sensor_steps;
        out->sensor_channels = ds->m.sensor_channels;
        if (!(out->sensors = malloc(ds->sensor_values * sizeof(float)))) return lathe_fail(LATHE_ENOMEM, "sensors");
        memcpy(out->sensors, d->sensors + row * ds->sensor_values, ds->sensor_values * sizeof(float));
    }
    if ((what & LATHE_READ_TEXT) && !(out->text = strdup(d->text[row]))) return lathe_fail(LATHE_ENOMEM, "text");
    if (what & LATHE_READ_META) {
        out->meta = d->meta[row];
        out->has_meta = 1;
        if (!(out->meta.source = strdup(d->meta[row].source))) return lathe_fail(LATHE_ENOMEM, "meta");
    }
    return 0;
}

/* Reads the chunked fields (pixels or encoded bytes, mask) of a held shard. */
static int read_chunked(const lathe_dataset *ds, const shard *sh, uint64_t row, unsigned what,
                        lathe_dataset_sample *out) {
    const lathe_manifest *m = &ds->m;
    int rc = 0;
    if ((what & LATHE_READ_PIXELS) && m->store == LATHE_STORE_PIXELS) {
        if (!(out->pixels = malloc(ds->image_bytes))) return lathe_fail(LATHE_ENOMEM, "pixels");
        if ((rc = read_chunk(sh->images, "image", sh->layout.images_raw, row, out->pixels, ds->image_bytes))) return rc;
        out->width = m->width, out->height = m->height, out->channels = m->channels;
    } else if (what & LATHE_READ_PIXELS) {
        if ((rc = read_encoded(sh->encoded, row, &out->encoded, &out->encoded_len))) return rc;
    }
    if (what & LATHE_READ_MASK) {
        if (!(out->mask = malloc(ds->mask_bytes))) return lathe_fail(LATHE_ENOMEM, "mask");
        if ((rc = read_chunk(sh->masks, "mask", sh->layout.masks_raw, row, out->mask, ds->mask_bytes))) return rc;
    }
    return 0;
}

/* The encoded bytes as pixels, turned by the orientation the ingest recorded in /meta (out->meta:
 * get_impl reads it for a decode), not by what today's decoder finds in the file: boxes were stored
 * in the frame the ingest saw (a PNG's eXIf orientation was not applied before stop 51). */
static int decode_encoded(const lathe_dataset *ds, lathe_dataset_sample *out) {
    lathe_decode_opts opts = {0};
    opts.max_pixels = MAX_DECODE_PIXELS;
    opts.channels = ds->m.channels == 1 ? 1 : 3;
    int orientation = out->meta.orientation >= 1 && out->meta.orientation <= 8 ? out->meta.orientation : 1;
    lathe_image img = {0};
    int rc = lathe_image_decode_as(out->encoded, out->encoded_len, &opts, orientation, &img, NULL);
    if (rc) return rc;
    out->pixels = img.pixels;
    out->width = img.width, out->height = img.height, out->channels = img.channels;
    return 0;
}

/* The fields `what` names that this dataset has. */
static unsigned available(const lathe_dataset *ds, unsigned what) {
    if (!masks_expected(&ds->m)) what &= ~(unsigned)LATHE_READ_MASK;
    if (!ds->sensor_values) what &= ~(unsigned)LATHE_READ_SENSORS;
    if (!ds->m.has_text) what &= ~(unsigned)LATHE_READ_TEXT;
    if (ds->m.store != LATHE_STORE_ENCODED || !(what & LATHE_READ_PIXELS)) what &= ~(unsigned)LATHE_READ_DECODE;
    return what;
}

static int get_impl(lathe_dataset *ds, uint64_t i, unsigned what, lathe_dataset_sample *out) {
    memset(out, 0, sizeof *out);
    out->label = -1;
    size_t s;
    uint64_t row;
    int rc = lathe_dataset_locate(ds, i, &s, &row);
    if (rc) return rc;
    shard *sh = &ds->shards[s];
    what = available(ds, what);
    if (what & LATHE_READ_DECODE) what |= LATHE_READ_META; /* the orientation decode_encoded applies */
    int hold = (what & (LATHE_READ_PIXELS | LATHE_READ_MASK)) != 0;
    out->index = i, out->shard = s, out->row = row, out->split = sh->split;
    int held = !(rc = acquire(ds, sh, what, hold)) && hold;
    if (!rc) rc = copy_cached(ds, sh, row, what, out);
    if (!rc && hold) rc = read_chunked(ds, sh, row, what, out);
    if (held) release(ds, sh);
    if (!rc && (what & LATHE_READ_DECODE)) rc = decode_encoded(ds, out);
    if (rc) {
        lathe_fail_context(rc, "%s: sample %" PRIu64 " (row %" PRIu64 ")", sh->name, i, row);
        lathe_dataset_sample_free(out);
    }
    return rc;
}

int lathe_dataset_get(lathe_dataset *ds, uint64_t i, unsigned what, lathe_dataset_sample *out) {
    int rc;
    H5E_BEGIN_TRY { rc = get_impl(ds, i, what, out); }
    H5E_END_TRY;
    return rc;
}

static int read_pixels_impl(lathe_dataset *ds, uint64_t i, uint8_t *dst, size_t cap) {
    if (ds->m.store != LATHE_STORE_PIXELS) return lathe_fail(LATHE_EINVAL, "%s is not a pixels store", ds->dir);
    if (cap < ds->image_bytes)
        return lathe_fail(LATHE_EINVAL, "a buffer of %zu bytes cannot hold an image of %zu", cap, ds->image_bytes);
    size_t s;
    uint64_t row;
    int rc = lathe_dataset_locate(ds, i, &s, &row);
    if (rc) return rc;
    shard *sh = &ds->shards[s];
    if ((rc = acquire(ds, sh, 0, 1))) return rc;
    rc = read_chunk(sh->images, "image", sh->layout.images_raw, row, dst, ds->image_bytes);
    release(ds, sh);
    if (rc) lathe_fail_context(rc, "%s: sample %" PRIu64 " (row %" PRIu64 ")", sh->name, i, row);
    return rc;
}

int lathe_dataset_read_pixels(lathe_dataset *ds, uint64_t i, uint8_t *dst, size_t cap) {
    int rc;
    H5E_BEGIN_TRY { rc = read_pixels_impl(ds, i, dst, cap); }
    H5E_END_TRY;
    return rc;
}

/* ---- statistics ---- */

/* Counts into *mismatches the samples of sh whose /meta split is not the split the manifest lists the
 * shard under. Only that member of the rows is read, so not checked against the dataset's xxh64
 * (taken over whole rows); the reader's whole-file hash has covered the bytes. */
static int count_split_mismatches(hid_t file, const shard *sh, uint64_t *mismatches) {
    uint8_t *splits = alloc_array(sh->n, 1);
    if (!splits) return lathe_fail(LATHE_ENOMEM, "splits of %" PRIu64 " samples", sh->n);
    hid_t type = H5Tcreate(H5T_COMPOUND, 1);
    hid_t d = H5Dopen2(file, "meta", H5P_DEFAULT);
    int rc = type >= 0 && H5Tinsert(type, "split", 0, H5T_NATIVE_UINT8) >= 0 && d >= 0 &&
                     H5Dread(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, splits) >= 0
                 ? 0
                 : lathe_fail(LATHE_EFORMAT, "/meta cannot be read (corrupt?)");
    for (uint64_t i = 0; !rc && i < sh->n; i++) *mismatches += splits[i] != sh->split;
    if (d >= 0) H5Dclose(d);
    if (type >= 0) H5Tclose(type);
    free(splits);
    return rc;
}

static int stats_impl(lathe_dataset *ds, lathe_dataset_stats *st) {
    memset(st, 0, sizeof *st);
    int nc = ds->m.nclasses;
    st->nclasses = nc;
    st->boxes = calloc(nc ? (size_t)nc : 1, sizeof *st->boxes);
    st->images = calloc(nc ? (size_t)nc : 1, sizeof *st->images);
    if (!st->boxes || !st->images) return lathe_fail(LATHE_ENOMEM, "class counts");
    for (size_t s = 0; s < ds->m.nshards; s++) {
        shard *sh = &ds->shards[s];
        if (!sh->n) continue;
        int rc = acquire(ds, sh, ACQUIRE_FILE_ONLY, 1);
        if (rc) return lathe_fail_context(rc, "%s", sh->name);
        uint64_t m = dataset_length(sh->file, "box_labels");
        int32_t *labels = alloc_array(m, sizeof *labels), *image_labels = alloc_array(sh->n, sizeof *image_labels);
        rc = labels && image_labels ? read_whole(sh->file, "box_labels", H5T_NATIVE_INT32, labels, m)
                                    : lathe_fail(LATHE_ENOMEM, "%" PRIu64 " box labels", m);
        if (!rc) rc = read_whole(sh->file, "labels", H5T_NATIVE_INT32, image_labels, sh->n);
        if (!rc) rc = count_split_mismatches(sh->file, sh, &st->split_mismatches);
        release(ds, sh);
        if (rc) {
            free(labels), free(image_labels);
            return lathe_fail_context(rc, "%s", sh->name);
        }
        int split = sh->split >= 0 && sh->split < LATHE_NSPLITS ? sh->split : 0;
        for (uint64_t k = 0; k < m; k++) {
            if (labels[k] >= 0 && labels[k] < nc) st->boxes[labels[k]][split]++;
            else st->bad_labels++;
        }
        st->total_boxes[split] += m;
        free(labels);
        for (uint64_t k = 0; k < sh->n; k++) {
            int32_t l = image_labels[k];
            if (l == -1) st->unlabeled[split]++;
            else if (l >= 0 && l < nc) st->images[l][split]++;
            else st->bad_labels++;
        }
        free(image_labels);
    }
    return 0;
}

int lathe_dataset_stats_compute(lathe_dataset *ds, lathe_dataset_stats *st) {
    int rc;
    H5E_BEGIN_TRY { rc = stats_impl(ds, st); }
    H5E_END_TRY;
    if (rc) lathe_dataset_stats_free(st);
    return rc;
}

void lathe_dataset_stats_free(lathe_dataset_stats *st) {
    free(st->boxes);
    free(st->images);
    memset(st, 0, sizeof *st);
}

/* ---- checking a shard ---- */

/* 1 when s is well-formed UTF-8 (no overlongs, surrogates or code points past U+10FFFF). */
static int valid_utf8(const char *str) {
    const unsigned char *s = (const unsigned char *)str;
    while (*s) {
        unsigned c = *s;
        int n = c < 0x80 ? 0 : (c & 0xE0) == 0xC0 ? 1 : (c & 0xF0) == 0xE0 ? 2 : (c & 0xF8) == 0xF0 ? 3 : -1;
        if (n < 0 || (n == 1 && c < 0xC2) || c > 0xF4) return 0;
        unsigned cp = n == 0 ? c : c & (0x3F >> n);
        for (int k = 1; k <= n; k++) {
            if ((s[k] & 0xC0) != 0x80) return 0;
            cp = (cp << 6) | (s[k] & 0x3F);
        }
        if ((n == 2 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) || (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)))
            return 0;
        s += n + 1;
    }
    return 1;
}

static void check_contents(const lathe_dataset *ds, const shard *sh, hid_t file, reporter *r) {
    const lathe_manifest *m = &ds->m;
    shard_data d = {0};
    int rc;
    if ((rc = load_labels(file, sh->n, &d))) problem(r, -1, "%s", lathe_last_error());
    for (uint64_t i = 0; !rc && i < sh->n; i++)
        if (d.labels[i] < -1 || d.labels[i] >= m->nclasses)
            problem(r, (int64_t)i, "image label %d outside [-1, %d)", d.labels[i], m->nclasses);
    if ((rc = load_boxes(file, sh->n, &d))) problem(r, -1, "%s", lathe_last_error());
    for (uint64_t i = 0; !rc && i < sh->n; i++)
        for (int64_t k = d.offsets[i]; k < d.offsets[i + 1]; k++)
            if (d.boxes[k].label < 0 || d.boxes[k].label >= m->nclasses)
                problem(r, (int64_t)i, "box %" PRId64 " label %d outside [0, %d)", k - d.offsets[i], d.boxes[k].label,
                        m->nclasses);
    if ((rc = load_meta(file, sh->n, &d))) problem(r, -1, "%s", lathe_last_error());
    for (uint64_t i = 0; !rc && d.source_offsets && i < sh->n; i++) /* a tiled dataset's whole-image boxes */
        for (int64_t k = d.source_offsets[i]; k < d.source_offsets[i + 1]; k++) {
            const lathe_box *b = &d.source_boxes[k];
            if (b->label < 0 || b->label >= m->nclasses)
                problem(r, (int64_t)i, "source box %" PRId64 " label %d outside [0, %d)", k - d.source_offsets[i], b->label,
                        m->nclasses);
            else if (d.meta[i].tile_x || d.meta[i].tile_y)
                problem(r, (int64_t)i, "source boxes on a tile that is not its image's first");
            else if (!(b->x1 >= 0 && b->y1 >= 0 && b->x2 > b->x1 && b->y2 > b->y1 && b->x2 <= d.meta[i].orig_width &&
                       b->y2 <= d.meta[i].orig_height))
                problem(r, (int64_t)i, "source box %" PRId64 " (%g, %g, %g, %g) is not inside the %dx%d image",
                        k - d.source_offsets[i], b->x1, b->y1, b->x2, b->y2, d.meta[i].orig_width, d.meta[i].orig_height);
        }
    for (uint64_t i = 0; !rc && i < sh->n; i++) {
        if (d.meta[i].split != sh->split)
            problem(r, (int64_t)i, "meta split is %s, the shard is %s", lathe_split_name(d.meta[i].split),
                    lathe_split_name(sh->split));
        if (!valid_utf8(d.meta[i].source)) problem(r, (int64_t)i, "meta source is not valid UTF-8");
    }
    if (m->has_text && (rc = load_text(file, sh->n, &d))) problem(r, -1, "%s", lathe_last_error());
    for (uint64_t i = 0; m->has_text && !rc && i < sh->n; i++)
        if (!valid_utf8(d.text[i])) problem(r, (int64_t)i, "text is not valid UTF-8");
    if (ds->sensor_values && (rc = load_sensors(file, sh->n, ds->sensor_values, &d)))
        problem(r, -1, "%s", lathe_last_error());
    shard_data_free(&d, sh->n);
}

static int check_impl(lathe_dataset *ds, size_t s, lathe_dataset_problem_fn fn, void *ctx) {
    reporter r = {fn, ctx, s, 0, ""};
    if (s >= ds->m.nshards) {
        problem(&r, -1, "no shard %zu", s);
        return r.count;
    }
    const shard *sh = &ds->shards[s];
    hid_t file;
    if (open_h5(sh->path, &file)) {
        problem(&r, -1, "%s", lathe_last_error());
        return r.count;
    }
    chunk_layout layout;
    check_structure(ds, sh, file, &layout, &r);
    if (!r.count) check_contents(ds, sh, file, &r);
    H5Fclose(file);
    return r.count;
}

int lathe_dataset_check_shard(lathe_dataset *ds, size_t s, lathe_dataset_problem_fn fn, void *ctx) {
    int n;
    H5E_BEGIN_TRY { n = check_impl(ds, s, fn, ctx); }
    H5E_END_TRY;
    return n;
}
