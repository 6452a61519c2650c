/* yaml_check.c - see yaml_check.h. lathe_yaml_explicit_key is a line scanner that knows as much of YAML as it must to tell a
 * `?` indicator from text: where a node may begin (a line's start, after `- `, `: `, `? `, `[`, `{`,
 * `,`, a document marker, an anchor or a tag), quoted scalars (which may span lines), comments and
 * block scalars (`|` or `>`: the lines indented deeper than the one that opened them). */
#include "yaml_check.h"

#include <string.h>

#include "error.h"
#include "utf8.h"

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
