/* npy.c - .npy writing (npy.h): the magic, version 1.0, a little-endian uint16 header length, the
 * header dict padded with spaces and a newline so the data starts 64-byte aligned, then the data. */
#include "npy.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libcore/base/error.h"
#include "libcore/base/fsutil.h"

int lathe_npy_write_f32(const char *path, const float *data, size_t rows, size_t cols) {
    char dict[160];
    int n = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (%zu, %zu), }", rows, cols);
    size_t header = ((size_t)10 + (size_t)n + 1 + 63) / 64 * 64; /* magic 6, version 2, length 2, dict, '\n' */
    size_t bytes = rows * cols * sizeof(float);
    if (cols && bytes / cols / sizeof(float) != rows) return lathe_fail(LATHE_ENOMEM, "%s: array too large", path);
    unsigned char *buf = malloc(header + bytes);
    if (!buf) return lathe_fail(LATHE_ENOMEM, "%s: %zu bytes", path, header + bytes);
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    uint16_t hl = (uint16_t)(header - 10);
    buf[8] = (unsigned char)(hl & 0xff), buf[9] = (unsigned char)(hl >> 8);
    memset(buf + 10, ' ', header - 10);
    memcpy(buf + 10, dict, (size_t)n);
    buf[header - 1] = '\n';
    memcpy(buf + header, data, bytes); /* x86-64 and aarch64 Linux are little-endian, as '<f4' says */
    int rc = lathe_write_atomic(path, buf, header + bytes);
    free(buf);
    return rc;
}
