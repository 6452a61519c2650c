/* test_det_report.c - the detection report beyond COCO: confusion cells and best-F1 points on
 * hand-built data checked against values worked out by hand, boxes drawn into valid PNGs whatever
 * the coordinates, sample images picked and drawn from a small dataset written here (their boxes
 * land where meta maps them; a drawing's PNG keeps the pixels), line charts, base64 (RFC 4648), and
 * the three report files; matching only nearby boxes equals comparing every pair. */
#include <math.h>

#include "libcore/base/error.h"
#include "libcore/eval/coco.h"
#include "libcore/eval/det_report.h"
#include "libcore/eval/draw.h"
#include "libcore/eval/html.h"
#include "libcore/io/dataset.h"
#include "libcore/io/image.h"
#include "testdata.h"
#include "testutil.h"

static const char png_magic[] = "\x89PNG\r\n\x1a\n";

static lathe_coco_ann gt_box(int64_t id, int64_t img, int64_t cat, double x, double y, double w, double h, int crowd) {
    return (lathe_coco_ann){.id = id, .image_id = img, .category_id = cat, .x = x, .y = y, .w = w, .h = h,
                            .area = w * h, .iscrowd = crowd, .ignore = crowd};
}

static lathe_coco_ann dt_box(int64_t id, int64_t img, int64_t cat, double x, double y, double w, double h,
                             double score) {
    return (lathe_coco_ann){.id = id, .image_id = img, .category_id = cat, .x = x, .y = y, .w = w, .h = h,
                            .area = w * h, .score = score};
}

/* Categories 1 "cat" and 3 "dog" (ids that are not indices), images 1, 2, 3.
 * Image 1: cat A (0,0,10,10), dog B (20,0,10,10), a cat crowd C (0,20,40,20);
 *   cat 0.9 on A; cat 0.8 on B (IoU 0.82: the wrong class); cat 0.7 inside C; dog 0.6 on B.
 * Image 2: dog D (0,0,20,20), cat E (50,50,10,10); dog 0.95 on D, dog 0.3 on nothing, cat 0.1 on E.
 * Image 3: cat F (0,0,10,10), no detection. */
static int64_t images[] = {1, 2, 3}, categories[] = {1, 3};
static char cat_name[] = "cat", dog_name[] = "dog";
static char *names[] = {cat_name, dog_name};
static lathe_coco_ann gts[6], dts[7];

static lathe_coco_data hand_data(void) {
    gts[0] = gt_box(1, 1, 1, 0, 0, 10, 10, 0);
    gts[1] = gt_box(2, 1, 3, 20, 0, 10, 10, 0);
    gts[2] = gt_box(3, 1, 1, 0, 20, 40, 20, 1);
    gts[3] = gt_box(4, 2, 3, 0, 0, 20, 20, 0);
    gts[4] = gt_box(5, 2, 1, 50, 50, 10, 10, 0);
    gts[5] = gt_box(6, 3, 1, 0, 0, 10, 10, 0);
    dts[0] = dt_box(1, 1, 1, 0, 0, 10, 10, 0.9);
    dts[1] = dt_box(2, 1, 1, 21, 0, 10, 10, 0.8);
    dts[2] = dt_box(3, 1, 1, 5, 25, 10, 10, 0.7);
    dts[3] = dt_box(4, 1, 3, 20, 0, 10, 10, 0.6);
    dts[4] = dt_box(5, 2, 3, 0, 0, 20, 20, 0.95);
    dts[5] = dt_box(6, 2, 3, 100, 100, 10, 10, 0.3);
    dts[6] = dt_box(7, 2, 1, 50, 50, 10, 10, 0.1);
    return (lathe_coco_data){images, 3, categories, names, 2, gts, dts, 6, 7};
}

static cJSON *extended_report(const lathe_coco_data *d) {
    lathe_coco_result r;
    assert_int_equal(lathe_coco_evaluate(d, &r), 0);
    cJSON *report = lathe_coco_report(d, &r);
    lathe_coco_result_free(&r);
    assert_int_equal(lathe_det_report_extend(d, report), 0);
    return report;
}

static double cell(const cJSON *matrix, int row, int col) {
    return cJSON_GetArrayItem(cJSON_GetArrayItem(matrix, row), col)->valuedouble;
}

static const cJSON *best_f1(const cJSON *report, int k) {
    return cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(report, "classes"), k), "best_f1");
}

