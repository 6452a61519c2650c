/* test_det_loader.c - the detection loader against small pixels-store datasets written here with
 * lathe_shard_* and lathe_manifest_save: unaugmented items are the stored pixels and boxes through
 * the letterbox (crowd and ignored boxes dropped, split order kept), augmentation is a pure function
 * of (seed, epoch, position) whatever the thread count, augmented boxes stay valid, a certain flip
 * mirrors image and boxes, vertical flips and quarter turns turn them, mosaic switches off from
 * mosaic_epochs on, and bad options are refused. */
#include <math.h>
#include <omp.h>

#include "libcore/base/error.h"
#include "libcore/data/det_loader.h"
#include "libcore/io/dataset.h"
#include "testdata.h"
#include "testutil.h"

/* ---- the datasets ---- */

static const char *const class_names[] = {"a", "b"};

/* The main dataset: train samples 0..4 and 8..9, val samples 5..7 (global indices). */
static const test_shard main_shards[] = {{LATHE_SPLIT_TRAIN, 5}, {LATHE_SPLIT_VAL, 3}, {LATHE_SPLIT_TRAIN, 2}};
static const uint64_t train_samples[] = {0, 1, 2, 3, 4, 8, 9}, val_samples[] = {5, 6, 7};
enum { NTRAIN = 7, NVAL = 3, MAXBOX = 3 };

/* Stored pixel (x, y, c) of sample g: not symmetric in x, so a flip shows. */
static uint8_t stored_pixel(uint64_t g, int x, int y, int c) {
    return (uint8_t)((g * 53 + (uint64_t)x * 7 + (uint64_t)y * 13 + (uint64_t)c * 85) & 255);
}

static lathe_box make_box(float x1, float y1, float x2, float y2, int32_t label, uint8_t flags) {
    return (lathe_box){x1, y1, x2, y2, label, flags, -1, -1.0f};
}

/* Boxes of sample g in stored pixels (all inside 64 x 48): none when g % 3 == 2 (negatives), else
 * three, the middle one a crowd (g = 1), ignored (g = 3) or both (g = 4). Coordinates are multiples
 * of 0.25, so halving them is exact. */
static size_t stored_boxes(uint64_t g, lathe_box *out) {
    if (g % 3 == 2) return 0;
    float f = (float)g;
    uint8_t flags = g == 1 ? LATHE_BOX_CROWD : g == 3 ? LATHE_BOX_IGNORE : g == 4 ? LATHE_BOX_CROWD | LATHE_BOX_IGNORE : 0;
    out[0] = make_box(4 + f, 6, 30 + f, 40, (int32_t)(g % 2), 0);
    out[1] = make_box(20, 10 + 0.5f * f, 50.5f, 44, (int32_t)((g + 1) % 2), flags);
    out[2] = make_box(40.5f, 2.25f, 60, 20.75f, 1, 0);
    return 3;
}

/* The boxes that must become targets: stored_boxes without crowd and ignored ones, in order. */
static size_t target_boxes(uint64_t g, lathe_box *out) {
    lathe_box all[MAXBOX];
    size_t n = stored_boxes(g, all), k = 0;
    for (size_t i = 0; i < n; i++)
        if (!(all[i].flags & (LATHE_BOX_CROWD | LATHE_BOX_IGNORE))) out[k++] = all[i];
    return k;
}

/* Sample g of the datasets: stored_pixel and stored_boxes. */
static size_t fill_sample(void *ctx, uint64_t g, int split, uint8_t *px, lathe_box *boxes, lathe_meta *meta,
                          int32_t *label) {
    const int *size = ctx;
    (void)split, (void)meta, (void)label;
    for (int y = 0; y < size[1]; y++)
        for (int x = 0; x < size[0]; x++)
            for (int c = 0; c < 3; c++) px[((size_t)y * size[0] + x) * 3 + c] = stored_pixel(g, x, y, c);
    return stored_boxes(g, boxes);
}

/* Writes a w x h pixels-store dataset with the given shards; returns its folder. */
static char *write_det_dataset(const char *tag, int w, int h, const test_shard *shards, int nshards) {
    int size[2] = {w, h};
    return test_write_pixels_dataset(tag, w, h, class_names, 2, shards, nshards, fill_sample, size);
}

/* ---- helpers ---- */

typedef struct {
    char *dir;
    lathe_dataset *ds;
    int w, h; /* stored size */
} fixture;

static fixture open_fixture(const char *tag, int w, int h, const test_shard *shards, int nshards) {
    fixture f = {write_det_dataset(tag, w, h, shards, nshards), NULL, w, h};
    assert_int_equal(lathe_dataset_open(f.dir, &f.ds), 0);
    return f;
}

static fixture open_main(void) { return open_fixture("det-loader", 64, 64, main_shards, 3); }

static void close_fixture(fixture *f) {
    lathe_dataset_close(f->ds);
    test_rmtree(f->dir);
    free(f->dir);
}

