/* test_synth.c - the synthetic factory generator: determinism (across seeds, threads, output kinds
 * and counts), COCO/YOLO/VOC validity and agreement, decodable images, defect boxes that hold the
 * drawn defects, sensor windows whose patterns follow the labels. The realism knobs are tested in
 * test_synth_knobs.c, the descriptions in test_synth_text.c. */
#include <archive.h>
#include <archive_entry.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <sys/stat.h>

#include "libcore/base/log.h"
#include "synth_test.h"

static int count_files(const char *dir, const char *sub) {
    char cmd[4400];
    snprintf(cmd, sizeof cmd, "ls -1 '%s/%s' 2>/dev/null | wc -l", dir, sub);
    FILE *f = popen(cmd, "r");
    int n = -1;
    if (f) {
        if (fscanf(f, "%d", &n) != 1) n = -1;
        pclose(f);
    }
    return n;
}

/* Every relative path of the sample files a folder output holds (in writing order). */
static char **expected_paths(cJSON *coco, const lathe_synth_opts *o, int *n) {
    cJSON *images = cJSON_GetObjectItem(coco, "images"), *im;
    char **paths = calloc((size_t)cJSON_GetArraySize(images) * 5 + 2, sizeof *paths);
    int k = 0;
    paths[k++] = strdup("annotations.json");
    if (o->yolo) paths[k++] = strdup("data.yaml");
    cJSON_ArrayForEach(im, images) {
        const char *file = cJSON_GetObjectItem(im, "file_name")->valuestring;
        char stem[64], buf[128];
        stem_of(file, stem, sizeof stem);
        snprintf(buf, sizeof buf, "images/%s", file), paths[k++] = strdup(buf);
        snprintf(buf, sizeof buf, "sensors/%s.csv", stem), paths[k++] = strdup(buf);
        snprintf(buf, sizeof buf, "text/%s.txt", stem), paths[k++] = strdup(buf);
        if (o->yolo) snprintf(buf, sizeof buf, "labels/%s.txt", stem), paths[k++] = strdup(buf);
        if (o->voc) snprintf(buf, sizeof buf, "Annotations/%s.xml", stem), paths[k++] = strdup(buf);
    }
    *n = k;
    return paths;
}

static void free_paths(char **p, int n) {
    for (int i = 0; i < n; i++) free(p[i]);
    free(p);
}

/* Sensor CSV -> rows x 6 values (t + 5 channels); returns rows, -1 on a malformed file. */
static int parse_csv(const uint8_t *d, size_t len, double *vals, int cap_rows) {
    const char *s = (const char *)d, *end = s + len;
    const char *nl = memchr(s, '\n', len);
    if (!nl || strncmp(s, "t,vib_x,vib_y,vib_z,temperature,current\n", (size_t)(nl - s) + 1) != 0) return -1;
    s = nl + 1;
    int rows = 0;
    while (s < end) {
        if (rows >= cap_rows) return -1;
        for (int c = 0; c < 6; c++) {
            char *e;
            vals[rows * 6 + c] = strtod(s, &e);
            if (e == s || *e != (c == 5 ? '\n' : ',')) return -1;
            const char *dot = memchr(s, '.', (size_t)(e - s));
            if (!dot || e - dot - 1 != 6) return -1; /* fixed 6 decimals */
            s = e + 1;
        }
        rows++;
    }
    return rows;
}

