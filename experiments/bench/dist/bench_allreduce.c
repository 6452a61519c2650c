/* bench_allreduce.c - the time of the gradient all-reduce lathe's data-parallel trainer runs
 * (lathe_dist_sum_f32: MPI_Allreduce, in place, float sums) against the gradient's size, for the
 * scaling model of docs/SCALE.md. Run under a launcher: mpirun -np 2 bench_allreduce [FLOATS ...]
 * (default: 1 Ki to 32 Mi floats, by 4). Rank 0 prints one JSON line per size: floats, bytes,
 * median_s (of the reps after warm-up, each started together), and bus_gb_per_s, the bandwidth a
 * ring all-reduce moves per rank (2 (n - 1) / n x bytes / time), as nccl-tests reports it. */
#include <stdio.h>
#include <stdlib.h>

#include "libcore/base/error.h"
#include "libcore/base/log.h"
#include "libcore/dist/dist.h"

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int measure(size_t n, double *median) {
    float *buf = malloc(n * sizeof *buf);
    enum { WARM = 3, REPS = 15 };
    double t[REPS] = {0}, sync = 0;
    if (!buf) return lathe_fail(LATHE_ENOMEM, "%zu floats", n);
    for (size_t i = 0; i < n; i++) buf[i] = 1e-3f * (float)(i % 1000);
    int rc = 0;
    for (int r = 0; !rc && r < WARM + REPS; r++) {
        rc = lathe_dist_sum_f64(&sync, 1); /* start together */
        double t0 = lathe_now();
        if (!rc) rc = lathe_dist_sum_f32(buf, n);
        double mine = lathe_now() - t0;
        if (!rc && r >= WARM) t[r - WARM] = mine;
    }
    free(buf);
    qsort(t, REPS, sizeof *t, cmp);
    *median = t[REPS / 2];
    return rc;
}

int main(int argc, char **argv) {
    if (lathe_dist_init() || lathe_dist_world() < 2) {
        fprintf(stderr, "bench_allreduce: %s\n", lathe_dist_world() < 2 ? "start it with mpirun -np N (N >= 2)" : lathe_last_error());
        return 2;
    }
    size_t sizes[32];
    int count = 0;
    for (int i = 1; i < argc && count < 32; i++) sizes[count++] = strtoull(argv[i], NULL, 10);
    for (size_t n = 1024; argc == 1 && n <= ((size_t)32 << 20); n *= 4) sizes[count++] = n;
    int world = lathe_dist_world();
    for (int i = 0; i < count; i++) {
        double s = 0;
        if (measure(sizes[i], &s)) {
            fprintf(stderr, "bench_allreduce: %s\n", lathe_last_error());
            return 1;
        }
        double bytes = 4.0 * (double)sizes[i];
        if (lathe_dist_writer())
            printf("{\"ranks\": %d, \"floats\": %zu, \"bytes\": %.0f, \"median_s\": %.6g, \"bus_gb_per_s\": %.3f}\n", world,
                   sizes[i], bytes, s, 2.0 * (world - 1) / world * bytes / s / 1e9);
    }
    lathe_dist_finalize();
    return 0;
}
