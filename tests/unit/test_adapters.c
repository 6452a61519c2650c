/* test_adapters.c - the YOLO, VOC, KITTI, class-folder and MVTec label adapters and the registry:
 * in-memory label files and path lists in, classes, boxes, labels, masks and rejects checked out. */
#include "testutil.h"

#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include "datasets/adapters.h"
#include "libcore/base/error.h"

/* ---- helpers ---------------------------------------------------------------------------------- */

static int parse_text(const lathe_adapter *a, lathe_catalog *cat, const char *path, const char *text) {
    assert_int_equal(a->role(path), LATHE_ENTRY_LABEL);
    return a->parse(cat, path, (const uint8_t *)text, strlen(text));
}

static size_t count_rejects(const lathe_catalog *cat, const char *reason) {
    size_t n = 0;
    for (size_t i = 0; i < lathe_catalog_nrejects(cat); i++)
        if (strcmp(lathe_catalog_reject_at(cat, i)->reason, reason) == 0) n++;
    return n;
}

/* 1 when some reject has this reason and its detail contains fragment. */
static int has_reject(const lathe_catalog *cat, const char *reason, const char *fragment) {
    for (size_t i = 0; i < lathe_catalog_nrejects(cat); i++) {
        const lathe_label_reject *r = lathe_catalog_reject_at(cat, i);
        if (strcmp(r->reason, reason) == 0 && strstr(r->detail, fragment)) return 1;
    }
    return 0;
}

static const lathe_record *record(const lathe_catalog *cat, const char *file) {
    const lathe_record *r = lathe_catalog_find(cat, file);
    if (!r) fail_msg("no record for %s", file);
    return r;
}

static void assert_box(const lathe_box *b, float x1, float y1, float x2, float y2, int label, int flags) {
    assert_true(b->x1 == x1);
    assert_true(b->y1 == y1);
    assert_true(b->x2 == x2);
    assert_true(b->y2 == y2);
    assert_int_equal(b->label, label);
    assert_int_equal(b->flags, flags);
}

static void assert_classes(const lathe_catalog *cat, const char *const *names, size_t n) {
    assert_int_equal(lathe_catalog_nclasses(cat), n);
    for (size_t i = 0; i < n; i++) assert_string_equal(lathe_catalog_class_at(cat, i)->name, names[i]);
}

static void assert_error_mentions(const char *a, const char *b) {
    const char *msg = lathe_last_error();
    if (!strstr(msg, a) || (b && !strstr(msg, b))) fail_msg("error '%s' does not mention '%s' and '%s'", msg, a, b);
}

/* ---- YOLO ------------------------------------------------------------------------------------- */

static void test_yolo_data_yaml_list(void **state) {
    (void)state;
    const lathe_adapter *a = &lathe_adapter_yolo;
    lathe_catalog *cat = lathe_catalog_create();
    const char *yaml = "path: .\ntrain: images/train\nnc: 3\nnames: [bolt, nut, washer]\n";
    assert_int_equal(parse_text(a, cat, "ds/data.yaml", yaml), 0);
    assert_int_equal(parse_text(a, cat, "ds/labels/train/a.txt",
                                "0 0.5 0.5 0.25 0.5\n"
                                "\n"
                                "2 0.25 0.25 0.5 0.5 0.9\r\n"
                                "1 0.125 0.25 0.5 0.25 0.375 0.75\n"
                                "  1\t0.5 0.5 0.5 0.5  "), 0);
    assert_int_equal(lathe_catalog_nrejects(cat), 0);
    assert_int_equal(lathe_catalog_finish(cat), 0);
    const char *names[] = {"bolt", "nut", "washer"};
    assert_classes(cat, names, 3);
    const lathe_record *r = record(cat, "ds/images/train/a");
    assert_int_equal(r->normalized, 1);
    assert_int_equal(r->nboxes, 4);
    assert_box(&r->boxes[0], 0.375f, 0.25f, 0.625f, 0.75f, 0, 0);
    assert_box(&r->boxes[1], 0.0f, 0.0f, 0.5f, 0.5f, 2, 0);            /* confidence ignored */
    assert_box(&r->boxes[2], 0.125f, 0.25f, 0.5f, 0.75f, 1, 0);        /* polygon -> its extent */
    assert_box(&r->boxes[3], 0.25f, 0.25f, 0.75f, 0.75f, 1, 0);
    /* the image, with its extension, finds the record */
    assert_ptr_equal(lathe_catalog_match(cat, "ds/images/train/a.jpg"), r);
    lathe_catalog_free(cat);
}