static void test_options(void **state) {
    (void)state;
    lathe_synth_opts o;
    lathe_synth_defaults(&o);
    assert_int_equal(o.count, 200);
    assert_int_equal(o.width, 640);
    assert_int_equal(o.height, 480);
    assert_int_equal(o.sensor_steps, 64);
    assert_int_equal(o.jpeg_quality, 90);
    assert_true(o.png_ratio == 0.2);
    assert_int_equal(lathe_synth_check(&o), 0);
    lathe_synth_opts bad[7];
    for (int i = 0; i < 7; i++) bad[i] = o;
    bad[0].count = 0, bad[1].width = 31, bad[2].height = 20000, bad[3].png_ratio = 1.5, bad[4].jpeg_quality = 0;
    bad[5].threads = -1, bad[6].sensor_steps = 1;
    for (int i = 0; i < 7; i++) {
        assert_int_equal(lathe_synth_check(&bad[i]), -LATHE_EINVAL);
        assert_int_equal(lathe_synth_write(&bad[i], "/nonexistent/never"), -LATHE_EINVAL);
        assert_true(strlen(lathe_last_error()) > 0);
    }
    assert_string_equal(lathe_synth_class_name(0), "good");
    assert_string_equal(lathe_synth_class_name(4), "missing_hole");
    assert_string_equal(lathe_synth_class_name(6), "overheating");
    assert_string_equal(lathe_synth_class_name(7), "jam");
    assert_null(lathe_synth_class_name(8));
    assert_string_equal(lathe_synth_channel_name(3), "temperature");
}

/* Same options, different thread counts: byte-identical files; another seed: different ones. */
static void test_deterministic(void **state) {
    (void)state;
    lathe_synth_opts o = small_opts(14, 11);
    o.threads = 1;
    char *a = write_folder("synth-a", &o);
    o.threads = 3;
    char *b = write_folder("synth-b", &o);
    cJSON *coco = load_coco(a);
    int n;
    char **paths = expected_paths(coco, &o, &n);
    assert_int_equal(n, 2 + 14 * 5);
    for (int i = 0; i < n; i++) {
        size_t la, lb;
        uint8_t *da = read_in(a, paths[i], &la), *db = read_in(b, paths[i], &lb);
        if (!da || !db) fail_msg("missing %s", paths[i]);
        assert_int_equal(la, lb);
        assert_memory_equal(da, db, la);
        free(da);
        free(db);
    }
    assert_int_equal(count_files(a, "images"), 14);
    assert_int_equal(count_files(a, "sensors"), 14);

    o.seed = 12;
    char *c = write_folder("synth-c", &o);
    size_t la, lc;
    uint8_t *ja = read_in(a, "annotations.json", &la), *jc = read_in(c, "annotations.json", &lc);
    assert_true(la != lc || memcmp(ja, jc, la) != 0);
    free(ja);
    free(jc);
    uint8_t *sa = read_in(a, "sensors/part00001_v1.csv", &la), *sc = read_in(c, "sensors/part00001_v1.csv", &lc);
    assert_non_null(sa);
    assert_non_null(sc);
    assert_true(la != lc || memcmp(sa, sc, la) != 0);
    free(sa);
    free(sc);

    free_paths(paths, n);
    cJSON_Delete(coco);
    test_rmtree(a), test_rmtree(b), test_rmtree(c);
    free(a), free(b), free(c);
}

/* COCO parses, every image decodes to the declared size, boxes are inside with classes 1..4, the
 * image labels agree with the boxes and the text, and good samples are common. */
