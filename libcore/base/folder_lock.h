/* folder_lock.h - one writer per folder. Every command that writes a folder (a dataset, a run, a
 * report, predictions, an engine) holds an exclusive flock on FOLDER/.lathe.lock while it writes;
 * the kernel releases it when the process ends, however it ends, so a killed writer never blocks
 * the next one. A second writer fails at once, naming the folder and the holder's pid and command
 * line. The lock's new holder removes the temporaries a killed writer left (lathe_write_atomic's).
 * Readers take no lock. */
#ifndef LATHE_BASE_FOLDER_LOCK_H
#define LATHE_BASE_FOLDER_LOCK_H
#ifdef __cplusplus
extern "C" {
#endif

#define LATHE_FOLDER_LOCK_NAME ".lathe.lock"

typedef struct lathe_lock lathe_lock;

/* The command line written into lock files this process takes (main() calls it once). */
void lathe_folder_lock_set_command(int argc, char **argv);
/* Creates folder (with parents) and locks it. Returns 0, -LATHE_EBUSY (another process holds it:
 * the message names it) or -LATHE_EIO. */
int lathe_folder_lock(const char *folder, lathe_lock **out);
/* Releases the lock (NULL is fine); the lock file stays, except in a folder the lock made that
 * holds nothing else (a run that failed before writing): that folder is removed. */
void lathe_folder_unlock(lathe_lock *lock);
/* 1 when folder holds nothing but its lock file (or does not exist), else 0. */
int lathe_folder_empty(const char *folder);

#ifdef __cplusplus
}
#endif
#endif
