/* fuzz_text_config.c - a text model folder's JSON files as `lathe embed` and the image-text heads
 * read them (libcore/mm/text_model.c: text_model_read_config): the input is "CONFIG_JSON\0
 * SENTENCE_BERT_CONFIG_JSON\0POOLING_CONFIG_JSON\0MODULES_JSON", each part after the first
 * optional (a missing part: no such file). A configuration that is accepted has shapes the forward
 * can trust. The tokenizer files have their own target (vocab), the weights theirs (safetensors). */
#include "fuzz.h"

#include <sys/stat.h>

#include "libcore/mm/text_encoder_internal.h"

static const char *const names[4] = {"config.json", "sentence_bert_config.json", "1_Pooling/config.json", "modules.json"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[4200];
    snprintf(path, sizeof path, "%s/1_Pooling", fuzz_dir());
    mkdir(path, 0700);
    const uint8_t *part = data;
    size_t left = size;
    for (int i = 0; i < 4; i++) {
        if (!part) {
            snprintf(path, sizeof path, "%s/%s", fuzz_dir(), names[i]);
            unlink(path);
            continue;
        }
        size_t len;
        const uint8_t *next;
        size_t next_len;
        fuzz_split(part, left, &len, &next, &next_len);
        fuzz_write(names[i], part, len, path, sizeof path);
        part = next, left = next_len;
    }
    lathe_text_encoder e;
    memset(&e, 0, sizeof e);
    if (text_model_read_config(&e, fuzz_dir()) != 0) return 0;
    if (e.dim < 8 || e.heads < 1 || e.dim % e.heads || e.nlayers < 1 || e.inter < 1 || e.vocab < 8 || e.max_pos < 2 ||
        e.max_tokens < 2 || e.max_tokens > e.max_pos)
        abort();
    return 0;
}
