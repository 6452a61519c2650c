/* sensors.c - the sensor CSV reader (see sensors.h). Strict: a wrong header, a short row, text in
 * a number column or an infinite value fail with the line and column; NaN is data, not an error. */
#include "sensors.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../base/error.h"

/* The next line of csv (without \r\n) into [*start, *end); returns 0 at the end of input. */
static int next_line(const char *csv, size_t len, size_t *at, const char **start, const char **end) {
    while (*at < len && (csv[*at] == '\n' || csv[*at] == '\r')) (*at)++;
    if (*at >= len) return 0;
    *start = csv + *at;
    while (*at < len && csv[*at] != '\n') (*at)++;
    *end = csv + *at;
    while (*end > *start && ((*end)[-1] == '\r' || (*end)[-1] == ' ')) (*end)--;
    return 1;
}

static int count_fields(const char *s, const char *e) {
    int n = 1;
    for (; s < e; s++) n += *s == ',';
    return n;
}

static int is_time_name(const char *s, size_t n) {
    return (n == 1 && s[0] == 't') || (n == 4 && strncasecmp(s, "time", 4) == 0) ||
           (n == 9 && strncasecmp(s, "timestamp", 9) == 0);
}

void lathe_sensors_layout_free(lathe_sensor_layout *l) {
    for (int i = 0; l->names && i < l->channels; i++) free(l->names[i]);
    free(l->names);
    memset(l, 0, sizeof *l);
}

int lathe_sensors_layout(const char *csv, size_t len, lathe_sensor_layout *l) {
    memset(l, 0, sizeof *l);
    size_t at = 0;
    const char *s, *e;
    if (!next_line(csv, len, &at, &s, &e)) return lathe_fail(LATHE_EFORMAT, "empty sensor file");
    int fields = count_fields(s, e);
    const char *comma = memchr(s, ',', (size_t)(e - s));
    size_t first_len = comma ? (size_t)(comma - s) : (size_t)(e - s);
    l->skip_first = is_time_name(s, first_len);
    l->channels = fields - l->skip_first;
    if (l->channels <= 0 || l->channels > 4096) return lathe_fail(LATHE_EFORMAT, "sensor header has %d channels", l->channels);
    l->names = calloc((size_t)l->channels, sizeof *l->names);
    if (!l->names) return lathe_fail(LATHE_ENOMEM, "sensor names");
    const char *p = s;
    for (int f = 0; f < fields; f++) {
        const char *q = p;
        while (q < e && *q != ',') q++;
        if (f >= l->skip_first) {
            while (p < q && *p == ' ') p++;
            if (q == p) {
                lathe_sensors_layout_free(l);
                return lathe_fail(LATHE_EFORMAT, "sensor header: column %d has no name", f + 1);
            }
            if (!(l->names[f - l->skip_first] = strndup(p, (size_t)(q - p)))) {
                lathe_sensors_layout_free(l);
                return lathe_fail(LATHE_ENOMEM, "sensor names");
            }
        }
        p = q + 1;
    }
    while (next_line(csv, len, &at, &s, &e)) l->steps++;
    if (l->steps == 0) {
        lathe_sensors_layout_free(l);
        return lathe_fail(LATHE_EFORMAT, "sensor file has a header and no rows");
    }
    return 0;
}

static int header_matches(const char *s, const char *e, const lathe_sensor_layout *l) {
    if (count_fields(s, e) != l->channels + l->skip_first) return 0;
    const char *p = s;
    for (int f = 0; f < l->channels + l->skip_first; f++) {
        const char *q = p;
        while (q < e && *q != ',') q++;
        if (f >= l->skip_first) {
            while (p < q && *p == ' ') p++;
            const char *name = l->names[f - l->skip_first];
            if ((size_t)(q - p) != strlen(name) || strncmp(p, name, (size_t)(q - p)) != 0) return 0;
        }
        p = q + 1;
    }
    return 1;
}

int lathe_sensors_parse(const char *csv, size_t len, const lathe_sensor_layout *l, float *out, int *nans) {
    size_t at = 0;
    const char *s, *e;
    *nans = 0;
    if (!next_line(csv, len, &at, &s, &e)) return lathe_fail(LATHE_EFORMAT, "empty sensor file");
    if (!header_matches(s, e, l)) return lathe_fail(LATHE_EFORMAT, "header differs from the dataset's sensor channels");
    int row = 0;
    while (next_line(csv, len, &at, &s, &e)) {
        if (row >= l->steps) return lathe_fail(LATHE_EFORMAT, "more than %d rows", l->steps);
        if (count_fields(s, e) != l->channels + l->skip_first)
            return lathe_fail(LATHE_EFORMAT, "line %d has %d fields, expected %d", row + 2, count_fields(s, e),
                              l->channels + l->skip_first);
        const char *p = s;
        for (int f = 0; f < l->channels + l->skip_first; f++) {
            const char *q = p;
            while (q < e && *q != ',') q++;
            while (p < q && *p == ' ') p++;
            if (f >= l->skip_first) {
                float v;
                size_t n = (size_t)(q - p);
                if (n == 0 || (n == 3 && strncasecmp(p, "nan", 3) == 0)) {
                    v = NAN;
                } else {
                    char buf[64], *end;
                    if (n >= sizeof buf) return lathe_fail(LATHE_EFORMAT, "line %d column %d: value too long", row + 2, f + 1);
                    memcpy(buf, p, n);
                    buf[n] = '\0';
                    v = strtof(buf, &end);
                    if (*end || isinf(v) || (isnan(v) && strncasecmp(buf, "nan", 3) != 0))
                        return lathe_fail(LATHE_EFORMAT, "line %d column %d: '%s' is not a finite number", row + 2,
                                          f + 1, buf);
                }
                if (isnan(v)) (*nans)++;
                out[(size_t)row * l->channels + (f - l->skip_first)] = v;
            }
            p = q + 1;
        }
        row++;
    }
    if (row != l->steps) return lathe_fail(LATHE_EFORMAT, "%d rows, the dataset's window is %d", row, l->steps);
    return 0;
}
