/* wordpiece.c - BERT uncased WordPiece as the Rust `tokenizers` crate runs it, streamed: the raw text
 * is decoded one code point at a time, raw added tokens are split out, each code point is cleaned,
 * CJK-padded, NFD-decomposed (canonical order kept with a run buffer), accent-stripped and lowercased
 * into a queue; the queue is matched against normalized added tokens, split into words at whitespace
 * and punctuation, and each word is cut into pieces. It stops as soon as the pieces fill max_len, so
 * the cost of a huge text is that of its first max_len pieces. Memory: a few growing buffers per call.
 *
 * tokenizers' Unicode tables are older than utf8proc's: its categories (unicode_categories crate) and
 * its NFD (unicode-normalization-alignments) predate characters that utf8proc 2.8 (Unicode 15) knows,
 * while its lowercase (Rust std) is newer. The tables below list every code point where the two
 * differ, found by running tokenizers 0.23.3 on each code point alone; tests/interop/test_tokenizer.py
 * sweeps every code point again, so a newer utf8proc that adds characters shows up there. */
#include "wordpiece.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "libcore/base/config.h"
#include "libcore/base/error.h"
#include "libcore/base/fsutil.h"
#include "libcore/base/hashmap.h"

#define VOCAB_MAX_BYTES ((size_t)1 << 28)
#define JSON_MAX_BYTES ((size_t)1 << 28)
#define MAX_IDS (1 << 24) /* ids must fit the embedding tables that use them */

/* ---- Unicode: utf8proc plus tokenizers' differences -------------------------------------------- */

typedef struct {
    int32_t lo, hi;
} range;

/* Cf/Cc per utf8proc, unassigned (so kept by clean-up) in tokenizers' tables. */
static const range format_kept[] = {
    {0x890, 0x891}, {0x8E2, 0x8E2}, {0x110CD, 0x110CD}, {0x13430, 0x1343F},
};
/* Mn per utf8proc, not stripped by tokenizers (newer than its tables, or once another category). */
static const range mn_kept[] = {
    {0x7FD, 0x7FD}, {0x898, 0x89F}, {0x8CA, 0x8E1}, {0x9FE, 0x9FE}, {0xAFA, 0xAFF}, {0xB55, 0xB55},
    {0xC04, 0xC04}, {0xC3C, 0xC3C}, {0xD00, 0xD00}, {0xD3B, 0xD3C}, {0xD81, 0xD81}, {0xEBA, 0xEBA},
    {0xECE, 0xECE}, {0x180F, 0x180F}, {0x1885, 0x1886}, {0x1ABF, 0x1ACE}, {0x1DF6, 0x1DFB},
    {0xA82C, 0xA82C}, {0xA8C5, 0xA8C5}, {0xA8FF, 0xA8FF}, {0xA9BD, 0xA9BD}, {0x10D24, 0x10D27},
    {0x10EAB, 0x10EAC}, {0x10EFD, 0x10EFF}, {0x10F46, 0x10F50}, {0x10F82, 0x10F85},
    {0x11070, 0x11070}, {0x11073, 0x11074}, {0x110C2, 0x110C2}, {0x111C9, 0x111C9},
    {0x111CF, 0x111CF}, {0x1123E, 0x1123E}, {0x11241, 0x11241}, {0x1133B, 0x1133B},
    {0x11438, 0x1143F}, {0x11442, 0x11444}, {0x11446, 0x11446}, {0x1145E, 0x1145E},
    {0x1182F, 0x11837}, {0x11839, 0x1183A}, {0x1193B, 0x1193C}, {0x1193E, 0x1193E},
    {0x11943, 0x11943}, {0x119D4, 0x119D7}, {0x119DA, 0x119DB}, {0x119E0, 0x119E0},
    {0x11A01, 0x11A0A}, {0x11A33, 0x11A38}, {0x11A3B, 0x11A3E}, {0x11A47, 0x11A47},
    {0x11A51, 0x11A56}, {0x11A59, 0x11A5B}, {0x11A8A, 0x11A96}, {0x11A98, 0x11A99},
    {0x11C30, 0x11C36}, {0x11C38, 0x11C3D}, {0x11C3F, 0x11C3F}, {0x11C92, 0x11CA7},
    {0x11CAA, 0x11CB0}, {0x11CB2, 0x11CB3}, {0x11CB5, 0x11CB6}, {0x11D31, 0x11D36},
    {0x11D3A, 0x11D3A}, {0x11D3C, 0x11D3D}, {0x11D3F, 0x11D45}, {0x11D47, 0x11D47},
    {0x11D90, 0x11D91}, {0x11D95, 0x11D95}, {0x11D97, 0x11D97}, {0x11EF3, 0x11EF4},
    {0x11F00, 0x11F01}, {0x11F36, 0x11F3A}, {0x11F40, 0x11F40}, {0x11F42, 0x11F42},
    {0x13440, 0x13440}, {0x13447, 0x13455}, {0x16F4F, 0x16F4F}, {0x16FE4, 0x16FE4},
    {0x1CF00, 0x1CF2D}, {0x1CF30, 0x1CF46}, {0x1E000, 0x1E006}, {0x1E008, 0x1E018},
    {0x1E01B, 0x1E021}, {0x1E023, 0x1E024}, {0x1E026, 0x1E02A}, {0x1E08F, 0x1E08F},
    {0x1E130, 0x1E136}, {0x1E2AE, 0x1E2AE}, {0x1E2EC, 0x1E2EF}, {0x1E4EC, 0x1E4EF},
    {0x1E944, 0x1E94A},
};
/* Stripped by tokenizers (Mn in its tables), Mc per utf8proc. */
static const range mn_extra[] = {{0x1734, 0x1734}};
/* Punctuation per utf8proc, not per tokenizers. */
static const range punct_not[] = {
    {0x61D, 0x61D}, {0x9FD, 0x9FD}, {0xA76, 0xA76}, {0xC77, 0xC77}, {0xC84, 0xC84},
    {0x1B7D, 0x1B7E}, {0x2E43, 0x2E4F}, {0x2E52, 0x2E5D}, {0x10EAD, 0x10EAD}, {0x10F55, 0x10F59},
    {0x10F86, 0x10F89}, {0x1144B, 0x1144F}, {0x1145A, 0x1145B}, {0x1145D, 0x1145D},
    {0x11660, 0x1166C}, {0x116B9, 0x116B9}, {0x1183B, 0x1183B}, {0x11944, 0x11946},
    {0x119E2, 0x119E2}, {0x11A3F, 0x11A46}, {0x11A9A, 0x11A9C}, {0x11A9E, 0x11AA2},
    {0x11B00, 0x11B09}, {0x11C41, 0x11C45}, {0x11C70, 0x11C71}, {0x11EF7, 0x11EF8},
    {0x11F43, 0x11F4F}, {0x11FFF, 0x11FFF}, {0x12FF1, 0x12FF2}, {0x16E97, 0x16E9A},
    {0x16FE2, 0x16FE2}, {0x1E95E, 0x1E95F},
};
/* Punctuation per tokenizers (Po in its tables), not per utf8proc. */
static const range punct_extra[] = {{0x166D, 0x166D}, {0x111C9, 0x111C9}};
/* Combining class > 0 per utf8proc, unassigned (a starter) in tokenizers' NFD tables; only the
 * ones that survive accent stripping matter, and these are all of them. */