static void confusion_by_hand(void **state) {
    (void)state;
    lathe_coco_data d = hand_data();
    cJSON *report = extended_report(&d);
    const cJSON *cm = cJSON_GetObjectItem(report, "confusion"), *labels = cJSON_GetObjectItem(cm, "labels");
    assert_float_equal(cJSON_GetObjectItem(cm, "iou")->valuedouble, 0.5, 0);
    assert_float_equal(cJSON_GetObjectItem(cm, "score_threshold")->valuedouble, 0.25, 0);
    assert_int_equal(cJSON_GetArraySize(labels), 3);
    assert_string_equal(cJSON_GetArrayItem(labels, 0)->valuestring, "cat");
    assert_string_equal(cJSON_GetArrayItem(labels, 1)->valuestring, "dog");
    assert_string_equal(cJSON_GetArrayItem(labels, 2)->valuestring, "background");
    /* rows true cat, dog, background; columns predicted cat, dog, background:
     * A hit by cat 0.9; B taken first by cat 0.8 (greedy by score), so dog 0.6 is a false positive;
     * cat 0.7 sits in the crowd (nothing); D hit by dog 0.95; dog 0.3 a false positive; cat 0.1 is
     * under the 0.25 threshold, so E is missed, as F; the crowd is never missed */
    static const double want[3][3] = {{1, 0, 2}, {1, 1, 0}, {0, 2, 0}};
    const cJSON *m = cJSON_GetObjectItem(cm, "matrix");
    assert_int_equal(cJSON_GetArraySize(m), 3);
    for (int r = 0; r < 3; r++)
        for (int c = 0; c < 3; c++) assert_float_equal(cell(m, r, c), want[r][c], 0);
    cJSON_Delete(report);
}

static void best_f1_by_hand(void **state) {
    (void)state;
    lathe_coco_data d = hand_data();
    cJSON *report = extended_report(&d);
    /* cat, 3 counted truths (A, E, F): 0.9 TP (F1 0.5), 0.8 FP (0.4), 0.7 in the crowd (no change),
     * 0.1 TP: P = R = 2/3, F1 2/3, the best */
    const cJSON *cat = best_f1(report, 0);
    assert_float_equal(cJSON_GetObjectItem(cat, "threshold")->valuedouble, 0.1, 0);
    assert_float_equal(cJSON_GetObjectItem(cat, "f1")->valuedouble, 2.0 / 3, 1e-12);
    assert_float_equal(cJSON_GetObjectItem(cat, "precision")->valuedouble, 2.0 / 3, 1e-12);
    assert_float_equal(cJSON_GetObjectItem(cat, "recall")->valuedouble, 2.0 / 3, 1e-12);
    /* dog, truths B and D: 0.95 TP (F1 2/3), 0.6 TP on B (same-class matching: F1 1), 0.3 FP (0.8) */
    const cJSON *dog = best_f1(report, 1);
    assert_float_equal(cJSON_GetObjectItem(dog, "threshold")->valuedouble, 0.6, 0);
    assert_float_equal(cJSON_GetObjectItem(dog, "f1")->valuedouble, 1, 0);
    assert_float_equal(cJSON_GetObjectItem(dog, "precision")->valuedouble, 1, 0);
    assert_float_equal(cJSON_GetObjectItem(dog, "recall")->valuedouble, 1, 0);
    /* extending again replaces the keys */
    int keys = cJSON_GetArraySize(cJSON_GetArrayItem(cJSON_GetObjectItem(report, "classes"), 0));
    int top = cJSON_GetArraySize(report);
    assert_int_equal(lathe_det_report_extend(&d, report), 0);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetArrayItem(cJSON_GetObjectItem(report, "classes"), 0)), keys);
    assert_int_equal(cJSON_GetArraySize(report), top);
    cJSON_Delete(report);
}

/* Class "b" has detections but no ground truth, class "c" ground truth but only a stray detection. */
static void best_f1_without_hits(void **state) {
    (void)state;
    int64_t img[] = {7}, cats[] = {0, 1, 2};
    char a[] = "a", b[] = "b", c[] = "c";
    char *cat_names[] = {a, b, c};
    lathe_coco_ann g[] = {gt_box(1, 7, 0, 0, 0, 10, 10, 0), gt_box(2, 7, 2, 40, 40, 10, 10, 0)};
    lathe_coco_ann t[] = {dt_box(1, 7, 0, 0, 0, 10, 10, 0.9), dt_box(2, 7, 1, 20, 20, 10, 10, 0.8),
                          dt_box(3, 7, 2, 70, 70, 10, 10, 0.7)};
    lathe_coco_data d = {img, 1, cats, cat_names, 3, g, t, 2, 3};
    cJSON *report = extended_report(&d);
    assert_float_equal(cJSON_GetObjectItem(best_f1(report, 0), "f1")->valuedouble, 1, 0);
    for (int k = 1; k < 3; k++) {
        assert_true(cJSON_IsNull(cJSON_GetObjectItem(best_f1(report, k), "threshold")));
        assert_float_equal(cJSON_GetObjectItem(best_f1(report, k), "f1")->valuedouble, 0, 0);
        assert_float_equal(cJSON_GetObjectItem(best_f1(report, k), "recall")->valuedouble, 0, 0);
    }
    const cJSON *m = cJSON_GetObjectItem(cJSON_GetObjectItem(report, "confusion"), "matrix");
    static const double want[4][4] = {{1, 0, 0, 0}, {0, 0, 0, 0}, {0, 0, 0, 1}, {0, 1, 1, 0}};
    for (int r = 0; r < 4; r++)
        for (int col = 0; col < 4; col++) assert_float_equal(cell(m, r, col), want[r][col], 0);
    /* a report whose classes are not d's is refused, untouched */
    cJSON *other = cJSON_CreateObject();
    cJSON_AddArrayToObject(other, "classes");
    assert_int_equal(lathe_det_report_extend(&d, other), -LATHE_EINVAL);
    assert_null(cJSON_GetObjectItem(other, "confusion"));
    assert_int_equal(lathe_det_report_extend(&d, NULL), -LATHE_EINVAL);
    cJSON_Delete(other);
    cJSON_Delete(report);
}

