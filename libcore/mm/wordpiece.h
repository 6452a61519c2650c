/* wordpiece.h - the BERT uncased WordPiece tokenizer, giving the token ids of the Python `tokenizers`
 * package (BertNormalizer: clean text, pad CJK ideographs, strip accents, lowercase; BertPreTokenizer;
 * WordPiece; template [CLS] A [SEP]; added tokens split out first) for a model folder such as
 * all-MiniLM-L6-v2's. Unicode data comes from utf8proc, corrected where tokenizers' own (older) tables
 * differ. An opened tokenizer is read-only: encode may run on many threads at once. */
#ifndef LATHE_MM_WORDPIECE_H
#define LATHE_MM_WORDPIECE_H
#include <stddef.h>
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif

typedef struct lathe_wordpiece lathe_wordpiece;

/* Loads dir/vocab.txt (one token a line, id = line number) and, when present, dir/tokenizer.json's
 * "added_tokens" (special tokens matched in the raw text before normalization, as tokenizers does;
 * tokens marked "normalized" are matched in the normalized text) and its WordPiece settings (unk
 * token, "##" prefix, max_input_chars_per_word); without tokenizer.json the five BERT specials [PAD]
 * [UNK] [CLS] [SEP] [MASK] from the vocab are used. Returns 0, -LATHE_ENOTFOUND (no vocab),
 * -LATHE_EFORMAT (a vocab without [CLS]/[SEP]/[UNK], bad JSON), -LATHE_EUNSUPPORTED (a tokenizer.json
 * whose normalizer, pre-tokenizer or model is not BERT uncased WordPiece) or -LATHE_ENOMEM. */
int lathe_wordpiece_open(const char *dir, lathe_wordpiece **out);
void lathe_wordpiece_free(lathe_wordpiece *t);
/* Encodes len bytes of UTF-8 text as [CLS] pieces... [SEP] into ids (room for max_len >= 2 ids),
 * truncating the pieces so the whole stays within max_len (tokenizers' truncation, [SEP] kept).
 * Bytes that are not valid UTF-8 count as U+FFFD (dropped by clean-up). Returns the count or a
 * negative LATHE_E* code (-LATHE_EINVAL for max_len < 2 or NULL pointers, -LATHE_ENOMEM). */
int lathe_wordpiece_encode(const lathe_wordpiece *t, const char *text, size_t len, int max_len, int32_t *ids);
/* The id of a token (added tokens first, then the vocab), or -1. */
int lathe_wordpiece_id(const lathe_wordpiece *t, const char *token);
/* The token of an id, or NULL. */
const char *lathe_wordpiece_token(const lathe_wordpiece *t, int id);
/* One more than the largest id (vocab lines and added tokens). */
int lathe_wordpiece_vocab_size(const lathe_wordpiece *t);

#ifdef __cplusplus
}
#endif
#endif
