/* shard_hash.c - the checksum of a shard's small datasets (shard.h: lathe_shard_array_hash). */
#include <string.h>
#include <xxhash.h>

#include "shard.h"

static void add(XXH64_state_t *st, const void *p, size_t n) { XXH64_update(st, p, n); }

/* A string and its length, so "ab"+"c" and "a"+"bc" differ. */
static void add_string(XXH64_state_t *st, const char *s) {
    uint64_t len = s ? strlen(s) : 0;
    add(st, &len, sizeof len);
    if (len) add(st, s, (size_t)len);
}

uint64_t lathe_shard_array_hash(hid_t type, const void *data, uint64_t n) {
    if (H5Tget_class(type) != H5T_COMPOUND && H5Tis_variable_str(type) <= 0)
        return XXH64(data, (size_t)(n * H5Tget_size(type)), 0);
    XXH64_state_t *st = XXH64_createState();
    if (!st) return 0;
    XXH64_reset(st, 0);
    if (H5Tget_class(type) == H5T_COMPOUND) { /* /meta: each row's fields, not the padding between them */
        const lathe_shard_meta_row *r = data;
        for (uint64_t i = 0; i < n; i++, r++) {
            add_string(st, r->source);
            add(st, &r->image_id, sizeof r->image_id);
            add(st, &r->orig_width, sizeof r->orig_width), add(st, &r->orig_height, sizeof r->orig_height);
            add(st, &r->scale_x, sizeof r->scale_x), add(st, &r->scale_y, sizeof r->scale_y);
            add(st, &r->pad_x, sizeof r->pad_x), add(st, &r->pad_y, sizeof r->pad_y);
            add(st, &r->tile_x, sizeof r->tile_x), add(st, &r->tile_y, sizeof r->tile_y);
            add(st, &r->source_xxh64, sizeof r->source_xxh64), add(st, &r->phash, sizeof r->phash);
            add(st, &r->split, 1), add(st, &r->orientation, 1);
        }
    } else { /* /text: variable-length strings */
        char *const *s = data;
        for (uint64_t i = 0; i < n; i++) add_string(st, s[i]);
    }
    uint64_t h = XXH64_digest(st);
    XXH64_freeState(st);
    return h;
}