static void test_coco_images_text(void **state) {
    (void)state;
    lathe_synth_opts o = small_opts(90, 5);
    o.voc = o.yolo = 0;
    char *dir = write_folder("synth-coco", &o);
    cJSON *coco = load_coco(dir);
    cJSON *images = cJSON_GetObjectItem(coco, "images"), *anns = cJSON_GetObjectItem(coco, "annotations");
    cJSON *cats = cJSON_GetObjectItem(coco, "categories"), *it;
    assert_non_null(cJSON_GetObjectItem(coco, "info"));
    assert_int_equal(cJSON_GetArraySize(images), 90);
    assert_int_equal(cJSON_GetArraySize(cats), 8);
    int id = 0;
    cJSON_ArrayForEach(it, cats) {
        assert_int_equal(cJSON_GetObjectItem(it, "id")->valueint, id);
        assert_string_equal(cJSON_GetObjectItem(it, "name")->valuestring, lathe_synth_class_name(id));
        id++;
    }
    int nboxes[91] = {0}, box_class[91] = {0}, labels[7] = {0}, png = 0, views_seen = 0;
    int64_t last_ann = 0;
    cJSON_ArrayForEach(it, anns) {
        int64_t aid = (int64_t)cJSON_GetObjectItem(it, "id")->valuedouble;
        assert_true(aid == last_ann + 1);
        last_ann = aid;
        int img = cJSON_GetObjectItem(it, "image_id")->valueint, cat = cJSON_GetObjectItem(it, "category_id")->valueint;
        assert_in_range(img, 1, 90);
        assert_in_range(cat, 1, 4);
        cJSON *bb = cJSON_GetObjectItem(it, "bbox");
        assert_int_equal(cJSON_GetArraySize(bb), 4);
        double x = cJSON_GetArrayItem(bb, 0)->valuedouble, y = cJSON_GetArrayItem(bb, 1)->valuedouble;
        double w = cJSON_GetArrayItem(bb, 2)->valuedouble, h = cJSON_GetArrayItem(bb, 3)->valuedouble;
        assert_true(x >= 0 && y >= 0 && w > 0 && h > 0 && x + w <= o.width && y + h <= o.height);
        assert_true(cJSON_GetObjectItem(it, "area")->valuedouble == w * h);
        assert_int_equal(cJSON_GetObjectItem(it, "iscrowd")->valueint, 0);
        if (nboxes[img]++ == 0) box_class[img] = cat;
    }
    int index = 0;
    cJSON_ArrayForEach(it, images) {
        index++;
        assert_int_equal(cJSON_GetObjectItem(it, "id")->valueint, index);
        assert_int_equal(cJSON_GetObjectItem(it, "width")->valueint, o.width);
        assert_int_equal(cJSON_GetObjectItem(it, "height")->valueint, o.height);
        int label = cJSON_GetObjectItem(it, "label")->valueint;
        assert_in_range(label, 0, 6);
        labels[label]++;
        if (label >= 1 && label <= 4) {
            assert_true(nboxes[index] >= 1);
            assert_int_equal(box_class[index], label); /* the main defect comes first */
        } else {
            assert_int_equal(nboxes[index], 0);
        }
        const char *file = cJSON_GetObjectItem(it, "file_name")->valuestring;
        int part, view;
        char ext[8];
        assert_int_equal(sscanf(file, "part%5d_v%d.%3s", &part, &view, ext), 3);
        assert_true(view >= 1 && view <= 3);
        views_seen |= 1 << view;
        png += strcmp(ext, "png") == 0;
        assert_true(strcmp(ext, "png") == 0 || strcmp(ext, "jpg") == 0);

        char rel[128], stem[64];
        snprintf(rel, sizeof rel, "images/%s", file);
        size_t len;
        uint8_t *data = read_in(dir, rel, &len);
        assert_non_null(data);
        assert_int_equal(lathe_image_sniff(data, len), strcmp(ext, "png") == 0 ? LATHE_FORMAT_PNG : LATHE_FORMAT_JPEG);
        lathe_decode_opts dopts = {.channels = 3};
        lathe_image img;
        if (lathe_image_decode(data, len, &dopts, &img, NULL)) fail_msg("%s: %s", rel, lathe_last_error());
        assert_int_equal(img.width, o.width);
        assert_int_equal(img.height, o.height);
        lathe_image_free(&img);
        free(data);

        /* The description: one line, the same as in COCO, naming what the label says. */
        stem_of(file, stem, sizeof stem);
        snprintf(rel, sizeof rel, "text/%s.txt", stem);
        char *txt = (char *)read_in(dir, rel, &len);
        assert_non_null(txt);
        assert_true(len > 20 && txt[len - 1] == '\n' && memchr(txt, '\n', len - 1) == NULL);
        txt[len - 1] = 0;
        assert_string_equal(txt, cJSON_GetObjectItem(it, "description")->valuestring);
        if (!says_class(txt, label)) fail_msg("label %d but text '%s'", label, txt);
        if (image_defect(label) && says_class(txt, LATHE_SYNTH_GOOD)) fail_msg("label %d but text '%s'", label, txt);
        free(txt);
    }
    assert_true(png > 0 && png < 90);
    assert_int_equal(views_seen, 2 | 4 | 8); /* parts seen once, twice and three times */
    assert_true(labels[0] >= 90 * 0.2 && labels[0] <= 90 * 0.65);
    for (int c = 1; c <= 6; c++)
        if (labels[c] == 0) fail_msg("no sample labelled %s in 90", lathe_synth_class_name(c));
    cJSON_Delete(coco);
    test_rmtree(dir);
    free(dir);
}

