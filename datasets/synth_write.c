/* synth_write.c - writes a synthetic archive: plans every sample once to build annotations.json
 * (written first, so a streaming reader meets the labels before the images), then renders and
 * encodes samples on OpenMP threads and writes them in index order through a bounded reorder
 * window, to a folder or straight into a tar (libarchive, optionally gzip or zstd). Memory stays
 * at about (2 x threads + 2) encoded samples plus one image per thread. */
#include <archive.h>
#include <archive_entry.h>
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <libxml/xmlwriter.h>
#include <omp.h>
#include <pthread.h>
#include <stdarg.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "datasets/synth.h"
#include "datasets/synth_internal.h"
#include "libcore/base/error.h"
#include "libcore/base/fsutil.h"
#include "libcore/base/log.h"

/* Every tar entry gets this modification time (2024-01-01 00:00 UTC) so archives are byte-identical. */
#define SYNTH_MTIME 1704067200
#define MAX_ENTRIES 5

/* ---- where the files go ---- */

typedef struct {
    struct archive *ar; /* NULL: a folder */
    char *root;         /* folder, or the final archive path */
    char *partial;      /* the archive being written */
} sink;

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* lathe_mkdirs, and a check that the result is a folder (a file may sit where it should be). */
static int make_folder(const char *path) {
    int rc = lathe_mkdirs(path);
    if (rc) return rc;
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) return lathe_fail(LATHE_EEXIST, "%s exists and is not a folder", path);
    return 0;
}

static int folder_is_empty(const char *path) {
    DIR *d = opendir(path);
    if (!d) return 1;
    struct dirent *e;
    int empty = 1;
    while (empty && (e = readdir(d))) empty = strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0;
    closedir(d);
    return empty;
}

static int sink_open(sink *s, const char *out, const lathe_synth_opts *o) {
    memset(s, 0, sizeof *s);
    int gz = ends_with(out, ".tar.gz") || ends_with(out, ".tgz"), zst = ends_with(out, ".tar.zst");
    int tar = gz || zst || ends_with(out, ".tar");
    struct stat st;
    int exists = stat(out, &st) == 0;
    if (!(s->root = strdup(out))) return lathe_fail(LATHE_ENOMEM, "path");
    if (!tar) {
        if (exists && !S_ISDIR(st.st_mode)) return lathe_fail(LATHE_EEXIST, "%s exists and is not a folder", out);
        if (exists && !o->force && !folder_is_empty(out))
            return lathe_fail(LATHE_EEXIST, "output folder %s exists and is not empty", out);
        static const char *const dirs[] = {"images", "sensors", "text", "labels", "Annotations"};
        int rc = make_folder(out);
        for (int i = 0; !rc && i < 5; i++) {
            if ((i == 3 && !o->yolo) || (i == 4 && !o->voc)) continue;
            char sub[4096];
            if (snprintf(sub, sizeof sub, "%s/%s", out, dirs[i]) >= (int)sizeof sub)
                return lathe_fail(LATHE_EINVAL, "path too long: %s", out);
            rc = make_folder(sub);
        }
        return rc;
    }
    if (exists && (!o->force || S_ISDIR(st.st_mode)))
        return lathe_fail(LATHE_EEXIST, "output archive %s already exists", out);
    char parent[4096];
    lathe_dirname(out, parent, sizeof parent);
    int rc = make_folder(parent); /* parents are created, as for a folder output */
    if (rc) return rc;
    size_t n = strlen(out) + 16;
    if (!(s->partial = malloc(n))) return lathe_fail(LATHE_ENOMEM, "path");
    snprintf(s->partial, n, "%s.partial", out);
    if (!(s->ar = archive_write_new())) return lathe_fail(LATHE_ENOMEM, "libarchive writer");
    int r = archive_write_set_format_pax_restricted(s->ar);
    if (r == ARCHIVE_OK && gz) {
        r = archive_write_add_filter_gzip(s->ar);
        /* no time stamp in the gzip header: the same options give the same bytes */
        if (r == ARCHIVE_OK && archive_write_set_filter_option(s->ar, "gzip", "timestamp", NULL) < ARCHIVE_WARN)
            r = ARCHIVE_FAILED;
    }
    if (r == ARCHIVE_OK && zst) r = archive_write_add_filter_zstd(s->ar);
    if (r == ARCHIVE_OK) r = archive_write_open_filename(s->ar, s->partial);
    if (r != ARCHIVE_OK) return lathe_fail(LATHE_EIO, "cannot write %s: %s", s->partial, archive_error_string(s->ar));
    return 0;
}

