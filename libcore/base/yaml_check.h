/* yaml_check.h - how lathe hands YAML to libfyaml, and what it refuses first. libfyaml 0.7.12
 * (Debian) crashes on some invalid YAML inside an explicit key: `? a:` followed by a tab and `-`,
 * `:` or `?` ends in a NULL write in its error path (fy_indent_vacuum_internal, from
 * fy_parse_cleanup; upstream's issue pantoniou/libfyaml#57 is of that family), from a spec, an
 * override or a YOLO dataset's data.yaml. lathe's YAML (specs, overrides, data.yaml) never needs
 * explicit keys, so they are refused, with their place, before libfyaml sees the text. */
#ifndef LATHE_BASE_YAML_CHECK_H
#define LATHE_BASE_YAML_CHECK_H
#include <libfyaml.h>
#include <stddef.h>
#ifdef __cplusplus
extern "C" {
#endif

/* Offset of the first explicit-key indicator of s (a `?` where a node begins, followed by a blank
 * or the line's end), outside quoted scalars, comments and block scalars; n when there is none.
 * It errs on the side of refusing: a quoted scalar that spans lines is also read as if its quote
 * were text, so a `?` starting one of its later lines counts too. */
size_t lathe_yaml_explicit_key(const char *s, size_t n);
/* The one way lathe hands a YAML text to libfyaml (specs, overrides, data.yaml): the text must be
 * YAML-printable UTF-8 (lathe_utf8_yaml_unprintable: libfyaml loops forever on some invalid UTF-8)
 * without explicit keys, and libfyaml's errors are collected, never printed (printing draws the
 * source line, and that code reads through a wild pointer on some texts: docs/RELIABILITY.md,
 * finding 19). On success *doc is the document (fy_document_destroy it); else -LATHE_EFORMAT
 * naming `name`, the line and column, or -LATHE_ENOMEM. */
int lathe_yaml_parse(const char *text, size_t len, const char *name, struct fy_document **doc);

/* The text a document was parsed from, for lathe_yaml_scalar_copy. */
typedef struct {
    const char *text;
    size_t len;
} lathe_yaml_source;

/* The value of a scalar node of the document parsed from src, as a malloc'ed copy with a NUL after
 * its *len bytes; NULL when out of memory (no message set) or, with -LATHE_EFORMAT's message
 * naming the line, for a block scalar lathe cannot read as YAML's rules say (yaml_check.c). A single-quoted scalar is read
 * from src itself: libfyaml 0.7.12 misreads two or more '' escapes in a row ('a''''b' came back
 * as a''' and longer runs with bytes it never wrote: docs/RELIABILITY.md, finding 21), and so is a
 * block scalar (`|` or `>`, yaml_block.h: libfyaml misformats some, and formats some it should
 * have refused from bytes it never wrote: finding 23); other styles are libfyaml's. */
char *lathe_yaml_scalar_copy(struct fy_node *node, const lathe_yaml_source *src, size_t *len);

#ifdef __cplusplus
}
#endif
#endif
