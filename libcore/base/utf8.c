/* utf8.c - strict UTF-8 (utf8.h). */
#include "utf8.h"

#include <stdlib.h>
#include <string.h>

/* The length (1-4) of the valid sequence at s (n bytes left), or 0. */
static size_t sequence(const unsigned char *s, size_t n) {
    unsigned char b = s[0];
    if (b < 0x80) return 1;
    size_t k = (b & 0xE0) == 0xC0 ? 2 : (b & 0xF0) == 0xE0 ? 3 : (b & 0xF8) == 0xF0 ? 4 : 0;
    if (!k || k > n) return 0;
    unsigned cp = b & (0x7F >> k);
    for (size_t j = 1; j < k; j++) {
        if ((s[j] & 0xC0) != 0x80) return 0;
        cp = cp << 6 | (s[j] & 0x3F);
    }
    static const unsigned least[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < least[k] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return k;
}

int lathe_utf8_valid(const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0, k; i < n; i += k)
        if (!u[i] || !(k = sequence(u + i, n - i))) return 0;
    return 1;
}

char *lathe_utf8_repair(const char *s) {
    size_t n = strlen(s);
    char *out = malloc(3 * n + 1), *at = out; /* each byte becomes at most the 3 bytes of U+FFFD */
    if (!out) return NULL;
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0, k; i < n; i += k) {
        k = sequence(u + i, n - i);
        if (k) memcpy(at, s + i, k), at += k;
        else memcpy(at, "\xEF\xBF\xBD", 3), at += 3, k = 1;
    }
    *at = 0;
    return out;
}
