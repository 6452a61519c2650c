/* grad_sum.h - a data-parallel step's gradients summed over the ranks in buckets, each sent as soon
 * as backward has finished every gradient in it, so the sums travel while backward goes on: MPI's
 * non-blocking all-reduce on CPU ranks, NCCL on GPU ranks (ranks_gpu.h). docs/SCALE.md. */
#ifndef LATHE_NN_GRAD_SUM_H
#define LATHE_NN_GRAD_SUM_H
#include "graph.h"

typedef struct lathe_grad_sum lathe_grad_sum;

/* Plans the buckets of g's trainable gradients (in backward's order, bucket_mb MiB each, the last
 * smaller; bucket_mb 0: one bucket, sent when backward ends) and hooks them to g's backward. Call
 * it once the parameters are frozen as they will stay. 0, -LATHE_EINVAL or -LATHE_ENOMEM. */
int lathe_grad_sum_new(lathe_graph *g, double bucket_mb, lathe_grad_sum **out);
/* Before a step's backward: this rank's gradients count `mine` samples of the step's `total`;
 * as_is: they are already in the whole step's units (a loss shared by the ranks, or prescaled),
 * else each rank's mean gradient is weighted by its share. zero: this rank has no samples and runs
 * no backward (it adds zeros). 0 or a negative error. */
int lathe_grad_sum_begin(lathe_grad_sum *s, int mine, int total, int as_is, int zero);
/* After backward (or in its place): sends the buckets not yet sent and waits for every sum; the
 * gradients are then the whole step's on every rank. Call it even when backward failed, so every
 * rank sends the same sums. 0 or a negative error. */
int lathe_grad_sum_finish(lathe_grad_sum *s);
/* How many buckets the plan has; bucket j's floats and the layer backward must have passed before it
 * is sent; how many buckets this step has sent so far. */
int lathe_grad_sum_buckets(const lathe_grad_sum *s);
void lathe_grad_sum_bucket(const lathe_grad_sum *s, int j, size_t *floats, int *layer);
int lathe_grad_sum_sent(const lathe_grad_sum *s);
void lathe_grad_sum_free(lathe_grad_sum *s);
#endif