static void test_yolo_data_yaml_map(void **state) {
    (void)state;
    const lathe_adapter *a = &lathe_adapter_yolo;
    lathe_catalog *cat = lathe_catalog_create();
    const char *text = "3 0.5 0.5 0.5 0.5\n1 0.5 0.5 0.5 0.5\n0 0.5 0.5 0.5 0.5\n";
    assert_int_equal(parse_text(a, cat, "labels/x.txt", text), 0);
    /* two '' escapes in a row: libfyaml 0.7.12 read 'hard '''' hat' as "hard ''''" (finding 21) */
    assert_int_equal(parse_text(a, cat, "dataset.yaml", "names:\n  0: person\n  3: 'hard '''' hat'\n"), 0);
    assert_int_equal(lathe_catalog_finish(cat), 0);
    const char *names[] = {"person", "hard '' hat"};
    assert_classes(cat, names, 2);
    const lathe_record *r = record(cat, "images/x");
    assert_int_equal(r->nboxes, 2);
    assert_int_equal(r->boxes[0].label, 1); /* id 3 -> index 1 */
    assert_int_equal(r->boxes[1].label, 0);
    assert_int_equal(count_rejects(cat, "unknown_category"), 1); /* id 1 is not declared */
    lathe_catalog_free(cat);
}

static void test_yolo_classes_txt(void **state) {
    (void)state;
    const lathe_adapter *a = &lathe_adapter_yolo;
    lathe_catalog *cat = lathe_catalog_create();
    assert_int_equal(parse_text(a, cat, "obj/labels/classes.txt", "\xEF\xBB\xBF" "bolt\r\n nut \r\n\r\n\n"), 0);
    /* a second list that disagrees: the first name stays; a blank line between names takes id 2 */
    assert_int_equal(parse_text(a, cat, "obj.names", "bolt\nnot-nut\n\nscrew\n"), 0);
    assert_int_equal(lathe_catalog_finish(cat), 0);
    const char *names[] = {"bolt", "nut", "class_2", "screw"};
    assert_classes(cat, names, 4);
    assert_true(has_reject(cat, "malformed_label", "class 2 has an empty name"));
    assert_true(has_reject(cat, "class_conflict", "'not-nut'"));
    lathe_catalog_free(cat);
}

static void test_yolo_without_class_list(void **state) {
    (void)state;
    const lathe_adapter *a = &lathe_adapter_yolo;
    lathe_catalog *cat = lathe_catalog_create();
    assert_int_equal(parse_text(a, cat, "labels/a.txt", "5 0.5 0.5 0.5 0.5\n2 0.5 0.5 0.5 0.5\n"), 0);
    const char *paths[] = {"images/a.jpg", "labels/a.txt"};
    assert_int_equal(a->scan_paths(cat, paths, 2), 0);
    assert_int_equal(lathe_catalog_finish(cat), 0);
    const char *names[] = {"class_2", "class_5"};
    assert_classes(cat, names, 2);
    const lathe_record *r = record(cat, "images/a");
    assert_int_equal(r->boxes[0].label, 1);
    assert_int_equal(r->boxes[1].label, 0);
    lathe_catalog_free(cat);
}

static void test_yolo_malformed_lines(void **state) {
    (void)state;
    const lathe_adapter *a = &lathe_adapter_yolo;
    lathe_catalog *cat = lathe_catalog_create();
    assert_int_equal(parse_text(a, cat, "classes.txt", "a\nb\n"), 0);
    const char *text = "0 nan 0.5 0.1 0.1\n"                   /* 1 */
                       "0 1e400 0.5 0.1 0.1\n"                 /* 2: overflows a double */
                       "0 1e30 0.5 0.1 0.1\n"                  /* 3: overflows a float */
                       "-1 0.5 0.5 0.1 0.1\n"                  /* 4 */
                       "99999999999999999999 0.5 0.5 0.1 0.1\n" /* 5 */
                       "x 0.5 0.5 0.1 0.1\n"                   /* 6 */
                       "0 0.5 0.5\n"                           /* 7 */
                       "0 0.5 0.5 0.1 0.1 0.9 0.3 0.2\n"       /* 8: 7 values */
                       "1.5 0.5 0.5 0.1 0.1\n"                 /* 9 */
                       "0 0.5 0.5 0.1 inf\n"                   /* 10 */
                       "0 0.5 0.5 0.1 0.1z\n"                  /* 11 */
                       "1.0 0.5 0.5 -0.25 0.5\n";              /* 12: fine; negative size is ingest's */
    assert_int_equal(parse_text(a, cat, "labels/m.txt", text), 0);
    assert_int_equal(count_rejects(cat, "malformed_label"), 11);
    assert_true(has_reject(cat, "malformed_label", "line 1:"));
    assert_true(has_reject(cat, "malformed_label", "line 11:"));
    assert_false(has_reject(cat, "malformed_label", "line 12:"));
    const char nul_line[] = "0 0.5 0.5 0.1 0.1\n0 0.5\0 0.5 0.1 0.1\n";
    assert_int_equal(a->parse(cat, "labels/n.txt", (const uint8_t *)nul_line, sizeof nul_line - 1), 0);
    assert_true(has_reject(cat, "malformed_label", "line 2: contains a NUL byte"));
    assert_int_equal(lathe_catalog_finish(cat), 0);
    const lathe_record *r = record(cat, "images/m");
    assert_int_equal(r->nboxes, 1);
    assert_box(&r->boxes[0], 0.625f, 0.25f, 0.375f, 0.75f, 1, 0);
    assert_int_equal(record(cat, "images/n")->nboxes, 1);
    lathe_catalog_free(cat);
}

