/* test_synth_text.c - the descriptions lathe synth writes: true of their scene, varied (phrasing,
 * order, attributes) and deterministic. */
#include "libcore/base/log.h"
#include "synth_test.h"

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
        cmocka_unit_test(test_descriptions_true),
        cmocka_unit_test(test_descriptions_vary),
        cmocka_unit_test(test_descriptions_deterministic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
