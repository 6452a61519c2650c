/* test_synth.c - the synthetic factory generator: determinism (across seeds, threads, output kinds
 * and counts), COCO/YOLO/VOC validity and agreement, decodable images, defect boxes that hold the
 * drawn defects, sensor windows whose patterns follow the labels; descriptions that are true of
 * their scene, varied and deterministic; the realism knobs: each changes what it says, and at their
 * defaults the output is the original one. */
#include "testutil.h"

#include <archive.h>
#include <archive_entry.h>
#include <cjson/cJSON.h>
#include <ctype.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <math.h>
#include <sys/stat.h>

#include "datasets/synth.h"
#include "datasets/synth_internal.h"
#include "libcore/base/error.h"
#include "libcore/base/log.h"
#include "libcore/io/image.h"

/* ---- helpers ---- */

static lathe_synth_opts small_opts(int count, uint64_t seed) {
    lathe_synth_opts o;
    lathe_synth_defaults(&o);
    o.count = count;
    o.seed = seed;
    o.width = 160;
    o.height = 120;
    o.sensor_steps = 48;
    o.png_ratio = 0.3;
    o.yolo = o.voc = 1;
    o.threads = 2;
    return o;
}

static char *path_join(const char *a, const char *b) {
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = malloc(n);
    snprintf(p, n, "%s/%s", a, b);
    return p;
}

static uint8_t *read_in(const char *dir, const char *rel, size_t *len) {
    char *p = path_join(dir, rel);
    uint8_t *d = test_read_file(p, len);
    free(p);
    return d;
}

static cJSON *load_coco(const char *dir) {
    size_t len;
    uint8_t *d = read_in(dir, "annotations.json", &len);
    assert_non_null(d);
    cJSON *j = cJSON_ParseWithLength((const char *)d, len);
    free(d);
    assert_non_null(j);
    return j;
}

static void stem_of(const char *file, char *stem, size_t cap) {
    snprintf(stem, cap, "%s", file);
    char *dot = strrchr(stem, '.');
    if (dot) *dot = 0;
}

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

