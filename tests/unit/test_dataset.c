/* test_dataset.c - the dataset reader against shards written here with lathe_shard_* and
 * lathe_manifest_save (no ingest): every field round trip in both stores, empty and multiple shards,
 * bad indices, corrupt/short/truncated/missing shards, the shard checker, class counts, and
 * concurrent readers (with a 2-file open limit, so eviction runs under contention). */
#include <math.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>
#include <zstd.h>

#include "libcore/base/error.h"
#include "libcore/io/dataset.h"
#include "libcore/io/image.h"
#include "libcore/io/manifest.h"
#include "libcore/io/shard.h"
#include "testutil.h"

#define NCLASSES 3
static const char *const class_names[NCLASSES] = {"scratch", "dent", "crack"};
static const char *const sensor_names[2] = {"temp", "vibration"};

typedef struct {
    int store, h, w, c, masks, steps, nsensors, text;
    int checksum;     /* zstd frames carry a content checksum */
    int64_t short_at; /* the image chunk of this sample decompresses one byte short (-1: none) */
    int bad_labels;   /* sample 1 gets image label 5 and box labels 7 */
} spec;

/* Everything one sample holds, generated from its global index g. */
typedef struct {
    uint8_t *pixels; /* (H, W, C) */
    uint8_t *mask;   /* (H, W), NULL = none given (zeros stored) */
    lathe_box boxes[4];
    size_t nboxes;
    int32_t label;
    float *sensors;  /* (T, S), NULL = not given (NaN stored) */
    char text[128];
    char source[64];
    lathe_meta meta;
    uint8_t *encoded;
    size_t encoded_len;
} expected;

static void make_expected(const spec *sp, uint64_t g, int split, expected *e) {
    memset(e, 0, sizeof *e);
    size_t npix = (size_t)sp->h * sp->w * sp->c;
    e->pixels = malloc(npix);
    assert_non_null(e->pixels);
    for (size_t k = 0; k < npix; k++) e->pixels[k] = (uint8_t)(g * 31 + k * 7 + k / 13);
    if (sp->masks && g % 3 != 0) {
        e->mask = malloc((size_t)sp->h * sp->w);
        for (size_t k = 0; k < (size_t)sp->h * sp->w; k++) e->mask[k] = (k + g) % 5 == 0 ? 255 : 0;
    }
    e->nboxes = g % 4;
    for (size_t j = 0; j < e->nboxes; j++) {
        float x1 = (float)j * 3 + 0.5f, y1 = (float)j * 2 + 0.25f;
        e->boxes[j] = (lathe_box){x1, y1, x1 + 5 + (float)(g % 3), y1 + 4, (int32_t)((g + j) % NCLASSES),
                                  (uint8_t)(j & 3), j == 2 ? -1 : (int64_t)(g * 10 + j),
                                  j == 1 ? -1.0f : 12.5f * (float)j};
        if (sp->bad_labels && g == 1) e->boxes[j].label = 7;
    }
    e->label = g % 5 == 0 ? -1 : (int32_t)(g % NCLASSES);
    if (sp->bad_labels && g == 1) e->label = 5;
    size_t sv = (size_t)sp->steps * sp->nsensors;
    if (sv && g % 7 != 3) {
        e->sensors = malloc(sv * sizeof(float));
        for (int t = 0; t < sp->steps; t++)
            for (int s = 0; s < sp->nsensors; s++)
                e->sensors[t * sp->nsensors + s] = (g % 2 && t == 1 && s == 0) ? NAN : (float)g + t * 0.5f + s * 0.25f;
    }
    if (g % 4) snprintf(e->text, sizeof e->text, "échantillon %llu — défaut ✓ 检测", (unsigned long long)g);
    snprintf(e->source, sizeof e->source, "images/%05llu.png", (unsigned long long)g);
    e->meta = (lathe_meta){e->source, (int64_t)g, sp->w * 2, sp->h * 2, 0.5f, 0.5f, 1.5f, 0, (int32_t)g, 3,
                           g * 0x9E3779B97F4A7C15ull, ~g, (uint8_t)split, (uint8_t)(1 + g % 8)};
    if (sp->store == LATHE_STORE_ENCODED) {
        lathe_image img = {sp->w, sp->h, sp->c, e->pixels};
        assert_int_equal(lathe_png_encode(&img, &e->encoded, &e->encoded_len), 0);
    }
}

static void free_expected(expected *e) {
    free(e->pixels);
    free(e->mask);
    free(e->sensors);
    free(e->encoded);
}

