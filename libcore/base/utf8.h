/* utf8.h - strict UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF), as
 * JSON readers such as Python's json module require it. */
#ifndef LATHE_BASE_UTF8_H
#define LATHE_BASE_UTF8_H
#include <stddef.h>
#ifdef __cplusplus
extern "C" {
#endif

/* 1 when the n bytes of s are valid UTF-8 without NUL bytes. */
int lathe_utf8_valid(const char *s, size_t n);
/* The length of s[0, n) kept when it must fit cap - 1 bytes: n when it does, else the longest
 * prefix that ends before a character, never inside one (half a character is no UTF-8). */
size_t lathe_utf8_cut(const char *s, size_t n, size_t cap);
/* A copy of the NUL-terminated s with each byte that starts no valid sequence replaced by U+FFFD;
 * NULL when out of memory. free() it. */
char *lathe_utf8_repair(const char *s);
/* Offset of the first byte of s that is not YAML-printable UTF-8 (YAML 1.2 c-printable: tab, LF,
 * CR, U+0020-7E, U+0085, U+00A0-D7FF, U+E000-FFFD, U+10000-10FFFF, shortest encodings only), or n
 * when all are. Such input is not YAML, and libfyaml 0.7.12 (Debian) loops forever on some invalid
 * UTF-8 (upstream issue pantoniou/libfyaml#101), so every YAML text is checked before libfyaml. */
size_t lathe_utf8_yaml_unprintable(const char *s, size_t n);
/* The 1-based line and column (in code points) of byte offset at of s. */
void lathe_utf8_line_column(const char *s, size_t at, size_t *line, size_t *column);

#ifdef __cplusplus
}
#endif
#endif
