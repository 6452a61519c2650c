/* test_tile_merge.c - merging one image's tile detections (libcore/det/tile_merge.h) on hand-built
 * cases: an image 200 x 100 cut into two tiles of 120 x 100 that overlap on x in [80, 120). An
 * object on the seam is found once, with the whole view's box, whether the whole view or the cut
 * piece scores higher, and once (the union of the pieces) when no tile sees it whole; an object
 * seen whole by both tiles is found once; a cut view scores half; two objects side by side in one
 * tile, objects of different classes, and a box at the image's own border are never merged; the
 * order by score, max_det and the score floor hold. */
#include "libcore/det/tile_merge.h"
#include "testutil.h"

static const lathe_tile_rect LEFT = {0, 0, 120, 100}, RIGHT = {80, 0, 200, 100};

static lathe_coco_ann det(double x1, double y1, double x2, double y2, double score, int cls) {
    lathe_coco_ann a = {0};
    a.image_id = 7, a.category_id = cls, a.score = score;
    a.x = x1, a.y = y1, a.w = x2 - x1, a.h = y2 - y1, a.area = a.w * a.h;
    return a;
}

static size_t merge(lathe_coco_ann *dt, const lathe_tile_rect *tiles, size_t n, int max_det) {
    lathe_tile_merge_opts o;
    lathe_tile_merge_defaults(&o);
    o.max_det = max_det;
    size_t kept = 99;
    assert_int_equal(lathe_tile_merge(dt, tiles, n, 200, 100, &o, &kept), 0);
    return kept;
}

static void assert_box(const lathe_coco_ann *a, double x1, double y1, double x2, double y2) {
    assert_float_equal(a->x, x1, 1e-9);
    assert_float_equal(a->y, y1, 1e-9);
    assert_float_equal(a->x + a->w, x2, 1e-9);
    assert_float_equal(a->y + a->h, y2, 1e-9);
}

/* Object x in [100, 140): whole in the right tile; the left tile's edge at 120 cuts it to [100, 120). */
static void seam_object_whole_in_one_tile(void **state) {
    (void)state;
    /* the piece scores 0.9, halved: the whole view (0.8) comes first and the piece goes */
    lathe_coco_ann dt[2] = {det(100, 40, 120, 60, 0.9, 1), det(100, 40, 140, 60, 0.8, 1)};
    lathe_tile_rect tiles[2] = {LEFT, RIGHT};
    assert_int_equal(merge(dt, tiles, 2, 100), 1);
    assert_box(&dt[0], 100, 40, 140, 60);
    assert_float_equal(dt[0].score, 0.8, 1e-12);
    /* the piece still outscores the whole view (0.98 halved against 0.3): the whole view's box, at
     * the better score */
    lathe_coco_ann strong[2] = {det(100, 40, 120, 60, 0.98, 1), det(100, 40, 140, 60, 0.3, 1)};
    assert_int_equal(merge(strong, tiles, 2, 100), 1);
    assert_box(&strong[0], 100, 40, 140, 60);
    assert_float_equal(strong[0].score, 0.49, 1e-12);
}

/* A cut view alone: kept, at half its score; under the floor after halving, dropped. */
static void a_cut_view_scores_half(void **state) {
    (void)state;
    lathe_coco_ann dt[2] = {det(100, 40, 120, 60, 0.8, 1), det(10, 10, 30, 30, 0.5, 1)};
    lathe_tile_rect tiles[2] = {LEFT, LEFT};
    assert_int_equal(merge(dt, tiles, 2, 100), 2);
    assert_float_equal(dt[0].score, 0.5, 0), assert_float_equal(dt[1].score, 0.4, 1e-12);
    assert_box(&dt[1], 100, 40, 120, 60);
    lathe_coco_ann floor[2] = {det(100, 40, 120, 60, 0.8, 1), det(10, 10, 30, 30, 0.5, 1)};
    lathe_tile_merge_opts o;
    lathe_tile_merge_defaults(&o);
    o.min_score = 0.45;
    size_t kept = 0;
    assert_int_equal(lathe_tile_merge(floor, tiles, 2, 200, 100, &o, &kept), 0);
    assert_int_equal(kept, 1);
    assert_float_equal(floor[0].score, 0.5, 0);
}

