/* test_loader.c - the classification loader against a small pixels-store dataset written here:
 * only the split's labelled samples are listed, in stored order without shuffling; unaugmented items
 * are the stored pixels normalized, area-averaged when the model is smaller, luma for one channel;
 * a shuffled epoch is a permutation; a batch is a pure function of (seed, epoch, position), whatever
 * the thread count or how the epoch is cut into batches; flips mirror, quarter turns turn, jitter is
 * an affine map of the pixels within its bounds, a crop is the area average of its window (drawn
 * from seed, epoch and position, inside the image), checked pixel by pixel; bad options are refused. */
#include <math.h>
#include <omp.h>

#include "libcore/base/error.h"
#include "libcore/base/rng.h"
#include "libcore/data/loader.h"
#include "libcore/io/dataset.h"
#include "testdata.h"
#include "testutil.h"

enum { W = 8, H = 6, PER = 3 * W * H };

static const char *const classes[] = {"ok", "scratch", "dent"};
/* train: samples 0..5 and 9..10 (sample 4 unlabelled); val: 6..8; test: 11, unlabelled */
static const test_shard shards[] = {{LATHE_SPLIT_TRAIN, 6}, {LATHE_SPLIT_VAL, 3}, {LATHE_SPLIT_TRAIN, 2}, {LATHE_SPLIT_TEST, 1}};
static const uint64_t train_labelled[] = {0, 1, 2, 3, 5, 9, 10};
enum { NTRAIN = 7 };

static uint8_t stored(uint64_t g, int x, int y, int c) { return (uint8_t)((g * 37 + (uint64_t)x * 29 + (uint64_t)y * 11 + (uint64_t)c * 71) & 255); }

static size_t fill(void *ctx, uint64_t g, int split, uint8_t *px, lathe_box *boxes, lathe_meta *meta, int32_t *label) {
    (void)ctx, (void)split, (void)boxes, (void)meta;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            for (int c = 0; c < 3; c++) px[((size_t)y * W + x) * 3 + c] = stored(g, x, y, c);
    *label = g == 4 || g == 11 ? -1 : (int32_t)(g % 3);
    return 0;
}

typedef struct {
    char *dir;
    lathe_dataset *ds;
} fixture;

static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    f->dir = test_write_pixels_dataset("loader", W, H, classes, 3, shards, 4, fill, NULL);
    assert_int_equal(lathe_dataset_open(f->dir, &f->ds), 0);
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    lathe_dataset_close(f->ds);
    test_rmtree(f->dir);
    free(f->dir), free(f);
    return 0;
}

static lathe_loader_opts plain_opts(void) {
    lathe_loader_opts o = {0};
    o.split = LATHE_SPLIT_TRAIN, o.c = 3, o.h = H, o.w = W, o.mean = 0.25f, o.std = 0.5f, o.seed = 11;
    return o;
}

static lathe_loader *make(fixture *f, const lathe_loader_opts *o) {
    lathe_loader *l;
    assert_int_equal(lathe_loader_create(f->ds, o, &l), 0);
    return l;
}

static float normalized(double v, const lathe_loader_opts *o) { return (float)((v / 255.0 - o->mean) / o->std); }

static void unaugmented_items_are_the_stored_pixels(void **state) {
    fixture *f = *state;
    lathe_loader_opts o = plain_opts();
    lathe_loader *l = make(f, &o);
    assert_int_equal(lathe_loader_size(l), NTRAIN);
    float x[NTRAIN * PER];
    int32_t labels[NTRAIN];
    assert_int_equal(lathe_loader_batch(l, 0, 0, 100, x, labels), NTRAIN); /* clipped at the end */
    for (int b = 0; b < NTRAIN; b++) {
        uint64_t g = train_labelled[b];
        assert_int_equal(labels[b], (int32_t)(g % 3));
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < H; y++)
                for (int xx = 0; xx < W; xx++)
                    assert_float_equal(x[b * PER + (c * H + y) * W + xx], normalized(stored(g, xx, y, c), &o), 1e-6);
    }
    assert_int_equal(lathe_loader_batch(l, 0, NTRAIN, 4, x, labels), 0); /* past the end */
    lathe_loader_free(l);
    /* half size: 2x2 area averages; one channel: their luma */
    o.h = H / 2, o.w = W / 2, o.c = 1;
    l = make(f, &o);
    assert_int_equal(lathe_loader_batch(l, 0, 2, 1, x, labels), 1);
    uint64_t g = train_labelled[2];
    for (int y = 0; y < H / 2; y++)
        for (int xx = 0; xx < W / 2; xx++) {
            double rgb[3] = {0, 0, 0};
            for (int c = 0; c < 3; c++)
                for (int dy = 0; dy < 2; dy++)
                    for (int dx = 0; dx < 2; dx++) rgb[c] += stored(g, 2 * xx + dx, 2 * y + dy, c) / 4.0;
            assert_float_equal(x[y * (W / 2) + xx], normalized(0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2], &o), 1e-5);
        }
    lathe_loader_free(l);
}

