/*
 * Measurements for gregor bench: counters, every latency sample (so percentiles are exact,
 * not estimated from a histogram), a once-a-second progress line on a terminal, and the final
 * text or JSON report.
 *
 * A struct bench_stats is used by one thread at a time: the thread that serves delivery
 * reports (produce) or consumes (consume, e2e).
 */
#ifndef GREGOR_CLI_BENCH_STATS_H
#define GREGOR_CLI_BENCH_STATS_H

#include <stddef.h>
#include <stdint.h>

struct bench_stats {
    int64_t start_us, end_us; /* monotonic; end is the last counted record */
    int64_t records, bytes, errors;
    uint32_t *lat_us; /* latency samples in microseconds, owned */
    size_t nlat, cap;
    int progress; /* print the progress line (stderr is a terminal) */
    int64_t last_tick_us, tick_records, tick_bytes, tick_lat_sum_us, tick_lat_n;
};

/* The settings echoed in the report. */
struct bench_report_params {
    const char *mode, *topic, *acks, *compression;
    int record_size, partitions;
    long linger_ms, batch_size, rate; /* -1: librdkafka default / unlimited */
};

void bench_stats_init(struct bench_stats *s, size_t expected_samples, int progress);
void bench_stats_free(struct bench_stats *s);

/* Marks the start of the measured interval. */
void bench_stats_start(struct bench_stats *s);

/* Counts one record of BYTES; LAT_US < 0 means no latency sample. */
void bench_stats_record(struct bench_stats *s, int64_t bytes, int64_t lat_us);

/* Prints the progress line if a second passed since the last one (and progress is on). */
void bench_stats_tick(struct bench_stats *s, const char *what);

/* Clears the progress line; call before printing anything else to stderr. */
void bench_stats_end_progress(struct bench_stats *s);

/* Sorts the samples and prints the summary (text on stdout, or one JSON object). */
void bench_stats_report(struct bench_stats *s, const struct bench_report_params *p, int json);

#endif