/* Options with every augmentation off, for an h x w input. */
static lathe_det_loader_opts plain_opts(int split, int h, int w) {
    lathe_det_loader_opts o;
    lathe_det_loader_defaults(&o);
    o.split = split, o.h = h, o.w = w;
    return o;
}

/* augment = 1 with no random change at all: mosaic, scale, translate, flip and HSV off. */
static lathe_det_loader_opts identity_augment_opts(int h, int w) {
    lathe_det_loader_opts o = plain_opts(LATHE_SPLIT_TRAIN, h, w);
    o.augment = 1, o.mosaic = 0, o.scale = 0, o.translate = 0, o.flip = 0;
    o.hsv_h = o.hsv_s = o.hsv_v = 0;
    return o;
}

static lathe_det_loader *make_loader(fixture *f, const lathe_det_loader_opts *o) {
    lathe_det_loader *l;
    assert_int_equal(lathe_det_loader_create(f->ds, o, &l), 0);
    assert_non_null(l);
    return l;
}

/* Fills b (already sized) with positions [first, first + n) of epoch; checks the count. */
static void load(lathe_det_loader *l, int epoch, uint64_t first, int n, lathe_det_batch *b, int want) {
    assert_int_equal(lathe_det_loader_batch(l, epoch, first, n, b), want);
    assert_int_equal(b->n, want);
}

static const float *item_x(const lathe_det_batch *b, int i, int h, int w) { return b->x + (size_t)i * 3 * h * w; }

static int item_boxes(const lathe_det_batch *b, int i) { return b->offsets[i + 1] - b->offsets[i]; }

static void assert_same_batch(const lathe_det_batch *a, const lathe_det_batch *b, int h, int w) {
    assert_int_equal(a->n, b->n);
    assert_int_equal(a->nboxes, b->nboxes);
    assert_memory_equal(a->samples, b->samples, (size_t)a->n * sizeof *a->samples);
    assert_memory_equal(a->offsets, b->offsets, ((size_t)a->n + 1) * sizeof *a->offsets);
    assert_memory_equal(a->x, b->x, (size_t)a->n * 3 * h * w * sizeof *a->x);
    if (a->nboxes) {
        assert_memory_equal(a->boxes, b->boxes, a->nboxes * 4 * sizeof *a->boxes);
        assert_memory_equal(a->labels, b->labels, a->nboxes * sizeof *a->labels);
    }
}

/* Item i's boxes are the targets of its sample mapped by input = stored * scale + pad. */
static void assert_letterboxed_boxes(const lathe_det_batch *b, int i, float scale, float pad_x, float pad_y) {
    lathe_box want[MAXBOX];
    size_t n = target_boxes(b->samples[i], want);
    assert_int_equal(item_boxes(b, i), (int)n);
    for (size_t j = 0; j < n; j++) {
        const float *got = b->boxes + 4 * ((size_t)b->offsets[i] + j);
        assert_float_equal(got[0], want[j].x1 * scale + pad_x, 1e-5);
        assert_float_equal(got[1], want[j].y1 * scale + pad_y, 1e-5);
        assert_float_equal(got[2], want[j].x2 * scale + pad_x, 1e-5);
        assert_float_equal(got[3], want[j].y2 * scale + pad_y, 1e-5);
        assert_int_equal(b->labels[b->offsets[i] + (int)j], want[j].label);
    }
}

/* ---- the tests ---- */

/* No augmentation, input = stored size: x is the stored pixels / 255 (then (x - mean) / std), the
 * boxes are the stored ones less crowd and ignored ones, items follow the split in dataset order,
 * and a batch past the end is clipped. */