/* YOLO and VOC say exactly what COCO says. */
static void test_yolo_voc_agree(void **state) {
    (void)state;
    lathe_synth_opts o = small_opts(30, 21);
    o.width = 200, o.height = 130;
    char *dir = write_folder("synth-yv", &o);
    cJSON *coco = load_coco(dir);
    cJSON *images = cJSON_GetObjectItem(coco, "images"), *anns = cJSON_GetObjectItem(coco, "annotations"), *im;
    size_t len;
    char *yaml = (char *)read_in(dir, "data.yaml", &len);
    assert_non_null(yaml);
    assert_non_null(strstr(yaml, "nc: 8\n"));
    assert_non_null(strstr(yaml, "names:\n  - good\n  - scratch\n  - dent\n  - crack\n  - missing_hole\n"
                                 "  - bearing_wear\n  - overheating\n  - jam\n"));
    free(yaml);
    int total = 0;
    cJSON_ArrayForEach(im, images) {
        int img_id = cJSON_GetObjectItem(im, "id")->valueint;
        const char *file = cJSON_GetObjectItem(im, "file_name")->valuestring;
        double boxes[LATHE_SYNTH_MAX_BOXES][5];
        int nb = 0;
        cJSON *a;
        cJSON_ArrayForEach(a, anns) {
            if (cJSON_GetObjectItem(a, "image_id")->valueint != img_id) continue;
            cJSON *bb = cJSON_GetObjectItem(a, "bbox");
            boxes[nb][0] = cJSON_GetObjectItem(a, "category_id")->valueint;
            for (int k = 0; k < 4; k++) boxes[nb][k + 1] = cJSON_GetArrayItem(bb, k)->valuedouble;
            nb++;
        }
        total += nb;
        char stem[64], rel[128];
        stem_of(file, stem, sizeof stem);

        snprintf(rel, sizeof rel, "labels/%s.txt", stem);
        char *y = (char *)read_in(dir, rel, &len);
        assert_non_null(y);
        y = realloc(y, len + 1);
        y[len] = 0;
        int lines = 0;
        char *save = NULL;
        for (char *line = strtok_r(y, "\n", &save); line; line = strtok_r(NULL, "\n", &save), lines++) {
            int cls;
            double cx, cy, w, h;
            assert_int_equal(sscanf(line, "%d %lf %lf %lf %lf", &cls, &cx, &cy, &w, &h), 5);
            assert_true(lines < nb);
            const double *b = boxes[lines];
            assert_int_equal(cls, (int)b[0]);
            assert_true(fabs(cx * o.width - (b[1] + b[3] / 2)) < 1e-3 && fabs(cy * o.height - (b[2] + b[4] / 2)) < 1e-3);
            assert_true(fabs(w * o.width - b[3]) < 1e-3 && fabs(h * o.height - b[4]) < 1e-3);
        }
        assert_int_equal(lines, nb);
        free(y);

        snprintf(rel, sizeof rel, "Annotations/%s.xml", stem);
        uint8_t *x = read_in(dir, rel, &len);
        assert_non_null(x);
        xmlDocPtr doc = xmlReadMemory((const char *)x, (int)len, rel, NULL, XML_PARSE_NONET);
        assert_non_null(doc);
        xmlNodePtr root = xmlDocGetRootElement(doc);
        assert_string_equal((const char *)root->name, "annotation");
        int objects = 0;
        for (xmlNodePtr n = root->children; n; n = n->next) {
            if (n->type != XML_ELEMENT_NODE) continue;
            xmlChar *content = xmlNodeGetContent(n);
            if (!strcmp((const char *)n->name, "filename")) assert_string_equal((const char *)content, file);
            if (!strcmp((const char *)n->name, "size")) {
                int w = 0, h = 0, d = 0;
                for (xmlNodePtr s = n->children; s; s = s->next) {
                    if (s->type != XML_ELEMENT_NODE) continue;
                    xmlChar *v = xmlNodeGetContent(s);
                    if (!strcmp((const char *)s->name, "width")) w = atoi((const char *)v);
                    if (!strcmp((const char *)s->name, "height")) h = atoi((const char *)v);
                    if (!strcmp((const char *)s->name, "depth")) d = atoi((const char *)v);
                    xmlFree(v);
                }
                assert_true(w == o.width && h == o.height && d == 3);
            }
            if (!strcmp((const char *)n->name, "object")) {
                assert_true(objects < nb);
                const double *b = boxes[objects++];
                char name[32] = "";
                int v[4] = {-1, -1, -1, -1};
                for (xmlNodePtr s = n->children; s; s = s->next) {
                    if (s->type != XML_ELEMENT_NODE) continue;
                    if (!strcmp((const char *)s->name, "name")) {
                        xmlChar *t = xmlNodeGetContent(s);
                        snprintf(name, sizeof name, "%s", (const char *)t);
                        xmlFree(t);
                    }
                    if (strcmp((const char *)s->name, "bndbox")) continue;
                    for (xmlNodePtr e = s->children; e; e = e->next) {
                        if (e->type != XML_ELEMENT_NODE) continue;
                        static const char *const keys[4] = {"xmin", "ymin", "xmax", "ymax"};
                        xmlChar *t = xmlNodeGetContent(e);
                        for (int k = 0; k < 4; k++)
                            if (!strcmp((const char *)e->name, keys[k])) v[k] = atoi((const char *)t);
                        xmlFree(t);
                    }
                }
                assert_string_equal(name, lathe_synth_class_name((int)b[0]));
                /* 1-based inclusive: xmin = x + 1, xmax = x + w */
                assert_int_equal(v[0], (int)b[1] + 1);
                assert_int_equal(v[1], (int)b[2] + 1);
                assert_int_equal(v[2], (int)(b[1] + b[3]));
                assert_int_equal(v[3], (int)(b[2] + b[4]));
            }
            xmlFree(content);
        }
        assert_int_equal(objects, nb);
        xmlFreeDoc(doc);
        free(x);
    }
    assert_true(total > 0);
    cJSON_Delete(coco);
    test_rmtree(dir);
    free(dir);
}

