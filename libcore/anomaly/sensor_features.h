/* sensor_features.h - a sensor window (T steps x S channels, NaN where a value is missing) as a fixed
 * number of features per channel, for heads that compare windows (the sensor anomaly head): level,
 * spread, trend, roughness, the largest excursion, and the energy in eight frequency bands. */
#ifndef LATHE_ANOMALY_SENSOR_FEATURES_H
#define LATHE_ANOMALY_SENSOR_FEATURES_H
#ifdef __cplusplus
extern "C" {
#endif

/* Features per channel: mean, standard deviation, least-squares slope over the whole window, mean
 * absolute step, largest absolute deviation from the mean, then log(1 + energy) of the detrended
 * window in 8 log-spaced bands of its spectrum (missing values filled with the channel's line). */
#define LATHE_SENSOR_FEATURES 13
#define LATHE_SENSOR_BANDS 8

/* Fills out (S x LATHE_SENSOR_FEATURES, channel by channel) from window (T x S, row-major). A
 * channel with fewer than two finite values gets NaN features. Returns the number of such
 * channels, or -LATHE_ENOMEM. */
int lathe_sensor_features(const float *window, int steps, int channels, float *out);

#ifdef __cplusplus
}
#endif
#endif
