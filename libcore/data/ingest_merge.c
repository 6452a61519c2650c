/* ingest_merge.c - `lathe ingest --merge`: the --part I/N datasets of one source become one
 * dataset. Shards are hard-linked (copied when the file system refuses) under new numbers, the
 * manifests and rejects joined; the merged manifest is written last, so a crash leaves no dataset. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../base/error.h"
#include "../base/folder_lock.h"
#include "../base/fsutil.h"
#include "../io/manifest.h"
#include "../io/shard.h"
#include "ingest.h"

static int copy_file(const char *from, const char *to) {
    char *data;
    size_t len;
    int rc = lathe_read_file(from, (size_t)1 << 40, &data, &len);
    if (rc) return rc;
    rc = lathe_write_atomic(to, data, len);
    free(data);
    return rc;
}

static int place_shard(const char *from, const char *to) {
    unlink(to);
    if (link(from, to) == 0) return 0;
    if (errno != EXDEV && errno != EPERM && errno != EMLINK)
        return lathe_fail(LATHE_EIO, "link %s -> %s: %s", from, to, strerror(errno));
    return copy_file(from, to);
}

/* Same arguments but for the part: the parts of one ingest. */
static int args_without_part(const char *args, char **out) {
    cJSON *a = cJSON_Parse(args ? args : "{}");
    if (!a) return lathe_fail(LATHE_EFORMAT, "manifest args are not JSON");
    cJSON_DeleteItemFromObject(a, "part_index");
    *out = cJSON_PrintUnformatted(a);
    cJSON_Delete(a);
    return *out ? 0 : lathe_fail(LATHE_ENOMEM, "args");
}

static int check_part(const lathe_manifest *first, const lathe_manifest *m, const char *dir, const char *first_args) {
    if (!m->complete) return lathe_fail(LATHE_EINVAL, "%s is not complete: finish its ingest first", dir);
    if (!m->part) return lathe_fail(LATHE_EINVAL, "%s was not made with --part", dir);
    char *args;
    int rc = args_without_part(m->args_json, &args);
    if (rc) return rc;
    int same = strcmp(args, first_args) == 0 && m->nclasses == first->nclasses && m->store == first->store &&
               m->height == first->height && m->sensor_channels == first->sensor_channels &&
               m->sensor_steps == first->sensor_steps && m->has_masks == first->has_masks && m->has_text == first->has_text;
    for (int i = 0; same && i < m->nclasses; i++) same = strcmp(m->class_names[i], first->class_names[i]) == 0;
    cJSON_free(args);
    return same ? 0 : lathe_fail(LATHE_EINVAL, "%s is a part of a different ingest (arguments or schema differ)", dir);
}

static int append_rejects(FILE *out, const char *dir) {
    char path[4200], *text;
    size_t len;
    snprintf(path, sizeof path, "%s/rejects.jsonl", dir);
    int rc = lathe_read_file(path, (size_t)1 << 34, &text, &len);
    if (rc == -LATHE_ENOTFOUND) return 0;
    if (rc) return rc;
    rc = fwrite(text, 1, len, out) == len ? 0 : lathe_fail(LATHE_EIO, "writing merged rejects");
    free(text);
    return rc;
}

int lathe_ingest_merge(const char *out, const char *const *parts, size_t nparts, lathe_ingest_summary *sum) {
    memset(sum, 0, sizeof *sum);
    lathe_manifest *ms = calloc(nparts, sizeof *ms), merged;
    if (!ms) return lathe_fail(LATHE_ENOMEM, "manifests");
    char *first_args = NULL;
    int rc = 0, count = 0;
    unsigned char seen[4096] = {0};
    for (size_t i = 0; !rc && i < nparts; i++) {
        if ((rc = lathe_manifest_load(parts[i], &ms[i]))) {
            lathe_fail_context(rc, "%s", parts[i]);
            break;
        }
        if (i == 0 && ms[0].part && (rc = args_without_part(ms[0].args_json, &first_args))) break;
        if ((rc = check_part(&ms[0], &ms[i], parts[i], first_args ? first_args : ""))) break;
        int idx, n;
        if (sscanf(ms[i].part, "%d/%d", &idx, &n) != 2 || n > 4096 || idx < 0 || idx >= n || seen[idx]) {
            rc = lathe_fail(LATHE_EINVAL, "%s: part %s is given twice or is malformed", parts[i], ms[i].part);
            break;
        }
        seen[idx] = 1;
        count = n;
    }
    for (int i = 0; !rc && i < count; i++)
        if (!seen[i]) rc = lathe_fail(LATHE_EINVAL, "part %d/%d is missing", i, count);
    lathe_lock *lock = NULL; /* held until the merged manifest is written */
    if (!rc) rc = lathe_folder_lock(out, &lock);
    char path[4200];
    snprintf(path, sizeof path, "%s/manifest.json", out);
    if (!rc && access(path, F_OK) == 0) rc = lathe_fail(LATHE_EEXIST, "%s already holds a dataset", out);
    FILE *rejects = NULL;
    if (!rc) {
        snprintf(path, sizeof path, "%s/rejects.jsonl", out);
        if (!(rejects = fopen(path, "w"))) rc = lathe_fail(LATHE_EIO, "%s: %s", path, strerror(errno));
    }
    if (!rc) {
        merged = ms[0];
        merged.shards = NULL, merged.nshards = 0, merged.part = NULL, merged.rejected = 0;
        merged.args_json = first_args;
        for (size_t i = 0; !rc && i < nparts; i++) {
            for (size_t s = 0; !rc && s < ms[i].nshards; s++) {
                char from[4200], to[4200], name[64];
                snprintf(name, sizeof name, "shard-%05zu.h5", merged.nshards);
                snprintf(from, sizeof from, "%s/%s", parts[i], ms[i].shards[s].file);
                snprintf(to, sizeof to, "%s/%s", out, name);
                rc = place_shard(from, to);
                if (!rc) rc = lathe_manifest_add_shard(&merged, name, ms[i].shards[s].split, ms[i].shards[s].samples,
                                                       ms[i].shards[s].bytes, ms[i].shards[s].xxh64);
            }
            merged.rejected += ms[i].rejected;
            if (!rc) rc = append_rejects(rejects, parts[i]);
        }
        if (fclose(rejects) != 0 && !rc) rc = lathe_fail(LATHE_EIO, "writing %s", path);
        if (!rc) rc = lathe_fsync_path(path);
        for (int s = 0; s < LATHE_NSPLITS; s++) merged.committed[s] = 0;
        if (!rc) rc = lathe_manifest_save(out, &merged);
        sum->samples = lathe_manifest_samples(&merged, -1);
        for (int s = 0; s < LATHE_NSPLITS; s++) sum->per_split[s] = lathe_manifest_samples(&merged, s);
        sum->shards = merged.nshards;
        sum->rejected = merged.rejected;
        for (size_t s = 0; s < merged.nshards; s++) free(merged.shards[s].file);
        free(merged.shards);
    }
    lathe_folder_unlock(lock);
    for (size_t i = 0; i < nparts; i++) lathe_manifest_free(&ms[i]);
    free(ms);
    cJSON_free(first_args);
    return rc;
}
