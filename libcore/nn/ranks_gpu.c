/* ranks_gpu.c - a data-parallel run's gradients summed over GPU ranks with NCCL (ranks_gpu.h).
 * Each bucket is a grouped all-reduce (a weighted sum through NCCL's pre-multiplied sum) on a stream
 * of NCCL's own, made to wait (an event) for the graph's stream to reach the point backward had
 * queued when the bucket was handed over: the sums run beside the rest of backward, and the step
 * waits for them before the update (grad_sum.c decides the buckets).
 * NCCL is loaded when a run first needs it (dlopen): linked, its library doubled the start-up time
 * of every lathe command (0.09 -> 0.18 s). */
#include "ranks_gpu.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "libcore/base/error.h"
#include "libcore/dist/dist.h"

#if defined(LATHE_HAVE_CUDA) && defined(LATHE_HAVE_NCCL)
#include <cuda_runtime_api.h>
/* nccl.h declares some functions as f() (no prototype), which this build's warnings refuse */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstrict-prototypes"
#include <nccl.h>
#pragma GCC diagnostic pop

static ncclComm_t comm;
static cudaStream_t stream;
static int device = -1;
static ncclRedOp_t op = ncclSum; /* the step's weighted sum (ncclSum when every weight is 1) */
static struct {
    cudaEvent_t *ev;
    int used, cap;
} events;

/* NCCL's functions this file calls, from libnccl.so.2 */
static struct {
    void *lib;
    const char *(*error_string)(ncclResult_t);
    ncclResult_t (*get_unique_id)(ncclUniqueId *);
    ncclResult_t (*comm_init_rank)(ncclComm_t *, int, ncclUniqueId, int);
    ncclResult_t (*comm_destroy)(ncclComm_t);
    ncclResult_t (*comm_abort)(ncclComm_t);
    ncclResult_t (*async_error)(ncclComm_t, ncclResult_t *);
    ncclResult_t (*op_create)(ncclRedOp_t *, void *, ncclDataType_t, ncclScalarResidence_t, ncclComm_t);
    ncclResult_t (*op_destroy)(ncclRedOp_t, ncclComm_t);
    ncclResult_t (*group_start)(void);
    ncclResult_t (*group_end)(void);
    ncclResult_t (*all_reduce)(const void *, void *, size_t, ncclDataType_t, ncclRedOp_t, ncclComm_t, cudaStream_t);
} nccl;

int lathe_ranks_gpu_built(void) { return 1; }

static int load_nccl(void) {
    if (nccl.lib) return 0;
    void *lib = dlopen("libnccl.so.2", RTLD_NOW | RTLD_LOCAL);
    if (!lib) return lathe_fail(LATHE_EUNSUPPORTED, "several ranks on GPUs need NCCL: %s", dlerror());
    const char *names[] = {"ncclGetErrorString", "ncclGetUniqueId", "ncclCommInitRank", "ncclCommDestroy",
                           "ncclCommAbort", "ncclCommGetAsyncError", "ncclRedOpCreatePreMulSum", "ncclRedOpDestroy",
                           "ncclGroupStart", "ncclGroupEnd", "ncclAllReduce"};
    void **slots[] = {(void **)&nccl.error_string, (void **)&nccl.get_unique_id, (void **)&nccl.comm_init_rank,
                      (void **)&nccl.comm_destroy, (void **)&nccl.comm_abort, (void **)&nccl.async_error,
                      (void **)&nccl.op_create, (void **)&nccl.op_destroy, (void **)&nccl.group_start,
                      (void **)&nccl.group_end, (void **)&nccl.all_reduce};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (!(*slots[i] = dlsym(lib, names[i]))) {
            dlclose(lib);
            return lathe_fail(LATHE_EUNSUPPORTED, "libnccl.so.2 lacks %s (NCCL 2.11 or later needed)", names[i]);
        }
    nccl.lib = lib;
    return 0;
}

