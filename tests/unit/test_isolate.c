/* test_isolate.c - work in a child process (libcore/base/isolate.h): its lines arrive in order,
 * also those written before it crashed; a crash is reported with its signal, a child that writes
 * nothing for the stall limit is killed and reported as stalled, a nonzero exit with its status;
 * a line never splits (newlines and tabs inside it become spaces; a too long one is cut). */
#include "testutil.h"

#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "libcore/base/isolate.h"

typedef struct {
    char lines[8][5000];
    int n;
} received;

static void keep(void *ctx, const char *line) {
    received *r = ctx;
    if (r->n < 8) snprintf(r->lines[r->n], sizeof r->lines[0], "%s", line);
    r->n++;
}

static void three_lines(void *ctx, int fd) {
    (void)ctx;
    lathe_isolated_line(fd, "one %d", 1);
    lathe_isolated_line(fd, "two\nlines\tin one");
    lathe_isolated_line(fd, "three");
}

static void line_then_crash(void *ctx, int fd) {
    (void)ctx;
    lathe_isolated_line(fd, "before the crash");
    signal(SIGSEGV, SIG_DFL); /* a sanitizer's handler would turn the signal into an exit */
    raise(SIGSEGV);
}

static void line_then_hang(void *ctx, int fd) {
    (void)ctx;
    lathe_isolated_line(fd, "working");
    for (;;) pause();
}

static void exits_3(void *ctx, int fd) {
    (void)ctx, (void)fd;
    _exit(3);
}

static void long_line(void *ctx, int fd) {
    (void)ctx;
    static char text[10000];
    memset(text, 'x', sizeof text - 1);
    lathe_isolated_line(fd, "%s", text);
    lathe_isolated_line(fd, "after");
}

static void lines_arrive_in_order(void **state) {
    (void)state;
    received r = {0};
    lathe_isolated_end end;
    assert_int_equal(lathe_run_isolated(three_lines, NULL, 10, keep, &r, &end), 0);
    assert_int_equal(end.how, LATHE_ISOLATED_EXITED);
    assert_int_equal(end.code, 0);
    assert_int_equal(r.n, 3);
    assert_string_equal(r.lines[0], "one 1");
    assert_string_equal(r.lines[1], "two lines in one");
    assert_string_equal(r.lines[2], "three");
}

static void a_crash_is_reported_after_its_lines(void **state) {
    (void)state;
    received r = {0};
    lathe_isolated_end end;
    assert_int_equal(lathe_run_isolated(line_then_crash, NULL, 10, keep, &r, &end), 0);
    assert_int_equal(end.how, LATHE_ISOLATED_SIGNALED);
    assert_int_equal(end.code, SIGSEGV);
    assert_int_equal(r.n, 1);
    assert_string_equal(r.lines[0], "before the crash");
}

static void a_stalled_child_is_killed(void **state) {
    (void)state;
    received r = {0};
    lathe_isolated_end end;
    assert_int_equal(lathe_run_isolated(line_then_hang, NULL, 1, keep, &r, &end), 0);
    assert_int_equal(end.how, LATHE_ISOLATED_STALLED);
    assert_int_equal(end.code, 1);
    assert_int_equal(r.n, 1);
}

static void an_exit_status_is_reported(void **state) {
    (void)state;
    received r = {0};
    lathe_isolated_end end;
    assert_int_equal(lathe_run_isolated(exits_3, NULL, 10, keep, &r, &end), 0);
    assert_int_equal(end.how, LATHE_ISOLATED_EXITED);
    assert_int_equal(end.code, 3);
    assert_int_equal(r.n, 0);
}

static void a_long_line_is_cut_not_split(void **state) {
    (void)state;
    received r = {0};
    lathe_isolated_end end;
    assert_int_equal(lathe_run_isolated(long_line, NULL, 10, keep, &r, &end), 0);
    assert_int_equal(r.n, 2);
    assert_true(strlen(r.lines[0]) > 4000 && strlen(r.lines[0]) < 4096);
    assert_string_equal(r.lines[1], "after");
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(lines_arrive_in_order), cmocka_unit_test(a_crash_is_reported_after_its_lines),
                                       cmocka_unit_test(a_stalled_child_is_killed), cmocka_unit_test(an_exit_status_is_reported),
                                       cmocka_unit_test(a_long_line_is_cut_not_split)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