static const range ccc_zero[] = {
    {0x7FD, 0x7FD}, {0x898, 0x89F}, {0x8CA, 0x8D3}, {0x9FE, 0x9FE}, {0xC3C, 0xC3C}, {0xD3B, 0xD3C},
    {0xEBA, 0xEBA}, {0x1715, 0x1715}, {0x1ABF, 0x1ACE}, {0x1DF6, 0x1DFA}, {0xA82C, 0xA82C},
    {0x10D24, 0x10D27}, {0x10EAB, 0x10EAC}, {0x10EFD, 0x10EFF}, {0x10F46, 0x10F50},
    {0x10F82, 0x10F85}, {0x11070, 0x11070}, {0x1133B, 0x1133B}, {0x1145E, 0x1145E},
    {0x11839, 0x1183A}, {0x1193D, 0x1193E}, {0x11943, 0x11943}, {0x119E0, 0x119E0},
    {0x11A34, 0x11A34}, {0x11A47, 0x11A47}, {0x11A99, 0x11A99}, {0x11D42, 0x11D42},
    {0x11D44, 0x11D45}, {0x11D97, 0x11D97}, {0x11F41, 0x11F42}, {0x16FF0, 0x16FF1},
    {0x1E08F, 0x1E08F}, {0x1E130, 0x1E136}, {0x1E2AE, 0x1E2AE}, {0x1E2EC, 0x1E2EF},
    {0x1E4EC, 0x1E4EF},
};
/* Decomposed by utf8proc, not by tokenizers' NFD (DIVES AKURU VOWEL SIGN O, Unicode 13). */
static const range nfd_kept[] = {{0x11938, 0x11938}};
/* Lowercase mappings of Rust's char::to_lowercase newer than utf8proc's: lo..hi map to c + delta. */
static const struct {
    int32_t lo, hi, delta;
} lower_extra[] = {
    {0x1C89, 0x1C89, 1}, {0xA7CB, 0xA7CB, 0x264 - 0xA7CB}, {0xA7CC, 0xA7CC, 1}, {0xA7CE, 0xA7CE, 1},
    {0xA7D2, 0xA7D2, 1}, {0xA7D4, 0xA7D4, 1}, {0xA7DA, 0xA7DA, 1}, {0xA7DC, 0xA7DC, 0x19B - 0xA7DC},
    {0x10D50, 0x10D65, 0x20}, {0x16EA0, 0x16EB8, 0x1B},
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static int in_ranges(const range *r, size_t n, int32_t c) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (c < r[mid].lo) hi = mid;
        else if (c > r[mid].hi) lo = mid + 1;
        else return 1;
    }
    return 0;
}
#define IN(table, c) in_ranges(table, COUNT(table), c)

static int category(int32_t c) { return (int)utf8proc_category(c); }

/* Rust's char::is_whitespace (White_Space): \t..\r, U+0085, Zs, Zl, Zp. */
static int is_ws(int32_t c) {
    if (c == ' ' || (c >= 0x09 && c <= 0x0D) || c == 0x85) return 1;
    if (c < 0x80) return 0;
    int k = category(c);
    return k == UTF8PROC_CATEGORY_ZS || k == UTF8PROC_CATEGORY_ZL || k == UTF8PROC_CATEGORY_ZP;
}

