/* output_set.h - a command's output folder (a report's JSON, HTML, MD and plots) replaced whole:
 * the new set is written into a fresh sibling folder, then swapped with the old one in one
 * rename (renameat2 RENAME_EXCHANGE), so a reader sees the old set or the new one, never a mix,
 * and files the new run did not make are gone with the old set. A failed run leaves the old set as
 * it was and no temporaries. The caller holds the folder's lock (folder_lock.h). */
#ifndef LATHE_BASE_OUTPUT_SET_H
#define LATHE_BASE_OUTPUT_SET_H
#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    char dir[4096];   /* the published folder */
    char stage[4200]; /* where the new set is written: write every output here */
} lathe_output_set;

/* Makes the stage beside dir (which exists: the lock made it). dir must be one lathe writes: empty
 * but for its lock, or holding an earlier set (its marker, or a report.json / analysis.json /
 * predictions.json of an older lathe); a folder with other files is refused (-LATHE_EEXIST), so `-o ~` never loses a file.
 * Returns 0, -LATHE_EEXIST or -LATHE_EIO. */
int lathe_output_set_begin(lathe_output_set *s, const char *dir);
/* Swaps the stage in and removes the old set (on file systems without RENAME_EXCHANGE: moves each
 * file over, then removes what the new set lacks). Returns 0 or -LATHE_EIO. */
int lathe_output_set_publish(lathe_output_set *s);
/* Removes the stage (after a failure; after publish a no-op). */
void lathe_output_set_discard(lathe_output_set *s);

#ifdef __cplusplus
}
#endif
#endif
