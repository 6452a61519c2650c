/* output_set.c - output folders replaced whole (output_set.h). */
#include "output_set.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "folder_lock.h"
#include "fsutil.h"

#define MARKER ".lathe-output"

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void remove_tree(const char *path) { nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS); }

/* What marks a folder as an earlier output set: the marker, or the main file of an older lathe's
 * report, analysis or predictions. */
static int earlier_set_file(const char *name) {
    static const char *const names[] = {MARKER, "report.json", "analysis.json", "predictions.json"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(name, names[i])) return 1;
    return 0;
}

/* 1 when dir holds nothing, or only its lock, or an earlier output set. */
static int publishable(const char *dir, char *foreign, size_t cap) {
    DIR *d = opendir(dir);
    if (!d) return 1;
    int others = 0, earlier = 0;
    for (struct dirent *e; (e = readdir(d));) {
        const char *n = e->d_name;
        if (!strcmp(n, ".") || !strcmp(n, "..") || !strcmp(n, LATHE_FOLDER_LOCK_NAME)) continue;
        if (earlier_set_file(n)) earlier = 1;
        else if (!others++) snprintf(foreign, cap, "%s", n);
    }
    closedir(d);
    return earlier || !others;
}

/* Stages beside dir that a killed writer left (the caller holds dir's lock, so no live one). */
static void remove_stale_stages(const char *parent, const char *base) {
    char prefix[300];
    snprintf(prefix, sizeof prefix, ".%s.new-", base);
    DIR *d = opendir(parent);
    if (!d) return;
    for (struct dirent *e; (e = readdir(d));) {
        if (strncmp(e->d_name, prefix, strlen(prefix)) || strlen(e->d_name) != strlen(prefix) + 6) continue;
        char path[4400];
        snprintf(path, sizeof path, "%s/%s", parent, e->d_name);
        remove_tree(path);
    }
    closedir(d);
}

int lathe_output_set_begin(lathe_output_set *s, const char *dir) {
    char foreign[256] = "";
    if (snprintf(s->dir, sizeof s->dir, "%s", dir) >= (int)sizeof s->dir)
        return lathe_fail(LATHE_EINVAL, "path too long: %s", dir);
    s->stage[0] = '\0';
    if (!publishable(dir, foreign, sizeof foreign))
        return lathe_fail(LATHE_EEXIST, "%s holds files lathe did not write (%s, ...): give an empty folder, or one "
                                        "holding an earlier report", dir, foreign);
    char parent[4096];
    lathe_dirname(dir, parent, sizeof parent);
    const char *base = strrchr(dir, '/');
    base = base ? base + 1 : dir;
    remove_stale_stages(parent, *base ? base : "out");
    snprintf(s->stage, sizeof s->stage, "%s/.%s.new-XXXXXX", parent, *base ? base : "out");
    if (!mkdtemp(s->stage)) {
        int err = errno;
        s->stage[0] = '\0';
        return lathe_fail(LATHE_EIO, "cannot make a folder beside %s: %s", dir, strerror(err));
    }
    chmod(s->stage, 0755); /* mkdtemp makes it 0700: the report is for readers too */
    char marker[4300];
    snprintf(marker, sizeof marker, "%s/" MARKER, s->stage);
    int fd = open(marker, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || close(fd) != 0) {
        int err = errno;
        lathe_output_set_discard(s);
        return lathe_fail(LATHE_EIO, "%s: %s", marker, strerror(err));
    }
    return 0;
}

/* 1 when name is one of the n names. */
static int listed(const char *name, char **names, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!strcmp(names[i], name)) return 1;
    return 0;
}

/* Without RENAME_EXCHANGE (some network file systems): each of the stage's entries moved over
 * dir's, then what dir holds and the new set lacks removed (the lock kept). */
static int move_over(lathe_output_set *s) {
    DIR *d = opendir(s->stage);
    if (!d) return lathe_fail(LATHE_EIO, "%s: %s", s->stage, strerror(errno));
    char **names = NULL;
    size_t n = 0;
    int rc = 0;
    for (struct dirent *e; !rc && (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char **grown = realloc(names, (n + 1) * sizeof *names);
        if (!grown || !(grown[n] = strdup(e->d_name))) rc = lathe_fail(LATHE_ENOMEM, "output names");
        if (grown) names = grown, n += !rc;
    }
    closedir(d);
    for (size_t i = 0; !rc && i < n; i++) {
        char from[4500], to[4500];
        snprintf(from, sizeof from, "%s/%s", s->stage, names[i]);
        snprintf(to, sizeof to, "%s/%s", s->dir, names[i]);
        struct stat st;
        if (!lstat(to, &st) && S_ISDIR(st.st_mode)) remove_tree(to); /* rename cannot replace a full folder */
        if (rename(from, to) != 0) rc = lathe_fail(LATHE_EIO, "rename %s -> %s: %s", from, to, strerror(errno));
    }
    if (!rc && (d = opendir(s->dir))) {
        for (struct dirent *e; (e = readdir(d));) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") || !strcmp(e->d_name, LATHE_FOLDER_LOCK_NAME) ||
                listed(e->d_name, names, n))
                continue;
            char path[4500];
            snprintf(path, sizeof path, "%s/%s", s->dir, e->d_name);
            remove_tree(path);
        }
        closedir(d);
    }
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
    return rc;
}

int lathe_output_set_publish(lathe_output_set *s) {
    int rc = lathe_fsync_path(s->stage);
    if (rc) return rc;
    if (renameat2(AT_FDCWD, s->stage, AT_FDCWD, s->dir, RENAME_EXCHANGE) == 0) {
        remove_tree(s->stage); /* the old set, now at the stage's name */
        s->stage[0] = '\0';
        char parent[4096];
        lathe_dirname(s->dir, parent, sizeof parent);
        return lathe_fsync_path(parent);
    }
    if (errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP)
        return lathe_fail(LATHE_EIO, "cannot publish %s: %s", s->dir, strerror(errno));
    rc = move_over(s);
    if (!rc) lathe_output_set_discard(s);
    return rc;
}

void lathe_output_set_discard(lathe_output_set *s) {
    if (s->stage[0]) remove_tree(s->stage);
    s->stage[0] = '\0';
}
