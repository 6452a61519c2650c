/* fuzz_hard_background.c - a run's checkpoints/hard_background.json as a resume reads it back
 * (libcore/det/hard_negatives.c: lathe_json_load, then lathe_hard_negatives_list for the epochs a
 * resume may ask for). A list that is accepted holds only whole sample numbers below 2^53. */
#include "fuzz.h"

#include "libcore/base/config.h"
#include "libcore/det/hard_negatives.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[4200];
    fuzz_write("hard_background.json", data, size, path, sizeof path);
    cJSON *json = NULL;
    if (lathe_json_load(path, (size_t)1 << 20, &json) != 0) return 0;
    for (int epoch = -1; epoch <= 3; epoch++) {
        uint64_t *samples = NULL, n = 0;
        if (lathe_hard_negatives_list(json, epoch, path, &samples, &n) == 0)
            for (uint64_t i = 0; i < n; i++)
                if (samples[i] >= 9007199254740992ull) abort();
        free(samples);
    }
    cJSON_Delete(json);
    return 0;
}
