/* tile_merge.c - merging the detections of one image's tiles (tile_merge.h). Quadratic in the
 * detections of one image per class, which max_det per tile keeps small. */
#include "tile_merge.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "libcore/base/error.h"

void lathe_tile_merge_defaults(lathe_tile_merge_opts *o) { *o = (lathe_tile_merge_opts){0.7, 0.5, 2, 0.5, 0, 100}; }

typedef struct {
    lathe_coco_ann a;
    const lathe_tile_rect *tile;
    size_t order;
    int cut; /* touches an inner edge of its tile */
} item;

static int by_score(const void *x, const void *y) { /* score descending, then input order: stable */
    const item *p = x, *q = y;
    if (p->a.score != q->a.score) return p->a.score > q->a.score ? -1 : 1;
    return (p->order > q->order) - (p->order < q->order);
}

static int cut_by_tile(const lathe_coco_ann *a, const lathe_tile_rect *t, double W, double H, double edge) {
    return (t->x0 > 0 && a->x <= t->x0 + edge) || (t->y0 > 0 && a->y <= t->y0 + edge) ||
           (t->x1 < W && a->x + a->w >= t->x1 - edge) || (t->y1 < H && a->y + a->h >= t->y1 - edge);
}

static double intersection(const lathe_coco_ann *p, const lathe_coco_ann *q) {
    double w = fmin(p->x + p->w, q->x + q->w) - fmax(p->x, q->x), h = fmin(p->y + p->h, q->y + q->h) - fmax(p->y, q->y);
    return w > 0 && h > 0 ? w * h : 0;
}

static int same_tile(const lathe_tile_rect *s, const lathe_tile_rect *t) {
    return s == t || (s->x0 == t->x0 && s->y0 == t->y0 && s->x1 == t->x1 && s->y1 == t->y1);
}

/* k absorbs d, both cut pieces of one object: the union of both boxes, k's (higher) score. */
static void absorb(item *k, const item *d) {
    double x1 = fmax(k->a.x + k->a.w, d->a.x + d->a.w), y1 = fmax(k->a.y + k->a.h, d->a.y + d->a.h);
    k->a.x = fmin(k->a.x, d->a.x), k->a.y = fmin(k->a.y, d->a.y);
    k->a.w = x1 - k->a.x, k->a.h = y1 - k->a.y, k->a.area = k->a.w * k->a.h;
}

/* q, a cut piece, takes the box of d, a whole view of the same object, and keeps its better score. */
static void take_box(item *q, const item *d) {
    q->a.x = d->a.x, q->a.y = d->a.y, q->a.w = d->a.w, q->a.h = d->a.h, q->a.area = d->a.area;
    q->cut = 0;
}

int lathe_tile_merge(lathe_coco_ann *dt, const lathe_tile_rect *tiles, size_t n, double width, double height,
                     const lathe_tile_merge_opts *o, size_t *kept) {
    *kept = 0;
    if (n == 0) return 0;
    item *it = malloc(n * sizeof *it);
    if (!it) return lathe_fail(LATHE_ENOMEM, "merging %zu tile detections", n);
    for (size_t i = 0; i < n; i++) {
        it[i] = (item){dt[i], &tiles[i], i, cut_by_tile(&dt[i], &tiles[i], width, height, o->edge)};
        if (it[i].cut) it[i].a.score *= o->cut_score; /* a tile saw part of the object at most */
    }
    qsort(it, n, sizeof *it, by_score);
    size_t nk = 0; /* it[0 .. nk) are kept, best first */
    for (size_t i = 0; i < n; i++) {
        item d = it[i];
        int gone = 0;
        for (size_t k = 0; k < nk && !gone; k++) {
            item *q = &it[k];
            if (q->a.category_id != d.a.category_id) continue;
            double inter = intersection(&q->a, &d.a), ad = d.a.w * d.a.h, aq = q->a.w * q->a.h;
            if (inter <= 0) continue;
            if (inter / (ad + aq - inter) > o->iou) gone = 1; /* the same object twice */
            else if ((d.cut || q->cut) && !same_tile(q->tile, d.tile) && inter / fmin(ad, aq) >= o->ios) {
                if (d.cut && q->cut) absorb(q, &d); /* two pieces of an object no tile sees whole */
                else if (q->cut) take_box(q, &d);   /* d sees whole what q saw a piece of */
                gone = 1;                           /* else d is a piece of what q sees whole */
            }
        }
        if (!gone) it[nk++] = d;
    }
    /* a union can outgrow a box kept after it; the order by score stays as it was */
    if ((int)nk > o->max_det) nk = (size_t)o->max_det;
    while (nk > 0 && it[nk - 1].a.score < o->min_score) nk--; /* a cut view's scaled score can fall under it */
    for (size_t i = 0; i < nk; i++) dt[i] = it[i].a;
    *kept = nk;
    free(it);
    return 0;
}