/* A draw in [0, m) from an LCG (the argument order of a call may differ between compilers: the test
 * only compares two reports of the same data). */
static uint64_t next_below(uint64_t *r, uint64_t m) {
    *r = *r * 6364136223846793005ull + 1442695040888963407ull;
    return (*r >> 33) % m;
}

/* The confusion matrix and best-F1 points of a bare report (K empty classes) of d. */
static char *extension_of(const lathe_coco_data *d) {
    cJSON *report = cJSON_CreateObject(), *classes = cJSON_AddArrayToObject(report, "classes");
    for (size_t k = 0; k < d->ncategories; k++) cJSON_AddItemToArray(classes, cJSON_CreateObject());
    assert_int_equal(lathe_det_report_extend(d, report), 0);
    char *text = cJSON_PrintUnformatted(report);
    cJSON_Delete(report);
    return text;
}

/* Matching looks only at the ground truth near each detection (a grid of cells by corner): on dense
 * images with ties, crowds, duplicate boxes and coordinates that are not finite, the report equals
 * the one where every detection is compared with every box. That one is made by giving each image a
 * box of an unknown category a million wide, which no detection can match but which makes the
 * image's grid a single cell. */
static void nearby_matching_equals_every_pair(void **state) {
    (void)state;
    enum { NIMG = 3, NG = 400, ND = 500 };
    static int64_t img[NIMG] = {1, 2, 3}, cats[] = {0, 1};
    static char a[] = "a", b[] = "b";
    static char *cat_names[] = {a, b};
    static lathe_coco_ann g[NIMG * NG + NIMG], t[NIMG * ND];
    uint64_t r = 12345;
    size_t ng = 0, nd = 0;
    for (int i = 0; i < NIMG; i++) {
        for (int k = 0; k < NG; k++) {
            double x = (double)next_below(&r, 200), y = (double)next_below(&r, 200), w = 2 + (double)next_below(&r, 30), h = 2 + (double)next_below(&r, 30);
            if (k % 37 == 5) g[ng] = g[ng - 1], g[ng].id = (int64_t)ng + 1; /* a duplicate: equal IoUs */
            else g[ng] = gt_box((int64_t)ng + 1, img[i], (int64_t)next_below(&r, 2), x, y, w, h, k % 41 == 0);
            ng++;
        }
        g[ng - 1].x = NAN, g[ng - 3].w = -5; /* not finite, not sane */
        g[ng - 2].x = 0, g[ng - 2].w = INFINITY, g[ng - 2].iscrowd = g[ng - 2].ignore = 1; /* covers a band */
        for (int k = 0; k < ND; k++) {
            const lathe_coco_ann *near = &g[ng - 1 - next_below(&r, NG)];
            double score = (double)next_below(&r, 20) / 20; /* ties */
            if (k % 3) t[nd] = dt_box((int64_t)nd + 1, img[i], (int64_t)next_below(&r, 2), near->x + (double)next_below(&r, 5) - 2,
                                      near->y + (double)next_below(&r, 5) - 2, near->w, near->h, score);
            else t[nd] = dt_box((int64_t)nd + 1, img[i], (int64_t)next_below(&r, 2), (double)next_below(&r, 220), (double)next_below(&r, 220),
                                2 + (double)next_below(&r, 30), 2 + (double)next_below(&r, 30), score);
            nd++;
        }
        t[nd - 1].y = NAN, t[nd - 2].w = INFINITY;
    }
    lathe_coco_data d = {img, NIMG, cats, cat_names, 2, g, t, ng, nd};
    char *near = extension_of(&d);
    for (int i = 0; i < NIMG; i++) g[ng + (size_t)i] = gt_box(1000000 + i, img[i], 99, -5e5, -5e5, 1e6, 1e6, 0);
    d.ngt = ng + NIMG;
    char *every = extension_of(&d);
    assert_string_equal(near, every);
    assert_non_null(strstr(near, "\"matrix\""));
    free(near), free(every);
    /* a box that is not finite is still seen: a detection inside an endless crowd is no false positive */
    lathe_coco_ann crowd[] = {gt_box(1, 1, 0, 0, 0, INFINITY, 10, 1), gt_box(2, 1, 0, 50, 50, 10, 10, 0)};
    lathe_coco_ann inside[] = {dt_box(1, 1, 0, 500, 0, 10, 10, 0.9)};
    lathe_coco_data e = {img, 1, cats, cat_names, 2, crowd, inside, 2, 1};
    cJSON *report = extended_report(&e);
    const cJSON *m = cJSON_GetObjectItem(cJSON_GetObjectItem(report, "confusion"), "matrix");
    assert_float_equal(cell(m, 2, 0), 0, 0); /* background row: no false positive */
    cJSON_Delete(report);
}

static uint8_t *grey_image(int w, int h) {
    uint8_t *px = malloc((size_t)w * h * 3);
    assert_non_null(px);
    memset(px, 128, (size_t)w * h * 3);
    return px;
}

