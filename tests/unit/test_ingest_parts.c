/* test_ingest_parts.c - the pieces under ingest: letterbox and tile geometry, resampling, dHash,
 * sensor CSVs, catalog matching and class numbering, archive walking and its safety checks. */
#include "testutil.h"

#include <archive.h>
#include <archive_entry.h>
#include <math.h>
#include <sys/stat.h>
#include <unistd.h>

#include "libcore/base/error.h"
#include "libcore/base/hashmap.h"
#include "libcore/data/catalog.h"
#include "libcore/data/ingest.h"
#include "libcore/data/sensors.h"
#include "libcore/data/transform.h"
#include "libcore/io/archive.h"

static void letterbox_geometry(void **state) {
    (void)state;
    lathe_letterbox p = lathe_letterbox_plan(1280, 960, 640);
    assert_int_equal(p.width, 640);
    assert_int_equal(p.height, 480);
    assert_true(fabsf(p.scale_x - 0.5f) < 1e-6f);
    assert_true(fabsf(p.pad_y - 80) < 1e-6f);
    assert_true(fabsf(p.pad_x) < 1e-6f);
    p = lathe_letterbox_plan(100, 1000, 64); /* tall: 6.4 wide rounds to 6, centred */
    assert_int_equal(p.height, 64);
    assert_int_equal(p.width, 6);
    assert_true(fabsf(p.pad_x - 29) < 1e-6f);
    p = lathe_letterbox_plan(5000, 1, 64); /* never below one pixel */
    assert_int_equal(p.height, 1);
}

static void letterbox_pixels_and_fill(void **state) {
    (void)state;
    lathe_image src;
    assert_int_equal(lathe_image_alloc(&src, 8, 4, 3), 0);
    memset(src.pixels, 200, 8 * 4 * 3);
    lathe_letterbox p = lathe_letterbox_plan(8, 4, 8);
    uint8_t canvas[8 * 8 * 3];
    assert_int_equal(lathe_letterbox_into(&src, &p, 8, LATHE_LETTERBOX_FILL, 0, canvas), 0);
    assert_int_equal(canvas[0], LATHE_LETTERBOX_FILL);           /* row 0: padding */
    assert_int_equal(canvas[(2 * 8 + 3) * 3], 200);               /* rows 2..5: the image */
    assert_int_equal(canvas[(7 * 8 + 7) * 3 + 2], LATHE_LETTERBOX_FILL);
    lathe_image_free(&src);
}

static void resize_keeps_constant_images_and_averages(void **state) {
    (void)state;
    lathe_image src;
    assert_int_equal(lathe_image_alloc(&src, 100, 60, 1), 0);
    for (int i = 0; i < 100 * 60; i++) src.pixels[i] = (uint8_t)(i % 100 < 50 ? 0 : 200);
    uint8_t out[10 * 6];
    assert_int_equal(lathe_resize_into(&src, 10, 6, 0, out, 10), 0);
    assert_int_equal(out[0], 0);
    assert_int_equal(out[9], 200);
    assert_true(out[4] < 60 && out[5] > 140); /* the edge stays an edge: antialiased, not smeared */
    uint8_t up[200 * 120];
    assert_int_equal(lathe_resize_into(&src, 200, 120, 1, up, 200), 0); /* nearest: only old values */
    for (int i = 0; i < 200 * 120; i++) assert_true(up[i] == 0 || up[i] == 200);
    /* stripes 2 px wide shrunk 10x: antialiased, every output pixel is near their mean (100); a filter
     * not widened by the shrink factor would see one stripe only (0 or 200) */
    for (int i = 0; i < 100 * 60; i++) src.pixels[i] = (uint8_t)(i % 4 < 2 ? 0 : 200);
    assert_int_equal(lathe_resize_into(&src, 10, 6, 0, out, 10), 0);
    for (int i = 0; i < 10 * 6; i++) assert_true(out[i] > 80 && out[i] < 120);
    lathe_image_free(&src);
}

static void tile_origins_cover_the_image(void **state) {
    (void)state;
    int o[16];
    assert_int_equal(lathe_tile_origins(1000, 512, 64, o, 16), 3);
    assert_int_equal(o[0], 0);
    assert_int_equal(o[1], 448);
    assert_int_equal(o[2], 488); /* the last tile ends at the edge */
    assert_int_equal(lathe_tile_origins(300, 512, 0, o, 16), 1);
    assert_int_equal(lathe_tile_origins(1024, 512, 0, o, 16), 2);
    assert_int_equal(o[1], 512);
}