static uint8_t *compress(const spec *sp, const void *data, size_t n, size_t *len) {
    size_t bound = ZSTD_compressBound(n);
    uint8_t *out = malloc(bound);
    ZSTD_CCtx *cctx = ZSTD_createCCtx();
    assert_non_null(out);
    ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, 1);
    ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, sp->checksum);
    *len = ZSTD_compress2(cctx, out, bound, data, n);
    ZSTD_freeCCtx(cctx);
    assert_false(ZSTD_isError(*len));
    return out;
}

/* Writes a dataset of nshards shards with counts[i] samples and splits[i]; returns its folder. */
static char *write_dataset(const spec *sp, const uint64_t *counts, const int *splits, size_t nshards,
                           const char *tag) {
    char *dir = test_tempdir(tag);
    assert_non_null(dir);
    lathe_shard_schema schema = {sp->store, sp->h, sp->w, sp->c, sp->masks, sp->steps, sp->nsensors,
                                 sensor_names, sp->text, class_names, NCLASSES, 1, "test_dataset", 0};
    lathe_manifest m = {0};
    m.schema = LATHE_SCHEMA_VERSION;
    m.created_by = "test_dataset";
    m.store = sp->store;
    m.height = sp->h, m.width = sp->w, m.channels = sp->c;
    m.has_masks = sp->masks, m.has_text = sp->text;
    m.sensor_steps = sp->steps, m.sensor_channels = sp->nsensors;
    m.sensor_names = (char **)sensor_names;
    m.class_names = (char **)class_names;
    m.nclasses = NCLASSES;
    m.source_format = "test";
    m.complete = 1;
    uint64_t g = 0;
    for (size_t s = 0; s < nshards; s++) {
        char name[64], path[4200];
        snprintf(name, sizeof name, "shard-%05zu.h5", s);
        snprintf(path, sizeof path, "%s/%s", dir, name);
        lathe_shard_writer *w;
        assert_int_equal(lathe_shard_create(path, &schema, counts[s] ? counts[s] : 1, &w), 0);
        for (uint64_t k = 0; k < counts[s]; k++, g++) {
            expected e;
            make_expected(sp, g, splits[s], &e);
            lathe_shard_sample smp = {0};
            size_t npix = (size_t)sp->h * sp->w * sp->c;
            uint8_t *img = NULL, *mask = NULL;
            if (sp->store == LATHE_STORE_PIXELS) {
                img = compress(sp, e.pixels, (int64_t)g == sp->short_at ? npix - 1 : npix, &smp.image_chunk_len);
                smp.image_chunk = img;
            } else {
                smp.encoded = e.encoded, smp.encoded_len = e.encoded_len;
            }
            if (e.mask) {
                mask = compress(sp, e.mask, (size_t)sp->h * sp->w, &smp.mask_chunk_len);
                smp.mask_chunk = mask;
            }
            smp.boxes = e.boxes, smp.nboxes = e.nboxes, smp.label = e.label, smp.sensors = e.sensors;
            smp.text = e.text, smp.meta = e.meta;
            assert_int_equal(lathe_shard_append(w, &smp), 0);
            free(img);
            free(mask);
            free_expected(&e);
        }
        uint64_t bytes, hash;
        assert_int_equal(lathe_shard_commit(w, &bytes, &hash), 0);
        assert_int_equal(lathe_manifest_add_shard(&m, name, splits[s], counts[s], bytes, hash), 0);
    }
    assert_int_equal(lathe_manifest_save(dir, &m), 0);
    for (size_t s = 0; s < m.nshards; s++) free(m.shards[s].file);
    free(m.shards);
    return dir;
}

static int same_float(float a, float b) { return (isnan(a) && isnan(b)) || a == b; }