/* Everything augmentation and shuffling can change, on: the batches of an epoch. */
static void epoch(fixture *f, const lathe_loader_opts *o, int e, int cut, float *x, int32_t *labels) {
    lathe_loader *l = make(f, o);
    for (int first = 0; first < NTRAIN; first += cut)
        assert_int_equal(lathe_loader_batch(l, e, (uint64_t)first, cut, x + (size_t)first * PER, labels + first),
                         first + cut > NTRAIN ? NTRAIN - first : cut);
    lathe_loader_free(l);
}

static void batches_depend_on_seed_epoch_and_position_only(void **state) {
    fixture *f = *state;
    lathe_loader_opts o = plain_opts();
    o.shuffle = 1, o.flip = 1, o.crop = 0.3f, o.jitter = 0.2f;
    static float a[NTRAIN * PER], b[NTRAIN * PER];
    int32_t la[NTRAIN], lb[NTRAIN];
    int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    epoch(f, &o, 3, NTRAIN, a, la);
    omp_set_num_threads(threads > 1 ? threads : 2);
    epoch(f, &o, 3, 2, b, lb); /* other threads, other batch cuts */
    assert_memory_equal(a, b, sizeof a);
    assert_memory_equal(la, lb, sizeof la);
    epoch(f, &o, 4, 3, b, lb); /* another epoch: another order of the same labels */
    assert_memory_not_equal(a, b, sizeof a);
    int ca[3] = {0}, cb[3] = {0};
    for (int i = 0; i < NTRAIN; i++) ca[la[i]]++, cb[lb[i]]++;
    assert_memory_equal(ca, cb, sizeof ca);
    o.seed++;
    epoch(f, &o, 3, NTRAIN, b, lb);
    assert_memory_not_equal(a, b, sizeof a);
    omp_set_num_threads(threads);
}

/* Flips only: every item is its stored image or its mirror, and over a few epochs both occur. */
static void flips_mirror(void **state) {
    fixture *f = *state;
    lathe_loader_opts o = plain_opts();
    o.flip = 0.5f;
    static float x[NTRAIN * PER];
    int32_t labels[NTRAIN];
    int seen[2] = {0, 0};
    for (int e = 0; e < 4; e++) {
        epoch(f, &o, e, NTRAIN, x, labels);
        for (int b = 0; b < NTRAIN; b++) {
            uint64_t g = train_labelled[b];
            int same = 1, mirrored = 1;
            for (int c = 0; c < 3; c++)
                for (int y = 0; y < H; y++)
                    for (int xx = 0; xx < W; xx++) {
                        float v = x[b * PER + (c * H + y) * W + xx];
                        same &= fabsf(v - normalized(stored(g, xx, y, c), &o)) < 1e-6f;
                        mirrored &= fabsf(v - normalized(stored(g, W - 1 - xx, y, c), &o)) < 1e-6f;
                    }
            assert_true(same || mirrored);
            seen[mirrored]++;
        }
    }
    assert_true(seen[0] > 0 && seen[1] > 0);
}

/* flipud = 1 with nothing else: every item upside down. rotate90 = 1 with an input of the stored
 * image turned (H x W: no resampling): every item a quarter turn of its stored image, each way for
 * some items. */
