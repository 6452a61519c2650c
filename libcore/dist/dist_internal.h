/* dist_internal.h - the rank state dist.c keeps and the transport (dist_mpi.c, or dist_nompi.c in a
 * build without MPI) fills. */
#ifndef LATHE_DIST_DIST_INTERNAL_H
#define LATHE_DIST_DIST_INTERNAL_H
#include "dist.h"

typedef struct {
    int rank, world, local_rank, local_world;
    int started; /* MPI was started by lathe_dist_init (and is ended by lathe_dist_finalize) */
    int agreed;  /* what lathe_dist_agree last returned */
    int sync_bn; /* lathe_dist_set_sync_bn */
} dist_state;

extern dist_state dist_ranks;

/* The ranks a launcher asked for, from its environment: mpirun's OMPI_COMM_WORLD_SIZE, MPICH's and
 * Slurm's PMI_SIZE, srun's SLURM_STEP_NUM_TASKS (the largest); 1 when none is set. */
int dist_launched_tasks(void);
#endif
