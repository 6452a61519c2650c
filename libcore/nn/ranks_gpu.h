/* ranks_gpu.h - the gradients of a data-parallel run whose ranks train on GPUs (one GPU a rank),
 * summed over the ranks with NCCL on the GPUs themselves (ranks_gpu.c; docs/SCALE.md). */
#ifndef LATHE_NN_RANKS_GPU_H
#define LATHE_NN_RANKS_GPU_H
#include "graph.h"

/* 1 when this lathe was built with NCCL (CUDA, MPI and nccl.h), else 0. */
int lathe_ranks_gpu_built(void);
/* Sums every trainable parameter's gradient of g (on its GPU, after backward) over the ranks, in
 * place, each rank's times weight; zero: this rank had no samples in the step and adds zeros. The
 * first call makes the NCCL communicator (its id from rank 0 over MPI). A collective: every rank
 * calls it. 0, -LATHE_EUNSUPPORTED (no NCCL in this build) or -LATHE_EIO with NCCL's reason. */
int lathe_ranks_gpu_sum(lathe_graph *g, float weight, int zero);
/* Ends the communicator (at the end of a run; a later sum makes a new one). */
void lathe_ranks_gpu_free(void);
#endif
