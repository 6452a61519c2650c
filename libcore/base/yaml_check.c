/* yaml_check.c - see yaml_check.h. lathe_yaml_explicit_key is a line scanner that knows as much of YAML as it must to tell a
 * `?` indicator from text: where a node may begin (a line's start, after `- `, `: `, `? `, `[`, `{`,
 * `,`, a document marker, an anchor or a tag), quoted scalars (which may span lines), comments and
 * block scalars (`|` or `>`: the lines indented deeper than the one that opened them). */
#include "yaml_check.h"

#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "utf8.h"
#include "yaml_scalar.h"

static int blank(char c) { return c == ' ' || c == '\t' || c == '\r'; }

size_t lathe_yaml_explicit_key(const char *s, size_t n) {
    char quote = 0;   /* '\'' or '"' inside a quoted scalar */
    long block = -1;  /* inside a block scalar: the indentation of the line that opened it */
    size_t i = n >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0; /* after a byte order mark */
    while (i < n) {
        size_t line = i, indent = 0, eol = i;
        while (eol < n && s[eol] != '\n') eol++;
        while (i < eol && s[i] == ' ') i++, indent++;
        if (block >= 0) {
            size_t j = i;
            while (j < eol && blank(s[j])) j++;
            if (j == eol || (long)indent > block) { /* blank, or the block scalar's text */
                i = eol + 1;
                continue;
            }
            block = -1;
        }
        int node = !quote; /* a node may begin here */
        if (!quote && i == line && eol - i >= 3 && (s[i] == '-' || s[i] == '.') && s[i + 1] == s[i] &&
            s[i + 2] == s[i] && (eol - i == 3 || blank(s[i + 3])))
            i += 3; /* a document marker, `---` or `...`: a node may follow on its line */
        for (; i < eol; i++) {
            char c = s[i];
            if (quote == '"') {
                if (c == '\\') i++;
                else if (c == '"') quote = 0, node = 0;
                continue;
            }
            if (quote == '\'') {
                if (c == '\'' && i + 1 < eol && s[i + 1] == '\'') i++; /* '' is a quote inside */
                else if (c == '\'') quote = 0, node = 0;
                continue;
            }
            if (blank(c)) continue;
            int blank_after = i + 1 >= eol || blank(s[i + 1]);
            if (c == '#' && (i == line || blank(s[i - 1]))) break; /* a comment, to the line's end */
            if (node) {
                if (c == '?' && blank_after) return i;
                if (c == '-' && blank_after) continue; /* a sequence entry: a node follows */
                if (c == '"' || c == '\'') {
                    quote = c;
                    continue;
                }
                if (c == '|' || c == '>') { /* a block scalar: its header, then deeper lines */
                    block = (long)indent;
                    break;
                }
                if (c == '&' || c == '!') { /* an anchor or a tag: the node follows it */
                    while (i + 1 < eol && !blank(s[i + 1])) i++;
                    continue;
                }
                if (c == '[' || c == '{' || c == ',') continue;
                node = 0; /* a plain scalar or an alias */
            }
            if ((c == ':' && blank_after) || c == '[' || c == '{' || c == ',') node = 1;
        }
        i = eol + 1;
    }
    return n;
}

static void ignore_diag(struct fy_diag *diag, void *user, const char *buf, size_t len) {
    (void)diag, (void)user, (void)buf, (void)len;
}