static int sink_put(sink *s, const char *rel, const void *data, size_t len) {
    if (s->ar) {
        struct archive_entry *e = archive_entry_new();
        if (!e) return lathe_fail(LATHE_ENOMEM, "archive entry");
        archive_entry_set_pathname(e, rel);
        archive_entry_set_size(e, (la_int64_t)len);
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_perm(e, 0644);
        archive_entry_set_mtime(e, SYNTH_MTIME, 0);
        int rc = 0;
        if (archive_write_header(s->ar, e) != ARCHIVE_OK ||
            (len && archive_write_data(s->ar, data, len) != (la_ssize_t)len))
            rc = lathe_fail(LATHE_EIO, "writing %s into %s: %s", rel, s->partial, archive_error_string(s->ar));
        archive_entry_free(e);
        return rc;
    }
    char path[4096];
    if (snprintf(path, sizeof path, "%s/%s", s->root, rel) >= (int)sizeof path)
        return lathe_fail(LATHE_EINVAL, "path too long: %s/%s", s->root, rel);
    FILE *f = fopen(path, "wb");
    if (!f) return lathe_fail(LATHE_EIO, "cannot create %s: %s", path, strerror(errno));
    size_t n = len ? fwrite(data, 1, len, f) : 0;
    int err = n != len ? errno : 0;
    if (fclose(f) != 0 && !err) err = errno;
    if (n != len || err) return lathe_fail(LATHE_EIO, "writing %s: %s", path, strerror(err ? err : EIO));
    return 0;
}

/* Finishes the archive (ok = 1: rename it into place; 0: remove it) and frees s. */
static int sink_close(sink *s, int ok) {
    int rc = 0;
    if (s->ar) {
        if (archive_write_close(s->ar) != ARCHIVE_OK && ok)
            rc = lathe_fail(LATHE_EIO, "finishing %s: %s", s->partial, archive_error_string(s->ar));
        archive_write_free(s->ar);
        if (ok && !rc) rc = lathe_rename_durable(s->partial, s->root);
        if ((!ok || rc) && s->partial) unlink(s->partial);
    }
    free(s->root);
    free(s->partial);
    memset(s, 0, sizeof *s);
    return rc;
}

/* ---- label files ---- */

static const char *image_ext(const synth_scene *sc) { return sc->is_png ? "png" : "jpg"; }

static void stem_of(const synth_scene *sc, char *buf, size_t cap) {
    snprintf(buf, cap, "part%05d_v%d", sc->part_no, sc->view);
}

/* A [MIN, MAX] pair. */
static int add_pair(cJSON *obj, const char *name, double a, double b) {
    double v[2] = {a, b};
    cJSON *arr = cJSON_CreateDoubleArray(v, 2);
    if (arr && cJSON_AddItemToObject(obj, name, arr)) return 1;
    cJSON_Delete(arr);
    return 0;
}

/* The realism knobs that differ from their defaults (none at the defaults, so the file is the
 * original one). Returns 0 when out of memory. */
