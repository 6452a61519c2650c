/* fuzz_sensors.c - the sensor CSV reader (libcore/data/sensors.c): the layout (header, row count) of
 * one CSV, then a CSV parsed against it. The input is "FIRST\0SECOND" (the layout from FIRST, SECOND
 * parsed), or one CSV for both. */
#include "fuzz.h"

#include "libcore/data/sensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    size_t first;
    const uint8_t *second;
    size_t second_len;
    fuzz_split(data, size, &first, &second, &second_len);
    if (!second) second = data, second_len = size;
    lathe_sensor_layout layout = {0};
    if (lathe_sensors_layout((const char *)data, first, &layout) != 0) return 0;
    size_t values = (size_t)layout.steps * (size_t)layout.channels;
    float *out = malloc((values ? values : 1) * sizeof *out);
    int nans = 0;
    if (out) (void)lathe_sensors_parse((const char *)second, second_len, &layout, out, &nans);
    free(out);
    lathe_sensors_layout_free(&layout);
    return 0;
}
