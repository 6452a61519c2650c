/* dist_mpi.c - the ranks over MPI (dist.h). MPI starts only when a launcher started this process;
 * its errors return to the caller (MPI_ERRORS_RETURN) instead of aborting inside the library. */
#include <limits.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dist_internal.h"
#include "libcore/base/error.h"

/* the sums started and not yet finished (lathe_dist_sum_f32_start) */
static struct {
    MPI_Request *req;
    int n, cap;
} started;

static int mpi_failed(int err, const char *what) {
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(err, text, &len) != MPI_SUCCESS) snprintf(text, sizeof text, "error %d", err);
    return lathe_fail(LATHE_EIO, "MPI %s failed on rank %d of %d: %s", what, dist_ranks.rank, dist_ranks.world, text);
}

int lathe_dist_init(void) {
    int tasks = dist_launched_tasks(), flag = 0;
    if (tasks <= 1 || dist_ranks.started) return 0;
    MPI_Initialized(&flag);
    if (!flag) {
        int provided, err = MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
        if (err != MPI_SUCCESS) return mpi_failed(err, "start");
    }
    dist_ranks.started = 1;
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &dist_ranks.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &dist_ranks.world);
    MPI_Comm local;
    int err = MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, dist_ranks.rank, MPI_INFO_NULL, &local);
    if (err != MPI_SUCCESS) return mpi_failed(err, "node split");
    MPI_Comm_rank(local, &dist_ranks.local_rank);
    MPI_Comm_size(local, &dist_ranks.local_world);
    MPI_Comm_free(&local);
    if (dist_ranks.world == 1) /* each task its own world: N copies of one run, writing one folder */
        return lathe_fail(LATHE_EINVAL, "the launcher started %d tasks but MPI sees this one alone: with srun, "
                                        "pass --mpi=pmix (or pmi2); or start lathe with mpirun", tasks);
    return 0;
}

void lathe_dist_finalize(void) {
    if (!dist_ranks.started) return;
    free(started.req);
    started.req = NULL, started.n = started.cap = 0;
    MPI_Finalize();
    dist_ranks.started = 0;
}

void lathe_dist_abort(int code) {
    if (dist_ranks.started && dist_ranks.world > 1) MPI_Abort(MPI_COMM_WORLD, code);
}

#define PIECE LATHE_DIST_PIECE

static int sum(void *buf, size_t n, size_t size, MPI_Datatype type) {
    if (dist_ranks.world == 1) return 0;
    for (size_t at = 0; at < n; at += PIECE) {
        int count = (int)(n - at < PIECE ? n - at : PIECE);
        int err = MPI_Allreduce(MPI_IN_PLACE, (char *)buf + at * size, count, type, MPI_SUM, MPI_COMM_WORLD);
        if (err != MPI_SUCCESS) return mpi_failed(err, "all-reduce");
    }
    return 0;
}

int lathe_dist_sum_f32(float *buf, size_t n) { return sum(buf, n, sizeof *buf, MPI_FLOAT); }
int lathe_dist_sum_f64(double *buf, size_t n) { return sum(buf, n, sizeof *buf, MPI_DOUBLE); }
int lathe_dist_sum_u64(uint64_t *buf, size_t n) { return sum(buf, n, sizeof *buf, MPI_UINT64_T); }

int lathe_dist_sum_reserve(size_t pieces) {
    if (pieces <= (size_t)started.cap) return 0;
    if (pieces > INT_MAX) return lathe_fail(LATHE_ENOMEM, "%zu pending sums", pieces);
    MPI_Request *r = realloc(started.req, sizeof *r * pieces);
    if (!r) return lathe_fail(LATHE_ENOMEM, "%zu pending sums", pieces);
    started.req = r, started.cap = (int)pieces;
    return 0;
}

int lathe_dist_sum_f32_start(float *buf, size_t n) {
    if (dist_ranks.world == 1) return 0;
    for (size_t at = 0; at < n; at += PIECE) {
        if (started.n == started.cap && lathe_dist_sum_reserve(started.cap ? 2 * (size_t)started.cap : 64))
            return lathe_fail_context(LATHE_ENOMEM, "MPI all-reduce start");
        int count = (int)(n - at < PIECE ? n - at : PIECE);
        int err = MPI_Iallreduce(MPI_IN_PLACE, buf + at, count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &started.req[started.n]);
        if (err != MPI_SUCCESS) return mpi_failed(err, "all-reduce start");
        started.n++;
    }
    return 0;
}