static int add_knobs(cJSON *gen, const lathe_synth_opts *o) {
    lathe_synth_opts d;
    lathe_synth_defaults(&d);
    int ok = 1;
    if (o->defect_size[0] != d.defect_size[0] || o->defect_size[1] != d.defect_size[1])
        ok = ok && add_pair(gen, "defect_size", o->defect_size[0], o->defect_size[1]);
    if (o->contrast[0] != d.contrast[0] || o->contrast[1] != d.contrast[1])
        ok = ok && add_pair(gen, "contrast", o->contrast[0], o->contrast[1]);
    if (o->defect_count[0] != d.defect_count[0] || o->defect_count[1] != d.defect_count[1])
        ok = ok && add_pair(gen, "defects", o->defect_count[0], o->defect_count[1]);
    if (o->defect_rate != d.defect_rate) ok = ok && cJSON_AddNumberToObject(gen, "defect_rate", o->defect_rate);
    if (o->sensor_fault_rate != d.sensor_fault_rate)
        ok = ok && cJSON_AddNumberToObject(gen, "sensor_fault_rate", o->sensor_fault_rate);
    if (o->part_size[0] != d.part_size[0] || o->part_size[1] != d.part_size[1])
        ok = ok && add_pair(gen, "part_size", o->part_size[0], o->part_size[1]);
    if (o->clutter != d.clutter) ok = ok && cJSON_AddNumberToObject(gen, "clutter", o->clutter);
    if (o->noise[0] != d.noise[0] || o->noise[1] != d.noise[1]) ok = ok && add_pair(gen, "noise", o->noise[0], o->noise[1]);
    if (o->blur != d.blur) ok = ok && cJSON_AddNumberToObject(gen, "blur", o->blur);
    if (o->sensor_noise != d.sensor_noise) ok = ok && cJSON_AddNumberToObject(gen, "sensor_noise", o->sensor_noise);
    if (o->sensor_drift != d.sensor_drift) ok = ok && cJSON_AddNumberToObject(gen, "sensor_drift", o->sensor_drift);
    if (o->sensor_dropout != d.sensor_dropout) ok = ok && cJSON_AddNumberToObject(gen, "sensor_dropout", o->sensor_dropout);
    return ok;
}

/* COCO: info, images (with "label" and "description"), annotations, categories. */
static char *coco_json(const lathe_synth_opts *o, const int32_t *parts, const int32_t *views) {
    cJSON *root = cJSON_CreateObject(), *info = cJSON_AddObjectToObject(root, "info");
    cJSON *images = cJSON_AddArrayToObject(root, "images"), *anns = cJSON_AddArrayToObject(root, "annotations");
    cJSON *cats = cJSON_AddArrayToObject(root, "categories");
    char buf[LATHE_SYNTH_TEXT_MAX];
    int ok = root && info && images && anns && cats;
    if (ok) {
        ok = cJSON_AddStringToObject(info, "description", "lathe synth: synthetic factory inspection samples") &&
#ifdef LATHE_VERSION
             cJSON_AddStringToObject(info, "version", LATHE_VERSION) &&
#endif
             cJSON_AddStringToObject(info, "contributor", "lathe synth");
        snprintf(buf, sizeof buf, "%llu", (unsigned long long)o->seed);
        cJSON *gen = cJSON_AddObjectToObject(info, "lathe_synth");
        ok = ok && gen && cJSON_AddStringToObject(gen, "seed", buf) && cJSON_AddNumberToObject(gen, "count", o->count) &&
             cJSON_AddNumberToObject(gen, "width", o->width) && cJSON_AddNumberToObject(gen, "height", o->height) &&
             cJSON_AddNumberToObject(gen, "sensor_steps", o->sensor_steps) &&
             cJSON_AddNumberToObject(gen, "sensor_rate_hz", SYNTH_SENSOR_HZ) &&
             cJSON_AddNumberToObject(gen, "png_ratio", o->png_ratio) &&
             cJSON_AddNumberToObject(gen, "jpeg_quality", o->jpeg_quality) && add_knobs(gen, o);
    }
    int64_t ann_id = 1;
    for (int i = 0; ok && i < o->count; i++) {
        synth_scene sc;
        lathe_synth_plan(o, parts[i], views[i], &sc);
        char stem[32], name[48];
        stem_of(&sc, stem, sizeof stem);
        snprintf(name, sizeof name, "%s.%s", stem, image_ext(&sc));
        lathe_synth_describe(&sc, buf, sizeof buf);
        cJSON *im = cJSON_CreateObject();
        if (!im || !cJSON_AddItemToArray(images, im)) {
            cJSON_Delete(im);
            ok = 0;
            break;
        }
        ok = cJSON_AddNumberToObject(im, "id", i + 1) &&
             cJSON_AddStringToObject(im, "file_name", name) && cJSON_AddNumberToObject(im, "width", o->width) &&
             cJSON_AddNumberToObject(im, "height", o->height) && cJSON_AddNumberToObject(im, "label", sc.label) &&
             cJSON_AddStringToObject(im, "description", buf);
        for (int k = 0; ok && k < sc.ndefects; k++) {
            const synth_defect *d = &sc.defects[k];
            int w = d->x1 - d->x0 + 1, h = d->y1 - d->y0 + 1;
            double box[4] = {d->x0, d->y0, w, h};
            cJSON *a = cJSON_CreateObject(), *bb = cJSON_CreateDoubleArray(box, 4);
            if (!a || !bb || !cJSON_AddItemToObject(a, "bbox", bb)) {
                cJSON_Delete(a);
                cJSON_Delete(bb);
                ok = 0;
                break;
            }
            if (!cJSON_AddItemToArray(anns, a)) {
                cJSON_Delete(a);
                ok = 0;
                break;
            }
            ok = cJSON_AddNumberToObject(a, "id", (double)ann_id++) && cJSON_AddNumberToObject(a, "image_id", i + 1) &&
                 cJSON_AddNumberToObject(a, "category_id", d->category) &&
                 cJSON_AddNumberToObject(a, "area", (double)w * h) && cJSON_AddNumberToObject(a, "iscrowd", 0);
        }
    }
    for (int c = 0; ok && c < LATHE_SYNTH_NCLASSES; c++) {
        cJSON *cat = cJSON_CreateObject();
        ok = cat && cJSON_AddItemToArray(cats, cat) && cJSON_AddNumberToObject(cat, "id", c) &&
             cJSON_AddStringToObject(cat, "name", lathe_synth_class_name(c)) &&
             cJSON_AddStringToObject(cat, "supercategory", c == 0 ? "none" : "defect");
    }
    char *text = ok ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    if (!text) lathe_fail(LATHE_ENOMEM, "annotations.json of %d images", o->count);
    return text;
}