static int nccl_failed(ncclResult_t r, const char *what) {
    return lathe_fail(LATHE_EIO, "NCCL %s failed on rank %d: %s", what, lathe_dist_rank(), nccl.error_string(r));
}

/* The communicator of every rank's GPU, made once (rank 0 draws its id, MPI hands it to the rest). */
static int communicator(int dev) {
    if (device == dev) return 0;
    if (device >= 0) lathe_ranks_gpu_free();
    ncclUniqueId id;
    int rc = lathe_dist_agree(load_nccl());
    if (rc) return rc;
    ncclResult_t r = lathe_dist_rank() == 0 ? nccl.get_unique_id(&id) : ncclSuccess;
    rc = lathe_dist_agree(r == ncclSuccess ? 0 : nccl_failed(r, "id"));
    if (!rc) rc = lathe_dist_broadcast(&id, sizeof id, 0);
    if (rc) return rc;
    int made = cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking) == cudaSuccess;
    rc = made ? 0 : lathe_fail(LATHE_EIO, "NCCL stream: %s", cudaGetErrorString(cudaGetLastError()));
    if ((rc = lathe_dist_agree(rc))) { /* every rank reaches ncclCommInitRank, or none */
        if (made) cudaStreamDestroy(stream);
        return rc;
    }
    if ((r = nccl.comm_init_rank(&comm, lathe_dist_world(), id, lathe_dist_rank())) != ncclSuccess) {
        cudaStreamDestroy(stream);
        return nccl_failed(r, "start");
    }
    device = dev;
    return 0;
}

static int cuda_failed(const char *what) {
    return lathe_fail(LATHE_EIO, "NCCL %s on rank %d: %s", what, lathe_dist_rank(), cudaGetErrorString(cudaGetLastError()));
}

/* Room for `need` events, made before the step's first collective (a rank that could not make one
 * mid-backward would leave the others waiting for its bucket). */
static int reserve_events(int need) {
    if (need <= events.cap) return 0;
    cudaEvent_t *e = realloc(events.ev, sizeof *e * (size_t)need);
    if (!e) return lathe_fail(LATHE_ENOMEM, "%d events", need);
    events.ev = e;
    for (; events.cap < need; events.cap++)
        if (cudaEventCreateWithFlags(&e[events.cap], cudaEventDisableTiming) != cudaSuccess) return cuda_failed("event");
    return 0;
}

/* Makes NCCL's stream wait for what the graph's stream holds now (one reserved event a use). */
static int after_graph(lathe_graph *g) {
    if (events.used == events.cap) return lathe_fail(LATHE_EINVAL, "more buckets than lathe_ranks_gpu_begin was told");
    cudaEvent_t ev = events.ev[events.used++];
    if (cudaEventRecord(ev, (cudaStream_t)lathe_graph_stream(g)) != cudaSuccess || cudaStreamWaitEvent(stream, ev, 0) != cudaSuccess)
        return cuda_failed("event");
    return 0;
}

int lathe_ranks_gpu_begin(lathe_graph *g, float weight, int zero, int buckets) {
    if (!lathe_graph_cuda(g)) return lathe_fail(LATHE_EINVAL, "the graph is not on a GPU"); /* (makes its GPU current) */
    int rc = communicator(lathe_graph_device(g));
    if (rc || (rc = reserve_events(buckets + 1))) return rc;
    events.used = 0;
    op = ncclSum;
    ncclResult_t r = weight == 1 ? ncclSuccess : nccl.op_create(&op, &weight, ncclFloat, ncclScalarHostImmediate, comm);
    if (r != ncclSuccess) return nccl_failed(r, "weighted sum");
    if (!zero) return 0;
    /* no samples, no backward: the gradients are the last step's, zeroed once its update has read them */
    if ((rc = after_graph(g))) return rc;
    for (size_t i = 0; i < lathe_graph_nparams(g); i++) {
        lathe_param *p = lathe_graph_param(g, i);
        if (p->grad_dev && !p->frozen && cudaMemsetAsync(p->grad_dev, 0, p->count * sizeof(float), stream) != cudaSuccess)
            return cuda_failed("zero gradients");
    }
    return 0;
}

