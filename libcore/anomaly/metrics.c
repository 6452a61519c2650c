/* metrics.c - AUROC, average precision, PRO and the best-F1 threshold (metrics.h). Each sorts the
 * scores once and sweeps every distinct score as a threshold, ties taken together. */
#include "metrics.h"

#include <math.h>
#include <stdlib.h>

#include "libcore/base/error.h"

typedef struct {
    float score;
    int32_t tag; /* AUROC, F1: 1 positive, 0 negative; PRO: the pixel's region, -1 a good pixel */
} scored;

static int by_score_desc(const void *a, const void *b) {
    float x = ((const scored *)a)->score, y = ((const scored *)b)->score;
    return (x < y) - (x > y);
}

static int tagged(const float *score, const uint8_t *positive, size_t n, scored **out) {
    *out = malloc(sizeof(scored) * (n ? n : 1));
    if (!*out) return lathe_fail(LATHE_ENOMEM, "%zu scores", n);
    for (size_t i = 0; i < n; i++) {
        if (isnan(score[i])) {
            free(*out);
            return lathe_fail(LATHE_EINVAL, "score %zu is NaN", i);
        }
        (*out)[i] = (scored){score[i], positive[i] != 0};
    }
    qsort(*out, n, sizeof **out, by_score_desc);
    return 0;
}

/* The end of the group of samples tied with s[i] (s sorted: one threshold for all of them), and
 * how many of the group are positive and negative. */
static size_t tie_group(const scored *s, size_t n, size_t i, double *pos, double *neg) {
    size_t j = i;
    *pos = *neg = 0;
    while (j < n && s[j].score == s[i].score) *pos += s[j].tag, *neg += !s[j].tag, j++;
    return j;
}

int lathe_auroc(const float *score, const uint8_t *positive, size_t n, double *auroc) {
    scored *s;
    int rc = tagged(score, positive, n, &s);
    if (rc) return rc;
    /* wins: for each negative, the positives scored above it, plus half of those tied with it */
    double pos = 0, neg = 0, above = 0, wins = 0; /* above: positives in higher groups */
    for (size_t i = 0; i < n;) {
        double p, q;
        size_t j = tie_group(s, n, i, &p, &q);
        wins += q * above + 0.5 * p * q;
        above += p, pos += p, neg += q;
        i = j;
    }
    free(s);
    *auroc = pos > 0 && neg > 0 ? wins / (pos * neg) : -1;
    return 0;
}

int lathe_average_precision(const float *score, const uint8_t *positive, size_t n, double *ap) {
    scored *s;
    int rc = tagged(score, positive, n, &s);
    if (rc) return rc;
    double total = 0, tp = 0, sum = 0;
    for (size_t i = 0; i < n; i++) total += s[i].tag;
    for (size_t i = 0; i < n && total > 0;) {
        double gained, negatives;
        size_t j = tie_group(s, n, i, &gained, &negatives);
        tp += gained;
        sum += gained / total * (tp / (double)j); /* j samples at or above this score */
        i = j;
    }
    free(s);
    *ap = total > 0 ? sum : -1;
    return 0;
}

int lathe_best_f1(const float *score, const uint8_t *positive, size_t n, lathe_f1_point *out) {
    scored *s;
    int rc = tagged(score, positive, n, &s);
    if (rc) return rc;
    double total = 0, tp = 0, fp = 0;
    for (size_t i = 0; i < n; i++) total += s[i].tag;
    *out = (lathe_f1_point){n ? nextafterf(s[0].score, INFINITY) : 0, 0, 0, 0};
    for (size_t i = 0; i < n && total > 0;) {
        double p, q;
        size_t j = tie_group(s, n, i, &p, &q);
        tp += p, fp += q;
        double f1 = 2 * tp / (2 * tp + fp + (total - tp));
        if (f1 > out->f1) *out = (lathe_f1_point){s[i].score, f1, tp / (tp + fp), tp / total};
        i = j;
    }
    free(s);
    return 0;
}