static void draw_survives_bad_boxes(void **state) {
    (void)state;
    enum { W = 64, H = 48 };
    uint8_t *px = grey_image(W, H);
    const char *const classes[] = {"cat", "dog"};
    lathe_drawn_box boxes[] = {
        {4, 4, 30, 30, 0.87f, 0, LATHE_DRAWN_PREDICTION},
        {10, 10, 40, 40, -1, 1, LATHE_DRAWN_TRUTH},
        {20, 5, 60, 45, -1, 0, LATHE_DRAWN_MISSED},
        {NAN, 0, 10, 10, 0.5f, 0, LATHE_DRAWN_PREDICTION},
        {0, 0, INFINITY, 10, 0.5f, 1, LATHE_DRAWN_TRUTH},
        {-1e30f, -1e30f, 1e30f, 1e30f, 0.4f, 1, LATHE_DRAWN_PREDICTION},
        {-50, -50, -10, -10, 0.3f, 0, LATHE_DRAWN_PREDICTION},
        {500, 500, 900, 900, 0.3f, 1, LATHE_DRAWN_MISSED},
        {50, 40, 10, 5, 0.2f, 7, LATHE_DRAWN_PREDICTION}, /* reversed corners, a label past the classes */
        {30, 30, 50, 40, NAN, -3, LATHE_DRAWN_MISSED},
    };
    lathe_png plain, drawn;
    assert_int_equal(lathe_draw_boxes(px, W, H, NULL, 0, classes, 2, &plain), 0);
    assert_int_equal(lathe_draw_boxes(px, W, H, boxes, sizeof boxes / sizeof *boxes, classes, 2, &drawn), 0);
    assert_true(drawn.len > 8 && memcmp(drawn.data, png_magic, 8) == 0);
    assert_true(plain.len != drawn.len || memcmp(plain.data, drawn.data, plain.len) != 0);
    lathe_png_free(&plain);
    assert_int_equal(lathe_draw_boxes(px, W, H, boxes, 3, NULL, 0, &plain), 0); /* no class names: "class N" */
    lathe_png_free(&plain);
    lathe_png bad;
    lathe_drawn_box odd = {0, 0, 5, 5, 0.5f, 0, 3};
    assert_int_equal(lathe_draw_boxes(px, W, H, &odd, 1, classes, 2, &bad), -LATHE_EINVAL);
    assert_int_equal(lathe_draw_boxes(NULL, W, H, NULL, 0, classes, 2, &bad), -LATHE_EINVAL);
    assert_int_equal(lathe_draw_boxes(px, 0, H, NULL, 0, classes, 2, &bad), -LATHE_EINVAL);
    assert_int_equal(lathe_draw_boxes(px, W, H, NULL, 2, classes, 2, &bad), -LATHE_EINVAL);
    char *dir = test_tempdir("draw"), path[4200];
    snprintf(path, sizeof path, "%s/boxes.png", dir);
    assert_int_equal(lathe_png_write_file(&drawn, path), 0);
    size_t len = 0;
    uint8_t *back = test_read_file(path, &len);
    assert_true(back && len == drawn.len && memcmp(back, drawn.data, len) == 0);
    free(back);
    lathe_png_free(&drawn);
    assert_int_equal(lathe_png_write_file(&drawn, path), -LATHE_EINVAL);
    test_rmtree(dir);
    free(dir);
    free(px);
}

/* the PNG of a drawing with nothing drawn holds the image's own pixels: cairo's 0x00RRGGBB words
 * reach the encoder in R, G, B order on every row (a width whose stride is padded included) */
static void drawn_png_keeps_the_pixels(void **state) {
    (void)state;
    enum { W = 37, H = 11 };
    uint8_t px[W * H * 3];
    for (int i = 0; i < W * H * 3; i++) px[i] = (uint8_t)(i * 7 + i / 3);
    lathe_png png;
    assert_int_equal(lathe_draw_boxes(px, W, H, NULL, 0, NULL, 0, &png), 0);
    lathe_image back = {0};
    lathe_decode_opts opts = {.channels = 3};
    assert_int_equal(lathe_image_decode(png.data, png.len, &opts, &back, NULL), 0);
    assert_int_equal(back.width, W);
    assert_int_equal(back.height, H);
    assert_memory_equal(back.pixels, px, sizeof px);
    lathe_image_free(&back);
    lathe_png_free(&png);
}

