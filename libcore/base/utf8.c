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

size_t lathe_utf8_cut(const char *s, size_t n, size_t cap) {
    if (n < cap) return n;
    n = cap ? cap - 1 : 0;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80) n--; /* s[n], the first byte left out, continues a character */
    return n;
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

size_t lathe_utf8_yaml_unprintable(const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0, k; i < n; i += k) {
        if (!(k = sequence(u + i, n - i))) return i;
        unsigned c = u[i] & (k == 1 ? 0x7F : 0x7F >> k);
        for (size_t j = 1; j < k; j++) c = c << 6 | (u[i + j] & 0x3F);
        int printable = c == 0x09 || c == 0x0A || c == 0x0D || (c >= 0x20 && c <= 0x7E) || c == 0x85 ||
                        (c >= 0xA0 && c <= 0xD7FF) || (c >= 0xE000 && c <= 0xFFFD) || (c >= 0x10000 && c <= 0x10FFFF);
        if (!printable) return i;
    }
    return n;
}

void lathe_utf8_line_column(const char *s, size_t at, size_t *line, size_t *column) {
    *line = 1, *column = 1;
    for (size_t i = 0; i < at; i++) {
        if (s[i] == '\n') *line += 1, *column = 1;
        else if (((unsigned char)s[i] & 0xC0) != 0x80) *column += 1;
    }
}
