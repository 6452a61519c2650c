/* testdata.h - a small pixels-store dataset written for a test with lathe_shard_* and
 * lathe_manifest_save: shards of (split, count) samples whose pixels, boxes and /meta row a callback
 * fills. Returns the dataset's folder (a test_tempdir; free it, and test_rmtree it when done). */
#ifndef LATHE_TESTS_TESTDATA_H
#define LATHE_TESTS_TESTDATA_H
#include <zstd.h>

#include "libcore/io/manifest.h"
#include "libcore/io/shard.h"
#include "testutil.h"

enum { TEST_MAX_BOXES = 8 };

typedef struct {
    int split, count;
} test_shard;

/* Fills sample g (global index, in split): pixels (h, w, 3) and up to TEST_MAX_BOXES boxes (returns
 * how many); meta arrives as {"img<g>.png", image id g, w, h, scale 1, no pad, split} and the
 * image-level label as -1 (none), to adjust. */
typedef size_t (*test_sample_fn)(void *ctx, uint64_t g, int split, uint8_t *pixels, lathe_box *boxes, lathe_meta *meta,
                                 int32_t *label);

static inline char *test_write_pixels_dataset(const char *tag, int w, int h, const char *const *classes, int nclasses,
                                              const test_shard *shards, int nshards, test_sample_fn fill, void *ctx) {
    char *dir = test_tempdir(tag);
    assert_non_null(dir);
    lathe_shard_schema schema = {LATHE_STORE_PIXELS, h, w, 3, 0, 0, 0, NULL, 0, classes, nclasses, 1, tag, 0};
    lathe_manifest m = {0};
    m.schema = LATHE_SCHEMA_VERSION, m.created_by = (char *)tag, m.store = LATHE_STORE_PIXELS;
    m.height = h, m.width = w, m.channels = 3, m.class_names = (char **)classes, m.nclasses = nclasses;
    m.source_format = "test", m.complete = 1;
    size_t npix = (size_t)w * h * 3, bound = ZSTD_compressBound(npix);
    uint8_t *px = malloc(npix), *chunk = malloc(bound);
    assert_true(px && chunk);
    uint64_t g = 0;
    for (int s = 0; s < nshards; s++) {
        char name[32], path[4200];
        snprintf(name, sizeof name, "shard-%05d.h5", s);
        snprintf(path, sizeof path, "%s/%s", dir, name);
        lathe_shard_writer *wr;
        assert_int_equal(lathe_shard_create(path, &schema, (size_t)shards[s].count, &wr), 0);
        for (int k = 0; k < shards[s].count; k++, g++) {
            lathe_box boxes[TEST_MAX_BOXES];
            char source[32];
            snprintf(source, sizeof source, "img%llu.png", (unsigned long long)g);
            lathe_shard_sample smp = {0};
            smp.meta = (lathe_meta){source, (int64_t)g, w, h, 1, 1, 0, 0, 0, 0, 0, 0, (uint8_t)shards[s].split, 1};
            smp.label = -1, smp.boxes = boxes, smp.nboxes = fill(ctx, g, shards[s].split, px, boxes, &smp.meta, &smp.label);
            size_t clen = ZSTD_compress(chunk, bound, px, npix, 1);
            assert_false(ZSTD_isError(clen));
            smp.image_chunk = chunk, smp.image_chunk_len = clen;
            assert_int_equal(lathe_shard_append(wr, &smp), 0);
        }
        uint64_t bytes, hash;
        assert_int_equal(lathe_shard_commit(wr, &bytes, &hash), 0);
        assert_int_equal(lathe_manifest_add_shard(&m, name, shards[s].split, (uint64_t)shards[s].count, bytes, hash), 0);
    }
    assert_int_equal(lathe_manifest_save(dir, &m), 0);
    for (size_t k = 0; k < m.nshards; k++) free(m.shards[k].file);
    free(m.shards);
    free(chunk);
    free(px);
    return dir;
}

#endif