/* Checks every field of a sample read with `what` against the generator. */
static void check_sample(const spec *sp, const lathe_dataset_sample *s, uint64_t g, int split, unsigned what) {
    expected e;
    make_expected(sp, g, split, &e);
    assert_int_equal(s->index, g);
    assert_int_equal(s->split, split);
    assert_int_equal(s->label, e.label);
    if (what & LATHE_READ_PIXELS) {
        if (sp->store == LATHE_STORE_PIXELS || (what & LATHE_READ_DECODE)) {
            /* an encoded image decodes turned as its ingest recorded in /meta, whatever its bytes say
             * (the generator's PNGs carry no eXIf) */
            lathe_image want;
            assert_int_equal(lathe_image_alloc(&want, sp->w, sp->h, sp->c), 0);
            memcpy(want.pixels, e.pixels, (size_t)sp->h * sp->w * sp->c);
            if (sp->store == LATHE_STORE_ENCODED) assert_int_equal(lathe_image_orient(&want, e.meta.orientation), 0);
            assert_int_equal(s->width, want.width);
            assert_int_equal(s->height, want.height);
            assert_int_equal(s->channels, sp->c);
            assert_non_null(s->pixels);
            assert_memory_equal(s->pixels, want.pixels, (size_t)sp->h * sp->w * sp->c);
            lathe_image_free(&want);
        }
        if (sp->store == LATHE_STORE_ENCODED) {
            assert_int_equal(s->encoded_len, e.encoded_len);
            assert_memory_equal(s->encoded, e.encoded, e.encoded_len);
        }
    } else {
        assert_null(s->pixels);
        assert_null(s->encoded);
    }
    if ((what & LATHE_READ_MASK) && sp->masks) {
        assert_non_null(s->mask);
        for (size_t k = 0; k < (size_t)sp->h * sp->w; k++) assert_int_equal(s->mask[k], e.mask ? e.mask[k] : 0);
    } else {
        assert_null(s->mask);
    }
    if (what & LATHE_READ_BOXES) {
        assert_int_equal(s->nboxes, e.nboxes);
        for (size_t j = 0; j < e.nboxes; j++) {
            const lathe_box *a = &s->boxes[j], *b = &e.boxes[j];
            assert_true(a->x1 == b->x1 && a->y1 == b->y1 && a->x2 == b->x2 && a->y2 == b->y2);
            assert_int_equal(a->label, b->label);
            assert_int_equal(a->flags, b->flags);
            assert_int_equal(a->id, b->id);
            assert_true(a->area == b->area);
        }
    } else {
        assert_int_equal(s->nboxes, 0);
    }
    if ((what & LATHE_READ_SENSORS) && sp->steps) {
        assert_non_null(s->sensors);
        assert_int_equal(s->sensor_steps, sp->steps);
        assert_int_equal(s->sensor_channels, sp->nsensors);
        for (int k = 0; k < sp->steps * sp->nsensors; k++)
            assert_true(same_float(s->sensors[k], e.sensors ? e.sensors[k] : NAN));
    } else {
        assert_null(s->sensors);
    }
    if ((what & LATHE_READ_TEXT) && sp->text) assert_string_equal(s->text, e.text);
    else assert_null(s->text);
    if (what & LATHE_READ_META) {
        const lathe_meta *a = &s->meta, *b = &e.meta;
        assert_true(s->has_meta);
        assert_string_equal(a->source, b->source);
        assert_int_equal(a->image_id, b->image_id);
        assert_int_equal(a->orig_width, b->orig_width);
        assert_int_equal(a->orig_height, b->orig_height);
        assert_true(a->scale_x == b->scale_x && a->scale_y == b->scale_y);
        assert_true(a->pad_x == b->pad_x && a->pad_y == b->pad_y);
        assert_int_equal(a->tile_x, b->tile_x);
        assert_int_equal(a->tile_y, b->tile_y);
        assert_true(a->source_xxh64 == b->source_xxh64);
        assert_true(a->phash == b->phash);
        assert_int_equal(a->split, b->split);
        assert_int_equal(a->orientation, b->orientation);
    } else {
        assert_false(s->has_meta);
    }
    free_expected(&e);
}

static const spec full_pixels = {LATHE_STORE_PIXELS, 24, 32, 3, 1, 4, 2, 1, 0, -1, 0};

static void test_roundtrip_pixels(void **state) {
    (void)state;
    uint64_t counts[1] = {9};
    int splits[1] = {LATHE_SPLIT_VAL};
    char *dir = write_dataset(&full_pixels, counts, splits, 1, "rt-pixels");
    lathe_dataset *ds;
    assert_int_equal(lathe_dataset_open(dir, &ds), 0);
    assert_int_equal(lathe_dataset_count(ds), 9);
    assert_int_equal(lathe_dataset_manifest(ds)->nclasses, NCLASSES);
    static const unsigned whats[] = {LATHE_READ_ALL, 0, LATHE_READ_PIXELS, LATHE_READ_BOXES | LATHE_READ_META,
                                     LATHE_READ_SENSORS | LATHE_READ_TEXT | LATHE_READ_MASK};
    for (size_t w = 0; w < sizeof whats / sizeof whats[0]; w++)
        for (uint64_t i = 0; i < 9; i++) {
            lathe_dataset_sample s;
            int rc = lathe_dataset_get(ds, i, whats[w], &s);
            if (rc) fail_msg("get %llu: %s", (unsigned long long)i, lathe_last_error());
            check_sample(&full_pixels, &s, i, LATHE_SPLIT_VAL, whats[w]);
            lathe_dataset_sample_free(&s);
        }
    /* into the caller's buffer */
    size_t n = 24 * 32 * 3;
    uint8_t *buf = malloc(n);
    expected e;
    make_expected(&full_pixels, 4, LATHE_SPLIT_VAL, &e);
    assert_int_equal(lathe_dataset_read_pixels(ds, 4, buf, n), 0);
    assert_memory_equal(buf, e.pixels, n);
    assert_int_equal(lathe_dataset_read_pixels(ds, 4, buf, n - 1), -LATHE_EINVAL);
    assert_int_equal(lathe_dataset_read_pixels(ds, 9, buf, n), -LATHE_EINVAL);
    free_expected(&e);
    free(buf);
    assert_int_equal(lathe_dataset_check_shard(ds, 0, NULL, NULL), 0);
    lathe_dataset_close(ds);
    test_rmtree(dir);
    free(dir);
}

