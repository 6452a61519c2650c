/* dist_nompi.c - the transport of a build without MPI (no libopenmpi-dev, or MPI=0): one rank, and a
 * clear error when a launcher asks for more. */
#include <stdlib.h>
#include <string.h>

#include "dist_internal.h"
#include "libcore/base/error.h"

int lathe_dist_init(void) {
    int tasks = dist_launched_tasks();
    if (tasks > 1)
        return lathe_fail(LATHE_EUNSUPPORTED, "started as one of %d ranks, but this lathe was built without MPI "
                                              "(install libopenmpi-dev and rebuild: make deps && make)", tasks);
    return 0;
}

void lathe_dist_finalize(void) {}
void lathe_dist_abort(int code) { (void)code; }
int lathe_dist_sum_f32(float *buf, size_t n) { return (void)buf, (void)n, 0; }
int lathe_dist_sum_f64(double *buf, size_t n) { return (void)buf, (void)n, 0; }
int lathe_dist_sum_u64(uint64_t *buf, size_t n) { return (void)buf, (void)n, 0; }
int lathe_dist_sum_f32_start(float *buf, size_t n) { return (void)buf, (void)n, 0; }
int lathe_dist_progress(void) { return 0; }
int lathe_dist_sum_finish(void) { return 0; }
int lathe_dist_sum_reserve(size_t pieces) { return (void)pieces, 0; }
int lathe_dist_broadcast(void *buf, size_t bytes, int root) { return (void)buf, (void)bytes, (void)root, 0; }
int lathe_dist_agree(int rc) { return rc; }

int lathe_dist_allgather(const void *mine, size_t bytes, void **all, size_t *sizes) {
    if (!(*all = malloc(bytes ? bytes : 1))) return lathe_fail(LATHE_ENOMEM, "%zu bytes", bytes);
    if (bytes) memcpy(*all, mine, bytes);
    if (sizes) sizes[0] = bytes;
    return 0;
}