int lathe_dist_progress(void) {
    int done = 0, err = started.n ? MPI_Testall(started.n, started.req, &done, MPI_STATUSES_IGNORE) : MPI_SUCCESS;
    if (err != MPI_SUCCESS) return mpi_failed(err, "all-reduce");
    if (done) started.n = 0;
    return 0;
}

int lathe_dist_sum_finish(void) {
    int err = started.n ? MPI_Waitall(started.n, started.req, MPI_STATUSES_IGNORE) : MPI_SUCCESS;
    started.n = 0;
    return err == MPI_SUCCESS ? 0 : mpi_failed(err, "all-reduce");
}

int lathe_dist_allgather(const void *mine, size_t bytes, void **all, size_t *sizes) {
    int world = dist_ranks.world;
    uint64_t *each = malloc(sizeof *each * (size_t)world);
    int *counts = malloc(sizeof *counts * (size_t)world), *at = malloc(sizeof *at * (size_t)world);
    uint64_t me = bytes, total = 0;
    int rc = each && counts && at ? 0 : lathe_fail(LATHE_ENOMEM, "gather of %d ranks", world), err;
    if (!rc && world == 1) each[0] = me;
    else if (!rc && (err = MPI_Allgather(&me, 1, MPI_UINT64_T, each, 1, MPI_UINT64_T, MPI_COMM_WORLD)) != MPI_SUCCESS)
        rc = mpi_failed(err, "gather");
    for (int r = 0; !rc && r < world; r++) at[r] = (int)total, counts[r] = (int)each[r], total += each[r];
    if (!rc && total > INT_MAX) rc = lathe_fail(LATHE_ELIMIT, "a gather of %llu bytes: 2 GiB at most", (unsigned long long)total);
    if (!rc && !(*all = malloc(total ? total : 1))) rc = lathe_fail(LATHE_ENOMEM, "%llu bytes", (unsigned long long)total);
    if (!rc && world == 1) {
        if (bytes) memcpy(*all, mine, bytes); /* (mine may be NULL with nothing to send) */
    } else if (!rc && (err = MPI_Allgatherv(mine, (int)bytes, MPI_BYTE, *all, counts, at, MPI_BYTE, MPI_COMM_WORLD)) != MPI_SUCCESS) {
        free(*all);
        rc = mpi_failed(err, "gather");
    }
    for (int r = 0; !rc && sizes && r < world; r++) sizes[r] = (size_t)each[r];
    if (rc) *all = NULL;
    free(each), free(counts), free(at);
    return rc;
}

int lathe_dist_broadcast(void *buf, size_t bytes, int root) {
    if (dist_ranks.world == 1) return 0;
    for (size_t at = 0; at < bytes; at += PIECE) {
        int count = (int)(bytes - at < PIECE ? bytes - at : PIECE);
        int err = MPI_Bcast((char *)buf + at, count, MPI_BYTE, root, MPI_COMM_WORLD);
        if (err != MPI_SUCCESS) return mpi_failed(err, "broadcast");
    }
    return 0;
}

static int agree(int rc) {
    int mine = rc ? dist_ranks.rank : dist_ranks.world, first = 0;
    int err = MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (err != MPI_SUCCESS) return mpi_failed(err, "agreement");
    if (first == dist_ranks.world) return 0;
    struct {
        int code;
        char message[1000];
    } why = {rc, {0}};
    if (first == dist_ranks.rank) snprintf(why.message, sizeof why.message, "%s", lathe_last_error());
    err = MPI_Bcast(&why, (int)sizeof why, MPI_BYTE, first, MPI_COMM_WORLD);
    if (err != MPI_SUCCESS) return mpi_failed(err, "agreement");
    if (first == dist_ranks.rank) return rc;
    why.message[sizeof why.message - 1] = 0;
    return lathe_fail(why.code < 0 ? -why.code : LATHE_EIO, "rank %d: %s", first, why.message);
}

int lathe_dist_agree(int rc) {
    if (dist_ranks.world == 1) return rc;
    return dist_ranks.agreed = agree(rc);
}