static void test_roundtrip_encoded(void **state) {
    (void)state;
    spec sp = {LATHE_STORE_ENCODED, 20, 28, 3, 0, 0, 0, 1, 0, -1, 0};
    uint64_t counts[2] = {3, 4};
    int splits[2] = {LATHE_SPLIT_TRAIN, LATHE_SPLIT_TEST};
    char *dir = write_dataset(&sp, counts, splits, 2, "rt-encoded");
    lathe_dataset *ds;
    assert_int_equal(lathe_dataset_open(dir, &ds), 0);
    assert_int_equal(lathe_dataset_count(ds), 7);
    for (uint64_t i = 0; i < 7; i++) {
        int split = i < 3 ? LATHE_SPLIT_TRAIN : LATHE_SPLIT_TEST;
        lathe_dataset_sample s;
        assert_int_equal(lathe_dataset_get(ds, i, LATHE_READ_ALL, &s), 0);
        assert_null(s.pixels);
        check_sample(&sp, &s, i, split, LATHE_READ_ALL);
        lathe_dataset_sample_free(&s);
        assert_int_equal(lathe_dataset_get(ds, i, LATHE_READ_ALL | LATHE_READ_DECODE, &s), 0);
        check_sample(&sp, &s, i, split, LATHE_READ_ALL | LATHE_READ_DECODE);
        lathe_dataset_sample_free(&s);
    }
    uint8_t buf[16];
    assert_int_equal(lathe_dataset_read_pixels(ds, 0, buf, sizeof buf), -LATHE_EINVAL);
    for (size_t s = 0; s < 2; s++) assert_int_equal(lathe_dataset_check_shard(ds, s, NULL, NULL), 0);
    lathe_dataset_close(ds);
    test_rmtree(dir);
    free(dir);
}

static void test_multiple_and_empty_shards(void **state) {
    (void)state;
    spec sp = {LATHE_STORE_PIXELS, 8, 10, 1, 0, 0, 0, 0, 0, -1, 0};
    uint64_t counts[5] = {0, 3, 0, 4, 2};
    int splits[5] = {LATHE_SPLIT_TRAIN, LATHE_SPLIT_TRAIN, LATHE_SPLIT_VAL, LATHE_SPLIT_VAL, LATHE_SPLIT_TEST};
    char *dir = write_dataset(&sp, counts, splits, 5, "multi");
    lathe_dataset *ds;
    assert_int_equal(lathe_dataset_open(dir, &ds), 0);
    assert_int_equal(lathe_dataset_count(ds), 9);
    static const size_t want_shard[9] = {1, 1, 1, 3, 3, 3, 3, 4, 4};
    static const uint64_t want_row[9] = {0, 1, 2, 0, 1, 2, 3, 0, 1};
    for (uint64_t i = 0; i < 9; i++) {
        size_t sh;
        uint64_t row;
        assert_int_equal(lathe_dataset_locate(ds, i, &sh, &row), 0);
        assert_int_equal(sh, want_shard[i]);
        assert_int_equal(row, want_row[i]);
        lathe_dataset_sample s;
        assert_int_equal(lathe_dataset_get(ds, i, LATHE_READ_ALL, &s), 0);
        assert_int_equal(s.shard, want_shard[i]);
        assert_int_equal(s.row, want_row[i]);
        check_sample(&sp, &s, i, splits[want_shard[i]], LATHE_READ_ALL);
        lathe_dataset_sample_free(&s);
    }
    assert_int_equal(lathe_dataset_shard_first(ds, 3), 3);
    assert_int_equal(lathe_dataset_shard_first(ds, 5), 9);
    for (size_t s = 0; s < 5; s++) assert_int_equal(lathe_dataset_check_shard(ds, s, NULL, NULL), 0);

    /* class counts against the generator */
    lathe_dataset_stats st;
    assert_int_equal(lathe_dataset_stats_compute(ds, &st), 0);
    uint64_t boxes[NCLASSES][LATHE_NSPLITS] = {{0}}, images[NCLASSES][LATHE_NSPLITS] = {{0}};
    uint64_t unlabeled[LATHE_NSPLITS] = {0}, total[LATHE_NSPLITS] = {0};
    for (uint64_t g = 0; g < 9; g++) {
        expected e;
        int split = splits[want_shard[g]];
        make_expected(&sp, g, split, &e);
        for (size_t j = 0; j < e.nboxes; j++) boxes[e.boxes[j].label][split]++;
        total[split] += e.nboxes;
        if (e.label < 0) unlabeled[split]++;
        else images[e.label][split]++;
        free_expected(&e);
    }
    assert_int_equal(st.nclasses, NCLASSES);
    assert_memory_equal(st.boxes, boxes, sizeof boxes);
    assert_memory_equal(st.images, images, sizeof images);
    assert_memory_equal(st.unlabeled, unlabeled, sizeof unlabeled);
    assert_memory_equal(st.total_boxes, total, sizeof total);
    assert_int_equal(st.bad_labels, 0);
    assert_int_equal(st.split_mismatches, 0);
    lathe_dataset_stats_free(&st);

    lathe_dataset_sample s;
    assert_int_equal(lathe_dataset_get(ds, 9, LATHE_READ_ALL, &s), -LATHE_EINVAL);
    assert_null(s.pixels);
    assert_int_equal(lathe_dataset_get(ds, UINT64_MAX, 0, &s), -LATHE_EINVAL);
    assert_non_null(strstr(lathe_last_error(), "out of range"));
    lathe_dataset_close(ds);
    test_rmtree(dir);
    free(dir);
}