int lathe_yaml_parse(const char *text, size_t len, const char *name, struct fy_document **doc) {
    *doc = NULL;
    size_t bad = lathe_utf8_yaml_unprintable(text, len), line, col;
    if (bad < len) {
        lathe_utf8_line_column(text, bad, &line, &col);
        return lathe_fail(LATHE_EFORMAT, "%s: line %zu column %zu: byte 0x%02x is not printable UTF-8 text", name, line,
                          col, (unsigned char)text[bad]);
    }
    if ((bad = lathe_yaml_explicit_key(text, len)) < len) {
        lathe_utf8_line_column(text, bad, &line, &col);
        return lathe_fail(LATHE_EFORMAT, "%s: line %zu column %zu: '?' starts an explicit (complex) key, which lathe "
                          "does not accept (quote the text if it is a value)", name, line, col);
    }
    struct fy_diag_cfg dcfg;
    fy_diag_cfg_default(&dcfg);
    dcfg.fp = NULL, dcfg.output_fn = ignore_diag, dcfg.colorize = false;
    struct fy_diag *diag = fy_diag_create(&dcfg);
    if (!diag) return lathe_fail(LATHE_ENOMEM, "%s: YAML diagnostics", name);
    fy_diag_set_collect_errors(diag, true);
    struct fy_parse_cfg cfg = {.flags = FYPCF_QUIET, .diag = diag};
    *doc = fy_document_build_from_string(&cfg, text, len);
    int rc = 0;
    if (!*doc) {
        void *iter = NULL;
        struct fy_diag_error *err = fy_diag_errors_iterate(diag, &iter);
        rc = err ? lathe_fail(LATHE_EFORMAT, "%s: not valid YAML: line %d column %d: %s", name, err->line, err->column,
                              err->msg ? err->msg : "parse error")
                 : lathe_fail(LATHE_EFORMAT, "%s: not valid YAML: line 1: empty or unreadable", name);
    }
    fy_diag_destroy(diag);
    return rc;
}

/* The value of a single-quoted scalar from its text between the quotes (YAML 1.2, 7.3.2): '' is a
 * quote; a line break with the blanks around it folds to a space, k > 1 breaks (empty lines
 * between) to k - 1 newlines. out holds n bytes at least; returns the value's length. */
static size_t single_quoted_value(const char *raw, size_t n, char *out) {
    size_t o = 0, line = 0; /* line: where the current line's text begins in out */
    for (size_t i = 0; i < n;) {
        char c = raw[i];
        if (c == '\'' && i + 1 < n && raw[i + 1] == '\'') {
            out[o++] = '\'';
            i += 2;
        } else if (c == '\n' || c == '\r') {
            while (o > line && (out[o - 1] == ' ' || out[o - 1] == '\t')) o--;
            size_t breaks = 0;
            for (; i < n && (blank(raw[i]) || raw[i] == '\n'); i++)
                breaks += raw[i] == '\n' || (raw[i] == '\r' && !(i + 1 < n && raw[i + 1] == '\n'));
            if (breaks == 1) out[o++] = ' ';
            for (size_t k = 1; k < breaks; k++) out[o++] = '\n';
            line = o;
        } else {
            out[o++] = c;
            i++;
        }
    }
    return o;
}

char *lathe_yaml_scalar_copy(struct fy_node *node, const lathe_yaml_source *src, size_t *len) {
    struct fy_token *tok = fy_node_get_style(node) == FYNS_SINGLE_QUOTED ? fy_node_get_scalar_token(node) : NULL;
    const struct fy_mark *a = tok ? fy_token_start_mark(tok) : NULL, *b = tok ? fy_token_end_mark(tok) : NULL;
    /* the marks bound the text between the quotes; anything else and libfyaml's text is taken */
    if (a && b && src && a->input_pos >= 1 && a->input_pos <= b->input_pos && b->input_pos < src->len &&
        src->text[a->input_pos - 1] == '\'' && src->text[b->input_pos] == '\'') {
        char *out = malloc(b->input_pos - a->input_pos + 1);
        if (!out) return NULL;
        *len = single_quoted_value(src->text + a->input_pos, b->input_pos - a->input_pos, out);
        out[*len] = '\0';
        return out;
    }
    size_t n = 0;
    const char *s = lathe_yaml_scalar(node, &n);
    char *out = malloc(n + 1);
    if (!out) return NULL;
    if (n) memcpy(out, s, n);
    out[n] = '\0';
    *len = n;
    return out;
}