/* RFC 4648's vectors, and a long input that passes the writer's buffer, against a plain encoder */
static void base64_vectors(void **state) {
    (void)state;
    static const char *const in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *const want[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    char *text = NULL;
    size_t len = 0;
    for (int i = 0; i < 7; i++) {
        FILE *f = open_memstream(&text, &len);
        assert_non_null(f);
        lathe_base64_write(f, (const unsigned char *)in[i], strlen(in[i]));
        fclose(f);
        assert_string_equal(text, want[i]);
        free(text);
    }
    enum { N = 10001 };
    static unsigned char data[N];
    static char expect[(N + 2) / 3 * 4 + 1];
    static const char digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (int i = 0; i < N; i++) data[i] = (unsigned char)(i * 31 + 7);
    size_t o = 0;
    for (int i = 0; i < N; i += 3) {
        int b1 = i + 1 < N ? data[i + 1] : 0, b2 = i + 2 < N ? data[i + 2] : 0;
        expect[o++] = digits[data[i] >> 2];
        expect[o++] = digits[(data[i] & 3) << 4 | b1 >> 4];
        expect[o++] = i + 1 < N ? digits[(b1 & 15) << 2 | b2 >> 6] : '=';
        expect[o++] = i + 2 < N ? digits[b2 & 63] : '=';
    }
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    lathe_base64_write(f, data, N);
    fclose(f);
    assert_int_equal(len, o);
    assert_memory_equal(text, expect, o);
    free(text);
}

static void plot_lines_png(void **state) {
    (void)state;
    lathe_plot_frame f = {"lines", "x", "y", 320, 200};
    double x[] = {1, 2, 3, 4}, y[] = {0.5, NAN, 0.7, 0.9, -1, 2, 3, 1};
    const char *series[] = {"one", "two"};
    lathe_png png;
    assert_int_equal(lathe_plot_lines(&f, x, 4, y, 2, series, &png), 0);
    assert_true(memcmp(png.data, png_magic, 8) == 0);
    lathe_png_free(&png);
    assert_int_equal(lathe_plot_lines(&f, x, 1, y, 1, NULL, &png), 0); /* one point, no legend */
    lathe_png_free(&png);
    double nan_x[] = {NAN, NAN};
    assert_int_equal(lathe_plot_lines(&f, nan_x, 2, y, 1, NULL, &png), -LATHE_EINVAL);
    assert_int_equal(lathe_plot_lines(&f, x, 0, y, 1, NULL, &png), -LATHE_EINVAL);
}

static int contains(const char *dir, const char *file, const char *needle) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    size_t len = 0;
    uint8_t *text = test_read_file(path, &len);
    if (!text) return -1;
    char *z = realloc(text, len + 1);
    assert_non_null(z);
    z[len] = '\0';
    int n = 0;
    for (const char *p = z; (p = strstr(p, needle)); p++) n++;
    free(z);
    return n;
}

static void report_files(void **state) {
    (void)state;
    lathe_coco_data d = hand_data();
    cJSON *report = extended_report(&d);
    cJSON *training = cJSON_AddArrayToObject(report, "training");
    for (int e = 1; e <= 3; e++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "epoch", e);
        cJSON_AddNumberToObject(o, "loss", 3.0 / e);
        if (e < 3) cJSON_AddNumberToObject(o, "val_map", 0.1 * e);
        cJSON_AddItemToArray(training, o);
    }
    uint8_t *px = grey_image(40, 30);
    lathe_drawn_box box = {5, 5, 20, 20, 0.5f, 1, LATHE_DRAWN_PREDICTION};
    lathe_det_sample_image item = {"a <sample>", {0}};
    assert_int_equal(lathe_draw_boxes(px, 40, 30, &box, 1, (const char *const *)names, 2, &item.png), 0);
    lathe_det_samples samples = {&item, 1};
    char *root = test_tempdir("det-report"), dir[4200];
    snprintf(dir, sizeof dir, "%s/nested/out", root);
    assert_int_equal(lathe_det_report_write(report, "Run <1>", &samples, dir), 0);
    /* images: one PR chart, the confusion matrix, loss and val_map, the sample */
    assert_int_equal(contains(dir, "report.html", "<img"), 5);
    assert_true(contains(dir, "report.html", "<td>cat</td>") == 1 && contains(dir, "report.html", "<td>dog</td>") == 1);
    assert_int_equal(contains(dir, "report.html", "Run &lt;1&gt;"), 2);
    assert_int_equal(contains(dir, "report.html", "<figcaption>a &lt;sample&gt;</figcaption>"), 1);
    assert_int_equal(contains(dir, "report.html", "<td>AR_large</td>"), 1);
    assert_int_equal(contains(dir, "report.md", "<img"), 0);
    assert_int_equal(contains(dir, "report.md", "| metric | value |\n| --- | --- |\n| AP |"), 1);
    assert_int_equal(contains(dir, "report.md", "\n| cat | "), 2); /* the class table and the matrix */
    assert_int_equal(contains(dir, "report.md", "\n| cat | 1 | 0 | 2 |"), 1);
    assert_int_equal(contains(dir, "report.md", "| background | 0 | 2 | 0 |"), 1);
    char path[4200];
    snprintf(path, sizeof path, "%s/report.json", dir);
    size_t len = 0;
    uint8_t *json = test_read_file(path, &len);
    assert_non_null(json);
    cJSON *back = cJSON_ParseWithLength((const char *)json, len);
    assert_non_null(cJSON_GetObjectItem(back, "confusion"));
    assert_non_null(cJSON_GetObjectItem(back, "training"));
    cJSON_Delete(back);
    free(json);
    /* a COCO report alone, no samples: the sections it lacks are left out */
    lathe_coco_result r;
    assert_int_equal(lathe_coco_evaluate(&d, &r), 0);
    cJSON *plain = lathe_coco_report(&d, &r);
    lathe_coco_result_free(&r);
    assert_int_equal(lathe_det_report_write(plain, NULL, NULL, dir), 0);
    assert_int_equal(contains(dir, "report.html", "<img"), 1);
    assert_int_equal(contains(dir, "report.html", "Confusion"), 0);
    assert_int_equal(contains(dir, "report.md", "\n| cat | "), 1);
    assert_int_equal(lathe_det_report_write(NULL, NULL, NULL, dir), -LATHE_EINVAL);
    cJSON_Delete(plain);
    cJSON_Delete(report);
    lathe_png_free(&item.png);
    free(px);
    test_rmtree(root);
    free(root);
}

