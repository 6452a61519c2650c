/* rng.h - counter-based randomness for data pipelines: a value is a pure function of its key
 * (seed, epoch, position, ...), so augmentation repeats exactly on every run, after a resume and
 * for any thread count. splitmix64's finalizer. */
#ifndef LATHE_BASE_RNG_H
#define LATHE_BASE_RNG_H
#include <stdint.h>

static inline uint64_t lathe_mix64(uint64_t x) {
    x ^= x >> 30, x *= 0xbf58476d1ce4e5b9ull, x ^= x >> 27, x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* The next value of the stream in *s, uniform in [0, 1). */
static inline double lathe_rng_unit(uint64_t *s) {
    *s = lathe_mix64(*s + 0x9e3779b97f4a7c15ull);
    return (double)(*s >> 11) / 9007199254740992.0;
}

#endif
