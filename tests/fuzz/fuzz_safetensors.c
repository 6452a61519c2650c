/* fuzz_safetensors.c - the safetensors reader (libcore/io/safetensors.c: checkpoints, imported
 * weights, the text model): header checks, then every tensor listed and read as float32, and a
 * metadata lookup. */
#include "fuzz.h"

#include "libcore/io/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[4200];
    fuzz_write("input.safetensors", data, size, path, sizeof path);
    lathe_st_file *f = NULL;
    if (lathe_st_open(path, &f) != 0) return 0;
    (void)lathe_st_meta(f, "step");
    for (size_t i = 0; i < lathe_st_count(f); i++) {
        const char *dtype;
        int64_t shape[8];
        int rank = 0;
        const char *name = lathe_st_name(f, i, &dtype, shape, &rank);
        if (!name) continue;
        size_t count = 1;
        int too_big = 0;
        for (int k = 0; k < rank && k < 8; k++)
            too_big |= shape[k] < 0 || __builtin_mul_overflow(count, (size_t)shape[k], &count);
        if (too_big || count > (1u << 20)) continue; /* more than an input of -max_len can hold */
        float *dst = malloc((count ? count : 1) * sizeof *dst);
        if (dst) (void)lathe_st_read_f32(f, name, dst, count);
        free(dst);
    }
    lathe_st_close(f);
    return 0;
}
