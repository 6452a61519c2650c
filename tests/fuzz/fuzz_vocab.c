/* fuzz_vocab.c - loading a tokenizer (libcore/mm/wordpiece.c's lathe_wordpiece_open): the input is
 * "VOCAB_TXT\0TOKENIZER_JSON" (vocab.txt alone when there is no NUL). A tokenizer that opens encodes
 * a sentence with special tokens, accents and CJK. */
#include "fuzz.h"

#include "libcore/mm/wordpiece.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const char text[] = "A [MASK] scratched hex-nut, café naïve 東京 [SEP] <part> Défect!";
    size_t first;
    const uint8_t *second;
    size_t second_len;
    fuzz_split(data, size, &first, &second, &second_len);
    char path[4200];
    fuzz_write("vocab.txt", data, first, path, sizeof path);
    snprintf(path, sizeof path, "%s/tokenizer.json", fuzz_dir());
    if (second) fuzz_write("tokenizer.json", second, second_len, path, sizeof path);
    else unlink(path);
    lathe_wordpiece *t = NULL;
    if (lathe_wordpiece_open(fuzz_dir(), &t) != 0) return 0;
    int32_t ids[64];
    int n = lathe_wordpiece_encode(t, text, sizeof text - 1, 64, ids);
    for (int i = 0; i < n; i++)
        if (!lathe_wordpiece_token(t, ids[i])) abort(); /* every id must name a token */
    (void)lathe_wordpiece_vocab_size(t);
    lathe_wordpiece_free(t);
    return 0;
}