static void test_yolo_bad_yaml(void **state) {
    (void)state;
    const lathe_adapter *a = &lathe_adapter_yolo;
    lathe_catalog *cat = lathe_catalog_create();
    assert_int_equal(parse_text(a, cat, "d1/data.yaml", "- bolt\n- nut\n"), -LATHE_EFORMAT);
    assert_error_mentions("d1/data.yaml", "not a mapping");
    assert_int_equal(parse_text(a, cat, "d2/data.yaml", "names: [bolt, nut\nnc: 2\n"), -LATHE_EFORMAT);
    assert_error_mentions("d2/data.yaml", "line ");
    assert_int_equal(parse_text(a, cat, "d3/data.yaml", "nc: 3\nnames: [a, b]\n"), -LATHE_EFORMAT);
    assert_error_mentions("d3/data.yaml", "line 1");
    assert_int_equal(parse_text(a, cat, "d4/data.yaml", "nc: 1000000000\n"), -LATHE_ELIMIT);
    assert_int_equal(parse_text(a, cat, "d5/data.yaml", "names: bolt\n"), -LATHE_EFORMAT);
    assert_error_mentions("d5/data.yaml", "line 1");
    assert_int_equal(parse_text(a, cat, "d6/data.yaml", "nc: many\n"), -LATHE_EFORMAT);
    assert_int_equal(parse_text(a, cat, "d7/data.yaml", ""), -LATHE_EFORMAT);
    assert_int_equal(parse_text(a, cat, "d8/data.yaml", "train: images\n"), -LATHE_EFORMAT);
    assert_int_equal(parse_text(a, cat, "d9/data.yaml", "x: &n [a, b]\nnames: *n\n"), -LATHE_EFORMAT);
    /* not printable UTF-8: libfyaml 0.7.12 would hang on this directive line (libfyaml#101) */
    assert_int_equal(parse_text(a, cat, "e1/data.yaml", "nc: 1\n%YAML\xa4\n"), -LATHE_EFORMAT);
    assert_error_mentions("e1/data.yaml", "line 2 column 6");
    assert_int_equal(parse_text(a, cat, "e2/data.yaml", "names: [a\x01]\n"), -LATHE_EFORMAT);
    assert_int_equal(parse_text(a, cat, "e3/data.yaml", "names: [\xc3\xa9, \xed\xa0\x80]\n"), -LATHE_EFORMAT);
    assert_int_equal(parse_text(a, cat, "e4/data.yaml", "names: [\xc0\xaf]\n"), -LATHE_EFORMAT);
    /* an explicit key with a tab after its `a:` crashed libfyaml 0.7.12 (fuzz_override): refused first */
    assert_int_equal(parse_text(a, cat, "e5/data.yaml", "names: [a]\n? a:\t-"), -LATHE_EFORMAT);
    assert_error_mentions("e5/data.yaml", "line 2 column 1: '?' starts an explicit (complex) key");
    assert_int_equal(lathe_catalog_nclasses(cat), 0);
    const char *utf8 = "\xEF\xBB\xBF" "names: [\xc3\xa9" "crou, \xe8\x9e\xba\xe6\xa0\x93]\n"; /* BOM, é, CJK */
    assert_int_equal(parse_text(a, cat, "ok/data.yaml", utf8), 0);
    assert_int_equal(lathe_catalog_finish(cat), 0);
    const char *names[] = {"\xc3\xa9" "crou", "\xe8\x9e\xba\xe6\xa0\x93"};
    assert_classes(cat, names, 2);
    lathe_catalog_free(cat);
}

/* YAML's "billion laughs": aliases nest 10^9 items; they are never resolved. */
static void test_yolo_yaml_alias_bomb(void **state) {
    (void)state;
    const char *bomb = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
                       "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                       "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
                       "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
                       "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
                       "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
                       "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]\n"
                       "h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]\n"
                       "i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]\n"
                       "names: [*i, *i]\n";
    lathe_catalog *cat = lathe_catalog_create();
    clock_t t0 = clock();
    assert_int_equal(parse_text(&lathe_adapter_yolo, cat, "data.yaml", bomb), 0);
    assert_true((double)(clock() - t0) / CLOCKS_PER_SEC < 2.0);
    assert_int_equal(count_rejects(cat, "malformed_label"), 2); /* names[0], names[1] are aliases */
    assert_int_equal(lathe_catalog_finish(cat), 0);
    const char *names[] = {"class_0", "class_1"};
    assert_classes(cat, names, 2);
    lathe_catalog_free(cat);
}