static void plain_items_are_the_stored_samples(void **state) {
    (void)state;
    fixture f = open_main();
    lathe_det_loader_opts o = plain_opts(LATHE_SPLIT_TRAIN, 64, 64);
    lathe_det_loader *l = make_loader(&f, &o);
    assert_int_equal(lathe_det_loader_size(l), NTRAIN);
    float scale, px, py;
    lathe_det_loader_letterbox(l, &scale, &px, &py);
    assert_true(scale == 1 && px == 0 && py == 0);
    lathe_det_batch b;
    assert_int_equal(lathe_det_batch_init(&b, 8, 64, 64), 0);
    load(l, 0, 0, 8, &b, NTRAIN); /* asked for 8, the split has 7 */
    assert_memory_equal(b.samples, train_samples, sizeof train_samples);
    assert_int_equal(b.offsets[0], 0);
    int boxes = 0;
    for (int i = 0; i < NTRAIN; i++) {
        const float *x = item_x(&b, i, 64, 64);
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < 64; y++)
                for (int xx = 0; xx < 64; xx++)
                    assert_float_equal(x[((size_t)c * 64 + y) * 64 + xx], stored_pixel(b.samples[i], xx, y, c) / 255.0f, 1e-6);
        assert_letterboxed_boxes(&b, i, 1, 0, 0);
        boxes += item_boxes(&b, i);
    }
    assert_int_equal((int)b.nboxes, boxes);
    assert_int_equal(b.offsets[NTRAIN], boxes);
    /* the same items again from position 5, clipped at the end; nothing past the end */
    load(l, 0, 5, 4, &b, 2);
    assert_true(b.samples[0] == 8 && b.samples[1] == 9);
    assert_letterboxed_boxes(&b, 0, 1, 0, 0);
    assert_letterboxed_boxes(&b, 1, 1, 0, 0);
    assert_int_equal(lathe_det_loader_batch(l, 0, NTRAIN, 4, &b), 0);
    lathe_det_loader_free(l);

    /* the val split only, and normalization by mean and std */
    o = plain_opts(LATHE_SPLIT_VAL, 64, 64);
    o.mean = 0.5f, o.std = 0.25f;
    l = make_loader(&f, &o);
    assert_int_equal(lathe_det_loader_size(l), NVAL);
    load(l, 3, 0, 8, &b, NVAL);
    assert_memory_equal(b.samples, val_samples, sizeof val_samples);
    for (int i = 0; i < NVAL; i++) {
        const float *x = item_x(&b, i, 64, 64);
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < 64; y++)
                for (int xx = 0; xx < 64; xx++) {
                    float want = (stored_pixel(b.samples[i], xx, y, c) / 255.0f - 0.5f) / 0.25f;
                    assert_float_equal(x[((size_t)c * 64 + y) * 64 + xx], want, 1e-5);
                }
        assert_letterboxed_boxes(&b, i, 1, 0, 0);
    }
    lathe_det_loader_free(l);
    lathe_det_batch_free(&b);
    close_fixture(&f);
}

/* No augmentation, 64 x 64 stored to a 32 x 32 input: scale 0.5 and no pad, boxes exactly halved,
 * each pixel the mean of its 2 x 2 stored block (bilinear at the block centre). */
static void plain_items_downscaled(void **state) {
    (void)state;
    fixture f = open_main();
    lathe_det_loader_opts o = plain_opts(LATHE_SPLIT_TRAIN, 32, 32);
    lathe_det_loader *l = make_loader(&f, &o);
    float scale, px, py;
    lathe_det_loader_letterbox(l, &scale, &px, &py);
    assert_true(scale == 0.5f && px == 0 && py == 0);
    lathe_det_batch b;
    assert_int_equal(lathe_det_batch_init(&b, NTRAIN, 32, 32), 0);
    load(l, 0, 0, NTRAIN, &b, NTRAIN);
    for (int i = 0; i < NTRAIN; i++) {
        uint64_t g = b.samples[i];
        const float *x = item_x(&b, i, 32, 32);
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < 32; y++)
                for (int xx = 0; xx < 32; xx++) {
                    float mean = (stored_pixel(g, 2 * xx, 2 * y, c) + stored_pixel(g, 2 * xx + 1, 2 * y, c) +
                                  stored_pixel(g, 2 * xx, 2 * y + 1, c) + stored_pixel(g, 2 * xx + 1, 2 * y + 1, c)) /
                                 4.0f;
                    assert_float_equal(x[((size_t)c * 32 + y) * 32 + xx], mean / 255.0f, 1e-5);
                }
        lathe_box want[MAXBOX];
        size_t n = target_boxes(g, want);
        assert_int_equal(item_boxes(&b, i), (int)n);
        for (size_t j = 0; j < n; j++) { /* exact: halving a multiple of 0.25 */
            const float *got = b.boxes + 4 * ((size_t)b.offsets[i] + j);
            assert_true(got[0] == want[j].x1 * 0.5f && got[1] == want[j].y1 * 0.5f);
            assert_true(got[2] == want[j].x2 * 0.5f && got[3] == want[j].y2 * 0.5f);
        }
    }
    lathe_det_loader_free(l);
    lathe_det_batch_free(&b);
    close_fixture(&f);
}

/* Non-square stored images (64 x 48): into 32 x 32 the letterbox is scale 0.5 with 4 rows of pad
 * above and below; into 64 x 64 it is scale 1 with 8 rows, the image exact and the pad grey 114. */