/* ---- sample images from a dataset ---- */

enum { S = 128 }; /* stored side: sources of 256 x 192 letterboxed at scale 0.5, 16 pixels of pad on top */

/* Sample g: grey, sources of 256 x 192 letterboxed at scale 0.5 with 16 pixels of pad on top. */
static size_t fill_grey(void *ctx, uint64_t g, int split, uint8_t *px, lathe_box *boxes, lathe_meta *meta,
                        int32_t *label) {
    static const int64_t ids[] = {10, 20, 30, -1};
    (void)ctx, (void)split, (void)boxes, (void)label;
    uint8_t *grey = grey_image(S, S);
    memcpy(px, grey, (size_t)S * S * 3);
    free(grey);
    meta->image_id = ids[g], meta->orig_width = 256, meta->orig_height = 192;
    meta->scale_x = meta->scale_y = 0.5f, meta->pad_y = 16;
    return 0;
}

/* Shard 0 (train): sample 0, image id 10. Shard 1 (val): samples 1..3, image ids 20, 30 and none
 * (so its id is its index, 3). All grey. */
static char *write_grey_dataset(void) {
    static const char *const classes[] = {"cat", "dog"};
    static const test_shard shards[] = {{LATHE_SPLIT_TRAIN, 1}, {LATHE_SPLIT_VAL, 3}};
    return test_write_pixels_dataset("det-samples", S, S, classes, 2, shards, 2, fill_grey, NULL);
}

static const uint8_t *pixel(const lathe_image *img, int x, int y) {
    return img->pixels + ((size_t)y * img->width + x) * 3;
}

static void samples_from_dataset(void **state) {
    (void)state;
    char *dir = write_grey_dataset();
    lathe_dataset *ds;
    assert_int_equal(lathe_dataset_open(dir, &ds), 0);
    /* Image 30: a dog missed and a cat where nothing is (2 errors). Images 10 (the train split) and
     * 99 (not in the dataset): a miss each, passed over. Images 3 (the sample without an id: its
     * index) and 20: a cat hit each, no error, so in id order; image 20 also has a dog under the
     * threshold, not drawn. */
    int64_t img[] = {3, 10, 20, 30, 99}, cats[] = {0, 1};
    lathe_coco_ann g[] = {gt_box(1, 20, 0, 40, 40, 120, 100, 0), gt_box(2, 30, 1, 0, 0, 50, 50, 0),
                          gt_box(3, 99, 0, 0, 0, 10, 10, 0), gt_box(4, 10, 0, 0, 0, 10, 10, 0),
                          gt_box(5, 3, 0, 0, 0, 50, 50, 0)};
    lathe_coco_ann t[] = {dt_box(1, 20, 0, 40, 40, 120, 100, 0.9), dt_box(2, 30, 0, 150, 100, 40, 40, 0.8),
                          dt_box(3, 20, 1, 100, 100, 60, 60, 0.1), dt_box(4, 3, 0, 0, 0, 50, 50, 0.7)};
    lathe_coco_data d = {img, 5, cats, names, 2, g, t, 5, 4};
    lathe_det_samples s;
    assert_int_equal(lathe_det_report_samples(ds, LATHE_SPLIT_VAL, &d, 0.25f, 5, &s), 0);
    assert_int_equal(s.n, 3);
    assert_string_equal(s.items[0].caption, "image 30 (img2.png): 1 missed, 1 false positive");
    assert_string_equal(s.items[1].caption, "image 3 (img3.png): 0 missed, 0 false positives");
    assert_string_equal(s.items[2].caption, "image 20 (img1.png): 0 missed, 0 false positives");
    lathe_decode_opts opts = {0};
    opts.channels = 3;
    lathe_image shown;
    /* the cat at source (40, 40)-(160, 140) is stored at (20, 36)-(80, 86): its left edge drawn in
     * the first class colour (blue), its inside untouched */
    assert_int_equal(lathe_image_decode(s.items[2].png.data, s.items[2].png.len, &opts, &shown, NULL), 0);
    assert_true(shown.width == S && shown.height == S);
    assert_true(pixel(&shown, 20, 61)[0] < 90 && pixel(&shown, 20, 61)[2] > 150);
    assert_memory_equal(pixel(&shown, 50, 61), "\x80\x80\x80", 3);
    assert_memory_equal(pixel(&shown, 50, 80), "\x80\x80\x80", 3); /* the dog under the threshold is not drawn */
    lathe_image_free(&shown);
    /* the missed dog at source (0, 0)-(50, 50) is stored at (0, 16)-(25, 41): its top edge red */
    assert_int_equal(lathe_image_decode(s.items[0].png.data, s.items[0].png.len, &opts, &shown, NULL), 0);
    const uint8_t *red = pixel(&shown, 3, 16);
    assert_true(red[0] > 200 && red[1] < 40 && red[2] < 40);
    lathe_image_free(&shown);
    lathe_det_samples_free(&s);
    assert_null(s.items);
    assert_int_equal(lathe_det_report_samples(ds, LATHE_SPLIT_VAL, &d, 0.25f, 1, &s), 0);
    assert_int_equal(s.n, 1);
    lathe_det_samples_free(&s);
    assert_int_equal(lathe_det_report_samples(ds, LATHE_SPLIT_TEST, &d, 0.25f, 3, &s), 0);
    assert_int_equal(s.n, 0);
    assert_int_equal(lathe_det_report_samples(ds, LATHE_SPLIT_VAL, &d, 0.25f, -1, &s), -LATHE_EINVAL);
    lathe_dataset_close(ds);
    test_rmtree(dir);
    free(dir);
}