static const char data_yaml[] =
    "# Written by lathe synth. Class ids are the COCO category ids of annotations.json; 0 (good),\n"
    "# 5 (bearing_wear), 6 (overheating) and 7 (jam) never have boxes.\n"
    "path: .\n"
    "train: images\n"
    "val: images\n"
    "nc: 8\n"
    "names:\n"
    "  - good\n"
    "  - scratch\n"
    "  - dent\n"
    "  - crack\n"
    "  - missing_hole\n"
    "  - bearing_wear\n"
    "  - overheating\n"
    "  - jam\n";

/* Pascal VOC XML for one image (boxes 1-based inclusive). */
static int voc_xml(const synth_scene *sc, const char *file, uint8_t **out, size_t *len) {
    xmlBufferPtr buf = xmlBufferCreate();
    xmlTextWriterPtr w = buf ? xmlNewTextWriterMemory(buf, 0) : NULL;
    if (!w) {
        if (buf) xmlBufferFree(buf);
        return lathe_fail(LATHE_ENOMEM, "VOC writer");
    }
    int ok = xmlTextWriterSetIndent(w, 1) >= 0 && xmlTextWriterSetIndentString(w, BAD_CAST "  ") >= 0 &&
             xmlTextWriterStartDocument(w, NULL, "UTF-8", NULL) >= 0 &&
             xmlTextWriterStartElement(w, BAD_CAST "annotation") >= 0 &&
             xmlTextWriterWriteElement(w, BAD_CAST "folder", BAD_CAST "images") >= 0 &&
             xmlTextWriterWriteElement(w, BAD_CAST "filename", BAD_CAST file) >= 0 &&
             xmlTextWriterStartElement(w, BAD_CAST "source") >= 0 &&
             xmlTextWriterWriteElement(w, BAD_CAST "database", BAD_CAST "lathe synth") >= 0 &&
             xmlTextWriterEndElement(w) >= 0 && xmlTextWriterStartElement(w, BAD_CAST "size") >= 0 &&
             xmlTextWriterWriteFormatElement(w, BAD_CAST "width", "%d", sc->width) >= 0 &&
             xmlTextWriterWriteFormatElement(w, BAD_CAST "height", "%d", sc->height) >= 0 &&
             xmlTextWriterWriteElement(w, BAD_CAST "depth", BAD_CAST "3") >= 0 && xmlTextWriterEndElement(w) >= 0 &&
             xmlTextWriterWriteElement(w, BAD_CAST "segmented", BAD_CAST "0") >= 0;
    for (int i = 0; ok && i < sc->ndefects; i++) {
        const synth_defect *d = &sc->defects[i];
        ok = xmlTextWriterStartElement(w, BAD_CAST "object") >= 0 &&
             xmlTextWriterWriteElement(w, BAD_CAST "name", BAD_CAST lathe_synth_class_name(d->category)) >= 0 &&
             xmlTextWriterWriteElement(w, BAD_CAST "pose", BAD_CAST "Unspecified") >= 0 &&
             xmlTextWriterWriteElement(w, BAD_CAST "truncated", BAD_CAST "0") >= 0 &&
             xmlTextWriterWriteElement(w, BAD_CAST "difficult", BAD_CAST "0") >= 0 &&
             xmlTextWriterStartElement(w, BAD_CAST "bndbox") >= 0 &&
             xmlTextWriterWriteFormatElement(w, BAD_CAST "xmin", "%d", d->x0 + 1) >= 0 &&
             xmlTextWriterWriteFormatElement(w, BAD_CAST "ymin", "%d", d->y0 + 1) >= 0 &&
             xmlTextWriterWriteFormatElement(w, BAD_CAST "xmax", "%d", d->x1 + 1) >= 0 &&
             xmlTextWriterWriteFormatElement(w, BAD_CAST "ymax", "%d", d->y1 + 1) >= 0 &&
             xmlTextWriterEndElement(w) >= 0 && xmlTextWriterEndElement(w) >= 0;
    }
    ok = ok && xmlTextWriterEndDocument(w) >= 0;
    xmlFreeTextWriter(w);
    if (ok) {
        *len = (size_t)xmlBufferLength(buf);
        if ((*out = malloc(*len ? *len : 1))) memcpy(*out, xmlBufferContent(buf), *len);
        else ok = 0;
    }
    xmlBufferFree(buf);
    return ok ? 0 : lathe_fail(LATHE_ENOMEM, "VOC XML for %s", file);
}