static void plain_items_non_square(void **state) {
    (void)state;
    static const test_shard shards[] = {{LATHE_SPLIT_TRAIN, 2}};
    fixture f = open_fixture("det-loader-wide", 64, 48, shards, 1);
    lathe_det_loader_opts o = plain_opts(LATHE_SPLIT_TRAIN, 32, 32);
    lathe_det_loader *l = make_loader(&f, &o);
    float scale, px, py;
    lathe_det_loader_letterbox(l, &scale, &px, &py);
    assert_true(scale == 0.5f && px == 0 && py == 4);
    lathe_det_batch b;
    assert_int_equal(lathe_det_batch_init(&b, 2, 64, 64), 0);
    load(l, 0, 0, 2, &b, 2);
    for (int i = 0; i < 2; i++) assert_letterboxed_boxes(&b, i, 0.5f, 0, 4);
    lathe_det_loader_free(l);

    o = plain_opts(LATHE_SPLIT_TRAIN, 64, 64);
    l = make_loader(&f, &o);
    lathe_det_loader_letterbox(l, &scale, &px, &py);
    assert_true(scale == 1 && px == 0 && py == 8);
    load(l, 0, 0, 2, &b, 2);
    for (int i = 0; i < 2; i++) {
        const float *x = item_x(&b, i, 64, 64);
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < 64; y++)
                for (int xx = 0; xx < 64; xx++) {
                    float want = y < 8 || y >= 56 ? 114 / 255.0f : stored_pixel(b.samples[i], xx, y - 8, c) / 255.0f;
                    assert_float_equal(x[((size_t)c * 64 + y) * 64 + xx], want, 1e-6);
                }
        assert_letterboxed_boxes(&b, i, 1, 0, 8);
    }
    lathe_det_loader_free(l);
    lathe_det_batch_free(&b);
    close_fixture(&f);
}

/* Full augmentation (the defaults: mosaic 1, scale 0.5, translate 0.1, flip 0.5, HSV) is a function
 * of (seed, epoch, position): the same batch twice, on 1 or 2 threads, and from a fresh loader (a
 * resume) at an offset is identical to the byte; another epoch differs. */
static void augmentation_is_deterministic(void **state) {
    (void)state;
    fixture f = open_main();
    lathe_det_loader_opts o = plain_opts(LATHE_SPLIT_TRAIN, 64, 64);
    o.augment = 1, o.seed = 7;
    lathe_det_loader *l = make_loader(&f, &o);
    lathe_det_batch a, b;
    assert_int_equal(lathe_det_batch_init(&a, NTRAIN, 64, 64), 0);
    assert_int_equal(lathe_det_batch_init(&b, NTRAIN, 64, 64), 0);
    int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    load(l, 2, 0, NTRAIN, &a, NTRAIN);
    load(l, 2, 0, NTRAIN, &b, NTRAIN);
    assert_same_batch(&a, &b, 64, 64);
    omp_set_num_threads(2);
    load(l, 2, 0, NTRAIN, &b, NTRAIN);
    assert_same_batch(&a, &b, 64, 64);
    load(l, 5, 0, NTRAIN, &b, NTRAIN); /* another epoch in between: the order is rebuilt */
    load(l, 2, 0, NTRAIN, &b, NTRAIN);
    assert_same_batch(&a, &b, 64, 64);
    omp_set_num_threads(threads);
    /* the epoch order is a permutation of the split */
    int seen[10] = {0};
    for (int i = 0; i < NTRAIN; i++) {
        assert_true(a.samples[i] < 10);
        seen[a.samples[i]]++;
    }
    for (int i = 0; i < NTRAIN; i++) assert_int_equal(seen[train_samples[i]], 1);

    /* a fresh loader at positions 3..4 gives items 3..4 of the batch above */
    lathe_det_loader *fresh = make_loader(&f, &o);
    load(fresh, 2, 3, 2, &b, 2);
    size_t per = (size_t)3 * 64 * 64;
    assert_memory_equal(b.samples, a.samples + 3, 2 * sizeof *b.samples);
    assert_memory_equal(b.x, a.x + 3 * per, 2 * per * sizeof *b.x);
    assert_int_equal(b.nboxes, (size_t)(a.offsets[5] - a.offsets[3]));
    if (b.nboxes) assert_memory_equal(b.boxes, a.boxes + 4 * a.offsets[3], b.nboxes * 4 * sizeof *b.boxes);
    lathe_det_loader_free(fresh);

    /* another epoch: another order or other images */
    load(l, 3, 0, NTRAIN, &b, NTRAIN);
    assert_true(memcmp(a.samples, b.samples, NTRAIN * sizeof *a.samples) != 0 ||
                memcmp(a.x, b.x, NTRAIN * per * sizeof *a.x) != 0);
    lathe_det_loader_free(l);
    lathe_det_batch_free(&a);
    lathe_det_batch_free(&b);
    close_fixture(&f);
}

/* data.background: every training sample with boxes in each epoch, and a fresh draw of the given share
 * of those without (train samples 2 and 8 have none: with 0.5, one of them per epoch). */