static void test_empty_dataset(void **state) {
    (void)state;
    spec sp = {LATHE_STORE_PIXELS, 8, 8, 3, 1, 2, 2, 1, 0, -1, 0};
    uint64_t counts[1] = {0};
    int splits[1] = {LATHE_SPLIT_TRAIN};
    char *dir = write_dataset(&sp, counts, splits, 1, "empty");
    lathe_dataset *ds;
    assert_int_equal(lathe_dataset_open(dir, &ds), 0);
    assert_int_equal(lathe_dataset_count(ds), 0);
    lathe_dataset_sample s;
    assert_int_equal(lathe_dataset_get(ds, 0, LATHE_READ_ALL, &s), -LATHE_EINVAL);
    assert_int_equal(lathe_dataset_check_shard(ds, 0, NULL, NULL), 0);
    lathe_dataset_close(ds);
    test_rmtree(dir);
    free(dir);
}

/* Copies a dataset folder to a new temporary one. */
static char *copy_dataset(const char *dir, const char *tag) {
    char *copy = test_tempdir(tag), cmd[9000];
    assert_non_null(copy);
    snprintf(cmd, sizeof cmd, "cp -r '%s'/. '%s'/", dir, copy);
    assert_int_equal(system(cmd), 0);
    return copy;
}

/* Finds the compressed chunk of sample g's image in the shard file and applies edit at offset. */
static void corrupt_chunk(const spec *sp, const char *shard_path, uint64_t g, size_t at, uint8_t xor_mask) {
    expected e;
    make_expected(sp, g, LATHE_SPLIT_TRAIN, &e);
    size_t clen, flen = 0;
    uint8_t *frame = compress(sp, e.pixels, (size_t)sp->h * sp->w * sp->c, &clen);
    uint8_t *file = test_read_file(shard_path, &flen);
    assert_non_null(file);
    uint8_t *hit = memmem(file, flen, frame, clen);
    assert_non_null(hit);
    assert_true(at < clen);
    hit[at] ^= xor_mask;
    assert_int_equal(test_write_file(shard_path, file, flen), 0);
    free(file);
    free(frame);
    free_expected(&e);
}

