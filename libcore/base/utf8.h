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
/* A copy of the NUL-terminated s with each byte that starts no valid sequence replaced by U+FFFD;
 * NULL when out of memory. free() it. */
char *lathe_utf8_repair(const char *s);

#ifdef __cplusplus
}
#endif
#endif