static void test_yolo_background_and_roles(void **state) {
    (void)state;
    const lathe_adapter *a = &lathe_adapter_yolo;
    assert_int_equal(a->role("ds/labels/val/a.txt"), LATHE_ENTRY_LABEL);
    assert_int_equal(a->role("ds/labels/classes.txt"), LATHE_ENTRY_LABEL);
    assert_int_equal(a->role("ds/data.yaml"), LATHE_ENTRY_LABEL);
    assert_int_equal(a->role("ds/README.txt"), LATHE_ENTRY_LABEL); /* kept: data.yaml may name it as an image list */
    assert_int_equal(a->role("ds/images/val/a.jpg"), LATHE_ENTRY_OTHER);
    assert_int_equal(a->role("ds/mylabels/a.txt"), LATHE_ENTRY_LABEL); /* not labels/: kept as a possible list */
    assert_int_equal(a->role("__MACOSX/ds/labels/._a.txt"), LATHE_ENTRY_OTHER); /* macOS zip debris */
    assert_int_equal(a->role("ds/labels/._a.txt"), LATHE_ENTRY_OTHER);
    assert_int_equal(a->role("./ds/labels/a.txt"), LATHE_ENTRY_LABEL);
    lathe_catalog *cat = lathe_catalog_create();
    assert_int_equal(parse_text(a, cat, "ds/data.yaml", "names: {0: bolt}\n"), 0);
    /* the last "labels" component maps to "images" */
    assert_int_equal(parse_text(a, cat, "labels/ds/train/labels/a.txt", "0 0.5 0.5 0.5 0.5\n"), 0);
    assert_int_equal(parse_text(a, cat, "ds/train/labels/c.v2.txt", ""), 0);
    const char *paths[] = {"ds/data.yaml", "ds/train/images/b.png", "ds/train/images/c.v2.jpg",
                           "ds/train/labels/c.v2.txt", "labels/ds/train/images/a.jpg",
                           "labels/ds/train/labels/a.txt", "other/d.jpg"};
    assert_int_equal(a->scan_paths(cat, paths, 7), 0);
    assert_int_equal(lathe_catalog_finish(cat), 0);
    assert_int_equal(lathe_catalog_nrecords(cat), 3);
    const lathe_record *ra = record(cat, "labels/ds/train/images/a");
    assert_int_equal(ra->nboxes, 1);
    assert_ptr_equal(lathe_catalog_match(cat, "labels/ds/train/images/a.jpg"), ra);
    const lathe_record *rb = record(cat, "ds/train/images/b.png"); /* background image */
    assert_int_equal(rb->nboxes, 0);
    assert_int_equal(rb->normalized, 1);
    assert_ptr_equal(lathe_catalog_match(cat, "ds/train/images/c.v2.jpg"), record(cat, "ds/train/images/c.v2"));
    assert_null(lathe_catalog_match(cat, "other/d.jpg"));
    lathe_catalog_free(cat);
}

/* ---- Pascal VOC ------------------------------------------------------------------------------- */

static const char *voc_xml =
    "<?xml version=\"1.0\"?>\n"
    "<annotation>\n"
    "  <folder>VOC2007</folder>\n"
    "  <filename>000001.jpg</filename>\n"
    "  <size><width>353</width><height>500</height><depth>3</depth></size>\n"
    "  <object>\n"
    "    <name>person</name><pose>Left</pose><truncated>1</truncated><difficult>0</difficult>\n"
    "    <bndbox><xmin>48</xmin><ymin>240</ymin><xmax>195</xmax><ymax>371</ymax></bndbox>\n"
    "  </object>\n"
    "  <object>\n"
    "    <name> dog </name><difficult>1</difficult>\n"
    "    <bndbox><xmin>8.5</xmin><ymin>12</ymin><xmax>352</xmax><ymax>498</ymax></bndbox>\n"
    "    <part><name>head</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>2</xmax><ymax>2</ymax></bndbox></part>\n"
    "  </object>\n"
    "</annotation>\n";

static void test_voc_basic(void **state) {
    (void)state;
    const lathe_adapter *a = &lathe_adapter_voc;
    lathe_catalog *cat = lathe_catalog_create();
    assert_int_equal(parse_text(a, cat, "VOC2007/Annotations/000001.xml", voc_xml), 0);
    assert_int_equal(lathe_catalog_nrejects(cat), 0);
    assert_int_equal(lathe_catalog_finish(cat), 0);
    const char *names[] = {"dog", "person"};
    assert_classes(cat, names, 2);
    const lathe_record *r = record(cat, "000001.jpg");
    assert_int_equal(r->width, 353);
    assert_int_equal(r->height, 500);
    assert_int_equal(r->normalized, 0);
    assert_int_equal(r->nboxes, 2);
    assert_box(&r->boxes[0], 47.0f, 239.0f, 195.0f, 371.0f, 1, 0);
    assert_box(&r->boxes[1], 7.5f, 11.0f, 352.0f, 498.0f, 0, LATHE_BOX_IGNORE);
    assert_ptr_equal(lathe_catalog_match(cat, "data/VOC2007/JPEGImages/000001.jpg"), r);
    lathe_catalog_free(cat);
}

