/* error.h - lathe's error codes and the thread-local error message.
 * Library functions return 0 or a negative LATHE_E* code and leave a message in a thread-local
 * slot; they never exit or abort on bad input. */
#ifndef LATHE_BASE_ERROR_H
#define LATHE_BASE_ERROR_H
#ifdef __cplusplus
extern "C" {
#endif

enum {
    LATHE_OK = 0,
    LATHE_EINVAL = 1,      /* bad argument from the caller */
    LATHE_EIO = 2,         /* the operating system or HDF5 failed to read or write */
    LATHE_ENOMEM = 3,      /* an allocation failed */
    LATHE_EFORMAT = 4,     /* input is malformed (corrupt image, bad JSON, bad schema) */
    LATHE_EUNSUPPORTED = 5,/* input is valid but of a kind lathe does not handle */
    LATHE_ELIMIT = 6,      /* input exceeds a configured limit (pixels, bytes) */
    LATHE_ENOTFOUND = 7,   /* a file, key or entry does not exist */
    LATHE_EINTR = 8,       /* interrupted by a signal; state on disk is consistent */
    LATHE_EEXIST = 9,      /* the destination exists and differs */
    LATHE_EBUSY = 10,      /* another process is writing the destination (folder_lock.h) */
};

/* Sets the thread-local message from printf-style arguments and returns -code. */
int lathe_fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prefixes the current message with "<context>: " and returns -code (pass the code through). */
int lathe_fail_context(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The message of the last failure on this thread ("" when none). */
const char *lathe_last_error(void);
/* A short name for an error code ("format", "io", ...). */
const char *lathe_error_name(int code);
void lathe_clear_error(void);

/* Always-on check of a programmer invariant (not of input): prints and aborts. */
#define LATHE_ASSERT(cond)                                                                 \
    do {                                                                                   \
        if (!(cond)) lathe_assert_failed(#cond, __FILE__, __LINE__);                       \
    } while (0)
void lathe_assert_failed(const char *what, const char *file, int line) __attribute__((noreturn));

#ifdef __cplusplus
}
#endif
#endif
