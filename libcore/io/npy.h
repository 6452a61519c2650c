/* npy.h - NumPy's .npy format (version 1.0): what `numpy.load` reads. */
#ifndef LATHE_IO_NPY_H
#define LATHE_IO_NPY_H
#include <stddef.h>
#ifdef __cplusplus
extern "C" {
#endif

/* Writes a C-order float32 array of shape (rows, cols) to path durably (temporary name, fsync,
 * rename). Returns 0, -LATHE_ENOMEM or -LATHE_EIO. */
int lathe_npy_write_f32(const char *path, const float *data, size_t rows, size_t cols);

#ifdef __cplusplus
}
#endif
#endif
