/*
 * A windowed rate as Kafka's quota sensors measure it (Rate over a SampledStat, metrics
 * package), and Kafka's throttle time for a rate over its quota (QuotaUtils.throttleTime).
 *
 * The rate keeps `samples` samples of `window_ms` each (quota.window.num and
 * quota.window.size.seconds). Recording adds to the current sample, starting the next one when
 * the current is older than window_ms. Measuring first resets samples older than
 * samples * window_ms, then divides their sum by the elapsed time since the oldest sample
 * began, counted as at least (samples - 1) full windows: a new sensor so allows a burst of
 * (samples - 1) windows' worth before throttling, as Kafka does.
 *
 * Not thread-safe: the caller serializes (quota.c holds a lock per sensor). Pure functions of
 * their arguments and the struct, so unit tests drive them with a fake clock.
 */
#ifndef GREGOR_BROKER_QUOTA_RATE_H
#define GREGOR_BROKER_QUOTA_RATE_H

#include <stdint.h>

#define QUOTA_RATE_MAX_SAMPLES 64

struct quota_rate {
    int samples;       /* 2..QUOTA_RATE_MAX_SAMPLES */
    int64_t window_ms; /* > 0 */
    int used;          /* samples started so far (Kafka's samples.size()) */
    int current;       /* index of the sample being recorded into */
    int64_t start_ms[QUOTA_RATE_MAX_SAMPLES];
    double value[QUOTA_RATE_MAX_SAMPLES];
};

/* samples is clamped to 2..QUOTA_RATE_MAX_SAMPLES, window_ms to >= 1. */
void quota_rate_init(struct quota_rate *r, int samples, int64_t window_ms);
void quota_rate_record(struct quota_rate *r, double v, int64_t now_ms);
/* The window the rate is measured over now, in ms (>= 1); purges obsolete samples first. */
int64_t quota_rate_window_ms(struct quota_rate *r, int64_t now_ms);
/* The rate per second now. */
double quota_rate_measure(struct quota_rate *r, int64_t now_ms);

/*
 * Kafka's throttle time: with observed rate O over window W and quota T, the delay X that
 * brings O * W / (W + X) down to T, X = (O - T) / T * W, rounded; 0 when O <= T. max_ms > 0
 * bounds it (request quotas: one window), 0 leaves it unbounded (byte-rate quotas).
 */
int64_t quota_throttle_ms(double rate, double bound, int64_t window_ms, int64_t max_ms);

#endif