/* ---- one sample: every file it contributes ---- */

typedef struct {
    char path[64];
    uint8_t *data;
    size_t len;
} entry;

typedef struct {
    entry e[MAX_ENTRIES];
    int n;
} item;

static void item_clear(item *it) {
    for (int i = 0; i < it->n; i++) free(it->e[i].data);
    memset(it, 0, sizeof *it);
}

/* Adds an entry whose data (malloc'ed) the item now owns. */
static entry *item_add(item *it, uint8_t *data, size_t len, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static entry *item_add(item *it, uint8_t *data, size_t len, const char *fmt, ...) {
    LATHE_ASSERT(it->n < MAX_ENTRIES);
    entry *e = &it->e[it->n++];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->path, sizeof e->path, fmt, ap);
    va_end(ap);
    e->data = data;
    e->len = len;
    return e;
}

/* Per-thread buffers. */
typedef struct {
    lathe_image img;
    void *scratch;
    float *sensors;
} worker;

static char *sensor_csv(int steps, const float *s, size_t *len) {
    size_t cap = 64 + (size_t)steps * 6 * 24;
    char *buf = malloc(cap);
    if (!buf) return NULL;
    size_t n = (size_t)snprintf(buf, cap, "t");
    for (int c = 0; c < LATHE_SYNTH_NCHANNELS; c++) n += (size_t)snprintf(buf + n, cap - n, ",%s", lathe_synth_channel_name(c));
    buf[n++] = '\n';
    for (int t = 0; t < steps; t++) {
        n += (size_t)snprintf(buf + n, cap - n, "%.6f", t / SYNTH_SENSOR_HZ);
        for (int c = 0; c < LATHE_SYNTH_NCHANNELS; c++) {
            double v = s[(size_t)t * LATHE_SYNTH_NCHANNELS + c];
            if (v > -5e-7 && v < 5e-7) v = 0; /* never "-0.000000" */
            n += isnan(v) ? (size_t)snprintf(buf + n, cap - n, ",") : (size_t)snprintf(buf + n, cap - n, ",%.6f", v);
        }
        buf[n++] = '\n';
    }
    *len = n;
    return buf;
}

