/* yaml_scalar.h - a YAML scalar's text, as libfyaml gives it, without libfyaml's leak under
 * LeakSanitizer. libfyaml 0.7.12 (Debian) never frees the text it formats for a long single-quoted
 * scalar with '' escapes (fy_node_get_scalar -> fy_atom_format_text), even after
 * fy_document_destroy: finding 5 of docs/RELIABILITY.md. Debian's libfyaml has no frame pointers,
 * so a suppression by function name needs ASan's slow unwinder at every allocation, which made the
 * YAML fuzz targets 13x slower; instead, where LeakSanitizer is linked (ASan builds: SANITIZE=1,
 * FUZZ=1), the allocations made inside this one call are not tracked as leaks. lathe allocates
 * nothing inside it, so no leak of lathe's own can hide there. Elsewhere it is fy_node_get_scalar. */
#ifndef LATHE_BASE_YAML_SCALAR_H
#define LATHE_BASE_YAML_SCALAR_H

#include <libfyaml.h>
#include <stddef.h>

#if defined(__SANITIZE_ADDRESS__)
#define LATHE_HAVE_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LATHE_HAVE_LSAN 1
#endif
#endif

#ifdef LATHE_HAVE_LSAN
#include <sanitizer/lsan_interface.h>
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* fy_node_get_scalar(node, len): the scalar's text (not NUL-terminated) and its length, NULL when
 * the node has none; owned by the document. */
static inline const char *lathe_yaml_scalar(struct fy_node *node, size_t *len) {
#ifdef LATHE_HAVE_LSAN
    __lsan_disable();
    const char *s = fy_node_get_scalar(node, len);
    __lsan_enable();
    return s;
#else
    return fy_node_get_scalar(node, len);
#endif
}

#ifdef __cplusplus
}
#endif

#endif