static char *write_folder(const char *tag, const lathe_synth_opts *o) {
    char *dir = test_tempdir(tag);
    assert_non_null(dir);
    int rc = lathe_synth_write(o, dir);
    if (rc) fail_msg("lathe_synth_write: %s", lathe_last_error());
    return dir;
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

static int image_defect(int label) { return label >= LATHE_SYNTH_SCRATCH && label <= LATHE_SYNTH_MISSING_HOLE; }

/* ---- descriptions ---- */

/* The words a description names each class with (matched in lower case); for a good part, the
 * ways it says there is no defect. */
static const char *const class_words[LATHE_SYNTH_NCLASSES][4] = {
    {"no visible defects", "no defects", "free of visible defects", "defects: none"},
    {"scratch"},
    {"dent", "dimple"},
    {"crack", "fracture"},
    {"missing", "undrilled", "never drilled"},
    {"bearing wear"},
    {"overheating"},
    {"jam"},
};

static void lower_case(const char *text, char *out, size_t cap) {
    size_t i = 0;
    for (; text[i] && i + 1 < cap; i++) out[i] = (char)tolower((unsigned char)text[i]);
    out[i] = 0;
}

/* 1 when the description names class cls with one of its words. */
static int says_class(const char *text, int cls) {
    char low[LATHE_SYNTH_TEXT_MAX];
    lower_case(text, low, sizeof low);
    for (int i = 0; i < 4 && class_words[cls][i]; i++)
        if (strstr(low, class_words[cls][i])) return 1;
    return 0;
}

/* The description's words in lower case, punctuation dropped; returns how many (at most cap). */
static int split_words(const char *text, char *buf, size_t bufcap, char **word, int cap) {
    lower_case(text, buf, bufcap);
    for (char *c = buf; *c; c++)
        if (strchr(",;:.()", *c)) *c = ' ';
    int n = 0;
    for (char *w = strtok(buf, " "); w && n < cap; w = strtok(NULL, " ")) word[n++] = w;
    return n;
}

static int has_word(char **word, int n, const char *w) {
    for (int i = 0; i < n; i++)
        if (strcmp(word[i], w) == 0) return 1;
    return 0;
}

/* 1 when word[i] is the count of a class's noun: "two", "2", or "a"/"an"/"one"/"1" for one. */
static int is_count(const char *w, int n) {
    static const char *const names[] = {"", "one", "two", "three", "four", "five", "six", "seven", "eight"};
    char digits[8];
    snprintf(digits, sizeof digits, "%d", n);
    return strcmp(w, names[n]) == 0 || strcmp(w, digits) == 0 ||
           (n == 1 && (strcmp(w, "a") == 0 || strcmp(w, "an") == 0));
}

/* A word of each class's noun holds one of these (and a good part's "no defects" holds "defect"). */
static const char *const noun_stems[5][2] = {
    {"defect", "defect"}, {"scratch", "scratch"}, {"dent", "dimple"}, {"crack", "fracture"}, {"hole", "hole"}};

static int is_noun(const char *word, int cat) {
    return strstr(word, noun_stems[cat][0]) || strstr(word, noun_stems[cat][1]);
}

/* 1 when a count of n stands at most five words before a noun of class cat. */
static int says_count(char **word, int nw, int cat, int n) {
    for (int i = 0; i < nw; i++) {
        if (!is_count(word[i], n)) continue;
        for (int j = i + 1; j < nw && j <= i + 5; j++)
            if (is_noun(word[j], cat)) return 1;
    }
    return 0;
}

/* Everything a description says holds for its scene: one line of at most 60 words, each class
 * present named (with its count and places) and no other, "no defects" exactly when there are
 * none, the sensors' patterns, and size and strength words only where a defect has them. */
static void check_description(const synth_scene *sc, const char *txt) {
    size_t len = strlen(txt);
    char buf[LATHE_SYNTH_TEXT_MAX], *word[LATHE_SYNTH_TEXT_MAX / 2], low[LATHE_SYNTH_TEXT_MAX];
    int nw = split_words(txt, buf, sizeof buf, word, LATHE_SYNTH_TEXT_MAX / 2);
    lower_case(txt, low, sizeof low);
    if (len < 20 || len >= LATHE_SYNTH_TEXT_MAX - 1 || strchr(txt, '\n') || txt[len - 1] != '.' ||
        !isupper((unsigned char)txt[0]) || nw > 60)
        fail_msg("%d words: '%s'", nw, txt);
    int n[LATHE_SYNTH_NCLASSES] = {0}, size[3] = {0}, sev[3] = {0}, shallow_ok = 0, dimple_ok = 0;
    for (int i = 0; i < sc->ndefects; i++) {
        const synth_defect *d = &sc->defects[i];
        synth_defect_traits tr = lathe_synth_defect_traits(sc, d);
        n[d->category]++;
        size[tr.size + 1]++, sev[tr.severity + 1]++;
        if (d->category == LATHE_SYNTH_DENT) shallow_ok |= tr.severity <= 0, dimple_ok |= tr.severity <= 0 && tr.size <= 0;
        if (!strstr(low, tr.place)) fail_msg("%s at the %s: '%s'", lathe_synth_class_name(d->category), tr.place, txt);
    }
    for (int c = LATHE_SYNTH_SCRATCH; c <= LATHE_SYNTH_MISSING_HOLE; c++) {
        if (says_class(txt, c) != (n[c] > 0)) fail_msg("%d %s: '%s'", n[c], lathe_synth_class_name(c), txt);
        if (n[c] && !says_count(word, nw, c, n[c])) fail_msg("count %d of %s: '%s'", n[c], lathe_synth_class_name(c), txt);
    }
    if (n[LATHE_SYNTH_MISSING_HOLE]) assert_non_null(strstr(low, "hole"));
    if (says_class(txt, LATHE_SYNTH_GOOD) != (sc->ndefects == 0)) fail_msg("%d defects: '%s'", sc->ndefects, txt);
    if ((strstr(low, "burst") != NULL) != sc->crack || says_class(txt, LATHE_SYNTH_BEARING_WEAR) != sc->bearing ||
        says_class(txt, LATHE_SYNTH_OVERHEATING) != sc->overheat)
        fail_msg("sensors crack %d bearing %d overheat %d: '%s'", sc->crack, sc->bearing, sc->overheat, txt);
    if ((sc->bearing || sc->overheat) && (strstr(low, "good condition") || strstr(low, "clean part")))
        fail_msg("a sensor fault in good condition: '%s'", txt);
    if ((has_word(word, nw, "short") || has_word(word, nw, "small")) && !size[0]) fail_msg("none small: '%s'", txt);
    if ((has_word(word, nw, "long") || has_word(word, nw, "large")) && !size[2]) fail_msg("none large: '%s'", txt);
    if ((has_word(word, nw, "faint") || has_word(word, nw, "barely")) && !sev[0]) fail_msg("none faint: '%s'", txt);
    if ((has_word(word, nw, "deep") || has_word(word, nw, "pronounced")) && !sev[2]) fail_msg("none deep: '%s'", txt);
    if (strstr(low, "shallow") && !shallow_ok) fail_msg("no shallow dent: '%s'", txt);
    if (strstr(low, "dimple") && !dimple_ok) fail_msg("no dimple: '%s'", txt);
}

/* ---- tests ---- */

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

/* Every defect of samples 0..n-1 is drawn inside its box (blur may spread it by one pixel), reaches
 * the box's edges within a pixel, and is clearly visible; a missing hole's box is where the hole
 * would be. Fails unless every image defect kind was seen. */
static void check_boxes_hold_defects(const lathe_synth_opts *opts, size_t n) {
    lathe_synth_opts o = *opts;
    lathe_image a, b;
    assert_int_equal(lathe_image_alloc(&a, o.width, o.height, 3), 0);
    assert_int_equal(lathe_image_alloc(&b, o.width, o.height, 3), 0);
    void *scratch = malloc(lathe_synth_scratch_bytes(o.width, o.height));
    int checked[5] = {0};
    for (size_t index = 0; index < n; index++) {
        int part, view;
        lathe_synth_locate(o.seed, index, &part, &view);
        synth_scene sc;
        lathe_synth_plan(&o, part, view, &sc);
        for (int k = 0; k < sc.ndefects; k++) {
            const synth_defect *d = &sc.defects[k];
            assert_true(d->x0 >= 0 && d->y0 >= 0 && d->x1 < o.width && d->y1 < o.height && d->x1 >= d->x0 && d->y1 >= d->y0);
            if (d->category == LATHE_SYNTH_MISSING_HOLE) {
                const synth_pose *m = &sc.main;
                int found = 0;
                for (int h = 0; h < m->part.nholes; h++) {
                    if (!(m->part.missing >> h & 1)) continue;
                    float c = cosf(m->theta), s = sinf(m->theta);
                    float x = m->cx + m->R * (m->part.holes[h].x * c - m->part.holes[h].y * s);
                    float y = m->cy + m->R * (m->part.holes[h].x * s + m->part.holes[h].y * c);
                    float r = m->part.holes[h].r * m->R;
                    found |= fabsf(x - (float)(d->x0 + d->x1 + 1) / 2) < 1 && fabsf(y - (float)(d->y0 + d->y1 + 1) / 2) < 1 &&
                             fabsf((float)(d->x1 - d->x0 + 1) - 2 * r) < 2.5f;
                }
                assert_true(found);
                checked[4]++;
                continue;
            }
            /* Draw the scene with and without this one defect (same noise): the difference. */
            synth_scene without = sc;
            without.defects[k] = without.defects[sc.ndefects - 1];
            without.ndefects--;
            lathe_synth_render(&sc, &a, scratch);
            lathe_synth_render(&without, &b, scratch);
            int lo_x = o.width, hi_x = -1, lo_y = o.height, hi_y = -1, strong = 0;
            for (int y = 0; y < o.height; y++)
                for (int x = 0; x < o.width; x++) {
                    size_t i = ((size_t)y * o.width + x) * 3;
                    int diff = abs(a.pixels[i] - b.pixels[i]) + abs(a.pixels[i + 1] - b.pixels[i + 1]) +
                               abs(a.pixels[i + 2] - b.pixels[i + 2]);
                    if (!diff) continue;
                    if (x < d->x0 - 1 || x > d->x1 + 1 || y < d->y0 - 1 || y > d->y1 + 1)
                        fail_msg("sample %zu defect %d (%s) changes pixel %d,%d outside its box %d,%d-%d,%d", index, k,
                                 lathe_synth_class_name(d->category), x, y, d->x0, d->y0, d->x1, d->y1);
                    strong += diff >= 24;
                    if (diff >= 6) lo_x = x < lo_x ? x : lo_x, hi_x = x > hi_x ? x : hi_x, lo_y = y < lo_y ? y : lo_y, hi_y = y > hi_y ? y : hi_y;
                }
            if (strong < 3) fail_msg("sample %zu: %s hardly visible", index, lathe_synth_class_name(d->category));
            /* tight: what is visibly changed spans the box to within two pixels on every side */
            if (lo_x > d->x0 + 2 || hi_x < d->x1 - 2 || lo_y > d->y0 + 2 || hi_y < d->y1 - 2)
                fail_msg("sample %zu: %s box %d,%d-%d,%d but visible %d,%d-%d,%d", index,
                         lathe_synth_class_name(d->category), d->x0, d->y0, d->x1, d->y1, lo_x, lo_y, hi_x, hi_y);
            checked[d->category]++;
        }
    }
    for (int c = 1; c <= 4; c++)
        if (!checked[c]) fail_msg("no %s among the samples", lathe_synth_class_name(c));
    free(scratch);
    lathe_image_free(&a);
    lathe_image_free(&b);
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
    cJSON *ia = cJSON_GetObjectItem(ca, "images"), *ib = cJSON_GetObjectItem(cb, "images");
    for (int i = 0; i < 5; i++) {
        char *x = cJSON_PrintUnformatted(cJSON_GetArrayItem(ia, i)), *y = cJSON_PrintUnformatted(cJSON_GetArrayItem(ib, i));
        assert_string_equal(x, y);
        char rel[96];
        snprintf(rel, sizeof rel, "images/%s", cJSON_GetObjectItem(cJSON_GetArrayItem(ia, i), "file_name")->valuestring);
        size_t la, lb;
        uint8_t *da = read_in(a, rel, &la), *db = read_in(b, rel, &lb);
        assert_int_equal(la, lb);
        assert_memory_equal(da, db, la);
        free(da), free(db), free(x), free(y);
    }
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

/* ---- realism knobs ---- */

/* The plan of sample index under o. */
static synth_scene plan_of(const lathe_synth_opts *o, size_t index) {
    int part, view;
    lathe_synth_locate(o->seed, index, &part, &view);
    synth_scene sc;
    lathe_synth_plan(o, part, view, &sc);
    return sc;
}

/* Mean area of the boxes of scratches, dents and cracks (missing holes keep their size). */
static double mean_box_area(const lathe_synth_opts *o, size_t n) {
    double area = 0;
    int boxes = 0;
    for (size_t i = 0; i < n; i++) {
        synth_scene sc = plan_of(o, i);
        for (int k = 0; k < sc.ndefects; k++) {
            const synth_defect *d = &sc.defects[k];
            if (d->category == LATHE_SYNTH_MISSING_HOLE) continue;
            area += (double)(d->x1 - d->x0 + 1) * (d->y1 - d->y0 + 1);
            boxes++;
        }
    }
    assert_true(boxes > 10);
    return area / boxes;
}

/* FNV-1a over what a sample is: part, view, label, format, boxes and, with pixels, the image and
 * the sensor window. Not the text: descriptions have their own grammar and tests. */
static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

static uint64_t samples_digest(const lathe_synth_opts *o, int n, int pixels) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (int i = 0; i < n; i++) {
        lathe_synth_sample s;
        assert_int_equal(lathe_synth_sample_make(o, (size_t)i, &s), 0);
        int meta[5] = {s.part, s.view, s.label, s.is_png, s.nboxes};
        h = fnv(h, meta, sizeof meta);
        for (int k = 0; k < s.nboxes; k++) {
            int b[5] = {s.boxes[k].category, s.boxes[k].x, s.boxes[k].y, s.boxes[k].w, s.boxes[k].h};
            h = fnv(h, b, sizeof b);
        }
        if (pixels) {
            h = fnv(h, s.image.pixels, (size_t)o->width * o->height * 3);
            h = fnv(h, s.sensors, sizeof(float) * (size_t)s.steps * LATHE_SYNTH_NCHANNELS);
        }
        lathe_synth_sample_free(&s);
    }
    return h;
}

/* Defaults and their check; every bad value is refused with a message that names the option. */
static void test_knob_options(void **state) {
    (void)state;
    lathe_synth_opts o;
    lathe_synth_defaults(&o);
    assert_true(o.defect_size[0] == 1 && o.defect_size[1] == 1 && o.contrast[0] == 1 && o.contrast[1] == 1);
    assert_true(o.defect_count[0] == 0 && o.defect_count[1] == 0);
    assert_true(o.defect_rate == 0.46 && o.sensor_fault_rate == 0.14 && o.clutter == 1 && o.blur == 0.5);
    assert_true(o.noise[0] == 1.5 && o.noise[1] == 5.0 && o.part_size[0] == 0.16 && o.part_size[1] == 0.36);
    struct {
        lathe_synth_opts o;
        const char *names;
    } bad[27];
    for (int i = 0; i < 27; i++) bad[i].o = o;
    bad[0].o.defect_size[0] = 0.05, bad[0].names = "defect size";
    bad[1].o.defect_size[0] = 0.8, bad[1].o.defect_size[1] = 0.5, bad[1].names = "defect size";
    bad[2].o.defect_size[1] = 3.5, bad[2].names = "defect size";
    bad[3].o.contrast[0] = 0, bad[3].names = "contrast";
    bad[4].o.contrast[1] = NAN, bad[4].names = "contrast";
    bad[5].o.defect_count[1] = 3, bad[5].names = "defects"; /* MIN 0 */
    bad[6].o.defect_count[0] = 3, bad[6].o.defect_count[1] = 2, bad[6].names = "defects";
    bad[7].o.defect_count[0] = 1, bad[7].o.defect_count[1] = LATHE_SYNTH_MAX_BOXES + 1, bad[7].names = "defects";
    bad[8].o.defect_rate = -0.1, bad[8].names = "defect rate";
    bad[9].o.defect_rate = NAN, bad[9].names = "defect rate";
    bad[10].o.sensor_fault_rate = 1.2, bad[10].names = "sensor fault rate";
    bad[11].o.defect_rate = 0.9, bad[11].names = "sensor fault rate"; /* 0.9 + 0.14 > 1 */
    bad[12].o.clutter = -0.5, bad[12].names = "clutter";
    bad[13].o.clutter = 3.5, bad[13].names = "clutter";
    bad[14].o.noise[0] = -1, bad[14].names = "noise";
    bad[15].o.noise[0] = 6, bad[15].names = "noise"; /* MIN above MAX 5 */
    bad[16].o.noise[1] = 30, bad[16].names = "noise";
    bad[17].o.blur = 1.01, bad[17].names = "blur";
    bad[18].o.blur = -0.01, bad[18].names = "blur";
    bad[19].o.sensor_noise = -1, bad[19].names = "sensor noise";
    bad[20].o.sensor_noise = 21, bad[20].names = "sensor noise";
    bad[21].o.sensor_drift = NAN, bad[21].names = "sensor drift";
    bad[22].o.sensor_dropout = 1.5, bad[22].names = "sensor dropout";
    bad[23].o.sensor_dropout = -0.1, bad[23].names = "sensor dropout";
    bad[24].o.part_size[0] = 0.04, bad[24].names = "part size";
    bad[25].o.part_size[1] = 0.5, bad[25].names = "part size";
    bad[26].o.part_size[0] = 0.3, bad[26].o.part_size[1] = 0.2, bad[26].names = "part size";
    for (int i = 0; i < 27; i++) {
        assert_int_equal(lathe_synth_check(&bad[i].o), -LATHE_EINVAL);
        if (!strstr(lathe_last_error(), bad[i].names))
            fail_msg("bad value %d: the message '%s' does not name %s", i, lathe_last_error(), bad[i].names);
        lathe_synth_sample s;
        assert_int_equal(lathe_synth_sample_make(&bad[i].o, 0, &s), -LATHE_EINVAL);
    }
    /* The edges are fine. */
    lathe_synth_opts good = o;
    good.defect_size[0] = 0.1, good.defect_size[1] = 3, good.contrast[0] = 0.05, good.contrast[1] = 2;
    good.defect_count[0] = 1, good.defect_count[1] = LATHE_SYNTH_MAX_BOXES;
    good.defect_rate = 0.86, good.clutter = 3, good.noise[0] = 0, good.noise[1] = 25, good.blur = 1;
    assert_int_equal(lathe_synth_check(&good), 0);
    good.part_size[0] = 0.05, good.part_size[1] = 0.45;
    assert_int_equal(lathe_synth_check(&good), 0);
    good.defect_rate = 1, good.sensor_fault_rate = 0, good.clutter = 0, good.blur = 0;
    assert_int_equal(lathe_synth_check(&good), 0);
}

/* At their defaults the knobs give the original generator's samples: digests of the output of the
 * generator before the knobs existed (pixels and sensors included; the pixel digest pins this
 * platform's libm too: if only it fails elsewhere, compare the archives with an older build). The
 * digests leave the descriptions out; they were taken from the generator before the description
 * grammar, whose own stream must not move any of this. The pixel digests were taken again when an
 * undrilled hole began to leave its pad or spot mark (the labels' digests did not move), and all
 * four when cracks became tortuous and tapered (a crack's shape takes more draws from its part's
 * stream, so the later draws of a part with a crack, and its boxes, moved too), and the pixel
 * digests again when a board's traces got pads at their ends. The second pair moved when the jam
 * joined the sensor-only faults (a share of the bearing-wear and overheating parts became
 * overheating and jam parts: their labels and sensor windows changed, no pixel or box did). */
static void test_knob_defaults_known_answer(void **state) {
    (void)state;
    lathe_synth_opts o;
    lathe_synth_defaults(&o);
    o.count = 40, o.seed = 3, o.width = 160, o.height = 120, o.sensor_steps = 48, o.png_ratio = 0.3;
    assert_true(samples_digest(&o, 40, 0) == 0x057cd19f06ac5059ull);
    assert_true(samples_digest(&o, 40, 1) == 0xfed590990c2f2ca5ull);
    o.width = 640, o.height = 480, o.seed = 21;
    assert_true(samples_digest(&o, 12, 0) == 0xc352437a908d7d0cull);
    assert_true(samples_digest(&o, 12, 1) == 0xed7d9abda1b7f2f0ull);
}

/* --defect-size scales scratches, dents and cracks, but never below a few pixels nor outside the
 * image; it changes no label. */
static void test_knob_defect_size(void **state) {
    (void)state;
    lathe_synth_opts one = small_opts(1, 5);
    one.width = 640, one.height = 480;
    lathe_synth_opts half = one, big = one;
    half.defect_size[0] = half.defect_size[1] = 0.5;
    big.defect_size[0] = 1.5, big.defect_size[1] = 2;
    double a1 = mean_box_area(&one, 100), ah = mean_box_area(&half, 100), ab = mean_box_area(&big, 100);
    if (!(ah < 0.6 * a1 && ab > 1.5 * a1)) fail_msg("mean box areas: size 0.5 %.0f, 1 %.0f, 1.5..2 %.0f", ah, a1, ab);
    for (size_t i = 0; i < 100; i++) assert_int_equal(plan_of(&half, i).label, plan_of(&one, i).label);
    /* Tiny sizes on tiny images: the pixel floor holds, boxes stay in the image. */
    lathe_synth_opts tiny = small_opts(1, 6);
    tiny.width = 48, tiny.height = 36;
    tiny.defect_size[0] = tiny.defect_size[1] = 0.1;
    tiny.defect_count[0] = 1, tiny.defect_count[1] = LATHE_SYNTH_MAX_BOXES;
    int seen = 0;
    for (size_t i = 0; i < 200; i++) {
        synth_scene sc = plan_of(&tiny, i);
        for (int k = 0; k < sc.ndefects; k++) {
            const synth_defect *d = &sc.defects[k];
            int w = d->x1 - d->x0 + 1, h = d->y1 - d->y0 + 1;
            assert_true(d->x0 >= 0 && d->y0 >= 0 && d->x1 < tiny.width && d->y1 < tiny.height);
            if (d->category != LATHE_SYNTH_MISSING_HOLE && (w > h ? w : h) < 3)
                fail_msg("sample %zu: a %dx%d %s", i, w, h, lathe_synth_class_name(d->category));
            seen++;
        }
    }
    assert_true(seen > 50);
}

/* A scratch is one straight segment; a crack a tortuous path of 8 or more, whose length well
 * exceeds the distance between its ends and which turns at most of its joints. */
static void test_crack_shape(void **state) {
    (void)state;
    lathe_synth_opts o = small_opts(1, 17);
    o.width = 640, o.height = 480;
    int cracks = 0, scratches = 0;
    for (size_t i = 0; i < 200; i++) {
        synth_scene sc = plan_of(&o, i);
        for (int k = 0; k < sc.ndefects; k++) {
            const synth_defect *d = &sc.defects[k];
            if (d->category == LATHE_SYNTH_SCRATCH) assert_int_equal(d->npts, 2), scratches++;
            if (d->category != LATHE_SYNTH_CRACK) continue;
            assert_true(d->npts >= 8 && d->npts <= SYNTH_MAX_PTS);
            float path = 0, chord = hypotf(d->px[d->npts - 1] - d->px[0], d->py[d->npts - 1] - d->py[0]);
            int turns = 0;
            for (int j = 1; j < d->npts; j++) {
                float ax = d->px[j] - d->px[j - 1], ay = d->py[j] - d->py[j - 1];
                path += hypotf(ax, ay);
                if (j > 1) {
                    float bx = d->px[j - 1] - d->px[j - 2], by = d->py[j - 1] - d->py[j - 2];
                    float cosang = (ax * bx + ay * by) / (hypotf(ax, ay) * hypotf(bx, by));
                    turns += cosang < cosf(0.2f); /* more than ~11 degrees */
                }
            }
            if (!(path > 1.1f * chord) || turns < (d->npts - 2) / 2)
                fail_msg("sample %zu: a crack of %d points, path %.1f, chord %.1f, %d turns", i, d->npts, path, chord, turns);
            cracks++;
        }
    }
    assert_true(cracks > 10 && scratches > 10);
}

/* --contrast scales each defect's strength, capped at full strength, and nothing else. */
static void test_knob_contrast(void **state) {
    (void)state;
    lathe_synth_opts one = small_opts(1, 9), low = one, high = one;
    low.contrast[0] = low.contrast[1] = 0.3;
    high.contrast[0] = high.contrast[1] = 2;
    int seen = 0, capped = 0;
    for (size_t i = 0; i < 100; i++) {
        synth_scene a = plan_of(&one, i), b = plan_of(&low, i), c = plan_of(&high, i);
        assert_int_equal(a.ndefects, b.ndefects);
        assert_int_equal(a.ndefects, c.ndefects);
        for (int k = 0; k < a.ndefects; k++) {
            const synth_defect *d = &a.defects[k];
            assert_int_equal(d->x0, b.defects[k].x0);
            assert_int_equal(d->y1, c.defects[k].y1);
            assert_true(b.defects[k].strength == d->strength * 0.3f);
            assert_true(c.defects[k].strength == fminf(1.0f, d->strength * 2));
            seen += d->category != LATHE_SYNTH_MISSING_HOLE;
            capped += c.defects[k].strength == 1.0f;
        }
    }
    assert_true(seen > 20 && capped > 0);
}

/* --defects MIN,MAX: the count is drawn in MIN..MAX (3,3: three boxes wherever they fit, which is
 * nearly everywhere at 640x480), kinds are still mixed, and every box holds its defect. */
static void test_knob_defects(void **state) {
    (void)state;
    lathe_synth_opts o = small_opts(1, 12);
    o.width = 640, o.height = 480;
    o.defect_count[0] = o.defect_count[1] = 3;
    int defective = 0, three = 0;
    for (size_t i = 0; i < 100; i++) {
        synth_scene sc = plan_of(&o, i);
        assert_true(sc.ndefects <= 3);
        if (!image_defect(sc.label)) {
            assert_int_equal(sc.ndefects, 0);
            continue;
        }
        defective++, three += sc.ndefects == 3;
    }
    if (three < defective * 95 / 100) fail_msg("3 boxes on %d of %d defective images", three, defective);

    o.defect_count[0] = 1, o.defect_count[1] = LATHE_SYNTH_MAX_BOXES;
    int hist[LATHE_SYNTH_MAX_BOXES + 1] = {0}, mixed = 0;
    for (size_t i = 0; i < 200; i++) {
        synth_scene sc = plan_of(&o, i);
        if (!image_defect(sc.label)) continue;
        hist[sc.ndefects]++;
        int kinds = 0;
        for (int c = LATHE_SYNTH_SCRATCH; c <= LATHE_SYNTH_MISSING_HOLE; c++) {
            int has = 0;
            for (int k = 0; k < sc.ndefects; k++) has |= sc.defects[k].category == c;
            kinds += has;
        }
        mixed += kinds > 1;
    }
    assert_int_equal(hist[0], 0);
    assert_true(hist[1] > 0 && hist[LATHE_SYNTH_MAX_BOXES] > 0 && mixed > 0);

    /* Many small defects on small, cluttered, blurred images: every box still holds its defect. */
    lathe_synth_opts busy = small_opts(1, 8);
    busy.width = 200, busy.height = 150;
    busy.defect_count[0] = 4, busy.defect_count[1] = LATHE_SYNTH_MAX_BOXES;
    busy.defect_size[0] = 0.3, busy.defect_size[1] = 0.8;
    busy.clutter = 3, busy.blur = 1, busy.noise[0] = 0, busy.noise[1] = 8;
    check_boxes_hold_defects(&busy, 60);
}

/* --defect-rate and --sensor-fault-rate set the label shares, the mix within each kept. */
static void test_knob_rates(void **state) {
    (void)state;
    lathe_synth_opts o = small_opts(1, 13);
    o.width = 640, o.height = 480;
    o.defect_rate = 1, o.sensor_fault_rate = 0;
    for (size_t i = 0; i < 100; i++) {
        synth_scene sc = plan_of(&o, i);
        if (!image_defect(sc.label) || sc.ndefects == 0) fail_msg("sample %zu: label %d with %d boxes", i, sc.label, sc.ndefects);
    }
    o.defect_rate = 0;
    for (size_t i = 0; i < 100; i++) {
        synth_scene sc = plan_of(&o, i);
        assert_int_equal(sc.label, LATHE_SYNTH_GOOD);
        assert_int_equal(sc.ndefects, 0);
    }
    o.sensor_fault_rate = 1;
    for (size_t i = 0; i < 100; i++) {
        synth_scene sc = plan_of(&o, i);
        assert_true(sc.label >= LATHE_SYNTH_BEARING_WEAR && sc.label <= LATHE_SYNTH_JAM);
        assert_int_equal(sc.ndefects, 0);
    }
    /* 0.23 image defects (half the default), 0.5 sensor faults: shares over 4000 parts. */
    o.defect_rate = 0.23, o.sensor_fault_rate = 0.5;
    int n[LATHE_SYNTH_NCLASSES] = {0};
    for (int part = 1; part <= 4000; part++) {
        synth_scene sc;
        lathe_synth_plan(&o, part, 1, &sc);
        n[sc.label]++;
    }
    const double want[LATHE_SYNTH_NCLASSES] = {0.27, 0.07, 0.06, 0.05, 0.05, 0.179, 0.179, 0.143};
    for (int c = 0; c < LATHE_SYNTH_NCLASSES; c++)
        if (fabs(n[c] / 4000.0 - want[c]) > 0.025)
            fail_msg("%s: share %.3f, want %.3f", lathe_synth_class_name(c), n[c] / 4000.0, want[c]);
}

/* --clutter scales the chances of the second part and the gripper bar; boxes and labels stay. */
static void test_knob_clutter(void **state) {
    (void)state;
    lathe_synth_opts one = small_opts(1, 14), none = one, lots = one;
    none.clutter = 0, lots.clutter = 3;
    int second[3] = {0}, grip[3] = {0};
    for (size_t i = 0; i < 200; i++) {
        synth_scene a = plan_of(&one, i), b = plan_of(&none, i), c = plan_of(&lots, i);
        assert_int_equal(a.label, b.label);
        assert_int_equal(a.ndefects, c.ndefects);
        for (int k = 0; k < a.ndefects; k++) assert_memory_equal(&a.defects[k], &c.defects[k], sizeof a.defects[k]);
        second[0] += a.has_second, second[1] += b.has_second, second[2] += c.has_second;
        grip[0] += a.has_gripper, grip[1] += b.has_gripper, grip[2] += c.has_gripper;
    }
    assert_int_equal(second[1], 0);
    assert_int_equal(grip[1], 0);
    /* chances 0.3 / 0.9 for the second part, 0.2 / 0.6 for the gripper (which may find no room) */
    assert_true(second[0] > 40 && second[0] < 80 && second[2] > 165);
    assert_true(grip[0] > 20 && grip[0] < 60 && grip[2] > 90);
}

/* --part-size sets the main part's radius against the belt's smaller side; the part stays on the
 * belt, labels stay, and every box still holds its defect, down to the smallest images. */
static void test_knob_part_size(void **state) {
    (void)state;
    lathe_synth_opts one = small_opts(1, 15), framed = one;
    framed.part_size[0] = 0.4, framed.part_size[1] = 0.45;
    for (size_t i = 0; i < 200; i++) {
        synth_scene a = plan_of(&one, i), b = plan_of(&framed, i);
        /* the same draw of the label; only a defect that found no room on one of the two is lost */
        if (a.label != b.label) assert_true(a.label == LATHE_SYNTH_GOOD || b.label == LATHE_SYNTH_GOOD);
        float bw = (float)b.width - (b.belt_vertical ? (float)(b.rail0 + b.rail1) : 0);
        float bh = (float)b.height - (b.belt_vertical ? 0 : (float)(b.rail0 + b.rail1));
        float radius = b.main.R * b.main.part.bound, share = radius / fminf(bw, bh);
        if (share < 0.4f - 1e-4f || share > 0.45f + 1e-4f) fail_msg("sample %zu: part radius %.3f of the belt", i, share);
        assert_true(b.main.cx - radius > -1 && b.main.cx + radius < (float)b.width + 1);
        assert_true(b.main.cy - radius > -1 && b.main.cy + radius < (float)b.height + 1);
    }
    for (int size = 0; size < 2; size++) {
        lathe_synth_opts o = framed;
        o.width = size ? 256 : 32, o.height = size ? 192 : 32;
        o.defect_rate = 1, o.sensor_fault_rate = 0;
        check_boxes_hold_defects(&o, 150);
    }
}

/* --sensor-noise and --sensor-drift scale the windows' noise and drift (0: a smooth, level good
 * window), --sensor-dropout empties whole channels of the CSV and changes nothing else. */
static void test_knob_sensors(void **state) {
    (void)state;
    lathe_synth_opts o = small_opts(1, 16), calm = o;
    calm.sensor_noise = 0, calm.sensor_drift = 0;
    float a[64 * LATHE_SYNTH_NCHANNELS], b[64 * LATHE_SYNTH_NCHANNELS];
    int checked = 0;
    for (size_t i = 0; i < 40; i++) {
        synth_scene s1 = plan_of(&o, i), s2 = plan_of(&calm, i);
        lathe_synth_sensors(&s1, 64, a), lathe_synth_sensors(&s2, 64, b);
        if (s1.label != LATHE_SYNTH_GOOD) continue;
        checked++;
        double rough = 0, level = fabs(b[63 * LATHE_SYNTH_NCHANNELS + 3] - b[3]), diff = 0;
        for (int t = 1; t < 63; t++) { /* the temperature's second difference: noise, or nothing */
            const float *p = b + (size_t)t * LATHE_SYNTH_NCHANNELS + 3;
            rough += fabs(p[LATHE_SYNTH_NCHANNELS] - 2 * p[0] + p[-LATHE_SYNTH_NCHANNELS]);
        }
        for (int k = 0; k < 64 * LATHE_SYNTH_NCHANNELS; k++) diff += fabs(a[k] - b[k]);
        assert_true(rough < 1e-3 && level < 1e-4 && diff > 0.1);
    }
    assert_true(checked > 5);
    lathe_synth_opts plain = small_opts(30, 17), gaps = plain;
    plain.width = gaps.width = 64, plain.height = gaps.height = 48, plain.voc = plain.yolo = gaps.voc = gaps.yolo = 0;
    gaps.sensor_dropout = 0.5;
    char *d1 = write_folder("synth-plain", &plain), *d2 = write_folder("synth-gaps", &gaps);
    int empty = 0, cells = 0;
    for (size_t i = 0; i < 30; i++) {
        synth_scene sc = plan_of(&plain, i);
        char rel[64];
        snprintf(rel, sizeof rel, "sensors/part%05d_v%d.csv", sc.part_no, sc.view);
        size_t n1 = 0, n2 = 0;
        uint8_t *t1 = read_in(d1, rel, &n1), *t2 = read_in(d2, rel, &n2);
        assert_non_null(t1), assert_non_null(t2);
        /* cell by cell: equal, or empty in the second; a channel is empty in every row or in none */
        char *p1 = (char *)t1, *p2 = (char *)t2, *e1 = p1 + n1, *e2 = p2 + n2;
        int col = 0, dead[8] = {0}, row = 0;
        while (p1 < e1 && p2 < e2) {
            char *q1 = p1, *q2 = p2;
            while (q1 < e1 && *q1 != ',' && *q1 != '\n') q1++;
            while (q2 < e2 && *q2 != ',' && *q2 != '\n') q2++;
            if (q2 == p2) {
                assert_true(row > 0 && col > 0);
                if (row == 1) dead[col] = 1, empty++;
                assert_true(dead[col]);
            } else {
                assert_true(q1 - p1 == q2 - p2 && !memcmp(p1, p2, (size_t)(q1 - p1)) && !dead[col]);
            }
            if (row == 1 && col > 0) cells++;
            int end = *q1 == '\n';
            col = end ? 0 : col + 1, row += end;
            p1 = q1 + 1, p2 = q2 + 1;
        }
        free(t1), free(t2);
    }
    assert_true(cells == 30 * LATHE_SYNTH_NCHANNELS && empty > 0.3 * cells && empty < 0.7 * cells);
    test_rmtree(d1), test_rmtree(d2);
    free(d1), free(d2);
}

/* --noise sets the camera noise sigma (0 = none, 20 still without wrap-around in the fixed-point
 * sum), --blur the chance of the blur. */
static void test_knob_noise_blur(void **state) {
    (void)state;
    lathe_synth_opts o = small_opts(1, 15), quiet = o, loud = o, sharp = o, soft = o;
    quiet.noise[0] = quiet.noise[1] = 0;
    loud.noise[0] = loud.noise[1] = 20;
    sharp.blur = 0, soft.blur = 1;
    int blurred[3] = {0};
    for (size_t i = 0; i < 100; i++) {
        synth_scene a = plan_of(&o, i), b = plan_of(&sharp, i), c = plan_of(&soft, i), d = plan_of(&loud, i);
        assert_true(a.noise >= 1.5f && a.noise <= 5.0f && d.noise == 20.0f);
        assert_int_equal(a.ndefects, d.ndefects);
        blurred[0] += a.blur, blurred[1] += b.blur, blurred[2] += c.blur;
    }
    assert_true(blurred[0] > 30 && blurred[0] < 70 && blurred[1] == 0 && blurred[2] == 100);

    /* The same scene without noise and with sigma 20: the difference is the noise. */
    for (size_t i = 0; i < 4; i++) {
        lathe_synth_sample a, b;
        assert_int_equal(lathe_synth_sample_make(&quiet, i, &a), 0);
        assert_int_equal(lathe_synth_sample_make(&loud, i, &b), 0);
        double sum = 0, sum2 = 0;
        int big = 0, n = 0;
        for (size_t k = 0; k < (size_t)o.width * o.height * 3; k++) {
            int x = a.image.pixels[k], y = b.image.pixels[k];
            big += abs(y - x) > 70; /* beyond the noise's reach: the sum wrapped around */
            if (x < 70 || x > 185) continue; /* the spread away from clipping */
            double dv = y - x;
            sum += dv, sum2 += dv * dv, n++;
        }
        assert_true(n > 1000);
        double mean = sum / n, sd = sqrt(sum2 / n - mean * mean);
        if (fabs(mean) > 1.5 || sd < 17 || sd > 23 || big) fail_msg("noise 20: mean %.2f sd %.2f, %d beyond 70", mean, sd, big);
        lathe_synth_sample_free(&a);
        lathe_synth_sample_free(&b);
    }
}

/* With the knobs set, sample i is still the same whatever the count and the threads, and
 * annotations.json records the knobs (only those that differ from the defaults). */
static void test_knob_prefix(void **state) {
    (void)state;
    lathe_synth_opts o = small_opts(5, 16);
    o.threads = 1;
    o.defect_size[0] = 0.4, o.defect_size[1] = 0.7, o.contrast[0] = 0.5, o.contrast[1] = 0.9;
    o.defect_count[0] = 2, o.defect_count[1] = 5, o.defect_rate = 0.6, o.clutter = 2, o.noise[1] = 9, o.blur = 0.9;
    char *a = write_folder("synth-k5", &o);
    o.count = 12, o.threads = 3;
    char *b = write_folder("synth-k12", &o);
    cJSON *ca = load_coco(a), *cb = load_coco(b);
    cJSON *ia = cJSON_GetObjectItem(ca, "images"), *ib = cJSON_GetObjectItem(cb, "images");
    for (int i = 0; i < 5; i++) {
        char *x = cJSON_PrintUnformatted(cJSON_GetArrayItem(ia, i)), *y = cJSON_PrintUnformatted(cJSON_GetArrayItem(ib, i));
        assert_string_equal(x, y);
        char rel[96];
        snprintf(rel, sizeof rel, "images/%s", cJSON_GetObjectItem(cJSON_GetArrayItem(ia, i), "file_name")->valuestring);
        size_t la, lb;
        uint8_t *da = read_in(a, rel, &la), *db = read_in(b, rel, &lb);
        assert_int_equal(la, lb);
        assert_memory_equal(da, db, la);
        free(da), free(db), free(x), free(y);
    }
    cJSON *gen = cJSON_GetObjectItem(cJSON_GetObjectItem(ca, "info"), "lathe_synth");
    cJSON *size = cJSON_GetObjectItem(gen, "defect_size");
    assert_true(cJSON_GetArraySize(size) == 2 && cJSON_GetArrayItem(size, 0)->valuedouble == 0.4);
    assert_true(cJSON_GetArrayItem(cJSON_GetObjectItem(gen, "defects"), 1)->valueint == 5);
    assert_true(cJSON_GetObjectItem(gen, "clutter")->valuedouble == 2);
    assert_null(cJSON_GetObjectItem(gen, "sensor_fault_rate")); /* at its default */
    cJSON_Delete(ca);
    cJSON_Delete(cb);
    test_rmtree(a), test_rmtree(b);
    free(a), free(b);
}

/* ---- descriptions ---- */

/* Several hundred scenes, at the defaults and with crowded, faint and strong defects: each
 * description says only what holds (check_description), and the size and strength words occur. */
static void test_descriptions_true(void **state) {
    (void)state;
    lathe_synth_opts plain = small_opts(1, 7), busy = small_opts(1, 19);
    plain.width = busy.width = 640, plain.height = busy.height = 480;
    busy.defect_count[0] = 1, busy.defect_count[1] = LATHE_SYNTH_MAX_BOXES;
    busy.defect_size[0] = 0.5, busy.defect_size[1] = 2, busy.contrast[0] = 0.3, busy.contrast[1] = 2;
    busy.defect_rate = 0.8, busy.sensor_fault_rate = 0.2, busy.clutter = 3, busy.blur = 1;
    const lathe_synth_opts *sets[2] = {&plain, &busy};
    static const char *const attrs[8] = {"short", "small", "long", "large", "faint", "barely", "deep", "pronounced"};
    int seen[4] = {0}, labels[LATHE_SYNTH_NCLASSES] = {0};
    for (int k = 0; k < 2; k++)
        for (size_t i = 0; i < 400; i++) {
            synth_scene sc = plan_of(sets[k], i);
            char txt[LATHE_SYNTH_TEXT_MAX], buf[LATHE_SYNTH_TEXT_MAX], *word[LATHE_SYNTH_TEXT_MAX / 2];
            lathe_synth_describe(&sc, txt, sizeof txt);
            check_description(&sc, txt);
            labels[sc.label]++;
            int nw = split_words(txt, buf, sizeof buf, word, LATHE_SYNTH_TEXT_MAX / 2);
            for (int a = 0; a < 8; a++) seen[a / 2] += has_word(word, nw, attrs[a]);
        }
    for (int c = 0; c < LATHE_SYNTH_NCLASSES; c++)
        if (!labels[c]) fail_msg("no %s among 800 scenes", lathe_synth_class_name(c));
    for (int a = 0; a < 4; a++)
        if (!seen[a]) fail_msg("neither '%s' nor '%s' in 800 descriptions", attrs[2 * a], attrs[2 * a + 1]);
}

/* A description's shape: a note, a sentence before the first word of class cls, that word before
 * " on " (defects first). */
static int shape_of(const char *txt, int cls) {
    char low[LATHE_SYNTH_TEXT_MAX];
    lower_case(txt, low, sizeof low);
    const char *first = NULL;
    for (int i = 0; i < 4 && class_words[cls][i]; i++) {
        const char *p = strstr(low, class_words[cls][i]);
        if (p && (!first || p < first)) first = p;
    }
    assert_non_null(first);
    const char *on = strstr(low, " on "), *stop = strstr(low, ". ");
    int note = strncmp(low, "inspection", 10) == 0 || strncmp(low, "qc ", 3) == 0;
    return note | (stop && stop < first) << 1 | (!on || first < on) << 2;
}

/* The words just before and after the first noun of class cls, "thin near" in "a thin scratch
 * near ..."; "" if there is none. */
static void words_around(const char *txt, int cls, char *out, size_t cap) {
    char buf[LATHE_SYNTH_TEXT_MAX], *word[LATHE_SYNTH_TEXT_MAX / 2];
    int nw = split_words(txt, buf, sizeof buf, word, LATHE_SYNTH_TEXT_MAX / 2);
    out[0] = 0;
    for (int i = 0; i < nw; i++)
        if (is_noun(word[i], cls)) {
            snprintf(out, cap, "%s %s", i > 0 ? word[i - 1] : "", i + 1 < nw ? word[i + 1] : "");
            return;
        }
}

/* A small set of strings: adds s, returns how many distinct ones it holds. */
typedef struct {
    char s[64][32];
    int n;
} string_set;
static int set_add(string_set *set, const char *s) {
    for (int i = 0; i < set->n; i++)
        if (strcmp(set->s[i], s) == 0) return set->n;
    if (set->n < 64) snprintf(set->s[set->n++], sizeof set->s[0], "%s", s);
    return set->n;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Distinct descriptions of one scene told with `n` other text streams (the stream follows the
 * archive seed; nothing else of the scene does here); shapes and class wordings are counted too. */
static int retell(const synth_scene *sc, int cls, int n, int *shapes, int *wordings) {
    uint64_t *h = malloc(sizeof *h * (size_t)n);
    assert_non_null(h);
    string_set words = {.n = 0};
    int mask = 0;
    for (int s = 0; s < n; s++) {
        synth_scene other = *sc;
        other.seed = (uint64_t)s * 7919;
        char txt[LATHE_SYNTH_TEXT_MAX], around[32];
        lathe_synth_describe(&other, txt, sizeof txt);
        check_description(&other, txt);
        h[s] = fnv(0xcbf29ce484222325ull, txt, strlen(txt));
        mask |= 1 << shape_of(txt, cls);
        words_around(txt, cls, around, sizeof around);
        *wordings = set_add(&words, around);
    }
    qsort(h, (size_t)n, sizeof *h, cmp_u64);
    int distinct = n > 0;
    for (int s = 1; s < n; s++) distinct += h[s] != h[s - 1];
    free(h);
    *shapes = __builtin_popcount((unsigned)mask);
    return distinct;
}

/* Variety is real: among parts with one class of defect (or none), each class is said in at least
 * four shapes and eight wordings around its noun; one scene retold with 300 streams gives 200 or
 * more distinct descriptions in four shapes, its "scratch" or "no defects" worded many ways. */
static void test_descriptions_vary(void **state) {
    (void)state;
    lathe_synth_opts o = small_opts(1, 7);
    o.width = 640, o.height = 480;
    int mask[5] = {0}, parts[5] = {0};
    string_set around[5];
    memset(around, 0, sizeof around);
    synth_scene one_scratch = {.ndefects = -1}, good = {.ndefects = -1};
    for (size_t i = 0; i < 600; i++) {
        synth_scene sc = plan_of(&o, i);
        int cls = sc.ndefects ? sc.defects[0].category : LATHE_SYNTH_GOOD, single = 1;
        for (int k = 1; k < sc.ndefects; k++) single &= sc.defects[k].category == cls;
        if (!single || sc.bearing || sc.overheat) continue;
        if (cls == LATHE_SYNTH_SCRATCH && sc.ndefects == 1 && one_scratch.ndefects < 0) one_scratch = sc;
        if (cls == LATHE_SYNTH_GOOD && good.ndefects < 0) good = sc;
        char txt[LATHE_SYNTH_TEXT_MAX], w[32];
        lathe_synth_describe(&sc, txt, sizeof txt);
        mask[cls] |= 1 << shape_of(txt, cls);
        words_around(txt, cls, w, sizeof w);
        set_add(&around[cls], w);
        parts[cls]++;
    }
    for (int c = LATHE_SYNTH_GOOD; c <= LATHE_SYNTH_MISSING_HOLE; c++) {
        int shapes = __builtin_popcount((unsigned)mask[c]);
        if (shapes < 4 || around[c].n < 8)
            fail_msg("%s on %d parts: %d shapes, %d wordings around the noun", lathe_synth_class_name(c), parts[c], shapes,
                     around[c].n);
    }
    assert_true(one_scratch.ndefects == 1 && good.ndefects == 0);
    int shapes, wordings;
    int distinct = retell(&one_scratch, LATHE_SYNTH_SCRATCH, 300, &shapes, &wordings);
    if (distinct < 200 || shapes < 4 || wordings < 12)
        fail_msg("one scratch retold 300 times: %d distinct, %d shapes, %d wordings around it", distinct, shapes, wordings);
    distinct = retell(&good, LATHE_SYNTH_GOOD, 300, &shapes, &wordings);
    if (distinct < 200 || shapes < 4 || wordings < 6)
        fail_msg("a good part retold 300 times: %d distinct, %d shapes, %d wordings around 'defects'", distinct, shapes,
                 wordings);
}

/* The same scene gives the same description, the one a sample carries; describing leaves the scene
 * as it was; a short buffer gets a cut description, never a byte past its end. */
static void test_descriptions_deterministic(void **state) {
    (void)state;
    lathe_synth_opts o = small_opts(1, 7);
    for (size_t i = 0; i < 300; i++) {
        synth_scene a = plan_of(&o, i), b = plan_of(&o, i), kept = a;
        char ta[LATHE_SYNTH_TEXT_MAX], tb[LATHE_SYNTH_TEXT_MAX];
        lathe_synth_describe(&a, ta, sizeof ta);
        lathe_synth_describe(&b, tb, sizeof tb);
        assert_string_equal(ta, tb);
        assert_memory_equal(&a, &kept, sizeof a);
    }
    for (size_t i = 0; i < 4; i++) {
        lathe_synth_sample s;
        assert_int_equal(lathe_synth_sample_make(&o, i, &s), 0);
        synth_scene sc = plan_of(&o, i);
        char txt[LATHE_SYNTH_TEXT_MAX];
        lathe_synth_describe(&sc, txt, sizeof txt);
        assert_string_equal(s.text, txt);
        lathe_synth_sample_free(&s);
    }
    synth_scene sc = plan_of(&o, 3);
    char full[LATHE_SYNTH_TEXT_MAX];
    lathe_synth_describe(&sc, full, sizeof full);
    size_t len = strlen(full), caps[] = {0, 1, 2, 17, 40, len, len + 1};
    for (size_t k = 0; k < sizeof caps / sizeof caps[0]; k++) {
        char buf[LATHE_SYNTH_TEXT_MAX + 16];
        memset(buf, 0x5a, sizeof buf);
        lathe_synth_describe(&sc, buf, caps[k]);
        for (size_t j = caps[k]; j < sizeof buf; j++)
            if (buf[j] != 0x5a) fail_msg("cap %zu: byte %zu written", caps[k], j);
        if (caps[k] == 0) continue;
        size_t n = strlen(buf);
        assert_int_equal(n, caps[k] - 1 < len ? caps[k] - 1 : len);
        assert_memory_equal(buf, full, n);
    }
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
        cmocka_unit_test(test_knob_options),
        cmocka_unit_test(test_knob_defaults_known_answer),
        cmocka_unit_test(test_knob_defect_size),
        cmocka_unit_test(test_knob_contrast),
        cmocka_unit_test(test_crack_shape),
        cmocka_unit_test(test_knob_defects),
        cmocka_unit_test(test_knob_rates),
        cmocka_unit_test(test_knob_clutter),
        cmocka_unit_test(test_knob_part_size),
        cmocka_unit_test(test_knob_noise_blur),
        cmocka_unit_test(test_knob_sensors),
        cmocka_unit_test(test_knob_prefix),
        cmocka_unit_test(test_descriptions_true),
        cmocka_unit_test(test_descriptions_vary),
        cmocka_unit_test(test_descriptions_deterministic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
