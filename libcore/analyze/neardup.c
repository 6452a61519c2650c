/* neardup.c - multi-index hashing (Norouzi et al.): split each 64-bit hash into 4 blocks of 16
 * bits and index every block in a table of 2^16 buckets. Two hashes within radius r differ in at
 * most floor(r/4) bits in at least one block (pigeonhole), so probing, for each block, the buckets
 * within floor(r/4) bits of the query's block finds every candidate; each is checked on all 64
 * bits. A pair is kept only from the first block that could have found it, so it is reported once. */
#include "neardup.h"

#include <stdlib.h>
#include <string.h>

#include "image_stats.h"
#include "libcore/base/error.h"

enum { BLOCKS = 4, BLOCK_BITS = 16, BUCKETS = 1 << BLOCK_BITS };

static unsigned block_of(uint64_t h, int b) { return (unsigned)(h >> (b * BLOCK_BITS)) & (BUCKETS - 1); }

typedef struct {
    uint32_t *start; /* BUCKETS + 1 offsets into items */
    uint32_t *items; /* hash indices, grouped by bucket, ascending inside a bucket */
} block_index;

static int build_index(const uint64_t *hash, const uint8_t *use, size_t n, int b, block_index *ix) {
    ix->start = calloc(BUCKETS + 1, sizeof *ix->start);
    ix->items = malloc((n ? n : 1) * sizeof *ix->items);
    if (!ix->start || !ix->items) return lathe_fail(LATHE_ENOMEM, "near-duplicate index of %zu hashes", n);
    for (size_t i = 0; i < n; i++)
        if (!use || use[i]) ix->start[block_of(hash[i], b) + 1]++;
    for (int k = 0; k < BUCKETS; k++) ix->start[k + 1] += ix->start[k];
    uint32_t *fill = malloc(BUCKETS * sizeof *fill);
    if (!fill) return lathe_fail(LATHE_ENOMEM, "near-duplicate index");
    memcpy(fill, ix->start, BUCKETS * sizeof *fill);
    for (size_t i = 0; i < n; i++)
        if (!use || use[i]) ix->items[fill[block_of(hash[i], b)]++] = (uint32_t)i;
    free(fill);
    return 0;
}

typedef struct {
    lathe_hash_pair *v;
    size_t n, cap;
    int failed;
} pair_list;

static void push(pair_list *l, uint32_t a, uint32_t b, int d) {
    if (l->failed) return;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 256;
        lathe_hash_pair *v = realloc(l->v, cap * sizeof *v);
        if (!v) {
            l->failed = 1;
            return;
        }
        l->v = v, l->cap = cap;
    }
    l->v[l->n++] = (lathe_hash_pair){a, b, d};
}

/* The 16-bit values within `bits` flips of key, written to out (at most 1+16+120+560 = 697). */
static int neighbours(unsigned key, int bits, unsigned *out) {
    int n = 0;
    out[n++] = key;
    if (bits >= 1)
        for (int i = 0; i < BLOCK_BITS; i++) out[n++] = key ^ (1u << i);
    if (bits >= 2)
        for (int i = 0; i < BLOCK_BITS; i++)
            for (int j = i + 1; j < BLOCK_BITS; j++) out[n++] = key ^ (1u << i) ^ (1u << j);
    if (bits >= 3)
        for (int i = 0; i < BLOCK_BITS; i++)
            for (int j = i + 1; j < BLOCK_BITS; j++)
                for (int k = j + 1; k < BLOCK_BITS; k++) out[n++] = key ^ (1u << i) ^ (1u << j) ^ (1u << k);
    return n;
}

static int cmp_pair(const void *x, const void *y) {
    const lathe_hash_pair *p = x, *q = y;
    if (p->a != q->a) return p->a < q->a ? -1 : 1;
    return p->b < q->b ? -1 : p->b > q->b;
}

int lathe_neardup_pairs(const uint64_t *hash, const uint8_t *use, size_t n, int radius, lathe_neardup_accept_fn accept,
                        void *ctx, lathe_hash_pair **pairs, size_t *npairs) {
    *pairs = NULL;
    *npairs = 0;
    if (radius < 0 || radius > LATHE_NEARDUP_MAX_RADIUS)
        return lathe_fail(LATHE_EINVAL, "Hamming radius %d outside 0..%d", radius, LATHE_NEARDUP_MAX_RADIUS);
    if (n >= UINT32_MAX) return lathe_fail(LATHE_EINVAL, "%zu hashes: at most 2^32-2", n);
    int sub = radius / BLOCKS;
    block_index ix[BLOCKS] = {{0}};
    int rc = 0;
    for (int b = 0; b < BLOCKS && !rc; b++) rc = build_index(hash, use, n, b, &ix[b]);
    pair_list all = {0};
    if (!rc) {
#pragma omp parallel
        {
            pair_list mine = {0};
            unsigned probe[700];
#pragma omp for schedule(dynamic, 1024) nowait
            for (size_t i = 0; i < n; i++) {
                if (use && !use[i]) continue;
                for (int b = 0; b < BLOCKS; b++) {
                    int np = neighbours(block_of(hash[i], b), sub, probe);
                    for (int k = 0; k < np; k++) {
                        const block_index *x = &ix[b];
                        for (uint32_t t = x->start[probe[k]]; t < x->start[probe[k] + 1]; t++) {
                            uint32_t j = x->items[t];
                            if (j <= i) continue;
                            int d = lathe_hamming64(hash[i], hash[j]);
                            if (d > radius) continue;
                            int first = 1; /* an earlier block within `sub` bits already found it */
                            for (int e = 0; e < b && first; e++)
                                first = __builtin_popcount(block_of(hash[i], e) ^ block_of(hash[j], e)) > sub;
                            if (first && (!accept || accept(ctx, (uint32_t)i, j))) push(&mine, (uint32_t)i, j, d);
                        }
                    }
                }
            }
#pragma omp critical
            {
                for (size_t k = 0; k < mine.n; k++) push(&all, mine.v[k].a, mine.v[k].b, mine.v[k].distance);
                all.failed |= mine.failed;
            }
            free(mine.v);
        }
        if (all.failed) rc = lathe_fail(LATHE_ENOMEM, "near-duplicate pairs");
    }
    for (int b = 0; b < BLOCKS; b++) free(ix[b].start), free(ix[b].items);
    if (rc) {
        free(all.v);
        return rc;
    }
    if (all.n) qsort(all.v, all.n, sizeof *all.v, cmp_pair);
    *pairs = all.v;
    *npairs = all.n;
    return 0;
}

static uint32_t find_root(uint32_t *parent, uint32_t i) {
    while (parent[i] != i) {
        parent[i] = parent[parent[i]];
        i = parent[i];
    }
    return i;
}

void lathe_neardup_groups(const lathe_hash_pair *pairs, size_t npairs, size_t n, uint32_t *group) {
    for (size_t i = 0; i < n; i++) group[i] = (uint32_t)i;
    for (size_t k = 0; k < npairs; k++) {
        uint32_t ra = find_root(group, pairs[k].a), rb = find_root(group, pairs[k].b);
        if (ra < rb) group[rb] = ra;
        else if (rb < ra) group[ra] = rb;
    }
    /* the root of each group is its smallest index, since the smaller root always wins */
    for (size_t i = 0; i < n; i++) group[i] = find_root(group, (uint32_t)i);
}
