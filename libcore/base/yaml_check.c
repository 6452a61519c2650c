/* yaml_check.c - see yaml_check.h. lathe_yaml_explicit_key is a line scanner that knows as much of YAML as it must to tell a
 * `?` indicator from text: where a node may begin (a line's start, after `- `, `: `, `? `, a
 * document marker, an anchor or a tag, and inside flow collections after `[`, `{` and `,`),
 * quoted scalars (which may span lines), comments and block scalars (`|` or `>`: the lines indented
 * deeper than the key or `-` their header's line began last). Lines end at \n or \r, as YAML's
 * do. A quote it takes for a quoted scalar's start may be text inside a plain scalar continued from
 * the line before (`a: x` then `  "y`), which would hide the lines after it; so it scans twice, the
 * second time trusting only quotes that close on their own line, and takes the first `?` either
 * pass finds. */
#include "yaml_check.h"

#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "utf8.h"
#include "yaml_block.h"
#include "yaml_scalar.h"

static int blank(char c) { return c == ' ' || c == '\t' || c == '\r'; }

static int line_break(char c) { return c == '\n' || c == '\r'; }

/* Where the line holding t[at] begins. */
static size_t line_start_of(const char *t, size_t at) {
    while (at > 0 && !line_break(t[at - 1])) at--;
    return at;
}

/* Where the text of the line before the one beginning at t[line] (line > 0) ends: at its break. */
static size_t line_before_end(const char *t, size_t line) {
    return line - 1 - (line >= 2 && t[line - 2] == '\r' && t[line - 1] == '\n');
}

/* Where the quoted scalar opened by s[at] closes on its own line, or eol where it does not. */
static size_t quote_close(const char *s, size_t at, size_t eol) {
    for (size_t i = at + 1; i < eol; i++) {
        if (s[at] == '"' && s[i] == '\\') i++;
        else if (s[at] == '\'' && s[i] == '\'' && i + 1 < eol && s[i + 1] == '\'') i++;
        else if (s[i] == s[at]) return i;
    }
    return eol;
}

/* One pass of lathe_yaml_explicit_key's scan. With trust_multiline set, a quote where a node may
 * begin opens a quoted scalar that may span lines; without it, only one closed on its own line
 * does, and any other is read as plain text (the lines after it scanned as YAML). */
static size_t explicit_key_scan(const char *s, size_t n, int trust_multiline) {
    char quote = 0;   /* '\'' or '"' inside a quoted scalar */
    long block = -1;  /* inside a block scalar: the indentation of the line that opened it */
    long flow = 0;    /* inside how many flow collections ([ or {) */
    size_t i = n >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0; /* after a byte order mark */
    while (i < n) {
        size_t line = i, indent = 0, eol = i;
        while (eol < n && !line_break(s[eol])) eol++;
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
        if (!quote && indent == 0 && i < eol && s[i] == '%') { /* a directive: no node, no scalar opens */
            i = eol + 1;
            continue;
        }
        int node = !quote;   /* a node may begin here */
        size_t begun = indent; /* the column of the last node begun on this line (a key, an item) */
        if (!quote && i == line && eol - i >= 3 && (s[i] == '-' || s[i] == '.') && s[i + 1] == s[i] &&
            s[i + 2] == s[i] && (eol - i == 3 || blank(s[i + 3])))
            i += 3, flow = 0; /* a document marker, `---` or `...`: a node may follow on its line */
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
                if (c == '|' || c == '>') { /* a block scalar: its header, then the lines deeper than */
                    block = (long)begun; /* the collection it is in, whose key or item began last */
                    break;
                }
                if (c == '&' || c == '!') { /* an anchor or a tag: the node follows it */
                    while (i + 1 < eol && !blank(s[i + 1]) && !(flow > 0 && strchr(",[]{}", s[i + 1]))) i++;
                    continue;
                }
                begun = i - line;
                if (c == '-' && blank_after) continue; /* a sequence entry: a node follows */
                if ((c == '"' || c == '\'') && (trust_multiline || quote_close(s, i, eol) < eol)) {
                    quote = c;
                    continue;
                }
                if (c == '[' || c == '{') {
                    flow++;
                    continue;
                }
                node = 0; /* a plain scalar or an alias */
            }
            /* in a block plain scalar, brackets and commas are text; in a flow collection they end it */
            if (flow > 0 && (c == '[' || c == '{')) flow++;
            if (flow > 0 && (c == ']' || c == '}')) flow--;
            if ((c == ':' && (blank_after || flow > 0)) || (flow > 0 && (c == ',' || c == '[' || c == '{'))) node = 1;
        }
        i = eol + 1;
    }
    return n;
}