static void flips_and_quarter_turns(void **state) {
    fixture *f = *state;
    static float x[NTRAIN * PER];
    int32_t labels[NTRAIN];
    lathe_loader_opts o = plain_opts();
    o.flipud = 1;
    epoch(f, &o, 0, NTRAIN, x, labels);
    for (int b = 0; b < NTRAIN; b++)
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < H; y++)
                for (int xx = 0; xx < W; xx++)
                    assert_float_equal(x[b * PER + (c * H + y) * W + xx],
                                       normalized(stored(train_labelled[b], xx, H - 1 - y, c), &o), 1e-6);
    o = plain_opts(), o.h = W, o.w = H, o.rotate90 = 1;
    int seen[2] = {0, 0};
    for (int e = 0; e < 4; e++) {
        epoch(f, &o, e, NTRAIN, x, labels);
        for (int b = 0; b < NTRAIN; b++) {
            uint64_t g = train_labelled[b];
            int clockwise = 1, counter = 1; /* item (x, y) of the W-tall, H-wide item */
            for (int c = 0; c < 3; c++)
                for (int y = 0; y < W; y++)
                    for (int xx = 0; xx < H; xx++) {
                        float v = x[b * PER + (c * W + y) * H + xx];
                        clockwise &= fabsf(v - normalized(stored(g, y, H - 1 - xx, c), &o)) < 1e-6f;
                        counter &= fabsf(v - normalized(stored(g, W - 1 - y, xx, c), &o)) < 1e-6f;
                    }
            assert_true(clockwise != counter);
            seen[clockwise]++;
        }
    }
    assert_true(seen[0] > 0 && seen[1] > 0);
}

/* Jitter only: each item is gain * pixel + bias (in 0..1 units) of its stored image, the gain in
 * [1 - j, 1 + j] and the bias in [-j / 2, j / 2], not the same for every item. */
static void jitter_is_an_affine_map_within_bounds(void **state) {
    fixture *f = *state;
    lathe_loader_opts o = plain_opts();
    o.jitter = 0.2f;
    static float x[NTRAIN * PER];
    int32_t labels[NTRAIN];
    epoch(f, &o, 1, NTRAIN, x, labels);
    double gains[NTRAIN];
    for (int b = 0; b < NTRAIN; b++) {
        uint64_t g = train_labelled[b];
        double u[PER], v[PER], sx = 0, sy = 0, sxx = 0, sxy = 0; /* stored and item values, 0..1 */
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < H; y++)
                for (int xx = 0; xx < W; xx++) {
                    int i = (c * H + y) * W + xx;
                    u[i] = stored(g, xx, y, c) / 255.0, v[i] = x[b * PER + i] * o.std + o.mean;
                }
        for (int i = 0; i < PER; i++) sx += u[i], sy += v[i], sxx += u[i] * u[i], sxy += u[i] * v[i];
        double gain = (PER * sxy - sx * sy) / (PER * sxx - sx * sx), bias = (sy - gain * sx) / PER; /* least squares */
        for (int i = 0; i < PER; i++) assert_true(fabs(v[i] - (gain * u[i] + bias)) < 1e-5);
        assert_true(gain >= 1 - o.jitter - 1e-6 && gain <= 1 + o.jitter + 1e-6);
        assert_true(fabs(bias) <= o.jitter / 2 + 1e-6);
        gains[b] = gain;
    }
    int varied = 0;
    for (int b = 1; b < NTRAIN; b++) varied |= gains[b] != gains[0];
    assert_true(varied);
}

/* Crops: each item is the area average of its window, which lies inside the image and keeps at least
 * 1 - crop of each side. The window is drawn from (seed, epoch, position) as loader.c draws it (rng.h's
 * stream: the kept share, then x0, then y0), so each output pixel must equal the mean of exactly the
 * stored pixels its part of that window touches: a window in the wrong place fails, not only one
 * outside the image's value range. */
