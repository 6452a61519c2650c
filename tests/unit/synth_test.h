/* synth_test.h - what the synth tests share (test_synth.c: outputs and formats; test_synth_knobs.c:
 * the realism knobs; test_synth_text.c: descriptions): small options, reading a folder output back,
 * the plan of a sample, and two checks (a description is true of its scene; every defect is drawn
 * inside its box). */
#ifndef LATHE_TESTS_SYNTH_TEST_H
#define LATHE_TESTS_SYNTH_TEST_H
#include <cjson/cJSON.h>
#include <ctype.h>
#include <math.h>

#include "datasets/synth.h"
#include "datasets/synth_internal.h"
#include "libcore/base/error.h"
#include "libcore/io/image.h"
#include "testutil.h"

static inline lathe_synth_opts small_opts(int count, uint64_t seed) {
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

static inline char *path_join(const char *a, const char *b) {
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = malloc(n);
    snprintf(p, n, "%s/%s", a, b);
    return p;
}

static inline uint8_t *read_in(const char *dir, const char *rel, size_t *len) {
    char *p = path_join(dir, rel);
    *len = 0; /* also when the read fails (GCC cannot tell that the callers stop there) */
    uint8_t *d = test_read_file(p, len);
    free(p);
    return d;
}

static inline cJSON *load_coco(const char *dir) {
    size_t len;
    uint8_t *d = read_in(dir, "annotations.json", &len);
    assert_non_null(d);
    cJSON *j = cJSON_ParseWithLength((const char *)d, len);
    free(d);
    assert_non_null(j);
    return j;
}

/* The first n images of folder outputs a and b (annotations ca, cb) are the same: their COCO
 * records and their files, byte for byte. */
static inline void check_same_first_images(const char *a, cJSON *ca, const char *b, cJSON *cb, int n) {
    cJSON *ia = cJSON_GetObjectItem(ca, "images"), *ib = cJSON_GetObjectItem(cb, "images");
    for (int i = 0; i < n; i++) {
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
}

static inline void stem_of(const char *file, char *stem, size_t cap) {
    snprintf(stem, cap, "%s", file);
    char *dot = strrchr(stem, '.');
    if (dot) *dot = 0;
}

static inline char *write_folder(const char *tag, const lathe_synth_opts *o) {
    char *dir = test_tempdir(tag);
    assert_non_null(dir);
    int rc = lathe_synth_write(o, dir);
    if (rc) fail_msg("lathe_synth_write: %s", lathe_last_error());
    return dir;
}

static inline int image_defect(int label) { return label >= LATHE_SYNTH_SCRATCH && label <= LATHE_SYNTH_MISSING_HOLE; }


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

static inline void lower_case(const char *text, char *out, size_t cap) {
    size_t i = 0;
    for (; text[i] && i + 1 < cap; i++) out[i] = (char)tolower((unsigned char)text[i]);
    out[i] = 0;
}

/* 1 when the description names class cls with one of its words. */
static inline int says_class(const char *text, int cls) {
    char low[LATHE_SYNTH_TEXT_MAX];
    lower_case(text, low, sizeof low);
    for (int i = 0; i < 4 && class_words[cls][i]; i++)
        if (strstr(low, class_words[cls][i])) return 1;
    return 0;
}

/* The description's words in lower case, punctuation dropped; returns how many (at most cap). */
static inline int split_words(const char *text, char *buf, size_t bufcap, char **word, int cap) {
    lower_case(text, buf, bufcap);
    for (char *c = buf; *c; c++)
        if (strchr(",;:.()", *c)) *c = ' ';
    int n = 0;
    for (char *w = strtok(buf, " "); w && n < cap; w = strtok(NULL, " ")) word[n++] = w;
    return n;
}

static inline int has_word(char **word, int n, const char *w) {
    for (int i = 0; i < n; i++)
        if (strcmp(word[i], w) == 0) return 1;
    return 0;
}

/* 1 when word[i] is the count of a class's noun: "two", "2", or "a"/"an"/"one"/"1" for one. */
static inline int is_count(const char *w, int n) {
    static const char *const names[] = {"", "one", "two", "three", "four", "five", "six", "seven", "eight"};
    char digits[8];
    snprintf(digits, sizeof digits, "%d", n);
    return strcmp(w, names[n]) == 0 || strcmp(w, digits) == 0 ||
           (n == 1 && (strcmp(w, "a") == 0 || strcmp(w, "an") == 0));
}

/* A word of each class's noun holds one of these (and a good part's "no defects" holds "defect"). */
static const char *const noun_stems[5][2] = {
    {"defect", "defect"}, {"scratch", "scratch"}, {"dent", "dimple"}, {"crack", "fracture"}, {"hole", "hole"}};

static inline int is_noun(const char *word, int cat) {
    return strstr(word, noun_stems[cat][0]) || strstr(word, noun_stems[cat][1]);
}

/* 1 when a count of n stands at most five words before a noun of class cat. */
static inline int says_count(char **word, int nw, int cat, int n) {
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
static inline void check_description(const synth_scene *sc, const char *txt) {
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

/* Every defect of samples 0..n-1 is drawn inside its box (blur may spread it by one pixel), reaches
 * the box's edges within a pixel, and is clearly visible; a missing hole's box is where the hole
 * would be. Fails unless every image defect kind was seen. */
static inline void check_boxes_hold_defects(const lathe_synth_opts *opts, size_t n) {
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

/* The plan of sample index under o. */
static inline synth_scene plan_of(const lathe_synth_opts *o, size_t index) {
    int part, view;
    lathe_synth_locate(o->seed, index, &part, &view);
    synth_scene sc;
    lathe_synth_plan(o, part, view, &sc);
    return sc;
}

/* FNV-1a over what a sample is: part, view, label, format, boxes and, with pixels, the image and
 * the sensor window. Not the text: descriptions have their own grammar and tests. */
static inline uint64_t fnv(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

#endif
