/* html.h - what the self-contained HTML reports share: escaping text and inlining PNGs as
 * base64 data URIs (no server, no external files). */
#ifndef LATHE_EVAL_HTML_H
#define LATHE_EVAL_HTML_H
#include <stddef.h>
#include <stdio.h>
#ifdef __cplusplus
extern "C" {
#endif

/* Writes s with &, <, >, " and ' escaped. */
void lathe_html_escape(FILE *f, const char *s);
/* Writes data in base64 (RFC 4648, padded, no line breaks). */
void lathe_base64_write(FILE *f, const unsigned char *data, size_t len);
/* Writes <img src="data:image/png;base64,..." alt="ALT"> for PNG bytes. */
void lathe_html_png(FILE *f, const unsigned char *png, size_t len, const char *alt);
/* Writes s for a Markdown table cell: | escaped, newlines as spaces, and <, > and & as HTML entities
 * (Markdown renders raw HTML). */
void lathe_md_cell(FILE *f, const char *s);

#ifdef __cplusplus
}
#endif
#endif
