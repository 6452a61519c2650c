/* fuzz_shard.c - the HDF5 shard reader (libcore/io/dataset.c): the input is written as the one shard of
 * a dataset whose manifest.json matches the seed shards (16x16x3, seven classes, text, 4x5 sensor
 * windows) and carries the input's own xxh64 (a hostile dataset, not a corrupted one: the reader's
 * whole-file hash would refuse every changed input before HDF5 saw it), once as a pixels store and
 * once as an encoded store. Each time the shard is checked
 * against the schema (lathe verify's check) and every sample is read with everything it holds. After
 * the dataset is closed no HDF5 id may be open: a handle lathe forgot is a finding (abort), and it
 * lets tests/fuzz/run.sh count a leak allocated wholly inside libhdf5 as HDF5's own. */
#include "fuzz.h"

#include "libcore/io/dataset.h"

#include <hdf5.h>
#include <inttypes.h>
#include <xxhash.h>

static const char manifest_fmt[] =
    "{\"lathe_schema\": 1, \"created_by\": \"fuzz\", \"complete\": true, \"store\": \"%s\",\n"
    " \"image_size\": [16, 16], \"channels\": 3,\n"
    " \"class_names\": [\"good\", \"scratch\", \"dent\", \"crack\", \"missing_hole\", \"bearing_wear\", \"overheating\"],\n"
    " \"masks\": false, \"text\": true,\n"
    " \"sensors\": {\"steps\": 4, \"channels\": [\"vib_x\", \"vib_y\", \"vib_z\", \"temperature\", \"current\"]},\n"
    " \"source_format\": \"coco\", \"args\": {}, \"samples\": 3, \"rejected\": 0,\n"
    " \"shards\": [{\"file\": \"shard-00000.h5\", \"split\": \"train\", \"samples\": 3, \"bytes\": %zu,\n"
    "              \"xxh64\": \"%016" PRIx64 "\"}],\n"
    " \"resume\": {\"train\": 3, \"val\": 0, \"test\": 0}}\n";

static void ignore_problem(void *ctx, size_t shard, int64_t row, const char *message) {
    (void)shard, (void)row, (void)message;
    ++*(int *)ctx;
}

static void read_all(const char *dir) {
    lathe_dataset *ds = NULL;
    if (lathe_dataset_open(dir, &ds) != 0) return;
    int problems = 0;
    (void)lathe_dataset_check_shard(ds, 0, ignore_problem, &problems);
    for (uint64_t i = 0; i < lathe_dataset_count(ds); i++) {
        lathe_dataset_sample s = {0};
        if (lathe_dataset_get(ds, i, LATHE_READ_ALL | LATHE_READ_DECODE, &s) == 0) lathe_dataset_sample_free(&s);
    }
    lathe_dataset_stats st;
    if (lathe_dataset_stats_compute(ds, &st) == 0) lathe_dataset_stats_free(&st);
    lathe_dataset_close(ds);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const char *const stores[] = {"pixels", "encoded"};
    char path[4200], manifest[2048];
    fuzz_write("shard-00000.h5", data, size, path, sizeof path);
    for (int k = 0; k < 2; k++) {
        int n = snprintf(manifest, sizeof manifest, manifest_fmt, stores[k], size, (uint64_t)XXH64(data, size, 0));
        fuzz_write("manifest.json", manifest, (size_t)n, path, sizeof path);
        read_all(fuzz_dir());
        ssize_t open_ids = H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL);
        if (open_ids != 0) {
            fprintf(stderr, "fuzz_shard: %zd HDF5 ids left open after the dataset was closed\n", open_ids);
            abort();
        }
    }
    return 0;
}
