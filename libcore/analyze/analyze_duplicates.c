/* analyze_duplicates.c - exact duplicates (equal pixel hashes), near-duplicates (perceptual hashes
 * within the radius, neardup.c) and leakage: groups of either kind that span more than one split.
 * Sorting and multi-index hashing keep it near-linear in the number of samples. */
#include <stdlib.h>

#include "analyze_internal.h"
#include "libcore/base/error.h"

typedef struct {
    uint64_t content;
    uint32_t index;
} content_key;

static int cmp_content(const void *x, const void *y) {
    const content_key *a = x, *b = y;
    if (a->content != b->content) return a->content < b->content ? -1 : 1;
    return (a->index > b->index) - (a->index < b->index);
}

/* Exact-duplicate edges: each member of a run of equal hashes linked to the run's first. */
static int exact_pairs(const analyze_ctx *c, lathe_hash_pair **out, size_t *nout) {
    content_key *k = malloc(c->n * sizeof *k);
    lathe_hash_pair *p = malloc(c->n * sizeof *p);
    if (!k || !p) {
        free(k), free(p);
        return lathe_fail(LATHE_ENOMEM, "duplicate search");
    }
    size_t m = 0, np = 0;
    for (uint64_t i = 0; i < c->n; i++)
        if (c->rec[i].ok) k[m++] = (content_key){c->rec[i].content, (uint32_t)i};
    qsort(k, m, sizeof *k, cmp_content);
    for (size_t i = 1, first = 0; i < m; i++) {
        if (k[i].content != k[first].content) first = i;
        else p[np++] = (lathe_hash_pair){k[first].index, k[i].index, 0};
    }
    free(k);
    *out = p;
    *nout = np;
    return 0;
}

/* Writes the groups of `group` (union-find roots) that have >= 2 members, and for leakage only
 * those spanning several splits, into finding f: "groups": [{"samples", "splits", "max_distance"}]
 * (max_distance: the largest Hamming distance of the pairs that joined the group). */
static void write_groups(const analyze_ctx *c, cJSON *f, const uint32_t *group, const lathe_hash_pair *pairs,
                         size_t npairs, int leakage, uint32_t *next, uint32_t *last, int *maxd) {
    uint64_t n = c->n;
    /* members of each root chained through next[] in index order */
    for (uint64_t i = 0; i < n; i++) next[i] = UINT32_MAX, maxd[i] = 0, last[i] = UINT32_MAX;
    for (size_t k = 0; k < npairs; k++) {
        uint32_t r = group[pairs[k].a];
        if (pairs[k].distance > maxd[r]) maxd[r] = pairs[k].distance;
    }
    for (uint64_t i = 0; i < n; i++) {
        uint32_t r = group[i];
        if (r != i && last[r] == UINT32_MAX) last[r] = r;
        if (r != i) next[last[r]] = (uint32_t)i, last[r] = (uint32_t)i;
    }
    cJSON *groups = cJSON_AddArrayToObject(f, "groups");
    uint64_t listed_groups = 0, total_groups = 0;
    for (uint64_t i = 0; i < n; i++) {
        if (group[i] != i || next[i] == UINT32_MAX) continue;
        unsigned splits = 0;
        for (uint32_t j = (uint32_t)i; j != UINT32_MAX; j = next[j]) splits |= 1u << c->rec[j].split;
        if (leakage && __builtin_popcount(splits) < 2) continue;
        total_groups++;
        for (uint32_t j = (uint32_t)i; j != UINT32_MAX; j = next[j]) finding_sample(c, f, j);
        if (c->opts->max_listed && listed_groups >= (uint64_t)c->opts->max_listed) continue;
        listed_groups++;
        cJSON *g = cJSON_CreateObject();
        cJSON *members = cJSON_AddArrayToObject(g, "samples"), *sp = cJSON_AddArrayToObject(g, "splits");
        for (uint32_t j = (uint32_t)i; j != UINT32_MAX; j = next[j])
            cJSON_AddItemToArray(members, cJSON_CreateNumber(j));
        for (int s = 0; s < LATHE_NSPLITS; s++)
            if (splits & (1u << s)) cJSON_AddItemToArray(sp, cJSON_CreateString(lathe_split_name(s)));
        cJSON_AddNumberToObject(g, "max_distance", maxd[i]);
        cJSON_AddItemToArray(groups, g);
    }
    cJSON_AddNumberToObject(f, "group_count", (double)total_groups);
}

/* the second stage of the near-duplicate test: thumbnails correlated at >= similarity */
static int thumbs_alike(void *ctx, uint32_t a, uint32_t b) {
    const analyze_ctx *c = ctx;
    enum { T = LATHE_THUMB_SIDE * LATHE_THUMB_SIDE };
    return lathe_thumb_similarity(c->thumbs + (size_t)a * T, c->thumbs + (size_t)b * T) >= c->opts->similarity;
}

int analyze_duplicates(analyze_ctx *c, cJSON *findings) {
    lathe_hash_pair *exact = NULL, *near = NULL, *all = NULL;
    size_t nexact = 0, nnear = 0;
    uint64_t *hash = malloc(c->n * sizeof *hash);
    uint8_t *use = malloc(c->n);
    uint32_t *group = malloc(c->n * sizeof *group), *next = malloc(c->n * sizeof *next);
    uint32_t *last = malloc(c->n * sizeof *last);
    int *maxd = malloc(c->n * sizeof *maxd);
    int rc = hash && use && group && next && last && maxd ? 0 : lathe_fail(LATHE_ENOMEM, "duplicate search");
    if (!rc) rc = exact_pairs(c, &exact, &nexact);
    if (!rc) {
        for (uint64_t i = 0; i < c->n; i++) hash[i] = c->rec[i].phash, use[i] = c->rec[i].ok;
        rc = lathe_neardup_pairs(hash, use, c->n, c->opts->radius, thumbs_alike, c, &near, &nnear);
    }
    if (!rc) {
        lathe_neardup_groups(exact, nexact, c->n, group);
        write_groups(c, finding_add(findings, "duplicate", ""), group, exact, nexact, 0, next, last, maxd);
        /* near-duplicates: pairs whose pixels differ (identical ones are duplicates) */
        size_t k = 0;
        for (size_t i = 0; i < nnear; i++)
            if (c->rec[near[i].a].content != c->rec[near[i].b].content) near[k++] = near[i];
        nnear = k;
        lathe_neardup_groups(near, nnear, c->n, group);
        cJSON *nf = finding_add(findings, "near-duplicate", "");
        cJSON_AddNumberToObject(nf, "radius", c->opts->radius);
        cJSON_AddNumberToObject(nf, "similarity", c->opts->similarity);
        write_groups(c, nf, group, near, nnear, 0, next, last, maxd);
        all = malloc((nexact + nnear + 1) * sizeof *all);
        if (!all) rc = lathe_fail(LATHE_ENOMEM, "leakage search");
    }
    if (!rc) {
        for (size_t i = 0; i < nexact; i++) all[i] = exact[i];
        for (size_t i = 0; i < nnear; i++) all[nexact + i] = near[i];
        lathe_neardup_groups(all, nexact + nnear, c->n, group);
        write_groups(c, finding_add(findings, "leakage", ""), group, all, nexact + nnear, 1, next, last, maxd);
    }
    free(exact), free(near), free(all), free(hash), free(use), free(group), free(next), free(last), free(maxd);
    return rc;
}
