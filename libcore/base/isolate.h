/* isolate.h - runs work that may crash or hang inside a third-party library (libhdf5 1.10 on a
 * damaged file: docs/RELIABILITY.md, findings 7 and 8) in a child process, so that the caller
 * survives it and can say what happened. The child reports back in lines through a pipe, as it
 * goes: the lines it wrote before it died still arrive. A child that writes nothing for
 * stall_seconds is killed (a loop makes no progress; slow work that writes a line per step is
 * never stopped). Fork only while no other thread of the process is inside a library (between
 * OpenMP regions, say); the child must not start threads. */
#ifndef LATHE_BASE_ISOLATE_H
#define LATHE_BASE_ISOLATE_H
#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    LATHE_ISOLATED_EXITED,   /* the child returned; code is its exit status (0 when work returned) */
    LATHE_ISOLATED_SIGNALED, /* a signal ended it; code is the signal's number */
    LATHE_ISOLATED_STALLED,  /* it wrote nothing for stall_seconds and was killed */
} lathe_isolated_how;

typedef struct {
    lathe_isolated_how how;
    int code;
} lathe_isolated_end;

/* The child's work: writes its lines to out_fd (lathe_isolated_line) and returns. */
typedef void (*lathe_isolated_work)(void *ctx, int out_fd);
/* Called in the parent for each whole line the child wrote, without its newline. */
typedef void (*lathe_isolated_on_line)(void *ctx, const char *line);

/* Runs work(ctx, fd) in a child process and feeds its lines to on_line(line_ctx, ...) until it
 * ends. Returns 0 with *end saying how it ended, or -LATHE_EIO (no pipe, no fork: the message says
 * why) when it could not start. */
int lathe_run_isolated(lathe_isolated_work work, void *ctx, int stall_seconds, lathe_isolated_on_line on_line,
                       void *line_ctx, lathe_isolated_end *end);

/* Writes one line to fd from the child: the formatted text with every newline, carriage return and
 * tab turned into a space (so a line is always one record), then '\n'. */
void lathe_isolated_line(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#ifdef __cplusplus
}
#endif
#endif