static double slope(const double *vals, int rows, int col) {
    double mt = 0, mv = 0, num = 0, den = 0;
    for (int t = 0; t < rows; t++) mt += t, mv += vals[t * 6 + col];
    mt /= rows, mv /= rows;
    for (int t = 0; t < rows; t++) num += (t - mt) * (vals[t * 6 + col] - mv), den += (t - mt) * (t - mt);
    return num / den;
}

/* Share of vibration energy in step-to-step changes: high for a high-frequency component. */
static double hf_ratio(const double *vals, int rows) {
    double d = 0, e = 0;
    for (int c = 1; c <= 3; c++) {
        double m = 0;
        for (int t = 0; t < rows; t++) m += vals[t * 6 + c];
        m /= rows;
        for (int t = 0; t < rows; t++) e += (vals[t * 6 + c] - m) * (vals[t * 6 + c] - m);
        for (int t = 1; t < rows; t++) d += (vals[t * 6 + c] - vals[(t - 1) * 6 + c]) * (vals[t * 6 + c] - vals[(t - 1) * 6 + c]);
    }
    return d / e;
}

static double peak_vib(const double *vals, int rows) {
    double p = 0;
    for (int t = 0; t < rows; t++)
        for (int c = 1; c <= 3; c++) p = fmax(p, fabs(vals[t * 6 + c]));
    return p;
}

