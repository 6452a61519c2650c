/* sensor_features.c - summary features of a sensor window (sensor_features.h). The spectrum is a
 * radix-2 FFT of the window zero-padded to a power of two. */
#include "sensor_features.h"

#include <complex.h>
#include <math.h>
#include <stdlib.h>

#include "libcore/base/error.h"

/* In-place iterative radix-2 FFT of n (a power of two) values. */
static void fft(double complex *a, int n) {
    for (int i = 1, j = 0; i < n; i++) { /* bit reversal */
        int bit = n >> 1;
        for (; j & bit; bit >>= 1) j ^= bit;
        j ^= bit;
        if (i < j) {
            double complex t = a[i];
            a[i] = a[j], a[j] = t;
        }
    }
    for (int len = 2; len <= n; len <<= 1) {
        double complex w = cexp(-2 * M_PI * I / len);
        for (int i = 0; i < n; i += len) {
            double complex u = 1;
            for (int k = 0; k < len / 2; k++, u *= w) {
                double complex x = a[i + k], y = a[i + k + len / 2] * u;
                a[i + k] = x + y, a[i + k + len / 2] = x - y;
            }
        }
    }
}

int lathe_sensor_features(const float *window, int steps, int channels, float *out) {
    int n = 1;
    while (n < steps) n <<= 1;
    double complex *a = malloc(sizeof(double complex) * (size_t)n);
    if (!a) return lathe_fail(LATHE_ENOMEM, "a spectrum of %d steps", steps);
    int half = n / 2, edge[LATHE_SENSOR_BANDS + 1], missing = 0;
    for (int b = 0; b <= LATHE_SENSOR_BANDS; b++) { /* bins 1 .. half, log-spaced, each band at least one bin */
        edge[b] = (int)lround(pow((double)half, (double)b / LATHE_SENSOR_BANDS));
        if (b && edge[b] <= edge[b - 1]) edge[b] = edge[b - 1] + 1;
    }
    for (int c = 0; c < channels; c++) {
        float *f = out + (size_t)c * LATHE_SENSOR_FEATURES;
        double sn = 0, st = 0, sv = 0, stt = 0, stv = 0, rough = 0;
        int last = -1, steps_seen = 0;
        for (int t = 0; t < steps; t++) {
            double v = window[(size_t)t * channels + c];
            if (!isfinite(v)) continue;
            sn += 1, st += t, sv += v, stt += (double)t * t, stv += t * v;
            if (last >= 0) rough += fabs(v - window[(size_t)last * channels + c]), steps_seen++;
            last = t;
        }
        if (sn < 2) {
            for (int k = 0; k < LATHE_SENSOR_FEATURES; k++) f[k] = NAN;
            missing++;
            continue;
        }
        double mean = sv / sn, var_t = stt / sn - (st / sn) * (st / sn);
        double slope = var_t > 0 ? (stv / sn - (st / sn) * mean) / var_t : 0, t_mean = st / sn;
        double ss = 0, peak = 0;
        for (int t = 0; t < steps; t++) {
            double v = window[(size_t)t * channels + c];
            if (!isfinite(v)) continue;
            ss += (v - mean) * (v - mean), peak = fmax(peak, fabs(v - mean));
        }
        f[0] = (float)mean, f[1] = (float)sqrt(ss / sn), f[2] = (float)(slope * (steps - 1));
        f[3] = (float)(steps_seen ? rough / steps_seen : 0), f[4] = (float)peak;
        for (int t = 0; t < n; t++) { /* detrended; a missing value lies on the line */
            double v = t < steps ? window[(size_t)t * channels + c] : NAN;
            a[t] = t < steps && isfinite(v) ? v - mean - slope * (t - t_mean) : 0;
        }
        fft(a, n);
        for (int b = 0; b < LATHE_SENSOR_BANDS; b++) {
            double e = 0;
            int end = b == LATHE_SENSOR_BANDS - 1 ? half + 1 : edge[b + 1]; /* the last band ends at the Nyquist bin */
            for (int k = edge[b]; k < end && k <= half; k++) e += creal(a[k]) * creal(a[k]) + cimag(a[k]) * cimag(a[k]);
            f[5 + b] = (float)log1p(e / ((double)n * steps));
        }
    }
    free(a);
    return missing;
}
