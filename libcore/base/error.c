/* error.c - the thread-local error slot behind lathe_fail/lathe_last_error. */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Thread_local char error_message[1024];

int lathe_fail(int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(error_message, sizeof error_message, fmt, ap);
    va_end(ap);
    return code > 0 ? -code : code;
}

int lathe_fail_context(int code, const char *fmt, ...) {
    char context[512], old[sizeof error_message];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(context, sizeof context, fmt, ap);
    va_end(ap);
    memcpy(old, error_message, sizeof old);
    snprintf(error_message, sizeof error_message, "%s: %s", context, old);
    return code > 0 ? -code : code;
}

const char *lathe_last_error(void) { return error_message; }

void lathe_clear_error(void) { error_message[0] = '\0'; }

const char *lathe_error_name(int code) {
    switch (code < 0 ? -code : code) {
    case LATHE_OK: return "ok";
    case LATHE_EINVAL: return "invalid argument";
    case LATHE_EIO: return "i/o error";
    case LATHE_ENOMEM: return "out of memory";
    case LATHE_EFORMAT: return "malformed input";
    case LATHE_EUNSUPPORTED: return "unsupported";
    case LATHE_ELIMIT: return "over limit";
    case LATHE_ENOTFOUND: return "not found";
    case LATHE_EINTR: return "interrupted";
    case LATHE_EEXIST: return "exists";
    case LATHE_EBUSY: return "busy";
    default: return "unknown error";
    }
}

void lathe_assert_failed(const char *what, const char *file, int line) {
    fprintf(stderr, "lathe: internal invariant broken: %s (%s:%d)\n", what, file, line);
    abort();
}