/* The highest motor current of a window over its median (column 5 of vals, rows rows). */
static double current_jump(const double *vals, int rows) {
    double c[64], hi = 0;
    for (int t = 0; t < rows; t++) c[t] = vals[t * 6 + 5], hi = fmax(hi, c[t]);
    for (int i = 1; i < rows; i++) /* insertion sort: rows <= 64 */
        for (int j = i; j > 0 && c[j - 1] > c[j]; j--) {
            double x = c[j];
            c[j] = c[j - 1], c[j - 1] = x;
        }
    return hi / c[rows / 2];
}

/* The sensor-only defects are visible in the sensors, and only there; crack shows a burst; a jam
 * spikes the current. */
static void test_sensors(void **state) {
    (void)state;
    lathe_synth_opts o = small_opts(150, 3);
    o.width = 64, o.height = 48, o.voc = o.yolo = 0, o.png_ratio = 0;
    o.sensor_steps = 64;
    char *dir = write_folder("synth-sens", &o);
    cJSON *coco = load_coco(dir);
    cJSON *images = cJSON_GetObjectItem(coco, "images"), *anns = cJSON_GetObjectItem(coco, "annotations"), *im, *a;
    double vals[64 * 6];
    double good_slope_max = -1e9, good_hf_max = 0, good_peak_max = 0;
    double heat_slope_min = 1e9, bear_hf_min = 1e9, crack_peak_min = 1e9, good_jump_max = 0, jam_jump_min = 1e9;
    int n_good = 0, n_heat = 0, n_bear = 0, n_crack = 0, n_jam = 0;
    cJSON_ArrayForEach(im, images) {
        char stem[64], rel[128];
        stem_of(cJSON_GetObjectItem(im, "file_name")->valuestring, stem, sizeof stem);
        snprintf(rel, sizeof rel, "sensors/%s.csv", stem);
        size_t len;
        uint8_t *d = read_in(dir, rel, &len);
        assert_non_null(d);
        int rows = parse_csv(d, len, vals, 64);
        free(d);
        assert_int_equal(rows, 64);
        for (int t = 0; t < rows; t++) assert_true(fabs(vals[t * 6] - t / 200.0) < 1e-6);
        int label = cJSON_GetObjectItem(im, "label")->valueint, crack = 0;
        cJSON_ArrayForEach(a, anns) /* a crack may also come second, after another defect */
            crack |= cJSON_GetObjectItem(a, "image_id")->valueint == cJSON_GetObjectItem(im, "id")->valueint &&
                     cJSON_GetObjectItem(a, "category_id")->valueint == LATHE_SYNTH_CRACK;
        double s = slope(vals, rows, 4) * rows, hf = hf_ratio(vals, rows), pk = peak_vib(vals, rows);
        double cur = slope(vals, rows, 5) * rows, jump = current_jump(vals, rows);
        if (crack) {
            n_crack++;
            crack_peak_min = fmin(crack_peak_min, pk);
        } else if (label == 0 || label == 1 || label == 2 || label == 4) { /* image-only or nothing */
            n_good++;
            good_slope_max = fmax(good_slope_max, s), good_hf_max = fmax(good_hf_max, hf);
            good_peak_max = fmax(good_peak_max, pk);
            good_jump_max = fmax(good_jump_max, jump);
            assert_true(fabs(cur) < 0.3);
        } else if (label == LATHE_SYNTH_OVERHEATING) {
            n_heat++;
            heat_slope_min = fmin(heat_slope_min, s);
            assert_true(cur > 0.3); /* current rises with the temperature */
        } else if (label == LATHE_SYNTH_BEARING_WEAR) {
            n_bear++;
            bear_hf_min = fmin(bear_hf_min, hf);
        } else if (label == LATHE_SYNTH_JAM) {
            n_jam++;
            jam_jump_min = fmin(jam_jump_min, jump);
        }
    }
    assert_true(n_good > 20 && n_heat > 0 && n_bear > 0 && n_crack > 0 && n_jam > 0);
    /* a jam's current spike: the current at least doubles its median somewhere; never otherwise */
    assert_true(good_jump_max < 1.3);
    assert_true(jam_jump_min > 1.8);
    /* rise over the window: >= 4 degrees when overheating, under 1 otherwise */
    assert_true(good_slope_max < 1.0);
    assert_true(heat_slope_min > 3.0);
    assert_true(bear_hf_min > good_hf_max);
    assert_true(crack_peak_min > good_peak_max);
    cJSON_Delete(coco);
    test_rmtree(dir);
    free(dir);
}

