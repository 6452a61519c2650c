/* sensors.h - per-sample sensor windows from CSV: a header of channel names (a leading time column
 * "t", "time" or "timestamp" is dropped), then T rows of numbers. Empty cells and "nan" are NaN. */
#ifndef LATHE_DATA_SENSORS_H
#define LATHE_DATA_SENSORS_H
#include <stddef.h>
#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int steps, channels; /* T rows, S value columns */
    int skip_first;      /* 1 when the first column is time */
    char **names;        /* S channel names */
} lathe_sensor_layout;

/* Reads the layout (header names, row count) of one CSV. Returns 0 or -LATHE_EFORMAT. */
int lathe_sensors_layout(const char *csv, size_t len, lathe_sensor_layout *layout);
void lathe_sensors_layout_free(lathe_sensor_layout *layout);
/* Parses a CSV that must have exactly `layout`'s header and row count into out (T*S floats, row
 * major); *nans counts NaN values. Returns 0 or -LATHE_EFORMAT with the line and column. */
int lathe_sensors_parse(const char *csv, size_t len, const lathe_sensor_layout *layout, float *out, int *nans);

#ifdef __cplusplus
}
#endif
#endif
