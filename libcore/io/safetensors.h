/* safetensors.h - the safetensors format (8-byte little-endian header length, a JSON header of
 * {"name": {"dtype", "shape", "data_offsets"}} and optional "__metadata__" of strings, then the
 * tensors' bytes covering the buffer with no gap), as the Python `safetensors` package reads and
 * writes it. Writes go to a temporary name, are fsynced and renamed. */
#ifndef LATHE_IO_SAFETENSORS_H
#define LATHE_IO_SAFETENSORS_H
#include <stddef.h>
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif

/* How a tensor is stored when writing (data is float32 either way): F32, or rounded to the nearest
 * F16 / BF16 (ties to even; F16 saturates to infinity beyond 65504). */
enum { LATHE_ST_F32 = 0, LATHE_ST_F16 = 1, LATHE_ST_BF16 = 2 };

typedef struct {
    const char *name;
    const float *data;
    int shape[8], rank;
    int dtype;         /* LATHE_ST_*; 0 (F32) when left out */
} lathe_st_tensor;

/* The metadata key of the tensors' content hash (XXH64 of the data section, 16 hex digits) that
 * lathe_st_write adds and lathe_st_open checks where present (files of other writers have none). */
#define LATHE_ST_HASH_KEY "lathe_content_xxh64"

/* Writes the tensors (names must differ), the metadata pairs (meta[2i] key, meta[2i+1] value;
 * nmeta pairs) and the content hash to path durably. Returns 0, -LATHE_EINVAL (duplicate name) or
 * -LATHE_EIO. */
int lathe_st_write(const char *path, const lathe_st_tensor *t, size_t n, const char *const *meta, size_t nmeta);

typedef struct lathe_st_file lathe_st_file;
/* Reads a whole file and checks its header: known dtypes (F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL),
 * shapes matching the byte ranges, ranges inside the buffer, no overlap and no gap, no duplicate
 * names, 64-bit offsets read exactly, and the content hash where lathe wrote one. Returns 0,
 * -LATHE_ENOTFOUND, -LATHE_EFORMAT or -LATHE_ENOMEM. */
int lathe_st_open(const char *path, lathe_st_file **out);
void lathe_st_close(lathe_st_file *f);
size_t lathe_st_count(const lathe_st_file *f);
/* Tensor i's name, dtype ("F32", ...), shape; NULL when i is out of range. */
const char *lathe_st_name(const lathe_st_file *f, size_t i, const char **dtype, int64_t *shape, int *rank);
/* Copies tensor `name` into dst as float32 (F32, F64, F16, BF16 converted; integers refused),
 * requiring exactly count elements. Returns 0, -LATHE_ENOTFOUND or -LATHE_EFORMAT. */
int lathe_st_read_f32(const lathe_st_file *f, const char *name, float *dst, size_t count);
/* A metadata value, or NULL. */
const char *lathe_st_meta(const lathe_st_file *f, const char *key);

#ifdef __cplusplus
}
#endif
#endif