int lathe_ranks_gpu_bucket(lathe_graph *g, const size_t *idx, size_t n) {
    int rc = after_graph(g);
    if (rc) return rc;
    ncclResult_t r = nccl.group_start();
    if (r != ncclSuccess) return nccl_failed(r, "all-reduce");
    for (size_t i = 0; r == ncclSuccess && i < n; i++) {
        lathe_param *p = lathe_graph_param(g, idx[i]);
        r = nccl.all_reduce(p->grad_dev, p->grad_dev, p->count, ncclFloat, op, comm, stream);
    }
    ncclResult_t end = nccl.group_end();
    return r != ncclSuccess ? nccl_failed(r, "all-reduce") : end != ncclSuccess ? nccl_failed(end, "all-reduce") : 0;
}

/* Ends the communicator with `end` (ncclCommDestroy, or ncclCommAbort, which ends its queued and
 * stuck operations too) and releases its stream and events. */
static void end_communicator(ncclResult_t (*end)(ncclComm_t)) {
    end(comm);
    for (int i = 0; i < events.cap; i++) cudaEventDestroy(events.ev[i]);
    free(events.ev);
    events.ev = NULL, events.used = events.cap = 0;
    cudaStreamDestroy(stream);
    device = -1, op = ncclSum;
}

static void abort_communicator(void) { end_communicator(nccl.comm_abort); }

int lathe_ranks_gpu_finish(lathe_graph *g, int abandon) {
    lathe_graph_cuda(g);
    if (abandon) { /* some rank did not queue all its sums: the others' would wait forever */
        abort_communicator();
        return 0;
    }
    /* poll instead of cudaStreamSynchronize, so an error NCCL meets (a lost peer, a network fault)
     * ends the wait instead of hanging it */
    cudaError_t st;
    ncclResult_t async = ncclSuccess;
    const struct timespec pause = {0, 20000};
    while ((st = cudaStreamQuery(stream)) == cudaErrorNotReady) {
        if (nccl.async_error(comm, &async) != ncclSuccess || async != ncclSuccess) break;
        nanosleep(&pause, NULL);
    }
    if (st != cudaErrorNotReady && st != cudaSuccess) {
        int rc = lathe_fail(LATHE_EIO, "NCCL all-reduce on rank %d: %s", lathe_dist_rank(), cudaGetErrorString(st));
        abort_communicator();
        return rc;
    }
    if (st == cudaErrorNotReady) {
        int rc = nccl_failed(async != ncclSuccess ? async : ncclInternalError, "all-reduce");
        abort_communicator();
        return rc;
    }
    if (op != ncclSum) nccl.op_destroy(op, comm);
    op = ncclSum;
    return 0;
}

void lathe_ranks_gpu_free(void) {
    if (device >= 0) end_communicator(nccl.comm_destroy);
}
#else
int lathe_ranks_gpu_built(void) { return 0; }

int lathe_ranks_gpu_begin(lathe_graph *g, float weight, int zero, int buckets) {
    (void)g, (void)weight, (void)zero, (void)buckets;
    return lathe_fail(LATHE_EUNSUPPORTED, "several ranks on GPUs need NCCL, and this lathe was built without it (CUDA, "
                                          "MPI and nccl.h): train.device=cpu trains on the CPUs with MPI");
}

int lathe_ranks_gpu_bucket(lathe_graph *g, const size_t *idx, size_t n) {
    (void)idx, (void)n;
    return lathe_ranks_gpu_begin(g, 1, 0, 0);
}

int lathe_ranks_gpu_finish(lathe_graph *g, int abandon) {
    (void)abandon;
    return lathe_ranks_gpu_begin(g, 1, 0, 0);
}

void lathe_ranks_gpu_free(void) {}
#endif