static void background_share_is_drawn_each_epoch(void **state) {
    (void)state;
    fixture f = open_main();
    lathe_det_loader_opts o = identity_augment_opts(64, 64);
    o.seed = 3, o.background = 0.5f;
    lathe_det_loader *l = make_loader(&f, &o);
    assert_int_equal(lathe_det_loader_size(l), NTRAIN - 1);
    lathe_det_batch b;
    assert_int_equal(lathe_det_batch_init(&b, NTRAIN, 64, 64), 0);
    uint64_t drawn[10];
    int seen_empty[10] = {0};
    for (int epoch = 0; epoch < 10; epoch++) {
        load(l, epoch, 0, NTRAIN, &b, NTRAIN - 1);
        int count[10] = {0};
        for (int i = 0; i < b.n; i++) count[b.samples[i]]++;
        static const int boxed[] = {0, 1, 3, 4, 9};
        for (int k = 0; k < 5; k++) assert_int_equal(count[boxed[k]], 1);
        assert_int_equal(count[2] + count[8], 1);
        drawn[epoch] = count[2] ? 2 : 8;
        seen_empty[drawn[epoch]] = 1;
    }
    assert_true(seen_empty[2] && seen_empty[8]); /* the draw changes between epochs */
    load(l, 4, 0, NTRAIN, &b, NTRAIN - 1);       /* and is a function of the epoch */
    int again = 0;
    for (int i = 0; i < b.n; i++) again |= b.samples[i] == drawn[4];
    assert_true(again);
    lathe_det_loader_free(l);
    o.background = 1; /* everything, as without sampling */
    l = make_loader(&f, &o);
    assert_int_equal(lathe_det_loader_size(l), NTRAIN);
    lathe_det_loader_free(l);
    o.background = 0.01f; /* never an empty draw while a sample has boxes: round(0.02) = 0 of them */
    l = make_loader(&f, &o);
    assert_int_equal(lathe_det_loader_size(l), 5);
    lathe_det_loader_free(l);
    o.background = 0;
    lathe_det_loader *bad = NULL;
    assert_int_equal(lathe_det_loader_create(f.ds, &o, &bad), -LATHE_EINVAL);
    o.background = 1.5f;
    assert_int_equal(lathe_det_loader_create(f.ds, &o, &bad), -LATHE_EINVAL);
    assert_null(bad);
    lathe_det_batch_free(&b);
    close_fixture(&f);
}

/* Hard negatives (data.hard_background): the samples without boxes are listed with the draw's size,
 * a preferred one is drawn in every epoch until the preference is cleared, a sample that is not
 * an empty one of the split is ignored, and clearing gives back the plain draws. */
static void preferred_background_is_drawn_first(void **state) {
    (void)state;
    fixture f = open_main();
    lathe_det_loader_opts o = identity_augment_opts(64, 64);
    o.seed = 3, o.background = 0.5f;
    lathe_det_loader *l = make_loader(&f, &o), *plain = make_loader(&f, &o);
    const uint64_t *empty;
    uint64_t draw;
    assert_int_equal(lathe_det_loader_background(l, &empty, &draw), 2);
    assert_int_equal(empty[0], 2);
    assert_int_equal(empty[1], 8);
    assert_int_equal(draw, 1);
    lathe_det_batch b;
    assert_int_equal(lathe_det_batch_init(&b, NTRAIN, 64, 64), 0);
    for (uint64_t want = 2; want <= 8; want += 6) {
        const uint64_t prefer[] = {5, want}; /* 5 is a val sample: not a candidate */
        assert_int_equal(lathe_det_loader_prefer_background(l, prefer, 2), 0);
        for (int epoch = 0; epoch < 6; epoch++) {
            load(l, epoch, 0, NTRAIN, &b, NTRAIN - 1);
            int count[10] = {0};
            for (int i = 0; i < b.n; i++) count[b.samples[i]]++;
            assert_int_equal(count[want], 1);
            assert_int_equal(count[want == 2 ? 8 : 2], 0);
        }
    }
    assert_int_equal(lathe_det_loader_prefer_background(l, NULL, 0), 0); /* cleared: the plain draws */
    lathe_det_batch a;
    assert_int_equal(lathe_det_batch_init(&a, NTRAIN, 64, 64), 0);
    for (int epoch = 0; epoch < 6; epoch++) {
        load(l, epoch, 0, NTRAIN, &a, NTRAIN - 1);
        load(plain, epoch, 0, NTRAIN, &b, NTRAIN - 1);
        assert_memory_equal(a.samples, b.samples, (NTRAIN - 1) * sizeof *a.samples);
    }
    lathe_det_loader_free(l), lathe_det_loader_free(plain);
    o.background = 1; /* no sampling: nothing to prefer */
    l = make_loader(&f, &o);
    assert_int_equal(lathe_det_loader_background(l, &empty, &draw), 0);
    assert_int_equal(lathe_det_loader_prefer_background(l, train_samples, 1), -LATHE_EINVAL);
    lathe_det_loader_free(l);
    lathe_det_batch_free(&a), lathe_det_batch_free(&b);
    close_fixture(&f);
}

/* lathe_det_loader_samples: the given samples as the unaugmented loader has them, whatever the
 * loader's own augmentation; samples past the dataset and more than the batch holds are refused. */
