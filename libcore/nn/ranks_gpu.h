/* ranks_gpu.h - the gradients of a data-parallel run whose ranks train on GPUs (one GPU a rank),
 * summed over the ranks with NCCL on the GPUs themselves (ranks_gpu.c; docs/SCALE.md). */
#ifndef LATHE_NN_RANKS_GPU_H
#define LATHE_NN_RANKS_GPU_H
#include "graph.h"

/* 1 when this lathe was built with NCCL (CUDA, MPI and nccl.h), else 0. */
int lathe_ranks_gpu_built(void);
/* A step's sum of the gradients of g (on its GPU) over the ranks, in place, each rank's times
 * weight, in buckets: begin before backward (zero: this rank has no samples in the step and adds
 * zeros; buckets: how many the step will send, their events made now); bucket once backward has
 * queued the final gradients of the parameters idx[0..n) (the all-reduce then runs on NCCL's
 * stream as soon as the GPU gets there, beside the rest of backward); finish waits for them all,
 * ending the wait with an error when NCCL reports one. finish with abandon (the ranks agreed that
 * one of them could not queue all its sums) aborts the communicator instead, so no rank waits
 * for sums that will not come; the next begin makes a new one. The first begin makes the NCCL
 * communicator (its id from rank 0 over MPI). Collectives: every rank calls them, with the same
 * buckets in the same order. 0, -LATHE_EUNSUPPORTED (no NCCL in this build), -LATHE_ENOMEM or
 * -LATHE_EIO with the reason. */
int lathe_ranks_gpu_begin(lathe_graph *g, float weight, int zero, int buckets);
int lathe_ranks_gpu_bucket(lathe_graph *g, const size_t *idx, size_t n);
int lathe_ranks_gpu_finish(lathe_graph *g, int abandon);
/* Ends the communicator (at the end of a run; a later sum makes a new one). */
void lathe_ranks_gpu_free(void);
#endif
