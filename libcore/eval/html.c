/* html.c - HTML escaping and inline PNGs (see html.h). */
#include "html.h"

void lathe_html_escape(FILE *f, const char *s) {
    for (; s && *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&#39;", f); break;
        default: fputc(*s, f);
        }
    }
}

/* through a small buffer: a chart is tens of kilobytes, and fputc takes the stream's lock per byte */
void lathe_base64_write(FILE *f, const unsigned char *data, size_t len) {
    static const char digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char buf[4096];
    size_t n = 0;
    for (size_t i = 0; i < len; i += 3) {
        unsigned v = (unsigned)data[i] << 16 | (i + 1 < len ? (unsigned)data[i + 1] << 8 : 0) | (i + 2 < len ? data[i + 2] : 0);
        buf[n++] = digits[v >> 18 & 63];
        buf[n++] = digits[v >> 12 & 63];
        buf[n++] = i + 1 < len ? digits[v >> 6 & 63] : '=';
        buf[n++] = i + 2 < len ? digits[v & 63] : '=';
        if (n == sizeof buf) fwrite(buf, 1, n, f), n = 0;
    }
    fwrite(buf, 1, n, f);
}

void lathe_html_png(FILE *f, const unsigned char *png, size_t len, const char *alt) {
    fputs("<img src=\"data:image/png;base64,", f);
    lathe_base64_write(f, png, len);
    fputs("\" alt=\"", f);
    lathe_html_escape(f, alt);
    fputs("\">", f);
}

void lathe_md_cell(FILE *f, const char *s) {
    for (; s && *s; s++) {
        if (*s == '|') fputs("\\|", f);
        else if (*s == '\n' || *s == '\r') fputc(' ', f);
        else if (*s == '<') fputs("&lt;", f); /* Markdown passes HTML through: a class named <script> would run */
        else if (*s == '>') fputs("&gt;", f);
        else if (*s == '&') fputs("&amp;", f);
        else fputc(*s, f);
    }
}
