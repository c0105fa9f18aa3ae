/*
 * Kafka's sampled rate and throttle time (see quota_rate.h).
 *
 * Invariants: 0 <= current < used <= samples once anything was recorded or measured; a
 * sample's start_ms never exceeds the latest time it was given.
 */
#include "broker/quota_rate.h"

#include <assert.h>
#include <math.h>
#include <string.h>

void quota_rate_init(struct quota_rate *r, int samples, int64_t window_ms)
{
    memset(r, 0, sizeof(*r));
    r->samples = samples < 2                        ? 2
                 : samples > QUOTA_RATE_MAX_SAMPLES ? QUOTA_RATE_MAX_SAMPLES
                                                    : samples;
    r->window_ms = window_ms < 1 ? 1 : window_ms;
}

static void sample_reset(struct quota_rate *r, int i, int64_t now_ms)
{
    r->start_ms[i] = now_ms;
    r->value[i] = 0;
}

/* Kafka's SampledStat.current/advance: the sample to record into at now_ms. */
static int sample_current(struct quota_rate *r, int64_t now_ms)
{
    if (r->used == 0) {
        r->used = 1;
        r->current = 0;
        sample_reset(r, 0, now_ms);
    }
    if (now_ms >= r->start_ms[r->current] + r->window_ms) {
        r->current = (r->current + 1) % r->samples;
        if (r->current >= r->used)
            r->used = r->current + 1;
        sample_reset(r, r->current, now_ms);
    }
    assert(r->current < r->used && r->used <= r->samples);
    return r->current;
}

void quota_rate_record(struct quota_rate *r, double v, int64_t now_ms)
{
    r->value[sample_current(r, now_ms)] += v;
}

static void purge_obsolete(struct quota_rate *r, int64_t now_ms)
{
    int64_t expire = (int64_t)r->samples * r->window_ms;
    for (int i = 0; i < r->used; i++)
        if (now_ms - r->start_ms[i] >= expire)
            sample_reset(r, i, now_ms);
}

int64_t quota_rate_window_ms(struct quota_rate *r, int64_t now_ms)
{
    purge_obsolete(r, now_ms);
    int64_t oldest = now_ms;
    for (int i = 0; i < r->used; i++)
        if (r->start_ms[i] < oldest)
            oldest = r->start_ms[i];
    int64_t elapsed = now_ms - oldest;
    int64_t full = elapsed / r->window_ms;
    int64_t min_full = r->samples - 1;
    if (full < min_full)
        elapsed += (min_full - full) * r->window_ms;
    return elapsed > 1 ? elapsed : 1;
}

double quota_rate_measure(struct quota_rate *r, int64_t now_ms)
{
    int64_t window = quota_rate_window_ms(r, now_ms); /* purges */
    double total = 0;
    for (int i = 0; i < r->used; i++)
        total += r->value[i];
    return total / ((double)window / 1000.0);
}

int64_t quota_throttle_ms(double rate, double bound, int64_t window_ms, int64_t max_ms)
{
    if (!(bound > 0) || rate <= bound)
        return 0;
    double ms = (rate - bound) / bound * (double)window_ms;
    int64_t t = (int64_t)llround(ms);
    if (max_ms > 0 && t > max_ms)
        t = max_ms;
    return t;
}