/* Five val images of a line (good, scratch, dent; label = the image's id % 3 below): verdicts
 * from the best detection at 0.25, right when they are the label or a class of one of the image's
 * boxes. */
static size_t fill_labelled(void *ctx, uint64_t g, int split, uint8_t *px, lathe_box *boxes, lathe_meta *meta,
                            int32_t *label) {
    static const int32_t labels[] = {0, 1, 1, 2, 0};
    (void)ctx, (void)split, (void)boxes;
    memset(px, 128, (size_t)16 * 16 * 3);
    *label = labels[g];
    meta->image_id = (int64_t)g;
    return 0;
}

static void verdicts_accept_any_kind_shown(void **state) {
    (void)state;
    static const char *const classes[] = {"good", "scratch", "dent"};
    static const test_shard shards[] = {{LATHE_SPLIT_VAL, 5}};
    char *dir = test_write_pixels_dataset("det-verdicts", 16, 16, classes, 3, shards, 1, fill_labelled, NULL);
    lathe_dataset *ds;
    assert_int_equal(lathe_dataset_open(dir, &ds), 0);
    static char good[] = "good", scratch[] = "scratch", dent[] = "dent";
    char *line[] = {good, scratch, dent};
    /* 0 good, nothing detected: right. 1 scratch with a scratch and a dent, called dent: right, not
     * the label. 2 scratch, called dent at 0.9 over a scratch at 0.6: wrong. 3 dent, found at 0.2
     * only: called good, wrong. 4 good, a scratch at 0.5: wrong. A box of image 9 (not in the
     * dataset) and a detection there change nothing. */
    int64_t img[] = {0, 1, 2, 3, 4, 9}, cats[] = {0, 1, 2};
    lathe_coco_ann g[] = {gt_box(1, 1, 1, 0, 0, 4, 4, 0), gt_box(2, 1, 2, 8, 8, 4, 4, 0), gt_box(3, 2, 1, 0, 0, 4, 4, 0),
                          gt_box(4, 3, 2, 0, 0, 4, 4, 0), gt_box(5, 9, 2, 0, 0, 4, 4, 0)};
    lathe_coco_ann t[] = {dt_box(1, 1, 2, 8, 8, 4, 4, 0.8), dt_box(2, 2, 2, 0, 0, 4, 4, 0.9),
                          dt_box(3, 2, 1, 0, 0, 4, 4, 0.6), dt_box(4, 3, 2, 0, 0, 4, 4, 0.2),
                          dt_box(5, 4, 1, 0, 0, 4, 4, 0.5), dt_box(6, 9, 1, 0, 0, 4, 4, 0.9)};
    lathe_coco_data d = {img, 6, cats, line, 3, g, t, 5, 6};
    cJSON *report = cJSON_CreateObject();
    assert_int_equal(lathe_det_report_verdicts(ds, LATHE_SPLIT_VAL, &d, 0.25, report), 0);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(report, "image_level");
    assert_non_null(v);
    assert_float_equal(cJSON_GetObjectItemCaseSensitive(v, "images")->valuedouble, 5, 0);
    assert_float_equal(cJSON_GetObjectItemCaseSensitive(v, "accuracy")->valuedouble, 0.4, 1e-12);
    assert_float_equal(cJSON_GetObjectItemCaseSensitive(v, "label_accuracy")->valuedouble, 0.2, 1e-12);
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(v, "matrix");
    static const double want[3][3] = {{1, 1, 0}, {0, 0, 2}, {1, 0, 0}}; /* rows labels, columns verdicts */
    for (int r = 0; r < 3; r++)
        for (int c = 0; c < 3; c++)
            assert_float_equal(cJSON_GetArrayItem(cJSON_GetArrayItem(m, r), c)->valuedouble, want[r][c], 0);
    /* at 0.1 image 3's dent counts: three right, two of them the label */
    assert_int_equal(lathe_det_report_verdicts(ds, LATHE_SPLIT_VAL, &d, 0.1, report), 0);
    v = cJSON_GetObjectItemCaseSensitive(report, "image_level");
    assert_float_equal(cJSON_GetObjectItemCaseSensitive(v, "accuracy")->valuedouble, 0.6, 1e-12);
    assert_float_equal(cJSON_GetObjectItemCaseSensitive(v, "label_accuracy")->valuedouble, 0.4, 1e-12);
    cJSON_Delete(report);
    lathe_dataset_close(ds);
    test_rmtree(dir);
    free(dir);
}

