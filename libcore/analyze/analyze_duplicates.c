/* analyze_duplicates.c - exact duplicates (equal pixel hashes), near-duplicates (perceptual hashes
 * within the radius, neardup.c) and leakage: groups of either kind that span more than one split.
 * Sorting and multi-index hashing keep it near-linear in the number of samples. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>

#include "analyze_internal.h"
#include "libcore/base/error.h"
#include "libcore/base/log.h"

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
    if (m) qsort(k, m, sizeof *k, cmp_content);
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

/* Near-duplicates are found in three stages, each cheaper than the next and run on fewer pairs:
 * (1) 64-bit hashes within the radius (neardup.c), (2) 16x16 thumbnails correlated at >= THUMB_GATE
 * and mean tints within TINT_GATE (kept in memory), (3) the pixels of both samples read again: 48x48 luma grids of the central 80%
 * correlated at >= opts.similarity, the first sample's grid taken at 5 scales (0.96..1.04) so a
 * crop of a few percent still lines up. On factory images, where every picture shows the same belt,
 * stage 2 alone confuses different parts at the same place; stage 3 separates them (measured on
 * synthetic scenes in docs/ARCHITECTURE.md). */
#define THUMB_GATE 0.93
#define TINT_GATE 12.0f /* grey levels */
enum { FINE = 48, NSCALES = 5 };
static const double fine_scales[NSCALES] = {0.96, 0.98, 1.0, 1.02, 1.04};

/* Stage 2: thumbnails alike, and the same tint. The luma checks ignore colour, and a grey part on a
 * blue belt matches the same part on a grey one; the differences R-G and B-G of the mean colour
 * survive a brightness shift (and change little under a contrast change), a belt colour does not. */
static int thumbs_alike(void *ctx, uint32_t a, uint32_t b) {
    const analyze_ctx *c = ctx;
    enum { T = LATHE_THUMB_SIDE * LATHE_THUMB_SIDE };
    const float *ca = c->rec[a].rgb, *cb = c->rec[b].rgb;
    if (fabsf((ca[0] - ca[1]) - (cb[0] - cb[1])) > TINT_GATE || fabsf((ca[2] - ca[1]) - (cb[2] - cb[1])) > TINT_GATE)
        return 0;
    return lathe_thumb_similarity(c->thumbs + (size_t)a * T, c->thumbs + (size_t)b * T) >= THUMB_GATE;
}

/* The 48x48 grids of sample i at `nscales` scales of the central 80%. */
static int fine_grids(analyze_ctx *c, uint64_t i, analyze_scratch *sc, const double *scales, int nscales,
                      float *grids) {
    lathe_dataset_sample s;
    const uint8_t *px;
    int w, h;
    lathe_rect r;
    int rc = analyze_read_image(c, i, sc, &s, &px, &w, &h, &r);
    if (!rc) {
        lathe_luma(px, w, r, sc->luma);
        for (int k = 0; k < nscales; k++)
            lathe_area_grid(sc->luma, r.x1 - r.x0, r.y1 - r.y0, 0.8 * scales[k], FINE, grids + (size_t)k * FINE * FINE);
    }
    lathe_dataset_sample_free(&s);
    return rc;
}

/* Stage 3 on pairs (sorted by a): keeps the pairs whose grids agree, in order. */
static int verify_pairs(analyze_ctx *c, lathe_hash_pair *pairs, size_t *npairs) {
    size_t n = *npairs;
    uint8_t *keep = calloc(n ? n : 1, 1);
    if (!keep) return lathe_fail(LATHE_ENOMEM, "near-duplicate verification");
    int failed = 0;
    int threads = c->opts->threads > 0 ? c->opts->threads : omp_get_max_threads();
#pragma omp parallel num_threads(threads)
    {
        analyze_scratch sc = {0};
        float *ga = malloc(sizeof(float) * NSCALES * FINE * FINE), *gb = malloc(sizeof(float) * FINE * FINE);
        static const double one = 1.0;
#pragma omp for schedule(dynamic, 1)
        for (size_t k = 0; k < n; k++) {
            if (k > 0 && pairs[k - 1].a == pairs[k].a) continue; /* a run of one `a` is one task */
            int have_a = ga && gb && fine_grids(c, pairs[k].a, &sc, fine_scales, NSCALES, ga) == 0;
            for (size_t j = k; j < n && pairs[j].a == pairs[k].a && have_a; j++) {
                if (fine_grids(c, pairs[j].b, &sc, &one, 1, gb)) continue; /* unreadable now: not a match */
                double best = -1;
                for (int s = 0; s < NSCALES; s++)
                    best = fmax(best, lathe_grid_similarity(ga + (size_t)s * FINE * FINE, gb, FINE * FINE));
                keep[j] = best >= c->opts->similarity;
            }
            if (!ga || !gb) {
#pragma omp atomic write
                failed = 1;
            }
        }
        analyze_scratch_free(&sc);
        free(ga);
        free(gb);
    }
    size_t m = 0;
    for (size_t k = 0; k < n; k++)
        if (keep[k]) pairs[m++] = pairs[k];
    *npairs = m;
    free(keep);
    return failed ? lathe_fail(LATHE_ENOMEM, "near-duplicate grids") : 0;
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
        double t0 = lathe_now();
        rc = lathe_neardup_pairs(hash, use, c->n, c->opts->radius, thumbs_alike, c, &near, &nnear);
        c->search_seconds = lathe_now() - t0;
    }
    if (!rc) {
        lathe_neardup_groups(exact, nexact, c->n, group);
        write_groups(c, finding_add(findings, "duplicate", ""), group, exact, nexact, 0, next, last, maxd);
        /* near-duplicates: pairs whose pixels differ (identical ones are duplicates) */
        size_t k = 0;
        for (size_t i = 0; i < nnear; i++)
            if (c->rec[near[i].a].content != c->rec[near[i].b].content) near[k++] = near[i];
        nnear = k;
        cJSON_AddNumberToObject(finding_add(findings, "near-duplicate", ""), "candidate_pairs", (double)nnear);
        double t0 = lathe_now();
        rc = verify_pairs(c, near, &nnear);
        c->verify_seconds = lathe_now() - t0;
    }
    if (!rc) {
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
