/* h5z_zstd.h - the zstd HDF5 filter (registered id 32015, cd_values[0] = level), the one hdf5plugin
 * and h5py use. Chunks are single zstd frames that record their content size. */
#ifndef LATHE_IO_H5Z_ZSTD_H
#define LATHE_IO_H5Z_ZSTD_H
#include <hdf5.h>
#ifdef __cplusplus
extern "C" {
#endif

#define LATHE_H5Z_ZSTD 32015

/* The filter class, for H5Zregister and for the HDF5 plugin entry points. */
extern const H5Z_class2_t lathe_h5z_zstd_class;
/* Registers the filter with HDF5 (idempotent). Returns 0 or -LATHE_EIO. */
int lathe_h5z_zstd_register(void);

#ifdef __cplusplus
}
#endif
#endif