static void test_voc_malformed_objects(void **state) {
    (void)state;
    const char *xml = "<annotation><filename>x/y\\b.jpg</filename>\n"
                      "<size><width>-3</width><height>10</height></size>\n"
                      "<object><name>bolt</name></object>\n"
                      "<object><name>bolt</name><bndbox><xmin>abc</xmin><ymin>1</ymin><xmax>2</xmax>"
                      "<ymax>3</ymax></bndbox></object>\n"
                      "<object><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>2</xmax><ymax>3</ymax></bndbox></object>\n"
                      "<object><name>bolt</name><bndbox><xmin>nan</xmin><ymin>1</ymin><xmax>2</xmax>"
                      "<ymax>3</ymax></bndbox></object>\n"
                      "<object><name>nut</name><bndbox><xmin>1</xmin><ymin>2</ymin><xmax>30</xmax>"
                      "<ymax>40</ymax></bndbox><difficult>true</difficult></object>\n"
                      "</annotation>";
    lathe_catalog *cat = lathe_catalog_create();
    assert_int_equal(parse_text(&lathe_adapter_voc, cat, "Annotations/b.xml", xml), 0);
    assert_int_equal(count_rejects(cat, "malformed_label"), 5);
    assert_true(has_reject(cat, "malformed_label", "line 3: object 1"));
    assert_true(has_reject(cat, "malformed_label", "object 3 has no <name>"));
    assert_true(has_reject(cat, "malformed_label", "<size>"));
    /* the same image described twice */
    assert_int_equal(parse_text(&lathe_adapter_voc, cat, "other/Annotations/b.xml", xml), 0);
    assert_int_equal(count_rejects(cat, "duplicate_label"), 1);
    assert_int_equal(lathe_catalog_finish(cat), 0);
    const lathe_record *r = record(cat, "b.jpg"); /* basename of <filename> */
    assert_int_equal(r->width, 0);
    assert_int_equal(r->nboxes, 1);
    assert_box(&r->boxes[0], 0.0f, 1.0f, 30.0f, 40.0f, 0, LATHE_BOX_IGNORE);
    const char *names[] = {"nut"}; /* "bolt" never made it into a box, and was never declared */
    assert_classes(cat, names, 1);
    lathe_catalog_free(cat);
}

static void test_voc_unusable_files(void **state) {
    (void)state;
    const lathe_adapter *a = &lathe_adapter_voc;
    lathe_catalog *cat = lathe_catalog_create();
    assert_int_equal(parse_text(a, cat, "Annotations/t.xml", "<annotation>\n<filename>a.jpg</filename>\n<object>"),
                     -LATHE_EFORMAT);
    assert_error_mentions("Annotations/t.xml", "line 3");
    assert_int_equal(parse_text(a, cat, "Annotations/g.xml", "this is not xml"), -LATHE_EFORMAT);
    assert_error_mentions("Annotations/g.xml", "line 1");
    assert_int_equal(parse_text(a, cat, "Annotations/e.xml", ""), -LATHE_EFORMAT);
    assert_int_equal(parse_text(a, cat, "Annotations/r.xml", "<annotations><image/></annotations>"), -LATHE_EFORMAT);
    assert_int_equal(a->role("__MACOSX/VOC/Annotations/._a.xml"), LATHE_ENTRY_OTHER);
    assert_int_equal(a->role("VOC/Annotations/._a.xml"), LATHE_ENTRY_OTHER);
    assert_error_mentions("Annotations/r.xml", "<annotations>");
    assert_int_equal(lathe_catalog_nrecords(cat), 0);
    /* without <filename> the XML's stem names the image (matched without extension) */
    assert_int_equal(parse_text(a, cat, "Annotations/0042.xml", "<annotation><object/></annotation>"), 0);
    assert_int_equal(lathe_catalog_finish(cat), 0);
    assert_ptr_equal(lathe_catalog_match(cat, "JPEGImages/0042.jpg"), record(cat, "0042"));
    lathe_catalog_free(cat);
}

static void test_voc_billion_laughs(void **state) {
    (void)state;
    const char *bomb = "<?xml version=\"1.0\"?>\n"
                       "<!DOCTYPE annotation [\n"
                       " <!ENTITY lol \"lol\">\n"
                       " <!ENTITY lol1 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">\n"
                       " <!ENTITY lol2 \"&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;\">\n"
                       " <!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">\n"
                       " <!ENTITY lol4 \"&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;\">\n"
                       " <!ENTITY lol5 \"&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;\">\n"
                       " <!ENTITY lol6 \"&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;\">\n"
                       " <!ENTITY lol7 \"&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;\">\n"
                       " <!ENTITY lol8 \"&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;\">\n"
                       " <!ENTITY lol9 \"&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;\">\n"
                       "]>\n"
                       "<annotation><filename>a.jpg</filename><object><name>&lol9;</name>"
                       "<bndbox><xmin>1</xmin><ymin>1</ymin><xmax>2</xmax><ymax>2</ymax></bndbox></object>"
                       "</annotation>\n";
    lathe_catalog *cat = lathe_catalog_create();
    clock_t t0 = clock();
    int rc = parse_text(&lathe_adapter_voc, cat, "Annotations/bomb.xml", bomb);
    assert_true((double)(clock() - t0) / CLOCKS_PER_SEC < 2.0);
    if (rc == 0) {
        /* parsed harmlessly: the entity stayed a reference, so the object has no name */
        assert_int_equal(count_rejects(cat, "malformed_label"), 1);
        assert_int_equal(lathe_catalog_nclasses(cat), 0);
    } else {
        assert_int_equal(rc, -LATHE_EFORMAT);
        assert_error_mentions("Annotations/bomb.xml", "line");
    }
    lathe_catalog_free(cat);
}

/* libxml2 reports some errors (an encoding's conversion failing) through its generic channel, which
 * XML_PARSE_NOERROR does not silence: the adapter must keep them off stderr, as it does the rest. */