static int produce(const lathe_synth_opts *o, int part_no, int view, worker *wk, item *it) {
    synth_scene sc;
    lathe_synth_plan(o, part_no, view, &sc);
    char stem[32], file[48];
    stem_of(&sc, stem, sizeof stem);
    snprintf(file, sizeof file, "%s.%s", stem, image_ext(&sc));
    lathe_synth_render(&sc, &wk->img, wk->scratch);
    uint8_t *data = NULL;
    size_t len = 0;
    int rc = sc.is_png ? lathe_png_encode(&wk->img, &data, &len) : lathe_jpeg_encode(&wk->img, o->jpeg_quality, &data, &len);
    if (rc) return lathe_fail_context(-rc, "encoding %s", file);
    item_add(it, data, len, "images/%s", file);

    lathe_synth_sensors(&sc, o->sensor_steps, wk->sensors);
    if (o->sensor_dropout > 0) { /* dead channels: drawn from their own stream, so the rest is unchanged */
        synth_rng gr;
        lathe_synth_rng_init(&gr, o->seed, (uint64_t)part_no, (uint64_t)view, SYNTH_STREAM_SENSOR_GAPS);
        for (int c = 0; c < LATHE_SYNTH_NCHANNELS; c++)
            if (synth_unit(&gr) < o->sensor_dropout)
                for (int t = 0; t < o->sensor_steps; t++) wk->sensors[(size_t)t * LATHE_SYNTH_NCHANNELS + c] = NAN;
    }
    char *csv = sensor_csv(o->sensor_steps, wk->sensors, &len);
    if (!csv) return lathe_fail(LATHE_ENOMEM, "sensor CSV of %s", stem);
    item_add(it, (uint8_t *)csv, len, "sensors/%s.csv", stem);

    char *txt = malloc(LATHE_SYNTH_TEXT_MAX + 1);
    if (!txt) return lathe_fail(LATHE_ENOMEM, "text of %s", stem);
    lathe_synth_describe(&sc, txt, LATHE_SYNTH_TEXT_MAX);
    len = strlen(txt);
    txt[len++] = '\n';
    item_add(it, (uint8_t *)txt, len, "text/%s.txt", stem);

    if (o->yolo) {
        char *y = malloc(64 * (size_t)(sc.ndefects + 1));
        if (!y) return lathe_fail(LATHE_ENOMEM, "YOLO labels of %s", stem);
        size_t n = 0;
        for (int i = 0; i < sc.ndefects; i++) {
            const synth_defect *d = &sc.defects[i];
            double w = d->x1 - d->x0 + 1, h = d->y1 - d->y0 + 1;
            n += (size_t)sprintf(y + n, "%d %.6f %.6f %.6f %.6f\n", d->category, (d->x0 + w / 2) / o->width,
                                 (d->y0 + h / 2) / o->height, w / o->width, h / o->height);
        }
        item_add(it, (uint8_t *)y, n, "labels/%s.txt", stem);
    }
    if (o->voc) {
        if ((rc = voc_xml(&sc, file, &data, &len))) return rc;
        item_add(it, data, len, "Annotations/%s.xml", stem);
    }
    return 0;
}

/* ---- the parallel loop with an in-order writer ---- */

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    size_t n, next, written, window;
    int writing, err;
    char msg[1024];
    item *slots;
    unsigned char *ready;
} queue;

/* Keeps the first failure (code and this thread's message) for the calling thread. */
static void queue_fail(queue *q, int rc) {
    if (!q->err) {
        q->err = rc < 0 ? -rc : LATHE_EIO;
        snprintf(q->msg, sizeof q->msg, "%s", lathe_last_error());
    }
    pthread_cond_broadcast(&q->cv);
}

static int worker_init(worker *wk, const lathe_synth_opts *o) {
    memset(wk, 0, sizeof *wk);
    int rc = lathe_image_alloc(&wk->img, o->width, o->height, 3);
    if (rc) return rc;
    wk->scratch = malloc(lathe_synth_scratch_bytes(o->width, o->height));
    wk->sensors = malloc(sizeof(float) * (size_t)o->sensor_steps * LATHE_SYNTH_NCHANNELS);
    if (!wk->scratch || !wk->sensors) return lathe_fail(LATHE_ENOMEM, "buffers for %dx%d images", o->width, o->height);
    return 0;
}

static void worker_free(worker *wk) {
    lathe_image_free(&wk->img);
    free(wk->scratch);
    free(wk->sensors);
}