/* A verdict's class is the one whose detections at or above the threshold sum to the most: image 2
 * (a scratched part) with a dent at 0.8 and scratches at 0.5 and 0.45 is scratched at 0.25, dented
 * at 0.5, where the second scratch no longer counts; image 1's lone dent over nothing else is a dent. */
static void verdict_class_is_the_largest_sum_of_scores(void **state) {
    (void)state;
    static const char *const classes[] = {"good", "scratch", "dent"};
    static const test_shard shards[] = {{LATHE_SPLIT_VAL, 5}};
    char *dir = test_write_pixels_dataset("det-verdict-sum", 16, 16, classes, 3, shards, 1, fill_labelled, NULL);
    lathe_dataset *ds;
    assert_int_equal(lathe_dataset_open(dir, &ds), 0);
    static char good[] = "good", scratch[] = "scratch", dent[] = "dent";
    char *line[] = {good, scratch, dent};
    int64_t img[] = {0, 1, 2, 3, 4}, cats[] = {0, 1, 2};
    lathe_coco_ann g[] = {gt_box(1, 2, 1, 0, 0, 4, 4, 0), gt_box(2, 2, 1, 8, 8, 4, 4, 0)};
    lathe_coco_ann t[] = {dt_box(1, 2, 2, 4, 4, 4, 4, 0.8), dt_box(2, 2, 1, 0, 0, 4, 4, 0.5),
                          dt_box(3, 2, 1, 8, 8, 4, 4, 0.45), dt_box(4, 1, 2, 0, 0, 4, 4, 0.7)};
    lathe_coco_data d = {img, 5, cats, line, 3, g, t, 2, 4};
    cJSON *report = cJSON_CreateObject();
    const double conf[2] = {0.25, 0.5}, accuracy[2] = {0.6, 0.4}; /* images 0 and 4 good and found so; 3 missed */
    for (int k = 0; k < 2; k++) {
        assert_int_equal(lathe_det_report_verdicts(ds, LATHE_SPLIT_VAL, &d, conf[k], report), 0);
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(report, "image_level");
        assert_float_equal(cJSON_GetObjectItemCaseSensitive(v, "accuracy")->valuedouble, accuracy[k], 1e-12);
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(v, "matrix");
        /* label scratch: image 1 (its dent is not shown by a box: wrong either way) and image 2 */
        const double want[3] = {0, k ? 0 : 1, k ? 2 : 1};
        for (int c = 0; c < 3; c++) assert_float_equal(cJSON_GetArrayItem(cJSON_GetArrayItem(m, 1), c)->valuedouble, want[c], 0);
    }
    cJSON_Delete(report);
    lathe_dataset_close(ds);
    test_rmtree(dir);
    free(dir);
}

/* The verdict threshold kept from val's accuracies: the middle of the longest run of the best. */
static void verdict_threshold_is_the_middle_of_the_best_run(void **state) {
    (void)state;
    double t[19];
    for (int k = 0; k < 19; k++) t[k] = (k + 1) / 20.0;
    /* the stop-40 demo's val photos: 0.949 from 0.25 to 0.50; of the middles 0.35 and 0.40, 0.35 */
    const double demo[19] = {.797, .847, .915, .932, .949, .949, .949, .949, .949, .949,
                             .932, .932, .915, .932, .864, .763, .661, .525, .390};
    assert_int_equal(lathe_det_verdict_pick(demo, t, 19), 6);
    /* two runs of the best: 0.20-0.25 and the longer 0.50-0.65, whose middles are 0.55 and 0.60 */
    const double two[19] = {.46, .58, .65, .69, .69, .65, .65, .65, .65, .69, .69, .69, .69, .65, .58, .58, .54, .46, .46};
    assert_int_equal(lathe_det_verdict_pick(two, t, 19), 10);
    /* single best points at 0.15 and 0.30: the nearer 0.25; one best point: it */
    const double apart[19] = {.56, .63, .64, .63, .63, .64, .59, .54, .52, .51, .47, .46, .42, .41, .37, .37, .37, .34, .32};
    assert_int_equal(lathe_det_verdict_pick(apart, t, 19), 5);
    const double one[3] = {.5, .7, .6};
    assert_int_equal(lathe_det_verdict_pick(one, t, 3), 1);
    assert_int_equal(lathe_det_verdict_pick(one, t, 0), -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(confusion_by_hand),    cmocka_unit_test(best_f1_by_hand),
        cmocka_unit_test(best_f1_without_hits), cmocka_unit_test(draw_survives_bad_boxes),
        cmocka_unit_test(plot_lines_png),       cmocka_unit_test(report_files),
        cmocka_unit_test(drawn_png_keeps_the_pixels), cmocka_unit_test(base64_vectors),
        cmocka_unit_test(samples_from_dataset), cmocka_unit_test(nearby_matching_equals_every_pair),
        cmocka_unit_test(verdicts_accept_any_kind_shown), cmocka_unit_test(verdict_class_is_the_largest_sum_of_scores),
        cmocka_unit_test(verdict_threshold_is_the_middle_of_the_best_run),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