static void test_voc_errors_stay_off_stderr(void **state) {
    (void)state;
    char *dir = test_tempdir("voc-stderr");
    assert_non_null(dir);
    char log[4200];
    snprintf(log, sizeof log, "%s/stderr.txt", dir);
    static const char *bad[] = {
        "<?xml version=\"1.0\" encoding=\"UTF-16\"?><annotation><filename>a.jpg</filename></annotation>",
        "<?xml version=\"1.0\" encoding=\"ISO-2022-JP\"?><annotation><name>\x1b$B\xff\xfe</name></annotation>",
        "<?xml version=\"1.0\" encoding=\"no-such-encoding\"?><annotation/>",
        "<annotation><name>\xff\xfe\xfd</name></annotation>",
    };
    lathe_catalog *cat = lathe_catalog_create();
    fflush(stderr);
    int saved = dup(2), fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(saved >= 0 && fd >= 0);
    dup2(fd, 2);
    int rcs[sizeof bad / sizeof *bad];
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char path[64];
        snprintf(path, sizeof path, "Annotations/bad%zu.xml", i);
        rcs[i] = parse_text(&lathe_adapter_voc, cat, path, bad[i]);
    }
    fflush(stderr);
    dup2(saved, 2);
    close(saved), close(fd);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) assert_true(rcs[i] == 0 || rcs[i] == -LATHE_EFORMAT);
    size_t len = 0;
    uint8_t *text = test_read_file(log, &len);
    assert_non_null(text);
    if (len) fprintf(stderr, "printed: %.*s\n", (int)len, (const char *)text);
    assert_int_equal(len, 0);
    free(text);
    lathe_catalog_free(cat);
    test_rmtree(dir);
    free(dir);
}

static void test_voc_external_entity(void **state) {
    (void)state;
    char *dir = test_tempdir("voc-xxe");
    assert_non_null(dir);
    char secret[4200], xml[8600];
    snprintf(secret, sizeof secret, "%s/secret.txt", dir);
    assert_int_equal(test_write_file(secret, "TOPSECRET", 9), 0);
    snprintf(xml, sizeof xml,
             "<?xml version=\"1.0\"?>\n"
             "<!DOCTYPE annotation [ <!ENTITY xxe SYSTEM \"file://%s\"> ]>\n"
             "<annotation><filename>&xxe;</filename><object><name>&xxe;</name>"
             "<bndbox><xmin>1</xmin><ymin>1</ymin><xmax>2</xmax><ymax>2</ymax></bndbox></object></annotation>\n",
             secret);
    lathe_catalog *cat = lathe_catalog_create();
    int rc = parse_text(&lathe_adapter_voc, cat, "Annotations/xxe.xml", xml);
    assert_true(rc == 0 || rc == -LATHE_EFORMAT);
    assert_null(strstr(lathe_last_error(), "TOPSECRET"));
    for (size_t i = 0; i < lathe_catalog_nrecords(cat); i++)
        assert_null(strstr(lathe_catalog_at(cat, i)->file, "TOPSECRET"));
    for (size_t i = 0; i < lathe_catalog_nclasses(cat); i++) {
        const char *name = lathe_catalog_class_at(cat, i)->name;
        assert_true(!name || !strstr(name, "TOPSECRET"));
    }
    for (size_t i = 0; i < lathe_catalog_nrejects(cat); i++)
        assert_null(strstr(lathe_catalog_reject_at(cat, i)->detail, "TOPSECRET"));
    if (rc == 0) assert_non_null(lathe_catalog_find(cat, "xxe")); /* empty <filename>: the XML's stem */
    lathe_catalog_free(cat);
    test_rmtree(dir);
    free(dir);
}

/* ---- KITTI ------------------------------------------------------------------------------------ */

static void test_kitti(void **state) {
    (void)state;
    const lathe_adapter *a = &lathe_adapter_kitti;
    assert_int_equal(a->role("training/label_2/000042.txt"), LATHE_ENTRY_LABEL);
    assert_int_equal(a->role("training/image_2/000042.png"), LATHE_ENTRY_OTHER);
    assert_int_equal(a->role("training/calib/000042.txt"), LATHE_ENTRY_OTHER);
    const char *text =
        "Car 0.00 0 -1.58 587.01 173.33 614.12 200.12 1.65 1.67 3.64 -0.65 1.71 46.70 -1.59\n"
        "Pedestrian 0.00 0 -0.20 712.40 143.00 810.73 307.92 1.89 0.48 1.20 1.84 1.47 8.41 0.01 0.93\n"
        "DontCare -1 -1 -10 503.89 169.71 590.61 190.13 -1 -1 -1 -1000 -1000 -1000 -10\n"
        "\n"
        "Car 0.00 0 -1.58 587.01 173.33 614.12 200.12 1.65 1.67 3.64 -0.65 1.71 46.70\n"
        "Car 0.00 0 -1.58 nan 173.33 614.12 200.12 1.65 1.67 3.64 -0.65 1.71 46.70 -1.59\n"
        "Cyclist 0.00 0 -1.58 1e300 173.33 614.12 200.12 1.65 1.67 3.64 -0.65 1.71 46.70 -1.59\n"
        "Van 0.5 1 0 10 20 30 40 1 1 1 1 1 1 1";
    lathe_catalog *cat = lathe_catalog_create();
    assert_int_equal(parse_text(a, cat, "kitti/training/label_2/000042.txt", text), 0);
    assert_int_equal(count_rejects(cat, "malformed_label"), 3);
    assert_true(has_reject(cat, "malformed_label", "line 5: 14 fields"));
    assert_true(has_reject(cat, "malformed_label", "line 6:"));
    assert_true(has_reject(cat, "malformed_label", "line 7:"));
    assert_int_equal(lathe_catalog_finish(cat), 0);
    const char *names[] = {"Car", "Pedestrian", "Van"};
    assert_classes(cat, names, 3);
    const lathe_record *r = record(cat, "kitti/training/image_2/000042");
    assert_int_equal(r->normalized, 0);
    assert_int_equal(r->nboxes, 3);
    assert_box(&r->boxes[0], 587.01f, 173.33f, 614.12f, 200.12f, 0, 0);
    assert_box(&r->boxes[1], 712.40f, 143.00f, 810.73f, 307.92f, 1, 0);
    assert_box(&r->boxes[2], 10.0f, 20.0f, 30.0f, 40.0f, 2, 0);
    assert_ptr_equal(lathe_catalog_match(cat, "kitti/training/image_2/000042.png"), r);
    assert_null(lathe_catalog_match(cat, "kitti/training/image_3/000042.png"));
    lathe_catalog_free(cat);
}