static void test_boxes_hold_defects(void **state) {
    (void)state;
    lathe_synth_opts o = small_opts(1, 8);
    o.width = 320, o.height = 240;
    check_boxes_hold_defects(&o, 160);
}

/* A tar holds exactly the folder's files, annotations.json first; .tar.gz is deterministic too;
 * lathe_synth_sample_make gives the very same sample. */
static void test_tar_and_memory(void **state) {
    (void)state;
    lathe_synth_opts o = small_opts(9, 4);
    o.png_ratio = 0.5;
    o.threads = 1;
    char *dir = write_folder("synth-tarref", &o);
    char *tmp = test_tempdir("synth-tar");
    char *tar = path_join(tmp, "sub/out.tar"), *gz1 = path_join(tmp, "a.tar.gz"), *gz2 = path_join(tmp, "b.tar.gz");
    char *zst = path_join(tmp, "c.tar.zst");
    o.threads = 2;
    assert_int_equal(lathe_synth_write(&o, tar), 0);
    assert_int_equal(lathe_synth_write(&o, gz1), 0);
    o.threads = 3;
    assert_int_equal(lathe_synth_write(&o, gz2), 0);
    assert_int_equal(lathe_synth_write(&o, zst), 0);
    size_t l1, l2;
    uint8_t *g1 = test_read_file(gz1, &l1), *g2 = test_read_file(gz2, &l2);
    assert_non_null(g1);
    assert_non_null(g2);
    assert_int_equal(l1, l2);
    assert_memory_equal(g1, g2, l1);
    free(g1);
    free(g2);

    cJSON *coco = load_coco(dir);
    int n;
    char **paths = expected_paths(coco, &o, &n);
    const char *archives[2] = {tar, zst};
    for (int ai = 0; ai < 2; ai++) {
        struct archive *ar = archive_read_new();
        archive_read_support_format_tar(ar);
        archive_read_support_filter_all(ar);
        assert_int_equal(archive_read_open_filename(ar, archives[ai], 65536), ARCHIVE_OK);
        struct archive_entry *e;
        int k = 0;
        while (archive_read_next_header(ar, &e) == ARCHIVE_OK) {
            assert_true(k < n);
            assert_string_equal(archive_entry_pathname(e), paths[k]);
            size_t len;
            uint8_t *want = read_in(dir, paths[k], &len);
            assert_int_equal(archive_entry_size(e), (int64_t)len);
            uint8_t *got = malloc(len + 1);
            assert_int_equal(archive_read_data(ar, got, len + 1), (la_ssize_t)len);
            assert_memory_equal(got, want, len);
            free(got);
            free(want);
            k++;
        }
        assert_int_equal(k, n);
        archive_read_free(ar);
    }

    /* An existing archive is kept unless force; no partial file is left behind. */
    assert_int_equal(lathe_synth_write(&o, tar), -LATHE_EEXIST);
    o.force = 1;
    assert_int_equal(lathe_synth_write(&o, tar), 0);
    char *partial = path_join(tmp, "sub/out.tar.partial");
    struct stat st;
    assert_int_not_equal(stat(partial, &st), 0);
    free(partial);

    /* In memory: the same pixels as the PNG files, the same boxes and text as the labels. */
    cJSON *images = cJSON_GetObjectItem(coco, "images"), *anns = cJSON_GetObjectItem(coco, "annotations");
    int pngs = 0;
    for (int i = 0; i < o.count; i++) {
        lathe_synth_sample s;
        assert_int_equal(lathe_synth_sample_make(&o, (size_t)i, &s), 0);
        cJSON *im = cJSON_GetArrayItem(images, i);
        const char *file = cJSON_GetObjectItem(im, "file_name")->valuestring;
        assert_int_equal(strncmp(file, s.stem, strlen(s.stem)), 0);
        assert_int_equal(s.label, cJSON_GetObjectItem(im, "label")->valueint);
        assert_string_equal(s.text, cJSON_GetObjectItem(im, "description")->valuestring);
        int nb = 0;
        cJSON *a;
        cJSON_ArrayForEach(a, anns) {
            if (cJSON_GetObjectItem(a, "image_id")->valueint != i + 1) continue;
            cJSON *bb = cJSON_GetObjectItem(a, "bbox");
            assert_true(nb < s.nboxes);
            assert_int_equal(s.boxes[nb].category, cJSON_GetObjectItem(a, "category_id")->valueint);
            assert_int_equal(s.boxes[nb].x, cJSON_GetArrayItem(bb, 0)->valueint);
            assert_int_equal(s.boxes[nb].y, cJSON_GetArrayItem(bb, 1)->valueint);
            assert_int_equal(s.boxes[nb].w, cJSON_GetArrayItem(bb, 2)->valueint);
            assert_int_equal(s.boxes[nb].h, cJSON_GetArrayItem(bb, 3)->valueint);
            nb++;
        }
        assert_int_equal(nb, s.nboxes);
        if (s.is_png) {
            char rel[96];
            snprintf(rel, sizeof rel, "images/%s", file);
            size_t len;
            uint8_t *data = read_in(dir, rel, &len);
            lathe_decode_opts dopts = {.channels = 3};
            lathe_image img;
            assert_int_equal(lathe_image_decode(data, len, &dopts, &img, NULL), 0);
            assert_memory_equal(img.pixels, s.image.pixels, (size_t)o.width * o.height * 3);
            lathe_image_free(&img);
            free(data);
            pngs++;
        }
        lathe_synth_sample_free(&s);
    }
    assert_true(pngs > 0);

    free_paths(paths, n);
    cJSON_Delete(coco);
    test_rmtree(dir);
    test_rmtree(tmp);
    free(dir), free(tmp), free(tar), free(gz1), free(gz2), free(zst);
}