static void test_corrupt_chunks(void **state) {
    (void)state;
    spec sp = full_pixels;
    sp.checksum = 1;
    sp.short_at = 5;
    uint64_t counts[1] = {8};
    int splits[1] = {LATHE_SPLIT_TRAIN};
    char *dir = write_dataset(&sp, counts, splits, 1, "corrupt");
    char shard_path[4200];
    snprintf(shard_path, sizeof shard_path, "%s/shard-00000.h5", dir);
    corrupt_chunk(&sp, shard_path, 2, 0, 0xff);  /* frame magic */
    corrupt_chunk(&sp, shard_path, 3, 40, 0x5a); /* inside the compressed block: the checksum catches it */
    lathe_dataset_options opts = {0, 1};         /* the file's size is unchanged anyway */
    lathe_dataset *ds;
    assert_int_equal(lathe_dataset_open_ex(dir, &opts, &ds), 0);
    lathe_dataset_sample s;
    assert_int_equal(lathe_dataset_get(ds, 2, LATHE_READ_ALL, &s), -LATHE_EFORMAT);
    assert_null(s.pixels);
    assert_non_null(strstr(lathe_last_error(), "shard-00000.h5"));
    assert_int_equal(lathe_dataset_get(ds, 3, LATHE_READ_PIXELS, &s), -LATHE_EFORMAT);
    assert_int_equal(lathe_dataset_get(ds, 5, LATHE_READ_PIXELS, &s), -LATHE_EFORMAT);
    assert_non_null(strstr(lathe_last_error(), "decompresses to"));
    uint8_t *buf = malloc((size_t)sp.h * sp.w * sp.c);
    assert_int_equal(lathe_dataset_read_pixels(ds, 5, buf, (size_t)sp.h * sp.w * sp.c), -LATHE_EFORMAT);
    free(buf);
    /* what does not touch the bad chunks still reads */
    assert_int_equal(lathe_dataset_get(ds, 2, LATHE_READ_BOXES | LATHE_READ_META | LATHE_READ_MASK, &s), 0);
    check_sample(&sp, &s, 2, LATHE_SPLIT_TRAIN, LATHE_READ_BOXES | LATHE_READ_META | LATHE_READ_MASK);
    lathe_dataset_sample_free(&s);
    for (uint64_t i = 0; i < 8; i++) {
        if (i == 2 || i == 3 || i == 5) continue;
        assert_int_equal(lathe_dataset_get(ds, i, LATHE_READ_ALL, &s), 0);
        check_sample(&sp, &s, i, LATHE_SPLIT_TRAIN, LATHE_READ_ALL);
        lathe_dataset_sample_free(&s);
    }
    lathe_dataset_close(ds);
    test_rmtree(dir);
    free(dir);
}

static void test_truncated_and_missing(void **state) {
    (void)state;
    spec sp = {LATHE_STORE_PIXELS, 16, 16, 3, 0, 0, 0, 0, 0, -1, 0};
    uint64_t counts[2] = {4, 3};
    int splits[2] = {LATHE_SPLIT_TRAIN, LATHE_SPLIT_VAL};
    char *dir = write_dataset(&sp, counts, splits, 2, "trunc");
    char path[4200];

    /* truncated: refused at open; with the file check skipped, a clean error at read */
    char *cut = copy_dataset(dir, "trunc-cut");
    snprintf(path, sizeof path, "%s/shard-00001.h5", cut);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(truncate(path, st.st_size / 2), 0);
    lathe_dataset *ds;
    assert_int_equal(lathe_dataset_open(cut, &ds), -LATHE_EFORMAT);
    assert_null(ds);
    assert_non_null(strstr(lathe_last_error(), "shard-00001.h5"));
    lathe_dataset_options opts = {0, 1};
    assert_int_equal(lathe_dataset_open_ex(cut, &opts, &ds), 0);
    lathe_dataset_sample s;
    assert_int_equal(lathe_dataset_get(ds, 0, LATHE_READ_ALL, &s), 0);
    lathe_dataset_sample_free(&s);
    for (uint64_t i = 4; i < 7; i++) {
        int rc = lathe_dataset_get(ds, i, LATHE_READ_ALL, &s);
        assert_true(rc == -LATHE_EFORMAT || rc == -LATHE_EIO);
    }
    assert_true(lathe_dataset_check_shard(ds, 1, NULL, NULL) > 0);
    assert_int_equal(lathe_dataset_check_shard(ds, 0, NULL, NULL), 0);
    lathe_dataset_close(ds);

    /* a shard the manifest names is gone */
    char *gone = copy_dataset(dir, "trunc-gone");
    snprintf(path, sizeof path, "%s/shard-00000.h5", gone);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(lathe_dataset_open(gone, &ds), -LATHE_ENOTFOUND);
    assert_non_null(strstr(lathe_last_error(), "shard-00000.h5"));
    assert_int_equal(lathe_dataset_open_ex(gone, &opts, &ds), 0);
    assert_int_equal(lathe_dataset_get(ds, 1, LATHE_READ_ALL, &s), -LATHE_ENOTFOUND);
    assert_int_equal(lathe_dataset_get(ds, 5, LATHE_READ_ALL, &s), 0);
    check_sample(&sp, &s, 5, LATHE_SPLIT_VAL, LATHE_READ_ALL);
    lathe_dataset_sample_free(&s);
    assert_int_equal(lathe_dataset_check_shard(ds, 0, NULL, NULL), 1);
    lathe_dataset_close(ds);

    /* no manifest at all */
    snprintf(path, sizeof path, "%s/manifest.json", gone);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(lathe_dataset_open(gone, &ds), -LATHE_ENOTFOUND);

    test_rmtree(cut);
    test_rmtree(gone);
    test_rmtree(dir);
    free(cut);
    free(gone);
    free(dir);
}

