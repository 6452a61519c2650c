/* test_folder_lock.c - one writer per folder: a second lock on a held folder fails with
 * LATHE_EBUSY; lathe_write_atomic leaves no temporary behind; a killed writer's temporaries are
 * removed by the folder's next writer while files of other shapes stay; a folder the lock made
 * and nothing filled is removed at unlock. */
#include "testutil.h"

#include <sys/stat.h>
#include <unistd.h>

#include "libcore/base/error.h"
#include "libcore/base/folder_lock.h"
#include "libcore/base/fsutil.h"

static int exists(const char *dir, const char *name) {
    char path[4400];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return access(path, F_OK) == 0;
}

static void temp_names(void **state) {
    (void)state;
    assert_true(lathe_is_atomic_temp(".manifest.json.aB3xY9.tmp"));
    assert_true(lathe_is_atomic_temp("..write-test.Zz09aa.tmp"));
    assert_false(lathe_is_atomic_temp("manifest.json.aB3xY9.tmp")); /* not hidden: not ours */
    assert_false(lathe_is_atomic_temp(".notes.tmp"));
    assert_false(lathe_is_atomic_temp(".a.b-c_d!.tmp"));
    assert_false(lathe_is_atomic_temp(".aB3xY9.tmp"));
    assert_false(lathe_is_atomic_temp(".open-train.h5.tmp"));
}

static void write_atomic_leaves_only_the_file(void **state) {
    (void)state;
    char *dir = test_tempdir("atomic");
    char path[4200];
    snprintf(path, sizeof path, "%s/out.json", dir);
    assert_int_equal(lathe_write_atomic(path, "{}", 2), 0);
    assert_int_equal(lathe_write_atomic(path, "{\"a\":1}", 7), 0);
    size_t len = 0;
    uint8_t *data = test_read_file(path, &len);
    assert_non_null(data);
    assert_int_equal(len, 7);
    free(data);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);
    lathe_lock *l = NULL;
    assert_int_equal(lathe_folder_lock(dir, &l), 0);
    lathe_folder_unlock(l);
    assert_true(exists(dir, "out.json") && exists(dir, LATHE_FOLDER_LOCK_NAME));
    assert_false(exists(dir, ".write-test"));
    test_rmtree(dir);
    free(dir);
}

static void next_writer_removes_stale_temporaries(void **state) {
    (void)state;
    char *dir = test_tempdir("stale");
    const char *stale[] = {".manifest.json.Ab12Cd.tmp", ".state.json.000000.tmp"};
    const char *kept[] = {".notes.tmp", "manifest.json.Ab12Cd.tmp", ".open-train.h5.tmp", "data.tmp"};
    char path[4400];
    for (size_t i = 0; i < 2; i++) snprintf(path, sizeof path, "%s/%s", dir, stale[i]), assert_int_equal(test_write_file(path, "x", 1), 0);
    for (size_t i = 0; i < 4; i++) snprintf(path, sizeof path, "%s/%s", dir, kept[i]), assert_int_equal(test_write_file(path, "x", 1), 0);
    lathe_lock *l = NULL, *second = NULL;
    assert_int_equal(lathe_folder_lock(dir, &l), 0);
    for (size_t i = 0; i < 2; i++) assert_false(exists(dir, stale[i]));
    for (size_t i = 0; i < 4; i++) assert_true(exists(dir, kept[i]));
    assert_int_equal(lathe_folder_lock(dir, &second), -LATHE_EBUSY); /* flock is per open file: one process suffices */
    assert_null(second);
    assert_non_null(strstr(lathe_last_error(), "is being written by pid"));
    lathe_folder_unlock(l);
    assert_int_equal(lathe_folder_lock(dir, &second), 0);
    lathe_folder_unlock(second);
    test_rmtree(dir);
    free(dir);
}

static void an_unfilled_folder_is_removed(void **state) {
    (void)state;
    char *root = test_tempdir("made");
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/run", root);
    lathe_lock *l = NULL;
    assert_int_equal(lathe_folder_lock(dir, &l), 0);
    assert_true(lathe_folder_empty(dir));
    lathe_folder_unlock(l);
    assert_int_not_equal(access(dir, F_OK), 0);
    test_rmtree(root);
    free(root);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(temp_names), cmocka_unit_test(write_atomic_leaves_only_the_file),
                                       cmocka_unit_test(next_writer_removes_stale_temporaries),
                                       cmocka_unit_test(an_unfilled_folder_is_removed)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
