/* isolate.c - work in a child process that reports in lines (isolate.h). */
#include "isolate.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "error.h"

#define LINE_MAX_BYTES 4096 /* a longer line is cut there; the rest of it is dropped */

void lathe_isolated_line(int fd, const char *fmt, ...) {
    char buf[LINE_MAX_BYTES];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
    va_end(ap);
    size_t len = n < 0 ? 0 : (size_t)n < sizeof buf - 1 ? (size_t)n : sizeof buf - 2;
    for (size_t i = 0; i < len; i++)
        if (buf[i] == '\n' || buf[i] == '\r' || buf[i] == '\t') buf[i] = ' ';
    buf[len++] = '\n';
    for (size_t off = 0; off < len;) {
        ssize_t w = write(fd, buf + off, len - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return; /* the parent is gone: nothing to tell */
        off += (size_t)w;
    }
}

/* Feeds the complete lines of buf[0..*len) to on_line and keeps the unfinished rest at the front. */
static void split_lines(char *buf, size_t *len, lathe_isolated_on_line on_line, void *line_ctx) {
    size_t start = 0;
    for (size_t i = 0; i < *len; i++)
        if (buf[i] == '\n') {
            buf[i] = '\0';
            on_line(line_ctx, buf + start);
            start = i + 1;
        }
    memmove(buf, buf + start, *len - start);
    *len -= start;
    if (*len == LINE_MAX_BYTES) *len = 0; /* a line without end that fills the buffer: dropped */
}

int lathe_run_isolated(lathe_isolated_work work, void *ctx, int stall_seconds, lathe_isolated_on_line on_line,
                       void *line_ctx, lathe_isolated_end *end) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) return lathe_fail(LATHE_EIO, "isolated work: pipe: %s", strerror(errno));
    fflush(NULL); /* nothing buffered may be written twice */
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(fds[0]), close(fds[1]);
        return lathe_fail(LATHE_EIO, "isolated work: fork: %s", strerror(e));
    }
    if (pid == 0) {
        close(fds[0]);
        signal(SIGPIPE, SIG_IGN);
        work(ctx, fds[1]);
        _exit(0); /* no atexit handlers, no stdio flush: the parent owns those */
    }
    close(fds[1]);
    char buf[LINE_MAX_BYTES + 1];
    size_t len = 0;
    int stalled = 0;
    for (;;) {
        struct pollfd p = {fds[0], POLLIN, 0};
        int r = poll(&p, 1, stall_seconds * 1000);
        if (r < 0 && errno == EINTR) continue;
        if (r == 0) {
            stalled = 1;
            kill(pid, SIGKILL);
            break;
        }
        ssize_t n = r < 0 ? -1 : read(fds[0], buf + len, LINE_MAX_BYTES - len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break; /* the child closed its end: it has ended, or is ending */
        len += (size_t)n;
        split_lines(buf, &len, on_line, line_ctx);
    }
    close(fds[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (stalled) *end = (lathe_isolated_end){LATHE_ISOLATED_STALLED, stall_seconds};
    else if (WIFSIGNALED(status)) *end = (lathe_isolated_end){LATHE_ISOLATED_SIGNALED, WTERMSIG(status)};
    else *end = (lathe_isolated_end){LATHE_ISOLATED_EXITED, WIFEXITED(status) ? WEXITSTATUS(status) : -1};
    return 0;
}