/* ---- class folders ---------------------------------------------------------------------------- */

static void test_folders(void **state) {
    (void)state;
    const lathe_adapter *a = &lathe_adapter_folders;
    const char *paths[] = {"./root.jpg",        "__MACOSX/train/bolt/._a.jpg", "root.png",    "train/.cache/x.jpg",
                           "train/bolt/a.jpg",  "train/notes.txt",             "train/nut/b.PNG", "val/bolt/c.jpeg",
                           "./val/washer/d.jpg"};
    assert_int_equal(a->role("train/bolt/a.jpg"), LATHE_ENTRY_IMAGE);
    assert_int_equal(a->role("train/notes.txt"), LATHE_ENTRY_OTHER);
    lathe_catalog *cat = lathe_catalog_create();
    assert_int_equal(a->scan_paths(cat, paths, 9), 0);
    assert_int_equal(lathe_catalog_finish(cat), 0);
    const char *names[] = {"bolt", "nut", "washer"};
    assert_classes(cat, names, 3);
    assert_int_equal(lathe_catalog_nrecords(cat), 4);
    assert_int_equal(record(cat, "train/bolt/a.jpg")->label, 0);
    assert_int_equal(record(cat, "train/nut/b.PNG")->label, 1);
    assert_int_equal(record(cat, "val/bolt/c.jpeg")->label, 0);
    assert_int_equal(record(cat, "./val/washer/d.jpg")->label, 2);
    assert_int_equal(record(cat, "train/bolt/a.jpg")->nboxes, 0);
    lathe_catalog_free(cat);
}

/* ---- MVTec AD --------------------------------------------------------------------------------- */

static const char *mvtec_paths[] = {
    "mvtec/bottle/ground_truth/broken_large/000_mask.png",
    "mvtec/bottle/ground_truth/contamination/000_mask.png",
    "mvtec/bottle/license.txt",
    "mvtec/bottle/test/broken_large/000.png",
    "mvtec/bottle/test/broken_large/001.png",
    "mvtec/bottle/test/contamination/000.png",
    "mvtec/bottle/test/good/000.png",
    "mvtec/bottle/train/good/000.png",
    "mvtec/bottle/train/good/001.png",
    "mvtec/screw/ground_truth/thread_top/000_mask.png",
    "mvtec/screw/test/thread_top/000.png",
};

static void test_mvtec(void **state) {
    (void)state;
    const lathe_adapter *a = &lathe_adapter_mvtec;
    assert_int_equal(a->role("mvtec/bottle/ground_truth/broken_large/000_mask.png"), LATHE_ENTRY_MASK);
    assert_int_equal(a->role("mvtec/bottle/test/broken_large/000.png"), LATHE_ENTRY_IMAGE);
    assert_int_equal(a->role("mvtec/bottle/license.txt"), LATHE_ENTRY_OTHER);
    lathe_catalog *cat = lathe_catalog_create();
    size_t n = sizeof mvtec_paths / sizeof *mvtec_paths;
    assert_int_equal(a->scan_paths(cat, mvtec_paths, n), 0);
    assert_int_equal(count_rejects(cat, "missing_mask"), 1);
    assert_int_equal(lathe_catalog_finish(cat), 0);
    const char *names[] = {"good", "broken_large", "contamination", "thread_top"};
    assert_classes(cat, names, 4);
    assert_int_equal(lathe_catalog_nrecords(cat), 7);
    const lathe_record *r = record(cat, "mvtec/bottle/test/broken_large/000.png");
    assert_int_equal(r->label, 1);
    assert_string_equal(r->mask_file, "mvtec/bottle/ground_truth/broken_large/000_mask.png");
    r = record(cat, "mvtec/bottle/test/broken_large/001.png");
    assert_int_equal(r->label, 1); /* kept, though its mask is missing */
    assert_null(r->mask_file);
    assert_string_equal(lathe_catalog_reject_at(cat, 0)->path, "mvtec/bottle/test/broken_large/001.png");
    r = record(cat, "mvtec/bottle/test/contamination/000.png");
    assert_int_equal(r->label, 2);
    assert_string_equal(r->mask_file, "mvtec/bottle/ground_truth/contamination/000_mask.png");
    r = record(cat, "mvtec/screw/test/thread_top/000.png");
    assert_int_equal(r->label, 3);
    assert_string_equal(r->mask_file, "mvtec/screw/ground_truth/thread_top/000_mask.png");
    assert_int_equal(record(cat, "mvtec/bottle/test/good/000.png")->label, 0);
    assert_null(record(cat, "mvtec/bottle/test/good/000.png")->mask_file);
    assert_int_equal(record(cat, "mvtec/bottle/train/good/001.png")->label, 0);
    assert_null(lathe_catalog_find(cat, "mvtec/bottle/ground_truth/broken_large/000_mask.png"));
    lathe_catalog_free(cat);
}

