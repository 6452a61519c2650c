/* dist.c - the rank accessors and the launcher's environment (dist.h); the transport is in
 * dist_mpi.c. */
#include <sched.h>
#include <stdlib.h>
#include <unistd.h>

#include "dist_internal.h"

dist_state dist_ranks = {0, 1, 0, 1, 0, 0};

int lathe_dist_rank(void) { return dist_ranks.rank; }
int lathe_dist_world(void) { return dist_ranks.world; }
int lathe_dist_local_rank(void) { return dist_ranks.local_rank; }
int lathe_dist_local_world(void) { return dist_ranks.local_world; }
int lathe_dist_agreed(int rc) { return dist_ranks.world > 1 && rc && rc == dist_ranks.agreed; }

int lathe_dist_threads(void) {
    if (dist_ranks.world == 1) return 0;
    cpu_set_t set;
    int bound = sched_getaffinity(0, sizeof set, &set) ? 0 : CPU_COUNT(&set);
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    if (bound > 0 && bound < online) return bound; /* mpirun binds each rank to its cores */
    long share = online / dist_ranks.local_world;
    return share > 1 ? (int)share : 1;
}

static int env_count(const char *name) {
    const char *v = getenv(name);
    char *end;
    long x = v && *v ? strtol(v, &end, 10) : 0;
    return x > 0 && x < (1L << 24) && !*end ? (int)x : 1;
}

int dist_launched_tasks(void) {
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_STEP_NUM_TASKS"};
    int most = 1;
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++)
        if (env_count(vars[i]) > most) most = env_count(vars[i]);
    return most;
}
