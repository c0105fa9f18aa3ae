/*
 * Prometheus text exposition format, version 0.0.4: a growing text buffer and the few writers
 * a scrape needs (HELP/TYPE lines, samples with labels, cumulative histograms).
 *
 * Knows nothing of Kafka. A writer that runs out of memory sets `oom` and ignores further
 * writes, so callers check once at the end. Not thread-safe: one buffer per scrape.
 */
#ifndef GREGOR_METRICS_EXPO_H
#define GREGOR_METRICS_EXPO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct expo {
    char *buf; /* NUL-terminated; owned by the struct until expo_take() */
    size_t len, cap;
    bool oom;
};

void expo_init(struct expo *e);
void expo_free(struct expo *e);
/* Hands the buffer (malloc'ed, NUL-terminated, *len bytes) to the caller; e is left empty. */
char *expo_take(struct expo *e, size_t *len);

void expo_printf(struct expo *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* "# HELP name help" and "# TYPE name type" (type: counter, gauge, histogram). */
void expo_family(struct expo *e, const char *name, const char *type, const char *help);

/* One sample line "name{labels} value"; labels is "" or NULL for none, else the text produced
 * by expo_labels(). */
void expo_int(struct expo *e, const char *name, const char *labels, int64_t v);
void expo_double(struct expo *e, const char *name, const char *labels, double v);

/*
 * A histogram's samples: name_bucket{labels,le="..."} cumulative over bounds (seconds, in
 * nanoseconds here, ascending), then le="+Inf", name_sum (seconds) and name_count.
 * counts has nb + 1 non-cumulative entries, the last one for values above every bound.
 */
void expo_histogram(struct expo *e, const char *name, const char *labels, const int64_t *bounds_ns,
                    int nb, const uint64_t *counts, uint64_t sum_ns);

/*
 * Writes `k1="v1",k2="v2"` (values escaped as the format wants: backslash, quote, newline)
 * into out for the NULL-terminated key/value list. Returns the length, or -1 if it did not fit.
 */
int expo_labels(char *out, size_t n, ...) __attribute__((sentinel));

#endif