/* ---- registry and detection ------------------------------------------------------------------- */

#define DETECT(paths) lathe_adapter_detect(paths, sizeof paths / sizeof *paths)

static void test_registry(void **state) {
    (void)state;
    const lathe_adapter *const *list = lathe_adapters();
    const char *order[] = {"coco", "mvtec", "yolo", "voc", "kitti", "folders"};
    for (size_t i = 0; i < 6; i++) {
        assert_non_null(list[i]);
        assert_string_equal(list[i]->name, order[i]);
        assert_ptr_equal(lathe_adapter_find(order[i]), list[i]);
        assert_non_null(list[i]->summary);
    }
    assert_null(list[6]);
    assert_null(lathe_adapter_find("darknet"));
    assert_null(lathe_adapter_find(NULL));
}

static void test_detect(void **state) {
    (void)state;
    const char *coco[] = {"ds/annotations/instances_train.json", "ds/train/a.jpg", "ds/train/b.jpg"};
    assert_ptr_equal(DETECT(coco), &lathe_adapter_coco);
    const char *yolo[] = {"ds/data.yaml", "ds/images/train/a.jpg", "ds/labels/train/a.txt"};
    assert_ptr_equal(DETECT(yolo), &lathe_adapter_yolo);
    const char *yolo_classes[] = {"obj/classes.txt", "obj/images/a.jpg", "obj/labels/a.txt", "obj/notes.json"};
    assert_ptr_equal(DETECT(yolo_classes), &lathe_adapter_yolo);
    const char *voc[] = {"VOC2007/Annotations/000001.xml", "VOC2007/ImageSets/Main/train.txt",
                         "VOC2007/JPEGImages/000001.jpg"};
    assert_ptr_equal(DETECT(voc), &lathe_adapter_voc);
    const char *voc_beside[] = {"train/a.jpg", "train/a.xml"};
    assert_ptr_equal(DETECT(voc_beside), &lathe_adapter_voc);
    const char *kitti[] = {"training/calib/000000.txt", "training/image_2/000000.png", "training/label_2/000000.txt"};
    assert_ptr_equal(DETECT(kitti), &lathe_adapter_kitti);
    assert_ptr_equal(DETECT(mvtec_paths), &lathe_adapter_mvtec);
    const char *folders[] = {"bolt/a.jpg", "nut/b.jpg", "readme.md"};
    assert_ptr_equal(DETECT(folders), &lathe_adapter_folders);
    assert_int_equal(lathe_adapter_folders.detect(folders, 3), 1);
    assert_ptr_equal(lathe_adapter_detect(NULL, 0), &lathe_adapter_folders);
    /* each format scores nothing on the others' typical layouts */
    assert_int_equal(lathe_adapter_yolo.detect(kitti, 3), 0);
    assert_int_equal(lathe_adapter_kitti.detect(yolo, 3), 0);
    assert_int_equal(lathe_adapter_voc.detect(yolo, 3), 0);
    assert_int_equal(lathe_adapter_mvtec.detect(folders, 3), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_yolo_data_yaml_list),
        cmocka_unit_test(test_yolo_data_yaml_map),
        cmocka_unit_test(test_yolo_classes_txt),
        cmocka_unit_test(test_yolo_without_class_list),
        cmocka_unit_test(test_yolo_malformed_lines),
        cmocka_unit_test(test_yolo_bad_yaml),
        cmocka_unit_test(test_yolo_yaml_alias_bomb),
        cmocka_unit_test(test_yolo_background_and_roles),
        cmocka_unit_test(test_voc_basic),
        cmocka_unit_test(test_voc_malformed_objects),
        cmocka_unit_test(test_voc_unusable_files),
        cmocka_unit_test(test_voc_billion_laughs),
        cmocka_unit_test(test_voc_external_entity),
        cmocka_unit_test(test_voc_errors_stay_off_stderr),
        cmocka_unit_test(test_kitti),
        cmocka_unit_test(test_folders),
        cmocka_unit_test(test_mvtec),
        cmocka_unit_test(test_registry),
        cmocka_unit_test(test_detect),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
