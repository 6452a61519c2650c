/* neardup.h - all pairs of 64-bit hashes within a Hamming radius, in time that grows with the
 * number of hashes times the pairs found, not with its square (multi-index hashing). */
#ifndef LATHE_ANALYZE_NEARDUP_H
#define LATHE_ANALYZE_NEARDUP_H
#include <stddef.h>
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif

enum { LATHE_NEARDUP_MAX_RADIUS = 15 };

typedef struct {
    uint32_t a, b; /* indices into the hash array, a < b */
    int distance;  /* Hamming distance, <= radius */
} lathe_hash_pair;

/* A second opinion on a candidate pair (called from several threads at once): 1 keeps it. */
typedef int (*lathe_neardup_accept_fn)(void *ctx, uint32_t a, uint32_t b);

/* Finds every pair (a, b), a < b, both with use[i] != 0 (use may be NULL: all), whose hashes differ
 * in at most radius bits (0..LATHE_NEARDUP_MAX_RADIUS) and that accept (may be NULL) keeps. Pairs
 * come sorted by (a, b) whatever the thread count. Returns 0, -LATHE_EINVAL (radius out of range,
 * n over 2^32-2) or -LATHE_ENOMEM; free *pairs with free(). */
int lathe_neardup_pairs(const uint64_t *hash, const uint8_t *use, size_t n, int radius, lathe_neardup_accept_fn accept,
                        void *ctx, lathe_hash_pair **pairs, size_t *npairs);

/* Groups indices connected by pairs (union-find): group[i] is the smallest index of i's group.
 * group must hold n entries. */
void lathe_neardup_groups(const lathe_hash_pair *pairs, size_t npairs, size_t n, uint32_t *group);

#ifdef __cplusplus
}
#endif
#endif