typedef struct {
    int count;
    char messages[16][256];
} problems;

static void collect(void *ctx, size_t shard, int64_t row, const char *message) {
    problems *p = ctx;
    (void)shard;
    if (p->count < 16) snprintf(p->messages[p->count], sizeof p->messages[0], "%lld: %s", (long long)row, message);
    p->count++;
}

static int has_problem(const problems *p, const char *needle) {
    for (int i = 0; i < p->count && i < 16; i++)
        if (strstr(p->messages[i], needle)) return 1;
    return 0;
}

static void test_check_shard_finds_problems(void **state) {
    (void)state;
    spec sp = {LATHE_STORE_PIXELS, 16, 16, 3, 0, 0, 0, 0, 0, -1, 1};
    uint64_t counts[1] = {4};
    int splits[1] = {LATHE_SPLIT_TRAIN};
    char *dir = write_dataset(&sp, counts, splits, 1, "check");
    lathe_dataset *ds;
    assert_int_equal(lathe_dataset_open(dir, &ds), 0);
    problems p = {0};
    int n = lathe_dataset_check_shard(ds, 0, collect, &p);
    assert_int_equal(n, p.count);
    assert_int_equal(n, 2); /* sample 1: image label 5, one box with label 7 */
    assert_true(has_problem(&p, "1: image label 5 outside [-1, 3)"));
    assert_true(has_problem(&p, "1: box 0 label 7 outside [0, 3)"));
    lathe_dataset_stats st;
    assert_int_equal(lathe_dataset_stats_compute(ds, &st), 0);
    assert_int_equal(st.bad_labels, 2);
    lathe_dataset_stats_free(&st);
    lathe_dataset_close(ds);

    /* a manifest that disagrees with the shard: another image size */
    lathe_manifest m;
    assert_int_equal(lathe_manifest_load(dir, &m), 0);
    m.width = 20;
    assert_int_equal(lathe_manifest_save(dir, &m), 0);
    lathe_manifest_free(&m);
    assert_int_equal(lathe_dataset_open(dir, &ds), 0);
    memset(&p, 0, sizeof p);
    assert_true(lathe_dataset_check_shard(ds, 0, collect, &p) >= 2);
    assert_true(has_problem(&p, "image_size is 16x16, the manifest says 16x20"));
    assert_true(has_problem(&p, "/images has shape [4, 16, 16, 3], expected [4, 16, 20, 3]"));
    lathe_dataset_sample s;
    assert_int_equal(lathe_dataset_get(ds, 0, LATHE_READ_PIXELS, &s), -LATHE_EFORMAT);
    assert_non_null(strstr(lathe_last_error(), "image_size"));
    lathe_dataset_close(ds);
    test_rmtree(dir);
    free(dir);
}

/* ---- concurrency ---- */

typedef struct {
    lathe_dataset *ds;
    uint64_t n;
    const uint64_t *serial; /* hash of each sample read serially */
    int seed;
    int errors, mismatches;
} reader_job;

static uint64_t sample_hash(const lathe_dataset_sample *s, size_t npix, size_t nmask) {
    XXH64_state_t *st = XXH64_createState();
    XXH64_reset(st, 0);
    XXH64_update(st, s->pixels, npix);
    if (s->mask) XXH64_update(st, s->mask, nmask);
    for (size_t j = 0; j < s->nboxes; j++) { /* field by field: lathe_box has padding */
        const lathe_box *b = &s->boxes[j];
        float f[5] = {b->x1, b->y1, b->x2, b->y2, b->area};
        XXH64_update(st, f, sizeof f);
        XXH64_update(st, &b->label, sizeof b->label);
        XXH64_update(st, &b->flags, sizeof b->flags);
        XXH64_update(st, &b->id, sizeof b->id);
    }
    XXH64_update(st, &s->label, sizeof s->label);
    XXH64_update(st, s->sensors, 4 * 2 * sizeof(float));
    XXH64_update(st, s->text, strlen(s->text));
    XXH64_update(st, s->meta.source, strlen(s->meta.source));
    uint64_t h = XXH64_digest(st);
    XXH64_freeState(st);
    return h;
}

