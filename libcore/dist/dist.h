/* dist.h - the ranks of a data-parallel run (docs/SCALE.md). `lathe train` started by mpirun or
 * srun runs one rank per process; MPI is the transport (never a home-made one). Without a
 * launcher nothing changes: one rank, world 1, and every collective returns at once.
 *
 * State is per process (MPI's is), set up once by lathe_dist_init before any other call. Every
 * collective must be called by every rank in the same order; the trainer keeps to that. */
#ifndef LATHE_DIST_DIST_H
#define LATHE_DIST_DIST_H
#include <stddef.h>
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif

/* Starts MPI when a launcher started this process (mpirun's OMPI_COMM_WORLD_SIZE or PMI_SIZE, or
 * srun's SLURM_STEP_NUM_TASKS, above 1), else does nothing. Returns 0; -LATHE_EUNSUPPORTED when
 * a launcher asks for several ranks from a lathe built without MPI; -LATHE_EINVAL when the launcher
 * started several tasks but MPI sees each as alone (srun without --mpi=pmix or pmi2: they would
 * train the same run side by side); -LATHE_EIO when MPI fails to start. */
int lathe_dist_init(void);
/* Ends MPI when lathe_dist_init started it (call once, at exit, from every rank). */
void lathe_dist_finalize(void);
/* Called on one rank's fatal path: ends every rank's run (MPI_Abort) so none waits forever. */
void lathe_dist_abort(int code);

int lathe_dist_rank(void);        /* 0 .. world - 1 */
int lathe_dist_world(void);       /* 1 without a launcher */
int lathe_dist_local_rank(void);  /* the rank among this node's ranks (its GPU) */
int lathe_dist_local_world(void); /* ranks on this node (they share its CPU cores) */
/* The CPU cores of this rank, for its threads when none are asked for: those the launcher bound
 * it to; else (srun without binding, a bare mpirun --bind-to none) it binds itself to its local
 * rank's equal slice of the cores it may use, as unbound ranks on one node otherwise take turns on
 * the same cores (measured: 13x slower for two ranks on two cores). 0 in one process (all cores). */
int lathe_dist_cpu_share(void);
/* train.sync_bn: graphs built from now on, in training, take their batch norms' statistics over every
 * rank's samples (libcore/nn/bn_sync.c). lathe_dist_sync_bn is 1 when it was asked for and there
 * are several ranks (one process has nothing to synchronize). */
void lathe_dist_set_sync_bn(int on);
int lathe_dist_sync_bn(void);
/* How the ranks share a split's batches of `batch` samples (validation): every rank takes every
 * ranks-th batch, rank r the batches r, r + ranks, ...: its first starts at lathe_dist_first_batch,
 * the next one lathe_dist_batch_stride later. In one process: 0 and batch. */
static inline uint64_t lathe_dist_first_batch(uint64_t batch) { return batch * (uint64_t)lathe_dist_rank(); }
static inline uint64_t lathe_dist_batch_stride(uint64_t batch) { return batch * (uint64_t)lathe_dist_world(); }
/* 1 on rank 0: the one that writes checkpoints, logs and reports. */
static inline int lathe_dist_writer(void) { return lathe_dist_rank() == 0; }

/* Sums buf over the ranks, in place, on every rank (MPI_Allreduce). 0 or -LATHE_EIO. */
int lathe_dist_sum_f32(float *buf, size_t n);
int lathe_dist_sum_f64(double *buf, size_t n);
int lathe_dist_sum_u64(uint64_t *buf, size_t n);
/* The same sum of floats started now and finished by lathe_dist_sum_finish (MPI_Iallreduce), so the
 * caller computes meanwhile (the trainer's gradient buckets, launched as backward finishes them).
 * buf must stay untouched until then. lathe_dist_progress lets MPI move the started sums along (it
 * moves them only inside its calls); lathe_dist_sum_finish waits for every started sum. Every rank
 * starts the same sums in the same order. 0, -LATHE_ENOMEM or -LATHE_EIO. */
int lathe_dist_sum_f32_start(float *buf, size_t n);
int lathe_dist_progress(void);
int lathe_dist_sum_finish(void);
/* Makes room for `pieces` started sums at once (a sum of n floats takes ceil(n / LATHE_DIST_PIECE)),
 * so that starting them cannot fail for memory: a rank that could not start a sum the others
 * started would leave them waiting. 0 or -LATHE_ENOMEM. */
#define LATHE_DIST_PIECE ((size_t)1 << 28) /* MPI counts are ints: longer buffers go in pieces */
int lathe_dist_sum_reserve(size_t pieces);
/* Every rank's bytes, on every rank: *all (malloc'ed, the caller frees) holds rank 0's, then rank
 * 1's, ..., sizes[r] (world entries, may be NULL) how many each sent. In one process a copy.
 * 0, -LATHE_ENOMEM, -LATHE_ELIMIT (2 GiB in all: MPI counts are ints) or -LATHE_EIO. */
int lathe_dist_allgather(const void *mine, size_t bytes, void **all, size_t *sizes);
/* Copies root's bytes to every rank. 0 or -LATHE_EIO. */
int lathe_dist_broadcast(void *buf, size_t bytes, int root);
/* Every rank's rc becomes the first failing rank's (its code, and its message in this thread's
 * lathe_last_error, naming the rank), or 0 when all succeeded. A collective: every rank calls it
 * at the same point, so one rank's error stops them all there instead of leaving the others
 * waiting at the next collective. */
int lathe_dist_agree(int rc);
/* 1 when the error rc is what lathe_dist_agree last returned here: every rank holds it, so rank 0
 * alone need report it; 0 for an error of this rank's own (and always in one process). */
int lathe_dist_agreed(int rc);

#ifdef __cplusplus
}
#endif
#endif
