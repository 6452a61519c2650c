/* h5z_plugin.c - HDF5 plugin entry points, built as build/plugins/liblathe_h5zstd.so so that
 * h5dump and plain h5py read lathe shards with HDF5_PLUGIN_PATH pointing at that folder. */
#include <H5PLextern.h>

#include "h5z_zstd.h"

H5PL_type_t H5PLget_plugin_type(void) { return H5PL_TYPE_FILTER; }
const void *H5PLget_plugin_info(void) { return &lathe_h5z_zstd_class; }