static void samples_load_as_evaluation_sees_them(void **state) {
    (void)state;
    fixture f = open_main();
    lathe_det_loader_opts po = plain_opts(LATHE_SPLIT_TRAIN, 64, 64), ao = po;
    ao.augment = 1, ao.seed = 5;
    lathe_det_loader *plain = make_loader(&f, &po), *aug = make_loader(&f, &ao);
    lathe_det_batch a, b;
    assert_int_equal(lathe_det_batch_init(&a, NTRAIN, 64, 64), 0);
    assert_int_equal(lathe_det_batch_init(&b, NTRAIN, 64, 64), 0);
    load(plain, 0, 0, NTRAIN, &a, NTRAIN);
    const uint64_t pick[] = {train_samples[4], train_samples[1]};
    assert_int_equal(lathe_det_loader_samples(aug, pick, 2, &b), 2);
    size_t per = (size_t)3 * 64 * 64;
    const int at[] = {4, 1};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(b.samples[i], pick[i]);
        assert_memory_equal(b.x + i * per, a.x + at[i] * per, per * sizeof *b.x);
        int n = b.offsets[i + 1] - b.offsets[i];
        assert_int_equal(n, a.offsets[at[i] + 1] - a.offsets[at[i]]);
        if (n) assert_memory_equal(b.boxes + 4 * b.offsets[i], a.boxes + 4 * a.offsets[at[i]], 4 * (size_t)n * sizeof *b.boxes);
    }
    const uint64_t past[] = {0, 10};
    assert_int_equal(lathe_det_loader_samples(aug, past, 2, &b), -LATHE_EINVAL);
    assert_int_equal(lathe_det_loader_samples(aug, train_samples, NTRAIN + 1, &b), -LATHE_EINVAL);
    assert_int_equal(lathe_det_loader_samples(aug, train_samples, 0, &b), 0);
    lathe_det_loader_free(plain), lathe_det_loader_free(aug);
    lathe_det_batch_free(&a), lathe_det_batch_free(&b);
    close_fixture(&f);
}

/* Every augmented box lies inside the input and is at least 2 pixels wide and high, with a valid
 * label, over several epochs and batches, for a square and a non-square input. */
static void augmented_boxes_stay_valid(void **state) {
    (void)state;
    fixture f = open_main();
    static const int sizes[][2] = {{64, 64}, {40, 56}}; /* h, w */
    for (int s = 0; s < 2; s++) {
        int H = sizes[s][0], W = sizes[s][1];
        lathe_det_loader_opts o = plain_opts(LATHE_SPLIT_TRAIN, H, W);
        o.augment = 1, o.seed = 3;
        lathe_det_loader *l = make_loader(&f, &o);
        lathe_det_batch b;
        assert_int_equal(lathe_det_batch_init(&b, 3, H, W), 0);
        size_t total = 0;
        for (int epoch = 0; epoch < 6; epoch++)
            for (uint64_t first = 0; first < NTRAIN; first += 3) {
                int want = NTRAIN - (int)first < 3 ? NTRAIN - (int)first : 3;
                load(l, epoch, first, 3, &b, want);
                assert_int_equal(b.offsets[b.n], (int)b.nboxes);
                for (size_t k = 0; k < b.nboxes; k++) {
                    const float *q = b.boxes + 4 * k;
                    assert_true(q[0] >= 0 && q[1] >= 0 && q[2] <= W && q[3] <= H);
                    assert_true(q[2] - q[0] >= 2 && q[3] - q[1] >= 2);
                    assert_true(b.labels[k] == 0 || b.labels[k] == 1);
                }
                for (int i = 0; i < b.n; i++) assert_true(b.offsets[i] <= b.offsets[i + 1]);
                total += b.nboxes;
            }
        assert_true(total > 0); /* not vacuous */
        lathe_det_loader_free(l);
        lathe_det_batch_free(&b);
    }
    close_fixture(&f);
}

/* flip = 1 with nothing else: every item is its stored image mirrored, and its boxes too
 * (x1' = W - x2, x2' = W - x1). */
