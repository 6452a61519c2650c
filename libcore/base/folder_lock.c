/* folder_lock.c - one writer per folder (folder_lock.h): an flock on FOLDER/.lathe.lock, whose
 * content names the holder for the message a second writer gets. */
#include "folder_lock.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "error.h"
#include "fsutil.h"

struct lathe_lock {
    int fd;
    int created;      /* the lock made the folder: a run that wrote nothing removes it again */
    char folder[4096];
};

static char command_line[512] = "lathe";

void lathe_folder_lock_set_command(int argc, char **argv) {
    size_t at = 0;
    command_line[0] = '\0';
    for (int i = 0; i < argc && at + 1 < sizeof command_line; i++) {
        int n = snprintf(command_line + at, sizeof command_line - at, "%s%s", i ? " " : "", argv[i]);
        if (n < 0) break;
        at += (size_t)n;
    }
    if (at >= sizeof command_line) memcpy(command_line + sizeof command_line - 4, "...", 4);
    for (char *c = command_line; *c; c++) /* one line in the lock file */
        if (*c == '\n' || *c == '\r') *c = ' ';
}

/* The holder's "pid command" line from the lock file, or "another process" when unreadable. */
static void holder(int fd, char *out, size_t cap) {
    char buf[600];
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    if (n <= 0) {
        snprintf(out, cap, "another process");
        return;
    }
    buf[n] = '\0';
    buf[strcspn(buf, "\n")] = '\0';
    char *space = strchr(buf, ' ');
    if (space) *space = '\0';
    snprintf(out, cap, "pid %s (%s)", buf, space ? space + 1 : "lathe");
}

/* Removes the temporaries a killed writer left in folder (lathe_write_atomic's): the lock's holder
 * is the folder's only writer, so none of them is in use. */
static void remove_stale_temps(const char *folder) {
    DIR *d = opendir(folder);
    if (!d) return;
    for (struct dirent *e; (e = readdir(d));) {
        char path[4400];
        if (lathe_is_atomic_temp(e->d_name) && snprintf(path, sizeof path, "%s/%s", folder, e->d_name) < (int)sizeof path)
            unlink(path);
    }
    closedir(d);
}

int lathe_folder_lock(const char *folder, lathe_lock **out) {
    *out = NULL;
    int created = access(folder, F_OK) != 0;
    int rc = lathe_mkdirs_writable(folder); /* "cannot write to FOLDER: why" before any work */
    if (rc) return rc;
    char path[4200];
    if (snprintf(path, sizeof path, "%s/%s", folder, LATHE_FOLDER_LOCK_NAME) >= (int)sizeof path)
        return lathe_fail(LATHE_EINVAL, "folder path too long: %s", folder);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return lathe_fail(LATHE_EIO, "cannot lock %s: %s: %s", folder, path, strerror(errno));
    while (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EINTR) continue;
        int err = errno;
        char who[640];
        if (err == EWOULDBLOCK) holder(fd, who, sizeof who);
        close(fd);
        if (err == EWOULDBLOCK)
            return lathe_fail(LATHE_EBUSY, "%s is being written by %s: one writer per folder; wait for it, stop it, or "
                                           "write elsewhere", folder, who);
        return lathe_fail(LATHE_EIO, "cannot lock %s: %s", folder, strerror(err));
    }
    char line[600];
    int len = snprintf(line, sizeof line, "%ld %s\n", (long)getpid(), command_line);
    if (len >= (int)sizeof line) len = (int)sizeof line - 1, line[len - 1] = '\n';
    if (ftruncate(fd, 0) != 0 || pwrite(fd, line, (size_t)len, 0) != len) {
        int err = errno;
        close(fd);
        return lathe_fail(LATHE_EIO, "cannot lock %s: %s: %s", folder, path, strerror(err));
    }
    remove_stale_temps(folder);
    lathe_lock *l = malloc(sizeof *l);
    if (!l) {
        close(fd);
        return lathe_fail(LATHE_ENOMEM, "folder lock");
    }
    l->fd = fd, l->created = created;
    snprintf(l->folder, sizeof l->folder, "%s", folder);
    *out = l;
    return 0;
}

void lathe_folder_unlock(lathe_lock *l) {
    if (!l) return;
    if (l->created && lathe_folder_empty(l->folder)) { /* a failed run leaves no empty folder behind */
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", l->folder, LATHE_FOLDER_LOCK_NAME);
        if (unlink(path) == 0) rmdir(l->folder);
    }
    close(l->fd); /* releases the flock; otherwise the file stays, naming the last writer */
    free(l);
}

int lathe_folder_empty(const char *folder) {
    DIR *d = opendir(folder);
    if (!d) return 1;
    int empty = 1;
    for (struct dirent *e; empty && (e = readdir(d));)
        empty = !strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") || !strcmp(e->d_name, LATHE_FOLDER_LOCK_NAME);
    closedir(d);
    return empty;
}