/* Labels the 8-connected regions of one mask: region[p] = first + its region's number, -1 off the
 * mask; returns the regions found. stack holds h * w entries. */
static int32_t label_regions(const uint8_t *mask, int h, int w, int32_t first, int32_t *region, int32_t *stack) {
    size_t np = (size_t)h * w;
    int32_t next = first;
    for (size_t p = 0; p < np; p++) region[p] = -1;
    for (size_t p = 0; p < np; p++) {
        if (!mask[p] || region[p] >= 0) continue;
        size_t top = 0;
        region[p] = next, stack[top++] = (int32_t)p;
        while (top) {
            int32_t q = stack[--top], y = q / w, x = q % w;
            for (int dy = -1; dy <= 1; dy++)
                for (int dx = -1; dx <= 1; dx++) {
                    int yy = y + dy, xx = x + dx;
                    if (yy < 0 || yy >= h || xx < 0 || xx >= w) continue;
                    size_t r = (size_t)yy * w + xx;
                    if (mask[r] && region[r] < 0) region[r] = next, stack[top++] = (int32_t)r;
                }
        }
        next++;
    }
    return next - first;
}

int lathe_pro(const float *maps, const uint8_t *masks, size_t n, int h, int w, double fpr_limit, double *pro,
              size_t *regions) {
    if (!(fpr_limit > 0 && fpr_limit <= 1)) return lathe_fail(LATHE_EINVAL, "PRO: false positive rate limit %g", fpr_limit);
    size_t np = (size_t)h * w, total = n * np;
    scored *s = malloc(sizeof(scored) * (total ? total : 1));
    int32_t *region = malloc(sizeof(int32_t) * (np ? np : 1)), *stack = malloc(sizeof(int32_t) * (np ? np : 1));
    double *size = NULL;
    int rc = 0;
    int32_t nreg = 0;
    if (!s || !region || !stack) rc = lathe_fail(LATHE_ENOMEM, "PRO over %zu pixels", total);
    for (size_t i = 0; !rc && i < n; i++) {
        nreg += label_regions(masks + i * np, h, w, nreg, region, stack);
        for (size_t p = 0; p < np; p++) {
            float v = maps[i * np + p];
            if (isnan(v)) {
                rc = lathe_fail(LATHE_EINVAL, "map %zu: pixel %zu is NaN", i, p);
                break;
            }
            s[i * np + p] = (scored){v, region[p]};
        }
    }
    if (!rc && !(size = calloc((size_t)nreg + 1, sizeof *size))) rc = lathe_fail(LATHE_ENOMEM, "%d regions", nreg);
    double good = 0;
    for (size_t i = 0; !rc && i < total; i++) {
        if (s[i].tag >= 0) size[s[i].tag] += 1;
        else good += 1;
    }
    if (regions) *regions = rc ? 0 : (size_t)nreg;
    *pro = -1;
    if (!rc && nreg > 0 && good > 0) {
        qsort(s, total, sizeof *s, by_score_desc);
        /* threshold sweep from the top: fpr rises, the summed overlap rises; trapezoids up to the limit */
        double fp = 0, overlap = 0, area = 0, last_fpr = 0, last_pro = 0;
        for (size_t i = 0; i < total;) {
            size_t j = i;
            while (j < total && s[j].score == s[i].score) {
                if (s[j].tag < 0) fp += 1;
                else overlap += 1 / size[s[j].tag];
                j++;
            }
            double fpr = fp / good, cur = overlap / nreg;
            if (fpr >= fpr_limit) { /* the last piece, cut at the limit */
                double t = fpr > last_fpr ? (fpr_limit - last_fpr) / (fpr - last_fpr) : 0;
                area += (fpr_limit - last_fpr) * (last_pro + 0.5 * t * (cur - last_pro));
                last_fpr = fpr_limit;
                break;
            }
            area += (fpr - last_fpr) * 0.5 * (last_pro + cur);
            last_fpr = fpr, last_pro = cur;
            i = j;
        }
        *pro = area / fpr_limit;
    }
    free(s), free(region), free(stack), free(size);
    return rc;
}