static void crops_are_area_averages_of_their_window(void **state) {
    fixture *f = *state;
    lathe_loader_opts o = plain_opts();
    o.crop = 0.5f;
    const int e = 2;
    static float x[NTRAIN * PER], plain[NTRAIN * PER];
    int32_t labels[NTRAIN];
    epoch(f, &o, e, NTRAIN, x, labels);
    lathe_loader_opts p = plain_opts();
    epoch(f, &p, e, NTRAIN, plain, labels);
    assert_memory_not_equal(x, plain, sizeof x);
    int moved = 0;
    for (int b = 0; b < NTRAIN; b++) { /* unshuffled: the item at position b is the split's b-th sample */
        uint64_t g = train_labelled[b];
        uint64_t s = lathe_mix64(o.seed ^ lathe_mix64((uint64_t)e * 0x1000003ull + (uint64_t)b + 7));
        double keep = 1 - o.crop * lathe_rng_unit(&s);
        double ww = W * keep, hh = H * keep;
        double x0 = (W - ww) * lathe_rng_unit(&s), y0 = (H - hh) * lathe_rng_unit(&s);
        assert_true(keep >= 1 - o.crop && keep <= 1 && x0 >= 0 && x0 + ww <= W && y0 >= 0 && y0 + hh <= H);
        moved += x0 >= 1 || y0 >= 1;
        for (int y = 0; y < H; y++)
            for (int xx = 0; xx < W; xx++) {
                int ya = (int)floor(y0 + hh * y / H), yb = (int)ceil(y0 + hh * (y + 1) / H);
                int xa = (int)floor(x0 + ww * xx / W), xb = (int)ceil(x0 + ww * (xx + 1) / W);
                if (yb <= ya) yb = ya + 1;
                if (xb <= xa) xb = xa + 1;
                assert_true(ya >= 0 && yb <= H && xa >= 0 && xb <= W); /* stored pixels only, no clamping */
                for (int c = 0; c < 3; c++) {
                    double sum = 0;
                    for (int sy = ya; sy < yb; sy++)
                        for (int sx = xa; sx < xb; sx++) sum += stored(g, sx, sy, c);
                    float want = normalized(sum / ((yb - ya) * (xb - xa)), &o);
                    assert_float_equal(x[b * PER + (c * H + y) * W + xx], want, 1e-5);
                }
            }
    }
    assert_true(moved > 0); /* some window starts a whole pixel or more in: a shifted crop would show */
}

static void bad_options_are_refused(void **state) {
    fixture *f = *state;
    lathe_loader *l = NULL;
    lathe_loader_opts o = plain_opts();
    o.c = 2;
    assert_int_equal(lathe_loader_create(f->ds, &o, &l), -LATHE_EINVAL);
    o = plain_opts(), o.flip = 1.5f;
    assert_int_equal(lathe_loader_create(f->ds, &o, &l), -LATHE_EINVAL);
    o = plain_opts(), o.flipud = -1;
    assert_int_equal(lathe_loader_create(f->ds, &o, &l), -LATHE_EINVAL);
    o = plain_opts(), o.rotate90 = NAN;
    assert_int_equal(lathe_loader_create(f->ds, &o, &l), -LATHE_EINVAL);
    o = plain_opts(), o.crop = 1;
    assert_int_equal(lathe_loader_create(f->ds, &o, &l), -LATHE_EINVAL);
    o = plain_opts(), o.jitter = -0.1f;
    assert_int_equal(lathe_loader_create(f->ds, &o, &l), -LATHE_EINVAL);
    o = plain_opts(), o.std = 0;
    assert_int_equal(lathe_loader_create(f->ds, &o, &l), -LATHE_EINVAL);
    o = plain_opts(), o.std = NAN;
    assert_int_equal(lathe_loader_create(f->ds, &o, &l), -LATHE_EINVAL);
    o = plain_opts(), o.h = 0;
    assert_int_equal(lathe_loader_create(f->ds, &o, &l), -LATHE_EINVAL);
    o = plain_opts(), o.split = LATHE_SPLIT_TEST; /* one sample, unlabelled */
    assert_int_equal(lathe_loader_create(f->ds, &o, &l), -LATHE_EINVAL);
    assert_non_null(strstr(lathe_last_error(), "no labelled sample"));
    assert_null(l);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(unaugmented_items_are_the_stored_pixels),
        cmocka_unit_test(batches_depend_on_seed_epoch_and_position_only),
        cmocka_unit_test(flips_mirror),
        cmocka_unit_test(flips_and_quarter_turns),
        cmocka_unit_test(jitter_is_an_affine_map_within_bounds),
        cmocka_unit_test(crops_are_area_averages_of_their_window),
        cmocka_unit_test(bad_options_are_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