/* Object x in [60, 140): wider than the overlap, so each tile sees a cut piece of it. */
static void seam_object_cut_in_both_tiles(void **state) {
    (void)state;
    lathe_coco_ann dt[2] = {det(60, 30, 120, 70, 0.6, 0), det(80, 30, 140, 70, 0.7, 0)};
    lathe_tile_rect tiles[2] = {LEFT, RIGHT};
    assert_int_equal(merge(dt, tiles, 2, 100), 1);
    assert_box(&dt[0], 60, 30, 140, 70);
    assert_float_equal(dt[0].score, 0.35, 1e-12); /* the better piece's, halved */
}

/* Object x in [90, 110): inside the overlap, whole in both tiles: a duplicate, suppressed by IoU. */
static void object_seen_whole_twice(void **state) {
    (void)state;
    lathe_coco_ann dt[2] = {det(90, 10, 110, 30, 0.5, 1), det(90.5, 10, 110.5, 30.5, 0.55, 1)};
    lathe_tile_rect tiles[2] = {LEFT, RIGHT};
    assert_int_equal(merge(dt, tiles, 2, 100), 1);
    assert_box(&dt[0], 90.5, 10, 110.5, 30.5);
}

/* Neither cut by a seam nor the same object: kept apart. Same tile, other class, the image border. */
static void what_is_not_merged(void **state) {
    (void)state;
    /* two touching objects in one tile, the second reaching the left tile's inner edge */
    lathe_coco_ann a[2] = {det(70, 10, 100, 40, 0.9, 0), det(95, 12, 120, 38, 0.8, 0)};
    lathe_tile_rect ta[2] = {LEFT, LEFT};
    assert_int_equal(merge(a, ta, 2, 100), 2);
    /* a cut piece and a whole box of another class */
    lathe_coco_ann b[2] = {det(100, 40, 120, 60, 0.9, 1), det(100, 40, 140, 60, 0.8, 2)};
    lathe_tile_rect tb[2] = {LEFT, RIGHT};
    assert_int_equal(merge(b, tb, 2, 100), 2);
    /* boxes at the image's own border (x 0 and 200) are not cut by a tile: two objects */
    lathe_coco_ann c[2] = {det(0, 0, 20, 20, 0.9, 1), det(180, 80, 200, 100, 0.8, 1)};
    lathe_tile_rect tc[2] = {LEFT, RIGHT};
    assert_int_equal(merge(c, tc, 2, 100), 2);
    /* a cut piece that overlaps a box of the other tile only a little (IoS < 0.5) stays */
    lathe_coco_ann d[2] = {det(100, 40, 120, 60, 0.9, 1), det(115, 50, 160, 90, 0.8, 1)};
    lathe_tile_rect td[2] = {LEFT, RIGHT};
    assert_int_equal(merge(d, td, 2, 100), 2);
}

static void order_and_max_det(void **state) {
    (void)state;
    lathe_coco_ann dt[4] = {det(0, 0, 10, 10, 0.2, 0), det(20, 0, 30, 10, 0.9, 0), det(40, 0, 50, 10, 0.5, 0),
                            det(150, 0, 160, 10, 0.7, 0)};
    lathe_tile_rect tiles[4] = {LEFT, LEFT, LEFT, RIGHT};
    assert_int_equal(merge(dt, tiles, 4, 3), 3);
    assert_float_equal(dt[0].score, 0.9, 0), assert_float_equal(dt[1].score, 0.7, 0), assert_float_equal(dt[2].score, 0.5, 0);
    size_t kept = 5;
    lathe_tile_merge_opts o;
    lathe_tile_merge_defaults(&o);
    assert_int_equal(lathe_tile_merge(dt, tiles, 0, 200, 100, &o, &kept), 0);
    assert_int_equal(kept, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(seam_object_whole_in_one_tile), cmocka_unit_test(a_cut_view_scores_half),
        cmocka_unit_test(seam_object_cut_in_both_tiles),
        cmocka_unit_test(object_seen_whole_twice),       cmocka_unit_test(what_is_not_merged),
        cmocka_unit_test(order_and_max_det),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
