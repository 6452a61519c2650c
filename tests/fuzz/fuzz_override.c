/* fuzz_override.c - `key.path=value` overrides (libcore/base/config.c, `lathe train ... KEY=VALUE`):
 * each input line applied to a small spec, then the spec written back as YAML. */
#include "fuzz.h"

#include "libcore/base/config.h"

static const char spec_yaml[] = "model:\n  name: detector_n\n  widths: [16, 32, 64]\n"
                                "train:\n  epochs: 3\n  lr: 0.01\n  schedule: {kind: cosine, warmup: 1}\n"
                                "data:\n  augment:\n    flip: 0.5\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static cJSON *parsed; /* the harness's own spec, parsed once: libfyaml's parse costs more than the override */
    if (!parsed && lathe_config_parse(spec_yaml, "spec.yaml", &parsed) != 0) abort();
    cJSON *spec = cJSON_Duplicate(parsed, 1);
    if (!spec) abort();
    char *text = fuzz_text(data, size);
    int lines = 0;
    for (char *save = NULL, *line = strtok_r(text, "\n", &save); line && lines < 16;
         line = strtok_r(NULL, "\n", &save), lines++)
        (void)lathe_config_override(spec, line);
    char *yaml = lathe_config_to_yaml(spec);
    free(yaml);
    cJSON_Delete(spec);
    free(text);
    return 0;
}
