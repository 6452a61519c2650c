/* shard_writer.c - writes one shard: image/mask chunks straight to HDF5 with H5Dwrite_chunk as
 * they arrive; boxes, labels, meta, sensors and text buffered and written at commit. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>
#include <zstd.h>

#include "../base/error.h"
#include "../base/fsutil.h"
#include "h5_error.h"
#include "h5z_zstd.h"
#include "shard.h"

/* Boxes of the samples so far and where each sample's start: offsets has capacity + 1 entries. */
typedef struct {
    lathe_box *boxes;
    size_t n, cap;
    int64_t *offsets;
} box_list;

struct lathe_shard_writer {
    char final_path[4096], tmp_path[4096];
    lathe_shard_schema schema;
    size_t capacity, count;
    hid_t file, images, encoded, masks;
    uint8_t *zero_mask; /* zstd frame of an all-zero mask, for samples without one */
    size_t zero_mask_len;
    /* buffered per-sample arrays */
    box_list boxes;       /* /boxes, /box_* */
    box_list source;      /* /source_boxes, /source_box_* (schema.has_source_boxes) */
    int32_t *labels;
    lathe_shard_meta_row *meta;
    float *sensors;       /* capacity * T * S */
    char **text;
};

hid_t lathe_shard_meta_type(void) {
    hid_t str = H5Tcopy(H5T_C_S1);
    H5Tset_size(str, H5T_VARIABLE);
    H5Tset_cset(str, H5T_CSET_UTF8);
    hid_t t = H5Tcreate(H5T_COMPOUND, sizeof(lathe_shard_meta_row));
    H5Tinsert(t, "source", HOFFSET(lathe_shard_meta_row, source), str);
    H5Tinsert(t, "image_id", HOFFSET(lathe_shard_meta_row, image_id), H5T_NATIVE_INT64);
    H5Tinsert(t, "orig_width", HOFFSET(lathe_shard_meta_row, orig_width), H5T_NATIVE_INT32);
    H5Tinsert(t, "orig_height", HOFFSET(lathe_shard_meta_row, orig_height), H5T_NATIVE_INT32);
    H5Tinsert(t, "scale_x", HOFFSET(lathe_shard_meta_row, scale_x), H5T_NATIVE_FLOAT);
    H5Tinsert(t, "scale_y", HOFFSET(lathe_shard_meta_row, scale_y), H5T_NATIVE_FLOAT);
    H5Tinsert(t, "pad_x", HOFFSET(lathe_shard_meta_row, pad_x), H5T_NATIVE_FLOAT);
    H5Tinsert(t, "pad_y", HOFFSET(lathe_shard_meta_row, pad_y), H5T_NATIVE_FLOAT);
    H5Tinsert(t, "tile_x", HOFFSET(lathe_shard_meta_row, tile_x), H5T_NATIVE_INT32);
    H5Tinsert(t, "tile_y", HOFFSET(lathe_shard_meta_row, tile_y), H5T_NATIVE_INT32);
    H5Tinsert(t, "source_xxh64", HOFFSET(lathe_shard_meta_row, source_xxh64), H5T_NATIVE_UINT64);
    H5Tinsert(t, "phash", HOFFSET(lathe_shard_meta_row, phash), H5T_NATIVE_UINT64);
    H5Tinsert(t, "split", HOFFSET(lathe_shard_meta_row, split), H5T_NATIVE_UINT8);
    H5Tinsert(t, "orientation", HOFFSET(lathe_shard_meta_row, orientation), H5T_NATIVE_UINT8);
    H5Tclose(str);
    return t;
}

/* "TMP: cannot WHAT: No space left on device", or HDF5's own words where the system gave none. */
static int h5fail(const char *what, const lathe_shard_writer *w) {
    char why[256];
    if (lathe_h5_os_error(why, sizeof why, NULL)) return lathe_fail(LATHE_EIO, "%s: cannot %s: %s", w->tmp_path, what, why);
    return lathe_fail(LATHE_EIO, "%s: HDF5 failed to %s", w->tmp_path, what);
}

