/* yaml_block.c - see yaml_block.h. The reader follows PyYAML's scan_block_scalar step by step
 * (which follows YAML's productions l-literal-content and l-folded-content), on bytes: only
 * spaces indent, and \r\n, \r and \n are line breaks that read as \n. */
#include "yaml_block.h"

static int is_break(char c) { return c == '\n' || c == '\r'; }
static int is_blank(char c) { return c == ' ' || c == '\t'; }

/* Moves *i past a line break at text[*i] and returns 1, or returns 0 where there is none. */
static int take_break(const char *t, size_t len, size_t *i) {
    if (*i >= len || !is_break(t[*i])) return 0;
    *i += t[*i] == '\r' && *i + 1 < len && t[*i + 1] == '\n' ? 2 : 1;
    return 1;
}

typedef struct {
    char style;    /* '|' or '>' */
    char chomp;    /* '-' strip, '+' keep, 0 clip */
    int increment; /* the indentation indicator, 0 when absent */
} block_header;

/* Reads the indicators after text[h] and what may follow them on the line; 0 when they are valid
 * up to line_end. */
static int read_header(const char *t, size_t h, size_t line_end, block_header *hd) {
    *hd = (block_header){.style = t[h]};
    size_t i = h + 1;
    for (int k = 0; k < 2 && i < line_end; k++, i++) {
        if ((t[i] == '-' || t[i] == '+') && !hd->chomp)
            hd->chomp = t[i];
        else if (t[i] >= '1' && t[i] <= '9' && !hd->increment)
            hd->increment = t[i] - '0';
        else
            break;
    }
    size_t blanks = i;
    while (i < line_end && is_blank(t[i])) i++;
    return i == line_end || (t[i] == '#' && i > blanks) ? 0 : -1;
}

size_t lathe_yaml_block_header(const char *text, size_t from, size_t line_end) {
    block_header hd;
    for (size_t p = from; p < line_end; p++)
        if ((text[p] == '|' || text[p] == '>') && (p == 0 || is_blank(text[p - 1]) || is_break(text[p - 1])) &&
            !read_header(text, p, line_end, &hd))
            return p;
    return line_end;
}

/* PyYAML's scan_block_scalar_breaks: the indentation of this line and the empty lines after it, up
 * to indent columns each; returns how many line breaks it passed. */
static size_t take_breaks(const char *t, size_t len, size_t *i, int *col, int indent) {
    size_t breaks = 0;
    for (;;) {
        while (*col < indent && *i < len && t[*i] == ' ') ++*i, ++*col;
        if (!take_break(t, len, i)) return breaks;
        breaks++;
        *col = 0;
    }
}

/* Whether t[i, end) is only blanks, line breaks and comments. Where libfyaml and YAML end a block
 * scalar in different places with only such lines between, no other node is there: libfyaml takes
 * a comment line less indented than the content as content (`a:` `  b: |` `  # c`) and one under
 * an item whose `-` is on the line before (`-` `  |` ` # c`) as a comment, where YAML does the
 * opposite. */
static int only_comments(const char *t, size_t i, size_t end) {
    while (i < end) {
        while (i < end && is_blank(t[i])) i++;
        if (i < end && t[i] == '#' && (i == 0 || is_blank(t[i - 1]) || is_break(t[i - 1])))
            while (i < end && !is_break(t[i])) i++;
        if (i < end && !take_break(t, end, &i)) return 0;
    }
    return 1;
}

int lathe_yaml_block_value(const char *t, size_t len, size_t header, size_t start, size_t end, int parent_indent,
                           char *out, size_t *olen) {
    size_t line_end = header;
    while (line_end < len && !is_break(t[line_end])) line_end++;
    block_header hd;
    size_t after = line_end;
    if (header >= len || read_header(t, header, line_end, &hd) || (take_break(t, len, &after), after != start) ||
        end < start || end > len || (hd.increment && parent_indent == LATHE_YAML_INDENT_UNKNOWN))
        return -1;
    int min_indent = parent_indent + 1 > 1 ? parent_indent + 1 : 1, indent, col = 0;
    size_t i = start, o = 0, breaks = 0;
    if (!hd.increment) { /* the indentation is the deepest of the leading lines' */
        int deepest = 0;
        while (i < len && (t[i] == ' ' || is_break(t[i]))) {
            if (take_break(t, len, &i)) {
                breaks++;
                col = 0;
            } else if (++i, ++col > deepest) {
                deepest = col;
            }
        }
        indent = deepest > min_indent ? deepest : min_indent;
    } else {
        indent = min_indent + hd.increment - 1;
        breaks = take_breaks(t, len, &i, &col, indent);
    }
    int last_break = 0;
    while (col == indent && i < len) {
        for (; breaks; breaks--) out[o++] = '\n';
        int text_line = !is_blank(t[i]); /* a folded line break joins two such lines with a space */
        while (i < len && !is_break(t[i])) out[o++] = t[i++];
        last_break = take_break(t, len, &i);
        col = 0;
        breaks = take_breaks(t, len, &i, &col, indent);
        if (col != indent || i >= len) break;
        if (hd.style == '>' && last_break && text_line && !is_blank(t[i])) {
            if (!breaks) out[o++] = ' ';
        } else if (last_break) {
            out[o++] = '\n';
        }
    }
    if (hd.chomp != '-' && last_break) out[o++] = '\n';
    if (hd.chomp == '+')
        for (; breaks; breaks--) out[o++] = '\n';
    *olen = o;
    return i < end ? only_comments(t, i, end) - 1 : only_comments(t, end, i) - 1;
}