/* BertNormalizer's is_control: Cc Cf Co Cs (not Cn), except \t \n \r (whitespace there). */
static int is_control(int32_t c) {
    if (c < 0x80) return (c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7F;
    int k = category(c);
    if (k != UTF8PROC_CATEGORY_CC && k != UTF8PROC_CATEGORY_CF && k != UTF8PROC_CATEGORY_CO &&
        k != UTF8PROC_CATEGORY_CS)
        return 0;
    return !IN(format_kept, c);
}

/* BertNormalizer's CJK ranges; note 2B920 (not 2B820) as tokenizers writes it. */
static int is_chinese(int32_t c) {
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
           (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
           (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

static int is_mn(int32_t c) {
    if (c < 0x300) return 0;
    if (category(c) == UTF8PROC_CATEGORY_MN) return !IN(mn_kept, c);
    return IN(mn_extra, c);
}

/* BertPreTokenizer: ASCII punctuation or Pc Pd Ps Pe Pi Pf Po. */
static int is_punct(int32_t c) {
    if (c < 0x80) return (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) || (c >= 0x5B && c <= 0x60) ||
                         (c >= 0x7B && c <= 0x7E);
    int k = category(c);
    if (k >= UTF8PROC_CATEGORY_PC && k <= UTF8PROC_CATEGORY_PO) return !IN(punct_not, c);
    return IN(punct_extra, c);
}

/* Regex \w (Unicode word character), for added tokens marked single_word: Alphabetic, marks, Nd,
 * Pc and Join_Control. Alphabetic is L*, Nl and Other_Alphabetic, whose entries outside M* are the
 * enclosed Latin letters listed here. */
static int is_word_char(int32_t c) {
    if (c < 0x80) return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    if (c == 0x200C || c == 0x200D) return 1;
    if ((c >= 0x24B6 && c <= 0x24E9) || (c >= 0x1F130 && c <= 0x1F149) || (c >= 0x1F150 && c <= 0x1F169) ||
        (c >= 0x1F170 && c <= 0x1F189))
        return 1;
    switch (category(c)) {
    case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT: case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO: case UTF8PROC_CATEGORY_MN: case UTF8PROC_CATEGORY_MC: case UTF8PROC_CATEGORY_ME:
    case UTF8PROC_CATEGORY_ND: case UTF8PROC_CATEGORY_NL: case UTF8PROC_CATEGORY_PC:
        return 1;
    default:
        return 0;
    }
}

static int comb_class(int32_t c) {
    if (c < 0x300) return 0;
    int k = utf8proc_get_property(c)->combining_class;
    return k && IN(ccc_zero, c) ? 0 : k;
}

/* Canonical decomposition of c into d (room for 16). */
static int decompose(int32_t c, int32_t *d) {
    if (c < 0xC0 || IN(nfd_kept, c)) {
        d[0] = c;
        return 1;
    }
    int last = 0;
    utf8proc_ssize_t n = utf8proc_decompose_char(c, d, 16, UTF8PROC_DECOMPOSE, &last);
    if (n < 1 || n > 16) {
        d[0] = c;
        return 1;
    }
    return (int)n;
}

/* Rust's char::to_lowercase: the full mapping (U+0130 is the one that gives two code points). */
static int lower_full(int32_t c, int32_t *out) {
    if (c < 0x80) {
        out[0] = c >= 'A' && c <= 'Z' ? c + 32 : c;
        return 1;
    }
    if (c == 0x130) {
        out[0] = 'i', out[1] = 0x307;
        return 2;
    }
    for (size_t i = 0; i < COUNT(lower_extra); i++)
        if (c >= lower_extra[i].lo && c <= lower_extra[i].hi) {
            out[0] = c + lower_extra[i].delta;
            return 1;
        }
    out[0] = utf8proc_tolower(c);
    return 1;
}

/* One code point from p (strict UTF-8; each maximal invalid subpart gives one U+FFFD). */
static int32_t decode(const unsigned char **pp, const unsigned char *end) {
    const unsigned char *p = *pp;
    unsigned b = *p++;
    int32_t c;
    int n;
    unsigned lo = 0x80, hi = 0xBF;
    if (b < 0x80) {
        *pp = p;
        return (int32_t)b;
    } else if (b >= 0xC2 && b <= 0xDF) {
        n = 1, c = b & 0x1F;
    } else if (b >= 0xE0 && b <= 0xEF) {
        n = 2, c = b & 0x0F;
        if (b == 0xE0) lo = 0xA0;
        if (b == 0xED) hi = 0x9F;
    } else if (b >= 0xF0 && b <= 0xF4) {
        n = 3, c = b & 0x07;
        if (b == 0xF0) lo = 0x90;
        if (b == 0xF4) hi = 0x8F;
    } else {
        *pp = p;
        return 0xFFFD;
    }
    for (int i = 0; i < n; i++, lo = 0x80, hi = 0xBF) {
        if (p >= end || *p < lo || *p > hi) {
            *pp = p;
            return 0xFFFD;
        }
        c = (c << 6) | (*p++ & 0x3F);
    }
    *pp = p;
    return c;
}

static int encode_utf8(int32_t c, char *out) {
    if (c < 0x80) return out[0] = (char)c, 1;
    if (c < 0x800) return out[0] = (char)(0xC0 | (c >> 6)), out[1] = (char)(0x80 | (c & 0x3F)), 2;
    if (c < 0x10000)
        return out[0] = (char)(0xE0 | (c >> 12)), out[1] = (char)(0x80 | ((c >> 6) & 0x3F)),
               out[2] = (char)(0x80 | (c & 0x3F)), 3;
    out[0] = (char)(0xF0 | (c >> 18)), out[1] = (char)(0x80 | ((c >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((c >> 6) & 0x3F)), out[3] = (char)(0x80 | (c & 0x3F));
    return 4;
}

/* ---- the tokenizer ------------------------------------------------------------------------------ */

typedef struct {
    char *content;   /* as written in tokenizer.json */
    size_t len;      /* bytes of content */
    int32_t *norm;   /* normalized content (normalized tokens), nnorm code points */
    int nnorm;
    int id;
    int single_word, normalized;
    int32_t last_cp; /* of content */
} added_token;

struct lathe_wordpiece {
    char *vocab_text;            /* vocab.txt, each line NUL-terminated in place */
    const char **tokens;         /* id -> token, n_ids entries (NULL where no token) */
    int n_ids, n_lines;
    lathe_hashmap *vocab;        /* token -> id (the WordPiece model's vocab) */
    lathe_hashmap *added_map;    /* content -> index into added */
    added_token *added;
    int n_added;
    int *raw_order;              /* raw (not normalized) added tokens by first byte, longest first */
    int raw_first[257];          /* raw_order[raw_first[b] .. raw_first[b + 1]) start with byte b */
    int *norm_order, n_norm;     /* normalized added tokens by first code point, longest first */
    int max_norm;                /* longest normalized added token, in code points */
    size_t max_piece;            /* longest vocab entry in bytes */
    int unk_id, cls_id, sep_id;
    char *prefix;                /* continuing_subword_prefix */
    size_t prefix_len;
    int max_word_chars;
};

typedef struct {
    int32_t *v;
    size_t n, cap;
} cpvec;

static int cp_reserve(cpvec *a, size_t n) {
    if (n <= a->cap) return 0;
    size_t cap = a->cap ? a->cap : 64;
    while (cap < n) cap *= 2;
    int32_t *v = cap <= SIZE_MAX / sizeof *v ? realloc(a->v, cap * sizeof *v) : NULL;
    if (!v) return lathe_fail(LATHE_ENOMEM, "tokenizer buffer of %zu code points", cap);
    a->v = v, a->cap = cap;
    return 0;
}

static int cp_push(cpvec *a, int32_t c) {
    int rc = a->n == a->cap ? cp_reserve(a, a->n + 1) : 0;
    if (!rc) a->v[a->n++] = c;
    return rc;
}

/* The normalizer: raw bytes in, normalized code points (and raw added-token markers) out. */
typedef struct {
    const lathe_wordpiece *t;
    const unsigned char *p, *end;
    const unsigned char *skip_until; /* no raw match starts before this (a refused single_word one) */
    int raw_matching;
    int32_t raw_prev;                /* the raw code point before p; -1 at the start */
    cpvec run, sorted;               /* code points of combining class > 0 waiting for canonical order */
    cpvec q;                         /* output: code points >= 0; -1 - k marks raw added token k */
    size_t head;
    int eof;
} normer;

static int emit_lower(normer *n, int32_t c) {
    int32_t l[3];
    int k = lower_full(c, l);
    for (int i = 0; i < k; i++) {
        int rc = cp_push(&n->q, l[i]);
        if (rc) return rc;
    }
    return 0;
}

/* Emits the pending run in canonical order: a stable sort by combining class (counting sort). */
static int flush_run(normer *n) {
    if (!n->run.n) return 0;
    int rc = 0;
    if (n->run.n == 1) {
        rc = emit_lower(n, n->run.v[0]);
    } else {
        size_t count[257] = {0};
        if ((rc = cp_reserve(&n->sorted, n->run.n))) return rc;
        for (size_t i = 0; i < n->run.n; i++) count[comb_class(n->run.v[i]) + 1]++;
        for (int k = 1; k < 257; k++) count[k] += count[k - 1];
        for (size_t i = 0; i < n->run.n; i++) n->sorted.v[count[comb_class(n->run.v[i])]++] = n->run.v[i];
        for (size_t i = 0; i < n->run.n && !rc; i++) rc = emit_lower(n, n->sorted.v[i]);
    }
    n->run.n = 0;
    return rc;
}

/* NFD, then accent stripping: Mn are dropped (a dropped starter still ends the canonical run, a
 * dropped mark does not change the order of the others). */
static int push_nfd(normer *n, int32_t c) {
    int32_t d[16];
    int nd = decompose(c, d), rc = 0;
    for (int i = 0; i < nd && !rc; i++) {
        if (comb_class(d[i]) == 0) {
            rc = flush_run(n);
            if (!rc && !is_mn(d[i])) rc = emit_lower(n, d[i]);
        } else if (!is_mn(d[i])) {
            rc = cp_push(&n->run, d[i]);
        }
    }
    return rc;
}

/* Index of the longest raw added token at p, or -1. */
static int match_raw(const lathe_wordpiece *t, const unsigned char *p, size_t avail) {
    for (int i = t->raw_first[*p]; i < t->raw_first[*p + 1]; i++) {
        const added_token *a = &t->added[t->raw_order[i]];
        if (a->len <= avail && memcmp(a->content, p, a->len) == 0) return t->raw_order[i];
    }
    return -1;
}

/* Consumes one raw code point (or a raw added token, or the end) and queues its output. */
static int produce(normer *n) {
    const lathe_wordpiece *t = n->t;
    if (n->p >= n->end) {
        n->eof = 1;
        return flush_run(n);
    }
    if (n->raw_matching && n->p >= n->skip_until) {
        int k = match_raw(t, n->p, (size_t)(n->end - n->p));
        if (k >= 0) {
            const added_token *a = &t->added[k];
            int ok = 1;
            if (a->single_word) {
                const unsigned char *after = n->p + a->len;
                ok = (n->raw_prev < 0 || !is_word_char(n->raw_prev)) &&
                     (after == n->end || !is_word_char(decode(&after, n->end)));
            }
            if (ok) {
                int rc = flush_run(n);
                if (!rc) rc = cp_push(&n->q, -1 - k);
                n->p += a->len;
                n->raw_prev = a->last_cp;
                return rc;
            }
            n->skip_until = n->p + a->len; /* matching resumes after it, as Aho-Corasick's iterator */
        }
    }
    int32_t c = decode(&n->p, n->end);
    n->raw_prev = c;
    if (c == 0 || c == 0xFFFD || is_control(c)) return 0;
    if (is_ws(c)) return push_nfd(n, ' ');
    if (!is_chinese(c)) return push_nfd(n, c);
    int rc = push_nfd(n, ' ');
    if (!rc) rc = push_nfd(n, c);
    if (!rc) rc = push_nfd(n, ' ');
    return rc;
}

static void normer_init(normer *n, const lathe_wordpiece *t, const char *text, size_t len, int raw_matching) {
    memset(n, 0, sizeof *n);
    n->t = t;
    n->p = n->skip_until = (const unsigned char *)text;
    n->end = n->p + len;
    n->raw_matching = raw_matching && t->raw_first[256] > 0;
    n->raw_prev = -1;
}

static void normer_free(normer *n) { free(n->run.v), free(n->sorted.v), free(n->q.v); }

/* Makes at least want items available after head (fewer only at the end). */
static int fill(normer *n, size_t want) {
    if (n->head > 4096 && n->head * 2 > n->q.n) {
        memmove(n->q.v, n->q.v + n->head, (n->q.n - n->head) * sizeof *n->q.v);
        n->q.n -= n->head, n->head = 0;
    }
    while (!n->eof && n->q.n - n->head < want) {
        int rc = produce(n);
        if (rc) return rc;
    }
    return 0;
}

/* ---- words and pieces --------------------------------------------------------------------------- */

typedef struct {
    const lathe_wordpiece *t;
    int32_t *ids;        /* ids[1 + i] is piece i */
    int n, cap;          /* pieces kept so far, room for pieces (max_len - 2) */
    cpvec word;          /* the current word (at most max_word_chars + 1 kept) */
    size_t word_chars;   /* its length in code points */
    char *bytes;         /* the word as UTF-8, and the byte offset of each code point */
    size_t bytes_cap;
    size_t *offs;
    char *key;           /* prefix + candidate piece, max_piece + 1 bytes */
    cpvec pieces;
} encoder;

static int full(const encoder *e) { return e->n >= e->cap; }

/* Keeps a piece while there is room (truncation drops the rest). */
static void emit_id(encoder *e, int id) {
    if (e->n < e->cap) e->ids[1 + e->n++] = id;
}

static int word_add(encoder *e, int32_t c) {
    e->word_chars++;
    if (e->word.n > (size_t)e->t->max_word_chars) return 0; /* already [UNK]: only count */
    return cp_push(&e->word, c);
}

static int lookup(const lathe_wordpiece *t, const char *key, int *id) {
    size_t v;
    if (!lathe_hashmap_get(t->vocab, key, &v)) return 0;
    *id = (int)v;
    return 1;
}

/* Greedy longest-match-first WordPiece of the current word; any gap makes the whole word [UNK]. */
static int end_word(encoder *e) {
    const lathe_wordpiece *t = e->t;
    size_t nc = e->word_chars;
    e->word_chars = 0;
    if (!nc) return 0;
    if (nc > (size_t)t->max_word_chars) {
        e->word.n = 0;
        emit_id(e, t->unk_id);
        return 0;
    }
    LATHE_ASSERT(e->word.n == nc);
    size_t need = nc * 4 + 1;
    if (need > e->bytes_cap) {
        char *b = realloc(e->bytes, need);
        if (!b) return lathe_fail(LATHE_ENOMEM, "tokenizer word of %zu bytes", need);
        e->bytes = b;
        size_t *o = realloc(e->offs, (nc + 1) * sizeof *o);
        if (!o) return lathe_fail(LATHE_ENOMEM, "tokenizer word of %zu code points", nc);
        e->offs = o, e->bytes_cap = need;
    }
    size_t nb = 0;
    for (size_t i = 0; i < nc; i++) {
        e->offs[i] = nb;
        nb += (size_t)encode_utf8(e->word.v[i], e->bytes + nb);
    }
    e->offs[nc] = nb;
    e->word.n = 0;
    e->pieces.n = 0;
    for (size_t s = 0; s < nc;) {
        size_t pre = s ? t->prefix_len : 0, end = nc;
        while (end > s && pre + e->offs[end] - e->offs[s] > t->max_piece) end--;
        int id = -1;
        for (; end > s; end--) {
            size_t blen = e->offs[end] - e->offs[s];
            memcpy(e->key, t->prefix, pre);
            memcpy(e->key + pre, e->bytes + e->offs[s], blen);
            e->key[pre + blen] = 0;
            if (lookup(t, e->key, &id)) break;
        }
        if (end == s) {
            emit_id(e, t->unk_id);
            return 0;
        }
        int rc = cp_push(&e->pieces, id);
        if (rc) return rc;
        s = end;
    }
    for (size_t i = 0; i < e->pieces.n; i++) emit_id(e, e->pieces.v[i]);
    return 0;
}

/* BertPreTokenizer on one normalized code point. */
static int pretokenize(encoder *e, int32_t c) {
    if (is_ws(c)) return end_word(e);
    if (!is_punct(c)) return word_add(e, c);
    int rc = end_word(e);
    if (!rc) rc = word_add(e, c);
    if (!rc) rc = end_word(e);
    return rc;
}

/* Index of the longest normalized added token at the queue's head, or -1. */
static int match_norm(const lathe_wordpiece *t, const normer *n) {
    const int32_t *q = n->q.v + n->head;
    size_t avail = n->q.n - n->head;
    int lo = 0, hi = t->n_norm;
    while (lo < hi) { /* first token whose first code point is >= q[0] */
        int mid = (lo + hi) / 2;
        if (t->added[t->norm_order[mid]].norm[0] < q[0]) lo = mid + 1;
        else hi = mid;
    }
    for (int i = lo; i < t->n_norm; i++) {
        const added_token *a = &t->added[t->norm_order[i]];
        if (a->norm[0] != q[0]) break;
        if ((size_t)a->nnorm <= avail && memcmp(a->norm, q, (size_t)a->nnorm * sizeof *q) == 0)
            return t->norm_order[i];
    }
    return -1;
}

static int run_encoder(encoder *e, normer *n) {
    const lathe_wordpiece *t = e->t;
    int32_t prev = -1;  /* the normalized code point before the head in this segment, for single_word */
    size_t skip = 0;    /* code points of a refused single_word match still to pass */
    size_t want = t->n_norm ? (size_t)t->max_norm + 1 : 1;
    while (!full(e)) {
        int rc = fill(n, want);
        if (rc) return rc;
        if (n->head == n->q.n) break;
        int32_t c = n->q.v[n->head];
        if (c < 0) { /* a raw added token: its own piece, and a new segment after it */
            rc = end_word(e);
            if (rc) return rc;
            emit_id(e, t->added[-1 - c].id);
            n->head++;
            prev = -1, skip = 0;
            continue;
        }
        if (t->n_norm && !skip) {
            int k = match_norm(t, n);
            if (k >= 0) {
                const added_token *a = &t->added[k];
                int ok = 1;
                if (a->single_word) {
                    size_t after = n->head + (size_t)a->nnorm;
                    ok = (prev < 0 || !is_word_char(prev)) &&
                         (after == n->q.n || n->q.v[after] < 0 || !is_word_char(n->q.v[after]));
                }
                if (ok) {
                    rc = end_word(e);
                    if (rc) return rc;
                    emit_id(e, a->id);
                    n->head += (size_t)a->nnorm;
                    prev = a->norm[a->nnorm - 1];
                    continue;
                }
                skip = (size_t)a->nnorm;
            }
        }
        if (skip) skip--;
        rc = pretokenize(e, c);
        if (rc) return rc;
        prev = c;
        n->head++;
    }
    return full(e) ? 0 : end_word(e);
}

int lathe_wordpiece_encode(const lathe_wordpiece *t, const char *text, size_t len, int max_len, int32_t *ids) {
    if (!t || !ids || (!text && len)) return lathe_fail(LATHE_EINVAL, "wordpiece encode: NULL argument");
    if (max_len < 2) return lathe_fail(LATHE_EINVAL, "wordpiece encode: max_len %d < 2", max_len);
    encoder e = {.t = t, .ids = ids, .cap = max_len - 2};
    e.key = malloc(t->max_piece + 1);
    if (!e.key) return lathe_fail(LATHE_ENOMEM, "tokenizer key");
    normer n;
    normer_init(&n, t, text ? text : "", len, 1);
    int rc = run_encoder(&e, &n);
    normer_free(&n);
    free(e.key), free(e.word.v), free(e.bytes), free(e.offs), free(e.pieces.v);
    if (rc) return rc;
    ids[0] = t->cls_id;
    ids[1 + e.n] = t->sep_id;
    return e.n + 2;
}

/* ---- loading ------------------------------------------------------------------------------------- */

int lathe_wordpiece_id(const lathe_wordpiece *t, const char *token) {
    size_t v;
    if (!t || !token) return -1;
    if (lathe_hashmap_get(t->added_map, token, &v)) return t->added[v].id;
    if (lathe_hashmap_get(t->vocab, token, &v)) return (int)v;
    return -1;
}

const char *lathe_wordpiece_token(const lathe_wordpiece *t, int id) {
    return t && id >= 0 && id < t->n_ids ? t->tokens[id] : NULL;
}

int lathe_wordpiece_vocab_size(const lathe_wordpiece *t) { return t ? t->n_ids : 0; }

void lathe_wordpiece_free(lathe_wordpiece *t) {
    if (!t) return;
    for (int i = 0; i < t->n_added; i++) free(t->added[i].content), free(t->added[i].norm);
    free(t->added), free(t->raw_order), free(t->norm_order), free(t->tokens), free(t->vocab_text), free(t->prefix);
    lathe_hashmap_free(t->vocab);
    lathe_hashmap_free(t->added_map);
    free(t);
}

/* The length of s[0, n) without trailing whitespace (Rust's str::trim_end). */
static size_t trim_end(const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    while (n) {
        size_t k = n - 1;
        while (k > 0 && n - k < 4 && (u[k] & 0xC0) == 0x80) k--;
        const unsigned char *p = u + k;
        int32_t c = decode(&p, u + n);
        if (p != u + n || !is_ws(c)) break;
        n = k;
    }
    return n;
}

/* vocab.txt: id = line number; each line loses trailing whitespace (as tokenizers' read_file); the
 * last of duplicate lines wins the lookup. */
static int load_vocab(lathe_wordpiece *t, const char *path) {
    size_t len;
    int rc = lathe_read_file(path, VOCAB_MAX_BYTES, &t->vocab_text, &len);
    if (rc) return rc;
    size_t lines = 0;
    for (size_t i = 0; i < len; i++) lines += t->vocab_text[i] == '\n';
    if (len && t->vocab_text[len - 1] != '\n') lines++;
    if (lines >= MAX_IDS)
        return lathe_fail(LATHE_EFORMAT, "vocab %s: %zu lines (at most %d)", path, lines, MAX_IDS - 1);
    t->n_lines = t->n_ids = (int)lines;
    t->tokens = calloc(lines ? lines : 1, sizeof *t->tokens);
    if (!t->tokens) return lathe_fail(LATHE_ENOMEM, "vocab of %zu tokens", lines);
    char *s = t->vocab_text, *end = s + len;
    for (int id = 0; id < t->n_lines; id++) {
        char *nl = memchr(s, '\n', (size_t)(end - s)), *e = nl ? nl : end;
        size_t n = trim_end(s, (size_t)(e - s));
        s[n] = 0;
        t->tokens[id] = s;
        /* a line with a NUL byte can never match a word (words hold no U+0000) */
        if (strlen(s) == n) {
            if ((rc = lathe_hashmap_put(t->vocab, s, (size_t)id))) return rc;
            if (n > t->max_piece) t->max_piece = n;
        }
        s = e + (e < end);
    }
    return 0;
}

static int add_token(lathe_wordpiece *t, const char *content, int single_word, int normalized) {
    if (!*content) return 0; /* tokenizers ignores empty ones */
    size_t k;
    if (lathe_hashmap_get(t->added_map, content, &k)) { /* again: the last flags win */
        t->added[k].single_word = single_word, t->added[k].normalized = normalized;
        return 0;
    }
    /* tokenizers' id: the vocab's, else the next after the vocab and the added ones */
    int id = -1;
    size_t v;
    if (lathe_hashmap_get(t->vocab, content, &v)) {
        id = (int)v;
    } else {
        int vsize = (int)lathe_hashmap_count(t->vocab), max = -1;
        for (int i = 0; i < t->n_added; i++) max = t->added[i].id > max ? t->added[i].id : max;
        id = max < 0 ? vsize : (max >= vsize || vsize == 0 ? max + 1 : vsize);
    }
    if (id >= MAX_IDS) return lathe_fail(LATHE_EFORMAT, "added token id %d (at most %d)", id, MAX_IDS - 1);
    added_token *a = realloc(t->added, (size_t)(t->n_added + 1) * sizeof *a);
    if (!a) return lathe_fail(LATHE_ENOMEM, "added tokens");
    t->added = a;
    a = &t->added[t->n_added];
    memset(a, 0, sizeof *a);
    a->len = strlen(content);
    a->content = strdup(content);
    if (!a->content) return lathe_fail(LATHE_ENOMEM, "added token");
    t->n_added++;
    a->id = id, a->single_word = single_word, a->normalized = normalized;
    for (const unsigned char *p = (const unsigned char *)content, *end = p + a->len; p < end;)
        a->last_cp = decode(&p, end);
    int rc = lathe_hashmap_put(t->added_map, content, (size_t)(t->n_added - 1));
    if (rc) return rc;
    if (id >= t->n_ids) {
        const char **tok = realloc(t->tokens, (size_t)(id + 1) * sizeof *tok);
        if (!tok) return lathe_fail(LATHE_ENOMEM, "vocab of %d tokens", id + 1);
        for (int i = t->n_ids; i <= id; i++) tok[i] = NULL;
        t->tokens = tok, t->n_ids = id + 1;
    }
    t->tokens[id] = a->content;
    return 0;
}

static int json_bool(const cJSON *o, const char *key, int dflt, int *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v)) return *out = dflt, 0;
    if (!cJSON_IsBool(v)) return lathe_fail(LATHE_EFORMAT, "\"%s\" is not a boolean", key);
    *out = cJSON_IsTrue(v);
    return 0;
}

static int json_type_is(const cJSON *o, const char *type) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "type");
    return cJSON_IsString(v) && strcmp(v->valuestring, type) == 0;
}

/* The parts of tokenizer.json lathe follows: added_tokens and the WordPiece settings; the normalizer,
 * pre-tokenizer and model, where given, must be the BERT uncased ones. */
static int load_json(lathe_wordpiece *t, const cJSON *j, char **unk) {
    if (!cJSON_IsObject(j)) return lathe_fail(LATHE_EFORMAT, "not a JSON object");
    const cJSON *norm = cJSON_GetObjectItemCaseSensitive(j, "normalizer");
    if (norm && !cJSON_IsNull(norm)) {
        int clean, chinese, lower, strip = 1, rc;
        const cJSON *sa = cJSON_GetObjectItemCaseSensitive(norm, "strip_accents");
        if (!json_type_is(norm, "BertNormalizer"))
            return lathe_fail(LATHE_EUNSUPPORTED, "normalizer is not BertNormalizer");
        if ((rc = json_bool(norm, "clean_text", 1, &clean)) ||
            (rc = json_bool(norm, "handle_chinese_chars", 1, &chinese)) || (rc = json_bool(norm, "lowercase", 1, &lower)))
            return rc;
        if (sa && !cJSON_IsNull(sa) && (rc = json_bool(norm, "strip_accents", 1, &strip))) return rc;
        if (!clean || !chinese || !lower || !strip)
            return lathe_fail(LATHE_EUNSUPPORTED,
                              "BertNormalizer without clean_text, handle_chinese_chars, strip_accents or lowercase");
    }
    const cJSON *pre = cJSON_GetObjectItemCaseSensitive(j, "pre_tokenizer");
    if (pre && !cJSON_IsNull(pre) && !json_type_is(pre, "BertPreTokenizer"))
        return lathe_fail(LATHE_EUNSUPPORTED, "pre_tokenizer is not BertPreTokenizer");
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(j, "model");
    if (model && !cJSON_IsNull(model)) {
        if (!cJSON_IsObject(model)) return lathe_fail(LATHE_EFORMAT, "\"model\" is not an object");
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(model, "type");
        if (type && !json_type_is(model, "WordPiece")) return lathe_fail(LATHE_EUNSUPPORTED, "model is not WordPiece");
        const cJSON *u = cJSON_GetObjectItemCaseSensitive(model, "unk_token");
        const cJSON *pf = cJSON_GetObjectItemCaseSensitive(model, "continuing_subword_prefix");
        const cJSON *mx = cJSON_GetObjectItemCaseSensitive(model, "max_input_chars_per_word");
        if (u && !cJSON_IsNull(u)) {
            if (!cJSON_IsString(u)) return lathe_fail(LATHE_EFORMAT, "\"unk_token\" is not a string");
            if (!(*unk = strdup(u->valuestring))) return lathe_fail(LATHE_ENOMEM, "unk token");
        }
        if (pf && !cJSON_IsNull(pf)) {
            if (!cJSON_IsString(pf))
                return lathe_fail(LATHE_EFORMAT, "\"continuing_subword_prefix\" is not a string");
            free(t->prefix);
            if (!(t->prefix = strdup(pf->valuestring))) return lathe_fail(LATHE_ENOMEM, "subword prefix");
            t->prefix_len = strlen(t->prefix);
        }
        if (mx && !cJSON_IsNull(mx)) {
            if (!cJSON_IsNumber(mx) || !(mx->valuedouble >= 0) || mx->valuedouble != floor(mx->valuedouble))
                return lathe_fail(LATHE_EFORMAT, "\"max_input_chars_per_word\" is not a count");
            t->max_word_chars = mx->valuedouble > INT_MAX - 2 ? INT_MAX - 2 : (int)mx->valuedouble;
        }
    }
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(j, "added_tokens");
    if (!list || cJSON_IsNull(list)) return 0;
    if (!cJSON_IsArray(list)) return lathe_fail(LATHE_EFORMAT, "\"added_tokens\" is not an array");
    const cJSON *a;
    int i = 0;
    cJSON_ArrayForEach(a, list) {
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(a, "content");
        int single, special, normalized, rc;
        if (!cJSON_IsObject(a) || !cJSON_IsString(content))
            return lathe_fail(LATHE_EFORMAT, "added token %d has no \"content\" string", i);
        if ((rc = json_bool(a, "single_word", 0, &single)) || (rc = json_bool(a, "special", 0, &special)) ||
            (rc = json_bool(a, "normalized", !special, &normalized)))
            return lathe_fail_context(-rc, "added token %d", i);
        if ((rc = add_token(t, content->valuestring, single, normalized))) return rc;
        i++;
    }
    return 0;
}

typedef struct {
    int32_t first; /* first byte (raw) or code point (normalized) */
    size_t len;    /* longest first among equal firsts */
    int index;
} match_key;

static int cmp_key(const void *a, const void *b) {
    const match_key *x = a, *y = b;
    if (x->first != y->first) return x->first < y->first ? -1 : 1;
    if (x->len != y->len) return x->len > y->len ? -1 : 1;
    return (x->index > y->index) - (x->index < y->index);
}

static void sort_keys(match_key *k, int n, int *order) {
    qsort(k, (size_t)n, sizeof *k, cmp_key);
    for (int i = 0; i < n; i++) order[i] = k[i].index;
}

/* Normalizes the normalized added tokens (as tokenizers does before matching them) and orders both
 * kinds for matching, longest first. */
static int index_added(lathe_wordpiece *t) {
    t->raw_order = malloc(((size_t)t->n_added + 1) * sizeof *t->raw_order);
    t->norm_order = malloc(((size_t)t->n_added + 1) * sizeof *t->norm_order);
    if (!t->raw_order || !t->norm_order) return lathe_fail(LATHE_ENOMEM, "added token index");
    match_key *raw = malloc(((size_t)t->n_added + 1) * sizeof *raw);
    match_key *nk = malloc(((size_t)t->n_added + 1) * sizeof *nk);
    int n_raw = 0, rc = 0;
    t->n_norm = 0;
    if (!raw || !nk) rc = lathe_fail(LATHE_ENOMEM, "added token index");
    for (int i = 0; i < t->n_added && !rc; i++) {
        added_token *a = &t->added[i];
        if (!a->normalized) {
            raw[n_raw++] = (match_key){(unsigned char)a->content[0], a->len, i};
            continue;
        }
        normer n;
        normer_init(&n, t, a->content, a->len, 0);
        rc = fill(&n, SIZE_MAX);
        if (!rc && n.q.n > (size_t)INT_MAX / 2) rc = lathe_fail(LATHE_EFORMAT, "added token too long");
        if (!rc) {
            a->norm = n.q.v, a->nnorm = (int)n.q.n;
            n.q.v = NULL;
        }
        normer_free(&n);
        if (rc || !a->nnorm) continue; /* one that normalizes to nothing never matches */
        nk[t->n_norm++] = (match_key){a->norm[0], (size_t)a->nnorm, i};
        if (a->nnorm > t->max_norm) t->max_norm = a->nnorm;
    }
    if (!rc) {
        sort_keys(raw, n_raw, t->raw_order);
        sort_keys(nk, t->n_norm, t->norm_order);
    }
    free(raw), free(nk);
    if (rc) return rc;
    memset(t->raw_first, 0, sizeof t->raw_first);
    for (int i = 0; i < n_raw; i++) t->raw_first[(unsigned char)t->added[t->raw_order[i]].content[0] + 1]++;
    for (int b = 1; b < 257; b++) t->raw_first[b] += t->raw_first[b - 1];
    return 0;
}

int lathe_wordpiece_open(const char *dir, lathe_wordpiece **out) {
    static const char *const bert_specials[] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
    if (!dir || !out) return lathe_fail(LATHE_EINVAL, "wordpiece open: NULL argument");
    *out = NULL;
    lathe_wordpiece *t = calloc(1, sizeof *t);
    char path[4096], *unk = NULL, *json = NULL;
    cJSON *j = NULL;
    size_t jlen;
    int rc = 0;
    if (!t) return lathe_fail(LATHE_ENOMEM, "tokenizer");
    t->vocab = lathe_hashmap_create();
    t->added_map = lathe_hashmap_create();
    t->prefix = strdup("##");
    t->prefix_len = 2;
    t->max_word_chars = 100;
    if (!t->vocab || !t->added_map || !t->prefix) rc = lathe_fail(LATHE_ENOMEM, "tokenizer");
    if (!rc && (size_t)snprintf(path, sizeof path, "%s/vocab.txt", dir) >= sizeof path)
        rc = lathe_fail(LATHE_EINVAL, "model folder name too long");
    if (!rc) rc = load_vocab(t, path);
    if (!rc && (size_t)snprintf(path, sizeof path, "%s/tokenizer.json", dir) >= sizeof path)
        rc = lathe_fail(LATHE_EINVAL, "model folder name too long");
    if (!rc) {
        int r = lathe_read_file(path, JSON_MAX_BYTES, &json, &jlen);
        if (r == -LATHE_ENOTFOUND) {
            lathe_clear_error();
            for (size_t i = 0; i < COUNT(bert_specials) && !rc; i++)
                if (lathe_wordpiece_id(t, bert_specials[i]) >= 0) rc = add_token(t, bert_specials[i], 0, 0);
        } else if (r) {
            rc = r;
        } else if (!(j = lathe_json_parse(json, jlen, NULL))) {
            rc = lathe_fail(LATHE_EFORMAT, "%s: not valid JSON", path);
        } else if ((rc = load_json(t, j, &unk))) {
            if (rc != -LATHE_ENOMEM) rc = lathe_fail_context(-rc, "%s", path);
        }
    }
    if (!rc) rc = index_added(t);
    if (!rc) {
        size_t v = 0;
        const char *u = unk ? unk : "[UNK]";
        t->cls_id = lathe_wordpiece_id(t, "[CLS]");
        t->sep_id = lathe_wordpiece_id(t, "[SEP]");
        if (!lathe_hashmap_get(t->vocab, u, &v)) rc = lathe_fail(LATHE_EFORMAT, "%s/vocab.txt has no %s", dir, u);
        else if (t->cls_id < 0 || t->sep_id < 0)
            rc = lathe_fail(LATHE_EFORMAT, "%s/vocab.txt has no [CLS] or [SEP]", dir);
        t->unk_id = (int)v;
    }
    cJSON_Delete(j);
    free(json), free(unk);
    if (rc) {
        lathe_wordpiece_free(t);
        return rc;
    }
    *out = t;
    return 0;
}