/* A chunked, zstd-filtered, extendible dataset of `rank` dims whose first is the sample axis. */
static hid_t create_chunked(hid_t file, const char *name, hid_t type, int rank, const hsize_t *dims, int level) {
    hsize_t maxdims[4], chunk[4];
    for (int i = 0; i < rank; i++) {
        maxdims[i] = i == 0 ? H5S_UNLIMITED : dims[i];
        chunk[i] = i == 0 ? 1 : dims[i];
    }
    hid_t space = H5Screate_simple(rank, dims, maxdims);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    unsigned cd = (unsigned)level;
    H5Pset_obj_track_times(dcpl, 0);
    H5Pset_chunk(dcpl, rank, chunk);
    H5Pset_filter(dcpl, LATHE_H5Z_ZSTD, H5Z_FLAG_OPTIONAL, 1, &cd);
    hid_t d = H5Dcreate2(file, name, type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    H5Pclose(dcpl);
    H5Sclose(space);
    return d;
}

static int compress_zero_mask(lathe_shard_writer *w) {
    size_t n = (size_t)w->schema.height * w->schema.width;
    uint8_t *zeros = calloc(n, 1);
    size_t bound = ZSTD_compressBound(n);
    w->zero_mask = malloc(bound);
    if (!zeros || !w->zero_mask) {
        free(zeros);
        return lathe_fail(LATHE_ENOMEM, "zero mask");
    }
    w->zero_mask_len = ZSTD_compress(w->zero_mask, bound, zeros, n, w->schema.zstd_level);
    free(zeros);
    return ZSTD_isError(w->zero_mask_len) ? lathe_fail(LATHE_EIO, "zstd: %s", ZSTD_getErrorName(w->zero_mask_len)) : 0;
}

static int alloc_buffers(lathe_shard_writer *w) {
    size_t cap = w->capacity;
    size_t sensor_values = (size_t)w->schema.sensor_steps * w->schema.sensor_channels;
    w->boxes.offsets = calloc(cap + 1, sizeof(int64_t));
    w->source.offsets = w->schema.has_source_boxes ? calloc(cap + 1, sizeof(int64_t)) : NULL;
    w->labels = calloc(cap, sizeof *w->labels);
    w->meta = calloc(cap, sizeof *w->meta);
    w->text = calloc(cap, sizeof *w->text);
    w->sensors = sensor_values ? malloc(cap * sensor_values * sizeof(float)) : NULL;
    if (!w->boxes.offsets || (w->schema.has_source_boxes && !w->source.offsets) || !w->labels || !w->meta || !w->text || (sensor_values && !w->sensors))
        return lathe_fail(LATHE_ENOMEM, "shard buffers for %zu samples", cap);
    return 0;
}

static void free_writer(lathe_shard_writer *w) {
    for (size_t i = 0; i < w->count; i++) {
        free(w->meta[i].source);
        free(w->text[i]);
    }
    free(w->zero_mask);
    free(w->boxes.boxes), free(w->boxes.offsets);
    free(w->source.boxes), free(w->source.offsets);
    free(w->labels);
    free(w->meta);
    free(w->sensors);
    free(w->text);
    free(w);
}

static void close_handles(lathe_shard_writer *w) {
    if (w->images >= 0) H5Dclose(w->images);
    if (w->encoded >= 0) H5Dclose(w->encoded);
    if (w->masks >= 0) H5Dclose(w->masks);
    if (w->file >= 0) H5Fclose(w->file);
    w->images = w->encoded = w->masks = w->file = -1;
}

static int shard_create(const char *final_path, const lathe_shard_schema *schema, size_t capacity,
                        lathe_shard_writer **out) {
    *out = NULL;
    if (capacity == 0) return lathe_fail(LATHE_EINVAL, "shard capacity 0");
    int rc = lathe_h5z_zstd_register();
    if (rc) return rc;
    lathe_shard_writer *w = calloc(1, sizeof *w);
    if (!w) return lathe_fail(LATHE_ENOMEM, "shard writer");
    w->file = w->images = w->encoded = w->masks = -1;
    w->schema = *schema;
    w->capacity = capacity;
    snprintf(w->final_path, sizeof w->final_path, "%s", final_path);
    char dir[4096];
    lathe_dirname(final_path, dir, sizeof dir);
    const char *base = strrchr(final_path, '/');
    snprintf(w->tmp_path, sizeof w->tmp_path, "%s/.%s.tmp", dir, base ? base + 1 : final_path);
    if ((rc = alloc_buffers(w)) || (schema->has_masks && (rc = compress_zero_mask(w)))) {
        free_writer(w);
        return rc;
    }
    /* no modification times anywhere: the same samples give byte-identical shards, so a resumed
     * ingest can be checked against an uninterrupted one by checksum */
    hid_t fcpl = H5Pcreate(H5P_FILE_CREATE);
    H5Pset_obj_track_times(fcpl, 0);
    w->file = H5Fcreate(w->tmp_path, H5F_ACC_TRUNC, fcpl, H5P_DEFAULT);
    if (w->file < 0) rc = h5fail("create it", w); /* before another HDF5 call clears the error stack */
    H5Pclose(fcpl);
    if (w->file < 0) {
        unlink(w->tmp_path); /* HDF5 may have made it before the write that failed */
        free_writer(w);
        return rc;
    }
    if (schema->store == LATHE_STORE_PIXELS) {
        hsize_t dims[4] = {capacity, (hsize_t)schema->height, (hsize_t)schema->width, (hsize_t)schema->channels};
        w->images = create_chunked(w->file, "images", H5T_NATIVE_UINT8, 4, dims, schema->zstd_level);
        if (w->images >= 0 && schema->has_masks)
            w->masks = create_chunked(w->file, "masks", H5T_NATIVE_UINT8, 3, dims, schema->zstd_level);
        if (w->images < 0 || (schema->has_masks && w->masks < 0)) rc = h5fail("create /images", w);
    } else {
        hid_t vlen = H5Tvlen_create(H5T_NATIVE_UINT8);
        hsize_t dims[1] = {capacity}, maxdims[1] = {H5S_UNLIMITED}, chunk[1] = {64};
        hid_t space = H5Screate_simple(1, dims, maxdims);
        hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
        H5Pset_obj_track_times(dcpl, 0);
        H5Pset_chunk(dcpl, 1, chunk);
        w->encoded = H5Dcreate2(w->file, "encoded", vlen, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
        H5Pclose(dcpl);
        H5Sclose(space);
        H5Tclose(vlen);
        if (w->encoded < 0) rc = h5fail("create /encoded", w);
    }
    if (rc) {
        lathe_shard_abort(w);
        return rc;
    }
    *out = w;
    return 0;
}

static int write_chunk(lathe_shard_writer *w, hid_t dset, const uint8_t *chunk, size_t len, int rank) {
    hsize_t offset[4] = {w->count, 0, 0, 0};
    (void)rank;
    if (H5Dwrite_chunk(dset, H5P_DEFAULT, 0, offset, len, chunk) < 0) return h5fail("write a chunk", w);
    return 0;
}

static int write_encoded(lathe_shard_writer *w, const uint8_t *data, size_t len) {
    hid_t vlen = H5Tvlen_create(H5T_NATIVE_UINT8);
    hid_t file_space = H5Dget_space(w->encoded);
    hsize_t start[1] = {w->count}, one[1] = {1};
    H5Sselect_hyperslab(file_space, H5S_SELECT_SET, start, NULL, one, NULL);
    hid_t mem_space = H5Screate_simple(1, one, NULL);
    hvl_t value = {len, (void *)data};
    herr_t st = H5Dwrite(w->encoded, vlen, mem_space, file_space, H5P_DEFAULT, &value);
    H5Sclose(mem_space);
    H5Sclose(file_space);
    H5Tclose(vlen);
    return st < 0 ? h5fail("write /encoded", w) : 0;
}

/* Appends sample i's boxes. */
static int box_list_add(box_list *l, size_t i, const lathe_box *boxes, size_t n) {
    if (l->n + n > l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 256;
        while (cap < l->n + n) cap *= 2;
        lathe_box *p = realloc(l->boxes, cap * sizeof *p);
        if (!p) return lathe_fail(LATHE_ENOMEM, "shard boxes");
        l->boxes = p, l->cap = cap;
    }
    if (n) memcpy(l->boxes + l->n, boxes, n * sizeof *boxes);
    l->n += n;
    l->offsets[i + 1] = (int64_t)l->n;
    return 0;
}

static int shard_append(lathe_shard_writer *w, const lathe_shard_sample *s) {
    if (w->count >= w->capacity) return lathe_fail(LATHE_ELIMIT, "shard full at %zu samples", w->capacity);
    int rc;
    if (w->schema.store == LATHE_STORE_PIXELS) {
        if (!s->image_chunk) return lathe_fail(LATHE_EINVAL, "pixels store without an image chunk");
        if ((rc = write_chunk(w, w->images, s->image_chunk, s->image_chunk_len, 4))) return rc;
        if (w->masks >= 0) {
            rc = s->mask_chunk ? write_chunk(w, w->masks, s->mask_chunk, s->mask_chunk_len, 3)
                               : write_chunk(w, w->masks, w->zero_mask, w->zero_mask_len, 3);
            if (rc) return rc;
        }
    } else if ((rc = write_encoded(w, s->encoded, s->encoded_len))) {
        return rc;
    }
    size_t i = w->count;
    if ((rc = box_list_add(&w->boxes, i, s->boxes, s->nboxes))) return rc;
    if (w->schema.has_source_boxes && (rc = box_list_add(&w->source, i, s->source_boxes, s->nsource_boxes))) return rc;
    w->labels[i] = s->label;
    size_t sv = (size_t)w->schema.sensor_steps * w->schema.sensor_channels;
    for (size_t k = 0; k < sv; k++) w->sensors[i * sv + k] = s->sensors ? s->sensors[k] : NAN;
    const lathe_meta *m = &s->meta;
    w->meta[i] = (lathe_shard_meta_row){NULL, m->image_id, m->orig_width, m->orig_height, m->scale_x, m->scale_y, m->pad_x,
                            m->pad_y, m->tile_x, m->tile_y, m->source_xxh64, m->phash, m->split, m->orientation};
    w->meta[i].source = strdup(m->source ? m->source : "");
    w->text[i] = strdup(s->text ? s->text : "");
    w->count++; /* counted before the checks so free_writer releases both strings */
    if (!w->meta[i].source || !w->text[i]) return lathe_fail(LATHE_ENOMEM, "shard strings");
    return 0;
}

size_t lathe_shard_count(const lathe_shard_writer *w) { return w->count; }

/* Writes a whole contiguous (or zstd-chunked when chunk_rows > 0) dataset from memory. */
static int write_array(lathe_shard_writer *w, const char *name, hid_t type, int rank, const hsize_t *dims,
                       const void *data) {
    hid_t space = H5Screate_simple(rank, dims, NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_obj_track_times(dcpl, 0);
    if (dims[0] > 0) {
        hsize_t chunk[3];
        for (int i = 0; i < rank; i++) chunk[i] = dims[i];
        if (chunk[0] > 4096) chunk[0] = 4096;
        unsigned cd = (unsigned)w->schema.zstd_level;
        H5Pset_chunk(dcpl, rank, chunk);
        H5Pset_filter(dcpl, LATHE_H5Z_ZSTD, H5Z_FLAG_OPTIONAL, 1, &cd);
    }
    hid_t d = H5Dcreate2(w->file, name, type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    herr_t st = d < 0 ? -1 : dims[0] ? H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) : 0;
    if (st >= 0) { /* the checksum every reader checks (shard.h) */
        uint64_t elems = 1;
        for (int i = 0; i < rank; i++) elems *= dims[i];
        uint64_t hash = lathe_shard_array_hash(type, data, elems);
        hid_t scalar = H5Screate(H5S_SCALAR);
        hid_t a = H5Acreate2(d, LATHE_SHARD_HASH_ATTR, H5T_STD_U64LE, scalar, H5P_DEFAULT, H5P_DEFAULT);
        st = a < 0 ? -1 : H5Awrite(a, H5T_NATIVE_UINT64, &hash);
        if (a >= 0) H5Aclose(a);
        H5Sclose(scalar);
    }
    if (d >= 0) H5Dclose(d);
    H5Pclose(dcpl);
    H5Sclose(space);
    if (st < 0) {
        char what[64];
        snprintf(what, sizeof what, "write /%s", name);
        return h5fail(what, w);
    }
    return 0;
}

static hid_t utf8_string_type(void) {
    hid_t str = H5Tcopy(H5T_C_S1);
    H5Tset_size(str, H5T_VARIABLE);
    H5Tset_cset(str, H5T_CSET_UTF8);
    return str;
}

static int write_strings_attr(hid_t obj, const char *name, const char *const *values, size_t n) {
    hid_t str = utf8_string_type();
    hsize_t dims[1] = {n};
    hid_t space = n ? H5Screate_simple(1, dims, NULL) : H5Screate(H5S_NULL);
    hid_t a = H5Acreate2(obj, name, str, space, H5P_DEFAULT, H5P_DEFAULT);
    herr_t st = a < 0 ? -1 : n ? H5Awrite(a, str, values) : 0;
    if (a >= 0) H5Aclose(a);
    H5Sclose(space);
    H5Tclose(str);
    return st < 0 ? -1 : 0;
}

/* A scalar attribute (a plain number or string in h5py, not a one-element array). */
static int write_scalar_attr(hid_t obj, const char *name, hid_t type, const void *value) {
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
    herr_t st = a < 0 ? -1 : H5Awrite(a, type, value);
    if (a >= 0) H5Aclose(a);
    H5Sclose(space);
    return st < 0 ? -1 : 0;
}

static int write_attrs(lathe_shard_writer *w) {
    const lathe_shard_schema *s = &w->schema;
    hsize_t two = 2;
    int schema = LATHE_SCHEMA_VERSION;
    int size[2] = {s->height, s->width};
    hid_t pair = H5Screate_simple(1, &two, NULL);
    hid_t a = H5Acreate2(w->file, "image_size", H5T_NATIVE_INT, pair, H5P_DEFAULT, H5P_DEFAULT);
    int bad = a < 0 || H5Awrite(a, H5T_NATIVE_INT, size) < 0;
    if (a >= 0) H5Aclose(a);
    H5Sclose(pair);
    const char *store = s->store == LATHE_STORE_PIXELS ? "pixels" : "encoded";
    const char *created = s->created_by ? s->created_by : "lathe";
    hid_t str = utf8_string_type();
    bad = bad || write_scalar_attr(w->file, "lathe_schema", H5T_NATIVE_INT, &schema) ||
          write_strings_attr(w->file, "class_names", s->class_names, (size_t)s->nclasses) ||
          write_scalar_attr(w->file, "created_by", str, &created) || write_scalar_attr(w->file, "store", str, &store);
    H5Tclose(str);
    return bad ? h5fail("write the root attributes", w) : 0;
}

/* A box list as prefix + "boxes" (float32 [M, 4]), prefix + "box_labels", "_flags", "_ids", "_areas" (M)
 * and "_offsets" (N + 1). */
static int write_box_list(lathe_shard_writer *w, const box_list *l, const char *prefix) {
    hsize_t m = l->n;
    float *coords = malloc((m ? m : 1) * 4 * sizeof(float));
    int32_t *box_labels = malloc((m ? m : 1) * sizeof(int32_t));
    uint8_t *flags = malloc(m ? m : 1);
    int64_t *ids = malloc((m ? m : 1) * sizeof(int64_t));
    float *areas = malloc((m ? m : 1) * sizeof(float));
    int rc = 0;
    if (!coords || !box_labels || !flags || !ids || !areas) rc = lathe_fail(LATHE_ENOMEM, "box arrays");
    for (hsize_t i = 0; !rc && i < m; i++) {
        const lathe_box *b = &l->boxes[i];
        coords[4 * i] = b->x1, coords[4 * i + 1] = b->y1, coords[4 * i + 2] = b->x2, coords[4 * i + 3] = b->y2;
        box_labels[i] = b->label, flags[i] = b->flags, ids[i] = b->id, areas[i] = b->area;
    }
    hsize_t d_boxes[2] = {m, 4}, d_m[1] = {m}, d_off[1] = {w->count + 1};
    char name[64];
#define NAMED(suffix) (snprintf(name, sizeof name, "%s%s", prefix, suffix), name)
    if (!rc) rc = write_array(w, NAMED("boxes"), H5T_NATIVE_FLOAT, 2, d_boxes, coords);
    if (!rc) rc = write_array(w, NAMED("box_labels"), H5T_NATIVE_INT32, 1, d_m, box_labels);
    if (!rc) rc = write_array(w, NAMED("box_flags"), H5T_NATIVE_UINT8, 1, d_m, flags);
    if (!rc) rc = write_array(w, NAMED("box_ids"), H5T_NATIVE_INT64, 1, d_m, ids);
    if (!rc) rc = write_array(w, NAMED("box_areas"), H5T_NATIVE_FLOAT, 1, d_m, areas);
    if (!rc) rc = write_array(w, NAMED("box_offsets"), H5T_NATIVE_INT64, 1, d_off, l->offsets);
#undef NAMED
    free(coords);
    free(box_labels);
    free(flags);
    free(ids);
    free(areas);
    return rc;
}

static int write_buffered(lathe_shard_writer *w) {
    hsize_t n = w->count, d_n[1] = {n};
    hid_t meta_type = lathe_shard_meta_type();
    hid_t str = utf8_string_type();
    int rc = write_box_list(w, &w->boxes, "");
    if (!rc && w->schema.has_source_boxes) rc = write_box_list(w, &w->source, "source_");
    if (!rc) rc = write_array(w, "labels", H5T_NATIVE_INT32, 1, d_n, w->labels);
    if (!rc) rc = write_array(w, "meta", meta_type, 1, d_n, w->meta);
    if (!rc && w->schema.has_text) rc = write_array(w, "text", str, 1, d_n, w->text);
    if (!rc && w->schema.sensor_steps > 0) {
        hsize_t d_s[3] = {n, (hsize_t)w->schema.sensor_steps, (hsize_t)w->schema.sensor_channels};
        rc = write_array(w, "sensors", H5T_NATIVE_FLOAT, 3, d_s, w->sensors);
        hid_t d = rc ? -1 : H5Dopen2(w->file, "sensors", H5P_DEFAULT);
        if (!rc && (d < 0 || write_strings_attr(d, "channels", w->schema.sensor_names,
                                                (size_t)w->schema.sensor_channels)))
            rc = h5fail("write /sensors channels", w);
        if (d >= 0) H5Dclose(d);
    }
    H5Tclose(str);
    H5Tclose(meta_type);
    return rc;
}

static int shrink(lathe_shard_writer *w, hid_t dset) {
    if (dset < 0) return 0;
    hsize_t dims[4];
    hid_t space = H5Dget_space(dset);
    int rank = H5Sget_simple_extent_dims(space, dims, NULL);
    H5Sclose(space);
    dims[0] = w->count;
    return rank < 1 || H5Dset_extent(dset, dims) < 0 ? h5fail("set the sample count", w) : 0;
}


static int shard_commit(lathe_shard_writer *w, const char *final_path, uint64_t *bytes, uint64_t *xxh64) {
    if (final_path) snprintf(w->final_path, sizeof w->final_path, "%s", final_path);
    int rc = shrink(w, w->images);
    if (!rc) rc = shrink(w, w->masks);
    if (!rc) rc = shrink(w, w->encoded);
    if (!rc) rc = write_buffered(w);
    if (!rc) rc = write_attrs(w);
    hid_t file = w->file;
    w->file = -1;
    if (w->images >= 0) H5Dclose(w->images);
    if (w->encoded >= 0) H5Dclose(w->encoded);
    if (w->masks >= 0) H5Dclose(w->masks);
    w->images = w->encoded = w->masks = -1;
    if (H5Fclose(file) < 0 && !rc) rc = h5fail("close", w);
    if (!rc) rc = lathe_rename_durable(w->tmp_path, w->final_path);
    if (!rc) rc = lathe_file_xxh64(w->final_path, xxh64, bytes);
    if (rc) unlink(w->tmp_path);
    free_writer(w);
    return rc;
}

void lathe_shard_abort(lathe_shard_writer *w) {
    if (!w) return;
    /* closing flushes what HDF5 still holds, and after a write error that fails again: quietly,
     * the caller has the first error */
    H5E_BEGIN_TRY { close_handles(w); } H5E_END_TRY;
    unlink(w->tmp_path);
    free_writer(w);
}

int lathe_file_xxh64(const char *path, uint64_t *hash, uint64_t *bytes) {
    FILE *f = fopen(path, "rb");
    if (!f) return lathe_fail(LATHE_EIO, "%s: %s", path, strerror(errno));
    XXH64_state_t *st = XXH64_createState();
    uint8_t *buf = malloc(1 << 20);
    if (!st || !buf) {
        fclose(f);
        free(buf);
        XXH64_freeState(st);
        return lathe_fail(LATHE_ENOMEM, "hash state");
    }
    XXH64_reset(st, 0);
    uint64_t total = 0;
    size_t n;
    while ((n = fread(buf, 1, 1 << 20, f)) > 0) {
        XXH64_update(st, buf, n);
        total += n;
    }
    int rc = ferror(f) ? lathe_fail(LATHE_EIO, "%s: %s", path, strerror(errno)) : 0;
    fclose(f);
    *hash = XXH64_digest(st);
    if (bytes) *bytes = total;
    XXH64_freeState(st);
    free(buf);
    return rc;
}

/* The public calls keep HDF5's own error stack off stderr: failures come back as lathe errors. */
int lathe_shard_create(const char *final_path, const lathe_shard_schema *schema, size_t capacity,
                       lathe_shard_writer **out) {
    int rc = -LATHE_EIO;
    H5E_BEGIN_TRY { rc = shard_create(final_path, schema, capacity, out); } H5E_END_TRY;
    return rc;
}

int lathe_shard_append(lathe_shard_writer *w, const lathe_shard_sample *s) {
    int rc = -LATHE_EIO;
    H5E_BEGIN_TRY { rc = shard_append(w, s); } H5E_END_TRY;
    return rc;
}

int lathe_shard_commit_as(lathe_shard_writer *w, const char *final_path, uint64_t *bytes, uint64_t *xxh64) {
    int rc = -LATHE_EIO;
    H5E_BEGIN_TRY { rc = shard_commit(w, final_path, bytes, xxh64); } H5E_END_TRY;
    return rc;
}

int lathe_shard_commit(lathe_shard_writer *w, uint64_t *bytes, uint64_t *xxh64) {
    return lathe_shard_commit_as(w, NULL, bytes, xxh64);
}