static void *reader_main(void *arg) {
    reader_job *job = arg;
    for (int pass = 0; pass < 3; pass++)
        for (uint64_t k = 0; k < job->n; k++) {
            uint64_t i = (k * 7 + (uint64_t)job->seed * 13 + (uint64_t)pass) % job->n;
            lathe_dataset_sample s;
            if (lathe_dataset_get(job->ds, i, LATHE_READ_ALL, &s)) {
                if (!job->errors) fprintf(stderr, "reader %d: %s\n", job->seed, lathe_last_error());
                job->errors++;
                continue;
            }
            if (sample_hash(&s, 24 * 32 * 3, 24 * 32) != job->serial[i]) job->mismatches++;
            lathe_dataset_sample_free(&s);
        }
    return NULL;
}

static void test_concurrent_reads(void **state) {
    (void)state;
    uint64_t counts[4] = {10, 7, 0, 11};
    int splits[4] = {LATHE_SPLIT_TRAIN, LATHE_SPLIT_TRAIN, LATHE_SPLIT_VAL, LATHE_SPLIT_VAL};
    char *dir = write_dataset(&full_pixels, counts, splits, 4, "threads");
    lathe_dataset_options opts = {2, 0}; /* fewer open files than shards: eviction under load */
    lathe_dataset *ds;
    assert_int_equal(lathe_dataset_open_ex(dir, &opts, &ds), 0);
    uint64_t n = lathe_dataset_count(ds);
    assert_int_equal(n, 28);
    uint64_t *serial = calloc(n, sizeof *serial);
    lathe_dataset *serial_ds;
    assert_int_equal(lathe_dataset_open(dir, &serial_ds), 0);
    for (uint64_t i = 0; i < n; i++) {
        lathe_dataset_sample s;
        assert_int_equal(lathe_dataset_get(serial_ds, i, LATHE_READ_ALL, &s), 0);
        check_sample(&full_pixels, &s, i, i < 17 ? LATHE_SPLIT_TRAIN : LATHE_SPLIT_VAL, LATHE_READ_ALL);
        serial[i] = sample_hash(&s, 24 * 32 * 3, 24 * 32);
        lathe_dataset_sample_free(&s);
    }
    lathe_dataset_close(serial_ds);
    pthread_t threads[4];
    reader_job jobs[4];
    for (int t = 0; t < 4; t++) {
        jobs[t] = (reader_job){ds, n, serial, t, 0, 0};
        assert_int_equal(pthread_create(&threads[t], NULL, reader_main, &jobs[t]), 0);
    }
    for (int t = 0; t < 4; t++) {
        pthread_join(threads[t], NULL);
        assert_int_equal(jobs[t].errors, 0);
        assert_int_equal(jobs[t].mismatches, 0);
    }
    lathe_dataset_close(ds);
    free(serial);
    test_rmtree(dir);
    free(dir);
}

/* image_size must hold two whole numbers 0..2^30: anything else is a format error, not a cast (the
 * fuzzer's manifest target found 7.8e11 cast to int, undefined behaviour). */
static void test_manifest_image_size_is_checked(void **state) {
    (void)state;
    static const char *const sizes[] = {"[16, 16]", "[0, 777777777770]", "[16, -1]", "[16, 1.5]", "[16, \"16\"]"};
    char *dir = test_tempdir("imgsize"), path[4200];
    assert_non_null(dir);
    snprintf(path, sizeof path, "%s/manifest.json", dir);
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        char text[1024];
        snprintf(text, sizeof text,
                 "{\"lathe_schema\": 1, \"store\": \"pixels\", \"image_size\": %s, \"channels\": 3, "
                 "\"class_names\": [\"a\"], \"sensors\": {\"steps\": 0, \"channels\": []}, \"shards\": []}",
                 sizes[i]);
        assert_int_equal(test_write_file(path, text, strlen(text)), 0);
        lathe_manifest m;
        int rc = lathe_manifest_load(dir, &m);
        assert_int_equal(rc, i == 0 ? 0 : -LATHE_EFORMAT);
        if (!rc) {
            assert_true(m.height == 16 && m.width == 16);
            lathe_manifest_free(&m);
        }
    }
    test_rmtree(dir);
    free(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_pixels),
        cmocka_unit_test(test_roundtrip_encoded),
        cmocka_unit_test(test_multiple_and_empty_shards),
        cmocka_unit_test(test_empty_dataset),
        cmocka_unit_test(test_corrupt_chunks),
        cmocka_unit_test(test_truncated_and_missing),
        cmocka_unit_test(test_check_shard_finds_problems),
        cmocka_unit_test(test_concurrent_reads),
        cmocka_unit_test(test_manifest_image_size_is_checked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
