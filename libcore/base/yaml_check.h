/* yaml_check.h - what lathe refuses in a YAML text before libfyaml parses it. libfyaml 0.7.12
 * (Debian) crashes on some invalid YAML inside an explicit key: `? a:` followed by a tab and `-`,
 * `:` or `?` ends in a NULL write in its error path (fy_indent_vacuum_internal, from
 * fy_parse_cleanup; upstream's issue pantoniou/libfyaml#57 is of that family), from a spec, an
 * override or a YOLO dataset's data.yaml. lathe's YAML (specs, overrides, data.yaml) never needs
 * explicit keys, so they are refused, with their place, before libfyaml sees the text. */
#ifndef LATHE_BASE_YAML_CHECK_H
#define LATHE_BASE_YAML_CHECK_H
#include <stddef.h>
#ifdef __cplusplus
extern "C" {
#endif

/* Offset of the first explicit-key indicator of s (a `?` where a node begins, followed by a blank
 * or the line's end), outside quoted scalars, comments and block scalars; n when there is none.
 * It errs on the side of refusing: a `?` after a comma inside a block plain scalar counts too. */
size_t lathe_yaml_explicit_key(const char *s, size_t n);
/* The reason to print beside the place. */
#define LATHE_YAML_EXPLICIT_KEY_WHY \
    "'?' starts an explicit (complex) key, which lathe does not accept (quote the text if it is a value)"

#ifdef __cplusplus
}
#endif
#endif
