/* fuzz_config.c - YAML experiment specs (libcore/base/config.c over libfyaml): a spec parsed into a
 * cJSON tree, its nulls dropped, written back as block YAML and that parsed again. */
#include "fuzz.h"

#include "libcore/base/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = fuzz_text(data, size);
    cJSON *spec = NULL;
    if (lathe_config_parse(text, "spec.yaml", &spec) == 0) {
        (void)lathe_config_num(spec, "train.epochs", 1);
        (void)lathe_config_str(spec, "model.name", "");
        lathe_config_drop_nulls(spec);
        char *yaml = lathe_config_to_yaml(spec);
        cJSON *again = NULL;
        if (yaml && lathe_config_parse(yaml, "again.yaml", &again) == 0) cJSON_Delete(again);
        free(yaml);
        cJSON_Delete(spec);
    }
    free(text);
    return 0;
}