size_t lathe_yaml_explicit_key(const char *s, size_t n) {
    size_t trusting = explicit_key_scan(s, n, 1), wary = explicit_key_scan(s, n, 0);
    return trusting < wary ? trusting : wary;
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

/* Where a node that begins at t[at] (its properties included) stands on its line: what comes
 * before it must be spaces and `-` indicators (ASCII: their bytes are columns) and node properties
 * (`&anchor`, `!tag`). Sets *line to the line's start and *node to where the spaces and `-`s end
 * (the node's first property, or the node); -1 when other text comes first. */
static int node_place(const char *t, size_t at, size_t *line, size_t *node) {
    size_t s = line_start_of(t, at), p = s, q;
    while (p < at && (t[p] == ' ' || t[p] == '-')) p++;
    for (q = p; q < at && (t[q] == '&' || t[q] == '!');) {
        while (q < at && t[q] != ' ' && t[q] != '\t') q++; /* the property */
        while (q < at && (t[q] == ' ' || t[q] == '\t')) q++; /* its separation */
    }
    if (q != at || p - s > 1000) return -1;
    *line = s, *node = p;
    return 0;
}

/* The column of the `-` of the sequence item whose node begins at t[at], on the line starting at
 * line: the last `-` before the node's properties, on that line or, where only spaces come before
 * them, ending the line before (`-` then the node indented below it); LATHE_YAML_INDENT_UNKNOWN
 * where the text shows neither. */
static int item_dash(const char *t, size_t line, size_t at) {
    size_t s, p;
    if (node_place(t, at, &s, &p) || s != line) return LATHE_YAML_INDENT_UNKNOWN;
    while (p > s && t[p - 1] != '-') p--; /* the item's `-` is the last before its properties */
    if (p == s && line > 0) { /* none before the node here: the line before must end with it */
        size_t end = line_before_end(t, line);
        while (end > 0 && (t[end - 1] == ' ' || t[end - 1] == '\t')) end--;
        if (node_place(t, end, &s, &p)) return LATHE_YAML_INDENT_UNKNOWN;
        while (p > s && t[p - 1] != '-') p--;
    }
    return p > s ? (int)(p - 1 - s) : LATHE_YAML_INDENT_UNKNOWN;
}

/* The indentation of the collection holding the block scalar node whose header line is
 * t[line_start, line_end) (-1 at the document's root; LATHE_YAML_INDENT_UNKNOWN when the text does
 * not say it plainly: a key or a `-` behind other text, or on another line than the header), and
 * where on that line its indicator is; -1 when there is none. PyYAML's rule: a mapping is indented
 * where its key's first property or the key begins, a sequence where the item's `-` is. */
static int block_parent(struct fy_node *node, const char *t, size_t line_start, size_t line_end, int *indent,
                        size_t *indicator) {
    struct fy_node *parent = fy_node_get_parent(node);
    size_t from = line_start, s, p;
    *indent = parent ? LATHE_YAML_INDENT_UNKNOWN : -1;
    if (parent && fy_node_is_mapping(parent)) {
        void *it = NULL;
        struct fy_node_pair *pair;
        while ((pair = fy_node_mapping_iterate(parent, &it)) && fy_node_pair_value(pair) != node) {}
        struct fy_node *key = pair ? fy_node_pair_key(pair) : NULL;
        struct fy_token *tok = key && fy_node_is_scalar(key) ? fy_node_get_scalar_token(key) : NULL;
        size_t ks = tok ? fy_token_start_mark(tok)->input_pos : 0, ke = tok ? fy_token_end_mark(tok)->input_pos : 0;
        enum fy_node_style style = tok ? fy_node_get_style(key) : FYNS_ANY;
        int quoted = style == FYNS_SINGLE_QUOTED || style == FYNS_DOUBLE_QUOTED;
        if (tok && ks >= (size_t)quoted && ke + quoted <= line_end) {
            ks -= quoted, ke += quoted; /* the marks of a quoted key are inside its quotes */
            if (!node_place(t, ks, &s, &p)) *indent = (int)(p - s);
            if (ke >= line_start) from = ke;
        }
    }
    *indicator = lathe_yaml_block_header(t, from, line_end);
    if (*indicator == line_end) return -1;
    if (parent && fy_node_is_sequence(parent)) *indent = item_dash(t, line_start, *indicator);
    return 0;
}

/* A block scalar's value read from the text (yaml_block.h says why). NULL when out of memory, or
 * with -LATHE_EFORMAT's message where the text does not say it by YAML's rules: libfyaml 0.7.12
 * accepts some block scalars YAML does not (a header `|2#`, content no deeper than its key's) and
 * formats some of those from bytes it never wrote (docs/RELIABILITY.md, finding 23), so they are
 * refused, as is the rare valid one whose indentation indicator needs a collection indentation the
 * text does not show plainly. */
static char *block_scalar_copy(struct fy_node *node, struct fy_token *tok, const lathe_yaml_source *src, size_t *len) {
    const char *t = src->text;
    const struct fy_mark *a = fy_token_start_mark(tok);
    size_t start = a->input_pos, end = fy_token_end_mark(tok)->input_pos, line_end = start, line_start, indicator;
    int indent, header_line = a->line + (a->column != 0); /* 1-based: the line before the content's */
    if (start > src->len || end > src->len) goto refuse;
    if (start > 0 && line_break(t[start - 1]))
        line_end = line_before_end(t, start);
    else if (start != src->len)
        goto refuse;
    line_start = line_start_of(t, line_end);
    if (block_parent(node, t, line_start, line_end, &indent, &indicator)) goto refuse;
    char *out = malloc(src->len - start + 1);
    if (!out) return NULL;
    if (lathe_yaml_block_value(t, src->len, indicator, start, end, indent, out, len)) {
        free(out);
        goto refuse;
    }
    out[*len] = '\0';
    return out;
refuse:
    lathe_fail(LATHE_EFORMAT,
               "line %d: a block scalar (| or >) that lathe cannot read as YAML does: check its header (a space "
               "before any comment) and indent its text deeper than its key", header_line);
    return NULL;
}

char *lathe_yaml_scalar_copy(struct fy_node *node, const lathe_yaml_source *src, size_t *len) {
    enum fy_node_style style = fy_node_get_style(node);
    struct fy_token *block = style == FYNS_LITERAL || style == FYNS_FOLDED ? fy_node_get_scalar_token(node) : NULL;
    if (block && src) return block_scalar_copy(node, block, src, len);
    struct fy_token *tok = style == FYNS_SINGLE_QUOTED ? fy_node_get_scalar_token(node) : NULL;
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
