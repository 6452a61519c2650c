/* simd.h - LATHE_SIMD_CLONES: memory-bound CPU loops are also compiled for AVX2 and AVX-512, picked
 * at load time by the CPU (wider vectors, the same operations: C11 mode contracts nothing into
 * FMAs, so every clone gives the same bits). Used by the CPU kernels and the anomaly head's coreset. */
#ifndef LATHE_KERNELS_CPU_SIMD_H
#define LATHE_KERNELS_CPU_SIMD_H
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__GLIBC__)
#define LATHE_SIMD_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else /* ifuncs are GCC-on-glibc x86-64 here; clang's avx512f clone would also contract into FMAs */
#define LATHE_SIMD_CLONES
#endif
/* A helper of such a loop: inlined into each clone, so it runs at the clone's vector width (left to
 * itself, GCC compiles it once, for the baseline ISA, and calls it) */
#define LATHE_SIMD_INLINE static inline __attribute__((always_inline))
#endif
