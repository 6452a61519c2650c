/* h5_error.h - the operating system's reason behind an HDF5 failure. HDF5 reports a failed read,
 * write or open of the file itself deep in its error stack ("errno = 28, error message = 'No space
 * left on device'"), under generic messages ("unable to write raw data"); lathe's messages name that
 * reason. */
#ifndef LATHE_IO_H5_ERROR_H
#define LATHE_IO_H5_ERROR_H
#include <stddef.h>

/* The system error of the calling thread's HDF5 error stack, as strerror words ("No space left on
 * device"), into out; its errno into *err (may be NULL). Returns 1 when the stack held one, else 0
 * (out: ""). Clears the stack either way. */
int lathe_h5_os_error(char *out, size_t cap, int *err);
#endif