static void certain_flip_mirrors(void **state) {
    (void)state;
    fixture f = open_main();
    lathe_det_loader_opts o = identity_augment_opts(64, 64);
    o.flip = 1;
    lathe_det_loader *l = make_loader(&f, &o);
    lathe_det_batch b;
    assert_int_equal(lathe_det_batch_init(&b, NTRAIN, 64, 64), 0);
    load(l, 1, 0, NTRAIN, &b, NTRAIN);
    for (int i = 0; i < NTRAIN; i++) {
        uint64_t g = b.samples[i];
        const float *x = item_x(&b, i, 64, 64);
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < 64; y++)
                for (int xx = 0; xx < 64; xx++)
                    assert_float_equal(x[((size_t)c * 64 + y) * 64 + xx], stored_pixel(g, 63 - xx, y, c) / 255.0f, 1e-4);
        lathe_box want[MAXBOX];
        size_t n = target_boxes(g, want);
        assert_int_equal(item_boxes(&b, i), (int)n);
        for (size_t j = 0; j < n; j++) {
            const float *got = b.boxes + 4 * ((size_t)b.offsets[i] + j);
            assert_float_equal(got[0], 64 - want[j].x2, 1e-4);
            assert_float_equal(got[1], want[j].y1, 1e-4);
            assert_float_equal(got[2], 64 - want[j].x1, 1e-4);
            assert_float_equal(got[3], want[j].y2, 1e-4);
            assert_int_equal(b.labels[b.offsets[i] + (int)j], want[j].label);
        }
    }
    lathe_det_loader_free(l);
    lathe_det_batch_free(&b);
    close_fixture(&f);
}

/* flipud = 1 with nothing else: every item upside down, boxes too. rotate90 = 1: every item a quarter
 * turn of its stored image, clockwise (output (x, y) = stored (y, 63 - x), a box (64 - y2, x1,
 * 64 - y1, x2)) or counter-clockwise (stored (63 - y, x), a box (y1, 64 - x2, y2, 64 - x1)), each
 * for some items. */
static void flips_and_quarter_turns(void **state) {
    (void)state;
    fixture f = open_main();
    lathe_det_batch b;
    assert_int_equal(lathe_det_batch_init(&b, NTRAIN, 64, 64), 0);
    int seen[3] = {0, 0, 0};
    for (int turn = 0; turn < 2; turn++) {
        lathe_det_loader_opts o = identity_augment_opts(64, 64);
        if (turn) o.rotate90 = 1;
        else o.flipud = 1;
        lathe_det_loader *l = make_loader(&f, &o);
        for (int e = 0; e < (turn ? 4 : 1); e++) {
            load(l, e, 0, NTRAIN, &b, NTRAIN);
            for (int i = 0; i < NTRAIN; i++) {
                uint64_t g = b.samples[i];
                const float *x = item_x(&b, i, 64, 64);
                /* 0 upside down, 1 clockwise, 2 counter-clockwise: told apart by the first pixel */
                int kind = !turn ? 0 : fabsf(x[0] - stored_pixel(g, 0, 63, 0) / 255.0f) < 1e-4f ? 1 : 2;
                seen[kind]++;
                for (int c = 0; c < 3; c++)
                    for (int y = 0; y < 64; y++)
                        for (int xx = 0; xx < 64; xx++) {
                            int sx = kind == 0 ? xx : kind == 1 ? y : 63 - y, sy = kind == 0 ? 63 - y : kind == 1 ? 63 - xx : xx;
                            assert_float_equal(x[((size_t)c * 64 + y) * 64 + xx], stored_pixel(g, sx, sy, c) / 255.0f, 1e-4);
                        }
                lathe_box want[MAXBOX];
                size_t n = target_boxes(g, want);
                assert_int_equal(item_boxes(&b, i), (int)n);
                for (size_t j = 0; j < n; j++) {
                    const float *got = b.boxes + 4 * ((size_t)b.offsets[i] + j);
                    const lathe_box *w = &want[j];
                    float exp[3][4] = {{w->x1, 64 - w->y2, w->x2, 64 - w->y1},
                                       {64 - w->y2, w->x1, 64 - w->y1, w->x2},
                                       {w->y1, 64 - w->x2, w->y2, 64 - w->x1}};
                    for (int k = 0; k < 4; k++) assert_float_equal(got[k], exp[kind][k], 1e-4);
                    assert_int_equal(b.labels[b.offsets[i] + (int)j], w->label);
                }
            }
        }
        lathe_det_loader_free(l);
    }
    assert_true(seen[0] == NTRAIN && seen[1] > 0 && seen[2] > 0);
    lathe_det_batch_free(&b);
    close_fixture(&f);
}

/* Close-mosaic: mosaic = 1 and mosaic_epochs = 1, nothing else random. Epoch 0 items are mosaics
 * (unlike the plain letterbox); from epoch 1 on each item is the plain item of its sample (the
 * order is still shuffled, so items are matched through samples[]). */
