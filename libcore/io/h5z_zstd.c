/* h5z_zstd.c - HDF5 filter 32015: zstd frames with their content size and checksum, so hdf5plugin,
 * h5py and lathe's own direct-chunk reader agree, and a corrupt chunk is refused. Used by HDF5 only
 * off the hot path (small datasets, and ordinary reads by other tools); lathe compresses image
 * chunks in its own threads. */
#include "h5z_zstd.h"

#include <stdlib.h>
#include <zstd.h>

#include "../base/error.h"

/* A decompressed chunk above this is refused: no valid lathe chunk comes near it. */
#define MAX_CHUNK_BYTES ((unsigned long long)1 << 32)

static size_t zstd_filter(unsigned int flags, size_t cd_nelmts, const unsigned int cd_values[], size_t nbytes,
                          size_t *buf_size, void **buf) {
    if (flags & H5Z_FLAG_REVERSE) {
        unsigned long long size = ZSTD_getFrameContentSize(*buf, nbytes);
        if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN || size > MAX_CHUNK_BYTES) return 0;
        void *out = malloc(size ? (size_t)size : 1);
        if (!out) return 0;
        size_t got = ZSTD_decompress(out, (size_t)size, *buf, nbytes);
        if (ZSTD_isError(got) || got != size) {
            free(out);
            return 0;
        }
        free(*buf);
        *buf = out;
        *buf_size = (size_t)size;
        return got;
    }
    int level = cd_nelmts > 0 ? (int)cd_values[0] : 3;
    size_t bound = ZSTD_compressBound(nbytes);
    void *out = malloc(bound);
    if (!out) return 0;
    /* With the frame's content checksum, a flipped bit in a stored chunk fails decompression
     * instead of reaching HDF5: a corrupt variable-length reference (a text or meta chunk) would
     * send libhdf5 to read a global heap object that is not there, and it crashes on that. */
    ZSTD_CCtx *cctx = ZSTD_createCCtx();
    size_t got = cctx ? ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, level) : 0;
    if (cctx && !ZSTD_isError(got)) got = ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1);
    if (cctx && !ZSTD_isError(got)) got = ZSTD_compress2(cctx, out, bound, *buf, nbytes);
    ZSTD_freeCCtx(cctx);
    if (!cctx || ZSTD_isError(got)) {
        free(out);
        return 0;
    }
    free(*buf);
    *buf = out;
    *buf_size = bound;
    return got;
}

const H5Z_class2_t lathe_h5z_zstd_class = {
    H5Z_CLASS_T_VERS, LATHE_H5Z_ZSTD, 1, 1, "zstd (lathe)", NULL, NULL, zstd_filter,
};

int lathe_h5z_zstd_register(void) {
    /* Always lathe's own class, even where a zstd plugin is on HDF5_PLUGIN_PATH (hdf5plugin's, or
     * an older lathe's): H5Zregister replaces a registered class of the same id, and only this one
     * is known to write frames with their checksum. */
    if (H5Zregister(&lathe_h5z_zstd_class) < 0) return lathe_fail(LATHE_EIO, "registering the zstd HDF5 filter");
    return 0;
}
