/* test_dist.c - libcore/dist in one process (no launcher): one rank, every collective (started sums
 * too) a no-op that leaves its data alone, the all-gather a copy, errors passed through and not counted as agreed,
 * no thread binding and no synchronized batch norm. The ranks themselves (mpirun, srun, and a
 * launcher MPI cannot see) are tested by tests/interop/test_distributed.py and test_slurm.py; here
 * MPI is never started (under LeakSanitizer its components' allocations would fail the test). */
#include "testutil.h"

#include <stdlib.h>

#include "libcore/base/error.h"
#include "libcore/dist/dist.h"

static void one_process_is_one_rank(void **state) {
    (void)state;
    assert_int_equal(lathe_dist_init(), 0); /* no launcher here: no MPI call */
    assert_int_equal(lathe_dist_rank(), 0);
    assert_int_equal(lathe_dist_world(), 1);
    assert_int_equal(lathe_dist_local_rank(), 0);
    assert_int_equal(lathe_dist_local_world(), 1);
    assert_true(lathe_dist_writer());
    assert_int_equal(lathe_dist_cpu_share(), 0); /* all cores, and no binding */
    lathe_dist_set_sync_bn(1);
    assert_int_equal(lathe_dist_sync_bn(), 0); /* nothing to synchronize */
    lathe_dist_set_sync_bn(0);
}

static void collectives_leave_one_rank_data_alone(void **state) {
    (void)state;
    float f[3] = {1.5f, -2, 3};
    double d[2] = {0.25, 7};
    uint64_t u[2] = {5, 1ull << 40};
    assert_int_equal(lathe_dist_sum_f32(f, 3), 0);
    assert_int_equal(lathe_dist_sum_f64(d, 2), 0);
    assert_int_equal(lathe_dist_sum_u64(u, 2), 0);
    assert_true(f[0] == 1.5f && f[1] == -2 && f[2] == 3 && d[0] == 0.25 && d[1] == 7 && u[1] == 1ull << 40);
    assert_int_equal(lathe_dist_sum_f32_start(f, 3), 0); /* the started sum: nothing to wait for */
    assert_int_equal(lathe_dist_progress(), 0);
    assert_int_equal(lathe_dist_sum_finish(), 0);
    assert_true(f[0] == 1.5f && f[1] == -2 && f[2] == 3);
    char text[] = "broadcast";
    assert_int_equal(lathe_dist_broadcast(text, sizeof text, 0), 0);
    assert_string_equal(text, "broadcast");
    void *all = NULL;
    size_t sizes[1] = {0};
    assert_int_equal(lathe_dist_allgather(text, sizeof text, &all, sizes), 0);
    assert_int_equal(sizes[0], sizeof text);
    assert_memory_equal(all, text, sizeof text);
    free(all);
    assert_int_equal(lathe_dist_allgather(NULL, 0, &all, NULL), 0); /* nothing to send: still a buffer */
    assert_non_null(all);
    free(all);
}

static void errors_pass_through_unagreed(void **state) {
    (void)state;
    assert_int_equal(lathe_dist_agree(0), 0);
    int rc = lathe_fail(LATHE_EIO, "disk gone");
    assert_int_equal(lathe_dist_agree(rc), -LATHE_EIO);
    assert_string_equal(lathe_last_error(), "disk gone");
    assert_false(lathe_dist_agreed(rc)); /* one process: its own error, to print */
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(one_process_is_one_rank),
                                       cmocka_unit_test(collectives_leave_one_rank_data_alone),
                                       cmocka_unit_test(errors_pass_through_unagreed)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
