/* fuzz_wordpiece.c - the WordPiece tokenizer's text path (libcore/mm/wordpiece.c: BERT normalization
 * on utf8proc, pre-tokenization, greedy longest-match pieces, added tokens matched raw and
 * normalized): the input is the text, encoded against a small vocab built here, with a long and a
 * short max_len (truncation). */
#include "fuzz.h"

#include "libcore/mm/wordpiece.h"

static const char vocab_txt[] =
    "[PAD]\n[unused0]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n<part>\n!\n,\n.\n?\n'\n-\n(\n)\n"
    "a\nb\nc\nd\ne\nf\ng\nh\ni\nk\nl\nm\nn\no\np\nr\ns\nt\nu\nw\nx\ny\nz\n0\n1\n2\n9\n"
    "##a\n##b\n##c\n##d\n##e\n##g\n##h\n##i\n##k\n##l\n##n\n##o\n##r\n##s\n##t\n##u\n##x\n##y\n"
    "##ed\n##ing\n##s\n##er\n##ch\nthe\nbolt\nhex\nnut\nscratch\ncrack\ndent\nflange\ngear\non\nwith\n"
    "missing\nhole\nbelt\ncafe\nnaive\n東\n京\n##京\nß\nss\ni̇\n\xe2\x80\x8b\n";

/* added tokens: one special (raw matching), one normalized, one single-word */
static const char tokenizer_json[] =
    "{\"added_tokens\": [\n"
    "  {\"id\": 0, \"content\": \"[PAD]\", \"special\": true, \"normalized\": false},\n"
    "  {\"id\": 2, \"content\": \"[UNK]\", \"special\": true, \"normalized\": false},\n"
    "  {\"id\": 3, \"content\": \"[CLS]\", \"special\": true, \"normalized\": false},\n"
    "  {\"id\": 4, \"content\": \"[SEP]\", \"special\": true, \"normalized\": false},\n"
    "  {\"id\": 5, \"content\": \"[MASK]\", \"special\": true, \"normalized\": false},\n"
    "  {\"content\": \"<part>\", \"special\": false, \"normalized\": true},\n"
    "  {\"content\": \"Défect\", \"special\": false, \"normalized\": true, \"single_word\": true}],\n"
    " \"normalizer\": {\"type\": \"BertNormalizer\", \"clean_text\": true, \"handle_chinese_chars\": true,\n"
    "                \"strip_accents\": null, \"lowercase\": true},\n"
    " \"pre_tokenizer\": {\"type\": \"BertPreTokenizer\"},\n"
    " \"model\": {\"type\": \"WordPiece\", \"unk_token\": \"[UNK]\", \"continuing_subword_prefix\": \"##\",\n"
    "           \"max_input_chars_per_word\": 12}}\n";

static lathe_wordpiece *tokenizer; /* kept for the process: built once, read-only */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!tokenizer) {
        char path[4200];
        fuzz_write("vocab.txt", vocab_txt, sizeof vocab_txt - 1, path, sizeof path);
        fuzz_write("tokenizer.json", tokenizer_json, sizeof tokenizer_json - 1, path, sizeof path);
        if (lathe_wordpiece_open(fuzz_dir(), &tokenizer) != 0) abort(); /* the harness's own vocab */
    }
    int32_t ids[512];
    int n = lathe_wordpiece_encode(tokenizer, (const char *)data, size, 512, ids);
    for (int i = 0; i < n; i++)
        if (!lathe_wordpiece_token(tokenizer, ids[i])) abort(); /* every id must name a token */
    (void)lathe_wordpiece_encode(tokenizer, (const char *)data, size, 2 + (int)(size % 7), ids);
    return 0;
}
