/* dist.c - the rank accessors and the launcher's environment (dist.h); the transport is in
 * dist_mpi.c. */
#include <dirent.h>
#include <sched.h>
#include <stdlib.h>
#include <unistd.h>

#include "dist_internal.h"

dist_state dist_ranks = {0, 1, 0, 1, 0, 0, 0};

int lathe_dist_rank(void) { return dist_ranks.rank; }
int lathe_dist_world(void) { return dist_ranks.world; }
int lathe_dist_local_rank(void) { return dist_ranks.local_rank; }
int lathe_dist_local_world(void) { return dist_ranks.local_world; }
void lathe_dist_set_sync_bn(int on) { dist_ranks.sync_bn = on; }
int lathe_dist_sync_bn(void) { return dist_ranks.sync_bn && dist_ranks.world > 1; }
int lathe_dist_agreed(int rc) { return dist_ranks.world > 1 && rc && rc == dist_ranks.agreed; }

/* Binds every thread of the process (MPI's own, started before, too) to cpus. */
static int bind_threads(const cpu_set_t *cpus) {
    DIR *d = opendir("/proc/self/task");
    if (!d) return sched_setaffinity(0, sizeof *cpus, cpus);
    int rc = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (e->d_name[0] != '.') rc |= sched_setaffinity((pid_t)atoi(e->d_name), sizeof *cpus, cpus);
    closedir(d);
    return rc;
}

int lathe_dist_cpu_share(void) {
    if (dist_ranks.world == 1) return 0;
    cpu_set_t set, mine;
    if (sched_getaffinity(0, sizeof set, &set)) return 1;
    int allowed = CPU_COUNT(&set), ranks = dist_ranks.local_world, r = dist_ranks.local_rank;
    if (allowed < sysconf(_SC_NPROCESSORS_ONLN) || ranks == 1) return allowed; /* bound by the launcher */
    if (allowed < ranks) return 1; /* more ranks than cores: sharing is all there is */
    int first = (int)((long)r * allowed / ranks), end = (int)((long)(r + 1) * allowed / ranks), k = 0;
    CPU_ZERO(&mine);
    for (int cpu = 0; cpu < CPU_SETSIZE && k < end; cpu++)
        if (CPU_ISSET(cpu, &set) && k++ >= first) CPU_SET(cpu, &mine);
    return bind_threads(&mine) ? allowed / ranks : CPU_COUNT(&mine);
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
