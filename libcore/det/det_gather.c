/* det_gather.c - a split's detections from every rank (det_gather.h). */
#include "det_gather.h"

#include <stdlib.h>
#include <string.h>

#include "libcore/base/error.h"
#include "libcore/dist/dist.h"

/* One array of every rank's items of size `item`, and where each rank's start (in items). */
typedef struct {
    char *all;
    size_t *start;
} gathered;

static int gather(const void *mine, size_t count, size_t item, int world, gathered *g) {
    size_t *bytes = malloc(sizeof *bytes * (size_t)world);
    g->start = malloc(sizeof *g->start * (size_t)world), g->all = NULL;
    int rc = bytes && g->start ? lathe_dist_allgather(mine, count * item, (void **)&g->all, bytes)
                               : lathe_fail(LATHE_ENOMEM, "gather");
    for (int r = 0, at = 0; !rc && r < world; r++) g->start[r] = (size_t)at, at += (int)(bytes[r] / item);
    free(bytes);
    return rc;
}

int det_gather_ranks(uint64_t batches, const size_t *per_batch, size_t nb, lathe_coco_ann **dt, lathe_tile_rect **rects,
                     double (**sizes)[2], size_t *n) {
    int world = lathe_dist_world();
    gathered pb = {0}, d = {0}, t = {0}, z = {0};
    int rc = gather(per_batch, nb, sizeof *per_batch, world, &pb);
    if (!rc) rc = gather(*dt, *n, sizeof **dt, world, &d);
    if (!rc && rects) rc = gather(*rects, *n, sizeof **rects, world, &t);
    if (!rc && rects) rc = gather(*sizes, *n, sizeof **sizes, world, &z);
    size_t total = 0, *cursor = rc ? NULL : calloc((size_t)world, sizeof *cursor);
    const size_t *counts = (const size_t *)pb.all;
    for (uint64_t b = 0; !rc && cursor && b < batches; b++) total += counts[pb.start[b % world] + b / world];
    lathe_coco_ann *out = rc ? NULL : malloc(sizeof *out * (total ? total : 1));
    lathe_tile_rect *out_t = rc || !rects ? NULL : malloc(sizeof *out_t * (total ? total : 1));
    double(*out_z)[2] = rc || !rects ? NULL : malloc(sizeof *out_z * (total ? total : 1));
    if (!rc && (!cursor || !out || (rects && (!out_t || !out_z)))) rc = lathe_fail(LATHE_ENOMEM, "%zu detections", total);
    for (uint64_t b = 0, at = 0; !rc && b < batches; b++) { /* one process's order: batch after batch */
        int r = (int)(b % (uint64_t)world);
        size_t k = counts[pb.start[r] + b / world], from = d.start[r] + cursor[r];
        memcpy(out + at, (lathe_coco_ann *)d.all + from, k * sizeof *out);
        if (rects) memcpy(out_t + at, (lathe_tile_rect *)t.all + from, k * sizeof *out_t);
        if (rects) memcpy(out_z + at, (double(*)[2])z.all + from, k * sizeof *out_z);
        cursor[r] += k, at += k;
    }
    if (!rc) {
        free(*dt), *dt = out, *n = total;
        if (rects) free(*rects), free(*sizes), *rects = out_t, *sizes = out_z;
    } else {
        free(out), free(out_t), free(out_z);
    }
    gathered all[4] = {pb, d, t, z};
    for (int i = 0; i < 4; i++) free(all[i].all), free(all[i].start);
    free(cursor);
    return rc;
}