static void run_parallel(const lathe_synth_opts *o, const int32_t *parts, const int32_t *views, sink *s, queue *q,
                         lathe_progress *prog, int nthreads) {
#pragma omp parallel num_threads(nthreads)
    {
        worker wk;
        int rc = worker_init(&wk, o);
        pthread_mutex_lock(&q->mu);
        if (rc) queue_fail(q, rc);
        for (;;) {
            while (!q->err && q->next < q->n && q->next >= q->written + q->window) pthread_cond_wait(&q->cv, &q->mu);
            if (q->err || q->next >= q->n) break;
            size_t i = q->next++;
            pthread_mutex_unlock(&q->mu);
            item *it = &q->slots[i % q->window];
            rc = produce(o, parts[i], views[i], &wk, it);
            pthread_mutex_lock(&q->mu);
            if (rc) {
                queue_fail(q, rc);
                break;
            }
            q->ready[i % q->window] = 1;
            if (q->writing) continue; /* the thread writing now will take it */
            q->writing = 1;
            while (!q->err && q->written < q->n && q->ready[q->written % q->window]) {
                size_t j = q->written;
                item *w = &q->slots[j % q->window];
                pthread_mutex_unlock(&q->mu);
                int wrc = 0;
                for (int k = 0; k < w->n && !wrc; k++) wrc = sink_put(s, w->e[k].path, w->e[k].data, w->e[k].len);
                item_clear(w);
                lathe_progress_update(prog, j + 1);
                pthread_mutex_lock(&q->mu);
                q->ready[j % q->window] = 0;
                if (wrc) {
                    queue_fail(q, wrc);
                    break;
                }
                q->written++;
                pthread_cond_broadcast(&q->cv);
            }
            q->writing = 0;
        }
        pthread_mutex_unlock(&q->mu);
        worker_free(&wk);
    }
}

int lathe_synth_write(const lathe_synth_opts *o, const char *out_path) {
    int rc = lathe_synth_check(o);
    if (rc) return rc;
    if (!out_path || !*out_path) return lathe_fail(LATHE_EINVAL, "no output path");
    double t0 = lathe_now();
    int32_t *parts = malloc(sizeof(int32_t) * (size_t)o->count), *views = malloc(sizeof(int32_t) * (size_t)o->count);
    if (!parts || !views) {
        free(parts);
        free(views);
        return lathe_fail(LATHE_ENOMEM, "sample table of %d", o->count);
    }
    for (int i = 0, p = 1, v = 1, nv = lathe_synth_views(o->seed, 1); i < o->count; i++) {
        parts[i] = p, views[i] = v;
        if (++v > nv) p++, v = 1, nv = lathe_synth_views(o->seed, p);
    }
    xmlInitParser(); /* once, on this thread, before the workers use libxml2 */
    char *json = coco_json(o, parts, views);
    sink s;
    if (!json || (rc = sink_open(&s, out_path, o))) {
        if (json) sink_close(&s, 0);
        free(json);
        free(parts);
        free(views);
        return json ? rc : -LATHE_ENOMEM;
    }
    rc = sink_put(&s, "annotations.json", json, strlen(json));
    free(json);
    if (!rc && o->yolo) rc = sink_put(&s, "data.yaml", data_yaml, sizeof data_yaml - 1);

    int nthreads = o->threads > 0 ? o->threads : omp_get_max_threads();
    if (nthreads > o->count) nthreads = o->count;
    queue q = {.n = (size_t)o->count, .window = 2 * (size_t)nthreads + 2};
    q.slots = calloc(q.window, sizeof *q.slots);
    q.ready = calloc(q.window, 1);
    if (!rc && (!q.slots || !q.ready)) rc = lathe_fail(LATHE_ENOMEM, "reorder window");
    if (!rc) {
        pthread_mutex_init(&q.mu, NULL);
        pthread_cond_init(&q.cv, NULL);
        lathe_progress *prog = lathe_progress_start("synth", (uint64_t)o->count);
        run_parallel(o, parts, views, &s, &q, prog, nthreads);
        lathe_progress_finish(prog, q.written);
        pthread_mutex_destroy(&q.mu);
        pthread_cond_destroy(&q.cv);
        if (q.err) rc = lathe_fail(q.err, "%s", q.msg);
    }
    for (size_t i = 0; q.slots && i < q.window; i++) item_clear(&q.slots[i]);
    free(q.slots);
    free(q.ready);
    free(parts);
    free(views);
    int crc = sink_close(&s, rc == 0);
    if (!rc) rc = crc;
    if (!rc)
        lathe_log(LATHE_LOG_INFO, "synth.done", "wrote %d samples (%dx%d) to %s in %.1f s with %d threads", o->count,
                  o->width, o->height, out_path, lathe_now() - t0, nthreads);
    return rc;
}
