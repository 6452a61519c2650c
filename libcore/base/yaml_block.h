/* yaml_block.h - the value of a YAML block scalar (`|` literal, `>` folded), read from the source
 * text. libfyaml 0.7.12 (Debian) formats some block scalars wrongly: a folded scalar with a
 * more-indented line after an empty one loses a line break and gains a NUL byte; clip chomping at
 * the end of a text without a final line break keeps a break YAML says it drops; `a: |+` followed
 * by a line break and nothing else comes back as a NUL byte; and a scalar whose content is only
 * blanks at the end of the text is formatted from bytes it never wrote (docs/RELIABILITY.md,
 * finding 23). The rules here are YAML 1.2's chapter 8.1, as PyYAML reads them: its values are the
 * tests' expectations. */
#ifndef LATHE_BASE_YAML_BLOCK_H
#define LATHE_BASE_YAML_BLOCK_H

#include <stddef.h>

/* The value of the block scalar whose header line ends just before text[start] (its indicator at
 * text[header]) and whose content the parser ended at text[end], inside a collection indented
 * parent_indent columns (-1 at the document's root; LATHE_YAML_INDENT_UNKNOWN where that cannot be
 * told, which matters only with an indentation indicator). Writes at most len - start bytes to out
 * and their count to *olen. Returns 0, or -1 when the header is not one YAML allows, it has an
 * indentation indicator and the collection's indentation is unknown, or this reading of the
 * content ends elsewhere than end (but for comment lines the two read differently): libfyaml
 * accepts such texts, which YAML does not, and the caller refuses them. Without an indicator an
 * unknown indentation is safe: when this reading ends where the parser's did, the content's own
 * indentation decided it. */
#define LATHE_YAML_INDENT_UNKNOWN (-2)
int lathe_yaml_block_value(const char *text, size_t len, size_t header, size_t start, size_t end, int parent_indent,
                           char *out, size_t *olen);

/* Where the block scalar indicator (`|` or `>`) of a header line text[from, line_end) is: the first
 * one preceded by a blank or the line's start and followed only by chomping and indentation
 * indicators, blanks and a comment. line_end when there is none. */
size_t lathe_yaml_block_header(const char *text, size_t from, size_t line_end);

#endif