static void dhash_is_stable_under_brightness(void **state) {
    (void)state;
    lathe_image a, b;
    assert_int_equal(lathe_image_alloc(&a, 64, 48, 3), 0);
    assert_int_equal(lathe_image_alloc(&b, 64, 48, 3), 0);
    for (int i = 0; i < 64 * 48 * 3; i++) {
        int x = (i / 3) % 64, y = (i / 3) / 64;
        a.pixels[i] = (uint8_t)((x * 7 + y * 3) % 97 + 50);
        b.pixels[i] = (uint8_t)(a.pixels[i] + 30);
    }
    assert_int_equal(lathe_dhash(&a), lathe_dhash(&b));
    memset(b.pixels, 0, 64 * 48 * 3);
    assert_int_not_equal(lathe_dhash(&a), lathe_dhash(&b));
    lathe_image_free(&a);
    lathe_image_free(&b);
}

static void sensors_parse_and_reject(void **state) {
    (void)state;
    const char *good = "t,vib_x,temp\n0,0.5,20\n1,nan,21\n2,,22\n";
    lathe_sensor_layout l;
    assert_int_equal(lathe_sensors_layout(good, strlen(good), &l), 0);
    assert_int_equal(l.steps, 3);
    assert_int_equal(l.channels, 2);
    assert_string_equal(l.names[1], "temp");
    float v[6];
    int nans;
    assert_int_equal(lathe_sensors_parse(good, strlen(good), &l, v, &nans), 0);
    assert_int_equal(nans, 2);
    assert_true(v[0] == 0.5f && isnan(v[2]) && v[5] == 22.0f);
    const char *bad[] = {
        "t,vib_x,temp\n0,0.5,20\n1,abc,21\n2,1,22\n",  /* text */
        "t,vib_x,temp\n0,0.5,20\n1,inf,21\n2,1,22\n",  /* infinite */
        "t,vib_x,temp\n0,0.5,20\n1,1\n2,1,22\n",       /* short row */
        "t,vib_x,temp\n0,0.5,20\n",                    /* too few rows */
        "t,vib_y,temp\n0,0.5,20\n1,1,21\n2,1,22\n",    /* other header */
        "t,vib_x,temp\n0,1,1\n1,1,1\n2,1,1\n3,1,1\n",  /* too many rows */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(lathe_sensors_parse(bad[i], strlen(bad[i]), &l, v, &nans), -LATHE_EFORMAT);
    lathe_sensors_layout_free(&l);
    assert_int_equal(lathe_sensors_layout("", 0, &l), -LATHE_EFORMAT);
    assert_int_equal(lathe_sensors_layout("a,b\n", 4, &l), -LATHE_EFORMAT);
}

/* Split lists and split words: lines by id or path (CRLF, blanks, comments), trainval only where no
 * other list names an image, two lists naming one image a conflict; the folder and name rules. */
static void split_lists_and_split_names(void **state) {
    (void)state;
    lathe_catalog *cat = lathe_catalog_create();
    lathe_record *x = lathe_catalog_record(cat, "JPEGImages/x.jpg"), *y = lathe_catalog_record(cat, "y.png");
    lathe_record *z = lathe_catalog_record(cat, "z.jpg"), *w = lathe_catalog_record(cat, "w.jpg");
    const char val[] = "x\r\n\n# a comment\n  ./imgs/y.png \nnot_there.jpg\n/\n";
    assert_int_equal(lathe_catalog_read_split_list(cat, "val.txt", (const uint8_t *)val, strlen(val), LATHE_SPLIT_VAL), 0);
    assert_int_equal(lathe_catalog_list_split(cat, "trainval.txt", "z", LATHE_SPLIT_TRAINVAL), 0);
    assert_int_equal(lathe_catalog_list_split(cat, "trainval.txt", "x", LATHE_SPLIT_TRAINVAL), 0); /* x: val already */
    assert_int_equal(lathe_catalog_list_split(cat, "train.txt", "w", LATHE_SPLIT_TRAIN), 0);
    assert_int_equal(lathe_catalog_list_split(cat, "test.txt", "w", LATHE_SPLIT_TEST), 0);
    assert_int_equal(lathe_catalog_finish(cat), 0);
    assert_int_equal(x->split, LATHE_SPLIT_VAL);
    assert_int_equal(y->split, LATHE_SPLIT_VAL);
    assert_int_equal(z->split, LATHE_SPLIT_TRAIN);
    assert_int_equal(w->split, LATHE_SPLIT_CONFLICT);
    assert_int_equal(lathe_catalog_nrejects(cat), 2); /* the line "/" names no image; no record is not_there */
    assert_string_equal(lathe_catalog_reject_at(cat, 0)->reason, "malformed_label");
    assert_string_equal(lathe_catalog_reject_at(cat, 1)->reason, "missing_file");
    assert_string_equal(lathe_catalog_reject_at(cat, 1)->path, "val.txt");
    assert_non_null(strstr(lathe_catalog_reject_at(cat, 1)->detail, "not_there"));
    lathe_catalog_free(cat);
    assert_int_equal(lathe_split_named("instances_val2017.json", 22), LATHE_SPLIT_VAL);
    assert_int_equal(lathe_split_named("Training", 8), LATHE_SPLIT_TRAIN);
    assert_int_equal(lathe_split_named("latest.json", 11), -1);
    assert_int_equal(lathe_ingest_source_split("data/test/images/valid/a.jpg"), LATHE_SPLIT_VAL);
    assert_int_equal(lathe_ingest_source_split("x_train/a.jpg"), -1);
    assert_int_equal(lathe_ingest_source_split("train.jpg"), -1);
    assert_int_equal(lathe_ingest_source_split("TEST/a.png"), LATHE_SPLIT_TEST);
}

static void catalog_matching_and_numbering(void **state) {
    (void)state;
    lathe_catalog *cat = lathe_catalog_create();
    assert_int_equal(lathe_catalog_declare_class(cat, 7, "dent"), 0);
    assert_int_equal(lathe_catalog_declare_class(cat, 3, "scratch"), 0);
    lathe_record *a = lathe_catalog_record(cat, "x.jpg");
    lathe_record *b = lathe_catalog_record(cat, "train/x.jpg");
    lathe_record *c = lathe_catalog_record(cat, "images/y"); /* YOLO style: no extension */
    lathe_box box = {1, 2, 3, 4, 7, 0, 11, -1};
    assert_int_equal(lathe_record_add_box(a, &box), 0);
    box.label = 99; /* undeclared */
    assert_int_equal(lathe_record_add_box(a, &box), 0);
    assert_ptr_equal(lathe_catalog_match(cat, "data/train/x.jpg"), b); /* longest suffix wins */
    assert_ptr_equal(lathe_catalog_match(cat, "val/x.jpg"), a);
    assert_null(lathe_catalog_match(cat, "val/xx.jpg"));
    assert_ptr_equal(lathe_catalog_match(cat, "root/images/y.png"), c);
    assert_int_equal(lathe_catalog_finish(cat), 0);
    assert_string_equal(lathe_catalog_class_at(cat, 0)->name, "scratch"); /* by source id */
    assert_int_equal(a->nboxes, 1);
    assert_int_equal(a->boxes[0].label, 1);
    assert_int_equal(lathe_catalog_nrejects(cat), 1);
    assert_string_equal(lathe_catalog_reject_at(cat, 0)->reason, "unknown_category");
    lathe_catalog_free(cat);
    /* classes known only by name are alphabetical whatever the order they were met in */
    cat = lathe_catalog_create();
    assert_true(lathe_catalog_class_named(cat, "zebra") >= 0);
    assert_true(lathe_catalog_class_named(cat, "apple") >= 0);
    assert_int_equal(lathe_catalog_finish(cat), 0);
    assert_string_equal(lathe_catalog_class_at(cat, 0)->name, "apple");
    lathe_catalog_free(cat);
}

static void hashmap_grows(void **state) {
    (void)state;
    lathe_hashmap *m = lathe_hashmap_create();
    char key[32];
    for (size_t i = 0; i < 5000; i++) {
        snprintf(key, sizeof key, "k%zu", i);
        assert_int_equal(lathe_hashmap_put(m, key, i * 3), 0);
    }
    size_t v;
    assert_true(lathe_hashmap_get(m, "k4321", &v));
    assert_int_equal(v, 4321 * 3);
    assert_false(lathe_hashmap_get(m, "k5000", NULL));
    assert_int_equal(lathe_hashmap_count(m), 5000);
    lathe_hashmap_free(m);
}

static void folder_walk_is_sorted_and_reports_links(void **state) {
    (void)state;
    char *dir = test_tempdir("walk"), path[4200];
    snprintf(path, sizeof path, "%s/b", dir);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/b/2.txt", dir);
    test_write_file(path, "two", 3);
    snprintf(path, sizeof path, "%s/a.txt", dir);
    test_write_file(path, "one", 3);
    snprintf(path, sizeof path, "%s/c.lnk", dir);
    assert_int_equal(symlink("/etc/passwd", path), 0);
    lathe_archive *a;
    assert_int_equal(lathe_archive_open(dir, &a), 0);
    lathe_entry e;
    assert_int_equal(lathe_archive_next(a, &e), 1);
    assert_string_equal(e.path, "a.txt");
    uint8_t *data;
    size_t len;
    assert_int_equal(lathe_archive_read(a, 1, &data, &len), -LATHE_ELIMIT); /* over the entry limit */
    assert_int_equal(lathe_archive_next(a, &e), 1);
    assert_string_equal(e.path, "b/2.txt");
    assert_int_equal(lathe_archive_read(a, 100, &data, &len), 0);
    assert_memory_equal(data, "two", 3);
    free(data);
    assert_int_equal(lathe_archive_next(a, &e), 1);
    assert_string_equal(e.reject_reason, "not_regular_file");
    assert_int_equal(lathe_archive_next(a, &e), 0);
    lathe_archive_close(a);
    test_rmtree(dir);
    free(dir);
}

static void add_entry(struct archive *w, const char *name, mode_t type, const char *data, const char *link) {
    struct archive_entry *e = archive_entry_new();
    archive_entry_set_pathname(e, name);
    archive_entry_set_filetype(e, type);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_size(e, data ? (la_int64_t)strlen(data) : 0);
    if (link) archive_entry_set_symlink(e, link);
    if (type == AE_IFCHR) archive_entry_set_rdev(e, 0x0101);
    assert_int_equal(archive_write_header(w, e), ARCHIVE_OK);
    if (data) assert_int_equal(archive_write_data(w, data, strlen(data)), (la_ssize_t)strlen(data));
    archive_entry_free(e);
}

static void hostile_archive_entries_are_reported(void **state) {
    (void)state;
    char *dir = test_tempdir("tar"), path[4200];
    snprintf(path, sizeof path, "%s/x.tar.gz", dir);
    struct archive *w = archive_write_new();
    archive_write_set_format_pax_restricted(w);
    archive_write_add_filter_gzip(w);
    assert_int_equal(archive_write_open_filename(w, path), ARCHIVE_OK);
    add_entry(w, "./ok/a.txt", AE_IFREG, "fine", NULL);
    add_entry(w, "../evil.txt", AE_IFREG, "x", NULL);
    add_entry(w, "ok/../../evil2.txt", AE_IFREG, "x", NULL);
    add_entry(w, "/etc/evil3.txt", AE_IFREG, "x", NULL);
    add_entry(w, "ok/link", AE_IFLNK, NULL, "/etc/passwd");
    add_entry(w, "ok/dev", AE_IFCHR, NULL, NULL);
    archive_write_close(w);
    archive_write_free(w);
    lathe_archive *a;
    assert_int_equal(lathe_archive_open(path, &a), 0);
    lathe_entry e;
    const char *expect[] = {NULL, "unsafe_path", "unsafe_path", "unsafe_path", "not_regular_file", "not_regular_file"};
    for (int i = 0; i < 6; i++) {
        assert_int_equal(lathe_archive_next(a, &e), 1);
        if (expect[i]) assert_string_equal(e.reject_reason, expect[i]);
        else {
            assert_null(e.reject_reason);
            assert_string_equal(e.path, "ok/a.txt");
        }
    }
    assert_int_equal(lathe_archive_next(a, &e), 0);
    lathe_archive_close(a);
    /* garbage that is no archive */
    snprintf(path, sizeof path, "%s/junk.tar", dir);
    test_write_file(path, "\x01\x02 not an archive at all, just bytes", 34);
    int rc = lathe_archive_open(path, &a);
    if (rc == 0) {
        assert_true(lathe_archive_next(a, &e) < 0);
        lathe_archive_close(a);
    }
    test_rmtree(dir);
    free(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(split_lists_and_split_names),
        cmocka_unit_test(letterbox_geometry),
        cmocka_unit_test(letterbox_pixels_and_fill),
        cmocka_unit_test(resize_keeps_constant_images_and_averages),
        cmocka_unit_test(tile_origins_cover_the_image),
        cmocka_unit_test(dhash_is_stable_under_brightness),
        cmocka_unit_test(sensors_parse_and_reject),
        cmocka_unit_test(catalog_matching_and_numbering),
        cmocka_unit_test(hashmap_grows),
        cmocka_unit_test(folder_walk_is_sorted_and_reports_links),
        cmocka_unit_test(hostile_archive_entries_are_reported),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
