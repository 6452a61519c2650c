/* test_utf8.c - strict UTF-8: the valid forms of every length pass; overlong forms, surrogates,
 * code points above U+10FFFF, stray continuation bytes, truncated sequences and NUL bytes fail;
 * a repair replaces exactly the bad bytes with U+FFFD. */
#include "testutil.h"

#include "libcore/base/utf8.h"

static void strictness(void **state) {
    (void)state;
    static const char *const good[] = {"", "plain", "caf\xC3\xA9", "\xE2\x82\xAC", "\xF0\x9F\x98\x80", "\xF4\x8F\xBF\xBF",
                                       "\xED\x9F\xBF"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) assert_true(lathe_utf8_valid(good[i], strlen(good[i])));
    static const char *const bad[] = {"\xC0\xAF", "\xE0\x80\xAF", "\xF0\x80\x80\xAF", "\xED\xA0\x80", "\xF4\x90\x80\x80",
                                      "\x80", "abc\xBF", "\xE2\x82", "\xF0\x9F\x98", "\xFF", "\xFE"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) assert_false(lathe_utf8_valid(bad[i], strlen(bad[i])));
    assert_false(lathe_utf8_valid("a\0b", 3));
}

static void repair(void **state) {
    (void)state;
    char *r = lathe_utf8_repair("img\xFF-caf\xC3\xA9\xE2\x82.png");
    assert_string_equal(r, "img\xEF\xBF\xBD-caf\xC3\xA9\xEF\xBF\xBD\xEF\xBF\xBD.png");
    assert_true(lathe_utf8_valid(r, strlen(r)));
    free(r);
    r = lathe_utf8_repair("fine.png");
    assert_string_equal(r, "fine.png");
    free(r);
}

/* a prefix that fits cap - 1 bytes ends before a character, never inside one */
static void cut(void **state) {
    (void)state;
    const char *s = "a\xc3\xa9\xe6\x97\xa5"; /* a, é (2 bytes), 日 (3 bytes) */
    assert_int_equal(lathe_utf8_cut(s, 6, 7), 6);  /* fits whole */
    assert_int_equal(lathe_utf8_cut(s, 6, 6), 3);  /* 5 bytes would cut 日 */
    assert_int_equal(lathe_utf8_cut(s, 6, 3), 1);  /* 2 bytes would cut é */
    assert_int_equal(lathe_utf8_cut(s, 6, 4), 3);
    assert_int_equal(lathe_utf8_cut(s, 6, 1), 0);
    assert_int_equal(lathe_utf8_cut(s, 6, 0), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(strictness), cmocka_unit_test(repair), cmocka_unit_test(cut)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