static void mosaic_switches_off(void **state) {
    (void)state;
    fixture f = open_main();
    lathe_det_loader_opts po = plain_opts(LATHE_SPLIT_TRAIN, 64, 64);
    lathe_det_loader *plain = make_loader(&f, &po);
    lathe_det_batch p, b;
    assert_int_equal(lathe_det_batch_init(&p, NTRAIN, 64, 64), 0);
    assert_int_equal(lathe_det_batch_init(&b, NTRAIN, 64, 64), 0);
    load(plain, 0, 0, NTRAIN, &p, NTRAIN);
    lathe_det_loader_opts o = identity_augment_opts(64, 64);
    o.mosaic = 1, o.mosaic_epochs = 1, o.seed = 11;
    lathe_det_loader *l = make_loader(&f, &o);
    size_t per = (size_t)3 * 64 * 64;
    for (int epoch = 0; epoch < 3; epoch++) {
        load(l, epoch, 0, NTRAIN, &b, NTRAIN);
        for (int i = 0; i < NTRAIN; i++) {
            int j = 0;
            while (j < NTRAIN && p.samples[j] != b.samples[i]) j++;
            assert_true(j < NTRAIN);
            int same = memcmp(b.x + i * per, p.x + j * per, per * sizeof *b.x) == 0;
            if (epoch == 0) {
                assert_false(same);
                continue;
            }
            assert_true(same);
            assert_int_equal(item_boxes(&b, i), item_boxes(&p, j));
            for (int k = 0; k < item_boxes(&b, i); k++) {
                assert_memory_equal(b.boxes + 4 * (b.offsets[i] + k), p.boxes + 4 * (p.offsets[j] + k), 4 * sizeof(float));
                assert_int_equal(b.labels[b.offsets[i] + k], p.labels[p.offsets[j] + k]);
            }
        }
    }
    lathe_det_loader_free(l);
    lathe_det_loader_free(plain);
    lathe_det_batch_free(&p);
    lathe_det_batch_free(&b);
    close_fixture(&f);
}

/* Batch arguments: n is clipped to the batch's capacity, n = 0 gives nothing, and a negative n or
 * epoch is refused (a fresh loader has no order for epoch -1). */
static void batch_arguments(void **state) {
    (void)state;
    fixture f = open_main();
    lathe_det_loader_opts o = plain_opts(LATHE_SPLIT_TRAIN, 32, 32);
    lathe_det_loader *l = make_loader(&f, &o);
    lathe_det_batch b;
    assert_int_equal(lathe_det_batch_init(&b, 2, 32, 32), 0);
    assert_int_equal(lathe_det_loader_batch(l, -1, 0, 2, &b), -LATHE_EINVAL);
    assert_int_equal(lathe_det_loader_batch(l, 0, 0, -1, &b), -LATHE_EINVAL);
    load(l, 0, 0, 0, &b, 0);
    load(l, 0, 1, 5, &b, 2); /* capacity 2 */
    assert_true(b.samples[0] == 1 && b.samples[1] == 2);
    lathe_det_loader_free(l);
    lathe_det_batch_free(&b);
    close_fixture(&f);
}

/* Options out of range and an empty split are refused with -LATHE_EINVAL and no loader. */
static void bad_options_refused(void **state) {
    (void)state;
    fixture f = open_main();
    lathe_det_loader_opts good = plain_opts(LATHE_SPLIT_TRAIN, 64, 64), o;
    lathe_det_loader *l = (lathe_det_loader *)&good; /* anything but NULL: create must clear it */
#define REFUSED(edit)                                                               \
    do {                                                                            \
        o = good;                                                                   \
        edit;                                                                       \
        assert_int_equal(lathe_det_loader_create(f.ds, &o, &l), -LATHE_EINVAL);     \
        assert_null(l);                                                             \
        l = (lathe_det_loader *)&good;                                              \
    } while (0)
    REFUSED(o.translate = 0.7f);
    REFUSED(o.translate = -0.1f);
    REFUSED(o.flip = 2);
    REFUSED(o.flip = NAN);
    REFUSED(o.flipud = 1.5f);
    REFUSED(o.rotate90 = -1);
    REFUSED(o.hsv_h = 4);
    REFUSED(o.hsv_s = 1.5f);
    REFUSED(o.hsv_v = -1);
    REFUSED(o.scale = 1);
    REFUSED(o.mosaic = -0.5f);
    REFUSED(o.std = 0);
    REFUSED(o.h = 4);
    REFUSED(o.split = LATHE_SPLIT_TEST); /* no test shard */
#undef REFUSED
    lathe_det_loader *ok;
    assert_int_equal(lathe_det_loader_create(f.ds, &good, &ok), 0);
    lathe_det_loader_free(ok);
    close_fixture(&f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(plain_items_are_the_stored_samples),
        cmocka_unit_test(plain_items_downscaled),
        cmocka_unit_test(plain_items_non_square),
        cmocka_unit_test(augmentation_is_deterministic),
        cmocka_unit_test(augmented_boxes_stay_valid),
        cmocka_unit_test(certain_flip_mirrors),
        cmocka_unit_test(flips_and_quarter_turns),
        cmocka_unit_test(mosaic_switches_off),
        cmocka_unit_test(batch_arguments),
        cmocka_unit_test(bad_options_refused),
        cmocka_unit_test(background_share_is_drawn_each_epoch),
        cmocka_unit_test(preferred_background_is_drawn_first),
        cmocka_unit_test(samples_load_as_evaluation_sees_them),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