/* A smaller archive is a prefix of a larger one; a non-empty folder needs force. */
static void test_prefix_and_existing(void **state) {
    (void)state;
    lathe_synth_opts o = small_opts(5, 77);
    char *a = write_folder("synth-p5", &o);
    o.count = 11;
    char *b = write_folder("synth-p11", &o);
    cJSON *ca = load_coco(a), *cb = load_coco(b);
    check_same_first_images(a, ca, b, cb, 5);
    cJSON_Delete(ca);
    cJSON_Delete(cb);

    o.count = 3;
    assert_int_equal(lathe_synth_write(&o, a), -LATHE_EEXIST);
    assert_non_null(strstr(lathe_last_error(), "not empty"));
    o.force = 1;
    assert_int_equal(lathe_synth_write(&o, a), 0);
    cJSON *c3 = load_coco(a);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(c3, "images")), 3);
    cJSON_Delete(c3);
    /* a file where the folder should be */
    char *file = path_join(a, "annotations.json");
    assert_int_equal(lathe_synth_write(&o, file), -LATHE_EEXIST);
    free(file);
    test_rmtree(a), test_rmtree(b);
    free(a), free(b);
}

int main(void) {
    lathe_log_set_level(LATHE_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_options),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_coco_images_text),
        cmocka_unit_test(test_yolo_voc_agree),
        cmocka_unit_test(test_sensors),
        cmocka_unit_test(test_boxes_hold_defects),
        cmocka_unit_test(test_tar_and_memory),
        cmocka_unit_test(test_prefix_and_existing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
